"""Signal-propagation theory: closed forms against quadrature, known values, fixed points, Monte Carlo, bad input."""

import math

import numpy as np
import pytest
from scipy import integrate

import testbed.theory.signal as theory
from testbed import activations

#: Standard errors allowed between a Monte-Carlo mean and its prediction (two-sided, p ~ 7e-6 per check).
Z_BOUND = 4.5
#: Monte-Carlo draws per check.
N_SAMPLES = 400_000
#: Agreement of quadrature with closed forms and with adaptive integration (relative).
QUADRATURE_RTOL = 1e-9
#: Agreement of the kinked 2-D rule with the arc-cosine kernel at c close to 1, where the inner Gaussian is narrow.
KINKED_PAIR_RTOL = 1e-4
#: (sigma_w2, sigma_b2) points of the tanh checks: ordered, near critical and chaotic (Poole et al. 2016, fig. 2).
TANH_POINTS = [(0.8, 0.1), (1.5, 0.05), (2.5, 0.1), (4.0, 0.3)]


def relu_by_quadrature():
    relu = theory.activation_for_theory("relu")
    return theory.Phi("relu_by_quadrature", relu.value, relu.derivative, relu_like=True)


def linear_by_quadrature():
    linear = theory.activation_for_theory("linear")
    return theory.Phi("linear_by_quadrature", linear.value, linear.derivative)


# ---------------------------------------------------------------------------------------------------------------
# quadrature


@pytest.mark.parametrize("name", activations.names())
def test_numpy_activations_match_the_scalar_rules(name):
    phi = theory.activation_for_theory(name)
    act = activations.get(name)
    s = np.linspace(-6.0, 6.0, 97)
    np.testing.assert_allclose(phi.value(s), act(s), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(phi.derivative(s), act.derivative(s), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("q", [1e-4, 0.3, 1.0, 4.0, 30.0, 500.0])
def test_gaussian_expectation_matches_adaptive_integration(q):
    sigma = math.sqrt(q)

    def density(s):
        return math.exp(-0.5 * s * s / q) / math.sqrt(2.0 * math.pi * q)

    for f in (lambda s: np.tanh(s) ** 2, lambda s: (1.0 / np.cosh(np.clip(s, -300.0, 300.0))) ** 4):
        reference = integrate.quad(
            lambda s: float(f(s)) * density(s),
            -12 * sigma,
            12 * sigma,
            points=[0.0],
            limit=1000,
            epsabs=1e-15,
            epsrel=1e-13,
        )[0]
        assert theory.gaussian_expectation(f, q) == pytest.approx(reference, rel=QUADRATURE_RTOL, abs=1e-15)


def test_gaussian_expectation_of_polynomials_is_exact():
    assert theory.gaussian_expectation(lambda s: s**4, 2.0) == pytest.approx(3 * 2.0**2, rel=1e-13)
    assert theory.gaussian_expectation(lambda s: s**2, 9.0, mean=1.5) == pytest.approx(9.0 + 1.5**2, rel=1e-13)
    assert theory.gaussian_expectation(np.cos, 0.0) == 1.0


@pytest.mark.parametrize("q", [0.3, 1.0, 2.5, 40.0])
def test_relu_closed_forms_match_quadrature(q):
    relu, quad = theory.activation_for_theory("relu"), relu_by_quadrature()
    for sw2, sb2 in [(2.0, 0.0), (1.3, 0.2)]:
        assert theory.length_map(quad, q, sw2, sb2) == pytest.approx(
            theory.length_map(relu, q, sw2, sb2), rel=QUADRATURE_RTOL
        )
        assert theory.length_map(relu, q, sw2, sb2) == pytest.approx(sw2 * q / 2 + sb2, rel=1e-15)
        assert theory.chi1(quad, sw2, sb2, q=q) == pytest.approx(sw2 / 2, rel=QUADRATURE_RTOL)
        for c in (-0.9, -0.3, 0.0, 0.5, 0.9):
            assert theory.correlation_map(quad, c, sw2, sb2, q=q) == pytest.approx(
                theory.correlation_map(relu, c, sw2, sb2, q=q), rel=QUADRATURE_RTOL
            )
        assert theory.correlation_map(quad, 0.999, sw2, sb2, q=q) == pytest.approx(
            theory.correlation_map(relu, 0.999, sw2, sb2, q=q), rel=KINKED_PAIR_RTOL
        )


def test_relu_arccos_map_at_criticality():
    for c in (-0.5, 0.0, 0.3, 0.8):
        expected = (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi
        assert theory.correlation_map("relu", c, 2.0, 0.0) == pytest.approx(expected, rel=1e-14)


def test_relu_correlation_approaches_one_as_inverse_square_of_depth():
    # 1 - c_l ~ 9 pi^2 / (2 l^2) at sw2 = 2, sb2 = 0 (reference.md section 2).
    c, depth = 0.0, 20_000
    for _ in range(depth):
        c = theory.correlation_map("relu", c, 2.0, 0.0)
    assert depth**2 * (1.0 - c) == pytest.approx(9 * math.pi**2 / 2, rel=0.01)


@pytest.mark.parametrize("q", [0.5, 3.0])
def test_linear_closed_forms_match_quadrature(q):
    linear, quad = theory.activation_for_theory("linear"), linear_by_quadrature()
    assert theory.length_map(quad, q, 0.7, 0.1) == pytest.approx(0.7 * q + 0.1, rel=QUADRATURE_RTOL)
    assert theory.chi1(quad, 0.7, 0.1, q=q) == pytest.approx(0.7, rel=QUADRATURE_RTOL)
    assert theory.correlation_map(quad, 0.4, 0.7, 0.1, q=q) == pytest.approx(
        theory.correlation_map(linear, 0.4, 0.7, 0.1, q=q), rel=QUADRATURE_RTOL
    )
    assert theory.q_star(linear, 0.5, 0.2) == pytest.approx(0.4, rel=1e-15)


# ---------------------------------------------------------------------------------------------------------------
# known values and fixed points


def test_critical_lines_known_values():
    assert theory.critical_sigma_w2("relu", 0.0) == 2.0
    assert theory.critical_sigma_w2("linear", 0.3) == 1.0
    assert theory.critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, abs=1e-9)
    for sb2 in (0.05, 0.2):
        sw2 = theory.critical_sigma_w2("tanh", sb2)
        assert sw2 > 1.0
        assert theory.chi1("tanh", sw2, sb2) == pytest.approx(1.0, abs=1e-9)
    # the line rises with the bias variance (Poole et al. 2016, fig. 2)
    assert theory.critical_sigma_w2("tanh", 0.05) < theory.critical_sigma_w2("tanh", 0.2)


def test_tanh_at_zero_bias_orders_below_one_and_has_a_positive_length_above():
    assert theory.q_star("tanh", 0.9, 0.0) == 0.0
    assert theory.q_star("tanh", 1.0, 0.0) == 0.0
    assert theory.q_star("tanh", 1.2, 0.0) > 0.0
    ordered = theory.mean_field("tanh", 0.5, 0.0)
    assert ordered.chi1 == pytest.approx(0.5, rel=1e-12) and ordered.c_star == 1.0
    assert ordered.xi_c == pytest.approx(-1.0 / math.log(0.5), rel=1e-12)
    assert math.isinf(theory.mean_field("tanh", 1.0, 0.0).xi_c)


@pytest.mark.parametrize("sw2,sb2", TANH_POINTS)
def test_fixed_points_are_fixed(sw2, sb2):
    field = theory.mean_field("tanh", sw2, sb2)
    assert theory.length_map("tanh", field.q_star, sw2, sb2) == pytest.approx(field.q_star, rel=1e-10)
    assert theory.correlation_map("tanh", field.c_star, sw2, sb2) == pytest.approx(field.c_star, abs=1e-10)
    assert (field.chi1 < 1.0) == (field.c_star == 1.0)
    assert (field.chi1 < 1.0) == (sw2 < theory.critical_sigma_w2("tanh", sb2))


@pytest.mark.parametrize("sw2,sb2", TANH_POINTS)
def test_depth_scales_are_the_slopes_of_the_maps(sw2, sb2):
    field = theory.mean_field("tanh", sw2, sb2)
    h = 1e-5 * field.q_star
    slope_q = (
        theory.length_map("tanh", field.q_star + h, sw2, sb2) - theory.length_map("tanh", field.q_star - h, sw2, sb2)
    ) / (2 * h)
    assert field.xi_q == pytest.approx(-1.0 / math.log(slope_q), rel=1e-6)
    c = field.c_star
    if c < 1.0:
        dc = 1e-5
        slope_c = (
            theory.correlation_map("tanh", c + dc, sw2, sb2) - theory.correlation_map("tanh", c - dc, sw2, sb2)
        ) / (2 * dc)
    else:
        slope_c = field.chi1  # the slope at c = 1 (one-sided), Schoenholz et al. 2017 eq. 9
    assert field.xi_c == pytest.approx(-1.0 / math.log(slope_c), rel=1e-6)


@pytest.mark.parametrize("sw2,sb2", TANH_POINTS)
def test_tanh_q_star_and_chi1_against_monte_carlo(sw2, sb2):
    z = np.random.default_rng(7).standard_normal(N_SAMPLES)
    field = theory.mean_field("tanh", sw2, sb2)
    s = math.sqrt(field.q_star) * z
    image = sw2 * np.tanh(s) ** 2 + sb2  # the length map's integrand: its mean is q* at the fixed point
    assert abs(image.mean() - field.q_star) < Z_BOUND * image.std() / math.sqrt(N_SAMPLES)
    gain = sw2 / np.cosh(s) ** 4
    assert abs(gain.mean() - field.chi1) < Z_BOUND * gain.std() / math.sqrt(N_SAMPLES)


def test_tanh_correlation_map_against_monte_carlo():
    rng = np.random.default_rng(8)
    z1, z2 = rng.standard_normal((2, N_SAMPLES))
    sw2, sb2, q, c = 2.5, 0.1, 1.3, 0.4
    u1 = math.sqrt(q) * z1
    u2 = math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
    q_next = theory.length_map("tanh", q, sw2, sb2)
    sample = (sw2 * np.tanh(u1) * np.tanh(u2) + sb2) / q_next
    predicted = theory.correlation_map("tanh", c, sw2, sb2, q=q)
    assert abs(sample.mean() - predicted) < Z_BOUND * sample.std() / math.sqrt(N_SAMPLES)


# ---------------------------------------------------------------------------------------------------------------
# linear regime, finite width, expected statistics


def test_linear_regime_recursions():
    widths = [100, 200, 300, 400]
    he, he_back = theory.linear_regime_variances([2 / 100, 2 / 200, 2 / 300], widths, "relu")
    np.testing.assert_allclose(he, 2.0)  # 100 * 2/100 * 1 for the unactivated input, then kept
    lecun, _ = theory.linear_regime_variances([1 / 100, 1 / 200, 1 / 300], widths, "relu")
    np.testing.assert_allclose(lecun, [1.0, 0.5, 0.25])
    # backward: Var[delta^(l-1)] = n_l v_l / 2 Var[delta^(l)]: 400 * 2/300 / 2, then 300 * 2/200 / 2
    np.testing.assert_allclose(he_back, [2.0, 4 / 3, 1.0])
    glorot = [2 / (widths[l - 1] + widths[l]) for l in range(1, 4)]
    forward, backward = theory.linear_regime_variances(glorot, widths, "tanh")
    assert theory.linear_regime_gain("tanh") == (1.0, 1.0)
    assert forward[1] / forward[0] == pytest.approx(200 * glorot[1])
    assert backward[1] / backward[2] == pytest.approx(400 * glorot[2])
    standard, back = theory.linear_regime_variances(
        [theory.standard_uniform_variance(n) for n in (100, 100, 100)], [100] * 4, "tanh"
    )
    np.testing.assert_allclose(standard[1:] / standard[:-1], 1 / 3)
    np.testing.assert_allclose(back[:-1] / back[1:], 1 / 3)


def test_lecture_uniform_bound_variance():
    assert theory.lecture_uniform_variance(300, 100) == pytest.approx(2 / 401, rel=1e-14)


def test_hanin_rolnick_ratio():
    assert theory.hanin_rolnick_moment_ratio([7, 5, 10]) == pytest.approx(2.0 * 1.5)
    assert theory.hanin_rolnick_fluctuation([3, 5]) == pytest.approx(1.0)
    assert theory.reciprocal_width_sum([1, 4, 4]) == 0.5
    # about exp(5 sum 1/n) when the widths are large
    wide = [1000] * 21
    assert theory.hanin_rolnick_moment_ratio(wide) == pytest.approx(math.exp(5 * 20 / 1000), rel=2e-3)


def test_expected_variances_is_exact_recursion_for_relu():
    widths = [100, 150, 80, 120]
    v = [0.02, 0.011, 0.03]
    prediction = theory.expected_variances(None, "relu", widths, weight_var=v, batch=64)
    forward, backward = theory.linear_regime_variances(v, widths, "relu")
    np.testing.assert_allclose(prediction.pre_var, forward, rtol=1e-14)
    np.testing.assert_allclose(prediction.grad_var, backward, rtol=1e-14)
    np.testing.assert_allclose(prediction.post_meansq, forward / 2, rtol=1e-14)
    np.testing.assert_allclose(prediction.zero_frac, 0.5)
    assert prediction.method == "exact"
    assert prediction.correlation[0] == 0.0 and prediction.correlation[1] == pytest.approx(1 / math.pi)


def test_expected_saturation_against_monte_carlo():
    prediction = theory.expected_variances(None, "tanh", [50, 50, 50], weight_var=0.1)
    z = np.random.default_rng(9).standard_normal(N_SAMPLES)
    for l in range(2):
        hits = np.abs(np.tanh(math.sqrt(prediction.pre_var[l]) * z)) >= 0.99
        p = prediction.saturated_frac[l]
        assert abs(hits.mean() - p) < Z_BOUND * math.sqrt(p * (1 - p) / N_SAMPLES)
    sigmoid = theory.expected_variances(None, "sigmoid", [50, 50], weight_var=0.2)
    hits = np.abs(2 * theory.activation_for_theory("sigmoid").value(math.sqrt(sigmoid.pre_var[0]) * z) - 1) >= 0.98
    p = sigmoid.saturated_frac[0]
    assert abs(hits.mean() - p) < Z_BOUND * math.sqrt(p * (1 - p) / N_SAMPLES)


@pytest.mark.parametrize("c,batch", [(0.0, 3), (0.5, 16), (0.95, 256)])
def test_dead_unit_fraction_against_monte_carlo(c, batch):
    rng = np.random.default_rng(10)
    units = 20_000
    s = math.sqrt(c) * rng.standard_normal((units, 1)) + math.sqrt(1 - c) * rng.standard_normal((units, batch))
    dead = np.all(s <= 0.0, axis=1)
    p = theory.dead_unit_fraction(c, batch)
    assert abs(dead.mean() - p) < Z_BOUND * math.sqrt(p * (1 - p) / units)


# ---------------------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "call,argument",
    [
        (lambda: theory.q_star("tanh", -1.0, 0.0), "sigma_w2"),
        (lambda: theory.q_star("tanh", 1.0, math.nan), "sigma_b2"),
        (lambda: theory.chi1("tanh", math.inf), "sigma_w2"),
        (lambda: theory.correlation_map("tanh", 1.5, 1.0, 0.1), "c"),
        (lambda: theory.length_map("tanh", -0.1, 1.0), "q"),
        (lambda: theory.mean_field("tanhh", 1.0), "activation"),
        (lambda: theory.critical_sigma_w2("relu", -0.1), "sigma_b2"),
        (lambda: theory.linear_regime_gain("sigmoid"), "linear regime"),
        (lambda: theory.linear_regime_variances([0.1, 0.2], [10, 10, 10, 10]), "weight_var"),
        (lambda: theory.expected_variances(None, "relu", [10, 0], weight_var=0.1), "widths"),
        (lambda: theory.expected_variances(None, "relu", 10, weight_var=0.1), "widths"),
        (lambda: theory.expected_variances(None, "relu", [10, 10]), "weight_var"),
        (lambda: theory.expected_variances(None, "relu", [10, 10], weight_var=0.1, batch=0), "batch"),
        (lambda: theory.hanin_rolnick_moment_ratio([10]), "widths"),
        (lambda: theory.dead_unit_fraction(0.5, 2.5), "batch"),
    ],
)
def test_bad_input_names_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_no_transition_is_reported():
    with pytest.raises(ValueError, match="no order-to-chaos transition"):
        theory.critical_sigma_w2(theory.Phi("zero", lambda s: 0.0 * s, lambda s: 0.0 * s), 0.1)


def test_leaky_relu_quadrature_matches_its_closed_forms():
    a = 0.2
    q = 1.7
    assert theory.length_map("leaky_relu", q, 1.0, 0.0, negative_slope=a) == pytest.approx(
        (1 + a * a) / 2 * q, rel=QUADRATURE_RTOL
    )
    assert theory.chi1("leaky_relu", 1.0, 0.0, q=q, negative_slope=a) == pytest.approx(
        (1 + a * a) / 2, rel=QUADRATURE_RTOL
    )
    assert theory.linear_regime_gain("leaky_relu", negative_slope=a) == ((1 + a * a) / 2, (1 + a * a) / 2)
    # leaky(u) = (1 - a) relu(u) + a u: E[leaky(u1) leaky(u2)] from the arc-cosine kernel
    c = 0.3
    relu_pair = q * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / (2 * math.pi)
    pair = (1 - a) ** 2 * relu_pair + 2 * a * (1 - a) * q * c / 2 + a * a * q * c
    expected = pair / ((1 + a * a) / 2 * q)
    assert theory.correlation_map("leaky_relu", c, 1.0, 0.0, q=q, negative_slope=a) == pytest.approx(
        expected, rel=QUADRATURE_RTOL
    )
    # the ReLU family's dead units (s <= 0 for the whole batch) are counted for leaky ReLU too
    prediction = theory.expected_variances(
        "he_normal", "leaky_relu", [64] * 4, batch=8, activation_params=dict(negative_slope=a)
    )
    assert prediction.dead_frac[0] == pytest.approx(2.0**-8) and prediction.dead_frac[-1] > prediction.dead_frac[0]
