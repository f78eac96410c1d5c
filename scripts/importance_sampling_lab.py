"""Importance sampling in the estimator lab: the gradient of a target from a behaviour's episodes.

On the short corridor (Sutton & Barto, Example 13.1), the target is the linear
softmax with right taken with probability --target-right; the episodes are
drawn under the behaviour b = (1 - m) pi + m uniform for each mixing weight m of
--mixes (m = 0: on-policy).  For each b, avgreward.importance_sampling measures
ordinary (trajectory) IS, per-decision IS and weighted (self-normalised) IS,
each without and with the target's exact v(s) as baseline, against the exact
gradient of J(pi) (docs: guide/importance-sampling.md).  The distance is
KL(pi || b) under the target's expected visits (the KL of the two policies'
distributions of whole episodes).

Figure: (a) each estimator's mean of dJ/dtheta_right with its 95% interval
against the distance, the exact gradient dotted; (b) the variance of one
episode's estimate (log scale); (c) the effective sample size of a batch,
(sum w)^2 / sum w^2 over batch_size, beside its limit 1 / E_b[W^2] (exact);
(d) weighted IS's bias against the batch size at the farthest behaviour
(log-log, 1 / batch_size dotted): biased in small batches, consistent.

Writes, into --out: importance_sampling_lab.png, importance_sampling_lab.csv
(one row per behaviour and estimator) and importance_sampling_lab.json.

  python scripts/importance_sampling_lab.py            # 400,000 episodes per behaviour
  python scripts/importance_sampling_lab.py --quick    # 20,000: a look in seconds
"""

import argparse
import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

import avgreward
import avgreward.envs  # noqa: F401  (registers the environments)
from avgreward import exact
from avgreward import importance_sampling as isl
from avgreward.plotting import save_figure

ENV = "avgreward/ShortCorridor-v0"
QUICK_EPISODES = 20_000
COLOURS = {"ordinary IS": "tab:blue", "per-decision IS": "tab:orange",
           "weighted IS": "tab:green"}


@dataclass
class Args:
    episodes: int = 400_000
    batch_size: int = 100
    target_right: float = 0.4
    mixes: str = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1"
    wis_batches: str = "1,2,5,10,20,50,100"
    seed: int = 0
    out: str = "results/importance_sampling_lab"


def _numbers(parser, name, text, low, high, kind=float):
    try:
        values = [kind(x) for x in text.split(",")]
    except ValueError:
        parser.error(f"--{name} must be a comma-separated list of numbers, got {text!r}")
    if not values or not all(low <= x <= high for x in values):
        parser.error(f"--{name} must hold values in [{low}, {high}], got {text!r}")
    return values


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=Args.episodes,
                        help="episodes per behaviour (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_EPISODES:,} episodes per behaviour, whatever --episodes says")
    parser.add_argument("--batch-size", type=int, default=Args.batch_size,
                        help="episodes a batch: weighted IS normalises over it, the intervals "
                             "use the batch estimates' spread (default: %(default)s)")
    parser.add_argument("--target-right", type=float, default=Args.target_right,
                        help="the target's probability of right, in (0, 1) (default: "
                             "%(default)s; beyond about 0.65 or below 0.35 E_b[W^2] is infinite "
                             "at m = 1 and the variances diverge)")
    parser.add_argument("--mixes", default=Args.mixes,
                        help="mixing weights m of the behaviours (default: %(default)s)")
    parser.add_argument("--wis-batches", default=Args.wis_batches,
                        help="batch sizes of panel (d) (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=Args.seed,
                        help="the episodes' seed (default: %(default)s)")
    parser.add_argument("--out", default=Args.out, help="output directory (default: %(default)s)")
    a = parser.parse_args()
    episodes = QUICK_EPISODES if a.quick else a.episodes
    if a.batch_size < 1 or episodes < 2 * a.batch_size:
        parser.error(f"--episodes must be at least two batches (2 x {a.batch_size})")
    if not 0.0 < a.target_right < 1.0:
        parser.error(f"--target-right must be in (0, 1), got {a.target_right}")
    _numbers(parser, "mixes", a.mixes, 0.0, 1.0)
    _numbers(parser, "wis-batches", a.wis_batches, 1, episodes // 2, int)
    return Args(episodes, a.batch_size, a.target_right, a.mixes, a.wis_batches, a.seed, a.out)


def main():
    args = parse_args()
    out = Path(args.out)
    started = time.perf_counter()
    model = exact.model_of(ENV)
    X = exact.feature_matrix(model, ENV)
    theta = np.log([[1.0 - args.target_right, args.target_right]])
    pi = exact.softmax_policy(theta, X)
    scores = exact.softmax_scores(theta, X)
    mixes = [float(m) for m in args.mixes.split(",")]
    try:
        labs = [isl.importance_sampling_lab(model, theta, X, isl.mixture(pi, m),
                                            episodes=args.episodes, batch_size=args.batch_size,
                                            seed=args.seed) for m in mixes]
        far = isl.mixture(pi, max(mixes))
        sizes = [int(n) for n in args.wis_batches.split(",")]
        by_size = [isl.importance_sampling_lab(model, theta, X, far, episodes=args.episodes,
                                               batch_size=n, seed=args.seed) for n in sizes]
    except ValueError as error:
        raise SystemExit(f"importance_sampling_lab.py: {error}") from None
    grad = labs[0].exact_gradient
    print(f"{ENV}: target right {args.target_right}, J = "
          f"{exact.evaluate_episodic(model, pi).J:.4f}, grad J = {np.round(grad, 4).tolist()}, "
          f"{args.episodes:,} episodes per behaviour in batches of {args.batch_size}")
    print(f"  {'m':>4s} {'KL':>6s} {'E_b[W^2]':>9s} {'ESS/n':>6s}  " +
          "  ".join(f"{n:>26s}" for n in isl.IS_ESTIMATORS))
    for m, lab in zip(mixes, labs):
        cells = [f"{lab.means[i, 1] - grad[1]:+9.3f}±{lab.ci_halfwidths[i, 1]:<7.3f}"
                 f"{'ok' if lab.covers(name) else '--':>3s} v{lab.variance_per_episode[i]:<6.3g}"
                 for i, name in enumerate(lab.names)]
        print(f"  {m:4.2f} {lab.kl:6.3f} {lab.weight_second_moment:9.3f} "
              f"{lab.ess / lab.batch_size:6.3f}  " + "  ".join(f"{c:>26s}" for c in cells))
    print(f"all in {time.perf_counter() - started:.1f} s "
          "(columns: bias of dJ/dtheta_right ± 95% CI, ok = CI covers grad J, v = variance)")

    out.mkdir(parents=True, exist_ok=True)
    rows = [{"m": m, **row} for m, lab in zip(mixes, labs)
            for row in isl.is_table([(f"m={m:g}", lab)])]
    with open(out / "importance_sampling_lab.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    one = {name: isl.weighted_expectation_at_one(model, pi, far, scores, baseline).tolist()
           for name, baseline in (("weighted IS", False), ("weighted IS, baseline", True))}
    record = {"args": asdict(args),
              "versions": {"avgreward": avgreward.__version__, "numpy": np.__version__},
              "exact_gradient": grad.tolist(),
              "behaviours": [{"m": m, "kl": lab.kl,
                              "weight_second_moment": _finite(lab.weight_second_moment),
                              "ess": lab.ess, "means": lab.means.tolist(),
                              "ci_halfwidths": lab.ci_halfwidths.tolist(),
                              "variance_per_episode": lab.variance_per_episode.tolist()}
                             for m, lab in zip(mixes, labs)],
              "weighted_by_batch_size": {
                  "m": max(mixes), "batch_sizes": sizes,
                  "bias": [lab.bias()[4].tolist() for lab in by_size],
                  "bias_baseline": [lab.bias()[5].tolist() for lab in by_size],
                  "exact_expectation_at_one": one}}
    (out / "importance_sampling_lab.json").write_text(json.dumps(record, indent=1))

    fig = draw(labs, mixes, by_size, sizes, grad, args)
    print("table:", out / "importance_sampling_lab.csv")
    print("figure:", save_figure(fig, out / "importance_sampling_lab.png"))


def _finite(x):
    return x if math.isfinite(x) else None  # JSON has no infinity


def _style(name):
    family = name.replace(", baseline", "")
    return COLOURS[family], ("--" if name.endswith("baseline") else "-")


def draw(labs, mixes, by_size, sizes, grad, args):
    kl = np.array([lab.kl for lab in labs])
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5), layout="constrained")
    (a, b), (c, d) = axes
    spread = 0.006 * max(kl.max(), 1e-9)
    for i, name in enumerate(isl.IS_ESTIMATORS):
        colour, ls = _style(name)
        mean = np.array([lab.means[i, 1] for lab in labs])
        half = np.array([lab.ci_halfwidths[i, 1] for lab in labs])
        a.errorbar(kl + (i - 2.5) * spread, mean, yerr=half, color=colour, ls=ls, lw=1,
                   marker="o", ms=3, capsize=2, label=name)
        b.plot(kl, [lab.variance_per_episode[i] for lab in labs], color=colour, ls=ls,
               marker="o", ms=3, label=name)
    a.axhline(grad[1], color="black", ls=":", lw=1.2,
              label=f"exact ∂J/∂θ_right = {grad[1]:.3f}")
    a.set_ylabel("mean of the ∂J/∂θ_right estimate ± 95% CI")
    a.set_title(f"bias: {args.episodes:,} episodes per behaviour, batches of {args.batch_size}",
                fontsize=10)
    b.set_yscale("log")
    b.set_ylabel("variance of one episode's estimate (trace;\nweighted: batch_size × batch's)")
    b.set_title("variance grows with the distance (heavy-tailed W: one long episode "
                "can lift a point)", fontsize=10)
    c.plot(kl, [lab.ess / lab.batch_size for lab in labs], "o-", color="tab:purple",
           label="measured: mean over batches of (Σw)² / Σw², / batch_size")
    c.plot(kl, [1.0 / lab.weight_second_moment for lab in labs], "k:", lw=1.5,
           label="limit of large batches: 1 / E_b[W²] (exact)")
    c.set_ylim(0, 1.05)
    c.set_ylabel("effective sample size / batch size")
    c.set_title("effective sample size of the trajectory weights W", fontsize=10)
    for ax in (a, b, c):
        ax.set_xlabel("KL(π ‖ b) under π's expected visits (nats per episode)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        top = ax.secondary_xaxis("top", functions=(lambda x: np.interp(x, kl, mixes),
                                                   lambda m: np.interp(m, mixes, kl)))
        top.set_xticks([m for m in (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0)
                        if min(mixes) <= m <= max(mixes)])
        top.set_xlabel("mixing weight m of b = (1 − m) π + m uniform", fontsize=8)
    n = np.array(sizes, dtype=float)
    for k, name in enumerate(("weighted IS", "weighted IS, baseline")):
        colour, ls = _style(name)
        bias = np.array([abs(lab.bias()[4 + k][1]) for lab in by_size])
        half = np.array([lab.ci_halfwidths[4 + k][1] for lab in by_size])
        lower = np.minimum(half, 0.9 * bias)  # a log axis shows no interval reaching 0
        d.errorbar(n, bias, yerr=(lower, half), color=colour, ls=ls, marker="o", ms=3,
                   capsize=2, label=f"|bias| of {name} ± 95% CI")
        if k == 0:
            d.plot(n, bias[0] / n, color="gray", ls=":", lw=1.2,
                   label="|bias at batch size 1| / batch size")
    d.set_xscale("log")
    d.set_yscale("log")
    d.set_xlabel("batch size (episodes self-normalised together)")
    d.set_ylabel("|mean − exact ∂J/∂θ_right|")
    d.set_title(f"weighted IS is consistent, not unbiased (m = {max(mixes):g})", fontsize=10)
    d.grid(alpha=0.3, which="both")
    d.legend(fontsize=7)
    fig.suptitle(f"{ENV}: importance-sampled gradients of the softmax target "
                 f"π(right) = {args.target_right} (Precup, Sutton & Singh 2000; "
                 "Sutton & Barto 5.5, 5.9)", fontsize=11)
    return fig


if __name__ == "__main__":
    main()
