"""Bring your own environment: RiverSwim, declared here, learned in the fused loop.

This script is the template for running an environment of your own in the
package's fused (numba-compiled) training loop.  It does three things:

1. **Declares** RiverSwim (below): three ``@numba.njit`` functions over a
   small float64 state array (``reset``, ``step``, ``observe``), an exact
   model of the same task (:class:`avgreward.envs.model.TabularModel`, optional, for
   exact analysis), a :class:`avgreward.envs.declare.FusedEnv` that bundles them, a
   gymnasium class (``DeclaredEnv`` does the work), and a registered id.
   ``avgreward.train("RiverSwim-v0", ...)`` then compiles the loop with
   these functions inlined and runs it at full speed.
2. **Learns** it with the softmax actor-critic, over several seeds.
3. **Checks** the result against the exact optimal reward rate, computed
   from the model by evaluating all 2^6 = 64 deterministic policies.

The task: RiverSwim (Strehl & Littman 2008), in the 6-state form of the
package's spec (``shared/spec/environments.md``), close to Osband, Russo &
Van Roy (2013):

* states 0..5 in a row, start in state 0 (the river bank at the left);
* action 0 (left, with the current) always moves one state left
  (state 0 stays at 0);
* action 1 (right, against the current) in states 1..4 moves right with
  probability 0.35, stays with 0.6 and is pushed left with 0.05; in state 0
  it moves right with 0.4 and stays with 0.6 (Osband et al.'s released code,
  TabulaRL's ``make_riverSwim``, has these two swapped); in state 5 it stays
  with 0.6 and is pushed left with 0.4;
* rewards depend on the state and action only: 5/1000 for left in state 0,
  1 for right in state 5, else 0;
* continuing: no episode ever ends.

(Strehl & Littman's original pays 5 and 10,000 and has other probabilities;
Osband et al.'s rescaled version is the one most papers now use.)  Swimming
right everywhere is optimal (exact reward rate 0.4286) but looks bad at
first: the uniform random policy earns 0.0027, rarely gets near state 5, and
left in state 0 pays at once.  That makes RiverSwim a hard exploration
problem: with a large actor step size some runs settle on staying left.

References: A. L. Strehl and M. L. Littman, "An analysis of model-based
interval estimation for Markov decision processes", JCSS 74(8), 2008.
I. Osband, D. Russo and B. Van Roy, "(More) efficient reinforcement learning
via posterior sampling", NIPS 2013.

To use the declaration elsewhere, import this file (``import custom_env``
with scripts/ on the path).  Importing it by path with importlib, put the
module into ``sys.modules`` before running it, as ``import`` does: numba's
cache finds the compiled functions' module by name, so the loop compiled for
a module it cannot find again is not cached (it compiles in every process).
tests/test_scripts.py checks that the simulator and the model agree (the
transition frequencies and the rewards) and that the fused loop equals the
package's plain-Python reference: worth copying for an environment of yours.

Writes, into --out: riverswim.png (learning curve against the exact optimal
and random reward rates).

  python scripts/custom_env.py                          # 10 seeds x 200,000 steps
  python scripts/custom_env.py --seeds 2 --steps 2000   # a quick check
"""

import argparse
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numba
import numpy as np

import avgreward
from avgreward import exact
from avgreward.envs.declare import DeclaredEnv, FusedEnv
from avgreward.envs.model import TabularModel

# ---------------------------------------------------------------------------
# 1. The environment: RiverSwim, declared for the fused loop.
#
# The state is a float64 array of STATE_SIZE numbers (here one: the index of
# the state, as a float); the observation another (here the same index).
# Constants the jitted functions read are compiled in; the package notices
# when you edit them (or anything in this file) and recompiles the loop.

ENV_ID = "RiverSwim-v0"
N_STATES = 6
N_ACTIONS = 2
LEFT, RIGHT = 0, 1
STATE_SIZE = 1
OBS_SIZE = 1

# Action RIGHT in the middle states 1..4: (moved right, stayed, pushed left).
P_UP, P_STAY, P_DOWN = 0.35, 0.6, 0.05
# Action RIGHT at the two ends.
P_UP_FROM_FIRST = 0.4   # state 0: right with 0.4, else stays
P_STAY_AT_LAST = 0.6    # state 5: stays with 0.6, else pushed left
REWARD_LEFT_AT_FIRST = 5.0 / 1000.0
REWARD_RIGHT_AT_LAST = 1.0


@numba.njit(cache=True)
def riverswim_reset(state, u):
    """Start in state 0; ``u`` is unused (``random_reset=False``)."""
    state[0] = 0.0


@numba.njit(cache=True)
def riverswim_step(state, action, u, next_state):
    """One step: the next state into ``next_state``, the reward returned.

    ``action`` is 0.0 (left) or 1.0 (right); ``u`` is a uniform draw in
    [0, 1) (``random_step=True``), turned into the outcome by the inverse
    CDF of the outcome's distribution.  The reward depends on the state and
    the action only.
    """
    s = int(state[0])
    reward = 0.0
    if int(action) == LEFT:
        if s == 0:
            reward = REWARD_LEFT_AT_FIRST
        nxt = max(s - 1, 0)
    elif s == 0:
        nxt = 1 if u < P_UP_FROM_FIRST else 0
    elif s == N_STATES - 1:
        reward = REWARD_RIGHT_AT_LAST
        nxt = s if u < P_STAY_AT_LAST else s - 1
    elif u < P_UP:
        nxt = s + 1
    elif u < P_UP + P_STAY:
        nxt = s
    else:
        nxt = s - 1
    next_state[0] = float(nxt)
    return reward


@numba.njit(cache=True)
def riverswim_observe(state, obs):
    """Fully observed: the observation is the state index."""
    obs[0] = state[0]


def riverswim_model():
    """The exact model, written from the description (not from the step function).

    Returns
    -------
    TabularModel
        ``P[s, a, s']``, ``R[s, a]``, ``start`` (all mass on state 0) and
        ``observations[s] = [s]`` (what ``riverswim_observe`` writes).
    """
    P = np.zeros((N_STATES, N_ACTIONS, N_STATES))
    R = np.zeros((N_STATES, N_ACTIONS))
    for s in range(N_STATES):
        P[s, LEFT, max(s - 1, 0)] = 1.0
    for s in range(1, N_STATES - 1):
        P[s, RIGHT, s + 1] = P_UP
        P[s, RIGHT, s] = P_STAY
        P[s, RIGHT, s - 1] = P_DOWN
    first, last = 0, N_STATES - 1
    P[first, RIGHT, first + 1] = P_UP_FROM_FIRST
    P[first, RIGHT, first] = 1.0 - P_UP_FROM_FIRST
    P[last, RIGHT, last] = P_STAY_AT_LAST
    P[last, RIGHT, last - 1] = 1.0 - P_STAY_AT_LAST
    R[first, LEFT] = REWARD_LEFT_AT_FIRST
    R[last, RIGHT] = REWARD_RIGHT_AT_LAST
    start = np.zeros(N_STATES)
    start[0] = 1.0
    observations = np.arange(N_STATES, dtype=np.float64).reshape(N_STATES, OBS_SIZE)
    return TabularModel(P=P, R=R, start=start, observations=observations)


RIVERSWIM = FusedEnv(
    name="RiverSwim",
    reset=riverswim_reset, step=riverswim_step, observe=riverswim_observe,
    state_size=STATE_SIZE, obs_size=OBS_SIZE, n_actions=N_ACTIONS,
    obs_low=0.0, obs_high=float(N_STATES - 1),
    random_step=True,                               # step uses its uniform draw u
    model=riverswim_model,                          # optional: the exact model
    features=lambda: avgreward.one_hot(N_STATES),   # optional: one feature per state
)


class RiverSwimEnv(DeclaredEnv):
    """RiverSwim as a gymnasium environment (``Box`` observation, ``Discrete(2)`` actions)."""

    fused = RIVERSWIM


# No step limit and no constructor arguments: the fused loop runs the
# declared dynamics only.  The guard keeps a second import of this file
# (a benchmark, a test) from re-registering.
if ENV_ID not in gymnasium.registry:
    gymnasium.register(ENV_ID, entry_point=RiverSwimEnv, max_episode_steps=None)


# ---------------------------------------------------------------------------
# 2. The experiment.


@dataclass(frozen=True)
class Args:
    seeds: int = 10
    steps: int = 200_000
    # A small actor step size keeps the policy exploring long enough to find
    # the reward upstream (0.1 and above: some seeds settle on staying left).
    alpha_w: float = 0.3
    alpha_theta: float = 0.02
    alpha_rbar: float = 0.01
    tau: float = 1.0
    final: float = 0.1
    out: str = "results/custom_env"


def parse_args(argv=None) -> Args:
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
    parser.add_argument("--tau", type=float, default=Args.tau,
                        help="softmax temperature (default: %(default)s)")
    parser.add_argument("--final", type=float, default=Args.final,
                        help="fraction of each run (its end) whose mean reward is reported "
                             "(default: %(default)s)")
    parser.add_argument("--out", default=Args.out,
                        help="directory for the figure (default: %(default)s)")
    return Args(**vars(parser.parse_args(argv)))


def agent_of(args: Args) -> avgreward.SoftmaxActorCritic:
    return avgreward.SoftmaxActorCritic(alpha_w=args.alpha_w, alpha_theta=args.alpha_theta,
                                        alpha_rbar=args.alpha_rbar, tau=args.tau)


def exact_rates(model):
    """The exact reward rates: ``(best actions per state, optimal rate, uniform random rate)``.

    A finite MDP has a deterministic optimal policy, so the best of all
    ``2^6 = 64`` of them is optimal.  A policy is a table
    ``policy[s, a] = pi(a | s)``; the rate is from the start state.
    """
    best_actions, best_rate = None, -math.inf
    for actions in itertools.product(range(model.n_actions), repeat=model.n_states):
        policy = np.eye(model.n_actions)[list(actions)]  # one-hot rows
        rate = exact.evaluate(model, policy).reward_rate
        if rate > best_rate:
            best_actions, best_rate = np.array(actions), rate
    uniform = np.full((model.n_states, model.n_actions), 1.0 / model.n_actions)
    return best_actions, best_rate, exact.evaluate(model, uniform).reward_rate


def main(argv=None):
    args = parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    from avgreward.plotting import learning_curve, save_figure
    from avgreward.stats import mean_confidence_interval

    model = RIVERSWIM.model()
    best_actions, optimal, random_rate = exact_rates(model)
    names = "LR"
    print(f"exact reward rates: optimal {optimal:.4f} (policy "
          f"{''.join(names[a] for a in best_actions)} in states 0..5), "
          f"uniform random {random_rate:.4f}")

    agent = agent_of(args)
    print(f"{agent}\ntraining {args.seeds} seeds x {args.steps:,} steps on {ENV_ID} "
          "(fused loop) ...")
    bin_size = max(1, args.steps // 200)
    results = [avgreward.train(ENV_ID, agent, args.steps, seed=seed, bin_size=bin_size)
               for seed in range(args.seeds)]
    rewards = np.stack([r.rewards for r in results])  # (seeds, bins): mean reward per bin
    bin_steps = results[0].info["bin_steps"]

    # Performance: the mean reward over the last `final` fraction of each run.
    n_final = max(1, round(args.final * rewards.shape[1]))
    final = rewards[:, -n_final:].mean(axis=1)
    mean, low, high = mean_confidence_interval(final)
    # The learned policies' exact reward rates (no sampling noise).
    learned = np.array([exact.evaluate(model, exact.policy_on_states(model, r.policy)).reward_rate
                        for r in results])
    p_right = np.array([[r.policy([float(s)])[RIGHT] for s in range(N_STATES)] for r in results])

    print("\nP(right | state) after training, mean over seeds: "
          + " ".join(f"{p:.3f}" for p in p_right.mean(axis=0)))
    print(f"{'':44s} reward rate")
    print(f"{'optimal (exact, best of 64 policies)':44s} {optimal:.4f}")
    print(f"{'learned, last ' + f'{args.final:.0%} of steps (95% CI)':44s} {float(mean):.4f} "
          f"[{float(low):.4f}, {float(high):.4f}]  = {float(mean) / optimal:.1%} of optimal")
    print(f"{'learned policies, exact':44s} {learned.mean():.4f} "
          f"(seeds {learned.min():.4f} .. {learned.max():.4f})")
    print(f"{'uniform random (exact)':44s} {random_rate:.4f}")
    near = np.sum(learned >= 0.95 * optimal)
    print(f"{near} of {len(results)} seeds learned a policy within 5% of optimal")

    fig, ax = plt.subplots(figsize=(7.0, 4.4), layout="constrained")
    learning_curve(rewards, steps=bin_steps, ax=ax, label="softmax actor-critic",
                   title="RiverSwim (6 states): softmax actor-critic against the exact rates")
    ax.axhline(optimal, color="tab:green", ls="--", lw=1.2,
               label=f"optimal policy (exact): {optimal:.3f}")
    ax.axhline(random_rate, color="tab:red", ls="--", lw=1.2,
               label=f"uniform random policy (exact): {random_rate:.4f}")
    ax.set_ylim(-0.02, 0.5)
    ax.legend(loc="center right", fontsize=9, title_fontsize=9,
              title="mean over seeds, band: 95% CI (Student t);\nthin lines: single seeds")
    out = Path(args.out)
    print("\nfigure:", save_figure(fig, out / "riverswim.png"))
    return {"optimal": optimal, "random": random_rate, "final": final, "learned": learned}


if __name__ == "__main__":
    main()
