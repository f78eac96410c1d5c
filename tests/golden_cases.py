"""The (environment, learner) cases of the golden test: every pair ``train`` accepts.

Each case is ``(name, env_id, agent)``; ``tests/golden.json`` holds the sha256
of each case's ``rewards``, ``rbar`` and every weight array after 2,000 steps
from seed 0.  ``python tests/golden_cases.py`` rewrites that file; do so only
when a change of numbers is meant (a new case, never a redesign).
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np

STEPS = 2_000
SEED = 0
GOLDEN = Path(__file__).with_name("golden.json")


def _agents():
    import avgreward as ag
    from avgreward.agents import EpisodicActorCritic, Reinforce

    return {
        "softmax": ag.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01),
        "softmax_traces": ag.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.05, alpha_rbar=0.01,
                                                lambda_w=0.5, lambda_theta=0.5, entropy=0.01),
        "softmax_actors": ag.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01,
                                                actors=4),
        "gaussian": ag.GaussianActorCritic.pendulum_default(),
        "gaussian_traces": ag.GaussianActorCritic.pendulum_default().replace(lambda_w=0.5,
                                                                            lambda_theta=0.5),
        "reinforce": Reinforce(alpha_theta=2**-12, max_episode_steps=200),
        "reinforce_baseline": Reinforce(alpha_theta=2**-9, alpha_w=2**-6, max_episode_steps=200),
        "reinforce_gaussian": Reinforce(alpha_theta=2**-12, policy="gaussian",
                                        max_episode_steps=200),
        "episodic_ac": EpisodicActorCritic(alpha_w=0.1, alpha_theta=0.05),
        "episodic_ac_traces": EpisodicActorCritic(alpha_w=0.1, alpha_theta=0.05, lambda_w=0.5,
                                                  lambda_theta=0.5),
        "episodic_ac_gaussian": EpisodicActorCritic(alpha_w=0.1, alpha_theta=0.01,
                                                    policy="gaussian"),
        "episodic_ac_actors": EpisodicActorCritic(alpha_w=0.1, alpha_theta=0.05, actors=3),
        "sarsa": ag.DifferentialSarsa(alpha=0.1, beta=0.01),
        "sarsa_3step": ag.DifferentialSarsa(alpha=0.1, beta=0.01, n=3),
        "q_learning": ag.DifferentialQLearning(alpha=0.1, eta=0.5),
        "rvi_q": ag.RVIQLearning(alpha=0.1),
        "rvi_q_max": ag.RVIQLearning(alpha=0.1, reference="max"),
        "rvi_q_mean": ag.RVIQLearning(alpha=0.1, reference="mean"),
        "discounted_q": ag.DiscountedQLearning(alpha=0.1, gamma=0.9),
        "discounted_q_td": ag.DiscountedQLearning(alpha=0.1, gamma=0.9, centering="td",
                                                  beta=0.1),
        "discounted_sarsa_simple": ag.DiscountedSarsa(alpha=0.1, gamma=0.9, centering="simple",
                                                      beta=0.01),
        # prediction: policies over one environment's states (refused on the others)
        "differential_td_loop": ag.DifferentialTD(alpha=0.1, eta=0.5, target=[[0.5, 0.5]] * 9,
                                                  behaviour=[[0.9, 0.1]] + [[0.5, 0.5]] * 8),
        "differential_td_traces_loop": ag.DifferentialTD(alpha=0.1, eta=0.5, lambda_=0.5,
                                                         target=[[0.5, 0.5]] * 9,
                                                         behaviour=[[0.9, 0.1]] + [[0.5, 0.5]] * 8),
        "average_cost_td_access": ag.AverageCostTD(alpha=0.1, beta=0.01,
                                                   target=[[0.3, 0.7]] * 44),
        "average_cost_td_traces_access": ag.AverageCostTD(alpha=0.1, beta=0.01, lambda_=0.5,
                                                          target=[[0.3, 0.7]] * 44),
    }


# Gymnasium environments stepped from Python, beside the package's own.
_STEPPED = ("MountainCar-v0", "Acrobot-v1", "Pendulum-v1")


def cases():
    """Every ``(name, env_id, agent)`` that ``train`` accepts today."""
    import avgreward
    from avgreward import envs

    found = []
    for env_id in (*envs.ENV_IDS, *_STEPPED):
        for kind, agent in _agents().items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    avgreward.train(env_id, agent, steps=2, seed=SEED)
            except ValueError:
                continue  # refused: not a pair train accepts
            found.append((f"{env_id}|{kind}", env_id, agent))
    return found


def digest(result) -> dict:
    """sha256 of the result's rewards, rbar and every weight array (dtype and shape included)."""
    arrays = {"rewards": result.rewards, "rbar": result.rbar}
    arrays.update({f"weights.{k}": v for k, v in sorted(result.weights.items())})
    out = {}
    for name, value in arrays.items():
        value = np.ascontiguousarray(value)
        h = hashlib.sha256(f"{value.dtype.str}{value.shape}".encode())
        h.update(value.tobytes())
        out[name] = h.hexdigest()
    return out


def run_case(env_id, agent) -> dict:
    import avgreward

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return digest(avgreward.train(env_id, agent, steps=STEPS, seed=SEED))


if __name__ == "__main__":
    table = {name: run_case(env_id, agent) for name, env_id, agent in cases()}
    GOLDEN.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"{len(table)} cases written to {GOLDEN}", file=sys.stderr)
