"""File formats, found by suffix or by name in one registry (``FORMATS``).

Each format module defines one :class:`~.base.Format` (the contract and its
call order are in :mod:`checkpoint.formats.base`).  This module adds what
all formats share: choosing a format, parsing ``compression=`` once,
atomic writes, and turning a library's exceptions from a bad file into
:class:`CorruptCheckpointError`.
"""

import os

from .._atomic import atomic_write
from .._progress import progress_bar, with_progress
from ..errors import CheckpointError, CheckpointNotFoundError, CorruptCheckpointError, UnsupportedFormatError
from . import hdf5, matlab, npz, text
from .compression import for_format
from .manifest import encode_manifest, flatten

FORMATS = {
    f.name: f
    for f in (hdf5.HDF5Format(), npz.NpzFormat(), matlab.MatFormat(), text.TextFormat(), text.GzipTextFormat())
}
ALIASES = {"hdf5": "h5", "txt": "text", "gz": "text.gz", "gzip": "text.gz", "txt.gz": "text.gz", "matlab": "mat"}


def choices():
    return ", ".join(sorted(set(s for f in FORMATS.values() for s in f.suffixes)))


def format_for(path, format=None):
    """The format named by ``format=``, else by the file's suffix."""
    if format is not None:
        key = str(format).lower().lstrip(".")
        key = ALIASES.get(key, key)
        if key not in FORMATS:
            raise UnsupportedFormatError(
                f"unknown format {format!r}; choose one of: {', '.join(sorted(FORMATS))}", path=path
            )
        return FORMATS[key]
    name = os.fspath(path).lower()
    for fmt in sorted(FORMATS.values(), key=lambda f: -max(len(s) for s in f.suffixes)):
        if any(name.endswith(s) for s in fmt.suffixes):
            return fmt
    raise UnsupportedFormatError(f"unknown file suffix; use one of: {choices()}", path=path)


def write_state(path, state, format=None, compression=None, progress=False, sync_folder=True):
    """Write ``state`` to ``path`` atomically in the chosen format; return
    the digest of its manifest (which covers every array's checksum).
    ``sync_folder``: see :func:`checkpoint._atomic.atomic_write`."""
    fmt = format_for(path, format)
    compression = for_format(compression, fmt, path)  # refused here, before any file exists
    manifest, items = flatten(state, fmt.keys(), path)
    manifest_text, digest = encode_manifest(manifest, path)
    total = sum(array.nbytes for _, array in items)
    label = f"saving {os.path.basename(os.fspath(path))}"
    with progress_bar(progress, total, label), atomic_write(path, sync_folder) as tmp:
        fmt.write(tmp, manifest_text, digest, manifest, with_progress(items), compression)
    return digest


def read_state(path, format=None, lazy=False, progress=False, keep_simulator_order=False):
    """Read and verify a checkpoint file into a :class:`NetworkState`.

    Per-synapse arrays are returned in CSR order, unless
    ``keep_simulator_order``: then a projection written in its simulator's
    order (format version 3) keeps it, for the adapter of that simulator
    (:attr:`~checkpoint.adapters.base.Adapter.takes_simulator_order`).
    """
    fmt = format_for(path, format)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointNotFoundError("no such checkpoint file", path=path)
    try:
        with progress_bar(False if lazy else progress, os.path.getsize(path), f"loading {os.path.basename(path)}"):
            state = fmt.read(path, lazy=lazy)
        return state if keep_simulator_order else state.in_csr_order(path)
    except CheckpointError:
        raise
    except MemoryError:
        # every declared size is bounded by the file's bytes first, so this is
        # a file too large for this machine's free memory (or a size check missed)
        raise CorruptCheckpointError("not enough memory for the data the file declares", path=path) from None
    except fmt.damage as exc:
        raise CorruptCheckpointError(f"unreadable ({type(exc).__name__}: {exc})", path=path) from exc
