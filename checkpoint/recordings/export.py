"""The whole run's recordings as one file: ``.h5``, ``.npz``, ``.mat`` or ``.nwb``.

``.h5``: a group per recorder (attributes ``kind``, ``name`` and each
variable's unit), a dataset per variable.  ``.npz``: arrays named
``<recorder>/<var>``.  Names are percent-encoded as path keys are
(docs/format.rst), so that any name is one group, dataset or array.
``.mat``: a struct per recorder (names made valid MATLAB identifiers).
``.nwb`` (pynwb, extra ``[nwb]``): every neuron of an ``events`` recorder is
a unit of the Units table (columns ``recorder`` and ``neuron``), each
variable of a ``samples`` recorder a TimeSeries in acquisition (columns:
the recorded neurons, named in its description); NWB's times are seconds.
Every file is written atomically.
"""

import datetime
import os
import re
import warnings

import numpy as np

from .._atomic import atomic_write
from ..errors import CheckpointError, UnsupportedFormatError
from ..formats.manifest import escape

__all__ = ["export", "SUFFIXES"]

SUFFIXES = (".h5", ".hdf5", ".npz", ".mat", ".nwb")


def export(rec, path):
    """Write the :class:`~checkpoint.recordings.Recordings` ``rec`` to ``path``."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    writers = {".h5": _h5, ".hdf5": _h5, ".npz": _npz, ".mat": _mat, ".nwb": _nwb}
    if suffix not in writers:
        raise UnsupportedFormatError(f"recordings are written as {', '.join(SUFFIXES)}", path=path)
    directory = getattr(rec, "directory", None)
    if directory is not None and os.path.realpath(os.path.dirname(os.path.abspath(path))) == os.path.realpath(
        directory
    ):  # it could replace a segment or a checkpoint of the run
        raise CheckpointError(
            "is in the run's folder, whose files are its Checkpointer's: write the recordings elsewhere", path=path
        )
    try:
        with atomic_write(path) as tmp:
            writers[suffix](rec, tmp)
    except (ValueError, TypeError, KeyError) as exc:
        # names come from the segments (anyone's files): what h5py/pynwb refuse is the
        # user's error to read, naming the file, not a parser's traceback
        raise CheckpointError(f"cannot write the recordings: {exc}", path=path) from None
    return path


def _arrays(recording):
    return {var: np.asarray(a) for var, a in recording.items()}


def _h5(rec, tmp):
    import h5py

    with h5py.File(tmp, "w") as f:
        f.attrs["run"] = rec.run or ""
        f.attrs["t_start_ms"] = np.nan if rec.t_start is None else rec.t_start
        f.attrs["t_end_ms"] = np.nan if rec.t_end is None else rec.t_end
        for name, recording in rec.items():
            # escaped as path keys are ("", ".", "..", "/" and "%"), the real name an attribute
            group = f.create_group(escape(name))
            group.attrs["kind"] = recording.kind
            group.attrs["name"] = name
            for var, array in _arrays(recording).items():
                dataset = group.create_dataset(escape(var), data=array)
                if recording.units.get(var):
                    dataset.attrs["unit"] = recording.units[var]


def _npz(rec, tmp):
    with open(tmp, "wb") as f:  # a file object: numpy would add ".npz" to a name
        np.savez(f, **{f"{escape(name)}/{escape(var)}": a for name, r in rec.items() for var, a in _arrays(r).items()})


def _identifier(name, taken):
    ident = re.sub(r"\W", "_", name)
    ident = ident if re.match(r"[A-Za-z]", ident) else "r_" + ident
    ident = ident[:63]
    while ident in taken:
        ident = ident[:60] + f"_{len(taken)}"
    taken.add(ident)
    return ident


def _mat(rec, tmp):
    import scipy.io

    taken = set()
    content = {
        _identifier(name, taken): {_identifier(var, set()): a for var, a in _arrays(r).items()}
        for name, r in rec.items()
    }
    with open(tmp, "wb") as f:
        scipy.io.savemat(f, content, long_field_names=True, do_compression=False)


def _nwb_name(name):
    """NWB names cannot hold '/' or ':' (and names come from the segments)."""
    return escape(name).replace(":", "%3A")


def _nwb(rec, tmp):
    try:
        from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    except ImportError:
        raise CheckpointError("writing .nwb needs pynwb: pip install 'neuro-checkpoint[nwb]'", path=tmp) from None
    nwb = NWBFile(
        session_description=f"recordings of run {rec.run} (checkpoint)",
        identifier=rec.run or "unknown",
        session_start_time=datetime.datetime.now(datetime.timezone.utc),
    )
    units = [(name, r) for name, r in rec.items() if r.kind == "events"]
    if units:
        nwb.add_unit_column("recorder", "the recorder (monitor) that recorded the unit")
        nwb.add_unit_column("neuron", "the neuron's index in its recorder's group")
    for name, recording in units:
        i, t = np.asarray(recording["i"]), np.asarray(recording["t"])
        order = np.argsort(i, kind="stable")
        neurons, starts = np.unique(i[order], return_index=True)
        for neuron, times in zip(neurons, np.split(t[order] / 1000.0, starts[1:])):
            nwb.add_unit(spike_times=times, recorder=name, neuron=int(neuron))
    for name, recording in rec.items():
        if recording.kind != "samples":
            continue
        t = np.asarray(recording["t"]) / 1000.0
        index = recording.get("index")
        columns = "" if index is None else f"; columns: neurons {np.asarray(index).tolist()[:1000]}"
        for var, array in _arrays(recording).items():
            if var in ("t", "index"):
                continue
            nwb.add_acquisition(
                TimeSeries(
                    name=_nwb_name(f"{name}.{var}"),
                    data=array,
                    timestamps=t,
                    unit=recording.units.get(var) or "unknown",
                    description=f"{var} recorded by {name}{columns}",
                )
            )
    with warnings.catch_warnings():  # the temporary's name; the file it becomes ends in .nwb
        warnings.filterwarnings("ignore", message=".*does not end in '.nwb'", category=UserWarning)
        with NWBHDF5IO(tmp, "w") as io:
            io.write(nwb)
