"""SONATA: a circuit folder of node and edge HDF5 files, their type tables
and a ``circuit_config.json``, as libsonata and NEST's ``SonataNetwork``
read them.

Layout (every path relative to the folder, which ``$BASE_DIR`` names):

* ``nodes/<id>.h5`` and ``nodes/<id>_types.csv``, one pair per population,
  in the state's order (NEST creates node IDs in the config's order, so a
  NEST network rebuilt from the export numbers its nodes as the original):
  ``/nodes/<population>/node_type_id``, ``node_group_id``,
  ``node_group_index`` and group ``0``, with the population's per-neuron
  variables as datasets, its per-neuron parameters under
  ``0/dynamics_params/``, and ``x``, ``y``, ``z`` where the state has
  positions.
* ``edges/<id>.h5`` and ``edges/<id>_types.csv``, one per projection:
  ``source_node_id`` and ``target_node_id`` (each with its
  ``node_population``) from the CSR connectivity, edges in CSR order (edge
  ``k`` is synapse ``k`` of the checkpoint), ``edge_type_id``,
  ``edge_group_id``, ``edge_group_index``, group ``0`` with ``syn_weight``
  and ``delay`` (ms) and every other per-synapse array (parameters under
  ``0/dynamics_params/``), and the ``indices`` groups libsonata uses for
  afferent and efferent queries.
* ``components/point_neuron_models/<id>.json`` and
  ``components/synaptic_models/<id>.json``: each type's ``dynamics_params``,
  the object's global parameters and the arrays with one value throughout
  (the only node and edge parameters NEST reads).
* ``circuit_config.json`` (nodes, edges, components) and
  ``simulation_config.json`` (``target_simulator`` NEST, ``run.dt``): NEST
  takes both (``SonataNetwork(circuit, sim_config=simulation)``); libsonata
  refuses ``target_simulator`` in a circuit config, so it is not there.

Type tables are space-separated (SONATA's CSV, as NEST reads it).  A
state saved from NEST names its node types ``nest:<model>`` and its edge
types by the bare synapse model, as NEST's reader wants them.
"""

import json
import os

import h5py
import numpy as np

from .._atomic import atomic_write
from ._source import delay_ms, saved_from_nest, is_uniform, numeric, safe_id, scalar, weight_name

__all__ = ["write", "CIRCUIT_CONFIG", "SIMULATION_CONFIG"]

CIRCUIT_CONFIG = "circuit_config.json"
SIMULATION_CONFIG = "simulation_config.json"
NODES, EDGES = "nodes", "edges"
NEURON_MODELS = "components/point_neuron_models"
SYNAPSE_MODELS = "components/synaptic_models"
POSITIONS = "positions"
#: NEST's adapter keeps a per-node array entry (a generator's spike times)
#: concatenated, with ``<key>.lengths`` per node.
LENGTHS = ".lengths"
#: NEST's name for the receptor port its adapter saves as ``receptor``.
NEST_RECEPTOR = ("receptor", "receptor_type")
READER = "NEST's SonataNetwork reads node parameters only from a node type's dynamics_params"
EDGE_READER = "NEST's SonataNetwork reads only syn_weight and delay per edge"


def write(folder, state, notes):
    """Write the circuit of ``state`` into ``folder`` (empty); returns the
    relative paths written."""
    written = []
    for sub in (NODES, EDGES, NEURON_MODELS, SYNAPSE_MODELS):
        os.makedirs(os.path.join(folder, sub))
    nest = saved_from_nest(state)
    stems, names, edge_names = set(), {}, set()
    nodes, edges = [], []
    for type_id, (name, pop) in enumerate(state.populations.items(), start=1):
        names[name] = _h5_name(name, set(names.values()))
        if names[name] != name:
            notes.drop(
                f"the population name {name!r}",
                f"a SONATA population name is unique and holds no '/': written as {names[name]!r}",
            )
        stem = safe_id(name, stems)
        model = f"nest:{name.rsplit('@', 1)[0]}" if nest else None
        nodes.append(_write_population(folder, stem, names[name], pop, type_id, model, nest, notes, written))
    for type_id, (name, proj) in enumerate(state.projections.items(), start=1):
        stem = safe_id(name, stems)
        edge_name = _h5_name(name, edge_names)
        edge_names.add(edge_name)
        if edge_name != name:
            notes.drop(
                f"the projection name {name!r}",
                f"a SONATA population name is unique and holds no '/': written as {edge_name!r}",
            )
        model = name.split(" ", 1)[0] if nest else None
        edges.append(_write_projection(folder, stem, edge_name, proj, names, type_id, model, nest, notes, written))
    _write_configs(folder, state, nodes, edges, notes, written)
    return written


# ------------------------------------------------------------------ nodes


def _write_population(folder, stem, name, pop, type_id, model, nest, notes, written):
    datasets, dynamics, params = _node_values(name, pop, nest, notes)
    nodes_file, types_file = f"{NODES}/{stem}.h5", f"{NODES}/{stem}_types.csv"
    params_file = f"{stem}.json"
    with _h5(folder, nodes_file, written) as f:
        group = f.create_group(f"nodes/{name}")
        group["node_type_id"] = np.full(pop.size, type_id, np.int64)
        group["node_group_id"] = np.zeros(pop.size, np.int64)
        group["node_group_index"] = np.arange(pop.size, dtype=np.uint64)
        _fill_group(group.create_group("0"), datasets, dynamics)
    columns = {"node_type_id": type_id, "model_type": "point_neuron"}
    if model:
        columns["model_template"] = model
    columns["dynamics_params"] = params_file
    _write_table(folder, types_file, columns, written)
    _write_json(folder, f"{NEURON_MODELS}/{params_file}", params, written)
    return {
        "nodes_file": f"$BASE_DIR/{nodes_file}",
        "node_types_file": f"$BASE_DIR/{types_file}",
        "populations": {name: {"type": "point_neuron"}},
    }


def _node_values(name, pop, nest, notes):
    """``(datasets, dynamics datasets, dynamics_params)`` of a population."""
    datasets, dynamics, params = {}, {}, {}
    for var in pop:
        if var.endswith(LENGTHS) and var[: -len(LENGTHS)] in pop.arrays:
            continue  # how a concatenated per-node array splits: it goes (or stays) with that array
        info, value = pop.info[var], np.asarray(pop[var])
        stored = numeric(value)
        where = f"{name}.{var}"
        if stored is None:
            notes.drop(where, "not numbers")
        elif info.scope == "global":
            if stored.size == 1:
                params[var] = scalar(value)
            else:
                notes.drop(where, "a global array")
        elif info.scope != "neuron":
            notes.drop(where, "simulator-internal state" if info.kind == "internal" else "not one value per neuron")
        elif var == POSITIONS and stored.ndim == 2 and stored.shape[1] in (2, 3):
            datasets.update(zip("xyz", stored.T.astype(np.float64)))
        elif stored.ndim != 1:
            if stored.shape[0] and bool(np.all(stored == stored[:1])):
                params[var] = value[0].tolist()
            else:
                notes.drop(where, "an array per neuron")
        else:
            (dynamics if info.kind == "parameter" else datasets)[var] = stored
            if is_uniform(stored):
                params[var] = scalar(value)
            elif nest:
                notes.ignore(f"{where} (one value per neuron)", READER)
    return datasets, dynamics, params


def _fill_group(group, datasets, dynamics):
    for var, values in datasets.items():
        group[_h5_key(var)] = values
    sub = group.create_group("dynamics_params")
    for var, values in dynamics.items():
        sub[_h5_key(var)] = values


def _h5_name(name, taken):
    """A population's name as an HDF5 group name (no ``/``, not ``.``),
    not one of ``taken``."""
    text = name.replace("/", "_") if name not in ("", ".") else "_"
    candidate, n = text, 1
    while candidate in taken:
        n += 1
        candidate = f"{text}_{n}"
    return candidate


def _h5_key(var):
    return var.replace("/", "_") if var not in (".", "") else "_"


# ------------------------------------------------------------------ edges


def _write_projection(folder, stem, name, proj, names, type_id, model, nest, notes, written):
    n_post = proj.shape[0]
    source = np.asarray(proj.indices).astype(np.uint64)
    target = np.repeat(np.arange(n_post, dtype=np.uint64), np.diff(np.asarray(proj.indptr)))
    datasets, dynamics, params = _edge_values(name, proj, nest, notes)
    edges_file, types_file = f"{EDGES}/{stem}.h5", f"{EDGES}/{stem}_types.csv"
    params_file = f"{stem}.json"
    with _h5(folder, edges_file, written) as f:
        group = f.create_group(f"edges/{name}")
        group["source_node_id"] = source
        group["source_node_id"].attrs["node_population"] = names[proj.pre]
        group["target_node_id"] = target
        group["target_node_id"].attrs["node_population"] = names[proj.post]
        group["edge_type_id"] = np.full(proj.nnz, type_id, np.int64)
        group["edge_group_id"] = np.zeros(proj.nnz, np.int64)
        group["edge_group_index"] = np.arange(proj.nnz, dtype=np.uint64)
        _fill_group(group.create_group("0"), datasets, dynamics)
        indices = group.create_group("indices")
        _write_index(indices.create_group("source_to_target"), source, proj.shape[1])
        _write_index(indices.create_group("target_to_source"), target, n_post)
    columns = {"edge_type_id": type_id}
    if model:
        columns["model_template"] = model
    columns["dynamics_params"] = params_file
    _write_table(folder, types_file, columns, written)
    _write_json(folder, f"{SYNAPSE_MODELS}/{params_file}", params, written)
    return {
        "edges_file": f"$BASE_DIR/{edges_file}",
        "edge_types_file": f"$BASE_DIR/{types_file}",
        "populations": {name: {}},
    }


def _edge_values(name, proj, nest, notes):
    """``(datasets, dynamics datasets, dynamics_params)`` of a projection:
    ``syn_weight`` and ``delay`` one per edge, whatever their scope."""
    datasets, dynamics, params = {}, {}, {}
    weight = weight_name(proj)
    if weight is not None:
        datasets["syn_weight"] = np.asarray(proj.to_scipy(weight).data, np.float64)
    delays = delay_ms(proj)
    if delays is not None:
        datasets["delay"] = (
            np.broadcast_to(delays, (proj.nnz,)).astype(np.float64)
            if delays.ndim == 0
            else np.repeat(delays, np.diff(np.asarray(proj.indptr)))
            if proj.info["delay"].scope == "post"
            else delays
        )
    for var in proj:
        if var in (weight, "delay"):
            continue
        info, value = proj.info[var], np.asarray(proj[var])
        stored = numeric(value)
        where = f"{name}.{var}"
        json_name = NEST_RECEPTOR[1] if nest and var == NEST_RECEPTOR[0] else var
        if stored is None:
            notes.drop(where, "not numbers")
        elif info.scope == "global":
            if stored.size == 1:
                params[json_name] = scalar(value)
            else:
                notes.drop(where, "a global array")
        elif info.scope not in ("synapse", "post") or stored.ndim != 1:
            notes.drop(where, "simulator-internal state" if info.kind == "internal" else "not one value per synapse")
        else:
            if info.scope == "post":  # SONATA has no per-target arrays: one value per edge
                stored = np.repeat(stored, np.diff(np.asarray(proj.indptr)))
            (dynamics if info.kind == "parameter" else datasets)[var] = stored
            if is_uniform(stored):
                params[json_name] = scalar(stored)
            elif nest:
                notes.ignore(f"{where} (one value per synapse)", EDGE_READER)
    return datasets, dynamics, params


def _write_index(group, node_ids, n_nodes):
    """libsonata's index of the edges by one end: ``range_to_edge_id`` holds
    runs ``[first edge, end)`` of consecutive edge ids with one node, in node
    order; ``node_id_to_ranges[node]`` the ``[first run, end)`` of its runs."""
    order = np.argsort(node_ids, kind="stable").astype(np.uint64)
    nodes = node_ids[order]
    if len(order):
        breaks = np.flatnonzero((np.diff(nodes) != 0) | (np.diff(order.astype(np.int64)) != 1)) + 1
        starts = np.concatenate([[0], breaks]).astype(np.int64)
        ends = np.concatenate([breaks, [len(order)]]).astype(np.int64)
        runs = np.stack([order[starts], order[ends - 1] + np.uint64(1)], axis=1)
        run_nodes = nodes[starts]
    else:
        runs, run_nodes = np.zeros((0, 2), np.uint64), np.zeros(0, np.uint64)
    all_nodes = np.arange(n_nodes, dtype=np.uint64)
    first = np.searchsorted(run_nodes, all_nodes, "left").astype(np.uint64)
    end = np.searchsorted(run_nodes, all_nodes, "right").astype(np.uint64)
    # a node without edges: an empty run range where its runs would be, as libsonata writes it
    group["node_id_to_ranges"] = np.stack([first, end], axis=1) if n_nodes else np.zeros((0, 2), np.uint64)
    group["range_to_edge_id"] = runs.astype(np.uint64)


# ------------------------------------------------------------ the configs


def _write_configs(folder, state, nodes, edges, notes, written):
    circuit = {
        "manifest": {"$BASE_DIR": "."},
        "components": {
            "point_neuron_models_dir": f"$BASE_DIR/{NEURON_MODELS}",
            "synaptic_models_dir": f"$BASE_DIR/{SYNAPSE_MODELS}",
        },
        "networks": {"nodes": nodes, "edges": edges},
    }
    _write_json(folder, CIRCUIT_CONFIG, circuit, written)
    simulation = {
        "manifest": {"$BASE_DIR": "."},
        "target_simulator": "NEST",
        "network": f"$BASE_DIR/{CIRCUIT_CONFIG}",
        "run": {},
    }
    if state.dt is not None:
        simulation["run"]["dt"] = float(state.dt)
    else:
        notes.drop("the time step", "the state has none: add run.dt to simulation_config.json for NEST")
    _write_json(folder, SIMULATION_CONFIG, simulation, written)


# ------------------------------------------------------------------ files


class _h5:
    """An HDF5 file written atomically at ``folder/name``, with SONATA's
    root attributes."""

    def __init__(self, folder, name, written):
        self.path, self.name, self.written = os.path.join(folder, name), name, written

    def __enter__(self):
        self._atomic = atomic_write(self.path)
        self._file = h5py.File(self._atomic.__enter__(), "w")
        self._file.attrs["magic"] = np.uint32(0x0A7A)
        self._file.attrs["version"] = np.array([0, 1], np.uint32)
        return self._file

    def __exit__(self, *exc):
        self._file.close()
        self._atomic.__exit__(*exc)
        if exc[0] is None:
            self.written.append(self.name)


def _write_table(folder, name, columns, written):
    """A one-row SONATA type table: space-separated, a header line."""
    text = " ".join(columns) + "\n" + " ".join(str(v) for v in columns.values()) + "\n"
    with atomic_write(os.path.join(folder, name)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    written.append(name)


def _write_json(folder, name, value, written):
    """JSON as Python writes it (an infinite parameter, NEST's default
    ``stop``, as ``Infinity``, which NEST's reader takes)."""
    with atomic_write(os.path.join(folder, name)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
    written.append(name)
