"""The conformance suite of the adapter contract (checkpoint/adapters/base.py).

Every adapter's test module subclasses :class:`AdapterContract` (as zarr's
stores subclass ``StoreTests``) and provides, as methods of the subclass:

* ``make(seed)``: a fresh model of the test network whose random
  connectivity depends on ``seed`` (simulators with one kernel per process
  may reset it: the suite never uses a model after making the next one);
* ``advance(model)``: run it a little;
* ``captured(model)``: every array the adapter sees, copied
  (:func:`helpers.capture_copy`);
* ``fail_midway(monkeypatch, model)``: make the next restore fail after it
  has changed something;
* ``restored``: labels a whole-network restore must report;
* ``parts(model)``: one population and one projection of the model, as a
  script would pass them to save/load on their own;
* ``unsupported(model)``: objects of the simulator the adapter refuses;
* optionally ``fresh(seed, folder)``: the model as a new process builds it
  (no pytest fixtures there; ``folder`` is its scratch space), by default
  ``make(seed)``; and, for an adapter that does not declare
  ``exact_restart``, ``continuation_matches(straight, resumed)``.

A test that every simulator must pass goes here; the simulator's own module
keeps only what is particular to it.
"""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import checkpoint
from checkpoint import CheckpointError, CorruptCheckpointError, StructureMismatchError, UnsupportedObjectError
from checkpoint.adapters import adapter_for
from checkpoint.adapters.base import Adapter, Recorder
from checkpoint.formats import read_state, write_state
from helpers import assert_same_capture, folder_digests

FORMATS = ["h5", "npz", "mat", "txt.gz"]


class AdapterContract:
    restored = ()

    # -- to provide ------------------------------------------------------------

    def make(self, seed):
        raise NotImplementedError

    def advance(self, model):
        raise NotImplementedError

    def captured(self, model):
        raise NotImplementedError

    def fail_midway(self, monkeypatch, model):
        raise NotImplementedError

    def parts(self, model):
        raise NotImplementedError

    def unsupported(self, model):
        raise NotImplementedError

    def fresh(self, seed, folder):
        return self.make(seed)

    def continuation_matches(self, straight, resumed):
        """An inexact restart (``exact_restart`` false) ends with the straight
        run's structure: the same arrays, shapes and connectivity."""
        assert straight.keys() == resumed.keys()
        for key, value in straight.items():
            if isinstance(value, np.ndarray):
                assert value.shape == resumed[key].shape and value.dtype == resumed[key].dtype, key
                if key.endswith(("/indptr", "/indices")):
                    assert np.array_equal(value, resumed[key]), key

    # -- the contract ------------------------------------------------------------

    def load_changes_nothing(self, path, model, error, match=None):
        """Loading ``path`` raises ``error`` naming the file; the model and
        the file's folder are as they were."""
        before, files = self.captured(model), folder_digests(os.path.dirname(path))
        with pytest.raises(error, match=match) as info:
            checkpoint.load(path, model)
        assert os.path.basename(str(path)) in str(info.value)
        assert_same_capture(before, self.captured(model))
        assert folder_digests(os.path.dirname(path)) == files
        return info.value

    def test_the_adapter_declares_its_contract(self):
        adapter = adapter_for(self.make(1))
        assert isinstance(adapter, Adapter)
        for flag in (
            "shardable",
            "captures_monitors",
            "restores_monitors",
            "exact_restart",
            "restores_dt",
            "takes_simulator_order",
            "records",
        ):
            assert isinstance(getattr(adapter, flag), bool), flag

    def test_capture_and_describe_change_nothing(self):
        model = self.make(1)
        self.advance(model)
        before = self.captured(model)
        adapter = adapter_for(model)
        adapter.capture()
        adapter.describe()
        adapter.clock()
        assert_same_capture(before, self.captured(model))

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_every_format_restores_everything_into_other_connectivity(self, tmp_path, fmt):
        model = self.make(1)
        self.advance(model)
        before = self.captured(model)
        state = adapter_for(model).capture()
        saved_time, saved_step = state.time, state.step
        checkpoint.save(tmp_path / f"c.{fmt}", model)
        other = self.make(2)
        report = checkpoint.load(tmp_path / f"c.{fmt}", other)
        assert report.time == pytest.approx(saved_time) and report.step == saved_step
        assert set(self.restored) <= set(report.restored), sorted(set(self.restored) - set(report.restored))
        assert_same_capture(before, self.captured(other))

    def test_a_size_that_does_not_fit_changes_nothing(self, tmp_path):
        model = self.make(1)
        checkpoint.save(tmp_path / "c.h5", model)
        state = read_state(tmp_path / "c.h5")
        name, pop = next((n, p) for n, p in state.populations.items() if p.size)
        pop.size += 1
        pop.arrays = {
            var: (np.append(a, a[:1]) if pop.info[var].scope == "neuron" else a) for var, a in pop.arrays.items()
        }
        write_state(tmp_path / "grown.h5", state)
        error = self.load_changes_nothing(tmp_path / "grown.h5", self.make(2), StructureMismatchError)
        assert name in str(error)

    def test_a_damaged_array_changes_nothing(self, tmp_path):
        model = self.make(1)
        self.advance(model)
        checkpoint.save(tmp_path / "c.npz", model)
        stored = read_state(tmp_path / "c.npz", keep_simulator_order=True)  # the arrays as the file holds them
        largest = max(
            (
                a
                for group in list(stored.populations.values()) + list(stored.projections.values())
                for a in group.arrays.values()
            ),
            key=lambda a: a.nbytes,
        )
        data = bytearray((tmp_path / "c.npz").read_bytes())
        at = bytes(data).find(np.ascontiguousarray(largest).tobytes())
        assert at >= 0 and largest.nbytes
        data[at + largest.nbytes // 2] ^= 0xFF  # one byte of the largest array's data
        (tmp_path / "c.npz").write_bytes(bytes(data))
        self.load_changes_nothing(tmp_path / "c.npz", self.make(2), CorruptCheckpointError, "checksum")

    def test_strict_refuses_what_a_plain_load_keeps(self, tmp_path):
        model = self.make(1)
        checkpoint.save(tmp_path / "c.h5", model)
        state = read_state(tmp_path / "c.h5")
        name, pop = next((n, p) for n, p in state.populations.items() if p.arrays)
        var = sorted(pop.arrays)[0]
        del pop.arrays[var], pop.info[var]
        write_state(tmp_path / "less.h5", state)
        other = self.make(2)
        before = self.captured(other)
        with pytest.raises(StructureMismatchError, match="strict"):
            checkpoint.load(tmp_path / "less.h5", other, strict=True)
        assert_same_capture(before, self.captured(other))
        with pytest.warns(checkpoint.CheckpointWarning, match="kept"):
            report = checkpoint.load(tmp_path / "less.h5", other)
        assert f"{name}.{var}" in report.kept

    def test_a_failure_midway_puts_everything_back(self, tmp_path, monkeypatch):
        model = self.make(1)
        self.advance(model)
        checkpoint.save(tmp_path / "c.h5", model)
        other = self.make(2)
        before = self.captured(other)
        self.fail_midway(monkeypatch, other)
        with pytest.raises(RuntimeError, match="injected"):
            checkpoint.load(tmp_path / "c.h5", other)
        monkeypatch.undo()
        assert_same_capture(before, self.captured(other))
        self.advance(other)  # and the model still runs

    def test_objects_on_their_own_restore_into_another_model(self, tmp_path):
        """A population and a projection saved on their own (as ANNarchy's
        ``pop.save``) load into another model's of the same name."""
        model = self.make(1)
        self.advance(model)
        before = self.captured(model)
        names = []
        for k, part in enumerate(self.parts(model)):
            state = adapter_for(part).capture()
            names += [f"populations/{n}/" for n in state.populations] + [f"projections/{n}/" for n in state.projections]
            checkpoint.save(tmp_path / f"part{k}.{FORMATS[k % len(FORMATS)]}", part)
            assert read_state(tmp_path / f"part{k}.{FORMATS[k % len(FORMATS)]}").meta["content"] != "network"
        other = self.make(2)
        for k, part in enumerate(self.parts(other)):
            report = checkpoint.load(tmp_path / f"part{k}.{FORMATS[k % len(FORMATS)]}", part)
            assert report.restored
        after = self.captured(other)
        for prefix in names:
            keys = [key for key in before if key.startswith(prefix)]
            assert keys, prefix
            assert_same_capture({k: before[k] for k in keys}, {k: after[k] for k in keys})

    def test_an_unsupported_object_is_refused_and_nothing_is_written(self, tmp_path):
        model = self.make(1)
        for obj in self.unsupported(model):
            with pytest.raises(UnsupportedObjectError):
                checkpoint.save(tmp_path / "c.h5", obj)
            assert not list(tmp_path.iterdir()), obj

    def test_recordings_follow_the_records_flag(self, tmp_path):
        """An adapter that ``records`` streams its recorders into segments a
        checkpoint commits; one that does not is refused by the Checkpointer
        at once, naming the folder, before anything is written."""
        model = self.make(1)
        adapter = adapter_for(model)
        folder = tmp_path / "run"
        if not adapter.records:
            with pytest.raises(CheckpointError, match="recordings=True") as info:
                checkpoint.Checkpointer(folder, model, recordings=True, background=False)
            assert str(folder) in str(info.value) and not folder.exists()
            return
        recorders = adapter.recorders()
        for recorder in recorders:
            assert isinstance(recorder, Recorder) and recorder.name and recorder.kind in ("events", "samples")
        if not recorders:  # nothing to stream is said, not silent
            with pytest.warns(checkpoint.CheckpointWarning, match="nothing will be recorded"):
                checkpoint.Checkpointer(folder, model, recordings=True, background=False).close()
            return
        with checkpoint.Checkpointer(folder, model, recordings=True, background=False) as ckpt:
            self.advance(model)
            ckpt.save()
            # what was recorded is in the segment, not in memory
            for recorder in ckpt._recorders():
                assert all(len(values) == 0 for values in recorder.take().values()), recorder.name
        rec = checkpoint.recordings(folder)
        assert sorted(rec) == sorted(r.name for r in recorders) and len(rec.segments) == 1
        assert rec.t_start == 0.0 and rec.t_end == pytest.approx(adapter_for(model).clock()[0])
        for name in rec:  # a sampling recorder samples (events may be none in a short advance)
            assert rec[name].kind == "events" or len(rec[name]["t"]), name

    def test_a_checkpointer_loop_resumes_into_another_model(self, tmp_path):
        """Periodic checkpoints as a long run takes them (``keep`` pruning
        the old ones); ``restore_latest`` puts the newest into a model built
        with another seed, and an empty folder is a fresh start."""
        folder = tmp_path / "run"
        model = self.make(1)
        with checkpoint.Checkpointer(folder, model, keep=2, background=False) as ckpt:
            assert ckpt.restore_latest() is None  # nothing yet: a fresh start
            for _ in range(3):
                self.advance(model)
                ckpt.save()
        before = self.captured(model)
        assert len([n for n in os.listdir(folder) if n.startswith("ckpt-")]) == 2
        other = self.make(2)
        with checkpoint.Checkpointer(folder, other, keep=2, background=False) as ckpt:
            report = ckpt.restore_latest()
        assert report is not None and set(self.restored) <= set(report.restored)
        assert_same_capture(before, self.captured(other))

    def test_parameters_as_json_set_another_model(self, tmp_path):
        """``save_parameters`` writes each object's global parameters as
        JSON; ``load_parameters`` sets them in another model and returns the
        ``network`` dictionary; the other model then writes the same JSON."""
        model = self.make(1)
        checkpoint.save_parameters(tmp_path / "p.json", model, network={"note": "contract", "k": [1, 2]})
        saved = json.loads((tmp_path / "p.json").read_text())
        assert set(saved) == {"populations", "projections", "network"}
        other = self.make(2)
        assert checkpoint.load_parameters(tmp_path / "p.json", other) == {"note": "contract", "k": [1, 2]}
        checkpoint.save_parameters(tmp_path / "again.json", other)
        again = json.loads((tmp_path / "again.json").read_text())
        assert {k: again[k] for k in ("populations", "projections")} == {
            k: saved[k] for k in ("populations", "projections")
        }

    def test_a_fresh_process_resumes_where_the_run_left_off(self, tmp_path):
        """The restart a long run lives on: a run of four advances; a run of
        two, saved; a new process that builds the model with another seed,
        loads the file and advances twice.  Right after the load the model
        holds what was saved; at the end it holds what the straight run does,
        bit for bit where the adapter declares ``exact_restart``."""
        here = os.path.dirname(os.path.abspath(__file__))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(here), here]))
        runs = {}
        for mode in ("prepare", "straight", "first", "resume"):  # one folder: one build, if it compiles
            done = subprocess.run(
                [sys.executable, os.path.join(here, "contract_process.py"), type(self).__module__,
                 type(self).__qualname__, mode, str(tmp_path)],
                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
            if mode != "prepare":
                with open(tmp_path / f"{mode}.pickle", "rb") as f:
                    runs[mode] = pickle.load(f)
        assert_same_capture(runs["first"]["saved"], runs["resume"]["loaded"])
        saved, straight, resumed = runs["first"]["saved"], runs["straight"]["end"], runs["resume"]["end"]
        changed = [k for k, v in straight.items() if isinstance(v, np.ndarray) and not np.array_equal(v, saved[k])]
        assert changed, "the last two advances changed nothing: the comparison would prove nothing"
        if runs["resume"]["exact_restart"]:
            assert_same_capture(straight, resumed)
        else:
            self.continuation_matches(straight, resumed)
