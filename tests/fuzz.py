"""The fuzzing harness: mutate small valid checkpoints of every format,
recompute every digest and checksum an attacker could recompute, and parse
each result in a child process, where a crash, a hang or a large
allocation is a finding rather than a lost test run.

Three kinds of mutation, each drawn by hypothesis:

- **bytes**: bits flipped, ranges overwritten, bytes inserted or deleted, the
  file truncated; then the outer digest (HDF5 userblock, MAT header) is
  recomputed, so the parsers (HDF5, zipfile, scipy.io, the .npy header
  reader, ours) see the damage;
- **manifest**: one value anywhere in the manifest's JSON replaced by an
  arbitrary JSON value (huge integers, NaN, nesting, strings, lists) or
  deleted; the manifest's digest and the outer digest recomputed;
- **state**: connectivity and metadata replaced in a state that the
  library itself then writes, so every checksum is right by construction.

A child reads the file (``checkpoint.read``) and loads it into a fresh
network (``checkpoint.load``).  Accepted outcomes: success (a forgery with
consistent digests may be a valid checkpoint) or a ``CheckpointError``
subclass.  Findings: any other exception, a crash, a hang, or peak memory
growing by more than :data:`MAX_GROWTH`.

``make test`` runs a bounded, derandomised number of cases;
``make fuzz`` (``FUZZ_EXAMPLES``, ``FUZZ_SEED``) runs many more and prints
a summary.
"""

import collections
import json
import os
import select
import subprocess
import sys
import textwrap

import numpy as np

import checkpoint
import forge
from helpers import izhikevich_network

MAX_GROWTH = 256 << 20
CHILD_MEMORY = 3 << 30
TIMEOUT = 60
SEED_NETWORK = {"n_exc": 12, "n_inh": 4, "density": 0.3}
ORDERED = "simulator order"  # a seed option: synapses stored in a (random) simulator's order
SEEDS = {  # name -> (suffix, save options)
    "h5": ("h5", {}),
    "h5-gzip": ("h5", {"compression": "gzip"}),
    "npz": ("npz", {}),
    "npz-gzip": ("npz", {"compression": "gzip"}),
    "mat": ("mat", {}),
    "mat-gzip": ("mat", {"compression": "gzip"}),
    "txt": ("txt", {}),
    "txt.gz": ("txt.gz", {}),
    # format version 3: per-synapse arrays in a simulator's order, and the order
    "h5-ordered": ("h5", {ORDERED: True}),
    "npz-ordered": ("npz", {ORDERED: True}),
}

OUTCOMES = collections.Counter()  # what the cases of this process ended in, for the summary

_WORKER = textwrap.dedent("""
    import json, os, resource, sys, traceback, warnings
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.path.insert(0, sys.argv[2])
    warnings.simplefilter("ignore")
    import checkpoint
    from checkpoint.formats import _h5sandbox
    from helpers import izhikevich_network
    from fuzz import fingerprint
    _h5sandbox.BASE_TIMEOUT = 5.0    # a forged file that makes HDF5 loop costs 5 s here, not 30
    SEED_NETWORK = json.loads(sys.argv[3])
    for line in sys.stdin:
        path = line.strip()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            detail = fingerprint(checkpoint.read(path))
            checkpoint.load(path, izhikevich_network(**SEED_NETWORK))
            outcome = "ok"
        except checkpoint.CheckpointError as exc:
            outcome, detail = "refused " + type(exc).__name__, ""
            if isinstance(exc.__context__, MemoryError):
                outcome, detail = "finding: MemoryError", str(exc)
        except BaseException as exc:
            outcome, detail = "finding: raw " + type(exc).__name__, traceback.format_exc()[-3000:]
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
        print(json.dumps({"outcome": outcome, "detail": detail, "grown": grown}), flush=True)
""")


class Worker:
    """A child process that parses the files it is sent, one per line."""

    def __init__(self):
        self.process = None

    def _start(self):
        tests = os.path.dirname(os.path.abspath(__file__))
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(CHILD_MEMORY), tests, json.dumps(SEED_NETWORK)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def parse(self, path):
        """``(outcome, detail)`` of reading and loading ``path``; the detail
        of an ``"ok"`` is the :func:`fingerprint` of what was read."""
        if self.process is None or self.process.poll() is not None:
            self._start()
        self.process.stdin.write(os.fspath(path) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], TIMEOUT)
        if not ready:
            self.close()
            return "finding: hang", f"no answer in {TIMEOUT} s"
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            detail = self.process.stderr.read()[-3000:]
            self.process = None
            return f"finding: crash (exit {code})", detail
        result = json.loads(line)
        if result["grown"] > MAX_GROWTH and not result["outcome"].startswith("finding"):
            return "finding: memory", f"peak memory grew by {result['grown'] >> 20} MiB"
        return result["outcome"], result["detail"]

    def close(self):
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def fingerprint(state):
    """A digest of everything a load restores from ``state``."""
    import hashlib
    from helpers import state_arrays

    h = hashlib.sha256(repr((state.time, state.step, state.dt)).encode())
    for key, array in sorted(state_arrays(state).items(), key=lambda item: repr(item[0])):
        h.update(repr((key, array.dtype.str, array.shape)).encode() + array.tobytes())
    for name, rng in sorted(state.rng.items()):
        h.update(repr((name, rng.kind, rng.state)).encode())
    return h.hexdigest()


def make_seed(folder, name):
    """A small valid checkpoint of the seed ``name``; its path."""
    suffix, options = SEEDS[name]
    path = os.path.join(folder, f"seed-{name}.{suffix}")
    if not os.path.exists(path):
        options = dict(options)
        ordered = options.pop(ORDERED, False)
        checkpoint.save(path, izhikevich_network(**SEED_NETWORK), **options)
        if ordered:
            from checkpoint.formats import read_state, write_state

            state = read_state(path)
            for proj in state.projections.values():
                proj.simulator_order = np.random.default_rng(1).permutation(proj.nnz)
            write_state(path, state)
    return path


def make_sharded_seed(folder):
    """A small valid sharded checkpoint (two HDF5 shards and their manifest)
    of the seed network, in ``folder``; its manifest's path."""
    path = os.path.join(folder, "sharded", "run.h5")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path))
        forge.sharded(path, izhikevich_network(**SEED_NETWORK), 2)
    return path


# ------------------------------------------------------------- mutations


def mutate_bytes(data, draw, st):
    """Apply one to four byte-level edits drawn by hypothesis."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate", "zero"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "zero":
            n = draw(st.integers(1, 256))
            data[at : at + n] = bytes(len(data[at : at + n]))
    return bytes(data)


def json_values(st):
    """Arbitrary JSON values, with the ones that break careless readers."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30])
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.text(max_size=20)
        | st.sampled_from(["<f8", "|O", "<U10", "global", "neuron", "synapse", "post", "free"])
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=8,
    )


def mutate_manifest(manifest, draw, st):
    """Replace or delete one value somewhere in the manifest."""
    node, key = None, None
    current = manifest
    while isinstance(current, (dict, list)) and current and draw(st.integers(0, 3)) > 0:
        keys = list(current) if isinstance(current, dict) else list(range(len(current)))
        node, key = current, draw(st.sampled_from(keys))
        current = current[key]
    if node is None:
        node, key = manifest, draw(st.sampled_from(sorted(manifest)))
    if draw(st.booleans()) and isinstance(node, dict):
        del node[key]
    else:
        node[key] = draw(json_values(st))
    return manifest


def mutate_state(state, draw, st):
    """Forge values that checksums cannot catch (the library writes them)."""
    proj = state.projections["proj0"]
    kind = draw(st.sampled_from(["indptr", "indices", "shape", "time", "step", "size", "dtype", "order"]))
    if kind == "indptr":
        proj.indptr = np.asarray(
            draw(st.lists(st.integers(-(2**40), 2**40), min_size=len(proj.indptr), max_size=len(proj.indptr))), np.int64
        )
    elif kind == "indices":
        proj.indices = np.asarray(
            draw(st.lists(st.integers(-(2**40), 2**40), min_size=len(proj.indices), max_size=len(proj.indices))),
            np.int64,
        )
    elif kind == "order":  # a simulator's order that is not a permutation, or is one of another length
        proj.simulator_order = np.asarray(
            draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=0, max_size=len(proj.indices) + 1)), np.int64
        )
        proj.arrays_in_simulator_order = True  # written as they are, under the forged order
    elif kind == "shape":
        proj.shape = (draw(st.integers(0, 2**20)), draw(st.integers(0, 2**20)))
    elif kind == "time":
        state.meta["time"] = draw(st.floats(allow_nan=False, allow_infinity=False))
    elif kind == "step":
        state.meta["step"] = draw(st.integers(0, 2**62))
    elif kind == "size":
        state.populations["pop0"].size = draw(st.integers(0, 100))
    else:
        pop = state.populations["pop0"]
        pop.arrays["v"] = np.asarray(pop.arrays["v"]).astype(draw(st.sampled_from(["<f4", "<i8", "|u1", "|b1"])))
    return state
