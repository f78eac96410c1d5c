"""The two-choice MDP of Wan, Naik & Sutton (2021): the loop MDP from a uniform start.

The same nine states, two loops and rewards as :mod:`avgreward.envs.loop_mdp`
(its step and observe functions, not a copy: one definition of the
dynamics), but each run starts in a state drawn uniformly from the nine,
as in the paper's accompanying code (``TwoChoiceMDP``).
"""

from dataclasses import replace

import numpy as np
from numba import njit

from avgreward.envs.declare import DeclaredEnv, FusedEnv
from avgreward.envs.loop_mdp import N_ACTIONS, N_STATES, loop_mdp_model, loop_mdp_observe, \
    loop_mdp_step
from avgreward.features import one_hot

__all__ = ["TWO_CHOICE", "two_choice_reset", "two_choice_model", "TwoChoiceEnv"]


@njit(cache=True)
def two_choice_reset(state, u):
    """Start in state ``floor(9 u)``: each of the nine with probability 1/9."""
    state[0] = float(min(int(u * N_STATES), N_STATES - 1))


def two_choice_model():
    """The loop MDP's exact model with a uniform start distribution."""
    return replace(loop_mdp_model(), start=np.full(N_STATES, 1.0 / N_STATES))


def _features():
    return one_hot(N_STATES)


#: The two-choice MDP in the fused loop: one-hot features of the 9 states.
TWO_CHOICE = FusedEnv(
    name="TwoChoice", reset=two_choice_reset, step=loop_mdp_step, observe=loop_mdp_observe,
    state_size=1, obs_size=1, n_actions=N_ACTIONS, obs_low=0.0, obs_high=float(N_STATES - 1),
    random_reset=True, model=two_choice_model, features=_features,
)


class TwoChoiceEnv(DeclaredEnv):
    """The two-choice MDP (Wan, Naik & Sutton 2021): two loops sharing state 0.

    ## Description

    In state 0 the agent picks a loop: left (0 -> 1 -> 2 -> 3 -> 4 -> 0) pays
    +1 on leaving 0, right (0 -> 5 -> 6 -> 7 -> 8 -> 0) pays +2 on the step
    from 8 back into 0; elsewhere both actions move on around the loop.
    Reward rates: 0.2 always-left, 0.4 always-right.  Dynamics:
    :func:`avgreward.envs.loop_mdp.loop_mdp_step`.

    ## Action Space

    ``Discrete(2)``: 0 = left, 1 = right (only matters in state 0).

    ## Observation Space

    ``Box(0, 8, (1,), float64)``: the state index.

    ## Rewards

    +1 on 0 -> 1, +2 on 8 -> 0, else 0.

    ## Starting State

    Uniform over the nine states (``avgreward/LoopMDP-v0`` starts in 0).

    ## Episode End

    Never (continuing, no step limit).

    ## Arguments

    None (``render_mode`` must be None).
    """

    fused = TWO_CHOICE
    # As the package's other environment classes have them.
    state_size = TWO_CHOICE.state_size
    obs_size = TWO_CHOICE.obs_size
    random_reset = TWO_CHOICE.random_reset
    random_step = TWO_CHOICE.random_step
    n_actions = TWO_CHOICE.n_actions
