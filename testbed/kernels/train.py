"""Training kernels: a whole training step of an MLP (forward, loss, backward) in one compiled call.

The network is the flat parameter array of :class:`testbed.nn.MLP`: layer l's weights W^(l) (fan_out x fan_in,
PyTorch's layout) start at ``weight_at[l-1]`` and its biases at ``bias_at[l-1]``. A step runs

    x^(0) = x[rows];  s^(l) = x^(l-1) W^(l)^T + b^(l),  x^(l) = phi(s^(l))  (phi = identity on a logits layer);
    loss = mean_i loss_row(x^(L)_i);  delta^(L) = dloss/dx^(L) * phi'(s^(L));
    dW^(l) = delta^(l)^T x^(l-1),  db^(l) = sum_i delta^(l)_i,  delta^(l-1) = (delta^(l) W^(l)) * phi'(s^(l-1)),

with the products in BLAS (``np.dot`` inside ``@njit``), the activation and its derivative through the same row
loops as the signal-propagation passes (:func:`testbed.kernels.nn._activate_row`, ``_derivative_row``) and the loss
through the rules of :mod:`testbed.rules.losses`: no formula here is written a second time.

Small nets are where per-call overhead decides the speed (the design's note), so a step is ONE call: the batch
gather, every layer of both passes and the loss. :func:`ensemble_step_cpu` trains K nets of one shape, stored as
the K rows of one (K, P) array, with a ``prange`` over the nets: each thread runs whole nets (their products
single-threaded BLAS calls, see :func:`testbed.train.fit_many`) and applies the optimizer rule
(:func:`testbed.rules.optimizers.update_component`) to its net right after its backward pass, while the net is
still in cache.

Every CPU kernel runs the same layer bodies: :func:`_forward_layer` (s = x W^T + b, x = phi(s)), :func:`_loss_head`
(each row's loss, dloss/ds^(L)), :func:`_weight_grad` (rows of dW and db) and :func:`_delta_below` (delta^(l-1)),
whether the step runs in one pass, in chunks of rows or in parts of each product (whose weight gradient,
:func:`_weight_grads_part`, sums db in the pass that gathers its delta columns). The step kernels also count their
gradient's NaN and infinite entries while they are in cache and return the count beside the loss: the optimizer's
step then need not read the whole gradient again to refuse a non-finite one. The arguments travel as named
tuples, as in :mod:`testbed.loops.montecarlo` (Numba passes each as a struct): :class:`NetArgs` (the net's
layout and activation), :class:`DataArgs` (the examples and the loss), the buffers (:class:`PassBuffers`,
:class:`PartsBuffers`, :class:`EvalBuffers`) and, for the ensembles, :class:`EnsembleOptimizer`.

GPU: the passes are :class:`testbed.nn.cuda.CudaPasses`; :func:`loss_rows_gpu` is the loss, one thread per row.
:mod:`testbed.train_cuda` runs ``fit``'s loop on the device with the kernels at the end of this module (the batch
gather, the logits layer's derivative, a fill and the step's report).
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit, prange, types

from .. import config
from ..rules import activations as activation_rules
from ..rules import losses
from ..rules import optimizers as optimizer_rules
from .nn import _activate_row, _derivative_row
from .optim import _run_adam, _run_chunk
from .registry import CUDA_NOT_IMPORTED, gpu_kernel
from .targets import for_cpu, for_gpu

#: ``numba.cuda``, imported when the first CUDA kernel of this module is built (:mod:`testbed.kernels.registry`)
cuda = CUDA_NOT_IMPORTED

_loss_row = for_cpu(losses.loss_row, error_model="numpy")
_predicted_class = for_cpu(losses.predicted_class, error_model="numpy")

_OPTIONS = dict(error_model="numpy", **config.CPU_KERNEL_OPTIONS)


#: The net, as every training kernel takes it: its widths d^(0), ..., d^(L) (int64), where layer l's weights and
#: biases start in the flat array (``weight_at[l - 1]``, ``bias_at[l - 1]``, int64), whether it has biases, the
#: activation's code and parameter (:mod:`testbed.rules.activations`), and whether the last layer gives logits.
NetArgs = namedtuple("NetArgs", ["widths", "weight_at", "bias_at", "use_bias", "code", "param", "out_linear"])

#: The examples and the loss: ``x`` (n, d^(0)); ``labels`` (n,) int64; ``targets`` (n, d^(L)), the squared error's
#: targets when ``use_targets`` (else a placeholder, the one-hot labels are the targets); ``loss_code``
#: (:mod:`testbed.rules.losses`).
DataArgs = namedtuple("DataArgs", ["x", "labels", "targets", "use_targets", "loss_code"])

#: The buffers of a step in one pass on ``batch`` rows: ``x0`` >= batch * d^(0); ``pre``, ``post`` (each layer's s
#: and x, layer after layer, each layer's block batch x d^(l)) >= batch * (d^(1) + ... + d^(L)); ``delta_a``,
#: ``delta_b`` (delta^(l), alternately) >= batch * max d^(l); ``row_loss`` >= batch, float64.
PassBuffers = namedtuple("PassBuffers", ["x0", "pre", "post", "delta_a", "delta_b", "row_loss"])

#: The buffers of :func:`loss_and_grad_parts_cpu`: ``x0``, ``pre``, ``post`` and ``row_loss`` as in
#: :class:`PassBuffers`; ``deltas``, every layer's delta^(l) laid out as ``pre``; ``scratch`` (P, >= batch *
#: ceil(max d^(l) / P)), one row per part.
PartsBuffers = namedtuple("PartsBuffers", ["x0", "pre", "post", "deltas", "scratch", "row_loss"])

#: The buffers of an evaluation ``chunk`` rows at a time: ``x0``, ``pre``, ``post`` as in :class:`PassBuffers`,
#: ``dz`` >= chunk * d^(L).
EvalBuffers = namedtuple("EvalBuffers", ["x0", "pre", "post", "dz"])

#: The optimizer of :func:`ensemble_step_cpu`: its rule's ``code``, ``n_slots`` and ``hyper`` (a tuple,
#: :mod:`testbed.rules.optimizers`), each net's coefficients c0..c3 of this step (K, 4), and the slots ``s0..s2``
#: (K, P), or (K, 1) placeholders beyond ``n_slots``.
EnsembleOptimizer = namedtuple("EnsembleOptimizer", ["code", "n_slots", "hyper", "coefficients", "s0", "s1", "s2"])


@njit(**_OPTIONS)
def _layer(flat, at, rows, cols):
    """A (rows, cols) C-contiguous view of ``flat`` from ``at``."""
    return flat[at : at + rows * cols].reshape((rows, cols))


@njit(**_OPTIONS)
def _count_nonfinite(a):
    """The number of NaN or infinite entries of the 1-d view ``a``: those where ``a - a`` (NaN for both) is not 0,
    as :func:`testbed.kernels.optim.count_nonfinite_cpu` counts them, without branches so that the loop vectorises.
    The step kernels count their gradient's entries right after writing them, while they are still in cache, so
    that the optimizer's step need not read the whole gradient again (:meth:`testbed.optim.Optimizer.step`'s
    ``grads_nonfinite``)."""
    count = 0
    for i in range(a.size):
        count += np.int64((a[i] - a[i]) != 0.0)
    return count


# ----------------------------------------------------------------------------------------------------------------
# The layer bodies, shared by every CPU kernel: a layer's forward, the loss head, a layer's two backward products.


@njit(**_OPTIONS)
def _forward_layer(params, net, l, prev, pre, post, start):
    """Layer l of the rows ``prev`` (rows x d^(l-1)): s = prev W^(l)^T + b^(l) into ``pre`` and x = phi(s) into
    ``post`` (phi = identity on a logits layer), both (rows x d^(l)) from ``start``; returns x's view."""
    rows = prev.shape[0]
    fan_in, fan_out = net.widths[l - 1], net.widths[l]
    weight = _layer(params, net.weight_at[l - 1], fan_out, fan_in)
    bias = params[net.bias_at[l - 1] : net.bias_at[l - 1] + fan_out]
    s = _layer(pre, start, rows, fan_out)
    np.dot(prev, weight.T, s)
    if net.use_bias:
        for i in range(rows):
            for j in range(fan_out):
                s[i, j] += bias[j]
    # the activation over the layer's rows x fan_out entries as ONE row: a call per row costs more than its
    # 128 entries' arithmetic (measured: 0.38 against 0.1 ms per step over 30 layers of 128 x 128)
    layer_code = activation_rules.LINEAR if (net.out_linear and l == net.widths.size - 1) else net.code
    size = rows * fan_out
    _activate_row(layer_code, net.param, pre[start : start + size], bias, False, post[start : start + size])
    return _layer(post, start, rows, fan_out)


@njit(**_OPTIONS)
def _forward_rows(params, x0, net, pre, post, first, batch):
    """The forward pass of rows ``first .. first + n`` (``x0``: those n rows) of a batch of ``batch`` rows: layer
    l's block of ``pre``/``post`` holds the whole batch (batch x d^(l)), and these rows are a contiguous part of it.

    Returns the offset of the last layer's block (of the whole batch) in ``pre``/``post``.
    """
    prev = x0
    offset = 0
    last = 0
    for l in range(1, net.widths.size):
        prev = _forward_layer(params, net, l, prev, pre, post, offset + first * net.widths[l])
        last = offset
        offset += batch * net.widths[l]
    return last


@njit(**_OPTIONS)
def _loss_head(net, data, rows, total, pre, post, at, delta, delta_at, row_loss):
    """The loss of the n = ``rows.size`` rows ``data.x[rows]`` whose last layer's s and x (n x d^(L)) start at
    ``at`` in ``pre``/``post``: ``row_loss[i]`` is row i's share of the mean over ``total`` rows, and dloss/ds^(L)
    = dloss/dx^(L) * phi'(s^(L)) goes to ``delta`` from ``delta_at``. Returns the sum of ``row_loss[:n]`` in row
    order."""
    n = rows.size
    classes = net.widths[net.widths.size - 1]
    z = _layer(post, at, n, classes)
    dz = _layer(delta, delta_at, n, classes)
    inv_batch = 1.0 / total
    inv_count = 1.0 / (total * classes)
    loss = 0.0
    for i in range(n):
        row = rows[i]
        row_loss[i] = _loss_row(
            data.loss_code, z, i, data.labels[row], data.targets, row, data.use_targets, inv_batch, inv_count, dz
        )
        loss += row_loss[i]
    if not net.out_linear:  # dloss/ds^(L) = dloss/dx^(L) * phi'(s^(L))
        size = n * classes
        _derivative_row(
            net.code, net.param, pre[at : at + size], post[at : at + size], delta[delta_at : delta_at + size]
        )
    return loss


@njit(**_OPTIONS)
def _weight_grad(grads, net, l, delta, prev, lo):
    """Rows ``lo .. lo + m`` of dW^(l) = delta^(l)^T x^(l-1) and of db^(l) = sum_i delta_i^(l) (in batch order),
    from ``delta`` (batch x m), columns ``lo .. lo + m`` of delta^(l), and ``prev`` = x^(l-1) (batch x d^(l-1))."""
    batch, m = delta.shape
    fan_in = net.widths[l - 1]
    np.dot(delta.T, prev, _layer(grads, net.weight_at[l - 1] + lo * fan_in, m, fan_in))
    if net.use_bias:
        bias_grad = grads[net.bias_at[l - 1] + lo : net.bias_at[l - 1] + lo + m]
        bias_grad[:] = 0.0
        for i in range(batch):
            for j in range(m):
                bias_grad[j] += delta[i, j]


@njit(**_OPTIONS)
def _delta_below(params, net, l, delta, pre, post, at, out, out_at):
    """delta^(l-1) = (delta^(l) W^(l)) * phi'(s^(l-1)) of the rows of ``delta`` into ``out`` from ``out_at``
    (rows x d^(l-1)), with those rows' s^(l-1) and x^(l-1) at ``at`` in ``pre``/``post``; returns its view."""
    rows = delta.shape[0]
    fan_in, fan_out = net.widths[l - 1], net.widths[l]
    below = _layer(out, out_at, rows, fan_in)
    np.dot(delta, _layer(params, net.weight_at[l - 1], fan_out, fan_in), below)
    size = rows * fan_in
    _derivative_row(net.code, net.param, pre[at : at + size], post[at : at + size], out[out_at : out_at + size])
    return below


@njit(**_OPTIONS)
def _gather(x_all, rows, x0):
    for i in range(rows.size):
        for j in range(x0.shape[1]):
            x0[i, j] = x_all[rows[i], j]


@njit(**_OPTIONS)
def _pass_buffers(buffers, k):
    """Copy ``k`` of buffers with a leading axis of copies (one per chunk or net), as :class:`PassBuffers`."""
    return PassBuffers(
        buffers.x0[k], buffers.pre[k], buffers.post[k], buffers.delta_a[k], buffers.delta_b[k], buffers.row_loss[k]
    )


# ----------------------------------------------------------------------------------------------------------------
# The step kernels: one pass, chunks of rows, parts of each product, K nets.


@njit(**_OPTIONS)
def _net_loss_and_grad(params, grads, net, data, rows, buffers, total):
    """Forward, loss and backward of one net on the rows ``rows`` of ``data.x``; fills ``grads``, returns the loss.

    ``total`` is the size of the whole batch whose mean is taken: ``rows.size``, or more when ``rows`` is one chunk
    of it (:func:`loss_and_grad_split_cpu`), whose loss and gradient are then that chunk's share of the mean.
    """
    batch = rows.size
    depth = net.widths.size - 1
    inputs = _layer(buffers.x0, 0, batch, net.widths[0])
    _gather(data.x, rows, inputs)
    pre, post = buffers.pre, buffers.post
    last = _forward_rows(params, inputs, net, pre, post, 0, batch)
    loss = _loss_head(net, data, rows, total, pre, post, last, buffers.delta_a, 0, buffers.row_loss)
    delta = _layer(buffers.delta_a, 0, batch, net.widths[depth])
    offset = last
    in_a = True  # delta lives in delta_a; the next one goes to the other buffer
    for l in range(depth, 0, -1):
        fan_in = net.widths[l - 1]
        offset -= batch * fan_in if l > 1 else 0
        prev = _layer(post, offset, batch, fan_in) if l > 1 else inputs
        _weight_grad(grads, net, l, delta, prev, 0)
        if l > 1:
            spare = buffers.delta_b if in_a else buffers.delta_a
            delta = _delta_below(params, net, l, delta, pre, post, offset, spare, 0)
            in_a = not in_a
    return loss


@njit(**_OPTIONS)
def loss_and_grad_cpu(params, grads, net, data, rows, buffers):
    """The mean loss over ``data.x[rows]`` and its gradient in ``grads``: one call for the whole step.

    ``net``: :class:`NetArgs`; ``data``: :class:`DataArgs`; ``buffers``: :class:`PassBuffers` for ``rows.size``
    rows. Returns (the loss, the number of NaN or infinite entries of ``grads``).
    """
    loss = _net_loss_and_grad(params, grads, net, data, rows, buffers, rows.size)
    return loss, _count_nonfinite(grads)


@njit(parallel=True, **_OPTIONS)
def loss_and_grad_split_cpu(params, grads, partial, chunk_loss, net, data, rows, buffers, block):
    """:func:`loss_and_grad_cpu` with the batch cut into C = ``chunk_loss.size`` chunks of rows, one thread each.

    Every row's forward pass, loss and delta^(l) depend on that row alone; only dW^(l) = sum_i delta_i^T x_i and
    db^(l) sum over the rows. So chunk c (rows ``rows[c B / C : (c + 1) B / C]``) runs a whole step on its rows into
    its own gradient (``grads`` for c = 0, ``partial[c - 1]`` after), with no synchronisation between layers, and
    the gradient is then the sum g_0 + g_1 + ... + g_{C-1}, in that order whatever the thread count. Small products
    (128^3) gain little from BLAS's own threads; whole chunks on separate cores split all of a step, the
    activation passes and the loss included.

    Buffers: :class:`PassBuffers` whose arrays have a leading axis of C, each row sized for the largest chunk;
    ``partial`` (C - 1, P); ``chunk_loss`` (C,) float64 scratch; ``block``: parameters per thread task of the sum.
    Returns (the loss, the number of NaN or infinite entries of ``grads``), counted block by block after the sum.
    """
    chunks = chunk_loss.size
    batch = rows.size
    for c in prange(chunks):
        target = grads if c == 0 else partial[c - 1]
        part = rows[c * batch // chunks : (c + 1) * batch // chunks]
        chunk_loss[c] = _net_loss_and_grad(params, target, net, data, part, _pass_buffers(buffers, c), batch)
    size = grads.size
    bad = 0
    for task in prange((size + block - 1) // block):
        start, stop = task * block, min(size, (task + 1) * block)
        for c in range(chunks - 1):  # chunk by chunk, so the inner loop runs over parameters (SIMD)
            row = partial[c]
            for p in range(start, stop):
                grads[p] += row[p]
        bad += _count_nonfinite(grads[start:stop])  # the block's sum, still in cache
    loss = 0.0
    for c in range(chunks):
        loss += chunk_loss[c]
    return loss, bad


@njit(**_OPTIONS)
def _rows_forward_backward(params, net, data, rows, buffers, first, stop):
    """Rows ``first .. stop`` of the batch: gather, forward pass, each row's loss (``row_loss[i]``) and every
    layer's delta^(l) (kept in ``deltas``, laid out as ``pre``): the part of a step that is row by row."""
    batch = rows.size
    n = stop - first
    if n == 0:
        return
    widths = net.widths
    depth = widths.size - 1
    pre, post, deltas = buffers.pre, buffers.post, buffers.deltas
    inputs = _layer(buffers.x0, first * widths[0], n, widths[0])
    _gather(data.x, rows[first:stop], inputs)
    last = _forward_rows(params, inputs, net, pre, post, first, batch)
    start = last + first * widths[depth]
    _loss_head(net, data, rows[first:stop], batch, pre, post, start, deltas, start, buffers.row_loss[first:stop])
    offset = last
    for l in range(depth, 1, -1):
        fan_in, fan_out = widths[l - 1], widths[l]
        below = offset - batch * fan_in
        start = below + first * fan_in
        delta = _layer(deltas, offset + first * fan_out, n, fan_out)
        _delta_below(params, net, l, delta, pre, post, start, deltas, start)
        offset = below


@njit(**_OPTIONS)
def _weight_grads_part(grads, net, batch, buffers, part, parts):
    """Units ``part`` of ``parts`` of every layer (a contiguous share of its fan_out rows): dW^(l) = delta^(l)^T
    x^(l-1) and db^(l) = sum_i delta_i^(l) of those rows; returns the number of NaN or infinite entries among them.

    The delta columns are copied to row ``part`` of ``scratch`` first, so that the product reads a contiguous
    operand; db is summed in that same pass over the columns (in batch order, as :func:`_weight_grad` sums it), and
    the entries of dW and db are counted right after the product, while they are in this core's cache: the whole
    gradient is then checked without a pass of its own over memory (42 MB on the benchmark's big net)."""
    widths = net.widths
    scratch = buffers.scratch[part]
    offset = 0
    bad = 0
    for l in range(1, widths.size):
        fan_in, fan_out = widths[l - 1], widths[l]
        lo, hi = part * fan_out // parts, (part + 1) * fan_out // parts
        m = hi - lo
        if m > 0:
            delta = _layer(buffers.deltas, offset, batch, fan_out)
            columns = _layer(scratch, 0, batch, m)
            if net.use_bias:
                bias_grad = grads[net.bias_at[l - 1] + lo : net.bias_at[l - 1] + hi]
                bias_grad[:] = 0.0
                for i in range(batch):
                    for j in range(m):
                        value = delta[i, lo + j]
                        columns[i, j] = value
                        bias_grad[j] += value
                bad += _count_nonfinite(bias_grad)
            else:
                for i in range(batch):
                    for j in range(m):
                        columns[i, j] = delta[i, lo + j]
            if l == 1:
                prev = _layer(buffers.x0, 0, batch, fan_in)
            else:
                prev = _layer(buffers.post, offset - batch * fan_in, batch, fan_in)
            at = net.weight_at[l - 1] + lo * fan_in
            np.dot(columns.T, prev, _layer(grads, at, m, fan_in))
            bad += _count_nonfinite(grads[at : at + m * fan_in])
        offset += batch * fan_out
    return bad


@njit(parallel=True, **_OPTIONS)
def loss_and_grad_parts_cpu(params, grads, net, data, rows, buffers):
    """:func:`loss_and_grad_cpu` with every product cut into P = ``buffers.scratch.shape[0]`` parts, one thread
    each, each product on one BLAS thread: the same numbers, bit for bit, on any thread count.

    Two parallel passes. (1) The batch's rows in P parts: each part runs the forward pass, the loss and the
    backward recurrence delta^(l-1) = (delta^(l) W^(l)) * phi'(s^(l-1)) on its rows alone (a row's values depend
    on that row only), keeping every delta^(l). (2) Every layer's units in P parts: each part forms its rows of
    dW^(l) = delta^(l)^T x^(l-1) and db^(l). Each entry of every product is the same sum as in the one-pass step
    (a split over the output's rows or columns, never over the summed index, and the same order of sums for db and
    the loss), and both run the same layer bodies, so the result is that of :func:`loss_and_grad_cpu` up to how
    BLAS rounds a product of another shape: bit for bit on the benchmark's nets (width 1024, batch 256), within an
    ulp or two on odd shapes where BLAS's edge kernels take over (seen: 5.6e-9 on float32 gradients of order 1).
    Two fork-joins per step, not three per layer; and BLAS's own thread pool, whose threads spin between products
    and lose whole time slices on a shared machine, stays idle.

    Returns (the loss, the number of NaN or infinite entries of ``grads``), the count taken part by part while
    each part's rows of the gradient are in cache (:func:`_weight_grads_part`). ``buffers``: :class:`PartsBuffers`.
    """
    parts = buffers.scratch.shape[0]
    batch = rows.size
    for p in prange(parts):
        _rows_forward_backward(params, net, data, rows, buffers, p * batch // parts, (p + 1) * batch // parts)
    bad = 0
    for p in prange(parts):
        bad += _weight_grads_part(grads, net, batch, buffers, p, parts)
    loss = 0.0
    for i in range(batch):
        loss += buffers.row_loss[i]
    return loss, bad


@njit(**_OPTIONS)
def _net_evaluate(params, net, data, first, last_row, inv_total, buffers, chunk):
    """(sum of the rows' shares of the mean loss, correct predictions) over rows first..last_row-1, in chunks."""
    widths = net.widths
    classes = widths[widths.size - 1]
    inv_count = inv_total / classes
    loss = 0.0
    correct = 0
    start = first
    while start < last_row:
        stop = min(start + chunk, last_row)
        batch = stop - start
        x = _layer(buffers.x0, 0, batch, widths[0])
        for i in range(batch):
            for j in range(widths[0]):
                x[i, j] = data.x[start + i, j]
        last = _forward_rows(params, x, net, buffers.pre, buffers.post, 0, batch)
        z = _layer(buffers.post, last, batch, classes)
        scratch = _layer(buffers.dz, 0, batch, classes)
        for i in range(batch):
            row = start + i
            label = data.labels[row]
            loss += _loss_row(
                data.loss_code, z, i, label, data.targets, row, data.use_targets, inv_total, inv_count, scratch
            )
            correct += 1 if _predicted_class(z, i) == label else 0
        start = stop
    return loss, correct


@njit(**_OPTIONS)
def evaluate_cpu(params, net, data, buffers, chunk):
    """(mean loss, accuracy) of one net over every row of ``data.x``, ``chunk`` rows at a time (``buffers``:
    :class:`EvalBuffers` sized so)."""
    n = data.x.shape[0]
    inv_rows = 1.0 / n  # the mean is over every row, not over one chunk
    loss, correct = _net_evaluate(params, net, data, 0, n, inv_rows, buffers, chunk)
    return loss, correct / n


@njit(parallel=True, **_OPTIONS)
def ensemble_step_cpu(params, grads, net, data, rows, running, losses_out, buffers, optimizer):
    """One training step of each running net k (``running[k]`` != 0): row k of every (K, ...) array is net k's.

    ``rows[k]`` are net k's batch rows; ``buffers``: :class:`PassBuffers` with a leading axis of K; ``optimizer``:
    :class:`EnsembleOptimizer` (``coefficients[k]``: net k's c0..c3 for this step, from
    :func:`testbed.rules.optimizers.prepare` with its learning rate). ``losses_out[k]`` receives net k's loss
    before the step; a net whose loss is not finite is not updated (the caller stops it).
    """
    # the optimizer's fields as locals: a parallel loop passes a tuple of scalars (hyper) read from a named tuple
    # to its worker function as if it were an array, which Numba cannot compile
    code, n_slots, hyper, coefficients, s0, s1, s2 = optimizer
    for k in prange(params.shape[0]):
        if running[k] == 0:
            continue
        loss = _net_loss_and_grad(params[k], grads[k], net, data, rows[k], _pass_buffers(buffers, k), rows.shape[1])
        losses_out[k] = loss
        if math.isfinite(loss):
            c = coefficients[k]
            # Adam's own loop, as in testbed.kernels.optim.step_cpu: LLVM vectorises it; the generic loop, which
            # dispatches on the code per component, took 3x as long (0.49 against ~1.4 ms for a net of 196 k)
            if code == optimizer_rules.ADAM and n_slots == 2:
                _run_adam(hyper, c[0], c[1], c[2], c[3], params[k], grads[k], s0[k], s1[k])
            else:
                _run_chunk(code, n_slots, hyper, c[0], c[1], c[2], c[3], params[k], grads[k], s0[k], s1[k], s2[k])


@njit(parallel=True, **_OPTIONS)
def ensemble_evaluate_cpu(params, net, data, buffers, chunk, losses_out, accuracy_out):
    """(mean loss, accuracy) of each net k over every row of ``data.x`` into ``losses_out[k]``, ``accuracy_out[k]``
    (``buffers``: :class:`EvalBuffers` with a leading axis of K)."""
    n = data.x.shape[0]
    for k in prange(params.shape[0]):
        mine = EvalBuffers(buffers.x0[k], buffers.pre[k], buffers.post[k], buffers.dz[k])
        loss, correct = _net_evaluate(params[k], net, data, 0, n, 1.0 / n, mine, chunk)
        losses_out[k] = loss
        accuracy_out[k] = correct / n


def _loss_signatures():
    signatures = []
    for dtype in (types.float32, types.float64):
        matrix = types.Array(dtype, 2, "C")
        signatures.append(
            (
                matrix,
                types.Array(types.int64, 1, "C"),
                matrix,
                types.Array(types.int64, 1, "C"),
                types.boolean,
                types.int64,
                types.float64,
                types.float64,
                matrix,
                types.Array(types.float64, 1, "C"),
                types.Array(types.int64, 1, "C"),
            )
        )
    return signatures


@gpu_kernel(_loss_signatures)
def loss_rows_gpu():
    """CUDA kernel, one thread per row i of the logits ``z``: ``row_loss[i]`` its share of the mean loss, ``dz[i]``
    its gradient, ``predicted[i]`` its argmax (the CUDA twin of the CPU kernels' loss loop)."""
    loss_row = for_gpu(losses.loss_row)
    predicted_class = for_gpu(losses.predicted_class)

    @cuda.jit
    def kernel(z, labels, targets, label_rows, use_targets, code, inv_batch, inv_count, dz, row_loss, predicted):
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, z.shape[0], stride):
            row = label_rows[i]
            row_loss[i] = loss_row(code, z, i, labels[row], targets, row, use_targets, inv_batch, inv_count, dz)
            predicted[i] = predicted_class(z, i)

    return kernel


# ----------------------------------------------------------------------------------------------------------------
# CUDA kernels of the device-resident training loop (testbed.train_cuda): the batch gather, the logits layer's
# derivative, a fill, and the per-step report that is the one copy back to the host.


def _gather_signatures():
    return [
        (types.Array(dtype, 2, "C"), types.Array(types.int64, 1, "A"), types.Array(dtype, 2, "C"))
        for dtype in (types.float32, types.float64)
    ]


@gpu_kernel(_gather_signatures)
def gather_rows_gpu():
    """CUDA kernel: ``x0[i, j] = x_all[rows[i], j]``, one thread per entry (grid-stride): the minibatch gathered
    on the device from the epoch's permutation."""

    @cuda.jit
    def kernel(x_all, rows, x0):
        cols = x0.shape[1]
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for index in range(start, rows.size * cols, stride):
            i = index // cols
            j = index - i * cols
            x0[i, j] = x_all[rows[i], j]

    return kernel


def _derivative_signatures():
    signatures = []
    for dtype in (types.float32, types.float64):
        matrix = types.Array(dtype, 2, "A")
        signatures.append((types.int64, types.float64, matrix, matrix, matrix))
    return signatures


@gpu_kernel(_derivative_signatures)
def derivative_rows_gpu():
    """CUDA kernel: ``delta *= phi'(s)`` given ``post = phi(s)``, one thread per entry: dloss/ds^(L) of a last layer
    that applies phi (the twin of :func:`testbed.kernels.nn._derivative_row`)."""
    derivative = for_gpu(activation_rules.derivative_given_value)

    @cuda.jit
    def kernel(code, param, pre, post, delta):
        cols = delta.shape[1]
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for index in range(start, delta.shape[0] * cols, stride):
            i = index // cols
            j = index - i * cols
            delta[i, j] = delta[i, j] * derivative(code, pre[i, j], post[i, j], param)

    return kernel


def _fill_signatures():
    return [(types.Array(dtype, 1, "C"), dtype) for dtype in (types.float32, types.float64)]


@gpu_kernel(_fill_signatures)
def fill_gpu():
    """CUDA kernel: every entry of ``a`` set to ``value`` (the gradient zeroed before the bias columns' atomics)."""

    @cuda.jit
    def kernel(a, value):
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, a.size, stride):
            a[i] = value

    return kernel


def _report_signatures():
    return [(types.Array(types.int64, 1, "C"), types.Array(types.float64, 1, "C"), types.int64)]


@gpu_kernel(_report_signatures)
def report_gpu():
    """CUDA kernel, one thread: ``report[at], report[at + 1] = counts[0], counts[1]`` and the counts zeroed, so that
    the step's row losses (``report[:at]``) and its two non-finite counts come back in one copy."""

    @cuda.jit
    def kernel(counts, report, at):
        if cuda.grid(1) == 0:
            report[at] = counts[0]
            report[at + 1] = counts[1]
            counts[0] = 0
            counts[1] = 0

    return kernel
