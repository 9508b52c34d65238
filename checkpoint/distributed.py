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

Another number of ranks, or another partition of the neurons: a
population created with ``ids=``/``global_size=`` names the global index of
each neuron a rank holds, and the manifest records, per shard and
population, the range and a checksum of those ids.  A rank whose neurons
are exactly those of the shard of its rank loads that shard as it is (the
exact path: its random generator too).  Otherwise every rank opens the
shards whose id ranges meet its own ids, one at a time (HDF5 array by
array), takes its neurons and the synapses onto them
(:mod:`checkpoint.repartition`), and reseeds its generator from the
checkpoint and its rank: per-rank random streams do not map onto another
partition, and the report says so.

The files must be on a file system all ranks see (as a cluster's scratch
space is).
"""

import glob
import os
import re
import secrets
import stat

import numpy as np

from . import shardnames
from ._ranks import ONE_PROCESS, agree, as_communicator
from .adapters import adapter_for
from .local import SHARD, SHARDS, plan_load, prepare_load
from .local import save as save_one
from .errors import CheckpointError, StructureMismatchError, UnsupportedObjectError
from .formats import format_for, read_state, write_state
from .hashing import checksum
from .repartition import gather, summary
from .state import NetworkState, RngState

__all__ = ["save", "load", "read", "write_shards", "shard_paths", "verify_shards", "rank_local_populations"]

SHARD_FOLDER = shardnames.FOLDER
_shard_name = shardnames.shard_path


def _suffix(path, fmt):
    name = os.path.basename(os.fspath(path))
    return next((s for s in sorted(fmt.suffixes, key=len, reverse=True) if name.endswith(s)), fmt.suffixes[0])


def save(path, obj, comm, *, format=None, token=None, **options):
    """Save each rank's ``obj`` as one shard of the checkpoint ``path``.

    Call it from every rank of ``comm`` (an mpi4py communicator) at the same
    point of the run.  ``format`` and ``options`` are those of
    :func:`checkpoint.save`; ``token`` (the same on every rank; random by
    default) names the shards, so that a Checkpointer can note it in its
    ledger before they are written.
    """
    comm = as_communicator(comm)
    fmt = format_for(path, format)
    if token is None:
        token = comm.bcast(secrets.token_hex(6) if comm.rank == 0 else None, root=0)
    shard = _shard_name(path, token, comm.rank, comm.size, _suffix(path, fmt))
    error = meta = None
    try:
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise CheckpointError("the folder does not exist", path=path)
        _make_shard_folder(path)
        written, state = _write_shard(shard, obj, fmt, token, comm.rank, comm.size, options)
        meta = _manifest_meta(state) if comm.rank == 0 else None
    except Exception as exc:  # every rank must reach the allgather below
        error, written = exc, None
    try:
        agree(comm, error, "save its shard", path)
        shards = comm.allgather(written)  # the manifest names each shard's size, digest and neurons
        error = None
        if comm.rank == 0:
            try:
                _write_manifest(path, fmt, token, comm.size, meta, shards)
            except Exception as exc:
                error = exc
        agree(comm, error if comm.rank == 0 else None, "write the manifest", path)
    except BaseException:
        _remove(shard)
        raise
    _remove_superseded(path, token, comm.rank, comm.size)


# -- the writer both save paths share: save() on every rank of an MPI run,
# write_shards() for all ranks in one process (checkpoint convert --ranks) --


def _make_shard_folder(path):
    folder = shardnames.folder_of(path)
    if os.path.islink(folder):
        raise CheckpointError("the shard folder is a symlink: refused", path=folder)
    os.makedirs(folder, exist_ok=True)


def _write_shard(shard, obj, fmt, token, rank, ranks, options):
    """Rank ``rank``'s shard at ``shard``, naming its manifest (by token) and
    its rank; returns the manifest's entry for it (size, digest, population
    summary) and the state written."""
    digest, state = save_one(
        shard, obj, format=fmt.name, meta={SHARD: {"id": token, "rank": rank, "ranks": ranks}}, with_state=True,
        **options,
    )  # fmt: skip
    return (os.path.getsize(shard), digest, summary(state)), state


def _manifest_meta(state):
    """The manifest's meta: rank 0's shard's clock, simulator and user
    metadata.  (Taken from the shard rank 0 wrote, not from a capture of its
    own: a simulator's status calls may be collective under MPI, as NEST's
    are, and must run on every rank alike.)"""
    return {k: v for k, v in state.meta.items() if k not in (SHARDS, SHARD, "library_version_written", "created")}


def _write_manifest(path, fmt, token, size, meta, shards):
    """The manifest: the clock and the shard list (file, size, manifest
    digest and population summary per rank), no arrays."""
    meta = dict(meta, content="shards")
    meta[SHARDS] = {
        "ranks": size,
        "id": token,
        "files": [
            os.path.relpath(
                _shard_name(path, token, rank, size, _suffix(path, fmt)), os.path.dirname(os.path.abspath(path))
            )
            for rank in range(size)
        ],
        "sizes": [size_ for size_, _, _ in shards],
        "digests": [digest for _, digest, _ in shards],
        "populations": [populations for _, _, populations in shards],
    }
    write_state(path, NetworkState(meta=meta), fmt.name)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _remove_superseded(path, token, rank, ranks):
    """Delete this rank's shards of earlier checkpoints at ``path`` (rank 0:
    also those of ranks this run does not have, saved on more ranks)."""
    folder = glob.escape(shardnames.folder_of(path))
    for old in glob.glob(os.path.join(folder, "*.rank-*-of-*")):
        parsed = shardnames.parse(os.path.basename(old))
        theirs = parsed is not None and (parsed[1] == rank or (rank == 0 and parsed[1] >= ranks))
        if theirs and parsed[0] != token:
            _remove(old)


def shard_paths(path):
    """The shard files of the checkpoint whose manifest is ``path``, by rank."""
    return _shard_list(path)[0]


def _shard_list(path, manifest=None):
    """``(files, shards meta)`` of the manifest at ``path`` (read already:
    ``manifest``), every name checked."""
    manifest = manifest if manifest is not None else read_state(path)
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
        expected = shardnames.listed_name_pattern(path, shards["id"], rank, shards["ranks"])
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
        raise StructureMismatchError(
            f"the shard has {st.st_size} bytes, its manifest says {sizes[rank]}: not this checkpoint's shard",
            path=shard,
        )
    if state is None or digests is None:
        return
    binding = {"id": shards["id"], "rank": rank, "ranks": shards["ranks"]}
    if state.meta.get(SHARD) != binding or state.digest != digests[rank]:
        raise StructureMismatchError(
            f"the file is not rank {rank}'s shard of this checkpoint (it names {state.meta.get(SHARD)})", path=shard
        )
    recorded = shards.get("populations")
    if recorded is not None:  # what a read allocates is bounded by these counts: they must be the shard's
        actual = {name: [pop.size, pop.global_size] for name, pop in state.populations.items()}
        if actual != {name: [info["count"], info["global_size"]] for name, info in recorded[rank].items()}:
            raise StructureMismatchError(
                "the shard holds other populations or sizes than its manifest records", path=shard
            )


def verify_shards(path):
    """Read and check every shard of the checkpoint whose manifest is ``path``."""
    files, shards = _shard_list(path)
    for rank, shard in enumerate(files):
        check_shard(shard, rank, shards)
        check_shard(shard, rank, shards, read_state(shard))
    return files


def load(path, obj, comm=ONE_PROCESS, opened=None, **options):
    """Restore each rank's ``obj`` from the checkpoint ``path``: on every
    rank, or on none.

    Call it from every rank of ``comm``: as many as saved the checkpoint or
    not (see the module's docstring).  ``options`` are those of
    :func:`checkpoint.load`.  Returns this rank's :class:`RestoreReport`.
    """
    plan = undo = error = adapter = None
    comm = as_communicator(comm)
    try:
        # opened: the manifest already read and the model described (a load without comm=)
        files, shards = _shard_list(path, opened.file_state if opened else None)
        adapter = opened.adapter if opened else adapter_for(obj, monitors=options.get("monitors", False))
        if not adapter.shardable:
            raise UnsupportedObjectError(
                f"a {adapter.simulator} model cannot be one shard of an MPI "
                "checkpoint; sharded checkpoints hold embedded networks, NEST kernels and NEURON models",
                path=path,
            )
        model = opened.model_state if opened else adapter.describe()
        own = _own_shard(files, shards, model, comm)
    except Exception as exc:
        error, own = exc, False
    agree(comm, error, "read the manifest", path)
    exact = all(comm.allgather(own))  # every rank holds exactly its shard's neurons
    try:
        if exact:
            mine = files[comm.rank]
            check_shard(mine, comm.rank, shards)
            shard = prepare_load(
                mine,
                obj,
                check=lambda state: check_shard(mine, comm.rank, shards, state),
                adapter=adapter,
                model_state=model,
                **options,
            )
            if shard.sharded:  # a forged shard that claims to be a manifest
                raise StructureMismatchError("a shard is itself the manifest of shards", path=mine)
            plan = shard.plan
        else:
            plan = _repartitioned_plan(path, files, shards, adapter, model, comm, options)
    except Exception as exc:
        error = exc
    agree(comm, error, "read and check its shards", path)
    try:
        undo = adapter.apply_reversibly(plan)
    except Exception as exc:  # this rank has undone its own changes
        error = exc
    try:
        agree(comm, error, "apply its shard", path)
    except BaseException:
        if undo is not None:
            undo()
        raise
    plan.report.warn()
    return plan.report


def _own_shard(files, shards, model, comm):
    """Whether this rank's neurons are exactly those of the shard of its rank."""
    if len(files) != comm.size:
        return False
    recorded = shards.get("populations")
    if recorded is None:  # written before shards recorded their neurons: by rank only
        return True
    mine = recorded[comm.rank]
    return all(
        name not in mine or mine[name]["checksum"] == checksum(pop.global_ids())
        for name, pop in model.populations.items()
    )


def _repartitioned_plan(path, files, shards, adapter, model, comm, options):
    """This rank's plan, gathered from the shards that hold its neurons."""
    recorded = shards.get("populations")
    if recorded is None:
        raise StructureMismatchError(
            f"saved on {len(files)} ranks before checkpoints recorded global neuron ids: it loads only "
            f"on {len(files)} ranks",
            path=path,
        )
    _refuse_rank_local(recorded, model, path)
    wanted = {name: (pop.global_ids(), pop.global_size) for name, pop in model.populations.items()}
    needed = [rank for rank, pops in enumerate(recorded) if _overlaps(pops, wanted)]
    manifest = read_state(path)  # its meta: the run's clock and generators
    state = gather(lambda: _open_shards(files, shards, needed), wanted, path, manifest.meta)
    plan = plan_load(state, adapter, model, path, **{k: v for k, v in options.items() if k != "monitors"})
    if plan.clock is not None:
        _reseed(plan, model, manifest, comm.rank, path)
    return plan


def _refuse_rank_local(recorded, model, path):
    """Populations saved without global ids mean nothing on another partition."""
    for name in model.populations:
        if any(name in pops and not pops[name]["global_ids"] for pops in recorded) and len(recorded) > 1:
            raise StructureMismatchError(
                f"saved on {len(recorded)} ranks without global neuron ids (add_population(..., ids=, "
                f"global_size=)): it loads only on {len(recorded)} ranks, each with its own part",
                path=path,
                obj=name,
            )


def _overlaps(pops, wanted):
    for name, (ids, _) in wanted.items():
        info = pops.get(name)
        if info and info["count"] and len(ids):
            lo, hi = np.searchsorted(ids, [info["first"], info["last"] + 1])
            if hi > lo:
                return True
    return False


def _open_shards(files, shards, ranks):
    """Each wanted shard, read (lazily where the format can) and checked
    against its manifest, one at a time."""
    for rank in ranks:
        shard = files[rank]
        check_shard(shard, rank, shards)
        lazy = format_for(shard).lazy
        with read_state(shard, lazy=lazy) as state:
            check_shard(shard, rank, shards, state)
            yield f"shard {os.path.basename(shard)}", state


def _reseed(plan, model, manifest, rank, path):
    """Per-rank random streams do not map onto another partition: each
    generator is reseeded from the checkpoint's digest and this rank, the
    same on every rerun of the same restart, and the report says so."""
    entropy = int(manifest.digest or "0", 16)
    for name, rng in model.rng.items():
        bit_generator = rng.state.get("bit_generator", "PCG64") if isinstance(rng.state, dict) else "PCG64"
        seed = np.random.SeedSequence(entropy, spawn_key=(rank,))
        generator = getattr(np.random, bit_generator, np.random.PCG64)(seed)
        plan.rng[name] = RngState(name, rng.kind, generator.state)
        plan.report.reseeded.append(f"rng.{name}")


def read(path):
    """The whole network of a sharded checkpoint as one :class:`NetworkState`:
    every population in global order, every projection CSR by global post
    index; each rank's generator as ``<name>.rank<r>``."""
    files, shards = _shard_list(path)
    local = rank_local_populations(shards)
    if local is not None:
        raise StructureMismatchError(
            f"saved on {len(files)} ranks without global neuron ids ({', '.join(local) or 'every population'})"
            ": there is no one network to assemble; read each shard (checkpoint.distributed.shard_paths)",
            path=path,
        )
    manifest = read_state(path)
    rngs = {}

    def shards_with_rng():
        for rank, (label, state) in enumerate(_open_shards(files, shards, range(len(files)))):
            for name, rng in state.rng.items():
                rngs[f"{name}.rank{rank}"] = RngState(
                    f"{name}.rank{rank}", rng.kind, rng.state, {k: np.asarray(v) for k, v in rng.arrays.items()}
                )
            yield label, state

    state = gather(shards_with_rng, None, path, manifest.meta, _held(shards, path))
    state.rng = rngs
    state.meta["assembled_from"] = {"ranks": len(files)}
    return state


def _held(shards, path):
    """``{population: neurons its shards hold in all}``, from the manifest
    (each shard is checked against it as it opens): a population's
    ``global_size`` beyond it is refused before anything of that size is
    allocated.  Summed in Python integers."""
    recorded = shards.get("populations")
    if recorded is None:  # one shard, written before manifests recorded populations: its own sizes
        return {}
    held, sizes = {}, {}
    for pops in recorded:
        for name, info in pops.items():
            held[name] = held.get(name, 0) + info["count"]
            if sizes.setdefault(name, info["global_size"]) != info["global_size"]:
                raise StructureMismatchError("the shards record other sizes of the population", path=path, obj=name)
    for name, size in sizes.items():
        if size > held[name]:
            raise StructureMismatchError(
                f"{size - held[name]} of its {size} neurons are in no shard of the "
                f"checkpoint (the shards hold {held[name]})",
                path=path,
                obj=name,
            )
    return held


def rank_local_populations(shards):
    """The populations each rank of a sharded checkpoint held as its own (no
    global ids; ``[]``: written before manifests said), or None when the
    checkpoint is one network.  From the manifest's ``meta["shards"]`` alone."""
    recorded = shards.get("populations")
    if shards["ranks"] == 1:
        return None
    if recorded is None:
        return []
    local = sorted({name for pops in recorded for name, info in pops.items() if not info["global_ids"]})
    return local or None


def write_shards(path, state, ranks, format=None, **options):
    """Write ``state`` (one whole network) as a checkpoint in ``ranks``
    shards, each population split in contiguous blocks of neurons: what
    ``checkpoint convert --ranks N`` does."""
    if ranks < 1:
        raise CheckpointError("--ranks must be at least 1", path=path)
    blocks = {name: np.array_split(pop.global_ids(), ranks) for name, pop in state.populations.items()}
    whole = {name: (pop.global_ids(), pop.global_size) for name, pop in state.populations.items()}
    for name, (ids, size) in whole.items():
        if len(ids) != size:
            raise CheckpointError("the state holds part of a population; convert a whole network", path=path, obj=name)
    comms = [_OneOf(rank, ranks) for rank in range(ranks)]
    parts = []
    for rank in range(ranks):
        wanted = {name: (blocks[name][rank], whole[name][1]) for name in whole}
        part = gather(lambda: [("the state", state)], wanted, path, state.meta)
        for name, pop in part.populations.items():
            if pop.ids is None:
                pop.ids = pop.global_ids()
        part.rng = {} if rank else dict(state.rng)
        parts.append(part)
    _save_serially(path, parts, comms, format, options)


class _OneOf:
    """Rank ``rank`` of ``size`` simulated in one process, for :func:`write_shards`."""

    def __init__(self, rank, size):
        self.rank, self.size = rank, size


def _save_serially(path, parts, comms, format, options):
    """Every rank's shard, then the manifest, in this process; shards of a
    save that fails midway are removed (the manifest at ``path``, written
    last, still names the old ones)."""
    fmt = format_for(path, format)
    token = secrets.token_hex(6)
    _make_shard_folder(path)
    written, shards, first = [], [], None
    try:
        for comm, part in zip(comms, parts):
            shards.append(_shard_name(path, token, comm.rank, comm.size, _suffix(path, fmt)))
            entry, state = _write_shard(shards[-1], part, fmt, token, comm.rank, comm.size, options)
            written.append(entry)
            first = first or state
        _write_manifest(path, fmt, token, len(parts), _manifest_meta(first), written)
    except BaseException:
        for shard in shards:
            _remove(shard)
        raise
    for rank in range(len(parts)):
        _remove_superseded(path, token, rank, len(parts))
