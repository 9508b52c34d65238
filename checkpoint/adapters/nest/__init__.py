"""The NEST 3 adapter (the ``nest`` module: the running kernel).

NEST exposes its state through ``GetStatus``/``SetStatus`` dictionaries, so
that is what is captured:

* **populations**: the kernel's neurons and stimulation devices, in runs of
  consecutive node IDs of one model, named ``"<model>@<first node ID>"``
  (``"iaf_psc_alpha@1"``), which the same script recreates identically.
  Every numeric status entry the model lets a script set (found once per
  model by setting a default to its own value), per node; ``recordables``
  are variables, the rest parameters.
* **projections**: the connections of one synapse model from one population
  to another, named ``"<synapse model> <pre>-><post>"``: the connectivity
  as CSR by post neuron (NEST's order kept within a pair) and every numeric,
  settable per-connection entry (weight, delay in ms, plasticity state such
  as ``Kplus``).
* the time, the resolution, and the kernel's ``rng_seed``/``rng_type``.

Reading connections costs NEST about 10 µs each (a Python dictionary per
connection), so each synapse model's connections are read once per capture.

NEST does not expose, and so a restart loses: the random generators' state
(a restored kernel is reseeded from the file's seed and step, so that it
does not replay the first run's numbers), spikes in flight in the delay
ring buffers, neurons' refractory counters and spike history (``t_spike``,
the STDP archive) and synapses' last presynaptic spike time.  NEST's clock
cannot be set after it has run: a restored kernel keeps its own clock and
the adapter adds the file's time to it in what ``checkpoint`` reports (the
report, saved times, the Checkpointer's schedule); devices' ``start``,
``stop``, ``origin`` and spike times stay in NEST's own clock.  Recorders
(spike_recorder, multimeter) are not captured.

Under MPI (NEST built with MPI, run by ``mpiexec``) each rank holds the
neurons ``node_id % ranks`` gives it and the connections onto them, and
saves them as its shard (``checkpoint.save(path, nest, comm=comm)``): a
population's ``ids`` are its local neurons' positions in the group, a
projection's rows its local post neurons.  Devices are replicated on every
rank; each shard holds them whole (the same values).  The checkpoint then
loads on any number of ranks (:mod:`checkpoint.distributed`), each rank
setting its own neurons and connecting its own targets.
"""

from .adapter import NESTAdapter
from .clock import continuation_seed, time_offset

__all__ = ["NESTAdapter", "time_offset", "continuation_seed"]
