"""How save, load and peak memory grow from 1e4 to 1e8 synapses, per format.

    python benchmarks/bench_scaling.py [--max 1e8] [--plot scaling.png] [--csv scaling.csv]

For each size, an embedded network of ``synapses / 100`` neurons (4 float64
variables) and one projection (int64 pre ranks, float64 weights); in the
same run and on the same arrays, the raw cost of the same bytes: ``np.save``
+ fsync / ``np.load`` and plain h5py (fsync'd).  Text formats stop at 1e6
synapses (they are for small states).  Times are best of ``--repeat``; peak
memory is the most extra memory during the call (tracemalloc) over the
state's size.  The growth exponent is the slope of log(time) against
log(synapses) over the three largest sizes: 1.0 is linear.  The plot shows
seconds per synapse count on log-log axes, ours solid, raw dashed.
"""

import argparse
import csv
import math
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import checkpoint
from bench_formats import arrays, peak_extra, raw_h5, raw_npy, timed

TEXT_LIMIT = 1_000_000


def network(synapses, seed=0):
    rng = np.random.default_rng(seed)
    neurons = max(10, synapses // 100)
    net = checkpoint.Network(dt=0.1, seed=seed)
    pop = net.add_population(
        "exc",
        neurons,
        parameters={"a": 0.02},
        variables={v: rng.standard_normal(neurons) for v in ("v", "u", "g_exc", "g_inh")},
    )
    counts = np.full(neurons, synapses // neurons)
    counts[: synapses % neurons] += 1
    indptr = np.concatenate([[0], np.cumsum(counts)])
    net.add_projection(
        "exc_exc",
        pop,
        pop,
        connectivity=(indptr, rng.integers(0, neurons, synapses)),
        variables={"w": rng.random(synapses)},
    )
    return net


def measure(synapses, folder, repeat):
    """Rows of (synapses, what, save s, load s, peak save/state, peak load/state, bytes)."""
    net = network(synapses)
    data = arrays(net)
    nbytes = sum(a.nbytes for a in data.values())
    rows = []
    os.makedirs(os.path.join(folder, "npy"))
    for label, (write, read) in (
        ("raw np.save/np.load", raw_npy(data, os.path.join(folder, "npy"))),
        ("raw h5py", raw_h5(data, os.path.join(folder, "raw.h5"))),
    ):
        rows.append((synapses, label, timed(write, repeat)[0], timed(read, repeat, read=True)[0], None, None, nbytes))
    shutil.rmtree(os.path.join(folder, "npy"))
    os.remove(os.path.join(folder, "raw.h5"))
    formats = ["h5", "npz", "mat"] + (["txt", "txt.gz"] if synapses <= TEXT_LIMIT else [])
    for fmt in formats:
        path = os.path.join(folder, f"state.{fmt}")
        save = lambda: checkpoint.save(path, net)  # noqa: E731
        load = lambda: checkpoint.load(path, net)  # noqa: E731
        n = repeat if fmt in ("h5", "npz", "mat") else 1
        rows.append(
            (
                synapses,
                f"checkpoint .{fmt}",
                timed(save, n)[0],
                timed(load, n, read=True)[0],
                peak_extra(save) / nbytes,
                peak_extra(load) / nbytes,
                nbytes,
            )
        )
        os.remove(path)
    return rows


def exponent(rows, what):
    points = [(r[0], r[2], r[3]) for r in rows if r[1] == what][-3:]
    if len(points) < 2:
        return float("nan"), float("nan")
    x = np.log([p[0] for p in points])
    return tuple(float(np.polyfit(x, np.log([p[i] for p in points]), 1)[0]) for i in (1, 2))


def plot(rows, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install 'neuro-checkpoint[plot]')")
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, column, title in ((axes[0], 2, "save"), (axes[1], 3, "load")):
        for what in dict.fromkeys(r[1] for r in rows):
            points = [(r[0], r[column]) for r in rows if r[1] == what]
            ax.loglog(*zip(*points), "--" if what.startswith("raw") else "-o", label=what)
        ax.set_title(title)
        ax.set_xlabel("synapses")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("seconds (best of runs)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=float, default=1e8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--plot", default="scaling.png")
    parser.add_argument("--csv", default="scaling.csv")
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    sizes = [10**k for k in range(4, int(round(math.log10(args.max))) + 1)]
    rows = []
    for synapses in sizes:
        folder = tempfile.mkdtemp(prefix="bench-scaling-", dir=args.folder)
        try:
            rows += measure(synapses, folder, args.repeat)
        finally:
            shutil.rmtree(folder)
        print(f"{synapses:.0e} synapses done", flush=True)
    print(
        f"| {'synapses':>9} | {'':22} | {'save s':>8} | {'load s':>8} | {'peak save':>9} | "
        f"{'peak load':>9} | {'MB':>8} |"
    )
    for synapses, what, save, load, peak_save, peak_load, nbytes in rows:
        peaks = "".join(f" {'-' if p is None else f'{p:.2f}':>9} |" for p in (peak_save, peak_load))
        print(f"| {synapses:9.0e} | {what:22} | {save:8.4f} | {load:8.4f} |{peaks} {nbytes / 1e6:8.1f} |")
    print("growth exponents over the three largest sizes (1.0 = linear):")
    for what in dict.fromkeys(r[1] for r in rows):
        save, load = exponent(rows, what)
        print(f"  {what:22} save {save:.2f}  load {load:.2f}")
    with open(args.csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["synapses", "what", "save_s", "load_s", "peak_save", "peak_load", "bytes"])
        writer.writerows(rows)
    plot(rows, args.plot)


if __name__ == "__main__":
    main()
