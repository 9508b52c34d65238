"""Forged files, as an attacker makes them: every digest and checksum
recomputed (docs/format.rst says how), so only the readers' structural
checks stand in the way.  Each must raise a CheckpointError subclass
naming the file, in a child process that does not crash, hang or allocate
much, and leave the network and the folder as they were."""

import json
import os
import struct
import subprocess
import sys
import warnings
import zipfile
import zlib

import numpy as np
import pytest

import checkpoint
from checkpoint import CheckpointError, CheckpointWarning, CorruptCheckpointError
import forge
from helpers import arrays_of, assert_same_arrays, izhikevich_network, load_fails

FORMATS = ["h5", "npz", "mat", "txt", "txt.gz"]
MB = 1 << 20
# a child process may grow by this much reading a forged file of a few MB
MODEST_GROWTH = 200 * MB
CHILD_MEMORY = 2 << 30  # RLIMIT_AS of the child: a bomb fails there, not here


def refused(path, error=CorruptCheckpointError, match=None, net=None):
    """Reading ``path`` in a child refuses it with ``error`` (no crash, no
    hang, no large allocation); loading it here changes nothing."""
    result = forge.read_in_subprocess(path, memory_limit=CHILD_MEMORY)
    allowed = {cls.__name__ for cls in (error, *error.__subclasses__())}
    assert result["outcome"] in allowed, result
    assert result["grown"] < MODEST_GROWTH, result
    assert os.path.basename(str(path)) in result["message"]
    if match is not None:
        assert match in result["message"], result
    load_fails(path, net or izhikevich_network(), error)
    return result


def saved(tmp_path, suffix, **options):
    path = tmp_path / f"net.{suffix}"
    checkpoint.save(path, izhikevich_network(), **options)
    return path


# ------------------------------------------------------------------- MAT


def _deep_cells(depth):
    inner = forge.mat_matrix(6, [1, 1], "", forge.mat_element(9, struct.pack("<d", 1.0)))
    for _ in range(depth):
        inner = forge.mat_matrix(1, [1, 1], "", inner)
    return forge.mat_matrix(1, [1, 1], "evil", inner)


def _patch_first(body, old, new, start=0):
    at = body.index(old, start)
    return body[:at] + new + body[at + len(old) :]


_DOUBLE_FLAGS = struct.pack("<II", 6, 8) + bytes([6, 0, 0, 0])  # array flags of a double field
_INT64_FLAGS = struct.pack("<II", 6, 8) + bytes([14, 0, 0, 0])


@pytest.mark.parametrize(
    "forgery",
    [
        "deep cells",
        "cells inside a struct",
        "sparse class byte",
        "int64 field without dimensions",
        "zero field-name length",
        "unknown class",
        "complex data",
    ],
)
def test_mat_structures_that_crash_scipy_are_refused_before_it_parses(tmp_path, forgery):
    """Each of these made scipy.io.loadmat crash the interpreter (SIGSEGV)
    or raise a raw exception, with the header digest recomputed."""
    path = saved(tmp_path, "mat")
    body = forge.mat_body(path)
    field_at = body.index(_DOUBLE_FLAGS, body.index(b"pop_pop0"))
    if forgery == "deep cells":
        body += _deep_cells(20_000)
    elif forgery == "cells inside a struct":
        body = _patch_first(body, _DOUBLE_FLAGS, struct.pack("<II", 6, 8) + bytes([1, 0, 0, 0]), field_at)
    elif forgery == "sparse class byte":
        body = _patch_first(body, _DOUBLE_FLAGS, struct.pack("<II", 6, 8) + bytes([5, 0, 0, 0]), field_at)
    elif forgery == "int64 field without dimensions":
        at = body.index(_INT64_FLAGS)
        body = body[: at + 16] + struct.pack("<II", 5, 0) + body[at + 16 + 16 :]  # dims element emptied
    elif forgery == "zero field-name length":
        at = body.index(b"pop_pop0")
        small = body.index(struct.pack("<I", (4 << 16) | 5), at)
        body = body[: small + 4] + struct.pack("<i", 0) + body[small + 8 :]
    elif forgery == "unknown class":
        body = _patch_first(body, _DOUBLE_FLAGS, struct.pack("<II", 6, 8) + bytes([99, 0, 0, 0]), field_at)
    elif forgery == "complex data":
        body = _patch_first(body, _DOUBLE_FLAGS, struct.pack("<II", 6, 8) + bytes([6, 8, 0, 0]), field_at)
    forge.write_mat(path, body)
    refused(path, CheckpointError)


def test_mat_compressed_bomb_stops_at_the_manifests_bound(tmp_path):
    """A 1 MB file whose compressed variable inflates to 1 GB: refused while
    inflating, long before the gigabyte exists."""
    path = saved(tmp_path, "mat")
    elements = forge._mat_elements(path)
    head = b"".join(raw for raw, _ in elements[:2])
    # pop_pop0 with a field v of 2**27 doubles (1 GiB of zeros), compressed
    data_size = 8 << 27
    tag = (
        forge.mat_element(6, struct.pack("<II", 6, 0))
        + forge.mat_element(5, struct.pack("<ii", 1, 1 << 27))
        + forge.mat_element(1, b"")
        + struct.pack("<II", 9, data_size)
    )
    field = struct.pack("<II", 14, len(tag) + data_size) + tag
    top_head = (
        forge.mat_element(6, struct.pack("<II", 2, 0))
        + forge.mat_element(5, struct.pack("<ii", 1, 1))
        + forge.mat_element(1, b"pop_pop0")
        + struct.pack("<HHi", 5, 4, 1)
        + forge.mat_element(1, b"v")
    )
    matrix = struct.pack("<II", 14, len(top_head) + len(field) + data_size) + top_head + field
    squeeze = zlib.compressobj(1)
    compressed = squeeze.compress(matrix)
    zeros = bytes(16 * MB)
    for _ in range(data_size // len(zeros)):
        compressed += squeeze.compress(zeros)
    compressed += squeeze.flush()
    forge.write_mat(
        path, head + struct.pack("<II", 15, len(compressed)) + compressed + b"".join(raw for raw, _ in elements[3:])
    )
    assert os.path.getsize(path) < 8 * MB
    refused(path, match="inflates past")


# -------------------------------------------------------- manifest values


BAD_META = {
    "step 'abc'": {"step": "abc"},
    "step NaN": {"step": float("nan")},
    "step Infinity": {"step": float("inf")},
    "step [1]": {"step": [1]},
    "step '77'": {"step": "77"},
    "step 2.9": {"step": 2.9},
    "step true": {"step": True},
    "step -5": {"step": -5},
    "dt 'x'": {"dt": "x"},
    "dt list": {"dt": [0.5]},
    "dt 0": {"dt": 0},
    "time NaN": {"time": float("nan")},
    "shards 5": {"shards": 5},
    "shards {}": {"shards": {}},
    "time of 401 digits": {"time": 10**400},
    "dt of 401 digits": {"dt": 10**400},
    "step of 401 digits": {"step": 10**400},
}


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("case", sorted(BAD_META))
def test_manifest_values_of_the_wrong_type_or_range_are_refused(tmp_path, suffix, case):
    path = saved(tmp_path, suffix)
    forge.forge_manifest(path, lambda m: m["meta"].update(BAD_META[case]))
    refused(path)


@pytest.mark.parametrize("shape", [[2**64], [2**40, 2**40], [-1], [1.5], list(range(1, 40))])
def test_array_shapes_that_overflow_or_are_not_shapes_are_refused(tmp_path, shape):
    path = saved(tmp_path, "h5")
    forge.forge_manifest(path, lambda m: m["populations"]["pop0"]["arrays"]["v"].update(shape=shape, scope="free"))
    refused(path)


@pytest.mark.parametrize("suffix", ["txt", "txt.gz"])
@pytest.mark.parametrize("line", ["0 fffffffffffffffff0", "-1 7ff8000000000001", "999999 7ff8000000000001", "x y", "0"])
def test_text_nan_bit_lines_are_checked(tmp_path, suffix, line):
    path = saved(tmp_path, suffix)
    lines = forge._text_lines(path)
    at = next(
        i for i, text in enumerate(lines) if text.startswith("array ") and '"<f8"' in text and '"shape": [40]' in text
    )
    header = json.loads(lines[at][6:])
    header["nanbits"] = 1
    lines[at] = "array " + json.dumps(header) + "\n"
    lines.insert(at + 1 + header["count"], line + "\n")
    forge._write_text(path, lines)
    refused(path)


@pytest.mark.parametrize("suffix", ["txt", "txt.gz"])
def test_text_nanbits_infinity_is_refused(tmp_path, suffix):
    path = saved(tmp_path, suffix)
    lines = [
        line.replace('"nanbits": 0', '"nanbits": Infinity', 1) if line.startswith("array ") else line
        for line in forge._text_lines(path)
    ]
    forge._write_text(path, lines)
    refused(path)


def test_json_nesting_beyond_recursion_in_the_manifest_is_refused(tmp_path):
    path = saved(tmp_path, "h5")
    forge.forge_manifest(path, lambda m: json.dumps(m)[:-1] + ',"deep":' + "[" * 100_000 + "]" * 100_000 + "}")
    refused(path)


def test_a_checkpointer_passes_over_a_forged_newest_checkpoint(tmp_path):
    net = izhikevich_network()
    with checkpoint.Checkpointer(tmp_path, net, every_steps=1, keep=3, background=False) as ckpt:
        for _ in range(2):
            net.step += 1
            ckpt.maybe_save()
        forge.forge_manifest(ckpt.latest(), lambda m: m["meta"].update(step="abc"))
        with pytest.warns(CheckpointWarning, match="passed over"):
            assert ckpt.latest().endswith("ckpt-000000000001.h5")
        with pytest.warns(CheckpointWarning, match="previous"):
            assert ckpt.restore_latest().step == 1


# ------------------------------------------------------------ memory bombs


def _forge_dataset(path, create, shape):
    """Replace pop0.v by ``create(f, key)`` (a dataset of ``shape``) and
    declare that shape in the manifest."""
    forge.rewrite_h5(path, lambda f: (f.__delitem__("populations/pop0/v"), create(f, "populations/pop0/v")))
    forge.forge_manifest(
        path, lambda m: m["populations"]["pop0"]["arrays"]["v"].update(shape=list(shape), scope="free")
    )


def test_hdf5_chunked_dataset_never_written_is_refused(tmp_path):
    path = saved(tmp_path, "h5")
    shape = (400_000_000,)  # 3.2 GB of fill value from a 31 KB file
    _forge_dataset(
        path,
        lambda f, key: f.create_dataset(key, shape=shape, dtype="<f8", chunks=(1 << 20,), compression="gzip"),
        shape,
    )
    refused(path, match="chunks stored")


def test_hdf5_sixteen_unallocated_gzip_datasets_are_refused(tmp_path):
    path = saved(tmp_path, "h5")
    shape = (9_000_000,)  # 72 MB each, within deflate's ratio of a 64 KB file: 1.2 GB in all

    def many(f):
        for i in range(16):
            f.create_dataset(f"populations/pop0/x{i}", shape=shape, dtype="<f8", chunks=(1 << 17,), compression="gzip")

    def declare(m):
        for i in range(16):
            m["populations"]["pop0"]["arrays"][f"x{i}"] = dict(
                m["populations"]["pop0"]["arrays"]["v"], key=f"populations/pop0/x{i}", shape=list(shape), scope="free"
            )

    forge.rewrite_h5(path, many)
    forge.forge_manifest(path, declare)
    refused(path)


def test_zip_entries_aliasing_one_stored_member_are_refused(tmp_path):
    """96 directory entries, one 17 MB body: 1.6 GB declared by 17 MB."""
    path = saved(tmp_path, "npz")
    big = np.arange(17 * MB // 8, dtype="<f8")
    forge.rewrite_npz(path, extra=[("populations/pop0/big0.npy", forge._npy_bytes(big))])
    from checkpoint.hashing import checksum

    def declare(m):
        template = m["populations"]["pop0"]["arrays"]["v"]
        for i in range(96):
            m["populations"]["pop0"]["arrays"][f"big{i}"] = dict(
                template, key=f"populations/pop0/big{i}", shape=[big.size], scope="free", checksum=checksum(big)
            )

    forge.forge_manifest(path, declare)
    forge.alias_zip_member(path, "populations/pop0/big0.npy", [f"populations/pop0/big{i}.npy" for i in range(1, 96)])
    refused(path, match="overlaps")


def test_zip_member_listed_twice_is_refused(tmp_path):
    path = saved(tmp_path, "npz")
    with zipfile.ZipFile(path) as zf:
        data = zf.read("populations/pop0/v.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        forge.rewrite_npz(path, extra=[("populations/pop0/v.npy", data)])
    refused(path, match="listed twice")


def test_deflated_giant_manifest_is_refused_before_it_is_read(tmp_path):
    """A 60M-character manifest deflates to a few hundred KB."""
    path = saved(tmp_path, "npz")
    header = "{'descr': '<U%d', 'fortran_order': False, 'shape': (), }" % (60 << 20)
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + header.encode().ljust(117) + b"\n"
    squeeze, body = zlib.compressobj(), b""
    chunk = ("x" * MB).encode("utf-32-le")
    body = member
    with zipfile.ZipFile(path) as zf:
        others = [(info.filename, zf.read(info)) for info in zf.infolist() if info.filename != "manifest.npy"]
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open(zipfile.ZipInfo("manifest.npy"), "w") as out:
            out._compress_type = zipfile.ZIP_DEFLATED
            out.write(body)
            for _ in range(60):
                out.write(chunk)
        for name, data in others:
            zf.writestr(name, data)
    del squeeze
    refused(path)


def _gzip_stream(path, first, repeat, times):
    import gzip

    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(first)
        for _ in range(times):
            f.write(repeat)


def test_gzip_text_with_a_giant_first_line_is_refused_as_it_streams(tmp_path):
    path = tmp_path / "net.txt.gz"
    _gzip_stream(path, b"", b"x" * (16 * MB), 32)  # 0.5 GB without a newline
    refused(path)


def test_gzip_text_with_a_giant_manifest_line_is_refused_as_it_streams(tmp_path):
    path = tmp_path / "net.txt.gz"
    _gzip_stream(path, b"checkpoint-text 1\nmanifest 0000000000000000 ", b" " * (16 * MB), 32)
    refused(path)


def test_gzip_text_with_a_giant_value_line_is_refused_as_it_streams(tmp_path):
    path = saved(tmp_path, "txt.gz")
    lines = forge._text_lines(path)
    at = next(i for i, text in enumerate(lines) if text.startswith("array "))
    import gzip

    with gzip.open(path, "wt", compresslevel=1) as f:
        f.writelines(lines[: at + 1])
        for _ in range(32):
            f.write(" " * (16 * MB))
        f.writelines(lines[at + 1 :])
    refused(path)


# ----------------------------------------------- readers racing a writer

_WRITER = """
import os, sys, time
a, b, target, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
sources = [open(a, "rb").read(), open(b, "rb").read()]
end, i = time.time() + seconds, 0
while time.time() < end:
    tmp = target + ".tmp-race"
    with open(tmp, "wb") as f:
        f.write(sources[i % 2])
    os.replace(tmp, target)
    i += 1
print(i)
"""


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_reader_racing_an_atomic_writer_gets_one_whole_checkpoint(tmp_path, suffix):
    """Every byte of one read comes from the one file it opened: while
    another process replaces the file again and again, each read returns
    the old or the new checkpoint, whole, and never a checksum mismatch."""
    a, b, target = tmp_path / f"a.{suffix}", tmp_path / f"b.{suffix}", tmp_path / f"t.{suffix}"
    first, second = izhikevich_network(seed=1), izhikevich_network(seed=2)
    second.step = 7
    checkpoint.save(a, first)
    checkpoint.save(b, second)
    checkpoint.save(target, first)
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(a), str(b), str(target), "4"], stdout=subprocess.PIPE, text=True
    )
    reads = 0
    try:
        while writer.poll() is None:
            state = checkpoint.read(target)
            assert state.step in (0, 7)
            expected = first if state.step == 0 else second
            assert np.array_equal(state.populations["pop0"]["v"], expected.populations["pop0"].v)
            reads += 1
    finally:
        writer.wait(timeout=30)
    assert reads > 10 and int(writer.stdout.read()) > 10


# ------------------------------------------------------ a Checkpointer's folder


def _checkpointer_run(folder, steps=5, keep=1, **options):
    net = izhikevich_network()
    with checkpoint.Checkpointer(folder, net, every_steps=1, keep=keep, background=False, **options) as ckpt:
        for _ in range(steps):
            net.step += 1
            ckpt.maybe_save()
    return net


def test_a_lock_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("mine")
    folder = tmp_path / "ck"
    folder.mkdir()
    os.symlink(outside, folder / ".checkpoint.lock")
    with pytest.raises(CheckpointError, match="symlink"):
        checkpoint.Checkpointer(folder, izhikevich_network())
    assert outside.read_text() == "mine"


def test_retention_deletes_only_what_the_checkpointer_wrote(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    (folder / "ckpt-000000000000.h5").write_text("a user's note")
    checkpoint.save(folder / "ckpt-000000000000.npz", izhikevich_network())  # a valid one, not ours
    outside = tmp_path / "elsewhere.h5"
    checkpoint.save(outside, izhikevich_network())
    os.symlink(outside, folder / "ckpt-000000000000-keep.mat")
    os.symlink(outside, folder / "ckpt-000000000001.hdf5")
    (folder / "ckpt-000000000002.txt").mkdir()  # a folder with that name
    before = {name: forge_digest(folder / name) for name in os.listdir(folder)}
    _checkpointer_run(folder, steps=5, keep=1)
    after = sorted(os.listdir(folder))
    assert "ckpt-000000000005.h5" in after
    assert not any(f"ckpt-00000000000{s}.h5" in after for s in (1, 2, 3, 4))  # its own old ones went
    for name, digest in before.items():
        assert forge_digest(folder / name) == digest, name
    assert outside.exists()


def forge_digest(path):
    if os.path.islink(path):
        return ("link", os.readlink(path))
    if os.path.isdir(path):
        return ("dir", sorted(os.listdir(path)))
    with open(path, "rb") as f:
        return ("file", f.read())


def test_opening_a_checkpointer_keeps_a_users_folder_named_like_shards(tmp_path):
    folder = tmp_path / "ck"
    (folder / "ckpt-000000000003.h5.shards").mkdir(parents=True)
    (folder / "ckpt-000000000003.h5.shards" / "results.csv").write_text("1,2,3")
    _checkpointer_run(folder, steps=2)
    assert (folder / "ckpt-000000000003.h5.shards" / "results.csv").read_text() == "1,2,3"


def test_a_checkpoint_that_cannot_be_deleted_is_a_warning_not_a_stopped_run(tmp_path, monkeypatch):
    real_remove = os.remove

    def refuse(path, *args, **kwargs):
        if str(path).endswith("ckpt-000000000001.h5"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_remove(path, *args, **kwargs)

    monkeypatch.setattr(os, "remove", refuse)
    with pytest.warns(CheckpointWarning, match="could not delete"):
        _checkpointer_run(tmp_path, steps=4, keep=1)
    assert sorted(n for n in os.listdir(tmp_path) if not n.startswith(".")) == [
        "ckpt-000000000001.h5",
        "ckpt-000000000004.h5",
    ]


def test_a_file_of_the_next_checkpoints_name_not_ours_is_not_overwritten(tmp_path):
    (tmp_path / "ckpt-000000000002.h5").write_text("a user's note")
    with pytest.raises(CheckpointError, match="did not write"):
        _checkpointer_run(tmp_path, steps=3)
    assert (tmp_path / "ckpt-000000000002.h5").read_text() == "a user's note"


# ----------------------------------------------------------- durability


def test_a_failed_folder_sync_after_the_rename_is_a_saved_file_and_a_warning(tmp_path, monkeypatch):
    from checkpoint import _atomic

    path = tmp_path / "net.h5"
    checkpoint.save(path, izhikevich_network(seed=1))
    real = _atomic.fsync_path

    def failing(target, directory=False):
        if directory:
            raise OSError(5, "Input/output error")
        return real(target, directory)

    monkeypatch.setattr(_atomic, "fsync_path", failing)
    net = izhikevich_network(seed=2)
    # the old file is already replaced: the save succeeded (no "failed" of a
    # file that changed), and the warning says its durability is not sure
    with pytest.warns(CheckpointWarning, match="new file is in place.*may revert") as info:
        checkpoint.save(path, net)
    assert any("net.h5" in str(w.message) for w in info)
    assert np.array_equal(checkpoint.read(path).populations["pop0"]["v"], net.populations["pop0"].v)


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_temporary_left_by_a_killed_save_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "net.h5"
    stale = tmp_path / f".net.h5.tmp-{_dead_pid()}-0123abcd"
    live = tmp_path / f".net.h5.tmp-{os.getppid()}-89abcdef"  # a writer still running
    other = tmp_path / f".other.h5.tmp-{_dead_pid()}-0123abcd"  # another target's
    for leftover in (stale, live, other):
        leftover.write_bytes(b"partial")
    checkpoint.save(path, izhikevich_network())
    assert not stale.exists() and live.exists() and other.exists()


def test_a_killed_save_leaves_a_temporary_that_the_next_save_removes(tmp_path):
    """A real SIGKILL in the middle of a large save."""
    import signal
    import time

    path = tmp_path / "big.npz"
    script = (
        "import checkpoint\n"
        "net = checkpoint.Network()\n"
        "net.add_population('p', 100_000_000, variables={'v': 1.0})\n"
        f"checkpoint.save({str(path)!r}, net)\n"
    )
    saver = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 120
    while not any(".tmp-" in n for n in os.listdir(tmp_path)):  # the save has begun
        assert saver.poll() is None and time.time() < deadline
        time.sleep(0.002)
    saver.send_signal(signal.SIGKILL)
    assert saver.wait(timeout=60) == -9
    leftovers = [n for n in os.listdir(tmp_path) if ".tmp-" in n]
    assert leftovers and not path.exists()
    checkpoint.save(path, izhikevich_network())
    assert [n for n in os.listdir(tmp_path) if ".tmp-" in n] == []


# ------------------------------------------------------- load_parameters


def _parameter_network():
    net = checkpoint.Network()
    net.add_population(
        "pop",
        3,
        parameters={"n32": np.int32(3), "n64": np.int64(3), "f32": np.float32(1.5), "f64": 2.5},
        variables={"v": 0.0},
    )
    return net


@pytest.mark.parametrize(
    "key, text",
    [
        ("n32", "4294967297"),
        ("n64", "9223372036854775808"),
        ("f32", "1e300"),
        ("f64", "1e400"),
        ("f64", "NaN"),
        ("f64", "-Infinity"),
        ("n32", "2.5"),
        ("n64", "1e400"),
    ],
)
def test_parameters_out_of_range_or_not_finite_are_refused(tmp_path, key, text):
    path = tmp_path / "params.json"
    path.write_text('{"populations": {"pop": {"%s": %s}}, "projections": {}, "network": {}}' % (key, text))
    net = _parameter_network()
    before = arrays_of(net)
    with pytest.raises(CorruptCheckpointError, match=f"pop.{key}") as info:
        checkpoint.load_parameters(path, net)
    assert "params.json" in str(info.value)
    assert_same_arrays(before, arrays_of(net))


def test_parameters_at_the_edge_of_their_range_are_set_exactly(tmp_path):
    path = tmp_path / "params.json"
    path.write_text(
        '{"populations": {"pop": {"n32": 2147483647, "n64": -9223372036854775808, '
        '"f32": 3.4e38}}, "projections": {}, "network": {}}'
    )
    net = _parameter_network()
    checkpoint.load_parameters(path, net)
    pop = net.populations["pop"]
    assert pop.n32 == 2**31 - 1 and pop.n64 == -(2**63) and pop.f32 == np.float32(3.4e38)


def test_deeply_nested_parameter_json_and_a_folder_are_clear_errors(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CorruptCheckpointError, match="deep.json"):
        checkpoint.load_parameters(path, _parameter_network())
    with pytest.raises(CheckpointError, match=os.path.basename(tmp_path)):
        checkpoint.load_parameters(tmp_path, _parameter_network())


# --------------------------------------- the HDF5 library in a helper process


def test_hdf5_metadata_that_makes_the_library_loop_is_refused(tmp_path):
    """Found by the fuzzing harness (tests/fuzz.py): a few changed bytes in
    the metadata of a compressed checkpoint, the userblock digest
    recomputed, made h5py hang for ever reading the root group's
    attributes.  The helper process takes the hang; this process refuses
    the file."""
    path = tmp_path / "loop.h5"
    path.write_bytes(open(os.path.join(os.path.dirname(__file__), "data", "hdf5-metadata-loop.h5"), "rb").read())
    result = forge.read_in_subprocess(path, memory_limit=CHILD_MEMORY, timeout=200)
    assert result["outcome"] == "CorruptCheckpointError", result
    assert "loop.h5" in result["message"]


@pytest.mark.parametrize(
    "helper, message",
    [
        ("import os, signal; print('ready', flush=True); os.kill(os.getpid(), signal.SIGSEGV)", "crashed"),
        ("import time; print('ready', flush=True); time.sleep(60)", "did not finish"),
    ],
)
def test_a_helper_that_crashes_or_hangs_makes_the_read_a_clear_error(tmp_path, monkeypatch, helper, message):
    from checkpoint.formats import _h5sandbox

    path = saved(tmp_path, "h5")
    monkeypatch.setattr(_h5sandbox, "BASE_TIMEOUT", 2.0)
    monkeypatch.setattr(_h5sandbox, "_helper", None)
    monkeypatch.setenv(_h5sandbox.START_ENV, "lazy")  # no replacement started by the fake
    monkeypatch.setattr(
        _h5sandbox,
        "_start",
        lambda: subprocess.Popen(
            [sys.executable, "-c", helper], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ),
    )
    net = izhikevich_network(seed=5)
    before = arrays_of(net)
    with pytest.raises(CorruptCheckpointError, match=message):
        checkpoint.load(path, net)
    assert_same_arrays(before, arrays_of(net))
    monkeypatch.undo()
    checkpoint.load(path, net)  # a new helper serves the next read


def test_a_helper_that_cannot_start_is_a_clear_error_not_a_verdict_on_the_file(tmp_path, monkeypatch):
    from checkpoint.formats import _h5sandbox

    path = saved(tmp_path, "h5")
    monkeypatch.setattr(_h5sandbox, "_helper", None)
    monkeypatch.setattr(_h5sandbox.sys, "executable", "/bin/false")
    with pytest.raises(CheckpointError, match="could not start the helper") as info:
        checkpoint.read(path)
    assert not isinstance(info.value, CorruptCheckpointError) and "net.h5" in str(info.value)
    monkeypatch.undo()
    checkpoint.read(path)


# ----------------------------------------------- sharded checkpoints (forged shards)


def _sharded(tmp_path, ranks=2):
    return forge.sharded(tmp_path / "run.h5", izhikevich_network(), ranks)


def _refused_everywhere(path, match):
    """A sharded checkpoint refused by a read in a child (little memory
    grown) and by a load that repartitions it, the network unchanged."""
    result = forge.read_in_subprocess(path, memory_limit=CHILD_MEMORY)
    assert result["outcome"] in {"StructureMismatchError", "CorruptCheckpointError"}, result
    assert result["grown"] < MODEST_GROWTH, result
    assert match in result["message"], result
    net, files = izhikevich_network(), _tree_digests(path.parent)
    before = arrays_of(net)
    with pytest.raises(CheckpointError, match="run.h5"):  # a load repartitions into the model's own sizes
        checkpoint.load(path, net)
    assert_same_arrays(before, arrays_of(net))
    assert _tree_digests(path.parent) == files


def _tree_digests(folder):
    return {
        os.path.relpath(os.path.join(top, name), folder): forge_digest(os.path.join(top, name))
        for top, _, names in os.walk(folder)
        for name in names
    }


def test_a_shards_giant_global_size_is_refused_before_it_is_allocated(tmp_path):
    path = _sharded(tmp_path)

    def giant(m):
        m["populations"]["pop0"]["global_size"] = 1 << 61

    forge.forge_shard(path, 0, giant)
    forge.forge_shard(path, 1, giant)
    _refused_everywhere(path, "the shards hold")


def test_a_summary_that_is_not_its_shards_is_refused(tmp_path):
    path = _sharded(tmp_path)
    summary = forge._top_shards(path)["populations"]

    def lie(m):
        # counts that add up to the forged size, but are not what shard 0 holds
        m["meta"]["shards"]["populations"][0]["pop0"]["count"] = (1 << 61) - summary[1]["pop0"]["count"]
        m["meta"]["shards"]["populations"][0]["pop0"]["global_size"] = 1 << 61
        m["meta"]["shards"]["populations"][1]["pop0"]["global_size"] = 1 << 61

    forge.forge_manifest(path, lie)
    _refused_everywhere(path, "other populations or sizes than its manifest")


def test_a_lazily_read_shards_indptr_is_checked(tmp_path):
    path = _sharded(tmp_path)
    changed = {}

    def scramble(f):
        key = "projections/proj0/indptr"
        indptr = f[key][()]
        indptr[1], indptr[2] = 1 << 40, -(1 << 40)  # ends where it should; not monotone
        changed.update(forge.replace_dataset(f, key, indptr))

    forge.forge_shard(path, 1, lambda m: m["projections"]["proj0"]["indptr"].update(changed), scramble)
    _refused_everywhere(path, "indptr is not a valid CSR index")
    with pytest.raises(CorruptCheckpointError, match="indptr"):  # a lazy read of the shard alone too
        checkpoint.read(checkpoint.distributed.shard_paths(path)[1], lazy=True)


def test_an_indptr_whose_differences_wrap_is_refused(tmp_path):
    path = tmp_path / "net.h5"
    checkpoint.save(path, izhikevich_network())
    changed = {}

    def wrap(f):
        key = "projections/proj0/indptr"
        indptr = f[key][()]
        # (-2^63) - (2^63 - 1) wraps to 1 in int64: np.diff saw a sorted index
        indptr[1], indptr[2] = (1 << 63) - 1, -(1 << 63)
        changed.update(forge.replace_dataset(f, key, indptr))

    forge.rewrite_h5(path, wrap)
    forge.forge_manifest(path, lambda m: m["projections"]["proj0"]["indptr"].update(changed))
    refused(path, match="indptr")


def test_a_variable_missing_from_one_shard_is_refused_not_left_uninitialised(tmp_path):
    path = _sharded(tmp_path)
    forge.forge_shard(path, 1, lambda m: m["populations"]["pop0"]["arrays"].pop("v"))
    _refused_everywhere(path, "other variables than another shard (v)")


def test_a_synapse_variable_missing_from_one_shard_is_refused(tmp_path):
    path = _sharded(tmp_path)
    forge.forge_shard(path, 0, lambda m: m["projections"]["proj0"]["arrays"].pop("w"))
    _refused_everywhere(path, "other variables than another shard (w)")


def test_rows_of_another_width_in_one_shard_are_refused(tmp_path):
    path = _sharded(tmp_path)
    changed = {}

    def widen(f):
        key = "populations/pop0/v"
        changed.update(forge.replace_dataset(f, key, np.repeat(f[key][()][:, None], 3, axis=1)))

    forge.forge_shard(path, 1, lambda m: m["populations"]["pop0"]["arrays"]["v"].update(changed), widen)
    _refused_everywhere(path, "per neuron, another shard as")


# ------------------------------------------- a Checkpointer's shards: only the ledger is proof


def _sharded_checkpointer_run(folder, steps=2, start=0):
    from checkpoint._ranks import ONE_PROCESS  # a sharded save on one rank: the MPI path, no mpiexec

    net = izhikevich_network()
    net.step = start
    with checkpoint.Checkpointer(folder, net, every_steps=1, keep=5, comm=ONE_PROCESS) as ckpt:
        for _ in range(steps):
            net.step += 1
            ckpt.maybe_save()
    return net


def test_committed_shards_whose_manifest_was_moved_away_are_kept(tmp_path):
    folder = tmp_path / "ck"
    _sharded_checkpointer_run(folder)
    shards = folder / "ckpt-000000000002.h5.shards"
    before = {name: forge_digest(shards / name) for name in os.listdir(shards)}
    assert before
    os.rename(folder / "ckpt-000000000002.h5", tmp_path / "moved.h5")  # the user keeps it elsewhere
    with checkpoint.Checkpointer(folder, izhikevich_network()):
        pass
    assert {name: forge_digest(shards / name) for name in os.listdir(shards)} == before


def test_a_users_checkpoint_with_a_shards_name_is_kept(tmp_path):
    folder = tmp_path / "ck"
    _sharded_checkpointer_run(folder)
    mine = folder / "ckpt-000000000007.h5.shards"
    mine.mkdir()
    checkpoint.save(mine / "0123abcd.rank-0-of-1.h5", izhikevich_network(seed=3))  # reads as a checkpoint
    before = forge_digest(mine / "0123abcd.rank-0-of-1.h5")
    with checkpoint.Checkpointer(folder, izhikevich_network()):
        pass
    assert forge_digest(mine / "0123abcd.rank-0-of-1.h5") == before


KILLED_SHARDED_SAVE = """
import os, signal, sys
import checkpoint
from checkpoint import distributed
import test_hostile
real = distributed.save_one
def killed(path, *args, **kwargs):  # SIGKILLed after its shards, before the manifest commits
    real(path, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
distributed.save_one = killed
test_hostile._sharded_checkpointer_run(sys.argv[1], steps=1, start=2)
"""


def test_the_shards_of_a_killed_sharded_save_are_removed_by_the_next_checkpointer(tmp_path):
    folder = tmp_path / "ck"
    _sharded_checkpointer_run(folder)
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(here), here]))
    done = subprocess.run(
        [sys.executable, "-c", KILLED_SHARDED_SAVE, str(folder)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == -9, done.stderr
    left = folder / "ckpt-000000000003.h5.shards"
    assert os.listdir(left) and not (folder / "ckpt-000000000003.h5").exists()
    (left / "ffffffffffff.rank-0-of-1.h5").write_text("a user's file, shard-named, another token")
    with checkpoint.Checkpointer(folder, izhikevich_network()):
        pass
    assert os.listdir(left) == ["ffffffffffff.rank-0-of-1.h5"]
    assert checkpoint.read(folder / "ckpt-000000000002.h5").step == 2  # the committed one stands
