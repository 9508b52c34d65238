"""Bad files and bad arguments: a clear CheckpointError, and nothing changes."""

import os
import pickle
import subprocess
import sys
import textwrap
import zipfile

import h5py
import numpy as np
import pytest
import scipy.io

import checkpoint
from checkpoint import (
    CheckpointError,
    CorruptCheckpointError,
    FormatLimitError,
    UnsafeContentError,
    UnsupportedFormatError,
)
import forge
from helpers import arrays_of, assert_same_arrays, file_digest, izhikevich_network, load_fails

BINARY = ["h5", "npz", "mat", "txt", "txt.gz"]


FLIP_SCRIPT = textwrap.dedent("""
    import random, sys
    import checkpoint
    sys.path.insert(0, {tests!r})
    from helpers import izhikevich_network, state_arrays, same_bits
    path, out, n = {path!r}, {out!r}, {n}
    reference = state_arrays(checkpoint.read(path))
    data = open(path, "rb").read()
    rnd = random.Random({seed})
    outcomes = {{}}
    for trial in range(n):
        damaged = bytearray(data)
        if trial % 3 == 2:
            damaged = damaged[: rnd.randrange(len(data))]          # truncated
        else:
            damaged[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)   # one flipped bit
        open(out, "wb").write(damaged)
        try:
            got = state_arrays(checkpoint.read(out))
            same = got.keys() == reference.keys() and all(same_bits(got[k], reference[k]) for k in got)
            kind = "same" if same else "DIFFERENT DATA"
        except checkpoint.CheckpointError:
            kind = "error"
        except Exception as exc:
            kind = "raw " + type(exc).__name__
        outcomes[kind] = outcomes.get(kind, 0) + 1
    print(outcomes)
""")


@pytest.mark.parametrize("suffix", BINARY)
def test_damaged_files_raise_or_read_the_same_never_crash(tmp_path, suffix):
    """Flipped bits and truncations, in a subprocess so that a crash or a
    hang of a parser (seen with scipy.io and the HDF5 library) fails the test."""
    path = tmp_path / f"net.{suffix}"
    checkpoint.save(path, izhikevich_network())
    script = FLIP_SCRIPT.format(
        tests=os.path.dirname(__file__), path=str(path), out=str(tmp_path / f"bad.{suffix}"), n=150, seed=len(suffix)
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    outcomes = eval(done.stdout.strip().splitlines()[-1], {})  # our own dict literal
    assert set(outcomes) <= {"same", "error"}, outcomes
    assert outcomes.get("error", 0) > 100, outcomes


@pytest.mark.parametrize("suffix", BINARY)
def test_damaged_file_leaves_network_and_files_unchanged(tmp_path, suffix):
    net = izhikevich_network()
    path = tmp_path / f"net.{suffix}"
    checkpoint.save(path, net)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(data)
    load_fails(path, izhikevich_network(seed=7), CorruptCheckpointError)


@pytest.mark.parametrize("suffix", BINARY)
def test_empty_and_random_files(tmp_path, suffix):
    net = izhikevich_network()
    empty = tmp_path / f"empty.{suffix}"
    empty.write_bytes(b"")
    load_fails(empty, net, CorruptCheckpointError)
    noise = tmp_path / f"noise.{suffix}"
    noise.write_bytes(np.random.default_rng(0).bytes(5000))
    load_fails(noise, net, CorruptCheckpointError)


def test_foreign_files_of_each_format(tmp_path):
    net = izhikevich_network()
    np.savez(tmp_path / "plain.npz", v=np.zeros(3))
    load_fails(tmp_path / "plain.npz", net, CorruptCheckpointError)
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["populations/pop0/v"] = np.zeros(40)
    load_fails(tmp_path / "plain.h5", net, CorruptCheckpointError, "not a checkpoint")
    scipy.io.savemat(tmp_path / "plain.mat", {"v": np.zeros(3)})
    load_fails(tmp_path / "plain.mat", net, CorruptCheckpointError, "not a checkpoint")
    (tmp_path / "plain.txt").write_text("1 2 3\n")
    load_fails(tmp_path / "plain.txt", net, CorruptCheckpointError)


class _Marker:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickled_object_array_in_npz_is_refused_and_not_run(tmp_path):
    net = izhikevich_network()
    path = tmp_path / "net.npz"
    checkpoint.save(path, net)
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(hostile, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "populations/pop0/v.npy":
                payload = np.empty(1, dtype=object)
                payload[0] = _Marker(str(marker))
                import io

                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, payload, allow_pickle=True)
                data = buffer.getvalue()
            dst.writestr(info, data)
    load_fails(hostile, net, UnsafeContentError, "object")
    assert not marker.exists()


def test_pickle_disguised_as_text_is_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "hostile.txt"
    path.write_bytes(pickle.dumps(_Marker(str(marker))))
    load_fails(path, izhikevich_network(), CorruptCheckpointError)
    gz = tmp_path / "hostile.txt.gz"
    import gzip

    gz.write_bytes(gzip.compress(pickle.dumps(_Marker(str(marker)))))
    load_fails(gz, izhikevich_network(), CorruptCheckpointError)
    assert not marker.exists()


def test_hdf5_external_link_is_refused(tmp_path):
    net = izhikevich_network()
    path = tmp_path / "net.h5"
    checkpoint.save(path, net)
    with h5py.File(tmp_path / "elsewhere.h5", "w") as other:
        other["v"] = net.populations["pop0"].v

    def link(f):
        del f["populations/pop0/v"]
        f["populations/pop0/v"] = h5py.ExternalLink(str(tmp_path / "elsewhere.h5"), "v")

    forge.rewrite_h5(path, link)
    load_fails(path, net, UnsafeContentError, "ExternalLink")


def test_hdf5_virtual_dataset_is_refused(tmp_path):
    net = izhikevich_network()
    path = tmp_path / "net.h5"
    checkpoint.save(path, net)
    with h5py.File(tmp_path / "src.h5", "w") as other:
        other["v"] = net.populations["pop0"].v

    def virtual(f):
        layout = h5py.VirtualLayout(shape=(40,), dtype="<f8")
        layout[:] = h5py.VirtualSource(str(tmp_path / "src.h5"), "v", shape=(40,))
        del f["populations/pop0/v"]
        f.create_virtual_dataset("populations/pop0/v", layout)

    forge.rewrite_h5(path, virtual)
    load_fails(path, net, UnsafeContentError, "virtual")


def test_huge_declared_shape_is_refused_before_allocation(tmp_path):
    net = izhikevich_network()
    path = tmp_path / "net.h5"
    checkpoint.save(path, net)

    def huge(m):
        m["populations"]["pop0"]["size"] = 10**13
        m["populations"]["pop0"]["arrays"]["v"]["shape"] = [10**13]

    forge.forge_manifest(path, huge)
    load_fails(path, net, CorruptCheckpointError)


def test_object_dtype_in_manifest_is_unsafe(tmp_path):
    net = izhikevich_network()
    path = tmp_path / "net.h5"
    checkpoint.save(path, net)
    forge.forge_manifest(path, lambda m: m["populations"]["pop0"]["arrays"]["v"].update(dtype="|O"))
    load_fails(path, net, UnsafeContentError)


def test_out_of_range_connectivity_is_corrupt(tmp_path):
    net = izhikevich_network()
    path = tmp_path / "net.npz"
    checkpoint.save(path, net)
    # a consistent forgery: indices pointing past the pre population
    state = checkpoint.read(path)
    state.projections["proj0"].indices = state.projections["proj0"].indices + 1000
    from checkpoint.formats import write_state

    write_state(tmp_path / "forged.npz", state)
    load_fails(tmp_path / "forged.npz", net, CorruptCheckpointError, "out of range")


def test_tampered_manifest_without_digest_is_corrupt(tmp_path):
    net = izhikevich_network()
    path = tmp_path / "net.txt"
    checkpoint.save(path, net)
    text = path.read_text().replace('"time":0.0', '"time":8.0', 1)
    path.write_text(text)
    load_fails(path, net, CorruptCheckpointError, "manifest")


def test_newer_format_version_says_upgrade(tmp_path):
    net = izhikevich_network()
    path = tmp_path / "net.h5"
    checkpoint.save(path, net)
    forge.forge_manifest(path, lambda m: m.update(format_version=99))
    load_fails(path, net, CorruptCheckpointError, "upgrade")


def test_unknown_suffix_names_the_choices(tmp_path):
    net = izhikevich_network()
    with pytest.raises(UnsupportedFormatError, match=r"\.h5.*\.npz|\.npz.*\.h5"):
        checkpoint.save(tmp_path / "net.xyz", net)
    with pytest.raises(UnsupportedFormatError):
        checkpoint.save(tmp_path / "net.h5", net, format="parquet")
    assert list(tmp_path.iterdir()) == []


def test_missing_file(tmp_path):
    with pytest.raises(checkpoint.CheckpointNotFoundError) as info:
        checkpoint.load(tmp_path / "nope.h5", izhikevich_network())
    assert isinstance(info.value, FileNotFoundError) and "nope.h5" in str(info.value)
    with pytest.raises(checkpoint.CheckpointNotFoundError, match="nope.json"):
        checkpoint.load_parameters(tmp_path / "nope.json", izhikevich_network())


def test_unsupported_dtype_is_refused_before_writing(tmp_path):
    net = izhikevich_network()
    net.populations["pop0"]._add("half", np.zeros(40, np.float16), "variable", "neuron")
    with pytest.raises(FormatLimitError, match="pop0.half"):
        checkpoint.save(tmp_path / "net.h5", net)
    assert list(tmp_path.iterdir()) == []


def test_matlab_limit_is_a_clear_error(tmp_path, monkeypatch):
    from checkpoint.formats import matlab

    monkeypatch.setattr(matlab, "MAX_VARIABLE_BYTES", 100)
    with pytest.raises(FormatLimitError, match="2 GiB.*HDF5"):
        checkpoint.save(tmp_path / "net.mat", izhikevich_network())
    assert list(tmp_path.iterdir()) == []


def test_bad_metadata_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="JSON"):
        checkpoint.save(tmp_path / "net.h5", izhikevich_network(), metadata={"f": object()})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", BINARY)
def test_failed_save_leaves_the_old_file(tmp_path, monkeypatch, suffix):
    from checkpoint import formats

    net = izhikevich_network()
    path = tmp_path / f"net.{suffix}"
    checkpoint.save(path, net)
    digest = file_digest(path)
    fmt = formats.format_for(path)
    original = type(fmt).write

    def failing(self, tmp, *args):
        original(self, tmp, *args)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(fmt), "write", failing)
    net.populations["pop0"].v[:] = 1.0
    with pytest.raises(CheckpointError, match="No space left"):
        checkpoint.save(path, net)
    assert file_digest(path) == digest
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file left behind"


@pytest.mark.parametrize("suffix", ["h5", "npz"])  # npz: raised on the writer thread
def test_file_size_limit_in_a_subprocess_keeps_the_old_file(tmp_path, suffix):
    """A real EFBIG from the kernel (RLIMIT_FSIZE), as on a full disk."""
    path = tmp_path / f"net.{suffix}"
    script = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import numpy as np, checkpoint
        from helpers import izhikevich_network
        net = izhikevich_network()
        checkpoint.save({str(path)!r}, net)
        big = checkpoint.Network()
        big.add_population("pop0", 2_000_000, variables={{"v": 0.5}})
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
        try:
            checkpoint.save({str(path)!r}, big)
        except checkpoint.CheckpointError as exc:
            print("ERROR", exc)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ERROR" in done.stdout and path.name in done.stdout
    state = checkpoint.read(path)
    assert state.populations["pop0"].size == 40
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


# ------------------------------------------ writeback while saving


def _fake_sync_file_range(calls, error=0):
    """A stand-in for libc's sync_file_range that records its calls and
    fails with ``error`` (an errno), or calls the real one."""
    import ctypes
    from checkpoint.formats import _writer

    def sync(fd, offset, nbytes, flags):
        calls.append((offset, nbytes, flags))
        if error:
            ctypes.set_errno(error)
            return -1
        return _writer._libc_sync_file_range()(fd, offset, nbytes, flags)

    return sync


@pytest.mark.parametrize("suffix", ["h5", "npz"])
def test_saves_written_back_in_many_small_ranges_load_bit_for_bit(tmp_path, monkeypatch, suffix):
    """With 4 KiB writeback ranges and 1000-byte blocks, every range is sent,
    waited for and dropped, HDF5's own writes and ours share the file, and
    the checkpoint still loads bit for bit."""
    from checkpoint.formats import _writer

    calls = []
    monkeypatch.setattr(_writer, "_SYNC_FILE_RANGE", _fake_sync_file_range(calls))
    monkeypatch.setattr(_writer, "WRITEBACK_BYTES", 4096)
    monkeypatch.setattr(_writer, "BLOCK_BYTES", 1000)
    net = izhikevich_network(n_exc=200, n_inh=100, density=0.3)
    path = tmp_path / f"net.{suffix}"
    checkpoint.save(path, net)
    assert len([c for c in calls if c[2] == 7]) > 10, "ranges were waited for"
    other = izhikevich_network(seed=5, n_exc=200, n_inh=100, density=0.3)
    checkpoint.load(path, other)
    assert_same_arrays(arrays_of(net), arrays_of(other))


@pytest.mark.parametrize("suffix", ["h5", "npz"])
def test_writeback_io_error_keeps_the_old_file(tmp_path, monkeypatch, suffix):
    """EIO reported by writeback (a failing disk) fails the save, names the
    file, and leaves the old checkpoint and no temporary file."""
    import errno
    from checkpoint.formats import _writer

    net = izhikevich_network(n_exc=200, n_inh=100, density=0.3)
    path = tmp_path / f"net.{suffix}"
    checkpoint.save(path, net)
    digest = file_digest(path)
    monkeypatch.setattr(_writer, "_SYNC_FILE_RANGE", _fake_sync_file_range([], errno.EIO))
    monkeypatch.setattr(_writer, "WRITEBACK_BYTES", 4096)
    net.populations["pop0"].v[:] = 1.0
    with pytest.raises(CheckpointError, match="Input/output error") as caught:
        checkpoint.save(path, net)
    assert path.name in str(caught.value)
    assert file_digest(path) == digest
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("suffix", ["h5", "npz"])
def test_file_systems_without_writeback_get_plain_writes(tmp_path, monkeypatch, suffix):
    """Where sync_file_range is refused (EINVAL) a save asks once, then
    writes plainly, and the checkpoint is whole."""
    import errno
    from checkpoint.formats import _writer

    calls = []
    monkeypatch.setattr(_writer, "_SYNC_FILE_RANGE", _fake_sync_file_range(calls, errno.EINVAL))
    monkeypatch.setattr(_writer, "WRITEBACK_BYTES", 4096)
    net = izhikevich_network(n_exc=200, n_inh=100, density=0.3)
    path = tmp_path / f"net.{suffix}"
    checkpoint.save(path, net)
    assert len(calls) == 1
    other = izhikevich_network(seed=5, n_exc=200, n_inh=100, density=0.3)
    checkpoint.load(path, other)
    assert_same_arrays(arrays_of(net), arrays_of(other))


# ------------------------------------------ checksums verified block by block


def test_block_by_block_checksum_is_the_checksum(monkeypatch):
    """The digest fed in blocks (what a load computes) is the one-shot digest
    stored in the manifest, with the C library and with the Python fallback."""
    from checkpoint import hashing
    from checkpoint.formats import checksums

    rng = np.random.default_rng(3)
    arrays = [rng.random(n) for n in (0, 1, 7, 4096, 100_003)] + [rng.integers(0, 9, (513, 3))]
    for native in (hashing._NATIVE, None):
        monkeypatch.setattr(hashing, "_NATIVE", native)
        with checksums.VerifiedReads() as reads:
            for array in arrays:
                entry = {"dtype": array.dtype.str, "shape": list(array.shape), "checksum": checksums.checksum(array)}
                read = reads.start()
                flat = array.reshape(-1).view(np.uint8)
                for start in range(0, flat.nbytes, 1000):  # blocks that split elements
                    read.feed(flat[start : start + 1000])
                reads.finish(read, array, entry, "f", "x")
            reads.wait()


@pytest.mark.parametrize("threads", [1, 2, 3, "no preadv"])
def test_reads_at_an_offset_hash_in_order_with_any_number_of_threads(tmp_path, monkeypatch, threads):
    """Raw reads split into blocks across threads (or read in turn where
    there is no ``os.preadv``) give the array's bytes and its one-shot
    digest; a file that ends early is an EOFError, with no thread left
    waiting."""
    from checkpoint.formats import checksums

    monkeypatch.setattr(checksums, "BLOCK_BYTES", 1000)
    if threads == "no preadv":
        monkeypatch.delattr(os, "preadv")
        threads = 2
    array = np.random.default_rng(4).random(12_345)
    path = tmp_path / "raw.bin"
    path.write_bytes(b"x" * 77 + array.tobytes())
    with open(path, "rb") as f, checksums.VerifiedReads(threads) as reads:
        out = np.empty_like(array)
        read = reads.start()
        read.at(f, 77, out)
        assert out.tobytes() == array.tobytes()
        entry = {"dtype": array.dtype.str, "shape": list(array.shape), "checksum": checksums.checksum(array)}
        reads.finish(read, out, entry, str(path), "x")
        reads.wait()
        with pytest.raises(EOFError):
            reads.start().at(f, 77 + 8 * 5000, np.empty(12_345))


@pytest.mark.parametrize("suffix", ["h5", "npz"])
def test_damage_late_in_a_large_array_is_caught_when_read_in_blocks(tmp_path, monkeypatch, suffix):
    """With blocks of 256 bytes, the projection's weights span many blocks:
    a flipped bit in one of the last is caught, names the array, and the
    network is unchanged; the intact file still loads bit for bit."""
    from checkpoint.formats import checksums

    monkeypatch.setattr(checksums, "BLOCK_BYTES", 256)
    net = izhikevich_network(n_exc=200, n_inh=100, density=0.3)
    weights = net.projections["proj0"].w.tobytes()
    path = tmp_path / f"net.{suffix}"
    checkpoint.save(path, net)
    other = izhikevich_network(seed=5, n_exc=200, n_inh=100, density=0.3)
    checkpoint.load(path, other)
    assert_same_arrays(arrays_of(net), arrays_of(other))

    data = bytearray(path.read_bytes())
    start = bytes(data).find(weights)
    assert start > 0 and len(weights) > 20 * 256
    data[start + len(weights) - 300] ^= 0x04
    path.write_bytes(data)
    error = load_fails(
        path, izhikevich_network(seed=7, n_exc=200, n_inh=100, density=0.3), CorruptCheckpointError, match="checksum"
    )
    assert "proj0.w" in str(error)


@pytest.mark.parametrize("suffix", ["h5", "npz"])
@pytest.mark.parametrize("error", ["shortened", "EIO"])
def test_a_file_shortened_or_unreadable_while_read_names_the_array(tmp_path, monkeypatch, suffix, error):
    """Another process shortens the file after its sizes were checked, or
    the disk fails on the array's bytes: a CorruptCheckpointError naming
    the file and the array, and the network unchanged."""
    from checkpoint.formats import checksums

    net = izhikevich_network(n_exc=200, n_inh=100, density=0.3)
    path = tmp_path / f"net.{suffix}"
    checkpoint.save(path, net)
    read_at = checksums.ArrayRead.at

    def at(self, file, offset, out):
        if error == "EIO":
            raise OSError(5, "Input/output error")
        os.truncate(file.name, offset + 100)
        return read_at(self, file, offset, out)

    monkeypatch.setattr(checksums.ArrayRead, "at", at)
    other = izhikevich_network(seed=7, n_exc=200, n_inh=100, density=0.3)
    before = arrays_of(other)
    with pytest.raises(CorruptCheckpointError) as info:
        checkpoint.load(path, other)
    assert info.value.path == str(path) and info.value.obj, info.value  # the file and the array
    assert_same_arrays(before, arrays_of(other))
