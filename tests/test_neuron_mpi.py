"""NEURON under a real ``mpiexec`` (the mpi extra's MPICH, which NEURON
loads through ``MPI_LIB_NRN_PATH``): each rank saves its own gids; the
checkpoint loads on as many ranks exactly, and on another number by gid
(tests/neuron_mpi_sim.py, the ring of tests/neuron_models.build_parallel)."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import checkpoint
from test_distributed import MPIEXEC

HERE = os.path.dirname(os.path.abspath(__file__))
EVENTS = ("netcon_events", "self_events", "savestate")


def libmpi():
    """MPICH's library, next to the mpiexec of the environment (pip's mpich)."""
    found = sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(MPIEXEC)), "lib", "libmpi.so*")))
    assert found, "libmpi.so not found next to mpiexec: `make test` installs mpich"
    return found[-1]


def neuron_mpirun(folder, mode, ranks):
    env = dict(os.environ, MPI_LIB_NRN_PATH=libmpi(), PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    done = subprocess.run(
        [MPIEXEC, "-n", str(ranks), sys.executable, os.path.join(HERE, "neuron_mpi_sim.py"), mode, str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    records = [json.loads((folder / f"{mode}-{ranks}-{rank}.json").read_text()) for rank in range(ranks)]
    assert all("error" not in r for r in records), records
    assert all(r["ranks"] == ranks for r in records), "NEURON did not run under MPI"
    return records


def spikes(records):
    return sorted(tuple(s) for r in records for s in r["spikes"])


@pytest.fixture(scope="module")
def saved_on_two(tmp_path_factory):
    folder = tmp_path_factory.mktemp("neuron-mpi")
    return folder, neuron_mpirun(folder, "save", 2)


def test_the_same_number_of_ranks_restarts_exactly(saved_on_two):
    folder, saved = saved_on_two
    loaded = neuron_mpirun(folder, "load", 2)
    assert [r["gids"] for r in loaded] == [r["gids"] for r in saved]
    assert all(not r["warnings"] and not r["reseeded"] for r in loaded), loaded
    assert len(spikes(saved)) > 5 and spikes(loaded) == spikes(saved)  # bit for bit (rounded to 1e-9 ms)


def test_another_number_of_ranks_restores_every_cell_by_gid(saved_on_two):
    folder, _ = saved_on_two
    loaded = neuron_mpirun(folder, "load", 3)
    assert sorted(sum((r["gids"] for r in loaded), [])) == list(range(12))
    assert all(gid % 3 == r["rank"] for r in loaded for gid in r["gids"])
    for record in loaded:
        assert record["time"] == pytest.approx(20.0) and record["reseeded"] == ["rng.NEURON"]
        assert any("another partition of the gids" in w for w in record["warnings"]), record["warnings"]
    assert spikes(loaded), "the restored ring runs on"
    # the state each rank holds right after the load (saved again on 3 ranks) is the saved one, gid by gid
    before, after = checkpoint.read(folder / "run.h5"), checkpoint.read(folder / "again-3.h5")
    assert (
        sorted(before.populations)
        == sorted(after.populations)
        == ["BallAndStick.dend", "BallAndStick.soma", "ExpSyn", "NetStim"]
    )
    for name, pop in before.populations.items():
        assert pop.global_size == after.populations[name].global_size
        for var in pop:
            np.testing.assert_array_equal(after.populations[name][var], pop[var], err_msg=f"{name}.{var}")
    assert (
        sorted(before.projections)
        == sorted(after.projections)
        == ["NetStim->ExpSyn", "gid->ExpSyn", "gid->none@BallAndStick.soma"]
    )
    for name, proj in before.projections.items():
        np.testing.assert_array_equal(after.projections[name].indices, proj.indices)
        for var in proj:
            np.testing.assert_array_equal(after.projections[name][var], proj[var], err_msg=f"{name}.{var}")
    # a whole read: the gids' NetStim streams, gid by gid
    assert list(before.populations["NetStim"]["ranvar.id1"]) == list(range(12))
