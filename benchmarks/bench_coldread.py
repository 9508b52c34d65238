"""How the reader threads share an array: ``checkpoint.read`` of one file with
several values of ``checksums.RUN_BLOCKS``, interleaved, against ``np.fromfile``.

    python benchmarks/bench_coldread.py [--gib 0.5] [--run-blocks 1,4,16,1000] [--rounds 9] [--warm]

Each round times every case once, in a shuffled order, after emptying the page
cache (needs root; ``--warm`` keeps it), so that the cases see the same disk
and the same machine.  ``RUN_BLOCKS`` 1 is the old scheme (the threads take
turns block by block); a large value gives each thread one contiguous share.
Prints the best and the median of each case, in seconds.
"""

import argparse
import gc
import os
import random
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import checkpoint
from bench_formats import build, drop_caches
from checkpoint.formats import checksums


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=0.5)
    parser.add_argument("--run-blocks", default="1,4,16,1000")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--format", default="h5", choices=("h5", "npz"))
    parser.add_argument("--warm", action="store_true", help="keep the page cache (no root needed)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="ckpt-coldread-")
    try:
        path = os.path.join(folder, f"state.{args.format}")
        checkpoint.save(path, build(args.gib))
        cases = {f"RUN_BLOCKS={n}": int(n) for n in args.run_blocks.split(",")}
        cases["np.fromfile"] = None
        times = {case: [] for case in cases}
        rng = random.Random(2)
        for _ in range(args.rounds):
            for case in rng.sample(list(cases), len(cases)):
                gc.collect()
                if not args.warm:
                    drop_caches()
                start = time.perf_counter()
                if cases[case] is None:
                    result = np.fromfile(path, np.uint8)
                else:
                    checksums.RUN_BLOCKS = cases[case]
                    result = checkpoint.read(path)
                times[case].append(time.perf_counter() - start)
                del result
        print(
            f"{os.path.getsize(path) / 2**30:.2f} GiB {args.format}, {'warm' if args.warm else 'cold'}, "
            f"{args.rounds} rounds, {checksums.READ_THREADS} reader threads"
        )
        for case, seconds in times.items():
            seconds.sort()
            print(f"{case:16s} best {seconds[0]:.3f} s  median {seconds[len(seconds) // 2]:.3f} s")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
