"""The whole model of a process as checkpoint's populations and projections.

``walk`` takes stock once (:mod:`.inventory`, :mod:`.ranges`,
:mod:`.netcons`); ``state`` turns it into a :class:`NetworkState`:

* a population per segment group and per point-process type (its arrays
  from :mod:`.ranges`, RANDOM streams included),
* a projection per pair of source and target populations of NetCons,
* the population ``NEURON`` (one member): the globals (:mod:`.clock`), the
  events in flight and NEURON's SaveState bytes (:mod:`.savestate`),
* an :class:`RngState` per hoc ``Random``,

and ``meta["neuron"]``: the structure fingerprint and every member's and
NetCon's identity, by population and projection.
"""

import sys
import warnings
from dataclasses import dataclass

import numpy as np

from ...errors import CheckpointWarning, UnsupportedObjectError
from ...state import ArrayInfo, PopulationState, RngState
from . import clock, inventory, netcons, parallel, randoms, ranges, savestate

#: the population of the model's own state
MODEL = "NEURON"
#: the rng kind of the model's own state under MPI
MODEL_KIND = "neuron.model"
#: the NEURON population's arrays of events in flight
EVENTS = ("netcon_events.t", "netcon_events.netcon", "self_events.t", "self_events.flag", "self_events.target")


@dataclass
class Model:
    """What ``describe`` found, for ``apply`` (``plan.findings``)."""

    inv: object
    segments: dict
    points: dict
    wiring: object
    fingerprint: str
    #: the ParallelContext numbering (:mod:`.parallel`), or None
    par: object = None

    @property
    def sharded(self):
        """Under MPI: the model's own state travels as an rng entry of the
        rank (a population of one per rank cannot move to another partition)."""
        return self.par is not None and self.par.nhost > 1

    @property
    def groups(self):
        return {**self.segments, **self.points}

    def doubles(self):
        return sum(g.size * len(g.variables) for g in self.groups.values())


def walk(h):
    inv = inventory.take(h, h.ParallelContext())
    segments = ranges.segment_groups(h, inv)
    points = ranges.point_groups(h, inv)
    clash = sorted(set(segments) & set(points) | ({MODEL, netcons.GID} & (set(segments) | set(points))))
    if clash:
        raise UnsupportedObjectError(f"sections named like point-process types or {MODEL!r}: {clash}")
    par = parallel.detect(h, inv)
    if par is not None and not parallel.number(par, inv, segments, points):
        par = None
    return Model(inv, segments, points, netcons.wiring(inv, segments, points, par), inv.fingerprint(), par)


def refuse_uncapturable(h, model):
    """What no checkpoint of NEURON's state can hold: refused or warned at save."""
    rxd = sys.modules.get("neuron.rxd")
    if rxd is not None and getattr(getattr(rxd, "species", None), "_all_species", None):
        raise UnsupportedObjectError(
            "the model uses rxd (reaction-diffusion), whose state this adapter does not capture"
        )
    if model.inv.randoms:
        warnings.warn(
            f"{len(model.inv.randoms)} hoc Random object(s): their stream positions are saved, not "
            "a distribution's own state (the normal distribution's cached second value); "
            "NMODL RANDOM variables restart exactly",
            CheckpointWarning,
            stacklevel=5,
        )


def state_parts(h, model, values=True):
    """``(populations, projections, rng, meta_neuron)`` of the model."""
    pops = {}
    for group in model.groups.values():
        pops[group.name] = _population(h, group, values)
    rng = randoms.capture(model.inv)
    own = _model_population(h, model, values)
    if model.sharded:
        scalars = [k for k, info in own.info.items() if info.scope == "global"]
        rng[MODEL] = RngState(
            MODEL,
            MODEL_KIND,
            {k: float(own[k]) for k in scalars},
            {k: v for k, v in own.arrays.items() if k not in scalars},
        )
    else:
        pops[MODEL] = own
    projections = {name: netcons.projection_state(p, values) for name, p in model.wiring.projections.items()}
    meta = {
        "fingerprint": model.fingerprint,
        "gids": model.par is not None,
        "members": {name: list(g.ids) for name, g in model.groups.items()},
        "netcons": {name: list(p.ids) for name, p in model.wiring.projections.items()},
    }
    return pops, projections, rng, meta


def _population(h, group, values):
    if values:
        arrays = group.gather(h)
    else:
        arrays = {ranges.label(var, index): np.zeros(group.size) for var, _, index in group.variables}
    info = {
        ranges.label(var, index): ArrayInfo(kind, "neuron", "mV" if var == "v" else None)
        for var, kind, index in group.variables
    }
    streams = (
        ranges.random_arrays(group)
        if values
        else {
            f"{r}.{k}": np.zeros(group.size, np.int64 if k != "seq" else np.float64)
            for r in group.randoms
            for k in ("id1", "id2", "id3", "seq")
        }
    )
    for name, array in streams.items():
        arrays[name] = array
        info[name] = ArrayInfo("internal", "neuron", None)
    return PopulationState(
        group.name, group.size, arrays=arrays, info=info, ids=group.global_ids, global_size=group.global_size
    )


def _model_population(h, model, values):
    arrays = {k: np.array(v) for k, v in clock.read(h).items()}
    info = {k: ArrayInfo("parameter", "global", None) for k in arrays}
    free = (
        netcons.events_in_flight(h, model.wiring, model.points)
        if values
        else {k: np.zeros(0, np.int64 if k.endswith(("netcon", "target")) else np.float64) for k in EVENTS}
    )
    free["savestate"] = savestate.to_bytes(h) if values else np.zeros(0, np.uint8)
    for k, v in free.items():
        arrays[k] = v
        info[k] = ArrayInfo("internal", "free", None)
    return PopulationState(MODEL, 1, arrays=arrays, info=info)
