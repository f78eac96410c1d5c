"""Agent settings: validated, frozen descriptions of an actor-critic learner.

The settings objects hold no learned state; :func:`avgreward.train` turns them
into plain floats for the jitted kernels.  Step sizes follow Sutton & Barto's
convention for tile coding: ``alpha_w`` and the actor step sizes are given
independently of the feature map and divided inside by the number of active
features (32 for the pendulum's 32 tilings); ``alpha_rbar`` is used as given.
"""

from __future__ import annotations

import math
import numbers
import operator
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol, TypeVar

from avgreward.options import check_positive

__all__ = ["SoftmaxActorCritic", "GaussianActorCritic", "Reinforce", "EpisodicActorCritic",
           "DifferentialSarsa", "DifferentialQLearning", "RVIQLearning", "DiscountedSarsa",
           "DiscountedQLearning", "DifferentialTD", "AverageCostTD", "AgentSettings",
           "NaturalActorCritic", "EpsilonGreedyLeastSquares", "LinUCB", "SquareCB",
           "SoftmaxBandit"]


def _real(name: str, value, what: str) -> float:
    """``value`` as a float if it is a real number: int, float or a numpy number
    (sweeps make those), never a bool or a string (``float("1")`` would take it)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be {what}, got {value!r}") from None


def _whole(name: str, value, low: int, high: int, span: str) -> int:
    """``value`` as an int in low..high (``span`` in messages): an int or a numpy
    integer, never a bool or a float."""
    what = f"an integer in {span}"
    if isinstance(value, bool):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be {what}, got {value!r} "
                         f"({type(value).__name__})") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def _check_step_size(name: str, value) -> float:
    number = _real(name, value, "a finite number >= 0")
    if not math.isfinite(number) or number < 0.0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def _check_actors(settings) -> None:
    actors = _whole("actors", settings.actors, 1, 4096, "1..4096")
    object.__setattr__(settings, "actors", actors)
    if actors > 1 and (settings.lambda_w > 0 or settings.lambda_theta > 0):
        raise ValueError(
            f"actors={actors}: parallel actors (A2C) average one-step updates; "
            f"lambda_w and lambda_theta must be 0, got {settings.lambda_w} and "
            f"{settings.lambda_theta}")


def _check_lambda(name: str, value) -> float:
    number = _real(name, value, "a number in [0, 1]")
    if not (0.0 <= number <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return number


_S = TypeVar("_S", bound="_Settings")


class _Settings:
    """Shared behaviour: validation on construction, dict round trip."""

    kind: str = ""

    # Settings added after records were first written, left out of to_dict() at
    # the value those records mean, so that they and their files stay as they were.
    _left_out_at: dict = {}

    def to_dict(self, complete: bool = False) -> dict:
        """The settings as a plain dict (with a ``"kind"`` key), JSON-ready.

        Settings newer than the first records (``actors`` at 1, ``squash`` at
        None) are left out at the value those records mean, unless
        ``complete``: then every setting is there (to compare settings).
        """
        d = {"kind": self.kind, **asdict(self)}
        if not complete:
            for name, value in self._left_out_at.items():
                if d[name] == value:
                    del d[name]
        return d

    def replace(self: _S, **changes: Any) -> _S:
        """A copy with some settings changed (validated again)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(
                f"unknown setting(s) {sorted(unknown)} for {type(self).__name__}; "
                f"known: {[f.name for f in fields(self)]}"
            )
        return type(self)(**{**asdict(self), **changes})


@dataclass(frozen=True)
class SoftmaxActorCritic(_Settings):
    """Average-reward actor-critic with a softmax policy over discrete actions.

    Sutton & Barto (2nd ed.), section 13.6, with a linear differential critic
    ``v(s) = w . x(s)``, R-bar tracking with the TD error, and preferences
    ``h(s, a) = theta_a . x(s)``; ``pi(a|s) = softmax(h(s, .) / tau)``.

    Parameters
    ----------
    alpha_w : float
        Critic step size, divided by the number of active features.
    alpha_theta : float
        Actor step size, divided by the number of active features.
    alpha_rbar : float
        Step size of the reward-rate estimate R-bar, used as given.
    tau : float, default 1.0
        Softmax temperature, > 0.
    lambda_w, lambda_theta : float, default 0.0
        Trace-decay rates of the critic's and the actor's eligibility traces,
        in [0, 1].  0 gives the one-step actor-critic.
    entropy : float, default 0.0
        Weight ``beta_H`` of the entropy bonus: each step also adds
        ``alpha_theta * entropy * grad H(pi(.|S))`` to theta (not traced).
    actors : int, default 1
        Parallel actors (A2C, :mod:`avgreward.parallel`): this many copies of
        the environment step in lockstep with the same weights, and each
        update is the mean of their one-step updates (R-bar with the mean TD
        error).  A run's ``steps`` then count updates, each taking ``actors``
        environment steps.  Needs lambdas 0.

    Examples
    --------
    The spec's reference setting for the pendulum swing-up:

    >>> SoftmaxActorCritic(alpha_w=2**1, alpha_theta=2**-2, alpha_rbar=2**-6)
    SoftmaxActorCritic(alpha_w=2.0, alpha_theta=0.25, alpha_rbar=0.015625, tau=1.0, lambda_w=0.0, lambda_theta=0.0, entropy=0.0, actors=1)
    """

    alpha_w: float
    alpha_theta: float
    alpha_rbar: float
    tau: float = 1.0
    lambda_w: float = 0.0
    lambda_theta: float = 0.0
    entropy: float = 0.0
    actors: int = 1

    kind = "softmax"
    _left_out_at = {"actors": 1}

    def __post_init__(self):
        for name in ("alpha_w", "alpha_theta", "alpha_rbar", "entropy"):
            object.__setattr__(self, name, _check_step_size(name, getattr(self, name)))
        for name in ("lambda_w", "lambda_theta"):
            object.__setattr__(self, name, _check_lambda(name, getattr(self, name)))
        _check_actors(self)
        tau = _real("tau", self.tau, "a finite number > 0")
        if not (math.isfinite(tau) and tau > 0.0):
            raise ValueError(f"tau must be a finite number > 0, got {self.tau!r}")
        object.__setattr__(self, "tau", tau)

    @classmethod
    def pendulum_reference(cls, **changes: Any) -> SoftmaxActorCritic:
        """The spec's reference setting for the swing-up (actor 2^-2, critic 2^1, R-bar 2^-6)."""
        return cls(alpha_w=2.0**1, alpha_theta=2.0**-2, alpha_rbar=2.0**-6).replace(**changes)


@dataclass(frozen=True)
class GaussianActorCritic(_Settings):
    """Average-reward actor-critic with a Gaussian policy over a 1-D continuous action.

    ``mu(s) = theta_mu . x(s)`` and ``sigma(s) = sigma_min + exp(theta_sigma . x(s))``
    (with the default ``sigma_min = 0`` this is the textbook exp-linear standard
    deviation).  Scores, for the value ``a`` actually sampled (before the
    environment clips it; squashed, ``a`` is ``u``, see ``squash``)::

        grad_mu    ln pi = (a - mu) / sigma^2 x(s)
        grad_sigma ln pi = ((a - mu)^2 / sigma^2 - 1) * exp(theta_sigma . x) / sigma * x(s)

    Parameters
    ----------
    alpha_w : float
        Critic step size, divided by the number of active features.
    alpha_mu, alpha_sigma : float
        Step sizes of the mean and standard-deviation weights, divided by the
        number of active features.
    alpha_rbar : float
        Step size of R-bar, used as given.
    lambda_w, lambda_theta : float, default 0.0
        Trace-decay rates (critic; both actor parts), in [0, 1].
    scale_mean_gradient : bool, default False
        Use ``(a - mu) x(s)``, the mean score multiplied by sigma^2, as the
        mean's update direction (Degris, Pilarski & Sutton 2012).  It keeps the
        mean's steps bounded as sigma shrinks.
    sigma_min : float, default 0.0
        Floor on the standard deviation, added smoothly:
        ``sigma = sigma_min + exp(theta_sigma . x)`` (differentiable, so the
        score stays exact).
    entropy : float, default 0.0
        Weight of the entropy bonus ``alpha_sigma * entropy * grad H`` with
        ``H = ln sigma + const`` (squashed: the entropy of ``u``).
    squash : bool or None, default None
        Squash the Gaussian into a bounded action ``[low, high]``:
        ``u ~ N(mu(s), sigma(s)^2)`` and the environment gets
        ``a = low + (high - low) (tanh(u) + 1) / 2``.  ``False``: the sample
        itself is the action and the environment clips it.  ``None``
        (automatic): squashed on a gymnasium environment that is not this
        package's and has a bounded ``Box`` action, unsquashed otherwise (this
        package's environments run unsquashed, as the fused loop does).
        Only the stepwise path (:mod:`avgreward.stepwise`) squashes.

    Notes
    -----
    With all weights at 0 the initial policy is ``N(0, (sigma_min + 1)^2)``.
    :meth:`pendulum_default` gives a setting that learns the continuous
    swing-up (see its docstring).

    *Why squash.*  Unsquashed, the score is that of the sample, which the
    environment then clips: when the best action lies at a bound, samples
    beyond it are as good as the bound, and nothing stops the mean from
    walking out of the box (on gymnasium's Pendulum-v1 it reached 2e8 in
    300,000 steps).  Squashed, every ``u`` maps to a distinct action inside
    the box, so the policy's gradient is taken where the environment acts.

    *The squashed score is the Gaussian's score of u.*  ``a = f(u)`` with
    ``f`` strictly increasing and free of theta, so the action's density is
    ``pi(a|s) = N(u; mu(s), sigma(s)^2) / f'(u)`` with ``u = f^-1(a)`` and
    ``f'(u) = (high - low) (1 - tanh(u)^2) / 2``.  For the action taken, ``u``
    does not depend on theta, so ``grad_theta ln f'(u) = 0`` and::

        grad_theta ln pi(a|s) = grad_theta ln N(u; mu(s), sigma(s)^2)

    the scores above with ``a`` replaced by ``u``; the likelihood-ratio
    gradient, and so the update, is the unsquashed one applied to ``u``.
    (A Beta policy, Chou et al. 2017, also has bounded support, but needs
    its own score and digamma functions; the squashed Gaussian keeps every
    option here: ``scale_mean_gradient``, ``sigma_min``, traces.)
    """

    alpha_w: float
    alpha_mu: float
    alpha_sigma: float
    alpha_rbar: float
    lambda_w: float = 0.0
    lambda_theta: float = 0.0
    scale_mean_gradient: bool = False
    sigma_min: float = 0.0
    entropy: float = 0.0
    squash: bool | None = None

    kind = "gaussian"
    _left_out_at = {"squash": None}

    def __post_init__(self):
        for name in ("alpha_w", "alpha_mu", "alpha_sigma", "alpha_rbar", "sigma_min", "entropy"):
            object.__setattr__(self, name, _check_step_size(name, getattr(self, name)))
        for name in ("lambda_w", "lambda_theta"):
            object.__setattr__(self, name, _check_lambda(name, getattr(self, name)))
        if not isinstance(self.scale_mean_gradient, bool):
            raise ValueError(
                f"scale_mean_gradient must be True or False, got {self.scale_mean_gradient!r}"
            )
        if self.squash is not None and not isinstance(self.squash, bool):
            raise ValueError(
                f"squash must be True, False or None (automatic), got {self.squash!r}"
            )

    @classmethod
    def pendulum_default(cls, **changes: Any) -> GaussianActorCritic:
        """A setting that learns the continuous swing-up.

        Critic 2^0, mean 2^-4, sigma 2^-6, R-bar 2^-6, with the mean gradient
        scaled by sigma^2.  Chosen by a small sweep: on 20 of 20 seeds the
        mean reward over the last 10% of 200,000 steps is above -0.03 (the
        best possible is 0).  Without the scaling the mean's steps grow as
        1/sigma^2 while sigma shrinks, and most settings lose the balance again.
        """
        return cls(
            alpha_w=2.0**0, alpha_mu=2.0**-4, alpha_sigma=2.0**-6, alpha_rbar=2.0**-6,
            scale_mean_gradient=True,
        ).replace(**changes)


@dataclass(frozen=True)
class Reinforce(_Settings):
    """REINFORCE, Monte-Carlo policy gradient (Sutton & Barto, section 13.3), episodic.

    A softmax policy with linear preferences ``h(s, a) = theta_a . x(s)``;
    after each episode, for ``t = 0 .. T-1`` in order (theta changing inside
    the loop, the score taken at the current theta, as in the box)::

        G     <- sum_{k=t+1}^{T} gamma^(k-t-1) R_k
        theta <- theta + alpha_theta * gamma^t * G * grad ln pi(A_t | S_t, theta)

    The returns are computed backwards, ``G_t = R_{t+1} + gamma G_{t+1}``
    (the plain-Python reference does the same, so the numbers agree to the
    bit).  Runs only on episodic environments in the fused loop.

    Parameters
    ----------
    alpha_theta : float
        Step size, divided by the number of active features.
    gamma : float, default 1.0
        Discount in [0, 1].
    tau : float, default 1.0
        Softmax temperature, > 0.
    initial_preferences : tuple of float, optional
        ``h(s, a)`` of each action in every state at the start (theta's
        columns are set to ``initial_preferences[a] / k`` on every feature);
        default all 0 (the uniform policy).  The book's Figure 13.1 starts the
        short corridor from ``(1.47, -1.47)`` (left, right): right with
        probability 0.05.
    max_episode_steps : int, optional
        Cut each episode after this many steps (truncated: learned from as it
        stands, counted in ``Result.info["truncations"]``).  Default: never;
        an episode longer than 1,000,000 steps (the episode buffer, 8 (k + 3)
        bytes a step) then stops the run with a ValueError saying so.  On the
        short corridor a policy near "always left" or near "always right"
        (right in state 1 goes back to 0) never ends an episode.
    alpha_w : float, optional
        REINFORCE with baseline (section 13.4): a learned state value
        ``v(s, w) = w . x(s)`` (``w`` from 0, step size divided by the number
        of active features) replaces G by ``delta = G - v(S_t, w)`` in theta's
        update, after ``w <- w + alpha_w delta x(S_t)``.  Default: no baseline.
    entropy : float, default 0.0
        Weight ``beta_H`` of the entropy bonus: each ``t`` of the update also
        adds ``alpha_theta * entropy * grad H(pi(.|S_t))`` to theta, with the
        probabilities of that ``t``'s score (no ``gamma^t``: the notes'
        ``beta sum_t grad H``).
    policy : {"softmax", "gaussian"}, default "softmax"
        ``"gaussian"``: one continuous action ``A ~ N(mu(s), sigma(s)^2)``,
        ``mu = theta_mu . x``, ``sigma = sigma_min + exp(theta_sigma . x)``
        (:mod:`avgreward.learners.gaussian_episodic`): the mean moves with
        ``alpha_theta``, log-sigma with ``alpha_sigma``; ``initial_preferences``
        are then ``(mean, log sigma)``; the entropy bonus acts on sigma.
    alpha_sigma : float, optional
        The Gaussian's log-sigma step size (default ``alpha_theta``), divided
        by the number of active features.
    sigma_min : float, default 0.0
        The Gaussian's floor on sigma.
    behaviour : tuple of float, optional
        Off-policy REINFORCE with per-decision ratios: the actions are drawn
        from this fixed behaviour policy ``b`` (the probability of each action,
        the same in every state, each > 0: the softmax target acts with every
        action), and the update after each episode is, for ``t = 0 .. T-1``
        in order (``rho_t = pi(A_t|S_t) / b(A_t)`` with the theta that acted,
        ``rho_{0:t}`` their product up to ``t``)::

            H_t   <- R_{t+1} + gamma rho_{t+1} H_{t+1}      (H_T = 0, backwards)
            theta <- theta + alpha_theta gamma^t rho_{0:t} H_t grad ln pi(A_t | S_t, theta)

        ``rho_{0:t} H_t = sum_{k>=t} gamma^(k-t) rho_{0:k} R_{k+1}``: each reward
        weighted by the ratios up to its own action (per-decision importance
        sampling, Precup, Sutton & Singh 2000), an unbiased estimate of the
        target's gradient (:mod:`avgreward.importance_sampling`).  Softmax
        only, without ``alpha_w`` or ``entropy``.  Default: on-policy.

    Examples
    --------
    >>> Reinforce(alpha_theta=2**-13, initial_preferences=(1.47, -1.47))
    Reinforce(alpha_theta=0.0001220703125, gamma=1.0, tau=1.0, initial_preferences=(1.47, -1.47), max_episode_steps=None, alpha_w=None, entropy=0.0, policy='softmax', alpha_sigma=None, sigma_min=0.0, behaviour=None)
    """

    alpha_theta: float
    gamma: float = 1.0
    tau: float = 1.0
    initial_preferences: tuple | None = None
    max_episode_steps: int | None = None
    alpha_w: float | None = None
    entropy: float = 0.0
    policy: str = "softmax"
    alpha_sigma: float | None = None
    sigma_min: float = 0.0
    behaviour: tuple | None = None

    kind = "reinforce"
    _left_out_at = {"entropy": 0.0, "policy": "softmax", "alpha_sigma": None,
                    "sigma_min": 0.0, "behaviour": None}

    def __post_init__(self):
        object.__setattr__(self, "alpha_theta", _check_step_size("alpha_theta",
                                                                 self.alpha_theta))
        if self.alpha_w is not None:
            object.__setattr__(self, "alpha_w", _check_step_size("alpha_w", self.alpha_w))
        object.__setattr__(self, "gamma", _check_lambda("gamma", self.gamma))
        object.__setattr__(self, "entropy", _check_step_size("entropy", self.entropy))
        _check_tau_and_preferences(self)
        _check_policy_kind(self)
        if self.max_episode_steps is not None:
            object.__setattr__(self, "max_episode_steps",
                               _whole("max_episode_steps", self.max_episode_steps, 1, 2**31,
                                      "1..2**31"))
        if self.behaviour is not None:
            _check_behaviour(self)


def _check_behaviour(settings) -> None:
    """Off-policy REINFORCE's ``behaviour``: a probability > 0 for each action, summing to 1."""
    value = settings.behaviour
    try:
        probs = tuple(_real("behaviour", x, "probabilities, one per action") for x in value)
    except (TypeError, ValueError):
        raise ValueError("behaviour must be probabilities, one per action, got "
                         f"{value!r}") from None
    if len(probs) < 2 or not all(math.isfinite(x) and x >= 0.0 for x in probs):
        raise ValueError("behaviour must be non-negative finite probabilities, one per action "
                         f"(at least two), got {value!r}")
    if abs(sum(probs) - 1.0) > 1e-9:
        raise ValueError(f"behaviour must sum to 1 (a stochastic policy), got {value!r} "
                         f"(sum {sum(probs)!r})")
    zero = [a for a, x in enumerate(probs) if x == 0.0]
    if zero:
        raise ValueError(f"behaviour gives action(s) {zero} probability 0, where the softmax "
                         "target can act: no importance ratio corrects that")
    for name, off in (("policy", settings.policy != "softmax"),
                      ("alpha_w", settings.alpha_w is not None),
                      ("entropy", settings.entropy > 0.0)):
        if off:
            raise ValueError(f"behaviour: off-policy REINFORCE is softmax only, without a "
                             f"baseline or an entropy bonus; got {name}="
                             f"{getattr(settings, name)!r}")
    object.__setattr__(settings, "behaviour", probs)


@dataclass(frozen=True)
class EpisodicActorCritic(_Settings):
    """One-step actor-critic, episodic (Sutton & Barto, section 13.5), traces optional.

    A softmax policy with linear preferences and a linear critic ``v(s, w)``;
    each step, with ``v(terminal) = 0``::

        delta   <- R + gamma v(S', w) - v(S, w)
        z_w     <- gamma lambda_w z_w + x(S)
        z_theta <- gamma lambda_theta z_theta + I grad ln pi(A | S, theta)
        w       <- w + alpha_w delta z_w;   theta <- theta + alpha_theta delta z_theta
        I       <- gamma I

    with ``I = 1`` and the traces 0 at each episode's start (lambdas 0: the
    one-step box).  Runs only on episodic environments in the fused loop.

    Parameters
    ----------
    alpha_w, alpha_theta : float
        Step sizes, divided by the number of active features.
    gamma : float, default 1.0
    tau : float, default 1.0
    lambda_w, lambda_theta : float, default 0.0
        Trace decay rates (dense traces: meant for tabular tasks).
    initial_preferences : tuple of float, optional
        As :class:`Reinforce`.
    entropy : float, default 0.0
        Weight ``beta_H`` of the entropy bonus: each step also adds
        ``alpha_theta * entropy * grad H(pi(.|S))`` to theta (not traced, no I).
    policy, alpha_sigma, sigma_min
        A Gaussian policy over one continuous action, as :class:`Reinforce`'s.
    actors : int, default 1
        Parallel actors (A2C), as :class:`SoftmaxActorCritic`'s: each copy
        keeps its own I; lambdas 0.
    """

    alpha_w: float
    alpha_theta: float
    gamma: float = 1.0
    tau: float = 1.0
    lambda_w: float = 0.0
    lambda_theta: float = 0.0
    initial_preferences: tuple | None = None
    entropy: float = 0.0
    actors: int = 1
    policy: str = "softmax"
    alpha_sigma: float | None = None
    sigma_min: float = 0.0

    kind = "episodic_actor_critic"
    _left_out_at = {"actors": 1, "entropy": 0.0, "policy": "softmax", "alpha_sigma": None,
                    "sigma_min": 0.0}

    def __post_init__(self):
        for name in ("alpha_w", "alpha_theta", "entropy"):
            object.__setattr__(self, name, _check_step_size(name, getattr(self, name)))
        for name in ("gamma", "lambda_w", "lambda_theta"):
            object.__setattr__(self, name, _check_lambda(name, getattr(self, name)))
        _check_tau_and_preferences(self)
        _check_actors(self)
        _check_policy_kind(self)


def _check_policy_kind(settings) -> None:
    """``policy``, ``alpha_sigma`` and ``sigma_min`` of the episodic learners."""
    if settings.policy not in ("softmax", "gaussian"):
        raise ValueError(f"policy must be 'softmax' or 'gaussian', got {settings.policy!r}")
    if settings.alpha_sigma is not None:
        object.__setattr__(settings, "alpha_sigma",
                           _check_step_size("alpha_sigma", settings.alpha_sigma))
        if settings.policy != "gaussian":
            raise ValueError("alpha_sigma is the Gaussian policy's; set policy='gaussian'")
    object.__setattr__(settings, "sigma_min", _check_step_size("sigma_min", settings.sigma_min))
    if settings.policy == "gaussian":
        if settings.tau != 1.0:
            raise ValueError("tau is the softmax policy's temperature; a Gaussian policy "
                             "has none (leave tau at 1)")
        if (settings.initial_preferences is not None
                and len(settings.initial_preferences) != 2):
            raise ValueError("initial_preferences of a Gaussian policy are (mean, log "
                             f"sigma), got {settings.initial_preferences!r}")
        if getattr(settings, "actors", 1) > 1:
            raise ValueError("parallel actors (actors > 1) are for the softmax policy")


def _check_tau_and_preferences(settings) -> None:
    tau = _real("tau", settings.tau, "a finite number > 0")
    if not (math.isfinite(tau) and tau > 0.0):
        raise ValueError(f"tau must be a finite number > 0, got {settings.tau!r}")
    object.__setattr__(settings, "tau", tau)
    if settings.initial_preferences is not None:
        try:
            prefs = tuple(_real("initial_preferences", x, "numbers, one per action")
                          for x in settings.initial_preferences)
        except (TypeError, ValueError):
            raise ValueError("initial_preferences must be numbers, one per action, got "
                             f"{settings.initial_preferences!r}") from None
        if not prefs or not all(math.isfinite(x) for x in prefs):
            raise ValueError("initial_preferences must be finite numbers, one per action, "
                             f"got {settings.initial_preferences!r}")
        object.__setattr__(settings, "initial_preferences", prefs)


@dataclass(frozen=True)
class DifferentialSarsa(_Settings):
    """Differential semi-gradient Sarsa (Sutton & Barto, section 10.3), epsilon-greedy.

    Linear action values ``q(s, a, w) = w_a . x(s)`` (one-hot features: tabular)
    and, each step, ``A' ~ epsilon-greedy(q(S', .))``, ``delta = R - Rbar +
    q(S', A') - q(S, A)``, ``Rbar += beta delta``, ``w_A += alpha delta x(S)``
    (:mod:`avgreward.learners.value`).  Continuing tasks (on an episodic one
    the stream goes on from the next start).

    Parameters
    ----------
    alpha : float
        Step size of ``w``, divided by the number of active features.
    beta : float
        Step size of R-bar, used as given.
    epsilon : float, default 0.1
        Exploration probability, in [0, 1].
    n : int, default 1
        n-step differential Sarsa (section 10.4): the update of ``(S_tau, A_tau)``,
        ``tau = t - n + 1``, uses ``sum_{i=tau+1}^{tau+n} (R_i - Rbar) +
        q(S_{tau+n}, A_{tau+n})``.
    """

    alpha: float
    beta: float
    epsilon: float = 0.1
    n: int = 1

    kind = "differential_sarsa"
    _left_out_at = {"n": 1}

    def __post_init__(self):
        for name in ("alpha", "beta"):
            object.__setattr__(self, name, _check_step_size(name, getattr(self, name)))
        object.__setattr__(self, "epsilon", _check_lambda("epsilon", self.epsilon))
        object.__setattr__(self, "n", _whole("n", self.n, 1, 100_000, "1..100,000"))


@dataclass(frozen=True)
class DifferentialQLearning(_Settings):
    """Differential Q-learning (Wan, Naik & Sutton 2021), epsilon-greedy behaviour.

    Each step ``delta = R - Rbar + max_a q(S', a) - q(S, A)``,
    ``w_A += alpha delta x(S)``, ``Rbar += eta alpha delta``
    (:mod:`avgreward.learners.value`).

    Parameters
    ----------
    alpha : float
        Step size, divided by the number of active features (also in R-bar's step).
    eta : float
        R-bar's step is ``eta * alpha``; > 0 (with 0 R-bar would stay 0 and
        the values grow without bound).
    epsilon : float, default 0.1
    """

    alpha: float
    eta: float
    epsilon: float = 0.1

    kind = "differential_q_learning"

    def __post_init__(self):
        for name in ("alpha", "eta"):
            object.__setattr__(self, name, _check_step_size(name, getattr(self, name)))
        if self.eta == 0.0:
            raise ValueError(f"eta must be > 0 (R-bar's step is eta * alpha), got {self.eta!r}")
        object.__setattr__(self, "epsilon", _check_lambda("epsilon", self.epsilon))


#: The reference functions f of :class:`RVIQLearning`.
RVI_REFERENCES = ("fixed", "max", "mean")


@dataclass(frozen=True)
class RVIQLearning(_Settings):
    """RVI Q-learning (Abounadi, Bertsekas & Borkar 2001), epsilon-greedy behaviour.

    Differential Q-learning with R-bar replaced by a function f of the values
    themselves (Wan, Naik & Sutton 2021, section 3): each step
    ``delta = R - f(q) + max_a q(S', a) - q(S, A)`` and ``w_A += alpha delta
    x(S)``, with f of the values before the update; nothing else is learned
    (:mod:`avgreward.learners.rvi`).  In the tabular case the values converge
    to a solution with ``f(q) = r*``, the optimal reward rate.  The run's
    ``rbar`` trace records f(q), the value the step's TD error used.

    Parameters
    ----------
    alpha : float
        Step size, divided by the number of active features.
    epsilon : float, default 0.1
        Exploration probability, in [0, 1].
    reference : {"fixed", "max", "mean"}, default "fixed"
        f: the value of one reference state-action pair, ``q(s_ref, a_ref)``
        ("fixed", any feature map); the largest of all the weights
        ("max") or their mean ("mean"), both over every ``(feature,
        action)`` entry and only for tabular feature maps (one active
        feature per state, so each entry is one state-action value).
    reference_state : int or sequence of float, default 0
        The fixed reference's state: an int is a feature index of a tabular
        map (state ``s`` of :func:`~avgreward.features.one_hot`; access
        control's state ``free * 4 + priority``), a sequence an observation
        of the environment, coded by the run's feature map (any map).
    reference_action : int, default 0
        The fixed reference's action.
    """

    alpha: float
    epsilon: float = 0.1
    reference: str = "fixed"
    reference_state: Any = 0
    reference_action: int = 0

    kind = "rvi_q_learning"

    def __post_init__(self):
        object.__setattr__(self, "alpha", _check_step_size("alpha", self.alpha))
        object.__setattr__(self, "epsilon", _check_lambda("epsilon", self.epsilon))
        if not isinstance(self.reference, str) or self.reference not in RVI_REFERENCES:
            raise ValueError(f"reference must be 'fixed', 'max' or 'mean', "
                             f"got {self.reference!r}")
        state = self.reference_state
        if isinstance(state, (list, tuple)):
            values = tuple(_real("reference_state", x, "an observation of finite numbers")
                           for x in state)
            if not values or not all(math.isfinite(x) for x in values):
                raise ValueError("reference_state must be a feature index or an observation "
                                 f"of finite numbers, got {state!r}")
            state = values
        else:
            state = _whole("reference_state", state, 0, 2**62, "0..2**62 (a feature index) "
                           "or an observation (a sequence of numbers)")
        object.__setattr__(self, "reference_state", state)
        object.__setattr__(self, "reference_action", _whole(
            "reference_action", self.reference_action, 0, 2**31, "0..2**31"))
        # A reference pair given with max or mean would be silently unused.
        if self.reference != "fixed" and (state != 0 or self.reference_action != 0):
            raise ValueError(f"reference_state and reference_action name the fixed "
                             f"reference's pair; with reference={self.reference!r} leave them "
                             f"at 0, got {state!r} and {self.reference_action!r}")

    def to_dict(self, complete: bool = False) -> dict:
        d = super().to_dict(complete)
        if isinstance(d["reference_state"], tuple):
            d["reference_state"] = list(d["reference_state"])  # JSON has no tuple
        return d


class _Discounted(_Settings):
    """Discounted control with optional reward centering (Naik et al. 2024)."""

    def __post_init__(self):
        object.__setattr__(self, "alpha", _check_step_size("alpha", self.alpha))
        object.__setattr__(self, "epsilon", _check_lambda("epsilon", self.epsilon))
        object.__setattr__(self, "gamma", _check_lambda("gamma", self.gamma))
        if self.gamma >= 1.0:
            raise ValueError("gamma must be < 1 (gamma = 1 is DifferentialSarsa or "
                             "DifferentialQLearning)")
        centering = self.centering
        if centering is not None and (not isinstance(centering, str)
                                      or centering not in ("simple", "td")):
            raise ValueError(f"centering must be None, 'simple' or 'td', got {centering!r}")
        beta = _check_step_size("beta", self.beta)
        object.__setattr__(self, "beta", beta)
        # A beta without centering would be silently unused; centering with beta 0
        # would be no centering under another name.
        if centering is None and beta != 0.0:
            raise ValueError(f"beta is R-bar's step size and needs centering='simple' or "
                             f"'td'; without centering leave it 0, got beta={beta!r}")
        if centering is not None and beta == 0.0:
            raise ValueError(f"centering={centering!r} needs beta > 0 (R-bar's step size)")
        if centering == "simple" and beta > 1.0:
            raise ValueError(f"simple centering's beta is an averaging rate in (0, 1], "
                             f"got {beta!r}")


_DISCOUNTED_DOC = """{what} with reward centering optional (Naik et al. 2024, "Reward Centering").

    Each step ``delta = (R - Rbar) + gamma {target} - q(S, A)``,
    ``w_A += alpha delta x(S)``, and R-bar (0 without centering) moves by
    simple centering ``Rbar += beta (R - Rbar)`` or TD-based centering
    ``Rbar += beta alpha delta`` (beta is the paper's eta)
    (:mod:`avgreward.learners.value`); epsilon-greedy behaviour.

    Parameters
    ----------
    alpha : float
        Step size, divided by the number of active features.
    gamma : float
        Discount in [0, 1).
    epsilon : float, default 0.1
    centering : {{None, "simple", "td"}}, default None
    beta : float, default 0.0
        R-bar's step size (simple) or its eta (td).
    """


@dataclass(frozen=True)
class DiscountedQLearning(_Discounted):
    alpha: float
    gamma: float
    epsilon: float = 0.1
    centering: str | None = None
    beta: float = 0.0

    kind = "discounted_q_learning"


@dataclass(frozen=True)
class DiscountedSarsa(_Discounted):
    alpha: float
    gamma: float
    epsilon: float = 0.1
    centering: str | None = None
    beta: float = 0.0

    kind = "discounted_sarsa"


DiscountedQLearning.__doc__ = _DISCOUNTED_DOC.format(what="Discounted Q-learning",
                                                     target="max_a q(S', a)")
DiscountedSarsa.__doc__ = _DISCOUNTED_DOC.format(what="Discounted Sarsa", target="q(S', A')")


def _policy_table(name: str, value) -> tuple:
    """A fixed policy over a tabular task's states, as a tuple of rows of floats.

    ``value`` is an array-like ``[n_states, n_actions]`` (rows: probability
    distributions) or a :class:`~avgreward.result.Result` of a tabular
    environment, whose frozen policy is read at every state's observation.
    Kept as tuples of Python floats: hashable, and exact through JSON.
    """
    if value is None:
        raise ValueError(f"{name} must be a policy: an array [n_states, n_actions] or a Result")
    if hasattr(value, "policy") and hasattr(value, "env_id") and callable(value.policy):
        from avgreward import exact  # only for a Result: settings import nothing heavy

        value = exact.policy_on_states(exact.model_of(value.env_id), value.policy)
    try:
        rows = [[_real(name, x, "probabilities") for x in row] for row in value]
    except TypeError:
        raise ValueError(f"{name} must be an array [n_states, n_actions] of probabilities, "
                         f"got {value!r}") from None
    if not rows or len({len(row) for row in rows}) != 1 or not rows[0]:
        raise ValueError(f"{name} must be a non-empty array [n_states, n_actions], got "
                         f"rows of lengths {sorted({len(row) for row in rows})}")
    for s, row in enumerate(rows):
        if not all(math.isfinite(x) and x >= 0.0 for x in row) or abs(sum(row) - 1.0) > 1e-9:
            raise ValueError(f"{name}: row {s} must be probabilities summing to 1, got {row}")
    return tuple(tuple(row) for row in rows)


def _check_prediction(settings, rate: str, what: str) -> None:
    """The prediction learners' settings: ``alpha``, R-bar's ``rate`` (> 0, ``what`` it
    is), ``lambda_``, ``target`` and ``behaviour``."""
    object.__setattr__(settings, "alpha", _check_step_size("alpha", settings.alpha))
    value = _check_step_size(rate, getattr(settings, rate))
    if value <= 0.0:
        raise ValueError(f"{rate} must be > 0 ({what}), got {getattr(settings, rate)!r}")
    object.__setattr__(settings, rate, value)
    object.__setattr__(settings, "lambda_", _check_lambda("lambda_", settings.lambda_))
    target = _policy_table("target", settings.target)
    object.__setattr__(settings, "target", target)
    if getattr(settings, "behaviour", None) is None:
        return
    behaviour = _policy_table("behaviour", settings.behaviour)
    object.__setattr__(settings, "behaviour", behaviour)
    if len(behaviour) != len(target) or len(behaviour[0]) != len(target[0]):
        raise ValueError(f"behaviour must have the target's shape {len(target)} x "
                         f"{len(target[0])}, got {len(behaviour)} x {len(behaviour[0])}")
    for s, (pi, b) in enumerate(zip(target, behaviour)):
        for a, (p, q) in enumerate(zip(pi, b)):
            if p > 0.0 and q == 0.0:
                raise ValueError(f"behaviour must cover the target: at state {s} the target "
                                 f"takes action {a} (probability {p}) and the behaviour never "
                                 "does (rho = pi/b is undefined)")


@dataclass(frozen=True)
class DifferentialTD(_Settings):
    """Differential TD-learning (Wan, Naik & Sutton 2021), on- or off-policy prediction.

    Evaluates the fixed ``target`` policy from the actions of the fixed
    ``behaviour`` policy, with linear values ``v(s) = w . x(s)`` and R-bar;
    each step, with ``rho = target(A|S) / behaviour(A|S)``::

        A     ~ behaviour(.|S)
        delta <- R - Rbar + v(S', w) - v(S, w)
        w     <- w + alpha rho delta x(S)
        Rbar  <- Rbar + eta alpha rho delta

    (the paper's tabular updates, eqs. 3-4, with linear features as in its
    code).  ``lambda_ > 0`` replaces ``x(S)`` in ``w``'s update by the
    per-decision off-policy trace of Sutton & Barto eq. 12.25 with ``gamma =
    1``, ``z <- rho (lambda_ z + x(S))``; R-bar keeps the one-step update (the
    paper defines no traces).  See :mod:`avgreward.learners.prediction`.

    Parameters
    ----------
    alpha : float
        Step size, divided by the number of active features (also in R-bar's step).
    eta : float
        R-bar's step is ``eta * alpha``; > 0.
    lambda_ : float, default 0.0
        Trace decay in [0, 1] (dense traces: meant for tabular tasks).
    target : array_like [n_states, n_actions] or Result
        The policy evaluated, over the tabular environment's states (a
        ``Result``: its frozen policy at each state's observation).
    behaviour : array_like or Result, optional
        The policy that acts; default the target (on-policy).  It must take
        every action the target takes.

    Notes
    -----
    The fused loop knows a state only by its active features: the policies
    must agree on states the features do not tell apart, and the feature at
    some position of the active-feature list must decide both policies
    (one-hot features' always does).
    """

    alpha: float
    eta: float
    lambda_: float = 0.0
    target: Any = None
    behaviour: Any = None

    kind = "differential_td"
    _left_out_at = {"behaviour": None}  # on-policy: nothing to write (TOML has no null)

    def __post_init__(self):
        _check_prediction(self, "eta", "R-bar's step is eta * alpha")


@dataclass(frozen=True)
class AverageCostTD(_Settings):
    """Average-cost TD(lambda) (Tsitsiklis & Van Roy 1999), on-policy prediction.

    Follows and evaluates the fixed policy ``target``; each step::

        A     ~ target(.|S)
        delta <- R - Rbar + v(S', w) - v(S, w)
        z     <- lambda_ z + x(S)
        w     <- w + alpha delta z
        Rbar  <- Rbar + beta (R - Rbar)

    (their eqs. for ``mu_t`` and ``r_t``, rewards for costs, R-bar moved after
    the TD error is taken; ``lambda_ = 0``: ``z = x(S)``).  See
    :mod:`avgreward.learners.prediction`.

    Parameters
    ----------
    alpha : float
        Step size of ``w``, divided by the number of active features.
    beta : float
        Step size of R-bar, used as given; > 0.
    lambda_ : float, default 0.0
        Trace decay in [0, 1] (dense traces: meant for tabular tasks).
    target : array_like [n_states, n_actions] or Result
        The policy followed and evaluated, as :class:`DifferentialTD`'s.
    """

    alpha: float
    beta: float
    lambda_: float = 0.0
    target: Any = None

    kind = "average_cost_td"

    def __post_init__(self):
        _check_prediction(self, "beta", "R-bar's step size")


class AgentSettings(Protocol):
    """Any agent's settings: the type of ``agent`` in :func:`avgreward.train` and of each
    of ``agents`` in :func:`avgreward.experiment.run_experiment`.

    The classes of this module and :class:`avgreward.learners.Custom`; which
    learner runs them is their driver's business (:mod:`avgreward.learners.registry`).
    """

    kind: str

    def to_dict(self, complete: bool = False) -> dict: ...


@dataclass(frozen=True)
class NaturalActorCritic(_Settings):
    """The average-reward natural actor-critic of Bhatnagar, Sutton, Ghavamzadeh & Lee (2009).

    Their Algorithm 3 ("natural actor-critic with advantage parameters"), with
    a softmax policy over linear preferences ``h(s, a) = theta_a . x(s)``,
    ``pi(a|s) = softmax(h(s, .) / tau)``, a linear critic ``v(s) = w . x(s)``
    and advantage weights ``u`` (their ``w``) over the compatible features
    ``psi(s, a) = grad ln pi(a|s)``.  Per step, in their order (their
    symbols in brackets)::

        Rbar  <- (1 - alpha_rbar) Rbar + alpha_rbar R            [J, xi]
        delta <- R - Rbar + w . x(S') - w . x(S)                 (the new Rbar)
        w     <- w + alpha_w delta x(S)                          [v, alpha]
        u     <- u - alpha_advantage psi (psi . u) + alpha_advantage delta psi
        theta <- theta + alpha_theta u                           [beta]

    with ``psi = psi(S, A)``.  The actor's step moves every weight of theta
    by the new ``u``, not only those of the active features: the package does
    it lazily, so a step costs O(k n_actions) (see
    :mod:`avgreward.learners.natural_actor_critic`).  Their projection of theta
    onto a compact set is left out, as in the package's other learners.

    Parameters
    ----------
    alpha_w : float
        Critic step size (their alpha_t on v), divided by the number of active
        features.
    alpha_theta : float
        Actor step size (their beta_t), used as given: the step is along ``u``,
        which estimates the natural gradient, whatever the number of features.
    alpha_rbar : float
        Step size of the reward-rate average (their xi_t), used as given, in [0, 1].
    alpha_advantage : float, optional
        Step size of the advantage weights, divided by the number of active
        features; default ``alpha_w`` (the paper uses one alpha_t for both).
    tau : float, default 1.0
        Softmax temperature, > 0.

    Examples
    --------
    >>> NaturalActorCritic(alpha_w=0.1, alpha_theta=0.01, alpha_rbar=0.01)
    NaturalActorCritic(alpha_w=0.1, alpha_theta=0.01, alpha_rbar=0.01, alpha_advantage=None, tau=1.0)
    """

    alpha_w: float
    alpha_theta: float
    alpha_rbar: float
    alpha_advantage: float | None = None
    tau: float = 1.0

    kind = "natural_actor_critic"
    _left_out_at = {"alpha_advantage": None}  # its default: nothing to write (TOML has no null)

    def __post_init__(self):
        for name in ("alpha_w", "alpha_theta", "alpha_rbar"):
            object.__setattr__(self, name, _check_step_size(name, getattr(self, name)))
        if self.alpha_rbar > 1.0:
            raise ValueError(f"alpha_rbar must lie in [0, 1] (R-bar is an average of rewards), "
                             f"got {self.alpha_rbar!r}")
        if self.alpha_advantage is not None:
            object.__setattr__(self, "alpha_advantage",
                               _check_step_size("alpha_advantage", self.alpha_advantage))
        tau = _real("tau", self.tau, "a finite number > 0")
        if not (math.isfinite(tau) and tau > 0.0):
            raise ValueError(f"tau must be a finite number > 0, got {self.tau!r}")
        object.__setattr__(self, "tau", tau)

    @property
    def advantage_step(self) -> float:
        """The advantage weights' step size: ``alpha_advantage``, or ``alpha_w`` if not set."""
        return self.alpha_w if self.alpha_advantage is None else self.alpha_advantage


# --- the contextual-bandit learners' settings (avgreward.learners.contextual) -------------------------------------------------------------------------------


def _ridge(value) -> float:
    return check_positive("ridge", value)


def _check_delta(value) -> float:
    delta = check_positive("delta", value)
    if delta >= 1.0:
        raise ValueError(f"delta must lie in (0, 1), got {value!r}")
    return delta


@dataclass(frozen=True)
class EpsilonGreedyLeastSquares(_Settings):
    """Epsilon-greedy over per-arm online ridge least squares (:mod:`avgreward.learners.contextual`).

    Parameters
    ----------
    epsilon : float, default 0.1
        Exploration probability, in [0, 1].
    ridge : float, default 1.0
        lambda of ``A_a = lambda I + sum x x^T``, > 0.
    """

    epsilon: float = 0.1
    ridge: float = 1.0

    kind = "epsilon_greedy_least_squares"

    def __post_init__(self):
        object.__setattr__(self, "epsilon", _check_lambda("epsilon", self.epsilon))
        object.__setattr__(self, "ridge", _ridge(self.ridge))


@dataclass(frozen=True)
class LinUCB(_Settings):
    """LinUCB with disjoint linear models (Li et al. 2010, Algorithm 1).

    Parameters
    ----------
    alpha : float or None, default None
        Width of the confidence bonus ``alpha sqrt(x^T A_a^-1 x)``, >= 0.
        None: the paper's ``alpha = 1 + sqrt(ln(2 / delta) / 2)`` (section 3.1).
    delta : float, default 0.05
        The confidence level in that choice, in (0, 1).
    ridge : float, default 1.0
        lambda of ``A_a = lambda I + sum x x^T`` (the paper's ``A_a = I_d``: 1), > 0.
    """

    alpha: float | None = None
    delta: float = 0.05
    ridge: float = 1.0

    kind = "lin_ucb"

    def __post_init__(self):
        if self.alpha is not None:
            object.__setattr__(self, "alpha", _check_step_size("alpha", self.alpha))
        object.__setattr__(self, "delta", _check_delta(self.delta))
        object.__setattr__(self, "ridge", _ridge(self.ridge))

    @property
    def bonus(self) -> float:
        """The bonus's width: ``alpha``, or ``1 + sqrt(ln(2 / delta) / 2)``."""
        if self.alpha is not None:
            return self.alpha
        return 1.0 + math.sqrt(math.log(2.0 / self.delta) / 2.0)


@dataclass(frozen=True)
class SquareCB(_Settings):
    """SquareCB (Foster & Rakhlin 2020): inverse-gap weighting over an online ridge oracle.

    Parameters
    ----------
    gamma : float or None, default None
        The learning rate.  None: Theorem 1's choice for the run's horizon
        T, ``gamma = sqrt(K T / (Reg_Sq(T) + log(2 / delta)))``, with the
        ridge oracle's square-loss regret bound ``Reg_Sq(T) = K d log(1 + T
        / (d ridge))`` (:func:`squarecb_gamma`).
    delta : float, default 0.05
        The confidence level in that choice, in (0, 1).
    ridge : float, default 1.0
        lambda of the oracle's ``A_a = lambda I + sum x x^T``, > 0.
    """

    gamma: float | None = None
    delta: float = 0.05
    ridge: float = 1.0

    kind = "square_cb"

    def __post_init__(self):
        if self.gamma is not None:
            object.__setattr__(self, "gamma", check_positive("gamma", self.gamma))
        object.__setattr__(self, "delta", _check_delta(self.delta))
        object.__setattr__(self, "ridge", _ridge(self.ridge))


@dataclass(frozen=True)
class SoftmaxBandit(_Settings):
    """The softmax policy-gradient (gradient) bandit with linear preferences, REINFORCE's view.

    Parameters
    ----------
    alpha : float, default 0.1
        Step size of the preferences' weights, >= 0.
    alpha_rbar : float, default 0.01
        Step size of the baseline R-bar (the reward rate's estimate), >= 0.
    """

    alpha: float = 0.1
    alpha_rbar: float = 0.01

    kind = "softmax_bandit"

    def __post_init__(self):
        object.__setattr__(self, "alpha", _check_step_size("alpha", self.alpha))
        object.__setattr__(self, "alpha_rbar", _check_step_size("alpha_rbar", self.alpha_rbar))
