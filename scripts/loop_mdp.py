"""The loop MDP: the average-reward actor-critic finds the right loop; discounting may not.

From S the agent chooses between two 5-step loops: the left one pays +1 on
leaving S (reward rate 1/5), the right one +2 on returning to S (rate 2/5).
An average-reward learner should settle on the right loop.  A discounted
one need not: the exact discounted values of the two policies,
v_L(S) = 1 / (1 - g^5) and v_R(S) = 2 g^4 / (1 - g^5), cross at
g = 2^(-1/4) ~ 0.841, so with any smaller discount the left loop looks better.

Writes, into --out: experiment.json, runs/ (the runs) and loop_mdp.png
(the learning curve against the two policies' exact reward rates, and the
discounted values against gamma).

  python scripts/loop_mdp.py                          # 10 seeds x 20,000 steps
  python scripts/loop_mdp.py --seeds 2 --steps 2000   # a quick check
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
from avgreward.plotting import learning_curve, save_figure

ENV = "avgreward/LoopMDP-v0"


@dataclass
class Args:
    seeds: int = 10
    steps: int = 20_000
    alpha_w: float = 0.1
    alpha_theta: float = 0.1
    alpha_rbar: float = 0.01
    out: str = "results/loop_mdp"
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


def main():
    args = parse_args()
    model = envs.loop_mdp_model()
    # Only S (state 0) has a choice; elsewhere both actions go on around the loop.
    left = np.tile([1.0, 0.0], (model.P.shape[0], 1))
    right = np.tile([0.0, 1.0], (model.P.shape[0], 1))
    rate_left = exact.evaluate(model, left).reward_rate
    rate_right = exact.evaluate(model, right).reward_rate
    print(f"exact reward rates: left loop {rate_left:.3f}, right loop {rate_right:.3f}")

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
    p_right = np.array([experiment.result(0, s).policy([0.0])[1] for s in seeds])
    learned_rates = np.array([
        exact.evaluate(model, exact.policy_on_states(model, experiment.result(0, s).policy))
        .reward_rate for s in seeds])
    final = experiment.final_performance(0, fraction=0.1)
    print(f"P(right | S) after training: mean {p_right.mean():.3f}, min {p_right.min():.3f}; "
          f"{np.sum(p_right > 0.5)} of {len(seeds)} seeds prefer the right loop")
    print(f"exact reward rate of the learned policies: mean {learned_rates.mean():.4f} "
          f"(best possible {rate_right:.1f})")
    print(f"reward rate over the last 10% of steps: {final.mean():.4f}")

    fig, (ax_curve, ax_gamma) = plt.subplots(1, 2, figsize=(12.0, 4.4), layout="constrained")
    learning_curve(experiment.rewards(0), steps=experiment.bin_steps, ax=ax_curve,
                   title=f"Average-reward actor-critic ({len(seeds)} seeds)")
    ax_curve.axhline(rate_right, color="tab:green", ls="--", lw=1.2,
                     label=f"right loop: $r(\\pi_R)$ = {rate_right:.1f}")
    ax_curve.axhline(rate_left, color="tab:red", ls="--", lw=1.2,
                     label=f"left loop: $r(\\pi_L)$ = {rate_left:.1f}")
    ax_curve.set_ylim(0.0, 0.5)
    ax_curve.legend(loc="lower right", fontsize=9)

    gammas = np.linspace(0.5, 0.95, 200)
    v_left = [exact.discounted_values(model, left, g)[0] for g in gammas]
    v_right = [exact.discounted_values(model, right, g)[0] for g in gammas]
    cross = 2.0 ** -0.25
    ax_gamma.plot(gammas, v_left, color="tab:red", lw=1.8, label="left loop: $v_{\\pi_L}(S)$")
    ax_gamma.plot(gammas, v_right, color="tab:green", lw=1.8,
                  label="right loop: $v_{\\pi_R}(S)$")
    v_cross = exact.discounted_values(model, left, cross)[0]
    ax_gamma.axvline(cross, color="0.4", ls=":", lw=1.2)
    ax_gamma.plot([cross], [v_cross], "o", color="black", ms=5)
    ax_gamma.annotate(f"$\\gamma = 2^{{-1/4}} \\approx {cross:.3f}$",
                      (cross, v_cross), xytext=(-150, 45), textcoords="offset points",
                      fontsize=10,
                      arrowprops={"arrowstyle": "->", "color": "0.3"})
    ax_gamma.set_xlabel("discount rate $\\gamma$")
    ax_gamma.set_ylabel("exact discounted value of S")
    ax_gamma.set_title("Discounted values: left looks better below the crossover")
    ax_gamma.grid(alpha=0.3)
    ax_gamma.legend(loc="upper left", fontsize=9)
    print("figure:", save_figure(fig, out / "loop_mdp.png"))


if __name__ == "__main__":
    main()
