"""Where a gymnasium environment stands, saved exactly and put back (continuing a Python-stepped run).

A gymnasium environment's internal state cannot in general be saved: it is
whatever its class keeps (a physics engine's memory, a renderer, a user's
objects).  It can be for environments whose whole state is known:

* classic control's ``CartPoleEnv``, ``PendulumEnv``, ``MountainCarEnv``,
  ``Continuous_MountainCarEnv`` and ``AcrobotEnv``, and this package's own
  environment classes: ``env.unwrapped.state`` (an array), a few scalars
  (CartPole's ``steps_beyond_terminated``) and the state of ``np_random``;
* inside wrappers that keep no state (this package's reward wrappers,
  gymnasium's API checks, ``ClipAction``, ``RescaleAction``) or whose state is
  a counter (``TimeLimit``: the steps of the current episode).

:func:`snapshot` saves those (the classes are matched exactly: a subclass
may keep more); for any other environment or wrapper it gives, in one line,
why the run cannot be continued.  :func:`put_back` resets the environment
(so that every wrapper starts from its reset) and then overwrites what was
saved, so the next ``env.step`` is the one the uninterrupted run would make.
"""

from __future__ import annotations

import gymnasium
import numpy as np

from avgreward.environments import own_env_id

__all__ = ["snapshot", "put_back"]


def _known_envs() -> dict:
    """Environment classes whose state is known: class -> its scalars besides ``state``."""
    from gymnasium.envs.classic_control import (
        AcrobotEnv,
        CartPoleEnv,
        Continuous_MountainCarEnv,
        MountainCarEnv,
        PendulumEnv,
    )

    return {CartPoleEnv: ("steps_beyond_terminated",), PendulumEnv: (), MountainCarEnv: (),
            Continuous_MountainCarEnv: (), AcrobotEnv: ()}


def _known_wrappers() -> dict:
    """Wrapper classes whose state is known: class -> its attributes that change."""
    from gymnasium.wrappers import (
        ClipAction,
        OrderEnforcing,
        PassiveEnvChecker,
        RescaleAction,
        TimeLimit,
    )

    from avgreward.wrappers import FailurePenalty, GoalBonus

    # OrderEnforcing's flag is set by the reset put_back makes; the API checks of the
    # first step are made once per run, not again on its continuation.
    return {TimeLimit: ("_elapsed_steps",), OrderEnforcing: (),
            PassiveEnvChecker: ("checked_step", "checked_data_reuse"),
            ClipAction: (), RescaleAction: (), GoalBonus: (), FailurePenalty: ()}


def _scalars(owner, names) -> dict:
    # Python ints and floats (or None): JSON, and equal after a round trip.
    values = {}
    for name in names:
        value = getattr(owner, name)
        values[name] = value.item() if isinstance(value, np.generic) else value
    return values


def snapshot(env, name: str) -> tuple[np.ndarray | None, dict | str]:
    """``(state, saved)`` of ``env`` (``name`` its id), or ``(None, why it cannot be saved)``.

    ``state`` is a copy of ``env.unwrapped.state`` as an array; ``saved``
    JSON data: ``{"env": class name, "attributes": {...}, "np_random": bit
    generator state, "wrappers": [[class name, {...}], ...] (outermost
    first), "tuple": whether the state was a tuple}``.
    """
    wrappers, layer = [], env
    known_wrappers = _known_wrappers()
    while isinstance(layer, gymnasium.Wrapper):
        names = known_wrappers.get(type(layer))
        if names is None:
            return None, (f"{name} is wrapped in {type(layer).__name__}, whose state avgreward "
                          "cannot save (only TimeLimit's and stateless wrappers' can)")
        wrappers.append([type(layer).__name__, _scalars(layer, names)])
        layer = layer.env
    cls = type(layer)
    names = _known_envs().get(cls, () if own_env_id(cls) is not None else None)
    if names is None:
        return None, (f"{name}: the state of a {cls.__name__} cannot be saved in general "
                      "(avgreward saves classic control's and its own environments, whose "
                      "state is env.unwrapped.state and np_random)")
    state = getattr(layer, "state", None)
    # MountainCar keeps a tuple of floats after its first step, an array after a reset.
    as_tuple = isinstance(state, tuple)
    if not isinstance(state, np.ndarray) and not as_tuple:
        return None, f"{name}: its state {type(state).__name__} is not an array"
    saved = {"env": cls.__name__, "attributes": _scalars(layer, names),
             "np_random": layer.np_random.bit_generator.state, "wrappers": wrappers,
             "tuple": as_tuple}
    return np.array(state, copy=True), saved


def put_back(env, name: str, state: np.ndarray, saved: dict, seed: int) -> None:
    """Reset ``env`` with ``seed``, then give it the ``state`` and ``saved`` of :func:`snapshot`.

    Raises
    ------
    ValueError
        If ``env`` is not the environment (the class, its wrappers) that was saved.
    """
    env.reset(seed=seed)
    now, here = snapshot(env, name)
    if now is None:
        raise ValueError(f"init: {here}")
    chain = [n for n, _ in here["wrappers"]] + [here["env"]]
    was = [n for n, _ in saved["wrappers"]] + [saved["env"]]
    if chain != was:
        raise ValueError(f"init: the saved run stepped {' < '.join(was)}, this environment is "
                         f"{' < '.join(chain)}: continue on the same (wrapped) environment")
    if now.shape != state.shape:
        raise ValueError(f"init: the saved state of {name} has shape {state.shape}, this "
                         f"one {now.shape}")
    # Only the attributes this environment's own snapshot has: a saved file names
    # data to put back, never which attributes to set.
    wanted = [values for _, values in here["wrappers"]] + [here["attributes"]]
    given = [values for _, values in saved["wrappers"]] + [saved["attributes"]]
    for layer_name, known, values in zip(chain, wanted, given):
        if set(values) != set(known):
            raise ValueError(f"init: the saved run's {layer_name} has the attributes "
                             f"{sorted(values)}, this one {sorted(known)}")
    layer = env
    for _, values in saved["wrappers"]:
        for attribute, value in values.items():
            setattr(layer, attribute, value)
        layer = layer.env
    for attribute, value in saved["attributes"].items():
        setattr(layer, attribute, value)
    # A copy: our own environments step their state array in place.
    layer.state = tuple(state) if saved.get("tuple") else np.array(state, copy=True)
    layer.np_random.bit_generator.state = saved["np_random"]
