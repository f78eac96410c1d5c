"""The fault audit's cases: damaged files and an interrupted experiment.

Every damage to a run's files is found, named (a :class:`CorruptRun`), left
out of what is read, and redone by the next ``run_experiment`` to the very
arrays of an undamaged run; an interrupted experiment keeps every finished
run and its resume equals an uninterrupted experiment bit for bit.
Timing is controlled by callbacks and events, never by sleeping.
"""

import hashlib
import json
import logging
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avgreward import SoftmaxActorCritic, experiment
from avgreward.experiment import load_experiment, run_experiment
from avgreward.runner import pool, records

LOOP = "avgreward/LoopMDP-v0"
AGENT = SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
SEEDS, STEPS = 3, 500
RUNS = [records.run_name(0, s) for s in range(SEEDS)]


def _run(out, seeds=SEEDS, steps=STEPS, **kwargs):
    return run_experiment(out, LOOP, AGENT, seeds, steps, workers=kwargs.pop("workers", 1),
                          **kwargs)


def _arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _assert_same_arrays(got, want, name=""):
    assert got.keys() == want.keys(), name
    for key in want:
        assert got[key].dtype == want[key].dtype, (name, key)
        assert got[key].shape == want[key].shape, (name, key)
        assert got[key].tobytes() == want[key].tobytes(), (name, key)


def _assert_equals_reference(out, reference):
    """Every run of ``out`` is whole, ok, and holds the reference's arrays, bit for bit."""
    exp = load_experiment(out)
    assert not exp.corrupt and not exp.missing and not exp.failed
    assert exp.summary() == f"{SEEDS} of {SEEDS} runs done, 0 failed"
    for name in RUNS:
        _assert_same_arrays(_arrays(out / "runs" / f"{name}.npz"), reference[name], name)
    np.testing.assert_array_equal(exp.rewards(0),
                                  np.stack([reference[n]["rewards"] for n in RUNS]))


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory):
    """An undamaged experiment, copied by each test (running it once keeps the module fast)."""
    out = tmp_path_factory.mktemp("reference") / "exp"
    _run(out)
    return out


@pytest.fixture(scope="module")
def reference(reference_dir):
    return {name: _arrays(reference_dir / "runs" / f"{name}.npz") for name in RUNS}


@pytest.fixture
def out(tmp_path, reference_dir):
    copy = tmp_path / "exp"
    shutil.copytree(reference_dir, copy)
    return copy


def _set_record(path, **changes):
    record = json.loads(path.read_text())
    for key, value in changes.items():
        if value is _DELETE:
            del record[key]
        else:
            record[key] = value
    path.write_text(json.dumps(record))


_DELETE = object()


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _save_with_matching_checksum(npz, **arrays):
    """Replace the run's arrays with ``arrays`` and give its record their checksum."""
    with open(npz, "wb") as f:  # a file object: np.savez adds no suffix
        np.savez(f, **arrays)
    _set_record(npz.with_suffix(".json"), sha256=_sha256(npz))


# Each damage of run a000-s0001 (agent 0, seed 1), and the file it is named by.
def _truncated(npz):
    with open(npz, "r+b") as f:
        f.truncate(200)
    return npz


def _garbage(npz):
    npz.write_bytes(np.random.default_rng(5).bytes(npz.stat().st_size))
    return npz


def _object_array(npz):
    arrays = _arrays(npz)
    arrays["rewards"] = np.array([None, 1.0], dtype=object)
    _save_with_matching_checksum(npz, **arrays)
    return npz


def _arrays_missing(npz):
    arrays = _arrays(npz)
    del arrays["rbar"]
    _save_with_matching_checksum(npz, **arrays)
    return npz


def _rewards_too_short(npz):
    arrays = _arrays(npz)
    arrays["rewards"] = arrays["rewards"][:-1]
    _save_with_matching_checksum(npz, **arrays)
    return npz


def _plain_npy(npz):  # an .npy, not an .npz archive, with its checksum
    with open(npz, "wb") as f:
        np.save(f, np.zeros(3))
    _set_record(npz.with_suffix(".json"), sha256=_sha256(npz))
    return npz


def _directory_for_arrays(npz):
    npz.unlink()
    npz.mkdir()
    (npz / "keep.txt").write_text("someone's file")
    return npz


def _directory_for_record(npz):
    record = npz.with_suffix(".json")
    record.unlink()
    record.mkdir()
    (record / "keep.txt").write_text("someone's file")
    return record


def _without_checksum(npz):
    _set_record(npz.with_suffix(".json"), sha256=_DELETE)
    return npz.with_suffix(".json")


def _other_seeds_arrays_without_checksum(npz):
    """Issue 3: seed 2's arrays copied over seed 1's, the checksum removed from the record."""
    shutil.copyfile(npz.with_name("a000-s0002.npz"), npz)
    _set_record(npz.with_suffix(".json"), sha256=_DELETE)
    return npz.with_suffix(".json")


def _without_format(npz):
    _set_record(npz.with_suffix(".json"), format=_DELETE)
    return npz.with_suffix(".json")


def _format_not_a_number(npz):
    _set_record(npz.with_suffix(".json"), format="2")
    return npz.with_suffix(".json")


def _record_of_another_run(npz):
    record = npz.with_suffix(".json")
    shutil.copyfile(npz.with_name("a000-s0002.json"), record)
    shutil.copyfile(npz.with_name("a000-s0002.npz"), npz)
    return record


def _bad_json(npz):
    npz.with_suffix(".json").write_text("{\"agent_index\": 0, \"se")
    return npz.with_suffix(".json")


DAMAGES = {
    "truncated": (_truncated, "does not match the checksum"),
    "garbage bytes": (_garbage, "does not match the checksum"),
    "object array, matching checksum": (_object_array, "Object arrays cannot be loaded"),
    "arrays missing, matching checksum": (_arrays_missing, "lacks arrays ['rbar']"),
    "rewards too short, matching checksum": (_rewards_too_short, "reward bins"),
    "an .npy, matching checksum": (_plain_npy, "not an .npz archive"),
    "directory for the arrays": (_directory_for_arrays, "is a directory"),
    "directory for the record": (_directory_for_record, "is a directory"),
    "record without sha256": (_without_checksum, "lacks the sha256"),
    "other seed's arrays, record without sha256": (_other_seeds_arrays_without_checksum,
                                                   "lacks the sha256"),
    "record without format": (_without_format, "lacks its format"),
    "record format not a number": (_format_not_a_number, "format '2'"),
    "record of another run": (_record_of_another_run, "holds the record of run a000-s0002"),
    "record with bad JSON": (_bad_json, "unreadable record"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_run_is_named_left_out_and_redone_bit_for_bit(out, reference, damage,
                                                                caplog):
    damage_fn, reason = DAMAGES[damage]
    bad = damage_fn(out / "runs" / "a000-s0001.npz")

    with caplog.at_level(logging.WARNING, logger="avgreward.experiment"):
        exp = load_experiment(out)
    assert [(c.name, c.path) for c in exp.corrupt] == [("a000-s0001", bad)]
    assert reason in exp.corrupt[0].reason
    assert str(bad) in caplog.text
    # Left out of every read: only the whole runs are there.
    assert exp.missing == [(0, 1)] and exp.finished_seeds(0) == [0, 2]
    assert exp.summary().startswith(f"{SEEDS - 1} of {SEEDS} runs done")
    assert "a000-s0001" in exp.summary() and "corrupt" in exp.summary()
    np.testing.assert_array_equal(exp.rewards(0), np.stack(
        [reference[n]["rewards"] for n in ("a000-s0000", "a000-s0002")]))
    assert exp.to_frame("runs")["seed"].tolist() == [0, 2]
    with pytest.raises(KeyError):
        exp.result(0, 1)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="avgreward.experiment"):
        repaired = _run(out)
    assert str(bad) in caplog.text and "running it again" in caplog.text
    assert not repaired.corrupt
    _assert_equals_reference(out, reference)
    assert not list(out.rglob("*.tmp"))
    if damage.startswith("directory"):
        # Moved aside, never deleted: what it held is kept.
        aside = bad.with_name(bad.name + ".corrupt")
        assert (aside / "keep.txt").read_text() == "someone's file"
        assert aside.name in caplog.text
    # And the next run finds nothing to do.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="avgreward.experiment"):
        _run(out)
    assert not caplog.text


def test_a_second_directory_in_the_same_place_is_moved_aside_too(out, reference):
    npz = out / "runs" / "a000-s0001.npz"
    for _ in range(2):
        _directory_for_arrays(npz)
        _run(out)
        _assert_equals_reference(out, reference)
    assert sorted(p.name for p in npz.parent.glob("a000-s0001.npz.corrupt*")) == [
        "a000-s0001.npz.corrupt", "a000-s0001.npz.corrupt-2"]


def test_a_directory_for_arrays_whose_record_is_gone_is_moved_aside(out, reference):
    npz = out / "runs" / "a000-s0001.npz"
    _directory_for_arrays(npz)
    npz.with_suffix(".json").unlink()
    assert load_experiment(out).missing == [(0, 1)]
    _run(out)
    _assert_equals_reference(out, reference)
    assert (npz.with_name("a000-s0001.npz.corrupt") / "keep.txt").exists()


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_run_is_not_finished(out, damage):
    """What a dead worker's run is judged by (``finished_record``) agrees with reading."""
    damage_fn, _ = DAMAGES[damage]
    damage_fn(out / "runs" / "a000-s0001.npz")
    assert records.finished_record(out / "runs", "a000-s0001") is None
    assert records.finished_record(out / "runs", "a000-s0000") is not None


def test_a_record_of_a_newer_format_is_refused(out):
    path = out / "runs" / "a000-s0001.json"
    _set_record(path, format=records.FORMAT + 1)
    before = {p.name: p.read_bytes() for p in (out / "runs").iterdir()}
    message = (rf"{path} is of format {records.FORMAT + 1}, newer than this avgreward "
               rf"reads \({records.FORMAT}\): upgrade avgreward")
    with pytest.raises(ValueError, match=message):
        load_experiment(out)
    with pytest.raises(ValueError, match=message):
        _run(out)
    assert {p.name: p.read_bytes() for p in (out / "runs").iterdir()} == before


def test_a_record_of_format_1_without_checksum_is_checked_by_reading(out, reference):
    for name in RUNS:
        _set_record(out / "runs" / f"{name}.json", format=1, sha256=_DELETE)
    assert not load_experiment(out).corrupt
    _object_array(out / "runs" / "a000-s0001.npz")
    _set_record(out / "runs" / "a000-s0001.json", sha256=_DELETE)
    exp = load_experiment(out)
    assert [c.name for c in exp.corrupt] == ["a000-s0001"]
    assert "Object arrays cannot be loaded" in exp.corrupt[0].reason
    _run(out)
    _assert_equals_reference(out, reference)


def test_experiment_json_garbage_is_named_and_nothing_is_touched(out, reference):
    """Its seeds are known only to it: refused (named), left as it is, never rewritten.

    Once it is restored, the experiment is whole again.
    """
    path = out / "experiment.json"
    original = path.read_bytes()
    path.write_bytes(b"\x00\xffnot json")
    runs_before = {p.name: p.read_bytes() for p in (out / "runs").iterdir()}
    for action in (lambda: load_experiment(out), lambda: _run(out)):
        with pytest.raises(ValueError, match="cannot read") as info:
            action()
        assert str(path) in str(info.value)
    assert path.read_bytes() == b"\x00\xffnot json"
    assert {p.name: p.read_bytes() for p in (out / "runs").iterdir()} == runs_before
    path.write_bytes(original)
    _run(out)
    _assert_equals_reference(out, reference)


_HOLD_LOCK_AND_DIE = """
import os, signal, sys
from pathlib import Path
from avgreward.runner.directory import DirectoryLock
assert DirectoryLock(Path(sys.argv[1])).acquire()
Path(sys.argv[1], ".lock").write_text("pid %d" % os.getpid())
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_stale_lock_of_a_killed_process_does_not_block(out, reference):
    (out / "runs" / "a000-s0001.npz").unlink()
    (out / "runs" / "a000-s0001.json").unlink()
    killed = subprocess.run([sys.executable, "-c", _HOLD_LOCK_AND_DIE, str(out)],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (out / ".lock").read_text().startswith("pid ")  # left behind
    exp = load_experiment(out)
    assert exp.missing == [(0, 1)] and not exp.corrupt
    _run(out)
    _assert_equals_reference(out, reference)


# ---------------------------------------------------------------------------
# An interrupted experiment keeps its finished runs and resumes to the same numbers

KILL_SEEDS, KILL_STEPS = 4, 3_000  # chunks of 1,000 steps: a run can stop between two


@pytest.fixture(scope="module")
def kill_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("kill-reference") / "exp"
    _run(out, KILL_SEEDS, KILL_STEPS)
    return {p.stem: _arrays(p) for p in sorted((out / "runs").glob("*.npz"))}


def _interrupt_in_process(monkeypatch):
    """Ctrl-C in the middle of seed 2's run (after its first chunk), in this process."""
    real_train = pool.train

    def train(*args, callback=None, **kwargs):
        def interrupt(done, total):
            callback(done, total)
            if args[3] == 2:
                raise KeyboardInterrupt

        return real_train(*args, callback=None if callback is None else interrupt, **kwargs)

    monkeypatch.setattr(pool, "train", train)


def _interrupt_the_pool(monkeypatch):
    """Ctrl-C in the parent of two workers as soon as it hears of the second finished run."""
    real_run_done = pool.ProgressBars.run_done
    heard = []

    def run_done(bar, record):
        real_run_done(bar, record)
        heard.append(record["seed"])
        if len(heard) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(pool.ProgressBars, "run_done", run_done)
    return heard


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "two-workers"])
def test_an_interrupted_experiment_keeps_its_runs_and_resumes_bit_for_bit(
        tmp_path, monkeypatch, kill_reference, workers):
    out = tmp_path / "exp"
    if workers == 1:
        _interrupt_in_process(monkeypatch)
    else:
        heard = _interrupt_the_pool(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        _run(out, KILL_SEEDS, KILL_STEPS, workers=workers)
    monkeypatch.undo()

    runs = out / "runs"
    assert not list(out.rglob("*.tmp"))
    assert {p.stem for p in runs.glob("*.npz")} == {p.stem for p in runs.glob("*.json")}
    exp = load_experiment(out)
    assert not exp.corrupt and not exp.failed
    finished = {p.name: p.read_bytes() for p in sorted(runs.glob("*.*"))}
    if workers == 1:
        assert [r.seed for r in exp.runs] == [0, 1]
    else:
        # Every run the parent heard of is kept; a worker may have finished more.
        assert set(heard) <= {r.seed for r in exp.runs} and len(exp.runs) <= KILL_SEEDS
    for r in exp.runs:
        _assert_same_arrays(_arrays(r.path), kill_reference[r.path.stem], r.path.stem)

    resumed = _run(out, KILL_SEEDS, KILL_STEPS)
    assert not resumed.corrupt and not resumed.failed and not resumed.missing
    # The finished runs were not run again: their files are untouched.
    assert {k: (runs / k).read_bytes() for k in finished} == finished
    assert sorted(p.stem for p in runs.glob("*.npz")) == sorted(kill_reference)
    for name, want in kill_reference.items():
        _assert_same_arrays(_arrays(runs / f"{name}.npz"), want, name)


def test_no_worker_is_left_behind_by_an_interrupted_pool(tmp_path, monkeypatch):
    _interrupt_the_pool(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "exp", KILL_SEEDS, KILL_STEPS, workers=2)
    import multiprocessing

    assert not [p for p in multiprocessing.active_children() if p.name == "avgreward-worker"]
    lock = experiment.DirectoryLock(tmp_path / "exp")
    assert lock.acquire()  # the interrupted experiment released its lock
    lock.release()


@pytest.mark.parametrize("damage", ["object array, matching checksum",
                                    "directory for the arrays", "record without sha256"])
def test_the_same_command_repairs_a_damaged_run(tmp_path, capsys, reference, damage):
    """Issues 2-4 through the command line: named in one line, redone by the same command."""
    from avgreward.cli import main

    out = tmp_path / "a"
    command = ["run", "loop", "--steps", str(STEPS), "--seeds", str(SEEDS), "--workers", "1",
               "--set", "alpha_w=0.1", "--set", "alpha_theta=0.1", "--set", "alpha_rbar=0.01",
               "--out", str(out), "--quiet"]
    assert main(command) == 0
    assert load_experiment(out).agents == [AGENT]
    bad = DAMAGES[damage][0](out / "runs" / "a000-s0001.npz")
    capsys.readouterr()

    assert main(["plot", str(out), "--out", str(tmp_path / "before.png")]) == 0
    [line] = capsys.readouterr().err.strip().splitlines()
    assert str(bad) in line

    assert main(command) == 0
    [line] = capsys.readouterr().err.strip().splitlines()
    assert str(bad) in line and "running it again" in line
    _assert_equals_reference(out, reference)
    assert main(command) == 0
    assert capsys.readouterr().err == ""
