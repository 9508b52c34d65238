"""Restoring a group's own arrays, and the Python-side state of a
SpikeGeneratorGroup that Brian2 keeps beside them."""

import numpy as np

from ...errors import StructureMismatchError
from .clocks import SPIKE_GENERATORS
from .objects import owned_variables


def check_free_arrays(group, values, path, name):
    from brian2.core.variables import DynamicArrayVariable
    owned = owned_variables(group)
    for var_name, value in values.items():
        var = owned.get(var_name)
        if var is not None and not isinstance(var, DynamicArrayVariable) and not var.scalar \
                and np.shape(var.get_value()) != np.shape(value):
            raise StructureMismatchError(f"the file has shape {np.shape(value)}, the model needs "
                                         f"{np.shape(var.get_value())}", path=path, obj=f"{name}.{var_name}")


def is_spike_generator(group):
    from brian2 import SpikeGeneratorGroup
    return isinstance(group, SpikeGeneratorGroup)


def spike_generator_flags(group):
    """What a SpikeGeneratorGroup keeps in Python to decide whether its time
    bins are valid (Brian2's own ``_full_state`` stores the same)."""
    previous = group._previous_dt
    return {"spikes_changed": bool(group._spikes_changed),
            "previous_dt": None if previous is None else float(np.asarray(previous).reshape(-1)[0])}


def restore_spike_generator_flags(group, file_meta, name):
    """The file's flags: a group saved before its first run (or right after
    ``set_spikes``) has time bins not computed yet, and the next run must
    compute them, whatever the model's own group had done.  A file without
    them (another writer) gets the bins recomputed from the restored spike
    times and clock, as after ``set_spikes``."""
    # Brian2 keeps the spikes in Python too, for before_run's checks (its own
    # store/restore leaves these stale after a set_spikes): the restored ones
    group._neuron_index = np.array(group.variables["neuron_index"].get_value())
    group._spike_time = np.array(group.variables["spike_time"].get_value())
    flags = ((file_meta.get("brian2") or {}).get(SPIKE_GENERATORS) or {}).get(name)
    if flags is None:
        group._spikes_changed = True
        return
    group._spikes_changed = bool(flags["spikes_changed"])
    group._previous_dt = None if flags["previous_dt"] is None else np.float64(flags["previous_dt"])


def restore_group(group, values):
    owned = owned_variables(group)
    for name, value in values.items():
        set_value(owned[name], np.asarray(value))


def set_value(var, value):
    from brian2.core.variables import DynamicArrayVariable
    if var.scalar:
        value = value.reshape(-1)[:1] if value.size else value
    elif isinstance(var, DynamicArrayVariable) and np.shape(var.get_value()) != value.shape:
        var.resize(value.shape if value.ndim > 1 else len(value))
    var.set_value(value.astype(var.dtype, copy=False))
