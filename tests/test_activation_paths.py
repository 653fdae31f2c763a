"""Every activation through every code path against an independent closed form (tests/naive.py, which imports
nothing of testbed): the rules ``value``, ``derivative`` and ``derivative_given_value`` (plain Python, compiled for
the CPU and the CUDA twin in the simulator), and the nets built on them: forward statistics, saturation counts and
backward passes on the CPU and the CUDA simulator.

``derivative_given_value`` is what a backward pass that kept its forward activations calls (the CUDA nets do); a
wrong sigmoid there once passed the whole suite, because no test compared it with anything.
"""

import math

import naive
import numpy as np
import pytest
from numba import cuda  # at module top: the simulator swaps module globals, not closures

from testbed import activations, nn
from testbed.kernels.targets import for_cpu, for_gpu
from testbed.rules import activations as rules

#: (name, parameters) of every activation, with a non-default parameter where one exists.
CASES = [(name, {}) for name in activations.names()] + [
    ("leaky_relu", {"negative_slope": 0.2}),
    ("elu", {"alpha": 0.5}),
]
#: Points away from the kinks (0, +-1), out to where sigmoid and tanh saturate.
POINTS = np.array([-30.0, -7.5, -3.0, -1.7, -0.9, -0.31, -0.02, 0.013, 0.4, 0.95, 1.3, 2.2, 4.0, 8.5, 30.0])
#: A derivative against its closed form: a few ulp of the larger of phi' and the terms it is formed from (sigmoid's
#: y (1 - y) loses the relative accuracy of 1 - y near y = 1, but never more than an ulp of 1 in absolute terms).
RTOL = 1e-12
ATOL = 4e-16
#: Central differences of the closed-form phi: step, and the tolerance (truncation h^2 |phi'''| / 6 with
#: |phi'''| <= 4 on the grid, plus rounding eps |phi| / h).
FD_STEP = 1e-5
FD_ATOL = 1e-9


def _id(case):
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


def _reference(name, act):
    return naive.activation_pair(name, act.param if name in ("leaky_relu", "elu") else None)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_every_rule_path_matches_the_closed_form_derivative(case):
    """value, derivative and derivative_given_value (y = phi(x) from the rule), plain and CPU-compiled, against
    the closed forms; the closed-form phi' against central differences of the closed-form phi."""
    name, params = case
    act = activations.get(name, **params)
    phi, dphi = _reference(name, act)
    expected_value, expected_slope = phi(POINTS), dphi(POINTS)
    fd = (phi(POINTS + FD_STEP) - phi(POINTS - FD_STEP)) / (2 * FD_STEP)
    np.testing.assert_allclose(expected_slope, fd, rtol=0, atol=FD_ATOL + 1e-16 * np.abs(phi(POINTS)).max() / FD_STEP)
    compiled = (for_cpu(rules.value), for_cpu(rules.derivative), for_cpu(rules.derivative_given_value))
    for value, derivative, given in ((rules.value, rules.derivative, rules.derivative_given_value), compiled):
        y = np.array([value(act.code, x, act.param) for x in POINTS])
        np.testing.assert_allclose(y, expected_value, rtol=RTOL, atol=1e-300)
        slope = np.array([derivative(act.code, x, act.param) for x in POINTS])
        slope_given = np.array([given(act.code, x, v, act.param) for x, v in zip(POINTS, y)])
        np.testing.assert_allclose(slope, expected_slope, rtol=RTOL, atol=ATOL, err_msg=f"{name}: derivative")
        np.testing.assert_allclose(
            slope_given, expected_slope, rtol=RTOL, atol=ATOL, err_msg=f"{name}: derivative_given_value"
        )


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_cuda_twins_of_every_rule_match_the_closed_forms(case):
    name, params = case
    act = activations.get(name, **params)
    phi, dphi = _reference(name, act)
    value_gpu, derivative_gpu, given_gpu = (
        for_gpu(rules.value),
        for_gpu(rules.derivative),
        for_gpu(rules.derivative_given_value),
    )

    @cuda.jit
    def kernel(x, out, code, param):
        i = cuda.grid(1)
        if i < x.size:
            y = value_gpu(code, x[i], param)
            out[i, 0] = y
            out[i, 1] = derivative_gpu(code, x[i], param)
            out[i, 2] = given_gpu(code, x[i], y, param)

    out = cuda.to_device(np.zeros((POINTS.size, 3)))
    kernel[2, 10](cuda.to_device(POINTS), out, act.code, act.param)
    got = out.copy_to_host()
    np.testing.assert_allclose(got[:, 0], phi(POINTS), rtol=RTOL, atol=1e-300)
    np.testing.assert_allclose(got[:, 1], dphi(POINTS), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got[:, 2], dphi(POINTS), rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------------------------------------------
# Nets: forward statistics, saturation and backward passes for every activation, CPU and CUDA simulator

WIDTHS = (7, 12, 6)  # small: the CUDA simulator runs one Python thread per entry
BATCH = 11
#: Kernels against float64 references: sums in another order.
NET_RTOL = 1e-11
NET_ATOL = 1e-13
#: Weight std: large enough that the bounded activations saturate at both bounds in the second layer.
WEIGHT_STD = 2.5


def _net(name, params, backend):
    net = nn.MLP(WIDTHS, name, bias=True, backend=backend, **params)
    rng = np.random.default_rng(17)
    net.params[...] = WEIGHT_STD * rng.standard_normal(net.size)
    return net


def _reference_pass(name, act, net, x, r):
    """Pre-activations, activations, the per-layer statistics and the gradients, from the closed forms alone."""
    phi, dphi = _reference(name, act)
    weights = [net.weights(l).astype(np.float64) for l in range(1, net.depth + 1)]
    biases = [net.biases(l).astype(np.float64) for l in range(1, net.depth + 1)]
    pres, posts, stats = naive.forward(weights, biases, phi, x)
    saturated = [naive.saturated_fraction(name, p) for p in posts[1:]]
    deltas, weight_grads, bias_grads = naive.backward(weights, dphi, pres, posts, r)
    return pres, posts, stats, saturated, deltas, weight_grads, bias_grads


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_net_statistics_and_gradients_match_the_closed_forms(case, backend):
    name, params = case
    rng = np.random.default_rng(5)
    x, r = rng.standard_normal((BATCH, WIDTHS[0])), rng.standard_normal((BATCH, WIDTHS[-1]))
    net = _net(name, params, backend)
    forward = net.forward(x, keep=True)
    backward = net.backward(r)
    pres, posts, stats, saturated, deltas, weight_grads, bias_grads = _reference_pass(name, net.activation, net, x, r)
    for key in ("pre_mean", "pre_var", "post_mean", "post_var"):
        np.testing.assert_allclose(getattr(forward, key), stats[key], rtol=NET_RTOL, atol=NET_ATOL, err_msg=key)
    np.testing.assert_array_equal(forward.saturated_frac, saturated)
    if name in naive.ACTIVATION_BOUNDS and name != "hard_tanh":
        # the weights make some units saturate at each bound, so a count that misses one bound is seen
        low, high = naive.ACTIVATION_BOUNDS[name]
        assert np.mean(posts[2] <= low + 0.01) > 0.05 and np.mean(posts[2] >= high - 0.01) > 0.05
    for l in range(1, net.depth + 1):
        np.testing.assert_allclose(net.weight_grads(l), weight_grads[l - 1], rtol=NET_RTOL, atol=NET_ATOL)
        np.testing.assert_allclose(net.bias_grads(l), bias_grads[l - 1], rtol=NET_RTOL, atol=NET_ATOL)
    np.testing.assert_allclose(backward.grad_var, [d.var() for d in deltas], rtol=NET_RTOL, atol=NET_ATOL)
    assert math.isfinite(backward.grad_var[0])
