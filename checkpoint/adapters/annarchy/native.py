"""Bulk access to a compiled ANNarchy network's C++ state.

ANNarchy compiles each network into C++ structures (``PopStruct<id>``,
``ProjStruct<id>``) reached through global pointers (``pop<id>``,
``proj<id>``) of its wrapper module.  Its Python bindings copy variables
through Python lists and leave out what an exact restart needs (last spike
times, event-driven trace timestamps, spikes in delay buffers, the random
engines).  This module lists every data member of those structures from
ANNarchy's generated headers, generates a small C++ file that includes them
and ``access.hpp`` (beside this module), compiles it once per network
(cached beside the network's own build), and reads and writes each member
as a flat numpy array plus the lengths of its nested containers.
"""

import ctypes
import hashlib
import logging
import os
import re
import subprocess
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import CheckpointError, UnsupportedObjectError
from .objects import annarchy, exact_sum, shares_weights

log = logging.getLogger("checkpoint")

_HERE = Path(__file__).resolve().parent
_ACCESS_HEADER = _HERE / "access.hpp"
_NATIVE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # ANNarchy wrapper module -> NativeState

#: C++ keywords that begin a struct-level statement that declares no data.
_NOT_DATA = ("typedef", "using", "static", "friend", "template", "public", "private", "protected",
             "struct", "class", "enum", "return")


#: Members of ANNarchy's LILMatrix base class that hold a projection's connectivity.
_LIL_MEMBERS = ("post_rank", "pre_rank")


class NativeAccessError(CheckpointError):
    """The C++ accessor for a compiled ANNarchy network could not be built or loaded."""


@dataclass
class Field:
    """One data member of one generated structure."""

    index: int
    object: str     # "pop0", "proj2": the global pointer's name
    name: str
    depth: int      # -1: a type checkpoint cannot read
    dtype: np.dtype


# -- reading the generated headers -------------------------------------------

def _strip_code(text):
    """Drop comments, string and character literals and preprocessor lines,
    which could hold braces or semicolons."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'', '""', text)
    return re.sub(r"^[ \t]*#[^\n]*", " ", text, flags=re.M)


def struct_members(header_text, struct):
    """Names of the data members declared in ``struct``'s body (not those of
    its base classes), in order.

    Statements at the body's top level that end in ``;`` and have no
    parenthesis are declarations; function bodies and nested blocks are
    skipped by counting braces.
    """
    text = _strip_code(header_text)
    match = re.search(r"\bstruct\s+" + re.escape(struct) + r"\b[^;{]*\{", text)
    if match is None:
        raise NativeAccessError(f"no definition of struct {struct} in ANNarchy's generated header")
    names, statement, depth = [], [], 1
    for ch in text[match.end():]:
        if ch == "{":
            depth += 1
            statement = []
            continue
        if ch == "}":
            depth -= 1
            if depth == 0:
                break
            statement = []
            continue
        if depth != 1:
            continue
        if ch == ";":
            names.extend(_declared_names("".join(statement)))
            statement = []
        else:
            statement.append(ch)
    return names


def _declared_names(statement):
    """``std::vector< double > v`` -> ["v"]; ``bool a, b`` -> ["a", "b"]."""
    statement = " ".join(statement.split())
    if not statement or "(" in statement or statement.split()[0].rstrip(":") in _NOT_DATA:
        return []
    statement = re.sub(r"=[^,]*", "", statement)          # initialisers
    depth, parts, current = 0, [], []
    for ch in statement:                                   # split on top-level commas
        depth += (ch == "<") - (ch == ">")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    names = [re.search(r"(\w+)\s*(\[[^\]]*\])?\s*$", parts[0])]
    names += [re.search(r"(\w+)\s*(\[[^\]]*\])?\s*$", p) for p in parts[1:]]
    return [m.group(1) for m in names if m is not None and m.group(2) is None]


# -- generating and building the accessor -------------------------------------

def _source(core_header, objects, lil_projections):
    """The accessor's C++ source.

    ``objects``: ``[(global name, struct name, [member, ...]), ...]``;
    ``lil_projections``: the global names of projections stored as LIL.
    """
    lines = [f'#include "{core_header}"', f'#include "{_ACCESS_HEADER.name}"', "",
             f"static void* ck_slots[{max(len(objects), 1)}];",
             "static std::vector<std::mt19937>* ck_rng = nullptr;", "",
             "static ck::Field ck_fields[] = {"]
    for slot, (glob, struct, members) in enumerate(objects):
        for member in members:
            macro = "CK_LIL_FIELD" if member in _LIL_MEMBERS else "CK_FIELD"
            lines.append(f'    {macro}("{glob}", {slot}, {struct}, {member}),')
    lines.append("};")
    lines.append(r"""
template <class S>
static int ck_set_lil(void** slot, int64_t rows, const int* post, const int64_t* lengths, const int* pre) {
    S* proj = *reinterpret_cast<S**>(*slot);
    using IT = typename std::remove_reference_t<decltype(proj->*ck::open_lil<S>::post_rank_member())>::value_type;
    std::vector<IT> post_rank(post, post + rows);
    std::vector<std::vector<IT>> pre_rank(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) {
        pre_rank[i].assign(pre, pre + lengths[i]);
        pre += lengths[i];
    }
    return proj->init_matrix_from_lil(post_rank, pre_rank) ? 0 : -1;
}

extern "C" {
void ck_bind(int slot, void* address) { ck_slots[slot] = address; }
void ck_bind_rng(void* address) { ck_rng = static_cast<std::vector<std::mt19937>*>(address); }
int ck_field_count() { return static_cast<int>(sizeof(ck_fields) / sizeof(ck_fields[0])); }
const char* ck_field_object(int f) { return ck_fields[f].object; }
const char* ck_field_name(int f) { return ck_fields[f].name; }
int ck_field_depth(int f) { return ck_fields[f].depth; }
char ck_field_kind(int f) { return ck_fields[f].kind; }
int ck_field_itemsize(int f) { return ck_fields[f].itemsize; }
void ck_field_shape(int f, int64_t* counts) { ck_fields[f].shape(&ck_slots[ck_fields[f].slot], counts); }
void ck_field_read(int f, int64_t* lengths, void* flat) {
    ck_fields[f].read(&ck_slots[ck_fields[f].slot], lengths, flat);
}
void ck_field_write(int f, const int64_t* counts, const int64_t* lengths, const void* flat) {
    ck_fields[f].write(&ck_slots[ck_fields[f].slot], counts, lengths, flat);
}
int ck_rng_count() { return ck_rng ? static_cast<int>(ck_rng->size()) : 0; }
int ck_rng_words() { return ck_rng ? ck::engine_words(ck_rng) : 0; }
void ck_rng_read(uint64_t* out) { ck::read_engines(ck_rng, out); }
int ck_rng_write(const uint64_t* in) { return ck::write_engines(ck_rng, in); }
int ck_set_lil(int slot, int64_t rows, const int* post, const int64_t* lengths, const int* pre) {
    switch (slot) {""")
    for slot, (glob, struct, _) in enumerate(objects):
        if glob in lil_projections:
            lines.append(f"    case {slot}: return ck_set_lil<{struct}>(&ck_slots[{slot}], rows, post, lengths, pre);")
    lines.append("    default: return -2;\n    }\n}\n}  // extern \"C\"\n")
    return "\n".join(lines)


def _build(source, include_dirs, cache_dir):
    """Compile ``source`` into a shared library in ``cache_dir`` unless one
    built from the same text is there; return its path."""
    digest = hashlib.sha256((source + _ACCESS_HEADER.read_text()).encode()).hexdigest()[:16]
    cache_dir.mkdir(parents=True, exist_ok=True)
    library = cache_dir / f"checkpoint_access_{digest}.so"
    if library.exists():
        return library
    src = cache_dir / f"checkpoint_access_{digest}.cpp"
    src.write_text(source)
    fd, partial = tempfile.mkstemp(suffix=".so", dir=cache_dir)
    os.close(fd)
    command = [os.environ.get("CXX", "g++"), "-std=c++17", "-O2", "-shared", "-fPIC", "-DNDEBUG",
               "-Wl,-z,defs", *[f"-I{d}" for d in include_dirs], str(src), "-o", partial]
    log.info("checkpoint: compiling the ANNarchy state accessor in %s", cache_dir)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        os.unlink(partial)
        raise NativeAccessError(f"could not compile checkpoint's accessor for the ANNarchy network "
                                f"in {cache_dir}:\n{result.stderr[-4000:]}")
    os.replace(partial, library)
    return library


class NativeState:
    """The C++ members of one compiled ANNarchy network, as numpy arrays.

    Parameters
    ----------
    wrapper_module : module
        ANNarchy's compiled wrapper (``ANNarchyWrapper<id>``).
    header_dir : Path
        The folder with the network's generated headers.
    objects : list of (global name, struct name, header file name, extra members)
        The structures to expose; ``extra members`` are members of a base
        class (a LIL projection's ``post_rank`` and ``pre_rank``).
    lil_projections : set of str
        Global names of projections whose connectivity can be rebuilt.
    include_dirs : list of Path
        ANNarchy's own include folders.
    """

    def __init__(self, wrapper_module, header_dir, objects, lil_projections, include_dirs, dt=None):
        wrapper = ctypes.CDLL(wrapper_module.__file__, mode=os.RTLD_NOLOAD)
        if dt is not None:
            check_own_globals(wrapper, wrapper_module.__file__, dt)
        table = []
        for glob, struct, header, extra in objects:
            members = struct_members((header_dir / header).read_text(), struct)
            table.append((glob, struct, list(extra) + [m for m in members if m not in extra]))
        source = _source(f"ANNarchyCore{wrapper_module.__name__[len('ANNarchyWrapper'):]}.hpp",
                         table, lil_projections)
        library = _build(source, [header_dir, _HERE, *include_dirs], header_dir / "checkpoint")
        self.lib = ctypes.CDLL(str(library))
        self._declare()
        self.slots = {}
        for slot, (glob, _, _) in enumerate(table):
            self.lib.ck_bind(slot, ctypes.addressof(ctypes.c_void_p.in_dll(wrapper, glob)))
            self.slots[glob] = slot
        self.lib.ck_bind_rng(ctypes.addressof(ctypes.c_char.in_dll(wrapper, "rng")))
        self.fields = {}
        for f in range(self.lib.ck_field_count()):
            kind = self.lib.ck_field_kind(f).decode()
            itemsize = self.lib.ck_field_itemsize(f)
            field = Field(f, self.lib.ck_field_object(f).decode(), self.lib.ck_field_name(f).decode(),
                          self.lib.ck_field_depth(f), np.dtype(f"{kind}{itemsize}" if kind != "b" else "?"))
            self.fields.setdefault(field.object, {})[field.name] = field

    def _declare(self):
        lib, i64p, vp = self.lib, ctypes.POINTER(ctypes.c_int64), ctypes.c_void_p
        lib.ck_bind.argtypes = [ctypes.c_int, vp]
        lib.ck_bind_rng.argtypes = [vp]
        for name in ("ck_field_object", "ck_field_name"):
            getattr(lib, name).restype = ctypes.c_char_p
            getattr(lib, name).argtypes = [ctypes.c_int]
        lib.ck_field_kind.restype = ctypes.c_char
        for name in ("ck_field_depth", "ck_field_kind", "ck_field_itemsize"):
            getattr(lib, name).argtypes = [ctypes.c_int]
        lib.ck_field_shape.argtypes = [ctypes.c_int, i64p]
        lib.ck_field_read.argtypes = [ctypes.c_int, vp, vp]
        lib.ck_field_write.argtypes = [ctypes.c_int, vp, vp, vp]
        lib.ck_rng_read.argtypes = [vp]
        lib.ck_rng_write.argtypes = [vp]
        lib.ck_set_lil.argtypes = [ctypes.c_int, ctypes.c_int64, vp, vp, vp]

    def unsupported(self, obj):
        return [name for name, f in self.fields.get(obj, {}).items() if f.depth < 0]

    def counts(self, field):
        """How many containers each level of ``field`` has, and how many
        scalars: ``[1, n1, ..., n_depth]`` (``[1]`` for a scalar)."""
        counts = np.zeros(field.depth + 1, np.int64)
        self.lib.ck_field_shape(field.index, counts.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)))
        return counts

    def read(self, field):
        """``(lengths, flat)``: int64 lengths level by level, and the values."""
        counts = self.counts(field)
        lengths = np.empty(int(counts[:field.depth].sum()), np.int64)
        flat = np.empty(int(counts[field.depth]), field.dtype)
        self.lib.ck_field_read(field.index, lengths.ctypes.data, flat.ctypes.data)
        return lengths, flat

    def write(self, field, lengths, flat):
        """Resize ``field`` to ``lengths`` and fill it with ``flat``
        (both as :meth:`read` returns them, already validated)."""
        lengths = np.ascontiguousarray(lengths, np.int64)
        flat = np.ascontiguousarray(flat, field.dtype)
        counts = level_counts(lengths, field.depth)
        if counts is None or counts[-1] != flat.size:
            raise ValueError(f"lengths do not fit {field.object}.{field.name}")
        counts = np.asarray(counts, np.int64)
        self.lib.ck_field_write(field.index, counts.ctypes.data, lengths.ctypes.data, flat.ctypes.data)

    def set_lil(self, obj, post_rank, row_lengths, pre_rank):
        """Rebuild a LIL projection's connectivity (and its inverse index)."""
        post_rank = np.ascontiguousarray(post_rank, np.int32)
        row_lengths = np.ascontiguousarray(row_lengths, np.int64)
        pre_rank = np.ascontiguousarray(pre_rank, np.int32)
        status = self.lib.ck_set_lil(self.slots[obj], len(post_rank), post_rank.ctypes.data,
                                     row_lengths.ctypes.data, pre_rank.ctypes.data)
        if status != 0:
            raise NativeAccessError(f"ANNarchy rejected the connectivity of {obj}")

    def read_rng(self):
        """The C++ mt19937 engines' states, one row of 625 words each."""
        count, words = self.lib.ck_rng_count(), self.lib.ck_rng_words()
        out = np.zeros((count, words), np.uint64)
        if count:
            self.lib.ck_rng_read(out.ctypes.data)
        return out

    def write_rng(self, states):
        states = np.ascontiguousarray(states, np.uint64)
        if self.lib.ck_rng_write(states.ctypes.data) != 0:
            raise ValueError("the C++ library rejected the random engine state")


def check_own_globals(wrapper, path, dt):
    """Refuse a compiled network whose code uses another library's ``dt``.

    ANNarchy's library defines its clock as the global symbols ``t`` and
    ``dt``; where a library loaded before it put symbols of those names in
    the process's global scope (``import neuron`` does), the dynamic linker
    binds ANNarchy's code to those: the ``dt`` it wrote at compile time is
    not in its own variable, which the accessor binds, so every read would
    be of another clock (and crashed the process once).  ``dt`` is written
    once, at ``compile()``: its own copy still 0 proves the binding."""
    own = ctypes.c_double.in_dll(wrapper, "dt").value
    own32 = ctypes.c_float.in_dll(wrapper, "dt").value   # a float32 network's dt is a float
    if not (own == dt or own32 == np.float32(dt)):
        raise NativeAccessError(
            f"ANNarchy's compiled network {path} does not use its own clock: a library loaded before "
            "it exports the global symbols `t` and `dt` (NEURON does, once imported), and the dynamic "
            "linker bound ANNarchy's code to them; checkpoint cannot read this network's state. Run "
            "ANNarchy in a process that does not import neuron")


def level_counts(lengths, depth):
    """How many containers each level has, and how many scalars: the list
    ``[1, n1, ..., n_depth]``, or None if ``lengths`` is not a valid layout."""
    counts, offset = [1] if depth > 0 else [], 0
    for _ in range(depth):
        level = lengths[offset:offset + counts[-1]]
        if len(level) != counts[-1] or (len(level) and int(level.min()) < 0):
            return None
        offset += counts[-1]
        counts.append(exact_sum(level))   # a file's lengths may wrap an int64 sum
        if counts[-1] >= 2 ** 62:          # no container of this machine holds as many
            return None
    if offset != len(lengths):
        return None
    return counts if depth > 0 else [1]


def wrapper_of(network):
    """``(wrapper module, compiled network)``: ANNarchy's compiled wrapper
    module that runs ``network``, and the network it was compiled for.

    A network made by ``net.copy()`` (which ``parallel_run()`` uses) runs
    the library compiled for the network it copies: the same module, so
    the same C++ structures, which in a process of ``parallel_run()`` are
    the copy's own, and in the copying process are shared with the
    original (ANNarchy's copies are meant to run in processes of their
    own).  Its headers are the compiled network's.
    """
    from ANNarchy.intern.NetworkManager import NetworkManager
    wrapper = getattr(network, "instance", None)
    match = re.fullmatch(r"ANNarchyWrapper(\d+)", getattr(wrapper, "__name__", ""))
    compiled = NetworkManager().get_network(net_id=int(match.group(1))) if match else None
    if compiled is None or getattr(compiled, "directory", None) is None:
        raise UnsupportedObjectError(
            f"cannot find the library that ANNarchy network {network.id} runs (compiled: "
            f"{getattr(wrapper, '__name__', None)!r}); save and load a network once it is compiled "
            "(net.compile(directory=...)) or copied from a compiled one (net.copy())",
            obj=type(network).__name__)
    return wrapper, compiled


def native_state(net):
    """The accessor for ``net``'s compiled code, built once per compilation."""
    wrapper, compiled = wrapper_of(net)   # a copy runs the library of the network it copies
    native = _NATIVE.get(wrapper)
    if native is None:
        ann_dir = Path(annarchy().__file__).resolve().parent
        header_dir = Path(compiled.directory) / "build" / f"net{compiled.id}"
        objects = [(f"pop{p.id}", f"PopStruct{p.id}", f"pop{p.id}.hpp", ()) for p in net.get_populations()]
        own = [p for p in net.get_projections() if not shares_weights(p)]   # the others have no LIL
        lil = {f"proj{p.id}" for p in own if p._storage_format == "lil"}
        objects += [(f"proj{p.id}", f"ProjStruct{p.id}", f"proj{p.id}.hpp",
                     ("post_rank", "pre_rank") if f"proj{p.id}" in lil else ())
                    for p in own]
        native = NativeState(wrapper, header_dir, objects, lil, [ann_dir / "include", ann_dir / "thirdparty"],
                             dt=float(compiled.dt))
        unreadable = [f"{obj}.{name}" for obj in native.fields for name in native.unsupported(obj)]
        if unreadable:
            log.warning("checkpoint: members of ANNarchy's C++ structures of a type checkpoint cannot "
                        "read, not captured: %s", ", ".join(unreadable))
        _NATIVE[wrapper] = native
    return native
