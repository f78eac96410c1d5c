"""Memory that does not grow with steps: binned rewards, the memory check, bad observations.

``train(..., bin_size=B)`` keeps per-step rewards only per chunk and folds
them into float64 bin sums; the bins must not depend on the chunking and must
be the means of the per-step rewards.  Runs whose per-step arrays cannot fit
are refused at once with a ValueError that says how to avoid it.
"""

import math

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

import avgreward
from avgreward import (
    DivergenceError,
    GaussianActorCritic,
    SoftmaxActorCritic,
    run_arrays,
)
from avgreward.stepwise import train_stepwise

PENDULUM = "avgreward/PendulumSwingUp-v0"
CONTINUOUS = "avgreward/PendulumSwingUpContinuous-v0"
LOOP = "avgreward/LoopMDP-v0"

CASES = [
    # the three-action kernel, the general softmax kernel with traces, the Gaussian kernel
    (PENDULUM, SoftmaxActorCritic.pendulum_reference()),
    (LOOP, SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01, lambda_w=0.5)),
    (CONTINUOUS, GaussianActorCritic.pendulum_default()),
]


def _bin_means(rewards, bin_size):
    """The means of consecutive bins, computed plainly from the per-step rewards."""
    return np.array([np.mean(rewards[i:i + bin_size], dtype=np.float64)
                     for i in range(0, rewards.size, bin_size)])


def _bin_steps(steps, bin_size):
    return np.minimum(np.arange(1, math.ceil(steps / bin_size) + 1) * bin_size, steps)


@pytest.mark.parametrize("env_id, agent", CASES)
def test_bins_do_not_depend_on_chunks_and_are_the_means_of_the_steps(env_id, agent):
    steps, bin_size = 3_001, 100  # a shorter last bin
    per_step = avgreward.train(env_id, agent, steps, seed=2)
    runs = [avgreward.train(env_id, agent, steps, seed=2, bin_size=bin_size, chunk_steps=chunk)
            for chunk in (1, 7, 1000, None)]
    for run in runs:
        assert run.rewards.dtype == np.float64 and run.rewards.shape == (31,)
        np.testing.assert_array_equal(run.rewards, runs[0].rewards)
        assert run.info["bin_size"] == bin_size
        assert run.info["bin_steps"].dtype == np.int64
        np.testing.assert_array_equal(run.info["bin_steps"], _bin_steps(steps, bin_size))
        # Binning changes nothing else.
        assert run.steps == steps and run.final_rbar == per_step.final_rbar
        np.testing.assert_array_equal(run.rbar, per_step.rbar)
        for name, weights in per_step.weights.items():
            np.testing.assert_array_equal(run.weights[name], weights)
    np.testing.assert_allclose(runs[0].rewards, _bin_means(per_step.rewards, bin_size),
                               rtol=0, atol=1e-12)
    assert runs[0].rewards[-1] == np.float64(per_step.rewards[-1])  # the 1-step last bin


def test_bin_size_one_is_the_per_step_rewards():
    agent = SoftmaxActorCritic.pendulum_reference()
    per_step = avgreward.train(PENDULUM, agent, 2_000, seed=1)
    binned = avgreward.train(PENDULUM, agent, 2_000, seed=1, bin_size=1, chunk_steps=333)
    np.testing.assert_array_equal(binned.rewards.astype(np.float32), per_step.rewards)
    np.testing.assert_array_equal(binned.info["bin_steps"], np.arange(1, 2_001))
    # One bin of every step.
    whole = avgreward.train(PENDULUM, agent, 2_000, seed=1, bin_size=2_000, chunk_steps=333)
    assert whole.rewards.shape == (1,)
    assert whole.rewards[0] == pytest.approx(per_step.mean_reward(), abs=1e-12)


def test_recorded_actions_stay_per_step_when_rewards_are_binned():
    agent = SoftmaxActorCritic.pendulum_reference()
    per_step = avgreward.train(PENDULUM, agent, 1_500, seed=0, record_actions=True)
    binned = avgreward.train(PENDULUM, agent, 1_500, seed=0, record_actions=True,
                             bin_size=100, chunk_steps=64)
    np.testing.assert_array_equal(binned.actions, per_step.actions)


def test_mean_reward_of_binned_results_on_bin_edges_or_a_clear_error():
    agent = SoftmaxActorCritic.pendulum_reference()
    per_step = avgreward.train(PENDULUM, agent, 2_050, seed=3)
    binned = avgreward.train(PENDULUM, agent, 2_050, seed=3, bin_size=100)
    for start, stop in [(0, None), (1_000, None), (500, 1_500), (-50, None), (2_000, 2_050),
                        (0, -50)]:
        assert binned.mean_reward(start, stop) == pytest.approx(
            per_step.mean_reward(start, stop), abs=1e-12)
    for start, stop in [(150, None), (0, 1_550), (-49, None)]:
        with pytest.raises(ValueError, match="bin edges"):
            binned.mean_reward(start, stop)


@pytest.mark.parametrize("bin_size", [0, -3, 1.5, True, "10", 1_001])
def test_bad_bin_size_is_named(bin_size):
    agent = SoftmaxActorCritic.pendulum_reference()
    with pytest.raises(ValueError, match="bin_size"):
        avgreward.train(PENDULUM, agent, 1_000, seed=0, bin_size=bin_size)
    with pytest.raises(ValueError, match="bin_size"):
        train_stepwise(gymnasium.make(PENDULUM), agent, 1_000, seed=0, bin_size=bin_size,
                       features=avgreward.default_features(PENDULUM))


@pytest.mark.parametrize("chunk", [1_000, 7])
def test_a_diverged_run_holds_the_bins_of_the_steps_done(chunk):
    agent = SoftmaxActorCritic(alpha_w=2.0**12, alpha_theta=0.25, alpha_rbar=2.0**-6)
    with pytest.raises(DivergenceError) as per_step:
        avgreward.train(PENDULUM, agent, 100_000, seed=0, chunk_steps=chunk)
    with pytest.raises(DivergenceError) as binned:
        avgreward.train(PENDULUM, agent, 100_000, seed=0, chunk_steps=chunk, bin_size=10)
    done = binned.value.step
    assert done == per_step.value.step and done % 10  # the last bin is partial
    partial = binned.value.result
    assert partial.steps == done
    np.testing.assert_array_equal(partial.info["bin_steps"], _bin_steps(done, 10))
    assert partial.info["bin_steps"][-1] == done
    np.testing.assert_allclose(partial.rewards, _bin_means(per_step.value.result.rewards, 10),
                               rtol=0, atol=1e-12)


# --- the stepwise path ---------------------------------------------------------------------


def test_stepwise_bins_equal_the_fused_loops():
    # Our pendulum draws nothing itself: the stepwise path makes the fused loop's
    # numbers, so its bins are the fused loop's bins to the bit, chunks or not.
    agent = SoftmaxActorCritic.pendulum_reference()
    fused = avgreward.train(PENDULUM, agent, 1_234, seed=5, bin_size=50, chunk_steps=100)
    for chunk in (1, 7, None):
        stepwise = train_stepwise(gymnasium.make(PENDULUM), agent, 1_234, seed=5, bin_size=50,
                                  chunk_steps=chunk, features=avgreward.default_features(PENDULUM))
        np.testing.assert_array_equal(stepwise.rewards, fused.rewards)
        np.testing.assert_array_equal(stepwise.info["bin_steps"], fused.info["bin_steps"])
        assert stepwise.info["bin_size"] == 50


def test_stepwise_divergence_keeps_the_bins_and_the_episode_ends():
    agent = GaussianActorCritic(alpha_w=2.0**12, alpha_mu=1.0, alpha_sigma=1.0, alpha_rbar=0.1)
    env = gymnasium.make(CONTINUOUS)
    features = avgreward.default_features(CONTINUOUS)
    with pytest.raises(DivergenceError) as per_step:
        train_stepwise(env, agent, 100_000, seed=0, features=features)
    with pytest.raises(DivergenceError) as binned:
        train_stepwise(env, agent, 100_000, seed=0, features=features, bin_size=3,
                       chunk_steps=5)
    done = binned.value.step
    assert done == per_step.value.step > 0
    partial = binned.value.result
    assert partial.info["bin_steps"][-1] == done and "terminations" in partial.info
    np.testing.assert_allclose(partial.rewards, _bin_means(per_step.value.result.rewards, 3),
                               rtol=0, atol=1e-12)


class _BadObservation(gymnasium.Env):
    """A counter whose observation at 0-based step ``bad_step`` is ``bad`` (reset: step -1)."""

    observation_space = spaces.Box(0.0, 10.0, (2,), np.float64)

    def __init__(self, action_space, bad_step, bad=np.nan):
        self.action_space = action_space
        self.bad_step, self.bad = bad_step, bad

    def _obs(self):
        x = np.array([self.t % 10, 1.0])
        if self.t - 1 == self.bad_step:
            x[0] = self.bad
        return x

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 0.0, False, False, {}


@pytest.mark.parametrize("agent, action_space", [
    (SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01), spaces.Discrete(2)),
    (GaussianActorCritic(alpha_w=0.1, alpha_mu=0.1, alpha_sigma=0.1, alpha_rbar=0.01),
     spaces.Box(-1.0, 1.0, (1,))),
])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_observation_names_the_env_and_the_step(agent, action_space, bad):
    env = _BadObservation(action_space, bad_step=7, bad=bad)
    with pytest.raises(ValueError, match=r"_BadObservation.*non-finite observation.*step 7\b"):
        avgreward.train(env, agent, 100, seed=0)
    with pytest.raises(ValueError, match=r"(nan|inf).*from reset.*before step 0"):
        avgreward.train(_BadObservation(action_space, bad_step=-1, bad=bad), agent, 100, seed=0)
    # A finite run of the same env is fine: the check is on the value, not the env.
    assert avgreward.train(_BadObservation(action_space, bad_step=10**9), agent, 100,
                           seed=0).steps == 100


# --- the memory check ----------------------------------------------------------------------


def test_a_run_too_big_for_memory_is_refused_at_once_saying_how_to_avoid_it():
    agent = SoftmaxActorCritic.pendulum_reference()
    with pytest.raises(ValueError, match=r"4,000\.0 GB.*bin_size=") as info:
        avgreward.train(PENDULUM, agent, 10**12, 0)
    assert "memory does not depend on steps" in str(info.value)


def test_memory_check_counts_what_is_kept_per_step(monkeypatch):
    monkeypatch.setattr(run_arrays, "_available_memory", lambda: 10**6)  # bytes
    agent = SoftmaxActorCritic.pendulum_reference()
    steps = 300_000  # 1.2 MB of per-step rewards, 2.4 MB of actions, 80 kB of R-bar
    with pytest.raises(ValueError, match=r"rewards.*1\.2 MB.*bin_size="):
        avgreward.train(PENDULUM, agent, steps, 0)
    with pytest.raises(ValueError, match=r"record_actions"):
        avgreward.train(PENDULUM, agent, steps, 0, bin_size=100, record_actions=True)
    with pytest.raises(ValueError, match=r"rbar_every"):
        avgreward.train(PENDULUM, agent, steps, 0, bin_size=100, rbar_every=1)
    with pytest.raises(ValueError, match=r"bin_size="):  # also the stepwise path
        train_stepwise(gymnasium.make(PENDULUM), agent, steps, seed=0,
                       features=avgreward.default_features(PENDULUM))
    # Binned, the memory does not depend on steps: a chunk's buffer and the bins.
    result = avgreward.train(PENDULUM, agent, steps, 0, bin_size=1_000, chunk_steps=10_000)
    assert result.rewards.shape == (300,)
    monkeypatch.setattr(run_arrays, "_available_memory", lambda: None)  # unknown: no check
    assert avgreward.train(PENDULUM, agent, steps, 0).rewards.shape == (steps,)


def test_available_memory_is_a_positive_byte_count():
    available = run_arrays._available_memory()
    assert available is None or (isinstance(available, int) and available > 0)


def test_steps_beyond_2_to_the_53_are_refused():
    agent = SoftmaxActorCritic.pendulum_reference()
    with pytest.raises(ValueError, match=r"steps.*2\*\*53"):
        avgreward.train(PENDULUM, agent, 2**53 + 1, 0, bin_size=2**40)
    with pytest.raises(ValueError, match=r"steps.*2\*\*53"):
        avgreward.train("MountainCar-v0", agent, 2**53 + 1, 0, bin_size=2**40)


# --- the contextual bandits' regret: per bin with the rewards ---------------------------------

BANDIT = "avgreward/LinearContextualBandit-v0"


def test_a_bandit_runs_regret_is_binned_with_its_rewards_and_chunks_do_not_matter():
    from avgreward.agents import LinUCB, SoftmaxBandit

    steps, bin_size = 3_001, 100  # a shorter last bin
    for agent in (LinUCB(), SoftmaxBandit()):
        whole = avgreward.train(BANDIT, agent, steps, seed=4)
        per_step = whole.weights["regret"]
        assert per_step.shape == (steps,)
        # Each bin's regret is its steps' summed in order, from 0.0: exactly.
        sums = []
        for start in range(0, steps, bin_size):
            total = 0.0
            for gap in per_step[start:start + bin_size]:
                total += float(gap)
            sums.append(total)
        for chunk in (None, 7, 1_000):
            run = avgreward.train(BANDIT, agent, steps, seed=4, bin_size=bin_size,
                                  chunk_steps=chunk)
            np.testing.assert_array_equal(run.weights["regret"], sums)
            assert run.rewards.shape == run.weights["regret"].shape
            # LinUCB's cached scores carry over between chunks: the same run to the bit.
            np.testing.assert_array_equal(run.weights["theta"], whole.weights["theta"])


def test_a_binned_bandit_runs_memory_does_not_grow_with_steps(monkeypatch):
    from avgreward.agents import SquareCB

    monkeypatch.setattr(run_arrays, "_available_memory", lambda: 10**6)  # bytes
    steps = 300_000  # 2.4 MB of per-step regret
    with pytest.raises(ValueError, match=r"bin_size="):
        avgreward.train(BANDIT, SquareCB(), steps, 0)
    result = avgreward.train(BANDIT, SquareCB(), steps, 0, bin_size=1_000, chunk_steps=10_000)
    assert result.weights["regret"].shape == result.rewards.shape == (300,)
