"""The manifest: its schema, and the one logical tree as a manifest plus keyed arrays.

Every format stores the same two things: the manifest (a JSON document that
describes the whole state and records, for each array, the key it is stored
under, its dtype, shape and checksum) and the arrays themselves.  Formats
differ only in how keys look and how bytes are laid down; docs/format.rst is
the specification.
"""

import datetime
import json
import math
import re

import numpy as np

from .._progress import advance
from .._version import __version__
from ..errors import CheckpointError, CorruptCheckpointError, FormatLimitError, UnsafeContentError
from ..hashing import CHECKSUM_PREFIX, checksum, digest_text
from .checksums import VerifiedReads
from .schema import is_int, is_number, optional, require
from ..state import (
    KINDS,
    POPULATION_SCOPES,
    PROJECTION_SCOPES,
    ArrayInfo,
    NetworkState,
    PopulationState,
    ProjectionState,
    RngState,
    check_connectivity,
    check_ids,
)

FORMAT_NAME = "checkpoint"
FORMAT_VERSION = 3
#: Version 2 added a population's ``ids``/``global_size`` (a shard of a run
#: split over MPI ranks) and per-neuron arrays of rows (shape ``[size, ...]``);
#: version 3 a projection's ``order`` (per-synapse arrays kept in the
#: simulator's order).  A file is written with the lowest version that holds
#: what it uses, so that older readers still open the rest.
FIRST_VERSION_WITH = {"ids": 2, "rows per neuron": 2, "order": 3}
#: dtypes of a projection's ``order``
ORDER_DTYPES = ("<i4", "<i8")

#: Limits every reader enforces before it allocates (docs/format.rst, "Limits").
MAX_MANIFEST_CHARS = 16 << 20  # the manifest's JSON text (about 50,000 arrays)
MAX_ARRAY_BYTES = 1 << 50  # one array (1 PiB: far beyond any machine, far below overflow)
MAX_DIMENSIONS = 32
DIGEST = "digest"  # the key under which a decoded manifest keeps its own digest (never written)

#: Array dtypes every format can hold exactly, as numpy's little-endian codes.
ALLOWED_DTYPES = {
    np.dtype(t).newbyteorder("<").str: np.dtype(t).newbyteorder("<")
    for t in (
        np.bool_,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.float32,
        np.float64,
    )
}

# --------------------------------------------------------------------- arrays


def canonical(array, path=None, obj=None):
    """Return ``array`` as a C-contiguous little-endian ndarray (a view when
    it already is one), or raise :class:`FormatLimitError` for other dtypes."""
    array = np.asarray(array)
    code = array.dtype.newbyteorder("<").str if array.dtype.byteorder != "|" else array.dtype.str
    if code not in ALLOWED_DTYPES:
        raise FormatLimitError(
            f"dtype {array.dtype} cannot be stored; use bool, (u)int8-64, float32 or float64", path=path, obj=obj
        )
    target = ALLOWED_DTYPES[code]
    if array.dtype != target:
        array = array.astype(target)
    # not np.ascontiguousarray: it turns 0-d arrays into 1-d ones
    return array if array.flags.c_contiguous else array.copy(order="C")


def entry_nbytes(entry):
    """Bytes of the array an entry declares (Python integers: never overflows)."""
    return math.prod(entry["shape"]) * ALLOWED_DTYPES[entry["dtype"]].itemsize


def check_size_bound(entry, limit, path, obj):
    """Refuse before allocating when an array could not come from a file this
    small (``limit`` is the most bytes the file could expand to)."""
    if entry_nbytes(entry) > limit:
        raise CorruptCheckpointError(
            f"manifest declares {entry_nbytes(entry)} bytes, more than the file can hold", path=path, obj=obj
        )


# ----------------------------------------------------------------------- keys

_UNSAFE = re.compile(r"[%/\x00]")


def escape(name):
    """Percent-encode what cannot stand in one component of a path key."""
    out = _UNSAFE.sub(lambda m: "%{:02X}".format(ord(m.group())), name)
    if out in ("", ".", ".."):
        out = "".join("%{:02X}".format(ord(c)) for c in out) or "%"
    return out


class PathKeys:
    """Keys like ``populations/<name>/<variable>`` (HDF5, npz, text)."""

    RESERVED = {"indptr", "indices", "order"}
    RESERVED_POPULATION = {"ids"}

    def object(self, section, name):
        return f"{section}/{escape(name)}"

    def array(self, object_key, var, reserved=()):
        part = escape(var)
        if part in reserved:  # a variable called "indptr" must not hide the connectivity
            part = "%{:02X}".format(ord(part[0])) + part[1:]
        return f"{object_key}/{part}"


class IdentifierKeys:
    """Keys that are legal MATLAB identifiers: ``<object>.<field>``.

    Names are reduced to letters, digits and underscores (63 characters at
    most) and made unique by a numeric suffix; the manifest keeps the mapping
    back to the real names.
    """

    PREFIX = {"populations": "pop", "projections": "proj", "rng": "rng"}
    MAX = 63

    def __init__(self):
        self._top = set()
        self._fields = {}

    def _identifier(self, name, taken, prefix):
        base = re.sub(r"\W", "_", name, flags=re.ASCII).strip("_") or "x"
        base = f"{prefix}_{base}" if prefix else (base if base[0].isalpha() else f"v_{base}")
        base = base[: self.MAX]
        candidate, n = base, 1
        while candidate in taken:
            suffix = f"_{n}"
            candidate, n = base[: self.MAX - len(suffix)] + suffix, n + 1
        taken.add(candidate)
        return candidate

    def object(self, section, name):
        key = self._identifier(name, self._top, self.PREFIX[section])
        self._fields[key] = set()
        return key

    def array(self, object_key, var, reserved=()):
        taken = self._fields[object_key]
        taken.update(reserved)
        return f"{object_key}.{self._identifier(var, taken, '')}"


# ------------------------------------------------------------------- flatten


def _array_entry(key, array, info=None):
    entry = {"key": key, "dtype": array.dtype.str, "shape": list(array.shape), "checksum": checksum(array)}
    if info is not None:
        entry.update(kind=info.kind, scope=info.scope, unit=info.unit)
    return entry


def flatten(state, keys, path=None):
    """Split a :class:`NetworkState` into ``(manifest, [(key, array), ...])``.

    Arrays are not copied unless their dtype or layout must change.
    """
    items = []

    def add(key, array, obj, info=None):
        array = canonical(array, path, obj)
        items.append((key, array))
        return _array_entry(key, array, info)

    meta = dict(state.meta)
    meta.setdefault("created", datetime.datetime.now(datetime.timezone.utc).isoformat())
    manifest = {
        "format": FORMAT_NAME,
        "format_version": 1,
        "library_version": __version__,
        "meta": meta,
        "populations": {},
        "projections": {},
        "rng": {},
    }
    for name, pop in state.populations.items():
        okey = keys.object("populations", name)
        entry = manifest["populations"][name] = {"size": pop.size, "geometry": list(pop.geometry)}
        if pop.ids is not None:  # part of a population split over MPI ranks (keyed first: "ids")
            entry["global_size"] = pop.global_size
            entry["ids"] = add(keys.array(okey, "ids"), np.asarray(pop.ids, np.int64), f"{name}.ids")
            manifest["format_version"] = max(manifest["format_version"], FIRST_VERSION_WITH["ids"])
        entry["arrays"] = {
            var: add(
                keys.array(okey, var, PathKeys.RESERVED_POPULATION), pop.arrays[var], f"{name}.{var}", pop.info[var]
            )
            for var in pop.arrays
        }
        if any(pop.info[var].scope == "neuron" and np.ndim(pop.arrays[var]) > 1 for var in pop.arrays):
            manifest["format_version"] = max(manifest["format_version"], FIRST_VERSION_WITH["rows per neuron"])
    for name, proj in state.projections.items():
        okey = keys.object("projections", name)
        entry = manifest["projections"][name] = {
            "pre": proj.pre,
            "post": proj.post,
            "target": proj.target,
            "shape": list(proj.shape),
            "indptr": add(keys.array(okey, "indptr"), np.asarray(proj.indptr, np.int64), f"{name}.indptr"),
            "indices": add(keys.array(okey, "indices"), np.asarray(proj.indices, np.int64), f"{name}.indices"),
        }
        if proj.simulator_order is not None:  # per-synapse arrays as the simulator holds them
            proj = proj.in_simulator_order()
            order = np.asarray(proj.simulator_order)
            order = order if order.dtype.newbyteorder("<").str in ORDER_DTYPES else order.astype(np.int64)
            entry["order"] = add(keys.array(okey, "order"), order, f"{name}.order")
            manifest["format_version"] = max(manifest["format_version"], FIRST_VERSION_WITH["order"])
        entry["arrays"] = {
            var: add(keys.array(okey, var, PathKeys.RESERVED), proj.arrays[var], f"{name}.{var}", proj.info[var])
            for var in proj.arrays
        }
    for name, rng in state.rng.items():
        okey = keys.object("rng", name)
        manifest["rng"][name] = {
            "kind": rng.kind,
            "state": rng.state,
            "arrays": {var: add(keys.array(okey, var), arr, f"rng {name}.{var}") for var, arr in rng.arrays.items()},
        }
    return manifest, items


def encode_manifest(manifest, path=None):
    """The manifest as one line of ASCII JSON, and its XXH3-64 digest."""
    try:
        text = json.dumps(manifest, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"metadata is not JSON-serialisable: {exc}", path=path) from None
    if len(text) > MAX_MANIFEST_CHARS:  # never write what no reader would accept
        raise FormatLimitError(
            f"the manifest would be {len(text)} characters, more than the "
            f"{MAX_MANIFEST_CHARS} readers accept: fewer arrays, or less user metadata",
            path=path,
        )
    return text, digest_text(text)


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def decode_manifest(text, digest, path):
    """Check the manifest's digest, parse it and validate its structure.

    The digest proves the text undamaged, not harmless (anyone can
    recompute it), so the text's length and every value that is used
    later are checked here, once, against one schema.
    """
    if not isinstance(text, str) or not isinstance(digest, str) or digest_text(text) != digest:
        raise CorruptCheckpointError("manifest checksum mismatch or manifest missing", path=path)
    if len(text) > MAX_MANIFEST_CHARS:
        raise CorruptCheckpointError(
            f"manifest of {len(text)} characters, more than the {MAX_MANIFEST_CHARS} a reader accepts", path=path
        )
    try:
        manifest = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise CorruptCheckpointError(f"manifest is not valid JSON: {exc}", path=path) from None
    except RecursionError:
        raise CorruptCheckpointError("manifest nested too deeply", path=path) from None
    _validate_manifest(manifest, path)
    manifest[DIGEST] = digest  # in memory only: the state read from it says which manifest it came from
    return manifest


# ------------------------------------------------------------------ validate


def _validate_entry(entry, path, obj, with_info):
    require(isinstance(entry, dict), "array entry is not an object", path, obj)
    require(isinstance(entry.get("key"), str) and entry["key"], "array entry has no key", path, obj)
    dtype = entry.get("dtype")
    if dtype == "|O" or (isinstance(dtype, str) and dtype.endswith("O")):
        raise UnsafeContentError("object arrays are refused", path=path, obj=obj)
    require(dtype in ALLOWED_DTYPES, f"dtype {dtype!r} is not allowed", path, obj)
    shape = entry.get("shape")
    require(
        isinstance(shape, list) and len(shape) <= MAX_DIMENSIONS and all(is_int(n) and n >= 0 for n in shape),
        f"bad shape {shape!r}",
        path,
        obj,
    )
    require(
        entry_nbytes(entry) <= MAX_ARRAY_BYTES, f"shape {shape!r} declares more than {MAX_ARRAY_BYTES} bytes", path, obj
    )
    require(
        isinstance(entry.get("checksum"), str) and entry["checksum"].startswith(CHECKSUM_PREFIX),
        "array entry has no checksum",
        path,
        obj,
    )
    if with_info:
        require(entry.get("kind") in KINDS, f"bad kind {entry.get('kind')!r}", path, obj)
        require(entry.get("unit") is None or isinstance(entry.get("unit"), str), "bad unit", path, obj)


def _validate_scope(entry, scopes, lengths, path, obj):
    scope = entry.get("scope")
    require(scope in scopes, f"bad scope {scope!r}", path, obj)
    if scope == "free":
        return
    expected = [] if scope == "global" else [lengths[scope]]
    shape = entry["shape"]
    if scope == "neuron" and len(shape) > 1:  # version 2: a row per neuron (NEST's tau_syn of each node)
        shape = shape[:1]
    require(shape == expected, f"shape {entry['shape']} does not fit scope {scope!r} (expected {expected})", path, obj)


def _validate_meta(meta, path):
    """The metadata that a load or the Checkpointer uses: its types and ranges.

    Unknown keys pass (a newer writer may add some); known ones must be
    exactly of their type: no string for a step, no NaN for a time.
    """
    optional(meta, "time", is_number, "a finite number of ms", path)
    optional(meta, "step", lambda v: is_int(v) and 0 <= v < 2**63, "an integer >= 0", path)
    optional(meta, "dt", lambda v: is_number(v) and v > 0, "a finite number > 0", path)
    optional(meta, "content", lambda v: isinstance(v, str), "a string", path)
    for key in ("user", "simulator", "library", "brian2", "nest", "annarchy"):
        optional(meta, key, lambda v: isinstance(v, dict), "an object", path)
    if meta.get("shards") is not None:
        _validate_shards(meta["shards"], path)


def _validate_shards(shards, path):
    require(isinstance(shards, dict), "meta 'shards' is not an object", path)
    ranks, files, token = shards.get("ranks"), shards.get("files"), shards.get("id")
    require(is_int(ranks) and 1 <= ranks <= 1 << 20, f"meta 'shards.ranks' is {ranks!r}", path)
    require(
        isinstance(token, str) and re.fullmatch(r"[0-9a-f]{1,64}", token) is not None,
        f"meta 'shards.id' is {token!r}",
        path,
    )
    require(
        isinstance(files, list) and len(files) == ranks and all(isinstance(f, str) for f in files),
        "meta 'shards.files' is not one file name per rank",
        path,
    )
    sizes, digests = shards.get("sizes"), shards.get("digests")
    require(
        sizes is None or (isinstance(sizes, list) and len(sizes) == ranks and all(is_int(n) and n >= 0 for n in sizes)),
        "meta 'shards.sizes' is not one size per rank",
        path,
    )
    require(
        digests is None
        or (
            isinstance(digests, list)
            and len(digests) == ranks
            and all(isinstance(d, str) and re.fullmatch(r"[0-9a-f]{16}", d) for d in digests)
        ),
        "meta 'shards.digests' is not one digest per rank",
        path,
    )
    populations = shards.get("populations")
    require(
        populations is None
        or (
            isinstance(populations, list)
            and len(populations) == ranks
            and all(isinstance(p, dict) for p in populations)
        ),
        "meta 'shards.populations' is not one summary per rank",
        path,
    )
    for rank_populations in populations or []:
        for name, info in rank_populations.items():
            require(
                _valid_shard_population(info), f"meta 'shards.populations' has a bad entry for {name!r}", path, name
            )


def _valid_shard_population(info):
    """One shard's summary of one population (see checkpoint.repartition.summary)."""
    return (
        isinstance(info, dict)
        and isinstance(info.get("global_ids"), bool)
        and all(is_int(info.get(k)) for k in ("global_size", "count", "first", "last"))
        and 0 <= info["count"] <= info["global_size"] < 2**62
        and (info["count"] == 0 or 0 <= info["first"] <= info["last"] < info["global_size"])
        and isinstance(info.get("checksum"), str)
        and len(info["checksum"]) <= 64
    )


def _validate_manifest(m, path):
    require(isinstance(m, dict) and m.get("format") == FORMAT_NAME, "not a checkpoint manifest", path)
    version = m.get("format_version")
    require(is_int(version), "manifest has no format_version", path)
    if version > FORMAT_VERSION:
        raise CorruptCheckpointError(
            f"format version {version} is newer than this library reads ({FORMAT_VERSION}); upgrade checkpoint",
            path=path,
        )
    require(isinstance(m.get("meta"), dict), "manifest has no meta", path)
    _validate_meta(m["meta"], path)
    for section in ("populations", "projections", "rng"):
        require(isinstance(m.get(section), dict), f"manifest has no {section}", path)
    keys = set()

    def entry(e, obj, with_info=False):
        _validate_entry(e, path, obj, with_info)
        require(e["key"] not in keys, f"key {e['key']!r} used twice", path, obj)
        keys.add(e["key"])

    for name, pop in m["populations"].items():
        require(
            isinstance(pop, dict) and is_int(pop.get("size")) and 0 <= pop["size"] < 2**62,
            "population has no valid size",
            path,
            name,
        )
        geometry = pop.get("geometry")
        require(
            geometry is None
            or (
                isinstance(geometry, list)
                and len(geometry) <= MAX_DIMENSIONS
                and all(is_int(n) and 0 <= n < 2**62 for n in geometry)
            ),
            f"bad geometry {geometry!r}",
            path,
            name,
        )
        require(isinstance(pop.get("arrays"), dict), "population has no arrays", path, name)
        if pop.get("ids") is not None:
            _validate_ids(pop, path, name, entry)
        else:
            require(pop.get("global_size") in (None, pop["size"]), "global_size without ids", path, name)
        for var, e in pop["arrays"].items():
            entry(e, f"{name}.{var}", True)
            _validate_scope(e, POPULATION_SCOPES, {"neuron": pop["size"]}, path, f"{name}.{var}")
    for name, proj in m["projections"].items():
        require(isinstance(proj, dict) and isinstance(proj.get("arrays"), dict), "projection has no arrays", path, name)
        shape = proj.get("shape")
        require(
            isinstance(shape, list) and len(shape) == 2 and all(is_int(n) and 0 <= n < 2**62 for n in shape),
            "projection has no valid shape",
            path,
            name,
        )
        for part in ("pre", "post", "target"):
            require(proj.get(part) is None or isinstance(proj[part], str), f"bad {part} {proj.get(part)!r}", path, name)
        for part in ("indptr", "indices"):
            entry(proj.get(part), f"{name}.{part}")
            require(
                proj[part]["dtype"] == "<i8" and len(proj[part]["shape"]) == 1,
                f"{part} must be a 1-d int64 array",
                path,
                name,
            )
        require(proj["indptr"]["shape"] == [shape[0] + 1], "indptr length is not post size + 1", path, name)
        nnz = proj["indices"]["shape"][0]
        if proj.get("order") is not None:  # version 3; its values are checked where it is used
            entry(proj["order"], f"{name}.order")
            require(
                proj["order"]["dtype"] in ORDER_DTYPES and proj["order"]["shape"] == [nnz],
                "order must be one int32 or int64 per synapse",
                path,
                name,
            )
        for var, e in proj["arrays"].items():
            entry(e, f"{name}.{var}", True)
            _validate_scope(e, PROJECTION_SCOPES, {"post": shape[0], "synapse": nnz}, path, f"{name}.{var}")
    for name, rng in m["rng"].items():
        require(
            isinstance(rng, dict) and isinstance(rng.get("kind"), str) and isinstance(rng.get("arrays"), dict),
            "bad random generator entry",
            path,
            f"rng {name}",
        )
        for var, e in rng["arrays"].items():
            entry(e, f"rng {name}.{var}")


def _validate_ids(pop, path, name, entry):
    """A shard's part of a population: ``size`` global indices (int64, 1-d)
    of a population of ``global_size``; their values are checked on read."""
    global_size = pop.get("global_size")
    require(is_int(global_size) and pop["size"] <= global_size < 2**62, f"bad global_size {global_size!r}", path, name)
    entry(pop["ids"], f"{name}.ids")
    require(
        pop["ids"]["dtype"] == "<i8" and pop["ids"]["shape"] == [pop["size"]],
        "ids must be one int64 per neuron",
        path,
        name,
    )


def all_entries(manifest):
    """Yield ``(object label, entry)`` for every array the manifest lists."""
    for name, pop in manifest["populations"].items():
        if pop.get("ids") is not None:
            yield f"{name}.ids", pop["ids"]
        for var, e in pop["arrays"].items():
            yield f"{name}.{var}", e
    for name, proj in manifest["projections"].items():
        yield f"{name}.indptr", proj["indptr"]
        yield f"{name}.indices", proj["indices"]
        if proj.get("order") is not None:
            yield f"{name}.order", proj["order"]
        for var, e in proj["arrays"].items():
            yield f"{name}.{var}", e
    for name, rng in manifest["rng"].items():
        for var, e in rng["arrays"].items():
            yield f"rng {name}.{var}", e


# ----------------------------------------------------------------- unflatten


def unflatten(manifest, fetch, path, lazy=False):
    """Build a :class:`NetworkState` from a validated manifest.

    ``fetch(entry, label, read)`` returns the array stored under
    ``entry["key"]`` as read, not yet checked against the entry's checksum
    (or, when ``lazy``, a dataset that checks itself on a full read).
    ``read`` is a :class:`~.checksums.ArrayRead` (None when lazy): a reader
    that fills the array through it has the checksum computed as the bytes
    arrive.  Checksums are verified here; the state is returned only once
    all of them match.
    """
    with VerifiedReads() as reads:
        state = _unflatten(manifest, fetch, path, lazy, reads)
        reads.wait()
    # a lazy state too: its CSR index and ids are small (one value per
    # neuron), read whole (verified) and checked here, so that no reader of
    # a lazy state (a repartition, convert) trusts an index never checked
    for name, p in manifest["projections"].items():
        proj = state.projections[name]
        if lazy:
            proj.indptr = np.asarray(proj.indptr)
        check_connectivity(proj.indptr, proj.indices, p["shape"], path, name, check_indices=False)
    for name, pop in state.populations.items():
        if pop.ids is not None:
            if lazy:
                pop.ids = np.asarray(pop.ids)
            check_ids(pop.ids, pop.global_size, path, name)
    return state


def _unflatten(manifest, fetch, path, lazy, reads):
    def info(e):
        return ArrayInfo(e["kind"], e["scope"], e.get("unit"))

    raw_fetch = fetch

    def fetch(entry, label):
        if lazy:
            array = raw_fetch(entry, label, None)
        else:
            read = reads.start()
            array = reads.finish(read, raw_fetch(entry, label, read), entry, path, label)
        advance(entry_nbytes(entry))
        return array

    state = NetworkState(meta=dict(manifest["meta"]), digest=manifest.get(DIGEST))
    state.meta["library_version_written"] = manifest.get("library_version")
    for name, p in manifest["populations"].items():
        ids = fetch(p["ids"], f"{name}.ids") if p.get("ids") is not None else None
        arrays = {var: fetch(e, f"{name}.{var}") for var, e in p["arrays"].items()}
        global_size = p.get("global_size", p["size"])
        geometry = p.get("geometry") or [global_size]
        state.populations[name] = PopulationState(
            name, p["size"], geometry, arrays, {var: info(e) for var, e in p["arrays"].items()}, ids, global_size
        )
    for name, p in manifest["projections"].items():
        indptr, indices = fetch(p["indptr"], f"{name}.indptr"), fetch(p["indices"], f"{name}.indices")
        order = fetch(p["order"], f"{name}.order") if p.get("order") is not None else None
        arrays = {var: fetch(e, f"{name}.{var}") for var, e in p["arrays"].items()}
        state.projections[name] = ProjectionState(
            name,
            p.get("pre"),
            p.get("post"),
            p["shape"],
            indptr,
            indices,
            p.get("target"),
            arrays,
            {var: info(e) for var, e in p["arrays"].items()},
            simulator_order=order,
            arrays_in_simulator_order=order is not None,
        )
        state.projections[name].connectivity_checksums = (p["indptr"]["checksum"], p["indices"]["checksum"])
    for name, r in manifest["rng"].items():
        arrays = {var: fetch(e, f"rng {name}.{var}") for var, e in r["arrays"].items()}
        state.rng[name] = RngState(name, r["kind"], r.get("state"), arrays)
    return state
