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

What an environment was made with is saved too and compared, never put
back: its constructor's arguments (``gymnasium.make``'s keyword arguments,
the defaults filled in; on an instance made without ``gymnasium.make``, the
attributes that bear an argument's name, ``g`` or ``_sutton_barto_reward``)
and its time limit.  Continuing on an environment made otherwise (another
``g``, other arms of a bandit, another ``max_episode_steps``) is refused,
naming the argument: the state would fit and the run would go on silently
in another task.
"""

from __future__ import annotations

import inspect

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


def _json(value):
    """``value`` as JSON data that compares equal after a round trip (else its repr)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    return repr(value)


_MISSING = object()


def _attribute(owner, name):
    """``owner``'s data attribute ``name`` or ``_name``, else ``_MISSING``."""
    for attr in (name, "_" + name):
        try:  # a user's property may raise anything: then the argument is unknown
            value = getattr(owner, attr)
        except Exception:
            continue
        if not callable(value):
            return value
    return _MISSING


def arguments(env) -> dict:
    """What ``env`` was made with, by argument name (JSON): see the module docstring.

    Names that cannot be known (an instance made without ``gymnasium.make``
    that keeps no attribute of the argument's name) are left out.
    """
    base = env.unwrapped
    spec = getattr(base, "spec", None)
    given = None if spec is None else dict(spec.kwargs)
    try:
        params = list(inspect.signature(type(base).__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        params = []
    found = {}
    for param in params:
        # render_mode draws, it does not change the task
        if param.name == "render_mode" or param.kind in (param.VAR_POSITIONAL,
                                                          param.VAR_KEYWORD):
            continue
        if given is not None:
            value = given.get(param.name, param.default)
            if value is param.empty:
                continue
        else:
            value = _attribute(base, param.name)
            if value is _MISSING:
                continue
        found[param.name] = _json(value)
    if given is not None:  # a **kwargs constructor's
        named = {param.name for param in params}
        found.update({k: _json(v) for k, v in given.items()
                      if k not in named and k != "render_mode"})
    layer = env
    while isinstance(layer, gymnasium.Wrapper):
        if isinstance(layer, gymnasium.wrappers.TimeLimit):
            found["max_episode_steps"] = int(layer._max_episode_steps)
            break
        layer = layer.env
    return found


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
             "tuple": as_tuple, "arguments": arguments(env)}
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
    # A run saved before arguments were kept has none to compare.
    _check_arguments(name, saved.get("arguments", {}), here["arguments"])
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


def _check_arguments(name, was: dict, now: dict) -> None:
    """ValueError naming the first argument ``name`` was made with otherwise than saved."""
    for key in sorted(set(was) & set(now)):
        if was[key] != now[key]:
            raise ValueError(f"init: the saved run's {name} was made with {key}={was[key]!r}, "
                             f"this one with {key}={now[key]!r}: continue on an environment "
                             f"made with the same arguments (gymnasium.make(..., "
                             f"{key}={was[key]!r}))")
