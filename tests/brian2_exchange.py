"""Checkpoints of tests/brian2_sim.py's network written by one Brian2 release,
for tests/test_brian2_versions.py to load with every other.

    python tests/brian2_exchange.py FOLDER [TARGET ...]

runs, with the Brian2 of this interpreter, on the numpy and the Cython
targets: ``first`` (run T1, save ``ckpt-<release>-<target>.h5``) and
``straight`` (run T1 + T2, keep ``straight-<release>-<target>.npz``, what a
resumed run must reproduce bit for bit).  tests/data/brian2/ holds the
files of each release in the matrix (``make test-brian2-matrix``), written
this way by the real release.
"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
T1, T2 = "5", "5"  # ms
TARGETS = ("numpy", "cython")


def names(release, target):
    return f"ckpt-{release}-{target}.h5", f"straight-{release}-{target}.npz"


def _without_avx512():
    """The AVX-512 features this machine's numpy would use, for
    ``NPY_DISABLE_CPU_FEATURES``.  numpy picks its exp/log kernels by CPU,
    and they differ in the last bit: the committed straight runs were
    computed on a machine without AVX-512, and with it enabled the weights
    of STDP came out one ulp apart in 10 of 710 synapses (spikes and
    voltages equal).  Every run of these tests uses the AVX2 kernels, so
    the comparison stays bit for bit on any x86 machine with AVX2."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__
    return " ".join(name for name, found in __cpu_features__.items() if found and name.startswith("AVX512"))


def run_sim(python, target, cache, out, mode, duration, extra, cwd):
    """brian2_sim.py in a fresh process of ``python``; raises with its stderr."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    env["NPY_DISABLE_CPU_FEATURES"] = _without_avx512()
    done = subprocess.run(
        [python, os.path.join(HERE, "brian2_sim.py"), target, str(cache), str(out), mode, duration, str(extra)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode:
        raise RuntimeError(f"{python} brian2_sim.py {mode} failed:\n{done.stderr[-3000:]}")


def numpy_of(python):
    """The numpy version of interpreter ``python``."""
    return subprocess.run(
        [python, "-c", "import numpy; print(numpy.__version__)"], capture_output=True, text=True, check=True
    ).stdout.strip()


def write(folder, python=sys.executable, cache=None, targets=TARGETS):
    """The checkpoint and straight run of every target, by ``python``'s Brian2
    (its Cython cache in ``cache``, a scratch one by default)."""
    release = subprocess.run(
        [python, "-c", "import brian2; print(brian2.__version__)"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as scratch:
        for target in targets:
            ckpt, straight = names(release, target)
            cache = cache or os.path.join(scratch, "cython")
            run_sim(python, target, cache, os.path.join(folder, straight), "straight", T1, T2, scratch)
            run_sim(python, target, cache, os.devnull, "first", T1, os.path.join(folder, ckpt), scratch)
    return release


if __name__ == "__main__":
    print(write(os.path.abspath(sys.argv[1]), targets=sys.argv[2:] or TARGETS))
