"""The aliased gridworld: a 5-cell corridor where the best policy is stochastic.

::

    c0  c1  c2  c3  c4      top row: the agent's cells
    X   ##  $   ##  X       below: skull, wall, money, wall, skull

The agent sees only the walls around its cell (N, E, S, W), so c1 and c3
look the same. Going S from c0 or c4 (skull, -1) or from c2 (money, +1)
restarts the agent on a cell drawn uniformly from {c0, c1, c3, c4}.

:func:`gridworld_step` is the one definition of the dynamics; it takes the
uniform draw ``u`` it may need as an argument (drawn every step by the
caller, used only on a restart). :func:`gridworld_model` writes the task down
as a table, from the description, for exact analysis and tests.
"""

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numba import njit

from avgreward.envs import _draw
from avgreward.envs._common import check_render_mode, discrete_action, require_reset
from avgreward.envs.declare import FusedEnv
from avgreward.envs.model import TabularModel
from avgreward.features import binary_pattern

__all__ = [
    "ALIASED_GRIDWORLD",
    "ALIASED_GRIDWORLD_EPISODIC",
    "AliasedGridworldEpisodicEnv",
    "gridworld_episodic_step",
    "gridworld_episodic_observe",
    "gridworld_episodic_model",
    "STATE_SIZE",
    "OBS_SIZE",
    "N_CELLS",
    "N_ACTIONS",
    "NORTH",
    "EAST",
    "SOUTH",
    "WEST",
    "START_CELLS",
    "WALLS",
    "gridworld_reset",
    "gridworld_step",
    "gridworld_observe",
    "gridworld_model",
    "AliasedGridworldEnv",
]

STATE_SIZE = 1
OBS_SIZE = 4
N_CELLS = 5
N_ACTIONS = 4
NORTH, EAST, SOUTH, WEST = 0, 1, 2, 3
START_CELLS = (0, 1, 3, 4)

# Wall bits (N, E, S, W) of each top-row cell: what the agent observes.
WALLS = np.array(
    [
        [1.0, 0.0, 0.0, 1.0],  # c0: skull below
        [1.0, 0.0, 1.0, 0.0],  # c1
        [1.0, 0.0, 0.0, 0.0],  # c2: money below
        [1.0, 0.0, 1.0, 0.0],  # c3 (looks like c1)
        [1.0, 1.0, 0.0, 0.0],  # c4: skull below
    ]
)
WALLS.setflags(write=False)


@njit(cache=True)
def _start_cell(u):
    # [0, 1, 3, 4][int(u * 4)] without a list: indices 2 and 3 skip c2.
    k = int(u * 4.0)
    if k > 3:
        k = 3
    if k >= 2:
        return k + 1
    return k


@njit(cache=True)
def gridworld_reset(state, u):
    """Write a start cell drawn from {c0, c1, c3, c4} into ``state``.

    Parameters
    ----------
    state : ndarray of float64, shape (1,)
        ``state[0]`` receives the cell index.
    u : float
        Uniform draw in [0, 1); the cell is ``[0, 1, 3, 4][int(u * 4)]``.
    """
    state[0] = float(_start_cell(u))


@njit(cache=True)
def gridworld_step(state, action, u, next_state):
    """One step of the aliased gridworld.

    Parameters
    ----------
    state : ndarray of float64, shape (1,)
        ``state[0]`` is the cell 0..4 as a float.
    action : float
        0.0 N, 1.0 E, 2.0 S, 3.0 W.
    u : float
        Uniform draw in [0, 1) for the restart cell; ignored unless the
        agent enters a skull or the money.
    next_state : ndarray of float64, shape (1,)
        Receives the next cell; may be the same array as ``state``.

    Returns
    -------
    float
        -1 for entering a skull (S from c0 or c4), +1 for the money (S from
        c2), else 0.
    """
    c = int(state[0])
    a = int(action)
    nxt = c  # a move into a wall leaves the agent where it is
    reward = 0.0
    if a == 1:
        if c < 4:
            nxt = c + 1
    elif a == 3:
        if c > 0:
            nxt = c - 1
    elif a == 2:
        if c == 0 or c == 4:
            reward = -1.0
            nxt = _start_cell(u)
        elif c == 2:
            reward = 1.0
            nxt = _start_cell(u)
    next_state[0] = float(nxt)
    return reward


@njit(cache=True)
def gridworld_observe(state, obs):
    """Write the wall bits (N, E, S, W) of the current cell into ``obs`` (0.0/1.0)."""
    c = int(state[0])
    for i in range(OBS_SIZE):
        obs[i] = WALLS[c, i]


def gridworld_model():
    """Return the exact model of the aliased gridworld.

    Returns
    -------
    TabularModel
        ``P`` (5, 4, 5), ``R`` (5, 4), ``start`` (5,) uniform on
        {c0, c1, c3, c4}, and ``observations`` (5, 4): the wall bits.
    """
    n = N_CELLS
    restart = np.zeros(n)
    restart[list(START_CELLS)] = 1.0 / len(START_CELLS)
    below = {0: -1.0, 2: 1.0, 4: -1.0}  # what lies south of each open cell
    offsets = {NORTH: None, EAST: 1, SOUTH: None, WEST: -1}
    P = np.zeros((n, N_ACTIONS, n))
    R = np.zeros((n, N_ACTIONS))
    for c in range(n):
        for a in range(N_ACTIONS):
            if WALLS[c, a]:
                P[c, a, c] = 1.0
            elif a == SOUTH:
                R[c, a] = below[c]
                P[c, a] = restart
            else:
                P[c, a, c + offsets[a]] = 1.0
    return TabularModel(P=P, R=R, start=restart.copy(), observations=WALLS.copy())


def _features():
    return binary_pattern(OBS_SIZE)


#: The aliased gridworld in the fused loop: random start cell, one-hot of the wall pattern.
ALIASED_GRIDWORLD = FusedEnv(
    name="aliased gridworld", reset=gridworld_reset, step=gridworld_step,
    observe=gridworld_observe, state_size=STATE_SIZE, obs_size=OBS_SIZE, n_actions=N_ACTIONS,
    obs_low=0.0, obs_high=1.0, random_reset=True, random_step=True, model=gridworld_model,
    features=_features,
)


_CELL = 80
_MARGIN = 20
_WIDTH = N_CELLS * _CELL + 2 * _MARGIN
_HEIGHT = 2 * _CELL + 2 * _MARGIN
_GROUND_COLORS = {0: (235, 170, 170), 2: (170, 225, 170), 4: (235, 170, 170)}


def _draw_skull(img, cx, cy):
    _draw.fill_rect(img, cx - 14, cy + 4, cx + 14, cy + 26, (235, 235, 225))  # jaw
    _draw.fill_circle(img, cx, cy - 4, 24, (235, 235, 225))
    _draw.fill_circle(img, cx - 9, cy - 6, 7, (0, 0, 0))
    _draw.fill_circle(img, cx + 9, cy - 6, 7, (0, 0, 0))
    _draw.fill_rect(img, cx - 3, cy + 4, cx + 3, cy + 10, (0, 0, 0))  # nose
    for dx in (-8, 0, 8):
        _draw.fill_rect(img, cx + dx - 1, cy + 16, cx + dx + 1, cy + 26, (0, 0, 0))


def _draw_money(img, cx, cy):
    _draw.fill_circle(img, cx, cy, 26, (200, 150, 0))
    _draw.fill_circle(img, cx, cy, 21, (250, 205, 40))
    _draw.fill_rect(img, cx - 2, cy - 15, cx + 2, cy + 15, (200, 150, 0))
    _draw.fill_rect(img, cx - 9, cy - 9, cx + 9, cy - 6, (200, 150, 0))
    _draw.fill_rect(img, cx - 9, cy + 6, cx + 9, cy + 9, (200, 150, 0))


class AliasedGridworldEnv(gym.Env):
    """A partially observed corridor whose best policy is stochastic.

    ## Description

    The agent moves along the top row c0..c4 of a two-row grid. Below c0
    and c4 are skulls, below c2 the money, below c1 and c3 walls. Entering
    a skull or the money pays -1 or +1 and puts the agent on a start cell
    drawn uniformly from {c0, c1, c3, c4} (never c2); the task continues.
    The agent observes only the walls around its cell, so c1 and c3 are
    aliased: every deterministic policy of the observation has reward rate
    about 0 or less, while moving E/W at random in the aliased cells earns
    2/9. The dynamics is :func:`avgreward.envs.aliased_gridworld.gridworld_step`;
    :meth:`model` gives the exact table.

    ## Action Space

    ``Discrete(4)``; an int, a numpy integer or a one-element integer array.
    A move into a wall leaves the agent where it is.

    | Num | Action |
    |-----|--------|
    | 0   | North  |
    | 1   | East   |
    | 2   | South  |
    | 3   | West   |

    Anything else raises ``ValueError``.

    ## Observation Space

    ``MultiBinary(4)`` (int8 array, new on every call): walls to the
    N, E, S, W of the current cell.

    | Cell | Observation  |
    |------|--------------|
    | c0   | (1, 0, 0, 1) |
    | c1   | (1, 0, 1, 0) |
    | c2   | (1, 0, 0, 0) |
    | c3   | (1, 0, 1, 0) |
    | c4   | (1, 1, 0, 0) |

    ## Rewards

    -1 for South from c0 or c4 (skull), +1 for South from c2 (money),
    0 otherwise.

    ## Starting State

    A cell drawn uniformly from {c0, c1, c3, c4}: ``reset`` draws one
    ``u = self.np_random.random()`` and starts in ``[0, 1, 3, 4][int(u * 4)]``.
    Every ``step`` draws one more ``u`` (used only on a restart), so the
    random stream is the one the fused training loop uses.

    ## Episode End

    Never: ``terminated`` and ``truncated`` are always False and the
    registered environment has no step limit.

    ## Arguments

    | Argument      | Default | Meaning                                     |
    |---------------|---------|---------------------------------------------|
    | `render_mode` | None    | None or ``"rgb_array"`` (200 x 440 frames)  |

    Calling ``step`` or ``render`` before ``reset`` raises
    ``gymnasium.error.ResetNeeded``. The true state is the float64 array
    ``env.unwrapped.state`` (None before the first reset).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    fused = ALIASED_GRIDWORLD
    state_size = STATE_SIZE
    obs_size = OBS_SIZE
    random_reset = True
    random_step = True
    n_actions = N_ACTIONS

    def __init__(self, render_mode=None):
        self.render_mode = check_render_mode(render_mode)
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = spaces.MultiBinary(OBS_SIZE)
        self.state = None

    def reset(self, *, seed=None, options=None):
        """Reset to a random start cell (one draw from ``self.np_random``).

        Returns
        -------
        observation : ndarray of int8, shape (4,)
        info : dict
            Empty.
        """
        super().reset(seed=seed)
        state = np.empty(STATE_SIZE, dtype=np.float64)
        gridworld_reset(state, self.np_random.random())
        self.state = state
        return self._observation(), {}

    def step(self, action):
        """Take action 0 N, 1 E, 2 S or 3 W (one draw from ``self.np_random``).

        Returns
        -------
        observation : ndarray of int8, shape (4,)
        reward : float
        terminated, truncated : bool
            Always False.
        info : dict
            Empty.
        """
        require_reset(self.state)
        index = discrete_action(action, N_ACTIONS)
        u = self.np_random.random()
        reward = gridworld_step(self.state, float(index), u, self.state)
        return self._observation(), float(reward), False, False, {}

    def _observation(self):
        obs = np.empty(OBS_SIZE, dtype=np.float64)
        gridworld_observe(self.state, obs)
        return obs.astype(np.int8)

    def model(self):
        """Return the exact :class:`TabularModel` (see :func:`gridworld_model`)."""
        return gridworld_model()

    def render(self):
        """Return an RGB frame (200 x 440 uint8) if ``render_mode="rgb_array"``, else None.

        Top row: the five cells (the aliased c1 and c3 shaded grey) and the
        agent as a blue disc. Bottom row: skull, wall, money, wall, skull.
        """
        if self.render_mode is None:
            return None
        require_reset(self.state)
        img = _draw.blank(_HEIGHT, _WIDTH)
        top, bottom = _MARGIN, _MARGIN + _CELL
        for c in range(N_CELLS):
            x0 = _MARGIN + c * _CELL
            shade = (205, 205, 205) if c in (1, 3) else (255, 255, 255)
            _draw.fill_rect(img, x0, top, x0 + _CELL, bottom, shade)
            ground = _GROUND_COLORS.get(c, (70, 70, 70))  # the walls below c1, c3 are dark
            _draw.fill_rect(img, x0, bottom, x0 + _CELL, bottom + _CELL, ground)
            cx, cy = x0 + _CELL / 2.0, bottom + _CELL / 2.0
            if c in (0, 4):
                _draw_skull(img, cx, cy)
            elif c == 2:
                _draw_money(img, cx, cy)
        black = (0, 0, 0)
        for c in range(N_CELLS + 1):
            x = _MARGIN + c * _CELL
            _draw.thick_line(img, x, top, x, bottom + _CELL, 3, black)
        for y in (top, bottom, bottom + _CELL):
            _draw.thick_line(img, _MARGIN, y, _WIDTH - _MARGIN, y, 3, black)
        cell = int(self.state[0])
        _draw.fill_circle(
            img, _MARGIN + (cell + 0.5) * _CELL, top + _CELL / 2.0, _CELL * 0.3, (40, 80, 220)
        )
        return img


# --- the episodic form (the lecture's original): the money or a skull ends the episode ---------

TERMINAL = N_CELLS  # index 5: the episode is over


@njit(cache=True)
def gridworld_episodic_step(state, action, u, next_state):
    """One step of the episodic aliased gridworld: returns ``(reward, terminated)``.

    South from c0 or c4 (a skull, -1) or from c2 (the money, +1) ends the
    episode in the terminal state 5; any other move is the continuing task's
    (reward 0).  ``u`` is unused.
    """
    c = int(state[0])
    if int(action) == SOUTH and (c == 0 or c == 2 or c == 4):
        next_state[0] = float(TERMINAL)
        return (1.0 if c == 2 else -1.0), True
    return gridworld_step(state, action, u, next_state), False


@njit(cache=True)
def gridworld_episodic_observe(state, obs):
    """The wall bits of the cell, as the continuing task's; all 0 in the terminal state."""
    c = int(state[0])
    for i in range(OBS_SIZE):
        obs[i] = WALLS[c, i] if c < N_CELLS else 0.0


def gridworld_episodic_model():
    """The exact absorbing model: 6 states (c0..c4 and the terminal 5), 4 actions.

    Returns
    -------
    TabularModel
        ``start`` uniform on {c0, c1, c3, c4}; ``terminal = (5,)``; the
        terminal state's observation is all 0.
    """
    continuing = gridworld_model()
    n = N_CELLS + 1
    P = np.zeros((n, N_ACTIONS, n))
    R = np.zeros((n, N_ACTIONS))
    P[:N_CELLS, :, :N_CELLS] = continuing.P
    R[:N_CELLS] = continuing.R
    for c in (0, 2, 4):  # south into a skull or the money: the episode ends
        P[c, SOUTH] = 0.0
        P[c, SOUTH, TERMINAL] = 1.0
    P[TERMINAL, :, TERMINAL] = 1.0
    start = np.zeros(n)
    start[list(START_CELLS)] = 1.0 / len(START_CELLS)
    observations = np.zeros((n, OBS_SIZE))
    observations[:N_CELLS] = WALLS
    return TabularModel(P=P, R=R, start=start, observations=observations, terminal=(TERMINAL,))


#: The episodic aliased gridworld in the fused loop: random start, one-hot of the wall pattern.
ALIASED_GRIDWORLD_EPISODIC = FusedEnv(
    name="aliased gridworld episodic", reset=gridworld_reset, step=gridworld_episodic_step,
    observe=gridworld_episodic_observe, state_size=STATE_SIZE, obs_size=OBS_SIZE,
    n_actions=N_ACTIONS, obs_low=0.0, obs_high=1.0, random_reset=True, episodic=True,
    model=gridworld_episodic_model, features=_features,
)


class AliasedGridworldEpisodicEnv(AliasedGridworldEnv):
    """The aliased gridworld as the lecture has it: the money or a skull ends the episode.

    As :class:`AliasedGridworldEnv` (same cells, walls, observation and start
    cells), except that South from c0 or c4 (-1) or from c2 (+1) ends the
    episode (``terminated``) in a terminal state whose observation is all 0,
    and ``step`` draws no random number.  The exact model is absorbing
    (:func:`gridworld_episodic_model`); a linear softmax policy over the
    one-hot wall pattern has 16 parameters.
    """

    fused = ALIASED_GRIDWORLD_EPISODIC
    random_step = False

    def step(self, action):
        """Take action 0 N, 1 E, 2 S or 3 W; ``terminated`` on entering a skull or the money."""
        require_reset(self.state)
        if int(self.state[0]) == TERMINAL:
            raise ValueError("the episode has ended: call reset() first")
        index = discrete_action(action, N_ACTIONS)
        reward, terminated = gridworld_episodic_step(self.state, float(index), 0.0, self.state)
        return self._observation(), float(reward), bool(terminated), False, {}

    def _observation(self):
        obs = np.empty(OBS_SIZE, dtype=np.float64)
        gridworld_episodic_observe(self.state, obs)
        return obs.astype(np.int8)

    def model(self):
        """Return the exact absorbing :class:`avgreward.envs.model.TabularModel`."""
        return gridworld_episodic_model()
