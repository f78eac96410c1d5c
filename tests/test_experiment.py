"""The experiment runner: determinism across workers, storage, resume, failures, interruption."""

import functools
import hashlib
import json
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import avgreward
from avgreward import SoftmaxActorCritic, experiment
from avgreward.experiment import load_experiment, run_experiment
from avgreward.runner import pool

PENDULUM = "avgreward/PendulumSwingUp-v0"
LOOP = "avgreward/LoopMDP-v0"
LOOP_AGENT = SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
# Diverges within a few hundred steps of the loop MDP.
DIVERGING = SoftmaxActorCritic(alpha_w=256.0, alpha_theta=16.0, alpha_rbar=1.0)


def _arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _digests(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(directory, "runs").glob("*.*"))}


def _assert_no_partial_files(directory):
    runs = Path(directory, "runs")
    assert not list(Path(directory).rglob("*.tmp"))
    assert ({p.stem for p in runs.glob("*.npz")} == {p.stem for p in runs.glob("*.json")})


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    agents = [SoftmaxActorCritic.pendulum_reference(),
              SoftmaxActorCritic.pendulum_reference(alpha_theta=2.0**-4)]
    one = run_experiment(tmp_path / "one", PENDULUM, agents, 3, 2_000, workers=1, bin_size=1)
    two = run_experiment(tmp_path / "two", PENDULUM, agents, 3, 2_000, workers=2, bin_size=1)
    assert len(one.runs) == len(two.runs) == 6
    assert all(r.status == "ok" for r in one.runs + two.runs)
    for a, b in zip(one.runs, two.runs):
        assert (a.agent_index, a.seed) == (b.agent_index, b.seed)
        arrays_a, arrays_b = _arrays(a.path), _arrays(b.path)
        assert arrays_a.keys() == arrays_b.keys() >= {"rewards", "rbar", "w", "theta"}
        for name in arrays_a:
            assert arrays_a[name].dtype == arrays_b[name].dtype
            assert arrays_a[name].tobytes() == arrays_b[name].tobytes(), name
    # And they are the runs train() gives: settings and seed determine everything.
    direct = avgreward.train(PENDULUM, agents[1], 2_000, seed=2)
    stored = two.result(1, 2)
    assert np.array_equal(stored.rewards, direct.rewards)
    assert stored.rewards.dtype == np.float32
    assert np.array_equal(stored.weights["theta"], direct.weights["theta"])
    assert np.array_equal(stored.rbar, direct.rbar)
    assert stored.final_rbar == direct.final_rbar
    assert np.allclose(stored.policy([0.3, -1.0]), direct.policy([0.3, -1.0]), rtol=0, atol=0)
    # The runs differ between seeds and settings (the comparison above means something).
    assert not np.array_equal(one.rewards(0)[0], one.rewards(0)[1])
    assert not np.array_equal(one.rewards(0), one.rewards(1))


def test_rewards_are_stored_as_bin_means(tmp_path):
    steps, bin_size = 2_000, 30  # 66 full bins and a last bin of 20 steps
    exp = run_experiment(tmp_path / "e", LOOP, LOOP_AGENT, [4, 7], steps, workers=1,
                         bin_size=bin_size)
    assert exp.seeds == [4, 7] and exp.bin_size == bin_size
    assert exp.bin_steps.tolist() == [*range(30, 1981, 30), 2000]
    rewards = exp.rewards(0)
    assert rewards.shape == (2, 67)
    for row, seed in zip(rewards, exp.finished_seeds(0)):
        per_step = avgreward.train(LOOP, LOOP_AGENT, steps, seed=seed).rewards.astype(np.float64)
        expected = [per_step[k:k + bin_size].mean() for k in range(0, steps, bin_size)]
        assert np.allclose(row, expected, rtol=0, atol=1e-12)
    result = exp.result(0, 7)
    assert result.info["bin_size"] == bin_size and result.rewards.shape == (67,)
    assert np.array_equal(result.rewards, rewards[1])  # read alone, and with the whole run
    # A file damaged after the experiment was loaded is named, not read as data.
    path = exp.run(0, 4).path
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=f"cannot read {path}.*running the experiment again"):
        exp.rewards(0)
    # The default keeps at most 10,000 bins per run.
    default = run_experiment(tmp_path / "d", LOOP, LOOP_AGENT, 1, 25_000, workers=1)
    assert default.bin_size == 3 and default.rewards(0).shape == (1, 8_334)


def test_final_performance_is_the_mean_over_the_last_steps(tmp_path):
    exp = run_experiment(tmp_path / "e", LOOP, LOOP_AGENT, 2, 2_000, workers=1, bin_size=100)
    perf = exp.final_performance(0, 0.1)
    for value, seed in zip(perf, exp.seeds):
        run = avgreward.train(LOOP, LOOP_AGENT, 2_000, seed=seed)
        assert value == pytest.approx(run.mean_reward(1_800), abs=1e-12)
    assert exp.final_performance(0, 1.0) == pytest.approx(
        [avgreward.train(LOOP, LOOP_AGENT, 2_000, seed=s).mean_reward() for s in exp.seeds],
        abs=1e-12)


def test_experiment_files_record_settings_and_versions(tmp_path):
    exp = run_experiment(tmp_path / "e", LOOP, [LOOP_AGENT, LOOP_AGENT.replace(tau=0.5)], 1,
                         500, workers=1)
    config = json.loads((exp.path / "experiment.json").read_text())
    assert config["env"] == LOOP and config["steps"] == 500 and config["seeds"] == [0]
    assert config["agents"][1] == LOOP_AGENT.replace(tau=0.5).to_dict()
    assert {"numpy", "numba", "gymnasium", "matplotlib", "python", "avgreward"} <= set(
        config["versions"])
    record = json.loads((exp.path / "runs" / "a001-s0000.json").read_text())
    assert record["status"] == "ok" and record["seed"] == 0 and record["agent"]["tau"] == 0.5
    assert record["wall_time"] > 0 and record["versions"]["numpy"] == np.__version__
    assert exp.label(0) == "tau=2^0" and exp.label(1) == "tau=2^-1"  # one formatting
    assert exp.varying() == ["tau"]
    # Read once a process, handed out as a copy: a caller's change stays its own.
    from avgreward.files import package_versions

    versions = package_versions()
    versions["numpy"] = "changed"
    assert package_versions()["numpy"] == np.__version__


@pytest.mark.slow
def test_resume_runs_only_what_is_missing_and_refuses_other_settings(tmp_path, caplog):
    out = tmp_path / "exp"
    run_experiment(out, LOOP, LOOP_AGENT, 2, 1_000, workers=1)
    before = _digests(out)
    # Adding seeds is not a settings change: only the new seeds run.
    exp = run_experiment(out, LOOP, LOOP_AGENT, 3, 1_000, workers=1)
    after = _digests(out)
    assert exp.seeds == [0, 1, 2] and len(exp.runs) == 3
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == {"a000-s0002.npz", "a000-s0002.json"}
    # Asking for fewer seeds keeps (and reports) all of them.
    assert run_experiment(out, LOOP, LOOP_AGENT, 1, 1_000, workers=1).seeds == [0, 1, 2]
    assert _digests(out) == after

    with pytest.raises(ValueError, match=r"steps 1000 -> 2000.*new=True"):
        run_experiment(out, LOOP, LOOP_AGENT, 3, 2_000, workers=1)
    with pytest.raises(ValueError, match=r"agent 0: alpha_theta 0.1 -> 0.2"):
        run_experiment(out, LOOP, LOOP_AGENT.replace(alpha_theta=0.2), 3, 1_000, workers=1)
    with pytest.raises(ValueError, match=r"agents: 1 -> 2 settings"):
        run_experiment(out, LOOP, [LOOP_AGENT, LOOP_AGENT.replace(tau=2.0)], 3, 1_000)
    with pytest.raises(ValueError, match=r"bin_size 1 -> 10"):
        run_experiment(out, LOOP, LOOP_AGENT, 3, 1_000, bin_size=10)
    with pytest.raises(ValueError, match=r"env 'avgreward/LoopMDP-v0' -> "):
        run_experiment(out, "avgreward/AliasedGridworld-v0", LOOP_AGENT, 3, 1_000)
    assert _digests(out) == after  # refused: nothing touched

    with caplog.at_level(logging.WARNING, logger="avgreward.experiment"):
        fresh = run_experiment(out, LOOP, LOOP_AGENT, 1, 2_000, workers=1, new=True)
    assert fresh.path == tmp_path / "exp-2" and fresh.steps == 2_000
    assert "exp-2" in caplog.text
    again = run_experiment(out, LOOP, LOOP_AGENT, 1, 1_000, workers=1, new=True)
    assert again.path == tmp_path / "exp-3"
    assert _digests(out) == after


def test_a_diverging_run_is_recorded_as_failed_and_the_others_go_on(tmp_path):
    out = tmp_path / "exp"
    exp = run_experiment(out, LOOP, [LOOP_AGENT, DIVERGING], 2, 2_000, workers=2)
    assert [(r.agent_index, r.status) for r in exp.runs] == [
        (0, "ok"), (0, "ok"), (1, "failed"), (1, "failed")]
    failed = exp.failed[0]
    assert failed.failure == "divergence" and "diverged at step" in failed.error
    assert 0 < failed.steps_done < 2_000
    assert "2 failed (2 diverged)" in exp.summary()
    assert exp.rewards(1).shape == (0, 2_000) and exp.final_performance(1).size == 0
    partial = exp.result(1, 0)  # its arrays up to the divergence are kept
    assert partial.steps == failed.steps_done and partial.info["status"] == "failed"
    assert partial.rewards.shape == (failed.steps_done,)

    # Divergence is determined by settings and seed: a rerun keeps it.
    before = _digests(out)
    run_experiment(out, LOOP, [LOOP_AGENT, DIVERGING], 2, 2_000, workers=1)
    assert _digests(out) == before
    # A run that failed for another reason (here: made up) is run again.
    record_path = out / "runs" / "a000-s0001.json"
    record = json.loads(record_path.read_text())
    record.update(status="failed", failure="error", error="MemoryError: made up")
    record_path.write_text(json.dumps(record))
    again = run_experiment(out, LOOP, [LOOP_AGENT, DIVERGING], 2, 2_000, workers=1)
    assert again.run(0, 1).status == "ok"
    assert json.loads(record_path.read_text())["status"] == "ok"  # rewritten


def test_progress_bars_only_when_asked_or_in_a_terminal(tmp_path, capsys):
    run_experiment(tmp_path / "a", LOOP, LOOP_AGENT, 2, 500, workers=1)
    assert capsys.readouterr().err == ""  # stderr is not a terminal under pytest
    run_experiment(tmp_path / "b", LOOP, LOOP_AGENT, 2, 500, workers=1, progress=True)
    err = capsys.readouterr().err
    assert "runs" in err and "steps" in err


@pytest.mark.parametrize("bad, message", [
    (dict(env="nope"), "neither one of this package's environments nor a gymnasium id"),
    (dict(agents=[]), "agents is empty"),
    (dict(agents=[LOOP_AGENT, LOOP_AGENT]), "agents 0 and 1 are the same"),
    (dict(agents=avgreward.GaussianActorCritic.pendulum_default()), "use SoftmaxActorCritic"),
    (dict(seeds=[1, 1]), "repeated"),
    (dict(seeds=0), "seeds must be"),
    (dict(steps=0), "steps must be"),
    (dict(bin_size=5_000), "bin_size"),
    (dict(workers=0), "workers must be"),
])
def test_invalid_arguments_raise_value_error(tmp_path, bad, message):
    kwargs = dict(env=LOOP, agents=LOOP_AGENT, seeds=1, steps=1_000)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=message):
        run_experiment(tmp_path / "x", kwargs.pop("env"), kwargs.pop("agents"),
                       kwargs.pop("seeds"), kwargs.pop("steps"), **kwargs)
    assert not (tmp_path / "x").exists()


def test_load_experiment_of_a_plain_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not an experiment directory"):
        load_experiment(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="non-empty directory"):
        run_experiment(tmp_path, LOOP, LOOP_AGENT, 1, 100)


# A script with no `if __name__ == "__main__"` guard: the runner must not
# re-run it in its workers.
_SCRIPT = """
import sys
import time
from avgreward import SoftmaxActorCritic
from avgreward.experiment import run_experiment
from avgreward.runner import pool

# Runs of seed >= 2 stall after their first chunk (still answering "stop" between
# chunks, as a long run does), so the signal always comes with exactly two runs
# finished, however fast or slow the machine.
real_train = pool.train

def train(*args, callback=None, **kwargs):
    if callback is None:  # the parent loading the kernels
        return real_train(*args, **kwargs)

    def stall(done, total):
        callback(done, total)
        while args[3] >= 2:
            time.sleep(0.01)
            callback(done, total)
    return real_train(*args, callback=stall, **kwargs)

pool.train = train
run_experiment(sys.argv[1], "avgreward/PendulumSwingUp-v0",
               SoftmaxActorCritic.pendulum_reference(), {seeds}, {steps}, workers={workers})
"""


@pytest.mark.parametrize("sig, workers", [(signal.SIGTERM, 2), (signal.SIGINT, 2),
                                          (signal.SIGINT, 1)],
                         ids=["SIGTERM-2-workers", "SIGINT-2-workers", "SIGINT-in-process"])
@pytest.mark.slow
def test_an_interrupted_experiment_leaves_no_partial_file_and_resumes(tmp_path, sig, workers):
    """Termination and Ctrl-C (SIGINT) of the worker pool, and Ctrl-C of a 1-worker run."""
    seeds, steps = 8, 30_000
    out = tmp_path / "exp"
    script = tmp_path / "experiment_script.py"
    script.write_text(_SCRIPT.format(seeds=seeds, steps=steps, workers=workers))
    # A shell's background job starts with Ctrl-C ignored, and Python then never
    # raises KeyboardInterrupt: give the script the default disposition.
    process = subprocess.Popen([sys.executable, str(script), str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("runs/*.json"))) < 2:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no run finished in 120 s"
            time.sleep(0.02)
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr
    _assert_no_partial_files(out)
    finished = _digests(out)
    n_finished = len(finished) // 2
    assert n_finished == 2
    for npz in out.glob("runs/*.npz"):
        assert _arrays(npz)["rewards"].shape == (10_000,)
    # No worker outlives the interrupted experiment and writes later.
    time.sleep(0.3)
    assert _digests(out) == finished

    exp = run_experiment(out, PENDULUM, SoftmaxActorCritic.pendulum_reference(), seeds, steps,
                         workers=1)
    assert len(exp.runs) == seeds and all(r.status == "ok" for r in exp.runs)
    after = _digests(out)
    assert {k: after[k] for k in finished} == finished
    _assert_no_partial_files(out)


_REAL_WORKER_MAIN = pool._worker_main


def _dying_worker(conn, parent_pid, *, moment, seed):
    """A worker process that kills itself (SIGKILL) at ``moment`` of the run with ``seed``.

    The test decides the moment, not the scheduler: "run" after the run's
    first chunk; "write" when its arrays are written to their temporary file
    but not yet renamed; "after" when both its files are written, before it
    tells the parent; "disk full" makes that write fail with ENOSPC instead.
    """
    import errno

    from avgreward.runner import pool as ex

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    target = f"a000-s{seed:04d}"
    if moment == "run":
        real_train = ex.train

        def train(*args, callback=None, **kwargs):
            if args[3] != seed:
                return real_train(*args, callback=callback, **kwargs)

            def first_chunk_then_die(done, total):
                callback(done, total)
                die()

            return real_train(*args, callback=first_chunk_then_die, **kwargs)

        ex.train = train
    elif moment in ("write", "disk full"):
        real_replace = os.replace

        def replace(src, dst):
            if Path(dst).name == f"{target}.npz":
                assert Path(src).is_file()  # the temporary file is there, whole
                if moment == "write":
                    die()
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
            return real_replace(src, dst)

        os.replace = replace
    else:
        real_run_one = ex._run_one

        def run_one(task, on_chunk=None):
            record = real_run_one(task, on_chunk)
            if task["seed"] == seed:
                die()
            return record

        ex._run_one = run_one
    _REAL_WORKER_MAIN(conn, parent_pid)


def _with_dying_worker(monkeypatch, method, moment, seed=2):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} on this platform")
    monkeypatch.setattr(pool, "_start_method", lambda: method)
    # A module-level function (a partial of one) pickles by name: spawned workers
    # import this test module to run it.
    monkeypatch.setattr(pool, "_worker_main",
                        functools.partial(_dying_worker, moment=moment, seed=seed))


@pytest.mark.parametrize("moment", ["run", "write"])
@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.slow
def test_a_killed_worker_fails_its_run_only_and_the_run_is_retried(tmp_path, monkeypatch,
                                                                   method, moment):
    _with_dying_worker(monkeypatch, method, moment)
    out = tmp_path / "exp"
    agent = SoftmaxActorCritic.pendulum_reference()
    exp = run_experiment(out, PENDULUM, agent, 6, 20_000, workers=2)
    assert len(exp.runs) == 6 and [(r.agent_index, r.seed) for r in exp.failed] == [(0, 2)]
    failed = exp.failed[0]
    assert failed.failure == "error" and "worker process died (exit code -9)" in failed.error
    assert exp.summary() == "6 of 6 runs done, 1 failed (0 diverged)"
    _assert_no_partial_files(out)
    monkeypatch.undo()
    again = run_experiment(out, PENDULUM, agent, 6, 20_000, workers=1)
    assert not again.failed and len(again.runs) == 6
    alone = avgreward.train(PENDULUM, agent, 20_000, seed=2)
    np.testing.assert_array_equal(again.result(0, 2).weights["theta"], alone.weights["theta"])


def test_a_worker_killed_after_writing_its_run_keeps_the_run(tmp_path, monkeypatch):
    _with_dying_worker(monkeypatch, "fork", "after")
    exp = run_experiment(tmp_path / "exp", LOOP, LOOP_AGENT, 4, 1_000, workers=2)
    assert len(exp.runs) == 4 and not exp.failed
    _assert_no_partial_files(exp.path)


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.slow
def test_a_write_error_in_a_worker_stops_the_experiment_and_is_reported(
        tmp_path, monkeypatch, method):
    _with_dying_worker(monkeypatch, method, "disk full", seed=1)
    out = tmp_path / "exp"
    with pytest.raises(OSError, match=r"No space left on device.*run a000-s0001") as info:
        run_experiment(out, LOOP, LOOP_AGENT, 6, 1_000, workers=2)
    assert info.value.errno == 28 and "a000-s0001.npz" in info.value.filename
    _assert_no_partial_files(out)
    assert not (out / "runs" / "a000-s0001.json").exists()
    monkeypatch.undo()
    exp = run_experiment(out, LOOP, LOOP_AGENT, 6, 1_000, workers=1)
    assert len(exp.runs) == 6 and not exp.failed


def _full_disk_at(monkeypatch, name):
    """Renames onto ``name`` fail as on a full disk (in this process)."""
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name == name:
            raise OSError(28, "No space left on device", str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def test_a_write_error_in_process_is_reported(tmp_path, monkeypatch):
    _full_disk_at(monkeypatch, "a000-s0001.npz")
    with pytest.raises(OSError, match=r"No space left on device.*run a000-s0001"):
        run_experiment(tmp_path / "exp", LOOP, LOOP_AGENT, 3, 1_000, workers=1)
    _assert_no_partial_files(tmp_path / "exp")
    assert [r.seed for r in load_experiment(tmp_path / "exp").runs] == [0]


@pytest.fixture
def small_disk(tmp_path):
    """A 256 kB tmpfs (root only): a real full disk."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_full_disk_is_reported_with_the_real_error(small_disk, workers):
    out = small_disk / "exp"
    with pytest.raises(OSError, match="No space left on device"):
        run_experiment(out, PENDULUM, SoftmaxActorCritic.pendulum_reference(), 12, 2_000,
                       workers=workers, bin_size=1)
    _assert_no_partial_files(out)
    exp = load_experiment(out)  # what was written is whole
    assert 0 < len(exp.runs) < 12 and not exp.failed and not exp.corrupt


def test_workers_are_forked_only_where_that_is_safe(monkeypatch):
    import threading

    if sys.platform.startswith("linux"):
        # In a fresh interpreter: this one may have other threads left by earlier tests
        # (a Dask client's event loop lives on after the client closes).
        fresh = subprocess.run([sys.executable, "-c", "from avgreward.runner import pool; "
                                "print(pool._start_method())"], capture_output=True, text=True,
                               check=True, timeout=120)
        assert fresh.stdout.strip() == "fork"
        stop = threading.Event()
        other = threading.Thread(target=stop.wait)
        other.start()
        try:
            # Another Python thread could hold a lock the child would wait on.
            assert pool._start_method() == "spawn"
        finally:
            stop.set()
            other.join()
        from numba.np.ufunc import parallel

        monkeypatch.setattr(parallel, "_is_initialized", True)
        assert pool._start_method() == "spawn"  # numba's thread pool is running
    else:
        assert pool._start_method() == "spawn"


@pytest.mark.parametrize("method", ["fork", "spawn"])
@pytest.mark.slow
def test_forked_and_spawned_workers_give_the_same_results(tmp_path, monkeypatch, method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} on this platform")
    monkeypatch.setattr(pool, "_start_method", lambda: method)
    agent = SoftmaxActorCritic.pendulum_reference()
    exp = run_experiment(tmp_path / method, PENDULUM, agent, 3, 20_000, workers=2, bin_size=1)
    for seed in range(3):
        alone = avgreward.train(PENDULUM, agent, 20_000, seed=seed)
        np.testing.assert_array_equal(exp.result(0, seed).rewards, alone.rewards)
        np.testing.assert_array_equal(exp.result(0, seed).weights["theta"],
                                      alone.weights["theta"])


# ---------------------------------------------------------------------------
# Corrupt files are named and repaired, never read as data


def _corrupt(path, how):
    if how == "truncated":
        with open(path, "r+b") as f:
            f.truncate(200)
    elif how == "other arrays":  # a valid .npz with the wrong contents
        np.savez(path, x=np.zeros(3))
        path.with_name(path.name + ".npy").unlink(missing_ok=True)
    elif how == "missing":
        path.unlink()
    elif how == "garbage record":
        path.with_suffix(".json").write_text("{\"agent_index\": 0, \"se")


@pytest.mark.parametrize("how", ["truncated", "other arrays", "missing", "garbage record"])
def test_a_corrupt_run_is_named_left_out_and_rerun_to_the_same_numbers(tmp_path, caplog, how):
    out = tmp_path / "exp"
    run_experiment(out, LOOP, LOOP_AGENT, 3, 1_000, workers=1)
    npz = out / "runs" / "a000-s0001.npz"
    original = _arrays(npz)
    _corrupt(npz, how)

    with caplog.at_level(logging.WARNING, logger="avgreward.experiment"):
        exp = load_experiment(out)
    bad = "a000-s0001.json" if how == "garbage record" else "a000-s0001.npz"
    assert [c.path.name for c in exp.corrupt] == [bad] and bad in caplog.text
    assert exp.finished_seeds(0) == [0, 2] and exp.missing == [(0, 1)]
    assert exp.rewards(0).shape[0] == 2  # what is read is the whole runs only
    assert "corrupt" in exp.summary() and bad in exp.summary()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="avgreward.experiment"):
        repaired = run_experiment(out, LOOP, LOOP_AGENT, 3, 1_000, workers=1)
    assert bad in caplog.text and "running it again" in caplog.text
    assert not repaired.corrupt and repaired.finished_seeds(0) == [0, 1, 2]
    again = _arrays(npz)
    assert again.keys() == original.keys()
    for name in original:
        assert again[name].tobytes() == original[name].tobytes(), name


def test_records_carry_the_checksum_of_their_arrays(tmp_path):
    exp = run_experiment(tmp_path / "e", LOOP, LOOP_AGENT, 1, 500, workers=1)
    record = json.loads((exp.path / "runs" / "a000-s0000.json").read_text())
    digest = hashlib.sha256((exp.path / "runs" / "a000-s0000.npz").read_bytes()).hexdigest()
    assert record["sha256"] == digest and record["format"] == experiment.FORMAT


def test_a_run_of_the_previous_format_without_checksum_is_still_read(tmp_path):
    out = tmp_path / "e"
    run_experiment(out, LOOP, LOOP_AGENT, 2, 500, workers=1)
    for path in out.glob("runs/*.json"):
        record = json.loads(path.read_text())
        del record["sha256"]
        record["format"] = 1
        path.write_text(json.dumps(record))
    assert load_experiment(out).finished_seeds(0) == [0, 1]
    _corrupt(out / "runs" / "a000-s0000.npz", "truncated")
    assert [c.path.name for c in load_experiment(out).corrupt] == ["a000-s0000.npz"]


@pytest.mark.parametrize("text, message", [
    ("null", "expected a JSON object, found NoneType"),
    ("{\"env\": ", "cannot read"),
    ({"bin_size": 0}, "bin_size 0"),
    ({"steps": "abc"}, "steps 'abc'"),
    ({"steps": 2**70}, "steps 1180591620717411303424"),
    ({"features": {}}, "features is not a valid tile coder"),
    ({"agents": [{"kind": "softmax", "alpha_w": -1}]}, r"agents\[0\] is not valid"),
    ({"seeds": [0, 0]}, "seeds"),
    ({"env": 3}, "env 3 is not an environment id"),
])
def test_a_malformed_experiment_json_is_named_with_what_is_wrong(tmp_path, text, message):
    out = tmp_path / "e"
    run_experiment(out, LOOP, LOOP_AGENT, 1, 500, workers=1)
    path = out / "experiment.json"
    if isinstance(text, dict):
        config = json.loads(path.read_text())
        config.update(text)
        text = json.dumps(config)
    path.write_text(text)
    for action in (lambda: load_experiment(out),
                   lambda: run_experiment(out, LOOP, LOOP_AGENT, 1, 500, workers=1)):
        with pytest.raises(ValueError, match=message) as info:
            action()
        assert str(path) in str(info.value)
    assert path.read_text() == text  # refused: not overwritten


def test_an_edited_env_is_checked_against_the_runs(tmp_path):
    # Another package's gymnasium id is not made to read an experiment (plots must
    # not need it installed): the runs' records catch the edit.
    out = tmp_path / "e"
    run_experiment(out, LOOP, LOOP_AGENT, 1, 500, workers=1)
    path = out / "experiment.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "env": "nope"}))
    with pytest.raises(ValueError, match=r"a000-s0000.json was run with other settings.*"
                                         r"'nope' in experiment.json"):
        load_experiment(out)
    with pytest.raises(ValueError, match=r"other settings \(env 'nope' -> "):
        run_experiment(out, LOOP, LOOP_AGENT, 1, 500, workers=1)


def test_a_hand_edited_experiment_json_is_checked_against_the_runs(tmp_path):
    out = tmp_path / "e"
    run_experiment(out, LOOP, LOOP_AGENT, 2, 500, workers=1)
    path = out / "experiment.json"
    config = json.loads(path.read_text())
    config["steps"] = 1_000
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"a000-s0000.json was run with other settings.*"
                                         r"steps 500 in the run, 1000 in experiment.json"):
        load_experiment(out)
    with pytest.raises(ValueError, match="a000-s0000.json was run with other settings"):
        run_experiment(out, LOOP, LOOP_AGENT, 2, 1_000, workers=1)


# ---------------------------------------------------------------------------
# Races and limits


def test_the_settings_are_checked_under_the_directory_lock(tmp_path, monkeypatch):
    """Another process writes its experiment between our look at the directory and our lock."""
    out = tmp_path / "e"
    other = LOOP_AGENT.replace(tau=0.5)
    real_acquire = experiment.DirectoryLock.acquire
    interleaved = []

    def acquire(lock):
        if not interleaved:
            interleaved.append(True)
            run_experiment(out, LOOP, other, 1, 500, workers=1)  # the other process
        return real_acquire(lock)

    monkeypatch.setattr(experiment.DirectoryLock, "acquire", acquire)
    with pytest.raises(ValueError, match=r"other settings \(agent 0: tau 0.5 -> 1.0\)"):
        run_experiment(out, LOOP, LOOP_AGENT, 1, 500, workers=1)
    monkeypatch.undo()
    exp = load_experiment(out)
    assert exp.agents == [other] and len(exp.runs) == 1  # the other one's, untouched


def test_a_locked_directory_is_busy_and_untouched(tmp_path):
    out = tmp_path / "e"
    run_experiment(out, LOOP, LOOP_AGENT, 1, 500, workers=1)
    before = (out / "experiment.json").read_text()
    holder = experiment.DirectoryLock(out)
    assert holder.acquire()
    try:
        with pytest.raises(experiment.ExperimentBusyError, match="right now"):
            run_experiment(out, LOOP, LOOP_AGENT, 2, 500, workers=1)
        # With --new, a locked directory is passed over.
        fresh = run_experiment(out, LOOP, LOOP_AGENT, 1, 500, workers=1, new=True)
        assert fresh.path == tmp_path / "e-2"
    finally:
        holder.release()
    assert (out / "experiment.json").read_text() == before


_NEW_SCRIPT = """
import sys
from avgreward import SoftmaxActorCritic
from avgreward.experiment import run_experiment
exp = run_experiment(sys.argv[1], "avgreward/LoopMDP-v0",
                     SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01),
                     2, 2_000, workers=1, new=True)
print(exp.path)
"""


@pytest.mark.slow
def test_concurrent_new_experiments_get_a_directory_each(tmp_path):
    """Whatever the interleaving of the two processes: DIR-2 and DIR-3."""
    out = tmp_path / "e"
    run_experiment(out, LOOP, LOOP_AGENT, 1, 500, workers=1)
    script = tmp_path / "new.py"
    script.write_text(_NEW_SCRIPT)
    processes = [subprocess.Popen([sys.executable, str(script), str(out)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert sorted(o[0].strip() for o in outputs) == [str(tmp_path / "e-2"), str(tmp_path / "e-3")]
    for d in ("e-2", "e-3"):
        assert len(load_experiment(tmp_path / d).runs) == 2


def test_workers_are_capped_at_the_runs_with_a_warning_above_the_cores(tmp_path, monkeypatch,
                                                                      caplog):
    started = []
    monkeypatch.setattr(experiment, "run_in_workers",
                        lambda tasks, n, *args: started.append(n))
    monkeypatch.setattr(experiment, "default_workers", lambda: 2)
    with caplog.at_level(logging.WARNING, logger="avgreward.experiment"):
        run_experiment(tmp_path / "a", LOOP, LOOP_AGENT, 2, 500, workers=1000)
    assert started == [2] and not caplog.text
    with caplog.at_level(logging.WARNING, logger="avgreward.experiment"):
        run_experiment(tmp_path / "b", LOOP, LOOP_AGENT, 3, 500, workers=1000)
    assert started == [2, 3] and "3 worker processes on 2 cores" in caplog.text


def test_each_rename_is_made_durable_by_syncing_its_directory(tmp_path, monkeypatch):
    import stat

    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append((stat.S_ISDIR(os.fstat(fd).st_mode), os.fstat(fd).st_ino))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    exp = run_experiment(tmp_path / "e", LOOP, LOOP_AGENT, 1, 500, workers=1)
    directories = {ino for is_dir, ino in synced if is_dir}
    assert {exp.path.stat().st_ino, (exp.path / "runs").stat().st_ino} <= directories
    # Every rename is followed by its directory's sync: as many as files.
    assert sum(is_dir for is_dir, _ in synced) == sum(not is_dir for is_dir, _ in synced) == 3


def test_steps_beyond_2_to_the_53_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"steps must be at most 2\*\*53"):
        run_experiment(tmp_path / "e", LOOP, LOOP_AGENT, 1, 2**70)
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("change, reason", [
    ({"wall_time": [1]}, "wall_time"),
    ({"wall_time": "abc"}, "wall_time"),
    ({"steps_done": 10**30}, "steps_done"),
    ({"status": "fine"}, "status"),
])
def test_a_malformed_run_record_is_corrupt_named_and_rerun(tmp_path, change, reason):
    out = tmp_path / "e"
    run_experiment(out, LOOP, LOOP_AGENT, 2, 500, workers=1)
    path = out / "runs" / "a000-s0001.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    exp = load_experiment(out)
    assert [(c.path, reason in c.reason) for c in exp.corrupt] == [(path, True)]
    assert exp.finished_seeds(0) == [0]
    assert run_experiment(out, LOOP, LOOP_AGENT, 2, 500, workers=1).finished_seeds(0) == [0, 1]


def test_a_record_that_cannot_be_written_takes_its_arrays_with_it(tmp_path, monkeypatch):
    _full_disk_at(monkeypatch, "a000-s0001.json")
    with pytest.raises(OSError, match="run a000-s0001"):
        run_experiment(tmp_path / "e", LOOP, LOOP_AGENT, 3, 500, workers=1)
    _assert_no_partial_files(tmp_path / "e")
    assert not (tmp_path / "e" / "runs" / "a000-s0001.npz").exists()
