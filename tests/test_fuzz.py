"""Fuzzing every format with digests and checksums recomputed (see fuzz.py).

``make test`` runs a bounded, derandomised number of cases per seed and
mutation; ``make fuzz`` runs many more with a random seed and prints what
the cases ended in.
"""

import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import checkpoint
import forge
import fuzz
from checkpoint.formats import write_state

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
RANDOM = "FUZZ_SEED" in os.environ
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(scope="module")
def worker():
    w = fuzz.Worker()
    yield w
    w.close()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    return {name: fuzz.make_seed(str(folder), name) for name in fuzz.SEEDS}


@pytest.fixture(scope="module", autouse=True)
def summary():
    yield
    if fuzz.OUTCOMES:
        print("\nfuzz outcomes: " + json.dumps(dict(sorted(fuzz.OUTCOMES.items())), indent=1))


def _case_path(tmp_path_factory, seed_path):
    folder = tmp_path_factory.mktemp("case", numbered=True)
    return os.path.join(folder, os.path.basename(seed_path).replace("seed-", "case-"))


def check(worker, path, kind, same_as=None):
    """Parse ``path`` in the worker; with ``same_as`` (a seed's path), a
    file that reads must read as that seed did: damage that the digests
    still cover may never load as other data."""
    outcome, detail = worker.parse(path)
    if outcome == "ok" and same_as is not None and detail != fuzz.fingerprint(checkpoint.read(same_as)):
        outcome, detail = "finding: loads as other data", ""
    fuzz.OUTCOMES[f"{kind}: {outcome}"] += 1
    if outcome.startswith("finding"):
        keep = os.path.join(os.path.dirname(os.path.dirname(path)), "findings")
        os.makedirs(keep, exist_ok=True)
        shutil.copy(path, keep)
        pytest.fail(f"{outcome} on {path} (kept in {keep}):\n{detail}")
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)


@pytest.mark.parametrize("seed", sorted(fuzz.SEEDS))
@FUZZ
@given(data=st.data())
def test_byte_damage_with_outer_digests_recomputed(worker, seeds, tmp_path_factory, seed, data):
    path = _case_path(tmp_path_factory, seeds[seed])
    with open(seeds[seed], "rb") as f:
        mutated = fuzz.mutate_bytes(f.read(), data.draw, st)
    with open(path, "wb") as f:
        f.write(mutated)
    forge.restamp(path)
    check(worker, path, "bytes", same_as=seeds[seed])


@pytest.mark.parametrize("seed", sorted(fuzz.SEEDS))
@FUZZ
@given(data=st.data())
def test_manifest_values_with_every_digest_recomputed(worker, seeds, tmp_path_factory, seed, data):
    path = _case_path(tmp_path_factory, seeds[seed])
    shutil.copy(seeds[seed], path)
    manifest = json.loads(forge.read_manifest_text(path))
    text = json.dumps(fuzz.mutate_manifest(manifest, data.draw, st))  # NaN and Infinity written as such
    forge.write_manifest_text(path, text)
    check(worker, path, "manifest")


@pytest.mark.parametrize("seed", ["h5", "npz", "mat", "txt", "h5-ordered"])
@FUZZ
@given(data=st.data())
def test_forged_values_written_by_the_library_itself(worker, seeds, tmp_path_factory, seed, data):
    path = _case_path(tmp_path_factory, seeds[seed])
    state = fuzz.mutate_state(checkpoint.read(seeds[seed]), data.draw, st)
    try:
        write_state(path, state)
    except checkpoint.CheckpointError:
        return  # the writer refused it: nothing to read
    check(worker, path, "state")


@FUZZ
@given(data=st.data())
def test_a_shards_manifest_values_with_every_digest_recomputed(worker, tmp_path_factory, data):
    # a shard is read lazily and gathered into the whole network: its
    # global_size, ids, indptr and variables meet the repartition, and the
    # top manifest records the forged shard (size, digest, summary)
    seed = fuzz.make_sharded_seed(str(tmp_path_factory.getbasetemp()))
    case = os.path.join(tmp_path_factory.mktemp("case", numbered=True), "sharded")
    shutil.copytree(os.path.dirname(seed), case)
    path = os.path.join(case, "run.h5")
    rank = data.draw(st.integers(0, 1))
    forge.forge_shard(path, rank, lambda m: json.dumps(fuzz.mutate_manifest(m, data.draw, st)))
    check(worker, path, "shard manifest")
