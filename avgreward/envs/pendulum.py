"""Pendulum swing-up: pure jitted dynamics and its two gymnasium wrappers.

The physics is written once, in :func:`pendulum_step_torque`; the discrete and
continuous kernels only turn an action into a torque, and the gymnasium
classes only validate, keep the state array and draw frames. The fused
training loop calls the same kernels (declared in :data:`PENDULUM_SWINGUP`
and :data:`PENDULUM_SWINGUP_CONTINUOUS`).

State and observation: ``(beta, betadot)``; ``beta`` in [-pi, pi) is the angle
(0 = upright), ``betadot`` the angular velocity in [-2 pi, 2 pi].
"""

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numba import njit

from avgreward.envs import _draw
from avgreward.envs._common import (
    check_render_mode,
    continuous_action,
    discrete_action,
    require_reset,
)
from avgreward.envs.declare import FusedEnv
from avgreward.features import pendulum_tile_coder

__all__ = [
    "PENDULUM_SWINGUP",
    "PENDULUM_SWINGUP_CONTINUOUS",
    "STATE_SIZE",
    "OBS_SIZE",
    "DT",
    "GRAVITY",
    "MASS",
    "LENGTH",
    "MAX_TORQUE",
    "MAX_SPEED",
    "DISCRETE_TORQUES",
    "pendulum_reset",
    "pendulum_step_torque",
    "pendulum_discrete_step",
    "pendulum_continuous_step",
    "pendulum_observe",
    "PendulumSwingUpEnv",
    "PendulumSwingUpContinuousEnv",
]

STATE_SIZE = 2
OBS_SIZE = 2

DT = 0.05
GRAVITY = 9.8
MASS = 1.0 / 3.0
LENGTH = 1.5
MAX_TORQUE = 3.0
MAX_SPEED = 2.0 * math.pi
DISCRETE_TORQUES = (-1.0, 0.0, 1.0)


@njit(cache=True)
def pendulum_reset(state, u):
    """Write the start state (hanging down, at rest) into ``state``.

    Parameters
    ----------
    state : ndarray of float64, shape (2,)
        Overwritten with ``(-pi, 0)``.
    u : float
        Unused: the start is deterministic (kept for the common kernel signature).
    """
    state[0] = -np.pi
    state[1] = 0.0


@njit(cache=True)
def pendulum_step_torque(state, torque, next_state):
    """Advance the pendulum by one step of ``DT`` under ``torque``.

    Parameters
    ----------
    state : ndarray of float64, shape (2,)
        Current ``(beta, betadot)``.
    torque : float
        Applied torque; clipped to [-3, 3]. Must not be NaN (the gymnasium
        classes reject NaN and infinities before calling this).
    next_state : ndarray of float64, shape (2,)
        Receives the next state; may be the same array as ``state``.

    Returns
    -------
    float
        The reward ``-|beta'|`` of the next state.

    Notes
    -----
    Semi-implicit Euler in the order of the specification: velocity first,
    then the angle with the new velocity, wrap the angle, and restart from
    hanging down if the velocity left [-2 pi, 2 pi].
    """
    a = min(max(torque, -MAX_TORQUE), MAX_TORQUE)
    beta = state[0]
    betadot = state[1]
    betadot = betadot + 0.75 * (a + MASS * LENGTH * GRAVITY * np.sin(beta)) / (
        MASS * LENGTH * LENGTH
    ) * DT
    beta = beta + betadot * DT
    shifted = beta + np.pi
    if not (shifted >= 0.0 and shifted < 2.0 * np.pi):
        # Only when the angle crossed the wrap (rare): the same value as
        # always applying %, which is the identity on [0, 2 pi).
        shifted = shifted % (2.0 * np.pi)
    beta = shifted - np.pi
    if betadot < -MAX_SPEED or betadot > MAX_SPEED:
        beta = -np.pi
        betadot = 0.0
    next_state[0] = beta
    next_state[1] = betadot
    return -abs(beta)


@njit(cache=True)
def pendulum_discrete_step(state, action, u, next_state):
    """Step with a discrete action index: 0, 1, 2 mean torque -1, 0, +1.

    Parameters
    ----------
    state : ndarray of float64, shape (2,)
    action : float
        Action index as a float (0.0, 1.0 or 2.0).
    u : float
        Unused (the dynamics is deterministic).
    next_state : ndarray of float64, shape (2,)
        May be the same array as ``state``.

    Returns
    -------
    float
        The reward.
    """
    return pendulum_step_torque(state, action - 1.0, next_state)


@njit(cache=True)
def pendulum_continuous_step(state, action, u, next_state):
    """Step with a continuous torque ``action`` (clipped to [-3, 3]).

    Parameters
    ----------
    state : ndarray of float64, shape (2,)
    action : float
        The torque.
    u : float
        Unused (the dynamics is deterministic).
    next_state : ndarray of float64, shape (2,)
        May be the same array as ``state``.

    Returns
    -------
    float
        The reward.
    """
    return pendulum_step_torque(state, action, next_state)


@njit(cache=True)
def pendulum_observe(state, obs):
    """Write the observation ``(beta, betadot)`` (the full state) into ``obs``."""
    obs[0] = state[0]
    obs[1] = state[1]


_OBS_LOW = np.array([-math.pi, -MAX_SPEED], dtype=np.float64)
_OBS_HIGH = np.array([math.pi, MAX_SPEED], dtype=np.float64)


def _features():
    return pendulum_tile_coder()


#: The discrete swing-up in the fused loop (torques -1, 0, +1 by action index).
PENDULUM_SWINGUP = FusedEnv(
    name="pendulum swing-up", reset=pendulum_reset, step=pendulum_discrete_step,
    observe=pendulum_observe, state_size=STATE_SIZE, obs_size=OBS_SIZE, n_actions=3,
    obs_low=tuple(_OBS_LOW), obs_high=tuple(_OBS_HIGH), features=_features,
)
#: The continuous swing-up in the fused loop (torque clipped to [-3, 3]).
PENDULUM_SWINGUP_CONTINUOUS = FusedEnv(
    name="pendulum swing-up continuous", reset=pendulum_reset, step=pendulum_continuous_step,
    observe=pendulum_observe, state_size=STATE_SIZE, obs_size=OBS_SIZE, n_actions=0,
    obs_low=tuple(_OBS_LOW), obs_high=tuple(_OBS_HIGH), action_low=-MAX_TORQUE,
    action_high=MAX_TORQUE, features=_features,
)

_SCREEN = 400
_ROD_PIXELS = 150.0


class _PendulumBase(gym.Env):
    """Shared state handling, observation and rendering of the two pendulum envs."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": round(1.0 / DT)}

    state_size = STATE_SIZE
    obs_size = OBS_SIZE
    random_reset = False
    random_step = False

    def __init__(self, render_mode=None):
        self.render_mode = check_render_mode(render_mode)
        self.observation_space = spaces.Box(_OBS_LOW, _OBS_HIGH, dtype=np.float64)
        self.state = None
        self.last_torque = 0.0

    def reset(self, *, seed=None, options=None):
        """Reset to hanging down at rest; no random number is drawn.

        Parameters
        ----------
        seed : int, optional
            Seeds ``self.np_random`` (unused by this deterministic task, but
            seeded for the gymnasium contract).
        options : dict, optional
            Ignored.

        Returns
        -------
        observation : ndarray of float64, shape (2,)
        info : dict
            Empty.
        """
        super().reset(seed=seed)
        state = np.empty(STATE_SIZE, dtype=np.float64)
        pendulum_reset(state, 0.0)
        self.state = state
        self.last_torque = 0.0
        return self._observation(), {}

    def _observation(self):
        obs = np.empty(OBS_SIZE, dtype=np.float64)
        pendulum_observe(self.state, obs)
        return obs

    def render(self):
        """Return an RGB frame (400 x 400 uint8) if ``render_mode="rgb_array"``, else None.

        The rod is drawn at its angle (0 points up, -pi hangs down; positive
        angles lean to the right), with the pivot in the centre. The bar at
        the bottom shows the last torque (to the right for positive torque,
        full length at 3).
        """
        if self.render_mode is None:
            return None
        require_reset(self.state)
        img = _draw.blank(_SCREEN, _SCREEN)
        c = _SCREEN / 2.0
        beta = float(self.state[0])
        tip_x = c + _ROD_PIXELS * math.sin(beta)
        tip_y = c - _ROD_PIXELS * math.cos(beta)
        _draw.ring(img, c, c, _ROD_PIXELS, 2, (220, 220, 220))
        _draw.fill_circle(img, c, c - _ROD_PIXELS, 5, (120, 200, 120))  # upright target
        _draw.thick_line(img, c, c, tip_x, tip_y, 14, (204, 77, 77))
        _draw.fill_circle(img, tip_x, tip_y, 12, (160, 50, 50))
        _draw.fill_circle(img, c, c, 6, (0, 0, 0))
        bar_y = _SCREEN - 20.0
        _draw.thick_line(img, c - _ROD_PIXELS, bar_y, c + _ROD_PIXELS, bar_y, 2, (200, 200, 200))
        torque = min(max(self.last_torque, -MAX_TORQUE), MAX_TORQUE)
        if torque != 0.0:
            end = c + _ROD_PIXELS * torque / MAX_TORQUE
            _draw.fill_rect(img, c, bar_y - 6, end, bar_y + 6, (60, 90, 200))
        _draw.fill_rect(img, c - 1, bar_y - 10, c + 1, bar_y + 10, (0, 0, 0))
        return img


class PendulumSwingUpEnv(_PendulumBase):
    """Underpowered pendulum swing-up with three torques (continuing task).

    ## Description

    A pendulum hanging from a fixed pivot starts hanging down and must be
    swung up and balanced upright. The torque is too weak to lift it
    directly, so it must rock back and forth first. Semi-implicit Euler with
    ``dt = 0.05``, ``g = 9.8``, ``m = 1/3``, ``l = 3/2``::

        betadot <- betadot + 0.75 * (a + m*l*g*sin(beta)) / (m*l*l) * dt
        beta    <- beta + betadot * dt,  wrapped into [-pi, pi)

    If the velocity leaves [-2 pi, 2 pi] the pendulum restarts hanging down
    at rest. The dynamics is :func:`avgreward.envs.pendulum.pendulum_discrete_step`.

    ## Action Space

    ``Discrete(3)``; an int, a numpy integer or a one-element integer array.

    | Num | Action            |
    |-----|-------------------|
    | 0   | torque -1         |
    | 1   | torque 0          |
    | 2   | torque +1         |

    Anything else raises ``ValueError``.

    ## Observation Space

    ``Box([-pi, -2 pi], [pi, 2 pi], float64)``, a new array on every call.

    | Num | Observation               | Min   | Max  |
    |-----|---------------------------|-------|------|
    | 0   | angle beta (0 = upright)  | -pi   | pi   |
    | 1   | angular velocity betadot  | -2 pi | 2 pi |

    ## Rewards

    ``-|beta|`` of the state after the step: 0 upright, -pi hanging down.

    ## Starting State

    ``(beta, betadot) = (-pi, 0)``; deterministic, no random number drawn.

    ## Episode End

    Never: ``terminated`` and ``truncated`` are always False and the
    registered environment has no step limit.

    ## Arguments

    | Argument      | Default | Meaning                                     |
    |---------------|---------|---------------------------------------------|
    | `render_mode` | None    | None or ``"rgb_array"`` (400 x 400 frames)  |

    ```python
    >>> import gymnasium as gym
    >>> env = gym.make("avgreward.envs:avgreward/PendulumSwingUp-v0")
    >>> obs, info = env.reset(seed=0)
    ```

    Calling ``step`` or ``render`` before ``reset`` raises
    ``gymnasium.error.ResetNeeded``. The true state is the float64 array
    ``env.unwrapped.state`` (None before the first reset).
    """

    fused = PENDULUM_SWINGUP
    n_actions = 3

    def __init__(self, render_mode=None):
        super().__init__(render_mode=render_mode)
        self.action_space = spaces.Discrete(3)

    def step(self, action):
        """Apply the torque of action index ``action`` for one step.

        Returns
        -------
        observation : ndarray of float64, shape (2,)
        reward : float
        terminated, truncated : bool
            Always False.
        info : dict
            Empty.
        """
        require_reset(self.state)
        index = discrete_action(action, 3)
        reward = pendulum_discrete_step(self.state, float(index), 0.0, self.state)
        self.last_torque = DISCRETE_TORQUES[index]
        return self._observation(), float(reward), False, False, {}


class PendulumSwingUpContinuousEnv(_PendulumBase):
    """Underpowered pendulum swing-up with a continuous torque (continuing task).

    ## Description

    The pendulum of :class:`PendulumSwingUpEnv` (same physics, same kernel
    :func:`avgreward.envs.pendulum.pendulum_step_torque`), with the torque chosen
    freely in [-3, 3]: even the largest torque cannot hold the pendulum
    horizontal (``m*l*g = 4.9 > 3``), so swinging up still needs rocking.

    ## Action Space

    ``Box([-3], [3], float64)``: a real number, or an array (or list) of
    shape () or (1,). Finite torques outside [-3, 3] are clipped to it;
    NaN, infinities, non-numbers and other shapes raise ``ValueError``.
    The space is float64 so that the float64 actions of the project's
    Gaussian actor are members of it (a float32 box would reject them).

    | Num | Action | Min | Max |
    |-----|--------|-----|-----|
    | 0   | torque | -3  | 3   |

    ## Observation Space

    ``Box([-pi, -2 pi], [pi, 2 pi], float64)``: ``(beta, betadot)``.

    ## Rewards

    ``-|beta|`` of the state after the step.

    ## Starting State

    ``(beta, betadot) = (-pi, 0)``; deterministic, no random number drawn.

    ## Episode End

    Never: ``terminated`` and ``truncated`` are always False and the
    registered environment has no step limit.

    ## Arguments

    | Argument      | Default | Meaning                                     |
    |---------------|---------|---------------------------------------------|
    | `render_mode` | None    | None or ``"rgb_array"`` (400 x 400 frames)  |

    Calling ``step`` or ``render`` before ``reset`` raises
    ``gymnasium.error.ResetNeeded``.
    """

    fused = PENDULUM_SWINGUP_CONTINUOUS
    n_actions = 0

    def __init__(self, render_mode=None):
        super().__init__(render_mode=render_mode)
        self.action_space = spaces.Box(
            np.array([-MAX_TORQUE]), np.array([MAX_TORQUE]), dtype=np.float64
        )

    def step(self, action):
        """Apply torque ``action`` (clipped to [-3, 3]) for one step.

        Returns
        -------
        observation : ndarray of float64, shape (2,)
        reward : float
        terminated, truncated : bool
            Always False.
        info : dict
            Empty.
        """
        require_reset(self.state)
        torque = continuous_action(action, -MAX_TORQUE, MAX_TORQUE)
        reward = pendulum_continuous_step(self.state, torque, 0.0, self.state)
        self.last_torque = min(max(torque, -MAX_TORQUE), MAX_TORQUE)
        return self._observation(), float(reward), False, False, {}
