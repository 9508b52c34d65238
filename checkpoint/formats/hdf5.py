"""HDF5 (``.h5``, ``.hdf5``) through h5py.

Layout: the manifest is the string dataset ``/manifest`` with its digest in
the root attribute ``manifest_xxh3``; each array is a dataset at its key
(``/populations/<name>/<var>`` ...), with ``kind``, ``scope`` and ``unit``
attributes for people browsing the file in HDFView.  Only hard links inside
the file are followed; virtual datasets and external storage are refused.
"""

import math
import os

import h5py
import numpy as np

from ..errors import CheckpointError, CorruptCheckpointError, UnsafeContentError
from . import _h5guard, _h5sandbox
from .base import Format
from .compression import MAX_RATIO, PLUGIN_MAX_RATIO
from ._writer import WritebackFile, write_array_data
from .checksums import verify_array
from .manifest import ALLOWED_DTYPES, PathKeys, all_entries, decode_manifest, entry_nbytes, unflatten


def dataset_options(compression, array):
    """h5py ``create_dataset`` keywords for a ``compression=`` setting."""
    if not compression or array.size == 0 or array.ndim == 0:
        return {}
    from .compression import hdf5_options

    return hdf5_options(compression, array)


def _create_dataset(f, key, array, compression, raw):
    """Create the dataset at ``key`` holding ``array``.

    Uncompressed data gets its contiguous space allocated at once (and not
    filled), and we write its bytes ourselves through ``raw``, the same file
    opened a second time, which sends them to the disk as they are written
    (:class:`WritebackFile`).  HDF5 never touches raw data it did not write,
    so the two do not meet; compressed data goes through HDF5's filters.
    """
    options = dataset_options(compression, array)
    if options or not array.size:
        return f.create_dataset(key, data=array, **options)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    dset = f.create_dataset(key, shape=array.shape, dtype=array.dtype, dcpl=dcpl)
    if dset.id.get_offset() is None or dset.id.get_storage_size() != array.nbytes:
        dset.write_direct(array)  # not allocated as asked (HDF5 does so for scalars): let it write
    else:
        raw.seek(dset.id.get_offset())
        write_array_data(raw, array)
    return dset


def _load_filter_plugins():
    """Register zstd/lz4/blosc filters when the optional hdf5plugin is there.
    Called for chunked datasets only, the only ones with filters: importing
    hdf5plugin loads a dozen shared libraries (about 0.05 s, several times
    that on a busy machine), which a file of contiguous datasets (the
    default) should not pay, in this process or in the helper."""
    try:
        import hdf5plugin  # noqa: F401
    except ImportError:
        pass


class LazyArray:
    """An HDF5 dataset read on demand with numpy slicing.

    ``lazy[a:b]`` reads only those elements; ``np.asarray(lazy)`` or
    ``lazy.read()`` reads the whole array and verifies its checksum.
    """

    def __init__(self, dataset, entry, path, label):
        self._dataset, self._entry, self._path, self._label = dataset, entry, path, label
        self.shape = tuple(entry["shape"])
        self.dtype = ALLOWED_DTYPES[entry["dtype"]]
        self.ndim = len(self.shape)
        self.size = int(np.prod(self.shape, dtype=np.int64))
        self.nbytes = self.size * self.dtype.itemsize

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        return self._dataset[index]

    def read(self):
        """The whole array, checksum verified."""
        return verify_array(_read_dataset(self._dataset, self._entry), self._entry, self._path, self._label)

    def __array__(self, dtype=None, copy=None):
        array = self.read()
        return array if dtype is None else array.astype(dtype)

    def __repr__(self):
        return f"LazyArray({self._label!r}, shape={self.shape}, dtype={self.dtype})"


def _read_dataset(dataset, entry, raw=None, read=None):
    """The dataset's data as stored (the caller verifies its checksum).

    A contiguous, unfiltered dataset (the default layout, whose byte range
    the userblock has already confirmed) is read straight from ``raw``, the
    file opened for reading, through ``read`` (an :class:`ArrayRead`, which
    hashes it as it arrives); anything else through HDF5.
    """
    out = np.empty(entry["shape"], ALLOWED_DTYPES[entry["dtype"]])
    if not out.size:
        return out
    if raw is None or dataset.chunks is not None or dataset.compression is not None:
        dataset.read_direct(out)
        return out
    read.at(raw, dataset.id.get_offset(), out)
    return out


def _hard_dataset(f, key, path, label, hard=None):
    """The dataset at ``key``, refusing links that lead outside the file.

    ``hard`` (a set, one per open file) remembers the paths already found
    to be hard links, so that the groups above many datasets are checked
    once; the check uses HDF5's link table directly (h5py's ``get`` builds
    an object per call, several times slower)."""
    hard = set() if hard is None else hard
    parts = key.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        if prefix in hard:
            continue
        name = prefix.encode()
        if not f.id.links.exists(name):
            raise CorruptCheckpointError(f"dataset {key!r} is missing", path=path, obj=label)
        kind = f.id.links.get_info(name).type
        if kind != h5py.h5l.TYPE_HARD:
            what = {h5py.h5l.TYPE_SOFT: "SoftLink", h5py.h5l.TYPE_EXTERNAL: "ExternalLink"}.get(kind, "a link")
            raise UnsafeContentError(f"{what} at {key!r} refused", path=path, obj=label)
        hard.add(prefix)
    dataset = f[key]
    if not isinstance(dataset, h5py.Dataset):
        raise CorruptCheckpointError(f"{key!r} is not a dataset", path=path, obj=label)
    if dataset.is_virtual or dataset.external:
        raise UnsafeContentError("virtual or external dataset refused", path=path, obj=label)
    return dataset


class _StorageBudget:
    """What the datasets of one file may declare, from what the file holds.

    A dataset's stored bytes (its contiguous range, or the sum of its
    chunks) bound its size: equal for raw data, times the codec's largest
    ratio for filtered chunks.  All datasets together cannot store more
    than the file's size, so chunk indexes that alias one chunk, or
    datasets whose chunks were never written (HDF5 would hand out their
    fill value), are refused before anything is allocated.
    """

    def __init__(self, file_size, raw_ranges, path):
        self.left, self.raw_ranges, self.path = file_size, raw_ranges, path

    def check(self, dataset, entry, label):
        if dataset.dtype.kind == "O" or dataset.dtype.hasobject:
            raise UnsafeContentError("object or reference dtype refused", path=self.path, obj=label)
        if dataset.dtype != ALLOWED_DTYPES[entry["dtype"]] or list(dataset.shape) != entry["shape"]:
            raise CorruptCheckpointError(
                f"dataset is {dataset.dtype} {list(dataset.shape)}, manifest says {entry['dtype']} {entry['shape']}",
                path=self.path,
                obj=label,
            )
        if not dataset.size:
            return
        stored = dataset.id.get_storage_size()
        filters = dataset.compression
        if dataset.chunks is None and filters is None:
            # its raw data must be one of the ranges the userblock digest left
            # to the per-array checksum, and exactly its size
            if (dataset.id.get_offset(), stored) not in self.raw_ranges or stored != dataset.nbytes:
                raise CorruptCheckpointError(
                    "dataset storage does not match the file's index", path=self.path, obj=label
                )
        if dataset.chunks is not None:
            # our writer writes every chunk; a missing one would read as fill values
            expected = math.prod(-(-n // c) for n, c in zip(dataset.shape, dataset.chunks))
            if dataset.id.get_num_chunks() != expected:
                raise CorruptCheckpointError(
                    f"{dataset.id.get_num_chunks()} of {expected} chunks stored", path=self.path, obj=label
                )
        ratio = MAX_RATIO.get(filters, PLUGIN_MAX_RATIO)
        if stored > self.left or stored * ratio < entry_nbytes(entry):
            raise CorruptCheckpointError(
                f"dataset declares {entry_nbytes(entry)} bytes but stores {stored} "
                f"({'more than the file has left' if stored > self.left else 'too few for its codec'})",
                path=self.path,
                obj=label,
            )
        self.left -= stored


def _open_same_file(raw):
    """h5py's File on the inode ``raw`` has open, not on a path that may have
    been replaced since.  HDF5 resolves the real path of a name it opens, so
    it gets a file object: on Linux a new open file description of the same
    inode (through /proc/self/fd, which works even once the path is gone),
    elsewhere a duplicate descriptor."""
    same = f"/proc/self/fd/{raw.fileno()}"
    handle = open(same, "rb") if os.path.exists(same) else os.fdopen(os.dup(raw.fileno()), "rb")
    try:
        f = h5py.File(handle, "r")
    except BaseException:
        handle.close()
        raise
    return f, handle


class HDF5Format(Format):
    name = "h5"
    suffixes = (".h5", ".hdf5")
    codecs = ("gzip", "lzf", "zstd", "lz4", "blosc")
    lazy = True

    def keys(self):
        return PathKeys()

    def write(self, tmp, manifest_text, digest, manifest, items, compression):
        entries = {e["key"]: e for _, e in all_entries(manifest)}
        userblock = _h5guard.userblock_size(len(entries))
        raw_ranges = []
        with h5py.File(tmp, "w", userblock_size=userblock) as f, WritebackFile(tmp, "r+b") as raw:
            f.attrs["format"] = manifest["format"]
            f.attrs["format_version"] = manifest["format_version"]
            f.attrs["manifest_xxh3"] = digest
            for attr in ("time", "step", "dt"):
                if manifest["meta"].get(attr) is not None:
                    f.attrs[attr] = manifest["meta"][attr]
            f.create_dataset("manifest", data=manifest_text, dtype=h5py.string_dtype("utf-8"))
            for key, array in items:
                dset = _create_dataset(f, key, array, compression, raw)
                if dset.chunks is None and array.size:
                    raw_ranges.append((dset.id.get_offset(), dset.id.get_storage_size()))
                for attr in ("kind", "scope", "unit"):
                    if entries[key].get(attr):
                        dset.attrs[attr] = entries[key][attr]
            for section in ("populations", "projections"):
                for name in manifest[section]:
                    group = f.get(PathKeys().object(section, name))
                    # an object without arrays has no group; HDF5 strings hold no NUL
                    if group is not None and "\x00" not in name:
                        group.attrs["name"] = name
            f.flush()
        _h5guard.stamp(tmp, userblock, raw_ranges)

    def read(self, path, lazy=False):
        # Every byte of one read comes from the inode opened here, so a file
        # atomically replaced meanwhile cannot mix into what was verified.
        with open(path, "rb", buffering=0) as raw:
            raw_ranges = _h5guard.verify(raw, path)
            # a digest proves the metadata undamaged, not harmless: the HDF5
            # library first walks it in a helper process, where a hang or a
            # crash costs nothing
            _h5sandbox.probe(raw, path)
            return self.read_open(raw, path, lazy, raw_ranges)

    def read_open(self, raw, path, lazy=False, raw_ranges=None):
        """Read from ``raw``, the checkpoint opened for reading; its userblock
        is verified here unless ``raw_ranges`` (what a verification returned)
        says it was (the helper process calls this directly)."""
        file_size = os.fstat(raw.fileno()).st_size
        if raw_ranges is None:
            raw_ranges = _h5guard.verify(raw, path)
        f, handle = _open_same_file(raw)

        def close():
            f.close()
            handle.close()

        try:
            manifest = self._manifest(f, path)
            fetch = self._fetcher(f, raw, path, file_size, raw_ranges, lazy)
            state = unflatten(manifest, fetch, path, lazy=lazy)
        except BaseException:
            close()
            raise
        if lazy:
            state._closer = close
        else:
            close()
        return state

    def _manifest(self, f, path):
        dataset = _hard_dataset(f, "manifest", path, "manifest")
        if dataset.dtype.kind != "O" or h5py.check_string_dtype(dataset.dtype) is None or dataset.shape != ():
            raise CorruptCheckpointError("manifest is not a string", path=path)
        digest = f.attrs.get("manifest_xxh3")
        digest = digest.decode() if isinstance(digest, bytes) else digest
        return decode_manifest(dataset.asstr()[()], digest, path)

    def _fetcher(self, f, raw, path, file_size, raw_ranges, lazy):
        budget = _StorageBudget(file_size, raw_ranges, path)
        hard = set()

        def fetch(entry, label, read):
            try:
                dataset = _hard_dataset(f, entry["key"], path, label, hard)
                if dataset.chunks is not None:
                    _load_filter_plugins()
                budget.check(dataset, entry, label)
                if lazy:
                    return LazyArray(dataset, entry, path, label)
                return _read_dataset(dataset, entry, raw, read)
            except CheckpointError:
                raise
            except EOFError:
                raise CorruptCheckpointError("dataset ends beyond the file", path=path, obj=label) from None
            # what HDF5 raises on this dataset's header or bytes (a file
            # shortened since its walk, a disk error): named by the array
            except HDF5Format.damage as exc:
                raise CorruptCheckpointError(f"unreadable ({type(exc).__name__}: {exc})", path=path, obj=label) from exc

        return fetch


# the helper that walks each file's metadata first starts now, in the
# background (forked, where that is safe: it then has h5py already)
def serve_helper():
    """The HDF5 helper's loop in a new interpreter (see :mod:`._h5sandbox`)."""
    _h5sandbox.serve(HDF5Format)


_h5sandbox.prestart(HDF5Format)
