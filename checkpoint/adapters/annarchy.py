"""Adapter for ANNarchy 5 (CPU, one thread or OpenMP, LIL projections).

Every data member of the C++ structures ANNarchy generates for a compiled
network is read and written in bulk through a small accessor that
checkpoint compiles beside the network (see :mod:`.annarchy_native`).  So
besides every parameter and variable of every population and projection,
a checkpoint holds what ANNarchy's own ``save`` loses and its Python
bindings do not expose:

* last spike times, refractory counters, the spikes of the last step;
* event-driven trace timestamps (``_last_event``) of every synapse;
* spikes in flight: the pre-synaptic populations' delay queues and, for
  non-uniform delays, each projection's ring buffer;
* the C++ random engines (``std::mt19937``) and the network's numpy
  ``default_rng``; simulated time and step.

Connectivity is stored as the canonical CSR by post neuron; synapses of
one post neuron keep ANNarchy's order, so a restore rebuilds ANNarchy's
exact structure and sums in the same order.  Delays are stored in ms.
"""

import logging
import re
import warnings
import weakref
from pathlib import Path

import numpy as np

from ..errors import CheckpointWarning, CorruptCheckpointError, StructureMismatchError, UnsupportedObjectError
from ..state import ArrayInfo, NetworkState, PopulationState, ProjectionState, RngState
from ..restore import UndoLog
from .base import Adapter, check_numpy_rng_state
from . import annarchy_monitors
from .annarchy_native import NativeState, level_counts, wrapper_of

ENGINE_RNG, NUMPY_RNG = "annarchy", "numpy"
ENGINE_RNG_KIND, NUMPY_RNG_KIND = "annarchy.mt19937", "numpy.random.Generator"
LENGTHS = ".lengths"           # suffix of the companion array of a nested container
IN_FLIGHT = "_delayed_spikes"  # a projection's ring buffer of spikes (non-uniform delays)
#: Members that describe structure, not state; connectivity is read separately.
_STRUCTURAL = {"size", "max_delay", "idx_delay", "post_rank", "pre_rank",
               # OpenMP scratch, one slot per thread, reset every step: not state, and
               # sized by the thread count (a restart may use another)
               "local_spiked_sizes"}
#: Per-neuron members besides the model's own attributes.
_PER_NEURON = {"last_spike", "refractory_remaining", "in_ref"}
_RANDOM = re.compile(r"rand_\d+$")   # redrawn at the start of every step before use
_NATIVE = weakref.WeakKeyDictionary()  # ANNarchy wrapper module -> NativeState
log = logging.getLogger("checkpoint")


def _annarchy():
    import ANNarchy
    return ANNarchy


class ANNarchyAdapter(Adapter):
    simulator = "ANNarchy"
    captures_monitors = True
    restores_monitors = True   # population monitors; others are refused (annarchy_monitors)

    def __init__(self, obj, monitors=False):
        super().__init__(obj)
        ann = _annarchy()
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
        self.shared = [p.name for p in projs if _shares_weights(p)]
        if self.content == "projection" and self.shared:
            raise UnsupportedObjectError(
                f"cannot checkpoint the {type(obj).__name__} projection {obj.name!r} on its own: its weights "
                "are a filter your script sets (or another projection's); save the network", obj=obj.name)
        projs = [p for p in projs if not _shares_weights(p)]
        self._require_supported(projs)
        self.populations = {p.name: p for p in pops}
        # what population monitors recorded (a network's, with monitors=True)
        self.monitors = (annarchy_monitors.population_monitors(obj, self.populations)
                         if monitors and self.content == "network" else {})
        self.projections = {p.name: p for p in projs}
        self.native = _native_state(self.network)
        self._described = {}   # projection name -> _LilCsr seen by capture/describe
        self._model = None     # the state describe() returned: scopes to restore by

    def _require_supported(self, projections):
        net, name = self.network, getattr(self.obj, "name", None)
        if not net.compiled:
            raise UnsupportedObjectError("the ANNarchy network is not compiled yet: call "
                                         "net.compile() before saving or loading", obj=name)
        paradigm = net._get_config("paradigm")
        if paradigm != "openmp":   # ANNarchy's CPU build, one thread or more
            raise UnsupportedObjectError(
                f"checkpoint supports ANNarchy's CPU build (paradigm 'openmp', any num_threads); this "
                f"network uses {paradigm!r}", obj=name)
        for proj in projections:
            if proj._storage_format != "lil":
                raise UnsupportedObjectError(
                    f"projection stored as {proj._storage_format!r}: checkpoint supports ANNarchy's "
                    "default 'lil' storage", obj=proj.name)

    # ------------------------------------------------------------- capture

    def capture(self, populations=True, projections=True, values=True):
        net = self.network
        if values and projections and self.shared:
            warnings.warn(f"ANNarchy projections {', '.join(self.shared)} share their weights (Convolution, "
                          "Pooling, Copy, Transpose): not saved; the script that rebuilds the network sets "
                          "their filters, and a change it made to them during the run is not in the file",
                          CheckpointWarning, stacklevel=4)
        meta = self.base_meta(self.content, net.time, net.current_step, net.dt)
        state = NetworkState(meta=meta)
        if populations:
            for name, pop in self.populations.items():
                state.populations[name] = self._capture_population(pop, values)
        if projections:
            for name, proj in self.projections.items():
                state.projections[name] = self._capture_projection(proj, values)
        if populations and self.monitors:
            meta["annarchy"] = {"monitors": {}}
            for name, monitor in self.monitors.items():
                state.populations[name], meta["annarchy"]["monitors"][name] = \
                    annarchy_monitors.capture(monitor, values)
        if self.content == "network":
            engines = self.native.read_rng()
            state.rng[ENGINE_RNG] = RngState(ENGINE_RNG, ENGINE_RNG_KIND, {"engines": len(engines)},
                                             {"state": engines})
            state.rng[NUMPY_RNG] = RngState(NUMPY_RNG, NUMPY_RNG_KIND,
                                            net.default_rng.bit_generator.state)
        return state

    def describe(self, populations=True, projections=True):
        """Shapes, dtypes and connectivity; values are not read."""
        self._model = self.capture(populations, projections, values=False)
        return self._model

    def clock(self):
        return float(self.network.time), int(self.network.current_step)

    def _fields(self, obj, prefix):
        return self.native.fields.get(f"{prefix}{obj.id}", {})

    def _read(self, field, values):
        """``(counts, lengths, flat)``; without ``values``, placeholders of
        the right sizes and dtype, so describe() copies nothing."""
        if values:
            lengths, flat = self.native.read(field)
            return level_counts(lengths, field.depth), lengths, flat
        counts = self.native.counts(field)
        return (counts, _placeholder(np.int64, int(counts[:field.depth].sum())),
                _placeholder(field.dtype, int(counts[-1])))

    def _capture_population(self, pop, values):
        kinds = _attribute_kinds(pop.neuron_type.description)
        arrays, info = {}, {}
        for name, field in self._fields(pop, "pop").items():
            if field.depth < 0 or name in _STRUCTURAL or _RANDOM.match(name):
                continue
            _, lengths, flat = self._read(field, values)
            if name in kinds:
                scope = "global" if field.depth == 0 else "neuron"
                arrays[name], info[name] = _shaped(flat, field.depth), ArrayInfo(kinds[name], scope)
            elif field.depth == 1 and name in _PER_NEURON:
                arrays[name], info[name] = flat, ArrayInfo("internal", "neuron",
                                                           "step" if name == "last_spike" else None)
            else:
                _add_free(arrays, info, name, field.depth, lengths, flat)
        return PopulationState(pop.name, pop.size, pop.geometry, arrays, info)

    def _capture_projection(self, proj, values):
        fields = self._fields(proj, "proj")
        post_rank, row_lengths, pre_rank = _read_lil(self.native, _global_name(proj))
        pre, post = _population(proj.pre), _population(proj.post)
        csr = _LilCsr(post_rank, row_lengths, post.size)
        self._described[proj.name] = csr
        lil_counts = [1, len(post_rank), len(pre_rank)]
        kinds = _attribute_kinds(proj.synapse_type.description)
        arrays, info = {}, {}
        for name, field in fields.items():
            if field.depth < 0 or name in _STRUCTURAL:
                continue
            counts, lengths, flat = self._read(field, values)
            per_synapse = field.depth == 2 and list(counts) == lil_counts
            if name == IN_FLIGHT:
                arrays[name] = (_in_flight_triples(lengths, flat, self._scalar(fields, "idx_delay"), post_rank)
                                if values else np.zeros((0, 3), np.int64))
                info[name] = ArrayInfo("internal", "free", "step")
            elif name == "delay":
                if values:
                    arrays[name] = (csr.to_csr(flat) if per_synapse else _shaped(flat, 0)) * self.network.dt
                else:
                    arrays[name] = _shaped(_placeholder(np.float64, len(flat)), 1 if per_synapse else 0)
                info[name] = ArrayInfo("parameter", "synapse" if per_synapse else "global", "ms")
            elif per_synapse:
                arrays[name] = csr.to_csr(flat)
                info[name] = ArrayInfo(kinds.get(name, "internal"), "synapse")
            elif field.depth == 1 and name in kinds and counts[1] == len(post_rank):
                arrays[name] = csr.to_post(flat) if values else _placeholder(field.dtype, post.size)
                info[name] = ArrayInfo(kinds[name], "post")
            elif field.depth == 0:
                arrays[name], info[name] = _shaped(flat, 0), ArrayInfo(kinds.get(name, "internal"), "global")
            else:
                _add_free(arrays, info, name, field.depth, lengths, flat)
        return ProjectionState(proj.name, pre.name, post.name, (post.size, pre.size), csr.indptr,
                               csr.to_csr(pre_rank), proj.target, arrays, info)

    def _scalar(self, fields, name):
        return int(self.native.read(fields[name])[1][0]) if name in fields else 0

    # ------------------------------------------------------------- restore

    def check_rng(self, plan):
        for name, rng in plan.rng.items():
            if name == NUMPY_RNG:
                check_numpy_rng_state(rng, plan.report.path)
            else:
                _check_engines(rng, self.native.read_rng().shape, plan.report.path)

    def apply_reversibly(self, plan):
        """Check what ANNarchy would crash on, snapshot every object touched
        (the undo record), then write."""
        self.check_rng(plan)
        by_object = plan.by_object()
        monitors = self._check_monitors(by_object, plan)   # taken out of by_object
        writes = _Writes(self, by_object, plan)   # every check happens here, before any change
        with UndoLog() as undo:
            undo.add(self._snapshot(writes, plan))
            for name, checked in monitors.items():
                annarchy_monitors.restore(self.monitors[name], checked, undo)
            for name, (post_rank, row_lengths, pre_rank) in writes.connectivity.items():
                self.native.set_lil(name, post_rank, row_lengths, pre_rank)
            for field, (lengths, flat) in writes.fields:
                self.native.write(field, lengths, flat)
            writes.apply_python()
            if plan.clock is not None:
                self.network.current_step = int(plan.clock["step"])
            for name, rng in plan.rng.items():
                if name == NUMPY_RNG:
                    self.network.default_rng.bit_generator.state = rng.state
                else:
                    self.native.write_rng(rng.arrays["state"])
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
                checked[name] = annarchy_monitors.check(self.monitors[name], values, meta, plan.report.path)
        return checked

    def _snapshot(self, writes, plan):
        saved = [(field, self.native.read(field)) for field in writes.touched_fields()]
        connectivity = {obj: _read_lil(self.native, obj) for obj in writes.connectivity}
        python = writes.python_state()
        engines = self.native.read_rng() if plan.rng else None
        numpy_state = self.network.default_rng.bit_generator.state
        step = self.network.current_step

        def undo():
            for obj, lil in connectivity.items():
                self.native.set_lil(obj, *lil)
            for field, (lengths, flat) in saved:
                self.native.write(field, lengths, flat)
            writes.restore_python(python)
            self.network.current_step = step
            self.network.default_rng.bit_generator.state = numpy_state
            if engines is not None:
                self.native.write_rng(engines)
        return undo



class _Writes:
    """The native writes one restore makes, computed and checked up front,
    dispatched on each array's scope in the model."""

    def __init__(self, adapter, by_object, plan):
        self.adapter, self.native, self.path = adapter, adapter.native, plan.report.path
        self.model = adapter._model or adapter.describe()
        self.connectivity = {}     # global name -> (post_rank, row_lengths, pre_rank)
        self.fields = []           # [(Field, (lengths, flat))]
        self.max_delay = {}        # ANNarchy object -> new max_delay (steps)
        self.uniform_delay = {}    # Projection -> new uniform delay (steps)
        self.written = set()       # field indices written
        for (section, name), values in by_object.items():
            if section == "projections":
                self._projection(name, values, name in plan.connectivity and plan.connectivity[name])
        for (section, name), values in by_object.items():
            if section == "populations":
                self._population(self.adapter.populations[name], values)
        for ann_obj, steps in list(self.max_delay.items()):
            if steps > ann_obj.max_delay:
                self._resize_delay_buffers(ann_obj)

    # -- projections ----------------------------------------------------------

    def _projection(self, name, values, connectivity):
        proj = self.adapter.projections[name]
        obj = _global_name(proj)
        fields, info = self.native.fields[obj], self.model.projections[name].info
        csr = self.adapter._described[name]
        if connectivity:
            indptr, indices = connectivity
            csr = _LilCsr.from_csr(indptr)
            self.connectivity[obj] = (csr.post_rank, csr.row_lengths, np.asarray(indices, np.int32))
        for var, value in values.items():
            field = fields.get(var)
            if field is None or var == IN_FLIGHT:
                continue   # a .lengths companion, or the ring buffer (after the delays)
            scope = info[var].scope
            if var == "delay":
                self._delays(proj, field, value, csr)
            elif scope == "synapse":
                self._write(field, csr.lil_lengths(), csr.to_lil(value))
            elif scope == "post":
                self._write(field, [len(csr.post_rank)], np.asarray(value)[csr.post_rank])
            elif scope == "global":
                self._write(field, [], np.asarray(value).reshape(1))
            else:
                self._write(field, *self._layout(field, values, var, name))
        rebuilt = obj in self.connectivity
        if IN_FLIGHT in fields and (IN_FLIGHT in values or rebuilt):
            self._in_flight(proj, values.get(IN_FLIGHT), csr)

    def _delays(self, proj, field, value, csr):
        steps = np.rint(np.asarray(value, np.float64) / self.adapter.network.dt).reshape(-1)
        if len(steps) and (not np.all(np.isfinite(steps)) or steps.min() < 1 or steps.max() > 2 ** 30):
            raise CorruptCheckpointError("delays must be finite and at least one time step",
                                         path=self.path, obj=f"{proj.name}.delay")
        steps = steps.astype(field.dtype)
        if field.depth == 2:
            self._write(field, csr.lil_lengths(), csr.to_lil(steps))
        else:
            self._write(field, [], steps[:1])
            self.uniform_delay[proj] = int(steps[0])
        pre = _population(proj.pre)
        needed = int(steps.max()) if len(steps) else 1
        self.max_delay[pre] = max(self.max_delay.get(pre, pre.max_delay), needed)
        if IN_FLIGHT in self.native.fields[_global_name(proj)]:
            self.max_delay[proj] = max(self.max_delay.get(proj, proj.max_delay), needed)

    def _in_flight(self, proj, triples, csr):
        """Spikes in a projection's ring buffer, as (steps until delivery,
        post rank, position in the dendrite) rows; written with idx_delay 0."""
        fields = self.native.fields[_global_name(proj)]
        slots = max(self.max_delay.get(proj, proj.max_delay), 1)
        triples = np.zeros((0, 3), np.int64) if triples is None else np.asarray(triples)
        label = f"{proj.name}.{IN_FLIGHT}"
        if triples.ndim != 2 or triples.shape[1] != 3 or triples.dtype.kind not in "iu":
            raise CorruptCheckpointError("spikes in flight must be (n, 3) integers", path=self.path, obj=label)
        triples = triples.astype(np.int64)
        row_of = np.full(len(csr.indptr) - 1, -1, np.int64)
        row_of[csr.post_rank] = np.arange(len(csr.post_rank))
        if len(triples) and (triples[:, 0].min() < 0 or triples[:, 0].max() >= slots
                             or triples[:, 1].min() < 0 or triples[:, 1].max() >= len(row_of)):
            raise CorruptCheckpointError("a spike in flight is out of this projection's range",
                                         path=self.path, obj=label)
        rows = row_of[triples[:, 1]]
        if len(triples) and (rows.min() < 0 or triples[:, 2].min() < 0
                             or np.any(triples[:, 2] >= csr.row_lengths[np.maximum(rows, 0)])):
            raise CorruptCheckpointError("a spike in flight targets a synapse that does not exist",
                                         path=self.path, obj=label)
        n_rows = len(csr.post_rank)
        cell = triples[:, 0] * n_rows + rows
        order = np.argsort(cell, kind="stable")
        per_cell = np.bincount(cell, minlength=slots * n_rows)
        lengths = np.concatenate([[slots], np.full(slots, n_rows), per_cell])
        self._write(fields[IN_FLIGHT], lengths, triples[order, 2])
        self._write(fields["idx_delay"], [], [0])
        self.max_delay[proj] = slots

    # -- populations ----------------------------------------------------------

    def _population(self, pop, values):
        fields, info = self.native.fields[_global_name(pop)], self.model.populations[pop.name].info
        for var, value in values.items():
            field = fields.get(var)
            if field is None:
                continue   # a .lengths companion
            scope = info[var].scope
            if scope == "global":
                self._write(field, [], np.asarray(value).reshape(1))
            elif scope == "neuron":
                self._write(field, [pop.size], value)
            elif var.startswith("_delayed_") and field.depth == 2:
                self._delay_queue(pop, field, *self._layout(field, values, var, pop.name))
            else:
                self._write(field, *self._layout(field, values, var, pop.name))
        spiked = values.get("spiked")
        if spiked is not None and len(spiked) and (np.min(spiked) < 0 or np.max(spiked) >= pop.size):
            raise CorruptCheckpointError("a spiking neuron's rank is out of range",
                                         path=self.path, obj=f"{pop.name}.spiked")

    def _delay_queue(self, pop, field, lengths, flat):
        """A population's queue of past spikes or values, newest first, cut or
        padded to the model's length (spikes pad with none, values with the oldest)."""
        label = f"{pop.name}.{field.name}"
        rows = np.split(flat, np.cumsum(lengths[1:])[:-1]) if lengths[0] else []
        if field.dtype.kind == "f" and any(len(r) != pop.size for r in rows):
            raise CorruptCheckpointError("a delayed value needs one entry per neuron", path=self.path, obj=label)
        if field.dtype.kind != "f" and len(flat) and (flat.min() < 0 or flat.max() >= pop.size):
            raise CorruptCheckpointError("a delayed spike's rank is out of range", path=self.path, obj=label)
        wanted = max(self.max_delay.get(pop, pop.max_delay), 0)
        if wanted > len(rows):
            pad = rows[-1] if field.dtype.kind == "f" and rows else np.zeros(0, field.dtype)
            if field.dtype.kind == "f" and not rows:
                pad = np.zeros(pop.size, field.dtype)
            rows = rows + [pad] * (wanted - len(rows))
        rows = rows[:wanted]
        self._write(field, [len(rows)] + [len(r) for r in rows],
                    np.concatenate(rows) if rows else np.zeros(0, field.dtype))

    def _resize_delay_buffers(self, ann_obj):
        """A longer max_delay needs longer queues even where the file has none."""
        fields = self.native.fields[_global_name(ann_obj)]
        for name, field in fields.items():
            if field.index in self.written:
                continue
            if name.startswith("_delayed_") and field.depth == 2 and name != IN_FLIGHT:
                self._delay_queue(ann_obj, field, *self.native.read(field))
            elif name == IN_FLIGHT:
                csr = self.adapter._described.get(ann_obj.name) or _current_csr(self.native, ann_obj)
                idx = int(self.native.read(fields["idx_delay"])[1][0])
                self._in_flight(ann_obj, _in_flight_triples(*self.native.read(field), idx, csr.post_rank), csr)

    # -- generic ---------------------------------------------------------------

    def _layout(self, field, values, var, obj):
        """The (lengths, flat) of a nested field from the file, checked."""
        flat = np.asarray(values[var])
        if field.depth <= 1:
            return ([len(flat)] if field.depth == 1 else []), flat.reshape(-1)
        lengths = values.get(var + LENGTHS)
        label = f"{obj}.{var}"
        if lengths is None:
            raise CorruptCheckpointError(f"{var}{LENGTHS} is missing", path=self.path, obj=label)
        lengths = np.asarray(lengths)
        counts = level_counts(lengths.astype(np.int64), field.depth) if lengths.dtype.kind in "iu" else None
        if counts is None or counts[-1] != flat.size:
            raise CorruptCheckpointError("the nested lengths do not fit the values", path=self.path, obj=label)
        return lengths.astype(np.int64), flat.reshape(-1)

    def _write(self, field, lengths, flat):
        lengths, flat = np.asarray(lengths, np.int64), np.asarray(flat)
        counts = level_counts(lengths, field.depth)
        if counts is None or counts[-1] != flat.size:  # a bug, not a bad file: all checked above
            raise AssertionError(f"bad layout for {field.object}.{field.name}")
        self.fields = [(f, v) for f, v in self.fields if f.index != field.index] + [(field, (lengths, flat))]
        self.written.add(field.index)

    def touched_fields(self):
        """Every field a write, a rebuild or a new max_delay changes."""
        touched = {f.index: f for f, _ in self.fields}
        for obj in self.connectivity:
            touched.update({f.index: f for f in self.native.fields[obj].values() if f.depth >= 0})
        for ann_obj in self.max_delay:
            field = self.native.fields[_global_name(ann_obj)].get("max_delay")
            if field is not None:
                touched[field.index] = field
        return list(touched.values())

    # -- what ANNarchy's Python side keeps -------------------------------------

    def apply_python(self):
        for ann_obj, steps in self.max_delay.items():
            field = self.native.fields[_global_name(ann_obj)].get("max_delay")
            if field is not None:
                self.native.write(field, np.zeros(0, np.int64), np.array([steps], field.dtype))
            ann_obj.max_delay = steps
        for proj, steps in self.uniform_delay.items():
            proj.uniform_delay = steps

    def python_state(self):
        return ({o: o.max_delay for o in self.max_delay},
                {p: p.uniform_delay for p in self.uniform_delay})

    def restore_python(self, state):
        max_delay, uniform = state
        for o, v in max_delay.items():
            o.max_delay = v
        for p, v in uniform.items():
            p.uniform_delay = v


class _LilCsr:
    """ANNarchy's LIL (rows = post neurons with synapses, in ANNarchy's order)
    against the canonical CSR (every post neuron, ascending)."""

    def __init__(self, post_rank, row_lengths, n_post):
        self.post_rank = np.asarray(post_rank, np.int64)
        self.row_lengths = np.asarray(row_lengths, np.int64)
        counts = np.zeros(n_post, np.int64)
        counts[self.post_rank] = self.row_lengths
        self.indptr = np.concatenate([[0], np.cumsum(counts)])
        self.sorted = bool(np.all(np.diff(self.post_rank) > 0))
        self.perm = None if self.sorted else self._permutation()

    @classmethod
    def from_csr(cls, indptr):
        counts = np.diff(np.asarray(indptr, np.int64))
        post_rank = np.flatnonzero(counts)
        return cls(post_rank, counts[post_rank], len(counts))

    def _permutation(self):
        """For each CSR position, the synapse's position in ANNarchy's order."""
        starts = np.concatenate([[0], np.cumsum(self.row_lengths)[:-1]])
        order = np.argsort(self.post_rank, kind="stable")
        blocks = [np.arange(starts[r], starts[r] + self.row_lengths[r]) for r in order]
        return np.concatenate(blocks) if blocks else np.zeros(0, np.int64)

    def lil_lengths(self):
        return np.concatenate([[len(self.post_rank)], self.row_lengths]).astype(np.int64)

    def to_csr(self, flat):
        return flat if self.perm is None else flat[self.perm]

    def to_lil(self, values):
        values = np.asarray(values)
        if self.perm is None:
            return values
        out = np.empty_like(values)
        out[self.perm] = values
        return out

    def to_post(self, per_row):
        out = np.zeros(len(self.indptr) - 1, per_row.dtype)
        out[self.post_rank] = per_row
        return out


# ---------------------------------------------------------------- helpers


def _native_state(net):
    """The accessor for ``net``'s compiled code, built once per compilation."""
    wrapper, compiled = wrapper_of(net)   # a copy runs the library of the network it copies
    native = _NATIVE.get(wrapper)
    if native is None:
        ann_dir = Path(_annarchy().__file__).resolve().parent
        header_dir = Path(compiled.directory) / "build" / f"net{compiled.id}"
        objects = [(f"pop{p.id}", f"PopStruct{p.id}", f"pop{p.id}.hpp", ()) for p in net.get_populations()]
        own = [p for p in net.get_projections() if not _shares_weights(p)]   # the others have no LIL
        lil = {f"proj{p.id}" for p in own if p._storage_format == "lil"}
        objects += [(f"proj{p.id}", f"ProjStruct{p.id}", f"proj{p.id}.hpp",
                     ("post_rank", "pre_rank") if f"proj{p.id}" in lil else ())
                    for p in own]
        native = NativeState(wrapper, header_dir, objects, lil,
                             [ann_dir / "include", ann_dir / "thirdparty"])
        unreadable = [f"{obj}.{name}" for obj in native.fields for name in native.unsupported(obj)]
        if unreadable:
            log.warning("checkpoint: members of ANNarchy's C++ structures of a type checkpoint cannot "
                        "read, not captured: %s", ", ".join(unreadable))
        _NATIVE[wrapper] = native
    return native


def _shares_weights(proj):
    """Whether ``proj`` is one of ANNarchy's shared-weight projections
    (``ANNarchy.extensions.convolution``), which have no connectivity of
    their own for the accessor to read; ANNarchy's own ``save`` skips them too."""
    return not getattr(proj, "_saveable", True) or type(proj).__module__.startswith("ANNarchy.extensions.convolution")


def _read_lil(native, obj):
    """A LIL projection's ``(post_rank, row_lengths, pre_rank)`` as ANNarchy holds them."""
    fields = native.fields[obj]
    post_rank = native.read(fields["post_rank"])[1]
    lengths, pre_rank = native.read(fields["pre_rank"])
    return post_rank, lengths[1:], pre_rank


def _current_csr(native, proj):
    post_rank, row_lengths, _ = _read_lil(native, _global_name(proj))
    return _LilCsr(post_rank, row_lengths, _population(proj.post).size)


def _population(obj):
    """The population behind a PopulationView."""
    return getattr(obj, "population", obj)


def _global_name(ann_obj):
    from ANNarchy.core.Projection import Projection
    return f"{'proj' if isinstance(ann_obj, Projection) else 'pop'}{ann_obj.id}"


def _attribute_kinds(description):
    kinds = {p["name"]: "parameter" for p in description["parameters"]}
    kinds.update({v["name"]: "variable" for v in description["variables"]})
    return kinds


def _shaped(flat, depth):
    return flat.reshape(()) if depth == 0 else flat


def _placeholder(dtype, n):
    """An array of ``n`` values that costs no memory: describe() needs shapes only."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), (n,), (0,), writeable=False)


def _add_free(arrays, info, name, depth, lengths, flat):
    arrays[name], info[name] = (_shaped(flat, 0) if depth == 0 else flat), \
        ArrayInfo("internal", "global" if depth == 0 else "free")
    if depth >= 2:
        arrays[name + LENGTHS], info[name + LENGTHS] = lengths, ArrayInfo("internal", "free")


def _in_flight_triples(lengths, flat, idx_delay, post_rank):
    """A ring buffer ``[slot][dendrite][...]`` as (steps until delivery,
    post rank, position in the dendrite) rows, in delivery order: the same
    rows whatever slot the ring's index happens to be at."""
    slots = int(lengths[0]) if len(lengths) else 0
    if slots == 0 or len(flat) == 0:
        return np.zeros((0, 3), np.int64)
    per_slot_rows = lengths[1:1 + slots]
    cell_lengths = lengths[1 + slots:]
    cell = np.repeat(np.arange(len(cell_lengths)), cell_lengths)
    slot_of_cell = np.repeat(np.arange(slots), per_slot_rows)
    row_of_cell = np.concatenate([np.arange(n) for n in per_slot_rows])
    slot, row = slot_of_cell[cell], row_of_cell[cell]
    triples = np.stack([(slot - idx_delay) % slots, np.asarray(post_rank, np.int64)[row],
                        flat.astype(np.int64)], axis=1)
    return triples[np.argsort(triples[:, 0], kind="stable")]


def _check_engines(rng, model_shape, path):
    state = np.asarray(rng.arrays.get("state", np.zeros((0, 0))))
    words = model_shape[1] if len(model_shape) > 1 else 0
    if state.shape != tuple(model_shape):
        raise StructureMismatchError(f"the file has {state.shape} random engine words, the model "
                                     f"{tuple(model_shape)}", path=path, obj=f"rng {rng.name}")
    if words and (np.any(state[:, :-1] >= 2 ** 32) or np.any(state[:, -1] > words - 1)):
        raise CorruptCheckpointError("not a std::mt19937 state", path=path, obj=f"rng {rng.name}")
