"""Files for writing large checkpoints.

:class:`WritebackFile` sends what is written to the disk as it goes, so
that the final fsync has little left to do and a save never holds more
than a few blocks of dirty page cache.  :class:`BackgroundWriter` moves
the writes onto a thread of their own: a ZIP writer computes each member's
CRC-32 and then writes the bytes, one after the other; both release the
GIL, so the CRC of the next block runs while the previous one is written.
"""

import ctypes
import errno
import os
import queue
import threading

from .checksums import BLOCK_BYTES

#: Written data is sent to the disk in ranges of this size, and dropped
#: from the page cache once it is there.
WRITEBACK_BYTES = 16 << 20
#: How many ranges may be on their way to the disk at once.
_IN_FLIGHT = 2
_WAIT_BEFORE, _WRITE, _WAIT_AFTER = 1, 2, 4  # sync_file_range(2) flags
#: Errors that mean "this file system or platform cannot do it", not "the write failed".
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ESPIPE}


def _libc_sync_file_range():
    """Linux's ``sync_file_range`` through ctypes (it releases the GIL), or None."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError, TypeError):  # not Linux
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_SYNC_FILE_RANGE = _libc_sync_file_range()


def write_array_data(stream, array):
    """Write a C-contiguous array's bytes in blocks of its own memory (no
    copies), so that writeback or a writer thread overlaps the next block."""
    data = memoryview(array.reshape(-1)).cast("B")
    for start in range(0, len(data), BLOCK_BYTES):
        stream.write(data[start : start + BLOCK_BYTES])


class WritebackFile:
    """A binary file opened for writing that writes itself back while it grows.

    Each :data:`WRITEBACK_BYTES` of the file starts its way to the disk as
    soon as it is written; two ranges later we wait for it and drop it from
    the page cache (``POSIX_FADV_DONTNEED``).  The disk works while the next
    bytes are produced, the fsync at the end only finishes the tail, and a
    multi-gigabyte save neither fills memory with dirty pages nor evicts
    the simulation's own cache.  Where ``sync_file_range`` is missing or
    refused it is a plain file.  Seeking back to rewrite a header is fine:
    the final :meth:`close` fsyncs everything.
    """

    def __init__(self, path, mode="wb"):
        self._file = open(path, mode, buffering=0)
        self._fd = self._file.fileno()
        self._sync = _SYNC_FILE_RANGE
        self._end = self._next = 0  # furthest byte written; start of the next range to send
        self._in_flight = []

    def write(self, data):
        view = memoryview(data).cast("B")
        written = 0
        while written < len(view):  # an unbuffered write may be partial
            written += self._file.write(view[written:])
        self._end = max(self._end, self._file.tell())
        while self._sync is not None and self._end >= self._next + WRITEBACK_BYTES:
            self._send(self._next)
            self._next += WRITEBACK_BYTES
        return written

    def _send(self, offset):
        if not self._call(offset, _WRITE):
            return
        self._in_flight.append(offset)
        if len(self._in_flight) > _IN_FLIGHT:
            done = self._in_flight.pop(0)
            if self._call(done, _WAIT_BEFORE | _WRITE | _WAIT_AFTER):
                os.posix_fadvise(self._fd, done, WRITEBACK_BYTES, os.POSIX_FADV_DONTNEED)

    def _call(self, offset, flags):
        """sync_file_range on one range; False (and plain writes from now on) where unsupported."""
        if self._sync(self._fd, offset, WRITEBACK_BYTES, flags) == 0:
            return True
        code = ctypes.get_errno()
        if code in _UNSUPPORTED:
            self._sync = None
            return False
        raise OSError(code, os.strerror(code))

    def tell(self):
        return self._file.tell()

    def seek(self, offset, whence=0):
        return self._file.seek(offset, whence)

    def seekable(self):
        return True

    def flush(self):
        pass  # unbuffered: nothing waits in Python

    def close(self):
        """fsync, then drop the file from the page cache; a later read comes from the disk."""
        if self._file.closed:
            return
        try:
            os.fsync(self._fd)
            if self._sync is not None:
                os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            self._file.close()

    def abandon(self):
        """Close without syncing (the caller removes the file)."""
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.close()
        else:
            self.abandon()


_DONE = object()


class BackgroundWriter:
    """Wrap a binary file opened for writing.

    ``write`` queues the data (which must not change until :meth:`drain`,
    ``seek``, ``flush`` or ``close`` returns) and returns at once; ``tell``
    counts what was queued.  An error of the writing thread is raised by the
    next call.
    """

    def __init__(self, file, depth=4):
        self._file = file
        self._position = file.tell()
        self._queue = queue.Queue(depth)
        self._error = None
        self._thread = threading.Thread(target=self._run, name="checkpoint-writer", daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            data = self._queue.get()
            try:
                if data is _DONE:
                    return
                if self._error is None:
                    self._file.write(data)
            except BaseException as exc:  # handed to the caller by _raise
                self._error = exc
            finally:
                self._queue.task_done()

    def _raise(self):
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def write(self, data):
        self._raise()
        size = memoryview(data).nbytes
        self._queue.put(data)
        self._position += size
        return size

    def drain(self):
        """Wait until everything queued is written."""
        self._queue.join()
        self._raise()

    def tell(self):
        return self._position

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        self.drain()
        self._position = self._file.seek(offset, whence)
        return self._position

    def flush(self):
        self.drain()
        self._file.flush()

    def close(self):
        """Write what is queued and stop the thread (the file stays open)."""
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
        self._raise()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
