"""Restart runs of a NEURON model, one per child process (see test_neuron.py).

    python neuron_sim.py MODE FOLDER [--seed S] [--reverse] [--skip N] [--cvode]
                         [--mech NAME] [--file NAME] [--t-save T] [--t-end T]

``straight`` runs to ``--t-end``; ``first`` runs to ``--t-save`` and saves
``FOLDER/FILE`` (then goes on to the end); ``resume`` builds the model (maybe
otherwise: another seed, reversed, cells short), loads and runs to the end;
``refuse`` expects the load to fail and checks the model did not change.
Each writes ``FOLDER/<mode>.npz``: spikes after ``--t-save`` and every
state variable at the end, and ``FOLDER/<mode>.json``: what happened.
"""

import argparse
import json
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def observe(h, net, t_from):
    from checkpoint.adapters import adapter_for

    # by value: whether numpy reads a hoc.Vector directly depends on the
    # numpy release (numpy < 2.4 raised "setting an array element with a sequence")
    spikes = np.array(net["spikes"].to_python(), np.float64)
    ids = np.array(net["ids"].to_python(), np.float64)
    keep = spikes > t_from
    state = adapter_for(h).capture()
    out = {"spikes": spikes[keep], "spike_ids": ids[keep], "t": np.array([h.t])}
    for name, pop in state.populations.items():
        for var, array in pop.arrays.items():
            if var != "savestate" and not var.startswith(("netcon_events", "self_events")):
                out[f"{name}/{var}"] = np.asarray(array)
    for name, proj in state.projections.items():
        out[f"{name}/weight"] = np.asarray(proj["weight"])
    out["rng"] = np.array([net["rng"].seq()])
    return out


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("folder")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reverse", action="store_true")
    parser.add_argument("--skip", type=int, default=0)
    parser.add_argument("--cvode", action="store_true")
    parser.add_argument("--mech", default="hh")
    parser.add_argument("--modpath")
    parser.add_argument("--extra")
    parser.add_argument("--file", default="run.h5")
    parser.add_argument("--t-save", type=float, default=20.0)
    parser.add_argument("--t-end", type=float, default=40.0)
    parser.add_argument("--cells", type=int, default=30)
    args = parser.parse_args(argv)
    from neuron import h, load_mechanisms

    if args.modpath:
        load_mechanisms(args.modpath)
    import checkpoint
    import neuron_models

    net = neuron_models.build(
        n=args.cells,
        seed=args.seed,
        reverse=args.reverse,
        skip=args.skip,
        cvode=args.cvode,
        mechanism=args.mech,
        extra=args.extra,
    )
    h.finitialize(-65)
    path = os.path.join(args.folder, args.file)
    result = {"mode": args.mode}
    if args.mode in ("straight", "first"):
        h.continuerun(args.t_save)
        for _ in range(3):
            net["rng"].repick()
        if args.mode == "first":
            np.savez(os.path.join(args.folder, "saved.npz"), **observe(h, net, -1))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                checkpoint.save(path, h)
            result["save_warnings"] = [str(w.message) for w in caught]
    elif args.mode == "resume":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = checkpoint.load(path, h)
        result["load_warnings"] = [str(w.message) for w in caught]
        result["restored"] = len(report.restored)
        result["t"] = h.t
    elif args.mode == "midway":  # a failure while applying puts everything back
        from checkpoint.adapters.neuron import netcons

        before = observe(h, net, -1)
        calls = []

        def fail(proj, values):
            calls.append(proj.name)
            if len(calls) == 2:
                raise RuntimeError("injected failure")
            return original(proj, values)

        original, netcons.write = netcons.write, fail
        try:
            checkpoint.load(path, h)
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
        after = observe(h, net, -1)
        result["unchanged"] = all(np.array_equal(before[k], after[k], equal_nan=True) for k in before)
        with open(os.path.join(args.folder, "midway.json"), "w") as f:
            json.dump(result, f)
        return
    elif args.mode == "refuse":  # --file a.h5,b.h5,...: each load must fail and change nothing
        outcomes = []
        for name in args.file.split(","):
            before = observe(h, net, -1)
            outcome = {"file": name}
            try:
                checkpoint.load(os.path.join(args.folder, name), h)
            except checkpoint.CheckpointError as exc:
                outcome["error"] = type(exc).__name__
                outcome["message"] = str(exc)
            after = observe(h, net, -1)
            outcome["unchanged"] = all(np.array_equal(before[k], after[k], equal_nan=True) for k in before)
            outcomes.append(outcome)
        result.update(outcomes[0], outcomes=outcomes)
        with open(os.path.join(args.folder, "refuse.json"), "w") as f:
            json.dump(result, f)
        return
    h.continuerun(args.t_end)
    np.savez(os.path.join(args.folder, f"{args.mode}.npz"), **observe(h, net, args.t_save))
    with open(os.path.join(args.folder, f"{args.mode}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
