"""Roll out each environment with a uniformly random policy and print its reward rate.

Episodic environments are reset at the end of each episode, in one stream of steps.

  python scripts/random_rollouts.py                 # 20,000 steps of each environment
  python scripts/random_rollouts.py --steps 1000    # a quick check
"""

import argparse

import gymnasium
import numpy as np

from avgreward import envs


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000,
                        help="steps of each environment (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds each environment's reset and the random actions "
                             "(default: %(default)s)")
    return parser.parse_args()


def main():
    args = parse_args()
    for env_id in envs.ENV_IDS:
        env = gymnasium.make(env_id)
        env.reset(seed=args.seed)
        env.action_space.seed(args.seed)
        rewards = np.empty(args.steps)
        for t in range(args.steps):
            _, rewards[t], terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:  # the episodic ones: the next episode, in one stream
                env.reset()
        print(f"{env_id:42s} reward rate of a random policy: {np.mean(rewards):+.4f}")


if __name__ == "__main__":
    main()
