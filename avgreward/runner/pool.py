"""Running an experiment's runs: in this process, or in a pool of worker processes.

One run at a time per worker; the parent hands out runs, shows progress,
records a run whose worker died as failed (removing its partial files at
once), and stops every worker between two chunks on Ctrl-C or SIGTERM, so
that a run is either whole on disk or not there.  Workers are forked where
that is safe (Linux, no other Python thread, numba's thread pool not
started), else spawned (see :func:`_start_method`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections import deque
from pathlib import Path

import numpy as np

from avgreward.checkpoint import state_files
from avgreward.features import features_from_dict
from avgreward.learners.registry import agent_from_dict
from avgreward.logs import open_log
from avgreward.result import DivergenceError, Result
from avgreward.runner.directory import remove_partial_files
from avgreward.runner.records import (
    finished_record,
    run_name,
    run_record,
    write_run,
)
from avgreward.training import ConstantRewardWarning, train

# One logger for the whole runner: what users filter or capture.
log = logging.getLogger("avgreward.experiment")

# Environment of the worker processes, set before numba is imported there:
# one thread each, since the parallelism is across runs.
WORKER_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class _WriteFailed(Exception):
    """A worker could not write a run's result; ``error`` is its ``OSError``.

    Not an ``OSError`` itself, so that it is not taken for a broken pipe.
    """

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class Stopped(BaseException):
    """A run was asked to stop (Ctrl-C, termination): write nothing for it.

    A BaseException so that the per-run ``except Exception`` cannot record it
    as a failed run.
    """


def default_workers() -> int:
    """The number of CPU cores this process may use."""
    if hasattr(os, "process_cpu_count"):
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


_EPISODE_ARRAYS = ("terminations", "truncations", "episode_returns", "episode_lengths",
                   "episode_end_steps")


def _run_arrays(result: Result) -> dict:
    """The arrays of a run's ``.npz``; ``result`` holds binned rewards (``train(bin_size=)``)."""
    arrays = {
        "rewards": result.rewards.astype(np.float64),
        "rbar": result.rbar,
        "rbar_every": np.int64(result.rbar_steps[0] if result.rbar_steps.size else 0),
        "final_rbar": np.float64(result.final_rbar),
        "steps_done": np.int64(result.steps),
    }
    for name, value in result.weights.items():
        if name in arrays or name in _EPISODE_ARRAYS:
            raise ValueError(f"agent: its weights may not be named like a run's array: "
                             f"{name!r}")
        arrays[name] = value
    # An episodic task's episodes: their ends (counted per bin) and each one's
    # return and length.
    for name in _EPISODE_ARRAYS:
        if name in result.info:
            arrays[name] = np.asarray(result.info[name])
    return arrays


# What a worker tells the parent of a finished run (the rest is on disk).
_DONE_KEYS = ("agent_index", "seed", "status", "error", "warnings")


def _run_one(task: dict, on_chunk=None) -> dict:
    """Run one (settings, seed), write its arrays and then its record; return the record.

    ``on_chunk(steps_done)`` is called between the jitted chunks and may raise
    :class:`Stopped`, in which case nothing is written.
    """
    arrays, record = compute_run(task, on_chunk)
    return write_run(Path(task["runs_dir"]), run_name(task["agent_index"], task["seed"]),
                      arrays, record)


def compute_run(task: dict, on_chunk=None) -> tuple[dict, dict]:
    """Run one (settings, seed): its arrays and its record, written nowhere."""
    agent = agent_from_dict(task["agent"])
    features = features_from_dict(task["features"])
    steps, bin_size = task["steps"], task["bin_size"]
    callback = None if on_chunk is None else (lambda done, total: on_chunk(done))
    started = time.perf_counter()
    status, error, failure, result = "ok", None, None, None
    caught = []
    try:
        with contextlib.ExitStack() as stack, warnings.catch_warnings(record=True) as caught:
            # The run's own log, opened in the process that runs it.
            writer = (None if task.get("log") is None
                      else stack.enter_context(open_log(*task["log"])))
            # What the run warns about (a runaway mean...) goes into its record and
            # reaches the user once, named by the run, from whichever process ran it.
            warnings.simplefilter("always")
            # Said once for the whole experiment, by run_experiment.
            warnings.simplefilter("ignore", ConstantRewardWarning)
            result = train(task["env"], agent, steps, task["seed"], features,
                           chunk_steps=task["chunk_steps"], callback=callback,
                           bin_size=bin_size, log=writer)
    except DivergenceError as err:
        status, error, failure, result = "failed", str(err), "divergence", err.result
    except Exception as err:  # noqa: BLE001 - any error of one run is recorded; the others go on
        status, error, failure = "failed", f"{type(err).__name__}: {err}", "error"
    wall_time = time.perf_counter() - started
    record = run_record(
        task, status=status, failure=failure, error=error,
        steps_done=0 if result is None else int(result.steps),
        final_rbar=(float(result.final_rbar) if result is not None
                    and math.isfinite(result.final_rbar) else None),
        wall_time=wall_time,
        warnings=list(dict.fromkeys(
            f"{w.category.__name__}: {w.message}" for w in caught
            if issubclass(w.category, (RuntimeWarning, UserWarning)))))
    arrays = {} if result is None or result.steps == 0 else _run_arrays(result)
    if status == "ok":
        record["run_state"] = _run_state(result, arrays)
    return arrays, record


def _run_state(result: Result, arrays: dict):
    """What a finished run's record keeps to be continued (``Experiment.result``, ``init=``).

    Its state's JSON part (the arrays go into ``arrays``, as ``state/...``: as
    big as the learner's arrays beyond its weights, whatever the steps), or
    why it has none.
    """
    if result.run_state is None:
        return result.info.get("cannot_continue", "the run kept no state to continue from "
                               "(runs of parallel actors keep none)")
    more, state = state_files(result.run_state, result.weights)
    arrays.update(more)
    return state


class ProgressBars:
    """Two tqdm bars, runs and steps (or nothing)."""

    def __init__(self, enabled, n_runs, runs_done, n_steps):
        self.enabled = enabled
        self.args = (n_runs, runs_done, n_steps)
        self.failed = 0

    def __enter__(self):
        if self.enabled:
            from tqdm.auto import tqdm as auto_tqdm

            class tqdm(auto_tqdm):
                # No monitor thread: with another Python thread alive, workers
                # could not be forked (see _start_method).
                monitor_interval = 0

            n_runs, runs_done, n_steps = self.args
            self.runs = tqdm(total=n_runs, initial=runs_done, desc="runs", unit="run",
                             position=0, dynamic_ncols=True)
            self.steps = tqdm(total=n_steps, desc="steps", unit="step", unit_scale=True,
                              position=1, dynamic_ncols=True)
        return self

    def note(self, text):
        if self.enabled:
            self.runs.write(text, file=sys.stderr)

    def add_steps(self, n):
        if self.enabled and n:
            self.steps.update(n)

    def run_done(self, record):
        for text in record.get("warnings") or ():
            log.warning("run %s: %s", run_name(record["agent_index"], record["seed"]), text)
        if record["status"] != "ok":
            self.failed += 1
        if self.enabled:
            self.runs.update(1)
            if self.failed:
                self.runs.set_postfix(failed=self.failed)

    def __exit__(self, *exc):
        if self.enabled:
            self.steps.close()
            self.runs.close()
        return False


def run_here(tasks, bar):
    """The runs one after the other in this process (1 worker)."""
    with sigterm_as_interrupt():
        for task in tasks:
            reported = [0]

            def on_chunk(done, reported=reported):
                bar.add_steps(done - reported[0])
                reported[0] = done

            record = _run_one(task, on_chunk)
            bar.add_steps(task["steps"] - reported[0])
            bar.run_done(record)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM stops the experiment like Ctrl-C does: cleanly, keeping finished runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def worker_start_conditions():
    """While starting workers: their environment, Ctrl-C ignored, the caller's script hidden.

    Spawned children inherit the environment and ignored signals; numba reads
    NUMBA_NUM_THREADS when it is imported there.  Ctrl-C is handled by this
    process, which tells the workers to stop between chunks, so that a worker
    is never interrupted while it writes.  Hiding ``__main__``'s file keeps
    multiprocessing from re-running the calling script in each worker (the
    workers need nothing from it), so scripts need no ``__main__`` guard.
    """
    saved_env = {k: os.environ.get(k) for k in WORKER_ENV}
    os.environ.update(WORKER_ENV)
    main = sys.modules.get("__main__")
    hidden = {}
    for name in ("__file__", "__spec__"):
        if main is not None and getattr(main, name, None) is not None:
            hidden[name] = getattr(main, name)
            setattr(main, name, None)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main_thread else None
    try:
        yield
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous_sigint)
        for name, value in hidden.items():
            setattr(main, name, value)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _start_method():
    """How workers are started: ``"fork"`` where that is safe, else ``"spawn"``.

    A forked worker starts at once with everything this process has loaded; a
    spawned one imports numpy and numba and loads the kernels again (about a
    second, which is most of the difference between 1 and 2 workers on a few
    runs).  Forking is unsafe when another Python thread may hold a lock the
    child would then wait for forever, and after numba's thread pool has been
    started; native threads of BLAS libraries handle fork themselves.  macOS
    and Windows always spawn.
    """
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return "spawn"
    try:
        from numba.np.ufunc import parallel
    except ImportError:
        return "spawn"
    return "spawn" if getattr(parallel, "_is_initialized", True) else "fork"


class _Worker:
    def __init__(self, context, parent_pid):
        import multiprocessing

        self.conn, child_conn = multiprocessing.Pipe()
        self.process = context.Process(target=_worker_main, args=(child_conn, parent_pid),
                                       name="avgreward-worker", daemon=True)
        with worker_start_conditions(), warnings.catch_warnings():
            # Python >= 3.12 warns about forking whenever the process has other OS
            # threads; _start_method allows it only when those are native ones
            # (numpy's BLAS pool), which are fork-safe.
            warnings.filterwarnings("ignore", message=".*multi-threaded.*fork",
                                    category=DeprecationWarning)
            self.process.start()
        child_conn.close()
        self.task = None
        self.reported = 0
        self.started = False  # set by its "ready" message


def run_in_workers(tasks, n_workers, agents, env_id, features, bar):
    """The runs in ``n_workers`` worker processes, one run per worker at a time."""
    import multiprocessing
    from multiprocessing.connection import wait

    method = _start_method()
    context = multiprocessing.get_context(method)
    pending = deque(tasks)
    workers = []
    start_failures = 0

    def load_kernels():
        # Compile (or load from numba's cache) each actor's kernels here first,
        # so that workers never compile at the same time (spawned ones only load
        # the cache; forked ones inherit them).
        bar.note("loading the compiled kernels...")
        for kind in dict.fromkeys(type(agents[t["agent_index"]]) for t in tasks):
            train(env_id, next(a for a in agents if type(a) is kind), 1, 0, features)

    with sigterm_as_interrupt():
        try:
            if method == "fork":
                load_kernels()
            # Spawned workers import while this process loads the kernels;
            # they get their first run only once the loop below starts.
            workers = [_Worker(context, os.getpid()) for _ in range(n_workers)]
            if method != "fork":
                load_kernels()
            while workers:
                by_object = {w.conn: w for w in workers}
                by_object.update({w.process.sentinel: w for w in workers})
                for worker in dict.fromkeys(by_object[r] for r in wait(list(by_object), 1.0)):
                    # Read everything the worker sent before looking at whether it exited.
                    alive = True
                    try:
                        while worker.conn.poll():
                            _handle_message(worker, worker.conn.recv(), pending, bar)
                    except (EOFError, OSError):
                        alive = False
                    if alive and worker.process.is_alive():
                        continue
                    worker.process.join(timeout=5.0)
                    workers.remove(worker)
                    worker.conn.close()
                    if worker.task is not None:
                        _record_dead_worker(worker, bar)
                    if not worker.started:
                        start_failures += 1
                        if start_failures >= 3:
                            raise RuntimeError(
                                "avgreward worker processes exit as they start (exit code "
                                f"{worker.process.exitcode}); see the errors above")
                    if pending and len(workers) < n_workers:
                        workers.append(_Worker(context, os.getpid()))
        except BaseException as err:
            _stop_workers(workers)
            remove_partial_files(Path(tasks[0]["runs_dir"]).parent)
            if isinstance(err, _WriteFailed):
                raise err.error from None
            raise
        finally:
            for worker in workers:
                worker.conn.close()


def _handle_message(worker, message, pending, bar):
    kind, payload = message
    if kind == "write error":
        # Nothing more can be saved: stop the experiment and tell why.
        raise _WriteFailed(OSError(*payload))
    if kind == "progress":
        bar.add_steps(payload - worker.reported)
        worker.reported = payload
        return
    if kind == "done":
        bar.add_steps(worker.task["steps"] - worker.reported)
        bar.run_done(payload)
    worker.started = True
    # "ready" or "done": give the worker its next run, or let it exit.
    worker.task, worker.reported = None, 0
    task = pending.popleft() if pending else None
    try:
        worker.conn.send(task)
    except OSError:
        if task is not None:
            pending.appendleft(task)  # never reached the worker: someone else runs it
        raise
    worker.task = task


def _record_dead_worker(worker, bar):
    """A worker died during a run (killed, out of memory): record the run as failed.

    Its temporary files are removed at once.  If it died after writing the
    whole run (between the record and its "done" message), the run is kept.
    """
    task = worker.task
    runs, name = Path(task["runs_dir"]), run_name(task["agent_index"], task["seed"])
    for tmp in itertools.chain(runs.glob(f"{name}.npz.*.tmp"), runs.glob(f"{name}.json.*.tmp")):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    record = finished_record(runs, name)
    if record is None:
        record = write_run(runs, name, {}, run_record(
            task, status="failed", failure="error", steps_done=0, final_rbar=None,
            error=f"the worker process died (exit code {worker.process.exitcode})",
            wall_time=0.0))
    bar.add_steps(task["steps"] - worker.reported)
    bar.run_done(record)


def _stop_workers(workers, grace=30.0):
    """Ask every worker to stop at its next chunk; a write in progress is completed."""
    for worker in workers:
        with contextlib.suppress(OSError):
            worker.conn.send("stop")
    deadline = time.monotonic() + grace
    for worker in workers:
        while worker.process.is_alive() and time.monotonic() < deadline:
            # Keep reading, so that no worker blocks on a full pipe.
            with contextlib.suppress(EOFError, OSError):
                while worker.conn.poll(0.05):
                    worker.conn.recv()
            worker.process.join(timeout=0.05)
    for worker in workers:
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()


def _set_parent_death_signal():
    """On Linux, get SIGTERM when the parent dies (the parent-pid check covers the rest)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _worker_main(conn, parent_pid):
    """A worker process: run the tasks the parent sends until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminated = []
    signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
    _set_parent_death_signal()

    def parent_gone():
        return bool(terminated) or os.getppid() != parent_pid

    def on_chunk(done):
        if parent_gone():
            raise Stopped
        if conn.poll():  # the only message a busy worker can get is "stop"
            conn.recv()
            raise Stopped
        try:
            conn.send(("progress", done))
        except OSError:
            raise Stopped from None

    try:
        conn.send(("ready", None))
        while True:
            while not conn.poll(0.5):
                if parent_gone():
                    return
            task = conn.recv()
            if not isinstance(task, dict):
                return
            try:
                record = _run_one(task, on_chunk)
            except Stopped:
                return
            except OSError as err:  # the result could not be written (a full disk...)
                conn.send(("write error", (err.errno, err.strerror, err.filename)))
                return
            conn.send(("done", {key: record[key] for key in _DONE_KEYS}))
    except (EOFError, OSError):
        return
