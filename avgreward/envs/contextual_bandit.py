"""A linear contextual bandit as a continuing task: the reward rate is the average reward.

Each step a context ``c`` is drawn i.i.d. from the uniform distribution
``p = 1 / M`` over ``M`` fixed contexts with feature vectors ``x_c`` in R^d; the agent pulls
one of ``K`` arms and is paid ``mu(c, a) = <theta_a, x_c>`` plus noise
(Gaussian with standard deviation ``noise_scale``, or Bernoulli: the reward
is 1 with probability ``mu(c, a)``).  Actions do not change what comes next,
so the optimal reward rate is exactly the finite sum
``r* = sum_c p_c max_a mu(c, a)`` (:func:`optimal_rate`), and the expected
regret of pulling ``a`` in ``c`` is ``gap[c, a] = max_b mu(c, b) - mu(c, a)``.

**The instance** (:func:`bandit_instance`, from its seed): the contexts are
points of the probability simplex (rows of i.i.d. Exp(1) draws, normalised),
the arms' parameters ``theta_a`` uniform in [0, 1]^d.  (A context
distribution other than uniform: repeat a context's vector.)  So every mean is a convex
combination of numbers in [0, 1], a valid Bernoulli probability.

**Random draws.**  The fused loop gives a step one uniform ``u``: the next
context is ``j = floor(M u)`` and the reward's noise is drawn from the
remainder ``v = M u - j``, which is uniform on [0, 1) and independent of
``j`` (it loses about ``log2 M`` of the draw's 53 bits; access control
splits its draw the same way).  Gaussian noise
is ``noise_scale * Phi^-1(v)`` (:func:`normal_quantile`), Bernoulli noise
``1[v < mu]``.

:func:`bandit_transition` is the one definition of the dynamics (the
gymnasium class, for any instance, and the fused loop, for the registered
one); :func:`bandit_model` writes the task as a table for
:mod:`avgreward.exact`.  The fused loop is compiled with the registered
instance's tables as constants (the defaults below): other parameters give
a gymnasium environment stepped from Python.
"""

import math
from collections import namedtuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numba import njit

from avgreward.envs._common import check_render_mode, discrete_action, require_reset
from avgreward.envs.declare import FusedEnv
from avgreward.envs.model import TabularModel
from avgreward.features import one_hot
from avgreward.options import check_int, check_positive

__all__ = ["LINEAR_CONTEXTUAL_BANDIT", "BanditInstance", "bandit_instance", "bandit_transition",
           "bandit_reset", "bandit_step", "bandit_observe", "bandit_model", "optimal_rate",
           "regret_gaps", "normal_quantile", "default_instance", "LinearContextualBanditEnv",
           "GAUSSIAN", "BERNOULLI"]

GAUSSIAN, BERNOULLI = 0, 1
_NOISES = {"gaussian": GAUSSIAN, "bernoulli": BERNOULLI}

# The registered instance (avgreward/LinearContextualBandit-v0).
DIMENSION = 5
ARMS = 5
CONTEXTS = 20
NOISE = "bernoulli"
NOISE_SCALE = 0.5
SEED = 0

BanditInstance = namedtuple("BanditInstance", [
    "dimension", "arms", "contexts", "noise", "noise_scale", "seed",
    "features", "probabilities", "theta", "means"])
BanditInstance.__doc__ = """One linear contextual bandit: its settings and tables.

``features`` (M, d) the contexts' vectors ``x_c``; ``probabilities`` (M,) the
context distribution (uniform, ``1 / M`` each);
``theta`` (K, d) the arms' parameters; ``means`` (M, K) ``mu(c, a) =
<theta_a, x_c>``."""


def bandit_instance(dimension=DIMENSION, arms=ARMS, contexts=CONTEXTS, noise=NOISE,
                    noise_scale=NOISE_SCALE, seed=SEED):
    """The instance of these settings (see the module docstring for how it is drawn).

    Raises
    ------
    ValueError
        Naming the setting: ``dimension < 1``, ``arms < 2``, ``contexts < 1``,
        ``noise`` not "gaussian" or "bernoulli", ``noise_scale <= 0`` (Gaussian),
        ``seed`` not an integer >= 0.
    """
    dimension = check_int("dimension", dimension, 1)
    arms = check_int("arms", arms, 2)
    contexts = check_int("contexts", contexts, 1)
    if noise not in _NOISES:
        raise ValueError(f"noise must be 'gaussian' or 'bernoulli', got {noise!r}")
    noise_scale = check_positive("noise_scale", noise_scale)
    seed = check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    x = rng.exponential(size=(contexts, dimension))
    x /= x.sum(axis=1, keepdims=True)
    theta = rng.random((arms, dimension))
    probabilities = np.full(contexts, 1.0 / contexts)
    means = x @ theta.T
    return BanditInstance(dimension, arms, contexts, noise, noise_scale, seed, x, probabilities,
                          theta, means)


def optimal_rate(instance: BanditInstance) -> float:
    """``r* = sum_c p_c max_a mu(c, a)``, the optimal reward rate (a finite sum, exact)."""
    return float(instance.probabilities @ instance.means.max(axis=1))


def regret_gaps(instance: BanditInstance) -> np.ndarray:
    """``gap[c, a] = max_b mu(c, b) - mu(c, a)``: the expected regret of each pull, (M, K)."""
    return instance.means.max(axis=1, keepdims=True) - instance.means


def bandit_model(instance: BanditInstance) -> TabularModel:
    """The task as a table: states are contexts, ``P[c, a, :] = p``, ``R = mu``, start ``p``."""
    m, k = instance.means.shape
    P = np.broadcast_to(instance.probabilities, (m, k, m)).copy()
    observations = np.arange(m, dtype=np.float64).reshape(m, 1)
    return TabularModel(P=P, R=instance.means.copy(), start=instance.probabilities.copy(),
                        observations=observations)


# Acklam's rational approximation of the normal quantile (relative error < 1.15e-9),
# then one Halley step on Phi(x) - v with erfc, which brings it to double precision.
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00)
_LOW = 0.02425


@njit(cache=True, error_model="numpy")
def normal_quantile(v):
    """``Phi^-1(v)`` for ``v`` in (0, 1): the standard normal's quantile, to double precision."""
    if v < _LOW:
        q = math.sqrt(-2.0 * math.log(v))
        x = ((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
             / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0))
    elif v <= 1.0 - _LOW:
        q = v - 0.5
        r = q * q
        x = ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
             / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0))
    else:
        q = math.sqrt(-2.0 * math.log(1.0 - v))
        x = -((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
              / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0))
    if abs(x) > 37.5:
        # Below v ~ 1e-307 the normal density underflows: Acklam's value, as it is.
        return x
    if x > 0.0:
        # Phi(x) - v as (1 - v) - Q(x): exact 1 - v (v >= 1/2) and no cancellation near 1.
        e = (1.0 - v) - 0.5 * math.erfc(x / math.sqrt(2.0))
    else:
        e = 0.5 * math.erfc(-x / math.sqrt(2.0)) - v
    g = e * math.sqrt(2.0 * math.pi) * math.exp(0.5 * x * x)
    return x - g / (1.0 + 0.5 * x * g)


@njit(cache=True, error_model="numpy", forceinline=True)
def _context(contexts, u):
    """The context ``j = floor(M u)``, and ``M u - j``, uniform on [0, 1) and independent of it."""
    scaled = contexts * u
    j = min(int(scaled), contexts - 1)
    return j, min(max(scaled - j, 0.0), 1.0 - 2.0 ** -53)


@njit(cache=True, error_model="numpy")
def bandit_transition(means, noise, noise_scale, state, action, u, next_state):
    """One step of any instance: the next context into ``next_state``, the reward returned.

    ``state[0]`` is the context pulled in, ``action`` the arm (as a float),
    ``u`` the step's uniform draw (the next context and the noise, see the
    module docstring).
    """
    mean = means[int(state[0]), int(action)]
    j, v = _context(means.shape[0], u)
    next_state[0] = float(j)
    if noise == BERNOULLI:
        return 1.0 if v < mean else 0.0
    # v = 0 only if u is exactly a CDF value: the smallest positive double instead.
    return mean + noise_scale * normal_quantile(max(v, 5e-324))


@njit(cache=True, error_model="numpy")
def bandit_start(contexts, state, u):
    """The first context, ``floor(M u)``."""
    state[0] = float(_context(contexts, u)[0])


_DEFAULT = bandit_instance()
# The registered instance's tables: constants of the compiled functions (module globals,
# computed from the settings above, so the cache stays valid as long as this file does).
_MEANS = _DEFAULT.means
_NOISE_CODE = _NOISES[NOISE]
_SCALE = NOISE_SCALE


def default_instance() -> BanditInstance:
    """The registered instance (``avgreward/LinearContextualBandit-v0``'s)."""
    return _DEFAULT


@njit(cache=True)
def bandit_reset(state, u):
    """The registered instance's reset: the first context from ``u``."""
    bandit_start(CONTEXTS, state, u)


@njit(cache=True)
def bandit_step(state, action, u, next_state):
    """The registered instance's step (:func:`bandit_transition` over its tables)."""
    return bandit_transition(_MEANS, _NOISE_CODE, _SCALE, state, action, u,
                             next_state)


@njit(cache=True)
def bandit_observe(state, obs):
    """The observation is the context's index (its vector is ``instance.features[index]``)."""
    obs[0] = state[0]


def _model():
    return bandit_model(_DEFAULT)


def _features():
    return one_hot(CONTEXTS)


#: The registered linear contextual bandit in the fused loop: one-hot features of the contexts.
LINEAR_CONTEXTUAL_BANDIT = FusedEnv(
    name="LinearContextualBandit", reset=bandit_reset, step=bandit_step, observe=bandit_observe,
    state_size=1, obs_size=1, n_actions=ARMS, obs_low=0.0, obs_high=float(CONTEXTS - 1),
    random_reset=True, random_step=True, model=_model, features=_features,
)


class LinearContextualBanditEnv(gym.Env):
    """A linear contextual bandit, continuing: contexts i.i.d., K arms, linear mean rewards.

    ## Description

    Each step a context ``c`` (one of ``contexts``, drawn i.i.d.
    uniformly) is observed, an arm ``a`` is pulled and the reward
    has mean ``mu(c, a) = <theta_a, x_c>`` (``x_c`` in R^dimension, see
    :mod:`avgreward.envs.contextual_bandit`).  Actions do not change the
    next context, so the average reward of a policy is its expected reward
    per step and the optimal rate is ``sum_c p_c max_a mu(c, a)``
    (:func:`~avgreward.envs.contextual_bandit.optimal_rate`).

    ## Action Space

    ``Discrete(arms)``.

    ## Observation Space

    ``Box(0, contexts - 1, (1,), float64)``: the context's index; its vector
    is ``env.instance.features[index]`` (what a linear learner uses).

    ## Rewards

    ``mu(c, a)`` plus N(0, noise_scale^2) noise (``noise="gaussian"``), or 1
    with probability ``mu(c, a)`` and else 0 (``noise="bernoulli"``).

    ## Starting State

    A context drawn uniformly.

    ## Episode End

    Never (continuing, no step limit).

    ## Arguments

    - ``dimension`` (5): d, the length of the context vectors (>= 1);
    - ``arms`` (5): K, the number of arms (>= 2);
    - ``contexts`` (20): M, the number of contexts (>= 1);
    - ``noise`` ("bernoulli"): "bernoulli" or "gaussian";
    - ``noise_scale`` (0.5): the Gaussian noise's standard deviation (> 0);
    - ``seed`` (0): the instance's seed (not the run's).

    With the defaults it is the registered instance and runs in the fused
    loop (``train("avgreward/LinearContextualBandit-v0", ...)``); with other
    arguments it is an environment of its own, stepped from Python (its class
    declares no fused loop).
    """

    metadata = {"render_modes": []}
    fused = LINEAR_CONTEXTUAL_BANDIT

    def __new__(cls, *args, **kwargs):
        instance = bandit_instance(*_settings(*args, **kwargs))
        if cls is LinearContextualBanditEnv and instance[:6] != _DEFAULT[:6]:
            cls = _OtherInstance
        return super().__new__(cls)

    def __init__(self, dimension=DIMENSION, arms=ARMS, contexts=CONTEXTS, noise=NOISE,
                 noise_scale=NOISE_SCALE, seed=SEED, render_mode=None):
        if render_mode is not None:
            check_render_mode(render_mode)
            raise ValueError(f"render_mode: {type(self).__name__} does not render")
        self.instance = bandit_instance(dimension, arms, contexts, noise, noise_scale, seed)
        self._noise = _NOISES[noise]
        self.observation_space = spaces.Box(0.0, float(max(contexts - 1, 1)), (1,),
                                            dtype=np.float64)
        self.action_space = spaces.Discrete(arms)
        self.state = None

    def reset(self, *, seed=None, options=None):
        """A first context (``seed`` reseeds ``np_random``)."""
        super().reset(seed=seed)
        self.state = np.zeros(1)
        bandit_start(self.instance.contexts, self.state, float(self.np_random.random()))
        return self.state.copy(), {}

    def step(self, action):
        """Pull ``action`` in the current context: ``(next context, reward, False, False, {})``."""
        require_reset(self.state)
        arm = discrete_action(action, self.instance.arms)
        inst = self.instance
        reward = bandit_transition(inst.means, self._noise, inst.noise_scale,
                                   self.state, float(arm), float(self.np_random.random()),
                                   self.state)
        return self.state.copy(), float(reward), False, False, {}

    def model(self) -> TabularModel:
        """The exact model (:func:`~avgreward.envs.contextual_bandit.bandit_model`)."""
        return bandit_model(self.instance)


def _settings(dimension=DIMENSION, arms=ARMS, contexts=CONTEXTS, noise=NOISE,
              noise_scale=NOISE_SCALE, seed=SEED, render_mode=None):
    return dimension, arms, contexts, noise, noise_scale, seed


class _OtherInstance(LinearContextualBanditEnv):
    """A linear contextual bandit with other settings than the registered one's.

    Stepped from Python: the fused loop is compiled for the registered
    instance's tables only, so this class declares none.
    """

    fused = None
