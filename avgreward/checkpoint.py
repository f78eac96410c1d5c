"""Where a run of the fused loop stopped: what ``train(..., init=result)`` goes on from.

A run's :class:`RunState` holds everything the loop carries from one chunk to
the next: the environment's state and observation, the active features of
S, R-bar, the generator's state, every array of the learner's bundle
(weights, traces, scratch such as Sarsa's next action) and the current
episode's progress.  The chunked loop's contract (a run cut into chunks
gives bit for bit the result of one call) makes that the whole of it, so a
run of ``N`` steps continued for ``M`` more is one run of ``N + M`` steps,
bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RunState", "capture", "restore"]


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
    """

    steps_done: int
    env_state: np.ndarray
    obs: np.ndarray
    features: np.ndarray
    rbar: float
    rng: dict
    params: dict
    episode: tuple = (0, 0.0, 0)


def capture(params, state, obs, idx, rbar_box, rng, episodes, steps_done) -> RunState:
    """The :class:`RunState` of a loop that has run ``steps_done`` steps (copies)."""
    arrays = {name: value.copy() for name, value in params._asdict().items()
              if isinstance(value, np.ndarray)}
    return RunState(int(steps_done), state.copy(), obs.copy(), idx.copy(), float(rbar_box[0]),
                    rng.bit_generator.state, arrays,
                    (int(episodes.count[1]), float(episodes.partial_return),
                     int(episodes.partial_length)))


def restore(saved: RunState, params, state, obs, idx, rbar_box, rng, episodes) -> None:
    """Put ``saved`` into a new run's freshly allocated arrays, or raise ValueError.

    Every array of ``params`` must have been saved with the same shape and
    dtype: a learner whose settings change its arrays (traces switched on,
    another ``n``) cannot go on from the saved ones.
    """
    current = {name: value for name, value in params._asdict().items()
               if isinstance(value, np.ndarray)}
    if set(current) != set(saved.params):
        raise ValueError(f"init: the saved run's learner has the arrays {sorted(saved.params)}, "
                         f"this one {sorted(current)}: continue with the same learner")
    for name, value in current.items():
        old = saved.params[name]
        if old.shape != value.shape or old.dtype != value.dtype:
            raise ValueError(
                f"init: the learner's array {name!r} was saved as {old.dtype}{list(old.shape)} "
                f"but this run's is {value.dtype}{list(value.shape)}: settings that change "
                "the arrays (traces on or off, n, the actions or features) cannot continue a run")
    for target, source, name in ((state, saved.env_state, "environment state"),
                                 (obs, saved.obs, "observation"), (idx, saved.features,
                                                                   "active features")):
        if target.shape != source.shape:
            raise ValueError(f"init: the saved {name} has shape {source.shape}, this "
                             f"environment's and features' {target.shape}")
    for name, value in current.items():
        np.copyto(value, saved.params[name])
    np.copyto(state, saved.env_state)
    np.copyto(obs, saved.obs)
    np.copyto(idx, saved.features)
    rbar_box[0] = saved.rbar
    rng.bit_generator.state = saved.rng
    episodes.count[1] = saved.episode[0]
    episodes.partial_return, episodes.partial_length = saved.episode[1], saved.episode[2]
