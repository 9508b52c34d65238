"""What differs between the Brian2 releases the adapter supports (2.9.0,
2.10.1, 2.11.0), behind small functions the rest of the adapter calls.

Each difference is told by what the installed Brian2 has, not by its
version number (a patched build reads the same as its release):

* **dynamic arrays** (a Synapses' per-synapse arrays, a pathway's delays):
  up to 2.9 a Python ``DynamicArray1D`` whose numpy buffer ``_data`` can
  be swapped for another without a copy; from 2.10 a C++ object
  (``cythondynamicarray.DynamicArray1DClass``) that owns its memory: a
  new one, the values copied in, takes the old one's place in the device.
* **random buffers** behind ``rand()``/``randn()`` in Cython code: up to
  2.10 ``device.rand_buffer`` holds the *address* of a buffer that the
  generated code ``malloc``\\ s and ``free``\\ s; from 2.11 it *is* the
  buffer (float64, ``_BUFFER_SIZE`` numbers), refilled in place.  The file
  holds the numbers either way (``rand_buffer``, ``randn_buffer``), so a
  file of one release restores exactly on the other.
* **pathway delays**: up to 2.10 a pathway's own variable ``delay``; from
  2.11 the Synapses' ``_<pathway>_delay`` (with ``delay`` a reference to it).  Files name
  them as 2.9 does (``delay``, ``<pathway>.delay``) on every release.
* **spike queues**: up to 2.9 the numpy target has a Python queue (its
  ``_full_state`` is ``(dt, rows, shape)``), from 2.10 every target has
  the C++ one (``(offset, slots)``); :mod:`.queues` reads and writes both
  from the same file arrays.
"""

import ctypes

import numpy as np

from .objects import pathway_prefix


# ------------------------------------------------------------ dynamic arrays


def _dynamic(var):
    from brian2.devices.device import get_device

    return get_device().get_value(var, access_data=False)


def python_dynamic_arrays(var):
    """Whether ``var``'s dynamic array is Brian2's Python one (up to 2.9)."""
    return hasattr(_dynamic(var), "_data")


def replace_contents(var, full, nnz):
    """Make ``full`` (``nnz`` values of ``var``'s dtype) the contents of
    dynamic array variable ``var``, in a new array that takes the old one's
    place; return the undo, which puts the old one back (no copy of it is
    made).

    Python arrays (2.9): ``full`` itself becomes the buffer, as
    ``DynamicArray1D.resize`` does when it grows (so it must be the
    caller's own).  C++ arrays (2.10+): a new C++ array of ``nnz`` values,
    ``full`` copied in, replaces the old one in the device's table, where
    Brian2 looks every array up (``get_value``, ``resize``, and the code
    objects, made again at each run's ``before_run``)."""
    from brian2.devices.device import get_device

    device = get_device()
    dynamic = device.get_value(var, access_data=False)
    if hasattr(dynamic, "_data"):
        old = dynamic._data, dynamic.data, dynamic.shape
        dynamic._data, dynamic.data, dynamic.shape = full, full[:nnz], (nnz,)

        def undo():
            dynamic._data, dynamic.data, dynamic.shape = old

        return undo
    buffer, install = new_contents(var, nnz)
    buffer[...] = full
    return install()


def new_contents(var, nnz):
    """``(buffer, install)``: a buffer of ``nnz`` values of ``var``'s dtype
    to fill, and ``install()``, which makes it ``var``'s contents in place
    of the old array and returns the undo (as :func:`replace_contents`).
    The buffer is the new array's own memory (C++ arrays, 2.10+) or the
    new numpy buffer itself (2.9): a value scattered into it is copied
    once, not into a scratch array first."""
    from brian2.devices.device import get_device

    device = get_device()
    dynamic = device.get_value(var, access_data=False)
    if hasattr(dynamic, "_data"):
        full = np.empty(nnz, var.dtype)
        return full, lambda: replace_contents(var, full, nnz)
    replacement = type(dynamic)(nnz, dtype=var.dtype)

    def install():
        device.arrays[var] = replacement

        def undo_cpp():
            device.arrays[var] = dynamic

        return undo_cpp

    return replacement.data, install


#: Elements exchanged at a time by :func:`exchange_contents` (1 MB of float64):
#: small enough for the scratch block to stay in the cache.
_EXCHANGE_BLOCK = 1 << 17


def exchange_contents(var, value, nnz):
    """C++ arrays (2.10+) of ``nnz`` values: exchange the numbers of
    ``var``'s live array with those of ``value`` (the load's own array of
    the same dtype), so that the array holds the file's values and
    ``value`` the old ones; return the undo, which copies them back.  None
    where this does not apply (Python arrays, another size or dtype): then
    :func:`new_contents` it is.

    Why not a new C++ array, as :func:`new_contents` makes: its memory is
    fresh, zero-filled by the constructor and then overwritten, and fresh
    memory is what a load pays most for (at 10M synapses a new array per
    variable cost more than Brian2's whole ``restore``, which writes into
    the arrays it has).  The exchange goes block by block through a scratch
    block and allocates nothing."""
    if python_dynamic_arrays(var):
        return None
    from brian2.devices.device import get_device

    live = get_device().get_value(var)  # a view of the C++ array's memory
    if live.shape != (nnz,) or value.shape != (nnz,) or live.dtype != value.dtype or not live.flags.c_contiguous:
        return None
    scratch = np.empty(min(nnz, _EXCHANGE_BLOCK), live.dtype)
    for start in range(0, nnz, _EXCHANGE_BLOCK):
        end = min(start + _EXCHANGE_BLOCK, nnz)
        block = scratch[: end - start]
        block[...] = live[start:end]
        live[start:end] = value[start:end]
        value[start:end] = block

    def undo():
        get_device().get_value(var)[...] = value

    return undo


# ------------------------------------------------------------ random buffers


def buffer_size():
    """How many numbers the Cython target draws at once for ``rand()``."""
    from brian2.codegen.generators.cython_generator import _BUFFER_SIZE

    return _BUFFER_SIZE


_libc = None


def _c_library():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None)
        _libc.malloc.restype = ctypes.c_void_p
        _libc.malloc.argtypes = [ctypes.c_size_t]
    return _libc


def _buffer_in_device(device, kind):
    """Whether the device holds ``kind``'s buffer itself (2.11+), not its address."""
    buffer = getattr(device, f"{kind}_buffer")
    return buffer.dtype == np.float64 and buffer.shape == (buffer_size(),)


def read_buffer(device, kind):
    """A copy of the numbers in ``kind``'s buffer (``kind`` "rand" or
    "randn"), or None where no buffer has been drawn yet."""
    holder = getattr(device, f"{kind}_buffer")
    if _buffer_in_device(device, kind):
        return np.array(holder, copy=True)
    address = int(holder[0])
    if not address:
        return None
    view = (ctypes.c_double * buffer_size()).from_address(address)
    return np.ctypeslib.as_array(view).copy()


def write_buffer(device, kind, numbers):
    """Put ``numbers`` (``buffer_size()`` float64) into ``kind``'s buffer."""
    holder = getattr(device, f"{kind}_buffer")
    numbers = np.ascontiguousarray(numbers, np.float64)
    if _buffer_in_device(device, kind):
        holder[:] = numbers  # in place: the generated code points to this memory
        return
    if not holder[0]:
        # Cython frees this buffer with free() when it draws the next one
        holder[0] = _c_library().malloc(numbers.nbytes)
    ctypes.memmove(int(holder[0]), numbers.ctypes.data, numbers.nbytes)


# ------------------------------------------------------------ pathway delays


def delay_file_names(syn):
    """``{Brian2 name: file name}`` of the pathway delays a Synapses owns
    itself: from 2.11, ``_<pathway>_delay``, which files name ``delay`` (the
    ``pre`` pathway) and ``<pathway>.delay``, as 2.9 and 2.10 do, where a
    pathway owns its ``delay``."""
    return {f"_{pathway.objname}_delay": pathway_prefix(pathway) + "delay" for pathway in syn._pathways}
