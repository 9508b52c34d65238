"""NEST's connections: read once per synapse model, grouped into
projections ``"<synapse model> <pre>-><post>"`` as CSR by post neuron, set
with one call per collection, or rebuilt with one array ``Connect``."""

import logging

import numpy as np

from ...errors import CorruptCheckpointError, StructureMismatchError, UnsupportedObjectError
from ...state import ArrayInfo, ProjectionState
from .nodes import POPULATION_TYPES, group_index, is_number_value, nest_module, node_groups

log = logging.getLogger("checkpoint")


RECEPTOR = "receptor"


CONNECTION_IDENTITY = {
    "source",
    "target",
    "target_thread",
    "port",
    "synapse_id",
    "synapse_model",
    "sizeof",
    "receptor",
    "synapse_modelid",
}


#: Seconds NEST took per connection to ``Disconnect`` here (1M in 300-430 s).
DISCONNECT_SECONDS = 4e-4


class SynapseGroup:
    """The connections of one synapse model from one group to another."""

    def __init__(self, synapse_model, pre, post):
        self.synapse_model, self.pre, self.post = synapse_model, pre, post
        self.name = f"{synapse_model} {pre.name}->{post.name}"

    def connections(self):
        return nest_module().GetConnections(
            source=self.pre.nodes(), target=self.post.nodes(), synapse_model=self.synapse_model
        )


class Connections:
    """The connections of one SynapseCollection, read with one status call."""

    def __init__(self, collection):
        self.collection = collection
        self.keys = []
        status = {}
        if len(collection):
            sample = collection[0].get()
            defaults = nest_module().GetDefaults(str(sample["synapse_model"]))
            # a model without delays (gap_junction) lists one it refuses to have set
            ignored = CONNECTION_IDENTITY | ({"delay"} if defaults.get("has_delay") is False else set())
            self.keys = sorted(k for k, v in sample.items() if k not in ignored and is_number_value(v))
            status = collection.get(["source", "target", RECEPTOR] + self.keys)
        self.source = np.atleast_1d(np.asarray(status.get("source", []), np.int64))
        self.target = np.atleast_1d(np.asarray(status.get("target", []), np.int64))
        # the receptor port: part of a connection's identity (set only by Connect), but state all the same
        self.receptor = np.atleast_1d(np.asarray(status.get(RECEPTOR, []), np.int64))
        self.values = {key: np.atleast_1d(np.asarray(status[key])) for key in self.keys}

    def projections(self, model, groups):
        """One SynapseGroup per (pre group, post group) pair with connections;
        connections to or from other nodes (recorders) are left out."""
        pre, post = group_index(groups, self.source), group_index(groups, self.target)
        pairs = np.unique(np.stack([pre, post], axis=1)[(pre >= 0) & (post >= 0)], axis=0)
        return [SynapseGroup(model, groups[i], groups[j]) for i, j in pairs]

    def positions(self, projection):
        """Where the projection's synapses are in the collection, in CSR
        order (by post neuron; NEST's order within one)."""
        pre, post = projection.pre, projection.post
        index = np.flatnonzero(
            (self.source >= pre.first)
            & (self.source <= pre.last)
            & (self.target >= post.first)
            & (self.target <= post.last)
        )
        return index[np.argsort(self.target[index], kind="stable")]

    def capture(self, projection):
        """CSR by this rank's post neurons (all of them in one process), pre
        positions in the pre group."""
        at = self.positions(projection)
        local = projection.post.local()
        row = np.searchsorted(local, self.target[at] - projection.post.first)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=len(local)))])
        state = ProjectionState(
            projection.name,
            projection.pre.name,
            projection.post.name,
            (len(local), projection.pre.size),
            indptr.astype(np.int64),
            self.source[at] - projection.pre.first,
            target=None,
        )
        for key in self.keys:
            state.arrays[key] = self.values[key][at]
            state.info[key] = ArrayInfo(
                "parameter" if key == "delay" else "variable", "synapse", "ms" if key == "delay" else None
            )
        state.arrays[RECEPTOR], state.info[RECEPTOR] = self.receptor[at], ArrayInfo("parameter", "synapse")
        return state

    def receptors_differ(self, projection, receptor):
        """Whether the file's ports differ from the connections' (then only a
        rebuild can set them: NEST sets a port only when connecting)."""
        return not np.array_equal(self.receptor[self.positions(projection)], receptor)

    def set(self, values_by_projection, undo):
        """Set per-synapse values given in CSR order, ``{SynapseGroup: {key:
        array}}``, with one call for the whole collection, the undo recorded
        in ``undo`` first."""
        new = {}
        for projection, values in values_by_projection.items():
            at = self.positions(projection)
            for key, value in values.items():
                if key != RECEPTOR:  # equal here: a different port was rebuilt
                    new.setdefault(key, self.values[key].copy())[at] = value
        if not new or not len(self.collection):
            return
        old = {key: self.values[key].tolist() for key in new}
        # recorded before the change: NEST may set some connections before refusing one
        undo.add(lambda: _set_connections(self.collection, old))
        _set_connections(self.collection, {key: value.tolist() for key, value in new.items()})


def _set_connections(collection, values):
    """``collection.set(values)``, one list per key.  Under MPI NEST's
    Python layer refuses lists (a script's list would not match each rank's
    own connections); ours are this rank's, in the order GetConnections gave
    them, so the kernel call it guards is handed them directly, as the
    per-connection dictionaries ``set`` itself makes in one process."""
    nest = nest_module()
    if nest.NumProcesses() == 1:
        collection.set(values)
        return
    from nest import nestkernel_api

    keys = list(values)
    rows = [dict(zip(keys, row)) for row in zip(*(values[key] for key in keys))]
    nestkernel_api.llapi_set_connection_status(collection._datum, rows)


def projection_of(connections):
    nest = nest_module()
    status = connections.get(["source", "target", "synapse_model"])
    models = set(np.atleast_1d(status["synapse_model"]))
    sources, targets = np.atleast_1d(status["source"]), np.atleast_1d(status["target"])
    groups = [g for g in node_groups(nest.GetNodes()) if g.element_type in POPULATION_TYPES]
    pre, post = (np.unique(group_index(groups, np.asarray(ids, np.int64))) for ids in (sources, targets))
    if len(models) != 1 or len(pre) != 1 or len(post) != 1 or pre[0] < 0 or post[0] < 0:
        raise UnsupportedObjectError(
            "pass a SynapseCollection of one synapse model between one population and another", obj="SynapseCollection"
        )
    return SynapseGroup(str(models.pop()), groups[pre[0]], groups[post[0]])


def check_rebuild(projection, path):
    """Raise, before any change, when NEST cannot make the projection's
    connections one by one: a model that requires symmetric connections
    (gap junctions) is connected in pairs by ``make_symmetric``."""
    if nest_module().GetDefaults(projection.synapse_model).get("requires_symmetric"):
        raise StructureMismatchError(
            f"the file's {projection.synapse_model} connections differ from the model's, and NEST makes them "
            "only in symmetric pairs: connect them as the saved run did (the same calls), then load",
            path=path,
            obj=projection.name,
        )


def check_receptors(values, path, name):
    """Receptor ports are indices >= 0 (NEST's Python layer raises IndexError on others)."""
    receptor = values.get(RECEPTOR)
    if receptor is not None:
        receptor = np.asarray(receptor)
        if receptor.dtype.kind not in "iu" or (receptor.size and int(receptor.min()) < 0):
            raise CorruptCheckpointError("receptor ports are not indices >= 0", path=path, obj=f"{name}.{RECEPTOR}")


def rebuild_projection(projection, before, connectivity, values, undo):
    """Replace the projection's connections with the file's, every value
    given to one array ``Connect`` (NEST checks the keys before it connects
    anything).  The undo, recorded in ``undo`` first: ``before``'s
    connections back."""
    if (
        "delay" not in values
        and len(connectivity[1])
        and nest_module().GetDefaults(projection.synapse_model).get("has_delay") is not False
    ):
        raise StructureMismatchError(
            "the file's connectivity differs from the model's and has no delays to rebuild it with", obj=projection.name
        )
    undo.add(lambda: _replace(projection, before))
    _replace(projection, ProjectionState(projection.name, None, None, before.shape, *connectivity, arrays=dict(values)))


def _replace(projection, state):
    """Replace the projection's connections with ``state``'s (connectivity
    and per-synapse arrays)."""
    current = projection.connections()
    if len(current):
        # NEST deletes connections one by one (300-430 s per million here): say so first
        log.warning(
            "%s: deleting %d connections that differ from the file's (NEST takes about %.0f s); a "
            "script that knows it resumes can create its nodes only, and let the load connect them",
            projection.name,
            len(current),
            len(current) * DISCONNECT_SECONDS,
        )
        current.disconnect()
    if len(state.indices) == 0:
        return
    rows = np.repeat(np.arange(len(state.indptr) - 1, dtype=np.int64), np.diff(state.indptr))
    post = projection.post.local()[rows]  # this rank's post neurons (all of them in one process)
    spec = {"synapse_model": projection.synapse_model}
    for key, value in state.arrays.items():  # weight, delay and every other per-connection entry
        if value is not None and key != RECEPTOR:
            value = np.asarray(value)
            spec[key] = value.astype(np.int64 if value.dtype.kind in "biu" else np.float64, copy=False)
    if state.arrays.get(RECEPTOR) is not None and np.any(state.arrays[RECEPTOR]):
        spec["receptor_type"] = np.asarray(state.arrays[RECEPTOR], np.int64)
    nest_module().Connect(
        np.asarray(state.indices, np.int64) + projection.pre.first,
        post + projection.post.first,
        "one_to_one",
        syn_spec=spec,
    )
