"""Sharded checkpoints of MPI runs, under a real ``mpiexec`` (MPICH from
PyPI, installed by `make test` with mpi4py)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import checkpoint
from checkpoint import CheckpointError, StructureMismatchError
from checkpoint.distributed import shard_paths, verify_shards
from checkpoint.formats import read_state
from helpers import SingleRank, arrays_of, assert_same_arrays, file_digest, izhikevich_network

HERE = os.path.dirname(os.path.abspath(__file__))
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")


def mpirun(folder, mode, ranks=2, **options):
    """Run tests/mpi_sim.py on ``ranks`` processes; return each rank's record."""
    assert MPIEXEC, "mpiexec not found: `make test` installs it (pip install mpi4py mpich)"
    extra = [f"{key}={value}" for key, value in options.items()]
    done = subprocess.run(
        [MPIEXEC, "-n", str(ranks), sys.executable, os.path.join(HERE, "mpi_sim.py"), mode, str(folder), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    tag = options.get("tag", "")
    return [json.loads((folder / f"{mode}{tag}-{rank}.json").read_text()) for rank in range(ranks)]


def tree_digests(folder):
    return {
        os.path.relpath(os.path.join(root, name), folder): file_digest(os.path.join(root, name))
        for root, _, names in os.walk(folder)
        for name in names
    }


def test_every_rank_restores_its_own_part_in_a_new_run(tmp_path):
    saved = mpirun(tmp_path, "save")
    assert all("error" not in r for r in saved), saved
    shards = shard_paths(tmp_path / "run.h5")
    assert [os.path.basename(p).split(".", 1)[1] for p in shards] == ["rank-0-of-2.h5", "rank-1-of-2.h5"]
    assert checkpoint.read(shards[1]).populations["pop0"].size == 40  # an ordinary checkpoint
    manifest = read_state(tmp_path / "run.h5")
    assert manifest.meta["shards"]["ranks"] == 2 and manifest.step == 20 and not manifest.populations
    assert manifest.meta["user"] == {"mode": "save"}
    # each rank's populations are its own (no global ids): there is no one network to read
    with pytest.raises(StructureMismatchError, match="without global neuron ids"):
        checkpoint.read(tmp_path / "run.h5")

    loaded = mpirun(tmp_path, "load")
    for before, after in zip(saved, loaded):
        assert "error" not in after, after
        assert after["state"] == before["state"]  # bit for bit, per rank
        assert after["draw"] == before["draw"]  # each rank's generator continues
        assert after["report"]["time"] == pytest.approx(10.0)


def test_a_new_checkpoint_replaces_the_old_shards_after_its_commit(tmp_path):
    mpirun(tmp_path, "save")
    first = set(shard_paths(tmp_path / "run.h5"))
    again = mpirun(tmp_path, "save-again")
    second = set(shard_paths(tmp_path / "run.h5"))
    assert not first & second
    assert sorted(os.listdir(tmp_path / "run.h5.shards")) == sorted(os.path.basename(p) for p in second)
    loaded = mpirun(tmp_path, "load")
    assert [r["state"] for r in loaded] == [r["state"] for r in again]


def test_a_failed_save_on_one_rank_fails_on_all_and_keeps_the_old_checkpoint(tmp_path):
    mpirun(tmp_path, "save")
    files = tree_digests(tmp_path)
    results = mpirun(tmp_path, "save-fail")
    assert "UnsupportedObjectError" in results[1]["error"]
    assert "rank 1 could not save its shard" in results[0]["error"] and "run.h5" in results[0]["error"]
    after = tree_digests(tmp_path)
    checkpoint_files = [k for k in files if k.startswith("run.h5")]
    assert len(checkpoint_files) == 3  # the manifest and two shards, as they were
    assert {k: after.get(k) for k in after if k.startswith("run.h5")} == {k: files[k] for k in checkpoint_files}


def test_a_damaged_shard_fails_the_load_on_every_rank_and_changes_nothing(tmp_path):
    mpirun(tmp_path, "save")
    shard = shard_paths(tmp_path / "run.h5")[1]
    data = bytearray(open(shard, "rb").read())
    data[len(data) // 2] ^= 0x20
    open(shard, "wb").write(bytes(data))
    results = mpirun(tmp_path, "load")
    assert "CorruptCheckpointError" in results[1]["error"]
    assert "rank 1 could not read and check its shard" in results[0]["error"]
    assert all(r["unchanged"] for r in results)


def test_a_failure_while_applying_on_one_rank_is_undone_on_all(tmp_path):
    mpirun(tmp_path, "save")
    results = mpirun(tmp_path, "load-fail-apply")
    assert "injected failure on rank 1" in results[1]["error"]
    assert "rank 1 could not apply its shard" in results[0]["error"]
    assert all(r["unchanged"] for r in results), results


def test_populations_without_global_ids_are_refused_on_another_number_of_ranks(tmp_path):
    # each rank's population is its own (no ids=): nothing says where its neurons go on 3 ranks
    mpirun(tmp_path, "save")
    results = mpirun(tmp_path, "load", ranks=3)
    assert all(
        "StructureMismatchError" in r["error"]
        and "without global neuron ids" in r["error"]
        and "loads only on 2 ranks" in r["error"]
        for r in results
    )
    assert all(r["unchanged"] for r in results)


def test_rank_local_populations_without_comm_are_a_clear_error(tmp_path):
    mpirun(tmp_path, "save")
    net = izhikevich_network()
    before = arrays_of(net)
    with pytest.raises(StructureMismatchError, match="loads only on 2 ranks") as info:
        checkpoint.load(tmp_path / "run.h5", net)
    assert "run.h5" in str(info.value) and "pop0" in str(info.value)
    assert_same_arrays(before, arrays_of(net))


def test_a_forged_shard_name_is_refused(tmp_path):
    mpirun(tmp_path, "save")
    state = read_state(tmp_path / "run.h5")
    state.meta["shards"]["files"][1] = "../../etc/passwd"
    from checkpoint.formats import write_state

    write_state(tmp_path / "forged.h5", state)
    with pytest.raises(CheckpointError, match="bad shard name"):
        shard_paths(tmp_path / "forged.h5")
    with pytest.raises(CheckpointError, match="bad shard name"):
        checkpoint.load(tmp_path / "forged.h5", izhikevich_network(), comm=SingleRank())


def test_checkpointer_loop_stops_every_rank_on_one_ranks_signal_and_resumes_exactly(tmp_path):
    (tmp_path / "straight").mkdir()
    straight = mpirun(tmp_path / "straight", "loop")
    assert all(r["resumed_at"] is None and "interrupted" not in r for r in straight), straight
    assert straight[0]["kept"] == ["ckpt-000000000050.h5", "ckpt-000000000060.h5"]  # keep=2

    stopped = mpirun(tmp_path, "loop-signal")
    assert [r["interrupted"] for r in stopped] == [{"step": 25, "path": "ckpt-000000000025.h5"}] * 2
    resumed = mpirun(tmp_path, "loop")
    assert [r["resumed_at"] for r in resumed] == [25, 25]
    assert [r["state"] for r in resumed] == [r["state"] for r in straight]  # bit for bit, every rank
    assert sorted(os.listdir(tmp_path / "ck")) == [
        ".checkpoint.ledger.json",
        ".checkpoint.lock",
        "ckpt-000000000050.h5",
        "ckpt-000000000050.h5.shards",
        "ckpt-000000000060.h5",
        "ckpt-000000000060.h5.shards",
    ]


def test_one_rank_in_process_round_trip_and_a_missing_folder(tmp_path):
    """The same calls with a one-rank communicator, without mpiexec."""
    net = izhikevich_network(seed=1)
    checkpoint.save(tmp_path / "one.npz", net, comm=SingleRank())
    assert [os.path.basename(p).split(".", 1)[1] for p in shard_paths(tmp_path / "one.npz")] == ["rank-0-of-1.npz"]
    other = izhikevich_network(seed=2)
    report = checkpoint.load(tmp_path / "one.npz", other, comm=SingleRank())
    assert "pop0.v" in report.restored
    assert (other.populations["pop0"].v == net.populations["pop0"].v).all()
    with pytest.raises(CheckpointError, match="folder does not exist"):
        checkpoint.save(tmp_path / "missing" / "run.h5", net, comm=SingleRank())
    assert not (tmp_path / "missing").exists()


def test_ctrl_c_under_mpiexec_stops_every_rank_at_one_step_with_a_checkpoint(tmp_path):
    """A Ctrl-C at the terminal reaches mpiexec, which forwards SIGINT to
    every rank: all of them checkpoint at the same step and exit cleanly."""
    import signal
    import time

    process = subprocess.Popen(
        [MPIEXEC, "-n", "2", sys.executable, os.path.join(HERE, "mpi_sim.py"), "loop-ctrl-c", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while not (tmp_path / "ready").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output[-3000:]
    results = [json.loads((tmp_path / f"loop-ctrl-c-{rank}.json").read_text()) for rank in range(2)]
    assert all("error" not in r for r in results), results
    steps = {r["interrupted"]["step"] for r in results}
    assert len(steps) == 1, results
    step = steps.pop()
    manifest = tmp_path / "ck" / f"ckpt-{step:012d}.h5"
    assert read_state(manifest).step == step
    for rank, shard in enumerate(shard_paths(manifest)):
        assert checkpoint.read(shard).step == step


# ------------------------------------------------ shards bound to their manifest


def _swap(a, b):
    data_a, data_b = open(a, "rb").read(), open(b, "rb").read()
    open(a, "wb").write(data_b)
    open(b, "wb").write(data_a)


def _refused_on_every_rank(tmp_path, match):
    with pytest.raises(CheckpointError, match=match):
        verify_shards(tmp_path / "run.h5")
    loaded = mpirun(tmp_path, "load")
    assert all("error" in r and r["unchanged"] for r in loaded), loaded
    return loaded


def test_swapped_shards_are_refused_on_every_rank(tmp_path):
    mpirun(tmp_path, "save")
    rank0, rank1 = shard_paths(tmp_path / "run.h5")
    _swap(rank0, rank1)
    _refused_on_every_rank(tmp_path, "shard")


def test_a_shard_of_another_checkpoint_is_refused(tmp_path):
    (tmp_path / "other").mkdir()
    mpirun(tmp_path / "other", "save-again")  # other values, other token, another step
    mpirun(tmp_path, "save")
    mine, theirs = shard_paths(tmp_path / "run.h5")[1], shard_paths(tmp_path / "other" / "run.h5")[1]
    shutil.copy(theirs, mine)
    _refused_on_every_rank(tmp_path, "shard")


def test_a_manifest_listing_another_checkpoints_shards_is_refused(tmp_path):
    (tmp_path / "other").mkdir()
    mpirun(tmp_path / "other", "save-again")
    mpirun(tmp_path, "save")
    other_shards = shard_paths(tmp_path / "other" / "run.h5")
    for shard in other_shards:  # their files beside ours, under their names
        shutil.copy(shard, tmp_path / "run.h5.shards")
    state = read_state(tmp_path / "run.h5")
    state.meta["shards"]["files"] = [f"run.h5.shards/{os.path.basename(p)}" for p in other_shards]
    from checkpoint.formats import write_state

    write_state(tmp_path / "run.h5", state)
    _refused_on_every_rank(tmp_path, "bad shard name")


def test_a_shard_folder_that_is_a_symlink_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    mpirun(tmp_path, "save")
    shutil.move(str(tmp_path / "run.h5.shards"), str(tmp_path / "elsewhere" / "shards"))
    os.symlink(tmp_path / "elsewhere" / "shards", tmp_path / "run.h5.shards")
    _refused_on_every_rank(tmp_path, "symlink")


def test_diff_compares_every_shard(tmp_path):
    """Two sharded checkpoints that differ on rank 1 only are not "equal"
    (diff compared the manifests, which hold no arrays)."""
    from test_cli import cli

    for name, mode in (("a", "save"), ("b", "save"), ("c", "save-rank-1-differs")):
        (tmp_path / name).mkdir()
        mpirun(tmp_path / name, mode)
    same = cli("diff", tmp_path / "a" / "run.h5", tmp_path / "b" / "run.h5")
    assert same.returncode == 0 and same.stdout.strip() == "equal", same.stdout + same.stderr
    other = cli("diff", tmp_path / "a" / "run.h5", tmp_path / "c" / "run.h5")
    assert other.returncode == 1 and "rank 1: pop0.v: max abs diff 1" in other.stdout, other.stdout
    assert "rank 0" not in other.stdout
