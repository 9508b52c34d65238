"""The restore plan: match by name, validate everything, then apply.

:func:`make_plan` compares what a file holds with what the model has and
decides, before anything in the simulator changes, which arrays are
restored, which are kept (in the model, not in the file) and which are
skipped (in the file, not in the model).  Any size, shape, scope or dtype
that cannot fit raises :class:`StructureMismatchError` here.
"""

import warnings
from concurrent.futures import Future
from dataclasses import dataclass, field

from typing import Optional

import numpy as np

from .errors import CheckpointWarning, StructureMismatchError
from .hashing import checksum
from .state import check_connectivity

__all__ = ["RestoreReport", "Plan", "Assignment", "UndoLog", "make_plan", "start_connectivity_hashes", "swap_contents"]


@dataclass
class RestoreReport:
    """What :func:`checkpoint.load` did.

    Attributes
    ----------
    restored, kept, skipped : list of str
        ``"object.variable"``: set from the file; in the model but not in
        the file (value kept); in the file but not in the model (ignored).
    time, step : float, int or None
        The simulated time and step restored, if the clock was restored.
    path : str
        The file.
    reseeded : list of str
        ``"rng.name"``: generators reseeded rather than restored (a sharded
        checkpoint loaded onto another partition of the neurons).
    """

    path: Optional[str] = None
    restored: list = field(default_factory=list)
    kept: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    time: Optional[float] = None
    step: Optional[int] = None
    reseeded: list = field(default_factory=list)

    def __str__(self):
        lines = [
            f"restored {len(self.restored)} arrays from {self.path}"
            + (f" at t = {self.time:.10g} ms (step {self.step})" if self.time is not None else "")
        ]
        for title, names in (
            ("kept (not in the file)", self.kept),
            ("skipped (not in the model)", self.skipped),
            ("reseeded (another partition of the neurons)", self.reseeded),
        ):
            if names:
                lines.append(f"{title}: {', '.join(names)}")
        return "\n".join(lines)

    def warn(self):
        """Issue one :class:`CheckpointWarning` for skips and one for keeps."""
        if self.skipped:
            warnings.warn(
                f"{self.path}: in the file but not in the model, skipped: {', '.join(self.skipped)}",
                CheckpointWarning,
                stacklevel=4,
            )
        if self.kept:
            warnings.warn(
                f"{self.path}: in the model but not in the file, kept: {', '.join(self.kept)}",
                CheckpointWarning,
                stacklevel=4,
            )
        if self.reseeded:
            warnings.warn(
                f"{self.path}: loaded onto another partition of the neurons: random generators "
                f"cannot follow them and were reseeded from the checkpoint and the rank "
                f"({', '.join(self.reseeded)}); checkpoint.noise draws noise that restarts exactly",
                CheckpointWarning,
                stacklevel=4,
            )


@dataclass
class Assignment:
    """Set ``section[name].var`` to ``value``; ``replace`` when its length
    changes with the connectivity."""

    section: str
    name: str
    var: str
    value: np.ndarray
    replace: bool = False


@dataclass
class Plan:
    """Everything a restore will change, validated."""

    report: RestoreReport
    assignments: list = field(default_factory=list)
    connectivity: dict = field(default_factory=dict)  # projection name -> (indptr, indices)
    #: projection name -> ``(order, in_that_order)``: the file's simulator
    #: order of the synapses (:attr:`ProjectionState.simulator_order`), and
    #: whether the per-synapse values are in it rather than in CSR order
    #: (only for adapters with ``takes_simulator_order``)
    simulator_order: dict = field(default_factory=dict)
    clock: Optional[dict] = None  # {"step": int, "time": float}
    rng: dict = field(default_factory=dict)  # model rng name -> RngState
    file_meta: dict = field(default_factory=dict)  # the file's meta, for adapter specifics
    #: what the adapter's ``describe`` found (``NetworkState.findings``), for
    #: its ``apply``: adapters keep no per-load state on themselves
    findings: object = None

    def by_object(self):
        """``{(section, name): {var: value}}``: the assignments grouped by the
        object they change, with an (empty) entry for every projection whose
        connectivity changes, in the plan's order."""
        grouped = {}
        for a in self.assignments:
            grouped.setdefault((a.section, a.name), {})[a.var] = a.value
        for name in self.connectivity:
            grouped.setdefault(("projections", name), {})
        return grouped


class UndoLog:
    """The one undo mechanism of every adapter.

    Each change to the simulator is recorded, as it is made, with a callable
    that puts it back; :meth:`undo` calls them newest first.  Used as a
    context manager it undoes everything when the block raises, so an
    adapter's ``apply`` reads::

        with UndoLog() as log:
            log.add(change_one())      # each change returns its undo
            log.add(change_two())
        return log                     # apply_reversibly: the caller may undo later
    """

    def __init__(self):
        self._steps = []

    def add(self, undo):
        """Record ``undo`` (a callable, or None for a change that needs none)."""
        if undo is not None:
            self._steps.append(undo)
        return undo

    def undo(self):
        steps, self._steps = self._steps, []
        for step in reversed(steps):
            step()

    def __call__(self):
        self.undo()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.undo()
        return False


def _pairs(section, file_objs, model_objs, single, path):
    """Match objects by name; a single-object model takes a single-object file
    whatever its name."""
    if single:
        ((name, model),) = model_objs.items()
        if name in file_objs:
            return [(name, file_objs[name], model)], []
        if len(file_objs) == 1:
            ((fname, fobj),) = file_objs.items()
            return [(name, fobj, model)], []
        raise StructureMismatchError(
            f"no {section[:-1]} named {name!r} in the file (it has: {', '.join(file_objs) or 'none'})",
            path=path,
            obj=name,
        )
    pairs = [(n, file_objs[n], model_objs[n]) for n in model_objs if n in file_objs]
    file_only = [n for n in file_objs if n not in model_objs]
    return pairs, file_only


def _check_array(label, farr, finfo, marr, minfo, expected_shape, path):
    if finfo.scope != minfo.scope:
        raise StructureMismatchError(
            f"the file has a {finfo.scope} value, the model a {minfo.scope} one", path=path, obj=label
        )
    if finfo.scope != "free" and tuple(farr.shape) != tuple(expected_shape):
        raise StructureMismatchError(
            f"the file has shape {tuple(farr.shape)}, the model needs {tuple(expected_shape)}", path=path, obj=label
        )
    if farr.dtype != marr.dtype and not np.can_cast(farr.dtype, marr.dtype, "safe"):
        raise StructureMismatchError(
            f"the file's {farr.dtype} values do not fit the model's {marr.dtype}", path=path, obj=label
        )


def _plan_group(plan, section, name, fobj, mobj, new_nnz, path):
    report = plan.report
    for var, farr in fobj.arrays.items():
        label = f"{name}.{var}"
        if var not in mobj.arrays:
            report.skipped.append(label)
            continue
        marr, minfo = mobj.arrays[var], mobj.info[var]
        expected = marr.shape
        replace = new_nnz is not None and minfo.scope == "synapse"
        if replace:
            expected = (new_nnz,)
        _check_array(label, farr, fobj.info[var], marr, minfo, expected, path)
        plan.assignments.append(Assignment(section, name, var, farr, replace))
        report.restored.append(label)
    for var in mobj.arrays:
        if var not in fobj.arrays:
            if new_nnz is not None and mobj.info[var].scope == "synapse":
                raise StructureMismatchError(
                    "the file's connectivity differs from the model's and this per-synapse "
                    "variable is not in the file, so its values cannot be kept",
                    path=path,
                    obj=f"{name}.{var}",
                )
            report.kept.append(f"{name}.{var}")


def _plan_population(plan, name, f, m, path):
    if f.size != m.size:
        raise StructureMismatchError(f"the file has {f.size} neurons, the model {m.size}", path=path, obj=name)
    if (f.ids is not None or m.ids is not None) and (
        f.global_size != m.global_size or not np.array_equal(f.global_ids(), m.global_ids())
    ):
        raise StructureMismatchError(
            f"the file holds other neurons (global ids) of a population of {f.global_size} than the model "
            f"(of {m.global_size}): a shard of an MPI run loads with comm=, from its manifest",
            path=path,
            obj=name,
        )
    _plan_group(plan, "populations", name, f, m, None, path)


def _plan_projection(plan, name, f, m, path):
    if tuple(f.shape) != tuple(m.shape):
        raise StructureMismatchError(
            f"the file connects {f.shape[1]} -> {f.shape[0]} neurons, the model {m.shape[1]} -> {m.shape[0]}",
            path=path,
            obj=name,
        )
    if not _same_connectivity(f, m):
        check_connectivity(f.indptr, f.indices, f.shape, path, name)
        plan.connectivity[name] = (np.asarray(f.indptr, np.int64), np.asarray(f.indices, np.int64))
    if f.simulator_order is not None:
        plan.simulator_order[name] = (f.simulator_order, f.arrays_in_simulator_order)
    _plan_group(plan, "projections", name, f, m, None if name not in plan.connectivity else f.nnz, path)


def _same_connectivity(f, m):
    """Compare by the file's checksums when it has them: hashing the model's
    arrays is several times cheaper than comparing them element by element."""
    if f.nnz != len(m.indices):
        return False
    if f.connectivity_checksums is not None:
        model = m.connectivity_checksums
        model = model.result() if isinstance(model, Future) else _connectivity_checksums(m)
        return f.connectivity_checksums == model
    return np.array_equal(f.indptr, m.indptr) and np.array_equal(f.indices, m.indices)


def _connectivity_checksums(projection):
    return checksum(np.asarray(projection.indptr, np.int64)), checksum(np.asarray(projection.indices, np.int64))


def start_connectivity_hashes(model_state, pool):
    """Start hashing the model's connectivity on ``pool`` (the hash runs
    without the GIL), so that :func:`make_plan` finds it done when it
    compares it with the file's: call it before reading the file."""
    for projection in model_state.projections.values():
        projection.connectivity_checksums = pool.submit(_connectivity_checksums, projection)


def make_plan(
    file_state, model_state, *, populations=True, projections=True, strict=False, path=None, restores_dt=False
):
    """Validate a restore of ``file_state`` into the model and return its :class:`Plan`.

    ``restores_dt``: the adapter sets the file's time step (Brian2's
    clocks); otherwise a file saved with another ``dt`` is warned about.

    Raises
    ------
    StructureMismatchError
        A size, shape, scope or dtype does not fit, or (``strict``) something
        would be skipped or kept.
    """
    plan = Plan(
        RestoreReport(path=None if path is None else str(path)),
        file_meta=file_state.meta,
        findings=model_state.findings,
    )
    content = model_state.meta.get("content", "network")
    file_is_network = file_state.meta.get("content", "network") == "network"
    matched_any = False
    sections = [("populations", populations, _plan_population), ("projections", projections, _plan_projection)]
    for section, wanted, plan_object in sections:
        model_objs = getattr(model_state, section)
        if not wanted or (content != "network" and not model_objs):
            continue
        single = content != "network"
        pairs, file_only = _pairs(section, getattr(file_state, section), model_objs, single, path)
        matched_any = matched_any or bool(pairs)
        for name, fobj, mobj in pairs:
            plan_object(plan, name, fobj, mobj, path)
        if not single:
            for name in file_only:
                plan.report.skipped.extend(f"{name}.{var}" for var in getattr(file_state, section)[name])
            if file_is_network:
                matched = {n for n, _, _ in pairs}
                for name, mobj in model_objs.items():
                    if name not in matched:
                        plan.report.kept.extend(f"{name}.{var}" for var in mobj.arrays)
    nothing_in_common = bool(file_state.populations or file_state.projections) and not matched_any
    if content == "network" and populations and projections and file_is_network:
        if nothing_in_common:
            # a file of another network: moving the clock or the generators
            # would be the only change, and a wrong one
            plan.report.skipped.extend(["time", "step"] + [f"rng.{name}" for name in file_state.rng])
            warnings.warn(
                f"{path}: no population or projection in common with the model: time and random state left as they are",
                CheckpointWarning,
                stacklevel=5,
            )
        else:
            _plan_clock_and_rng(plan, file_state, model_state, path, restores_dt)
    if strict and (plan.report.skipped or plan.report.kept):
        raise StructureMismatchError(
            f"strict restore: skipped {plan.report.skipped}, kept {plan.report.kept}", path=path
        )
    return plan


def _plan_clock_and_rng(plan, file_state, model_state, path, restores_dt):
    if file_state.step is not None:
        plan.clock = {"step": int(file_state.step), "time": file_state.time}
        plan.report.time, plan.report.step = file_state.time, int(file_state.step)
        fdt, mdt = file_state.meta.get("dt"), model_state.meta.get("dt")
        if fdt is not None and mdt is not None and not np.isclose(fdt, mdt) and not restores_dt:
            warnings.warn(f"{path}: saved with dt={fdt} ms, the model has dt={mdt} ms", CheckpointWarning, stacklevel=6)
    for name, rng in file_state.rng.items():
        if name in model_state.rng and model_state.rng[name].kind == rng.kind:
            plan.rng[name] = rng
        else:
            plan.report.skipped.append(f"rng.{name}")


def swap_contents(a, b, chunk=1 << 22):
    """Exchange the values of two contiguous arrays of one shape and dtype in place.

    Restoring by swapping leaves the old values in the file's buffer, which
    then serves as the undo record: a rollback swaps again, and no second
    copy of the state is ever held.
    """
    if not (a.flags.c_contiguous and b.flags.c_contiguous):
        raise ValueError("swap_contents needs C-contiguous arrays")
    fa, fb = a.reshape(-1), b.reshape(-1)  # views, as both are contiguous
    scratch = np.empty(min(chunk, fa.size), fa.dtype)
    for start in range(0, fa.size, chunk):
        stop = min(start + chunk, fa.size)
        n = stop - start
        scratch[:n] = fa[start:stop]
        fa[start:stop] = fb[start:stop]
        fb[start:stop] = scratch[:n]
