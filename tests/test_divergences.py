"""Forward and reverse KL on a grid: exact gradients, the fits' known facts, the Boltzmann link."""

import numpy as np
import pytest

from avgreward import divergences as dv

X = np.linspace(-10.0, 10.0, 401)


def _bimodal(x=X):
    p = 0.5 * np.exp(-0.5 * ((x + 2.0) / 0.6) ** 2) + 0.5 * np.exp(-0.5 * ((x - 2.5) / 0.8) ** 2)
    return p / p.sum()


P = _bimodal()
MEAN = float(P @ X)
VAR = float(P @ (X - MEAN) ** 2)


def _divergence(p, q, direction):
    return dv.kl(p, q) if direction == "forward" else dv.kl(q, p)


def _central_difference(f, theta, h):
    grad = np.zeros_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        grad[i] = (f(theta + e) - f(theta - e)) / (2.0 * h)
    return grad


@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("params", [(0.3, 0.2), (2.4, -0.3), (-1.0, 1.0)])
def test_the_gaussian_gradient_is_the_finite_difference(direction, params):
    def f(t):
        return _divergence(P, dv.gaussian_on_grid(X, t), direction)

    exact = dv.kl_gradient_gaussian(P, X, params, direction)
    numeric = _central_difference(f, np.array(params, dtype=float), 1e-5)
    np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-10)
    assert np.all(np.abs(exact) > 1e-3)  # a real gradient, not two zeros agreeing


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_the_logit_gradient_is_the_finite_difference(direction):
    rng = np.random.default_rng(0)
    x = np.linspace(-3, 3, 13)
    p = _bimodal(x)
    logits = rng.normal(size=x.size)

    def f(t):
        return _divergence(p, dv.softmax(t), direction)

    exact = dv.kl_gradient_logits(p, logits, direction)
    numeric = _central_difference(f, logits, 1e-5)
    np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-10)
    # The logits' gradient sums to zero: adding a constant to every logit changes nothing.
    assert abs(exact.sum()) < 1e-12 and np.abs(exact).max() > 1e-2


@pytest.mark.slow
def test_a_forward_fit_matches_the_mean_and_variance_of_p():
    # The grid Gaussian is the exponential family with statistics x, x^2: the forward KL's
    # gradient vanishes exactly when Q's grid mean and variance are P's (moment matching).
    fit = dv.fit(P, X, "forward", steps=4000, learning_rate=0.5)
    q_mean = fit.q @ X
    assert abs(q_mean - MEAN) < 1e-9
    assert abs(fit.q @ (X - q_mean) ** 2 - VAR) < 1e-8
    # Its own mu and sigma are P's in the limit of a grid that does not cut it off.
    errors = []
    for half_width in (10.0, 20.0):
        x = np.linspace(-half_width, half_width, int(40 * half_width) + 1)
        p = _bimodal(x)
        mean, var = p @ x, p @ (x - p @ x) ** 2
        wide = dv.fit(p, x, "forward", steps=4000, learning_rate=0.5)
        errors.append(max(abs(wide.params[0] - mean), abs(np.exp(wide.params[1]) - np.sqrt(var))))
    assert 1e-5 < errors[0] < 1e-3 and errors[1] < 1e-9
    assert np.all(np.diff(fit.divergence) <= 1e-15)  # descent all the way
    # ... and it covers both modes: a third of its mass on either side of the gap.
    assert fit.q[X < 0].sum() > 0.3 and fit.q[X > 0].sum() > 0.3


@pytest.mark.slow
@pytest.mark.parametrize("start, mode, mode_sd", [((2.0, 0.0), 2.5, 0.8), ((-1.5, 0.0), -2.0, 0.6)])
def test_a_reverse_fit_ends_on_the_mode_it_starts_near(start, mode, mode_sd):
    fit = dv.fit(P, X, "reverse", start=start, steps=4000, learning_rate=0.5)
    mu, sigma = fit.params[0], np.exp(fit.params[1])
    assert abs(mu - mode) < 0.05
    assert sigma < 0.5 * np.sqrt(VAR)  # P's sd is 2.34: the fit ignores the other mode
    assert abs(sigma - mode_sd) < 0.05
    gradient = dv.kl_gradient_gaussian(P, X, fit.params, "reverse")
    assert np.abs(gradient).max() < 1e-8  # a stationary point, not a stopped descent
    forward = dv.fit(P, X, "forward", start=start, steps=4000, learning_rate=0.5)
    assert dv.kl(P, fit.q) > dv.kl(P, forward.q)  # each is the better fit by its own measure
    assert dv.kl(fit.q, P) < dv.kl(forward.q, P)


def test_free_logits_reach_p_forward_but_reverse_lingers_on_one_mode():
    x = np.linspace(-6, 6, 61)
    p = _bimodal(x)
    forward = dv.fit(p, x, "forward", family="softmax", steps=3000, learning_rate=20.0)
    assert dv.kl(p, forward.q) < 1e-3
    start = -0.5 * (x - 2.5) ** 2  # all its mass near the right mode
    reverse = dv.fit(p, x, "reverse", family="softmax", start=start, steps=3000,
                     learning_rate=20.0)
    # d/dl_j is proportional to Q_j: where Q has no mass, it grows slowly.
    assert reverse.q[x < 0].sum() < 0.45 and reverse.divergence[-1] > 0.05
    assert reverse.divergence[-1] < reverse.divergence[0]


@pytest.mark.parametrize("beta", [0.3, 1.0, 4.0])
def test_max_entropy_is_reverse_kl_to_the_boltzmann_distribution_plus_a_constant(beta):
    rng = np.random.default_rng(1)
    r = rng.normal(size=7)
    target = dv.boltzmann(r, beta)
    constant = beta * np.log(np.sum(np.exp(r / beta)))  # beta log Z
    for _ in range(5):
        q = rng.dirichlet(np.ones(7))
        assert abs(dv.max_entropy_objective(q, r, beta) - (constant - beta * dv.kl(q, target))) \
            < 1e-12
    # The constant is the objective's maximum, reached at the Boltzmann distribution.
    assert abs(dv.max_entropy_objective(target, r, beta) - constant) < 1e-12
    point = np.eye(7)[np.argmax(r)]
    assert dv.max_entropy_objective(point, r, beta) == pytest.approx(r.max(), abs=1e-15)
    assert dv.max_entropy_objective(point, r, beta) < constant


def test_kl_facts():
    assert dv.kl(P, P) == 0.0
    assert dv.kl([1.0, 0.0], [0.5, 0.5]) == pytest.approx(np.log(2), abs=1e-15)
    assert dv.kl([0.5, 0.5], [1.0, 0.0]) == float("inf")
    assert dv.entropy([0.25] * 4) == pytest.approx(np.log(4), abs=1e-15)


@pytest.mark.parametrize("call, words", [
    (lambda: dv.kl([0.5, 0.6], [0.5, 0.5]), "p must be a probability distribution"),
    (lambda: dv.kl([0.5, 0.5], [-0.5, 1.5]), "q must be a probability distribution"),
    (lambda: dv.kl([0.5, 0.5], [1.0]), "same grid"),
    (lambda: dv.kl([[0.5, 0.5]], [0.5, 0.5]), "p must be a non-empty 1-d array"),
    (lambda: dv.kl(["a", "b"], [0.5, 0.5]), "p must be a numeric array"),
    (lambda: dv.fit(P * 2, X, "forward"), "p must be a probability distribution"),
    (lambda: dv.fit(P, X, "sideways"), "direction must be one of"),
    (lambda: dv.fit(P, X, "forward", family="mixture"), "family must be one of"),
    (lambda: dv.fit(P, X[:-1], "forward"), "p and x must be on the same grid"),
    (lambda: dv.fit(P, X, "forward", steps=0), "steps must be an integer >= 1"),
    (lambda: dv.fit(P, X, "forward", learning_rate=-1), "learning_rate must be"),
    (lambda: dv.fit(P, X, "forward", start=(0.0,)), "params must be"),
    (lambda: dv.fit(P, X, "forward", family="softmax", start=[0.0]), "start must be"),
    (lambda: dv.fit(P, X, "forward", learning_rate=1e6), "learning_rate .* too large"),
    (lambda: dv.kl_gradient_logits([1.0, 0.0], [0.0, 0.0], "reverse"), "reverse KL .* infinite"),
    (lambda: dv.boltzmann([1.0, 2.0], 0.0), "temperature must be a finite number > 0"),
    (lambda: dv.boltzmann([1.0, 2.0], -1.0), "temperature"),
    (lambda: dv.max_entropy_objective([0.5, 0.5], [1.0, 2.0], float("nan")), "temperature"),
])
def test_bad_input_is_refused_naming_the_setting(call, words):
    with pytest.raises(ValueError, match=words):
        call()
