"""The parameter-sensitivity study of scripts/sensitivity.py, on a Dask cluster.

The same grid (actor step sizes 2^k on the x axis, critic step sizes one line
each, R-bar at 2^-6) on the pendulum swing-up, run by the workers of a Dask
cluster: a LocalCluster on this machine (--dask-local N), a running
scheduler (--scheduler tcp://host:8786), or SLURM jobs started for it
(--slurm, through dask-jobqueue).  The workers compute the runs and send back
their binned arrays; this process writes every file, so the cluster needs no
shared file system.  The numbers are those of the local runner, bit for bit:
running this script with --dask-local 2 and scripts/sensitivity.py with the
same settings gives the same table.

Needs the dask extra: pip install ".[dask]".  Writes, into --out:
experiment.json, runs/ (resumable: run the same command again) and
sensitivity.png; prints the table of mean rewards and the best setting.

  python scripts/sweep_on_cluster.py --dask-local 2                  # this machine
  python scripts/sweep_on_cluster.py --scheduler tcp://head:8786     # a running cluster
  python scripts/sweep_on_cluster.py --slurm --jobs 10 --cores 32 --memory 64GB \\
      --walltime 01:00:00 --seeds 100 --steps 1000000               # SLURM
  python scripts/sweep_on_cluster.py --dask-local 2 --seeds 2 --steps 2000 --actor -2 0 --critic 1
"""

import argparse
import time
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt
import numpy as np

import avgreward
from avgreward.experiment import ClusterError, run_experiment
from avgreward.plotting import save_figure, sensitivity
from avgreward.runner.cluster import local_cluster

ENV = "avgreward/PendulumSwingUp-v0"


@dataclass
class Args:
    seeds: int = 30
    steps: int = 20_000
    actor: list[int] = field(default_factory=lambda: list(range(-6, 3)))
    critic: list[int] = field(default_factory=lambda: [-1, 0, 1, 2])
    alpha_rbar: float = 2.0**-6
    out: str = "results/sweep_on_cluster"
    new: bool = False
    dask_local: int | None = None
    scheduler: str | None = None
    slurm: bool = False
    jobs: int = 1
    cores: int = 8
    memory: str = "16GB"
    walltime: str = "01:00:00"
    queue: str | None = None
    account: str | None = None
    wait: float = 600.0


def parse_args() -> Args:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Args()
    parser.add_argument("--seeds", type=int, default=d.seeds,
                        help="seeds (runs) per setting (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=d.steps,
                        help="steps per run (default: %(default)s)")
    parser.add_argument("--actor", type=int, nargs="+", default=d.actor, metavar="K",
                        help="exponents k of the actor step sizes 2^k (default: %(default)s)")
    parser.add_argument("--critic", type=int, nargs="+", default=d.critic, metavar="K",
                        help="exponents k of the critic step sizes 2^k (default: %(default)s)")
    parser.add_argument("--alpha-rbar", type=float, default=d.alpha_rbar,
                        help="step size of R-bar (default: %(default)s)")
    parser.add_argument("--out", default=d.out,
                        help="directory for the runs and figure (default: %(default)s)")
    parser.add_argument("--new", action="store_true",
                        help="use a fresh directory if --out holds an experiment")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--dask-local", type=int, metavar="N",
                       help="a LocalCluster of N worker processes on this machine")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="a running Dask scheduler, e.g. tcp://head:8786")
    where.add_argument("--slurm", action="store_true",
                       help="start SLURM jobs of Dask workers (dask-jobqueue's SLURMCluster)")
    slurm = parser.add_argument_group("SLURM (with --slurm)")
    slurm.add_argument("--jobs", type=int, default=d.jobs,
                       help="SLURM jobs, one node each (default: %(default)s)")
    slurm.add_argument("--cores", type=int, default=d.cores,
                       help="cores per job: one worker process each (default: %(default)s)")
    slurm.add_argument("--memory", default=d.memory, help="memory per job (default: %(default)s)")
    slurm.add_argument("--walltime", default=d.walltime,
                       help="time limit of each job (default: %(default)s)")
    slurm.add_argument("--queue", default=d.queue, help="SLURM partition (default: the site's)")
    slurm.add_argument("--account", default=d.account,
                       help="SLURM account to charge (default: your SLURM default account)")
    slurm.add_argument("--wait", type=float, default=d.wait,
                       help="seconds to wait for every job's workers before starting with "
                       "those present (default: %(default)s)")
    return Args(**vars(parser.parse_args()))


def start_cluster(args: Args):
    """A Dask client for the cluster the arguments ask for."""
    if args.dask_local is not None:
        return local_cluster(args.dask_local)
    from distributed import Client

    if args.scheduler is not None:
        return Client(args.scheduler, timeout=30)
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise SystemExit('sweep_on_cluster.py: --slurm needs dask-jobqueue: pip install ".[dask]"')
    # One single-threaded worker process per core, numba held to one thread:
    # the parallelism is across runs, as in the local runner.
    cluster = SLURMCluster(
        cores=args.cores, processes=args.cores, memory=args.memory, walltime=args.walltime,
        queue=args.queue, account=args.account,
        job_script_prologue=["export NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 "
                             "OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1"])
    cluster.scale(jobs=args.jobs)
    client = Client(cluster)
    # The runs are cut into tasks for the workers present when the experiment starts:
    # wait for all of them a while, then go on with those that came.
    workers = args.jobs * args.cores
    print(f"waiting up to {args.wait:g} s for the {workers} workers of {args.jobs} SLURM job(s) ...")
    try:
        client.wait_for_workers(workers, timeout=args.wait)
    except TimeoutError:
        print(f"{len(client.scheduler_info()['workers'])} of {workers} workers came; going on")
    return client


def main():
    args = parse_args()
    agents = [
        avgreward.SoftmaxActorCritic(alpha_w=2.0**c, alpha_theta=2.0**a,
                                     alpha_rbar=args.alpha_rbar)
        for c in args.critic for a in args.actor
    ]
    try:
        with start_cluster(args) as client:
            print(f"{len(agents)} settings x {args.seeds} seeds x {args.steps:,} steps on {ENV}, "
                  f"on the Dask cluster at {client.scheduler.address} "
                  f"({sum(client.nthreads().values())} worker threads)")
            started = time.perf_counter()
            experiment = run_experiment(args.out, ENV, agents, args.seeds, args.steps,
                                        new=args.new, cluster=client)
            print(f"{time.perf_counter() - started:.1f} s")
    except (ValueError, ClusterError, ImportError) as error:
        raise SystemExit(f"sweep_on_cluster.py: {error}") from None
    out = experiment.path
    print(f"results in {out}/ ({experiment.summary()})")

    whole = [experiment.final_performance(i, fraction=1.0) for i in range(len(agents))]
    means = np.array([p.mean() if p.size else np.nan for p in whole])
    print("\nmean reward over the whole run (rows: critic 2^k, columns: actor 2^k)")
    print("        " + "".join(f"{a:>8d}" for a in args.actor))
    for r, c in enumerate(args.critic):
        row = means[r * len(args.actor):(r + 1) * len(args.actor)]
        print(f"{c:>8d}" + "".join("  failed" if np.isnan(v) else f"{v:8.3f}" for v in row))
    if np.any(np.isfinite(means)):
        best = int(np.nanargmax(means))
        print(f"best: {experiment.label(best)} ({means[best]:.3f})")

    fig, axes = plt.subplots(1, 2, figsize=(12.0, 4.6), layout="constrained")
    sensitivity(experiment, x="alpha_theta", lines="alpha_w", fraction=1.0, ax=axes[0],
                title=f"Learning speed: mean reward over {args.steps:,} steps", legend=False)
    sensitivity(experiment, x="alpha_theta", lines="alpha_w", fraction=0.1, ax=axes[1],
                title="Level reached: mean reward over the last 10% of steps", legend=False)
    for ax in axes:
        ax.set_xlabel("actor step size $\\alpha_\\theta$ (divided by 32 tilings inside)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center",
               title="critic step size", fontsize=9, title_fontsize=9)
    fig.suptitle(f"Softmax actor-critic on the pendulum swing-up: parameter sensitivity "
                 f"({args.seeds} seeds, 95% CI; run on a Dask cluster)")
    print("\nfigure:", save_figure(fig, out / "sensitivity.png"))


if __name__ == "__main__":
    main()
