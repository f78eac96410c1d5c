"""The aliased gridworld: a learned stochastic policy beats every deterministic one.

Five cells in a row; below c0 and c4 a skull (-1), below c2 money (+1).
The agent sees only the walls around its cell, so c1 and c3 look the same.
Every deterministic policy of what the agent sees gets stuck somewhere
(reward rate 0 at best); the best policy moves E or W at random in the
look-alike cells, with reward rate exactly 2/9.  The softmax actor-critic
learns it.  Exact reward rates come from avgreward.exact.

Prints a table of the learned policy and of the exact reward rates, and
writes, into --out: experiment.json, runs/ (the runs) and gridworld.png
(learning curve against the exact rates; the learned action probabilities).

  python scripts/aliased_gridworld.py                          # 10 seeds x 200,000 steps
  python scripts/aliased_gridworld.py --seeds 2 --steps 2000   # a quick check
"""

import argparse
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

import avgreward
from avgreward import envs
from avgreward import exact
from avgreward.experiment import run_experiment
from avgreward.plotting import confidence_band, learning_curve, save_figure

ENV = "avgreward/AliasedGridworld-v0"
ACTIONS = "NESW"
# The distinct observations in exact.observation_classes order: c0, c1 = c3, c2, c4.
OBSERVATIONS = ["c0", "c1 = c3", "c2", "c4"]
OPTIMAL = np.array([[0, 1, 0, 0], [0, 0.5, 0, 0.5], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)


@dataclass
class Args:
    seeds: int = 10
    steps: int = 200_000
    alpha_w: float = 0.1
    alpha_theta: float = 0.05
    alpha_rbar: float = 0.01
    out: str = "results/aliased_gridworld"
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
    parser.add_argument("--alpha-theta", type=float, default=Args.alpha_theta,
                        help="actor step size (default: %(default)s)")
    parser.add_argument("--alpha-rbar", type=float, default=Args.alpha_rbar,
                        help="step size of the reward-rate estimate R-bar (default: %(default)s)")
    parser.add_argument("--out", default=Args.out,
                        help="directory for the runs and figures (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=Args.workers,
                        help="worker processes (default: all cores)")
    parser.add_argument("--new", action="store_true",
                        help="use a fresh directory if --out holds an experiment")
    return Args(**vars(parser.parse_args()))


def actions(table):
    """'E | E or W | S | W' for a policy table over the four observations."""
    return " | ".join(" or ".join(ACTIONS[a] for a in np.flatnonzero(row > 0)) for row in table)


def main():
    args = parse_args()
    model = envs.gridworld_model()
    optimal_rate = exact.evaluate(model, exact.policy_on_states(model, OPTIMAL)).reward_rate
    deterministic = list(exact.deterministic_observation_policies(model))
    best_rate = max(rate for _, rate in deterministic)
    best = [table for table, rate in deterministic if rate >= best_rate - 1e-12]

    agent = avgreward.SoftmaxActorCritic(alpha_w=args.alpha_w, alpha_theta=args.alpha_theta,
                                         alpha_rbar=args.alpha_rbar)
    print(f"{agent}\ntraining {args.seeds} seeds x {args.steps:,} steps on {ENV} ...")
    experiment = run_experiment(args.out, ENV, agent, args.seeds, args.steps,
                                workers=args.workers, new=args.new)
    out = experiment.path
    print(f"results in {out}/ ({experiment.summary()})")
    seeds = experiment.finished_seeds(0)
    if not seeds:
        raise SystemExit("every run failed: nothing to plot")

    # The learned policy on each distinct observation, and its exact reward rate.
    distinct, _ = exact.observation_classes(model)
    learned = np.stack([[experiment.result(0, s).policy(o) for o in distinct] for s in seeds])
    rates = np.array([exact.evaluate(model, exact.policy_on_states(model, p)).reward_rate
                      for p in learned])

    print(f"\n{f'learned policy (mean over {len(seeds)} seeds)':38s}"
          + "".join(f"{a:>7s}" for a in ACTIONS))
    for name, row in zip(OBSERVATIONS, learned.mean(axis=0)):
        print(f"  {name:36s}" + "".join(f"{p:7.3f}" for p in row))
    print(f"\n{'policy':58s} exact reward rate")
    print(f"{'learned (' + str(len(seeds)) + ' seeds)':58s} {rates.mean():.4f} "
          f"(seeds {rates.min():.4f} .. {rates.max():.4f})")
    print(f"{'optimal stochastic: ' + actions(OPTIMAL):58s} {optimal_rate:.4f} = 2/9")
    print(f"{f'best deterministic ({len(best)} of {len(deterministic)} policies)':58s} "
          f"{best_rate:.4f}")
    for table in best:
        # The sensible-looking ones: E in c0, S in c2, W in c4, E or W in c1 = c3.
        if table[0, 1] and table[2, 2] and table[3, 3] and (table[1, 1] or table[1, 3]):
            print(f"  e.g. {actions(table):52s} {best_rate:.4f}  "
                  f"(stuck between {'c3 and c4' if table[1, 1] else 'c0 and c1'})")

    fig, (ax_curve, ax_policy) = plt.subplots(1, 2, figsize=(12.0, 4.4), layout="constrained")
    learning_curve(experiment.rewards(0), steps=experiment.bin_steps, ax=ax_curve,
                   title=f"Softmax actor-critic ({len(seeds)} seeds)")
    ax_curve.axhline(optimal_rate, color="tab:green", ls="--", lw=1.2,
                     label="best stochastic policy: 2/9")
    ax_curve.axhline(best_rate, color="tab:red", ls="--", lw=1.2,
                     label=f"best deterministic policies: {best_rate:.0f}")
    ax_curve.legend(loc="lower right", fontsize=9)

    mean, low, high = confidence_band(learned)
    width = 0.2
    for a, name in enumerate(ACTIONS):
        x = np.arange(len(OBSERVATIONS)) + (a - 1.5) * width
        ax_policy.bar(x, mean[:, a], width, label=name, yerr=[mean[:, a] - low[:, a],
                      high[:, a] - mean[:, a]], capsize=2, ecolor="0.3")
    cell, action = np.nonzero(OPTIMAL)
    x = cell + (action - 1.5) * width
    ax_policy.hlines(OPTIMAL[cell, action], x - width / 2, x + width / 2, colors="black",
                     linestyles="--", lw=1.5, label="best policy")
    ax_policy.set_xticks(np.arange(len(OBSERVATIONS)), OBSERVATIONS)
    ax_policy.set_xlabel("what the agent sees (the cell)")
    ax_policy.set_ylabel("probability of the action")
    ax_policy.set_ylim(0, 1.2)
    ax_policy.set_title(f"Learned policy: exact reward rate {rates.mean():.4f} (best 2/9)")
    ax_policy.legend(ncol=5, loc="upper center", fontsize=9)
    ax_policy.grid(alpha=0.3, axis="y")
    print("\nfigure:", save_figure(fig, out / "gridworld.png"))


if __name__ == "__main__":
    main()
