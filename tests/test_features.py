"""Tests of avgreward.features against a naive tiles3 reference."""

import dataclasses
import doctest
import math
from itertools import zip_longest

import numpy as np
import pytest
from numba import njit

import avgreward.features as features
from avgreward.features import (
    TileCoder,
    binary_pattern,
    one_hot,
    pendulum_tile_coder,
    tile_indices,
)

PI = math.pi


# --- naive reference: Sutton's tiles3, written out plainly ---------------------------


class IHT:
    """tiles3's index hash table without a size limit: coordinates -> first-seen index."""

    def __init__(self):
        self.dictionary = {}

    def index(self, coords):
        return self.dictionary.setdefault(coords, len(self.dictionary))


def tileswrap_coords(numtilings, floats, wrapwidths):
    """tiles3's ``tileswrap``, returning each tiling's coordinate tuple (before hashing)."""
    qfloats = [math.floor(f * numtilings) for f in floats]
    tiles = []
    for tiling in range(numtilings):
        tiling_x2 = tiling * 2
        coords = [tiling]
        b = tiling
        for q, width in zip_longest(qfloats, wrapwidths):
            c = (q + b % numtilings) // numtilings
            coords.append(c % width if width else c)
            b += tiling_x2
        tiles.append(tuple(coords))
    return tiles


def naive_tiles(coder, x, iht):
    """IHT indices of ``x`` under tiles3 with the contract's scaling and clipping."""
    floats = []
    for xi, lo, hi, t, w in zip(x, coder.low, coder.high, coder.tiles, coder.wrap):
        if not w:
            xi = min(max(float(xi), lo), hi)
        floats.append((xi - lo) * (t / (hi - lo)))
    widths = [t if w else False for t, w in zip(coder.tiles, coder.wrap)]
    tiles = tileswrap_coords(coder.tilings, floats, widths)
    if coder.tilings == 1:
        # The contract's one deviation from tiles3: with a single tiling the
        # point x = high joins the last tile instead of opening its own.
        tiles = [
            (c[0],) + tuple(
                min(ci, t - 1) if not w else ci
                for ci, t, w in zip(c[1:], coder.tiles, coder.wrap)
            )
            for c in tiles
        ]
    return [iht.index(c) for c in tiles]


def assert_same_partition(ours, theirs):
    """Each of our indices names exactly one reference tile and vice versa."""
    ours = np.asarray(ours)
    theirs = np.asarray(theirs)
    assert ours.shape == theirs.shape
    forward, backward = {}, {}
    for o, r in zip(ours.ravel().tolist(), theirs.ravel().tolist()):
        assert forward.setdefault(o, r) == r, f"our tile {o} holds two reference tiles"
        assert backward.setdefault(r, o) == o, f"reference tile {r} split into two of ours"
    return len(forward)


def sample_points(coder, rng, n_random=1500, n_special=500):
    """Random points beyond the box, plus points built from boundary values."""
    low, high = np.array(coder.low), np.array(coder.high)
    width = high - low
    random = rng.uniform(low - 0.5 * width, high + 0.5 * width, size=(n_random, coder.n_dims))
    special = np.empty((n_special, coder.n_dims))
    for i in range(coder.n_dims):
        steps = coder.tiles[i] * coder.tilings
        values = [low[i] + k * width[i] / steps for k in range(steps + 1)]
        values += [low[i], high[i], low[i] - width[i], high[i] + 0.25 * width[i]]
        special[:, i] = rng.choice(values, size=n_special)
    return np.vstack([random, special])


CONFIGS = {
    "1d": dict(low=-1.0, high=2.5, tiles=5),
    "1d-wrap": dict(low=0.0, high=1.0, tiles=4, wrap=True),
    "pendulum": dict(low=(-PI, -2 * PI), high=(PI, 2 * PI), tiles=(8, 8), wrap=(True, False)),
    "3d-mixed": dict(low=(-1.0, 0.0, 10.0), high=(1.0, 3.0, 12.0), tiles=(3, 4, 5),
                     wrap=(False, True, False)),
}


@pytest.mark.parametrize("tilings", [1, 2, 7, 32])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_partition_matches_tiles3(config, tilings):
    coder = TileCoder(tilings=tilings, **CONFIGS[config])
    rng = np.random.default_rng(tilings)
    X = sample_points(coder, rng)
    ours = coder.indices_batch(X)
    iht = IHT()
    theirs = [naive_tiles(coder, x, iht) for x in X.tolist()]
    n_tiles = assert_same_partition(ours, theirs)
    # The comparison only means something if many points share tiles.
    assert n_tiles <= coder.n_features
    assert ours.size >= 2 * n_tiles


def test_pendulum_partition_matches_tiles3_on_course_scaling():
    # The course notebooks feed tiles3 beta * 8 / (2 pi) and betadot * 8 / (4 pi):
    # no shift by low. As -pi and -2 pi are whole numbers of tile widths, the
    # partition must be the same.
    coder = pendulum_tile_coder()
    rng = np.random.default_rng(4)
    random = rng.uniform((-3 * PI, -3 * PI), (3 * PI, 3 * PI), size=(4000, 2))
    # Whole tile boundaries, and the box corners, in both scalings.
    special = np.array(
        [(k * PI / 4, j * PI / 2) for k in range(-4, 5) for j in range(-4, 5)]
        + [(PI, 3 * PI), (-PI, -3 * PI), (0.0, 7.0)]
    )
    X = np.vstack([random, special])
    iht = IHT()
    theirs = []
    for beta, betadot in X.tolist():
        betadot = min(max(betadot, -2 * PI), 2 * PI)
        coords = tileswrap_coords(32, [beta * 8 / (2 * PI), betadot * 8 / (4 * PI)], [8, False])
        theirs.append([iht.index(c) for c in coords])
    assert_same_partition(coder.indices_batch(X), theirs)


# --- structure of the index space ----------------------------------------------------


@pytest.mark.parametrize("tilings", [1, 2, 7, 32])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_one_index_per_tiling_in_its_block(config, tilings):
    coder = TileCoder(tilings=tilings, **CONFIGS[config])
    X = sample_points(coder, np.random.default_rng(0), n_random=500, n_special=200)
    idx = coder.indices_batch(X)
    assert idx.dtype == np.int64 and idx.shape == (len(X), tilings)
    assert coder.n_active == tilings
    assert ((idx >= 0) & (idx < coder.n_features)).all()
    block = idx // coder.tiling_size
    np.testing.assert_array_equal(block, np.broadcast_to(np.arange(tilings), idx.shape))


@pytest.mark.parametrize("tilings", [1, 4, 32])
def test_every_feature_is_reachable(tilings):
    # n_features is tight: a fine grid over the box (ends included) hits every index.
    coder = pendulum_tile_coder(tilings=tilings)
    axes = []
    for lo, hi, t in zip(coder.low, coder.high, coder.tiles):
        steps = t * tilings
        axes.append(np.append(lo + (np.arange(steps) + 0.5) * (hi - lo) / steps, hi))
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, coder.n_dims)
    hit = np.unique(coder.indices_batch(grid))
    np.testing.assert_array_equal(hit, np.arange(coder.n_features))


def test_pendulum_reference_sizes():
    coder = pendulum_tile_coder()
    assert coder == TileCoder(
        low=(-PI, -2 * PI), high=(PI, 2 * PI), tiles=(8, 8), tilings=32, wrap=(True, False)
    )
    # Wrapped angle: 8 coordinates; offset velocity grid: 8 + 1.
    assert coder.grid_shape == (8, 9)
    assert coder.tiling_size == 72
    assert coder.n_features == 32 * 72
    assert coder.n_dims == 2


# --- generalisation and wrap-around ----------------------------------------------------


def shared(coder, x, y):
    return int((coder.indices(x) == coder.indices(y)).sum())


def test_wrap_around_shares_all_but_tiling_zero():
    coder = pendulum_tile_coder()
    for betadot in (-5.0, 0.0, 0.3, 6.0):
        # q = floor(x' * 32) is 255 just below pi and 0 just above -pi; tiling t
        # (angle offset t) puts them in the same tile (8 = 0 mod 8) unless t = 0.
        assert shared(coder, [PI - 1e-9, betadot], [-PI + 1e-9, betadot]) == 31
        assert shared(coder, [PI, betadot], [-PI, betadot]) == 32
        assert shared(coder, [PI + 0.1, betadot], [-PI + 0.1, betadot]) == 32
    flat = TileCoder(low=coder.low, high=coder.high, tiles=coder.tiles, tilings=32)
    assert shared(flat, [PI - 1e-9, 0.0], [-PI + 1e-9, 0.0]) == 0


def test_points_far_apart_share_no_tile():
    coder = pendulum_tile_coder()
    # Two tile widths apart (pi/4 in angle, pi/2 in velocity) or more.
    assert shared(coder, [0.0, 0.0], [PI / 2, 0.0]) == 0
    assert shared(coder, [0.0, 0.0], [0.0, PI]) == 0
    assert shared(coder, [-PI, -2 * PI], [0.0, 2 * PI]) == 0


@pytest.mark.parametrize("dim", [0, 1])
def test_shift_by_j_steps_changes_exactly_j_tilings(dim):
    # With offsets (2i + 1) t mod n a permutation of 0..n-1 (n a power of two),
    # moving j / n of a tile width changes the active tile of exactly j tilings.
    coder = pendulum_tile_coder()
    n = coder.tilings
    step = (coder.high[dim] - coder.low[dim]) / (coder.tiles[dim] * n)
    rng = np.random.default_rng(dim)
    for _ in range(20):
        q0 = int(rng.integers(0, 4 * n))
        for j in range(n + 1):
            x = np.array([0.0, 0.0])
            y = np.array([0.0, 0.0])
            x[dim] = coder.low[dim] + (q0 + 0.5) * step
            y[dim] = coder.low[dim] + (q0 + j + 0.5) * step
            assert shared(coder, x, y) == n - j


# --- one-hot and bit patterns ------------------------------------------------------------


def test_same_point_same_indices():
    coder = TileCoder(tilings=7, **CONFIGS["3d-mixed"])
    x = [0.3, 2.9, 11.0]
    first = coder.indices(x)
    np.testing.assert_array_equal(coder.indices(np.array(x)), first)
    np.testing.assert_array_equal(coder.indices(tuple(x)), first)
    np.testing.assert_array_equal(coder.indices_batch([x, x])[1], first)
    assert first is not coder.indices(x)  # a fresh array each call


def test_one_hot_index_is_the_state():
    coder = one_hot(9)
    assert (coder.n_features, coder.n_active, coder.n_dims) == (9, 1, 1)
    for s in range(9):
        np.testing.assert_array_equal(coder.indices([float(s)]), [s])
        np.testing.assert_array_equal(coder.indices(s), [s])
    np.testing.assert_array_equal(coder.indices_batch(np.arange(9.0)).ravel(), np.arange(9))
    assert one_hot(1).indices(0).tolist() == [0]


def test_binary_pattern_is_one_hot_of_the_pattern():
    coder = binary_pattern(4)
    assert (coder.n_features, coder.n_active, coder.n_dims) == (16, 1, 4)
    patterns = np.array([[(p >> (3 - b)) & 1 for b in range(4)] for p in range(16)], float)
    idx = coder.indices_batch(patterns).ravel()
    # First bit most significant: the pattern read as a binary number.
    np.testing.assert_array_equal(idx, np.arange(16))
    for p, bits in enumerate(patterns):
        assert coder.indices(bits).tolist() == [p]
    # The aliased gridworld's cells c1 and c3 look the same, c0/c2/c4 differ.
    walls = {0: (1, 0, 0, 1), 1: (1, 0, 1, 0), 2: (1, 0, 0, 0), 3: (1, 0, 1, 0), 4: (1, 1, 0, 0)}
    cell = {c: coder.indices(np.array(w, float))[0] for c, w in walls.items()}
    assert cell[1] == cell[3] and len({cell[0], cell[1], cell[2], cell[4]}) == 4


# --- the kernel from jitted code -----------------------------------------------------------


@njit(cache=True)
def _weighted_sum(X, w, args, out):
    """A jitted caller: sums w over the active features of each row of X."""
    total = np.zeros(X.shape[0])
    for k in range(X.shape[0]):
        tile_indices(X[k], *args, out)
        for j in range(out.shape[0]):
            total[k] += w[out[j]]
    return total


@njit(cache=True)
def _indices_explicit(x, box, grid, offsets, tiling_size, out):
    tile_indices(x, box, grid, offsets, tiling_size, out)
    return out.sum()


@pytest.mark.parametrize("coder", [pendulum_tile_coder(), one_hot(9), binary_pattern(4)],
                         ids=["pendulum", "one_hot", "binary_pattern"])
def test_kernel_callable_from_jitted_code(coder):
    rng = np.random.default_rng(1)
    X = sample_points(coder, rng, n_random=300, n_special=100)
    w = rng.standard_normal(coder.n_features)
    out = np.empty(coder.n_active, dtype=np.int64)
    expected = w[coder.indices_batch(X)].sum(axis=1)
    np.testing.assert_allclose(_weighted_sum(X, w, coder.kernel_args(), out), expected)
    assert _indices_explicit(X[0], *coder.kernel_args(), out) == coder.indices(X[0]).sum()


def test_kernel_args_are_cached_read_only_contiguous():
    coder = pendulum_tile_coder()
    args = coder.kernel_args()
    assert args is coder.kernel_args()
    box, grid, offsets, tiling_size = args
    assert tiling_size == coder.tiling_size
    for array, dtype, shape in ((box, np.float64, (2, 3)), (grid, np.int64, (2, 4)),
                                (offsets, np.int64, (2, 32))):
        assert array.dtype == dtype and array.shape == shape
        assert array.flags.c_contiguous and not array.flags.writeable
    np.testing.assert_array_equal(offsets[0], np.arange(32))
    np.testing.assert_array_equal(offsets[1], (3 * np.arange(32)) % 32)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e300, -1e300, 1e17])
def test_kernel_indices_stay_in_range_for_any_input(value):
    # The fused loop does not validate: even garbage must not index out of bounds.
    coder = TileCoder(tilings=7, **CONFIGS["3d-mixed"])
    out = np.empty(7, dtype=np.int64)
    for i in range(3):
        x = np.array([0.2, 1.0, 11.0])
        x[i] = value
        tile_indices(x, *coder.kernel_args(), out)
        assert ((out >= np.arange(7) * coder.tiling_size)
                & (out < (np.arange(7) + 1) * coder.tiling_size)).all()


# --- settings: normalisation and validation ------------------------------------------------


def test_settings_are_normalised_to_tuples():
    coder = TileCoder(low=[0], high=np.array([2.5]), tiles=np.int64(4), tilings=np.int32(3))
    assert coder.low == (0.0,) and type(coder.low[0]) is float
    assert coder.high == (2.5,)
    assert coder.tiles == (4,) and type(coder.tiles[0]) is int
    assert coder.tilings == 3 and type(coder.tilings) is int
    assert coder.wrap == (False,)
    assert coder == TileCoder(low=0.0, high=2.5, tiles=4, tilings=3, wrap=False)
    assert hash(coder) == hash(TileCoder(low=(0.0,), high=(2.5,), tiles=(4,), tilings=3))
    wrapped = TileCoder(low=(0, 0), high=(1, 1), tiles=(2, 2), wrap=np.array([True, False]))
    assert wrapped.wrap == (True, False) and type(wrapped.wrap[0]) is bool
    with pytest.raises(dataclasses.FrozenInstanceError):
        coder.tilings = 4
    assert dataclasses.replace(coder, tilings=5).tilings == 5


GOOD = dict(low=(0.0, -1.0), high=(1.0, 1.0), tiles=(4, 4), tilings=8, wrap=(False, True))

BAD_SETTINGS = [
    ("low", (0.0, np.nan)),
    ("low", (0.0, -np.inf)),
    ("low", ("a", "b")),
    ("low", ((0.0, 1.0), (0.0, 1.0))),
    ("low", ()),
    ("low", None),
    ("low", (True, False)),
    ("high", (1.0, np.inf)),
    ("high", (0.0, 1.0)),  # equal to low in dimension 0
    ("high", (-1.0, 1.0)),  # below low
    ("high", (1.0, 1.0, 1.0)),
    ("high", 1.0),
    ("tiles", (8, 0)),
    ("tiles", (8, -2)),
    ("tiles", (8.0, 8.0)),
    ("tiles", (8,)),
    ("tiles", "88"),
    ("tilings", 0),
    ("tilings", -3),
    ("tilings", 2.0),
    ("tilings", True),
    ("tilings", "8"),
    ("tilings", None),
    ("wrap", (1, 0)),
    ("wrap", (True,)),
    ("wrap", "yes"),
    ("wrap", (True, False, True)),
]


@pytest.mark.parametrize("name, value", BAD_SETTINGS)
def test_bad_setting_raises_value_error_naming_it(name, value):
    with pytest.raises(ValueError, match=name):
        TileCoder(**{**GOOD, name: value})


def test_tiles_message_shows_the_values():
    with pytest.raises(ValueError, match=r"tiles must be positive integers, got \(8, 0\)"):
        TileCoder(**{**GOOD, "tiles": (8, 0)})


def test_too_many_features_is_rejected():
    with pytest.raises(ValueError, match="tiles"):
        TileCoder(low=(0.0,) * 4, high=(1.0,) * 4, tiles=(2**20,) * 4, tilings=2)


@pytest.mark.parametrize("factory, name, value", [
    (one_hot, "n", 0), (one_hot, "n", 2.0), (one_hot, "n", True), (one_hot, "n", -1),
    (binary_pattern, "n_bits", 0), (binary_pattern, "n_bits", 1.5),
])
def test_factories_validate(factory, name, value):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        factory(value)


@pytest.mark.parametrize("kwargs, name", [
    (dict(tilings=0), "tilings"), (dict(tiles=0), "tiles"), (dict(tiles=2.5), "tiles"),
])
def test_pendulum_tile_coder_validates(kwargs, name):
    with pytest.raises(ValueError, match=name):
        pendulum_tile_coder(**kwargs)


@pytest.mark.parametrize("x", [
    [0.0], [0.0, 0.0, 0.0], [[0.0, 0.0]], 0.0, [0.0, np.nan], [np.inf, 0.0], ["a", "b"], None,
])
def test_bad_point_raises_value_error(x):
    coder = pendulum_tile_coder()
    with pytest.raises(ValueError, match="x"):
        coder.indices(x)


@pytest.mark.parametrize("X", [[0.0, 0.0], [[0.0, 0.0, 0.0]], [[0.0, np.nan]]])
def test_bad_batch_raises_value_error(X):
    with pytest.raises(ValueError, match="X"):
        pendulum_tile_coder().indices_batch(X)


def test_docstring_examples():
    result = doctest.testmod(features, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
