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


def our_coords(coder, idx):
    """Each tiling's grid coordinates, read back from a plain coder's indices."""
    coords = []
    for t, index in enumerate(np.asarray(idx).tolist()):
        cell = index - t * coder.tiling_size
        c = []
        for size in reversed(coder.grid_shape):
            cell, ci = divmod(cell, size)
            c.append(ci)
        coords.append((t,) + tuple(reversed(c)))
    return coords


# Points where the course's unshifted scaling and the shifted one round apart
# (velocity a hair below 0, reached right after a reset), tile edges of both
# scalings, and the box's corners.
COURSE_POINTS = np.array(
    [(-PI, -3e-17), (-PI, 0.0), (-PI, 3e-17), (PI, -3e-17), (0.0, -3e-17), (-3e-17, -3e-17)]
    + [(k * PI / 4, j * PI / 2) for k in range(-4, 5) for j in range(-4, 5)]
    + [(PI, 3 * PI), (-PI, -3 * PI), (0.0, 7.0)]
)


def test_pendulum_coordinates_equal_tileswrap_on_shifted_scaling():
    # The exact claim: bit for bit tiles3's tileswrap on the point shifted by
    # the lower bound, (x - low) * (tiles / (high - low)), velocity clipped.
    coder = pendulum_tile_coder()
    rng = np.random.default_rng(4)
    X = np.vstack([rng.uniform((-3 * PI, -3 * PI), (3 * PI, 3 * PI), size=(4000, 2)),
                   COURSE_POINTS])
    for x, idx in zip(X.tolist(), coder.indices_batch(X)):
        beta, betadot = x
        betadot = min(max(betadot, -2 * PI), 2 * PI)
        floats = [(beta - -PI) * (8 / (2 * PI)), (betadot - -2 * PI) * (8 / (4 * PI))]
        assert our_coords(coder, idx) == tileswrap_coords(32, floats, [8, False]), x


def test_course_unshifted_scaling_differs_in_one_tiling_at_a_rounding_edge():
    # The course notebooks feed tileswrap beta * 8 / (2 pi), betadot * 8 / (4 pi).
    # pi and 2 pi are 4 whole tiles, so the partition is the same in exact
    # arithmetic, but x * s and (x + pi) * s round apart at tile edges.
    coder = pendulum_tile_coder()

    def course(beta, betadot):
        betadot = min(max(betadot, -2 * PI), 2 * PI)
        coords = tileswrap_coords(32, [beta * 8 / (2 * PI), betadot * 8 / (4 * PI)], [8, False])
        # The whole-tile shift by the lower bound: 4 tiles in each dimension.
        return [(t, (c0 + 4) % 8, c1 + 4) for t, c0, c1 in coords]

    ours = our_coords(coder, coder.indices([-PI, -3e-17]))
    theirs = course(-PI, -3e-17)
    assert sum(a != b for a, b in zip(ours, theirs)) == 1
    # The velocity's q = floor(x' * 32): 128 shifted (2 pi - 3e-17 rounds to
    # 2 pi), -1 + 128 = 127 unshifted (just below 0).
    assert math.floor((-3e-17 + 2 * PI) * (8 / (4 * PI)) * 32) == 128
    assert math.floor(-3e-17 * 8 / (4 * PI) * 32) == -1
    # Away from such edges the two agree: random points, where no tie is likely.
    rng = np.random.default_rng(4)
    X = rng.uniform((-3 * PI, -3 * PI), (3 * PI, 3 * PI), size=(2000, 2))
    for x, idx in zip(X.tolist(), coder.indices_batch(X)):
        assert our_coords(coder, idx) == course(*x)


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
@pytest.mark.slow
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


# --- broadcasting scalar settings -------------------------------------------------------------


def test_scalar_tiles_and_wrap_are_every_dimensions():
    coder = TileCoder(low=(0.0, -1.0, 5.0), high=(1.0, 1.0, 6.0), tiles=4, tilings=8, wrap=True)
    assert coder.tiles == (4, 4, 4) and coder.wrap == (True, True, True)
    assert coder == TileCoder(low=(0.0, -1.0, 5.0), high=(1.0, 1.0, 6.0), tiles=(4, 4, 4),
                              tilings=8, wrap=(True, True, True))
    assert TileCoder(low=(0, 0), high=(1, 1), tiles=np.int64(3)).tiles == (3, 3)
    assert TileCoder(low=(0, 0), high=(1, 1), tiles=3, wrap=np.bool_(False)).wrap == (False,) * 2


# --- subsets of dimensions and hashing ----------------------------------------------------------

SUBSET_CONFIG = CONFIGS["3d-mixed"]


def naive_hash(c, k, block):
    """splitmix64's finaliser of c + k * gamma, in Python integers."""
    mask = (1 << 64) - 1
    z = (c + k * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return (z ^ (z >> 31)) % block


def sub_coder(coder, block):
    """A plain coder over just ``block``'s dimensions, with its tilings."""
    dims = list(block.dims)
    return TileCoder(low=[coder.low[i] for i in dims], high=[coder.high[i] for i in dims],
                     tiles=[coder.tiles[i] for i in dims], tilings=block.tilings,
                     wrap=[coder.wrap[i] for i in dims])


def naive_subset_indices(coder, x):
    """Each subset coded alone by a plain coder, moved into its block (hashed if so)."""
    out = []
    for block in coder.blocks:
        sub = sub_coder(coder, block)
        for t, index in enumerate(sub.indices([x[i] for i in block.dims]).tolist()):
            cell = index - t * sub.tiling_size
            if block.hashed:
                cell = naive_hash(cell, block.first_active + t, block.tiling_size)
            out.append(block.first_feature + t * block.tiling_size + cell)
    return out


def subset_points(coder, rng):
    probe = TileCoder(low=coder.low, high=coder.high, tiles=coder.tiles, tilings=7,
                      wrap=coder.wrap)
    return sample_points(probe, rng, n_random=600, n_special=300)


SUBSET_CASES = {
    "singles-and-pair": dict(subsets=((0,), (1,), (2,), (0, 2)), tilings=8),
    "per-subset-tilings": dict(subsets=((2, 0), (1,), (0, 1, 2)), tilings=(4, 1, 16)),
    "one-tiling": dict(subsets=((0, 1), (1, 2)), tilings=1),
    "hashed-all": dict(tilings=16, memory=100),
    "hashed-some": dict(subsets=((0,), (1,), (0, 1, 2)), tilings=8, memory=400),
    "hashed-per-subset": dict(subsets=((1, 2), (0, 1, 2)), tilings=(2, 32), memory=3001),
}


@pytest.mark.parametrize("case", sorted(SUBSET_CASES))
def test_subsets_and_hashing_match_the_naive_composition(case):
    coder = TileCoder(**SUBSET_CONFIG, **SUBSET_CASES[case])
    X = subset_points(coder, np.random.default_rng(5))
    idx = coder.indices_batch(X)
    assert idx.shape == (len(X), coder.n_active)
    assert coder.n_active == sum(b.tilings for b in coder.blocks)
    for x, row in zip(X.tolist(), idx.tolist()):
        assert row == naive_subset_indices(coder, x)
    # Each tiling stays in its own block: a point's active features are distinct.
    lo = np.concatenate([b.first_feature + np.arange(b.tilings) * b.tiling_size
                         for b in coder.blocks])
    sizes = np.concatenate([np.full(b.tilings, b.tiling_size) for b in coder.blocks])
    assert ((idx >= lo) & (idx < lo + sizes)).all()
    assert ((idx >= 0) & (idx < coder.n_features)).all()
    if coder.memory is not None:
        assert coder.n_features <= coder.memory
        assert any(b.hashed for b in coder.blocks)


def test_memory_is_shared_out_after_the_subsets_that_fit():
    coder = TileCoder(**SUBSET_CONFIG, **SUBSET_CASES["hashed-some"])
    single0, single1, triple = coder.blocks
    # Exact, 8 * (4 + 4 + 96) = 832 features > 400. 400 // 24 tilings = 16 >= the
    # singles' 4 cells: they stay exact; the triple's 8 tilings share the rest,
    # (400 - 8 * (4 + 4)) // 8 = 42 < its 4 * 4 * 6 = 96 cells.
    assert (single0.tiling_size, single0.hashed) == (4, False)
    assert (single1.tiling_size, single1.hashed) == (4, False)  # wrapped: 4 tiles
    assert (triple.grid_shape, triple.tiling_size, triple.hashed) == ((4, 4, 6), 42, True)
    assert [b.first_feature for b in coder.blocks] == [0, 32, 64]
    assert [b.first_active for b in coder.blocks] == [0, 8, 16]
    assert coder.n_features == 64 + 8 * 42 == 400 and coder.n_active == 24
    assert coder.tiling_size is None and coder.grid_shape is None


def test_one_subset_of_all_dimensions_is_the_plain_coder():
    # The grouped kernel against the plain one, on every configuration and
    # boundary the plain one is tested on.
    for config in CONFIGS.values():
        for tilings in (1, 2, 7, 32):
            plain = TileCoder(tilings=tilings, **config)
            grouped = TileCoder(tilings=tilings, subsets=(tuple(range(plain.n_dims)),), **config)
            assert grouped.kernel_args()[1].shape[1] == 11  # the grouped layout
            assert (grouped.n_features, grouped.n_active) == (plain.n_features, plain.n_active)
            assert (grouped.grid_shape, grouped.tiling_size) == (plain.grid_shape,
                                                                 plain.tiling_size)
            X = sample_points(plain, np.random.default_rng(tilings))
            np.testing.assert_array_equal(grouped.indices_batch(X), plain.indices_batch(X))


def test_memory_that_fits_changes_nothing():
    plain = pendulum_tile_coder()
    roomy = dataclasses.replace(plain, memory=plain.n_features)
    assert roomy.n_features == plain.n_features and not roomy.blocks[0].hashed
    for a, b in zip(roomy.kernel_args(), plain.kernel_args()):
        np.testing.assert_array_equal(a, b)
    X = sample_points(plain, np.random.default_rng(2))
    np.testing.assert_array_equal(roomy.indices_batch(X), plain.indices_batch(X))
    # One feature less and every tiling hashes into 2303 // 32 = 71 < 72.
    tight = dataclasses.replace(plain, memory=plain.n_features - 1)
    assert tight.blocks[0].hashed and tight.tiling_size == 71 and tight.n_features == 32 * 71


def test_hash_is_pinned():
    # The same indices on every machine and in every process: no salt, no hash().
    coder = TileCoder(low=(0.0,) * 4, high=(1.0,) * 4, tiles=8, tilings=4, memory=1000)
    x = [0.1, 0.2, 0.3, 0.4]
    exact = dataclasses.replace(coder, memory=None)
    cells = [index - t * exact.tiling_size for t, index in enumerate(exact.indices(x).tolist())]
    expected = [250 * t + naive_hash(c, t, 250) for t, c in enumerate(cells)]
    assert coder.indices(x).tolist() == expected == [175, 262, 722, 787]
    # The reference is splitmix64: its first two outputs from seed 0.
    assert naive_hash(0, 1, 1 << 64) == 0xE220A8397B1DCDAF
    assert naive_hash(0, 2, 1 << 64) == 0x6E789E6AA1B965F4


def test_hash_spreads_cells_like_random_ones():
    # Cells of a hashed tiling fill its features about as a random assignment
    # would: 6561 cells into 4096 features occupy 1 - exp(-6561/4096) ~ 80 % of them,
    # and two cells that collide in one tiling almost never collide in the others.
    cells, block = 9**4, 4096
    slots = np.array([[naive_hash(c, k, block) for c in range(cells)] for k in range(4)])
    for k in range(4):
        assert 0.77 < np.unique(slots[k]).size / block < 0.83
    first = {}
    pairs = []
    for c, s in enumerate(slots[0].tolist()):
        if s in first:
            pairs.append((first[s], c))
        first.setdefault(s, c)
    again = sum(slots[k, a] == slots[k, b] for a, b in pairs for k in (1, 2, 3))
    assert len(pairs) > 2000 and again < 10  # expected 3 * len(pairs) / 4096 ~ 2


def test_hashed_coder_generalises_locally():
    # Hashing keeps nearby points' shared tiles: only unrelated points collide.
    coder = TileCoder(low=(0.0,) * 4, high=(1.0,) * 4, tiles=8, tilings=16, memory=2**12)
    x = np.array([0.3, 0.6, 0.2, 0.9])
    assert shared(coder, x, x + 0.001) >= 14
    rng = np.random.default_rng(0)
    far = rng.uniform(0.0, 1.0, size=(2000, 4))
    far = far[np.abs(far - x).max(axis=1) > 0.3]
    sharing = (coder.indices_batch(far) == coder.indices(x)).sum(axis=1)
    assert sharing.mean() < 16 * 0.02  # ~ 1 / 256 per tiling


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e300, -1e300, 1e17])
@pytest.mark.parametrize("case", ["per-subset-tilings", "hashed-per-subset"])
def test_grouped_kernel_indices_stay_in_range_for_any_input(case, value):
    coder = TileCoder(**SUBSET_CONFIG, **SUBSET_CASES[case])
    out = np.empty(coder.n_active, dtype=np.int64)
    lo = np.concatenate([b.first_feature + np.arange(b.tilings) * b.tiling_size
                         for b in coder.blocks])
    sizes = np.concatenate([np.full(b.tilings, b.tiling_size) for b in coder.blocks])
    for i in range(3):
        x = np.array([0.2, 1.0, 11.0])
        x[i] = value
        tile_indices(x, *coder.kernel_args(), out)
        assert ((out >= lo) & (out < lo + sizes)).all()


@pytest.mark.parametrize("case", ["singles-and-pair", "hashed-per-subset"])
def test_grouped_kernel_callable_from_jitted_code(case):
    coder = TileCoder(**SUBSET_CONFIG, **SUBSET_CASES[case])
    rng = np.random.default_rng(1)
    X = subset_points(coder, rng)
    w = rng.standard_normal(coder.n_features)
    out = np.empty(coder.n_active, dtype=np.int64)
    expected = w[coder.indices_batch(X)].sum(axis=1)
    np.testing.assert_allclose(_weighted_sum(X, w, coder.kernel_args(), out), expected)


def test_acrobot_sized_coder_stays_small():
    # One grid: 32 tilings of 9**6 cells, 17 million features; each dimension
    # and every pair: 10,152.
    from itertools import combinations
    subsets = [(i,) for i in range(6)] + list(combinations(range(6), 2))
    coder = TileCoder(low=(-1.0,) * 6, high=(1.0,) * 6, tiles=8, tilings=8, subsets=subsets)
    assert (coder.n_features, coder.n_active) == (6 * 8 * 9 + 15 * 8 * 81, 21 * 8)
    with pytest.raises(ValueError, match="tiles"):
        TileCoder(low=(0.0,) * 4, high=(1.0,) * 4, tiles=(2**20,) * 4, tilings=2, memory=2**20)
    # Grids too large to index exactly are fine hashed.
    big = TileCoder(low=(0.0,) * 4, high=(1.0,) * 4, tiles=1000, tilings=2, memory=2**16)
    assert big.n_features == 2**16 and big.blocks[0].grid_shape == (1001,) * 4


GOOD_SUBSETS = dict(low=(0.0, -1.0, 0.0), high=(1.0, 1.0, 2.0), tiles=4, tilings=8,
                    subsets=((0,), (1, 2)))

BAD_SUBSET_SETTINGS = [
    ("subsets", ()),
    ("subsets", ((),)),
    ("subsets", ((0, 0),)),
    ("subsets", ((3,),)),
    ("subsets", ((-1,),)),
    ("subsets", ((0.5,),)),
    ("subsets", ((True,),)),
    ("subsets", "01"),
    ("subsets", 5),
    ("subsets", (0, 1)),
    ("subsets", ((0, 1), (1, 0))),
    ("tilings", (8, 0)),
    ("tilings", (8, 8, 8)),
    ("tilings", (8, 2.0)),
    ("memory", 0),
    ("memory", -5),
    ("memory", 2.5),
    ("memory", True),
    ("memory", "100"),
    ("memory", 15),  # fewer than the 16 active features
    ("memory", 2**32),
]


@pytest.mark.parametrize("name, value", BAD_SUBSET_SETTINGS)
def test_bad_subset_or_memory_setting_raises_value_error_naming_it(name, value):
    with pytest.raises(ValueError, match=name):
        TileCoder(**{**GOOD_SUBSETS, name: value})


def test_tilings_per_subset_need_subsets():
    with pytest.raises(ValueError, match="tilings"):
        TileCoder(low=(0.0, 0.0), high=(1.0, 1.0), tiles=4, tilings=(8, 8))
    coder = TileCoder(**{**GOOD_SUBSETS, "tilings": [4, np.int64(8)]})
    assert coder.tilings == (4, 8) and coder.n_active == 12
    assert coder.subsets == ((0,), (1, 2)) and type(coder.subsets[0][0]) is int


# --- settings on disk ---------------------------------------------------------------------------


@pytest.mark.parametrize("coder", [
    pendulum_tile_coder(), one_hot(9),
    TileCoder(**SUBSET_CONFIG, **SUBSET_CASES["hashed-per-subset"]),
    TileCoder(**SUBSET_CONFIG, **SUBSET_CASES["hashed-all"]),
    TileCoder(**SUBSET_CONFIG, **SUBSET_CASES["singles-and-pair"]),
], ids=["pendulum", "one_hot", "hashed-per-subset", "hashed-all", "subsets"])
def test_settings_round_trip_through_experiment_json(coder):
    import json

    from avgreward.features import features_from_dict, features_to_dict

    d = json.loads(json.dumps(features_to_dict(coder)))
    assert features_from_dict(d) == coder
    plain = coder.subsets is None and coder.memory is None
    # A plain coder writes the keys it always wrote, so old directories resume.
    assert (set(d) == {"low", "high", "tiles", "tilings", "wrap"}) == plain


def test_old_settings_without_the_new_keys_still_load():
    from avgreward.features import features_from_dict

    old = {"low": [-PI, -2 * PI], "high": [PI, 2 * PI], "tiles": [8, 8], "tilings": 32,
           "wrap": [True, False]}
    assert features_from_dict(old) == pendulum_tile_coder()


# --- defaults for gymnasium environments, and the loops -----------------------------------------


def test_default_tile_coder_stays_small_in_many_dimensions():
    from avgreward.environments import default_tile_coder

    old_sizes = {1: (72, 8), 2: (648, 8), 3: (11664, 16), 4: (104976, 16)}
    for n_dims in range(1, 32):
        coder = default_tile_coder([0.0] * n_dims, [1.0] * n_dims)
        assert coder.n_features <= 2**17
        if n_dims in old_sizes:  # one grid, as before
            assert coder.subsets is None and coder.memory is None
            assert (coder.n_features, coder.n_active) == old_sizes[n_dims]
        else:  # each dimension alone and every pair
            assert len(coder.subsets) == n_dims + n_dims * (n_dims - 1) // 2
            assert coder.n_active == 8 * len(coder.subsets)
    with pytest.raises(ValueError, match="features"):
        default_tile_coder([0.0] * 40, [1.0] * 40)


@pytest.mark.slow
def test_acrobot_default_features_are_under_100000():
    import avgreward

    coder = avgreward.default_features("Acrobot-v1")
    assert coder.n_dims == 6 and coder.n_features == 10152 < 100_000
    assert coder.subsets is not None and coder.n_active == 168
    # The stepwise path (gymnasium's environment stepped from Python) runs it.
    result = avgreward.train("Acrobot-v1", avgreward.default_agent("Acrobot-v1"), 1000, seed=0)
    assert result.features == coder
    assert np.isfinite(result.weights["w"]).all() and np.abs(result.weights["w"]).max() > 0


@pytest.mark.parametrize("case", ["subsets", "hashed"])
@pytest.mark.slow
def test_fused_loop_with_subsets_or_hashing_equals_reference(case):
    import avgreward
    from avgreward import SoftmaxActorCritic
    from avgreward.reference import reference_train

    pendulum = pendulum_tile_coder(tilings=8)
    coder = dataclasses.replace(pendulum, subsets=((0,), (1,), (0, 1)), tilings=(4, 4, 8))
    if case == "hashed":
        coder = dataclasses.replace(pendulum, tilings=16, memory=16 * 40)
        assert coder.blocks[0].hashed
    env_id = "avgreward/PendulumSwingUp-v0"
    agent = SoftmaxActorCritic.pendulum_reference(lambda_w=0.5, lambda_theta=0.5)
    result = avgreward.train(env_id, agent, 1500, seed=3, features=coder, record_actions=True,
                             rbar_every=1, chunk_steps=777)
    ref = reference_train(env_id, agent, 1500, seed=3, features=coder)
    np.testing.assert_allclose(result.actions, ref["actions"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.rbar, ref["rbar"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.weights["w"], ref["w"], rtol=0, atol=1e-9)
    assert np.abs(result.weights["w"]).max() > 1e-3
