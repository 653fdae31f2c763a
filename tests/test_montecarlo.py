"""The Monte Carlo escape-time kernels: against NumPy references, CPU = CUDA (simulator), thread counts, the noise
generator, censoring, divergence, Kaplan-Meier, and bad input."""

import math

import naive
import numba
import numpy as np
import pytest

from testbed import landscapes, montecarlo, optim, statistics
from testbed.rules import rng as rng_rules

#: Standard errors allowed between a sample moment and its exact value.
Z_BOUND = 4.5
#: Relative agreement between the kernels and the NumPy references (different but equivalent operation order).
RTOL = 1e-9
#: Trials of the small reference comparisons: several CUDA blocks of 10 threads and a partial one, and on the CPU
#: more trials than a chunk has lanes (kernels.CPU_LANES, 32), so that lanes take new trials as theirs end.
SMALL_TRIALS = 37
#: The reference's noise (NumPy's log, cos, sin) against the rules' polynomial Box-Muller: a few ulp of |z| < 7.
NOISE_ATOL = 1e-14


def saddle_starts(trials, dim, radius):
    """Most starts at the saddle (escape at random times with noise, or censored); every fifth outside the escape
    ball (escapes at t = 0 and never takes a lane)."""
    starts = np.zeros((trials, dim))
    starts[::5, 0] = 2.0 * radius
    return starts


def ravine_starts(trials):
    """On the ravine of kappa 100 with lr 0.03 (lr kappa = 3 > 2): starts on the flat axis converge, at a time
    that grows with their distance; every third start is off it and diverges; every seventh is converged already."""
    starts = np.zeros((trials, 2))
    starts[:, 0] = np.geomspace(2e-3, 1.0, trials)
    starts[::3, 1] = 0.5
    starts[::7] = 1e-4
    return starts


# ----------------------------------------------------------------------------------------------------------
# The noise generator


def test_noise_is_draw_i_of_the_trials_stream():
    """Coordinate i of trial k's noise at step t is draw i of Philox stream k at step t (testbed.rules.rng), as the
    reference's independent Philox and Box-Muller (NumPy's log, cos and sin: a few ulp apart) draw it."""
    seed, trial, step, dim = 11, 3, 4, 7
    expected = [rng_rules.normal(np.uint64(seed), trial, step, i) for i in range(dim)]
    np.testing.assert_allclose(naive.gaussian_noise(seed, trial, step, dim), expected, rtol=0, atol=NOISE_ATOL)


def test_noise_draws_are_standard_normal():
    n_blocks = 5000
    z = np.array([rng_rules.normal4(np.uint64(11), k % 97, 1 + k // 97, 0) for k in range(n_blocks)]).ravel()
    n = z.size
    assert abs(z.mean()) < Z_BOUND / math.sqrt(n)
    assert abs(z.var() - 1.0) < Z_BOUND * math.sqrt(2.0 / n)


# ----------------------------------------------------------------------------------------------------------
# Against the NumPy reference


def test_small_trials_outnumber_the_cpu_lanes():
    from testbed.kernels import montecarlo as kernels

    assert SMALL_TRIALS > kernels.CPU_LANES


@pytest.mark.parametrize(
    "make_optimizer, reference",
    [
        (lambda: optim.SGD(lr=0.05), naive.sgd_update(0.05)),
        (lambda: optim.SGD(lr=0.05, momentum=0.9), naive.heavy_ball_update(0.05, 0.9)),
        (lambda: optim.Adam(lr=0.05), naive.adam_update(0.05)),
    ],
    ids=["sgd", "heavy_ball", "adam"],
)
def test_kernel_matches_numpy_reference(make_optimizer, reference):
    f = landscapes.saddle(dim=6, negative=2, gamma=0.5)
    kw = dict(trials=SMALL_TRIALS, noise=0.05, radius=1.0, max_steps=200, seed=5)
    r = montecarlo.escape_times(f, make_optimizer(), start=("ball", 0.05), **kw)
    start = montecarlo._starts(f, ("ball", 0.05), SMALL_TRIALS, 5)
    steps, escaped, finals = naive.simulate(naive.Quadratic.saddle(6, 2, 0.5), reference, start, **kw)
    np.testing.assert_array_equal(r.steps, steps)
    np.testing.assert_array_equal(r.escaped, escaped)
    np.testing.assert_allclose(r.final, finals, rtol=RTOL)
    assert r.escaped.any() and (r.steps > 1).all()


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
@pytest.mark.parametrize("radius", [2.0, 0.5])
def test_escape_radius_other_than_one_matches_the_reference(radius, backend):
    """|w| > R, not |w|^2 > R nor |w| > R^2: with R = 1 every such slip goes unseen. Most trials start at the
    saddle (escape by the noise, in the lanes' test); every third starts still inside the ball at 0.8 R and every
    fourth outside it at 1.2 R (the test at t = 0), on a stable coordinate."""
    f = landscapes.saddle(dim=5, negative=1, gamma=1.0)
    start = np.zeros((SMALL_TRIALS, 5))
    start[::3, 2] = 0.8 * radius
    start[::4, 3] = 1.2 * radius
    kw = dict(trials=SMALL_TRIALS, noise=0.1, radius=radius, max_steps=100, seed=13)
    r = montecarlo.escape_times(f, optim.SGD(lr=0.3), start=start, backend=backend, **kw)
    steps, escaped, finals = naive.simulate(naive.Quadratic.saddle(5), naive.sgd_update(0.3), start, **kw)
    np.testing.assert_array_equal(r.steps, steps)
    np.testing.assert_array_equal(r.escaped, escaped)
    np.testing.assert_allclose(r.final, finals, rtol=RTOL)
    assert r.escaped.all() and (r.steps == 0).sum() == len(range(0, SMALL_TRIALS, 4))
    assert np.all(np.linalg.norm(r.final, axis=1) > radius)


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_converge_radius_other_than_one_matches_the_reference(backend):
    """Criterion "converge": |w - center| < R, at t = 0 (every fifth start) and after each step."""
    radius = 0.05
    f = landscapes.ravine(kappa=10.0)
    start = np.stack([np.geomspace(0.1, 2.0, SMALL_TRIALS), np.linspace(-0.5, 0.5, SMALL_TRIALS)], axis=1)
    start[::5] = 0.7 * radius
    kw = dict(trials=SMALL_TRIALS, noise=0.0, radius=radius, max_steps=300, seed=1)
    r = montecarlo.escape_times(f, optim.SGD(lr=0.05), start=start, criterion="converge", backend=backend, **kw)
    steps, escaped, finals = naive.simulate(
        naive.Quadratic.ravine(10.0), naive.sgd_update(0.05), start, converge=True, **kw
    )
    np.testing.assert_array_equal(r.steps, steps)
    np.testing.assert_array_equal(r.escaped, escaped)
    np.testing.assert_allclose(r.final, finals, rtol=RTOL)
    assert r.escaped.all() and (r.steps == 0).sum() == len(range(0, SMALL_TRIALS, 5)) and r.steps.max() > 20


@pytest.mark.parametrize("batch", [3, 6])
def test_minibatch_noise_matches_the_reference(batch):
    """noise = sigma mean_{k in B} a_k, the batch drawn with replacement by Philox uniforms (a partial block of
    four draws at batch 3, one and a half at 6)."""
    f = landscapes.saddle(dim=5, negative=1, gamma=1.0)
    n_samples, seed = 9, 21
    kw = dict(trials=SMALL_TRIALS, noise=0.2, radius=1.0, max_steps=100, seed=seed)
    start = np.zeros((SMALL_TRIALS, 5))
    r = montecarlo.escape_times(
        f, optim.SGD(lr=0.3), start=start, noise_kind="minibatch", samples=n_samples, batch=batch, **kw
    )
    samples = naive.finite_sum_samples(seed, n_samples, 5, montecarlo.HOST_STREAM, montecarlo._STEP_SAMPLES)
    steps, escaped, finals = naive.simulate(
        naive.Quadratic.saddle(5), naive.sgd_update(0.3), start, minibatch=(samples, batch), **kw
    )
    np.testing.assert_array_equal(r.steps, steps)
    np.testing.assert_array_equal(r.escaped, escaped)
    np.testing.assert_allclose(r.final, finals, rtol=RTOL)
    assert r.escaped.all()


@pytest.mark.parametrize("saddle_free", [False, True], ids=["newton", "saddle_free_newton"])
def test_dense_newton_trials_with_noise_and_damping_match_the_reference(saddle_free):
    """The dense kernel: gradient noise on every coordinate (dim 6: a whole Philox block and half of the next)
    and a damped solve, against np.linalg.solve of the reference."""
    f = landscapes.saddle(dim=6, negative=2, gamma=0.5)
    lr, damping = 0.3, 0.2
    make = optim.SaddleFreeNewton if saddle_free else optim.Newton
    kw = dict(trials=9, noise=0.05, radius=1.0, max_steps=40, seed=8)
    start = montecarlo._starts(f, ("ball", 0.1), 9, 8)
    r = montecarlo.escape_times(f, make(lr=lr, damping=damping), start=start, **kw)
    quadratic = naive.Quadratic.saddle(6, 2, 0.5)
    reference = naive.newton_update(quadratic.hessian, lr, damping, saddle_free=saddle_free)
    steps, escaped, finals = naive.simulate(quadratic, reference, start, **kw)
    np.testing.assert_array_equal(r.steps, steps)
    np.testing.assert_allclose(r.final, finals, rtol=RTOL, atol=1e-14)
    assert r.escaped.any() if saddle_free else not r.escaped.any()


def test_recorded_points_are_labelled_with_their_steps():
    """trajectories[k] is the iterate after trajectory_steps[k] steps: on a quadratic without noise GD gives
    w_t = (1 - lr lambda)^t w_0 per coordinate, so each recorded point must sit at its label's power."""
    f = landscapes.saddle(dim=3, negative=1, gamma=1.0)
    lr, start = 0.1, np.array([[1e-3, 0.5, -0.25]])
    r = montecarlo.escape_times(
        f, optim.SGD(lr=lr), trials=1, start=start, noise=0.0, radius=1.0, max_steps=50, record=1, record_every=7
    )
    labels = r.trajectory_steps
    np.testing.assert_array_equal(labels, np.arange(50 // 7 + 1) * 7)  # t = 0, 7, ..., 49 of a 50-step budget
    assert r.censored[0]  # 1e-3 * 1.1^50 < 1: the run lasts the whole budget
    lam = np.array([-1.0, 1.0, 1.0])
    reached = labels <= r.steps[0]
    expected = (1.0 - lr * lam) ** labels[reached, None] * start[0]
    np.testing.assert_allclose(r.trajectories[0, reached], expected, rtol=1e-12)


def test_ball_start_is_uniform_in_the_ball():
    f = landscapes.saddle(dim=3)
    starts = montecarlo._starts(f, ("ball", 2.0), 4000, 1)
    radii = np.linalg.norm(starts, axis=1)
    assert radii.max() <= 2.0
    # |w|^d / r^d is uniform on (0, 1): mean 1/2, variance 1/12
    u = (radii / 2.0) ** 3
    assert abs(u.mean() - 0.5) < Z_BOUND * math.sqrt(1 / 12 / u.size)
    assert np.all(np.abs(starts.mean(axis=0)) < Z_BOUND * 2.0 / math.sqrt(5 * u.size))


# ----------------------------------------------------------------------------------------------------------
# CPU = CUDA (simulator), 1 thread = 2 threads


CASES = {
    "saddle_sgd_gaussian": (
        lambda: landscapes.saddle(dim=5),
        lambda: optim.SGD(lr=0.05),
        dict(noise=0.1, start=("ball", 0.05)),
    ),
    "saddle_adam_minibatch": (
        lambda: landscapes.saddle(dim=5),
        lambda: optim.Adam(lr=0.05),
        dict(noise=0.2, noise_kind="minibatch", samples=9, batch=3, start="saddle"),
    ),
    "tanh_plateau_loss": (
        lambda: landscapes.tanh_unit(start=2.0),
        lambda: optim.SGD(lr=2.0),
        dict(noise=0.01, criterion="loss", delta=0.05),
    ),
    "ravine_momentum_converge": (
        lambda: landscapes.ravine(kappa=10.0),
        lambda: optim.SGD(lr=0.05, momentum=0.5),
        dict(noise=0.0, criterion="converge", radius=1e-3),
    ),
    "reddi_adam_box": (
        lambda: landscapes.reddi(),
        lambda: optim.Adam(lr=0.1, betas=(0.0, 0.1)),
        dict(noise=0.0, criterion="none"),
    ),
    "rosenbrock_rmsprop_momentum": (
        lambda: landscapes.rosenbrock(),
        lambda: optim.RMSProp(lr=0.01, momentum=0.9),
        dict(noise=0.0, criterion="none"),
    ),
    "saddle_sgd_mixed_starts": (
        lambda: landscapes.saddle(dim=3),
        lambda: optim.SGD(lr=0.5),
        dict(noise=0.05, start=saddle_starts(SMALL_TRIALS, 3, 1.0)),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cpu_and_cuda_simulator_identical(case):
    make_landscape, make_optimizer, kw = CASES[case]
    common = dict(trials=SMALL_TRIALS, max_steps=60, seed=7, record=3, record_every=7)
    common.update({k: v for k, v in kw.items()})
    a = montecarlo.escape_times(make_landscape(), make_optimizer(), backend="cpu", **common)
    b = montecarlo.escape_times(make_landscape(), make_optimizer(), backend="cuda", **common)
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.escaped, b.escaped)
    np.testing.assert_array_equal(a.diverged, b.diverged)
    np.testing.assert_array_equal(a.final, b.final)
    np.testing.assert_array_equal(a.trajectories, b.trajectories)


def test_one_and_two_threads_identical():
    f = landscapes.saddle(dim=10)
    kw = dict(trials=203, noise=0.05, radius=1.0, max_steps=400, seed=3, record=2)
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = montecarlo.escape_times(f, optim.SGD(lr=0.05), **kw)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = montecarlo.escape_times(f, optim.SGD(lr=0.05), **kw)
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(one.steps, two.steps)
    np.testing.assert_array_equal(one.final, two.final)
    np.testing.assert_array_equal(one.trajectories, two.trajectories)
    assert one.escaped.all()


#: Workloads of the schedule test: together they end trials every way (escape at t = 0, escape later,
#: censoring, divergence), with and without noise.
SCHEDULE_WORKLOADS = {
    "saddle_noise": (
        lambda: landscapes.saddle(dim=3),
        lambda: optim.SGD(lr=0.5),
        dict(trials=97, noise=0.05, radius=1.0, max_steps=14, start=saddle_starts(97, 3, 1.0)),
        {"escaped_at_start", "escaped", "censored"},
    ),
    "ravine_converge_or_diverge": (
        lambda: landscapes.ravine(kappa=100.0),
        lambda: optim.SGD(lr=0.03),
        dict(trials=61, noise=0.0, radius=1e-3, criterion="converge", max_steps=2000, start=ravine_starts(61)),
        {"escaped_at_start", "escaped", "diverged"},
    ),
}


def outcomes(result):
    """The ways the trials of ``result`` ended."""
    found = {
        "escaped_at_start": (result.escaped & (result.steps == 0)).any(),
        "escaped": (result.escaped & (result.steps > 0)).any(),
        "censored": result.censored.any(),
        "diverged": result.diverged.any(),
    }
    return {name for name, present in found.items() if present}


@pytest.mark.parametrize("workload", list(SCHEDULE_WORKLOADS))
@pytest.mark.parametrize("lanes, chunks_per_thread", [(3, 1), (16, 2), (64, 1)])
def test_cpu_schedule_does_not_change_any_trial(monkeypatch, workload, lanes, chunks_per_thread):
    """Lanes per chunk and chunks per thread (on 2 threads) against the plainest schedule: one trial at a time,
    on one lane, one thread.

    A lane that takes a new trial, skips one that escaped at t = 0, or idles at the end of its chunk must not
    change a single bit of any trial.
    """
    from testbed.kernels import montecarlo as kernels

    make_landscape, make_optimizer, kw, expected_outcomes = SCHEDULE_WORKLOADS[workload]
    kw = dict(kw, seed=2, record=kw["trials"], record_every=3)
    monkeypatch.setattr(kernels, "MIN_TRIALS_PER_LANE", 1)
    monkeypatch.setattr(kernels, "CPU_LANES", 1)
    monkeypatch.setattr(kernels, "CHUNKS_PER_THREAD", 1)
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        plain = montecarlo.escape_times(make_landscape(), make_optimizer(), **kw)
        monkeypatch.setattr(kernels, "CPU_LANES", lanes)
        monkeypatch.setattr(kernels, "CHUNKS_PER_THREAD", chunks_per_thread)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        other = montecarlo.escape_times(make_landscape(), make_optimizer(), **kw)
    finally:
        numba.set_num_threads(previous)
    assert outcomes(plain) == expected_outcomes
    np.testing.assert_array_equal(other.steps, plain.steps)
    np.testing.assert_array_equal(other.escaped, plain.escaped)
    np.testing.assert_array_equal(other.diverged, plain.diverged)
    np.testing.assert_array_equal(other.final, plain.final)
    np.testing.assert_array_equal(other.trajectories, plain.trajectories)


def test_cpu_chunks_give_every_thread_as_many_chunks():
    """More chunks than threads come in whole rounds (3 chunks on 2 threads left a core idle for a third of each
    slice), each with at least MIN_TRIALS_PER_LANE trials per lane, at most CHUNKS_PER_THREAD per thread."""
    from testbed.kernels import montecarlo as kernels

    per_chunk = kernels.MIN_TRIALS_PER_LANE * kernels.CPU_LANES
    for threads in (1, 2, 3, 4):
        for trials in (1, per_chunk - 1, 3 * per_chunk, 3 * per_chunk + 7, 5 * per_chunk, 2000, 20000, 10**6):
            chunks = kernels.cpu_chunks(trials, threads)
            assert 1 <= chunks <= kernels.CHUNKS_PER_THREAD * threads
            assert chunks == 1 or trials // chunks >= per_chunk
            assert chunks <= threads or chunks % threads == 0, (trials, threads, chunks)
    assert kernels.cpu_chunks(2000, 2) == 2 and kernels.cpu_chunks(20000, 2) == 8


# ----------------------------------------------------------------------------------------------------------
# Censoring, divergence, trajectories, criteria


#: Noiseless runs from one start: GD held at the saddle (censored), the running-average momentum escaping from a
#: point (a recorded path), Newton on the Rosenbrock function (the dense kernel; a Hessian that changes).
IDENTICAL_TRIALS = {
    "gd_at_the_saddle": (lambda: landscapes.saddle(dim=4), lambda: optim.SGD(lr=0.1), "saddle"),
    "momentum_escaping": (
        lambda: landscapes.saddle(dim=3),
        lambda: optim.Momentum(lr=0.1, beta=0.9),
        np.array([1e-3, 0.5, -0.25]),
    ),
    "newton_on_rosenbrock": (
        lambda: landscapes.rosenbrock(dim=3),
        lambda: optim.Newton(lr=0.2),
        np.array([-0.5, 0.8, 0.3]),
    ),
}


@pytest.mark.parametrize("case", list(IDENTICAL_TRIALS))
def test_noiseless_trials_from_one_start_run_once_with_every_trials_bits(monkeypatch, case):
    """Trials without noise from one start run once (one row reaches the kernel) and each gets the outcome it has
    when every trial runs: the same trials beside one other start, all of them simulated, bit for bit."""
    make_landscape, make_optimizer, start = IDENTICAL_TRIALS[case]
    f = make_landscape()
    trials = 9
    kw = dict(noise=0.0, radius=1.0, max_steps=120, seed=5, record=3, record_every=4)
    starts = np.tile(f.start if isinstance(start, str) else start, (trials + 1, 1))
    starts[-1] += 0.125  # another start: every trial is simulated
    every = montecarlo.escape_times(f, make_optimizer(), trials=trials + 1, start=starts, **kw)

    from testbed.kernels import montecarlo as kernels

    rows = []
    for name, position in (("rule_trials", 4), ("dense_trials", 6)):  # where each launcher takes the buffers
        launcher = getattr(kernels, name)

        def counted(*args, launcher=launcher, position=position):
            rows.append(args[position].w.shape[0])
            return launcher(*args)

        monkeypatch.setattr(kernels, name, counted)
    once = montecarlo.escape_times(f, make_optimizer(), trials=trials, start=start, **kw)
    assert rows == [1]
    np.testing.assert_array_equal(once.steps, every.steps[:trials])
    np.testing.assert_array_equal(once.escaped, every.escaped[:trials])
    np.testing.assert_array_equal(once.diverged, every.diverged[:trials])
    np.testing.assert_array_equal(once.final.view(np.uint64), every.final[:trials].view(np.uint64))
    np.testing.assert_array_equal(once.trajectories, every.trajectories)
    assert once.final.shape == (trials, f.dim) and once.trajectories.shape == every.trajectories.shape


def test_censored_trials_are_flagged_not_counted_as_escapes():
    r = montecarlo.escape_times(landscapes.saddle(dim=4), optim.SGD(lr=0.1), trials=12, noise=0.0, max_steps=50)
    assert not r.escaped.any() and not r.diverged.any() and r.censored.all()
    assert (r.steps == 50).all()
    assert r.median() == math.inf and r.fraction_escaped == 0.0
    assert r.escape_steps().size == 0


def test_divergent_trials_are_counted_and_kept_out_of_the_statistics():
    # lr kappa = 3 > 2 on the ravine's steep axis: GD diverges; half the starts are exactly on the flat axis
    f = landscapes.ravine(kappa=100.0)
    start = np.zeros((10, 2))
    start[:, 0] = 0.5
    start[5:, 1] = 0.5
    r = montecarlo.escape_times(
        f, optim.SGD(lr=0.03), trials=10, start=start, radius=1e-3, criterion="converge", max_steps=5000
    )
    assert r.n_diverged == 5 and r.diverged[5:].all()
    assert r.escaped[:5].all()
    assert np.isfinite(r.median()) and r.median() == np.median(r.steps[:5])
    assert (r.steps[5:] < 5000).all()  # the step where the iterate stopped being finite
    summary = r.summary()
    assert summary["diverged"] == 5 and np.isfinite(summary["mean_of_escaped"])


def test_trajectories_start_at_the_start_and_stop_with_the_trial():
    f = landscapes.saddle(dim=3)
    start = np.array([0.1, 0.2, 0.3])
    r = montecarlo.escape_times(
        f, optim.SGD(lr=0.5), trials=4, start=start, radius=1.0, max_steps=100, record=2, record_every=1
    )
    assert r.trajectories.shape == (2, 101, 3)
    np.testing.assert_array_equal(r.trajectories[:, 0], np.tile(start, (2, 1)))
    t_escape = r.steps[0]
    np.testing.assert_array_equal(r.trajectories[0, t_escape], r.final[0])
    assert np.isnan(r.trajectories[0, t_escape + 1 :]).all()
    # GD on a quadratic: w_t = (1 - lr lambda)^t w_0 coordinate by coordinate
    np.testing.assert_allclose(r.trajectories[0, 3], start * (1 - 0.5 * f.params) ** 3, rtol=1e-14)


def test_loss_criterion_on_the_tanh_plateau():
    f = landscapes.tanh_unit(start=3.0, target=-0.5)
    r = montecarlo.escape_times(
        f, optim.SGD(lr=1.0), trials=3, start="saddle", criterion="loss", delta=0.1, max_steps=10**5
    )
    assert r.escaped.all()
    t = r.steps[0]
    before = montecarlo.escape_times(f, optim.SGD(lr=1.0), trials=1, criterion="none", max_steps=t - 1).final[0]
    assert f.value(r.final[0]) < f.value(f.start) - 0.1 <= f.value(before)


def test_reddi_iterates_stay_in_the_box():
    r = montecarlo.escape_times(
        landscapes.reddi(), optim.SGD(lr=1.0), trials=2, criterion="none", max_steps=30, record=1, record_every=1
    )
    assert np.all(np.abs(r.trajectories) <= 1.0)
    assert r.censored.all()


# ----------------------------------------------------------------------------------------------------------
# Kaplan-Meier


def test_kaplan_meier_by_hand():
    times = np.array([2, 3, 3, 5, 8, 8, 9])
    observed = np.array([1, 1, 0, 1, 0, 1, 0], bool)
    event_times, survival = statistics.kaplan_meier(times, observed)
    np.testing.assert_array_equal(event_times, [2, 3, 5, 8])
    expected = np.cumprod([1 - 1 / 7, 1 - 1 / 6, 1 - 1 / 4, 1 - 1 / 3])
    np.testing.assert_allclose(survival, expected)
    assert statistics.km_median(times, observed) == 8.0  # S = 6/7, 5/7, 15/28, 5/14
    assert statistics.km_median(times, observed) == naive.kaplan_meier_median(times, observed)
    np.testing.assert_allclose(
        statistics.survival_at(times, observed, [0, 2, 4, 100]), [1.0, expected[0], expected[1], expected[3]]
    )


def test_kaplan_meier_median_matches_textbook_loop_on_random_data(rng):
    times = rng.integers(1, 50, size=300)
    observed = rng.random(300) < 0.6
    assert statistics.km_median(times, observed) == naive.kaplan_meier_median(times, observed)
    assert statistics.km_median(times, np.zeros(300, bool)) == math.inf


# ----------------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(radius=0.0), "radius"),
        (dict(radius=-1.0), "radius"),
        (dict(noise=-0.1), "noise"),
        (dict(max_steps=0), "max_steps"),
        (dict(max_steps=-5), "max_steps"),
        (dict(trials=0), "trials"),
        (dict(start=np.zeros(3)), "start"),
        (dict(start=np.zeros((2, 10))), "start"),
        (dict(start="middle"), "start"),
        (dict(start=("ball", -1.0)), "start radius"),
        (dict(criterion="exit"), "criterion"),
        (dict(criterion="loss"), "delta"),
        (dict(noise=0.1, noise_kind="laplace"), "noise_kind"),
        (dict(seed=-1), "seed"),
        (dict(backend="tpu"), "backend"),
    ],
)
def test_bad_input_names_the_argument(kwargs, name):
    args = dict(trials=4, max_steps=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        montecarlo.escape_times(landscapes.saddle(dim=10), optim.SGD(lr=0.1), **args)


def test_unknown_landscape_and_optimizer_are_named():
    with pytest.raises(ValueError, match="landscape 'sadle'.*did you mean 'saddle'"):
        montecarlo.escape_times("sadle", optim.SGD(lr=0.1), trials=2, max_steps=2)
    with pytest.raises(ValueError, match="optimizer 'adamm'"):
        montecarlo.escape_times("saddle", "adamm", trials=2, max_steps=2)
    with pytest.raises(ValueError, match="optimizer"):
        montecarlo.escape_times("saddle", object(), trials=2, max_steps=2)


def test_newton_on_cuda_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="optimizer: Newton.*backend='cpu'"):
        montecarlo.escape_times("saddle", optim.Newton(lr=1.0), trials=2, max_steps=2, backend="cuda")
