"""Exceptions and warnings raised by checkpoint.

Every error a user can trigger with a bad file, a bad argument or a network
that does not fit derives from :class:`CheckpointError`.  Messages name the
file and the object concerned, so that a log line alone says what went wrong.
"""

__all__ = [
    "CheckpointError",
    "UnsupportedFormatError",
    "UnsupportedObjectError",
    "CorruptCheckpointError",
    "StructureMismatchError",
    "UnsafeContentError",
    "FormatLimitError",
    "CheckpointNotFoundError",
    "CheckpointWarning",
    "Interrupted",
]


def _where(path=None, obj=None):
    parts = [str(p) for p in (path, obj) if p not in (None, "")]
    return ": ".join(parts)


class CheckpointError(Exception):
    """Base class of every error raised by checkpoint.

    Parameters
    ----------
    message : str
        What went wrong.
    path : str or os.PathLike, optional
        The file concerned.
    obj : str, optional
        The population, projection or variable concerned.
    """

    def __init__(self, message, *, path=None, obj=None):
        self.path = None if path is None else str(path)
        self.obj = obj
        self.problem = message
        where = _where(self.path, obj)
        super().__init__(f"{where}: {message}" if where else message)


class UnsupportedFormatError(CheckpointError, ValueError):
    """The file suffix or ``format=`` names no known format."""


class UnsupportedObjectError(CheckpointError, TypeError):
    """The object to save or load is of no simulator checkpoint knows."""


class CorruptCheckpointError(CheckpointError):
    """The file is unreadable, truncated, foreign, or fails its checksums."""


class StructureMismatchError(CheckpointError):
    """The file's content does not fit the network (sizes, shapes, names)."""


class UnsafeContentError(CheckpointError):
    """The file holds content that could run code or reach outside it:
    pickles, object arrays, HDF5 external links or virtual datasets."""


class FormatLimitError(CheckpointError):
    """The state cannot be written in this format (e.g. MATLAB's 2 GiB limit
    per variable, or a dtype the format cannot hold)."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint (or parameter) file does not exist."""


class CheckpointWarning(UserWarning):
    """Something was skipped or kept on restore, or a fallback was taken."""


class Interrupted(Exception):
    """Raised by :meth:`Checkpointer.maybe_save` after a signal asked the run
    to stop and the final checkpoint has been committed.

    Attributes
    ----------
    signum : int
        The signal that was received.
    path : str or None
        The checkpoint written before stopping.
    """

    def __init__(self, signum, path):
        self.signum = signum
        self.path = None if path is None else str(path)
        super().__init__(f"stopped by signal {signum}; checkpoint saved to {self.path}")
