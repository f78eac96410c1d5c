"""Continuing gymnasium environments for average-reward RL (registered on import).

Importing ``avgreward.envs`` registers, with no step limit:

- ``avgreward/PendulumSwingUp-v0``: :class:`avgreward.envs.pendulum.PendulumSwingUpEnv`
- ``avgreward/PendulumSwingUpContinuous-v0``:
  :class:`avgreward.envs.pendulum.PendulumSwingUpContinuousEnv`
- ``avgreward/LoopMDP-v0``: :class:`avgreward.envs.loop_mdp.LoopMDPEnv`
- ``avgreward/AliasedGridworld-v0``:
  :class:`avgreward.envs.aliased_gridworld.AliasedGridworldEnv`
- ``avgreward/AccessControl-v0``: :class:`avgreward.envs.access_control.AccessControlEnv`
  (Sutton & Barto's access-control queuing, Example 10.2)
- ``avgreward/RiverSwim-v0``: :class:`avgreward.envs.riverswim.RiverSwimEnv`
  (Strehl & Littman 2008)
- ``avgreward/TwoChoice-v0``: :class:`avgreward.envs.two_choice.TwoChoiceEnv`
  and ``avgreward/TwoStateTransient-v0``:
  :class:`avgreward.envs.two_state_transient.TwoStateTransientEnv`
  (the small MDPs of Wan, Naik & Sutton 2021)
- ``avgreward/LinearContextualBandit-v0``:
  :class:`avgreward.envs.contextual_bandit.LinearContextualBanditEnv`
  (contexts i.i.d., K arms, linear mean rewards; the reward rate is the average reward)

and two episodic tasks (their episodes end; the fused loop resets inside the run):

- ``avgreward/ShortCorridor-v0``: :class:`avgreward.envs.short_corridor.ShortCorridorEnv`
- ``avgreward/AliasedGridworldEpisodic-v0``:
  :class:`avgreward.envs.aliased_gridworld.AliasedGridworldEpisodicEnv`

and two classic-control tasks with rewards that mean something in the
continuing view (:mod:`avgreward.wrappers`; stepped from Python, not in the
fused loop):

- ``avgreward/CartPoleFailurePenalty-v1``: CartPole-v1, 1 less on a fall
- ``avgreward/MountainCarGoalBonus-v0``: MountainCar-v0 without time limit,
  1 more on reaching the goal

``gymnasium.make("avgreward.envs:avgreward/LoopMDP-v0")`` imports this
package first, so it works without an explicit import. Each environment
module also holds its pure ``@njit`` kernels and declares them for the fused
training loop (:class:`avgreward.envs.declare.FusedEnv`, the gymnasium
class's attribute ``fused``), exactly as a user declares an environment of
their own.

This package was the top-level package ``envs`` before it moved into
``avgreward``: ``import envs`` (and ``import envs.pendulum``, ...) still work
for one release, with a ``DeprecationWarning``, as aliases of this package.
"""

import gymnasium

from avgreward.envs._numba_cache import ensure_fresh_cache

# Before any jitted function can load its cache (see avgreward.envs._numba_cache).
ensure_fresh_cache()

from avgreward.envs.declare import DeclaredEnv, FusedEnv, fused_env_of  # noqa: E402
from avgreward.envs.access_control import AccessControlEnv, access_control_model  # noqa: E402
from avgreward.envs.contextual_bandit import LinearContextualBanditEnv  # noqa: E402
from avgreward.envs.aliased_gridworld import (  # noqa: E402
    AliasedGridworldEnv,
    AliasedGridworldEpisodicEnv,
    gridworld_model,
)
from avgreward.envs.loop_mdp import LoopMDPEnv, loop_mdp_model  # noqa: E402
from avgreward.envs.model import TabularModel  # noqa: E402
from avgreward.envs.pendulum import PendulumSwingUpContinuousEnv, PendulumSwingUpEnv  # noqa: E402
from avgreward.envs.riverswim import RiverSwimEnv  # noqa: E402
from avgreward.envs.short_corridor import ShortCorridorEnv  # noqa: E402
from avgreward.envs.two_choice import TwoChoiceEnv  # noqa: E402
from avgreward.envs.two_state_transient import TwoStateTransientEnv  # noqa: E402

__all__ = [
    "ENV_IDS",
    "AccessControlEnv",
    "access_control_model",
    "AliasedGridworldEnv",
    "AliasedGridworldEpisodicEnv",
    "ShortCorridorEnv",
    "LoopMDPEnv",
    "LinearContextualBanditEnv",
    "PendulumSwingUpContinuousEnv",
    "PendulumSwingUpEnv",
    "RiverSwimEnv",
    "TwoChoiceEnv",
    "TwoStateTransientEnv",
    "TabularModel",
    "DeclaredEnv",
    "FusedEnv",
    "fused_env_of",
    "gridworld_model",
    "loop_mdp_model",
]

_ENTRY_POINTS = {
    "avgreward/PendulumSwingUp-v0": "avgreward.envs.pendulum:PendulumSwingUpEnv",
    "avgreward/PendulumSwingUpContinuous-v0":
        "avgreward.envs.pendulum:PendulumSwingUpContinuousEnv",
    "avgreward/LoopMDP-v0": "avgreward.envs.loop_mdp:LoopMDPEnv",
    "avgreward/AliasedGridworld-v0": "avgreward.envs.aliased_gridworld:AliasedGridworldEnv",
    "avgreward/ShortCorridor-v0": "avgreward.envs.short_corridor:ShortCorridorEnv",
    "avgreward/AliasedGridworldEpisodic-v0":
        "avgreward.envs.aliased_gridworld:AliasedGridworldEpisodicEnv",
    "avgreward/AccessControl-v0": "avgreward.envs.access_control:AccessControlEnv",
    "avgreward/RiverSwim-v0": "avgreward.envs.riverswim:RiverSwimEnv",
    "avgreward/TwoChoice-v0": "avgreward.envs.two_choice:TwoChoiceEnv",
    "avgreward/TwoStateTransient-v0":
        "avgreward.envs.two_state_transient:TwoStateTransientEnv",
    "avgreward/LinearContextualBandit-v0":
        "avgreward.envs.contextual_bandit:LinearContextualBanditEnv",
}

ENV_IDS = tuple(_ENTRY_POINTS)

# Gymnasium's tasks inside reward wrappers: not ours (not in ENV_IDS, no fused loop).
_WRAPPED_ENTRY_POINTS = {
    "avgreward/CartPoleFailurePenalty-v1": "avgreward.wrappers:cartpole_failure_penalty",
    "avgreward/MountainCarGoalBonus-v0": "avgreward.wrappers:mountain_car_goal_bonus",
}

for _env_id, _entry_point in {**_ENTRY_POINTS, **_WRAPPED_ENTRY_POINTS}.items():
    # A reload (or a second registration attempt) would make gymnasium warn
    # about overriding an existing id.
    if _env_id not in gymnasium.registry:
        gymnasium.register(id=_env_id, entry_point=_entry_point, max_episode_steps=None)
