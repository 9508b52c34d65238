"""What a NEURON model is made of, and who each part is.

NEURON numbers its objects in creation order (``NetStim[3]``, ``NetCon[12]``)
and its own SaveState is positional over that order.  Here every object also
gets an *identity* that does not depend on the order: a segment is its
section's name and index, a point process its type, segment and rank among
its kind there, an artificial cell its gid (or, without one, what its
NetCons drive), a NetCon its source, target and rank among their NetCons.
Populations list their members sorted by identity, so that a model built in
another order lines up with the file by identity, never by position.

The *fingerprint* is the creation-order structure SaveState depends on; two
models with one fingerprint can exchange SaveState bytes.
"""

import functools
import re
from dataclasses import dataclass, field

import xxhash

from ...errors import UnsupportedObjectError
from . import hocloops

#: ``BallAndStick[12].dend[3]`` sorts as ``BallAndStick[12].dend[3]`` with its
#: numbers compared as numbers
_NUMBER = re.compile(r"(\d+)")
_INDEX = re.compile(r"\[\d+\]")


@functools.lru_cache(maxsize=1 << 17)
def natural_key(name):
    # memoised: a pure function of the name, asked for every member at each save and load
    return tuple([int(part) if part.isdigit() else part for part in _NUMBER.split(name)])


def group_of(section_name):
    """The population a section belongs to: its name without indices
    (``BallAndStick[3].dend[2]`` -> ``BallAndStick.dend``)."""
    return _INDEX.sub("", section_name)


@dataclass
class Inventory:
    """The parts of the model, each list in NEURON's creation order."""

    sections: list = field(default_factory=list)  # nrn.Section, in h.allsec() order
    mechanisms: dict = field(default_factory=dict)  # section name -> [density mechanism names]
    point_types: list = field(default_factory=list)  # [(type name, is_artificial)] of every type loaded
    points: dict = field(default_factory=dict)  # type -> [point process], List order
    point_ids: dict = field(default_factory=dict)  # type -> [identity]
    point_locs: dict = field(default_factory=dict)  # type -> [(address, segment key or None)]
    point_lists: dict = field(default_factory=dict)  # type -> the hoc List of its points
    netcons: list = field(default_factory=list)  # every NetCon, List order
    netcon_list: object = None  # the hoc List they are in
    links: list = field(default_factory=list)  # a Link per NetCon
    netcon_ids: list = field(default_factory=list)  # identity of each
    randoms: list = field(default_factory=list)  # hoc Random objects
    names: dict = field(default_factory=dict)  # section -> its name (asked once)
    density_types: list = field(default_factory=list)  # every density mechanism loaded

    def fingerprint(self):
        """XXH3-64 of the creation-order structure (hex)."""
        # one update of the parts joined: the digest of a stream is that of its concatenation
        return xxhash.xxh3_64(b"".join(part.encode() + b"\0" for part in self._structure())).hexdigest()

    def _structure(self):
        yield "types:" + ",".join(self.density_types) + "|" + ",".join(t for t, _ in self.point_types)
        for sec in self.sections:
            name = self.names[sec]
            yield f"sec:{name}:{sec.nseg}:{','.join(self.mechanisms[name])}"
        for kind, _ in self.point_types:
            yield f"pp:{kind}:" + ";".join(self.point_ids.get(kind, ()))
        yield "nc:" + ";".join(self.netcon_ids)
        yield f"random:{len(self.randoms)}"


def _names(mechanism_type):
    out, name = [], _ref("")
    for i in range(int(mechanism_type.count())):
        mechanism_type.select(i)
        mechanism_type.selected(name)
        out.append((name[0], bool(mechanism_type.is_artificial(i))))
    return out


def _ref(value):
    from neuron import h

    return h.ref(value)


def take(h, pc=None):
    """The :class:`Inventory` of the whole model in this process."""
    inv = Inventory()
    inv.density_types = [name for name, _ in _names(h.MechanismType(0))]
    inv.point_types = _names(h.MechanismType(1))
    inv.sections = list(h.allsec())
    names = [sec.name() for sec in inv.sections]
    inv.names = dict(zip(inv.sections, names))
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[:3]
        raise UnsupportedObjectError(
            f"several sections share the names {dup}: sections are identified by "
            "name (give each cell a name, e.g. a __repr__ with its gid)"
        )
    by_address = dict(zip(hocloops.section_pointers(inv.sections), inv.sections))
    _take_mechanisms(h, inv, names, by_address)
    netcons = inv.netcon_list = h.List("NetCon")
    inv.netcons = list(netcons)
    inv.links = _links(h, netcons, inv, by_address)
    for kind, artificial in inv.point_types:
        members = h.List(kind)
        if members.count():
            inv.points[kind] = list(members)
            inv.point_lists[kind] = members
            inv.point_locs[kind] = _locations(h, members, inv.names, by_address)
    _identify_points(inv, _artificial_gids(inv.links, pc))
    inv.netcon_ids = _netcon_ids(inv)
    inv.randoms = list(h.List("Random"))
    return inv


def _take_mechanisms(h, inv, names, by_address):
    """Each section's density mechanisms, asked in one hoc loop (``forall``
    must visit h.allsec()'s sections in its order: else asked one by one)."""
    found = hocloops.membranes(h, inv.density_types, len(inv.sections))
    if found is not None and [by_address.get(int(a)) for a in found[1]] == inv.sections:
        for name, row in zip(names, found[0].tolist()):
            inv.mechanisms[name] = [m for m, has in zip(inv.density_types, row) if has]
        return
    for sec, name in zip(inv.sections, names):
        inv.mechanisms[name] = [m for m in inv.density_types if sec.has_membrane(m)]


class Link:
    """One NetCon's ends, asked of NEURON once (:func:`.hocloops.links`):
    its source (an artificial cell's address, or a segment's key) and
    target (a point process's address), and srcgid; ``pre`` and ``syn``,
    the objects, are asked when needed."""

    __slots__ = ("netcon", "ptr", "pre_ptr", "preseg", "presec", "syn_ptr", "srcgid")

    def __init__(self, netcon, ptr, pre_ptr, preseg, presec, syn_ptr, srcgid):
        self.netcon, self.ptr, self.pre_ptr, self.syn_ptr, self.srcgid = netcon, ptr, pre_ptr, syn_ptr, srcgid
        self.preseg = preseg  # the source segment's key, or None
        self.presec = presec  # the source segment's section, or None

    @property
    def pre(self):
        """The source point process, or None."""
        return self.netcon.pre() if self.pre_ptr else None

    @property
    def syn(self):
        """The target, or None."""
        return self.netcon.syn() if self.syn_ptr else None


def _links(h, netcons, inv, by_address):
    ptr, pre, syn, gid, x, sec, nseg = (a.tolist() for a in hocloops.links(h, netcons))
    out = []
    for i, nc in enumerate(inv.netcons):
        presec = by_address[sec[i]] if x[i] != -1 else None
        preseg = _key(inv.names[presec], x[i], nseg[i]) if presec is not None else None
        out.append(Link(nc, ptr[i], pre[i], preseg, presec, syn[i], gid[i]))
    return out


def _locations(h, members, names, by_address):
    """``(address, segment key or None)`` of each point process of a hoc List."""
    ptr, x, sec, nseg = (a.tolist() for a in hocloops.points(h, members))
    return [(p, _key(names[by_address[s]], at, n) if at != -1 else None) for p, at, s, n in zip(ptr, x, sec, nseg)]


def _artificial_gids(links, pc):
    """``{("pp", pointer): gid}`` of artificial cells registered with pc.cell."""
    if pc is None:
        return {}
    return {
        ("pp", link.pre_ptr): link.srcgid
        for link in links
        if link.pre_ptr and not link.syn_ptr and link.srcgid >= 0 and pc.gid_exists(link.srcgid)
    }


def segment_key(seg, names=None):
    """``soma(0)``: a segment is its section's name and index (``nseg`` for x = 1)."""
    sec = seg.sec
    return _key(names[sec] if names is not None and sec in names else sec.name(), seg.x, sec.nseg)


def _key(name, x, nseg):
    return f"{name}({min(int(x * nseg), nseg)})"


def _identify_points(inv, gids):
    ptr_id = {}
    # located point processes: their segment and rank among their kind there
    for kind, located in inv.point_locs.items():
        ranks, ids = {}, []
        for ptr, where in located:
            if where is not None:
                ranks[where] = ranks.get(where, -1) + 1
                ids.append(f"{kind}@{where}#{ranks[where]}")
                ptr_id[ptr] = ids[-1]
            else:
                ids.append(None)
        inv.point_ids[kind] = ids
    # artificial cells: a gid, else the identities of what their NetCons drive
    # (a target not yet identified gives its hoc name: positional, so another
    # creation order then fails the identity check rather than mismatching)
    drives = {}
    for link in inv.links:
        if link.pre_ptr and link.syn_ptr:
            drives.setdefault(link.pre_ptr, []).append(ptr_id.get(link.syn_ptr) or link.syn.hname())
    for kind, members in inv.points.items():
        ids = inv.point_ids[kind]
        ptrs = [ptr for ptr, _ in inv.point_locs[kind]]
        for i, ptr in enumerate(ptrs):
            if ids[i] is None:
                gid = gids.get(("pp", ptr))
                targets = drives.get(ptr)
                ids[i] = (
                    f"{kind}#gid{gid}"
                    if gid is not None
                    else (f"{kind}->{'+'.join(sorted(targets))}" if targets else members[i].hname())
                )
        _rank_duplicates(ids)
        ptr_id.update(zip(ptrs, ids))
    inv.ptr_ids = ptr_id


def _rank_duplicates(ids):
    seen = {}
    for i, ident in enumerate(ids):
        seen[ident] = seen.get(ident, -1) + 1
        if seen[ident]:
            ids[i] = f"{ident}#{seen[ident]}"


def _netcon_ids(inv):
    ids = []
    for link in inv.links:
        if link.pre_ptr:
            src = inv.ptr_ids[link.pre_ptr]
        elif link.srcgid >= 0:  # a gid's spikes, wherever its cell is (pc.cell, pc.gid_connect)
            src = f"gid{link.srcgid}"
        elif link.preseg is not None:
            src = link.preseg
        else:
            src = "none"
        ids.append(f"{src}->{inv.ptr_ids[link.syn_ptr] if link.syn_ptr else 'none'}")
    _rank_duplicates(ids)
    return ids
