"""Pendulum swing-up with the softmax actor-critic: 30 seeds, learning curve, maps and a GIF.

The spec's reference setting (Sutton & Barto, section 13.6): 32 tilings of
8 x 8 over (angle, velocity), actor 2^-2, critic 2^1, R-bar 2^-6, one-step
traces.  Prints the reward rate reached and writes, into --out:

  experiment.json, runs/          the runs (run again to resume or reuse them)
  learning_curve.png              reward per step, mean over seeds, 95% band
  exponential_average.png         bias-corrected exponential average of reward
  policy_map.png, value_map.png   one seed's learned policy and critic
  swingup.gif                     that seed's policy swinging the pendulum up

  python scripts/swingup_softmax.py                          # 30 seeds x 50,000 steps
  python scripts/swingup_softmax.py --seeds 2 --steps 3000   # a quick check
"""

import argparse
import gc
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import avgreward
from avgreward.animation import animate_policy, rollout
from avgreward.evaluation import reward_bounds
from avgreward.experiment import run_experiment
from avgreward.plotting import (
    exponential_average_curve,
    learning_curve,
    policy_map,
    save_figure,
    value_map,
)
from avgreward.stats import mean_confidence_interval

ENV = "avgreward/PendulumSwingUp-v0"


@dataclass
class Args:
    seeds: int = 30
    steps: int = 50_000
    out: str = "results/swingup_softmax"
    workers: int | None = None
    gif_steps: int = 600
    new: bool = False


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=Args.seeds,
                        help="number of seeds, one run each (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=Args.steps,
                        help="steps per run (default: %(default)s)")
    parser.add_argument("--out", default=Args.out,
                        help="directory for the runs and figures (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=Args.workers,
                        help="worker processes (default: all cores)")
    parser.add_argument("--gif-steps", type=int, default=Args.gif_steps,
                        help="steps shown in the GIF (default: %(default)s)")
    parser.add_argument("--new", action="store_true",
                        help="use a fresh directory if --out holds an experiment")
    return Args(**vars(parser.parse_args()))


def main():
    args = parse_args()
    # What the imports made (numba, gymnasium, the package: most of the process's
    # objects) lives until exit: the garbage collector need not walk it again at
    # every pass and at exit, nor the GIF's forked process copy the pages it touches.
    # And the job makes few reference cycles (matplotlib's figures) and ends in
    # seconds: no collections until then (0.07 s of a 2 s job).
    gc.freeze()
    gc.disable()
    agent = avgreward.SoftmaxActorCritic.pendulum_reference()
    print(f"{agent}\ntraining {args.seeds} seeds x {args.steps:,} steps on {ENV} ...")
    started = time.perf_counter()
    experiment = run_experiment(args.out, ENV, agent, args.seeds, args.steps,
                                workers=args.workers, new=args.new)
    out = experiment.path
    gc.freeze()  # and what loading the kernels made: numba's typing and code objects
    print(f"results in {out}/ ({experiment.summary()}, {time.perf_counter() - started:.1f} s)")

    final = experiment.final_performance(0, fraction=0.1)
    if final.size == 0:
        raise SystemExit("every run failed: nothing to plot")
    mean, low, high = mean_confidence_interval(final)
    print(f"reward rate over the last 10% of steps: {mean:.4f} "
          f"(95% CI {low:.4f} .. {high:.4f}, {final.size} seeds; best possible 0)")

    # One trained agent, from hanging down: its path over the maps, and a GIF.
    seed = experiment.finished_seeds(0)[0]
    result = experiment.result(0, seed)
    # The GIF takes about as long as the four figures: a second process (a
    # fork on Linux, which starts at once) draws it meanwhile on another core.
    with ProcessPoolExecutor(max_workers=1) as background:
        gif = background.submit(animate_policy, result, out / "swingup.gif",
                                steps=args.gif_steps, every=3, seed=0, size=240)
        rewards, steps = experiment.rewards(0), experiment.bin_steps
        # The mean reward lies in [-pi, 0]: the band is clipped there, and says so.
        bounds = reward_bounds(ENV)
        title = f"Pendulum swing-up, softmax actor-critic ({final.size} seeds)"
        print("learning curve:", save_figure(
            learning_curve(rewards, steps=steps, title=title, bounds=bounds),
            out / "learning_curve.png"))
        print("exponential average:", save_figure(
            exponential_average_curve(rewards, steps=steps, title=title, bounds=bounds),
            out / "exponential_average.png"))
        path = rollout(result, args.gif_steps, seed=0).observations
        print("policy map:", save_figure(
            policy_map(result, trajectory=path, title=f"Learned policy (seed {seed})"),
            out / "policy_map.png"))
        print("value map:", save_figure(
            value_map(result, trajectory=path,
                      title=f"Learned differential values (seed {seed})"),
            out / "value_map.png"))
        print("animation:", gif.result())
    # At exit the interpreter's last collection walks every object not frozen
    # (0.2 s of a 2 s job, for nothing: the process ends).
    gc.freeze()


if __name__ == "__main__":
    main()
