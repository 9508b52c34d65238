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
    netcon_ids: list = field(default_factory=list)      # identity of each
    randoms: list = field(default_factory=list)         # hoc Random objects
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
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[:3]
        raise UnsupportedObjectError(f"several sections share the names {dup}: sections are identified by "
                                     "name (give each cell a name, e.g. a __repr__ with its gid)")
    for sec in inv.sections:
        inv.mechanisms[sec.name()] = [m for m in inv.density_types if sec.has_membrane(m)]
    inv.netcons = list(h.List("NetCon"))
    gids = _gids(inv.netcons, pc)
    for kind, artificial in inv.point_types:
        members = list(h.List(kind))
        if members:
            inv.points[kind] = members
    _identify_points(inv, gids)
    inv.netcon_ids = _netcon_ids(inv)
    inv.randoms = list(h.List("Random"))
    return inv


def _gids(netcons, pc):
    """``{id(cell or section): gid}`` of the cells registered with a ParallelContext."""
    gids = {}
    if pc is None:
        return gids
    for nc in netcons:
        gid = int(nc.srcgid())
        if gid >= 0 and pc.gid_exists(gid):
            source = nc.pre() if nc.pre() is not None else nc.preseg()
            if source is not None:
                gids[_source_key(nc)] = gid
    return gids


def segment_key(seg):
    sec = seg.sec
    return f"{sec.name()}({int(seg.x * sec.nseg)})" if seg.x < 1 else f"{sec.name()}({sec.nseg})"


def _source_key(nc):
    pre = nc.pre()
    if pre is not None:
        return ("pp", pre.hocobjptr())
    seg = nc.preseg()
    return ("seg", segment_key(seg)) if seg is not None else None


def _identify_points(inv, gids):
    ptr_id = {}
    # located point processes: their segment and rank among their kind there
    for kind, members in inv.points.items():
        ranks, ids = {}, []
        for pp in members:
            if pp.has_loc():
                where = segment_key(pp.get_segment())
                ranks[where] = ranks.get(where, -1) + 1
                ids.append(f"{kind}@{where}#{ranks[where]}")
            else:
                ids.append(None)
        inv.point_ids[kind] = ids
        for pp, ident in zip(members, ids):
            if ident is not None:
                ptr_id[pp.hocobjptr()] = ident
    # artificial cells: a gid, else the identities of what their NetCons drive
    drives = {}
    for nc in inv.netcons:
        pre, syn = nc.pre(), nc.syn()
        if pre is not None and syn is not None:
            drives.setdefault(pre.hocobjptr(), []).append(ptr_id.get(syn.hocobjptr(), syn.hname()))
    for kind, members in inv.points.items():
        ids = inv.point_ids[kind]
        for i, pp in enumerate(members):
            if ids[i] is None:
                gid = gids.get(("pp", pp.hocobjptr()))
                targets = drives.get(pp.hocobjptr())
                ids[i] = f"{kind}#gid{gid}" if gid is not None else (
                    f"{kind}->{'+'.join(sorted(targets))}" if targets else pp.hname())
                ptr_id[pp.hocobjptr()] = ids[i]
        _rank_duplicates(ids)
    inv.ptr_ids = ptr_id


def _rank_duplicates(ids):
    seen = {}
    for i, ident in enumerate(ids):
        seen[ident] = seen.get(ident, -1) + 1
        if seen[ident]:
            ids[i] = f"{ident}#{seen[ident]}"


def _netcon_ids(inv):
    ids = []
    for nc in inv.netcons:
        source = _source_key(nc)
        src = "none" if source is None else (source[1] if source[0] == "seg" else inv.ptr_ids[source[1]])
        if source is None and int(nc.srcgid()) >= 0:
            src = f"gid{int(nc.srcgid())}"
        syn = nc.syn()
        ids.append(f"{src}->{'none' if syn is None else inv.ptr_ids[syn.hocobjptr()]}")
    _rank_duplicates(ids)
    return ids
