"""The NEURON adapter against real NEURON 9 (installed by `make test`).

NEURON keeps one model per interpreter and cannot be reset, and pytest's
workers also run Brian2 and ANNarchy: every NEURON run here is a child
process (tests/neuron_sim.py, models in tests/neuron_models.py), and the
files they write are checked and forged here, without NEURON.

The contract suite of tests/adapter_contract.py runs in child pytests,
one test each (tests/neuron_contract.py subclasses it): the suite builds
several models in one interpreter, and NEURON's SaveState reader crashes
once the model it last read into is deleted (which the adapter detects,
``test_no_savestate_is_read_after_the_model_it_was_read_into_is_deleted``).
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))
MOD = os.path.join(HERE, "data", "neuron", "noisyleak.mod")


def sim(mode, folder, *options, check=True):
    """Run neuron_sim.py in a fresh interpreter; returns its json result."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    done = subprocess.run(
        [sys.executable, os.path.join(HERE, "neuron_sim.py"), mode, str(folder), *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = os.path.join(str(folder), f"{mode}.json")
    return json.load(open(result)) if os.path.exists(result) else {"returncode": done.returncode, "stderr": done.stderr}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One saving run of the default model (20 ms), shared by the tests that
    only load its file: ``run.h5`` and ``saved.npz`` (the state saved)."""
    folder = tmp_path_factory.mktemp("neuron-first")
    sim("first", folder)
    return folder


@pytest.fixture
def saved(tmp_path, first_run):
    """The shared run's files, in this test's own folder."""
    for name in ("run.h5", "saved.npz", "first.json"):
        shutil.copy(first_run / name, tmp_path / name)
    return tmp_path


def results(folder, a, b):
    return np.load(os.path.join(str(folder), f"{a}.npz")), np.load(os.path.join(str(folder), f"{b}.npz"))


def differing(a, b, skip=()):
    assert sorted(a.files) == sorted(b.files)
    return [k for k in a.files if k not in skip and not np.array_equal(a[k], b[k], equal_nan=True)]


def test_fresh_process_restart_is_bit_exact_with_events_in_flight(tmp_path):
    # the save falls between a spike and its delivery: events are in flight
    sim("straight", tmp_path, "--t-save", "23.3")
    first = sim("first", tmp_path, "--t-save", "23.3")
    assert all("hoc Random" in w for w in first["save_warnings"])
    state = checkpoint.read(tmp_path / "run.h5")
    model = state.populations["NEURON"]
    assert len(model["netcon_events.t"]) > 0 and len(model["self_events.t"]) > 0
    assert model["savestate"].dtype == np.uint8 and model["savestate"].size > 0
    resumed = sim("resume", tmp_path, "--t-save", "23.3", "--seed", "2")  # other random streams
    assert resumed["load_warnings"] == [] and resumed["t"] == pytest.approx(23.3, abs=0.05)
    straight, resume = results(tmp_path, "straight", "resume")
    assert len(straight["spikes"]) > 20
    assert differing(straight, resume) == []


def test_what_is_saved_reads_without_neuron(saved):
    tmp_path = saved
    state = checkpoint.read(tmp_path / "run.h5")
    assert sorted(state.populations) == [
        "BallAndStick.dend",
        "BallAndStick.soma",
        "ExpSyn",
        "IClamp",
        "NEURON",
        "NetStim",
    ]
    soma = state.populations["BallAndStick.soma"]
    assert soma.size == 30 and soma.info["m_hh"].kind == "variable" and soma.info["gnabar_hh"].kind == "parameter"
    assert state.meta["neuron"]["members"]["BallAndStick.soma"][:2] == [
        "BallAndStick[0].soma(0)",
        "BallAndStick[1].soma(0)",
    ]
    assert state.populations["BallAndStick.dend"].size == 150
    stim = state.populations["NetStim"]
    assert set(stim["ranvar.id1"]) == set(range(30)) and np.all(stim["ranvar.seq"] > 0)
    ring = state.projections["BallAndStick.soma->ExpSyn"]
    assert ring.nnz == 30 and np.all(ring["weight"] == 0.05) and sorted(set(ring["delay"])) == list(range(1, 8))
    assert state.projections["NetStim->ExpSyn"].nnz == 30
    assert state.projections["BallAndStick.soma->none"].nnz == 30  # the spike recorders
    assert state.rng["Random[0]"].state["seq"] == 4.0  # one draw at build, three by the script
    assert state.meta["simulator"]["name"] == "NEURON" and state.meta["dt"] == pytest.approx(0.025)


def test_another_creation_order_restores_by_identity(saved):
    tmp_path = saved
    resumed = sim("resume", tmp_path, "--reverse", "--t-end", "20")
    assert any("restored by identity" in w for w in resumed["load_warnings"])
    saved, resume = results(tmp_path, "saved", "resume")
    # every cell's state is its own (by name), though every object was created in the other order
    assert differing(saved, resume, skip=("spikes", "spike_ids")) == []
    resumed = sim("resume", tmp_path, "--reverse")  # and it runs on
    spikes = np.load(tmp_path / "resume.npz")["spikes"]
    assert len(spikes) > 10 and spikes.min() > 20


def test_a_model_one_cell_short_is_refused_unchanged(saved):
    tmp_path = saved
    refused = sim("refuse", tmp_path, "--skip", "1")
    assert refused["error"] == "StructureMismatchError" and "30 members, the model 29" in refused["message"]
    assert refused["unchanged"]


def test_a_failure_midway_puts_everything_back(saved):
    tmp_path = saved
    result = sim("midway", tmp_path, "--seed", "3")
    assert "injected failure" in result["error"] and result["unchanged"]


def test_a_compiled_mod_file_restarts_exactly(tmp_path):
    mod = tmp_path / "mod"
    mod.mkdir()
    shutil.copy(MOD, mod)
    nrnivmodl = os.path.join(os.path.dirname(sys.executable), "nrnivmodl")
    done = subprocess.run([nrnivmodl, "."], cwd=mod, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    options = ["--modpath", str(mod), "--extra", "noisyleak"]
    sim("straight", tmp_path, *options)
    sim("first", tmp_path, *options)
    sim("resume", tmp_path, *options, "--seed", "2")
    straight, resume = results(tmp_path, "straight", "resume")
    assert "BallAndStick.dend/x_noisyleak" in straight.files and "BallAndStick.dend/noisyleak.rv.seq" in straight
    assert np.any(straight["BallAndStick.dend/x_noisyleak"] != 0)
    assert differing(straight, resume) == []


def test_cvode_restores_the_state_exactly_and_continues_within_tolerance(tmp_path):
    sim("straight", tmp_path, "--cvode")
    sim("first", tmp_path, "--cvode")
    sim("resume", tmp_path, "--cvode", "--t-end", "20", "--seed", "2")
    saved, resume = results(tmp_path, "saved", "resume")
    assert differing(saved, resume, skip=("spikes", "spike_ids")) == []
    assert resume["NEURON/cvode_active"] == 1
    # CVODE's step history is no part of NEURON's state: a restart re-initialises
    # the integrator, so the run continues within its tolerance, not bit for bit
    sim("resume", tmp_path, "--cvode", "--seed", "2")
    straight, resume = results(tmp_path, "straight", "resume")
    np.testing.assert_array_equal(straight["spike_ids"], resume["spike_ids"])
    np.testing.assert_allclose(straight["spikes"], resume["spikes"], atol=1e-3)


# -- hostile files: forged here (no NEURON in this process), loaded in a child ----------------------


def _replace(state, pop, var, value):
    state.populations[pop].arrays[var] = value


FORGERIES = [
    (
        "savestate bytes far beyond the bound",
        lambda s: _replace(s, "NEURON", "savestate", np.zeros(64 << 20, np.uint8)),
        "CorruptCheckpointError",
    ),
    (
        "savestate bytes of another dtype",
        lambda s: _replace(s, "NEURON", "savestate", np.zeros(10, np.uint16)),
        "StructureMismatchError",
    ),
    (
        "a NetCon event of no NetCon",
        lambda s: _replace(
            s, "NEURON", "netcon_events.netcon", np.full_like(s.populations["NEURON"]["netcon_events.netcon"], 10**6)
        ),
        "CorruptCheckpointError",
    ),
    (
        "an event at NaN",
        lambda s: _replace(
            s, "NEURON", "netcon_events.t", np.full_like(s.populations["NEURON"]["netcon_events.t"], np.nan)
        ),
        "CorruptCheckpointError",
    ),
    (
        "a Random123 id beyond 32 bits",
        lambda s: _replace(s, "NetStim", "ranvar.id1", np.full(30, 2**40, np.int64)),
        "CorruptCheckpointError",
    ),
    (
        "a negative stream position",
        lambda s: _replace(s, "NetStim", "ranvar.seq", np.full(30, -1.0)),
        "CorruptCheckpointError",
    ),
    (
        "a hoc Random position that is not an integer",
        lambda s: s.rng["Random[0]"].state.update(seq=0.5),
        "CorruptCheckpointError",
    ),
    ("members renamed", lambda s: s.meta["neuron"]["members"]["BallAndStick.soma"].reverse(), "StructureMismatchError"),
    (
        "members that are not names",
        lambda s: s.meta["neuron"]["members"].update({"ExpSyn": [1] * 30}),
        "CorruptCheckpointError",
    ),
    ("no NEURON metadata", lambda s: s.meta.pop("neuron"), "StructureMismatchError"),
    (
        "a negative delay, which NEURON would take",
        lambda s: s.projections["NetStim->ExpSyn"].arrays.update(delay=np.full(30, -1.0)),
        "CorruptCheckpointError",
    ),
    (
        "a NaN delay",
        lambda s: s.projections["BallAndStick.soma->ExpSyn"].arrays.update(delay=np.full(30, np.nan)),
        "CorruptCheckpointError",
    ),
]


@pytest.fixture(scope="module")
def forged_loads(first_run):
    """Every forgery of FORGERIES written from the shared run's file, and
    loaded one after the other by one child process (the same model)."""
    names = []
    for i, (_, edit, _) in enumerate(FORGERIES):
        state = checkpoint.read(first_run / "run.h5")
        edit(state)
        names.append(f"forged-{i}.h5")
        checkpoint.save(first_run / names[-1], state)
    refused = sim("refuse", first_run, "--file", ",".join(names))
    return {outcome["file"]: outcome for outcome in refused["outcomes"]}


@pytest.mark.parametrize("index", range(len(FORGERIES)), ids=[what for what, _, _ in FORGERIES])
def test_a_forged_file_is_refused_unchanged(forged_loads, index):
    what, _, error = FORGERIES[index]
    outcome = forged_loads[f"forged-{index}.h5"]
    assert outcome.get("error") == error, (what, outcome)
    assert outcome["unchanged"], what


def test_a_forged_fingerprint_never_reaches_neurons_reader(saved):
    # a fingerprint that is not the model's: the SaveState bytes are not used,
    # the readable arrays continue the run (warned); nothing aborts
    def edit(state):
        state.meta["neuron"]["fingerprint"] = "0" * 16
        _replace(state, "NEURON", "savestate", np.full(1000, 255, np.uint8))

    tmp_path = saved
    state = checkpoint.read(tmp_path / "run.h5")
    edit(state)
    checkpoint.save(tmp_path / "forged.h5", state)
    resumed = sim("resume", tmp_path, "--file", "forged.h5", "--t-end", "20")
    assert any("restored by identity" in w for w in resumed["load_warnings"])
    saved, resume = results(tmp_path, "saved", "resume")
    assert differing(saved, resume, skip=("spikes", "spike_ids")) == []


def test_the_adapter_declares_its_contract():
    # imported without NEURON: the flags are class attributes
    from checkpoint.adapters.neuron.adapter import NEURONAdapter

    assert NEURONAdapter.simulator == "NEURON" and NEURONAdapter.exact_restart and NEURONAdapter.restores_dt
    assert NEURONAdapter.shardable and not NEURONAdapter.captures_monitors  # MPI: tests/test_neuron_mpi.py
    assert not NEURONAdapter.takes_simulator_order and not NEURONAdapter.restores_monitors


# -- the adapter contract (tests/adapter_contract.py), each test in a child pytest of its own ---------------
# (NEURON keeps one model per interpreter, and its SaveState reader must not run
# again once a model it read into is deleted: the suite builds several models)

CONTRACT = [
    "test_the_adapter_declares_its_contract",
    "test_capture_and_describe_change_nothing",
    "test_a_size_that_does_not_fit_changes_nothing",
    "test_a_damaged_array_changes_nothing",
    "test_strict_refuses_what_a_plain_load_keeps",
    "test_a_failure_midway_puts_everything_back",
    "test_recordings_follow_the_records_flag",
    "test_a_checkpointer_loop_resumes_into_another_model",
    "test_parameters_as_json_set_another_model",
    "test_a_fresh_process_resumes_where_the_run_left_off",
] + [f"test_every_format_restores_everything_into_other_connectivity[{fmt}]" for fmt in ("h5", "npz", "mat", "txt.gz")]


@pytest.mark.parametrize("test", CONTRACT)
def test_the_adapter_contract(tmp_path, test):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(tmp_path / "t"),
            f"{os.path.join(HERE, 'neuron_contract.py')}::TestNEURONContract::{test}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=HERE,
    )
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]


def test_no_savestate_is_read_after_the_model_it_was_read_into_is_deleted(tmp_path):
    # NEURON 9's SaveState.fread crashes the process once the model it last
    # read into is deleted and another built: then the load continues, warned
    script = os.path.join(str(tmp_path), "twice.py")
    with open(script, "w") as f:
        f.write(TWICE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    done = subprocess.run([sys.executable, script, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    first, second = json.loads(done.stdout.strip().splitlines()[-1])
    assert not any("structure changed" in w for w in first)
    assert any("structure changed since this process last read a SaveState" in w for w in second)


TWICE = """
import gc, json, os, sys, warnings
import checkpoint, neuron_models
from neuron import h
folder, seen, model = sys.argv[1], [], None
for i in range(2):
    model = None
    gc.collect()
    model = neuron_models.build(n=6, hoc_random=False)
    h.finitialize(-65)
    h.continuerun(5)
    checkpoint.save(os.path.join(folder, f"{i}.h5"), h)
    model = None
    gc.collect()
    model = neuron_models.build(n=6, seed=2, hoc_random=False)
    h.finitialize(-65)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoint.load(os.path.join(folder, f"{i}.h5"), h)
    seen.append([str(w.message) for w in caught])
print(json.dumps(seen))
"""
