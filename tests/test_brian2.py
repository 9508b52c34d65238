"""The Brian2 adapter, with the real Brian2 (numpy and Cython targets)."""

import json
import os
import subprocess
import sys

import brian2 as b2  # installed by `make test` (setup.cfg extra "brian2")
import brian2_sim
from adapter_contract import AdapterContract
import numpy as np
import pytest

import checkpoint
from checkpoint.adapters import adapter_for
from checkpoint.formats import read_state, write_state
from helpers import assert_same_capture, capture_copy

HERE = os.path.dirname(os.path.abspath(__file__))
pytestmark = pytest.mark.filterwarnings("ignore::checkpoint.CheckpointWarning")


@pytest.fixture
def build(tmp_path):
    """``build(seed)`` -> (net, exc, syn, spikes) on the numpy target, with
    this test's own Cython cache folder."""

    def make(seed=1, target="numpy"):
        _, net, exc, syn, spikes = brian2_sim.build(target, str(tmp_path / "cython"), seed)
        return net, exc, syn, spikes

    return make


def captured(obj, monitors=False):
    """Every array the adapter sees, copied, by "section/object/variable"."""
    state = adapter_for(obj, monitors=monitors).capture()
    return capture_copy(state, repr(state.meta["brian2"]))


assert_same = assert_same_capture


class TestBrian2Contract(AdapterContract):
    """The adapter contract, on the numpy target."""

    restored = ("exc.v", "stdp.w", "stdp.delay")

    @pytest.fixture(autouse=True)
    def _cache(self, tmp_path):
        self.cache = str(tmp_path / "cython")

    def make(self, seed):
        return brian2_sim.build("numpy", self.cache, seed)[1]

    def fresh(self, seed, folder):
        self.cache = os.path.join(folder, "cython")
        return self.make(seed)

    def advance(self, model):
        model.run(2 * b2.ms)

    def captured(self, model):
        return captured(model)

    def fail_midway(self, monkeypatch, model):
        from checkpoint.adapters.brian2 import Brian2Adapter

        def fail(self, plan):
            raise RuntimeError("injected failure after the synapses were rebuilt")

        monkeypatch.setattr(Brian2Adapter, "restore_generators", fail)

    def parts(self, model):
        return model["exc"], model["stdp"]

    def unsupported(self, model):
        return [b2.Clock(dt=0.1 * b2.ms), model["exc"].v]


def test_plain_text_restores_everything_too(tmp_path, build):
    net, exc, syn, _ = build(seed=1)
    net.run(5 * b2.ms)
    before = captured(net)
    checkpoint.save(tmp_path / "c.txt", net)
    other, _, other_syn, _ = build(seed=2)
    assert len(other_syn) != len(syn)
    checkpoint.load(tmp_path / "c.txt", other)
    assert_same(before, captured(other))


def test_cached_synapse_order_follows_new_connections_and_rebuilds(tmp_path, build):
    """The CSR order is cached per Synapses between saves: it must follow
    synapses added by connect() and the rebuild a load does."""
    net, exc, syn, _ = build(seed=1)
    net.run(1 * b2.ms)

    def csr_matches(path):
        state = checkpoint.read(path).projections["stdp"]
        dense = np.zeros((len(exc), len(exc)))
        np.add.at(dense, (syn.j[:], syn.i[:]), syn.w[:])
        assert state.nnz == len(syn)
        np.testing.assert_array_equal(state.to_scipy("w").toarray(), dense)

    checkpoint.save(tmp_path / "a.h5", net)
    csr_matches(tmp_path / "a.h5")
    syn.connect(i=[0, 5, 5], j=[3, 3, 59])
    syn.w[-3:] = [0.1, 0.2, 0.3]
    checkpoint.save(tmp_path / "b.h5", net)
    csr_matches(tmp_path / "b.h5")
    checkpoint.load(tmp_path / "a.h5", net)  # back to the first connectivity
    checkpoint.save(tmp_path / "c.h5", net)
    csr_matches(tmp_path / "c.h5")
    assert (
        checkpoint.read(tmp_path / "c.h5").projections["stdp"].nnz
        == len(syn)
        != checkpoint.read(tmp_path / "b.h5").projections["stdp"].nnz
    )


def test_units_and_kinds_are_recorded(tmp_path, build):
    net, _, syn, _ = build()
    net.run(1 * b2.ms)
    checkpoint.save(tmp_path / "c.h5", net)
    state = checkpoint.read(tmp_path / "c.h5")
    exc, stdp = state.populations["exc"], state.projections["stdp"]
    assert exc.info["lastspike"].unit == "s" and exc.info["lastspike"].kind == "internal"
    assert exc.info["v"].unit == "1" and exc.info["I"].kind == "parameter"
    assert stdp.info["delay"].unit == "s" and stdp.info["delay"].scope == "synapse"
    assert stdp["delay"].max() <= 3e-3  # SI values: seconds
    assert state.meta["simulator"]["name"] == "brian2" and state.meta["dt"] == pytest.approx(0.1)
    # the CSR is by post neuron and holds Brian2's (i, j, w) triples, each once
    csr = stdp.to_scipy("w").tocoo()
    assert csr.shape == (60, 60) and csr.nnz == len(syn)
    from_file = sorted(zip(csr.col.tolist(), csr.row.tolist(), csr.data.tolist()))
    from_brian = sorted(zip(syn.i[:].tolist(), syn.j[:].tolist(), syn.w[:].tolist()))
    assert from_file == from_brian


def test_monitors_only_with_the_flag(tmp_path, build):
    net, exc, syn, spikes = build(seed=1)
    net.run(10 * b2.ms)
    checkpoint.save(tmp_path / "plain.h5", net)
    checkpoint.save(tmp_path / "mon.h5", net, monitors=True)
    assert "spikes" not in checkpoint.read(tmp_path / "plain.h5").populations
    assert "spikes" in checkpoint.read(tmp_path / "mon.h5").populations
    other, _, _, other_spikes = build(seed=2)
    checkpoint.load(tmp_path / "mon.h5", other, monitors=True)
    assert other_spikes.num_spikes == spikes.num_spikes > 0
    assert np.array_equal(other_spikes.t_[:], spikes.t_[:]) and np.array_equal(other_spikes.i[:], spikes.i[:])


def test_checkpointer_loop_resumes_exactly(tmp_path, build):
    net, exc, syn, spikes = build(seed=1)
    for _ in range(8):
        net.run(2 * b2.ms)
    expected_v, expected_w = exc.v[:].copy(), syn.w[:].copy()

    first, *_ = build(seed=1)
    with checkpoint.Checkpointer(tmp_path / "ck", first, every_ms=4, background=True) as ckpt:
        for _ in range(5):  # "killed" after 10 ms; the last checkpoint is at 8 ms
            first.run(2 * b2.ms)
            ckpt.maybe_save()
    again, again_exc, again_syn, _ = build(seed=3)
    with checkpoint.Checkpointer(tmp_path / "ck", again, every_ms=4) as ckpt:
        report = ckpt.restore_latest()
        assert report.time == pytest.approx(8.0)
        while again.t < 16 * b2.ms - 1e-9 * b2.second:
            again.run(2 * b2.ms)
            ckpt.maybe_save()
    assert np.array_equal(again_exc.v[:], expected_v)
    assert np.array_equal(again_syn.w[:], expected_w)


def _run_sim(tmp_path, target, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    subprocess.run(
        [sys.executable, os.path.join(HERE, "brian2_sim.py"), target, str(tmp_path / "cython"), *map(str, args)],
        check=True,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=600,
    )


@pytest.mark.parametrize("target,fmt", [("numpy", "h5"), ("numpy", "txt.gz"), ("cython", "npz")])
def test_fresh_process_restart_is_bit_for_bit(tmp_path, target, fmt):
    """Noise, rand(), STDP, random delays: 20 ms + 20 ms straight, against 20 ms,
    a checkpoint, and 20 ms in a new process whose synapses came out different."""
    ckpt = tmp_path / f"c.{fmt}"
    _run_sim(tmp_path, target, tmp_path / "straight.npz", "straight", 20, 20)
    _run_sim(tmp_path, target, tmp_path / "first.npz", "first", 20, ckpt)
    _run_sim(tmp_path, target, tmp_path / "resumed.npz", "resume", 20, ckpt)
    straight, resumed = np.load(tmp_path / "straight.npz"), np.load(tmp_path / "resumed.npz")
    assert len(straight["t"]) > 50
    for key in straight.files:
        assert np.array_equal(straight[key], resumed[key]), key
    if target == "cython":  # the rand()/randn() buffers were half used: their contents mattered
        rng = checkpoint.read(ckpt).rng["brian2"]
        assert rng.state["rand_index"] > 0 and len(rng.arrays["rand_buffer"]) == rng.state["buffer_size"]


# ------------------------------------------------------------ bad input


def test_automatic_names_that_differ_are_an_error(tmp_path):
    def make(extra):
        # created first, these take the first automatic names; kept alive so
        # that Brian2 does not hand their names out again
        make.keep = [b2.NeuronGroup(5, "v : 1") for _ in range(extra)]
        g = b2.NeuronGroup(5, "v : 1")
        return b2.Network(g), g

    net, g = make(0)
    g.v = 1.0
    checkpoint.save(tmp_path / "c.h5", net)
    other, other_g = make(1)  # one more group created first: another automatic name
    assert g.name != other_g.name
    with pytest.raises(checkpoint.StructureMismatchError, match="name=") as info:
        checkpoint.load(tmp_path / "c.h5", other)
    assert g.name in str(info.value) and other_g.name in str(info.value)
    assert np.all(other_g.v[:] == 0)


def _tampered(tmp_path, build, change):
    """Save a network, change its state (as stored: per-synapse arrays in
    Brian2's order) with ``change(state)``, write it back."""
    net, *_ = build(seed=1)
    net.run(5 * b2.ms)
    path = tmp_path / "c.h5"
    checkpoint.save(path, net)
    state = read_state(path, keep_simulator_order=True)
    change(state)
    write_state(tmp_path / "bad.h5", state)
    return tmp_path / "bad.h5"


def _as_version_2(state):
    """What versions 1 and 2 wrote: per-synapse arrays in CSR order, and
    Brian2's order as the array ``_brian2_index``."""
    for name, proj in list(state.projections.items()):
        csr = proj.in_csr_order()
        csr.arrays["_brian2_index"] = csr.simulator_order
        csr.info["_brian2_index"] = checkpoint.state.ArrayInfo("internal", "synapse", None)
        csr.simulator_order = None
        for key in [k for k in csr.arrays if k.endswith("_queue_synapses")]:  # queues as rows
            prefix = key[: -len("_synapses")]
            counts = csr.arrays.pop(prefix + "_counts")
            synapses = csr.arrays.pop(key)
            csr.arrays[prefix] = np.column_stack([np.repeat(np.arange(len(counts)), counts), synapses]).astype(np.int64)
            csr.info[prefix] = csr.info.pop(key)
            del csr.info[prefix + "_counts"]
        state.projections[name] = csr


def _set_order(order):
    return lambda s: setattr(s.projections["stdp"], "simulator_order", order(s.projections["stdp"]))


def _set_legacy_order(order):
    def change(s):
        _as_version_2(s)
        s.projections["stdp"].arrays["_brian2_index"] = order(s.projections["stdp"])

    return change


def _set_legacy_queue(change_rows, shape=None):
    def change(s):
        _as_version_2(s)
        change_rows(s.projections["stdp"].arrays["_queue"])
        if shape is not None:
            s.projections["stdp"].arrays["_queue_shape"] = np.asarray(shape)

    return change


def _wrap_queue_counts(s):
    counts = s.projections["stdp"].arrays["_queue_counts"]
    counts[:4] += 1 << 62  # 4 * 2^62 = 2^64: the int64 sum is what it was, and spikes would move
    assert counts.sum() == s.projections["stdp"]["_queue_counts"].sum()


@pytest.mark.parametrize(
    "change,message",
    [
        (_set_order(lambda p: np.zeros_like(p.simulator_order)), "permutation"),
        (_set_order(lambda p: p.simulator_order + p.nnz), "permutation"),  # right residues, out of range
        (_set_order(lambda p: p.simulator_order[::-1][:-1].copy()), "order"),  # one short
        (_set_legacy_order(lambda p: np.zeros_like(p["_brian2_index"])), "permutation"),
        (_set_legacy_order(lambda p: p["_brian2_index"] + p.nnz), "permutation"),
        (lambda s: s.projections["stdp"].arrays["_queue_synapses"].__setitem__(0, 10**6), "spike queue"),
        (lambda s: s.projections["stdp"].arrays["_queue_counts"].__setitem__(0, -1), "spike queue"),
        (
            lambda s: s.projections["stdp"].arrays.__setitem__(
                "_queue_counts", s.projections["stdp"]["_queue_counts"][:-1].copy()
            ),
            "spike queue",
        ),
        (
            lambda s: s.projections["stdp"].arrays.__setitem__(  # a ring no delay needs, with the Python queue's rows
                "_queue_shape", np.array([len(s.projections["stdp"]["_queue_counts"]), 2**30])
            ),
            "spike queue",
        ),
        (_set_legacy_queue(lambda rows: rows.__setitem__((0, 1), 10**6)), "spike queue"),
        (_set_legacy_queue(lambda rows: rows.__setitem__((0, 0), 10**6)), "spike queue"),
        (_set_legacy_queue(lambda rows: None, shape=[2**31, 0]), "spike queue"),  # a 16 GiB ring from 16 bytes
        (_set_legacy_queue(lambda rows: None, shape=[np.nan, 0.0]), "spike queue"),  # a float shape
        (_wrap_queue_counts, "spike queue"),  # counts whose int64 sum wraps back to the spikes' number
        (lambda s: s.projections["stdp"].arrays.__setitem__("_queue_dt", np.zeros(0)), "dt"),  # IndexError once
        (lambda s: s.projections["stdp"].arrays.__setitem__("_queue_dt", np.array([-1.0])), "dt"),
        (lambda s: s.rng["brian2"].state.__setitem__("rand_index", 10**9), "buffer"),
        (lambda s: s.rng["numpy"].arrays.__setitem__("key", np.zeros(3, np.uint32)), "random state"),
    ],
)
def test_state_brian2_would_crash_on_is_refused_before_any_change(tmp_path, build, change, message):
    bad = _tampered(tmp_path, build, change)
    other, *_ = build(seed=2)
    before = captured(other)
    with pytest.raises(checkpoint.CorruptCheckpointError, match=message):
        checkpoint.load(bad, other)
    assert_same(before, captured(other))


@pytest.mark.parametrize("seed", [1, 2])  # the same synapses (arrays swapped in); others (rebuilt)
def test_a_file_of_format_version_2_still_loads_exactly(tmp_path, build, seed):
    net, *_ = build(seed=1)
    net.run(5 * b2.ms)
    before = captured(net)
    checkpoint.save(tmp_path / "c.h5", net)
    state = read_state(tmp_path / "c.h5")
    _as_version_2(state)
    write_state(tmp_path / "v2.h5", state)
    with open(tmp_path / "v2.h5", "rb"):
        assert read_state(tmp_path / "v2.h5").projections["stdp"].simulator_order is None
    other, *_ = build(seed=seed)
    checkpoint.load(tmp_path / "v2.h5", other)
    assert_same(before, captured(other))


def test_per_synapse_arrays_are_stored_in_brian2s_order_and_read_in_csr_order(tmp_path, build):
    net, exc, syn, _ = build(seed=1)
    net.run(5 * b2.ms)
    checkpoint.save(tmp_path / "c.h5", net)
    import h5py

    with h5py.File(tmp_path / "c.h5") as f:
        assert f.attrs["format_version"] == 3
        stored_w, order = f["projections/stdp/w"][()], f["projections/stdp/order"][()]
    assert np.array_equal(stored_w, np.asarray(syn.w[:]))  # Brian2's order, as is
    proj = checkpoint.read(tmp_path / "c.h5").projections["stdp"]
    assert np.array_equal(proj["w"], stored_w[order])  # CSR order for a reader
    i, j = np.asarray(syn.i[:]), np.asarray(syn.j[:])
    assert np.array_equal(proj.indices, i[order])
    assert np.array_equal(np.repeat(np.arange(len(proj.indptr) - 1), np.diff(proj.indptr)), j[order])
    dense = proj.to_scipy("w").toarray()
    expected = np.zeros_like(dense)
    np.add.at(expected, (j, i), np.asarray(syn.w[:]))
    assert np.allclose(dense, expected)
    with checkpoint.read(tmp_path / "c.h5", lazy=True) as lazy:
        assert np.array_equal(np.asarray(lazy.projections["stdp"]["w"]), proj["w"])


@pytest.mark.parametrize("seed", [1])  # the same synapses, arrays swapped in (rebuilt: the contract)
def test_failure_midway_puts_everything_back(tmp_path, build, monkeypatch, seed):
    net, *_ = build(seed=1)
    net.run(5 * b2.ms)
    checkpoint.save(tmp_path / "c.h5", net)
    other, _, other_syn, _ = build(seed=seed)
    other.run(1 * b2.ms)
    before = captured(other)
    from checkpoint.adapters.brian2 import Brian2Adapter

    def fail(self, plan):
        raise RuntimeError("simulated failure after the synapses were rebuilt")

    monkeypatch.setattr(Brian2Adapter, "restore_generators", fail)
    with pytest.raises(RuntimeError, match="simulated"):
        checkpoint.load(tmp_path / "c.h5", other)
    monkeypatch.undo()
    assert_same(before, captured(other))
    other.run(1 * b2.ms)  # and the network still runs


def test_parameters_as_json(tmp_path):
    group = b2.NeuronGroup(5, "dv/dt = -v / tau : 1\ntau : second (constant, shared)", name="g")
    syn = b2.Synapses(group, group, "w : 1 (constant)\nx : 1", name="s")
    syn.connect(p=0.8)
    syn.x = "i * 10 + j"
    net = b2.Network(group, syn)
    group.tau = 10 * b2.ms
    order_before, x_before = syn.i[:].copy(), syn.x[:].copy()
    checkpoint.save_parameters(tmp_path / "p.json", net, network={"note": "brian2"})
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["populations"]["g"] == {"tau": 0.01}  # current value, SI
    group.tau = 20 * b2.ms
    assert checkpoint.load_parameters(tmp_path / "p.json", net) == {"note": "brian2"}
    assert group.tau == 10 * b2.ms
    saved["projections"]["s"] = {"w": 0.25}
    (tmp_path / "p.json").write_text(json.dumps(saved))
    checkpoint.load_parameters(tmp_path / "p.json", net, global_only=False)
    assert np.all(syn.w[:] == 0.25)
    assert np.array_equal(syn.i[:], order_before) and np.array_equal(syn.x[:], x_before)


class SubclassedNetwork(b2.Network):
    """A user's own Network subclass, defined in the script."""

    def __init__(self):
        group = b2.NeuronGroup(5, "dv/dt = -v / (10*ms) : 1", name="sub_group")
        group.v = "rand()"
        super().__init__(group)
        self.group = group


def test_a_subclass_of_network_defined_in_the_script_is_checkpointed(tmp_path):
    b2.prefs.codegen.target = "numpy"
    net = SubclassedNetwork()
    net.run(1 * b2.ms)
    checkpoint.save(tmp_path / "sub.h5", net)
    v = np.array(net.group.v[:])
    net.run(1 * b2.ms)
    report = checkpoint.load(tmp_path / "sub.h5", net)
    assert "sub_group.v" in report.restored and np.array_equal(net.group.v[:], v)
    assert float(net.t / b2.ms) == 1.0


def test_magic_network_saves_the_objects_the_magic_run_simulates(tmp_path):
    """Brian2's documented style: objects in the script's namespace and the
    magic run(); checkpoint collects them as brian2.store() does."""
    b2.prefs.codegen.target = "numpy"
    group = b2.NeuronGroup(3, "dv/dt = -v / (10*ms) : 1", name="magic_group")
    group.v = [1.0, 2.0, 3.0]
    b2.run(1 * b2.ms)
    checkpoint.save(tmp_path / "magic.h5", b2.magic_network)
    assert list(checkpoint.read(tmp_path / "magic.h5").populations) == ["magic_group"]
    saved = np.array(group.v[:])
    b2.run(1 * b2.ms)
    report = checkpoint.load(tmp_path / "magic.h5", b2.magic_network)
    assert "magic_group.v" in report.restored and np.array_equal(group.v[:], saved)
    assert float(b2.defaultclock.t / b2.ms) == pytest.approx(1.0)


def _save_magic_with_nothing_in_sight(path):
    checkpoint.save(path, b2.magic_network)


def test_magic_network_with_nothing_in_sight_is_refused_not_an_empty_file(tmp_path):
    with pytest.raises(checkpoint.UnsupportedObjectError, match="magic_network"):
        _save_magic_with_nothing_in_sight(tmp_path / "empty.h5")
    assert not (tmp_path / "empty.h5").exists()


def test_a_clocks_dt_is_restored_as_brian2_restore_does(tmp_path):
    b2.prefs.codegen.target = "numpy"
    group = b2.NeuronGroup(3, "dv/dt = -v / (10*ms) : 1", name="dt_group", dt=0.5 * b2.ms)
    net = b2.Network(group)
    net.run(1 * b2.ms)
    checkpoint.save(tmp_path / "dt.h5", net)
    group.clock.dt = 1 * b2.ms
    net.run(1 * b2.ms)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", checkpoint.CheckpointWarning)  # dt is restored, not warned about
        checkpoint.load(tmp_path / "dt.h5", net)
    assert float(group.clock.dt / b2.ms) == 0.5
    assert float(net.t / b2.ms) == float(group.clock.t / b2.ms) == 1.0
    net.run(1 * b2.ms)
    assert float(group.clock.t / b2.ms) == 2.0


# ------------------------------------------- spike queues: what a restore allocates

_LOAD_IN_CHILD = """
import json, resource, sys, warnings
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
warnings.simplefilter("ignore")
if sys.argv[3] == "python":   # Brian2's Python SpikeQueue, as without its compiled one
    sys.modules["brian2.synapses.cythonspikequeue"] = None
import brian2_sim, checkpoint
_, net, *_ = brian2_sim.build("numpy", sys.argv[2], 2)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    checkpoint.load(sys.argv[1], net)
    outcome = "ok"
except checkpoint.CheckpointError as exc:
    outcome = type(exc).__name__ + ": " + str(exc)
except BaseException as exc:
    outcome = "raw " + type(exc).__name__
print(json.dumps({"outcome": outcome, "grown": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024}))
"""


def _has_python_queue():
    """Whether this Brian2 still has its Python SpikeQueue (up to 2.10;
    2.11's spikequeue.py only imports the compiled one)."""
    import importlib.util

    source = open(importlib.util.find_spec("brian2.synapses.spikequeue").origin).read()
    return "class SpikeQueue" in source


#: the spike queues this Brian2 runs: each is attacked, as far as it exists
QUEUES = ["cython"] + (["python"] if _has_python_queue() else [])


def _load_in_child(path, tmp_path, queue="cython"):
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_IN_CHILD, str(path), str(tmp_path / "cython"), queue],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=HERE,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")])),
    )
    assert done.returncode == 0, done.stderr[-2000:]  # std::bad_alloc aborted it once
    return json.loads(done.stdout.strip().splitlines()[-1])


def _with_ring(ring, legacy=False):
    """The queue on a ring of ``ring`` steps, its spikes all due next step."""

    def change(s):
        proj = s.projections["stdp"]
        assert len(proj["_queue_synapses"]) > 0
        if legacy:
            _as_version_2(s)
            proj = s.projections["stdp"]
            proj.arrays["_queue"][:, 0] = 0
            proj.arrays["_queue_shape"] = np.array([ring, 0])
            return
        counts = np.zeros(ring, np.int64)
        counts[0] = len(proj["_queue_synapses"])
        proj.arrays["_queue_counts"], proj.arrays["_queue_shape"] = counts, np.array([ring, 0])

    return change


@pytest.mark.parametrize(
    "ring,legacy,queue",
    [
        case
        for case in [
            (1 << 26, True, "cython"),  # 64 Mi empty slots from 16 bytes: within the old bound, bad_alloc in Cython
            (1 << 23, False, "cython"),  # beyond the ring a reader allows
            (1 << 22, False, "python"),  # 4 Mi rows, each as wide as the one full step: gigabytes of X
        ]
        if case[2] in QUEUES
    ],
)
def test_a_ring_that_would_take_brian2_gigabytes_is_refused_before_it_is_made(tmp_path, build, ring, legacy, queue):
    bad = _tampered(tmp_path, build, _with_ring(ring, legacy))
    result = _load_in_child(bad, tmp_path, queue)
    assert result["outcome"].startswith("CorruptCheckpointError") and "spike queue" in result["outcome"], result
    assert "bad.h5" in result["outcome"] and result["grown"] < 400 << 20, result


@pytest.mark.parametrize("queue", QUEUES)
def test_a_long_ring_within_the_bound_loads_in_either_queue(tmp_path, build, queue):
    from checkpoint.adapters.brian2.queues import MAX_RING

    ok = _tampered(tmp_path, build, _with_ring(MAX_RING // 4 if queue == "cython" else 1 << 12))
    assert _load_in_child(ok, tmp_path, queue)["outcome"] == "ok"
