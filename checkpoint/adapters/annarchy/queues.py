"""Spikes in flight: a projection's ring buffer (non-uniform delays) as
``(steps until delivery, post rank, position in the dendrite)`` rows, and
a population's delay queue of past spikes or values, newest first."""

import numpy as np

from ...errors import CorruptCheckpointError

IN_FLIGHT = "_delayed_spikes"  # a projection's ring buffer of spikes (non-uniform delays)


def in_flight_triples(lengths, flat, idx_delay, post_rank):
    """A ring buffer ``[slot][dendrite][...]`` as (steps until delivery,
    post rank, position in the dendrite) rows, in delivery order: the same
    rows whatever slot the ring's index happens to be at."""
    slots = int(lengths[0]) if len(lengths) else 0
    if slots == 0 or len(flat) == 0:
        return np.zeros((0, 3), np.int64)
    per_slot_rows = lengths[1:1 + slots]
    cell_lengths = lengths[1 + slots:]
    cell = np.repeat(np.arange(len(cell_lengths)), cell_lengths)
    slot_of_cell = np.repeat(np.arange(slots), per_slot_rows)
    row_of_cell = np.concatenate([np.arange(n) for n in per_slot_rows])
    slot, row = slot_of_cell[cell], row_of_cell[cell]
    triples = np.stack([(slot - idx_delay) % slots, np.asarray(post_rank, np.int64)[row],
                        flat.astype(np.int64)], axis=1)
    return triples[np.argsort(triples[:, 0], kind="stable")]


def in_flight_layout(triples, csr, slots, path, label):
    """The ring buffer's ``(lengths, flat)`` for rows ``triples`` (checked
    against the projection's synapses ``csr``), to be written with idx_delay 0."""
    triples = np.zeros((0, 3), np.int64) if triples is None else np.asarray(triples)
    if triples.ndim != 2 or triples.shape[1] != 3 or triples.dtype.kind not in "iu":
        raise CorruptCheckpointError("spikes in flight must be (n, 3) integers", path=path, obj=label)
    triples = triples.astype(np.int64)
    row_of = np.full(len(csr.indptr) - 1, -1, np.int64)
    row_of[csr.post_rank] = np.arange(len(csr.post_rank))
    if len(triples) and (triples[:, 0].min() < 0 or triples[:, 0].max() >= slots
                         or triples[:, 1].min() < 0 or triples[:, 1].max() >= len(row_of)):
        raise CorruptCheckpointError("a spike in flight is out of this projection's range", path=path, obj=label)
    rows = row_of[triples[:, 1]]
    if len(triples) and (rows.min() < 0 or triples[:, 2].min() < 0
                         or np.any(triples[:, 2] >= csr.row_lengths[np.maximum(rows, 0)])):
        raise CorruptCheckpointError("a spike in flight targets a synapse that does not exist",
                                     path=path, obj=label)
    n_rows = len(csr.post_rank)
    cell = triples[:, 0] * n_rows + rows
    order = np.argsort(cell, kind="stable")
    per_cell = np.bincount(cell, minlength=slots * n_rows)
    return np.concatenate([[slots], np.full(slots, n_rows), per_cell]), triples[order, 2]


def delay_queue_layout(size, field, lengths, flat, wanted, path, label):
    """A population's queue of past spikes or values (``size`` neurons),
    newest first, cut or padded to ``wanted`` steps (spikes pad with none,
    values with the oldest): its ``(lengths, flat)``."""
    rows = np.split(flat, np.cumsum(lengths[1:])[:-1]) if lengths[0] else []
    if field.dtype.kind == "f" and any(len(r) != size for r in rows):
        raise CorruptCheckpointError("a delayed value needs one entry per neuron", path=path, obj=label)
    if field.dtype.kind != "f" and len(flat) and (flat.min() < 0 or flat.max() >= size):
        raise CorruptCheckpointError("a delayed spike's rank is out of range", path=path, obj=label)
    if wanted > len(rows):
        pad = rows[-1] if field.dtype.kind == "f" and rows else np.zeros(0, field.dtype)
        if field.dtype.kind == "f" and not rows:
            pad = np.zeros(size, field.dtype)
        rows = rows + [pad] * (wanted - len(rows))
    rows = rows[:wanted]
    return [len(rows)] + [len(r) for r in rows], np.concatenate(rows) if rows else np.zeros(0, field.dtype)
