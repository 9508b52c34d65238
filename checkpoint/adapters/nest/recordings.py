"""NEST's recording devices as recorders (:class:`~checkpoint.adapters.base.Recorder`).

A spike_recorder, multimeter, voltmeter or weight_recorder that records
to memory is a recorder named ``"<model>@<node id>"``.  ``take`` reads its
``events`` and empties it (``n_events = 0``, NEST's own way).  Times are
the run's global time: NEST's clock plus the adapter's time offset (NEST
restarts its clock at 0 in a restored kernel), so they go on across
restarts.

* spike_recorder: ``events``: ``i`` (sender node id), ``t``;
* weight_recorder: ``events``: ``i`` (sender), ``t``, and ``targets``,
  ``weights``, ... as NEST records them;
* multimeter, voltmeter: ``samples``: ``t`` and each recorded variable,
  times x recorded neurons (``index``: their node ids, the targets of the
  device's connections).  Events that do not make that grid (a neuron
  connected in mid-run) are refused, never reshaped wrongly.

A device recording elsewhere (``record_to`` "ascii", "sionlib", ...) is
left out, with a warning: its data are in its own files.
"""

import warnings

import numpy as np

from ...errors import CheckpointError, CheckpointWarning
from ..base import Recorder

MODELS = ("spike_recorder", "multimeter", "voltmeter", "weight_recorder")


class _DeviceRecorder(Recorder):
    def __init__(self, node, model, offset):
        self.node, self.model, self._offset = node, model, offset
        self.name = f"{model}@{node.global_id}"

    def _events(self):
        events = self.node.get("events")
        self.node.set(n_events=0)
        return {key: np.asarray(value) for key, value in events.items()}

    def _times(self, events):
        return np.asarray(events.get("times", np.zeros(0)), np.float64) + self._offset()


class EventRecorder(_DeviceRecorder):
    kind = "events"

    def take(self):
        events = self._events()
        taken = {"i": np.asarray(events.get("senders", np.zeros(0)), np.int64), "t": self._times(events)}
        for key in sorted(set(events) - {"senders", "times"}):
            taken[key] = events[key]
        return taken


class SampleRecorder(_DeviceRecorder):
    kind = "samples"

    def __init__(self, node, model, offset):
        super().__init__(node, model, offset)
        import nest

        targets = nest.GetConnections(source=node).get("target")
        self._index = np.unique(np.atleast_1d(np.asarray(targets, np.int64)))
        self._variables = list(node.get("record_from"))
        self._boundary = None  # the sample at a restore's time, which a restored kernel never takes

    def drop(self):
        """After a restore: empty the device, and take the sample at the
        restored time from the restored state.  An uninterrupted kernel
        samples at every multiple of ``interval``; a restored one starts at
        0 and first samples one interval later, so without this the sample
        at every restart's time would be lost."""
        self._events()
        self._boundary = None
        now, interval = self._offset() + 0.0, float(self.node.get("interval"))
        import nest

        if now <= 0 or abs(now / interval - round(now / interval)) > 1e-9 or not len(self._index):
            return
        try:
            neurons = nest.NodeCollection(self._index.tolist())
            values = {var: np.asarray(neurons.get(var), np.float64).reshape(1, -1) for var in self._variables}
        except nest.NESTError:
            warnings.warn(
                f"{self.name}: the sample at the restart's time ({now} ms) cannot be read from the "
                "restored state; it is missing from the recordings",
                CheckpointWarning,
                stacklevel=4,
            )
            return
        self._boundary = {"t": np.array([now]), **values}

    def index(self):
        return self._index.copy()

    def units(self):
        return {"t": "ms", **{var: "mV" for var in self._variables if var.startswith("V_")}}

    def take(self):
        events = self._events()
        senders = np.asarray(events.get("senders", np.zeros(0)), np.int64)
        times = self._times(events)
        order = np.lexsort((senders, times))
        width = len(self._index)
        count = len(senders) // width if width else 0
        if width * count != len(senders) or not np.array_equal(senders[order], np.tile(self._index, count)):
            raise CheckpointError(
                f"{self.name}: its events do not form a grid of times x its {width} recorded "
                "neurons (connected in mid-run?): recordings=True cannot lay them out"
            )
        taken = {"t": times[order][::width] if width else np.zeros(0)}
        for var in self._variables:
            values = np.asarray(events.get(var, np.zeros(0)), np.float64)  # an empty device may lack the key
            taken[var] = values[order].reshape(count, width)
        boundary, self._boundary = self._boundary, None
        if boundary is not None:
            taken = {var: np.concatenate([boundary[var], taken[var]]) for var in taken}
        return taken


def recorders(time_offset):
    """A recorder for each recording device of the kernel that records to memory."""
    import nest

    found = []
    for node in nest.GetNodes({"element_type": "recorder"}):
        model = node.get("model")
        if model not in MODELS:
            continue
        if node.get("record_to") != "memory":
            warnings.warn(
                f"{model}@{node.global_id} records to {node.get('record_to')!r}, not to memory: its "
                "data are in its own files, not in the recordings",
                CheckpointWarning,
                stacklevel=4,
            )
            continue
        cls = SampleRecorder if model in ("multimeter", "voltmeter") else EventRecorder
        found.append(cls(node, model, time_offset))
    return found
