"""The contract of a simulator adapter.

An adapter knows one simulator and nothing about files: it turns the
simulator's objects into a :class:`~checkpoint.state.NetworkState` and
applies a validated :class:`~checkpoint.restore.Plan` back to them.
:func:`checkpoint.adapters.adapter_for` picks it from the class hierarchy
of the object passed to save/load.

Call order
----------

Saving
    ``capture(populations, projections)`` returns the state.  Its arrays
    may be views of the simulator's own memory: formats write them at once,
    and the Checkpointer copies them before writing in the background.
    Changes nothing.

Loading
    1. ``describe(populations, projections)``: what the restore plan
       compares the file with (names, shapes, dtypes, connectivity; values
       need not be in order).  What ``apply`` will need of what it found
       (an order, a status read from the simulator) goes in the returned
       state's ``findings``, an object of the adapter's own; the plan
       carries it to ``apply`` as ``plan.findings``.  An adapter keeps no
       per-load state on itself, so one adapter may serve several loads.
       Called once per load.  Changes nothing.
    2. ``before_plan(file_state, model_state, path)``: check the
       adapter's own ``meta`` of the file, refuse a file that cannot be
       meant for this model, and read an older layout of the file's state
       as today's.  Changes nothing in the simulator or in the model's
       state; returns a :class:`NetworkState` of what it adds to the
       model's (objects the file names that the model can make, and the
       findings that name them), or None.
    3. :func:`checkpoint.restore.make_plan` matches and validates.
    4. ``apply(plan)``, or ``apply_reversibly(plan)`` which returns an
       :class:`~checkpoint.restore.UndoLog` the caller may still undo (every
       rank of an MPI run applies, or none).  First every check the
       simulator would fail on (``check_rng`` and the adapter's own), then
       the changes, each recorded in one ``UndoLog``: a failure midway puts
       back everything already changed, and re-raises.

Each loop turn of a Checkpointer
    ``clock()`` returns ``(time in ms, step)``.  Changes nothing.

Capabilities
------------

Class attributes say what an adapter can do, so callers ask instead of
testing its type, and each is consulted by library code:
:attr:`Adapter.shardable` (``distributed``: a rank's part can be one shard
of an MPI checkpoint), :attr:`Adapter.captures_monitors` (``local.save``
warns when ``monitors=True`` has nothing to save),
:attr:`Adapter.restores_monitors` (``local.prepare_load`` warns when a
load cannot put recorded events back), :attr:`Adapter.exact_restart`
(the Checkpointer says on resume that a restart is a continuation),
:attr:`Adapter.restores_dt` (the restore plan warns about another time
step unless the adapter sets it), :attr:`Adapter.takes_simulator_order`
(``local.prepare_load`` reads per-synapse arrays in the file's simulator
order for it), :attr:`Adapter.records` (a Checkpointer with
``recordings=True`` streams its ``recorders()``, and refuses to start for an
adapter without).  The conformance suite every adapter runs is
``tests/adapter_contract.py``.

Recordings
----------

An adapter that :attr:`~Adapter.records` returns its recording devices from
``recorders()``: one :class:`Recorder` each, named as ``checkpoint.read()``
names the object.  A Checkpointer with ``recordings=True`` calls
``recorders()`` once, then ``take()`` on each at every checkpoint (and
``drop()`` after a restore: what a monitor held is from before it); the
segment files are
:mod:`checkpoint.recordings`' business, not the adapter's.
"""

import abc
from typing import Optional, Tuple

import numpy as np

from .._version import __version__
from ..errors import CorruptCheckpointError
from ..restore import Plan, UndoLog
from ..state import NetworkState
from .versions import warn_if_untested

_NUMPY_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class Adapter(abc.ABC):
    """One simulator's adapter (see the module docstring for the call order)."""

    #: the simulator's name and version, recorded in every file's meta
    simulator = "unknown"
    simulator_version = None
    #: a rank's part can be saved as one shard of an MPI checkpoint
    shardable = False
    #: ``monitors=True`` captures recording devices
    captures_monitors = False
    #: ``monitors=True`` also restores what they recorded (NEST cannot: its
    #: recorders' events are saved for analysis only)
    restores_monitors = False
    #: a restart from a checkpoint continues bit for bit
    exact_restart = True
    #: a load sets the file's time step (otherwise another dt is warned about)
    restores_dt = False
    #: ``apply`` takes per-synapse arrays in the file's simulator order
    #: (``Plan.simulator_order``) rather than CSR order, so that a file written
    #: in this simulator's own order is never permuted (Brian2)
    takes_simulator_order = False
    #: ``recorders()`` gives recording devices a Checkpointer can take and empty
    records = False

    def __init__(self, obj):
        self.obj = obj

    def base_meta(self, content: str, time: float, step: int, dt: Optional[float]) -> dict:
        """The meta every capture starts from (every adapter's capture calls
        it): it also warns, once, about a simulator release the tests do not run."""
        self.warn_if_untested()
        return {
            "time": float(time),
            "step": int(step),
            "dt": None if dt is None else float(dt),
            "content": content,
            "simulator": {"name": self.simulator, "version": self.simulator_version},
            "library": {"name": "checkpoint", "version": __version__},
        }

    @abc.abstractmethod
    def capture(self, populations: bool = True, projections: bool = True) -> NetworkState:
        """The state of the object: populations, projections, clock, generators."""

    def describe(self, populations: bool = True, projections: bool = True) -> NetworkState:
        """What the restore plan compares a file with: names, shapes, dtypes
        and connectivity.  Values need not be in order, so adapters may skip
        the work of ordering them; by default, :meth:`capture`."""
        return self.capture(populations=populations, projections=projections)

    def before_plan(self, file_state: NetworkState, model_state: NetworkState, path) -> Optional[NetworkState]:
        """Raise before matching if the file cannot be meant for this model
        (e.g. automatic object names that differ); return what the model
        adds for the file, or None (the default)."""
        return None

    def clock(self) -> Tuple[float, int]:
        """``(time in ms, step)``; called once per loop turn by the Checkpointer."""
        meta = self.capture(populations=False, projections=False).meta
        return meta["time"], meta["step"]

    def recorders(self) -> list:
        """The :class:`Recorder` of each recording device, by name (``[]`` by default)."""
        return []

    def apply(self, plan: Plan) -> None:
        """Apply ``plan``; on any failure undo what was done and re-raise."""
        self.apply_reversibly(plan)

    @abc.abstractmethod
    def apply_reversibly(self, plan: Plan) -> UndoLog:
        """Apply ``plan`` and return the :class:`UndoLog` of its changes; on a
        failure, undo them and re-raise."""

    def warn_if_untested(self) -> None:
        """A :class:`~checkpoint.CheckpointWarning`, once per process, when the
        installed simulator is not a release the tests run
        (:data:`checkpoint.adapters.versions.TESTED_VERSIONS`)."""
        warn_if_untested(self.simulator, self.simulator_version, stacklevel=5)

    # -- hooks ---------------------------------------------------------------

    def check_rng(self, plan: Plan) -> None:
        """Raise before any change if a random generator state cannot be set."""
        for name, rng in plan.rng.items():
            check_numpy_rng_state(rng, plan.report.path)


class Recorder(abc.ABC):
    """One recording device, as a Checkpointer with ``recordings=True`` sees it.

    ``kind`` is ``"events"`` (arrays of one value per event: ``i`` the
    neuron, ``t`` the time, and any recorded variable) or ``"samples"``
    (``t`` the sample times; each variable an array of times x recorded
    neurons; ``index``, the recorded neurons, is given by :meth:`index`).
    Every array's first axis is the record axis, so that intervals
    concatenate.  Times are in ms of the run's own clock, continuous across
    restarts; other values in the unit ``units`` gives (SI for Brian2).
    """

    #: the object's name, as ``checkpoint.read()`` names it
    name = None
    #: "events" or "samples"
    kind = "events"

    @abc.abstractmethod
    def take(self) -> dict:
        """``{var: array}`` of what was recorded since the last take, and
        empty the device in place (the arrays returned are the caller's)."""

    def drop(self) -> None:
        """Empty the device, discarding what it holds: after a restore, it
        is from before it (or from nothing the run will keep)."""
        self.take()

    def units(self) -> dict:
        """``{var: unit}`` of the arrays :meth:`take` returns, where known."""
        return {"t": "ms"}

    def index(self):
        """The recorded neurons of a ``samples`` recorder (None: not known)."""
        return None


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
        raise CorruptCheckpointError(
            f"random generator state rejected: {exc}", path=path, obj=f"rng {rng.name}"
        ) from None
