"""The fused jitted loop against the plain-Python reference of the textbook box."""

import numpy as np
import pytest
from helpers import actor_weights

import avgreward
from avgreward import GaussianActorCritic, SoftmaxActorCritic
from avgreward.reference import reference_train

STEPS = 2000

CASES = {
    "pendulum-softmax-lambda0": (
        "avgreward/PendulumSwingUp-v0", SoftmaxActorCritic.pendulum_reference()),
    "pendulum-softmax-traces": (
        "avgreward/PendulumSwingUp-v0",
        SoftmaxActorCritic.pendulum_reference(lambda_w=0.5, lambda_theta=0.7, tau=0.5,
                                              entropy=0.1)),
    "continuous-gaussian-lambda0": (
        "avgreward/PendulumSwingUpContinuous-v0", GaussianActorCritic.pendulum_default()),
    "continuous-gaussian-traces": (
        "avgreward/PendulumSwingUpContinuous-v0",
        GaussianActorCritic(alpha_w=1.0, alpha_mu=2**-4, alpha_sigma=2**-6, alpha_rbar=2**-6,
                            lambda_w=0.5, lambda_theta=0.5, sigma_min=0.1, entropy=0.01)),
    "loop-softmax-lambda0": (
        "avgreward/LoopMDP-v0", SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)),
    "loop-softmax-traces": (
        "avgreward/LoopMDP-v0",
        SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01, lambda_w=0.8,
                           lambda_theta=0.3, tau=2.0)),
    "gridworld-softmax-lambda0": (
        "avgreward/AliasedGridworld-v0",
        SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)),
    "gridworld-softmax-traces": (
        "avgreward/AliasedGridworld-v0",
        SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01, lambda_w=0.9,
                           lambda_theta=0.9, entropy=0.05)),
    "access-control-softmax": (
        "avgreward/AccessControl-v0",
        SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01, entropy=0.01)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.slow
def test_fused_loop_equals_reference(name):
    env_id, agent = CASES[name]
    # An odd chunk size makes the loop cross chunk boundaries mid-run.
    result = avgreward.train(env_id, agent, STEPS, seed=3, record_actions=True, rbar_every=1,
                             chunk_steps=777)
    ref = reference_train(env_id, agent, STEPS, seed=3)

    np.testing.assert_allclose(result.rewards, ref["rewards"].astype(np.float32), rtol=0,
                               atol=1e-6)  # rewards are stored as float32
    np.testing.assert_allclose(result.actions, ref["actions"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.rbar, ref["rbar"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.weights["w"], ref["w"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(actor_weights(result), ref["theta"], rtol=0, atol=1e-9)
    assert result.final_rbar == pytest.approx(ref["rbar"][-1], abs=1e-9)
    # The run must have learned something, or equality would prove little.
    assert np.abs(result.weights["w"]).max() > 1e-3
    assert np.abs(actor_weights(result)).max() > 1e-3


def test_reference_agrees_with_full_precision_rewards():
    """float32 storage is the only loss: the rewards' float64 values agree too."""
    env_id, agent = CASES["pendulum-softmax-lambda0"]
    result = avgreward.train(env_id, agent, 500, seed=1)
    ref = reference_train(env_id, agent, 500, seed=1)
    assert np.array_equal(result.rewards, ref["rewards"].astype(np.float32))


def test_binned_rewards_are_the_references_rewards_binned():
    """The chunk buffer of a binned run holds the same rewards, whatever the chunk."""
    env_id, agent = CASES["gridworld-softmax-traces"]
    result = avgreward.train(env_id, agent, STEPS, seed=3, bin_size=64, chunk_steps=777)
    rewards = reference_train(env_id, agent, STEPS, seed=3)["rewards"].astype(np.float32)
    expected = [np.mean(rewards[i:i + 64], dtype=np.float64) for i in range(0, STEPS, 64)]
    np.testing.assert_allclose(result.rewards, expected, rtol=0, atol=1e-12)
