"""Prove a MAT file has the shape our writer gives it before scipy parses it.

scipy's MAT reader trusts the element tags it reads: deeply nested cells,
a sparse class byte where a dense one was, or an integer array without
dimensions crash the interpreter, and a small file can declare a variable
of gigabytes.  A digest in the header proves a file undamaged, not
harmless (anyone can recompute it), so before scipy sees a file we walk
its level-5 element tags and accept only what :class:`~.matlab.MatFormat`
writes:

- first the char arrays ``checkpoint_manifest`` (at most
  :data:`~.manifest.MAX_MANIFEST_CHARS` ASCII characters) and
  ``checkpoint_manifest_xxh3``; the manifest is decoded and validated;
- then one 1x1 struct per object named in the manifest, its fields exactly
  the manifest's arrays of that object, each a real numeric array whose
  class is the manifest's dtype and whose element count is the manifest's;
- no other class (cell, sparse, object, function handle), no nesting below
  a struct's fields, no complex data, every size inside its parent, every
  ``miCOMPRESSED`` element inflating to one element no larger than the
  manifest allows (checked while inflating, so a bomb stops at its bound).

Only tags, names and the manifest are read from the file; array data is
skipped over, except inside compressed elements, which must be inflated to
be walked.
"""

import os
import struct
import zlib

import numpy as np

from ..errors import CorruptCheckpointError, UnsafeContentError
from .manifest import ALLOWED_DTYPES, MAX_MANIFEST_CHARS, all_entries, decode_manifest, entry_nbytes

HEADER = 128
_TAG = struct.Struct("<II")
MI_INT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED, MI_UTF8 = 1, 5, 6, 14, 15, 16
CLASS_CHAR, CLASS_STRUCT = 4, 2
_COMPLEX_FLAG = 0x08
#: numeric array class -> (the miTYPE of its data, the numpy dtype it holds)
NUMERIC = {
    6: (9, "<f8"),
    7: (7, "<f4"),
    8: (1, "|i1"),
    9: (2, "|u1"),
    10: (3, "<i2"),
    11: (4, "<u2"),
    12: (5, "<i4"),
    13: (6, "<u4"),
    14: (12, "<i8"),
    15: (13, "<u8"),
}
_CLASS_OF_DTYPE = {np.dtype(code).str: cls for cls, (_, code) in NUMERIC.items()}
_CLASS_OF_DTYPE[np.dtype(bool).str] = 9  # logical: uint8 with the logical flag
MAX_FIELD_NAME = 64  # scipy's long_field_names
_OVERHEAD = 128  # tags, flags, dims and padding of one array, generously
_INFLATE_BLOCK = 1 << 20


class _Bytes:
    """Random access to the bytes being walked: the file, or an inflated element."""

    def __init__(self, read_at):
        self.read_at = read_at


def _file_source(f):
    fd = f.fileno()
    return _Bytes(lambda offset, n: os.pread(fd, n, offset))


def _buffer_source(buffer):
    view = memoryview(buffer)
    return _Bytes(lambda offset, n: bytes(view[offset : offset + n]))


class _Walk:
    """One walk over a file; ``fail`` names the file in every error."""

    def __init__(self, path):
        self.path = path

    def fail(self, message, obj=None):
        raise CorruptCheckpointError(f"MAT structure refused: {message}", path=self.path, obj=obj)

    # ----------------------------------------------------------- elements

    def element(self, src, offset, end):
        """``(type, data offset, data size, next offset)`` of the element at ``offset``."""
        if offset + 8 > end:
            self.fail("an element tag runs past its parent")
        head = src.read_at(offset, 8)
        if len(head) != 8:
            self.fail("file ends inside an element tag")
        first, second = _TAG.unpack(head)
        if first >> 16:  # small data element: size and type in one word, data in the next
            size, kind = first >> 16, first & 0xFFFF
            if size > 4:
                self.fail("a small data element declares more than 4 bytes")
            return kind, offset + 4, size, offset + 8
        kind, size = first, second
        padded = size if kind == MI_COMPRESSED else size + (-size % 8)
        if offset + 8 + padded > end:
            self.fail(f"an element of {size} bytes runs past its parent")
        return kind, offset + 8, size, offset + 8 + padded

    def inflate(self, src, offset, size, bound):
        """The bytes of a compressed element, refused once they pass ``bound``."""
        inflater, out, done = zlib.decompressobj(), bytearray(), 0
        while done < size and not inflater.eof:
            block = src.read_at(offset + done, min(_INFLATE_BLOCK, size - done))
            if not block:
                self.fail("file ends inside a compressed element")
            done += len(block)
            try:
                out += inflater.decompress(block, bound + 1 - len(out))
            except zlib.error as exc:
                self.fail(f"compressed element is not valid zlib data ({exc})")
            if len(out) > bound or inflater.unconsumed_tail:
                self.fail(f"a compressed element inflates past the {bound} bytes the manifest allows")
        if not inflater.eof or inflater.unused_data or done != size:
            self.fail("a compressed element is truncated or has trailing data")
        return out

    def matrix(self, src, offset, end, bound):
        """The one miMATRIX element at ``offset`` (inflated first when
        compressed); returns ``(src, data offset, data end)`` of its body."""
        kind, data, size, following = self.element(src, offset, end)
        if kind == MI_COMPRESSED:
            buffer = self.inflate(src, data, size, bound)
            src = _buffer_source(buffer)
            kind, data, size, following = self.element(src, 0, len(buffer))
            if following != len(buffer):
                self.fail("a compressed element holds more than one variable")
        if kind != MI_MATRIX:
            self.fail(f"element of type {kind} where a variable was expected")
        if size > bound:
            self.fail(f"a variable of {size} bytes, more than the manifest allows ({bound})")
        return src, data, data + size

    def data(self, src, offset, end, kind, limit):
        """Read a sub-element of type ``kind`` (at most ``limit`` bytes)."""
        got, data, size, following = self.element(src, offset, end)
        if got != kind:
            self.fail(f"sub-element of type {got} where type {kind} was expected")
        if size > limit:
            self.fail(f"a sub-element of {size} bytes where at most {limit} are allowed")
        return src.read_at(data, size), following

    def header(self, src, offset, end, name_limit=63):
        """Array flags, dimensions and name: ``(class, flags, dims, name, next)``."""
        flags, offset = self.data(src, offset, end, MI_UINT32, 8)
        if len(flags) != 8:
            self.fail("array flags are not 8 bytes")
        cls, bits = flags[0], flags[1]
        dims, offset = self.data(src, offset, end, MI_INT32, 4 * 32)
        if len(dims) % 4 or len(dims) < 8:
            self.fail("an array has fewer than two dimensions")
        dims = struct.unpack(f"<{len(dims) // 4}i", dims)
        if min(dims) < 0:
            self.fail("an array has a negative dimension")
        name, offset = self.data(src, offset, end, MI_INT8, name_limit)
        return cls, bits, dims, name, offset

    # ------------------------------------------------------------ variables

    def char(self, src, offset, end, expected_name, limit):
        body_src, start, stop = self.matrix(src, offset, end, limit + _OVERHEAD)
        cls, bits, dims, name, at = self.header(body_src, start, stop)
        if cls != CLASS_CHAR or name != expected_name.encode() or bits & _COMPLEX_FLAG:
            self.fail(f"variable {expected_name!r} is missing or not where our writer puts it")
        count = int(np.prod(dims, dtype=np.int64))
        text, at = self.data(body_src, at, stop, MI_UTF8, limit)
        if len(text) != count or at != stop:
            self.fail(f"variable {expected_name!r} does not have the size its dimensions say")
        try:
            return text.decode("ascii")
        except UnicodeDecodeError:
            self.fail(f"variable {expected_name!r} is not ASCII")

    def struct(self, src, offset, end, fields_of, seen):
        """One top-level struct: a known object, fields exactly its arrays."""
        # the name decides the bound, so read it before inflating anything big:
        # the bound is the largest object's, then the named object's own
        largest = max((_struct_bound(f) for f in fields_of.values()), default=_OVERHEAD)
        body_src, start, stop = self.matrix(src, offset, end, largest)
        cls, bits, dims, name, at = self.header(body_src, start, stop)
        name = name.decode("ascii", "replace")
        fields = fields_of.get(name)
        if cls != CLASS_STRUCT or fields is None or name in seen:
            self.fail(f"unexpected variable {name!r} (class {cls})")
        if stop - start > _struct_bound(fields):
            self.fail("a variable is larger than the manifest's arrays", obj=name)
        if tuple(dims) != (1, 1) or bits & _COMPLEX_FLAG:
            self.fail("an object struct is not 1x1", obj=name)
        seen.add(name)
        length, at = self.data(body_src, at, stop, MI_INT32, 4)
        width = struct.unpack("<i", length)[0] if len(length) == 4 else 0
        if not 0 < width <= MAX_FIELD_NAME:
            self.fail(f"field name length {width}", obj=name)
        names, at = self.data(body_src, at, stop, MI_INT8, width * len(fields))
        if len(names) != width * len(fields):
            self.fail(f"{len(names) // width} fields, the manifest lists {len(fields)}", obj=name)
        names = [names[i : i + width].rstrip(b"\x00").decode("ascii", "replace") for i in range(0, len(names), width)]
        if sorted(names) != sorted(fields):
            self.fail("its fields are not the manifest's arrays", obj=name)
        for field in names:
            at = self.numeric(body_src, at, stop, fields[field], f"{name}.{field}")
        if at != stop:
            self.fail("trailing data after the last field", obj=name)

    def numeric(self, src, offset, end, entry, label):
        kind, start, size, following = self.element(src, offset, end)
        if kind != MI_MATRIX:
            self.fail(f"field of element type {kind}", obj=label)
        stop = start + size
        cls, bits, dims, name, at = self.header(src, start, stop, name_limit=0)
        if cls not in NUMERIC:
            raise UnsafeContentError(
                f"MAT array class {cls} refused (only numeric arrays are read)", path=self.path, obj=label
            )
        if bits & _COMPLEX_FLAG or cls != _CLASS_OF_DTYPE[ALLOWED_DTYPES[entry["dtype"]].str]:
            self.fail(f"class {cls} does not hold the manifest's {entry['dtype']}", obj=label)
        count = int(np.prod(dims, dtype=np.int64))
        if count != int(np.prod(entry["shape"], dtype=np.int64)):
            self.fail(f"{count} elements, the manifest says shape {entry['shape']}", obj=label)
        mi_type, code = NUMERIC[cls]
        got, _, data_size, at = self.element(src, at, stop)  # the data itself is not read
        if got != mi_type or data_size != count * np.dtype(code).itemsize:
            self.fail(f"data of type {got} and {data_size} bytes for {count} {code} values", obj=label)
        if at != stop:
            self.fail("trailing data in an array", obj=label)
        return following


def _struct_bound(fields):
    """The most bytes a struct holding these arrays can take, tags included."""
    return _OVERHEAD + sum(MAX_FIELD_NAME + entry_nbytes(e) + _OVERHEAD for e in fields.values())


def check(f, path):
    """Walk the open MAT file ``f``; return its validated manifest.

    Raises :class:`CorruptCheckpointError` (or :class:`UnsafeContentError`
    for a class that can carry code or references) for anything our writer
    would not have written.
    """
    size = os.fstat(f.fileno()).st_size
    walk, src = _Walk(path), _file_source(f)
    if size < HEADER:
        walk.fail("shorter than a MAT header")
    offset = HEADER
    texts = []
    for name, limit in (("checkpoint_manifest", MAX_MANIFEST_CHARS), ("checkpoint_manifest_xxh3", 16)):
        texts.append(walk.char(src, offset, size, name, limit))
        offset = walk.element(src, offset, size)[3]
    manifest = decode_manifest(texts[0], texts[1], path)
    fields_of = {}
    for label, entry in all_entries(manifest):
        top, _, field = entry["key"].partition(".")
        if not field or field in fields_of.setdefault(top, {}):
            walk.fail(f"manifest key {entry['key']!r} is not <variable>.<field>", obj=label)
        fields_of[top][field] = entry
    seen = set()
    while offset < size:
        walk.struct(src, offset, size, fields_of, seen)
        offset = walk.element(src, offset, size)[3]
    missing = sorted(set(fields_of) - seen)
    if missing:
        walk.fail(f"variables missing: {', '.join(missing)}")
    return manifest
