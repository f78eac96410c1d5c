"""A run's options and arrays, shared by the fused loop and the Python-stepped path.

Memory: by default a run keeps the reward of every step (4 bytes a step).
With ``bin_size`` the kernels write into one buffer of at most
``chunk_steps`` rewards, folded between chunks into float64 bin sums
(:func:`_fold_bins`), so memory no longer grows with the number of steps and
the bins do not depend on the chunking.  Before allocating, a run checks
what its arrays would need against the memory available
(:func:`_available_memory`) and says how to avoid a run that cannot fit.
"""


from __future__ import annotations

import os
import time

import numpy as np
from numba import njit

from avgreward.options import MAX_STEPS as _MAX_STEPS  # noqa: F401 (its earlier home)
from avgreward.options import RunOptions
from avgreward.result import DivergenceError, Result, bin_end_steps

__all__ = ["RunOptions", "EpisodeEnds"]


# The bin count suggested when per-step rewards do not fit (the runner's default).
_SUGGESTED_BINS = 10_000


def _available_memory():
    """Bytes of memory the run can still take, or None if this system does not say.

    Linux: ``MemAvailable`` of ``/proc/meminfo`` (free memory plus the caches
    the kernel can drop: free memory alone, ``SC_AVPHYS_PAGES``, can be a
    small part of it on a machine that has read large files).  Elsewhere
    ``SC_AVPHYS_PAGES``, else the total physical memory.  (Tests replace this
    function.)
    """
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            count, size = os.sysconf(pages), os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
            continue
        if count > 0 and size > 0:
            return count * size
    return None


def _size(n_bytes):
    """A byte count for people: GB, or MB below a tenth of a GB."""
    if n_bytes >= 1e8:
        return f"{n_bytes / 1e9:,.1f} GB"
    return f"{n_bytes / 1e6:,.1f} MB"


def check_memory(steps, bin_size, record_actions, rbar_every, chunk_steps, weights=0):
    """Raise a ValueError saying how to avoid it if a run's arrays exceed the memory available.

    ``weights`` is the learner's arrays' byte count (weights, traces, and the
    fused loop's working copy of them).
    """
    parts = [(weights, "the learner's weights, traces and their working copy",
              "use fewer features (tiles, tilings)")]  # (bytes, what, how to avoid it)
    if bin_size is None:
        parts.append((4 * steps, "per-step rewards, 4 bytes a step",
                      f"pass bin_size=... (e.g. bin_size="
                      f"{-(-steps // _SUGGESTED_BINS):_} for {_SUGGESTED_BINS:,} bins): rewards "
                      "are then kept per step only for one chunk and returned as bin means, "
                      "so memory does not depend on steps"))
    else:
        parts.append((8 * -(-steps // bin_size),
                      f"{-(-steps // bin_size):,} bin means of {bin_size:,} step(s) each",
                      "pass a larger bin_size"))
        parts.append((4 * min(chunk_steps, steps), "the rewards of one chunk, 4 bytes a step",
                      "pass a smaller chunk_steps"))
    if record_actions:
        parts.append((8 * steps, "recorded actions, 8 bytes a step",
                      "leave record_actions off (it keeps the action of every step)"))
    parts.append((8 * (steps // rbar_every), f"R-bar every {rbar_every:,} steps",
                  "pass a larger rbar_every"))
    need = sum(part[0] for part in parts)
    available = _available_memory()
    if available is None or need <= available:
        return
    # Name only the arrays that matter: a 80 kB R-bar trace beside 4 TB of rewards is noise.
    big = [part for part in parts if part[0] >= need / 100]
    per_step = any("step" in what for size, what, _ in big if size > available / 10)
    raise ValueError(
        (f"steps={steps:,}: " if per_step else "")
        + f"the run's arrays would need {_size(need)} ("
        + "; ".join(f"{what}: {_size(size)}" for size, what, _ in big)
        + f") but this machine has {_size(available)} of memory available. To avoid it, "
        + "; and ".join(how for size, _, how in big if size > available / 10) + "."
    )


@njit(cache=True, error_model="numpy")
def _fold_bins(rewards, n, t0, bin_size, bin_sums):
    """Add the rewards of steps ``t0 .. t0+n-1`` (``rewards[:n]``) into their bins' sums.

    Each bin's sum is built one step at a time in step order, in float64 from
    the float32 rewards (the values a per-step run records), so that it is
    the same to the bit however the run was cut into chunks.
    """
    i = 0
    while i < n:
        b = (t0 + i) // bin_size
        end = min(n, (b + 1) * bin_size - t0)  # past this bin's last step in the buffer
        total = bin_sums[b]
        for j in range(i, end):
            total += np.float64(rewards[j])
        bin_sums[b] = total
        i = end


class RunArrays:
    """The arrays one run updates in place (the kernels' side of the learner), and its outputs.

    The chunk loop asks :meth:`outputs` where to write the rewards and
    actions of its next chunk and calls :meth:`fold` after it.  Per step
    (``bin_size`` None) those are views of whole-run arrays; binned, the
    rewards go to one buffer of ``min(chunk_steps, steps)`` that :meth:`fold`
    adds into the bin sums.  Invariant: the next chunk starts at step
    ``self.folded``, and the buffer holds the steps from there.
    """

    def __init__(self, env_id, agent, features, options: RunOptions, *, action_dtype,
                 weights=None, weights_bytes=0):
        steps, bin_size, chunk_steps = options.steps, options.bin_size, options.chunk_steps
        check_memory(steps, bin_size, options.record_actions, options.rbar_every, chunk_steps,
                     weights_bytes)
        self.env_id, self.agent, self.seed, self.features = env_id, agent, options.seed, features
        self.started = time.perf_counter()
        # Result.weights: a dict, or a function giving it when the run ends (its driver's).
        self.weights = weights
        self.extra_info = {}  # what the run's driver adds to every result's info
        self.rbar_box = np.zeros(1)
        self.bin_size = bin_size
        self.folded = 0
        self.record_actions = options.record_actions
        self.rbar_every = options.rbar_every
        try:
            # float32 rewards: per step, or a chunk's worth folded into float64 bin sums.
            self.rewards = np.zeros(steps if bin_size is None else min(chunk_steps, steps),
                                    dtype=np.float32)
            self.bin_sums = np.zeros(0 if bin_size is None else -(-steps // bin_size))
            self.actions = np.zeros(steps if options.record_actions else 0, dtype=action_dtype)
            self.rbar_trace = np.zeros(steps // options.rbar_every)
        except MemoryError:
            # Where _available_memory cannot tell, numpy's error is the first sign.
            raise ValueError(
                f"steps={steps:,}: the run's arrays could not be allocated; pass bin_size=... "
                "to keep the memory independent of steps (and leave record_actions off)"
            ) from None

    def outputs(self, t0, n):
        """``(rewards, actions)`` for the kernels to write steps ``t0 .. t0+n-1`` at 0 .. n-1."""
        actions = self.actions[t0:t0 + n] if self.record_actions else self.actions
        if self.bin_size is None:
            return self.rewards[t0:t0 + n], actions
        return self.rewards, actions

    def fold(self, done):
        """Steps up to ``done`` (1-based) are written: add the buffered ones into their bins."""
        if self.bin_size is not None and done > self.folded:
            _fold_bins(self.rewards, done - self.folded, self.folded, self.bin_size,
                       self.bin_sums)
        self.folded = max(self.folded, done)

    def result(self, done, info=None) -> Result:
        """The Result of the first ``done`` steps (their rewards are written)."""
        self.fold(done)
        info = {**(info or {}), **self.extra_info}
        if self.bin_size is None:
            rewards = self.rewards[:done]
        else:
            ends = bin_end_steps(done, self.bin_size)
            rewards = self.bin_sums[:ends.size] / np.diff(ends, prepend=0)
            info.update(bin_size=self.bin_size, bin_steps=ends)
        weights = self.weights() if callable(self.weights) else self.weights
        n_rbar = done // self.rbar_every
        return Result(
            env_id=self.env_id, agent=self.agent, seed=self.seed, steps=done,
            rewards=rewards, rbar=self.rbar_trace[:n_rbar],
            rbar_steps=np.arange(1, n_rbar + 1, dtype=np.int64) * self.rbar_every,
            final_rbar=float(self.rbar_box[0]), weights=weights, features=self.features,
            actions=self.actions[:done] if self.record_actions else None,
            wall_time=time.perf_counter() - self.started, info=info,
        )

    def diverged(self, step, info=None) -> DivergenceError:
        """The error for a run that went non-finite at ``step``, holding the steps before it."""
        return DivergenceError(
            f"training diverged at step {step}: the TD error or the policy became "
            f"non-finite (env={self.env_id}, seed={self.seed}, {self.agent!r}). Smaller step "
            f"sizes usually help. The result of steps 0..{step - 1} is in this error's "
            ".result.",
            step,
            self.result(step, info),
        )


class EpisodeEnds:
    """The steps at which an episodic environment's episodes ended, as the stepwise path has them.

    ``Result.info["terminations"]`` and ``"truncations"`` (episodes cut at
    ``cap`` steps): the (0-based) steps, or with ``bin_size`` the number in
    each bin (memory independent of the steps); ``"episode_returns"`` and
    ``"episode_lengths"``: each finished episode's total reward (float64 sum
    of the float32 rewards) and its steps, and ``"episode_end_steps"``: the
    run's step count when it ended (its last step + 1, as ``bin_steps``),
    binned or not: 24 bytes an episode, kept whole since episodes are what
    an episodic task is judged by (a run of short episodes that cannot
    afford them is one of millions of episodes).  Nothing for a continuing
    environment.  ``count`` is the kernel's: ``[0]`` ends written in the
    last call, ``[1]`` steps of the current episode so far, ``[2]`` the cap
    (0: none).
    """

    def __init__(self, episodic, steps, chunk, bin_size, cap=0):
        self.episodic, self.bin_size = episodic, bin_size
        self.buffer = np.zeros(chunk if episodic else 0, dtype=np.int64)
        self.count = np.array([0, 0, cap], dtype=np.int64)
        self.steps = ([], [])
        n_bins = -(-steps // bin_size) if episodic and bin_size else 0
        self.per_bin = (np.zeros(n_bins, np.int64), np.zeros(n_bins, np.int64))
        # Each finished episode's return (the float64 sum of its float32 rewards) and
        # length; the current episode's so far.
        self.returns, self.lengths, self.end_steps = [], [], []
        self.partial_return, self.partial_length = 0.0, 0

    def collect(self, done, rewards=None, t0=0):
        """Take the kernel's ends of its last chunk (those before step ``done``).

        ``rewards[i]`` is the reward of step ``t0 + i`` (the chunk's), for the
        episodes' returns.
        """
        ends = self.buffer[:self.count[0]]
        for kind, steps in enumerate((ends[ends >= 0], -1 - ends[ends < 0])):
            steps = steps[steps < done]
            if self.bin_size is None:
                self.steps[kind].append(steps.copy())
            else:
                np.add.at(self.per_bin[kind], steps // self.bin_size, 1)
        if self.episodic and rewards is not None:
            in_order = np.where(ends >= 0, ends, -1 - ends)  # the kernel wrote them in order
            in_order = in_order[in_order < done]
            self._episodes(rewards[:done - t0].astype(np.float64), in_order - t0 + 1)
            self.end_steps.append(in_order + 1)
        self.count[0] = 0

    def _episodes(self, rewards, cuts):
        """Returns and lengths of the episodes ending in this chunk (at ``cuts``, exclusive)."""
        if cuts.size:
            starts = np.concatenate([[0], cuts[:-1]])
            sums = np.add.reduceat(rewards[:cuts[-1]], starts)
            lengths = np.diff(np.concatenate([[0], cuts]))
            sums[0] += self.partial_return
            lengths[0] += self.partial_length
            self.returns.append(sums)
            self.lengths.append(lengths.astype(np.int64))
            rest = rewards[cuts[-1]:]
            self.partial_return, self.partial_length = float(rest.sum()), rest.size
        else:
            self.partial_return += float(rewards.sum())
            self.partial_length += rewards.size

    def info(self, done):
        if not self.episodic:
            return {}
        names = ("terminations", "truncations")
        if self.bin_size is None:
            info = {name: np.concatenate(steps) if steps else np.zeros(0, np.int64)
                    for name, steps in zip(names, self.steps)}
        else:
            n = -(-done // self.bin_size)
            info = {name: counts[:n].copy() for name, counts in zip(names, self.per_bin)}
        info["episode_returns"] = (np.concatenate(self.returns) if self.returns
                                   else np.zeros(0))
        info["episode_lengths"] = (np.concatenate(self.lengths) if self.lengths
                                   else np.zeros(0, np.int64))
        info["episode_end_steps"] = (np.concatenate(self.end_steps).astype(np.int64)
                                     if self.end_steps else np.zeros(0, np.int64))
        return info
