"""Atomic file replacement: temporary name, fsync, rename, fsync the folder."""

import contextlib
import os
import secrets

from .errors import CheckpointError

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


@contextlib.contextmanager
def atomic_write(path):
    """Yield a temporary path; on success make it ``path`` durably.

    On any exception the temporary file is removed and ``path`` is left as it
    was.  I/O errors (disk full, file too large, permissions; h5py raises
    them as ``RuntimeError``) become a :class:`CheckpointError` naming the file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CheckpointError("the folder does not exist", path=path)
    tmp = temporary_name(path)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(folder, directory=True)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError):
            raise CheckpointError(f"could not write the file: {exc.strerror or exc}", path=path) from exc
        if isinstance(exc, RuntimeError) and "errno" in str(exc):  # h5py reports I/O errors so
            raise CheckpointError(f"could not write the file: {exc}", path=path) from exc
        raise
