"""An experiment's files: each run's arrays and record, checked, written atomically.

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
``theta_mu`` and ``theta_sigma``); on an episodic task also
``terminations`` and ``truncations`` (counted per bin) and each finished
episode's ``episode_returns``, ``episode_lengths`` and ``episode_end_steps``
(see :meth:`avgreward.experiment.Experiment.episodes`; runs saved before
end steps were recorded have none).  Per-step rewards are kept only when
``bin_size`` is 1.  Every file is written to a temporary name, synced,
renamed into place and its directory synced, so a crash, Ctrl-C or a power
loss never leaves a half-written result.

A run is used only if its record is whole and its ``.npz`` matches the
checksum in the record *and* loads as it is read (``allow_pickle=False``:
no object arrays) with the arrays a run has.  Any other run is damaged:
reported by name (:class:`CorruptRun`), left out of what is read, and run
again by the next :func:`avgreward.experiment.run_experiment` (runs are
deterministic, so the rerun restores the same numbers).  Damaged files are
removed before the rerun; a directory found in place of a run's file is
moved aside to ``NAME.corrupt`` (``NAME.corrupt-2``, ...), never deleted.
The reading path (:func:`read_records`) and the check of a dead worker's
run (:func:`finished_record`) judge a run by one function, :func:`_verify_run`.

Format versions (``FORMAT``; every record and ``experiment.json`` has
carried its ``"format"`` since format 1, so a record without one is
damaged, not old):

1. the first records, without checksum: their ``.npz`` is checked by reading;
2. records carry the ``"sha256"`` of their ``.npz``: a format-2 record
   without it is damaged (not taken for format 1).

A record or an ``experiment.json`` of a format newer than ``FORMAT`` is
refused with a ``ValueError`` (upgrade avgreward), never repaired.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import re
import signal
import threading
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from avgreward.environments import check_env_id, peek_own_class
from avgreward.features import features_from_dict
from avgreward.files import atomic_write, fsync_directory, npz_bytes, sha256_hex, write_json
from avgreward.learners.registry import agent_from_dict, driver_for_kind
from avgreward.options import MAX_STEPS as _MAX_STEPS

# 1: the first records (with "format": 1; no record was ever written without its format).
# 2: run records carry the sha256 of their .npz (format 1 records are checked by reading).
FORMAT = 2

# The arrays of every run with steps (what Experiment reads); each learner's driver
# names the weights every run of it has (Driver.weight_names).
_RUN_ARRAYS = ("rewards", "rbar", "rbar_every", "final_rbar", "steps_done")


def _weight_names(kind) -> tuple:
    try:
        return driver_for_kind(kind).weight_names
    except ValueError:
        return ()

# What reading a damaged .npz raises (not MemoryError: a whole file too big
# for this machine is not damaged).
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error,
                NotImplementedError)


MAX_STEPS = _MAX_STEPS  # 2**53: step counts must stay exact as float64 (plot axes, bin ends)


CONFIG_KEYS = ("env", "steps", "agents", "bin_size", "features")


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


def run_name(agent_index: int, seed: int) -> str:
    """The file name (no suffix) of a run: ``a000-s0000``."""
    return f"a{agent_index:03d}-s{seed:04d}"


def utc_now() -> str:
    """The time now in UTC, ISO 8601 to the second (for records)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def signals_deferred():
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


def write_run(runs: Path, name: str, arrays: dict, record: dict) -> dict:
    """Write a run's arrays, then its record (with their checksum); return the record.

    Ctrl-C and SIGTERM wait until both files are whole.  On a write error
    (a full disk, say) the temporary files are removed and an ``OSError``
    naming the run is raised.
    """
    data = npz_bytes(arrays)
    record = {**record, "sha256": sha256_hex(data)}
    try:
        with signals_deferred():
            atomic_write(runs / f"{name}.npz", data)
            try:
                write_json(runs / f"{name}.json", record)
            except OSError:
                # Arrays without their record would be taken for a stale run.
                with contextlib.suppress(OSError):
                    (runs / f"{name}.npz").unlink()
                raise
    except OSError as err:
        raise OSError(err.errno, f"{err.strerror or err} (while writing the result of run "
                      f"{name}; finished runs are kept: run again to resume)",
                      err.filename) from err
    return record


def run_record(task: dict, **outcome) -> dict:
    """A run's JSON record: the task's settings and ``outcome`` (status, error, ...)."""
    return {
        "format": FORMAT, "agent_index": task["agent_index"], "seed": task["seed"],
        "env": task["env"], "steps": task["steps"], "bin_size": task["bin_size"],
        "agent": task["agent"], "features": task["features"], **outcome,
        "finished": utc_now(), "versions": task["versions"],
    }


@contextlib.contextmanager
def _open_npz(path: Path):
    """``np.load(path, allow_pickle=False)``, refusing what is not an ``.npz`` archive."""
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):  # a plain .npy
        raise ValueError("not an .npz archive")
    with data:
        yield data


def load_arrays(path: Path) -> dict:
    """A run's arrays; a ``ValueError`` names the file if it cannot be read."""
    return _read_npz(path, lambda data: {name: data[name] for name in data.files})


def load_array(path: Path, name: str) -> np.ndarray:
    """One of a run's arrays, read alone (the rewards are a third of a run's file)."""
    return _read_npz(path, lambda data: data[name])


def _read_npz(path, read):
    try:
        with _open_npz(path) as data:
            return read(data)
    except _READ_ERRORS as err:
        raise ValueError(f"cannot read {path} ({type(err).__name__}: {err}); running the "
                         "experiment again repairs it") from None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_config(path: Path) -> dict:
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


# Runs per setting (also avgreward.experiment.MAX_SEEDS): the lists are kept in memory.
MAX_SEEDS = 1_000_000


def _short(value, limit=80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _check_config(config) -> None:
    """Raise ``ValueError`` saying what is wrong with an ``experiment.json``'s contents."""
    if not isinstance(config, dict):
        raise ValueError(f"expected a JSON object, found {type(config).__name__}")
    missing = [k for k in (*CONFIG_KEYS, "seeds") if k not in config]
    if missing:
        raise ValueError(f"lacks {missing}")
    if _is_int(config.get("format")) and config["format"] > FORMAT:
        raise ValueError(f"format {config['format']} is newer than this avgreward reads "
                         f"({FORMAT}): upgrade avgreward")
    env, steps, bin_size = config["env"], config["steps"], config["bin_size"]
    if not isinstance(env, str) or not env:
        raise ValueError(f"env {env!r} is not an environment id")
    check_env_id(env)
    # Reading a folder imports nothing it names (a "module:id" would run that
    # module): an environment is resolved only if its class is known already, and a
    # gymnasium environment of another package is not made (plotting its results
    # must not need it installed, nor registered).
    env_cls = peek_own_class(env)
    if not _is_int(steps) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps {steps!r} is not a whole number from 1 to 2**53")
    if not _is_int(bin_size) or not 1 <= bin_size <= steps:
        raise ValueError(f"bin_size {bin_size!r} is not a whole number from 1 to steps ({steps})")
    seeds = config["seeds"]
    if (not isinstance(seeds, list) or len(seeds) > MAX_SEEDS
            or not all(_is_int(v) and 0 <= v < 2**63 for v in seeds)
            or len(set(seeds)) != len(seeds)):
        raise ValueError(f"seeds {_short(seeds)} is not a list of at most {MAX_SEEDS:,} distinct "
                         "whole numbers from 0 to 2**63 - 1")
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
        features = features_from_dict(config["features"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"features is not a valid tile coder ({type(err).__name__}: {err})"
                         ) from None
    if env_cls is not None and features.n_dims != env_cls.fused.obs_size:
        raise ValueError(f"features has {features.n_dims} dimension(s) but {env}'s "
                         f"observation has {env_cls.fused.obs_size}")


def _file_sha256(path: Path) -> str:
    """The sha256 of a file, read in blocks: a run's arrays may be large (``bin_size=1``)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_run_file(npz: Path, record: dict) -> str | None:
    """Why the ``.npz`` of a run cannot be used, or None if it is whole.

    It must match the checksum in its record (a record of format 1 has none)
    and, even then, load as :func:`load_arrays` reads it (``allow_pickle=False``)
    with the arrays a run of ``record["steps_done"]`` steps has: a matching
    checksum says only that the file is the one the record was written for.
    ``record`` has passed :func:`_check_record`.
    """
    if npz.is_dir():
        return "is a directory, not the run's arrays"
    digest = record.get("sha256")
    kept = {}
    try:
        if digest is not None and _file_sha256(npz) != digest:
            return "does not match the checksum in its record"
        with _open_npz(npz) as data:
            names = set(data.files)
            for name in data.files:  # one array in memory at a time
                array = data[name]
                if name in ("rewards", "steps_done"):
                    kept[name] = array
    except FileNotFoundError:
        return "missing (its record exists)"
    except _READ_ERRORS as err:
        return f"unreadable ({type(err).__name__}: {err})"
    done = record["steps_done"]
    if not done:
        return None
    agent = record.get("agent")
    kind = agent.get("kind") if isinstance(agent, dict) else None
    missing = [n for n in (*_RUN_ARRAYS, *_weight_names(kind)) if n not in names]
    if missing:
        return f"lacks arrays {missing} (has {sorted(names)})"
    steps_done = kept["steps_done"]
    if (steps_done.shape != () or steps_done.dtype.kind not in "iu"
            or int(steps_done) != done):
        return f"holds steps_done {_short(steps_done)}, its record {done}"
    rewards, bin_size = kept["rewards"], record.get("bin_size")
    if _is_int(bin_size) and bin_size >= 1:
        bins = -(-done // bin_size)
        if rewards.shape != (bins,) or rewards.dtype.kind != "f":
            return (f"holds reward bins of shape {rewards.shape} ({rewards.dtype}), not the "
                    f"{bins} of {done} steps")
    return None


def _record_format(record: dict) -> int:
    """The format of a run's record (:func:`_check_record` has refused a newer one)."""
    fmt = record.get("format")
    if fmt is None:
        raise ValueError("lacks its format version (every record carries one)")
    if not (_is_int(fmt) and 1 <= fmt <= FORMAT):
        raise ValueError(f"format {_short(fmt)} is not a format version")
    if fmt >= 2:
        digest = record.get("sha256")
        if digest is None:
            raise ValueError(f"lacks the sha256 of its arrays (a format {fmt} record "
                             "carries it)")
        if not (isinstance(digest, str) and re.fullmatch("[0-9a-f]{64}", digest)):
            raise ValueError(f"sha256 {_short(digest)} is not a checksum")
    return fmt


def _refuse_newer_format(record, json_path: Path) -> None:
    """A ``ValueError`` if the record claims a format newer than this avgreward reads."""
    fmt = record.get("format") if isinstance(record, dict) else None
    if _is_int(fmt) and fmt > FORMAT:
        raise ValueError(f"{json_path} is of format {fmt}, newer than this avgreward reads "
                         f"({FORMAT}): upgrade avgreward")


def _check_record(record, config: dict) -> tuple[int, int]:
    """A record's ``(agent_index, seed)``; ``ValueError`` if it is malformed."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, found {type(record).__name__}")
    i, seed = record.get("agent_index"), record.get("seed")
    if not (_is_int(i) and _is_int(seed) and 0 <= i < len(config["agents"]) and seed >= 0):
        raise ValueError(f"agent_index {i!r} or seed {seed!r} is not one of the experiment's")
    _record_format(record)
    if record.get("status") not in ("ok", "failed"):
        raise ValueError(f"status {record.get('status')!r} is neither 'ok' nor 'failed'")
    done = record.get("steps_done")
    if not (_is_int(done) and 0 <= done <= config["steps"]):
        raise ValueError(f"steps_done {done!r} is not a whole number from 0 to steps")
    wall_time = record.get("wall_time", 0.0)
    if not (isinstance(wall_time, (int, float)) and not isinstance(wall_time, bool)
            and math.isfinite(wall_time) and wall_time >= 0):
        raise ValueError(f"wall_time {wall_time!r} is not a number of seconds")
    for key in ("error", "failure"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise ValueError(f"{key} {record[key]!r} is not text")
    return i, seed


def _settings_mismatch(record: dict, config: dict, i: int) -> str | None:
    """How a run's settings differ from the experiment's, or None."""
    expected = {"env": config["env"], "steps": config["steps"], "bin_size": config["bin_size"],
                "agent": config["agents"][i], "features": config["features"]}
    for key, value in expected.items():
        if record.get(key) != value:
            return f"{key} {record.get(key)!r} in the run, {value!r} in experiment.json"
    return None


def _verify_run(json_path: Path, config: dict) -> RunRecord | CorruptRun:
    """The run recorded in ``json_path``, checked with its ``.npz``: whole, or why not.

    Raises
    ------
    ValueError
        If the record's settings differ from ``config`` (the file was edited,
        or the run belongs to another experiment), or it is of a format newer
        than this avgreward reads: neither is damage to repair.
    """
    npz = json_path.with_suffix(".npz")
    name = json_path.stem
    if json_path.is_dir():
        return CorruptRun(name, json_path, "is a directory, not the run's record")
    try:
        with open(json_path) as f:
            record = json.load(f)
    except (OSError, ValueError) as err:  # json.JSONDecodeError and UnicodeDecodeError too
        return CorruptRun(name, json_path, f"unreadable record ({err})")
    _refuse_newer_format(record, json_path)
    try:
        i, seed = _check_record(record, config)
    except ValueError as err:
        return CorruptRun(name, json_path, f"unreadable record ({err})")
    if name != run_name(i, seed):
        return CorruptRun(name, json_path, f"holds the record of run {run_name(i, seed)}")
    mismatch = _settings_mismatch(record, config, i)
    if mismatch is not None:
        raise ValueError(
            f"{json_path} was run with other settings than "
            f"{json_path.parent.parent / 'experiment.json'} says ({mismatch}): the file was "
            "edited, or the run belongs to another experiment; restore experiment.json, or "
            "move the run out of the directory")
    problem = _check_run_file(npz, record)
    if problem is not None:
        return CorruptRun(name, npz, problem)
    return RunRecord(
        agent_index=i, seed=seed, status=record["status"], error=record.get("error"),
        wall_time=float(record.get("wall_time", 0.0)), path=npz,
        failure=record.get("failure"), steps_done=record["steps_done"], record=record,
    )


def read_records(path: Path, config: dict) -> tuple[list[RunRecord], list[CorruptRun]]:
    """The runs recorded in ``path/runs``, verified (:func:`_verify_run`), and the damaged ones.

    Raises
    ------
    ValueError
        If a whole record's settings differ from ``experiment.json``'s (the
        file was edited, or the run belongs to another experiment): neither
        can be trusted, so nothing is read.  Also if a record is of a format
        newer than this avgreward reads.
    """
    runs, corrupt = [], []
    for json_path in sorted((path / "runs").glob("a*-s*.json")):
        run = _verify_run(json_path, config)
        (corrupt if isinstance(run, CorruptRun) else runs).append(run)
    return runs, corrupt


def finished_record(runs: Path, name: str) -> dict | None:
    """The record of run ``name`` if it is whole and final (ok, or diverged), else None.

    Whole as :func:`read_records` judges it (the same :func:`_verify_run`,
    against the directory's ``experiment.json``).
    """
    try:
        config = read_config(runs.parent)
        run = _verify_run(runs / f"{name}.json", config)
    except ValueError:
        return None
    if not isinstance(run, RunRecord) or not (run.status == "ok"
                                              or run.failure == "divergence"):
        return None
    return run.record


def _set_aside(path: Path) -> Path:
    """Rename ``path`` to a free ``NAME.corrupt`` (``NAME.corrupt-2``, ...); the new path."""
    for k in itertools.count(1):
        aside = path.with_name(f"{path.name}.corrupt" + (f"-{k}" if k > 1 else ""))
        if not aside.exists() and not aside.is_symlink():
            break
    os.rename(path, aside)
    fsync_directory(path.parent)
    return aside


def discard(path: Path) -> Path | None:
    """Remove a damaged file of a run; a directory in its place is moved aside, not deleted.

    Returns where a directory was moved (None for a file, or nothing there).
    """
    if path.is_dir() and not path.is_symlink():
        return _set_aside(path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return None
