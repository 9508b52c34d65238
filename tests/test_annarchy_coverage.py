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
    done = subprocess.run([sys.executable, os.path.join(HERE, "annarchy_models.py"), model, str(build),
                           str(folder), mode], env=env, cwd=folder, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


@pytest.mark.parametrize("model", sorted(annarchy_models.MODELS))
def test_exact_in_a_fresh_process_with_another_seed(tmp_path, model):
    run_model(model, tmp_path / "build-first", tmp_path, "first")
    run_model(model, tmp_path / "build-resume", tmp_path, "resume")
    straight, resumed = np.load(tmp_path / "straight.npz"), np.load(tmp_path / "resumed.npz")
    assert sorted(straight.files) == sorted(resumed.files)
    for key in straight.files:
        assert np.array_equal(straight[key], resumed[key], equal_nan=True), key


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
    checkpoint.save(tmp_path / "narrow.h5", narrow)       # the other way is exact: float32 fits float64
    checkpoint.load(tmp_path / "narrow.h5", wide)
    assert np.array_equal(wide.get_population("cells").v, before.astype(np.float64))


def test_views_and_copies_are_refused_before_anything_is_written(tmp_path):
    import ANNarchy as ann

    class Small(ann.Network):
        def __init__(self, seed=1):
            super().__init__(dt=0.5, seed=seed)
            self.pop = self.create(10, ann.Izhikevich, name="pop")

    net = Small()
    net.compile(directory=str(tmp_path / "small"), silent=True)
    with pytest.raises(checkpoint.UnsupportedObjectError, match="PopulationView"):
        checkpoint.save(tmp_path / "view.h5", net.pop[2:5])
    copy = net.copy(seed=7)     # runs the library compiled for net: not known to be read right
    copy.compile(directory=str(tmp_path / "copy"), silent=True)
    with pytest.raises(checkpoint.UnsupportedObjectError, match=r"net.copy\(\) or parallel_run\(\)"):
        checkpoint.save(tmp_path / "copy.h5", copy)
    assert not list(tmp_path.glob("*.h5"))
