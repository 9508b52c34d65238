"""NEST under ``mpiexec -n N`` (NEST built with MPI by `make test`).

    mpiexec -n N python nest_mpi_sim.py save FOLDER      # tests/nest_sim.build, 50 ms, save run.h5
    mpiexec -n N python nest_mpi_sim.py load FOLDER      # the nodes only (other seed), load run.h5,
                                                         # save again-N.h5, run 20 ms more

Each rank writes ``FOLDER/<mode>-N-<rank>.json``: its local neurons, the
report, or the error.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nest_sim  # noqa: E402


def main(mode, folder):
    nest, exc, inh, spikes = nest_sim.build(seed=5 if mode == "save" else 9, connect=mode == "save")
    from mpi4py import MPI  # after NEST, which initialises MPI itself
    import checkpoint

    comm = MPI.COMM_WORLD
    out = {"rank": comm.rank, "ranks": comm.size, "nest_ranks": nest.NumProcesses()}
    try:
        if mode == "save":
            nest.Simulate(50.0)
            checkpoint.save(os.path.join(folder, "run.h5"), nest, comm=comm)
        else:
            report = checkpoint.load(os.path.join(folder, "run.h5"), nest, comm=comm)
            out["report"] = {"time": report.time, "restored": len(report.restored), "skipped": report.skipped}
            checkpoint.save(os.path.join(folder, f"again-{comm.size}.h5"), nest, comm=comm)
            nest.Simulate(20.0)
            out["spikes_after"] = int(spikes.get("n_events"))
        out["local_exc"] = [n for n, local in zip(exc.tolist(), exc.get("local")) if local]
    except Exception as exc_:
        out["error"] = f"{type(exc_).__name__}: {exc_}"
    with open(os.path.join(folder, f"{mode}-{comm.size}-{comm.rank}.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
