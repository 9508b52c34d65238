"""ANNarchy's objects as checkpoint sees them: which are supported, their
global names in the compiled code, and what kind each of their members is."""

import re

import numpy as np

from ...errors import UnsupportedObjectError
from ...state import ArrayInfo

LENGTHS = ".lengths"           # suffix of the companion array of a nested container
#: Members that describe structure, not state; connectivity is read separately.
STRUCTURAL = {"size", "max_delay", "idx_delay", "post_rank", "pre_rank",
              # OpenMP scratch, one slot per thread, reset every step: not state, and
              # sized by the thread count (a restart may use another)
              "local_spiked_sizes"}
#: Per-neuron members besides the model's own attributes.
PER_NEURON = {"last_spike", "refractory_remaining", "in_ref"}
RANDOM = re.compile(r"rand_\d+$")   # redrawn at the start of every step before use


def annarchy():
    import ANNarchy
    return ANNarchy


def shares_weights(proj):
    """Whether ``proj`` is one of ANNarchy's shared-weight projections
    (``ANNarchy.extensions.convolution``), which have no connectivity of
    their own for the accessor to read; ANNarchy's own ``save`` skips them too."""
    return not getattr(proj, "_saveable", True) or type(proj).__module__.startswith("ANNarchy.extensions.convolution")


def require_supported(network, projections, name):
    """Refuse a network that is not compiled, not ANNarchy's CPU build, or a
    projection not stored as LIL."""
    if not network.compiled:
        raise UnsupportedObjectError("the ANNarchy network is not compiled yet: call "
                                     "net.compile() before saving or loading", obj=name)
    paradigm = network._get_config("paradigm")
    if paradigm != "openmp":   # ANNarchy's CPU build, one thread or more
        raise UnsupportedObjectError(
            f"checkpoint supports ANNarchy's CPU build (paradigm 'openmp', any num_threads); this "
            f"network uses {paradigm!r}", obj=name)
    for proj in projections:
        if proj._storage_format != "lil":
            raise UnsupportedObjectError(
                f"projection stored as {proj._storage_format!r}: checkpoint supports ANNarchy's "
                "default 'lil' storage", obj=proj.name)


def population(obj):
    """The population behind a PopulationView."""
    return getattr(obj, "population", obj)


def global_name(ann_obj):
    """``pop<id>`` or ``proj<id>``: the global pointer of the object's C++ structure."""
    from ANNarchy.core.Projection import Projection
    return f"{'proj' if isinstance(ann_obj, Projection) else 'pop'}{ann_obj.id}"


def attribute_kinds(description):
    """``{name: "parameter" or "variable"}`` of a neuron or synapse type."""
    kinds = {p["name"]: "parameter" for p in description["parameters"]}
    kinds.update({v["name"]: "variable" for v in description["variables"]})
    return kinds


def shaped(flat, depth):
    return flat.reshape(()) if depth == 0 else flat


def exact_sum(counts):
    """The sum of non-negative integer ``counts`` as a Python integer: a
    file's counts may be chosen so that an int64 sum wraps round to the
    length of the array they split."""
    if len(counts) == 0:
        return 0
    if int(np.max(counts)) * len(counts) < 2 ** 63:   # no int64 sum of these can wrap
        return int(np.sum(counts, dtype=np.int64))
    return sum(np.asarray(counts).tolist())


def placeholder(dtype, n):
    """An array of ``n`` values that costs no memory: describe() needs shapes only."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), (n,), (0,), writeable=False)


def add_free(arrays, info, name, depth, lengths, flat):
    """A member that is no model attribute: ``free`` (and its lengths when nested)."""
    arrays[name], info[name] = (shaped(flat, 0) if depth == 0 else flat), \
        ArrayInfo("internal", "global" if depth == 0 else "free")
    if depth >= 2:
        arrays[name + LENGTHS], info[name + LENGTHS] = lengths, ArrayInfo("internal", "free")
