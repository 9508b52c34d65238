"""Checks before a load changes anything: that the file's members are the
model's by identity, and that every value NEURON will be handed is in range.

A file matched by population name and size alone could put one cell's
state into another (a model built in another order, or of other cells):
here every member's and NetCon's identity must agree, in identity order.
"""

import math

import numpy as np

from ...errors import CorruptCheckpointError, StructureMismatchError
from .clock import GLOBALS
from .model import MODEL, MODEL_KIND

_ID_LIMIT = 2**32  # Random123 identifiers are uint32
_SEQ_LIMIT = 2.0**34  # Random123 stream positions (NEURON's 34-bit sequence)


def check(file_state, model_state, path):
    """Raise :class:`StructureMismatchError` unless the file's members and
    NetCons are the model's, identity by identity."""
    meta = file_state.meta.get("neuron")
    if not isinstance(meta, dict) or not isinstance(meta.get("fingerprint"), str):
        raise StructureMismatchError("not a checkpoint of a NEURON model (no meta 'neuron')", path=path)
    ours = model_state.meta["neuron"]
    if ours.get("gids") and "shard" not in file_state.meta and meta.get("gids"):
        return  # gathered from the shards of an MPI run: members are matched by global id (gid)
    _same(meta.get("members"), ours["members"], file_state.populations, "population", path)
    _same(meta.get("netcons"), ours["netcons"], file_state.projections, "projection", path)


def _same(theirs, ours, file_objects, what, path):
    if not isinstance(theirs, dict):
        raise CorruptCheckpointError(f"meta 'neuron' has no {what} identities", path=path)
    for name, mine in ours.items():
        if name not in file_objects:
            continue
        listed = theirs.get(name)
        if not isinstance(listed, list) or not _all_strings(listed):
            raise CorruptCheckpointError(f"the {what}'s identities are not a list of names", path=path, obj=name)
        if len(listed) != len(mine):
            raise StructureMismatchError(
                f"the file has {len(listed)} members, the model {len(mine)}", path=path, obj=name
            )
        if listed != mine:
            first = next(i for i, (a, b) in enumerate(zip(listed, mine)) if a != b)
            raise StructureMismatchError(
                f"member {first} is {listed[first]!r} in the file, {mine[first]!r} in "
                "the model: another model, never restored by position",
                path=path,
                obj=name,
            )


def _all_strings(items):
    # the types first (one C pass over thousands of names); a str subclass by isinstance
    return set(map(type, items)) == {str} or all(isinstance(x, str) for x in items)


def own_state(by, plan, path):
    """The model's own state from the file: the ``NEURON`` population, or
    (under MPI) the rank's rng entry, unless reseeded for another partition
    (then ``{}``: a continuation).  Its globals must be finite numbers."""
    own = by.get(("populations", MODEL))
    if own is not None:
        return own
    rng = plan.rng.get(MODEL)
    if rng is None or f"rng.{MODEL}" in plan.report.reseeded or rng.kind != MODEL_KIND:
        return {}
    state = rng.state if isinstance(rng.state, dict) else {}
    for key in set(GLOBALS) | set(state):
        value = state.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise CorruptCheckpointError(f"{key} is {value!r}, not a finite number", path=path, obj=f"rng {MODEL}")
    arrays = {k: np.asarray(v) for k, v in rng.arrays.items()}
    return {**{k: np.array(float(v)) for k, v in state.items()}, **arrays}


def check_streams(by, found, path):
    """Random123 identifiers and positions a file gives must be in range."""
    for name, group in found.groups.items():
        values = by.get(("populations", name)) or {}
        for stream in group.randoms:
            for k in ("id1", "id2", "id3", "seq"):
                key = f"{stream}.{k}"
                if key not in values:
                    continue
                array = np.asarray(values[key], np.float64)
                limit = _SEQ_LIMIT if k == "seq" else _ID_LIMIT
                if array.size and not (
                    np.all(np.isfinite(array))
                    and array.min() >= 0
                    and array.max() < limit
                    and np.all(array == np.floor(array))
                ):
                    raise CorruptCheckpointError(
                        f"a Random123 {k} out of [0, {limit:.0f})", path=path, obj=f"{name}.{key}"
                    )


def check_netcons(by, found, path):
    """NEURON takes any delay, and a negative or NaN one breaks its event
    queue later: delays must be finite and >= 0, ``active`` 0 or 1."""
    for name in found.wiring.projections:
        values = by.get(("projections", name)) or {}
        delay = np.asarray(values.get("delay", np.zeros(0)), np.float64)
        if delay.size and not (np.all(np.isfinite(delay)) and delay.min() >= 0):
            raise CorruptCheckpointError("a delay is negative or not finite", path=path, obj=f"{name}.delay")
        active = np.asarray(values.get("active", np.zeros(0)))
        if active.size and not np.all((active == 0) | (active == 1)):
            raise CorruptCheckpointError("active is not 0 or 1", path=path, obj=f"{name}.active")


def check_events(own, found, path):
    """The events in flight: finite times, NetCons and targets that exist.
    Returns how many there are (SaveState's size bound counts them)."""
    count = 0
    for prefix, index, size in (
        ("netcon_events", "netcon", len(found.wiring.ordered)),
        ("self_events", "target", sum(g.size for g in found.points.values())),
    ):
        times, which = own.get(f"{prefix}.t"), own.get(f"{prefix}.{index}")
        if times is None and which is None:
            continue
        times, which = np.asarray(times), np.asarray(which)
        ok = times.ndim == 1 and which.shape == times.shape and which.dtype.kind in "iu"
        ok = ok and bool(np.all(np.isfinite(times.astype(np.float64))))
        ok = ok and (not which.size or (int(which.min()) >= -1 and int(which.max()) < size))
        if not ok:
            raise CorruptCheckpointError(
                "the events in flight are not finite times of existing objects", path=path, obj=f"{MODEL}.{prefix}"
            )
        count += int(times.size)
    return count
