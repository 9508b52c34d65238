"""Brian2's monitors as recorders (:class:`~checkpoint.adapters.base.Recorder`).

``take`` copies what a monitor recorded and empties it in place, as its own
``resize`` does when it grows: the dynamic arrays shrink to 0 records and
``N`` is reset, so the next step appends from the start (numpy and Cython
targets share these arrays).  A SpikeMonitor's ``count`` is left alone: it
counts over the whole run.  Times are converted from Brian2's seconds to ms
(``t * 1000.0``); other values keep their SI unit.
"""

import numpy as np

from ..base import Recorder
from .objects import unit_of


class _MonitorRecorder(Recorder):
    def __init__(self, monitor, variables):
        self.monitor, self.name, self._variables = monitor, monitor.name, list(variables)

    def _values(self, var):
        values = np.array(self.monitor.variables[var].get_value(), copy=True)
        return values * 1000.0 if var == "t" else values

    def take(self):
        taken = {var: self._values(var) for var in self._variables}
        self._empty()
        return taken

    def units(self):
        return {var: "ms" if var == "t" else unit_of(self.monitor.variables[var]) for var in self._variables}


class EventRecorder(_MonitorRecorder):
    """A SpikeMonitor or EventMonitor: ``i``, ``t`` and the variables it records."""

    kind = "events"

    def __init__(self, monitor):
        others = sorted(set(monitor.record_variables) - {"i", "t"})
        super().__init__(monitor, ["i", "t"] + others)

    def _empty(self):
        self.monitor.variables["N"].set_value(0)
        for var in self.monitor.record_variables:
            self.monitor.variables[var].resize(0)


class StateRecorder(_MonitorRecorder):
    """A StateMonitor: ``t`` and each recorded variable, times x recorded neurons."""

    kind = "samples"

    def __init__(self, monitor):
        super().__init__(monitor, ["t"] + sorted(monitor.record_variables))

    def index(self):
        return np.asarray(self.monitor.variables["_indices"].get_value(), np.int64).copy()

    def _empty(self):
        self.monitor.resize(0)


class RateRecorder(_MonitorRecorder):
    """A PopulationRateMonitor: ``t`` and ``rate`` (Hz), one column."""

    kind = "samples"

    def __init__(self, monitor):
        super().__init__(monitor, ["t", "rate"])

    def _values(self, var):
        values = super()._values(var)
        return values.reshape(-1, 1) if var == "rate" else values

    def index(self):
        return np.zeros(1, np.int64)

    def _empty(self):
        self.monitor.variables["N"].set_value(0)  # its resize leaves N to the template
        self.monitor.resize(0)


def recorders(objects):
    """A recorder for each monitor among ``objects`` that records something."""
    from brian2.monitors import EventMonitor, PopulationRateMonitor, StateMonitor

    found = []
    for obj in objects:
        if isinstance(obj, EventMonitor) and obj.record:
            found.append(EventRecorder(obj))
        elif isinstance(obj, StateMonitor) and obj.record_variables and len(obj.variables["_indices"].get_value()):
            found.append(StateRecorder(obj))
        elif isinstance(obj, PopulationRateMonitor):
            found.append(RateRecorder(obj))
    return found
