"""Linear contextual-bandit learners in the fused loop, on ``avgreward/LinearContextualBandit-v0``.

All four see the context ``c`` (the one active feature of the one-hot
map over contexts) and use its vector ``x = x_c``
(:mod:`avgreward.envs.contextual_bandit`); all are linear in ``x`` with a
*disjoint* model, one parameter vector ``theta_a`` per arm, as the
environment's means ``mu(c, a) = <theta*_a, x_c>`` are.

Least squares (epsilon-greedy, LinUCB, SquareCB's oracle): per arm the ridge
estimate ``theta_a = A_a^-1 b_a`` with ``A_a = ridge I + sum x x^T`` and
``b_a = sum r x`` over the arm's pulls.  ``A_a^-1`` is kept and updated by
Sherman-Morrison after each pull (``z = A^-1 x``, ``s = 1 + x.z``,
``A^-1 -= z z^T / s``) and ``theta_a += (r - x.theta_a) z / s``, which is
the new ``A_a^-1 b_a`` (recursive least squares): O(d^2) per step for the
pulled arm.  The tests check it against the papers' explicit ``A^-1 b``.

* :class:`EpsilonGreedyLeastSquares`: with probability epsilon an arm
  uniformly, else the greedy ``argmax_a theta_a . x`` (ties uniformly), two
  uniforms a step as :func:`avgreward.learners.value.epsilon_greedy`.
* :class:`LinUCB`: Li, Chu, Langford & Schapire (2010), Algorithm 1 (the
  disjoint model): ``p_a = theta_a . x + alpha sqrt(x^T A_a^-1 x)``, the arm
  of largest ``p_a`` (ties uniformly, one uniform a step), ``A_a += x x^T``,
  ``b_a += r x``; ``A_a = I`` at first (``ridge = 1``).  O(K d^2) a step.
* :class:`SquareCB`: Foster & Rakhlin (2020), Algorithm 1 with mu = K, in
  rewards rather than losses: the oracle's predictions ``yhat_a = theta_a . x``,
  the best ``b = argmax yhat`` (the first of ties), ``p_a = 1 / (K + gamma
  (yhat_b - yhat_a))`` for ``a != b`` and the rest on ``b``; sample, then feed
  ``(x, a, r)`` to the oracle (online ridge least squares).  O(K d) for the
  predictions and the weights plus O(d^2) for the oracle's update.
* :class:`SoftmaxBandit`: the gradient bandit (Sutton & Barto 2018, section
  2.8) with linear preferences, i.e. REINFORCE in a bandit with the reward
  rate as baseline: ``pi = softmax(theta . x)``, ``delta = R - Rbar``,
  ``theta_a += alpha delta (1[a = A] - pi(a|x)) x`` for every arm,
  ``Rbar += alpha_rbar delta``.  O(K d) a step.

Each step also adds the pull's *expected* regret ``gap[c, a] = max_b mu(c,
b) - mu(c, a)`` (the instance's table, never used to act) to the run's
``regret`` weights, one number a bin (the run's ``bin_size``; a step with
none): the cumulative expected regret at the bins' ends is its cumulative
sum, with no reward noise in it, and a binned run's memory does not grow
with its steps.

**Cost per step** (d the dimension, K the arms): epsilon-greedy O(d^2) (the
pulled arm's Sherman-Morrison update; O(K d) scoring on greedy steps),
LinUCB O(K d^2) at most, SquareCB O(K d + d^2), the softmax bandit O(K d).
LinUCB keeps every (context, arm) score and computes one again only after
its arm's update, so its scoring costs O(d^2) per arm updated since the
context's last visit, most often one or none.
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit

from avgreward._pcg64 import next_double
from avgreward.actors import sample_discrete
from avgreward.agents import EpsilonGreedyLeastSquares, LinUCB, SoftmaxBandit, SquareCB
from avgreward.envs import contextual_bandit as bandit
from avgreward.learners import FusedLearner
from avgreward.learners.driver import EPSILON_GREEDY, SOFTMAX, Built, Driver, Policy
from avgreward.learners.value import value_finish

__all__ = ["EpsilonGreedyLeastSquares", "LinUCB", "SquareCB", "SoftmaxBandit", "BanditParams",
           "squarecb_gamma", "EPSILON_GREEDY_LS", "LIN_UCB", "SQUARE_CB", "SOFTMAX_BANDIT",
           "EPSILON_GREEDY_LS_DRIVER", "LIN_UCB_DRIVER", "SQUARE_CB_DRIVER",
           "SOFTMAX_BANDIT_DRIVER"]

ENV_ID = "avgreward/LinearContextualBandit-v0"


def squarecb_gamma(arms: int, dimension: int, steps: int, delta: float = 0.05,
                   ridge: float = 1.0) -> float:
    """Foster & Rakhlin's (2020, Theorem 1) ``gamma = sqrt(K T / (Reg_Sq(T) + log(2 / delta)))``.

    ``Reg_Sq(T) = K d log(1 + T / (d ridge))``: the order of online ridge
    regression's square-loss regret, d log T per arm, with the constant 1
    (the bound's constant depends on the range of the responses).
    """
    regression = arms * dimension * math.log(1.0 + steps / (dimension * ridge))
    return math.sqrt(arms * steps / (regression + math.log(2.0 / delta)))


# --- kernels --------------------------------------------------------------------------------

BanditParams = namedtuple("BanditParams", [
    "features", "gaps", "regret", "count", "ainv", "b", "theta", "scores", "z", "probs",
    "cache", "stamp", "version", "epsilon", "bonus", "gamma", "alpha", "alpha_rbar",
])
BanditParams.__doc__ = """A contextual-bandit learner's arrays and settings.

``features`` (M, d) the contexts' vectors; ``gaps`` (M, K) the expected
regret of each pull (recorded only); ``regret`` (bins,) the run's expected
regret summed over each bin of ``count[3]`` steps, ``count[0]`` the steps
done, ``count[1]`` the current bin and ``count[2]`` the steps left in it;
``ainv`` (K, d, d) the inverses ``A_a^-1``, ``b`` (K, d), ``theta`` (K, d)
the weights; ``scores`` (K,), ``z`` (d,), ``probs`` (K,) scratch;
``cache`` (M, K) LinUCB's scores of each (context, arm),
valid while ``stamp[c, a] == version[a]``, the number of updates of arm
``a`` (``stamp`` starts at -1); then each learner's settings."""

BanditWork = namedtuple("BanditWork", ["n_active"])


@njit(cache=True, error_model="numpy")
def bandit_begin(params, k):
    return BanditWork(k)


@njit(cache=True, error_model="numpy")
def _nothing():
    pass


@njit(cache=True, error_model="numpy", forceinline=True)
def _predict(theta, features, c, scores):
    """``scores[a] = theta_a . x_c`` for every arm."""
    d = features.shape[1]
    for a in range(theta.shape[0]):
        s = 0.0
        for j in range(d):
            s += theta[a, j] * features[c, j]
        scores[a] = s


@njit(cache=True, error_model="numpy", forceinline=True)
def _argmax_uniform(scores, u):
    """An index of the largest score, uniformly among ties by ``u``."""
    best = scores[0]
    ties = 1
    for a in range(1, scores.shape[0]):
        if scores[a] > best:
            best = scores[a]
            ties = 1
        elif scores[a] == best:
            ties += 1
    pick = min(int(u * ties), ties - 1)
    for a in range(scores.shape[0]):
        if scores[a] == best:
            if pick == 0:
                return a
            pick -= 1
    return scores.shape[0] - 1


@njit(cache=True, error_model="numpy", forceinline=True)
def _ridge_update(ainv, b, theta, z, features, c, a, reward):
    """Arm ``a``'s ridge estimate after ``A += x x^T``, ``b += r x``: Sherman-Morrison, O(d^2).

    ``z = A^-1 x``, ``s = 1 + x . z``; ``A^-1 -= z z^T / s`` and ``theta +=
    (r - x . theta) z / s``, which is ``A^-1 b`` of the new ``A`` and ``b``
    without the O(d^2) product (recursive least squares).
    """
    d = features.shape[1]
    denom = 1.0
    fit = 0.0
    for i in range(d):
        s = 0.0
        for j in range(d):
            s += ainv[a, i, j] * features[c, j]
        z[i] = s
        denom += features[c, i] * s
        fit += features[c, i] * theta[a, i]
    inv = 1.0 / denom
    for i in range(d):
        zi = z[i] * inv
        for j in range(d):
            ainv[a, i, j] -= zi * z[j]
    gain = (reward - fit) * inv
    for i in range(d):
        b[a, i] += reward * features[c, i]
        theta[a, i] += gain * z[i]


@njit(cache=True, error_model="numpy", forceinline=True)
def _record(gaps, regret, count, c, a):
    """The pull's expected regret added to its bin's; returns the steps done, this one too.

    A countdown rather than ``t // bin_size``: an integer division a step
    costs more than the rest of the bookkeeping.
    """
    t = count[0]
    b = count[1]
    if b < regret.shape[0]:
        regret[b] += gaps[c, a]
    left = count[2] - 1
    if left == 0:
        count[1] = b + 1
        left = count[3]
    count[2] = left
    count[0] = t + 1
    return t + 1


@njit(cache=True, error_model="numpy")
def egreedy_act(features, theta, scores, epsilon, cur, words):
    u1 = next_double(words)
    u2 = next_double(words)
    n = scores.shape[0]
    if u1 < epsilon:
        return True, min(int(u2 * n), n - 1), 0.0
    _predict(theta, features, cur[0], scores)
    return True, _argmax_uniform(scores, u2), 0.0


@njit(cache=True, error_model="numpy")
def linucb_act(features, theta, ainv, scores, cache, stamp, version, bonus, cur, words):
    u = next_double(words)
    c = cur[0]
    d = features.shape[1]
    for a in range(theta.shape[0]):
        # The score of (c, a) is kept until arm a's next update: only the pulled arm's
        # estimate changes in a step, so most scores of a context are still those of its
        # last visit, the same numbers (the cache changes the cost, not one bit of the
        # result).  It saves the O(d^2) width and the sqrt; for the O(d) mean alone
        # (epsilon-greedy, SquareCB) the bookkeeping costs more than it saves (measured).
        if stamp[c, a] != version[a]:
            mean = 0.0
            width = 0.0
            # x^T A^-1 x over the upper triangle of the symmetric A^-1.
            for i in range(d):
                xi = features[c, i]
                mean += theta[a, i] * xi
                s = 0.5 * ainv[a, i, i] * xi
                for j in range(i + 1, d):
                    s += ainv[a, i, j] * features[c, j]
                width += xi * s
            cache[c, a] = mean + bonus * math.sqrt(max(2.0 * width, 0.0))
            stamp[c, a] = version[a]
        scores[a] = cache[c, a]
    return True, _argmax_uniform(scores, u), 0.0


@njit(cache=True, error_model="numpy")
def squarecb_act(features, theta, scores, probs, gamma, cur, words):
    u = next_double(words)
    _predict(theta, features, cur[0], scores)
    n = scores.shape[0]
    best = 0
    for a in range(1, n):
        if scores[a] > scores[best]:
            best = a
    rest = 0.0
    for a in range(n):
        if a != best:
            probs[a] = 1.0 / (n + gamma * (scores[best] - scores[a]))
            rest += probs[a]
    probs[best] = 1.0 - rest
    return True, sample_discrete(probs, u), 0.0


@njit(cache=True, error_model="numpy")
def least_squares_learn(features, ainv, b, theta, z, gaps, regret, count, cur, action, reward,
                        rbar):
    if not math.isfinite(reward):
        return False, rbar
    c = cur[0]
    _ridge_update(ainv, b, theta, z, features, c, action, reward)
    t = _record(gaps, regret, count, c, action)
    # R-bar here is the mean reward so far (nothing learns from it).
    return True, rbar + (reward - rbar) / t


@njit(cache=True, error_model="numpy")
def linucb_learn(features, ainv, b, theta, z, version, gaps, regret, count, cur, action, reward,
                 rbar):
    # least_squares_learn's body and the count of arm `action`'s updates, which makes its
    # cached scores stale (linucb_act).  Written out, not a call: the loop inlines a learner's
    # source (avgreward.inlining), and a helper with an early return called from it pays
    # reference counting every step (measured: a quarter slower).
    if not math.isfinite(reward):
        return False, rbar
    c = cur[0]
    _ridge_update(ainv, b, theta, z, features, c, action, reward)
    version[action] += 1
    t = _record(gaps, regret, count, c, action)
    return True, rbar + (reward - rbar) / t


@njit(cache=True, error_model="numpy")
def softmax_bandit_act(features, theta, scores, probs, cur, words):
    u = next_double(words)
    _predict(theta, features, cur[0], scores)
    n = scores.shape[0]
    top = scores[0]
    for a in range(1, n):
        top = max(top, scores[a])
    total = 0.0
    for a in range(n):
        probs[a] = math.exp(scores[a] - top)
        total += probs[a]
    for a in range(n):
        probs[a] /= total
    return True, sample_discrete(probs, u), 0.0


@njit(cache=True, error_model="numpy")
def softmax_bandit_learn(features, theta, probs, alpha, alpha_rbar, gaps, regret, count, cur,
                         action, reward, rbar):
    delta = reward - rbar
    if not math.isfinite(delta):
        return False, rbar
    c = cur[0]
    d = features.shape[1]
    for a in range(theta.shape[0]):
        g = alpha * delta * ((1.0 if a == action else 0.0) - probs[a])
        for j in range(d):
            theta[a, j] += g * features[c, j]
    _record(gaps, regret, count, c, action)
    return True, rbar + alpha_rbar * delta


EPSILON_GREEDY_LS = FusedLearner("epsilon-greedy least squares", BanditParams, BanditWork,
                                 bandit_begin, egreedy_act, least_squares_learn, _nothing,
                                 value_finish)
LIN_UCB = FusedLearner("linucb", BanditParams, BanditWork, bandit_begin, linucb_act,
                       linucb_learn, _nothing, value_finish)
SQUARE_CB = FusedLearner("squarecb", BanditParams, BanditWork, bandit_begin, squarecb_act,
                         least_squares_learn, _nothing, value_finish)
SOFTMAX_BANDIT = FusedLearner("softmax bandit", BanditParams, BanditWork, bandit_begin,
                              softmax_bandit_act, softmax_bandit_learn, _nothing, value_finish)


# --- drivers --------------------------------------------------------------------------------


def _check(agent, task):
    if task.fused is not bandit.LINEAR_CONTEXTUAL_BANDIT:
        raise ValueError(f"agent: {type(agent).__name__} learns from the contexts' feature "
                         f"vectors of {ENV_ID}; it does not run on {task.env_id}")


def _bin_size(task):
    """The regret's bin: the run's ``bin_size`` (1, a value a step, when it has none)."""
    return 1 if task.bin_size is None else min(int(task.bin_size), max(int(task.steps), 1))


def _params(agent, task, gamma=0.0):
    instance = bandit.default_instance()
    features = task.features
    if features.n_active != 1 or features.n_features != instance.contexts:
        raise ValueError(f"features: {type(agent).__name__} needs the one-hot map of the "
                         f"{instance.contexts} contexts (the default, "
                         f"avgreward.features.one_hot({instance.contexts})), got "
                         f"{features.n_features} features with {features.n_active} active")
    m, d = instance.features.shape
    k = instance.arms
    ridge = float(getattr(agent, "ridge", 1.0))
    ainv = np.zeros((k, d, d))
    for a in range(k):
        ainv[a] = np.eye(d) / ridge
    bin_size = _bin_size(task)
    # count: steps done, the current bin, the steps left in it, the bin size.
    count = np.array([0, 0, bin_size, bin_size], np.int64)
    return BanditParams(
        np.ascontiguousarray(instance.features), bandit.regret_gaps(instance),
        np.zeros(-(-task.steps // bin_size)), count, ainv, np.zeros((k, d)), np.zeros((k, d)),
        np.zeros(k), np.zeros(d), np.zeros(k), np.zeros((m, k)), np.full((m, k), -1, np.int64),
        np.zeros(k, np.int64), float(getattr(agent, "epsilon", 0.0)),
        float(agent.bonus) if isinstance(agent, LinUCB) else 0.0,
        float(gamma), float(getattr(agent, "alpha", 0.0)) if isinstance(agent, SoftmaxBandit)
        else 0.0, float(getattr(agent, "alpha_rbar", 0.0)))


def _builder(learner):
    def build(agent, task):
        gamma = 0.0
        if isinstance(agent, SquareCB):
            instance = bandit.default_instance()
            gamma = (agent.gamma if agent.gamma is not None else
                     squarecb_gamma(instance.arms, instance.dimension, task.steps, agent.delta,
                                    agent.ridge))
        return Built(learner, _params(agent, task, gamma), np.int64, keep_state=False)
    return build


def _weights(agent, params):
    """``Result.weights``: ``theta`` (K, d), and ``regret`` the expected regret of each bin.

    A bin's regret is the sum over its steps (a step's own with no
    ``bin_size``), so ``np.cumsum(regret)`` is the cumulative regret at the
    bins' ends; the bins are the run's reward bins.
    """
    steps, bin_size = params.count[0], params.count[3]
    return {"theta": params.theta, "regret": params.regret[:-(-steps // bin_size)]}


def _table(weights):
    # The policy over the one-hot features of the contexts: values x_c . theta_a.
    return bandit.default_instance().features @ weights["theta"].T


def _greedy_policy(agent, weights):
    return Policy(EPSILON_GREEDY, _table(weights), epsilon=float(agent.epsilon))


def _softmax_policy(agent, weights):
    return Policy(SOFTMAX, _table(weights))


def _memory(agent, task):
    return 8 * -(-task.steps // _bin_size(task))


_CANNOT = "a contextual-bandit run records its expected regret per bin for one run only"


def _driver(settings, learner, policy=Driver.policy):
    kwargs = {} if policy is Driver.policy else {"policy": policy}
    return Driver(settings, _builder(learner), _weights, check=_check, memory=_memory,
                  cannot_continue=_CANNOT, weight_names=("theta", "regret"), **kwargs)


EPSILON_GREEDY_LS_DRIVER = _driver(EpsilonGreedyLeastSquares, EPSILON_GREEDY_LS, _greedy_policy)
LIN_UCB_DRIVER = _driver(LinUCB, LIN_UCB)
SQUARE_CB_DRIVER = _driver(SquareCB, SQUARE_CB)
SOFTMAX_BANDIT_DRIVER = _driver(SoftmaxBandit, SOFTMAX_BANDIT, _softmax_policy)
