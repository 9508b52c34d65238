"""An MPI run that survives being killed: every rank simulates its own
Izhikevich + STDP network (examples/izhikevich_stdp.py, seeded by rank), and
one sharded checkpoint holds them all.

    mpiexec -n 4 python examples/mpi_izhikevich.py [--steps 4000] [--folder mpi-ckpts]

Stop it (Ctrl-C, or SIGTERM / SIGUSR1 to any one rank) and start it again
with as many ranks: every rank goes on from the same step, bit for bit.
Needs ``pip install 'neuro-checkpoint[mpi]'`` (mpi4py and MPICH).
"""

import argparse
import logging
import os
import sys

from mpi4py import MPI

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import izhikevich_stdp  # noqa: E402

import checkpoint  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--folder", default="mpi-ckpts")
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    logging.basicConfig(level=logging.INFO if comm.rank == 0 else logging.WARNING, format="%(message)s")
    net = izhikevich_stdp.build(seed=42 + comm.rank, n_exc=400, n_inh=100)
    with checkpoint.Checkpointer(args.folder, net, every_steps=500, keep=2, comm=comm) as ckpt:
        report = ckpt.restore_latest()
        if comm.rank == 0:
            print(f"resumed at step {report.step}" if report else "fresh start")
        try:
            while net.step < args.steps:
                izhikevich_stdp.step(net)
                ckpt.maybe_save()
        except checkpoint.Interrupted as stop:
            if comm.rank == 0:
                print(f"stopped by signal {stop.signum} at step {net.step}; checkpoint {stop.path}")
            sys.exit(0)
        ckpt.save(skip_if_saved=True)
    weights = comm.gather(float(net.projections["proj0"].w.mean()), root=0)
    if comm.rank == 0:
        print(f"done at step {net.step}; mean STDP weight per rank {[round(w, 5) for w in weights]}; "
              f"checkpoints in {args.folder}/ (delete the folder to start over)")


if __name__ == "__main__":
    main()
