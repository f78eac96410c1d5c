"""train(): reproducibility, chunking, results, bad input, the divergence guard."""

import numpy as np
import pytest

import avgreward
from avgreward import DivergenceError, GaussianActorCritic, SoftmaxActorCritic

PENDULUM = "avgreward/PendulumSwingUp-v0"
CONTINUOUS = "avgreward/PendulumSwingUpContinuous-v0"
GRID = "avgreward/AliasedGridworld-v0"


def _same(a, b):
    assert np.array_equal(a.rewards, b.rewards)
    assert np.array_equal(a.rbar, b.rbar)
    assert a.final_rbar == b.final_rbar
    for key in a.weights:
        assert np.array_equal(a.weights[key], b.weights[key])


@pytest.mark.parametrize(
    "env_id, agent",
    [(PENDULUM, SoftmaxActorCritic.pendulum_reference()),
     (CONTINUOUS, GaussianActorCritic.pendulum_default(lambda_theta=0.5)),
     (GRID, SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01))],
)
def test_same_seed_same_bits_and_chunking_changes_nothing(env_id, agent):
    one = avgreward.train(env_id, agent, 30_000, seed=4)
    again = avgreward.train(env_id, agent, 30_000, seed=4)
    chunked = avgreward.train(env_id, agent, 30_000, seed=4, chunk_steps=997)
    _same(one, again)
    _same(one, chunked)
    other = avgreward.train(env_id, agent, 30_000, seed=5)
    assert not np.array_equal(one.rewards, other.rewards)


def test_env_instance_and_prefixed_id_are_accepted():
    import gymnasium

    agent = SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    by_id = avgreward.train("avgreward/LoopMDP-v0", agent, 500, seed=0)
    by_prefix = avgreward.train("envs:avgreward/LoopMDP-v0", agent, 500, seed=0)
    by_instance = avgreward.train(gymnasium.make("envs:avgreward/LoopMDP-v0"), agent, 500, seed=0)
    _same(by_id, by_prefix)
    _same(by_id, by_instance)


def test_result_contents():
    agent = SoftmaxActorCritic.pendulum_reference()
    result = avgreward.train(PENDULUM, agent, 5000, seed=0, rbar_every=100, record_actions=True)
    assert result.rewards.shape == (5000,) and result.rewards.dtype == np.float32
    assert np.all(result.rewards <= 0) and np.all(result.rewards >= -np.pi)
    assert result.rbar.shape == (50,) and list(result.rbar_steps[:2]) == [100, 200]
    assert result.rbar[-1] == result.final_rbar
    assert result.weights["theta"].shape == (result.features.n_features, 3)
    assert set(np.unique(result.actions)) <= {0, 1, 2}
    probs = result.policy([0.1, -0.5])
    assert probs.shape == (3,) and probs.sum() == pytest.approx(1.0)
    assert isinstance(result.value(np.array([0.0, 0.0])), float)
    assert result.agent is agent and result.seed == 0 and result.env_id == PENDULUM
    gauss = avgreward.train(CONTINUOUS, GaussianActorCritic.pendulum_default(), 2000, seed=0)
    mu, sigma = gauss.policy([0.0, 0.0])
    assert np.isfinite(mu) and sigma > 0


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(alpha_w=-1.0), "alpha_w"), (dict(alpha_theta=float("nan")), "alpha_theta"),
     (dict(alpha_rbar=float("inf")), "alpha_rbar"), (dict(tau=0.0), "tau"),
     (dict(tau=-2.0), "tau"), (dict(lambda_w=1.5), "lambda_w"),
     (dict(lambda_theta=-0.1), "lambda_theta"), (dict(entropy=-0.1), "entropy"),
     (dict(alpha_w="big"), "alpha_w")],
)
def test_bad_softmax_settings_name_the_setting(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SoftmaxActorCritic.pendulum_reference(**kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(alpha_mu=-1.0), "alpha_mu"), (dict(alpha_sigma=float("nan")), "alpha_sigma"),
     (dict(sigma_min=-0.5), "sigma_min"), (dict(lambda_theta=2.0), "lambda_theta"),
     (dict(scale_mean_gradient="yes"), "scale_mean_gradient")],
)
def test_bad_gaussian_settings_name_the_setting(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GaussianActorCritic.pendulum_default(**kwargs)


def test_unknown_setting_in_replace():
    with pytest.raises(ValueError, match="alpha_q"):
        SoftmaxActorCritic.pendulum_reference(alpha_q=1.0)


def test_bad_train_arguments():
    agent = SoftmaxActorCritic.pendulum_reference()
    with pytest.raises(ValueError, match="env"):
        avgreward.train("NoSuchEnvironment-v0", agent, 10, seed=0)
    with pytest.raises(ValueError, match="steps"):
        avgreward.train(PENDULUM, agent, 0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        avgreward.train(PENDULUM, agent, 10, seed=-1)
    with pytest.raises(ValueError, match="seed"):
        avgreward.train(PENDULUM, agent, 10, seed=1.5)
    with pytest.raises(ValueError, match="agent"):
        avgreward.train(CONTINUOUS, agent, 10, seed=0)
    with pytest.raises(ValueError, match="agent"):
        avgreward.train(PENDULUM, GaussianActorCritic.pendulum_default(), 10, seed=0)
    with pytest.raises(ValueError, match="agent"):
        avgreward.train(PENDULUM, {"alpha_w": 1.0}, 10, seed=0)
    with pytest.raises(ValueError, match="features"):
        avgreward.train(PENDULUM, agent, 10, seed=0, features=avgreward.one_hot(9))
    with pytest.raises(ValueError, match="features"):
        avgreward.train(PENDULUM, agent, 10, seed=0, features="tiles")
    with pytest.raises(ValueError, match="rbar_every"):
        avgreward.train(PENDULUM, agent, 10, seed=0, rbar_every=0)
    with pytest.raises(ValueError, match="bin_size"):
        avgreward.train(PENDULUM, agent, 10, seed=0, bin_size=0)
    with pytest.raises(ValueError, match="bin_size"):
        avgreward.train(PENDULUM, agent, 10, seed=0, bin_size=11)
    with pytest.raises(ValueError, match="steps"):
        avgreward.train(PENDULUM, agent, 2**53 + 1, seed=0, bin_size=2**40)


def test_divergence_guard_stops_with_a_clear_error_and_keeps_the_partial_result():
    # A critic step size of 2^12 per feature overshoots by a factor of ~4000 a step.
    agent = SoftmaxActorCritic(alpha_w=2.0**12, alpha_theta=0.25, alpha_rbar=2.0**-6)
    with pytest.raises(DivergenceError) as info:
        avgreward.train(PENDULUM, agent, 100_000, seed=0, chunk_steps=1000)
    err = info.value
    assert 0 < err.step < 100_000
    message = str(err)
    assert f"step {err.step}" in message and "alpha_w=4096" in message and "seed=0" in message
    partial = err.result
    assert partial.steps == err.step and partial.rewards.shape == (err.step,)
    assert np.all(np.isfinite(partial.rewards))
    # The step that went non-finite was not applied: R-bar is still a number.
    assert np.isfinite(partial.final_rbar)
    # Binned, the partial result holds the bins of the same steps (tests/test_memory.py).
    with pytest.raises(DivergenceError) as binned:
        avgreward.train(PENDULUM, agent, 100_000, seed=0, chunk_steps=1000, bin_size=1000)
    assert binned.value.step == err.step
    assert binned.value.result.info["bin_steps"][-1] == err.step


def test_gaussian_divergence_guard():
    agent = GaussianActorCritic(alpha_w=2.0**12, alpha_mu=1.0, alpha_sigma=1.0, alpha_rbar=0.1)
    with pytest.raises(DivergenceError) as info:
        avgreward.train(CONTINUOUS, agent, 100_000, seed=0)
    assert info.value.result.steps == info.value.step
