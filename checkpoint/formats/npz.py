"""NumPy ``.npz``: a ZIP archive of ``.npy`` members, readable by ``np.load``.

Layout: members ``manifest.npy`` and ``manifest_xxh3.npy`` (0-d unicode
arrays) and one ``<key>.npy`` per array.  Members are stored uncompressed by
default; ``compression="gzip"`` deflates them.  Reading never unpickles: each
member's ``.npy`` header is parsed and checked against the manifest before
any memory is allocated, and stored members are read straight from the file.
"""

import itertools
import os
import struct
import zipfile

import numpy as np
from numpy.lib import format as npy

from ..errors import CorruptCheckpointError, UnsafeContentError
from .base import Format
from .compression import MAX_RATIO, zip_level
from ._writer import BackgroundWriter, WritebackFile, write_array_data
from .checksums import BLOCK_BYTES
from .manifest import ALLOWED_DTYPES, MAX_MANIFEST_CHARS, PathKeys, check_size_bound, decode_manifest, unflatten

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # a ZIP local file header, 30 bytes


def _read_header(stream, path, label):
    """Parse a ``.npy`` header: ``(shape, dtype)``, refusing object arrays."""
    version = npy.read_magic(stream)
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise CorruptCheckpointError(f"unknown .npy version {version}", path=path, obj=label)
    reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, fortran, dtype = reader(stream)
    if dtype.hasobject:
        raise UnsafeContentError("object array (pickle) refused", path=path, obj=label)
    if fortran and len(shape) > 1:
        raise CorruptCheckpointError("Fortran-ordered array not expected", path=path, obj=label)
    return list(shape), dtype


class NpzFormat(Format):
    name = "npz"
    suffixes = (".npz",)
    codecs = ("gzip",)

    def keys(self):
        return PathKeys()

    def write(self, tmp, manifest_text, digest, manifest, items, compression):
        method, level = zip_level(compression)
        # zipfile's CRC-32 of one block runs while the writer thread writes the last
        with WritebackFile(tmp) as f, BackgroundWriter(f) as writer:
            with zipfile.ZipFile(writer, "w", method, allowZip64=True, compresslevel=level) as zf:
                header = [("manifest", np.array(manifest_text)), ("manifest_xxh3", np.array(digest))]
                for key, array in itertools.chain(header, items):
                    with zf.open(key + ".npy", "w", force_zip64=True) as member:
                        _write_npy(member, array)

    def read(self, path, lazy=False):
        # one handle: zipfile and our raw reads see the same inode throughout
        with open(path, "rb") as raw, zipfile.ZipFile(raw) as zf:
            _check_members(zf, raw, path)
            manifest = decode_manifest(
                self._small_text(zf, "manifest", MAX_MANIFEST_CHARS, path),
                self._small_text(zf, "manifest_xxh3", 16, path),
                path,
            )
            fetch = lambda entry, label, read: self._member(zf, raw, entry, path, label, read)  # noqa: E731
            return unflatten(manifest, fetch, path)

    def _small_text(self, zf, name, max_chars, path):
        info = _info(zf, name, path, name)
        with zf.open(info) as member:
            shape, dtype = _read_header(member, path, name)
            if dtype.kind != "U" or shape != [] or dtype.itemsize > 4 * max_chars or dtype.itemsize > _most_bytes(info):
                raise CorruptCheckpointError(f"{name} is not a text of at most {max_chars} characters", path=path)
            data = member.read(dtype.itemsize)
            if len(data) != dtype.itemsize:
                raise CorruptCheckpointError(f"{name} is truncated", path=path)
            return str(np.frombuffer(data, dtype)[0])

    def _member(self, zf, raw, entry, path, label, read):
        info = _info(zf, entry["key"], path, label)
        stored = info.compress_type == zipfile.ZIP_STORED
        stream = self._open_stored(raw, info, path) if stored else zf.open(info)
        shape, dtype = _read_header(stream, path, label)
        if dtype != ALLOWED_DTYPES[entry["dtype"]] or shape != entry["shape"]:
            raise CorruptCheckpointError(
                f"member is {dtype.str} {shape}, manifest says {entry['dtype']} {entry['shape']}", path=path, obj=label
            )
        check_size_bound(entry, _most_bytes(info), path, label)
        out = np.empty(entry["shape"], dtype)
        try:
            if stored:
                read.at(raw, raw.tell(), out)
            else:
                read.stream(stream, out)
        except EOFError:  # shortened since it was opened: another process's write
            raise CorruptCheckpointError("member ends beyond the file", path=path, obj=label) from None
        except OSError as exc:  # EIO and the like: this member's bytes cannot be read
            raise CorruptCheckpointError(f"unreadable ({exc})", path=path, obj=label) from exc
        return out

    @staticmethod
    def _open_stored(raw, info, path):
        """Position ``raw`` at a stored member's data, bypassing zipfile's
        extra copy and CRC pass (our own checksum covers the data)."""
        raw.seek(info.header_offset)
        fields = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
        if fields[0] != b"PK\x03\x04":
            raise CorruptCheckpointError("bad ZIP local header", path=path)
        raw.seek(info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10])
        return raw


def _info(zf, key, path, label):
    try:
        return zf.getinfo(key + ".npy")
    except KeyError:
        raise CorruptCheckpointError(f"member {key!r} is missing", path=path, obj=label) from None


def _most_bytes(info):
    """The most bytes a member can hand out: what it stores, or what deflate
    can make of it."""
    if info.compress_type == zipfile.ZIP_STORED:
        return min(info.file_size, info.compress_size)
    return min(info.file_size, info.compress_size * MAX_RATIO["gzip"])


def _check_members(zf, raw, path):
    """Refuse a ZIP whose members could hand out more than the file holds:
    a name listed twice, members that overlap or leave the file, methods
    other than stored and deflated, or more members than the file has room
    for.  A forged central directory can point many names at one member."""
    size = os.fstat(raw.fileno()).st_size
    infos = zf.infolist()
    if len(infos) > size // _LOCAL_HEADER.size:
        raise CorruptCheckpointError("more ZIP members than the file has room for", path=path)
    if len({info.filename for info in infos}) != len(infos):
        raise CorruptCheckpointError("a ZIP member name is listed twice", path=path)
    end = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CorruptCheckpointError(
                f"ZIP member {info.filename!r} uses compression method {info.compress_type}", path=path
            )
        header = os.pread(raw.fileno(), _LOCAL_HEADER.size, info.header_offset)
        if info.header_offset < end or len(header) != _LOCAL_HEADER.size:
            raise CorruptCheckpointError(f"ZIP member {info.filename!r} overlaps another or leaves the file", path=path)
        fields = _LOCAL_HEADER.unpack(header)
        end = info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10] + info.compress_size
        if fields[0] != b"PK\x03\x04" or end > size:
            raise CorruptCheckpointError(f"ZIP member {info.filename!r} overlaps another or leaves the file", path=path)


def _write_npy(stream, array):
    """``np.save``'s bytes, the data handed over in blocks of the array's own
    memory (no copies: the writer thread is done with them before save returns)."""
    if array.dtype.hasobject or not array.flags.c_contiguous or array.nbytes < BLOCK_BYTES:
        npy.write_array(stream, array, allow_pickle=False)
        return
    npy.write_array_header_1_0(stream, npy.header_data_from_array_1_0(array))
    write_array_data(stream, array)
