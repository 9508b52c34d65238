"""How long a background checkpoint pauses the simulation.

    python benchmarks/bench_pause.py [--gib 0.5]

With ``background=True`` the run stops only while ``Checkpointer.save()``
copies the state; the write happens in a thread.  The goal is a pause of at
most 1.5x ``np.copyto`` of the same bytes into memory already allocated,
measured here in the same run (median of several saves, after a first save
that allocates the snapshot buffers).
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import checkpoint  # noqa: E402
from bench_formats import arrays, build  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=0.5)
    parser.add_argument("--saves", type=int, default=5)
    args = parser.parse_args()
    net = build(args.gib)
    data = arrays(net)
    nbytes = sum(a.nbytes for a in data.values())
    targets = {k: np.empty_like(a) for k, a in data.items()}
    copies = []
    for _ in range(args.saves):
        start = time.perf_counter()
        for key, array in data.items():
            np.copyto(targets[key], array)
        copies.append(time.perf_counter() - start)
    del targets
    folder = tempfile.mkdtemp(prefix="ckpt-pause-", dir=".")
    pauses, commits = [], []
    try:
        with checkpoint.Checkpointer(folder, net, keep=2, background=True) as ckpt:
            ckpt.save()
            ckpt.wait()  # the first save allocates the snapshot buffers
            for _ in range(args.saves):
                net.step += 1
                start = time.perf_counter()
                ckpt.save()
                pauses.append(time.perf_counter() - start)
                ckpt.wait()
                commits.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(folder)
    copy, pause = statistics.median(copies), statistics.median(pauses)
    print(f"state {nbytes / 2**30:.2f} GiB; median of {args.saves}")
    print(f"| np.copyto of the state          | {copy:7.3f} s |")
    print(f"| Checkpointer.save() pause (bg)  | {pause:7.3f} s | {pause / copy:4.2f}x copyto (goal <= 1.5x)")
    print(f"| until committed (h5, fsync'd)   | {statistics.median(commits):7.3f} s |")


if __name__ == "__main__":
    main()
