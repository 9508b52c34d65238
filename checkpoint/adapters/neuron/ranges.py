"""Sections' segments and point processes: their RANGE variables as arrays.

A population is a group of segments (every section of one name without its
indices, ``BallAndStick.dend``) or the point processes of one type
(``ExpSyn``, ``NetStim``), members sorted by identity (:mod:`.inventory`).
Its arrays are ``v`` and each mechanism's RANGE variables as NEURON names
them (``m_hh``, ``gnabar_hh``, ``ena``, ``diam``; a point process's ``g``,
``tau``), PARAMETERs as parameters, STATEs as variables, ASSIGNED as
internal.  One ``PtrVector`` per population gathers or scatters all of them
in a single call.
"""

import itertools
import re
from dataclasses import dataclass, field

import numpy as np
from typing import Optional

from . import hocloops
from .inventory import group_of, natural_key

#: MechanismStandard's variable types, and what they mean for a restart
_VARTYPES = ((1, "parameter"), (2, "internal"), (3, "variable"))


@dataclass
class Group:
    """One population: its members in identity order and their variables."""

    name: str
    members: list
    ids: list
    variables: list = field(default_factory=list)  # [(name, kind, index or None)]
    randoms: list = field(default_factory=list)  # names of RANDOM variables of the members
    #: a segment group's sections, in identity order (None: point processes)
    sections: Optional[list] = None
    #: under a ParallelContext: the members' global ids (:mod:`.parallel`), else None
    global_ids: object = None
    global_size: Optional[int] = None
    #: a point-process group's members' addresses, hoc List and their
    #: indices there (None: segments)
    ptrs: Optional[list] = None
    source: object = None
    order: Optional[list] = None
    _ptr: object = None
    _index: object = None

    @property
    def size(self):
        return len(self.members)

    def pointers(self, h):
        """The PtrVector of every variable of every member, variable-major."""
        if self._ptr is None:
            ptr = h.PtrVector(self.size * len(self.variables))
            if self.size and all(index is None and _NAME.match(var) for var, _, index in self.variables):
                _fill_in_hoc(h, ptr, self)
            else:
                self._fill(ptr)
            self._ptr = ptr
        return self._ptr

    def _fill(self, ptr):
        n = self.size
        for j, (var, _, index) in enumerate(self.variables):
            ref = "_ref_" + var
            for i, obj in enumerate(self.members):
                handle = getattr(obj, ref)
                ptr.pset(j * n + i, handle if index is None else handle[index])

    def hoc_list(self, h):
        """``(List, Vector of indices)`` of a point-process group's members, in
        identity order (for :mod:`.hocloops`); None for segments."""
        if self.source is None:
            return None
        if self._index is None:
            self._index = h.Vector(np.asarray(self.order, np.float64))
        return self.source, self._index

    def gather(self, h):
        """``{variable: array}`` of the members' current values (copies)."""
        n = len(self.variables) * self.size
        if not n:
            return {}
        buffer = h.Vector(n)
        self.pointers(h).gather(buffer)
        values = buffer.as_numpy().reshape(len(self.variables), self.size).copy()
        return {label(var, index): values[j] for j, (var, _, index) in enumerate(self.variables)}

    def scatter(self, h, values):
        """Set the variables in ``values`` (others keep theirs) in one call."""
        current = self.gather(h)
        current.update({k: np.asarray(v, np.float64) for k, v in values.items() if k in current})
        if current:
            flat = np.concatenate([current[label(var, index)] for var, _, index in self.variables])
            self.pointers(h).scatter(h.Vector(flat))


#: a variable name that may be written into hoc code (they come from the
#: model's MechanismStandard, never from a file)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROCS = itertools.count()
#: the procs defined so far, by their code: each save and load of one model
#: asks for the same loops, which hoc then neither parses again nor keeps twice
_DEFINED: dict = {}


def _fill_in_hoc(h, ptr, group):
    """Set the pointers with one hoc loop: about six times faster than one
    Python ``getattr(seg, "_ref_" + var)`` and ``pset`` per value.  The
    PtrVector goes through a global objref: as a ``$o`` argument inside
    ``forsec`` NEURON 9 corrupts it."""
    n = group.size
    if not hasattr(h, "checkpoint_ptrvector_"):
        h("objref checkpoint_ptrvector_")
    if group.sections is not None:
        body = " ".join(
            f"checkpoint_ptrvector_.pset(i + {j * n}, &{var}(x))" for j, (var, _, _) in enumerate(group.variables)
        )
        loop = f"forsec $o1 {{ for (x, 0) {{ {body}  i += 1 }} }}"
        members = h.SectionList()
        for sec in group.sections:
            members.append(sec=sec)
    else:
        body = " ".join(
            f"checkpoint_ptrvector_.pset(i + {j * n}, &$o1.o(i).{var})" for j, (var, _, _) in enumerate(group.variables)
        )
        loop = f"for i = 0, $o1.count() - 1 {{ {body} }}"
        members = h.List()
        for pp in group.members:
            members.append(pp)
    name = _DEFINED.get(loop)
    if name is None:
        name = f"checkpoint_pointers_{next(_PROCS)}"
        h(f"proc {name}() {{ local i\n i = 0\n {loop}\n}}\n")
        _DEFINED[loop] = name
    h.checkpoint_ptrvector_ = ptr
    try:
        getattr(h, name)(members)
    finally:
        h.checkpoint_ptrvector_ = None


def label(var, index):
    return var if index is None else f"{var}[{index}]"


def _variables(h, mechanism, cache):
    """``[(name, kind, index)]`` of one mechanism's RANGE variables, from
    MechanismStandard: all of them (vartype 0), each kind by the vartype
    that lists it (an ion's ``ena``, ``nai`` in use are in none: variables;
    a RANDOM variable is in none either, and is not a double)."""
    if mechanism not in cache:
        kinds, name = {}, h.ref("")
        for vartype, kind in _VARTYPES:
            standard = h.MechanismStandard(mechanism, vartype)
            for j in range(int(standard.count())):
                standard.name(name, j)
                kinds[name[0]] = kind
        out, standard = [], h.MechanismStandard(mechanism, 0)
        for j in range(int(standard.count())):
            size = int(standard.name(name, j))
            kind = kinds.get(name[0], "variable" if mechanism.endswith("_ion") else None)
            if kind is None:  # a RANDOM variable (ranges.random_arrays saves its stream)
                continue
            out.extend((name[0], kind, None if size == 1 else k) for k in range(size))
        cache[mechanism] = out
    return cache[mechanism]


def _random_names(obj):
    """The NMODL RANDOM variables of a point process or density mechanism."""
    names = []
    for attr in dir(obj):
        if attr.startswith("_"):
            continue
        try:
            value = getattr(obj, attr)
        except Exception:  # a function needing arguments, a variable of another kind
            continue
        if type(value).__name__ == "NMODLRandom":
            names.append(attr)
    return names


def segment_groups(h, inv):
    """The segment populations, each with its sections' segments in identity order."""
    by_group = {}
    names = inv.names
    for sec in inv.sections:
        mechs = tuple(inv.mechanisms[names[sec]])
        by_group.setdefault((group_of(names[sec]), mechs), []).append(sec)
    bases = {}
    for base, mechs in by_group:
        bases.setdefault(base, []).append(mechs)
    groups, cache = {}, {}
    for (base, mechs), sections in by_group.items():
        name = base if len(bases[base]) == 1 else f"{base}|{'+'.join(m for m in mechs if not m.endswith('_ion'))}"
        sections.sort(key=lambda s: natural_key(names[s]))
        segments = [seg for sec in sections for seg in sec]
        ids = [f"{names[sec]}({k})" for sec in sections for k in range(sec.nseg)]  # as segment_key
        group = Group(name, segments, ids, sections=sections)
        group.variables = [("v", "variable", None)] + [v for m in mechs for v in _variables(h, m, cache)]
        if segments:
            for mech in mechs:
                if not mech.endswith("_ion") and mech not in ("morphology", "capacitance", "extracellular"):
                    for rname in _random_names(getattr(segments[0], mech)):
                        group.randoms.append(f"{mech}.{rname}")
        groups[name] = group
    return groups


def point_groups(h, inv):
    """The point-process populations (artificial cells included), by type."""
    groups, cache = {}, {}
    for kind, members in inv.points.items():
        order = sorted(range(len(members)), key=lambda i: natural_key(inv.point_ids[kind][i]))
        group = Group(
            kind,
            [members[i] for i in order],
            [inv.point_ids[kind][i] for i in order],
            ptrs=[inv.point_locs[kind][i][0] for i in order],
            source=inv.point_lists[kind],
            order=order,
        )
        group.variables = list(_variables(h, kind, cache))
        group.randoms = _random_names(members[0])
        groups[kind] = group
    return groups


def random_of(member, name):
    """The NMODLRandom ``name`` (``ranvar`` or ``hh.ranvar``) of a member."""
    obj = member
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def random_arrays(group):
    """``{name.id1, .id2, .id3, .seq: array}`` of the group's RANDOM streams."""
    out = {}
    for name in group.randoms:
        table = _stream_table(group, name)
        if table is not None:  # a point process's: one hoc loop
            ids, seq = table[:3].T.astype(np.int64), table[3].copy()
        else:
            streams = [random_of(m, name) for m in group.members]
            ids = np.array([list(s.get_ids()) for s in streams], np.int64).reshape(len(streams), 3)
            seq = np.array([s.get_seq() for s in streams], np.float64)
        for k in range(3):
            out[f"{name}.id{k + 1}"] = ids[:, k].copy()
        out[f"{name}.seq"] = seq
    return out


def _stream_table(group, name, table=None):
    """Read (or, given ``table``, set) the streams ``name`` of a point-process
    group in one hoc loop: a ``(4, size)`` array of id1, id2, id3, seq.
    None where hoc cannot (segments' ``hh.ranvar``; a name hoc cannot hold)."""
    from neuron import h

    where = group.hoc_list(h)
    if where is None or not hocloops.NAME.match(name):
        return None
    if table is None:
        return hocloops.read_streams(h, *where, name)
    hocloops.write_streams(h, *where, name, table)
    return table


def set_randoms(group, arrays):
    """Set the RANDOM streams from ``random_arrays``-shaped arrays (validated)."""
    for name in group.randoms:
        keys = [f"{name}.id{k}" for k in (1, 2, 3)] + [f"{name}.seq"]
        if not all(k in arrays for k in keys):
            continue
        id1, id2, id3, seq = (np.asarray(arrays[k]) for k in keys)
        if (
            all(a.shape == (group.size,) for a in (id1, id2, id3, seq))
            and _stream_table(group, name, np.array([id1, id2, id3, seq], np.float64)) is not None
        ):
            continue
        for i, member in enumerate(group.members):
            stream = random_of(member, name)
            stream.set_ids(int(id1[i]), int(id2[i]), int(id3[i]))
            stream.set_seq(float(seq[i]))
