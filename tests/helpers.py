"""Networks and comparisons shared by the tests."""

import hashlib
import os

import numpy as np
import pytest
import scipy.sparse

import checkpoint
from checkpoint._ranks import OneProcess

FORMATS = ["h5", "hdf5", "npz", "mat", "txt", "txt.gz", "gz"]


def izhikevich_network(seed=0, n_exc=40, n_inh=10, density=0.2):
    """A small version of the seed network: two Izhikevich populations and
    an STDP projection, with a global, a per-neuron and an internal array."""
    net = checkpoint.Network(dt=0.5, seed=seed)
    rng = np.random.default_rng(seed)
    pop0 = net.add_population(
        "pop0",
        n_exc,
        parameters={"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0},
        variables={"v": rng.uniform(-70, -60, n_exc), "u": -13.0},
        internal={"last_spike": np.full(n_exc, -1, np.int64)},
    )
    pop1 = net.add_population(
        "pop1",
        n_inh,
        parameters={"a": 0.1, "b": 0.2, "c": -65.0, "d": 2.0},
        variables={"v": -65.0, "u": -13.0, "spiked": np.zeros(n_inh, bool)},
    )
    conn = scipy.sparse.random(n_inh, n_exc, density=density, format="csr", random_state=seed)
    net.add_projection(
        "proj0",
        pop0,
        pop1,
        "exc",
        conn,
        parameters={"tau_plus": 20.0, "tau_minus": 60.0, "A_plus": 2e-4, "w_max": 0.03},
        variables={"w": rng.uniform(0, 0.03, conn.nnz).astype(np.float32), "x_pre": 0.0},
        semiglobal={"x_post": np.zeros(n_inh)},
        delays=1.0,
    )
    return net


def arrays_of(net):
    """Every array of an embedded network, copied, by "object.variable"."""
    out = {}
    for section in (net.populations, net.projections):
        for name, group in section.items():
            for var, array in group._values.items():
                out[f"{name}.{var}"] = array.copy()
    for name, proj in net.projections.items():
        out[f"{name}.indptr"] = proj.indptr.copy()
        out[f"{name}.indices"] = proj.indices.copy()
    out["step"] = np.array(net.step)
    out["rng"] = np.array(str(net.rng.bit_generator.state))
    return out


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same_arrays(before, after):
    assert before.keys() == after.keys()
    for key in before:
        assert same_bits(before[key], after[key]), key


def state_arrays(state):
    """Every array of a NetworkState, by a stable label."""
    out = {}
    for name, pop in state.populations.items():
        out[("pop", name, "#size")] = np.array(pop.size)
        for var in pop:
            out[("pop", name, var)] = np.asarray(pop[var])
    for name, proj in state.projections.items():
        out[("proj", name, "#indptr")] = np.asarray(proj.indptr)
        out[("proj", name, "#indices")] = np.asarray(proj.indices)
        out[("proj", name, "#shape")] = np.array(proj.shape)
        for var in proj:
            out[("proj", name, var)] = np.asarray(proj[var])
    return out


def file_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def folder_digests(folder):
    return {name: file_digest(os.path.join(folder, name)) for name in sorted(os.listdir(folder))}


def load_fails(path, net, error=checkpoint.CheckpointError, match=None):
    """Loading fails with ``error`` naming the file; the network and the
    folder are unchanged."""
    before, files = arrays_of(net), folder_digests(os.path.dirname(path))
    with pytest.raises(error, match=match) as info:
        checkpoint.load(path, net)
    assert os.path.basename(str(path)) in str(info.value)
    assert_same_arrays(before, arrays_of(net))
    assert folder_digests(os.path.dirname(path)) == files
    return info.value


def capture_copy(state, meta):
    """Every array of an adapter's captured ``state``, copied, by
    "section/object/variable", with the random states and ``meta`` (a string)."""
    out = {}
    for section in ("populations", "projections"):
        for name, group in getattr(state, section).items():
            for var in group:
                out[f"{section}/{name}/{var}"] = np.array(group[var], copy=True)
            if section == "projections":
                out[f"{section}/{name}/indptr"] = np.array(group.indptr)
                out[f"{section}/{name}/indices"] = np.array(group.indices)
    for name, rng in state.rng.items():
        out[f"rng/{name}"] = (repr(rng.state), {k: a.copy() for k, a in rng.arrays.items()})
    out["meta"] = meta
    return out


def assert_same_capture(a, b):
    """Two :func:`capture_copy` results hold the same bits."""
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key], equal_nan=True), key
        elif isinstance(a[key], tuple):
            assert a[key][0] == b[key][0], key
            assert all(np.array_equal(a[key][1][k], b[key][1][k]) for k in a[key][1]), key
        else:
            assert a[key] == b[key], key


# the communicator of a one-rank run, for in-process tests of sharded checkpoints
# (tests under mpiexec use the real one)
SingleRank = OneProcess
