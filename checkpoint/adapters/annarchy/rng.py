"""Random state: the C++ random engines (``std::mt19937``, one per thread
or population, as ANNarchy holds them) and the network's numpy
``default_rng``."""

import numpy as np

from ...errors import CorruptCheckpointError, StructureMismatchError
from ...state import RngState
from ..base import check_numpy_rng_state

ENGINE_RNG, NUMPY_RNG = "annarchy", "numpy"
ENGINE_RNG_KIND, NUMPY_RNG_KIND = "annarchy.mt19937", "numpy.random.Generator"


def capture_rng(native, network):
    """``{name: RngState}`` of a network's generators."""
    engines = native.read_rng()
    return {ENGINE_RNG: RngState(ENGINE_RNG, ENGINE_RNG_KIND, {"engines": len(engines)}, {"state": engines}),
            NUMPY_RNG: RngState(NUMPY_RNG, NUMPY_RNG_KIND, network.default_rng.bit_generator.state)}


def check_rng(rngs, native, path):
    """Raise before any change unless every state in ``rngs`` can be set."""
    for name, rng in rngs.items():
        if name == NUMPY_RNG:
            check_numpy_rng_state(rng, path)
        else:
            check_engines(rng, native.read_rng().shape, path)


def check_engines(rng, model_shape, path):
    state = np.asarray(rng.arrays.get("state", np.zeros((0, 0))))
    words = model_shape[1] if len(model_shape) > 1 else 0
    if state.shape != tuple(model_shape):
        raise StructureMismatchError(f"the file has {state.shape} random engine words, the model "
                                     f"{tuple(model_shape)}", path=path, obj=f"rng {rng.name}")
    if words and (np.any(state[:, :-1] >= 2 ** 32) or np.any(state[:, -1] > words - 1)):
        raise CorruptCheckpointError("not a std::mt19937 state", path=path, obj=f"rng {rng.name}")


def restore_rng(native, network, name, rng):
    """Set one generator (checked by :func:`check_rng`)."""
    if name == NUMPY_RNG:
        network.default_rng.bit_generator.state = rng.state
    else:
        native.write_rng(rng.arrays["state"])


def rng_undo(native, network, names):
    """A callable that puts back the generators ``names`` as they are now."""
    engines = native.read_rng() if names else None
    numpy_state = network.default_rng.bit_generator.state

    def undo():
        network.default_rng.bit_generator.state = numpy_state
        if engines is not None:
            native.write_rng(engines)
    return undo
