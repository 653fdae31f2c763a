"""The escape laws of testbed.theory.escape against direct simulations in plain NumPy.

Deterministic laws are checked exactly (integer step counts equal, closed forms equal to an ODE solve at
``ODE_RTOL``); the noisy ones with a confidence bound: a variance within ``Z_BOUND`` standard errors, an ECDF
within the Dvoretzky-Kiefer-Wolfowitz band at level ``DKW_ALPHA``.
"""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from testbed.theory import escape

#: Standard errors allowed for a Monte Carlo mean or variance (two-sided probability ~7e-6 of a false alarm).
Z_BOUND = 4.5
#: Level of the DKW band sup|F_n - F| <= sqrt(ln(2/alpha) / (2 n)).
DKW_ALPHA = 1e-6
#: Relative tolerance of the reference ODE solves (and of the comparisons with them: 100x looser).
ODE_RTOL = 1e-11
#: Trials in each Monte Carlo check.
N_TRIALS = 20_000


def dkw_band(n, alpha=DKW_ALPHA):
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * n))


def gd_steps_by_loop(y0, lr, gamma, radius):
    y, steps = abs(y0), 0
    while y <= radius:
        y *= 1.0 + lr * gamma
        steps += 1
    return steps


def flow_time(rhs, x0, event_value, direction, t_max):
    """Time for the scalar ODE dx/dt = rhs(x) to reach event_value (a direct numerical solve)."""

    def event(_, x):
        return x[0] - event_value

    event.terminal, event.direction = True, direction
    solution = integrate.solve_ivp(
        lambda _, x: [rhs(x[0])], (0.0, t_max), [x0], events=event, rtol=ODE_RTOL, atol=1e-14, method="DOP853"
    )
    assert solution.t_events[0].size == 1
    return float(solution.t_events[0][0])


# ----------------------------------------------------------------------------------------------------------
# Strict saddle, gradient descent


@pytest.mark.parametrize(
    "y0,lr,gamma,radius", [(1e-3, 0.01, 1.0, 1.0), (0.37, 0.1, 2.5, 3.0), (1e-8, 0.05, 0.3, 1.0), (0.5, 0.2, 1.0, 1.0)]
)
def test_gd_escape_steps_equal_the_loop(y0, lr, gamma, radius):
    expected = gd_steps_by_loop(y0, lr, gamma, radius)
    assert escape.gd_escape_steps(y0, lr, gamma, radius) == expected
    assert escape.gd_escape_steps(-y0, lr, gamma, radius) == expected
    # the continuous time T lies in (steps - 1, steps]
    assert expected - 1 <= escape.gd_escape_time(y0, lr, gamma, radius) < expected


def test_gd_escape_steps_vectorised_and_from_the_saddle():
    y0 = np.array([0.0, 1e-4, 2e-2, 2.0])
    steps = escape.gd_escape_steps(y0, 0.01, 1.0, 1.0)
    assert steps.tolist() == [-1, gd_steps_by_loop(1e-4, 0.01, 1.0, 1.0), gd_steps_by_loop(2e-2, 0.01, 1.0, 1.0), 0]
    assert escape.gd_escape_time(0.0, 0.01, 1.0) == math.inf


@pytest.mark.parametrize(
    "kwargs,name", [(dict(lr=0.0), "lr"), (dict(gamma=-1.0), "gamma"), (dict(radius=0.0), "radius")]
)
def test_bad_arguments_name_themselves(kwargs, name):
    args = dict(y0=0.1, lr=0.01, gamma=1.0, radius=1.0) | kwargs
    with pytest.raises(ValueError, match=name):
        escape.gd_escape_steps(**args)


# ----------------------------------------------------------------------------------------------------------
# Random start in a ball


def uniform_in_ball(rng, n, dim, radius):
    direction = rng.standard_normal((n, dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return direction * radius * rng.uniform(size=(n, 1)) ** (1.0 / dim)


@pytest.mark.parametrize("dim", [1, 2, 10])
def test_ball_component_distribution(rng, dim):
    points = uniform_in_ball(rng, N_TRIALS, dim, 0.3)
    size = np.abs(points[:, 0])
    assert stats.kstest(size, lambda a: escape.ball_component_cdf(a, 0.3, dim)).pvalue > DKW_ALPHA
    rms_error = np.std(points[:, 0] ** 2) / math.sqrt(N_TRIALS)
    assert abs(np.mean(points[:, 0] ** 2) - escape.ball_component_rms(0.3, dim) ** 2) < Z_BOUND * rms_error
    q = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(escape.ball_component_cdf(escape.ball_component_quantile(q, 0.3, dim), 0.3, dim), q)


def test_gd_escape_ecdf_from_a_ball_matches_the_simulation(rng):
    """GD in d = 5 on the saddle (one direction -gamma, four +1) from a uniform start in a small ball."""
    dim, lr, gamma, radius, start_radius = 5, 0.05, 1.0, 1.0, 0.01
    curvatures = np.array([-gamma] + [1.0] * (dim - 1))
    w = uniform_in_ball(rng, N_TRIALS, dim, start_radius)
    steps = np.full(N_TRIALS, -1)
    for t in range(1, 2000):
        w -= lr * curvatures * w
        left = (steps < 0) & (np.abs(w[:, 0]) > radius)  # the law's radius: the escape coordinate
        steps[left] = t
        if (steps >= 0).all():
            break
    assert (steps >= 0).all()
    grid = np.arange(steps.min(), steps.max() + 1)
    ecdf = np.searchsorted(np.sort(steps), grid, side="right") / N_TRIALS
    theory = escape.gd_escape_steps_cdf_from_ball(grid, lr, gamma, radius, start_radius, dim)
    assert np.max(np.abs(ecdf - theory)) < dkw_band(N_TRIALS)


# ----------------------------------------------------------------------------------------------------------
# Momentum


@pytest.mark.parametrize("y0,lr,gamma,mu", [(1e-3, 0.01, 1.0, 0.9), (0.2, 0.1, 0.5, 0.5), (1e-6, 0.02, 2.0, 0.99)])
def test_heavy_ball_escape_steps_equal_the_loop(y0, lr, gamma, mu):
    w, v, steps = y0, 0.0, 0
    while abs(w) <= 1.0:
        v = mu * v + (-gamma * w)  # PyTorch's heavy ball: v = mu v + g
        w -= lr * v
        steps += 1
    assert escape.heavy_ball_escape_steps(y0, lr, gamma, mu) == steps
    # the asymptotic law ln(R/|y0|)/ln z is the same up to the constant ln(1/A)/ln z (A = amplitude on z+)
    a, _, z_plus, _ = escape.heavy_ball_trajectory_coefficients(lr, gamma, mu)
    shifted = escape.heavy_ball_escape_time(y0, lr, gamma, mu) - math.log(a) / math.log(z_plus)
    assert steps - 1 <= shifted + 1e-9 and shifted < steps + 1


def test_growth_factors_are_the_measured_ratio_per_step():
    lr, gamma, beta = 0.01, 1.0, 0.9
    for growth, momentum, scale in [
        (escape.heavy_ball_growth(lr, gamma, beta), "heavy", 1.0),
        (escape.running_average_growth(lr, gamma, beta), "average", 1.0 - beta),
        (escape.gd_growth(lr, gamma), "gd", None),
    ]:
        w, v, previous = 1e-12, 0.0, None
        for _ in range(3000):
            g = -gamma * w
            if momentum == "heavy":
                v = beta * v + g
            elif momentum == "average":
                v = beta * v + scale * g  # the lecture: v = b v + (1 - b) g
            else:
                v = g
            previous, w = w, w - lr * v
        # after 3000 steps the other root's share (z-/z+)^t is below 1e-30: the ratio is z to rounding
        assert w / previous == pytest.approx(growth, rel=1e-12)


def test_running_average_is_heavy_ball_with_scaled_lr():
    assert escape.running_average_growth(0.1, 2.0, 0.7) == escape.heavy_ball_growth(0.1 * 0.3, 2.0, 0.7)
    assert escape.running_average_growth(0.1, 2.0, 0.0) == pytest.approx(escape.gd_growth(0.1, 2.0))


# ----------------------------------------------------------------------------------------------------------
# Gradient noise


def test_sgd_variance_closed_form_equals_the_sum():
    lr, gamma, sigma = 0.03, 0.7, 0.2
    for t in (0, 1, 5, 200):
        direct = lr**2 * sigma**2 * sum((1 + lr * gamma) ** (2 * k) for k in range(t))
        assert escape.sgd_saddle_variance(t, lr, gamma, sigma) == pytest.approx(direct, rel=1e-12, abs=0)
    ratio = escape.sgd_saddle_variance(2000, lr, gamma, sigma, exact=False) / escape.sgd_saddle_variance(
        2000, lr, gamma, sigma
    )
    assert ratio == pytest.approx(1 + lr * gamma / 2, rel=1e-9)  # (2 + lr gamma)/2, the neglected term


def test_sgd_variance_and_stable_variance_match_the_simulation(rng):
    lr, gamma, curvature, sigma, steps = 0.05, 1.0, 2.0, 0.3, 60
    y = np.zeros(N_TRIALS)
    x = np.zeros(N_TRIALS)
    for _ in range(steps):
        y -= lr * (-gamma * y + sigma * rng.standard_normal(N_TRIALS))
        x -= lr * (curvature * x + sigma * rng.standard_normal(N_TRIALS))
    for sample, expected in [
        (y, escape.sgd_saddle_variance(steps, lr, gamma, sigma)),
        (x, escape.sgd_stable_variance(lr, curvature, sigma, steps)),
    ]:
        # Gaussian samples: the sample variance has relative standard error sqrt(2/(n-1))
        assert abs(sample.var() / expected - 1) < Z_BOUND * math.sqrt(2.0 / (N_TRIALS - 1))
    stationary = escape.sgd_stable_variance(lr, curvature, sigma)
    assert stationary == pytest.approx(lr * sigma**2 / (2 * curvature - lr * curvature**2))
    assert escape.sgd_stable_variance(lr, curvature, sigma, 10**6) == pytest.approx(stationary)


@pytest.mark.parametrize("y0", [0.0, 2e-3])
def test_sgd_escape_time_distribution_matches_the_simulation(rng, y0):
    """SGD with noise along the escape direction plus two stable coordinates, escape when |w| > R."""
    lr, gamma, sigma, radius = 0.05, 1.0, 0.05, 1.0
    stable = np.array([1.0, 3.0])
    curvatures = np.concatenate([[-gamma], stable])
    w = np.zeros((N_TRIALS, curvatures.size))
    w[:, 0] = y0
    steps = np.full(N_TRIALS, -1)
    active = np.arange(N_TRIALS)
    for t in range(1, 3000):
        w[active] -= lr * (curvatures * w[active] + sigma * rng.standard_normal((active.size, curvatures.size)))
        left = np.einsum("ij,ij->i", w[active], w[active]) > radius**2
        steps[active[left]] = t
        active = active[~left]
        if active.size == 0:
            break
    assert (steps >= 0).all()
    grid = np.arange(steps.min(), steps.max() + 1)
    ecdf = np.searchsorted(np.sort(steps), grid, side="right") / N_TRIALS
    # the integer escape step is the first t past the continuous time T: steps <= t iff T <= t
    theory = escape.sgd_escape_time_cdf(grid, lr, gamma, sigma, radius, y0, stable)
    assert np.max(np.abs(ecdf - theory)) < dkw_band(N_TRIALS)
    median = escape.sgd_median_escape_time(lr, gamma, sigma, radius, y0, stable)
    # the integer escape step is the first step past T: half the runs within ceil(median), at most half before
    assert np.mean(steps <= math.ceil(median)) >= 0.5 - dkw_band(N_TRIALS)
    assert np.mean(steps <= math.floor(median)) <= 0.5 + dkw_band(N_TRIALS)


def test_sgd_median_with_exact_variance_is_where_half_the_mass_is_outside():
    lr, gamma, sigma = 0.01, 1.0, 0.01
    t = escape.sgd_median_escape_steps_exact_variance(lr, gamma, sigma)
    assert (
        escape.sgd_escape_probability(t, lr, gamma, sigma)
        >= 0.5
        > escape.sgd_escape_probability(t - 1, lr, gamma, sigma)
    )
    # and it agrees with the martingale-limit median up to the rounding to an integer step
    assert abs(t - escape.sgd_median_escape_time(lr, gamma, sigma)) <= 1.0


# ----------------------------------------------------------------------------------------------------------
# Degenerate saddle


def test_monkey_saddle_flow_time_and_gd_bounds():
    lr, x0, radius = 0.01, -0.05, 1.0
    flow = escape.monkey_saddle_escape_time(x0, lr, radius)
    assert flow == pytest.approx(flow_time(lambda x: -3 * lr * x * x, x0, -radius, -1, 10 * flow), rel=100 * ODE_RTOL)
    # GD: 1/|x| falls by 3 lr/(1 + 3 lr |x|) per step, between 3 lr/(1 + 3 lr R) and 3 lr, so
    # flow <= steps <= flow (1 + 3 lr R) + 1.
    x, steps = x0, 0
    while abs(x) <= radius:
        x -= lr * 3 * x * x
        steps += 1
    assert flow <= steps <= flow * (1 + 3 * lr * radius) + 1
    assert escape.monkey_saddle_escape_time(0.05, lr) == math.inf


# ----------------------------------------------------------------------------------------------------------
# Plateaus


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_deep_linear_plateau_time_matches_the_flow_of_balanced_weights(depth):
    lr, s, u0, uf = 0.01, 2.0, 1e-3, 1.0
    a0 = u0 ** (1.0 / depth)
    a_final = uf ** (1.0 / depth)
    # each weight: da/dt = -lr df/da = lr a^(D-1) (s - a^D)
    expected = escape.deep_linear_plateau_time(lr, s, u0, uf, depth)
    measured = flow_time(lambda a: lr * a ** (depth - 1) * (s - a**depth), a0, a_final, 1, 10 * expected)
    assert expected == pytest.approx(measured, rel=100 * ODE_RTOL)


def test_saxe_closed_form():
    lr, s, u0, uf = 0.05, 3.0, 0.01, 2.0
    measured = flow_time(lambda u: 2 * lr * u * (s - u), u0, uf, 1, 1e6)
    assert escape.saxe_plateau_time(lr, s, u0, uf) == pytest.approx(measured, rel=100 * ODE_RTOL)


@pytest.mark.parametrize("depth", [3, 4, 8])
def test_deep_linear_asymptotic_within_its_derived_error(depth):
    """t_exact - t_asym = (1/(lr D s)) [int_{u0}^{uf} u^(2/D - 1)/(s - u) du - uf^(2/D - 1)/(1 - 2/D)], so
    |t_exact - t_asym| <= (1/(lr D s)) [uf^(2/D) D / (2 (s - uf)) + uf^(2/D - 1)/(1 - 2/D)]: a constant while
    both times grow like u0^(2/D - 1)."""
    lr, s, uf = 0.01, 1.0, 0.5
    bound = (uf ** (2 / depth) * depth / (2 * (s - uf)) + uf ** (2 / depth - 1) / (1 - 2 / depth)) / (lr * depth * s)
    for u0 in (1e-3, 1e-6):
        exact = escape.deep_linear_plateau_time(lr, s, u0, uf, depth)
        asymptotic = escape.deep_linear_plateau_time_asymptotic(lr, s, u0, depth)
        assert abs(exact - asymptotic) <= bound


def test_saxe_discrete_steps_within_the_derived_bounds():
    s, u0, uf = 1.0, 1e-4, 0.9
    for lr in (0.2, 0.05, 0.01):
        a, steps = math.sqrt(u0), 0
        while a * a < uf:
            a += lr * a * (s - a * a)  # GD on f = 1/2 (s - a b)^2 with a = b
            steps += 1
        low, high = escape.saxe_discrete_steps_bounds(lr, s, u0, uf)
        assert low <= steps <= high


def test_saxe_per_step_logit_increment_bounds_hold_on_a_grid():
    """The two inequalities behind saxe_discrete_steps_bounds, checked on a grid of (eps, q)."""
    for eps in (0.01, 0.1, 0.25):
        q = np.linspace(0.0, eps, 1001)
        p = eps - q
        increment = 2 * np.log1p(p) - np.log1p(-2 * q - p * q)
        assert np.all(increment >= 2 * eps - eps**2 - 1e-15)
        assert np.all(increment <= -math.log1p(-2 * eps) + 1e-15)


@pytest.mark.parametrize("a,y,w0,w_end", [(1.0, 0.0, 4.0, 1.0), (2.0, 0.3, -3.0, -0.5), (0.5, -0.5, 6.0, 0.0)])
def test_tanh_unit_time_matches_the_flow(a, y, w0, w_end):
    lr = 0.1
    expected = escape.tanh_unit_plateau_time(lr, w0, w_end, a, y)

    def rhs(w):
        v = math.tanh(a * w)
        return -lr * a * (v - y) * (1 - v * v)

    measured = flow_time(rhs, w0, w_end, -1 if w0 > w_end else 1, 10 * expected)
    assert expected == pytest.approx(measured, rel=100 * ODE_RTOL)


def test_tanh_unit_saturated_limit():
    """Beyond the B2 term the antiderivative is O(a w0) (logarithms), against B2's exp(2 a w0)/(8 (1-y)):
    their ratio is below 4 (1 + 2 a w0 + |ln(1 - y^2)|) exp(-2 a w0) times a coefficient of order 1."""
    lr, a, y = 0.05, 1.0, 0.2
    for w0 in (5.0, 8.0):
        exact = escape.tanh_unit_plateau_time(lr, w0, 0.5, a, y)
        asymptotic = escape.tanh_unit_plateau_time_asymptotic(lr, w0, a, y)
        relative_bound = 8 * (1 - y) * 4 * (1 + 2 * a * w0 + 10) * math.exp(-2 * a * w0)
        assert abs(exact / asymptotic - 1) < relative_bound
    # 1/lr exactly, and exp(2 a dw) per shift dw of the saturation level in the limit
    assert escape.tanh_unit_plateau_time(0.01, 8.0, 0.5) == pytest.approx(
        5 * escape.tanh_unit_plateau_time(0.05, 8.0, 0.5)
    )


def test_loss_drop_targets():
    w_end = escape.tanh_unit_target_for_loss_drop(3.0, 0.1, a=1.5, y=0.2)
    loss = lambda w: 0.5 * (math.tanh(1.5 * w) - 0.2) ** 2  # noqa: E731
    assert loss(3.0) - loss(w_end) == pytest.approx(0.1)
    uf = escape.deep_linear_target_for_loss_drop(2.0, 0.01, 0.5)
    assert 0.5 * (2.0 - 0.01) ** 2 - 0.5 * (2.0 - uf) ** 2 == pytest.approx(0.5)


# ----------------------------------------------------------------------------------------------------------
# Ravines


def run_gd(curvatures, lr, w0, steps):
    w = np.array(w0, dtype=float)
    path = [w.copy()]
    for _ in range(steps):
        w = w - lr * curvatures * w
        path.append(w.copy())
    return np.array(path)


def run_heavy_ball(curvatures, lr, mu, w0, steps):
    w, v = np.array(w0, dtype=float), np.zeros(len(w0))
    path = [w.copy()]
    for _ in range(steps):
        v = mu * v + curvatures * w
        w = w - lr * v
        path.append(w.copy())
    return np.array(path)


def test_gd_oscillates_above_one_and_diverges_above_two():
    kappa = 50.0
    curvatures = np.array([1.0, kappa])
    for lr_times_lmax, oscillates, diverges in [(0.9, False, False), (1.5, True, False), (2.1, True, True)]:
        lr = lr_times_lmax / kappa
        path = run_gd(curvatures, lr, [1.0, 1.0], 200)
        signs = np.sign(path[1:6, 1])
        assert (np.all(signs[1:] != signs[:-1])) == oscillates == escape.gd_oscillates(lr, kappa)
        assert (abs(path[-1, 1]) > 1.0) == diverges == escape.gd_diverges(lr, kappa)


@pytest.mark.parametrize("kappa", [4.0, 100.0])
def test_gd_optimal_rate_and_steps_to_tolerance(kappa):
    curvatures = np.array([1.0, kappa])
    lr = escape.gd_optimal_lr(1.0, kappa)
    rate = escape.gd_optimal_rate(kappa)
    assert escape.gd_rate(lr, curvatures) == pytest.approx(rate)
    tolerance = 1e-6
    steps = escape.steps_to_tolerance(rate, tolerance) + 5
    path = run_gd(curvatures, lr, [1.0, 1.0], steps)
    norms = np.linalg.norm(path, axis=1) / np.linalg.norm(path[0])
    # both coordinates shrink by exactly `rate` in modulus each step
    np.testing.assert_allclose(norms, rate ** np.arange(steps + 1), rtol=1e-9)
    assert int(np.argmax(norms <= tolerance)) == escape.steps_to_tolerance(rate, tolerance)


@pytest.mark.parametrize("kappa", [9.0, 100.0, 1000.0])
def test_heavy_ball_optimal_rate_measured(kappa):
    """At Goh's parameters both modes have the double root rate = sqrt(mu), so e_t = (A + B t) rate^t = B (t - c)
    rate^t with c = -A/B. From rest, e_1 = (1 - lr lambda) e_0 gives B/A = (1 - lr lambda)/rate - 1: at lambda_max
    1 - lr lambda < 0, so B/A < -1; at lambda_min (1 - lr l1)/rate = (sqrt k + 3)/(sqrt k + 1) > 1, so B/A > 0;
    either way |c| < 1. Over [t0, T] each mode (hence the norm) contracts per step by rate times
    ((T - c)/(t0 - c))^(1/(T - t0)), which lies in [((T+1)/(t0+1))^(1/(T-t0)), ((T-1)/(t0-1))^(1/(T-t0))]."""
    lr, mu, rate = escape.heavy_ball_optimal(1.0, kappa)
    assert rate == pytest.approx(escape.heavy_ball_optimal_rate(kappa))
    assert escape.heavy_ball_rate(lr, mu, [1.0, kappa]) == pytest.approx(rate, rel=1e-6)
    t0, t_end = 20, 400
    path = run_heavy_ball(np.array([1.0, kappa]), lr, mu, [1.0, 1.0], t_end)
    measured = (np.linalg.norm(path[t_end]) / np.linalg.norm(path[t0])) ** (1.0 / (t_end - t0))
    low = rate * ((t_end + 1) / (t0 + 1)) ** (1 / (t_end - t0))
    high = rate * ((t_end - 1) / (t0 - 1)) ** (1 / (t_end - t0))
    assert low * (1 - 1e-9) <= measured <= high * (1 + 1e-9)
    assert rate < escape.gd_optimal_rate(kappa)


def test_heavy_ball_rate_is_the_spectral_radius_of_the_iteration():
    for lr, mu, curvatures in [(0.1, 0.5, [1.0, 5.0]), (0.01, 0.9, [0.3, 50.0]), (0.5, 0.0, [1.0, 3.0])]:
        radius = 0.0
        for c in curvatures:
            matrix = np.array([[1 + mu - lr * c, -mu], [1.0, 0.0]])  # (w_{t+1}, w_t) from (w_t, w_{t-1})
            radius = max(radius, np.max(np.abs(np.linalg.eigvals(matrix))))
        assert escape.heavy_ball_rate(lr, mu, curvatures) == pytest.approx(radius)


# ----------------------------------------------------------------------------------------------------------
# Local minima


def test_double_well_stationary_points_and_basins():
    height, tilt = 1.0, 0.3
    points = escape.double_well_stationary_points(height, tilt)
    assert len(points) == 3
    np.testing.assert_allclose(4 * height * points * (points**2 - 1) + tilt, 0.0, atol=1e-12)
    barrier = escape.double_well_barrier(height, tilt)
    starts = np.linspace(-1.5, 1.5, 3001)
    w = starts.copy()
    for _ in range(3000):  # GD, small lr: each start ends in the well on its side of the barrier
        w -= 0.01 * (4 * height * w * (w * w - 1) + tilt)
    left = w < barrier
    np.testing.assert_array_equal(left, starts < barrier)
    assert np.mean(left) == pytest.approx(
        escape.double_well_left_fraction_uniform_start(1.5, height, tilt), abs=1.0 / starts.size
    )
    with pytest.raises(ValueError, match="tilt"):
        escape.double_well_barrier(1.0, 5.0)


def test_rastrigin_local_minima():
    amplitude = 10.0
    minima = escape.rastrigin_local_minima(amplitude, 3.2)
    np.testing.assert_allclose(minima, [-3, -2, -1, 0, 1, 2, 3], atol=0.02)
    slope = 2 * minima + 2 * math.pi * amplitude * np.sin(2 * math.pi * minima)
    np.testing.assert_allclose(slope, 0.0, atol=1e-9)


# ----------------------------------------------------------------------------------------------------------
# Reddi et al.


def run_reddi(big_c, amsgrad, steps, lr=0.1, eps=0.0, project=True):
    """Adam (b1 = 0, b2 = 1/(1+C^2), bias-corrected v, lr/sqrt(t)) on the online loss, projected on [-1, 1]."""
    beta2 = escape.reddi_beta2(big_c)
    x, v, v_max = 0.0, 0.0, 0.0
    xs, normalised = [], []
    for t in range(1, steps + 1):
        g = big_c if t % 3 == 1 else -1.0
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)
        v_hat = (v_max if amsgrad else v) / (1 - beta2**t)
        step = g / (math.sqrt(v_hat) + eps)
        normalised.append(step)
        x -= lr / math.sqrt(t) * step
        if project:
            x = min(1.0, max(-1.0, x))
        xs.append(x)
    return np.array(xs), np.array(normalised)


@pytest.mark.parametrize("big_c", [2.5, 3.0, 10.0])
def test_reddi_adam_to_plus_one_amsgrad_to_minus_one(big_c):
    assert escape.reddi_optimum(big_c) == -1.0 and escape.reddi_average_slope(big_c) > 0
    limits = escape.reddi_limits(big_c)
    for amsgrad, name in [(False, "adam"), (True, "amsgrad")]:
        steps, lr = 30_000, 0.1
        xs, normalised = run_reddi(big_c, amsgrad, steps, lr)
        # at the limit the iterate is pinned to the boundary once per period and leaves it by at most one
        # period's travel, lr/sqrt(t) times the normalised steps
        excursion = lr / math.sqrt(steps - 300) * np.abs(normalised[-3:]).sum()
        assert np.all(np.abs(xs[-300:] - limits[name]) <= excursion)
        assert np.any(xs[-3:] == limits[name])
        # the measured displacement per period (units of the step size) is the predicted drift once the
        # bias correction 1/(1 - b2^t) has reached 1 and v is periodic (b2^t < 1e-16 after 60 steps)
        period = -normalised[-3:].sum()
        drift = escape.reddi_amsgrad_drift(big_c) if amsgrad else escape.reddi_adam_drift(big_c)
        assert period == pytest.approx(drift, rel=1e-12)
    assert limits == {"adam": 1.0, "amsgrad": -1.0, "optimum": -1.0}


def test_reddi_below_two_both_agree():
    assert escape.reddi_optimum(1.5) == 1.0
    assert escape.reddi_amsgrad_drift(1.5) > 0


@pytest.mark.parametrize(
    "lr,mu,curvatures",
    [
        (0.0330578512, 0.669421488, [1.0, 100.0]),
        (0.01, 0.5, [1.0, 100.0]),
        (0.019, 0.0, [1.0, 100.0]),
        (0.019, 0.5, [3.0, 100.0]),
    ],
)
def test_exact_distances_and_steps_to_tolerance_match_the_loop(lr, mu, curvatures):
    curvatures = np.array(curvatures)
    start = np.array([1.0, -0.7])
    path = run_heavy_ball(curvatures, lr, mu, start, 400) if mu else run_gd(curvatures, lr, start, 400)
    norms = np.linalg.norm(path, axis=1)
    t = np.arange(401)
    exact = (
        escape.heavy_ball_distance(t, lr, mu, curvatures, start) if mu else escape.gd_distance(t, lr, curvatures, start)
    )
    np.testing.assert_allclose(exact, norms, rtol=1e-8, atol=1e-300)
    tolerance = 1e-3
    expected = int(np.argmax(norms < tolerance))
    steps = (
        escape.heavy_ball_steps_to_tolerance(lr, mu, curvatures, start, tolerance)
        if mu
        else escape.gd_steps_to_tolerance(lr, curvatures, start, tolerance)
    )
    assert steps == expected
    assert escape.gd_steps_to_tolerance(2.5 / curvatures[-1], curvatures, start, tolerance) == math.inf


@pytest.mark.parametrize("lr,mu", [(0.019, 0.0), (0.019, 0.5), (0.0095, 0.5), (0.019, 0.9), (0.005, 0.0)])
def test_sign_flip_fraction_matches_the_loop(lr, mu):
    """Over n steps of y ~ cos(theta t + phi) the count of sign changes is theta n/pi up to 1 (plus the
    transient of the subdominant root, absent for complex pairs): |flips/n - theta/pi| <= 2/n."""
    kappa, n = 100.0, 2000
    path = run_heavy_ball(np.array([kappa]), lr, mu, [1.0], n) if mu else run_gd(np.array([kappa]), lr, [1.0], n)
    y = path[:, 0]
    y = y[np.abs(y) > 1e-290]  # before underflow
    flips = np.mean(np.sign(y[1:]) != np.sign(y[:-1]))
    assert abs(flips - escape.sign_flip_fraction(lr, mu, kappa)) <= 2.0 / (y.size - 1)


def test_rastrigin_global_basin_fraction_matches_gradient_descent():
    """GD with a small lr (lr * max curvature = 0.4) on one Rastrigin coordinate from a grid of starts: those
    reaching 0 lie between the local maxima around 0; separability squares the fraction in 2-D."""
    amplitude, half_width, lr = 10.0, 2.0, 0.001
    starts = np.linspace(-half_width, half_width, 4001)
    w = starts.copy()
    for _ in range(2000):
        w -= lr * (2 * w + 2 * math.pi * amplitude * np.sin(2 * math.pi * w))
    fraction_1d = np.mean(np.abs(w) < 0.1)
    maxima = escape.rastrigin_local_maxima(amplitude, half_width)
    in_basin = (starts > maxima[maxima < 0].max()) & (starts < maxima[maxima > 0].min())
    np.testing.assert_array_equal(np.abs(w) < 0.1, in_basin)
    assert fraction_1d == pytest.approx(
        escape.rastrigin_global_basin_fraction(half_width, 1, amplitude), abs=1.0 / starts.size
    )
    assert escape.rastrigin_global_basin_fraction(half_width, 2, amplitude) == pytest.approx(
        escape.rastrigin_global_basin_fraction(half_width, 1, amplitude) ** 2
    )
