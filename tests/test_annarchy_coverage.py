"""docs/annarchy.rst's coverage table, one test per row.

Rows marked exact: a network of tests/annarchy_models.py (a subclass of
``ann.Network``, as ANNarchy's documentation writes them) runs 20 ms, is
saved, runs 20 ms more; a new process builds it with another seed (other
random connectivity and values), compiles it, loads, runs 20 ms; every
variable, every synapse and what the monitors recorded in the second half
must be equal bit for bit.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import annarchy_models
import checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))


def run_model(model, build, folder, mode):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    done = subprocess.run(
        [sys.executable, os.path.join(HERE, "annarchy_models.py"), model, str(build), str(folder), mode],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


@pytest.mark.parametrize("model", sorted(annarchy_models.MODELS))
def test_exact_in_a_fresh_process_with_another_seed(tmp_path, model):
    # the resume compiles into the first's folder, as a restarted job does: ANNarchy
    # regenerates the code and reuses the library where it is the same (it holds no
    # state; 5 s against 60 s a compile here), and compiles afresh where it is not
    run_model(model, tmp_path / "build", tmp_path, "first")
    run_model(model, tmp_path / "build", tmp_path, "resume")
    straight, resumed = np.load(tmp_path / "straight.npz"), np.load(tmp_path / "resumed.npz")
    assert sorted(straight.files) == sorted(resumed.files)
    for key in straight.files:
        assert np.array_equal(straight[key], resumed[key], equal_nan=True), key


def test_structural_plasticity_saves_the_connectivity_of_the_moment(tmp_path):
    run_model("structural_plasticity", tmp_path / "build", tmp_path, "first")
    initial = np.load(tmp_path / "initial.npz")["rewired.pairs"]
    saved = checkpoint.read(tmp_path / "c.h5").projections["rewired"]
    pairs = np.stack([np.repeat(np.arange(saved.shape[0]), np.diff(saved.indptr)), saved.indices])
    assert pairs.shape != initial.shape or not np.array_equal(pairs, initial)  # synapses came and went


def test_shared_weights_are_warned_about_at_save(tmp_path):
    import ANNarchy as ann
    from ANNarchy.extensions.convolution import Convolution, Pooling

    class Shared(ann.Network):
        def __init__(self):
            super().__init__(dt=1.0, seed=1)
            image = self.create(geometry=(8, 8), neuron=ann.Neuron(parameters="r = 0.0"), name="image")
            blurred = self.create(geometry=(8, 8), neuron=ann.Neuron(equations="r = sum(exc)"), name="blurred")
            pooled = self.create(geometry=(4, 4), neuron=ann.Neuron(equations="r = sum(exc)"), name="pooled")
            self.blur = self.connect(Convolution(image, blurred, "exc", name="blur"))
            self.blur.connect_filter(weights=np.ones((3, 3)) / 9.0)
            self.connect(Pooling(blurred, pooled, "exc", operation="max", name="pool")).pooling()

    net = Shared()
    net.compile(directory=str(tmp_path / "build"), silent=True)
    with pytest.warns(checkpoint.CheckpointWarning, match="blur, pool share their weights"):
        checkpoint.save(tmp_path / "c.h5", net)
    saved = checkpoint.read(tmp_path / "c.h5")
    assert sorted(saved.populations) == ["blurred", "image", "pooled"] and not saved.projections
    with pytest.raises(checkpoint.UnsupportedObjectError, match="filter your script sets"):
        checkpoint.save(tmp_path / "blur.h5", net.blur)


def test_single_precision_is_saved_as_float32(tmp_path):
    run_model("single_precision_and_current_injection", tmp_path / "build", tmp_path, "first")
    cells = checkpoint.read(tmp_path / "c.h5").populations["cells"]
    assert cells["v"].dtype == np.float32 and cells["noise"].dtype == np.float32


def test_a_float64_file_into_a_float32_network_is_an_error_not_a_rounding(tmp_path):
    import ANNarchy as ann

    class Tiny(ann.Network):
        def __init__(self, dtype):
            super().__init__(dt=0.5, seed=1)
            self.config(dtype=dtype)
            self.create(5, ann.Izhikevich, name="cells")

    wide, narrow = Tiny(ann.float64), Tiny(ann.float32)
    wide.compile(directory=str(tmp_path / "wide"), silent=True)
    narrow.compile(directory=str(tmp_path / "narrow"), silent=True)
    wide.get_population("cells").v = -60.123456789
    checkpoint.save(tmp_path / "wide.h5", wide)
    before = np.array(narrow.get_population("cells").v)
    with pytest.raises(checkpoint.StructureMismatchError, match="float64 values do not fit the model's float32"):
        checkpoint.load(tmp_path / "wide.h5", narrow)
    assert np.array_equal(narrow.get_population("cells").v, before)
    checkpoint.save(tmp_path / "narrow.h5", narrow)  # the other way is exact: float32 fits float64
    checkpoint.load(tmp_path / "narrow.h5", wide)
    assert np.array_equal(wide.get_population("cells").v, before.astype(np.float64))


def test_views_are_refused_before_anything_is_written(tmp_path):
    import ANNarchy as ann

    class Small(ann.Network):
        def __init__(self, seed=1):
            super().__init__(dt=0.5, seed=seed)
            self.pop = self.create(10, ann.Izhikevich, name="pop")

    net = Small()
    net.compile(directory=str(tmp_path / "small"), silent=True)
    with pytest.raises(checkpoint.UnsupportedObjectError, match="PopulationView"):
        checkpoint.save(tmp_path / "view.h5", net.pop[2:5])
    assert not list(tmp_path.glob("*.h5"))


def test_each_copy_of_parallel_run_is_saved_and_restored_on_its_own(tmp_path):
    import annarchy_parallel

    net = annarchy_parallel.Pulses()
    net.compile(directory=str(tmp_path / "build"), silent=True)
    results = net.parallel_run(
        method=annarchy_parallel.save_continue_reload, number=2, seeds=[3, 4], folder=str(tmp_path), tag=[0, 1]
    )
    paths = [path for path, _, _ in results]
    assert len(set(paths)) == 2
    for path, straight, again in results:
        for a, b in zip(straight, again):
            assert np.array_equal(a, b), path
    first, second = (checkpoint.read(path) for path in paths)  # each copy's own state, not the parent's
    assert not np.array_equal(first.populations["cells"]["v"], second.populations["cells"]["v"])
    assert first.time == second.time == 10.0
    assert np.array_equal(checkpoint.read(paths[0]).populations["cells"]["v"], first.populations["cells"]["v"])


def test_a_copy_in_the_copying_process_shares_the_originals_state(tmp_path):
    """ANNarchy's copies run the same compiled library: in the process that
    copies, a copy and its original are one C++ network."""
    import annarchy_parallel

    net = annarchy_parallel.Pulses()
    net.compile(directory=str(tmp_path / "build"), silent=True)
    copy = net.copy()
    copy.simulate(5.0)
    checkpoint.save(tmp_path / "copy.h5", copy)
    checkpoint.save(tmp_path / "net.h5", net)
    a, b = checkpoint.read(tmp_path / "copy.h5"), checkpoint.read(tmp_path / "net.h5")
    assert a.time == b.time == 5.0
    assert np.array_equal(a.populations["cells"]["v"], b.populations["cells"]["v"])


def _monitored(tmp_path, seed):
    import ANNarchy as ann

    class Monitored(ann.Network):
        def __init__(self, seed):
            super().__init__(dt=0.5, seed=seed)
            self.cells = self.create(8, ann.Izhikevich, name="cells")
            self.cells.noise = 4.0
            self.cells.i_offset = 6.0
            self.recurrent = self.connect(self.cells, self.cells, "exc", synapse=ann.STDP, name="recurrent")
            self.recurrent.fixed_probability(0.3, weights=1.0)
            self.monitor(self.cells, ["spike", "v"], name="cells_m")

    net = Monitored(seed)
    net.compile(directory=str(tmp_path / f"build-{seed}"), silent=True)
    return net


def _recordings(net):
    monitor = net.get_monitor("cells_m")
    cy = monitor.cyInstance
    return np.array(cy.v), {k: list(v) for k, v in cy.spike.items()}, repr(monitor._recorded_variables)


def _advice(build, folder, mode):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    return subprocess.run(
        [sys.executable, os.path.join(HERE, "annarchy_monitor_advice.py"), str(build), str(folder), mode],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_monitors_of_projections_are_refused_with_what_to_do(tmp_path):
    """The refusal's advice, followed in a process of its own: the run goes
    on, is saved with monitors=True and resumes; what it warns against
    (Monitor.stop(), then simulate()) aborts ANNarchy 5.0.4's process."""
    done = _advice(tmp_path / "build", tmp_path, "advice")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "refused: " in done.stdout and "weights_m" in done.stdout and "resumed" in done.stdout
    assert "net.get_monitors().remove(monitor)" in done.stdout and "Do not stop" in done.stdout
    assert "cells_m" in checkpoint.read(tmp_path / "m.h5").populations
    assert not (tmp_path / "refused.h5").exists()
    stopped = _advice(tmp_path / "build", tmp_path, "stop")  # the same build: no second compile
    assert stopped.returncode != 0 and "simulated after stop" not in stopped.stdout, stopped.stdout


def _wrapping_counts(state):
    """Spike counts whose int64 sum wraps round to the number of steps: they
    would split the steps among the neurons with some twice, some moved."""
    arrays = state.populations["cells_m"].arrays
    counts, steps = arrays["spike.counts"], arrays["spike.steps"]
    assert len(counts) >= 3
    counts[:] = 0
    counts[:3] = [2**63 - 1, 2**63 - 1, len(steps) + 2]
    assert int(counts.sum()) == len(steps)  # what an int64 sum sees


def test_forged_or_mismatched_recordings_change_nothing(tmp_path):
    from checkpoint.formats import read_state, write_state

    net = _monitored(tmp_path, 1)
    net.simulate(20.0)
    checkpoint.save(tmp_path / "c.h5", net, monitors=True)
    other = _monitored(tmp_path, 2)
    other.simulate(3.0)
    before = _recordings(other)

    def forged(name, change):
        state = read_state(tmp_path / "c.h5")
        change(state)
        write_state(tmp_path / name, state)
        return tmp_path / name

    cases = [
        (
            forged("ranks.h5", lambda s: s.populations["cells_m"].arrays["spike.ranks"].__setitem__(0, 99)),
            checkpoint.CorruptCheckpointError,
            "spikes do not fit",
        ),
        (
            forged("counts.h5", lambda s: s.populations["cells_m"].arrays["spike.counts"].__setitem__(0, -1)),
            checkpoint.CorruptCheckpointError,
            "spikes do not fit",
        ),
        (forged("wrapping.h5", _wrapping_counts), checkpoint.CorruptCheckpointError, "spikes do not fit"),
        (
            forged(
                "rows.h5",
                lambda s: s.populations["cells_m"].arrays.__setitem__("v", s.populations["cells_m"]["v"][:, :3].copy()),
            ),
            checkpoint.CorruptCheckpointError,
            "one row of 8",
        ),
        (
            forged(
                "times.h5",
                lambda s: s.meta["annarchy"]["monitors"]["cells_m"]["recorded"]["v"].__setitem__("start", [-5]),
            ),
            checkpoint.CorruptCheckpointError,
            "recording times",
        ),
        (
            forged("variables.h5", lambda s: s.meta["annarchy"]["monitors"]["cells_m"].__setitem__("variables", ["v"])),
            checkpoint.StructureMismatchError,
            "records",
        ),
        (
            forged(
                "huge_period.h5", lambda s: s.meta["annarchy"]["monitors"]["cells_m"].__setitem__("period", 10**400)
            ),
            checkpoint.CorruptCheckpointError,
            "period is a huge integer",
        ),
        (
            forged("far_period.h5", lambda s: s.meta["annarchy"]["monitors"]["cells_m"].__setitem__("period", 1e300)),
            checkpoint.CorruptCheckpointError,
            "period is 1e",
        ),
        (
            forged("period.h5", lambda s: s.meta["annarchy"]["monitors"]["cells_m"].__setitem__("period", 2.0)),
            checkpoint.StructureMismatchError,
            "period",
        ),
    ]
    for path, error, message in cases:
        with pytest.raises(error, match=message):
            checkpoint.load(path, other, monitors=True)
        assert repr(_recordings(other)) == repr(before), path
    report = checkpoint.load(tmp_path / "c.h5", other)  # without monitors=True: said, not restored
    assert "cells_m.v" in report.skipped
    assert repr(_recordings(other)) == repr(before)
    checkpoint.load(tmp_path / "c.h5", other, monitors=True)
    assert np.array_equal(_recordings(other)[0], _recordings(net)[0])


_AFTER_NEURON = """
import sys
import neuron   # puts NEURON's global `t` and `dt` in the process's symbol scope
import ANNarchy as ann
import checkpoint
net = ann.Network(dt=0.5, seed=1)
net.create(5, ann.Izhikevich, name="cells")
net.compile(directory=sys.argv[1], silent=True)
try:
    checkpoint.save(sys.argv[2], net)
except checkpoint.CheckpointError as exc:
    print(type(exc).__name__, exc)
"""


def test_a_network_compiled_after_import_neuron_is_refused_not_misread(tmp_path):
    """ANNarchy's code compiled after ``import neuron`` runs on NEURON's
    ``t`` and ``dt`` (same names, global scope): what the accessor reads
    is not this network's clock, so a save is refused (it crashed the
    process once), and nothing is written."""
    done = subprocess.run(
        [sys.executable, "-c", _AFTER_NEURON, str(tmp_path / "build"), str(tmp_path / "c.h5")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=HERE,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said = done.stdout.strip().splitlines()[-1]  # after ANNarchy's banner
    assert said.startswith("NativeAccessError") and "import neuron" in said, done.stdout
    assert not (tmp_path / "c.h5").exists()
