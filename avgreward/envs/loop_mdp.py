"""The loop MDP: a choice at S between two deterministic loops of 5 steps.

States: 0 = S, 1..4 the left loop, 5..8 the right loop. Only S has a choice
(action 0 = left, 1 = right); elsewhere every action moves on around the
loop. Left pays +1 on the step leaving S (rate 1/5); right pays +2 on the
step from 8 back into S (rate 2/5).

:func:`loop_mdp_step` is the one definition of the dynamics (used by the
gymnasium class and the fused loop); :func:`loop_mdp_model` writes the same
task down as a table, from the description, for exact analysis and tests.
"""

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numba import njit

from avgreward.envs import _draw
from avgreward.envs._common import check_render_mode, discrete_action, require_reset
from avgreward.envs.declare import FusedEnv
from avgreward.envs.model import TabularModel
from avgreward.features import one_hot

__all__ = [
    "LOOP_MDP",
    "STATE_SIZE",
    "OBS_SIZE",
    "N_STATES",
    "N_ACTIONS",
    "LEFT",
    "RIGHT",
    "loop_mdp_reset",
    "loop_mdp_step",
    "loop_mdp_observe",
    "loop_mdp_model",
    "LoopMDPEnv",
]

STATE_SIZE = 1
OBS_SIZE = 1
N_STATES = 9
N_ACTIONS = 2
LEFT = 0
RIGHT = 1


@njit(cache=True)
def loop_mdp_reset(state, u):
    """Write the start state S (index 0) into ``state``; ``u`` is unused."""
    state[0] = 0.0


@njit(cache=True)
def loop_mdp_step(state, action, u, next_state):
    """One step of the loop MDP.

    Parameters
    ----------
    state : ndarray of float64, shape (1,)
        ``state[0]`` is the state index 0..8 as a float.
    action : float
        0.0 = left, 1.0 = right; only matters in S.
    u : float
        Unused (the task is deterministic).
    next_state : ndarray of float64, shape (1,)
        Receives the next state index; may be the same array as ``state``.

    Returns
    -------
    float
        +1 on leaving S to the left, +2 on the step from 8 into S, else 0.
    """
    s = int(state[0])
    reward = 0.0
    if s == 0:
        if int(action) == 0:
            nxt = 1
            reward = 1.0
        else:
            nxt = 5
    elif s == 4:
        nxt = 0
    elif s == 8:
        nxt = 0
        reward = 2.0
    else:
        nxt = s + 1
    next_state[0] = float(nxt)
    return reward


@njit(cache=True)
def loop_mdp_observe(state, obs):
    """Write the observation (the state index itself) into ``obs[0]``."""
    obs[0] = state[0]


def loop_mdp_model():
    """Return the exact model of the loop MDP.

    Returns
    -------
    TabularModel
        ``P`` (9, 2, 9), ``R`` (9, 2), ``start`` (9,) (all mass on S) and
        ``observations`` (9, 1) with ``observations[s, 0] = s``.
    """
    n = N_STATES
    P = np.zeros((n, N_ACTIONS, n))
    R = np.zeros((n, N_ACTIONS))
    left_loop = [0, 1, 2, 3, 4, 0]
    right_loop = [0, 5, 6, 7, 8, 0]
    # In S the action picks the loop; on a loop both actions follow it.
    P[0, LEFT, 1] = 1.0
    P[0, RIGHT, 5] = 1.0
    R[0, LEFT] = 1.0
    for loop in (left_loop, right_loop):
        for s, s_next in zip(loop[1:-1], loop[2:]):
            P[s, :, s_next] = 1.0
    R[8, :] = 2.0
    start = np.zeros(n)
    start[0] = 1.0
    observations = np.arange(n, dtype=np.float64).reshape(n, OBS_SIZE)
    return TabularModel(P=P, R=R, start=start, observations=observations)


def _features():
    return one_hot(N_STATES)


#: The loop MDP in the fused loop: the state index as a one-hot feature.
LOOP_MDP = FusedEnv(
    name="loop MDP", reset=loop_mdp_reset, step=loop_mdp_step, observe=loop_mdp_observe,
    state_size=STATE_SIZE, obs_size=OBS_SIZE, n_actions=N_ACTIONS, obs_low=0.0,
    obs_high=float(N_STATES - 1), model=loop_mdp_model, features=_features,
)


_WIDTH, _HEIGHT = 480, 260
_LOOP_RADIUS = 100.0
_NODE_RADIUS = 18.0


def _node_positions():
    """Pixel centres of the 9 states: two rings of 5 that touch at S.

    Left loop S, 1, 2, 3, 4 on the left ring (leaving S upwards), right loop
    S, 5, 6, 7, 8 on the right ring (leaving S downwards): a figure eight.
    """
    cx, cy = _WIDTH / 2.0, _HEIGHT / 2.0
    pos = np.empty((N_STATES, 2))
    pos[0] = (cx, cy)
    for side, first in ((-1.0, 1), (1.0, 5)):
        ring_x = cx + side * _LOOP_RADIUS
        start_angle = 0.0 if side < 0 else math.pi  # S is the ring point nearest the centre
        for k in range(1, 5):
            angle = start_angle - side * 2.0 * math.pi * k / 5.0
            pos[first + k - 1] = (
                ring_x + _LOOP_RADIUS * math.cos(angle),
                cy + _LOOP_RADIUS * math.sin(angle) * side,
            )
    return pos


class LoopMDPEnv(gym.Env):
    """Two deterministic loops of 5 steps that share the start state S.

    ## Description

    The agent starts in S and chooses a loop. The left loop
    (S -> 1 -> 2 -> 3 -> 4 -> S) pays +1 on the step leaving S; the right
    loop (S -> 5 -> 6 -> 7 -> 8 -> S) pays +2 on the step from 8 back into
    S. Average reward: 0.2 always-left, 0.4 always-right; with discounting,
    left is preferred below gamma = 2^(-1/4). The dynamics is
    :func:`avgreward.envs.loop_mdp.loop_mdp_step`; :meth:`model` gives the exact table.

    ## Action Space

    ``Discrete(2)``; an int, a numpy integer or a one-element integer array.

    | Num | Action                                  |
    |-----|-----------------------------------------|
    | 0   | left (only matters in S)                |
    | 1   | right (only matters in S)               |

    Anything else raises ``ValueError``.

    ## Observation Space

    ``Discrete(9)``: the state index as a Python int (fully observed).
    0 = S, 1..4 the left loop, 5..8 the right loop.

    ## Rewards

    +1 for leaving S to the left, +2 for the step from 8 into S, 0 otherwise.

    ## Starting State

    S (index 0); deterministic, no random number drawn.

    ## Episode End

    Never: ``terminated`` and ``truncated`` are always False and the
    registered environment has no step limit.

    ## Arguments

    | Argument      | Default | Meaning                                     |
    |---------------|---------|---------------------------------------------|
    | `render_mode` | None    | None or ``"rgb_array"`` (260 x 480 frames)  |

    Calling ``step`` or ``render`` before ``reset`` raises
    ``gymnasium.error.ResetNeeded``. The true state is the float64 array
    ``env.unwrapped.state`` (None before the first reset).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    fused = LOOP_MDP
    state_size = STATE_SIZE
    obs_size = OBS_SIZE
    random_reset = False
    random_step = False
    n_actions = N_ACTIONS

    def __init__(self, render_mode=None):
        self.render_mode = check_render_mode(render_mode)
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = spaces.Discrete(N_STATES)
        self.state = None

    def reset(self, *, seed=None, options=None):
        """Reset to S; no random number is drawn.

        Returns
        -------
        observation : int
            0 (the index of S).
        info : dict
            Empty.
        """
        super().reset(seed=seed)
        state = np.empty(STATE_SIZE, dtype=np.float64)
        loop_mdp_reset(state, 0.0)
        self.state = state
        return self._observation(), {}

    def step(self, action):
        """Take action 0 (left) or 1 (right).

        Returns
        -------
        observation : int
        reward : float
        terminated, truncated : bool
            Always False.
        info : dict
            Empty.
        """
        require_reset(self.state)
        index = discrete_action(action, N_ACTIONS)
        reward = loop_mdp_step(self.state, float(index), 0.0, self.state)
        return self._observation(), float(reward), False, False, {}

    def _observation(self):
        obs = np.empty(OBS_SIZE, dtype=np.float64)
        loop_mdp_observe(self.state, obs)
        return int(obs[0])

    def model(self):
        """Return the exact :class:`TabularModel` (see :func:`loop_mdp_model`)."""
        return loop_mdp_model()

    def render(self):
        """Return an RGB frame (260 x 480 uint8) if ``render_mode="rgb_array"``, else None.

        The two loops are rings of 5 nodes touching at S (centre, drawn larger);
        the rewarding transitions (S -> 1 and 8 -> S) are thick green arcs, and
        the current state is filled red.
        """
        if self.render_mode is None:
            return None
        require_reset(self.state)
        img = _draw.blank(_HEIGHT, _WIDTH)
        cx, cy = _WIDTH / 2.0, _HEIGHT / 2.0
        _draw.ring(img, cx - _LOOP_RADIUS, cy, _LOOP_RADIUS, 3, (150, 150, 150))
        _draw.ring(img, cx + _LOOP_RADIUS, cy, _LOOP_RADIUS, 3, (150, 150, 150))
        pos = _node_positions()
        # Chords for the rewarding steps, thicker for the larger reward.
        _draw.thick_line(img, *pos[0], *pos[1], 6, (60, 170, 60))
        _draw.thick_line(img, *pos[8], *pos[0], 12, (60, 170, 60))
        current = int(self.state[0])
        for s in range(N_STATES):
            radius = _NODE_RADIUS * (1.3 if s == 0 else 1.0)
            _draw.fill_circle(img, *pos[s], radius, (0, 0, 0))
            fill = (220, 40, 40) if s == current else (255, 255, 255)
            _draw.fill_circle(img, *pos[s], radius - 3, fill)
        return img
