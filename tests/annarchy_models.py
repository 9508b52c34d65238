"""ANNarchy 5 networks of the kinds docs/annarchy.rst's coverage table lists,
written as ANNarchy's documentation writes them (a subclass of
``ann.Network``), for fresh-process restart tests.

    python annarchy_models.py MODEL BUILD_DIR FOLDER first|resume

``first`` builds the network (seed 1), simulates ``T`` ms, saves
``FOLDER/c.h5``, simulates ``T`` more and writes what it sees to
``FOLDER/straight.npz``.  ``resume`` builds it in a new process with seed 2
(other random connectivity and values), loads, simulates ``T`` and writes
``FOLDER/resumed.npz``: the two must be equal bit for bit.
"""

import sys

import numpy as np

T = 20.0  # ms per half


def _observe(net, populations, projections):
    out = {"step": np.array(net.current_step)}
    for name in populations:
        pop = net.get_population(name)
        for var in pop.variables:
            out[f"{name}.{var}"] = np.array(getattr(pop, var))
    for name in projections:
        proj = net.get_projection(name)
        post = np.repeat(proj.post_ranks, [len(r) for r in proj.pre_ranks])
        pre = np.concatenate(proj.pre_ranks) if len(proj.pre_ranks) else np.zeros(0, int)
        order = np.lexsort((pre, post))
        out[f"{name}.pairs"] = np.stack([post[order], pre[order]])
        w = proj.w  # one value for the projection, or one per synapse
        out[f"{name}.w"] = np.array(w) if np.isscalar(w) else np.concatenate([np.ravel(x) for x in w])[order]
        for var in proj.synapse_type.description["variables"]:
            values = getattr(proj, var["name"])
            if var["locality"] == "local":
                out[f"{name}.{var['name']}"] = np.concatenate([np.ravel(v) for v in values])[order]
            else:
                out[f"{name}.{var['name']}"] = np.array(values)
    return out


def input_populations(seed):
    """Every input population kind into one spiking population."""
    import ANNarchy as ann

    class Inputs(ann.Network):
        def __init__(self, seed):
            super().__init__(dt=0.25, seed=seed)
            target = self.create(20, ann.Izhikevich, name="target")
            target.noise = 2.0
            sources = [
                self.create(ann.PoissonPopulation(15, rates=50.0, name="poisson")),
                self.create(ann.SpikeSourceArray(spike_times=[[2.0, 11.0, 27.5], [5.0, 33.0]], name="array")),
                self.create(
                    ann.TimedPoissonPopulation(
                        10, rates=[[20.0] * 10, [80.0] * 10], schedule=[0.0, 25.0], name="timed_poisson"
                    )
                ),
                self.create(
                    ann.HomogeneousCorrelatedSpikeTrains(10, rates=30.0, corr=0.3, tau=10.0, name="correlated")
                ),
            ]
            for source in sources:
                self.connect(source, target, "exc", name=f"from_{source.name}").fixed_probability(
                    0.5, weights=ann.Uniform(5.0, 15.0, rng=self.default_rng)
                )
            self.monitor(target, "spike", name="target_spikes")

    return (
        Inputs(seed),
        ["target"],
        ["from_poisson", "from_array", "from_timed_poisson", "from_correlated"],
        ["target_spikes"],
    )


def rate_inputs_and_connectors(seed):
    """Rate-coded InputArray and TimedArray sources; geometry (2-D, 3-D);
    projections from every connector."""
    import ANNarchy as ann

    leaky = ann.Neuron(parameters="tau = 10.0", equations="tau * dr/dt + r = sum(exc) + Uniform(0, 0.1) : min=0.0")

    class Connectors(ann.Network):
        def __init__(self, seed):
            super().__init__(dt=0.5, seed=seed)
            stim = self.create(ann.InputArray(geometry=(4, 5), name="stim"))
            timed = self.create(
                ann.TimedArray(rates=np.linspace(0.0, 1.0, 20 * 8).reshape(8, 20), period=5.0, name="timed")
            )
            grid = self.create((4, 5), leaky, name="grid")
            cube = self.create((2, 3, 2), leaky, name="cube")
            rng = self.default_rng
            self.connect(stim, grid, "exc", name="one_to_one").one_to_one(weights=0.5)
            self.connect(timed, grid, "exc", name="all_to_all").all_to_all(weights=ann.Uniform(0, 0.1, rng=rng))
            self.connect(grid, cube, "exc", name="fixed_number_pre").fixed_number_pre(
                4, weights=ann.Uniform(0, 0.1, rng=rng)
            )
            self.connect(cube, grid, "exc", name="fixed_number_post").fixed_number_post(
                3, weights=ann.Uniform(0, 0.1, rng=rng)
            )
            self.connect(grid, grid, "exc", name="gaussian").gaussian(amp=0.05, sigma=0.3, delays=1.0)
            self.connect(grid, grid, "exc", name="dog").dog(amp_pos=0.05, sigma_pos=0.2, amp_neg=0.02, sigma_neg=0.5)
            self.connect(stim, cube, "exc", name="from_matrix").from_matrix(
                np.where(np.arange(12 * 20).reshape(12, 20) % 7 == 0, 0.1, None)
            )
            self.connect(timed, cube, "exc", name="from_function").from_function(_diagonal, weight=0.05)
            stim.r = np.arange(20, dtype=float).reshape(4, 5) / 20.0

    return (
        Connectors(seed),
        ["stim", "grid", "cube"],
        [
            "one_to_one",
            "all_to_all",
            "fixed_number_pre",
            "fixed_number_post",
            "gaussian",
            "dog",
            "from_matrix",
            "from_function",
        ],
        [],
    )


def _diagonal(pre, post, dt, weight):
    """A connector pattern for from_function (as ANNarchy's docs write one):
    post neuron i from pre neurons i and i + 1."""
    import ANNarchy as ann

    synapses = ann.LILConnectivity(dt=dt)
    for i in range(post.size):
        synapses.add(
            i,
            sorted({i % pre.size, (i + 1) % pre.size}),
            [weight] * len({i % pre.size, (i + 1) % pre.size}),
            [0] * len({i % pre.size, (i + 1) % pre.size}),
        )
    return synapses


def single_precision_and_current_injection(seed):
    """A float32 network (``dtype``, ANNarchy 5.0.3's ``precision``); a
    rate-coded population injected as a current into spiking neurons."""
    import ANNarchy as ann

    class Injected(ann.Network):
        def __init__(self, seed):
            super().__init__(dt=0.25, seed=seed)
            self.config(dtype=ann.float32)
            drive = self.create(
                8, ann.Neuron(parameters="amp = 1.0", equations="r = amp * (1 + sin(t / 3.0))"), name="drive"
            )
            cells = self.create(8, ann.Izhikevich, name="cells")
            cells.noise = 2.0
            drive.amp = ann.Uniform(5.0, 15.0, rng=self.default_rng)
            injection = self.connect(ann.CurrentInjection(drive, cells, "exc", name="injection"))
            injection.connect_current()
            self.monitor(cells, "spike", name="cells_spikes")

    return Injected(seed), ["drive", "cells"], [], ["cells_spikes"]


def openmp_threads(seed):
    """Noise, Poisson input, STDP with random delays, run on 2 OpenMP threads
    and resumed on 1 (ANNarchy draws the same numbers on any thread count)."""
    import ANNarchy as ann

    class Threaded(ann.Network):
        def __init__(self, seed):
            super().__init__(dt=0.25, seed=seed)
            self.config(num_threads=2 if seed == 1 else 1)
            cells = self.create(40, ann.Izhikevich, name="cells")
            cells.noise = 3.0
            cells.i_offset = 4.0
            source = self.create(ann.PoissonPopulation(30, rates=40.0, name="source"))
            stdp = self.connect(source, cells, "exc", synapse=ann.STDP, name="stdp")
            stdp.fixed_probability(
                0.4,
                weights=ann.Uniform(0.0, 1.0, rng=self.default_rng),
                delays=ann.Uniform(0.5, 4.0, rng=self.default_rng),
            )
            self.connect(cells, cells, "inh", name="recurrent").fixed_probability(0.1, weights=1.0, delays=2.0)
            self.monitor(cells, "spike", name="cells_spikes")

    return Threaded(seed), ["cells"], ["stdp", "recurrent"], ["cells_spikes"]


def monitors_with_their_recordings(seed):
    """Saved with ``monitors=True``: after a restart ``Monitor.get()`` and
    ``times()`` return the whole run, as uninterrupted (spikes and a
    variable every step, a variable every 2 ms, a rate and its
    ``sum(exc)``, a view's neurons, and a monitor paused over the save)."""
    import ANNarchy as ann

    leaky = ann.Neuron(parameters="tau = 10.0", equations="tau * dr/dt + r = sum(exc) + Uniform(0, 0.1) : min=0.0")

    class Recorded(ann.Network):
        def __init__(self, seed):
            super().__init__(dt=0.5, seed=seed)
            cells = self.create(12, ann.Izhikevich, name="cells")
            cells.noise = 3.0
            cells.i_offset = 5.0
            rates = self.create(6, leaky, name="rates")
            stim = self.create(ann.InputArray(6, name="stim"))
            stim.r = np.linspace(0.1, 0.6, 6)
            self.connect(stim, rates, "exc", name="drive").fixed_probability(
                0.5, weights=ann.Uniform(0.0, 0.2, rng=self.default_rng)
            )
            self.monitor(cells, ["spike", "v"], name="cells_all")
            self.monitor(cells, "u", period=2.0, name="cells_u")
            self.monitor(cells[3:7], "spike", name="view_spikes")
            self.monitor(rates, ["r", "sum(exc)"], name="rates_r")

    net = Recorded(seed)
    net.checkpoint_monitors = {
        "cells_all": ["spike", "v"],
        "cells_u": ["u"],
        "view_spikes": ["spike"],
        "rates_r": ["r", "sum(exc)"],
    }
    net.paused_over_the_save = "cells_u"
    return net, ["cells", "rates"], ["drive"], []


def _connectivity_file(path):
    """A file for ``from_file``, in the layout ``Projection.save_connectivity``
    writes (20 x 20 neurons, per-synapse weights, a uniform delay of 2
    steps: with per-synapse delays in ms, ANNarchy 5.0.4 crashed or held
    delays under one step here, before any checkpoint call)."""
    import os

    if os.path.exists(path):
        return path
    rng = np.random.default_rng(5)
    pre = [sorted(rng.choice(20, size=int(rng.integers(2, 8)), replace=False).tolist()) for _ in range(20)]

    def ragged(rows):
        out = np.empty(len(rows), dtype=object)
        out[:] = rows
        return out

    np.savez(
        path,
        name="from_file",
        post_ranks=np.arange(20),
        pre_ranks=ragged(pre),
        w=ragged([rng.uniform(0.0, 3.0, len(r)).tolist() for r in pre]),
        delay=ragged([[1.0] * len(r) for r in pre]),
        max_delay=np.int64(2),
        uniform_delay=np.int64(2),
        size=np.int64(20),
        nb_synapses=np.int64(sum(map(len, pre))),
    )
    return path


def sparse_and_file_connectors(seed):
    """``from_sparse`` (a scipy matrix drawn with the seed) and ``from_file``
    (a file of ``save_connectivity``'s layout)."""
    import ANNarchy as ann
    import scipy.sparse

    class Loaded(ann.Network):
        def __init__(self, seed):
            super().__init__(dt=0.5, seed=seed)
            a = self.create(20, ann.Izhikevich, name="a")
            a.noise, a.i_offset = 3.0, 5.0
            b = self.create(20, ann.Izhikevich, name="b")
            b.noise = 3.0
            matrix = scipy.sparse.random(20, 20, density=0.3, format="lil", random_state=seed) * 3.0
            self.connect(a, b, "exc", name="from_sparse").from_sparse(matrix, delays=2.0)
            self.connect(b, a, "exc", name="from_file").from_file(_connectivity_file("connectivity.npz"))
            self.monitor(b, "spike", name="b_spikes")

    return Loaded(seed), ["a", "b"], ["from_sparse", "from_file"], ["b_spikes"]


def structural_plasticity(seed):
    """Synapses created and pruned during the run (ANNarchy's rate-coded
    example): the file holds the connectivity at save time."""
    import ANNarchy as ann

    class Rewired(ann.Network):
        def __init__(self, seed):
            super().__init__(dt=0.5, seed=seed)
            self.config(structural_plasticity=True)
            inputs = self.create(
                10, ann.Neuron(equations="r = if Uniform(0.0, 1.0) > 0.5: 1.0 else: 0.0"), name="inputs"
            )
            outputs = self.create(4, ann.Neuron(equations="r = sum(exc)"), name="outputs")
            aging = ann.Synapse(
                parameters="max_age = 6.0 : projection",
                equations="age = if pre.r > 0.5: 0.0 else: age + dt",
                pruning="(age > max_age) : proba = 0.5",
                creating="(pre.r > 0.5) : proba = 0.2, w = 0.5",
            )
            self.connect(inputs, outputs, "exc", synapse=aging, name="rewired").fixed_probability(
                0.4, weights=ann.Uniform(0.0, 1.0, rng=self.default_rng)
            )

    net = Rewired(seed)
    net.after_compile = lambda: (
        net.get_projection("rewired").start_creating(period=2.0),
        net.get_projection("rewired").start_pruning(period=2.0),
    )
    return net, ["inputs", "outputs"], ["rewired"], []


def shared_weight_projections(seed):
    """A ``Convolution``: its filter is the script's, warned about at save
    and not saved; the rest of the network restores exactly."""
    import ANNarchy as ann
    from ANNarchy.extensions.convolution import Convolution

    class Convolved(ann.Network):
        def __init__(self, seed):
            super().__init__(dt=0.5, seed=seed)
            image = self.create(
                geometry=(8, 8), neuron=ann.Neuron(equations="r = sin(t / 10.0) + Uniform(0.0, 1.0)"), name="image"
            )
            features = self.create(geometry=(8, 8), neuron=ann.Neuron(equations="r = sum(exc)"), name="features")
            self.connect(Convolution(image, features, "exc", name="blur")).connect_filter(weights=np.ones((3, 3)) / 9.0)

    return Convolved(seed), ["image", "features"], [], []


def numpy_global_inputs(seed):
    """Inputs drawn with numpy's global generator between ``simulate()``
    calls, as ANNarchy's own examples draw them (``np.random``; an odd
    number of normals leaves a Gaussian cached in the legacy generator)."""
    import ANNarchy as ann

    np.random.seed(seed)

    class Driven(ann.Network):
        def __init__(self, seed):
            super().__init__(dt=0.5, seed=seed)
            cells = self.create(7, ann.Izhikevich, name="cells")
            self.connect(cells, cells, "exc", name="recurrent").fixed_probability(
                0.3, weights=ann.Uniform(0.0, 2.0, rng=self.default_rng)
            )
            self.monitor(cells, "spike", name="cells_spikes")

    net = Driven(seed)

    def run_for(duration):
        cells = net.get_population("cells")
        for _ in range(int(round(duration))):  # a new input every ms
            cells.i_offset = np.random.normal(8.0, 4.0, cells.size)
            cells.v += np.random.uniform(-1.0, 1.0, cells.size)
            net.simulate(1.0)

    net.run_for = run_for
    return net, ["cells"], ["recurrent"], ["cells_spikes"]


MODELS = {
    f.__name__: f
    for f in (
        input_populations,
        rate_inputs_and_connectors,
        single_precision_and_current_injection,
        openmp_threads,
        monitors_with_their_recordings,
        sparse_and_file_connectors,
        structural_plasticity,
        shared_weight_projections,
        numpy_global_inputs,
    )
}


def _whole_recordings(net, monitors):
    """What ``get()`` and ``times()`` return for the whole run."""
    out = {}
    for name, variables in monitors.items():
        monitor = net.get_monitor(name)
        data = monitor.get(variables, force_dict=True)
        for var in variables:
            if var == "spike":
                out[f"{name}.{var}"] = np.array(
                    sorted((int(r), int(t)) for r, times in data[var].items() for t in times), np.int64
                ).reshape(-1, 2)
                out[f"{name}.{var}.neurons"] = np.array(sorted(data[var]), np.int64)
            else:
                out[f"{name}.{var}"] = np.asarray(data[var])
        for var, times in monitor.times().items():
            out[f"{name}.{var}.times"] = np.array([times["start"], times["stop"]], dtype=float)
    return out


def main(model, directory, folder, mode):
    import checkpoint

    net, populations, projections, monitors = MODELS[model](1 if mode == "first" else 2)
    net.compile(directory=directory, silent=True)
    getattr(net, "after_compile", lambda: None)()
    if mode == "first":  # the connectivity before the run, for rows whose synapses change
        np.savez(f"{folder}/initial.npz", **_observe(net, [], projections))
    recorded = getattr(net, "checkpoint_monitors", {})
    paused = getattr(net, "paused_over_the_save", None)
    run = getattr(net, "run_for", net.simulate)  # a model's own loop around simulate()
    if mode == "first":
        run(T / 2)
        if paused:
            net.get_monitor(paused).pause()
        run(T / 2)
        checkpoint.save(f"{folder}/c.h5", net, monitors=bool(recorded))
        if paused:
            net.get_monitor(paused).resume()
        run(T)
        out = "straight"
    else:
        checkpoint.load(f"{folder}/c.h5", net, monitors=bool(recorded))
        if paused:
            net.get_monitor(paused).resume()
        run(T)
        out = "resumed"
    observed = _observe(net, populations, projections)
    observed.update(_whole_recordings(net, recorded))
    for name in monitors:  # what the second half recorded
        recorded = net.get_monitor(name).get("spike")
        observed[name] = np.array(
            sorted((int(t), int(r)) for r, times in recorded.items() for t in times if t >= T / net.dt), np.int64
        ).reshape(-1, 2)
    np.savez(f"{folder}/{out}.npz", **observed)


if __name__ == "__main__":
    main(*sys.argv[1:])
