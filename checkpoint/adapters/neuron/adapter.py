"""The NEURON adapter class (the parts live in the package's modules)."""

import contextlib
import warnings

from ...errors import CheckpointWarning, CorruptCheckpointError, StructureMismatchError, UnsupportedObjectError
from ...restore import UndoLog
from ...state import NetworkState
from ..base import Adapter
from .model import MODEL
from . import clock, identity, model as model_, netcons, randoms, ranges, savestate


class NEURONAdapter(Adapter):
    """Checkpoints the whole NEURON model of the process (``neuron.h``).

    A file whose structure fingerprint is the model's restores exactly
    (NEURON's SaveState plus the readable arrays); one with the same
    identities built in another order continues from the readable arrays,
    by identity, warned; anything else is refused before any change.
    """

    simulator = "NEURON"
    shardable = True
    captures_monitors = False
    restores_monitors = False
    exact_restart = True
    restores_dt = True
    takes_simulator_order = False

    def __init__(self, obj, monitors=False):
        import neuron
        from neuron import h

        if obj is not h:
            raise UnsupportedObjectError(
                f"cannot checkpoint a NEURON {type(obj).__name__} on its own: pass "
                "neuron.h, the whole model of the process"
            )
        super().__init__(obj)
        self.h = h
        self.simulator_version = neuron.__version__

    def _walk(self):
        try:
            return model_.walk(self.h)
        except RuntimeError as exc:  # NEURON's own errors are RuntimeErrors
            raise UnsupportedObjectError(f"NEURON: {exc}") from None

    def capture(self, populations=True, projections=True):
        t, step, dt = clock.now(self.h)
        state = NetworkState(meta=self.base_meta("network", t, step, dt))
        if not (populations or projections):
            return state
        found = self._walk()
        model_.refuse_uncapturable(self.h, found)
        pops, projs, rng, meta = model_.state_parts(self.h, found)
        self._fill(state, pops, projs, rng, meta, populations, projections)
        return state

    def describe(self, populations=True, projections=True):
        t, step, dt = clock.now(self.h)
        state = NetworkState(meta=self.base_meta("network", t, step, dt))
        found = self._walk()
        pops, projs, rng, meta = model_.state_parts(self.h, found, values=False)
        self._fill(state, pops, projs, rng, meta, populations, projections)
        state.findings = found
        return state

    @staticmethod
    def _fill(state, pops, projs, rng, meta, populations, projections):
        state.populations = pops if populations else {}
        state.projections = projs if projections else {}
        state.rng = rng
        state.meta["neuron"] = meta

    def clock(self):
        return clock.now(self.h)[:2]

    def before_plan(self, file_state, model_state, path):
        identity.check(file_state, model_state, path)

    def check_rng(self, plan):
        randoms.check(randoms.streams(plan), plan.report.path)

    def apply_reversibly(self, plan):
        found, path = plan.findings, plan.report.path
        if plan.connectivity:
            name = next(iter(plan.connectivity))
            raise StructureMismatchError("a load cannot rewire NEURON's NetCons", path=path, obj=name)
        by = plan.by_object()
        own = identity.own_state(by, plan, path)
        fingerprint = (plan.file_meta.get("neuron") or {}).get("fingerprint")
        exact = "savestate" in own and fingerprint == found.fingerprint
        unsafe = exact and not savestate.reader_is_safe()
        exact = exact and not unsafe
        self.check_rng(plan)
        identity.check_streams(by, found, path)
        identity.check_netcons(by, found, path)
        events = identity.check_events(own, found, path)
        if exact:
            limit = savestate.bound(found.doubles(), events)
            savestate.check(own["savestate"], fingerprint, found.fingerprint, limit, path)
        with UndoLog() as log:  # NEURON's errors on a file's values: _naming, savestate.restore
            log.add(self._snapshot(found))
            self._restore(plan, by, own, found, exact)
        if not exact:
            why = (
                "the model's structure changed since this process last read a SaveState (NEURON's "
                "reader crashes once the model it read into is deleted)"
                if unsafe
                else "the model's structure (creation order) is not the file's"
                if own
                else "the file has no NEURON state of this rank's cells (another partition of the gids)"
            )
            warnings.warn(
                f"{path}: {why}: restored by identity from the readable arrays, as a continuation "
                "(artificial cells' next events and threshold detectors start afresh)",
                CheckpointWarning,
                stacklevel=3,
            )
        return log

    def _restore(self, plan, by, own, found, exact):
        h = self.h
        if exact:
            savestate.restore(h, own["savestate"], plan.report.path)
        else:
            # a fresh queue and initialised mechanisms, at the file's time: fcurrent
            # also gives the threads that time (SaveState asserts they agree)
            h.finitialize()
            if plan.clock is not None:
                h.t = float(plan.clock["time"])
            h.fcurrent()
        path = plan.report.path
        for name, group in found.groups.items():
            values = by.get(("populations", name))
            if values:
                with _naming(path, name):
                    group.scatter(h, {k: v for k, v in values.items() if not _is_stream(k)})
                    ranges.set_randoms(group, values)
        for name, proj in found.wiring.projections.items():
            values = by.get(("projections", name))
            if values:
                with _naming(path, name):
                    netcons.write(proj, values)
        with _naming(path, MODEL):
            clock.write(h, own)  # its own names only; the snapshot undoes it
        if plan.clock is not None:
            h.t = float(plan.clock["time"])
        dt = plan.file_meta.get("dt")
        if dt is not None:
            h.dt = float(dt)
        randoms.write(found.inv, randoms.streams(plan))
        if not exact:
            if "netcon_events.t" in own:
                netcons.requeue(found.wiring, own["netcon_events.t"], own["netcon_events.netcon"], h.t)
            if h.CVode().active():
                h.CVode().re_init()

    def _snapshot(self, found):
        """The undo of a whole restore: NEURON's SaveState of the model now,
        and what it leaves out (parameters, NetCons, streams, clock)."""
        h = self.h
        put_back = savestate.snapshot(h)
        values = {name: g.gather(h) for name, g in found.groups.items()}
        streams = {name: ranges.random_arrays(g) for name, g in found.groups.items()}
        weights = {name: netcons.read(p) for name, p in found.wiring.projections.items()}
        globals_ = clock.read(h)
        positions = {r.hname(): float(r.seq()) for r in found.inv.randoms}
        t, dt = float(h.t), float(h.dt)

        def undo():
            clock._set(h, globals_)
            put_back()
            for name, group in found.groups.items():
                group.scatter(h, values[name])
                ranges.set_randoms(group, streams[name])
            for name, proj in found.wiring.projections.items():
                netcons.write(proj, weights[name])
            for r in found.inv.randoms:
                r.seq(positions[r.hname()])
            h.t, h.dt = t, dt

        return undo


@contextlib.contextmanager
def _naming(path, obj):
    """A NEURON error on a file's value, as a CheckpointError naming the object."""
    try:
        yield
    except (RuntimeError, ValueError, TypeError, OverflowError) as exc:
        raise CorruptCheckpointError(f"NEURON refused a value: {exc}", path=path, obj=obj) from None


def _is_stream(var):
    return var.endswith((".id1", ".id2", ".id3", ".seq"))
