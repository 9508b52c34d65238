"""The writer's side: which segments a run has written, and which are committed.

A Checkpointer with ``recordings=True`` owns one :class:`RecordingLog`.  At
each checkpoint it takes what every recorder recorded (emptying it),
writes it as the next segment, and puts :meth:`RecordingLog.listing` in
the checkpoint's meta: the run and every segment written so far, each
``[name, size, digest]``, as a manifest binds its shards.  A checkpoint
thereby commits the segments written before it; on a resume from it the
segments it does not list (written by a save that was killed before its
checkpoint) are removed, and the run goes on from the last one it lists.
"""

import contextlib
import logging
import os
import secrets
import stat
import warnings

import numpy as np

from .._atomic import TMP_MARK, remove_stale_temporaries
from ..errors import CheckpointError, CheckpointWarning, CorruptCheckpointError
from ..formats import read_state
from ..formats.schema import is_number, require
from .segments import CONTENT, Segment, check_entry, parse_segment_name, remove_segment, valid_run, write_segment

__all__ = ["RecordingLog", "listing_of"]

log = logging.getLogger("checkpoint")


def listing_of(meta, path):
    """``(run, t_start, entries)`` of a checkpoint's meta, checked; None
    when the checkpoint commits no recordings."""
    listing = meta.get(CONTENT)
    if listing is None:
        return None
    require(isinstance(listing, dict) and valid_run(listing.get("run")), "meta 'recordings' has no run", path)
    require(is_number(listing.get("t_start")), "meta 'recordings.t_start' is not a time", path)
    entries = listing.get("segments")
    require(isinstance(entries, list), "meta 'recordings.segments' is not a list", path)
    return listing["run"], listing["t_start"], [check_entry(e, path) for e in entries]


class RecordingLog:
    """The segments of one run in one folder (see the module docstring)."""

    def __init__(self, directory, suffix, time_ms, step, folder=None):
        # folder: the Checkpointer's CheckpointFolder, whose ledger proves which segments it wrote
        self.directory, self.suffix, self.folder = directory, suffix, folder
        self._fresh(time_ms, step)

    def _fresh(self, time_ms, step):
        self.run = secrets.token_hex(8)
        self.t_start = float(time_ms)
        self.entries = []
        self._last = (float(time_ms), int(step))
        self.resumed = False
        self._first = True  # the next segment is the run's first: what came before is its warm-up

    # ------------------------------------------------------------ resuming

    def resume(self, checkpoint_meta, path, recorders, time_ms, step):
        """Go on from the checkpoint at ``path``: its run and its segments;
        remove this run's segments it does not list, and drop what the
        recorders hold (it is from before the restore)."""
        for recorder in recorders:
            getattr(recorder, "drop", recorder.take)()
        listing = listing_of(checkpoint_meta, path)
        if listing is None:  # written without recordings: they start here
            self._fresh(time_ms, step)
        else:
            self.run, self.t_start, self.entries = listing[0], float(listing[1]), list(listing[2])
            self._last = (float(time_ms), int(step))
            self._first = not self.entries
        self.resumed = True
        self._remove_uncommitted(self.run, {e[0] for e in self.entries})

    def check_committed(self, path):
        """Raise :class:`CorruptCheckpointError` unless the checkpoint at
        ``path`` lists its segments soundly and each is in the folder with
        the size it lists (a resume from it would lose recordings)."""
        state = read_state(path, lazy=True)
        state.close()
        listing = listing_of(state.meta, path)
        if listing is None:
            return
        for number, (name, size, _) in enumerate(listing[2]):
            # named as the reader requires (the run's segment number k at k): one it refuses
            # would have this run go on with recordings that can never be read back
            require(
                parse_segment_name(name) == (listing[0], number),
                f"the committed segment {name} is not number {number} of run {listing[0]}",
                path,
            )
            try:
                st = os.lstat(os.path.join(self.directory, name))
            except OSError:
                st = None
            # a symlink is no segment we wrote, and every reader refuses it: refuse it now,
            # not after a run that goes on and can never be read back
            require(
                st is not None and stat.S_ISREG(st.st_mode) and st.st_size == size,
                f"the committed segment {name} is missing, not a regular file or has another size",
                path,
            )
        # the listing must end at the checkpoint's time: one cut short (digest recomputed) would
        # have this resume delete the segments after it and go on from a gap (one read: the last)
        end = listing[1]
        if listing[2]:
            name, _, digest = listing[2][-1]
            last = os.path.join(self.directory, name)
            segment = read_state(last, lazy=True)
            segment.close()
            meta = segment.meta.get(CONTENT)
            require(
                segment.digest == digest
                and isinstance(meta, dict)
                and meta.get("run") == listing[0]
                and is_number(meta.get("t_end")),
                "not the segment its checkpoint lists",
                last,
            )
            end = meta["t_end"]
        require(
            end == state.meta.get("time"),
            f"its recordings end at {end!r} ms, the checkpoint is at {state.meta.get('time')!r} ms",
            path,
        )

    def _remove_uncommitted(self, run, committed):
        for name in os.listdir(self.directory):
            if name.startswith(".rec-") and TMP_MARK in name:
                remove_stale_temporaries(os.path.join(self.directory, name[1 : name.index(TMP_MARK)]))
                continue
            parsed = parse_segment_name(name)
            if parsed is None or parsed[0] != run or name in committed:
                continue
            path = os.path.join(self.directory, name)
            # a name and a content are no proof (safety.rst): only the ledger is, and no symlink
            if self.folder is None or not self.folder.wrote(path):
                log.info("left %s: no ledger entry proves this folder's Checkpointer wrote it", path)
                continue
            if _segment_run(path) == run:  # ours, not a user's file with a segment's name
                remove_segment(path)
                log.info("removed a segment that no checkpoint committed: %s", path)

    def check_folder(self, checkpoints):
        """Before the first save of a run that did not resume: refuse a
        folder that holds another run's committed recordings (listed by one
        of ``checkpoints``); remove the uncommitted tail of a run killed
        before its first checkpoint."""
        if self.resumed:
            return
        committed = {}
        for path in checkpoints:
            with contextlib.suppress(CheckpointError):
                state = read_state(path, lazy=True)
                state.close()
                listing = listing_of(state.meta, path)
                if listing is not None and listing[2]:
                    committed[listing[0]] = path
        runs = {parsed[0] for parsed in map(parse_segment_name, os.listdir(self.directory)) if parsed}
        for run in runs - {self.run}:
            if run in committed:
                raise CheckpointError(
                    "the folder holds the recordings of another run (committed by "
                    f"{os.path.basename(committed[run])}): "
                    "resume it with restore_latest(), or record into a new folder",
                    path=self.directory,
                )
            self._remove_uncommitted(run, set())
        self.resumed = True  # checked once

    # -------------------------------------------------------------- saving

    def take(self, recorders, time_ms, step):
        """What every recorder recorded since the last take, as the next
        segment (None when nothing was recorded and no time passed)."""
        data, kinds, units, indices = {}, {}, {}, {}
        for recorder in recorders:
            data[recorder.name] = recorder.take()
            kinds[recorder.name] = recorder.kind
            units[recorder.name] = recorder.units()
            indices[recorder.name] = recorder.index() if recorder.kind == "samples" else None
        t_start = self._fit(data, kinds, float(time_ms))
        segment = Segment(
            self.run, len(self.entries), t_start, float(time_ms), self._last[1], int(step), data, kinds, units, indices
        )
        self._last = (float(time_ms), int(step))
        if segment.empty():
            return None
        if self._first:  # from now on every checkpoint lists the run from where its records begin
            self.t_start, self._first = t_start, False
        return segment

    def _fit(self, data, kinds, t_end):
        """The interval's start, with ``data`` cut to fit in it: a segment
        whose times are outside its interval is one no reader accepts.
        The run's first segment starts at its first record (what was
        recorded before the Checkpointer started is the run's too); a
        record after ``t_end`` or before the last checkpoint (the clock
        was moved back by a ``load()`` since it was recorded, or is not a
        number) is from no course this run took: left out, and said; so
        are a sampler's records before its times go back.  (Events from
        before such a load() at times inside the interval cannot be told
        from this run's: restore_latest() empties the recorders; after a
        plain load() the script must.)"""
        t_start = self._last[0]
        slack = 1e-6 + 1e-9 * max(abs(t_start), abs(t_end))
        if self._first:
            # only the times that stay (a stale record after t_end must not move the start)
            times = [
                t[np.isfinite(t) & (t <= t_end + slack)]
                for t in (np.asarray(a.get("t", ()), np.float64) for a in data.values())
            ]
            t_start = min([t_start] + [float(t.min()) for t in times if len(t)])
        for name, arrays in data.items():
            t = np.asarray(arrays.get("t", ()), np.float64)
            with np.errstate(invalid="ignore"):
                outside = ~((t >= t_start - slack) & (t <= t_end + slack))  # NaN too
            if kinds[name] == "samples":  # a sampler samples in time order: a step back is a clock moved back
                back = np.flatnonzero(np.diff(t) < -slack)
                if len(back):
                    outside[: back[-1] + 1] = True
            if outside.any():
                warnings.warn(
                    f"{self.directory}: recorder {name!r}: {int(outside.sum())} of its {len(t)} records "
                    f"are at times outside [{t_start}, {t_end}] ms, the interval since the last "
                    "checkpoint (recorded before a load() moved the clock back?): left out of "
                    "the recordings",
                    CheckpointWarning,
                    stacklevel=4,
                )
                data[name] = {var: np.asarray(a)[~outside] for var, a in arrays.items()}
        return t_start

    def write(self, segment, simulator):
        """Write ``segment``; from now on every checkpoint lists it."""
        if segment.number != len(self.entries):
            raise CorruptCheckpointError("segments written out of order", path=self.directory)
        self.entries.append(write_segment(self.directory, self.suffix, segment, simulator))
        if self.folder is not None:  # the ledger's proof that we wrote it, for a later removal
            self.folder.record(os.path.join(self.directory, self.entries[-1][0]))

    def listing(self):
        """What a checkpoint's meta says of the recordings it commits."""
        return {"run": self.run, "t_start": self.t_start, "segments": [list(e) for e in self.entries]}


def _segment_run(path):
    try:
        state = read_state(path, lazy=True)
        state.close()
    except (CheckpointError, OSError):
        return None
    meta = state.meta.get(CONTENT)
    return meta.get("run") if state.meta.get("content") == CONTENT and isinstance(meta, dict) else None
