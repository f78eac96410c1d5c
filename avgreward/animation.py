"""Watch a trained agent: roll out its learned policy and write a GIF.

The rollout runs the environment of the run (with ``render_mode="rgb_array"``
when frames are wanted) from its reset state and chooses each action from
``Result.policy``: sampled from the learned (stochastic) policy with a seeded
generator by default, which is the policy whose reward rate training
measured, or greedy (most likely action / Gaussian mean) on request.  The
learner does not change during a rollout.

The environment is the one training stepped, wrappers included: made from
``result.env_id`` (a registered id brings its registered wrappers, e.g.
``avgreward/MountainCarGoalBonus-v0`` its goal bonus, ``MountainCar-v0`` its
200-step time limit), or passed as ``env=``, e.g. the wrapped instance the
result was trained on: an id cannot say that an instance was wrapped.  A
result whose ``info["env_wrappers"]`` records the wrappers it was trained
with (class names outermost first, a time limit as ``"TimeLimit(200)"``) is
refused, rather than rolled out without them, when its id makes an
environment with other wrappers.

As in training's continuing stream (:mod:`avgreward.stepwise`), an episode
end is a reset: the step's reward counts, the environment is reset (not
reseeded) and the next observation is the new episode's start.
:class:`Rollout` records the steps at which episodes ended.

Frames are written with Pillow (a dependency of matplotlib), one at a time:
an animation of millions of steps needs no more memory than one of ten.
Pillow encodes each frame (LZW); the file around them is this module's
(``_GifStream``) rather than Pillow's ``save(..., save_all=True)``,
which keeps every frame until the end, merges identical ones and, on the
main job's GIF (``scripts/swingup_softmax.py``: 201 frames of 240 x 240
pixels), is slower or writes a larger file: fed the RGB frames (an
adaptive palette per frame) about 1.0 s and 329 kB with ``optimize``, 451
kB without; fed the frames mapped to this module's palette, 0.18-0.21 s
and 209 kB with ``optimize``, 0.07 s but 432 kB without; this module,
0.12-0.15 s and 171 kB (medians of writing the same frames, 2026).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium
import numpy as np

import avgreward.envs  # noqa: F401  (registers the environments)
from avgreward.agents import GaussianActorCritic
from avgreward.environments import env_name_of, wrapper_chain, check_trusted

__all__ = ["Rollout", "rollout", "iter_frames", "animate_policy"]


@dataclass
class Rollout:
    """What a rollout of a learned policy saw.

    Attributes
    ----------
    observations : ndarray, shape (steps + 1, obs_size)
        From the reset observation to the last one.  After a step that ended
        an episode, the next episode's start (the reset observation), as in
        training.
    actions : ndarray, shape (steps,)
        Discrete: action indices from 0 (the environment got
        ``action_space.start + index``).  Gaussian: the samples before the
        environment's clip (torques for the pendulum); for a squashed actor
        the actions the environment got.  As training records them.
    rewards : ndarray, shape (steps,)
        The rewards the environment (with its wrappers) gave.
    frames : list of ndarray
        RGB frames (H, W, 3) uint8 of steps 0, every, 2 every, ... if rendered.
    terminations, truncations : ndarray of int64
        The (0-based) steps at which an episode ended that way, each
        followed by a reset; as ``Result.info`` of a Python-stepped run.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    frames: list
    terminations: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    truncations: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def _walk(env, result, steps: int, seed: int, greedy: bool):
    """Reset ``env`` and act with the learned policy for ``steps`` steps.

    Yields ``(t, action, reward, observation, end)`` for ``t = 0 .. steps``,
    the state after ``t`` steps (``action`` and ``reward`` are None at
    ``t = 0``); ``end`` is ``"terminated"`` or ``"truncated"`` if step ``t``
    ended an episode (the environment has then been reset, and
    ``observation`` is the new start), else None.  :func:`rollout` and
    :func:`iter_frames` take the same actions: one uniform (discrete) or
    normal (Gaussian) draw per step from ``default_rng(seed)``.
    """
    choose = _chooser(env, result, seed, greedy)
    obs, _ = env.reset(seed=seed)
    obs = _as_observation(obs)
    yield 0, None, None, obs, None
    for t in range(1, steps + 1):
        action, env_action = choose(obs)
        obs, reward, terminated, truncated, _ = env.step(env_action)
        end = "terminated" if terminated else "truncated" if truncated else None
        if end is not None:
            # Training's continuing view: an episode end is a reset, not reseeded.
            obs, _ = env.reset()
        yield t, action, float(reward), _as_observation(obs), end


def _chooser(env, result, seed: int, greedy: bool):
    """Return ``choose(observation) -> (action, env_action)`` for the learned policy."""
    from gymnasium import spaces

    rng = np.random.default_rng(seed)
    space = env.action_space
    if isinstance(space, spaces.Discrete):
        start = int(space.start)

        def choose(obs):
            probs = np.asarray(result.policy(obs))
            if greedy:
                action = int(np.argmax(probs))
            else:
                action = int(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum(),
                                             side="right"))
                action = min(action, probs.size - 1)
            return action, start + action

        return choose
    low = float(np.asarray(space.low).reshape(-1)[0])
    high = float(np.asarray(space.high).reshape(-1)[0])
    squash = False
    if isinstance(result.agent, GaussianActorCritic):
        from avgreward.stepwise import resolve_squash

        squash = resolve_squash(result.agent, env, result.env_id, space, low, high)

    def choose(obs):
        mean, sigma = result.policy(obs)
        action = mean if greedy else mean + sigma * rng.standard_normal()
        if squash:
            # The squashed actor's Gaussian is over u; the environment gets
            # low + (high - low) (tanh(u) + 1) / 2, as in training.
            action = low + (high - low) * (math.tanh(action) + 1.0) / 2.0
        return action, np.full(space.shape, action, space.dtype)

    return choose


def _as_observation(obs) -> np.ndarray:
    return np.atleast_1d(np.asarray(obs, dtype=np.float64))


def _check_steps(steps: int, every: int) -> None:
    if steps < 1 or every < 1:
        raise ValueError(f"steps and every must be >= 1, got steps={steps}, every={every}")


def _open_env(result, env, render: bool, trust: bool = False):
    """The environment to roll ``result`` out in, and whether this module made it (and closes it).

    ``env`` given: checked to be the result's environment, with spaces that
    fit its policy.  Else made from ``result.env_id``; refused if the result
    records other wrappers than that gives (see :func:`wrapper_chain`).
    """
    render_mode = "rgb_array" if render else None
    if env is None:
        check_trusted(result.env_id, trust)
        try:
            made = gymnasium.make(result.env_id, render_mode=render_mode)
        except (gymnasium.error.Error, ImportError, AttributeError, TypeError) as error:
            raise ValueError(
                f"cannot make the environment of the result, {result.env_id!r} ({error}): pass "
                "env=, the environment it was trained on"
            ) from error
        recorded = result.info.get("env_wrappers")
        if recorded is not None and list(recorded) != wrapper_chain(made):
            made.close()
            raise ValueError(
                f"the result was trained on {result.env_id} wrapped in "
                f"{list(recorded) or 'nothing'}, but gymnasium.make({result.env_id!r}) gives "
                f"{wrapper_chain(made) or 'no wrapper'}: pass env=, the environment it was "
                "trained on, rather than roll it out without its wrappers"
            )
        return made, True
    if not isinstance(env, gymnasium.Env):
        raise ValueError(f"env must be a gymnasium.Env, got {env!r}")
    if render and env.render_mode != "rgb_array":
        raise ValueError(f"env must be made with render_mode='rgb_array' to draw frames, got "
                         f"render_mode={env.render_mode!r}")
    if env_name_of(env) != result.env_id and not _same_environment(env, result.env_id):
        raise ValueError(f"env is {env_name_of(env)}, but the result was trained on "
                         f"{result.env_id}")
    _check_spaces(env, result)
    return env, False


def _same_environment(env, env_id) -> bool:
    """Whether ``gymnasium.make(env_id)`` is the environment class of ``env`` (in any wrappers)."""
    try:
        made = gymnasium.make(env_id)
    except (gymnasium.error.Error, ImportError, AttributeError, TypeError):
        return False
    try:
        return type(made.unwrapped) is type(env.unwrapped)
    finally:
        made.close()


def _check_spaces(env, result) -> None:
    from gymnasium import spaces

    obs_space, act_space = env.observation_space, env.action_space
    n_dims = result.features.n_dims
    if not (isinstance(obs_space, spaces.Box) and obs_space.shape in ((n_dims,), ())
            and int(np.prod(obs_space.shape)) == n_dims):
        raise ValueError(f"env: its observation space {obs_space} does not fit the result's "
                         f"features over {n_dims} dimension(s)")
    from avgreward.learners.registry import driver_for

    gaussian = bool(driver_for(result.agent, "result.agent").continuous(result.agent))
    if gaussian != (not isinstance(act_space, spaces.Discrete)):
        raise ValueError(f"env: its action space {act_space} does not fit the result's "
                         f"{'Gaussian' if gaussian else 'discrete'} policy")


def rollout(result, steps: int = 400, seed: int = 0, greedy: bool = False,
            render: bool = False, every: int = 1, *, env=None, trust: bool = False) -> Rollout:
    """Run the learned policy of ``result`` in its environment, without learning.

    Parameters
    ----------
    result : avgreward.Result
        A trained run (``result.env_id``, ``result.policy``).
    steps : int, default 400
        Steps to run from the environment's reset.  An episode end (a
        termination or a truncation) resets the environment, as in training.
    seed : int, default 0
        Seeds the action sampling (``np.random.default_rng(seed)``) and the
        environment's first reset (random starts); later resets are not
        reseeded.
    greedy : bool, default False
        Take the most likely action (the mean for a Gaussian policy) instead
        of sampling the learned stochastic policy.
    render : bool, default False
        Keep an RGB frame of every ``every``-th state (the first and the last
        state are always kept). All frames stay in memory (400 x 400 x 3
        bytes each for the pendulum); :func:`iter_frames` hands them out one
        at a time instead.
    every : int, default 1
    env : gymnasium.Env, optional
        Roll out in this environment (reset with ``seed``, left open), e.g.
        the wrapped instance the result was trained on; made with
        ``render_mode="rgb_array"`` if ``render``.  By default
        ``gymnasium.make(result.env_id)``, with the wrappers the id registers.
    trust : bool, default False
        Allow importing the module that ``result.env_id`` names
        (``"my_tasks:my/Task-v0"``); a result read from disk names it itself,
        so it is imported only if it is imported already or ``trust`` is true
        (:func:`avgreward.environments.check_trusted`).  The same in
        :func:`iter_frames` and :func:`animate_policy`.

    Returns
    -------
    Rollout

    Raises
    ------
    ValueError
        If ``steps`` or ``every`` is < 1; if ``env`` is not the result's
        environment or its spaces do not fit the policy; if the result's
        environment cannot be made from its id, or the result records
        wrappers its id does not give (pass ``env=``).
    """
    _check_steps(steps, every)
    env, owned = _open_env(result, env, render, trust)
    discrete = isinstance(env.action_space, gymnasium.spaces.Discrete)
    observations = []
    actions = np.empty(steps, dtype=np.int64 if discrete else np.float64)
    rewards = np.empty(steps)
    ends = {"terminated": [], "truncated": []}
    frames = []
    try:
        for t, action, reward, obs, end in _walk(env, result, steps, seed, greedy):
            observations.append(obs)
            if t > 0:
                actions[t - 1] = action
                rewards[t - 1] = reward
                if end is not None:
                    ends[end].append(t - 1)
            if render and (t % every == 0 or t == steps):
                frames.append(env.render())
    finally:
        if owned:
            env.close()
    return Rollout(np.stack(observations), actions, rewards, frames,
                   np.array(ends["terminated"], dtype=np.int64),
                   np.array(ends["truncated"], dtype=np.int64))


def iter_frames(result, steps: int = 400, every: int = 1, *, seed: int = 0,
                greedy: bool = False, env=None,
                trust: bool = False) -> Iterator[tuple[int, float | None, np.ndarray]]:
    """Render the rollout of :func:`rollout` frame by frame, keeping none of them.

    The same actions as ``rollout(result, steps, seed, greedy, render=True,
    every=every)`` (same seed, same frames), but each frame is handed out
    as soon as it is drawn, so memory does not grow with ``steps``.

    Parameters
    ----------
    result : avgreward.Result
        A trained run.
    steps : int, default 400
        Steps to run from the environment's reset.
    every : int, default 1
        Render every ``every``-th state (the first and the last state are
        always rendered).
    seed, greedy, env
        As in :func:`rollout` (``env`` made with ``render_mode="rgb_array"``).

    Yields
    ------
    step : int
        Steps taken before the frame: 0, every, 2 every, ..., steps.
    reward : float or None
        The reward of that step (``None`` for the reset state, step 0).
    frame : ndarray of uint8, shape (H, W, 3)
        The environment's ``rgb_array`` render (after an episode end, of the
        new episode's start). Copy it to keep it past the next iteration: an
        environment may draw into the same buffer.

    Raises
    ------
    ValueError
        If ``steps`` or ``every`` is < 1, or the environment is refused (see
        :func:`rollout`): raised by the call, before any step.
    """
    _check_steps(steps, every)
    env, owned = _open_env(result, env, render=True, trust=trust)
    return _frames(env, owned, result, steps, every, seed, greedy)


def _frames(env, owned, result, steps, every, seed, greedy):
    # try/finally: a consumer that stops early (or fails) still closes the env,
    # when the generator is closed or collected.
    try:
        for t, _, reward, _, _ in _walk(env, result, steps, seed, greedy):
            if t % every == 0 or t == steps:
                yield t, reward, env.render()
    finally:
        if owned:
            env.close()


# A frame with a pixel shown more than this many levels off (in some channel)
# by its palette entry makes the palette grow. 32 of 255 keeps the drawings'
# flat colours exact while the in-between shades of anti-aliased text and of
# resizing (which are many, and change from frame to frame) reuse entries
# instead of filling the palette within a few frames.
_PALETTE_TOLERANCE = 32
# Entries this far apart (Euclidean) each map to themselves, see _palette_entries.
_PALETTE_SPACING = 11
# At most this many entries are added for one frame, so that colours that
# first appear later (the pendulum's torque bar is not drawn at rest) still
# find room among the GIF's 255.
_PALETTE_BATCH = 64
# The palette holds at most 255 colours: entry 255 is never a colour but marks
# the pixels of a frame's rectangle that did not change (transparent, showing
# the frame before), long runs that LZW packs well: 38% smaller files.
_COLORS = 255
_UNCHANGED = 255


class _GifStream:
    """Write a looping GIF one frame at a time, holding only the previous frame.

    Every frame indexes one global colour table that grows as frames bring
    colours it cannot show (up to 255 entries, never changing an entry once
    written, so earlier frames stay right). The table's 768 bytes are
    reserved in the header and filled in by :meth:`close`, which is why the
    file must be seekable. Quantising against one table for the whole GIF,
    without dithering, costs far less than an adaptive palette per frame.
    Each frame after the first is stored as the rectangle that changed since
    the previous one, as Pillow's own writer does; only that rectangle is
    quantised, and its pixels that did not change are written as
    transparent (as Pillow's ``optimize`` does): they, like the pixels
    outside it, keep the entries earlier frames gave them (an entry, once
    written, never changes).

    Parameters
    ----------
    fp : binary file, seekable, positioned at 0
    size : (int, int)
        Width and height of every frame.
    duration : int
        Milliseconds per frame (GIF stores hundredths).
    """

    def __init__(self, fp, size: tuple[int, int], duration: int):
        self._fp = fp
        self._size = size
        self._duration = duration
        self._colors = np.empty((0, 3), dtype=np.uint8)
        self._palette_image = None
        self._previous = None
        width, height = size
        fp.write(b"GIF89a" + _u16(width) + _u16(height)
                 # global colour table of 2**(7 + 1) entries, 8 bits per primary
                 + bytes([0x80 | 0x70 | 0x07, 0, 0])
                 + bytes(768)
                 # NETSCAPE2.0 application extension: loop forever
                 + b"!\xff\x0bNETSCAPE2.0\x03\x01" + _u16(0) + b"\x00")

    def write(self, image) -> None:
        """Append one RGB Pillow image of the stream's size."""
        from PIL import GifImagePlugin, Image

        if image.size != self._size or image.mode != "RGB":
            raise ValueError(f"frames must be RGB images of size {self._size}, "
                             f"got {image.mode} {image.size}")
        width, height = self._size
        # Rows of bytes: reductions along (height, 3 width) are ~50 times faster
        # than along the 3 channels of (height, width, 3).
        pixels = np.asarray(image).reshape(height, 3 * width)
        box = (0, 0, width, height)
        previous, self._previous = self._previous, pixels
        if previous is None:
            part = self._quantize(image)
            extra = {}
        else:
            changed = pixels != previous
            rows = np.flatnonzero(changed.any(axis=1))
            # An unchanged frame is still written (as one unchanged pixel) so
            # that the GIF has one frame per rendered step.
            box = (0, 0, 1, 1)
            if rows.size:
                cols = np.flatnonzero(changed[rows[0]:rows[-1] + 1].any(axis=0)) // 3
                box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
            part = self._quantize(image.crop(box))
            left, top, right, bottom = box
            inside = changed[top:bottom, 3 * left:3 * right]
            # three strided ORs: ~10 times faster than any() along the 3 channels
            same = ~(inside[:, 0::3] | inside[:, 1::3] | inside[:, 2::3])
            part.paste(_UNCHANGED, mask=Image.fromarray(same.astype(np.uint8) * 255))
            extra = {"transparency": _UNCHANGED}
        # disposal 1: leave the frame in place, the next one draws over it.
        for chunk in GifImagePlugin.getdata(part, offset=box[:2], duration=self._duration,
                                            disposal=1, **extra):
            self._fp.write(chunk)

    def _quantize(self, image):
        """Map ``image`` to palette indices, first growing the palette if it must."""
        from PIL import Image, ImageChops

        if self._palette_image is not None:
            indexed = image.quantize(palette=self._palette_image, dither=Image.Dither.NONE)
            off = np.asarray(ImageChops.difference(image, indexed.convert("RGB")))
            off = off > _PALETTE_TOLERANCE
            if not off.any() or len(self._colors) == _COLORS:
                return indexed
            misfits = np.asarray(image)[off.any(axis=2)]
        else:
            misfits = np.asarray(image).reshape(-1, 3)
        new = _palette_entries(misfits, self._colors, min(_COLORS - len(self._colors), _PALETTE_BATCH))
        self._colors = np.concatenate([self._colors, new])
        self._palette_image = Image.new("P", (1, 1))
        self._palette_image.putpalette(self._colors.ravel().tolist())
        return image.quantize(palette=self._palette_image, dither=Image.Dither.NONE)

    def close(self) -> None:
        """Write the trailer and the final colour table; the stream is then done."""
        self._fp.write(b";")
        self._fp.seek(13)  # the colour table follows the 13-byte header
        table = np.zeros((256, 3), dtype=np.uint8)
        table[:len(self._colors)] = self._colors
        self._fp.write(table.tobytes())


def _palette_entries(pixels: np.ndarray, palette: np.ndarray, room: int) -> np.ndarray:
    """Up to ``room`` colours of ``pixels`` to add to ``palette``, most frequent first.

    Each new colour is at least ``_PALETTE_SPACING`` away from every entry
    already chosen. Pillow maps a colour to the entry nearest to the colour
    rounded down to a multiple of 4 in each channel (its palette cache), so
    two entries closer than about 10 could take each other's pixels (white
    drawn as the 252 grey of the caption's anti-aliasing); spaced entries
    each map to themselves. Taking real colours by frequency, not the means
    of median cut, keeps the flat colours of a drawing exact.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (n, 3)
    palette : ndarray of uint8, shape (k, 3)
    room : int

    Returns
    -------
    ndarray of uint8, shape (m, 3), m <= room
    """
    keys = pixels.astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
    distinct, counts = np.unique(keys, return_counts=True)
    distinct = distinct[np.argsort(-counts, kind="stable")]
    candidates = np.stack([distinct >> 16, (distinct >> 8) & 0xFF, distinct & 0xFF], axis=1)
    chosen = np.empty((len(palette) + room, 3), dtype=np.int64)
    chosen[:len(palette)] = palette
    n = len(palette)
    for color in candidates:
        if n == len(chosen):
            break
        if n == 0 or np.min(np.sum((chosen[:n] - color) ** 2, axis=1)) >= _PALETTE_SPACING ** 2:
            chosen[n] = color
            n += 1
    return chosen[len(palette):n].astype(np.uint8)


def _u16(value: int) -> bytes:
    return int(value).to_bytes(2, "little")


def animate_policy(result, path, steps: int = 400, every: int = 2, *, seed: int = 0,
                   greedy: bool = False, fps: float | None = None, size: int | None = None,
                   caption: bool = True, env=None, trust: bool = False) -> str:
    """Write a GIF of the learned policy of ``result`` acting from the reset state.

    For the pendulum: from hanging down, the swing-up and the balance (a
    trained agent needs about 100-200 steps to get up).

    Each frame is rendered, scaled, captioned, mapped to the GIF's palette
    and written before the next step is taken, so memory does not depend on
    ``steps``. One palette (at most 255 colours) serves the whole GIF; it is
    built from the frames as they come: the drawings' flat colours are kept
    exactly, in-between shades (anti-aliased text, scaled edges) are shown
    at most 32 levels off in each channel (more only if the frames hold
    over 255 clearly different colours).

    Parameters
    ----------
    result : avgreward.Result
        A trained run.
    path : str or Path
        The ``.gif`` to write. It appears only once complete (the frames go
        to a temporary file beside it, renamed at the end).
    steps : int, default 400
        Environment steps to show.
    every : int, default 2
        Keep every ``every``-th frame.
    seed, greedy
        As in :func:`rollout`.
    fps : float, optional
        Frames per second of the GIF; default real time (the environment's
        ``render_fps / every``).
    size : int, optional
        Scale frames so their larger side is ``size`` pixels (smaller files),
        each output pixel the mean of the frame's pixels it covers (a box
        filter: the drawing's edges come out anti-aliased, its flat colours
        unchanged).
    caption : bool, default True
        Print the step and the reward on each frame.
    env : gymnasium.Env, optional
        As in :func:`rollout`; made with ``render_mode="rgb_array"``.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ValueError
        If ``path`` does not end in ``.gif``, ``steps``, ``every`` or
        ``size`` is < 1, ``fps`` is not positive, or the environment is
        refused (see :func:`rollout`).
    """
    from PIL import Image, ImageDraw, ImageFont

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"path must end in .gif, got {str(path)!r}")
    if size is not None and size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    _check_steps(steps, every)
    env, owned = _open_env(result, env, render=True, trust=trust)
    frames = _frames(env, False, result, steps, every, seed, greedy)
    try:
        if fps is None:
            fps = env.metadata.get("render_fps", 20) / every
        duration = max(20, round(1000.0 / fps))
        path.parent.mkdir(parents=True, exist_ok=True)
        # This process's own temporary name: two animations to one file never share it.
        partial = path.with_name(f"{path.name}.{os.getpid()}.part")
        font = None
        stream = None
        scaled = None
        try:
            with open(partial, "wb") as fp:
                for step, reward, frame in frames:
                    image = Image.fromarray(frame)
                    if image.mode != "RGB":
                        image = image.convert("RGB")
                    if size is not None:
                        if scaled is None:
                            scale = size / max(image.size)
                            scaled = (max(1, round(image.width * scale)),
                                      max(1, round(image.height * scale)))
                        if scaled != image.size:
                            # A box filter: three times cheaper than Lanczos, and
                            # no ringing around the drawing's flat colours.
                            image = image.resize(scaled, Image.Resampling.BOX)
                    if caption:
                        if font is None:
                            try:
                                font = ImageFont.load_default(size=max(10, image.height // 22))
                            except TypeError:  # Pillow < 10.1: one small bitmap font
                                font = ImageFont.load_default()
                        text = f"step {step}"
                        if reward is not None:
                            # round() first: no "-0.00" once the pendulum is up.
                            text += f"   reward {round(reward, 2) + 0.0:.2f}"
                        ImageDraw.Draw(image).text((6, 4), text, fill=(40, 40, 40), font=font)
                    if stream is None:
                        stream = _GifStream(fp, image.size, duration)
                    stream.write(image)
                stream.close()
            partial.replace(path)
        except BaseException:
            # No half-written GIF left behind (e.g. on Ctrl-C in a long animation).
            partial.unlink(missing_ok=True)
            raise
    finally:
        frames.close()
        if owned:
            env.close()
    return str(path)
