"""The ANNarchy adapter: what it captures, in which order it restores.

The concepts live beside it: :mod:`.native` (the C++ accessor),
:mod:`.objects` (which objects, their names and members),
:mod:`.capture` (reading them), :mod:`.connectivity` (LIL against CSR),
:mod:`.queues` (spikes in flight), :mod:`.writes` (a restore's checked
writes), :mod:`.monitors` and :mod:`.rng`.
"""

import warnings

from ...errors import CheckpointWarning, UnsupportedObjectError
from ...restore import UndoLog
from ...state import NetworkState
from ..base import Adapter
from . import monitors as monitor_state
from .capture import Findings, capture_population, capture_projection
from .native import native_state
from .objects import annarchy, require_supported, shares_weights
from .rng import capture_rng, check_rng, restore_rng, rng_undo
from .writes import Writes


class ANNarchyAdapter(Adapter):
    simulator = "ANNarchy"
    captures_monitors = True
    restores_monitors = True   # population monitors; others are refused (see .monitors)
    records = True             # population monitors, streamed by a Checkpointer: see .recordings

    def __init__(self, obj, monitors=False):
        super().__init__(obj)
        ann = annarchy()
        from ANNarchy.core.Population import Population
        from ANNarchy.core.Projection import Projection
        from ANNarchy.intern.NetworkManager import NetworkManager
        self.simulator_version = ann.__version__
        if isinstance(obj, ann.Network):
            self.network, self.content = obj, "network"
            pops, projs = obj.get_populations(), obj.get_projections()
        elif isinstance(obj, Population):
            self.network, self.content = NetworkManager().get_network(obj.net_id), "population"
            pops, projs = [obj], []
        elif isinstance(obj, Projection):
            self.network, self.content = NetworkManager().get_network(obj.net_id), "projection"
            pops, projs = [], [obj]
        else:
            raise UnsupportedObjectError(
                f"cannot checkpoint an ANNarchy {type(obj).__name__}: pass a Network, a Population "
                "or a Projection", obj=getattr(obj, "name", None))
        #: Convolution, Pooling, Copy, Transpose: weights shared with a filter or another projection
        self.shared = [p.name for p in projs if shares_weights(p)]
        if self.content == "projection" and self.shared:
            raise UnsupportedObjectError(
                f"cannot checkpoint the {type(obj).__name__} projection {obj.name!r} on its own: its weights "
                "are a filter your script sets (or another projection's); save the network", obj=obj.name)
        projs = [p for p in projs if not shares_weights(p)]
        require_supported(self.network, projs, getattr(obj, "name", None))
        self.populations = {p.name: p for p in pops}
        # what population monitors recorded (a network's, with monitors=True)
        self.monitors = (monitor_state.population_monitors(obj, self.populations)
                         if monitors and self.content == "network" else {})
        self.projections = {p.name: p for p in projs}
        self.native = native_state(self.network)

    # ------------------------------------------------------------- capture

    def capture(self, populations=True, projections=True):
        if projections and self.shared:
            warnings.warn(f"ANNarchy projections {', '.join(self.shared)} share their weights (Convolution, "
                          "Pooling, Copy, Transpose): not saved; the script that rebuilds the network sets "
                          "their filters, and a change it made to them during the run is not in the file",
                          CheckpointWarning, stacklevel=4)
        return self._capture(populations, projections, values=True)[0]

    def describe(self, populations=True, projections=True):
        """Shapes, dtypes and connectivity; values are not read.  Its
        findings: each array's scope and each projection's rows, for apply."""
        state, state.findings = self._capture(populations, projections, values=False)
        return state

    def _capture(self, populations, projections, values):
        """``(NetworkState, Findings)``."""
        net = self.network
        state = NetworkState(meta=self.base_meta(self.content, net.time, net.current_step, net.dt))
        findings = Findings()
        if populations:
            for name, pop in self.populations.items():
                state.populations[name] = capture_population(self.native, pop, values)
        if projections:
            for name, proj in self.projections.items():
                state.projections[name], findings.csr[name] = capture_projection(self.native, proj, net.dt, values)
        if populations and self.monitors:
            state.meta["annarchy"] = {"monitors": {}}
            for name, monitor in self.monitors.items():
                state.populations[name], state.meta["annarchy"]["monitors"][name] = \
                    monitor_state.capture(monitor, values)
        if self.content == "network":
            state.rng.update(capture_rng(self.native, net))
        findings.info = {(section, name): obj.info for section in ("populations", "projections")
                         for name, obj in getattr(state, section).items()}
        return state, findings

    def clock(self):
        return float(self.network.time), int(self.network.current_step)

    def recorders(self):
        from .recordings import recorders
        return recorders(self.network) if self.content == "network" else []

    # ------------------------------------------------------------- restore

    def before_plan(self, file_state, model_state, path):
        """Refuse a file whose ``meta["annarchy"]`` is not of its schema."""
        monitor_state.validate_meta(file_state.meta, path)

    def check_rng(self, plan):
        check_rng(plan.rng, self.native, plan.report.path)

    def apply_reversibly(self, plan):
        """Check what ANNarchy would crash on, record the undo of every
        object touched, then write."""
        self.check_rng(plan)
        by_object = plan.by_object()
        monitors = self._check_monitors(by_object, plan)   # taken out of by_object
        findings = plan.findings if isinstance(plan.findings, Findings) else self.describe().findings
        objects = {("populations", n): p for n, p in self.populations.items()}
        objects.update({("projections", n): p for n, p in self.projections.items()})
        # every check happens here, before any change
        writes = Writes(self.native, self.network.dt, objects, findings, by_object, plan)
        with UndoLog() as undo:
            undo.add(writes.undo_record())
            undo.add(self._clock_and_rng_undo(plan))
            for name, checked in monitors.items():
                monitor_state.restore(self.monitors[name], checked, undo)
            writes.apply()
            if plan.clock is not None:
                self.network.current_step = int(plan.clock["step"])
            self.restore_generators(plan)
        return undo

    def restore_generators(self, plan):
        """Set the random generators: the last step of a restore (a seam
        where the tests inject a failure midway)."""
        for name, rng in plan.rng.items():
            restore_rng(self.native, self.network, name, rng)

    def _clock_and_rng_undo(self, plan):
        step, generators = self.network.current_step, rng_undo(self.native, self.network, plan.rng)

        def undo():
            self.network.current_step = step
            generators()
        return undo

    def _check_monitors(self, by_object, plan):
        """``{monitor name: what to write}``, checked; removes them from ``by_object``."""
        saved = ((plan.file_meta.get("annarchy") or {}).get("monitors") or {}) \
            if isinstance(plan.file_meta.get("annarchy"), dict) else {}
        checked = {}
        for name in self.monitors:
            values = by_object.pop(("populations", name), None)
            if values is not None:
                meta = saved.get(name) if isinstance(saved, dict) else None
                checked[name] = monitor_state.check(self.monitors[name], values, meta, plan.report.path)
        return checked
