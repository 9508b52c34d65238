"""Hostile recordings: segments and listings forged as a stranger could
(every digest recomputed), read by checkpoint.recordings(), the CLI and a
resuming Checkpointer.  Each must be refused with a CheckpointError naming
the file, and change nothing in the folder."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import checkpoint
from checkpoint.errors import CheckpointError
from checkpoint.formats import read_state, write_state


def run_embedded(folder, chunks=9, every_ms=15.0, **options):
    from test_recordings import run_embedded as run  # one driver for both files

    return run(folder, chunks, every_ms, **options)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pristine") / "run"
    run_embedded(folder)
    return folder


@pytest.fixture
def folder(pristine, tmp_path):
    import shutil

    target = tmp_path / "run"
    shutil.copytree(pristine, target, symlinks=True)
    return target


def snapshot(folder, dots=True):
    out = {}
    for name in sorted(os.listdir(folder)):
        if not dots and name.startswith("."):
            continue
        path = os.path.join(folder, name)
        if os.path.islink(path):
            out[name] = ("link", os.readlink(path))
        elif os.path.isfile(path):
            with open(path, "rb") as f:
                out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def checkpoints(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith("ckpt-"))


def segments(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith("rec-"))


def edit_listings(folder, edit):
    """Rewrite every checkpoint with its meta 'recordings' edited (valid digests)."""
    for name in checkpoints(folder):
        state = read_state(folder / name)
        edit(state.meta["recordings"])
        write_state(folder / name, state)


def forge_segment(folder, number, edit):
    """Rewrite segment ``number`` with ``edit`` applied and every listing of it recomputed."""
    name = segments(folder)[number]
    state = read_state(folder / name)
    edit(state)
    write_state(folder / name, state)
    size, digest = os.path.getsize(folder / name), read_state(folder / name).digest
    return relisted(folder, name, size, digest)


def relisted(folder, name, size, digest):
    """Every checkpoint's listing of segment ``name`` given ``size`` and
    ``digest`` (a forger's recomputed ones); returns ``name``."""

    def relist(listing):
        for entry in listing["segments"]:
            if entry[0] == name:
                entry[1], entry[2] = size, digest

    edit_listings(folder, relist)
    return name


def refused(folder, name):
    before = snapshot(folder)
    with pytest.raises(CheckpointError) as caught:
        checkpoint.recordings(folder)
    assert name in str(caught.value), str(caught.value)
    with pytest.raises(CheckpointError):
        with checkpoint.recordings(folder, lazy=True) as rec:
            for recording in rec.values():
                for array in recording.values():
                    np.asarray(array)
    assert snapshot(folder) == before
    return caught.value


def _set(pop, var, value):
    return lambda s: s.populations[pop].arrays.__setitem__(var, value(s.populations[pop].arrays[var]))


def _add_index(pop, index):
    from checkpoint.state import ArrayInfo

    pop.arrays["index"], pop.info["index"] = index, ArrayInfo("parameter", "free", None)


SEGMENT_ATTACKS = {
    "NaN spike time": _set("spikes", "t", lambda a: np.where(np.arange(len(a)) == 0, np.nan, a)),
    "inf spike time": _set("spikes", "t", lambda a: np.where(np.arange(len(a)) == 0, np.inf, a)),
    "negative spike time": _set("spikes", "t", lambda a: a - 1000.0),
    "spike time after the interval": _set("spikes", "t", lambda a: a + 1000.0),
    "NaN sample time": _set("vm", "t", lambda a: np.where(np.arange(len(a)) == 1, np.nan, a)),
    "sample times reversed": _set("vm", "t", lambda a: a[::-1].copy()),
    "bool times": _set("spikes", "t", lambda a: np.ones(len(a), bool)),
    "float neuron indices": _set("spikes", "i", lambda a: a.astype(np.float64) + 0.5),
    "float recorded-neuron index": _set("vm", "index", lambda a: a.astype(np.float64)),
    "index dropped": lambda s: s.populations["vm"].arrays.pop("index"),
    "2-D index": _set("vm", "index", lambda a: a.reshape(1, -1)),
    "float index beside events": lambda s: _add_index(s.populations["spikes"], np.zeros((2, 2))),
    "ragged samples": _set("vm", "v", lambda a: a[:-1].copy()),
    "events turned samples": lambda s: s.meta["recordings"]["recorders"]["spikes"].__setitem__("kind", "samples"),
    "recorder of another kind name": lambda s: s.meta["recordings"]["recorders"].__setitem__("x", {"kind": "x"}),
    "interval reversed": lambda s: s.meta["recordings"].update(t_end=s.meta["recordings"]["t_start"] - 1.0),
    "bool t_start": lambda s: s.meta["recordings"].__setitem__("t_start", True),
    "number as string": lambda s: s.meta["recordings"].__setitem__("number", "1"),
    "recorders not a dict": lambda s: s.meta["recordings"].__setitem__("recorders", ["spikes", "vm"]),
}


@pytest.mark.parametrize("how", list(SEGMENT_ATTACKS))
def test_forged_segment_is_refused_naming_it(folder, how):
    name = forge_segment(folder, 1, SEGMENT_ATTACKS[how])
    refused(folder, name)


@pytest.mark.parametrize(
    "how",
    [
        "bool times",
        "float neuron indices",
        "float recorded-neuron index",
        "float index beside events",
        "sample times reversed",
    ],
)
def test_forged_in_every_segment_alike_is_refused(folder, how):
    """The same forgery in every segment: no segment disagrees with the one before."""
    names = [forge_segment(folder, number, SEGMENT_ATTACKS[how]) for number in range(len(segments(folder)))]
    error = refused(folder, names[0])
    assert names[0] in str(error)


def test_a_big_endian_or_complex_array_cannot_be_written_or_read(folder):
    # the format's dtype list has neither: the writer refuses them, and a reader
    # of a manifest that declares one refuses it (tests/test_hostile.py forges the bytes)
    name = segments(folder)[1]
    state = read_state(folder / name)
    state.populations["spikes"].arrays["t"] = state.populations["spikes"].arrays["t"].astype(np.complex128)
    with pytest.raises((CheckpointError, TypeError, ValueError)):
        write_state(folder / "x.h5", state)


def test_a_listing_that_ends_before_its_checkpoint_is_refused(folder):
    """The newest checkpoint's listing, truncated by one segment (digest recomputed):
    the recordings would silently end an interval early."""
    newest = checkpoints(folder)[-1]
    state = read_state(folder / newest)
    state.meta["recordings"]["segments"].pop()
    write_state(folder / newest, state)
    before = snapshot(folder)
    with pytest.raises(CheckpointError) as caught:
        checkpoint.recordings(folder)
    assert newest in str(caught.value)
    assert snapshot(folder) == before


def test_a_listing_of_another_run_is_refused(folder):
    run = segments(folder)[0].split("-")[1]
    other = "f" * 16 if run != "f" * 16 else "e" * 16
    for name in segments(folder):  # the other run's segments, all consistent
        os.rename(folder / name, folder / name.replace(run, other))
    for number, name in enumerate(segments(folder)):
        forge_segment_named = name

        def to_other(s):
            s.meta["recordings"]["run"] = other

        state = read_state(folder / forge_segment_named)
        to_other(state)
        write_state(folder / forge_segment_named, state)
    # the checkpoints still list run `run` by its old names: missing, refused
    before = snapshot(folder)
    with pytest.raises(CheckpointError):
        checkpoint.recordings(folder)
    assert snapshot(folder) == before


def test_listing_names_with_paths_and_hostile_values_are_refused(folder):
    newest = checkpoints(folder)[-1]
    for bad in (
        {"run": "../../etc"},
        {"t_start": None},
        {"segments": {"a": 1}},
        {"segments": [["rec-" + "0" * 16 + "-00000000.h5", -1, "x"]]},
        {"segments": [["/etc/passwd", 1, "x"]]},
        {"segments": [["rec-" + "0" * 16 + "-00000000.h5/../x", 1, "x"]]},
        {"segments": [["rec-" + "0" * 16 + "-00000000.h5", 2**70, "x"]]},
        {"segments": [[None, None, None]]},
    ):
        state = read_state(folder / newest)
        state.meta["recordings"].update(bad)
        write_state(folder / newest, state)
        before = snapshot(folder)
        with pytest.warns(checkpoint.CheckpointWarning):  # the newest is damaged: passed over
            rec = checkpoint.recordings(folder)
        assert rec.checkpoint != str(folder / newest)
        assert snapshot(folder) == before


def test_a_symlinked_segment_is_refused_by_the_reader_and_by_a_resume(folder, tmp_path):
    name = segments(folder)[1]
    outside = tmp_path / "outside.h5"
    os.rename(folder / name, outside)
    os.symlink(outside, folder / name)
    size = len(os.readlink(folder / name))

    def relist(listing):  # the link's own size, as lstat sees it
        for entry in listing["segments"]:
            if entry[0] == name:
                entry[1] = size

    edit_listings(folder, relist)
    refused(folder, name)
    target = snapshot(tmp_path)["outside.h5"]
    report = resume(folder)
    # not from a checkpoint that lists the link (those at 30 and 45 ms): from the one at 15
    assert report is not None and report.time == 15.0
    assert os.readlink(folder / name) == str(outside) and snapshot(tmp_path)["outside.h5"] == target


def resume(folder, sim=None):
    from recordings_sim import Embedded

    sim = sim or Embedded(2)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", checkpoint.CheckpointWarning)
        with checkpoint.Checkpointer(folder, sim.net, every_ms=15.0, recordings=True, background=False) as ckpt:
            return ckpt.restore_latest()


def test_a_users_file_with_a_segments_name_is_never_deleted(folder, tmp_path):
    """A copy of a genuine segment, renamed as this run's next ones, and a symlink so
    named: they read as segments of the run, but no ledger entry proves them ours."""
    run = segments(folder)[0].split("-")[1]
    import shutil

    shutil.copy(folder / segments(folder)[2], folder / f"rec-{run}-00000007.h5")
    shutil.copy(folder / segments(folder)[2], tmp_path / "elsewhere.h5")
    os.symlink(tmp_path / "elsewhere.h5", folder / f"rec-{run}-00000008.h5")
    before = snapshot(folder, dots=False)
    report = resume(folder)
    assert report.time == 45.0
    assert snapshot(folder, dots=False) == before


def test_a_truncated_listing_does_not_delete_committed_segments_on_resume(folder):
    """A forged newest checkpoint (valid digests) that lists fewer segments than
    the checkpoints before it commit: a resume from it would delete the segments
    they commit and go on from a gap that no reader can read past."""
    newest = checkpoints(folder)[-1]
    state = read_state(folder / newest)
    state.meta["recordings"]["segments"] = state.meta["recordings"]["segments"][:1]
    write_state(folder / newest, state)
    kept = segments(folder)[:2]
    before = {n: h for n, h in snapshot(folder, dots=False).items() if n in kept or n.startswith("ckpt-")}
    report = resume(folder)
    assert report.time == 30.0  # from the one before, which is sound
    after = snapshot(folder, dots=False)
    assert {n: after.get(n) for n in before} == before
    # segment 2, committed only by the passed-over checkpoint, is removed as
    # a resume from the one before removes it (docs/long-runs.rst)


def test_cli_names_the_file_and_exits_nonzero(folder):
    name = forge_segment(folder, 1, SEGMENT_ATTACKS["NaN spike time"])
    before = snapshot(folder)
    done = subprocess.run(
        [sys.executable, "-m", "checkpoint", "recordings", str(folder)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0 and name in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert snapshot(folder) == before


@pytest.mark.parametrize("recorder", [".", "..", "a/b", "", "x" * 300])
@pytest.mark.parametrize("suffix", [".h5", ".npz", ".mat", ".nwb"])
@pytest.mark.parametrize("victim", ["spikes", "vm"])
def test_export_of_hostile_recorder_names(folder, tmp_path, recorder, suffix, victim):
    """Recorder names come from the file: an export must either write them or
    refuse them with a CheckpointError, never crash with a parser's error."""
    if suffix == ".nwb":
        pytest.importorskip("pynwb")

    def rename(s):
        s.populations[recorder] = s.populations.pop(victim)
        s.populations[recorder].name = recorder
        s.meta["recordings"]["recorders"][recorder] = s.meta["recordings"]["recorders"].pop(victim)

    for number in range(len(segments(folder))):
        forge_segment(folder, number, rename)
    rec = checkpoint.recordings(folder)
    from checkpoint.recordings.export import export

    out = tmp_path / f"out{suffix}"
    try:
        export(rec, out)
    except CheckpointError as exc:
        assert str(out) in str(exc) or recorder in str(exc)
        assert not out.exists()
    assert [n for n in os.listdir(tmp_path) if n.startswith(".out")] == []


def test_names_are_matched_whole_and_in_ascii_digits():
    from checkpoint.recordings.segments import parse_segment_name, valid_run

    run = "0123456789abcdef"
    assert parse_segment_name(f"rec-{run}-00000001.h5") == (run, 1)
    assert parse_segment_name(f"rec-{run}-00000001.h5\n") is None  # "$" matches before a newline
    assert parse_segment_name(f"rec-{run}-\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0661.h5") is None
    assert not valid_run(run + "\n")


def test_a_listing_whose_run_ends_in_a_newline_is_passed_over(folder):
    newest = checkpoints(folder)[-1]
    state = read_state(folder / newest)
    state.meta["recordings"]["run"] += "\n"
    write_state(folder / newest, state)
    before = snapshot(folder)
    with pytest.warns(checkpoint.CheckpointWarning):
        assert checkpoint.recordings(folder).checkpoint != str(folder / newest)
    assert snapshot(folder) == before


def _forge_text(folder, number, edit_text):
    """Rewrite segment ``number``'s manifest text with ``edit_text`` (digests and listing recomputed)."""
    import json

    from forge import forge_manifest
    from checkpoint.hashing import digest_text

    name = segments(folder)[number]
    texts = []

    def change(manifest):
        texts.append(edit_text(json.dumps(manifest)))
        return texts[0]

    forge_manifest(folder / name, change)
    size, digest = os.path.getsize(folder / name), digest_text(texts[0])
    return relisted(folder, name, size, digest)


def _meta_value(key, raw):
    def edit(text):
        import re

        return re.sub(rf'"{key}": [^,}}]+', f'"{key}": {raw}', text, count=1)

    return edit


TEXT_ATTACKS = {
    "NaN t_end": _meta_value("t_end", "NaN"),
    "Infinity t_start": _meta_value("t_start", "Infinity"),
    "5000-digit number": _meta_value("number", "9" * 5000),
    "1e400 t_end": _meta_value("t_end", "1e400"),
    "10**400 t_end": _meta_value("t_end", "1" + "0" * 400),
    "deeply nested recorders": lambda text: text.replace(
        '"recorders": {', '"recorders": {"x": ' + "[" * 100000 + "]" * 100000 + ", ", 1
    ),
}


@pytest.mark.parametrize("how", list(TEXT_ATTACKS))
def test_forged_segment_manifest_text_is_refused(folder, how):
    name = _forge_text(folder, 1, TEXT_ATTACKS[how])
    refused(folder, name)


def test_a_resume_refuses_a_listing_that_names_another_runs_segment(folder):
    """The newest checkpoint lists, as segment 1, a copy named for another run:
    same size, and its last segment is sound; a reader refuses the listing,
    so a resume must too (or the run goes on and can never be read)."""
    import shutil

    newest = checkpoints(folder)[-1]
    name = segments(folder)[1]
    run = name.split("-")[1]
    other = name.replace(run, "f" * 16 if run != "f" * 16 else "e" * 16)
    shutil.copy(folder / name, folder / other)
    state = read_state(folder / newest)
    state.meta["recordings"]["segments"][1][0] = other
    write_state(folder / newest, state)
    with pytest.raises(CheckpointError, match=other):
        checkpoint.recordings(folder)
    report = resume(folder)
    assert report.time == 30.0  # the one before, whose listing is sound


def test_a_resume_passes_over_checkpoints_whose_segment_is_missing(folder):
    name = segments(folder)[1]
    os.remove(folder / name)
    first = {n: h for n, h in snapshot(folder, dots=False).items() if n.startswith("ckpt-") or n == segments(folder)[0]}
    report = resume(folder)
    assert report.time == 15.0  # those at 30 and 45 ms list the missing one
    after = snapshot(folder, dots=False)
    assert {n: after.get(n) for n in first} == first
