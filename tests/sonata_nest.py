"""NEST and SONATA in a process of their own (tests/test_interchange.py).

NEST's ``SonataNetwork`` needs a NEST built with HDF5 and, in the same
process, h5py built against the same HDF5 library (the PyPI wheel of h5py
brings its own, and ``import nest`` then fails): the Makefile builds both
into ``$(VENV)/nest-sonata``, and the tests run this script with its
Python.

    sonata_nest.py original RUN.h5 SPIKES.npz T   build a seeded network, save it at t = 0,
                                                  simulate T ms, record every neuron's spikes
    sonata_nest.py rebuild CIRCUIT SPIKES.npz T   build the exported circuit, simulate as above
    sonata_nest.py connections CIRCUIT OUT.npz    build the circuit; every connection, by population
    sonata_nest.py nodes CIRCUIT RUN.h5           create the circuit's nodes with NEST's own reader
                                                  and compare every node's status with the checkpoint

``original`` and ``nodes`` also run with a NEST built without HDF5 (the
test environment's): ``nodes`` then runs only the Python half of NEST's
reader, which creates and parametrises the nodes (the C++ half, which
connects them, needs HDF5).
"""

import json
import os
import sys

import numpy as np

import nest

SEED = 1234
N_EXC, N_INH = 60, 15
CIRCUIT, SIMULATION = "circuit_config.json", "simulation_config.json"


def original(path, spikes, duration):
    import checkpoint

    nest.ResetKernel()
    nest.set(rng_seed=SEED, resolution=0.1)
    # the generator between the two, so that the checkpoint has them as two
    # populations (NEST's adapter joins consecutive nodes of one model)
    exc = nest.Create("iaf_psc_alpha", N_EXC, params={"I_e": 120.0, "tau_m": 15.0})
    drive = nest.Create("poisson_generator", params={"rate": 9000.0})
    inh = nest.Create("iaf_psc_alpha", N_INH, params={"I_e": 100.0, "V_th": -52.0})
    nest.Connect(drive, exc + inh, syn_spec={"weight": 20.0, "delay": 1.0})
    rng = np.random.default_rng(SEED)
    # weights that add exactly (whole numbers), so that the order NEST
    # delivers spikes in cannot change a sum
    for pre, post, weight in ((exc, exc, (5, 25)), (exc, inh, (10, 30)), (inh, exc, (-60, -20))):
        n = 4 * len(post)
        sources = np.asarray(pre.tolist())[rng.integers(0, len(pre), n)]
        targets = np.asarray(post.tolist())[rng.integers(0, len(post), n)]
        nest.Connect(
            sources,
            targets,
            "one_to_one",
            {"weight": rng.integers(*weight, n).astype(float), "delay": rng.integers(1, 30, n) * 0.1},
        )
    checkpoint.save(path, nest)
    _simulate(exc + inh, spikes, duration)


def _simulate(neurons, spikes, duration):
    recorder = nest.Create("spike_recorder")
    nest.Connect(neurons, recorder)
    nest.Simulate(duration)
    events = recorder.get("events")
    np.savez(
        spikes,
        senders=np.asarray(events["senders"]),
        times=np.asarray(events["times"]),
        neurons=np.asarray(neurons.tolist()),
    )


def _build(circuit):
    nest.ResetKernel()
    nest.set(rng_seed=SEED)
    network = nest.SonataNetwork(os.path.join(circuit, CIRCUIT), sim_config=os.path.join(circuit, SIMULATION))
    return network.BuildNetwork()


def rebuild(circuit, spikes, duration):
    populations = _build(circuit)
    neurons = None
    for name, nodes in populations.items():
        if name.startswith("iaf_psc_alpha@"):
            neurons = nodes if neurons is None else neurons + nodes
    _simulate(neurons, spikes, duration)


def connections(circuit, out):
    populations = _build(circuit)
    first = {name: nodes.tolist()[0] for name, nodes in populations.items()}
    names = sorted(first, key=first.get)
    starts = np.array([first[name] for name in names])
    conns = nest.GetConnections()
    status = conns.get(["source", "target", "weight", "delay", "synapse_model"])
    source, target = np.asarray(status["source"]), np.asarray(status["target"])
    pre, post = np.searchsorted(starts, source, "right") - 1, np.searchsorted(starts, target, "right") - 1
    np.savez(
        out,
        pre=np.array(names)[pre],
        pre_index=source - starts[pre],
        post=np.array(names)[post],
        post_index=target - starts[post],
        weight=np.asarray(status["weight"]),
        delay=np.asarray(status["delay"]),
        model=np.asarray(status["synapse_model"]),
        sizes=json.dumps({name: len(nodes) for name, nodes in populations.items()}),
    )


def nodes(circuit, run):
    import checkpoint
    import nest.lib.hl_api_sonata as sonata

    sonata.have_hdf5 = True  # the nodes need no HDF5 in NEST: h5py reads them (see the docstring)
    nest.ResetKernel()
    network = nest.SonataNetwork(os.path.join(circuit, CIRCUIT), sim_config=os.path.join(circuit, SIMULATION))
    created = network.Create()
    state = checkpoint.read(run)
    assert list(created) == list(state.populations), (list(created), list(state.populations))
    for name, pop in state.populations.items():
        collection = created[name]
        assert collection.tolist()[0] == int(name.rsplit("@", 1)[1]), name  # the same node IDs
        status = collection.get()
        status = status if len(collection) > 1 else {key: [value] for key, value in status.items()}
        for var in pop:
            value = np.asarray(pop[var])
            if value.ndim == 1 and var in status:
                assert np.array_equal(np.asarray(status[var]), value), (name, var)
    assert nest.resolution == state.dt


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "original":
        original(args[0], args[1], float(args[2]))
    elif mode == "rebuild":
        rebuild(args[0], args[1], float(args[2]))
    elif mode == "nodes":
        nodes(*args)
    else:
        connections(*args)
