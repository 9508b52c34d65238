"""Adapter for the embedded :class:`checkpoint.Network`."""

import numpy as np

from .._version import __version__
from ..network import Network, Population, Projection
from ..state import ArrayInfo, NetworkState, PopulationState, ProjectionState, RngState
from ..restore import UndoLog, swap_contents
from .base import Adapter, Recorder

RNG_NAME = "network"
RNG_KIND = "numpy.random.Generator"


class EmbeddedAdapter(Adapter):
    simulator = "checkpoint.Network"
    shardable = True  # each rank holds its own embedded network
    records = True  # its SpikeRecorder and StateRecorder

    def __init__(self, obj):
        super().__init__(obj)
        if isinstance(obj, Network):
            self.network, self.content = obj, "network"
            self.populations, self.projections = obj.populations, obj.projections
        elif isinstance(obj, Population):
            self.network, self.content = obj.network, "population"
            self.populations, self.projections = {obj.name: obj}, {}
        elif isinstance(obj, Projection):
            self.network, self.content = obj.network, "projection"
            self.populations, self.projections = {}, {obj.name: obj}
        self.simulator_version = __version__

    @staticmethod
    def _info(group):
        return {v: ArrayInfo(group.kind(v), group.scope(v)) for v in group._values}

    def capture(self, populations=True, projections=True):
        net = self.network
        state = NetworkState(meta=self.base_meta(self.content, net.time, net.step, net.dt))
        if populations:
            for name, pop in self.populations.items():
                state.populations[name] = PopulationState(
                    name, pop.size, pop.geometry, dict(pop._values), self._info(pop), pop._ids, pop.global_size
                )
        if projections:
            for name, proj in self.projections.items():
                state.projections[name] = ProjectionState(
                    name,
                    proj.pre.name,
                    proj.post.name,
                    proj.shape,
                    proj.indptr,
                    proj.indices,
                    proj.target,
                    dict(proj._values),
                    self._info(proj),
                )
        if self.content == "network":
            state.rng[RNG_NAME] = RngState(RNG_NAME, RNG_KIND, net.rng.bit_generator.state)
        return state

    def clock(self):
        return self.network.time, self.network.step

    def recorders(self):
        return [_Recording(r) for r in self.network.recorders.values()] if self.content == "network" else []

    # -- restore ----------------------------------------------------------------

    def apply_reversibly(self, plan):
        self.check_rng(plan)
        with UndoLog() as undo:
            for name, (indptr, indices) in plan.connectivity.items():
                undo.add(self._set_connectivity(name, indptr, indices))
            for a in plan.assignments:
                undo.add(self._assign(a))
            if plan.clock is not None:
                undo.add(self._set_clock(plan.clock))
            for name, rng in plan.rng.items():
                undo.add(self.restore_generator(name, rng))
        return undo

    def _swap_in(self, a):
        """Swap the file's values into the model's array, keeping the old
        ones in the file's buffer as the undo record (or copy, and keep a
        copy, when the layouts differ)."""
        target = self._array(a.section, a.name, a.var)
        value = a.value
        if a.replace:
            return self._replace_array(a.section, a.name, a.var, value.astype(target.dtype, copy=False))
        if value.dtype == target.dtype and target.flags.c_contiguous and value.flags.c_contiguous:
            swap_contents(target, value)
            return lambda: swap_contents(target, value)
        old = target.copy()
        np.copyto(target, value, casting="safe")
        return lambda: np.copyto(target, old)

    def _group(self, section, name):
        return (self.populations if section == "populations" else self.projections)[name]

    def _array(self, section, name, var):
        return self._group(section, name)._values[var]

    def _assign(self, a):
        """Hand the freshly read, verified array to the model; the old one is
        the undo record.  No copy: a load costs what reading the file costs.
        References to the old array taken before the load keep old values."""
        values = self._group(a.section, a.name)._values
        old = values[a.var]
        if a.value.dtype != old.dtype or not a.value.flags.writeable or not a.value.flags.c_contiguous:
            return self._swap_in(a)
        values[a.var] = a.value
        return lambda: values.__setitem__(a.var, old)

    def _replace_array(self, section, name, var, value):
        values = self._group(section, name)._values
        old = values[var]
        values[var] = value if value.flags.writeable else value.copy()
        return lambda: values.__setitem__(var, old)

    def _set_connectivity(self, name, indptr, indices):
        proj = self.projections[name]
        old = proj._indptr, proj._indices
        object.__setattr__(proj, "_indptr", indptr.copy())
        object.__setattr__(proj, "_indices", indices.copy())

        def undo():
            object.__setattr__(proj, "_indptr", old[0])
            object.__setattr__(proj, "_indices", old[1])

        return undo

    def _set_clock(self, clock):
        net, old = self.network, self.network.step
        net.step = clock["step"]
        return lambda: setattr(net, "step", old)

    def restore_generator(self, name, rng):
        """The restore's last step (a seam the contract suite's failure
        injection uses, as restore_generators is Brian2's and ANNarchy's);
        returns its undo."""
        generator = self.network.rng
        old = generator.bit_generator.state
        if type(generator.bit_generator).__name__ != rng.state["bit_generator"]:
            replacement = np.random.Generator(getattr(np.random, rng.state["bit_generator"])())
            replacement.bit_generator.state = rng.state
            self.network.rng = replacement
            return lambda: setattr(self.network, "rng", generator)
        generator.bit_generator.state = rng.state
        return lambda: setattr(generator.bit_generator, "state", old)


class _Recording(Recorder):
    """A recorder of the embedded network (``checkpoint.network``, a layer
    below the adapters' base) as the :class:`Recorder` contract sees it."""

    def __init__(self, recorder):
        self._recorder, self.name, self.kind = recorder, recorder.name, recorder.kind

    def take(self):
        return self._recorder.take()

    def units(self):
        return self._recorder.units()

    def index(self):
        index = getattr(self._recorder, "index", None)
        return index() if index is not None else None
