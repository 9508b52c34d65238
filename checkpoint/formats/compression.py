"""The ``compression=`` argument: parsing and per-format options.

Accepted values: ``None`` (the default, uncompressed), a codec name
(``"gzip"``, ``"lzf"``, and with the ``hdf5plugin`` extra ``"zstd"``,
``"lz4"``, ``"blosc"``), ``"gzip:9"`` for a level, or a dict
``{"codec": "gzip", "level": 9, "shuffle": True, "fletcher32": False}``.
"""

from dataclasses import dataclass
from typing import Optional

from ..errors import UnsupportedFormatError

CODECS = ("gzip", "lzf", "zstd", "lz4", "blosc")
#: The most bytes one stored byte may expand to, per codec: what a reader
#: allows before it allocates (deflate cannot exceed about 1032:1; the
#: plugin codecs can go far beyond on zeros).  docs/format.rst, "Limits".
MAX_RATIO = {None: 1, "gzip": 1100, "lzf": 1100, "zstd": 100_000, "lz4": 100_000, "blosc": 100_000}
PLUGIN_MAX_RATIO = 100_000  # any other HDF5 filter
_DEFAULT_LEVEL = {"gzip": 4, "zstd": 3, "blosc": 5}
_CHUNK_BYTES = 1 << 20  # 1 MiB chunks: large enough to stream, small enough to slice


@dataclass(frozen=True)
class Compression:
    codec: str
    level: Optional[int] = None
    shuffle: bool = True
    fletcher32: bool = False


_LEVELS = {"gzip": range(0, 10), "zstd": range(1, 23), "blosc": range(0, 10)}


def parse(value, path=None):
    """Turn a ``compression=`` argument into a :class:`Compression` or None.

    Raises :class:`UnsupportedFormatError` (naming ``path``) for an unknown
    codec, a level the codec does not have, or a value of another type.
    """
    if value is None or value is False:
        return None
    if isinstance(value, Compression):
        return value
    original = value
    if value is True:
        value = "gzip"
    if isinstance(value, str):
        codec, _, level = value.lower().partition(":")
        try:
            value = {"codec": codec, "level": int(level) if level else None}
        except ValueError:
            value = {"codec": None}
    if not isinstance(value, dict) or value.get("codec") not in CODECS:
        raise UnsupportedFormatError(
            f'unknown compression {original!r}; choose one of: {", ".join(CODECS)} (a level as "gzip:9")', path=path
        )
    level = value.get("level")
    if level is None:
        level = _DEFAULT_LEVEL.get(value["codec"])
    if level is not None and (not isinstance(level, int) or level not in _LEVELS.get(value["codec"], ())):
        raise UnsupportedFormatError(f"compression {original!r}: {value['codec']} has no level {level!r}", path=path)
    return Compression(value["codec"], level, bool(value.get("shuffle", True)), bool(value.get("fletcher32", False)))


def for_format(value, fmt, path):
    """Parse ``compression=`` for ``fmt`` once, before any file is made:
    a codec the format cannot write is refused, naming the user's path."""
    codec = parse(value, path)
    if codec is not None and codec.codec not in fmt.codecs:
        can = ", ".join(fmt.codecs) if fmt.codecs else "no compression"
        raise UnsupportedFormatError(
            f"the {fmt.name} format cannot compress with {codec.codec!r}; it supports {can}", path=path
        )
    if codec is not None and codec.codec in ("zstd", "lz4", "blosc"):
        try:
            import hdf5plugin  # noqa: F401
        except ImportError:
            raise UnsupportedFormatError(
                f"compression {codec.codec!r} needs the hdf5plugin package: "
                "pip install 'neuro-checkpoint[compression]'",
                path=path,
            ) from None
    return codec


def chunk_shape(array):
    """About 1 MiB per chunk along the first axis."""
    rows = max(1, _CHUNK_BYTES // max(1, array.nbytes // max(1, array.shape[0])))
    return (min(array.shape[0], rows),) + tuple(array.shape[1:])


def hdf5_options(value, array):
    """Keywords for h5py's ``create_dataset``."""
    c = parse(value)
    if c is None:
        return {}
    options = {
        "chunks": chunk_shape(array),
        "shuffle": c.shuffle and array.dtype.itemsize > 1,
        "fletcher32": c.fletcher32,
    }
    if c.codec in ("gzip", "lzf"):
        options["compression"] = c.codec
        if c.codec == "gzip":
            options["compression_opts"] = c.level
        return options
    try:
        import hdf5plugin
    except ImportError:
        raise UnsupportedFormatError(
            f"compression {c.codec!r} needs the hdf5plugin package: pip install 'neuro-checkpoint[compression]'"
        ) from None
    if c.codec == "zstd":
        options.update(hdf5plugin.Zstd(clevel=c.level))
    elif c.codec == "lz4":
        options.update(hdf5plugin.LZ4())
    else:
        options.update(
            hdf5plugin.Blosc(
                cname="zstd",
                clevel=c.level,
                shuffle=hdf5plugin.Blosc.SHUFFLE if c.shuffle else hdf5plugin.Blosc.NOSHUFFLE,
            )
        )
        options["shuffle"] = False
    return options


def zip_level(value):
    """``(zip method, level)`` for npz: stored, or deflated at a level."""
    import zipfile

    c = parse(value)
    if c is None:
        return zipfile.ZIP_STORED, None
    if c.codec != "gzip":
        raise UnsupportedFormatError(f"npz supports only gzip (deflate) compression, not {c.codec!r}")
    return zipfile.ZIP_DEFLATED, c.level
