"""The logical state that passes between adapters and formats.

A :class:`NetworkState` holds plain numpy arrays and JSON-able metadata, never
simulator objects.  Adapters produce and consume it; formats write and read
it.  The same tree is what :func:`checkpoint.read` returns for analysis.
"""

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import scipy.sparse

from .errors import CorruptCheckpointError

__all__ = [
    "ArrayInfo",
    "PopulationState",
    "ProjectionState",
    "RngState",
    "NetworkState",
    "KINDS",
    "POPULATION_SCOPES",
    "PROJECTION_SCOPES",
]

#: What an array means for a restart.
KINDS = ("parameter", "variable", "internal")
#: How an array of a population is indexed: one value, or one per neuron;
#: ``free`` arrays have any shape (a simulator's internal buffers, recordings).
POPULATION_SCOPES = ("global", "neuron", "free")
#: How an array of a projection is indexed: one value, one per post-synaptic
#: neuron (semiglobal), one per synapse in CSR order, or any shape (``free``).
PROJECTION_SCOPES = ("global", "post", "synapse", "free")


@dataclass
class ArrayInfo:
    """What the file says about one array besides its values.

    Attributes
    ----------
    kind : {"parameter", "variable", "internal"}
        ``internal`` marks state that only matters for an exact restart
        (last spike times, refractory counters, delayed spikes).
    scope : str
        ``global``, ``neuron`` (populations), ``post`` or ``synapse``
        (projections), or ``free``: any shape, meaningful only to the
        simulator that wrote it (spikes in flight, monitor recordings).
    unit : str or None
        The physical unit of the stored values (SI for Brian2), if known.
    """

    kind: str = "variable"
    scope: str = "neuron"
    unit: Optional[str] = None


class _ArrayGroup(Mapping):
    """Mapping of variable name to array, with an :class:`ArrayInfo` each."""

    def __init__(self, name, arrays=None, info=None):
        self.name = name
        self.arrays = dict(arrays or {})
        self.info = dict(info or {})

    def __getitem__(self, var):
        return self.arrays[var]

    def __iter__(self):
        return iter(self.arrays)

    def __len__(self):
        return len(self.arrays)

    def nbytes(self):
        return sum(int(getattr(a, "nbytes", 0)) for a in self.arrays.values())


class PopulationState(_ArrayGroup):
    """The state of one population.

    ``pop[var]`` gives the array of one variable or parameter; ``size`` and
    ``geometry`` describe the population.  A shard of an MPI run holds part
    of a population: ``ids`` are the global indices of its ``size`` neurons
    (sorted; None means all of them, ``0 .. size-1``) and ``global_size``
    the population's size over all ranks.
    """

    def __init__(self, name, size, geometry=None, arrays=None, info=None, ids=None, global_size=None):
        super().__init__(name, arrays, info)
        self.size = int(size)
        self.ids = ids
        self.global_size = self.size if global_size is None else int(global_size)
        self.geometry = tuple(geometry) if geometry is not None else (self.global_size,)

    def global_ids(self):
        """``ids``, or ``0 .. size-1`` for a population held whole."""
        return np.arange(self.size, dtype=np.int64) if self.ids is None else np.asarray(self.ids, np.int64)

    def __repr__(self):
        return f"PopulationState({self.name!r}, size={self.size}, variables={list(self)})"


class ProjectionState(_ArrayGroup):
    """The state of one projection, connectivity in CSR by post neuron.

    ``indptr`` (length post + 1) and ``indices`` (pre ranks) give, for post
    neuron ``i``, its synapses ``indptr[i]:indptr[i+1]``; per-synapse arrays
    follow that order.  A pair of neurons with several synapses keeps them
    all, in order.

    A simulator that keeps its synapses in another order (Brian2) gives
    that order as ``simulator_order``: CSR synapse ``k`` is its synapse
    ``simulator_order[k]``.  Its per-synapse arrays may then stay in the
    simulator's order (``arrays_in_simulator_order``), so that neither a
    save nor a load has to gather them into CSR order and back;
    :meth:`in_csr_order` gives the CSR view every reader sees.
    """

    def __init__(
        self,
        name,
        pre,
        post,
        shape,
        indptr,
        indices,
        target="exc",
        arrays=None,
        info=None,
        simulator_order=None,
        arrays_in_simulator_order=False,
    ):
        super().__init__(name, arrays, info)
        self.pre = pre
        self.post = post
        self.target = target
        self.shape = (int(shape[0]), int(shape[1]))
        self.indptr = indptr
        self.indices = indices
        #: a permutation of the synapses (CSR position -> simulator's index), or None
        self.simulator_order = simulator_order
        #: whether the per-synapse arrays are in ``simulator_order``'s order rather than CSR order
        self.arrays_in_simulator_order = bool(arrays_in_simulator_order) and simulator_order is not None
        #: XXH3 checksums of (indptr, indices) as stored, when read from a file;
        #: for a model being restored, a Future of its own (restore.start_connectivity_hashes).
        self.connectivity_checksums = None

    def _per_synapse(self):
        return [var for var in self.arrays if var in self.info and self.info[var].scope == "synapse"]

    def in_csr_order(self, path=None):
        """This projection with its per-synapse arrays in CSR order (itself
        if they are already).  ``simulator_order`` is kept, so that a file
        written from the result keeps the simulator's order too.

        Raises
        ------
        CorruptCheckpointError
            ``simulator_order`` is not a permutation of the synapses.
        """
        if not self.arrays_in_simulator_order:
            return self
        order = check_permutation(self.simulator_order, self.nnz, path, self.name)
        clone = self._with_arrays(
            {
                var: _PermutedArray(self.arrays[var], order)
                if not isinstance(self.arrays[var], np.ndarray)
                else self.arrays[var][order]
                for var in self._per_synapse()
            }
        )
        clone.arrays_in_simulator_order = False
        return clone

    def in_simulator_order(self):
        """This projection with its per-synapse arrays in ``simulator_order``'s
        order (itself if they are already, or if there is no such order)."""
        if self.arrays_in_simulator_order or self.simulator_order is None:
            return self
        order = check_permutation(self.simulator_order, self.nnz, None, self.name)
        scattered = {}
        for var in self._per_synapse():
            value = np.asarray(self.arrays[var])
            scattered[var] = np.empty_like(value)
            scattered[var][order] = value
        clone = self._with_arrays(scattered)
        clone.arrays_in_simulator_order = True
        return clone

    def _with_arrays(self, replaced):
        clone = copy.copy(self)
        clone.arrays = {**self.arrays, **replaced}
        clone.info = dict(self.info)
        return clone

    @property
    def nnz(self):
        """Number of synapses."""
        return int(len(self.indices))

    def __getitem__(self, var):
        if var not in self.arrays and var in ("indptr", "indices"):
            return getattr(self, var)
        return self.arrays[var]

    def __contains__(self, var):
        """What ``proj[var]`` gives: the arrays, and ``indptr``/``indices``
        (which iterating over the projection, like ``.arrays``, leaves out)."""
        return var in self.arrays or var in ("indptr", "indices")

    def to_scipy(self, var="w"):
        """Return ``var`` as a ``scipy.sparse.csr_matrix`` of shape post x pre.

        A global value is broadcast to every synapse, a per-post value to
        every synapse of that post neuron.  Multiple synapses between one
        pair stay separate entries (call ``sum_duplicates()`` to add them).
        """
        if self.arrays_in_simulator_order:
            return self.in_csr_order().to_scipy(var)
        data = np.asarray(self[var])
        scope = self.info[var].scope if var in self.info else "synapse"
        if scope == "global":
            data = np.full(self.nnz, data)
        elif scope == "post":
            data = np.repeat(data, np.diff(np.asarray(self.indptr)))
        return scipy.sparse.csr_matrix(
            (np.asarray(data), np.asarray(self.indices), np.asarray(self.indptr)), shape=self.shape
        )

    def nbytes(self):
        return super().nbytes() + int(self.indptr.nbytes) + int(self.indices.nbytes)

    def __repr__(self):
        return (
            f"ProjectionState({self.name!r}, {self.pre!r} -> {self.post!r}, "
            f"synapses={self.nnz}, variables={list(self)})"
        )


@dataclass
class RngState:
    """The state of one random generator, without pickle.

    ``state`` is JSON-able (numpy's ``bit_generator.state`` dictionaries are);
    ``arrays`` holds large buffers (e.g. a simulator's pre-drawn numbers).
    """

    name: str
    kind: str
    state: dict
    arrays: dict = field(default_factory=dict)


@dataclass
class NetworkState:
    """Everything checkpoint knows about one network at one moment.

    Attributes
    ----------
    meta : dict
        JSON-able: ``time`` (ms), ``step``, ``dt``, ``simulator``,
        ``library_version``, ``created``, ``content``, ``user`` metadata.
    populations, projections : dict
        By name: :class:`PopulationState`, :class:`ProjectionState`.
    rng : dict
        By name: :class:`RngState`.
    """

    meta: dict = field(default_factory=dict)
    populations: dict = field(default_factory=dict)
    projections: dict = field(default_factory=dict)
    rng: dict = field(default_factory=dict)
    #: the XXH3-64 digest of the manifest this state was read from (None if not read)
    digest: Optional[str] = None
    #: what an adapter's ``describe`` found out for its ``apply`` (its own
    #: small object; the restore plan carries it as :attr:`Plan.findings`).
    #: Never written to a file.
    findings: object = field(default=None, repr=False)
    _closer: object = field(default=None, repr=False)

    @property
    def time(self):
        """Simulated time in ms."""
        return self.meta.get("time")

    @property
    def step(self):
        """Simulation step."""
        return self.meta.get("step")

    @property
    def dt(self):
        return self.meta.get("dt")

    def nbytes(self):
        groups = list(self.populations.values()) + list(self.projections.values())
        rng_bytes = sum(a.nbytes for r in self.rng.values() for a in r.arrays.values())
        return sum(g.nbytes() for g in groups) + rng_bytes

    def in_csr_order(self, path=None):
        """This state with every projection's per-synapse arrays in CSR order
        (itself if they are already); see :meth:`ProjectionState.in_csr_order`."""
        if not any(p.arrays_in_simulator_order for p in self.projections.values()):
            return self
        clone = copy.copy(self)
        clone.projections = {name: p.in_csr_order(path) for name, p in self.projections.items()}
        return clone

    def with_objects(self, added):
        """A copy of this state with ``added``'s populations and projections
        too, and ``added.findings`` when it has any (an adapter's
        ``before_plan`` returns what it adds this way: neither state changes)."""
        clone = copy.copy(self)
        clone.populations = {**self.populations, **added.populations}
        clone.projections = {**self.projections, **added.projections}
        if added.findings is not None:
            clone.findings = added.findings
        return clone

    def close(self):
        """Close the file behind a lazy state (a no-op otherwise)."""
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_connectivity(indptr, indices, shape, path, obj, check_indices=True):
    """Raise unless ``indptr``/``indices`` are a valid CSR of ``shape``.

    The pre-rank range check is a full pass over the synapses; readers skip
    it and the restore plan runs it before new connectivity reaches a model.
    """
    indptr = np.asarray(indptr)  # indices only by length unless checked (a lazy array stays unread)
    ok = (
        len(indptr) == shape[0] + 1
        and indptr[0] == 0
        and indptr[-1] == len(indices)
        and bool(np.all(indptr[1:] >= indptr[:-1]))
    )  # compared, not np.diff: a difference of int64s wraps
    if not ok:
        raise CorruptCheckpointError("indptr is not a valid CSR index", path=path, obj=obj)
    if check_indices:
        indices = np.asarray(indices)
    if check_indices and len(indices) and not (int(indices.min()) >= 0 and int(indices.max()) < shape[1]):
        raise CorruptCheckpointError("a synapse's pre-synaptic rank is out of range", path=path, obj=obj)


def check_ids(ids, global_size, path, obj):
    """Raise unless a shard's ``ids`` are sorted, distinct and in ``[0, global_size)``."""
    ids = np.asarray(ids)
    if len(ids) and (ids[0] < 0 or ids[-1] >= global_size or bool(np.any(np.diff(ids) <= 0))):
        raise CorruptCheckpointError(
            "the population's ids are not sorted, distinct and within its global size", path=path, obj=obj
        )


def check_permutation(order, n, path, obj):
    """``order`` as an integer array, if it holds each of ``0 .. n-1`` exactly
    once; else raise (a forged order would put values on the wrong synapses
    or index out of bounds)."""
    order = np.asarray(order)
    ok = order.shape == (n,) and order.dtype.kind in "iu"
    if ok and n:
        ok = int(order.min()) >= 0 and int(order.max()) < n and bool(np.all(np.bincount(order, minlength=n) == 1))
    if not ok:
        raise CorruptCheckpointError(
            f"the synapses' simulator order is not a permutation of its {n} synapses", path=path, obj=obj
        )
    return order


class _PermutedArray:
    """A lazily read array shown in CSR order: ``np.asarray`` reads the
    stored array whole (verifying it) and permutes it."""

    def __init__(self, stored, order):
        self._stored, self._order = stored, order
        self.shape, self.dtype, self.ndim = stored.shape, stored.dtype, stored.ndim
        self.size, self.nbytes = stored.size, stored.nbytes

    def __len__(self):
        return self.shape[0]

    def read(self):
        return np.asarray(self._stored)[self._order]

    def __getitem__(self, index):
        return self.read()[index]

    def __array__(self, dtype=None, copy=None):
        array = self.read()
        return array if dtype is None else array.astype(dtype)

    def __repr__(self):
        return f"{self._stored!r} in CSR order"
