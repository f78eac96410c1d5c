"""The short corridor with switched actions (Sutton & Barto, Example 13.1): episodic.

Four states in a row: 0 (start), 1, 2 and the goal G = 3 (terminal).  Action
0 = left, 1 = right.  In states 0 and 2 the actions move as named (left from
0 stays in 0); in state 1 they are switched (right moves to 0, left to 2).
Every step pays -1, including the one that enters G, which ends the episode.
Every state looks the same to the agent (the observation is the constant
0), so a linear softmax policy is one probability p of right in every state:
``v(start) = (2p - 4) / (p (1 - p))``, best at ``p = 2 - sqrt(2)`` (about
0.586, where v(start) is about -11.66).

:func:`corridor_step` is the one definition of the dynamics (the gymnasium
class and the fused loop both call it); :func:`corridor_model` writes the
same task down as an absorbing table for exact analysis.
"""

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
    "SHORT_CORRIDOR",
    "N_STATES",
    "GOAL",
    "corridor_reset",
    "corridor_step",
    "corridor_observe",
    "corridor_model",
    "corridor_start_value",
    "ShortCorridorEnv",
]

STATE_SIZE = 1
OBS_SIZE = 1
N_STATES = 4  # 0, 1, 2 and the goal
GOAL = 3
N_ACTIONS = 2
LEFT, RIGHT = 0, 1


@njit(cache=True)
def corridor_reset(state, u):
    """Start in state 0; ``u`` is unused."""
    state[0] = 0.0


@njit(cache=True)
def corridor_step(state, action, u, next_state):
    """One step: returns ``(reward, terminated)``; -1 every step, terminated on entering G.

    ``action`` is 0.0 (left) or 1.0 (right); ``u`` is unused (deterministic).
    """
    s = int(state[0])
    right = int(action) == RIGHT
    if s == 1:  # switched
        right = not right
    nxt = s + 1 if right else max(s - 1, 0)
    next_state[0] = float(nxt)
    return -1.0, nxt == GOAL


@njit(cache=True)
def corridor_observe(state, obs):
    """The same observation everywhere: the agent cannot tell the states apart."""
    obs[0] = 0.0


def corridor_model():
    """The exact absorbing model, written from the description (not from the step).

    Returns
    -------
    TabularModel
        ``P`` (4, 2, 4) with G absorbing, ``R`` (4, 2) = -1 outside G,
        ``start`` all on state 0, ``observations`` all 0, ``terminal = (3,)``.
    """
    P = np.zeros((N_STATES, N_ACTIONS, N_STATES))
    R = np.zeros((N_STATES, N_ACTIONS))
    moves = {0: {LEFT: 0, RIGHT: 1}, 1: {LEFT: 2, RIGHT: 0}, 2: {LEFT: 1, RIGHT: GOAL}}
    for s, by_action in moves.items():
        for a, nxt in by_action.items():
            P[s, a, nxt] = 1.0
            R[s, a] = -1.0
    P[GOAL, :, GOAL] = 1.0
    start = np.zeros(N_STATES)
    start[0] = 1.0
    return TabularModel(P=P, R=R, start=start, observations=np.zeros((N_STATES, OBS_SIZE)),
                        terminal=(GOAL,))


def corridor_start_value(p):
    """``v(start) = (2p - 4) / (p (1 - p))`` for the policy going right with probability ``p``."""
    return (2.0 * p - 4.0) / (p * (1.0 - p))


def _features():
    # One constant feature: theta[0, a] is action a's preference in every state,
    # the book's x(s, right) = (1, 0), x(s, left) = (0, 1).
    return one_hot(1)


#: The short corridor in the fused loop (episodic: the loop resets at G).
SHORT_CORRIDOR = FusedEnv(
    name="short corridor", reset=corridor_reset, step=corridor_step, observe=corridor_observe,
    state_size=STATE_SIZE, obs_size=OBS_SIZE, n_actions=N_ACTIONS, obs_low=0.0, obs_high=1.0,
    episodic=True, model=corridor_model, features=_features,
)

_CELL = 90
_MARGIN = 20
_WIDTH = N_STATES * _CELL + 2 * _MARGIN
_HEIGHT = _CELL + 2 * _MARGIN


class ShortCorridorEnv(gym.Env):
    """Short corridor with switched actions (Sutton & Barto, Example 13.1).

    ## Description

    States 0 (start), 1, 2 and the goal G in a row. In states 0 and 2 the
    actions move as named (left from 0 stays in 0); in state 1 they are
    switched. The agent observes nothing about the state, so the best it can
    do is to go right with a fixed probability (2 - sqrt(2), about 0.586).
    The dynamics is :func:`avgreward.envs.short_corridor.corridor_step`; :meth:`model`
    gives the exact absorbing table.

    ## Action Space

    ``Discrete(2)``: 0 left, 1 right (an int, a numpy integer or a
    one-element integer array; anything else raises ``ValueError``).

    ## Observation Space

    ``Box(0, 1, (1,), float64)``, always ``[0.0]``.

    ## Rewards

    -1 on every step, including the one that enters G.

    ## Starting State

    State 0; no random number drawn.

    ## Episode End

    ``terminated`` on entering G. Registered without a step limit (the
    book's experiments have none); a policy that almost never goes right
    makes episodes very long.

    ## Arguments

    | Argument      | Default | Meaning                                     |
    |---------------|---------|---------------------------------------------|
    | `render_mode` | None    | None or ``"rgb_array"`` (130 x 400 frames)  |
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    fused = SHORT_CORRIDOR
    state_size = STATE_SIZE
    obs_size = OBS_SIZE
    random_reset = False
    random_step = False
    n_actions = N_ACTIONS

    def __init__(self, render_mode=None):
        self.render_mode = check_render_mode(render_mode)
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = spaces.Box(0.0, 1.0, (OBS_SIZE,), dtype=np.float64)
        self.state = None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = np.empty(STATE_SIZE)
        corridor_reset(self.state, 0.0)
        return self._observation(), {}

    def step(self, action):
        require_reset(self.state)
        index = discrete_action(action, N_ACTIONS)
        reward, terminated = corridor_step(self.state, float(index), 0.0, self.state)
        return self._observation(), float(reward), bool(terminated), False, {}

    def _observation(self):
        obs = np.empty(OBS_SIZE)
        corridor_observe(self.state, obs)
        return obs

    def model(self):
        """Return the exact absorbing :class:`avgreward.envs.model.TabularModel`."""
        return corridor_model()

    def render(self):
        """An RGB frame: the four cells (state 1 marked as switched), G green, the agent red."""
        if self.render_mode is None:
            return None
        require_reset(self.state)
        img = _draw.blank(_HEIGHT, _WIDTH)
        current = int(self.state[0])
        for s in range(N_STATES):
            x0 = _MARGIN + s * _CELL
            fill = (170, 225, 170) if s == GOAL else (235, 205, 170) if s == 1 else (240, 240, 240)
            _draw.fill_rect(img, x0 + 3, _MARGIN + 3, x0 + _CELL - 3, _MARGIN + _CELL - 3, fill)
            if s == current:
                _draw.fill_circle(img, x0 + _CELL / 2.0, _MARGIN + _CELL / 2.0, _CELL / 4.0,
                                  (220, 40, 40))
        return img
