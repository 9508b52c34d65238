"""NeuroML 2 HDF5: the layout libNeuroML's ``NeuroMLHdf5Writer`` produces,
which its ``NeuroMLHdf5Loader`` reads back.

``/neuroml`` (``id``, ``notes``, ``GENERATED_BY``, ``neuroml_top_level``:
the document without its network, as XML) holds ``network``, which holds
one ``population_<id>`` group per population (``id``, ``component``,
``size``; with positions, ``type`` ``populationList`` and a dataset
``<id>`` of ``x``, ``y``, ``z`` rows; the population's name in
``property:checkpoint_name``) and one ``projection_<id>`` group per
projection (``id``, ``type`` ``projection``, ``presynapticPopulation``,
``postsynapticPopulation``, ``synapse``) with a dataset ``<id>`` of rows
``pre_cell_id``, ``post_cell_id``, ``weight``, ``delay`` (ms), one per
synapse in CSR order.  Attributes are fixed-length strings and datasets
carry PyTables' ``CLASS``/``VERSION``/``TITLE``, as the writer's are; values
are float64, where the writer rounds to float32 (the loader reads either).

NeuroML ids are ``[A-Za-z_][A-Za-z0-9_]*``: names are mapped by
:func:`checkpoint.interchange._source.safe_id` (``iaf_psc_alpha@1`` is
``iaf_psc_alpha_at_1``).
"""

import h5py
import numpy as np

from .._atomic import atomic_write
from .._version import __version__
from ._source import delay_ms, saved_from_nest, safe_id, weight_name

__all__ = ["write"]

#: The XML namespace of the NeuroML 2 document the writer embeds.
NAMESPACE = (
    'xmlns="http://www.neuroml.org/schema/neuroml2"  xmlns:xs="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.neuroml.org/'
    "schema/neuroml2 https://raw.github.com/NeuroML/NeuroML2/development/Schemas/NeuroML2/"
    'NeuroML_v2.3.1.xsd"'
)
CONNECTION_COLUMNS = ("pre_cell_id", "post_cell_id", "weight", "delay")
POSITIONS = "positions"


def write(path, state, notes):
    """Write ``state`` as one NeuroML 2 HDF5 file at ``path``, atomically."""
    nest = saved_from_nest(state)
    ids, taken = {}, set()
    for name in state.populations:
        ids[name] = safe_id(name, taken)
    proj_ids = {name: safe_id(name, taken) for name in state.projections}
    for name, new in list(ids.items()) + list(proj_ids.items()):
        if new != name:
            notes.drop(f"the name {name!r}", f"not a NeuroML id: written as {new!r}")
    _note_values(state, notes)
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            _pytables_group(f, "doc")
            root = f.create_group("neuroml")
            _pytables_group(root, "Root NeuroML group")
            _attrs(
                root,
                id="doc",
                notes="Exported by neuro-checkpoint",
                GENERATED_BY=f"neuro-checkpoint {__version__}",
                neuroml_top_level=f'<neuroml {NAMESPACE} id="doc"/>\n',
            )
            network = root.create_group("network")
            _pytables_group(network)
            _attrs(network, id="network", notes="Exported by neuro-checkpoint")
            for name, pop in state.populations.items():
                component = safe_id(name.rsplit("@", 1)[0], set()) if nest else ids[name]
                _write_population(network, ids[name], name, pop, component)
            for name, proj in state.projections.items():
                synapse = name.split(" ", 1)[0] if nest else (proj.target or "synapse")
                _write_projection(network, proj_ids[name], ids[proj.pre], ids[proj.post], proj, safe_id(synapse, set()))


def _note_values(state, notes):
    """NeuroML's network holds structure, weights and delays: every other
    array is left out (a cell's parameters belong to its component, which
    an export does not define)."""
    for name, pop in state.populations.items():
        left = [var for var in pop if var != POSITIONS]
        if left:
            notes.drop(
                f"{name}: {', '.join(left)}",
                "NeuroML's network has no per-cell values; the component a population names is not defined",
            )
    for name, proj in state.projections.items():
        left = [var for var in proj if var not in (weight_name(proj), "delay")]
        if left:
            notes.drop(f"{name}: {', '.join(left)}", "a NeuroML connection holds a weight and a delay")


def _write_population(network, pop_id, name, pop, component):
    group = network.create_group(f"population_{pop_id}")
    _pytables_group(group)
    _attrs(group, id=pop_id, component=component)
    group.attrs["size"] = np.int64(pop.size)
    _attrs(group, **{"property:checkpoint_name": name})
    positions = np.asarray(pop[POSITIONS], np.float64) if POSITIONS in pop.arrays else None
    if positions is not None and positions.ndim == 2 and positions.shape[1] in (2, 3) and pop.size:
        rows = np.zeros((pop.size, 3), np.float64)
        rows[:, : positions.shape[1]] = positions
        _attrs(group, type="populationList")
        _dataset(group, pop_id, rows, f"Locations of cells in {pop_id}", ("x", "y", "z"))


def _write_projection(network, proj_id, pre, post, proj, synapse):
    group = network.create_group(f"projection_{proj_id}")
    _pytables_group(group)
    _attrs(
        group, id=proj_id, type="projection", presynapticPopulation=pre, postsynapticPopulation=post, synapse=synapse
    )
    if not proj.nnz:  # as the writer: no connections, no dataset
        return
    columns = [
        np.asarray(proj.indices, np.float64),
        np.repeat(np.arange(proj.shape[0], dtype=np.float64), np.diff(np.asarray(proj.indptr))),
    ]
    names = list(CONNECTION_COLUMNS[:2])
    weight = weight_name(proj)
    if weight is not None:
        columns.append(np.asarray(proj.to_scipy(weight).data, np.float64))
        names.append("weight")
    delays = delay_ms(proj)
    if delays is not None:
        scope = proj.info["delay"].scope
        columns.append(
            np.broadcast_to(delays, (proj.nnz,))
            if delays.ndim == 0 or scope == "global"
            else np.repeat(delays, np.diff(np.asarray(proj.indptr)))
            if scope == "post"
            else delays
        )
        names.append("delay")
    _dataset(group, proj_id, np.stack(columns, axis=1), f"Connections of cells in {proj_id}", names)


def _dataset(group, name, rows, title, columns):
    """A PyTables CArray as the writer makes it: zlib level 5, chunked."""
    data = group.create_dataset(
        name, data=rows, compression="gzip", compression_opts=5, chunks=(min(len(rows), 4096), rows.shape[1])
    )
    _attrs(data, CLASS="CARRAY", VERSION="1.1", TITLE=title)
    _attrs(data, **{f"column_{i}": column for i, column in enumerate(columns)})


def _pytables_group(group, title=None):
    _attrs(group, CLASS="GROUP", VERSION="1.0")
    group.attrs["TITLE"] = np.bytes_(title.encode()) if title else h5py.Empty("S1")
    if group.name == "/":
        _attrs(group, PYTABLES_FORMAT_VERSION="2.1")


def _attrs(obj, **values):
    """Fixed-length string attributes, as PyTables writes them."""
    for key, value in values.items():
        obj.attrs[key] = np.bytes_(str(value).encode("utf-8")) if value else h5py.Empty("S1")
