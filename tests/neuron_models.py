"""NEURON models for the adapter tests (run in child processes only: NEURON
keeps one model per interpreter, and pytest's workers also run Brian2 and
ANNarchy).

``build`` makes the ring network of NEURON's tutorial (ball-and-stick cells
with Hodgkin-Huxley somata, ExpSyn synapses, NetCons with delays) plus
NetStims with Random123 noise, a hoc ``Random`` drawn from by the script,
and an IClamp.  Cells are Python objects named by their gid, so sections
and point processes have names that do not depend on creation order.
"""

from neuron import h

h.load_file("stdrun.hoc")


class BallAndStick:
    """The tutorial's cell: named by gid, as NEURON's docs do."""

    def __init__(self, gid, mechanism="hh"):
        self._gid = gid
        self.soma = h.Section(name="soma", cell=self)
        self.dend = h.Section(name="dend", cell=self)
        self.dend.connect(self.soma)
        self.soma.L = self.soma.diam = 12.6157
        self.dend.L, self.dend.diam, self.dend.nseg = 200, 1, 5
        for sec in (self.soma, self.dend):
            sec.Ra, sec.cm = 100, 1
        self.soma.insert(mechanism)
        self.dend.insert("pas")
        for seg in self.dend:
            seg.pas.g, seg.pas.e = 0.001, -65
        self.syn = h.ExpSyn(self.dend(0.5))
        self.syn.tau = 2

    def __repr__(self):
        return f"BallAndStick[{self._gid}]"


def build(n=30, seed=1, reverse=False, skip=0, cvode=False, mechanism="hh", extra=None, hoc_random=True):
    """The network; ``reverse`` creates everything in the opposite order
    (same names and gids), ``skip`` leaves the last cells out, ``extra``
    inserts a (compiled) density mechanism with a RANDOM ``rv`` into the
    dendrites, its streams seeded with ``seed``."""
    gids = list(range(n - skip))
    order = list(reversed(gids)) if reverse else gids
    cells = {gid: BallAndStick(gid, mechanism) for gid in order}
    for gid in order if extra else ():
        cells[gid].dend.insert(extra)
        for k, seg in enumerate(cells[gid].dend):
            getattr(seg, extra).rv.set_ids(gid, k, seed)
    stims, netcons = {}, {}
    for gid in order:
        cell = cells[gid]
        target = cells.get((gid + 1) % n)
        if target is not None:
            nc = h.NetCon(cell.soma(0.5)._ref_v, target.syn, sec=cell.soma)
            nc.weight[0], nc.delay, nc.threshold = 0.05, 1 + (gid % 7), 10
            netcons[gid] = nc
        stim = h.NetStim()
        stim.number, stim.start, stim.interval, stim.noise = 1e9, 1 + gid % 5, 8 + gid % 3, 1
        stim.ranvar.set_ids(gid, 7, seed)
        drive = h.NetCon(stim, cell.syn)
        drive.weight[0], drive.delay = 0.04, 1
        stims[gid] = (stim, drive)
    clamp = h.IClamp(cells[gids[0]].soma(0.5))
    clamp.delay, clamp.dur, clamp.amp = 5, 1e9, 0.05
    rng = None
    if hoc_random:  # hoc names it by creation order (Random[0]): one per process, for the restarts
        rng = h.Random()
        rng.Random123(3, 4, 0)
        rng.uniform(0, 1)  # a normal distribution caches a second value NEURON does not expose
    cv = h.CVode()
    cv.active(1 if cvode else 0)
    spikes = h.Vector()
    ids = h.Vector()
    recorders = []
    for gid in gids:
        rec = h.NetCon(cells[gid].soma(0.5)._ref_v, None, sec=cells[gid].soma)
        rec.threshold = 10
        rec.record(spikes, ids, gid)
        recorders.append(rec)
    return {
        "cells": cells,
        "stims": stims,
        "netcons": netcons,
        "clamp": clamp,
        "rng": rng,
        "spikes": spikes,
        "ids": ids,
        "recorders": recorders,
    }


def build_parallel(n=12, seed=1):
    """The ring under a ParallelContext, as NEURON's parallel tutorial builds
    it: cell ``gid`` on rank ``gid % nhost``, spike detectors registered with
    ``pc.cell``, the ring by ``pc.gid_connect``, a NetStim per cell."""
    pc = h.ParallelContext()
    rank, nhost = int(pc.id()), int(pc.nhost())
    cells, keep = {}, []
    for gid in range(rank, n, nhost):
        cell = BallAndStick(gid)
        cells[gid] = cell
        pc.set_gid2node(gid, rank)
        detector = h.NetCon(cell.soma(0.5)._ref_v, None, sec=cell.soma)
        detector.threshold = 10
        pc.cell(gid, detector)
        stim = h.NetStim()
        stim.number, stim.start, stim.interval, stim.noise = 1e9, 1 + gid % 5, 8 + gid % 3, 1
        stim.ranvar.set_ids(gid, 7, seed)
        drive = h.NetCon(stim, cell.syn)
        drive.weight[0], drive.delay = 0.04, 1
        keep += [detector, stim, drive]
    for gid, cell in cells.items():
        nc = pc.gid_connect((gid - 1) % n, cell.syn)
        nc.weight[0], nc.delay = 0.05, 1 + ((gid - 1) % n) % 7
        keep.append(nc)
    pc.set_maxstep(10)
    spikes, ids = h.Vector(), h.Vector()
    pc.spike_record(-1, spikes, ids)
    return {"pc": pc, "cells": cells, "keep": keep, "spikes": spikes, "ids": ids}
