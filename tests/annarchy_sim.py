"""An ANNarchy 5 network for the adapter tests, also run as a script in a fresh process.

    python annarchy_sim.py BUILD_DIR OUT.npz straight T1 T2
    python annarchy_sim.py BUILD_DIR OUT.npz first T1 CKPT
    python annarchy_sim.py BUILD_DIR OUT.npz resume T2 CKPT

One network with everything the adapter must carry across a restart:

* spiking: Izhikevich neurons with noise (C++ random numbers), a Poisson
  input (random spikes), leaky integrate-and-fire neurons with a refractory
  period; an STDP projection with event-driven traces and random
  per-synapse delays (spikes in the projection's ring buffer), a projection
  with one uniform delay (spikes in the pre-synaptic queue), and a
  projection without delay;
* rate-coded: noisy leaky neurons with a global and a local parameter, an
  Oja-like projection with global, semiglobal and local variables and
  per-synapse delays, and a recurrent projection with a uniform delay;
* a population that is not connected.

The resumed run builds its connectivity from another seed, so only the
checkpoint can make it match the uninterrupted run.
"""

import sys

import numpy as np


def build(directory, seed):
    import ANNarchy as ann

    net = ann.Network(dt=0.25, seed=seed)
    exc = net.create(80, ann.Izhikevich, name="exc")
    inp = net.create(ann.PoissonPopulation(40, rates=40.0, name="input"))
    lif = net.create(30, ann.IF_curr_exp, name="lif")
    rate_neuron = ann.Neuron(
        parameters="tau = 10.0 : population\nbaseline = 0.5",
        equations="tau * dr/dt + r = baseline + sum(exc) + Uniform(-0.2, 0.2) : min=0.0",
    )
    oja = ann.Synapse(
        parameters="eta = 0.01 : projection\nalpha = 2.0 : postsynaptic",
        equations="dw/dt = eta * (pre.r * post.r - alpha * post.r^2 * w) : min=0.0\nactivity = post.r : postsynaptic",
    )
    rate_in = net.create(20, rate_neuron, name="rate_in")
    rate_out = net.create(10, rate_neuron, name="rate_out")
    net.create(5, ann.Izhikevich, name="lonely")

    stdp = net.connect(inp, exc, "exc", synapse=ann.STDP, name="stdp")
    stdp.fixed_probability(
        0.4, weights=ann.Uniform(0.0, 1.0, rng=net.default_rng), delays=ann.Uniform(0.5, 4.0, rng=net.default_rng)
    )
    net.connect(exc, lif, "exc", name="uniform").fixed_number_pre(10, weights=0.4, delays=2.0)
    net.connect(exc, exc, "inh", name="inhibition").fixed_probability(0.1, weights=1.0)
    net.connect(rate_in, rate_out, "exc", synapse=oja, name="oja").fixed_probability(
        0.5, weights=ann.Uniform(0.0, 0.2, rng=net.default_rng), delays=ann.Uniform(0.5, 3.0, rng=net.default_rng)
    )
    net.connect(rate_out, rate_out, "exc", name="rate_rec").all_to_all(weights=0.02, delays=1.0)

    exc.noise = 3.0
    exc.i_offset = 4.0
    lif.i_offset = 0.5
    net.monitor(exc, "spike", name="exc_spikes")
    net.monitor(lif, "spike", name="lif_spikes")
    net.compile(directory=directory, silent=True)
    return net


def spikes(net, name):
    """(step, rank) pairs recorded by a monitor, sorted."""
    recorded = net.get_monitor(name).get("spike")
    pairs = sorted((int(t), int(rank)) for rank, times in recorded.items() for t in times)
    return np.array(pairs, np.int64).reshape(-1, 2)


def result(net):
    exc, oja, stdp = net.get_population("exc"), net.get_projection("oja"), net.get_projection("stdp")
    return dict(
        exc_spikes=spikes(net, "exc_spikes"),
        lif_spikes=spikes(net, "lif_spikes"),
        v=np.array(exc.v),
        r=np.array(net.get_population("rate_out").r),
        stdp_w=_by_pair(stdp),
        oja_w=_by_pair(oja),
        step=net.current_step,
    )


def _by_pair(proj):
    post = np.repeat(proj.post_ranks, [len(r) for r in proj.pre_ranks])
    pre = np.concatenate(proj.pre_ranks)
    w = np.concatenate(proj.w)
    order = np.lexsort((pre, post))
    return np.stack([post[order], pre[order], w[order]])


def main(directory, out, mode, duration, extra):
    import checkpoint

    if mode == "straight":
        net = build(directory, 1)
        net.simulate(float(duration))
        net.get_monitor("exc_spikes").get("spike")  # keep only the second half
        net.get_monitor("lif_spikes").get("spike")
        net.simulate(float(extra))
        rebuilt = False
    elif mode == "first":
        net = build(directory, 1)
        net.simulate(float(duration))
        checkpoint.save(extra, net)
        return
    else:
        net = build(directory, 2)
        before = net.get_projection("stdp").pre_ranks
        checkpoint.load(extra, net)
        rebuilt = before != net.get_projection("stdp").pre_ranks
        net.simulate(float(duration))
    np.savez(out, rebuilt=rebuilt, **result(net))


if __name__ == "__main__":
    main(*sys.argv[1:])
