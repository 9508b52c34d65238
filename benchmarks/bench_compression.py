"""Speed and size of each compression option on a realistic state.

    python benchmarks/bench_compression.py [--neurons 500000] [--synapses 5000000]

The state looks like a network after some learning: noisy membrane
potentials (float64 normal noise around -65 mV), recovery variables and
conductances that are mostly zero, an STDP projection whose weights sit
mostly at the bounds (0 or w_max, the rest spread between) and whose traces
are mostly zero, plus the CSR connectivity.  Every option writes the same
state (fsync'd) and loads it back; best of ``--repeat``, same run.  The
``ratio`` column is the uncompressed file's size over this one's.
"""

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import checkpoint
from _simulators import best

OPTIONS = [
    ("h5", None),
    ("h5", "lzf"),
    ("h5", "gzip:1"),
    ("h5", "gzip:4"),
    ("h5", "gzip:9"),
    ("h5", "zstd:1"),
    ("h5", "zstd:3"),
    ("h5", "lz4"),
    ("h5", "blosc"),
    ("npz", None),
    ("npz", "gzip"),
]


def realistic(neurons, synapses, seed=0):
    rng = np.random.default_rng(seed)
    net = checkpoint.Network(dt=0.1, seed=seed)

    def mostly_zero(n, fraction=0.05):
        values = np.zeros(n)
        hot = rng.random(n) < fraction
        values[hot] = rng.exponential(0.1, int(hot.sum()))
        return values

    pop = net.add_population(
        "exc",
        neurons,
        parameters={"a": 0.02, "b": 0.2},
        variables={
            "v": -65.0 + 5.0 * rng.standard_normal(neurons),
            "u": -13.0 + rng.standard_normal(neurons),
            "g_exc": mostly_zero(neurons),
            "g_inh": mostly_zero(neurons),
        },
    )
    counts = rng.multinomial(synapses, np.full(neurons, 1.0 / neurons))
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = rng.integers(0, neurons, synapses)
    bound = rng.random(synapses)
    w = np.where(bound < 0.55, 0.0, np.where(bound < 0.85, 1.0, rng.random(synapses)))
    net.add_projection(
        "stdp",
        pop,
        pop,
        connectivity=(indptr, indices),
        variables={"w": w, "x": mostly_zero(synapses), "y": mostly_zero(synapses)},
    )
    return net


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=500_000)
    parser.add_argument("--synapses", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    net = realistic(args.neurons, args.synapses)
    folder = tempfile.mkdtemp(prefix="bench-compression-", dir=args.folder)
    rows = []
    try:
        for fmt, compression in OPTIONS:
            path = os.path.join(folder, f"state.{fmt}")
            try:
                save = best(args.repeat, lambda: checkpoint.save(path, net, compression=compression))
            except checkpoint.CheckpointError as exc:  # e.g. hdf5plugin not installed
                print(f"skipped .{fmt} {compression}: {exc}")
                continue
            load = best(args.repeat, lambda: checkpoint.load(path, net))
            rows.append((f".{fmt} {compression or 'uncompressed'}", save, load, os.path.getsize(path)))
            os.remove(path)
    finally:
        shutil.rmtree(folder)
    state_mb = rows[0][3] / 1e6
    print(
        f"{args.neurons:,} neurons, {args.synapses:,} synapses; uncompressed file {state_mb:.0f} MB; "
        f"best of {args.repeat}"
    )
    print(f"| {'option':22} | {'save s':>7} | {'load s':>7} | {'save MB/s':>9} | {'MB':>7} | {'ratio':>5} |")
    for name, save, load, size in rows:
        print(
            f"| {name:22} | {save:7.2f} | {load:7.2f} | {state_mb / save:9.0f} | {size / 1e6:7.1f} | "
            f"{rows[0][3] / size:5.2f} |"
        )


if __name__ == "__main__":
    main()
