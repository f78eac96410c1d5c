"""An experiment's directory: the lock, its creation (``new``), its settings checked and merged.

The directory is locked (``DIR/.lock``, ``flock``) from before its
``experiment.json`` is read until the runs end, so two processes never
check, merge or write one experiment at once; with ``new``, concurrent
starts each get a directory of their own.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
from pathlib import Path

from avgreward.files import package_versions
from avgreward.runner.records import (
    CONFIG_KEYS,
    FORMAT,
    discard,
    read_config,
    utc_now,
)

# One logger for the whole runner: what users filter or capture.
log = logging.getLogger("avgreward.experiment")


# How the caller asks for a new directory, in its own words: ``new=True`` from the
# Python API, ``--new`` from the command line (set by avgreward.cli, see asking_for_new).
_ASK_FOR_NEW = contextvars.ContextVar("avgreward_ask_for_new", default="new=True")


@contextlib.contextmanager
def asking_for_new(words: str):
    """Within the block, the directory's errors tell how to ask for a new one as ``words``."""
    token = _ASK_FOR_NEW.set(words)
    try:
        yield
    finally:
        _ASK_FOR_NEW.reset(token)


class ExperimentBusyError(RuntimeError):
    """Another process is running an experiment in the same directory right now."""


def _describe_changes(old: dict, new: dict) -> list[str]:
    changes = []
    for key in ("env", "steps", "bin_size"):
        if old[key] != new[key]:
            changes.append(f"{key} {old[key]!r} -> {new[key]!r}")
    if old["features"] != new["features"]:
        diff = [f"{k} {old['features'].get(k)} -> {new['features'].get(k)}"
                for k in dict.fromkeys([*old["features"], *new["features"]])
                if old["features"].get(k) != new["features"].get(k)]
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
            f"directory (or ask for a new one: {_ASK_FOR_NEW.get()})")


class DirectoryLock:
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


def lock_directory(out: Path, new: bool) -> tuple[Path, DirectoryLock]:
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
        lock = DirectoryLock(candidate)
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


def merged_config(out: Path, config: dict, seeds: list[int]) -> dict:
    """The directory's experiment.json after this run: new, or checked and merged.

    Called under the lock, so that no other process writes it in between.
    """
    if not (out / "experiment.json").exists():
        _refuse_foreign(out)
        return {"format": FORMAT, **config, "seeds": list(seeds), "created": utc_now(),
                "versions": package_versions()}
    existing = read_config(out)
    changes = _describe_changes({k: existing[k] for k in CONFIG_KEYS}, config)
    if changes:
        raise ValueError(
            f"{out} holds an experiment with other settings ({'; '.join(changes)}); "
            "rerun with the same settings to resume it, or ask for a new directory "
            f"({_ASK_FOR_NEW.get()})")
    merged = dict(existing)
    merged["seeds"] = list(existing["seeds"]) + [s for s in seeds if s not in existing["seeds"]]
    merged["format"] = max(FORMAT, existing.get("format", 1))
    return merged


def remove_partial_files(out: Path) -> None:
    """Temporary files of writes that never finished, and arrays without a record.

    A directory named as a run's arrays (without a record) is moved aside
    (:func:`avgreward.runner.records.discard`), so that the run can be written.
    """
    for directory in (out, out / "runs"):
        for tmp in directory.glob("*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
    for npz in (out / "runs").glob("*.npz"):
        if not npz.with_suffix(".json").exists():
            with contextlib.suppress(OSError):
                aside = discard(npz)  # a directory is moved aside, never deleted
                if aside is not None:
                    log.warning("%s: a directory without a run's record, moved aside to %s",
                                npz, aside.name)
