"""Follows the advice of the refusal of a projection's monitor with
``monitors=True`` (checkpoint/adapters/annarchy/monitors.py: SET_ASIDE),
in a process of its own, since what it warns against aborts the process.

    python annarchy_monitor_advice.py BUILD_DIR FOLDER advice|stop

``advice``: the refusal, then the advice; the run goes on, is saved with
``monitors=True``, goes on, and the file loads back: prints ``resumed``.
``stop``: ``Monitor.stop()`` then ``simulate()`` (ANNarchy 5.0.4 aborts).
"""

import sys

import ANNarchy as ann
import numpy as np

import checkpoint


class Monitored(ann.Network):
    def __init__(self):
        super().__init__(dt=0.5, seed=1)
        self.cells = self.create(8, ann.Izhikevich, name="cells")
        self.cells.noise = 4.0
        self.cells.i_offset = 6.0
        self.recurrent = self.connect(self.cells, self.cells, "exc", synapse=ann.STDP, name="recurrent")
        self.recurrent.fixed_probability(0.3, weights=1.0)
        self.monitor(self.cells, ["spike", "v"], name="cells_m")
        self.monitor(self.recurrent, "w", period=5.0, name="weights_m")


def main(build, folder, mode):
    net = Monitored()
    net.compile(directory=build, silent=True)
    net.simulate(10.0)
    weights_m = net.get_monitor("weights_m")
    if mode == "stop":
        weights_m.stop()
        net.simulate(5.0)
        print("simulated after stop", flush=True)
        return
    try:
        checkpoint.save(f"{folder}/refused.h5", net, monitors=True)
        raise SystemExit("a projection's monitor was not refused")
    except checkpoint.UnsupportedObjectError as error:
        print("refused:", error, flush=True)
    recorded = weights_m.get("w")  # the advice, word for word
    weights_m.pause()
    net.get_monitors().remove(weights_m)
    net.simulate(5.0)
    checkpoint.save(f"{folder}/m.h5", net, monitors=True)
    net.simulate(5.0)
    v = np.array(net.get_monitor("cells_m").get("v"))
    checkpoint.load(f"{folder}/m.h5", net, monitors=True)
    net.simulate(5.0)
    again = np.array(net.get_monitor("cells_m").get("v"))
    assert len(recorded) > 0 and np.array_equal(v, again), "the monitors' recordings did not resume"
    print("resumed", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
