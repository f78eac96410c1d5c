"""Two states, one transient: from the accompanying code of Wan, Naik & Sutton (2021).

``TwoStatesTransientMDP`` there (its ``divergence`` configurations), described
as an MDP that makes RVI Q-learning (Abounadi, Bertsekas & Borkar 2001)
diverge: state 0 is left under every policy, state 1 absorbs and pays 2 a
step, so every policy's reward rate is 2.
"""

import numpy as np
from numba import njit

from avgreward.envs.declare import DeclaredEnv, FusedEnv
from avgreward.envs.model import TabularModel
from avgreward.features import one_hot

__all__ = ["TWO_STATE_TRANSIENT", "two_state_transient_reset", "two_state_transient_step",
           "two_state_transient_observe", "two_state_transient_model", "TwoStateTransientEnv"]

N_STATES = 2
N_ACTIONS = 2
P_STAY = 0.9        # action 0 in state 0: stays (reward 1) with this probability
REWARD_STAY = 1.0
REWARD_LEAVE = -10.0  # action 1 in state 0
REWARD_ABSORBED = 2.0


@njit(cache=True)
def two_state_transient_reset(state, u):
    """Start in the transient state 0; ``u`` is unused."""
    state[0] = 0.0


@njit(cache=True)
def two_state_transient_step(state, action, u, next_state):
    """One step: action 0 in state 0 stays (+1) if ``u < 0.9``, else moves to 1 (0);
    action 1 in state 0 moves to 1 (-10); state 1 stays, +2 for either action."""
    reward = REWARD_ABSORBED
    nxt = 1
    if int(state[0]) == 0:
        if int(action) == 0:
            if u < P_STAY:
                nxt = 0
                reward = REWARD_STAY
            else:
                reward = 0.0
        else:
            reward = REWARD_LEAVE
    next_state[0] = float(nxt)
    return reward


@njit(cache=True)
def two_state_transient_observe(state, obs):
    """Fully observed: the state index."""
    obs[0] = state[0]


def two_state_transient_model():
    """The exact model (expected rewards: ``R[0, 0] = 0.9``), written from the description."""
    P = np.zeros((N_STATES, N_ACTIONS, N_STATES))
    P[0, 0, 0], P[0, 0, 1] = P_STAY, 1.0 - P_STAY
    P[0, 1, 1] = 1.0
    P[1, :, 1] = 1.0
    R = np.array([[P_STAY * REWARD_STAY, REWARD_LEAVE], [REWARD_ABSORBED, REWARD_ABSORBED]])
    start = np.array([1.0, 0.0])
    observations = np.arange(N_STATES, dtype=np.float64).reshape(N_STATES, 1)
    return TabularModel(P=P, R=R, start=start, observations=observations)


def _features():
    return one_hot(N_STATES)


#: The two-state transient MDP in the fused loop: one-hot features.
TWO_STATE_TRANSIENT = FusedEnv(
    name="TwoStateTransient", reset=two_state_transient_reset, step=two_state_transient_step,
    observe=two_state_transient_observe, state_size=1, obs_size=1, n_actions=N_ACTIONS,
    obs_low=0.0, obs_high=1.0, random_step=True, model=two_state_transient_model,
    features=_features,
)


class TwoStateTransientEnv(DeclaredEnv):
    """Two states, the first transient (Wan, Naik & Sutton 2021's code).

    ## Description

    The agent starts in state 0.  Action 0 there stays with probability 0.9
    (reward +1) and moves to state 1 with 0.1 (reward 0); action 1 moves to
    state 1 at once (reward -10).  State 1 is absorbing and pays +2 for
    either action.  Every policy's reward rate is 2.

    ## Action Space

    ``Discrete(2)``.

    ## Observation Space

    ``Box(0, 1, (1,), float64)``: the state index.

    ## Rewards

    As above; the model's ``R[0, 0]`` is the expectation 0.9.

    ## Starting State

    State 0.

    ## Episode End

    Never (continuing: state 1 goes on paying).

    ## Arguments

    None (``render_mode`` must be None).
    """

    fused = TWO_STATE_TRANSIENT
    # As the package's other environment classes have them.
    state_size = TWO_STATE_TRANSIENT.state_size
    obs_size = TWO_STATE_TRANSIENT.obs_size
    random_reset = TWO_STATE_TRANSIENT.random_reset
    random_step = TWO_STATE_TRANSIENT.random_step
    n_actions = TWO_STATE_TRANSIENT.n_actions
