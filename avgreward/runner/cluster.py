"""Running an experiment's runs on a Dask cluster (``run_experiment(..., cluster=...)``).

The workers of a Dask cluster (a :class:`distributed.LocalCluster`, a remote
scheduler's, a SLURM or PBS allocation through ``dask-jobqueue``) compute
runs and send back their arrays, binned as locally; this process (the
client) writes every run's files, so the cluster needs no shared file
system, and the experiment's directory, lock and checks are the local
runner's.  A run is :func:`avgreward.train` with its settings and seed, so
its numbers are the local runner's bit for bit, on whatever machine it runs
(given the same versions of avgreward, numpy and numba: a worker with other
versions is refused).

**Tasks.** A Dask task is a *batch* of runs of about 2,000,000 steps in all
(a run of 2,000,000 steps or more is a task of its own), and at least four
tasks per worker thread when the experiment is small enough: thousands of
short runs do not each pay the scheduler's per-task cost (about a
millisecond and a round trip), and long runs still spread over every
worker.  A worker process keeps avgreward imported between tasks, so it
compiles or loads the kernels (numba's cache) once, at its first run of
each learner, not per run.

**Failures.** A run's own failure (divergence, an error) is recorded in its
record as locally.  If a worker dies (killed, out of memory), the scheduler
runs its task again elsewhere; after ``distributed.scheduler.allowed-failures``
deaths (3 by default) the runs of that task are recorded as failed, and run
again on resume.  Each run is written once, by this process, when its
task's results arrive.

**Interruptions.** On Ctrl-C (or SIGTERM) this process cancels the tasks
not finished, asks the running ones to stop at their next chunk, and
returns with every run it has written kept: running again resumes.  Runs of
a task that had not come back are run again.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import time
import uuid
from concurrent.futures import CancelledError
from pathlib import Path

from avgreward.extras import MissingExtraError
from avgreward.runner.pool import (
    _WORKER_ENV,
    _compute_run,
    _sigterm_as_interrupt,
    _Stopped,
)
from avgreward.runner.records import _record, _run_name, _versions, _write_run

__all__ = ["local_cluster", "ClusterError", "MissingExtraError"]

# A task's work: about 0.2-0.3 s of a tabular learner, a second of the swing-up.
_BATCH_STEPS = 2_000_000
_TASKS_PER_THREAD = 4
# Workers report a run's steps at most this often (seconds), by a Dask event.
_PROGRESS_EVERY = 0.5
_TOPIC = "avgreward-progress"
# These decide a run's numbers: a worker whose versions differ is refused.
_SAME_VERSIONS = ("avgreward", "numpy", "numba", "gymnasium", "python")
_MISSING = ("running on a Dask cluster needs dask's distributed scheduler: "
            "pip install \"avgreward[dask]\" (or pip install distributed)")

_CANCELLED = ("the cluster's tasks were cancelled (the client was closed, or the scheduler "
              "restarted or went away); finished runs are kept: run again to resume")


class ClusterError(RuntimeError):
    """The cluster cannot run the experiment (unreachable, other versions, a broken worker)."""


def _distributed():
    try:
        import distributed
    except ImportError:
        raise MissingExtraError(_MISSING) from None
    return distributed


def check_cluster(cluster) -> None:
    """Refuse what cannot be a cluster, before anything is written (no import of dask)."""
    if cluster is None or isinstance(cluster, str):
        if isinstance(cluster, str) and not cluster.strip():
            raise ValueError("cluster must be a scheduler address such as "
                             "'tcp://host:8786', got an empty string")
        return
    kind = type(cluster)
    if kind.__module__.split(".")[0] in ("distributed", "dask_jobqueue") or hasattr(
            cluster, "scheduler_address"):
        return
    raise ValueError(f"cluster must be a dask.distributed.Client, a Dask cluster (LocalCluster, "
                     f"SLURMCluster, ...) or a scheduler address such as 'tcp://host:8786', "
                     f"got {cluster!r}")


def connect(cluster, timeout: float = 20.0):
    """``(client, owned)``: a :class:`distributed.Client` for ``cluster``, and whether to close it.

    Raises
    ------
    ClusterError
        If the scheduler cannot be reached within ``timeout`` seconds (at
        once if a ``tcp://`` address refuses the connection).
    """
    distributed = _distributed()
    if isinstance(cluster, distributed.Client):
        return cluster, False
    where = cluster if isinstance(cluster, str) else getattr(cluster, "scheduler_address", cluster)
    if isinstance(cluster, str):
        _probe(cluster.strip(), timeout)
    try:
        return distributed.Client(cluster, timeout=timeout), True
    except (OSError, TimeoutError) as err:
        raise ClusterError(f"cannot reach the Dask scheduler at {where} "
                           f"({type(err).__name__}: {err})") from None


def _probe(address: str, timeout: float) -> None:
    """Fail at once on a ``tcp://host:port`` that refuses connections (Dask would retry)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp":
        return
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ValueError(f"scheduler address must look like tcp://host:8786, got {address!r}")
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as err:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({err})") from None


def local_cluster(n_workers: int):
    """A :class:`distributed.Client` of a new ``LocalCluster`` of ``n_workers`` processes.

    One thread per worker (the parallelism is across runs) with numba and
    BLAS held to one thread, as the local runner's workers; its HTTP server
    (dashboard, health) on a free port: ``client.dashboard_link``.
    Closing the client (or leaving its ``with`` block) closes the cluster.
    A script that starts one needs Python's ``if __name__ == "__main__":``
    guard: Dask starts its workers as fresh interpreters.
    """
    distributed = _distributed()
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    return distributed.Client(n_workers=n_workers, threads_per_worker=1, processes=True,
                              dashboard_address=":0", env=dict(_WORKER_ENV))


def _batches(tasks: list, n_threads: int) -> list:
    """The runs cut into tasks of about ``_BATCH_STEPS`` steps (at least one run each)."""
    if not tasks:
        return []
    by_steps = max(1, _BATCH_STEPS // tasks[0]["steps"])
    by_balance = max(1, math.ceil(len(tasks) / (_TASKS_PER_THREAD * max(1, n_threads))))
    size = min(by_steps, by_balance)
    return [tasks[i:i + size] for i in range(0, len(tasks), size)]


def _run_batch(batch: list, client_versions: dict, stop_name: str) -> list:
    """On a worker: compute a batch's runs; their ``(arrays, record)`` pairs, in order."""
    from distributed import Event, get_worker

    mine = _versions()
    differ = [k for k in _SAME_VERSIONS if mine.get(k) != client_versions.get(k)]
    if differ:
        raise ClusterError(
            "a Dask worker has other versions than this process ("
            + ", ".join(f"{k} {mine.get(k)} there, {client_versions.get(k)} here"
                        for k in differ)
            + "): install the same ones on the workers, so that runs are the same bit for bit")
    worker = get_worker()
    try:
        stop = Event(stop_name)
    except Exception:  # noqa: BLE001 - stopping early is a courtesy, not a need
        stop = None
    results = []
    for task in batch:
        name = _run_name(task["agent_index"], task["seed"])
        last = [time.monotonic()]

        def on_chunk(done, name=name, last=last):
            now = time.monotonic()
            if now - last[0] < _PROGRESS_EVERY:
                return
            last[0] = now
            worker.log_event(_TOPIC, (stop_name, name, done, os.getpid()))
            if stop is not None and stop.is_set():
                raise _Stopped

        results.append(_compute_run({**task, "versions": mine}, on_chunk))
    return results


def _run_on_cluster(client, tasks: list, bar) -> None:
    """Every task's runs on ``client``'s cluster, each written here as its batch comes back."""
    distributed = _distributed()
    runs = Path(tasks[0]["runs_dir"])
    n_threads = sum(client.nthreads().values())
    batches = _batches(tasks, n_threads)
    stop_name = f"avgreward-stop-{uuid.uuid4().hex}"
    bar.note(f"{len(tasks)} runs in {len(batches)} Dask tasks on the cluster at "
             f"{client.scheduler.address} ({n_threads} worker threads now)")
    events = queue.SimpleQueue()
    reported = {}

    def progress():
        while True:
            try:
                _, message = events.get_nowait()
            except queue.Empty:
                return
            tag, name, done = _on_progress(message)
            if tag == stop_name and done > reported.get(name, 0):
                bar.add_steps(done - reported.get(name, 0))
                reported[name] = done

    versions = _versions()
    client.subscribe_topic(_TOPIC, events.put)
    futures = {}
    with _sigterm_as_interrupt():
        try:
            for k, batch in enumerate(batches):
                future = client.submit(_run_batch, batch, versions, stop_name, pure=False,
                                       key=f"avgreward-{stop_name[15:27]}-{k}")
                futures[future] = batch
            pending = set(futures)
            while pending:
                try:
                    distributed.wait(list(pending), timeout=0.2, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    pass
                except CancelledError:
                    raise ClusterError(_CANCELLED) from None
                progress()
                for future in [f for f in pending if f.done()]:
                    pending.discard(future)
                    _collect(future, futures.pop(future), runs, reported, bar)
        except BaseException:
            _stop(client, list(futures), stop_name)
            raise
        finally:
            with contextlib.suppress(Exception):  # a closed client has nothing to unsubscribe
                client.unsubscribe_topic(_TOPIC)


def _on_progress(message) -> tuple:
    """``(experiment tag, run name, steps done)`` of a worker's progress event.

    The event also carries the worker's process id (the tests kill it by that).
    """
    tag, name, done, _pid = message
    return tag, name, done


def _collect(future, batch, runs, reported, bar) -> None:
    """Write a finished task's runs, or record them as failed if its workers kept dying."""
    distributed = _distributed()
    if future.status == "cancelled":
        raise ClusterError(_CANCELLED)
    if future.status == "finished":
        for arrays, record in future.result():
            name = _run_name(record["agent_index"], record["seed"])
            _write_run(runs, name, arrays, record)
            bar.add_steps(record["steps"] - reported.pop(name, 0))
            bar.run_done(record)
        return
    error = future.exception()
    if isinstance(error, ClusterError):
        raise ClusterError(str(error)) from None
    if not isinstance(error, distributed.KilledWorker):
        raise ClusterError(f"a Dask worker could not run avgreward's runs "
                           f"({type(error).__name__}: {error}); is avgreward installed on "
                           f"the workers?") from error
    for task in batch:
        name = _run_name(task["agent_index"], task["seed"])
        record = _write_run(runs, name, {}, _record(
            task, status="failed", failure="error", steps_done=0, final_rbar=None,
            error=f"the Dask worker processes running it died ({error})", wall_time=0.0))
        bar.add_steps(task["steps"] - reported.pop(name, 0))
        bar.run_done(record)


def _stop(client, futures, stop_name) -> None:
    """Cancel what has not finished and ask running tasks to stop at their next chunk."""
    distributed = _distributed()
    try:
        distributed.Event(stop_name, client=client).set()
    except Exception:  # noqa: BLE001 - the scheduler may be gone; nothing more to stop then
        pass
    try:
        client.cancel(futures)
    except Exception:  # noqa: BLE001
        pass
