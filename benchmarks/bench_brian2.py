"""checkpoint.save/load against Brian2's own Network.store/restore(filename=).

    python benchmarks/bench_brian2.py [--neurons 10000] [--synapses 1000000]

A Brian2 network (numpy target) of LIF neurons with noise and an STDP
projection of about ``--synapses`` synapses with heterogeneous delays, run
for a few ms so that spikes are in flight.  In the same run, best of
``--repeat``: ``net.store(filename=)`` / ``net.restore(filename=)`` (pickle,
no fsync, and it loses heterogeneous delays) against ``checkpoint.save`` /
``checkpoint.load`` in HDF5 and npz (fsync'd, checksummed, connectivity
rebuilt into the canonical CSR and back).  Goal: at least as fast, aim 3x.
"""

import argparse
import os
import shutil
import sys
import tempfile
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import checkpoint
from _simulators import best, print_speedups


def build(b2, neurons, synapses, seed=1):
    b2.seed(seed)
    group = b2.NeuronGroup(neurons, "dv/dt = (1.1 - v) / (10*ms) + 0.2 * xi / sqrt(ms) : 1",
                           threshold="v > 1", reset="v = 0", refractory=2 * b2.ms, method="euler",
                           name="neurons")
    group.v = "rand()"
    syn = b2.Synapses(group, group, """w : 1
                        dapre/dt = -apre / (20*ms) : 1 (event-driven)
                        dapost/dt = -apost / (20*ms) : 1 (event-driven)""",
                      on_pre="v_post += w\napre += 0.01\nw = clip(w - apost, 0, 0.01)",
                      on_post="apost += 0.01\nw = clip(w + apre, 0, 0.01)", name="stdp")
    syn.connect(p=synapses / neurons**2)
    syn.w = "0.01 * rand()"
    syn.delay = "rand() * 5 * ms"
    return b2.Network(group, syn), syn



def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=10_000)
    parser.add_argument("--synapses", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", default=".")
    args = parser.parse_args()
    import brian2 as b2
    b2.prefs.codegen.target = "numpy"
    warnings.simplefilter("ignore")
    net, syn = build(b2, args.neurons, args.synapses)
    net.run(5 * b2.ms)
    folder = tempfile.mkdtemp(prefix="bench-brian2-", dir=args.folder)
    try:
        pickle_path = os.path.join(folder, "store.pickle")

        def store():
            if os.path.exists(pickle_path):
                os.remove(pickle_path)  # store() adds to an existing file
            net.store(filename=pickle_path)
        def store_durably():
            store()
            with open(pickle_path, "rb+") as f:
                os.fsync(f.fileno())
        plain = best(args.repeat, store)
        restore = best(args.repeat, lambda: net.restore(filename=pickle_path))
        rows = [("Network.store / restore (pickle)", plain, restore, os.path.getsize(pickle_path)),
                ("  the same, store fsync'd", best(args.repeat, store_durably), restore, os.path.getsize(pickle_path))]
        for fmt in ("h5", "npz"):
            path = os.path.join(folder, f"c.{fmt}")
            save = best(args.repeat, lambda path=path: checkpoint.save(path, net))
            load = best(args.repeat, lambda path=path: checkpoint.load(path, net))
            rows.append((f"checkpoint .{fmt}", save, load, os.path.getsize(path)))
    finally:
        shutil.rmtree(folder)
    print(f"Brian2 {b2.__version__}, {len(syn)} synapses, {args.neurons} neurons, best of {args.repeat}")
    print_speedups(rows)


if __name__ == "__main__":
    main()
