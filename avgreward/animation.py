"""Watch a trained agent: roll out its learned policy and write a GIF.

The rollout runs the gymnasium environment of the run (with
``render_mode="rgb_array"`` when frames are wanted) from its reset state
and chooses each action from ``Result.policy``: sampled from the learned
(stochastic) policy with a seeded generator by default, which is the policy
whose reward rate training measured, or greedy (most likely action /
Gaussian mean) on request.  The learner does not change during a rollout.
Frames are written with Pillow (a dependency of matplotlib).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numpy as np

import envs  # noqa: F401  (registers the environments)
from avgreward.agents import SoftmaxActorCritic

__all__ = ["Rollout", "rollout", "animate_policy"]


@dataclass
class Rollout:
    """What a rollout of a learned policy saw.

    Attributes
    ----------
    observations : ndarray, shape (steps + 1, obs_size)
        From the reset observation to the last one.
    actions : ndarray, shape (steps,)
        Action indices (discrete) or torques before clipping (Gaussian).
    rewards : ndarray, shape (steps,)
    frames : list of ndarray
        RGB frames (H, W, 3) uint8 of steps 0, every, 2 every, ... if rendered.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    frames: list


def rollout(result, steps: int = 400, seed: int = 0, greedy: bool = False,
            render: bool = False, every: int = 1) -> Rollout:
    """Run the learned policy of ``result`` in its environment, without learning.

    Parameters
    ----------
    result : avgreward.Result
        A trained run (``result.env_id``, ``result.policy``).
    steps : int, default 400
        Steps to run from the environment's reset.
    seed : int, default 0
        Seeds the action sampling (``np.random.default_rng(seed)``) and the
        environment's reset (random starts of the gridworld).
    greedy : bool, default False
        Take the most likely action (the mean for a Gaussian policy) instead
        of sampling the learned stochastic policy.
    render : bool, default False
        Keep an RGB frame of every ``every``-th state (the first and the last
        state are always kept).
    every : int, default 1

    Returns
    -------
    Rollout
    """
    if steps < 1 or every < 1:
        raise ValueError(f"steps and every must be >= 1, got steps={steps}, every={every}")
    env = gymnasium.make(result.env_id, render_mode="rgb_array" if render else None)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    discrete = isinstance(result.agent, SoftmaxActorCritic)
    observations = [np.atleast_1d(np.asarray(obs, dtype=np.float64))]
    actions = np.empty(steps, dtype=np.int64 if discrete else np.float64)
    rewards = np.empty(steps)
    frames = [env.render()] if render else []
    for t in range(steps):
        if discrete:
            probs = result.policy(observations[-1])
            if greedy:
                action = int(np.argmax(probs))
            else:
                action = int(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum(),
                                             side="right"))
                action = min(action, probs.size - 1)
            env_action = action
        else:
            mean, sigma = result.policy(observations[-1])
            action = mean if greedy else mean + sigma * rng.standard_normal()
            env_action = np.array([action])
        obs, reward, _, _, _ = env.step(env_action)
        actions[t] = action
        rewards[t] = reward
        observations.append(np.atleast_1d(np.asarray(obs, dtype=np.float64)))
        if render and ((t + 1) % every == 0 or t + 1 == steps):
            frames.append(env.render())
    env.close()
    return Rollout(np.stack(observations), actions, rewards, frames)


def animate_policy(result, path, steps: int = 400, every: int = 2, *, seed: int = 0,
                   greedy: bool = False, fps: float | None = None, size: int | None = None,
                   caption: bool = True) -> str:
    """Write a GIF of the learned policy of ``result`` acting from the reset state.

    For the pendulum: from hanging down, the swing-up and the balance (a
    trained agent needs about 100-200 steps to get up).

    Parameters
    ----------
    result : avgreward.Result
        A trained run.
    path : str or Path
        The ``.gif`` to write.
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
        Scale frames so their larger side is ``size`` pixels (smaller files).
    caption : bool, default True
        Print the step and the reward on each frame.

    Returns
    -------
    str
        The path written.
    """
    from PIL import Image, ImageDraw, ImageFont

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"path must end in .gif, got {str(path)!r}")
    run = rollout(result, steps, seed=seed, greedy=greedy, render=True, every=every)
    if fps is None:
        env = gymnasium.make(result.env_id)
        render_fps = env.metadata.get("render_fps", 20)
        env.close()
        fps = render_fps / every
    shown = [0] + [min(k * every, steps) for k in range(1, len(run.frames))]
    images = []
    font = None
    for step, frame in zip(shown, run.frames):
        image = Image.fromarray(frame)
        if size is not None:
            scale = size / max(image.size)
            image = image.resize((max(1, round(image.width * scale)),
                                  max(1, round(image.height * scale))), Image.Resampling.LANCZOS)
        if caption:
            if font is None:
                try:
                    font = ImageFont.load_default(size=max(10, image.height // 22))
                except TypeError:  # Pillow < 10.1: one small bitmap font
                    font = ImageFont.load_default()
            text = f"step {step}"
            if step > 0:
                # round() first: no "-0.00" once the pendulum is up.
                text += f"   reward {round(float(run.rewards[step - 1]), 2) + 0.0:.2f}"
            ImageDraw.Draw(image).text((6, 4), text, fill=(40, 40, 40), font=font)
        # A small adaptive palette per frame: the drawings have few colours.
        images.append(image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64))
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:],
                   duration=max(20, round(1000.0 / fps)), loop=0, optimize=True)
    return str(path)
