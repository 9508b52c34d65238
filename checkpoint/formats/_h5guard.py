"""Prove an HDF5 file's metadata intact before the HDF5 library parses it.

The HDF5 library can loop forever or crash on one flipped bit in its
metadata.  We therefore write the file with a userblock (bytes HDF5 itself
skips) that records an XXH3-64 digest of every byte after the userblock
*except* the raw data of contiguous datasets, which the per-array checksums
already cover.  Verifying costs a read of the metadata only.

Userblock text (ASCII, padded with spaces to the userblock size)::

    checkpoint-hdf5 1
    userblock=<bytes>
    xxh3-64=<16 hex digits>
    ranges=<offset>:<length>,<offset>:<length>,...

The digest covers the ``ranges=`` line (UTF-8, with its newline) followed by
the file's bytes from the end of the userblock, skipping the listed ranges.
"""

import os
import re

from ..errors import CorruptCheckpointError
from ..hashing import digest_file

MAGIC = b"checkpoint-hdf5 1\n"
_FIELDS = re.compile(rb"userblock=(\d+)\nxxh3-64=([0-9a-f]{16})\n(ranges=[0-9:,]*\n)")


def userblock_size(n_datasets):
    """A power of two >= 512 with room for every range."""
    need, size = 128 + 44 * n_datasets, 512
    while size < need:
        size *= 2
    return size


def stamp(path, userblock, ranges):
    """Write the userblock of a freshly written file."""
    ranges = sorted(ranges)
    ranges_line = ("ranges=" + ",".join(f"{o}:{n}" for o, n in ranges) + "\n").encode()
    with open(path, "r+b") as f:
        digest = digest_file(f, userblock, os.path.getsize(path), ranges, prefix=ranges_line)
        text = MAGIC + f"userblock={userblock}\nxxh3-64={digest}\n".encode() + ranges_line
        if len(text) > userblock:
            raise ValueError("userblock too small")  # userblock_size() prevents this
        f.seek(0)
        f.write(text.ljust(userblock, b" "))


def verify(f, path):
    """Check the digest of the open file ``f``; return the set of raw-data
    ranges it excluded.

    Raises :class:`CorruptCheckpointError` when the file is not ours, or
    damaged anywhere outside contiguous raw data.
    """
    size = os.fstat(f.fileno()).st_size
    f.seek(0)
    head = f.read(512)
    if not head.startswith(MAGIC):
        raise CorruptCheckpointError("not a checkpoint HDF5 file (no checkpoint userblock)", path=path)
    declared = re.match(rb"userblock=(\d{3,10})\n", head[len(MAGIC) :])
    userblock = int(declared.group(1)) if declared else 0
    if userblock < 512 or userblock > size or userblock & (userblock - 1):
        raise CorruptCheckpointError("damaged userblock", path=path)
    f.seek(0)
    match = _FIELDS.match(f.read(userblock), len(MAGIC))
    if match is None or int(match.group(1)) != userblock:
        raise CorruptCheckpointError("damaged userblock", path=path)
    ranges = _parse_ranges(match.group(3), userblock, size, path)
    try:
        digest = digest_file(f, userblock, size, ranges, prefix=match.group(3))
    except CorruptCheckpointError:
        raise CorruptCheckpointError("file ends early: truncated", path=path) from None
    if digest != match.group(2).decode():
        raise CorruptCheckpointError("HDF5 metadata digest mismatch: the file is damaged", path=path)
    return set(ranges)


def _parse_ranges(line, userblock, size, path):
    body = line[len(b"ranges=") : -1]
    ranges = [tuple(int(x) for x in part.split(b":")) for part in body.split(b",") if part]
    pos = userblock
    for offset, length in ranges:
        if offset < pos or offset + length > size:
            raise CorruptCheckpointError("damaged userblock (bad ranges)", path=path)
        pos = offset + length
    return ranges
