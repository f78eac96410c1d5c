"""Parallel actors (A2C) on the pendulum swing-up: more diverse data per update.

The differential softmax actor-critic with N = 1, 4 and 16 copies of the
swing-up stepping in lockstep (same weights; each update the mean of the N
one-step updates, see avgreward.parallel), the spec's reference step sizes for
every N.  Three views of the same runs: reward against updates (what the
lecture notes claim: averaged updates learn in fewer of them), against
environment steps (what it costs in data), and against wall time on one core
(what it costs here: the copies run one after the other).

Writes, into --out: experiment.json, runs/ (resumable) and parallel_actors.png.

  python scripts/parallel_actors.py                          # 30 seeds x 40,000 updates
  python scripts/parallel_actors.py --seeds 2 --steps 2000   # a quick check
"""

import argparse
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

import avgreward
from avgreward.experiment import run_experiment
from avgreward.plotting import save_figure
from avgreward.stats import mean_confidence_interval

ENV = "avgreward/PendulumSwingUp-v0"
COLORS = ("black", "tab:blue", "tab:red", "tab:green", "tab:purple")


@dataclass
class Args:
    seeds: int = 30
    steps: int = 40_000
    actors: tuple = (1, 4, 16)
    out: str = "results/parallel_actors"
    workers: int | None = None
    new: bool = False


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=Args.seeds,
                        help="runs per N (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=Args.steps,
                        help="updates per run; each takes N environment steps "
                             "(default: %(default)s)")
    parser.add_argument("--actors", type=int, nargs="+", default=list(Args.actors),
                        help="the numbers of parallel actors N (default: %(default)s)")
    parser.add_argument("--out", default=Args.out,
                        help="directory for the runs and figure (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=Args.workers,
                        help="worker processes (default: all cores)")
    parser.add_argument("--new", action="store_true",
                        help="use a fresh directory if --out holds an experiment")
    a = parser.parse_args()
    if len(a.actors) > len(COLORS):
        parser.error(f"--actors: at most {len(COLORS)} values")
    return Args(a.seeds, a.steps, tuple(a.actors), a.out, a.workers, a.new)


def main():
    args = parse_args()
    agents = [avgreward.SoftmaxActorCritic.pendulum_reference(actors=n) for n in args.actors]
    print(f"training {len(agents)} x {args.seeds} seeds x {args.steps:,} updates on {ENV} "
          f"with N = {', '.join(map(str, args.actors))} actors ...")
    try:
        experiment = run_experiment(args.out, ENV, agents, args.seeds, args.steps,
                                    workers=args.workers, new=args.new,
                                    bin_size=max(1, args.steps // 200))
    except ValueError as error:
        raise SystemExit(f"parallel_actors.py: {error}") from None
    out = experiment.path
    print(f"results in {out}/ ({experiment.summary()})")

    fig, axes = plt.subplots(1, 3, figsize=(15.0, 4.6), layout="constrained")
    steps = experiment.bin_steps
    for i, (n, color) in enumerate(zip(args.actors, COLORS)):
        seeds = experiment.finished_seeds(i)
        if not seeds:
            print(f"N = {n}: every run failed")
            continue
        rewards = experiment.rewards(i)
        # Seconds per update: the median over runs (a worker's first run also loads
        # the compiled loop).
        per_update = np.median([experiment.run(i, s).wall_time for s in seeds]) / args.steps
        mean, low, high = mean_confidence_interval(rewards, axis=0)
        for ax, x in zip(axes, (steps, steps * n, steps * per_update)):
            ax.plot(x, mean, color=color, lw=1.6, label=f"N = {n} ({len(seeds)} seeds)")
            ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0)
        early = rewards[:, : max(1, rewards.shape[1] // 10)].mean(axis=1)
        final = experiment.final_performance(i, fraction=0.1)
        print(f"N = {n:2d}: mean reward over the first 10% of updates {early.mean():.3f}, "
              f"last 10% {final.mean():.4f}; {per_update * 1e6:.2f} us per update "
              f"({per_update / n * 1e9:.0f} ns per environment step)")
    titles = ("against updates (the notes' claim)", "against environment steps (the data)",
              "against wall time, one core (the cost here)")
    for ax, title, xlabel in zip(axes, titles, ("update", "environment steps (N x updates)",
                                                "seconds (median run)")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_xscale("log")
        ax.axhline(0.0, color="gray", ls=":", lw=1)  # the best possible: balanced upright
        ax.set_ylim(-1.6, 0.05)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"reward per step, mean of {int(steps[0]):,}-update bins\n"
                       "(mean over the N actors)")
    axes[0].legend(loc="lower right", fontsize=9, title="band: 95% CI of the mean over seeds",
                   title_fontsize=8)
    fig.suptitle(f"Parallel actors (A2C), pendulum swing-up: {len(experiment.finished_seeds(0))}"
                 " seeds, reference step sizes for every N; 0 is the best possible reward")
    print("figure:", save_figure(fig, out / "parallel_actors.png"))


if __name__ == "__main__":
    main()
