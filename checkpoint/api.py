"""save, load and read: the calls simulation scripts make."""

import copy
import logging
import os
import time as _time
from concurrent.futures import ThreadPoolExecutor

from .adapters import adapter_for
from .errors import StructureMismatchError
from .formats import read_state, write_state
from .restore import hash_connectivity, make_plan
from .state import NetworkState

__all__ = ["save", "load", "read"]

log = logging.getLogger("checkpoint")

#: ``meta`` key of a sharded checkpoint's manifest (see :mod:`checkpoint.distributed`).
SHARDS = "shards"


def save(path, obj, *, populations=True, projections=True, format=None, compression=None,
         metadata=None, progress=None, monitors=False, comm=None):
    """Save the full state of ``obj`` to ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its suffix picks the format unless ``format`` is given:
        ``.h5``/``.hdf5``, ``.npz``, ``.mat``, ``.txt``, ``.txt.gz``/``.gz``.
    obj : network, population, projection or NetworkState
        An embedded :class:`checkpoint.Network`, a Brian2 ``Network``, a
        compiled ANNarchy ``Network``, the ``nest`` module (the running
        kernel), or one population / projection of any of them
        (``NeuronGroup``/``Synapses``, ANNarchy's, a NEST ``NodeCollection``
        or ``SynapseCollection``): then the file holds that one object.  A
        :class:`NetworkState` (from :func:`read`, edited or not) is written
        as it is.
    populations, projections : bool
        Leave that half out of the file when False.
    format : str, optional
        ``"h5"``, ``"npz"``, ``"mat"``, ``"text"`` or ``"text.gz"``.
    compression : str or dict, optional
        See :mod:`checkpoint.formats.compression`; uncompressed by default.
    metadata : dict, optional
        JSON-serialisable user metadata, stored under ``meta["user"]``.
    progress : bool or None
        A progress bar (tqdm): None shows one for states of 256 MiB or more
        when standard error is a terminal.
    monitors : bool
        Also save the simulator's monitors (Brian2's SpikeMonitor,
        StateMonitor, ...) with what they recorded.
    comm : mpi4py communicator, optional
        An MPI run: every rank calls ``save`` with its own part of the
        model, written as one shard per rank plus a manifest at ``path``
        (:mod:`checkpoint.distributed`).

    Raises
    ------
    UnsupportedFormatError, UnsupportedObjectError, FormatLimitError, CheckpointError
        Nothing is written and an existing file at ``path`` stays as it was.
    """
    if comm is not None:
        from . import distributed
        return distributed.save(path, obj, comm, populations=populations, projections=projections,
                                format=format, compression=compression, metadata=metadata,
                                progress=progress, monitors=monitors)
    started = _time.perf_counter()
    if isinstance(obj, NetworkState):
        state = _as_written(obj, populations, projections, metadata)
    else:
        state = adapter_for(obj, monitors=monitors).capture(populations=populations, projections=projections)
        state.meta["user"] = dict(metadata or {})
    write_state(path, state, format, compression, progress=progress)
    log.info("saved %s (%.1f MB, t=%s ms) in %.2f s", os.fspath(path), state.nbytes() / 1e6,
             _ms(state.time), _time.perf_counter() - started)


def _ms(time_ms):
    """A time for people: 100 ms, not 99.99999999999999 ms (steps times dt)."""
    return None if time_ms is None else float(f"{time_ms:.10g}")


def _as_written(state, populations, projections, metadata):
    """A :class:`NetworkState` (from :func:`read`, maybe edited) to write as it is."""
    written = copy.copy(state)
    written.meta = {k: v for k, v in state.meta.items() if k not in ("library_version_written", "created")}
    written.populations = dict(state.populations) if populations else {}
    written.projections = dict(state.projections) if projections else {}
    if metadata is not None:
        written.meta["user"] = dict(metadata)
    return written


def load(path, obj, *, populations=True, projections=True, strict=False, format=None, progress=None,
         monitors=False, comm=None):
    """Restore ``obj`` from ``path``: all of it, or nothing.

    Objects and variables are matched by name.  Variables in the file but
    not in the model are skipped; variables in the model but not in the file
    keep their values; both are listed in the report and warned about.  The
    simulated time, step and random generator state are restored when the
    whole network is loaded.  ``monitors=True`` also restores the monitors
    saved with ``save(..., monitors=True)``.  ``comm``: an MPI run's
    communicator; every rank loads its own shard of a checkpoint saved with
    ``comm`` (by as many ranks), all or none of them.

    Returns
    -------
    RestoreReport

    Raises
    ------
    StructureMismatchError
        A size, shape or connectivity does not fit, or ``strict`` and
        something would be skipped or kept.  The network is unchanged.
    CorruptCheckpointError, UnsafeContentError, UnsupportedFormatError
        The file is damaged, hostile or of an unknown kind.  The network is
        unchanged.
    """
    if comm is not None:
        from . import distributed
        return distributed.load(path, obj, comm, populations=populations, projections=projections,
                                strict=strict, format=format, progress=progress, monitors=monitors)
    started = _time.perf_counter()
    adapter, plan = prepare_load(path, obj, populations=populations, projections=projections, strict=strict,
                                 format=format, progress=progress, monitors=monitors)
    adapter.apply(plan)
    plan.report.warn()
    # DEBUG: the caller (a Checkpointer, a script printing the report) says it once
    log.debug("loaded %s: %d arrays restored in %.2f s", os.fspath(path), len(plan.report.restored),
              _time.perf_counter() - started)
    return plan.report


def prepare_load(path, obj, *, populations=True, projections=True, strict=False, format=None, progress=None,
                 monitors=False):
    """Everything :func:`load` does before it changes the model: read and
    verify the file, match it with the model.  Returns ``(adapter, plan)``."""
    adapter = adapter_for(obj, monitors=monitors)
    model_state = adapter.describe(populations=populations, projections=projections)
    with ThreadPoolExecutor(1, thread_name_prefix="checkpoint-model") as pool:
        hash_connectivity(model_state, pool)  # overlaps the read, for make_plan's comparison
        file_state = read_state(path, format, progress=progress)
        if SHARDS in file_state.meta:
            raise StructureMismatchError(
                f"this is the manifest of a checkpoint in {file_state.meta[SHARDS]['ranks']} shards, "
                "one per MPI rank: load it from every rank with comm=", path=path)
        adapter.before_plan(file_state, model_state, path)
        plan = make_plan(file_state, model_state, populations=populations, projections=projections,
                         strict=strict, path=path)
    return adapter, plan


def read(path, lazy=False, format=None, progress=None):
    """Read a checkpoint without a simulator.

    Returns
    -------
    NetworkState
        ``state.populations[name][var]`` and ``state.projections[name][var]``
        are numpy arrays (with ``lazy=True`` on HDF5: datasets read on demand
        by slicing; close the state, or use it in a ``with`` block).
    """
    return read_state(path, format, lazy=lazy, progress=progress)
