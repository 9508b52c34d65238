"""The embedded plain-numpy network: the default when there is no simulator.

It holds state, not dynamics: a script advances ``net.step`` and updates the
arrays itself (see examples/izhikevich_stdp.py).  Everything here is what
:func:`checkpoint.save` captures and :func:`checkpoint.load` restores.
"""

import numpy as np
import scipy.sparse
from typing import Optional

__all__ = ["Network", "Population", "Projection", "SpikeRecorder", "StateRecorder"]


def _as_global(value):
    array = np.array(value)
    if array.ndim != 0:
        raise ValueError("a global parameter must be a scalar")
    return array


def _as_local(value, length, what):
    array = np.asarray(value)
    if array.ndim == 0:
        return np.full(length, array, dtype=array.dtype)
    array = np.array(array)  # own copy, C-contiguous
    if array.shape != (length,):
        raise ValueError(f"{what}: expected {length} values, got shape {array.shape}")
    return array


class _Group:
    """Named arrays reachable as attributes and items, each with a kind and
    a scope (see :mod:`checkpoint.state`)."""

    _OWN = ("name", "network", "size", "geometry", "pre", "post", "target", "ids", "global_size")

    def __init__(self, name, network):
        if not isinstance(name, str) or not name:
            raise ValueError("a name must be a non-empty string")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "network", network)
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_kinds", {})
        object.__setattr__(self, "_scopes", {})

    def _add(self, var, array, kind, scope):
        if var in self._values or var in self._OWN or not isinstance(var, str) or not var:
            raise ValueError(f"{self.name}: variable name {var!r} is empty, taken or reserved")
        self._values[var] = array
        self._kinds[var] = kind
        self._scopes[var] = scope

    def __getattr__(self, var):
        values = self.__dict__.get("_values", {})
        if var in values:
            return self[var]
        raise AttributeError(f"{type(self).__name__} {self.__dict__.get('name')!r} has no {var!r}")

    def __setattr__(self, var, value):
        if var in self._values:
            self[var] = value
        else:
            object.__setattr__(self, var, value)

    def __getitem__(self, var):
        array = self._values[var]
        return array[()] if array.ndim == 0 else array

    def __setitem__(self, var, value):
        self._values[var][...] = value

    def __contains__(self, var):
        return var in self._values

    @property
    def variables(self):
        """Names of the variables (including internal state)."""
        return [v for v, k in self._kinds.items() if k != "parameter"]

    @property
    def parameters(self):
        """Names of the parameters, global and local."""
        return [v for v, k in self._kinds.items() if k == "parameter"]

    def kind(self, var):
        return self._kinds[var]

    def scope(self, var):
        return self._scopes[var]


def _global_ids(name, size, ids, global_size):
    """``(ids, global_size)`` checked: this rank's sorted, distinct global
    indices of a population of ``global_size`` neurons (None: all of them)."""
    if ids is None:
        global_size = size if global_size is None else int(global_size)
        if global_size != size:
            raise ValueError(f"{name}: global_size={global_size} without ids: say which {size} neurons this rank holds")
        return None, global_size
    ids = np.array(ids, dtype=np.int64).reshape(-1)
    global_size = int(global_size) if global_size is not None else (int(ids[-1]) + 1 if len(ids) else 0)
    if len(ids) != size:
        raise ValueError(f"{name}: {len(ids)} ids for {size} neurons")
    if len(ids) and (ids[0] < 0 or ids[-1] >= global_size or np.any(np.diff(ids) <= 0)):
        raise ValueError(f"{name}: ids must be sorted, distinct and in [0, global_size={global_size})")
    ids.flags.writeable = False
    return ids, global_size


class Population(_Group):
    """A population of ``size`` neurons with named parameters and variables.

    Under MPI a rank holds part of a population: ``ids`` are the global
    indices of its neurons (sorted), ``global_size`` the population's size
    over all ranks.  Both default to "all of it".
    """

    def __init__(
        self,
        name,
        size,
        network,
        parameters=None,
        variables=None,
        internal=None,
        geometry=None,
        ids=None,
        global_size=None,
    ):
        super().__init__(name, network)
        size = int(size)
        if size < 0:
            raise ValueError("size must be >= 0")
        ids, global_size = _global_ids(name, size, ids, global_size)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "_ids", ids)
        object.__setattr__(self, "global_size", global_size)
        object.__setattr__(self, "geometry", tuple(geometry) if geometry else (global_size,))
        for var, value in (parameters or {}).items():
            local = np.ndim(value) != 0
            array = _as_local(value, size, f"{name}.{var}") if local else _as_global(value)
            self._add(var, array, "parameter", "neuron" if local else "global")
        for kind, values in (("variable", variables), ("internal", internal)):
            for var, value in (values or {}).items():
                self._add(var, _as_local(value, size, f"{name}.{var}"), kind, "neuron")

    @property
    def ids(self):
        """The global index of each neuron this rank holds (read-only)."""
        if self._ids is None:
            ids = np.arange(self.size, dtype=np.int64)
            ids.flags.writeable = False
            return ids
        return self._ids

    @property
    def distributed(self):
        """Whether ``ids`` were given (the population is split over ranks)."""
        return self._ids is not None

    def __len__(self):
        return self.size

    def __repr__(self):
        extra = f", global_size={self.global_size}" if self.distributed else ""
        return f"Population({self.name!r}, size={self.size}{extra})"


def _csr_arrays(connectivity, shape):
    """``(indptr, indices)`` as int64 from a scipy matrix, a pair or None."""
    if connectivity is None:
        return np.zeros(shape[0] + 1, np.int64), np.zeros(0, np.int64)
    if isinstance(connectivity, tuple):
        indptr, indices = connectivity
    else:
        matrix = (
            connectivity
            if scipy.sparse.isspmatrix_csr(connectivity) or isinstance(connectivity, scipy.sparse.csr_array)
            else scipy.sparse.csr_matrix(connectivity)
        )
        if matrix.shape != shape:
            raise ValueError(f"connectivity has shape {matrix.shape}, expected (post, pre) = {shape}")
        indptr, indices = matrix.indptr, matrix.indices
    indptr, indices = np.array(indptr, np.int64), np.array(indices, np.int64)
    if (
        len(indptr) != shape[0] + 1
        or indptr[0] != 0
        or indptr[-1] != len(indices)
        or np.any(indptr[1:] < indptr[:-1])
        or (len(indices) and (indices.min() < 0 or indices.max() >= shape[1]))
    ):
        raise ValueError("connectivity is not a valid CSR matrix of shape (post, pre)")
    return indptr, indices


class Projection(_Group):
    """Synapses from ``pre`` to ``post``, stored in CSR order by post neuron.

    ``indptr``/``indices`` are the connectivity; a per-synapse array ``w``
    has one value per synapse in that order, so ``w[indptr[i]:indptr[i+1]]``
    are the weights onto post neuron ``i`` from pre neurons
    ``indices[indptr[i]:indptr[i+1]]``.

    Under MPI a rank holds the synapses onto its own post neurons (rows in
    the order of ``post.ids``), and ``indices`` are *global* pre indices:
    the shape is ``(post.size, pre.global_size)``.
    """

    def __init__(
        self,
        name,
        pre,
        post,
        network,
        target="exc",
        connectivity=None,
        parameters=None,
        variables=None,
        semiglobal=None,
        internal=None,
        delays=None,
    ):
        super().__init__(name, network)
        object.__setattr__(self, "pre", pre)
        object.__setattr__(self, "post", post)
        object.__setattr__(self, "target", target)
        indptr, indices = _csr_arrays(connectivity, (post.size, pre.global_size))
        object.__setattr__(self, "_indptr", indptr)
        object.__setattr__(self, "_indices", indices)
        nnz = len(indices)
        parameters = dict(parameters or {})
        if delays is not None:
            parameters["delay"] = delays
        for var, value in parameters.items():
            local = np.ndim(value) != 0
            array = _as_local(value, nnz, f"{name}.{var}") if local else _as_global(value)
            self._add(var, array, "parameter", "synapse" if local else "global")
        for var, value in (semiglobal or {}).items():
            self._add(var, _as_local(value, post.size, f"{name}.{var}"), "variable", "post")
        for kind, values in (("variable", variables), ("internal", internal)):
            for var, value in (values or {}).items():
                self._add(var, _as_local(value, nnz, f"{name}.{var}"), kind, "synapse")

    @property
    def indptr(self):
        return self._indptr

    @property
    def indices(self):
        return self._indices

    @property
    def shape(self):
        """``(post size on this rank, pre global size)``."""
        return (self.post.size, self.pre.global_size)

    @property
    def nnz(self):
        return len(self._indices)

    def post_ranks(self):
        """The post-synaptic neuron of each synapse, in CSR order."""
        return np.repeat(np.arange(self.post.size), np.diff(self._indptr))

    def to_scipy(self, var="w"):
        """``var`` as a ``scipy.sparse.csr_matrix`` of shape (post, pre)."""
        data = (
            np.broadcast_to(self[var], (self.nnz,))
            if self.scope(var) != "post"
            else np.repeat(self[var], np.diff(self._indptr))
        )
        return scipy.sparse.csr_matrix((np.array(data), self._indices.copy(), self._indptr.copy()), shape=self.shape)

    def __repr__(self):
        return f"Projection({self.name!r}, {self.pre.name!r} -> {self.post.name!r}, synapses={self.nnz})"


class _Recorder:
    """What a recorder of the embedded network shares: a name, the network
    whose clock stamps each record, chunks appended by :meth:`record` and
    handed over, and emptied, by :meth:`take` (a Checkpointer with
    ``recordings=True`` takes them at every checkpoint)."""

    kind: Optional[str] = None

    def __init__(self, name, network, population, var):
        if not isinstance(name, str) or not name:
            raise ValueError("a name must be a non-empty string")
        if var not in population:
            raise ValueError(f"population {population.name!r} has no variable {var!r}")
        self.name, self.network, self.population, self.var = name, network, population, var
        self._times, self._chunks = [], []

    def units(self):
        return {"t": "ms"}

    def drop(self):
        """Empty the recorder, discarding what it holds."""
        self.take()

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, {self.population.name}.{self.var})"


class SpikeRecorder(_Recorder):
    """Records, at each :meth:`record`, the neurons of ``population`` whose
    boolean variable ``var`` is true, with the network's time.  ``i`` and
    ``t`` (ms) are what it recorded since the last :meth:`take`."""

    kind = "events"

    def record(self):
        fired = np.flatnonzero(self.population[self.var])
        self._chunks.append(fired.astype(np.int64, copy=False))
        self._times.append(np.full(len(fired), self.network.time, dtype=np.float64))

    def take(self):
        """``{"i", "t"}`` since the last take; the recorder is emptied."""
        i = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int64)
        t = np.concatenate(self._times) if self._times else np.zeros(0, np.float64)
        self._times, self._chunks = [], []
        return {"i": i, "t": t}

    @property
    def i(self):
        return np.concatenate([np.zeros(0, np.int64)] + self._chunks)

    @property
    def t(self):
        return np.concatenate([np.zeros(0, np.float64)] + self._times)


class StateRecorder(_Recorder):
    """Samples ``var`` of the neurons ``indices`` of ``population`` (all by
    default) at each :meth:`record`: ``t`` (ms) and ``var`` (times x
    neurons) since the last :meth:`take`."""

    kind = "samples"

    def __init__(self, name, network, population, var, indices=None):
        super().__init__(name, network, population, var)
        size = population.size
        self._index = np.arange(size, dtype=np.int64) if indices is None else np.array(indices, np.int64).reshape(-1)
        if len(self._index) and (self._index.min() < 0 or self._index.max() >= size):
            raise ValueError(f"{name}: indices must be in [0, {size})")
        self._dtype = np.asarray(population[var]).dtype

    def index(self):
        return self._index.copy()

    def record(self):
        self._chunks.append(np.asarray(self.population[self.var])[self._index].copy())
        self._times.append(self.network.time)

    def take(self):
        """``{"t", var}`` since the last take; the recorder is emptied."""
        values = np.stack(self._chunks) if self._chunks else np.zeros((0, len(self._index)), self._dtype)
        t = np.array(self._times, dtype=np.float64)
        self._times, self._chunks = [], []
        return {"t": t, self.var: values}


class Network:
    """A network of populations and projections held in numpy arrays.

    Parameters
    ----------
    dt : float
        Time step in ms.
    seed : int or None
        Seed of ``net.rng``, a ``numpy.random.Generator`` whose state is saved.
    """

    def __init__(self, dt=0.1, seed=None):
        self.dt = float(dt)
        self.step = 0
        self.rng = np.random.default_rng(seed)
        self.populations = {}
        self.projections = {}
        self.recorders = {}

    @property
    def time(self):
        """Simulated time in ms (``step * dt``)."""
        return self.step * self.dt

    def add_population(
        self, name, size, parameters=None, variables=None, internal=None, geometry=None, ids=None, global_size=None
    ):
        """Add a population; scalars given as variables become one value per neuron.

        Under MPI, ``ids`` are the sorted global indices of the neurons this
        rank holds (``size == len(ids)``) and ``global_size`` the
        population's size over all ranks; a checkpoint then loads on any
        number of ranks and any partition (see :mod:`checkpoint.distributed`).
        """
        if name in self.populations:
            raise ValueError(f"a population named {name!r} exists already")
        pop = Population(name, size, self, parameters, variables, internal, geometry, ids, global_size)
        self.populations[name] = pop
        return pop

    def add_projection(
        self,
        name,
        pre,
        post,
        target="exc",
        connectivity=None,
        parameters=None,
        variables=None,
        semiglobal=None,
        internal=None,
        delays=None,
    ):
        """Add a projection; ``connectivity`` is a scipy sparse matrix (post x pre),
        a pair ``(indptr, indices)``, or None for no synapses."""
        if name in self.projections:
            raise ValueError(f"a projection named {name!r} exists already")
        pre = self.populations[pre] if isinstance(pre, str) else pre
        post = self.populations[post] if isinstance(post, str) else post
        proj = Projection(
            name, pre, post, self, target, connectivity, parameters, variables, semiglobal, internal, delays
        )
        self.projections[name] = proj
        return proj

    def add_spike_recorder(self, name, population, var="spiked"):
        """Record the neurons of ``population`` whose boolean ``var`` is true
        at each :meth:`record` (a :class:`SpikeRecorder`)."""
        return self._add_recorder(SpikeRecorder(name, self, self._population(population), var))

    def add_state_recorder(self, name, population, var, indices=None):
        """Sample ``var`` of ``indices`` (all by default) at each :meth:`record`
        (a :class:`StateRecorder`)."""
        return self._add_recorder(StateRecorder(name, self, self._population(population), var, indices))

    def record(self):
        """Every recorder records, stamped with the current :attr:`time`;
        a script calls it once per step, after the step."""
        for recorder in self.recorders.values():
            recorder.record()

    def _population(self, population):
        return self.populations[population] if isinstance(population, str) else population

    def _add_recorder(self, recorder):
        if recorder.name in self.recorders:
            raise ValueError(f"a recorder named {recorder.name!r} exists already")
        self.recorders[recorder.name] = recorder
        return recorder

    def __repr__(self):
        return (
            f"Network(dt={self.dt}, step={self.step}, populations={list(self.populations)}, "
            f"projections={list(self.projections)})"
        )
