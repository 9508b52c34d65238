"""The simulator releases the test suite runs, per adapter: another release
is warned about (once per process) when the adapter first captures its
state, so that a save with it is not silent, and a load never fails for it.

Keyed by :attr:`Adapter.simulator`; docs/install.rst lists the same.  An
adapter absent from the table (the embedded network, which is this
library's own code) is never warned about.
"""

import importlib.metadata
import warnings

from ..errors import CheckpointWarning

#: simulator name -> the releases ``make test`` runs (docs/install.rst)
TESTED_VERSIONS = {
    "brian2": ("2.9.0", "2.10.1", "2.11.0"),
    "nest": ("3.10.0",),
    "ANNarchy": ("5.0.4.1",),
    "NEURON": ("9.0.2",),
}

#: simulator name -> its distribution on PyPI, whose version is the full
#: release (ANNarchy's ``__version__`` is "5.0" for 5.0.4.1)
DISTRIBUTIONS = {"brian2": "Brian2", "nest": "nest-simulator", "ANNarchy": "ANNarchy", "NEURON": "neuron"}

_warned: set = set()  # (simulator, version) already warned about in this process


def is_tested(simulator, version):
    """Whether ``version`` of ``simulator`` is a release the tests run (or
    the simulator is not in the table)."""
    tested = TESTED_VERSIONS.get(simulator)
    return tested is None or _release(version) in tested


def _release(version):
    """``3.10.0`` of ``3.10.0`` or ``3.10.0+local``; a version as given otherwise."""
    return str(version).split("+")[0]


def release_of(simulator, version):
    """The installed distribution's version of ``simulator`` (the full
    release), or ``version`` (what the simulator says) where there is none."""
    try:
        return importlib.metadata.version(DISTRIBUTIONS[simulator])
    except (KeyError, importlib.metadata.PackageNotFoundError):
        return version


def warn_if_untested(simulator, version, stacklevel=4):
    """A :class:`CheckpointWarning`, once per process and release, when
    the installed ``simulator`` is not a release the tests run."""
    if simulator not in TESTED_VERSIONS:
        return
    version = release_of(simulator, version)
    if is_tested(simulator, version) or (simulator, version) in _warned:
        return
    _warned.add((simulator, version))
    tested = ", ".join(TESTED_VERSIONS[simulator])
    warnings.warn(
        f"{simulator} {version} is not a release checkpoint is tested with ({tested}): "
        "a file saved with it may not restore exactly; load it in the same release and "
        "compare, or install a tested one",
        CheckpointWarning,
        stacklevel=stacklevel,
    )
