"""Wan, Naik & Sutton (2021), prediction: off-policy differential TD against average-cost TD.

The two-loop MDP (avgreward/LoopMDP-v0: at S, left pays +1 on leaving, right
+2 on coming back, each loop 5 steps).  The target policy takes either loop
with probability 1/2 (rate r_pi = 0.3).  Differential TD-learning learns it
off-policy, from a behaviour that goes left 9 times in 10 (the paper's
b = (0.9, 0.1)), with the importance-sampling ratio rho = pi(A|S) / b(A|S)
in both of its updates:

    delta = R - Rbar + V(S') - V(S);  V(S) += alpha rho delta;  Rbar += eta alpha rho delta

Average-cost TD (Tsitsiklis & Van Roy 1999) learns it on-policy, following
the target, with Rbar += beta (R - Rbar) and beta = eta alpha (the paper's
code sets R-bar's step so).  Every --every steps: the RMS error over the 9
states of the learned values against the exact differential values, both
centered (a differential value function is defined up to a constant), and
|Rbar - r_pi|.  Mean over --seeds runs, with a 95% band.  Dotted lines are
exact: where off-policy learning without rho would go (the behaviour's own
values and rate); both methods' tabular fixed point has error 0.

Writes, into --out: wan2021_prediction.npz (every curve, with the settings)
and wan2021_prediction.png.

  python scripts/wan2021_prediction.py            # 30 seeds x 10,000 steps, as the paper
  python scripts/wan2021_prediction.py --quick    # 3 seeds x 2,000 steps: a quick check
"""

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

import avgreward
from avgreward import exact
from avgreward.environments import default_features, resolve_env
from avgreward.learners.driver import Task
from avgreward.learners.registry import driver_for
from avgreward.plotting import save_figure
from avgreward.stats import mean_confidence_interval
from avgreward.training import run_learner

ENV = "avgreward/LoopMDP-v0"


@dataclass
class Args:
    seeds: int = 30
    steps: int = 10_000
    every: int = 100
    alpha: float = 0.05
    eta: float = 0.25
    left: float = 0.9
    out: str = "results/wan2021_prediction"


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=Args.seeds,
                        help="runs per curve (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=Args.steps,
                        help="steps per run (default: %(default)s)")
    parser.add_argument("--every", type=int, default=Args.every,
                        help="measure the errors every this many steps (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=Args.alpha,
                        help="step size of the values (default: %(default)s)")
    parser.add_argument("--eta", type=float, default=Args.eta,
                        help="R-bar's step is eta * alpha, in both methods "
                             "(default: %(default)s)")
    parser.add_argument("--left", type=float, default=Args.left,
                        help="the behaviour's probability of going left at S "
                             "(default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="3 seeds x 2,000 steps: checks that it runs")
    parser.add_argument("--out", default=Args.out,
                        help="directory for the curves and figure (default: %(default)s)")
    a = parser.parse_args()
    seeds, steps = (3, 2_000) if a.quick else (a.seeds, a.steps)
    if seeds < 1 or a.every < 1 or steps < a.every:
        parser.error("--seeds and --every must be at least 1, --steps at least --every")
    if not 0.0 < a.left < 1.0:
        parser.error(f"--left must lie in (0, 1) for the behaviour to cover the target, "
                     f"got {a.left}")
    return Args(seeds, steps, a.every, a.alpha, a.eta, a.left, a.out)


def curves(agent, seed, args, truth):
    """Centered RMS value error and |Rbar - r_pi| every ``args.every`` steps of one run."""
    fused = resolve_env(ENV)[1].fused
    built = driver_for(agent).build(agent, Task(ENV, fused, default_features(ENV), args.steps))
    errors = []

    def measure(done, steps):
        errors.append(exact.centered_rms_error(built.params.w, truth.v))

    run = run_learner(ENV, built.learner, built.params, args.steps, seed,
                      chunk_steps=args.every, rbar_every=args.every, bin_size=args.every,
                      callback=measure)
    return np.array(errors), np.abs(run.rbar - truth.reward_rate)


def main():
    args = parse_args()
    model = exact.model_of(ENV)
    target = np.full((model.n_states, model.n_actions), 0.5)
    behaviour = target.copy()
    behaviour[0] = [args.left, 1.0 - args.left]
    truth = exact.evaluate(model, target)
    without_rho = exact.evaluate(model, behaviour)
    try:
        methods = {
            "differential TD, off-policy": avgreward.DifferentialTD(
                alpha=args.alpha, eta=args.eta, target=target, behaviour=behaviour),
            "average-cost TD, on-policy": avgreward.AverageCostTD(
                alpha=args.alpha, beta=args.eta * args.alpha, target=target),
        }
    except ValueError as error:
        raise SystemExit(f"wan2021_prediction.py: {error}") from None
    started = time.perf_counter()
    results = {}
    for label, agent in methods.items():
        runs = [curves(agent, seed, args, truth) for seed in range(args.seeds)]
        results[label] = (np.stack([r[0] for r in runs]), np.stack([r[1] for r in runs]))
        value_error, rate_error = results[label]
        print(f"{label:28s}: at the end, RMS error of centered values "
              f"{value_error[:, -1].mean():.4f}, |Rbar - r_pi| {rate_error[:, -1].mean():.4f}")
    print(f"2 methods x {args.seeds} seeds x {args.steps:,} steps in "
          f"{time.perf_counter() - started:.1f} s")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x = np.arange(1, args.steps // args.every + 1) * args.every
    np.savez(out / "wan2021_prediction.npz",
             settings=json.dumps({**asdict(args), "avgreward": avgreward.__version__}),
             steps=x, reward_rate=truth.reward_rate, values=truth.v,
             **{f"{label}: {what}": curve for label, pair in results.items()
                for what, curve in zip(("value error", "rate error"), pair)})

    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.2), layout="constrained")
    exact_lines = (exact.centered_rms_error(without_rho.v, truth.v),
                   abs(without_rho.reward_rate - truth.reward_rate))
    for i, (ax, ylabel) in enumerate(zip(axes, (
            "RMS error of centered values (reward units)",
            "|R-bar - r_pi| (reward per step)"))):
        for (label, pair), color in zip(results.items(), ("tab:red", "tab:blue")):
            mean, low, high = mean_confidence_interval(pair[i], axis=0)
            ax.plot(x, mean, color=color, lw=1.4, label=label)
            ax.fill_between(x, low, high, color=color, alpha=0.15, lw=0)
        ax.axhline(exact_lines[i], color="gray", ls=":", lw=1.2,
                   label=f"exact, the behaviour's own ({exact_lines[i]:.3f}): no rho")
        ax.axhline(0.0, color="black", ls="--", lw=1.0, label="exact TD fixed point (0)")
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, title="band: 95% CI of the mean over seeds",
                   title_fontsize=7)
    fig.suptitle(f"Prediction on the two-loop MDP: target (1/2, 1/2), behaviour "
                 f"({args.left:g}, {1 - args.left:g}); alpha {args.alpha:g}, eta {args.eta:g}, "
                 f"{args.seeds} seeds", fontsize=10)
    print("figure:", save_figure(fig, out / "wan2021_prediction.png"))


if __name__ == "__main__":
    main()
