"""NEURON's own SaveState, as opaque bytes inside our file.

SaveState holds what no public API reads (a NetStim's next event, a
threshold detector's state, the event queue) and restores it exactly, but
it is positional over the creation order and NEURON aborts the process on a
structure that does not fit.  So its bytes are only ever handed to NEURON
when the file's structure fingerprint (:meth:`.inventory.Inventory.fingerprint`)
equals the model's and their size is within a bound the model sets;
anything else is a continuation from the readable arrays, or refused.
"""

import os
import tempfile

import numpy as np

from ...errors import CorruptCheckpointError, StructureMismatchError

#: bytes SaveState may need per double of state it saves, and per event
_SLACK = 1 << 16

#: NEURON's structure counter when a file's SaveState was last read into the
#: model of this process, or None.  NEURON 9 crashes (a segmentation fault in
#: ``fread``) when the model a SaveState was read into has since been deleted
#: and another built: after a change of structure, no SaveState is read again
#: in this process (the load continues from the readable arrays, warned).
#: Process state of NEURON's, not of one load.
_READ_AT: list = []


def _structure_count():
    """NEURON's ``structure_change_cnt`` (it counts at each setup after a
    change: ``finitialize``), or None where it cannot be read."""
    try:
        import ctypes
        import neuron

        return int(neuron.nrn_dll_sym("structure_change_cnt", ctypes.c_int).value)
    except (AttributeError, OSError, ValueError, TypeError):
        return None


def reader_is_safe():
    """False when a SaveState read could crash NEURON (see ``_READ_AT``)."""
    if not _READ_AT:
        return True
    now = _structure_count()
    return now is not None and now == _READ_AT[-1]


def to_bytes(h):
    """The model's SaveState as a uint8 array (through a temporary file:
    SaveState writes only to a hoc File)."""
    state = h.SaveState()
    state.save()
    fd, name = tempfile.mkstemp(prefix="checkpoint-neuron-", suffix=".bin")
    os.close(fd)
    try:
        handle = h.File()
        handle.wopen(name)
        state.fwrite(handle)  # closes the file
        with open(name, "rb") as f:
            return np.frombuffer(f.read(), np.uint8)
    finally:
        os.unlink(name)


def bound(doubles, events):
    """The most bytes a SaveState of a model with ``doubles`` values and
    ``events`` events in its queue can take (a generous bound: SaveState
    stores fewer values than the readable arrays hold)."""
    return 2 * 8 * int(doubles) + 64 * int(events) + _SLACK


def check(data, fingerprint, model_fingerprint, limit, path):
    """Raise unless ``data`` may be handed to NEURON's binary reader."""
    if fingerprint != model_fingerprint:
        raise StructureMismatchError(
            "the file's structure fingerprint is not the model's: its SaveState cannot be restored",
            path=path,
            obj="NEURON.savestate",
        )
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 1 or not 0 < data.size <= limit:
        raise CorruptCheckpointError(
            f"the SaveState bytes ({data.dtype}, {data.shape}) are not a uint8 array "
            f"of at most {limit} bytes, as the model's structure allows",
            path=path,
            obj="NEURON.savestate",
        )


def restore(h, data, path):
    """Hand the (checked) bytes to SaveState.fread and restore them."""
    fd, name = tempfile.mkstemp(prefix="checkpoint-neuron-", suffix=".bin")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(np.asarray(data, np.uint8).tobytes())
        state = h.SaveState()
        handle = h.File()
        handle.ropen(name)
        try:
            _READ_AT.append(_structure_count())
            state.fread(handle)
            state.restore()
        except RuntimeError as exc:
            raise CorruptCheckpointError(
                f"NEURON refused the SaveState: {exc}", path=path, obj="NEURON.savestate"
            ) from None
    finally:
        os.unlink(name)


def snapshot(h):
    """An in-memory SaveState of the model now: the undo of a restore."""
    state = h.SaveState()
    state.save()
    return state.restore
