"""An optional progress bar (tqdm) for long saves and loads.

``progress=None`` shows a bar when the state is at least 256 MiB and
standard error is a terminal; ``True`` always (when tqdm is installed),
``False`` never.  Without tqdm there is no bar, only the log lines.
"""

import contextlib
import contextvars
import sys

AUTO_THRESHOLD = 256 << 20
_current = contextvars.ContextVar("checkpoint_progress", default=None)


def _wanted(progress, nbytes):
    if progress is None:
        return nbytes >= AUTO_THRESHOLD and sys.stderr.isatty()
    return bool(progress)


@contextlib.contextmanager
def progress_bar(progress, nbytes, description):
    """Make :func:`advance` move a bar of ``nbytes`` while the block runs."""
    bar = None
    if _wanted(progress, nbytes):
        try:
            from tqdm import tqdm

            bar = tqdm(total=nbytes, unit="B", unit_scale=True, unit_divisor=1024, desc=description, leave=False)
        except ImportError:
            bar = None
    token = _current.set(bar)
    try:
        yield bar
    finally:
        _current.reset(token)
        if bar is not None:
            bar.close()


def advance(nbytes):
    """Move the active bar, if any, by ``nbytes``."""
    bar = _current.get()
    if bar is not None:
        bar.update(nbytes)


def with_progress(items):
    """Yield ``(key, array)`` items, advancing the bar after each is written."""
    for key, array in items:
        yield key, array
        advance(array.nbytes)


def format_ms(time_ms):
    """A time for people: 100 ms, not 99.99999999999999 ms (steps times dt)."""
    return None if time_ms is None else f"{time_ms:.10g}"
