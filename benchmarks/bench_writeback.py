"""Writing 1 GiB into a new file: plainly, or written back as it goes.

    python benchmarks/bench_writeback.py [--gib 1.0] [--pause 3] [--rounds 3] [--folder DIR]

An atomic save writes a new file while the old one still exists, so its
page cache needs memory that was not in use a moment ago.  On a virtual
machine that hands freed memory back to the host (free page reporting,
after about two seconds), touching such memory again is slow.  Each round
waits ``--pause`` seconds, then writes the same bytes in 8 MB blocks and
fsyncs, once through a plain file and once through ``WritebackFile``
(writeback every 16 MB, dropped from the page cache behind), and renames
the result over the previous one, as a save does.
"""

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

from checkpoint.formats._writer import WritebackFile, write_array_data


def plain(path, data):
    with open(path, "wb", buffering=0) as f:
        write_array_data(f, data)
        os.fsync(f.fileno())


def written_back(path, data):
    with WritebackFile(path) as f:
        write_array_data(f, data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--pause", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    data = np.random.default_rng(0).random(int(args.gib * 2**30) // 8)
    folder = tempfile.mkdtemp(prefix="ckpt-writeback-", dir=args.folder)
    times = {"plain write + fsync": [], "WritebackFile": []}
    try:
        for _ in range(args.rounds):
            for (label, samples), write in zip(times.items(), (plain, written_back)):
                time.sleep(args.pause)
                tmp, final = os.path.join(folder, "new.tmp"), os.path.join(folder, label)
                start = time.perf_counter()
                write(tmp, data)
                samples.append(time.perf_counter() - start)
                os.replace(tmp, final)
    finally:
        shutil.rmtree(folder)
    print(f"{data.nbytes / 2**30:.2f} GiB into a new file, {args.pause:g} s pause before each, {args.rounds} rounds")
    for label, samples in times.items():
        print(f"| {label:20s} | " + " | ".join(f"{s:6.3f} s" for s in samples) + " |")


if __name__ == "__main__":
    main()
