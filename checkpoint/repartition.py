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
        out[name] = {"global_size": pop.global_size, "global_ids": pop.ids is not None,
                     "count": len(ids), "first": int(ids[0]) if len(ids) else 0,
                     "last": int(ids[-1]) if len(ids) else -1, "checksum": checksum(ids)}
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


def _rows(indptr, rows):
    """Synapse positions of CSR ``rows``, in row order, and the count per row."""
    starts, counts = indptr[rows], indptr[rows + 1] - indptr[rows]
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), counts
    # positions = starts[r] + 0..count[r]-1 for each row, without a Python loop
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return offsets + np.arange(total, dtype=np.int64), counts


class _Population:
    """The wanted neurons of one population, filled shard by shard."""

    def __init__(self, name, ids, global_size, path):
        self.name, self.ids, self.global_size, self.path = name, ids, global_size, path
        self.found = np.zeros(len(ids), bool) if ids is not None else None
        self.arrays, self.info, self.geometry = {}, {}, None

    def add(self, pop, shard):
        """Take this shard's wanted neurons; return ``(target, source)``."""
        if pop.global_size != self.global_size:
            raise StructureMismatchError(
                f"{shard} holds neurons of a population of {pop.global_size}, the model's has "
                f"{self.global_size}", path=self.path, obj=self.name)
        have = pop.global_ids()
        check_ids(have, pop.global_size, self.path, f"{shard}: {self.name}")
        if self.ids is None:   # the whole population, in global order
            self.ids, self.found = np.arange(self.global_size, dtype=np.int64), np.zeros(self.global_size, bool)
        target, source = matching(self.ids, have)
        held = self.found[target]
        if np.any(held):   # replicated on every rank (NEST's devices): the same values, or refused
            self._check_replica(pop, target[held], source[held], shard)
            target, source = target[~held], source[~held]
        self.found[target] = True
        self.geometry = self.geometry or pop.geometry
        for var, values in pop.arrays.items():
            self._take(var, values, pop.info[var], target, source, shard)
        return target, source

    def _check_replica(self, pop, target, source, shard):
        """Neurons another shard holds too are a replica (a simulator's device
        on every rank) only if every value is the same."""
        for var, values in pop.arrays.items():
            if pop.info[var].scope == "neuron" and (
                    var not in self.arrays or not np.array_equal(self.arrays[var][target], np.asarray(values)[source])):
                raise StructureMismatchError(f"{shard} holds neurons another shard holds too, with other values",
                                             path=self.path, obj=f"{self.name}.{var}")

    def _take(self, var, values, info, target, source, shard):
        if info.scope == "free":
            raise StructureMismatchError(
                "a simulator's free-form array (not per neuron) cannot move to another partition",
                path=self.path, obj=f"{self.name}.{var}")
        if info.scope == "global":   # the same on every rank
            self.arrays.setdefault(var, np.asarray(values))
            self.info.setdefault(var, info)
            return
        if not len(target) and var in self.arrays:
            return
        values = np.asarray(values)   # a lazy array is read whole, and verified
        if var not in self.arrays:
            self.arrays[var] = np.empty(len(self.ids), values.dtype)
            self.info[var] = info
        elif self.arrays[var].dtype != values.dtype:
            raise StructureMismatchError(f"{shard} stores it as {values.dtype}, another shard as "
                                         f"{self.arrays[var].dtype}", path=self.path, obj=f"{self.name}.{var}")
        self.arrays[var][target] = values[source]

    def finish(self):
        missing = np.flatnonzero(~self.found) if self.found is not None else np.zeros(0)
        if len(missing):
            raise StructureMismatchError(
                f"{len(missing)} neurons (global ids {missing[:5].tolist()}{'...' if len(missing) > 5 else ''}) "
                "are in no shard of the checkpoint", path=self.path, obj=self.name)
        size = 0 if self.ids is None else len(self.ids)
        whole = self.ids is None or size == self.global_size
        return PopulationState(self.name, size, self.geometry, self.arrays, self.info,
                               None if whole else self.ids, self.global_size)


class _Projection:
    """The synapses onto the wanted post neurons of one projection."""

    def __init__(self, name, path):
        self.name, self.path = name, path
        self.rows, self.indices, self.synapse, self.post = [], [], {}, {}
        self.arrays, self.info, self.first = {}, {}, None

    def add(self, proj, target, source, shard):
        if self.first is None:
            self.first = proj
        elif tuple(proj.shape)[1] != tuple(self.first.shape)[1] or proj.post != self.first.post:
            raise StructureMismatchError(f"{shard} connects other populations than another shard",
                                         path=self.path, obj=self.name)
        indptr = np.asarray(proj.indptr, np.int64)
        positions, counts = _rows(indptr, source)
        self.rows.append(np.repeat(target, counts))
        self.indices.append(np.asarray(proj.indices, np.int64)[positions])
        for var, values in proj.arrays.items():
            info = proj.info[var]
            self.info.setdefault(var, info)
            if info.scope == "global":
                self.arrays.setdefault(var, np.asarray(values))
            elif info.scope == "synapse":
                self.synapse.setdefault(var, []).append(np.asarray(values)[positions])
            elif info.scope == "post":
                self.post.setdefault(var, []).append((target, np.asarray(values)[source]))
            else:
                raise StructureMismatchError(
                    "a simulator's free-form array (not per synapse) cannot move to another partition",
                    path=self.path, obj=f"{self.name}.{var}")

    def finish(self, n_post):
        rows = np.concatenate(self.rows) if self.rows else np.zeros(0, np.int64)
        # pieces come shard by shard; one row's synapses all come from one shard, in order
        order = None if np.all(rows[1:] >= rows[:-1]) else np.argsort(rows, kind="stable")

        def ordered(pieces):
            joined = np.concatenate(pieces)
            return joined if order is None else joined[order]

        indptr = np.zeros(n_post + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=n_post), out=indptr[1:])
        indices = ordered(self.indices) if self.indices else np.zeros(0, np.int64)
        for var, pieces in self.synapse.items():
            self.arrays[var] = ordered(pieces)
        for var, pieces in self.post.items():
            self.arrays[var] = np.empty(n_post, pieces[0][1].dtype)
            for target, values in pieces:
                self.arrays[var][target] = values
        first = self.first
        return ProjectionState(self.name, first.pre, first.post, (n_post, first.shape[1]), indptr, indices,
                               first.target, self.arrays, {v: self.info[v] for v in self.arrays})


def gather(shards, wanted, path, meta):
    """Build one rank's part of the network from ``shards``.

    Parameters
    ----------
    shards : iterable of ``(label, NetworkState)``
        The shards that may hold wanted neurons, opened one at a time (lazy
        states are read array by array, so one shard's arrays are in memory
        at once, not all).
    wanted : dict or None
        ``{population: (ids, global_size)}``: the global ids this rank holds
        (sorted).  None: every neuron of every population, in global order.
    path, meta :
        The manifest, for errors, and its ``meta`` (clock, user metadata).

    Returns
    -------
    NetworkState
        Populations in the order of the wanted ids; projections onto them,
        CSR by post in that order.  No random generator state: per-rank
        streams do not map onto another partition.
    """
    populations, projections = {}, {}
    for label, shard in shards:
        taken = {}
        for name, pop in shard.populations.items():
            if wanted is not None and name not in wanted:
                continue
            if name not in populations:
                ids, size = wanted[name] if wanted is not None else (None, pop.global_size)
                populations[name] = _Population(name, ids, size, path)
            taken[name] = populations[name].add(pop, label)
        for name, proj in shard.projections.items():
            if proj.post not in taken:
                if wanted is None or proj.post in wanted:
                    raise StructureMismatchError(f"{label} holds the projection but not its post-synaptic "
                                                 f"population {proj.post!r}", path=path, obj=name)
                continue
            projections.setdefault(name, _Projection(name, path)).add(proj, *taken[proj.post], label)
    state = NetworkState(meta={k: v for k, v in meta.items() if k not in ("shards", "shard")})
    state.meta["content"] = "network"
    state.populations = {name: gather_.finish() for name, gather_ in populations.items()}
    for name, gather_ in projections.items():
        state.projections[name] = gather_.finish(state.populations[gather_.first.post].size)
    return state
