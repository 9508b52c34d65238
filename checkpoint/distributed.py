"""Checkpoints of MPI runs: one shard per rank, plus a manifest.

Each rank holds its own part of the model (an embedded
:class:`checkpoint.Network` per rank, say, each with the neurons it
simulates) and every rank calls ``checkpoint.save(path, net, comm=comm)``
together.  For ``run.h5`` on 4 ranks::

    run.h5                                 the manifest (written last)
    run.h5.shards/<id>.rank-0-of-4.h5      rank 0's part: an ordinary checkpoint
    ...
    run.h5.shards/<id>.rank-3-of-4.h5

The PyPI h5py has no parallel HDF5, so every rank writes its own file.  A
shard is an ordinary checkpoint of the same format (``checkpoint.read`` and
h5py/numpy/MATLAB open it); the manifest is an ordinary checkpoint with no
arrays whose ``meta["shards"]`` lists the shards.  Rank 0 writes it after
every rank's shard is durable: it is the commit point.  A save that fails on
any rank raises on every rank and leaves the previous checkpoint (manifest
and shards) as it was; the superseded shards are deleted after the commit.

A load reads and checks every rank's shard and plans the restore on every
rank before any rank changes anything; if applying fails on one rank, the
others undo theirs.  Every rank raises when one does (a
:class:`CheckpointError` naming the rank), so no rank is left waiting.

The files must be on a file system all ranks see (as a cluster's scratch
space is).  Simulators here run on one process, so shards hold embedded
networks.
"""

import glob
import os
import re
import secrets

from ._ranks import agree
from .adapters import adapter_for
from .local import SHARDS, prepare_load
from .local import save as save_one
from .errors import CheckpointError, StructureMismatchError, UnsupportedObjectError
from .formats import format_for, read_state, write_state
from .state import NetworkState

__all__ = ["save", "load", "shard_paths"]

SHARD_FOLDER = ".shards"


def _shard_name(path, token, rank, size, suffix):
    return os.path.join(os.fspath(path) + SHARD_FOLDER, f"{token}.rank-{rank}-of-{size}{suffix}")


def _suffix(path, fmt):
    name = os.path.basename(os.fspath(path))
    return next((s for s in sorted(fmt.suffixes, key=len, reverse=True) if name.endswith(s)), fmt.suffixes[0])


def save(path, obj, comm, *, format=None, **options):
    """Save each rank's ``obj`` as one shard of the checkpoint ``path``.

    Call it from every rank of ``comm`` (an mpi4py communicator) at the same
    point of the run.  ``format`` and ``options`` are those of
    :func:`checkpoint.save`.
    """
    fmt = format_for(path, format)
    token = comm.bcast(secrets.token_hex(6) if comm.rank == 0 else None, root=0)
    shard = _shard_name(path, token, comm.rank, comm.size, _suffix(path, fmt))
    error = None
    try:
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise CheckpointError("the folder does not exist", path=path)
        os.makedirs(os.path.dirname(shard), exist_ok=True)
        save_one(shard, obj, format=fmt.name, **options)
    except Exception as exc:   # every rank must reach the allgather below
        error = exc
    try:
        agree(comm, error, "save its shard", path)
        error = None
        if comm.rank == 0:
            try:
                _write_manifest(path, fmt, token, comm.size, obj, options.get("metadata"))
            except Exception as exc:
                error = exc
        agree(comm, error if comm.rank == 0 else None, "write the manifest", path)
    except BaseException:
        _remove(shard)
        raise
    _remove_superseded(path, token, comm.rank)


def _write_manifest(path, fmt, token, size, obj, metadata):
    """The manifest: rank 0's clock and the shard list, no arrays."""
    meta = adapter_for(obj).capture(populations=False, projections=False).meta
    meta["content"] = "shards"
    meta["user"] = dict(metadata or {})
    meta[SHARDS] = {"ranks": size, "id": token,
                    "files": [os.path.relpath(_shard_name(path, token, rank, size, _suffix(path, fmt)),
                                              os.path.dirname(os.path.abspath(path)))
                              for rank in range(size)]}
    write_state(path, NetworkState(meta=meta), fmt.name)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _remove_superseded(path, token, rank):
    """Delete this rank's shards of earlier checkpoints at ``path``."""
    pattern = os.path.join(glob.escape(os.fspath(path) + SHARD_FOLDER), f"*.rank-{rank}-of-*")
    for old in glob.glob(pattern):
        if not os.path.basename(old).startswith(token + "."):
            _remove(old)


def shard_paths(path):
    """The shard files of the checkpoint whose manifest is ``path``, by rank."""
    manifest = read_state(path)
    shards = manifest.meta.get(SHARDS)
    if not isinstance(shards, dict) or not isinstance(shards.get("files"), list):
        raise StructureMismatchError("not the manifest of a sharded checkpoint", path=path)
    folder = os.path.dirname(os.path.abspath(path))
    files = []
    for name in shards["files"]:
        # shard names come from the file: refuse any that leaves the shard folder
        if not isinstance(name, str) or not re.fullmatch(r"[^/\\]+\.shards/[0-9a-f]+\.rank-\d+-of-\d+[.\w]+", name):
            raise StructureMismatchError(f"bad shard name {name!r} in the manifest", path=path)
        files.append(os.path.join(folder, name))
    if len(files) != shards.get("ranks"):
        raise StructureMismatchError("the manifest's shard list does not match its rank count", path=path)
    return files


def load(path, obj, comm, **options):
    """Restore each rank's ``obj`` from its shard of the checkpoint ``path``:
    on every rank, or on none.

    Call it from every rank of ``comm``, as many as saved the checkpoint.
    ``options`` are those of :func:`checkpoint.load`.  Returns this rank's
    :class:`RestoreReport`.
    """
    plan = undo = error = None
    try:
        shards = shard_paths(path)
        if len(shards) != comm.size:
            raise StructureMismatchError(f"the checkpoint has {len(shards)} shards, this run {comm.size} ranks",
                                         path=path)
        adapter, plan = prepare_load(shards[comm.rank], obj, **options)
        if not adapter.shardable:
            raise UnsupportedObjectError(f"a {adapter.simulator} model cannot be one shard of an MPI "
                                         "checkpoint; sharded checkpoints hold embedded networks", path=path)
    except Exception as exc:
        error = exc
    agree(comm, error, "read and check its shard", path)
    try:
        undo = adapter.apply_reversibly(plan)
    except Exception as exc:   # this rank has undone its own changes
        error = exc
    try:
        agree(comm, error, "apply its shard", path)
    except BaseException:
        if undo is not None:
            undo()
        raise
    plan.report.warn()
    return plan.report
