"""testbed.spectra: the Jacobian's singular values against an explicit NumPy product, isometries, the CUDA twin."""

import math

import naive
import numpy as np
import pytest

from testbed import nn, spectra
from testbed.kernels import spectra as kernels

#: Singular values agree with the NumPy product to this many ulps of the largest one (a few products of
#: width-12 matrices in a different summation order).
AGREEMENT_ULPS = 256
EPS64 = np.finfo(np.float64).eps
EPS32 = np.finfo(np.float32).eps


def _weights(init, activation, depth, width, seed, bias_var=0.0, **init_params):
    """The weights and biases an MLP draws for this seed (from testbed.init, which this module does not test)."""
    net = nn.MLP((width,) * (depth + 1), activation, bias=bias_var > 0.0)
    net.initialize(init, seed=seed, bias_var=bias_var, **init_params)
    weights = [net.weights(l).copy() for l in range(1, depth + 1)]
    biases = [net.biases(l).copy() for l in range(1, depth + 1)] if bias_var > 0.0 else None
    return weights, biases


@pytest.mark.parametrize(
    "activation, init, params, bias_var",
    [
        ("relu", "he_normal", {}, 0.0),
        ("relu", "orthogonal", {"gain": math.sqrt(2.0)}, 0.1),
        ("tanh", "normal", {"std": 0.4}, 0.05),
        ("tanh", "orthogonal", {"gain": 1.2}, 0.0),
        ("hard_tanh", "normal", {"std": 0.5}, 0.2),
        ("linear", "glorot_uniform", {}, 0.0),
        ("sigmoid", "lecun_normal", {}, 0.0),
    ],
)
def test_singular_values_match_the_explicit_numpy_product(activation, init, params, bias_var, rng):
    depth, width, batch, seed = 5, 12, 3, 7
    x = rng.normal(size=(batch, width))
    run = spectra.jacobian_singular_values(
        init, activation, depth, width, inputs=x, bias_var=bias_var, seed=seed, depths=[1, 3], **params
    )
    weights, biases = _weights(init, activation, depth, width, seed, bias_var, **params)
    for l in (1, 3, depth):
        for b in range(batch):
            expected = naive.jacobian_singular_values(weights[:l], biases[:l] if biases else None, x[b], activation)
            np.testing.assert_allclose(
                run.at(l)[b], expected, rtol=0, atol=AGREEMENT_ULPS * EPS64 * max(expected[0], 1e-300)
            )
    np.testing.assert_array_equal(run.singular_values, run.at(depth))
    assert run.singular_values.shape == (batch, width)
    assert np.all(np.diff(run.singular_values, axis=1) <= 0.0)  # descending


def test_orthogonal_linear_nets_are_isometries_to_rounding():
    depth, width = 48, 64
    run = spectra.jacobian_singular_values("orthogonal", "linear", depth, width, batch=2, depths=[1, 8])
    # each product layer adds a few ulps of relative error; depth * width ulps bounds it generously
    for l in (1, 8, depth):
        assert np.max(np.abs(run.at(l) - 1.0)) < l * width * EPS64
    mean, variance = run.moments()
    assert np.all(np.abs(mean - 1.0) < 2 * depth * width * EPS64)
    assert np.all(variance < 1e-20 + 4 * depth * width * EPS64)


def test_dead_relu_net_has_a_zero_jacobian_and_rows_are_dropped_exactly():
    # s = 0 everywhere at the zero input: relu'(0) = 0, so J = 0, every row dropped
    run = spectra.jacobian_singular_values("he_normal", "relu", 4, 8, inputs=np.zeros((1, 8)))
    np.testing.assert_array_equal(run.singular_values, 0.0)
    # some rows dropped (about half per layer) and the result still matches the dense product
    x = np.linspace(-1.0, 1.0, 16)[None, :]
    weights, _ = _weights("he_normal", "relu", 6, 16, 3)
    run = spectra.jacobian_singular_values("he_normal", "relu", 6, 16, inputs=x, seed=3)
    expected = naive.jacobian_singular_values(weights, None, x[0], "relu")
    assert np.sum(expected < 1e-12 * expected[0]) > 0  # the product is rank-deficient: rows were dropped
    np.testing.assert_allclose(run.singular_values[0], expected, rtol=0, atol=AGREEMENT_ULPS * EPS64 * expected[0])


def test_float32_agrees_with_float64_to_float32_rounding():
    kwargs = dict(batch=2, seed=4)
    run64 = spectra.jacobian_singular_values("orthogonal", "tanh", 6, 24, **kwargs)
    run32 = spectra.jacobian_singular_values("orthogonal", "tanh", 6, 24, dtype=np.float32, **kwargs)
    assert run32.singular_values.dtype == np.float32
    top = run64.singular_values[:, :1]
    np.testing.assert_allclose(run32.singular_values, run64.singular_values, rtol=0, atol=2048 * EPS32 * top.max())


def test_random_inputs_and_weights_are_propagates():
    # the same Philox streams as nn.propagate: the same inputs and weights, so the same q^l per layer (batch 1)
    run = spectra.jacobian_singular_values("lecun_normal", "tanh", 4, 32, seed=11)
    reference = nn.propagate("lecun_normal", "tanh", 4, 32, batch=1, seed=11, backward=False, pair=None)
    np.testing.assert_allclose(run.pre_meansq[0], reference.pre_meansq, rtol=1e-12)


def test_cuda_simulator_agrees_with_cpu(monkeypatch):
    monkeypatch.setattr(kernels, "TILE", 3)  # several blocks and partial tiles on a 5 x 5 output
    runs = [
        spectra.jacobian_singular_values(
            "orthogonal", activation, 3, 5, batch=2, bias_var=0.1, seed=2, depths=[1], backend=backend, gain=1.3
        )
        for activation in ("relu", "tanh")
        for backend in ("cpu", "cuda")
    ]
    for cpu, gpu in (runs[0:2], runs[2:4]):
        assert gpu.backend == "cuda"
        for l in (1, 3):
            np.testing.assert_allclose(gpu.at(l), cpu.at(l), rtol=0, atol=64 * EPS64 * cpu.at(l).max())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(init="nope"), "init"),
        (dict(init="lsuv"), "init"),
        (dict(activation="nope"), "activation"),
        (dict(depth=0), "depth"),
        (dict(width=-3), "width"),
        (dict(input_var=-1.0), "input_var"),
        (dict(input_var=math.nan), "input_var"),
        (dict(bias_var=-0.1), "bias_var"),
        (dict(batch=0), "batch"),
        (dict(inputs=np.zeros((2, 5))), "inputs"),
        (dict(inputs=np.full((1, 8), np.nan)), "inputs"),
        (dict(depths=[0]), "depths"),
        (dict(depths=[9]), "depths"),
        (dict(depths="3"), "depths"),
        (dict(backend="tpu"), "backend"),
        (dict(dtype=np.int32), "dtype"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_argument(kwargs, message):
    args = dict(init="he_normal", activation="relu", depth=3, width=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        spectra.jacobian_singular_values(
            args.pop("init"), args.pop("activation"), args.pop("depth"), args.pop("width"), **args
        )


def test_at_rejects_an_unrecorded_depth():
    run = spectra.jacobian_singular_values("he_normal", "relu", 3, 8)
    with pytest.raises(ValueError, match="depth"):
        run.at(2)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # nn's statistics of the overflowing layer
def test_an_exploding_net_is_reported_not_nan():
    with pytest.raises(nn.NonFiniteSignalError):
        spectra.jacobian_singular_values("normal", "linear", 40, 16, std=1e9)
