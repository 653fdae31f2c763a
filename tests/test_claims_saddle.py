"""The lecture's saddle claims as regression tests (reference.md section 4; Dauphin et al. 2014).

"Saddle points are easily escapable, especially with SGD": gradient descent started exactly at a saddle never
moves, a perturbed start escapes in ln(R/|y0|)/ln(1 + lr gamma) steps (heavy ball by its growth factor z), SGD's
noise escapes from the exact saddle with variance growing as (1 + lr gamma)^(2t), Newton is attracted to the saddle
while saddle-free Newton escapes, and Adam's per-component normalisation escapes a shallow saddle far faster than
SGD at the same learning rate.
"""

import math

import numpy as np

from testbed import landscapes, montecarlo, optim
from testbed.theory import escape as theory

#: Standard errors allowed between a sample statistic and its exact value.
Z_BOUND = 4.5


def starts_along_escape_direction(y0, dim):
    start = np.zeros((len(y0), dim))
    start[:, 0] = y0
    return start


def test_gd_started_exactly_at_the_saddle_never_moves():
    f = landscapes.saddle(dim=10, negative=1, gamma=1.0)
    r = montecarlo.escape_times(f, optim.SGD(lr=0.1), trials=16, noise=0.0, radius=1.0, start="saddle", max_steps=2000)
    assert r.censored.all() and (r.steps == 2000).all()
    assert np.all(r.final == 0.0)
    assert r.median() == math.inf


def test_perturbed_gd_escapes_in_the_predicted_number_of_steps():
    lr, gamma, radius = 0.1, 0.5, 1.0
    y0 = np.geomspace(1e-6, 0.9, 37) * np.where(np.arange(37) % 2, 1.0, -1.0)
    f = landscapes.saddle(dim=6, negative=1, gamma=gamma)
    r = montecarlo.escape_times(
        f,
        optim.SGD(lr=lr),
        trials=y0.size,
        noise=0.0,
        radius=radius,
        start=starts_along_escape_direction(y0, f.dim),
        max_steps=10**4,
    )
    assert r.escaped.all()
    np.testing.assert_array_equal(r.steps, theory.gd_escape_steps(y0, lr, gamma, radius))
    # ... which is the continuous time ln(R/|y0|)/ln(1 + lr gamma), rounded up to the next step
    np.testing.assert_array_equal(r.steps, np.floor(theory.gd_escape_time(y0, lr, gamma, radius)) + 1)


def test_heavy_ball_escapes_by_its_growth_factor():
    lr, gamma, mu, radius = 0.05, 1.0, 0.9, 1.0
    y0 = np.geomspace(1e-8, 1e-2, 19)
    f = landscapes.saddle(dim=4, negative=1, gamma=gamma)
    r = montecarlo.escape_times(
        f,
        optim.SGD(lr=lr, momentum=mu),
        trials=y0.size,
        noise=0.0,
        radius=radius,
        start=starts_along_escape_direction(y0, f.dim),
        max_steps=10**4,
        record=1,
        record_every=1,
    )
    np.testing.assert_array_equal(r.steps, theory.heavy_ball_escape_steps(y0, lr, gamma, mu, radius))
    z = theory.heavy_ball_growth(lr, gamma, mu)
    assert z > theory.gd_growth(lr, gamma)  # momentum escapes faster than GD at the same lr
    y = r.trajectories[0, : r.steps[0] + 1, 0]
    # y_t = y0 (A z^t + B (mu/z)^t): the ratio of successive iterates tends to z geometrically in (mu/z^2)^t
    ratios = y[1:] / y[:-1]
    late = np.arange(1, ratios.size + 1) > 150
    np.testing.assert_allclose(ratios[late], z, rtol=1e-9)


def test_sgd_noise_escapes_the_exact_saddle_with_the_predicted_variance_growth():
    lr, gamma, sigma, trials = 0.05, 1.0, 0.1, 4000
    f = landscapes.saddle(dim=4, negative=1, gamma=gamma)
    for steps in (20, 100, 200):
        r = montecarlo.escape_times(
            f, optim.SGD(lr=lr), trials=trials, noise=sigma, start="saddle", criterion="none", max_steps=steps, seed=1
        )
        y = r.final[:, 0]
        expected = theory.sgd_saddle_variance(steps, lr, gamma, sigma, exact=True)
        # y_t is Gaussian with mean 0: the sample variance has relative standard error sqrt(2/(n-1))
        assert abs(y.var(ddof=1) - expected) < Z_BOUND * expected * math.sqrt(2.0 / (trials - 1))
        assert abs(y.mean()) < Z_BOUND * math.sqrt(expected / trials)
        # the stable coordinates settle at lr sigma^2 / (2 lambda - lr lambda^2)
        stable = theory.sgd_stable_variance(lr, 1.0, sigma, steps=steps)
        for i in range(1, f.dim):
            assert abs(r.final[:, i].var(ddof=1) - stable) < Z_BOUND * stable * math.sqrt(2.0 / (trials - 1))
    # and the reference's asymptotic law lr sigma^2/(2 gamma) (1 + lr gamma)^(2t) is the exact one up to O(lr gamma)
    ratio = theory.sgd_saddle_variance(200, lr, gamma, sigma) / theory.sgd_saddle_variance(
        200, lr, gamma, sigma, exact=False
    )
    assert abs(ratio - 1.0) < lr * gamma


def test_sgd_noise_escapes_from_the_exact_saddle_where_gd_cannot():
    f = landscapes.saddle(dim=10, negative=1, gamma=1.0)
    r = montecarlo.escape_times(
        f, optim.SGD(lr=0.01), trials=400, noise=0.01, radius=1.0, start="saddle", max_steps=20000, seed=0
    )
    assert r.escaped.all()
    # the median escape time against the theory's (Gaussian y_t with the exact variance, stable directions included)
    predicted = theory.sgd_median_escape_steps_exact_variance(0.01, 1.0, 0.01, 1.0, stable_curvatures=[1.0] * 9)
    # at the true median the number of trials escaped by then is Binomial(n, 1/2): within Z_BOUND standard errors
    n = r.steps.size
    margin = Z_BOUND * math.sqrt(n / 4.0)
    assert n / 2.0 - margin <= np.sum(r.steps <= predicted) and np.sum(r.steps < predicted) <= n / 2.0 + margin


def test_newton_is_attracted_to_the_saddle_while_saddle_free_newton_escapes():
    f = landscapes.saddle(dim=5, negative=2, gamma=0.5)
    kw = dict(trials=24, noise=0.0, radius=1.0, start=("ball", 0.1), max_steps=500, seed=2)
    newton = montecarlo.escape_times(f, optim.Newton(lr=0.5), **kw)
    assert newton.censored.all()
    assert np.abs(newton.final).max() < 1e-12  # (1 - lr)^500 of the start: at the saddle
    free = montecarlo.escape_times(f, optim.SaddleFreeNewton(lr=0.5), **kw)
    assert free.escaped.all()
    # |H|^-1 g = -y along a negative direction: the escape components grow by (1 + lr) per step
    assert free.steps.max() <= math.ceil(math.log(1.0 / 1e-4) / math.log(1.5)) + 1


def test_adam_escapes_a_shallow_saddle_faster_than_sgd_at_equal_lr():
    lr, gamma = 0.01, 0.01
    f = landscapes.saddle(dim=10, negative=1, gamma=gamma)
    kw = dict(trials=64, noise=0.0, radius=1.0, start=("ball", 1e-3), max_steps=3000, seed=4)
    adam = montecarlo.escape_times(f, optim.Adam(lr=lr), **kw)
    sgd = montecarlo.escape_times(f, optim.SGD(lr=lr), **kw)
    # Adam's step is about lr per component whatever the gradient's size: about R / lr steps. Bounds: each step
    # moves a component by at most lr (1 - b1) / sqrt(1 - b2) (Kingma & Ba 2015, section 2.1), the nine stable
    # components stay within max(start radius, that step) of 0, so the escape component must travel from below the
    # start radius r0 to sqrt(R^2 - 9 max(r0, step)^2); and while its gradient grows in one sign the bias-corrected
    # m_hat / sqrt(v_hat) is at least 1, so it needs at most R / lr steps.
    b1, b2 = 0.9, 0.999
    step = lr * (1 - b1) / math.sqrt(1 - b2)
    r0 = kw["start"][1]
    fewest = (math.sqrt(1.0 - (f.dim - 1) * max(r0, step) ** 2) - r0) / step
    assert adam.escaped.all() and fewest <= adam.steps.min() and adam.median() <= 1.0 / lr
    # ... while SGD's grows by 1 + lr gamma = 1.0001 per step: ln(R/|y0|)/ln(1.0001) > 60,000 steps
    assert not sgd.escaped.any()
    assert theory.gd_escape_time(1e-3, lr, gamma) > 20 * kw["max_steps"]


def test_saddle_scenario_runs_tables_and_draws_every_figure(tmp_path):
    from testbed.scenarios import common, saddle

    small = dict(
        trials=60,
        dense_trials=3,
        dim=4,
        max_steps=4000,
        dense_max_steps=50,
        sweep_lr=[0.05],
        sweep_noise=[0.01],
        sweep_dim=[3],
    )
    result = saddle.run(progress=False, **small)
    rows = {row["optimizer"]: row for row in result.tables["ecdf"]}
    assert set(rows) == set(saddle.OPTIMIZERS)
    assert rows["gd"]["escaped"] == 0.0 and rows["gd"]["never"] and rows["newton"]["escaped"] == 0.0
    assert rows["sgd"]["escaped"] == 1.0 and rows["gd_perturbed"]["escaped"] == 1.0
    # the theory's median m against the trials: the number of escapes by m is Binomial(n, 1/2) when m is the true
    # median, so it lies within Z_BOUND binomial standard errors of n/2 (below m: at most n/2 + that)
    for name in ("sgd", "gd_perturbed"):
        steps = result.arrays[f"ecdf_{name}_steps"]
        escaped = result.arrays[f"ecdf_{name}_escaped"].astype(bool)
        n, m = steps.size, rows[name]["theory"]
        margin = Z_BOUND * math.sqrt(n / 4.0)
        assert np.sum(escaped & (steps <= m)) >= n / 2.0 - margin, name
        assert np.sum(escaped & (steps < m)) <= n / 2.0 + margin, name
    exact = [r for r in result.tables["sweeps"] if r["series"] in ("gd_fixed", "heavy_ball_fixed")]
    assert exact and all(r["median"] == r["theory"] for r in exact)
    text = saddle.table(result)
    assert "median escape step (KM)" in text and "censored" in text and "never" in text
    assert set(common.draw(saddle, result)) == set(saddle.FIGURES)
    assert common.main(saddle, ["--quick", "--lr", "-1", "--out", str(tmp_path)]) == 2
