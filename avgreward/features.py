"""Sparse binary features: tile coding, one-hot and bit-pattern codes.

Every feature map here is a :class:`TileCoder`: a point ``x`` activates
exactly ``tilings`` features of a binary vector of length ``n_features``, and
the map returns their indices (int64). Actors and critics only ever see these
indices (never a dense vector).

The partition is the one of Sutton's ``tiles3.tileswrap`` applied to the
scaled point ``x' = (x - low) * tiles / (high - low)``; the indices are
computed by plain arithmetic, with no hash table.

Two layers (kernel vs API):

* :func:`tile_indices` is the ``@njit`` kernel the fused training loop calls:
  arrays and scalars only, no checks, no allocation. Call it as
  ``tile_indices(x, *coder.kernel_args(), out)``. It is inlined into jitted
  callers (``forceinline``) and has no exception paths (``error_model="numpy"``),
  so that a call costs nothing beyond its arithmetic.
* :class:`TileCoder` holds and validates the settings, validates points in
  :meth:`TileCoder.indices` and precomputes the kernel's arguments once.
"""

import math
import operator
from dataclasses import dataclass, field

import numpy as np
from numba import njit

__all__ = [
    "TileCoder",
    "tile_indices",
    "tile_indices_batch",
    "one_hot",
    "binary_pattern",
    "pendulum_tile_coder",
]

# Index arithmetic is int64 in the kernel, but the weights are the real limit:
# 2**32 features are 32 GiB of critic weights alone, more than any machine we run on.
_MAX_FEATURES = 2**32


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
    """
    n = offsets.shape[1]
    n_dims = box.shape[0]
    # Two dimensions per pass over the tilings: the pendulum's take one pass.
    low, step, threshold = _dimension(x, box, grid, 0, n)
    if n_dims >= 2:
        low1, step1, threshold1 = _dimension(x, box, grid, 1, n)
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
        low, step, threshold = _dimension(x, box, grid, i, n)
        for t in range(n):
            out[t] += low + (step if offsets[i, t] >= threshold else 0)


@njit(cache=True, error_model="numpy", forceinline=True)
def _dimension(x, box, grid, i, n):
    """Dimension ``i``'s part of the indices: ``(low, step, threshold)``.

    Tiling ``t`` adds ``low + step`` if ``offsets[i, t] >= threshold``, else ``low``
    (the grid coordinate ``a`` or ``a + 1``, times the dimension's stride).
    """
    lo = box[i, 0]
    xi = x[i]
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


def _per_dim(name, value, kinds, what):
    """Return ``value`` as a 1-D numpy array whose dtype kind is in ``kinds``."""
    message = f"{name} must be {what} (a scalar or one value per dimension), got {_fmt(value)!r}"
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


@dataclass(frozen=True)
class TileCoder:
    """Tile coding of a box, with optional periodic (wrapped) dimensions.

    ``tilings`` grids of ``tiles`` tiles per dimension cover ``[low, high]``,
    each grid offset from the previous one by the asymmetric displacement
    ``(1, 3, 5, ...) / tilings`` of a tile width (Sutton's tiles3). A point
    activates one tile of each tiling: ``tilings`` active binary features.

    Parameters
    ----------
    low, high : float or sequence of float
        Bounds of each dimension (finite, ``low < high``). A scalar means a
        1-D coder. On a wrapped dimension ``high - low`` is the period.
    tiles : int or sequence of int
        Tiles spanning ``[low, high]`` in each dimension (>= 1).
    tilings : int, default 1
        Number of tilings (>= 1); tiles3 recommends a power of two at least
        4 times the number of dimensions.
    wrap : bool or sequence of bool, optional
        Which dimensions are periodic; default none.

    Attributes
    ----------
    n_dims : int
    n_features : int
        Length of the binary feature vector: ``tilings * tiling_size``.
    n_active : int
        Active features per point (= ``tilings``).
    tiling_size : int
        Features per tiling: the product of :attr:`grid_shape`.
    grid_shape : tuple of int
        Grid coordinates per dimension within a tiling: ``tiles`` on wrapped
        dimensions and with one tiling, ``tiles + 1`` otherwise (an offset
        grid needs one more tile to cover ``[low, high]``).

    Notes
    -----
    Tiling ``t`` owns the index block ``[t * tiling_size, (t+1) * tiling_size)``
    and within it a tile's index is its grid coordinates in C order (last
    dimension fastest). Points outside ``[low, high]`` are clipped on
    non-wrapped dimensions and wrapped around on wrapped ones.

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
    """

    low: tuple
    high: tuple
    tiles: tuple
    tilings: int = 1
    wrap: tuple = None
    _grid_shape: tuple = field(init=False, repr=False, compare=False)
    _kernel_args: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        low = _per_dim("low", self.low, "iuf", "finite real numbers")
        n_dims = low.size
        high = _per_dim("high", self.high, "iuf", "finite real numbers")
        tiles = _per_dim("tiles", self.tiles, "iu", "positive integers")
        wrap = np.zeros(n_dims, dtype=bool) if self.wrap is None else (
            _per_dim("wrap", self.wrap, "b", "booleans"))
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
        tilings = _positive_int("tilings", self.tilings)
        scale = tuple(t / (hi - lo) for t, lo, hi in zip(tiles, low, high))
        if not all(math.isfinite(s) and s > 0.0 for s in scale):
            raise ValueError(
                f"high - low must be a finite, nonzero width, got low={low!r}, high={high!r}"
            )

        grid_shape = tuple(t if (w or tilings == 1) else t + 1 for t, w in zip(tiles, wrap))
        tiling_size = math.prod(grid_shape)
        if tiling_size * tilings >= _MAX_FEATURES:
            raise ValueError(
                f"tiles and tilings give too many features ({tiling_size * tilings}; at most "
                f"2**32, whose critic weights alone take 32 GiB), got tiles={tiles!r}, "
                f"tilings={tilings!r}"
            )
        strides = [1] * n_dims
        for i in range(n_dims - 2, -1, -1):
            strides[i] = strides[i + 1] * grid_shape[i + 1]

        top = tuple(t - 1 if (w or tilings == 1) else t for t, w in zip(tiles, wrap))
        box = np.column_stack([low, high, scale]).astype(np.float64)
        grid = np.column_stack([tiles, wrap, strides, top]).astype(np.int64)
        offsets = (np.arange(1, 2 * n_dims, 2)[:, None] * np.arange(tilings)) % tilings
        kernel_args = []
        for array in (box, grid, offsets.astype(np.int64)):
            array = np.ascontiguousarray(array)
            array.flags.writeable = False  # shared by every caller of kernel_args()
            kernel_args.append(array)
        kernel_args = (*kernel_args, tiling_size)
        for name, value in (
            ("low", low), ("high", high), ("tiles", tiles), ("tilings", tilings),
            ("wrap", wrap), ("_grid_shape", grid_shape), ("_kernel_args", kernel_args),
        ):
            object.__setattr__(self, name, value)

    @property
    def n_dims(self):
        """Number of input dimensions."""
        return len(self.low)

    @property
    def grid_shape(self):
        """Grid coordinates per dimension within one tiling (C-order block)."""
        return self._grid_shape

    @property
    def tiling_size(self):
        """Number of features of one tiling."""
        return self._kernel_args[3]

    @property
    def n_active(self):
        """Number of active features per point (= ``tilings``)."""
        return self.tilings

    @property
    def n_features(self):
        """Length of the binary feature vector."""
        return self.tilings * self.tiling_size

    def kernel_args(self):
        """Arguments of :func:`tile_indices` between ``x`` and ``out``.

        Returns
        -------
        tuple
            ``(box, grid, offsets, tiling_size)``: C-contiguous read-only
            arrays of float64 (n_dims, 3), int64 (n_dims, 4) and int64
            (n_dims, tilings), then an int; see :func:`tile_indices`.
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

    def indices(self, x):
        """Active feature indices of point ``x``, one per tiling.

        Parameters
        ----------
        x : array_like of float, shape (n_dims,)
            The point (a scalar is accepted by a 1-D coder). Must be finite;
            values outside ``[low, high]`` are clipped, or wrapped on wrapped
            dimensions.

        Returns
        -------
        ndarray of int64, shape (tilings,)
            ``out[t]`` is the active feature of tiling ``t``, in
            ``[t * tiling_size, (t + 1) * tiling_size)``.

        Raises
        ------
        ValueError
            If ``x`` has the wrong shape or holds NaN or infinite values.
        """
        x = self._points(x, batch=False)
        out = np.empty(self.tilings, dtype=np.int64)
        tile_indices(x, *self._kernel_args, out)
        return out

    def indices_batch(self, X):
        """Active feature indices of many points (rows of ``X``), e.g. for maps.

        Parameters
        ----------
        X : array_like of float, shape (m, n_dims)
            The points (shape (m,) is accepted by a 1-D coder). Must be finite.

        Returns
        -------
        ndarray of int64, shape (m, tilings)
            Row ``k`` equals ``indices(X[k])``.
        """
        X = self._points(X, batch=True)
        out = np.empty((X.shape[0], self.tilings), dtype=np.int64)
        tile_indices_batch(X, *self._kernel_args, out)
        return out


def one_hot(n):
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


def binary_pattern(n_bits):
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


def pendulum_tile_coder(tilings=32, tiles=8):
    """The pendulum's reference tile coder over ``(beta, betadot)``.

    ``beta`` in ``[-pi, pi)`` wrapped (the full circle spans ``tiles`` tiles),
    ``betadot`` over ``[-2 pi, 2 pi]`` (spanning ``tiles`` tiles), both with
    ``tilings`` tilings: the partition of tiles3's ``tileswrap`` on
    ``(beta * tiles / (2 pi), betadot * tiles / (4 pi))``.

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
