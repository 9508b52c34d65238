"""A Brian2 network for the restart tests, run as a script in a fresh process.

    python brian2_sim.py TARGET CACHE OUT.npz straight T1 T2
    python brian2_sim.py TARGET CACHE OUT.npz first T1 CKPT
    python brian2_sim.py TARGET CACHE OUT.npz resume T2 CKPT

Noise (xi), rand() in a threshold, STDP with event-driven traces, random
heterogeneous delays; the resumed run builds its synapses from another seed
so that only the checkpoint can make it match.
"""

import sys

import numpy as np


def build(target, cache, connect_seed):
    import brian2 as b2

    b2.prefs.codegen.target = target
    b2.prefs.codegen.runtime.cython.cache_dir = cache
    b2.prefs.codegen.runtime.cython.multiprocess_safe = False
    b2.seed(connect_seed)
    eqs = """dv/dt = (I - v) / (10*ms) + 0.3 * xi / sqrt(ms) : 1
             I : 1 (constant)"""
    exc = b2.NeuronGroup(
        60, eqs, threshold="v > 1 or rand() < 0.001", reset="v = 0", refractory=2 * b2.ms, method="euler", name="exc"
    )
    exc.I = "0.8 + 0.4 * rand()"
    syn = b2.Synapses(
        exc,
        exc,
        """w : 1
                        dapre/dt = -apre / (20*ms) : 1 (event-driven)
                        dapost/dt = -apost / (20*ms) : 1 (event-driven)""",
        on_pre="""v_post += w
                                apre += 0.01
                                w = clip(w - apost, 0, 0.5)""",
        on_post="""apost += 0.012
                                 w = clip(w + apre, 0, 0.5)""",
        name="stdp",
    )
    syn.connect(p=0.2)
    syn.w = "0.2 * rand()"
    syn.delay = "rand() * 3 * ms"
    spikes = b2.SpikeMonitor(exc, name="spikes")
    net = b2.Network(exc, syn, spikes)
    b2.seed(1234)  # the run's own random numbers
    return b2, net, exc, syn, spikes


def result(b2, net, exc, syn, spikes, since):
    t, i = spikes.t_[:], spikes.i[:]
    keep = t >= since - 1e-12
    order = np.lexsort((syn.j[:], syn.i[:]))
    return dict(
        t=t[keep],
        i=i[keep],
        v=exc.v[:],
        w=syn.w[:][order],
        ij=np.stack([syn.i[:], syn.j[:]])[:, order],
        now=float(net.t_),
    )


def main(target, cache, out, mode, duration, extra):
    import checkpoint

    if mode == "straight":
        b2, net, exc, syn, spikes = build(target, cache, 1)
        net.run(float(duration) * b2.ms)
        net.run(float(extra) * b2.ms)
        np.savez(out, **result(b2, net, exc, syn, spikes, float(duration) * 1e-3))
    elif mode == "first":
        b2, net, exc, syn, spikes = build(target, cache, 1)
        net.run(float(duration) * b2.ms)
        checkpoint.save(extra, net)
    else:
        b2, net, exc, syn, spikes = build(target, cache, 2)
        checkpoint.load(extra, net)
        since = float(net.t_)
        net.run(float(duration) * b2.ms)
        np.savez(out, **result(b2, net, exc, syn, spikes, since))


if __name__ == "__main__":
    main(*sys.argv[1:])
