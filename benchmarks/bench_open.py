"""The fixed cost of a first read in a fresh process: ``.h5`` against ``.npz``.

    python benchmarks/bench_open.py [--repeat 11] [--neurons 1000]

Every HDF5 read first lets the HDF5 library walk the file's metadata in a
helper process (docs/safety.rst), which starts when the HDF5 format module is
imported (forked where that is safe, else a new interpreter in the
background).  Here each case is a fresh ``python -c``
process, the cases interleaved round by round so that a busy machine slows
them alike:

* ``import``: ``import checkpoint``;
* ``read .npz`` / ``read .h5``: ``import checkpoint; checkpoint.read(f)``;
* ``load .npz`` / ``load .h5``: the same, loading into an embedded network;
* ``import, lazy helper`` / ``read .h5, lazy helper``: ``CHECKPOINT_HDF5_HELPER=lazy``, the helper
  started by the first read (as before it started at import).

Three times per case, median over the rounds: ``the call`` (the read or
load alone, after the import), ``in process`` (from the first line of the
script, before ``import checkpoint``, to the end of the read) and
``process`` (the whole ``python`` process, start and exit included, as a
shell sees it).  The goal: the first ``.h5`` read costs at most 0.1 s more
than the same state's ``.npz``.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import checkpoint

SCRIPT = """
import time
start = time.perf_counter()
import sys
import checkpoint
imported = time.perf_counter()
if sys.argv[1] == "read":
    checkpoint.read(sys.argv[2])
elif sys.argv[1] == "load":
    import numpy as np
    n = int(sys.argv[3])
    rng = np.random.default_rng(0)
    net = checkpoint.Network(dt=0.1, seed=0)
    pop = net.add_population("exc", n, variables={"v": rng.standard_normal(n)})
    net.add_projection("ee", pop, pop, connectivity=(np.arange(n + 1), rng.integers(0, n, n)),
                       variables={"w": rng.random(n)})
    checkpoint.load(sys.argv[2], net)
end = time.perf_counter()
print(end - start, end - imported)
"""


def build(neurons):
    rng = np.random.default_rng(0)
    net = checkpoint.Network(dt=0.1, seed=0)
    pop = net.add_population("exc", neurons, variables={"v": rng.standard_normal(neurons)})
    net.add_projection(
        "ee",
        pop,
        pop,
        connectivity=(np.arange(neurons + 1), rng.integers(0, neurons, neurons)),
        variables={"w": rng.random(neurons)},
    )
    return net


def run_case(args, env):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, env=env, check=True)
    total, after_import = done.stdout.strip().splitlines()[-1].split()
    return float(after_import), float(total), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--neurons", type=int, default=1000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="ckpt-open-")
    try:
        net = build(args.neurons)
        files = {}
        for suffix in ("npz", "h5"):
            files[suffix] = os.path.join(folder, f"state.{suffix}")
            checkpoint.save(files[suffix], net)
        env = dict(os.environ)
        env.pop("CHECKPOINT_HDF5_HELPER", None)
        lazy = dict(env, CHECKPOINT_HDF5_HELPER="lazy")
        n = str(args.neurons)
        cases = {
            "import": (["none", ""], env),
            "import, lazy helper": (["none", ""], lazy),
            "read .npz": (["read", files["npz"]], env),
            "read .h5": (["read", files["h5"]], env),
            "load .npz": (["load", files["npz"], n], env),
            "load .h5": (["load", files["h5"], n], env),
            "read .h5, lazy helper": (["read", files["h5"]], lazy),
        }
        times = {name: [] for name in cases}
        run_case(*cases["read .h5"])  # warm the page cache for the interpreter and the libraries
        for _ in range(args.repeat):
            for name, (argv, case_env) in cases.items():
                times[name].append(run_case(argv, case_env))
        print(
            f"{args.neurons} neurons and synapses ({os.path.getsize(files['h5'])} bytes .h5, "
            f"{os.path.getsize(files['npz'])} bytes .npz); median of {args.repeat}; "
            f"python {sys.version.split()[0]}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        print("| case                      | the call s | in process s | process s |")
        print("|---------------------------|------------|--------------|-----------|")
        med = {}
        for name, runs in times.items():
            med[name] = tuple(statistics.median(r[i] for r in runs) for i in (0, 1, 2))
            print(f"| {name:25s} | {med[name][0]:10.3f} | {med[name][1]:12.3f} | {med[name][2]:9.3f} |")
        for what in ("read", "load", "read .h5, lazy helper"):
            h5 = f"{what} .h5" if what in ("read", "load") else what
            npz = f"{what.split()[0]} .npz"
            extra = [med[h5][i] - med[npz][i] for i in (0, 1, 2)]
            print(
                f"{h5} over {npz}: {extra[0]:+.3f} s the call, {extra[1]:+.3f} s in process, "
                f"{extra[2]:+.3f} s per process (goal: at most +0.100)"
            )
        print(
            f"the helper forked at import: {med['import'][1] - med['import, lazy helper'][1]:+.3f} s on "
            f"'import checkpoint'"
        )
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
