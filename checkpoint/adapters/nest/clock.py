"""NEST's clock, which cannot be set after it has run: the file's time is
kept as an offset in the kernel itself; the restored kernel is reseeded.
And the schema of ``meta["nest"]``."""

import zlib

from ...formats.schema import is_int, is_number, optional, require
from .nodes import nest_module


#: Said at every save of a kernel (Python shows it once per place in a script).
HIDDEN_STATE = (
    "NEST keeps some state out of reach, and a restart loses it: its random generators' state "
    "(a restored kernel is reseeded), spikes in flight, synaptic currents and refractory counters, "
    "spike history for STDP, and a spatial layer's positions unless you save the layer's "
    "NodeCollection (docs/nest.rst)"
)


# The file's time minus NEST's clock after a restore, kept in the kernel
# itself (as the weight of a copied synapse model), so that ResetKernel
# forgets it with everything else.
OFFSET_MODEL = "checkpoint_time_offset"


def restore_clock(plan):
    """NEST's clock cannot be set after it has run (nor to anything but 0):
    keep it, and remember the file's time as an offset that :meth:`clock`
    and captures add.  Reseed, so that the run does not replay the first
    run's random numbers."""
    nest = nest_module()
    old_offset, old_seed = time_offset(), int(nest.rng_seed)
    _set_time_offset(float(plan.clock["time"]) - float(nest.biological_time))
    saved = (plan.file_meta.get("nest") or {}).get("rng_seed")
    if isinstance(saved, int):
        nest.rng_seed = continuation_seed(saved, int(plan.clock["step"]))

    def undo():
        _set_time_offset(old_offset)
        nest.rng_seed = old_seed

    return undo


def time_offset():
    """Milliseconds to add to NEST's clock for the simulated time (0 unless restored)."""
    nest = nest_module()
    return float(nest.GetDefaults(OFFSET_MODEL)["weight"]) if OFFSET_MODEL in nest.synapse_models else 0.0


def _set_time_offset(offset_ms):
    nest = nest_module()
    if OFFSET_MODEL in nest.synapse_models:
        nest.SetDefaults(OFFSET_MODEL, {"weight": offset_ms})
    elif offset_ms:
        nest.CopyModel("static_synapse", OFFSET_MODEL, {"weight": offset_ms})


def continuation_seed(seed, step):
    """A seed for the restored run, different from the first run's so that
    its random numbers are not a replay, and the same for every restart at
    the same step."""
    return zlib.crc32(f"{seed}:{step}".encode()) % (2**31 - 1) + 1


def validate_meta(meta, path):
    """``meta["nest"]`` of a file: its types and ranges, before anything uses it."""
    nest = meta.get("nest") or {}
    require(isinstance(nest, dict), "meta 'nest' is not an object", path)
    optional(nest, "rng_seed", lambda v: is_int(v) and 0 <= v < 2**32, "a seed", path)
    optional(nest, "biological_time", is_number, "a finite number", path)
