"""NetCons as projections, and the events in flight.

NetCons are grouped by the populations of their source and target: a
projection ``BallAndStick.soma->ExpSyn`` holds every NetCon from a soma
segment to an ExpSyn, in CSR order by target (ties in identity order).  A
NetCon without a target (a spike recorder) has post population ``none`` of
one member; one without a source (driven by ``NetCon.event``), pre ``none``.
Per-synapse arrays: ``weight`` (and ``weight1``... for longer weight
vectors), ``delay``, ``threshold``, ``active``.

Events in flight (``CVode.event_queue_info``) are saved as arrays: NetCon
events by delivery time and NetCon (index in identity order), self-events
of artificial cells by time, flag and target.  NEURON's SaveState restores
them exactly; a continuation re-queues the NetCon events.
"""

import itertools
from dataclasses import dataclass, field

import numpy as np

from ...errors import UnsupportedObjectError
from ...state import ArrayInfo, ProjectionState
from . import hocloops

NONE = "none"
#: the pre population of NetCons from a gid (:mod:`.parallel`)
GID = "gid"
#: under a ParallelContext, NetCons without a target (spike detectors) are
#: the projection ``<pre>->none@<population>``, rows its members (their sources)
NO_TARGET = "none@"


@dataclass
class Projection:
    name: str
    pre: str
    post: str
    shape: tuple
    netcons: list  # in CSR order
    ids: list
    indptr: np.ndarray
    indices: np.ndarray
    weights: int = 1
    ptrs: list = field(default_factory=list)  # the NetCons' addresses
    #: the hoc List of every NetCon and each of ours' index there (for :mod:`.hocloops`)
    source: object = None
    order: list = field(default_factory=list)
    _index: object = None

    def hoc_list(self, h):
        """``(List, Vector of indices)``: the NetCons in CSR order, for hoc loops."""
        if self._index is None:
            self._index = h.Vector(np.asarray(self.order, np.float64))
        return self.source, self._index


@dataclass
class Wiring:
    projections: dict = field(default_factory=dict)
    #: every NetCon in identity order, and its position there by hocobjptr
    ordered: list = field(default_factory=list)
    position: dict = field(default_factory=dict)


def wiring(inv, segment_groups, point_groups, par=None):
    """The projections of the model's NetCons.  ``par`` (:mod:`.parallel`):
    pre indices are global ids, NetCons from a gid have the pre population
    ``gid``; rows stay this rank's targets."""
    groups = {**segment_groups, **point_groups}
    member = {}
    for group in groups.values():  # identity -> (population, pre index, row), built in C loops
        index = map(int, group.global_ids) if par is not None else range(group.size)
        member.update(zip(group.ids, zip(itertools.repeat(group.name), index, range(group.size))))
    posts = {g.name: g.size for g in groups.values()}
    posts[NONE] = 1
    pres = {g.name: g.global_size if par is not None else g.size for g in groups.values()}
    pres[NONE] = 1
    if par is not None:
        pres[GID] = par.max_gid + 1
    pairs = {}
    for k, (link, ident) in enumerate(zip(inv.links, inv.netcon_ids)):
        if link.pre_ptr:
            source = member[inv.ptr_ids[link.pre_ptr]][:2]
        elif par is not None and link.srcgid >= 0:
            source = (GID, link.srcgid)
        elif link.preseg is not None:
            source = member.get(link.preseg)
            if source is None:
                raise UnsupportedObjectError(
                    f"NetCon {ident}: its source is at a section's end ({link.preseg}), "
                    "not in a segment: put it at an interior point, e.g. soma(0.5)"
                )
            source = source[:2]
        else:
            source = (NONE, 0)
        if link.syn_ptr:
            target = member[inv.ptr_ids[link.syn_ptr]]
        elif par is not None:  # no target: rows are the source's members, as shards need real populations
            target = _own_source(link, inv, member, ident)
        else:
            target = (NONE, 0, 0)
        pairs.setdefault((source[0], target[0]), []).append((target[2], source[1], ident, link.netcon, link.ptr, k))
    out, post_sizes = Wiring(), posts
    for (pre, post), items in sorted(pairs.items()):
        rows_of = post[len(NO_TARGET) :] if post.startswith(NO_TARGET) else post
        items.sort(key=lambda item: item[:3])  # by target, then source, then identity
        rows = np.array([item[0] for item in items], np.int64)
        indptr = np.zeros(post_sizes[rows_of] + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=post_sizes[rows_of]), out=indptr[1:])
        netcons = [item[3] for item in items]
        idents = [item[2] for item in items]
        name = f"{pre}->{post}"
        out.projections[name] = Projection(
            name,
            pre,
            rows_of,
            (post_sizes[rows_of], pres[pre]),
            netcons,
            idents,
            indptr,
            np.array([item[1] for item in items], np.int64),
            int(netcons[0].wcnt()),
            [item[4] for item in items],
            inv.netcon_list,
            [item[5] for item in items],
        )
    for proj in out.projections.values():
        out.ordered.extend(proj.netcons)
    out.position = {ptr: i for i, ptr in enumerate(p for proj in out.projections.values() for p in proj.ptrs)}
    return out


def _own_source(link, inv, member, ident):
    """A target-less NetCon's row: the member it detects spikes of."""
    if link.pre_ptr:
        found = member[inv.ptr_ids[link.pre_ptr]]
    else:
        found = member.get(link.preseg) if link.preseg is not None else None
    if found is None:
        raise UnsupportedObjectError(
            f"NetCon {ident}: under a ParallelContext a NetCon without a target "
            "needs a source in a segment or an artificial cell"
        )
    return (NO_TARGET + found[0], found[1], found[2])


def projection_state(proj, values=True):
    """The :class:`ProjectionState` of one projection."""
    state = ProjectionState(proj.name, proj.pre, proj.post, proj.shape, proj.indptr, proj.indices, target="netcon")
    arrays = read(proj) if values else {k: np.zeros(len(proj.netcons), d) for k, d in _dtypes(proj).items()}
    for var, array in arrays.items():
        kind = "parameter" if var != "active" else "internal"
        state.arrays[var] = array
        state.info[var] = ArrayInfo(kind, "synapse", "ms" if var == "delay" else "mV" if var == "threshold" else None)
    return state


def _dtypes(proj):
    names = ["weight"] + [f"weight{k}" for k in range(1, proj.weights)] + ["delay", "threshold"]
    return {**{n: np.float64 for n in names}, "active": np.int8}


def read(proj):
    """``{variable: array}`` of the NetCons' values, in one hoc loop."""
    from neuron import h

    table = hocloops.read_netcons(h, *proj.hoc_list(h), proj.weights)
    out = {("weight" if k == 0 else f"weight{k}"): table[k].copy() for k in range(proj.weights)}
    out["delay"], out["threshold"] = table[proj.weights].copy(), table[proj.weights + 1].copy()
    out["active"] = (table[proj.weights + 2] != 0).astype(np.int8)
    return out


def _columns(proj):
    return ["weight"] + [f"weight{k}" for k in range(1, proj.weights)] + ["delay", "threshold", "active"]


def write(proj, values):
    """Set the NetCons' values (validated arrays in CSR order), in one hoc
    loop; arrays of another length (none, once validated) one by one."""
    from neuron import h

    n, columns = len(proj.netcons), _columns(proj)
    given = {var: np.asarray(values[var], np.float64).reshape(-1) for var in columns if var in values}
    if any(array.size != n for array in given.values()):
        return _write_each(proj, values)
    table = np.zeros((len(columns), n), np.float64)
    for k, var in enumerate(columns):
        if var in given:
            table[k] = given[var]
    hocloops.write_netcons(h, *proj.hoc_list(h), proj.weights, table, [var in given for var in columns])


def _write_each(proj, values):
    for k in range(proj.weights):
        var = "weight" if k == 0 else f"weight{k}"
        if var in values:
            for nc, w in zip(proj.netcons, np.asarray(values[var], np.float64)):
                nc.weight[k] = float(w)
    for var in ("delay", "threshold"):
        if var in values:
            for nc, x in zip(proj.netcons, np.asarray(values[var], np.float64)):
                setattr(nc, var, float(x))
    if "active" in values:
        for nc, a in zip(proj.netcons, np.asarray(values["active"])):
            nc.active(bool(a))


def events_in_flight(h, wiring_, point_groups):
    """The queue as arrays: NetCon events and artificial cells' self-events."""
    cvode = h.CVode()
    times, netcons = h.Vector(), h.List()
    cvode.event_queue_info(2, times, netcons)
    position = wiring_.position
    out = {
        "netcon_events.t": times.as_numpy().copy(),
        "netcon_events.netcon": np.array([position.get(p, -1) for p in hocloops.addresses(h, netcons)], np.int64),
    }
    times, flags, targets = h.Vector(), h.Vector(), h.List()
    cvode.event_queue_info(3, times, flags, targets)
    member = {}
    offset = 0
    for group in point_groups.values():
        member.update(zip(group.ptrs, range(offset, offset + group.size)))
        offset += group.size
    out["self_events.t"] = times.as_numpy().copy()
    out["self_events.flag"] = flags.as_numpy().copy()
    out["self_events.target"] = np.array([member.get(p, -1) for p in hocloops.addresses(h, targets)], np.int64)
    return out


def requeue(wiring_, times, which, now):
    """Put NetCon events back (a continuation); returns how many were in the past."""
    late = 0
    for t, k in zip(np.asarray(times, np.float64), np.asarray(which, np.int64)):
        if t < now:
            late += 1
            continue
        wiring_.ordered[int(k)].event(float(t))
    return late
