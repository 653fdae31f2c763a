"""The GPU side of :mod:`testbed.curvature`: Hessian- and Gauss-Newton-vector products of an MLP's mean loss.

The passes of :mod:`testbed.kernels.curvature` (Pearlmutter 1994's R-operator: forward, loss, gradient backward,
tangent forward, loss Hessian, R-backward) as launches of its GPU kernels, layer by layer, rows ``chunk`` at a time.
The parameters and the rows are copied to the device once; with ``cached`` the forward quantities s^(l), x^(l),
g^(l) of every chunk stay on the device between products (they do not depend on v), as on the CPU.
"""

from __future__ import annotations

import math

import numpy as np

from . import backend as backends
from .kernels import curvature as kernels
from .kernels import train as train_kernels
from .rules import activations as activation_rules


class CudaCurvature:
    """v -> H v (or G v) on the GPU for the net described by ``layout`` (a :class:`testbed.train._Layout`) with
    parameters ``params`` over the rows ``x``, labels ``y``."""

    def __init__(self, params, x, y, layout, loss_code, gauss_newton, chunk, cached, no_targets):
        from numba import cuda

        self.cuda = cuda
        widths, weight_at, bias_at, use_bias, code, param, out_linear = layout.net_args()
        self.widths = [int(w) for w in widths]
        self.depth = len(self.widths) - 1
        self.weight_at, self.bias_at = [int(a) for a in weight_at], [int(a) for a in bias_at]
        self.use_bias, self.code, self.param, self.out_linear = bool(use_bias), int(code), float(param), out_linear
        self.loss_code, self.gauss_newton = int(loss_code), bool(gauss_newton)
        self.dtype = params.dtype
        self.size = params.size
        self.n = x.shape[0]
        self.chunk = chunk
        self.chunks = [(start, min(start + chunk, self.n)) for start in range(0, self.n, chunk)]
        hidden = sum(self.widths[1:])
        kept_rows = self.n if cached else chunk
        entries = 3 * self.size + x.size + 3 * kept_rows * hidden + 4 * chunk * hidden
        backends.check_memory(
            entries * self.dtype.itemsize + 8 * self.n,
            f"the curvature products' device arrays (rows = {self.n}, chunk = {chunk}, parameters = {self.size})",
            device=True,
        )
        self.params = backends.to_device(params)
        self.x = backends.to_device(x)
        self.y = backends.to_device(y)
        self.targets = backends.to_device(no_targets)
        self.empty_vector = cuda.device_array(0, dtype=self.dtype)
        self.gemm, self.pointwise = kernels.gemm_gpu(), kernels.pointwise_gpu()
        self.column_sums, self.loss_hessian = kernels.column_sums_gpu(), kernels.loss_hessian_rows_gpu()
        self.loss_rows = train_kernels.loss_rows_gpu()
        self.cached = cached
        # per chunk (one chunk when not cached): the layers' s^(l), x^(l), g^(l)
        self.kept = [tuple(self._layers(chunk) for _ in range(3)) for _ in (self.chunks if cached else self.chunks[:1])]
        self.rpre, self.rpost, self.rg = self._layers(chunk), self._layers(chunk), self._layers(chunk)
        self.delta = self._layers(chunk)
        self.prepared = False

    # helpers ------------------------------------------------------------------------------------------------------

    def _layers(self, rows):
        """One (rows, d^(l)) device array per layer l = 1..L (index l - 1)."""
        return [self.cuda.device_array((rows, width), dtype=self.dtype) for width in self.widths[1:]]

    def _weights(self, flat, l):
        at = self.weight_at[l - 1]
        return flat[at : at + self.widths[l] * self.widths[l - 1]].reshape(self.widths[l], self.widths[l - 1])

    def _biases(self, flat, l):
        if not self.use_bias:
            return self.empty_vector
        return flat[self.bias_at[l - 1] : self.bias_at[l - 1] + self.widths[l]]

    def _layer_code(self, l):
        return activation_rules.LINEAR if (self.out_linear and l == self.depth) else self.code

    def _product(self, a, transpose_a, b, transpose_b, out, accumulate):
        self.gemm[kernels.gemm_grid(*out.shape), (kernels.TILE, kernels.TILE)](
            a, transpose_a, b, transpose_b, out, accumulate
        )

    def _pointwise(self, mode, l, pre, post, a, b, c, vec):
        blocks, threads = backends.launch_shape(pre.size)
        self.pointwise[blocks, threads](mode, self._layer_code(l), self.param, pre, post, a, b, c, vec)

    # passes -------------------------------------------------------------------------------------------------------

    def _prepare(self, kept, start, stop):
        """Forward pass, loss gradient g^(L) and (Hessian only) the gradient backward g^(l); the chunk's loss."""
        pre, post, g = kept
        batch = stop - start
        previous = self.x[start:stop]
        for l in range(1, self.depth + 1):
            s, x = pre[l - 1][:batch], post[l - 1][:batch]
            self._product(previous, False, self._weights(self.params, l), True, s, False)
            self._pointwise(kernels.P_FORWARD, l, s, x, s, s, s, self._biases(self.params, l))
            previous = x
        classes = self.widths[-1]
        row_loss = self.cuda.device_array(batch, dtype=np.float64)
        predicted = self.cuda.device_array(batch, dtype=np.int64)
        blocks, threads = backends.launch_shape(batch)
        self.loss_rows[blocks, threads](
            previous,
            self.y,
            self.targets,
            backends.to_device(np.arange(start, stop, dtype=np.int64)),
            False,
            self.loss_code,
            1.0 / self.n,
            1.0 / (self.n * classes),
            g[self.depth - 1][:batch],
            row_loss,
            predicted,
        )
        if not self.gauss_newton:
            for l in range(self.depth, 1, -1):
                d = self.delta[l - 1][:batch]
                s, x = pre[l - 1][:batch], post[l - 1][:batch]
                self._pointwise(kernels.P_DERIVATIVE, l, s, x, d, g[l - 1][:batch], d, self.empty_vector)
                self._product(d, False, self._weights(self.params, l), False, g[l - 2][:batch], False)
        return float(np.sum(row_loss.copy_to_host()))

    def _add_product(self, kept, v, out, start, stop):
        """Adds the chunk's share of H v (or G v) to ``out`` (device), from the kept s, x, g."""
        pre, post, g = kept
        batch = stop - start
        x0 = self.x[start:stop]
        for l in range(1, self.depth + 1):  # tangent forward: R{s^(l)}, R{x^(l)}
            rs, rx = self.rpre[l - 1][:batch], self.rpost[l - 1][:batch]
            self._product(x0 if l == 1 else post[l - 2][:batch], False, self._weights(v, l), True, rs, False)
            if l > 1:
                self._product(self.rpost[l - 2][:batch], False, self._weights(self.params, l), True, rs, True)
            s, x = pre[l - 1][:batch], post[l - 1][:batch]
            self._pointwise(kernels.P_TANGENT, l, s, x, rs, rx, rs, self._biases(v, l))
        last = self.depth - 1
        rg = self.rg[last][:batch]
        blocks, threads = backends.launch_shape(batch)
        classes = self.widths[-1]
        self.loss_hessian[blocks, threads](
            self.loss_code, post[last][:batch], self.rpost[last][:batch], 1.0 / self.n, 1.0 / (self.n * classes), rg
        )
        for l in range(self.depth, 0, -1):  # R-backward
            s, x = pre[l - 1][:batch], post[l - 1][:batch]
            rd, d = self.rg[l - 1][:batch], self.delta[l - 1][:batch]  # R{delta^(l)} replaces R{g^(l)} in place
            if self.gauss_newton:
                self._pointwise(kernels.P_DERIVATIVE, l, s, x, rd, rd, rd, self.empty_vector)
            else:
                gl, rs = g[l - 1][:batch], self.rpre[l - 1][:batch]
                self._pointwise(kernels.P_SECOND_ORDER, l, s, x, rd, gl, rs, self.empty_vector)
                self._pointwise(kernels.P_DERIVATIVE, l, s, x, d, gl, d, self.empty_vector)  # delta = g phi'
            previous = x0 if l == 1 else post[l - 2][:batch]
            out_w = self._weights(out, l)
            self._product(rd, True, previous, False, out_w, True)
            if l > 1 and not self.gauss_newton:
                self._product(d, True, self.rpost[l - 2][:batch], False, out_w, True)
            if self.use_bias:
                blocks, threads = backends.launch_shape(self.widths[l])
                self.column_sums[blocks, threads](rd, self._biases(out, l))
            if l > 1:
                rg_next = self.rg[l - 2][:batch]
                self._product(rd, False, self._weights(self.params, l), False, rg_next, False)
                if not self.gauss_newton:
                    self._product(d, False, self._weights(v, l), False, rg_next, True)

    def matvec(self, v):
        """(H v or G v as a host array, the mean loss or NaN when the kept forward pass was reused)."""
        v_device = backends.to_device(v)
        out = backends.to_device(np.zeros(self.size, dtype=self.dtype))
        loss = 0.0 if not self.prepared else math.nan
        for index, (start, stop) in enumerate(self.chunks):
            kept = self.kept[index] if self.cached else self.kept[0]
            if not self.prepared:
                loss += self._prepare(kept, start, stop)
            self._add_product(kept, v_device, out, start, stop)
        self.prepared = self.cached
        return out.copy_to_host(), loss
