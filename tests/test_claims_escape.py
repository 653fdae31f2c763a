"""The lecture's claims about plateaus, ravines, local minima and Adam, as regression tests on the testbed's kernels.

Every run goes through :func:`testbed.montecarlo.escape_times` (the optimizers' own scalar rules), on the CPU.
Deterministic runs are held to derived bounds (no fudge factor); noisy ones to ``Z_BOUND`` standard errors.
"""

import math

import numpy as np
import pytest

from testbed import landscapes, montecarlo, optim
from testbed.theory import escape as theory

#: Standard errors for a one-sided comparison of a measured fraction with a prediction (p ~ 3e-6).
Z_BOUND = 4.5
#: Largest finite float64.
FLOAT_MAX = np.finfo(np.float64).max


def single_run(landscape, optimizer, **kwargs):
    options = dict(trials=1, noise=0.0, max_steps=10_000, seed=0, backend="cpu")
    options.update(kwargs)
    return montecarlo.escape_times(landscape, optimizer, **options)


# ----------------------------------------------------------------------------------------------------------
# Plateaus


def test_plateau_time_scales_as_one_over_lr_within_the_derived_bound():
    """Saxe et al.'s deep linear net, depth 2: GD's steps N to halve the loss satisfy
    T 2 eps / (-ln(1 - 2 eps)) <= N <= T / (1 - eps/2) + 1 with eps = lr s and T the flow time
    (derivation: testbed.theory.escape.saxe_discrete_steps_bounds). So N lr -> T lr, a constant, with a relative
    error at most about lr s: the plateau lasts ~1/lr steps."""
    strength, u0 = 1.0, 1e-3
    f = landscapes.deep_linear(depth=2, strength=strength, u0=u0)
    drop = 0.5 * f.value(f.start)
    uf = theory.deep_linear_target_for_loss_drop(strength, u0, drop)
    flow_times_lr = theory.saxe_plateau_time(1.0, strength, u0, uf)  # T * lr, independent of lr
    products = []
    for lr in (0.0025, 0.005, 0.01, 0.02, 0.04):
        result = single_run(f, optim.SGD(lr=lr), criterion="loss", delta=drop)
        assert result.escaped[0]
        steps = int(result.steps[0])
        low, high = theory.saxe_discrete_steps_bounds(lr, strength, u0, uf)
        assert low <= steps <= high
        products.append(steps * lr)
    # 1/lr scaling: N lr stays within the bound's band around T lr for every lr
    eps_max = 0.04 * strength
    assert flow_times_lr * 2 * eps_max / -math.log1p(-2 * eps_max) <= min(products)
    assert max(products) <= flow_times_lr / (1 - eps_max / 2) + eps_max


def test_a_deeper_chain_waits_longer_at_the_same_per_layer_scale():
    """u0 = a0^D: the balanced-flow time T (theory.deep_linear_plateau_time) grows with depth, and GD's measured
    steps N follow it. GD is forward Euler on the flow with step lr: N lies between T - 1 (the flow is never slower
    than its discretisation on this monotone climb) and T (1 + lr s D) + 1 (each of the D factors moves by at most
    lr s per step more than the flow; the depth-2 bound of saxe_discrete_steps_bounds is T (1 + O(lr s)))."""
    lr, a0, strength = 0.05, 0.5, 1.0
    measured = []
    for depth in (2, 3, 4, 5):
        u0 = a0**depth
        f = landscapes.deep_linear(depth=depth, strength=strength, u0=u0)
        drop = 0.5 * f.value(f.start)
        result = single_run(f, optim.SGD(lr=lr), criterion="loss", delta=drop)
        steps = int(result.steps[0])
        uf = theory.deep_linear_target_for_loss_drop(strength, u0, drop)
        flow = theory.deep_linear_plateau_time(lr, strength, u0, uf, depth)
        assert flow - 1 <= steps <= flow * (1 + lr * strength * depth) + 1, (depth, steps, flow)
        measured.append(steps)
    assert all(a < b for a, b in zip(measured, measured[1:]))


# ----------------------------------------------------------------------------------------------------------
# Ravines


def test_momentum_damps_the_zig_zag_across_the_ravine():
    """At lr kappa = 1.9 GD flips the steep coordinate every step (factor -0.9). The lecture's running average
    (b = 0.5) at the same lr is the heavy ball with lr (1 - b): complex roots of modulus sqrt(b) = 0.707 turning
    by theta = arccos(trace / (2 sqrt b)), so y changes sign on a fraction theta/pi of the steps (to within 2/n) and
    follows the closed form exactly."""
    kappa, steps, beta = 100.0, 200, 0.5
    lr = 1.9 / kappa
    f = landscapes.ravine(kappa=kappa)
    paths = {}
    for name, opt in (("gd", optim.SGD(lr=lr)), ("momentum", optim.Momentum(lr=lr, beta=beta))):
        result = single_run(f, opt, criterion="none", max_steps=steps, record=1, record_every=1)
        paths[name] = result.trajectories[0][:, 1]
    t = np.arange(steps + 1)
    np.testing.assert_allclose(paths["gd"], (1 - lr * kappa) ** t, rtol=1e-10)
    exact = theory.heavy_ball_distance(t, lr * (1 - beta), beta, [kappa], [1.0])
    np.testing.assert_allclose(np.abs(paths["momentum"]), exact, rtol=1e-8, atol=1e-300)
    flips = {name: np.mean(np.sign(y[1:]) != np.sign(y[:-1])) for name, y in paths.items()}
    assert flips["gd"] == 1.0 == theory.sign_flip_fraction(lr, 0.0, kappa)
    assert abs(flips["momentum"] - theory.sign_flip_fraction(lr * (1 - beta), beta, kappa)) <= 2.0 / steps
    assert flips["momentum"] < 0.5
    # and the oscillation dies faster: the largest |y| over the last 20 steps is below GD's smallest
    assert np.max(np.abs(paths["momentum"][-20:])) < np.min(np.abs(paths["gd"][-20:]))


@pytest.mark.parametrize("kappa", [100.0, 1000.0])
def test_momentum_reaches_the_sqrt_kappa_rate(kappa):
    """Heavy ball at Goh's (lr, mu): e_t = (A + B t) rate^t per mode with |A/B| < 1 from rest (derived in
    tests/test_theory_escape.py::test_heavy_ball_optimal_rate_measured), so the contraction per step measured over
    [t0, T] lies in rate * [((T+1)/(t0+1))^(1/(T-t0)), ((T-1)/(t0-1))^(1/(T-t0))]; rate = (sqrt k - 1)/(sqrt k + 1)
    beats GD's best (k - 1)/(k + 1)."""
    lr, mu, rate = theory.heavy_ball_optimal(1.0, kappa)
    t0, t_end = 20, 400
    result = single_run(
        landscapes.ravine(kappa=kappa),
        optim.SGD(lr=lr, momentum=mu),
        criterion="none",
        max_steps=t_end,
        record=1,
        record_every=1,
    )
    norms = np.linalg.norm(result.trajectories[0], axis=1)
    measured = (norms[t_end] / norms[t0]) ** (1.0 / (t_end - t0))
    low = rate * ((t_end + 1) / (t0 + 1)) ** (1 / (t_end - t0))
    high = rate * ((t_end - 1) / (t0 - 1)) ** (1 / (t_end - t0))
    assert low * (1 - 1e-9) <= measured <= high * (1 + 1e-9)
    assert measured < theory.gd_optimal_rate(kappa)
    assert rate == pytest.approx((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1))


def test_lr_beyond_two_over_lambda_max_diverges_and_is_reported_as_diverged():
    """lr kappa = 2.1: the steep coordinate grows as 1.1^t until it overflows, between the step where kappa |y|
    (the gradient) and the step where |y| itself passes the largest float. The trial is flagged diverged, not
    escaped, not censored, and the statistics stay free of NaN."""
    kappa = 100.0
    f = landscapes.ravine(kappa=kappa)
    result = montecarlo.escape_times(
        f,
        optim.SGD(lr=2.1 / kappa),
        trials=4,
        noise=0.0,
        criterion="converge",
        radius=1e-6,
        max_steps=20_000,
        seed=0,
        backend="cpu",
    )
    assert result.diverged.all() and not result.escaped.any() and not result.censored.any()
    growth = math.log(1.1)
    first, last = math.log(FLOAT_MAX / kappa) / growth, math.log(FLOAT_MAX) / growth + 1
    assert np.all((first <= result.steps) & (result.steps <= last))
    assert result.n_diverged == 4
    assert result.median() == math.inf  # no escape: KM median unreached, not NaN
    assert theory.gd_diverges(2.1 / kappa, kappa)
    # just below the threshold it converges, in the exact number of steps of the closed form
    below = single_run(f, optim.SGD(lr=1.99 / kappa), criterion="converge", radius=1e-6, max_steps=20_000)
    assert below.escaped[0] and not below.diverged[0]
    assert below.steps[0] == theory.gd_steps_to_tolerance(1.99 / kappa, [1.0, kappa], f.start, 1e-6)


# ----------------------------------------------------------------------------------------------------------
# Reddi et al.


@pytest.mark.parametrize("big_c", [3.0, 10.0])
def test_reddi_counterexample_adam_to_plus_one_amsgrad_to_minus_one(big_c):
    """b1 = 0, b2 = 1/(1 + C^2), lr/sqrt(t), projected on [-1, 1]. Once at its limit an iterate leaves the boundary
    by at most one period's travel, lr/sqrt(t) (C/sqrt(v1) + 1/sqrt(v2) + 1/sqrt(v3)) with the periodic second
    moments (1/sqrt(v1) for all three under AMSGrad's max)."""
    lr, steps = 0.1, 4000
    beta2 = theory.reddi_beta2(big_c)
    f = landscapes.reddi(C=big_c)
    v1, v2, v3 = theory.reddi_periodic_second_moment(big_c)
    limits = theory.reddi_limits(big_c)
    assert limits == {"adam": 1.0, "amsgrad": -1.0, "optimum": -1.0}
    for name, amsgrad in (("adam", False), ("amsgrad", True)):
        opt = optim.Adam(lr=lr, betas=(0.0, beta2), amsgrad=amsgrad, schedule="inverse_sqrt")
        result = single_run(f, opt, criterion="none", max_steps=steps, record=1, record_every=1)
        x = result.trajectories[0][:, 0]
        travel = big_c / math.sqrt(v1) + (2 / math.sqrt(v1) if amsgrad else 1 / math.sqrt(v2) + 1 / math.sqrt(v3))
        excursion = lr / math.sqrt(steps - 300) * travel
        assert np.all(np.abs(x[-300:] - limits[name]) <= excursion * (1 + 1e-6))
        assert result.final[0, 0] == pytest.approx(limits[name], abs=excursion)


# ----------------------------------------------------------------------------------------------------------
# Local minima


def test_double_well_gd_ends_on_the_starts_side_and_noise_finds_the_global_well_more_often():
    """Tilted double well (c = 0.3: the left well is global). Without noise GD, heavy ball and Adam at a small lr
    end in the well on the start's side of the barrier: exactly the fraction of starts left of it. With gradient
    noise SGD hops out of the shallower right well more often than out of the deeper left one, so the fraction at
    the global minimum rises above GD's, by more than Z_BOUND standard errors."""
    height, tilt, lr = 1.0, 0.3, 0.01
    barrier = theory.double_well_barrier(height, tilt)
    f = landscapes.double_well(dim=1, height=height, tilt=tilt)
    starts = np.linspace(-1.5, 1.5, 301)[:, None]
    expected_left = starts[:, 0] < barrier
    for opt in (optim.SGD(lr=lr), optim.SGD(lr=lr, momentum=0.9), optim.Adam(lr=lr)):
        result = montecarlo.escape_times(
            f, opt, trials=starts.shape[0], start=starts, criterion="none", max_steps=3000, seed=0, backend="cpu"
        )
        np.testing.assert_array_equal(result.final[:, 0] < barrier, expected_left)
        minima = theory.double_well_stationary_points(height, tilt)[[0, 2]]
        ends = np.where(expected_left, minima[0], minima[1])
        np.testing.assert_allclose(result.final[:, 0], ends, atol=1e-3)
    gd_fraction = expected_left.mean()
    assert gd_fraction == pytest.approx(
        theory.double_well_left_fraction_uniform_start(1.5, height, tilt), abs=1.0 / starts.shape[0]
    )
    trials = 2000
    noisy_starts = np.resize(starts, (trials, 1))
    noisy = montecarlo.escape_times(
        f,
        optim.SGD(lr=lr),
        trials=trials,
        noise=6.0,
        start=noisy_starts,
        criterion="none",
        max_steps=5000,
        seed=1,
        backend="cpu",
    )
    fraction = np.mean(noisy.final[:, 0] < barrier)
    start_fraction = np.mean(noisy_starts[:, 0] < barrier)
    standard_error = math.sqrt(fraction * (1 - fraction) / trials)
    assert fraction - start_fraction > Z_BOUND * standard_error
