"""A NEST network for the adapter tests, and a script for restart runs.

    python nest_sim.py straight|first|resume FOLDER

``straight`` runs 200 ms; ``first`` runs 100 ms and saves; ``resume``
builds the network with other random connectivity, loads, and runs the
remaining 100 ms.  Each writes ``<mode>.npz`` with what it saw.
"""

import sys

import numpy as np


def build(seed=5, connect=True):
    """Izhikevich-free, NEST-native: 80 excitatory iaf_psc_alpha, 20
    inhibitory iaf_psc_exp, Poisson drive, STDP with random delays.
    ``connect=False``: the nodes only (the resume idiom)."""
    import nest

    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.resolution = 0.1
    nest.rng_seed = seed
    exc = nest.Create("iaf_psc_alpha", 80, params={"I_e": 200.0})
    inh = nest.Create("iaf_psc_exp", 20)
    drive = nest.Create("poisson_generator", params={"rate": 8000.0})
    spikes = nest.Create("spike_recorder")
    if not connect:  # a recorder's connections are not state: the script makes them on every start
        nest.Connect(exc + inh, spikes)
        return nest, exc, inh, spikes
    nest.Connect(drive, exc + inh, syn_spec={"weight": 12.0})
    nest.Connect(
        exc,
        exc + inh,
        {"rule": "pairwise_bernoulli", "p": 0.2},
        syn_spec={"synapse_model": "stdp_synapse", "weight": 20.0, "delay": nest.random.uniform(1.0, 3.0)},
    )
    nest.Connect(inh, exc, {"rule": "pairwise_bernoulli", "p": 0.3}, syn_spec={"weight": -40.0, "delay": 1.5})
    nest.Connect(exc + inh, spikes)
    return nest, exc, inh, spikes


def observe(nest, exc, spikes, offset=0.0):
    events = spikes.get("events")
    stdp = nest.GetConnections(source=exc, target=exc, synapse_model="stdp_synapse")
    status = stdp.get(["source", "target", "weight"])
    order = np.lexsort((status["target"], status["source"]))
    return {
        "times": np.asarray(events["times"]) + offset,
        "senders": np.asarray(events["senders"]),
        "v": np.asarray(exc.get("V_m")),
        "weight": np.asarray(status["weight"])[order],
        "pairs": np.stack([status["source"], status["target"]])[:, order],
    }


def main(mode, folder):
    import checkpoint

    if mode == "straight":
        nest, exc, _, spikes = build()
        nest.Simulate(200.0)
        result = observe(nest, exc, spikes)
    elif mode == "first":
        nest, exc, _, spikes = build()
        nest.Simulate(100.0)
        checkpoint.save(f"{folder}/half.h5", nest)
        result = observe(nest, exc, spikes)
    else:
        nest, exc, _, spikes = build(seed=9)
        rebuilt_pairs = observe(nest, exc, spikes)["pairs"].shape
        report = checkpoint.load(f"{folder}/half.h5", nest)
        loaded = observe(nest, exc, spikes, report.time)
        nest.Simulate(100.0)
        result = observe(nest, exc, spikes, report.time)
        result.update(
            loaded_v=loaded["v"], loaded_weight=loaded["weight"], time=report.time, other_pairs=np.array(rebuilt_pairs)
        )
    np.savez(f"{folder}/{mode}.npz", **result)


if __name__ == "__main__":
    main(*sys.argv[1:])
