"""The GPU side of an MLP's passes: one driver that owns the device arrays of a forward pass and runs the backward.

:class:`CudaPasses` copies the parameters and the input to the device once, launches the tiled product of
:func:`testbed.kernels.nn.matmul_epilogue_gpu` per layer (forward: product, bias, activation and statistics in
one launch), keeps the device activations that the backward pass needs, and runs that backward pass from them
(weight gradient: a product; delta: a product with the activation's derivative in the epilogue). The host arrays
of statistics stay the record; they are filled when a pass finishes.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend as backends
from ..kernels import nn as kernels


def _grid(rows, cols):
    """Blocks of TILE x TILE threads covering a (rows, cols) output."""
    return ((cols + kernels.TILE - 1) // kernels.TILE, (rows + kernels.TILE - 1) // kernels.TILE)


class CudaPasses:
    """Device arrays and launches of one forward pass of ``net`` over ``x``, and of the backward pass after it."""

    def __init__(self, net, x, edges, stats, active, counts):
        from numba import cuda

        self.cuda = cuda
        self.net = net
        self.kernel = kernels.matmul_epilogue_gpu()
        self.params = backends.to_device(net.params)
        self.inputs = backends.to_device(x)
        self.edges = backends.to_device(edges)
        self.stats_host, self.active_host, self.counts_host = stats, active, counts
        self.stats = backends.to_device(stats)
        self.active = backends.to_device(active.astype(np.int32))
        self.counts = backends.to_device(counts)
        self.zeros = cuda.device_array(0, dtype=net.dtype)
        self.kept_pre, self.kept_post = None, None

    def empty(self, rows, cols):
        return self.cuda.device_array((rows, cols), dtype=self.net.dtype)

    def _weights(self, flat, l):
        return self.net._weight_view(flat, l)

    def _biases(self, flat, l):
        return self.net._bias_view(flat, l) if self.net.bias else self.zeros

    # forward ------------------------------------------------------------------------------------------------------

    def forward_layer(self, l, previous, pre, post, act, low, high, finite_max, shift_s, shift_x):
        """s^(l) = previous W^(l)^T + b^(l), x^(l) = act(s^(l)), and layer l's statistics, in one launch."""
        self.kernel[_grid(*pre.shape), (kernels.TILE, kernels.TILE)](
            previous,
            False,
            self._weights(self.params, l),
            True,
            pre,
            kernels.MODE_FORWARD,
            self._biases(self.params, l),
            self.net.bias,
            post,
            pre,
            act.code,
            act.param,
            low,
            high,
            finite_max,
            shift_s,
            shift_x,
            self.stats[l - 1],
            self.active[l - 1],
            self.edges,
            self.counts[l - 1] if self.counts.shape[1] else self.cuda.device_array(0, dtype=np.int64),
            self.zeros,
        )

    def layer_stats(self, l):
        return self.stats[l - 1].copy_to_host()

    def finish_forward(self, kept_pre, kept_post):
        """Copy the statistics to the host; keep the device activations (``None``: not kept) for :meth:`backward`."""
        self.stats_host[...] = self.stats.copy_to_host()
        self.active_host[...] = self.active.copy_to_host()
        self.counts_host[...] = self.counts.copy_to_host()
        self.kept_pre, self.kept_post = kept_pre, kept_post

    # backward -----------------------------------------------------------------------------------------------------

    def backward(self, given, stats_delta, stats_w, finite_max):
        """Backpropagate delta^(L) = ``given`` through the kept activations; fill the net's grads and the statistics.

        Returns the first layer (going down) whose delta or weight gradient overflowed, or None.
        """
        net, cuda = self.net, self.cuda
        if self.kept_pre is None or len(self.kept_pre) != net.depth:
            raise ValueError("backward needs a forward pass over every layer (keep=True, layers=None)")
        act = net.activation
        params = backends.to_device(net.params)
        grads = backends.to_device(np.zeros_like(net.grads))
        device_stats_delta = backends.to_device(stats_delta)
        device_stats_w = backends.to_device(stats_w)
        no_active = cuda.device_array(0, dtype=np.int32)
        no_edges = cuda.device_array(0, dtype=np.float64)
        no_counts = cuda.device_array(0, dtype=np.int64)
        zeros = self.zeros
        depth = net.depth
        delta = backends.to_device(given)
        blocks, threads = backends.launch_shape(delta.size)
        kernels.delta_stats_gpu()[blocks, threads](
            delta, finite_max, device_stats_delta[depth - 1], self._biases(grads, depth), net.bias
        )
        overflow = depth if device_stats_delta[depth - 1].copy_to_host()[kernels.B_NONFINITE] else None
        l = depth
        while overflow is None and l >= 1:
            weight_grad = self._weights(grads, l)
            self.kernel[_grid(*weight_grad.shape), (kernels.TILE, kernels.TILE)](
                delta,
                True,
                self.kept_post[l - 1],
                False,
                weight_grad,
                kernels.MODE_PRODUCT,
                zeros,
                False,
                weight_grad,
                weight_grad,
                act.code,
                act.param,
                -math.inf,
                math.inf,
                finite_max,
                0.0,
                0.0,
                device_stats_w[l - 1],
                no_active,
                no_edges,
                no_counts,
                zeros,
            )
            if device_stats_w[l - 1].copy_to_host()[kernels.B_NONFINITE]:
                overflow = l
                break
            if l > 1:
                delta_prev = cuda.device_array((delta.shape[0], net.widths[l - 1]), dtype=net.dtype)
                self.kernel[_grid(*delta_prev.shape), (kernels.TILE, kernels.TILE)](
                    delta,
                    False,
                    self._weights(params, l),
                    False,
                    delta_prev,
                    kernels.MODE_DELTA,
                    zeros,
                    net.bias,
                    self.kept_post[l - 1],
                    self.kept_pre[l - 2],
                    act.code,
                    act.param,
                    -math.inf,
                    math.inf,
                    finite_max,
                    0.0,
                    0.0,
                    device_stats_delta[l - 2],
                    no_active,
                    no_edges,
                    no_counts,
                    self._biases(grads, l - 1),
                )
                if device_stats_delta[l - 2].copy_to_host()[kernels.B_NONFINITE]:
                    overflow = l - 1
                delta = delta_prev
            l -= 1
        stats_delta[...] = device_stats_delta.copy_to_host()
        stats_w[...] = device_stats_w.copy_to_host()
        net.grads[...] = grads.copy_to_host()
        return overflow
