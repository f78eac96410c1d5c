"""Value-based against policy-based control: why the aliased gridworld needs a stochastic policy.

The lecture notes (seed 004): "value-based RL learns a near-deterministic
(epsilon-greedy) policy ... it may traverse the corridor for a long time".
In the aliased gridworld two cells look alike, so every deterministic policy
of what the agent sees gets stuck (best reward rate 0) and the best policy is
stochastic (2/9).  Differential semi-gradient Sarsa, epsilon-greedy with
several epsilon, against the softmax actor-critic, --seeds runs each: the
exact reward rate of each learned policy (epsilon-greedy for Sarsa), with the
best deterministic and best stochastic rates drawn.  On the loop MDP, where
a deterministic policy is optimal, both find the right loop.

Writes, into --out: gridworld/ and loop/ (the runs, resumable) and
value_vs_policy.png.

  python scripts/value_vs_policy.py                          # 30 seeds x 200,000 steps
  python scripts/value_vs_policy.py --seeds 2 --steps 5000   # a quick check
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

import avgreward
from avgreward import envs
from avgreward import exact
from avgreward.experiment import run_experiment
from avgreward.plotting import save_figure
from avgreward.stats import mean_confidence_interval

GRID = "avgreward/AliasedGridworld-v0"
LOOP = "avgreward/LoopMDP-v0"


@dataclass
class Args:
    seeds: int = 30
    steps: int = 200_000
    epsilons: tuple = (0.05, 0.1, 0.2)
    out: str = "results/value_vs_policy"
    workers: int | None = None
    new: bool = False


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=Args.seeds,
                        help="runs per learner (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=Args.steps,
                        help="steps per run (default: %(default)s)")
    parser.add_argument("--epsilons", type=float, nargs="+", default=list(Args.epsilons),
                        help="Sarsa's exploration rates (default: %(default)s)")
    parser.add_argument("--out", default=Args.out,
                        help="directory for the runs and figure (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=Args.workers,
                        help="worker processes (default: all cores)")
    parser.add_argument("--new", action="store_true",
                        help="use fresh directories if --out holds experiments")
    a = parser.parse_args()
    return Args(a.seeds, a.steps, tuple(a.epsilons), a.out, a.workers, a.new)


def learners(epsilons):
    agents = {"actor-critic (softmax)": avgreward.SoftmaxActorCritic(
        alpha_w=0.1, alpha_theta=0.05, alpha_rbar=0.01)}
    for eps in epsilons:
        agents[f"Sarsa, epsilon {eps:g}"] = avgreward.DifferentialSarsa(
            alpha=0.1, beta=0.01, epsilon=eps)
    return agents


def exact_rates(experiment, model):
    """The exact reward rate of every learned policy, per setting (as learned: epsilon-greedy)."""
    return [np.array([exact.evaluate(model, exact.policy_on_states(
        model, experiment.result(i, s).policy)).reward_rate for s in experiment.finished_seeds(i)])
        for i in range(len(experiment.agents))]


def main():
    args = parse_args()
    agents = learners(args.epsilons)
    results = {}
    for name, env_id in (("gridworld", GRID), ("loop", LOOP)):
        try:
            experiment = run_experiment(Path(args.out) / name, env_id, list(agents.values()),
                                        args.seeds, args.steps, workers=args.workers,
                                        new=args.new)
        except ValueError as error:
            raise SystemExit(f"value_vs_policy.py: {error}") from None
        print(f"results in {experiment.path}/ ({experiment.summary()})")
        results[name] = experiment

    grid_model, loop_model = envs.gridworld_model(), envs.loop_mdp_model()
    best_deterministic = max(rate for _, rate in exact.deterministic_observation_policies(
        grid_model))
    best_stochastic = 2 / 9
    loop_best = exact.relative_value_iteration(loop_model).reward_rate

    fig, (ax_grid, ax_loop) = plt.subplots(1, 2, figsize=(13.0, 4.8), layout="constrained",
                                           gridspec_kw={"width_ratios": [1.5, 1]})
    for ax, name, model, lines in (
            (ax_grid, "gridworld", grid_model,
             ((best_stochastic, "best stochastic policy 2/9", "--"),
              (best_deterministic, "best deterministic policy of the observations "
               f"{best_deterministic:g}", ":"))),
            (ax_loop, "loop", loop_model,
             ((loop_best, f"optimal (the right loop) {loop_best:g}", "--"),
              (0.2, "the left loop 0.2", ":")))):
        rates = exact_rates(results[name], model)
        for k, (label, values) in enumerate(zip(agents, rates)):
            x = k + np.linspace(-0.2, 0.2, values.size)
            color = "tab:green" if k == 0 else "tab:blue"
            ax.plot(x, values, "o", ms=3, color=color, alpha=0.6)
            if values.size:
                mean, low, high = mean_confidence_interval(values)
                ax.errorbar(k + 0.3, mean, yerr=[[mean - low], [high - mean]], fmt="s",
                            color="black", ms=5, capsize=3)
                print(f"{name:9s} {label:24s} exact reward rate {float(mean):.4f} "
                      f"(95% CI {float(low):.4f} .. {float(high):.4f}, {values.size} seeds)")
        for value, text, style in lines:
            ax.axhline(value, color="gray", ls=style, lw=1.2, label=text)
        ax.set_xticks(range(len(agents)), [label.replace(", ", "\n") for label in agents],
                      fontsize=8)
        ax.set_ylabel("exact reward rate of the learned policy")
        ax.legend(fontsize=8, loc="center right")
        ax.grid(alpha=0.3)
    ax_grid.set_title(f"Aliased gridworld: {args.steps:,} steps, {args.seeds} seeds "
                      "(dots: seeds; squares: mean, 95% CI)", fontsize=10)
    ax_loop.set_title("Loop MDP: a deterministic policy is optimal", fontsize=10)
    out = results["gridworld"].path.parent
    print("figure:", save_figure(fig, out / "value_vs_policy.png"))


if __name__ == "__main__":
    main()
