"""The Brian2 adapter (runtime device: the numpy and Cython targets).

What is captured, per object, is what Brian2's own ``Network.store`` keeps,
plus what it misses:

* every array variable a group owns, in SI values with the unit recorded;
* a ``Synapses``' connectivity (``i``, ``j``), turned into the canonical CSR
  by post neuron, with the synapses' order in Brian2 as the projection's
  ``simulator_order`` (format version 3); the per-synapse arrays stay in
  Brian2's order, so that neither a save nor a load gathers or scatters
  them, and a restore rebuilds the synapses in the same order: the spike
  queues refer to synapses by their position, and summing in the same
  order gives the same bits.  (Files of versions 1 and 2 hold the arrays
  in CSR order and Brian2's order as an array ``_brian2_index``; they
  still load.);
* every pathway's delays (heterogeneous ones are not in ``store``'s state)
  and its spike queue (spikes in flight);
* the clocks, the network's ``t``, numpy's global random state and the
  contents (not the addresses) of the buffers behind ``rand()``/``randn()``
  in Cython code.

Monitors are left out unless ``monitors=True``.
"""

from .adapter import Brian2Adapter

__all__ = ["Brian2Adapter"]
