"""Matching by name, skips and keeps, strict mode, mismatches, rollback."""

import numpy as np
import pytest
import scipy.sparse

import checkpoint
from checkpoint import CheckpointWarning, StructureMismatchError
from helpers import arrays_of, assert_same_arrays, izhikevich_network


def test_skipped_and_kept_are_reported_and_warned(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "n.h5", net)
    other = izhikevich_network()
    del other.populations["pop0"]._values["u"]  # in the file, not in the model
    other.populations["pop1"]._add("g", np.zeros(10), "variable", "neuron")  # in the model only
    other.populations["pop1"].g[:] = 7.0
    with pytest.warns(CheckpointWarning) as caught:
        report = checkpoint.load(tmp_path / "n.h5", other)
    assert report.skipped == ["pop0.u"]
    assert report.kept == ["pop1.g"]
    assert np.all(other.populations["pop1"].g == 7.0)
    messages = " ".join(str(w.message) for w in caught)
    assert "pop0.u" in messages and "pop1.g" in messages
    text = str(report)
    assert "pop0.u" in text and "pop1.g" in text and "restored" in text


def test_objects_missing_on_either_side(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "n.npz", net)
    other = izhikevich_network()
    other.populations["extra"] = other.populations.pop("pop1")
    object.__setattr__(other.populations["extra"], "name", "extra")
    with pytest.warns(CheckpointWarning):
        report = checkpoint.load(tmp_path / "n.npz", other)
    assert "pop1.v" in report.skipped and "extra.v" in report.kept


def test_strict_turns_skips_into_errors_and_changes_nothing(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "n.h5", net)
    other = izhikevich_network(seed=3)
    del other.populations["pop0"]._values["u"]
    before = arrays_of(other)
    with pytest.raises(StructureMismatchError, match="strict"):
        checkpoint.load(tmp_path / "n.h5", other, strict=True)
    assert_same_arrays(before, arrays_of(other))


def test_population_size_mismatch_changes_nothing(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "n.h5", net)
    other = izhikevich_network(seed=4, n_inh=11)
    before = arrays_of(other)
    with pytest.raises(StructureMismatchError) as info:
        checkpoint.load(tmp_path / "n.h5", other)
    assert "pop1" in str(info.value) and "n.h5" in str(info.value)
    assert_same_arrays(before, arrays_of(other))


def test_scope_and_dtype_mismatch_are_errors(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "n.h5", net)
    other = izhikevich_network()
    other.populations["pop0"]._values["a"] = np.full(40, 0.02)  # global in the file
    other.populations["pop0"]._scopes["a"] = "neuron"
    with pytest.raises(StructureMismatchError, match="pop0.a"):
        checkpoint.load(tmp_path / "n.h5", other)
    other = izhikevich_network()
    other.populations["pop0"]._values["last_spike"] = np.zeros(40, np.int8)  # int64 in the file
    with pytest.raises(StructureMismatchError, match="last_spike"):
        checkpoint.load(tmp_path / "n.h5", other)


def test_safe_dtype_widening_is_allowed(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "n.h5", net)
    other = izhikevich_network()
    other.projections["proj0"]._values["w"] = np.zeros(other.projections["proj0"].nnz)  # float64
    checkpoint.load(tmp_path / "n.h5", other)
    assert np.array_equal(other.projections["proj0"].w, net.projections["proj0"].w.astype(np.float64))


def test_connectivity_is_rebuilt_from_the_file(tmp_path):
    net = izhikevich_network(seed=1)
    checkpoint.save(tmp_path / "n.h5", net)
    other = izhikevich_network(seed=2)  # other random connectivity
    assert other.projections["proj0"].nnz != net.projections["proj0"].nnz or not np.array_equal(
        other.projections["proj0"].indices, net.projections["proj0"].indices
    )
    checkpoint.load(tmp_path / "n.h5", other)
    assert_same_arrays(arrays_of(net), arrays_of(other))


def test_connectivity_rewired_in_place_is_seen_by_the_next_load(tmp_path):
    """A script may rewire a projection in place: a load compares the file's
    connectivity with the arrays as they are now, not as they were."""
    net = izhikevich_network(seed=1)
    path = tmp_path / "n.npz"
    checkpoint.save(path, net)
    saved = arrays_of(net)
    checkpoint.load(path, net)
    proj = net.projections["proj0"]
    proj.indices[:] = proj.indices[::-1].copy()  # a rewiring that keeps the synapse count
    checkpoint.load(path, net)
    assert_same_arrays(saved, arrays_of(net))


def test_connectivity_change_with_a_kept_synaptic_variable_is_an_error(tmp_path):
    net = izhikevich_network(seed=1)
    checkpoint.save(tmp_path / "n.h5", net)
    other = izhikevich_network(seed=2)
    proj = other.projections["proj0"]
    proj._add("eligibility", np.zeros(proj.nnz), "variable", "synapse")
    before = arrays_of(other)
    with pytest.raises(StructureMismatchError, match="eligibility"):
        checkpoint.load(tmp_path / "n.h5", other)
    assert_same_arrays(before, arrays_of(other))


def test_projection_shape_mismatch(tmp_path):
    net = checkpoint.Network()
    a, b = net.add_population("a", 3), net.add_population("b", 4)
    net.add_projection("ab", a, b, connectivity=scipy.sparse.csr_matrix(np.ones((4, 3))))
    checkpoint.save(tmp_path / "n.npz", net, populations=False)
    other = checkpoint.Network()
    a, b = other.add_population("a", 3), other.add_population("b", 5)
    other.add_projection("ab", a, b)
    with pytest.raises(StructureMismatchError, match="ab"):
        checkpoint.load(tmp_path / "n.npz", other)


def test_a_failure_while_applying_puts_everything_back(tmp_path, monkeypatch):
    from checkpoint.adapters.embedded import EmbeddedAdapter

    net = izhikevich_network(seed=1)
    net.step = 99
    checkpoint.save(tmp_path / "n.h5", net)
    other = izhikevich_network(seed=2)  # different connectivity, values, clock, rng
    before = arrays_of(other)

    def broken(self, name, rng):
        raise RuntimeError("the simulator refused the generator state")

    monkeypatch.setattr(EmbeddedAdapter, "restore_generator", broken)
    with pytest.raises(RuntimeError):
        checkpoint.load(tmp_path / "n.h5", other)
    assert_same_arrays(before, arrays_of(other))


def test_dt_difference_warns(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "n.h5", net)
    other = izhikevich_network()
    other.dt = 0.1
    with pytest.warns(CheckpointWarning, match="dt"):
        checkpoint.load(tmp_path / "n.h5", other)


def test_single_object_without_a_match(tmp_path):
    net = izhikevich_network()
    checkpoint.save(tmp_path / "n.h5", net)
    with pytest.raises(StructureMismatchError, match="no population named"):
        checkpoint.load(tmp_path / "n.h5", checkpoint.Network().add_population("zzz", 3))


def test_unsupported_object():
    with pytest.raises(checkpoint.UnsupportedObjectError, match="dict"):
        checkpoint.save("x.h5", {"not": "a network"})


def test_swap_contents_exchanges_large_arrays():
    from checkpoint.restore import swap_contents

    a, b = np.arange(10_000_001.0), np.zeros(10_000_001)
    swap_contents(a, b, chunk=1 << 20)
    assert b[-1] == 10_000_000.0 and a.sum() == 0.0


def test_a_load_with_nothing_in_common_moves_neither_clock_nor_generator(tmp_path):
    other = checkpoint.Network(dt=0.5, seed=9)
    other.add_population("elsewhere", 3, variables={"v": 1.0})
    other.step = 100
    checkpoint.save(tmp_path / "other.h5", other)
    net = izhikevich_network()
    net.step = 7
    rng_state = net.rng.bit_generator.state
    with pytest.warns(CheckpointWarning) as record:
        report = checkpoint.load(tmp_path / "other.h5", net)
    assert any("no population or projection in common" in str(w.message) for w in record)
    assert net.step == 7 and net.rng.bit_generator.state == rng_state
    assert report.restored == [] and "step" in report.skipped
    with pytest.raises(StructureMismatchError), pytest.warns(CheckpointWarning):
        checkpoint.load(tmp_path / "other.h5", net, strict=True)


def test_save_writes_a_state_read_and_edited(tmp_path):
    net = izhikevich_network()
    net.step = 12
    checkpoint.save(tmp_path / "a.h5", net, metadata={"who": "me"})
    state = checkpoint.read(tmp_path / "a.h5")
    state.populations["pop0"].arrays["v"] = np.full(40, -70.0)
    checkpoint.save(tmp_path / "b.npz", state)
    again = checkpoint.read(tmp_path / "b.npz")
    assert again.step == 12 and again.meta["user"] == {"who": "me"}
    fresh = izhikevich_network(seed=4)
    checkpoint.load(tmp_path / "b.npz", fresh)
    assert np.all(fresh.populations["pop0"].v == -70.0) and fresh.step == 12
    with checkpoint.read(tmp_path / "a.h5", lazy=True) as lazy:  # lazy arrays are read as they are written
        checkpoint.save(tmp_path / "c.mat", lazy, projections=False, metadata={"who": "you"})
    c = checkpoint.read(tmp_path / "c.mat")
    assert not c.projections and c.meta["user"] == {"who": "you"}
    assert np.array_equal(c.populations["pop0"]["v"], net.populations["pop0"].v)
