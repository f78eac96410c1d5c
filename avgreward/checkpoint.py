"""Where a run of the fused loop stopped: what ``train(..., init=result)`` goes on from.

A run's :class:`RunState` holds everything the loop carries from one chunk to
the next: the environment's state and observation, the active features of
S, R-bar, the generator's state, every array of the learner's bundle
(weights, traces, scratch such as Sarsa's next action) and the current
episode's progress.  The chunked loop's contract (a run cut into chunks
gives bit for bit the result of one call) makes that the whole of it, so a
run of ``N`` steps continued for ``M`` more is one run of ``N + M`` steps,
bit for bit.

A run stepped from Python (:mod:`avgreward.stepwise`) keeps the same
record: its learner's arrays (with the action drawn for S), the features
of S, R-bar, the generator's state after exactly the draws it used, and in
``gym`` what :mod:`avgreward.env_snapshot` saved of the gymnasium
environment (its ``state`` array is ``env_state``).

:func:`state_files` and :func:`state_from_files` are a state as arrays and
JSON (``Result.save`` and the runner's run files), no pickle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RunState", "capture", "restore", "restore_params", "state_files",
           "state_from_files", "init_features"]


@dataclass
class RunState:
    """The loop's state at the end of a run (see the module's docstring).

    Attributes
    ----------
    steps_done : int
        Steps since the run's very first start (over every continuation).
    env_state, obs : ndarray of float64
        The environment's state array and observation of S.
    features : ndarray of int64
        The active features of S.
    rbar : float
        R-bar.
    rng : dict
        ``np.random.Generator.bit_generator.state`` (PCG64).
    params : dict of str to ndarray
        Every array of the learner's bundle, by field name.
    episode : tuple of (int, float, int)
        Steps of the current episode, its return and length so far (the
        loop's episode counter, then the return bookkeeping).
    gym : dict or None
        A Python-stepped run's environment beyond ``env_state`` (JSON: its
        class, scalars, ``np_random``'s state, its wrappers' counters); None
        for a run of the fused loop.
    episodes_done : int
        Episodes finished since the run's very first start (what a continued
        run's live metrics count on from; 0 in a state saved before it was kept).
    """

    steps_done: int
    env_state: np.ndarray
    obs: np.ndarray
    features: np.ndarray
    rbar: float
    rng: dict
    params: dict
    episode: tuple = (0, 0.0, 0)
    gym: dict | None = None
    episodes_done: int = 0


def capture(params, state, obs, idx, rbar_box, rng, episodes, steps_done,
            buffers=(), episodes_done=0) -> RunState:
    """The :class:`RunState` of a loop that has run ``steps_done`` steps (copies).

    The arrays named in ``buffers`` (episode buffers, a row per step) are
    kept up to the current episode's steps: the rest is the past episodes'.
    """
    rows = int(episodes.count[1])
    arrays = {name: (value[:rows] if name in buffers else value).copy()
              for name, value in params._asdict().items() if isinstance(value, np.ndarray)}
    return RunState(int(steps_done), state.copy(), obs.copy(), idx.copy(), float(rbar_box[0]),
                    rng.bit_generator.state, arrays,
                    (int(episodes.count[1]), float(episodes.partial_return),
                     int(episodes.partial_length)), episodes_done=int(episodes_done))


def restore(saved: RunState, params, state, obs, idx, rbar_box, rng, episodes,
            buffers=(), from_settings=()) -> None:
    """Put ``saved`` into a new run's freshly allocated arrays, or raise ValueError.

    Every array of ``params`` must have been saved with the same shape and
    dtype: a learner whose settings change its arrays (traces switched on,
    another ``n``) cannot go on from the saved ones.  Episode ``buffers`` (as
    :func:`capture`) go into the first rows of the new ones; the arrays named
    in ``from_settings`` are the settings' (built for this run), not restored.
    """
    if saved.gym is not None:
        raise ValueError(f"init: the saved run stepped {saved.gym['env']} from Python (through "
                         "wrappers); continue it on the same wrapped environment, not in the "
                         "fused loop")
    current = {name: value for name, value in params._asdict().items()
               if isinstance(value, np.ndarray) and name not in from_settings}
    saved_params = {k: v for k, v in saved.params.items() if k not in from_settings}
    rows = saved.episode[0]
    for name in buffers:
        old, new = saved.params.get(name), current.get(name)
        if old is not None and new is not None and (
                old.shape[0] != rows or new.shape[0] < rows or old.shape[1:] != new.shape[1:]):
            raise ValueError(f"init: the saved episode buffer {name!r} {list(old.shape)} does "
                             f"not fit this run's {list(new.shape)} (the episode in progress "
                             f"has {rows} steps)")
        if new is not None:
            current[name] = new[:rows]
    check_params(saved_params, current)
    for target, source, name in ((state, saved.env_state, "environment state"),
                                 (obs, saved.obs, "observation"), (idx, saved.features,
                                                                   "active features")):
        if target.shape != source.shape:
            raise ValueError(f"init: the saved {name} has shape {source.shape}, this "
                             f"environment's and features' {target.shape}")
    restore_params(saved_params, current)
    np.copyto(state, saved.env_state)
    np.copyto(obs, saved.obs)
    np.copyto(idx, saved.features)
    rbar_box[0] = saved.rbar
    rng.bit_generator.state = saved.rng
    episodes.count[1] = saved.episode[0]
    episodes.partial_return, episodes.partial_length = saved.episode[1], saved.episode[2]


def check_params(saved: dict, current: dict) -> None:
    """ValueError unless ``saved`` has every array of ``current``, shape and dtype alike."""
    if set(current) != set(saved):
        raise ValueError(f"init: the saved run's learner has the arrays {sorted(saved)}, "
                         f"this one {sorted(current)}: continue with the same learner")
    for name, value in current.items():
        old = saved[name]
        if old.shape != value.shape or old.dtype != value.dtype:
            raise ValueError(
                f"init: the learner's array {name!r} was saved as {old.dtype}{list(old.shape)} "
                f"but this run's is {value.dtype}{list(value.shape)}: settings that change "
                "the arrays (traces on or off, n, the actions or features) cannot continue a run")


def restore_params(saved: dict, current: dict) -> None:
    """Copy the ``saved`` arrays into the run's ``current`` ones (checked first)."""
    check_params(saved, current)
    for name, value in current.items():
        np.copyto(value, saved[name])


def state_files(state: RunState, weights: dict) -> tuple[dict, dict]:
    """``state`` as ``(arrays, record)``: arrays by name (``state/...``) and JSON data.

    The learner's arrays equal to a weight of the same name are left out
    (the weights are saved already): the record names them.
    """
    arrays = {"state/env_state": state.env_state, "state/obs": state.obs,
              "state/features": state.features}
    shared = [k for k, v in state.params.items() if k in weights
              and _same_array(v, np.asarray(weights[k]))]
    arrays.update({f"state/params/{k}": v for k, v in state.params.items() if k not in shared})
    record = {"steps_done": state.steps_done, "rbar": state.rbar, "rng": state.rng,
              "episode": list(state.episode), "params_in_weights": shared,
              "episodes_done": state.episodes_done}
    if state.gym is not None:
        record["gym"] = state.gym
    return arrays, record


def state_from_files(record: dict, arrays: dict, weights: dict) -> RunState:
    """The :class:`RunState` :func:`state_files` wrote (KeyError, ValueError if damaged)."""
    params = {k[len("state/params/"):]: v for k, v in arrays.items()
              if k.startswith("state/params/")}
    params.update({k: np.array(weights[k]) for k in record.get("params_in_weights", ())})
    np.random.default_rng().bit_generator.state = record["rng"]  # a valid PCG64 state?
    episode = record["episode"]
    return RunState(int(record["steps_done"]), arrays["state/env_state"], arrays["state/obs"],
                    arrays["state/features"], float(record["rbar"]), record["rng"], params,
                    (int(episode[0]), float(episode[1]), int(episode[2])), record.get("gym"),
                    int(record.get("episodes_done", 0)))


def _same_array(a, b) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def init_features(init, env_id, agent, features):
    """``features``, or ``init``'s when it is None; ValueError if ``init`` does not fit the run."""
    if init is None:
        return features
    if init.env_id != env_id:
        raise ValueError(f"init: the saved run is of {init.env_id}, not {env_id}")
    if type(agent) is not type(init.agent):
        raise ValueError(f"init: the saved run's agent is a {type(init.agent).__name__}, this "
                         f"one a {type(agent).__name__}; continue with the same kind")
    saved, given = getattr(init.agent, "ref", None), getattr(agent, "ref", None)
    if saved is not None and given is not None and saved != given:
        raise ValueError(f"init: the saved run's learner is {saved}, this one {given}; "
                         "continue with the same learner")
    if features is not None and features != init.features:
        raise ValueError(f"features: {features!r} differs from the saved run's "
                         f"{init.features!r}; leave features out to continue with the run's")
    return init.features
