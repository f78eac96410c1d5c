"""Access-control queuing (Sutton & Barto, Example 10.2): accept or reject the next customer.

k = 10 servers; customers of four priorities (rewards 1, 2, 4, 8) wait in one
queue.  State (n free servers 0..10, priority index 0..3 of the customer at
the head of the queue); actions 0 = reject, 1 = accept.  Accepting when
n > 0 pays the customer's reward and occupies a server (accepting when n = 0
is rejecting: reward 0); then each busy server becomes free independently
with probability 0.06, and the next customer's priority is drawn uniformly.
Start: all servers free, the priority uniform.

**Random draws.**  The fused loop gives a step one uniform ``u``: the next
priority is ``floor(4 u)`` and the number of servers freed is drawn by
inverse CDF of Binomial(busy, 0.06) from ``4 u - floor(4 u)``, which is
uniform and independent of the priority (two of the draw's 53 bits go to the
priority).  One draw with the model's probabilities, instead of one per busy
server and one for the priority; the plain-Python reference and the
simulator make the same draw because they share this function.  The reset
draws the first priority from its ``u`` (``floor(4 u)``).

:func:`access_control_step` is the one definition of the dynamics (the
gymnasium class and the fused loop); :func:`access_control_model` writes the
task down as a 44-state table from the description above, independently,
for the exact analysis and the tests.
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
from avgreward.features import TileCoder

__all__ = [
    "ACCESS_CONTROL",
    "N_SERVERS",
    "N_PRIORITIES",
    "FREE_PROBABILITY",
    "REJECT",
    "ACCEPT",
    "state_index",
    "access_control_reset",
    "access_control_step",
    "access_control_observe",
    "access_control_model",
    "AccessControlEnv",
]

N_SERVERS = 10
N_PRIORITIES = 4
FREE_PROBABILITY = 0.06
REJECT = 0
ACCEPT = 1
N_STATES = (N_SERVERS + 1) * N_PRIORITIES
STATE_SIZE = 2
OBS_SIZE = 2


def state_index(free, priority):
    """The model's index of state (free servers, priority index): ``free * 4 + priority``."""
    return free * N_PRIORITIES + priority


def _freed_cdf():
    """``cdf[b, f] = P(at most f of b busy servers free up)``, Binomial(b, 0.06)."""
    cdf = np.ones((N_SERVERS + 1, N_SERVERS + 1))
    for busy in range(N_SERVERS + 1):
        total = 0.0
        for f in range(busy + 1):
            total += (math.comb(busy, f) * FREE_PROBABILITY ** f
                      * (1 - FREE_PROBABILITY) ** (busy - f))
            cdf[busy, f] = total
    return cdf


_FREED_CDF = _freed_cdf()


@njit(cache=True)
def access_control_reset(state, u):
    """All servers free; the first customer's priority ``floor(4 u)``."""
    state[0] = float(N_SERVERS)
    state[1] = float(min(int(u * N_PRIORITIES), N_PRIORITIES - 1))


@njit(cache=True)
def access_control_step(state, action, u, next_state):
    """One step: accept or reject, servers free up, the next customer arrives.

    Parameters
    ----------
    state : ndarray of float64, shape (2,)
        ``(free servers, priority index)``.
    action : float
        0.0 = reject, 1.0 = accept.
    u : float
        The step's uniform draw (see the module docstring).
    next_state : ndarray of float64, shape (2,)
        Receives the next state; may be ``state`` itself.

    Returns
    -------
    float
        The customer's reward 2^priority if accepted with a server free, else 0.
    """
    free = int(state[0])
    priority = int(state[1])
    reward = 0.0
    if int(action) == ACCEPT and free > 0:
        reward = float(1 << priority)
        free -= 1
    busy = N_SERVERS - free
    # The next priority from the top two bits' worth of u, the servers freed from the rest
    # (4u - priority is uniform on [0, 1) and independent of it) by inverse CDF.
    scaled = u * N_PRIORITIES
    nxt = min(int(scaled), N_PRIORITIES - 1)
    rest = scaled - nxt
    freed = busy  # rounding: the last outcome takes the remainder
    for f in range(busy):
        if rest < _FREED_CDF[busy, f]:
            freed = f
            break
    next_state[0] = float(free + freed)
    next_state[1] = float(nxt)
    return reward


@njit(cache=True)
def access_control_observe(state, obs):
    """The observation ``(free servers, priority index)``."""
    obs[0] = state[0]
    obs[1] = state[1]


def access_control_model():
    """The exact model: 44 states ``free * 4 + priority``, 2 actions.

    Returns
    -------
    TabularModel
        ``P`` (44, 2, 44), ``R`` (44, 2), ``start`` (all servers free, each
        priority 1/4) and ``observations`` (44, 2) = (free, priority).
    """
    P = np.zeros((N_STATES, 2, N_STATES))
    R = np.zeros((N_STATES, 2))
    observations = np.zeros((N_STATES, OBS_SIZE))
    for free in range(N_SERVERS + 1):
        for priority in range(N_PRIORITIES):
            s = state_index(free, priority)
            observations[s] = (free, priority)
            for action in (REJECT, ACCEPT):
                left = free
                if action == ACCEPT and free > 0:
                    R[s, action] = 2.0 ** priority
                    left = free - 1
                busy = N_SERVERS - left
                for freed in range(busy + 1):
                    chance = (math.comb(busy, freed) * FREE_PROBABILITY ** freed
                              * (1 - FREE_PROBABILITY) ** (busy - freed))
                    for nxt in range(N_PRIORITIES):
                        P[s, action, state_index(left + freed, nxt)] += chance / N_PRIORITIES
    start = np.zeros(N_STATES)
    for priority in range(N_PRIORITIES):
        start[state_index(N_SERVERS, priority)] = 1.0 / N_PRIORITIES
    return TabularModel(P=P, R=R, start=start, observations=observations)


def _features():
    # one tile per (free, priority): the 44 states one-hot, as in the book
    return TileCoder(low=(0.0, 0.0), high=(N_SERVERS + 1.0, float(N_PRIORITIES)),
                     tiles=(N_SERVERS + 1, N_PRIORITIES), tilings=1, wrap=(False, False))


#: Access control in the fused loop: one-hot features of the 44 states.
ACCESS_CONTROL = FusedEnv(
    name="access control", reset=access_control_reset, step=access_control_step,
    observe=access_control_observe, state_size=STATE_SIZE, obs_size=OBS_SIZE, n_actions=2,
    obs_low=(0.0, 0.0), obs_high=(float(N_SERVERS), float(N_PRIORITIES - 1)),
    random_reset=True, random_step=True, model=access_control_model, features=_features,
)

_WIDTH, _HEIGHT = 480, 200
_PRIORITY_COLORS = ((120, 180, 230), (90, 190, 120), (240, 170, 60), (220, 60, 60))


class AccessControlEnv(gym.Env):
    """Access-control queuing (Sutton & Barto, Example 10.2), continuing.

    ## Description

    Ten servers; at each step the customer at the head of a single queue,
    of priority 1, 2, 4 or 8, is accepted (paid its priority, a server
    occupied) or rejected (paid 0).  Each busy server then becomes free with
    probability 0.06, and the next customer's priority is uniform.  The
    dynamics is :func:`avgreward.envs.access_control.access_control_step`;
    :meth:`model` gives the exact 44-state table.

    ## Action Space

    ``Discrete(2)``: 0 = reject, 1 = accept (with no server free, accepting
    is rejecting).

    ## Observation Space

    ``MultiDiscrete([11, 4])``: (free servers, priority index 0..3 for
    rewards 1, 2, 4, 8), as an int64 array.

    ## Rewards

    2^priority index when a customer is accepted with a server free, else 0.

    ## Starting State

    All servers free; the priority drawn uniformly (``self.np_random``).

    ## Episode End

    Never: ``terminated`` and ``truncated`` are always False.

    ## Arguments

    | Argument      | Default | Meaning                                     |
    |---------------|---------|---------------------------------------------|
    | `render_mode` | None    | None or ``"rgb_array"`` (200 x 480 frames)  |
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    fused = ACCESS_CONTROL
    state_size = STATE_SIZE
    obs_size = OBS_SIZE
    random_reset = True
    random_step = True
    n_actions = 2

    def __init__(self, render_mode=None):
        self.render_mode = check_render_mode(render_mode)
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.MultiDiscrete([N_SERVERS + 1, N_PRIORITIES])
        self.state = None
        self.last_reward = 0.0

    def reset(self, *, seed=None, options=None):
        """All servers free, the first priority drawn from ``self.np_random``."""
        super().reset(seed=seed)
        state = np.empty(STATE_SIZE, dtype=np.float64)
        access_control_reset(state, float(self.np_random.random()))
        self.state = state
        self.last_reward = 0.0
        return self._observation(), {}

    def step(self, action):
        """Accept (1) or reject (0) the customer at the head of the queue.

        Returns
        -------
        observation : ndarray of int64, shape (2,)
        reward : float
        terminated, truncated : bool
            Always False.
        info : dict
            Empty.
        """
        require_reset(self.state)
        index = discrete_action(action, 2)
        reward = access_control_step(self.state, float(index), float(self.np_random.random()),
                                     self.state)
        self.last_reward = float(reward)
        return self._observation(), float(reward), False, False, {}

    def _observation(self):
        return np.array([int(self.state[0]), int(self.state[1])], dtype=np.int64)

    def model(self):
        """Return the exact :class:`TabularModel` (see :func:`access_control_model`)."""
        return access_control_model()

    def render(self):
        """An RGB frame (200 x 480 uint8) if ``render_mode="rgb_array"``, else None.

        Top: the ten servers, busy ones dark grey, free ones white.  Below: the
        customer at the head of the queue, a square coloured by priority
        holding 1, 2, 4 or 8 dots.
        """
        if self.render_mode is None:
            return None
        require_reset(self.state)
        img = _draw.blank(_HEIGHT, _WIDTH)
        free, priority = int(self.state[0]), int(self.state[1])
        for i in range(N_SERVERS):
            x0 = 20 + i * 45
            busy = i >= free
            _draw.fill_rect(img, x0, 20, x0 + 38, 80, (0, 0, 0))
            _draw.fill_rect(img, x0 + 3, 23, x0 + 35, 77,
                            (90, 90, 90) if busy else (255, 255, 255))
        x0, y0 = 200, 105
        _draw.fill_rect(img, x0, y0, x0 + 80, y0 + 80, _PRIORITY_COLORS[priority])
        dots = 1 << priority
        cols = min(dots, 4)
        for d in range(dots):
            cx = x0 + 12 + (d % cols) * 18 + (4 - cols) * 9
            cy = y0 + 40 + (d // 4 - (dots - 1) // 8) * 18
            _draw.fill_circle(img, cx, cy, 6, (0, 0, 0))
        return img
