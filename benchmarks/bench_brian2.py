"""checkpoint.save/load against Brian2's own Network.store/restore(filename=).

    python benchmarks/bench_brian2.py [--neurons 10000] [--synapses 1000000]

A Brian2 network (numpy target) of LIF neurons with noise and an STDP
projection of about ``--synapses`` synapses with heterogeneous delays, run
for a few ms so that spikes are in flight.  In the same run, best of
``--repeat``: ``net.store(filename=)`` / ``net.restore(filename=)`` (pickle,
no fsync, and it loses heterogeneous delays) against ``checkpoint.save`` /
``checkpoint.load`` in HDF5 and npz (fsync'd, checksummed; per-synapse
arrays in Brian2's own order, format version 3), and the raw cost of the
checkpoint's bytes (``np.save`` of each array, fsync'd; ``np.load``).
Ratios are baseline time / ours (above 1: we are faster).  Goal: save and
load at least as fast as ``store`` fsync'd / ``restore``.
"""

import argparse
import os
import shutil
import sys
import tempfile
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import checkpoint
from _simulators import best, raw_cost


def build(b2, neurons, synapses, seed=1):
    b2.seed(seed)
    group = b2.NeuronGroup(
        neurons,
        "dv/dt = (1.1 - v) / (10*ms) + 0.2 * xi / sqrt(ms) : 1",
        threshold="v > 1",
        reset="v = 0",
        refractory=2 * b2.ms,
        method="euler",
        name="neurons",
    )
    group.v = "rand()"
    syn = b2.Synapses(
        group,
        group,
        """w : 1
                        dapre/dt = -apre / (20*ms) : 1 (event-driven)
                        dapost/dt = -apost / (20*ms) : 1 (event-driven)""",
        on_pre="v_post += w\napre += 0.01\nw = clip(w - apost, 0, 0.01)",
        on_post="apost += 0.01\nw = clip(w + apre, 0, 0.01)",
        name="stdp",
    )
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
        durable = best(args.repeat, store_durably)
        restore = best(args.repeat, lambda: net.restore(filename=pickle_path))
        stored_bytes = os.path.getsize(pickle_path)
        raw_save, raw_load, raw_bytes = raw_cost(net, folder, args.repeat)
        ours = []
        for fmt in ("h5", "npz"):
            path = os.path.join(folder, f"c.{fmt}")
            save = best(args.repeat, lambda path=path: checkpoint.save(path, net))
            load = best(args.repeat, lambda path=path: checkpoint.load(path, net))
            ours.append((f"checkpoint .{fmt}", save, load, os.path.getsize(path)))
    finally:
        shutil.rmtree(folder)
    print(f"Brian2 {b2.__version__}, {len(syn)} synapses, {args.neurons} neurons, best of {args.repeat}")
    print(
        f"| {'':34} | {'save':>7} | {'load':>7} | {'MB':>6} | save: store fsync'd / ours, store / ours, "
        f"raw / ours | load: restore / ours, raw / ours |"
    )
    rows = [
        ("Network.store / restore (pickle)", plain, restore, stored_bytes),
        ("  the same, store fsync'd", durable, restore, stored_bytes),
        ("raw np.save + fsync / np.load", raw_save, raw_load, raw_bytes),
    ] + ours
    for name, save, load, size in rows:
        print(
            f"| {name:34} | {save:6.3f}s | {load:6.3f}s | {size / 1e6:6.1f} | "
            f"{durable / save:5.2f}x {plain / save:5.2f}x {raw_save / save:5.2f}x | "
            f"{restore / load:5.2f}x {raw_load / load:5.2f}x |"
        )


if __name__ == "__main__":
    main()
