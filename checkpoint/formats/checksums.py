"""Reads that verify array checksums (:mod:`checkpoint.hashing`) as the bytes arrive.

A load reads every byte once and hashes it once.  Raw data at a known file
offset (uncompressed npz members, contiguous HDF5 datasets) is read by a few
threads at once, each taking runs of consecutive blocks in turn and hashing
what has arrived in order, so that reading and hashing share the cores.
Other streams (deflated members, text) are read block by block and hashed on
a thread of its own while the next block is read.  The hash is the xxhash
package's C function called through ctypes, which releases the GIL.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from ..errors import CorruptCheckpointError
from ..hashing import StreamingChecksum, byte_view, checksum

#: Arrays are read, written and hashed in blocks of this size, so that one
#: block's hash (or writeback) overlaps the next block's read (or write).
BLOCK_BYTES = 8 << 20
#: Threads that read (and hash) raw data at once: more cores than this gain
#: little, since the hash of one array runs in order.
READ_THREADS = max(2, min(4, os.cpu_count() or 2))
#: Each reader thread reads this many consecutive blocks before the next
#: reader's turn (128 MB): long enough for the kernel's readahead to see a
#: sequential read.
RUN_BLOCKS = 16


def verify_array(array, entry, path, obj):
    """Raise :class:`CorruptCheckpointError` unless ``array`` is what ``entry``
    in the manifest describes, checksum included."""
    check_entry(array, entry, path, obj)
    if checksum(array) != entry["checksum"]:
        raise CorruptCheckpointError("checksum mismatch: the data is damaged", path=path, obj=obj)
    return array


def check_entry(array, entry, path, obj):
    if array.dtype.str != entry["dtype"] or list(array.shape) != entry["shape"]:
        raise CorruptCheckpointError(
            f"stored as {array.dtype.str} {list(array.shape)}, manifest says {entry['dtype']} {entry['shape']}",
            path=path,
            obj=obj,
        )


def _read_full(file, block):
    """Fill ``block`` (a uint8 array) from ``file`` at its position; EOFError if it ends first."""
    done = 0
    while done < block.nbytes:
        n = file.readinto(block[done:])
        if not n:
            raise EOFError("the data ends early")
        done += n


def _pread_full(fd, block, offset):
    """Fill ``block`` (a uint8 array) from ``fd`` at ``offset``; EOFError if the file ends first."""
    done = 0
    while done < block.nbytes:
        n = os.preadv(fd, [block[done:]], offset + done)
        if not n:
            raise EOFError("the data ends early")
        done += n


class ArrayRead:
    """One array's bytes on their way in, and their checksum.

    A format fills the array with :meth:`at` or :meth:`stream`, or with
    neither (then :meth:`VerifiedReads.finish` hashes the whole array).
    """

    def __init__(self, reads):
        self._reads = reads
        self.hasher, self.fed = StreamingChecksum(), 0
        self.digest = None  # a str, or a Future of one

    def at(self, file, offset, out):
        """Fill ``out`` with the raw bytes of ``file`` (opened for reading)
        from ``offset``: a few threads read runs of blocks in turn and hash
        the blocks in order as they arrive."""
        view = byte_view(out)
        starts = range(0, view.nbytes, BLOCK_BYTES)
        workers = min(self._reads.threads, len(starts))
        if workers < 2 or not hasattr(os, "preadv"):  # one block, or no preadv (Windows)
            file.seek(offset)
            for start in starts:
                block = view[start : start + BLOCK_BYTES]
                _read_full(file, block)
                self.hasher.update(block)
        else:
            self._pipelined(file.fileno(), offset, view, starts, workers)
        self.fed = view.nbytes
        self.digest = self.hasher.hexdigest()

    def _pipelined(self, fd, offset, view, starts, workers):
        # Each reader takes runs of RUN_BLOCKS consecutive blocks in turn, not
        # every n-th block: from a cold page cache, readers taking turns block
        # by block over the same stretch of file defeat the kernel's readahead
        # (0.5 GiB from this machine's disk: 0.28 s strided, 0.18 s in runs;
        # warm, 0.037 s against 0.043 s).  The checksum runs in order: whoever
        # has just read a block hashes every block from the first unhashed one
        # that has been read, unless the other reader is at it already.
        run_blocks = min(RUN_BLOCKS, -(-len(starts) // workers))  # a small array still split
        done = [False] * len(starts)
        frontier = [0]
        lock = threading.Lock()
        failed = threading.Event()

        def hash_ready(wait):
            while frontier[0] < len(starts) and done[frontier[0]]:
                if not lock.acquire(blocking=wait):
                    return  # the holder re-checks before it stops
                try:
                    while frontier[0] < len(starts) and done[frontier[0]]:
                        start = starts[frontier[0]]
                        self.hasher.update(view[start : start + BLOCK_BYTES])
                        frontier[0] += 1
                finally:
                    lock.release()

        def work(first_run):
            try:
                for run in range(first_run * run_blocks, len(starts), workers * run_blocks):
                    for k in range(run, min(run + run_blocks, len(starts))):
                        if failed.is_set():
                            return
                        _pread_full(fd, view[starts[k] : starts[k] + BLOCK_BYTES], offset + starts[k])
                        done[k] = True
                        hash_ready(wait=False)
            except BaseException:
                failed.set()
                raise

        futures = []
        try:  # a Ctrl-C between two submissions stops the readers already started too
            for first in range(workers):
                futures.append(self._reads.pool.submit(work, first))
            for future in futures:
                future.result()
        except BaseException:  # a reader's error, or a Ctrl-C here: the others stop too
            failed.set()
            for future in futures:
                future.exception()
            raise
        hash_ready(wait=True)

    def stream(self, stream, out):
        """Fill ``out`` from a binary ``stream`` at its position, block by
        block; each block is hashed on the hashing thread while the next is
        read.  Raises ``EOFError`` if the stream ends early."""
        view = byte_view(out)
        pos = 0
        while pos < view.nbytes:
            n = stream.readinto(view[pos : pos + BLOCK_BYTES])
            if not n:
                raise EOFError("the data ends early")
            self.feed(view[pos : pos + n])
            pos += n

    def feed(self, block):
        """Queue ``block`` (the next bytes of the array, kept alive until hashed)."""
        block = byte_view(block)
        self.fed += block.nbytes
        self._reads.hashing.submit(self.hasher.update, block)


class VerifiedReads:
    """Verify the checksums of the arrays of one file as they are read.

    For each array: :meth:`start` an :class:`ArrayRead`, fill the array
    through it (or not), :meth:`finish` it with the array.  :meth:`wait`
    raises :class:`CorruptCheckpointError` for the first array, in reading
    order, whose checksum does not match; nothing read may be used before it
    returns.  A context manager: leaving it stops the threads.
    """

    def __init__(self, threads=None):
        self.threads = threads or READ_THREADS
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="checkpoint-read")
        self.hashing = ThreadPoolExecutor(1, thread_name_prefix="checkpoint-verify")
        self._pending = []

    def start(self):
        return ArrayRead(self)

    def finish(self, read, array, entry, path, obj):
        check_entry(array, entry, path, obj)
        if read.digest is None:
            if read.fed == 0:
                read.feed(array)
            elif read.fed != array.nbytes:
                raise AssertionError(f"{obj}: {read.fed} of {array.nbytes} bytes were handed over for hashing")
            read.digest = self.hashing.submit(read.hasher.hexdigest)
        self._pending.append((read.digest, entry, path, obj))
        return array

    def wait(self):
        for digest, entry, path, obj in self._pending:
            if (digest if isinstance(digest, str) else digest.result()) != entry["checksum"]:
                raise CorruptCheckpointError("checksum mismatch: the data is damaged", path=path, obj=obj)
        self._pending.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.hashing.shutdown(wait=True, cancel_futures=True)
        self.pool.shutdown(wait=True, cancel_futures=True)
