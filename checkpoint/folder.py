"""A Checkpointer's folder: names, lock, listing, and deletion of only what it wrote.

The folder is shared with the user (results, notes, other runs' files), so
a name is never proof of authorship.  A Checkpointer deletes a file only
when the folder's ledger, ``.checkpoint.ledger.json``, lists it with the
inode, size and modification time it had when the Checkpointer committed
it; any other file, whatever its name, is left alone.  No symlink is
followed: not for the lock, not when listing, not when deleting.  A file
that cannot be deleted is a warning, never a stopped run.

Names::

    ckpt-<step, 12 digits>[-keep].<suffix>      a checkpoint (-keep: never deleted)
    ckpt-<...>.<suffix>.shards/                 its shards, in an MPI run
    .ckpt-<...>.<suffix>.tmp-<pid>-<hex>        a write in progress
    .checkpoint.lock                            held while a Checkpointer is open
    .checkpoint.ledger.json                     what this folder's Checkpointers wrote
"""

import contextlib
import fcntl
import json
import logging
import os
import re
import stat
import warnings

from . import shardnames
from ._atomic import TMP_MARK, atomic_write, remove_stale_temporaries
from .errors import CheckpointError, CheckpointWarning

__all__ = ["CheckpointFolder", "checkpoint_name", "parse_checkpoint_name"]

log = logging.getLogger("checkpoint")

LOCK_NAME = ".checkpoint.lock"
LEDGER_NAME = ".checkpoint.ledger.json"
SHARD_FOLDER = shardnames.FOLDER
_NAME = re.compile(r"^ckpt-([0-9]{12})(-keep)?\.(h5|hdf5|npz|mat|txt|txt\.gz|gz)\Z")
_MAX_LEDGER_BYTES = 16 << 20


def checkpoint_name(step, permanent, suffix):
    """The file name of the checkpoint at ``step``."""
    return f"ckpt-{step:012d}{'-keep' if permanent else ''}{suffix}"


def parse_checkpoint_name(name):
    """``(step, permanent)`` for a checkpoint's file name, or None."""
    match = _NAME.match(name)
    return None if match is None else (int(match.group(1)), bool(match.group(2)))


def _identity(st):
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _warn(message):
    log.warning(message)
    warnings.warn(message, CheckpointWarning, stacklevel=3)


class CheckpointFolder:
    """The folder of one Checkpointer: its lock, its listing, its ledger.

    Parameters
    ----------
    directory : str
        An absolute path.
    create : bool
        Create the folder when it is missing.
    read_only : bool
        List only: no lock, no ledger writes, no deletion.
    """

    def __init__(self, directory, *, create=True, read_only=False):
        self.directory = directory
        self.read_only = read_only
        self._lock_fd = None
        if not os.path.isdir(directory):
            if not create or read_only:
                raise CheckpointError("the checkpoint folder does not exist", path=directory)
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                raise CheckpointError(f"cannot create the checkpoint folder: {exc.strerror}", path=directory) from None
        if not read_only:
            if not os.access(directory, os.W_OK | os.X_OK):
                raise CheckpointError("the checkpoint folder is not writable", path=directory)
            self._lock()
        self._ledger, self._pending = self._read_ledger()

    # ------------------------------------------------------------------ lock

    def _lock(self):
        path = os.path.join(self.directory, LOCK_NAME)
        try:
            # O_NOFOLLOW: a lock that is a symlink would make us write where it points
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            why = "it is a symlink" if os.path.islink(path) else exc.strerror
            raise CheckpointError(f"cannot open the lock file {LOCK_NAME}: {why}", path=self.directory) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise CheckpointError(f"{LOCK_NAME} is not a regular file", path=self.directory)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 200, 0).decode("ascii", "replace").strip() or "another process"
                raise CheckpointError(
                    f"the folder is in use by another Checkpointer ({owner})", path=self.directory
                ) from None
            except OSError as exc:
                raise CheckpointError(
                    f"cannot lock the checkpoint folder: {exc.strerror}", path=self.directory
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd

    def close(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    # --------------------------------------------------------------- listing

    def path(self, name):
        return os.path.join(self.directory, name)

    def checkpoints(self):
        """``(step, path, permanent)`` of every checkpoint file, oldest first:
        regular files with a checkpoint's name (no symlinks, no folders)."""
        found = []
        for name in os.listdir(self.directory):
            parsed = parse_checkpoint_name(name)
            if parsed is not None and self._is_regular(name):
                found.append((parsed[0], self.path(name), parsed[1]))
        return sorted(found)

    def _is_regular(self, name):
        try:
            return stat.S_ISREG(os.lstat(self.path(name)).st_mode)
        except OSError:
            return False

    # ---------------------------------------------------------------- ledger

    def _read_ledger(self):
        path = self.path(LEDGER_NAME)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return {}, {}
        except OSError as exc:
            _warn(f"{path}: cannot read the ledger ({exc.strerror}): no old checkpoint will be deleted")
            return {}, {}
        with os.fdopen(fd, "rb") as f:
            text = f.read(_MAX_LEDGER_BYTES + 1)
        try:
            document = json.loads(text)
            files = document["files"]
            if not (
                isinstance(files, dict)
                and all(
                    isinstance(v, list) and len(v) == 3 and all(isinstance(x, int) for x in v) for v in files.values()
                )
            ):
                raise ValueError("bad entries")
            pending = document.get("pending", {})
            if not (
                isinstance(pending, dict)
                and all(
                    isinstance(v, list) and all(isinstance(t, str) and re.fullmatch(r"[0-9a-f]{1,64}", t) for t in v)
                    for v in pending.values()
                )
            ):
                raise ValueError("bad pending entries")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            _warn(f"{path}: the ledger is damaged ({exc}): no old checkpoint will be deleted")
            return {}, {}
        return dict(files), dict(pending)

    def _write_ledger(self):
        text = json.dumps({"version": 1, "files": self._ledger, "pending": self._pending}, indent=1, sort_keys=True)
        try:
            with atomic_write(self.path(LEDGER_NAME)) as tmp, open(tmp, "w", encoding="ascii") as f:
                f.write(text + "\n")
        except CheckpointError as exc:
            _warn(f"cannot update the ledger ({exc}): the checkpoints just written will not be deleted")

    def begin_sharded(self, path, token):
        """Note, before any shard is written, that a sharded save of ``path``
        whose shards are named ``<token>.rank-...`` is under way: the proof
        that lets the next Checkpointer remove the shards of a save that was
        killed before it committed (and nothing else)."""
        if self.read_only:
            return
        self._pending.setdefault(os.path.basename(path), []).append(token)
        self._write_ledger()

    def record(self, path):
        """Note that this Checkpointer committed ``path`` (and, for a sharded
        checkpoint, the shard files beside it)."""
        if self.read_only:
            return
        self._pending.pop(os.path.basename(path), None)
        names = [os.path.basename(path)]
        shards = path + SHARD_FOLDER
        if os.path.isdir(shards) and not os.path.islink(shards):
            names += [os.path.join(os.path.basename(shards), n) for n in os.listdir(shards) if shardnames.parse(n)]
        for name in names:
            with contextlib.suppress(OSError):
                st = os.lstat(self.path(name))
                if stat.S_ISREG(st.st_mode):
                    self._ledger[name] = _identity(st)
        self._write_ledger()

    def wrote(self, path):
        """Whether ``path`` is, provably, a file this folder's Checkpointers wrote."""
        name = os.path.relpath(path, self.directory)
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and self._ledger.get(name) == _identity(st)

    # -------------------------------------------------------------- deletion

    def delete(self, paths):
        """Delete checkpoints (and their shards) that the ledger proves ours,
        then write the ledger once; a file that cannot be deleted is a warning."""
        if self.read_only or not paths:
            return
        for path in paths:
            self._delete_one(path)
        self._write_ledger()

    def _delete_one(self, path):
        if not self.wrote(path):
            if os.path.lexists(path):
                log.info("left %s: not written by this folder's Checkpointer", path)
            return
        self._remove(path)
        shards = path + SHARD_FOLDER
        if os.path.isdir(shards) and not os.path.islink(shards):
            for name in os.listdir(shards):
                shard = os.path.join(shards, name)
                if self.wrote(shard):
                    self._remove(shard)
            with contextlib.suppress(OSError):
                os.rmdir(shards)  # only when empty: a user's file in it keeps it

    def _remove(self, path):
        name = os.path.relpath(path, self.directory)
        try:
            os.remove(path)
            log.info("removed old checkpoint %s", path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            _warn(f"{path}: could not delete an old checkpoint ({exc.strerror}); the run goes on")
            return
        self._ledger.pop(name, None)

    def clean_leftovers(self):
        """Remove what killed writes left: temporaries of checkpoint names
        whose writer is gone, and shards of sharded saves that never
        committed (only shard files the ledger does not list as committed
        are candidates, and only names a shard can have)."""
        if self.read_only:
            return
        for name in os.listdir(self.directory):
            if name.startswith(".ckpt-") and TMP_MARK in name:
                remove_stale_temporaries(self.path(name[1 : name.index(TMP_MARK)]))
            elif name.endswith(SHARD_FOLDER) and parse_checkpoint_name(name[: -len(SHARD_FOLDER)]):
                self._clean_uncommitted_shards(name)

    def _clean_uncommitted_shards(self, name):
        """Remove the shards of sharded saves of this name that the ledger
        says were begun (their token) and never committed.  Reading as a
        checkpoint is no proof (a user's own checkpoint may have a shard's
        name), nor is a missing manifest (committed shards whose manifest
        the user moved away are theirs to keep): only the ledger is."""
        folder = self.path(name)
        manifest = folder[: -len(SHARD_FOLDER)]
        tokens = self._pending.get(os.path.basename(manifest))
        if not tokens or os.path.islink(folder) or not os.path.isdir(folder) or os.path.lexists(manifest):
            return
        for shard in os.listdir(folder):
            full = os.path.join(folder, shard)
            committed = os.path.join(name, shard) in self._ledger
            if (
                shardnames.parse(shard)
                and shardnames.parse(shard)[0] in tokens
                and not committed
                and self._is_regular(os.path.join(name, shard))
            ):
                with contextlib.suppress(OSError):
                    os.remove(full)
                    log.info("removed a shard of an uncommitted checkpoint: %s", full)
        del self._pending[os.path.basename(manifest)]
        self._write_ledger()
        with contextlib.suppress(OSError):
            os.rmdir(folder)
