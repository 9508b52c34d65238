"""One process of AdapterContract's fresh-process restart (tests/adapter_contract.py).

    python contract_process.py MODULE CLASS MODE FOLDER

imports the contract's subclass ``CLASS`` from the test module ``MODULE``
and, with the model its ``fresh(seed, folder)`` builds:

* ``prepare``: seed 1, nothing else: a simulator that compiles into FOLDER
  (ANNarchy, Brian2's Cython) does it here, so that no later process differs
  by a first compile;
* ``straight``: seed 1, four advances, the capture at the end;
* ``first``: seed 1, two advances, saved to FOLDER/run.h5, the capture then;
* ``resume``: seed 2 (other connectivity and values), loads FOLDER/run.h5,
  the capture then, two advances, the capture at the end.

The captures (tests/helpers.capture_copy) and the adapter's ``exact_restart`` are pickled to FOLDER/MODE.pickle.
"""

import importlib
import os
import pickle
import sys

import numpy as np

import checkpoint
from checkpoint.adapters import adapter_for


def main(module, name, mode, folder):
    suite = getattr(importlib.import_module(module), name)()
    seed = 2 if mode == "resume" else 1
    np.random.seed(seed)  # as a reproducible script does: else the straight run's own is the OS's
    model = suite.fresh(seed, folder)
    path, out = os.path.join(folder, "run.h5"), {"exact_restart": adapter_for(model).exact_restart}
    if mode == "prepare":
        return
    halves = {"straight": ("run", "run"), "first": ("run", "save"), "resume": ("load", "run")}[mode]
    for half in halves:  # each half: two advances, or the save or load in their place
        if half == "run":
            suite.advance(model)
            suite.advance(model)
        elif half == "save":
            checkpoint.save(path, model)
            out["saved"] = suite.captured(model)
        else:
            checkpoint.load(path, model)
            out["loaded"] = suite.captured(model)
    if mode != "first":
        out["end"] = suite.captured(model)
    with open(os.path.join(folder, f"{mode}.pickle"), "wb") as f:
        pickle.dump(out, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
