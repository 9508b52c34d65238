"""NEST's nodes: runs of consecutive node IDs of one model (a population
``"<model>@<first id>"``), the status entries a script can set, and their
capture and restore with one status call per group."""

import re
import warnings

import numpy as np

from ...errors import CheckpointWarning, CorruptCheckpointError, StructureMismatchError
from ...state import ArrayInfo, PopulationState


def nest_module():
    """The ``nest`` module, imported when first needed (never by ``import checkpoint``)."""
    import nest

    return nest


POPULATION_TYPES = ("neuron", "stimulator")


# Status entries a script cannot set (identity, layout, bookkeeping), of a
# node and of a connection.
NODE_IDENTITY = {
    "global_id",
    "local",
    "model_id",
    "node_uses_wfr",
    "thread",
    "thread_local_id",
    "vp",
    "frozen",
    "archiver_length",
    "post_trace",
    "t_spike",
    "elementsize",
}


_settable_cache: dict = {}  # node model -> (settable numeric keys, settable per-node array keys)


def is_number_value(value):
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
        nest = nest_module()
        numbers, arrays, together = set(), set(), {}
        for key, value in nest.GetDefaults(model).items():
            is_array = isinstance(value, (list, tuple, np.ndarray)) and np.asarray(value).dtype.kind in "biuf"
            if key in NODE_IDENTITY or not (is_number_value(value) or is_array):  # devices accept these as defaults
                continue
            try:
                nest.SetDefaults(model, {key: value})
            except nest.NESTError:
                if is_array:
                    together[key] = value
                continue
            (arrays if is_array else numbers).add(key)
        if together:  # arrays NEST takes only together (a step_current_generator's times and values)
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
        self.name = f"{model}@{first}"  # not the size: a changed size must not match
        self._local = None
        self.positions = None  # a spatial layer's, when known

    @property
    def size(self):
        return self.last - self.first + 1

    def nodes(self):
        return nest_module().NodeCollection(list(range(self.first, self.last + 1)))

    def local(self):
        """Positions in the group of the nodes this MPI rank holds (all of
        them in one process, and for devices, which every rank replicates)."""
        if self._local is None:
            if nest_module().NumProcesses() == 1:
                self._local = np.arange(self.size, dtype=np.int64)
            else:
                local = np.atleast_1d(np.asarray(self.nodes().get("local"), bool))
                self._local = np.flatnonzero(local).astype(np.int64)
        return self._local

    def local_nodes(self):
        """The NodeCollection of the nodes this rank holds."""
        return nest_module().NodeCollection((self.local() + self.first).tolist())

    @property
    def distributed(self):
        return nest_module().NumProcesses() > 1


def node_groups(nodes):
    """Split a NodeCollection into runs of consecutive IDs of one model."""
    if len(nodes) == 0:
        return []
    runs = _primitive_runs(nodes)
    if runs is None:  # NEST did not describe it as plain runs: ask every node (10 us each)
        ids = np.atleast_1d(np.asarray(nodes.get("global_id"), np.int64))
        models = np.atleast_1d(np.asarray(nodes.get("model")))
        breaks = np.flatnonzero((np.diff(ids) != 1) | (models[1:] != models[:-1])) + 1
        starts, ends = np.concatenate([[0], breaks]), np.concatenate([breaks, [len(ids)]])
        runs = [(str(models[s]), int(ids[s]), int(ids[e - 1])) for s, e in zip(starts, ends)]
    merged = []
    for model, first, last in runs:  # consecutive Creates of one model are one group, as before
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


_element_types: dict = {}


def _element_type(model):
    if model not in _element_types:
        _element_types[model] = str(nest_module().GetDefaults(model)["element_type"])
    return _element_types[model]


def capture_group(group, warn=True):
    """``(PopulationState, the status read)``: a load's describe hands the
    status to its apply, which then reads it only once (10 us per node and key).
    ``warn``: name at a save what the model records but a script cannot set."""
    local = group.local()
    status = _status(group.local_nodes()) if len(local) else {}
    keys = sorted(settable_keys(group.model) & set(status))  # defaults list a few more
    recordables = set(nest_module().GetDefaults(group.model).get("recordables", ()))
    if warn:
        _warn_unsettable(group, recordables)
    arrays, info = {}, {}
    for key in keys:
        value = np.atleast_1d(np.asarray(status[key]))
        if value.shape != (len(local),) or value.dtype.kind not in "biuf":
            # never lost without a word: a per-node array (tau_syn of a
            # multisynapse model, ...) or a text entry is not in the file
            warnings.warn(
                f"{group.name}.{key} is not one number per node: not captured, a restore leaves it as the model has it",
                CheckpointWarning,
                stacklevel=2,
            )
            continue
        arrays[key] = value
        info[key] = ArrayInfo(
            "variable" if key in recordables else "parameter",
            "neuron",
            "ms" if key in ("origin", "start", "stop") else None,
        )
    _capture_array_entries(group, status, len(local), arrays, info)
    if group.positions is not None:  # fixed at Create: checked on load, never set
        arrays[POSITIONS] = np.asarray(group.positions, np.float64)[local]
        info[POSITIONS] = ArrayInfo("parameter", "neuron", None)
    ids = local if group.distributed else None  # under MPI: which of the group's nodes this rank holds
    return PopulationState(group.name, len(local), None, arrays, info, ids, group.size), status


def _warn_unsettable(group, recordables):
    """State a model exposes only for recording (the adaptive threshold
    ``V_th`` and ``z`` of ``aeif_psc_delta_clopath``, synaptic currents) is
    read, but NEST takes no value for it: a restart loses it, said here by name."""
    settable = settable_keys(group.model) | settable_array_keys(group.model)
    lost = sorted(r for r in recordables if r not in settable)
    if lost:
        warnings.warn(
            f"{group.name}: {', '.join(lost)} can be recorded but not set in NEST: a restart "
            "starts them from what the model computes, not from their saved values",
            CheckpointWarning,
            stacklevel=4,
        )


def capture_recorder(group):
    """A recorder's events (``monitors=True``), for analysis: each event
    entry concatenated over the group's nodes, with ``events.lengths``.
    NEST cannot set a recorder's events, so a load does not restore them."""
    warnings.warn(
        f"{group.name}: its recorded events are saved for analysis; NEST cannot put events back "
        "into a recorder, so a load leaves the recorder as the script made it",
        CheckpointWarning,
        stacklevel=4,
    )
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


def layer_positions(nodes):
    """A spatial NodeCollection's positions (one row per node), or None."""
    if getattr(nodes, "spatial", None) is None:
        return None
    return np.atleast_2d(np.asarray(nest_module().GetPosition(nodes), np.float64))


def check_positions(group, values, path):
    """NEST places a layer's nodes at Create: a file with other positions is
    another network, refused before any change."""
    saved = values.pop(POSITIONS, None)
    if saved is None or group.positions is None:
        return
    if not np.array_equal(np.asarray(saved), np.asarray(group.positions)[group.local()]):
        raise StructureMismatchError(
            "the file's spatial positions differ from the layer's (NEST sets them "
            "only at Create): build the layer as the saved run did",
            path=path,
            obj=group.name,
        )


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


def check_lengths(group, values, path, name):
    """A concatenated entry's lengths must split it exactly, and an entry
    that is an array per node but one-dimensional must have them (a file is
    hostile: NEST would raise, or set one node's spikes on another)."""
    array_keys = settable_array_keys(group.model)
    for key, value in values.items():
        if key.endswith(LENGTHS):
            continue
        value = np.asarray(value)
        lengths = values.get(key + LENGTHS)
        if lengths is None:
            if key in array_keys and value.ndim != 2:
                raise CorruptCheckpointError(
                    f"{key} is an array per node, without {key}{LENGTHS} to split it", path=path, obj=f"{name}.{key}"
                )
            continue
        lengths = np.asarray(lengths)
        total = value.size
        # each length bounded by the values first: their sum then cannot overflow int64
        ok = (
            lengths.ndim == 1
            and lengths.dtype.kind in "iu"
            and value.ndim == 1
            and (len(lengths) == 0 or (int(lengths.min()) >= 0 and int(lengths.max()) <= total))
        )
        if not ok or int(lengths.sum(dtype=np.int64)) != total:
            raise CorruptCheckpointError(
                f"{key}{LENGTHS} does not split the values of {key}", path=path, obj=f"{name}.{key}"
            )


def _per_node_values(values, n):
    """``{key: [value of node 0, ...]}`` from a plan's arrays: scalars, rows,
    or concatenations split by their lengths."""
    out = {}
    for key, value in values.items():
        if key.endswith(LENGTHS) and key[: -len(LENGTHS)] in values:
            continue
        value = np.asarray(value)
        if key + LENGTHS in values:
            cuts = np.cumsum(np.asarray(values[key + LENGTHS], np.int64))[:-1]  # checked by check_lengths
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


def restore_group(group, values, status, undo):
    """Set the nodes' values that differ from ``status`` (read by describe;
    None: read now), the undo recorded in ``undo`` first."""
    if not len(group.local()):
        return
    nodes = group.local_nodes()
    status = status or _status(nodes)
    n = len(group.local())
    array_keys = settable_array_keys(group.model)
    wanted = _per_node_values(values, n)
    current = {
        key: [np.asarray(v).reshape(-1).tolist() for v in status[key]] if key in array_keys else list(status[key])
        for key in wanted
    }
    # only what differs: some models refuse a key whose value does not change
    # (a spike_generator with spike times takes its options only with them)
    differ = {
        key
        for key, value in wanted.items()
        if not (
            _equal_per_node(value, current[key])
            if key in array_keys
            else np.array_equal(np.asarray(value), np.asarray(current[key], dtype=np.asarray(value).dtype))
        )
    }
    if differ & array_keys:
        # arrays go together (NEST takes some only with their partner), and a
        # generator's options only with its spike times
        differ |= set(wanted) & settable_array_keys(group.model)
    wanted = {key: wanted[key] for key in differ}
    if not wanted:
        return
    old = {key: current[key] for key in wanted}
    arrays = any(key in array_keys for key in wanted)
    # recorded before the change: NEST may set the nodes before the one it refuses
    undo.add(lambda: _set_nodes(nodes, old, n, arrays))
    _set_nodes(nodes, wanted, n, arrays)


def _equal_per_node(a, b):
    return len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


def _set_nodes(nodes, values, n, arrays):
    """One status call: a dictionary of lists, or, when an entry is itself
    an array per node (which NEST takes only that way), a dictionary per node."""
    if arrays:
        nodes.set([{key: values[key][i] for key in values} for i in range(n)])
    else:
        nodes.set(values)


def id_ranges(ids):
    """``1-3, 7`` for node IDs 1, 2, 3, 7."""
    out, start = [], None
    for i, node in enumerate(ids):
        if start is None:
            start = node
        if i + 1 == len(ids) or ids[i + 1] != node + 1:
            out.append(str(start) if start == node else f"{start}-{node}")
            start = None
    return ", ".join(out)


def group_index(groups, ids):
    """For each node ID, its group's index in ``groups`` (sorted by first
    ID), or -1 when no group holds it (a recorder)."""
    firsts = np.array([g.first for g in groups], np.int64)
    lasts = np.array([g.last for g in groups], np.int64)
    index = np.searchsorted(firsts, ids, "right") - 1
    inside = (index >= 0) & (ids <= lasts[np.maximum(index, 0)])
    return np.where(inside, index, -1)
