"""Experiments: many (settings, seed) runs in parallel worker processes, kept on disk.

:func:`run_experiment` runs every (agent settings, seed) pair of an
experiment that is not finished yet in its directory, in worker processes,
and :func:`load_experiment` reads a directory back as an :class:`Experiment`.

Each run is :func:`avgreward.train` with the run's settings and seed, so it
is fully determined by them: the results do not depend on the number of
workers or on the order the runs happen to finish in.

On disk (``out`` is the experiment's directory)::

    out/experiment.json          env, steps, agents, seeds, bin_size, features, versions
    out/runs/a000-s0000.npz      one run's arrays (below)
    out/runs/a000-s0000.json     its record: settings, seed, env, status, error,
                                 wall time, versions and the sha256 of the .npz;
                                 written last, it marks the run finished

A run's ``.npz`` holds ``rewards`` (float64: the mean reward of each bin of
``bin_size`` steps; the last bin may be shorter), ``rbar`` and ``rbar_every``
(the R-bar trace, recorded every ``rbar_every`` steps), ``final_rbar``,
``steps_done`` and the learned weights (``w`` and ``theta``, or ``w``,
``theta_mu`` and ``theta_sigma``).  Per-step rewards are kept only when
``bin_size`` is 1.  Every file is written to a temporary name, synced,
renamed into place and its directory synced, so a crash, Ctrl-C or a power
loss never leaves a half-written result.  A run whose files are missing,
unreadable, or whose ``.npz`` does not match the checksum in its record is
reported by name, left out of what is read, and run again by the next
:func:`run_experiment` (runs are deterministic, so the rerun restores the
same numbers).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import itertools
import json
import logging
import math
import os
import platform
import signal
import sys
import threading
import time
import warnings
import zipfile
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from avgreward.agents import GaussianActorCritic, SoftmaxActorCritic, agent_from_dict
from avgreward.features import TileCoder
from avgreward.training import (
    _MAX_STEPS,
    ConstantRewardWarning,
    DivergenceError,
    Result,
    _bin_steps,
    _check_steps,
    _constant_reward,
    _constant_reward_message,
    _is_own_env,
    default_features,
    env_info,
    resolve_env,
    train,
)

__all__ = ["run_experiment", "load_experiment", "Experiment", "RunRecord", "CorruptRun",
           "ExperimentBusyError"]

log = logging.getLogger(__name__)

# 2: run records carry the sha256 of their .npz (format 1 records are checked by reading).
FORMAT = 2
MAX_BINS = 10_000
MAX_STEPS = _MAX_STEPS  # 2**53: step counts must stay exact as float64 (plot axes, bin ends)
# Runs per setting; the experiment's lists and records are kept in memory.
MAX_SEEDS = 1_000_000
_CONFIG_KEYS = ("env", "steps", "agents", "bin_size", "features")
_DEPENDENCIES = ("numpy", "numba", "gymnasium", "matplotlib", "tqdm")
# Environment of the worker processes, set before numba is imported there:
# one thread each, since the parallelism is across runs.
_WORKER_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class ExperimentBusyError(RuntimeError):
    """Another process is running an experiment in the same directory right now."""


class _WriteFailed(Exception):
    """A worker could not write a run's result; ``error`` is its ``OSError``.

    Not an ``OSError`` itself, so that it is not taken for a broken pipe.
    """

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class _Stopped(BaseException):
    """A run was asked to stop (Ctrl-C, termination): write nothing for it.

    A BaseException so that the per-run ``except Exception`` cannot record it
    as a failed run.
    """


# ---------------------------------------------------------------------------
# Results on disk


@dataclass(frozen=True)
class RunRecord:
    """One finished (or failed) run of an experiment, as recorded on disk.

    Attributes
    ----------
    agent_index : int
        Index of the run's settings in :attr:`Experiment.agents`.
    seed : int
    status : str
        ``"ok"`` or ``"failed"``.
    error : str or None
        Why a failed run failed.
    wall_time : float
        Seconds the run took (its worker's time, writing excluded).
    path : pathlib.Path
        The run's ``.npz`` file (its record is the ``.json`` next to it).
    failure : str or None
        ``"divergence"`` (the run raised :class:`avgreward.DivergenceError`;
        deterministic, so a rerun keeps it) or ``"error"`` (any other
        exception or a dead worker: a rerun runs it again).
    steps_done : int
        Steps completed (less than the experiment's ``steps`` when failed).
    record : dict
        The whole JSON record.
    """

    agent_index: int
    seed: int
    status: str
    error: str | None
    wall_time: float
    path: Path
    failure: str | None = None
    steps_done: int = 0
    record: dict = field(default_factory=dict, repr=False, compare=False)


def _run_name(agent_index: int, seed: int) -> str:
    return f"a{agent_index:03d}-s{seed:04d}"


def _versions() -> dict:
    import avgreward

    versions = {"avgreward": avgreward.__version__, "python": platform.python_version()}
    for name in _DEPENDENCIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["platform"] = platform.platform()
    return versions


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a power loss could undo it otherwise)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` under a temporary name, sync it, rename, sync the directory."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)


def _write_json(path: Path, data: dict) -> None:
    _atomic_write(path, (json.dumps(data, indent=1) + "\n").encode())


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_run(runs: Path, name: str, arrays: dict, record: dict) -> dict:
    """Write a run's arrays, then its record (with their checksum); return the record.

    Ctrl-C and SIGTERM wait until both files are whole.  On a write error
    (a full disk, say) the temporary files are removed and an ``OSError``
    naming the run is raised.
    """
    data = _npz_bytes(arrays)
    record = {**record, "sha256": _sha256(data)}
    try:
        with _signals_deferred():
            _atomic_write(runs / f"{name}.npz", data)
            _write_json(runs / f"{name}.json", record)
    except OSError as err:
        raise OSError(err.errno, f"{err.strerror or err} (while writing the result of run "
                      f"{name}; finished runs are kept: run again to resume)",
                      err.filename) from err
    return record


def _features_to_dict(features: TileCoder) -> dict:
    return {
        "low": list(features.low), "high": list(features.high), "tiles": list(features.tiles),
        "tilings": features.tilings, "wrap": list(features.wrap),
    }


def _features_from_dict(d: dict) -> TileCoder:
    return TileCoder(low=tuple(d["low"]), high=tuple(d["high"]), tiles=tuple(d["tiles"]),
                     tilings=d["tilings"], wrap=tuple(d["wrap"]))


def _run_arrays(result: Result) -> dict:
    """The arrays of a run's ``.npz``; ``result`` holds binned rewards (``train(bin_size=)``)."""
    arrays = {
        "rewards": result.rewards.astype(np.float64),
        "rbar": result.rbar,
        "rbar_every": np.int64(result.rbar_steps[0] if result.rbar_steps.size else 0),
        "final_rbar": np.float64(result.final_rbar),
        "steps_done": np.int64(result.steps),
    }
    for name, value in result.weights.items():
        arrays[name] = value
    return arrays


def _run_one(task: dict, on_chunk=None) -> dict:
    """Run one (settings, seed), write its arrays and then its record; return the record.

    ``on_chunk(steps_done)`` is called between the jitted chunks and may raise
    :class:`_Stopped`, in which case nothing is written.
    """
    agent = agent_from_dict(task["agent"])
    features = _features_from_dict(task["features"])
    steps, bin_size = task["steps"], task["bin_size"]
    callback = None if on_chunk is None else (lambda done, total: on_chunk(done))
    started = time.perf_counter()
    status, error, failure, result = "ok", None, None, None
    try:
        with warnings.catch_warnings():
            # Said once for the whole experiment, by run_experiment.
            warnings.simplefilter("ignore", ConstantRewardWarning)
            result = train(task["env"], agent, steps, task["seed"], features,
                           chunk_steps=task["chunk_steps"], callback=callback,
                           bin_size=bin_size)
    except DivergenceError as err:
        status, error, failure, result = "failed", str(err), "divergence", err.result
    except Exception as err:  # noqa: BLE001 - any error of one run is recorded; the others go on
        status, error, failure = "failed", f"{type(err).__name__}: {err}", "error"
    wall_time = time.perf_counter() - started
    record = _record(
        task, status=status, failure=failure, error=error,
        steps_done=0 if result is None else int(result.steps),
        final_rbar=(float(result.final_rbar) if result is not None
                    and math.isfinite(result.final_rbar) else None),
        wall_time=wall_time)
    arrays = {} if result is None or result.steps == 0 else _run_arrays(result)
    return _write_run(Path(task["runs_dir"]), _run_name(task["agent_index"], task["seed"]),
                      arrays, record)


def _record(task: dict, **outcome) -> dict:
    """A run's JSON record: the task's settings and ``outcome`` (status, error, ...)."""
    return {
        "format": FORMAT, "agent_index": task["agent_index"], "seed": task["seed"],
        "env": task["env"], "steps": task["steps"], "bin_size": task["bin_size"],
        "agent": task["agent"], "features": task["features"], **outcome,
        "finished": _now(), "versions": task["versions"],
    }


@contextlib.contextmanager
def _signals_deferred():
    """Hold Ctrl-C and SIGTERM until the block is done (only possible in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    handlers = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if previous in (signal.SIG_IGN, None):
            continue
        handlers[sig] = previous
        signal.signal(sig, lambda signum, frame: received.append((signum, frame)))
    try:
        yield
    finally:
        for sig, previous in handlers.items():
            signal.signal(sig, previous)
        if received:
            signum, frame = received[0]
            previous = handlers[signum]
            if callable(previous):
                previous(signum, frame)
            else:  # the default action (terminate), now that the files are whole
                signal.raise_signal(signum)


# ---------------------------------------------------------------------------
# Reading an experiment


def _format_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        mantissa, exponent = math.frexp(value)
        if value > 0 and mantissa == 0.5 and -40 < exponent - 1 < 40 and exponent != 1:
            return f"2^{exponent - 1}"
        return f"{value:g}"
    return str(value)


class Experiment:
    """An experiment directory: its settings and its finished runs.

    Get one from :func:`run_experiment` or :func:`load_experiment`.

    Attributes
    ----------
    path : pathlib.Path
    env_id : str
    steps : int
        Steps of every run.
    agents : list
        The settings objects; runs refer to them by index.
    seeds : list of int
    bin_size : int
        Rewards are stored as means of bins of this many steps.
    features : TileCoder
    config : dict
        The whole ``experiment.json``.
    corrupt : list of CorruptRun
        Runs left out because their files are missing, unreadable or do not
        match their checksum; running the experiment again repairs them.
    """

    def __init__(self, path: Path, config: dict, runs: list[RunRecord],
                 corrupt: list[CorruptRun] = ()):
        self.path = Path(path)
        self.corrupt = list(corrupt)
        self.config = config
        self.env_id = config["env"]
        self.steps = int(config["steps"])
        self.agents = [agent_from_dict(d) for d in config["agents"]]
        self.seeds = [int(s) for s in config["seeds"]]
        self.bin_size = int(config["bin_size"])
        self.features = _features_from_dict(config["features"])
        self._runs = {(r.agent_index, r.seed): r for r in runs}

    def __repr__(self):
        return f"Experiment({str(self.path)!r}: {self.summary()})"

    @property
    def runs(self) -> list[RunRecord]:
        """Every finished or failed run of the experiment's agents and seeds, in order."""
        return [self._runs[(i, s)] for i in range(len(self.agents)) for s in self.seeds
                if (i, s) in self._runs]

    @property
    def failed(self) -> list[RunRecord]:
        """The runs that failed."""
        return [r for r in self.runs if r.status != "ok"]

    @property
    def missing(self) -> list[tuple[int, int]]:
        """``(agent_index, seed)`` of the runs not finished yet (run the experiment again)."""
        return [(i, s) for i in range(len(self.agents)) for s in self.seeds
                if (i, s) not in self._runs]

    def summary(self) -> str:
        """One line: how many runs finished, failed, and are missing."""
        total = len(self.agents) * len(self.seeds)
        failed = self.failed
        diverged = sum(r.failure == "divergence" for r in failed)
        text = f"{total - len(self.missing)} of {total} runs done, {len(failed)} failed"
        if failed:
            text += f" ({diverged} diverged)"
        if self.missing:
            text += f", {len(self.missing)} not run yet"
        if self.corrupt:
            text += (f" ({len(self.corrupt)} of them corrupt: "
                     f"{', '.join(c.path.name for c in self.corrupt[:3])}"
                     f"{', ...' if len(self.corrupt) > 3 else ''}; run again to repair)")
        return text

    def run(self, agent_index: int, seed: int) -> RunRecord:
        """The record of one run (``KeyError`` if it has not finished)."""
        try:
            return self._runs[(agent_index, seed)]
        except KeyError:
            raise KeyError(
                f"run of agent {agent_index} with seed {seed} is not in {self.path} "
                "(not finished yet, or not part of the experiment)"
            ) from None

    def _check_agent(self, i):
        if not 0 <= i < len(self.agents):
            raise IndexError(f"agent index {i} out of range: {len(self.agents)} agents")

    def finished_seeds(self, i: int) -> list[int]:
        """Seeds of agent ``i``'s runs that finished ("ok"): the rows of :meth:`rewards`."""
        self._check_agent(i)
        return [s for s in self.seeds
                if (i, s) in self._runs and self._runs[(i, s)].status == "ok"]

    @property
    def bin_steps(self) -> np.ndarray:
        """Step count at the end of each reward bin (the last bin may be shorter)."""
        return _bin_steps(self.steps, self.bin_size)

    def _load(self, i, seed):
        return _load_arrays(self.run(i, seed).path)

    def rewards(self, i: int) -> np.ndarray:
        """Binned mean rewards of agent ``i``: shape ``(len(finished_seeds(i)), n_bins)``.

        Column ``j`` is the mean reward of the steps up to ``bin_steps[j]``
        since the previous bin.  Failed runs are left out.
        """
        rows = [_load_arrays(self._runs[(i, seed)].path)["rewards"]
                for seed in self.finished_seeds(i)]
        if not rows:
            return np.zeros((0, self.bin_steps.size))
        return np.stack(rows)

    def final_performance(self, i: int, fraction: float = 0.1) -> np.ndarray:
        """Mean reward of each finished seed of agent ``i`` over the last ``fraction`` of steps.

        The window is widened to whole bins (exact when ``fraction * steps``
        is a multiple of ``bin_size``); bins are weighted by their length.
        """
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
        rewards = self.rewards(i)
        ends = self.bin_steps
        lengths = np.diff(ends, prepend=0)
        start = self.steps - max(1, round(fraction * self.steps))
        first = start // self.bin_size
        weights = lengths[first:] / lengths[first:].sum()
        return rewards[:, first:] @ weights

    def result(self, i: int, seed: int) -> Result:
        """The run rebuilt as an :class:`avgreward.Result` (policy, values, R-bar trace).

        ``Result.rewards`` holds the per-step rewards (float32, as ``train``
        returns them) only when ``bin_size`` is 1; otherwise it holds the
        binned means (float64) and ``Result.info["bin_size"]`` says so.
        ``Result.info`` also has ``"bin_steps"``, ``"status"`` and ``"error"``.
        A failed run gives the result of the steps it completed.
        """
        record = self.run(i, seed)
        agent = self.agents[i]
        data = self._load(i, seed) if record.steps_done else {}
        if not data:
            raise ValueError(f"run of agent {i} with seed {seed} failed before any step: "
                             f"{record.error}")
        if isinstance(agent, SoftmaxActorCritic):
            weights = {"w": data["w"], "theta": data["theta"]}
        else:
            weights = {"w": data["w"], "theta_mu": data["theta_mu"],
                       "theta_sigma": data["theta_sigma"]}
        rewards = data["rewards"]
        if self.bin_size == 1:
            rewards = rewards.astype(np.float32)
        every = int(data["rbar_every"])
        return Result(
            env_id=self.env_id, agent=agent, seed=seed, steps=int(data["steps_done"]),
            rewards=rewards, rbar=data["rbar"],
            rbar_steps=np.arange(1, data["rbar"].size + 1, dtype=np.int64) * every,
            final_rbar=float(data["final_rbar"]), weights=weights, features=self.features,
            wall_time=record.wall_time,
            info={"bin_size": self.bin_size,
                  "bin_steps": _bin_steps(int(data["steps_done"]), self.bin_size),
                  "status": record.status, "error": record.error},
        )

    def varying(self) -> list[str]:
        """Names of the settings that differ between the agents (``"kind"`` first if it does)."""
        dicts = [a.to_dict() for a in self.agents]
        names = []
        for d in dicts:
            names.extend(n for n in d if n not in names)
        return [n for n in names if len({repr(d.get(n)) for d in dicts}) > 1]

    def label(self, i: int) -> str:
        """A short name of agent ``i`` for legends: the settings that differ between agents.

        With a single agent (or identical ones) it is the actor's kind,
        ``"softmax"`` or ``"gaussian"``.  Powers of two print as ``2^k``.
        """
        self._check_agent(i)
        d = self.agents[i].to_dict()
        varying = self.varying()
        if not varying:
            return d["kind"]
        parts = [d["kind"]] if "kind" in varying else []
        parts += [f"{n}={_format_value(d[n])}" for n in varying if n != "kind" and n in d]
        return ", ".join(parts)


def _load_arrays(path: Path) -> dict:
    """A run's arrays; a ``ValueError`` names the file if it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"cannot read {path} ({type(err).__name__}: {err}); running the "
                         "experiment again repairs it") from None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_config(path: Path) -> dict:
    """``path/experiment.json``, checked: a ``ValueError`` names the file and what is wrong."""
    file = path / "experiment.json"
    try:
        with open(file) as f:
            config = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path} is not an experiment directory (no experiment.json)") from None
    except (OSError, ValueError) as err:  # json.JSONDecodeError and UnicodeDecodeError too
        raise ValueError(f"cannot read {file}: {err}") from None
    try:
        _check_config(config)
    except ValueError as err:
        raise ValueError(f"{file} is not a valid experiment: {err}") from None
    return config


def _check_config(config) -> None:
    """Raise ``ValueError`` saying what is wrong with an ``experiment.json``'s contents."""
    if not isinstance(config, dict):
        raise ValueError(f"expected a JSON object, found {type(config).__name__}")
    missing = [k for k in (*_CONFIG_KEYS, "seeds") if k not in config]
    if missing:
        raise ValueError(f"lacks {missing}")
    if _is_int(config.get("format")) and config["format"] > FORMAT:
        raise ValueError(f"format {config['format']} is newer than this avgreward reads "
                         f"({FORMAT}): upgrade avgreward")
    env, steps, bin_size = config["env"], config["steps"], config["bin_size"]
    if not isinstance(env, str) or not env:
        raise ValueError(f"env {env!r} is not an environment id")
    # A gymnasium environment of another package is not made here: plotting its
    # results must not need it installed (nor registered).
    env_cls = resolve_env(env)[1] if _is_own_env(env) else None
    if not _is_int(steps) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps {steps!r} is not a whole number from 1 to 2**53")
    if not _is_int(bin_size) or not 1 <= bin_size <= steps:
        raise ValueError(f"bin_size {bin_size!r} is not a whole number from 1 to steps ({steps})")
    seeds = config["seeds"]
    if (not isinstance(seeds, list) or not all(_is_int(v) and v >= 0 for v in seeds)
            or len(set(seeds)) != len(seeds)):
        raise ValueError(f"seeds {seeds!r} is not a list of distinct whole numbers >= 0")
    agents = config["agents"]
    if not isinstance(agents, list) or not agents:
        raise ValueError(f"agents {agents!r} is not a non-empty list of settings")
    for i, d in enumerate(agents):
        try:
            if not isinstance(d, dict):
                raise TypeError(f"expected an object, found {type(d).__name__}")
            agent_from_dict(d)
        except (TypeError, ValueError) as err:
            raise ValueError(f"agents[{i}] is not valid settings: {err}") from None
    try:
        if not isinstance(config["features"], dict):
            raise TypeError(f"expected an object, found {type(config['features']).__name__}")
        features = _features_from_dict(config["features"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"features is not a valid tile coder ({type(err).__name__}: {err})"
                         ) from None
    if env_cls is not None and features.n_dims != env_cls.obs_size:
        raise ValueError(f"features has {features.n_dims} dimension(s) but {env}'s "
                         f"observation has {env_cls.obs_size}")


@dataclass(frozen=True)
class CorruptRun:
    """A run whose files cannot be used: reported, left out, run again by the next run.

    Attributes
    ----------
    name : str
        The run's file name without extension (``a000-s0003``).
    path : pathlib.Path
        The file that is missing, unreadable or wrong.
    reason : str
    """

    name: str
    path: Path
    reason: str

    def __str__(self):
        return f"{self.path}: {self.reason}"


def _check_run_file(npz: Path, record: dict) -> str | None:
    """Why the ``.npz`` of a run cannot be used, or None if it is whole."""
    try:
        data = npz.read_bytes()
    except FileNotFoundError:
        return "missing (its record exists)"
    except OSError as err:
        return f"unreadable ({err.strerror or err})"
    digest = record.get("sha256")
    if digest is not None:
        return None if _sha256(data) == digest else "does not match the checksum in its record"
    # A record of format 1 has no checksum: the arrays must at least be readable.
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            names = set(arrays.files)
            for name in names:
                arrays[name]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        return f"unreadable ({type(err).__name__}: {err})"
    if record.get("steps_done") and not {"rewards", "w"} <= names:
        return f"lacks arrays (has {sorted(names)})"
    return None


def _check_record(record, config: dict) -> tuple[int, int]:
    """A record's ``(agent_index, seed)``; ``ValueError`` if it is malformed."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, found {type(record).__name__}")
    i, seed = record.get("agent_index"), record.get("seed")
    if not (_is_int(i) and _is_int(seed) and 0 <= i < len(config["agents"]) and seed >= 0):
        raise ValueError(f"agent_index {i!r} or seed {seed!r} is not one of the experiment's")
    if record.get("status") not in ("ok", "failed") or not _is_int(record.get("steps_done")):
        raise ValueError("status or steps_done is missing or wrong")
    return i, seed


def _settings_mismatch(record: dict, config: dict, i: int) -> str | None:
    """How a run's settings differ from the experiment's, or None."""
    expected = {"env": config["env"], "steps": config["steps"], "bin_size": config["bin_size"],
                "agent": config["agents"][i], "features": config["features"]}
    for key, value in expected.items():
        if record.get(key) != value:
            return f"{key} {record.get(key)!r} in the run, {value!r} in experiment.json"
    return None


def _read_records(path: Path, config: dict) -> tuple[list[RunRecord], list[CorruptRun]]:
    """The runs recorded in ``path/runs``, verified, and the corrupt ones.

    Raises
    ------
    ValueError
        If a whole record's settings differ from ``experiment.json``'s (the
        file was edited, or the run belongs to another experiment): neither
        can be trusted, so nothing is read.
    """
    runs, corrupt = [], []
    for json_path in sorted((path / "runs").glob("a*-s*.json")):
        npz = json_path.with_suffix(".npz")
        name = json_path.stem
        try:
            with open(json_path) as f:
                record = json.load(f)
            i, seed = _check_record(record, config)
        except (OSError, ValueError) as err:
            corrupt.append(CorruptRun(name, json_path, f"unreadable record ({err})"))
            continue
        if name != _run_name(i, seed):
            corrupt.append(CorruptRun(name, json_path, f"holds the record of run "
                                      f"{_run_name(i, seed)}"))
            continue
        mismatch = _settings_mismatch(record, config, i)
        if mismatch is not None:
            raise ValueError(
                f"{json_path} was run with other settings than {path / 'experiment.json'} "
                f"says ({mismatch}): the file was edited, or the run belongs to another "
                "experiment; restore experiment.json, or move the run out of the directory")
        problem = _check_run_file(npz, record)
        if problem is not None:
            corrupt.append(CorruptRun(name, npz, problem))
            continue
        runs.append(RunRecord(
            agent_index=i, seed=seed, status=record["status"], error=record.get("error"),
            wall_time=float(record.get("wall_time") or 0.0), path=npz,
            failure=record.get("failure"), steps_done=record["steps_done"], record=record,
        ))
    return runs, corrupt


def load_experiment(out) -> Experiment:
    """Read an experiment directory written by :func:`run_experiment`.

    Every run's ``.npz`` is checked against the checksum in its record.  A
    run whose files are missing, unreadable or do not match is left out, with
    a warning naming the file, and listed in :attr:`Experiment.corrupt`;
    :func:`run_experiment` on the directory runs it again.

    Raises
    ------
    ValueError
        If ``out`` holds no experiment, its ``experiment.json`` is malformed,
        or a run's record disagrees with it (each error names the file).
    """
    path = Path(out)
    config = _read_config(path)
    runs, corrupt = _read_records(path, config)
    for bad in corrupt:
        log.warning("%s; left out (running the experiment again repairs it)", bad)
    return Experiment(path, config, runs, corrupt)


# ---------------------------------------------------------------------------
# Validation and the experiment's directory


def _as_agents(agents) -> list:
    if isinstance(agents, (SoftmaxActorCritic, GaussianActorCritic)):
        agents = [agents]
    try:
        agents = list(agents)
    except TypeError:
        raise ValueError(
            f"agents must be agent settings or a list of them, got {agents!r}") from None
    if not agents:
        raise ValueError("agents is empty: give at least one agent's settings")
    for a in agents:
        if not isinstance(a, (SoftmaxActorCritic, GaussianActorCritic)):
            raise ValueError(
                f"agents must be SoftmaxActorCritic or GaussianActorCritic settings, got {a!r}")
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
    if not seeds or not all(is_int(s) and s >= 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of integers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds has repeated values: {seeds!r}")
    return [int(s) for s in seeds]


def _positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
            or value < 1):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def default_workers() -> int:
    """The number of CPU cores this process may use."""
    if hasattr(os, "process_cpu_count"):
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _normalized(value):
    return json.loads(json.dumps(value))


def _describe_changes(old: dict, new: dict) -> list[str]:
    changes = []
    for key in ("env", "steps", "bin_size"):
        if old[key] != new[key]:
            changes.append(f"{key} {old[key]!r} -> {new[key]!r}")
    if old["features"] != new["features"]:
        diff = [f"{k} {old['features'].get(k)} -> {new['features'].get(k)}"
                for k in new["features"] if old["features"].get(k) != new["features"].get(k)]
        changes.append("features: " + ", ".join(diff))
    a, b = old["agents"], new["agents"]
    if a != b:
        if len(a) != len(b):
            changes.append(f"agents: {len(a)} -> {len(b)} settings")
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                diff = [f"{k} {x.get(k)!r} -> {y.get(k)!r}"
                        for k in dict.fromkeys([*x, *y]) if x.get(k) != y.get(k)]
                if diff:
                    changes.append(f"agent {i}: " + ", ".join(diff))
    return changes


def _is_empty_directory(path: Path) -> bool:
    """Empty, or what an interrupted start left: an empty ``runs`` and the lock file."""
    for entry in path.iterdir():
        if entry.name == ".lock" or (entry.name == "runs" and entry.is_dir()
                                     and not any(entry.iterdir())):
            continue
        return False
    return True


def _refuse_foreign(out: Path) -> None:
    """Refuse a path that is a file, or a directory of other files, before touching it."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a directory")
    if (out.is_dir() and not (out / "experiment.json").exists()
            and not _is_empty_directory(out)):
        raise ValueError(
            f"{out} is a non-empty directory without experiment.json; choose another "
            "directory (or ask for a new one: new=True, --new)")


class _DirectoryLock:
    """An exclusive lock on an experiment's directory (``flock`` of ``DIR/.lock``, POSIX).

    Held from before ``experiment.json`` is read until the runs are written,
    so that two processes never check, merge or write one experiment at once.
    """

    def __init__(self, out: Path):
        self.out, self.file = out, None

    def acquire(self) -> bool:
        """Take the lock if it is free; False if another process holds it."""
        try:
            import fcntl
        except ImportError:  # Windows: no lock
            return True
        self.file = open(self.out / ".lock", "a")
        try:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.release()
            return False
        return True

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # closing releases the flock
            self.file = None


def _lock_directory(out: Path, new: bool) -> tuple[Path, _DirectoryLock]:
    """Create and lock the experiment's directory: ``out``, or with ``new`` a free ``out-k``.

    With ``new``, a directory that holds anything or is locked by another
    process is passed over, so concurrent ``new`` starts get one directory each.
    """
    candidates = [out] if not new else itertools.chain(
        [out], (out.with_name(f"{out.name}-{k}") for k in itertools.count(2)))
    for candidate in candidates:
        if new:
            if candidate.exists() and not (candidate.is_dir()
                                           and _is_empty_directory(candidate)):
                continue
        else:
            _refuse_foreign(candidate)
        candidate.mkdir(parents=True, exist_ok=True)
        lock = _DirectoryLock(candidate)
        if not lock.acquire():
            if new:
                continue
            raise ExperimentBusyError(
                f"another process is running an experiment in {candidate} right now")
        if new and not _is_empty_directory(candidate):
            lock.release()  # filled by another process between the look and the lock
            continue
        if candidate != out:
            log.warning("%s already holds an experiment or other files: writing this "
                        "experiment to %s", out, candidate)
        return candidate, lock
    raise AssertionError("unreachable")


def _merged_config(out: Path, config: dict, seeds: list[int]) -> dict:
    """The directory's experiment.json after this run: new, or checked and merged (under the lock)."""
    if not (out / "experiment.json").exists():
        _refuse_foreign(out)
        return {"format": FORMAT, **config, "seeds": list(seeds), "created": _now(),
                "versions": _versions()}
    existing = _read_config(out)
    changes = _describe_changes({k: existing[k] for k in _CONFIG_KEYS}, config)
    if changes:
        raise ValueError(
            f"{out} holds an experiment with other settings ({'; '.join(changes)}); "
            "rerun with the same settings to resume it, or ask for a new directory "
            "(new=True, CLI --new)")
    merged = dict(existing)
    merged["seeds"] = list(existing["seeds"]) + [s for s in seeds if s not in existing["seeds"]]
    merged["format"] = max(FORMAT, existing.get("format", 1))
    return merged


def _remove_partial_files(out: Path) -> None:
    """Temporary files of writes that never finished, and arrays without a record."""
    for directory in (out, out / "runs"):
        for tmp in directory.glob("*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
    for npz in (out / "runs").glob("*.npz"):
        if not npz.with_suffix(".json").exists():
            with contextlib.suppress(OSError):
                npz.unlink()


# ---------------------------------------------------------------------------
# Running


def run_experiment(out, env, agents, seeds, steps, *, features=None, bounds=None,
                   workers=None, bin_size=None, progress=None, new=False) -> Experiment:
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
    so is a run whose files are missing, unreadable or do not match the
    checksum in its record (a warning names the file).  A worker that dies
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
        if isinstance(a, SoftmaxActorCritic) != (info.n_actions > 0):
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
    if bin_size is None:
        bin_size = -(-steps // MAX_BINS)
    bin_size = _positive_int("bin_size", bin_size)
    if bin_size > steps:
        raise ValueError(f"bin_size ({bin_size}) must be at most steps ({steps})")
    workers = default_workers() if workers is None else _positive_int("workers", workers)
    if progress is None:
        progress = sys.stderr is not None and sys.stderr.isatty()

    config = _normalized({
        "env": env_id, "steps": steps, "agents": [a.to_dict() for a in agents],
        "bin_size": bin_size, "features": _features_to_dict(features),
    })
    out, lock = _lock_directory(Path(out), new)
    try:
        # Under the lock: no other process can change experiment.json or the runs
        # between this check and the end of the runs.
        full_config = _merged_config(out, config, seeds)
        (out / "runs").mkdir(exist_ok=True)
        _remove_partial_files(out)
        done, corrupt = _read_records(out, full_config)
        _write_json(out / "experiment.json", full_config)
        for bad in corrupt:
            log.warning("%s; running it again", bad)
            for suffix in (".npz", ".json"):
                with contextlib.suppress(FileNotFoundError):
                    (out / "runs" / f"{bad.name}{suffix}").unlink()
        done = {(r.agent_index, r.seed): r for r in done}
        versions = _versions()
        chunk_steps = max(1_000, min(1 << 16, steps // 20))
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
        if tasks:
            n_workers = min(workers, len(tasks))
            cores = default_workers()
            if n_workers > cores:
                log.warning("%d worker processes on %d cores: they share the cores, so the "
                            "experiment is no faster than with %d (and needs more memory)",
                            n_workers, cores, cores)
            n_total = len(agents) * len(full_config["seeds"])
            with _Progress(progress, n_total, n_total - len(tasks), len(tasks) * steps) as bar:
                if n_workers == 1:
                    _run_here(tasks, bar)
                else:
                    _run_in_workers(tasks, n_workers, agents, env_id, features, bar)
    finally:
        lock.release()
    experiment = load_experiment(out)
    if not info.own:
        _warn_if_constant_reward(experiment)
    return experiment


def _warn_if_constant_reward(experiment) -> None:
    """One warning if every finished run's rewards are one and the same constant."""
    values = set()
    for i in range(len(experiment.agents)):
        for row in experiment.rewards(i):
            values.add(_constant_reward(row))
            if None in values or len(values) > 1:
                return
    if values:
        log.warning("%s", _constant_reward_message(experiment.env_id, values.pop()))


class _Progress:
    """Two tqdm bars, runs and steps (or nothing)."""

    def __init__(self, enabled, n_runs, runs_done, n_steps):
        self.enabled = enabled
        self.args = (n_runs, runs_done, n_steps)
        self.failed = 0

    def __enter__(self):
        if self.enabled:
            from tqdm.auto import tqdm as auto_tqdm

            class tqdm(auto_tqdm):
                # No monitor thread: with another Python thread alive, workers
                # could not be forked (see _start_method).
                monitor_interval = 0

            n_runs, runs_done, n_steps = self.args
            self.runs = tqdm(total=n_runs, initial=runs_done, desc="runs", unit="run",
                             position=0, dynamic_ncols=True)
            self.steps = tqdm(total=n_steps, desc="steps", unit="step", unit_scale=True,
                              position=1, dynamic_ncols=True)
        return self

    def note(self, text):
        if self.enabled:
            self.runs.write(text, file=sys.stderr)

    def add_steps(self, n):
        if self.enabled and n:
            self.steps.update(n)

    def run_done(self, record):
        if record["status"] != "ok":
            self.failed += 1
        if self.enabled:
            self.runs.update(1)
            if self.failed:
                self.runs.set_postfix(failed=self.failed)

    def __exit__(self, *exc):
        if self.enabled:
            self.steps.close()
            self.runs.close()
        return False


def _run_here(tasks, bar):
    """The runs one after the other in this process (1 worker)."""
    with _sigterm_as_interrupt():
        for task in tasks:
            reported = [0]

            def on_chunk(done, reported=reported):
                bar.add_steps(done - reported[0])
                reported[0] = done

            record = _run_one(task, on_chunk)
            bar.add_steps(task["steps"] - reported[0])
            bar.run_done(record)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM stops the experiment like Ctrl-C does: cleanly, keeping finished runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _worker_start_conditions():
    """While starting workers: their environment, Ctrl-C ignored, the caller's script hidden.

    Spawned children inherit the environment and ignored signals; numba reads
    NUMBA_NUM_THREADS when it is imported there.  Ctrl-C is handled by this
    process, which tells the workers to stop between chunks, so that a worker
    is never interrupted while it writes.  Hiding ``__main__``'s file keeps
    multiprocessing from re-running the calling script in each worker (the
    workers need nothing from it), so scripts need no ``__main__`` guard.
    """
    saved_env = {k: os.environ.get(k) for k in _WORKER_ENV}
    os.environ.update(_WORKER_ENV)
    main = sys.modules.get("__main__")
    hidden = {}
    for name in ("__file__", "__spec__"):
        if main is not None and getattr(main, name, None) is not None:
            hidden[name] = getattr(main, name)
            setattr(main, name, None)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main_thread else None
    try:
        yield
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous_sigint)
        for name, value in hidden.items():
            setattr(main, name, value)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _start_method():
    """How workers are started: ``"fork"`` where that is safe, else ``"spawn"``.

    A forked worker starts at once with everything this process has loaded; a
    spawned one imports numpy and numba and loads the kernels again (about a
    second, which is most of the difference between 1 and 2 workers on a few
    runs).  Forking is unsafe when another Python thread may hold a lock the
    child would then wait for forever, and after numba's thread pool has been
    started; native threads of BLAS libraries handle fork themselves.  macOS
    and Windows always spawn.
    """
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return "spawn"
    try:
        from numba.np.ufunc import parallel
    except ImportError:
        return "spawn"
    return "spawn" if getattr(parallel, "_is_initialized", True) else "fork"


class _Worker:
    def __init__(self, context, parent_pid):
        import multiprocessing

        self.conn, child_conn = multiprocessing.Pipe()
        self.process = context.Process(target=_worker_main, args=(child_conn, parent_pid),
                                       name="avgreward-worker", daemon=True)
        with _worker_start_conditions(), warnings.catch_warnings():
            # Python >= 3.12 warns about forking whenever the process has other OS
            # threads; _start_method allows it only when those are native ones
            # (numpy's BLAS pool), which are fork-safe.
            warnings.filterwarnings("ignore", message=".*multi-threaded.*fork",
                                    category=DeprecationWarning)
            self.process.start()
        child_conn.close()
        self.task = None
        self.reported = 0
        self.started = False  # set by its "ready" message


def _run_in_workers(tasks, n_workers, agents, env_id, features, bar):
    """The runs in ``n_workers`` worker processes, one run per worker at a time."""
    import multiprocessing
    from multiprocessing.connection import wait

    method = _start_method()
    context = multiprocessing.get_context(method)
    pending = deque(tasks)
    workers = []
    start_failures = 0

    def load_kernels():
        # Compile (or load from numba's cache) each actor's kernels here first,
        # so that workers never compile at the same time (spawned ones only load
        # the cache; forked ones inherit them).
        bar.note("loading the compiled kernels...")
        for kind in dict.fromkeys(type(agents[t["agent_index"]]) for t in tasks):
            train(env_id, next(a for a in agents if type(a) is kind), 1, 0, features)

    with _sigterm_as_interrupt():
        try:
            if method == "fork":
                load_kernels()
            # Spawned workers import while this process loads the kernels;
            # they get their first run only once the loop below starts.
            workers = [_Worker(context, os.getpid()) for _ in range(n_workers)]
            if method != "fork":
                load_kernels()
            while workers:
                by_object = {w.conn: w for w in workers}
                by_object.update({w.process.sentinel: w for w in workers})
                for worker in dict.fromkeys(by_object[r] for r in wait(list(by_object), 1.0)):
                    # Read everything the worker sent before looking at whether it exited.
                    alive = True
                    try:
                        while worker.conn.poll():
                            _handle_message(worker, worker.conn.recv(), pending, bar)
                    except (EOFError, OSError):
                        alive = False
                    if alive and worker.process.is_alive():
                        continue
                    worker.process.join(timeout=5.0)
                    workers.remove(worker)
                    worker.conn.close()
                    if worker.task is not None:
                        _record_dead_worker(worker, bar)
                    if not worker.started:
                        start_failures += 1
                        if start_failures >= 3:
                            raise RuntimeError(
                                "avgreward worker processes exit as they start (exit code "
                                f"{worker.process.exitcode}); see the errors above")
                    if pending and len(workers) < n_workers:
                        workers.append(_Worker(context, os.getpid()))
        except BaseException as err:
            _stop_workers(workers)
            _remove_partial_files(Path(tasks[0]["runs_dir"]).parent)
            if isinstance(err, _WriteFailed):
                raise err.error from None
            raise
        finally:
            for worker in workers:
                worker.conn.close()


def _handle_message(worker, message, pending, bar):
    kind, payload = message
    if kind == "write error":
        # Nothing more can be saved: stop the experiment and tell why.
        raise _WriteFailed(OSError(*payload))
    if kind == "progress":
        bar.add_steps(payload - worker.reported)
        worker.reported = payload
        return
    if kind == "done":
        bar.add_steps(worker.task["steps"] - worker.reported)
        bar.run_done(payload)
    worker.started = True
    # "ready" or "done": give the worker its next run, or let it exit.
    worker.task, worker.reported = None, 0
    task = pending.popleft() if pending else None
    try:
        worker.conn.send(task)
    except OSError:
        if task is not None:
            pending.appendleft(task)  # never reached the worker: someone else runs it
        raise
    worker.task = task


def _record_dead_worker(worker, bar):
    """A worker died during a run (killed, out of memory): record the run as failed.

    Its temporary files are removed at once.  If it died after writing the
    whole run (between the record and its "done" message), the run is kept.
    """
    task = worker.task
    runs, name = Path(task["runs_dir"]), _run_name(task["agent_index"], task["seed"])
    for tmp in itertools.chain(runs.glob(f"{name}.npz.*.tmp"), runs.glob(f"{name}.json.*.tmp")):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    record = _finished_record(runs, name)
    if record is None:
        record = _write_run(runs, name, {}, _record(
            task, status="failed", failure="error", steps_done=0, final_rbar=None,
            error=f"the worker process died (exit code {worker.process.exitcode})",
            wall_time=0.0))
    bar.add_steps(task["steps"] - worker.reported)
    bar.run_done(record)


def _finished_record(runs: Path, name: str) -> dict | None:
    """The record of run ``name`` if it is whole and final (ok, or diverged), else None."""
    try:
        record = json.loads((runs / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    final = isinstance(record, dict) and (record.get("status") == "ok"
                                          or record.get("failure") == "divergence")
    if not final or _check_run_file(runs / f"{name}.npz", record) is not None:
        return None
    return record


def _stop_workers(workers, grace=30.0):
    """Ask every worker to stop at its next chunk; a write in progress is completed."""
    for worker in workers:
        with contextlib.suppress(OSError):
            worker.conn.send("stop")
    deadline = time.monotonic() + grace
    for worker in workers:
        while worker.process.is_alive() and time.monotonic() < deadline:
            # Keep reading, so that no worker blocks on a full pipe.
            with contextlib.suppress(EOFError, OSError):
                while worker.conn.poll(0.05):
                    worker.conn.recv()
            worker.process.join(timeout=0.05)
    for worker in workers:
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()


def _set_parent_death_signal():
    """On Linux, get SIGTERM when the parent dies (the parent-pid check covers the rest)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _worker_main(conn, parent_pid):
    """A worker process: run the tasks the parent sends until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminated = []
    signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
    _set_parent_death_signal()

    def parent_gone():
        return bool(terminated) or os.getppid() != parent_pid

    def on_chunk(done):
        if parent_gone():
            raise _Stopped
        if conn.poll():  # the only message a busy worker can get is "stop"
            conn.recv()
            raise _Stopped
        try:
            conn.send(("progress", done))
        except OSError:
            raise _Stopped from None

    try:
        conn.send(("ready", None))
        while True:
            while not conn.poll(0.5):
                if parent_gone():
                    return
            task = conn.recv()
            if not isinstance(task, dict):
                return
            try:
                record = _run_one(task, on_chunk)
            except _Stopped:
                return
            except OSError as err:  # the result could not be written (a full disk...)
                conn.send(("write error", (err.errno, err.strerror, err.filename)))
                return
            conn.send(("done", {"status": record["status"], "error": record["error"]}))
    except (EOFError, OSError):
        return
