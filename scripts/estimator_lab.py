"""The policy-gradient estimator laboratory: every estimator of the lecture notes, measured.

Under a fixed linear softmax policy (drawn at random from --policy-seed), on
the episodic aliased gridworld (64 policy parameters, +1 or -1 only at the
end) and the short corridor (-1 every step), samples --episodes episodes in
batches of --batch-size and measures each estimator of the gradient of
J = E[total reward]: its bias against the exact gradient (from the model),
and its variance (trace of the covariance of one episode's estimate).  The
figure puts bias^2 against variance on log axes: the notes' list
"discounting, causality, baselines, critic, GAE" made visible.

Writes, into --out: estimator_lab.png, estimator_lab.csv (the tidy table, one
row per task and estimator) and estimator_lab.json (settings, exact gradient,
versions).

  python scripts/estimator_lab.py                         # 1,000,000 episodes per task
  python scripts/estimator_lab.py --episodes 20000        # a quick look
"""

import argparse
import csv
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import gymnasium
import matplotlib.pyplot as plt
import numpy as np

import avgreward
import avgreward.envs  # noqa: F401  (registers the environments)
from avgreward import estimators, exact
from avgreward.plotting import estimator_lab, save_figure

TASKS = {"gridworld": "avgreward/AliasedGridworldEpisodic-v0",
         "corridor": "avgreward/ShortCorridor-v0"}
@dataclass
class Args:
    episodes: int = 1_000_000
    batch_size: int = 100
    gamma: float = 0.9
    lambdas: tuple = (0.0, 0.5, 0.9, 0.97, 1.0)
    entropy_beta: float = 0.1
    policy_seed: int = 1
    seed: int = 0
    out: str = "results/estimator_lab"


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=Args.episodes,
                        help="episodes per task (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=Args.batch_size,
                        help="episodes a batch: leave-one-out baselines and the intervals' "
                             "batch means (default: %(default)s)")
    parser.add_argument("--gamma", type=float, default=Args.gamma,
                        help="the discounted estimator's gamma (default: %(default)s)")
    parser.add_argument("--lambdas", type=float, nargs="+", default=list(Args.lambdas),
                        help="GAE's lambdas (default: %(default)s)")
    parser.add_argument("--entropy-beta", type=float, default=Args.entropy_beta,
                        help="weight of the entropy bonus (default: %(default)s)")
    parser.add_argument("--policy-seed", type=int, default=Args.policy_seed,
                        help="draws the fixed policy's weights, N(0, 0.5^2) "
                             "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=Args.seed,
                        help="the episodes' seed (default: %(default)s)")
    parser.add_argument("--out", default=Args.out, help="output directory (default: %(default)s)")
    a = parser.parse_args()
    if a.episodes < 2 * a.batch_size:
        parser.error(f"--episodes must be at least two batches (2 x {a.batch_size})")
    return Args(a.episodes, a.batch_size, a.gamma, tuple(a.lambdas), a.entropy_beta,
                a.policy_seed, a.seed, a.out)


def run_task(env_id, args):
    model = gymnasium.make(env_id).unwrapped.model()
    X = exact.feature_matrix(model, env_id)
    theta = np.random.default_rng(args.policy_seed).normal(
        scale=0.5, size=(X.shape[1], model.n_actions))
    try:
        lab = estimators.estimator_lab(
            model, theta, X, episodes=args.episodes, batch_size=args.batch_size,
            gamma=args.gamma, lambdas=args.lambdas, entropy_beta=args.entropy_beta,
            seed=args.seed)
    except ValueError as error:
        raise SystemExit(f"estimator_lab.py: {error}") from None
    return lab, exact.evaluate_episodic(model, exact.softmax_policy(theta, X))


def main():
    args = parse_args()
    out = Path(args.out)
    started = time.perf_counter()
    labs = {}
    for name, env_id in TASKS.items():
        t0 = time.perf_counter()
        lab, ev = run_task(env_id, args)
        labs[name] = (lab, ev)
        print(f"\n{name} ({env_id}): J = {ev.J:.4f}, |grad J| = "
              f"{np.linalg.norm(lab.exact_gradient):.4f}, {lab.episodes:,} episodes of "
              f"{ev.visits.sum():.2f} steps on average in {time.perf_counter() - t0:.1f} s")
        print(f"  {'estimator':30s} {'bias^2 exact':>12s} {'measured':>10s} {'unbiased?':>9s} "
              f"{'variance':>10s}")
        for row in estimators.lab_table(lab):
            print(f"  {row['estimator']:30s} {row['exact_bias_squared']:12.3g} "
                  f"{row['bias_squared']:10.3g} {row['unbiased_within_ci']!s:>9s} "
                  f"{row['variance_per_episode']:10.4g}")
    print(f"\nall in {time.perf_counter() - started:.1f} s")

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "estimator_lab.csv", "w", newline="") as f:
        rows = [{"task": name, **row} for name, (lab, _) in labs.items()
                for row in estimators.lab_table(lab)]
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    record = {"args": {**asdict(args), "lambdas": list(args.lambdas)},
              "versions": {"avgreward": avgreward.__version__, "numpy": np.__version__},
              "tasks": {name: {"env": TASKS[name], "J": ev.J,
                               "exact_gradient": lab.exact_gradient.tolist(),
                               "optimal_baseline": lab.optimal_baseline.tolist()}
                        for name, (lab, ev) in labs.items()}}
    (out / "estimator_lab.json").write_text(json.dumps(record, indent=1))

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.4), layout="constrained")
    for ax, (name, (lab, ev)) in zip(axes, labs.items()):
        estimator_lab(lab, ax, f"{TASKS[name]}: {lab.episodes:,} episodes, fixed random policy "
                      f"(J = {ev.J:.2f})")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8,
               title=f"estimators of ∇J (γ = {args.gamma:g} for the discounted one; "
                     f"entropy β = {args.entropy_beta:g}; learned v: least squares on the "
                     "observation's features)", title_fontsize=8)
    print("table:", out / "estimator_lab.csv")
    print("figure:", save_figure(fig, out / "estimator_lab.png"))


if __name__ == "__main__":
    main()
