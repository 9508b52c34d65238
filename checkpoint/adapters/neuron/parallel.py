"""Cells registered with a ParallelContext: members numbered by gid.

Under MPI every rank holds its own cells, and a checkpoint saved on N ranks
must load on M (:mod:`checkpoint.distributed`, :mod:`checkpoint.repartition`):
populations carry *global* ids.  A cell is the owner of its sections (those
of one Python cell object, ``sec.cell()``), of the point processes located
on them, and of the artificial cells without a location that drive them; a
member's global id is ``gid * per_cell + k``, ``k`` its rank among the
population's members of that cell, ``per_cell`` the largest such count over
all ranks.  NetCons from a gid (``pc.gid_connect``, and the spike detectors
``pc.cell`` registers) have the pre population ``gid``, indexed by gid.

Without any gid the model is numbered by position (one process).
"""

from dataclasses import dataclass, field

import numpy as np

from ...errors import UnsupportedObjectError
from .inventory import natural_key

GID = "gid"


@dataclass
class Parallel:
    pc: object
    rank: int
    nhost: int
    max_gid: int  # over every rank
    owner: dict = field(default_factory=dict)  # cell object, section or ("pp", ptr) -> gid


def detect(h, inv):
    """The ParallelContext numbering, or None when no cell has a gid (a
    collective call: every rank takes stock together)."""
    pc = h.ParallelContext()
    owner = {}
    for link in inv.links:
        if link.srcgid < 0 or link.pre_ptr and link.syn_ptr or not pc.gid_exists(link.srcgid):
            continue
        if link.pre_ptr:
            owner[("pp", link.pre_ptr)] = link.srcgid
        elif link.presec is not None:
            cell = link.presec.cell()
            owner[cell if cell is not None else link.presec] = link.srcgid
    max_gid = int(pc.allreduce(max(owner.values(), default=-1), 2))
    if max_gid < 0:
        return None
    return Parallel(pc, int(pc.id()), int(pc.nhost()), max_gid, owner)


def _owner_of_section(par, sec):
    cell = sec.cell()
    return par.owner.get(cell if cell is not None else sec)


def number(par, inv, segments, points):
    """Sort every group by global id and give it ``global_ids``/``global_size``."""
    owners = {}
    for name, group in segments.items():
        owners[name] = [_owner_of_section(par, sec) for sec in group.sections]
    drives = {}
    for link in inv.links:
        if link.pre_ptr and link.syn_ptr and link.syn.has_loc():
            drives.setdefault(link.pre_ptr, _owner_of_section(par, link.syn.get_segment().sec))
    for name, group in points.items():
        owners[name] = [_owner_of_point(par, pp, drives) for pp in group.members]
    missing = sorted(name for name, found in owners.items() if any(gid is None for gid in found))
    if missing:
        if par.nhost > 1:
            raise UnsupportedObjectError(
                f"under MPI every section and point process must belong to a cell "
                f"with a gid (pc.set_gid2node, pc.cell): not those of {missing}"
            )
        return False
    counts = {name: _per_cell(group, owners[name]) for name, group in {**segments, **points}.items()}
    per_cell = {}
    for counted in par.pc.py_allgather(counts):
        for name, count in counted.items():
            per_cell[name] = max(per_cell.get(name, 0), count)
    for name, group in segments.items():
        _number_segments(group, owners[name], per_cell[name], par.max_gid)
    for name, group in points.items():
        _number_points(group, owners[name], per_cell[name], par.max_gid)
    return True


def _owner_of_point(par, pp, drives):
    if pp.has_loc():
        return _owner_of_section(par, pp.get_segment().sec)
    gid = par.owner.get(("pp", pp.hocobjptr()))
    return gid if gid is not None else drives.get(pp.hocobjptr())


def _per_cell(group, owners):
    if group.sections is not None:
        totals = {}
        for sec, gid in zip(group.sections, owners):
            totals[gid] = totals.get(gid, 0) + sec.nseg
        return max(totals.values(), default=0)
    return max(np.bincount(np.asarray(owners, np.int64)).tolist(), default=0) if owners else 0


def _number_segments(group, owners, per_cell, max_gid):
    order = sorted(range(len(group.sections)), key=lambda i: (owners[i], natural_key(group.sections[i].name())))
    sections = [group.sections[i] for i in order]
    gids = [owners[i] for i in order]
    members, ids, global_ids, seen = [], [], [], {}
    for sec, gid in zip(sections, gids):
        for k, seg in enumerate(sec):
            members.append(seg)
            ids.append(f"{sec.name()}({k})")
            global_ids.append(gid * per_cell + seen.get(gid, 0))
            seen[gid] = seen.get(gid, 0) + 1
    group.sections, group.members, group.ids = sections, members, ids
    group.global_ids, group.global_size = np.array(global_ids, np.int64), (max_gid + 1) * per_cell


def _number_points(group, owners, per_cell, max_gid):
    order = sorted(range(group.size), key=lambda i: (owners[i], natural_key(group.ids[i])))
    seen, global_ids = {}, []
    for i in order:
        gid = owners[i]
        global_ids.append(gid * per_cell + seen.get(gid, 0))
        seen[gid] = seen.get(gid, 0) + 1
    group.members = [group.members[i] for i in order]
    group.ids = [group.ids[i] for i in order]
    group.global_ids, group.global_size = np.array(global_ids, np.int64), (max_gid + 1) * per_cell
