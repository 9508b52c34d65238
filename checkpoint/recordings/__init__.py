"""Recordings that survive restarts: segments beside a Checkpointer's checkpoints.

A long run's recordings only grow; a checkpoint is replaced.  So each
checkpoint interval's recordings are one immutable segment file
(:mod:`.segments`), written before the checkpoint that commits it by
listing it (:mod:`.log`); reading concatenates the committed segments
(:mod:`.reader`); :mod:`.export` writes the whole run as one file.
The Checkpointer only orchestrates; the adapters know the simulators'
monitors (:class:`checkpoint.adapters.base.Recorder`).
"""

from .log import RecordingLog, listing_of
from .reader import ConcatenatedArray, Recording, Recordings, recordings

__all__ = ["RecordingLog", "Recordings", "Recording", "ConcatenatedArray", "recordings", "listing_of"]
