"""Drivers of the episodic learners: REINFORCE and the one-step actor-critic (S&B 13.3, 13.5).

Each serves a softmax policy (:mod:`avgreward.learners.reinforce`,
:mod:`avgreward.learners.episodic_actor_critic`) and a Gaussian one over one
continuous action (:mod:`avgreward.learners.gaussian_episodic`), chosen by the
settings' ``policy``; this module joins the kernels of both under one driver
per settings class.
"""

from __future__ import annotations

import numpy as np

from avgreward.agents import EpisodicActorCritic, Reinforce
from avgreward.learners.driver import GAUSSIAN, SOFTMAX, Built, Driver, Policy
from avgreward.learners.episodic_actor_critic import EPISODIC_ACTOR_CRITIC, EpisodicACParams
from avgreward.learners.gaussian_episodic import (
    EPISODIC_AC_GAUSSIAN,
    REINFORCE_GAUSSIAN,
    GaussianEACParams,
    GaussianReinforceParams,
)
from avgreward.learners.reinforce import (
    REINFORCE,
    REINFORCE_OFF_POLICY,
    OffPolicyReinforceParams,
    ReinforceParams,
)

__all__ = ["REINFORCE_DRIVER", "EPISODIC_ACTOR_CRITIC_DRIVER", "EPISODE_BUFFER"]

#: REINFORCE's episode buffer without a cap on episodes (8 (k + 3) bytes a step).
EPISODE_BUFFER = 1_000_000


def _gaussian(agent) -> bool:
    return agent.policy == "gaussian"


def _check(agent, task):
    name, env_id, fused = type(agent).__name__, task.env_id, task.fused
    if not fused.episodic:
        raise ValueError(f"agent: {name} learns episode by episode, and {env_id} is "
                         "continuing (its episodes never end)")
    gaussian = _gaussian(agent)
    if fused.n_actions == 0 and not gaussian:
        raise ValueError(f"agent: {name} has a softmax policy and needs discrete actions; "
                         f"{env_id} has a continuous action (use policy='gaussian')")
    if fused.n_actions != 0 and gaussian:
        raise ValueError(f"agent: {name} with policy='gaussian' needs one continuous action; "
                         f"{env_id} has {fused.n_actions} discrete actions")
    prefs = agent.initial_preferences
    if prefs is not None and not gaussian and len(prefs) != fused.n_actions:
        raise ValueError(f"agent: initial_preferences has {len(prefs)} value(s) but {env_id} "
                         f"has {fused.n_actions} actions")
    behaviour = getattr(agent, "behaviour", None)
    if behaviour is not None and len(behaviour) != fused.n_actions:
        raise ValueError(f"agent: behaviour has {len(behaviour)} probabilities but {env_id} "
                         f"has {fused.n_actions} actions")


def initial_theta(agent, features, n_actions) -> np.ndarray:
    """The policy's weights at the start: ``h(s, a) = initial_preferences[a]``, else 0."""
    theta = np.zeros((features.n_features, n_actions))
    if agent.initial_preferences is not None:
        theta[:] = np.asarray(agent.initial_preferences) / features.n_active
    return theta


def _columns(agent, task) -> int:
    return 2 if _gaussian(agent) else task.fused.n_actions


def _alpha_sigma(agent) -> float:
    return float(agent.alpha_theta if agent.alpha_sigma is None else agent.alpha_sigma)


def reinforce_weights(agent, params):
    """``Result.weights`` of REINFORCE: ``theta``, and the baseline's ``w`` if it has one."""
    return {"theta": params.theta, "w": params.w} if params.baseline else {"theta": params.theta}


def episodic_actor_critic_weights(agent, params):
    """``Result.weights`` of the episodic actor-critic: the critic's ``w`` and ``theta``."""
    return {"w": params.w, "theta": params.theta}


def _policy(agent, weights):
    if _gaussian(agent):
        return Policy(GAUSSIAN, weights["theta"], sigma_min=float(agent.sigma_min))
    return Policy(SOFTMAX, weights["theta"], tau=float(agent.tau))


def _build_reinforce(agent, task):
    features, steps = task.features, task.steps
    n_columns, k = _columns(agent, task), features.n_active
    theta = initial_theta(agent, features, n_columns)
    cap = agent.max_episode_steps or 0
    # A continued run's episode in progress is already in the buffers: as in one run
    # of all the steps, an episode outgrows them only past EPISODE_BUFFER (or cap) steps.
    capacity = min(cap or EPISODE_BUFFER, steps + task.episode_steps)
    baseline = agent.alpha_w is not None
    w = np.zeros(features.n_features if baseline else 0)
    if _gaussian(agent):
        learner, dtype = REINFORCE_GAUSSIAN, np.float64
        params = GaussianReinforceParams(
            theta, w, np.zeros(2), np.zeros((capacity, k), np.int64), np.zeros(capacity),
            np.zeros(capacity), np.zeros(capacity), np.zeros(1, np.int64),
            float(agent.alpha_theta), _alpha_sigma(agent), float(agent.alpha_w or 0.0),
            baseline, float(agent.gamma), float(agent.sigma_min), float(agent.entropy))
    else:
        learner, dtype = REINFORCE, np.int64
        params = ReinforceParams(
            theta, w, np.zeros(n_columns), np.zeros(n_columns),
            np.zeros((capacity, k), np.int64), np.zeros(capacity, np.int64),
            np.zeros(capacity), np.zeros(capacity), np.zeros(1, np.int64),
            float(agent.alpha_theta), float(agent.alpha_w or 0.0), baseline,
            float(agent.gamma), float(agent.tau), float(agent.entropy))
        if agent.behaviour is not None:
            learner = REINFORCE_OFF_POLICY
            params = OffPolicyReinforceParams(*params, np.array(agent.behaviour),
                                              np.zeros(capacity))

    def on_divergence(error):
        # An episode outgrowing the buffers stops the kernel as a non-finite step would.
        if params.ep_length[0] < capacity:
            return None
        return ValueError(
            f"agent: an episode of {task.env_id} lasted more than {capacity:,} steps (seed "
            f"{error.result.seed}, at step {error.step}), the episode buffer's length; give "
            "max_episode_steps to cut episodes, or start from a policy that ends them")

    return Built(learner, params, dtype, episode_cap=cap, on_divergence=on_divergence,
                 episode_buffers=("ep_features", "ep_actions", "ep_rewards", "ep_returns",
                                  *(("ep_ratios",) if agent.behaviour is not None else ())))


def _build_episodic_actor_critic(agent, task):
    features, n = task.features, task.features.n_features
    n_columns = _columns(agent, task)
    theta = initial_theta(agent, features, n_columns)
    traced = agent.lambda_w > 0 or agent.lambda_theta > 0
    w = np.zeros(n)
    if _gaussian(agent):
        params = GaussianEACParams(
            w, theta, np.zeros(n if traced else 0), np.zeros((n if traced else 0, 2)),
            np.zeros(2), np.ones(1), float(agent.alpha_w), float(agent.alpha_theta),
            _alpha_sigma(agent), float(agent.gamma), float(agent.lambda_w),
            float(agent.lambda_theta), float(agent.sigma_min), float(agent.entropy))
        return Built(EPISODIC_AC_GAUSSIAN, params, np.float64)
    params = EpisodicACParams(
        w, theta, np.zeros(n if traced else 0), np.zeros((n if traced else 0, n_columns)),
        np.zeros(n_columns), np.zeros(n_columns), np.ones(1), float(agent.alpha_w),
        float(agent.alpha_theta), float(agent.gamma), float(agent.tau),
        float(agent.lambda_w), float(agent.lambda_theta), float(agent.entropy))
    return Built(EPISODIC_ACTOR_CRITIC, params, np.int64)


REINFORCE_DRIVER = Driver(
    Reinforce, _build_reinforce, reinforce_weights, _policy, _check, continuous=_gaussian)

EPISODIC_ACTOR_CRITIC_DRIVER = Driver(
    EpisodicActorCritic, _build_episodic_actor_critic, episodic_actor_critic_weights, _policy, _check,
    parallel=True, continuous=_gaussian)
