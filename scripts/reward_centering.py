"""Reward centering (Naik et al. 2024): discounted Q-learning with and without it, as gamma -> 1.

Discounted Q-learning on access-control queuing (Sutton & Barto, Example
10.2), tabular, epsilon-greedy, for gamma = 0.9, 0.99 and 0.999: without
centering, with simple centering (R-bar += beta (R - R-bar)) and with
TD-based centering (R-bar += eta alpha delta), each step's TD error being
delta = (R - R-bar) + gamma max_a Q(S', a) - Q(S, A).  The learning curves
are of the exact reward rate (from the model) of the greedy policy of the
learned Q every --every steps, mean over --seeds runs with a 95% band,
against the optimal 2.7476: subtracting the reward rate removes the large
constant r / (1 - gamma) that uncentered values must first learn, which
slows them more the closer gamma is to 1.

Each run is the fused loop (avgreward.training.run_learner with the value-based
learner of avgreward.learners.value), the greedy policy read between chunks.
Writes, into --out: reward_centering.npz (every curve, with the settings)
and reward_centering.png.

  python scripts/reward_centering.py                          # 10 seeds x 1,000,000 steps
  python scripts/reward_centering.py --seeds 2 --steps 20000  # a quick check
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
from avgreward.learners.value import DIFFERENTIAL_Q, ValueParams
from avgreward.training import run_learner
from avgreward.plotting import save_figure
from avgreward.stats import mean_confidence_interval
from avgreward.training import value_settings
from avgreward.envs import access_control as ac

ENV = "avgreward/AccessControl-v0"
VARIANTS = (("no centering", None, 0.0, "black"), ("simple centering", "simple", 0.01, "tab:blue"),
            ("TD-based centering", "td", 0.1, "tab:red"))


@dataclass
class Args:
    seeds: int = 10
    steps: int = 1_000_000
    every: int = 20_000
    alpha: float = 0.1
    epsilon: float = 0.1
    gammas: tuple = (0.9, 0.99, 0.999)
    out: str = "results/reward_centering"


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=Args.seeds,
                        help="runs per curve (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=Args.steps,
                        help="steps per run (default: %(default)s)")
    parser.add_argument("--every", type=int, default=Args.every,
                        help="evaluate the greedy policy every this many steps "
                             "(default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=Args.alpha,
                        help="Q-learning's step size (default: %(default)s)")
    parser.add_argument("--epsilon", type=float, default=Args.epsilon,
                        help="exploration (default: %(default)s)")
    parser.add_argument("--gammas", type=float, nargs="+", default=list(Args.gammas),
                        help="discounts (default: %(default)s)")
    parser.add_argument("--out", default=Args.out,
                        help="directory for the curves and figure (default: %(default)s)")
    a = parser.parse_args()
    if a.seeds < 1 or a.every < 1 or a.steps < a.every:
        parser.error("--seeds and --every must be at least 1, --steps at least --every")
    return Args(a.seeds, a.steps, a.every, a.alpha, a.epsilon, tuple(a.gammas), a.out)


def greedy_rates(agent, seed, args, model, features):
    """The exact reward rate of the greedy policy every ``args.every`` steps of one run."""
    _, gamma, centering, beta = value_settings(agent)
    w = np.zeros((features.shape[1], model.n_actions))
    params = ValueParams(w, np.zeros(model.n_actions), np.full(1, -1, np.int64),
                         float(agent.alpha), beta, float(agent.epsilon), gamma, centering)
    rates = []

    def evaluate_greedy(done, steps):
        q = features @ w
        policy = np.zeros_like(q)
        policy[np.arange(len(q)), np.argmax(q, axis=1)] = 1.0
        rates.append(exact.evaluate(model, policy).reward_rate)

    run_learner(ENV, DIFFERENTIAL_Q, params, args.steps, seed, chunk_steps=args.every,
                bin_size=args.every, callback=evaluate_greedy)
    return np.array(rates)


def main():
    args = parse_args()
    model = ac.access_control_model()
    features = exact.feature_matrix(model, ENV)
    optimum = exact.relative_value_iteration(model).reward_rate
    started = time.perf_counter()
    curves = {}
    for gamma in args.gammas:
        for label, centering, beta, _ in VARIANTS:
            try:
                agent = avgreward.DiscountedQLearning(alpha=args.alpha, gamma=gamma,
                                                      epsilon=args.epsilon,
                                                      centering=centering, beta=beta)
            except ValueError as error:
                raise SystemExit(f"reward_centering.py: {error}") from None
            curves[gamma, label] = np.stack([greedy_rates(agent, seed, args, model, features)
                                             for seed in range(args.seeds)])
            first = curves[gamma, label][:, : max(1, curves[gamma, label].shape[1] // 10)]
            print(f"gamma {gamma:g}, {label:18s}: exact rate of the greedy policy, first 10% "
                  f"{first.mean():.4f}, at the end {curves[gamma, label][:, -1].mean():.4f} "
                  f"(optimal {optimum:.4f})")
    print(f"{len(curves)} curves x {args.seeds} seeds x {args.steps:,} steps in "
          f"{time.perf_counter() - started:.1f} s")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "reward_centering.npz",
             settings=json.dumps({**asdict(args), "gammas": list(args.gammas),
                                  "avgreward": avgreward.__version__}),
             steps=np.arange(1, curves[args.gammas[0], VARIANTS[0][0]].shape[1] + 1) * args.every,
             **{f"gamma={g:g} {label}": v for (g, label), v in curves.items()})

    fig, axes = plt.subplots(1, len(args.gammas), figsize=(5.0 * len(args.gammas), 4.4),
                             layout="constrained", sharey=True, squeeze=False)
    for ax, gamma in zip(axes[0], args.gammas):
        for label, _, beta, color in VARIANTS:
            values = curves[gamma, label]
            x = np.arange(1, values.shape[1] + 1) * args.every
            mean, low, high = mean_confidence_interval(values, axis=0)
            name = label if beta == 0 else f"{label} ({'beta' if 'simple' in label else 'eta'}"\
                                           f" {beta:g})"
            ax.plot(x, mean, color=color, lw=1.4, label=name)
            ax.fill_between(x, low, high, color=color, alpha=0.15, lw=0)
        ax.axhline(optimum, color="gray", ls="--", lw=1.2, label=f"optimal {optimum:.4f}")
        ax.set_title(f"gamma = {gamma:g}", fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("exact reward rate of the greedy policy")
    axes[0][0].legend(fontsize=8, loc="lower right", title="band: 95% CI of the mean",
                      title_fontsize=7)
    fig.suptitle(f"Discounted Q-learning on access control, with and without reward centering "
                 f"(alpha {args.alpha:g}, epsilon {args.epsilon:g}, {args.seeds} seeds)",
                 fontsize=11)
    print("figure:", save_figure(fig, out / "reward_centering.png"))


if __name__ == "__main__":
    main()
