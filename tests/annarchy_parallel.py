"""A network class and a simulation method for ANNarchy's ``parallel_run()``,
written as its documentation writes them; both at module level, because
``parallel_run()`` pickles them to its worker processes."""

import ANNarchy as ann
import numpy as np

import checkpoint


class Pulses(ann.Network):
    def __init__(self, rate=40.0):
        super().__init__()
        self.cells = self.create(20, ann.Izhikevich, name="cells")
        self.cells.noise = 3.0
        source = self.create(ann.PoissonPopulation(20, rates=rate, name="source"))
        self.stdp = self.connect(source, self.cells, "exc", synapse=ann.STDP, name="stdp")
        self.stdp.fixed_probability(0.3, weights=ann.Uniform(0.0, 1.0), delays=ann.Uniform(0.5, 3.0))


def save_continue_reload(net, folder, tag):
    """In a worker: save this copy, run on, reload it and run the same
    stretch again; the two must agree bit for bit."""
    net.simulate(10.0)
    path = f"{folder}/copy{tag}.h5"  # every worker numbers its copy alike: the caller tags them
    checkpoint.save(path, net)
    net.simulate(10.0)
    straight = np.array(net.cells.v), np.concatenate([np.ravel(w) for w in net.stdp.w])
    checkpoint.load(path, net)
    net.simulate(10.0)
    again = np.array(net.cells.v), np.concatenate([np.ravel(w) for w in net.stdp.w])
    return path, straight, again
