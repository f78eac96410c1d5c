"""Declaring an environment for the fused training loop.

An environment runs in the fused loop (:mod:`avgreward.loop`) when its
gymnasium class carries a :class:`FusedEnv` as the class attribute
``fused``: three pure jitted functions over a small float64 state array, and
what the loop must know about them.  This package's environments are declared
exactly so (``avgreward.envs.pendulum.PENDULUM_SWINGUP`` and the others); nothing
central lists them.  The loop is compiled for each declared environment
separately (:mod:`avgreward.specialize`), with the environment's functions
compiled into it, and recompiled whenever a source file they come from
changes.

The three functions, each ``@numba.njit``:

``reset(state, u)``
    Write the start state into ``state`` (float64, ``state_size``); ``u`` is a
    uniform draw in [0, 1), drawn from the run's generator only if
    ``random_reset`` (else 0.0).
``step(state, action, u, next_state)``
    One step: ``action`` is the action index as a float (discrete) or the
    action itself (continuous); ``u`` a uniform draw if ``random_step`` (else
    0.0); write the next state into ``next_state`` (which may be ``state``
    itself) and return the reward, a float; if ``episodic``, return
    ``(reward, terminated)``.
``observe(state, obs)``
    Write the observation of ``state`` into ``obs`` (float64, ``obs_size``).

:class:`DeclaredEnv` is a gymnasium class over any declaration, for users who
do not want to write one: subclass it with ``fused = FusedEnv(...)``.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from avgreward.envs._common import (
    check_render_mode,
    continuous_action,
    discrete_action,
    require_reset,
)
from avgreward.envs._numba_cache import refresh_function_caches

if TYPE_CHECKING:
    from avgreward.envs.model import TabularModel

__all__ = ["FusedEnv", "DeclaredEnv", "fused_env_of", "check_step_returns"]

_SIGNATURES = {"reset": "state, u", "step": "state, action, u, next_state",
               "observe": "state, obs"}


def _is_jitted(function) -> bool:
    # numba's dispatchers (njit) have py_func; a plain Python function cannot run in the loop.
    return callable(function) and hasattr(function, "py_func")


@dataclass(frozen=True)
class FusedEnv:
    """A fused-loop environment: pure jitted functions and what the loop must know.

    Parameters
    ----------
    name : str
        A short name (used in messages and in the compiled kernels' file names).
    reset, step, observe : numba dispatchers
        The environment's ``@njit`` functions, as described in :mod:`avgreward.envs.declare`.
    state_size, obs_size : int
        Lengths of the state and observation arrays (at least 1).
    n_actions : int
        Number of discrete actions, or 0 for one continuous action.
    obs_low, obs_high : tuple of float
        Bounds of each observation dimension (finite), for the default tile coder.
    random_reset, random_step : bool, default False
        Whether ``reset``/``step`` use their uniform draw ``u``.
    episodic : bool, default False
        Whether ``step`` returns ``(reward, terminated)``; the loop then resets
        the environment inside the run after a terminating step.
    action_low, action_high : float, default -1.0, 1.0
        Bounds of a continuous action (the gymnasium class's ``Box``).
    model : callable, optional
        ``model()`` returns the exact :class:`avgreward.envs.model.TabularModel`.
    features : callable, optional
        ``features()`` returns the default feature map
        (:class:`avgreward.features.TileCoder`); without it, tile coding of
        ``[obs_low, obs_high]`` (:func:`avgreward.environments.default_tile_coder`).

    Raises
    ------
    ValueError
        Naming the field, if a function is not jitted or a size or bound is invalid.
    """

    name: str
    reset: Any
    step: Any
    observe: Any
    state_size: int
    obs_size: int
    n_actions: int
    obs_low: tuple
    obs_high: tuple
    random_reset: bool = False
    random_step: bool = False
    episodic: bool = False
    action_low: float = -1.0
    action_high: float = 1.0
    model: Callable | None = None
    features: Callable | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        for field in ("reset", "step", "observe"):
            if not _is_jitted(getattr(self, field)):
                raise ValueError(
                    f"{field} must be a numba-jitted function (@numba.njit), "
                    f"got {getattr(self, field)!r}"
                )
        for field, low in (("state_size", 1), ("obs_size", 1), ("n_actions", 0)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{field} must be an integer >= {low}, got {value!r}")
            object.__setattr__(self, field, int(value))
        for field in ("random_reset", "random_step", "episodic"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"{field} must be True or False, got {getattr(self, field)!r}")
        try:
            low = tuple(float(x) for x in np.broadcast_to(self.obs_low, (self.obs_size,)))
            high = tuple(float(x) for x in np.broadcast_to(self.obs_high, (self.obs_size,)))
        except (TypeError, ValueError):
            raise ValueError(
                f"obs_low and obs_high must be numbers or {self.obs_size} numbers, got "
                f"{self.obs_low!r} and {self.obs_high!r}"
            ) from None
        if not all(math.isfinite(a) and math.isfinite(b) and a < b for a, b in zip(low, high)):
            raise ValueError(
                f"obs_low and obs_high must be finite with obs_low < obs_high, got {low} and {high}"
            )
        object.__setattr__(self, "obs_low", low)
        object.__setattr__(self, "obs_high", high)
        bounds = (self.action_low, self.action_high)
        if not (all(isinstance(b, (int, float, np.integer, np.floating))
                    and not isinstance(b, (bool, np.bool_)) and math.isfinite(b) for b in bounds)
                and bounds[0] < bounds[1]):
            raise ValueError(
                f"action_low and action_high must be finite numbers with action_low < "
                f"action_high, got {bounds}"
            )
        object.__setattr__(self, "action_low", float(self.action_low))
        object.__setattr__(self, "action_high", float(self.action_high))
        for field, arity in (("reset", 2), ("step", 4), ("observe", 2)):
            params = inspect.signature(getattr(self, field).py_func).parameters
            if len(params) != arity:
                raise ValueError(
                    f"{field} must take {arity} arguments ({_SIGNATURES[field]}), "
                    f"takes {len(params)}: ({', '.join(params)})"
                )
        for field in ("model", "features"):
            if getattr(self, field) is not None and not callable(getattr(self, field)):
                raise ValueError(f"{field} must be callable or None, got {getattr(self, field)!r}")
        # Before anything compiles them (the gymnasium class or the fused loop): a
        # helper edited in another file must not stay compiled in from numba's cache.
        refresh_function_caches((self.reset, self.step, self.observe))


def fused_env_of(env_class: type) -> FusedEnv | None:
    """The :class:`FusedEnv` declared by a gymnasium class (attribute ``fused``), or None."""
    fused = getattr(env_class, "fused", None)
    return fused if isinstance(fused, FusedEnv) else None


class DeclaredEnv(gym.Env):
    """A gymnasium environment over a :class:`FusedEnv` (subclass it, set ``fused``).

    Observations are float64 arrays in ``Box(obs_low, obs_high)``; actions
    ``Discrete(n_actions)``, or ``Box(action_low, action_high, (1,))`` for a
    continuous action (outside values are passed on to ``step``, which clips
    them if it should).  The uniform draws of ``reset`` and ``step`` come from
    ``self.np_random``.  ``terminated`` is the step's own for an episodic
    environment, else always False; ``truncated`` is always False.

    Examples
    --------
    >>> class MyEnv(DeclaredEnv):          # doctest: +SKIP
    ...     fused = FusedEnv(name="mine", reset=..., step=..., observe=..., ...)
    >>> gymnasium.register("MyEnv-v0", entry_point=MyEnv, max_episode_steps=None)
    """

    metadata = {"render_modes": []}
    fused: FusedEnv

    def __init__(self, render_mode: str | None = None):
        if render_mode is not None:
            check_render_mode(render_mode)
            raise ValueError(f"render_mode: {type(self).__name__} does not render")
        spec = fused_env_of(type(self))
        if spec is None:
            raise TypeError(f"{type(self).__name__} must set the class attribute fused = FusedEnv(...)")
        self._spec = spec
        self.observation_space = spaces.Box(np.array(spec.obs_low), np.array(spec.obs_high),
                                            dtype=np.float64)
        if spec.n_actions:
            self.action_space = spaces.Discrete(spec.n_actions)
        else:
            self.action_space = spaces.Box(np.array([spec.action_low]),
                                           np.array([spec.action_high]), dtype=np.float64)
        self.state = None

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: ``fused.reset`` on a new state (``seed`` reseeds ``np_random``)."""
        super().reset(seed=seed)
        spec = self._spec
        self.state = np.zeros(spec.state_size)
        spec.reset(self.state, float(self.np_random.random()) if spec.random_reset else 0.0)
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One step of ``fused.step``: ``(observation, reward, terminated, False, {})``."""
        require_reset(self.state)
        spec = self._spec
        if spec.n_actions:
            value = float(discrete_action(action, spec.n_actions))
        else:
            value = continuous_action(action, spec.action_low, spec.action_high)
        u = float(self.np_random.random()) if spec.random_step else 0.0
        out = spec.step(self.state, value, u, self.state)
        reward, terminated = (out if spec.episodic else (out, False))
        return self._observation(), float(reward), bool(terminated), False, {}

    def _observation(self):
        obs = np.empty(self._spec.obs_size)
        self._spec.observe(self.state, obs)
        return obs

    def model(self) -> TabularModel:
        """The exact model (:class:`~avgreward.envs.model.TabularModel`), if declared."""
        if self._spec.model is None:
            raise NotImplementedError(f"{self._spec.name} declares no exact model")
        return self._spec.model()


def check_step_returns(fused: FusedEnv) -> None:
    """Compile ``fused.step`` for the loop's argument types; refuse a wrong return type.

    A continuing environment's step returns the reward (a number), an episodic
    one's ``(reward, terminated)``.  Called before the loop is compiled for
    ``fused`` (:mod:`avgreward.specialize`), so that a mistake is named here
    rather than deep in numba's typing of the loop.

    Raises
    ------
    ValueError
        Naming ``step`` and what it returned (or why it did not compile).
    """
    from numba import types
    from numba.core.errors import NumbaError

    array = types.float64[::1]
    signature = (array, types.float64, types.float64, array)
    try:
        fused.step.compile(signature)
        returned = fused.step.overloads[signature].signature.return_type
    except NumbaError as error:
        raise ValueError(f"{fused.name}: step does not compile for the loop's arguments "
                         f"(state and next_state float64 arrays, action and u floats): "
                         f"{str(error).splitlines()[0]}") from None
    if fused.episodic:
        good = (isinstance(returned, types.BaseTuple) and len(returned) == 2
                and isinstance(returned[0], types.Number)
                and isinstance(returned[1], types.Boolean))
        wanted = "(reward, terminated), a number and a bool, since episodic=True"
    else:
        good = isinstance(returned, types.Number) and not isinstance(returned, types.Boolean)
        wanted = "the reward, a number (an episodic step: declare episodic=True)"
    if not good:
        raise ValueError(f"{fused.name}: step must return {wanted}; it returns {returned}")
