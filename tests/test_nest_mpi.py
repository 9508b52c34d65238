"""NEST under a real ``mpiexec`` (NEST built with MPI by `make test`): a run
saved on N ranks restores on M, each rank setting its own neurons and
connecting its own targets (tests/nest_mpi_sim.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import checkpoint
from test_distributed import MPIEXEC

HERE = os.path.dirname(os.path.abspath(__file__))


def nest_mpirun(folder, mode, ranks):
    done = subprocess.run(
        [MPIEXEC, "-n", str(ranks), sys.executable, os.path.join(HERE, "nest_mpi_sim.py"), mode, str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    records = [json.loads((folder / f"{mode}-{ranks}-{rank}.json").read_text()) for rank in range(ranks)]
    assert all("error" not in r for r in records), records
    assert all(r["nest_ranks"] == ranks for r in records), "NEST is not built with MPI"
    return records


def synapses(projection):
    """``{(pre, post): (weight, delay, receptor, ...)}``: the order-free view
    of a projection (NEST orders a target's connections its own way)."""
    matrix_rows = np.repeat(np.arange(projection.shape[0]), np.diff(projection.indptr))
    keys = sorted(projection.arrays)
    return {
        (int(pre), int(post)): tuple(float(projection[k][i]) for k in keys)
        for i, (pre, post) in enumerate(zip(projection.indices, matrix_rows))
    }


def assert_same_network(saved, loaded):
    assert sorted(saved.populations) == sorted(loaded.populations)
    for name, pop in saved.populations.items():
        assert pop.size == loaded.populations[name].size
        for var in pop:
            np.testing.assert_array_equal(loaded.populations[name][var], pop[var], err_msg=f"{name}.{var}")
    assert sorted(saved.projections) == sorted(loaded.projections)
    for name, projection in saved.projections.items():
        assert synapses(loaded.projections[name]) == synapses(projection), name


@pytest.mark.parametrize("saved_on, loaded_on", [(2, 3), (3, 2), (2, 1)])
def test_a_nest_run_restores_on_another_number_of_ranks(tmp_path, saved_on, loaded_on):
    nest_mpirun(tmp_path, "save", saved_on)
    records = nest_mpirun(tmp_path, "load", loaded_on)
    # NEST's round robin: each neuron on one rank, node_id % ranks
    held = [r["local_exc"] for r in records]
    assert sorted(sum(held, [])) == list(range(1, 81))
    assert all(node % loaded_on == rank for rank, nodes in enumerate(held) for node in nodes)
    for record in records:
        assert record["report"]["time"] == pytest.approx(50.0) and not record["report"]["skipped"]
        assert record["spikes_after"] > 0  # the restored network runs on
    saved = checkpoint.read(tmp_path / "run.h5")
    assert saved.meta["assembled_from"] == {"ranks": saved_on}
    assert_same_network(saved, checkpoint.read(tmp_path / f"again-{loaded_on}.h5"))
