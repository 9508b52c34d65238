"""MATLAB ``.mat`` (level 5) through ``scipy.io``; loadable in MATLAB and back.

Layout: one top-level struct per object (``pop_<name>``, ``proj_<name>``,
``rng_<name>``) whose fields are its arrays, plus the char arrays
``checkpoint_manifest`` (JSON: ``jsondecode`` in MATLAB) and
``checkpoint_manifest_xxh3``.  Names are made into legal identifiers; the
manifest maps them back.

scipy's MAT parser can crash the process on a damaged or forged file, so the
116-byte text header carries an XXH3-64 digest and the length of everything
after the 128-byte header, the whole file is verified, and its element
structure is walked (:mod:`._matguard`) before scipy reads it.
"""

import os
import re

import numpy as np
import scipy.io

from ..errors import CorruptCheckpointError, FormatLimitError
from ..hashing import digest_file
from . import _matguard
from .base import Format
from .manifest import ALLOWED_DTYPES, IdentifierKeys, unflatten

HEADER_TEXT = 116
HEADER = 128
# Level-5 elements carry 32-bit sizes: one top-level variable must stay
# under 2 GiB, tags and padding included.
MAX_VARIABLE_BYTES = (1 << 31) - (1 << 20)
_DIGEST = re.compile(rb"checkpoint xxh3-64=([0-9a-f]{16}) length=(\d+)")


def _stamp_header(path):
    """Write the digest of the body into the header's descriptive text."""
    length = os.path.getsize(path) - HEADER
    with open(path, "r+b") as f:
        digest = digest_file(f, HEADER, HEADER + length)
        text = f"MATLAB 5.0 MAT-file, checkpoint xxh3-64={digest} length={length}".encode()
        f.seek(0)
        f.write(text.ljust(HEADER_TEXT, b" "))


def verify_file(f, path):
    """Raise :class:`CorruptCheckpointError` unless the body of the open file
    ``f`` matches the digest in its header."""
    f.seek(0)
    header = f.read(HEADER)
    match = _DIGEST.search(header[:HEADER_TEXT])
    if len(header) < HEADER or not match:
        raise CorruptCheckpointError("not a checkpoint MAT file (no digest in its header)", path=path)
    length = int(match.group(2))
    if os.fstat(f.fileno()).st_size - HEADER != length:
        raise CorruptCheckpointError("file length differs from its header: truncated or extended", path=path)
    digest = digest_file(f, HEADER, HEADER + length)
    if digest != match.group(1).decode():
        raise CorruptCheckpointError("file digest mismatch: the file is damaged", path=path)


class MatFormat(Format):
    name = "mat"
    suffixes = (".mat",)
    codecs = ("gzip",)

    def keys(self):
        return IdentifierKeys()

    def write(self, tmp, manifest_text, digest, manifest, items, compression):
        variables = {"checkpoint_manifest": manifest_text, "checkpoint_manifest_xxh3": digest}
        sizes = {}
        for key, array in items:
            top, field = key.split(".", 1)
            variables.setdefault(top, {})[field] = array
            sizes[top] = sizes.get(top, 0) + array.nbytes + 64
        for top, size in sizes.items():
            if size > MAX_VARIABLE_BYTES:
                raise FormatLimitError(
                    f"object {top!r} holds {size} bytes; a MAT-file variable is limited to 2 GiB. "
                    "Save to HDF5 (.h5) instead: MATLAB reads it with h5read",
                    path=tmp,
                    obj=top,
                )
        with open(tmp, "wb") as f:
            scipy.io.savemat(
                f, variables, format="5", long_field_names=True, do_compression=compression is not None, oned_as="row"
            )
        _stamp_header(tmp)

    def read(self, path, lazy=False):
        # one handle for every check and for scipy: a file replaced meanwhile
        # cannot mix into what was verified
        with open(path, "rb") as f:
            verify_file(f, path)
            manifest = _matguard.check(f, path)  # scipy crashes on some forged structures
            f.seek(0)
            mat = scipy.io.loadmat(f, simplify_cells=True, mat_dtype=False, verify_compressed_data_integrity=True)

        def fetch(entry, label, read):
            top, field = entry["key"].split(".", 1)
            try:
                value = np.asarray(mat[top][field])
            except (KeyError, TypeError):
                raise CorruptCheckpointError(f"variable {entry['key']!r} is missing", path=path, obj=label) from None
            if value.dtype.hasobject or value.size != int(np.prod(entry["shape"], dtype=np.int64)):
                raise CorruptCheckpointError(f"variable {entry['key']!r} has the wrong size", path=path, obj=label)
            # scipy hands over its own buffers: convert or reorder only when needed
            array = np.ascontiguousarray(value.astype(ALLOWED_DTYPES[entry["dtype"]], copy=False))
            return array.reshape(entry["shape"])

        return unflatten(manifest, fetch, path)
