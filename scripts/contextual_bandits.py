"""Regret on the linear contextual bandit, against its exact optimum; SquareCB's growth.

avgreward/LinearContextualBandit-v0 (20 contexts on the simplex of R^5, 5 arms,
Bernoulli rewards with means <theta_a, x_c>) is a continuing task whose
average reward is the expected reward per pull.  Each learner's cumulative
regret is summed from the *expected* regret of each pull, max_b mu(c, b) -
mu(c, a) (the instance's exact table), not from the noisy rewards: the only
noise left is that of the contexts and the learner's own choices.  Mean over
--seeds runs with 95% Student-t intervals.  Uniform play's regret is exact:
the mean gap times t.

SquareCB (Foster & Rakhlin 2020) with its Theorem 1 learning rate gamma for
each horizon T is run to each of --horizons: its final regret against T on
log-log axes beside the shape sqrt(K T log T), scaled to meet the last point,
and the slope of the fitted line.

Writes, into --out: regret.png (cumulative regret against steps) and
squarecb_growth.png (SquareCB's regret against the horizon, log-log).

  python scripts/contextual_bandits.py              # 30 seeds x 200,000 steps
  python scripts/contextual_bandits.py --quick      # a quick check
"""

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

import avgreward
from avgreward.envs import contextual_bandit as cb
from avgreward.learners.contextual import (
    EpsilonGreedyLeastSquares,
    LinUCB,
    SoftmaxBandit,
    SquareCB,
    squarecb_gamma,
)
from avgreward.plotting import save_figure
from avgreward.stats import mean_confidence_interval

ENV = "avgreward/LinearContextualBandit-v0"


@dataclass
class Args:
    seeds: int = 30
    steps: int = 200_000
    horizons: tuple = (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000)
    epsilon: float = 0.1
    out: str = "results/contextual_bandits"
    quick: bool = False


QUICK = dict(seeds=3, steps=5_000, horizons=(500, 2_000, 5_000))


def parse_args(argv=None) -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=Args.seeds,
                        help="runs per learner and horizon (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=Args.steps,
                        help="steps of the regret curves (default: %(default)s)")
    parser.add_argument("--horizons", type=int, nargs="+", default=Args.horizons,
                        help="SquareCB's horizons T, each with its own gamma "
                             "(default: %(default)s)")
    parser.add_argument("--epsilon", type=float, default=Args.epsilon,
                        help="epsilon-greedy's fixed exploration rate (default: %(default)s)")
    parser.add_argument("--out", default=Args.out,
                        help="directory for the figures (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a quick check: {QUICK} (overrides those settings)")
    args = vars(parser.parse_args(argv))
    if args["quick"]:
        args.update(QUICK)
    args["horizons"] = tuple(sorted(args["horizons"]))
    for name in ("seeds", "steps"):
        if args[name] < 1:
            parser.error(f"--{name} must be >= 1, got {args[name]}")
    if args["seeds"] < 2:
        parser.error(f"--seeds must be >= 2 for a confidence interval, got {args['seeds']}")
    if args["horizons"][0] < 2:
        parser.error(f"--horizons must all be >= 2, got {args['horizons']}")
    if not 0.0 <= args["epsilon"] <= 1.0:
        parser.error(f"--epsilon must lie in [0, 1], got {args['epsilon']}")
    return Args(**args)


# Points of the regret curves: the runs' bins, so that a run keeps this many numbers of regret
# (and of rewards) however long it is.
CURVE_POINTS = 1_000


def cumulative_regret(agent, steps, seeds, bin_size):
    """The bins' last steps and, per seed, the cumulative expected regret there.

    The runs keep their regret per bin of ``bin_size`` steps (the rewards'
    bins), not per step: memory does not grow with ``steps``.
    """
    rows = []
    for seed in range(seeds):
        result = avgreward.train(ENV, agent, steps, seed=seed, bin_size=bin_size)
        rows.append(np.cumsum(result.weights["regret"]))
    return result.info["bin_steps"], np.array(rows)


def regret_figure(args, out, instance):
    gaps = cb.regret_gaps(instance)
    bin_size = max(1, -(-args.steps // CURVE_POINTS))
    learners = [
        (f"epsilon-greedy least squares, epsilon {args.epsilon:g}",
         EpsilonGreedyLeastSquares(epsilon=args.epsilon), "tab:blue"),
        ("LinUCB (Li et al. 2010), alpha = 1 + sqrt(ln(2/0.05)/2)", LinUCB(), "tab:green"),
        ("SquareCB (Foster & Rakhlin 2020), Theorem 1 gamma", SquareCB(), "tab:red"),
        ("softmax policy gradient (gradient bandit)", SoftmaxBandit(), "tab:purple"),
    ]
    fig, ax = plt.subplots(figsize=(8.0, 5.0), layout="constrained")
    print(f"optimal rate r* = {cb.optimal_rate(instance):.6f} (exact); "
          f"uniform regret per step {gaps.mean():.6f}")
    for name, agent, color in learners:
        at, rows = cumulative_regret(agent, args.steps, args.seeds, bin_size)
        mean, low, high = mean_confidence_interval(rows)
        ax.plot(at, mean, color=color, label=name)
        ax.fill_between(at, low, high, color=color, alpha=0.25, lw=0)
        print(f"{name}: regret after {args.steps:,} steps {mean[-1]:.1f} "
              f"[{low[-1]:.1f}, {high[-1]:.1f}] ({args.seeds} seeds, 95% CI)")
    ax.plot(at, gaps.mean() * at, color="0.4", ls="--",
            label=f"uniform play (exact: {gaps.mean():.4f} per step)")
    ax.set_xlabel("steps t")
    ax.set_ylabel("cumulative expected regret  sum (mu*(x) - mu(x, a))")
    ax.set_title(f"{ENV}: mean of {args.seeds} seeds, bands 95% t-intervals of the mean")
    ax.legend(fontsize=8, loc="upper left")
    path = save_figure(fig, out / "regret.png")
    plt.close(fig)
    print(f"figure: {path}")


def growth_figure(args, out, instance):
    K, d = instance.arms, instance.dimension
    T = np.array(args.horizons, dtype=float)
    means, lows, highs = [], [], []
    for horizon in args.horizons:
        _, rows = cumulative_regret(SquareCB(), horizon, args.seeds, horizon)  # one bin
        mean, low, high = mean_confidence_interval(rows[:, -1])
        means.append(float(mean))
        lows.append(float(low))
        highs.append(float(high))
        print(f"SquareCB, T = {horizon:,}: gamma {squarecb_gamma(K, d, horizon):.2f}, "
              f"regret {float(mean):.1f} [{float(low):.1f}, {float(high):.1f}]")
    means = np.array(means)
    slope = np.polyfit(np.log(T), np.log(means), 1)[0] if len(T) > 1 else float("nan")
    shape = np.sqrt(K * T * np.log(T))
    fig, ax = plt.subplots(figsize=(7.0, 5.0), layout="constrained")
    ax.errorbar(T, means, yerr=[means - np.array(lows), np.array(highs) - means], fmt="o-",
                color="tab:red", capsize=3,
                label=f"SquareCB, regret at T ({args.seeds} seeds, 95% CI); slope {slope:.2f}")
    ax.plot(T, shape * means[-1] / shape[-1], color="k", ls="--",
            label="sqrt(K T log T), scaled to the last point")
    ax.plot(T, cb.regret_gaps(instance).mean() * T, color="0.5", ls=":",
            label="uniform play (linear)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("horizon T (steps; gamma set for T)")
    ax.set_ylabel("cumulative expected regret at T")
    ax.set_title("SquareCB's regret growth")
    ax.legend(fontsize=8)
    path = save_figure(fig, out / "squarecb_growth.png")
    plt.close(fig)
    local = np.diff(np.log(means)) / np.diff(np.log(T))
    shape_local = np.diff(np.log(shape)) / np.diff(np.log(T))
    print("SquareCB: local log-log slopes " + ", ".join(f"{x:.3f}" for x in local)
          + "; sqrt(K T log T)'s " + ", ".join(f"{x:.3f}" for x in shape_local))
    print(f"SquareCB: fitted log-log slope of regret against T {slope:.3f}")
    print(f"figure: {path}")


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    instance = cb.default_instance()
    regret_figure(args, out, instance)
    growth_figure(args, out, instance)
    print(f"results in {out}/")


if __name__ == "__main__":
    main()
