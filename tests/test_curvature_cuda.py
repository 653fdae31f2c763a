"""testbed.curvature on the CUDA backend (the CUDA simulator here): the GPU passes of testbed.curvature_cuda give
the CPU kernel's Hessian- and Gauss-Newton-vector products, over chunks, with the kept forward pass, for every
loss, with and without biases, in float64 and float32; the solvers run on top of them."""

import numpy as np
import pytest

from testbed import curvature, nn
from testbed.kernels import curvature as kernels

WIDTHS = (6, 7, 5, 3)  # 18 = 7 + 5 + 3 units, so a tile of 3 leaves partial tiles in every product but the last
ROWS = 11
SMALL_TILE = 3
#: Both sides run the same float64 rules; the sums of the products are taken in other orders (tiles vs BLAS).
RTOL = {np.float64: 1e-12, np.float32: 2e-5}


@pytest.fixture(autouse=True)
def small_tiles(monkeypatch):
    monkeypatch.setattr(kernels, "TILE", SMALL_TILE)


def twin_nets(activation, *, bias=True, output="linear", dtype=np.float64, seed=5):
    cpu = nn.MLP(WIDTHS, activation, bias=bias, output=output, dtype=dtype)
    cpu.initialize("glorot_normal", seed=seed, bias_var=0.1 if bias else 0.0)
    cpu.params *= 1.5  # away from the linear regime, so that phi'' matters
    gpu = nn.MLP(WIDTHS, activation, bias=bias, output=output, dtype=dtype, backend="cuda")
    gpu.params[...] = cpu.params
    return cpu, gpu


def problem(rng, dtype=np.float64):
    x = rng.standard_normal((ROWS, WIDTHS[0])).astype(dtype)
    return x, rng.integers(0, WIDTHS[-1], ROWS), rng.standard_normal(sum_params()).astype(dtype)


def sum_params():
    return sum(a * b + b for a, b in zip(WIDTHS[:-1], WIDTHS[1:]))


def close(gpu, cpu, dtype):
    scale = np.abs(cpu).max()
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=RTOL[dtype] * scale)


@pytest.mark.parametrize(
    "activation, loss, kind, bias, output",
    [
        ("tanh", "cross_entropy", "hessian", True, "linear"),
        ("tanh", "cross_entropy", "gauss_newton", True, "linear"),
        ("softplus", "mse", "hessian", False, "activation"),  # phi on the output layer too
        ("relu", "mse", "gauss_newton", True, "activation"),
    ],
)
def test_gpu_products_match_the_cpu_kernel(rng, activation, loss, kind, bias, output):
    cpu, gpu = twin_nets(activation, bias=bias, output=output)
    x, y, v = problem(rng)
    v = v[: cpu.size]
    expected = curvature.hvp(cpu, x, y, v, loss=loss, kind=kind)
    close(curvature.hvp(gpu, x, y, v, loss=loss, kind=kind, chunk=4), expected, np.float64)  # chunks 4, 4, 3


def test_the_kept_forward_pass_and_the_loss_match_the_cpu(rng):
    cpu, gpu = twin_nets("tanh")
    x, y, v = problem(rng)
    w = v[::-1].copy()
    cpu_op = curvature.HessianOperator(cpu, x, y, chunk=5)
    gpu_op = curvature.HessianOperator(gpu, x, y, chunk=5)
    for vector in (v, w, v):  # the second and third products reuse the kept forward pass
        close(gpu_op(vector), cpu_op(vector), np.float64)
    assert gpu_op.products == 3
    assert gpu_op.loss == pytest.approx(cpu_op.loss, rel=1e-13)


def test_float32_products_match_the_cpu(rng):
    cpu, gpu = twin_nets("tanh", dtype=np.float32)
    x, y, v = problem(rng, np.float32)
    gpu_result = curvature.hvp(gpu, x, y, v)
    assert gpu_result.dtype == np.float32
    close(gpu_result, curvature.hvp(cpu, x, y, v), np.float32)


def test_lanczos_on_the_gpu_finds_the_dense_cpu_hessians_top_eigenvalues(rng):
    widths = (3, 4, 2)  # 20 parameters: Lanczos spans them all, each product a dozen simulated launches
    cpu = nn.MLP(widths, "tanh", bias=False, output="linear").initialize("glorot_normal", seed=2)
    gpu = nn.MLP(widths, "tanh", bias=False, output="linear", backend="cuda")
    gpu.params[...] = cpu.params
    x, y = rng.standard_normal((5, 3)), rng.integers(0, 2, 5)
    top = curvature.top_eigenvalues(gpu, x, y, 2, seed=3)
    exact = np.linalg.eigvalsh(curvature.dense_hessian(cpu, x, y))[-2:]
    np.testing.assert_allclose(np.sort(top.values), exact, rtol=1e-8)


def test_dense_hessian_of_a_gpu_net_is_its_products(rng):
    widths = (2, 3, 2)  # 15 parameters with biases
    cpu = nn.MLP(widths, "tanh", bias=True, output="linear").initialize("glorot_normal", seed=4, bias_var=0.1)
    gpu = nn.MLP(widths, "tanh", bias=True, output="linear", backend="cuda")
    gpu.params[...] = cpu.params
    x, y = rng.standard_normal((3, 2)), rng.integers(0, 2, 3)
    np.testing.assert_allclose(
        curvature.dense_hessian(gpu, x, y), curvature.dense_hessian(cpu, x, y), rtol=0, atol=1e-12
    )
