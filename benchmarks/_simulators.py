"""Shared by the benchmarks that compare checkpoint with a simulator's own save."""

import time


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
        print(f"| {name:{width}} | {save:7.3f}s | {load:7.3f}s | {size / 1e6:7.1f} | "
              f"{base_save / save:12.1f}x | {base_load / load:12.1f}x |")
