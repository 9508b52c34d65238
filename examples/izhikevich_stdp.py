"""The seed network, simulated in plain numpy on the embedded checkpoint.Network.

Two Izhikevich populations (Izhikevich 2003): ``pop0`` excitatory, ``pop1``
inhibitory.  ``proj0`` (pop0 -> pop1) is plastic with pair-based STDP whose
traces live on the neurons; ``proj1`` (pop1 -> pop0) is static inhibition.
Noise comes from ``net.rng``, so a resumed run continues the same sequence.

    python examples/izhikevich_stdp.py [--duration-ms 5000] [--folder izhikevich-ckpts]

runs it with a checkpoint every 500 ms of simulated time; stop it (Ctrl-C,
``kill``, a cluster's SIGTERM), run it again, and it continues exactly.
``examples/demo.py`` (``make demo``) is the same run with more to show.
"""

import argparse
import logging
import sys

import numpy as np
import scipy.sparse

import checkpoint


def build(seed=42, n_exc=800, n_inh=200, density=0.1, dt=0.5):
    """A fresh network; the same seed gives the same network."""
    net = checkpoint.Network(dt=dt, seed=seed)
    build_rng = np.random.default_rng(seed + 1)
    re, ri = build_rng.random(n_exc), build_rng.random(n_inh)
    neuron = {"v_thresh": 30.0, "tau_trace": 20.0}
    pop0 = net.add_population(
        "pop0",
        n_exc,
        parameters={"a": 0.02, "b": 0.2, "c": -65.0 + 15 * re**2, "d": 8.0 - 6 * re**2, **neuron},
        variables={"v": -65.0, "u": -13.0, "I": 0.0, "trace": 0.0, "spiked": False},
        internal={"last_spike": np.full(n_exc, -1, np.int64)},
    )
    pop0.u = pop0.b * pop0.v
    pop1 = net.add_population(
        "pop1",
        n_inh,
        parameters={"a": 0.02 + 0.08 * ri, "b": 0.25 - 0.05 * ri, "c": -65.0, "d": 2.0, **neuron},
        variables={"v": -65.0, "u": -13.0, "I": 0.0, "trace": 0.0, "spiked": False},
        internal={"last_spike": np.full(n_inh, -1, np.int64)},
    )
    pop1.u = pop1.b * pop1.v
    exc_to_inh = scipy.sparse.random(n_inh, n_exc, density=3 * density, format="csr", random_state=seed)
    net.add_projection(
        "proj0",
        pop0,
        pop1,
        "exc",
        exc_to_inh,
        parameters={"A_plus": 0.2, "A_minus": 0.21, "w_max": 40.0},
        variables={"w": build_rng.uniform(0.0, 20.0, exc_to_inh.nnz)},
    )
    inh_to_exc = scipy.sparse.random(n_exc, n_inh, density=density, format="csr", random_state=seed + 2)
    net.add_projection(
        "proj1", pop1, pop0, "inh", inh_to_exc, variables={"w": -build_rng.uniform(0.0, 1.0, inh_to_exc.nnz)}
    )
    return net


def _synaptic_input(proj):
    matrix = scipy.sparse.csr_matrix((proj.w, proj.indices, proj.indptr), shape=proj.shape)
    return matrix @ proj.pre.spiked.astype(np.float64)


def _izhikevich(pop, noise, dt):
    pop.I[:] = noise
    for _ in range(2):  # two half steps, as in Izhikevich (2003), for stability
        pop.v += 0.5 * dt * (0.04 * pop.v**2 + 5 * pop.v + 140 - pop.u + pop.I)
    pop.u += dt * pop.a * (pop.b * pop.v - pop.u)
    spiked = pop.v >= pop.v_thresh
    pop.v[spiked] = np.broadcast_to(pop.c, pop.v.shape)[spiked]
    pop.u[spiked] += np.broadcast_to(pop.d, pop.u.shape)[spiked]
    pop.spiked[:] = spiked


def _stdp(proj, dt):
    """Pair-based STDP: potentiate at post spikes by the pre trace, depress at
    pre spikes by the post trace; weights stay in [0, w_max]."""
    pre, post = proj.pre, proj.post
    post_of_synapse = proj.post_ranks()
    proj.w += proj.A_plus * pre.trace[proj.indices] * post.spiked[post_of_synapse]
    proj.w -= proj.A_minus * post.trace[post_of_synapse] * pre.spiked[proj.indices]
    np.clip(proj.w, 0.0, proj.w_max, out=proj.w)


def step(net):
    """Advance the network by one time step."""
    pop0, pop1 = net.populations["pop0"], net.populations["pop1"]
    input0 = 6.5 * net.rng.standard_normal(pop0.size) + _synaptic_input(net.projections["proj1"])
    input1 = 3.0 * net.rng.standard_normal(pop1.size) + _synaptic_input(net.projections["proj0"])
    _izhikevich(pop0, input0, net.dt)
    _izhikevich(pop1, input1, net.dt)
    for pop in (pop0, pop1):
        pop.trace *= np.exp(-net.dt / pop.tau_trace)
        pop.trace[pop.spiked] += 1.0
        pop.last_spike[pop.spiked] = net.step
    _stdp(net.projections["proj0"], net.dt)
    net.step += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=float, default=5000.0)
    parser.add_argument("--folder", default="izhikevich-ckpts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    net = build()
    steps = int(round(args.duration_ms / net.dt))
    with checkpoint.Checkpointer(args.folder, net, every_ms=500.0, keep=3) as ckpt:
        if ckpt.restore_latest() is None:
            print("fresh start")
        try:
            while net.step < steps:
                step(net)
                ckpt.maybe_save()
        except checkpoint.Interrupted as stop:
            print(f"stopped at t = {net.time:g} ms; checkpoint {stop.path}; run again to resume")
            sys.exit(0)
        ckpt.save(skip_if_saved=True)
    print(
        f"done at t = {net.time:g} ms; mean STDP weight {net.projections['proj0'].w.mean():.5f}; "
        f"checkpoints in {args.folder}/ (delete the folder to start over)"
    )


if __name__ == "__main__":
    main()
