"""Plain text (``.txt``) and gzip text (``.txt.gz``, ``.gz``).

Line-oriented, readable with ``numpy.loadtxt``, and exact::

    checkpoint-text 1
    manifest <xxh3-64 hex> <manifest JSON on one line>
    array {"key": ..., "dtype": "<f8", "shape": [3], "count": 3, "nanbits": 0}
    -65.0
    ...                       one value per line, ``count`` lines
    <index> <hex bits>        ``nanbits`` lines: NaNs whose bits are not the
                              default quiet NaN (payload, sign)
    end

Floats are written with Python's shortest round-trip repr, integers in
decimal, booleans as 0/1, so every value reads back bit for bit.
"""

import gzip
import json
import math
import os
import re

import numpy as np

from ..errors import CorruptCheckpointError
from .base import Format
from .compression import MAX_RATIO, parse
from .manifest import (
    ALLOWED_DTYPES,
    MAX_MANIFEST_CHARS,
    PathKeys,
    all_entries,
    check_size_bound,
    decode_manifest,
    unflatten,
)

MAGIC = "checkpoint-text 1"
_BLOCK = 1 << 16
_DEFAULT_NAN = {
    np.dtype("<f8"): np.float64(np.nan).view(np.uint64),
    np.dtype("<f4"): np.float32(np.nan).view(np.uint32),
}
_MAX_HEADER_LINE = 64 << 10  # an "array {...}" line
_MAX_VALUE_LINE = 64  # one value: repr of a float64 is at most 24 characters
_NAN_LINE = re.compile(r"(\d{1,19}) ([0-9a-f]{1,16})")


def _lines(array):
    """Yield the array's values as text, one per line, in blocks."""
    flat = array.reshape(-1)
    if flat.dtype == np.bool_:
        flat = flat.view(np.uint8)
    convert = repr if flat.dtype.kind == "f" else str
    for start in range(0, flat.size, _BLOCK):
        yield "\n".join(map(convert, flat[start : start + _BLOCK].tolist())) + "\n"


def _odd_nans(array):
    """Indices and bit patterns of NaNs that ``float('nan')`` would not give back."""
    if array.dtype.kind != "f":
        return []
    flat = array.reshape(-1)
    bits = flat.view(np.uint64 if flat.itemsize == 8 else np.uint32)
    odd = np.flatnonzero(np.isnan(flat) & (bits != _DEFAULT_NAN[flat.dtype]))
    return [(int(i), format(int(bits[i]), "x")) for i in odd]


def _parse_values(lines, dtype, count):
    if count == 0:
        return np.empty(0, dtype)
    parse_as = np.uint8 if dtype == np.bool_ else (np.float64 if dtype.kind == "f" else dtype)
    values = np.loadtxt(lines, dtype=parse_as, comments=None, ndmin=1)
    if len(values) != count:
        raise ValueError(f"expected {count} values, found {len(values)}")
    if dtype == np.bool_:
        if values.max(initial=0) > 1:
            raise ValueError("boolean values must be 0 or 1")
        return values.view(np.bool_)
    return values.astype(dtype)


class TextFormat(Format):
    name = "text"
    suffixes: tuple = (".txt",)
    codecs: tuple = ()
    max_ratio = MAX_RATIO[None]

    def keys(self):
        return PathKeys()

    def _open(self, path, mode, compression=None):
        return open(path, mode, encoding="utf-8", newline="\n")

    def write(self, tmp, manifest_text, digest, manifest, items, compression):
        with self._open(tmp, "wt", compression) as f:
            f.write(f"{MAGIC}\nmanifest {digest} {manifest_text}\n")
            for key, array in items:
                nans = _odd_nans(array)
                header = {
                    "key": key,
                    "dtype": array.dtype.str,
                    "shape": list(array.shape),
                    "count": int(array.size),
                    "nanbits": len(nans),
                }
                f.write("array " + json.dumps(header, ensure_ascii=True) + "\n")
                f.writelines(_lines(array))
                f.writelines(f"{i} {bits}\n" for i, bits in nans)
            f.write("end\n")

    def read(self, path, lazy=False):
        with self._open(path, "rt") as f:
            bound = max(os.fstat(_fileno(f)).st_size, 1 << 16) * self.max_ratio
            if _line(f, len(MAGIC) + 1, path) != MAGIC + "\n":
                raise CorruptCheckpointError("not a checkpoint text file", path=path)
            line = _line(f, MAX_MANIFEST_CHARS + 64, path).rstrip("\n")
            tag, digest, manifest_text = (line.split(" ", 2) + ["", ""])[:3]
            if tag != "manifest":
                raise CorruptCheckpointError("manifest line missing", path=path)
            manifest = decode_manifest(manifest_text, digest, path)
            arrays = self._read_arrays(f, manifest, bound, path)

        def fetch(entry, label, read):
            if entry["key"] not in arrays:
                raise CorruptCheckpointError(f"array {entry['key']!r} is missing", path=path, obj=label)
            return arrays[entry["key"]]

        return unflatten(manifest, fetch, path)

    def _read_arrays(self, f, manifest, bound, path):
        expected = {e["key"]: (label, e) for label, e in all_entries(manifest)}
        arrays = {}
        while True:
            line = _line(f, _MAX_HEADER_LINE, path)
            if line == "end\n":
                return arrays
            if not line:
                raise CorruptCheckpointError("file ends before its 'end' line: truncated", path=path)
            header = json.loads(line[6:]) if line.startswith("array ") else None
            if not isinstance(header, dict):
                raise CorruptCheckpointError("expected an 'array' line", path=path)
            label, entry = expected.get(header.get("key"), (None, None))
            if (
                entry is None
                or header.get("dtype") != entry["dtype"]
                or header.get("shape") != entry["shape"]
                or entry["key"] in arrays
            ):
                raise CorruptCheckpointError(
                    f"array {header.get('key')!r} does not match the manifest", path=path, obj=label
                )
            check_size_bound(entry, bound, path, label)
            dtype = ALLOWED_DTYPES[entry["dtype"]]
            count = math.prod(entry["shape"])
            nans = header.get("nanbits", 0)
            if (
                not (isinstance(nans, int) and not isinstance(nans, bool) and 0 <= nans <= count)
                or header.get("count", count) != count
            ):
                raise CorruptCheckpointError(f"bad count or nanbits in {line[:200]!r}", path=path, obj=label)
            values = _parse_values(_lines_of(f, count, path), dtype, count)
            self._apply_nan_bits(values, _lines_of(f, nans, path), path, label)
            arrays[entry["key"]] = values.reshape(entry["shape"])

    @staticmethod
    def _apply_nan_bits(values, lines, path, label):
        if values.dtype.kind != "f":
            if next(lines, None) is not None:
                raise CorruptCheckpointError("NaN bit patterns for an array that is not float", path=path, obj=label)
            return
        bits = values.view(np.uint64 if values.itemsize == 8 else np.uint32)
        for line in lines:
            match = _NAN_LINE.fullmatch(line.rstrip("\n"))
            index, pattern = (int(match.group(1)), int(match.group(2), 16)) if match else (-1, 0)
            if not 0 <= index < len(bits) or pattern >= 1 << (8 * values.itemsize):
                raise CorruptCheckpointError(f"bad NaN bit pattern line {line[:100]!r}", path=path, obj=label)
            bits[index] = pattern


def _fileno(f):
    """The descriptor under a text stream (gzip's text wrapper included)."""
    raw = f.buffer if hasattr(f, "buffer") else f
    raw = getattr(raw, "fileobj", None) or raw  # gzip.GzipFile keeps the file as .fileobj
    return raw.fileno()


def _line(f, limit, path):
    """One line of at most ``limit`` characters: a longer one is refused as it
    streams in, before it is held in memory."""
    line = f.readline(limit + 1)
    if len(line) > limit or (line and not line.endswith("\n")):
        raise CorruptCheckpointError(f"a line longer than {limit} characters, or unterminated", path=path)
    return line


def _lines_of(f, count, path):
    """The next ``count`` value lines, each bounded."""
    for _ in range(count):
        line = _line(f, _MAX_VALUE_LINE, path)
        if not line:
            raise CorruptCheckpointError("file ends inside an array: truncated", path=path)
        yield line


class GzipTextFormat(TextFormat):
    name = "text.gz"
    suffixes = (".txt.gz", ".gz")
    codecs = ("gzip",)
    max_ratio = MAX_RATIO["gzip"]

    def _open(self, path, mode, compression=None):
        c = parse(compression)
        level = c.level if c is not None and c.level is not None else 6
        return gzip.open(path, mode, compresslevel=level, encoding="utf-8", newline="\n")
