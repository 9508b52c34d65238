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

from dataclasses import dataclass, field

import numpy as np

from ...state import ArrayInfo, ProjectionState
from .inventory import natural_key, segment_key

NONE = "none"


@dataclass
class Projection:
    name: str
    pre: str
    post: str
    shape: tuple
    netcons: list            # in CSR order
    ids: list
    indptr: np.ndarray
    indices: np.ndarray
    weights: int = 1


@dataclass
class Wiring:
    projections: dict = field(default_factory=dict)
    #: every NetCon in identity order, and its position there by hocobjptr
    ordered: list = field(default_factory=list)
    position: dict = field(default_factory=dict)


def wiring(inv, segment_groups, point_groups):
    """The projections of the model's NetCons."""
    member = {}
    for group in list(segment_groups.values()) + list(point_groups.values()):
        for i, ident in enumerate(group.ids):
            member[ident] = (group.name, i)
    sizes = {g.name: g.size for g in list(segment_groups.values()) + list(point_groups.values())}
    sizes[NONE] = 1
    pairs = {}
    for nc, ident in zip(inv.netcons, inv.netcon_ids):
        pre, syn = nc.pre(), nc.syn()
        if pre is not None:
            source = member[inv.ptr_ids[pre.hocobjptr()]]
        elif nc.preseg() is not None:
            source = member[segment_key(nc.preseg())]
        else:
            source = (NONE, 0)
        target = member[inv.ptr_ids[syn.hocobjptr()]] if syn is not None else (NONE, 0)
        pairs.setdefault((source[0], target[0]), []).append((target[1], natural_key(ident), source[1], nc, ident))
    out = Wiring()
    for (pre, post), items in sorted(pairs.items()):
        items.sort(key=lambda item: (item[0], item[1]))
        posts = np.array([item[0] for item in items], np.int64)
        indptr = np.zeros(sizes[post] + 1, np.int64)
        np.cumsum(np.bincount(posts, minlength=sizes[post]), out=indptr[1:])
        netcons = [item[3] for item in items]
        name = f"{pre}->{post}"
        out.projections[name] = Projection(
            name, pre, post, (sizes[post], sizes[pre]), netcons, [item[4] for item in items], indptr,
            np.array([item[2] for item in items], np.int64), int(netcons[0].wcnt()))
    for proj in out.projections.values():
        out.ordered.extend(proj.netcons)
    out.position = {nc.hocobjptr(): i for i, nc in enumerate(out.ordered)}
    return out


def projection_state(proj, values=True):
    """The :class:`ProjectionState` of one projection."""
    state = ProjectionState(proj.name, proj.pre, proj.post, proj.shape, proj.indptr, proj.indices,
                            target="netcon")
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
    netcons = proj.netcons
    out = {"weight": np.array([nc.weight[0] for nc in netcons], np.float64)}
    for k in range(1, proj.weights):
        out[f"weight{k}"] = np.array([nc.weight[k] for nc in netcons], np.float64)
    out["delay"] = np.array([nc.delay for nc in netcons], np.float64)
    out["threshold"] = np.array([nc.threshold for nc in netcons], np.float64)
    out["active"] = np.array([bool(nc.active()) for nc in netcons], np.int8)
    return out


def write(proj, values):
    """Set the NetCons' values (validated arrays in CSR order); returns the undo."""
    before = read(proj)
    _set(proj, values)
    return lambda: _set(proj, before)


def _set(proj, values):
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
    out = {"netcon_events.t": times.as_numpy().copy(),
           "netcon_events.netcon": np.array([position.get(netcons.o(i).hocobjptr(), -1)
                                             for i in range(int(netcons.count()))], np.int64)}
    times, flags, targets = h.Vector(), h.Vector(), h.List()
    cvode.event_queue_info(3, times, flags, targets)
    member = {}
    offset = 0
    for group in point_groups.values():
        for i, pp in enumerate(group.members):
            member[pp.hocobjptr()] = offset + i
        offset += group.size
    out["self_events.t"] = times.as_numpy().copy()
    out["self_events.flag"] = flags.as_numpy().copy()
    out["self_events.target"] = np.array([member.get(targets.o(i).hocobjptr(), -1)
                                          for i in range(int(targets.count()))], np.int64)
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
