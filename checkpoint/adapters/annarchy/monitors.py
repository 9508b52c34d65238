"""What ANNarchy's monitors have recorded, saved and restored with ``monitors=True``.

A monitor of a ``Population`` or ``PopulationView`` keeps its recordings
in a C++ recorder whose containers ANNarchy's bindings expose for reading
and writing (``PopRecorder<id>_wrapper``), and its bookkeeping in Python
(when each variable started and stopped recording, which ones are
paused).  Both are captured, so that after a restart ``Monitor.get()``
and ``Monitor.times()`` return what an uninterrupted run returns.

In the file a monitor is a population of size 0 under the monitor's name
(the model's populations and monitors share one namespace), with ``free``
arrays:

* ``<variable>``: float64 ``[records, recorded neurons]`` (``r``,
  ``sum(exc)``, ...), the recorder's rows as ANNarchy keeps them;
* ``spike.ranks``, ``spike.counts``, ``spike.steps``: int64, the neurons
  the recorder holds spikes for, how many each, and their steps, neuron
  after neuron;

and its bookkeeping in ``meta.annarchy.monitors[<name>]``.  Recorders of
projections and dendrites, and BOLD monitors, are refused.
"""

import copy
import re

import numpy as np

from ...errors import CorruptCheckpointError, StructureMismatchError, UnsupportedObjectError
from ...formats.schema import is_int, is_number, require
from ...state import ArrayInfo, PopulationState
from .objects import exact_sum

SPIKE = "spike"
SPIKE_ARRAYS = ("spike.ranks", "spike.counts", "spike.steps")
_SUM = re.compile(r"sum\((\w+)\)$")


#: What to do with a monitor checkpoint cannot restore.  Not Monitor.stop(): in
#: ANNarchy 5.0.4 the C++ recorder of a projection stays registered when it is
#: stopped or deleted, and the next simulate() aborts the process ("pure
#: virtual method called"); paused and out of the network's list it is left
#: alone (tests/annarchy_monitor_advice.py runs this advice).
SET_ASIDE = ("Take its recordings with Monitor.get(), pause it (Monitor.pause()) and take it out of "
             "the network's monitors (net.get_monitors().remove(monitor)), keeping a reference to it; "
             "or save without monitors=True.  Do not stop or delete it: in ANNarchy 5.0.4 the next "
             "simulate() after Monitor.stop() of a projection's monitor aborts the process")


def population_monitors(network, population_names):
    """``{name: Monitor}`` of ``network``; refuse the kinds we cannot restore."""
    from ANNarchy.core.Population import Population
    from ANNarchy.core.PopulationView import PopulationView
    from ANNarchy.extensions.bold import BoldMonitor
    monitors = {}
    for monitor in network.get_monitors():
        if monitor.cyInstance is None:   # stopped: it holds nothing
            continue
        if isinstance(monitor, BoldMonitor) or not isinstance(monitor.object, (Population, PopulationView)):
            raise UnsupportedObjectError(
                f"monitors=True: monitor {monitor.name!r} records a {type(monitor.object).__name__}"
                f"{' (BOLD)' if isinstance(monitor, BoldMonitor) else ''}; checkpoint restores the "
                f"recordings of population monitors only. {SET_ASIDE}", obj=monitor.name)
        if monitor.name in population_names or monitor.name in monitors:
            raise UnsupportedObjectError(
                f"monitors=True: monitor {monitor.name!r} has the name of another population or monitor: "
                "give it its own name=", obj=monitor.name)
        monitors[monitor.name] = monitor
    return monitors


def _attribute(variable):
    """The recorder's container of a monitored variable (``sum(exc)`` is ``_sum_exc``)."""
    match = _SUM.match(variable)
    return f"_sum_{match.group(1)}" if match else variable


def _population(monitor):
    obj = monitor.object
    return getattr(obj, "population", obj)


def _recorded_size(monitor):
    """How many neurons each record holds."""
    ranks = getattr(monitor, "ranks", [-1])
    return _population(monitor).size if list(ranks) == [-1] else len(ranks)


def _recorded_ranks(monitor):
    ranks = getattr(monitor, "ranks", [-1])
    return np.arange(_population(monitor).size) if list(ranks) == [-1] else np.asarray(ranks)


# ----------------------------------------------------------------- capture


def capture(monitor, values=True):
    """``(PopulationState, meta)`` of one monitor; without ``values``,
    empty arrays of the right dtypes and ranks (for describe())."""
    arrays, info = {}, {}
    cy = monitor.cyInstance
    for variable in monitor.variables:
        if variable == SPIKE:
            spikes = getattr(cy, SPIKE) if values else {}
            ranks = np.fromiter(spikes, np.int64, count=len(spikes))
            counts = np.fromiter((len(spikes[r]) for r in spikes), np.int64, count=len(spikes))
            steps = np.fromiter((t for r in spikes for t in spikes[r]), np.int64, count=int(counts.sum()))
            arrays.update(zip(SPIKE_ARRAYS, (ranks, counts, steps)))
        else:
            rows = getattr(cy, _attribute(variable)) if values else []
            arrays[variable] = np.array(rows, np.float64).reshape(len(rows), _recorded_size(monitor))
    for name in arrays:
        info[name] = ArrayInfo("internal", "free", "step" if name == "spike.steps" else None)
    meta = {"object": _population(monitor).name, "variables": list(monitor.variables),
            "period": float(monitor._period), "period_offset": float(monitor._period_offset),
            "recording": {v: bool(getattr(cy, "record_" + _attribute(v))) for v in monitor.variables},
            "recorded": _json_times(monitor._recorded_variables),
            "last_recorded": _json_times(monitor._last_recorded_variables)}
    return PopulationState(monitor.name, 0, None, arrays, info), meta


def _json_times(times):
    """``{variable: {"start": [step, ...], "stop": [step or None, ...]}}`` with Python ints."""
    return {var: {key: [None if s is None else int(s) for s in t[key]] for key in ("start", "stop")}
            for var, t in times.items()}


# ----------------------------------------------------------------- restore


def check(monitor, values, meta, path):
    """Raise before any change unless the file's recordings fit ``monitor``;
    return what :func:`restore` writes.  ``meta`` has passed :func:`validate_meta`."""
    name = monitor.name
    if not isinstance(meta, dict):
        raise CorruptCheckpointError("the file has this monitor's recordings but not its bookkeeping",
                                     path=path, obj=name)
    if meta.get("object") != _population(monitor).name or meta.get("variables") != list(monitor.variables):
        raise StructureMismatchError(
            f"the file's monitor records {meta.get('variables')!r} of {meta.get('object')!r}, this one "
            f"{list(monitor.variables)!r} of {_population(monitor).name!r}", path=path, obj=name)
    for key in ("period", "period_offset"):
        saved = meta[key]
        if not np.isclose(saved, float(getattr(monitor, "_" + key))):
            raise StructureMismatchError(f"the file's monitor has {key} {saved!r} ms, this one "
                                         f"{getattr(monitor, '_' + key)!r} ms", path=path, obj=name)
    data = {}
    for variable in monitor.variables:
        if variable == SPIKE:
            data[SPIKE] = _checked_spikes(monitor, values, path)
        else:
            rows = values.get(variable)
            if rows is None or np.ndim(rows) != 2 or np.shape(rows)[1] != _recorded_size(monitor):
                raise CorruptCheckpointError(f"{variable!r} is not one row of {_recorded_size(monitor)} "
                                             "values per record", path=path, obj=name)
            data[variable] = np.asarray(rows, np.float64)
    # the schema checked the types; that they name this monitor's variables is checked here
    if set(meta["recording"]) != set(monitor.variables):
        raise CorruptCheckpointError("bad recording flags", path=path, obj=name)
    if any(set(meta[key]) != set(monitor.variables) for key in ("recorded", "last_recorded")):
        raise CorruptCheckpointError("bad recording times", path=path, obj=name)
    times = {key: {v: {"start": list(t["start"]), "stop": list(t["stop"])} for v, t in meta[key].items()}
             for key in ("recorded", "last_recorded")}
    return data, dict(meta["recording"]), times


def _checked_spikes(monitor, values, path):
    ranks, counts, steps = (values.get(key) for key in SPIKE_ARRAYS)
    ok = all(a is not None and np.ndim(a) == 1 and np.asarray(a).dtype.kind in "iu" for a in (ranks, counts, steps))
    if ok:
        ranks, counts, steps = (np.asarray(a, np.int64) for a in (ranks, counts, steps))
        ok = (len(ranks) == len(counts) and len(np.unique(ranks)) == len(ranks)
              and bool(np.all(np.isin(ranks, _recorded_ranks(monitor))))
              and (len(counts) == 0 or (counts.min() >= 0 and counts.max() <= len(steps)))
              and exact_sum(counts) == len(steps)   # in Python integers: an int64 sum may wrap
              and (len(steps) == 0 or steps.min() >= 0))
    if not ok:
        raise CorruptCheckpointError("the recorded spikes do not fit the monitored neurons", path=path,
                                     obj=monitor.name)
    return {int(r): part.tolist() for r, part in zip(ranks, np.split(steps, np.cumsum(counts)[:-1]))}


# ----------------------------------------------------------------- schema

#: the longest monitor period or offset a file may declare (ms; a century)
MAX_PERIOD_MS = 3.2e12


def validate_meta(meta, path):
    """``meta["annarchy"]`` of a file: its types, ranges and bounds, before
    anything uses it (called by the adapter's ``before_plan``)."""
    annarchy = meta.get("annarchy")
    if annarchy is None:
        return
    require(isinstance(annarchy, dict), "meta 'annarchy' is not an object", path)
    monitors = annarchy.get("monitors")
    require(monitors is None or isinstance(monitors, dict), "meta 'annarchy.monitors' is not an object", path)
    for name, entry in (monitors or {}).items():
        _validate_monitor(entry, path, name)


def _validate_monitor(entry, path, name):
    require(isinstance(entry, dict), "a monitor's bookkeeping is not an object", path, name)
    variables = entry.get("variables")
    require(isinstance(entry.get("object"), str), "a monitor's 'object' is not a name", path, name)
    require(isinstance(variables, list) and all(isinstance(v, str) for v in variables)
            and len(set(variables)) == len(variables), "a monitor's 'variables' are not distinct names",
            path, name)
    period, offset = entry.get("period"), entry.get("period_offset")
    require(is_number(period) and 0 < period <= MAX_PERIOD_MS,
            f"a monitor's period is {_shown(period)}, expected a number of ms in (0, {MAX_PERIOD_MS:g}]", path, name)
    require(is_number(offset) and 0 <= offset <= MAX_PERIOD_MS,
            f"a monitor's period_offset is {_shown(offset)}, expected a number of ms in [0, {MAX_PERIOD_MS:g}]",
            path, name)
    recording = entry.get("recording")
    require(isinstance(recording, dict) and all(isinstance(flag, bool) for flag in recording.values()),
            "bad recording flags", path, name)
    for key in ("recorded", "last_recorded"):
        require(_valid_times(entry.get(key)), "bad recording times", path, name)


def _shown(value):
    """A file's value for a message: a huge integer is not spelled out."""
    text = "a huge integer" if is_int(value) and abs(value) >= 10 ** 30 else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _valid_times(times):
    """``{variable: {"start": [step, ...], "stop": [step or None, ...]}}``."""
    def steps(values, optional):
        return isinstance(values, list) and values and all(
            (optional and v is None) or (is_int(v) and 0 <= v < 2 ** 62) for v in values)
    return isinstance(times, dict) and all(
        isinstance(t, dict) and steps(t.get("start"), False) and steps(t.get("stop"), True)
        and len(t["start"]) == len(t["stop"]) for t in times.values())


def restore(monitor, checked, undo_log):
    """Write what :func:`check` returned, its undo recorded in ``undo_log``
    first (so that a write failing midway is put back too)."""
    undo_log.add(_snapshot(monitor))
    data, recording, times = checked
    _write(monitor, data, recording, times)


def _snapshot(monitor):
    cy = monitor.cyInstance
    data = {v: copy.deepcopy(getattr(cy, _attribute(v))) for v in monitor.variables}
    recording = {v: bool(getattr(cy, "record_" + _attribute(v))) for v in monitor.variables}
    times = {"recorded": copy.deepcopy(monitor._recorded_variables),
             "last_recorded": copy.deepcopy(monitor._last_recorded_variables)}
    return lambda: _write(monitor, data, recording, times)


def _write(monitor, data, recording, times):
    cy = monitor.cyInstance
    for variable, value in data.items():
        setattr(cy, _attribute(variable), value if isinstance(value, (dict, list)) else value.tolist())
    for variable, flag in recording.items():
        setattr(cy, "record_" + _attribute(variable), flag)
    monitor._recorded_variables = copy.deepcopy(times["recorded"])
    monitor._last_recorded_variables = copy.deepcopy(times["last_recorded"])
