"""Shared by the benchmarks that compare checkpoint with a simulator's own save."""

import os
import time

import numpy as np


def timed(action):
    """Seconds ``action()`` takes."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def best(repeat, action):
    """The shortest of ``repeat`` runs of ``action()``, in seconds."""
    return min(timed(action) for _ in range(repeat))


def print_speedups(rows):
    """``rows``: (name, save s, load s, bytes); the first row is the baseline."""
    width = max(len(name) for name, *_ in rows)
    print(f"| {'':{width}} | {'save':>8} | {'load':>8} | {'MB':>7} | save speed-up | load speed-up |")
    base_save, base_load = rows[0][1], rows[0][2]
    for name, save, load, size in rows:
        print(
            f"| {name:{width}} | {save:7.3f}s | {load:7.3f}s | {size / 1e6:7.1f} | "
            f"{base_save / save:12.1f}x | {base_load / load:12.1f}x |"
        )


def raw_cost(model, folder, repeat):
    """``(save s, load s, bytes)``: the raw cost of the bytes a checkpoint of
    ``model`` holds.  Each array of its captured state is ``np.save``'d to a
    file of its own and fsync'd, and read back with ``np.load``; no
    checksums, no manifest, no simulator calls.  Best of ``repeat``."""
    from checkpoint.adapters import adapter_for

    state = adapter_for(model).capture()
    groups = list(state.populations.values()) + list(state.projections.values())
    arrays = [
        np.ascontiguousarray(a)
        for group in groups
        for a in list(group.arrays.values()) + [getattr(group, "simulator_order", None)]
        if a is not None
    ]
    arrays += [
        np.asarray(getattr(group, part), np.int64)
        for group in state.projections.values()
        for part in ("indptr", "indices")
    ]  # int64 in every file
    raw = os.path.join(folder, "raw")
    os.makedirs(raw)
    paths = [os.path.join(raw, f"{k}.npy") for k in range(len(arrays))]

    def write():
        for path, array in zip(paths, arrays):
            with open(path, "wb") as f:
                np.save(f, array)
                f.flush()
                os.fsync(f.fileno())

    def read():
        return [np.load(path) for path in paths]

    return best(repeat, write), best(repeat, read), sum(a.nbytes for a in arrays)
