"""Forging checkpoints as an attacker would: change a file, then recompute
every digest and checksum that docs/format.rst documents, so that only the
reader's own structural checks stand between the forgery and the parsers.

Also :func:`read_in_subprocess`, which reads (and loads) a file in a child
process under a memory limit: a crash, a hang or a huge allocation is a
finding there, not a lost test run.
"""

import gzip
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile

import h5py
import numpy as np
from numpy.lib import format as npy

from checkpoint.formats import _h5guard, matlab
from checkpoint.hashing import digest_text

# ----------------------------------------------------------------- restamping


def restamp_h5(path):
    """Recompute an HDF5 checkpoint's userblock digest for its current bytes."""
    with h5py.File(path, "r") as f:
        ranges = []

        def collect(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.chunks is None and obj.size and name != "manifest":
                if obj.id.get_offset() is not None:
                    ranges.append((obj.id.get_offset(), obj.id.get_storage_size()))

        f.visititems(collect)
        userblock = f.userblock_size
    _h5guard.stamp(path, userblock, ranges)


def restamp_h5_keep_ranges(path):
    """Recompute the userblock digest over the ranges the userblock already
    lists (for byte-level damage the HDF5 library could not even open)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    userblock = int(head.split(b"userblock=")[1].split(b"\n")[0])
    line = head.split(b"ranges=")[1].split(b"\n")[0]
    ranges = [tuple(int(x) for x in part.split(b":")) for part in line.split(b",") if part]
    _h5guard.stamp(path, userblock, ranges)


def restamp(path):
    """Make the outer digest (HDF5 userblock, MAT header) match the bytes."""
    name = os.fspath(path)
    try:
        if name.endswith((".h5", ".hdf5")):
            restamp_h5_keep_ranges(name)
        elif name.endswith(".mat") and os.path.getsize(name) >= 128:
            matlab._stamp_header(name)
    except Exception:  # too damaged to restamp (a truncated userblock): the damage stands as it is
        pass


def rewrite_h5(path, change):
    """Apply ``change(f)`` to an open HDF5 checkpoint and restamp it."""
    with h5py.File(path, "r+") as f:
        change(f)
    restamp_h5(path)


# --------------------------------------------------------- manifest forgery


def read_manifest_text(path):
    name = os.fspath(path)
    if name.endswith((".h5", ".hdf5")):
        with h5py.File(name, "r") as f:
            return f["manifest"].asstr()[()]
    if name.endswith(".npz"):
        with zipfile.ZipFile(name) as zf:
            return str(npy.read_array(io.BytesIO(zf.read("manifest.npy"))))
    if name.endswith(".mat"):
        return _mat_elements(name)[0][1]
    return _text_lines(name)[1].split(" ", 2)[2].rstrip("\n")


def forge_manifest(path, change):
    """Replace the manifest by ``change(manifest dict)`` (or, when that
    returns a string, by that text), with its digest and the file's outer
    digest recomputed."""
    manifest = json.loads(read_manifest_text(path))
    result = change(manifest)
    text = result if isinstance(result, str) else json.dumps(manifest)
    write_manifest_text(path, text)


def write_manifest_text(path, text, digest=None):
    digest = digest_text(text) if digest is None else digest
    name = os.fspath(path)
    if name.endswith((".h5", ".hdf5")):

        def edit(f):
            del f["manifest"]
            f.create_dataset("manifest", data=text, dtype=h5py.string_dtype("utf-8"))
            f.attrs["manifest_xxh3"] = digest

        rewrite_h5(name, edit)
    elif name.endswith(".npz"):
        rewrite_npz(
            name, {"manifest.npy": _npy_bytes(np.array(text)), "manifest_xxh3.npy": _npy_bytes(np.array(digest))}
        )
    elif name.endswith(".mat"):
        elements = _mat_elements(name)
        body = (
            mat_char("checkpoint_manifest", text)
            + mat_char("checkpoint_manifest_xxh3", digest)
            + b"".join(raw for raw, _ in elements[2:])
        )
        write_mat(name, body)
    else:
        lines = _text_lines(name)
        lines[1] = f"manifest {digest} {text}\n"
        _write_text(name, lines)


# ----------------------------------------------------------------------- npz


def _npy_bytes(array):
    buffer = io.BytesIO()
    npy.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def rewrite_npz(path, replace=None, extra=()):
    """Rebuild an npz with some members replaced (name -> bytes) and
    ``extra`` ``(name, bytes)`` members appended (duplicates allowed)."""
    with zipfile.ZipFile(path) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in members:
            zf.writestr(info, (replace or {}).get(info.filename, data))
        for name, data in extra:
            zf.writestr(name, data)


# ----------------------------------------------------------------------- MAT


def mat_element(kind, payload):
    return struct.pack("<II", kind, len(payload)) + payload + b"\0" * (-len(payload) % 8)


def mat_matrix(cls, dims, name, *subelements, flags=0):
    """A miMATRIX element: array flags, dims, name, then ``subelements``."""
    body = (
        mat_element(6, struct.pack("<II", cls | (flags << 8), 0))
        + mat_element(5, struct.pack(f"<{len(dims)}i", *dims))
        + mat_element(1, name.encode())
        + b"".join(subelements)
    )
    return mat_element(14, body)


def mat_char(name, text):
    data = text.encode("ascii")
    return mat_matrix(4, [1, len(data)], name, mat_element(16, data))


def _mat_elements(path):
    """Top-level ``(raw bytes, text or None)`` of a MAT file we wrote."""
    import zlib

    data = open(path, "rb").read()
    out, pos = [], 128
    while pos + 8 <= len(data):
        kind, size = struct.unpack_from("<II", data, pos)
        end = pos + 8 + (size if kind == 15 else size + (-size % 8))
        raw = data[pos:end]
        inner = zlib.decompress(raw[8:]) if kind == 15 else raw
        text = None
        if struct.unpack_from("<I", inner, 16)[0] & 0xFF == 4:  # a char array: our manifest texts
            name_len = struct.unpack_from("<I", inner, 44)[0]
            at = 48 + name_len + (-name_len % 8)
            n = struct.unpack_from("<I", inner, at + 4)[0]
            text = inner[at + 8 : at + 8 + n].decode()
        out.append((raw, text))
        pos = end
    return out


def write_mat(path, body):
    """A MAT file of ``body`` (top-level elements) with our header, stamped."""
    with open(path, "wb") as f:
        f.write(b"MATLAB 5.0 MAT-file".ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM")
        f.write(body)
    matlab._stamp_header(path)


def mat_body(path):
    with open(path, "rb") as f:
        return f.read()[128:]


# ---------------------------------------------------------------------- text


def _text_lines(path):
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="\n") as f:
        return f.readlines()


def _write_text(path, lines):
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="\n") as f:
        f.writelines(lines)


# ----------------------------------------------------------- reading safely

_READER = textwrap.dedent("""
    import json, resource, sys, warnings
    limit = int(sys.argv[2])
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    warnings.simplefilter("ignore")
    import checkpoint
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        checkpoint.read(sys.argv[1])
        outcome, message = "ok", ""
    except checkpoint.CheckpointError as exc:
        outcome, message = type(exc).__name__, str(exc)
    except BaseException as exc:
        outcome, message = "raw " + type(exc).__name__, str(exc)[:500]
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    print(json.dumps({"outcome": outcome, "message": message, "grown": grown}))
""")


def read_in_subprocess(path, memory_limit=0, timeout=120):
    """``checkpoint.read(path)`` in a child process under ``RLIMIT_AS``.

    Returns a dict: ``outcome`` (``"ok"``, the CheckpointError subclass's
    name, ``"raw <type>"``, ``"crash <returncode>"`` or ``"hang"``),
    ``message`` and ``grown`` (bytes the peak resident memory grew by).
    """
    try:
        done = subprocess.run(
            [sys.executable, "-c", _READER, os.fspath(path), str(memory_limit)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"outcome": "hang", "message": "", "grown": 0}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"outcome": f"crash {done.returncode}", "message": done.stderr[-2000:], "grown": 0}
    return json.loads(lines[-1])


def alias_zip_member(path, target, names):
    """Add central-directory entries ``names`` that all point at the member
    ``target`` (a ZIP "bomb" by aliasing: many names, one stored body)."""
    data = open(path, "rb").read()
    eocd = data.rindex(b"PK\x05\x06")
    count, cd_size, cd_offset = struct.unpack_from("<HII", data, eocd + 10)
    entries, pos = [], cd_offset
    for _ in range(count):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        end = pos + 46 + name_len + extra_len + comment_len
        entries.append((data[pos + 46 : pos + 46 + name_len].decode(), data[pos:end]))
        pos = end
    template = next(raw for name, raw in entries if name == target)
    name_len, extra_len, _ = struct.unpack_from("<HHH", template, 28)
    for name in names:
        encoded = name.encode()
        raw = bytearray(template[:46]) + encoded + template[46 + name_len :]
        struct.pack_into("<H", raw, 28, len(encoded))
        entries.append((name, bytes(raw)))
    directory = b"".join(raw for _, raw in entries)
    tail = bytearray(data[eocd : eocd + 22])
    struct.pack_into("<HHII", tail, 8, len(entries), len(entries), len(directory), cd_offset)
    with open(path, "wb") as f:
        f.write(data[:cd_offset] + directory + bytes(tail))


# --------------------------------------------------------- sharded checkpoints


def sharded(path, net, ranks=2):
    """``net`` (a whole embedded network) saved at ``path`` as ``ranks``
    shards, as ``checkpoint convert --ranks`` writes them."""
    import checkpoint
    from checkpoint.distributed import write_shards

    single = os.fspath(path) + ".whole" + os.path.splitext(os.fspath(path))[1]
    checkpoint.save(single, net)
    write_shards(path, checkpoint.read(single), ranks)
    os.remove(single)
    return path


def forge_shard(path, rank, change_manifest=None, change_file=None):
    """Forge rank ``rank``'s shard of the sharded checkpoint ``path``:
    ``change_file(h5py.File)`` (HDF5 shards) then ``change_manifest(shard
    manifest)``, and make the top manifest record the forged shard (its size,
    manifest digest and population summary), every digest recomputed."""
    from checkpoint.distributed import shard_paths

    shard = shard_paths(path)[rank]
    if change_file is not None:
        with h5py.File(shard, "r+") as f:
            change_file(f)
    forge_manifest(shard, change_manifest or (lambda m: None))
    text = read_manifest_text(shard)
    summary = {name: dict(info) for name, info in _top_shards(path)["populations"][rank].items()}
    try:  # a fuzzed manifest may hold anything: its summary then stays as it was
        for name, pop in json.loads(text)["populations"].items():
            if name in summary:
                summary[name].update(count=pop["size"], global_size=pop.get("global_size", pop["size"]))
    except (AttributeError, KeyError, TypeError, ValueError):
        pass

    def record(m):
        m["meta"]["shards"]["sizes"][rank] = os.path.getsize(shard)
        m["meta"]["shards"]["digests"][rank] = digest_text(text)
        m["meta"]["shards"]["populations"][rank] = summary

    forge_manifest(path, record)
    return shard


def _top_shards(path):
    return json.loads(read_manifest_text(path))["meta"]["shards"]


def replace_dataset(f, key, array):
    """Replace dataset ``key`` of an open HDF5 file by ``array``; return the
    fields of its manifest entry that change (dtype, shape, checksum)."""
    from checkpoint.hashing import checksum

    del f[key]
    f.create_dataset(key, data=array)
    return {"dtype": array.dtype.str, "shape": list(array.shape), "checksum": checksum(array)}
