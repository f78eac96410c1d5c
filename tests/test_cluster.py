"""Experiments on a Dask cluster: the local runner's numbers, resume, failures, killed workers.

Needs the ``dask`` extra (``pip install ".[test,dask]"``, as README's test
command installs); a LocalCluster of 2 worker processes stands for a cluster.
"""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason='needs pip install ".[dask]"')

from avgreward import SoftmaxActorCritic, experiment  # noqa: E402
from avgreward.cli import main as cli  # noqa: E402
from avgreward.experiment import ClusterError, load_experiment, run_experiment  # noqa: E402
from avgreward.runner import cluster as dask_runner  # noqa: E402
from avgreward.runner.cluster import local_cluster  # noqa: E402

# Slow: starts Dask LocalClusters.
# The fast subset, pytest -m "not slow", leaves it out.
pytestmark = pytest.mark.slow

LOOP = "avgreward/LoopMDP-v0"
PENDULUM = "avgreward/PendulumSwingUp-v0"
LOOP_AGENT = SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
DIVERGING = SoftmaxActorCritic(alpha_w=256.0, alpha_theta=16.0, alpha_rbar=1.0)


@pytest.fixture
def client():
    # A cluster per test: a test that kills workers or stops tasks leaves no trace in the next.
    with local_cluster(2) as c:
        yield c


def _arrays(path):
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _same_runs(a, b):
    """Every run of ``a`` and ``b``: the same outcome and the same arrays, bit for bit."""
    assert [(r.agent_index, r.seed) for r in a.runs] == [(r.agent_index, r.seed) for r in b.runs]
    for ra, rb in zip(a.runs, b.runs):
        assert (ra.status, ra.failure, ra.steps_done, ra.error, ra.record["final_rbar"]) == \
            (rb.status, rb.failure, rb.steps_done, rb.error, rb.record["final_rbar"])
        arrays_a, arrays_b = _arrays(ra.path), _arrays(rb.path)
        assert arrays_a.keys() == arrays_b.keys()
        for name in arrays_a:
            assert arrays_a[name].dtype == arrays_b[name].dtype
            assert arrays_a[name].tobytes() == arrays_b[name].tobytes(), (ra.path.name, name)


def _no_partial_files(directory):
    runs = Path(directory, "runs")
    assert not list(Path(directory).rglob("*.tmp"))
    assert {p.stem for p in runs.glob("*.npz")} == {p.stem for p in runs.glob("*.json")}


def test_the_cluster_gives_the_local_runners_numbers_bit_for_bit(tmp_path, client):
    agents = [SoftmaxActorCritic.pendulum_reference(),
              SoftmaxActorCritic.pendulum_reference(alpha_theta=2.0**-4)]
    local = run_experiment(tmp_path / "local", PENDULUM, agents, 3, 3_000, workers=2)
    dask = run_experiment(tmp_path / "dask", PENDULUM, agents, 3, 3_000, cluster=client)
    assert dask.summary() == "6 of 6 runs done, 0 failed"
    _same_runs(local, dask)
    # the record says where and with what it ran
    assert dask.runs[0].path.with_suffix(".json").read_text().count('"versions"') == 1


def test_a_diverging_run_is_recorded_failed_with_its_partial_arrays(tmp_path, client):
    agents = [LOOP_AGENT, DIVERGING]
    local = run_experiment(tmp_path / "local", LOOP, agents, 2, 5_000, workers=1, bin_size=1)
    dask = run_experiment(tmp_path / "dask", LOOP, agents, 2, 5_000, cluster=client, bin_size=1)
    _same_runs(local, dask)
    failed = dask.failed
    assert [r.failure for r in failed] == ["divergence", "divergence"]
    assert 0 < failed[0].steps_done < 5_000
    assert _arrays(failed[0].path)["rewards"].size == failed[0].steps_done


def test_many_short_runs_go_in_batches_and_long_ones_alone(tmp_path, client, monkeypatch):
    tasks = [{"steps": 20_000}] * 1000
    batches = dask_runner._batches(tasks, 2)
    assert len(batches) == 10 and sum(map(len, batches)) == 1000  # 2,000,000 steps each
    assert len(dask_runner._batches([{"steps": 30_000_000}] * 8, 2)) == 8
    # small experiments still spread: at least four tasks per worker thread
    assert [len(b) for b in dask_runner._batches([{"steps": 100}] * 10, 2)] == [2] * 5
    submitted = []
    real_submit = distributed.Client.submit

    def submit(self, fn, batch, *args, **kwargs):
        submitted.append(len(batch))
        return real_submit(self, fn, batch, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "submit", submit)
    dask = run_experiment(tmp_path / "dask", LOOP, LOOP_AGENT, 40, 1_000, cluster=client)
    assert submitted == [5] * 8 and dask.summary() == "40 of 40 runs done, 0 failed"
    local = run_experiment(tmp_path / "local", LOOP, LOOP_AGENT, 40, 1_000, workers=2)
    _same_runs(local, dask)


def _interrupt_after(monkeypatch, n, action):
    """After the client has written ``n`` runs, ``action()`` (in the client, at a set point)."""
    real_write = dask_runner.write_run
    written = []

    def write(runs, name, arrays, record):
        out = real_write(runs, name, arrays, record)
        written.append(name)
        if len(written) == n:
            action()
        return out

    monkeypatch.setattr(dask_runner, "write_run", write)
    return written


def _interrupt():
    raise KeyboardInterrupt


def test_ctrl_c_keeps_every_written_run_and_the_rerun_runs_only_the_rest(tmp_path, client,
                                                                        monkeypatch):
    out = tmp_path / "dask"
    written = _interrupt_after(monkeypatch, 3, _interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(out, LOOP, LOOP_AGENT, 12, 200_000, cluster=client)
    _no_partial_files(out)
    kept = {p.stem for p in (out / "runs").glob("*.json")}
    assert kept == set(written) and len(kept) == 3
    before = {name: (out / "runs" / f"{name}.npz").read_bytes() for name in kept}
    # the lock is free, the running tasks were cancelled: the same call resumes
    monkeypatch.undo()
    rerun = _interrupt_after(monkeypatch, 0, _interrupt)
    resumed = run_experiment(out, LOOP, LOOP_AGENT, 12, 200_000, cluster=client)
    assert resumed.summary() == "12 of 12 runs done, 0 failed"
    assert len(rerun) == 9 and not kept & set(rerun)
    assert all((out / "runs" / f"{n}.npz").read_bytes() == b for n, b in before.items())
    _same_runs(run_experiment(tmp_path / "local", LOOP, LOOP_AGENT, 12, 200_000, workers=2),
               resumed)


def test_cancelled_tasks_stop_the_experiment_and_keep_its_runs(tmp_path, client, monkeypatch):
    """Another hand on the cluster cancels the experiment's tasks after two runs are written."""
    out = tmp_path / "dask"
    submitted = []
    real_submit = distributed.Client.submit

    def submit(self, *args, **kwargs):
        submitted.append(real_submit(self, *args, **kwargs))
        return submitted[-1]

    monkeypatch.setattr(distributed.Client, "submit", submit)
    _interrupt_after(monkeypatch, 2, lambda: client.cancel(submitted))
    with pytest.raises(ClusterError, match="cancelled.*run again to resume"):
        run_experiment(out, LOOP, LOOP_AGENT, 12, 200_000, cluster=client)
    _no_partial_files(out)
    assert len(list((out / "runs").glob("*.json"))) >= 2
    monkeypatch.undo()
    resumed = run_experiment(out, LOOP, LOOP_AGENT, 12, 200_000, cluster=client)
    assert resumed.summary() == "12 of 12 runs done, 0 failed"


def _kill_on_first_progress(monkeypatch):
    """SIGKILL the worker process of the first run that reports progress, once."""
    killed = []
    real = dask_runner._on_progress

    def on_progress(message):
        if not killed:
            name, done, pid = message
            os.kill(pid, signal.SIGKILL)
            killed.append((name, pid))
        return real(message)

    monkeypatch.setattr(dask_runner, "_on_progress", on_progress)
    return killed


def test_a_killed_worker_has_its_runs_retried_never_lost_or_duplicated(tmp_path, client,
                                                                        monkeypatch):
    out = tmp_path / "dask"
    writes = _interrupt_after(monkeypatch, -1, None)
    killed = _kill_on_first_progress(monkeypatch)
    # Several seconds a run: the first progress event (after 0.5 s) comes long before its end.
    steps = 60_000_000
    dask = run_experiment(out, LOOP, LOOP_AGENT, 2, steps, cluster=client)
    assert killed, "no progress arrived"
    assert dask.summary() == "2 of 2 runs done, 0 failed"  # retried on a new worker
    assert sorted(writes) == ["a000-s0000", "a000-s0001"]  # each written once
    client.wait_for_workers(2)
    local = run_experiment(tmp_path / "local", LOOP, LOOP_AGENT, 2, steps, workers=2)
    _same_runs(local, dask)


def test_a_run_whose_workers_keep_dying_is_recorded_failed_and_rerun_on_resume(tmp_path,
                                                                               monkeypatch):
    import dask

    out = tmp_path / "dask"
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with local_cluster(1) as one:
            killed = _kill_on_first_progress(monkeypatch)
            failed = run_experiment(out, LOOP, LOOP_AGENT, 1, 60_000_000, cluster=one)
            assert killed
            (record,) = failed.failed
            assert record.failure == "error" and "worker processes running it died" in \
                record.error
            monkeypatch.undo()
            resumed = run_experiment(out, LOOP, LOOP_AGENT, 1, 60_000_000, cluster=one)
    assert resumed.summary() == "1 of 1 runs done, 0 failed"
    _no_partial_files(out)


def test_a_closed_client_or_a_scheme_dask_cannot_reach_is_one_error(tmp_path, client):
    closed = distributed.Client(client.scheduler.address)
    closed.close()
    with pytest.raises(ClusterError, match="the Dask client is closed"):
        run_experiment(tmp_path / "e", LOOP, LOOP_AGENT, 1, 500, cluster=closed)
    for address in ("inproc://nowhere", "tls://127.0.0.1:1"):
        with pytest.raises(ClusterError, match="cannot reach the Dask scheduler"):
            run_experiment(tmp_path / "e", LOOP, LOOP_AGENT, 1, 500, cluster=address)
    assert not (tmp_path / "e").exists()


def test_a_lost_scheduler_is_one_line_and_keeps_the_written_runs(tmp_path):
    """The scheduler goes away (its cluster closed under the client) after two runs."""
    out = tmp_path / "e"
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    with distributed.Client(cluster) as own:
        with pytest.MonkeyPatch.context() as patch:
            _interrupt_after(patch, 2, cluster.close)
            with pytest.raises(ClusterError, match="run again to resume"):
                run_experiment(out, LOOP, LOOP_AGENT, 40, 200_000, cluster=own)
    _no_partial_files(out)
    assert len(list((out / "runs").glob("*.json"))) >= 2


def test_the_lock_and_the_settings_check_hold_as_locally(tmp_path, client):
    out = tmp_path / "e"
    run_experiment(out, LOOP, LOOP_AGENT, 1, 500, cluster=client)
    holder = experiment.DirectoryLock(out)
    assert holder.acquire()
    try:
        with pytest.raises(experiment.ExperimentBusyError, match="right now"):
            run_experiment(out, LOOP, LOOP_AGENT, 2, 500, cluster=client)
    finally:
        holder.release()
    with pytest.raises(ValueError, match="steps"):
        run_experiment(out, LOOP, LOOP_AGENT, 1, 600, cluster=client)
    assert load_experiment(out).summary() == "1 of 1 runs done, 0 failed"


@pytest.mark.parametrize("cluster, kwargs, message", [
    (42, {}, "cluster must be a dask.distributed.Client"),
    ("", {}, "got an empty string"),
    ("tcp://no-port", {}, "must look like tcp://host:8786"),
    ("tcp://127.0.0.1:8786", {"workers": 2}, "not both"),
])
def test_bad_cluster_arguments_are_named(tmp_path, cluster, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_experiment(tmp_path / "e", LOOP, LOOP_AGENT, 1, 500, cluster=cluster, **kwargs)
    assert not (tmp_path / "e").exists()


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_one_line_and_writes_nothing(tmp_path, capsys):
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(ClusterError, match="cannot reach the Dask scheduler"):
        run_experiment(tmp_path / "e", LOOP, LOOP_AGENT, 1, 500, cluster=address)
    assert not (tmp_path / "e").exists()
    code = cli(["run", "loop", "--steps", "500", "--seeds", "1", "--out", str(tmp_path / "e"),
                "--scheduler", address])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "cannot reach" in err


def test_the_cli_runs_on_a_local_dask_cluster_and_a_scheduler(tmp_path, client, capsys):
    args = ["run", "loop", "--steps", "20000", "--seeds", "3", "-q"]
    assert cli(args + ["--out", str(tmp_path / "local"), "--workers", "2"]) == 0
    assert cli(args + ["--out", str(tmp_path / "dask"), "--dask-local", "2"]) == 0
    assert cli(args + ["--out", str(tmp_path / "sched"),
                       "--scheduler", client.scheduler.address]) == 0
    local = load_experiment(tmp_path / "local")
    _same_runs(local, load_experiment(tmp_path / "dask"))
    _same_runs(local, load_experiment(tmp_path / "sched"))
    capsys.readouterr()
    code = cli(args + ["--out", str(tmp_path / "x"), "--dask-local", "2", "--workers", "2"])
    assert code == 2 and "give one of --workers and --dask-local" in capsys.readouterr().err


def test_the_progress_bars_count_runs_and_steps(tmp_path, client, capsys):
    run_experiment(tmp_path / "e", LOOP, LOOP_AGENT, 4, 50_000, cluster=client, progress=True)
    err = capsys.readouterr().err
    assert "4/4" in err and "200k/200k" in err and "Dask tasks" in err


def test_without_a_cluster_dask_is_never_imported(tmp_path):
    code = ("import sys, avgreward.cli as c; c.main(['run', 'loop', '--steps', '500', "
            f"'--seeds', '2', '--out', {str(tmp_path / 'e')!r}, '-q']); "
            "assert 'distributed' not in sys.modules and 'dask' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_a_missing_extra_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "avgreward\[dask\]"'):
        run_experiment(tmp_path / "e", LOOP, LOOP_AGENT, 1, 500, cluster="tcp://h:1")
    code = cli(["run", "loop", "--steps", "500", "--seeds", "1", "--out", str(tmp_path / "e"),
                "--dask-local", "2"])
    assert code == 2 and 'pip install "avgreward[dask]"' in capsys.readouterr().err


ROOT = Path(__file__).resolve().parents[1]
TINY = ["--seeds", "2", "--steps", "2000", "--actor", "-2", "0", "--critic", "1"]


def _script(script, *args, cwd, env=None):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args],
                          capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


def test_the_sweep_on_a_local_dask_cluster_is_the_local_sensitivity_study(tmp_path):
    dask = _script("sweep_on_cluster.py", *TINY, "--dask-local", "2", "--out",
                   str(tmp_path / "dask"), cwd=tmp_path)
    assert dask.returncode == 0, dask.stderr
    local = _script("sensitivity.py", *TINY, "--workers", "2", "--out", str(tmp_path / "local"),
                    cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    table = dask.stdout.split("mean reward over the whole run")[1].split("figure:")[0]
    assert table == local.stdout.split("mean reward over the whole run")[1].split("figure:")[0]
    _same_runs(load_experiment(tmp_path / "local"), load_experiment(tmp_path / "dask"))
    assert (tmp_path / "dask" / "sensitivity.png").stat().st_size > 5_000


_SBATCH = """#!/bin/sh
# A stand-in for SLURM's sbatch: start the job script at once, in its own session.
cp "$1" "{log}/job-$$.sh"  # dask-jobqueue removes its file once sbatch returns
setsid sh "{log}/job-$$.sh" > "{log}/job-$$.log" 2>&1 < /dev/null &
echo "Submitted batch job $!"
"""
_SCANCEL = """#!/bin/sh
for job in "$@"; do kill -TERM -- "-$job" 2>/dev/null; done
exit 0
"""


def test_the_sweep_starts_slurm_jobs_of_dask_workers(tmp_path):
    """dask-jobqueue's SLURMCluster, with sbatch and scancel that start and stop the job
    scripts on this machine: the script, the job's workers and the results, end to end."""
    pytest.importorskip("dask_jobqueue")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", _SBATCH.format(log=tmp_path)), ("scancel", _SCANCEL),
                       ("squeue", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = _script("sweep_on_cluster.py", *TINY, "--slurm", "--jobs", "1", "--cores", "2",
                   "--memory", "4GB", "--out", str(tmp_path / "slurm"), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr + "".join(
        p.read_text() for p in tmp_path.glob("job-*.log"))
    assert re.search(r"on the Dask cluster at tcp://\S+ \([12] worker threads\)", done.stdout)
    assert "--nworkers 2" in next(tmp_path.glob("job-*.sh")).read_text()
    local = run_experiment(tmp_path / "local", PENDULUM, [
        SoftmaxActorCritic(alpha_w=2.0, alpha_theta=2.0**a, alpha_rbar=2.0**-6)
        for a in (-2, 0)], 2, 2000, workers=1)
    _same_runs(local, load_experiment(tmp_path / "slurm"))
