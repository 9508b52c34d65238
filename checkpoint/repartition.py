"""Moving a sharded checkpoint's state onto another partition of the neurons.

An MPI run saves one shard per rank (:mod:`checkpoint.distributed`).  A
shard's populations name the *global* index of each neuron they hold
(``PopulationState.ids``), and its projections hold the synapses onto those
neurons, CSR by post with global pre indices.  State is therefore keyed by
global identity, not by rank, and :func:`gather` can build any rank's part
of any other partition (or the whole network, for one process) from any
set of shards: a population's arrays are picked neuron by neuron, a
projection's synapses row by row, in the order of the wanted ids.

This module works on states already read; :mod:`checkpoint.distributed`
decides which shards to open and checks them against their manifest.
"""

import numpy as np

from .errors import StructureMismatchError
from .hashing import checksum
from .state import NetworkState, PopulationState, ProjectionState, check_ids

__all__ = ["summary", "gather", "matching"]


def summary(state):
    """What a manifest records of one shard's populations, so that a rank can
    tell without opening the shard whether it holds neurons it needs, and
    whether the shard is exactly its own part (same ids)."""
    out = {}
    for name, pop in state.populations.items():
        ids = pop.global_ids()
        out[name] = {
            "global_size": pop.global_size,
            "global_ids": pop.ids is not None,
            "count": len(ids),
            "first": int(ids[0]) if len(ids) else 0,
            "last": int(ids[-1]) if len(ids) else -1,
            "checksum": checksum(ids),
        }
    return out


def matching(wanted, have):
    """``(target, source)``: positions in ``wanted`` and in ``have`` of the ids
    both hold (both sorted and distinct), so that ``out[target] = in[source]``."""
    if not len(wanted) or not len(have):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    position = np.searchsorted(wanted, have)
    clipped = np.minimum(position, len(wanted) - 1)
    hit = (position < len(wanted)) & (wanted[clipped] == have)
    return position[hit].astype(np.int64), np.flatnonzero(hit).astype(np.int64)


#: Synapses copied per step when rows are scattered (round robin): bounds
#: the index arrays a copy needs to a few tens of MB.
CHUNK_SYNAPSES = 1 << 22


def copy_rows(destination, destination_indptr, target, source_values, source_indptr, source):
    """``destination``'s rows ``target`` = ``source_values``' rows ``source``
    (CSR rows of per-synapse values, the same count in each pair): one slice
    when both sides are runs of consecutive rows (a partition in blocks),
    else in chunks of :data:`CHUNK_SYNAPSES`, so that no index array as
    large as the state is made."""
    if not len(source):
        return
    if _consecutive(target) and _consecutive(source):
        d0, d1 = destination_indptr[target[0]], destination_indptr[target[-1] + 1]
        s0, s1 = source_indptr[source[0]], source_indptr[source[-1] + 1]
        destination[d0:d1] = source_values[s0:s1]
        return
    sizes = np.cumsum(source_indptr[source + 1] - source_indptr[source])
    cuts = np.searchsorted(sizes, np.arange(CHUNK_SYNAPSES, int(sizes[-1]), CHUNK_SYNAPSES))
    for part_target, part_source in zip(np.split(target, cuts), np.split(source, cuts)):
        positions, _ = _rows(source_indptr, part_source)
        into, _ = _rows(destination_indptr, part_target)
        destination[into] = source_values[positions]


def _consecutive(rows):
    return bool(rows[-1] - rows[0] == len(rows) - 1 and (len(rows) < 2 or np.all(np.diff(rows) == 1)))


def _rows(indptr, rows):
    """Synapse positions of CSR ``rows``, in row order, and the count per row."""
    starts, counts = indptr[rows], indptr[rows + 1] - indptr[rows]
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), counts
    # positions = starts[r] + 0..count[r]-1 for each row, without a Python loop
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return offsets + np.arange(total, dtype=np.int64), counts


def _take_global(arrays, var, values, shard, path, name):
    """A global value is the same on every rank: taken from the first shard,
    and any shard that says otherwise is refused (one value would be lost)."""
    values = np.asarray(values)
    if var not in arrays:
        arrays[var] = values
    elif not np.array_equal(arrays[var], values):
        raise StructureMismatchError(
            f"{shard} has another value than another shard for this global value", path=path, obj=f"{name}.{var}"
        )


class _Population:
    """The wanted neurons of one population, filled shard by shard."""

    def __init__(self, name, ids, global_size, path, held=None):
        self.name, self.ids, self.global_size, self.path = name, ids, global_size, path
        #: for the whole population (ids None): how many neurons the shards hold
        #: in all (their stored ids), which bounds what a forged global_size may allocate
        self.held = held
        self.found = None if ids is None else np.zeros(len(ids), bool)
        self.arrays, self.info, self.geometry = {}, {}, None
        self.variables = None  # the variables every shard of it must hold

    def locate(self, pop, shard):
        """Pass 1: ``(target, source, held)``: where this shard's wanted
        neurons go, and those another shard has given already (a replica)."""
        if pop.global_size != self.global_size:
            raise StructureMismatchError(
                f"{shard} holds neurons of a population of {pop.global_size}, the model's has {self.global_size}",
                path=self.path,
                obj=self.name,
            )
        have = pop.global_ids()
        check_ids(have, pop.global_size, self.path, f"{shard}: {self.name}")
        if self.ids is None:  # the whole population, in global order
            held = pop.size if self.held == "one shard" else self.held
            # before allocating: some of these neurons would be in no shard
            if held is not None and self.global_size > held:
                raise StructureMismatchError(
                    f"{shard} declares a population of {self.global_size} neurons; its shards hold {held}",
                    path=self.path,
                    obj=self.name,
                )
            self.ids, self.found = np.arange(self.global_size, dtype=np.int64), np.zeros(self.global_size, bool)
        target, source = matching(self.ids, have)
        held = self.found[target]
        self.found[target] = True
        return target[~held], source[~held], (target[held], source[held])

    def fill(self, pop, where, shard):
        """Pass 2: take this shard's values; check its replicas."""
        target, source, (held_target, held_source) = where
        self.geometry = self.geometry or pop.geometry
        whole = pop.size == self.global_size
        self.variables = _same_variables(self.variables, pop, shard, self.path, self.name)
        for var, values in pop.arrays.items():
            self._take(var, values, pop.info[var], target, source, shard, whole)
        if len(held_target):
            self._check_replica(pop, held_target, held_source, shard)

    def _check_replica(self, pop, target, source, shard):
        """Neurons another shard holds too are a replica (a simulator's device
        on every rank) only if every value is the same."""
        for var, values in pop.arrays.items():
            scope = pop.info[var].scope
            if scope == "neuron":
                same = var in self.arrays and np.array_equal(self.arrays[var][target], np.asarray(values)[source])
            elif scope == "free":
                same = var in self.arrays and np.array_equal(self.arrays[var], np.asarray(values))
            else:
                continue
            if not same:
                raise StructureMismatchError(
                    f"{shard} holds neurons another shard holds too, with other values",
                    path=self.path,
                    obj=f"{self.name}.{var}",
                )

    def _take(self, var, values, info, target, source, shard, whole):
        if info.scope == "free":
            # a simulator's own layout (a generator's spike times): it moves
            # only with a population every shard holds whole (a replicated device)
            if not whole:
                raise StructureMismatchError(
                    "a simulator's free-form array (not per neuron) cannot move to another partition",
                    path=self.path,
                    obj=f"{self.name}.{var}",
                )
            if var not in self.arrays:
                self.arrays[var], self.info[var] = np.asarray(values), info
            return
        if info.scope == "global":  # the same on every rank
            _take_global(self.arrays, var, values, shard, self.path, self.name)
            self.info.setdefault(var, info)
            return
        if not len(target) and var in self.arrays:
            return
        values = np.asarray(values)  # a lazy array is read whole, and verified
        if var not in self.arrays:
            self.arrays[var] = np.empty((len(self.ids),) + values.shape[1:], values.dtype)
            self.info[var] = info
        elif self.arrays[var].dtype != values.dtype or self.arrays[var].shape[1:] != values.shape[1:]:
            raise StructureMismatchError(
                f"{shard} stores it as {values.dtype} {list(values.shape[1:])} per "
                f"neuron, another shard as {self.arrays[var].dtype} "
                f"{list(self.arrays[var].shape[1:])}",
                path=self.path,
                obj=f"{self.name}.{var}",
            )
        self.arrays[var][target] = values[source]

    def finish(self):
        missing = np.flatnonzero(~self.found) if self.found is not None else np.zeros(0)
        if len(missing):
            raise StructureMismatchError(
                f"{len(missing)} neurons (global ids {missing[:5].tolist()}{'...' if len(missing) > 5 else ''}) "
                "are in no shard of the checkpoint",
                path=self.path,
                obj=self.name,
            )
        size = 0 if self.ids is None else len(self.ids)
        whole = self.ids is None or size == self.global_size
        return PopulationState(
            self.name, size, self.geometry, self.arrays, self.info, None if whole else self.ids, self.global_size
        )


class _Projection:
    """The synapses onto the wanted post neurons of one projection: their
    count per row first (pass 1, from each shard's ``indptr``), so that pass 2
    writes every value once, into arrays allocated once."""

    def __init__(self, name, n_post, path):
        self.name, self.path = name, path
        self.counts = np.zeros(n_post, np.int64)
        self.indptr = self.indices = None
        self.arrays, self.info, self.first = {}, {}, None
        self.variables = None

    def count(self, proj, target, source, shard, post_size):
        """Pass 1."""
        if len(proj.indptr) != post_size + 1 or tuple(proj.shape)[0] != post_size:
            # a forged shard: its rows must be its post population's neurons
            raise StructureMismatchError(
                f"{shard} has {len(proj.indptr) - 1} rows of synapses for {post_size} post-synaptic neurons",
                path=self.path,
                obj=self.name,
            )
        if self.first is None:
            self.first = (proj.pre, proj.post, proj.target, int(proj.shape[1]))
        elif (proj.pre, proj.post, int(proj.shape[1])) != (self.first[0], self.first[1], self.first[3]):
            raise StructureMismatchError(
                f"{shard} connects other populations than another shard", path=self.path, obj=self.name
            )
        indptr = np.asarray(proj.indptr, np.int64)
        self.counts[target] += indptr[source + 1] - indptr[source]

    def allocate(self):
        self.indptr = np.zeros(len(self.counts) + 1, np.int64)
        np.cumsum(self.counts, out=self.indptr[1:])
        self.indices = np.empty(int(self.indptr[-1]), np.int64)

    def fill(self, proj, target, source, shard):
        """Pass 2: this shard's synapses onto the wanted rows, in place."""
        indptr = np.asarray(proj.indptr, np.int64)
        self.variables = _same_variables(self.variables, proj, shard, self.path, self.name)
        copy_rows(self.indices, self.indptr, target, np.asarray(proj.indices, np.int64), indptr, source)
        for var, values in proj.arrays.items():
            info = self.info.setdefault(var, proj.info[var])
            if info.scope == "global":
                _take_global(self.arrays, var, values, shard, self.path, self.name)
                continue
            if info.scope not in ("synapse", "post"):
                raise StructureMismatchError(
                    "a simulator's free-form array (not per synapse) cannot move to another partition",
                    path=self.path,
                    obj=f"{self.name}.{var}",
                )
            values = np.asarray(values)  # read whole, and verified
            length = len(self.indices) if info.scope == "synapse" else len(self.counts)
            array = self.arrays.setdefault(var, np.empty(length, values.dtype))
            if array.dtype != values.dtype:
                raise StructureMismatchError(
                    f"{shard} stores it as {values.dtype}, another shard as {array.dtype}",
                    path=self.path,
                    obj=f"{self.name}.{var}",
                )
            if info.scope == "synapse":
                copy_rows(array, self.indptr, target, values, indptr, source)
            else:
                array[target] = values[source]

    def finish(self):
        pre, post, target, n_pre = self.first
        return ProjectionState(
            self.name,
            pre,
            post,
            (len(self.counts), n_pre),
            self.indptr,
            self.indices,
            target,
            self.arrays,
            {v: self.info[v] for v in self.arrays},
        )


def _same_variables(expected, group, shard, path, name):
    """Every shard of a population or projection holds the same variables,
    each of one scope: the arrays are allocated once and filled shard by
    shard, so a variable one shard lacks would leave its neurons' values
    unset (uninitialised memory), and a scope that differs mixes layouts."""
    have = {var: group.info[var].scope for var in group.arrays}
    if expected is not None and have != expected:
        differ = sorted(set(have).symmetric_difference(expected) or {var for var in have if have[var] != expected[var]})
        raise StructureMismatchError(
            f"{shard} holds other variables than another shard ({', '.join(differ)})", path=path, obj=name
        )
    return have


def gather(open_shards, wanted, path, meta, held=None):
    """Build one rank's part of the network from the shards.

    Parameters
    ----------
    open_shards : callable
        Returns an iterable of ``(label, NetworkState)``: the shards that may
        hold wanted neurons, opened one at a time (lazy states are read array
        by array).  Called twice: pass 1 reads each shard's ids and
        ``indptr``, pass 2 the values, written once into arrays of the final
        size, so that a rank holds about its own share, plus one shard's
        array as it is read.
    wanted : dict or None
        ``{population: (ids, global_size)}``: the global ids this rank holds
        (sorted).  None: every neuron of every population, in global order.
    path, meta :
        The manifest, for errors, and its ``meta`` (clock, user metadata).
    held : dict, optional
        With ``wanted`` None: ``{population: neurons}`` the shards hold in
        all (from the manifest, checked against each shard as it opens);
        a population's ``global_size`` is refused beyond it, before its ids
        are allocated.  A population it does not name: bounded by the size
        of its one shard.  None: the caller has bounded them.

    Returns
    -------
    NetworkState
        Populations in the order of the wanted ids; projections onto them,
        CSR by post in that order.  No random generator state: per-rank
        streams do not map onto another partition.
    """
    populations, projections, where = {}, {}, []
    for label, shard in open_shards():  # pass 1: where everything goes
        taken = {}
        for name, pop in shard.populations.items():
            if wanted is not None and name not in wanted:
                continue
            if name not in populations:
                ids, size = wanted[name] if wanted is not None else (None, pop.global_size)
                bound = None if held is None else held.get(name, "one shard")
                populations[name] = _Population(name, ids, size, path, bound)
            taken[name] = populations[name].locate(pop, label)
        for name, proj in shard.projections.items():
            if proj.post not in taken:
                if wanted is None or proj.post in wanted:
                    raise StructureMismatchError(
                        f"{label} holds the projection but not its post-synaptic population {proj.post!r}",
                        path=path,
                        obj=name,
                    )
                continue
            if name not in projections:
                projections[name] = _Projection(name, len(populations[proj.post].ids), path)
            projections[name].count(proj, *taken[proj.post][:2], label, shard.populations[proj.post].size)
        where.append(taken)
    for projection in projections.values():
        projection.allocate()
    for (label, shard), taken in zip(open_shards(), where):  # pass 2: the values
        for name, pop in shard.populations.items():
            if name in taken:
                populations[name].fill(pop, taken[name], label)
        for name, proj in shard.projections.items():
            if name in projections and proj.post in taken:
                projections[name].fill(proj, *taken[proj.post][:2], label)
    state = NetworkState(meta={k: v for k, v in meta.items() if k not in ("shards", "shard")})
    state.meta["content"] = "network"
    state.populations = {name: gather_.finish() for name, gather_ in populations.items()}
    state.projections = {name: gather_.finish() for name, gather_ in projections.items()}
    return state
