"""Reward wrappers that give episodic gymnasium tasks a meaning in the continuing view.

An average-reward learner maximises the reward per step of one endless
stream, in which an episode end is a reset (see :mod:`avgreward.stepwise`).
Some episodic rewards say nothing there: MountainCar-v0 pays -1 on every
step and CartPole-v1 +1 on every step, so every policy has the same reward
rate and none can be preferred.  These wrappers mark the step that ends an
episode, which is what the episodic task cares about:

* :class:`GoalBonus` adds a bonus when the episode ends by reaching the goal
  (MountainCar: the reward rate becomes -1 + goals per step);
* :class:`FailurePenalty` subtracts a penalty when it ends by failing
  (CartPole: the reward rate becomes 1 - falls per step, highest for the
  longest balance).
"""

from __future__ import annotations

from typing import Any

import gymnasium

__all__ = ["GoalBonus", "FailurePenalty", "cartpole_failure_penalty", "mountain_car_goal_bonus"]


class _OnTermination(gymnasium.Wrapper):
    """Add ``self.change`` to the reward of a step that terminates an episode."""

    change = 0.0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated:
            reward = reward + self.change
        return obs, reward, terminated, truncated, info


class GoalBonus(_OnTermination):
    """Add ``bonus`` to the reward of a step that terminates an episode.

    In the continuing view an episodic task whose reward is the same on
    every step has the same reward rate under every policy: MountainCar-v0
    pays -1 per step, goal or not, so its reward rate is -1 whatever the
    car does.  With the bonus the reward rate is ``-1 + bonus * (goals per
    step)``: maximizing it is reaching the goal in as few steps as possible,
    the episodic task's aim.

    Parameters
    ----------
    env : gymnasium.Env
    bonus : float, default 1.0

    Examples
    --------
    >>> import gymnasium
    >>> env = GoalBonus(gymnasium.make("MountainCar-v0", max_episode_steps=-1))
    """

    def __init__(self, env: gymnasium.Env, bonus: float = 1.0):
        super().__init__(env)
        self.bonus = float(bonus)
        self.change = self.bonus


class FailurePenalty(_OnTermination):
    """Subtract ``penalty`` from the reward of a step that terminates the episode.

    For tasks that pay a constant reward while the agent survives
    (CartPole-v1: +1 per step until the pole falls or the cart leaves the
    track): in the continuing view their reward rate is that constant for
    every policy.  With the penalty it is ``reward - penalty * (falls per
    step)``, so a policy that falls less often has a higher rate, which is
    the episodic task's aim.  A truncation (a time limit) is not a failure
    and is not penalised.

    Parameters
    ----------
    env : gymnasium.Env
    penalty : float, default 1.0

    Examples
    --------
    >>> import gymnasium
    >>> env = FailurePenalty(gymnasium.make("CartPole-v1"))
    """

    def __init__(self, env: gymnasium.Env, penalty: float = 1.0):
        super().__init__(env)
        self.penalty = float(penalty)
        self.change = -self.penalty


def cartpole_failure_penalty(**kwargs: Any) -> gymnasium.Env:
    """``CartPole-v1`` with :class:`FailurePenalty` (1): registered as
    ``avgreward/CartPoleFailurePenalty-v1``.  Its 500-step time limit stays:
    an episode cut short by it is reset without a penalty."""
    return FailurePenalty(gymnasium.make("CartPole-v1", **kwargs))


def mountain_car_goal_bonus(**kwargs: Any) -> gymnasium.Env:
    """``MountainCar-v0`` with :class:`GoalBonus` (1) and no time limit: registered
    as ``avgreward/MountainCarGoalBonus-v0``."""
    kwargs.setdefault("max_episode_steps", -1)
    return GoalBonus(gymnasium.make("MountainCar-v0", **kwargs))
