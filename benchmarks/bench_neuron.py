"""checkpoint.save/load of a NEURON model against NEURON's own SaveState
of the same model, in the same run.

    python benchmarks/bench_neuron.py [--cells 1000] [--repeat 5]

The model: ``--cells`` ball-and-stick cells of NEURON's ring tutorial (HH
soma, 5 passive dendrite segments, ExpSyn), each driven by a noisy NetStim
(tests/neuron_models.py), run for 20 ms.  Best of ``--repeat``:

* save: ``SaveState.save`` + ``fwrite`` to a file, fsync'd; against
  ``checkpoint.save`` to HDF5 and to npz (which also hold that SaveState,
  plus every RANGE variable, NetCon, stream and event as readable arrays);
* load: ``fread`` + ``restore`` from that file; against ``checkpoint.load``
  (read, verify, check every identity, restore SaveState, scatter arrays).

Ratios are NEURON's time over ours (1.0: as fast; higher is faster).
"""

import argparse
import os
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


def best(repeat, call):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from neuron import h
    import checkpoint
    import neuron_models

    warnings.simplefilter("ignore", checkpoint.CheckpointWarning)
    net = neuron_models.build(n=args.cells)  # noqa: F841 (the model lives while it is referenced)
    h.finitialize(-65)
    h.continuerun(20)
    folder = tempfile.mkdtemp(prefix="bench-neuron-")
    native = os.path.join(folder, "state.bin")

    def native_save():
        state = h.SaveState()
        state.save()
        f = h.File()
        f.wopen(native)
        state.fwrite(f)
        with open(native, "rb+") as raw:
            os.fsync(raw.fileno())

    def native_load():
        state = h.SaveState()
        f = h.File()
        f.ropen(native)
        state.fread(f)
        state.restore()

    native_times = {"save": best(args.repeat, native_save), "load": best(args.repeat, native_load)}
    print(
        f"NEURON {h.nrnversion(5)}: {args.cells} cells, {int(h.List('NetCon').count())} NetCons, "
        f"SaveState {os.path.getsize(native) / 1e6:.2f} MB"
    )
    for suffix in ("h5", "npz"):
        ours = os.path.join(folder, f"run.{suffix}")
        mine = {
            "save": best(args.repeat, lambda: checkpoint.save(ours, h)),
            "load": best(args.repeat, lambda: checkpoint.load(ours, h)),
        }
        for what in ("save", "load"):
            print(
                f"{what} ({suffix}, {os.path.getsize(ours) / 1e6:.2f} MB): SaveState "
                f"{native_times[what] * 1e3:8.1f} ms   checkpoint {mine[what] * 1e3:8.1f} ms   "
                f"ratio {native_times[what] / mine[what]:.2f}"
            )


if __name__ == "__main__":
    main()
