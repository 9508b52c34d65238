"""Populations and projections read from the C++ structures, as a
:class:`~checkpoint.state.PopulationState` or
:class:`~checkpoint.state.ProjectionState`; and :class:`Findings`, what a
``describe`` found that ``apply`` needs."""

import dataclasses

import numpy as np

from ...state import ArrayInfo, PopulationState, ProjectionState
from .connectivity import LilCsr, read_lil
from .native import level_counts
from .objects import (PER_NEURON, RANDOM, STRUCTURAL, add_free, attribute_kinds, global_name, placeholder,
                      population, shaped)
from .queues import IN_FLIGHT, in_flight_triples


@dataclasses.dataclass
class Findings:
    """What ``describe`` found, for ``apply`` (carried as ``plan.findings``)."""

    #: ``{(section, name): {array name: ArrayInfo}}``: the scope each array is restored by
    info: dict = dataclasses.field(default_factory=dict)
    #: ``{projection name: LilCsr}``: ANNarchy's rows of synapses as describe saw them
    csr: dict = dataclasses.field(default_factory=dict)


def fields_of(native, obj):
    """``{member name: Field}`` of an ANNarchy object's C++ structure."""
    return native.fields.get(global_name(obj), {})


def read_field(native, field, values):
    """``(counts, lengths, flat)``; without ``values``, placeholders of
    the right sizes and dtype, so describe() copies nothing."""
    if values:
        lengths, flat = native.read(field)
        return level_counts(lengths, field.depth), lengths, flat
    counts = native.counts(field)
    return (counts, placeholder(np.int64, int(counts[:field.depth].sum())),
            placeholder(field.dtype, int(counts[-1])))


def capture_population(native, pop, values):
    kinds = attribute_kinds(pop.neuron_type.description)
    arrays, info = {}, {}
    for name, field in fields_of(native, pop).items():
        if field.depth < 0 or name in STRUCTURAL or RANDOM.match(name):
            continue
        _, lengths, flat = read_field(native, field, values)
        if name in kinds:
            scope = "global" if field.depth == 0 else "neuron"
            arrays[name], info[name] = shaped(flat, field.depth), ArrayInfo(kinds[name], scope)
        elif field.depth == 1 and name in PER_NEURON:
            arrays[name], info[name] = flat, ArrayInfo("internal", "neuron",
                                                       "step" if name == "last_spike" else None)
        else:
            add_free(arrays, info, name, field.depth, lengths, flat)
    return PopulationState(pop.name, pop.size, pop.geometry, arrays, info)


def capture_projection(native, proj, dt, values):
    """``(ProjectionState, LilCsr)``: the projection and its rows of synapses."""
    fields = fields_of(native, proj)
    post_rank, row_lengths, pre_rank = read_lil(native, global_name(proj))
    pre, post = population(proj.pre), population(proj.post)
    csr = LilCsr(post_rank, row_lengths, post.size)
    lil_counts = [1, len(post_rank), len(pre_rank)]
    kinds = attribute_kinds(proj.synapse_type.description)
    arrays, info = {}, {}
    for name, field in fields.items():
        if field.depth < 0 or name in STRUCTURAL:
            continue
        counts, lengths, flat = read_field(native, field, values)
        per_synapse = field.depth == 2 and list(counts) == lil_counts
        if name == IN_FLIGHT:
            arrays[name] = (in_flight_triples(lengths, flat, _scalar(native, fields, "idx_delay"), post_rank)
                            if values else np.zeros((0, 3), np.int64))
            info[name] = ArrayInfo("internal", "free", "step")
        elif name == "delay":
            if values:
                arrays[name] = (csr.to_csr(flat) if per_synapse else shaped(flat, 0)) * dt
            else:
                arrays[name] = shaped(placeholder(np.float64, len(flat)), 1 if per_synapse else 0)
            info[name] = ArrayInfo("parameter", "synapse" if per_synapse else "global", "ms")
        elif per_synapse:
            arrays[name] = csr.to_csr(flat)
            info[name] = ArrayInfo(kinds.get(name, "internal"), "synapse")
        elif field.depth == 1 and name in kinds and counts[1] == len(post_rank):
            arrays[name] = csr.to_post(flat) if values else placeholder(field.dtype, post.size)
            info[name] = ArrayInfo(kinds[name], "post")
        elif field.depth == 0:
            arrays[name], info[name] = shaped(flat, 0), ArrayInfo(kinds.get(name, "internal"), "global")
        else:
            add_free(arrays, info, name, field.depth, lengths, flat)
    state = ProjectionState(proj.name, pre.name, post.name, (post.size, pre.size), csr.indptr,
                            csr.to_csr(pre_rank), proj.target, arrays, info)
    return state, csr


def _scalar(native, fields, name):
    return int(native.read(fields[name])[1][0]) if name in fields else 0
