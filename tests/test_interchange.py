"""Export to SONATA and NeuroML 2 HDF5, read back by the tools that define
them: libsonata, NEST's SonataNetwork (in a process of its own, with a NEST
built with HDF5: tests/sonata_nest.py), libNeuroML's NeuroMLHdf5Loader."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest
import scipy.sparse

import checkpoint
from checkpoint import CheckpointError, CheckpointWarning, CorruptCheckpointError, UnsupportedFormatError
from checkpoint.formats import write_state
from checkpoint.interchange._output import MARK, DestinationError
from checkpoint.state import ArrayInfo, NetworkState, PopulationState, ProjectionState

from helpers import izhikevich_network

libsonata = pytest.importorskip("libsonata", reason="pip install -e '.[sonata]'")
neuroml_loaders = pytest.importorskip("neuroml.loaders", reason="pip install -e '.[neuroml]'")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEST_SONATA_PYTHON = os.environ.get(
    "CHECKPOINT_NEST_SONATA_PYTHON", os.path.join(ROOT, ".venv", "nest-sonata", "bin", "python")
)


def network(seed=0):
    """The Izhikevich test network, plus what an export must place: a
    per-neuron parameter, positions, float64 weights, per-synapse delays."""
    net = izhikevich_network(seed)
    rng = np.random.default_rng(seed)
    grid = net.add_population(
        "grid", 12, parameters={"tau": rng.uniform(5, 20, 12), "g": 0.5}, variables={"v": rng.normal(-65, 2, 12)}
    )
    pop0 = net.populations["pop0"]
    conn = scipy.sparse.random(12, pop0.size, density=0.3, format="csr", random_state=seed)
    net.add_projection(
        "pop0_grid",
        pop0,
        grid,
        "inh",
        conn,
        variables={"w": rng.uniform(0, 1, conn.nnz)},
        delays=rng.integers(1, 20, conn.nnz) * 0.5,
    )
    return net


def tree(folder):
    """Every file under ``folder``, relative, with its digest."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def export(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CheckpointWarning)
        return checkpoint.export(*args, **kwargs)


def csr_edges(proj):
    """``(source, target)`` of every synapse, in CSR order."""
    return (np.asarray(proj.indices), np.repeat(np.arange(proj.shape[0]), np.diff(np.asarray(proj.indptr))))


# --------------------------------------------------------------- SONATA


def test_libsonata_reads_every_population_as_saved(tmp_path):
    net = network()
    export(tmp_path / "circuit", net, to="sonata")
    state = checkpoint.read(_saved(tmp_path, net))
    config = libsonata.CircuitConfig.from_file(str(tmp_path / "circuit" / "circuit_config.json"))
    assert config.node_populations == set(state.populations)
    assert config.edge_populations == set(state.projections)
    for name, pop in state.populations.items():
        nodes = config.node_population(name)
        assert nodes.size == pop.size
        every = nodes.select_all()
        for var in pop:
            if pop.info[var].scope != "neuron":
                continue
            get = nodes.get_dynamics_attribute if pop.info[var].kind == "parameter" else nodes.get_attribute
            assert np.array_equal(get(var, every), np.asarray(pop[var]).astype(get(var, every).dtype)), var
    grid = config.node_population("grid")
    assert np.array_equal(grid.get_dynamics_attribute("tau", grid.select_all()), state.populations["grid"]["tau"])
    for name, proj in state.projections.items():
        edges = config.edge_population(name)
        assert (edges.source, edges.target, edges.size) == (proj.pre, proj.post, proj.nnz)
        every = edges.select_all()
        source, target = csr_edges(proj)
        assert np.array_equal(edges.source_nodes(every), source)
        assert np.array_equal(edges.target_nodes(every), target)
        assert np.array_equal(edges.get_attribute("syn_weight", every), np.asarray(proj["w"], np.float64))
        assert np.array_equal(
            edges.get_attribute("delay", every), np.broadcast_to(np.asarray(proj["delay"], np.float64), (proj.nnz,))
        )
        # the indices: afferent and efferent edges of every node, as the CSR has them
        for node in range(proj.shape[0]):
            assert edges.afferent_edges([node]).flatten().tolist() == list(
                range(proj.indptr[node], proj.indptr[node + 1])
            )
        for node in range(proj.shape[1]):
            assert edges.efferent_edges([node]).flatten().tolist() == np.flatnonzero(source == node).tolist()


def _saved(tmp_path, net):
    path = tmp_path / "run.h5"
    checkpoint.save(path, net)
    return path


def test_indices_are_those_libsonata_writes(tmp_path):
    net = network()
    export(tmp_path / "circuit", net, to="sonata")
    for name, proj in net.projections.items():
        ours = tmp_path / "circuit" / "edges" / f"{name}.h5"
        theirs = tmp_path / f"{name}.h5"
        shutil.copy(ours, theirs)
        with h5py.File(theirs, "r+") as f:
            del f[f"edges/{name}/indices"]
        libsonata.EdgePopulation.write_indices(str(theirs), name, proj.pre.size, proj.post.size)
        with h5py.File(ours) as a, h5py.File(theirs) as b:
            for index in ("source_to_target", "target_to_source"):
                for part in ("node_id_to_ranges", "range_to_edge_id"):
                    key = f"edges/{name}/indices/{index}/{part}"
                    assert np.array_equal(a[key][()], b[key][()]), key
                    assert a[key].dtype == b[key].dtype, key


def test_configs_name_every_file_relative_to_the_folder(tmp_path):
    net = network()
    export(tmp_path / "circuit", net, to="sonata")
    folder = tmp_path / "circuit"
    config = json.loads((folder / "circuit_config.json").read_text())
    assert "target_simulator" not in config  # libsonata refuses it in a circuit config
    simulation = json.loads((folder / "simulation_config.json").read_text())
    assert simulation["target_simulator"] == "NEST" and simulation["run"]["dt"] == net.dt
    listed = json.loads((folder / MARK).read_text())["files"]
    assert sorted(listed) == sorted(set(tree(folder)) - {MARK})
    # the folder moves as a whole: $BASE_DIR, no absolute paths
    moved = tmp_path / "elsewhere"
    shutil.move(folder, moved)
    config = libsonata.CircuitConfig.from_file(str(moved / "circuit_config.json"))
    assert config.node_population("pop0").size == 40
    for entry in json.loads((moved / "circuit_config.json").read_text())["networks"]["nodes"]:
        assert entry["nodes_file"].startswith("$BASE_DIR/")
        table = (moved / entry["node_types_file"].replace("$BASE_DIR/", "")).read_text().split("\n")
        header, row = table[0].split(), table[1].split()  # space-separated, as NEST reads it
        params = dict(zip(header, row))["dynamics_params"]
        assert (moved / "components" / "point_neuron_models" / params).is_file()


def test_a_state_a_network_and_a_file_export_alike(tmp_path):
    net = network()
    path = _saved(tmp_path, net)
    export(tmp_path / "a", net, to="sonata")
    export(tmp_path / "b", checkpoint.read(path), to="sonata")
    export(tmp_path / "c", path, to="sonata")
    assert _contents(tmp_path / "a") == _contents(tmp_path / "b") == _contents(tmp_path / "c")


def _contents(folder):
    """What a folder export holds, HDF5 files by their datasets and attributes."""
    out = {}
    for name in tree(folder):
        full = os.path.join(folder, name)
        if name.endswith(".h5"):
            with h5py.File(full) as f:
                items = {}
                f.visititems(
                    lambda key, obj: items.__setitem__(
                        key,
                        (
                            obj[()].tobytes() if isinstance(obj, h5py.Dataset) else None,
                            sorted((k, str(v)) for k, v in obj.attrs.items()),
                        ),
                    )
                )
                out[name] = items
        else:
            out[name] = open(full, "rb").read()
    return out


def test_nest_names_and_models(tmp_path):
    """A state saved from NEST: its names, ``nest:<model>`` node types, the
    bare synapse model, and what NEST's reader will not read is said."""
    state = _nest_like_state()
    with pytest.warns(CheckpointWarning) as caught:
        checkpoint.export(tmp_path / "circuit", state, to="sonata")
    message = " ".join(str(w.message) for w in caught)
    assert "iaf_psc_alpha@1.V_m (one value per neuron)" in message and "NEST" in message
    assert "receptor" not in message  # one value throughout: in the edge type's dynamics_params
    folder = tmp_path / "circuit"
    config = libsonata.CircuitConfig.from_file(str(folder / "circuit_config.json"))
    assert config.node_populations == {"iaf_psc_alpha@1"}
    assert config.edge_populations == {"static_synapse iaf_psc_alpha@1->iaf_psc_alpha@1"}
    nodes = (folder / "nodes" / "iaf_psc_alpha_at_1_types.csv").read_text().split()
    assert "nest:iaf_psc_alpha" in nodes
    params = json.loads((folder / "components" / "point_neuron_models" / "iaf_psc_alpha_at_1.json").read_text())
    assert params == {"I_e": 5.0}  # uniform values only: V_m differs per neuron
    edge_table = folder / "edges" / "static_synapse_iaf_psc_alpha_at_1__to__iaf_psc_alpha_at_1_types.csv"
    assert "static_synapse" in edge_table.read_text().split()
    synapse = json.loads(
        (
            folder / "components" / "synaptic_models" / "static_synapse_iaf_psc_alpha_at_1__to__iaf_psc_alpha_at_1.json"
        ).read_text()
    )
    assert synapse == {"receptor_type": 0}


def _nest_like_state():
    n = 4
    pop = PopulationState(
        "iaf_psc_alpha@1",
        n,
        arrays={"V_m": np.array([-70.0, -65, -60, -55]), "I_e": np.full(n, 5.0)},
        info={"V_m": ArrayInfo("variable", "neuron"), "I_e": ArrayInfo("parameter", "neuron")},
    )
    indptr, indices = np.array([0, 1, 2, 3, 3]), np.array([1, 2, 3])
    name = "static_synapse iaf_psc_alpha@1->iaf_psc_alpha@1"
    proj = ProjectionState(
        name,
        pop.name,
        pop.name,
        (n, n),
        indptr,
        indices,
        target=None,
        arrays={
            "weight": np.array([1.0, 2.0, 3.0]),
            "delay": np.array([1.0, 1.5, 2.0]),
            "receptor": np.zeros(3, np.int64),
        },
        info={
            "weight": ArrayInfo("variable", "synapse"),
            "delay": ArrayInfo("parameter", "synapse"),
            "receptor": ArrayInfo("parameter", "synapse"),
        },
    )
    return NetworkState(
        meta={"simulator": {"name": "nest", "version": "3.10.0"}, "dt": 0.1, "time": 0.0, "step": 0},
        populations={pop.name: pop},
        projections={name: proj},
    )


# -------------------------------------------------------------- NeuroML


def test_neuroml_loader_reads_populations_and_connections(tmp_path):
    net = network()
    path = tmp_path / "net.nml.h5"
    export(path, net, to="neuroml")
    doc = neuroml_loaders.NeuroMLHdf5Loader.load(str(path))
    (nml,) = doc.networks
    assert {p.id: p.size for p in nml.populations} == {name: p.size for name, p in net.populations.items()}
    projections = {p.id: p for p in nml.projections}
    assert set(projections) == set(net.projections)
    for name, proj in net.projections.items():
        loaded = projections[name]
        assert (loaded.presynaptic_population, loaded.postsynaptic_population) == (proj.pre.name, proj.post.name)
        rows = [
            (c.get_pre_cell_id(), c.get_post_cell_id(), float(c.weight), c.get_delay_in_ms())
            for c in loaded.connection_wds
        ]
        source, target = csr_edges(proj)
        assert [r[0] for r in rows] == source.tolist() and [r[1] for r in rows] == target.tolist()
        assert np.array_equal([r[2] for r in rows], np.asarray(proj.w, np.float64))  # float64, exactly
        assert np.array_equal([r[3] for r in rows], np.broadcast_to(proj.delay, (proj.nnz,)))


def test_neuroml_positions_and_mapped_ids(tmp_path):
    state = _nest_like_state()
    pop = state.populations["iaf_psc_alpha@1"]
    pop.arrays["positions"] = np.arange(12.0).reshape(4, 3)
    pop.info["positions"] = ArrayInfo("parameter", "neuron")
    path = tmp_path / "net.nml.h5"
    with pytest.warns(CheckpointWarning, match="iaf_psc_alpha_at_1"):
        checkpoint.export(path, state, to="neuroml")
    (nml,) = neuroml_loaders.NeuroMLHdf5Loader.load(str(path)).networks
    (loaded,) = nml.populations
    assert (loaded.id, loaded.component, loaded.size) == ("iaf_psc_alpha_at_1", "iaf_psc_alpha", 4)
    assert [(i.location.x, i.location.y, i.location.z) for i in loaded.instances] == [
        tuple(row) for row in pop["positions"].tolist()
    ]
    assert {p.tag: p.value for p in loaded.properties} == {"checkpoint_name": "iaf_psc_alpha@1"}
    (projection,) = nml.projections
    assert projection.id == "static_synapse_iaf_psc_alpha_at_1__to__iaf_psc_alpha_at_1"
    assert projection.synapse == "static_synapse"


def test_neuroml_layout_is_the_writers(tmp_path):
    """Group and dataset paths, attribute names and types as libNeuroML's
    own NeuroMLHdf5Writer makes them for the same network."""
    import neuroml
    import neuroml.utils  # noqa: F401  (the writer needs it loaded)
    from neuroml.writers import NeuroMLHdf5Writer

    state = _nest_like_state()
    ours = tmp_path / "ours.nml.h5"
    export(ours, state, to="neuroml")
    loaded = neuroml_loaders.NeuroMLHdf5Loader.load(str(ours))
    theirs = tmp_path / "theirs.nml.h5"
    NeuroMLHdf5Writer.write(loaded, str(theirs))
    assert _layout(ours) == _layout(theirs)


def _layout(path):
    out = {}
    with h5py.File(path) as f:

        def visit(name, obj):
            kind = "dataset" if isinstance(obj, h5py.Dataset) else "group"
            attrs = {
                k: obj.attrs.get_id(k).get_type().__class__.__name__
                for k in obj.attrs
                if k not in ("FILTERS", "notes", "GENERATED_BY")
            }
            out[name] = (kind, getattr(obj, "shape", None), attrs)

        f.visititems(visit)
    return out


# ---------------------------------------------------- command line, overwrite


def test_the_command_line_writes_the_same_files(tmp_path):
    path = _saved(tmp_path, network())
    export(tmp_path / "api", path, to="sonata")
    export(tmp_path / "api.nml.h5", path, to="neuroml")
    for args in (["sonata", "cli"], ["neuroml", "cli.nml.h5"]):
        run = subprocess.run(
            [sys.executable, "-m", "checkpoint", "export", str(path), str(tmp_path / args[1]), "--to", args[0]],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert run.returncode == 0, run.stderr
    assert tree(tmp_path / "api") == tree(tmp_path / "cli")  # byte for byte
    assert (tmp_path / "api.nml.h5").read_bytes() == (tmp_path / "cli.nml.h5").read_bytes()
    again = subprocess.run(
        [sys.executable, "-m", "checkpoint", "export", str(path), str(tmp_path / "cli"), "--to", "sonata"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert again.returncode == 2 and "overwrite" in again.stderr
    forced = subprocess.run(
        [
            sys.executable,
            "-m",
            "checkpoint",
            "export",
            str(path),
            str(tmp_path / "cli"),
            "--to",
            "sonata",
            "--overwrite",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert forced.returncode == 0, forced.stderr


def test_an_existing_export_is_refused_then_replaced_whole(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    export(tmp_path / "circuit", network(0), to="sonata")
    before = tree(tmp_path)
    with pytest.raises(DestinationError, match="overwrite=True"):
        export(tmp_path / "circuit", network(1), to="sonata")
    assert tree(tmp_path) == before
    net = izhikevich_network(2)  # fewer populations: the old files must go
    export(tmp_path / "circuit", net, to="sonata", overwrite=True)
    after = tree(tmp_path)
    assert after["notes.txt"] == before["notes.txt"]
    assert not any(name.startswith("circuit/nodes/grid") for name in after)
    assert _contents(tmp_path / "circuit") == _export_alone(tmp_path / "fresh", net)
    assert sorted(os.listdir(tmp_path)) == ["circuit", "fresh", "notes.txt"]  # nothing left beside it


def _export_alone(folder, net):
    export(folder, net, to="sonata")
    return _contents(folder)


def test_a_folder_with_files_no_export_wrote_is_never_replaced(tmp_path):
    folder = tmp_path / "circuit"
    export(folder, network(), to="sonata")
    (folder / "nodes" / "my_notes.txt").write_text("mine")
    before = tree(tmp_path)
    with pytest.raises(DestinationError, match="my_notes.txt"):
        export(folder, network(1), to="sonata", overwrite=True)
    assert tree(tmp_path) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.h5").write_bytes(b"not an export")
    with pytest.raises(DestinationError, match="no export wrote"):
        export(other, network(), to="sonata", overwrite=True)
    assert (other / "data.h5").read_bytes() == b"not an export"
    empty = tmp_path / "empty"
    empty.mkdir()
    export(empty, network(), to="sonata")  # an empty folder is taken as it is
    assert (empty / "circuit_config.json").is_file()


def test_a_neuroml_file_is_refused_then_replaced(tmp_path):
    path = tmp_path / "net.nml.h5"
    path.write_bytes(b"precious")
    with pytest.raises(DestinationError, match="overwrite"):
        export(path, network(), to="neuroml")
    assert path.read_bytes() == b"precious"
    export(path, network(), to="neuroml", overwrite=True)
    assert neuroml_loaders.NeuroMLHdf5Loader.load(str(path)).networks[0].populations
    assert sorted(os.listdir(tmp_path)) == ["net.nml.h5"]


def test_an_unknown_format_is_refused(tmp_path):
    with pytest.raises(UnsupportedFormatError, match="neuroml, sonata"):
        checkpoint.export(tmp_path / "x", network(), to="nwb")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------ hostile input


def test_a_forged_checkpoint_gets_what_every_reader_gives(tmp_path):
    net = network()
    path = _saved(tmp_path, net)
    state = checkpoint.read(path)
    state.projections["proj0"].indices = state.projections["proj0"].indices + 1000  # consistent digests
    write_state(tmp_path / "forged.h5", state)
    damaged = tmp_path / "damaged.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    damaged.write_bytes(bytes(data))
    before = tree(tmp_path)
    for source, match in ((tmp_path / "forged.h5", "out of range"), (damaged, None)):
        for to, dest in (("sonata", "circuit"), ("neuroml", "net.nml.h5")):
            with pytest.raises(CheckpointError, match=match) as info:
                checkpoint.export(tmp_path / dest, source, to=to)
            assert source.name in str(info.value)
            assert tree(tmp_path) == before  # nothing written, nothing changed
    with pytest.raises(CorruptCheckpointError):
        checkpoint.export(tmp_path / "circuit", tmp_path / "forged.h5", to="sonata")


def test_a_state_whose_projection_does_not_fit_is_refused(tmp_path):
    state = _nest_like_state()
    proj = next(iter(state.projections.values()))
    proj.arrays["weight"] = np.ones(7)
    with pytest.raises(CorruptCheckpointError, match="weight"):
        checkpoint.export(tmp_path / "circuit", state, to="sonata")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------- NEST


def _nest_sonata(*args, python=NEST_SONATA_PYTHON, timeout=600):
    if not os.path.exists(python):
        pytest.fail(f"no NEST with HDF5 at {python}: make .venv/.nest-sonata (or set CHECKPOINT_NEST_SONATA_PYTHON)")
    env = dict(os.environ, PYTHONPATH=ROOT)
    run = subprocess.run(
        [python, os.path.join(ROOT, "tests", "sonata_nest.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


def test_nests_reader_creates_the_nodes_of_a_nest_checkpoint(tmp_path):
    """With the test environment's own NEST (no HDF5 needed for this half):
    a checkpoint saved from NEST, exported, gives NEST's SonataNetwork the
    same populations, node IDs and every per-node value."""
    # never ``import nest`` here: this process may hold Brian2 or ANNarchy (the Makefile's first pytest)
    _nest_sonata("original", tmp_path / "run.h5", tmp_path / "spikes.npz", 10.0, python=sys.executable)
    export(tmp_path / "circuit", tmp_path / "run.h5", to="sonata")
    types = (tmp_path / "circuit" / "nodes" / "iaf_psc_alpha_at_1_types.csv").read_text().split()
    assert "nest:iaf_psc_alpha" in types
    _nest_sonata("nodes", tmp_path / "circuit", tmp_path / "run.h5", python=sys.executable)


@pytest.fixture(scope="module")
def nest_run(tmp_path_factory):
    """A NEST network saved right after it was built (t = 0), and the
    spikes it then fires in 300 ms."""
    folder = tmp_path_factory.mktemp("nest")
    _nest_sonata("original", folder / "run.h5", folder / "original.npz", 300.0)
    return folder


def test_nest_builds_the_exported_circuit_with_the_same_connections(nest_run, tmp_path):
    export(tmp_path / "circuit", nest_run / "run.h5", to="sonata")
    _nest_sonata("connections", tmp_path / "circuit", tmp_path / "built.npz")
    built = np.load(tmp_path / "built.npz")
    state = checkpoint.read(nest_run / "run.h5")
    assert json.loads(str(built["sizes"])) == {name: pop.size for name, pop in state.populations.items()}
    expected = []
    for name, proj in state.projections.items():
        source, target = csr_edges(proj)
        for s, t, w, d in zip(source, target, proj["weight"], proj["delay"]):
            expected.append((proj.pre, int(s), proj.post, int(t), float(w), float(d), name.split(" ")[0]))
    got = [
        (str(a), int(b), str(c), int(d), float(w), float(x), str(m))
        for a, b, c, d, w, x, m in zip(
            built["pre"],
            built["pre_index"],
            built["post"],
            built["post_index"],
            built["weight"],
            built["delay"],
            built["model"],
        )
    ]
    assert sorted(got) == sorted(expected)  # per (source, target) pair, multiple synapses included
    assert len(expected) > 500


def test_nest_rebuilt_from_the_export_fires_the_same_spikes(nest_run, tmp_path):
    export(tmp_path / "circuit", nest_run / "run.h5", to="sonata")
    _nest_sonata("rebuild", tmp_path / "circuit", tmp_path / "rebuilt.npz", 300.0)
    original, rebuilt = np.load(nest_run / "original.npz"), np.load(tmp_path / "rebuilt.npz")
    assert np.array_equal(original["neurons"], rebuilt["neurons"])
    assert len(original["times"]) > 100
    for key in ("senders", "times"):
        assert np.array_equal(original[key], rebuilt[key]), key


def test_delays_in_seconds_are_written_in_ms_and_arrays_of_free_size_are_named(tmp_path):
    """Brian2 keeps delays in seconds; a generator's spike times (NEST) are
    one array per node of any length: said, and not in dynamics_params."""
    state = _nest_like_state()
    proj = next(iter(state.projections.values()))
    proj.arrays["delay"], proj.info["delay"] = np.array([1e-3, 2e-3, 5e-4]), ArrayInfo("parameter", "synapse", "s")
    gen = PopulationState(
        "spike_generator@5",
        2,
        arrays={"spike_times": np.array([1.0, 2.0, 3.0]), "spike_times.lengths": np.array([2, 1])},
        info={
            "spike_times": ArrayInfo("parameter", "free", "ms"),
            "spike_times.lengths": ArrayInfo("parameter", "neuron"),
        },
    )
    state.populations[gen.name] = gen
    with pytest.warns(CheckpointWarning, match=r"spike_generator@5.spike_times \(not one value per neuron"):
        checkpoint.export(tmp_path / "circuit", state, to="sonata")
    config = libsonata.CircuitConfig.from_file(str(tmp_path / "circuit" / "circuit_config.json"))
    edges = config.edge_population(proj.name)
    assert np.allclose(edges.get_attribute("delay", edges.select_all()), [1.0, 2.0, 0.5], rtol=1e-15)
    params = json.loads(
        (tmp_path / "circuit" / "components" / "point_neuron_models" / "spike_generator_at_5.json").read_text()
    )
    assert params == {}


def test_an_export_failing_midway_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    export(tmp_path / "circuit", network(0), to="sonata")
    before = tree(tmp_path)
    real, calls = json.dump, []

    def failing(value, f, **options):  # the disk fills while the third JSON file is written
        calls.append(f.name)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(value, f, **options)

    monkeypatch.setattr(json, "dump", failing)
    with pytest.raises(CheckpointError, match="No space left"):
        export(tmp_path / "circuit", network(1), to="sonata", overwrite=True)
    assert tree(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == ["circuit"]  # no temporary folder left


KILLED_EXPORT = """
import json, os, signal, sys
import checkpoint
real = json.dump
def killed(value, f, **options):   # SIGKILLed with half the files written
    real(value, f, **options)
    os.kill(os.getpid(), signal.SIGKILL)
json.dump = killed
checkpoint.export(sys.argv[1], sys.argv[2], to="sonata", overwrite=True)
"""


def test_an_export_killed_midway_is_cleaned_up_by_the_next(tmp_path):
    checkpoint.save(tmp_path / "run.h5", network(1))
    export(tmp_path / "circuit", network(0), to="sonata")
    before = tree(tmp_path / "circuit")
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run(
        [sys.executable, "-c", KILLED_EXPORT, str(tmp_path / "circuit"), str(tmp_path / "run.h5")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -9, done.stderr
    assert tree(tmp_path / "circuit") == before  # the previous export, whole
    left = [n for n in os.listdir(tmp_path) if n.startswith(".circuit")]
    assert left, "the kill left no staging folder: the test killed too late"
    (tmp_path / "stranger").write_text("not ours")
    os.symlink(tmp_path / "stranger", tmp_path / left[0] / "link")  # a link in it is never followed
    export(tmp_path / "circuit", tmp_path / "run.h5", to="sonata", overwrite=True)
    assert sorted(os.listdir(tmp_path)) == [left[0], "circuit", "run.h5", "stranger"]
    assert os.listdir(tmp_path / left[0]) == ["link"] and (tmp_path / "stranger").read_text() == "not ours"
    os.remove(tmp_path / left[0] / "link")
    export(tmp_path / "circuit", tmp_path / "run.h5", to="sonata", overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["circuit", "run.h5", "stranger"]


def test_names_hdf5_cannot_hold_are_mapped_apart(tmp_path):
    net = checkpoint.Network(dt=0.1)
    a = net.add_population("a/b", 3, variables={"v": 0.0})
    b = net.add_population("a_b", 2, variables={"v": 1.0})
    net.add_projection("p/q", a, b, connectivity=(np.array([0, 1, 2]), np.array([0, 2])), variables={"w": 1.0})
    net.add_projection("p_q", b, a, connectivity=(np.array([0, 1, 1, 2]), np.array([0, 1])), variables={"w": 2.0})
    with pytest.warns(CheckpointWarning, match="'a/b' .* written as 'a_b'"):
        checkpoint.export(tmp_path / "circuit", net, to="sonata")
    config = libsonata.CircuitConfig.from_file(str(tmp_path / "circuit" / "circuit_config.json"))
    edges = {name: config.edge_population(name) for name in config.edge_populations}
    assert {(n, e.source, e.target, e.size) for n, e in edges.items()} == {
        ("p_q", "a_b", "a_b_2", 2),
        ("p_q_2", "a_b_2", "a_b", 2),
    }
