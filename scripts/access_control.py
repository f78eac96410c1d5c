"""Sutton & Barto's Figure 10.5: differential Sarsa on access-control queuing, against the optimum.

Differential semi-gradient Sarsa (section 10.3) with the book's settings,
alpha = 0.01, beta = 0.01, epsilon = 0.1, tabular (one-hot features of the 44
states), 2,000,000 steps; and differential Q-learning (Wan, Naik & Sutton
2021) with alpha = 0.01, eta = 1 on the same task.  Next to each learned
result, the exact optimum from the model (relative value iteration, checked by
policy iteration): for each learner, the greedy policy of a seed of median
rate (accept or reject, per priority and number of free servers) and the
differential value of its best action against the number of free servers,
beside the exact ones; each seed's learned greedy policy's exact reward rate
against the optimal 2.7476; and the learning curves.

Writes, into --out: experiment.json, runs/ (resumable) and access_control.png.

  python scripts/access_control.py                          # 10 seeds x 2,000,000 steps
  python scripts/access_control.py --seeds 2 --steps 20000  # a quick check
"""

import argparse
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

import avgreward
from avgreward import exact
from avgreward.experiment import run_experiment
from avgreward.plotting import save_figure
from avgreward.envs import access_control as ac

ENV = "avgreward/AccessControl-v0"
PRIORITIES = (1, 2, 4, 8)
COLORS = ("tab:blue", "tab:green", "tab:orange", "tab:red")


@dataclass
class Args:
    seeds: int = 10
    steps: int = 2_000_000
    alpha: float = 0.01
    beta: float = 0.01
    epsilon: float = 0.1
    eta: float = 1.0
    out: str = "results/access_control"
    workers: int | None = None
    new: bool = False


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=Args.seeds,
                        help="runs per learner (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=Args.steps,
                        help="steps per run (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=Args.alpha,
                        help="step size of both learners (default: %(default)s)")
    parser.add_argument("--beta", type=float, default=Args.beta,
                        help="Sarsa's R-bar step size (default: %(default)s)")
    parser.add_argument("--epsilon", type=float, default=Args.epsilon,
                        help="exploration (default: %(default)s)")
    parser.add_argument("--eta", type=float, default=Args.eta,
                        help="Q-learning's R-bar step is eta * alpha (default: %(default)s)")
    parser.add_argument("--out", default=Args.out,
                        help="directory for the runs and figure (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=Args.workers,
                        help="worker processes (default: all cores)")
    parser.add_argument("--new", action="store_true",
                        help="use a fresh directory if --out holds an experiment")
    return Args(**vars(parser.parse_args()))


def greedy(q):
    """The deterministic greedy policy of action values ``q[state, action]`` (ties: reject)."""
    policy = np.zeros_like(q)
    policy[np.arange(len(q)), np.argmax(q, axis=1)] = 1.0
    return policy


def policy_panel(ax, title, accept):
    """Accept (A) or reject (R) per priority and number of free servers."""
    cmap = ListedColormap(["#f2f2f2", "#4c72b0"])
    table = accept.reshape(ac.N_SERVERS + 1, ac.N_PRIORITIES)[1:].T  # priorities x free
    ax.imshow(table, cmap=cmap, vmin=0, vmax=1, origin="lower", aspect="auto",
              extent=(0.5, ac.N_SERVERS + 0.5, -0.5, 3.5))
    for p in range(ac.N_PRIORITIES):
        for n in range(1, ac.N_SERVERS + 1):
            ax.text(n, p, "A" if table[p, n - 1] else "R", ha="center", va="center",
                    fontsize=8, color="white" if table[p, n - 1] else "0.3")
    ax.set_yticks(range(4), [str(x) for x in PRIORITIES])
    ax.set_xticks(range(1, ac.N_SERVERS + 1))
    ax.set_xlabel("number of free servers")
    ax.set_ylabel("priority")
    ax.set_title(f"policy: {title}\nA = accept, R = reject", fontsize=9)


def value_panel(ax, name, q, v_exact, mu):
    """Learned differential value of the best action against the exact optimal one."""
    v_learned = q.max(axis=1) - mu @ q.max(axis=1)  # normalised as the exact v: mu . v = 0
    for p, color in zip(range(ac.N_PRIORITIES), COLORS):
        states = [ac.state_index(n, p) for n in range(ac.N_SERVERS + 1)]
        ax.plot(range(ac.N_SERVERS + 1), v_learned[states], "-o", color=color, ms=3, lw=1.4,
                label=f"priority {PRIORITIES[p]}, learned")
        ax.plot(range(ac.N_SERVERS + 1), v_exact[states], "--", color=color, lw=1.0,
                label=f"priority {PRIORITIES[p]}, exact")
    ax.set_xlabel("number of free servers")
    ax.set_ylabel("differential value of the best action\n(normalised: mu . v = 0)")
    ax.set_title(f"value of the best action, {name}\n(Figure 10.5, lower panel)", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)


def main():
    args = parse_args()
    model = ac.access_control_model()
    features = exact.feature_matrix(model, ENV)
    best = exact.relative_value_iteration(model)
    checked = exact.policy_iteration(model)
    assert np.array_equal(best.policy, checked.policy)
    always = exact.evaluate(model, np.tile([0.0, 1.0], (model.n_states, 1))).reward_rate
    uniform = exact.evaluate(model, np.full((model.n_states, 2), 0.5)).reward_rate
    print(f"exact: optimal reward rate {best.reward_rate:.4f} (relative value iteration = "
          f"policy iteration); always accept {always:.4f}; random {uniform:.4f}")

    agents = {
        "differential Sarsa": avgreward.DifferentialSarsa(alpha=args.alpha, beta=args.beta,
                                                          epsilon=args.epsilon),
        "differential Q-learning": avgreward.DifferentialQLearning(
            alpha=args.alpha, eta=args.eta, epsilon=args.epsilon),
    }
    try:
        experiment = run_experiment(args.out, ENV, list(agents.values()), args.seeds,
                                    args.steps, workers=args.workers, new=args.new)
    except ValueError as error:
        raise SystemExit(f"access_control.py: {error}") from None
    out = experiment.path
    print(f"results in {out}/ ({experiment.summary()})")

    learned = {}
    for i, name in enumerate(agents):
        seeds = experiment.finished_seeds(i)
        qs = [features @ experiment.result(i, s).weights["w"] for s in seeds]
        rates = np.array([exact.evaluate(model, greedy(q)).reward_rate for q in qs])
        learned[name] = (qs, rates)
        print(f"{name}: exact reward rate of the learned greedy policy, mean {rates.mean():.4f}"
              f" (min {rates.min():.4f}, max {rates.max():.4f}) over {len(seeds)} seeds; "
              f"{np.sum(rates > 0.98 * best.reward_rate)} within 2% of the optimum")

    fig = plt.figure(figsize=(18.0, 8.0), layout="constrained")
    grid = fig.add_gridspec(2, 4)
    typical = {}  # per learner, a seed of median rate: the one its panels show
    for name, (qs, rates) in learned.items():
        typical[name] = qs[int(np.argmax(rates >= np.median(rates)))]
    panels = [(f"learned ({name}, a seed of median rate)", greedy(q)[:, 1])
              for name, q in typical.items()]
    panels.append(("exact optimum (relative value iteration)", best.policy[:, 1]))
    for col, (title, accept) in enumerate(panels):
        policy_panel(fig.add_subplot(grid[0, col]), title, accept)
    mu = exact.evaluate(model, best.policy).stationary
    for col, (name, q) in enumerate(typical.items()):
        value_panel(fig.add_subplot(grid[1, col]), name, q, best.v, mu)

    ax = fig.add_subplot(grid[1, 2:])
    for k, (name, (_, rates)) in enumerate(learned.items()):
        x = k + np.linspace(-0.15, 0.15, len(rates))
        ax.plot(x, rates, "o", color=("tab:blue", "tab:purple")[k], ms=5,
                label=f"{name}: each seed's learned greedy policy")
    ax.axhline(best.reward_rate, color="black", ls="--", lw=1.2,
               label=f"optimal {best.reward_rate:.4f}")
    ax.axhline(0.98 * best.reward_rate, color="gray", ls=":", lw=1.0, label="2% below")
    ax.axhline(always, color="tab:red", ls="-.", lw=1.0, label=f"always accept {always:.3f}")
    ax.set_xticks(range(len(learned)), list(learned))
    ax.set_ylabel("exact reward rate (from the model)")
    ax.set_title(f"{args.steps:,} steps, alpha {args.alpha:g}, epsilon {args.epsilon:g}",
                 fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)

    ax = fig.add_subplot(grid[0, 3])
    for i, (name, color) in enumerate(zip(agents, ("tab:blue", "tab:purple"))):
        mean = experiment.rewards(i).mean(axis=0)
        group = max(1, mean.size // 100)  # about 100 points: the bins' means, merged
        n = mean.size // group * group
        ax.plot(experiment.bin_steps[group - 1:n:group], mean[:n].reshape(-1, group).mean(1),
                color=color, lw=1.2, label=name)
    ax.axhline(best.reward_rate, color="black", ls="--", lw=1.2, label="optimal")
    ax.set_xlabel("step")
    ax.set_ylabel("reward per step\n(mean over seeds, about 100 bins)")
    ax.set_title("learning curves (epsilon-greedy behaviour)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    print("figure:", save_figure(fig, out / "access_control.png"))


if __name__ == "__main__":
    main()
