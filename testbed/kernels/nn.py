"""MLP layer kernels with the per-layer statistics fused into the pass over each layer's output.

A dense layer computes ``s = x W^T + b`` for a batch ``x`` of shape (batch, fan_in), ``W`` of shape
(fan_out, fan_in) (the PyTorch layout, a view into the network's flat parameter array) and ``x_next = phi(s)``.

CPU: the matrix product is BLAS (``np.dot`` inside ``@njit``), then ONE ``prange`` pass over the product adds the
bias, applies the activation rule, writes ``s`` and ``x_next`` and accumulates the statistics. Each chunk of
``rows_per_chunk`` rows has its own slot of partial sums (no ``+=`` into a shared slot), reduced after the loop in
chunk order, so the result does not depend on the number of threads.

GPU: a tiled shared-memory matrix product (``TILE`` x ``TILE`` threads per block) whose epilogue applies the
activation (forward), the activation's derivative (backward) or nothing (weight gradient), and accumulates the
same statistics: each block reduces its threads' values in shared memory and adds its partial sums to the
float64 totals with one atomic per statistic.

Statistics slots (float64; sums are of values minus a shift, so that the variance ``sumsq/n - (sum/n)^2`` of the
shifted values does not cancel catastrophically when the mean is large against the spread, e.g. sigmoid)::

    forward  (FORWARD_SLOTS):  sum/sumsq of s - shift_s, sum/sumsq of x - shift_x, saturated count,
                               inactive count (s <= 0, ReLU family), non-finite s count, non-finite x count
    backward (BACKWARD_SLOTS): sum/sumsq of value - shift, non-finite count

The shifts are passed in by the caller (the layer's first entry), never read from a global.
"""
import math

import numpy as np
from numba import cuda, njit, prange, types

from .. import config
from ..rules import activations as rules
from .registry import gpu_kernel
from .targets import for_cpu, for_gpu

# Forward statistics slots.
F_SUM_S = 0
F_SUMSQ_S = 1
F_SUM_X = 2
F_SUMSQ_X = 3
F_SATURATED = 4
F_INACTIVE = 5
F_NONFINITE_S = 6
F_NONFINITE_X = 7
FORWARD_SLOTS = 8

# Backward statistics slots (for delta and for weight gradients).
B_SUM = 0
B_SUMSQ = 1
B_NONFINITE = 2
BACKWARD_SLOTS = 3

#: Side of the square tile of the CUDA matrix product (threads per block = TILE * TILE).
TILE = 16

_value_cpu = for_cpu(rules.value)
_derivative_cpu = for_cpu(rules.derivative)

_OPTIONS = dict(parallel=True, fastmath=set(config.FASTMATH_REDUCTIONS), **config.CPU_KERNEL_OPTIONS)


@njit(**config.CPU_KERNEL_OPTIONS)
def _bin_index(edges, value):
    """The np.histogram bin of ``value`` for ascending ``edges`` (last bin closed), or -1 outside."""
    nbins = edges.size - 1
    if not (value >= edges[0] and value <= edges[nbins]):
        return -1
    if value == edges[nbins]:
        return nbins - 1
    low = 0
    high = nbins
    while high - low > 1:  # invariant: edges[low] <= value < edges[high]
        middle = (low + high) // 2
        if value >= edges[middle]:
            low = middle
        else:
            high = middle
    return low


@njit(**_OPTIONS)
def forward_layer_cpu(x_prev, weight, bias, use_bias, pre, post, code, param, saturated_low, saturated_high,
                      finite_max, shift_s, shift_x, rows_per_chunk, edges, stats, active, counts):
    """One layer: ``pre = x_prev weight^T + bias``, ``post = phi(pre)`` and the statistics, in one pass.

    ``stats`` (FORWARD_SLOTS float64) receives the sums; ``active[j]`` is set to 1 when unit j has s > 0 for some
    input; ``counts`` receives the histogram of ``post`` over ``edges`` (np.histogram's bins) when
    ``edges.size >= 2``. A value counts as saturated when ``post <= saturated_low`` or ``post >= saturated_high``,
    as non-finite when ``not |v| <= finite_max`` (NaN included).
    """
    np.dot(x_prev, weight.T, pre)
    batch, width = pre.shape
    nchunks = (batch + rows_per_chunk - 1) // rows_per_chunk
    nbins = edges.size - 1
    partial = np.zeros((nchunks, FORWARD_SLOTS))
    partial_active = np.zeros((nchunks, width), dtype=np.uint8)
    partial_counts = np.zeros((nchunks, max(nbins, 0)), dtype=np.int64)
    for chunk in prange(nchunks):
        sum_s = 0.0
        sumsq_s = 0.0
        sum_x = 0.0
        sumsq_x = 0.0
        saturated = 0.0
        inactive = 0.0
        nonfinite_s = 0.0
        nonfinite_x = 0.0
        for i in range(chunk * rows_per_chunk, min(batch, (chunk + 1) * rows_per_chunk)):
            pre_row = pre[i]
            post_row = post[i]
            for j in range(width):
                s = pre_row[j]
                if use_bias:
                    s = s + bias[j]
                x = _value_cpu(code, s, param)
                pre_row[j] = s
                post_row[j] = x
                s64 = np.float64(s)
                x64 = np.float64(x)
                ds = s64 - shift_s
                dx = x64 - shift_x
                sum_s += ds
                sumsq_s += ds * ds
                sum_x += dx
                sumsq_x += dx * dx
                saturated += 1.0 if (x64 <= saturated_low or x64 >= saturated_high) else 0.0
                inactive += 1.0 if s64 <= 0.0 else 0.0
                nonfinite_s += 0.0 if abs(s64) <= finite_max else 1.0
                nonfinite_x += 0.0 if abs(x64) <= finite_max else 1.0
            # separate short loops over the row (in L1) keep the main loop free of rarely used work
            for j in range(width):
                if pre_row[j] > 0.0:
                    partial_active[chunk, j] = 1
            if nbins > 0:
                for j in range(width):
                    b = _bin_index(edges, np.float64(post_row[j]))
                    if b >= 0:
                        partial_counts[chunk, b] += 1
        partial[chunk, F_SUM_S] = sum_s
        partial[chunk, F_SUMSQ_S] = sumsq_s
        partial[chunk, F_SUM_X] = sum_x
        partial[chunk, F_SUMSQ_X] = sumsq_x
        partial[chunk, F_SATURATED] = saturated
        partial[chunk, F_INACTIVE] = inactive
        partial[chunk, F_NONFINITE_S] = nonfinite_s
        partial[chunk, F_NONFINITE_X] = nonfinite_x
    for chunk in range(nchunks):  # in chunk order: independent of the thread count
        for k in range(FORWARD_SLOTS):
            stats[k] += partial[chunk, k]
        for j in range(width):
            if partial_active[chunk, j]:
                active[j] = 1
        for b in range(nbins):
            counts[b] += partial_counts[chunk, b]


@njit(**_OPTIONS)
def delta_pass_cpu(delta, pre, apply_derivative, code, param, finite_max, shift, rows_per_chunk, stats,
                   bias_grad, use_bias):
    """``delta *= phi'(pre)`` in place when ``apply_derivative``; statistics of delta; ``bias_grad`` = column sums.

    ``stats`` (BACKWARD_SLOTS float64) receives the shifted sums and the non-finite count; ``bias_grad[j]`` the
    sum over the batch of ``delta[:, j]`` (the bias gradient of a loss summed over the batch) when ``use_bias``.
    """
    batch, width = delta.shape
    nchunks = (batch + rows_per_chunk - 1) // rows_per_chunk
    partial = np.zeros((nchunks, BACKWARD_SLOTS))
    partial_bias = np.zeros((nchunks, width if use_bias else 0))
    for chunk in prange(nchunks):
        total = 0.0
        total_sq = 0.0
        nonfinite = 0.0
        for i in range(chunk * rows_per_chunk, min(batch, (chunk + 1) * rows_per_chunk)):
            row = delta[i]
            if apply_derivative:
                pre_row = pre[i]
                for j in range(width):
                    row[j] = row[j] * _derivative_cpu(code, pre_row[j], param)
            for j in range(width):
                d = np.float64(row[j])
                dd = d - shift
                total += dd
                total_sq += dd * dd
                nonfinite += 0.0 if abs(d) <= finite_max else 1.0
            if use_bias:
                for j in range(width):
                    partial_bias[chunk, j] += row[j]
        partial[chunk, B_SUM] = total
        partial[chunk, B_SUMSQ] = total_sq
        partial[chunk, B_NONFINITE] = nonfinite
    for chunk in range(nchunks):
        for k in range(BACKWARD_SLOTS):
            stats[k] += partial[chunk, k]
        if use_bias:
            for j in range(width):
                bias_grad[j] += partial_bias[chunk, j]


@njit(**_OPTIONS)
def backward_layer_cpu(delta, weight, x_prev, weight_grad, finite_max, shift_w, rows_per_chunk, stats_w,
                       delta_prev, pre_prev, propagate, code, param, shift_delta, stats_delta, bias_grad_prev,
                       use_bias):
    """One layer backward: ``weight_grad = delta^T x_prev`` with its statistics, then, when ``propagate``,
    ``delta_prev = (delta weight) * phi'(pre_prev)`` with its statistics and the previous layer's bias gradient.
    """
    np.dot(delta.T, x_prev, weight_grad)
    rows, cols = weight_grad.shape
    nchunks = (rows + rows_per_chunk - 1) // rows_per_chunk
    partial = np.zeros((nchunks, BACKWARD_SLOTS))
    for chunk in prange(nchunks):
        total = 0.0
        total_sq = 0.0
        nonfinite = 0.0
        for i in range(chunk * rows_per_chunk, min(rows, (chunk + 1) * rows_per_chunk)):
            row = weight_grad[i]
            for j in range(cols):
                g = np.float64(row[j])
                dg = g - shift_w
                total += dg
                total_sq += dg * dg
                nonfinite += 0.0 if abs(g) <= finite_max else 1.0
        partial[chunk, B_SUM] = total
        partial[chunk, B_SUMSQ] = total_sq
        partial[chunk, B_NONFINITE] = nonfinite
    for chunk in range(nchunks):
        for k in range(BACKWARD_SLOTS):
            stats_w[k] += partial[chunk, k]
    if propagate:
        np.dot(delta, weight, delta_prev)
        delta_pass_cpu(delta_prev, pre_prev, True, code, param, finite_max, shift_delta, rows_per_chunk,
                       stats_delta, bias_grad_prev, use_bias)
