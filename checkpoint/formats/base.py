"""The contract of a file format.

A format knows one kind of file and nothing about simulators.  The calls
come in this order, from :mod:`checkpoint.formats`:

Writing
    ``format_for(path)`` picks the format; ``compression.for_format``
    parses ``compression=`` once and refuses a codec the format does not
    list in :attr:`Format.codecs` (before any file exists);
    ``manifest.flatten(state, fmt.keys())`` turns the state into a manifest
    and ``(key, array)`` items; then, inside ``atomic_write``,
    :meth:`Format.write` writes them to a temporary path that becomes the
    checkpoint only if it returns.

Reading
    :meth:`Format.read` opens the file once, checks its structure and sizes
    before any parser or allocation sees them (see docs/format.rst,
    "Safety rules for readers"), decodes the manifest with
    ``manifest.decode_manifest`` and hands ``manifest.unflatten`` a fetch
    function; ``unflatten`` verifies every checksum.  An exception of the
    types in :attr:`Format.damage` means a bad file and becomes a
    :class:`~checkpoint.CorruptCheckpointError`.

A new format subclasses :class:`Format`, is added to ``FORMATS`` in
``checkpoint/formats/__init__.py``, and is covered by the round-trip,
spec, hostile-file and fuzz tests, which run over every format.
"""

import abc
import struct
import tokenize
import zipfile
import zlib
from typing import Iterable, Optional, Tuple

import numpy as np

from ..state import NetworkState
from .compression import Compression


class Format(abc.ABC):
    """One file format (see the module docstring for the call order)."""

    #: ``format=`` name, and the file suffixes that select it
    name: str
    suffixes: tuple
    #: compression codecs :meth:`write` can apply (empty: none)
    codecs: tuple = ()
    #: whether :meth:`read` supports ``lazy=True`` (arrays read on demand)
    lazy: bool = False
    #: library exceptions that, raised while reading, mean a damaged file
    damage = (
        OSError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        EOFError,
        zlib.error,
        zipfile.BadZipFile,
        struct.error,
        UnicodeDecodeError,
        RuntimeError,
        NotImplementedError,
        tokenize.TokenError,
        SyntaxError,
    )

    @abc.abstractmethod
    def keys(self):
        """A key maker (``manifest.PathKeys`` or ``manifest.IdentifierKeys``)."""

    @abc.abstractmethod
    def write(
        self,
        tmp: str,
        manifest_text: str,
        digest: str,
        manifest: dict,
        items: Iterable[Tuple[str, np.ndarray]],
        compression: Optional[Compression],
    ) -> None:
        """Write the manifest (its text and digest) and the ``(key, array)``
        items to the new file ``tmp``; ``compression`` is a parsed
        :class:`~.compression.Compression` in :attr:`codecs`, or None."""

    @abc.abstractmethod
    def read(self, path: str, lazy: bool = False) -> NetworkState:
        """The verified state in ``path``; never trusts a byte of it."""
