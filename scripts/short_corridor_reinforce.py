"""Sutton & Barto's Figure 13.1: REINFORCE on the short corridor with switched actions.

REINFORCE (section 13.3, gamma = 1) with the book's features, x(s, right) =
(1, 0) and x(s, left) = (0, 1) (every state looks the same to the agent), so
the policy is one probability p of going right.  As in the book: the policy
starts at p = 0.05 (theta = (-1.47, 1.47) for right and left), three step
sizes 2^-12, 2^-13, 2^-14, 100 runs of 1,000 episodes each, and the total
reward per episode averaged over the runs; the exact analysis of the task
gives the best a policy of this form can do, v*(start) = -11.66 at
p = 2 - sqrt(2).  A second panel is Example 13.1's picture: the exact value
of the start state against p.

Each run is the fused loop on `avgreward/ShortCorridor-v0` with
`avgreward.agents.Reinforce`, through the experiment runner
(`avgreward.episodic_runs.run_episodes`): runs of 100 steps per episode, and
those that had not finished their episodes run again four times as long (the same
run, longer), so that every run gives its first 1,000 episodes (every step
pays -1, so an episode's total reward is minus its length).

What the book does not show: with 2^-12 some runs overshoot to a policy
near "always right" (or "always left"), under which an episode never ends
(right in state 1 leads back to 0).  The reproduction cuts episodes at
--max-episode-steps (1,000 by default; an episode cut there counts -1,000),
says how many runs were trapped, and keeps them in the mean: measured, 8 of
100 runs at 2^-12, none at 2^-13 and 2^-14.

Writes, into --out: the runs (experiment.json, runs/, and longer/ for the
longer budgets; rerunning resumes or reuses them) and
short_corridor_reinforce.png (the learning curves with 95% confidence bands,
and v(start) against p).

  python scripts/short_corridor_reinforce.py                        # the book: 100 x 1,000
  python scripts/short_corridor_reinforce.py --seeds 3 --episodes 50  # a quick check
"""

import argparse
import math
import time
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

from avgreward import exact
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
    exponents: tuple = (-12, -13, -14)
    max_episode_steps: int = 1000
    out: str = "results/short_corridor_reinforce"
    workers: int | None = None
    new: bool = False


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=Args.seeds,
                        help="runs per step size (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=Args.episodes,
                        help="episodes per run (default: %(default)s)")
    parser.add_argument("--exponents", type=int, nargs="+", default=list(Args.exponents),
                        help="step sizes alpha = 2^E, one curve each (default: %(default)s)")
    parser.add_argument("--max-episode-steps", type=int, default=Args.max_episode_steps,
                        help="cut an episode after this many steps (default: %(default)s; a "
                             "trapped policy's episodes never end)")
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
    return Args(args.seeds, args.episodes, tuple(args.exponents), args.max_episode_steps,
                args.out, args.workers, args.new)


def main():
    args = parse_args()
    model = short_corridor.corridor_model()
    best_p = 2 - math.sqrt(2)
    best = short_corridor.corridor_start_value(best_p)
    print(f"exact: v(start) = (2p - 4) / (p (1 - p)), best {best:.3f} at p = {best_p:.3f}; "
          f"at the start (p = 0.05) {short_corridor.corridor_start_value(0.05):.1f}")

    started = time.perf_counter()
    agents = [Reinforce(alpha_theta=2.0**e, initial_preferences=BOOK_START,
                        max_episode_steps=args.max_episode_steps) for e in args.exponents]
    try:
        runs = run_episodes(args.out, ENV, agents, args.seeds, args.episodes,
                            workers=args.workers, new=args.new)
    except ValueError as error:
        raise SystemExit(f"short_corridor_reinforce.py: {error}") from None
    out = runs.directories[0]
    print(f"results in {out}/ (runs of {', '.join(f'{b:,}' for b in sorted(set(runs.steps.flat)))}"
          " steps: each run as long as its first episodes took)")
    curves = {e: runs.returns[i] for i, e in enumerate(args.exponents)}
    trapped = {e: int(np.sum(runs.cut[i] > 0)) for i, e in enumerate(args.exponents)}
    for e in args.exponents:
        last = curves[e][:, -max(1, args.episodes // 10):].mean(axis=1)
        mean, low, high = mean_confidence_interval(last)
        median = float(np.median(last))
        print(f"alpha = 2^{e}: total reward per episode over the last 10% of episodes "
              f"{float(mean):.2f} (95% CI {float(low):.2f} .. {float(high):.2f}), median "
              f"{median:.2f}, over {args.seeds} runs; {trapped[e]} run(s) had episodes cut "
              f"at {args.max_episode_steps:,} steps")
    print(f"{len(args.exponents)} x {args.seeds} runs x {args.episodes:,} episodes in "
          f"{time.perf_counter() - started:.1f} s")

    fig, (ax, ax_p) = plt.subplots(1, 2, figsize=(11.5, 4.4), layout="constrained",
                                   gridspec_kw={"width_ratios": [1.6, 1]})
    episodes = np.arange(1, args.episodes + 1)
    for e, color in zip(args.exponents, ("tab:red", "tab:blue", "tab:green", "tab:purple")):
        mean, low, high = mean_confidence_interval(curves[e], axis=0)
        note = f" ({trapped[e]} of {args.seeds} runs trapped)" if trapped[e] else ""
        ax.plot(episodes, mean, color=color, lw=1.4, label=f"$\\alpha = 2^{{{e}}}$" + note)
        ax.fill_between(episodes, low, high, color=color, alpha=0.2, lw=0)
        if 0 < trapped[e] < args.seeds:
            free = curves[e][curves[e].min(axis=1) > -args.max_episode_steps]
            ax.plot(episodes, free.mean(axis=0), color=color, lw=1.0, ls=":",
                    label=f"$\\alpha = 2^{{{e}}}$, the {len(free)} runs never trapped")
    ax.axhline(best, color="gray", ls="--", lw=1.2, label=f"$v_*(s_0)$ = {best:.2f} (exact)")
    ax.set_ylim(-90, -10)
    ax.set_xlabel("episode")
    ax.set_ylabel(f"total reward per episode\n(mean over {args.seeds} runs)")
    ax.set_title("REINFORCE on the short corridor (Sutton & Barto, Figure 13.1)")
    ax.legend(loc="lower right", fontsize=9, title="band: 95% CI of the mean",
              title_fontsize=8)
    ax.grid(alpha=0.3)

    ps = np.linspace(0.02, 0.98, 400)
    values = [exact.evaluate_episodic(model, np.tile([1 - p, p], (model.n_states, 1))).J
              for p in ps]
    ax_p.plot(ps, values, color="black", lw=1.5)
    ax_p.plot([best_p], [best], "o", color="tab:red")
    ax_p.annotate(f"best: p = {best_p:.3f}, v = {best:.2f}", (best_p, best),
                  textcoords="offset points", xytext=(-60, 12), fontsize=9)
    ax_p.set_ylim(-100, 0)
    ax_p.set_xlabel("probability of right action, p")
    ax_p.set_ylabel("$v_\\pi(s_0)$, exact")
    ax_p.set_title("Example 13.1: value of the start state")
    ax_p.grid(alpha=0.3)
    print("figure:", save_figure(fig, out / "short_corridor_reinforce.png"))


if __name__ == "__main__":
    main()
