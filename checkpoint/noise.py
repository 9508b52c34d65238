"""Noise that restarts exactly on any number of MPI ranks.

A generator per rank (``net.rng``) draws a stream that belongs to the rank,
not to the neurons: once the neurons are split another way (a restart on
more or fewer ranks) no generator state can continue every neuron's
sequence.  Drawing each neuron's noise from a counter-based generator keyed
by ``(seed, step, global id)`` needs no state at all: any rank computes the
same value for the same neuron at the same step, so a run resumed on three
ranks continues bit for bit a run started on two, or on one.

numpy's Philox is counter-based: its counter is set, not advanced, so the
draws of block ``b`` of neurons at step ``s`` come from counter ``(0, b, s, 0)``
under the key ``seed``.  A rank draws only the blocks its neurons fall in.
"""

import numpy as np

__all__ = ["standard_normal", "uniform"]

BLOCK = 4096  # neurons per Philox stream: a rank draws whole blocks


def _per_neuron(draw, seed, step, ids, block):
    ids = np.asarray(ids, np.int64)
    out = np.empty(len(ids), np.float64)
    if not len(ids):
        return out
    blocks = ids // block
    for b in np.unique(blocks):
        generator = np.random.Generator(np.random.Philox(key=int(seed), counter=[0, int(b), int(step), 0]))
        values = draw(generator, block)
        mine = blocks == b
        out[mine] = values[ids[mine] - b * block]
    return out


def standard_normal(seed, step, ids, block=BLOCK):
    """One standard normal value per neuron in ``ids`` (global indices) for
    time step ``step``: the same on every rank and every partition.

    Parameters
    ----------
    seed : int
        The run's seed (up to 128 bits).
    step : int
        The time step (``net.step``): each step gets new values.
    ids : array of int
        Global neuron indices (``population.ids``).
    block : int
        Neurons per Philox stream; must be the same in every run that is to
        be continued.
    """
    return _per_neuron(lambda g, n: g.standard_normal(n), seed, step, ids, block)


def uniform(seed, step, ids, block=BLOCK):
    """One value in [0, 1) per neuron, as :func:`standard_normal`."""
    return _per_neuron(lambda g, n: g.random(n), seed, step, ids, block)
