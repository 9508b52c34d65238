"""Command line: ``python -m checkpoint inspect|diff|convert|export|verify|plot|recordings``.

Exit status: 0 success (``diff``: equal; ``verify``: all sound), 1 a
difference or a damaged file, 2 bad arguments or an unreadable input.
"""

import argparse
import os
import sys

import numpy as np

from . import distributed
from ._version import __version__
from .errors import CheckpointError
from .formats import read_state, write_state
from .local import SHARDS


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


def _read(path):
    """A checkpoint as one state: a sharded one is assembled from its shards
    (an error, naming the way out, when its ranks held populations of their own)."""
    state = read_state(path)
    if SHARDS in state.meta:
        return distributed.read(path)
    return state


def _rank_local(path):
    """The shards of a sharded checkpoint whose ranks each held their own
    populations (no global ids), or None when it reads as one network."""
    state = read_state(path)
    if SHARDS not in state.meta or distributed.rank_local_populations(state.meta[SHARDS]) is None:
        return None
    return distributed.verify_shards(path)


def _groups(state):
    for name, pop in state.populations.items():
        yield "population", name, pop
    for name, proj in state.projections.items():
        yield "projection", name, proj


def cmd_inspect(args):
    shards = _rank_local(args.file)
    for path in shards or [args.file]:
        _inspect(path, read_state(path) if shards else _read(path))
    return 0


def _inspect(name, state):
    meta = state.meta
    simulator = meta.get("simulator") or {}
    assembled = f" (assembled from {meta['assembled_from']['ranks']} shards)" if meta.get("assembled_from") else ""
    print(
        f"{name}{assembled}: t = {state.time} ms, step {state.step}, dt {state.dt}, "
        f"{simulator.get('name')} {simulator.get('version') or ''}, written by checkpoint "
        f"{meta.get('library_version_written')}, {meta.get('created')}"
    )
    if meta.get("user"):
        print(f"  metadata: {meta['user']}")
    for kind, name, group in _groups(state):
        if kind == "population":
            print(f"  population {name!r}: {group.size} neurons")
        else:
            target = f", target {group.target!r}" if group.target is not None else ""
            print(
                f"  projection {name!r}: {group.pre!r} -> {group.post!r}{target}, "
                f"{group.nnz} synapses, matrix {group.shape[0]} post x {group.shape[1]} pre"
            )
        for var in group:
            info, array = group.info[var], np.asarray(group[var])
            unit = f", unit {info.unit}" if info.unit else ""
            shape = "scalar" if array.ndim == 0 else "shape " + " x ".join(map(str, array.shape))
            print(f"    {var}: {info.kind}, {info.scope}, {array.dtype}, {shape}{unit};  {_stats(array)}")
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
        same = (
            left.kind == right.kind
            and left.state == right.state
            and left.arrays.keys() == right.arrays.keys()
            and all(_difference(left.arrays[k], right.arrays[k]) is None for k in left.arrays)
        )
        if not same:
            out.append(f"random generator {name!r}: its state differs")
    return out


def cmd_diff(args):
    local = [_rank_local(p) for p in (args.a, args.b)]
    if not any(local):  # whole networks (sharded ones assembled): any partition compares
        differences = _state_differences(_read(args.a), _read(args.b), args.a, args.b)
    else:  # ranks with populations of their own: the manifests, then shard by shard
        a, b = read_state(args.a), read_state(args.b)
        differences = _state_differences(a, b, args.a, args.b)
        left, right = (shards or [] for shards in local)
        if len(left) != len(right):
            differences.append(f"shards: {len(left)} ranks vs {len(right)}")
        for rank, (x, y) in enumerate(zip(left, right)):
            differences += [f"rank {rank}: {line}" for line in _state_differences(read_state(x), read_state(y), x, y)]
    for line in differences:
        print(line)
    if not differences:
        print("equal")
    return 1 if differences else 0


def _state_differences(a, b, name_a, name_b):
    """What a load of ``a`` would restore differently from ``b``, line by line."""
    differences = []
    for section in ("populations", "projections"):
        left, right = getattr(a, section), getattr(b, section)
        for name in sorted(set(left) | set(right), key=str):
            if name not in right or name not in left:
                differences.append(f"{section[:-1]} {name!r} only in {name_a if name in left else name_b}")
                continue
            if section == "projections":
                for part in ("indptr", "indices"):
                    if _difference(getattr(left[name], part), getattr(right[name], part)):
                        differences.append(f"{name}: connectivity differs ({part})")
            for var in sorted(set(left[name]) | set(right[name]), key=str):
                if var not in left[name] or var not in right[name]:
                    differences.append(f"{name}.{var} only in {name_a if var in left[name] else name_b}")
                    continue
                d = _difference(left[name][var], right[name][var])
                if d:
                    differences.append(f"{name}.{var}: {d}")
    return differences + _structure_differences(a, b) + _clock_and_rng_differences(a, b)


def cmd_convert(args):
    state = _read(args.source)
    if args.ranks:
        distributed.write_shards(args.target, state, args.ranks, args.format, compression=args.compression)
        print(f"{args.source} -> {args.target} (manifest) + {args.ranks} shards in {args.target}.shards/")
    else:
        write_state(args.target, state, args.format, args.compression)
        print(f"{args.source} -> {args.target}")
    return 0


def cmd_export(args):
    from .interchange import export

    export(args.target, args.source, to=args.to, overwrite=args.overwrite)
    print(f"{args.source} -> {args.target} ({args.to})")
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
            if SHARDS in read_state(path).meta:  # a sharded checkpoint: its manifest, then every shard
                distributed.verify_shards(path)
            print(f"ok       {path}")
        except CheckpointError as exc:
            bad += 1
            print(f"DAMAGED  {exc}")
    return 1 if bad else 0


def _label(var, info):
    return f"{var} ({info.unit})" if info.unit and info.unit != "1" else var


def _is_constant(values):
    finite = values[np.isfinite(values)]
    return values.size <= 1 or finite.size == 0 or (finite.min() == finite.max() and finite.size == values.size)


def cmd_plot(args):
    try:
        import matplotlib
    except ImportError:
        raise CheckpointError("plot needs matplotlib: pip install 'neuro-checkpoint[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    state = _read(args.file)
    histograms, constants = [], []
    for kind, name, group in _groups(state):
        for var in group:
            values = np.asarray(group[var]).astype(np.float64).ravel()
            label = _label(var, group.info[var])
            if _is_constant(values):  # one number tells it all: a row of the table, not a panel
                constants.append((name, label, f"{values[0]:.6g}" if values.size else "empty", values.size))
            else:
                histograms.append((name, label, values))
    if not histograms and not constants:
        raise CheckpointError("nothing to plot: the file holds no arrays", path=args.file)
    columns = min(3, max(1, len(histograms)))
    rows = -(-len(histograms) // columns) + (1 if constants else 0)
    table_height = 0.25 * (len(constants) + 2) if constants else 0
    fig = plt.figure(figsize=(4.6 * columns, 3.2 * (rows - bool(constants)) + table_height + 0.6), layout="constrained")
    heights = [3.2] * (rows - bool(constants)) + ([table_height] if constants else [])
    grid = fig.add_gridspec(rows, columns, height_ratios=heights)
    for i, (name, label, values) in enumerate(histograms):
        ax = fig.add_subplot(grid[i // columns, i % columns])
        finite = values[np.isfinite(values)]
        ax.hist(finite, bins=50)
        ax.set_title(f"{name}: {label}", fontsize=9, wrap=True)
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel("count", fontsize=8)
        ax.tick_params(labelsize=7)
        if finite.size < values.size:
            ax.text(
                0.98,
                0.95,
                f"{values.size - finite.size} not finite",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=7,
            )
    if constants:
        ax = fig.add_subplot(grid[rows - 1, :])
        ax.axis("off")
        ax.set_title("arrays with one value", fontsize=9, loc="left")
        table = ax.table(
            cellText=[[obj, label, value, str(size)] for obj, label, value, size in constants],
            colLabels=["object", "array (unit)", "value", "elements"],
            loc="upper left",
            cellLoc="left",
            colLoc="left",
        )
        table.auto_set_font_size(False)
        table.set_fontsize(8)
    fig.suptitle(f"{os.path.basename(args.file)}: t = {state.time} ms, step {state.step}", fontsize=10)
    fig.savefig(args.output, dpi=80)
    print(f"wrote {args.output}")
    return 0


def cmd_recordings(args):
    from .recordings import recordings
    from .recordings.export import export

    with recordings(args.folder, lazy=args.out is None) as rec:
        if args.out:
            export(rec, args.out)
            print(f"{args.out}: {len(rec)} recorders, t = {rec.t_start} .. {rec.t_end} ms")
            return 0
        if rec.run is None:
            print(f"{args.folder}: its newest checkpoint, {os.path.basename(rec.checkpoint)}, commits no recordings")
            return 0
        print(
            f"{args.folder}: run {rec.run}, t = {rec.t_start} .. {rec.t_end} ms, {len(rec.segments)} segments "
            f"(committed by {os.path.basename(rec.checkpoint)})"
        )
        for name, recording in rec.items():
            shapes = ", ".join(f"{var} {tuple(a.shape)} {a.dtype}" for var, a in recording.items())
            print(f"  {name!r} ({recording.kind}): {len(recording['t'])} records; {shapes}")
    return 0


def parser():
    p = argparse.ArgumentParser(
        prog="checkpoint", description="Inspect, compare, convert and verify neural network checkpoints."
    )
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
    s.add_argument(
        "--ranks",
        type=int,
        default=None,
        help="write a sharded checkpoint for N MPI ranks (each population in N blocks)",
    )
    s.set_defaults(run=cmd_convert)
    s = sub.add_parser(
        "export",
        help="the network as SONATA (a circuit folder) or NeuroML 2 HDF5 (a file): "
        "structure and values, not a checkpoint",
    )
    s.add_argument("source")
    s.add_argument("target")
    s.add_argument("--to", required=True, choices=["sonata", "neuroml"])
    s.add_argument("--overwrite", action="store_true", help="replace a previous export at target")
    s.set_defaults(run=cmd_export)
    s = sub.add_parser("verify", help="checksums of a file or of every checkpoint in a folder")
    s.add_argument("path")
    s.set_defaults(run=cmd_verify)
    s = sub.add_parser("plot", help="a histogram of every array, a table of those with one value")
    s.add_argument("file")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(run=cmd_plot)
    s = sub.add_parser(
        "recordings", help="the recordings of a run in a Checkpointer's folder: a summary, or the whole run as one file"
    )
    s.add_argument("folder")
    s.add_argument("--out", default=None, help="write them to this .h5, .npz, .mat or .nwb file")
    s.set_defaults(run=cmd_recordings)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except CheckpointError as exc:
        print(f"checkpoint {args.command}: {exc}", file=sys.stderr)
        return 1 if args.command == "verify" else 2
