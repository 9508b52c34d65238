"""checkpoint: save and restore the state of neural network simulations.

See README.rst for a tour and docs/format.rst for the file format.
"""

from ._version import __version__
from . import noise
from .api import load, read, save
from .errors import (
    CheckpointError,
    CheckpointNotFoundError,
    CheckpointWarning,
    CorruptCheckpointError,
    FormatLimitError,
    Interrupted,
    StructureMismatchError,
    UnsafeContentError,
    UnsupportedFormatError,
    UnsupportedObjectError,
)
from .interchange import export
from .manager import Checkpointer
from .network import Network, Population, Projection
from .parameters import load_parameters, save_parameters
from .recordings import Recordings, recordings
from .restore import RestoreReport
from .state import NetworkState, PopulationState, ProjectionState

__all__ = [
    "__version__",
    "save",
    "load",
    "read",
    "export",
    "noise",
    "save_parameters",
    "load_parameters",
    "Checkpointer",
    "recordings",
    "Recordings",
    "Network",
    "Population",
    "Projection",
    "NetworkState",
    "PopulationState",
    "ProjectionState",
    "RestoreReport",
    "CheckpointError",
    "UnsupportedFormatError",
    "UnsupportedObjectError",
    "CorruptCheckpointError",
    "CheckpointNotFoundError",
    "StructureMismatchError",
    "UnsafeContentError",
    "FormatLimitError",
    "CheckpointWarning",
    "Interrupted",
]
