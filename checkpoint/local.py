"""Saving and loading in one process: capture, write; read, plan, apply.

:mod:`checkpoint.api` calls these for a run without ``comm=``, and
:mod:`checkpoint.distributed` calls them for each rank's shard.
"""

import copy
import logging
import os
import time as _time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ._progress import format_ms
from .adapters import adapter_for
from .errors import CheckpointWarning, StructureMismatchError
from .formats import read_state, write_state
from .restore import make_plan, start_connectivity_hashes
from .state import NetworkState

__all__ = ["save", "load", "prepare_load", "finish_load", "plan_load", "Opened", "ShardedCheckpoint", "SHARDS"]

log = logging.getLogger("checkpoint")

#: ``meta`` key of a sharded checkpoint's manifest (see :mod:`checkpoint.distributed`).
SHARDS = "shards"
#: ``meta`` key of a shard: ``{"id": manifest token, "rank": r, "ranks": n}``.
SHARD = "shard"


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
    meta=None,
    with_state=False,
):
    """:func:`checkpoint.save` in one process; returns the digest of the file's
    manifest (and, ``with_state``, the state written).  ``meta``: entries
    added to the state's metadata (a shard's binding to its manifest)."""
    started = _time.perf_counter()
    if isinstance(obj, NetworkState):
        state = _as_written(obj, populations, projections, metadata)
    else:
        adapter = adapter_for(obj, monitors=monitors)
        if monitors and not adapter.captures_monitors:
            warnings.warn(
                f"monitors=True: the {adapter.simulator} adapter has no monitors to save",
                CheckpointWarning,
                stacklevel=4,
            )
        state = adapter.capture(populations=populations, projections=projections)
        state.meta["user"] = dict(metadata or {})
    state.meta.update(meta or {})
    digest = write_state(path, state, format, compression, progress=progress)
    log.info(
        "saved %s (%.1f MB, t=%s ms) in %.2f s",
        os.fspath(path),
        state.nbytes() / 1e6,
        format_ms(state.time),
        _time.perf_counter() - started,
    )
    return (digest, state) if with_state else digest


def _as_written(state, populations, projections, metadata):
    """A :class:`NetworkState` (from :func:`read`, maybe edited) to write as it is."""
    written = copy.copy(state)
    written.meta = {k: v for k, v in state.meta.items() if k not in ("library_version_written", "created")}
    written.populations = dict(state.populations) if populations else {}
    written.projections = dict(state.projections) if projections else {}
    if metadata is not None:
        written.meta["user"] = dict(metadata)
    return written


def load(path, obj, *, populations=True, projections=True, strict=False, format=None, progress=None, monitors=False):
    """:func:`checkpoint.load` in one process, of a checkpoint in one file."""
    opened = prepare_load(
        path,
        obj,
        populations=populations,
        projections=projections,
        strict=strict,
        format=format,
        progress=progress,
        monitors=monitors,
    )
    if opened.sharded:
        raise ShardedCheckpoint(
            f"this is the manifest of a checkpoint in {opened.file_state.meta[SHARDS]['ranks']} shards, "
            "one per MPI rank: load it with comm= (or without, into one process)",
            path=path,
        )
    return finish_load(opened)


def finish_load(opened):
    """Apply a prepared load's plan; the report."""
    started = _time.perf_counter()
    opened.adapter.apply(opened.plan)
    opened.plan.report.warn()
    # DEBUG: the caller (a Checkpointer, a script printing the report) says it once
    log.debug(
        "loaded %s: %d arrays restored in %.2f s",
        opened.plan.report.path,
        len(opened.plan.report.restored),
        _time.perf_counter() - started,
    )
    return opened.plan.report


@dataclass
class Opened:
    """A checkpoint read and matched with the model, nothing changed yet.

    ``sharded``: the file is the manifest of a sharded checkpoint
    (``file_state`` holds only its meta; ``plan`` is None), which
    :mod:`checkpoint.distributed` loads with the adapter and the model's
    description made here, so that a load reads the manifest and describes
    the model once."""

    adapter: object
    model_state: NetworkState
    file_state: NetworkState
    plan: object = None

    @property
    def sharded(self):
        return SHARDS in self.file_state.meta


def prepare_load(
    path,
    obj,
    *,
    populations=True,
    projections=True,
    strict=False,
    format=None,
    progress=None,
    monitors=False,
    check=None,
    adapter=None,
    model_state=None,
):
    """Everything :func:`load` does before it changes the model: read and
    verify the file, match it with the model.  ``adapter`` and
    ``model_state``: the model already described (a sharded load).
    Returns an :class:`Opened`."""
    adapter = adapter or adapter_for(obj, monitors=monitors)
    if monitors and not adapter.restores_monitors:
        warnings.warn(
            f"monitors=True: {adapter.simulator} cannot put recorded events back into its recorders; "
            "the file's stay in the file (the report lists them as skipped)",
            CheckpointWarning,
            stacklevel=4,
        )
    if model_state is None:
        model_state = adapter.describe(populations=populations, projections=projections)
    with ThreadPoolExecutor(1, thread_name_prefix="checkpoint-model") as pool:
        start_connectivity_hashes(model_state, pool)  # overlaps the read, for make_plan's comparison
        file_state = read_state(path, format, progress=progress, keep_simulator_order=adapter.takes_simulator_order)
        if check is not None:  # e.g. that a shard belongs to its manifest
            check(file_state)
        opened = Opened(adapter, model_state, file_state)
        if not opened.sharded:
            opened.plan = plan_load(
                file_state, adapter, model_state, path, populations=populations, projections=projections, strict=strict
            )
    return opened


def plan_load(file_state, adapter, model_state, path, *, populations=True, projections=True, strict=False, **ignored):
    """The restore plan of ``file_state`` (read and checked) into the model."""
    added = adapter.before_plan(file_state, model_state, path)
    if added is not None:  # objects the model can make for the file (NEST: connections of a resume)
        model_state = model_state.with_objects(added)
    return make_plan(
        file_state,
        model_state,
        populations=populations,
        projections=projections,
        strict=strict,
        path=path,
        restores_dt=adapter.restores_dt,
    )


class ShardedCheckpoint(StructureMismatchError):
    """The file is the manifest of a sharded checkpoint (:mod:`checkpoint.distributed` loads it)."""
