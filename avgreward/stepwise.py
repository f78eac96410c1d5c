"""Training on any gymnasium environment: the env steps in Python, the agent in numba.

:func:`avgreward.train` runs this package's own environments in the fused
loop (:mod:`avgreward.loop`).  Any other gymnasium environment with a
``Box`` observation and a ``Discrete`` or one-dimensional ``Box`` action is
run here: Python calls ``env.step`` and, once per step, one jitted kernel
that tile-codes the new observation, applies the actor-critic update of
Sutton & Barto's continuing box (section 13.6) and draws the next action.
The update is :func:`softmax_learn` / :func:`gaussian_learn`, built from the
same primitives (:mod:`avgreward.actors`, :mod:`avgreward.critic`) in the
same order as the fused loop, so driving one of our own deterministic
environments through this path gives the fused loop's numbers bit for bit.

Continuing view of an episodic environment
------------------------------------------
An episode end (``terminated`` or ``truncated``) is a reset inside one
continuing stream: the step's reward counts as usual, the environment is
reset, and the transition's S' is the reset observation (the next episode's
start).  There is no terminal special case: ``v(S')`` is bootstrapped as on
every other step.  A time limit is therefore part of the task's dynamics;
to learn without one, make the env with ``max_episode_steps=-1``.

Random numbers
--------------
The run's generator (``np.random.default_rng(seed)``) draws only the
actions, one draw per step as in the fused loop (softmax: one uniform;
Gaussian: one standard normal).  The environment's own randomness comes from
its ``np_random``, seeded once by ``env.reset(seed=seed)``; later resets are
not reseeded.  So the stream differs from the fused path's, where a random
environment draws from the run's generator, except on environments whose
start and steps are deterministic (then the two paths agree exactly).

Bounded continuous actions
--------------------------
On a ``Box`` action with finite bounds the Gaussian actor is by default
squashed (``GaussianActorCritic.squash``, None = automatic): ``u ~ N(mu,
sigma^2)`` is scored and the environment gets ``low + (high - low) (tanh(u) +
1) / 2``.  This package's own environments are the exception: they keep the
fused loop's unsquashed actor (the sample, clipped by the environment), so
that both paths agree on them.  Either way, a mean that drifts more than
``1e3`` action ranges away (the mean of ``u`` from 0; unsquashed, the mean
from the middle of the box) triggers one ``RuntimeWarning`` per run.

Continuing a run
----------------
A finished run's ``Result.run_state`` holds the learner's arrays (and the
action drawn for S), the features of S, R-bar, the generator's state after
exactly the draws the run used (they are taken in blocks), and the
environment's state as :mod:`avgreward.env_snapshot` saves it (or, where it
cannot, ``info["cannot_continue"]`` says why).  ``train(env, agent, m,
init=result)`` resets ``env``, puts all of it back and goes on with the
next step: ``n`` steps and then ``m`` more are one run of ``n + m`` steps,
bit for bit, episode ends and time limits included.

Observations
------------
Every observation must be finite: a NaN would tile-code silently to tile 0
(and an infinity to an edge tile), so a non-finite observation stops the run
with a ValueError naming the environment, the step and the observation.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections import namedtuple

import numpy as np
from gymnasium import spaces
from numba import njit

from avgreward.actors import (
    gaussian_parameters,
    gaussian_score,
    sample_discrete,
    softmax_entropy_gradient,
    softmax_probabilities,
    softmax_score,
    squash_action,
)
from avgreward.agents import GaussianActorCritic, SoftmaxActorCritic
from avgreward.checkpoint import RunState, init_features, restore_params
from avgreward.metrics import MetricsTracker
from avgreward.critic import (
    accumulate_trace_outer,
    add_outer_at,
    apply_trace_outer,
    critic_update,
    linear_value,
)
from avgreward.environments import (
    wrapper_chain,
    env_name_of,
    features_for,
    make_env,
    own_base_id,
    same_observations_as_ours,
    default_features,
    default_tile_coder,
)
from avgreward.env_snapshot import put_back, snapshot
from avgreward.features import TileCoder, tile_indices
from avgreward.learners.actor_critic import (
    actor_critic_arrays,
    actor_critic_memory,
    gaussian_weights,
    softmax_weights,
)
from avgreward.options import RunOptions
from avgreward.run_arrays import EpisodeEnds, RunArrays
from avgreward.wrappers import GoalBonus  # noqa: F401 (its earlier home; in __all__)

__all__ = [
    "train_stepwise",
    "run_stepwise",
    "GoalBonus",
    "default_tile_coder",
    "softmax_act",
    "softmax_learn",
    "softmax_step",
    "gaussian_act",
    "gaussian_learn",
    "gaussian_step",
]

_NOISE_BLOCK = 1 << 14

# gaussian_step's status codes.
OK = 0
TD_NOT_FINITE = 1  # this step's TD error was non-finite: its updates were not applied
POLICY_NOT_FINITE = 2  # this step was applied; the next step's policy is non-finite
OBS_NOT_FINITE = 3  # S' has a NaN or an infinity: nothing was changed
MEAN_RUNAWAY = 4  # as OK, but the next policy's mean is beyond the runaway limit

# The runaway limit: a mean this many action ranges away from the box's middle
# (from u = 0 when squashed) no longer changes what the environment gets.
RUNAWAY_RANGES = 1e3


# ---------------------------------------------------------------------------
# Kernels.  The learn functions are the box's update, written once: the fused
# loop could call them too (they take R-bar as a float and return the new one).


@njit(cache=True)
def softmax_act(theta, idx, tau, probs, u):
    """``A ~ pi(.|S)``: write the probabilities into ``probs``, sample by the uniform ``u``."""
    softmax_probabilities(theta, idx, tau, probs)
    return sample_discrete(probs, u)


@njit(cache=True)
def softmax_learn(
    reward, rbar, cur, nxt, w, theta, z_w, z_theta, probs, action, coef, steps_theta,
    step_w, step_theta, alpha_rbar, tau, lambda_w, lambda_theta, entropy, td_box,
):
    """One update of the softmax actor-critic; returns the new R-bar.

    ``cur``/``nxt`` are the active features of S and S', ``probs`` is
    ``pi(.|S)`` (from :func:`softmax_act`), ``step_w = alpha_w / k`` and
    ``step_theta = alpha_theta / k`` (``k`` active features).  If the TD
    error is non-finite nothing is changed and a non-finite value is
    returned.  Otherwise as the body of :func:`avgreward.loop.softmax_chunk`,
    and ``abs(delta)`` is added to ``td_box[0]`` (the live metric).
    """
    delta = reward - rbar + linear_value(w, nxt) - linear_value(w, cur)
    if not math.isfinite(delta):
        return delta
    td_box[0] += abs(delta)
    rbar += alpha_rbar * delta

    critic_update(w, z_w, lambda_w, cur, step_w * delta)

    softmax_score(probs, action, tau, coef)
    if lambda_theta == 0.0:
        add_outer_at(theta, cur, step_theta * delta, coef)
    else:
        accumulate_trace_outer(z_theta, lambda_theta, cur, coef)
        for b in range(steps_theta.shape[0]):
            steps_theta[b] = step_theta * delta
        apply_trace_outer(theta, z_theta, steps_theta)
    if entropy > 0.0:
        softmax_entropy_gradient(probs, tau, coef)
        add_outer_at(theta, cur, step_theta * entropy, coef)
    return rbar


@njit(cache=True)
def _finite(obs):
    """Whether every element of ``obs`` is finite (checked in the step kernels: no Python cost)."""
    for value in obs:
        if not math.isfinite(value):
            return False
    return True


@njit(cache=True)
def softmax_step(
    obs, tc, reward, rbar_box, idx, idx_next, w, theta, z_w, z_theta, probs, coef,
    steps_theta, action, settings, u, td_box,
):
    """Finish a step given S' = ``obs`` and R, then draw the next action with ``u``.

    Tile-codes ``obs`` (``tc`` is :meth:`TileCoder.kernel_args`), applies
    :func:`softmax_learn` (R-bar in ``rbar_box[0]``), moves the features of
    S' into ``idx`` and returns the next action from :func:`softmax_act`,
    or -1 if the TD error was non-finite, -2 if ``obs`` was (then nothing was
    changed).
    ``settings`` is float64 ``(step_w, step_theta, alpha_rbar, tau, lambda_w,
    lambda_theta, entropy)``: one array rather than seven arguments, because
    each argument of a jitted call costs time on every step.
    """
    if not _finite(obs):
        return -2
    tile_indices(obs, *tc, idx_next)
    tau = settings[3]
    rbar = softmax_learn(
        reward, rbar_box[0], idx, idx_next, w, theta, z_w, z_theta, probs, action, coef,
        steps_theta, settings[0], settings[1], settings[2], tau, settings[4], settings[5],
        settings[6], td_box,
    )
    if not math.isfinite(rbar):
        return -1
    rbar_box[0] = rbar
    idx[:] = idx_next
    return softmax_act(theta, idx, tau, probs, u)


@njit(cache=True)
def gaussian_act(theta, idx, sigma_min, z, policy, squash, low, high):
    """``U ~ N(mu(S), sigma(S)^2)`` as ``mu + sigma * z`` (``z`` a standard normal draw).

    Writes ``(U, mu, exp(h_sigma), sigma, A)`` into ``policy``: ``A`` is the
    environment's action, :func:`avgreward.actors.squash_action` of ``U`` if
    ``squash``, else ``U`` clipped to ``[low, high]`` (infinite bounds: no
    clip).  Returns False if the policy is non-finite (the fused loop then
    stops before drawing).
    """
    mu, exp_h, sigma = gaussian_parameters(theta, idx, sigma_min)
    if not (math.isfinite(mu) and math.isfinite(sigma) and sigma > 0.0):
        return False
    u = mu + sigma * z
    policy[0] = u
    policy[1] = mu
    policy[2] = exp_h
    policy[3] = sigma
    policy[4] = squash_action(u, low, high) if squash else min(max(u, low), high)
    return True


@njit(cache=True)
def gaussian_learn(
    reward, rbar, cur, nxt, w, theta, z_w, z_theta, coef, steps_theta,
    action, mu, exp_h, sigma, step_w, step_mu, step_sigma, alpha_rbar,
    lambda_w, lambda_theta, scale_mean_gradient, entropy, td_box,
):
    """One update of the Gaussian actor-critic; returns the new R-bar.

    ``action`` is the sample whose score is used (unclipped; squashed: ``u``)
    and ``mu``,
    ``exp_h = exp(h_sigma)``, ``sigma`` the policy it came from; ``theta[:, 0]`` /
    ``theta[:, 1]`` are the mean's and log-sigma's weights.  Non-finite TD
    error: nothing changed, a non-finite value returned.  Otherwise as the
    body of :func:`avgreward.loop.gaussian_chunk`, and ``abs(delta)`` is
    added to ``td_box[0]``.
    """
    delta = reward - rbar + linear_value(w, nxt) - linear_value(w, cur)
    if not math.isfinite(delta):
        return delta
    td_box[0] += abs(delta)
    rbar += alpha_rbar * delta

    critic_update(w, z_w, lambda_w, cur, step_w * delta)

    g_mu, g_sigma = gaussian_score(action, mu, exp_h, sigma, scale_mean_gradient)
    coef[0] = g_mu
    coef[1] = g_sigma
    if lambda_theta == 0.0:
        coef[0] *= step_mu * delta
        coef[1] *= step_sigma * delta
        add_outer_at(theta, cur, 1.0, coef)
    else:
        accumulate_trace_outer(z_theta, lambda_theta, cur, coef)
        steps_theta[0] = step_mu * delta
        steps_theta[1] = step_sigma * delta
        apply_trace_outer(theta, z_theta, steps_theta)
    if entropy > 0.0:
        # H = ln sigma + const, so grad H = exp(h_sigma) / sigma * x(s).
        coef[0] = 0.0
        coef[1] = step_sigma * entropy * exp_h / sigma
        add_outer_at(theta, cur, 1.0, coef)
    return rbar


@njit(cache=True)
def gaussian_step(
    obs, tc, reward, rbar_box, idx, idx_next, w, theta, z_w, z_theta, coef, steps_theta,
    policy, settings, z, td_box,
):
    """Finish a step given S' = ``obs`` and R, then draw the next action into ``policy``.

    ``policy`` holds ``(U, mu, exp(h_sigma), sigma, A)`` of this step on entry
    (from :func:`gaussian_act`) and of the next step, drawn with the standard
    normal ``z``, on return.  ``settings`` is float64 ``(step_w, step_mu,
    step_sigma, alpha_rbar, lambda_w, lambda_theta, scale_mean_gradient (0 or
    1), sigma_min, entropy, squash (0 or 1), low, high, mean_limit,
    mean_centre)``.
    Returns ``OK`` (0), ``TD_NOT_FINITE`` (1: nothing changed),
    ``POLICY_NOT_FINITE`` (2: this step was applied, the next cannot start),
    ``OBS_NOT_FINITE`` (3: ``obs`` has a NaN or an infinity, nothing
    changed) or ``MEAN_RUNAWAY`` (4: as ``OK``, but the next step's
    ``|mu - mean_centre| > mean_limit``).
    """
    if not _finite(obs):
        return 3
    tile_indices(obs, *tc, idx_next)
    rbar = gaussian_learn(
        reward, rbar_box[0], idx, idx_next, w, theta, z_w, z_theta, coef, steps_theta,
        policy[0], policy[1], policy[2], policy[3], settings[0], settings[1], settings[2],
        settings[3], settings[4], settings[5], settings[6] != 0.0, settings[8], td_box,
    )
    if not math.isfinite(rbar):
        return 1
    rbar_box[0] = rbar
    idx[:] = idx_next
    if not gaussian_act(theta, idx, settings[7], z, policy, settings[9] != 0.0, settings[10],
                        settings[11]):
        return 2
    if abs(policy[1] - settings[13]) > settings[12]:
        return 4
    return 0


# ---------------------------------------------------------------------------
# Python side: validation and the loop over env.step.


def _observation(obs, n_dims, env_name):
    x = np.asarray(obs, dtype=np.float64)
    if x.shape != (n_dims,):
        raise ValueError(
            f"env {env_name} returned an observation of shape {x.shape}, not ({n_dims},)"
        )
    return x


def _not_finite(env_name, obs, where):
    """The error for a NaN or infinite observation (``where``: which step, or the reset)."""
    return ValueError(
        f"env {env_name} returned a non-finite observation {obs!r} {where}: tile coding "
        "needs finite numbers (a NaN would silently land on tile 0); fix the environment "
        "or wrap it to clean its observations"
    )


def train_stepwise(
    env,
    agent,
    steps: int,
    seed: int,
    features: TileCoder | None = None,
    *,
    bounds=None,
    record_actions: bool = False,
    rbar_every: int | None = None,
    chunk_steps: int | None = None,
    callback=None,
    bin_size: int | None = None,
):
    """Run the actor-critic on a gymnasium environment stepped from Python.

    :func:`avgreward.train` calls this for any environment that is not one
    of this package's; it also runs ours (slowly), which is how the tests
    check it against the fused loop.  Arguments and result as
    :func:`avgreward.train`, plus:

    Parameters
    ----------
    env : str or gymnasium.Env
        A gymnasium id (made without rendering, closed at the end) or an
        instance (reset with ``seed``, left open).  The observation space
        must be a 1-D ``Box``; the action space ``Discrete`` (softmax agent)
        or a ``Box`` of shape (1,) or () (Gaussian agent: squashed into the
        box, or the sample clipped to it, see ``GaussianActorCritic.squash``;
        the score is the sample's).
    features : TileCoder, optional
        Feature map over the observation.  Default: :func:`default_tile_coder`
        over ``bounds``, or over the observation space's bounds if they are
        finite.
    bounds : (low, high), optional
        Bounds of the observation for the default tile coder.
    bin_size : int, optional
        As :func:`avgreward.train`: rewards kept per step only for one chunk
        of ``chunk_steps`` and returned as bin means, bit for bit those of
        the fused loop on the same rewards.

    Returns
    -------
    Result
        ``env_id`` is the env's spec id (or class name).  ``info`` holds
        ``"terminations"`` and ``"truncations"``: int64 arrays of the
        (0-based) steps at which an episode ended that way; with
        ``bin_size``, the number of such ends in each bin instead (so that
        memory does not grow with the steps); and, binned or not, each
        finished episode's ``"episode_returns"``, ``"episode_lengths"`` and
        ``"episode_end_steps"`` (as the fused loop's:
        :class:`avgreward.run_arrays.EpisodeEnds`).  With a
        softmax agent ``actions`` are 0-based indices (the env got
        ``action_space.start + index``); with a squashed Gaussian, the
        actions the env got (in the box; ``u = artanh(2 (a - low) /
        (high - low) - 1)`` up to rounding near the bounds); with an
        unsquashed one, the samples before the env's clip (as the fused loop).

    Warns
    -----
    RuntimeWarning
        Once per run, if the Gaussian's mean goes more than ``1e3 x (high -
        low)`` away from the middle of the box (squashed: the mean of ``u``
        away from 0): the message names the step, the mean and the remedies
        (``squash=True``, a smaller ``alpha_mu``).

    Raises
    ------
    ValueError
        As :func:`avgreward.train`, and if the environment returns an
        observation with a NaN or an infinity (the message names the
        environment, the 0-based step and the observation).
    """
    options = RunOptions(steps, seed, record_actions, rbar_every, chunk_steps, bin_size,
                         callback)
    return run_stepwise(env, agent, options, features, bounds)


def run_stepwise(env, agent, options: RunOptions, features: TileCoder | None = None,
                 bounds=None, init=None):
    """:func:`train_stepwise` with the run's options as one checked value (``train`` calls this).

    ``init`` (a :class:`~avgreward.result.Result` with a ``run_state``)
    continues that run: see ``train(..., init=...)`` and :func:`_continue`.
    """
    env, owned = make_env(env)
    try:
        return _run(env, agent, options, features, bounds, init)
    finally:
        if owned:
            env.close()


_Arrays = namedtuple("_Arrays", ["w", "theta"])


def _run(env, agent, options, features, bounds, init=None):
    steps, seed, record_actions = options.steps, options.seed, options.record_actions
    rbar_every, chunk_steps, bin_size = options.rbar_every, options.chunk_steps, options.bin_size
    callback = options.callback
    name = env_name_of(env)
    obs_space = env.observation_space
    if not (isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1
            and obs_space.shape[0] >= 1):
        raise ValueError(
            f"env {name} must have a 1-D Box observation space (tile coding needs real "
            f"numbers), got {obs_space}"
        )
    act_space = env.action_space
    if isinstance(agent, SoftmaxActorCritic):
        if not isinstance(act_space, spaces.Discrete):
            raise ValueError(
                f"agent: SoftmaxActorCritic needs a Discrete action space, but {name} has "
                f"{act_space}; use GaussianActorCritic for a 1-D Box"
            )
        n_columns = int(act_space.n)
        action_start = int(act_space.start)
    elif isinstance(agent, GaussianActorCritic):
        if not (isinstance(act_space, spaces.Box) and act_space.shape in ((), (1,))):
            raise ValueError(
                f"agent: GaussianActorCritic needs a Box action space with one dimension, "
                f"but {name} has {act_space}"
                + ("; use SoftmaxActorCritic" if isinstance(act_space, spaces.Discrete) else "")
            )
        n_columns = 2
        act_low = float(np.asarray(act_space.low).reshape(-1)[0])
        act_high = float(np.asarray(act_space.high).reshape(-1)[0])
        act_shape, act_dtype = act_space.shape, act_space.dtype
        squash = resolve_squash(agent, env, name, act_space, act_low, act_high)
    else:
        raise ValueError(
            f"agent must be a SoftmaxActorCritic or GaussianActorCritic, got {agent!r}"
        )
    if init is not None and bounds is not None and features is None:
        # The bounds the saved run was given build its features: checked as features.
        features, bounds = features_for(name, obs_space, None, bounds), None
    features = init_features(init, name, agent, features)
    if init is not None and init.run_state.gym is None:
        raise ValueError(f"init: the saved run of {init.env_id} ran in the fused loop; {name} "
                         "here is stepped from Python (through wrappers): continue it on the "
                         "environment it ran on")
    if features is None and bounds is None and same_observations_as_ours(env):
        features = default_features(env)  # our environment's, through its wrappers
    features = features_for(name, obs_space, features, bounds)
    softmax = isinstance(agent, SoftmaxActorCritic)
    n_features = features.n_features
    run = RunArrays(name, agent, features, options,
                    action_dtype=np.int64 if softmax else np.float64,
                    weights_bytes=actor_critic_memory(agent, n_features, n_columns))
    w, theta, z_w, z_theta = actor_critic_arrays(agent, n_features, n_columns)
    probs, coef, steps_theta = np.zeros(n_columns), np.zeros(n_columns), np.zeros(n_columns)
    weights = softmax_weights if softmax else gaussian_weights
    run.weights = lambda: weights(agent, _Arrays(w, theta))
    # evaluate() and init= must know: the fused loop would drop the wrappers
    run.extra_info["python_stepped"] = True
    # ... and which: a rollout of the result must step the same wrappers (animation)
    run.extra_info["env_wrappers"] = wrapper_chain(env)
    rng = np.random.default_rng(seed)
    n_dims = obs_space.shape[0]
    tc = features.kernel_args()
    k = features.n_active

    idx = np.empty(k, dtype=np.int64)
    idx_next = np.empty_like(idx)
    rbar_box = run.rbar_box
    rbar_trace = run.rbar_trace
    tracker = (None if options.log is None else MetricsTracker(
        steps, options.log, before=0 if init is None else init.run_state.steps_done,
        episodes_before=0 if init is None else init.run_state.episodes_done))
    td_box = np.zeros(1)  # |TD error| summed since the last metrics
    # Steps t0 .. are written at rewards[t - t0] (actions likewise); see RunArrays.
    t0 = 0
    rewards, actions = run.outputs(t0, min(chunk_steps, steps))
    policy = np.zeros(5)
    # Episode ends are written as the fused loop's kernel writes them (a
    # truncation as -1 - step) and read, with the episodes' returns, lengths
    # and end steps, at the end of every chunk: the same bookkeeping, the same
    # info (ends counted per bin when binned, so memory does not grow with steps).
    episodes = EpisodeEnds(True, steps, min(chunk_steps, steps), bin_size)
    ends, ends_count = episodes.buffer, episodes.count
    # The same floats the fused loop divides by k.
    step_w = agent.alpha_w / k

    def diverged(step):
        episodes.collect(step, rewards, t0)
        return run.diverged(step, episodes.info(step))

    # One draw per step from the run's generator, taken in blocks: a block of
    # rng.random(n) (or standard_normal(n)) is the same numbers as n single
    # draws, and passing a Generator into a jitted function costs ~15 us a call.
    draw = rng.random if softmax else rng.standard_normal
    block = min(steps + 1, _NOISE_BLOCK)
    if init is not None:
        rng.bit_generator.state = init.run_state.rng
    block_start = rng.bit_generator.state  # where the block's draws began
    noise = draw(block)
    if softmax:
        settings = np.array([step_w, agent.alpha_theta / k, agent.alpha_rbar, agent.tau,
                             agent.lambda_w, agent.lambda_theta, agent.entropy])
    else:
        # An unbounded (or empty) box has no range to measure a runaway mean by.
        mean_limit = RUNAWAY_RANGES * (act_high - act_low)
        if not (math.isfinite(mean_limit) and mean_limit > 0.0):
            mean_limit = math.inf
        # Squashed, u = 0 is the box's middle; unsquashed, the mean is an action.
        mean_centre = 0.0 if squash or math.isinf(mean_limit) else (act_low + act_high) / 2.0
        settings = np.array([step_w, agent.alpha_mu / k, agent.alpha_sigma / k,
                             agent.alpha_rbar, agent.lambda_w, agent.lambda_theta,
                             float(agent.scale_mean_gradient), agent.sigma_min, agent.entropy,
                             float(squash), act_low, act_high, mean_limit, mean_centre])
        warned = False

    # Every array the steps carry over, by name: what a continued run restores.
    carried = {"w": w, "theta": theta, "z_w": z_w, "z_theta": z_theta, "probs": probs,
               "coef": coef, "steps_theta": steps_theta, "policy": policy,
               "action": np.zeros(1, np.int64)}
    if init is None:
        obs, _ = env.reset(seed=seed)
        x = _observation(obs, n_dims, name)
        if not np.isfinite(x).all():
            raise _not_finite(name, obs, f"from reset(seed={seed}), before step 0")
        tile_indices(x, *tc, idx)
        if softmax:
            action = softmax_act(theta, idx, agent.tau, probs, noise[0])
        elif not gaussian_act(theta, idx, agent.sigma_min, noise[0], policy, squash, act_low,
                              act_high):
            raise diverged(0)
        j = 1  # next unused draw in noise
    else:
        x = _continue(env, name, init.run_state, carried, idx, rbar_box, seed)
        # The episode in progress goes on: its return and length so far.
        episodes.partial_return, episodes.partial_length = init.run_state.episode[1:]
        action = int(carried["action"][0])
        j = 0  # the saved action was drawn: the next draw is the first step's
    env_step, env_reset = env.step, env.reset
    for t in range(steps):
        if softmax:
            obs, reward, terminated, truncated, _ = env_step(action_start + action)
        else:
            obs, reward, terminated, truncated, _ = env_step(
                np.full(act_shape, policy[4], act_dtype))
        ended = terminated or truncated
        if ended:
            ends[ends_count[0]] = t if terminated else -1 - t
            ends_count[0] += 1
            obs, _ = env_reset()
        x = _observation(obs, n_dims, name)
        reward = float(reward)
        if j == block:
            block_start = rng.bit_generator.state
            noise = draw(block)
            j = 0
        if softmax:
            taken = action
            action = softmax_step(
                x, tc, reward, rbar_box, idx, idx_next, w, theta, z_w, z_theta, probs, coef,
                steps_theta, action, settings, noise[j], td_box,
            )
            if action == -2:
                raise _not_finite(name, obs, _step_text(t, ended))
            if action < 0:
                raise diverged(t)
        else:
            # Squashed, the action the environment got; unsquashed, the sample
            # before the clip (as the fused loop records it).
            taken = policy[4] if squash else policy[0]
            status = gaussian_step(
                x, tc, reward, rbar_box, idx, idx_next, w, theta, z_w, z_theta, coef,
                steps_theta, policy, settings, noise[j], td_box,
            )
            if status == OBS_NOT_FINITE:
                raise _not_finite(name, obs, _step_text(t, ended))
            if status == TD_NOT_FINITE:
                raise diverged(t)
            if status == MEAN_RUNAWAY and not warned:
                warned = True
                warnings.warn(_runaway_text(name, t + 1, policy[1], act_low, act_high, squash),
                              RuntimeWarning, stacklevel=_caller_level())
        j += 1
        rewards[t - t0] = reward
        if record_actions:
            actions[t - t0] = taken
        if (t + 1) % rbar_every == 0:
            rbar_trace[(t + 1) // rbar_every - 1] = rbar_box[0]
        if not softmax and status == POLICY_NOT_FINITE and t + 1 < steps:
            raise diverged(t + 1)
        if (t + 1) % chunk_steps == 0 or t + 1 == steps:
            episodes.collect(t + 1, rewards, t0)
            run.fold(t + 1)
            if tracker is not None:
                tracker.chunk(t + 1, rewards[:t + 1 - t0], rbar_box[0], episodes.returns,
                              episodes.lengths, td_box[0])
            td_box[0] = 0.0
            t0 = t + 1
            rewards, actions = run.outputs(t0, min(chunk_steps, steps - t0))
            if callback is not None:
                callback(t + 1, steps)
    result = run.result(steps, episodes.info(steps))
    carried["action"][0] = action if softmax else 0
    # The generator as if it had made exactly the j draws of this block used so far.
    used = np.random.Generator(np.random.PCG64())
    used.bit_generator.state = block_start
    (used.random if softmax else used.standard_normal)(j)
    before = 0 if init is None else init.run_state.steps_done
    env_state, saved = snapshot(env, name)
    if env_state is None:
        result.info["cannot_continue"] = saved
    else:
        result.run_state = RunState(before + steps, env_state, x.copy(), idx.copy(),
                                    float(rbar_box[0]), used.bit_generator.state,
                                    {k: v.copy() for k, v in carried.items()}, gym=saved,
                                    episode=(0, float(episodes.partial_return),
                                             int(episodes.partial_length)),
                                    episodes_done=sum(a.size for a in episodes.returns)
                                    + (0 if init is None else init.run_state.episodes_done))
    if init is not None:
        result.info["continued_from"] = before
    return result


def _continue(env, name, saved, carried, idx, rbar_box, seed):
    """Put a saved run back: the environment, the carried arrays, S's features, R-bar.

    Returns the observation of S.  The generator is restored by the caller.
    """
    restore_params(saved.params, carried)
    if idx.shape != saved.features.shape:
        raise ValueError(f"init: the saved active features have shape "
                         f"{saved.features.shape}, this feature map's {idx.shape}")
    put_back(env, name, saved.env_state, saved.gym, seed)
    idx[:] = saved.features
    rbar_box[0] = saved.rbar
    return saved.obs.copy()


def resolve_squash(agent, env, name, act_space, low, high):
    """Whether the run squashes its Gaussian: ``agent.squash``, resolved if None."""
    bounded = math.isfinite(low) and math.isfinite(high)
    if agent.squash is None:
        # This package's environments (wrapped or not) keep the fused loop's
        # unsquashed actor, so that both paths give the same numbers on them.
        return bounded and own_base_id(env) is None
    if agent.squash and not bounded:
        raise ValueError(
            f"agent: squash=True needs a bounded action, but {name} has {act_space}; "
            "use squash=False (or None) there"
        )
    return agent.squash


def _caller_level():
    """The ``stacklevel`` of the first frame outside this package: the user's call.

    Called from :func:`_run`, reached through ``train`` or ``train_stepwise``
    (or a worker of ``run_experiment``): a fixed level would point into the package.
    """
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _runaway_text(name, step, mu, low, high, squash):
    what = "u (the Gaussian before the tanh)" if squash else "the Gaussian"
    remedy = ("a smaller alpha_mu" if squash
              else "squash=True (a tanh-squashed Gaussian, inside the bounds) or a smaller "
                   "alpha_mu")
    return (
        f"env {name}: at step {step} (0-based) the mean of {what} is {mu:.6g}, more than "
        f"{RUNAWAY_RANGES:g} x the action range [{low:g}, {high:g}] away from "
        f"{'0' if squash else 'its middle'}: the actor's mean is "
        f"running away and no longer changes the action the environment gets; use {remedy}"
    )


def _step_text(t, reset):
    return (f"at step {t} (0-based; from the reset after that step's episode end)" if reset
            else f"at step {t} (0-based)")
