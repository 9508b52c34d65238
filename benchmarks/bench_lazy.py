"""Lazy HDF5 reads: time and bytes read for a slice against a full read.

    python benchmarks/bench_lazy.py [--gib 1.0] [--folder .]

Saves a state of ``--gib`` GiB (one population, one projection) as HDF5,
then in the same run, best of 3: a full ``checkpoint.read``, and with
``lazy=True`` the 1000 first values of one population variable, and one
projection's weights in full.  Bytes read are the process's ``rchar``
(bytes passed by read system calls, page cache included), so they count
what the library asked for whether or not the disk served it.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import checkpoint  # noqa: E402
from bench_formats import build  # noqa: E402


def rchar():
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar")).split()[1])


def measure(action, repeat=3):
    best_time, best_bytes = float("inf"), None
    for _ in range(repeat):
        before, start = rchar(), time.perf_counter()
        action()
        elapsed, read = time.perf_counter() - start, rchar() - before
        if elapsed < best_time:
            best_time, best_bytes = elapsed, read
    return best_time, best_bytes


def full_read(path):
    state = checkpoint.read(path)
    state.populations["exc"]["v"][:1000].copy()


def lazy_slice(path):
    with checkpoint.read(path, lazy=True) as state:
        state.populations["exc"]["v"][:1000]


def lazy_weights(path):
    with checkpoint.read(path, lazy=True) as state:
        state.projections["exc_exc"]["w"][:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--folder", default=".")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-lazy-", dir=args.folder)
    try:
        path = os.path.join(folder, "state.h5")
        checkpoint.save(path, build(args.gib))
        size = os.path.getsize(path)
        print(f"file {size / 2**30:.2f} GiB; best of 3; bytes = rchar of this process")
        print(f"| {'':40} | {'seconds':>8} | {'MB read':>9} | {'of file':>7} |")
        for label, action in (
            ("read() everything", full_read),
            ("read(lazy=True), v[:1000]", lazy_slice),
            ("read(lazy=True), one projection's w", lazy_weights),
        ):
            seconds, nbytes = measure(lambda action=action: action(path))
            print(f"| {label:40} | {seconds:8.4f} | {nbytes / 1e6:9.2f} | {nbytes / size:7.1%} |")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
