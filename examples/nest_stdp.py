"""A long NEST run that survives being killed: run it, stop it (Ctrl-C,
``kill``, a cluster's SIGTERM), run it again, and it goes on from the last
checkpoint.

    python examples/nest_stdp.py [--duration-ms 2000] [--folder nest-ckpts]

80 excitatory and 20 inhibitory neurons, Poisson drive, STDP with random
delays; every 100 ms of simulated time a checkpoint is written in the
background.  NEST keeps some state out of reach (its random generators,
spikes in flight, synaptic currents, spike history), so a resumed run is
close to, not identical with, an uninterrupted one; and NEST's own clock
restarts at 0, so the loop counts time with ``ckpt.time_ms``.

The resume idiom: on a restart the script creates the nodes only and lets
the load make the connections (one array ``Connect`` each), so it never
pays for NEST's slow ``Disconnect`` of connections it would replace anyway.
"""

import argparse
import logging
import sys

import nest

import checkpoint


def build(seed):
    """The nodes; returns them and a function that connects them (a fresh
    start calls it; a resumed run lets the load make the connections)."""
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.resolution, nest.rng_seed = 0.1, seed
    exc = nest.Create("iaf_psc_alpha", 80, params={"I_e": 200.0})
    inh = nest.Create("iaf_psc_exp", 20)
    drive = nest.Create("poisson_generator", params={"rate": 8000.0})

    def connect():
        nest.Connect(drive, exc + inh, syn_spec={"weight": 12.0})
        nest.Connect(
            exc,
            exc + inh,
            {"rule": "pairwise_bernoulli", "p": 0.2},
            syn_spec={"synapse_model": "stdp_synapse", "weight": 20.0, "delay": nest.random.uniform(1.0, 3.0)},
        )
        nest.Connect(inh, exc, {"rule": "pairwise_bernoulli", "p": 0.3}, syn_spec={"weight": -40.0, "delay": 1.5})

    return exc, connect


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=float, default=2000.0)
    parser.add_argument("--folder", default="nest-ckpts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    exc, connect = build(seed=1)
    with checkpoint.Checkpointer(args.folder, nest, every_ms=100.0, keep=3) as ckpt:
        if ckpt.restore_latest() is None:  # a resume is logged, and makes the saved connections
            print("fresh start")
            connect()
        try:
            while ckpt.time_ms < args.duration_ms:
                nest.Simulate(10.0)
                ckpt.maybe_save()
        except checkpoint.Interrupted as stop:
            print(f"stopped by signal {stop.signum}; checkpoint {stop.path}")
            sys.exit(0)
        ckpt.save(skip_if_saved=True)
    weights = nest.GetConnections(source=exc, synapse_model="stdp_synapse").get("weight")
    print(
        f"done at t = {ckpt.time_ms} ms; mean STDP weight {sum(weights) / len(weights):.3f}; "
        f"checkpoints in {args.folder}/ (delete the folder to start over)"
    )


if __name__ == "__main__":
    main()
