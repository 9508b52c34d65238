"""The ANNarchy 5 adapter (CPU, one thread or OpenMP, LIL projections).

Every data member of the C++ structures ANNarchy generates for a compiled
network is read and written in bulk through a small accessor that
checkpoint compiles beside the network (see :mod:`.native`).  So besides
every parameter and variable of every population and projection, a
checkpoint holds what ANNarchy's own ``save`` loses and its Python
bindings do not expose:

* last spike times, refractory counters, the spikes of the last step;
* event-driven trace timestamps (``_last_event``) of every synapse;
* spikes in flight: the pre-synaptic populations' delay queues and, for
  non-uniform delays, each projection's ring buffer;
* the C++ random engines (``std::mt19937``) and the network's numpy
  ``default_rng``; simulated time and step.

Connectivity is stored as the canonical CSR by post neuron; synapses of
one post neuron keep ANNarchy's order, so a restore rebuilds ANNarchy's
exact structure and sums in the same order.  Delays are stored in ms.
"""

from .adapter import ANNarchyAdapter

__all__ = ["ANNarchyAdapter"]
