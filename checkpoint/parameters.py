"""Global parameters as JSON, in the layout of ANNarchy's save_parameters."""

import json
import math
import os
import warnings

import numpy as np

from ._atomic import atomic_write
from .adapters import adapter_for
from .errors import CheckpointError, CheckpointNotFoundError, CheckpointWarning, CorruptCheckpointError
from .restore import Assignment, Plan, RestoreReport

__all__ = ["save_parameters", "load_parameters"]

SECTIONS = ("populations", "projections")


def _global_parameters(group):
    return {
        var: group[var].item()
        for var, info in group.info.items()
        if info.kind == "parameter" and info.scope == "global"
    }


def save_parameters(path, obj, network=None):
    """Write the current values of the global parameters of ``obj`` as JSON.

    Parameters
    ----------
    path : str or os.PathLike
    obj : Network, Population or Projection
    network : dict, optional
        Free-form values stored under ``"network"`` (returned by
        :func:`load_parameters`).
    """
    state = adapter_for(obj).capture()
    document = {
        section: {name: _global_parameters(group) for name, group in getattr(state, section).items()}
        for section in SECTIONS
    }
    document["network"] = dict(network or {})
    try:
        text = json.dumps(document, indent=4)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"network= is not JSON-serialisable: {exc}", path=path) from None
    with atomic_write(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text + "\n")


MAX_DOCUMENT_BYTES = 64 << 20


def _read_document(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise CheckpointNotFoundError("no such parameter file", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptCheckpointError(
            f"cannot read the parameter file: {getattr(exc, 'strerror', None) or exc}", path=path
        ) from None
    if len(text) > MAX_DOCUMENT_BYTES:
        raise CorruptCheckpointError(f"a parameter file of more than {MAX_DOCUMENT_BYTES} bytes", path=path)
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise CorruptCheckpointError(f"not valid JSON: {exc}", path=path) from None
    except RecursionError:
        raise CorruptCheckpointError("JSON nested too deeply", path=path) from None
    if not isinstance(document, dict) or not all(
        isinstance(document.get(s, {}), dict) for s in SECTIONS + ("network",)
    ):
        raise CorruptCheckpointError("expected an object with populations, projections, network", path=path)
    return document


def _value(raw, dtype, path, label):
    """``raw`` (a JSON number) as ``dtype``, exactly or within range; anything
    that would wrap, overflow, round to an integer or be NaN/inf is refused."""
    if not isinstance(raw, (bool, int, float)):
        raise CorruptCheckpointError(f"parameter value {raw!r} is not a number", path=path, obj=label)
    problem = None
    if isinstance(raw, float) and not math.isfinite(raw):
        problem = "is not finite"
    elif dtype.kind == "b":
        problem = None if isinstance(raw, bool) else "is not a boolean"
    elif dtype.kind in "iu":
        if isinstance(raw, float):
            problem = "is not an integer"
        elif not np.iinfo(dtype).min <= int(raw) <= np.iinfo(dtype).max:
            problem = f"is outside the range of {dtype}"
    elif dtype.kind == "f":
        try:
            too_large = abs(float(raw)) > float(np.finfo(dtype).max)
        except OverflowError:
            too_large = True
        problem = f"overflows {dtype}" if too_large else None
    else:
        problem = f"cannot set a parameter of dtype {dtype}"
    if problem:
        raise CorruptCheckpointError(f"value {raw!r} {problem}: nothing was changed", path=path, obj=label)
    return np.asarray(raw).astype(dtype)


def load_parameters(path, obj, *, global_only=True):
    """Set the parameters of ``obj`` from a JSON file written by
    :func:`save_parameters` (or by ANNarchy).

    Only parameters matched by object and parameter name are set; anything
    else is skipped with a :class:`CheckpointWarning`.  With
    ``global_only=False`` a value also sets a per-neuron or per-synapse
    parameter of that name, the same value for all.

    Returns
    -------
    dict
        The file's ``"network"`` dictionary.
    """
    document = _read_document(path)
    adapter = adapter_for(obj)
    model = adapter.describe()  # its findings travel to apply in the plan, as for a load
    plan = Plan(RestoreReport(path=os.fspath(path)), findings=model.findings)
    for section in SECTIONS:
        groups = getattr(model, section)
        for name, values in document.get(section, {}).items():
            if name not in groups or not isinstance(values, dict):
                plan.report.skipped.extend(f"{name}.{p}" for p in (values if isinstance(values, dict) else []))
                continue
            for param, raw in values.items():
                _plan_parameter(plan, section, name, groups[name], param, raw, global_only, path)
    adapter.apply(plan)
    if plan.report.skipped:
        warnings.warn(f"{path}: parameters not set: {', '.join(plan.report.skipped)}", CheckpointWarning, stacklevel=2)
    return document.get("network", {})


def _plan_parameter(plan, section, name, group, param, raw, global_only, path):
    label = f"{name}.{param}"
    info = group.info.get(param)
    if info is None or info.kind != "parameter" or (global_only and info.scope != "global"):
        plan.report.skipped.append(label)
        return
    target = group[param]
    value = _value(raw, target.dtype, path, label)
    array = np.full(target.shape, value, dtype=target.dtype)
    plan.assignments.append(Assignment(section, name, param, array))
    plan.report.restored.append(label)
