"""Sharded checkpoints under MPI: save and load time, peak memory and bytes
read per rank, against the raw cost of the same bytes, in the same run.

    python benchmarks/bench_mpi.py [--gib 1.0] [--ranks 1 2 4] [--folder DIR]

The state, ``--gib`` in all (split over the ranks by contiguous blocks of
neurons): one population of 1M neurons (4 float64 variables) and one
projection onto it with 64 synapses per neuron (int64 global pre index,
float64 weight).  For each rank count N it runs ``mpiexec -n N`` and, on
every rank:

* raw: ``np.save`` of the rank's arrays, fsync'd, then ``np.load``;
* ``checkpoint.save(..., comm=)`` and ``checkpoint.load(..., comm=)`` into
  the same partition (the exact path: each rank reads its own shard);

then loads the checkpoint of the largest N on N/2 ranks, by blocks (each
rank's neurons are those of two whole shards) and round robin (a rank's
neurons are in every shard, so it reads every shard).  Per rank it reports
the time (best of three), the peak extra memory (tracemalloc: numpy's
buffers) over the rank's share of the state, and the bytes it read
(``rchar`` of /proc/self/io) over its share.  Ratios: raw time / our time
(1.0 = as fast as raw).  Times are the slowest rank's.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

NEURONS = 1_000_000
REPEATS = 3


def rank_network(comm, gib, kind="blocks"):
    """This rank's part of the benchmark network."""
    import checkpoint

    per_neuron = max(1, int(gib * (1 << 30) / NEURONS / 16))  # int64 index + float64 weight
    if kind == "blocks":
        ids = np.array_split(np.arange(NEURONS), comm.size)[comm.rank]
    else:
        ids = np.arange(comm.rank, NEURONS, comm.size)
    rng = np.random.default_rng(comm.rank)
    net = checkpoint.Network(seed=comm.rank)
    net.add_population(
        "exc",
        len(ids),
        ids=ids,
        global_size=NEURONS,
        variables={v: rng.random(len(ids)) for v in ("v", "u", "I", "trace")},
    )
    indptr = np.arange(len(ids) + 1, dtype=np.int64) * per_neuron
    indices = np.sort(rng.integers(0, NEURONS, (len(ids), per_neuron)), axis=1).reshape(-1)
    net.add_projection("syn", "exc", "exc", connectivity=(indptr, indices), variables={"w": rng.random(len(indices))})
    return net


def rank_bytes(net):
    return sum(
        np.asarray(a).nbytes
        for group in (*net.populations.values(), *net.projections.values())
        for a in group._values.values()
    ) + sum(p.indices.nbytes + p.indptr.nbytes for p in net.projections.values())


def read_chars():
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar"))


def measured(work, repeats=REPEATS):
    """``(seconds, peak extra bytes, bytes read)`` of ``work()``: the best
    time of ``repeats`` (the first of a process also starts HDF5's helper,
    and this VM hands freed memory back to its host, so that memory touched
    again costs a page fault per page), the largest memory and reads."""
    best, peak, read = float("inf"), 0, 0
    for _ in range(repeats):
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        chars = read_chars()
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
        peak, read = max(peak, tracemalloc.get_traced_memory()[1] - base), max(read, read_chars() - chars)
    return best, peak, read


def raw_save_load(net, folder, rank):
    arrays = {
        f"{g.name}.{v}": a for g in (*net.populations.values(), *net.projections.values()) for v, a in g._values.items()
    }
    arrays.update({f"{p.name}.indices": p.indices for p in net.projections.values()})
    paths = {}

    def save():
        for key, array in arrays.items():
            paths[key] = os.path.join(folder, f"raw-{rank}-{key}.npy")
            with open(paths[key], "wb") as f:
                np.save(f, array)
                f.flush()
                os.fsync(f.fileno())

    def load():
        for path in paths.values():
            np.load(path)

    return measured(save), measured(load)


def worker(args):
    from mpi4py import MPI
    import checkpoint

    comm = MPI.COMM_WORLD
    tracemalloc.start()
    path = os.path.join(args.folder, f"run-{args.saved_on}.h5")
    out = {}
    if args.step == "same":
        net = rank_network(comm, args.gib)
        share = rank_bytes(net)
        raw_save, raw_load = raw_save_load(net, args.folder, comm.rank)
        comm.Barrier()
        ours_save = measured(lambda: checkpoint.save(path, net, comm=comm))
        comm.Barrier()
        ours_load = measured(lambda: checkpoint.load(path, net, comm=comm))
        out = {"share": share, "raw save": raw_save, "raw load": raw_load, "save": ours_save, "load": ours_load}
    else:
        net = rank_network(comm, args.gib, args.step)
        share = rank_bytes(net)
        comm.Barrier()
        out = {"share": share, "load": measured(lambda: checkpoint.load(path, net, comm=comm))}
    results = comm.gather(out, root=0)
    if comm.rank == 0:
        with open(os.path.join(args.folder, "result.json"), "w") as f:
            json.dump(results, f)


def run(args, ranks, step, saved_on):
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or "mpiexec"
    subprocess.run(
        [
            mpiexec,
            "-n",
            str(ranks),
            sys.executable,
            __file__,
            "--worker",
            step,
            "--gib",
            str(args.gib),
            "--folder",
            args.folder,
            "--saved-on",
            str(saved_on),
        ],
        check=True,
    )
    with open(os.path.join(args.folder, "result.json")) as f:
        return json.load(f)


def slowest(results, key):
    return max(r[key][0] for r in results)


def summary(results, key):
    peak = max(r[key][1] / r["share"] for r in results)
    read = max(r[key][2] / r["share"] for r in results)
    return f"peak memory {peak:4.2f}x share, read {read:4.2f}x share"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--folder", default=None)
    parser.add_argument("--worker", default=None)
    parser.add_argument("--saved-on", type=int, default=1)
    args = parser.parse_args()
    if args.worker:
        args.step = args.worker
        return worker(args)
    args.folder = tempfile.mkdtemp(prefix="bench-mpi-", dir=args.folder)
    try:
        print(f"state {args.gib:g} GiB, split by blocks of neurons; times are the slowest rank's")
        for ranks in args.ranks:
            results = run(args, ranks, "same", ranks)
            for key, raw in (("save", "raw save"), ("load", "raw load")):
                ours, base = slowest(results, key), slowest(results, raw)
                print(
                    f"{ranks} ranks  {key}  {ours:6.2f} s  raw {base:6.2f} s  ratio {base / ours:4.2f}  "
                    f"{summary(results, key)}"
                )
        largest = max(args.ranks)
        if largest >= 2:
            for kind in ("blocks", "round-robin"):
                results = run(args, largest // 2, kind, largest)
                print(
                    f"{largest} -> {largest // 2} ranks ({kind})  load {slowest(results, 'load'):6.2f} s  "
                    f"{summary(results, 'load')}"
                )
    finally:
        shutil.rmtree(args.folder, ignore_errors=True)


if __name__ == "__main__":
    main()
