"""python -m checkpoint inspect|diff|convert|verify|plot."""

import subprocess
import sys

import numpy as np
import scipy.sparse

import pytest

import checkpoint
from checkpoint import Checkpointer
from checkpoint.state import ArrayInfo
from helpers import izhikevich_network, same_bits, state_arrays


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "checkpoint", *map(str, args)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def saved(tmp_path):
    net = izhikevich_network()
    net.step = 10
    checkpoint.save(tmp_path / "a.h5", net, metadata={"run": 1})
    return tmp_path / "a.h5", net


def test_inspect(saved):
    path, _ = saved
    out = cli("inspect", path)
    assert out.returncode == 0, out.stderr
    for text in (
        "t = 5.0 ms",
        "step 10",
        "population 'pop0': 40 neurons",
        "projection 'proj0'",
        "w: variable, synapse, float32",
        "last_spike: internal",
        "min ",
        "{'run': 1}",
        "checkpoint.Network",
    ):
        assert text in out.stdout, text


def test_convert_then_diff_equal(saved, tmp_path):
    path, _ = saved
    for suffix in ("npz", "mat", "txt.gz"):
        out = cli("convert", path, tmp_path / f"b.{suffix}")
        assert out.returncode == 0, out.stderr
        a, b = state_arrays(checkpoint.read(path)), state_arrays(checkpoint.read(tmp_path / f"b.{suffix}"))
        assert all(same_bits(a[k], b[k]) for k in a)
        out = cli("diff", path, tmp_path / f"b.{suffix}")
        assert out.returncode == 0 and "equal" in out.stdout


def test_diff_reports_differences(saved, tmp_path):
    path, net = saved
    net.populations["pop0"].v[3] += 2.0
    net.step += 1
    checkpoint.save(tmp_path / "c.npz", net)
    out = cli("diff", path, tmp_path / "c.npz")
    assert out.returncode == 1
    assert "pop0.v: max abs diff 2" in out.stdout and "time:" in out.stdout


def test_verify_file_and_folder(tmp_path):
    net = izhikevich_network()
    with Checkpointer(tmp_path / "ckpts", net, every_steps=1, keep=3, background=False) as ckpt:
        for _ in range(3):
            net.step += 1
            ckpt.maybe_save()
    assert cli("verify", tmp_path / "ckpts").returncode == 0
    newest = tmp_path / "ckpts" / "ckpt-000000000003.h5"
    data = bytearray(newest.read_bytes())
    data[-100] ^= 4
    newest.write_bytes(data)
    out = cli("verify", tmp_path / "ckpts")
    assert out.returncode == 1 and "DAMAGED" in out.stdout and out.stdout.count("ok ") == 2
    assert cli("verify", newest).returncode == 1


def test_verify_checks_every_shard_of_a_sharded_checkpoint(tmp_path):
    from checkpoint.distributed import shard_paths
    from helpers import SingleRank

    checkpoint.save(tmp_path / "run.h5", izhikevich_network(), comm=SingleRank())
    assert cli("verify", tmp_path / "run.h5").returncode == 0
    shard = shard_paths(tmp_path / "run.h5")[0]
    data = bytearray(open(shard, "rb").read())
    data[len(data) // 2] ^= 8
    open(shard, "wb").write(bytes(data))
    out = cli("verify", tmp_path / "run.h5")
    assert out.returncode == 1 and "DAMAGED" in out.stdout and "rank-0-of-1" in out.stdout


def test_plot(saved, tmp_path):
    path, _ = saved
    out = cli("plot", path, "-o", tmp_path / "p.png")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_arguments_and_files(tmp_path):
    assert cli().returncode == 2
    assert cli("inspect").returncode == 2
    out = cli("inspect", tmp_path / "missing.h5")
    assert out.returncode == 2 and "missing.h5" in out.stderr
    (tmp_path / "junk.npz").write_bytes(b"junk")
    out = cli("inspect", tmp_path / "junk.npz")
    assert out.returncode == 2 and "junk.npz" in out.stderr
    out = cli("convert", tmp_path / "junk.npz", tmp_path / "x.unknown")
    assert out.returncode == 2
    assert cli("verify", tmp_path / "nothing-here").returncode == 1


def test_console_script(saved):
    import os

    path, _ = saved
    script = os.path.join(os.path.dirname(sys.executable), "checkpoint")
    out = subprocess.run([script, "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ok" in out.stdout


def test_diff_compares_everything_a_load_restores(tmp_path):
    """Two files that differ only in a generator's state, in dt, or in one
    projection's target are not "equal"."""
    base = izhikevich_network()
    checkpoint.save(tmp_path / "a.h5", base)
    drawn = izhikevich_network()
    drawn.rng.random(5)
    checkpoint.save(tmp_path / "rng.h5", drawn)
    state = checkpoint.read(tmp_path / "a.h5")
    state.meta["dt"] = 0.25
    checkpoint.save(tmp_path / "dt.h5", state)
    state = checkpoint.read(tmp_path / "a.h5")
    state.projections["proj0"].target = "inh"
    checkpoint.save(tmp_path / "target.h5", state)
    for name, says in (
        ("rng.h5", "random generator 'network': its state differs"),
        ("dt.h5", "dt: 0.5 vs 0.25"),
        ("target.h5", "proj0: target exc vs inh"),
    ):
        out = cli("diff", tmp_path / "a.h5", tmp_path / name)
        assert out.returncode == 1 and says in out.stdout, out.stdout
    assert cli("diff", tmp_path / "a.h5", tmp_path / "a.h5").stdout.strip() == "equal"


def test_version():
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"checkpoint {checkpoint.__version__} (neuro-checkpoint)"


def test_inspect_says_which_bracket_is_which_and_omits_a_missing_target(tmp_path):
    net = checkpoint.Network()
    a = net.add_population("a", 3, parameters={"V_min": -np.inf}, variables={"v": -65.0})
    net.add_projection("p", a, a, None, scipy.sparse.csr_matrix(np.ones((3, 3))), variables={"w": 0.5})
    checkpoint.save(tmp_path / "n.h5", net)
    state = checkpoint.read(tmp_path / "n.h5")
    state.populations["a"].info["v"] = ArrayInfo("variable", "neuron", "mV")
    checkpoint.save(tmp_path / "n.h5", state)
    out = cli("inspect", tmp_path / "n.h5").stdout
    assert "v: variable, neuron, float64, shape 3, unit mV" in out
    assert "projection 'p': 'a' -> 'a', 9 synapses, matrix 3 post x 3 pre" in out and "None" not in out
    plotted = cli("plot", tmp_path / "n.h5", "-o", tmp_path / "n.png")  # every array one value: a table
    assert plotted.returncode == 0, plotted.stderr
