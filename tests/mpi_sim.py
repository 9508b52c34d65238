"""Run under ``mpiexec -n N``: each rank simulates its own embedded network.

    mpiexec -n 2 python mpi_sim.py MODE FOLDER

Modes (each rank writes ``FOLDER/<mode>-<rank>.json`` with what it saw):

* ``save``: build (seed = rank), run 20 steps, save ``FOLDER/run.h5`` with
  comm; record the state saved.
* ``save-again``: the same, 10 steps further (a second checkpoint at the
  same path).
* ``save-rank-1-differs``: like ``save``, but rank 1's ``v`` is 1 higher.
* ``load``: build with other values (seed = 100 + rank), load with comm;
  record the report and the state.
* ``load-fail-apply``: like ``load``, but rank 1's apply fails midway.
* ``save-fail``: rank 1 passes an object checkpoint cannot save.
* ``loop``: a Checkpointer loop to step 60 (checkpoint every 10 steps),
  resuming from ``FOLDER/ck`` if it has checkpoints.
* ``loop-signal``: the same, but rank 1 alone gets SIGUSR1 at step 25.
* ``psave``: a network split by global ids (tests/partitioned.py; options
  ``partition=``, ``file=``, ``steps=``): build this rank's part, advance,
  save with comm.
* ``pload``: build this rank's part of another network (other seed, other
  connectivity) with ``partition=``, load ``file=`` with comm (``nocomm=1``:
  without), record what it holds.
* ``ploop``: a Checkpointer loop over the split network to ``steps=``,
  resuming from ``FOLDER/ck``.
* ``loop-ctrl-c``: a slow Checkpointer loop (checkpoints every 1000 steps)
  that writes ``FOLDER/ready`` at step 5 and runs until a Ctrl-C (SIGINT,
  which mpiexec forwards to every rank) stops it.
"""

import json
import os
import signal
import sys

import numpy as np
from mpi4py import MPI

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint  # noqa: E402
from helpers import arrays_of, izhikevich_network  # noqa: E402
import partitioned  # noqa: E402


def simulate(net, steps):
    """A few steps of arbitrary dynamics that use the network's generator."""
    for _ in range(steps):
        pop = net.populations["pop0"]
        pop.v += net.rng.normal(0.0, 1.0, pop.size)
        net.projections["proj0"].w *= np.float32(0.999)
        net.step += 1


def digest(net):
    return {
        key: np.asarray(value).tolist() if np.asarray(value).dtype.kind != "U" else str(value)
        for key, value in arrays_of(net).items()
    }


def split_network(comm, options, seed):
    """This rank's part of partitioned.whole_network(seed)."""
    kind = options.get("partition", "blocks")
    whole = partitioned.whole_network(seed)
    ids = {name: partitioned.partition(kind, size, comm.size, comm.rank) for name, size in partitioned.SIZES.items()}
    return partitioned.part_of(whole, ids, seed=100 + comm.rank)


def main(mode, folder, *extra):
    comm = MPI.COMM_WORLD
    rank = comm.rank
    options = dict(item.split("=", 1) for item in extra)
    path = os.path.join(folder, options.get("file", "run.h5"))
    out = {"rank": rank}
    tag = options.get("tag", "")
    try:
        if mode == "psave":
            net = split_network(comm, options, seed=1)
            partitioned.advance(net, int(options.get("steps", 20)))
            if options.get("partition") == "overlapping" and rank > 0:  # neuron 0 twice, two values
                net.populations["exc"].v[net.populations["exc"].ids == 0] += 1.0
            checkpoint.save(path, net, comm=comm)
            out["state"] = partitioned.snapshot(net)
        elif mode == "pload":
            net = split_network(comm, options, seed=999)
            before = partitioned.snapshot(net)
            try:
                if options.get("nocomm"):
                    report = checkpoint.load(path, net)
                else:
                    report = checkpoint.load(path, net, comm=comm)
                out["report"] = {
                    "restored": len(report.restored),
                    "time": report.time,
                    "step": report.step,
                    "reseeded": report.reseeded,
                    "skipped": report.skipped,
                    "kept": report.kept,
                }
            finally:
                out["unchanged"] = partitioned.snapshot(net) == before
            out["state"] = partitioned.snapshot(net)
            out["draw"] = net.rng.random(3).tolist()
        elif mode == "ploop":
            net = split_network(comm, options, seed=1)
            with checkpoint.Checkpointer(os.path.join(folder, "ck"), net, every_steps=5, keep=2, comm=comm) as ckpt:
                report = ckpt.restore_latest()
                out["resumed_at"] = None if report is None else report.step
                while net.step < int(options["steps"]):
                    partitioned.advance(net, 1)
                    ckpt.maybe_save()
                ckpt.save(skip_if_saved=True)
            out["state"] = partitioned.snapshot(net)
        elif mode in ("save", "save-again", "save-rank-1-differs"):
            net = izhikevich_network(seed=rank, n_exc=30 + 10 * rank)
            simulate(net, 30 if mode == "save-again" else 20)
            if mode == "save-rank-1-differs" and rank == 1:
                net.populations["pop0"].v += 1.0
            checkpoint.save(path, net, comm=comm, metadata={"mode": mode})
            out["state"] = digest(net)
            out["draw"] = net.rng.random(3).tolist()
        elif mode in ("loop", "loop-signal"):
            net = izhikevich_network(seed=rank, n_exc=30 + 10 * rank)
            with checkpoint.Checkpointer(os.path.join(folder, "ck"), net, every_steps=10, keep=2, comm=comm) as ckpt:
                report = ckpt.restore_latest()
                out["resumed_at"] = None if report is None else report.step
                try:
                    while net.step < 60:
                        simulate(net, 1)
                        if mode == "loop-signal" and rank == 1 and net.step == 25:
                            os.kill(os.getpid(), signal.SIGUSR1)
                        ckpt.maybe_save()
                except checkpoint.Interrupted as stop:
                    out["interrupted"] = {"step": net.step, "path": os.path.basename(stop.path)}
                out["kept"] = [os.path.basename(p) for p in ckpt.checkpoints()]
            out["state"] = digest(net)
        elif mode == "loop-ctrl-c":
            import time

            net = izhikevich_network(seed=rank, n_exc=30 + 10 * rank)
            with checkpoint.Checkpointer(os.path.join(folder, "ck"), net, every_steps=1000, comm=comm) as ckpt:
                try:
                    while net.step < 100_000:
                        simulate(net, 1)
                        if rank == 0 and net.step == 5:
                            open(os.path.join(folder, "ready"), "w").close()
                        time.sleep(0.002)
                        ckpt.maybe_save()
                except checkpoint.Interrupted as stop:
                    out["interrupted"] = {"step": net.step, "path": os.path.basename(stop.path)}
            out["state"] = digest(net)
        elif mode == "save-fail":
            net = izhikevich_network(seed=rank, n_exc=30 + 10 * rank)
            simulate(net, 40)
            checkpoint.save(path, net if rank != 1 else object(), comm=comm)
        else:
            net = izhikevich_network(seed=100 + rank, n_exc=30 + 10 * rank)
            before = digest(net)
            if mode == "load-fail-apply" and rank == 1:
                from checkpoint.adapters.embedded import EmbeddedAdapter

                def failing(self, clock):
                    raise RuntimeError("injected failure on rank 1")

                EmbeddedAdapter._set_clock = failing
            try:
                report = checkpoint.load(path, net, comm=comm)
                out["report"] = {"restored": len(report.restored), "time": report.time}
            finally:
                out["unchanged"] = digest(net) == before
            out["state"] = digest(net)
            out["draw"] = net.rng.random(3).tolist()
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    with open(os.path.join(folder, f"{mode}{tag}-{rank}.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
