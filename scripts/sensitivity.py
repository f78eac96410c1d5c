"""Parameter sensitivity of the softmax actor-critic on the pendulum swing-up.

A grid of actor step sizes 2^k (x axis) and critic step sizes (one line
each), R-bar at 2^-6, every setting over the same seeds: the standard
Sutton & Barto parameter-study figure, with 95% confidence bars over
seeds.  Two panels: the mean reward over the whole run (how fast it
learns) and over its last 10% (what it reaches).  Runs that diverge are
recorded as failed and marked on the figure.

Writes, into --out: experiment.json, runs/ (the runs; run again to resume)
and sensitivity.png; prints the table of mean rewards and the best setting.

  python scripts/sensitivity.py                     # 9 x 4 settings, 30 seeds x 20,000 steps
  python scripts/sensitivity.py --seeds 2 --steps 2000 --actor -2 0 --critic 1   # quick
"""

import argparse
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

import avgreward
from avgreward.experiment import run_experiment
from avgreward.plotting import save_figure, sensitivity

ENV = "avgreward/PendulumSwingUp-v0"


@dataclass
class Args:
    seeds: int = 30
    steps: int = 20_000
    actor: list[int] = field(default_factory=lambda: list(range(-6, 3)))
    critic: list[int] = field(default_factory=lambda: [-1, 0, 1, 2])
    alpha_rbar: float = 2.0**-6
    out: str = "results/sensitivity"
    workers: int | None = None
    new: bool = False


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Args()
    parser.add_argument("--seeds", type=int, default=defaults.seeds,
                        help="number of seeds (runs) per setting (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=defaults.steps,
                        help="steps per run (default: %(default)s)")
    parser.add_argument("--actor", type=int, nargs="+", default=defaults.actor, metavar="K",
                        help="exponents k of the actor step sizes 2^k (default: %(default)s)")
    parser.add_argument("--critic", type=int, nargs="+", default=defaults.critic, metavar="K",
                        help="exponents k of the critic step sizes 2^k (default: %(default)s)")
    parser.add_argument("--alpha-rbar", type=float, default=defaults.alpha_rbar,
                        help="step size of the reward-rate estimate R-bar (default: %(default)s)")
    parser.add_argument("--out", default=defaults.out,
                        help="directory for the runs and figure (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=defaults.workers,
                        help="worker processes (default: all cores)")
    parser.add_argument("--new", action="store_true",
                        help="use a fresh directory if --out holds an experiment")
    return Args(**vars(parser.parse_args()))


def main():
    args = parse_args()
    agents = [
        avgreward.SoftmaxActorCritic(alpha_w=2.0**c, alpha_theta=2.0**a,
                                     alpha_rbar=args.alpha_rbar)
        for c in args.critic for a in args.actor
    ]
    print(f"{len(agents)} settings x {args.seeds} seeds x {args.steps:,} steps on {ENV} ...")
    experiment = run_experiment(args.out, ENV, agents, args.seeds, args.steps,
                                workers=args.workers, new=args.new)
    out = experiment.path
    print(f"results in {out}/ ({experiment.summary()})")

    # Table: mean reward over the whole run, rows critic, columns actor step size.
    whole = [experiment.final_performance(i, fraction=1.0) for i in range(len(agents))]
    means = np.array([p.mean() if p.size else np.nan for p in whole])
    print("\nmean reward over the whole run (rows: critic 2^k, columns: actor 2^k)")
    print("        " + "".join(f"{a:>8d}" for a in args.actor))
    for r, c in enumerate(args.critic):
        row = means[r * len(args.actor):(r + 1) * len(args.actor)]
        print(f"{c:>8d}" + "".join("  failed" if np.isnan(v) else f"{v:8.3f}" for v in row))
    if np.any(np.isfinite(means)):
        best = int(np.nanargmax(means))
        print(f"best: {experiment.label(best)} ({means[best]:.3f})")

    fig, axes = plt.subplots(1, 2, figsize=(12.0, 4.6), layout="constrained")
    sensitivity(experiment, x="alpha_theta", lines="alpha_w", fraction=1.0, ax=axes[0],
                title=f"Learning speed: mean reward over {args.steps:,} steps", legend=False)
    sensitivity(experiment, x="alpha_theta", lines="alpha_w", fraction=0.1, ax=axes[1],
                title="Level reached: mean reward over the last 10% of steps", legend=False)
    for ax in axes:
        ax.set_xlabel("actor step size $\\alpha_\\theta$ (divided by 32 tilings inside)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center",
               title="critic step size", fontsize=9, title_fontsize=9)
    fig.suptitle(f"Softmax actor-critic on the pendulum swing-up: parameter sensitivity "
                 f"({args.seeds} seeds, 95% CI)")
    print("\nfigure:", save_figure(fig, out / "sensitivity.png"))


if __name__ == "__main__":
    main()
