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
import logging
import math
import os
import queue
import time
import uuid
from concurrent.futures import CancelledError
from pathlib import Path
from typing import TYPE_CHECKING

from avgreward.extras import MissingExtraError, require  # noqa: F401 (re-exported)
from avgreward.runner.pool import (
    WORKER_ENV,
    compute_run,
    sigterm_as_interrupt,
    Stopped,
    worker_start_conditions,
)
from avgreward.files import package_versions
from avgreward.runner.records import (
    run_name,
    run_record,
    signals_deferred,
    write_run,
)

if TYPE_CHECKING:  # the dask extra, for the type hints only
    import distributed

__all__ = ["local_cluster", "ClusterError", "MissingExtraError"]

# A task's work: about 0.2-0.3 s of a tabular learner, a second of the swing-up.
_BATCH_STEPS = 2_000_000
_TASKS_PER_THREAD = 4
# Workers report a run's steps at most this often (seconds), by a Dask event.
_PROGRESS_EVERY = 0.5
# These decide a run's numbers: a worker whose versions differ is refused.
_SAME_VERSIONS = ("avgreward", "numpy", "numba", "gymnasium", "python")

_CANCELLED = ("the cluster's tasks were cancelled (the client was closed, or the scheduler "
              "restarted or went away); finished runs are kept: run again to resume")


class ClusterError(RuntimeError):
    """The cluster cannot run the experiment (unreachable, other versions, a broken worker)."""


def _distributed():
    return require("distributed", "dask", "running on a Dask cluster")


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
        if cluster.status != "running":
            raise ClusterError(f"the Dask client is {cluster.status}: give a running one")
        return cluster, False
    where = cluster if isinstance(cluster, str) else getattr(cluster, "scheduler_address", cluster)
    if isinstance(cluster, str):
        cluster = cluster.strip()
        _probe(cluster, timeout)
    try:
        with _quiet_dask_logs():
            return distributed.Client(cluster, timeout=timeout), True
    except Exception as err:  # noqa: BLE001 - Dask's errors of a failed connection vary
        text = " ".join(str(err).split())[:200]
        raise ClusterError(f"cannot reach the Dask scheduler at {where} "
                           f"({type(err).__name__}: {text})") from None


def _probe(address: str, timeout: float) -> None:
    """Fail at once on a ``tcp://host:port`` that refuses connections (Dask would retry)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls"):
        return  # inproc://, ucx://...: Dask's own connection says what is wrong
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


def local_cluster(n_workers: int) -> distributed.Client:
    """A :class:`distributed.Client` of a new ``LocalCluster`` of ``n_workers`` processes.

    One thread per worker (the parallelism is across runs) with numba and
    BLAS held to one thread, as the local runner's workers; its HTTP server
    (dashboard, health) on a free port: ``client.dashboard_link``.
    Closing the client (or leaving its ``with`` block) closes the cluster.
    Its workers ignore Ctrl-C (this process stops the experiment) and do
    not re-run the calling script, so a flat script needs no
    ``if __name__ == "__main__":`` guard for them.
    """
    distributed = _distributed()
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    # Started as the local runner starts its workers: Ctrl-C ignored in them (this
    # process stops them), and the caller's script not re-run in each of them.
    with worker_start_conditions():
        return distributed.Client(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", env=dict(WORKER_ENV),
                                  silence_logs=logging.CRITICAL)


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

    mine = package_versions()
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
        name = run_name(task["agent_index"], task["seed"])
        last = [time.monotonic()]

        def on_chunk(done, name=name, last=last):
            now = time.monotonic()
            if now - last[0] < _PROGRESS_EVERY:
                return
            last[0] = now
            worker.log_event(stop_name, (name, done, os.getpid()))
            if stop is not None and stop.is_set():
                raise Stopped

        try:
            results.append(compute_run({**task, "versions": mine}, on_chunk))
        except Stopped:
            # An ordinary exception for Dask: a BaseException would bring the worker down.
            raise ClusterError("stopped: the experiment was interrupted") from None
    return results


def run_on_cluster(client, tasks: list, bar) -> None:
    """Every task's runs on ``client``'s cluster, each written here as its batch comes back."""
    distributed = _distributed()
    runs = Path(tasks[0]["runs_dir"])
    n_threads = _cluster_call(lambda: sum(client.nthreads().values()))
    if n_threads == 0:
        bar.note("waiting for the cluster's first Dask worker ...")
        _cluster_call(lambda: client.wait_for_workers(1))
        n_threads = _cluster_call(lambda: sum(client.nthreads().values()))
    batches = _batches(tasks, n_threads)
    tag = f"avgreward-{uuid.uuid4().hex}"  # this experiment's progress topic and stop event
    bar.note(f"{len(tasks)} runs in {len(batches)} Dask tasks on the cluster at "
             f"{client.scheduler.address} ({n_threads} worker threads now)")
    events = queue.SimpleQueue()
    reported, written = {}, set()

    def progress(wait: float) -> None:
        """Count the steps workers report, waiting up to ``wait`` s for the first event."""
        block = True
        while True:
            try:
                _, message = events.get(timeout=wait) if block else events.get_nowait()
            except queue.Empty:
                return
            block = False
            if message is None:  # a task finished: wake up and collect it
                continue
            name, done = _on_progress(message)
            if name not in written and done > reported.get(name, 0):
                bar.add_steps(done - reported.get(name, 0))
                reported[name] = done

    versions = package_versions()
    futures = {}
    quiet = _quiet_dask_logs()
    with sigterm_as_interrupt(), quiet:
        try:
            _cluster_call(lambda: client.subscribe_topic(tag, events.put))
            for k, batch in enumerate(batches):
                future = _cluster_call(lambda batch=batch, k=k: client.submit(
                    _run_batch, batch, versions, tag, pure=False, key=f"{tag}-{k}"))
                future.add_done_callback(lambda _: events.put((None, None)))
                futures[future] = batch
            # The client's own loop: as_completed would take the default client's, another
            # client's when several live in this process (its events then hang).
            done = distributed.as_completed(list(futures), loop=client.loop)
            while not done.is_empty():
                progress(0.2)
                # A closed client's futures are not always reported as cancelled.
                if client.status not in ("running", "connecting") or any(
                        f.status == "cancelled" for f in futures):
                    raise ClusterError(_CANCELLED)
                for future in done.next_batch(block=False):
                    _collect(future, futures.pop(future), runs, reported, written, bar)
        except BaseException:
            _stop(client, list(futures), tag)
            raise
        finally:
            with contextlib.suppress(Exception):  # a closed client has nothing to unsubscribe
                client.unsubscribe_topic(tag)


def _cluster_call(call):
    """``call()``, the cluster's failures (a lost scheduler...) made one :class:`ClusterError`."""
    try:
        return call()
    except (ClusterError, KeyboardInterrupt):
        raise
    except CancelledError:
        raise ClusterError(_CANCELLED) from None
    except Exception as err:  # noqa: BLE001 - Dask's errors of a lost connection vary
        text = " ".join(str(err).split())[:200]
        raise ClusterError(f"lost the Dask cluster ({type(err).__name__}: {text}); finished "
                           "runs are kept: run again to resume") from None


@contextlib.contextmanager
def _quiet_dask_logs():
    """Dask's own logs of lost connections: what this runner reports in one line itself."""
    loggers = [logging.getLogger(n) for n in ("distributed.client", "distributed.core",
                                               "distributed.comm", "distributed.batched")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _on_progress(message) -> tuple:
    """``(run name, steps done)`` of a worker's progress event.

    The event also carries the worker's process id (the tests kill it by that).
    """
    name, done, _pid = message
    return name, done


def _collect(future, batch, runs, reported, written, bar) -> None:
    """Write a finished task's runs, or record them as failed if its workers kept dying."""
    distributed = _distributed()
    if future.status == "cancelled":
        raise ClusterError(_CANCELLED)
    if future.status == "finished":
        results = _cluster_call(future.result)
        # Ctrl-C waits until every run that reached this process is on disk.
        with signals_deferred():
            for arrays, record in results:
                name = run_name(record["agent_index"], record["seed"])
                write_run(runs, name, arrays, record)
                written.add(name)
                bar.add_steps(record["steps"] - reported.pop(name, 0))
                bar.run_done(record)
        return
    error = _cluster_call(future.exception)
    if isinstance(error, ClusterError):
        raise ClusterError(str(error)) from None
    if not isinstance(error, distributed.KilledWorker):
        raise ClusterError(f"a Dask worker could not run avgreward's runs "
                           f"({type(error).__name__}: {error}); is avgreward installed on "
                           f"the workers?") from error
    with signals_deferred():
        for task in batch:
            name = run_name(task["agent_index"], task["seed"])
            record = write_run(runs, name, {}, run_record(
                task, status="failed", failure="error", steps_done=0, final_rbar=None,
                error=f"the Dask worker processes running it died ({error})", wall_time=0.0))
            written.add(name)
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
