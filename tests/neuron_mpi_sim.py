"""NEURON under ``mpiexec -n N`` (MPICH from the mpi extra; NEURON finds it
through ``MPI_LIB_NRN_PATH``, which tests/test_neuron_mpi.py sets).

    mpiexec -n N python neuron_mpi_sim.py save FOLDER   # neuron_models.build_parallel, 20 ms, save
                                                        # run.h5 (comm=pc), run on to 40 ms
    mpiexec -n N python neuron_mpi_sim.py load FOLDER   # build (other seed), load run.h5, save
                                                        # again-N.h5, run on to 40 ms

Each rank writes ``FOLDER/<mode>-N-<rank>.json``: its gids, its spikes after
20 ms, the report's warnings, or the error.
"""

import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(mode, folder):
    from neuron import h

    h.nrnmpi_init()
    import checkpoint
    import neuron_models

    net = neuron_models.build_parallel(seed=1 if mode == "save" else 2)
    pc = net["pc"]
    out = {"rank": int(pc.id()), "ranks": int(pc.nhost()), "gids": sorted(net["cells"])}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            h.finitialize(-65)
            if mode == "save":
                pc.psolve(20)
                checkpoint.save(os.path.join(folder, "run.h5"), h, comm=pc)
            else:
                report = checkpoint.load(os.path.join(folder, "run.h5"), h, comm=pc)
                out["time"] = report.time
                out["reseeded"] = report.reseeded
                checkpoint.save(os.path.join(folder, f"again-{pc.nhost():.0f}.h5"), h, comm=pc)
            pc.psolve(40)
        out["warnings"] = [str(w.message) for w in caught]
        times, ids = list(net["spikes"]), list(net["ids"])
        out["spikes"] = sorted((round(t, 9), int(i)) for t, i in zip(times, ids) if t > 20)
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    with open(os.path.join(folder, f"{mode}-{int(pc.nhost())}-{int(pc.id())}.json"), "w") as f:
        json.dump(out, f)
    pc.barrier()
    h.quit()


if __name__ == "__main__":
    main(*sys.argv[1:])
