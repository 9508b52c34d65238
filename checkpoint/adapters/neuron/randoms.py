"""hoc ``Random`` objects: their stream positions.

NMODL ``RANDOM`` variables (Random123 streams of point processes and
density mechanisms) are the populations' arrays (:mod:`.ranges`).  A hoc
``Random`` keeps its position in ``seq()`` (Random123, MCellRan4), saved as
an :class:`~checkpoint.state.RngState` named by its hoc name (``Random[0]``:
creation order).  NEURON does not expose a distribution's own state (the
normal distribution's cached second value), so a restored hoc Random
continues its stream from the saved position, warned at save.
"""

import math

from ...errors import CorruptCheckpointError
from ...state import RngState

KIND = "neuron.Random"


def capture(inv):
    return {r.hname(): RngState(r.hname(), KIND, {"seq": float(r.seq())}) for r in inv.randoms}


def streams(plan):
    """The plan's hoc Random positions: not the model's own state (an rng
    entry under MPI), nor those reseeded for another partition (their
    position means nothing there: they keep theirs, and the report says so)."""
    reseeded = set(plan.report.reseeded)
    return {name: rng for name, rng in plan.rng.items() if rng.kind == KIND and f"rng.{name}" not in reseeded}


def check(plan_rng, path):
    for name, rng in plan_rng.items():
        seq = rng.state.get("seq") if isinstance(rng.state, dict) else None
        if (
            not isinstance(seq, (int, float))
            or isinstance(seq, bool)
            or not math.isfinite(seq)
            or seq < 0
            or seq >= 2.0**53
            or seq != int(seq)
        ):
            raise CorruptCheckpointError(
                f"the stream position {seq!r} is not an integer in [0, 2**53)", path=path, obj=f"rng {name}"
            )


def write(inv, plan_rng):
    """Set the positions; returns the undo."""
    by_name = {r.hname(): r for r in inv.randoms}
    before = {name: float(by_name[name].seq()) for name in plan_rng if name in by_name}
    for name, rng in plan_rng.items():
        if name in by_name:
            by_name[name].seq(float(rng.state["seq"]))

    def undo():
        for name, seq in before.items():
            by_name[name].seq(seq)

    return undo
