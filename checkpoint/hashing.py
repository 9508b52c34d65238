"""XXH3-64 hashing: array checksums, text digests, whole-file digests.

The bottom layer: every other layer (formats, the restore plan, adapters
that cache by connectivity) may use it, and it uses nothing of this
package but its errors.  docs/format.rst says what is hashed; anyone can
recompute these digests, so they prove data undamaged, not harmless.
"""

import ctypes

import numpy as np
import xxhash

from .errors import CorruptCheckpointError

CHECKSUM_PREFIX = "xxh3-64:"
_FILE_BLOCK = 16 << 20


def _native_xxh3():
    """ctypes bindings of the xxhash package's C functions, or None.

    Called through ctypes they run without the GIL, so hashing one block can
    overlap reading the next; the package's Python functions hold the GIL.
    """
    try:
        from xxhash import _xxhash

        lib = ctypes.CDLL(_xxhash.__file__)
        functions = (
            lib.XXH3_64bits,
            lib.XXH3_createState,
            lib.XXH3_freeState,
            lib.XXH3_64bits_reset,
            lib.XXH3_64bits_update,
            lib.XXH3_64bits_digest,
        )
    except (ImportError, AttributeError, OSError):
        return None
    one_shot, create, free, reset, update, digest = functions
    one_shot.restype, one_shot.argtypes = ctypes.c_uint64, [ctypes.c_void_p, ctypes.c_size_t]
    create.restype, create.argtypes = ctypes.c_void_p, []
    free.argtypes = reset.argtypes = digest.argtypes = [ctypes.c_void_p]
    update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    digest.restype = ctypes.c_uint64
    return lib


_NATIVE = _native_xxh3()
_NATIVE_MIN_BYTES = 1 << 16  # below this the ctypes call costs more than it saves


def byte_view(array):
    return np.asarray(array).reshape(-1).view(np.uint8)


def checksum(array):
    """XXH3-64 of the array's C-order little-endian bytes, as ``xxh3-64:<hex>``."""
    data = byte_view(array)
    if _NATIVE is not None and data.nbytes >= _NATIVE_MIN_BYTES and data.flags.c_contiguous:
        return f"{CHECKSUM_PREFIX}{_NATIVE.XXH3_64bits(data.ctypes.data, data.nbytes):016x}"
    return CHECKSUM_PREFIX + xxhash.xxh3_64_hexdigest(data)


def digest_text(text):
    """XXH3-64 of a UTF-8 text, as 16 hex digits."""
    return xxhash.xxh3_64_hexdigest(text.encode("utf-8"))


class StreamingChecksum:
    """``checksum`` of bytes handed over block by block (the same digest)."""

    def __init__(self):
        self._lib = _NATIVE  # kept: the state must be freed by the library that made it
        self._state = self._lib.XXH3_createState() if self._lib is not None else None
        if self._state is None:
            self._hasher = xxhash.xxh3_64()
        else:
            self._lib.XXH3_64bits_reset(self._state)

    def update(self, data):
        """Add the next bytes, a uint8 array."""
        if self._state is None:
            self._hasher.update(data)
        else:
            self._lib.XXH3_64bits_update(self._state, data.ctypes.data, data.nbytes)

    def hexdigest(self):
        if self._state is None:
            return CHECKSUM_PREFIX + self._hasher.hexdigest()
        try:
            return f"{CHECKSUM_PREFIX}{self._lib.XXH3_64bits_digest(self._state):016x}"
        finally:
            self.__del__()

    def __del__(self):
        if getattr(self, "_state", None) is not None:
            self._lib.XXH3_freeState(self._state)
            self._state = None


def digest_file(f, start, end, skip=(), prefix=b""):
    """XXH3-64 (hex) of ``prefix`` then the bytes of the open file ``f``
    from ``start`` to ``end``, leaving out the ``(offset, length)`` ranges
    in ``skip`` (ascending, inside the span).  Raises
    :class:`CorruptCheckpointError` if the file ends first."""
    h = xxhash.xxh3_64(prefix)
    position = start
    for offset, length in list(skip) + [(end, 0)]:
        f.seek(position)
        remaining = offset - position
        while remaining > 0:
            block = f.read(min(_FILE_BLOCK, remaining))
            if not block:
                raise CorruptCheckpointError("file ends early: truncated")
            h.update(block)
            remaining -= len(block)
        position = offset + length
    return h.hexdigest()
