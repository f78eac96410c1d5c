"""Sutton & Barto's Figure 13.2: REINFORCE with a baseline learns the short corridor faster.

REINFORCE (section 13.3) with step size 2^-13 against REINFORCE with baseline
(section 13.4: a learned state value v(s, w) subtracted from the return) with
actor step size 2^-9 and baseline step size 2^-6, on the short corridor with
switched actions from the book's start (right with probability 0.05), 100 runs
of 1,000 episodes each: the total reward per episode averaged over the runs,
with 95% confidence bands, against the exact best -11.66.  The state value is
one number (every state looks alike), so the baseline is the running value of
the start state.

Runs through the experiment runner (avgreward.episodic_runs.run_episodes:
each run as long as its first episodes take), saved and resumable.

Writes, into --out: the runs (experiment.json, runs/, longer/) and
short_corridor_baseline.png.

  python scripts/short_corridor_baseline.py                          # the book: 100 x 1,000
  python scripts/short_corridor_baseline.py --seeds 3 --episodes 50  # a quick check
"""

import argparse
import math
import time
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

from avgreward.agents import Reinforce
from avgreward.episodic_runs import run_episodes
from avgreward.plotting import save_figure
from avgreward.stats import mean_confidence_interval
from avgreward.envs import short_corridor

ENV = "avgreward/ShortCorridor-v0"
BOOK_START = (1.47, -1.47)  # preferences of (left, right): right with probability 0.05


@dataclass
class Args:
    seeds: int = 100
    episodes: int = 1000
    max_episode_steps: int = 1000
    out: str = "results/short_corridor_baseline"
    workers: int | None = None
    new: bool = False


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=Args.seeds,
                        help="runs per method (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=Args.episodes,
                        help="episodes per run (default: %(default)s)")
    parser.add_argument("--max-episode-steps", type=int, default=Args.max_episode_steps,
                        help="cut an episode after this many steps (default: %(default)s; from "
                             "p = 0.05 an early episode now and then reaches it)")
    parser.add_argument("--out", default=Args.out,
                        help="directory for the runs (resumable) and the figure "
                             "(default: %(default)s)")
    parser.add_argument("--workers", type=int, default=Args.workers,
                        help="worker processes (default: all cores)")
    parser.add_argument("--new", action="store_true",
                        help="use a fresh directory if --out holds an experiment")
    args = parser.parse_args()
    if args.seeds < 1 or args.episodes < 1 or args.max_episode_steps < 1:
        parser.error("--seeds, --episodes and --max-episode-steps must be at least 1")
    return Args(args.seeds, args.episodes, args.max_episode_steps, args.out, args.workers,
                args.new)


def main():
    args = parse_args()
    best = short_corridor.corridor_start_value(2 - math.sqrt(2))
    methods = {
        "REINFORCE, $\\alpha = 2^{-13}$": Reinforce(
            alpha_theta=2**-13, initial_preferences=BOOK_START,
            max_episode_steps=args.max_episode_steps),
        "REINFORCE with baseline, $\\alpha^\\theta = 2^{-9}$, $\\alpha^w = 2^{-6}$": Reinforce(
            alpha_theta=2**-9, alpha_w=2**-6, initial_preferences=BOOK_START,
            max_episode_steps=args.max_episode_steps),
    }
    started = time.perf_counter()
    try:
        runs = run_episodes(args.out, ENV, list(methods.values()), args.seeds, args.episodes,
                            workers=args.workers, new=args.new)
    except ValueError as error:
        raise SystemExit(f"short_corridor_baseline.py: {error}") from None
    out = runs.directories[0]
    print(f"results in {out}/")
    curves = {}
    for i, label in enumerate(methods):
        curves[label] = runs.returns[i]
        trapped = int(np.sum(runs.cut[i] > 0))
        first = curves[label][:, :max(1, args.episodes // 10)].mean(axis=1)
        last = curves[label][:, -max(1, args.episodes // 10):].mean(axis=1)
        name = label.replace("$", "").replace("\\", "")
        print(f"{name}: mean total reward per episode, first 10% of episodes "
              f"{float(first.mean()):.2f}, last 10% {float(last.mean()):.2f} "
              f"({args.seeds} runs; {trapped} with episodes cut)")
    print(f"{len(methods)} x {args.seeds} runs x {args.episodes:,} episodes in "
          f"{time.perf_counter() - started:.1f} s; best possible {best:.2f}")

    fig, ax = plt.subplots(figsize=(7.5, 4.4), layout="constrained")
    episodes = np.arange(1, args.episodes + 1)
    for (label, values), color in zip(curves.items(), ("tab:red", "tab:green")):
        mean, low, high = mean_confidence_interval(values, axis=0)
        ax.plot(episodes, mean, color=color, lw=1.3, label=label)
        ax.fill_between(episodes, low, high, color=color, alpha=0.2, lw=0)
    ax.axhline(best, color="gray", ls="--", lw=1.2, label=f"$v_*(s_0)$ = {best:.2f} (exact)")
    ax.set_ylim(-90, -10)
    ax.set_xlabel("episode")
    ax.set_ylabel(f"total reward per episode\n(mean over {args.seeds} runs)")
    ax.set_title("REINFORCE with and without baseline (Sutton & Barto, Figure 13.2)")
    ax.legend(loc="lower right", fontsize=9, title="band: 95% CI of the mean",
              title_fontsize=8)
    ax.grid(alpha=0.3)
    print("figure:", save_figure(fig, out / "short_corridor_baseline.png"))


if __name__ == "__main__":
    main()
