"""A long Brian2 run that survives being killed: run it, stop it (Ctrl-C,
``kill``, a cluster's SIGTERM), run it again, and it continues exactly.

    python examples/brian2_stdp.py [--duration-ms 2000] [--folder brian2-ckpts]

Noise, STDP with event-driven traces and random per-synapse delays; every
100 ms of simulated time a checkpoint is written in the background.  The
resumed run builds its synapses from a different seed: the checkpoint
rebuilds them, so the result does not depend on it.
"""

import argparse
import logging
import os
import sys
import tempfile

import brian2 as b2

import checkpoint


def build(seed):
    b2.seed(seed)
    eqs = "dv/dt = (1.1 - v) / (10*ms) + 0.2 * xi / sqrt(ms) : 1"
    neurons = b2.NeuronGroup(
        1000, eqs, threshold="v > 1", reset="v = 0", refractory=2 * b2.ms, method="euler", name="neurons"
    )
    neurons.v = "rand()"
    stdp = b2.Synapses(
        neurons,
        neurons,
        """w : 1
                         dapre/dt = -apre / (20*ms) : 1 (event-driven)
                         dapost/dt = -apost / (20*ms) : 1 (event-driven)""",
        on_pre="v_post += w\napre += 0.01\nw = clip(w - apost, 0, 0.05)",
        on_post="apost += 0.012\nw = clip(w + apre, 0, 0.05)",
        name="stdp",
    )
    stdp.connect(p=0.05)
    stdp.w = "0.05 * rand()"
    stdp.delay = "rand() * 5 * ms"  # heterogeneous delays: Network.store would lose them
    return b2.Network(neurons, stdp), stdp


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=float, default=2000.0)
    parser.add_argument("--folder", default="brian2-ckpts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    b2.prefs.codegen.target = "numpy"  # "cython" works the same, bit for bit
    b2.prefs.codegen.runtime.cython.cache_dir = os.path.join(tempfile.gettempdir(), "brian2-cython")
    net, stdp = build(seed=os.getpid())  # any seed: a resumed run takes the saved synapses
    with checkpoint.Checkpointer(args.folder, net, every_ms=100.0, keep=3) as ckpt:
        if ckpt.restore_latest() is None:  # a resume is logged, with its time and file
            print("fresh start")
        try:
            while net.t < args.duration_ms * b2.ms:
                net.run(10 * b2.ms)
                ckpt.maybe_save()
        except checkpoint.Interrupted as stop:
            print(f"stopped by signal {stop.signum}; checkpoint {stop.path}")
            sys.exit(0)
        ckpt.save(skip_if_saved=True)
    print(
        f"done at t = {net.t}; mean weight {stdp.w[:].mean():.5f}; "
        f"checkpoints in {args.folder}/ (delete the folder to start over)"
    )


if __name__ == "__main__":
    main()
