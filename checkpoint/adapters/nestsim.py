"""Adapter for NEST 3 (the ``nest`` module: the running kernel).

NEST exposes its state through ``GetStatus``/``SetStatus`` dictionaries, so
that is what is captured:

* **populations**: the kernel's neurons and stimulation devices, in runs of
  consecutive node IDs of one model, named ``"<model>@<first node ID>"``
  (``"iaf_psc_alpha@1"``), which the same script recreates identically.
  Every numeric status entry the model lets a script set (found once per
  model by setting a default to its own value), per node; ``recordables``
  are variables, the rest parameters.
* **projections**: the connections of one synapse model from one population
  to another, named ``"<synapse model> <pre>-><post>"``: the connectivity
  as CSR by post neuron (NEST's order kept within a pair) and every numeric,
  settable per-connection entry (weight, delay in ms, plasticity state such
  as ``Kplus``).
* the time, the resolution, and the kernel's ``rng_seed``/``rng_type``.

Reading connections costs NEST about 10 µs each (a Python dictionary per
connection), so each synapse model's connections are read once per capture.

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

Under MPI (NEST built with MPI, run by ``mpiexec``) each rank holds the
neurons ``node_id % ranks`` gives it and the connections onto them, and
saves them as its shard (``checkpoint.save(path, nest, comm=comm)``): a
population's ``ids`` are its local neurons' positions in the group, a
projection's rows its local post neurons.  Devices are replicated on every
rank; each shard holds them whole (the same values).  The checkpoint then
loads on any number of ranks (:mod:`checkpoint.distributed`), each rank
setting its own neurons and connecting its own targets.
"""

import contextlib
import logging
import re
import warnings
import zlib

import numpy as np

from ..errors import CheckpointWarning, CorruptCheckpointError, StructureMismatchError, UnsupportedObjectError
from ..state import ArrayInfo, NetworkState, PopulationState, ProjectionState
from ..restore import UndoLog
from .base import Adapter

log = logging.getLogger("checkpoint")

POPULATION_TYPES = ("neuron", "stimulator")
# Status entries a script cannot set (identity, layout, bookkeeping), of a
# node and of a connection.
NODE_IDENTITY = {"global_id", "local", "model_id", "node_uses_wfr", "thread", "thread_local_id", "vp",
                 "frozen", "archiver_length", "post_trace", "t_spike", "elementsize"}
RECEPTOR = "receptor"
CONNECTION_IDENTITY = {"source", "target", "target_thread", "port", "synapse_id", "synapse_model",
                       "sizeof", "receptor", "synapse_modelid"}

#: Said at every save of a kernel (Python shows it once per place in a script).
HIDDEN_STATE = ("NEST keeps some state out of reach, and a restart loses it: its random generators' state "
                "(a restored kernel is reseeded), spikes in flight, synaptic currents and refractory counters, "
                "spike history for STDP, and a spatial layer's positions unless you save the layer's "
                "NodeCollection (docs/nest.rst)")

#: Seconds NEST took per connection to ``Disconnect`` here (1M in 300-430 s).
DISCONNECT_SECONDS = 4e-4

_settable_cache = {}    # node model -> (settable numeric keys, settable per-node array keys)
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
    return _settable(model)[0]


def settable_array_keys(model):
    """Settable status keys whose values are arrays per node (``tau_syn`` of a
    multisynapse model, a generator's ``spike_times``)."""
    return _settable(model)[1]


def _settable(model):
    if model not in _settable_cache:
        nest = _nest()
        numbers, arrays, together = set(), set(), {}
        for key, value in nest.GetDefaults(model).items():
            is_array = isinstance(value, (list, tuple, np.ndarray)) and \
                np.asarray(value).dtype.kind in "biuf"
            if key in NODE_IDENTITY or not (_is_number(value) or is_array):  # devices accept these as defaults
                continue
            try:
                nest.SetDefaults(model, {key: value})
            except nest.NESTError:
                if is_array:
                    together[key] = value
                continue
            (arrays if is_array else numbers).add(key)
        if together:   # arrays NEST takes only together (a step_current_generator's times and values)
            try:
                nest.SetDefaults(model, together)
                arrays.update(together)
            except nest.NESTError:
                pass
        _settable_cache[model] = numbers, arrays
    return _settable_cache[model]


class NodeGroup:
    """Consecutive node IDs ``first..last`` of one model."""

    def __init__(self, model, element_type, first, last):
        self.model, self.element_type, self.first, self.last = model, element_type, first, last
        self.name = f"{model}@{first}"   # not the size: a changed size must not match
        self._local = None
        self.positions = None   # a spatial layer's, when known
        self.described_status = None   # the status a load's describe read, for its apply

    @property
    def size(self):
        return self.last - self.first + 1

    def nodes(self):
        return _nest().NodeCollection(list(range(self.first, self.last + 1)))

    def local(self):
        """Positions in the group of the nodes this MPI rank holds (all of
        them in one process, and for devices, which every rank replicates)."""
        if self._local is None:
            if _nest().NumProcesses() == 1:
                self._local = np.arange(self.size, dtype=np.int64)
            else:
                local = np.atleast_1d(np.asarray(self.nodes().get("local"), bool))
                self._local = np.flatnonzero(local).astype(np.int64)
        return self._local

    def local_nodes(self):
        """The NodeCollection of the nodes this rank holds."""
        return _nest().NodeCollection((self.local() + self.first).tolist())

    @property
    def distributed(self):
        return _nest().NumProcesses() > 1


def _node_groups(nodes):
    """Split a NodeCollection into runs of consecutive IDs of one model."""
    if len(nodes) == 0:
        return []
    runs = _primitive_runs(nodes)
    if runs is None:   # NEST did not describe it as plain runs: ask every node (10 us each)
        ids = np.atleast_1d(np.asarray(nodes.get("global_id"), np.int64))
        models = np.atleast_1d(np.asarray(nodes.get("model")))
        breaks = np.flatnonzero((np.diff(ids) != 1) | (models[1:] != models[:-1])) + 1
        starts, ends = np.concatenate([[0], breaks]), np.concatenate([breaks, [len(ids)]])
        runs = [(str(models[s]), int(ids[s]), int(ids[e - 1])) for s, e in zip(starts, ends)]
    merged = []
    for model, first, last in runs:   # consecutive Creates of one model are one group, as before
        if merged and merged[-1][0] == model and merged[-1][2] + 1 == first:
            merged[-1] = (model, merged[-1][1], last)
        else:
            merged.append((model, first, last))
    return [NodeGroup(model, _element_type(model), first, last) for model, first, last in merged]


_PRIMITIVE = re.compile(r"model=([\w.-]+), size=(\d+), first=(\d+)(?:, last=(\d+))?(, step=\d+)?")


def _primitive_runs(nodes):
    """``[(model, first, last)]`` from NEST's own description of the
    collection (its primitives: runs of one model), without a status call
    per node; None when that description is not plain runs."""
    runs = []
    for model, size, first, last, step in _PRIMITIVE.findall(str(nodes)):
        first, size = int(first), int(size)
        last = int(last) if last else first
        if step or last - first + 1 != size:
            return None
        runs.append((model, first, last))
    return runs if runs and sum(last - first + 1 for _, first, last in runs) == len(nodes) else None


_element_types = {}


def _element_type(model):
    if model not in _element_types:
        _element_types[model] = str(_nest().GetDefaults(model)["element_type"])
    return _element_types[model]


class SynapseGroup:
    """The connections of one synapse model from one group to another."""

    def __init__(self, synapse_model, pre, post):
        self.synapse_model, self.pre, self.post = synapse_model, pre, post
        self.name = f"{synapse_model} {pre.name}->{post.name}"

    def connections(self):
        return _nest().GetConnections(source=self.pre.nodes(), target=self.post.nodes(),
                                      synapse_model=self.synapse_model)


class NESTAdapter(Adapter):
    exact_restart = False   # NEST keeps its generators, spikes in flight and currents out of reach
    shardable = True        # under MPI each rank saves its own neurons and their incoming connections
    captures_monitors = True    # recorders' events, for analysis; NEST cannot set them back
    simulator = "nest"

    def __init__(self, obj, monitors=False):
        super().__init__(obj)
        nest = _nest()
        self.simulator_version = nest.__version__
        self.monitors = monitors
        kind = type(obj).__name__
        self._connections = {}   # the last capture's connections, read once per synapse model
        if obj is nest:
            self.content = "network"
            self._groups = [g for g in _node_groups(nest.GetNodes()) if g.element_type in POPULATION_TYPES]
            self.populations = {g.name: g for g in self._groups}
            self.projections = {}   # found by each capture: connections change during a run
        elif kind == "NodeCollection":
            groups = _node_groups(obj)
            if len(groups) != 1 or groups[0].element_type not in POPULATION_TYPES:
                raise UnsupportedObjectError("pass a NodeCollection of consecutive neurons or stimulators "
                                             "of one model (as one nest.Create made it)", obj=str(obj))
            self.content, self.populations, self.projections = "population", {groups[0].name: groups[0]}, {}
            # a spatial layer's positions live in the NodeCollection Create returned, not in the kernel
            groups[0].positions = _positions(obj)
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
        state = self._capture(populations, projections)
        if projections and self.content == "network":
            self._warn_recorder_connections()
        if self.content == "network":
            warnings.warn(HIDDEN_STATE, CheckpointWarning, stacklevel=4)
        if populations and self.monitors and self.content == "network":
            for group in _node_groups(_nest().GetNodes()):
                if group.element_type == "recorder":
                    state.populations[group.name] = _capture_recorder(group)
        return state

    def describe(self, populations=True, projections=True):
        # without recorders: their events are in a file for analysis, and NEST
        # cannot put them back (a load lists them as skipped)
        return self._capture(populations, projections, keep_status=True)

    def _capture(self, populations, projections, keep_status=False):
        nest = _nest()
        time, step = self.clock()
        meta = self.base_meta(self.content, time, step, nest.resolution)
        meta["nest"] = {"rng_seed": int(nest.rng_seed), "rng_type": str(nest.rng_type),
                        "biological_time": float(nest.biological_time)}
        state = NetworkState(meta=meta)
        if populations:
            for name, group in self.populations.items():
                state.populations[name] = _capture_group(group, keep_status)
        if projections:
            self._read_connections()
            for name, projection in self.projections.items():
                state.projections[name] = self._connections[projection.synapse_model].capture(projection)
        return state

    def _read_connections(self):
        """Read every connection the projections hold, one status call per
        synapse model (NEST builds a dictionary per connection, by far the
        slowest step), and, for the whole kernel, find the projections."""
        nest = _nest()
        if self.content == "network":
            models = [m for m in nest.synapse_models
                      if m != OFFSET_MODEL and nest.GetDefaults(m).get("num_connections", 0)]
            self._connections = {m: Connections(nest.GetConnections(synapse_model=m)) for m in models}
            self.projections = {p.name: p for m in models for p in self._connections[m].projections(m, self._groups)}
        else:   # one population (no connections) or one projection
            self._connections = {p.synapse_model: Connections(p.connections()) for p in self.projections.values()}

    def _warn_recorder_connections(self):
        """Connections to and from recorders are the script's wiring, not
        state: not saved, and said so (a resumed script must make them)."""
        recorders = set()
        for connections in self._connections.values():
            for ids in (connections.source, connections.target):
                outside = ids[_group_index(self._groups, ids) < 0] if len(self._groups) else ids
                recorders.update(np.unique(outside).tolist())
        if recorders:
            warnings.warn(f"connections to or from recorders (nodes {_ranges(sorted(recorders))}) are not saved: "
                          "create and connect recorders in the script on every start, resumed or not",
                          CheckpointWarning, stacklevel=5)

    # ------------------------------------------------------------- restore

    def before_plan(self, file_state, model_state, path):
        """The file's projections between nodes the kernel has but not (yet)
        connected become empty projections of the model, so that the plan
        makes them, with one array Connect each (the resume idiom: build the
        nodes, connect only on a fresh start)."""
        if self.content != "network":
            return
        groups = {g.name: g for g in self._groups}
        models = set(_nest().synapse_models)
        for name, saved in file_state.projections.items():
            if name in model_state.projections:
                continue
            synapse_model, _, ends = name.partition(" ")
            pre, _, post = ends.partition("->")
            if synapse_model not in models or pre not in groups or post not in groups:
                continue   # nothing to connect: the report lists it as skipped
            projection = SynapseGroup(synapse_model, groups[pre], groups[post])
            self.projections[name] = projection
            self._connections.setdefault(synapse_model, Connections(projection.connections()))
            model_state.projections[name] = self._connections[synapse_model].capture(projection)
            for var, array in saved.arrays.items():   # the same names and types, no synapses yet
                model_state.projections[name].arrays.setdefault(var, np.zeros(0, np.asarray(array).dtype))
                model_state.projections[name].info.setdefault(var, saved.info[var])

    def apply_reversibly(self, plan):
        """Apply ``plan`` (after :meth:`describe`, whose reading of the
        connections it uses); on any failure put everything back."""
        values = plan.by_object()
        nest = _nest()
        for (section, name), group_values in values.items():
            if section == "populations":   # what NEST would take wrongly, refused before any change
                _check_positions(self.populations[name], group_values, plan.report.path)
                _check_lengths(group_values, plan.report.path, name)
        rebuild = self._to_rebuild(plan, values)
        with UndoLog() as undo:
            for (section, name), group_values in values.items():
                if section == "populations":
                    with _refused(nest, plan, name):
                        undo.add(_restore_group(self.populations[name], group_values))
            rebuilt = set()
            for name, connectivity in rebuild.items():   # every value given to one array Connect
                projection = self.projections[name]
                with _refused(nest, plan, name):
                    undo.add(_rebuild(projection, self._connections[projection.synapse_model].capture(projection),
                                      connectivity, values.get(("projections", name), {})))
                rebuilt.add(projection.synapse_model)
            for model, connections in list(self._connections.items()):
                mine = {self.projections[name]: v for (section, name), v in values.items()
                        if section == "projections" and name not in rebuild
                        and self.projections[name].synapse_model == model}
                if not any(mine.values()):
                    continue
                if model in rebuilt:    # its SynapseCollection went stale: read it again, once
                    connections = self._connections[model] = Connections(nest.GetConnections(synapse_model=model))
                with _refused(nest, plan, ", ".join(p.name for p in mine)):
                    undo.add(connections.set(mine))
            if plan.clock is not None and self.content == "network":
                undo.add(_restore_clock(plan))
        return undo


    def _to_rebuild(self, plan, values):
        """``{projection name: (indptr, indices)}`` of the connections a load
        replaces: other connectivity, or other receptor ports.  Raises, before
        any change, for connections NEST cannot delete (from a device)."""
        rebuild = dict(plan.connectivity)
        for (section, name), group_values in values.items():
            projection = self.projections.get(name) if section == "projections" else None
            connections = projection and self._connections[projection.synapse_model]
            if projection is not None and name not in rebuild and RECEPTOR in group_values and \
                    connections.receptors_differ(projection, group_values[RECEPTOR]):
                current = connections.capture(projection)
                rebuild[name] = (current.indptr, current.indices)
        for name in rebuild:
            projection = self.projections[name]
            if projection.pre.element_type != "neuron" and \
                    len(self._connections[projection.synapse_model].positions(projection)):
                raise StructureMismatchError(
                    f"the connections from {projection.pre.name} differ from the file's, and NEST cannot "
                    "delete connections from a device: build them as the saved run did (the same rng_seed "
                    "and calls)",
                    path=plan.report.path, obj=name)
        return rebuild


@contextlib.contextmanager
def _refused(nest, plan, name):
    """A value NEST refuses becomes a StructureMismatchError naming the object."""
    try:
        yield
    except nest.NESTError as exc:
        raise StructureMismatchError(f"NEST refused the file's values: {exc}", path=plan.report.path,
                                     obj=name) from None


# ---------------------------------------------------------------- nodes


def _capture_group(group, keep_status=False):
    """``keep_status``: remember the status read (a load's describe), so that
    the apply that follows reads it only once (10 us per node and key)."""
    local = group.local()
    status = _status(group.local_nodes()) if len(local) else {}
    group.described_status = status if keep_status else None
    keys = sorted(settable_keys(group.model) & set(status))   # defaults list a few more
    recordables = set(_nest().GetDefaults(group.model).get("recordables", ()))
    arrays, info = {}, {}
    for key in keys:
        value = np.atleast_1d(np.asarray(status[key]))
        if value.shape != (len(local),) or value.dtype.kind not in "biuf":
            # never lost without a word: a per-node array (tau_syn of a
            # multisynapse model, ...) or a text entry is not in the file
            warnings.warn(f"{group.name}.{key} is not one number per node: not captured, a restore leaves it "
                          "as the model has it", CheckpointWarning, stacklevel=2)
            continue
        arrays[key] = value
        info[key] = ArrayInfo("variable" if key in recordables else "parameter", "neuron", "ms" if key in
                              ("origin", "start", "stop") else None)
    _capture_array_entries(group, status, len(local), arrays, info)
    if group.positions is not None:   # fixed at Create: checked on load, never set
        arrays[POSITIONS] = np.asarray(group.positions, np.float64)[local]
        info[POSITIONS] = ArrayInfo("parameter", "neuron", None)
    ids = local if group.distributed else None   # under MPI: which of the group's nodes this rank holds
    return PopulationState(group.name, len(local), None, arrays, info, ids, group.size)


def _capture_recorder(group):
    """A recorder's events (``monitors=True``), for analysis: each event
    entry concatenated over the group's nodes, with ``events.lengths``.
    NEST cannot set a recorder's events, so a load does not restore them."""
    warnings.warn(f"{group.name}: its recorded events are saved for analysis; NEST cannot put events back "
                  "into a recorder, so a load leaves the recorder as the script made it", CheckpointWarning,
                  stacklevel=4)
    local = group.local()
    events = list(_status(group.local_nodes())["events"]) if len(local) else []
    keys = sorted({key for node in events for key in node})
    arrays, info = {}, {}
    for key in keys:
        parts = [np.asarray(node.get(key, [])).reshape(-1) for node in events]
        arrays[f"events.{key}"] = np.concatenate(parts) if parts else np.zeros(0)
        info[f"events.{key}"] = ArrayInfo("variable", "free", "ms" if key == "times" else None)
    arrays["events.lengths"] = np.array([len(np.asarray(node.get("senders", []))) for node in events], np.int64)
    info["events.lengths"] = ArrayInfo("variable", "neuron")
    ids = local if group.distributed else None
    return PopulationState(group.name, len(local), None, arrays, info, ids, group.size)


POSITIONS = "positions"


def _positions(nodes):
    """A spatial NodeCollection's positions (one row per node), or None."""
    if getattr(nodes, "spatial", None) is None:
        return None
    return np.atleast_2d(np.asarray(_nest().GetPosition(nodes), np.float64))


def _check_positions(group, values, path):
    """NEST places a layer's nodes at Create: a file with other positions is
    another network, refused before any change."""
    saved = values.pop(POSITIONS, None)
    if saved is None or group.positions is None:
        return
    if not np.array_equal(np.asarray(saved), np.asarray(group.positions)[group.local()]):
        raise StructureMismatchError("the file's spatial positions differ from the layer's (NEST sets them "
                                     "only at Create): build the layer as the saved run did", path=path,
                                     obj=group.name)


#: Suffix of the lengths that split a concatenated per-node array entry.
LENGTHS = ".lengths"


def _capture_array_entries(group, status, n, arrays, info):
    """Status entries that are an array per node: a neuron's (``tau_syn`` of
    a multisynapse model, one value per receptor) as a row per neuron; a
    device's (``spike_times``, ``amplitude_values``), whose lengths differ,
    concatenated, with ``<key>.lengths`` per node."""
    for key in sorted(settable_array_keys(group.model) & set(status)):
        per_node = [np.asarray(value).reshape(-1) for value in status[key]] if n else []
        lengths = np.array([len(v) for v in per_node], np.int64)
        dtype = np.result_type(*per_node) if per_node and any(len(v) for v in per_node) else np.float64
        unit = "ms" if "times" in key else None
        if group.element_type == "neuron" and len(set(lengths.tolist())) <= 1:
            arrays[key] = np.stack(per_node).astype(dtype) if n else np.zeros((0, 0), dtype)
            info[key] = ArrayInfo("parameter", "neuron", unit)
        else:
            arrays[key] = np.concatenate(per_node).astype(dtype) if n else np.zeros(0, dtype)
            info[key] = ArrayInfo("parameter", "free", unit)
            arrays[key + LENGTHS], info[key + LENGTHS] = lengths, ArrayInfo("parameter", "neuron")


def _check_lengths(values, path, name):
    """A concatenated entry's lengths must split it exactly (a file is hostile)."""
    for key, value in values.items():
        lengths = values.get(key + LENGTHS)
        if lengths is not None:
            lengths = np.asarray(lengths, np.int64)
            if np.any(lengths < 0) or int(lengths.sum()) != len(np.asarray(value).reshape(-1)):
                raise CorruptCheckpointError(f"{key}{LENGTHS} does not split the values of {key}", path=path,
                                             obj=f"{name}.{key}")


def _per_node_values(values, n):
    """``{key: [value of node 0, ...]}`` from a plan's arrays: scalars, rows,
    or concatenations split by their lengths."""
    out = {}
    for key, value in values.items():
        if key.endswith(LENGTHS) and key[:-len(LENGTHS)] in values:
            continue
        value = np.asarray(value)
        if key + LENGTHS in values:
            cuts = np.cumsum(np.asarray(values[key + LENGTHS], np.int64))[:-1]   # checked by _check_lengths
            out[key] = [part.tolist() for part in np.split(value, cuts)] if n else []
        elif value.ndim == 2:
            out[key] = [row.tolist() for row in value]
        else:
            out[key] = value.tolist()
    return out


def _status(nodes):
    """``{key: value per node}``: one status call for all keys (``get(keys)``
    makes one per key, 20 times slower)."""
    status = nodes.get()
    return status if len(nodes) > 1 else {key: (value,) for key, value in status.items()}


def _restore_group(group, values):
    if not len(group.local()):
        return None
    nodes = group.local_nodes()
    status, group.described_status = group.described_status or _status(nodes), None
    n = len(group.local())
    array_keys = settable_array_keys(group.model)
    wanted = _per_node_values(values, n)
    current = {key: [np.asarray(v).reshape(-1).tolist() for v in status[key]] if key in array_keys
               else list(status[key]) for key in wanted}
    # only what differs: some models refuse a key whose value does not change
    # (a spike_generator with spike times takes its options only with them)
    differ = {key for key, value in wanted.items()
              if not (_equal_per_node(value, current[key]) if key in array_keys
                      else np.array_equal(np.asarray(value), np.asarray(current[key], dtype=np.asarray(value).dtype)))}
    if differ & array_keys:
        # arrays go together (NEST takes some only with their partner), and a
        # generator's options only with its spike times
        differ |= set(wanted) & settable_array_keys(group.model)
    wanted = {key: wanted[key] for key in differ}
    if not wanted:
        return None
    old = {key: current[key] for key in wanted}
    arrays = any(key in array_keys for key in wanted)
    try:
        _set_nodes(nodes, wanted, n, arrays)
    except BaseException:   # NEST may have set the nodes before the one it refused
        _set_nodes(nodes, old, n, arrays)
        raise
    return lambda: _set_nodes(nodes, old, n, arrays)


def _equal_per_node(a, b):
    return len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


def _set_nodes(nodes, values, n, arrays):
    """One status call: a dictionary of lists, or, when an entry is itself
    an array per node (which NEST takes only that way), a dictionary per node."""
    if arrays:
        nodes.set([{key: values[key][i] for key in values} for i in range(n)])
    else:
        nodes.set(values)


# ---------------------------------------------------------- connections


class Connections:
    """The connections of one SynapseCollection, read with one status call."""

    def __init__(self, collection):
        self.collection = collection
        self.keys = []
        status = {}
        if len(collection):
            sample = collection[0].get()
            self.keys = sorted(k for k, v in sample.items() if k not in CONNECTION_IDENTITY and _is_number(v))
            status = collection.get(["source", "target", RECEPTOR] + self.keys)
        self.source = np.atleast_1d(np.asarray(status.get("source", []), np.int64))
        self.target = np.atleast_1d(np.asarray(status.get("target", []), np.int64))
        # the receptor port: part of a connection's identity (set only by Connect), but state all the same
        self.receptor = np.atleast_1d(np.asarray(status.get(RECEPTOR, []), np.int64))
        self.values = {key: np.atleast_1d(np.asarray(status[key])) for key in self.keys}

    def projections(self, model, groups):
        """One SynapseGroup per (pre group, post group) pair with connections;
        connections to or from other nodes (recorders) are left out."""
        pre, post = _group_index(groups, self.source), _group_index(groups, self.target)
        pairs = np.unique(np.stack([pre, post], axis=1)[(pre >= 0) & (post >= 0)], axis=0)
        return [SynapseGroup(model, groups[i], groups[j]) for i, j in pairs]

    def positions(self, projection):
        """Where the projection's synapses are in the collection, in CSR
        order (by post neuron; NEST's order within one)."""
        pre, post = projection.pre, projection.post
        index = np.flatnonzero((self.source >= pre.first) & (self.source <= pre.last)
                               & (self.target >= post.first) & (self.target <= post.last))
        return index[np.argsort(self.target[index], kind="stable")]

    def capture(self, projection):
        """CSR by this rank's post neurons (all of them in one process), pre
        positions in the pre group."""
        at = self.positions(projection)
        local = projection.post.local()
        row = np.searchsorted(local, self.target[at] - projection.post.first)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=len(local)))])
        state = ProjectionState(projection.name, projection.pre.name, projection.post.name,
                                (len(local), projection.pre.size), indptr.astype(np.int64),
                                self.source[at] - projection.pre.first, target=None)
        for key in self.keys:
            state.arrays[key] = self.values[key][at]
            state.info[key] = ArrayInfo("parameter" if key == "delay" else "variable", "synapse",
                                        "ms" if key == "delay" else None)
        state.arrays[RECEPTOR], state.info[RECEPTOR] = self.receptor[at], ArrayInfo("parameter", "synapse")
        return state

    def receptors_differ(self, projection, receptor):
        """Whether the file's ports differ from the connections' (then only a
        rebuild can set them: NEST sets a port only when connecting)."""
        return not np.array_equal(self.receptor[self.positions(projection)], receptor)

    def set(self, values_by_projection):
        """Set per-synapse values given in CSR order, ``{SynapseGroup: {key:
        array}}``, with one call for the whole collection; returns the undo."""
        new = {}
        for projection, values in values_by_projection.items():
            at = self.positions(projection)
            for key, value in values.items():
                if key != RECEPTOR:   # equal here: a different port was rebuilt
                    new.setdefault(key, self.values[key].copy())[at] = value
        if not new or not len(self.collection):
            return lambda: None
        old = {key: self.values[key].tolist() for key in new}
        try:
            _set_connections(self.collection, {key: value.tolist() for key, value in new.items()})
        except BaseException:   # NEST may have set some connections before refusing one
            _set_connections(self.collection, old)
            raise
        return lambda: _set_connections(self.collection, old)


def _set_connections(collection, values):
    """``collection.set(values)``, one list per key.  Under MPI NEST's
    Python layer refuses lists (a script's list would not match each rank's
    own connections); ours are this rank's, in the order GetConnections gave
    them, so the kernel call it guards is handed them directly, as the
    per-connection dictionaries ``set`` itself makes in one process."""
    nest = _nest()
    if nest.NumProcesses() == 1:
        collection.set(values)
        return
    from nest import nestkernel_api
    keys = list(values)
    rows = [dict(zip(keys, row)) for row in zip(*(values[key] for key in keys))]
    nestkernel_api.llapi_set_connection_status(collection._datum, rows)


def _projection_of(connections):
    nest = _nest()
    status = connections.get(["source", "target", "synapse_model"])
    models = set(np.atleast_1d(status["synapse_model"]))
    sources, targets = np.atleast_1d(status["source"]), np.atleast_1d(status["target"])
    groups = [g for g in _node_groups(nest.GetNodes()) if g.element_type in POPULATION_TYPES]
    pre, post = (np.unique(_group_index(groups, np.asarray(ids, np.int64))) for ids in (sources, targets))
    if len(models) != 1 or len(pre) != 1 or len(post) != 1 or pre[0] < 0 or post[0] < 0:
        raise UnsupportedObjectError("pass a SynapseCollection of one synapse model between one "
                                     "population and another", obj="SynapseCollection")
    return SynapseGroup(str(models.pop()), groups[pre[0]], groups[post[0]])


def _ranges(ids):
    """``1-3, 7`` for node IDs 1, 2, 3, 7."""
    out, start = [], None
    for i, node in enumerate(ids):
        if start is None:
            start = node
        if i + 1 == len(ids) or ids[i + 1] != node + 1:
            out.append(str(start) if start == node else f"{start}-{node}")
            start = None
    return ", ".join(out)


def _group_index(groups, ids):
    """For each node ID, its group's index in ``groups`` (sorted by first
    ID), or -1 when no group holds it (a recorder)."""
    firsts = np.array([g.first for g in groups], np.int64)
    lasts = np.array([g.last for g in groups], np.int64)
    index = np.searchsorted(firsts, ids, "right") - 1
    inside = (index >= 0) & (ids <= lasts[np.maximum(index, 0)])
    return np.where(inside, index, -1)


def _rebuild(projection, before, connectivity, values):
    """Replace the projection's connections with the file's, every value
    given to one array ``Connect`` (NEST checks the keys before it connects
    anything).  Returns the undo: ``before``'s connections back."""
    if "delay" not in values and len(connectivity[1]):
        raise StructureMismatchError("the file's connectivity differs from the model's and has no delays "
                                     "to rebuild it with", obj=projection.name)
    try:
        _replace(projection, ProjectionState(projection.name, None, None, before.shape, *connectivity,
                                             arrays=dict(values)))
    except BaseException:
        _replace(projection, before)
        raise
    return lambda: _replace(projection, before)


def _replace(projection, state):
    """Replace the projection's connections with ``state``'s (connectivity
    and per-synapse arrays)."""
    current = projection.connections()
    if len(current):
        # NEST deletes connections one by one (300-430 s per million here): say so first
        log.warning("%s: deleting %d connections that differ from the file's (NEST takes about %.0f s); a "
                    "script that knows it resumes can create its nodes only, and let the load connect them",
                    projection.name, len(current), len(current) * DISCONNECT_SECONDS)
        current.disconnect()
    if len(state.indices) == 0:
        return
    rows = np.repeat(np.arange(len(state.indptr) - 1, dtype=np.int64), np.diff(state.indptr))
    post = projection.post.local()[rows]    # this rank's post neurons (all of them in one process)
    spec = {"synapse_model": projection.synapse_model}
    for key, value in state.arrays.items():   # weight, delay and every other per-connection entry
        if value is not None and key != RECEPTOR:
            value = np.asarray(value)
            spec[key] = value.astype(np.int64 if value.dtype.kind in "biu" else np.float64, copy=False)
    if state.arrays.get(RECEPTOR) is not None and np.any(state.arrays[RECEPTOR]):
        spec["receptor_type"] = np.asarray(state.arrays[RECEPTOR], np.int64)
    _nest().Connect(np.asarray(state.indices, np.int64) + projection.pre.first, post + projection.post.first,
                    "one_to_one", syn_spec=spec)


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
