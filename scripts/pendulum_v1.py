"""Gymnasium's Pendulum-v1: the squashed Gaussian actor-critic against the random policy.

Pendulum-v1 is not one of this package's environments: it runs in the
stepwise path (avgreward.stepwise), the env stepped from Python, seen as one
continuing stream (each 200-step episode end is a reset inside it).  Its
torque is bounded, Box([-2], [2]), so the Gaussian actor is squashed
(GaussianActorCritic's default squash=None): u ~ N(mu, sigma^2) and the env
gets 2 tanh(u).  Features: the default tile coder over the observation
(cos, sin, angular velocity), 16 tilings of 8 x 8 x 8 tiles.

Settings (chosen by a sweep of 100,000-step runs, then checked over
500,000): critic 2^-1, mean 2^-10, sigma 2^-10, R-bar 2^-8, the mean's
gradient scaled by sigma^2.  Larger actor step sizes learn faster but stop
improving by 100,000 steps and then wander; these still improve up to
500,000.  Prints, per seed, the mean reward over steps 90k-100k and over
the last 10k, against the random policy's -6.14 per step, and writes, into
--out:

  experiment.json, runs/     the runs (run again to resume or reuse them)
  pendulum_v1.png            reward per step, mean over seeds, 95% band; random policy

  python scripts/pendulum_v1.py                          # 5 seeds x 500,000 steps
  python scripts/pendulum_v1.py --seeds 2 --steps 5000   # a quick check
"""

import argparse
import time
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

import avgreward
from avgreward.experiment import run_experiment
from avgreward.plotting import learning_curve, save_figure

ENV = "Pendulum-v1"
# Uniform random torques in [-2, 2] (action_space.sample()): mean reward per step
# over 5 seeds x 100,000 steps of this same continuing stream, 200-step episodes from
# gymnasium's random start (-6.08 to -6.21 by seed; 2 tanh(z), the untrained
# squashed policy, gives the same).
RANDOM_RATE = -6.14


@dataclass
class Args:
    seeds: int = 5
    steps: int = 500_000
    alpha_w: float = 2.0**-1
    alpha_mu: float = 2.0**-10
    alpha_sigma: float = 2.0**-10
    alpha_rbar: float = 2.0**-8
    out: str = "results/pendulum_v1"
    workers: int | None = None
    new: bool = False


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=Args.seeds,
                        help="number of seeds, one run each (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=Args.steps,
                        help="steps per run (default: %(default)s)")
    parser.add_argument("--alpha-w", type=float, default=Args.alpha_w,
                        help="critic step size (default: %(default)s)")
    parser.add_argument("--alpha-mu", type=float, default=Args.alpha_mu,
                        help="step size of the mean of u (default: %(default)s)")
    parser.add_argument("--alpha-sigma", type=float, default=Args.alpha_sigma,
                        help="step size of log sigma (default: %(default)s)")
    parser.add_argument("--alpha-rbar", type=float, default=Args.alpha_rbar,
                        help="step size of R-bar (default: %(default)s)")
    parser.add_argument("--out", default=Args.out,
                        help="directory for the runs and figure (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=Args.workers,
                        help="worker processes (default: all cores)")
    parser.add_argument("--new", action="store_true",
                        help="use a fresh directory if --out holds an experiment")
    return Args(**vars(parser.parse_args()))


def main():
    args = parse_args()
    agent = avgreward.GaussianActorCritic(
        alpha_w=args.alpha_w, alpha_mu=args.alpha_mu, alpha_sigma=args.alpha_sigma,
        alpha_rbar=args.alpha_rbar, scale_mean_gradient=True,  # squash: automatic, on here
    )
    # 500 bins: at 500,000 steps, bins of 1,000 steps, so the windows below are whole bins.
    bin_size = max(1, args.steps // 500)
    print(f"{agent}\ntraining {args.seeds} seeds x {args.steps:,} steps on {ENV} ...")
    started = time.perf_counter()
    experiment = run_experiment(args.out, ENV, agent, args.seeds, args.steps,
                                workers=args.workers, bin_size=bin_size, new=args.new)
    out = experiment.path
    print(f"results in {out}/ ({experiment.summary()}, {time.perf_counter() - started:.1f} s)")

    rewards, steps = experiment.rewards(0), experiment.bin_steps
    seeds = experiment.finished_seeds(0)
    if not seeds:
        raise SystemExit("every run failed: nothing to plot")
    # Two windows of 2% of the run (10,000 steps of 500,000): the one ending at
    # 20% of the run (90k-100k) and the last (490k-500k).  Learning that holds
    # does not get worse from the first to the second.
    width = max(1, rewards.shape[1] // 50)
    early_end = rewards.shape[1] // 5
    early = rewards[:, early_end - width:early_end].mean(axis=1)
    late = rewards[:, -width:].mean(axis=1)
    early_steps = f"{steps[early_end - width - 1] if early_end > width else 0:,}-" \
                  f"{steps[early_end - 1]:,}"
    late_steps = f"{steps[-width - 1] if rewards.shape[1] > width else 0:,}-{steps[-1]:,}"
    print(f"\nmean reward per step (random policy {RANDOM_RATE}; best possible 0)")
    print(f"{'seed':>4}  {'steps ' + early_steps:>22}  {'steps ' + late_steps:>22}")
    for seed, e, l in zip(seeds, early, late):
        print(f"{seed:>4}  {e:>22.3f}  {l:>22.3f}")
    print(f"{'mean':>4}  {early.mean():>22.3f}  {late.mean():>22.3f}")
    print(f"better than random on every seed: {bool(np.all(late > RANDOM_RATE))}; "
          f"no worse late than early on every seed: {bool(np.all(late >= early))}")

    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    learning_curve(rewards, steps=steps, ax=ax, label="squashed Gaussian actor-critic",
                   title=f"{ENV}, squashed Gaussian actor-critic ({len(seeds)} seeds)")
    ax.axhline(RANDOM_RATE, color="0.4", ls="--", lw=1.2, label="random policy")
    ax.legend(loc="center right")
    print("learning curve:", save_figure(fig, out / "pendulum_v1.png"))


if __name__ == "__main__":
    main()
