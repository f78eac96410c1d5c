"""avgreward: average-reward actor-critic methods, fused and jitted with numba."""

__version__ = "0.1.0"

from avgreward.features import TileCoder, binary_pattern, one_hot, pendulum_tile_coder

__all__ = ["__version__", "TileCoder", "one_hot", "binary_pattern", "pendulum_tile_coder"]
