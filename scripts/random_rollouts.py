"""Roll out each environment with a uniformly random policy and print its reward rate."""

import gymnasium
import numpy as np

import envs

for env_id in envs.ENV_IDS:
    env = gymnasium.make(env_id)
    env.reset(seed=0)
    rewards = [env.step(env.action_space.sample())[1] for _ in range(20_000)]
    print(f"{env_id:42s} reward rate of a random policy: {np.mean(rewards):+.4f}")
