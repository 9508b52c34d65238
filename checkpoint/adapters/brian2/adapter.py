"""The Brian2 adapter: what it captures, in which order it restores.

The concepts live beside it: :mod:`.objects` (which objects, their
names and arrays), :mod:`.groups`, :mod:`.synapses`, :mod:`.queues`
(spikes in flight), :mod:`.clocks` and :mod:`.rng`.
"""

import numpy as np

from ...errors import StructureMismatchError, UnsupportedObjectError
from ...restore import UndoLog
from ...state import NetworkState, PopulationState, check_permutation
from ..base import Adapter
from .clocks import SPIKE_GENERATORS, read_clocks, restore_clocks, validate_meta
from .groups import (
    check_free_arrays,
    is_spike_generator,
    restore_group,
    restore_spike_generator_flags,
    set_value,
    spike_generator_flags,
)
from .objects import (
    all_objects,
    automatic_name,
    collect_magic_objects,
    is_monitor,
    owned_arrays,
    owned_variables,
    same_base,
    warn_python_state,
)
from .queues import check_queues, legacy_queues
from .rng import BUFFER_RNG, NUMPY_RNG, capture_rng, check_buffers, numpy_state, restore_rng
from .synapses import ORDER, SynapseRestore, capture_synapses, csr_of, restore_synapses, synapse_variables


class Brian2Adapter(Adapter):
    simulator = "brian2"
    captures_monitors = True
    restores_monitors = True
    restores_dt = True  # each clock's dt, as Brian2's own restore() does
    takes_simulator_order = True  # per-synapse arrays in Brian2's order: no gather, no scatter
    records = True  # its monitors: see .recordings

    def __init__(self, obj, monitors=False):
        super().__init__(obj)
        import brian2 as b2
        from brian2.devices.device import RuntimeDevice, get_device

        self.simulator_version = b2.__version__
        if not isinstance(get_device(), RuntimeDevice):
            raise UnsupportedObjectError(
                f"Brian2 device {type(get_device()).__name__} is not supported: checkpoint works "
                "with the runtime device (numpy and Cython targets)",
                obj=getattr(obj, "name", None),
            )
        self.monitors = monitors
        if isinstance(obj, b2.Network):
            self.network, self.content = obj, "network"
            if isinstance(obj, b2.MagicNetwork):
                collect_magic_objects(obj)
            objects = all_objects(obj)
            # the magic network empties its objects after every run(): its
            # clocks are those of the objects collected here
            self._objects = objects
        elif isinstance(obj, (b2.Synapses, b2.Group)):
            self.network, self.content = None, "projection" if isinstance(obj, b2.Synapses) else "population"
            objects = [obj]
        else:
            raise UnsupportedObjectError(
                f"cannot checkpoint a Brian2 {type(obj).__name__}: pass a Network, a NeuronGroup or a Synapses",
                obj=getattr(obj, "name", None),
            )
        self.populations = {o.name: o for o in objects if self._is_population(o)}
        self.projections = {o.name: o for o in objects if isinstance(o, b2.Synapses)}
        if self.content == "population" and not self.populations:
            raise UnsupportedObjectError(f"cannot checkpoint a Brian2 {type(obj).__name__} on its own", obj=obj.name)

    def _is_population(self, obj):
        import brian2 as b2
        from brian2.groups.subgroup import Subgroup
        from brian2.synapses.synapses import SynapticPathway

        if not isinstance(obj, b2.Group) or isinstance(obj, (b2.Synapses, SynapticPathway, Subgroup)):
            return False
        return self.monitors or not is_monitor(obj)

    # -------------------------------------------------------------- capture

    def capture(self, populations=True, projections=True):
        if self.content == "network":
            warn_python_state(self.network)
        return self._capture(populations, projections, ordered=True)

    def _capture(self, populations, projections, ordered):
        t, step, dt, clocks = self._clocks()
        meta = self.base_meta(self.content, t * 1e3, step, None if dt is None else dt * 1e3)
        meta["brian2"] = {"t": t, "clocks": clocks}
        state = NetworkState(meta=meta)
        if populations:
            for name, group in self.populations.items():
                arrays, info = owned_arrays(group, len(group) if not is_monitor(group) else None)
                size = len(group) if not is_monitor(group) else 0
                state.populations[name] = PopulationState(name, size, None, arrays, info)
                if is_spike_generator(group):
                    meta["brian2"].setdefault(SPIKE_GENERATORS, {})[name] = spike_generator_flags(group)
        if projections:
            for name, syn in self.projections.items():
                state.projections[name] = capture_synapses(syn, queues=ordered)
        if self.content == "network":
            state.rng.update(capture_rng())
        return state

    def _clocks(self):
        groups = list(self.populations.values()) + list(self.projections.values())
        return read_clocks(self.network, groups, self._network_objects())

    def _network_objects(self):
        """The network's objects now, or (the magic network between runs,
        which holds none) those collected when this adapter was made."""
        if self.network is None:
            return None
        return all_objects(self.network) or self._objects

    def describe(self, populations=True, projections=True):
        # spike queues left empty: the plan needs only names, shapes and dtypes
        state = self._capture(populations, projections, ordered=False)
        # apply needs the synapses' order and CSR as describe saw them: no second sort
        state.findings = {name: (p.simulator_order, p.indptr, p.indices) for name, p in state.projections.items()}
        return state

    def clock(self):
        t, step, _, _ = self._clocks()
        return t * 1e3, step

    def recorders(self):
        from .recordings import recorders

        return recorders(all_objects(self.network)) if self.network is not None else []

    # ------------------------------------------------------------- restore

    def before_plan(self, file_state, model_state, path):
        """Read Brian2's order and spike queues from a file of version 1 or 2; refuse names
        that Brian2 gave in another order.

        Brian2 names objects ``neurongroup``, ``neurongroup_1``, ... in the
        order they are created; a script that creates them in another order
        would silently load one group's state into another."""
        validate_meta(file_state.meta, path)
        for proj in file_state.projections.values():
            if proj.simulator_order is None and ORDER in proj.arrays:  # values in CSR order
                proj.simulator_order = proj.arrays.pop(ORDER)
                proj.info.pop(ORDER, None)
            legacy_queues(proj, path)
        if self.content != "network":
            return
        for section in ("populations", "projections"):
            file_names, model_objs = set(getattr(file_state, section)), getattr(self, section)
            only_file = file_names - set(model_objs)
            only_model = {n: o for n, o in model_objs.items() if n not in file_names}
            auto = [n for n, o in only_model.items() if automatic_name(o)]
            auto_file = [n for n in only_file if any(same_base(n, o) for o in only_model.values())]
            if auto and auto_file:
                raise StructureMismatchError(
                    f"Brian2's automatic names differ: the file has {sorted(auto_file)}, this network "
                    f"has {sorted(auto)}; give each object an explicit name=... when creating it "
                    "(e.g. NeuronGroup(..., name='exc')) in both scripts",
                    path=path,
                )

    def check_rng(self, plan):
        for name, rng in plan.rng.items():
            if name == NUMPY_RNG:
                numpy_state(rng, plan.report.path)
            elif name == BUFFER_RNG:
                check_buffers(rng, plan.report.path)

    def apply_reversibly(self, plan):
        """Validate what Brian2 would crash on, snapshot every object touched
        with Brian2's own ``_full_state`` (the first undo record), then apply."""
        self.check_rng(plan)
        by_object = plan.by_object()
        checked = {key: self._check(key, values, plan) for key, values in by_object.items()}
        with UndoLog() as undo:
            undo.add(self._snapshot(by_object, plan, checked))
            for (section, name), values in by_object.items():
                if section == "populations":
                    restore_group(self.populations[name], values)
                    if is_spike_generator(self.populations[name]):
                        restore_spike_generator_flags(self.populations[name], plan.file_meta, name)
                else:
                    restore_synapses(self.projections[name], values, checked[(section, name)], undo)
            if plan.clock is not None and self.network is not None:
                restore_clocks(self.network, plan, self._network_objects())
            self.restore_generators(plan)
        return undo

    def restore_generators(self, plan):
        """Set numpy's and the Cython buffers' random state: the last step of
        a restore (a seam where the tests inject a failure midway)."""
        for name, rng in plan.rng.items():
            restore_rng(name, rng)

    def _check(self, key, values, plan):
        """Raise before any change; return the :class:`SynapseRestore` to apply."""
        section, name = key
        path = plan.report.path
        if section == "populations":
            check_free_arrays(self.populations[name], values, path, name)
            return None
        syn = self.projections[name]
        model_order, indptr, indices = (plan.findings or {}).get(name) or csr_of(syn)
        if name in plan.connectivity:
            indptr, indices = plan.connectivity[name]
        nnz = len(indices)
        order, in_brian2_order = plan.simulator_order.get(name, (None, False))
        if order is None:  # a file of another simulator, or parameters only
            order = np.arange(nnz) if name in plan.connectivity else model_order
        elif not np.array_equal(order, model_order):
            order = check_permutation(order, nnz, path, name)
        check_queues(syn, values, nnz, path, name)
        rebuild = name in plan.connectivity or not np.array_equal(order, model_order)
        return SynapseRestore(
            order, np.asarray(indptr, np.int64), np.asarray(indices, np.int64), rebuild, in_brian2_order
        )

    def _snapshot(self, by_object, plan, checked):
        """The undo record, with Brian2's own ``_full_state``: of groups, of
        spike queues, and of Synapses that are rebuilt (the per-synapse
        arrays of the others are swapped, see :func:`set_synapse_value`)."""
        states, arrays, python_side = [], [], []
        for section, name in by_object:
            if section == "populations":
                group = self.populations[name]
                states.append((group, group._full_state()))
                if is_spike_generator(group):  # its Python-side copy of the spikes
                    python_side.append((group, group._neuron_index, group._spike_time))
                continue
            syn = self.projections[name]
            states += [(pathway, pathway._full_state()) for pathway in syn._pathways]
            if checked[(section, name)].rebuild:  # rebuilt: every array changes
                states.append((syn, syn._full_state()))
                own = {id(var) for var in owned_variables(syn).values()}  # Brian2's state misses heterogeneous delays
                arrays += [
                    (var, np.array(var.get_value(), copy=True))
                    for var in synapse_variables(syn).values()
                    if id(var) not in own
                ]
        clocks = None
        if plan.clock is not None and self.network is not None:
            clocks = (self.network.t_, [(c, c._full_state()) for c in {o.clock for o in self._network_objects()}])
        rng = capture_rng() if plan.rng else None

        def undo():
            for part, saved in states:
                part._restore_from_full_state(saved)
            for group, neuron_index, spike_time in python_side:
                group._neuron_index, group._spike_time = neuron_index, spike_time
            for var, value in arrays:
                set_value(var, value)
            if clocks is not None:
                self.network.t_ = clocks[0]
                for clock, saved in clocks[1]:
                    clock._restore_from_full_state(saved)
            if rng is not None:
                for name, r in rng.items():
                    restore_rng(name, r)

        return undo
