"""The natural actor-critic beside the differential actor-critic, against exact truth.

Bhatnagar, Sutton, Ghavamzadeh & Lee (2009), Algorithm 3
(avgreward.NaturalActorCritic: advantage weights u over the compatible features
psi = grad ln pi, actor step theta += alpha_theta u) and the differential
actor-critic (avgreward.SoftmaxActorCritic, Sutton & Barto 13.6) on the loop
MDP and the aliased gridworld, --seeds seeds each.  Every --steps / --points
steps the run is paused (train(..., init=result) continues it to the bit) and
its policy measured exactly: its reward rate (avgreward.exact.evaluate) and,
for the natural actor-critic, the cosine between its u and the exact natural
gradient F^+ grad J at its theta (avgreward.exact.natural_gradient), and
between u and the plain gradient grad J.

Figure: (a), (b) the exact reward rate of each learner's policy against steps,
mean over seeds with a 95% t interval, beside the exact optimum (loop MDP: 0.4,
the right loop; gridworld: 2/9, the best policy of what the agent sees) and
the best deterministic policy of the gridworld (0); (c) the cosines over the
run, mean and 95% interval over the seeds whose gradient is not yet ~0.

Writes, into --out: natural_actor_critic.png, natural_actor_critic.csv (one row
per task, learner, seed and point) and natural_actor_critic.json.

  python scripts/natural_actor_critic.py            # 30 seeds
  python scripts/natural_actor_critic.py --quick    # 3 seeds, a tenth of the steps
"""

import argparse
import csv
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

import avgreward
from avgreward import envs, exact
from avgreward.plotting import confidence_band, save_figure

TASKS = {"loop MDP": ("avgreward/LoopMDP-v0", 20_000, 0.1),
         "aliased gridworld": ("avgreward/AliasedGridworld-v0", 100_000, 0.05)}
GRADIENT_FLOOR = 1e-6  # |grad J| below it: the policy has converged, no direction to compare


@dataclass
class Args:
    seeds: int = 30
    scale: float = 1.0
    points: int = 40
    alpha_w: float = 0.1
    alpha_theta: float = 1e-3
    alpha_rbar: float = 0.01
    out: str = "results/natural_actor_critic"


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int,
                        help=f"seeds per task and learner (default: {Args.seeds})")
    parser.add_argument("--scale", type=float,
                        help="steps per run as a multiple of 20,000 (loop MDP) and 100,000 "
                             f"(gridworld) (default: {Args.scale})")
    parser.add_argument("--points", type=int,
                        help=f"measurements along each run (default: {Args.points})")
    parser.add_argument("--quick", action="store_true",
                        help="3 seeds, a tenth of the steps, 10 points (unless given): a look "
                             "in seconds")
    parser.add_argument("--alpha-w", type=float, default=Args.alpha_w,
                        help="critic step size of both learners (default: %(default)s)")
    parser.add_argument("--alpha-theta", type=float, default=Args.alpha_theta,
                        help="the natural actor-critic's actor step size, their beta "
                             "(default: %(default)s)")
    parser.add_argument("--alpha-rbar", type=float, default=Args.alpha_rbar,
                        help="step size of R-bar, both learners (default: %(default)s)")
    parser.add_argument("--out", default=Args.out, help="output directory (default: %(default)s)")
    a = parser.parse_args()
    for name, full, quick in (("seeds", Args.seeds, 3), ("scale", Args.scale, 0.1),
                              ("points", Args.points, 10)):
        if getattr(a, name) is None:
            setattr(a, name, quick if a.quick else full)
    if a.seeds < 2:
        parser.error(f"--seeds must be at least 2 (for an interval), got {a.seeds}")
    if not a.scale > 0 or a.points < 1:
        parser.error("--scale must be > 0 and --points at least 1")
    return Args(a.seeds, a.scale, a.points, a.alpha_w, a.alpha_theta, a.alpha_rbar, a.out)


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def run(env_id, agent, model, X, seed, steps, points):
    """The exact rate at each point of one run, and (natural) the cosines of u there."""
    result, rows = None, []
    for p in range(points):
        n = steps * (p + 1) // points - steps * p // points
        result = avgreward.train(env_id, agent, n, seed=seed, init=result)
        theta = result.weights["theta"]
        rate = exact.evaluate(model, exact.softmax_policy(theta, X)).reward_rate
        row = {"step": steps * (p + 1) // points, "rate": rate}
        if "advantage" in result.weights:
            ng = exact.natural_gradient(model, theta, X)
            u = result.weights["advantage"].reshape(-1)
            alive = np.linalg.norm(ng.gradient) > GRADIENT_FLOOR and np.linalg.norm(u) > 0
            row["cos_natural"] = cosine(u, ng.natural) if alive else float("nan")
            row["cos_plain"] = cosine(u, ng.gradient) if alive else float("nan")
        rows.append(row)
    return rows


def band(values):
    """Mean and 95% t interval per column over the finite entries (NaN where < 2)."""
    values = np.asarray(values, dtype=float)
    mean, low, high = (np.full(values.shape[1], np.nan) for _ in range(3))
    for j in range(values.shape[1]):
        column = values[np.isfinite(values[:, j]), j]
        if column.size >= 2:
            m, lo, hi = confidence_band(column[:, None])
            mean[j], low[j], high[j] = m[0], lo[0], hi[0]
    return mean, low, high


def main():
    args = parse_args()
    out = Path(args.out)
    natural = avgreward.NaturalActorCritic(alpha_w=args.alpha_w, alpha_theta=args.alpha_theta,
                                           alpha_rbar=args.alpha_rbar)
    started = time.perf_counter()
    records, summary = [], {}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colours = {"natural actor-critic": "tab:blue", "differential actor-critic": "tab:orange"}
    for ax, (task, (env_id, base_steps, ac_theta)) in zip(axes[:2], TASKS.items()):
        model = exact.model_of(env_id)
        X = exact.feature_matrix(model, env_id)
        steps = max(args.points, int(base_steps * args.scale))
        optimum = (exact.relative_value_iteration(model).reward_rate if task == "loop MDP"
                   else exact.evaluate(model, exact.policy_on_states(
                       model, np.array([[0, 1, 0, 0], [0, 0.5, 0, 0.5], [0, 0, 1, 0],
                                        [0, 0, 0, 1]], dtype=float))).reward_rate)
        learners = {"natural actor-critic": natural,
                    "differential actor-critic": avgreward.SoftmaxActorCritic(
                        alpha_w=args.alpha_w, alpha_theta=ac_theta, alpha_rbar=args.alpha_rbar)}
        summary[task] = {"env": env_id, "steps": steps, "optimum": optimum, "learners": {}}
        for name, agent in learners.items():
            runs = [run(env_id, agent, model, X, seed, steps, args.points)
                    for seed in range(args.seeds)]
            for seed, rows in enumerate(runs):
                records += [{"task": task, "learner": name, "seed": seed, **row} for row in rows]
            x = np.array([row["step"] for row in runs[0]])
            rates = np.array([[row["rate"] for row in rows] for rows in runs])
            mean, low, high = band(rates)
            ax.plot(x, mean, color=colours[name], label=name)
            ax.fill_between(x, low, high, color=colours[name], alpha=0.25, lw=0)
            final = rates[:, -1]
            summary[task]["learners"][name] = {
                "agent": agent.to_dict(), "final_rate_mean": float(final.mean()),
                "final_rate_min": float(final.min())}
            print(f"{task:18s} {name:26s} final exact rate {final.mean():.4f} "
                  f"(min {final.min():.4f}, optimum {optimum:.4f})")
            if name == "natural actor-critic":
                for key, style, label in (("cos_natural", "-", "natural gradient F$^+\\nabla J$"),
                                          ("cos_plain", ":", "plain gradient $\\nabla J$")):
                    c_mean, c_low, c_high = band([[row[key] for row in rows] for rows in runs])
                    colour = "tab:green" if task == "loop MDP" else "tab:purple"
                    axes[2].plot(x / steps, c_mean, style, color=colour,
                                 label=f"{task}: u vs {label}")
                    if key == "cos_natural":
                        axes[2].fill_between(x / steps, c_low, c_high, color=colour,
                                             alpha=0.2, lw=0)
                    summary[task][key] = [None if not np.isfinite(v) else float(v)
                                          for v in c_mean]
        ax.axhline(optimum, color="k", ls="--", lw=1, label=f"exact optimum {optimum:.3f}")
        if task == "aliased gridworld":
            ax.axhline(0.0, color="tab:red", ls=":", lw=1,
                       label="best deterministic policy: 0")
        ax.set(title=f"({'ab'[list(TASKS).index(task)]}) {task}", xlabel="steps",
               ylabel="exact reward rate of the policy")
        ax.legend(fontsize=8, loc="lower right")
    axes[2].set(title="(c) cosine of its u with the exact gradients",
                xlabel="fraction of the run", ylabel="cosine", ylim=(-0.05, 1.05))
    axes[2].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Mean over {args.seeds} seeds; bands: 95% t intervals of the mean")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out / "natural_actor_critic.png")
    with open(out / "natural_actor_critic.csv", "w", newline="") as f:
        fields = ["task", "learner", "seed", "step", "rate", "cos_natural", "cos_plain"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(records)
    (out / "natural_actor_critic.json").write_text(json.dumps(
        {"args": asdict(args), "tasks": summary,
         "seconds": time.perf_counter() - started}, indent=2))
    print(f"wrote {out}/natural_actor_critic.png, .csv and .json "
          f"in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
