"""checkpoint.save/load against ANNarchy's own net.save/net.load (.npz).

    python benchmarks/bench_annarchy.py [--neurons 10000] [--synapses 10000000]

Two populations of Izhikevich neurons joined by an STDP projection of about
``--synapses`` synapses, compiled into a temporary folder and run for a few
ms.  In the same run: ANNarchy's ``net.save`` / ``net.load`` to ``.npz``
(pickled, compressed, no fsync; once: it is slow) against ``checkpoint.save``
/ ``checkpoint.load`` in HDF5 and npz (fsync'd, checksummed, with spike
times, trace timestamps and the random engines that ANNarchy's own save
leaves out), best of ``--repeat``, and the raw cost of the same bytes
(``np.save`` of each array, fsync'd; ``np.load``).  The first checkpoint
call also compiles checkpoint's accessor for the network (reported apart).
Goal: 10x faster than ANNarchy's own, both ways.
"""

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import checkpoint
from _simulators import best, print_speedups, raw_cost, timed


def build(ann, neurons, synapses, folder):
    net = ann.Network(dt=1.0, seed=1)
    pre = net.create(neurons, ann.Izhikevich, name="pre")
    post = net.create(neurons, ann.Izhikevich, name="post")
    pre.i_offset = ann.Uniform(0.0, 10.0, rng=net.default_rng)
    proj = net.connect(pre, post, "exc", synapse=ann.STDP, name="stdp")
    proj.fixed_probability(synapses / neurons**2, weights=ann.Uniform(0.0, 0.05, rng=net.default_rng))
    net.compile(directory=os.path.join(folder, "build"), silent=True)
    return net, proj


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=10_000)
    parser.add_argument("--synapses", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", default=".")
    args = parser.parse_args()
    import ANNarchy as ann

    folder = tempfile.mkdtemp(prefix="bench-annarchy-", dir=args.folder)
    try:
        net, proj = build(ann, args.neurons, args.synapses, folder)
        net.simulate(5)
        own = os.path.join(folder, "own.npz")
        rows = [
            (
                "ANNarchy net.save / net.load (.npz)",
                timed(lambda: net.save(own)),
                timed(lambda: net.load(own)),
                os.path.getsize(own),
            )
        ]
        first_call = timed(lambda: checkpoint.save(os.path.join(folder, "warm.h5"), net))
        raw_save, raw_load, raw_bytes = raw_cost(net, folder, args.repeat)
        for fmt in ("h5", "npz"):
            path = os.path.join(folder, f"c.{fmt}")
            save = best(args.repeat, lambda path=path: checkpoint.save(path, net))
            load = best(args.repeat, lambda path=path: checkpoint.load(path, net))
            rows.append((f"checkpoint .{fmt}", save, load, os.path.getsize(path)))
        synapses = proj.nb_synapses
    finally:
        shutil.rmtree(folder)
    print(
        f"ANNarchy {ann.__version__}, {synapses} synapses (STDP), 2 x {args.neurons} neurons; "
        f"checkpoint best of {args.repeat}"
    )
    print(f"first checkpoint call, including compiling the accessor: {first_call:.2f} s")
    print_speedups(rows)
    print(
        f"raw cost of the same bytes ({raw_bytes / 1e6:.1f} MB, np.save + fsync / np.load): "
        f"{raw_save:.3f} s / {raw_load:.3f} s; raw / ours: "
        + ", ".join(
            f"{name} save {raw_save / save:.2f}x, load {raw_load / load:.2f}x" for name, save, load, _ in rows[1:]
        )
    )


if __name__ == "__main__":
    main()
