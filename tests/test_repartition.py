"""Restarts on another number of MPI ranks and another partition of the
neurons, under a real ``mpiexec``: every N -> M for N, M in 1..4, every
partition kind, every format; the whole network read, converted and loaded
into one process; shard sets that do not cover the network refused on every
rank with nothing changed."""

import os
import subprocess
import sys

import numpy as np
import pytest

import checkpoint
from checkpoint import CheckpointError, StructureMismatchError
from checkpoint.cli import main as cli
from checkpoint.distributed import shard_paths
import partitioned
from test_distributed import MPIEXEC, mpirun

RANKS = (1, 2, 3, 4)
STEPS = 20


def kind_for(n):
    return partitioned.PARTITIONS[n % len(partitioned.PARTITIONS)]


def assert_holds_its_part(records, kind, steps=STEPS):
    """Each rank holds exactly its neurons of the saved network, the synapses
    onto them, bit for bit, at the saved step."""
    for rank, record in enumerate(records):
        assert "error" not in record, record
        assert record["state"] == partitioned.expected(steps, kind, len(records), rank), f"rank {rank}"


@pytest.mark.parametrize("saved_on", RANKS)
def test_a_checkpoint_of_n_ranks_loads_on_every_m(tmp_path, saved_on):
    saved = mpirun(tmp_path, "psave", saved_on, partition=kind_for(saved_on), steps=STEPS)
    assert all("error" not in r for r in saved), saved
    for ranks in RANKS:
        kind = kind_for(saved_on + ranks)
        loaded = mpirun(tmp_path, "pload", ranks, partition=kind, tag=f"-{ranks}")
        assert_holds_its_part(loaded, kind)
        exact = ranks == saved_on and all(
            np.array_equal(
                partitioned.partition(kind, size, ranks, rank),
                partitioned.partition(kind_for(saved_on), size, ranks, rank),
            )
            for size in partitioned.SIZES.values()
            for rank in range(ranks)
        )
        for record in loaded:
            assert record["report"]["step"] == STEPS and not record["report"]["skipped"]
            # a rank's generator follows its neurons only when they are those it saved
            assert record["report"]["reseeded"] == ([] if exact else ["rng.network"])


@pytest.mark.parametrize("suffix", ["h5", "npz", "mat", "txt.gz"])
def test_every_format_moves_to_another_partition(tmp_path, suffix):
    mpirun(tmp_path, "psave", 3, partition="irregular", file=f"run.{suffix}")
    loaded = mpirun(tmp_path, "pload", 2, partition="round-robin", file=f"run.{suffix}")
    assert_holds_its_part(loaded, "round-robin")


def test_a_reseeded_generator_is_the_same_on_every_rerun(tmp_path):
    mpirun(tmp_path, "psave", 2, partition="blocks")
    first = mpirun(tmp_path, "pload", 3, partition="blocks", tag="-a")
    again = mpirun(tmp_path, "pload", 3, partition="blocks", tag="-b")
    assert [r["draw"] for r in first] == [r["draw"] for r in again]
    assert len({tuple(r["draw"]) for r in first}) == 3  # one stream per rank


def whole_after(steps, seed=1):
    net = partitioned.whole_network(seed)
    partitioned.advance(net, steps)
    return net


def test_read_gives_the_whole_network_and_one_process_loads_it(tmp_path):
    mpirun(tmp_path, "psave", 3, partition="round-robin")
    state = checkpoint.read(tmp_path / "run.h5")
    reference = whole_after(STEPS)
    assert state.meta["assembled_from"] == {"ranks": 3} and state.step == STEPS
    for name, pop in reference.populations.items():
        assert state.populations[name].size == pop.size and state.populations[name].ids is None
        for var in pop.variables + pop.parameters:
            np.testing.assert_array_equal(state.populations[name][var], pop[var])
    for name, proj in reference.projections.items():
        assert (state.projections[name].to_scipy("w") != proj.to_scipy("w")).nnz == 0
        np.testing.assert_array_equal(state.projections[name]["x"], proj.x)
    # the whole run into one process, without comm: a model built without ids
    net = partitioned.whole_network(999)
    with pytest.warns(checkpoint.CheckpointWarning, match="reseeded"):
        report = checkpoint.load(tmp_path / "run.h5", net)
    assert report.step == STEPS
    assert partitioned.snapshot(net) == partitioned.snapshot(reference)


def test_convert_to_one_file_and_back_to_shards(tmp_path):
    mpirun(tmp_path, "psave", 4, partition="irregular")
    assert cli(["convert", str(tmp_path / "run.h5"), str(tmp_path / "one.npz")]) == 0
    assert partitioned.snapshot(_loaded(tmp_path / "one.npz")) == partitioned.snapshot(whole_after(STEPS))
    assert cli(["convert", str(tmp_path / "one.npz"), str(tmp_path / "back.h5"), "--ranks", "3"]) == 0
    assert len(shard_paths(tmp_path / "back.h5")) == 3
    loaded = mpirun(tmp_path, "pload", 2, partition="blocks", file="back.h5")
    assert_holds_its_part(loaded, "blocks")
    assert cli(["diff", str(tmp_path / "run.h5"), str(tmp_path / "one.npz")]) == 0  # the same network
    assert cli(["verify", str(tmp_path / "back.h5")]) == 0


def test_inspect_and_plot_see_every_shard(tmp_path, capsys):
    mpirun(tmp_path, "psave", 3, partition="round-robin")
    assert cli(["inspect", str(tmp_path / "run.h5")]) == 0
    out = capsys.readouterr().out
    assert "(assembled from 3 shards)" in out and "population 'exc': 37 neurons" in out
    assert "projection 'ee'" in out
    assert cli(["plot", str(tmp_path / "run.h5"), "-o", str(tmp_path / "run.png")]) == 0
    assert (tmp_path / "run.png").stat().st_size > 10_000


def _loaded(path):
    net = partitioned.whole_network(999)
    checkpoint.load(path, net)
    return net


def test_diff_sees_a_difference_on_one_rank_through_any_partition(tmp_path, capsys):
    mpirun(tmp_path, "psave", 2, partition="blocks")
    whole = checkpoint.read(tmp_path / "run.h5")
    whole.populations["exc"]["v"][-1] += 1.0  # a neuron rank 1 holds
    checkpoint.save(tmp_path / "edited.h5", whole)
    assert cli(["convert", str(tmp_path / "edited.h5"), str(tmp_path / "edited3.h5"), "--ranks", "3"]) == 0
    capsys.readouterr()
    assert cli(["diff", str(tmp_path / "run.h5"), str(tmp_path / "edited3.h5")]) == 1
    assert "exc.v" in capsys.readouterr().out


def test_a_checkpointer_run_resumes_on_more_ranks_exactly(tmp_path):
    first = mpirun(tmp_path, "ploop", 2, partition="round-robin", steps=10)
    assert first[0]["resumed_at"] is None
    resumed = mpirun(tmp_path, "ploop", 3, partition="irregular", steps=STEPS, tag="")
    assert all(r["resumed_at"] == 10 for r in resumed)
    assert_holds_its_part(resumed, "irregular")


@pytest.mark.parametrize(
    "broken, message", [("overlapping", "another shard holds too"), ("incomplete", "are in no shard")]
)
def test_shards_that_do_not_cover_the_network_once_are_refused_on_every_rank(tmp_path, broken, message):
    mpirun(tmp_path, "psave", 2, partition=broken)
    loaded = mpirun(tmp_path, "pload", 3, partition="blocks")
    for record in loaded:
        assert "error" in record and message in record["error"] or "rank" in record["error"], record
        assert record["unchanged"]
    assert any(message in r["error"] for r in loaded)
    with pytest.raises(StructureMismatchError, match=message):
        checkpoint.read(tmp_path / "run.h5")


def test_a_model_of_another_global_size_is_refused(tmp_path):
    mpirun(tmp_path, "psave", 2, partition="blocks")
    net = checkpoint.Network()
    net.add_population("exc", 10, variables={"v": 0.0}, ids=np.arange(10), global_size=40)
    before = np.array(net.populations["exc"].v)
    with pytest.raises(CheckpointError, match="population of 37"):
        checkpoint.load(tmp_path / "run.h5", net)
    np.testing.assert_array_equal(net.populations["exc"].v, before)


def test_the_example_resumed_on_three_ranks_ends_as_one_rank_does(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "..", "examples", "mpi_izhikevich.py")

    def run(ranks, steps, folder, partition="blocks"):
        done = subprocess.run(
            [
                MPIEXEC,
                "-n",
                str(ranks),
                sys.executable,
                script,
                "--steps",
                str(steps),
                "--folder",
                str(tmp_path / folder),
                "--partition",
                partition,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    alone = run(1, 160, "one")
    assert "fresh start" in run(2, 100, "split", "round-robin")
    resumed = run(3, 160, "split")
    assert "resumed at step 100 on 3 ranks" in resumed
    digest = alone.split("state digest ")[1].split(";")[0]
    assert f"done at step 160 on 3 ranks; state digest {digest};" in resumed


def test_a_shard_whose_rows_are_not_its_post_neurons_is_refused():
    # a forged shard (digests recomputed would pass): 3 post neurons, 2 rows of synapses
    from checkpoint.repartition import gather
    from checkpoint.state import ArrayInfo, NetworkState, PopulationState, ProjectionState

    pop = PopulationState("exc", 3, None, {"v": np.zeros(3)}, {"v": ArrayInfo()}, np.array([0, 1, 2]), 6)
    proj = ProjectionState(
        "ee",
        "exc",
        "exc",
        (3, 6),
        np.array([0, 1, 2]),
        np.array([4, 5]),
        arrays={"w": np.ones(2)},
        info={"w": ArrayInfo(scope="synapse")},
    )
    shard = NetworkState(populations={"exc": pop}, projections={"ee": proj})
    with pytest.raises(StructureMismatchError, match="2 rows of synapses for 3 post-synaptic neurons"):
        gather(lambda: [("shard 0", shard)], {"exc": (np.arange(3), 6)}, "run.h5", {})


def test_shards_with_different_global_values_are_refused():
    # a global parameter is one value: two ranks saying two values cannot both be kept
    from checkpoint.repartition import gather
    from checkpoint.state import ArrayInfo, NetworkState, PopulationState

    def shard(ids, a):
        arrays = {"a": np.array(a), "v": np.zeros(len(ids))}
        info = {"a": ArrayInfo("parameter", "global"), "v": ArrayInfo()}
        return NetworkState(populations={"exc": PopulationState("exc", len(ids), None, arrays, info, np.array(ids), 4)})

    shards = [("shard 0", shard([0, 1], 0.02)), ("shard 1", shard([2, 3], 0.05))]
    with pytest.raises(StructureMismatchError, match="another value than another shard"):
        gather(lambda: shards, None, "run.h5", {})


def test_a_conversion_to_shards_that_fails_leaves_no_shard_behind(tmp_path, capsys):
    """``convert --ranks`` writes every shard, then the manifest; when the
    manifest cannot be written (here its path is a folder), the shards it
    wrote go too, and what was there stays."""
    checkpoint.save(tmp_path / "one.npz", partitioned.whole_network(1))
    (tmp_path / "back.h5").mkdir()
    assert cli(["convert", str(tmp_path / "one.npz"), str(tmp_path / "back.h5"), "--ranks", "3"]) != 0
    assert "back.h5" in capsys.readouterr().err
    assert os.listdir(tmp_path / "back.h5.shards") == [] and os.listdir(tmp_path / "back.h5") == []
