"""Animations (avgreward.animation): streamed GIFs, right frames, bounded memory; rollouts
in the environment (wrappers, episode ends) training saw."""

import dataclasses
import weakref

import gymnasium
import numpy as np
import pytest
from PIL import Image

import avgreward
from avgreward import animation
from avgreward.animation import animate_policy, iter_frames, rollout
from avgreward.wrappers import GoalBonus
from avgreward.envs.pendulum import PendulumSwingUpEnv

ENV_ID = "avgreward/PendulumSwingUp-v0"
TORQUE_BLUE = (60, 90, 200)  # the pendulum's torque bar, absent at rest


@pytest.fixture(scope="module")
def result():
    return avgreward.train(ENV_ID, avgreward.SoftmaxActorCritic.pendulum_reference(), 20_000, 0)


def read_frames(path):
    """A GIF's frames (composited, RGB arrays), their durations and its loop count."""
    with Image.open(path) as gif:
        frames, durations = [], []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
            frames.append(np.asarray(gif.convert("RGB")))
        return frames, durations, gif.info.get("loop")


def reset_render(seed=0):
    env = gymnasium.make(ENV_ID, render_mode="rgb_array")
    env.reset(seed=seed)
    frame = env.render()
    env.close()
    return frame


@pytest.mark.slow
def test_gif_reads_back_with_its_frames_size_duration_and_loop(result, tmp_path):
    path = animate_policy(result, tmp_path / "a.gif", steps=31, every=3, size=120)
    assert path == str(tmp_path / "a.gif")
    frames, durations, loop = read_frames(path)
    assert len(frames) == 12  # steps 0, 3, ..., 30 and the last, 31
    assert {f.shape for f in frames} == {(120, 120, 3)}
    assert durations == [150] * 12  # real time: 20 fps / 3
    assert loop == 0  # forever
    frames, durations, _ = read_frames(animate_policy(result, tmp_path / "b.gif", steps=4,
                                                      every=1, fps=8))
    assert len(frames) == 5 and durations == [120] * 5
    assert {f.shape for f in frames} == {(400, 400, 3)}
    assert not list(tmp_path.glob("*.part"))


def test_frames_are_the_environment_renders(result, tmp_path):
    # Without caption or resizing the drawing's few flat colours must come
    # back exactly, in every frame (each but the first is stored as the
    # rectangle that changed, so this also checks the compositing).
    path = animate_policy(result, tmp_path / "a.gif", steps=60, every=4, caption=False)
    frames, _, _ = read_frames(path)
    np.testing.assert_array_equal(frames[0], reset_render())
    expected = [frame.copy() for _, _, frame in iter_frames(result, 60, 4)]
    assert len(frames) == len(expected) == 16
    for got, want in zip(frames, expected):
        np.testing.assert_array_equal(got, want)
    # The torque bar is not drawn at rest, so its colour joined the palette
    # later: still exactly blue.
    blue = [np.all(frame == TORQUE_BLUE, axis=2).sum() for frame in frames]
    assert blue[0] == 0 and max(blue) > 100


def test_the_gif_decodes_to_the_rendered_frames_mapped_to_its_palette(result, tmp_path,
                                                                      monkeypatch):
    # The main job's GIF (scripts/swingup_softmax.py: every 3rd step, 240 pixels,
    # captioned), decoded by Pillow, against what was rendered: each frame as
    # Pillow maps the rendered image to the palette of its time (no dithering),
    # a pixel that did not change since the previous frame keeping its colour.
    rendered, palettes = [], []
    write = animation._GifStream.write

    def recording_write(self, image):
        rendered.append(np.asarray(image).copy())
        write(self, image)
        palettes.append(self._colors.copy())

    monkeypatch.setattr(animation._GifStream, "write", recording_write)
    frames, _, _ = read_frames(animate_policy(result, tmp_path / "a.gif", steps=90, every=3,
                                              size=240))
    assert len(frames) == len(rendered) == 31
    expected = None
    for k, (image, colors) in enumerate(zip(rendered, palettes)):
        palette = Image.new("P", (1, 1))
        palette.putpalette(colors.ravel().tolist())
        mapped = np.asarray(Image.fromarray(image).quantize(
            palette=palette, dither=Image.Dither.NONE).convert("RGB"))
        if expected is None:
            expected = mapped
        else:
            changed = (image != rendered[k - 1]).any(axis=2)
            expected = np.where(changed[:, :, None], mapped, expected)
        np.testing.assert_array_equal(frames[k], expected, err_msg=f"frame {k}")
        # what the palette promises: every colour in it exact, the rest within 32
        assert len(colors) < animation._COLORS
        off = np.abs(frames[k].astype(int) - image).max(axis=2)
        assert off.max() <= animation._PALETTE_TOLERANCE
        keys = image.astype(np.int64) @ [1 << 16, 1 << 8, 1]
        in_palette = np.isin(keys, colors.astype(np.int64) @ [1 << 16, 1 << 8, 1])
        assert in_palette.mean() > 0.9 and not off[in_palette].any()


def test_captioned_frames_keep_the_drawing_and_show_the_text(result, tmp_path):
    frames, _, _ = read_frames(animate_policy(result, tmp_path / "a.gif", steps=2, every=1))
    render = reset_render()
    band = 30  # the caption's rows
    np.testing.assert_array_equal(frames[0][band:], render[band:])
    text = frames[0][:band]
    assert np.all(render[:band] == 255)
    assert (text.max(axis=2) < 128).sum() > 40  # dark caption pixels
    assert (frames[1][:band] != text).any()  # "step 1   reward ..." differs from "step 0"
    # grey text on white: no colour cast from palette mapping
    channel_spread = text.max(axis=2).astype(int) - text.min(axis=2)
    assert channel_spread.max() <= 8


def test_iter_frames_shows_the_rollout(result):
    run = rollout(result, 25, seed=3, render=True, every=4)
    steps, rewards, frames = zip(*[(s, r, f.copy()) for s, r, f in
                                   iter_frames(result, 25, 4, seed=3)])
    assert steps == (0, 4, 8, 12, 16, 20, 24, 25)
    assert rewards[0] is None
    np.testing.assert_array_equal(rewards[1:], run.rewards[np.array(steps[1:]) - 1])
    assert len(frames) == len(run.frames)
    for got, want in zip(frames, run.frames):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="every"):
        iter_frames(result, 10, 0)  # raised by the call, not at the first frame


@pytest.mark.slow
def test_memory_does_not_grow_with_steps(result, tmp_path, monkeypatch):
    # Pillow's pixel buffers are not seen by tracemalloc, and timing-free
    # RSS comparisons are fragile; instead count the rendered frames and the
    # Pillow images alive at any moment. Keeping frames (as the old writer
    # did) makes these counts grow with steps.
    alive = {"frames": 0, "images": 0}
    peaks = dict(alive)

    def born(obj, kind):
        alive[kind] += 1
        peaks[kind] = max(peaks[kind], alive[kind])
        weakref.finalize(obj, died, kind)

    def died(kind):
        alive[kind] -= 1

    render = PendulumSwingUpEnv.render

    def counting_render(self):
        frame = render(self)
        born(frame, "frames")
        return frame

    image_init = Image.Image.__init__

    def counting_init(self, *args, **kwargs):
        image_init(self, *args, **kwargs)
        born(self, "images")

    monkeypatch.setattr(PendulumSwingUpEnv, "render", counting_render)
    monkeypatch.setattr(Image.Image, "__init__", counting_init)
    for steps in (100, 400):
        peaks.update(alive)
        animate_policy(result, tmp_path / f"{steps}.gif", steps=steps, every=1, size=40)
        # 2 frames and 5 images when written; the old writer reached
        # 101 / 401 frames and 214 / 814 images.
        assert peaks["frames"] <= 3 and peaks["images"] <= 10, (steps, peaks)
    assert Image.open(tmp_path / "400.gif").n_frames == 401


def test_no_partial_gif_is_left_behind(result, tmp_path, monkeypatch):
    def failing_write(self, image):
        raise RuntimeError("disk full")

    monkeypatch.setattr(animation._GifStream, "write", failing_write)
    with pytest.raises(RuntimeError, match="disk full"):
        animate_policy(result, tmp_path / "a.gif", steps=5)
    assert list(tmp_path.iterdir()) == []


def test_more_than_256_colours_still_make_a_valid_gif(tmp_path):
    # Noise has thousands of colours: the palette fills up to 256, then the
    # nearest entry is used; frames stay decodable and the right size.
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(6)]
    path = tmp_path / "noise.gif"
    with open(path, "wb") as fp:
        stream = animation._GifStream(fp, (32, 24), 50)
        for frame in noise:
            stream.write(Image.fromarray(frame))
        stream.close()
    frames, durations, loop = read_frames(path)
    assert len(frames) == 6 and durations == [50] * 6 and loop == 0
    assert frames[0].shape == (24, 32, 3)
    # 255 colours for ~768 pixels of noise: close, not exact
    assert np.abs(frames[-1].astype(int) - noise[-1]).mean() < 40
    assert len(np.unique(frames[-1].reshape(-1, 3), axis=0)) <= 255


def test_palette_entries_map_to_themselves():
    # Pillow maps a colour through a cache of 4-level cells; the spacing of
    # the entries chosen must make every entry its own nearest.
    rng = np.random.default_rng(1)
    # white more frequent than the close 252 grey, which must then be left out
    flat = [[255, 255, 255]] * 3 + [[252, 252, 252]] * 2 + [[40, 40, 40]]
    pixels = np.concatenate([rng.integers(0, 256, (3000, 3)),
                             np.repeat(flat, 20, axis=0)]).astype(np.uint8)
    entries = animation._palette_entries(pixels, np.empty((0, 3), np.uint8), 200)
    assert len(entries) == 200
    assert any((entries == 255).all(axis=1))
    assert not any((entries == 252).all(axis=1))
    palette = Image.new("P", (1, 1))
    palette.putpalette(entries.ravel().tolist())
    mapped = Image.fromarray(entries[None]).quantize(palette=palette, dither=Image.Dither.NONE)
    np.testing.assert_array_equal(np.asarray(mapped)[0], np.arange(len(entries)))


@pytest.mark.parametrize("kwargs, word", [
    ({"path": "a.png"}, "gif"), ({"steps": 0}, "steps"), ({"every": 0}, "every"),
    ({"size": 0}, "size"), ({"fps": 0.0}, "fps"),
])
def test_bad_arguments_raise_before_writing(result, tmp_path, kwargs, word):
    kwargs = {"path": "a.gif", **kwargs}
    kwargs["path"] = tmp_path / kwargs["path"]
    with pytest.raises(ValueError, match=word):
        animate_policy(result, **kwargs)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# Rollouts of results trained on gymnasium environments: their wrappers and
# their episode ends, as training saw them.


class Corridor(gymnasium.Env):
    """Cells 0..3 of a corridor: action 1 steps right, 0 left; reaching 3 ends the episode.

    -1 per step, as MountainCar: only a goal bonus tells the policies apart.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    observation_space = gymnasium.spaces.Box(0.0, 3.0, (1,), np.float64)
    action_space = gymnasium.spaces.Discrete(2)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def render(self):
        frame = np.full((20, 80, 3), 255, np.uint8)
        frame[:, 20 * self.cell:20 * self.cell + 20] = (60, 90, 200)
        return frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cell = 0
        return np.array([0.0]), {}

    def step(self, action):
        self.cell = max(0, self.cell + (1 if action == 1 else -1))
        return np.array([float(self.cell)]), -1.0, self.cell == 3, False, {}


def by_hand(env, actions, seed):
    """Step ``env`` with ``actions`` as training would (an episode end is a reset)."""
    observations = [np.atleast_1d(env.reset(seed=seed)[0]).astype(np.float64)]
    rewards = []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
        observations.append(np.atleast_1d(obs).astype(np.float64))
        rewards.append(float(reward))
    return np.array(observations), np.array(rewards)


def prefer(result, action, by=20.0):
    """The result with ``action`` most likely everywhere (a greedy policy that is known)."""
    theta = result.weights["theta"].copy()
    theta[:, action] += by
    return dataclasses.replace(result, weights={**result.weights, "theta": theta})


@pytest.mark.slow
def test_a_rollout_in_the_wrapped_env_gets_the_bonus_and_resets_at_the_goal():
    car = GoalBonus(Corridor(), bonus=5.0)
    agent = avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    result = prefer(avgreward.train(car, agent, 200, seed=0), action=1)
    run = rollout(result, 12, greedy=True, env=GoalBonus(Corridor(), bonus=5.0))
    # Right, right, goal: the goal step pays -1 + 5, and the next step starts over.
    np.testing.assert_array_equal(run.actions, np.ones(12))
    np.testing.assert_array_equal(run.terminations, [2, 5, 8, 11])
    assert run.truncations.size == 0
    np.testing.assert_array_equal(run.rewards, [-1, -1, 4] * 4)
    np.testing.assert_array_equal(run.observations[:, 0], [0, 1, 2] * 4 + [0])
    observations, rewards = by_hand(GoalBonus(Corridor(), bonus=5.0), run.actions, seed=0)
    np.testing.assert_array_equal(run.rewards, rewards)
    np.testing.assert_array_equal(run.observations, observations)
    # The instance's class cannot be made from the result's id: no silent guess.
    with pytest.raises(ValueError, match="env="):
        rollout(result, 5)


@pytest.mark.slow
def test_time_limits_truncate_and_reset_as_in_training():
    limited = gymnasium.wrappers.TimeLimit(Corridor(), max_episode_steps=2)
    agent = avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    result = prefer(avgreward.train(limited, agent, 100, seed=0), action=0)  # always left
    run = rollout(result, 7, greedy=True, env=limited)
    np.testing.assert_array_equal(run.truncations, [1, 3, 5])
    assert run.terminations.size == 0
    np.testing.assert_array_equal(run.rewards, -np.ones(7))


@pytest.fixture(scope="module")
def pumping_car():
    """A MountainCar result whose greedy policy pushes along the velocity (reaches the goal)."""
    agent = avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    result = avgreward.train("avgreward/MountainCarGoalBonus-v0", agent, 300, seed=0)
    theta = np.zeros_like(result.weights["theta"])
    for position in np.linspace(-1.2, 0.6, 60):
        for velocity in np.linspace(-0.07, 0.07, 60):
            theta[result.features.indices([position, velocity]), 2 if velocity >= 0 else 0] += 1
    return dataclasses.replace(result, weights={**result.weights, "theta": theta})


def test_a_greedy_mountain_car_rollout_reports_the_goal_bonus(pumping_car):
    # The registered id brings its GoalBonus (and no time limit): reaching the
    # goal pays -1 + 1 = 0, then the car starts over (the bug: -1.0, no reset).
    run = rollout(pumping_car, 1_000, greedy=True, seed=3)
    assert run.terminations.size >= 3 and run.truncations.size == 0
    np.testing.assert_array_equal(run.rewards[run.terminations], 0.0)
    assert np.all(np.delete(run.rewards, run.terminations) == -1.0)
    starts = run.observations[run.terminations + 1]
    assert np.all((starts[:, 0] >= -0.6) & (starts[:, 0] <= -0.4) & (starts[:, 1] == 0.0))
    made = gymnasium.make("avgreward/MountainCarGoalBonus-v0")
    observations, rewards = by_hand(made, run.actions, seed=3)
    np.testing.assert_array_equal(run.rewards, rewards)
    np.testing.assert_array_equal(run.observations, observations)


def test_a_result_of_a_wrapped_instance_is_rolled_out_in_it_or_refused(pumping_car):
    # Trained on GoalBonus(MountainCar-v0 without a time limit), the result's id
    # is MountainCar-v0, whose registered version has a time limit and no bonus.
    car = GoalBonus(gymnasium.make("MountainCar-v0", max_episode_steps=-1))
    result = dataclasses.replace(pumping_car, env_id="MountainCar-v0")
    run = rollout(result, 600, greedy=True, seed=3, env=car)
    assert run.terminations.size >= 2
    np.testing.assert_array_equal(run.rewards[run.terminations], 0.0)
    # What the run records of its wrappers decides whether the id may stand in.
    recorded = dataclasses.replace(result, info={**result.info, "env_wrappers": ["GoalBonus"]})
    with pytest.raises(ValueError, match=r"GoalBonus.*TimeLimit\(200\).*env="):
        rollout(recorded, 10)
    fits = dataclasses.replace(result, info={**result.info, "env_wrappers": ["TimeLimit(200)"]})
    assert rollout(fits, 10).rewards.shape == (10,)
    assert animation.wrapper_chain(car) == ["GoalBonus"]


def test_a_rollout_env_must_be_the_results_and_render_when_asked(pumping_car, tmp_path):
    with pytest.raises(ValueError, match="CartPole"):
        rollout(pumping_car, 5, env=gymnasium.make("CartPole-v1"))
    agent = avgreward.SoftmaxActorCritic(alpha_w=0.1, alpha_theta=0.1, alpha_rbar=0.01)
    result = prefer(avgreward.train(GoalBonus(Corridor()), agent, 50, seed=0), action=1)
    with pytest.raises(ValueError, match="rgb_array"):
        animate_policy(result, tmp_path / "c.gif", steps=5, env=GoalBonus(Corridor()))
    frames = list(iter_frames(result, 4, greedy=True,
                              env=GoalBonus(Corridor(render_mode="rgb_array"))))
    # The goal step's frame shows the next episode's start, and its reward the bonus.
    assert [(step, reward) for step, reward, _ in frames] == [
        (0, None), (1, -1.0), (2, -1.0), (3, 0.0), (4, -1.0)]
    np.testing.assert_array_equal(frames[3][2], frames[0][2])
    path = animate_policy(result, tmp_path / "c.gif", steps=6, every=3, greedy=True,
                          env=GoalBonus(Corridor(render_mode="rgb_array")))
    frames, durations, _ = read_frames(path)
    assert len(frames) == 3 and durations == [750] * 3  # its 4 fps / 3


@pytest.mark.slow
def test_a_squashed_gaussian_rolls_out_the_actions_training_gives():
    # Pendulum-v1 (gymnasium's): a bounded torque, so the Gaussian is squashed
    # into [-2, 2]; its 200-step time limit truncates.
    agent = avgreward.GaussianActorCritic.pendulum_default()
    result = avgreward.train("Pendulum-v1", agent, 300, seed=0)
    run = rollout(result, 450, seed=1)
    assert np.all(np.abs(run.actions) <= 2.0)
    np.testing.assert_array_equal(run.truncations, [199, 399])
    env = gymnasium.make("Pendulum-v1")
    actions = [np.full((1,), a, np.float32) for a in run.actions]
    observations, rewards = by_hand(env, actions, seed=1)
    np.testing.assert_array_equal(run.rewards, rewards)
    np.testing.assert_array_equal(run.observations, observations)


def test_a_result_of_a_wrapped_environment_records_its_wrappers_and_its_rollout_needs_them(
        tmp_path):
    import avgreward
    from avgreward.animation import rollout

    env = gymnasium.wrappers.TransformReward(gymnasium.make("MountainCar-v0"), lambda r: 2 * r)
    agent = avgreward.default_agent("MountainCar-v0")
    result = avgreward.train(env, agent, 300, seed=0)
    assert result.info["env_wrappers"][0] == "TransformReward"
    again = avgreward.load_result(result.save(tmp_path / "car"))
    assert again.info["env_wrappers"] == result.info["env_wrappers"]
    with pytest.raises(ValueError, match="env="):
        rollout(again, steps=10)
    wrapped = gymnasium.wrappers.TransformReward(gymnasium.make("MountainCar-v0"),
                                                 lambda r: 2 * r)
    assert set(rollout(again, steps=10, env=wrapped).rewards) == {-2.0}
