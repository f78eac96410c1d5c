"""A result on disk: :meth:`Result.save <avgreward.result.Result.save>` and :func:`load_result`.

A result is two files side by side, no pickle:

``<name>.npz``
    Every array: the rewards, R-bar trace, actions, weights, array-valued
    ``info`` entries, and the run's state for ``train(..., init=...)``
    (environment, features of S, the learner's arrays).
``<name>.json``
    The settings and scalars: environment, agent, seed, steps, feature map,
    R-bar, the generator's state, versions, and the sha256 of the ``.npz``,
    so that a damaged or mismatched pair is named, never read as data.

Both are written under temporary names and renamed, the ``.json`` last.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avgreward.checkpoint import RunState

if TYPE_CHECKING:
    from avgreward.result import Result

__all__ = ["save_result", "load_result", "result_paths"]

FORMAT = 1


def result_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(npz, json)`` of a result saved at ``path`` (with or without either suffix)."""
    path = Path(path)
    if path.suffix in (".npz", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".npz"), path.with_name(path.name + ".json")


def _jsonable(key, value):
    try:
        json.dumps(value)
    except TypeError:
        raise ValueError(f"info[{key!r}] = {value!r} is neither an array nor JSON data; a "
                         "result with it cannot be saved") from None
    return value


def _same_array(a, b) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def save_result(result: Result, path: str | os.PathLike) -> Path:
    """Write ``result`` to ``path.npz`` and ``path.json``; returns the ``.json``'s path.

    Raises
    ------
    ValueError
        If the result's agent is not one of the package's settings classes
        (a learner of :func:`avgreward.loop.run_learner`), or an ``info``
        value is neither an array nor JSON data.
    """
    from avgreward.runner.records import (
        _atomic_write,
        _features_to_dict,
        _sha256,
        _versions,
    )

    if not hasattr(result.agent, "to_dict"):
        raise ValueError(f"agent: only results of the package's agents can be saved, not of "
                         f"{result.agent!r}")
    arrays = {"rewards": result.rewards, "rbar": result.rbar, "rbar_steps": result.rbar_steps}
    if result.actions is not None:
        arrays["actions"] = result.actions
    arrays.update({f"weights/{k}": v for k, v in result.weights.items()})
    info = {}
    for key, value in result.info.items():
        if isinstance(value, np.ndarray):
            arrays[f"info/{key}"] = value
        else:
            info[key] = _jsonable(key, value.item() if isinstance(value, np.generic) else value)
    state = None
    if result.run_state is not None:
        s = result.run_state
        arrays.update({"state/env_state": s.env_state, "state/obs": s.obs,
                       "state/features": s.features})
        # The learner's weights are in weights/ already: saved once.
        shared = [k for k, v in s.params.items() if k in result.weights
                  and _same_array(v, np.asarray(result.weights[k]))]
        arrays.update({f"state/params/{k}": v for k, v in s.params.items() if k not in shared})
        state = {"steps_done": s.steps_done, "rbar": s.rbar, "rng": s.rng,
                 "episode": list(s.episode), "params_in_weights": shared}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    record = {
        "format": FORMAT, "env_id": result.env_id, "agent": result.agent.to_dict(complete=True),
        "seed": result.seed, "steps": result.steps, "final_rbar": result.final_rbar,
        "features": _features_to_dict(result.features), "wall_time": result.wall_time,
        "info": info, "run_state": state, "versions": _versions(), "sha256": _sha256(data),
    }
    npz, manifest = result_paths(path)
    npz.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(npz, data)
    _atomic_write(manifest, (json.dumps(record, indent=1) + "\n").encode())
    return manifest


def load_result(path: str | os.PathLike) -> Result:
    """The :class:`~avgreward.result.Result` saved at ``path`` by ``Result.save``.

    Parameters
    ----------
    path : str or path-like
        As given to ``save`` (the ``.npz`` or ``.json`` suffix may be given too).

    Returns
    -------
    Result
        Equal to the saved one, array for array; ``run_state`` too, so it can
        be continued with ``train(..., init=result)``.

    Raises
    ------
    FileNotFoundError
        If either file is missing.
    ValueError
        Naming the file, if it is damaged, of another result (its sha256
        differs), or of an unknown format.
    """
    from avgreward.learners.registry import agent_from_dict
    from avgreward.result import Result
    from avgreward.runner.records import _features_from_dict, _sha256

    npz, manifest = result_paths(path)
    for file in (manifest, npz):
        if not file.exists():
            raise FileNotFoundError(f"{file}: no such file (a result is a .json and a .npz "
                                    "written by Result.save)")
    try:
        record = json.loads(manifest.read_text())
        if not isinstance(record, dict):
            raise ValueError(f"expected a JSON object, found {type(record).__name__}")
        if record.get("format") != FORMAT:
            raise ValueError(f"format {record.get('format')!r}, this version reads {FORMAT}")
        data = npz.read_bytes()
        if _sha256(data) != record["sha256"]:
            raise ValueError(f"{npz.name} is not the file saved with it (its sha256 differs): "
                             "damaged or replaced")
        with np.load(io.BytesIO(data), allow_pickle=False) as files:
            arrays = {key: files[key] for key in files.files}
        agent = agent_from_dict(record["agent"])
        features = _features_from_dict(record["features"])
        weights = {k[len("weights/"):]: v for k, v in arrays.items() if k.startswith("weights/")}
        info = dict(record["info"])
        info.update({k[len("info/"):]: v for k, v in arrays.items() if k.startswith("info/")})
        state = None
        if record["run_state"] is not None:
            s = record["run_state"]
            params = {k[len("state/params/"):]: v for k, v in arrays.items()
                      if k.startswith("state/params/")}
            params.update({k: weights[k].copy() for k in s.get("params_in_weights", ())})
            np.random.default_rng().bit_generator.state = s["rng"]  # a valid PCG64 state?
            state = RunState(int(s["steps_done"]), arrays["state/env_state"],
                             arrays["state/obs"], arrays["state/features"], float(s["rbar"]),
                             s["rng"], params, (int(s["episode"][0]), float(s["episode"][1]),
                                                int(s["episode"][2])))
        return Result(
            env_id=record["env_id"], agent=agent, seed=int(record["seed"]),
            steps=int(record["steps"]), rewards=arrays["rewards"], rbar=arrays["rbar"],
            rbar_steps=arrays["rbar_steps"], final_rbar=float(record["final_rbar"]),
            weights=weights, features=features, actions=arrays.get("actions"),
            wall_time=float(record["wall_time"]), info=info, run_state=state)
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as error:
        detail = f"missing entry {error}" if isinstance(error, KeyError) else str(error)
        raise ValueError(f"{manifest} (with {npz.name}): not a readable result: {detail}"
                         ) from None
