"""Runs with recordings for the kill-and-resume tests, each in a fresh process.

    python recordings_sim.py ENGINE straight OUT.npz
    python recordings_sim.py ENGINE run FOLDER SEED [KILL_CHUNK PHASE]

``straight``: one uninterrupted run whose monitors keep everything; their
arrays go to OUT.npz as ``<monitor>/<var>`` (times in ms, as recordings
give them).  ``run``: build the network from SEED (connectivity differs by
seed: only the checkpoint can make a resumed run match), resume from the
folder's newest checkpoint (a fresh start: seed 1, the straight run's) and run to the end with ``recordings=True``;
with KILL_CHUNK, SIGKILL this process at that chunk: ``step`` between
checkpoints, ``segment`` after a segment is written and before the
checkpoint that commits it, ``write`` while a background checkpoint is
being written.  ENGINE: ``embedded``, ``brian2-numpy``, ``brian2-cython``,
``annarchy`` (compiled in $ANNARCHY_BUILD), ``nest``.
"""

import os
import signal
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))

CHUNKS = 24  # chunks of the run
CHUNK_MS = 5.0  # simulated ms per chunk
EVERY_MS = 15.0  # a checkpoint every 3 chunks


class Embedded:
    def __init__(self, seed):
        import checkpoint  # noqa: F401
        import izhikevich_stdp

        self.sim = izhikevich_stdp
        self.net = izhikevich_stdp.build(seed=seed, n_exc=80, n_inh=20, dt=0.5)
        self.net.add_spike_recorder("spikes", "pop0")
        self.net.add_state_recorder("vm", "pop1", "v", indices=[0, 3, 7])
        self.obj = self.net

    def run_chunk(self):
        for _ in range(int(round(CHUNK_MS / self.net.dt))):
            self.sim.step(self.net)
            self.net.record()

    def time_ms(self):
        return self.net.time

    def monitors(self):
        return {name: rec.take() for name, rec in self.net.recorders.items()}


class Brian2:
    def __init__(self, seed, target):
        import brian2 as b2

        self.b2 = b2
        b2.prefs.codegen.target = target
        b2.prefs.codegen.runtime.cython.multiprocess_safe = False
        b2.seed(seed)
        eqs = """dv/dt = (I - v) / (10*ms) + 0.3 * xi / sqrt(ms) : 1
                 I : 1 (constant)"""
        exc = b2.NeuronGroup(
            50,
            eqs,
            threshold="v > 1 or rand() < 0.002",
            reset="v = 0",
            refractory=2 * b2.ms,
            method="euler",
            name="exc",
        )
        exc.I = "0.8 + 0.4 * rand()"
        syn = b2.Synapses(exc, exc, "w : 1", on_pre="v_post += w", name="syn")
        syn.connect(p=0.2)
        syn.w = "0.2 * rand()"
        syn.delay = "rand() * 3 * ms"
        self.mons = [
            b2.SpikeMonitor(exc, name="spikes"),
            b2.StateMonitor(exc, "v", record=[0, 5, 9], name="vm"),
            b2.PopulationRateMonitor(exc, name="rate"),
            b2.EventMonitor(exc, "spike", variables=["I"], name="events"),
        ]
        self.net = b2.Network(exc, syn, *self.mons)
        self.obj = self.net
        b2.seed(1234)

    def run_chunk(self):
        self.net.run(CHUNK_MS * self.b2.ms)

    def time_ms(self):
        return float(self.net.t_) * 1e3

    def monitors(self):
        spikes, vm, rate, events = self.mons
        return {
            "spikes": {"i": np.asarray(spikes.i[:]), "t": spikes.t_[:] * 1000.0},
            "vm": {"t": vm.t_[:] * 1000.0, "v": np.asarray(vm.v[:]).T},
            "rate": {"t": rate.t_[:] * 1000.0, "rate": np.asarray(rate.rate_[:]).reshape(-1, 1)},
            "events": {"i": np.asarray(events.i[:]), "t": events.t_[:] * 1000.0, "I": np.asarray(events.I[:])},
        }


class ANNarchy:
    def __init__(self, seed, build_dir):
        import ANNarchy as ann

        net = ann.Network(dt=0.25, seed=seed)
        exc = net.create(40, ann.Izhikevich, name="exc")
        inp = net.create(ann.PoissonPopulation(20, rates=40.0, name="input"))
        net.connect(inp, exc, "exc", name="input_exc").fixed_probability(
            0.4, weights=ann.Uniform(0.0, 2.0, rng=net.default_rng), delays=ann.Uniform(0.5, 3.0, rng=net.default_rng)
        )
        exc.noise = 3.0
        exc.i_offset = 4.0
        net.monitor(exc, "spike", name="spikes")
        net.monitor(exc[[0, 4, 9]], ["v", "u"], name="vm")
        net.compile(directory=build_dir, silent=True)
        self.net = self.obj = net

    def run_chunk(self):
        self.net.simulate(CHUNK_MS)

    def time_ms(self):
        return float(self.net.time)

    def monitors(self):
        from checkpoint.adapters.annarchy.recordings import recorders

        # the monitors' whole history, flattened as recordings flatten it
        return {r.name: r.take() for r in recorders(self.net)}


class NEST:
    def __init__(self, seed):
        import nest

        nest.verbosity = nest.VerbosityLevel.ERROR
        nest.ResetKernel()
        nest.resolution = 0.1
        nest.rng_seed = seed
        exc = nest.Create("iaf_psc_alpha", 40, params={"I_e": 200.0})
        drive = nest.Create("poisson_generator", params={"rate": 8000.0})
        nest.Connect(drive, exc, syn_spec={"weight": 12.0})
        nest.Connect(
            exc,
            exc,
            {"rule": "pairwise_bernoulli", "p": 0.2},
            syn_spec={"weight": 20.0, "delay": nest.random.uniform(1.0, 3.0)},
        )
        spikes = nest.Create("spike_recorder")
        vm = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": 1.0})
        nest.Connect(exc, spikes)  # recorders are wired by the script on every start
        nest.Connect(vm, exc[[0, 4, 9]])
        self.nest, self.obj, self.devices = nest, nest, (spikes, vm)

    def run_chunk(self):
        self.nest.Simulate(CHUNK_MS)

    def time_ms(self):
        from checkpoint.adapters.nest.clock import time_offset

        return float(self.nest.biological_time) + time_offset()

    def monitors(self):
        from checkpoint.adapters.nest.recordings import recorders
        from checkpoint.adapters.nest.clock import time_offset

        return {r.name: r.take() for r in recorders(time_offset)}


def build(engine, seed):
    if engine == "nest":
        return NEST(seed)
    if engine == "embedded":
        return Embedded(seed)
    if engine == "annarchy":
        return ANNarchy(seed, os.environ["ANNARCHY_BUILD"])
    return Brian2(seed, engine.split("-", 1)[1])


def straight(engine, out):
    sim = build(engine, 1)
    for _ in range(CHUNKS):
        sim.run_chunk()
    np.savez(out, **{f"{name}/{var}": a for name, arrays in sim.monitors().items() for var, a in arrays.items()})


def run(engine, folder, seed, kill_chunk=None, phase=None):
    import checkpoint
    from checkpoint.recordings.log import RecordingLog

    resuming = os.path.isdir(folder) and any(n.startswith("ckpt-") for n in os.listdir(folder))
    sim = build(engine, seed if resuming else 1)  # a fresh start is the straight run's network
    if phase == "segment":
        write = RecordingLog.write

        def write_then_die(self, segment, simulator):
            write(self, segment, simulator)
            os.kill(os.getpid(), signal.SIGKILL)

        RecordingLog.write = write_then_die
    with checkpoint.Checkpointer(folder, sim.obj, every_ms=EVERY_MS, recordings=True, keep=2) as ckpt:
        ckpt.restore_latest()
        chunk = int(round(sim.time_ms() / CHUNK_MS))
        while chunk < CHUNKS:
            sim.run_chunk()
            chunk += 1
            if chunk == kill_chunk and phase == "step":
                os.kill(os.getpid(), signal.SIGKILL)
            saved = ckpt.maybe_save()
            if chunk >= kill_chunk if kill_chunk else False:
                if phase == "write" and saved:
                    os.kill(os.getpid(), signal.SIGKILL)  # the background write is under way
        ckpt.save(skip_if_saved=True)


if __name__ == "__main__":
    engine, mode = sys.argv[1], sys.argv[2]
    if mode == "straight":
        straight(engine, sys.argv[3])
    else:
        kill = (int(sys.argv[5]), sys.argv[6]) if len(sys.argv) > 5 else (None, None)
        run(engine, sys.argv[3], int(sys.argv[4]), *kill)
