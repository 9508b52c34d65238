"""save_parameters / load_parameters: ANNarchy's JSON layout."""

import json

import numpy as np
import pytest

import checkpoint
from checkpoint import CheckpointWarning, CorruptCheckpointError
from helpers import arrays_of, assert_same_arrays, izhikevich_network


def test_layout_holds_current_global_values(tmp_path):
    net = izhikevich_network()
    net.populations["pop0"].a = 0.03  # current, not initial
    checkpoint.save_parameters(tmp_path / "p.json", net, network={"pop1_r_min": 0.1})
    document = json.loads((tmp_path / "p.json").read_text())
    assert set(document) == {"populations", "projections", "network"}
    assert document["populations"]["pop0"] == {"a": 0.03, "b": 0.2, "c": -65.0, "d": 8.0}
    assert document["projections"]["proj0"] == {
        "tau_plus": 20.0,
        "tau_minus": 60.0,
        "A_plus": 2e-4,
        "w_max": 0.03,
        "delay": 1.0,
    }
    assert document["network"] == {"pop1_r_min": 0.1}


def test_load_sets_matching_globals_and_returns_network(tmp_path):
    net = izhikevich_network()
    net.populations["pop1"].d = 4.5
    net.projections["proj0"].tau_plus = 15.0
    checkpoint.save_parameters(tmp_path / "p.json", net, network={"k": [1, 2]})
    fresh = izhikevich_network()
    values = checkpoint.load_parameters(tmp_path / "p.json", fresh)
    assert values == {"k": [1, 2]}
    assert fresh.populations["pop1"].d == 4.5 and fresh.projections["proj0"].tau_plus == 15.0


def test_unknown_objects_never_land_elsewhere(tmp_path):
    net = izhikevich_network()
    document = {
        "populations": {"pop0": {"a": 0.5}, "ghost": {"a": 9.0, "b": 9.0}},
        "projections": {"proj0": {"nope": 1.0}},
        "network": {},
    }
    (tmp_path / "p.json").write_text(json.dumps(document))
    with pytest.warns(CheckpointWarning, match="ghost.a"):
        checkpoint.load_parameters(tmp_path / "p.json", net)
    assert net.populations["pop0"].a == 0.5
    assert net.populations["pop1"].a == 0.1 and net.populations["pop1"].b == 0.2


def test_global_only_false_sets_local_parameters(tmp_path):
    net = checkpoint.Network()
    pop = net.add_population("p", 4, parameters={"tau": np.arange(4.0), "g": 1.0})
    (tmp_path / "p.json").write_text(json.dumps({"populations": {"p": {"tau": 7.0, "g": 2.0}}}))
    with pytest.warns(CheckpointWarning, match="p.tau"):
        checkpoint.load_parameters(tmp_path / "p.json", net)
    assert pop.tau.tolist() == [0.0, 1.0, 2.0, 3.0] and pop.g == 2.0
    checkpoint.load_parameters(tmp_path / "p.json", net, global_only=False)
    assert pop.tau.tolist() == [7.0] * 4


def test_variables_are_not_parameters(tmp_path):
    net = izhikevich_network()
    (tmp_path / "p.json").write_text(json.dumps({"populations": {"pop0": {"v": 0.0}}}))
    v = net.populations["pop0"].v.copy()
    with pytest.warns(CheckpointWarning):
        checkpoint.load_parameters(tmp_path / "p.json", net, global_only=False)
    assert np.array_equal(net.populations["pop0"].v, v)


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", '{"populations": {"pop0": {"a": "x"}}}', '{"populations": {"pop0": {"a": 0.5, "b": [1]}}}'],
)
def test_bad_json_changes_nothing(tmp_path, content):
    net = izhikevich_network()
    (tmp_path / "p.json").write_text(content)
    before = arrays_of(net)
    with pytest.raises(CorruptCheckpointError, match="p.json"):
        checkpoint.load_parameters(tmp_path / "p.json", net)
    assert_same_arrays(before, arrays_of(net))


def test_integer_parameter_refuses_a_fraction(tmp_path):
    net = checkpoint.Network()
    net.add_population("p", 2, parameters={"n": 3})
    (tmp_path / "p.json").write_text(json.dumps({"populations": {"p": {"n": 2.5}}}))
    with pytest.raises(CorruptCheckpointError, match="p.n"):
        checkpoint.load_parameters(tmp_path / "p.json", net)


def test_population_alone(tmp_path):
    net = izhikevich_network()
    checkpoint.save_parameters(tmp_path / "p.json", net.populations["pop1"])
    document = json.loads((tmp_path / "p.json").read_text())
    assert list(document["populations"]) == ["pop1"] and document["projections"] == {}
