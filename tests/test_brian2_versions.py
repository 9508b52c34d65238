"""Files exchanged between Brian2 releases (2.9.0, 2.10.1, 2.11.0): a
checkpoint written by each release, loaded by the Brian2 of this
interpreter in a fresh process with another seed, must continue bit for
bit as the writer's own run did, on the numpy and the Cython targets (the
rand() buffers, spike queues and dynamic arrays of one release restored
into another's).

tests/data/brian2/ holds the files each release wrote (tests/brian2_exchange.py
makes them; the numpy target's of every release), so every run of this file
loads every release's; with
``BRIAN2_OTHER_PYTHON`` (interpreters, ``os.pathsep``-separated: ``make
test-brian2-matrix`` passes the main venv's, with Brian2 2.9.0) the same is
done live both ways: written here, loaded there, and back.

Bit for bit holds where both processes compute with the same numpy: its
exp/log kernels changed in the last bit between numpy 2.3 and 2.4 (and
differ by CPU, see ``brian2_exchange._without_avx512``), so a run
continued under another numpy drifts by an ulp from the writer's, through
no fault of the restore.  There the comparison is spikes, connectivity and
time exactly and the variables within 1e-12.
"""

import glob
import os
import re
import sys
import warnings

import brian2 as b2
import numpy as np
import pytest

import brian2_exchange
import checkpoint
from checkpoint import CheckpointWarning
from checkpoint.adapters import versions

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "brian2")
pytestmark = pytest.mark.filterwarnings("ignore::checkpoint.CheckpointWarning")

COMMITTED = sorted(
    re.fullmatch(r"ckpt-(.+)-(numpy|cython)\.h5", os.path.basename(p)).groups()
    for p in glob.glob(os.path.join(DATA, "ckpt-*.h5"))
)
#: The numpy the committed files were written with (reproduced on 4 December
#: 2026: numpy 2.3.5's straight runs equal them bit for bit, 2.4.6's and
#: 2.5.5's do not).
COMMITTED_NUMPY = "2.3.5"
OTHERS = [p for p in os.environ.get("BRIAN2_OTHER_PYTHON", "").split(os.pathsep) if p]


def test_every_release_of_the_matrix_has_committed_files():
    """At least the numpy target's, of every release: the Cython target is
    exchanged live (below), and by the committed files that are there."""
    assert sorted({release for release, _ in COMMITTED}) == sorted(versions.TESTED_VERSIONS["brian2"])
    assert all((release, "numpy") in COMMITTED for release in versions.TESTED_VERSIONS["brian2"])


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    """A Cython cache per interpreter, shared by the module's processes: each compiles once."""
    root = tmp_path_factory.mktemp("cython")
    return lambda python: root / str(abs(hash(os.path.abspath(python))))


def resume_and_compare(python, ckpt, straight, target, tmp_path, cache, writer_numpy):
    """``python`` resumes ``ckpt`` (another seed) for T2; the result equals
    ``straight`` bit for bit, where the writer's numpy (``writer_numpy``) is
    the reader's (see the module's docstring)."""
    out = tmp_path / "resumed.npz"
    brian2_exchange.run_sim(python, target, cache, out, "resume", brian2_exchange.T2, ckpt, tmp_path)
    expected, resumed = np.load(straight), np.load(out)
    assert sorted(expected.files) == sorted(resumed.files)
    assert len(expected["t"]) > 0  # spikes in the second half: not a comparison of nothing
    exact = brian2_exchange.numpy_of(python) == writer_numpy
    for key in expected.files:
        if exact or key not in ("v", "w"):
            assert np.array_equal(expected[key], resumed[key]), key
        else:
            assert np.allclose(expected[key], resumed[key], rtol=0, atol=1e-12), key


@pytest.mark.parametrize("release,target", COMMITTED)
def test_a_file_of_each_release_continues_exactly_here(tmp_path, caches, release, target):
    ckpt, straight = (os.path.join(DATA, name) for name in brian2_exchange.names(release, target))
    # written by that release, not relabelled
    assert checkpoint.read(ckpt).meta["simulator"] == {"name": "brian2", "version": release}
    resume_and_compare(sys.executable, ckpt, straight, target, tmp_path, caches(sys.executable), COMMITTED_NUMPY)


if OTHERS:  # only where make test-brian2-matrix names another release's interpreter

    @pytest.mark.parametrize("other", OTHERS)
    def test_written_here_loaded_there_and_back(tmp_path, caches, other):
        for writer, reader in ((sys.executable, other), (other, sys.executable)):
            folder = tmp_path / f"{os.path.basename(os.path.dirname(os.path.dirname(writer)))}-wrote"
            folder.mkdir()
            release = brian2_exchange.write(str(folder), writer, caches(writer))
            for target in brian2_exchange.TARGETS:
                ckpt, straight = (str(folder / name) for name in brian2_exchange.names(release, target))
                resume_and_compare(
                    reader, ckpt, straight, target, folder, caches(reader), brian2_exchange.numpy_of(writer)
                )


def test_an_untested_release_warns_once_at_save_and_still_loads(tmp_path, monkeypatch):
    monkeypatch.setitem(versions.TESTED_VERSIONS, "brian2", ("2.0",))
    monkeypatch.setattr(versions, "_warned", set())
    group = b2.NeuronGroup(3, "v : 1", name="g")
    group.v = [1.0, 2.0, 3.0]
    net = b2.Network(group)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoint.save(tmp_path / "a.h5", net)
        checkpoint.save(tmp_path / "b.h5", net)
    untested = [w for w in caught if issubclass(w.category, CheckpointWarning) and "not a release" in str(w.message)]
    assert len(untested) == 1 and b2.__version__ in str(untested[0].message)
    group.v = 0
    checkpoint.load(tmp_path / "a.h5", net)
    assert list(group.v[:]) == [1.0, 2.0, 3.0]


def test_the_installed_release_is_a_tested_one():
    assert versions.is_tested("brian2", versions.release_of("brian2", b2.__version__)), b2.__version__
