"""testbed.nn: forward and backward passes and their statistics against NumPy references, finite differences,
the CUDA simulator against the CPU, LSUV, the finite-range reports, the tanh rule, bad input, and the passes on
several threads (the forward layer in row parts, a backward step's two products side by side)."""

import math

import naive
import numba
import numpy as np
import pytest

from testbed import activations, nn
from testbed import backend as backends
from testbed import rng as rng_module
from testbed.kernels import nn as kernels
from testbed.kernels.targets import for_cpu
from testbed.nn import mlp
from testbed.rules import activations as rules
from testbed.train import blas_threads

#: Float64 kernels against float64 references: sums in another order, so a few ulp of the largest term.
RTOL64 = 1e-12
#: Float32 passes against float64 references: a few float32 ulp, amplified by the depth of the small nets.
RTOL32 = 1e-5
#: The libm-free tanh rule is within this many ulp of NumPy's tanh (measured: 2 ulp).
TANH_ULPS = 4
#: Standard errors allowed for a statistic of Philox draws (holds with probability 1 - 7e-6 when normal).
Z_BOUND = 4.5
#: The float32 tanh rule (tanh_single) is within this relative error of tanh (measured: 2.6e-7).
TANH_SINGLE_RTOL = 3e-7
#: Central finite differences with step H in float64: truncation ~ H^2, rounding ~ eps / H.
FD_STEP = 1e-6
FD_RTOL = 1e-6

WIDTHS = (13, 17, 11, 19)
BATCH = 23
EDGES = np.linspace(-1.5, 1.5, 7)


def _net(activation, bias=True, dtype=np.float64, backend="cpu", seed=3, widths=WIDTHS, **params):
    net = nn.MLP(widths, activation, bias=bias, dtype=dtype, backend=backend, **params)
    net.initialize("glorot_normal", seed=seed, bias_var=0.1 if bias else 0.0)
    return net


def _inputs(rng, widths=WIDTHS, batch=BATCH):
    return rng.standard_normal((batch, widths[0])), rng.standard_normal((batch, widths[-1]))


def _layers(net):
    weights = [net.weights(l).astype(np.float64) for l in range(1, net.depth + 1)]
    biases = [net.biases(l) for l in range(1, net.depth + 1)]
    return weights, biases


@pytest.mark.parametrize(
    "name,params", [("tanh", {}), ("relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("sigmoid", {}), ("elu", {})]
)
def test_forward_and_statistics_match_naive(rng, name, params):
    net = _net(name, **params)
    # some units with a strongly negative bias are dead for the whole batch (dead_frac > 0 for the ReLU family)
    net.biases(2)[:4] = -50.0
    x, _ = _inputs(rng)
    stats = net.forward(x, keep=True, histogram_edges=EDGES)
    act = net.activation
    weights, biases = _layers(net)
    # the closed-form activation of tests/naive.py, not the rule under test
    phi, _ = naive.activation_pair(name, act.param if params else None)
    pres, posts, expected = naive.forward(weights, biases, phi, x, edges=EDGES)
    for l in range(1, net.depth + 1):
        np.testing.assert_allclose(net.pre(l), pres[l - 1], rtol=RTOL64, atol=1e-13)
        np.testing.assert_allclose(net.post(l), posts[l], rtol=RTOL64, atol=1e-13)
    for key in (
        "pre_mean",
        "pre_var",
        "pre_meansq",
        "post_mean",
        "post_var",
        "post_meansq",
        "zero_frac",
        "correlation",
    ):
        np.testing.assert_allclose(getattr(stats, key), expected[key], rtol=RTOL64, atol=1e-13, err_msg=key)
    # saturated: within 1 % of a bound (reference.md), counted from the reference activations
    np.testing.assert_array_equal(stats.saturated_frac, [naive.saturated_fraction(name, p) for p in posts[1:]])
    np.testing.assert_array_equal(stats.dead_frac, expected["dead_frac"] if act.relu_like else 0.0)
    np.testing.assert_array_equal(stats.histograms, expected["histograms"])
    if act.relu_like:
        assert stats.dead_frac[1] >= 4 / WIDTHS[2]
    assert stats.overflow_layer is None and stats.underflow_layer is None


def test_saturation_counts_units_near_the_bounds(rng):
    net = _net("tanh", bias=False)
    net.params *= 30.0  # large weights: most tanh units saturate
    x, _ = _inputs(rng)
    stats = net.forward(x, keep=True)
    for l in range(1, net.depth + 1):
        assert stats.saturated_frac[l - 1] == np.mean(np.abs(net.post(l)) >= 0.99)
    assert stats.saturated_frac[-1] > 0.5


#: Mean of a layer's pre-activations, against a spread of about 1e-3: the plain sums of squares would lose every
#: digit of the variance to cancellation (eps * 1e10 is 2e-6, about the variance itself).
LARGE_MEAN = 1e5
#: The shifted sums keep the variance to about eps * LARGE_MEAN * spread / variance, 1e-8 relative here.
LARGE_MEAN_RTOL = 1e-6


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
@pytest.mark.parametrize("source", ["inputs", "biases"])
def test_statistics_of_a_large_mean_layer_match_a_two_pass_variance(rng, backend, source):
    """A mean of 1e5 from the inputs (x = 1e5 + 1e-3 z, every weight row about the average 1/fan_in) or from the
    first layer's biases, against a spread of about 1e-3."""
    widths = (6, 9, 5)
    net = nn.MLP(widths, "linear", bias=True, backend=backend)
    if source == "inputs":
        for l in range(1, net.depth + 1):
            net.weights(l)[...] = 1.0 / widths[l - 1] + 1e-9 * rng.standard_normal(net.weights(l).shape)
        x = LARGE_MEAN + 1e-3 * rng.standard_normal((8, widths[0]))
    else:
        net.params[...] = 1e-3 * rng.standard_normal(net.size)
        net.biases(1)[...] = LARGE_MEAN
        x = rng.standard_normal((8, widths[0]))
    stats = net.forward(x, keep=True)
    for l in range(1, net.depth + 1):
        mean, variance = naive.two_pass_moments(net.pre(l))
        assert stats.pre_mean[l - 1] == pytest.approx(mean, rel=1e-12)
        assert stats.pre_var[l - 1] == pytest.approx(variance, rel=LARGE_MEAN_RTOL)
        mean, variance = naive.two_pass_moments(net.post(l))
        assert stats.post_var[l - 1] == pytest.approx(variance, rel=LARGE_MEAN_RTOL)
    assert abs(stats.pre_mean[0]) > 1e7 * math.sqrt(stats.pre_var[0])  # the regime this test is about


@pytest.mark.parametrize("name", ["tanh", "relu", "gelu", "sigmoid", "elu"])
def test_backward_matches_naive(rng, name):
    net = _net(name)
    x, r = _inputs(rng)
    net.forward(x, keep=True)
    stats = net.backward(r)
    weights, biases = _layers(net)
    # phi and phi' in closed form (tests/naive.py), independent of the rules the kernels compile
    phi, dphi = naive.activation_pair(name)
    pres, posts, _ = naive.forward(weights, biases, phi, x)
    deltas, weight_grads, bias_grads = naive.backward(weights, dphi, pres, posts, r)
    for l in range(1, net.depth + 1):
        np.testing.assert_allclose(net.weight_grads(l), weight_grads[l - 1], rtol=RTOL64, atol=1e-12)
        np.testing.assert_allclose(net.bias_grads(l), bias_grads[l - 1], rtol=RTOL64, atol=1e-12)
    np.testing.assert_allclose(stats.grad_var, [d.var() for d in deltas], rtol=RTOL64)
    np.testing.assert_allclose(stats.grad_mean, [d.mean() for d in deltas], rtol=RTOL64, atol=1e-14)
    np.testing.assert_allclose(stats.weight_grad_var, [g.var() for g in weight_grads], rtol=RTOL64)
    np.testing.assert_allclose(stats.weight_grad_meansq, [np.mean(g * g) for g in weight_grads], rtol=RTOL64)
    np.testing.assert_allclose(stats.bias_grad_var, [g.var() for g in bias_grads], rtol=RTOL64)
    assert stats.overflow_layer is None


def test_gradients_match_finite_differences(rng):
    net = _net("tanh", widths=(5, 6, 4, 3))
    x, r = _inputs(rng, widths=net.widths, batch=7)
    net.forward(x, keep=True)
    net.backward(r)
    probe = np.random.default_rng(5).choice(net.size, size=12, replace=False)
    for index in probe:
        params = net.params.copy()

        def loss_at(shift):
            trial = nn.MLP(net.widths, "tanh", bias=True)
            trial.params[...] = params
            trial.params[index] += shift
            weights, biases = _layers(trial)
            return naive.loss(weights, biases, np.tanh, x, r)

        numeric = (loss_at(FD_STEP) - loss_at(-FD_STEP)) / (2 * FD_STEP)
        assert net.grads[index] == pytest.approx(numeric, rel=FD_RTOL, abs=FD_RTOL)


def test_float32_agrees_with_float64(rng):
    x, r = _inputs(rng)
    results = []
    for dtype in (np.float32, np.float64):
        net = _net("tanh", dtype=dtype)
        forward = net.forward(x, keep=True)
        backward = net.backward(r)
        results.append((forward, backward, net.grads.astype(np.float64)))
    (f32, b32, g32), (f64, b64, g64) = results
    for key in ("pre_var", "post_var", "post_mean", "correlation"):
        np.testing.assert_allclose(getattr(f32, key), getattr(f64, key), rtol=RTOL32, atol=RTOL32)
    np.testing.assert_allclose(b32.grad_var, b64.grad_var, rtol=RTOL32)
    np.testing.assert_allclose(g32, g64, rtol=RTOL32, atol=RTOL32 * np.abs(g64).max())


def test_results_do_not_depend_on_the_thread_count(rng):
    x, r = _inputs(rng, batch=70)  # several chunks of ROWS_PER_CHUNK rows
    runs = []
    threads = numba.get_num_threads()
    try:
        for count in sorted({1, threads}):
            numba.set_num_threads(count)
            net = _net("relu")
            forward = net.forward(x, keep=True)
            backward = net.backward(r)
            runs.append((forward.pre_var, forward.post_var, backward.grad_var, net.grads.copy()))
    finally:
        numba.set_num_threads(threads)
    for first, other in zip(runs[0], runs[-1]):
        np.testing.assert_array_equal(first, other)


@pytest.mark.parametrize("name,bias", [("tanh", True), ("relu", False)])
def test_cuda_simulator_agrees_with_cpu(rng, name, bias):
    widths = (7, 18, 5)  # 18 > TILE: two column tiles, a partial one; batch 19: two row tiles
    x, r = _inputs(rng, widths=widths, batch=19)
    runs = []
    for backend in ("cpu", "cuda"):
        net = _net(name, bias=bias, backend=backend, widths=widths)
        forward = net.forward(x, keep=True, histogram_edges=EDGES)
        backward = net.backward(r)
        runs.append((net, forward, backward))
    (cpu, f_cpu, b_cpu), (gpu, f_gpu, b_gpu) = runs
    for key in (
        "pre_mean",
        "pre_var",
        "post_mean",
        "post_var",
        "zero_frac",
        "dead_frac",
        "saturated_frac",
        "correlation",
    ):
        np.testing.assert_allclose(getattr(f_gpu, key), getattr(f_cpu, key), rtol=RTOL64, atol=1e-14)
    np.testing.assert_array_equal(f_gpu.histograms, f_cpu.histograms)
    for key in ("grad_var", "grad_mean", "weight_grad_var", "weight_grad_mean"):
        np.testing.assert_allclose(getattr(b_gpu, key), getattr(b_cpu, key), rtol=RTOL64, atol=1e-14)
    np.testing.assert_allclose(gpu.grads, cpu.grads, rtol=RTOL64, atol=1e-13)
    np.testing.assert_allclose(gpu.output, cpu.output, rtol=RTOL64, atol=1e-14)
    for l in range(1, cpu.depth + 1):
        np.testing.assert_allclose(gpu.pre(l), cpu.pre(l), rtol=RTOL64, atol=1e-14)


def test_cuda_simulator_with_an_awkward_tile(rng, monkeypatch):
    # The simulator reads TILE when the kernel runs: 5 x 5 blocks give many blocks and partial tiles everywhere.
    monkeypatch.setattr(kernels, "TILE", 5)
    widths = (7, 12, 6)
    x, r = _inputs(rng, widths=widths, batch=11)
    grads = []
    for backend in ("cpu", "cuda"):
        net = _net("relu", backend=backend, widths=widths)
        net.biases(1)[:3] = -50.0  # dead units
        forward = net.forward(x, keep=True)
        net.backward(r)
        grads.append((forward.pre_var, forward.dead_frac, net.grads.copy()))
    for cpu, gpu in zip(*grads):
        np.testing.assert_allclose(gpu, cpu, rtol=RTOL64, atol=1e-13)


# The simulator runs the kernel as NumPy float32 scalars, which warn where the compiled kernel overflows silently:
# the overflow is the point of this test.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_cuda_simulator_reports_overflow_like_cpu():
    layers = []
    for backend in ("cpu", "cuda"):
        net = nn.MLP((3, 3, 3, 3, 3, 3), "linear", dtype=np.float32, backend=backend)
        for l in range(1, net.depth + 1):
            net.weights(l)[...] = 1e10 * np.eye(3)
        layers.append(net.forward(np.ones((4, 3)), keep=True).overflow_layer)
    assert layers == [4, 4]


def test_lsuv_reaches_unit_variance():
    run = nn.propagate("lsuv", "tanh", 6, 32, batch=256, seed=1, lsuv_tol=0.01, lsuv_max_iterations=20)
    np.testing.assert_array_less(np.abs(run.pre_var - 1.0), 0.01)
    assert run.lsuv_iterations.shape == (6,) and run.lsuv_iterations.max() <= 20


def test_lsuv_rescales_only_until_within_tolerance(rng):
    net = nn.MLP((16, 16, 16), "relu")
    x = rng.standard_normal((64, 16))
    iterations = nn.lsuv(net, x, tol=0.05, max_iterations=1)
    assert np.all(iterations <= 1)
    # ReLU halves the second moment: the orthogonal second layer starts near variance 1/2 and needs a rescaling
    assert iterations[1] == 1


def test_overflow_reports_the_first_layer():
    # each layer multiplies the signal by 1e10: float32 (max 3.4e38) overflows at layer 4
    net = nn.MLP((3,) * 7, "linear", dtype=np.float32)
    for l in range(1, net.depth + 1):
        net.weights(l)[...] = 1e10 * np.eye(3)
    stats = net.forward(np.ones((4, 3)), keep=True)
    assert stats.overflow_layer == 4
    assert np.all(np.isfinite(stats.pre_var[:3])) and np.all(np.isnan(stats.pre_var[3:]))


def test_underflow_reports_the_first_layer():
    # 1e-20 per layer: float32's smallest normal (1.2e-38) is passed at layer 2
    net = nn.MLP((3,) * 4, "linear", dtype=np.float32)
    for l in range(1, net.depth + 1):
        net.weights(l)[...] = 1e-20 * np.eye(3)
    assert net.forward(np.ones((4, 3))).underflow_layer == 2


def test_propagate_flags_or_raises_on_overflow():
    kwargs = dict(batch=16, std=30.0, dtype=np.float32, seed=2)
    run = nn.propagate("normal", "relu", 30, 64, **kwargs)
    assert run.overflow_layer is not None and 1 < run.overflow_layer <= 30
    assert np.all(np.isfinite(run.pre_var[: run.overflow_layer - 1]))
    assert np.all(np.isnan(run.pre_var[run.overflow_layer - 1 :])) and np.all(np.isnan(run.grad_var))
    with pytest.raises(nn.NonFiniteSignalError, match=f"layer {run.overflow_layer}") as caught:
        nn.propagate("normal", "relu", 30, 64, on_nonfinite="raise", **kwargs)
    assert caught.value.layer == run.overflow_layer


def test_backward_overflow_reports_the_first_layer_from_the_top():
    # linear net, W = 1e15 I, x = 1e-30: forward 1e-15, 1, 1e15, 1e30 (finite in float32); backward from
    # delta^(4) = 1: delta^(3) = 1e15, delta^(2) = 1e30, delta^(1) = 1e45 > 3.4e38 (weight gradients stay ~2)
    net = nn.MLP((3,) * 5, "linear", dtype=np.float32)
    for l in range(1, net.depth + 1):
        net.weights(l)[...] = 1e15 * np.eye(3)
    x = np.full((2, 3), 1e-30)
    assert net.forward(x, keep=True).overflow_layer is None
    weights, biases = _layers(net)
    pres, posts, _ = naive.forward(weights, biases, lambda v: v, x)  # linear
    deltas, weight_grads, _ = naive.backward(weights, np.ones_like, pres, posts, np.ones((2, 3)))
    limit = float(np.finfo(np.float32).max)
    expected = next(
        l
        for l in range(net.depth, 0, -1)
        if np.abs(weight_grads[l - 1]).max() > limit or np.abs(deltas[l - 1]).max() > limit
    )
    stats = net.backward(np.ones((2, 3)))
    assert expected == 1 and stats.overflow_layer == expected
    assert np.all(np.isfinite(stats.grad_var[expected:])) and np.all(np.isnan(stats.grad_var[:expected]))
    assert np.all(np.isnan(net.weight_grads(1))) and np.all(np.isfinite(net.weight_grads(2)))


def test_propagate_result_fields_and_reproducibility():
    kwargs = dict(batch=64, seed=4, bias_var=0.05, histogram_edges=EDGES)
    run = nn.propagate("he_normal", "relu", 5, [12, 10, 8, 10, 12], input_width=9, **kwargs)
    assert run.widths == (9, 12, 10, 8, 10, 12)
    for name in (
        "pre_mean",
        "pre_var",
        "post_var",
        "grad_var",
        "weight_grad_var",
        "saturated_frac",
        "dead_frac",
        "zero_frac",
        "correlation",
        "weight_var",
        "bias_grad_var",
    ):
        assert getattr(run, name).shape == (5,), name
    assert run.histograms.shape == (5, EDGES.size - 1)
    np.testing.assert_allclose(run.weight_gain, run.weight_var * np.array(run.widths[:-1]))
    again = nn.propagate("he_normal", "relu", 5, [12, 10, 8, 10, 12], input_width=9, **kwargs)
    for name, value in run.as_arrays().items():
        np.testing.assert_array_equal(getattr(again, name), value, err_msg=name)
    samples = 64 * 9
    assert run.input_var == pytest.approx(1.0, abs=Z_BOUND * math.sqrt(2.0 / samples))  # sample variance: SE sqrt(2/n)


def test_propagate_uses_the_given_inputs_and_output_gradient(rng):
    x = rng.standard_normal((20, 6))
    r = rng.standard_normal((20, 6))
    run = nn.propagate("glorot_normal", "tanh", 3, 6, inputs=x, output_grad=r, seed=2)
    net = nn.MLP((6,) * 4, "tanh").initialize("glorot_normal", seed=2)
    forward = net.forward(x, keep=True)
    backward = net.backward(r)
    np.testing.assert_array_equal(run.pre_var, forward.pre_var)
    np.testing.assert_array_equal(run.grad_var, backward.grad_var)
    assert run.batch == 20 and run.output_grad_var == pytest.approx(r.var())
    via_loss = nn.propagate("glorot_normal", "tanh", 3, 6, inputs=x, loss=lambda s: 2.0 * s, seed=2)
    np.testing.assert_allclose(via_loss.output_grad_var, np.var(2.0 * net.pre(3)))


def test_activation_object_and_parameters():
    leaky = activations.get("leaky_relu", negative_slope=0.3)
    a = nn.propagate("he_normal", leaky, 3, 8, batch=32)
    b = nn.propagate("he_normal", "leaky_relu", 3, 8, batch=32, activation_params={"negative_slope": 0.3})
    assert a.activation_param == 0.3
    np.testing.assert_array_equal(a.post_var, b.post_var)


def test_flat_layout_and_views():
    net = nn.MLP((4, 3, 2), "relu", bias=True)
    assert net.size == 4 * 3 + 3 + 3 * 2 + 2
    net.params[...] = np.arange(net.size)
    np.testing.assert_array_equal(net.weights(1), np.arange(12).reshape(3, 4))
    np.testing.assert_array_equal(net.biases(1), [12, 13, 14])
    np.testing.assert_array_equal(net.weights(2), np.arange(15, 21).reshape(2, 3))
    assert np.shares_memory(net.weights(2), net.params) and np.shares_memory(net.weight_grads(2), net.grads)


def test_tanh_rule_is_accurate_everywhere():
    x = np.concatenate(
        [
            np.linspace(-25.0, 25.0, 20001),
            np.logspace(-300, 1.4, 2000),
            -np.logspace(-300, 1.4, 2000),
            [0.34657359027997264, 0.3466, 19.06, 1e-310],
        ]
    )
    expected = np.tanh(x)
    compiled = for_cpu(rules.tanh, error_model="numpy")
    for rule in (rules.tanh, compiled):
        got = np.array([rule(float(v)) for v in x])
        np.testing.assert_array_less(np.abs(got - expected), TANH_ULPS * np.spacing(np.abs(expected)) + 1e-320)
    assert rules.tanh(math.inf) == 1.0 and rules.tanh(-math.inf) == -1.0 and math.isnan(rules.tanh(math.nan))
    assert math.copysign(1.0, rules.tanh(-0.0)) == -1.0


def test_single_precision_tanh_rule_is_accurate_to_float32():
    x = np.concatenate([np.linspace(-12.0, 12.0, 200001), np.logspace(-40, 1.2, 4000), -np.logspace(-40, 1.2, 4000)])
    expected = np.tanh(x)
    compiled = for_cpu(rules.tanh_single, error_model="numpy")
    for rule in (rules.tanh_single, compiled):
        got = np.array([rule(float(v)) for v in x])
        np.testing.assert_array_less(np.abs(got - expected), TANH_SINGLE_RTOL * np.abs(expected) + 1e-300)
    assert math.isnan(rules.tanh_single(math.nan))


def test_float32_tanh_layer_uses_the_single_precision_rule(rng):
    net = _net("tanh", dtype=np.float32, bias=False)
    x, _ = _inputs(rng)
    net.forward(x, keep=True)
    s = net.pre(1).astype(np.float64)
    expected = np.array([rules.tanh_single(v) for v in s.ravel()], dtype=np.float32).reshape(s.shape)
    np.testing.assert_array_equal(net.post(1), expected)


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        (dict(depth=0), "depth"),
        (dict(depth=2.5), "depth"),
        (dict(width=0), "width"),
        (dict(width=[4, 4]), "width"),
        (dict(width=[4, -1, 4]), "width"),
        (dict(batch=0), "batch"),
        (dict(batch=True), "batch"),
        (dict(init="hee_normal"), "init"),
        (dict(activation="rleu"), "activation"),
        (dict(bias_var=math.nan), "bias_var"),
        (dict(std=math.inf, init="normal"), "std"),
        (dict(dtype=np.int32), "dtype"),
        (dict(backend="tpu"), "backend"),
        (dict(seed=-1), "seed"),
        (dict(on_nonfinite="ignore"), "on_nonfinite"),
        (dict(pair=(0, 0)), "pair"),
        (dict(histogram_edges=[1.0, 0.0]), "histogram_edges"),
        (dict(inputs=np.full((4, 3), np.nan)), "inputs"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(kwargs, argument):
    args = dict(init="he_normal", activation="relu", depth=3, width=4, batch=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=argument):
        nn.propagate(args.pop("init"), args.pop("activation"), args.pop("depth"), args.pop("width"), **args)


def test_bad_network_arguments():
    with pytest.raises(ValueError, match="widths"):
        nn.MLP((4,), "relu")
    net = nn.MLP((4, 3, 2), "relu")
    with pytest.raises(ValueError, match="l must be a layer index"):
        net.weights(3)
    with pytest.raises(ValueError, match="x must have shape"):
        net.forward(np.ones((5, 3)))
    with pytest.raises(ValueError, match="forward"):
        nn.MLP((4, 3, 2), "relu").backward(np.ones((5, 2)))
    net.forward(np.ones((5, 4)), keep=True)
    with pytest.raises(ValueError, match="output_grad"):
        net.backward(np.ones((6, 2)))
    with pytest.raises(ValueError, match="bias_var"):
        net.initialize("he_normal", bias_var=0.1)
    with pytest.raises(ValueError, match="lsuv"):
        net.initialize("lsuv")


def test_small_work_runs_serially_and_restores_the_thread_count():
    """backend.threads_for: one thread below SERIAL_BELOW elements, the caller's count otherwise and afterwards."""
    import numba

    from testbed import backend

    previous = numba.get_num_threads()
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(threads)
    try:
        with backend.threads_for(backend.SERIAL_BELOW - 1):
            assert numba.get_num_threads() == 1
        assert numba.get_num_threads() == threads
        with backend.threads_for(backend.SERIAL_BELOW):
            assert numba.get_num_threads() == threads
        with pytest.raises(RuntimeError):
            with backend.threads_for(1):
                raise RuntimeError("inside")
        assert numba.get_num_threads() == threads
    finally:
        numba.set_num_threads(previous)


# ----------------------------------------------------------------------------------------------------------------
# propagate's fused statistics and kept workspace (issue 14)

#: array_moments (one pass, float64 sums shifted by the first entry) against NumPy's two-pass float64 variance:
#: both are within a few float64 ulp per entry of sum_i (v_i - mean)^2, amplified by the cancellation
#: (var + (mean - v_0)^2) / var <= 50 for the arrays below, over at most 4096 entries: below 1e-10.
MOMENTS_RTOL = 1e-10


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,loc", [((64, 64), 0.0), ((3, 1000), 5.0), ((4096,), -2.0), ((1, 7), 0.25)])
def test_array_moments_match_naive(rng, dtype, shape, loc):
    values = (loc + rng.standard_normal(shape)).astype(dtype)
    got = nn.mlp.array_moments(values)
    np.testing.assert_allclose(got, naive.array_moments(values), rtol=MOMENTS_RTOL, atol=0.0)
    constant = np.full(shape, loc + 0.1, dtype=dtype)
    assert nn.mlp.array_moments(constant)[1] == 0.0  # every shifted entry is 0: no rounding left


def test_propagate_statistics_of_its_draws_match_naive():
    run = nn.propagate("glorot_normal", "tanh", 3, [20, 30, 10], batch=40, input_width=15, seed=5, dtype=np.float32)
    x = rng_module.normal((40, 15), seed=5, stream=nn.STREAM_INPUTS, dtype=np.float32)
    r = rng_module.normal((40, 10), seed=5, stream=nn.STREAM_OUTPUT_GRAD, dtype=np.float32)
    expected = naive.array_moments(x)
    got = (run.input_mean, run.input_var, run.input_meansq)
    np.testing.assert_allclose(got, expected, rtol=MOMENTS_RTOL, atol=MOMENTS_RTOL * expected[1])
    assert run.output_grad_var == pytest.approx(naive.array_moments(r)[1], rel=MOMENTS_RTOL)
    net = nn.MLP(run.widths, "tanh", dtype=np.float32).initialize("glorot_normal", seed=5)
    weight_var = [naive.array_moments(net.weights(l))[1] for l in range(1, 4)]
    np.testing.assert_allclose(run.weight_var, weight_var, rtol=MOMENTS_RTOL)


def _arrays(run):
    return {**run.as_arrays(), "input": np.array([run.input_mean, run.input_var, run.output_grad_var])}


def test_propagate_reuses_its_arrays_and_gives_the_same_run():
    shape = dict(depth=4, width=24, batch=32, seed=2)
    nn.release_workspace()
    first = _arrays(nn.propagate("he_normal", "relu", **shape))
    kept = nn.experiments._spare[0]
    params, post = kept.params, kept._post[2]
    again = _arrays(nn.propagate("he_normal", "relu", **shape))  # on the same arrays
    assert nn.experiments._spare[0].params is params and nn.experiments._spare[0]._post[2] is post
    other = nn.propagate("he_normal", "tanh", 3, 24, batch=32, bias_var=0.1)  # another net: new arrays
    assert nn.experiments._spare[0].params is not params and other.bias_grad_var.shape == (3,)
    nn.release_workspace()
    fresh = _arrays(nn.propagate("he_normal", "relu", **shape))
    for name, value in first.items():
        np.testing.assert_array_equal(again[name], value, err_msg=name)
        # new arrays may sit at other addresses, where BLAS may sum in another order: to rounding
        np.testing.assert_allclose(fresh[name], value, rtol=RTOL64, err_msg=name)


def test_concurrent_propagate_runs_do_not_share_arrays():
    import concurrent.futures

    shape = dict(depth=3, width=40, batch=64)
    expected = [_arrays(nn.propagate("he_normal", "relu", seed=seed, **shape)) for seed in range(4)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda seed: _arrays(nn.propagate("he_normal", "relu", seed=seed, **shape)), range(4)))
    for want, have in zip(expected, got):  # a run writing into another's arrays would change whole layers
        for name, value in want.items():
            np.testing.assert_allclose(have[name], value, rtol=RTOL64, err_msg=name)


def test_a_users_net_keeps_each_forward_pass_in_new_arrays(rng):
    # only propagate's private nets write a kept pass over the previous one: a user's earlier pre(l) stays valid
    net = _net("tanh")
    x, _ = _inputs(rng)
    net.forward(x, keep=True)
    earlier, earlier_copy = net.pre(2), net.pre(2).copy()
    net.forward(2.0 * x, keep=True)
    assert not np.shares_memory(earlier, net.pre(2))
    np.testing.assert_array_equal(earlier, earlier_copy)


# ----------------------------------------------------------------------------------------------------------------
# the CPU passes on several threads: the forward layer in row parts (kernels.nn.forward_layer_cpu) and a backward
# step's two products side by side (kernels.nn.backward_tasks_cpu), against tests/naive.py and the one-product-at-a-
# time kernel; here, beside the tests that compile the same kernels (the suite's cache starts empty)

#: A float64 sum of N terms taken in two orders differs by at most about 2 N eps times the sum of the terms'
#: magnitudes (each order's error is below (N - 1) eps of it); for the sums of squares that is the sum itself.
SUM_ORDER_ULPS_PER_TERM = 2.0
#: Batch of 70 rows: 5 chunks of ROWS_PER_CHUNK = 16, the last one short, so parts of unequal length.
PARTS_BATCH, FAN_IN, FAN_OUT = 70, 19, 24


def _layer_inputs(rng, dtype):
    x = rng.standard_normal((PARTS_BATCH, FAN_IN)).astype(dtype)
    w = (rng.standard_normal((FAN_OUT, FAN_IN)) / np.sqrt(FAN_IN)).astype(dtype)
    b = (0.1 * rng.standard_normal(FAN_OUT)).astype(dtype)
    return x, w, b


def _forward(x, w, b, parts, act):
    pre = np.empty((PARTS_BATCH, FAN_OUT), dtype=x.dtype)
    post = np.empty_like(pre)
    stats = np.zeros(kernels.FORWARD_SLOTS)
    active = np.zeros(FAN_OUT, dtype=np.uint8)
    counts = np.zeros(EDGES.size - 1, dtype=np.int64)
    low, high = -0.99, 0.99
    shift_s = 0.25  # any shift: the sums are of s - shift
    kernels.forward_layer_cpu(
        x, w, b, True, pre, post, act.code, act.param, low, high, float(np.finfo(x.dtype).max), shift_s,
        float(np.tanh(shift_s)), mlp.ROWS_PER_CHUNK, EDGES, stats, active, counts, parts,
    )  # fmt: skip
    return pre, post, stats, active, counts, shift_s


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_layer_in_parts_keeps_the_bits_and_matches_naive(rng, dtype):
    act = activations.get("tanh")
    x, w, b = _layer_inputs(rng, dtype)
    with blas_threads(1):
        runs = [_forward(x, w, b, parts, act) for parts in (1, 2, 3, 8)]  # 8 parts: more parts than chunks
    for run in runs[1:]:
        for first, other in zip(runs[0], run):
            np.testing.assert_array_equal(first, other)
    pre, post, stats, active, counts, shift = runs[-1]
    pres, posts, expected = naive.forward([w], [b], np.tanh, x, -0.99, 0.99, edges=EDGES)
    rtol = RTOL64 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(pre, pres[0], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(post, posts[1], rtol=rtol, atol=rtol)
    n = PARTS_BATCH * FAN_OUT
    mean, variance, _ = mlp._moments(stats[kernels.F_SUM_S], stats[kernels.F_SUMSQ_S], n, shift)
    assert mean == pytest.approx(expected["pre_mean"][0], rel=rtol, abs=rtol)
    assert variance == pytest.approx(expected["pre_var"][0], rel=rtol)
    np.testing.assert_array_equal(counts, expected["histograms"][0])
    np.testing.assert_array_equal(active, np.any(pre > 0.0, axis=0))


def _backward(step, delta, w, x_prev, pre_prev, act, propagate, use_bias):
    dtype = delta.dtype
    weight_grad = np.empty((FAN_OUT, FAN_IN), dtype=dtype)
    delta_prev = np.empty((PARTS_BATCH, FAN_IN), dtype=dtype)
    stats_w = np.zeros(kernels.BACKWARD_SLOTS)
    stats_delta = np.zeros(kernels.BACKWARD_SLOTS)
    bias_grad = np.zeros(FAN_IN if use_bias else 0, dtype=dtype)
    stats_weight = np.zeros(kernels.BACKWARD_SLOTS)  # the sums of array_moments(w), shifted by w[0, 0]
    step(
        delta, w, x_prev, weight_grad, float(np.finfo(dtype).max), mlp.ROWS_PER_CHUNK, stats_w, delta_prev,
        pre_prev, propagate, act.code, act.param, stats_delta, bias_grad, use_bias, stats_weight, float(w[0, 0]),
    )  # fmt: skip
    return weight_grad, delta_prev if propagate else None, stats_w, stats_delta, bias_grad, stats_weight


@pytest.mark.parametrize("propagate,use_bias", [(True, True), (True, False), (False, False)])
def test_backward_side_by_side_matches_naive_and_the_one_product_kernel(rng, propagate, use_bias):
    act = activations.get("tanh")
    x_prev_pre = rng.standard_normal((PARTS_BATCH, FAN_IN))
    x_prev = np.tanh(x_prev_pre)  # the kept activation phi(s) of the layer below
    w = rng.standard_normal((FAN_OUT, FAN_IN)) / np.sqrt(FAN_IN)
    delta = rng.standard_normal((PARTS_BATCH, FAN_OUT))
    with blas_threads(1):  # the same whole BLAS calls on both sides
        tasks = _backward(kernels.backward_tasks_cpu, delta, w, x_prev, x_prev_pre, act, propagate, use_bias)
        one = _backward(kernels.backward_layer_cpu, delta, w, x_prev, x_prev_pre, act, propagate, use_bias)
    weight_grad, delta_prev, stats_w, stats_delta, bias_grad, stats_weight = tasks
    np.testing.assert_array_equal(weight_grad, one[0])
    if propagate:
        np.testing.assert_array_equal(delta_prev, one[1])
    # the statistics' float64 sums: the same chunks, each summed in the order LLVM chose for that kernel
    eps = np.finfo(np.float64).eps
    for got, other, n in ((stats_w, one[2], weight_grad.size), (stats_delta, one[3], PARTS_BATCH * FAN_IN)):
        rtol = SUM_ORDER_ULPS_PER_TERM * n * eps
        assert got[kernels.B_SUMSQ] == pytest.approx(other[kernels.B_SUMSQ], rel=rtol)
        assert got[kernels.B_SUM] == pytest.approx(other[kernels.B_SUM], abs=rtol * np.sqrt(n * other[1]))
        assert got[kernels.B_NONFINITE] == other[kernels.B_NONFINITE] == 0.0
    np.testing.assert_allclose(bias_grad, one[4], rtol=SUM_ORDER_ULPS_PER_TERM * PARTS_BATCH * eps, atol=0.0)
    # the weights' moments gathered on the way (for propagate's weight variances), against array_moments
    expected_moments = mlp.array_moments(w)
    for sums in (stats_weight, one[5]):
        got = mlp._moments(sums[kernels.B_SUM], sums[kernels.B_SUMSQ], w.size, float(w[0, 0]))
        np.testing.assert_allclose(got, expected_moments, rtol=SUM_ORDER_ULPS_PER_TERM * w.size * eps, atol=0.0)
        assert sums[kernels.B_NONFINITE] == 0.0
    # against the chain rule written out (tests/naive.py)
    expected_w = delta.T @ x_prev
    np.testing.assert_allclose(weight_grad, expected_w, rtol=RTOL64, atol=RTOL64)
    mean, variance, _ = mlp._moments(stats_w[kernels.B_SUM], stats_w[kernels.B_SUMSQ], expected_w.size, 0.0)
    assert variance == pytest.approx(expected_w.var(), rel=RTOL64)
    if propagate:
        _, dphi = naive.activation_pair("tanh")
        expected_delta = (delta @ w) * dphi(x_prev_pre)
        np.testing.assert_allclose(delta_prev, expected_delta, rtol=RTOL64, atol=RTOL64)
        mean, variance, _ = mlp._moments(
            stats_delta[kernels.B_SUM], stats_delta[kernels.B_SUMSQ], PARTS_BATCH * FAN_IN, 0
        )
        assert variance == pytest.approx(expected_delta.var(), rel=RTOL64)
        if use_bias:
            np.testing.assert_allclose(bias_grad, expected_delta.sum(axis=0), rtol=RTOL64, atol=RTOL64)


def test_a_net_large_enough_for_threads_gives_the_same_bits_on_any_thread_count():
    widths = (256, 256, 256, 256)
    batch = backends.SERIAL_BELOW // widths[1]  # every layer at the size where the passes go parallel
    x = np.random.default_rng(1).standard_normal((batch, widths[0]))
    r = np.random.default_rng(2).standard_normal((batch, widths[-1]))
    runs = []
    threads = numba.get_num_threads()
    try:
        for count in sorted({1, threads}):
            numba.set_num_threads(count)
            net = nn.MLP(widths, "tanh", bias=True).initialize("glorot_normal", seed=3, bias_var=0.1)
            forward = net.forward(x, keep=True)
            backward = net.backward(r)
            runs.append((forward, backward, net.grads.copy(), [net.post(l).copy() for l in range(4)]))
    finally:
        numba.set_num_threads(threads)
    (f1, b1, g1, p1), (f2, b2, g2, p2) = runs[0], runs[-1]
    np.testing.assert_array_equal(g1, g2)
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a, b)
    for key in ("pre_var", "post_var", "post_mean", "correlation", "dead_frac"):
        np.testing.assert_array_equal(getattr(f1, key), getattr(f2, key))
    for key in ("grad_var", "grad_mean", "weight_grad_var", "bias_grad_var"):
        np.testing.assert_array_equal(getattr(b1, key), getattr(b2, key))


#: Widths whose Gaussian layers take 2, 3 and 2 work items of the fill kernel (4096 draws each): on two threads the
#: one list of items is cut inside the second layer's matrix.
GAUSSIAN_WIDTHS = (60, 90, 100, 50)


@pytest.mark.parametrize("init,dtype", [("he_normal", np.float32), ("glorot_normal", np.float64)])
def test_gaussian_layers_drawn_in_one_run_are_init_fill_layer_by_layer(init, dtype):
    from testbed import init as initializers
    from testbed.kernels import random as random_kernels

    sizes = [a * b for a, b in zip(GAUSSIAN_WIDTHS[:-1], GAUSSIAN_WIDTHS[1:])]
    items = [random_kernels.fill_items(size, 0, random_kernels.CHUNK_BLOCKS) for size in sizes]
    assert items == [2, 3, 2]
    threads = numba.get_num_threads()
    try:
        for count in sorted({1, threads}):
            numba.set_num_threads(count)
            net = nn.MLP(GAUSSIAN_WIDTHS, "relu", dtype=dtype).initialize(init, seed=7)
            for l in range(1, len(GAUSSIAN_WIDTHS)):
                fan_in, fan_out = GAUSSIAN_WIDTHS[l - 1], GAUSSIAN_WIDTHS[l]
                expected = initializers.initialize(
                    init, fan_in, fan_out, seed=7, stream=mlp.weight_stream(l), dtype=dtype
                )
                np.testing.assert_array_equal(net.weights(l), expected)
    finally:
        numba.set_num_threads(threads)
