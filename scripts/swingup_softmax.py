"""Pendulum swing-up with the softmax actor-critic: 30 seeds and a learning curve.

The spec's reference setting (Sutton & Barto, section 13.6): 32 tilings of
8 x 8 over (angle, velocity), actor 2^-2, critic 2^1, R-bar 2^-6, one-step
traces.  Prints the reward rate reached and saves a learning curve (mean over
seeds with a 95% confidence band) as a PNG.

    python scripts/swingup_softmax.py            # 30 seeds x 50,000 steps
    python scripts/swingup_softmax.py --help
"""

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import avgreward
from avgreward.plotting import learning_curve, save_figure
from avgreward.stats import mean_confidence_interval


@dataclass
class Args:
    seeds: int = 30
    steps: int = 50_000
    out: str = "results/swingup_softmax"


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=Args.seeds, help="number of seeds (runs)")
    parser.add_argument("--steps", type=int, default=Args.steps, help="steps per run")
    parser.add_argument("--out", default=Args.out, help="directory for the figure")
    return Args(**vars(parser.parse_args()))


def main():
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    agent = avgreward.SoftmaxActorCritic.pendulum_reference()
    print(f"{agent}\ntraining {args.seeds} seeds x {args.steps:,} steps on the swing-up ...")

    started = time.perf_counter()
    rewards = []
    for seed in range(args.seeds):
        result = avgreward.train("avgreward/PendulumSwingUp-v0", agent, args.steps, seed=seed)
        rewards.append(result.rewards)
        print(f"\r  seed {seed + 1}/{args.seeds}", end="", flush=True)
    rewards = np.stack(rewards)
    elapsed = time.perf_counter() - started

    last = rewards[:, -max(1, args.steps // 10):].mean(axis=1, dtype=np.float64)
    mean, low, high = mean_confidence_interval(last)
    print(f"\rreward rate over the last 10% of steps: {mean:.4f} "
          f"(95% CI {low:.4f} .. {high:.4f}; best possible 0) in {elapsed:.1f} s")

    fig = learning_curve(rewards, title="Pendulum swing-up, softmax actor-critic "
                         f"(reference setting, {args.seeds} seeds)")
    print("learning curve:", save_figure(fig, out / "learning_curve.png"))


if __name__ == "__main__":
    main()
