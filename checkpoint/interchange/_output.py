"""Where an export goes: one file, or a folder replaced whole or not at all.

A folder export is written into a temporary sibling folder, each file
atomically (:func:`checkpoint._atomic.atomic_write`), and lists what it
wrote in :data:`MARK`.  Only then does it take the destination's place: a
rename onto a missing or empty folder, or an exchange with a previous
export (``renameat2(RENAME_EXCHANGE)``, atomic, where the kernel has it;
else two renames).  The previous export's files, and only they, are then
deleted.  A folder holding anything an export did not write is never
replaced.
"""

import contextlib
import ctypes
import errno
import json
import logging
import os
import stat

from .._atomic import atomic_write, fsync_path, stale_temporaries, temporary_name
from .._version import __version__
from ..errors import CheckpointError

__all__ = ["DestinationError", "check_destination", "write_folder", "MARK"]

log = logging.getLogger("checkpoint")

#: The list of what an export wrote into its folder (relative paths).
MARK = ".checkpoint-export.json"
#: A list of files is small; a larger "list" is not one of ours.
MARK_LIMIT = 1 << 20


class DestinationError(CheckpointError, FileExistsError):
    """The destination exists and an export may not replace it."""


def check_destination(path, overwrite, folder):
    """Raise unless an export may write ``path`` (a folder when ``folder``):
    it does not exist, is an empty folder, or ``overwrite`` and it is a file
    (one-file exports) or a previous export holding nothing else."""
    path = os.fspath(path)
    if os.path.islink(path):
        raise DestinationError("is a symbolic link: an export follows none", path=path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CheckpointError("its folder does not exist", path=path)
    if not os.path.lexists(path):
        return
    if folder != os.path.isdir(path):
        raise DestinationError("exists and is not a " + ("folder" if folder else "file"), path=path)
    if not folder:
        if os.path.getsize(path) and not overwrite:
            raise DestinationError(
                "exists and is not empty: pass overwrite=True (--overwrite) to replace it", path=path
            )
        return
    if not os.listdir(path):
        return
    if not overwrite:
        raise DestinationError(
            "exists and is not empty: pass overwrite=True (--overwrite) to replace a previous export", path=path
        )
    foreign = sorted(set(_tree(path)) - set(_written(path)) - {MARK})
    if foreign:
        raise DestinationError(
            f"holds files no export wrote ({', '.join(foreign[:5])}"
            f"{', ...' if len(foreign) > 5 else ''}): an export replaces a previous export "
            "whole, and never touches files it did not write",
            path=path,
        )


def _tree(folder):
    """Every entry under ``folder`` but its folders, relative, links not followed."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            yield os.path.relpath(os.path.join(root, name), folder)


def _written(folder):
    """The regular files :data:`MARK` lists, each a plain relative path; an
    empty list when there is no mark (or it is not one an export wrote)."""
    mark = os.path.join(folder, MARK)
    try:
        info = os.lstat(mark)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MARK_LIMIT:
            return []
        with open(mark, encoding="utf-8") as f:
            files = json.load(f).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    if not isinstance(files, list):
        return []
    return [name for name in files if isinstance(name, str) and _plain(name) and _is_file(folder, name)]


def _is_file(folder, name):
    try:
        return stat.S_ISREG(os.lstat(os.path.join(folder, name)).st_mode)
    except OSError:
        return False


def _plain(name):
    """A relative path inside its folder, through real folders only."""
    parts = name.split("/")
    return not os.path.isabs(name) and all(p not in ("", ".", "..") for p in parts)


def write_folder(destination, to, write_into):
    """Make ``destination`` a folder holding what ``write_into(folder)``
    writes (it returns the relative paths), replacing whole a previous
    export there (checked by :func:`check_destination` first)."""
    destination = os.path.abspath(os.fspath(destination))
    _remove_stale_staging(destination)
    staging = temporary_name(destination)
    try:
        os.mkdir(staging)
    except OSError as exc:
        raise CheckpointError(f"could not write the export: {exc.strerror or exc}", path=destination) from exc
    try:
        files = sorted(write_into(staging))
        with atomic_write(os.path.join(staging, MARK)) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump({"written_by": f"neuro-checkpoint {__version__}", "format": to, "files": files}, f, indent=1)
        _fsync_folders(staging)
        _take_place(staging, destination)
    except BaseException as exc:
        _remove_export(staging, everything=True)
        if isinstance(exc, OSError):
            raise CheckpointError(f"could not write the export: {exc.strerror or exc}", path=destination) from exc
        raise
    try:
        fsync_path(os.path.dirname(destination), directory=True)
    except OSError as exc:
        raise CheckpointError(
            f"the export is in place, but syncing its folder failed ({exc.strerror or exc})", path=destination
        ) from exc


def _remove_stale_staging(destination):
    """Remove the staging folders (or a previous export set aside) that an
    export of ``destination`` killed midway left beside it: hidden, named by
    ``temporary_name``, their process gone.  Only their regular files and
    the folders left empty go (a link or a stranger's file stays, logged)."""
    for full in stale_temporaries(destination):
        if stat.S_ISDIR(os.lstat(full).st_mode):
            _remove_export(full, everything=True)
            log.info("removed %s, left by an export that was killed", full)


def _fsync_folders(top):
    for root, _, _ in os.walk(top, topdown=False):
        fsync_path(root, directory=True)


def _take_place(staging, destination):
    """Rename ``staging`` to ``destination``; a previous export there is
    exchanged with it, then deleted (only its own files)."""
    if not os.path.lexists(destination) or not os.listdir(destination):
        try:
            os.rename(staging, destination)  # onto an empty folder too
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise CheckpointError(f"could not put the export in place: {exc.strerror}", path=destination) from exc
        check_destination(destination, True, True)  # something appeared meanwhile: is it ours?
    if not _exchange(staging, destination):
        aside = temporary_name(destination)
        os.rename(destination, aside)
        try:
            os.rename(staging, destination)
        except OSError:
            os.rename(aside, destination)
            raise
        staging = aside
    # ``staging`` now holds the previous export
    _remove_export(staging)


def _exchange(a, b):
    """Swap two paths atomically (Linux's renameat2); False where the
    system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # a file system without it
        return False
    raise CheckpointError(f"could not put the export in place: {os.strerror(code)}", path=b)


def _remove_export(folder, everything=False):
    """Delete what an export wrote in ``folder`` (its mark's files and the
    mark; ``everything``: a staging folder of this process, all of it),
    then its folders that are left empty.  Anything else stays, said."""
    names = list(_tree(folder)) if everything else _written(folder) + [MARK]
    for name in names:
        with contextlib.suppress(OSError):
            full = os.path.join(folder, name)
            if stat.S_ISREG(os.lstat(full).st_mode):
                os.remove(full)
    for root, _, _ in os.walk(folder, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(root)
    if os.path.lexists(folder):
        log.warning("%s: left in place, it holds files an export did not write", folder)
