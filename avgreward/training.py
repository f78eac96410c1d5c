"""``train``: one run of an average-reward actor-critic, fused and jitted.

The public function validates everything, allocates the learner's arrays
once, and calls the jitted chunk kernels of :mod:`avgreward.loop`; Python
only sees the loop between chunks (progress, callbacks), and a run cut into
chunks gives bit-for-bit the result of a single call.

Memory: by default a run keeps the reward of every step (4 bytes a step).
With ``bin_size`` the kernels write into one buffer of at most
``chunk_steps`` rewards, folded between chunks into float64 bin sums
(:func:`_fold_bins`), so memory no longer grows with the number of steps and
the bins do not depend on the chunking.  Before allocating, :func:`train`
checks what its arrays would need against the memory available
(:func:`_available_memory`) and says how to avoid a run that cannot fit.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field

import gymnasium
import numpy as np
from numba import njit

import envs
from avgreward.actors import gaussian_parameters, softmax_probabilities
from avgreward.agents import GaussianActorCritic, SoftmaxActorCritic
from avgreward.critic import linear_value
from avgreward.features import TileCoder, binary_pattern, one_hot, pendulum_tile_coder
from avgreward.loop import gaussian_chunk, softmax_chunk, start_features

__all__ = ["train", "Result", "DivergenceError", "default_features", "default_agent",
           "resolve_env", "env_info", "EnvInfo", "ConstantRewardWarning"]

_DEFAULT_CHUNK = 1 << 18
_MAX_RBAR_POINTS = 10_000
# Step counts go on plot axes and into bin_steps as float64: beyond 2**53
# consecutive integers are no longer distinct there.
_MAX_STEPS = 2**53
# The bin count suggested when per-step rewards do not fit (the runner's default).
_SUGGESTED_BINS = 10_000


# Wrappers gymnasium.make puts around every environment: they check the API and
# change nothing the fused loop computes.  Any other wrapper carries meaning.
_CHECKING_WRAPPERS = ("OrderEnforcing", "PassiveEnvChecker")


def _wrappers(env) -> list[str]:
    """Class names of the wrappers around ``env``, outermost first."""
    names = []
    while isinstance(env, gymnasium.Wrapper):
        names.append(type(env).__name__)
        env = env.env
    return names


def _own_env_id(cls):
    """The id of this package's environment class ``cls``, or None."""
    if not hasattr(cls, "kind"):
        return None
    for env_id in envs.ENV_IDS:
        if gymnasium.spec(env_id).entry_point.endswith(":" + cls.__name__):
            return env_id
    return None


def _meaningful_wrappers(env) -> list[str]:
    return [name for name in _wrappers(env) if name not in _CHECKING_WRAPPERS]


def resolve_env(env):
    """The registered id and the environment class of ``env``.

    Parameters
    ----------
    env : str or gymnasium.Env
        A registered id of this package's environments (``"avgreward/LoopMDP-v0"``,
        with or without the ``"envs:"`` module prefix), or an instance of one
        of them, bare or as ``gymnasium.make`` returns it.

    Returns
    -------
    (str, type)

    Raises
    ------
    ValueError
        If ``env`` is not one of this package's environments, or is an
        instance wrapped in a wrapper that changes what it computes (a reward
        transform, a time limit...): the error names the wrappers, since the
        fused loop would silently drop them.
    """
    if isinstance(env, str):
        env_id = env.split(":", 1)[1] if env.startswith("envs:") else env
        if env_id not in envs.ENV_IDS:
            raise ValueError(
                f"env {env!r} is not one of this package's environments; "
                f"expected one of {list(envs.ENV_IDS)}"
            )
        cls = gymnasium.spec(env_id).entry_point
        module, name = cls.split(":")
        return env_id, getattr(__import__(module, fromlist=[name]), name)
    cls = type(getattr(env, "unwrapped", None))
    env_id = _own_env_id(cls)
    if env_id is None:
        raise ValueError(
            f"env must be an id in {list(envs.ENV_IDS)} or an instance of one of those "
            f"environments, got {env!r}"
        )
    wrappers = _meaningful_wrappers(env)
    if wrappers:
        raise ValueError(
            f"env is {env_id} wrapped in {', '.join(wrappers)}: the fused loop runs the "
            "environment's own dynamics and would drop the wrappers; pass the environment "
            "id (or env.unwrapped) to train without them"
        )
    return env_id, cls


def _is_own_env(env) -> bool:
    """Whether :func:`train` runs ``env`` in the fused loop (ours, with no wrapper of meaning)."""
    if isinstance(env, str):
        return (env.split(":", 1)[1] if env.startswith("envs:") else env) in envs.ENV_IDS
    return (_own_env_id(type(getattr(env, "unwrapped", None))) is not None
            and not _meaningful_wrappers(env))


@dataclass(frozen=True)
class EnvInfo:
    """What the runner needs to know of an environment before running it.

    Attributes
    ----------
    env_id : str
    own : bool
        One of this package's environments (the fused loop), else a gymnasium
        environment stepped from Python (:mod:`avgreward.stepwise`).
    n_actions : int
        Discrete actions, or 0 for a one-dimensional continuous action.
    obs_size : int
    """

    env_id: str
    own: bool
    n_actions: int
    obs_size: int


def env_info(env_id: str) -> EnvInfo:
    """:class:`EnvInfo` of a registered id: one of ours or any gymnasium environment.

    Raises
    ------
    ValueError
        If ``env_id`` is not registered, cannot be made, or has spaces the
        actor-critic does not handle (a 1-D ``Box`` observation and a
        ``Discrete`` or 1-D ``Box`` action are needed).
    """
    if not isinstance(env_id, str):
        raise ValueError(f"env must be a registered environment id, got {env_id!r}")
    if _is_own_env(env_id):
        env_id, cls = resolve_env(env_id)
        return EnvInfo(env_id, True, cls.n_actions, cls.obs_size)
    from gymnasium import spaces

    from avgreward.stepwise import _make_env

    env, _ = _make_env(env_id)
    try:
        obs_space, action_space = env.observation_space, env.action_space
    finally:
        env.close()
    if not (isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1):
        raise ValueError(f"env {env_id}: its observation space {obs_space} is not a 1-D Box, "
                         "which the tile coder needs")
    if isinstance(action_space, spaces.Discrete):
        n_actions = int(action_space.n)
    elif isinstance(action_space, spaces.Box) and action_space.shape in ((), (1,)):
        n_actions = 0
    else:
        raise ValueError(f"env {env_id}: its action space {action_space} is neither Discrete "
                         "nor a one-dimensional Box")
    return EnvInfo(env_id, False, n_actions, int(obs_space.shape[0]))


def default_features(env, bounds=None) -> TileCoder:
    """The feature map each environment is learned with unless the user gives one.

    Pendulum swing-up (both): the spec's reference tile coder, 32 tilings of
    8 x 8 over (angle, velocity), angle wrapped.  Loop MDP: one-hot of the
    state.  Aliased gridworld: one-hot of the 4-bit wall pattern (the agent
    cannot tell the aliased cells apart).  Any other gymnasium environment
    (an id): :func:`avgreward.stepwise.default_tile_coder` over ``bounds =
    (low, high)`` or, if not given, the observation space's bounds.
    """
    if not _is_own_env(env):
        from avgreward.stepwise import _features, _make_env

        made, owned = _make_env(env)
        try:
            return _features(env if isinstance(env, str) else type(made.unwrapped).__name__,
                             made.observation_space, None, bounds)
        finally:
            if owned:
                made.close()
    if bounds is not None:
        raise ValueError("bounds only applies to environments that are not this package's")
    env_id, cls = resolve_env(env)
    if cls.kind in (envs.dynamics.PENDULUM_DISCRETE, envs.dynamics.PENDULUM_CONTINUOUS):
        return pendulum_tile_coder()
    if cls.kind == envs.dynamics.LOOP_MDP:
        return one_hot(envs.loop_mdp.N_STATES)
    return binary_pattern(envs.aliased_gridworld.OBS_SIZE)


@dataclass
class Result:
    """What one run of :func:`train` computed.

    Attributes
    ----------
    env_id : str
        The environment's registered id.
    agent : SoftmaxActorCritic or GaussianActorCritic
        The settings the run used.
    seed : int
        The seed of the run's random generator.
    steps : int
        Steps completed (less than asked only in a diverged run's partial result).
    rewards : ndarray
        Without ``bin_size``: the reward of every step, float32, shape ``(steps,)``.
        With ``bin_size=B``: the float64 mean reward of each bin of ``B``
        consecutive steps, shape ``(ceil(steps / B),)``, the last bin
        possibly shorter; ``info["bin_size"]`` is ``B`` and
        ``info["bin_steps"]`` the step count at the end of each bin.
    rbar : ndarray of float64
        R-bar after steps ``rbar_steps``.
    rbar_steps : ndarray of int64
        Step counts (1-based) at which ``rbar`` was recorded: every ``rbar_every`` steps.
    final_rbar : float
        R-bar after the last completed step.
    weights : dict of str to ndarray
        ``"w"`` (critic) and ``"theta"`` (softmax: ``[n_features, n_actions]``)
        or ``"theta_mu"`` and ``"theta_sigma"`` (Gaussian).
    features : TileCoder
        The feature map.
    actions : ndarray or None
        The action of every step if the run recorded them (per step, binned
        or not).
    wall_time : float
        Seconds spent in the run.
    info : dict
        Extra figures: ``"bin_size"`` and ``"bin_steps"`` for binned rewards;
        the stepwise path's episode ends (see :func:`avgreward.stepwise.train_stepwise`).
    """

    env_id: str
    agent: object
    seed: int
    steps: int
    rewards: np.ndarray
    rbar: np.ndarray
    rbar_steps: np.ndarray
    final_rbar: float
    weights: dict
    features: TileCoder
    actions: np.ndarray | None = None
    wall_time: float = 0.0
    info: dict = field(default_factory=dict)

    def _indices(self, observation) -> np.ndarray:
        return self.features.indices(np.atleast_1d(np.asarray(observation, dtype=np.float64)))

    def policy(self, observation):
        """The learned policy at ``observation``.

        Returns
        -------
        ndarray or tuple
            Softmax: the action probabilities.  Gaussian: ``(mean, sigma)``; for
            a squashed actor (``squash``, a bounded gymnasium action) those of
            ``u``, the action being ``low + (high - low) (tanh(u) + 1) / 2``.
        """
        idx = self._indices(observation)
        if isinstance(self.agent, SoftmaxActorCritic):
            probs = np.empty(self.weights["theta"].shape[1])
            softmax_probabilities(self.weights["theta"], idx, self.agent.tau, probs)
            return probs
        theta = np.stack([self.weights["theta_mu"], self.weights["theta_sigma"]], axis=1)
        mu, _, sigma = gaussian_parameters(theta, idx, self.agent.sigma_min)
        return mu, sigma

    def value(self, observation) -> float:
        """The critic's differential value ``w . x(observation)``."""
        return float(linear_value(self.weights["w"], self._indices(observation)))

    def mean_reward(self, start: int = 0, stop: int | None = None) -> float:
        """Mean reward over steps ``start:stop`` (float64 accumulation).

        Parameters
        ----------
        start, stop : int, optional
            Steps as in a slice of the per-step rewards (negative counts
            from the end; ``stop=None`` is the last step).

        Returns
        -------
        float
            On binned rewards (``info["bin_size"]`` = B > 1) the mean of the
            bins in the window weighted by their lengths: the steps' mean up
            to rounding.

        Raises
        ------
        ValueError
            On binned rewards, if ``start`` or ``stop`` is not a bin edge (a
            multiple of B, or ``steps``): the steps inside a bin are gone.
        """
        bin_size = self.info.get("bin_size", 1)
        if bin_size == 1:
            return float(np.mean(self.rewards[start:stop], dtype=np.float64))
        first, last, _ = slice(start, stop).indices(self.steps)
        last = max(first, last)
        if first % bin_size or (last % bin_size and last != self.steps):
            raise ValueError(
                f"mean_reward: start and stop must fall on bin edges (multiples of "
                f"bin_size={bin_size}, or steps={self.steps}) because this result holds "
                f"the means of bins of {bin_size} steps, got start={start!r}, stop={stop!r} "
                f"(steps {first}:{last})"
            )
        ends = _bin_steps(self.steps, bin_size)
        lengths = np.diff(ends, prepend=0)
        window = slice(first // bin_size, -(-last // bin_size))
        if lengths[window].sum() == 0:
            return float(np.mean(self.rewards[:0], dtype=np.float64))  # nan, as numpy's
        return float(np.dot(self.rewards[window], lengths[window]) / lengths[window].sum())


class DivergenceError(RuntimeError):
    """A run's TD error or policy became non-finite.

    Attributes
    ----------
    step : int
        The 0-based step at which it happened; its updates were not applied.
    result : Result
        Everything computed before that step.
    """

    def __init__(self, message: str, step: int, result: Result):
        super().__init__(message)
        self.step = step
        self.result = result


def _check_int(name, value, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_steps(steps):
    """``steps`` as an int, checked: an integer in ``1 .. 2**53``."""
    steps = _check_int("steps", steps, 1)
    if steps > _MAX_STEPS:
        raise ValueError(
            f"steps must be at most 2**53 = {_MAX_STEPS:,} (step counts must stay exact as "
            f"float64, e.g. on plot axes), got {steps:,}"
        )
    return steps


def _check_run_options(steps, rbar_every, chunk_steps, callback, bin_size=None):
    """Validated ``(rbar_every, chunk_steps, bin_size)`` with their defaults; checks ``callback``."""
    if rbar_every is None:
        rbar_every = max(1, -(-steps // _MAX_RBAR_POINTS))
    rbar_every = _check_int("rbar_every", rbar_every, 1)
    chunk_steps = _check_int("chunk_steps", chunk_steps if chunk_steps is not None
                             else _DEFAULT_CHUNK, 1)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable, got {callback!r}")
    if bin_size is not None:
        bin_size = _check_int("bin_size", bin_size, 1)
        if bin_size > steps:
            raise ValueError(f"bin_size ({bin_size:,}) must be at most steps ({steps:,})")
    return rbar_every, chunk_steps, bin_size


def _available_memory():
    """Bytes of memory the run can still take, or None if this system does not say.

    Linux: ``MemAvailable`` of ``/proc/meminfo`` (free memory plus the caches
    the kernel can drop: free memory alone, ``SC_AVPHYS_PAGES``, can be a
    small part of it on a machine that has read large files).  Elsewhere
    ``SC_AVPHYS_PAGES``, else the total physical memory.  (Tests replace this
    function.)
    """
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            count, size = os.sysconf(pages), os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
            continue
        if count > 0 and size > 0:
            return count * size
    return None


def _size(n_bytes):
    """A byte count for people: GB, or MB below a tenth of a GB."""
    if n_bytes >= 1e8:
        return f"{n_bytes / 1e9:,.1f} GB"
    return f"{n_bytes / 1e6:,.1f} MB"


def _check_memory(steps, bin_size, record_actions, rbar_every, chunk_steps):
    """Raise a ValueError saying how to avoid it if a run's arrays exceed the memory available."""
    parts = []  # (bytes, what, how to avoid it)
    if bin_size is None:
        parts.append((4 * steps, "per-step rewards, 4 bytes a step",
                      f"pass bin_size=... (e.g. bin_size="
                      f"{-(-steps // _SUGGESTED_BINS):_} for {_SUGGESTED_BINS:,} bins): rewards "
                      "are then kept per step only for one chunk and returned as bin means, "
                      "so memory does not depend on steps"))
    else:
        parts.append((8 * -(-steps // bin_size),
                      f"{-(-steps // bin_size):,} bin means of {bin_size:,} step(s) each",
                      "pass a larger bin_size"))
        parts.append((4 * min(chunk_steps, steps), "the rewards of one chunk, 4 bytes a step",
                      "pass a smaller chunk_steps"))
    if record_actions:
        parts.append((8 * steps, "recorded actions, 8 bytes a step",
                      "leave record_actions off (it keeps the action of every step)"))
    parts.append((8 * (steps // rbar_every), f"R-bar every {rbar_every:,} steps",
                  "pass a larger rbar_every"))
    need = sum(part[0] for part in parts)
    available = _available_memory()
    if available is None or need <= available:
        return
    # Name only the arrays that matter: a 80 kB R-bar trace beside 4 TB of rewards is noise.
    big = [part for part in parts if part[0] >= need / 100]
    raise ValueError(
        f"steps={steps:,}: the run's arrays would need {_size(need)} ("
        + "; ".join(f"{what}: {_size(size)}" for size, what, _ in big)
        + f") but this machine has {_size(available)} of memory available. To avoid it, "
        + "; and ".join(how for size, _, how in big if size > available / 10) + "."
    )


def _bin_steps(steps, bin_size):
    """Step count at the end of each bin of ``bin_size`` steps (the last may be shorter)."""
    n_bins = -(-steps // bin_size)
    return np.minimum(np.arange(1, n_bins + 1, dtype=np.int64) * bin_size, steps)


@njit(cache=True, error_model="numpy")
def _fold_bins(rewards, n, t0, bin_size, bin_sums):
    """Add the rewards of steps ``t0 .. t0+n-1`` (``rewards[:n]``) into their bins' sums.

    Each bin's sum is built one step at a time in step order, in float64 from
    the float32 rewards (the values a per-step run records), so that it is
    the same to the bit however the run was cut into chunks.
    """
    i = 0
    while i < n:
        b = (t0 + i) // bin_size
        end = min(n, (b + 1) * bin_size - t0)  # past this bin's last step in the buffer
        total = bin_sums[b]
        for j in range(i, end):
            total += np.float64(rewards[j])
        bin_sums[b] = total
        i = end


class _RunArrays:
    """The arrays one run updates in place (the kernels' side of the learner), and its outputs.

    The chunk loop asks :meth:`outputs` where to write the rewards and
    actions of its next chunk and calls :meth:`fold` after it.  Per step
    (``bin_size`` None) those are views of whole-run arrays; binned, the
    rewards go to one buffer of ``min(chunk_steps, steps)`` that :meth:`fold`
    adds into the bin sums.  Invariant: the next chunk starts at step
    ``self.folded``, and the buffer holds the steps from there.
    """

    def __init__(self, env_id, agent, seed, features, n_columns, steps, record_actions,
                 rbar_every, chunk_steps=_DEFAULT_CHUNK, bin_size=None):
        _check_memory(steps, bin_size, record_actions, rbar_every, chunk_steps)
        n_features = features.n_features
        self.env_id, self.agent, self.seed, self.features = env_id, agent, seed, features
        self.started = time.perf_counter()
        self.w = np.zeros(n_features)
        self.theta = np.zeros((n_features, n_columns))
        # Traces are only touched when their lambda is > 0: don't allocate them otherwise.
        self.z_w = np.zeros(n_features if agent.lambda_w > 0 else 0)
        self.z_theta = np.zeros((n_features if agent.lambda_theta > 0 else 0, n_columns))
        self.probs = np.zeros(n_columns)
        self.coef = np.zeros(n_columns)
        self.steps_theta = np.zeros(n_columns)
        self.rbar_box = np.zeros(1)
        self.bin_size = bin_size
        self.folded = 0
        self.record_actions = record_actions
        self.rbar_every = rbar_every
        try:
            # float32 rewards: per step, or a chunk's worth folded into float64 bin sums.
            self.rewards = np.zeros(steps if bin_size is None else min(chunk_steps, steps),
                                    dtype=np.float32)
            self.bin_sums = np.zeros(0 if bin_size is None else -(-steps // bin_size))
            self.actions = np.zeros(steps if record_actions else 0,
                                    dtype=np.int64 if isinstance(agent, SoftmaxActorCritic)
                                    else np.float64)
            self.rbar_trace = np.zeros(steps // rbar_every)
        except MemoryError:
            # Where _available_memory cannot tell, numpy's error is the first sign.
            raise ValueError(
                f"steps={steps:,}: the run's arrays could not be allocated; pass bin_size=... "
                "to keep the memory independent of steps (and leave record_actions off)"
            ) from None

    def outputs(self, t0, n):
        """``(rewards, actions)`` for the kernels to write steps ``t0 .. t0+n-1`` at 0 .. n-1."""
        actions = self.actions[t0:t0 + n] if self.record_actions else self.actions
        if self.bin_size is None:
            return self.rewards[t0:t0 + n], actions
        return self.rewards, actions

    def fold(self, done):
        """Steps up to ``done`` (1-based) are written: add the buffered ones into their bins."""
        if self.bin_size is not None and done > self.folded:
            _fold_bins(self.rewards, done - self.folded, self.folded, self.bin_size,
                       self.bin_sums)
        self.folded = max(self.folded, done)

    def result(self, done, info=None) -> Result:
        """The Result of the first ``done`` steps (their rewards are written)."""
        self.fold(done)
        info = dict(info or {})
        if self.bin_size is None:
            rewards = self.rewards[:done]
        else:
            ends = _bin_steps(done, self.bin_size)
            rewards = self.bin_sums[:ends.size] / np.diff(ends, prepend=0)
            info.update(bin_size=self.bin_size, bin_steps=ends)
        if isinstance(self.agent, SoftmaxActorCritic):
            weights = {"w": self.w, "theta": self.theta}
        else:
            weights = {"w": self.w, "theta_mu": self.theta[:, 0].copy(),
                       "theta_sigma": self.theta[:, 1].copy()}
        n_rbar = done // self.rbar_every
        return Result(
            env_id=self.env_id, agent=self.agent, seed=self.seed, steps=done,
            rewards=rewards, rbar=self.rbar_trace[:n_rbar],
            rbar_steps=np.arange(1, n_rbar + 1, dtype=np.int64) * self.rbar_every,
            final_rbar=float(self.rbar_box[0]), weights=weights, features=self.features,
            actions=self.actions[:done] if self.record_actions else None,
            wall_time=time.perf_counter() - self.started, info=info,
        )

    def diverged(self, step, info=None) -> DivergenceError:
        """The error for a run that went non-finite at ``step``, holding the steps before it."""
        return DivergenceError(
            f"training diverged at step {step}: the TD error or the policy became "
            f"non-finite (env={self.env_id}, seed={self.seed}, {self.agent!r}). Smaller step "
            f"sizes usually help. The result of steps 0..{step - 1} is in this error's "
            ".result.",
            step,
            self.result(step, info),
        )


def train(
    env,
    agent,
    steps: int,
    seed: int,
    features: TileCoder | None = None,
    *,
    record_actions: bool = False,
    rbar_every: int | None = None,
    chunk_steps: int | None = None,
    callback=None,
    bounds=None,
    bin_size: int | None = None,
) -> Result:
    """Run an average-reward actor-critic for ``steps`` steps of a continuing task.

    Parameters
    ----------
    env : str or gymnasium.Env
        One of this package's environments, by id or instance (see
        :func:`resolve_env`): run in the fused jitted loop from the
        environment's start state, drawn with the run's own generator.  Any
        other gymnasium environment (id or instance) with a 1-D ``Box``
        observation and a ``Discrete`` or 1-D ``Box`` action is stepped from
        Python with the same jitted updates, an episode end being a reset
        inside one continuing stream (see :mod:`avgreward.stepwise`).
    agent : SoftmaxActorCritic or GaussianActorCritic
        The learner's settings.  Softmax needs discrete actions, Gaussian the
        continuous pendulum.
    steps : int
        Number of steps, 1 to 2**53.
    seed : int
        Seed of ``np.random.default_rng``, the run's only source of randomness:
        same seed, same numbers, bit for bit.
    features : TileCoder, optional
        Feature map over the observation; :func:`default_features` if omitted.
    record_actions : bool, default False
        Keep the action of every step in ``Result.actions`` (8 bytes a step,
        with or without ``bin_size``).
    rbar_every : int, optional
        Record R-bar every this many steps (default: at most 10,000 points).
    chunk_steps : int, optional
        Steps per jitted call; results do not depend on it.
    callback : callable, optional
        Called as ``callback(steps_done, steps)`` after each chunk (progress bars).
    bounds : (low, high), optional
        Only for environments that are not this package's: bounds of the
        observation for the default tile coder (needed when the observation
        space's bounds are infinite and ``features`` is not given).
    bin_size : int, optional
        Return the mean reward of each bin of this many consecutive steps
        (``1 <= bin_size <= steps``) instead of every step's reward: the
        run then keeps per-step rewards only for one chunk (at most
        ``chunk_steps``), so its memory does not depend on ``steps``.
        ``Result.rewards`` holds ``ceil(steps / bin_size)`` float64 means (the
        last bin may be shorter), each the float64 sum, one step at a time,
        of the float32 rewards a per-step run records, divided by the bin's
        length: the same bits whatever ``chunk_steps``.  ``Result.info``
        gets ``"bin_size"`` and ``"bin_steps"`` (int64 step count at the end
        of each bin).  Default: per-step float32 rewards.

    Returns
    -------
    Result

    Raises
    ------
    ValueError
        On invalid arguments, naming the argument; or if the per-step arrays
        (rewards without ``bin_size``, actions with ``record_actions``) would
        need more memory than the machine has available: the message says how
        much, and ``bin_size`` avoids it.
    DivergenceError
        If the TD error or the policy becomes non-finite; the error holds the
        partial result (binned as asked: the last bin ends at the steps done).

    Examples
    --------
    >>> import avgreward
    >>> agent = avgreward.SoftmaxActorCritic.pendulum_reference()
    >>> result = avgreward.train("avgreward/PendulumSwingUp-v0", agent, steps=20_000, seed=0)
    >>> result.mean_reward(15_000) > -0.05
    True
    >>> binned = avgreward.train("avgreward/PendulumSwingUp-v0", agent, steps=20_000, seed=0,
    ...                          bin_size=1_000)
    >>> binned.rewards.shape, int(binned.info["bin_steps"][-1])
    ((20,), 20000)
    >>> abs(binned.mean_reward(15_000) - result.mean_reward(15_000)) < 1e-12
    True
    """
    if not _is_own_env(env):
        # Not one of ours, or ours inside wrappers that change what it computes:
        # the generic path steps the environment (and its wrappers) from Python.
        from avgreward.stepwise import train_stepwise

        _check_wrapped_own_env(env)
        result = train_stepwise(
            env, agent, steps, seed, features, bounds=bounds, record_actions=record_actions,
            rbar_every=rbar_every, chunk_steps=chunk_steps, callback=callback,
            bin_size=bin_size,
        )
        _warn_if_constant_reward(result)
        return result
    if bounds is not None:
        raise ValueError(
            "bounds only applies to environments that are not this package's; "
            "pass features=TileCoder(...) instead"
        )
    env_id, env_cls = resolve_env(env)
    steps = _check_steps(steps)
    seed = _check_int("seed", seed, 0)
    if isinstance(agent, SoftmaxActorCritic):
        if env_cls.n_actions == 0:
            raise ValueError(
                f"agent: SoftmaxActorCritic needs discrete actions, but {env_id} has a "
                "continuous action; use GaussianActorCritic"
            )
        n_columns = env_cls.n_actions
    elif isinstance(agent, GaussianActorCritic):
        if env_cls.n_actions != 0:
            raise ValueError(
                f"agent: GaussianActorCritic needs a continuous action, but {env_id} has "
                f"{env_cls.n_actions} discrete actions; use SoftmaxActorCritic"
            )
        if agent.squash:
            raise ValueError(
                f"agent: squash=True is for the Python-stepped path; {env_id} runs in the "
                "fused loop, whose Gaussian actor is unsquashed (the environment clips the "
                "sample): use squash=None (automatic) or False, or "
                "avgreward.stepwise.train_stepwise(...) to run it squashed")
        n_columns = 2
    else:
        raise ValueError(
            f"agent must be a SoftmaxActorCritic or GaussianActorCritic, got {agent!r}"
        )
    if features is None:
        features = default_features(env_id)
    elif not isinstance(features, TileCoder):
        raise ValueError(f"features must be a TileCoder (see avgreward.features), got {features!r}")
    if features.n_dims != env_cls.obs_size:
        raise ValueError(
            f"features has {features.n_dims} dimension(s) but {env_id}'s observation "
            f"has {env_cls.obs_size}"
        )
    rbar_every, chunk_steps, bin_size = _check_run_options(steps, rbar_every, chunk_steps,
                                                           callback, bin_size)

    run = _RunArrays(env_id, agent, seed, features, n_columns, steps, record_actions, rbar_every,
                     chunk_steps, bin_size)
    rng = np.random.default_rng(seed)
    tc = features.kernel_args()

    state = np.zeros(env_cls.state_size)
    obs = np.zeros(env_cls.obs_size)
    envs.dynamics.env_reset(env_cls.kind, state, rng.random() if env_cls.random_reset else 0.0)
    idx = np.empty(features.n_active, dtype=np.int64)
    idx_next = np.empty_like(idx)
    start_features(env_cls.kind, state, obs, tc, idx)

    def run_chunk(t0, n):
        rewards, actions = run.outputs(t0, n)
        if isinstance(agent, SoftmaxActorCritic):
            return softmax_chunk(
                env_cls.kind, env_cls.random_step, state, obs, tc,
                idx, idx_next, run.w, run.theta, run.z_w, run.z_theta, run.probs, run.coef,
                run.steps_theta, run.rbar_box,
                agent.alpha_w, agent.alpha_theta, agent.alpha_rbar, agent.tau,
                agent.lambda_w, agent.lambda_theta, agent.entropy,
                rng, t0, n, rewards, actions, record_actions, run.rbar_trace, rbar_every,
            )
        return gaussian_chunk(
            env_cls.kind, env_cls.random_step, state, obs, tc,
            idx, idx_next, run.w, run.theta, run.z_w, run.z_theta, run.coef, run.steps_theta,
            run.rbar_box, agent.alpha_w, agent.alpha_mu, agent.alpha_sigma, agent.alpha_rbar,
            agent.lambda_w, agent.lambda_theta, agent.scale_mean_gradient,
            agent.sigma_min, agent.entropy,
            rng, t0, n, rewards, actions, record_actions, run.rbar_trace, rbar_every,
        )

    t0 = 0
    while t0 < steps:
        n = min(chunk_steps, steps - t0)
        completed = run_chunk(t0, n)
        run.fold(t0 + completed)
        if completed < n:
            raise run.diverged(t0 + completed)
        t0 += n
        if callback is not None:
            callback(t0, steps)
    return run.result(steps)


class ConstantRewardWarning(UserWarning):
    """Every reward of a run was the same: the continuing view cannot rank policies on it."""


def _constant_reward(rewards) -> float | None:
    """The reward if every (binned) reward is that same value, else None."""
    if rewards.size < 2:
        return None
    first = float(rewards[0])
    spread = float(np.max(rewards) - np.min(rewards))
    return first if spread <= 1e-12 * max(1.0, abs(first)) else None


def _warn_if_constant_reward(result) -> None:
    value = _constant_reward(result.rewards)
    if value is not None:
        warnings.warn(_constant_reward_message(result.env_id, value), ConstantRewardWarning,
                      stacklevel=3)


def _constant_reward_message(env_id, value) -> str:
    return (
        f"every reward of {env_id} was {value:g}: in the continuing view every policy then "
        f"has reward rate {value:g}, so the learner cannot rank policies and learns nothing. "
        "Give the rewards a meaning first (README, 'Rewards that mean something': "
        "avgreward.wrappers.GoalBonus for MountainCar, FailurePenalty for CartPole)"
    )


def _check_wrapped_own_env(env) -> None:
    """Refuse our own environment in wrappers when the Python-stepped path cannot run it."""
    if isinstance(env, str) or _own_env_id(type(getattr(env, "unwrapped", None))) is None:
        return
    from gymnasium import spaces

    if not isinstance(env.observation_space, spaces.Box):
        raise ValueError(
            f"env is {_own_env_id(type(env.unwrapped))} wrapped in "
            f"{', '.join(_meaningful_wrappers(env))}: the fused loop cannot apply wrappers, "
            f"and the Python-stepped path needs a Box observation, not "
            f"{env.observation_space}; pass the environment id (or env.unwrapped) to train "
            "without the wrappers"
        )


def default_agent(env, kind: str | None = None):
    """The settings each environment is learned with unless the user gives some.

    For this package's environments these are the settings the tests show to
    learn (see ``tests/test_learning.py``):
    pendulum swing-up, softmax: :meth:`SoftmaxActorCritic.pendulum_reference`;
    continuous swing-up: :meth:`GaussianActorCritic.pendulum_default`; loop MDP:
    ``SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)``; aliased
    gridworld: ``SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.05, alpha_rbar=0.01)``.

    Parameters
    ----------
    env : str or gymnasium.Env
        One of this package's environments (see :func:`resolve_env`).
    kind : {"softmax", "gaussian"}, optional
        The actor; by default the environment's natural one (softmax for
        discrete actions, Gaussian for the continuous pendulum).

    Returns
    -------
    SoftmaxActorCritic or GaussianActorCritic

    Raises
    ------
    ValueError
        If ``kind`` is unknown or does not fit the environment's action space.
    """
    if isinstance(env, str) and not _is_own_env(env):
        info = env_info(env)
        env_id, cls = info.env_id, None
        natural = "softmax" if info.n_actions > 0 else "gaussian"
    else:
        env_id, cls = resolve_env(env)
        natural = "softmax" if cls.n_actions > 0 else "gaussian"
    if kind is None:
        kind = natural
    if kind not in ("softmax", "gaussian"):
        raise ValueError(f"kind must be 'softmax' or 'gaussian', got {kind!r}")
    if kind != natural:
        raise ValueError(
            f"{env_id} needs a {natural} actor ("
            + ("discrete actions" if natural == "softmax" else "a continuous action")
            + f"), not {kind}"
        )
    if cls is None:  # a gymnasium environment: a starting point, not tuned settings
        if natural == "softmax":
            return SoftmaxActorCritic(alpha_w=2**-1, alpha_theta=2**-2, alpha_rbar=2**-8)
        # scripts/pendulum_v1.py's settings (squashed on a bounded action by default).
        return GaussianActorCritic(alpha_w=2**-1, alpha_mu=2**-10, alpha_sigma=2**-10,
                                   alpha_rbar=2**-8, scale_mean_gradient=True)
    if cls.kind == envs.dynamics.PENDULUM_DISCRETE:
        return SoftmaxActorCritic.pendulum_reference()
    if cls.kind == envs.dynamics.PENDULUM_CONTINUOUS:
        return GaussianActorCritic.pendulum_default()
    if cls.kind == envs.dynamics.LOOP_MDP:
        return SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    return SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.05, alpha_rbar=0.01)
