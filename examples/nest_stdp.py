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
"""

import argparse
import logging
import sys

import nest

import checkpoint


def build(seed):
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.resolution, nest.rng_seed = 0.1, seed
    exc = nest.Create("iaf_psc_alpha", 80, params={"I_e": 200.0})
    inh = nest.Create("iaf_psc_exp", 20)
    drive = nest.Create("poisson_generator", params={"rate": 8000.0})
    nest.Connect(drive, exc + inh, syn_spec={"weight": 12.0})
    nest.Connect(exc, exc + inh, {"rule": "pairwise_bernoulli", "p": 0.2},
                 syn_spec={"synapse_model": "stdp_synapse", "weight": 20.0,
                           "delay": nest.random.uniform(1.0, 3.0)})
    nest.Connect(inh, exc, {"rule": "pairwise_bernoulli", "p": 0.3}, syn_spec={"weight": -40.0, "delay": 1.5})
    return exc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=float, default=2000.0)
    parser.add_argument("--folder", default="nest-ckpts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    exc = build(seed=1)      # a resumed run takes the saved connections, whatever the seed
    with checkpoint.Checkpointer(args.folder, nest, every_ms=100.0, keep=3) as ckpt:
        if ckpt.restore_latest() is None:   # a resume is logged, with its time and file
            print("fresh start")
        try:
            while ckpt.time_ms < args.duration_ms:
                nest.Simulate(10.0)
                ckpt.maybe_save()
        except checkpoint.Interrupted as stop:
            print(f"stopped by signal {stop.signum}; checkpoint {stop.path}")
            sys.exit(0)
        ckpt.save(skip_if_saved=True)
    weights = nest.GetConnections(source=exc, synapse_model="stdp_synapse").get("weight")
    print(f"done at t = {ckpt.time_ms} ms; mean STDP weight {sum(weights) / len(weights):.3f}; "
          f"checkpoints in {args.folder}/ (delete the folder to start over)")


if __name__ == "__main__":
    main()
