"""The reader's side: the whole run's recordings from a Checkpointer's folder.

The newest checkpoint that reads (a damaged one is passed over, as
:meth:`Checkpointer.latest` passes it over) names the segments it commits;
each is checked against its listing (size before it is opened, digest,
run, number, an interval that starts where the one before ended) and the
segments are concatenated, recorder by recorder, in order.
"""

import os
import warnings
from collections.abc import Mapping

import numpy as np

from ..errors import CheckpointError, CheckpointNotFoundError, CheckpointWarning, CorruptCheckpointError
from ..folder import CheckpointFolder
from ..formats import read_state
from ..formats.schema import require
from .log import listing_of
from .segments import read_segment

__all__ = ["Recordings", "Recording", "recordings"]


class Recording(Mapping):
    """One recorder's recordings over the whole run: ``rec[var]`` is an
    array (``t`` in ms; events: one value per event; samples: times x
    recorded neurons, ``index`` the recorded neurons)."""

    def __init__(self, name, kind, arrays, units):
        self.name, self.kind, self.arrays, self.units = name, kind, arrays, units

    def __getitem__(self, var):
        return self.arrays[var]

    def __iter__(self):
        return iter(self.arrays)

    def __len__(self):
        return len(self.arrays)

    def __repr__(self):
        return f"Recording({self.name!r}, {self.kind}, {len(self.arrays['t'])} records, variables={list(self)})"


class Recordings(Mapping):
    """Every recorder's :class:`Recording` over the committed part of a run,
    by name (as :func:`checkpoint.read` names the objects).  With
    ``lazy=True`` the arrays are read on demand: close it when done (or use
    it in a ``with`` block)."""

    def __init__(self, directory, run, t_start, t_end, checkpoint, segments, recorders, states=()):
        self.directory, self.run, self.t_start, self.t_end = directory, run, t_start, t_end
        self.checkpoint, self.segments, self._recorders, self._states = checkpoint, segments, recorders, list(states)

    def __getitem__(self, name):
        return self._recorders[name]

    def __iter__(self):
        return iter(self._recorders)

    def __len__(self):
        return len(self._recorders)

    def close(self):
        for state in self._states:
            state.close()
        self._states = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (
            f"Recordings({self.directory!r}, t = {self.t_start}..{self.t_end} ms, "
            f"{len(self.segments)} segments, recorders={list(self)})"
        )


class ConcatenatedArray:
    """Arrays joined along their first axis, read on demand: ``a[i:j]``
    reads only the parts it touches; ``np.asarray(a)`` reads them all."""

    def __init__(self, parts, dtype, tail):
        self._parts = parts
        self.dtype, self._tail = np.dtype(dtype), tuple(tail)
        self._starts = np.cumsum([0] + [p.shape[0] for p in parts])
        self.shape = (int(self._starts[-1]),) + self._tail
        self.ndim = len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        first, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        if isinstance(first, (int, np.integer)):
            position = int(first) + (self.shape[0] if first < 0 else 0)
            if not 0 <= position < self.shape[0]:
                raise IndexError(f"index {first} out of range for {self.shape[0]} records")
            part = int(np.searchsorted(self._starts, position, side="right") - 1)
            return np.asarray(self._parts[part][position - self._starts[part]])[rest]
        if not isinstance(first, slice) or first.step not in (None, 1):
            return np.asarray(self)[index]
        start, stop, _ = first.indices(self.shape[0])
        pieces = [
            self._parts[k][max(start - a, 0) : min(stop, b) - a]
            for k, (a, b) in enumerate(zip(self._starts[:-1], self._starts[1:]))
            if a < stop and b > start
        ]
        joined = np.concatenate([np.asarray(p) for p in pieces]) if pieces else np.zeros((0,) + self._tail, self.dtype)
        return joined[(slice(None),) + tuple(rest)] if rest else joined

    def __array__(self, dtype=None, copy=None):
        array = _join([np.asarray(p) for p in self._parts], self.dtype, self._tail)
        return array if dtype is None else array.astype(dtype)

    def __repr__(self):
        return f"ConcatenatedArray(shape={self.shape}, dtype={self.dtype}, parts={len(self._parts)})"


def _join(parts, dtype, tail):
    return np.concatenate(parts) if parts else np.zeros((0,) + tuple(tail), dtype)


def _newest_listing(directory):
    """``(path, listing)`` of the newest checkpoint that reads."""
    folder = CheckpointFolder(directory, read_only=True)
    found = folder.checkpoints()
    if not found:
        raise CheckpointNotFoundError("no checkpoint in the folder", path=directory)
    for _, path, _ in reversed(found):
        try:
            state = read_state(path, lazy=True)
            state.close()
            return path, listing_of(state.meta, path), state.meta.get("time")
        except CheckpointError as exc:
            warnings.warn(f"{exc}; trying the previous checkpoint", CheckpointWarning, stacklevel=3)
    raise CorruptCheckpointError("no checkpoint in the folder reads", path=directory)


def recordings(directory, lazy=False):
    """The recordings of the run in ``directory``, a Checkpointer's folder
    (``recordings=True``), up to its newest checkpoint.

    Returns
    -------
    Recordings
        ``rec[name][var]``: numpy arrays over every committed interval
        (``lazy=True``: read on demand).

    Raises
    ------
    CheckpointNotFoundError
        The folder holds no checkpoint.
    CorruptCheckpointError
        A committed segment is missing, damaged, of another run, or does
        not continue the one before it; nothing is returned.
    """
    directory = os.path.abspath(os.fspath(directory))
    path, listing, time_ms = _newest_listing(directory)
    if listing is None:
        return Recordings(directory, None, None, None, path, [], {})
    run, t_start, entries = listing
    states, parts, about = [], {}, {}
    t_end = t_start
    try:
        for number, entry in enumerate(entries):
            state, meta = read_segment(directory, entry, run, number, t_end, lazy=lazy)
            states.append(state)
            t_end = meta["t_end"]
            _collect(state, meta, parts, about, os.path.join(directory, entry[0]))
        # a checkpoint commits every segment up to its own time: a listing that ends
        # earlier (one cut short, digest recomputed) would lose its tail silently
        require(t_end == time_ms, f"its recordings end at {t_end!r} ms, the checkpoint is at {time_ms!r} ms", path)
        recorders = {name: _recording(name, about[name], parts[name], lazy) for name in parts}
    except BaseException:
        for state in states:
            state.close()
        raise
    if not lazy:
        for state in states:
            state.close()
        states = []
    return Recordings(directory, run, t_start, t_end, path, [e[0] for e in entries], recorders, states)


def _collect(state, meta, parts, about, path):
    """Add one segment's arrays to each recorder's parts, checking that a
    recorder keeps its kind, dtypes and recorded neurons."""
    for name, pop in state.populations.items():
        kind = meta["recorders"][name]["kind"]
        units = {v: pop.info[v].unit for v in pop.arrays if v in pop.info}
        signature = {v: (np.dtype(a.dtype).str, tuple(a.shape[1:])) for v, a in pop.arrays.items() if v != "index"}
        known = about.setdefault(name, {"kind": kind, "signature": signature, "units": units, "index": None})
        require(
            known["kind"] == kind and known["signature"] == signature,
            f"recorder {name!r} records other variables, dtypes or neurons than in the segment before",
            path,
            name,
        )
        # an index that appears or vanishes between segments changes the neurons unnoticed
        index = np.asarray(pop.arrays["index"]) if "index" in pop.arrays else None
        require(
            known.setdefault("has_index", index is not None) == (index is not None)
            and (known["index"] is None or np.array_equal(known["index"], index)),
            f"recorder {name!r} records other neurons than in the segment before",
            path,
            name,
        )
        known["index"] = index
        for var, array in pop.arrays.items():
            if var != "index":
                parts.setdefault(name, {}).setdefault(var, []).append(array)
        parts.setdefault(name, {})


def _recording(name, about, parts, lazy):
    arrays = {}
    for var, pieces in parts.items():
        dtype, tail = about["signature"][var]
        arrays[var] = (
            ConcatenatedArray(pieces, dtype, tail) if lazy else _join([np.asarray(p) for p in pieces], dtype, tail)
        )
    if about["index"] is not None:
        arrays["index"] = about["index"]
    return Recording(name, about["kind"], arrays, about["units"])
