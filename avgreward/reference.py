"""A plain-Python reference of the continuing actor-critic, line by line from the box.

Sutton & Barto (2nd ed.), section 13.6, "Actor-Critic with Eligibility
Traces (continuing)", written for readability, with dense numpy vectors and
no numba.  It exists to check the fused loop (:mod:`avgreward.loop`): fed the
same seed it makes the same random draws in the same order, so the two must
agree to rounding.  It is also the "student's version" the benchmark compares
speed against.

Shared with the fused loop, and tested on their own elsewhere: the
environment kernels (:mod:`avgreward.envs`, the single definition of each task) and
the feature map (:class:`avgreward.features.TileCoder`, tested against
tiles3).  Everything that learns is written again here.
"""

from __future__ import annotations

import math

import numpy as np

from avgreward.agents import (
    AverageCostTD,
    DifferentialQLearning,
    DifferentialSarsa,
    DifferentialTD,
    DiscountedQLearning,
    DiscountedSarsa,
    EpisodicActorCritic,
    GaussianActorCritic,
    NaturalActorCritic,
    RVIQLearning,
    SoftmaxActorCritic,
)
from avgreward.environments import default_features, resolve_env

__all__ = ["reference_train", "reference_reinforce", "reference_episodic_actor_critic",
           "reference_a2c", "reference_value_control", "reference_prediction",
           "reference_natural_actor_critic"]


def _dense(features, active):
    """x(s): the binary feature vector with ones at ``active``, as a dense array."""
    x = np.zeros(features.n_features)
    x[active] = 1.0
    return x


def _linear(weights, active):
    """``weights . x(s)`` for binary x(s): the sum of the active rows.

    In the package's summation order: four running sums, the m-th over
    ``active[m::4]`` in index order, then ``(s0 + s1) + (s2 + s3)``.  The
    fused loop sums the same way (four independent chains of additions are
    what make it fast), and matching its order to the last bit is what makes
    the two comparable at all: with continuous actions near the pendulum's
    unstable upright balance, a difference in the last bit grows exponentially.
    """
    s = [0.0, 0.0, 0.0, 0.0]
    for j, i in enumerate(active):
        s[j % 4] = s[j % 4] + weights[i]
    return (s[0] + s[1]) + (s[2] + s[3])


def _entropy_coef(pi, tau):
    """Coefficients of grad H(pi(.|s)) = -pi_b (ln pi_b + H) x(s) / tau (0 ln 0 = 0)."""
    logs = np.log(np.where(pi > 0, pi, 1.0))
    H = -np.sum(pi * logs)
    return -pi * (logs + H) / tau


class _GaussianPolicy:
    """The episodic learners' Gaussian policy in plain Python: theta[:, 0] the mean's
    weights, theta[:, 1] log-sigma's; ``sigma = sigma_min + exp(h_sigma)``."""

    def __init__(self, agent, k):
        self.agent, self.k = agent, k
        alpha_sigma = agent.alpha_theta if agent.alpha_sigma is None else agent.alpha_sigma
        self.steps = np.array([agent.alpha_theta / k, alpha_sigma / k])

    def parameters(self, theta, active):
        mu = _linear(theta[:, 0], active)
        exp_h = math.exp(_linear(theta[:, 1], active))
        return mu, exp_h, self.agent.sigma_min + exp_h

    def sample(self, theta, active, rng):
        mu, _, sigma = self.parameters(theta, active)
        return mu + sigma * rng.standard_normal()

    def score_step(self, theta, active, A):
        """(alpha_theta g_mu, alpha_sigma g_sigma) / k: grad ln pi's coefficients times steps."""
        mu, exp_h, sigma = self.parameters(theta, active)
        g_mu = (A - mu) / (sigma * sigma)
        g_sigma = ((A - mu) ** 2 / (sigma * sigma) - 1.0) * (exp_h / sigma)
        return self.steps * np.array([g_mu, g_sigma])

    def entropy_step(self, theta, active):
        """alpha_sigma beta grad H / k on log-sigma: H = ln sigma + const."""
        _, exp_h, sigma = self.parameters(theta, active)
        return np.array([0.0, self.steps[1] * self.agent.entropy * (exp_h / sigma)])


def reference_train(env, agent, steps, seed, features=None):
    """Run the continuing actor-critic box in plain Python.

    Parameters are those of :func:`avgreward.train`.  Returns a dict with
    ``rewards``, ``actions``, ``rbar`` (after every step), ``w`` and
    ``theta`` (softmax: ``[n_features, n_actions]``; Gaussian:
    ``[n_features, 2]`` with columns mu, sigma), ``ends``, the steps that
    ended an episode (an episodic environment: S' is then the next episode's
    start, drawn after the step's own draw), and ``deltas``, each step's TD
    error (what the live metric ``mean_abs_td_error`` averages).
    """
    env_id, env_cls = resolve_env(env)
    features = default_features(env_id) if features is None else features
    fused = env_cls.fused
    k = features.n_active  # step sizes are per active feature (spec convention)
    d = features.n_features
    rng = np.random.default_rng(seed)

    def observe(state):
        obs = np.zeros(fused.obs_size)
        fused.observe(state, obs)
        return obs

    # Initialize S
    S = np.zeros(fused.state_size)
    fused.reset(S, rng.random() if fused.random_reset else 0.0)
    active = features.indices(observe(S))
    x = _dense(features, active)

    # Initialize R-bar, w, theta (and the traces) to 0
    Rbar = 0.0
    w = np.zeros(d)
    z_w = np.zeros(d)
    gaussian = isinstance(agent, GaussianActorCritic)
    n_cols = 2 if gaussian else fused.n_actions
    theta = np.zeros((d, n_cols))
    z_theta = np.zeros((d, n_cols))

    rewards, actions, rbars, ends, deltas = [], [], [], [], []
    for _ in range(steps):
        # A ~ pi(. | S, theta), and grad ln pi(A | S, theta)
        if gaussian:
            mu, h_sigma = _linear(theta, active)
            sigma = agent.sigma_min + math.exp(h_sigma)
            A = mu + sigma * rng.standard_normal()
            g_mu = (A - mu) if agent.scale_mean_gradient else (A - mu) / sigma**2
            # d sigma / d h_sigma = exp(h_sigma): the chain rule through sigma_min + exp(.)
            g_sigma = ((A - mu) ** 2 / sigma**2 - 1.0) * (math.exp(h_sigma) / sigma)
            grad_ln_pi = np.stack([g_mu * x, g_sigma * x], axis=1)
            grad_entropy = np.stack([0.0 * x, math.exp(h_sigma) / sigma * x], axis=1)
            alpha_theta = np.array([agent.alpha_mu, agent.alpha_sigma]) / k
        else:
            assert isinstance(agent, SoftmaxActorCritic)
            h = _linear(theta, active)
            pi = np.exp((h - h.max()) / agent.tau)
            pi /= pi.sum()
            A = int(np.searchsorted(np.cumsum(pi), rng.random(), side="right"))
            A = min(A, n_cols - 1)
            one_hot_A = np.eye(n_cols)[A]
            grad_ln_pi = np.outer(x, one_hot_A - pi) / agent.tau
            safe_log = np.log(np.where(pi > 0.0, pi, 1.0))
            H = -np.sum(pi * safe_log)
            grad_entropy = np.outer(x, -pi * (safe_log + H)) / agent.tau
            alpha_theta = np.full(n_cols, agent.alpha_theta / k)

        # Take action A, observe S', R
        u = rng.random() if fused.random_step else 0.0
        S_next = S.copy()
        R = fused.step(S, float(A), u, S_next)
        if fused.episodic:
            R, terminated = R
            if terminated:  # the stream goes on from the next episode's start
                fused.reset(S_next, rng.random() if fused.random_reset else 0.0)
                ends.append(len(rewards))
        active_next = features.indices(observe(S_next))
        x_next = _dense(features, active_next)

        # delta <- R - Rbar + v(S', w) - v(S, w)
        delta = R - Rbar + _linear(w, active_next) - _linear(w, active)
        # Rbar <- Rbar + alpha_Rbar delta
        Rbar = Rbar + agent.alpha_rbar * delta
        # z_w <- lambda_w z_w + grad v(S, w);  z_theta <- lambda_theta z_theta + grad ln pi
        z_w = agent.lambda_w * z_w + x
        z_theta = agent.lambda_theta * z_theta + grad_ln_pi
        # w <- w + alpha_w delta z_w;  theta <- theta + alpha_theta delta z_theta
        w = w + (agent.alpha_w / k) * delta * z_w
        theta = theta + alpha_theta * delta * z_theta
        # entropy bonus: theta <- theta + alpha_theta beta_H grad H(pi(. | S))
        if agent.entropy > 0.0:
            theta = theta + alpha_theta * agent.entropy * grad_entropy
        # S <- S'
        S, x, active = S_next, x_next, active_next

        rewards.append(R)
        actions.append(A)
        rbars.append(Rbar)
        deltas.append(delta)
    return {
        "rewards": np.array(rewards),
        "actions": np.array(actions),
        "rbar": np.array(rbars),
        "w": w,
        "theta": theta,
        "ends": np.array(ends, dtype=np.int64),
        "deltas": np.array(deltas),
    }


def reference_reinforce(env, agent, steps, seed, features=None):
    """Run the REINFORCE box (Sutton & Barto 13.3) in plain Python, episode after episode.

    The same draws as the fused loop: per step one ``rng.random()`` for the
    action (inverse CDF), one for the environment if its step is random, one
    for the next episode's start if its reset is random.  Returns a dict with
    ``rewards`` and ``actions`` (every step), ``ends`` (the steps that ended
    an episode), ``cuts`` (the steps at which an episode was cut at
    ``agent.max_episode_steps``) and ``theta``.  With ``agent.behaviour`` the
    actions are drawn from it and the update is the per-decision one of
    :class:`avgreward.agents.Reinforce` (``rho_{0:t} H_t`` in place of ``G_t``).
    """
    env_id, env_cls = resolve_env(env)
    features = default_features(env_id) if features is None else features
    fused = env_cls.fused
    k = features.n_active
    n_actions = fused.n_actions
    rng = np.random.default_rng(seed)

    def observe(state):
        obs = np.zeros(fused.obs_size)
        fused.observe(state, obs)
        return features.indices(obs)

    def policy(theta, active):
        h = _linear(theta, active)
        # math.exp, the C library's, as the kernel: numpy's vectorised exp may
        # differ in the last bit, which thousands of episodes' returns amplify.
        pi = np.array([math.exp(x) for x in (h - h.max()) / agent.tau])
        return pi / pi.sum()

    gaussian = _GaussianPolicy(agent, k) if agent.policy == "gaussian" else None
    if gaussian:
        n_actions = 2  # theta's columns: the mean's and log-sigma's weights
    # Input: a differentiable policy parameterization pi(a|s, theta); theta initialized
    theta = np.zeros((features.n_features, n_actions))
    if agent.initial_preferences is not None:
        theta[:] = np.asarray(agent.initial_preferences) / k
    S = np.zeros(fused.state_size)
    fused.reset(S, rng.random() if fused.random_reset else 0.0)
    active = observe(S)
    baseline = agent.alpha_w is not None
    w = np.zeros(features.n_features)  # the baseline's weights (13.4)
    rewards, actions, ends, cuts, episode, ratios = [], [], [], [], [], []
    behaviour = getattr(agent, "behaviour", None)
    cap = agent.max_episode_steps or 0
    for _ in range(steps):
        # Generate an episode S_0, A_0, R_1, ..., following pi(.|., theta)
        if gaussian:
            A = gaussian.sample(theta, active, rng)
        else:
            pi = policy(theta, active)
            # off-policy: A ~ b, and rho = pi(A|S, theta) / b(A) with the theta that acts
            drawn_from = pi if behaviour is None else behaviour
            A = min(int(np.searchsorted(np.cumsum(drawn_from), rng.random(), side="right")),
                    n_actions - 1)
            ratios.append(1.0 if behaviour is None else pi[A] / behaviour[A])
        u = rng.random() if fused.random_step else 0.0
        S_next = S.copy()
        R, terminated = fused.step(S, float(A), u, S_next)
        episode.append((active, A, R))
        rewards.append(R)
        actions.append(A)
        if terminated or len(episode) == cap:  # the end, or cut at the cap
            (ends if terminated else cuts).append(len(rewards) - 1)
            # Loop for each step of the episode t = 0, 1, ..., T-1:
            #   G <- sum_{k=t+1}^{T} gamma^(k-t-1) R_k   (computed backwards)
            returns, G = [0.0] * len(episode), 0.0
            for t in range(len(episode) - 1, -1, -1):
                G = episode[t][2] + agent.gamma * G
                returns[t] = G
            if behaviour is not None:
                # per-decision: rho_{0:t} H_t = sum_{k>=t} gamma^(k-t) rho_{0:k} R_{k+1},
                # H_t = R_{t+1} + gamma rho_{t+1} H_{t+1} backwards
                H = 0.0
                for t in range(len(episode) - 1, -1, -1):
                    rho_next = ratios[t + 1] if t + 1 < len(episode) else 1.0
                    H = episode[t][2] + agent.gamma * rho_next * H
                    returns[t] = float(np.prod(ratios[:t + 1])) * H
            #   theta <- theta + alpha gamma^t G grad ln pi(A_t | S_t, theta)
            discount = 1.0
            for t, (active_t, A_t, _) in enumerate(episode):
                delta = returns[t]
                if baseline:
                    # delta <- G - v(S_t, w);  w <- w + alpha_w delta grad v(S_t, w)   (13.4)
                    delta = returns[t] - _linear(w, active_t)
                    w = w + (agent.alpha_w / k) * delta * _dense(features, active_t)
                if gaussian:  # the Gaussian's score, each column with its step size
                    x = _dense(features, active_t)
                    bonus = gaussian.entropy_step(theta, active_t)
                    theta = theta + discount * delta * np.outer(
                        x, gaussian.score_step(theta, active_t, A_t))
                    if agent.entropy > 0:
                        theta = theta + np.outer(x, bonus)
                    discount *= agent.gamma
                    continue
                # grad ln pi = x(S_t) (1[b = A_t] - pi(b|S_t)) / tau, the coefficient of
                # each column written -pi_b / tau + 1[b = A_t] / tau (as the kernel does:
                # the episodes' returns amplify a last-bit difference into other actions)
                pi_t = policy(theta, active_t)
                coef = -pi_t / agent.tau
                coef[A_t] += 1.0 / agent.tau
                grad_ln_pi = np.outer(_dense(features, active_t), coef)
                theta = theta + (agent.alpha_theta / k) * discount * delta * grad_ln_pi
                if agent.entropy > 0:
                    # theta <- theta + alpha beta_H grad H(pi(.|S_t)), pi_t as the score's
                    theta = theta + (agent.alpha_theta / k) * agent.entropy * np.outer(
                        _dense(features, active_t), _entropy_coef(pi_t, agent.tau))
                discount *= agent.gamma
            episode, ratios = [], []
            fused.reset(S_next, rng.random() if fused.random_reset else 0.0)
        S = S_next
        active = observe(S)
    return {"rewards": np.array(rewards), "actions": np.array(actions),
            "ends": np.array(ends, dtype=np.int64), "cuts": np.array(cuts, dtype=np.int64),
            "theta": theta, "w": w}


def reference_episodic_actor_critic(env, agent, steps, seed, features=None):
    """Run the episodic actor-critic box (Sutton & Barto 13.5, traces optional) in plain Python.

    The same draws as the fused loop.  Returns ``rewards``, ``actions``,
    ``ends``, ``w`` and ``theta``.
    """
    env_id, env_cls = resolve_env(env)
    features = default_features(env_id) if features is None else features
    fused = env_cls.fused
    k = features.n_active
    d, n_actions = features.n_features, fused.n_actions
    rng = np.random.default_rng(seed)

    def observe(state):
        obs = np.zeros(fused.obs_size)
        fused.observe(state, obs)
        return features.indices(obs)

    gaussian = _GaussianPolicy(agent, k) if agent.policy == "gaussian" else None
    if gaussian:
        n_actions = 2  # theta's columns: the mean's and log-sigma's weights
    # Input: pi(a|s, theta) and v(s, w); initialize theta and w
    theta = np.zeros((d, n_actions))
    if agent.initial_preferences is not None:
        theta[:] = np.asarray(agent.initial_preferences) / k
    w = np.zeros(d)
    # Initialize S (first state of episode); z_theta <- 0, z_w <- 0; I <- 1
    S = np.zeros(fused.state_size)
    fused.reset(S, rng.random() if fused.random_reset else 0.0)
    active = observe(S)
    z_w, z_theta, I = np.zeros(d), np.zeros((d, n_actions)), 1.0
    rewards, actions, ends = [], [], []
    for _ in range(steps):
        # A ~ pi(.|S, theta)
        if gaussian:
            A = gaussian.sample(theta, active, rng)
        else:
            h = _linear(theta, active)
            pi = np.array([math.exp(x) for x in (h - h.max()) / agent.tau])
            pi = pi / pi.sum()
            A = min(int(np.searchsorted(np.cumsum(pi), rng.random(), side="right")),
                    n_actions - 1)
        # Take action A, observe S', R
        u = rng.random() if fused.random_step else 0.0
        S_next = S.copy()
        R, terminated = fused.step(S, float(A), u, S_next)
        if terminated:
            fused.reset(S_next, rng.random() if fused.random_reset else 0.0)
        active_next = observe(S_next)
        x = _dense(features, active)
        # delta <- R + gamma v(S', w) - v(S, w)   (if S' is terminal, v(S', w) = 0)
        v_next = 0.0 if terminated else _linear(w, active_next)
        delta = R + agent.gamma * v_next - _linear(w, active)
        if gaussian:
            # the Gaussian's score with each column's step size folded in (so theta's
            # step below is 1): theta += delta z_theta, z_theta += I alpha score
            grad_ln_pi = np.outer(x, gaussian.score_step(theta, active, A))
            bonus = np.outer(x, gaussian.entropy_step(theta, active))
            z_w = (agent.gamma * agent.lambda_w) * z_w + x
            z_theta = (agent.gamma * agent.lambda_theta) * z_theta + I * grad_ln_pi
            w = w + (agent.alpha_w / k) * delta * z_w
            theta = theta + delta * z_theta
            if agent.entropy > 0:
                theta = theta + bonus
            I = agent.gamma * I
            rewards.append(R)
            actions.append(A)
            if terminated:
                ends.append(len(rewards) - 1)
                z_w, z_theta, I = np.zeros(d), np.zeros((d, n_actions)), 1.0
            S, active = S_next, active_next
            continue
        # grad ln pi = x(S) (1[b = A] - pi_b) / tau, written -pi_b / tau + 1[b = A] / tau
        coef = -pi / agent.tau
        coef[A] += 1.0 / agent.tau
        grad_ln_pi = np.outer(x, coef)
        # z_w <- gamma lambda_w z_w + grad v(S, w);  z_theta <- gamma lambda_theta z_theta + I grad
        z_w = (agent.gamma * agent.lambda_w) * z_w + x
        z_theta = (agent.gamma * agent.lambda_theta) * z_theta + I * grad_ln_pi
        # w <- w + alpha_w delta z_w;  theta <- theta + alpha_theta delta z_theta
        w = w + (agent.alpha_w / k) * delta * z_w
        theta = theta + (agent.alpha_theta / k) * delta * z_theta
        if agent.entropy > 0:  # theta <- theta + alpha beta_H grad H(pi(.|S)), untraced
            theta = theta + (agent.alpha_theta / k) * agent.entropy * np.outer(
                x, _entropy_coef(pi, agent.tau))
        # I <- gamma I
        I = agent.gamma * I
        rewards.append(R)
        actions.append(A)
        if terminated:  # the next episode: I <- 1, traces 0
            ends.append(len(rewards) - 1)
            z_w, z_theta, I = np.zeros(d), np.zeros((d, n_actions)), 1.0
        S, active = S_next, active_next
    return {"rewards": np.array(rewards), "actions": np.array(actions),
            "ends": np.array(ends, dtype=np.int64), "w": w, "theta": theta}


def reference_a2c(env, agent, steps, seed, actors, features=None):
    """Parallel actors (A2C, :mod:`avgreward.parallel`) in plain Python, copies in copy order.

    ``agent`` is a :class:`SoftmaxActorCritic` (the differential box, 13.6) or an
    :class:`EpisodicActorCritic` (the one-step episodic box, 13.5), one step
    (lambdas 0); each update is the mean of the ``actors`` one-copy updates,
    all computed with the weights (and R-bar) the copies acted with.  The same
    draws as the fused loop.  Returns ``rewards`` (the mean over the copies of
    each update), ``actions`` (copy 0's), ``w``, ``theta``, ``rbar``,
    ``episode_returns`` (every copy's finished episodes, in the order they ended)
    and ``deltas`` (``[steps, actors]``: each update's TD errors).
    """
    env_id, env_cls = resolve_env(env)
    features = default_features(env_id) if features is None else features
    fused = env_cls.fused
    episodic = isinstance(agent, EpisodicActorCritic)
    k = features.n_active
    d, n_actions = features.n_features, fused.n_actions
    rng = np.random.default_rng(seed)

    def observe(state):
        obs = np.zeros(fused.obs_size)
        fused.observe(state, obs)
        return features.indices(obs)

    theta = np.zeros((d, n_actions))
    if episodic and agent.initial_preferences is not None:
        theta[:] = np.asarray(agent.initial_preferences) / k
    w = np.zeros(d)
    rbar = 0.0
    # N copies, each with its start state (drawn in copy order) and, episodic, its I
    S, active = [], []
    for _ in range(actors):
        state = np.zeros(fused.state_size)
        fused.reset(state, rng.random() if fused.random_reset else 0.0)
        S.append(state)
        active.append(observe(state))
    I = [1.0] * actors
    partial = [0.0] * actors
    rewards, actions, episode_returns, all_deltas = [], [], [], []
    for _ in range(steps):
        transitions = []
        for c in range(actors):
            # A_c ~ pi(.|S_c, theta): every copy with the same theta
            h = _linear(theta, active[c])
            pi = np.array([math.exp(x) for x in (h - h.max()) / agent.tau])
            pi = pi / pi.sum()
            A = min(int(np.searchsorted(np.cumsum(pi), rng.random(), side="right")),
                    n_actions - 1)
            u = rng.random() if fused.random_step else 0.0
            S_next = S[c].copy()
            if fused.episodic:
                R, terminated = fused.step(S[c], float(A), u, S_next)
            else:  # a continuing environment's step returns the reward alone
                R, terminated = fused.step(S[c], float(A), u, S_next), False
            if terminated:
                fused.reset(S_next, rng.random() if fused.random_reset else 0.0)
            transitions.append((pi, A, R, terminated, S_next, observe(S_next)))
        # every copy's TD error with the weights (and R-bar) they acted with
        deltas = []
        for c, (pi, A, R, terminated, _, active_next) in enumerate(transitions):
            if episodic:
                v_next = 0.0 if terminated else _linear(w, active_next)
                deltas.append(R + agent.gamma * v_next - _linear(w, active[c]))
            else:
                deltas.append(R - rbar + _linear(w, active_next) - _linear(w, active[c]))
        all_deltas.append(deltas)
        if not episodic:
            rbar += agent.alpha_rbar * (sum(deltas) / actors)
        # the mean of the one-copy updates
        w_new, theta_new = w.copy(), theta.copy()
        for c, (pi, A, R, terminated, _, _) in enumerate(transitions):
            x = _dense(features, active[c])
            coef = -pi / agent.tau
            coef[A] += 1.0 / agent.tau
            scale = I[c] if episodic else 1.0
            w_new += (agent.alpha_w / k) * deltas[c] / actors * x
            theta_new += (agent.alpha_theta / k) * scale * deltas[c] / actors * np.outer(x, coef)
            if agent.entropy > 0:
                theta_new += ((agent.alpha_theta / k) * agent.entropy / actors
                              * np.outer(x, _entropy_coef(pi, agent.tau)))
            if episodic:
                partial[c] += float(np.float32(R))
                I[c] = 1.0 if terminated else agent.gamma * I[c]
                if terminated:
                    episode_returns.append(partial[c])
                    partial[c] = 0.0
        w, theta = w_new, theta_new
        rewards.append(sum(t[2] for t in transitions) / actors)
        actions.append(transitions[0][1])
        S = [t[4] for t in transitions]
        active = [t[5] for t in transitions]
    return {"rewards": np.array(rewards), "actions": np.array(actions), "w": w,
            "theta": theta, "rbar": rbar, "episode_returns": np.array(episode_returns),
            "deltas": np.array(all_deltas).reshape(steps, actors)}


def reference_value_control(env, agent, steps, seed, features=None):
    """Differential semi-gradient Sarsa (S&B 10.3), differential Q-learning, RVI
    Q-learning, or discounted Sarsa or Q-learning with or without reward centering,
    in plain Python.

    ``agent`` is one of those settings;
    the same draws as the fused loop (:mod:`avgreward.learners.value`): two
    uniforms per epsilon-greedy choice, Sarsa's A' after the environment's
    draws, Q-learning's A at the start of each step.  Returns ``rewards``,
    ``actions``, ``rbar`` (after every step; RVI Q-learning's f(Q) after the
    step, the value the next step's TD error uses), ``w`` (``[n_features, n_actions]``)
    and ``deltas``, each step's TD error (0 for n-step Sarsa's first n - 1
    steps, which have none: what the live metric counts them as).
    """
    if not isinstance(agent, (DifferentialSarsa, DifferentialQLearning, RVIQLearning,
                              DiscountedSarsa, DiscountedQLearning)):
        raise ValueError(f"agent must be a value-based learner's settings, got {agent!r}")
    env_id, env_cls = resolve_env(env)
    features = default_features(env_id) if features is None else features
    fused = env_cls.fused
    k, n_actions = features.n_active, fused.n_actions
    sarsa = isinstance(agent, (DifferentialSarsa, DiscountedSarsa))
    differential = isinstance(agent, (DifferentialSarsa, DifferentialQLearning, RVIQLearning))
    rvi = isinstance(agent, RVIQLearning)
    if rvi and agent.reference == "fixed":
        state = agent.reference_state
        ref_active = (features.indices(np.array(state, dtype=float))
                      if isinstance(state, tuple) else [state])

    def f(w, mean):
        """RVI Q-learning's reference function of the values (Wan et al. 2021, section 3)."""
        if agent.reference == "fixed":
            return _linear(w[:, agent.reference_action], ref_active)  # Q(s_ref, a_ref)
        if agent.reference == "max":
            return w.max()                                   # max over all (s, a)
        return mean                                          # mean over all (s, a), kept
    gamma = 1.0 if differential else agent.gamma

    def move_rbar(rbar, R, delta):
        if isinstance(agent, DifferentialSarsa):
            return rbar + agent.beta * delta                 # Rbar <- Rbar + beta delta
        if isinstance(agent, DifferentialQLearning):
            return rbar + agent.eta * (agent.alpha / k) * delta   # Rbar += eta alpha delta
        if agent.centering == "simple":
            return rbar + agent.beta * (R - rbar)            # simple reward centering
        if agent.centering == "td":
            return rbar + agent.beta * (agent.alpha / k) * delta  # TD-based centering
        return rbar                                          # no centering: Rbar = 0
    rng = np.random.default_rng(seed)

    def observe(state):
        obs = np.zeros(fused.obs_size)
        fused.observe(state, obs)
        return features.indices(obs)

    def q(w, active):
        return np.array([_linear(w[:, a], active) for a in range(n_actions)])

    def epsilon_greedy(w, active):
        u1, u2 = rng.random(), rng.random()
        if u1 < agent.epsilon:  # explore: any action
            return min(int(u2 * n_actions), n_actions - 1)
        values = q(w, active)
        best = np.flatnonzero(values == values.max())  # ties broken uniformly
        return int(best[min(int(u2 * best.size), best.size - 1)])

    w = np.zeros((features.n_features, n_actions))
    rbar = 0.0
    S = np.zeros(fused.state_size)
    fused.reset(S, rng.random() if fused.random_reset else 0.0)
    active = observe(S)
    A = epsilon_greedy(w, active) if sarsa else None
    n = getattr(agent, "n", 1)
    history = []  # n-step Sarsa (10.4): (features of S_t, A_t, R_{t+1}) of the last n steps
    rewards, actions, rbars, deltas = [], [], [], []
    for _ in range(steps):
        if not sarsa:
            A = epsilon_greedy(w, active)  # behaviour: epsilon-greedy at S
        u = rng.random() if fused.random_step else 0.0
        S_next = S.copy()
        if fused.episodic:
            R, terminated = fused.step(S, float(A), u, S_next)
            if terminated:  # the stream goes on from the next start
                fused.reset(S_next, rng.random() if fused.random_reset else 0.0)
        else:
            R = fused.step(S, float(A), u, S_next)
        active_next = observe(S_next)
        x = _dense(features, active)
        delta = 0.0
        if sarsa and n > 1:
            history = (history + [(active, A, R)])[-n:]
            A_next = epsilon_greedy(w, active_next)      # A_{t+1} ~ epsilon-greedy
            if len(history) == n:                        # tau = t - n + 1 >= 0
                total = 0.0
                for _, _, R_i in history:                # sum_{i=tau+1}^{tau+n} (R_i - Rbar)
                    total += R_i - rbar
                active_tau, A_tau, _ = history[0]
                delta = (total + _linear(w[:, A_next], active_next)
                         - _linear(w[:, A_tau], active_tau))
                rbar = rbar + agent.beta * delta
                w[:, A_tau] = w[:, A_tau] + (agent.alpha / k) * delta * _dense(features,
                                                                                 active_tau)
        elif sarsa:
            # Choose A' as a function of q(S', ., w) (epsilon-greedy)
            A_next = epsilon_greedy(w, active_next)
            # delta <- R - Rbar + gamma q(S', A', w) - q(S, A, w)
            delta = (R - rbar + gamma * _linear(w[:, A_next], active_next)
                     - _linear(w[:, A], active))
            rbar = move_rbar(rbar, R, delta)
            w[:, A] = w[:, A] + (agent.alpha / k) * delta * x    # w <- w + alpha delta grad q
        elif rvi:
            # delta <- R - f(Q) + max_a Q(S', a) - Q(S, A)   (rbar: f(Q), from Q = 0 at 0)
            delta = R - rbar + q(w, active_next).max() - _linear(w[:, A], active)
            w[:, A] = w[:, A] + (agent.alpha / k) * delta * x    # Q(S, A) += alpha delta
            # f(Q) after the update; the mean moves by the one entry's change / |S||A|
            rbar = f(w, rbar + ((agent.alpha / k) * delta) * (1.0 / w.size))
        else:
            # delta <- R - Rbar + gamma max_a q(S', a) - q(S, A)
            delta = R - rbar + gamma * q(w, active_next).max() - _linear(w[:, A], active)
            w[:, A] = w[:, A] + (agent.alpha / k) * delta * x    # Q(S, A) += alpha delta
            rbar = move_rbar(rbar, R, delta)
        rewards.append(R)
        actions.append(A)
        rbars.append(rbar)
        deltas.append(delta)
        S, active = S_next, active_next
        if sarsa:
            A = A_next
    return {"rewards": np.array(rewards), "actions": np.array(actions),
            "rbar": np.array(rbars), "w": w, "deltas": np.array(deltas)}


def reference_prediction(env, agent, steps, seed, features=None):
    """Differential TD-learning (Wan, Naik & Sutton 2021) or average-cost TD(lambda)
    (Tsitsiklis & Van Roy 1999), in plain Python, line by line as their updates read.

    The state is found by its observation in the environment's exact model
    (not by the fused loop's feature lookup); the behaviour's action by
    inverse CDF of one uniform, as :mod:`avgreward.learners.prediction` draws
    it.  Returns ``rewards``, ``actions``, ``rbar`` (after every step) and
    ``w`` (``[n_features]``).
    """
    from avgreward import exact

    if not isinstance(agent, (DifferentialTD, AverageCostTD)):
        raise ValueError(f"agent must be DifferentialTD or AverageCostTD settings, got {agent!r}")
    env_id, env_cls = resolve_env(env)
    features = default_features(env_id) if features is None else features
    fused = env_cls.fused
    model = exact.model_of(env_id)
    k, n = features.n_active, features.n_features
    alpha = agent.alpha / k
    lam = agent.lambda_
    pi = np.array(agent.target)
    differential = isinstance(agent, DifferentialTD)
    b = pi if not differential or agent.behaviour is None else np.array(agent.behaviour)
    rng = np.random.default_rng(seed)

    def observe(state):
        obs = np.zeros(fused.obs_size)
        fused.observe(state, obs)
        return obs

    def state_of(obs):
        return next(s for s, o in enumerate(model.observations)
                    if np.array_equal(np.asarray(o, np.float64), obs))

    def inverse_cdf(probs, u):
        cumulative = 0.0
        for a in range(probs.size - 1):
            cumulative += probs[a]
            if u < cumulative:
                return a
        return probs.size - 1

    w = np.zeros(n)
    z = np.zeros(n)
    rbar = 0.0
    S = np.zeros(fused.state_size)
    fused.reset(S, rng.random() if fused.random_reset else 0.0)
    obs = observe(S)
    rewards, actions, rbars = [], [], []
    for _ in range(steps):
        s = state_of(obs)
        A = inverse_cdf(b[s], rng.random())                  # A ~ b(.|S)
        rho = pi[s, A] / b[s, A] if differential else 1.0    # rho = pi(A|S) / b(A|S)
        u = rng.random() if fused.random_step else 0.0
        S_next = S.copy()
        R = fused.step(S, float(A), u, S_next)
        obs_next = observe(S_next)
        active, active_next = features.indices(obs), features.indices(obs_next)
        x = _dense(features, active)
        # delta <- R - Rbar + v(S', w) - v(S, w)
        delta = R - rbar + _linear(w, active_next) - _linear(w, active)
        if differential:
            if lam == 0.0:
                w = w + alpha * rho * delta * x              # w <- w + alpha rho delta x(S)
            else:
                z = rho * (lam * z + x)                      # z <- rho (lambda z + x(S))
                w = w + alpha * delta * z                    # w <- w + alpha delta z
            rbar = rbar + agent.eta * alpha * rho * delta    # Rbar <- Rbar + eta alpha rho delta
        else:
            z = lam * z + x                                  # z <- lambda z + x(S)
            w = w + alpha * delta * z                        # w <- w + alpha delta z
            rbar = rbar + agent.beta * (R - rbar)            # mu <- mu + beta (R - mu)
        rewards.append(R)
        actions.append(A)
        rbars.append(rbar)
        S, obs = S_next, obs_next
    return {"rewards": np.array(rewards), "actions": np.array(actions),
            "rbar": np.array(rbars), "w": w}


def reference_natural_actor_critic(env, agent, steps, seed, features=None):
    """Bhatnagar et al. (2009), Algorithm 3, in plain Python with dense vectors.

    ``agent`` is a :class:`~avgreward.agents.NaturalActorCritic`; the draws are
    the fused loop's, in its order (the start, then per step the action's and
    the environment's).  Every vector is dense over all the features and the
    actor's step moves all of theta every step, as the paper writes it
    (the fused learner does that step lazily, equal to rounding).  Returns a
    dict with ``rewards``, ``actions``, ``rbar`` (after every step), ``w`` (the
    critic, their v), ``theta``, ``advantage`` (their w) and ``advantages``,
    the advantage weights after every step.
    """
    if not isinstance(agent, NaturalActorCritic):
        raise ValueError(f"agent must be NaturalActorCritic settings, got {agent!r}")
    env_id, env_cls = resolve_env(env)
    features = default_features(env_id) if features is None else features
    fused = env_cls.fused
    k = features.n_active
    d, n = features.n_features, fused.n_actions
    alpha, alpha_u, beta, xi = (agent.alpha_w / k, agent.advantage_step / k, agent.alpha_theta,
                                agent.alpha_rbar)
    rng = np.random.default_rng(seed)

    def observe(state):
        obs = np.zeros(fused.obs_size)
        fused.observe(state, obs)
        return obs

    s = np.zeros(fused.state_size)
    fused.reset(s, rng.random() if fused.random_reset else 0.0)
    active = features.indices(observe(s))
    f = _dense(features, active)  # their f(s_t), the critic's features
    J, v = 0.0, np.zeros(d)
    w = np.zeros(d * n)  # advantage parameters, flattened like theta.reshape(-1)
    theta = np.zeros((d, n))

    rewards, actions, rbars, advantages = [], [], [], []
    for _ in range(steps):
        # a_t ~ pi(s_t, . ; theta_t), psi_{s_t a_t} = grad ln pi(a_t | s_t)
        h = _linear(theta, active)
        pi = np.exp((h - h.max()) / agent.tau)
        pi /= pi.sum()
        a = min(int(np.searchsorted(np.cumsum(pi), rng.random(), side="right")), n - 1)
        psi = (np.outer(f, np.eye(n)[a] - pi) / agent.tau).reshape(-1)
        # s_{t+1}, r_{t+1}
        u = rng.random() if fused.random_step else 0.0
        s_next = s.copy()
        r = fused.step(s, float(a), u, s_next)
        if fused.episodic:
            r, terminated = r
            if terminated:
                fused.reset(s_next, rng.random() if fused.random_reset else 0.0)
        active_next = features.indices(observe(s_next))
        f_next = _dense(features, active_next)
        # J_{t+1} = (1 - xi_t) J_t + xi_t r_{t+1}
        J = (1.0 - xi) * J + xi * r
        # delta_t = r_{t+1} - J_{t+1} + v_t^T f(s_{t+1}) - v_t^T f(s_t)
        delta = r - J + v @ f_next - v @ f
        # v_{t+1} = v_t + alpha_t delta_t f(s_t)
        v = v + alpha * delta * f
        # w_{t+1} = [I - alpha_t psi psi^T] w_t + alpha_t delta_t psi
        w = (np.eye(d * n) - alpha_u * np.outer(psi, psi)) @ w + alpha_u * delta * psi
        # theta_{t+1} = theta_t + beta_t w_{t+1}   (no projection)
        theta = theta + beta * w.reshape(d, n)
        s, f, active = s_next, f_next, active_next

        rewards.append(r)
        actions.append(a)
        rbars.append(J)
        advantages.append(w.reshape(d, n).copy())
    return {"rewards": np.array(rewards), "actions": np.array(actions), "rbar": np.array(rbars),
            "w": v, "theta": theta, "advantage": w.reshape(d, n),
            "advantages": np.array(advantages)}
