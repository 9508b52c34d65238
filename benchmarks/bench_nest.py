"""checkpoint.save/load of a NEST kernel against reading and writing the
same state through NEST's own Python API.

    python benchmarks/bench_nest.py [--neurons 10000] [--indegree 100]

NEST has no checkpoint of its own.  The baseline is what a script would
hand-write: ``GetConnections().get(...)`` of the same per-connection entries
plus ``np.save`` (fsync'd) to save, and ``np.load`` plus
``SynapseCollection.set`` to load.  Both sides pay NEST's status calls,
which build a Python dictionary per connection; the ratio shows what
checkpoint adds on top (the CSR order, checksums, the atomic rename, the
plan and the undo record).
"""

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import checkpoint
from _simulators import best, print_speedups


def build(nest, neurons, indegree):
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.rng_seed = 1
    exc = nest.Create("iaf_psc_alpha", neurons, params={"I_e": 376.0})
    nest.Connect(exc, exc, {"rule": "fixed_indegree", "indegree": indegree},
                 syn_spec={"synapse_model": "stdp_synapse", "weight": 1.0,
                           "delay": nest.random.uniform(1.0, 3.0)})
    nest.Simulate(20.0)
    return exc


def hand_written(nest, folder):
    """Save: every numeric entry of every connection and neuron, np.save'd."""
    conns = nest.GetConnections(synapse_model="stdp_synapse")
    keys = [k for k, v in conns[0].get().items() if isinstance(v, (int, float)) and k != "synapse_model"]
    path = os.path.join(folder, "raw.npz")

    def save():
        arrays = {k: np.asarray(v) for k, v in conns.get(keys).items()}
        arrays["V_m"] = np.asarray(nest.GetNodes().get("V_m"))
        with open(path, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())

    def load():
        with np.load(path) as data:
            conns.set({"weight": data["weight"].tolist(), "Kplus": data["Kplus"].tolist()})
            nest.GetNodes().set({"V_m": data["V_m"].tolist()})
    return save, load, path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=10_000)
    parser.add_argument("--indegree", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--folder", default=".")
    args = parser.parse_args()
    import nest
    build(nest, args.neurons, args.indegree)
    folder = tempfile.mkdtemp(prefix="bench-nest-", dir=args.folder)
    try:
        save, load, raw_path = hand_written(nest, folder)
        rows = [("GetConnections().get + np.save / set", best(args.repeat, save), best(args.repeat, load),
                 os.path.getsize(raw_path))]
        for fmt in ("h5", "npz"):
            path = os.path.join(folder, f"c.{fmt}")
            rows.append((f"checkpoint .{fmt}", best(args.repeat, lambda path=path: checkpoint.save(path, nest)),
                         best(args.repeat, lambda path=path: checkpoint.load(path, nest)), os.path.getsize(path)))
    finally:
        shutil.rmtree(folder)
    print(f"NEST {nest.__version__}, {len(nest.GetConnections())} connections, {args.neurons} neurons, "
          f"best of {args.repeat}")
    print_speedups(rows)


if __name__ == "__main__":
    main()
