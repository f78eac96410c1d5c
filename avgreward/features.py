"""Sparse binary features: tile coding, one-hot and bit-pattern codes.

Every feature map here is a :class:`TileCoder`: a point ``x`` activates
exactly :attr:`~TileCoder.n_active` features of a binary vector of length
``n_features``, and the map returns their indices (int64). Actors and critics
only ever see these indices (never a dense vector).

Each tiling's grid coordinates are, bit for bit, those of Sutton's
``tiles3.tileswrap`` on the floats ``(x_i - low_i) * (tiles_i / (high_i -
low_i))`` (``x_i`` first clipped to ``[low_i, high_i]`` on non-wrapped
dimensions): the scaled point shifted by the lower bound. The indices are
computed from the coordinates by plain arithmetic, with no hash table.

Beyond two or three dimensions one grid over all dimensions has too many
tiles (8 tiles and 32 tilings over 6 dimensions: 17 million features), so
a coder can also tile ``subsets`` of the dimensions separately (Sutton &
Barto, section 9.5.4) and cap its size with ``memory``, hashing the tiles of
large grids into a fixed number of features (a deterministic integer hash,
the same on every machine; still no table).

Two layers (kernel vs API):

* :func:`tile_indices` is the ``@njit`` kernel the fused training loop calls:
  arrays and scalars only, no checks, no allocation. Call it as
  ``tile_indices(x, *coder.kernel_args(), out)``. It is inlined into jitted
  callers (``forceinline``) and has no exception paths (``error_model="numpy"``),
  so that a call costs nothing beyond its arithmetic.
* :class:`TileCoder` holds and validates the settings, validates points in
  :meth:`TileCoder.indices` and precomputes the kernel's arguments once.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import ArrayLike

__all__ = [
    "TileCoder",
    "TileBlock",
    "tile_indices",
    "tile_indices_batch",
    "one_hot",
    "binary_pattern",
    "pendulum_tile_coder",
    "features_to_dict",
    "features_from_dict",
]

# Index arithmetic is int64 in the kernel, but the weights are the real limit:
# 2**32 features are 32 GiB of critic weights alone, more than any machine we run on.
_MAX_FEATURES = 2**32
# A grid's cell index (before hashing) is int64 arithmetic: keep it far from overflow.
_MAX_CELLS = 2**62


def _tile_indices(x, box, grid, offsets, tiling_size, out):
    """Write the active feature index of each tiling of point ``x`` into ``out``.

    The kernel behind :meth:`TileCoder.indices`. It trusts its inputs: get
    every argument but ``x`` and ``out`` from :meth:`TileCoder.kernel_args`,
    in this order: ``tile_indices(x, *coder.kernel_args(), out)``.

    Parameters
    ----------
    x : ndarray of float64, shape (n_dims,)
        The point. Values outside ``[low, high]`` are clipped on non-wrapped
        dimensions and wrapped around on wrapped ones. Whatever ``x`` holds
        (even NaN or inf), every index written lies in ``[0, n_features)``.
    box : ndarray of float64, shape (n_dims, 3)
        Per dimension: ``low``, ``high``, ``scale = tiles / (high - low)``.
    grid : ndarray of int64, shape (n_dims, 4)
        Per dimension: ``tiles``; ``wrap`` (1 if periodic with period
        ``high - low``, else 0); ``stride`` of the grid coordinate within a
        tiling (C order: the last dimension has stride 1); ``top``, the
        largest grid coordinate (``tiles - 1`` on wrapped dimensions and with
        one tiling, else ``tiles``).
    offsets : ndarray of int64, shape (n_dims, tilings)
        ``offsets[i, t] = (2 i + 1) t mod tilings``: tiles3's asymmetric
        displacement of tiling ``t`` along dimension ``i``, in units of
        ``1 / tilings`` of a tile.
    tiling_size : int
        Number of features of one tiling.
    out : ndarray of int64, shape (tilings,)
        Receives the indices; ``out[t]`` lies in
        ``[t * tiling_size, (t + 1) * tiling_size)``.

    Notes
    -----
    With ``n`` tilings, ``x'_i = (x_i - low_i) * scale_i`` and
    ``q = floor(x'_i * n)``, the grid coordinate of tiling ``t`` along
    dimension ``i`` is ``c = (q + offsets[i, t]) // n`` (tiles3's
    ``tileswrap``), taken mod ``tiles_i`` on wrapped dimensions. Non-wrapped
    dimensions clip ``x`` to ``[low, high]`` first, so ``c`` ranges over
    ``0..tiles_i`` when ``n > 1``; with one tiling ``c = tiles_i`` (reached
    only at ``x = high``) joins the last tile. The index is
    ``t * tiling_size + sum_i c_i * stride_i``.

    Writing ``q = a n + r``, ``c`` is ``a + 1`` when ``offsets[i, t] >= n - r``
    and ``a`` otherwise, so the loop over tilings is a division-free select
    that vectorises; two dimensions are folded into each pass over the
    tilings (the pendulum's two take one pass). The settings travel in three
    arrays rather than one per setting because every array argument of a
    jitted call costs a few nanoseconds per call when it is not inlined.

    A coder with ``subsets`` or hashed tiles passes its settings in another
    layout (``grid`` with 11 columns, one row per dimension of each subset)
    and ``tiling_size`` None, which this kernel hands to a separate, not
    inlined, kernel (:func:`_tile_indices_grouped`). numba compiles a
    function once per argument type, and for an int ``tiling_size`` the test
    ``tiling_size is None`` is a constant that LLVM removes with the call:
    the plain coder's inlined code is what it was before subsets existed.
    """
    if tiling_size is None:
        # The grouped layout. Compiled for an int tiling_size, the test is a
        # constant and the call disappears: the plain coder pays nothing.
        _tile_indices_grouped(x, box, grid, offsets, out)
        return
    n = offsets.shape[1]
    n_dims = box.shape[0]
    # Two dimensions per pass over the tilings: the pendulum's take one pass.
    low, step, threshold = _dimension(x[0], box, grid, 0, n)
    if n_dims >= 2:
        low1, step1, threshold1 = _dimension(x[1], box, grid, 1, n)
        base = low + low1
        for t in range(n):
            out[t] = (base + (step if offsets[0, t] >= threshold else 0)
                      + (step1 if offsets[1, t] >= threshold1 else 0))
            base += tiling_size
    else:
        base = low
        for t in range(n):
            out[t] = base + (step if offsets[0, t] >= threshold else 0)
            base += tiling_size
    for i in range(2, n_dims):
        low, step, threshold = _dimension(x[i], box, grid, i, n)
        for t in range(n):
            out[t] += low + (step if offsets[i, t] >= threshold else 0)


@njit(cache=True, error_model="numpy", forceinline=True)
def _dimension(xi, box, grid, i, n):
    """Row ``i``'s part of the indices, for coordinate value ``xi``: ``(low, step, threshold)``.

    Tiling ``t`` adds ``low + step`` if ``offsets[i, t] >= threshold``, else ``low``
    (the grid coordinate ``a`` or ``a + 1``, times the dimension's stride).
    ``n`` is the number of tilings the row belongs to.
    """
    lo = box[i, 0]
    tiles = grid[i, 0]
    wrapped = grid[i, 1] != 0
    if wrapped:
        q = np.floor((xi - lo) * box[i, 2] * n)
        period = float(tiles * n)
        if not (q >= 0.0 and q < period):
            # Shifting q by whole periods leaves c mod tiles unchanged and
            # keeps the int conversion in range; NaN and inf land on 0.
            q -= period * np.floor(q / period)
            if not (q >= 0.0 and q < period):
                q = 0.0
    else:
        # "not >=" also sends NaN to low, so the index stays in range.
        if not (xi >= lo):
            xi = lo
        elif xi > box[i, 1]:
            xi = box[i, 1]
        q = np.floor((xi - lo) * box[i, 2] * n)
    qi = np.int64(q)  # q >= 0 here, so // below needs no sign care
    a = qi // n
    threshold = n - (qi - a * n)
    top = grid[i, 3]
    if wrapped:
        above = a + 1 if a < top else 0
    else:
        a = min(a, top)
        above = min(a + 1, top)
    stride = grid[i, 2]
    return a * stride, (above - a) * stride, threshold


# Columns of the grouped layout's ``grid`` (see _tile_indices_grouped).
_TILES, _WRAP, _STRIDE, _TOP, _DIM, _FIRST_ACTIVE, _TILINGS, _FIRST_ROW, _FIRST_FEATURE, \
    _BLOCK, _HASHED = range(11)


@njit(cache=True, error_model="numpy", forceinline=True)
def _hash_tile(c, k, block):
    """Deterministic hash of grid cell ``c`` of active slot ``k`` into ``0..block-1``.

    splitmix64's finaliser (Steele, Lea & Flood 2014) of ``c + k * gamma``
    in wrapping unsigned 64-bit arithmetic: no Python ``hash()``, no salt,
    so every machine and process gets the same indices. ``k`` decorrelates
    the tilings' collisions.
    """
    z = np.uint64(c) + np.uint64(k) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.int64(z % np.uint64(block))


@njit(cache=True, error_model="numpy")
def _tile_indices_grouped(x, box, grid, offsets, out):
    """:func:`tile_indices` for a coder with ``subsets`` or a hashed ``memory``.

    Row ``r`` of ``box``, ``grid`` and ``offsets`` is one dimension of one
    subset (the subsets' rows in order, each subset's dimensions in its
    order). ``box[r]`` and ``grid[r, :4]`` are as in :func:`tile_indices`
    for that dimension, with the stride and top of the subset's own grid;
    then ``grid[r]`` holds the dimension's index in ``x``, the subset's first
    slot of ``out``, its number of tilings ``n``, 1 on the subset's first
    row (else 0), its first feature, its features per tiling ``block``, and
    1 if its tiles are hashed. ``offsets[r, t]`` is ``(2 j + 1) t mod n`` for
    the ``j``-th dimension of the subset (zero beyond ``n``).

    Tiling ``t`` of a subset with first slot ``s`` and first feature ``f``
    writes ``out[s + t] = f + t * block + c``, where ``c`` is its cell's
    C-order index in the subset's grid, or ``_hash_tile(c, s + t, block)``
    when hashed.
    """
    for k in range(out.shape[0]):
        out[k] = 0
    # The cell of each tiling: the same select as tile_indices, one row at a time.
    for r in range(box.shape[0]):
        first = grid[r, _FIRST_ACTIVE]
        n = grid[r, _TILINGS]
        low, step, threshold = _dimension(x[grid[r, _DIM]], box, grid, r, n)
        for t in range(n):
            out[first + t] += low + (step if offsets[r, t] >= threshold else 0)
    # The cell's feature, in the subset's block of each tiling.
    for r in range(box.shape[0]):
        if grid[r, _FIRST_ROW] == 0:
            continue
        first = grid[r, _FIRST_ACTIVE]
        block = grid[r, _BLOCK]
        hashed = grid[r, _HASHED] != 0
        base = grid[r, _FIRST_FEATURE]
        for t in range(grid[r, _TILINGS]):
            c = out[first + t]
            if hashed:
                c = _hash_tile(c, first + t, block)
            out[first + t] = base + c
            base += block


tile_indices = njit(cache=True, error_model="numpy", forceinline=True)(_tile_indices)


@njit(cache=True, error_model="numpy")
def tile_indices_batch(X, box, grid, offsets, tiling_size, out):
    """Apply :func:`tile_indices` to each row of ``X``, writing row ``k`` of ``out``.

    ``X`` is float64 of shape (m, n_dims), ``out`` int64 of shape (m, tilings);
    the arguments in between are :meth:`TileCoder.kernel_args`.
    """
    for k in range(X.shape[0]):
        tile_indices(X[k], box, grid, offsets, tiling_size, out[k])


def _fmt(values):
    return tuple(values) if isinstance(values, (list, tuple, np.ndarray)) else values


def _per_dim(name, value, kinds, what, scalar="a scalar"):
    """Return ``value`` as a 1-D numpy array whose dtype kind is in ``kinds``."""
    message = f"{name} must be {what} ({scalar} or one value per dimension), got {_fmt(value)!r}"
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:  # ragged nesting, odd objects
        raise ValueError(message) from error
    if array.ndim > 1 or array.size == 0 or array.dtype.kind not in kinds:
        raise ValueError(message)
    return array.reshape(-1)


def _positive_int(name, value):
    """Return ``value`` as a Python int >= 1; bools and floats are rejected."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return number


def _is_sequence(value):
    return isinstance(value, (list, tuple, np.ndarray))


def _subsets(value, n_dims):
    """``subsets`` as a tuple of tuples of distinct dimension indices."""
    message = (f"subsets must be a non-empty sequence of non-empty sequences of distinct "
               f"dimension indices in 0..{n_dims - 1}, got {value!r}")
    if not _is_sequence(value) or len(value) == 0:
        raise ValueError(message)
    groups = []
    for group in value:
        if not _is_sequence(group) or len(group) == 0:
            raise ValueError(message)
        dims = []
        for d in group:
            if isinstance(d, (bool, np.bool_)):
                raise ValueError(message)
            try:
                d = operator.index(d)
            except TypeError:
                raise ValueError(message) from None
            if not 0 <= d < n_dims or d in dims:
                raise ValueError(message)
            dims.append(d)
        if any(set(dims) == set(other) for other in groups):
            # The same dimensions twice tile them twice with the same offsets.
            raise ValueError(f"subsets must not repeat a subset, got {value!r}")
        groups.append(tuple(dims))
    return tuple(groups)


def _tilings(value, n_groups, subsets_given):
    """``(tilings as stored, list of tilings per subset)``."""
    if not _is_sequence(value):
        number = _positive_int("tilings", value)
        return number, [number] * n_groups
    if not subsets_given:
        raise ValueError(f"tilings must be a positive integer (one per subset only with "
                         f"subsets), got {_fmt(value)!r}")
    if len(value) != n_groups:
        raise ValueError(f"tilings must be a positive integer or one per subset ({n_groups}), "
                         f"got {_fmt(value)!r}")
    per_group = [_positive_int("tilings", v) for v in value]
    return tuple(per_group), per_group


class TileBlock(NamedTuple):
    """One subset's tilings and their place in a :class:`TileCoder`'s index space.

    Its ``tilings`` tilings fill the active slots ``first_active ..
    first_active + tilings - 1`` and own the features ``first_feature ..
    first_feature + tilings * tiling_size - 1``, ``tiling_size`` per tiling.
    """

    dims: tuple
    """Dimensions tiled (indices into ``x``), in the order that sets the offsets."""
    tilings: int
    grid_shape: tuple
    """Grid coordinates per dimension of ``dims`` (as :attr:`TileCoder.grid_shape`)."""
    tiling_size: int
    """Features per tiling: the grid's cells, or the hash's range when ``hashed``."""
    hashed: bool
    first_feature: int
    first_active: int


def _grid_shape(dims, tiles, wrap, tilings):
    return tuple(tiles[i] if (wrap[i] or tilings == 1) else tiles[i] + 1 for i in dims)


def _blocks(groups, per_group, tiles, wrap, memory):
    """Each subset's :class:`TileBlock`: exact grids, or hashed ones within ``memory``.

    Without ``memory``, or when the exact grids fit in it, every tiling indexes
    its cells exactly. Otherwise ``memory`` is shared out: ``B`` is what is
    left after the exact subsets, split equally among the hashed tilings;
    a subset whose grid has at most ``B`` cells is indexed exactly, the
    others hash into ``B`` features per tiling (repeated until no more
    subsets fit, which leaves ``B`` only growing).
    """
    shapes = [_grid_shape(g, tiles, wrap, n) for g, n in zip(groups, per_group)]
    sizes = [math.prod(shape) for shape in shapes]
    hashed = [False] * len(groups)
    block = sizes[:]
    if memory is not None and sum(n * s for n, s in zip(per_group, sizes)) > memory:
        hashed = [True] * len(groups)
        while True:
            free = memory - sum(n * s for n, s, h in zip(per_group, sizes, hashed) if not h)
            share = free // sum(n for n, h in zip(per_group, hashed) if h)
            fits = [g for g, h in enumerate(hashed) if h and sizes[g] <= share]
            if not fits:
                break
            for g in fits:
                hashed[g] = False
        block = [share if h else s for s, h in zip(sizes, hashed)]
    blocks = []
    first_feature = first_active = 0
    for g, dims in enumerate(groups):
        blocks.append(TileBlock(dims, per_group[g], shapes[g], block[g], hashed[g],
                                first_feature, first_active))
        first_feature += per_group[g] * block[g]
        first_active += per_group[g]
    return tuple(blocks)


def _read_only(*arrays):
    out = []
    for array in arrays:
        array = np.ascontiguousarray(array)
        array.flags.writeable = False  # shared by every caller of kernel_args()
        out.append(array)
    return out


def _strides(shape):
    """C-order strides (in cells) of a grid of ``shape``."""
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    return strides


def _plain_kernel_args(low, high, scale, tiles, wrap, block):
    """The original layout of :func:`tile_indices`: one subset of all dimensions, exact."""
    n_dims, tilings = len(low), block.tilings
    top = tuple(t - 1 if (w or tilings == 1) else t for t, w in zip(tiles, wrap))
    box = np.column_stack([low, high, scale]).astype(np.float64)
    grid = np.column_stack([tiles, wrap, _strides(block.grid_shape), top]).astype(np.int64)
    offsets = (np.arange(1, 2 * n_dims, 2)[:, None] * np.arange(tilings)) % tilings
    return (*_read_only(box, grid, offsets.astype(np.int64)), block.tiling_size)


def _grouped_kernel_args(low, high, scale, tiles, wrap, blocks):
    """The layout of :func:`_tile_indices_grouped`: one row per dimension of each subset."""
    box, grid, offsets = [], [], []
    width = max(b.tilings for b in blocks)
    for b in blocks:
        for j, (i, stride) in enumerate(zip(b.dims, _strides(b.grid_shape))):
            top = tiles[i] - 1 if (wrap[i] or b.tilings == 1) else tiles[i]
            box.append((low[i], high[i], scale[i]))
            row = [0] * 11
            row[_TILES], row[_WRAP], row[_STRIDE], row[_TOP] = tiles[i], int(wrap[i]), stride, top
            row[_DIM], row[_FIRST_ACTIVE], row[_TILINGS] = i, b.first_active, b.tilings
            row[_FIRST_ROW], row[_FIRST_FEATURE] = int(j == 0), b.first_feature
            row[_BLOCK], row[_HASHED] = b.tiling_size, int(b.hashed)
            grid.append(row)
            row_offsets = np.zeros(width, dtype=np.int64)
            row_offsets[:b.tilings] = ((2 * j + 1) * np.arange(b.tilings)) % b.tilings
            offsets.append(row_offsets)
    box = np.array(box, dtype=np.float64)
    grid = np.array(grid, dtype=np.int64)
    return (*_read_only(box, grid, np.array(offsets, dtype=np.int64)), None)


@dataclass(frozen=True)
class TileCoder:
    """Tile coding of a box, with optional periodic (wrapped) dimensions.

    ``tilings`` grids of ``tiles`` tiles per dimension cover ``[low, high]``,
    each grid offset from the previous one by the asymmetric displacement
    ``(1, 3, 5, ...) / tilings`` of a tile width (Sutton's tiles3). A point
    activates one tile of each tiling: ``tilings`` active binary features.

    With ``subsets``, each subset of the dimensions gets its own ``tilings``
    grids over just its dimensions (Sutton & Barto, section 9.5.4: e.g.
    each dimension alone and every pair, instead of one grid whose size is
    exponential in the dimensions), and a point activates one tile of each
    tiling of each subset. ``memory`` caps the number of features by hashing
    the tiles of grids too large for it.

    Parameters
    ----------
    low, high : float or sequence of float
        Bounds of each dimension (finite, ``low < high``). A scalar means a
        1-D coder. On a wrapped dimension ``high - low`` is the period.
    tiles : int or sequence of int
        Tiles spanning ``[low, high]`` in each dimension (>= 1); an int is
        used for every dimension.
    tilings : int or sequence of int, default 1
        Number of tilings (>= 1); tiles3 recommends a power of two at least
        4 times the number of dimensions (of a subset). With ``subsets``,
        an int is used for every subset, or give one per subset.
    wrap : bool or sequence of bool, optional
        Which dimensions are periodic; default none. A bool is used for every
        dimension.
    subsets : sequence of sequence of int, optional
        Groups of dimension indices, each tiled separately, e.g.
        ``((0,), (1,), (0, 1))``. A subset's ``j``-th dimension takes the
        offsets ``(2 j + 1) t`` (as tiles3 called on just those
        coordinates), so a subset is coded exactly as a coder over its
        dimensions alone would code them. Default: one subset of all
        dimensions in order, the plain coder.
    memory : int, optional
        Most features the coder may have (>= the number of active
        features). Default: no limit. A coder whose grids fit is unchanged
        (its indices are the same as without ``memory``). Otherwise the
        memory is shared out equally among the tilings, after the subsets
        whose grids fit in a tiling's share, which keep their exact cells;
        each remaining tiling hashes its cell's index into its share (see
        Notes).

    Attributes
    ----------
    n_dims : int
    n_features : int
        Length of the binary feature vector: ``tilings * tiling_size`` for
        one subset; the sum over the blocks in general.
    n_active : int
        Active features per point: ``tilings``, summed over the subsets.
    tiling_size : int or None
        Features per tiling: the product of :attr:`grid_shape`, or a hashed
        tiling's share of ``memory``; None with more than one subset (see
        :attr:`blocks`).
    grid_shape : tuple of int or None
        Grid coordinates per dimension within a tiling: ``tiles`` on wrapped
        dimensions and with one tiling, ``tiles + 1`` otherwise (an offset
        grid needs one more tile to cover ``[low, high]``); None with more
        than one subset.
    blocks : tuple of TileBlock
        Per subset: its dimensions, tilings, grid shape, features per
        tiling, whether hashed, first feature and first active slot.

    Notes
    -----
    Tiling ``t`` owns the index block ``[t * tiling_size, (t+1) * tiling_size)``
    and within it a tile's index is its grid coordinates in C order (last
    dimension fastest). Points outside ``[low, high]`` are clipped on
    non-wrapped dimensions and wrapped around on wrapped ones. With
    ``subsets``, the subsets' blocks follow each other in order
    (:attr:`blocks`), and the indices of a point list the subsets'
    tilings in order.

    Each tiling's grid coordinates are bit for bit those of tiles3's
    ``tileswrap`` on ``(x_i - low_i) * (tiles_i / (high_i - low_i))`` (the
    point shifted by the lower bound): see :mod:`avgreward.features`.

    Hashing keeps each tiling in its own block, so a point's active
    features stay distinct and :attr:`n_active` is unchanged. Within a
    hashed tiling, cells of the grid share features: two cells collide with
    probability about ``1 / tiling_size``, and unrelated points then
    generalise to each other through that tiling; the other tilings rarely
    collide for the same pair, which is what makes coarse hashing work (Sutton
    & Barto, 9.5.4). The hash is splitmix64's finaliser of the cell and the
    tiling's slot: deterministic, no table to fill, the same indices in
    every process.

    Examples
    --------
    The pendulum's reference coder: 32 tilings of 8 x 8 tiles, angle wrapped.

    >>> import math
    >>> coder = TileCoder(low=(-math.pi, -2 * math.pi), high=(math.pi, 2 * math.pi),
    ...                   tiles=(8, 8), tilings=32, wrap=(True, False))
    >>> coder.n_features, coder.n_active, coder.grid_shape
    (2304, 32, (8, 9))
    >>> idx = coder.indices([0.0, 0.0])
    >>> idx.dtype, idx.shape
    (dtype('int64'), (32,))

    Across the wrap, just below pi and just above -pi, the angle shares all
    tiles but tiling 0's:

    >>> a = coder.indices([math.pi - 1e-9, 0.0])
    >>> b = coder.indices([-math.pi + 1e-9, 0.0])
    >>> int((a == b).sum())
    31

    In a jitted loop, call the kernel with the precomputed arguments:

    >>> import numpy as np
    >>> out = np.empty(coder.n_active, dtype=np.int64)
    >>> tile_indices(np.array([0.0, 0.0]), *coder.kernel_args(), out)
    >>> bool((out == idx).all())
    True

    Six dimensions: each alone and every pair, 8 tilings of 8 tiles each,
    instead of 17 million features for one 6-D grid:

    >>> from itertools import combinations
    >>> pairs = [(i,) for i in range(6)] + list(combinations(range(6), 2))
    >>> wide = TileCoder(low=(-1.0,) * 6, high=(1.0,) * 6, tiles=8, tilings=8, subsets=pairs)
    >>> wide.n_features, wide.n_active
    (10152, 168)

    One 4-D grid of 16 tilings hashed into 2**12 features per tiling:

    >>> hashed = TileCoder(low=(0.0,) * 4, high=(1.0,) * 4, tiles=8, tilings=16,
    ...                    memory=2**16)
    >>> hashed.n_features, hashed.n_active, hashed.tiling_size, hashed.blocks[0].hashed
    (65536, 16, 4096, True)
    """

    low: tuple
    high: tuple
    tiles: tuple
    tilings: int = 1
    wrap: tuple = None
    subsets: tuple = None
    memory: int = None
    _blocks: tuple = field(init=False, repr=False, compare=False)
    _kernel_args: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        low = _per_dim("low", self.low, "iuf", "finite real numbers", "a scalar for 1-D")
        n_dims = low.size
        high = _per_dim("high", self.high, "iuf", "finite real numbers", "a scalar for 1-D")
        tiles = _per_dim("tiles", self.tiles, "iu", "positive integers")
        wrap = np.zeros(n_dims, dtype=bool) if self.wrap is None else (
            _per_dim("wrap", self.wrap, "b", "booleans"))
        # A scalar tiles or wrap is every dimension's (a 1-element sequence is
        # not: for a coder of several dimensions it is more likely a slip).
        if np.ndim(self.tiles) == 0:
            tiles = np.repeat(tiles, n_dims)
        if self.wrap is not None and np.ndim(self.wrap) == 0:
            wrap = np.repeat(wrap, n_dims)
        for name, array in (("high", high), ("tiles", tiles), ("wrap", wrap)):
            if array.size != n_dims:
                raise ValueError(
                    f"{name} must have one value per dimension ({n_dims}, as low), "
                    f"got {_fmt(getattr(self, name))!r}"
                )
        low = tuple(float(v) for v in low)
        high = tuple(float(v) for v in high)
        tiles = tuple(int(v) for v in tiles)
        wrap = tuple(bool(v) for v in wrap)
        for name, values in (("low", low), ("high", high)):
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"{name} must be finite real numbers, got {values!r}")
        if not all(lo < hi for lo, hi in zip(low, high)):
            raise ValueError(
                f"high must be greater than low in every dimension, got low={low!r}, high={high!r}"
            )
        if any(t < 1 for t in tiles):
            raise ValueError(f"tiles must be positive integers, got {tiles!r}")
        subsets = None if self.subsets is None else _subsets(self.subsets, n_dims)
        groups = subsets if subsets is not None else (tuple(range(n_dims)),)
        tilings, per_group = _tilings(self.tilings, len(groups), subsets is not None)
        memory = None
        if self.memory is not None:
            memory = _positive_int("memory", self.memory)
            if memory < sum(per_group):
                raise ValueError(f"memory must be at least the number of active features "
                                 f"({sum(per_group)}: one per tiling), got {memory!r}")
            if memory >= _MAX_FEATURES:
                raise ValueError(f"memory must be below 2**32 (critic weights alone would "
                                 f"take 32 GiB), got {memory!r}")
        scale = tuple(t / (hi - lo) for t, lo, hi in zip(tiles, low, high))
        if not all(math.isfinite(s) and s > 0.0 for s in scale):
            raise ValueError(
                f"high - low must be a finite, nonzero width, got low={low!r}, high={high!r}"
            )

        for dims, n in zip(groups, per_group):
            cells = math.prod(_grid_shape(dims, tiles, wrap, n))
            # (Without memory the count of features below is the tighter limit.)
            if memory is not None and cells >= _MAX_CELLS:
                raise ValueError(
                    f"tiles give a grid of {cells} tiles over dimensions {dims}, too many to "
                    f"index even with memory (at most 2**62), got tiles={tiles!r}"
                )
        blocks = _blocks(groups, per_group, tiles, wrap, memory)
        n_features = sum(b.tilings * b.tiling_size for b in blocks)
        if n_features >= _MAX_FEATURES:
            raise ValueError(
                f"tiles and tilings give too many features ({n_features}; at most 2**32, whose "
                f"critic weights alone take 32 GiB), got tiles={tiles!r}, "
                f"tilings={_fmt(tilings)!r}: use fewer tiles or tilings, or subsets or memory"
            )
        if subsets is None and not blocks[0].hashed:
            # Bit for bit the arguments (and so the indices) of the coder
            # before subsets and memory existed: the fused loops' fast path.
            kernel_args = _plain_kernel_args(low, high, scale, tiles, wrap, blocks[0])
        else:
            kernel_args = _grouped_kernel_args(low, high, scale, tiles, wrap, blocks)
        for name, value in (
            ("low", low), ("high", high), ("tiles", tiles), ("tilings", tilings),
            ("wrap", wrap), ("subsets", subsets), ("memory", memory), ("_blocks", blocks),
            ("_kernel_args", kernel_args),
        ):
            object.__setattr__(self, name, value)

    @property
    def n_dims(self) -> int:
        """Number of input dimensions."""
        return len(self.low)

    @property
    def blocks(self) -> tuple[TileBlock, ...]:
        """Per subset, a :class:`TileBlock`: its tilings' place in the index space."""
        return self._blocks

    @property
    def grid_shape(self) -> tuple[int, ...] | None:
        """Grid coordinates per dimension within one tiling (C-order block); None
        with more than one subset."""
        return self._blocks[0].grid_shape if len(self._blocks) == 1 else None

    @property
    def tiling_size(self) -> int | None:
        """Number of features of one tiling; None with more than one subset."""
        return self._blocks[0].tiling_size if len(self._blocks) == 1 else None

    @property
    def n_active(self) -> int:
        """Number of active features per point (``tilings``, summed over the subsets)."""
        return sum(b.tilings for b in self._blocks)

    @property
    def n_features(self) -> int:
        """Length of the binary feature vector."""
        last = self._blocks[-1]
        return last.first_feature + last.tilings * last.tiling_size

    def kernel_args(self) -> tuple:
        """Arguments of :func:`tile_indices` between ``x`` and ``out``.

        Returns
        -------
        tuple
            ``(box, grid, offsets, tiling_size)``: C-contiguous read-only
            arrays of float64 (n_dims, 3), int64 (n_dims, 4) and int64
            (n_dims, tilings), then an int; see :func:`tile_indices`. A coder
            with ``subsets`` or hashed tiles has another layout (``grid`` of 11
            columns, one row per dimension of each subset) and None in place of
            the int, which jitted callers compile for once.
            Computed once per coder; the same objects on every call.
        """
        return self._kernel_args

    def _points(self, X, batch):
        name = "X" if batch else "x"
        shape = "(m, %d)" % self.n_dims if batch else "(%d,)" % self.n_dims
        try:
            array = np.asarray(X, dtype=np.float64)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{name} must be real numbers of shape {shape}, got {X!r}") from error
        if self.n_dims == 1 and array.ndim == (1 if batch else 0):
            array = array.reshape(-1, 1) if batch else array.reshape(1)
        if array.ndim != (2 if batch else 1) or array.shape[-1] != self.n_dims:
            raise ValueError(f"{name} must have shape {shape}, got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} must be finite, got {X!r}")
        return np.ascontiguousarray(array)

    def indices(self, x: ArrayLike) -> np.ndarray:
        """Active feature indices of point ``x``, one per tiling.

        Parameters
        ----------
        x : array_like of float, shape (n_dims,)
            The point (a scalar is accepted by a 1-D coder). Must be finite;
            values outside ``[low, high]`` are clipped, or wrapped on wrapped
            dimensions.

        Returns
        -------
        ndarray of int64, shape (n_active,)
            ``out[t]`` is the active feature of tiling ``t``, in
            ``[t * tiling_size, (t + 1) * tiling_size)``; with subsets, the
            subsets' tilings in order, each in its block (:attr:`blocks`).

        Raises
        ------
        ValueError
            If ``x`` has the wrong shape or holds NaN or infinite values.
        """
        x = self._points(x, batch=False)
        out = np.empty(self.n_active, dtype=np.int64)
        tile_indices(x, *self._kernel_args, out)
        return out

    def indices_batch(self, X: ArrayLike) -> np.ndarray:
        """Active feature indices of many points (rows of ``X``), e.g. for maps.

        Parameters
        ----------
        X : array_like of float, shape (m, n_dims)
            The points (shape (m,) is accepted by a 1-D coder). Must be finite.

        Returns
        -------
        ndarray of int64, shape (m, n_active)
            Row ``k`` equals ``indices(X[k])``.
        """
        X = self._points(X, batch=True)
        out = np.empty((X.shape[0], self.n_active), dtype=np.int64)
        tile_indices_batch(X, *self._kernel_args, out)
        return out


def one_hot(n: int) -> TileCoder:
    """One-hot code of a discrete state ``0..n-1``: a 1-tiling :class:`TileCoder`.

    One dimension over ``[0, n)`` with ``n`` tiles, so state ``s`` (as a
    float, e.g. ``obs[0]``) activates feature ``s``.

    Parameters
    ----------
    n : int
        Number of states (>= 1).

    Returns
    -------
    TileCoder

    Examples
    --------
    >>> one_hot(9).indices([4.0])
    array([4])
    """
    n = _positive_int("n", n)
    return TileCoder(low=(0.0,), high=(float(n),), tiles=(n,), tilings=1, wrap=(False,))


def binary_pattern(n_bits: int) -> TileCoder:
    """One-hot code of an ``n_bits``-bit pattern: a 1-tiling :class:`TileCoder`.

    ``n_bits`` dimensions over ``[0, 2)`` with 2 tiles each; a pattern of
    0.0/1.0 values activates the single feature ``sum_i bit_i 2**(n_bits-1-i)``
    (the first bit is the most significant).

    Parameters
    ----------
    n_bits : int
        Number of bits (>= 1).

    Returns
    -------
    TileCoder
        ``n_features == 2**n_bits``.

    Examples
    --------
    >>> binary_pattern(4).indices([1.0, 0.0, 0.0, 1.0])
    array([9])
    """
    n_bits = _positive_int("n_bits", n_bits)
    return TileCoder(
        low=(0.0,) * n_bits, high=(2.0,) * n_bits, tiles=(2,) * n_bits, tilings=1,
        wrap=(False,) * n_bits,
    )


def pendulum_tile_coder(tilings: int = 32, tiles: int = 8) -> TileCoder:
    """The pendulum's reference tile coder over ``(beta, betadot)``.

    ``beta`` in ``[-pi, pi)`` wrapped (the full circle spans ``tiles`` tiles),
    ``betadot`` over ``[-2 pi, 2 pi]`` (spanning ``tiles`` tiles), both with
    ``tilings`` tilings: bit for bit tiles3's ``tileswrap`` on the scaling
    shifted by the lower bound, ``((beta + pi) * (tiles / (2 pi)),
    (betadot + 2 pi) * (tiles / (4 pi)))`` (``betadot`` clipped).

    The course notebooks feed ``tileswrap`` the unshifted
    ``(beta * tiles / (2 pi), betadot * tiles / (4 pi))``. As ``pi`` and
    ``2 pi`` are whole numbers of tiles, the two partitions are the same in
    exact arithmetic, but not in floating point: ``x * s`` and
    ``(x + pi) * s`` round differently at tile edges, and such points occur.
    At ``(-pi, -3e-17)``, reached right after a reset, the unshifted velocity
    falls just below 0 and the shifted one rounds up to ``2 pi``, so one
    tiling (of 32) puts the point in a different tile.

    Parameters
    ----------
    tilings : int, default 32
    tiles : int, default 8
        Tiles per dimension.

    Returns
    -------
    TileCoder
    """
    tiles = _positive_int("tiles", tiles)
    return TileCoder(
        low=(-math.pi, -2.0 * math.pi), high=(math.pi, 2.0 * math.pi),
        tiles=(tiles, tiles), tilings=tilings, wrap=(True, False),
    )


def features_to_dict(features: TileCoder) -> dict:
    """A tile coder's settings as JSON data, as saved results and experiments keep them.

    Parameters
    ----------
    features : TileCoder
        The feature map.

    Returns
    -------
    dict
        ``low``, ``high``, ``tiles``, ``tilings`` and ``wrap`` (lists, or an int
        for ``tilings`` given as one), plus ``subsets`` and ``memory`` only
        when they are set, so that a plain coder's settings are the ones
        written before these options existed (its experiments still resume).

    See Also
    --------
    features_from_dict : The inverse.

    Examples
    --------
    >>> from avgreward.features import TileCoder, features_from_dict, features_to_dict
    >>> coder = TileCoder(low=(0.0,), high=(1.0,), tiles=(4,), tilings=2)
    >>> features_to_dict(coder)["tiles"]
    [4]
    >>> features_from_dict(features_to_dict(coder)) == coder
    True
    """
    d = {
        "low": list(features.low), "high": list(features.high), "tiles": list(features.tiles),
        "tilings": (list(features.tilings) if isinstance(features.tilings, tuple)
                    else features.tilings),
        "wrap": list(features.wrap),
    }
    # Only when set: a plain coder's settings stay those written before these
    # options existed, so that its experiment directories still resume.
    if features.subsets is not None:
        d["subsets"] = [list(subset) for subset in features.subsets]
    if features.memory is not None:
        d["memory"] = features.memory
    return d


def features_from_dict(d: dict) -> TileCoder:
    """The tile coder whose settings :func:`features_to_dict` gave.

    Parameters
    ----------
    d : dict
        JSON data of :func:`features_to_dict`; ``subsets`` and ``memory`` may
        be absent (files written before those options existed).

    Returns
    -------
    TileCoder
        Equal to the coder ``d`` was made from.

    Raises
    ------
    KeyError
        If one of ``low``, ``high``, ``tiles``, ``tilings``, ``wrap`` is missing.
    ValueError
        If the settings are not a valid tile coder (as :class:`TileCoder` says).
    """
    tilings = d["tilings"]
    subsets = d.get("subsets")  # absent from files written before subsets existed
    return TileCoder(low=tuple(d["low"]), high=tuple(d["high"]), tiles=tuple(d["tiles"]),
                     tilings=tuple(tilings) if isinstance(tilings, list) else tilings,
                     wrap=tuple(d["wrap"]),
                     subsets=None if subsets is None else tuple(map(tuple, subsets)),
                     memory=d.get("memory"))
