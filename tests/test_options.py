"""compression= options and the progress bar."""

import os

import h5py
import numpy as np
import pytest

import checkpoint
from checkpoint import UnsupportedFormatError
from helpers import arrays_of, assert_same_arrays, izhikevich_network


@pytest.mark.parametrize(
    "compression",
    [
        "gzip",
        "gzip:9",
        "lzf",
        "zstd",
        "lz4",
        "blosc",
        {"codec": "gzip", "level": 1, "shuffle": False, "fletcher32": True},
    ],
)
def test_hdf5_codecs_round_trip(tmp_path, compression):
    net = izhikevich_network()
    before = arrays_of(net)
    path = tmp_path / "c.h5"
    checkpoint.save(path, net, compression=compression)
    with h5py.File(path, "r") as f:
        dataset = f["populations/pop0/v"]
        assert dataset.chunks is not None
        if compression == "lzf":
            assert dataset.compression == "lzf"
        if isinstance(compression, dict):
            assert dataset.fletcher32 and dataset.compression == "gzip"
    for array in net.populations["pop0"]._values.values():
        array[...] = 0
    checkpoint.load(path, net)
    assert_same_arrays(before, arrays_of(net))


def test_compression_shrinks_mostly_zero_traces(tmp_path):
    net = checkpoint.Network()
    net.add_population("p", 200_000, variables={"trace": np.zeros(200_000)})
    checkpoint.save(tmp_path / "raw.h5", net)
    checkpoint.save(tmp_path / "z.h5", net, compression="gzip")
    assert (tmp_path / "z.h5").stat().st_size * 20 < (tmp_path / "raw.h5").stat().st_size


def test_unknown_or_unfit_compression(tmp_path):
    net = izhikevich_network()
    with pytest.raises(UnsupportedFormatError, match="unknown compression"):
        checkpoint.save(tmp_path / "c.h5", net, compression="rar")
    with pytest.raises(UnsupportedFormatError, match="npz format cannot compress with .zstd.; it supports gzip"):
        checkpoint.save(tmp_path / "c.npz", net, compression="zstd")
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_on_request(tmp_path, capsys):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "n.h5", net, progress=True)
    checkpoint.load(tmp_path / "n.h5", net, progress=True)
    err = capsys.readouterr().err
    assert "saving n.h5" in err and "loading n.h5" in err


def test_no_progress_bar_off_a_terminal(tmp_path, capsys):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "n.h5", net)
    checkpoint.load(tmp_path / "n.h5", net, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("fmt", ["npz", "h5"])
def test_an_array_over_4_gib(tmp_path, fmt):
    """npz needs ZIP64 past 4 GiB and HDF5 64-bit sizes; both must hold."""
    n = (4 << 30) + 4099
    net = checkpoint.Network(dt=1.0)
    pattern = np.arange(251, dtype=np.uint8)
    big = np.resize(pattern, n)  # a period that does not divide 4 GiB, so an offset error shows
    net.add_population("big", n, variables={"x": big})
    path = tmp_path / f"big.{fmt}"
    checkpoint.save(path, net)
    assert path.stat().st_size > n
    del big, net
    state = checkpoint.read(path)  # checksums verified over all of it
    x = state.populations["big"]["x"]
    assert x.shape == (n,)
    for start in (0, (4 << 30) - 7, n - 251):
        assert np.array_equal(x[start : start + 251], np.roll(pattern, -(start % 251))[: len(x[start : start + 251])])


@pytest.mark.parametrize(
    "name, compression, message",
    [
        ("c.txt", "gzip", "text format cannot compress"),
        ("c.txt.gz", "zstd", "cannot compress with 'zstd'"),
        ("c.mat", "lzf", "mat format cannot compress"),
        ("c.npz", "blosc", "npz format cannot compress"),
        ("c.h5", "gzip:99", "no level 99"),
        ("c.h5", "gzip:x", "unknown compression 'gzip:x'"),
        ("c.h5", {"codec": "bz2"}, "unknown compression {'codec': 'bz2'}"),
        ("c.h5", 3, "unknown compression 3"),
    ],
)
def test_compression_a_format_cannot_do_is_refused_before_any_file_is_made(tmp_path, name, compression, message):
    """One parse, before the temporary file exists: the error names the
    user's file, never a hidden temporary, and nothing is written."""
    with pytest.raises(UnsupportedFormatError, match=message) as info:
        checkpoint.save(tmp_path / name, izhikevich_network(), compression=compression)
    assert str(info.value).startswith(str(tmp_path / name) + ":")
    assert os.listdir(tmp_path) == []


def test_gzip_text_takes_a_gzip_level(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "fast.txt.gz", net, compression="gzip:1")
    checkpoint.save(tmp_path / "small.txt.gz", net, compression="gzip:9")
    assert os.path.getsize(tmp_path / "small.txt.gz") < os.path.getsize(tmp_path / "fast.txt.gz")
