"""The NEURON adapter: ``checkpoint.save(path, h)`` with ``from neuron import h``.

Modules, one per concept: :mod:`.inventory` (what the model is made of,
identities, fingerprint), :mod:`.ranges` (segments' and point processes'
RANGE variables, RANDOM streams), :mod:`.netcons` (NetCons, events in
flight), :mod:`.randoms` (hoc Random), :mod:`.savestate` (NEURON's own
state as opaque bytes), :mod:`.clock`, :mod:`.identity` (checks before a
load), :mod:`.model` (all of it as a NetworkState).  See docs/neuron.rst.
"""

from .adapter import NEURONAdapter

__all__ = ["NEURONAdapter"]
