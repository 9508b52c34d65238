"""The HDF5 helper process (checkpoint/formats/_h5sandbox.py) keeps its
promises whatever happens to the process that uses it: a Ctrl-C never
leaves it answering for another file, it dies with its parent (even a
SIGKILL, even while the HDF5 library loops in it), a forked child gets its
own, and it starts when the format is imported, not on the first read.

Each test runs a real child process with a real helper; nothing is mocked.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import checkpoint

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find processes")

LOOP = os.path.join(os.path.dirname(__file__), "data", "hdf5-metadata-loop.h5")

PRELUDE = textwrap.dedent("""
    import json, os, signal, sys, threading, time
    import checkpoint
    from checkpoint.formats import _h5sandbox
    good, loop = sys.argv[1], sys.argv[2]
    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False
""")


def small_file(tmp_path):
    net = checkpoint.Network(dt=0.1, seed=0)
    net.add_population("p", 5, variables={"v": np.arange(5.0)})
    path = tmp_path / "good.h5"
    checkpoint.save(path, net)
    return path


def child(tmp_path, body, env=None, **popen):
    script = PRELUDE + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", script, str(small_file(tmp_path)), LOOP],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, **(env or {})),
        **popen,
    )


def alive(pid):
    """Whether ``pid`` runs (a zombie no longer does)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def is_child_of(pid, parent):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1]) == parent
    except FileNotFoundError:
        return False


def gone_within(pid, seconds):
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


#: The helper forked at import (the default on Linux) and a new interpreter
#: (where forking is not safe: threads, MPI; and every replacement).
START = pytest.mark.parametrize("start", ["fork", "spawn"])


@START
def test_a_ctrl_c_while_the_helper_walks_never_lets_its_answer_serve_another_file(tmp_path, start):
    """The helper is stopped (SIGSTOP) while it holds a request, the read is
    interrupted by a SIGINT, then the helper is let go: a helper kept after
    the interruption would answer "done" for the interrupted read, and the
    next read -- of a file that makes the HDF5 library loop -- would take
    that answer as its own and loop in this process.  Instead the
    interrupted helper is gone, and a new one refuses the looping file."""
    body = """
        checkpoint.read(good)                       # the helper is up and has answered once
        old = _h5sandbox._helper.popen.pid
        os.kill(old, signal.SIGSTOP)                # it takes the next request but cannot answer yet
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            checkpoint.read(good)
            interrupted = False
        except KeyboardInterrupt:
            interrupted = True
        if alive(old):
            os.kill(old, signal.SIGCONT)            # a helper kept would answer for the interrupted read now
            time.sleep(1)
        _h5sandbox.BASE_TIMEOUT = 5.0
        try:
            checkpoint.read(loop)
            outcome = "ok"
        except checkpoint.CheckpointError as exc:
            outcome = type(exc).__name__
        values = checkpoint.read(good).populations["p"]["v"].tolist()
        print(json.dumps({"interrupted": interrupted, "old_alive": alive(old), "outcome": outcome,
                          "values": values, "new": _h5sandbox._helper.popen.pid != old}))
    """
    process = child(tmp_path, body, env={"CHECKPOINT_HDF5_HELPER": start})
    try:
        out, _ = process.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("the read after the interruption hung: it took the interrupted read's answer")
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {
        "interrupted": True,
        "old_alive": False,
        "outcome": "CorruptCheckpointError",
        "values": [0.0, 1.0, 2.0, 3.0, 4.0],
        "new": True,
    }


@START
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "looping-in-hdf5"])
def test_the_helper_dies_with_its_parent_even_a_sigkill(tmp_path, busy, start):
    """The parent is SIGKILLed, with a forked grandchild alive that would
    hold the helper's pipes open if it inherited them; with ``busy`` the
    helper is inside the HDF5 library, looping on a forged file (it reads
    no input then, and runs no Python).  No helper may outlive it."""
    body = f"""
        checkpoint.read(good)
        grandchild = os.fork()
        if grandchild == 0:
            time.sleep(120)
            os._exit(0)
        print(json.dumps({{"helper": _h5sandbox._helper.popen.pid, "grandchild": grandchild}}), flush=True)
        if {busy}:
            checkpoint.read(loop)
        time.sleep(120)
    """
    process = child(tmp_path, body, env={"CHECKPOINT_HDF5_HELPER": start})
    pids = json.loads(process.stdout.readline())
    try:
        assert is_child_of(pids["helper"], process.pid)
        time.sleep(2 if busy else 0.2)  # (busy: the helper is in the loop by now)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert gone_within(pids["helper"], 10), "the helper outlived its parent"
    finally:
        for pid in (pids["grandchild"], pids["helper"]):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.stdout.close()


def test_the_helper_starts_at_import_and_a_forked_child_gets_its_own(tmp_path):
    body = """
        helper = _h5sandbox._helper
        started_at_import = helper is not None and helper.started.wait(60) and helper.popen.poll() is None
        first = helper.popen.pid
        # forked, it holds none of this process's files: /dev/null and its two pipes
        fds = sorted(os.readlink(f"/proc/{first}/fd/{fd}").split(":")[0] for fd in os.listdir(f"/proc/{first}/fd"))
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            values = checkpoint.read(good).populations["p"]["v"].tolist()
            os.write(write, json.dumps({"values": values, "pid": _h5sandbox._helper.popen.pid}).encode())
            os._exit(0)
        os.close(write)
        forked = json.loads(os.read(read, 10000))
        os.waitpid(pid, 0)
        values = checkpoint.read(good).populations["p"]["v"].tolist()
        print(json.dumps({"at_import": started_at_import, "forked": type(helper.popen).__name__, "fds": fds,
                          "child_own": forked["pid"] != first,
                          "child_values": forked["values"], "values": values,
                          "same": _h5sandbox._helper.popen.pid == first}))
    """
    process = child(tmp_path, body)
    out, _ = process.communicate(timeout=150)
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {
        "at_import": True,
        "forked": "_Forked",
        "fds": ["/dev/null"] * 3 + ["pipe"] * 2,
        "child_own": True,
        "child_values": [0.0, 1.0, 2.0, 3.0, 4.0],
        "values": [0.0, 1.0, 2.0, 3.0, 4.0],
        "same": True,
    }


def test_lazy_start_waits_for_the_first_read(tmp_path):
    body = """
        before = _h5sandbox._helper
        values = checkpoint.read(good).populations["p"]["v"].tolist()
        print(json.dumps({"before": before is None, "values": values}))
    """
    process = child(tmp_path, body, env={"CHECKPOINT_HDF5_HELPER": "lazy"})
    out, _ = process.communicate(timeout=150)
    assert json.loads(out.strip().splitlines()[-1]) == {"before": True, "values": [0.0, 1.0, 2.0, 3.0, 4.0]}


def test_a_process_with_threads_at_import_gets_a_new_interpreter_not_a_fork(tmp_path):
    """A fork copies only the forking thread: a lock another thread holds
    would stay held in the helper for ever, so with other threads running
    the helper is a new interpreter (and reads as well)."""
    script = textwrap.dedent("""
        import json, sys, threading
        stop = threading.Event()
        threading.Thread(target=stop.wait, daemon=True).start()
        import checkpoint
        from checkpoint.formats import _h5sandbox
        kind = type(_h5sandbox._helper.popen).__name__ if _h5sandbox._helper.started.wait(60) else None
        values = checkpoint.read(sys.argv[1]).populations["p"]["v"].tolist()
        print(json.dumps({"kind": kind, "values": values}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script, str(small_file(tmp_path))], capture_output=True, text=True, timeout=150
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"kind": "Popen", "values": [0.0, 1.0, 2.0, 3.0, 4.0]}
