"""Network interchange: a network's structure and values in the files other
tools define, SONATA (nodes/edges HDF5 and a circuit config) and NeuroML 2
HDF5.

An export is not a checkpoint: it reads a :class:`~checkpoint.NetworkState`
(from a checkpoint file, a state, or a network captured on the spot) and
writes what the other format can hold, saying in a
:class:`~checkpoint.CheckpointWarning` what it leaves out or what the
format's reader will ignore.  Nothing here restores a network exactly
(docs/interchange.rst).
"""

from .export import FORMATS, export

__all__ = ["export", "FORMATS"]
