"""A ``Synapses``: its connectivity as CSR by post neuron, its per-synapse
arrays kept in Brian2's order (format version 3: neither a save nor a
load gathers or scatters them), and their restore."""

import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from ...hashing import checksum
from ...state import ArrayInfo, ProjectionState
from .groups import set_value
from .objects import owned_variables, pathway_prefix, stable_argsort, unit_of, variable_kind
from .queues import queue_arrays, restore_queue
from .versions import delay_file_names, exchange_contents, new_contents, python_dynamic_arrays, replace_contents


ORDER = "_brian2_index"  # files of versions 1-2: per CSR synapse, its index in Brian2's order


# Synapse arrays that the connectivity determines: rebuilt from the CSR.
_CONNECTIVITY_VARS = {
    "i",
    "j",
    "_synaptic_pre",
    "_synaptic_post",
    "_presynaptic_idx",
    "_postsynaptic_idx",
    "N_incoming",
    "N_outgoing",
    "N",
}


# Synapses -> (fingerprint, (perm, indptr, indices))
_csr_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def csr_of(syn):
    """Brian2's synapses as CSR by post neuron: ``(perm, indptr, indices)``,
    ``perm[k]`` being the Brian2 index of the k-th synapse in CSR order.

    Read-only arrays, cached per Synapses under a checksum of its pre/post
    arrays: periodic checkpoints of a network whose connectivity does not
    change skip the sort.
    """
    v = syn.variables
    pre_b, post_b = v["_synaptic_pre"].get_value(), v["_synaptic_post"].get_value()
    offsets = int(v["_source_offset"].get_value()), int(v["_target_offset"].get_value())
    fingerprint = (len(pre_b), len(syn.target), offsets, checksum(pre_b), checksum(post_b))
    cached = _csr_cache.get(syn)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    pre = np.asarray(pre_b, np.int64) - offsets[0]
    post = np.asarray(post_b, np.int64) - offsets[1]
    perm = stable_argsort(post, len(syn.target))
    counts = np.bincount(post, minlength=len(syn.target))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    result = (perm, indptr, pre[perm])
    for array in result:
        array.flags.writeable = False
    _csr_cache[syn] = (fingerprint, result)
    return result


def synapse_variables(syn):
    """``{file name: variable}`` of a Synapses and its pathways, without the
    arrays that the connectivity determines."""
    own = owned_variables(syn)
    renamed = delay_file_names(syn)
    out = {renamed.get(name, name): var for name, var in own.items() if name not in _CONNECTIVITY_VARS}
    known = {id(var) for var in own.values()}
    for pathway in syn._pathways:
        # a pathway's delays belong to the Synapses but are listed only by the pathway
        prefix = pathway_prefix(pathway)
        out.update(
            (prefix + name, var)
            for name, var in owned_variables(pathway, {syn.name, pathway.name}).items()
            if id(var) not in known
        )
    return out


def capture_synapses(syn, queues=True):
    """The Synapses' state: per-synapse arrays as Brian2 holds them (its
    live arrays, not copies), in Brian2's order, which is the projection's
    ``simulator_order``.  Without ``queues`` the spike queues are left
    empty: enough for describe(), which needs names, shapes and dtypes."""
    perm, indptr, indices = csr_of(syn)
    state = ProjectionState(
        syn.name,
        syn.source.name,
        syn.target.name,
        (len(syn.target), len(syn.source)),
        indptr,
        indices,
        target=None,
        simulator_order=perm,
        arrays_in_simulator_order=True,
    )
    nnz = len(perm)
    for name, var in synapse_variables(syn).items():
        scope, value = _synapse_array(var, nnz)
        state.arrays[name], state.info[name] = value, ArrayInfo(variable_kind(name, var), scope, unit_of(var))
    for pathway in syn._pathways:
        for name, array in queue_arrays(pathway, contents=queues).items():
            state.arrays[pathway_prefix(pathway) + name] = array
            state.info[pathway_prefix(pathway) + name] = ArrayInfo("internal", "free", None)
    return state


def _synapse_array(var, nnz):
    """``(scope, value as Brian2 holds it)`` of one Synapses variable."""
    from brian2.core.variables import DynamicArrayVariable

    value = np.asarray(var.get_value())
    if var.scalar and value.shape in ((), (1,)):
        return "global", value.reshape(())
    if isinstance(var, DynamicArrayVariable) and value.shape == (nnz,) and var.size == nnz:
        return "synapse", value
    return "free", value


class SynapseRestore(NamedTuple):
    """What :meth:`Brian2Adapter._check` decided for one Synapses."""

    order: np.ndarray  # CSR synapse k is the file's Brian2 synapse order[k]
    indptr: np.ndarray  # the CSR to restore
    indices: np.ndarray
    rebuild: bool  # the synapses are rebuilt (other connectivity, or another order)
    in_brian2_order: bool  # the file's per-synapse values are in its Brian2 order, not CSR


def restore_synapses(syn, values, todo, undo):
    """Rebuild the synapses in the file's Brian2 order if they differ, then
    set every array, each change's undo recorded in ``undo`` (those the
    caller's snapshot leaves out)."""
    nnz = len(todo.indices)
    if todo.rebuild:
        _rebuild_synapses(syn, todo.order, todo.indptr, todo.indices)
    variables = synapse_variables(syn)
    assigned = [(variables[name], value) for name, value in values.items() if name in variables]
    # a scatter is needed only for values in CSR order (a file of version 1 or 2)
    order = None if todo.in_brian2_order else np.asarray(todo.order, np.int64)
    # a scatter runs without the GIL: two at a time.  Every step that ran is
    # recorded before the first failure is raised, so that all are undone
    with ThreadPoolExecutor(2, thread_name_prefix="checkpoint-brian2") as pool:
        futures = [
            pool.submit(set_synapse_value, var, value, order, nnz, swap=not todo.rebuild, own_value=first)
            for (var, value), first in zip(assigned, _first_of_each(assigned))
        ]
    failure = None
    for future in futures:
        if future.exception() is None:
            undo.add(future.result())
        elif failure is None:
            failure = future.exception()
    if failure is not None:
        raise failure
    for pathway in syn._pathways:
        key = pathway_prefix(pathway) + "_queue"
        if key + "_synapses" in values:
            restore_queue(
                pathway,
                np.asarray(values[key + "_synapses"]),
                np.asarray(values[key + "_counts"]),
                np.asarray(values[key + "_shape"], np.int64),
                values.get(key + "_dt"),
            )


def _first_of_each(assigned):
    """For each ``(variable, value)``, whether no pair before it has the same
    variable or a value that may share its memory: a value the load has
    handed to a variable already is not its own to give again, and two
    exchanges with one live array at once would race."""
    variables, values = set(), []
    for var, value in assigned:
        value = np.asarray(value)
        yield id(var) not in variables and not any(np.may_share_memory(value, other) for other in values)
        variables.add(id(var))
        values.append(value)


def _rebuild_synapses(syn, order, indptr, indices):
    nnz = len(indices)
    order = np.asarray(order, np.int64)
    post = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    for variable in syn._registered_variables:  # Synapses._resize refuses to shrink
        variable.resize(nnz)
    syn.variables["N"].set_value(nnz)
    v = syn.variables
    pre_b, post_b = np.empty(nnz, np.int64), np.empty(nnz, np.int64)
    pre_b[order], post_b[order] = indices, post
    v["_synaptic_pre"].set_value(pre_b + int(v["_source_offset"].get_value()))
    v["_synaptic_post"].set_value(post_b + int(v["_target_offset"].get_value()))
    for counter in ("N_incoming", "N_outgoing"):
        v[counter].get_value()[:] = 0
    syn._update_synapse_numbers(0)


def set_synapse_value(var, value, order, nnz, swap=False, own_value=True):
    """Set one Synapses variable from the file's ``value``: in CSR order,
    scattered by ``order``; in Brian2's order when ``order`` is None.

    With ``swap``, a per-synapse array goes into a new buffer that takes
    the old one's place, as ``DynamicArray1D.resize`` does when it grows;
    the old buffer is the undo record (returned as a callable), so no copy
    of it is made.  A value in Brian2's order that the load owns (read
    from the file for this load, ``own_value``) is that new buffer itself
    (2.9), or exchanges its numbers with the live array's (2.10+, which
    owns its memory).  Without ``swap``, the undo is the caller's snapshot.
    """
    from brian2.core.variables import DynamicArrayVariable

    value = np.asarray(value)
    per_synapse = value.ndim == 1 and len(value) == nnz and isinstance(var, DynamicArrayVariable) and not var.scalar
    if not per_synapse:
        old = np.array(var.get_value(), copy=True) if swap else None
        set_value(var, value)
        return (lambda: set_value(var, old)) if swap else _nothing
    live = var.get_value()  # the runtime device hands out the live array
    if not swap and live.shape == (nnz,):
        if order is None:
            live[...] = value
        else:
            live[order] = value
        return _nothing
    if not swap:
        full = value if order is None else np.empty(nnz, var.dtype)
        if order is not None:
            full[order] = value
        var.set_value(full)
        return _nothing
    # the buffer swapped in (Python arrays, 2.9) or exchanged with the live
    # one (C++, 2.10+) must be the load's own: a value read for it is
    owned = own_value and value.dtype == var.dtype and value.flags.writeable and value.flags.c_contiguous
    if order is None and python_dynamic_arrays(var):
        return replace_contents(var, value if owned else np.array(value, var.dtype), nnz)
    undo = exchange_contents(var, value, nnz) if order is None and owned else None
    if undo is not None:
        return undo
    buffer, install = new_contents(var, nnz)  # filled in place: one copy, not two
    if order is None:
        buffer[...] = value
    else:
        buffer[order] = value
    return install()


def _nothing():
    pass
