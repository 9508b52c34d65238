"""One segment: what every recorder recorded over one checkpoint interval.

A segment is an ordinary checkpoint file of our format (so that
:func:`~checkpoint.formats.read_state` validates it as it validates any
checkpoint): one population of size 0 per recorder, its arrays of scope
``free``, and in its meta ``recordings``: the run, the segment's number in
the run, and the interval ``[t_start, t_end)`` in ms it covers.  Its name
is ``rec-<run>-<number, 8 digits><suffix>``; it is never rewritten.
"""

import os
import re
import stat

import numpy as np

from ..errors import CheckpointError, CorruptCheckpointError
from ..formats import read_state, write_state
from ..formats.schema import is_int, is_number, require
from ..state import ArrayInfo, NetworkState, PopulationState

__all__ = ["Segment", "segment_name", "parse_segment_name", "write_segment", "read_segment", "KINDS"]

#: what a recorder records: one value per event, or samples (times x neurons)
KINDS = ("events", "samples")
# fullmatch and ASCII digits: "$" also matches before a final newline, and \d any Unicode digit
_RUN = re.compile(r"[0-9a-f]{16}")
_NAME = re.compile(r"rec-([0-9a-f]{16})-([0-9]{8})\.(h5|hdf5|npz|mat|txt|txt\.gz|gz)")
CONTENT = "recordings"


def segment_name(run, number, suffix):
    return f"rec-{run}-{number:08d}{suffix}"


def parse_segment_name(name):
    """``(run, number)`` of a segment's file name, or None."""
    match = _NAME.fullmatch(name)
    return None if match is None else (match.group(1), int(match.group(2)))


def valid_run(run):
    return isinstance(run, str) and bool(_RUN.fullmatch(run))


class Segment:
    """What was taken from the recorders at one checkpoint, before it is written."""

    def __init__(self, run, number, t_start, t_end, step_start, step_end, data, kinds, units, indices):
        self.run, self.number = run, number
        self.t_start, self.t_end, self.step_start, self.step_end = t_start, t_end, step_start, step_end
        self.data, self.kinds, self.units, self.indices = data, kinds, units, indices

    def empty(self):
        """Nothing recorded and no time passed: not worth a file."""
        return self.t_end == self.t_start and all(len(a) == 0 for d in self.data.values() for a in d.values())

    def state(self, simulator):
        meta = {
            "time": float(self.t_end),
            "step": int(self.step_end),
            "dt": None,
            "content": CONTENT,
            "simulator": simulator,
            CONTENT: {
                "run": self.run,
                "number": self.number,
                "t_start": float(self.t_start),
                "t_end": float(self.t_end),
                "step_start": int(self.step_start),
                "step_end": int(self.step_end),
                "recorders": {name: {"kind": self.kinds[name]} for name in self.data},
            },
        }
        state = NetworkState(meta=meta)
        for name, arrays in self.data.items():
            arrays = {var: np.ascontiguousarray(a) for var, a in arrays.items()}
            units = self.units.get(name, {})
            info = {var: ArrayInfo("variable", "free", units.get(var)) for var in arrays}
            if self.indices.get(name) is not None:
                arrays["index"] = np.asarray(self.indices[name], np.int64)
                info["index"] = ArrayInfo("parameter", "free", None)
            state.populations[name] = PopulationState(name, 0, None, arrays, info)
        return state


def write_segment(directory, suffix, segment, simulator):
    """Write ``segment`` atomically; return its listing ``[name, size, digest]``."""
    name = segment_name(segment.run, segment.number, suffix)
    path = os.path.join(directory, name)
    # the checkpoint that commits the segment fsyncs the folder: its rename is durable with it
    digest = write_state(path, segment.state(simulator), sync_folder=False)
    return [name, os.path.getsize(path), digest]


def check_entry(entry, path):
    """A listing entry ``[name, size, digest]`` from a checkpoint's meta, checked."""
    require(
        isinstance(entry, list)
        and len(entry) == 3
        and isinstance(entry[0], str)
        and parse_segment_name(entry[0]) is not None
        and is_int(entry[1])
        and 0 <= entry[1] < 2**63
        and isinstance(entry[2], str)
        and len(entry[2]) <= 64,
        f"meta 'recordings.segments' has a bad entry {str(entry)[:80]!r}",
        path,
    )
    return entry


def read_segment(directory, entry, run, number, t_start, lazy=False):
    """Read and check the segment that ``entry`` lists: its size before it
    is opened, then its digest, run, number and interval.  Returns the
    state (lazy: close it) and its ``recordings`` meta."""
    name, size, digest = entry
    path = os.path.join(directory, name)
    try:
        st = os.lstat(path)
    except OSError:
        raise CorruptCheckpointError("a committed segment of the recordings is missing", path=path) from None
    require(stat.S_ISREG(st.st_mode), "a committed segment is not a regular file", path)
    require(st.st_size == size, f"the segment has {st.st_size} bytes, its checkpoint lists {size}", path)
    state = read_state(path, lazy=lazy)
    try:
        require(state.digest == digest, "the segment's digest differs from the one its checkpoint lists", path)
        meta = state.meta.get(CONTENT)
        require(state.meta.get("content") == CONTENT and isinstance(meta, dict), "not a segment of recordings", path)
        require(meta.get("run") == run, "the segment belongs to another run", path)
        require(
            parse_segment_name(name) == (run, number) and meta.get("number") == number,
            f"the segment is not number {number} of its run",
            path,
        )
        require(
            is_number(meta.get("t_start")) and is_number(meta.get("t_end")) and meta["t_end"] >= meta["t_start"],
            "the segment's interval is not a pair of times",
            path,
        )
        require(
            t_start is None or meta["t_start"] == t_start,
            f"the segment starts at {meta['t_start']!r} ms where the one before it ended ({t_start!r} ms)",
            path,
        )
        _check_recorders(state, meta, path)
    except BaseException:
        state.close()
        raise
    return state, meta


def _check_recorders(state, meta, path):
    recorders = meta.get("recorders")
    require(
        isinstance(recorders, dict) and set(recorders) == set(state.populations),
        "the segment's recorders are not its populations",
        path,
    )
    for name, about in recorders.items():
        require(isinstance(about, dict) and about.get("kind") in KINDS, f"recorder {name!r} has no kind", path)
        pop = state.populations[name]
        arrays = {v: a for v, a in pop.arrays.items() if v != "index"}
        require("t" in arrays and len(arrays["t"].shape) == 1, f"recorder {name!r} has no times", path)
        length = arrays["t"].shape[0]
        for var, array in arrays.items():
            shape = tuple(array.shape)
            expected_ndim = 1 if about["kind"] == "events" or var == "t" else 2
            require(
                len(shape) == expected_ndim and shape[0] == length,
                f"recorder {name!r}: {var!r} has shape {shape} for {length} records",
                path,
                name,
            )
        index = pop.arrays.get("index")
        # neuron numbers are integers, one axis (also beside events: the reader hands it out)
        require(
            index is None or (len(index.shape) == 1 and np.dtype(index.dtype).kind in "iu"),
            f"recorder {name!r}: 'index' is not a list of neurons",
            path,
            name,
        )
        if about["kind"] == "samples":
            width = {a.shape[1] for v, a in arrays.items() if v != "t"}
            require(
                index is None or (len(index.shape) == 1 and width <= {index.shape[0]}),
                f"recorder {name!r}: the recorded neurons and the values disagree",
                path,
                name,
            )
        # digests prove nothing (anyone recomputes them): the values a reader joins must be
        # what a recorder makes, or a forged segment's NaN, reversed or out-of-interval
        # times would be handed out as the run's recordings
        require(
            about["kind"] != "events" or "i" not in arrays or np.dtype(arrays["i"].dtype).kind in "iu",
            f"recorder {name!r}: 'i' is not integer",
            path,
            name,
        )
        _check_times(arrays["t"], about["kind"], meta["t_start"], meta["t_end"], path, name)


def _check_times(t, kind, t_start, t_end, path, name):
    """Times are real numbers inside the segment's interval (a rounding's
    slack), and a sampler's do not go back."""
    require(np.dtype(t.dtype).kind in "iuf", f"recorder {name!r}: its times are not numbers", path, name)
    t = np.asarray(t, np.float64)  # lazy: reads this one array (one interval's times)
    slack = 1e-6 + 1e-9 * max(abs(t_start), abs(t_end))
    with np.errstate(invalid="ignore"):
        inside = bool(np.all((t >= t_start - slack) & (t <= t_end + slack)))  # False for NaN
    require(
        inside,
        f"recorder {name!r}: a time outside the segment's interval [{t_start}, {t_end}] ms (or not finite)",
        path,
        name,
    )
    require(
        kind != "samples" or bool(np.all(np.diff(t) >= 0)), f"recorder {name!r}: its sample times go back", path, name
    )


def remove_segment(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise CheckpointError(f"cannot remove an uncommitted segment: {exc.strerror}", path=path) from None
