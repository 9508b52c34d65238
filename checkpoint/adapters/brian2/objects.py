"""Brian2's objects: which a network holds, how they are named, and the
arrays each one owns (as the file names them, with kind, scope and unit)."""

import inspect
import re
import warnings

import numpy as np

from ...errors import CheckpointWarning, UnsupportedObjectError
from ...state import ArrayInfo


def collect_magic_objects(magic):
    """Fill ``magic_network`` with the objects the magic ``run()`` would
    simulate: those in the namespace of the user's code that called
    save/load (the first frame outside this package), as ``brian2.store()``
    does; without this it holds nothing between runs."""
    frame, depth = inspect.currentframe(), 0  # Brian2 counts levels from its caller: this frame
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "checkpoint":
        frame, depth = frame.f_back, depth + 1
    magic._update_magic_objects(level=depth)
    if not magic.objects:
        raise UnsupportedObjectError(
            "no Brian2 object in the namespace of the code that called checkpoint; "
            "pass a Network(...) of your objects instead",
            obj="magic_network",
        )


def warn_python_state(net):
    """A ``network_operation`` runs Python code whose state (its closure,
    the globals it changes) Brian2 does not see, nor do we: say so at save."""
    from brian2 import NetworkOperation

    operations = sorted(
        f"{o.name} ({getattr(o.function, '__name__', '?')})"
        for o in all_objects(net)
        if isinstance(o, NetworkOperation)
    )
    if operations:
        warnings.warn(
            f"network_operation {', '.join(operations)}: the Python state it keeps (closures, "
            "globals) is not captured; a resumed run starts from what the script sets up",
            CheckpointWarning,
            stacklevel=5,
        )


def all_objects(net):
    from brian2.core.network import _get_all_objects

    return sorted(_get_all_objects(net.objects), key=lambda o: o.name)


def is_monitor(obj):
    from brian2.monitors import EventMonitor, PopulationRateMonitor, StateMonitor

    return isinstance(obj, (EventMonitor, StateMonitor, PopulationRateMonitor))


def _base_name(obj):
    try:
        default = inspect.signature(type(obj).__init__).parameters["name"].default
    except (KeyError, TypeError, ValueError):
        return None
    return default.rstrip("*") if isinstance(default, str) and default.endswith("*") else None


def automatic_name(obj):
    return same_base(obj.name, obj)


def same_base(name, obj):
    """Whether ``name`` looks like one Brian2 would give an ``obj`` unnamed."""
    base = _base_name(obj)
    return base is not None and re.fullmatch(re.escape(base) + r"(_\d+)?", name) is not None


def unit_of(var):
    from brian2.units.fundamentalunits import DIMENSIONLESS, get_unit

    return "1" if var.dim is DIMENSIONLESS else str(get_unit(var.dim))


def variable_kind(name, var):
    if name.startswith("_") or name in ("lastspike", "not_refractory", "lastupdate", "count"):
        return "internal"
    return "parameter" if var.constant else "variable"


def owned_variables(obj, owners=None):
    """``{name: variable}`` for the array variables ``obj`` itself (or one of
    ``owners``) owns, one entry per variable: Brian2 lists some under
    several names."""
    from brian2.core.variables import ArrayVariable, DynamicArrayVariable

    owners = owners or {obj.name}
    seen, out = set(), {}
    for name, var in obj.variables.items():
        if not isinstance(var, ArrayVariable) or var.owner is None or var.owner.name not in owners:
            continue
        if id(var) in seen or (name == "i" and not isinstance(var, DynamicArrayVariable)):
            continue  # a group's "i" is its constant 0..N-1
        seen.add(id(var))
        out[var.name] = var
    return out


def _scope(var, n):
    """A group's dynamic arrays (a SpikeGeneratorGroup's spikes) are never
    per neuron, even when they happen to hold one value per neuron."""
    from brian2.core.variables import DynamicArrayVariable

    shape = np.shape(var.get_value())
    if var.scalar and shape in ((), (1,)):
        return "global"
    per_neuron = n is not None and shape == (n,) and not isinstance(var, DynamicArrayVariable)
    return "neuron" if per_neuron else "free"


def owned_arrays(group, n):
    arrays, info = {}, {}
    for name, var in owned_variables(group).items():
        scope = _scope(var, n)
        value = np.asarray(var.get_value())
        arrays[name] = value.reshape(()) if scope == "global" else value
        info[name] = ArrayInfo(variable_kind(name, var), scope, unit_of(var))
    return arrays, info


def stable_argsort(values, bound):
    """Stable argsort of integers in ``[0, bound)``: as uint16 numpy uses a
    radix sort, 8x faster than the merge sort it uses for wider integers."""
    if bound <= 1 << 16:
        values = values.astype(np.uint16)
    perm = np.argsort(values, kind="stable")
    return perm.astype(np.int32) if len(perm) < 1 << 31 else perm


def pathway_prefix(pathway):
    return "" if pathway.prepost == "pre" and pathway.objname == "pre" else f"{pathway.objname}."
