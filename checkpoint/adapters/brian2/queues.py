"""Spike queues (spikes in flight), one per synaptic pathway: captured as
``_queue_synapses`` (int32, delivery order) and ``_queue_counts`` (per
step of the ring), checked against the synapses and the ring's bound,
and restored into Brian2's Python or Cython queue.  Files of versions 1
and 2 hold rows ``_queue``: :func:`legacy_queues` reads them."""

import struct

import numpy as np

from ...errors import CorruptCheckpointError
from ...state import ArrayInfo
from .objects import pathway_prefix, stable_argsort


def queue_arrays(pathway, contents=True):
    """A spike queue as ``_queue_synapses`` (the Brian2 synapse index of
    every spike in flight, in delivery order, int32), ``_queue_counts``
    (how many of them each step delivers, from the next step on: one per
    slot of the ring), ``_queue_shape`` ([ring length, row capacity]) and
    ``_queue_dt``; the same for the Cython and the Python queue.  Without
    ``contents``: the same arrays, empty."""
    queue = pathway.queue
    if queue is None:
        return {}
    dt = None
    if not contents:
        synapses, counts, ring, capacity = np.zeros(0, np.int32), np.zeros(0, np.int64), 0, 0
    else:
        state = queue._full_state()
        if isinstance(state[1], np.ndarray):  # Python SpikeQueue: (dt, spikes, X.shape)
            dt, spikes, (ring, capacity) = state
            rows = np.asarray(spikes, np.int64).reshape(-1, 2)
            rows = rows[stable_argsort(rows[:, 0], ring)] if len(rows) else rows
            synapses, counts = rows[:, 1], np.bincount(rows[:, 0], minlength=ring)
        else:  # Cython SpikeQueue: (offset, [[synapse, ...], ...])
            offset, slots = state
            ring, capacity = len(slots), 0
            ordered = slots[offset:] + slots[:offset]
            counts = np.fromiter(map(len, ordered), np.int64, count=ring)
            # struct packs Python ints into bytes faster than numpy converts them (13 against 21 ns each)
            synapses = np.frombuffer(b"".join(struct.pack(f"<{len(slot)}i", *slot) for slot in ordered), "<i4")
        synapses = synapses.astype(np.int32 if len(synapses) == 0 or synapses.max() < 2**31 else np.int64, copy=False)
    return {
        "_queue_synapses": synapses,
        "_queue_counts": np.asarray(counts, np.int64),
        "_queue_shape": np.array([ring, capacity], np.int64),
        "_queue_dt": np.array([np.nan if dt is None else dt], np.float64),
    }


def legacy_queues(proj, path):
    """A file of version 1 or 2 holds a queue as ``_queue``, rows of [steps
    until delivery, synapse]: read it as today's arrays."""
    for key in [k for k in proj.arrays if k.endswith("_queue")]:
        rows, shape = np.asarray(proj.arrays[key]), proj.arrays.get(key + "_shape")
        shape = None if shape is None else np.asarray(shape)
        if (
            rows.ndim != 2
            or rows.shape[1] != 2
            or rows.dtype.kind not in "iu"
            or shape is None
            or shape.shape != (2,)
            or shape.dtype.kind not in "iu"  # a float NaN would raise in int()
            or not 1 <= int(shape[0]) <= MAX_RING  # before bincount allocates the ring's counts
            or (len(rows) and (rows[:, 0].min() < 0 or rows[:, 0].max() >= int(shape[0])))
        ):
            raise CorruptCheckpointError("spike queue does not fit its ring", path=path, obj=f"{proj.name}.{key}")
        ring = int(shape[0])
        rows = rows[stable_argsort(rows[:, 0], ring)] if len(rows) else rows
        synapses = rows[:, 1]
        fits = len(synapses) == 0 or (synapses.min() >= 0 and synapses.max() < 2**31)
        proj.arrays[key + "_synapses"] = synapses.astype(np.int32 if fits else np.int64)  # as Brian2 holds them
        proj.arrays[key + "_counts"] = np.bincount(rows[:, 0], minlength=ring).astype(np.int64)
        for new in ("_synapses", "_counts"):
            proj.info[key + new] = ArrayInfo("internal", "free", None)
        del proj.arrays[key], proj.info[key]


def check_queues(syn, values, nnz, path, name):
    """Raise unless each pathway's queue in ``values`` fits the synapses and
    what restoring it makes Brian2 allocate fits :data:`MAX_QUEUE_BYTES`
    (the queue it will be restored into: Python or Cython)."""
    for pathway in syn._pathways:
        key = pathway_prefix(pathway) + "_queue"
        parts = [values.get(key + part) for part in ("_synapses", "_counts", "_shape", "_dt")]
        if all(part is None for part in parts[:3]):
            continue
        synapses, counts, shape, dt = (None if part is None else np.asarray(part) for part in parts)
        why = _misfit(synapses, counts, shape, dt, nnz) or _too_large(pathway, synapses, counts, shape)
        if why:
            raise CorruptCheckpointError(f"spike queue {why}", path=path, obj=f"{name}.{key}")


def _misfit(synapses, counts, shape, dt, nnz):
    """Why the arrays are not a queue of these synapses (None if they are)."""
    if (
        synapses is None
        or counts is None
        or shape is None
        or synapses.ndim != 1
        or synapses.dtype.kind not in "iu"
        or counts.ndim != 1
        or counts.dtype.kind not in "iu"
        or shape.shape != (2,)
        or shape.dtype.kind not in "iu"
        or not 1 <= shape[0]
        or not 0 <= shape[1]
        or len(counts) != shape[0]
    ):
        return "does not fit the synapses"
    if dt is not None and not (dt.shape == (1,) and dt.dtype.kind == "f" and (np.isnan(dt[0]) or 0 < dt[0] < np.inf)):
        return "has a dt that is not one number > 0 (or NaN)"
    n = len(synapses)
    # each count at most n, then summed in Python integers: an int64 sum wraps
    # (2^63 + ... passes as n), and would move or duplicate spikes
    if len(counts) and (counts.min() < 0 or counts.max() > n):
        return "does not fit the synapses"
    if _exact_sum(counts, n) != n or (n and (synapses.min() < 0 or synapses.max() >= nnz)):
        return "does not fit the synapses"
    return None


def _exact_sum(counts, largest):
    """The sum of integers in ``[0, largest]``, in chunks small enough that
    no int64 partial sum can wrap, added as Python integers."""
    step = max(1, (1 << 62) // max(int(largest), 1))
    return sum(int(counts[i : i + step].sum(dtype=np.int64)) for i in range(0, len(counts), step))


def _too_large(pathway, synapses, counts, shape):
    ring = int(shape[0])
    if ring > MAX_RING:
        return f"of {ring} steps is longer than the {MAX_RING} a reader allows"
    # Python queue: X, ring x capacity int32 (a row holds one step's spikes:
    # at least the most any step delivers), and n, ring int64.  The file's
    # declared capacity is bounded whichever queue takes it.
    capacity = max(int(shape[1]), int(counts.max(initial=0)) if _is_python_queue(pathway) else 0, 1)
    cost = ring * (4 * capacity + 8)
    if not _is_python_queue(pathway):
        cost = max(cost, ring * CYTHON_SLOT_BYTES + 8 * len(synapses))
    if cost > MAX_QUEUE_BYTES:
        return (
            f"of {ring} steps would take Brian2 {cost} bytes to restore, more than the "
            f"{MAX_QUEUE_BYTES} a reader allows"
        )
    return None


def _is_python_queue(pathway):
    """Whether the queue restore_queue fills is Brian2's Python SpikeQueue
    (a 2-d array) rather than its Cython one (a vector per slot)."""
    if pathway.queue is not None:
        return hasattr(pathway.queue, "X")
    from brian2.devices.device import get_device

    return hasattr(get_device().spike_queue(pathway.source.start, pathway.source.stop), "X")


_EMPTY_SLOT = memoryview(np.zeros(0, np.int32).data)


#: What restoring one spike queue may make Brian2 allocate (docs/format.rst):
#: a file declares a ring of millions of steps in a few bytes.  Brian2's ring
#: is its longest delay in steps: 512 MiB hold 5 million steps in the Cython
#: queue (559 s of delay at dt = 0.1 ms).
MAX_QUEUE_BYTES = 1 << 29
#: What one slot of the ring costs Brian2's Cython queue on a restore: 88
#: bytes measured (benchmarks/bench_brian2_queue.py: the vectors Cython
#: converts, copies and resizes, the list of slots, counts and their sum),
#: rounded up.
CYTHON_SLOT_BYTES = 96
#: The longest ring a file may declare, for either queue (5,592,405 steps).
MAX_RING = MAX_QUEUE_BYTES // CYTHON_SLOT_BYTES


def restore_queue(pathway, synapses, counts, shape, dt):
    from brian2.devices.device import get_device

    if pathway.queue is None:
        pathway.queue = get_device().spike_queue(pathway.source.start, pathway.source.stop)
    ring, capacity = int(shape[0]), int(shape[1])
    if hasattr(pathway.queue, "X"):  # Python SpikeQueue
        rows = np.column_stack([np.repeat(np.arange(ring), counts), synapses]).astype(int)
        capacity = max(capacity, int(counts.max(initial=0)), 1)
        dt = None if dt is None or np.isnan(np.asarray(dt)[0]) else float(np.asarray(dt)[0])
        pathway.queue._restore_from_full_state((dt, rows, (ring, capacity)))
    else:
        # Cython fills its vectors from any iterable of ints; a memoryview is twice as fast as a list
        # (viewed as native int32: Cython refuses a memoryview of format "<i", which a file's array may have).
        # Empty slots share one empty view, so memory follows the spikes, not the ring's length.
        native = np.ascontiguousarray(synapses, np.int32).view(np.int32)
        ends = np.cumsum(counts)
        slots = [_EMPTY_SLOT] * ring
        for k in np.flatnonzero(counts):
            slots[k] = memoryview(native[ends[k] - counts[k] : ends[k]])
        pathway.queue._restore_from_full_state((0, slots))
