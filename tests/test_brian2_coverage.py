"""docs/brian2.rst's coverage table, one test per row.

Rows marked exact: the model of tests/brian2_models.py runs 20 ms, is saved
(with its monitors), runs 20 ms more; a new process builds it with another
seed (other random connectivity and values), loads, runs 20 ms; every
variable and every monitor's recording since t = 0 must be equal bit for
bit, on the numpy and the Cython targets.  The other rows are refused or
warned about, each tested here.
"""

import json
import os
import subprocess
import sys
import warnings

import brian2 as b2
import numpy as np
import pytest

import brian2_models
import checkpoint
from checkpoint import CheckpointWarning, UnsupportedObjectError

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def cython_cache(tmp_path_factory):
    """One Cython cache for the module's processes: each model compiles once."""
    return tmp_path_factory.mktemp("cython")


def run_model(model, target, cache, folder, mode):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    done = subprocess.run(
        [sys.executable, os.path.join(HERE, "brian2_models.py"), model, target, str(cache), str(folder), mode],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("target", ["numpy", "cython"])
@pytest.mark.parametrize("model", sorted(brian2_models.MODELS))
def test_exact_in_a_fresh_process_with_another_seed(tmp_path, cython_cache, model, target):
    run_model(model, target, cython_cache, tmp_path, "first")
    run_model(model, target, cython_cache, tmp_path, "resume")
    straight, resumed = np.load(tmp_path / "straight.npz"), np.load(tmp_path / "resumed.npz")
    assert sorted(straight.files) == sorted(resumed.files)
    assert straight["now"] == pytest.approx(2 * brian2_models.T / 1e3)
    # the second half happened and was recorded: the comparison is not of empty monitors
    assert any(k.endswith(".t") and np.any(straight[k] > brian2_models.T / 1e3) for k in straight.files)
    for key in straight.files:
        assert np.array_equal(straight[key], resumed[key], equal_nan=True), key


@pytest.fixture
def numpy_target():
    b2.prefs.codegen.target = "numpy"
    yield
    b2.prefs.reset_to_defaults()


def generator_network():
    gen = b2.SpikeGeneratorGroup(3, [0, 1, 2], [0, 1, 2] * b2.ms, name="gen")
    mon = b2.SpikeMonitor(gen, name="gen_spikes")
    return b2.Network(gen, mon), mon


@pytest.mark.parametrize("target", ["numpy", "cython"])
def test_a_spike_generator_saved_before_its_first_run_plays_its_spikes(tmp_path, target):
    # Brian2 keeps in Python whether its time bins are valid: a group that
    # never ran has none yet, and a model that ran must not take the file's
    # zeros for valid bins (it played every spike at 0 ms)
    b2.prefs.codegen.target = target
    b2.prefs.codegen.runtime.cython.cache_dir = str(tmp_path / "cython")
    try:
        net, _ = generator_network()
        checkpoint.save(tmp_path / "before.h5", net)
        other, mon = generator_network()
        other.run(5 * b2.ms)
        checkpoint.load(tmp_path / "before.h5", other)
        other.run(5 * b2.ms)
        assert np.array_equal(mon.t_[3:], np.array([0.0, 1.0, 2.0]) * 1e-3)
    finally:
        b2.prefs.reset_to_defaults()


def test_a_network_operation_is_warned_about_at_save(tmp_path, numpy_target):
    group = b2.NeuronGroup(3, "v : 1", name="g")
    calls = []

    @b2.network_operation(dt=1 * b2.ms)
    def count():
        calls.append(1)

    net = b2.Network(group, count)
    net.run(2 * b2.ms)
    with pytest.warns(CheckpointWarning, match="network_operation .*count.*not captured"):
        checkpoint.save(tmp_path / "n.h5", net)


def test_stored_snapshots_are_left_alone(tmp_path, numpy_target):
    group = b2.NeuronGroup(4, "dv/dt = -v / (10*ms) : 1", method="exact", name="g")
    group.v = 1
    net = b2.Network(group)
    net.store("start")
    net.run(5 * b2.ms)
    checkpoint.save(tmp_path / "n.h5", net)
    after_run = group.v[:].copy()
    net.restore("start")  # Brian2's own snapshot, untouched by the save
    assert np.all(group.v[:] == 1) and net.t == 0 * b2.ms
    checkpoint.load(tmp_path / "n.h5", net)
    assert np.array_equal(group.v[:], after_run) and net.t == 5 * b2.ms
    net.restore("start")  # and by the load
    assert np.all(group.v[:] == 1) and net.t == 0 * b2.ms


STANDALONE = """
import brian2 as b2, checkpoint, sys
b2.set_device("cpp_standalone", build_on_run=False)
group = b2.NeuronGroup(3, "v : 1", name="g")
net = b2.Network(group)
try:
    checkpoint.save(sys.argv[1], net)
except checkpoint.UnsupportedObjectError as exc:
    print("refused:", exc)
"""


def test_the_standalone_device_is_refused_with_what_to_do(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", STANDALONE, str(tmp_path / "s.h5")],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)),
    )
    assert "refused:" in done.stdout and "runtime device" in done.stdout, done.stdout + done.stderr
    assert not (tmp_path / "s.h5").exists()


def test_monitors_are_refused_without_the_flag_and_restored_with_it(tmp_path, numpy_target):
    group = b2.NeuronGroup(2, "dv/dt = 1/ms : 1", threshold="v > 1", reset="v = 0", method="euler", name="g")
    rate = b2.PopulationRateMonitor(group, name="rate")
    net = b2.Network(group, rate)
    net.run(5 * b2.ms)
    checkpoint.save(tmp_path / "plain.h5", net)
    assert "rate" not in checkpoint.read(tmp_path / "plain.h5").populations  # off by default, as documented
    checkpoint.save(tmp_path / "mon.h5", net, monitors=True)
    recorded = rate.rate_[:].copy()
    other_group = b2.NeuronGroup(2, "dv/dt = 1/ms : 1", threshold="v > 1", reset="v = 0", method="euler", name="g")
    other_rate = b2.PopulationRateMonitor(other_group, name="rate")
    other = b2.Network(other_group, other_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checkpoint.load(tmp_path / "mon.h5", other, monitors=True)
    assert np.array_equal(other_rate.rate_[:], recorded)
    with pytest.raises(UnsupportedObjectError):
        checkpoint.save(tmp_path / "clock.h5", b2.Clock(dt=0.1 * b2.ms))


def test_a_morphology_of_another_size_is_refused(tmp_path, numpy_target):
    def cell(compartments):
        morpho = b2.Soma(30 * b2.um)
        morpho.dendrite = b2.Cylinder(length=100 * b2.um, diameter=1 * b2.um, n=compartments)
        neuron = b2.SpatialNeuron(
            morphology=morpho, model="Im = 1e-4*siemens/cm**2 * (-70*mV - v) : amp/meter**2", name="cell"
        )
        return b2.Network(neuron), neuron

    net, _ = cell(5)
    net.run(1 * b2.ms)
    checkpoint.save(tmp_path / "cell.h5", net)
    other, neuron = cell(6)
    before = neuron.v[:].copy()
    with pytest.raises(checkpoint.StructureMismatchError, match="cell"):
        checkpoint.load(tmp_path / "cell.h5", other)
    assert np.array_equal(neuron.v[:], before)


def _set(var, change):
    def forge(arrays):
        arrays[var] = change(np.array(arrays[var]))

    return forge


@pytest.mark.parametrize(
    "forge,message",
    [
        (_set("neuron_index", lambda a: a + 10**6), "outside the group"),  # loaded once; run() failed
        (_set("neuron_index", lambda a: a - 1), "outside the group"),
        (_set("spike_time", lambda a: a * np.nan), "not a finite number"),
        (_set("spike_time", lambda a: -a - 1e-3), "negative"),
        (_set("spike_time", lambda a: a[::-1].copy()), "not sorted"),
        (_set("period", lambda a: np.full_like(a, 1e-3)), "period"),
        (_set("_lastindex", lambda a: a + 100), "next spike"),
        (lambda arrays: arrays.update(spike_time=arrays["spike_time"][:-1].copy()), "one of each per spike"),
    ],
)
def test_spikes_brian2_would_refuse_are_refused_before_any_change(tmp_path, numpy_target, forge, message):
    from checkpoint.formats import read_state, write_state
    from helpers import assert_same_capture, capture_copy
    from checkpoint.adapters import adapter_for

    net, _ = generator_network()
    net.run(0.5 * b2.ms)
    checkpoint.save(tmp_path / "gen.h5", net)
    state = read_state(tmp_path / "gen.h5", keep_simulator_order=True)
    forge(state.populations["gen"].arrays)
    write_state(tmp_path / "bad.h5", state)
    other, mon = generator_network()
    other.run(0.5 * b2.ms)
    before = capture_copy(adapter_for(other).capture(), "")
    with pytest.raises(checkpoint.CorruptCheckpointError, match=message) as info:
        checkpoint.load(tmp_path / "bad.h5", other)
    assert "bad.h5" in str(info.value) and "gen." in str(info.value)
    assert_same_capture(before, capture_copy(adapter_for(other).capture(), ""))
    other.run(3 * b2.ms)  # and the model runs on as it was
    assert np.array_equal(mon.t_, np.array([0.0, 1.0, 2.0]) * 1e-3)


MAGIC_SCRIPT = """
import json, sys, warnings
warnings.simplefilter("ignore")
from brian2 import *
import checkpoint
prefs.codegen.target = "numpy"
G = NeuronGroup(5, "dv/dt = (1.1 - v) / (10*ms) : 1", threshold="v > 1", reset="v = 0", method="exact", name="g")
G.v = "i * 0.2"
S = Synapses(G, G, "w : 1", on_pre="v_post += w", name="s")
S.connect(j="(i + 1) % 5")
S.w = 0.05
S.delay = 2 * ms                       # spikes in flight at every checkpoint
folder, mode, until = sys.argv[1], sys.argv[2], float(sys.argv[3])
saved = []
with checkpoint.Checkpointer(folder, magic_network, every_ms=1.0, keep=10, background=False) as ckpt:
    if mode == "resume":
        assert ckpt.restore_latest() is not None
    while magic_network.t < until * ms:
        run(0.5 * ms)                  # the magic network: no Network(...) anywhere
        saved.append(ckpt.maybe_save())
print(json.dumps({"v": G.v[:].tolist(), "t": float(magic_network.t_), "saved": saved}))
"""


def test_a_magic_network_script_saves_on_schedule_and_resumes_in_a_fresh_process(tmp_path):
    # the magic network empties its objects after every run(): its clocks
    # were read from nothing, so no save was ever due, and each was step 0
    script = tmp_path / "magic_script.py"
    script.write_text(MAGIC_SCRIPT)

    def run(folder, mode, until):
        env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
        done = subprocess.run(
            [sys.executable, str(script), str(tmp_path / folder), mode, str(until)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    straight = run("straight", "first", 5)
    first = run("ck", "first", 3)
    assert [os.path.basename(p) for p in first["saved"] if p] == [
        "ckpt-000000000010.h5",
        "ckpt-000000000020.h5",
        "ckpt-000000000030.h5",
    ]
    assert sorted(os.listdir(tmp_path / "ck"))[-3:] == [os.path.basename(p) for p in first["saved"] if p]
    resumed = run("ck", "resume", 5)
    assert [os.path.basename(p) for p in resumed["saved"] if p] == ["ckpt-000000000040.h5", "ckpt-000000000050.h5"]
    assert resumed["t"] == pytest.approx(straight["t"]) and resumed["v"] == straight["v"]
