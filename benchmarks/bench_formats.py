"""Save/load speed and peak memory of each format against the raw cost of the same bytes.

    python benchmarks/bench_formats.py [--gib 1.0] [--text-fraction 0.02] [--folder DIR]

The state: one population of 2M neurons (4 float64 variables) and one
projection whose synapse count fills the requested size (int64 pre ranks,
float64 weights).  In the same run and on the same arrays it times:

* raw write: ``np.save`` of each array to its own file, fsync'd; raw read: ``np.load``;
* plain h5py: one dataset per array, fsync'd, and read back;
* ``checkpoint.save`` / ``checkpoint.load`` (into the live network) / ``checkpoint.read``.

Every time is the best of three runs (five for reads; one for text).  Ratios are raw time / our time:
1.0 is as fast as the raw write, and the
goal for uncompressed HDF5 and npz is >= 0.8.  Peak memory is the most extra
memory (tracemalloc, which sees numpy's buffers) during the call, divided by
the size of the state.  Text formats are timed on a fraction of the state
and reported per byte.  Reads follow writes, so the page cache is warm for
ours and for the raw baseline alike.
"""

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
import tracemalloc

import h5py
import numpy as np

import checkpoint
from checkpoint._atomic import fsync_path

NEURONS = 2_000_000


def build(gib, neurons=NEURONS):
    net = checkpoint.Network(dt=0.1, seed=0)
    rng = np.random.default_rng(0)
    pop = net.add_population(
        "exc",
        neurons,
        parameters={"a": 0.02},
        variables={v: rng.standard_normal(neurons) for v in ("v", "u", "g_exc", "g_inh")},
    )
    per_synapse = 16  # int64 pre rank + float64 weight
    synapses = int((gib * 2**30 - pop.size * 8 * 5) / per_synapse)
    counts = np.full(neurons, synapses // neurons)
    counts[: synapses % neurons] += 1
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = rng.integers(0, neurons, synapses)
    net.add_projection("exc_exc", pop, pop, connectivity=(indptr, indices), variables={"w": rng.random(synapses)})
    return net


def arrays(net):
    pop, proj = net.populations["exc"], net.projections["exc_exc"]
    out = {f"exc_{v}": pop[v] for v in pop.variables}
    out.update(indptr=proj.indptr, indices=proj.indices, w=proj.w)
    return out


COLD = False


def drop_caches():
    """Empty the page cache (root only), so that reads come from the disk."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def timed(fn, repeat=3, read=False):
    """Best of ``repeat`` runs (five for reads, which cost little): fsync'd
    writes vary several-fold between runs here, reads by tens of percent."""
    if read:
        repeat = max(repeat, 5)
    best, result = float("inf"), None
    for _ in range(repeat):
        result = None
        gc.collect()
        if read and COLD:
            drop_caches()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_extra(fn):
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def raw_npy(data, folder):
    def write():
        for name, array in data.items():
            path = os.path.join(folder, name + ".npy")
            with open(path, "wb") as f:
                np.save(f, array)
                f.flush()
                os.fsync(f.fileno())
        fsync_path(folder, directory=True)

    def read():
        return {name: np.load(os.path.join(folder, name + ".npy")) for name in data}

    return write, read


def raw_h5(data, path):
    def write():
        with h5py.File(path, "w") as f:
            for name, array in data.items():
                f.create_dataset(name, data=array)
        fsync_path(path)

    def read():
        with h5py.File(path, "r") as f:
            return {name: f[name][()] for name in data}

    return write, read


def raw_npz(data, path):
    """np.savez: the same bytes in the same container (ZIP with its CRC-32)."""

    def write():
        np.savez(path, **data)
        fsync_path(path)

    def read():
        with np.load(path) as z:
            return {name: z[name] for name in data}

    return write, read


def ours(net, path, **save_options):
    return (
        lambda: checkpoint.save(path, net, **save_options),
        lambda: checkpoint.load(path, net),
        lambda: checkpoint.read(path),
    )


def row(label, nbytes, seconds, raw_seconds, peak=None):
    ratio = raw_seconds / seconds if raw_seconds else float("nan")
    memory = f"{peak / nbytes:6.2f}" if peak is not None else "     -"
    print(f"| {label:28s} | {seconds:8.3f} | {nbytes / seconds / 1e9:6.2f} | {ratio:5.2f} | {memory} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--text-fraction", type=float, default=0.02)
    parser.add_argument("--folder", default=None, help="where to write (default: a temporary folder)")
    parser.add_argument("--formats", default="h5,npz,mat,txt", help="comma-separated, of h5,npz,mat,txt")
    parser.add_argument(
        "--cold", action="store_true", help="empty the page cache before every read (needs root): reads from the disk"
    )
    args = parser.parse_args()
    global COLD
    COLD = args.cold
    folder = tempfile.mkdtemp(prefix="ckpt-bench-", dir=args.folder)
    try:
        run(args, folder)
    finally:
        shutil.rmtree(folder)


def run(args, folder):
    net = build(args.gib)
    data = arrays(net)
    nbytes = sum(a.nbytes for a in data.values())
    print(
        f"state: {nbytes / 2**30:.2f} GiB ({net.projections['exc_exc'].nnz:,} synapses, "
        f"{NEURONS:,} neurons); folder {folder}; python {sys.version.split()[0]}, "
        f"numpy {np.__version__}, h5py {h5py.__version__}"
    )
    print("| operation                    |  seconds |   GB/s | ratio | peak/state |")
    print("|------------------------------|----------|--------|-------|------------|")
    copy_time, _ = timed(lambda: {k: a.copy() for k, a in data.items()})
    row("in-memory copy", nbytes, copy_time, copy_time)
    os.makedirs(os.path.join(folder, "npy"))
    npy_write, npy_read = raw_npy(data, os.path.join(folder, "npy"))
    h5_write, h5_read = raw_h5(data, os.path.join(folder, "raw.h5"))
    npz_write, npz_read = raw_npz(data, os.path.join(folder, "raw.npz"))
    raw = {}
    for label, fn in (
        ("raw np.save + fsync", npy_write),
        ("raw np.load", npy_read),
        ("raw h5py write + fsync", h5_write),
        ("raw h5py read", h5_read),
        ("raw np.savez + fsync", npz_write),
        ("raw np.load(npz)", npz_read),
    ):
        raw[label], _ = timed(fn, read="read" in label or "load" in label)
        row(label, nbytes, raw[label], raw[label])
    shutil.rmtree(os.path.join(folder, "npy"))
    os.remove(os.path.join(folder, "raw.h5"))
    os.remove(os.path.join(folder, "raw.npz"))
    baseline = {"h5": ("raw h5py write + fsync", "raw h5py read")}
    print(
        "ratios: h5 against plain h5py; npz and mat against np.save/np.load "
        "(the npz rows are repeated against np.savez, the same container)"
    )
    formats = args.formats.split(",")
    print("reads from the disk (page cache emptied before each)" if COLD else "reads from a warm page cache")
    for fmt, options in [(f, {}) for f in ("h5", "npz", "mat") if f in formats]:
        write_raw, read_raw = baseline.get(fmt, ("raw np.save + fsync", "raw np.load"))
        path = os.path.join(folder, f"state.{fmt}")
        save, load, read = ours(net, path, **options)
        seconds, _ = timed(save)
        row(f"checkpoint.save {fmt}", nbytes, seconds, raw[write_raw], peak_extra(save))
        seconds, _ = timed(load, read=True)
        row(f"checkpoint.load {fmt}", nbytes, seconds, raw[read_raw], peak_extra(load))
        seconds, _ = timed(read, read=True)
        row(f"checkpoint.read {fmt}", nbytes, seconds, raw[read_raw])
        if fmt == "npz":
            for op, fn, base in (("save", save, "raw np.savez + fsync"), ("read", read, "raw np.load(npz)")):
                seconds, _ = timed(fn, read=op == "read")
                row(f"checkpoint.{op} npz vs savez", nbytes, seconds, raw[base])
        os.remove(path)
    if "txt" not in formats:
        return
    small = build(args.gib * args.text_fraction, int(NEURONS * args.text_fraction))
    small_bytes = sum(a.nbytes for a in arrays(small).values())
    scale = nbytes / small_bytes
    for fmt in ("txt", "txt.gz"):
        path = os.path.join(folder, f"state.{fmt}")
        save, load, _ = ours(small, path)
        seconds, _ = timed(save, 1)
        row(f"checkpoint.save {fmt} (scaled)", nbytes, seconds * scale, raw["raw np.save + fsync"])
        seconds, _ = timed(load, 1)
        row(f"checkpoint.load {fmt} (scaled)", nbytes, seconds * scale, raw["raw np.load"])
        os.remove(path)


if __name__ == "__main__":
    main()
