"""Recordings that survive restarts (checkpoint.recordings): runs killed with
SIGKILL and resumed in fresh processes end with the recordings of an
uninterrupted run; hostile segments are refused before any change."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

import checkpoint
from checkpoint.errors import CheckpointError, CorruptCheckpointError

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "recordings_sim.py")
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))


def sim(*args, kill=False):
    done = subprocess.run([sys.executable, SIM, *map(str, args)], capture_output=True, text=True, timeout=600)
    if kill:
        assert done.returncode == -9, done.stderr  # it was SIGKILLed, as planned
    else:
        assert done.returncode == 0, done.stderr


def straight(engine, tmp_path):
    out = tmp_path / "straight.npz"
    sim(engine, "straight", out)
    with np.load(out) as f:
        return {key: f[key] for key in f.files}


def assert_same_bits(rec, expected):
    names = {key.split("/")[0] for key in expected}
    assert set(rec) == names
    for key, value in expected.items():
        name, var = key.split("/")
        got = np.asarray(rec[name][var])
        assert got.dtype == value.dtype and got.shape == value.shape, key
        assert got.tobytes() == value.tobytes(), key  # bit for bit


def killed_and_resumed(engine, tmp_path, kills):
    """A run killed at each (chunk, phase) of ``kills``, each time resumed in a
    fresh process whose network is built from another seed, then finished."""
    folder = tmp_path / "run"
    for seed, (chunk, phase) in enumerate(kills, start=1):
        sim(engine, "run", folder, seed, chunk, phase, kill=True)
    sim(engine, "run", folder, len(kills) + 1)
    return folder


KILLS = [(2, "step"), (7, "segment"), (10, "write"), (17, "step")]


@pytest.mark.parametrize("engine", ["embedded", "brian2-numpy"])
def test_killed_and_resumed_run_records_what_a_straight_run_does(engine, tmp_path):
    if engine.startswith("brian2"):
        pytest.importorskip("brian2")
    expected = straight(engine, tmp_path)
    folder = killed_and_resumed(engine, tmp_path, KILLS if engine == "embedded" else KILLS[1:])
    rec = checkpoint.recordings(folder)
    assert rec.t_start == 0.0 and rec.t_end == pytest.approx(120.0)
    assert_same_bits(rec, expected)
    with checkpoint.recordings(folder, lazy=True) as lazy:  # the same, read on demand
        for key, value in expected.items():
            name, var = key.split("/")
            assert np.asarray(lazy[name][var]).tobytes() == value.tobytes()
            assert np.array_equal(lazy[name][var][3 : len(value) - 2], value[3 : len(value) - 2])
    # nothing of a killed interval is left over: every segment is committed
    names = sorted(n for n in os.listdir(folder) if n.startswith(("rec-", ".rec-")))
    assert names == sorted(rec.segments)


def test_brian2_cython_killed_and_resumed(tmp_path):
    pytest.importorskip("brian2")
    pytest.importorskip("Cython")
    engine = "brian2-cython"
    expected = straight(engine, tmp_path)
    folder = killed_and_resumed(engine, tmp_path, [(4, "segment"), (14, "step")])
    assert_same_bits(checkpoint.recordings(folder), expected)


def test_annarchy_killed_and_resumed(tmp_path, tmp_path_factory, monkeypatch):
    pytest.importorskip("ANNarchy")
    # compiled once, by the straight run; the resumed runs find the same code
    monkeypatch.setenv("ANNARCHY_BUILD", str(tmp_path_factory.getbasetemp() / "annarchy_recordings"))
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    expected = straight("annarchy", tmp_path)
    folder = killed_and_resumed("annarchy", tmp_path, [(2, "step"), (7, "segment"), (14, "write")])
    rec = checkpoint.recordings(folder)
    assert set(rec) == {"spikes", "vm"} and rec.t_end == 120.0
    assert_same_bits(rec, expected)


def test_nest_killed_and_resumed_loses_and_repeats_nothing(tmp_path):
    pytest.importorskip("nest")  # run in subprocesses only: NEST cannot share a process with Brian2
    expected = straight("nest", tmp_path)
    folder = killed_and_resumed("nest", tmp_path, [(5, "step"), (11, "segment"), (17, "step")])
    rec = checkpoint.recordings(folder)
    assert set(rec) == {"spike_recorder@42", "multimeter@43"} and rec.t_end == pytest.approx(120.0)
    vm, spikes = rec["multimeter@43"], rec["spike_recorder@42"]
    # every sample time of an uninterrupted run, once: nothing lost or repeated at a boundary
    assert np.array_equal(vm["t"], expected["multimeter@43/t"])
    assert np.array_equal(vm["index"], [1, 5, 10])
    # times are the run's global time, continuous across NEST's restarts (its clock starts at 0)
    from checkpoint.formats import read_state

    for name in rec.segments:
        segment = read_state(folder / name)
        start, end = segment.meta["recordings"]["t_start"], segment.meta["recordings"]["t_end"]
        t = segment.populations["spike_recorder@42"]["t"]
        assert np.all((t > start - 1e-9) & (t <= end + 1e-9)), name
    pairs = set(zip(spikes["i"].tolist(), np.round(spikes["t"], 6).tolist()))
    assert len(pairs) == len(spikes["t"]) > 0  # no spike twice
    # up to the first restart, the same spikes as the uninterrupted run
    first = expected["spike_recorder@42/t"] <= 15.0 + 1e-9
    assert np.array_equal(
        np.sort(spikes["t"][spikes["t"] <= 15.0 + 1e-9]), np.sort(expected["spike_recorder@42/t"][first])
    )


def run_embedded(folder, chunks, every_ms=15.0, **options):
    """An uninterrupted embedded run in this process (5 ms chunks)."""
    from recordings_sim import Embedded

    sim = Embedded(1)
    with checkpoint.Checkpointer(
        folder, sim.net, every_ms=every_ms, recordings=True, background=False, **options
    ) as ckpt:
        ckpt.restore_latest()
        while sim.net.time < chunks * 5.0 - 1e-9:
            sim.run_chunk()
            ckpt.maybe_save()
        ckpt.save(skip_if_saved=True)
    return sim


def test_a_deleted_newest_checkpoint_leaves_the_recordings_up_to_the_one_before(tmp_path):
    folder = tmp_path / "run"
    run_embedded(folder, 12, keep=5)
    everything = checkpoint.recordings(folder)
    checkpoints = sorted(n for n in os.listdir(folder) if n.startswith("ckpt-"))
    os.remove(folder / checkpoints[-1])
    before = checkpoint.recordings(folder)
    assert before.t_end == 45.0 and len(before.segments) == len(everything.segments) - 1
    for name, recording in everything.items():
        kept = recording["t"] <= 45.0  # the embedded recorders stamp a step with its end
        for var in ("i", "t", "v"):
            if var in recording:
                assert np.array_equal(before[name][var], np.asarray(recording[var])[kept])
    # a resume from the one before discards the segment its successor committed
    from recordings_sim import Embedded

    sim = Embedded(2)
    with checkpoint.Checkpointer(folder, sim.net, every_ms=15.0, recordings=True, background=False) as ckpt:
        ckpt.restore_latest()
        assert sim.net.time == 45.0
    assert sorted(n for n in os.listdir(folder) if n.startswith("rec-")) == before.segments


def test_retention_never_deletes_a_committed_segment(tmp_path):
    folder = tmp_path / "run"
    run_embedded(folder, 24, keep=1)
    assert len([n for n in os.listdir(folder) if n.startswith("ckpt-")]) == 1
    rec = checkpoint.recordings(folder)
    assert len(rec.segments) == 8 and rec.t_start == 0.0 and rec.t_end == 120.0
    assert all(os.path.exists(folder / name) for name in rec.segments)


def test_memory_stays_bounded_by_one_interval(tmp_path):
    sim = run_embedded(tmp_path / "run", 24)
    # everything recorded went into segments: the recorders hold nothing
    assert all(len(r.take()["t"]) == 0 for r in sim.net.recorders.values())


def test_another_runs_folder_is_refused(tmp_path):
    folder = tmp_path / "run"
    run_embedded(folder, 6)
    from recordings_sim import Embedded

    sim = Embedded(1)
    with checkpoint.Checkpointer(folder, sim.net, every_ms=15.0, recordings=True, background=False) as ckpt:
        sim.run_chunk()  # a fresh run, not resumed, in the folder of another
        with pytest.raises(CheckpointError, match="another run"):
            ckpt.save()


def test_recordings_need_a_recording_object_and_exclude_monitors(tmp_path):
    net = checkpoint.Network()
    with pytest.raises(CheckpointError):
        checkpoint.Checkpointer(tmp_path / "a", net, recordings=True, monitors=True)


def _forge(path, edit):
    """Rewrite a segment as a stranger could: valid digests, hostile content."""
    from checkpoint.formats import read_state, write_state

    state = read_state(path)
    edit(state)
    write_state(path, state)


def _checkpoint_lists_segment(folder, name, edit_entry):
    """Rewrite the newest checkpoint with its listing of ``name`` edited."""
    from checkpoint.formats import read_state, write_state

    newest = sorted(n for n in os.listdir(folder) if n.startswith("ckpt-"))[-1]
    state = read_state(folder / newest)
    entries = state.meta["recordings"]["segments"]
    for entry in entries:
        if entry[0] == name:
            edit_entry(entry)
    write_state(folder / newest, state)


def _shift_times(state):
    state.populations["spikes"].arrays["t"] = state.populations["spikes"].arrays["t"] + 1.0
    state.meta["recordings"]["t_start"] += 1.0


HOSTILE = {
    "flipped byte": None,
    "forged, digest not the listed one": lambda s: s.populations["spikes"].arrays.__setitem__(
        "t", s.populations["spikes"].arrays["t"] + 1.0
    ),
    "other run": lambda s: s.meta["recordings"].__setitem__("run", "0" * 16),
    "shifted interval": _shift_times,
    "ragged events": lambda s: s.populations["spikes"].arrays.__setitem__("i", np.zeros(3, np.int64)),
    "listed size lies": "size",
    "listed name escapes": "name",
    "missing": "missing",
}


@pytest.mark.parametrize("how", list(HOSTILE))
def test_hostile_segments_are_refused_naming_the_file(tmp_path, how):
    folder = tmp_path / "run"
    run_embedded(folder, 9)
    name = checkpoint.recordings(folder).segments[1]
    path = folder / name
    edit = HOSTILE[how]
    if edit is None:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif edit == "size":
        _checkpoint_lists_segment(folder, name, lambda e: e.__setitem__(1, 10**15))
    elif edit == "name":
        _checkpoint_lists_segment(folder, name, lambda e: e.__setitem__(0, "../" + name))
    elif edit == "missing":
        os.remove(path)
    else:
        _forge(path, edit)
        if how != "forged, digest not the listed one":  # a stranger recomputes the listing too
            size, digest = os.path.getsize(path), checkpoint.read(path).digest
            _checkpoint_lists_segment(folder, name, lambda e: (e.__setitem__(1, size), e.__setitem__(2, digest)))
    before = {n: (folder / n).read_bytes() for n in os.listdir(folder) if not n.startswith(".")}
    if how == "listed name escapes":  # a checkpoint whose listing is bad is a damaged checkpoint: passed over
        with pytest.warns(checkpoint.CheckpointWarning, match="bad entry"):
            assert checkpoint.recordings(folder).t_end == 30.0
    else:
        with pytest.raises(CorruptCheckpointError) as caught:
            checkpoint.recordings(folder)
        assert name in str(caught.value)
    after = {n: (folder / n).read_bytes() for n in os.listdir(folder) if not n.startswith(".")}
    assert after == before  # nothing changed


def test_cli_summary_and_export_to_every_format(tmp_path):
    folder = tmp_path / "run"
    run_embedded(folder, 9)
    rec = checkpoint.recordings(folder)
    cli = [sys.executable, "-m", "checkpoint", "recordings", str(folder)]
    summary = subprocess.run(cli, capture_output=True, text=True, check=True).stdout
    assert "'spikes' (events)" in summary and "'vm' (samples)" in summary and rec.run in summary
    for suffix in (".h5", ".npz", ".mat", ".nwb"):
        out = tmp_path / f"all{suffix}"
        subprocess.run(cli + ["--out", str(out)], capture_output=True, text=True, check=True)
        assert out.exists()
    with h5py.File(tmp_path / "all.h5") as f:
        assert np.array_equal(f["spikes/t"][()], rec["spikes"]["t"]) and f["vm"].attrs["kind"] == "samples"
    with np.load(tmp_path / "all.npz") as f:
        assert np.array_equal(f["vm/v"], rec["vm"]["v"])
    import scipy.io

    mat = scipy.io.loadmat(tmp_path / "all.mat", squeeze_me=False)
    assert np.array_equal(mat["spikes"]["i"][0, 0].ravel(), rec["spikes"]["i"])


def test_nwb_reads_back_with_pynwb(tmp_path):
    pynwb = pytest.importorskip("pynwb")
    folder = tmp_path / "run"
    run_embedded(folder, 9)
    rec = checkpoint.recordings(folder)
    from checkpoint.recordings.export import export

    export(rec, tmp_path / "run.nwb")
    with pynwb.NWBHDF5IO(str(tmp_path / "run.nwb"), "r") as io:
        nwb = io.read()
        units = nwb.units.to_dataframe()
        i, t = rec["spikes"]["i"], rec["spikes"]["t"]
        assert len(units) == len(np.unique(i))
        for _, unit in units.iterrows():
            assert np.array_equal(unit["spike_times"] * 1000.0, t[i == unit["neuron"]]) or np.allclose(
                unit["spike_times"] * 1000.0, t[i == unit["neuron"]], rtol=0, atol=1e-9
            )
        series = nwb.acquisition["vm.v"]
        assert np.array_equal(series.data[:], rec["vm"]["v"])
        assert np.allclose(series.timestamps[:] * 1000.0, rec["vm"]["t"])


def test_an_export_into_the_runs_folder_is_refused(tmp_path):
    folder = tmp_path / "run"
    run_embedded(folder, 6)
    before = sorted(os.listdir(folder))
    segment = checkpoint.recordings(folder).segments[0]
    from checkpoint.recordings.export import export

    for name in (segment.replace(".h5", ".npz"), "all.h5"):
        with pytest.raises(CheckpointError, match="run's folder"):
            export(checkpoint.recordings(folder), folder / name)
    done = subprocess.run(
        [sys.executable, "-m", "checkpoint", "recordings", str(folder), "--out", str(folder / "all.mat")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "run's folder" in done.stderr
    assert sorted(os.listdir(folder)) == before


def test_what_was_recorded_before_the_checkpointer_starts_the_recordings(tmp_path):
    """A warm-up recorded before the Checkpointer is the run's too: the
    first segment, and the run, start at its first record."""
    from recordings_sim import Embedded

    sim, straight = Embedded(1), Embedded(1)
    sim.run_chunk()  # 0 .. 5 ms, before the Checkpointer
    with checkpoint.Checkpointer(tmp_path / "run", sim.net, recordings=True, background=False) as ckpt:
        sim.run_chunk()
        ckpt.save()
    straight.run_chunk()
    straight.run_chunk()
    rec = checkpoint.recordings(tmp_path / "run")
    assert rec.t_end == 10.0 and rec.t_start <= 0.5
    for name, recorder in straight.net.recorders.items():
        for var, values in recorder.take().items():
            assert np.array_equal(rec[name][var], values), (name, var)


def test_records_from_before_a_load_that_moved_the_clock_back_are_left_out_and_said(tmp_path):
    """Records a recorder holds from after the time a load() took the
    network back to are from no course this run takes: a segment that
    held them would be one no reader accepts."""
    from recordings_sim import Embedded

    sim = Embedded(1)
    checkpoint.save(tmp_path / "start.h5", sim.net)
    sim.run_chunk()
    sim.run_chunk()  # 10 ms recorded, then the clock goes back to 0
    checkpoint.load(tmp_path / "start.h5", sim.net)
    with checkpoint.Checkpointer(tmp_path / "run", sim.net, recordings=True, background=False) as ckpt:
        sim.run_chunk()
        with pytest.warns(checkpoint.CheckpointWarning, match="outside .* left out"):
            ckpt.save()
    rec = checkpoint.recordings(tmp_path / "run")  # readable, and only times of this run's interval
    assert rec.t_end == 5.0
    assert all(np.all(np.asarray(rec[name]["t"]) <= 5.0) for name in rec)
