"""Forward vs reverse KL on a bimodal target, and maximum-entropy control of the loop MDP.

Seed 002's closing figure, computed exactly on a grid: a Gaussian Q is fitted to
a bimodal P by gradient descent on the forward KL D(P || Q) (mode covering: it
matches P's mean and variance and sits between the modes) and on the reverse
KL D(Q || P) (mode seeking: from a start near one mode it settles on that mode,
narrower than P).  A softmax over the grid (free logits) is fitted the same
way: flexible enough to reach P, it does so forward, while reverse its
gradient, proportional to Q, leaves the far mode nearly empty for long.

The link to RL: with P(x) ~ exp(r(x) / beta), E_Q[r] + beta H(Q) =
beta log Z - beta D(Q || P), so the entropy-regularised objective is a reverse
KL to the Boltzmann distribution of rewards.  Its average-reward form is
solved exactly (avgreward.exact.soft_relative_value_iteration) on the loop
MDP, and the softmax actor-critic with entropy=beta (tabular features) is
trained at each temperature: their reward rate and entropy against beta.

Writes, into --out: kl_directions.png (the fits over P) and max_entropy.png
(rate and entropy against the temperature, exact and learned).

  python scripts/kl_directions.py                     # 6 temperatures x 8 seeds
  python scripts/kl_directions.py --quick             # a quick check
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

import avgreward
from avgreward import divergences as dv
from avgreward import exact
from avgreward.plotting import save_figure

ENV = "avgreward/LoopMDP-v0"


@dataclass
class Args:
    seeds: int = 8
    steps: int = 200_000
    temperatures: tuple = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
    fit_steps: int = 4000
    alpha_theta: float = 0.02
    out: str = "results/kl_directions"
    quick: bool = False


QUICK = dict(seeds=2, steps=20_000, temperatures=(0.25, 1.0, 4.0), fit_steps=400)


def parse_args(argv=None) -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=Args.seeds,
                        help="actor-critic runs per temperature (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=Args.steps,
                        help="steps per run (default: %(default)s)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=Args.temperatures,
                        help="entropy weights beta > 0 (default: %(default)s)")
    parser.add_argument("--fit-steps", type=int, default=Args.fit_steps,
                        help="gradient-descent steps of each KL fit (default: %(default)s)")
    parser.add_argument("--alpha-theta", type=float, default=Args.alpha_theta,
                        help="actor step size; the critic's is a quarter of it, R-bar's a "
                             "tenth of that (default: %(default)s)")
    parser.add_argument("--out", default=Args.out,
                        help="directory for the figures (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a quick check: {QUICK} (overrides those settings)")
    args = vars(parser.parse_args(argv))
    if args["quick"]:
        args.update(QUICK)
    args["temperatures"] = tuple(args["temperatures"])
    if any(not t > 0 for t in args["temperatures"]):
        parser.error(f"--temperatures must all be > 0, got {args['temperatures']}")
    for name in ("seeds", "steps", "fit_steps"):
        if args[name] < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {args[name]}")
    return Args(**args)


def bimodal(x):
    p = 0.5 * np.exp(-0.5 * ((x + 2.0) / 0.6) ** 2) + 0.5 * np.exp(-0.5 * ((x - 2.5) / 0.8) ** 2)
    return p / p.sum()


def kl_figure(args, out):
    x = np.linspace(-8.0, 8.0, 321)
    p = bimodal(x)
    dx = x[1] - x[0]
    forward = dv.fit(p, x, "forward", steps=args.fit_steps, learning_rate=0.5)
    reverse = dv.fit(p, x, "reverse", start=(1.5, 0.0), steps=args.fit_steps, learning_rate=0.5)
    start = -0.5 * (x - 2.5) ** 2
    free_forward = dv.fit(p, x, "forward", family="softmax", steps=args.fit_steps,
                          learning_rate=20.0)
    free_reverse = dv.fit(p, x, "reverse", family="softmax", start=start, steps=args.fit_steps,
                          learning_rate=20.0)
    mean, sd = p @ x, np.sqrt(p @ (x - p @ x) ** 2)
    print(f"P: mean {mean:.3f}, sd {sd:.3f}")
    for name, f in [("forward", forward), ("reverse", reverse)]:
        print(f"Gaussian, {name} KL: mu {f.params[0]:.3f}, sigma {np.exp(f.params[1]):.3f}, "
              f"D = {f.divergence[-1]:.4f}")
    fig, (ax_g, ax_s) = plt.subplots(1, 2, figsize=(12.0, 4.4), layout="constrained")
    for ax, (fwd, rev), title in [
            (ax_g, (forward, reverse), "Gaussian $Q_\\theta$: $(\\mu, \\log\\sigma)$"),
            (ax_s, (free_forward, free_reverse),
             f"softmax over the grid: free logits, {args.fit_steps} steps")]:
        ax.fill_between(x, p / dx, color="0.8", label="$P$ (bimodal target)")
        ax.plot(x, fwd.q / dx, color="tab:blue", lw=2,
                label=f"forward $D(P\\|Q)$ = {fwd.divergence[-1]:.3f}: mode covering")
        ax.plot(x, rev.q / dx, color="tab:red", lw=2,
                label=f"reverse $D(Q\\|P)$ = {rev.divergence[-1]:.3f}: mode seeking")
        ax.set_title(title)
        ax.set_xlabel("x")
        ax.set_ylabel("density")
        ax.legend(loc="upper left", fontsize=8)
    path = save_figure(fig, out / "kl_directions.png")
    plt.close(fig)
    print(f"figure: {path}")


def learned(model, beta, args):
    """Per seed, the exact reward rate and entropy of the policy the actor-critic learned."""
    agent = avgreward.SoftmaxActorCritic(
        alpha_w=args.alpha_theta / 4, alpha_theta=args.alpha_theta,
        alpha_rbar=args.alpha_theta / 40, entropy=beta)
    rates, entropies = [], []
    for seed in range(args.seeds):
        result = avgreward.train(ENV, agent, args.steps, seed=seed)
        pi = exact.policy_on_states(model, result.policy)
        ev = exact.evaluate(model, pi)
        H = -np.sum(pi * np.log(np.where(pi > 0, pi, 1.0)), axis=1)
        rates.append(ev.reward_rate)
        entropies.append(float(ev.stationary @ H))
    return np.array(rates), np.array(entropies)


def max_entropy_figure(args, out):
    model = exact.model_of(ENV)
    best = exact.policy_iteration(model).reward_rate
    betas = np.array(sorted(args.temperatures))
    fine = np.geomspace(betas.min() / 2, betas.max() * 2, 60)
    soft = [exact.soft_relative_value_iteration(model, b) for b in fine]
    rows = []
    for beta in betas:
        rates, entropies = learned(model, beta, args)
        exact_at = exact.soft_relative_value_iteration(model, beta)
        rows.append((rates, entropies))
        print(f"beta {beta:g}: exact rate {exact_at.reward_rate:.4f}, entropy "
              f"{exact_at.entropy:.4f}; learned rate {rates.mean():.4f}, entropy "
              f"{entropies.mean():.4f} ({args.seeds} seeds)")
    fig, (ax_r, ax_h) = plt.subplots(1, 2, figsize=(12.0, 4.4), layout="constrained")
    for ax, exact_values, index, label in [
            (ax_r, [s.reward_rate for s in soft], 0, "reward rate $r(\\pi_\\beta)$"),
            (ax_h, [s.entropy for s in soft], 1, "entropy (nats per step)")]:
        ax.plot(fine, exact_values, color="k", lw=1.8, label="exact soft optimum")
        means = np.array([r[index].mean() for r in rows])
        spread = np.array([r[index].std() for r in rows])
        ax.errorbar(betas, means, yerr=spread, fmt="o", color="tab:orange", capsize=3,
                    label=f"actor-critic, entropy=$\\beta$ ({args.seeds} seeds, "
                          f"{args.steps:,} steps)")
        ax.set_xscale("log")
        ax.set_xlabel("temperature $\\beta$ (the entropy weight)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    ax_r.axhline(best, color="tab:green", ls="--", lw=1, label="optimal rate (no entropy)")
    ax_r.legend(fontsize=8)
    ax_h.axhline(np.log(2), color="0.5", ls=":", lw=1)
    fig.suptitle("Maximum-entropy control of the loop MDP")
    path = save_figure(fig, out / "max_entropy.png")
    plt.close(fig)
    print(f"figure: {path}")


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kl_figure(args, out)
    max_entropy_figure(args, out)
    print(f"results in {out}/")


if __name__ == "__main__":
    main()
