"""testbed.theory.spectra: Fuss-Catalan law, small-q* forms, and the free-probability moments against Monte Carlo."""

import math

import numpy as np
import pytest
from scipy import integrate, special

from testbed import spectra, theory
from testbed.theory import spectra as ts

# ------------------------------------------------------------------------------------------------------------------
# Fuss-Catalan

#: Catalan numbers (L = 1) and the ternary numbers C(3k, k) / (2k + 1) (L = 2), OEIS A000108 and A001764.
CATALAN = (1, 1, 2, 5, 14, 42, 132)
TERNARY = (1, 1, 3, 12, 55, 273, 1428)
#: Relative accuracy of scipy's adaptive quadrature of the density (with its integrable singularity at 0).
QUAD_RTOL = 1e-6


def test_fuss_catalan_moments_are_the_known_integer_sequences():
    assert tuple(ts.fuss_catalan_moment(1, k) for k in range(7)) == CATALAN
    assert tuple(ts.fuss_catalan_moment(2, k) for k in range(7)) == TERNARY
    for depth in (1, 5, 128):
        assert ts.fuss_catalan_moment(depth, 1) == 1
        assert ts.fuss_catalan_moment(depth, 2) == depth + 1  # variance L


def test_fuss_catalan_order_one_is_marchenko_pastur():
    x = np.linspace(0.01, 3.99, 37)
    np.testing.assert_allclose(ts.fuss_catalan_density(1, x), np.sqrt((4.0 - x) / x) / (2.0 * math.pi), rtol=1e-12)
    assert ts.fuss_catalan_support(1) == pytest.approx(4.0)


def test_fuss_catalan_density_by_its_inverse_has_the_fuss_catalan_moments():
    depth = 2
    top = ts.fuss_catalan_support(depth)
    # the density ~ x^(-L/(L+1)) at 0: substitute x = u^(L+1) so the integrand is bounded
    power = depth + 1

    def moment(k):
        def integrand(u):
            x = u**power
            return float(ts.fuss_catalan_density(depth, x)) * x**k * power * u ** (power - 1)

        return integrate.quad(integrand, 0.0, top ** (1.0 / power), limit=200, epsabs=0.0, epsrel=1e-9)[0]

    for k in range(4):
        assert moment(k) == pytest.approx(ts.fuss_catalan_moment(depth, k), rel=QUAD_RTOL)


#: Gauss-Legendre nodes in the parameter t of the Fuss-Catalan density (the integrand is smooth in t; 200 nodes
#: give 4e-13 at L = 128, while more put a node so close to pi/(L+1) that rho overflows there).
PARAMETRIC_NODES = 200


@pytest.mark.parametrize("depth", [1, 2, 4, 9, 32, 128])
def test_fuss_catalan_parametric_density_has_the_fuss_catalan_moments(depth):
    # int rho(x) x^k dx = int rho(x(t)) x(t)^k |x'(t)| dt over (0, pi/(L+1)), with
    # d ln x / dt = (L+1)^2 cot((L+1) t) - cot t - L^2 cot(L t); rho |x'| stays bounded at both ends
    nodes, weights = np.polynomial.legendre.leggauss(PARAMETRIC_NODES)
    half = math.pi / (2 * (depth + 1))
    t, w = half * (nodes + 1.0), half * weights
    x, rho = ts._fuss_catalan_parametric(depth, t)
    slope = (depth + 1) ** 2 / np.tan((depth + 1) * t) - 1.0 / np.tan(t) - depth**2 / np.tan(depth * t)
    for k in range(4):
        moment = np.sum(w * rho * x**k * x * np.abs(slope))
        assert moment == pytest.approx(ts.fuss_catalan_moment(depth, k), rel=1e-10), k


def test_fuss_catalan_curve_lies_on_the_density():
    x, rho = ts.fuss_catalan_curve(6, points=50)
    assert np.all(np.diff(x) > 0) and x[-1] < ts.fuss_catalan_support(6)
    np.testing.assert_allclose(ts.fuss_catalan_density(6, x), rho, rtol=1e-9)
    assert ts.fuss_catalan_density(6, np.array([-1.0, 0.0, 2.0 * ts.fuss_catalan_support(6)])).tolist() == [0, 0, 0]
    sigma = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(
        ts.fuss_catalan_singular_value_density(6, sigma), 2 * sigma * ts.fuss_catalan_density(6, sigma**2), rtol=0
    )


# ------------------------------------------------------------------------------------------------------------------
# moments of D^2 and the small-q* forms


#: Accuracy of the shared composite Gauss-Legendre rule of theory.signal for sech^8 at q = 1 (measured 2.4e-9
#: against a 30-digit mpmath quadrature; sech^4: 8e-11).
MOMENT_RTOL = 1e-8


def _quad_moment(derivative, q, power):
    """E[phi'(h)^power], h ~ N(0, q), by scipy's adaptive quadrature over h (independent of the module's rules)."""
    sigma = math.sqrt(q)
    density = lambda h: math.exp(-0.5 * (h / sigma) ** 2) / (sigma * math.sqrt(2.0 * math.pi))  # noqa: E731
    points = [-1.0, 1.0] if 1.0 < 12 * sigma else None
    return integrate.quad(
        lambda h: derivative(h) ** power * density(h),
        -12 * sigma,
        12 * sigma,
        points=points,
        limit=400,
        epsabs=0.0,
        epsrel=1e-11,
    )[0]


@pytest.mark.parametrize(
    "activation, derivative",
    [
        ("tanh", lambda h: 1.0 / math.cosh(h) ** 2),
        ("hard_tanh", lambda h: 1.0 if -1.0 < h < 1.0 else 0.0),
        ("erf", lambda h: 2.0 / math.sqrt(math.pi) * math.exp(-h * h)),
    ],
)
@pytest.mark.parametrize("q", [0.01, 0.3, 1.0])
def test_derivative_moments_match_adaptive_quadrature(activation, derivative, q):
    mu1, mu2 = ts.derivative_moments(activation, q)
    assert mu1 == pytest.approx(_quad_moment(derivative, q, 2), rel=MOMENT_RTOL)
    assert mu2 == pytest.approx(_quad_moment(derivative, q, 4), rel=MOMENT_RTOL)


def test_relu_and_linear_moments_do_not_depend_on_q():
    for q in (0.01, 1.0, 100.0):
        assert ts.derivative_moments("relu", q) == (0.5, 0.5)
        assert ts.derivative_moments("linear", q) == (1.0, 1.0)


def test_tanh_small_q_series_has_an_order_four_remainder():
    # mu_2/mu_1^2 - 1 = 8 q^2 - 80 q^3 + c q^4 + ...: the remainder over q^4 settles to a constant as q halves
    ratios = []
    for q in (0.02, 0.01, 0.005):
        mu1, mu2 = ts.derivative_moments("tanh", q)
        ratios.append((mu2 / mu1**2 - 1.0 - ts.small_q_spread("tanh", q)) / q**4)
    assert abs(ratios[2] / ratios[1] - 1.0) < 0.1 and abs(ratios[1] / ratios[0] - 1.0) < 0.2
    assert abs(ratios[2]) < 2000  # the series' next coefficient is of the size of the others' growth (8, 80, ...)


def test_hard_tanh_spread_is_exact_and_exponentially_small():
    for q in (0.05, 0.25, 1.0):
        p = special.erf(1.0 / math.sqrt(2.0 * q))
        assert ts.small_q_spread("hard_tanh", q) == pytest.approx(1.0 / p - 1.0, rel=1e-14)
    q = 0.02  # sqrt(2q/pi) e^(-1/(2q)) to leading order
    assert ts.small_q_spread("hard_tanh", q) == pytest.approx(math.sqrt(2 * q / math.pi) * math.exp(-0.5 / q), rel=0.05)


def test_critical_point_puts_chi1_at_one_and_q_star_at_the_target():
    for activation, q in (("tanh", 1 / 64), ("tanh", 0.5), ("hard_tanh", 0.25)):
        sw2, sb2 = ts.critical_point(activation, q)
        assert theory.q_star(activation, sw2, sb2) == pytest.approx(q, rel=1e-8)
        if activation == "tanh":
            assert theory.chi1(activation, sw2, sb2) == pytest.approx(1.0, rel=1e-9)
        else:  # chi_1 = sw2 P(|h| < 1) exactly (theory.signal's Gauss-Hermite rule steps over the jumps at +-1)
            assert sw2 * special.erf(1.0 / math.sqrt(2.0 * q)) == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(ValueError, match="sigma_b2"):
        ts.critical_point("sigmoid", 1.0)  # sigmoid's E[phi^2] is large: it would need a negative bias variance


def test_isometry_variance_cases_of_pennington_et_al():
    assert ts.isometry_variance("linear", 10, weights="gaussian", q_star=1.0) == pytest.approx(10.0)
    assert ts.isometry_variance("linear", 10, weights="orthogonal", q_star=1.0) == 0.0
    assert ts.isometry_variance("relu", 10, weights="gaussian", sigma_w2=2.0) == pytest.approx(20.0)
    assert ts.isometry_variance("relu", 10, weights="orthogonal", sigma_w2=2.0) == pytest.approx(10.0)
    # off the critical line the variance carries m_1^2 = chi_1^(2L)
    assert ts.isometry_variance("linear", 3, weights="gaussian", sigma_w2=1.1) == pytest.approx(1.1**6 * 3)
    moments = ts.jacobian_moments("tanh", 6, 1.5, 0.1, weights="orthogonal", input_var=0.3)
    assert moments.q[0] == pytest.approx(1.5 * 0.3 + 0.1)
    assert moments.q[1] == pytest.approx(theory.length_map("tanh", moments.q[0], 1.5, 0.1))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ts.jacobian_moments("tanh", 4, 1.0, weights="uniform"), "weights"),
        (lambda: ts.jacobian_moments("tanh", 0, 1.0), "depth"),
        (lambda: ts.jacobian_moments("tanh", 4, -1.0), "sigma_w2"),
        (lambda: ts.jacobian_moments("tanh", 4, 1.0, input_var=-1.0), "input_var"),
        (lambda: ts.jacobian_moments("nope", 4, 1.0), "activation"),
        (lambda: ts.isometry_variance("tanh", 4), "q_star"),
        (lambda: ts.small_q_spread("relu", 0.1), "activation"),
        (lambda: ts.fuss_catalan_moment(2, -1), "k"),
        (lambda: ts.fuss_catalan_density(0, [1.0]), "depth"),
        (lambda: ts.critical_point("tanh", 0.0), "q_star"),
        (lambda: ts.fixed_point_input_var("tanh", 0.1, 1.0, 0.5), "sigma_b2"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_theory_package_exports_the_spectra_names():
    assert theory.jacobian_moments is ts.jacobian_moments
    assert theory.fuss_catalan_moment is ts.fuss_catalan_moment


# ------------------------------------------------------------------------------------------------------------------
# the free-probability moments against Monte Carlo

#: Independent nets per case (one input each), their width and depth.
MC_NETS = 16
MC_WIDTH = 128
MC_DEPTH = 8
#: Standard errors allowed between the mean over MC_NETS nets and its expectation.
Z_BOUND = 4.5
#: Free probability is the width -> infinity limit; at width n the variance of the squared singular values is off
#: by O(L/n) relatively. For Gaussian linear nets the exact finite-width expectation (below) is 0.6 L/n above the
#: limit at these sizes; nonlinear layers are allowed up to FINITE_WIDTH_FACTOR L/n.
FINITE_WIDTH_FACTOR = 2.0


def exact_linear_gaussian_variance(depth, width):
    """E[m_2 - m_1^2] for a product of ``depth`` square Gaussian layers of variance 1/width, exactly.

    With A = J' J'^T of the first l - 1 layers and W Gaussian, Wick's theorem gives
    E[tr(W A W^T)^2 / n] = (tr A / n)^2 + (1 + 1/n) tr A^2 / n and E[(tr W A W^T / n)^2] = (tr A / n)^2 +
    2 tr A^2 / n^3, a linear recursion for a = E[m_1^2] and b = E[m_2] from a = b = 1 (A = I).
    """
    a, b = 1.0, 1.0
    for _ in range(depth):
        a, b = a + 2.0 * b / width**2, a + (1.0 + 1.0 / width) * b
    return b - a


def _measure(init, activation, sigma_w2, sigma_b2, input_var, **params):
    means, variances = [], []
    for seed in range(MC_NETS):
        run = spectra.jacobian_singular_values(
            init, activation, MC_DEPTH, MC_WIDTH, input_var=input_var, bias_var=sigma_b2, seed=seed, **params
        )
        mean, variance = run.moments()
        means.append(mean[0])
        variances.append(variance[0])
    return np.array(means), np.array(variances)


def _within(sample, expected, allowance=0.0):
    error = Z_BOUND * sample.std(ddof=1) / math.sqrt(sample.size) + allowance
    return abs(sample.mean() - expected) <= error, (sample.mean(), expected, error)


def test_gaussian_linear_nets_match_the_exact_finite_width_variance_and_its_free_limit():
    means, variances = _measure("normal", "linear", 1.0, 0.0, 1.0, std=1.0 / math.sqrt(MC_WIDTH))
    exact = exact_linear_gaussian_variance(MC_DEPTH, MC_WIDTH)
    ok, detail = _within(variances, exact)
    assert ok, detail
    free = ts.jacobian_moments("linear", MC_DEPTH, 1.0, weights="gaussian").variance[-1]
    assert free == MC_DEPTH
    assert 0.0 < exact - free < 0.6 * MC_DEPTH / MC_WIDTH * free  # the stated size of the finite-width term
    ok, detail = _within(means, 1.0)
    assert ok, detail


@pytest.mark.parametrize(
    "activation, weights, q_star",
    [
        ("relu", "orthogonal", None),
        ("tanh", "orthogonal", 1 / 64),
        ("tanh", "orthogonal", 0.5),
        ("tanh", "gaussian", 1 / 64),
        ("hard_tanh", "orthogonal", 0.5),
        ("hard_tanh", "gaussian", 0.25),
    ],
)
def test_free_probability_moments_match_monte_carlo(activation, weights, q_star):
    if q_star is None:
        sigma_w2, sigma_b2, input_var = 2.0, 0.0, 1.0
    else:
        sigma_w2, sigma_b2 = ts.critical_point(activation, q_star)
        input_var = ts.fixed_point_input_var(activation, q_star, sigma_w2, sigma_b2)
    if weights == "gaussian":
        init, params = "normal", dict(std=math.sqrt(sigma_w2 / MC_WIDTH))
    else:
        init, params = "orthogonal", dict(gain=math.sqrt(sigma_w2))
    means, variances = _measure(init, activation, sigma_w2, sigma_b2, input_var, **params)
    predicted = ts.jacobian_moments(activation, MC_DEPTH, sigma_w2, sigma_b2, weights=weights, input_var=input_var)
    allowance = FINITE_WIDTH_FACTOR * MC_DEPTH / MC_WIDTH
    ok, detail = _within(variances, predicted.variance[-1], allowance * predicted.variance[-1])
    assert ok, detail
    ok, detail = _within(means, predicted.mean[-1], allowance * predicted.mean[-1])
    assert ok, detail


# ------------------------------------------------------------------------------------------------------------------
# the free-probability density of J J^T

#: Kolmogorov-Smirnov test of the density against Monte Carlo: KS_NETS independent nets (one input each) of
#: width KS_WIDTH pool KS_NETS * KS_WIDTH squared singular values. Their distance to the law is bounded by the
#: Dvoretzky-Kiefer-Wolfowitz inequality at level KS_ALPHA, ``sqrt(ln(2 / alpha) / (2 N))``, as if the N values
#: were independent: values of different nets are, and the eigenvalues of one matrix repel each other, so their
#: empirical distribution fluctuates less than that of independent draws (counts in an interval vary like
#: log n, not n). What the bound leaves out is the O(L / n) finite-width bias, measured at 0.011-0.047 against a
#: bound of 0.070 for these cases (0.069 for orthogonal tanh at q* = 1/64 at depth 8, width 128, which is why
#: that case is tested at depth 32, width 256: 0.037 against 0.086).
KS_ALPHA = 1e-3
KS_CASES = [
    # activation, weights, q* (None: ReLU at sigma_w^2 = 2), depth, width, nets
    ("tanh", "gaussian", 1 / 64, 8, 128, 6),
    ("tanh", "orthogonal", 1 / 64, 32, 256, 2),
    ("hard_tanh", "gaussian", 0.5, 8, 128, 6),
    ("relu", "orthogonal", None, 8, 128, 6),
]
#: Points of the grid on which the theory's distribution function is integrated (trapezoids in log lambda).
KS_GRID = 3000


def _critical(activation, q_star):
    if q_star is None:
        return 2.0, 0.0, 1.0
    sigma_w2, sigma_b2 = ts.critical_point(activation, q_star)
    return sigma_w2, sigma_b2, ts.fixed_point_input_var(activation, q_star, sigma_w2, sigma_b2)


@pytest.mark.parametrize("activation, weights, q_star, depth, width, nets", KS_CASES)
def test_free_density_matches_monte_carlo_by_kolmogorov_smirnov(activation, weights, q_star, depth, width, nets):
    sigma_w2, sigma_b2, input_var = _critical(activation, q_star)
    if weights == "gaussian":
        init, params = "normal", dict(std=math.sqrt(sigma_w2 / width))
    else:
        init, params = "orthogonal", dict(gain=math.sqrt(sigma_w2))
    lam = np.sort(
        np.concatenate(
            [
                spectra.jacobian_singular_values(
                    init, activation, depth, width, input_var=input_var, bias_var=sigma_b2, seed=seed, **params
                ).squared.ravel()
                for seed in range(nets)
            ]
        )
    )
    grid = np.geomspace(1e-12, 3.0 * lam[-1], KS_GRID)
    law = ts.jacobian_density(grid, activation, depth, sigma_w2, sigma_b2, weights=weights)
    assert law.point_mass is None
    f, u = law.density * grid, np.log(grid)
    above = np.append(np.cumsum((0.5 * (f[1:] + f[:-1]) * np.diff(u))[::-1])[::-1], 0.0)
    theory_cdf = 1.0 - above  # everything below the grid (the atom at 0 included) counted at its start
    measured_cdf = np.searchsorted(lam, grid, side="right") / lam.size
    distance = np.max(np.abs(measured_cdf - theory_cdf))
    bound = math.sqrt(math.log(2.0 / KS_ALPHA) / (2.0 * lam.size))
    assert distance <= bound, (distance, bound)


def test_free_density_of_gaussian_linear_nets_is_fuss_catalan():
    for depth in (1, 4, 32):
        lam = np.geomspace(1e-10, 1.2 * ts.fuss_catalan_support(depth), 400)
        law = ts.jacobian_density(lam, "linear", depth, 1.0, weights="gaussian")
        expected = ts.fuss_catalan_density(depth, lam)
        np.testing.assert_allclose(law.density, expected, rtol=1e-5, atol=1e-9 * expected.max())
        assert law.zero_mass == 0.0 and law.point_mass is None


def test_free_density_has_the_free_moments_and_the_atom_at_zero():
    sigma_w2, sigma_b2, _ = _critical("tanh", 0.5)
    moments = ts.jacobian_moments("tanh", 8, sigma_w2, sigma_b2, weights="orthogonal")
    lam = np.geomspace(1e-8, 1e2, 1200)
    law = ts.jacobian_density(lam, "tanh", 8, sigma_w2, sigma_b2, weights="orthogonal")
    f, u = law.density * lam, np.log(lam)
    mass, mean, second = (np.sum(0.5 * (g[1:] + g[:-1]) * np.diff(u)) for g in (f, f * lam, f * lam * lam))
    assert mass == pytest.approx(1.0, abs=2e-3)
    assert mean == pytest.approx(moments.mean[-1], rel=2e-3)
    assert second - mean**2 == pytest.approx(moments.variance[-1], rel=1e-2)
    relu = ts.jacobian_density(lam, "relu", 8, 2.0, weights="gaussian")
    assert relu.zero_mass == 0.5
    hard = ts.jacobian_density([1.0], "hard_tanh", 8, *_critical("hard_tanh", 0.5)[:2])
    assert hard.zero_mass == pytest.approx(1.0 - math.erf(1.0 / math.sqrt(2.0 * 0.5)), rel=1e-12)


def test_free_density_reports_isometries_atoms_and_bad_input():
    iso = ts.jacobian_density([0.5, 1.0], "linear", 16, 1.0, weights="orthogonal")
    assert iso.point_mass == 1.0 and np.all(iso.density == 0.0)
    assert iso.atoms.tolist() == [1.0] and iso.atom_masses.tolist() == [1.0]
    sigma_w2, sigma_b2, _ = _critical("hard_tanh", 0.05)
    hard = ts.jacobian_density([0.5], "hard_tanh", 8, sigma_w2, sigma_b2, weights="orthogonal")
    p = math.erf(1.0 / math.sqrt(2.0 * 0.05))
    assert hard.atoms == pytest.approx([sigma_w2**8]) and hard.atom_masses == pytest.approx([1 - 8 * (1 - p)])
    assert hard.zero_mass == pytest.approx(1 - p) and hard.point_mass is None
    with pytest.raises(ValueError, match="lam"):
        ts.jacobian_density([0.0], "relu", 8, 2.0)
    with pytest.raises(ValueError, match="weights"):
        ts.jacobian_density([1.0], "relu", 8, 2.0, weights="uniform")


# ------------------------------------------------------------------------------------------------------------------
# orthogonal nets at every depth: the free multiplicative power of the law of D^2 (testbed.theory.free_power)


def test_depth_one_is_the_law_of_sigma_w2_times_phi_prime_squared():
    # tanh: lambda = sigma_w^2 sech^4(h), h ~ N(0, q): density 2 N(h) / |d lambda / dh| = N(h) / (2 lambda tanh h)
    q = 0.5
    sigma_w2, sigma_b2, _ = _critical("tanh", q)
    lam = sigma_w2 * np.linspace(0.02, 0.98, 49)
    law = ts.jacobian_density(lam, "tanh", 1, sigma_w2, sigma_b2, weights="orthogonal")
    h = np.arccosh((sigma_w2 / lam) ** 0.25)
    expected = np.exp(-0.5 * h * h / q) / math.sqrt(2 * math.pi * q) / (2 * lam * np.tanh(h))
    np.testing.assert_allclose(law.density, expected, rtol=1e-6)
    assert law.zero_mass == 0.0 and law.atoms.size == 0
    # hard tanh and ReLU: atoms only, at 0 and at sigma_w^2
    sigma_w2, sigma_b2, _ = _critical("hard_tanh", 0.25)
    hard = ts.jacobian_density(lam, "hard_tanh", 1, sigma_w2, sigma_b2, weights="orthogonal")
    p = math.erf(1.0 / math.sqrt(0.5))
    assert np.all(hard.density == 0.0) and hard.zero_mass == pytest.approx(1 - p)
    assert hard.atoms == pytest.approx([sigma_w2]) and hard.atom_masses == pytest.approx([p])
    relu = ts.jacobian_density(lam, "relu", 1, 2.0, weights="orthogonal")
    assert relu.zero_mass == 0.5 and relu.atoms.tolist() == [2.0] and relu.atom_masses.tolist() == [0.5]


def test_orthogonal_relu_at_depth_two_is_half_the_arcsine_law():
    # D^2 a projection of trace 1/2: the law of P Q P for free projections, 1/2 at 0 and (1/2) arcsine on (0, 1)
    lam = 4.0 * np.linspace(0.01, 0.99, 50)
    law = ts.jacobian_density(lam, "relu", 2, 2.0, weights="orthogonal")
    x = lam / 4.0
    np.testing.assert_allclose(law.density, 0.5 / (math.pi * np.sqrt(x * (1 - x))) / 4.0, rtol=1e-7)
    assert law.zero_mass == 0.5 and law.atoms.size == 0


#: Monte Carlo of orthogonal nets shallower than 8: ORTHO_NETS nets (one input each) of width ORTHO_WIDTH pool
#: N = ORTHO_NETS * ORTHO_WIDTH squared singular values (N = 512). The KS distance between their distribution and
#: the theory's is bounded by DKW at level KS_ALPHA (0.086 here), plus, where D^2 has an atom at 0, its
#: finite-width excess: the rank of D_L Q_L ... D_1 Q_1 is min_l (units with phi' != 0), so the measured mass at 0 is
#: E[max_l k_l] / n with k_l ~ Binomial(n, 1 - p), above the limit 1 - p (computed exactly below).
ORTHO_NETS = 4
ORTHO_WIDTH = 128
ORTHO_CASES = [
    # activation, q* (None: ReLU at sigma_w^2 = 2, the identity at 1), depth
    ("tanh", 0.5, 2),
    ("tanh", 0.5, 7),
    ("tanh", 1 / 64, 3),
    ("relu", None, 3),
    ("hard_tanh", 0.25, 5),
    ("linear", None, 4),
]
#: Relative half-width of the window in which a measured squared singular value counts as at an atom (rounding of
#: the float64 products, ~1e-13 here, is far inside it; the continuous part holds ~1e-6 of mass there).
ATOM_WINDOW = 1e-6
#: Standard errors allowed for the atoms' masses (binomial counts) and the moments.
ATOM_Z = 4.5
#: Points of the theory's grid per e-fold of lambda (trapezoids in log lambda for its CDF and moments).
ORTHO_POINTS_PER_E = 80
#: ... and at least this many points (the narrow spectrum of tanh at q* = 1/64 spans two e-folds).
ORTHO_MIN_POINTS = 800


def _orthogonal_sample(activation, q_star, depth):
    if activation == "linear":
        sigma_w2, sigma_b2, input_var = 1.0, 0.0, 1.0
    else:
        sigma_w2, sigma_b2, input_var = _critical(activation, q_star)
    lam = np.concatenate(
        [
            spectra.jacobian_singular_values(
                "orthogonal",
                activation,
                depth,
                ORTHO_WIDTH,
                input_var=input_var,
                bias_var=sigma_b2,
                seed=seed,
                gain=math.sqrt(sigma_w2),
            ).squared.ravel()
            for seed in range(ORTHO_NETS)
        ]
    )
    return np.sort(lam), sigma_w2, sigma_b2


def _zero_excess(p, depth, width):
    """E[max_l k_l] / n - (1 - p) for k_l ~ Binomial(n, 1 - p) independent over the L layers."""
    from scipy import stats

    k = np.arange(width + 1)
    below = stats.binom.cdf(k, width, 1 - p) ** depth  # P(max <= k)
    return float(np.sum(1.0 - below[:-1])) / width - (1 - p)


#: A spectrum without atoms narrower than this (variance / mean^2) has its moments integrated on a fine linear grid
#: of its support.
NARROW_RELATIVE_VARIANCE = 0.05
NARROW_POINTS = 4001


@pytest.mark.parametrize("activation, q_star, depth", ORTHO_CASES)
def test_orthogonal_density_below_depth_eight_matches_monte_carlo(activation, q_star, depth):
    lam, sigma_w2, sigma_b2 = _orthogonal_sample(activation, q_star, depth)
    positive = lam[lam > ATOM_WINDOW * lam[-1]]
    low, high = positive[0] / 4, lam[-1] * 1.5
    grid = np.geomspace(low, high, max(ORTHO_MIN_POINTS, int(math.log(high / low) * ORTHO_POINTS_PER_E)))
    law = ts.jacobian_density(grid, activation, depth, sigma_w2, sigma_b2, weights="orthogonal")
    moments = ts.jacobian_moments(activation, depth, sigma_w2, sigma_b2, weights="orthogonal")
    atoms = [(0.0, law.zero_mass)] + list(zip(law.atoms, law.atom_masses))
    near = np.zeros(grid.shape, dtype=bool)
    for a, _ in atoms[1:]:
        near |= np.abs(grid - a) <= ATOM_WINDOW * a
    f = np.where(near, 0.0, law.density) * grid
    u = np.log(grid)
    steps = 0.5 * (f[1:] + f[:-1]) * np.diff(u)
    theory_cdf = law.zero_mass + np.append(0.0, np.cumsum(steps))
    for a, c in atoms[1:]:
        theory_cdf += np.where(grid >= a * (1 - ATOM_WINDOW), c, 0.0)
    keep = ~near
    measured_cdf = np.searchsorted(lam, grid * (1 + ATOM_WINDOW * near), side="right") / lam.size
    distance = float(np.max(np.abs(measured_cdf - theory_cdf)[keep]))
    bound = math.sqrt(math.log(2.0 / KS_ALPHA) / (2.0 * lam.size))
    if law.zero_mass > 0.0:
        bound += _zero_excess(1.0 - law.zero_mass, depth, ORTHO_WIDTH)
    assert distance <= bound, (distance, bound)
    # the theory's mean and variance (continuous part + atoms) are the exact free moments
    exact_mean = moments.mean[-1]
    if moments.variance[-1] < NARROW_RELATIVE_VARIANCE * exact_mean**2 and law.atoms.size == 0:
        # a narrow spectrum (tanh at q* = 1/64, relative variance 0.005): its square-root top edge needs a fine
        # grid on the support, and its variance is taken about the exact mean (E[lambda^2] - mean^2 would lose it
        # to cancellation)
        support = grid[law.density > 0.0]
        grid = np.linspace(support[0], support[-1], NARROW_POINTS)
        law = ts.jacobian_density(grid, activation, depth, sigma_w2, sigma_b2, weights="orthogonal")
        f = np.where(np.isfinite(law.density), law.density, 0.0)
        mean = float(np.sum(0.5 * (f[1:] * grid[1:] + f[:-1] * grid[:-1]) * np.diff(grid)))
        spread = f * (grid - exact_mean) ** 2
        variance = float(np.sum(0.5 * (spread[1:] + spread[:-1]) * np.diff(grid)))
        variance += law.zero_mass * exact_mean**2
    else:
        mean = float(np.sum(steps * 0.5 * (grid[1:] + grid[:-1]))) + sum(a * c for a, c in atoms)
        second = float(np.sum(0.5 * (f[1:] * grid[1:] ** 2 + f[:-1] * grid[:-1] ** 2) * np.diff(u)))
        variance = second + sum(a * a * c for a, c in atoms) - mean**2
    assert mean == pytest.approx(exact_mean, rel=2e-3)
    assert variance == pytest.approx(moments.variance[-1], rel=2e-2, abs=1e-12)


@pytest.mark.parametrize("activation, q_star, depth", [("hard_tanh", 0.25, 4), ("relu", None, 1)])
def test_atoms_match_the_fraction_of_singular_values_at_them(activation, q_star, depth):
    lam, sigma_w2, sigma_b2 = _orthogonal_sample(activation, q_star, depth)
    law = ts.jacobian_density([1.0], activation, depth, sigma_w2, sigma_b2, weights="orthogonal")
    p = 1.0 - law.zero_mass
    (top,), (mass,) = law.atoms, law.atom_masses
    assert top == pytest.approx(sigma_w2**depth)
    # at the top: 1 - sum_l k_l / n exactly, with sum_l k_l ~ Binomial(L n, 1 - p) per net
    at_top = np.mean(np.abs(lam - top) <= ATOM_WINDOW * top)
    error = ATOM_Z * math.sqrt(depth * p * (1 - p) / (ORTHO_WIDTH * ORTHO_NETS))
    assert abs(at_top - mass) <= error, (at_top, mass, error)
    # at 0: max_l k_l / n, whose mean exceeds 1 - p by the finite-width excess
    at_zero = np.mean(lam <= ATOM_WINDOW * top)
    excess = _zero_excess(p, depth, ORTHO_WIDTH) if depth > 1 else 0.0
    error = ATOM_Z * math.sqrt(p * (1 - p) / (ORTHO_WIDTH * ORTHO_NETS))
    assert abs(at_zero - law.zero_mass - excess) <= error, (at_zero, law.zero_mass, excess, error)


@pytest.mark.parametrize("depth", [8, 16])
def test_subordination_solver_continues_the_path_solver_from_depth_eight(depth):
    # both solve S_J = S_{D^2}^L sigma_w^-2L for the same atoms of D^2 (derivative_law): the path solver of the
    # Gaussian case, run with s = 1, against the free power of testbed.theory.free_power
    from testbed.theory import free_power

    sigma_w2, sigma_b2, _ = _critical("tanh", 0.5)
    q = ts.jacobian_moments("tanh", depth, sigma_w2, sigma_b2).q[0]
    mu, w = ts.derivative_law("tanh", q)
    lam = np.geomspace(0.05, 20.0, 200)
    edge = depth * math.log(sigma_w2 * mu.max())
    order = np.argsort(-lam)
    targets = np.log(lam[order])
    start = max(edge, targets[0]) + 2.0
    mean = (sigma_w2 * float(np.dot(mu, w))) ** depth
    path = ts._Path(mu, w, depth, sigma_w2, False)
    z = path.follow(start, targets, math.exp(math.log(mean) - start) / float(np.dot(w, mu)), 1.0)
    old = np.empty(lam.size)
    old[order] = -np.imag((z + 1.0) / np.exp(targets + 1j * ts.BRANCH_THETA)) / math.pi
    new = free_power.free_power_density(free_power.PositiveLaw(mu, w), depth, lam / sigma_w2**depth).density
    new /= sigma_w2**depth
    where = old > 1e-3 * old.max()
    np.testing.assert_allclose(new[where], old[where], rtol=1e-6)
