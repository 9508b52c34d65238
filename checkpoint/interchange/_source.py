"""What an export reads: one whole network's state, checked, and the
helpers both exporters use to split its arrays into what a format holds."""

import os
import re

import numpy as np

from ..errors import CorruptCheckpointError, StructureMismatchError, UnsupportedObjectError
from ..state import NetworkState, check_connectivity

__all__ = [
    "state_of",
    "Notes",
    "saved_from_nest",
    "weight_name",
    "delay_ms",
    "is_uniform",
    "scalar",
    "numeric",
    "safe_id",
]

#: Per-synapse variables a weight is stored under: NEST's, then the embedded
#: network's, Brian2's and ANNarchy's.
WEIGHT_NAMES = ("weight", "w")
DELAY = "delay"


def state_of(source):
    """``(state, path)``: the state to export, from a checkpoint path (read
    and verified as every reader does), a :class:`NetworkState`, or any
    object :func:`checkpoint.save` accepts (captured now).  Per-synapse
    arrays in CSR order; every projection checked against its populations.

    Raises
    ------
    CheckpointError
        The file is damaged, hostile or unreadable; the state is not one
        whole network (a shard's part); a projection does not fit its
        populations.
    """
    from ..api import read  # the exporters sit above the public calls (docs/architecture.rst)
    from ..adapters import adapter_for

    path = None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        state = read(path)
    elif isinstance(source, NetworkState):
        state = source
    else:
        state = adapter_for(source).capture(populations=True, projections=True)
    state = state.in_csr_order(path)
    _check(state, path)
    return state, path


def _check(state, path):
    """A file is hostile and a state may be hand-made: every size an
    exporter relies on is checked here, before anything is written."""
    for name, pop in state.populations.items():
        if pop.ids is not None and (
            pop.size != pop.global_size or not np.array_equal(np.asarray(pop.ids), np.arange(pop.size))
        ):
            raise UnsupportedObjectError(
                "an export needs whole populations, and this is one MPI rank's part: "
                "export the checkpoint's manifest (or the state checkpoint.read gives)",
                path=path,
                obj=name,
            )
        for var in pop:
            if pop.info[var].scope == "neuron" and np.shape(pop[var])[:1] != (pop.size,):
                raise CorruptCheckpointError(
                    f"{var} has shape {np.shape(pop[var])}, not one value per neuron of {pop.size}", path=path, obj=name
                )
    for name, proj in state.projections.items():
        for end in (proj.pre, proj.post):
            if end not in state.populations:
                raise StructureMismatchError(
                    f"its population {end!r} is not in the state: an export needs both ends of every projection",
                    path=path,
                    obj=name,
                )
        sizes = (state.populations[proj.post].size, state.populations[proj.pre].size)
        if tuple(proj.shape) != sizes:
            raise CorruptCheckpointError(f"its shape {proj.shape} is not (post, pre) = {sizes}", path=path, obj=name)
        # readers leave the pre-rank range check to the restore plan: an export needs it too
        check_connectivity(proj.indptr, proj.indices, proj.shape, path, name, check_indices=True)
        for var in proj:
            length = {"synapse": proj.nnz, "post": proj.shape[0]}.get(proj.info[var].scope)
            if length is not None and np.shape(proj[var])[:1] != (length,):
                raise CorruptCheckpointError(
                    f"{var} has shape {np.shape(proj[var])}, not {length} values", path=path, obj=name
                )


class Notes:
    """What an export leaves out, or carries where the format's reader will
    not look, said once per export in one :class:`CheckpointWarning`."""

    def __init__(self):
        self.not_carried, self.ignored = [], []

    def drop(self, what, why):
        self.not_carried.append(f"{what} ({why})")

    def ignore(self, what, reader):
        self.ignored.append(f"{what} ({reader})")

    def message(self, to, destination):
        parts = []
        if self.not_carried:
            parts.append("not carried: " + "; ".join(self.not_carried))
        if self.ignored:
            parts.append("carried, but ignored by the reader named: " + "; ".join(self.ignored))
        if not parts:
            return None
        return (
            f"export to {to} ({os.fspath(destination)}) is structure and values, not a checkpoint: "
            + ". ".join(parts)
            + " (docs/interchange.rst)"
        )


def saved_from_nest(state):
    """Whether the state was captured from NEST (``meta["simulator"]["name"]``)."""
    simulator = state.meta.get("simulator")
    return (simulator.get("name") if isinstance(simulator, dict) else simulator) == "nest"


def weight_name(proj):
    """The per-synapse (or global) array that is the synapses' weight, or None."""
    return next((name for name in WEIGHT_NAMES if name in proj.arrays), None)


def delay_ms(proj):
    """The synapses' delays in ms (Brian2 stores seconds), or None."""
    if DELAY not in proj.arrays:
        return None
    values = np.asarray(proj[DELAY], np.float64)
    return values * 1000.0 if proj.info[DELAY].unit in ("s", "second") else values


def is_uniform(values):
    """Whether an array holds one value throughout (NaN never equals itself: not uniform)."""
    values = np.asarray(values)
    return values.size > 0 and bool(np.all(values == values.flat[0]))


def numeric(values):
    """The array as a format can store it (booleans as uint8), or None for
    what no format here holds (text, objects, complex numbers)."""
    values = np.asarray(values)
    if values.dtype.kind == "b":
        return values.astype(np.uint8)
    return values if values.dtype.kind in "iuf" else None


def scalar(value):
    """A numpy scalar or 0-d array as the Python number JSON writes."""
    return np.asarray(value).reshape(-1)[0].item()


def safe_id(name, taken, extra=""):
    """``name`` as an identifier ``[A-Za-z_][A-Za-z0-9_]*``: ``->`` becomes
    ``__to__``, ``@`` ``_at_``, any other character outside the set ``_``,
    a leading digit gets a ``_`` before it, and a name already ``taken``
    (in ``taken``, which is updated) ``_2``, ``_3``...  ``extra``: more
    characters allowed."""
    text = name.replace("->", "__to__").replace("@", "_at_")
    text = re.sub(f"[^A-Za-z0-9_{re.escape(extra)}]", "_", text) or "_"
    if text[0].isdigit():
        text = "_" + text
    candidate, n = text, 1
    while candidate.lower() in taken:  # lower: file names on a case-insensitive file system
        n += 1
        candidate = f"{text}_{n}"
    taken.add(candidate.lower())
    return candidate
