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
import itertools
import json
import os

import numpy as np

from ..errors import CorruptCheckpointError
from .compression import parse
from .layout import ALLOWED_DTYPES, PathKeys, all_entries, check_size_bound, decode_manifest, unflatten

MAGIC = "checkpoint-text 1"
_BLOCK = 1 << 16
_DEFAULT_NAN = {np.dtype("<f8"): np.float64(np.nan).view(np.uint64),
                np.dtype("<f4"): np.float32(np.nan).view(np.uint32)}
_GZIP_MAX_RATIO = 1100


def _lines(array):
    """Yield the array's values as text, one per line, in blocks."""
    flat = array.reshape(-1)
    if flat.dtype == np.bool_:
        flat = flat.view(np.uint8)
    convert = repr if flat.dtype.kind == "f" else str
    for start in range(0, flat.size, _BLOCK):
        yield "\n".join(map(convert, flat[start:start + _BLOCK].tolist())) + "\n"


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


class TextFormat:
    name = "text"
    suffixes = (".txt",)
    max_ratio = 1

    def keys(self):
        return PathKeys()

    def _open(self, path, mode, compression=None):
        return open(path, mode, encoding="utf-8", newline="\n")

    def write(self, tmp, manifest_text, digest, manifest, items, compression):
        with self._open(tmp, "wt", compression) as f:
            f.write(f"{MAGIC}\nmanifest {digest} {manifest_text}\n")
            for key, array in items:
                nans = _odd_nans(array)
                header = {"key": key, "dtype": array.dtype.str, "shape": list(array.shape),
                          "count": int(array.size), "nanbits": len(nans)}
                f.write("array " + json.dumps(header, ensure_ascii=True) + "\n")
                f.writelines(_lines(array))
                f.writelines(f"{i} {bits}\n" for i, bits in nans)
            f.write("end\n")

    def read(self, path, lazy=False):
        bound = max(os.path.getsize(path), 1 << 16) * self.max_ratio
        with self._open(path, "rt") as f:
            if f.readline().rstrip("\n") != MAGIC:
                raise CorruptCheckpointError("not a checkpoint text file", path=path)
            tag, digest, manifest_text = (f.readline().rstrip("\n").split(" ", 2) + ["", ""])[:3]
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
        for line in f:
            if line == "end\n":
                return arrays
            if not line.startswith("array "):
                raise CorruptCheckpointError("expected an 'array' line", path=path)
            header = json.loads(line[6:])
            label, entry = expected.get(header.get("key"), (None, None))
            if entry is None or header.get("dtype") != entry["dtype"] or header.get("shape") != entry["shape"]:
                raise CorruptCheckpointError(f"array {header.get('key')!r} does not match the manifest",
                                             path=path, obj=label)
            check_size_bound(entry, bound, path, label)
            dtype = ALLOWED_DTYPES[entry["dtype"]]
            count = int(np.prod(entry["shape"], dtype=np.int64))
            values = _parse_values(itertools.islice(f, count), dtype, count)
            self._apply_nan_bits(values, itertools.islice(f, int(header.get("nanbits", 0))))
            arrays[entry["key"]] = values.reshape(entry["shape"])
        raise CorruptCheckpointError("file ends before its 'end' line: truncated", path=path)

    @staticmethod
    def _apply_nan_bits(values, lines):
        bits = values.view(np.uint64 if values.itemsize == 8 else np.uint32) if values.dtype.kind == "f" else None
        for line in lines:
            index, pattern = line.split()
            bits[int(index)] = int(pattern, 16)


class GzipTextFormat(TextFormat):
    name = "text.gz"
    suffixes = (".txt.gz", ".gz")
    max_ratio = _GZIP_MAX_RATIO

    def _open(self, path, mode, compression=None):
        c = parse(compression)
        level = c.level if c is not None and c.codec == "gzip" and c.level is not None else 6
        return gzip.open(path, mode, compresslevel=level, encoding="utf-8", newline="\n")
