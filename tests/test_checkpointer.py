"""The Checkpointer: schedules, retention, commit protocol, lock, faults."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import checkpoint
from checkpoint import CheckpointError, CheckpointWarning, Checkpointer, Interrupted
from helpers import arrays_of, assert_same_arrays, izhikevich_network


def names(folder):
    return sorted(n for n in os.listdir(folder) if not n.startswith("."))


def advance(net, ckpt, steps):
    for _ in range(steps):
        net.step += 1
        net.populations["pop0"].v += 1.0
        ckpt.maybe_save()


@pytest.mark.parametrize("background", [False, True])
def test_every_steps_and_keep(tmp_path, background):
    net = izhikevich_network()
    with Checkpointer(tmp_path, net, every_steps=10, keep=3, background=background) as ckpt:
        assert ckpt.restore_latest() is None and ckpt.latest() is None
        advance(net, ckpt, 55)
    assert names(tmp_path) == [f"ckpt-{s:012d}.h5" for s in (30, 40, 50)]
    assert checkpoint.read(tmp_path / "ckpt-000000000050.h5").step == 50


def test_every_ms_and_permanent_keeps(tmp_path):
    net = izhikevich_network()  # dt = 0.5 ms
    with Checkpointer(tmp_path, net, every_ms=5.0, keep=1, keep_every_ms=20.0, background=False) as ckpt:
        advance(net, ckpt, 100)  # 50 ms
        assert ckpt.latest().endswith("ckpt-000000000100.h5")
    kept = [n for n in names(tmp_path) if "-keep" in n]
    assert kept == ["ckpt-000000000010-keep.h5", "ckpt-000000000040-keep.h5", "ckpt-000000000080-keep.h5"]
    assert "ckpt-000000000100.h5" in names(tmp_path) and len(names(tmp_path)) == 4


@pytest.mark.parametrize("background", [False, True])
def test_a_second_save_at_one_step_rewrites_that_checkpoint(tmp_path, background):
    net = izhikevich_network()  # dt = 0.5 ms
    with Checkpointer(tmp_path, net, every_ms=5.0, keep_every_ms=5.0, background=background) as ckpt:
        advance(net, ckpt, 10)  # saved at step 10, kept for ever
        net.populations["pop0"].v[:] = 7.0  # a change without a step
        ckpt.save()
    assert names(tmp_path) == ["ckpt-000000000010-keep.h5"]
    assert np.all(checkpoint.read(tmp_path / "ckpt-000000000010-keep.h5").populations["pop0"]["v"] == 7.0)


def test_every_seconds(tmp_path, monkeypatch):
    import checkpoint.manager as manager

    clock = [1000.0]
    monkeypatch.setattr(manager.time, "monotonic", lambda: clock[0])
    net = izhikevich_network()
    with Checkpointer(tmp_path, net, every_seconds=60, background=False) as ckpt:
        advance(net, ckpt, 5)
        assert ckpt.checkpoints() == []
        clock[0] += 61
        advance(net, ckpt, 1)
        assert len(ckpt.checkpoints()) == 1


def test_resume_restores_and_does_not_save_twice(tmp_path):
    net = izhikevich_network()
    with Checkpointer(tmp_path, net, every_steps=10, background=False) as ckpt:
        advance(net, ckpt, 20)
    expected = arrays_of(net)
    fresh = izhikevich_network()
    with Checkpointer(tmp_path, fresh, every_steps=10, background=False) as ckpt:
        report = ckpt.restore_latest()
        assert report.step == 20 and fresh.step == 20
        assert_same_arrays(expected, arrays_of(fresh))
        assert ckpt.maybe_save() is None


def test_damaged_newest_falls_back_with_a_warning(tmp_path):
    net = izhikevich_network()
    with Checkpointer(tmp_path, net, every_steps=10, background=False) as ckpt:
        advance(net, ckpt, 10)
        good = arrays_of(net)
        advance(net, ckpt, 10)
    newest = tmp_path / "ckpt-000000000020.h5"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 1
    newest.write_bytes(data)
    fresh = izhikevich_network()
    with Checkpointer(tmp_path, fresh, every_steps=10, background=False) as ckpt:
        with pytest.warns(CheckpointWarning, match="damaged"):
            assert ckpt.latest().endswith("ckpt-000000000010.h5")
        assert [os.path.basename(p) for p in ckpt.checkpoints()] == ["ckpt-000000000010.h5"]
        with pytest.warns(CheckpointWarning, match="previous"):
            report = ckpt.restore_latest()
        assert report.step == 10
    assert_same_arrays(good, arrays_of(fresh))


def test_leftover_temporaries_are_cleaned_and_foreign_files_kept(tmp_path):
    foreign = ["notes.txt", "ckpt-abc.h5", "ckpt-1.h5", ".hidden", ".ckpt-foo.tmp-1-zz", "data.h5"]
    for name in foreign:
        (tmp_path / name).write_text("mine")
    ours = tmp_path / ".ckpt-000000000010.h5.tmp-4242-0123abcd"
    ours.write_bytes(b"partial")
    net = izhikevich_network()
    with Checkpointer(tmp_path, net, every_steps=10, keep=1, background=False) as ckpt:
        assert not ours.exists()
        assert ckpt.latest() is None
        advance(net, ckpt, 30)
    for name in foreign:
        assert (tmp_path / name).read_text() == "mine"
    assert set(names(tmp_path)) == {n for n in foreign if not n.startswith(".")} | {"ckpt-000000000030.h5"}


def test_two_checkpointers_on_one_folder(tmp_path):
    net = izhikevich_network()
    first = Checkpointer(tmp_path, net, background=False)
    with pytest.raises(CheckpointError, match="in use"):
        Checkpointer(tmp_path, net, background=False)
    first.close()
    Checkpointer(tmp_path, net, background=False).close()


def test_lock_is_held_against_another_process(tmp_path):
    net = izhikevich_network()
    with Checkpointer(tmp_path, net, background=False):
        script = textwrap.dedent(f"""
            import sys; sys.path.insert(0, {os.path.dirname(__file__)!r})
            import checkpoint
            from helpers import izhikevich_network
            try:
                checkpoint.Checkpointer({str(tmp_path)!r}, izhikevich_network())
            except checkpoint.CheckpointError as exc:
                print("refused", exc)
        """)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "refused" in out.stdout and f"pid {os.getpid()}" in out.stdout


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Checkpointer(tmp_path / "absent", izhikevich_network(), create=False)
    Checkpointer(tmp_path / "a" / "b", izhikevich_network()).close()
    assert (tmp_path / "a" / "b").is_dir()


def test_read_only_folder():
    import pathlib
    import shutil
    import tempfile

    base = pathlib.Path(tempfile.mkdtemp(prefix="ckpt-ro-"))  # reachable by "nobody", unlike tmp_path
    base.chmod(0o755)
    folder = base / "ro"
    folder.mkdir()
    (folder / "keep.me").write_text("x")
    folder.chmod(0o555)
    script = textwrap.dedent(f"""
        import os, sys; sys.path.insert(0, {os.path.dirname(__file__)!r})
        import checkpoint
        from helpers import izhikevich_network
        if os.geteuid() == 0:
            os.setgid(65534); os.setuid(65534)    # root ignores permissions: become nobody
        try:
            checkpoint.Checkpointer({str(folder)!r}, izhikevich_network())
        except checkpoint.CheckpointError as exc:
            print("refused", exc)
        try:
            checkpoint.Checkpointer({str(folder / "sub")!r}, izhikevich_network())
        except checkpoint.CheckpointError as exc:
            print("refused", exc)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    folder.chmod(0o755)
    assert out.stdout.count("refused") == 2, out.stderr
    assert "not writable" in out.stdout and "cannot create" in out.stdout
    assert (folder / "keep.me").read_text() == "x"
    shutil.rmtree(base)


DISK_FULL = textwrap.dedent("""
    import resource, sys
    sys.path.insert(0, {tests!r})
    import numpy as np, checkpoint
    net = checkpoint.Network()
    pop = net.add_population("p", 1000, variables={{"v": 0.0}})
    ckpt = checkpoint.Checkpointer({folder!r}, net, every_steps=1, keep=5, background={background})
    for _ in range(2):
        net.step += 1
        ckpt.maybe_save()
    ckpt.wait()
    net.populations["big"] = checkpoint.Network().add_population("big", 300_000, variables={{"v": 1.0}})
    resource.setrlimit(resource.RLIMIT_FSIZE, (500_000, 500_000))
    try:
        net.step += 1
        ckpt.maybe_save()
        ckpt.close()
    except checkpoint.CheckpointError as exc:
        print("ERROR", exc)
""")


@pytest.mark.parametrize("background", [False, True])
def test_disk_full_keeps_earlier_checkpoints(tmp_path, background):
    script = DISK_FULL.format(tests=os.path.dirname(__file__), folder=str(tmp_path), background=background)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ERROR" in out.stdout and "ckpt-000000000003" in out.stdout
    assert names(tmp_path) == ["ckpt-000000000001.h5", "ckpt-000000000002.h5"]
    net = checkpoint.Network()
    net.add_population("p", 1000, variables={"v": 5.0})
    with Checkpointer(tmp_path, net) as ckpt:
        assert ckpt.restore_latest().step == 2


def test_background_failure_surfaces_at_the_next_call(tmp_path, monkeypatch):
    import checkpoint.manager as manager

    net = izhikevich_network()
    ckpt = Checkpointer(tmp_path, net, every_steps=1, background=True)

    def broken(*args, **kwargs):
        raise CheckpointError("simulated write failure")

    monkeypatch.setattr(manager, "write_state", broken)
    net.step += 1
    ckpt.maybe_save()
    with pytest.raises(CheckpointError, match="simulated"):
        ckpt.close()


def test_background_snapshot_is_not_affected_by_the_run(tmp_path):
    net = izhikevich_network()
    with Checkpointer(tmp_path, net, every_steps=1, background=True) as ckpt:
        net.step += 1
        expected = net.populations["pop0"].v.copy()
        path = ckpt.save()
        net.populations["pop0"].v[:] = 123.0  # while the write may still run
    assert np.array_equal(checkpoint.read(path).populations["pop0"]["v"], expected)


def test_signal_saves_then_raises_interrupted_and_handlers_are_restored(tmp_path):
    previous = signal.getsignal(signal.SIGUSR1)
    net = izhikevich_network()
    with Checkpointer(tmp_path, net, every_steps=1000, background=True) as ckpt:
        net.step += 3
        os.kill(os.getpid(), signal.SIGUSR1)
        with pytest.raises(Interrupted) as info:
            ckpt.maybe_save()
        assert info.value.signum == signal.SIGUSR1
        assert checkpoint.read(info.value.path).step == 3
    assert signal.getsignal(signal.SIGUSR1) == previous


@pytest.mark.parametrize("fmt", ["npz", "mat", "txt.gz"])
def test_any_format(tmp_path, fmt):
    net = izhikevich_network()
    with Checkpointer(tmp_path, net, every_steps=5, format=fmt, background=False) as ckpt:
        advance(net, ckpt, 10)
        assert ckpt.latest().endswith(f"ckpt-000000000010.{fmt}")


def test_commits_are_logged(tmp_path, caplog):
    net = izhikevich_network()
    with caplog.at_level("INFO", logger="checkpoint"):
        with Checkpointer(tmp_path, net, every_steps=5, background=False) as ckpt:
            advance(net, ckpt, 5)
    assert any("committed" in r.message and "step 5" in r.message for r in caplog.records)


_CTRL_C_LOOP = """
import os, sys, time
sys.path.insert(0, {tests!r})
import checkpoint
from helpers import izhikevich_network
net = izhikevich_network()
with checkpoint.Checkpointer({folder!r}, net, every_steps=100_000) as ckpt:
    try:
        while True:
            net.step += 1
            if net.step == 5:
                open({ready!r}, "w").close()
            time.sleep({pause})
            if {call_maybe_save}:
                ckpt.maybe_save()
    except checkpoint.Interrupted as stop:
        print("interrupted", net.step, os.path.basename(stop.path))
"""


def _ctrl_c_script(tmp_path, pause, call_maybe_save=True):
    import time

    script = _CTRL_C_LOOP.format(
        tests=os.path.dirname(__file__),
        folder=str(tmp_path / "ck"),
        ready=str(tmp_path / "ready"),
        pause=pause,
        call_maybe_save=call_maybe_save,
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 60
    while not (tmp_path / "ready").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.02)
    return process


def test_ctrl_c_checkpoints_and_stops_cleanly(tmp_path):
    process = _ctrl_c_script(tmp_path, pause=0.005)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    _, step, name = out.split()
    assert checkpoint.read(tmp_path / "ck" / name).step == int(step)
    assert "Traceback" not in err


def test_a_second_ctrl_c_stops_at_once(tmp_path):
    """The loop never reaches maybe_save: the first Ctrl-C waits for it,
    the second one stops the script now."""
    import time

    process = _ctrl_c_script(tmp_path, pause=30, call_maybe_save=False)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert process.poll() is None  # the first only asked for a checkpoint
    started = time.time()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    assert time.time() - started < 10 and "KeyboardInterrupt" in err


def test_a_read_only_checkpointer_lists_and_restores_beside_the_owner(tmp_path):
    from helpers import folder_digests

    net = izhikevich_network()
    with Checkpointer(tmp_path, net, every_steps=5, keep=2, background=False) as owner:
        advance(net, owner, 12)
        files = folder_digests(tmp_path)
        fresh = izhikevich_network(seed=3)
        with Checkpointer(tmp_path, fresh, read_only=True) as reader:
            assert [os.path.basename(p) for p in reader.checkpoints()] == [
                "ckpt-000000000005.h5",
                "ckpt-000000000010.h5",
            ]
            assert reader.restore_latest().step == 10 and fresh.step == 10
            for call in (reader.save, reader.maybe_save):
                with pytest.raises(CheckpointError, match="read-only"):
                    call()
        assert folder_digests(tmp_path) == files
        assert signal.getsignal(signal.SIGINT) == owner._on_signal
    with pytest.raises(CheckpointError, match="does not exist"):
        Checkpointer(tmp_path / "absent", net, read_only=True)
    assert not (tmp_path / "absent").exists()


def test_policies_passed_as_objects(tmp_path):
    from checkpoint.manager import Retention, SaveSchedule

    class EveryThird(SaveSchedule):
        def due(self, step, *args):
            return step % 3 == 0

    net = izhikevich_network()
    with Checkpointer(tmp_path, net, schedule=EveryThird(), retention=Retention(keep=2), background=False) as ckpt:
        advance(net, ckpt, 10)
    assert names(tmp_path) == ["ckpt-000000000006.h5", "ckpt-000000000009.h5"]
    with pytest.raises(ValueError, match="keep"):
        Checkpointer(tmp_path / "x", net, retention=Retention(keep=0))


def test_a_signal_handled_during_the_ranks_agreement_is_not_lost(tmp_path):
    """Python runs a signal handler once the MPI call it arrived in returns,
    that is after the ranks exchanged their signals: the flag it sets must
    be kept for the next call (it was overwritten, and under mpiexec every
    rank ran on: a hung Ctrl-C)."""
    net = izhikevich_network()

    class SignalDuringGather:
        rank, size = 0, 1

        def __init__(self):
            self.ckpt = None

        def allgather(self, value):
            if self.ckpt is not None and net.step == 3:
                self.ckpt._on_signal(signal.SIGTERM, None)  # what the deferred handler does
            return [value]

        def bcast(self, value, root=0):
            return value

    comm = SignalDuringGather()
    with Checkpointer(tmp_path, net, every_steps=1000, comm=comm, signals=()) as ckpt:
        comm.ckpt = ckpt
        with pytest.raises(Interrupted):
            for _ in range(10):
                net.step += 1
                ckpt.maybe_save()
    assert net.step == 4  # stopped at the next call, not never
