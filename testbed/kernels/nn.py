"""MLP layer kernels with the per-layer statistics fused into the pass over each layer's output.

A dense layer computes ``s = x W^T + b`` for a batch ``x`` of shape (batch, fan_in), ``W`` of shape
(fan_out, fan_in) (the PyTorch layout, a view into the network's flat parameter array) and ``x_next = phi(s)``.

CPU: the matrix product is BLAS (``np.dot`` inside ``@njit``), then ONE pass over the product adds the bias, applies
the activation rule, writes ``s`` and ``x_next`` and accumulates the statistics. The passes of
:func:`forward_layer_cpu` and :func:`backward_tasks_cpu` run on the threads that ran the products, each thread's
product a BLAS call on one thread (the layer in row parts, or the two products of a backward step side by side).
Each chunk of ``rows_per_chunk`` rows has its own slot of partial sums (no ``+=`` into a shared slot), reduced after
the loop in chunk order, so the result does not depend on the number of threads.

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

import numpy as np
from numba import njit, prange, types

from .. import config
from ..rules import activations as rules
from .registry import CUDA_NOT_IMPORTED, gpu_kernel
from .targets import for_cpu, for_gpu
from .tiles import tile_product_gpu

#: ``numba.cuda``, imported when the first CUDA kernel of this module is built (:mod:`testbed.kernels.registry`)
cuda = CUDA_NOT_IMPORTED

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

_value_cpu = for_cpu(rules.value, error_model="numpy")
_derivative_cpu = for_cpu(rules.derivative_given_value, error_model="numpy")
_tanh_single_cpu = for_cpu(rules.tanh_single, error_model="numpy")

# error_model="numpy": no ZeroDivisionError branches, which would keep LLVM from vectorising the passes.
_OPTIONS = dict(
    parallel=True, fastmath=set(config.FASTMATH_REDUCTIONS), error_model="numpy", **config.CPU_KERNEL_OPTIONS
)
_ROW_OPTIONS = dict(error_model="numpy", **config.CPU_KERNEL_OPTIONS)


@njit(**_ROW_OPTIONS)
def _activate_row(code, param, pre_row, bias, use_bias, post_row):
    """``pre_row += bias``; ``post_row = phi(pre_row)``, with a loop per arithmetic activation.

    Each loop calls the rule with its code as a literal, so LLVM folds the dispatch away and vectorises the loop
    (libm-free rules, tanh included; float32 arrays get :func:`~testbed.rules.activations.tanh_single`);
    activations built on libm calls (exp, erf, log1p) share the generic loop, which could not vectorise anyway.
    Small loops: cheap to compile, unlike copies of a whole parallel kernel.
    """
    width = pre_row.size
    if use_bias:
        for j in range(width):
            pre_row[j] = pre_row[j] + bias[j]
    if code == rules.RELU:
        for j in range(width):
            post_row[j] = _value_cpu(rules.RELU, pre_row[j], param)
    elif code == rules.TANH:
        if post_row.itemsize == 4:  # float32 arrays: a float32-accurate tanh at half the cost
            for j in range(width):
                post_row[j] = _tanh_single_cpu(pre_row[j])
        else:
            for j in range(width):
                post_row[j] = _value_cpu(rules.TANH, pre_row[j], param)
    elif code == rules.LINEAR:
        for j in range(width):
            post_row[j] = _value_cpu(rules.LINEAR, pre_row[j], param)
    elif code == rules.LEAKY_RELU:
        for j in range(width):
            post_row[j] = _value_cpu(rules.LEAKY_RELU, pre_row[j], param)
    elif code == rules.HARD_TANH:
        for j in range(width):
            post_row[j] = _value_cpu(rules.HARD_TANH, pre_row[j], param)
    else:
        for j in range(width):
            post_row[j] = _value_cpu(code, pre_row[j], param)


@njit(**_ROW_OPTIONS)
def _derivative_row(code, param, pre_row, post_row, delta_row):
    """``delta_row *= phi'(pre_row)`` given ``post_row = phi(pre_row)``, with the loops of :func:`_activate_row`."""
    width = pre_row.size
    if code == rules.RELU:
        for j in range(width):
            delta_row[j] = delta_row[j] * _derivative_cpu(rules.RELU, pre_row[j], post_row[j], param)
    elif code == rules.TANH:
        for j in range(width):
            delta_row[j] = delta_row[j] * _derivative_cpu(rules.TANH, pre_row[j], post_row[j], param)
    elif code == rules.LINEAR:
        for j in range(width):
            delta_row[j] = delta_row[j] * _derivative_cpu(rules.LINEAR, pre_row[j], post_row[j], param)
    elif code == rules.LEAKY_RELU:
        for j in range(width):
            delta_row[j] = delta_row[j] * _derivative_cpu(rules.LEAKY_RELU, pre_row[j], post_row[j], param)
    elif code == rules.HARD_TANH:
        for j in range(width):
            delta_row[j] = delta_row[j] * _derivative_cpu(rules.HARD_TANH, pre_row[j], post_row[j], param)
    else:
        for j in range(width):
            delta_row[j] = delta_row[j] * _derivative_cpu(code, pre_row[j], post_row[j], param)


def bin_index(edges, value):
    """The np.histogram bin of ``value`` for ascending ``edges`` (last bin closed), or -1 outside.

    Written once, compiled for both targets (``_bin_index`` here, a device function in the GPU factory).
    """
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


_bin_index = njit(**config.CPU_KERNEL_OPTIONS)(bin_index)


@njit(**_ROW_OPTIONS, fastmath=set(config.FASTMATH_REDUCTIONS))
def _forward_chunk(
    code,
    param,
    pre,
    post,
    bias,
    use_bias,
    first,
    last,
    saturated_low,
    saturated_high,
    finite_max,
    shift_s,
    shift_x,
    edges,
    sums,
    active,
    counts,
):
    """Rows first..last-1 of the fused forward pass: activation, then the statistics of each row while it is in
    L1 (one loop, the same for every activation), into this chunk's own ``sums``, ``active`` and ``counts``.

    A plain function called from the parallel loop: the parallel kernel stays small and quick to compile.
    """
    width = pre.shape[1]
    nbins = edges.size - 1
    sum_s = 0.0
    sumsq_s = 0.0
    sum_x = 0.0
    sumsq_x = 0.0
    saturated = 0.0
    inactive = 0.0
    nonfinite_s = 0.0
    nonfinite_x = 0.0
    for i in range(first, last):
        pre_row = pre[i]
        post_row = post[i]
        _activate_row(code, param, pre_row, bias, use_bias, post_row)
        for j in range(width):
            s64 = np.float64(pre_row[j])
            x64 = np.float64(post_row[j])
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
        # short separate loops keep the main one free of rarely used work
        for j in range(width):
            if pre_row[j] > 0.0:
                active[j] = 1
        if nbins > 0:
            for j in range(width):
                b = _bin_index(edges, np.float64(post_row[j]))
                if b >= 0:
                    counts[b] += 1
    sums[F_SUM_S] = sum_s
    sums[F_SUMSQ_S] = sumsq_s
    sums[F_SUM_X] = sum_x
    sums[F_SUMSQ_X] = sumsq_x
    sums[F_SATURATED] = saturated
    sums[F_INACTIVE] = inactive
    sums[F_NONFINITE_S] = nonfinite_s
    sums[F_NONFINITE_X] = nonfinite_x


@njit(**_OPTIONS)
def forward_layer_cpu(
    x_prev,
    weight,
    bias,
    use_bias,
    pre,
    post,
    code,
    param,
    saturated_low,
    saturated_high,
    finite_max,
    shift_s,
    shift_x,
    rows_per_chunk,
    edges,
    stats,
    active,
    counts,
    parts,
):
    """One layer: ``pre = x_prev weight^T + bias``, ``post = phi(pre)`` and the statistics, in ``parts`` row parts.

    Each part (one thread) takes a contiguous run of chunks of ``rows_per_chunk`` rows: its rows of the product
    (one BLAS call; the caller holds BLAS to one thread, so no BLAS pool spins beside the pass), then the fused
    pass over those rows while the other parts run their products. A row of ``pre`` is the same sum whichever
    rows share its BLAS call, and each chunk keeps its own partial sums, reduced in chunk order: the result does
    not depend on ``parts``.

    ``stats`` (FORWARD_SLOTS float64) receives the sums; ``active[j]`` is set to 1 when unit j has s > 0 for some
    input; ``counts`` receives the histogram of ``post`` over ``edges`` (np.histogram's bins) when
    ``edges.size >= 2``. A value counts as saturated when ``post <= saturated_low`` or ``post >= saturated_high``,
    as non-finite when ``not |v| <= finite_max`` (NaN included).
    """
    batch, width = pre.shape
    nchunks = (batch + rows_per_chunk - 1) // rows_per_chunk
    nbins = edges.size - 1
    partial = np.zeros((nchunks, FORWARD_SLOTS))
    partial_active = np.zeros((nchunks, width), dtype=np.uint8)
    partial_counts = np.zeros((nchunks, max(nbins, 0)), dtype=np.int64)
    for part in prange(parts):
        first_chunk = part * nchunks // parts
        last_chunk = (part + 1) * nchunks // parts
        first_row = first_chunk * rows_per_chunk
        last_row = min(batch, last_chunk * rows_per_chunk)
        if last_row > first_row:
            np.dot(x_prev[first_row:last_row], weight.T, pre[first_row:last_row])
        for chunk in range(first_chunk, last_chunk):
            first = chunk * rows_per_chunk
            _forward_chunk(
                code,
                param,
                pre,
                post,
                bias,
                use_bias,
                first,
                min(batch, first + rows_per_chunk),
                saturated_low,
                saturated_high,
                finite_max,
                shift_s,
                shift_x,
                edges,
                partial[chunk],
                partial_active[chunk],
                partial_counts[chunk],
            )
    for chunk in range(nchunks):  # in chunk order: independent of the thread count
        for k in range(FORWARD_SLOTS):
            stats[k] += partial[chunk, k]
        for j in range(width):
            if partial_active[chunk, j]:
                active[j] = 1
        for b in range(nbins):
            counts[b] += partial_counts[chunk, b]


@njit(**_ROW_OPTIONS, fastmath=set(config.FASTMATH_REDUCTIONS))
def _delta_chunk(
    code, param, delta, pre, post, apply_derivative, first, last, finite_max, shift, sums, bias_sums, use_bias
):
    """Rows first..last-1 of :func:`delta_pass_cpu`, into this chunk's own ``sums`` and ``bias_sums``."""
    width = delta.shape[1]
    total = 0.0
    total_sq = 0.0
    nonfinite = 0.0
    for i in range(first, last):
        row = delta[i]
        if apply_derivative:
            _derivative_row(code, param, pre[i], post[i], row)
        for j in range(width):
            d = np.float64(row[j])
            dd = d - shift
            total += dd
            total_sq += dd * dd
            nonfinite += 0.0 if abs(d) <= finite_max else 1.0
        if use_bias:
            for j in range(width):
                bias_sums[j] += row[j]
    sums[B_SUM] = total
    sums[B_SUMSQ] = total_sq
    sums[B_NONFINITE] = nonfinite


@njit(**_OPTIONS)
def delta_pass_cpu(
    delta, pre, post, apply_derivative, code, param, finite_max, shift, rows_per_chunk, stats, bias_grad, use_bias
):
    """``delta *= phi'(pre)`` in place when ``apply_derivative`` (``post = phi(pre)``, kept by the forward pass,
    spares tanh and sigmoid a second evaluation); statistics of delta; ``bias_grad`` = column sums.

    ``stats`` (BACKWARD_SLOTS float64) receives the shifted sums and the non-finite count; ``bias_grad[j]`` the
    sum over the batch of ``delta[:, j]`` (the bias gradient of a loss summed over the batch) when ``use_bias``.
    """
    batch, width = delta.shape
    nchunks = (batch + rows_per_chunk - 1) // rows_per_chunk
    partial = np.zeros((nchunks, BACKWARD_SLOTS))
    partial_bias = np.zeros((nchunks, width if use_bias else 0))
    for chunk in prange(nchunks):
        first = chunk * rows_per_chunk
        _delta_chunk(
            code,
            param,
            delta,
            pre,
            post,
            apply_derivative,
            first,
            min(batch, first + rows_per_chunk),
            finite_max,
            shift,
            partial[chunk],
            partial_bias[chunk],
            use_bias,
        )
    for chunk in range(nchunks):
        for k in range(BACKWARD_SLOTS):
            stats[k] += partial[chunk, k]
        if use_bias:
            for j in range(width):
                bias_grad[j] += partial_bias[chunk, j]


@njit(error_model="numpy", **config.CPU_KERNEL_OPTIONS)
def backward_layer_cpu(
    delta,
    weight,
    x_prev,
    weight_grad,
    finite_max,
    rows_per_chunk,
    stats_w,
    delta_prev,
    pre_prev,
    propagate,
    code,
    param,
    stats_delta,
    bias_grad_prev,
    use_bias,
    stats_weight,
    weight_shift,
):
    """One layer backward: ``weight_grad = delta^T x_prev`` with its statistics, then, when ``propagate``,
    ``delta_prev = (delta weight) * phi'(pre_prev)`` with its statistics and the previous layer's bias gradient
    (``x_prev = phi(pre_prev)``, the kept activation, serves the derivative of tanh and sigmoid).

    Two BLAS products, each followed by one parallel pass (:func:`delta_pass_cpu`) over its result: the step of a
    run on more threads than :func:`backward_tasks_cpu` keeps busy (``testbed.nn.mlp.BACKWARD_TASKS``), whose
    products use BLAS's own threads. When ``stats_weight`` has BACKWARD_SLOTS entries, it receives the sums of
    ``weight - weight_shift`` as :func:`testbed.nn.mlp.array_moments` takes them (the same chunks, the same order).
    """
    # run-time booleans and shift: literal constants would make Numba compile delta_pass_cpu once more for them
    no = rows_per_chunk < 0
    yes = rows_per_chunk > 0
    zero = finite_max * 0.0
    np.dot(delta.T, x_prev, weight_grad)
    delta_pass_cpu(
        weight_grad,
        weight_grad,
        weight_grad,
        no,
        code,
        param,
        finite_max,
        zero,
        rows_per_chunk,
        stats_w,
        bias_grad_prev,
        no,
    )
    if propagate:
        np.dot(delta, weight, delta_prev)
        delta_pass_cpu(
            delta_prev,
            pre_prev,
            x_prev,
            yes,
            code,
            param,
            finite_max,
            zero,
            rows_per_chunk,
            stats_delta,
            bias_grad_prev,
            use_bias,
        )
    if stats_weight.size > 0:
        delta_pass_cpu(
            weight,
            weight,
            weight,
            no,
            code,
            param,
            finite_max,
            weight_shift,
            rows_per_chunk,
            stats_weight,
            bias_grad_prev,
            no,
        )


@njit(**_OPTIONS)
def backward_tasks_cpu(
    delta,
    weight,
    x_prev,
    weight_grad,
    finite_max,
    rows_per_chunk,
    stats_w,
    delta_prev,
    pre_prev,
    propagate,
    code,
    param,
    stats_delta,
    bias_grad_prev,
    use_bias,
    stats_weight,
    weight_shift,
):
    """:func:`backward_layer_cpu` as two tasks, one thread each: (0) ``weight_grad = delta^T x_prev`` and its
    statistics; (1) when ``propagate``, ``delta_prev = (delta weight) * phi'(pre_prev)`` with its statistics and
    the previous layer's bias gradient. Without ``propagate`` (the last step) each task computes half of the
    weight gradient's rows (chunks of ``rows_per_chunk`` rows) and their statistics, so that this step too runs
    on one BLAS thread per task: BLAS's own pool, once woken, spins for 0.1 s after the product and took the
    cores from whatever ran next (the weights' variances in ``propagate``: 39 against 12 ms).

    When ``stats_weight`` has BACKWARD_SLOTS entries, it receives the sums of ``weight - weight_shift`` as
    :func:`testbed.nn.mlp.array_moments` takes them (the same chunks of rows, reduced in the same order; for
    ``propagate``'s weight variances): on task 0 after its pass, where it waited for task 1's longer pass (the
    derivative over batch x fan_in entries), or split with the weight gradient in the last step.

    The two products are independent (both read ``delta`` alone) and equally long, so each runs whole on its own
    thread with BLAS held to one thread by the caller: no BLAS pool spins beside a pass, no fork-join per
    product, and each thread's pass over its result runs while the other thread still multiplies. Each product
    is one whole BLAS call and each pass the chunked pass of :func:`delta_pass_cpu` (partial sums per chunk of
    ``rows_per_chunk`` rows, reduced in chunk order), so the result does not depend on the thread count.
    """
    batch, fan_out = delta.shape
    fan_in = x_prev.shape[1]
    weight_chunks = (fan_out + rows_per_chunk - 1) // rows_per_chunk
    delta_chunks = (batch + rows_per_chunk - 1) // rows_per_chunk
    partial_w = np.zeros((weight_chunks, BACKWARD_SLOTS))
    partial_m = np.zeros((weight_chunks if stats_weight.size > 0 else 0, BACKWARD_SLOTS))
    partial_d = np.zeros((delta_chunks, BACKWARD_SLOTS))
    partial_bias = np.zeros((delta_chunks, fan_in if use_bias else 0))
    no_bias = np.zeros(0)
    # run-time booleans and shift: literal constants would make Numba compile _delta_chunk once more for them
    no = rows_per_chunk < 0
    zero = finite_max * 0.0
    # the weight gradient's chunks of rows on task 0, or, in the last step (no delta below), half of them on each
    split = weight_chunks if propagate else weight_chunks // 2
    for task in prange(2):
        first_chunk = 0 if task == 0 else split
        last_chunk = split if task == 0 else (split if propagate else weight_chunks)
        if last_chunk > first_chunk:
            first_row = first_chunk * rows_per_chunk
            last_row = min(fan_out, last_chunk * rows_per_chunk)
            if first_row == 0 and last_row == fan_out:
                np.dot(delta.T, x_prev, weight_grad)
            else:  # rows of delta^T x_prev: the same sums, from the columns of delta copied into a contiguous block
                columns = np.ascontiguousarray(delta[:, first_row:last_row])
                np.dot(columns.T, x_prev, weight_grad[first_row:last_row])
            for chunk in range(first_chunk, last_chunk):
                first = chunk * rows_per_chunk
                _delta_chunk(
                    code,
                    param,
                    weight_grad,
                    weight_grad,
                    weight_grad,
                    no,
                    first,
                    min(fan_out, first + rows_per_chunk),
                    finite_max,
                    zero,
                    partial_w[chunk],
                    no_bias,
                    no,
                )
            for chunk in range(first_chunk, last_chunk if stats_weight.size > 0 else first_chunk):
                first = chunk * rows_per_chunk
                _delta_chunk(
                    code,
                    param,
                    weight,
                    weight,
                    weight,
                    no,
                    first,
                    min(fan_out, first + rows_per_chunk),
                    finite_max,
                    weight_shift,
                    partial_m[chunk],
                    no_bias,
                    no,
                )
        if task == 1 and propagate:
            np.dot(delta, weight, delta_prev)
            for chunk in range(delta_chunks):
                first = chunk * rows_per_chunk
                _delta_chunk(
                    code,
                    param,
                    delta_prev,
                    pre_prev,
                    x_prev,
                    propagate,
                    first,
                    min(batch, first + rows_per_chunk),
                    finite_max,
                    zero,
                    partial_d[chunk],
                    partial_bias[chunk],
                    use_bias,
                )
    for chunk in range(weight_chunks):
        for k in range(BACKWARD_SLOTS):
            stats_w[k] += partial_w[chunk, k]
    for chunk in range(partial_m.shape[0]):
        for k in range(BACKWARD_SLOTS):
            stats_weight[k] += partial_m[chunk, k]
    if propagate:
        for chunk in range(delta_chunks):
            for k in range(BACKWARD_SLOTS):
                stats_delta[k] += partial_d[chunk, k]
            if use_bias:
                for j in range(fan_in):
                    bias_grad_prev[j] += partial_bias[chunk, j]


# ----------------------------------------------------------------------------------------------------------------
# CUDA

MODE_FORWARD = 0
MODE_DELTA = 1
MODE_PRODUCT = 2


def _matmul_signatures():
    signatures = []
    for dtype in (types.float32, types.float64):
        matrix = types.Array(dtype, 2, "A")
        vector = types.Array(dtype, 1, "A")
        signatures.append(
            (
                matrix,
                types.boolean,
                matrix,
                types.boolean,
                matrix,
                types.int64,
                vector,
                types.boolean,
                matrix,
                matrix,
                types.int64,
                types.float64,
                types.float64,
                types.float64,
                types.float64,
                types.float64,
                types.float64,
                types.Array(types.float64, 1, "A"),
                types.Array(types.int32, 1, "A"),
                types.Array(types.float64, 1, "A"),
                types.Array(types.int64, 1, "A"),
                vector,
            )
        )
    return signatures


@gpu_kernel(_matmul_signatures)
def matmul_epilogue_gpu():
    """``out = op(a) op(b)`` by TILE x TILE shared-memory tiles, then a fused epilogue chosen by ``mode``.

    op(a) is ``a`` or ``a^T`` (``transpose_a``), likewise op(b); launch with blocks of (TILE, TILE) threads on a
    grid of (ceil(N / TILE), ceil(M / TILE)) blocks for an M x N ``out``. Epilogues:

    - MODE_FORWARD: ``s = product + bias``; ``out = s``, ``post = phi(s)``; the FORWARD_SLOTS sums, ``active``
      (unit has s > 0) and the histogram ``counts`` of ``post`` over ``edges``;
    - MODE_DELTA: ``out = product * phi'(aux)`` (aux = s of the layer below, post = its phi(s)), its
      BACKWARD_SLOTS sums and the column sums into ``bias_grad`` (when ``use_bias``);
    - MODE_PRODUCT: ``out = product`` and its BACKWARD_SLOTS sums (the weight gradient).

    Each block sums its threads' statistics in shared memory, then adds them to ``stats`` with one float64
    atomic per slot. Products accumulate in float64.
    """
    value = for_gpu(rules.value)
    derivative = for_gpu(rules.derivative_given_value)
    bin_of = cuda.jit(device=True)(bin_index)
    tile_product = tile_product_gpu()

    @cuda.jit
    def kernel(
        a,
        transpose_a,
        b,
        transpose_b,
        out,
        mode,
        bias,
        use_bias,
        post,
        aux,
        code,
        param,
        saturated_low,
        saturated_high,
        finite_max,
        shift_s,
        shift_x,
        stats,
        active,
        edges,
        counts,
        bias_grad,
    ):
        tile_a = cuda.shared.array((TILE, TILE), dtype=types.float64)
        tile_b = cuda.shared.array((TILE, TILE), dtype=types.float64)
        block_sums = cuda.shared.array(FORWARD_SLOTS, dtype=types.float64)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.y * TILE + ty
        col = cuda.blockIdx.x * TILE + tx
        rows, cols = out.shape
        if tx == 0 and ty == 0:  # one thread, so that any TILE works (the tests use a small one)
            for slot in range(FORWARD_SLOTS):
                block_sums[slot] = 0.0
        acc = tile_product(a, transpose_a, b, transpose_b, row, col, rows, cols, tile_a, tile_b, TILE)
        if row < rows and col < cols:
            if mode == MODE_FORWARD:
                s = acc + bias[col] if use_bias else acc
                out[row, col] = s
                s = out[row, col]  # rounded to the array's dtype, as the CPU kernel sees it
                post[row, col] = value(code, s, param)
                x = post[row, col]
                ds = s - shift_s
                dx = x - shift_x
                cuda.atomic.add(block_sums, F_SUM_S, ds)
                cuda.atomic.add(block_sums, F_SUMSQ_S, ds * ds)
                cuda.atomic.add(block_sums, F_SUM_X, dx)
                cuda.atomic.add(block_sums, F_SUMSQ_X, dx * dx)
                if x <= saturated_low or x >= saturated_high:
                    cuda.atomic.add(block_sums, F_SATURATED, 1.0)
                if s <= 0.0:
                    cuda.atomic.add(block_sums, F_INACTIVE, 1.0)
                else:
                    active[col] = 1  # every writer writes 1: a benign race
                if not abs(s) <= finite_max:
                    cuda.atomic.add(block_sums, F_NONFINITE_S, 1.0)
                if not abs(x) <= finite_max:
                    cuda.atomic.add(block_sums, F_NONFINITE_X, 1.0)
                if edges.size >= 2:
                    bin_number = bin_of(edges, x)
                    if bin_number >= 0:
                        cuda.atomic.add(counts, bin_number, 1)
            else:
                if mode == MODE_DELTA:
                    out[row, col] = acc * derivative(code, aux[row, col], post[row, col], param)
                else:
                    out[row, col] = acc
                d = out[row, col]
                cuda.atomic.add(block_sums, B_SUM, d - shift_s)
                cuda.atomic.add(block_sums, B_SUMSQ, (d - shift_s) * (d - shift_s))
                if not abs(d) <= finite_max:
                    cuda.atomic.add(block_sums, B_NONFINITE, 1.0)
                if mode == MODE_DELTA and use_bias:
                    cuda.atomic.add(bias_grad, col, d)
        cuda.syncthreads()
        if tx == 0 and ty == 0:
            for slot in range(stats.size):
                cuda.atomic.add(stats, slot, block_sums[slot])

    return kernel


def _delta_signatures():
    return [
        (
            types.Array(dtype, 2, "A"),
            types.float64,
            types.Array(types.float64, 1, "A"),
            types.Array(dtype, 1, "A"),
            types.boolean,
        )
        for dtype in (types.float32, types.float64)
    ]


@gpu_kernel(_delta_signatures)
def delta_stats_gpu():
    """The BACKWARD_SLOTS sums of ``delta`` (unshifted) and its column sums into ``bias_grad`` (when
    ``use_bias``): a grid-stride loop over the entries, one float64 atomic per entry and slot."""

    @cuda.jit
    def kernel(delta, finite_max, stats, bias_grad, use_bias):
        rows, cols = delta.shape
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for index in range(start, rows * cols, stride):
            d = delta[index // cols, index % cols]
            cuda.atomic.add(stats, B_SUM, d)
            cuda.atomic.add(stats, B_SUMSQ, d * d)
            if not abs(d) <= finite_max:
                cuda.atomic.add(stats, B_NONFINITE, 1.0)
            if use_bias:
                cuda.atomic.add(bias_grad, index % cols, d)

    return kernel
