"""Small helpers shared by several test modules (importable: pytest puts tests/ on sys.path)."""

import numpy as np


def finite_difference(f, theta, h=1e-6):
    """Central finite differences of the scalar ``f`` at every element of ``theta``."""
    grad = np.zeros_like(theta)
    for i in np.ndindex(theta.shape):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (f(up) - f(down)) / (2 * h)
    return grad


def actor_weights(result):
    """A result's actor weights as one ``[n_features, columns]`` array (Gaussian: mu, sigma)."""
    if "theta" in result.weights:
        return result.weights["theta"]
    return np.stack([result.weights["theta_mu"], result.weights["theta_sigma"]], axis=1)
