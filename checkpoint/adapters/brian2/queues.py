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
        if isinstance(state[1], np.ndarray):         # Python SpikeQueue: (dt, spikes, X.shape)
            dt, spikes, (ring, capacity) = state
            rows = np.asarray(spikes, np.int64).reshape(-1, 2)
            rows = rows[stable_argsort(rows[:, 0], ring)] if len(rows) else rows
            synapses, counts = rows[:, 1], np.bincount(rows[:, 0], minlength=ring)
        else:                                        # Cython SpikeQueue: (offset, [[synapse, ...], ...])
            offset, slots = state
            ring, capacity = len(slots), 0
            ordered = slots[offset:] + slots[:offset]
            counts = np.fromiter(map(len, ordered), np.int64, count=ring)
            # struct packs Python ints into bytes faster than numpy converts them (13 against 21 ns each)
            synapses = np.frombuffer(b"".join(struct.pack(f"<{len(slot)}i", *slot) for slot in ordered), "<i4")
        synapses = synapses.astype(np.int32 if len(synapses) == 0 or synapses.max() < 2 ** 31 else np.int64,
                                   copy=False)
    return {"_queue_synapses": synapses, "_queue_counts": np.asarray(counts, np.int64),
            "_queue_shape": np.array([ring, capacity], np.int64),
            "_queue_dt": np.array([np.nan if dt is None else dt], np.float64)}


def legacy_queues(proj, path):
    """A file of version 1 or 2 holds a queue as ``_queue``, rows of [steps
    until delivery, synapse]: read it as today's arrays."""
    for key in [k for k in proj.arrays if k.endswith("_queue")]:
        rows, shape = np.asarray(proj.arrays[key]), proj.arrays.get(key + "_shape")
        shape = None if shape is None else np.asarray(shape)
        if (rows.ndim != 2 or rows.shape[1] != 2 or rows.dtype.kind not in "iu" or shape is None
                or shape.shape != (2,) or shape.dtype.kind not in "iu"   # a float NaN would raise in int()
                or not 1 <= int(shape[0]) <= MAX_QUEUE_CELLS
                or (len(rows) and (rows[:, 0].min() < 0 or rows[:, 0].max() >= int(shape[0])))):
            raise CorruptCheckpointError("spike queue does not fit its ring", path=path, obj=f"{proj.name}.{key}")
        ring = int(shape[0])
        rows = rows[stable_argsort(rows[:, 0], ring)] if len(rows) else rows
        synapses = rows[:, 1]
        fits = len(synapses) == 0 or (synapses.min() >= 0 and synapses.max() < 2 ** 31)
        proj.arrays[key + "_synapses"] = synapses.astype(np.int32 if fits else np.int64)   # as Brian2 holds them
        proj.arrays[key + "_counts"] = np.bincount(rows[:, 0], minlength=ring).astype(np.int64)
        for new in ("_synapses", "_counts"):
            proj.info[key + new] = ArrayInfo("internal", "free", None)
        del proj.arrays[key], proj.info[key]


def check_queues(syn, values, nnz, path, name):
    for pathway in syn._pathways:
        key = pathway_prefix(pathway) + "_queue"
        parts = [values.get(key + part) for part in ("_synapses", "_counts", "_shape")]
        if all(part is None for part in parts):
            continue
        synapses, counts, shape = (None if part is None else np.asarray(part) for part in parts)
        ok = (synapses is not None and counts is not None and shape is not None
              and synapses.ndim == 1 and synapses.dtype.kind in "iu" and counts.ndim == 1
              and counts.dtype.kind in "iu" and shape.shape == (2,) and shape.dtype.kind in "iu"
              and 1 <= shape[0] and 0 <= shape[1] and int(shape[0]) * max(int(shape[1]), 1) <= MAX_QUEUE_CELLS
              and len(counts) == shape[0])
        ok = ok and (len(counts) == 0 or counts.min() >= 0) and int(counts.sum()) == len(synapses)
        ok = ok and (len(synapses) == 0 or (synapses.min() >= 0 and synapses.max() < nnz))
        if not ok:
            raise CorruptCheckpointError("spike queue does not fit the synapses", path=path, obj=f"{name}.{key}")


_EMPTY_SLOT = memoryview(np.zeros(0, np.int32))


#: A spike queue's ring length times row capacity (the Python queue's array)
#: that a file may declare: Brian2's ring is its longest delay in steps.
MAX_QUEUE_CELLS = 1 << 28


def restore_queue(pathway, synapses, counts, shape, dt):
    from brian2.devices.device import get_device
    if pathway.queue is None:
        pathway.queue = get_device().spike_queue(pathway.source.start, pathway.source.stop)
    ring, capacity = int(shape[0]), int(shape[1])
    if hasattr(pathway.queue, "X"):              # Python SpikeQueue
        rows = np.column_stack([np.repeat(np.arange(ring), counts), synapses]).astype(int)
        capacity = max(capacity, int(counts.max(initial=0)), 1)
        dt = None if dt is None or np.isnan(dt[0]) else float(dt[0])
        pathway.queue._restore_from_full_state((dt, rows, (ring, capacity)))
    else:
        # Cython fills its vectors from any iterable of ints; a memoryview is twice as fast as a list
        # (viewed as native int32: Cython refuses a memoryview of format "<i", which a file's array may have).
        # Empty slots share one empty view, so memory follows the spikes, not the ring's length.
        native = np.ascontiguousarray(synapses, np.int32).view(np.int32)
        ends = np.cumsum(counts)
        slots = [_EMPTY_SLOT] * ring
        for k in np.flatnonzero(counts):
            slots[k] = memoryview(native[ends[k] - counts[k]:ends[k]])
        pathway.queue._restore_from_full_state((0, slots))
