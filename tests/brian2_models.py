"""Brian2 models of every kind docs/brian2.rst's coverage table lists, written
as Brian2's documentation writes them, for fresh-process restart tests.

    python brian2_models.py MODEL TARGET CACHE FOLDER first|resume

``first`` builds the model (seed 1), runs ``T``, calls the model's
``between`` hook if it has one (``set_spikes`` after a run, ...), saves
``FOLDER/c.h5`` with its monitors, runs ``T`` more and writes what it sees
to ``FOLDER/straight.npz``.  ``resume`` builds the model in a new process
with seed 2 (other random connectivity and values), loads the checkpoint,
runs ``T`` and writes ``FOLDER/resumed.npz``.  The two must be equal bit for
bit: every monitor's recording since t = 0 (restored with ``monitors=True``)
and every variable.
"""

import sys

import numpy as np

T = 20.0  # ms per half


def _monitor_arrays(monitors):
    out = {}
    for mon in monitors:
        for var, values in mon.get_states(units=False).items():
            if var != "N" and np.size(values):
                out[f"{mon.name}.{var}"] = np.asarray(values)
    return out


def _variables(objects):
    out = {}
    for obj in objects:
        for var, values in obj.get_states(units=False).items():
            if np.ndim(values) and var not in ("t", "dt", "t_in_timesteps"):
                out[f"{obj.name}.{var}"] = np.asarray(values)
    return out


def neurons_and_subgroups(b2, seed):
    """A NeuronGroup split into Subgroups, as the docs' E/I example; synapses
    and monitors on the subgroups."""
    group = b2.NeuronGroup(
        50,
        "dv/dt = (1.1 - v) / (10*ms) + 0.2 * xi / sqrt(ms) : 1",
        threshold="v > 1",
        reset="v = 0",
        refractory=2 * b2.ms,
        method="euler",
        name="neurons",
    )
    group.v = "rand()"
    exc, inh = group[:40], group[40:]
    ee = b2.Synapses(exc, inh, "w : 1", on_pre="v_post += w", name="exc_to_inh")
    ee.connect(p=0.3)
    ee.w = "0.1 * rand()"
    ie = b2.Synapses(inh, exc, on_pre="v_post -= 0.2", delay=1 * b2.ms, name="inh_to_exc")
    ie.connect(p=0.5)
    spikes = b2.SpikeMonitor(exc, name="exc_spikes")
    state = b2.StateMonitor(inh, "v", record=True, name="inh_v")
    return b2.Network(group, ee, ie, spikes, state), [group, ee], [spikes, state]


def pathways_and_multisynapses(b2, seed):
    """Two pre pathways with their own delays (one heterogeneous), an on_post
    pathway, event-driven traces, several synapses per pair with a
    multisynaptic index."""
    group = b2.NeuronGroup(
        30, "dv/dt = (1.2 - v) / (10*ms) : 1", threshold="v > 1", reset="v = 0", method="exact", name="cells"
    )
    group.v = "rand()"
    syn = b2.Synapses(
        group,
        group,
        """w : 1
                      dapre/dt = -apre / (10*ms) : 1 (event-driven)
                      dapost/dt = -apost / (10*ms) : 1 (event-driven)""",
        on_pre={"pre": "v_post += w\napre += 0.01\nw = clip(w - apost, 0, 0.3)", "late": "v_post -= 0.5 * w"},
        on_post="apost += 0.01\nw = clip(w + apre, 0, 0.3)",
        delay={"pre": 1 * b2.ms},
        multisynaptic_index="k",
        name="plastic",
    )
    syn.connect(p=0.15, n=2)
    syn.w = "0.2 * rand()"
    syn.late.delay = "k * ms + rand() * 2 * ms"
    spikes = b2.SpikeMonitor(group, name="cell_spikes")
    return b2.Network(group, syn, spikes), [group, syn], [spikes]


def summed_variables_and_gap_junctions(b2, seed):
    """Gap junctions as a summed variable (Brian2's example)."""
    eqs = """dv/dt = (v0 - v + Igap) / (10*ms) : 1
             Igap : 1
             v0 : 1 (constant)"""
    group = b2.NeuronGroup(20, eqs, threshold="v > 1", reset="v = 0", method="exact", name="coupled")
    group.v0 = "1.05 + 0.1 * rand()"
    group.v = "rand()"
    gap = b2.Synapses(
        group,
        group,
        """w : 1
                      Igap_post = w * (v_pre - v_post) : 1 (summed)""",
        name="gap",
    )
    gap.connect(p=0.3)
    gap.w = "0.05 * rand()"
    spikes = b2.SpikeMonitor(group, name="coupled_spikes")
    return b2.Network(group, gap, spikes), [group, gap], [spikes]


def spike_generators(b2, seed):
    """A periodic SpikeGeneratorGroup, and one whose spikes set_spikes
    changes after the first run (the ``between`` hook)."""
    periodic = b2.SpikeGeneratorGroup(4, [0, 1, 2, 3], [1, 2.5, 4, 4] * b2.ms, period=5 * b2.ms, name="periodic")
    later = b2.SpikeGeneratorGroup(3, [0, 1], [3, 6] * b2.ms, name="later")
    target = b2.NeuronGroup(
        5, "dv/dt = -v / (5*ms) : 1", threshold="v > 0.5", reset="v = 0", method="exact", name="target"
    )
    syn = b2.Synapses(periodic, target, "w : 1", on_pre="v_post += w", name="drive")
    syn.connect(p=0.6)
    syn.w = "0.3 + 0.3 * rand()"
    spikes = b2.SpikeMonitor(periodic, name="periodic_spikes")
    later_spikes = b2.SpikeMonitor(later, name="later_spikes")
    out = b2.SpikeMonitor(target, name="target_spikes")
    return (
        b2.Network(periodic, later, target, syn, spikes, later_spikes, out),
        [target, syn],
        [spikes, later_spikes, out],
    )


def spike_generators_between(b2, objects):
    later = [o for o in objects if o.name == "later"][0]
    later.set_spikes([2, 0, 1], [22, 25, 31] * b2.ms)


def poisson_inputs(b2, seed):
    """PoissonGroup into synapses, PoissonInput onto a variable."""
    source = b2.PoissonGroup(40, rates="50*Hz + 50*Hz * (i % 2)", name="poisson")
    target = b2.NeuronGroup(
        10, "dv/dt = -v / (10*ms) : 1", threshold="v > 1", reset="v = 0", method="exact", name="driven"
    )
    syn = b2.Synapses(source, target, "w : 1", on_pre="v_post += w", name="from_poisson")
    syn.connect(p=0.3)
    syn.w = "0.2 * rand()"
    extra = b2.PoissonInput(target, "v", N=20, rate=30 * b2.Hz, weight=0.05)
    spikes = b2.SpikeMonitor(target, name="driven_spikes")
    rate = b2.PopulationRateMonitor(source, name="poisson_rate")
    return b2.Network(source, target, syn, extra, spikes, rate), [target, syn], [spikes, rate]


def timed_arrays_and_run_regularly(b2, seed):
    """A TimedArray-driven current, run_regularly, and a custom event with
    an EventMonitor."""
    stimulus = b2.TimedArray(np.r_[0.0, 1.5, 0.5, 2.0, 1.0, 0.0, 1.8, 0.7], dt=5 * b2.ms)
    group = b2.NeuronGroup(
        8,
        """dv/dt = (stimulus(t) * (1 + 0.1 * i) - v) / (5*ms) : 1
                                 peaks : integer""",
        threshold="v > 1",
        reset="v = 0",
        events={"half": "v > 0.5 and not_refractory"},
        refractory=1 * b2.ms,
        method="euler",
        name="stimulated",
        namespace={"stimulus": stimulus},
    )
    group.run_on_event("half", "peaks += 1")
    group.run_regularly("v = v * 0.9", dt=2 * b2.ms)
    events = b2.EventMonitor(group, "half", name="half_events")
    spikes = b2.SpikeMonitor(group, name="stimulated_spikes")
    return b2.Network(group, events, spikes), [group], [events, spikes]


def several_clocks(b2, seed):
    """Groups on their own dt, synapses between them."""
    fast = b2.NeuronGroup(
        10,
        "dv/dt = (1.2 - v) / (5*ms) + 0.1 * xi / sqrt(ms) : 1",
        threshold="v > 1",
        reset="v = 0",
        method="euler",
        dt=0.05 * b2.ms,
        name="fast",
    )
    slow = b2.NeuronGroup(
        10, "dv/dt = -v / (20*ms) : 1", threshold="v > 1", reset="v = 0", method="exact", dt=0.5 * b2.ms, name="slow"
    )
    syn = b2.Synapses(fast, slow, "w : 1", on_pre="v_post += w", dt=0.1 * b2.ms, name="fast_to_slow")
    syn.connect(p=0.5)
    syn.w = "0.3 * rand()"
    state = b2.StateMonitor(slow, "v", record=[0, 5], dt=1 * b2.ms, name="slow_v")
    spikes = b2.SpikeMonitor(fast, name="fast_spikes")
    return b2.Network(fast, slow, syn, state, spikes), [fast, slow, syn], [state, spikes]


def multicompartment(b2, seed):
    """A SpatialNeuron: a soma and a dendrite, current injected at the soma."""
    morpho = b2.Soma(30 * b2.um)
    morpho.dendrite = b2.Cylinder(length=100 * b2.um, diameter=1 * b2.um, n=5)
    eqs = """Im = gL * (EL - v) : amp/meter**2
             I : amp (point current)"""
    neuron = b2.SpatialNeuron(
        morphology=morpho,
        model=eqs,
        Cm=1 * b2.uF / b2.cm**2,
        Ri=100 * b2.ohm * b2.cm,
        method="exponential_euler",
        name="cell",
        namespace={"gL": 1e-4 * b2.siemens / b2.cm**2, "EL": -70 * b2.mV},
    )
    neuron.v = "EL + rand() * 5 * mV"
    neuron.I[0] = 0.2 * b2.nA
    state = b2.StateMonitor(neuron, "v", record=True, name="cell_v")
    return b2.Network(neuron, state), [neuron], [state]


MODELS = {
    f.__name__: f
    for f in (
        neurons_and_subgroups,
        pathways_and_multisynapses,
        summed_variables_and_gap_junctions,
        spike_generators,
        poisson_inputs,
        timed_arrays_and_run_regularly,
        several_clocks,
        multicompartment,
    )
}
BETWEEN = {"spike_generators": spike_generators_between}


def main(model, target, cache, folder, mode):
    import brian2 as b2
    import checkpoint

    b2.prefs.codegen.target = target
    b2.prefs.codegen.runtime.cython.cache_dir = cache
    b2.prefs.codegen.runtime.cython.multiprocess_safe = False
    b2.seed(1 if mode == "first" else 2)
    net, objects, monitors = MODELS[model](b2, 1 if mode == "first" else 2)
    b2.seed(1234)  # the run's own random numbers
    if mode == "first":
        net.run(T * b2.ms)
        if model in BETWEEN:
            BETWEEN[model](b2, list(net.objects))
        checkpoint.save(f"{folder}/c.h5", net, monitors=True)
        net.run(T * b2.ms)
        out = "straight"
    else:
        checkpoint.load(f"{folder}/c.h5", net, monitors=True)
        net.run(T * b2.ms)
        out = "resumed"
    np.savez(f"{folder}/{out}.npz", now=float(net.t_), **_variables(objects), **_monitor_arrays(monitors))


if __name__ == "__main__":
    main(*sys.argv[1:])
