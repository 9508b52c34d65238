"""Adapter for Brian2 (runtime device: the numpy and Cython targets).

What is captured, per object, is what Brian2's own ``Network.store`` keeps,
plus what it misses:

* every array variable a group owns, in SI values with the unit recorded;
* a ``Synapses``' connectivity (``i``, ``j``), turned into the canonical CSR
  by post neuron, with the synapses' order in Brian2 as the projection's
  ``simulator_order`` (format version 3); the per-synapse arrays stay in
  Brian2's order, so that neither a save nor a load gathers or scatters
  them, and a restore rebuilds the synapses in the same order: the spike
  queues refer to synapses by their position, and summing in the same
  order gives the same bits.  (Files of versions 1 and 2 hold the arrays
  in CSR order and Brian2's order as an array ``_brian2_index``; they
  still load.);
* every pathway's delays (heterogeneous ones are not in ``store``'s state)
  and its spike queue (spikes in flight);
* the clocks, the network's ``t``, numpy's global random state and the
  contents (not the addresses) of the buffers behind ``rand()``/``randn()``
  in Cython code.

Monitors are left out unless ``monitors=True``.
"""

import ctypes
import inspect
import struct
import re
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from ..errors import (
    CheckpointWarning,
    CorruptCheckpointError,
    StructureMismatchError,
    UnsupportedObjectError,
)
from ..hashing import checksum
from ..restore import UndoLog
from ..state import ArrayInfo, NetworkState, PopulationState, ProjectionState, RngState, check_permutation
from .base import Adapter

ORDER = "_brian2_index"         # files of versions 1-2: per CSR synapse, its index in Brian2's order
NUMPY_RNG, BUFFER_RNG = "numpy", "brian2"
NUMPY_RNG_KIND, BUFFER_RNG_KIND = "numpy.random.RandomState", "brian2.random-buffers"
# Synapse arrays that the connectivity determines: rebuilt from the CSR.
_CONNECTIVITY_VARS = {"i", "j", "_synaptic_pre", "_synaptic_post", "_presynaptic_idx",
                      "_postsynaptic_idx", "N_incoming", "N_outgoing", "N"}


def _brian2():
    import brian2
    return brian2


class Brian2Adapter(Adapter):
    simulator = "brian2"
    captures_monitors = True
    restores_monitors = True
    restores_dt = True        # each clock's dt, as Brian2's own restore() does
    takes_simulator_order = True   # per-synapse arrays in Brian2's order: no gather, no scatter

    def __init__(self, obj, monitors=False):
        super().__init__(obj)
        b2 = _brian2()
        from brian2.devices.device import RuntimeDevice, get_device
        self.simulator_version = b2.__version__
        if not isinstance(get_device(), RuntimeDevice):
            raise UnsupportedObjectError(
                f"Brian2 device {type(get_device()).__name__} is not supported: checkpoint works "
                "with the runtime device (numpy and Cython targets)", obj=getattr(obj, "name", None))
        self.monitors = monitors
        self._described = {}   # projection name -> (Brian2 order, indptr, indices) seen by describe()
        if isinstance(obj, b2.Network):
            self.network, self.content = obj, "network"
            if isinstance(obj, b2.MagicNetwork):
                _collect_magic_objects(obj)
            objects = _all_objects(obj)
        elif isinstance(obj, (b2.Synapses, b2.Group)):
            self.network, self.content = None, "projection" if isinstance(obj, b2.Synapses) else "population"
            objects = [obj]
        else:
            raise UnsupportedObjectError(
                f"cannot checkpoint a Brian2 {type(obj).__name__}: pass a Network, a NeuronGroup "
                "or a Synapses", obj=getattr(obj, "name", None))
        self.populations = {o.name: o for o in objects if self._is_population(o)}
        self.projections = {o.name: o for o in objects if isinstance(o, b2.Synapses)}
        if self.content == "population" and not self.populations:
            raise UnsupportedObjectError(f"cannot checkpoint a Brian2 {type(obj).__name__} on its own",
                                         obj=obj.name)

    def _is_population(self, obj):
        b2 = _brian2()
        from brian2.groups.subgroup import Subgroup
        from brian2.synapses.synapses import SynapticPathway
        if not isinstance(obj, b2.Group) or isinstance(obj, (b2.Synapses, SynapticPathway, Subgroup)):
            return False
        return self.monitors or not _is_monitor(obj)

    # -------------------------------------------------------------- capture

    def capture(self, populations=True, projections=True):
        if self.content == "network":
            _warn_python_state(self.network)
        return self._capture(populations, projections, ordered=True)

    def _capture(self, populations, projections, ordered):
        t, step, dt, clocks = self._clocks()
        meta = self.base_meta(self.content, t * 1e3, step, None if dt is None else dt * 1e3)
        meta["brian2"] = {"t": t, "clocks": clocks}
        state = NetworkState(meta=meta)
        if populations:
            for name, group in self.populations.items():
                arrays, info = _owned_arrays(group, len(group) if not _is_monitor(group) else None)
                size = len(group) if not _is_monitor(group) else 0
                state.populations[name] = PopulationState(name, size, None, arrays, info)
                if _is_spike_generator(group):
                    meta["brian2"].setdefault(SPIKE_GENERATORS, {})[name] = _spike_generator_flags(group)
        if projections:
            for name, syn in self.projections.items():
                state.projections[name] = _capture_synapses(syn, queues=ordered)
        if self.content == "network":
            state.rng.update(_capture_rng())
        return state

    def _clocks(self):
        """``(t in s, step, dt in s, {clock: {timestep, dt}})``, clocks brought
        up to the network's time first, as ``Network.store`` does."""
        if self.network is None:
            clock = next(iter(self.populations.values() or self.projections.values())).clock
            return (float(clock.variables["t"].get_value().item()),
                    int(clock.variables["timestep"].get_value().item()), float(clock.dt_), {})
        net = self.network
        clocks = {o.clock for o in _all_objects(net)}
        for clock in clocks:
            clock._set_t_update_dt(target_t=net.t)
        by_name = {c.name: {"timestep": int(c.variables["timestep"].get_value().item()),
                            "dt": float(c.dt_)} for c in clocks}
        main = by_name.get("defaultclock") or (min(by_name.values(), key=lambda c: c["dt"]) if by_name else None)
        return (float(net.t_), main["timestep"] if main else 0, main["dt"] if main else None, by_name)

    def describe(self, populations=True, projections=True):
        # spike queues left empty: the plan needs only names, shapes and dtypes
        state = self._capture(populations, projections, ordered=False)
        self._described = {name: (p.simulator_order, p.indptr, p.indices) for name, p in state.projections.items()}
        return state

    def clock(self):
        t, step, _, _ = self._clocks()
        return t * 1e3, step

    # ------------------------------------------------------------- restore

    def before_plan(self, file_state, model_state, path):
        """Read Brian2's order and spike queues from a file of version 1 or 2; refuse names
        that Brian2 gave in another order.

        Brian2 names objects ``neurongroup``, ``neurongroup_1``, ... in the
        order they are created; a script that creates them in another order
        would silently load one group's state into another."""
        for proj in file_state.projections.values():
            if proj.simulator_order is None and ORDER in proj.arrays:   # values in CSR order
                proj.simulator_order = proj.arrays.pop(ORDER)
                proj.info.pop(ORDER, None)
            _legacy_queues(proj, path)
        if self.content != "network":
            return
        for section in ("populations", "projections"):
            file_names, model_objs = set(getattr(file_state, section)), getattr(self, section)
            only_file = file_names - set(model_objs)
            only_model = {n: o for n, o in model_objs.items() if n not in file_names}
            auto = [n for n, o in only_model.items() if _automatic_name(o)]
            auto_file = [n for n in only_file if any(_same_base(n, o) for o in only_model.values())]
            if auto and auto_file:
                raise StructureMismatchError(
                    f"Brian2's automatic names differ: the file has {sorted(auto_file)}, this network "
                    f"has {sorted(auto)}; give each object an explicit name=... when creating it "
                    "(e.g. NeuronGroup(..., name='exc')) in both scripts", path=path)

    def check_rng(self, plan):
        for name, rng in plan.rng.items():
            if name == NUMPY_RNG:
                _numpy_state(rng, plan.report.path)
            elif name == BUFFER_RNG:
                _check_buffers(rng, plan.report.path)

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
                    _restore_group(self.populations[name], values)
                    if _is_spike_generator(self.populations[name]):
                        _restore_spike_generator_flags(self.populations[name], plan.file_meta, name)
                else:
                    for step in _restore_synapses(self.projections[name], values, checked[(section, name)]):
                        undo.add(step)
            if plan.clock is not None and self.network is not None:
                _restore_clocks(self.network, plan)
            for name, rng in plan.rng.items():
                _restore_rng(name, rng)
        return undo

    def _check(self, key, values, plan):
        """Raise before any change; return the :class:`_SynapseRestore` to apply."""
        section, name = key
        path = plan.report.path
        if section == "populations":
            _check_free_arrays(self.populations[name], values, path, name)
            return None
        syn = self.projections[name]
        model_order, indptr, indices = self._described.get(name) or _csr(syn)
        if name in plan.connectivity:
            indptr, indices = plan.connectivity[name]
        nnz = len(indices)
        order, in_brian2_order = plan.simulator_order.get(name, (None, False))
        if order is None:  # a file of another simulator, or parameters only
            order = np.arange(nnz) if name in plan.connectivity else model_order
        elif not np.array_equal(order, model_order):
            order = check_permutation(order, nnz, path, name)
        _check_queues(syn, values, nnz, path, name)
        rebuild = name in plan.connectivity or not np.array_equal(order, model_order)
        return _SynapseRestore(order, np.asarray(indptr, np.int64), np.asarray(indices, np.int64), rebuild,
                               in_brian2_order)

    def _snapshot(self, by_object, plan, checked):
        """The undo record, with Brian2's own ``_full_state``: of groups, of
        spike queues, and of Synapses that are rebuilt (the per-synapse
        arrays of the others are swapped, see :func:`_set_synapse_value`)."""
        states, arrays, python_side = [], [], []
        for section, name in by_object:
            if section == "populations":
                group = self.populations[name]
                states.append((group, group._full_state()))
                if _is_spike_generator(group):   # its Python-side copy of the spikes
                    python_side.append((group, group._neuron_index, group._spike_time))
                continue
            syn = self.projections[name]
            states += [(pathway, pathway._full_state()) for pathway in syn._pathways]
            if checked[(section, name)].rebuild:  # rebuilt: every array changes
                states.append((syn, syn._full_state()))
                own = {id(var) for var in _owned(syn).values()}  # Brian2's state misses heterogeneous delays
                arrays += [(var, np.array(var.get_value(), copy=True))
                           for var in _synapse_variables(syn).values() if id(var) not in own]
        clocks = None
        if plan.clock is not None and self.network is not None:
            clocks = (self.network.t_, [(c, c._full_state()) for c in {o.clock for o in _all_objects(self.network)}])
        rng = _capture_rng() if plan.rng else None

        def undo():
            for part, saved in states:
                part._restore_from_full_state(saved)
            for group, neuron_index, spike_time in python_side:
                group._neuron_index, group._spike_time = neuron_index, spike_time
            for var, value in arrays:
                _set_value(var, value)
            if clocks is not None:
                self.network.t_ = clocks[0]
                for clock, saved in clocks[1]:
                    clock._restore_from_full_state(saved)
            if rng is not None:
                for name, r in rng.items():
                    _restore_rng(name, r)
        return undo


# ---------------------------------------------------------------- objects


def _collect_magic_objects(magic):
    """Fill ``magic_network`` with the objects the magic ``run()`` would
    simulate: those in the namespace of the user's code that called
    save/load (the first frame outside this package), as ``brian2.store()``
    does; without this it holds nothing between runs."""
    frame, depth = inspect.currentframe(), 0   # Brian2 counts levels from its caller: this frame
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "checkpoint":
        frame, depth = frame.f_back, depth + 1
    magic._update_magic_objects(level=depth)
    if not magic.objects:
        raise UnsupportedObjectError("no Brian2 object in the namespace of the code that called checkpoint; "
                                     "pass a Network(...) of your objects instead", obj="magic_network")


def _warn_python_state(net):
    """A ``network_operation`` runs Python code whose state (its closure,
    the globals it changes) Brian2 does not see, nor do we: say so at save."""
    from brian2 import NetworkOperation
    operations = sorted(f"{o.name} ({getattr(o.function, '__name__', '?')})" for o in _all_objects(net)
                        if isinstance(o, NetworkOperation))
    if operations:
        warnings.warn(f"network_operation {', '.join(operations)}: the Python state it keeps (closures, "
                      "globals) is not captured; a resumed run starts from what the script sets up",
                      CheckpointWarning, stacklevel=5)


def _all_objects(net):
    from brian2.core.network import _get_all_objects
    return sorted(_get_all_objects(net.objects), key=lambda o: o.name)


def _is_monitor(obj):
    from brian2.monitors import EventMonitor, PopulationRateMonitor, StateMonitor
    return isinstance(obj, (EventMonitor, StateMonitor, PopulationRateMonitor))


def _base_name(obj):
    try:
        default = inspect.signature(type(obj).__init__).parameters["name"].default
    except (KeyError, TypeError, ValueError):
        return None
    return default.rstrip("*") if isinstance(default, str) and default.endswith("*") else None


def _automatic_name(obj):
    return _same_base(obj.name, obj)


def _same_base(name, obj):
    """Whether ``name`` looks like one Brian2 would give an ``obj`` unnamed."""
    base = _base_name(obj)
    return base is not None and re.fullmatch(re.escape(base) + r"(_\d+)?", name) is not None


def _unit(var):
    from brian2.units.fundamentalunits import DIMENSIONLESS, get_unit
    return "1" if var.dim is DIMENSIONLESS else str(get_unit(var.dim))


def _kind(name, var):
    if name.startswith("_") or name in ("lastspike", "not_refractory", "lastupdate", "count"):
        return "internal"
    return "parameter" if var.constant else "variable"


def _owned(obj, owners=None):
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


def _owned_arrays(group, n):
    arrays, info = {}, {}
    for name, var in _owned(group).items():
        scope = _scope(var, n)
        value = np.asarray(var.get_value())
        arrays[name] = value.reshape(()) if scope == "global" else value
        info[name] = ArrayInfo(_kind(name, var), scope, _unit(var))
    return arrays, info


# ---------------------------------------------------------------- synapses


_csr_cache = weakref.WeakKeyDictionary()   # Synapses -> (fingerprint, (perm, indptr, indices))


def _csr(syn):
    """Brian2's synapses as CSR by post neuron: ``(perm, indptr, indices)``,
    ``perm[k]`` being the Brian2 index of the k-th synapse in CSR order.

    Read-only arrays, cached per Synapses under a checksum of its pre/post
    arrays: periodic checkpoints of a network whose connectivity does not
    change skip the sort.
    """
    v = syn.variables
    pre_b, post_b = v["_synaptic_pre"].get_value(), v["_synaptic_post"].get_value()
    offsets = int(v["_source_offset"].get_value()), int(v["_target_offset"].get_value())
    fingerprint = (len(pre_b), len(syn.target), offsets, checksum(pre_b), checksum(post_b))
    cached = _csr_cache.get(syn)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    pre = np.asarray(pre_b, np.int64) - offsets[0]
    post = np.asarray(post_b, np.int64) - offsets[1]
    perm = _stable_argsort(post, len(syn.target))
    counts = np.bincount(post, minlength=len(syn.target))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    result = (perm, indptr, pre[perm])
    for array in result:
        array.flags.writeable = False
    _csr_cache[syn] = (fingerprint, result)
    return result


def _stable_argsort(values, bound):
    """Stable argsort of integers in ``[0, bound)``: as uint16 numpy uses a
    radix sort, 8x faster than the merge sort it uses for wider integers."""
    if bound <= 1 << 16:
        values = values.astype(np.uint16)
    perm = np.argsort(values, kind="stable")
    return perm.astype(np.int32) if len(perm) < 1 << 31 else perm


def _pathway_prefix(pathway):
    return "" if pathway.prepost == "pre" and pathway.objname == "pre" else f"{pathway.objname}."


def _synapse_variables(syn):
    """``{file name: variable}`` of a Synapses and its pathways, without the
    arrays that the connectivity determines."""
    own = _owned(syn)
    out = {name: var for name, var in own.items() if name not in _CONNECTIVITY_VARS}
    known = {id(var) for var in own.values()}
    for pathway in syn._pathways:
        # a pathway's delays belong to the Synapses but are listed only by the pathway
        prefix = _pathway_prefix(pathway)
        out.update((prefix + name, var) for name, var in _owned(pathway, {syn.name, pathway.name}).items()
                   if id(var) not in known)
    return out


def _capture_synapses(syn, queues=True):
    """The Synapses' state: per-synapse arrays as Brian2 holds them (its
    live arrays, not copies), in Brian2's order, which is the projection's
    ``simulator_order``.  Without ``queues`` the spike queues are left
    empty: enough for describe(), which needs names, shapes and dtypes."""
    perm, indptr, indices = _csr(syn)
    state = ProjectionState(syn.name, syn.source.name, syn.target.name, (len(syn.target), len(syn.source)),
                            indptr, indices, target=None, simulator_order=perm, arrays_in_simulator_order=True)
    nnz = len(perm)
    for name, var in _synapse_variables(syn).items():
        scope, value = _synapse_array(var, nnz)
        state.arrays[name], state.info[name] = value, ArrayInfo(_kind(name, var), scope, _unit(var))
    for pathway in syn._pathways:
        for name, array in _queue_arrays(pathway, contents=queues).items():
            state.arrays[_pathway_prefix(pathway) + name] = array
            state.info[_pathway_prefix(pathway) + name] = ArrayInfo("internal", "free", None)
    return state


def _synapse_array(var, nnz):
    """``(scope, value as Brian2 holds it)`` of one Synapses variable."""
    from brian2.core.variables import DynamicArrayVariable
    value = np.asarray(var.get_value())
    if var.scalar and value.shape in ((), (1,)):
        return "global", value.reshape(())
    if isinstance(var, DynamicArrayVariable) and value.shape == (nnz,) and var.size == nnz:
        return "synapse", value
    return "free", value


def _queue_arrays(pathway, contents=True):
    """A spike queue as ``_queue_synapses`` (the Brian2 synapse index of
    every spike in flight, in delivery order, int32), ``_queue_counts``
    (how many of them each step delivers, from the next step on: one per
    slot of the ring), ``_queue_shape`` ([ring length, row capacity]) and
    ``_queue_dt``; the same for the Cython and the Python queue.  Without
    ``contents``: the same arrays, empty."""
    queue = pathway.queue
    if queue is None:
        return {}
    dt = None
    if not contents:
        synapses, counts, ring, capacity = np.zeros(0, np.int32), np.zeros(0, np.int64), 0, 0
    else:
        state = queue._full_state()
        if isinstance(state[1], np.ndarray):         # Python SpikeQueue: (dt, spikes, X.shape)
            dt, spikes, (ring, capacity) = state
            rows = np.asarray(spikes, np.int64).reshape(-1, 2)
            rows = rows[_stable_argsort(rows[:, 0], ring)] if len(rows) else rows
            synapses, counts = rows[:, 1], np.bincount(rows[:, 0], minlength=ring)
        else:                                        # Cython SpikeQueue: (offset, [[synapse, ...], ...])
            offset, slots = state
            ring, capacity = len(slots), 0
            ordered = slots[offset:] + slots[:offset]
            counts = np.fromiter(map(len, ordered), np.int64, count=ring)
            # struct packs Python ints into bytes faster than numpy converts them (13 against 21 ns each)
            synapses = np.frombuffer(b"".join(struct.pack(f"<{len(slot)}i", *slot) for slot in ordered), "<i4")
        synapses = synapses.astype(np.int32 if len(synapses) == 0 or synapses.max() < 2 ** 31 else np.int64,
                                   copy=False)
    return {"_queue_synapses": synapses, "_queue_counts": np.asarray(counts, np.int64),
            "_queue_shape": np.array([ring, capacity], np.int64),
            "_queue_dt": np.array([np.nan if dt is None else dt], np.float64)}


def _legacy_queues(proj, path):
    """A file of version 1 or 2 holds a queue as ``_queue``, rows of [steps
    until delivery, synapse]: read it as today's arrays."""
    for key in [k for k in proj.arrays if k.endswith("_queue")]:
        rows, shape = np.asarray(proj.arrays[key]), proj.arrays.get(key + "_shape")
        shape = None if shape is None else np.asarray(shape)
        if (rows.ndim != 2 or rows.shape[1] != 2 or rows.dtype.kind not in "iu" or shape is None
                or shape.shape != (2,) or shape.dtype.kind not in "iu"   # a float NaN would raise in int()
                or not 1 <= int(shape[0]) <= MAX_QUEUE_CELLS
                or (len(rows) and (rows[:, 0].min() < 0 or rows[:, 0].max() >= int(shape[0])))):
            raise CorruptCheckpointError("spike queue does not fit its ring", path=path, obj=f"{proj.name}.{key}")
        ring = int(shape[0])
        rows = rows[_stable_argsort(rows[:, 0], ring)] if len(rows) else rows
        synapses = rows[:, 1]
        fits = len(synapses) == 0 or (synapses.min() >= 0 and synapses.max() < 2 ** 31)
        proj.arrays[key + "_synapses"] = synapses.astype(np.int32 if fits else np.int64)   # as Brian2 holds them
        proj.arrays[key + "_counts"] = np.bincount(rows[:, 0], minlength=ring).astype(np.int64)
        for new in ("_synapses", "_counts"):
            proj.info[key + new] = ArrayInfo("internal", "free", None)
        del proj.arrays[key], proj.info[key]


def _check_queues(syn, values, nnz, path, name):
    for pathway in syn._pathways:
        key = _pathway_prefix(pathway) + "_queue"
        parts = [values.get(key + part) for part in ("_synapses", "_counts", "_shape")]
        if all(part is None for part in parts):
            continue
        synapses, counts, shape = (None if part is None else np.asarray(part) for part in parts)
        ok = (synapses is not None and counts is not None and shape is not None
              and synapses.ndim == 1 and synapses.dtype.kind in "iu" and counts.ndim == 1
              and counts.dtype.kind in "iu" and shape.shape == (2,) and shape.dtype.kind in "iu"
              and 1 <= shape[0] and 0 <= shape[1] and int(shape[0]) * max(int(shape[1]), 1) <= MAX_QUEUE_CELLS
              and len(counts) == shape[0])
        ok = ok and (len(counts) == 0 or counts.min() >= 0) and int(counts.sum()) == len(synapses)
        ok = ok and (len(synapses) == 0 or (synapses.min() >= 0 and synapses.max() < nnz))
        if not ok:
            raise CorruptCheckpointError("spike queue does not fit the synapses", path=path, obj=f"{name}.{key}")


_EMPTY_SLOT = memoryview(np.zeros(0, np.int32))
#: A spike queue's ring length times row capacity (the Python queue's array)
#: that a file may declare: Brian2's ring is its longest delay in steps.
MAX_QUEUE_CELLS = 1 << 28


def _restore_queue(pathway, synapses, counts, shape, dt):
    from brian2.devices.device import get_device
    if pathway.queue is None:
        pathway.queue = get_device().spike_queue(pathway.source.start, pathway.source.stop)
    ring, capacity = int(shape[0]), int(shape[1])
    if hasattr(pathway.queue, "X"):              # Python SpikeQueue
        rows = np.column_stack([np.repeat(np.arange(ring), counts), synapses]).astype(int)
        capacity = max(capacity, int(counts.max(initial=0)), 1)
        dt = None if dt is None or np.isnan(dt[0]) else float(dt[0])
        pathway.queue._restore_from_full_state((dt, rows, (ring, capacity)))
    else:
        # Cython fills its vectors from any iterable of ints; a memoryview is twice as fast as a list
        # (viewed as native int32: Cython refuses a memoryview of format "<i", which a file's array may have).
        # Empty slots share one empty view, so memory follows the spikes, not the ring's length.
        native = np.ascontiguousarray(synapses, np.int32).view(np.int32)
        ends = np.cumsum(counts)
        slots = [_EMPTY_SLOT] * ring
        for k in np.flatnonzero(counts):
            slots[k] = memoryview(native[ends[k] - counts[k]:ends[k]])
        pathway.queue._restore_from_full_state((0, slots))


class _SynapseRestore(NamedTuple):
    """What :meth:`Brian2Adapter._check` decided for one Synapses."""

    order: np.ndarray       # CSR synapse k is the file's Brian2 synapse order[k]
    indptr: np.ndarray      # the CSR to restore
    indices: np.ndarray
    rebuild: bool           # the synapses are rebuilt (other connectivity, or another order)
    in_brian2_order: bool   # the file's per-synapse values are in its Brian2 order, not CSR


def _restore_synapses(syn, values, todo):
    """Rebuild the synapses in the file's Brian2 order if they differ, then
    set every array.  Returns the undo steps of what the snapshot left out."""
    nnz = len(todo.indices)
    if todo.rebuild:
        _rebuild_synapses(syn, todo.order, todo.indptr, todo.indices)
    variables = _synapse_variables(syn)
    assigned = [(variables[name], value) for name, value in values.items() if name in variables]
    # a scatter is needed only for values in CSR order (a file of version 1 or 2)
    order = None if todo.in_brian2_order else np.asarray(todo.order, np.int64)
    undo = []
    try:
        # a scatter runs without the GIL: two at a time
        with ThreadPoolExecutor(2, thread_name_prefix="checkpoint-brian2") as pool:
            for step in pool.map(lambda item: _set_synapse_value(*item, order, nnz, swap=not todo.rebuild),
                                 assigned):
                undo.append(step)
    except BaseException:
        for step in reversed(undo):
            step()
        raise
    for pathway in syn._pathways:
        key = _pathway_prefix(pathway) + "_queue"
        if key + "_synapses" in values:
            _restore_queue(pathway, np.asarray(values[key + "_synapses"]), np.asarray(values[key + "_counts"]),
                           np.asarray(values[key + "_shape"], np.int64), values.get(key + "_dt"))
    return undo


def _rebuild_synapses(syn, order, indptr, indices):
    nnz = len(indices)
    order = np.asarray(order, np.int64)
    post = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    for variable in syn._registered_variables:  # Synapses._resize refuses to shrink
        variable.resize(nnz)
    syn.variables["N"].set_value(nnz)
    v = syn.variables
    pre_b, post_b = np.empty(nnz, np.int64), np.empty(nnz, np.int64)
    pre_b[order], post_b[order] = indices, post
    v["_synaptic_pre"].set_value(pre_b + int(v["_source_offset"].get_value()))
    v["_synaptic_post"].set_value(post_b + int(v["_target_offset"].get_value()))
    for counter in ("N_incoming", "N_outgoing"):
        v[counter].get_value()[:] = 0
    syn._update_synapse_numbers(0)


def _set_synapse_value(var, value, order, nnz, swap=False):
    """Set one Synapses variable from the file's ``value``: in CSR order,
    scattered by ``order``; in Brian2's order when ``order`` is None.

    With ``swap``, a per-synapse array goes into a new buffer that takes
    the old one's place, as ``DynamicArray1D.resize`` does when it grows;
    the old buffer is the undo record (returned as a callable), so no copy
    of it is made.  A value in Brian2's order that the load owns (read
    from the file for this load) is that new buffer itself.  Without
    ``swap``, the undo is the caller's snapshot.
    """
    from brian2.core.variables import DynamicArrayVariable
    from brian2.devices.device import get_device
    value = np.asarray(value)
    per_synapse = value.ndim == 1 and len(value) == nnz and isinstance(var, DynamicArrayVariable) \
        and not var.scalar
    if not per_synapse:
        old = np.array(var.get_value(), copy=True) if swap else None
        _set_value(var, value)
        return (lambda: _set_value(var, old)) if swap else _nothing
    live = var.get_value()  # the runtime device hands out the live array
    if not swap and live.shape == (nnz,):
        if order is None:
            live[...] = value
        else:
            live[order] = value
        return _nothing
    if order is None:
        owned = value.dtype == var.dtype and value.flags.writeable and value.flags.c_contiguous
        full = value if owned else np.array(value, var.dtype)
    else:
        full = np.empty(nnz, var.dtype)
        full[order] = value
    if not swap:
        var.set_value(full)
        return _nothing
    dynamic = get_device().get_value(var, access_data=False)
    old = dynamic._data, dynamic.data, dynamic.shape
    dynamic._data, dynamic.data, dynamic.shape = full, full[:nnz], (nnz,)

    def undo():
        dynamic._data, dynamic.data, dynamic.shape = old
    return undo


def _nothing():
    pass


# ---------------------------------------------------------------- groups


def _check_free_arrays(group, values, path, name):
    from brian2.core.variables import DynamicArrayVariable
    owned = _owned(group)
    for var_name, value in values.items():
        var = owned.get(var_name)
        if var is not None and not isinstance(var, DynamicArrayVariable) and not var.scalar \
                and np.shape(var.get_value()) != np.shape(value):
            raise StructureMismatchError(f"the file has shape {np.shape(value)}, the model needs "
                                         f"{np.shape(var.get_value())}", path=path, obj=f"{name}.{var_name}")


SPIKE_GENERATORS = "spike_generators"   # meta["brian2"][...]: {name: {spikes_changed, previous_dt}}


def _is_spike_generator(group):
    from brian2 import SpikeGeneratorGroup
    return isinstance(group, SpikeGeneratorGroup)


def _spike_generator_flags(group):
    """What a SpikeGeneratorGroup keeps in Python to decide whether its time
    bins are valid (Brian2's own ``_full_state`` stores the same)."""
    previous = group._previous_dt
    return {"spikes_changed": bool(group._spikes_changed),
            "previous_dt": None if previous is None else float(np.asarray(previous).reshape(-1)[0])}


def _restore_spike_generator_flags(group, file_meta, name):
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


def _restore_group(group, values):
    owned = _owned(group)
    for name, value in values.items():
        _set_value(owned[name], np.asarray(value))


def _set_value(var, value):
    from brian2.core.variables import DynamicArrayVariable
    if var.scalar:
        value = value.reshape(-1)[:1] if value.size else value
    elif isinstance(var, DynamicArrayVariable) and np.shape(var.get_value()) != value.shape:
        var.resize(value.shape if value.ndim > 1 else len(value))
    var.set_value(value.astype(var.dtype, copy=False))


# ---------------------------------------------------------------- clocks


def _restore_clocks(net, plan):
    saved = plan.file_meta.get("brian2") or {}
    clocks = {c.name: c for c in {o.clock for o in _all_objects(net)}}
    if "t" in saved:
        net.t_ = float(saved["t"])
    else:
        net.t_ = float(plan.clock["time"]) / 1e3
    for name, entry in (saved.get("clocks") or {}).items():
        clock = clocks.get(name)
        if clock is None or not isinstance(entry, dict):
            continue
        clock.dt_ = float(entry["dt"])          # as Brian2's restore() does: dt is the clock's state
        clock.variables["timestep"].set_value(int(entry["timestep"]))
        clock.variables["t"].set_value(int(entry["timestep"]) * float(clock.dt_))
    if not saved.get("clocks"):
        for clock in clocks.values():
            clock._set_t_update_dt(target_t=net.t)


# ------------------------------------------------------------ random state

_libc = None


def _c_library():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None)
        _libc.malloc.restype = ctypes.c_void_p
        _libc.malloc.argtypes = [ctypes.c_size_t]
    return _libc


def _buffer_size():
    from brian2.codegen.generators.cython_generator import _BUFFER_SIZE
    return _BUFFER_SIZE


def _capture_rng():
    from brian2.devices.device import get_device
    device = get_device()
    state = np.random.get_state(legacy=False)
    numpy_rng = RngState(NUMPY_RNG, NUMPY_RNG_KIND,
                         {"bit_generator": state["bit_generator"], "pos": int(state["state"]["pos"]),
                          "has_gauss": int(state["has_gauss"]), "gauss": float(state["gauss"])},
                         {"key": np.asarray(state["state"]["key"], np.uint32).copy()})
    buffers, indices = {}, {}
    for kind in ("rand", "randn"):
        index = int(getattr(device, f"{kind}_buffer_index")[0])
        address = int(getattr(device, f"{kind}_buffer")[0])
        indices[f"{kind}_index"] = index
        # Only a partly used buffer matters: at index 0 Cython draws a new one.
        if index and address:
            view = (ctypes.c_double * _buffer_size()).from_address(address)
            buffers[f"{kind}_buffer"] = np.ctypeslib.as_array(view).copy()
        else:
            buffers[f"{kind}_buffer"] = np.zeros(0)
    buffer_rng = RngState(BUFFER_RNG, BUFFER_RNG_KIND, dict(indices, buffer_size=_buffer_size()), buffers)
    return {NUMPY_RNG: numpy_rng, BUFFER_RNG: buffer_rng}


def _numpy_state(rng, path):
    state = rng.state if isinstance(rng.state, dict) else {}
    key = rng.arrays.get("key")
    try:
        full = {"bit_generator": state["bit_generator"], "state": {"key": key, "pos": state["pos"]},
                "has_gauss": state["has_gauss"], "gauss": state["gauss"]}
        np.random.RandomState().set_state(full)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CorruptCheckpointError(f"numpy random state rejected: {exc}", path=path, obj="rng numpy") from None
    return full


def _check_buffers(rng, path):
    state = rng.state if isinstance(rng.state, dict) else {}
    size = _buffer_size()
    for kind in ("rand", "randn"):
        index, buffer = state.get(f"{kind}_index"), rng.arrays.get(f"{kind}_buffer")
        ok = (isinstance(index, int) and 0 <= index < size and buffer is not None and buffer.dtype == np.float64
              and (len(buffer) == size if index else len(buffer) in (0, size)))
        if not ok or state.get("buffer_size") != size:
            raise CorruptCheckpointError(f"{kind}() buffer state does not fit Brian2's ({size} numbers)",
                                         path=path, obj=f"rng {rng.name}")


def _restore_rng(name, rng):
    if name == NUMPY_RNG:
        np.random.set_state(_numpy_state(rng, None))
        return
    from brian2.devices.device import get_device
    device = get_device()
    for kind in ("rand", "randn"):
        index, buffer = rng.state[f"{kind}_index"], rng.arrays[f"{kind}_buffer"]
        pointer = getattr(device, f"{kind}_buffer")
        if index and len(buffer):
            if not pointer[0]:
                # Cython frees this buffer with free() when it draws the next one
                pointer[0] = _c_library().malloc(buffer.nbytes)
            ctypes.memmove(int(pointer[0]), buffer.ctypes.data, buffer.nbytes)
        getattr(device, f"{kind}_buffer_index")[0] = index
