"""The architecture holds: no module imports one of a higher layer (lazy
imports inside functions included), so there are no cycles.  The layers,
bottom up, are those of docs/architecture.rst."""

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "checkpoint")

# module (relative to checkpoint/, without .py; a package name stands for its modules) -> layer
LAYERS = {
    "errors": 0,
    "_version": 0,
    "hashing": 0,
    "_progress": 0,
    "noise": 0,
    "state": 1,
    "_atomic": 1,
    "shardnames": 1,
    "network": 2,
    "formats": 2,
    "restore": 2,
    "_ranks": 2,
    "repartition": 2,
    "adapters": 3,
    "local": 4,
    "parameters": 4,
    "distributed": 5,
    "api": 6,
    "folder": 6,
    "recordings": 6,
    "manager": 7,
    "interchange": 7,
    "cli": 8,
    "__main__": 8,
    "__init__": 9,
}


def layer_of(module):
    head = module.split(".")[0]
    return LAYERS[head]


def modules():
    for folder, _, names in os.walk(ROOT):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                yield rel, path


def imports(rel, path):
    """Modules of this package that ``rel`` imports, absolute (relative to checkpoint/)."""
    package = rel.split(".")[:-1] if not rel.endswith("__init__") else rel.split(".")[:-1]
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            if node.module:
                yield ".".join(base + [node.module])
            else:  # "from . import x": x is a module of that package
                yield from (".".join(base + [alias.name]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("checkpoint."):
            yield node.module[len("checkpoint.") :]
        elif isinstance(node, ast.Import):
            yield from (a.name[len("checkpoint.") :] for a in node.names if a.name.startswith("checkpoint."))


def test_no_module_reaches_up_a_layer():
    violations = []
    for rel, path in modules():
        own = layer_of(rel) if not rel.startswith(("formats.", "adapters.")) else LAYERS[rel.split(".")[0]]
        for target in imports(rel, path):
            if target.split(".")[0] == rel.split(".")[0]:
                continue  # within one package or module
            if layer_of(target) > own:
                violations.append(f"{rel} (layer {own}) imports {target} (layer {layer_of(target)})")
    assert not violations, "\n".join(violations)


def test_every_module_has_a_layer():
    for rel, _ in modules():
        assert rel.split(".")[0] in LAYERS, rel


def _imported_names(path):
    """``(module, name)`` for each ``from module import name`` of this package in ``path``."""
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("checkpoint")):
            for alias in node.names:
                yield node.module or "", alias.name


def test_no_module_imports_another_modules_private_names():
    """A ``_name`` is its module's own: moving code must not break an importer
    (``from .local import _ms`` did).  Private modules (``_atomic``) are the
    package's own and may be imported whole."""
    module_names = {rel.split(".")[-1] for rel, _ in modules()}
    violations = [
        f"{rel} imports {name} from {module or '.'}"
        for rel, path in modules()
        for module, name in _imported_names(path)
        if name.startswith("_") and not name.startswith("__") and name not in module_names
    ]
    assert not violations, "\n".join(violations)


def _graph():
    """``{module: modules it imports}`` over the package's modules (packages as their ``__init__``)."""
    known = {rel for rel, _ in modules()}
    graph = {}
    for rel, path in modules():
        targets = set()
        for target in imports(rel, path):
            for candidate in (target, target + ".__init__"):
                if candidate in known and candidate != rel:
                    targets.add(candidate)
        graph[rel] = targets
    return graph


def test_no_import_circles():
    """No module reaches itself through its imports, lazy ones included
    (``formats.hdf5`` and ``formats._h5sandbox`` once did)."""
    graph = _graph()
    circles = []
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                circles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, "\n".join(circles)


def test_every_simulator_is_a_package_of_the_same_shape():
    """``adapters/<simulator>/``: a short ``__init__``, an ``adapter.py``, one
    module per concept, none over ~450 lines."""
    from checkpoint.adapters import _SIMULATORS

    for _, package, class_name in _SIMULATORS:
        folder = os.path.join(ROOT, "adapters", package)
        assert os.path.isdir(folder), f"adapters/{package} is not a package"
        assert os.path.exists(os.path.join(folder, "adapter.py")), package
        assert class_name in open(os.path.join(folder, "adapter.py")).read()
        for name in os.listdir(folder):
            if name.endswith(".py"):
                lines = sum(1 for _ in open(os.path.join(folder, name)))
                assert lines <= 460, f"adapters/{package}/{name}: {lines} lines"
