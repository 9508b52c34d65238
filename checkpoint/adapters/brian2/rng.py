"""Random state: numpy's global generator and the buffers behind
``rand()``/``randn()`` in Cython code (their contents, not addresses)."""

import numpy as np

from ...errors import CorruptCheckpointError
from ...state import RngState
from .versions import buffer_size as _buffer_size, read_buffer, write_buffer


NUMPY_RNG, BUFFER_RNG = "numpy", "brian2"
NUMPY_RNG_KIND, BUFFER_RNG_KIND = "numpy.random.RandomState", "brian2.random-buffers"


def capture_rng():
    from brian2.devices.device import get_device

    device = get_device()
    state = np.random.get_state(legacy=False)
    numpy_rng = RngState(
        NUMPY_RNG,
        NUMPY_RNG_KIND,
        {
            "bit_generator": state["bit_generator"],
            "pos": int(state["state"]["pos"]),
            "has_gauss": int(state["has_gauss"]),
            "gauss": float(state["gauss"]),
        },
        {"key": np.asarray(state["state"]["key"], np.uint32).copy()},
    )
    buffers, indices = {}, {}
    for kind in ("rand", "randn"):
        index = int(getattr(device, f"{kind}_buffer_index")[0])
        indices[f"{kind}_index"] = index
        # Only a partly used buffer matters: at index 0 Cython draws a new one.
        numbers = read_buffer(device, kind) if index else None
        buffers[f"{kind}_buffer"] = np.zeros(0) if numbers is None else numbers
    buffer_rng = RngState(BUFFER_RNG, BUFFER_RNG_KIND, dict(indices, buffer_size=_buffer_size()), buffers)
    return {NUMPY_RNG: numpy_rng, BUFFER_RNG: buffer_rng}


def numpy_state(rng, path):
    state = rng.state if isinstance(rng.state, dict) else {}
    key = rng.arrays.get("key")
    try:
        full = {
            "bit_generator": state["bit_generator"],
            "state": {"key": key, "pos": state["pos"]},
            "has_gauss": state["has_gauss"],
            "gauss": state["gauss"],
        }
        np.random.RandomState().set_state(full)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CorruptCheckpointError(f"numpy random state rejected: {exc}", path=path, obj="rng numpy") from None
    return full


def check_buffers(rng, path):
    state = rng.state if isinstance(rng.state, dict) else {}
    size = _buffer_size()
    for kind in ("rand", "randn"):
        index, buffer = state.get(f"{kind}_index"), rng.arrays.get(f"{kind}_buffer")
        ok = (
            isinstance(index, int)
            and 0 <= index < size
            and buffer is not None
            and buffer.dtype == np.float64
            and (len(buffer) == size if index else len(buffer) in (0, size))
        )
        if not ok or state.get("buffer_size") != size:
            raise CorruptCheckpointError(
                f"{kind}() buffer state does not fit Brian2's ({size} numbers)", path=path, obj=f"rng {rng.name}"
            )


def restore_rng(name, rng):
    if name == NUMPY_RNG:
        np.random.set_state(numpy_state(rng, None))
        return
    from brian2.devices.device import get_device

    device = get_device()
    for kind in ("rand", "randn"):
        index, buffer = rng.state[f"{kind}_index"], rng.arrays[f"{kind}_buffer"]
        if index and len(buffer):
            write_buffer(device, kind, buffer)
        getattr(device, f"{kind}_buffer_index")[0] = index
