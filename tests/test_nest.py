"""The NEST adapter against the real NEST 3 kernel (installed by `make test`).

NEST keeps one kernel per process: each test builds its network afresh
(nest_sim.build calls ResetKernel).  What NEST does not let a script reach
is lost on restart; ``test_fresh_process_restart_loses_only_what_nest_hides``
measures how much.
"""

import json
import os
import subprocess
import sys

import nest_sim
from adapter_contract import AdapterContract
import numpy as np
import pytest

import checkpoint
from checkpoint import StructureMismatchError, UnsupportedObjectError
from checkpoint.adapters import adapter_for
from checkpoint.adapters import nest as nest_adapter
from checkpoint.adapters.nest import NESTAdapter
from checkpoint.formats import read_state, write_state
from helpers import assert_same_capture, capture_copy

HERE = os.path.dirname(os.path.abspath(__file__))
pytestmark = pytest.mark.filterwarnings("ignore::checkpoint.CheckpointWarning")
STDP = "stdp_synapse iaf_psc_alpha@1->iaf_psc_alpha@1"


def captured(obj):
    state = adapter_for(obj).capture()
    return capture_copy(state, repr(state.meta["time"]))


@pytest.mark.parametrize("fmt", ["h5", "npz", "mat", "txt.gz"])
def test_every_format_restores_everything_into_other_connectivity(tmp_path, fmt):
    nest, *_ = nest_sim.build(seed=5)
    nest.Simulate(50.0)
    before = captured(nest)
    checkpoint.save(tmp_path / f"n.{fmt}", nest)
    nest, *_ = nest_sim.build(seed=9)
    assert captured(nest)[f"projections/{STDP}/indices"].shape != before[f"projections/{STDP}/indices"].shape
    report = checkpoint.load(tmp_path / f"n.{fmt}", nest)
    assert report.time == pytest.approx(50.0) and report.step == 500
    # reseeded from the file's seed and step: not a replay of the first run's numbers
    assert nest.rng_seed == nest_adapter.continuation_seed(5, 500) not in (5, 9)
    assert f"{STDP}.weight" in report.restored and "iaf_psc_alpha@1.V_m" in report.restored
    assert_same_capture(before, captured(nest))


def test_what_is_captured(tmp_path):
    nest, exc, inh, _ = nest_sim.build()
    nest.Simulate(20.0)
    checkpoint.save(tmp_path / "n.h5", nest)
    state = checkpoint.read(tmp_path / "n.h5")
    assert sorted(state.populations) == ["iaf_psc_alpha@1", "iaf_psc_exp@81", "poisson_generator@101"]
    assert not [name for name in state.projections if "spike_recorder" in name]  # recorders left out
    assert len(state.projections) == 5
    exc_state = state.populations["iaf_psc_alpha@1"]
    np.testing.assert_array_equal(exc_state["V_m"], exc.get("V_m"))
    assert exc_state.info["V_m"].kind == "variable" and exc_state.info["C_m"].kind == "parameter"
    assert state.populations["poisson_generator@101"]["rate"][0] == 8000.0
    proj = state.projections[STDP]
    conns = nest.GetConnections(source=exc, target=exc, synapse_model="stdp_synapse")
    got = conns.get(["source", "target", "weight", "delay", "Kplus"])
    dense = proj.to_scipy("weight").toarray()
    assert proj.nnz == len(conns)
    np.testing.assert_array_equal(dense[np.array(got["target"]) - 1, np.array(got["source"]) - 1], got["weight"])
    np.testing.assert_array_equal(np.sort(proj["delay"]), np.sort(got["delay"]))
    assert proj.info["delay"].unit == "ms" and "Kplus" in proj.arrays
    assert state.meta["nest"]["rng_seed"] == 5 and state.meta["dt"] == pytest.approx(0.1)


def test_one_population_and_one_projection(tmp_path):
    nest, exc, _, _ = nest_sim.build()
    nest.Simulate(30.0)
    stdp = nest.GetConnections(source=exc, target=exc, synapse_model="stdp_synapse")
    checkpoint.save(tmp_path / "exc.npz", exc)
    checkpoint.save(tmp_path / "stdp.h5", stdp)
    v, pairs_weights = exc.get("V_m"), sorted(zip(stdp.get("source"), stdp.get("target"), stdp.get("weight")))
    nest, exc, _, _ = nest_sim.build(seed=9)
    checkpoint.load(tmp_path / "exc.npz", exc)
    checkpoint.load(tmp_path / "stdp.h5", nest.GetConnections(source=exc, target=exc, synapse_model="stdp_synapse"))
    stdp = nest.GetConnections(source=exc, target=exc, synapse_model="stdp_synapse")
    assert exc.get("V_m") == v
    assert sorted(zip(stdp.get("source"), stdp.get("target"), stdp.get("weight"))) == pairs_weights


def test_checkpointer_loop_counts_time_on_from_the_file(tmp_path):
    nest, *_ = nest_sim.build()
    with checkpoint.Checkpointer(tmp_path / "ck", nest, every_ms=20.0, background=False) as ckpt:
        for _ in range(5):
            nest.Simulate(10.0)
            ckpt.maybe_save()
    nest, *_ = nest_sim.build(seed=9)
    with checkpoint.Checkpointer(tmp_path / "ck", nest, every_ms=20.0) as ckpt:
        assert ckpt.restore_latest().time == pytest.approx(40.0)
        assert nest.biological_time == 0.0  # NEST's own clock cannot be set
        assert adapter_for(nest).clock() == (pytest.approx(40.0), 400)
        nest.Simulate(20.0)
        ckpt.maybe_save()
    assert checkpoint.read(ckpt.latest()).time == pytest.approx(60.0)
    nest_sim.build()  # ResetKernel forgets the offset
    assert nest_adapter.time_offset() == 0.0 and adapter_for(nest).clock() == (0.0, 0)


def test_fresh_process_restart_loses_only_what_nest_hides(tmp_path):
    """Straight 200 ms against 100 ms, save, a new process with other
    connectivity, load, 100 ms.  The state right after the load is the saved
    one bit for bit; the continuation differs by what NEST does not expose
    (random generator state, spikes in flight, synaptic currents, spike
    history), measured here."""
    for mode in ("straight", "first", "resume"):
        done = subprocess.run(
            [sys.executable, os.path.join(HERE, "nest_sim.py"), mode, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    straight, first, resumed = (np.load(tmp_path / f"{m}.npz") for m in ("straight", "first", "resume"))
    assert resumed["time"] == 100.0
    assert not np.array_equal(resumed["other_pairs"], straight["pairs"].shape)  # it was rebuilt
    np.testing.assert_array_equal(resumed["loaded_v"], first["v"])
    np.testing.assert_array_equal(resumed["loaded_weight"], first["weight"])
    np.testing.assert_array_equal(resumed["pairs"], straight["pairs"])
    straight_spikes = int(np.sum(straight["times"] >= 100.0))
    rate_error = abs(len(resumed["times"]) - straight_spikes) / straight_spikes
    weight_drift = np.abs(straight["weight"] - resumed["weight"]).mean()
    weight_change = np.abs(straight["weight"] - first["weight"]).mean()
    print(
        f"NEST restart: spikes {len(resumed['times'])} vs {straight_spikes} ({rate_error:.1%}); "
        f"weights off by {weight_drift:.3f} against a change of {weight_change:.3f}"
    )
    assert rate_error < 0.25
    assert weight_drift < 0.3 * weight_change


class TestNESTContract(AdapterContract):
    """The adapter contract; NEST has one kernel per process, which make() resets."""

    restored = (f"{STDP}.weight", f"{STDP}.delay", "iaf_psc_alpha@1.V_m")

    def make(self, seed):
        return nest_sim.build(seed=4 + seed)[0]

    def advance(self, model):
        model.Simulate(20.0)

    def captured(self, model):
        return captured(model)

    def fail_midway(self, monkeypatch, model):
        def fail(self, plan):
            raise RuntimeError("injected failure after every population and projection")

        monkeypatch.setattr(NESTAdapter, "restore_clock", fail)

    def parts(self, model):
        exc = model.NodeCollection(list(range(1, 81)))  # nest_sim.build: 80 iaf_psc_alpha first
        return exc, model.GetConnections(source=exc, target=exc, synapse_model="stdp_synapse")

    def unsupported(self, model):
        spikes = model.GetNodes({"model": "spike_recorder"})
        return [spikes, model.GetNodes()]  # a recorder; several models at once


def test_a_kernel_of_another_size_changes_nothing(tmp_path):
    nest, *_ = nest_sim.build()
    nest.Simulate(10.0)
    checkpoint.save(tmp_path / "n.h5", nest)
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.Create("iaf_psc_alpha", 79)
    before = captured(nest)
    with pytest.raises(StructureMismatchError) as info:
        checkpoint.load(tmp_path / "n.h5", nest)
    assert "n.h5" in str(info.value)
    assert_same_capture(before, captured(nest))


@pytest.mark.parametrize(
    "section,name,var,value",
    [
        ("projections", STDP, "delay", 0.0),  # below the resolution
        ("populations", "iaf_psc_alpha@1", "C_m", -1.0),  # a negative capacitance
    ],
)
def test_values_nest_refuses_are_an_error_and_change_nothing(tmp_path, section, name, var, value):
    nest, *_ = nest_sim.build(seed=5)
    nest.Simulate(20.0)
    state = read_state(write_and_read(tmp_path, nest))
    getattr(state, section)[name].arrays[var][-1] = value
    write_state(tmp_path / "forged.h5", state)
    nest, *_ = nest_sim.build(seed=9)
    before = captured(nest)
    with pytest.raises(StructureMismatchError, match="NEST refused") as info:
        checkpoint.load(tmp_path / "forged.h5", nest)
    assert "forged.h5" in str(info.value) and name in str(info.value)
    assert_same_capture(before, captured(nest))
    assert nest_adapter.time_offset() == 0.0


def write_and_read(tmp_path, nest):
    checkpoint.save(tmp_path / "n.h5", nest)
    return tmp_path / "n.h5"


def test_failure_midway_puts_everything_back(tmp_path, monkeypatch):
    nest, *_ = nest_sim.build(seed=5)
    nest.Simulate(30.0)
    checkpoint.save(tmp_path / "n.h5", nest)
    nest, *_ = nest_sim.build(seed=9)
    nest.Simulate(10.0)
    before, seed = captured(nest), nest.rng_seed

    def fail(self, plan):
        raise RuntimeError("injected")

    monkeypatch.setattr(NESTAdapter, "restore_clock", fail)  # after every population and projection
    with pytest.raises(RuntimeError, match="injected"):
        checkpoint.load(tmp_path / "n.h5", nest)
    assert_same_capture(before, captured(nest))
    assert nest.rng_seed == seed and nest_adapter.time_offset() == 0.0


def test_unsupported_nest_objects(tmp_path):
    nest, exc, inh, spikes = nest_sim.build()
    with pytest.raises(UnsupportedObjectError):
        checkpoint.save(tmp_path / "s.h5", spikes)  # a recorder
    with pytest.raises(UnsupportedObjectError):
        checkpoint.save(tmp_path / "m.h5", exc + inh)  # two models
    with pytest.raises(UnsupportedObjectError):  # exc -> exc and exc -> inh: two projections
        checkpoint.save(tmp_path / "two.h5", nest.GetConnections(source=exc, synapse_model="stdp_synapse"))
    with pytest.raises(UnsupportedObjectError):  # two synapse models
        checkpoint.save(tmp_path / "models.h5", nest.GetConnections(target=exc))
    assert not list(tmp_path.iterdir())


def test_example_resumes_where_it_stopped(tmp_path):
    script = os.path.join(HERE, "..", "examples", "nest_stdp.py")

    def run(duration):
        done = subprocess.run(
            [sys.executable, script, "--duration-ms", str(duration), "--folder", str(tmp_path / "ck")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout + done.stderr  # the resume is logged (standard error)

    assert "fresh start" in run(300)
    out = run(500)
    assert "resumed from" in out and "t=300 ms" in out and "done at t = 500.0 ms" in out
    with checkpoint.Checkpointer(tmp_path / "ck", nest_sim.build()[0]) as ckpt:
        assert checkpoint.read(ckpt.latest()).time == 500.0


def test_parameters_as_json_set_every_node(tmp_path):
    """NEST parameters are per node: save_parameters has none to write, and
    load_parameters sets a file value on every node with global_only=False."""
    nest, exc, _, _ = nest_sim.build()
    checkpoint.save_parameters(tmp_path / "p.json", nest, network={"note": "x"})
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["populations"]["iaf_psc_alpha@1"] == {} and saved["network"] == {"note": "x"}
    (tmp_path / "q.json").write_text(json.dumps({"populations": {"iaf_psc_alpha@1": {"tau_m": 12.0}}}))
    with pytest.warns(checkpoint.CheckpointWarning):
        checkpoint.load_parameters(tmp_path / "q.json", nest)  # per node: skipped
    assert exc.get("tau_m")[0] == 10.0
    checkpoint.load_parameters(tmp_path / "q.json", nest, global_only=False)
    assert set(exc.get("tau_m")) == {12.0}


def test_arrays_per_node_are_restored(tmp_path):
    """tau_syn of a multisynapse neuron is an array per node: it was dropped
    (an INFO log) and read [1, 1, 1, 1] after the load instead of [2, 20, 60, 100]."""

    def build(tau):
        nest, *_ = nest_sim.build()
        multi = nest.Create("iaf_psc_alpha_multisynapse", 4, params={"tau_syn": tau})
        return nest, multi

    nest, multi = build([2.0, 20.0, 60.0, 100.0])
    multi[1].set(tau_syn=[3.0, 30.0, 70.0, 110.0])  # one node its own
    expected = [list(t) for t in multi.get("tau_syn")]
    nest.Simulate(5.0)
    checkpoint.save(tmp_path / "multi.h5", nest)
    assert checkpoint.read(tmp_path / "multi.h5").populations[f"iaf_psc_alpha_multisynapse@{multi[0].global_id}"][
        "tau_syn"
    ].shape == (4, 4)
    nest, multi = build([1.0, 1.0, 1.0, 1.0])
    checkpoint.load(tmp_path / "multi.h5", nest)
    assert [list(t) for t in multi.get("tau_syn")] == expected
    nest.Simulate(5.0)


def test_devices_with_array_status_are_restored(tmp_path):
    """spike_generator and step_current_generator: their times and values,
    of another length in the rebuilt kernel, come back from the file."""

    def build(times, amplitude):
        nest, exc, *_ = nest_sim.build(seed=5)
        generators = nest.Create("spike_generator", 2)
        generators[0].set(spike_times=times[0])
        generators[1].set(spike_times=times[1])
        step = nest.Create(
            "step_current_generator", params={"amplitude_times": [10.0, 20.0], "amplitude_values": [amplitude, 0.0]}
        )
        nest.Connect(generators, exc)
        nest.Connect(step, exc)
        return nest, generators, step

    nest, generators, step = build([[1.0, 2.0, 30.0], [25.0]], 100.0)
    nest.Simulate(5.0)
    checkpoint.save(tmp_path / "gen.h5", nest)
    nest, generators, step = build([[7.0], []], 5.0)
    checkpoint.load(tmp_path / "gen.h5", nest)
    assert [list(t) for t in generators.get("spike_times")] == [[1.0, 2.0, 30.0], [25.0]]
    assert list(step.get("amplitude_values")) == [100.0, 0.0]
    nest.Simulate(30.0)


def test_recorders_events_are_saved_for_analysis_and_said_not_restorable(tmp_path):
    nest, exc, inh, spikes = nest_sim.build()
    nest.Simulate(50.0)
    events = spikes.get("events")
    with pytest.warns(checkpoint.CheckpointWarning, match="NEST cannot put events back"):
        checkpoint.save(tmp_path / "mon.h5", nest, monitors=True)
    recorder = checkpoint.read(tmp_path / "mon.h5").populations[f"spike_recorder@{spikes.global_id}"]
    assert len(events["times"]) > 0
    assert np.array_equal(recorder["events.times"], events["times"])
    assert np.array_equal(recorder["events.senders"], events["senders"])
    nest, exc, inh, spikes = nest_sim.build(seed=9)
    with pytest.warns(checkpoint.CheckpointWarning, match="skipped: spike_recorder"):
        report = checkpoint.load(tmp_path / "mon.h5", nest, monitors=True)
    assert any(name.startswith("spike_recorder") for name in report.skipped)
    assert spikes.get("n_events") == 0


def test_a_spatial_layers_positions_are_saved_and_checked(tmp_path):
    def build(shape):
        nest, *_ = nest_sim.build()
        return nest, nest.Create("iaf_psc_alpha", positions=nest.spatial.grid(shape=shape))

    nest, layer = build([3, 2])
    layer.V_m = -60.0
    checkpoint.save(tmp_path / "layer.h5", layer)
    saved = checkpoint.read(tmp_path / "layer.h5").populations[f"iaf_psc_alpha@{layer[0].global_id}"]
    assert np.array_equal(saved["positions"], np.asarray(nest.GetPosition(layer)))
    nest, layer = build([3, 2])
    checkpoint.load(tmp_path / "layer.h5", layer)
    assert set(layer.get("V_m")) == {-60.0}
    nest, layer = build([2, 3])  # the same size, other positions
    with pytest.raises(StructureMismatchError, match="spatial positions differ"):
        checkpoint.load(tmp_path / "layer.h5", layer)
    assert set(layer.get("V_m")) == {-70.0}


def _ported_network(seed, port):
    """Parrots: a Poisson source -> parrot A -> parrot B on ``port`` (a
    parrot repeats spikes of port 0 only), and A -> a multisynapse neuron
    on receptor 2, each pair drawn with probability 0.5 from ``seed``."""
    nest, *_ = nest_sim.build(seed=seed)
    a = nest.Create("parrot_neuron", 20)
    b = nest.Create("parrot_neuron", 20)
    multi = nest.Create("iaf_psc_alpha_multisynapse", 10, params={"tau_syn": [2.0, 20.0, 60.0]})
    source = nest.Create("poisson_generator", params={"rate": 500.0})
    nest.Connect(source, a)
    nest.Connect(a, b, {"rule": "pairwise_bernoulli", "p": 0.5}, syn_spec={"receptor_type": port})
    nest.Connect(a, multi, {"rule": "pairwise_bernoulli", "p": 0.5}, syn_spec={"receptor_type": 2})
    return nest, a, b, multi


def _ports(nest, source, target):
    status = nest.GetConnections(source=source, target=target).get(["source", "target", "receptor"])
    return sorted(zip(status["source"], status["target"], status["receptor"]))


def test_receptor_ports_are_saved_and_rebuilt(tmp_path):
    """Receptor ports were treated as identity and lost on a rebuild: parrots
    connected on port 1 came back on port 0 (no error, spikes they should
    ignore), and a multisynapse target refused the load."""
    nest, a, b, multi = _ported_network(seed=5, port=1)
    nest.Simulate(20.0)
    expected = (_ports(nest, a, b), _ports(nest, a, multi))
    assert {p for *_, p in expected[0]} == {1}
    checkpoint.save(tmp_path / "ports.h5", nest)
    nest, a, b, multi = _ported_network(seed=9, port=0)  # other pairs, the wrong port
    checkpoint.load(tmp_path / "ports.h5", nest)
    assert (_ports(nest, a, b), _ports(nest, a, multi)) == expected
    nest.Simulate(20.0)


def test_ports_that_differ_on_the_same_connections_are_rebuilt(tmp_path):
    nest, a, b, multi = _ported_network(seed=5, port=1)
    expected = _ports(nest, a, b)
    checkpoint.save(tmp_path / "ports.h5", nest)
    nest, a, b, multi = _ported_network(seed=5, port=0)  # the same pairs, the wrong port
    checkpoint.load(tmp_path / "ports.h5", nest)
    assert _ports(nest, a, b) == expected


def test_a_spike_generator_with_spike_times_loads_into_its_kernel(tmp_path):
    """NEST refuses a spike_generator's options unless set with its spike
    times; a load sets only what differs."""
    nest, exc, *_ = nest_sim.build(seed=5)
    generator = nest.Create("spike_generator", params={"spike_times": [1.0, 2.0, 3.0]})
    nest.Connect(generator, exc)
    nest.Simulate(5.0)
    checkpoint.save(tmp_path / "gen.h5", nest)
    report = checkpoint.load(tmp_path / "gen.h5", nest)
    assert report.time == pytest.approx(5.0)
    assert list(generator.get("spike_times")) == [1.0, 2.0, 3.0]


def _device_network(seed, connect=True):
    nest, exc, *_ = nest_sim.build(seed=seed)
    drive = nest.Create("poisson_generator", 3, params={"rate": 500.0})
    if connect:
        nest.Connect(drive, exc, {"rule": "pairwise_bernoulli", "p": 0.5})
    return nest, drive, exc


def test_connections_from_a_device_that_nest_cannot_delete_are_refused_before_any_change(tmp_path):
    nest, drive, exc = _device_network(seed=5)
    nest.Simulate(10.0)
    checkpoint.save(tmp_path / "dev.h5", nest)
    nest, drive, exc = _device_network(seed=9)  # other pairs: a rebuild would be needed
    before = captured(nest)
    with pytest.raises(StructureMismatchError, match="cannot delete connections from a device") as info:
        checkpoint.load(tmp_path / "dev.h5", nest)
    assert "dev.h5" in str(info.value)
    assert_same_capture(before, captured(nest))


def test_a_load_into_nodes_without_connections_makes_them(tmp_path):
    """The resume idiom: a script that knows it resumes creates the nodes
    and connects nothing; the load connects them (one array Connect per
    synapse model and pair), from neurons and from devices."""
    nest, drive, exc = _device_network(seed=5)
    nest.Simulate(10.0)
    expected = captured(nest)
    checkpoint.save(tmp_path / "run.h5", nest)
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.resolution = 0.1
    nest.Create("iaf_psc_alpha", 80)  # the nodes of nest_sim.build and _device_network, in order
    nest.Create("iaf_psc_exp", 20)
    nest.Create("poisson_generator")
    nest.Create("spike_recorder")
    nest.Create("poisson_generator", 3)
    report = checkpoint.load(tmp_path / "run.h5", nest)
    assert not [s for s in report.skipped if "->" in s], report.skipped
    assert_same_capture(expected, captured(nest))
    nest.Simulate(10.0)


def test_connections_to_recorders_are_said_not_saved(tmp_path):
    nest, exc, inh, spikes = nest_sim.build()
    with pytest.warns(checkpoint.CheckpointWarning, match=rf"recorders \(nodes {spikes.global_id}\) are not saved"):
        checkpoint.save(tmp_path / "n.h5", nest)


def test_what_nest_keeps_out_of_reach_is_said_at_save(tmp_path):
    nest, *_ = nest_sim.build()
    with pytest.warns(checkpoint.CheckpointWarning, match="NEST keeps some state out of reach"):
        checkpoint.save(tmp_path / "n.h5", nest)


def test_lengths_that_do_not_split_a_devices_array_are_refused_before_any_change(tmp_path):
    nest, exc, *_ = nest_sim.build(seed=5)
    generators = nest.Create("spike_generator", 2, params={"spike_times": [1.0, 2.0]})
    checkpoint.save(tmp_path / "gen.h5", nest)
    state = read_state(tmp_path / "gen.h5")
    name = f"spike_generator@{generators[0].global_id}"
    state.populations[name].arrays["spike_times.lengths"] = np.array([3, 3])  # 6 values claimed, 4 stored
    write_state(tmp_path / "forged.h5", state)  # every digest recomputed
    generators.set([{"spike_times": [5.0]}, {"spike_times": [6.0]}])
    before = [list(t) for t in generators.get("spike_times")]
    with pytest.raises(checkpoint.CorruptCheckpointError, match="does not split"):
        checkpoint.load(tmp_path / "forged.h5", nest)
    assert [list(t) for t in generators.get("spike_times")] == before


@pytest.mark.parametrize("forgery", ["overflowing lengths", "no lengths", "negative port"])
def test_forged_device_arrays_and_ports_are_refused_before_any_change(tmp_path, forgery):
    """Lengths whose int64 sum wraps round to the stored count, spike times
    without the lengths that split them, a receptor port NEST's Python layer
    raises IndexError on: each a CheckpointError naming the file, nothing changed."""
    nest, exc, *_ = nest_sim.build(seed=5)
    generators = nest.Create("spike_generator", 2, params={"spike_times": [1.0, 2.0]})
    checkpoint.save(tmp_path / "gen.h5", nest)
    state = read_state(tmp_path / "gen.h5")
    population = state.populations[f"spike_generator@{generators[0].global_id}"]
    if forgery == "overflowing lengths":  # 2**63 + 2 + (2**63 + 2) wraps to 4 in int64: the stored count
        population.arrays["spike_times.lengths"] = np.array([2**62 + 1, 3 * 2**62 + 3], np.uint64)
    elif forgery == "no lengths":
        del population.arrays["spike_times.lengths"], population.info["spike_times.lengths"]
    else:
        state.projections[STDP].arrays["receptor"] = np.full(len(state.projections[STDP].indices), -1, np.int64)
    write_state(tmp_path / "forged.h5", state)  # every digest recomputed
    generators.set([{"spike_times": [5.0]}, {"spike_times": [6.0]}])
    before = captured(nest)
    with pytest.raises(checkpoint.CheckpointError, match="forged.h5"):
        checkpoint.load(tmp_path / "forged.h5", nest)
    assert_same_capture(before, captured(nest))


def test_gap_junctions_load_into_the_kernel_that_saved_them(tmp_path):
    """NEST's gap_junction has no delay and comes in symmetric pairs (its
    own example, gap_junctions_two_neurons): values are set, no delay asked
    for; other connectivity is refused with what to do, before any change."""

    def build(weight):
        nest.ResetKernel()
        nest.resolution = 0.05
        neurons = nest.Create("hh_psc_alpha_gap", 2)
        neurons.I_e = 100.0
        nest.Connect(
            neurons[0],
            neurons[1],
            {"rule": "one_to_one", "make_symmetric": True},
            {"synapse_model": "gap_junction", "weight": weight},
        )
        return neurons

    import nest

    build(0.5)
    nest.Simulate(10.0)
    checkpoint.save(tmp_path / "gap.h5", nest)
    build(0.1)
    checkpoint.load(tmp_path / "gap.h5", nest)
    assert list(nest.GetConnections(synapse_model="gap_junction").get("weight")) == [0.5, 0.5]
    nest.Simulate(10.0)
    nest.ResetKernel()
    nest.resolution = 0.05
    neurons = nest.Create("hh_psc_alpha_gap", 2)
    before = captured(nest)
    with pytest.raises(StructureMismatchError, match="symmetric pairs"):
        checkpoint.load(tmp_path / "gap.h5", nest)
    assert_same_capture(before, captured(nest))
    assert len(neurons) == 2


def test_state_a_model_only_records_is_named_at_save(tmp_path):
    """aeif_psc_delta_clopath records its adaptive threshold V_th and z but
    takes no value for them: a save says so by name."""
    import nest

    nest.ResetKernel()
    nest.Create("aeif_psc_delta_clopath", 3)
    with pytest.warns(checkpoint.CheckpointWarning, match=r"V_th.*z|z.*V_th") as caught:
        checkpoint.save(tmp_path / "c.h5", nest)
    message = next(str(w.message) for w in caught if "can be recorded but not set" in str(w.message))
    assert "aeif_psc_delta_clopath@1" in message


def test_a_recorder_to_files_is_left_out_of_recordings_with_a_warning(tmp_path):
    import nest

    nest.ResetKernel()
    nest.data_path = str(tmp_path)  # the ascii recorder's own file, inside the test's folder
    cells = nest.Create("iaf_psc_alpha", 3, params={"I_e": 400.0})
    to_memory = nest.Create("spike_recorder")
    to_file = nest.Create("spike_recorder", params={"record_to": "ascii"})
    nest.Connect(cells, to_memory)
    nest.Connect(cells, to_file)
    with pytest.warns(checkpoint.CheckpointWarning, match=f"spike_recorder@{to_file.global_id} records to 'ascii'"):
        ckpt = checkpoint.Checkpointer(tmp_path / "run", nest, recordings=True, background=False)
    with ckpt:
        nest.Simulate(50.0)
        ckpt.save()
    rec = checkpoint.recordings(tmp_path / "run")
    name = f"spike_recorder@{to_memory.global_id}"
    pairs = set(zip(rec[name]["i"].tolist(), rec[name]["t"].tolist()))
    assert list(rec) == [name] and len(rec[name]["t"]) == len(pairs) > 0
    assert to_memory.n_events == 0  # emptied into the segment
