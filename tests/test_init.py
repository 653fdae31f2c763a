"""Initialisers: moments against their formulas, exact bounds, orthogonality, CPU = CUDA simulator, gains, errors."""

import math

import naive
import numba
import numpy as np
import pytest
from scipy import integrate

from testbed import activations, init
from testbed.rules import rng as rules

#: Standard errors allowed between a sample mean or variance and its formula (two-sided normal tail 7e-6).
Z_BOUND = 4.5
#: Shape of the matrices whose moments are measured: n = 300 * 700 = 210000 independent entries.
FAN_IN, FAN_OUT = 700, 300
#: Relative agreement of the predicted variance with the reference formula (both are closed forms).
FORMULA_RTOL = 1e-12
#: Orthonormality of the orthogonal initialiser (the brief's bound).
ORTHONORMAL_ATOL = 1e-12
#: A bound counts as reached when missing it has probability below exp(-REACH_EXPONENT).
REACH_EXPONENT = 25.0
#: Awkward fans for the CPU-vs-simulator checks: 7 * 13 = 91 entries = 23 Philox blocks, so with 10 threads per
#: block the CUDA grid has 3 blocks, the last one partial.
AWKWARD = (7, 13)

#: (name, parameters): every initialiser, its variants and its parameters.
CASES = [
    ("zeros", {}),
    ("ones", {}),
    ("constant", {"value": -0.25}),
    ("uniform", {"bound": 0.3}),
    ("normal", {"std": 0.2, "mean": 0.5}),
    ("truncated_normal", {}),
    ("truncated_normal", {"std": 0.5, "mean": 1.0, "a": -1.0, "b": 3.0}),
    ("truncated_normal", {"std": 0.5, "correct_variance": True}),
    ("truncated_normal", {"std": 2.0, "a": 2.5, "b": 6.0}),  # a tail interval: uniform proposals
    ("lecun_normal", {}),
    ("lecun_uniform", {}),
    ("glorot_normal", {}),
    ("glorot_uniform", {}),
    ("glorot_uniform", {"bias_input": True}),
    ("glorot_normal", {"gain": 5.0 / 3.0, "bias_input": True}),
    ("he_normal", {}),
    ("he_uniform", {"mode": "fan_out"}),
    ("he_normal", {"nonlinearity": "leaky_relu", "param": 0.2, "mode": "fan_out"}),
    ("he_uniform", {"nonlinearity": "tanh"}),
    ("he_normal", {"gain": 0.5, "mode": "fan_avg"}),
    ("variance_scaling", {}),
    ("variance_scaling", {"scale": 2.0, "mode": "fan_avg", "distribution": "uniform"}),
    ("variance_scaling", {"scale": 0.5, "mode": "fan_out", "distribution": "untruncated_normal"}),
]


def _id(case):
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_moments_match_the_formula(case):
    name, params = case
    mean, variance, mu4 = naive.moments(name, FAN_IN, FAN_OUT, **params)
    predicted_mean, predicted_variance = init.moments(name, FAN_IN, FAN_OUT, **params)
    assert init.variance(name, FAN_IN, FAN_OUT, **params) == predicted_variance
    np.testing.assert_allclose([predicted_mean, predicted_variance], [mean, variance], rtol=FORMULA_RTOL, atol=0)
    w = init.initialize(name, FAN_IN, FAN_OUT, seed=17, **params)
    assert w.shape == (FAN_OUT, FAN_IN) and w.dtype == np.float64
    n = w.size
    if variance == 0.0:
        assert np.all(w == mean)
        return
    # standard errors of the sample mean and of the sample variance: sqrt(var / n), sqrt((mu4 - var^2) / n)
    assert abs(w.mean() - mean) <= Z_BOUND * math.sqrt(variance / n)
    assert abs(w.var() - variance) <= Z_BOUND * math.sqrt((mu4 - variance**2) / n)


@pytest.mark.parametrize("case", [c for c in CASES if naive.distribution(c[0], 1, 1, **c[1])[0] != "normal"], ids=_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bounds_hold_exactly_and_are_reached(case, dtype):
    name, params = case
    lower, upper = naive.bounds(name, FAN_IN, FAN_OUT, **params)
    np.testing.assert_allclose(init.bounds(name, FAN_IN, FAN_OUT, **params), (lower, upper), rtol=FORMULA_RTOL)
    w = init.initialize(name, FAN_IN, FAN_OUT, seed=3, dtype=dtype, **params)
    assert dtype(lower) <= w.min() and w.max() <= dtype(upper)
    # each end is reached within 0.1% of the width wherever the law puts enough mass there for the miss
    # probability (1 - p)^n < exp(-n p) to be below exp(-REACH_EXPONENT)
    slack = 1e-3 * (upper - lower)
    near_lower, near_upper = naive.end_masses(name, FAN_IN, FAN_OUT, slack, **params)
    assert w.size * max(near_lower, near_upper) > REACH_EXPONENT or lower == upper
    if w.size * near_lower > REACH_EXPONENT:
        assert w.min() <= lower + slack
    if w.size * near_upper > REACH_EXPONENT:
        assert w.max() >= upper - slack


def test_uniform_bound_is_never_exceeded_by_rounding():
    # bounds that are not powers of two, where loc + scale (u - 1/2) could round past the bound if done naively
    for bound in (0.1, 1.0 / 3.0, math.sqrt(6.0 / 1001.0)):
        w = init.uniform(500, 400, bound=bound, seed=9)
        assert np.abs(w).max() <= bound
        w32 = init.uniform(500, 400, bound=bound, seed=9, dtype=np.float32)
        assert np.abs(w32).max() <= np.float32(bound)


def test_float32_is_the_rounded_float64_fill():
    for name, params in CASES:
        if name == "orthogonal":
            continue
        w64 = init.initialize(name, *AWKWARD, seed=4, **params)
        w32 = init.initialize(name, *AWKWARD, seed=4, dtype=np.float32, **params)
        np.testing.assert_array_equal(w32, w64.astype(np.float32))


def test_element_j_is_draw_offset_plus_j():
    std = math.sqrt(2.0 / 13)
    out = np.zeros(7 * 13 + 10)
    init.fill(out[5:96], "he_normal", 13, 7, seed=2**33 + 1, stream=4, step=6, offset=11)
    np.testing.assert_allclose(out[5:96], naive.normal_fill(91, 2**33 + 1, 4, 6, 11, std), rtol=1e-14, atol=0)
    assert np.all(out[:5] == 0.0) and np.all(out[96:] == 0.0)


@pytest.mark.parametrize("a,b,proposal", [(-1.5, 1.5, "normal"), (-0.3, 0.2, "uniform"), (2.0, 2.4, "uniform")])
def test_truncated_normal_is_rejection_keyed_by_attempt(a, b, proposal):
    # intervals where many draws need several attempts; the wrapper picks the proposal that accepts more often
    w = init.truncated_normal(13, 7, seed=5, a=a, b=b)
    expected = [naive.truncated_draw(5, 0, 0, j, a, b, proposal) for j in range(91)]
    np.testing.assert_allclose(w.ravel(), expected, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("shape", [(3, 7), (7, 3), (5, 5), (40, 64)])
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2.0)])
def test_orthogonal_is_orthonormal_and_is_qr_of_the_philox_gaussian(shape, gain):
    fan_out, fan_in = shape
    w = init.orthogonal(fan_in, fan_out, gain=gain, seed=8)
    assert w.shape == shape
    if fan_out <= fan_in:  # rows orthonormal
        np.testing.assert_allclose(w @ w.T / gain**2, np.eye(fan_out), rtol=0, atol=ORTHONORMAL_ATOL)
    else:  # columns orthonormal
        np.testing.assert_allclose(w.T @ w / gain**2, np.eye(fan_in), rtol=0, atol=ORTHONORMAL_ATOL)
    gaussian = init.normal(fan_in, fan_out, seed=8)
    np.testing.assert_allclose(w, naive.orthogonal(gaussian, gain), rtol=0, atol=1e-12)
    assert init.variance("orthogonal", fan_in, fan_out, gain=gain) == pytest.approx(np.mean(w**2), rel=1e-12)


PARITY_CASES = [
    ("zeros", {}),
    ("constant", {"value": 3.0}),
    ("uniform", {"bound": 0.7}),
    ("normal", {"std": 2.0, "mean": -1.0}),
    ("truncated_normal", {"a": -0.5, "b": 1.0, "correct_variance": True}),
    ("truncated_normal", {"a": 3.0, "b": 4.0}),
    ("glorot_uniform", {"bias_input": True}),
    ("he_normal", {"mode": "fan_out"}),
    ("variance_scaling", {}),
    ("orthogonal", {"gain": 2.0}),
]


@pytest.mark.parametrize("case", PARITY_CASES, ids=_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cuda_simulator_fills_the_identical_matrix(case, dtype):
    name, params = case
    cpu = init.initialize(name, *AWKWARD, seed=2**40 + 7, stream=2, dtype=dtype, **params)
    gpu = init.initialize(name, *AWKWARD, seed=2**40 + 7, stream=2, dtype=dtype, backend="cuda", **params)
    assert gpu.dtype == dtype and gpu.shape == cpu.shape
    np.testing.assert_array_equal(cpu, gpu)


def test_cuda_simulator_fills_a_slice_of_a_flat_device_array():
    from numba import cuda

    flat = np.full(200, np.nan)
    init.fill(flat[9:100], "truncated_normal", 13, 7, seed=1, stream=3, offset=9)
    device = cuda.to_device(np.full(200, np.nan))
    init.fill(device[9:100], "truncated_normal", 13, 7, seed=1, stream=3, offset=9, backend="cuda")
    np.testing.assert_array_equal(device.copy_to_host(), flat)
    host = np.full(200, np.nan)
    init.fill(host[9:100], "truncated_normal", 13, 7, seed=1, stream=3, offset=9, backend="cuda")
    np.testing.assert_array_equal(host, flat)


def test_identical_for_one_and_two_threads():
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = [init.he_normal(100, 91, seed=12), init.truncated_normal(100, 91, seed=12, a=-1.0, b=0.5)]
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = [init.he_normal(100, 91, seed=12), init.truncated_normal(100, 91, seed=12, a=-1.0, b=0.5)]
    finally:
        numba.set_num_threads(previous)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_seeds_and_streams_give_different_matrices_and_aliases_the_same():
    base = init.kaiming_normal(20, 10, seed=1)
    np.testing.assert_array_equal(base, init.he_normal(20, 10, seed=1))
    np.testing.assert_array_equal(base, init.initialize("kaiming_normal", 20, 10, seed=1))
    assert not np.any(base == init.he_normal(20, 10, seed=2))
    assert not np.any(base == init.he_normal(20, 10, seed=1, stream=1))
    np.testing.assert_array_equal(init.xavier_uniform(20, 10, seed=3), init.glorot_uniform(20, 10, seed=3))
    assert init.trunc_normal is init.truncated_normal and init.xavier_normal is init.glorot_normal
    assert init.kaiming_uniform is init.he_uniform


@pytest.mark.parametrize(
    "nonlinearity,param",
    [
        ("linear", None),
        ("conv2d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", 1.0),
        ("selu", None),
    ],
)
def test_gains_match_pytorchs_table(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        naive.gain("linear" if nonlinearity == "conv2d" else nonlinearity, param), rel=1e-15
    )


@pytest.mark.parametrize(
    "nonlinearity,param", [("linear", None), ("relu", None), ("leaky_relu", 0.01), ("leaky_relu", 0.3)]
)
def test_gain_restores_the_second_moment(nonlinearity, param):
    """gain^2 E[phi(z)^2] = 1 for z ~ N(0, 1), e.g. E[relu(z)^2] = 1/2 (He et al. 2015), by quadrature."""
    phi = activations.get(nonlinearity, **({} if param is None else {"negative_slope": param}))
    second_moment = sum(
        integrate.quad(
            lambda z: float(phi(z)) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi), lo, hi, epsabs=0, epsrel=1e-12
        )[0]
        for lo, hi in ((-math.inf, 0.0), (0.0, math.inf))
    )
    assert init.calculate_gain(nonlinearity, param) ** 2 * second_moment == pytest.approx(1.0, rel=1e-10)


def test_he_variance_is_the_gain_over_the_fan():
    assert init.variance("he_normal", 50, 20) == pytest.approx(2.0 / 50)
    assert init.variance("he_uniform", 50, 20, mode="fan_out") == pytest.approx(2.0 / 20)
    assert init.variance("kaiming_normal", 50, 20, nonlinearity="tanh") == pytest.approx((5 / 3) ** 2 / 50)
    assert init.variance("glorot_uniform", 50, 20, bias_input=True) == pytest.approx(2.0 / 71)
    assert init.variance("uniform", 50, 20, bound=50**-0.5) == pytest.approx(1.0 / (3 * 50))
    assert init.bounds("glorot_uniform", 50, 20, bias_input=True)[1] == pytest.approx(math.sqrt(6.0 / 71))


def test_docstrings_state_the_variance_and_the_paper():
    papers = {
        "lecun_normal": "LeCun",
        "glorot_uniform": "Glorot & Bengio 2010",
        "he_normal": "He, Zhang",
        "orthogonal": "Saxe",
    }
    for name in init.names():
        doc = getattr(init, name).__doc__
        assert "variance" in doc or "orthonormal" in doc, name
        if name in papers:
            assert papers[name] in doc, name


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: init.initialize("he_norml", 3, 4), "did you mean 'he_normal'"),
        (lambda: init.initialize(["he_normal"], 3, 4), "unknown initialiser"),
        (lambda: init.initialize("he_normal", 0, 4), "fan_in"),
        (lambda: init.initialize("he_normal", 3, 2.0), "fan_out"),
        (lambda: init.initialize("he_normal", True, 4), "fan_in"),
        (lambda: init.normal(3, 4, std=-1.0), "std"),
        (lambda: init.normal(3, 4, std=float("nan")), "std"),
        (lambda: init.normal(3, 4, mean=float("inf")), "mean"),
        (lambda: init.uniform(3, 4, bound=-0.1), "bound"),
        (lambda: init.orthogonal(3, 4, gain=-1.0), "gain"),
        (lambda: init.he_normal(3, 4, gain=float("inf")), "gain"),
        (lambda: init.he_normal(3, 4, mode="fan_middle"), "mode"),
        (lambda: init.he_normal(3, 4, nonlinearity="rleu"), "did you mean 'relu'"),
        (lambda: init.he_normal(3, 4, gain=1.0, param=0.1), "param"),
        (lambda: init.truncated_normal(3, 4, a=1.0, b=-1.0), "a must be below b"),
        (lambda: init.truncated_normal(3, 4, a=10.0, b=1e6), "too little mass"),
        (lambda: init.truncated_normal(3, 4, correct_variance="yes"), "correct_variance"),
        (lambda: init.glorot_uniform(3, 4, bias_input=1), "bias_input"),
        (lambda: init.variance_scaling(3, 4, scale=0.0), "scale"),
        (lambda: init.variance_scaling(3, 4, distribution="normal"), "distribution"),
        (lambda: init.constant(3, 4), "needs the parameter value"),
        (lambda: init.he_normal(3, 4, std=1.0), "valid parameters: mode, nonlinearity, param, gain"),
        (lambda: init.zeros(3, 4, dtype=np.int32), "dtype"),
        (lambda: init.zeros(3, 4, backend="tpu"), "backend"),
        (lambda: init.zeros(3, 4, seed=-1), "seed"),
        (lambda: init.fill(np.zeros(11), "zeros", 3, 4), "fan_in \\* fan_out"),
        (lambda: init.fill(np.zeros((4, 6))[:, :3], "zeros", 3, 4), "C-contiguous"),
        (lambda: init.fill(np.zeros(12), "zeros", 3, 4, offset=-1), "offset"),
        (lambda: init.fill([0.0] * 12, "zeros", 3, 4), "out must be"),
        (lambda: init.calculate_gain("relu", 0.1), "param"),
        (lambda: init.calculate_gain("softmax"), "nonlinearity"),
        (lambda: init.calculate_gain("leaky_relu", float("nan")), "param"),
        (lambda: init.variance("glorot_uniform", 3, -4), "fan_out"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ValueError) as error:
        init.initialize("glorot", 3, 4)
    for name in ("glorot_uniform", "he_normal", "orthogonal", "xavier_uniform"):
        assert name in str(error.value)


def test_first_normal_draw_agrees_with_the_plain_rule():
    # the CPU kernel's vectorised inner loop and the scalar rule give the same bits
    w = init.normal(4096, 3, seed=21)
    assert [rules.normal(21, 0, 0, j) for j in (0, 1, 2, 3, 4095, 12287)] == list(w.ravel()[[0, 1, 2, 3, 4095, 12287]])
