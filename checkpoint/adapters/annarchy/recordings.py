"""ANNarchy's monitors as recorders (:class:`~checkpoint.adapters.base.Recorder`).

``take`` is ``Monitor.get(keep=False)``, ANNarchy's own way of handing
over what a monitor recorded and emptying it.  A monitor that records
``spike`` is an ``events`` recorder (``i`` the rank in the monitored
population or view, ``t`` = step x dt in ms, in the order of (step, rank));
one that records other variables a ``samples`` recorder (``t``, and each
variable records x recorded neurons); a monitor recording both is two
recorders, ``<name>`` (spikes) and ``<name>.samples``.  Sample times are
the steps ANNarchy records at (every ``period`` from the monitor's start,
shifted by ``period_offset``) between two takes; a paused or restarted
monitor, whose steps ANNarchy does not hand over, is refused at the take.
Monitors of projections and BOLD monitors record nothing here (their
recordings stay in the monitor: take them with ``get()``).
"""

import numpy as np

from ...errors import CheckpointError
from ..base import Recorder

_SPIKES = ("spike", "axon_spike")


def _population(monitor):
    obj = monitor.object
    return getattr(obj, "population", obj)


class _MonitorRecorder(Recorder):
    def __init__(self, network, monitor, variables, name):
        self.network, self.monitor, self._variables, self.name = network, monitor, list(variables), name

    def _get(self):
        got = self.monitor.get(self._variables, keep=False, reshape=False, force_dict=True)
        return got


class SpikeRecorder(_MonitorRecorder):
    kind = "events"

    def take(self):
        got = self._get()[self._variables[0]]
        ranks = [np.full(len(times), rank, np.int64) for rank, times in got.items()]
        steps = [np.asarray(times, np.int64) for times in got.values()]
        i = np.concatenate(ranks) if ranks else np.zeros(0, np.int64)
        step = np.concatenate(steps) if steps else np.zeros(0, np.int64)
        order = np.lexsort((i, step))
        return {"i": i[order], "t": step[order] * float(self.network.dt)}


class SampleRecorder(_MonitorRecorder):
    kind = "samples"

    def __init__(self, network, monitor, variables, name):
        super().__init__(network, monitor, variables, name)
        # the step the monitor started at gives the phase of its period; the
        # Checkpointer asks for its recorders once, so this is from before any take
        self._phase = self._since = self._start()

    def _start(self):
        starts = {tuple(self.monitor._recorded_variables[var]["start"]) for var in self._variables}
        if len(starts) != 1 or len(next(iter(starts))) != 1:
            raise CheckpointError(f"ANNarchy monitor {self.monitor.name!r} was paused or restarted since it was "
                                  "last taken: recordings=True cannot say when each record was made")
        return int(next(iter(starts))[0])

    def index(self):
        ranks = list(getattr(self.monitor, "ranks", [-1]) or [-1])
        size = _population(self.monitor).size
        return np.arange(size, dtype=np.int64) if ranks == [-1] else np.asarray(ranks, np.int64)

    def units(self):
        return {"t": "ms"}

    def take(self):
        now = int(self.network.current_step)
        self._start()   # refuses a monitor paused since the last take
        got = self._get()
        width = len(self.index())
        arrays = {var: np.asarray(got[var], np.float64).reshape(len(got[var]), width) for var in self._variables}
        steps = self._steps(self._since, now)
        lengths = {len(a) for a in arrays.values()}
        if lengths and lengths != {len(steps)}:
            raise CheckpointError(f"ANNarchy monitor {self.monitor.name!r}: {sorted(lengths)} records between "
                                  f"steps {self._since} and {now}, where its period gives {len(steps)} (was it "
                                  "paused or restarted?): recordings=True cannot say when each was recorded")
        self._since = now
        return {"t": steps * float(self.network.dt), **arrays}

    def drop(self):
        self._get()   # what it held is from before a restore: the run goes on from now
        self._since = int(self.network.current_step)

    def _steps(self, start, stop):
        dt = float(self.network.dt)
        period = max(1, int(round(float(self.monitor._period) / dt)))
        offset = int(round(float(getattr(self.monitor, "_period_offset", 0) or 0) / dt))
        first = start + (self._phase + offset - start) % period
        return np.arange(first, stop, period, dtype=np.int64)


def recorders(network):
    """A recorder per population monitor of ``network`` (two for one that
    records spikes and other variables)."""
    from ANNarchy.core.Population import Population
    from ANNarchy.core.PopulationView import PopulationView
    found = []
    for monitor in network.get_monitors():
        if monitor.cyInstance is None or not isinstance(monitor.object, (Population, PopulationView)):
            continue
        spikes = [v for v in monitor.variables if v in _SPIKES]
        others = [v for v in monitor.variables if v not in _SPIKES]
        for var in spikes[:1]:
            found.append(SpikeRecorder(network, monitor, [var], monitor.name))
        if others:
            found.append(SampleRecorder(network, monitor, others, monitor.name + (".samples" if spikes else "")))
    return found
