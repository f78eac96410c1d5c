"""Policy kernels: scores against central finite differences, sampling, stability."""

import math

import numpy as np
import pytest
from helpers import finite_difference

from avgreward.actors import (
    gaussian_log_prob,
    gaussian_parameters,
    gaussian_score,
    sample_discrete,
    softmax_entropy_gradient,
    softmax_log_prob,
    softmax_probabilities,
    softmax_score,
)

N_FEATURES = 12
IDX = np.array([1, 4, 7, 10], dtype=np.int64)
H = 1e-6


def _finite_difference(f, theta):
    return finite_difference(f, theta, H)


def _expand(coef, idx, shape):
    """The full gradient ``coef (x) x(s)`` from per-column coefficients."""
    grad = np.zeros(shape)
    grad[idx] = coef
    return grad


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("action", [0, 1, 2])
@pytest.mark.slow
def test_softmax_score_matches_finite_differences(tau, action):
    rng = np.random.default_rng(7)
    theta = rng.normal(scale=0.3, size=(N_FEATURES, 3))
    probs, coef = np.empty(3), np.empty(3)
    softmax_probabilities(theta, IDX, tau, probs)
    softmax_score(probs, action, tau, coef)
    analytic = _expand(coef, IDX, theta.shape)
    numeric = _finite_difference(lambda th: softmax_log_prob(th, IDX, tau, action), theta)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
    # Features that are not active get no gradient at all.
    assert np.all(analytic[np.setdiff1d(np.arange(N_FEATURES), IDX)] == 0.0)


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_softmax_entropy_gradient_matches_finite_differences(tau):
    rng = np.random.default_rng(3)
    theta = rng.normal(scale=0.3, size=(N_FEATURES, 4))

    def entropy(th):
        p = np.empty(4)
        softmax_probabilities(th, IDX, tau, p)
        return -np.sum(p * np.log(p))

    probs, coef = np.empty(4), np.empty(4)
    softmax_probabilities(theta, IDX, tau, probs)
    softmax_entropy_gradient(probs, tau, coef)
    np.testing.assert_allclose(_expand(coef, IDX, theta.shape), _finite_difference(entropy, theta),
                               rtol=1e-5, atol=1e-8)


def test_softmax_probabilities_are_stable_and_exact():
    theta = np.zeros((N_FEATURES, 3))
    theta[IDX, 0] = 400.0  # preferences of 1600: exp would overflow without the max shift
    probs = np.empty(3)
    softmax_probabilities(theta, IDX, 1.0, probs)
    assert np.all(np.isfinite(probs)) and probs[0] == pytest.approx(1.0)
    theta = np.random.default_rng(0).normal(size=(N_FEATURES, 3))
    softmax_probabilities(theta, IDX, 0.7, probs)
    h = theta[IDX].sum(axis=0) / 0.7
    np.testing.assert_allclose(probs, np.exp(h) / np.exp(h).sum(), rtol=1e-12)


def test_inverse_cdf_sampling_has_the_right_distribution():
    probs = np.array([0.2, 0.5, 0.3])
    rng = np.random.default_rng(11)
    draws = np.array([sample_discrete(probs, u) for u in rng.random(60_000)])
    freq = np.bincount(draws, minlength=3) / draws.size
    # 5 standard errors of a binomial proportion.
    assert np.all(np.abs(freq - probs) < 5 * np.sqrt(probs * (1 - probs) / draws.size))
    assert sample_discrete(probs, 0.0) == 0
    assert sample_discrete(probs, np.nextafter(1.0, 0.0)) == 2


@pytest.mark.parametrize("sigma_min", [0.0, 0.2])
@pytest.mark.parametrize("action", [-2.5, 0.3, 1.7])
def test_gaussian_scores_match_finite_differences(sigma_min, action):
    rng = np.random.default_rng(5)
    theta = rng.normal(scale=0.1, size=(N_FEATURES, 2))
    mu, exp_h, sigma = gaussian_parameters(theta, IDX, sigma_min)
    assert mu == pytest.approx(theta[IDX, 0].sum())
    assert sigma == pytest.approx(sigma_min + math.exp(theta[IDX, 1].sum()))
    g_mu, g_sigma = gaussian_score(action, mu, exp_h, sigma, False)
    analytic = _expand(np.array([g_mu, g_sigma]), IDX, theta.shape)
    numeric = _finite_difference(lambda th: gaussian_log_prob(th, IDX, sigma_min, action), theta)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)
    # With sigma_min = 0 these are the textbook formulas exactly.
    if sigma_min == 0.0:
        assert g_mu == pytest.approx((action - mu) / sigma**2)
        assert g_sigma == pytest.approx((action - mu) ** 2 / sigma**2 - 1.0)


def test_scaled_mean_gradient_is_the_score_times_sigma_squared():
    theta = np.random.default_rng(2).normal(scale=0.1, size=(N_FEATURES, 2))
    mu, exp_h, sigma = gaussian_parameters(theta, IDX, 0.0)
    plain, _ = gaussian_score(1.0, mu, exp_h, sigma, False)
    scaled, _ = gaussian_score(1.0, mu, exp_h, sigma, True)
    assert scaled == pytest.approx(plain * sigma**2) and scaled == pytest.approx(1.0 - mu)
