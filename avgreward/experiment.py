"""Experiments: many (settings, seed) runs in parallel worker processes, kept on disk.

:func:`run_experiment` runs every (agent settings, seed) pair of an
experiment that is not finished yet in its directory, in worker processes,
and :func:`load_experiment` reads a directory back as an :class:`Experiment`.

Each run is :func:`avgreward.train` with the run's settings and seed, so it
is fully determined by them: the results do not depend on the number of
workers or on the order the runs happen to finish in.  What lies on disk,
and how it is checked, is described in :mod:`avgreward.runner.records`; the
runner's other parts are in :mod:`avgreward.runner`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from avgreward.agents import AgentSettings
from avgreward.environments import default_features, env_info, resolve_env
from avgreward.features import TileCoder, features_to_dict
from avgreward.files import package_versions, write_json
from avgreward.result import DivergenceError
from avgreward.learners.registry import driver_for, is_agent
from avgreward.options import check_int as _check_int
from avgreward.options import check_steps as _check_steps
from avgreward.runner.directory import (
    ExperimentBusyError,
    DirectoryLock,  # noqa: F401 (tests reach the lock through here)
    lock_directory,
    merged_config,
    remove_partial_files,
)
from avgreward.runner.cluster import ClusterError, run_on_cluster, check_cluster, connect
from avgreward.runner.pool import ProgressBars, run_here, run_in_workers, default_workers
from avgreward.runner.records import (
    FORMAT,  # noqa: F401 (the file format's version, part of this module's interface)
    MAX_SEEDS,
    CorruptRun,
    RunRecord,
    discard,
    read_records,
    run_name,
)
from avgreward.runner.view import Experiment, load_experiment
from avgreward.training import constant_reward, constant_reward_message, train

if TYPE_CHECKING:  # the dask extra, for the type hints only
    import distributed

__all__ = ["run_experiment", "load_experiment", "Experiment", "RunRecord", "CorruptRun",
           "ExperimentBusyError", "ClusterError"]

# One logger for the whole runner: what users filter or capture.
log = logging.getLogger("avgreward.experiment")

MAX_BINS = 10_000
# MAX_SEEDS (imported from avgreward.runner.records): runs per setting; the
# experiment's lists and records are kept in memory.


def _as_agents(agents) -> list:
    if is_agent(agents):
        agents = [agents]
    try:
        agents = list(agents)
    except TypeError:
        raise ValueError(
            f"agents must be agent settings or a list of them, got {agents!r}") from None
    if not agents:
        raise ValueError("agents is empty: give at least one agent's settings")
    for i, a in enumerate(agents):
        driver_for(a, f"agents[{i}]")
    seen = {}
    for i, a in enumerate(agents):
        if a in seen:
            raise ValueError(f"agents {seen[a]} and {i} are the same settings: {a!r}")
        seen[a] = i
    return agents


def _as_seeds(seeds) -> list[int]:
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

    if is_int(seeds):
        if not 1 <= seeds <= MAX_SEEDS:
            raise ValueError(f"seeds must be a count from 1 to {MAX_SEEDS:,} or a list of "
                             f"seeds, got {seeds!r}")
        return list(range(int(seeds)))
    try:
        seeds = list(seeds)
    except TypeError:
        raise ValueError(f"seeds must be a count or a list of seeds, got {seeds!r}") from None
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"seeds has {len(seeds):,} values: at most {MAX_SEEDS:,}")
    if not seeds or not all(is_int(s) and 0 <= s < 2**63 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of integers from 0 to 2**63 - 1, "
                         f"got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds has repeated values: {seeds!r}")
    return [int(s) for s in seeds]


def _normalized(value):
    return json.loads(json.dumps(value))


def run_experiment(
    out: str | os.PathLike[str],
    env: str,
    agents: AgentSettings | Sequence[AgentSettings],
    seeds: int | Sequence[int],
    steps: int,
    *,
    features: TileCoder | None = None,
    bounds: tuple[ArrayLike, ArrayLike] | None = None,
    workers: int | None = None,
    bin_size: int | None = None,
    progress: bool | None = None,
    new: bool = False,
    cluster: distributed.Client | object | str | None = None,
    log: str | None = None,
    log_every: int | None = None,
) -> Experiment:
    """Run every (agent, seed) of an experiment not finished yet in ``out``.

    Parameters
    ----------
    out : str or Path
        The experiment's directory (created if needed).  If it already holds
        this experiment, only the runs not finished yet are run (resume).
    env : str
        A registered id: one of the package's environments (run in the fused
        loop), or any gymnasium environment with a 1-D ``Box`` observation
        and a ``Discrete`` or 1-D ``Box`` action (stepped from Python, see
        :mod:`avgreward.stepwise`; it must be registered in the worker
        processes too, which a forked worker inherits).
    agents : settings or list of settings
        One :class:`SoftmaxActorCritic` / :class:`GaussianActorCritic`, or a
        list of them (a sweep).  Runs refer to them by their index.
    seeds : int or list of int
        ``K`` means seeds ``0..K-1``.  Adding seeds to an existing experiment
        is allowed: only the new seeds' runs are run.
    steps : int
        Steps of every run.
    features : TileCoder, optional
        Feature map; the environment's :func:`avgreward.default_features` if omitted.
    bounds : (low, high), optional
        Only for gymnasium environments that are not this package's: the
        observation's bounds for the default tile coder (needed when the
        observation space's bounds are infinite and ``features`` is not given).
    workers : int, optional
        Worker processes; default all cores.  With 1 worker (or 1 run left)
        the runs happen in this process.
    bin_size : int, optional
        Rewards are stored as means of bins of ``bin_size`` steps; default
        ``ceil(steps / 10,000)`` (at most 10,000 bins per run); 1 keeps every step.
    progress : bool, optional
        Progress bars over runs and steps; default on when stderr is a terminal.
    new : bool, default False
        If ``out`` already holds an experiment (any settings), write to a
        fresh directory ``out-2`` (or ``out-3``, ...) instead; a warning says which.
    cluster : distributed.Client, Dask cluster or str, optional
        Run on a Dask cluster instead of this machine's cores: a
        :class:`distributed.Client`, a cluster object (``LocalCluster``,
        ``dask_jobqueue.SLURMCluster``, ...) or a scheduler address such as
        ``"tcp://host:8786"`` (needs ``pip install "avgreward[dask]"``).  The
        workers compute and this process writes every file, so the cluster
        needs no shared file system; the results are the local runner's, bit
        for bit.  See :mod:`avgreward.runner.cluster`.  Not with ``workers``.
    log : {"csv", "tb"}, optional
        Write each run's live metrics (:class:`avgreward.metrics.Metrics`)
        to ``out/logs/<run>.csv`` or the TensorBoard event directory
        ``out/logs/<run>/`` (``tensorboard --logdir out/logs``; needs
        ``pip install "avgreward[tensorboard]"``), as the run goes.  Not
        with ``cluster`` (the workers' files would stay on their machines).
    log_every : int, optional
        Metrics every this many steps (default: the runner's chunk,
        ``steps / 20``, at least 1,000 and at most 65,536; parallel actors
        count updates, each ``log_every / actors`` steps of every copy); the
        results do not depend on it.

    Returns
    -------
    Experiment
        :func:`load_experiment` of the directory used.

    Raises
    ------
    ValueError
        On invalid arguments, if ``out`` holds an experiment with other
        settings (env, steps, agents, bin_size, features) and ``new`` is False,
        or if its files are malformed or disagree with each other (the error
        names the file).
    ExperimentBusyError
        If another process is running an experiment in ``out``.
    ClusterError
        If the Dask scheduler cannot be reached, a worker has other versions
        of avgreward, numpy or numba than this process, or cannot run the
        runs at all; finished runs are kept.
    OSError
        If results cannot be written (a full disk, a read-only directory):
        the experiment stops, finished runs are kept, and the error names
        the file and the run.
    KeyboardInterrupt
        On Ctrl-C (or SIGTERM) once the workers have stopped; finished runs
        are kept and no partial file is left, so running again resumes.

    Notes
    -----
    A run that raises :class:`avgreward.DivergenceError` is recorded as
    failed with the message and its partial arrays; the others go on.  Since
    a run is determined by its settings and seed, a diverged run is not run
    again on resume.  A run that failed for another reason (an exception
    other than divergence, a worker that died) is run again on resume, and
    so is a damaged run: files missing or unreadable, arrays that do not
    match the checksum in its record, or that match it but do not load
    without pickle or lack a run's arrays, a record without its checksum
    (see :mod:`avgreward.runner.records`).  A warning names the file; the
    damaged files are removed, and a directory found in their place is moved
    aside to ``NAME.corrupt``.  A worker that dies
    has its run recorded as failed at once, its partial files removed.

    The directory is locked (``DIR/.lock``) from before its ``experiment.json``
    is read until the runs end, so two processes never mix their runs; with
    ``new``, concurrent starts each get their own directory.  Rewards are
    binned inside each run (``train(..., bin_size=...)``), so a run's memory
    does not grow with ``steps``.

    The kernels are compiled (or loaded from numba's cache) here first.  On
    Linux, when this process runs no other Python thread, workers are forked
    from it: they start in milliseconds with the kernels loaded.  Otherwise
    (other threads, macOS, Windows) they are started with ``spawn``: fresh
    interpreters whose environment sets ``NUMBA_NUM_THREADS=1`` before numba
    is imported, which load the kernels from the cache (about a second each).
    Either way, scripts do not need an ``if __name__ == "__main__"`` guard:
    workers never import the calling script.
    """
    info = env_info(env if isinstance(env, str) else resolve_env(env)[0])
    env_id = info.env_id
    agents = _as_agents(agents)
    for a in agents:
        continuous = driver_for(a).continuous(a)  # None: the learner's own business
        if continuous is not None and continuous != (info.n_actions == 0):
            raise ValueError(
                f"agent {a!r} does not fit {env_id}: "
                + ("use SoftmaxActorCritic (discrete actions)" if info.n_actions > 0
                   else "use GaussianActorCritic (continuous action)"))
    seeds = _as_seeds(seeds)
    steps = _check_steps(steps)
    if features is None:
        features = default_features(env_id, bounds)
    elif bounds is not None:
        raise ValueError("give features or bounds, not both (bounds only build the default "
                         "features)")
    elif not isinstance(features, TileCoder):
        raise ValueError(f"features must be a TileCoder, got {features!r}")
    if features.n_dims != info.obs_size:
        raise ValueError(f"features has {features.n_dims} dimension(s) but {env_id}'s "
                         f"observation has {info.obs_size}")
    for i, agent in enumerate(agents):
        _check_runs(env_id, i, agent, features)
    if bin_size is None:
        bin_size = -(-steps // MAX_BINS)
    bin_size = _check_int("bin_size", bin_size, 1)
    if bin_size > steps:
        raise ValueError(f"bin_size ({bin_size}) must be at most steps ({steps})")
    check_cluster(cluster)
    if cluster is not None and workers is not None:
        raise ValueError("give workers (processes on this machine) or cluster (Dask), not both")
    workers = default_workers() if workers is None else _check_int("workers", workers, 1)
    logs = _check_log(log, log_every, cluster)
    if progress is None:
        progress = sys.stderr is not None and sys.stderr.isatty()

    config = _normalized({
        "env": env_id, "steps": steps, "agents": [a.to_dict() for a in agents],
        "bin_size": bin_size, "features": features_to_dict(features),
    })
    # Connected before the directory is touched: an unreachable scheduler writes nothing.
    client, owned = connect(cluster) if cluster is not None else (None, False)
    try:
        out = _run_locked(out, new, config, seeds, agents, steps, env_id, bin_size, features,
                          workers, progress, client, logs)
    finally:
        if owned:
            client.close()
    experiment = load_experiment(out)
    if not info.own:
        _warn_if_constant_reward(experiment)
    return experiment


def _check_log(log, log_every, cluster):
    """``(kind, every)`` of the runs' logs, checked; None without logs."""
    from avgreward.logs import LOG_KINDS

    if log is None:
        if log_every is not None:
            raise ValueError("log_every: give log (csv or tb) too")
        return None
    if log not in LOG_KINDS:
        raise ValueError(f"log must be one of {', '.join(LOG_KINDS)}, got {log!r}")
    if cluster is not None:
        raise ValueError("log: not with a Dask cluster (--scheduler, --dask-local): its "
                         "workers write no files, and a remote one's would stay on its "
                         "machines")
    if log == "tb":
        from avgreward.extras import require

        require("tensorboardX", "tensorboard", "TensorBoard logs")
    return log, None if log_every is None else _check_int("log_every", log_every, 1)


def _run_locked(out, new, config, seeds, agents, steps, env_id, bin_size, features, workers,
                progress, client, logs=None) -> Path:
    """Under the directory's lock: check the settings, then run what is not finished."""
    out, lock = lock_directory(Path(out), new)
    try:
        # Under the lock: no other process can change experiment.json or the runs
        # between this check and the end of the runs.
        full_config = merged_config(out, config, seeds)
        (out / "runs").mkdir(exist_ok=True)
        remove_partial_files(out)
        done, corrupt = read_records(out, full_config)
        write_json(out / "experiment.json", full_config)
        for bad in corrupt:
            # Files are removed; a directory in their place is moved aside (kept).
            moved = [aside.name for aside in (discard(out / "runs" / f"{bad.name}{suffix}")
                                              for suffix in (".npz", ".json"))
                     if aside is not None]
            log.warning("%s; %srunning it again", bad,
                        f"moved aside to {', '.join(moved)}; " if moved else "")
        done = {(r.agent_index, r.seed): r for r in done}
        versions = package_versions()
        chunk_steps = max(1_000, min(1 << 16, steps // 20))
        if logs is not None and logs[1] is not None:
            chunk_steps = logs[1]
        tasks = []
        for i, agent in enumerate(agents):
            for seed in full_config["seeds"]:
                record = done.get((i, seed))
                if record is not None and (record.status == "ok"
                                           or record.failure == "divergence"):
                    continue
                tasks.append({
                    "agent_index": i, "seed": seed, "env": env_id, "steps": steps,
                    "agent": config["agents"][i], "features": config["features"],
                    "bin_size": bin_size, "chunk_steps": chunk_steps,
                    "runs_dir": str(out / "runs"), "versions": versions,
                })
                if logs is not None:
                    tasks[-1]["log"] = (logs[0], str(out / "logs" / run_name(i, seed)))
        if tasks:
            n_workers = min(workers, len(tasks))
            cores = default_workers()
            if client is None and n_workers > cores:
                log.warning("%d worker processes on %d cores: they share the cores, so the "
                            "experiment is no faster than with %d (and needs more memory)",
                            n_workers, cores, cores)
            n_total = len(agents) * len(full_config["seeds"])
            with ProgressBars(progress, n_total, n_total - len(tasks), len(tasks) * steps) as bar:
                if client is not None:
                    run_on_cluster(client, tasks, bar)
                elif n_workers == 1:
                    run_here(tasks, bar)
                else:
                    run_in_workers(tasks, n_workers, agents, env_id, features, bar)
    finally:
        lock.release()
    return out


def _check_runs(env_id, i, agent, features) -> None:
    """Refuse settings ``train`` would refuse, before anything is written.

    One step of the run, here: whatever ``train`` says of the settings (an
    actor that does not fit, arrays that cannot fit in memory) is then a
    refusal of the whole experiment with any number of workers, not a failure
    of every run.  It also compiles the kernels before workers are forked.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train(env_id, agent, 1, 0, features)
    except DivergenceError:
        pass  # an outcome of the run, recorded as such
    except MemoryError:
        raise ValueError(f"agent {i}: its arrays do not fit in the memory available") from None
    except ValueError as err:
        raise ValueError(f"agent {i}: {err}") from None


def _warn_if_constant_reward(experiment) -> None:
    """One warning if every finished run's rewards are one and the same constant."""
    values = set()
    for i in range(len(experiment.agents)):
        for row in experiment.rewards(i):
            values.add(constant_reward(row))
            if None in values or len(values) > 1:
                return
    if values:
        log.warning("%s", constant_reward_message(experiment.env_id, values.pop()))
