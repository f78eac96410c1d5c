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
    by_prefix = avgreward.train("avgreward.envs:avgreward/LoopMDP-v0", agent, 500, seed=0)
    by_instance = avgreward.train(gymnasium.make("avgreward.envs:avgreward/LoopMDP-v0"), agent,
                                  500, seed=0)
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


# ---------------------------------------------------------------------------
# Settings are real numbers; mean_reward's window holds a step


def _every_agent(**changes):
    """One valid instance of each agent class, with ``changes`` where the class has them."""
    from dataclasses import fields

    from avgreward.agents import (DifferentialQLearning, DifferentialSarsa,
                                  DiscountedQLearning, DiscountedSarsa, EpisodicActorCritic,
                                  Reinforce)

    base = [SoftmaxActorCritic.pendulum_reference(), GaussianActorCritic.pendulum_default(),
            Reinforce(alpha_theta=0.01, max_episode_steps=200, alpha_w=0.1),
            Reinforce(alpha_theta=0.01, policy="gaussian", alpha_sigma=0.01),
            EpisodicActorCritic(alpha_w=0.1, alpha_theta=0.1),
            DifferentialSarsa(alpha=0.1, beta=0.01), DifferentialQLearning(alpha=0.1, eta=0.5),
            DiscountedSarsa(alpha=0.1, gamma=0.9, centering="td", beta=0.1),
            DiscountedQLearning(alpha=0.1, gamma=0.9)]
    return [a for a in base if set(changes) <= {f.name for f in fields(a)}]


_NUMERIC = ["alpha_w", "alpha_theta", "alpha_rbar", "alpha_mu", "alpha_sigma", "tau",
            "lambda_w", "lambda_theta", "entropy", "sigma_min", "gamma", "epsilon", "alpha",
            "beta", "eta"]
_WHOLE = ["actors", "n", "max_episode_steps"]


@pytest.mark.parametrize("name", _NUMERIC + _WHOLE)
@pytest.mark.parametrize("bad", ["1", "0.5", True, False, None, [0.5], 1j])
def test_settings_refuse_strings_bools_and_other_non_numbers(name, bad):
    from dataclasses import fields

    agents = _every_agent(**{name: 1})
    assert agents, name
    for agent in agents:
        if bad is None and "None" in str({f.name: f.type for f in fields(agent)}[name]):
            continue  # None is an optional setting's "left out" (Reinforce's alpha_w, ...)
        with pytest.raises(ValueError, match=f"^{name} must be"):
            agent.replace(**{name: bad})


def test_a_string_step_size_is_refused_naming_it():
    with pytest.raises(ValueError, match="alpha_w must be a finite number >= 0, got '1'"):
        SoftmaxActorCritic("1", 1, 1)


@pytest.mark.parametrize("name", _WHOLE)
@pytest.mark.parametrize("bad", [2.0, 2.5, np.float64(2.0)])
def test_whole_number_settings_refuse_floats(name, bad):
    for agent in _every_agent(**{name: 1}):
        with pytest.raises(ValueError, match=f"^{name} must be an integer"):
            agent.replace(**{name: bad})


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers():
    import json

    from avgreward import agent_from_dict
    from avgreward.agents import DifferentialSarsa, Reinforce

    softmax = SoftmaxActorCritic(alpha_w=np.float64(0.5), alpha_theta=np.float32(0.25),
                                 alpha_rbar=np.int64(0), tau=np.float64(2.0),
                                 lambda_w=np.float64(0.0), actors=np.int64(2))
    assert softmax == SoftmaxActorCritic(alpha_w=0.5, alpha_theta=0.25, alpha_rbar=0.0,
                                         tau=2.0, actors=2)
    assert type(softmax.alpha_w) is float and type(softmax.actors) is int
    sarsa = DifferentialSarsa(alpha=np.float64(0.1), beta=0.01, n=np.int64(4))
    reinforce = Reinforce(alpha_theta=1, max_episode_steps=np.int64(200))
    assert type(sarsa.n) is int and type(reinforce.max_episode_steps) is int
    for agent in (softmax, sarsa, reinforce, *_every_agent()):
        # JSON numbers (int and float) read back as the same settings.
        assert agent_from_dict(json.loads(json.dumps(agent.to_dict()))) == agent
    # Integers are real numbers: JSON's 1 for a step size.
    assert SoftmaxActorCritic(1, 1, 1).alpha_w == 1.0


def test_mean_reward_of_a_window_past_the_run_is_a_value_error():
    loop = "avgreward/LoopMDP-v0"
    agent = SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    result = avgreward.train(loop, agent, 100, seed=0)
    binned = avgreward.train(loop, agent, 100, seed=0, bin_size=10)
    assert result.mean_reward(99) == pytest.approx(float(result.rewards[99]))
    for run in (result, binned):
        assert run.mean_reward(90) == pytest.approx(float(np.mean(result.rewards[90:])))
        assert run.mean_reward(-10) == run.mean_reward(90)
        for start in (1000, 100):
            with pytest.raises(ValueError, match=rf"start={start}\).*100 steps"):
                run.mean_reward(start)
        with pytest.raises(ValueError, match=r"start=50, stop=50\).*100 steps"):
            run.mean_reward(50, 50)
    with np.errstate(all="raise"):  # no numpy warning on the way either
        with pytest.raises(ValueError, match="1000"):
            result.mean_reward(1000)
