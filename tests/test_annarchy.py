"""The ANNarchy 5 adapter, with the real ANNarchy: every network is compiled
(into this test session's own temporary folders) and simulated."""

import json
import os
import subprocess
import sys

import ANNarchy as ann  # installed by `make test` (setup.cfg extra "annarchy")
import annarchy_sim
from adapter_contract import AdapterContract
import numpy as np
import pytest

import checkpoint
from checkpoint.adapters import adapter_for
from checkpoint.adapters.annarchy import ANNarchyAdapter
from checkpoint.formats import read_state, write_state
from helpers import assert_same_capture, capture_copy

HERE = os.path.dirname(os.path.abspath(__file__))
# Compiling a network takes ~20 s: the tests of this file share two compiled
# networks (`make test` keeps a file's tests on one worker: --dist loadfile).
pytestmark = pytest.mark.filterwarnings("ignore::checkpoint.CheckpointWarning")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Two compiled copies of the test network with different random
    connectivity (seeds 1 and 2), each in its own build folder, and their
    initial states."""
    folder = tmp_path_factory.mktemp("annarchy")
    nets = [annarchy_sim.build(str(folder / name), seed) for name, seed in (("a", 1), ("b", 2))]
    initial = [folder / "a.h5", folder / "b.h5"]
    for net, path in zip(nets, initial):
        checkpoint.save(path, net)
    return nets, initial


@pytest.fixture
def networks(compiled):
    """The two networks, back in their initial states (and connectivity)."""
    nets, initial = compiled
    for net, path in zip(nets, initial):
        checkpoint.load(path, net)
        for monitor in net.get_monitors():  # what an earlier test recorded is not this one's
            monitor.get(keep=False)
    return nets


def captured(obj):
    """Every array the adapter sees, copied, by "section/object/variable"."""
    state = adapter_for(obj).capture()
    return capture_copy(state, repr((state.time, state.step)))


assert_same = assert_same_capture


def different_connectivity(a, b):
    return any(
        not np.array_equal(p.pre_ranks[0], q.pre_ranks[0]) or p.nb_synapses != q.nb_synapses
        for p, q in zip(a.get_projections(), b.get_projections())
    )


@pytest.mark.parametrize("fmt", ["h5", "npz", "mat", "txt.gz"])
def test_every_format_restores_everything_into_other_connectivity(tmp_path, networks, fmt):
    first, second = networks
    first.simulate(20)
    second.simulate(5)
    assert different_connectivity(first, second)
    path = tmp_path / f"net.{fmt}"
    checkpoint.save(path, first)
    expected = captured(first)
    report = checkpoint.load(path, second)
    assert not report.skipped and not report.kept
    assert_same(captured(second), expected)
    # both continue exactly alike: nothing that matters was left behind
    first.simulate(15)
    second.simulate(15)
    assert_same(captured(second), captured(first))


def test_what_is_captured(tmp_path, networks):
    net, _ = networks
    net.simulate(10)
    state = adapter_for(net).capture()
    stdp, uniform, oja = (state.projections[n] for n in ("stdp", "uniform", "oja"))
    assert set(state.populations) == {"exc", "input", "lif", "rate_in", "rate_out", "lonely"}
    assert (stdp.info["delay"].scope, stdp.info["delay"].unit) == ("synapse", "ms")
    assert uniform.info["delay"].scope == "global" and uniform["delay"] == pytest.approx(2.0)
    assert stdp.info["_last_event"] == checkpoint.state.ArrayInfo("internal", "synapse")
    assert stdp.info["_delayed_spikes"].scope == "free" and stdp["_delayed_spikes"].shape[1] == 3
    assert (oja.info["alpha"].kind, oja.info["alpha"].scope) == ("parameter", "post")
    assert (oja.info["eta"].kind, oja.info["eta"].scope) == ("parameter", "global")
    assert state.populations["exc"].info["last_spike"].kind == "internal"
    assert state.populations["rate_in"].info["tau"].scope == "global"
    assert state.rng["annarchy"].arrays["state"].shape == (1, 625)
    assert state.rng["numpy.random"].kind == "numpy.random.RandomState"  # np.random, ANNarchy's examples' inputs
    assert state.time == pytest.approx(net.time) and state.step == net.current_step
    # the CSR holds ANNarchy's own synapses, with its weights
    proj = net.get_projection("stdp")
    matrix = stdp.to_scipy("w").toarray()
    for post, pres, ws in zip(proj.post_ranks, proj.pre_ranks, proj.w):
        assert np.array_equal(matrix[post, pres], ws)
    delays = stdp.to_scipy("delay").toarray()
    for post, pres, ds in zip(proj.post_ranks, proj.pre_ranks, proj.delay):
        assert np.allclose(delays[post, pres], ds)


def test_checkpointer_loop_resumes_exactly(tmp_path, networks):
    first, second = networks
    checkpoint.save(tmp_path / "start.h5", first)
    for _ in range(6):
        first.simulate(2)
    expected = captured(first)

    checkpoint.load(tmp_path / "start.h5", first)
    start = first.time
    with checkpoint.Checkpointer(tmp_path / "ck", first, every_ms=4) as ckpt:
        for _ in range(5):  # "killed" after 10 ms; the last checkpoint is at 8 ms
            first.simulate(2)
            ckpt.maybe_save()
    with checkpoint.Checkpointer(tmp_path / "ck", second, every_ms=4) as ckpt:
        report = ckpt.restore_latest()
        assert report.time == pytest.approx(start + 8)
        while second.time < start + 12 - 1e-9:
            second.simulate(2)
            ckpt.maybe_save()
    assert_same(captured(second), expected)


def _run_sim(build_dir, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    subprocess.run(
        [sys.executable, os.path.join(HERE, "annarchy_sim.py"), build_dir, *map(str, args)],
        check=True,
        env=env,
        capture_output=True,
    )


@pytest.mark.parametrize("fmt", ["npz"])  # .h5: the contract's fresh-process test, on this network
def test_fresh_process_restart_is_bit_for_bit(tmp_path_factory, tmp_path, fmt):
    """Three processes: the uninterrupted run; a run saved at 60 ms; a fresh
    process (other random connectivity) that loads it and runs on."""
    build_dir = str(tmp_path_factory.getbasetemp() / "annarchy_fresh")  # compiled once for both formats
    ckpt = tmp_path / f"run.{fmt}"
    _run_sim(build_dir, tmp_path / "straight.npz", "straight", 60, 60)
    _run_sim(build_dir, tmp_path / "first.npz", "first", 60, ckpt)
    _run_sim(build_dir, tmp_path / "resumed.npz", "resume", 60, ckpt)
    straight, resumed = np.load(tmp_path / "straight.npz"), np.load(tmp_path / "resumed.npz")
    assert resumed["rebuilt"], "the resumed network should have had other connectivity"
    assert len(straight["exc_spikes"]) > 20 and len(straight["lif_spikes"]) > 5
    for key in ("exc_spikes", "lif_spikes", "v", "r", "stdp_w", "oja_w", "step"):
        assert np.array_equal(straight[key], resumed[key]), key


def _tampered(tmp_path, net, change):
    """Save ``net``, change the state with ``change(state)``, write it back
    (fresh checksums: the adapter's own checks must catch it)."""
    path = tmp_path / "tampered.h5"
    checkpoint.save(path, net)
    state = read_state(path)
    change(state)
    write_state(path, state)
    return path


def _set(section, obj, var, value):
    def change(state):
        getattr(state, section)[obj].arrays[var] = np.asarray(value)

    return change


def _scaled(section, obj, var, factor):
    def change(state):
        group = getattr(state, section)[obj]
        group.arrays[var] = np.asarray(group.arrays[var]) * factor

    return change


def _wrapping_lengths(section, obj, var):
    """Row lengths whose int64 sum wraps round to the length of the values."""

    def change(state):
        group = getattr(state, section)[obj]
        size = group.arrays[var].size
        group.arrays[var + ".lengths"] = np.array([4, 2**62, 2**62, 2**62, 2**62 + size], np.int64)

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (_set("projections", "stdp", "_delayed_spikes", np.array([[0, 10**6, 0]])), "range"),
        (_set("projections", "stdp", "_delayed_spikes", np.array([[0, 0, 10**6]])), "does not exist"),
        (_scaled("projections", "stdp", "delay", 0.0), "at least one time step"),
        (_set("populations", "exc", "spiked", np.array([10**6], np.int32)), "out of range"),
        (_set("populations", "exc", "_delayed_spike.lengths", np.array([3, 1, 1, 1])), "lengths"),
        (_set("populations", "rate_in", "_delayed_r", np.zeros(3)), "lengths"),
        (_wrapping_lengths("populations", "exc", "_delayed_spike"), "lengths"),
        (_scaled("projections", "stdp", "delay", 1e7), "GiB"),  # queues of ~10^8 steps, from 8 bytes a synapse
    ],
)
def test_state_annarchy_would_crash_on_is_refused_before_any_change(tmp_path, networks, change, message):
    net, _ = networks
    net.simulate(12)  # some spikes in flight
    path = _tampered(tmp_path, net, change)
    net.simulate(1)
    before, on_disk = captured(net), path.read_bytes()
    with pytest.raises(checkpoint.CorruptCheckpointError, match=message) as error:
        checkpoint.load(path, net)
    assert str(path) in str(error.value)
    assert_same(captured(net), before)
    assert path.read_bytes() == on_disk


@pytest.mark.parametrize("key, value", [("pos", 10**6), ("has_gauss", 2), ("gauss", "0.5"), ("bit_generator", "PCG64")])
def test_a_forged_state_of_numpys_global_generator_changes_nothing(tmp_path, networks, key, value):
    net, _ = networks
    net.simulate(2)
    path = _tampered(tmp_path, net, lambda state: state.rng["numpy.random"].state.__setitem__(key, value))
    np.random.uniform(size=3)
    before = captured(net)  # numpy's global generator included
    with pytest.raises(checkpoint.CorruptCheckpointError, match="global generator") as error:
        checkpoint.load(path, net)
    assert str(path) in str(error.value) and "numpy.random" in str(error.value)
    assert_same(captured(net), before)


def test_longer_delays_in_the_file_grow_the_delay_buffers(tmp_path, networks):
    """Delays beyond the network's longest: ANNarchy's queues and ring buffer
    are lengthened, spikes in flight kept, and both networks run on alike."""
    first, second = networks
    first.simulate(12)
    path = _tampered(tmp_path, first, _scaled("projections", "stdp", "delay", 2.0))
    stdp = first.get_projection("stdp")
    longest = int(round(max(max(d) for d in stdp.delay) * 2 / first.dt))
    assert longest > stdp.max_delay
    in_flight = checkpoint.read(path).projections["stdp"]["_delayed_spikes"]
    assert len(in_flight) > 0
    for net in (first, second):
        checkpoint.load(path, net)
        assert net.get_projection("stdp").max_delay >= longest
        assert net.get_population("input").max_delay >= longest
    state = adapter_for(second).capture()
    assert np.array_equal(state.projections["stdp"]["_delayed_spikes"], in_flight)
    first.simulate(15)
    second.simulate(15)
    assert_same(captured(second), captured(first))


class TestANNarchyContract(AdapterContract):
    """The adapter contract, on the two compiled copies of the test network."""

    restored = ("exc.v", "stdp.w", "stdp.delay", "oja.alpha")

    @pytest.fixture(autouse=True)
    def _networks(self, networks):
        self.nets = networks

    def make(self, seed):
        return self.nets[seed - 1]

    def fresh(self, seed, folder):
        return annarchy_sim.build(os.path.join(folder, "annarchy"), seed)

    def advance(self, model):
        model.simulate(5)

    def captured(self, model):
        return captured(model)

    def fail_midway(self, monkeypatch, model):
        def fail(adapter, plan):
            raise RuntimeError("injected failure after everything else was written")

        monkeypatch.setattr(ANNarchyAdapter, "restore_generators", fail)

    def parts(self, model):
        return model.get_population("exc"), model.get_projection("stdp")

    def unsupported(self, model):
        uncompiled = ann.Network()
        uncompiled.create(3, ann.Izhikevich)
        return [model.get_population("exc")[0:10], model.get_population, uncompiled]  # a view; a method


def test_parameters_as_json(tmp_path, networks):
    first, second = networks
    first.get_population("rate_in").tau = 12.5
    first.get_projection("oja").eta = 0.02
    checkpoint.save_parameters(tmp_path / "p.json", first, network={"note": "tuned"})
    document = json.loads((tmp_path / "p.json").read_text())
    assert document["populations"]["rate_in"]["tau"] == 12.5
    assert document["projections"]["oja"]["eta"] == 0.02
    assert checkpoint.load_parameters(tmp_path / "p.json", second) == {"note": "tuned"}
    assert second.get_population("rate_in").tau == 12.5
    assert second.get_projection("oja").eta == 0.02


class SubclassedNetwork(ann.Network):
    """The style ANNarchy 5's documentation teaches (and copy()/parallel_run() need)."""

    def __init__(self, size=20):
        self.exc = self.create(size, ann.Izhikevich, name="exc")
        self.exc.noise = 2.0
        self.proj = self.connect(self.exc, self.exc, "exc", synapse=ann.STDP, name="stdp")
        self.proj.fixed_probability(0.3, weights=ann.Uniform(0.0, 0.5, rng=self.default_rng))


def test_a_subclass_of_network_defined_in_the_script_is_checkpointed(tmp_path):
    """The adapter comes from the class hierarchy, not the class's module
    (this subclass lives in the test module, like a user's in __main__)."""
    net = SubclassedNetwork(size=20, dt=0.5, seed=3)
    net.compile(directory=str(tmp_path / "build"))
    net.simulate(20.0)
    checkpoint.save(tmp_path / "sub.h5", net)
    saved = captured(net)
    net.simulate(20.0)
    report = checkpoint.load(tmp_path / "sub.h5", net)
    assert "exc.v" in report.restored and "stdp.w" in report.restored
    assert_same(saved, captured(net))
