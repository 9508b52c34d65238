"""Simulator adapters, chosen from the object passed to save/load.

Simulator packages are imported lazily, inside their adapter module only.
"""

import types

from ..errors import UnsupportedObjectError

# (module prefix of the object's class, adapter module, adapter class)
_SIMULATORS = [
    ("brian2", "brian2", "Brian2Adapter"),
    ("ANNarchy", "annarchy", "ANNarchyAdapter"),
    ("nest", "nest", "NESTAdapter"),
    ("hoc", "neuron", "NEURONAdapter"),
    ("nrn", "neuron", "NEURONAdapter"),
]


def adapter_for(obj, monitors=False):
    """Return the adapter for ``obj`` or raise :class:`UnsupportedObjectError`.

    ``monitors``: also capture the simulator's recording devices (monitors,
    recorders) where the adapter supports it; the embedded network has none.
    """
    from ..network import Network, Population, Projection

    if isinstance(obj, (Network, Population, Projection)):
        from .embedded import EmbeddedAdapter

        return EmbeddedAdapter(obj)
    # the simulator comes from the class hierarchy, not the class's own module:
    # a user's subclass of a simulator's Network (defined in __main__) is that simulator's
    modules = (
        [obj.__name__] if isinstance(obj, types.ModuleType) else [cls.__module__ or "" for cls in type(obj).__mro__]
    )
    for prefix, module_name, class_name in _SIMULATORS:
        if any(module == prefix or module.startswith(prefix + ".") for module in modules):
            import importlib

            adapter_module = importlib.import_module(f"{__name__}.{module_name}")
            return getattr(adapter_module, class_name)(obj, monitors=monitors)
    raise UnsupportedObjectError(
        f"cannot checkpoint a {type(obj).__module__}.{type(obj).__qualname__}: pass a "
        "checkpoint.Network, a Brian2 or compiled ANNarchy Network, the nest module, NEURON's h, or one of "
        "their populations or projections"
    )
