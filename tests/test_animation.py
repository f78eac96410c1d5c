"""Animations (avgreward.animation): streamed GIFs, right frames, bounded memory."""

import weakref

import gymnasium
import numpy as np
import pytest
from PIL import Image

import avgreward
from avgreward import animation
from avgreward.animation import animate_policy, iter_frames, rollout
from envs.pendulum import PendulumSwingUpEnv

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
    # 256 colours for ~768 pixels of noise: close, not exact
    assert np.abs(frames[-1].astype(int) - noise[-1]).mean() < 40
    assert len(np.unique(frames[-1].reshape(-1, 3), axis=0)) <= 256


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
