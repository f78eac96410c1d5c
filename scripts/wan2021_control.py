"""Wan, Naik & Sutton (2021), access control: Differential Q-learning against RVI Q-learning.

The paper's parameter study on access-control queuing (Sutton & Barto's
Example 10.2; tabular, 44 states x 2 actions): the reward rate during
training against the step size alpha, for

* Differential Q-learning, one line per eta (R-bar's step is eta * alpha);
* RVI Q-learning with f the value of one fixed reference pair, one line per
  reference state (accept, priority 8, 10, 8, ..., 0 free servers: the pairs
  of the public code's access-control sweep);
* RVI Q-learning with f the max, and the mean, of all the values.

The settings are the public code's (abhisheknaik96/average-reward-methods,
config_files/control_AccessControl_*.json): epsilon-greedy behaviour with
epsilon 0.1, 80,000 steps, 30 runs, alpha in {1/640, 1/160, 1/40, 1/10, 2/5},
eta in {1/8, 1/4, 1/2, 1, 2}.  Each point is the mean over runs of one run's
reward per step over the whole training (--last 0.1: over its last tenth),
with a Student-t 95% confidence interval over the runs; the dashed line is
the optimal rate 2.7476 from the model (relative value iteration).  Runs
that diverged are left out of their point and counted in the printout.

Writes, into --out: experiment.json, runs/ (resumable) and wan2021_control.png.

  python scripts/wan2021_control.py            # 30 runs x 80,000 steps, 65 settings
  python scripts/wan2021_control.py --quick    # a check: 2 runs x 2,000 steps, 2 of each
"""

import argparse
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

import avgreward
from avgreward import exact
from avgreward.envs import access_control as ac
from avgreward.experiment import run_experiment
from avgreward.plotting import optimum_line, save_figure, sensitivity_curve

ENV = "avgreward/AccessControl-v0"


@dataclass
class Args:
    seeds: int = 30
    steps: int = 80_000
    alphas: list = field(default_factory=lambda: [0.0015625, 0.00625, 0.025, 0.1, 0.4])
    etas: list = field(default_factory=lambda: [0.125, 0.25, 0.5, 1.0, 2.0])
    free_servers: list = field(default_factory=lambda: [10, 8, 6, 4, 2, 0])
    epsilon: float = 0.1
    last: float = 1.0
    quick: bool = False
    out: str = "results/wan2021_control"
    workers: int | None = None
    new: bool = False


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Args()
    parser.add_argument("--seeds", type=int, default=d.seeds,
                        help="runs per setting (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=d.steps,
                        help="steps per run (default: %(default)s)")
    parser.add_argument("--alphas", type=float, nargs="+", default=d.alphas,
                        help="step sizes (default: %(default)s)")
    parser.add_argument("--etas", type=float, nargs="+", default=d.etas,
                        help="Differential Q-learning's eta (default: %(default)s)")
    parser.add_argument("--free-servers", type=int, nargs="+", default=d.free_servers,
                        help="the fixed reference pairs: accept a priority-8 customer with "
                             "this many free servers (default: %(default)s)")
    parser.add_argument("--epsilon", type=float, default=d.epsilon,
                        help="exploration (default: %(default)s)")
    parser.add_argument("--last", type=float, default=d.last,
                        help="the fraction of each run (its end) the reward rate is "
                             "measured over (default: %(default)s, the whole run)")
    parser.add_argument("--quick", action="store_true",
                        help="a check: 2 runs x 2,000 steps, the first two of each list")
    parser.add_argument("--out", default=d.out,
                        help="directory for the runs and figure (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=d.workers,
                        help="worker processes (default: all cores)")
    parser.add_argument("--new", action="store_true",
                        help="use a fresh directory if --out holds an experiment")
    args = Args(**vars(parser.parse_args()))
    if not 0.0 < args.last <= 1.0:
        parser.error(f"--last must lie in (0, 1], got {args.last}")
    if args.quick:
        args.seeds, args.steps = 2, 2_000
        args.alphas, args.etas, args.free_servers = (args.alphas[:2], args.etas[:2],
                                                     args.free_servers[:2])
    return args


def reward_rates(experiment, i, last):
    """Each finished run's reward per step over the last ``last`` of its steps."""
    ends = experiment.bin_steps
    lengths = np.diff(ends, prepend=0)
    keep = ends > experiment.steps * (1.0 - last) + 1e-9  # bins ending inside the window
    rewards = experiment.rewards(i)
    return (rewards[:, keep] * lengths[keep]).sum(axis=1) / lengths[keep].sum()


def main():
    args = parse_args()
    model = ac.access_control_model()
    optimum = exact.relative_value_iteration(model).reward_rate
    print(f"exact: optimal reward rate {optimum:.4f} (relative value iteration)")

    # panel -> line label -> the agents of its points, one per alpha
    panels = {
        "Differential Q-learning": {
            f"eta = {eta:g}": [avgreward.DifferentialQLearning(alpha=a, eta=eta,
                                                               epsilon=args.epsilon)
                               for a in args.alphas] for eta in args.etas},
        "RVI Q-learning, f = q(s_ref, accept)": {
            f"s_ref: {n} free, priority 8": [avgreward.RVIQLearning(
                alpha=a, epsilon=args.epsilon, reference_state=ac.state_index(n, 3),
                reference_action=ac.ACCEPT) for a in args.alphas]
            for n in args.free_servers},
        "RVI Q-learning, f = max or mean of all q": {
            f"f = {ref} over all (s, a)": [avgreward.RVIQLearning(
                alpha=a, epsilon=args.epsilon, reference=ref) for a in args.alphas]
            for ref in ("max", "mean")},
    }
    agents = [agent for lines in panels.values() for line in lines.values() for agent in line]
    try:
        experiment = run_experiment(args.out, ENV, agents, args.seeds, args.steps,
                                    workers=args.workers, new=args.new,
                                    bin_size=max(1, args.steps // 80))
    except ValueError as error:
        raise SystemExit(f"wan2021_control.py: {error}") from None
    out = experiment.path
    print(f"results in {out}/ ({experiment.summary()})")

    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.8), sharey=True,
                             layout="constrained")
    where = "whole run" if args.last == 1.0 else f"last {args.last:g} of each run"
    i = 0
    for ax, (title, lines) in zip(axes, panels.items()):
        for label, line in lines.items():
            rates = [reward_rates(experiment, i + j, args.last) for j in range(len(line))]
            lost = sum(args.seeds - len(r) for r in rates)
            best = max(range(len(line)), key=lambda j: rates[j].mean() if len(rates[j])
                       else -np.inf)
            print(f"{title}, {label}: best alpha {args.alphas[best]:g}, reward rate "
                  f"{rates[best].mean():.4f} over {len(rates[best])} runs"
                  + (f"; {lost} run(s) diverged" if lost else ""))
            sensitivity_curve(args.alphas, rates, label=label + (f" ({lost} diverged)"
                                                                 if lost else ""), ax=ax)
            i += len(line)
        optimum_line(ax, optimum, f"optimal {optimum:.4f}")
        ax.set_xlabel("step size alpha (log2 axis)")
        ax.set_ylabel(f"reward per step, {where}\n(mean over runs, 95% t interval)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Access control (Wan, Naik & Sutton 2021): {args.seeds} runs x "
                 f"{args.steps:,} steps, epsilon {args.epsilon:g}", fontsize=11)
    print("figure:", save_figure(fig, out / "wan2021_control.png"))


if __name__ == "__main__":
    main()
