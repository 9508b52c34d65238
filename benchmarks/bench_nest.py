"""checkpoint.save/load of a NEST kernel against the best a script can do
with NEST's own calls, in the same run.

    python benchmarks/bench_nest.py [--connections 300000 1000000] [--neurons 10000]

NEST has no checkpoint of its own.  For each size (``stdp_synapse``
connections, fixed in-degree, after 20 ms) it times, best of ``--repeat``:

* save: one ``GetConnections(...).get([...])`` of every numeric entry plus
  the neurons' ``V_m``, ``np.savez`` and fsync; against ``checkpoint.save``;
* load into the same connectivity: ``SynapseCollection.set`` of ``weight``,
  ``delay`` and ``Kplus`` in place (the script knows the connectivity is the
  same); against ``checkpoint.load``, which must read the connections to
  check that (NEST builds a dictionary per connection: about 10 us each);
* load into a kernel with the nodes but no connections (the resume idiom):
  one array ``Connect`` with the saved sources, targets and every entry;
  against ``checkpoint.load``, which does the same.

Ratios are the script's time over ours (1.0: as fast; higher is faster).
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import checkpoint

MODEL = "stdp_synapse"


def build(nest, neurons, indegree, connect=True):
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.rng_seed = 1
    exc = nest.Create("iaf_psc_alpha", neurons, params={"I_e": 376.0})
    if connect:
        nest.Connect(
            exc,
            exc,
            {"rule": "fixed_indegree", "indegree": indegree},
            syn_spec={"synapse_model": MODEL, "weight": 1.0, "delay": nest.random.uniform(1.0, 3.0)},
        )
        nest.Simulate(20.0)
    return exc


def timed(repeat, work, before=None):
    best = float("inf")
    for _ in range(repeat):
        if before is not None:
            before()
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def script_save(nest, path):
    conns = nest.GetConnections(synapse_model=MODEL)
    keys = [k for k, v in conns[0].get().items() if isinstance(v, (int, float)) and k not in ("synapse_model",)]
    arrays = {k: np.asarray(v) for k, v in conns.get(keys).items()}
    arrays["V_m"] = np.asarray(nest.GetNodes().get("V_m"))
    with open(path, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())


def script_set(nest, path):
    with np.load(path) as data:
        nest.GetConnections(synapse_model=MODEL).set({k: data[k].tolist() for k in ("weight", "delay", "Kplus")})
        nest.GetNodes().set({"V_m": data["V_m"].tolist()})


def script_connect(nest, path):
    skip = {"source", "target", "target_thread", "port", "synapse_id", "sizeof", "receptor", "synapse_modelid", "V_m"}
    with np.load(path) as data:
        spec = {"synapse_model": MODEL, **{k: data[k] for k in data.files if k not in skip}}
        nest.Connect(data["source"], data["target"], "one_to_one", syn_spec=spec)
        nest.GetNodes().set({"V_m": data["V_m"].tolist()})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[300_000, 1_000_000])
    parser.add_argument("--neurons", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--folder", default=".")
    args = parser.parse_args()
    import nest

    folder = tempfile.mkdtemp(prefix="bench-nest-", dir=args.folder)
    raw, ours = os.path.join(folder, "raw.npz"), os.path.join(folder, "c.h5")
    print(f"NEST {nest.__version__}, {args.neurons} neurons, {MODEL}, best of {args.repeat}; ratio = script / ours")
    try:
        for connections in args.connections:
            indegree = connections // args.neurons
            build(nest, args.neurons, indegree)
            n = len(nest.GetConnections(synapse_model=MODEL))
            rows = [
                (
                    "save",
                    timed(args.repeat, lambda: script_save(nest, raw)),
                    timed(args.repeat, lambda: checkpoint.save(ours, nest)),
                )
            ]
            rows.append(
                (
                    "load, same connectivity",
                    timed(args.repeat, lambda: script_set(nest, raw)),
                    timed(args.repeat, lambda: checkpoint.load(ours, nest)),
                )
            )
            nodes_only = lambda: build(nest, args.neurons, indegree, connect=False)  # noqa: E731
            rows.append(
                (
                    "load, nodes without connections",
                    timed(args.repeat, lambda: script_connect(nest, raw), before=nodes_only),
                    timed(args.repeat, lambda: checkpoint.load(ours, nest), before=nodes_only),
                )
            )
            print(f"\n{n} connections")
            print(f"| {'':33s} | {'script':>8s} | {'checkpoint':>10s} | {'ratio':>6s} |")
            for name, script, mine in rows:
                print(f"| {name:33s} | {script:7.2f}s | {mine:9.2f}s | {script / mine:6.2f} |")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
