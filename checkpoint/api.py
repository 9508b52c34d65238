"""save, load and read: the calls simulation scripts make.

This layer only dispatches: to :mod:`checkpoint.local` for one process, to
:mod:`checkpoint.distributed` for an MPI run (``comm=``).
"""

from . import distributed, local
from .formats import read_state

__all__ = ["save", "load", "read"]


def save(
    path,
    obj,
    *,
    populations=True,
    projections=True,
    format=None,
    compression=None,
    metadata=None,
    progress=None,
    monitors=False,
    comm=None,
):
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
        return distributed.save(
            path,
            obj,
            comm,
            populations=populations,
            projections=projections,
            format=format,
            compression=compression,
            metadata=metadata,
            progress=progress,
            monitors=monitors,
        )
    return local.save(
        path,
        obj,
        populations=populations,
        projections=projections,
        format=format,
        compression=compression,
        metadata=metadata,
        progress=progress,
        monitors=monitors,
    )


def load(
    path,
    obj,
    *,
    populations=True,
    projections=True,
    strict=False,
    format=None,
    progress=None,
    monitors=False,
    comm=None,
):
    """Restore ``obj`` from ``path``: all of it, or nothing.

    Objects and variables are matched by name.  Variables in the file but
    not in the model are skipped; variables in the model but not in the file
    keep their values; both are listed in the report and warned about.  The
    simulated time, step and random generator state are restored when the
    whole network is loaded.  ``monitors=True`` also restores the monitors
    saved with ``save(..., monitors=True)``.  ``comm``: an MPI run's
    communicator; every rank loads its own part of a checkpoint saved with
    ``comm``, on as many ranks or on another number (populations with
    global ``ids``: see :mod:`checkpoint.distributed`), all or none of
    them.  Without ``comm``, a sharded checkpoint loads whole into this
    one process.

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
    options = dict(
        populations=populations,
        projections=projections,
        strict=strict,
        format=format,
        progress=progress,
        monitors=monitors,
    )
    if comm is not None:
        return distributed.load(path, obj, comm, **options)
    opened = local.prepare_load(path, obj, **options)
    if opened.sharded:  # the manifest of an MPI run: all of it, into this process
        return distributed.load(path, obj, opened=opened, **options)
    return local.finish_load(opened)


def read(path, lazy=False, format=None, progress=None):
    """Read a checkpoint without a simulator.

    Returns
    -------
    NetworkState
        ``state.populations[name][var]`` and ``state.projections[name][var]``
        are numpy arrays (with ``lazy=True`` on HDF5: datasets read on demand
        by slicing; close the state, or use it in a ``with`` block).  The
        manifest of a sharded checkpoint gives the whole network, assembled
        from every shard (never lazily).
    """
    state = read_state(path, format, lazy=lazy, progress=progress)
    if local.SHARDS in state.meta:
        state.close()
        return distributed.read(path)
    return state
