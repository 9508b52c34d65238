"""Command line: ``python -m checkpoint inspect|diff|convert|verify|plot``.

Exit status: 0 success (``diff``: equal; ``verify``: all sound), 1 a
difference or a damaged file, 2 bad arguments or an unreadable input.
"""

import argparse
import os
import sys

import numpy as np

from ._version import __version__
from .errors import CheckpointError
from .formats import read_state, write_state


def _stats(array):
    array = np.asarray(array)
    if array.size == 0:
        return "empty"
    if array.dtype == bool:
        return f"{int(array.sum())} true"
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    if finite.size == 0:
        return "no finite values"
    return f"min {finite.min():.6g}  mean {finite.mean():.6g}  max {finite.max():.6g}"


def _groups(state):
    for name, pop in state.populations.items():
        yield "population", name, pop
    for name, proj in state.projections.items():
        yield "projection", name, proj


def cmd_inspect(args):
    state = read_state(args.file)
    meta = state.meta
    simulator = meta.get("simulator") or {}
    print(f"{args.file}: t = {state.time} ms, step {state.step}, dt {state.dt}, "
          f"{simulator.get('name')} {simulator.get('version') or ''}, written by checkpoint "
          f"{meta.get('library_version_written')}, {meta.get('created')}")
    if meta.get("user"):
        print(f"  metadata: {meta['user']}")
    for kind, name, group in _groups(state):
        if kind == "population":
            print(f"  population {name!r}: {group.size} neurons")
        else:
            print(f"  projection {name!r}: {group.pre!r} -> {group.post!r} ({group.target}), "
                  f"{group.nnz} synapses, shape {group.shape}")
        for var in group:
            info, array = group.info[var], np.asarray(group[var])
            unit = f" [{info.unit}]" if info.unit else ""
            print(f"    {var}{unit}: {info.kind}, {info.scope}, {array.dtype} {list(array.shape)}  "
                  f"{_stats(array)}")
    for name, rng in state.rng.items():
        print(f"  random generator {name!r}: {rng.kind}")
    return 0


def _difference(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return f"shape {list(a.shape)} vs {list(b.shape)}"
    if a.tobytes() == b.tobytes() and a.dtype == b.dtype:
        return None
    if a.dtype != b.dtype and np.array_equal(a, b):
        return f"dtype {a.dtype} vs {b.dtype}, same values"
    x, y = a.astype(np.float64), b.astype(np.float64)
    delta = np.abs(x - y)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.nanmax(np.where(np.abs(x) > 0, delta / np.abs(x), delta)) if delta.size else 0.0
    return f"max abs diff {np.nanmax(delta) if delta.size else 0:.6g}, max rel diff {relative:.6g}"


def _structure_differences(a, b):
    out = []
    for name in sorted(set(a.populations) & set(b.populations)):
        if a.populations[name].size != b.populations[name].size:
            out.append(f"{name}: {a.populations[name].size} vs {b.populations[name].size} neurons")
    for name in sorted(set(a.projections) & set(b.projections)):
        left, right = a.projections[name], b.projections[name]
        for part in ("shape", "pre", "post", "target"):
            if _plain(getattr(left, part)) != _plain(getattr(right, part)):
                out.append(f"{name}: {part} {_plain(getattr(left, part))} vs {_plain(getattr(right, part))}")
    return out


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


# what a load restores besides the arrays: the clock, and what the adapters read from meta
_RESTORED_META = (("dt", "dt"), ("brian2", "Brian2 clocks"), ("nest", "NEST kernel clock and seed"))


def _clock_and_rng_differences(a, b):
    out = []
    if a.step != b.step or a.time != b.time:
        out.append(f"time: {a.time} ms (step {a.step}) vs {b.time} ms (step {b.step})")
    for key, what in _RESTORED_META:
        if a.meta.get(key) != b.meta.get(key):
            out.append(f"{what}: {a.meta.get(key)} vs {b.meta.get(key)}")
    for name in sorted(set(a.rng) | set(b.rng)):
        if name not in a.rng or name not in b.rng:
            out.append(f"random generator {name!r} only in one file")
            continue
        left, right = a.rng[name], b.rng[name]
        same = (left.kind == right.kind and left.state == right.state and left.arrays.keys() == right.arrays.keys()
                and all(_difference(left.arrays[k], right.arrays[k]) is None for k in left.arrays))
        if not same:
            out.append(f"random generator {name!r}: its state differs")
    return out


def cmd_diff(args):
    a, b = read_state(args.a), read_state(args.b)
    differences = []
    for section in ("populations", "projections"):
        left, right = getattr(a, section), getattr(b, section)
        for name in sorted(set(left) | set(right), key=str):
            if name not in right or name not in left:
                differences.append(f"{section[:-1]} {name!r} only in {args.a if name in left else args.b}")
                continue
            if section == "projections":
                for part in ("indptr", "indices"):
                    if _difference(getattr(left[name], part), getattr(right[name], part)):
                        differences.append(f"{name}: connectivity differs ({part})")
            for var in sorted(set(left[name]) | set(right[name]), key=str):
                if var not in left[name] or var not in right[name]:
                    differences.append(f"{name}.{var} only in {args.a if var in left[name] else args.b}")
                    continue
                d = _difference(left[name][var], right[name][var])
                if d:
                    differences.append(f"{name}.{var}: {d}")
    differences += _structure_differences(a, b) + _clock_and_rng_differences(a, b)
    for line in differences:
        print(line)
    if not differences:
        print("equal")
    return 1 if differences else 0


def cmd_convert(args):
    state = read_state(args.source)
    write_state(args.target, state, args.format, args.compression)
    print(f"{args.source} -> {args.target}")
    return 0


def cmd_verify(args):
    from .folder import CheckpointFolder
    if os.path.isdir(args.path):
        paths = [path for _, path, _ in CheckpointFolder(os.path.abspath(args.path), read_only=True).checkpoints()]
        if not paths:
            print(f"{args.path}: no checkpoints")
            return 1
    else:
        paths = [args.path]
    bad = 0
    for path in paths:
        try:
            if "shards" in read_state(path).meta:   # a sharded checkpoint: its manifest, then every shard
                from .distributed import shard_paths
                for shard in shard_paths(path):
                    read_state(shard)
            print(f"ok       {path}")
        except CheckpointError as exc:
            bad += 1
            print(f"DAMAGED  {exc}")
    return 1 if bad else 0


def cmd_plot(args):
    try:
        import matplotlib
    except ImportError:
        raise CheckpointError("plot needs matplotlib: pip install 'neuro-checkpoint[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    state = read_state(args.file)
    panels = [(f"{kind} {name}: {var}", np.asarray(group[var])) for kind, name, group in _groups(state)
              for var in group if np.asarray(group[var]).size > 1]
    if not panels:
        raise CheckpointError("nothing to plot: no array with more than one value", path=args.file)
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for ax, (title, values) in zip(axes.flat, panels):
        values = values.astype(np.float64).ravel()
        ax.hist(values[np.isfinite(values)], bins=50)
        ax.set_title(title, fontsize=9)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.output, dpi=80)
    print(f"wrote {args.output}")
    return 0


def parser():
    p = argparse.ArgumentParser(prog="checkpoint", description="Inspect, compare, convert and verify "
                                "neural network checkpoints.")
    p.add_argument("--version", action="version", version=f"checkpoint {__version__} (neuro-checkpoint)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("inspect", help="the tree: objects, variables, shapes, dtypes, statistics")
    s.add_argument("file")
    s.set_defaults(run=cmd_inspect)
    s = sub.add_parser("diff", help="differences between two checkpoints (exit 0 when equal)")
    s.add_argument("a")
    s.add_argument("b")
    s.set_defaults(run=cmd_diff)
    s = sub.add_parser("convert", help="any format to any other")
    s.add_argument("source")
    s.add_argument("target")
    s.add_argument("--format", default=None, help="target format if not given by its suffix")
    s.add_argument("--compression", default=None, help="e.g. gzip, gzip:9, lzf")
    s.set_defaults(run=cmd_convert)
    s = sub.add_parser("verify", help="checksums of a file or of every checkpoint in a folder")
    s.add_argument("path")
    s.set_defaults(run=cmd_verify)
    s = sub.add_parser("plot", help="histograms of every array")
    s.add_argument("file")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(run=cmd_plot)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except CheckpointError as exc:
        print(f"checkpoint {args.command}: {exc}", file=sys.stderr)
        return 1 if args.command == "verify" else 2
