"""The small vocabulary of schema checks every reader of a file's metadata
uses: the manifest's generic schema and each adapter's own meta.

A value from a file is checked for its exact type before it is used: a
JSON integer may have hundreds of digits, so a number is finite *and*
within a float's range before anything converts it.
"""

import math

from ..errors import CorruptCheckpointError

__all__ = ["require", "is_int", "is_number", "optional"]

#: the largest integer a finite float64 holds: a JSON integer beyond it
#: makes ``math.isfinite`` and ``float()`` raise OverflowError
_FLOAT_MAX = 1.7976931348623157e308


def require(condition, message, path, obj=None):
    """Raise :class:`CorruptCheckpointError` naming ``path`` unless ``condition``."""
    if not condition:
        raise CorruptCheckpointError(message, path=path, obj=obj)


def is_int(x):
    """An integer, not a bool."""
    return isinstance(x, int) and not isinstance(x, bool)


def is_number(x):
    """A finite number (int or float, not bool) that a float64 can hold."""
    if is_int(x):
        return -_FLOAT_MAX <= x <= _FLOAT_MAX  # compared as Python integers: no conversion
    return isinstance(x, float) and math.isfinite(x)


def optional(meta, key, check, what, path):
    """``meta[key]`` is absent, None, or passes ``check``."""
    value = meta.get(key)
    require(value is None or check(value), f"meta {key!r} is {value!r}, expected {what}", path)
