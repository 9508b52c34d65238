"""Adapter for NEST 3 (the ``nest`` module: the running kernel).

NEST exposes its state through ``GetStatus``/``SetStatus`` dictionaries, so
that is what is captured:

* **populations**: the kernel's neurons and stimulation devices, in runs of
  consecutive node IDs of one model, named ``"<model> <first>-<last>"``
  (``"iaf_psc_alpha 1-100"``), which the same script recreates identically.
  Every numeric status entry the model lets a script set (found once per
  model by setting a default to its own value), per node; ``recordables``
  are variables, the rest parameters.
* **projections**: the connections of one synapse model from one population
  to another, named ``"<synapse model> <pre>-><post>"``: the connectivity
  as CSR by post neuron (NEST's order kept within a pair) and every numeric,
  settable per-connection entry (weight, delay in ms, plasticity state such
  as ``Kplus``).
* the time, the resolution, and the kernel's ``rng_seed``/``rng_type``.

NEST does not expose, and so a restart loses: the random generators' state
(a restored kernel is reseeded from the file's seed and step, so that it
does not replay the first run's numbers), spikes in flight in the delay
ring buffers, neurons' refractory counters and spike history (``t_spike``,
the STDP archive) and synapses' last presynaptic spike time.  NEST's clock
cannot be set after it has run: a restored kernel keeps its own clock and
the adapter adds the file's time to it in what ``checkpoint`` reports (the
report, saved times, the Checkpointer's schedule); devices' ``start``,
``stop``, ``origin`` and spike times stay in NEST's own clock.  Recorders
(spike_recorder, multimeter) are not captured.
"""

import logging
import zlib

import numpy as np

from ..errors import StructureMismatchError, UnsupportedObjectError
from ..state import ArrayInfo, NetworkState, PopulationState, ProjectionState
from .base import Adapter

log = logging.getLogger("checkpoint")

POPULATION_TYPES = ("neuron", "stimulator")
# Per-connection entries a script cannot set (identity, layout, bookkeeping).
NODE_IDENTITY = {"global_id", "local", "model_id", "node_uses_wfr", "thread", "thread_local_id", "vp",
                 "frozen", "archiver_length", "post_trace", "t_spike", "elementsize"}
CONNECTION_IDENTITY = {"source", "target", "target_thread", "port", "synapse_id", "synapse_model",
                       "sizeof", "receptor", "synapse_modelid"}

_settable_cache = {}    # node model -> set of settable numeric status keys
# The file's time minus NEST's clock after a restore, kept in the kernel
# itself (as the weight of a copied synapse model), so that ResetKernel
# forgets it with everything else.
OFFSET_MODEL = "checkpoint_time_offset"


def _nest():
    import nest
    return nest


def _is_number(value):
    return isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating))


def settable_keys(model):
    """The numeric status keys of a node model that SetStatus accepts.

    Setting a model default to its own value changes nothing and raises
    for a read-only key.
    """
    if model not in _settable_cache:
        nest = _nest()
        keys = set()
        for key, value in nest.GetDefaults(model).items():
            if not _is_number(value) or key in NODE_IDENTITY:  # devices accept these as defaults
                continue
            try:
                nest.SetDefaults(model, {key: value})
            except nest.NESTError:
                continue
            keys.add(key)
        _settable_cache[model] = keys
    return _settable_cache[model]


class NodeGroup:
    """Consecutive node IDs ``first..last`` of one model."""

    def __init__(self, model, element_type, first, last):
        self.model, self.element_type, self.first, self.last = model, element_type, first, last
        self.name = f"{model}@{first}"   # not the size: a changed size must not match

    @property
    def size(self):
        return self.last - self.first + 1

    def nodes(self):
        return _nest().NodeCollection(list(range(self.first, self.last + 1)))


def _node_groups(nodes):
    """Split a NodeCollection into runs of consecutive IDs of one model."""
    if len(nodes) == 0:
        return []
    ids = np.atleast_1d(np.asarray(nodes.tolist(), np.int64))
    status = nodes.get(["model", "element_type"])
    models, types = np.atleast_1d(status["model"]), np.atleast_1d(status["element_type"])
    breaks = np.flatnonzero((np.diff(ids) != 1) | (models[1:] != models[:-1])) + 1
    starts, ends = np.concatenate([[0], breaks]), np.concatenate([breaks, [len(ids)]])
    return [NodeGroup(str(models[s]), str(types[s]), int(ids[s]), int(ids[e - 1])) for s, e in zip(starts, ends)]


class Projection:
    """The connections of one synapse model from one group to another."""

    def __init__(self, synapse_model, pre, post):
        self.synapse_model, self.pre, self.post = synapse_model, pre, post
        self.name = f"{synapse_model} {pre.name}->{post.name}"

    def connections(self):
        return _nest().GetConnections(source=self.pre.nodes(), target=self.post.nodes(),
                                      synapse_model=self.synapse_model)


class NESTAdapter(Adapter):
    simulator = "nest"

    def __init__(self, obj, monitors=False):
        super().__init__(obj)
        nest = _nest()
        self.simulator_version = nest.__version__
        if monitors:
            raise UnsupportedObjectError("NEST recorders' events cannot be restored into a kernel: "
                                         "save without monitors=True", obj="nest")
        kind = type(obj).__name__
        if obj is nest:
            self.content = "network"
            groups = [g for g in _node_groups(nest.GetNodes()) if g.element_type in POPULATION_TYPES]
            self.populations = {g.name: g for g in groups}
            self.projections = {p.name: p for p in _projections(groups)}
        elif kind == "NodeCollection":
            groups = _node_groups(obj)
            if len(groups) != 1 or groups[0].element_type not in POPULATION_TYPES:
                raise UnsupportedObjectError("pass a NodeCollection of consecutive neurons or stimulators "
                                             "of one model (as one nest.Create made it)", obj=str(obj))
            self.content, self.populations, self.projections = "population", {groups[0].name: groups[0]}, {}
        elif kind == "SynapseCollection":
            self.content, self.populations = "projection", {}
            projection = _projection_of(obj)
            self.projections = {projection.name: projection}
        else:
            raise UnsupportedObjectError(f"cannot checkpoint a NEST {kind}: pass the nest module, a "
                                         "NodeCollection or a SynapseCollection", obj=kind)

    # -------------------------------------------------------------- capture

    def clock(self):
        nest = _nest()
        time = float(nest.biological_time) + time_offset()
        return time, int(round(time / nest.resolution))

    def capture(self, populations=True, projections=True):
        nest = _nest()
        time, step = self.clock()
        meta = self.base_meta(self.content, time, step, nest.resolution)
        meta["nest"] = {"rng_seed": int(nest.rng_seed), "rng_type": str(nest.rng_type),
                        "biological_time": float(nest.biological_time)}
        state = NetworkState(meta=meta)
        if populations:
            for name, group in self.populations.items():
                state.populations[name] = _capture_group(group)
        if projections:
            for name, projection in self.projections.items():
                state.projections[name] = _capture_projection(projection)[0]
        return state

    # ------------------------------------------------------------- restore

    def apply(self, plan):
        by_object = {}
        for a in plan.assignments:
            by_object.setdefault((a.section, a.name), {})[a.var] = a.value
        for name in plan.connectivity:
            by_object.setdefault(("projections", name), {})
        nest, undo = _nest(), []
        try:
            for (section, name), values in by_object.items():
                try:
                    if section == "populations":
                        undo.append(_restore_group(self.populations[name], values))
                    else:
                        undo.append(_restore_projection(self.projections[name], values,
                                                        plan.connectivity.get(name)))
                except nest.NESTError as exc:  # a value this model does not take
                    raise StructureMismatchError(f"NEST refused the file's values: {exc}",
                                                 path=plan.report.path, obj=name) from None
            if plan.clock is not None and self.content == "network":
                undo.append(_restore_clock(plan))
        except BaseException:
            for step in reversed(undo):
                step()
            raise


# ---------------------------------------------------------------- nodes


def _capture_group(group):
    nodes = group.nodes()
    keys = sorted(settable_keys(group.model) & set(nodes[0].get()))   # defaults list a few more
    status = nodes.get(keys) if keys else {}
    if len(keys) == 1:
        status = {keys[0]: status}
    recordables = set(_nest().GetDefaults(group.model).get("recordables", ()))
    arrays, info = {}, {}
    for key in keys:
        value = np.atleast_1d(np.asarray(status[key]))
        if value.shape != (group.size,) or value.dtype.kind not in "biuf":
            log.info("checkpoint: %s.%s is not one number per node: not captured", group.name, key)
            continue
        arrays[key] = value
        info[key] = ArrayInfo("variable" if key in recordables else "parameter", "neuron", "ms" if key in
                              ("origin", "start", "stop") else None)
    return PopulationState(group.name, group.size, None, arrays, info)


def _restore_group(group, values):
    nodes = group.nodes()
    old = {key: np.atleast_1d(nodes.get(key)).tolist() for key in values}
    try:
        nodes.set({key: np.asarray(value).tolist() for key, value in values.items()})
    except BaseException:   # NEST may have set the nodes before the one it refused
        nodes.set(old)
        raise
    return lambda: nodes.set(old)


# ---------------------------------------------------------- connections


def _projections(groups):
    """One Projection per synapse model and (pre group, post group) pair
    with connections, recorders left out."""
    nest = _nest()
    by_id = list(groups)
    bounds = np.array([g.first for g in by_id], np.int64)
    out = []
    for model in nest.synapse_models:
        if model == OFFSET_MODEL or nest.GetDefaults(model).get("num_connections", 0) == 0:
            continue
        status = nest.GetConnections(synapse_model=model).get(["source", "target"])
        pairs = set()
        for src, tgt in zip(np.atleast_1d(status["source"]), np.atleast_1d(status["target"])):
            pairs.add((src, tgt))
        found = set()
        for src, tgt in pairs:
            i, j = np.searchsorted(bounds, src, "right") - 1, np.searchsorted(bounds, tgt, "right") - 1
            if i >= 0 and j >= 0 and src <= by_id[i].last and tgt <= by_id[j].last:
                found.add((i, j))
        out += [Projection(model, by_id[i], by_id[j]) for i, j in sorted(found)]
    return out


def _projection_of(connections):
    nest = _nest()
    status = connections.get(["source", "target", "synapse_model"])
    models = set(np.atleast_1d(status["synapse_model"]))
    sources, targets = np.atleast_1d(status["source"]), np.atleast_1d(status["target"])
    groups = [g for g in _node_groups(nest.GetNodes()) if g.element_type in POPULATION_TYPES]

    def group_of(ids):
        hits = [g for g in groups if ids.min() >= g.first and ids.max() <= g.last] if len(ids) else []
        return hits[0] if hits else None

    pre, post = group_of(sources), group_of(targets)
    if len(models) != 1 or pre is None or post is None:
        raise UnsupportedObjectError("pass a SynapseCollection of one synapse model between one "
                                     "population and another", obj="SynapseCollection")
    return Projection(str(models.pop()), pre, post)


def _connection_keys(connections):
    if len(connections) == 0:
        return []
    sample = connections[0].get()
    return sorted(k for k, v in sample.items() if k not in CONNECTION_IDENTITY and _is_number(v))


def _capture_projection(projection):
    """``(ProjectionState, connections, perm)``; ``perm[k]`` is the NEST
    position of the k-th synapse in CSR order."""
    connections = projection.connections()
    keys = _connection_keys(connections)
    status = connections.get(["source", "target"] + keys) if len(connections) else {}
    pre = np.atleast_1d(np.asarray(status.get("source", []), np.int64)) - projection.pre.first
    post = np.atleast_1d(np.asarray(status.get("target", []), np.int64)) - projection.post.first
    perm = np.argsort(post, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(post, minlength=projection.post.size))]).astype(np.int64)
    state = ProjectionState(projection.name, projection.pre.name, projection.post.name,
                            (projection.post.size, projection.pre.size), indptr, pre[perm], target=None)
    for key in keys:
        state.arrays[key] = np.atleast_1d(np.asarray(status[key]))[perm]
        state.info[key] = ArrayInfo("parameter" if key == "delay" else "variable", "synapse",
                                    "ms" if key == "delay" else None)
    return state, connections, perm


def _restore_projection(projection, values, connectivity):
    """Set the per-synapse values; rebuild the connections first when the
    file's connectivity differs.  Returns the undo.

    A SynapseCollection goes stale when connections of its synapse model
    are removed, so every step fetches the connections afresh.
    """
    before = _capture_projection(projection)[0]     # in CSR order: the undo record
    rebuilt = connectivity is not None

    def undo():
        if rebuilt:
            _replace(projection, before)
        else:
            _set_in_csr_order(projection, {key: before.arrays[key] for key in values})
    try:
        if rebuilt:
            if "delay" not in values and len(connectivity[1]):
                raise StructureMismatchError("the file's connectivity differs from the model's and has "
                                             "no delays to rebuild it with", obj=projection.name)
            _replace(projection, ProjectionState(projection.name, None, None, before.shape, *connectivity,
                                                 arrays={"delay": values.get("delay")}))
        _set_in_csr_order(projection, values)
    except BaseException:
        undo()
        raise
    return undo


def _set_in_csr_order(projection, arrays):
    """Set per-synapse ``arrays`` given in CSR order on the NEST connections."""
    if not arrays:
        return
    _, connections, perm = _capture_projection(projection)
    if len(connections) == 0:
        return
    in_nest_order = {}
    for key, value in arrays.items():
        ordered = np.empty_like(np.asarray(value))
        ordered[perm] = value
        in_nest_order[key] = ordered.tolist()
    connections.set(in_nest_order)


def _replace(projection, state):
    """Replace the projection's connections with ``state``'s (connectivity
    and per-synapse arrays)."""
    current = projection.connections()
    if len(current):
        current.disconnect()
    if len(state.indices) == 0:
        return
    post = np.repeat(np.arange(len(state.indptr) - 1, dtype=np.int64), np.diff(state.indptr))
    spec = {"synapse_model": projection.synapse_model}
    spec.update({key: np.asarray(state.arrays[key], np.float64) for key in ("weight", "delay")
                 if state.arrays.get(key) is not None})
    _nest().Connect(np.asarray(state.indices, np.int64) + projection.pre.first, post + projection.post.first,
                    "one_to_one", syn_spec=spec)
    _set_in_csr_order(projection, {key: value for key, value in state.arrays.items()
                                   if key not in ("weight", "delay") and value is not None})


# ------------------------------------------------------------ clock, rng


def _restore_clock(plan):
    """NEST's clock cannot be set after it has run (nor to anything but 0):
    keep it, and remember the file's time as an offset that :meth:`clock`
    and captures add.  Reseed, so that the run does not replay the first
    run's random numbers."""
    nest = _nest()
    old_offset, old_seed = time_offset(), int(nest.rng_seed)
    _set_time_offset(float(plan.clock["time"]) - float(nest.biological_time))
    saved = (plan.file_meta.get("nest") or {}).get("rng_seed")
    if isinstance(saved, int):
        nest.rng_seed = _continuation_seed(saved, int(plan.clock["step"]))

    def undo():
        _set_time_offset(old_offset)
        nest.rng_seed = old_seed
    return undo


def time_offset():
    """Milliseconds to add to NEST's clock for the simulated time (0 unless restored)."""
    nest = _nest()
    return float(nest.GetDefaults(OFFSET_MODEL)["weight"]) if OFFSET_MODEL in nest.synapse_models else 0.0


def _set_time_offset(offset_ms):
    nest = _nest()
    if OFFSET_MODEL in nest.synapse_models:
        nest.SetDefaults(OFFSET_MODEL, {"weight": offset_ms})
    elif offset_ms:
        nest.CopyModel("static_synapse", OFFSET_MODEL, {"weight": offset_ms})


def _continuation_seed(seed, step):
    """A seed for the restored run, different from the first run's so that
    its random numbers are not a replay, and the same for every restart at
    the same step."""
    return zlib.crc32(f"{seed}:{step}".encode()) % (2**31 - 1) + 1
