"""Kernels of the input-output Jacobian J = D_L W_L ... D_1 W_1 of an MLP (D_l = diag phi'(s^(l))).

CPU: the product is accumulated one layer at a time by BLAS, ``J_l = (D_l W_l) J_(l-1)``; the factor ``D_l W_l``
is built by :func:`scaled_rows_cpu` in one pass over ``W_l`` that evaluates phi' with the activation rule and
keeps only the rows with phi' != 0 (a ReLU layer passes about half of its units, so the next product is about
four times cheaper) and only the columns of the previous layer's kept rows (the other rows of ``J_(l-1)`` are
exactly zero).

GPU: :func:`jacobian_step_gpu` computes ``out = diag(phi'(pre)) (W J)`` by TILE x TILE shared-memory tiles, the
derivative applied in the epilogue (no compaction; rows with phi' = 0 come out as zeros).

Both evaluate phi' through :func:`testbed.rules.activations.derivative_given_value`, the rule the backward pass
uses, with the kept forward activation ``post = phi(pre)`` (tanh' = 1 - post^2 costs no second tanh).
"""

import numpy as np
from numba import njit, types

from .. import config
from ..rules import activations as rules
from .registry import CUDA_NOT_IMPORTED, gpu_kernel
from .targets import for_cpu, for_gpu
from .tiles import tile_product_gpu

#: ``numba.cuda``, imported when the first CUDA kernel of this module is built (:mod:`testbed.kernels.registry`)
cuda = CUDA_NOT_IMPORTED

#: Side of the square tile of the CUDA product (threads per block = TILE * TILE); read when the kernel runs in
#: the simulator, so tests may patch it.
TILE = 16

_derivative_cpu = for_cpu(rules.derivative_given_value, error_model="numpy")


@njit(error_model="numpy", **config.CPU_KERNEL_OPTIONS)
def scaled_rows_cpu(weight, pre, post, code, param, columns, out, rows):
    """``out[k] = phi'(pre[i]) * weight[i, columns]`` for the units i with phi'(pre[i]) != 0, k = 0, 1, ...

    ``weight`` is (fan_out, fan_in), ``pre``/``post`` (fan_out,) hold s^(l) and phi(s^(l)) of one input,
    ``columns`` lists the kept rows of the previous factor (all of 0..fan_in-1 for the first layer), ``out`` is a
    C-contiguous (fan_out, len(columns)) work array and ``rows[k]`` receives i. Returns the number of kept rows.
    A non-finite phi' is kept (it makes the product non-finite, which the caller reports).
    """
    fan_out, fan_in = weight.shape
    ncols = columns.size
    dense = ncols == fan_in
    kept = 0
    for i in range(fan_out):
        d = _derivative_cpu(code, pre[i], post[i], param)
        if d == 0.0:
            continue
        rows[kept] = i
        source = weight[i]
        target = out[kept]
        if dense:  # contiguous row: a vectorised scale-and-copy
            for j in range(fan_in):
                target[j] = d * source[j]
        else:
            for j in range(ncols):
                target[j] = d * source[columns[j]]
        kept += 1
    return kept


def _step_signatures():
    signatures = []
    for dtype in (types.float32, types.float64):
        matrix = types.Array(dtype, 2, "A")
        vector = types.Array(dtype, 1, "A")
        signatures.append((matrix, matrix, vector, vector, types.int64, types.float64, matrix))
    return signatures


@gpu_kernel(_step_signatures)
def jacobian_step_gpu():
    """``out = diag(phi'(pre)) (weight jac)``: ``weight`` (M, K), ``jac`` (K, N), ``pre``/``post`` (M,), ``out``
    (M, N). Launch with blocks of (TILE, TILE) threads on a grid of (ceil(N / TILE), ceil(M / TILE)) blocks.
    Products accumulate in float64."""
    derivative = for_gpu(rules.derivative_given_value)
    tile_product = tile_product_gpu()

    @cuda.jit
    def kernel(weight, jac, pre, post, code, param, out):
        tile_w = cuda.shared.array((TILE, TILE), dtype=types.float64)
        tile_j = cuda.shared.array((TILE, TILE), dtype=types.float64)
        row = cuda.blockIdx.y * TILE + cuda.threadIdx.y
        col = cuda.blockIdx.x * TILE + cuda.threadIdx.x
        rows, cols = out.shape
        acc = tile_product(weight, False, jac, False, row, col, rows, cols, tile_w, tile_j, TILE)
        if row < rows and col < cols:
            out[row, col] = acc * derivative(code, pre[row], post[row], param)

    return kernel


def tile_grid(rows, cols):
    """The grid of :func:`jacobian_step_gpu` for an output of ``rows`` x ``cols``."""
    return ((cols + TILE - 1) // TILE, (rows + TILE - 1) // TILE)


def identity_columns(n):
    """0..n-1 as the int64 ``columns`` of a dense first layer."""
    return np.arange(n, dtype=np.int64)
