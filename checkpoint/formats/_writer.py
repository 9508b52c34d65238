"""A file whose writes happen on a thread of their own.

A ZIP writer computes each member's CRC-32 and then writes the bytes, one
after the other; both release the GIL.  Handing the writes to a thread lets
the CRC of the next block run while the previous one is written.
"""

import queue
import threading

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
