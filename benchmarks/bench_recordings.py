"""What recordings that survive restarts cost, and that it does not grow with the run.

    python benchmarks/bench_recordings.py [--neurons 10000] [--checkpoints 40]

A Brian2 network (numpy target) of ``--neurons`` noisy LIF neurons with a
SpikeMonitor (all neurons) and a StateMonitor (``v`` of 100 neurons), a
checkpoint every ``--interval-ms``, ``recordings=True``.  Printed, all
measured in this run:

* the bytes written and the time of the last checkpoint (state + segment)
  against the first's (goal: <= 1.1x), and the same for ``monitors=True``,
  which rewrites the whole history each time;
* the peak memory (ru_maxrss, each in a fresh process) of a run of 40
  intervals against one of 4 (goal: <= 1.2x);
* writing one segment against a raw h5py write + fsync of the same arrays
  (goal: <= 1.25x; medians of several).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def build(neurons):
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    b2.seed(7)
    group = b2.NeuronGroup(
        neurons,
        "dv/dt = (1.1 - v) / (10*ms) + 0.5 * xi / sqrt(ms) : 1",
        threshold="v > 1",
        reset="v = 0",
        method="euler",
        name="neurons",
    )
    group.v = "rand()"
    spikes = b2.SpikeMonitor(group, name="spikes")
    vm = b2.StateMonitor(group, "v", record=np.arange(0, neurons, max(1, neurons // 100)), name="vm")
    return b2, b2.Network(group, spikes, vm)


def run(neurons, checkpoints, interval_ms, folder, recordings=True):
    """Per checkpoint: (bytes written, seconds)."""
    import checkpoint

    b2, net = build(neurons)
    written = []
    with checkpoint.Checkpointer(
        folder, net, every_ms=interval_ms, recordings=recordings, monitors=not recordings, background=False, keep=2
    ) as ckpt:
        for _ in range(checkpoints):
            net.run(interval_ms * b2.ms)
            before = set(os.listdir(folder))
            start = time.perf_counter()
            path = ckpt.save()
            seconds = time.perf_counter() - start
            new = (set(os.listdir(folder)) - before) | {os.path.basename(path)}
            written.append((sum(os.path.getsize(os.path.join(folder, n)) for n in new), seconds))
    return written


def peak(neurons, intervals, interval_ms):
    """ru_maxrss in KiB of a run of ``intervals`` checkpoints, in a fresh process."""
    code = (
        f"import sys, tempfile, resource; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
        "import bench_recordings as b\n"
        f"folder = tempfile.mkdtemp(prefix='rec-peak-', dir='.')\n"
        f"b.run({neurons}, {intervals}, {interval_ms}, folder)\n"
        "import shutil; shutil.rmtree(folder)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1])


def segment_against_raw(neurons, interval_ms, repeats, folder):
    """Medians of (segment write, raw h5py write + fsync) of one interval's recordings."""
    import h5py
    from checkpoint.recordings.segments import Segment, write_segment

    b2, net = build(neurons)
    net.run(interval_ms * b2.ms)
    from checkpoint.adapters.brian2.recordings import recorders

    data = {r.name: (r, r.take()) for r in recorders(net.objects)}
    kinds = {n: r.kind for n, (r, _) in data.items()}
    units = {n: r.units() for n, (r, _) in data.items()}
    indices = {n: r.index() if r.kind == "samples" else None for n, (r, _) in data.items()}
    arrays = {n: a for n, (_, a) in data.items()}
    segment_times, raw_times = [], []
    for k in range(repeats):
        segment = Segment("0123456789abcdef", k, 0.0, interval_ms, 0, 1, arrays, kinds, units, indices)
        start = time.perf_counter()
        write_segment(folder, ".h5", segment, {"name": "brian2", "version": b2.__version__})
        segment_times.append(time.perf_counter() - start)
        raw = os.path.join(folder, f"raw-{k}.h5")
        start = time.perf_counter()
        with h5py.File(raw, "w") as f:
            for name, group in arrays.items():
                for var, array in group.items():
                    f.create_dataset(f"{name}/{var}", data=array)
                if indices[name] is not None:
                    f.create_dataset(f"{name}/index", data=indices[name])
        fd = os.open(raw, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        raw_times.append(time.perf_counter() - start)
    nbytes = sum(a.nbytes for group in arrays.values() for a in group.values())
    return statistics.median(segment_times), statistics.median(raw_times), nbytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=10_000)
    parser.add_argument("--checkpoints", type=int, default=40)
    parser.add_argument("--interval-ms", type=float, default=25.0)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-recordings-", dir=".")
    try:
        rows = {}
        for label, recordings in (("recordings=True", True), ("monitors=True", False)):
            sub = os.path.join(folder, label)
            written = run(args.neurons, args.checkpoints, args.interval_ms, sub, recordings)
            rows[label] = written
        segment, raw, nbytes = segment_against_raw(args.neurons, args.interval_ms, args.repeats, folder)
        peaks = {n: peak(args.neurons, n, args.interval_ms) for n in (4, 40)}
    finally:
        shutil.rmtree(folder)
    print(f"{args.neurons} neurons, a checkpoint every {args.interval_ms} ms, {args.checkpoints} checkpoints")
    print(
        "| checkpointer    | first: MB, s     | last: MB, s      | last/first bytes | last/first time "
        "(median of 5 last / 5 first) |"
    )
    for label, written in rows.items():
        (b0, s0), (b1, s1) = written[0], written[-1]
        t_first = statistics.median(s for _, s in written[:5])
        t_last = statistics.median(s for _, s in written[-5:])
        print(
            f"| {label:15s} | {b0 / 1e6:6.2f}, {s0:6.3f} | {b1 / 1e6:6.2f}, {s1:6.3f} | {b1 / b0:16.2f} | "
            f"{s1 / s0:5.2f} ({t_last / t_first:.2f}) |"
        )
    print(
        f"peak memory (ru_maxrss): 4 intervals {peaks[4] / 1024:.1f} MiB, 40 intervals "
        f"{peaks[40] / 1024:.1f} MiB: ratio {peaks[40] / peaks[4]:.3f} (goal <= 1.2)"
    )
    print(
        f"one segment ({nbytes / 1e6:.2f} MB): write_segment {segment * 1e3:.2f} ms, raw h5py + fsync "
        f"{raw * 1e3:.2f} ms: ratio {segment / raw:.2f} (goal <= 1.25)"
    )
    print(
        json.dumps(
            {
                "last_over_first_bytes": rows["recordings=True"][-1][0] / rows["recordings=True"][0][0],
                "peak_ratio": peaks[40] / peaks[4],
                "segment_over_raw": segment / raw,
            }
        )
    )


if __name__ == "__main__":
    main()
