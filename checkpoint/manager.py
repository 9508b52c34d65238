"""Periodic checkpoints and exact resume: the Checkpointer.

The Checkpointer decides *when* to save (:class:`SaveSchedule`) and *what to
keep* (:class:`Retention`); :func:`checkpoint.save` decides *how*; the atomic
rename decides *whether a checkpoint exists*; :class:`~.folder.CheckpointFolder`
names, lists and deletes files (only those it can prove it wrote).  A
checkpoint is a file ``ckpt-<step, 12 digits>[-keep].<suffix>`` in the folder;
a ``-keep`` one is never deleted.
"""

import concurrent.futures
import contextlib
import copy
import logging
import os
import secrets
import signal
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np
from typing import Optional

from .adapters import adapter_for
from .api import load
from ._progress import format_ms
from .local import SHARDS
from .distributed import save as save_sharded, verify_shards
from .errors import CheckpointError, CheckpointWarning, CorruptCheckpointError, Interrupted
from ._ranks import ONE_PROCESS, on_leader
from .folder import CheckpointFolder, checkpoint_name
from .formats import format_for, read_state, write_state
from .recordings import RecordingLog

__all__ = ["Checkpointer", "SaveSchedule", "Retention"]

log = logging.getLogger("checkpoint")


@dataclass
class SaveSchedule:
    """When a checkpoint is due: at each multiple of ``every_steps`` steps or
    ``every_ms`` simulated ms (so checkpoints fall on the same round numbers
    whether or not the run was resumed), or ``every_seconds`` of wall time
    after the last one."""

    every_steps: Optional[int] = None
    every_ms: Optional[float] = None
    every_seconds: Optional[float] = None

    def due(self, step, time_ms, last_step, last_time_ms, last_wall):
        return bool(
            (self.every_steps and step // self.every_steps > last_step // self.every_steps)
            or (self.every_ms and _interval(time_ms, self.every_ms) > _interval(last_time_ms, self.every_ms))
            or (self.every_seconds and time.monotonic() - last_wall >= self.every_seconds)
        )


def _interval(time_ms, every_ms):
    # a hair of tolerance so that 0.1 ms * 50 steps counts as 5 ms
    return int((time_ms + 1e-9 * max(1.0, abs(time_ms))) // every_ms)


@dataclass
class Retention:
    """What to keep: the ``keep`` newest, plus one checkpoint permanently per
    ``keep_every_ms`` of simulated time or ``keep_every_seconds`` of wall time."""

    keep: int = 3
    keep_every_ms: Optional[float] = None
    keep_every_seconds: Optional[float] = None

    def permanent(self, time_ms, last_kept_ms, wall, last_kept_wall):
        return bool(
            (
                self.keep_every_ms
                and (
                    last_kept_ms is None
                    or _interval(time_ms, self.keep_every_ms) > _interval(last_kept_ms, self.keep_every_ms)
                )
            )
            or (self.keep_every_seconds and wall - last_kept_wall >= self.keep_every_seconds)
        )


class Checkpointer:
    """Write checkpoints of ``obj`` into ``directory`` during a long run.

    Parameters
    ----------
    directory : str or os.PathLike
        Created if missing (with ``create=True``).  Locked while in use.
    obj
        What :func:`checkpoint.save` accepts.
    every_steps, every_ms, every_seconds : optional
        When :meth:`maybe_save` saves (any combination).
    keep : int
        How many of the newest checkpoints to keep.
    keep_every_ms, keep_every_seconds : float, optional
        Keep one checkpoint per interval of simulated or wall time forever.
    format : str
        Any format of :func:`checkpoint.save` (``"h5"`` by default).
    background : bool
        Write in a background thread; the run pauses only for a copy.
    signals : tuple of signal numbers
        On one of these the next :meth:`maybe_save` saves, waits, and
        raises :class:`checkpoint.Interrupted`.  By default Ctrl-C (SIGINT),
        SIGTERM (a cluster's time limit) and SIGUSR1; a second Ctrl-C
        stops at once (``KeyboardInterrupt``).
    monitors : bool
        Save and restore the simulator's monitors too (see :func:`checkpoint.save`).
    recordings : bool
        At every checkpoint, write what each monitor recorded since the
        previous one as a segment beside it and empty the monitor; a resume
        goes on from the segments its checkpoint lists, and
        :func:`checkpoint.recordings` reads the whole run
        (:mod:`checkpoint.recordings`).  Not with ``monitors`` or ``comm``.
    comm : mpi4py communicator, optional
        An MPI run: every rank creates a Checkpointer on the same folder with
        its own part of the model and calls every method at the same points.
        Checkpoints are sharded (:mod:`checkpoint.distributed`), written
        without a background thread; the ranks agree on when to save, so a
        signal received by any rank stops all of them at the same step.
    schedule : SaveSchedule, optional
        When to save, as an object (replaces ``every_*``); any object with
        the method ``due(step, time_ms, last_step, last_time_ms, last_wall)``.
    retention : Retention, optional
        What to keep, as an object (replaces ``keep`` and ``keep_every_*``);
        any object with ``keep`` and ``permanent(time_ms, last_kept_ms, wall,
        last_kept_wall)``.
    read_only : bool
        List and restore only, while another process may own the folder:
        no lock is taken, nothing is written or deleted, no signal handler
        is installed, and :meth:`save` raises.

    Examples
    --------
    >>> with checkpoint.Checkpointer("ckpts", net, every_steps=1000) as ckpt:
    ...     ckpt.restore_latest()
    ...     while net.step < n_steps:
    ...         simulate_one_step(net)
    ...         ckpt.maybe_save()
    """

    def __init__(
        self,
        directory,
        obj,
        *,
        every_steps=None,
        every_ms=None,
        every_seconds=None,
        keep=3,
        keep_every_ms=None,
        keep_every_seconds=None,
        format="h5",
        background=True,
        signals=(signal.SIGINT, signal.SIGTERM, signal.SIGUSR1),
        compression=None,
        metadata=None,
        create=True,
        monitors=False,
        comm=None,
        read_only=False,
        schedule=None,
        retention=None,
        recordings=False,
    ):
        self.directory = os.path.abspath(os.fspath(directory))
        self.obj = obj
        self.monitors = monitors
        self.sharded = comm is not None  # an MPI run: sharded checkpoints
        self.comm = comm if comm is not None else ONE_PROCESS
        self.adapter = adapter_for(obj, monitors=monitors)
        self._check_recordings(recordings, monitors, comm, read_only)  # before the folder is created
        # the policies: small objects a script may pass instead of the keywords
        self.schedule = schedule or SaveSchedule(every_steps, every_ms, every_seconds)
        self.retention = retention or Retention(keep, keep_every_ms, keep_every_seconds)
        if self.retention.keep < 1:
            raise ValueError("keep must be at least 1")
        self.suffix = format_for("x", format).suffixes[0]
        self.background = background and not self.sharded  # MPI calls stay on the main thread
        self.compression, self.metadata = compression, metadata
        self._verified = {}
        self._buffers = {}  # snapshot buffers, reused: copying into warm memory is the whole pause
        self._future = None
        self._executor = None
        self._signal = None
        self._ctrl_c = 0  # Ctrl-Cs since the last Interrupted
        self._saved_step = None  # the step of the checkpoint last saved or restored here
        self._old_handlers = {}
        self.folder = None
        self.read_only = read_only
        if not read_only:
            self._on_leader(lambda: setattr(self, "folder", self._open_folder(create)), "open the folder")
        if self.folder is None:  # read-only, or another rank of an MPI run: list the folder rank 0 owns
            self.folder = CheckpointFolder(self.directory, read_only=True)
        time_ms, step = self._clock()
        self._last = (step, time_ms, time.monotonic())
        self._recordings = self._recording_log(recordings, monitors, time_ms, step)
        kept = [p for p in self._files() if p[2]]
        self._last_kept = (self._time_of(kept[-1][1]) if kept else None, time.monotonic())
        self._install_signals(() if read_only else signals)

    # ------------------------------------------------------------- MPI ranks

    def _on_leader(self, work, what):
        """Run ``work`` on rank 0, the rank that owns the folder; every rank gets its result."""
        return on_leader(self.comm, work, what, path=self.directory)

    # ------------------------------------------------------------- the folder

    def _open_folder(self, create):
        folder = CheckpointFolder(self.directory, create=create)
        try:
            folder.clean_leftovers()
        except BaseException:
            folder.close()
            raise
        return folder

    def _files(self):
        """``(step, path, permanent)`` of every checkpoint file, oldest first."""
        return self.folder.checkpoints()

    def _time_of(self, path):
        with contextlib.suppress(CheckpointError):
            return read_state(path).time
        return None

    def _valid(self, path):
        """Whether ``path`` (and, sharded, each shard) reads and verifies;
        cached by size and mtime."""
        try:
            stat = os.stat(path)
        except OSError:
            return False
        key = (path, stat.st_size, stat.st_mtime_ns)
        if key not in self._verified:
            try:
                state = read_state(path)
                if SHARDS in state.meta:
                    verify_shards(path)
                self._verified[key] = True
            except CheckpointError:
                self._verified[key] = False
        return self._verified[key]

    def checkpoints(self):
        """Paths of all complete checkpoints whose checksums verify, oldest first."""
        return self._on_leader(
            lambda: [path for _, path, _ in self._files() if self._valid(path)], "list the checkpoints"
        )

    def latest(self):
        """Path of the newest complete, valid checkpoint, or None.  A damaged
        newer one is passed over with a :class:`CheckpointWarning`."""

        def newest():
            for _, path, _ in reversed(self._files()):
                if self._valid(path):
                    return path
                warnings.warn(f"{path}: damaged checkpoint passed over", CheckpointWarning, stacklevel=4)
            return None

        return self._on_leader(newest, "find the latest checkpoint")

    # ------------------------------------------------------------- restoring

    def restore_latest(self, **load_options):
        """Load the newest valid checkpoint into the object.

        Returns the :class:`RestoreReport`, or None when there is no
        checkpoint yet (a fresh start).  A damaged newest checkpoint is
        passed over, with a warning, for the one before it.
        """
        self._raise_background_error()
        if self.sharded:  # the leader has verified every shard of the one it names
            path = self.latest()
            return None if path is None else self._resumed(path, load(path, self.obj, comm=self.comm, **load_options))
        for _, path, _ in reversed(self._files()):
            try:
                if self._recordings is not None:  # its listing of segments, before the network changes
                    self._recordings.check_committed(path)
                report = load(path, self.obj, **dict({"monitors": self.monitors}, **load_options))
            except CorruptCheckpointError as exc:
                warnings.warn(f"{exc}; trying the previous checkpoint", CheckpointWarning, stacklevel=2)
                continue
            return self._resumed(path, report)
        return None

    def _resumed(self, path, report):
        time_ms, step = self._clock()
        if self._recordings is not None:
            checkpoint_state = read_state(path, lazy=True)  # its meta lists the committed segments
            checkpoint_state.close()
            self._recordings.resume(checkpoint_state.meta, path, self._recorders(), time_ms, step)
        self._last = (step, time_ms, time.monotonic())
        self._saved_step = step
        log.info("resumed from %s at step %d (t=%s ms)", path, step, format_ms(time_ms))
        if not self.adapter.exact_restart:
            log.info(
                "%s restarts are continuations, not bit for bit: what the simulator keeps out of reach "
                "starts afresh (see its page in the documentation)",
                self.adapter.simulator,
            )
        return report

    # ---------------------------------------------------------------- saving

    def _clock(self):
        return self.adapter.clock()

    @property
    def time_ms(self):
        """The simulated time in ms, as checkpoints record it.  For NEST,
        whose clock restarts at 0 in a restored kernel, this counts on from
        the checkpoint: loop on it rather than on ``nest.biological_time``."""
        return self._clock()[0]

    def maybe_save(self):
        """Save if due; after a signal, save, wait, and raise :class:`Interrupted`.

        Returns the path written, or None.
        """
        self._refuse_if_read_only()
        self._raise_background_error()
        time_ms, step = self._clock()
        due = step != self._last[0] and self.schedule.due(step, time_ms, *self._last)
        # one decision for all ranks: a signal or a wall clock may differ between them
        signals, dues = zip(*self.comm.allgather((self._signal, due)))
        due = any(dues)
        agreed = next((s for s in signals if s is not None), None)
        if agreed is None:
            # a signal handled while the allgather was under way (Python runs
            # the handler once the MPI call returns) is shared at the next
            # call: never overwrite it here, or every rank loses it and the run
            # goes on (it hung under mpiexec)
            return self.save() if due else None
        self._signal = None
        path = self.save()
        self.wait()
        self._ctrl_c = 0
        raise Interrupted(agreed, path)

    def save(self, *, skip_if_saved=False):
        """Write a checkpoint now (in the background if so configured).

        ``skip_if_saved=True`` (the final save of a run loop) writes nothing
        when this Checkpointer already saved or restored the current step.
        Returns the path the checkpoint will have once committed, or None
        when skipped.
        """
        self._refuse_if_read_only()
        if skip_if_saved and self._saved_step is not None and self._saved_step == self._clock()[1]:
            return None
        self.wait()
        if self.sharded:
            return self._save_sharded()
        state = self.adapter.capture()
        self._saved_step = state.step
        state.meta["user"] = dict(self.metadata or {})
        path = self._start_save(state.step, state.time)
        segment = self._take_recordings(state)  # the recorders' own arrays, taken: no copy needed
        if self.background:
            snapshot = _snapshot(state, self._buffers)
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="checkpoint")
            self._future = self._executor.submit(self._commit, path, snapshot, segment)
        else:
            self._commit(path, state, segment)
        return path

    def _start_save(self, step, time_ms):
        """Mark a save at ``step`` as begun (the schedule counts from it) and
        return its path (``-keep`` when retention says so); a second save at
        one step rewrites that step's checkpoint."""
        same_step = [
            path
            for saved_step, path, _ in self._files()
            if saved_step == step and path.endswith(self.suffix) and self.folder.wrote(path)
        ]
        if same_step:
            self._last = (step, time_ms, time.monotonic())
            return same_step[-1]
        permanent = self.retention.permanent(time_ms, self._last_kept[0], time.monotonic(), self._last_kept[1])
        if permanent:
            self._last_kept = (time_ms, time.monotonic())
        self._last = (step, time_ms, time.monotonic())
        path = self.folder.path(checkpoint_name(step, permanent, self.suffix))
        if os.path.lexists(path) and not self.folder.wrote(path):
            raise CheckpointError(
                "a file this Checkpointer did not write has the name of the checkpoint "
                "it is about to save; move it away",
                path=path,
            )
        return path

    def _save_sharded(self):
        time_ms, step = self._clock()
        self._saved_step = step

        def begin():  # the ledger names the shards' token before any is written
            path, token = self._start_save(step, time_ms), secrets.token_hex(6)
            self.folder.begin_sharded(path, token)
            return path, token

        path, token = self._on_leader(begin, "name the checkpoint")
        self._last = (step, time_ms, time.monotonic())
        save_sharded(
            path,
            self.obj,
            self.comm,
            token=token,
            compression=self.compression,
            metadata=self.metadata,
            monitors=self.monitors,
        )
        self._on_leader(lambda: (self.folder.record(path), self._apply_retention(path)), "delete old checkpoints")
        return path

    def _commit(self, path, state, segment=None):
        started = time.perf_counter()
        if self._recordings is not None:  # the segment first: the checkpoint commits it
            if segment is not None:
                self._recordings.write(segment, state.meta.get("simulator"))
            state.meta["recordings"] = self._recordings.listing()
        write_state(path, state, None, self.compression)
        stat = os.stat(path)
        self._verified[(path, stat.st_size, stat.st_mtime_ns)] = True
        self.folder.record(path)
        log.info(
            "checkpoint committed: %s (step %d, t=%s ms, %.1f MB, %.2f s)",
            path,
            state.step,
            format_ms(state.time),
            stat.st_size / 1e6,
            time.perf_counter() - started,
        )
        self._apply_retention(path)

    # ------------------------------------------------------------ recordings

    def _check_recordings(self, recordings, monitors, comm, read_only):
        """Refuse ``recordings=True`` where nothing could be streamed, before
        anything is written; warn where there is nothing to record."""
        if not recordings or read_only:
            return
        if monitors or comm is not None:
            raise CheckpointError(
                "recordings=True works without monitors=True (segments replace saving them "
                "whole) and without comm (one process)",
                path=self.directory,
            )
        if not self.adapter.records:
            raise CheckpointError(
                f"{self.adapter.simulator}: recordings=True is not supported for a {type(self.obj).__name__}: "
                "its adapter has no recorders to stream (see the simulator's user guide); record with the "
                "simulator's own tools, or leave recordings=False",
                path=self.directory,
            )
        if not self._recorders():
            warnings.warn(
                f"recordings=True, but {self.adapter.simulator}'s {type(self.obj).__name__} has no "
                "recording device (a monitor, a recorder) to stream: nothing will be recorded",
                CheckpointWarning,
                stacklevel=3,
            )

    def _recording_log(self, recordings, monitors, time_ms, step):
        if not recordings or self.read_only:
            return None
        return RecordingLog(self.directory, self.suffix, time_ms, step, self.folder)

    def _take_recordings(self, state):
        """Take what the recorders recorded since the last checkpoint (emptying them)."""
        if self._recordings is None:
            return None
        self._recordings.check_folder([p for _, p, _ in self._files()])
        return self._recordings.take(self._recorders(), state.time, state.step)

    def _recorders(self):
        """The adapter's recorders, asked for once: a recorder keeps between
        takes what it needs to know (ANNarchy's: the step of the last one)."""
        if getattr(self, "_recorder_list", None) is None:
            self._recorder_list = self.adapter.recorders()
        return self._recorder_list

    def _apply_retention(self, newest):
        """Delete old checkpoints beyond ``keep``, only after ``newest`` is
        committed, and only those this folder's Checkpointers wrote."""
        ordinary = [p for _, p, permanent in self._files() if not permanent and p != newest and self.folder.wrote(p)]
        keep_others = self.retention.keep - 1
        # each manifest before its shards: a checkpoint is never half listed
        self.folder.delete(ordinary[: max(0, len(ordinary) - keep_others)])

    def wait(self):
        """Wait for a background write; raise its error if it failed."""
        future, self._future = self._future, None
        if future is not None:
            future.result()

    def _raise_background_error(self):
        if self._future is not None and self._future.done():
            self.wait()

    # --------------------------------------------------------------- signals

    def _install_signals(self, signals):
        if threading.current_thread() is not threading.main_thread():
            if signals:
                warnings.warn(
                    "signal handlers can only be installed from the main thread", CheckpointWarning, stacklevel=3
                )
            return
        for signum in signals or ():
            self._old_handlers[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame):
        if signum == signal.SIGINT:
            self._ctrl_c += 1
            if self._ctrl_c > 1:
                raise KeyboardInterrupt  # a second Ctrl-C, even during the final save: out now
        self._signal = signum
        log.warning(
            "%s received: checkpointing at the next maybe_save() (Ctrl-C again stops at once)",
            signal.Signals(signum).name,
        )

    def _refuse_if_read_only(self):
        if self.read_only:
            raise CheckpointError(
                "this Checkpointer is read-only: it lists and restores, never saves", path=self.directory
            )

    # --------------------------------------------------------------- closing

    def close(self):
        """Wait for a background write, restore signal handlers, unlock."""
        try:
            self.wait()
        finally:
            for signum, handler in self._old_handlers.items():
                signal.signal(signum, handler)
            self._old_handlers = {}
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            if self.folder is not None:
                self.folder.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            if self.folder is not None:
                self.folder.close()


def _snapshot(state, buffers):
    """A copy of the state that the simulation can no longer change.

    ``buffers`` keeps the copies between saves (the previous write has always
    finished when the next snapshot is taken), so a snapshot is a copy into
    memory that is already mapped: no allocation, no page faults.
    """
    snapshot = copy.copy(state)
    snapshot.meta = copy.deepcopy(state.meta)
    snapshot.populations = {n: _copy_group(("pop", n), g, buffers) for n, g in state.populations.items()}
    snapshot.projections = {n: _copy_group(("proj", n), g, buffers) for n, g in state.projections.items()}
    snapshot.rng = copy.deepcopy(state.rng)
    return snapshot


def _copy(key, array, buffers):
    array = np.asarray(array)
    buffer = buffers.get(key)
    if buffer is None or buffer.shape != array.shape or buffer.dtype != array.dtype:
        buffer = buffers[key] = np.empty_like(array, order="C")
    np.copyto(buffer, array)
    return buffer


def _copy_group(key, group, buffers):
    clone = copy.copy(group)
    clone.arrays = {var: _copy(key + (var,), array, buffers) for var, array in group.arrays.items()}
    clone.info = dict(group.info)
    if hasattr(group, "indptr"):
        clone.indptr = _copy(key + ("#indptr",), group.indptr, buffers)
        clone.indices = _copy(key + ("#indices",), group.indices, buffers)
    return clone
