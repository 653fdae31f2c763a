"""Theory functions outside the regimes the other tests use: non-zero bias variance sigma_b^2 in every signal
function, learning rates far from the small-step limit in the escape laws, depth other than 2, unequal widths.

Each value is compared with an independent computation in tests/naive.py or written out here: the mean-field
recursions by Gauss-Hermite quadrature (Poole et al. 2016; Schoenholz et al. 2017), ReLU's closed forms, the exact
AR(1) variances of SGD on a quadratic (geometric sums), gradient-flow times by quadrature in u itself (the library
integrates in log u), and the heavy ball's growth factor as the largest root of its characteristic polynomial.
"""

import math

import naive
import numpy as np
import pytest
from scipy import integrate

from testbed import theory
from testbed.theory import escape as escape_theory

#: Two quadratures of a smooth integrand (the library's rules and 200-node Gauss-Hermite): agree to about 1e-10.
QUADRATURE_RTOL = 1e-8
#: Closed forms and geometric sums in float64.
EXACT_RTOL = 1e-12
#: A bias variance far from 0, and smooth activations for the quadrature references.
SB2 = 0.3
SMOOTH = ["tanh", "sigmoid", "erf", "softplus"]
WIDTHS = (20, 30, 25, 10)
WEIGHT_VAR = [1.4 / 20, 1.1 / 30, 2.0 / 25]
INPUT_VAR = 1.5
INPUT_CORRELATION = 0.4


def _expectation(f, q):
    return naive.hermite_expectation(f, q)


@pytest.mark.parametrize("name", SMOOTH)
def test_expected_variances_with_biases_match_the_mean_field_recursion(name):
    phi, dphi = naive.activation_pair(name)
    p = theory.expected_variances(
        None,
        name,
        WIDTHS,
        weight_var=WEIGHT_VAR,
        bias_var=SB2,
        input_var=INPUT_VAR,
        input_correlation=INPUT_CORRELATION,
    )
    forward = [WIDTHS[l - 1] * WEIGHT_VAR[l - 1] for l in range(1, len(WIDTHS))]
    backward = [WIDTHS[l] * WEIGHT_VAR[l - 1] for l in range(1, len(WIDTHS))]  # fan_out v_l
    q, grads = naive.mean_field_recursion(phi, dphi, (forward, backward), SB2, INPUT_VAR)
    np.testing.assert_allclose(p.pre_var, q, rtol=QUADRATURE_RTOL)
    np.testing.assert_allclose(p.grad_var, grads, rtol=QUADRATURE_RTOL)
    means = [_expectation(phi, v) for v in q]
    meansq = [_expectation(lambda s: phi(s) ** 2, v) for v in q]
    np.testing.assert_allclose(p.post_mean, means, rtol=QUADRATURE_RTOL, atol=1e-12)
    np.testing.assert_allclose(p.post_var, np.subtract(meansq, np.square(means)), rtol=QUADRATURE_RTOL)
    # correlation: c^1 = (g_1 input_var c0 + sb2) / q^1, c^l = (g_l E[phi(u1) phi(u2)] + sb2) / q^l
    c = [(forward[0] * INPUT_VAR * INPUT_CORRELATION + SB2) / q[0]]
    for l in range(1, len(q)):
        c.append((forward[l] * naive.hermite_pair_expectation(phi, phi, q[l - 1], c[-1]) + SB2) / q[l])
    np.testing.assert_allclose(p.correlation, c, rtol=QUADRATURE_RTOL)


def test_expected_variances_relu_with_biases_match_the_closed_recursion():
    """ReLU: q^l = g_l q^(l-1) / 2 + sb2 and Var[delta^(l-1)] = fan_out v_l / 2 Var[delta^(l)] (He et al. 2015)."""
    p = theory.expected_variances(None, "relu", WIDTHS, weight_var=WEIGHT_VAR, bias_var=SB2, input_var=INPUT_VAR)
    q = [WIDTHS[0] * WEIGHT_VAR[0] * INPUT_VAR + SB2]
    for l in range(2, len(WIDTHS)):
        q.append(WIDTHS[l - 1] * WEIGHT_VAR[l - 1] * q[-1] / 2.0 + SB2)
    grads = [1.0]
    for l in range(len(WIDTHS) - 1, 1, -1):
        grads.insert(0, WIDTHS[l] * WEIGHT_VAR[l - 1] / 2.0 * grads[0])
    np.testing.assert_allclose(p.pre_var, q, rtol=EXACT_RTOL)
    np.testing.assert_allclose(p.grad_var, grads, rtol=EXACT_RTOL)
    # E[relu(s)] = sqrt(q / (2 pi)), E[relu(s)^2] = q / 2
    np.testing.assert_allclose(p.post_var, np.array(q) / 2.0 - np.array(q) / (2.0 * math.pi), rtol=1e-9)


@pytest.mark.parametrize("name", ["tanh", "erf"])
def test_length_and_correlation_maps_with_biases(name):
    phi, _ = naive.activation_pair(name)
    sw2, q, c = 1.3, 0.7, 0.6
    second = _expectation(lambda s: phi(s) ** 2, q)
    assert theory.length_map(name, q, sw2, SB2) == pytest.approx(sw2 * second + SB2, rel=QUADRATURE_RTOL)
    pair = naive.hermite_pair_expectation(phi, phi, q, c)
    expected = (sw2 * pair + SB2) / (sw2 * second + SB2)
    assert theory.correlation_map(name, c, sw2, SB2, q=q) == pytest.approx(expected, rel=QUADRATURE_RTOL)


def _fixed_point(phi, sw2, sb2, q=1.0):
    """q* by iterating the length map (a contraction for these parameters) to a tolerance far below the test's."""
    for _ in range(10000):
        q_next = sw2 * _expectation(lambda s: phi(s) ** 2, q) + sb2
        if abs(q_next - q) < 1e-14 * q:
            return q_next
        q = q_next
    raise AssertionError("the length map did not converge")


@pytest.mark.parametrize("sw2", [0.8, 1.5, 2.5])
def test_q_star_and_chi1_with_biases_against_the_iterated_length_map(sw2):
    phi, dphi = naive.activation_pair("tanh")
    q_star = _fixed_point(phi, sw2, SB2)
    assert theory.q_star("tanh", sw2, SB2) == pytest.approx(q_star, rel=QUADRATURE_RTOL)
    chi1 = sw2 * _expectation(lambda s: dphi(s) ** 2, q_star)
    assert theory.chi1("tanh", sw2, SB2) == pytest.approx(chi1, rel=QUADRATURE_RTOL)
    assert theory.mean_field("tanh", sw2, SB2).q_star == pytest.approx(q_star, rel=QUADRATURE_RTOL)


@pytest.mark.parametrize("sw2", [0.5, 1.2, 1.9])
def test_relu_q_star_with_biases_is_the_geometric_limit(sw2):
    """q^l = sw2 q / 2 + sb2 converges to sb2 / (1 - sw2 / 2); summed here as the geometric series."""
    expected = SB2 * sum((sw2 / 2.0) ** k for k in range(20000))
    assert theory.q_star("relu", sw2, SB2) == pytest.approx(expected, rel=1e-10)
    assert theory.q_star("linear", sw2 / 2.0, SB2) == pytest.approx(expected, rel=1e-10)


def test_hanin_rolnick_ratio_uses_the_hidden_and_output_widths():
    widths = (7, 10, 20, 40)
    expected = (1 + 5 / 10) * (1 + 5 / 20) * (1 + 5 / 40)  # prod over n_1..n_d (Hanin & Rolnick 2018, Thm 5)
    assert theory.hanin_rolnick_moment_ratio(widths) == pytest.approx(expected, rel=EXACT_RTOL)
    assert theory.hanin_rolnick_fluctuation(widths) == pytest.approx(expected - 1.0, rel=EXACT_RTOL)


# ----------------------------------------------------------------------------------------------------------------
# Escape laws beyond the small-step regime: lr gamma of order 1


LARGE_STEPS = [(0.5, 1.0), (0.25, 2.0), (1.0, 0.5), (0.01, 1.0), (2.0, 1.5)]  # (lr, gamma), lr gamma up to 3
SIGMA = 0.1


@pytest.mark.parametrize("lr, gamma", LARGE_STEPS)
def test_sgd_limit_std_is_the_exact_ar1_limit(lr, gamma):
    expected = math.sqrt(naive.saddle_limit_variance(lr, gamma, SIGMA))
    assert escape_theory.sgd_limit_std(lr, gamma, SIGMA) == pytest.approx(expected, rel=EXACT_RTOL)


@pytest.mark.parametrize("lr, gamma", LARGE_STEPS)
def test_sgd_saddle_variance_is_the_geometric_sum(lr, gamma):
    """Var[y_t] = lr^2 sigma^2 sum_(k<t) (1 + lr gamma)^(2k) for y_(t+1) = (1 + lr gamma) y_t - lr sigma z_t."""
    steps = np.array([1, 2, 5, 17])
    a = 1.0 + lr * gamma
    expected = [lr * lr * SIGMA**2 * sum(a ** (2 * k) for k in range(t)) for t in steps]
    np.testing.assert_allclose(escape_theory.sgd_saddle_variance(steps, lr, gamma, SIGMA), expected, rtol=1e-11)


@pytest.mark.parametrize("lr, curvature", [(0.3, 5.0), (0.1, 1.0), (0.9, 2.0)])  # lr lambda = 1.5, 0.1, 1.8
def test_sgd_stable_variance_is_the_ar1_stationary_variance(lr, curvature):
    expected = naive.ar1_stationary_variance(lr, curvature, SIGMA)
    assert escape_theory.sgd_stable_variance(lr, curvature, SIGMA) == pytest.approx(expected, rel=EXACT_RTOL)
    b = 1.0 - lr * curvature
    steps = np.array([1, 3, 8])
    partial = [lr * lr * SIGMA**2 * sum(b ** (2 * k) for k in range(t)) for t in steps]
    np.testing.assert_allclose(escape_theory.sgd_stable_variance(lr, curvature, SIGMA, steps), partial, rtol=1e-11)
    radius = 1.0
    assert escape_theory.effective_radius(radius, lr, SIGMA, [curvature]) == pytest.approx(
        math.sqrt(radius**2 - expected), rel=EXACT_RTOL
    )


def _flow_time(lr, s, u0, uf, depth):
    """(1 / (lr D)) int_u0^uf du / (u^(2 - 2/D) (s - u)), integrated in u (the library integrates in log u)."""
    value, _ = integrate.quad(
        lambda u: 1.0 / (u ** (2.0 - 2.0 / depth) * (s - u)),
        u0,
        uf,
        epsabs=0.0,
        epsrel=1e-12,
        limit=500,
        points=[u0 * 10, u0 * 100],
    )
    return value / (lr * depth)


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_deep_linear_plateau_time_against_quadrature_in_u(depth):
    lr, s, u0, uf = 0.05, 2.0, 0.01, 1.9
    expected = _flow_time(lr, s, u0, uf, depth)
    assert escape_theory.deep_linear_plateau_time(lr, s, u0, uf, depth) == pytest.approx(expected, rel=1e-8)
    if depth == 1:  # a plain linear model: t = ln((s - u0) / (s - uf)) / lr
        assert expected == pytest.approx(math.log((s - u0) / (s - uf)) / lr, rel=1e-9)
    if depth == 2:
        assert escape_theory.saxe_plateau_time(lr, s, u0, uf) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("lr, gamma, mu", [(0.1, 1.0, 0.9), (0.5, 2.0, 0.5), (0.01, 1.0, 0.0)])
def test_heavy_ball_growth_is_the_largest_characteristic_root(lr, gamma, mu):
    roots = np.roots([1.0, -(1.0 + mu + lr * gamma), mu])
    assert escape_theory.heavy_ball_growth(lr, gamma, mu) == pytest.approx(float(np.max(np.abs(roots))), rel=1e-12)
