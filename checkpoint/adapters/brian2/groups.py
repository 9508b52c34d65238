"""Restoring a group's own arrays, and the Python-side state of a
SpikeGeneratorGroup that Brian2 keeps beside them."""

import numpy as np

from ...errors import CorruptCheckpointError, StructureMismatchError
from .clocks import SPIKE_GENERATORS
from .objects import owned_variables


def check_free_arrays(group, values, path, name):
    from brian2.core.variables import DynamicArrayVariable

    if is_spike_generator(group):
        check_spike_generator(group, values, path, name)
    owned = owned_variables(group)
    for var_name, value in values.items():
        var = owned.get(var_name)
        if (
            var is not None
            and not isinstance(var, DynamicArrayVariable)
            and not var.scalar
            and np.shape(var.get_value()) != np.shape(value)
        ):
            raise StructureMismatchError(
                f"the file has shape {np.shape(value)}, the model needs {np.shape(var.get_value())}",
                path=path,
                obj=f"{name}.{var_name}",
            )


def check_spike_generator(group, values, path, name):
    """Refuse, before any change, the spikes Brian2's ``set_spikes`` would
    refuse: a file's spikes load without its checks, and a neuron index
    beyond the group, a time that is negative or not a number, or spikes
    out of order failed the next ``run()`` (or played wrongly)."""

    def value(var):
        return np.asarray(values[var] if var in values else group.variables[var].get_value())

    indices, times, bins = value("neuron_index"), value("spike_time"), value("_timebins")
    period, last = value("period").reshape(-1), value("_lastindex").reshape(-1)

    def refuse(why, var):
        raise CorruptCheckpointError(why, path=path, obj=f"{name}.{var}")

    if (
        indices.ndim != 1
        or indices.dtype.kind not in "iu"
        or times.shape != indices.shape
        or bins.shape != indices.shape
    ):
        refuse("the spikes' neuron indices, times and time bins are not one of each per spike", "neuron_index")
    if len(indices) and (indices.min() < 0 or indices.max() >= len(group)):
        refuse(f"a spike's neuron index is outside the group of {len(group)}", "neuron_index")
    if times.dtype.kind != "f" or (len(times) and not (np.all(np.isfinite(times)) and times.min() >= 0)):
        refuse("a spike time is negative or not a finite number", "spike_time")
    # Brian2 holds them sorted by time, then by neuron (its check of one spike per bin relies on it)
    later = (times[1:] > times[:-1]) | ((times[1:] == times[:-1]) & (indices[1:] > indices[:-1]))
    if not np.all(later):
        refuse("the spikes are not sorted by time and neuron, each once", "spike_time")
    if (
        period.shape != (1,)
        or period.dtype.kind != "f"
        or not (period[0] >= 0)
        or (period[0] > 0 and len(times) and times.max() >= period[0])
    ):
        refuse("the period is negative, not a number, or not after every spike", "period")
    if last.shape != (1,) or last.dtype.kind not in "iu" or not 0 <= last[0] <= len(indices):
        refuse("the index of the next spike is not within the spikes", "_lastindex")


def is_spike_generator(group):
    from brian2 import SpikeGeneratorGroup

    return isinstance(group, SpikeGeneratorGroup)


def spike_generator_flags(group):
    """What a SpikeGeneratorGroup keeps in Python to decide whether its time
    bins are valid (Brian2's own ``_full_state`` stores the same)."""
    previous = group._previous_dt
    return {
        "spikes_changed": bool(group._spikes_changed),
        "previous_dt": None if previous is None else float(np.asarray(previous).reshape(-1)[0]),
    }


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
