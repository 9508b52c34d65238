"""Random state: the C++ random engines (``std::mt19937``, one per thread
or population, as ANNarchy holds them), the network's numpy
``default_rng``, and numpy's global generator (``np.random``, which
ANNarchy's own examples draw inputs from between ``simulate()`` calls)."""

import numpy as np

from ...errors import CorruptCheckpointError, StructureMismatchError
from ...formats.schema import is_int, is_number, require
from ...state import RngState
from ..base import check_numpy_rng_state

ENGINE_RNG, NUMPY_RNG = "annarchy", "numpy"
ENGINE_RNG_KIND, NUMPY_RNG_KIND = "annarchy.mt19937", "numpy.random.Generator"
#: numpy's global generator, in the layout of the Brian2 adapter's ``numpy``
GLOBAL_RNG, GLOBAL_RNG_KIND = "numpy.random", "numpy.random.RandomState"
_MT_WORDS = 624


def capture_rng(native, network):
    """``{name: RngState}`` of a network's generators."""
    engines = native.read_rng()
    return {ENGINE_RNG: RngState(ENGINE_RNG, ENGINE_RNG_KIND, {"engines": len(engines)}, {"state": engines}),
            NUMPY_RNG: RngState(NUMPY_RNG, NUMPY_RNG_KIND, network.default_rng.bit_generator.state),
            GLOBAL_RNG: _capture_global()}


def _capture_global():
    state = np.random.get_state(legacy=False)
    return RngState(GLOBAL_RNG, GLOBAL_RNG_KIND,
                    {"bit_generator": state["bit_generator"], "pos": int(state["state"]["pos"]),
                     "has_gauss": int(state["has_gauss"]), "gauss": float(state["gauss"])},
                    {"key": np.asarray(state["state"]["key"], np.uint32).copy()})


def global_state(rng, path):
    """The ``np.random.set_state`` dict of ``rng``, checked (types, sizes,
    and on a scratch generator) before any change."""
    state = rng.state if isinstance(rng.state, dict) else {}
    key = rng.arrays.get("key")
    pos, has_gauss, gauss = state.get("pos"), state.get("has_gauss"), state.get("gauss")
    require(state.get("bit_generator") == "MT19937" and key is not None and key.dtype == np.uint32
            and key.shape == (_MT_WORDS,) and is_int(pos) and 0 <= pos <= _MT_WORDS
            and is_int(has_gauss) and has_gauss in (0, 1) and is_number(gauss),
            "not a state of numpy's global generator (MT19937)", path, f"rng {rng.name}")
    full = {"bit_generator": "MT19937", "state": {"key": key, "pos": pos}, "has_gauss": has_gauss,
            "gauss": float(gauss)}
    try:
        np.random.RandomState().set_state(full)
    except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
        raise CorruptCheckpointError(f"numpy random state rejected: {exc}", path=path,
                                     obj=f"rng {rng.name}") from None
    return full


def check_rng(rngs, native, path):
    """Raise before any change unless every state in ``rngs`` can be set."""
    for name, rng in rngs.items():
        if name == NUMPY_RNG:
            check_numpy_rng_state(rng, path)
        elif name == GLOBAL_RNG:
            global_state(rng, path)
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
    elif name == GLOBAL_RNG:
        np.random.set_state(global_state(rng, None))
    else:
        native.write_rng(rng.arrays["state"])


def rng_undo(native, network, names):
    """A callable that puts back the generators ``names`` as they are now."""
    engines = native.read_rng() if names else None
    numpy_state = network.default_rng.bit_generator.state
    global_numpy = np.random.get_state()

    def undo():
        network.default_rng.bit_generator.state = numpy_state
        np.random.set_state(global_numpy)
        if engines is not None:
            native.write_rng(engines)
    return undo
