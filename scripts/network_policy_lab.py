"""The estimator laboratory with a small ReLU network policy, and the natural gradient.

Under a fixed one-hidden-layer ReLU softmax policy (avgreward.network_policy,
weights from --net-seed), on the episodic aliased gridworld and the short
corridor, samples --episodes episodes in batches of --batch-size and measures
each estimator of grad J against the exact gradient (chain rule through the
network: exact.score_gradient with the backpropagated scores).  The notes
(seed 000) say the baseline argument holds for any differentiable policy:
the figure shows it for a nonlinear one.

Figure, one row per task: (a) bias^2 against variance of every estimator;
(b) the measured means of three unbiased estimators against the exact
gradient, component by component, with their 95% intervals; (c) the variance
of the total-return estimator with a constant baseline b, against b, with the
per-component optimum b* (seed 002) below every constant.  The JSON also
holds the exact natural gradient of the network (F^+ grad J, its rank, the
compatible-features check F w = grad J) and of the linear policy.

Writes, into --out: network_policy_lab.png, network_policy_lab.csv (the tidy
table, one row per task and estimator) and network_policy_lab.json.

  python scripts/network_policy_lab.py            # 400,000 episodes per task
  python scripts/network_policy_lab.py --quick    # 20,000: a look in seconds
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
from avgreward.network_policy import ReLUPolicy, natural_gradient
from avgreward.plotting import estimator_lab, save_figure

TASKS = {"gridworld": "avgreward/AliasedGridworldEpisodic-v0",
         "corridor": "avgreward/ShortCorridor-v0"}
SHOWN = ("reward-to-go", "constant baseline", "state value (exact)")
QUICK_EPISODES = 20_000


@dataclass
class Args:
    episodes: int = 400_000
    batch_size: int = 100
    hidden: int = 8
    net_seed: int = 3
    seed: int = 0
    out: str = "results/network_policy_lab"


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=Args.episodes,
                        help="episodes per task (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_EPISODES:,} episodes per task, whatever --episodes says")
    parser.add_argument("--batch-size", type=int, default=Args.batch_size,
                        help="episodes a batch: leave-one-out baselines and the intervals' "
                             "batch means (default: %(default)s)")
    parser.add_argument("--hidden", type=int, default=Args.hidden,
                        help="hidden ReLU units of the policy (default: %(default)s)")
    parser.add_argument("--net-seed", type=int, default=Args.net_seed,
                        help="seed of the network's initial weights (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=Args.seed,
                        help="the episodes' seed (default: %(default)s)")
    parser.add_argument("--out", default=Args.out, help="output directory (default: %(default)s)")
    a = parser.parse_args()
    episodes = QUICK_EPISODES if a.quick else a.episodes
    if episodes < 2 * a.batch_size:
        parser.error(f"--episodes must be at least two batches (2 x {a.batch_size})")
    if a.hidden < 1:
        parser.error(f"--hidden must be at least 1, got {a.hidden}")
    return Args(episodes, a.batch_size, a.hidden, a.net_seed, a.seed, a.out)


def run_task(env_id, args):
    model = gymnasium.make(env_id).unwrapped.model()
    X = exact.feature_matrix(model, env_id)
    try:
        net = ReLUPolicy(X.shape[1], args.hidden, model.n_actions, seed=args.net_seed)
        params = net.init()
        lab = estimators.estimator_lab(model, params, X, episodes=args.episodes,
                                       batch_size=args.batch_size, seed=args.seed,
                                       network=net)
    except ValueError as error:
        raise SystemExit(f"network_policy_lab.py: {error}") from None
    ev = exact.evaluate_episodic(model, net.probabilities(params, X))
    ng = natural_gradient(model, net, params, X)
    theta = np.random.default_rng(1).normal(scale=0.5, size=(X.shape[1], model.n_actions))
    linear = exact.natural_gradient(model, theta, X)
    return lab, ev, net, ng, linear


def _natural_record(ng):
    g, n = ng.gradient, ng.natural
    return {"n_params": int(g.size), "fisher_rank": ng.rank,
            "gradient_norm": float(np.linalg.norm(g)), "natural_norm": float(np.linalg.norm(n)),
            "cosine_natural_vs_gradient": float(g @ n / (np.linalg.norm(g) * np.linalg.norm(n))),
            "max_abs_F_w_minus_grad": float(np.abs(ng.fisher @ ng.compatible_weights - g).max()),
            "natural": n.tolist()}


def draw_means(lab, ax):
    """Measured means against the exact gradient, per component, with 95% intervals."""
    g = lab.exact_gradient
    moved = np.abs(g) > 1e-12 * np.abs(g).max()
    for k, (name, marker) in enumerate(zip(SHOWN, "os^")):
        i = lab.names.index(name)
        offset = (k - 1) * 0.015 * np.ptp(g[moved])  # side by side, not on top of each other
        ax.errorbar(g[moved] + offset, lab.means[i, moved], yerr=lab.ci_halfwidths[i, moved],
                    fmt=marker, ms=3.5, lw=0.8, capsize=1.5, label=name)
    lo, hi = g[moved].min(), g[moved].max()
    ax.plot([lo, hi], [lo, hi], color="gray", lw=1, ls="--", label="mean = exact ∇J")
    ax.set_xlabel("exact ∂J/∂θ_k (chain rule through the network)")
    ax.set_ylabel("measured mean ± 95% CI")
    ax.set_title(f"unbiased for the network: {moved.sum()} moving parameters", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def draw_baseline_variance(lab, ev, ax):
    """Total variance of g(tau)(R - b) against a constant b, and the per-component b*."""
    b_star = lab.optimal_baseline
    moved = lab.score_moments[0] > 0
    span = max(abs(ev.J), np.abs(b_star[moved]).max(), 1.0)
    b = np.linspace(ev.J - 1.5 * span, ev.J + 1.5 * span, 301)
    total = np.array([lab.constant_baseline_variance(x).sum() for x in b])
    ax.plot(b, total, color="tab:blue", lw=1.5, label="one constant b for every component")
    best = lab.constant_baseline_variance(b_star).sum()
    ax.axhline(best, color="tab:green", ls="--", lw=1.2,
               label=f"b*_k = E[g_k² R] / E[g_k²] per component: {best:.4g}")
    ax.axvline(ev.J, color="gray", ls=":", lw=1, label=f"b = J = {ev.J:.3g}")
    ax.plot(b[np.argmin(total)], total.min(), "v", color="tab:blue", ms=6)
    ax.set_xlabel("constant baseline b")
    ax.set_ylabel("variance of g(τ)(R(τ) − b), trace")
    ax.set_yscale("log")
    ax.set_title("the optimal constant baseline (from the episodes' moments)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)


def main():
    args = parse_args()
    out = Path(args.out)
    started = time.perf_counter()
    labs = {}
    for name, env_id in TASKS.items():
        t0 = time.perf_counter()
        lab, ev, net, ng, linear = run_task(env_id, args)
        labs[name] = (lab, ev, net, ng, linear)
        print(f"\n{name} ({env_id}): ReLU network {net.n_inputs}-{net.n_hidden}-"
              f"{net.n_actions} ({net.n_params} parameters), J = {ev.J:.4f}, |grad J| = "
              f"{np.linalg.norm(lab.exact_gradient):.4f}, {lab.episodes:,} episodes in "
              f"{time.perf_counter() - t0:.1f} s")
        print(f"  natural gradient: Fisher rank {ng.rank} of {net.n_params}, cosine with "
              f"grad J {_natural_record(ng)['cosine_natural_vs_gradient']:.3f}, "
              f"|F w - grad J| = {np.abs(ng.fisher @ ng.compatible_weights - ng.gradient).max():.1e}")
        print(f"  {'estimator':30s} {'bias^2 exact':>12s} {'measured':>10s} {'unbiased?':>9s} "
              f"{'variance':>10s}")
        for row in estimators.lab_table(lab):
            print(f"  {row['estimator']:30s} {row['exact_bias_squared']:12.3g} "
                  f"{row['bias_squared']:10.3g} {row['unbiased_within_ci']!s:>9s} "
                  f"{row['variance_per_episode']:10.4g}")
    print(f"\nall in {time.perf_counter() - started:.1f} s")

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "network_policy_lab.csv", "w", newline="") as f:
        rows = [{"task": name, **row} for name, (lab, *_) in labs.items()
                for row in estimators.lab_table(lab)]
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    record = {"args": asdict(args),
              "versions": {"avgreward": avgreward.__version__, "numpy": np.__version__},
              "tasks": {name: {"env": TASKS[name], "J": ev.J,
                               "network": asdict(net),
                               "exact_gradient": lab.exact_gradient.tolist(),
                               "optimal_baseline": lab.optimal_baseline.tolist(),
                               "natural_gradient": _natural_record(ng),
                               "linear_policy_natural_gradient": _natural_record(linear)}
                        for name, (lab, ev, net, ng, linear) in labs.items()}}
    (out / "network_policy_lab.json").write_text(json.dumps(record, indent=1))

    fig, axes = plt.subplots(2, 3, figsize=(18, 10.5), layout="constrained")
    for row, (name, (lab, ev, net, _, _)) in zip(axes, labs.items()):
        estimator_lab(lab, row[0], f"{TASKS[name]}: ReLU {net.n_inputs}-{net.n_hidden}-"
                      f"{net.n_actions} policy, {lab.episodes:,} episodes (J = {ev.J:.2f})")
        draw_means(lab, row[1])
        draw_baseline_variance(lab, ev, row[2])
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8,
               title="estimators of ∇J for the network policy (learned v: least squares on "
                     "the observation's features)", title_fontsize=8)
    print("table:", out / "network_policy_lab.csv")
    print("figure:", save_figure(fig, out / "network_policy_lab.png"))


if __name__ == "__main__":
    main()
