"""docs/format.rst is enough to read a checkpoint: these readers use only
h5py, numpy, scipy.io, gzip, json and xxhash, never checkpoint itself."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse

import checkpoint
from helpers import izhikevich_network

READER = textwrap.dedent("""
    import sys
    sys.modules["checkpoint"] = None          # importing checkpoint would now fail
    import gzip, json, zipfile
    import numpy as np, xxhash
    path, fmt = sys.argv[1], sys.argv[2]

    def check(array, entry):
        assert array.dtype.str == entry["dtype"] and list(array.shape) == entry["shape"]
        digest = "xxh3-64:" + xxhash.xxh3_64_hexdigest(np.ascontiguousarray(array).tobytes())
        assert digest == entry["checksum"], entry["key"]
        return array

    if fmt == "h5":
        import h5py
        f = h5py.File(path, "r")
        manifest = json.loads(f["manifest"].asstr()[()])
        get = lambda e: check(f[e["key"]][()], e)
    elif fmt == "npz":
        z = np.load(path)                     # allow_pickle stays False
        manifest = json.loads(str(z["manifest"]))
        get = lambda e: check(z[e["key"]], e)
    elif fmt == "mat":
        import scipy.io
        m = scipy.io.loadmat(path, simplify_cells=True)
        manifest = json.loads(m["checkpoint_manifest"])
        def get(e):
            top, field = e["key"].split(".", 1)
            value = np.asarray(m[top][field]).astype(e["dtype"]).reshape(e["shape"])
            return check(value, e)
    else:
        opener = gzip.open if fmt == "gz" else open
        with opener(path, "rt") as f:
            assert f.readline() == "checkpoint-text 1\\n"
            manifest = json.loads(f.readline().split(" ", 2)[2])
            arrays = {}
            for line in f:
                if line == "end\\n":
                    break
                header = json.loads(line[len("array "):])
                lines = [next(f) for _ in range(header["count"])]
                parse = "u1" if header["dtype"] == "|b1" else ("f8" if "f" in header["dtype"] else header["dtype"])
                values = np.loadtxt(lines, dtype=parse, ndmin=1) if lines else np.empty(0, parse)
                for _ in range(header["nanbits"]):
                    i, bits = next(f).split()
                    values.view("u8")[int(i)] = int(bits, 16)
                arrays[header["key"]] = values.astype(header["dtype"]).reshape(header["shape"])
        get = lambda e: check(arrays[e["key"]], e)

    proj = manifest["projections"]["proj0"]
    pop = manifest["populations"]["pop0"]
    w = get(proj["arrays"]["w"])
    if proj.get("order") is not None:     # version 3: per-synapse arrays in the simulator's order
        w = w[get(proj["order"])]
    out = {
        "version": manifest["format_version"],
        "ids": get(pop["ids"]).tolist() if "ids" in pop else None,
        "global_size": pop.get("global_size"),
        "shape": proj["shape"],
        "time": manifest["meta"]["time"],
        "v": get(manifest["populations"]["pop0"]["arrays"]["v"]).tolist(),
        "a": get(manifest["populations"]["pop0"]["arrays"]["a"]).tolist(),
        "w": w.tolist(),
        "order": get(proj["order"]).tolist() if proj.get("order") is not None else None,
        "indptr": get(proj["indptr"]).tolist(),
        "indices": get(proj["indices"]).tolist(),
    }
    print(json.dumps(out))
""")


def read_without_the_library(path, fmt):
    """READER in a child process (where importing checkpoint fails): what it read."""
    done = subprocess.run([sys.executable, "-c", READER, str(path), fmt], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("suffix,fmt", [("h5", "h5"), ("npz", "npz"), ("mat", "mat"), ("txt", "txt"), ("txt.gz", "gz")])
def test_read_without_the_library(tmp_path, suffix, fmt):
    net = izhikevich_network()
    net.step = 8
    path = tmp_path / f"net.{suffix}"
    checkpoint.save(path, net)
    got = read_without_the_library(path, fmt)
    proj = net.projections["proj0"]
    assert got["time"] == 4.0
    assert got["v"] == net.populations["pop0"].v.tolist()
    assert got["a"] == 0.02
    assert np.array_equal(np.array(got["w"], np.float32), proj.w)
    assert got["indptr"] == proj.indptr.tolist() and got["indices"] == proj.indices.tolist()
    assert got["version"] == 1 and got["ids"] is None  # nothing of version 2: written as version 1


@pytest.mark.parametrize("suffix,fmt", [("h5", "h5"), ("npz", "npz"), ("mat", "mat"), ("txt.gz", "gz")])
def test_part_of_a_population_reads_without_the_library(tmp_path, suffix, fmt):
    # version 2: a shard's neurons by global index, synapses onto them with global pre indices
    whole = izhikevich_network()
    pre = whole.populations["pop0"]
    mine = np.arange(1, pre.size, 3)
    net = checkpoint.Network(dt=whole.dt)
    net.add_population(
        "pop0", len(mine), variables={"v": pre.v[mine]}, parameters={"a": 0.02}, ids=mine, global_size=pre.size
    )
    matrix = scipy.sparse.random(len(mine), pre.size, density=0.3, format="csr", random_state=1)
    net.add_projection("proj0", "pop0", "pop0", connectivity=matrix, variables={"w": matrix.data})
    path = tmp_path / f"part.{suffix}"
    checkpoint.save(path, net)
    got = read_without_the_library(path, fmt)
    assert got["version"] == 2 and got["ids"] == mine.tolist() and got["global_size"] == pre.size
    assert got["v"] == pre.v[mine].tolist() and got["shape"] == [len(mine), pre.size]


@pytest.mark.parametrize("suffix,fmt", [("h5", "h5"), ("npz", "npz"), ("mat", "mat"), ("txt.gz", "gz")])
def test_synapses_in_a_simulators_order_read_without_the_library(tmp_path, suffix, fmt):
    # version 3: per-synapse arrays as the simulator holds them, and the order to CSR
    from checkpoint.formats import read_state, write_state

    net = izhikevich_network()
    checkpoint.save(tmp_path / "csr.h5", net)
    state = read_state(tmp_path / "csr.h5")
    proj = state.projections["proj0"]
    proj.simulator_order = np.random.default_rng(3).permutation(proj.nnz).astype(np.int32)
    path = tmp_path / f"ordered.{suffix}"
    write_state(path, state)
    got = read_without_the_library(path, fmt)
    assert got["version"] == 3 and got["order"] == proj.simulator_order.tolist()
    assert np.array_equal(np.array(got["w"], np.float32), net.projections["proj0"].w)  # CSR order
    assert got["indices"] == net.projections["proj0"].indices.tolist()
    again = checkpoint.read(path).projections["proj0"]
    assert np.array_equal(again["w"], net.projections["proj0"].w)
    assert np.array_equal(again.simulator_order, proj.simulator_order)
