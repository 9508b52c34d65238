"""A long ANNarchy run that survives being killed: run it, stop it (Ctrl-C,
``kill``, a cluster's SIGTERM), run it again, and it continues exactly.

    python examples/annarchy_stdp.py [--duration-ms 2000] [--folder annarchy-ckpts]

Noisy Izhikevich neurons driven by a Poisson input through an STDP
projection with random per-synapse delays; every 100 ms of simulated time a
checkpoint is written in the background.  The resumed run builds its
connectivity from a different seed: the checkpoint rebuilds it, so the
result does not depend on it.  ANNarchy compiles the network into
``<folder>/build`` (once; later runs reuse it).
"""

import argparse
import logging
import os
import sys

import ANNarchy as ann

import checkpoint


def build(seed, folder):
    net = ann.Network(dt=0.1, seed=seed)
    inputs = net.create(ann.PoissonPopulation(200, rates=20.0, name="input"))
    neurons = net.create(1000, ann.Izhikevich, name="neurons")
    neurons.noise = 2.0
    neurons.i_offset = 5.0
    stdp = net.connect(inputs, neurons, "exc", synapse=ann.STDP, name="stdp")
    stdp.fixed_probability(
        0.1, weights=ann.Uniform(0.0, 1.0, rng=net.default_rng), delays=ann.Uniform(0.5, 5.0, rng=net.default_rng)
    )
    net.compile(directory=os.path.join(folder, "build"), silent=True)
    return net, stdp


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=float, default=2000.0)
    parser.add_argument("--folder", default="annarchy-ckpts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    net, stdp = build(seed=os.getpid(), folder=args.folder)  # any seed: a resumed run takes the saved state
    with checkpoint.Checkpointer(os.path.join(args.folder, "checkpoints"), net, every_ms=100.0, keep=3) as ckpt:
        if ckpt.restore_latest() is None:  # a resume is logged, with its time and file
            print("fresh start")
        try:
            while net.time < args.duration_ms:
                net.simulate(10.0)
                ckpt.maybe_save()
        except checkpoint.Interrupted as stop:
            print(f"stopped by signal {stop.signum}; checkpoint {stop.path}")
            sys.exit(0)
        ckpt.save(skip_if_saved=True)
    weights = [w for dendrite in stdp.w for w in dendrite]
    print(
        f"done at t = {net.time} ms; mean weight {sum(weights) / len(weights):.5f}; "
        f"checkpoints in {args.folder}/checkpoints (delete the folder to start over)"
    )


if __name__ == "__main__":
    main()
