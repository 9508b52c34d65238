"""save/load/read of the embedded network in every format."""

import warnings

import numpy as np
import pytest
import scipy.sparse

import checkpoint
from helpers import FORMATS, arrays_of, assert_same_arrays, izhikevich_network, same_bits


def scramble(net):
    """Change every value, the clock and the generator."""
    for section in (net.populations, net.projections):
        for group in section.values():
            for array in group._values.values():
                array[...] = np.logical_not(array) if array.dtype == bool else array + 1
    net.step += 17
    net.rng.random(5)


@pytest.mark.parametrize("suffix", FORMATS)
def test_whole_network_round_trip_is_bit_exact(tmp_path, suffix):
    net = izhikevich_network()
    net.step = 123
    net.rng.random(7)
    before = arrays_of(net)
    path = tmp_path / f"net.{suffix}"
    checkpoint.save(path, net)
    scramble(net)
    report = checkpoint.load(path, net)
    assert_same_arrays(before, arrays_of(net))
    assert report.kept == [] and report.skipped == []
    assert "pop0.v" in report.restored and "proj0.w" in report.restored
    assert report.time == pytest.approx(123 * 0.5) and report.step == 123
    assert net.time == pytest.approx(61.5)


@pytest.mark.parametrize("suffix", FORMATS)
def test_rng_draws_the_same_numbers_after_load(tmp_path, suffix):
    net = izhikevich_network(seed=5)
    net.rng.normal(size=3)
    checkpoint.save(tmp_path / f"n.{suffix}", net)
    expected = net.rng.normal(size=10)
    fresh = izhikevich_network(seed=99)
    checkpoint.load(tmp_path / f"n.{suffix}", fresh)
    assert same_bits(fresh.rng.normal(size=10), expected)


@pytest.mark.parametrize("suffix", ["h5", "npz", "mat", "txt.gz"])
def test_single_population_and_projection(tmp_path, suffix):
    net = izhikevich_network()
    pop, proj = net.populations["pop1"], net.projections["proj0"]
    checkpoint.save(tmp_path / f"pop1.{suffix}", pop)
    checkpoint.save(tmp_path / f"proj.{suffix}", proj)
    state = checkpoint.read(tmp_path / f"pop1.{suffix}")
    assert list(state.populations) == ["pop1"] and not state.projections and not state.rng
    v, w = pop.v.copy(), proj.w.copy()
    pop.v[:] = 0.0
    proj.w[:] = 0.0
    net.step = 5
    other = net.populations["pop0"].v.copy()
    report = checkpoint.load(tmp_path / f"pop1.{suffix}", pop)
    checkpoint.load(tmp_path / f"proj.{suffix}", proj)
    assert same_bits(pop.v, v) and same_bits(proj.w, w)
    assert net.step == 5, "loading one object leaves the clock alone"
    assert same_bits(net.populations["pop0"].v, other)
    assert report.kept == [] and report.skipped == []


def test_single_object_file_loads_into_a_renamed_object(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "p.h5", net.populations["pop1"])
    other = checkpoint.Network()
    target = other.add_population(
        "renamed",
        10,
        variables={"v": 0.0, "u": 0.0, "spiked": False},
        parameters={"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0},
    )
    checkpoint.load(tmp_path / "p.h5", target)
    assert same_bits(target.v, net.populations["pop1"].v)


def test_population_file_loads_into_the_network_by_name(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "p.npz", net.populations["pop1"])
    v = net.populations["pop1"].v.copy()
    net.populations["pop1"].v[:] = 3.0
    report = checkpoint.load(tmp_path / "p.npz", net)
    assert same_bits(net.populations["pop1"].v, v)
    assert report.kept == [] and report.skipped == []


@pytest.mark.parametrize("suffix", ["h5", "npz", "mat", "txt"])
def test_populations_false_and_projections_false(tmp_path, suffix):
    net = izhikevich_network()
    checkpoint.save(tmp_path / f"w.{suffix}", net, populations=False)
    state = checkpoint.read(tmp_path / f"w.{suffix}")
    assert not state.populations and list(state.projections) == ["proj0"]
    checkpoint.save(tmp_path / f"all.{suffix}", net)
    w, v = net.projections["proj0"].w.copy(), net.populations["pop0"].v.copy()
    net.projections["proj0"].w[:] = 0
    net.populations["pop0"].v[:] = 0
    checkpoint.load(tmp_path / f"all.{suffix}", net, populations=False)
    assert same_bits(net.projections["proj0"].w, w)
    assert np.all(net.populations["pop0"].v == 0), "populations=False leaves them untouched"
    checkpoint.load(tmp_path / f"all.{suffix}", net, projections=False)
    assert same_bits(net.populations["pop0"].v, v)


def test_read_gives_arrays_connectivity_and_scipy(tmp_path):
    net = izhikevich_network()
    net.step = 40
    checkpoint.save(tmp_path / "n.h5", net, metadata={"experiment": "x", "trial": 3})
    state = checkpoint.read(tmp_path / "n.h5")
    assert isinstance(state, checkpoint.NetworkState)
    proj = net.projections["proj0"]
    assert same_bits(state.populations["pop0"]["v"], net.populations["pop0"].v)
    assert same_bits(state.projections["proj0"]["w"], proj.w)
    assert same_bits(state.projections["proj0"].indptr, proj.indptr)
    assert same_bits(state.projections["proj0"].indices, proj.indices)
    assert state.projections["proj0"].shape == (10, 40)
    matrix = state.projections["proj0"].to_scipy("w")
    assert isinstance(matrix, scipy.sparse.csr_matrix) and matrix.shape == (10, 40)
    assert np.array_equal(matrix.toarray(), proj.to_scipy("w").toarray())
    assert state.projections["proj0"].to_scipy("tau_plus").data.tolist() == [20.0] * proj.nnz
    assert state.time == pytest.approx(20.0) and state.step == 40
    assert state.meta["user"] == {"experiment": "x", "trial": 3}
    assert state.meta["simulator"]["name"] == "checkpoint.Network"
    assert state.populations["pop0"].info["last_spike"].kind == "internal"
    assert state.projections["proj0"].info["x_post"].scope == "post"


def test_lazy_read_slices_hdf5(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "n.h5", net)
    with checkpoint.read(tmp_path / "n.h5", lazy=True) as state:
        lazy = state.populations["pop0"]["v"]
        assert same_bits(lazy[3:7], net.populations["pop0"].v[3:7])
        assert same_bits(np.asarray(lazy), net.populations["pop0"].v)


def test_multi_synapse_pairs_keep_their_order(tmp_path):
    net = checkpoint.Network()
    a = net.add_population("a", 2)
    indptr, indices = np.array([0, 3, 4]), np.array([1, 1, 0, 1])
    proj = net.add_projection(
        "a->a", a, a, connectivity=(indptr, indices), variables={"w": np.array([1.0, 2.0, 3.0, 4.0])}
    )
    for suffix in ("h5", "mat", "txt"):
        checkpoint.save(tmp_path / f"m.{suffix}", net)
        state = checkpoint.read(tmp_path / f"m.{suffix}")
        assert state.projections["a->a"].indices.tolist() == [1, 1, 0, 1]
        assert state.projections["a->a"]["w"].tolist() == [1.0, 2.0, 3.0, 4.0]
        assert state.projections["a->a"].to_scipy("w").sum_duplicates() is None
    assert proj.nnz == 4


def test_paths_may_be_pathlike_or_str(tmp_path):
    net = izhikevich_network()
    checkpoint.save(str(tmp_path / "s.npz"), net)
    checkpoint.load(tmp_path / "s.npz", net)
    checkpoint.read(str(tmp_path / "s.npz"))


def test_format_argument_overrides_the_suffix(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "state.bin", net, format="h5")
    checkpoint.load(tmp_path / "state.bin", net, format="hdf5")
    assert checkpoint.read(tmp_path / "state.bin", format="h5").step == 0


@pytest.mark.parametrize("suffix", ["h5", "npz", "mat", "txt.gz"])
def test_compression_round_trips(tmp_path, suffix):
    net = izhikevich_network()
    before = arrays_of(net)
    checkpoint.save(tmp_path / f"c.{suffix}", net, compression="gzip")
    scramble(net)
    checkpoint.load(tmp_path / f"c.{suffix}", net)
    assert_same_arrays(before, arrays_of(net))


def test_no_warning_on_a_clean_restore(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "n.h5", net)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checkpoint.load(tmp_path / "n.h5", net)
