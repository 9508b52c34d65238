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

import re
from dataclasses import dataclass, field

import xxhash

from ...errors import UnsupportedObjectError

#: ``BallAndStick[12].dend[3]`` sorts as ``BallAndStick[12].dend[3]`` with its
#: numbers compared as numbers
_NUMBER = re.compile(r"(\d+)")
_INDEX = re.compile(r"\[\d+\]")


def natural_key(name):
    return tuple(int(part) if part.isdigit() else part for part in _NUMBER.split(name))


def group_of(section_name):
    """The population a section belongs to: its name without indices
    (``BallAndStick[3].dend[2]`` -> ``BallAndStick.dend``)."""
    return _INDEX.sub("", section_name)


@dataclass
class Inventory:
    """The parts of the model, each list in NEURON's creation order."""

    sections: list = field(default_factory=list)        # nrn.Section, in h.allsec() order
    mechanisms: dict = field(default_factory=dict)      # section name -> [density mechanism names]
    point_types: list = field(default_factory=list)     # [(type name, is_artificial)] of every type loaded
    points: dict = field(default_factory=dict)          # type -> [point process], List order
    point_ids: dict = field(default_factory=dict)       # type -> [identity]
    netcons: list = field(default_factory=list)         # every NetCon, List order
    links: list = field(default_factory=list)           # a Link per NetCon
    netcon_ids: list = field(default_factory=list)      # identity of each
    randoms: list = field(default_factory=list)         # hoc Random objects
    names: dict = field(default_factory=dict)           # section -> its name (asked once)
    density_types: list = field(default_factory=list)   # every density mechanism loaded

    def fingerprint(self):
        """XXH3-64 of the creation-order structure (hex)."""
        digest = xxhash.xxh3_64()
        for part in self._structure():
            digest.update(part.encode() + b"\0")
        return digest.hexdigest()

    def _structure(self):
        yield "types:" + ",".join(self.density_types) + "|" + ",".join(t for t, _ in self.point_types)
        for sec in self.sections:
            yield f"sec:{sec.name()}:{sec.nseg}:{','.join(self.mechanisms[sec.name()])}"
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
        raise UnsupportedObjectError(f"several sections share the names {dup}: sections are identified by "
                                     "name (give each cell a name, e.g. a __repr__ with its gid)")
    for sec, name in zip(inv.sections, names):
        inv.mechanisms[name] = [m for m in inv.density_types if sec.has_membrane(m)]
    inv.netcons = list(h.List("NetCon"))
    inv.links = [_link(nc, inv.names) for nc in inv.netcons]
    for kind, artificial in inv.point_types:
        members = list(h.List(kind))
        if members:
            inv.points[kind] = members
    _identify_points(inv, _artificial_gids(inv.links, pc))
    inv.netcon_ids = _netcon_ids(inv)
    inv.randoms = list(h.List("Random"))
    return inv


@dataclass
class Link:
    """One NetCon's ends, asked of NEURON once: its source (an artificial
    cell, or a segment's key) and target (a point process), and srcgid."""

    netcon: object
    pre: object            # the source point process, or None
    pre_ptr: int
    preseg: str            # the source segment's key, or None
    presec: object         # the source segment's section, or None
    syn: object            # the target, or None
    syn_ptr: int
    srcgid: int


def _link(nc, names):
    pre, syn, seg, sec = nc.pre(), nc.syn(), None, None
    if pre is None:
        preseg = nc.preseg()
        if preseg is not None:
            seg, sec = segment_key(preseg, names), preseg.sec
    return Link(nc, pre, pre.hocobjptr() if pre is not None else 0, seg, sec, syn,
                syn.hocobjptr() if syn is not None else 0, int(nc.srcgid()))


def _artificial_gids(links, pc):
    """``{("pp", pointer): gid}`` of artificial cells registered with pc.cell."""
    if pc is None:
        return {}
    return {("pp", link.pre_ptr): link.srcgid for link in links
            if link.pre is not None and link.syn is None and link.srcgid >= 0 and pc.gid_exists(link.srcgid)}


def segment_key(seg, names=None):
    """``soma(0)``: a segment is its section's name and index (``nseg`` for x = 1)."""
    sec = seg.sec
    name = names[sec] if names is not None and sec in names else sec.name()
    return f"{name}({min(int(seg.x * sec.nseg), sec.nseg)})"


def _identify_points(inv, gids):
    ptr_id = {}
    # located point processes: their segment and rank among their kind there
    for kind, members in inv.points.items():
        ranks, ids = {}, []
        for pp in members:
            if pp.has_loc():
                where = segment_key(pp.get_segment(), inv.names)
                ranks[where] = ranks.get(where, -1) + 1
                ids.append(f"{kind}@{where}#{ranks[where]}")
            else:
                ids.append(None)
        inv.point_ids[kind] = ids
        for pp, ident in zip(members, ids):
            if ident is not None:
                ptr_id[pp.hocobjptr()] = ident
    # artificial cells: a gid, else the identities of what their NetCons drive
    # (a target not yet identified gives its hoc name: positional, so another
    # creation order then fails the identity check rather than mismatching)
    drives = {}
    for link in inv.links:
        if link.pre is not None and link.syn is not None:
            drives.setdefault(link.pre_ptr, []).append(ptr_id.get(link.syn_ptr) or link.syn.hname())
    for kind, members in inv.points.items():
        ids = inv.point_ids[kind]
        for i, pp in enumerate(members):
            if ids[i] is None:
                gid = gids.get(("pp", pp.hocobjptr()))
                targets = drives.get(pp.hocobjptr())
                ids[i] = f"{kind}#gid{gid}" if gid is not None else (
                    f"{kind}->{'+'.join(sorted(targets))}" if targets else pp.hname())
        _rank_duplicates(ids)
        for pp, ident in zip(members, ids):
            ptr_id[pp.hocobjptr()] = ident
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
        if link.pre is not None:
            src = inv.ptr_ids[link.pre_ptr]
        elif link.srcgid >= 0:   # a gid's spikes, wherever its cell is (pc.cell, pc.gid_connect)
            src = f"gid{link.srcgid}"
        elif link.preseg is not None:
            src = link.preseg
        else:
            src = "none"
        ids.append(f"{src}->{'none' if link.syn is None else inv.ptr_ids[link.syn_ptr]}")
    _rank_duplicates(ids)
    return ids
