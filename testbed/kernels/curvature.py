"""Curvature kernels: the exact Hessian-vector product of an MLP's mean loss in one compiled call.

Pearlmutter (1994)'s R-operator, R{f} = d/dr f(theta + r v) at r = 0, applied to the training step of
:mod:`testbed.kernels.train` (same flat layout, same forward pass, same loss rules). With V^(l), R{b}^(l) the
blocks of v, g^(l) = dL/dx^(l) and delta^(l) = g^(l) * phi'(s^(l)):

    forward:          s^(l) = x^(l-1) W^(l)T + b^(l),  x^(l) = phi(s^(l));  g^(L) = dloss/dz;  g^(l-1) = delta^(l) W^(l)
    tangents:         R{s^(l)} = x^(l-1) V^(l)T + R{x^(l-1)} W^(l)T + R{b}^(l),  R{x^(0)} = 0,
                      R{x^(l)} = phi'(s^(l)) R{s^(l)}
    loss:             R{g^(L)} = H_z R{z}   (:mod:`testbed.rules.curvature`)
    backward:         R{delta^(l)} = R{g^(l)} phi'(s^(l)) + g^(l) phi''(s^(l)) R{s^(l)}
                      (Hv)_W^(l) = R{delta^(l)}T x^(l-1) + delta^(l)T R{x^(l-1)},   (Hv)_b^(l) = sum_i R{delta^(l)}_i
                      R{g^(l-1)} = R{delta^(l)} W^(l) + delta^(l) V^(l).

The Gauss-Newton product G v = J^T H_z J v (Schraudolph 2002) is the same pass with every term that carries
g or delta (the net's own second derivatives) dropped. Products are BLAS (``np.dot`` inside ``@njit``); the
activation and its derivative go through the row loops of :mod:`testbed.kernels.nn`, phi'' through
:func:`testbed.rules.activations.second_derivative_given_value`.

Each quantity is kept beside its tangent, one (2B, d) block per layer: [s; R{s}], [x; R{x}], and in the backward
pass [R{delta}; delta] and [R{g}; g]. A pair of terms that share an operand is then ONE product with twice the
rows: [x; R{x}] W^T gives s and the R{x} W^T half of R{s}; [R{delta}; delta] W gives g^(l-1) and the R{delta} W
half of R{g^(l-1)}; [R{delta}; delta]^T [x; R{x}] is the whole weight block of H v (inner dimension 2B, written
straight into the result). On a layer of the net the product still costs 8 multiplications of a (B, d) by a
(d, d') matrix where the gradient costs 3 (the products with V cannot pair: dual numbers need 3 multiplications
for 2 coefficients), but in 5 BLAS calls, and with one chunk no weight-sized temporary (a later chunk's weight
block is added through one).

The rows are taken ``chunk`` at a time, each row's loss scaled by 1/N (N = all rows), so the products of the
chunks add up to the product of the mean over all rows. The forward quantities (s, x, g per layer) do not depend
on v: with ``cached`` buffers sized for all N rows, a call with ``prepared`` skips the forward and the gradient
backward and runs the tangent and R-backward passes only (what a Lanczos run repeats).

A product whose matrix products are large runs in parts (:func:`curvature_part_cpu`, the Hessian only): the
rows of each chunk in P parts (forward, tangents, loss, R-backward), then the units of every layer in P parts
(the weight and bias blocks), every product on one BLAS thread, the parts on the caller's threads, as the training
step's :func:`testbed.kernels.train.loss_and_grad_parts_cpu`. A layer's block then holds part after part, each
part's rows as [s_p; R{s}_p], so the paired products stay one call per part.

Both kernels run the same layer bodies, each on the rows it is given (a whole chunk, or one part of it):
:func:`_tangent_layer` (a layer's forward pass and tangents), :func:`_loss_tangent` (the loss and H_z R{z}),
:func:`_delta_tangent` (the R-backward step to [R{delta}; delta]), :func:`_g_tangent_below` ([R{g}; g] of the
layer below) and :func:`_weight_tangent` (rows of the weight and bias blocks of H v). The arguments travel as
named tuples, as in :mod:`testbed.kernels.train` (Numba passes each as a struct): the training kernels'
:class:`testbed.kernels.train.NetArgs` and :class:`testbed.kernels.train.DataArgs`, and the buffers,
:class:`ProductBuffers` and :class:`ProductPartsBuffers`.

The GPU runs the same passes as launches of :func:`gemm_gpu` (the products), :func:`pointwise_gpu` (activation,
phi' and phi'' steps), :func:`column_sums_gpu` (bias blocks) and :func:`loss_hessian_rows_gpu`, driven from the
host by :class:`testbed.curvature_cuda.CudaCurvature`.
"""

from collections import namedtuple

import numpy as np
from numba import njit, types

from ..rules import activations as activation_rules
from ..rules import curvature as curvature_rules
from .nn import _activate_row, _derivative_row
from .registry import CUDA_NOT_IMPORTED, gpu_kernel
from .targets import for_cpu, for_gpu
from .tiles import tile_product_gpu
from .train import _OPTIONS, _layer, _loss_row

#: ``numba.cuda``, imported when the first CUDA kernel of this module is built (:mod:`testbed.kernels.registry`)
cuda = CUDA_NOT_IMPORTED

#: The work buffers of :func:`curvature_product_cpu` (flat, of the net's dtype but ``row_loss``): ``pre``,
#: ``post`` >= 2 chunk (d^(1) + ... + d^(L)), each layer's [s; R{s}] and [x; R{x}] as (2B, d^(l)) blocks, layer
#: after layer, or all N rows' when cached; ``gpost`` >= chunk (d^(1) + ... + d^(L)), g^(l) per layer (B, d^(l)),
#: all N rows' when cached (used only then, for the Hessian); ``d_a``, ``d_b`` >= 2 chunk max d^(l), the blocks
#: [R{g}; g] and [R{delta}; delta] of one layer, alternately; ``scratch`` >= chunk max d^(l); ``wtmp`` >=
#: max d^(l) d^(l-1) when there is more than one chunk; ``row_loss`` >= chunk, float64, the rows' losses.
ProductBuffers = namedtuple("ProductBuffers", ["pre", "post", "gpost", "d_a", "d_b", "scratch", "wtmp", "row_loss"])


#: The work buffers of :func:`curvature_part_cpu`: ``pre``, ``post``, ``gpost`` and ``row_loss`` as in
#: :class:`ProductBuffers`; ``deltas`` >= 2 chunk (d^(1) + ... + d^(L)), every layer's [R{delta}; delta], laid
#: out as ``pre``; one row per part of ``scratch`` (P, >= ceil(chunk / P) max d^(l)), ``columns`` (P, >= 2 chunk
#: ceil(max d^(l) / P)) and ``wtmp`` (P, >= max ceil(d^(l) / P) d^(l-1) when there is more than one chunk): a
#: part's work stays in its own rows, whatever layer the other parts are at.
ProductPartsBuffers = namedtuple(
    "ProductPartsBuffers", ["pre", "post", "gpost", "deltas", "scratch", "columns", "wtmp", "row_loss"]
)


_loss_hessian_row = for_cpu(curvature_rules.loss_hessian_row, error_model="numpy")
_derivative = for_cpu(activation_rules.derivative_given_value, error_model="numpy")
_second_derivative = for_cpu(activation_rules.second_derivative_given_value, error_model="numpy")


@njit(**_OPTIONS)
def _second_order(code, param, s, x, d, rs, rd):
    """One entry of the R-backward step: (R{delta}, delta) = (rd phi'(s) + d phi''(s) rs, d phi'(s)), x = phi(s)."""
    slope = _derivative(code, s, x, param)
    return rd * slope + d * _second_derivative(code, s, x, param) * rs, d * slope


@njit(**_OPTIONS)
def _second_order_rows(code, param, s, x, d, rs, rd):
    """R{delta} and delta from R{g} and g over a layer's rows as one flat row (:func:`_second_order`, in place:
    ``rd`` holds R{g}, ``d`` holds g), ``x = phi(s)``.

    A loop per arithmetic activation with its code a literal, as :func:`testbed.kernels.nn._derivative_row` does:
    LLVM folds the dispatch away and vectorises the loop (one loop with the code as a variable stayed scalar: 3
    ns per float32 entry, 0.77 ms of a 256 x 1024 layer, a fifth of a float32 product's time outside BLAS). The
    same arithmetic in the same order as the scalar rule, so the same bits for the arithmetic activations; the
    others call exp or erfc, which compiled code may reach another way than Python's math (within 2 ulp, tested).
    """
    if code == activation_rules.TANH:
        for j in range(s.size):
            rd[j], d[j] = _second_order(activation_rules.TANH, param, s[j], x[j], d[j], rs[j], rd[j])
    elif code == activation_rules.RELU:
        for j in range(s.size):
            rd[j], d[j] = _second_order(activation_rules.RELU, param, s[j], x[j], d[j], rs[j], rd[j])
    elif code == activation_rules.LINEAR:
        for j in range(s.size):
            rd[j], d[j] = _second_order(activation_rules.LINEAR, param, s[j], x[j], d[j], rs[j], rd[j])
    elif code == activation_rules.LEAKY_RELU:
        for j in range(s.size):
            rd[j], d[j] = _second_order(activation_rules.LEAKY_RELU, param, s[j], x[j], d[j], rs[j], rd[j])
    elif code == activation_rules.SIGMOID:
        for j in range(s.size):
            rd[j], d[j] = _second_order(activation_rules.SIGMOID, param, s[j], x[j], d[j], rs[j], rd[j])
    elif code == activation_rules.HARD_TANH:
        for j in range(s.size):
            rd[j], d[j] = _second_order(activation_rules.HARD_TANH, param, s[j], x[j], d[j], rs[j], rd[j])
    else:
        for j in range(s.size):
            rd[j], d[j] = _second_order(code, param, s[j], x[j], d[j], rs[j], rd[j])


@njit(**_OPTIONS)
def _add_rows(src, dst):
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[i, j] += src[i, j]


@njit(**_OPTIONS)
def _tangent_row(code, param, vb, use_bias, pre_row, post_row, rs_row, rx_row):
    """``rs_row += R{b}`` (when ``use_bias``); ``rx_row = phi'(s) rs_row``."""
    if use_bias:
        for j in range(rs_row.size):
            rs_row[j] += vb[j]
    for j in range(rs_row.size):
        rx_row[j] = rs_row[j]
    _derivative_row(code, param, pre_row, post_row, rx_row)


@njit(**_OPTIONS)
def _layer_code(net, l):
    """The activation code of layer l: the identity on a logits layer."""
    return activation_rules.LINEAR if (net.out_linear and l == net.widths.size - 1) else net.code


# ----------------------------------------------------------------------------------------------------------------
# The R-operator's layer bodies, shared by the one-pass and the parts kernels. Each works on ``rows`` rows whose
# quantities stand beside their tangents in (2 rows, d^(l)) blocks of flat buffers, the block starting at an offset
# the caller gives: the whole chunk's rows in the one pass, one part's rows in the parts kernel.


@njit(**_OPTIONS)
def _tangent_layer(params, v, net, l, x0, pre, post, at, below, rows, fused, scratch):
    """Layer l of ``rows`` rows and its R-operator tangents (Pearlmutter 1994) into the blocks [s; R{s}] of
    ``pre`` and [x; R{x}] of ``post`` that start at ``at``:

        s^(l) = x^(l-1) W^(l)T + b^(l),   x^(l) = phi(s^(l))                                   (when ``fused``)
        R{s^(l)} = x^(l-1) V^(l)T + R{x^(l-1)} W^(l)T + R{b}^(l),   R{x^(l)} = phi'(s^(l)) R{s^(l)}

    (phi = identity on a logits layer). x^(l-1) is ``x0`` on the first layer, where R{x^(0)} = 0; else the block
    [x; R{x}] of layer l - 1 at ``below`` in ``post``, whose halves pair: [x; R{x}] W^T = [s - b; R{x} W^T] is one
    product on 2 ``rows`` rows. Without ``fused``, s and x are those an earlier call kept and only the tangents
    are formed. ``scratch`` >= ``rows`` d^(l).
    """
    fan_in, fan_out = net.widths[l - 1], net.widths[l]
    layer_code = _layer_code(net, l)
    weight = _layer(params, net.weight_at[l - 1], fan_out, fan_in)
    tangent = _layer(v, net.weight_at[l - 1], fan_out, fan_in)
    s, rs = _layer(pre, at, rows, fan_out), _layer(pre, at + rows * fan_out, rows, fan_out)
    x, rx = _layer(post, at, rows, fan_out), _layer(post, at + rows * fan_out, rows, fan_out)
    if l == 1:  # R{x^(0)} = 0
        if fused:
            np.dot(x0, weight.T, s)
        np.dot(x0, tangent.T, rs)
    else:
        if fused:  # [x; R{x}] W^T = [s - b; R{x} W^T]
            np.dot(_layer(post, below, 2 * rows, fan_in), weight.T, _layer(pre, at, 2 * rows, fan_out))
        else:
            np.dot(_layer(post, below + rows * fan_in, rows, fan_in), weight.T, rs)
        t = _layer(scratch, 0, rows, fan_out)
        np.dot(_layer(post, below, rows, fan_in), tangent.T, t)
        _add_rows(t, rs)
    bias = params[net.bias_at[l - 1] : net.bias_at[l - 1] + fan_out]
    vb = v[net.bias_at[l - 1] : net.bias_at[l - 1] + fan_out]
    for i in range(rows):
        if fused:
            _activate_row(layer_code, net.param, s[i], bias, net.use_bias, x[i])
        _tangent_row(layer_code, net.param, vb, net.use_bias, s[i], x[i], rs[i], rx[i])


@njit(**_OPTIONS)
def _tangent_pass(params, v, net, x0, b, lo, fused, pre, post, origin, scratch):
    """The forward pass and its tangents (:func:`_tangent_layer`, layer after layer) of the rows ``x0``, rows
    ``lo .. lo + m`` of a chunk of ``b`` rows whose blocks begin at ``origin``: in each layer's (2b, d^(l)) block of
    ``pre``/``post`` their [s; R{s}] and [x; R{x}] take the 2m rows from row 2 ``lo``. Returns the offset of the
    last layer's block."""
    m = x0.shape[0]
    offset = origin
    prev_offset = origin
    for l in range(1, net.widths.size):
        fan_in, fan_out = net.widths[l - 1], net.widths[l]
        at, below = offset + 2 * lo * fan_out, prev_offset + 2 * lo * fan_in
        _tangent_layer(params, v, net, l, x0, pre, post, at, below, m, fused, scratch)
        prev_offset = offset
        offset += 2 * b * fan_out
    return prev_offset


@njit(**_OPTIONS)
def _loss_tangent(net, data, first, inv_total, post, at, rows, grads, grads_at, fused, row_loss):
    """The loss of rows ``first .. first + rows`` of ``data.x`` and its R-operator: from z, R{z} (the block
    [x; R{x}] of the last layer at ``at`` in ``post``) the block [R{g}; g] of the logits at ``grads_at`` in
    ``grads``,

        g^(L) = dloss/dz  (when ``fused``),   R{g^(L)} = H_z R{z}   (:mod:`testbed.rules.curvature`),

    each row's loss scaled by ``inv_total`` = 1/N. ``row_loss[i]`` (float64) takes row i's share of the mean loss
    when ``fused``; returns their sum in row order (0 otherwise)."""
    classes = net.widths[net.widths.size - 1]
    z, rz = _layer(post, at, rows, classes), _layer(post, at + rows * classes, rows, classes)
    rg, g = _layer(grads, grads_at, rows, classes), _layer(grads, grads_at + rows * classes, rows, classes)
    inv_count = inv_total / classes
    loss = 0.0
    if fused:
        for i in range(rows):
            row = first + i
            row_loss[i] = _loss_row(
                data.loss_code, z, i, data.labels[row], data.targets, row, data.use_targets, inv_total, inv_count, g
            )
            loss += row_loss[i]
    for i in range(rows):
        _loss_hessian_row(data.loss_code, z, i, rz, inv_total, inv_count, rg)
    return loss


@njit(**_OPTIONS)
def _delta_tangent(net, l, pre, post, at, rows, deltas, deltas_at, gpost, kept_at, fused, keep, gauss_newton):
    """The R-backward step of layer l, in place on the block [R{g}; g] of ``rows`` rows at ``deltas_at`` in
    ``deltas``, with s, R{s} and x = phi(s) the blocks at ``at`` in ``pre``/``post``:

        delta^(l) = g^(l) phi'(s^(l)),   R{delta^(l)} = R{g^(l)} phi'(s^(l)) + g^(l) phi''(s^(l)) R{s^(l)},

    leaving [R{delta}; delta]; the Gauss-Newton product (``gauss_newton``) drops the net's own second derivatives,
    R{delta^(l)} = R{g^(l)} phi'(s^(l)), and needs no g. g^(l) (``rows`` d^(l) entries at ``kept_at`` in
    ``gpost``) is kept there by a ``fused`` call with ``keep`` and read from there by a call without ``fused``
    (the forward pass and the gradient backward were kept, :func:`curvature_product_cpu`)."""
    size = rows * net.widths[l]
    layer_code = _layer_code(net, l)
    if not gauss_newton and (keep or not fused):
        g, kept = deltas[deltas_at + size : deltas_at + 2 * size], gpost[kept_at : kept_at + size]
        if fused:
            for j in range(size):
                kept[j] = g[j]
        else:
            for j in range(size):
                g[j] = kept[j]
    flat_s, flat_x = pre[at : at + size], post[at : at + size]
    if gauss_newton:
        _derivative_row(layer_code, net.param, flat_s, flat_x, deltas[deltas_at : deltas_at + size])
    else:
        _second_order_rows(
            layer_code,
            net.param,
            flat_s,
            flat_x,
            deltas[deltas_at + size : deltas_at + 2 * size],
            pre[at + size : at + 2 * size],
            deltas[deltas_at : deltas_at + size],
        )


@njit(**_OPTIONS)
def _g_tangent_below(params, v, net, l, rows, deltas, at, below, below_at, fused, gauss_newton, scratch):
    """The block [R{g}; g] of layer l - 1 at ``below_at`` in ``below`` from layer l's [R{delta}; delta] (``rows``
    rows at ``at`` in ``deltas``):

        g^(l-1) = delta^(l) W^(l)   (when ``fused``),   R{g^(l-1)} = R{delta^(l)} W^(l) + delta^(l) V^(l)

    (the Gauss-Newton product: R{g^(l-1)} = R{delta^(l)} W^(l) alone). The products with W pair: [R{delta}; delta]
    W = [R{delta} W; g^(l-1)] is one product on 2 ``rows`` rows. ``scratch`` >= ``rows`` d^(l-1)."""
    fan_in, fan_out = net.widths[l - 1], net.widths[l]
    weight = _layer(params, net.weight_at[l - 1], fan_out, fan_in)
    rg = _layer(below, below_at, rows, fan_in)
    if fused and not gauss_newton:  # [R{delta}; delta] W = [R{delta} W; g^(l-1)]
        np.dot(_layer(deltas, at, 2 * rows, fan_out), weight, _layer(below, below_at, 2 * rows, fan_in))
    else:
        np.dot(_layer(deltas, at, rows, fan_out), weight, rg)
    if not gauss_newton:
        t = _layer(scratch, 0, rows, fan_in)
        np.dot(_layer(deltas, at + rows * fan_out, rows, fan_out), _layer(v, net.weight_at[l - 1], fan_out, fan_in), t)
        _add_rows(t, rg)


@njit(**_OPTIONS)
def _weight_tangent(out, net, l, pair, below, lo, first, wtmp, b, parts):
    """Rows ``lo .. lo + m`` (units; m = ``pair``'s columns) of layer l's weight and bias blocks of H v:

        (Hv)_W^(l) = R{delta^(l)}T x^(l-1) + delta^(l)T R{x^(l-1)} = [R{delta}; delta]^T [x; R{x}],
        (Hv)_b^(l) = sum_i R{delta^(l)}_i,

    one product whose inner dimension is 2B. ``pair``: those columns of [R{delta}; delta] and ``below`` the block
    [x; R{x}] of layer l - 1, both 2B rows, or R{delta} and x^(l-1) alone (B rows) where the second term is
    absent (R{x^(0)} = 0 on the first layer; the Gauss-Newton product drops delta's terms). The B = ``b`` rows
    stand in ``pair`` in ``parts`` parts, each part's R{delta} rows first; the bias sums run over the R{delta} rows
    in batch order. Written into ``out`` when ``first``, else added through ``wtmp`` (>= m d^(l-1))."""
    m = pair.shape[1]
    fan_in = net.widths[l - 1]
    out_w = _layer(out, net.weight_at[l - 1] + lo * fan_in, m, fan_in)
    if first:
        np.dot(pair.T, below, out_w)
    else:
        tmp_w = _layer(wtmp, 0, m, fan_in)
        np.dot(pair.T, below, tmp_w)
        _add_rows(tmp_w, out_w)
    if net.use_bias:
        out_b = out[net.bias_at[l - 1] + lo : net.bias_at[l - 1] + lo + m]
        if first:
            out_b[:] = 0.0
        step = pair.shape[0] // b  # 2 when each part's rows are [R{delta}_p; delta_p], 1 for R{delta} alone
        for q in range(parts):
            r_lo, r_hi = q * b // parts, (q + 1) * b // parts
            for i in range(r_hi - r_lo):
                r = step * r_lo + i
                for j in range(m):
                    out_b[j] += pair[r, j]


# ----------------------------------------------------------------------------------------------------------------
# The product in one pass, chunk by chunk.


@njit(**_OPTIONS)
def _chunk(params, v, out, first, x0, net, data, row0, inv_total, gauss_newton, fused, keep, buffers, origin):
    """The share of H v (or G v) of the chunk ``x0`` (rows ``row0 ..`` of ``data.x``) into ``out`` (written when
    ``first``, else added); returns its share of the loss (0 unless ``fused``).

    ``fused``: run the forward pass and the gradient backward alongside the tangents (the first product at a
    point), keeping g^(l) in ``buffers.gpost`` when ``keep``; else read s, x from the first halves of the
    ``pre``/``post`` blocks and g from ``gpost`` (kept by an earlier fused call). ``buffers``:
    :class:`ProductBuffers`; the chunk's blocks begin at ``origin`` in ``pre`` and ``post``, at ``origin / 2`` in
    ``gpost``.
    """
    b = x0.shape[0]
    # typed integers, not literals: a literal argument is a signature of its own, and each body would compile
    # once more than the parts kernel's calls need (measured: 5 bodies compiled twice or three times)
    zero, one = np.int64(0), np.int64(1)
    pre, post, gpost, scratch = buffers.pre, buffers.post, buffers.gpost, buffers.scratch
    last = _tangent_pass(params, v, net, x0, b, zero, fused, pre, post, origin, scratch)
    loss = _loss_tangent(net, data, row0, inv_total, post, last, b, buffers.d_a, zero, fused, buffers.row_loss)
    # backward: [R{g}; g] -> [R{delta}; delta] in place, then the weight block and the next [R{g}; g]
    offset, kept = last, last // 2
    current, other = buffers.d_a, buffers.d_b
    for l in range(net.widths.size - 1, 0, -1):
        fan_in, fan_out = net.widths[l - 1], net.widths[l]
        _delta_tangent(net, l, pre, post, offset, b, current, zero, gpost, kept, fused, keep, gauss_newton)
        prev_offset = offset - 2 * b * fan_in if l > 1 else 0
        inner = 2 * b if (l > 1 and not gauss_newton) else b  # [R{delta}; delta]^T [x; R{x}], or R{delta}^T x
        below = _layer(post, prev_offset, inner, fan_in) if l > 1 else x0
        _weight_tangent(out, net, l, _layer(current, 0, inner, fan_out), below, zero, first, buffers.wtmp, b, one)
        if l > 1:
            _g_tangent_below(params, v, net, l, b, current, zero, other, zero, fused, gauss_newton, scratch)
            current, other = other, current
            offset = prev_offset
            kept -= b * fan_in
    return loss


@njit(**_OPTIONS)
def curvature_product_cpu(params, v, out, net, data, gauss_newton, chunk, cached, prepared, buffers):
    """``out`` = H v (``gauss_newton`` False) or G v of the mean loss over every row of ``data.x`` (C-contiguous);
    returns the loss (NaN when ``prepared``: the forward pass was not run again).

    ``net``: :class:`testbed.kernels.train.NetArgs`; ``data``: :class:`testbed.kernels.train.DataArgs`;
    ``buffers``: :class:`ProductBuffers`. Rows go ``chunk`` at a time. With ``cached`` the buffers hold the
    forward pass of all N rows, and ``prepared`` says that an earlier call with the same params, rows and buffers
    filled them.
    """
    x_all = data.x
    n = x_all.shape[0]
    inputs = x_all.shape[1]
    hidden = 0
    for l in range(1, net.widths.size):
        hidden += net.widths[l]
    inv_total = 1.0 / n
    loss = 0.0
    start = np.int64(0)  # typed: a literal 0 compiles _chunk a second time (see _chunk)
    while start < n:
        stop = min(start + chunk, n)
        batch = stop - start
        at = 2 * start * hidden if cached else 0
        x0 = _layer(x_all.reshape(x_all.size), start * inputs, batch, inputs)
        loss += _chunk(
            params, v, out, start == 0, x0, net, data, start, inv_total, gauss_newton, not prepared, cached, buffers, at
        )
        start = stop
    return np.nan if prepared else loss


# ----------------------------------------------------------------------------------------------------------------
# The Hessian product in parts: the rows pass, then the units pass, chunk by chunk.


@njit(**_OPTIONS)
def _rows_part(params, v, net, data, row0, b, inv_total, fused, keep, buffers, origin, part, lo, hi):
    """Rows ``lo .. hi`` of a chunk of ``b`` rows (row ``row0`` of ``data.x`` first): the forward pass and the
    tangents, the loss and its Hessian, and the R-backward recurrence, every product on these rows alone (a row's
    values depend on that row only), with the one pass's layer bodies. Layer l's [R{delta}; delta] is kept in
    ``buffers.deltas`` (laid out as ``pre``) for the weight blocks of :func:`_weight_part`; row i's loss goes to
    ``row_loss[i]`` when ``fused``; ``buffers.scratch[part]`` is this part's. The chunk's blocks begin at ``origin``
    in ``pre`` and ``post``, at ``origin / 2`` in ``gpost`` and at 0 in ``deltas`` (one chunk's).

    Layout of a layer's (2b, d) block of ``pre``, ``post`` and ``deltas``: the parts one after the other, part p's
    m rows as [s_p; R{s}_p] (2m rows) from row 2 lo, so each part's paired products ([x_p; R{x}_p] W^T and
    [R{delta}_p; delta_p] W) are one BLAS call on 2m contiguous rows, as in :func:`_chunk`; ``gpost``'s (b, d)
    blocks keep g in row order."""
    m = hi - lo
    if m == 0:
        return
    inputs = net.widths[0]
    pre, post, deltas, scratch = buffers.pre, buffers.post, buffers.deltas, buffers.scratch[part]
    x0 = _layer(data.x.reshape(data.x.size), (row0 + lo) * inputs, m, inputs)
    gauss_newton = np.bool_(False)  # the Hessian only; typed, as the one pass's flag (a literal compiles again)
    last = _tangent_pass(params, v, net, x0, b, lo, fused, pre, post, origin, scratch)
    at = last + 2 * lo * net.widths[net.widths.size - 1]
    _loss_tangent(net, data, row0 + lo, inv_total, post, at, m, deltas, at - origin, fused, buffers.row_loss[lo:hi])
    offset, kept = last, last // 2
    for l in range(net.widths.size - 1, 0, -1):
        fan_in, fan_out = net.widths[l - 1], net.widths[l]
        at = offset + 2 * lo * fan_out
        kept_at = kept + lo * fan_out
        _delta_tangent(net, l, pre, post, at, m, deltas, at - origin, buffers.gpost, kept_at, fused, keep, gauss_newton)
        if l > 1:
            prev_offset = offset - 2 * b * fan_in
            below_at = prev_offset + 2 * lo * fan_in - origin  # in deltas, which hold one chunk
            _g_tangent_below(params, v, net, l, m, deltas, at - origin, deltas, below_at, fused, gauss_newton, scratch)
            offset = prev_offset
            kept -= b * fan_in


@njit(**_OPTIONS)
def _weight_part(out, first, net, x0, buffers, origin, part, parts):
    """Units ``part`` of ``parts`` of every layer (a contiguous share of its fan_out rows): those rows of the weight
    block [R{delta}; delta]^T [x; R{x}] (R{delta}^T x^(0) on the first layer) and of the bias block sum_i
    R{delta}_i (:func:`_weight_tangent`), from the blocks :func:`_rows_part` kept. The ``delta`` columns are copied
    to ``buffers.columns[part]`` first, so the product reads a contiguous operand. The chunk's blocks begin at
    ``origin`` in ``post`` and at 0 in ``deltas``."""
    b = x0.shape[0]
    columns = buffers.columns[part]
    offset = origin
    prev_offset = origin
    for l in range(1, net.widths.size):
        fan_in, fan_out = net.widths[l - 1], net.widths[l]
        lo, hi = part * fan_out // parts, (part + 1) * fan_out // parts
        mu = hi - lo
        if mu > 0:
            inner = 2 * b if l > 1 else b
            pair = _layer(columns, 0, inner, mu)
            if l > 1:  # every row of the block, in its order ([R{delta}_p; delta_p] part by part)
                for r in range(inner):
                    at = offset - origin + r * fan_out + lo
                    for j in range(mu):
                        pair[r, j] = buffers.deltas[at + j]
            else:  # R{delta} alone, in row order (R{x^(0)} = 0)
                for q in range(parts):
                    r_lo, r_hi = q * b // parts, (q + 1) * b // parts
                    for i in range(r_hi - r_lo):
                        at = offset - origin + (2 * r_lo + i) * fan_out + lo
                        for j in range(mu):
                            pair[r_lo + i, j] = buffers.deltas[at + j]
            below = _layer(buffers.post, prev_offset, inner, fan_in) if l > 1 else x0
            _weight_tangent(out, net, l, pair, below, lo, first, buffers.wtmp[part], b, parts)
        prev_offset = offset
        offset += 2 * b * fan_out


@njit(**_OPTIONS)
def curvature_part_cpu(params, v, out, net, data, start, stop, cached, prepared, buffers, phase, part):
    """One part of one pass of the Hessian product H v in parts (:func:`curvature_product_cpu` with every product
    cut into P = ``buffers.scratch.shape[0]`` parts, each on one thread and one BLAS thread, as
    :func:`testbed.kernels.train.loss_and_grad_parts_cpu` cuts the training step's); the caller runs the parts of a
    pass on its threads (:func:`testbed.kernels.threads.run_items`), chunk by chunk (rows ``start .. stop`` of
    ``data.x``), the rows pass before the units pass.

    ``phase`` 0, the rows pass (:func:`_rows_part`): rows ``part`` of the chunk: the forward pass, the tangents, the
    loss and the R-backward recurrence R{g^(l-1)} = R{delta^(l)} W^(l) + delta^(l) V^(l) on those rows alone,
    keeping every layer's [R{delta}; delta] in ``deltas``. ``phase`` 1, the units pass (:func:`_weight_part`):
    units ``part`` of every layer: their rows of the weight block [R{delta}; delta]^T [x; R{x}] and of the bias
    block, written into ``out`` for the first chunk, added after; part 0 of it returns the chunk's share of the loss
    (the rows' losses summed in row order, 0 when ``prepared``), the others 0.

    Every entry of the forward and backward products is the same sum as in the one-pass kernel (the parts split the
    output's rows); the weight block's sum over 2B rows runs in another order (part by part, each part's R{delta}
    rows then its delta rows), so it differs from the one-pass kernel's by rounding; the bias blocks and the loss
    sum in row order, as there. OpenBLAS's own thread pool, whose threads spin between products, stays idle, and
    the elementwise passes run on every thread. Serial, ``nogil``: a ``prange`` over the parts doubled the compile
    time (:mod:`testbed.kernels.threads`).

    ``net``, ``data`` as :func:`curvature_product_cpu`; ``buffers``: :class:`ProductPartsBuffers`.
    """
    parts = buffers.scratch.shape[0]
    x_all = data.x
    n = x_all.shape[0]
    inputs = x_all.shape[1]
    hidden = 0
    for l in range(1, net.widths.size):
        hidden += net.widths[l]
    batch = stop - start
    at = 2 * start * hidden if cached else 0
    if phase == 0:
        lo, hi = part * batch // parts, (part + 1) * batch // parts
        _rows_part(params, v, net, data, start, batch, 1.0 / n, not prepared, cached, buffers, at, part, lo, hi)
        return 0.0
    x0 = _layer(x_all.reshape(x_all.size), start * inputs, batch, inputs)
    _weight_part(out, start == 0, net, x0, buffers, at, part, parts)
    loss = 0.0
    if part == 0 and not prepared:
        for i in range(batch):
            loss += buffers.row_loss[i]
    return loss


@njit(**_OPTIONS)
def dense_cpu(params, matrix, net, data, gauss_newton, chunk, cached, buffers):
    """Row j of ``matrix`` (P, P) = H e_j (or G e_j): the whole matrix in one call, the forward pass kept between
    columns when ``cached`` (small nets: the per-call overhead of P calls would dominate). Arguments as
    :func:`curvature_product_cpu`."""
    size = params.size
    unit = np.zeros(size, dtype=params.dtype)
    loss = np.nan
    for j in range(size):
        unit[j] = 1.0
        prepared = cached and j > 0
        value = curvature_product_cpu(
            params, unit, matrix[j], net, data, gauss_newton, chunk, cached, prepared, buffers
        )
        if j == 0:
            loss = value
        unit[j] = 0.0
    return loss


@njit(**_OPTIONS)
def lanczos_orthogonalize(basis, j, w, beta_previous, drop, work):
    """One Lanczos step's vector work on w = H q_j, in place; returns (alpha_j, the norm of the new w).

    alpha_j = q_j . w; w -= alpha_j q_j + beta_{j-1} q_{j-1}; then classical Gram-Schmidt against the basis rows
    0..j, a second pass only when the first removed more than ``drop`` of w's norm. ``work`` (as w) takes the
    projection, so that no vector is allocated (a fresh 8 MB vector costs its page faults at every step). Compiled
    so that its BLAS calls go to the same library (and thread pool) as the products' ``np.dot``: NumPy's own BLAS
    between the products left its threads spinning against them (measured: each kept product 57 instead of 21 ms).
    """
    q = basis[j]
    alpha = np.dot(q, w)
    if j > 0:
        previous = basis[j - 1]
        for i in range(w.size):
            w[i] -= alpha * q[i] + beta_previous * previous[i]
    else:
        for i in range(w.size):
            w[i] -= alpha * q[i]
    rows = basis[: j + 1]
    norm = np.sqrt(np.dot(w, w))
    for _ in range(2):
        before = norm
        np.dot(np.dot(rows, w), rows, work)
        for i in range(w.size):
            w[i] -= work[i]
        norm = np.sqrt(np.dot(w, w))
        if norm > drop * before:
            break
    return alpha, norm


# ----------------------------------------------------------------------------------------------------------------
# The GPU twins: the same passes as launches of a few small kernels, driven by testbed.curvature_cuda

#: Side of the square tile of :func:`gemm_gpu` (threads per block = TILE * TILE); read when the kernel runs in
#: the CUDA simulator, so the tests can set a small one.
TILE = 16

#: Modes of :func:`pointwise_gpu`.
P_FORWARD = 0  # pre += vec (when vec is not empty); post = phi(pre)
P_TANGENT = 1  # a += vec (when vec is not empty); b = phi'(s) a              (R{s} -> R{x})
P_DERIVATIVE = 2  # a = b * phi'(s)                                           (g -> delta, R{g} -> R{delta} for G v)
P_SECOND_ORDER = 3  # a = a * phi'(s) + b * phi''(s) * c                       (R{g} -> R{delta} for H v)


def _gemm_signatures():
    signatures = []
    for dtype in (types.float32, types.float64):
        matrix = types.Array(dtype, 2, "A")
        signatures.append((matrix, types.boolean, matrix, types.boolean, matrix, types.boolean))
    return signatures


@gpu_kernel(_gemm_signatures)
def gemm_gpu():
    """``out = op(a) op(b)``, or ``out += op(a) op(b)`` when ``accumulate``; op(a) is ``a`` or ``a^T``
    (``transpose_a``), likewise op(b). TILE x TILE shared-memory tiles, float64 accumulators
    (:func:`testbed.kernels.tiles.tile_product_gpu`); launch with blocks of (TILE, TILE) threads on
    :func:`gemm_grid` of ``out``'s shape."""
    tile_product = tile_product_gpu()

    @cuda.jit
    def kernel(a, transpose_a, b, transpose_b, out, accumulate):
        tile_a = cuda.shared.array((TILE, TILE), dtype=types.float64)
        tile_b = cuda.shared.array((TILE, TILE), dtype=types.float64)
        row = cuda.blockIdx.y * TILE + cuda.threadIdx.y
        col = cuda.blockIdx.x * TILE + cuda.threadIdx.x
        rows, cols = out.shape
        acc = tile_product(a, transpose_a, b, transpose_b, row, col, rows, cols, tile_a, tile_b, TILE)
        if row < rows and col < cols:
            out[row, col] = out[row, col] + acc if accumulate else acc

    return kernel


def gemm_grid(rows, cols):
    """The grid of :func:`gemm_gpu` for an output of ``rows`` x ``cols``."""
    return ((cols + TILE - 1) // TILE, (rows + TILE - 1) // TILE)


def _pointwise_signatures():
    signatures = []
    for dtype in (types.float32, types.float64):
        matrix = types.Array(dtype, 2, "A")
        signatures.append(
            (
                types.int64,
                types.int64,
                types.float64,
                matrix,
                matrix,
                matrix,
                matrix,
                matrix,
                types.Array(dtype, 1, "A"),
            )
        )
    return signatures


@gpu_kernel(_pointwise_signatures)
def pointwise_gpu():
    """One thread per entry (grid-stride) of the (B, d) arrays: the elementwise steps of the curvature passes,
    chosen by ``mode`` (P_FORWARD, P_TANGENT, P_DERIVATIVE, P_SECOND_ORDER; see their comments), with the
    activation rules of :mod:`testbed.rules.activations` (s = ``pre``, phi(s) = ``post``)."""
    value = for_gpu(activation_rules.value)
    derivative = for_gpu(activation_rules.derivative_given_value)
    second_derivative = for_gpu(activation_rules.second_derivative_given_value)

    @cuda.jit
    def kernel(mode, code, param, pre, post, a, b, c, vec):
        rows, cols = pre.shape
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for index in range(start, rows * cols, stride):
            i, j = index // cols, index % cols
            if mode == P_FORWARD:
                if vec.size > 0:
                    pre[i, j] = pre[i, j] + vec[j]
                post[i, j] = value(code, pre[i, j], param)
            elif mode == P_TANGENT:
                if vec.size > 0:
                    a[i, j] = a[i, j] + vec[j]
                b[i, j] = a[i, j] * derivative(code, pre[i, j], post[i, j], param)
            elif mode == P_DERIVATIVE:
                a[i, j] = b[i, j] * derivative(code, pre[i, j], post[i, j], param)
            else:
                s, x = pre[i, j], post[i, j]
                a[i, j] = (
                    a[i, j] * derivative(code, s, x, param) + b[i, j] * second_derivative(code, s, x, param) * c[i, j]
                )

    return kernel


def _column_sum_signatures():
    return [(types.Array(dtype, 2, "A"), types.Array(dtype, 1, "A")) for dtype in (types.float32, types.float64)]


@gpu_kernel(_column_sum_signatures)
def column_sums_gpu():
    """``out[j] += sum_i a[i, j]``, one thread per column summing its rows in order (deterministic, float64)."""

    @cuda.jit
    def kernel(a, out):
        rows, cols = a.shape
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for j in range(start, cols, stride):
            total = 0.0
            for i in range(rows):
                total += a[i, j]
            out[j] = out[j] + total

    return kernel


def _loss_hessian_signatures():
    signatures = []
    for dtype in (types.float32, types.float64):
        matrix = types.Array(dtype, 2, "A")
        signatures.append((types.int64, matrix, matrix, types.float64, types.float64, matrix))
    return signatures


@gpu_kernel(_loss_hessian_signatures)
def loss_hessian_rows_gpu():
    """One thread per row i: ``out[i]`` = the loss Hessian of row i (:func:`testbed.rules.curvature.loss_hessian_row`,
    the CPU passes' rule) times ``rz[i]``."""
    loss_hessian_row = for_gpu(curvature_rules.loss_hessian_row)

    @cuda.jit
    def kernel(loss_code, z, rz, inv_total, inv_count, out):
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, z.shape[0], stride):
            loss_hessian_row(loss_code, z, i, rz, inv_total, inv_count, out)

    return kernel
