"""Minimal numpy rasteriser for the environments' ``rgb_array`` rendering.

Every function draws in place into an ``(H, W, 3)`` uint8 image, in pixel
coordinates (x to the right, y downwards); shapes may lie partly or wholly
outside the image. Pixels are either covered or not (no anti-aliasing): the
frames are for looking at, not for learning from, and this keeps the
environments free of any drawing dependency.
"""

import numpy as np

__all__ = ["blank", "fill_rect", "fill_circle", "ring", "thick_line"]


def blank(height, width, color=(255, 255, 255)):
    """Return a new ``(height, width, 3)`` uint8 image filled with ``color``."""
    img = np.empty((height, width, 3), dtype=np.uint8)
    # One row, then the rows: a copy of whole rows is a memcpy, where broadcasting
    # a 3-byte colour over the image is numpy's slow strided path (0.7 ms for 400 x 400,
    # a quarter of a pendulum GIF's time; this way 0.01 ms).
    row = np.empty((width, 3), dtype=np.uint8)
    row[:] = color
    img[:] = row
    return img


def _window(img, x0, y0, x1, y1):
    """Clip the box [x0, x1] x [y0, y1] to the image: integer slices, or None if empty."""
    h, w = img.shape[:2]
    i0, i1 = max(int(np.floor(y0)), 0), min(int(np.ceil(y1)) + 1, h)
    j0, j1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)) + 1, w)
    if i0 >= i1 or j0 >= j1:
        return None
    return i0, i1, j0, j1


def _paint(img, win, mask, color):
    i0, i1, j0, j1 = win
    img[i0:i1, j0:j1][mask] = color


def _grid(win):
    # Pixel centres, so that a shape covers the pixels whose centre it contains.
    i0, i1, j0, j1 = win
    ys = np.arange(i0, i1, dtype=np.float64)[:, None] + 0.5
    xs = np.arange(j0, j1, dtype=np.float64)[None, :] + 0.5
    return xs, ys


def fill_rect(img, x0, y0, x1, y1, color):
    """Fill the axis-aligned rectangle with corners (x0, y0) and (x1, y1)."""
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    win = _window(img, x0, y0, x1, y1)
    if win is None:
        return
    xs, ys = _grid(win)
    mask = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
    _paint(img, win, mask, color)


def fill_circle(img, cx, cy, r, color):
    """Fill the disc of radius ``r`` centred on (cx, cy)."""
    win = _window(img, cx - r, cy - r, cx + r, cy + r)
    if win is None:
        return
    xs, ys = _grid(win)
    mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r
    _paint(img, win, mask, color)


def ring(img, cx, cy, r, width, color):
    """Draw a circle outline of radius ``r`` (centre line) and thickness ``width``."""
    outer = r + width / 2.0
    inner = max(r - width / 2.0, 0.0)
    win = _window(img, cx - outer, cy - outer, cx + outer, cy + outer)
    if win is None:
        return
    xs, ys = _grid(win)
    d2 = (xs - cx) ** 2 + (ys - cy) ** 2
    _paint(img, win, (d2 <= outer * outer) & (d2 >= inner * inner), color)


def thick_line(img, x0, y0, x1, y1, width, color):
    """Draw the segment (x0, y0)-(x1, y1) with thickness ``width`` and round caps."""
    half = width / 2.0
    win = _window(
        img, min(x0, x1) - half, min(y0, y1) - half, max(x0, x1) + half, max(y0, y1) + half
    )
    if win is None:
        return
    xs, ys = _grid(win)
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    if length2 == 0.0:
        t = np.zeros_like(xs + ys)
    else:
        # Parameter of the closest point on the segment, clamped to its ends.
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0)
    px, py = x0 + t * dx, y0 + t * dy
    mask = (xs - px) ** 2 + (ys - py) ** 2 <= half * half
    _paint(img, win, mask, color)
