"""Every example, run with the command the README shows (``make
example-<name> ARGS=...``), stopped and resumed: what a new user does first."""

import os
import signal
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# target, arguments of a short run, of a longer one; durations keep each example brief
EXAMPLES = {
    "izhikevich": ("--duration-ms 600", "--duration-ms 1200"),
    "brian2": ("--duration-ms 60", "--duration-ms 120"),
    "annarchy": ("--duration-ms 200", "--duration-ms 400"),
    "nest": ("--duration-ms 200", "--duration-ms 400"),
    "neuron": ("--duration-ms 100", "--duration-ms 200"),
    "mpi": ("--steps 600", "--steps 1200"),
}


def make(target, args, folder, timeout=900):
    done = subprocess.run(
        ["make", "-s", "-C", ROOT, f"example-{target}", f"ARGS={args} --folder {folder}"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.mark.parametrize("target", sorted(EXAMPLES))
def test_example_runs_resumes_and_saves_once(tmp_path, target):
    short, longer = EXAMPLES[target]
    folder = tmp_path / "ckpts"
    first = make(target, short, folder)
    assert "fresh start" in first and "done at" in first, first
    second = make(target, longer, folder)
    assert "resumed from" in second and "fresh start" not in second and "done at" in second, second
    third = make(target, longer, folder)  # already finished: resumes, saves nothing again
    assert "resumed from" in third and "checkpoint committed" not in third, third
    for output in (first, second, third):
        assert "Traceback" not in output and "99999999" not in output, output


def test_ctrl_c_stops_an_example_and_the_next_run_resumes(tmp_path):
    folder = tmp_path / "ckpts"
    process = subprocess.Popen(
        ["make", "-s", "-C", ROOT, "example-izhikevich", f"ARGS=--duration-ms 100000 --folder {folder}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while not (folder.exists() and any(n.startswith("ckpt-") for n in os.listdir(folder))):
        assert time.time() < deadline and process.poll() is None
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    output, _ = process.communicate(timeout=60)
    assert "stopped at t =" in output and "Traceback" not in output, output
    resumed = make("izhikevich", "--duration-ms 1000", folder)
    assert "resumed from" in resumed


def test_make_demo_twice_leaves_the_finished_runs_picture(tmp_path):
    import sys

    env = dict(os.environ, DEMO_MS="300", DEMO_OUTPUT=str(tmp_path / "out"))
    first = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "demo.py")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0 and "picture:" in first.stdout, first.stderr
    picture = (tmp_path / "out" / "demo.png").read_bytes()
    again = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "demo.py")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0 and "finished earlier" in again.stdout, again.stderr
    assert (tmp_path / "out" / "demo.png").read_bytes() == picture
