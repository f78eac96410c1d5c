"""The one-step actor-critic, episodic (Sutton & Barto 13.5), with eligibility traces optional.

Each step, with ``v(S', w) = 0`` when S' is terminal::

    delta   <- R + gamma v(S', w) - v(S, w)
    z_w     <- gamma lambda_w z_w + x(S)                  (traces; else z_w = x(S))
    z_theta <- gamma lambda_theta z_theta + I grad ln pi(A|S, theta)
    w       <- w + alpha_w delta z_w
    theta   <- theta + alpha_theta delta z_theta
    I       <- gamma I

and at each episode's start ``I = 1`` and the traces are 0.  Settings:
:class:`avgreward.agents.EpisodicActorCritic`; the bundle :class:`EpisodicACParams`.
The traces are dense (every feature each step): meant for the tabular tasks.
"""

import math
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

__all__ = ["EpisodicACParams", "EPISODIC_ACTOR_CRITIC"]

EpisodicACParams = namedtuple("EpisodicACParams", [
    "w", "theta", "z_w", "z_theta", "probs", "coef", "discounting",
    "alpha_w", "alpha_theta", "gamma", "tau", "lambda_w", "lambda_theta", "entropy",
])
EpisodicACParams.__doc__ = """The episodic actor-critic's arrays and settings.

``discounting[0]`` is I (gamma^t within the episode); ``z_w``/``z_theta``
the traces (used when a lambda is > 0).
"""

EpisodicACWork = namedtuple("EpisodicACWork", ["step_w", "step_theta", "traced"])


@njit(cache=True, error_model="numpy")
def eac_begin(params, k):
    return EpisodicACWork(params.alpha_w / k, params.alpha_theta / k,
                          params.lambda_w > 0.0 or params.lambda_theta > 0.0)


@njit(cache=True, error_model="numpy")
def eac_act(theta, probs, tau, cur, words):
    softmax_probabilities(theta, cur, tau, probs)
    return True, sample_discrete(probs, next_double(words)), 0.0


@njit(cache=True, error_model="numpy")
def _traced_update(w, theta, z_w, z_theta, coef, cur, delta, decay_w, decay_theta, discount,
                   step_w, step_theta):
    for i in range(w.shape[0]):
        z_w[i] *= decay_w
        for b in range(coef.shape[0]):
            z_theta[i, b] *= decay_theta
    for j in range(cur.shape[0]):
        z_w[cur[j]] += 1.0
        for b in range(coef.shape[0]):
            z_theta[cur[j], b] += discount * coef[b]
    for i in range(w.shape[0]):
        w[i] += step_w * delta * z_w[i]
        for b in range(coef.shape[0]):
            theta[i, b] += step_theta * delta * z_theta[i, b]


@njit(cache=True, error_model="numpy")
def eac_learn(w, theta, z_w, z_theta, probs, coef, discounting, gamma, tau, lambda_w,
              lambda_theta, entropy, step_w, step_theta, traced, cur, nxt, action, reward,
              terminated, rbar):
    v_next = 0.0 if terminated else linear_value(w, nxt)
    delta = reward + gamma * v_next - linear_value(w, cur)
    if not math.isfinite(delta):
        return False, rbar, delta
    softmax_score(probs, action, tau, coef)
    discount = discounting[0]
    if traced:
        _traced_update(w, theta, z_w, z_theta, coef, cur, delta, gamma * lambda_w,
                       gamma * lambda_theta, discount, step_w, step_theta)
    else:
        add_at(w, cur, step_w * delta)
        add_outer_at(theta, cur, step_theta * discount * delta, coef)
    if entropy > 0.0:
        # theta <- theta + alpha_theta beta_H grad H(pi(.|S)): not traced, no I
        softmax_entropy_gradient(probs, tau, coef)
        add_outer_at(theta, cur, step_theta * entropy, coef)
    discounting[0] = gamma * discount
    return True, rbar, delta


@njit(cache=True, error_model="numpy")
def eac_episode_end(discounting, z_w, z_theta, traced):
    discounting[0] = 1.0  # the next episode starts: I = 1, traces 0
    if traced:
        z_w[:] = 0.0
        z_theta[:] = 0.0


@njit(cache=True, error_model="numpy")
def eac_finish(params, work):
    pass


EPISODIC_ACTOR_CRITIC = FusedLearner(
    "episodic actor-critic", EpisodicACParams, EpisodicACWork, eac_begin, eac_act, eac_learn,
    eac_episode_end, eac_finish, td_error=True)
