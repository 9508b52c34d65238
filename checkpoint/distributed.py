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
import stat

from ._ranks import agree
from .adapters import adapter_for
from .local import SHARD, SHARDS, prepare_load
from .local import save as save_one
from .errors import CheckpointError, StructureMismatchError, UnsupportedObjectError
from .formats import format_for, read_state, write_state
from .state import NetworkState

__all__ = ["save", "load", "shard_paths", "verify_shards"]

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
        folder = os.path.dirname(shard)
        if os.path.islink(folder):
            raise CheckpointError("the shard folder is a symlink: refused", path=folder)
        os.makedirs(folder, exist_ok=True)
        # the shard names its manifest (by token) and its rank
        digest = save_one(shard, obj, format=fmt.name, meta={SHARD: {"id": token, "rank": comm.rank,
                                                                      "ranks": comm.size}}, **options)
        written = (os.path.getsize(shard), digest)
    except Exception as exc:   # every rank must reach the allgather below
        error, written = exc, None
    try:
        agree(comm, error, "save its shard", path)
        shards = comm.allgather(written)   # the manifest names each shard's size and digest
        error = None
        if comm.rank == 0:
            try:
                _write_manifest(path, fmt, token, comm.size, obj, options.get("metadata"), shards)
            except Exception as exc:
                error = exc
        agree(comm, error if comm.rank == 0 else None, "write the manifest", path)
    except BaseException:
        _remove(shard)
        raise
    _remove_superseded(path, token, comm.rank)


def _write_manifest(path, fmt, token, size, obj, metadata, shards):
    """The manifest: rank 0's clock and the shard list (file, size and
    manifest digest per rank), no arrays."""
    meta = adapter_for(obj).capture(populations=False, projections=False).meta
    meta["content"] = "shards"
    meta["user"] = dict(metadata or {})
    meta[SHARDS] = {"ranks": size, "id": token,
                    "files": [os.path.relpath(_shard_name(path, token, rank, size, _suffix(path, fmt)),
                                              os.path.dirname(os.path.abspath(path)))
                              for rank in range(size)],
                    "sizes": [size_ for size_, _ in shards], "digests": [digest for _, digest in shards]}
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
    return _shard_list(path)[0]


def _shard_list(path):
    """``(files, shards meta)`` of the manifest at ``path``, every name checked."""
    manifest = read_state(path)
    shards = manifest.meta.get(SHARDS)
    if not isinstance(shards, dict) or not isinstance(shards.get("files"), list):
        raise StructureMismatchError("not the manifest of a sharded checkpoint", path=path)
    folder = os.path.dirname(os.path.abspath(path))
    shard_folder = os.path.abspath(os.fspath(path)) + SHARD_FOLDER
    if os.path.islink(shard_folder):
        raise StructureMismatchError("the shard folder is a symlink: refused", path=path)
    files = []
    for rank, name in enumerate(shards["files"]):
        # shard names come from the file: refuse any that leaves this checkpoint's
        # shard folder, or names another checkpoint's token or another rank
        expected = rf"{re.escape(os.path.basename(shard_folder))}/{shards['id']}\.rank-{rank}-of-{shards['ranks']}[.\w]+"
        if not isinstance(name, str) or not re.fullmatch(expected, name):
            raise StructureMismatchError(f"bad shard name {name!r} in the manifest", path=path)
        files.append(os.path.join(folder, name))
    return files, shards


def check_shard(shard, rank, shards, state=None):
    """Raise unless the file ``shard`` is rank ``rank``'s shard of the
    manifest whose ``meta["shards"]`` is ``shards``: a regular file of the
    size the manifest records and, once read (``state``), naming that
    manifest and rank, with the manifest digest the manifest records.
    (Checkpoints written before shards were bound carry no sizes or
    digests; their names are checked still.)"""
    try:
        st = os.lstat(shard)
    except OSError:
        raise StructureMismatchError("a shard is missing", path=shard) from None
    if not stat.S_ISREG(st.st_mode):
        raise StructureMismatchError("a shard that is not a regular file (a symlink?): refused", path=shard)
    sizes, digests = shards.get("sizes"), shards.get("digests")
    if sizes is not None and st.st_size != sizes[rank]:
        raise StructureMismatchError(f"the shard has {st.st_size} bytes, its manifest says {sizes[rank]}: "
                                     "not this checkpoint's shard", path=shard)
    if state is None or digests is None:
        return
    binding = {"id": shards["id"], "rank": rank, "ranks": shards["ranks"]}
    if state.meta.get(SHARD) != binding or state.digest != digests[rank]:
        raise StructureMismatchError(f"the file is not rank {rank}'s shard of this checkpoint (it names "
                                     f"{state.meta.get(SHARD)})", path=shard)


def verify_shards(path):
    """Read and check every shard of the checkpoint whose manifest is ``path``."""
    files, shards = _shard_list(path)
    for rank, shard in enumerate(files):
        check_shard(shard, rank, shards)
        check_shard(shard, rank, shards, read_state(shard))
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
        files, shards = _shard_list(path)
        if len(files) != comm.size:
            raise StructureMismatchError(f"the checkpoint has {len(files)} shards, this run {comm.size} ranks",
                                         path=path)
        mine = files[comm.rank]
        check_shard(mine, comm.rank, shards)
        adapter, plan = prepare_load(mine, obj, check=lambda state: check_shard(mine, comm.rank, shards, state),
                                     **options)
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
