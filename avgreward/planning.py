"""Planning from a tabular model: Differential Q-planning and TD-planning (Wan, Naik & Sutton 2021).

:func:`plan` applies ``updates`` one-step updates to tabular values, each
from a transition sampled from a :class:`~avgreward.envs.model.TabularModel`:

1. a state-action pair ``(S, A)``, uniformly from all ``n_states * n_actions``
   pairs (the paper samples pairs from any fixed distribution that gives
   every pair a positive probability; uniform is the one used here);
2. ``S' ~ P[S, A, .]`` and the reward ``R = R[S, A]`` (the model holds
   expected rewards, so the sample model pays the expected reward: the fixed
   points are the same as with sampled rewards);
3. the update, as in the paper's pseudocode:

   - Differential Q-planning: ``delta = R - Rbar + max_a Q(S', a) - Q(S, A)``,
     ``Q(S, A) += alpha delta``, ``Rbar += eta alpha delta``;
   - Differential TD-planning (off-policy, for a target policy ``pi``):
     ``rho = pi(A | S) / b(A | S)`` with ``b`` uniform,
     ``delta = R - Rbar + V(S') - V(S)``, ``V(S) += alpha rho delta``,
     ``Rbar += eta alpha rho delta``.

From ``Q = 0`` (``V = 0``) and ``Rbar = 0``.  With step sizes small enough,
Q-planning's ``Rbar`` tends to the optimal reward rate ``r*`` and TD-planning's
to ``pi``'s rate, the values to a solution of the differential Bellman
equation (unique up to a constant).

Random numbers: one ``numpy.random.default_rng(seed)`` per call, two
uniforms per update (the first picks the pair, ``floor(u n_states n_actions)``
in row-major order; the second ``S'`` by inverse CDF of ``P[S, A]``), drawn in
chunks and consumed by a jitted loop, so a seed gives the same result bit for
bit, whatever the chunking.
"""

from __future__ import annotations

import math
import numbers
import operator
import time
from dataclasses import asdict, dataclass, fields

import numpy as np
from numba import njit

from avgreward.envs.model import TabularModel
from avgreward.features import one_hot
from avgreward.result import DivergenceError, Result

__all__ = ["DifferentialQPlanning", "DifferentialTDPlanning", "plan"]

# Updates per chunk of draws: 16 bytes each, a megabyte at a time.
_CHUNK = 1 << 16


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(float(value)) or float(value) <= 0.0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


class _PlanningSettings:
    """Shared behaviour: the step sizes' check, ``replace`` (validated again)."""

    def __post_init__(self):
        for name in ("alpha", "eta"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))

    def replace(self, **changes):
        """A copy with some settings changed (validated again)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)} for {type(self).__name__}; "
                             f"known: {[f.name for f in fields(self)]}")
        return type(self)(**{**asdict(self), **changes})


@dataclass(frozen=True)
class DifferentialQPlanning(_PlanningSettings):
    """Differential Q-planning (Wan, Naik & Sutton 2021), for :func:`plan`.

    Parameters
    ----------
    alpha : float
        Step size of the action values, > 0.
    eta : float
        R-bar's step is ``eta * alpha``; > 0.
    """

    alpha: float
    eta: float

    kind = "differential_q_planning"


@dataclass(frozen=True)
class DifferentialTDPlanning(_PlanningSettings):
    """Differential (off-policy) TD-planning (Wan, Naik & Sutton 2021), for :func:`plan`.

    Parameters
    ----------
    alpha : float
        Step size of the state values, > 0.
    eta : float
        R-bar's step is ``eta * alpha``; > 0.
    policy : array-like, shape (n_states, n_actions)
        The target policy ``pi[s, a]``: each row non-negative, summing to 1.
        Kept as a tuple of tuples of floats (the settings stay frozen).
    """

    alpha: float
    eta: float
    policy: tuple

    kind = "differential_td_planning"

    def __post_init__(self):
        super().__post_init__()
        try:
            pi = np.array(self.policy, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"policy must be an (n_states, n_actions) array of probabilities, "
                             f"got {self.policy!r}") from None
        if pi.ndim != 2 or pi.size == 0 or not np.all(np.isfinite(pi)) or np.any(pi < 0.0) \
                or not np.allclose(pi.sum(axis=1), 1.0, rtol=0.0, atol=1e-9):
            raise ValueError("policy must be an (n_states, n_actions) array of probabilities, "
                             f"each row summing to 1, got {self.policy!r}")
        object.__setattr__(self, "policy", tuple(tuple(float(p) for p in row) for row in pi))


def _check_model(model) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(model, TabularModel):
        raise ValueError(f"model must be an avgreward.envs.model.TabularModel (for an "
                         f"environment id, avgreward.exact.model_of(id)), got {model!r}")
    if model.terminal:
        raise ValueError(f"model: planning is for continuing tasks, this model has terminal "
                         f"states {model.terminal}")
    P = np.ascontiguousarray(model.P, dtype=np.float64)
    R = np.ascontiguousarray(model.R, dtype=np.float64)
    if P.ndim != 3 or P.shape[0] != P.shape[2] or R.shape != P.shape[:2] or P.size == 0:
        raise ValueError(f"model: P must be (n_states, n_actions, n_states) and R "
                         f"(n_states, n_actions), got {P.shape} and {R.shape}")
    if not (np.all(np.isfinite(P)) and np.all(P >= 0.0)
            and np.allclose(P.sum(axis=2), 1.0, rtol=0.0, atol=1e-9)):
        raise ValueError("model: every P[s, a] must be a probability distribution")
    if not np.all(np.isfinite(R)):
        raise ValueError("model: R must be finite")
    return P, R


def _count(name: str, value, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    try:
        n = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}") from None
    if n < 1 or (high is not None and n > high):
        span = f"1..{high:,}" if high is not None else ">= 1"
        raise ValueError(f"{name} must be an integer {span}, got {value!r}")
    return n


@njit(cache=True)
def sample_next_state(P, last, s, a, u):
    """``S'`` by inverse CDF of ``P[s, a]`` from the uniform ``u`` (``last[s, a]`` if
    rounding leaves ``u`` above the sum: the last state of positive probability)."""
    c = 0.0
    for j in range(P.shape[2]):
        c += P[s, a, j]
        if u < c:
            return j
    return last[s, a]


@njit(cache=True)
def _plan_chunk(control, P, last, R, pi, values, rbar, u, alpha, eta, rewards, rbars,
                first, rbar_every):
    """Updates for the draws ``u`` (one row each), in place on ``values`` and ``rbar[0]``.

    ``first`` is the 0-based number of the chunk's first update; R-bar goes into
    ``rbars`` after every ``rbar_every``-th update.  Returns the index of an update
    whose new value or R-bar is not finite (not applied), or -1.
    """
    n_states, n_actions = R.shape
    pairs = n_states * n_actions
    for i in range(u.shape[0]):
        k = min(int(u[i, 0] * pairs), pairs - 1)
        s = k // n_actions
        a = k - s * n_actions
        s_next = sample_next_state(P, last, s, a, u[i, 1])
        r = R[s, a]
        if control:
            best = values[s_next, 0]
            for b in range(1, n_actions):
                best = max(best, values[s_next, b])
            delta = r - rbar[0] + best - values[s, a]
            value = values[s, a] + alpha * delta
            new_rbar = rbar[0] + eta * alpha * delta
        else:
            rho = pi[s, a] / (1.0 / n_actions)  # b(a | s) uniform
            delta = r - rbar[0] + values[s_next, 0] - values[s, 0]
            value = values[s, 0] + alpha * rho * delta
            new_rbar = rbar[0] + eta * alpha * rho * delta
        # Checked before writing: a diverged run's partial result stays finite.
        if not (math.isfinite(value) and math.isfinite(new_rbar)):
            return i
        values[s, a if control else 0] = value
        rbar[0] = new_rbar
        rewards[i] = r
        done = first + i + 1
        if done % rbar_every == 0:
            rbars[done // rbar_every - 1] = rbar[0]
    return -1


def plan(model: TabularModel, settings, updates: int, seed: int, *,
         rbar_every: int = 1) -> Result:
    """Plan with a tabular model: Differential Q-planning or TD-planning (see the module).

    Parameters
    ----------
    model : avgreward.envs.model.TabularModel
        A continuing task's exact model (``avgreward.exact.model_of(env_id)``
        for one of the package's environments).
    settings : DifferentialQPlanning or DifferentialTDPlanning
    updates : int
        Number of planning updates, >= 1.
    seed : int
        Seed of the run's ``numpy.random.default_rng``, >= 0.
    rbar_every : int, default 1
        Record R-bar after every ``rbar_every``-th update (1..updates).

    Returns
    -------
    Result
        The package's run result, for planning: ``env_id`` is ``""`` (a model,
        no environment), ``agent`` the settings, ``steps`` the updates,
        ``rewards`` the (expected) reward of each update's sampled pair
        (float32), ``rbar``/``rbar_steps`` R-bar after updates
        ``rbar_every, 2 rbar_every, ...``, ``final_rbar``, ``weights["w"]`` the
        values: ``Q`` (n_states, n_actions) or ``V`` (n_states,);
        ``features`` is ``one_hot(n_states)``, so ``result.value(s)`` takes a
        state index (``max_a Q(s, a)`` or ``V(s)``); ``info["sampling"]`` is
        ``"uniform"``.  Planning settings are not learners :func:`avgreward.train`
        runs: ``result.policy``, ``result.save`` and :func:`avgreward.evaluate`
        refuse them (take the greedy policy from ``weights["w"]``).

    Raises
    ------
    ValueError
        Naming the argument: a model that is not a continuing ``TabularModel``,
        settings of another kind, a policy whose shape is not the model's,
        ``updates`` or ``rbar_every`` not an integer in range, a bad seed.
    DivergenceError
        If an update would make a value or R-bar non-finite (too large a step
        size); its ``result`` holds the updates before it.

    Examples
    --------
    >>> import avgreward
    >>> from avgreward import exact
    >>> model = exact.model_of("avgreward/TwoChoice-v0")
    >>> result = avgreward.plan(model, avgreward.DifferentialQPlanning(alpha=0.1, eta=0.1),
    ...                         20_000, seed=0)
    >>> round(result.final_rbar, 6), exact.policy_iteration(model).reward_rate
    (0.4, 0.4)
    >>> int(result.weights["w"][0].argmax())  # right in state 0
    1
    """
    P, R = _check_model(model)
    if not isinstance(settings, (DifferentialQPlanning, DifferentialTDPlanning)):
        raise ValueError(f"settings must be DifferentialQPlanning or DifferentialTDPlanning, "
                         f"got {settings!r}")
    updates = _count("updates", updates)
    rbar_every = _count("rbar_every", rbar_every, updates)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    n_states, n_actions = R.shape
    control = isinstance(settings, DifferentialQPlanning)
    if control:
        pi = np.zeros((1, 1))
        values = np.zeros((n_states, n_actions))
    else:
        pi = np.array(settings.policy)
        if pi.shape != R.shape:
            raise ValueError(f"settings.policy must be (n_states, n_actions) = {R.shape} like the "
                             f"model, got {pi.shape}")
        values = np.zeros((n_states, 1))
    # The last state of positive probability: where rounding of the CDF sends u near 1.
    last = (n_states - 1 - np.argmax(P[:, :, ::-1] > 0.0, axis=2)).astype(np.int64)
    rng = np.random.default_rng(int(seed))
    rewards = np.zeros(updates, dtype=np.float32)
    rbars = np.zeros(updates // rbar_every)
    rbar = np.zeros(1)
    start = time.perf_counter()
    done = 0
    while done < updates:
        n = min(_CHUNK, updates - done)
        u = rng.random((n, 2))
        bad = _plan_chunk(control, P, last, R, pi, values, rbar, u, settings.alpha,
                          settings.eta, rewards[done:done + n], rbars, done, rbar_every)
        if bad >= 0:
            done += bad
            partial = _result(model, settings, int(seed), done, rewards[:done],
                              rbars[:done // rbar_every], rbar_every, rbar[0], values, control,
                              time.perf_counter() - start)
            raise DivergenceError(f"planning diverged: update {done:,} makes the values or "
                                  f"R-bar non-finite (alpha={settings.alpha!r}, eta={settings.eta!r} too "
                                  "large for this model?)", done, partial)
        done += n
    return _result(model, settings, int(seed), updates, rewards, rbars, rbar_every, rbar[0],
                   values, control, time.perf_counter() - start)


def _result(model, settings, seed, steps, rewards, rbars, rbar_every, final_rbar, values,
            control, wall_time) -> Result:
    w = values.copy() if control else values[:, 0].copy()
    return Result(
        env_id="", agent=settings, seed=seed, steps=steps, rewards=rewards, rbar=rbars,
        rbar_steps=np.arange(1, rbars.size + 1, dtype=np.int64) * rbar_every,
        final_rbar=float(final_rbar), weights={"w": w}, features=one_hot(model.n_states),
        wall_time=wall_time, info={"sampling": "uniform"})
