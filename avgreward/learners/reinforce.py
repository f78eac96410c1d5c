"""REINFORCE (Sutton & Barto, 13.3), and with a baseline (13.4), as a learner of the fused loop.

Each step records the active features of S_t, A_t and R_{t+1} in the
episode's buffers; at the end of the episode :func:`reinforce_episode_end`
computes the returns backwards and applies the box's updates for
``t = 0 .. T-1`` in order, each with the score at the current theta.
The bundle is :class:`ReinforceParams`; the settings are
:class:`avgreward.agents.Reinforce`.  With ``behaviour`` set the learner is
:data:`REINFORCE_OFF_POLICY` (bundle :class:`OffPolicyReinforceParams`): the
actions come from the fixed behaviour, each step records its ratio
``pi(A_t|S_t) / b(A_t)``, and the episode's update is per-decision weighted.
"""

from collections import namedtuple

from numba import njit

from avgreward._pcg64 import next_double
from avgreward.actors import (
    sample_discrete,
    softmax_entropy_gradient,
    softmax_probabilities,
    softmax_score,
)
from avgreward.critic import add_at, add_outer_at, linear_value
from avgreward.learners import FusedLearner

__all__ = ["ReinforceParams", "REINFORCE", "OffPolicyReinforceParams", "REINFORCE_OFF_POLICY"]

ReinforceParams = namedtuple("ReinforceParams", [
    "theta", "w", "probs", "coef", "ep_features", "ep_actions", "ep_rewards", "ep_returns",
    "ep_length", "alpha_theta", "alpha_w", "baseline", "gamma", "tau", "entropy",
])
ReinforceParams.__doc__ = """REINFORCE's arrays and settings.

``theta`` is ``[n_features, n_actions]``; ``w`` the baseline's weights
(``baseline`` True: REINFORCE with baseline, 13.4); ``probs`` and ``coef`` scratch of
``n_actions``; the episode's buffers ``ep_features[t]`` (the active features
of S_t), ``ep_actions``, ``ep_rewards``, ``ep_returns`` hold up to the
buffers' length in steps, ``ep_length[0]`` the steps recorded so far.
"""

ReinforceWork = namedtuple("ReinforceWork", ["step_theta", "step_w"])


@njit(cache=True, error_model="numpy")
def reinforce_begin(params, k):
    return ReinforceWork(params.alpha_theta / k, params.alpha_w / k)


@njit(cache=True, error_model="numpy")
def reinforce_act(theta, probs, tau, cur, words):
    # A ~ pi(.|S, theta) with the current theta
    softmax_probabilities(theta, cur, tau, probs)
    return True, sample_discrete(probs, next_double(words)), 0.0


@njit(cache=True, error_model="numpy", forceinline=True)
def record_step(ep_features, ep_actions, ep_rewards, ep_length, cur, action, reward):
    """S_t's features, A_t and R_{t+1} into the episode's buffers; False once they are full."""
    t = ep_length[0]
    if t >= ep_actions.shape[0]:
        return False  # the episode outgrew the buffers (the caller says so)
    for j in range(cur.shape[0]):
        ep_features[t, j] = cur[j]
    ep_actions[t] = action
    ep_rewards[t] = reward
    ep_length[0] = t + 1
    return True


@njit(cache=True, error_model="numpy")
def reinforce_learn(ep_features, ep_actions, ep_rewards, ep_length, cur, action, reward, rbar):
    return record_step(ep_features, ep_actions, ep_rewards, ep_length, cur, action,
                       reward), rbar


@njit(cache=True, error_model="numpy", forceinline=True)
def episode_returns(ep_rewards, ep_returns, ep_length, gamma):
    """``G_t = R_{t+1} + gamma G_{t+1}`` into ``ep_returns``, backwards; returns T."""
    n_steps = ep_length[0]
    g = 0.0
    for t in range(n_steps - 1, -1, -1):
        g = ep_rewards[t] + gamma * g
        ep_returns[t] = g
    return n_steps


@njit(cache=True, error_model="numpy", forceinline=True)
def baseline_delta(w, idx, g, baseline, step_w):
    """G, or with a baseline (13.4) ``delta <- G - v(S_t, w)`` after ``w += alpha_w delta x``."""
    if not baseline:
        return g
    delta = g - linear_value(w, idx)
    add_at(w, idx, step_w * delta)
    return delta


@njit(cache=True, error_model="numpy")
def _reinforce_update(theta, w, probs, coef, ep_features, ep_actions, ep_rewards, ep_returns,
                      ep_length, step_theta, step_w, baseline, gamma, tau, entropy):
    n_steps = episode_returns(ep_rewards, ep_returns, ep_length, gamma)
    discount = 1.0  # gamma^t
    for t in range(n_steps):
        idx = ep_features[t]
        delta = baseline_delta(w, idx, ep_returns[t], baseline, step_w)
        softmax_probabilities(theta, idx, tau, probs)
        softmax_score(probs, ep_actions[t], tau, coef)
        add_outer_at(theta, idx, step_theta * discount * delta, coef)
        if entropy > 0.0:
            # theta <- theta + alpha_theta beta_H grad H(pi(.|S_t)), this t's probabilities
            softmax_entropy_gradient(probs, tau, coef)
            add_outer_at(theta, idx, step_theta * entropy, coef)
        discount *= gamma
    ep_length[0] = 0


@njit(cache=True, error_model="numpy")
def reinforce_episode_end(theta, w, probs, coef, ep_features, ep_actions, ep_rewards,
                          ep_returns, ep_length, step_theta, step_w, baseline, gamma, tau,
                          entropy):
    # Once an episode: a call (and its reference counts) costs nothing per step.
    _reinforce_update(theta, w, probs, coef, ep_features, ep_actions, ep_rewards, ep_returns,
                      ep_length, step_theta, step_w, baseline, gamma, tau, entropy)


@njit(cache=True, error_model="numpy")
def reinforce_finish(params, work):
    pass


REINFORCE = FusedLearner("reinforce", ReinforceParams, ReinforceWork, reinforce_begin,
                         reinforce_act, reinforce_learn, reinforce_episode_end, reinforce_finish)


OffPolicyReinforceParams = namedtuple("OffPolicyReinforceParams", [
    *ReinforceParams._fields, "behaviour", "ep_ratios"])
OffPolicyReinforceParams.__doc__ = """Off-policy REINFORCE's arrays: :class:`ReinforceParams`'s, and

``behaviour`` (the behaviour's probability of each action) and ``ep_ratios[t]``
(``rho_t = pi(A_t|S_t) / b(A_t)`` of the episode's steps, with the theta that acted).
"""


@njit(cache=True, error_model="numpy")
def off_policy_act(theta, probs, tau, behaviour, cur, words):
    # A ~ b; the memo is rho = pi(A|S, theta) / b(A) (theta is fixed within the episode)
    softmax_probabilities(theta, cur, tau, probs)
    a = sample_discrete(behaviour, next_double(words))
    return True, a, probs[a] / behaviour[a]


@njit(cache=True, error_model="numpy")
def off_policy_learn(ep_features, ep_actions, ep_rewards, ep_ratios, ep_length, cur, action,
                     memo, reward, rbar):
    t = ep_length[0]
    if t < ep_ratios.shape[0]:
        ep_ratios[t] = memo
    return record_step(ep_features, ep_actions, ep_rewards, ep_length, cur, action,
                       reward), rbar


@njit(cache=True, error_model="numpy")
def _off_policy_update(theta, probs, coef, ep_features, ep_actions, ep_rewards, ep_returns,
                       ep_ratios, ep_length, step_theta, gamma, tau):
    n_steps = ep_length[0]
    # H_t = R_{t+1} + gamma rho_{t+1} H_{t+1}, backwards (rho_{0:t} H_t weights each
    # reward by the ratios up to its own action)
    h = 0.0
    rho_next = 1.0
    for t in range(n_steps - 1, -1, -1):
        h = ep_rewards[t] + gamma * rho_next * h
        ep_returns[t] = h
        rho_next = ep_ratios[t]
    discount = 1.0  # gamma^t
    weight = 1.0    # rho_{0:t}
    for t in range(n_steps):
        idx = ep_features[t]
        weight *= ep_ratios[t]
        softmax_probabilities(theta, idx, tau, probs)
        softmax_score(probs, ep_actions[t], tau, coef)
        add_outer_at(theta, idx, step_theta * discount * weight * ep_returns[t], coef)
        discount *= gamma
    ep_length[0] = 0


@njit(cache=True, error_model="numpy")
def off_policy_episode_end(theta, probs, coef, ep_features, ep_actions, ep_rewards, ep_returns,
                           ep_ratios, ep_length, step_theta, gamma, tau):
    _off_policy_update(theta, probs, coef, ep_features, ep_actions, ep_rewards, ep_returns,
                       ep_ratios, ep_length, step_theta, gamma, tau)


REINFORCE_OFF_POLICY = FusedLearner(
    "reinforce_off_policy", OffPolicyReinforceParams, ReinforceWork, reinforce_begin,
    off_policy_act, off_policy_learn, off_policy_episode_end, reinforce_finish)
