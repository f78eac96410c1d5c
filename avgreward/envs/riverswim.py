"""RiverSwim (Strehl & Littman 2008), as they define it: 6 states, rewards 5 and 10,000.

States 0..5 in a row; action 0 (left, with the current) always moves one
state left (0 stays at 0); action 1 (right, against the current) usually
fails.  The probabilities, rewards and start states are those of the
paper's figure 3 (see ``docs/source/guide/wan2021-mdps.md`` for the table
and for the rescaled variants other papers use).

:func:`riverswim_step` is the one definition of the dynamics (the gymnasium
class and the fused loop); :func:`riverswim_model` writes the same task
down as a table, from the description, for exact analysis and tests.
"""

import numpy as np
from numba import njit

from avgreward.envs.declare import DeclaredEnv, FusedEnv
from avgreward.envs.model import TabularModel
from avgreward.features import one_hot

__all__ = ["RIVERSWIM", "N_STATES", "N_ACTIONS", "LEFT", "RIGHT", "riverswim_reset",
           "riverswim_step", "riverswim_observe", "riverswim_model", "RiverSwimEnv"]

N_STATES = 6
N_ACTIONS = 2
LEFT = 0
RIGHT = 1
LAST = N_STATES - 1
# Swimming right from a middle state: (moved right, stayed, swept left).
P_UP, P_STAY, P_DOWN = 0.3, 0.6, 0.1
# Swimming right at the ends: from state 0 it moves with P_UP, else stays;
# in state 5 it stays with P_UP (paid REWARD_LAST), else is swept back.
REWARD_FIRST = 5.0      # left in state 0
REWARD_LAST = 10_000.0  # right in state 5, staying there


@njit(cache=True)
def riverswim_reset(state, u):
    """Start in state 1 or 2, each with probability 1/2 (from the uniform ``u``)."""
    state[0] = 1.0 if u < 0.5 else 2.0


@njit(cache=True)
def riverswim_step(state, action, u, next_state):
    """One step: the next state index into ``next_state``, the reward returned.

    ``action`` is 0.0 (left) or 1.0 (right); ``u`` a uniform draw in [0, 1),
    turned into the outcome by inverse CDF (right first, then stay, then left).
    """
    s = int(state[0])
    reward = 0.0
    if int(action) == LEFT:
        if s == 0:
            reward = REWARD_FIRST
        nxt = max(s - 1, 0)
    elif s == 0:
        nxt = 1 if u < P_UP else 0
    elif s == LAST:
        if u < P_UP:
            nxt = s
            reward = REWARD_LAST
        else:
            nxt = s - 1
    elif u < P_UP:
        nxt = s + 1
    elif u < P_UP + P_STAY:
        nxt = s
    else:
        nxt = s - 1
    next_state[0] = float(nxt)
    return reward


@njit(cache=True)
def riverswim_observe(state, obs):
    """Fully observed: the observation is the state index."""
    obs[0] = state[0]


def riverswim_model():
    """The exact model, written from the description (not from the step function).

    Returns
    -------
    TabularModel
        ``P`` (6, 2, 6); ``R`` (6, 2) the expected rewards (``R[5, right]`` is
        ``0.3 * 10,000``, paid only on staying); ``start`` 1/2 on states 1
        and 2; ``observations[s] = [s]``.
    """
    P = np.zeros((N_STATES, N_ACTIONS, N_STATES))
    R = np.zeros((N_STATES, N_ACTIONS))
    for s in range(N_STATES):
        P[s, LEFT, max(s - 1, 0)] = 1.0
    for s in range(1, LAST):
        P[s, RIGHT, s + 1] = P_UP
        P[s, RIGHT, s] = P_STAY
        P[s, RIGHT, s - 1] = P_DOWN
    P[0, RIGHT, 1] = P_UP
    P[0, RIGHT, 0] = 1.0 - P_UP
    P[LAST, RIGHT, LAST] = P_UP
    P[LAST, RIGHT, LAST - 1] = 1.0 - P_UP
    R[0, LEFT] = REWARD_FIRST
    R[LAST, RIGHT] = P_UP * REWARD_LAST
    start = np.zeros(N_STATES)
    start[1] = start[2] = 0.5
    observations = np.arange(N_STATES, dtype=np.float64).reshape(N_STATES, 1)
    return TabularModel(P=P, R=R, start=start, observations=observations)


def _features():
    return one_hot(N_STATES)


#: RiverSwim in the fused loop: one-hot features of the 6 states.
RIVERSWIM = FusedEnv(
    name="RiverSwim", reset=riverswim_reset, step=riverswim_step, observe=riverswim_observe,
    state_size=1, obs_size=1, n_actions=N_ACTIONS, obs_low=0.0, obs_high=float(LAST),
    random_reset=True, random_step=True, model=riverswim_model, features=_features,
)


class RiverSwimEnv(DeclaredEnv):
    """RiverSwim (Strehl & Littman 2008): a hard exploration problem, continuing.

    ## Description

    Six states in a row, a river flowing left.  Swimming left always
    succeeds and pays 5 in the leftmost state; swimming right mostly fails,
    and only the rightmost state pays well (10,000 for staying there while
    swimming right).  Always right is optimal; the uniform random policy
    rarely gets there.  The dynamics is
    :func:`avgreward.envs.riverswim.riverswim_step`; :meth:`model` gives the
    exact table (expected rewards).

    ## Action Space

    ``Discrete(2)``: 0 = left (with the current), 1 = right (against it).

    ## Observation Space

    ``Box(0, 5, (1,), float64)``: the state index (fully observed).

    ## Rewards

    5 for left in state 0; 10,000 for right in state 5 when the agent stays
    there (probability 0.3); 0 otherwise.

    ## Transitions

    | state | left         | right                                     |
    |-------|--------------|-------------------------------------------|
    | 0     | 0 (stays)    | 1 w.p. 0.3, 0 w.p. 0.7                    |
    | 1..4  | s - 1        | s + 1 w.p. 0.3, s w.p. 0.6, s - 1 w.p. 0.1 |
    | 5     | 4            | 5 w.p. 0.3 (reward 10,000), 4 w.p. 0.7    |

    ## Starting State

    State 1 or 2, each with probability 1/2.

    ## Episode End

    Never (continuing, no step limit).

    ## Arguments

    None (``render_mode`` must be None: it does not render).
    """

    fused = RIVERSWIM
    # As the package's other environment classes have them.
    state_size = RIVERSWIM.state_size
    obs_size = RIVERSWIM.obs_size
    random_reset = RIVERSWIM.random_reset
    random_step = RIVERSWIM.random_step
    n_actions = RIVERSWIM.n_actions
