"""The architecture holds: no module imports one of a higher layer (lazy
imports inside functions included), so there are no cycles.  The layers,
bottom up, are those of docs/architecture.rst."""

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "checkpoint")

# module (relative to checkpoint/, without .py; a package name stands for its modules) -> layer
LAYERS = {
    "errors": 0, "_version": 0, "hashing": 0, "_progress": 0, "noise": 0,
    "state": 1, "_atomic": 1,
    "network": 2, "formats": 2, "restore": 2, "_ranks": 2, "repartition": 2,
    "adapters": 3,
    "local": 4, "parameters": 4,
    "distributed": 5,
    "api": 6, "folder": 6,
    "manager": 7, "interchange": 7,
    "cli": 8, "__main__": 8, "__init__": 9,
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
            base = package[:len(package) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            if target:
                yield target
            else:   # "from . import x" at the top: x is a module
                yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("checkpoint."):
            yield node.module[len("checkpoint."):]
        elif isinstance(node, ast.Import):
            yield from (a.name[len("checkpoint."):] for a in node.names if a.name.startswith("checkpoint."))


def test_no_module_reaches_up_a_layer():
    violations = []
    for rel, path in modules():
        own = layer_of(rel) if not rel.startswith(("formats.", "adapters.")) else LAYERS[rel.split(".")[0]]
        for target in imports(rel, path):
            if target.split(".")[0] == rel.split(".")[0]:
                continue   # within one package or module
            if layer_of(target) > own:
                violations.append(f"{rel} (layer {own}) imports {target} (layer {layer_of(target)})")
    assert not violations, "\n".join(violations)


def test_every_module_has_a_layer():
    for rel, _ in modules():
        assert rel.split(".")[0] in LAYERS, rel
