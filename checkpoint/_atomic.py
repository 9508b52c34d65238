"""Atomic file replacement: temporary name, fsync, rename, fsync the folder."""

import contextlib
import logging
import os
import re
import secrets
import stat
import warnings

from .errors import CheckpointError, CheckpointWarning

log = logging.getLogger("checkpoint")

#: Temporary files are named ``.<final name>.tmp-<pid>-<random>`` in the
#: destination folder, so a crash leaves only files this pattern recognises.
TMP_MARK = ".tmp-"


def temporary_name(path):
    folder, name = os.path.split(os.fspath(path))
    return os.path.join(folder, f".{name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def fsync_path(path, directory=False):
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def stale_temporaries(path):
    """The temporaries of ``path`` (files or staging folders, named as
    :func:`temporary_name` names them) whose writer's process is gone: a
    writer that was killed.  Never a live writer's, this process's included."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    pattern = re.compile(re.escape(f".{name}{TMP_MARK}") + r"([0-9]+)-[0-9a-f]{8}")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for candidate in names:
        match = pattern.fullmatch(candidate)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            found.append(os.path.join(folder, candidate))
    return found


def remove_stale_temporaries(path):
    """Remove temporaries of ``path`` left by a writer that was killed (its
    process is gone): regular files only, never symlinks, never a live
    writer's.  Returns the names removed."""
    removed = []
    for full in stale_temporaries(path):
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(full).st_mode):
                os.remove(full)
                removed.append(os.path.basename(full))
                log.info("removed %s, left by a writer that was killed", full)
    return removed


@contextlib.contextmanager
def atomic_write(path, sync_folder=True):
    """Yield a temporary path; on success make it ``path`` durably.

    ``sync_folder=False`` leaves the folder's fsync to the caller's next
    atomic write into the same folder, which makes both renames durable
    (a recordings segment and the checkpoint that commits it).

    On any exception the temporary file is removed and ``path`` is left as it
    was.  I/O errors (disk full, file too large, permissions; h5py raises
    them as ``RuntimeError``) become a :class:`CheckpointError` naming the file.
    Temporaries of ``path`` left by a killed writer are removed first.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CheckpointError("the folder does not exist", path=path)
    remove_stale_temporaries(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError):
            raise CheckpointError(f"could not write the file: {exc.strerror or exc}", path=path) from exc
        if isinstance(exc, RuntimeError) and "errno" in str(exc):  # h5py reports I/O errors so
            raise CheckpointError(f"could not write the file: {exc}", path=path) from exc
        raise
    if not sync_folder:
        return
    try:
        fsync_path(folder, directory=True)
    except OSError as exc:
        # the rename happened and the old file is gone: the save succeeded,
        # and raising would say "failed" of a file already replaced; what
        # is not guaranteed is its durability, which the warning says
        message = (
            f"{path}: the new file is in place, but syncing its folder failed "
            f"({exc.strerror or exc}): it may revert to the previous version if the machine "
            "crashes before the folder reaches the disk"
        )
        log.warning(message)
        warnings.warn(message, CheckpointWarning, stacklevel=3)
