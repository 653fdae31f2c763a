"""Activations: values against NumPy/SciPy, derivatives against central differences (plain and CPU-compiled
rules), saturation bounds, the registry's errors, and the CPU rule against the CUDA twin in the simulator."""

import math

import numpy as np
import pytest
from numba import cuda  # at module top: the simulator swaps module globals, not closures
from scipy import special

from testbed import activations
from testbed.kernels.targets import for_cpu, for_gpu
from testbed.rules import activations as rules

#: Central-difference step.
H = 1e-4
#: A bound on |phi'''| over the grid for every activation (tanh''' <= 2, erf''' <= 2.26, selu''' <= 1.76, ...).
THIRD_DERIVATIVE_BOUND = 4.0
#: Rounding of phi(x +- h), in units of eps * |phi(x)|, each side.
ROUNDING_ULPS = 4.0
#: Relative agreement of the values with NumPy/SciPy (a few ulp; tanh is a polynomial rule).
VALUE_RTOL = 1e-14
#: Evaluation grid, and where the kinks are (the grid keeps 10 h away from them).
GRID = np.linspace(-6.0, 6.0, 601)
KINKS = (0.0, -1.0, 1.0)
#: (name, parameters) of every activation, with a non-default parameter where one exists.
CASES = [(name, {}) for name in activations.names()] + [
    ("leaky_relu", {"negative_slope": 0.2}),
    ("elu", {"alpha": 0.5}),
]

SELU_L, SELU_A = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
REFERENCES = {
    "linear": lambda x, p: x,
    "tanh": lambda x, p: np.tanh(x),
    "relu": lambda x, p: np.maximum(x, 0.0),
    "leaky_relu": lambda x, p: np.where(x > 0, x, p * x),
    "sigmoid": lambda x, p: special.expit(x),
    "softplus": lambda x, p: np.logaddexp(0.0, x),
    "elu": lambda x, p: np.where(x > 0, x, p * np.expm1(x)),
    "selu": lambda x, p: SELU_L * np.where(x > 0, x, SELU_A * np.expm1(x)),
    "gelu": lambda x, p: x * special.ndtr(x),
    "erf": lambda x, p: special.erf(x),
    "hard_tanh": lambda x, p: np.clip(x, -1.0, 1.0),
}


def _id(case):
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


def _smooth_points():
    return np.array([x for x in GRID if min(abs(x - k) for k in KINKS) > 10 * H])


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_values_match_numpy_and_scipy(case):
    name, params = case
    phi = activations.get(name, **params)
    x = np.concatenate([GRID, [-40.0, -1e-300, 0.0, 1e-300, 40.0]])
    np.testing.assert_allclose(phi(x), REFERENCES[name](x, phi.param), rtol=VALUE_RTOL, atol=1e-300)


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "cpu"])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_derivative_matches_central_differences(case, compiled):
    name, params = case
    phi = activations.get(name, **params)
    value = for_cpu(rules.value) if compiled else rules.value
    derivative = for_cpu(rules.derivative) if compiled else rules.derivative
    for x in _smooth_points():
        plus, minus = value(phi.code, x + H, phi.param), value(phi.code, x - H, phi.param)
        difference = (plus - minus) / (2 * H)
        # truncation h^2 |phi'''| / 6 plus the rounding of the two values divided by 2 h
        tolerance = (
            H**2 * THIRD_DERIVATIVE_BOUND / 6 + ROUNDING_ULPS * np.finfo(float).eps * max(abs(plus), abs(minus)) / H
        )
        assert abs(derivative(phi.code, x, phi.param) - difference) <= tolerance, (name, x)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_compiled_rule_equals_plain_rule_and_the_cuda_twin(case):
    """The CPU twin, the plain rule and the CUDA device function (in the simulator, through a tiny kernel with
    several blocks and a partial last one) give the same bits."""
    name, params = case
    phi = activations.get(name, **params)
    x = np.concatenate([np.linspace(-5.0, 5.0, 23), [-30.0, 0.0, 30.0]])
    value_cpu, derivative_cpu = for_cpu(rules.value), for_cpu(rules.derivative)
    cpu = np.array([[value_cpu(phi.code, v, phi.param), derivative_cpu(phi.code, v, phi.param)] for v in x])
    plain = np.array([[rules.value(phi.code, v, phi.param), rules.derivative(phi.code, v, phi.param)] for v in x])
    np.testing.assert_array_equal(cpu, plain)
    value_gpu, derivative_gpu = for_gpu(rules.value), for_gpu(rules.derivative)

    @cuda.jit
    def kernel(x, out, code, param):
        i = cuda.grid(1)
        if i < x.size:
            out[i, 0] = value_gpu(code, x[i], param)
            out[i, 1] = derivative_gpu(code, x[i], param)

    out = cuda.to_device(np.zeros((x.size, 2)))
    kernel[3, 10](cuda.to_device(x), out, phi.code, phi.param)
    np.testing.assert_array_equal(out.copy_to_host(), cpu)


@pytest.mark.parametrize("name", [n for n in activations.names() if activations.get(n).bounded])
def test_bounded_activations_stay_within_and_saturate_at_their_bounds(name):
    phi = activations.get(name)
    x = np.linspace(-50.0, 50.0, 2001)
    y = phi(x)
    assert np.all(phi.lower <= y) and np.all(y <= phi.upper)
    # saturated means within 1% of a bound, where the gradient has vanished too
    width = phi.upper - phi.lower
    assert abs(phi(np.array([-10.0]))[0] - phi.lower) < 0.01 * width
    assert abs(phi(np.array([10.0]))[0] - phi.upper) < 0.01 * width
    assert np.all(np.abs(phi.derivative(np.array([-10.0, 10.0]))) < 0.01)


def test_unbounded_activations_have_no_bounds_and_the_relu_family_is_marked():
    for name in ("linear", "relu", "leaky_relu", "softplus", "elu", "selu", "gelu"):
        assert not activations.get(name).bounded, name
    assert {n for n in activations.names() if activations.get(n).relu_like} == {"relu", "leaky_relu"}
    assert activations.get("leaky_relu").param == 0.01 and activations.get("elu").param == 1.0


def test_aliases_and_activation_objects():
    assert activations.get("identity").name == "linear"
    assert activations.get("hardtanh").name == "hard_tanh"
    phi = activations.get("leaky_relu", negative_slope=0.3)
    assert activations.get(phi) is phi
    assert phi(np.array([-2.0]))[0] == pytest.approx(-0.6)


def test_kinks_take_the_one_sided_value_of_the_positive_side():
    assert activations.get("relu").derivative(np.array([0.0]))[0] == 0.0
    assert activations.get("leaky_relu").derivative(np.array([0.0]))[0] == 0.01
    assert activations.get("hard_tanh").derivative(np.array([-1.0, 1.0])).tolist() == [0.0, 0.0]


def test_unknown_code_gives_nan_not_a_crash():
    assert math.isnan(rules.value(99, 0.5, 0.0)) and math.isnan(rules.derivative(99, 0.5, 0.0))


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: activations.get("rellu"), "did you mean 'relu'"),
        (lambda: activations.get("swish"), "valid choices: .*tanh"),
        (lambda: activations.get(3), "unknown activation"),
        (lambda: activations.get("relu", negative_slope=0.1), "takes no parameter"),
        (lambda: activations.get("elu", slope=0.1), "valid parameters: 'alpha'"),
        (lambda: activations.get("leaky_relu", negative_slope=float("nan")), "negative_slope"),
        (lambda: activations.get("elu", alpha="big"), "alpha"),
        (lambda: activations.get(activations.get("elu"), alpha=2.0), "hyperparameters"),
    ],
)
def test_registry_errors_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
