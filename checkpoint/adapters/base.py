"""What every simulator adapter provides.

An adapter knows one simulator and nothing about files.  ``capture`` returns
a :class:`~checkpoint.state.NetworkState` whose arrays may be views of the
simulator's own memory (formats write them straight away; the Checkpointer
copies them first when writing in the background).  ``apply`` carries out a
validated :class:`~checkpoint.restore.Plan` and, if the simulator rejects a
value midway, puts back what it had already changed.
"""

import numpy as np

from .._version import __version__
from ..errors import CorruptCheckpointError
from ..restore import swap_contents

_NUMPY_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class Adapter:
    """Base class: subclasses set ``simulator`` and implement
    ``capture`` and the ``_set_*`` hooks used by :meth:`apply`."""

    simulator = "unknown"
    simulator_version = None

    def __init__(self, obj):
        self.obj = obj

    def base_meta(self, content, time, step, dt):
        return {"time": float(time), "step": int(step), "dt": None if dt is None else float(dt),
                "content": content,
                "simulator": {"name": self.simulator, "version": self.simulator_version},
                "library": {"name": "checkpoint", "version": __version__}}

    def capture(self, populations=True, projections=True):
        raise NotImplementedError

    def describe(self, populations=True, projections=True):
        """What the restore plan compares a file with: names, shapes, dtypes
        and connectivity.  Values need not be in order, so adapters may skip
        the work of ordering them; by default, :meth:`capture`."""
        return self.capture(populations=populations, projections=projections)

    def before_plan(self, file_state, model_state, path):
        """Raise before matching if the file cannot be meant for this model
        (e.g. automatic object names that differ); a no-op by default."""

    def clock(self):
        """``(time in ms, step)``; called once per loop turn by the Checkpointer."""
        meta = self.capture(populations=False, projections=False).meta
        return meta["time"], meta["step"]

    def apply(self, plan):
        """Apply ``plan``; on any failure undo what was done and re-raise."""
        self.apply_reversibly(plan)

    def apply_reversibly(self, plan):
        """Apply ``plan`` and return a callable that undoes it (for a restore
        that all ranks of an MPI run must make or none); on a failure, undo
        and re-raise."""
        self.check_rng(plan)
        undo = []
        try:
            for name, (indptr, indices) in plan.connectivity.items():
                undo.append(self._set_connectivity(name, indptr, indices))
            for a in plan.assignments:
                undo.append(self._assign(a))
            if plan.clock is not None:
                undo.append(self._set_clock(plan.clock))
            for name, rng in plan.rng.items():
                undo.append(self._set_rng(name, rng))
        except BaseException:
            for step in reversed(undo):
                step()
            raise

        def undo_all():
            for step in reversed(undo):
                step()
        return undo_all

    # -- hooks ---------------------------------------------------------------

    def check_rng(self, plan):
        """Raise before any change if a random generator state cannot be set."""
        for name, rng in plan.rng.items():
            check_numpy_rng_state(rng, plan.report.path)

    def _assign(self, a):
        """Default for adapters whose arrays are numpy memory we own: swap the
        file's values in, keeping the old ones in the file's buffer as undo."""
        target = self._array(a.section, a.name, a.var)
        value = a.value
        if a.replace:
            return self._replace_array(a.section, a.name, a.var, value.astype(target.dtype, copy=False))
        if value.dtype == target.dtype and target.flags.c_contiguous and value.flags.c_contiguous:
            swap_contents(target, value)
            return lambda: swap_contents(target, value)
        old = target.copy()
        np.copyto(target, value, casting="safe")
        return lambda: np.copyto(target, old)


def check_numpy_rng_state(rng, path):
    """Raise :class:`CorruptCheckpointError` unless ``rng.state`` is a state
    numpy accepts for one of its bit generators (tried on a scratch one)."""
    state = rng.state if isinstance(rng.state, dict) else {}
    name = state.get("bit_generator")
    if name not in _NUMPY_BIT_GENERATORS:
        raise CorruptCheckpointError(f"unknown bit generator {name!r}", path=path, obj=f"rng {rng.name}")
    try:
        getattr(np.random, name)().state = state
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise CorruptCheckpointError(f"random generator state rejected: {exc}", path=path,
                                     obj=f"rng {rng.name}") from None
