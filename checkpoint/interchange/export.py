"""``checkpoint.export``: a network's structure and values in another tool's files."""

import logging
import os
import warnings

from ..errors import CheckpointWarning, UnsupportedFormatError
from . import neuroml, sonata
from ._output import check_destination, write_folder
from ._source import Notes, state_of

__all__ = ["export", "FORMATS"]

log = logging.getLogger("checkpoint")

#: ``to=`` -> whether the destination is a folder (SONATA) or one file.
FORMATS = {"sonata": True, "neuroml": False}


def export(destination, source, *, to, overwrite=False):
    """Write the network of ``source`` to ``destination`` in the format ``to``.

    Parameters
    ----------
    destination : str or os.PathLike
        ``to="sonata"``: a folder (created; it holds ``circuit_config.json``,
        ``simulation_config.json``, ``nodes/``, ``edges/``, ``components/``).
        ``to="neuroml"``: one NeuroML 2 HDF5 file (``.nml.h5`` by custom).
    source : str, os.PathLike, NetworkState or network
        A checkpoint file (read and verified as :func:`checkpoint.read`
        reads it; a sharded checkpoint's manifest gives the whole network),
        a :class:`~checkpoint.NetworkState`, or anything
        :func:`checkpoint.save` accepts (its state is captured now).
    to : {"sonata", "neuroml"}
    overwrite : bool
        Replace a previous export at ``destination``.  Without it a
        destination that exists and is not empty is refused.  A folder is
        replaced whole or not at all, and only when it holds nothing but
        what an export wrote there.

    Returns
    -------
    str
        The destination's path.

    Warns
    -----
    CheckpointWarning
        Naming what the format cannot hold (simulator-internal state, the
        random generators, values a reader ignores): an export is structure
        and values, not a checkpoint (docs/interchange.rst).

    Raises
    ------
    UnsupportedFormatError
        ``to`` is not a format named above.
    CheckpointError
        The source is damaged or not one whole network, or the destination
        may not be written.  Nothing is written then, and nothing else is
        ever touched.
    """
    if to not in FORMATS:
        raise UnsupportedFormatError(f"cannot export to {to!r}: choose one of {', '.join(sorted(FORMATS))}")
    check_destination(destination, overwrite, FORMATS[to])
    state, path = state_of(source)
    notes = Notes()
    _note_state(state, notes)
    if to == "sonata":
        write_folder(destination, to, lambda folder: sonata.write(folder, state, notes))
    else:
        neuroml.write(destination, state, notes)
    message = notes.message(to, destination)
    if message:
        warnings.warn(message, CheckpointWarning, stacklevel=2)
    log.info("exported %s to %s (%s)", path or type(source).__name__, os.fspath(destination), to)
    return os.fspath(destination)


def _note_state(state, notes):
    """What no export format holds: the run's clock and generators."""
    if state.rng:
        notes.drop(f"random generator states ({', '.join(state.rng)})", "no interchange format has them")
    seed = (state.meta.get("nest") or {}).get("rng_seed")
    if seed is not None:
        notes.drop(f"NEST's rng_seed ({seed})", "set nest.rng_seed before building the circuit")
    if state.time:
        notes.drop(f"the time t = {state.time:.10g} ms", "a circuit starts at 0")
