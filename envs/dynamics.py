"""Integer environment kinds and jitted dispatchers for the fused training loop.

The fused loop is compiled once for all environments: it carries the kind as
an integer and calls these dispatchers, which forward to the environment's own
kernels (the same ones the gymnasium classes call). Each gymnasium class has
the matching ``kind`` class attribute.
"""

from numba import njit

from envs.aliased_gridworld import gridworld_observe, gridworld_reset, gridworld_step
from envs.loop_mdp import loop_mdp_observe, loop_mdp_reset, loop_mdp_step
from envs.pendulum import (
    pendulum_continuous_step,
    pendulum_discrete_step,
    pendulum_observe,
    pendulum_reset,
)

__all__ = [
    "PENDULUM_DISCRETE",
    "PENDULUM_CONTINUOUS",
    "LOOP_MDP",
    "ALIASED_GRIDWORLD",
    "env_reset",
    "env_step",
    "env_observe",
]

PENDULUM_DISCRETE = 0
PENDULUM_CONTINUOUS = 1
LOOP_MDP = 2
ALIASED_GRIDWORLD = 3

# forceinline: the fused loop compiles the dispatch (and the kernels it calls)
# into its own body instead of calling them on every step.


@njit(cache=True, forceinline=True)
def env_reset(kind, state, u):
    """Write the start state of environment ``kind`` into ``state``.

    Parameters
    ----------
    kind : int
        One of the kind constants of this module.
    state : ndarray of float64, shape (STATE_SIZE,)
    u : float
        Uniform draw in [0, 1), used only if the start is random.
    """
    if kind == PENDULUM_DISCRETE or kind == PENDULUM_CONTINUOUS:
        pendulum_reset(state, u)
    elif kind == LOOP_MDP:
        loop_mdp_reset(state, u)
    elif kind == ALIASED_GRIDWORLD:
        gridworld_reset(state, u)
    else:
        raise ValueError("unknown environment kind")


@njit(cache=True, forceinline=True)
def env_step(kind, state, action, u, next_state):
    """One step of environment ``kind``.

    Parameters
    ----------
    kind : int
        One of the kind constants of this module.
    state : ndarray of float64, shape (STATE_SIZE,)
    action : float
        Action index as a float for discrete environments, torque for the
        continuous pendulum.
    u : float
        Uniform draw in [0, 1), used only if the step is random.
    next_state : ndarray of float64, shape (STATE_SIZE,)
        Receives the next state; may be the same array as ``state``.

    Returns
    -------
    float
        The reward.
    """
    if kind == PENDULUM_DISCRETE:
        return pendulum_discrete_step(state, action, u, next_state)
    elif kind == PENDULUM_CONTINUOUS:
        return pendulum_continuous_step(state, action, u, next_state)
    elif kind == LOOP_MDP:
        return loop_mdp_step(state, action, u, next_state)
    elif kind == ALIASED_GRIDWORLD:
        return gridworld_step(state, action, u, next_state)
    raise ValueError("unknown environment kind")


@njit(cache=True, forceinline=True)
def env_observe(kind, state, obs):
    """Write the observation of ``state`` for environment ``kind`` into ``obs``.

    Parameters
    ----------
    kind : int
        One of the kind constants of this module.
    state : ndarray of float64, shape (STATE_SIZE,)
    obs : ndarray of float64, shape (OBS_SIZE,)
    """
    if kind == PENDULUM_DISCRETE or kind == PENDULUM_CONTINUOUS:
        pendulum_observe(state, obs)
    elif kind == LOOP_MDP:
        loop_mdp_observe(state, obs)
    elif kind == ALIASED_GRIDWORLD:
        gridworld_observe(state, obs)
    else:
        raise ValueError("unknown environment kind")
