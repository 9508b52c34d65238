"""NEURON's ring-network tutorial as a long run that survives being killed:
run it, stop it (Ctrl-C, ``kill``, a cluster's SIGTERM), run it again, and it
continues exactly where it stopped.

    python examples/neuron_ring.py [--duration-ms 1000] [--folder neuron-ckpts]

Ball-and-stick cells (Hodgkin-Huxley soma, passive dendrite) in a ring of
ExpSyn synapses, the first cell kicked by a NetStim; every 50 ms of simulated
time a checkpoint is written in the background.  The script builds the same
model on every start and loads the latest checkpoint into it: NEURON's own
state restores bit for bit, checked identity by identity.
"""

import argparse
import logging
import sys

from neuron import h

import checkpoint

h.load_file("stdrun.hoc")


class BallAndStick:
    def __init__(self, gid):
        self._gid = gid
        self.soma = h.Section(name="soma", cell=self)
        self.dend = h.Section(name="dend", cell=self)
        self.dend.connect(self.soma)
        self.soma.L = self.soma.diam = 12.6157
        self.dend.L, self.dend.diam, self.dend.nseg = 200, 1, 5
        self.soma.insert("hh")
        self.dend.insert("pas")
        self.syn = h.ExpSyn(self.dend(0.5))
        self.syn.tau = 2

    def __repr__(self):  # sections are identified by name: name cells by gid
        return f"BallAndStick[{self._gid}]"


def build(n=20):
    cells = [BallAndStick(gid) for gid in range(n)]
    netcons = []
    for i, cell in enumerate(cells):
        nc = h.NetCon(cell.soma(0.5)._ref_v, cells[(i + 1) % n].syn, sec=cell.soma)
        nc.weight[0], nc.delay = 0.05, 5
        netcons.append(nc)
    stim = h.NetStim()
    stim.number, stim.start, stim.interval, stim.noise = 1e9, 9, 40, 0.5
    kick = h.NetCon(stim, cells[0].syn)
    kick.weight[0] = 0.04
    return cells, netcons, stim, kick


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=float, default=1000.0)
    parser.add_argument("--folder", default="neuron-ckpts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = build()  # noqa: F841 (NEURON keeps what Python references)
    spikes = h.Vector()
    detector = h.NetCon(model[0][0].soma(0.5)._ref_v, None, sec=model[0][0].soma)
    detector.record(spikes)
    h.finitialize(-65)
    with checkpoint.Checkpointer(args.folder, h, every_ms=50.0, keep=3) as ckpt:
        if ckpt.restore_latest() is None:  # a resume is logged, with its time and file
            print("fresh start")
        try:
            while h.t < args.duration_ms - 1e-9:
                h.continuerun(min(h.t + 10.0, args.duration_ms))
                ckpt.maybe_save()
        except checkpoint.Interrupted as stop:
            print(f"stopped by signal {stop.signum}; checkpoint {stop.path}")
            sys.exit(0)
        ckpt.save(skip_if_saved=True)
    print(
        f"done at t = {h.t:.6g} ms; cell 0 spiked {int(spikes.size())} times in this run; "
        f"v = {model[0][0].soma(0.5).v:.6f} mV; checkpoints in {args.folder}/ (delete the folder to start over)"
    )


if __name__ == "__main__":
    main()
