"""The CUDA training loop of :func:`testbed.train.fit`: the data, the parameters, the gradients and the optimizer's
state stay on the device; one copy comes back per step.

Set up once: the training and test splits, the parameters, a zeroed gradient and the optimizer's slots are copied
to the device, with every layer's buffers. Each epoch's Philox permutation (:func:`testbed.data.permutation`, the
CPU's batches exactly) is copied once per epoch. Step t then runs on the device only:

    x^(0) = x_train[rows_t]                                    (:func:`~testbed.kernels.train.gather_rows_gpu`)
    s^(l) = x^(l-1) W^(l)^T + b^(l), x^(l) = phi(s^(l))        (the tiled product, forward epilogue)
    loss rows and dloss/dz                                     (:func:`~testbed.kernels.train.loss_rows_gpu`)
    dW^(l) = delta^(l)^T x^(l-1);  delta^(l-1) = (delta^(l) W^(l)) * phi'(s^(l-1)), db by column sums
    count the gradient's non-finite entries                    (:func:`~testbed.kernels.optim.count_nonfinite_gpu`)

and ONE copy back: the batch's row losses with the gradient's non-finite count and the previous step's overflow
count (:func:`~testbed.kernels.train.report_gpu`). The host sums the loss, decides (divergence, a skipped step)
and launches the optimizer's step (:func:`~testbed.kernels.optim.step_gpu`), whose count of parameters made
non-finite comes back with the next step's report, or at once at an evaluation step and at the end. Evaluations
(every ``eval_every`` steps) run on the device splits and copy back each chunk's row losses and predictions; the
per-layer records copy the parameters and gradients to the host at those steps only.
"""

from __future__ import annotations

import math

import numpy as np

from . import backend as backends
from . import data as datasets
from .kernels import nn as nn_kernels
from .kernels import optim as optim_kernels
from .kernels import train as kernels
from .nn.cuda import _grid
from .rules import optimizers as optimizer_rules


class DeviceRun:
    """The device arrays and launches of a CUDA training run of ``net`` with ``optimizer`` (see the module)."""

    def __init__(self, net, optimizer, x_train, y_train, x_test, y_test, batch, seed, loss_code, eval_chunk):
        from numba import cuda

        self.cuda = cuda
        self.net, self.optimizer = net, optimizer
        self.batch, self.loss_code, self.eval_chunk = batch, loss_code, eval_chunk
        dtype, widths = net.dtype, net.widths
        self.finite_max = float(np.finfo(dtype).max)
        self.kind = dtype.type
        self.y_train_host, self.y_test_host = y_train, y_test
        self.x_train, self.y_train = backends.to_device(x_train), backends.to_device(y_train)
        self.x_test, self.y_test = backends.to_device(x_test), backends.to_device(y_test)
        self.params = backends.to_device(net.params)
        self.grads = cuda.device_array(net.size, dtype=dtype)
        self.state = optimizer.init(self.params)
        self.no_targets = backends.to_device(np.zeros((1, 1), dtype=dtype))
        self.all_rows = backends.to_device(np.arange(max(x_train.shape[0], x_test.shape[0]), dtype=np.int64))
        self.matmul = nn_kernels.matmul_epilogue_gpu()
        # statistics that the epilogues accumulate and nobody reads here (the records use net.forward)
        self.scratch_stats = cuda.device_array(nn_kernels.FORWARD_SLOTS, dtype=np.float64)
        self.scratch_active = cuda.device_array(max(widths), dtype=np.int32)
        self.no_edges = cuda.device_array(0, dtype=np.float64)
        self.no_counts = cuda.device_array(0, dtype=np.int64)
        self.no_active = cuda.device_array(0, dtype=np.int32)
        self.zeros = cuda.device_array(0, dtype=dtype)
        self.x0 = cuda.device_array((batch, widths[0]), dtype=dtype)
        self.pre = [None] + [cuda.device_array((batch, w), dtype=dtype) for w in widths[1:]]
        self.post = [self.x0] + [cuda.device_array((batch, w), dtype=dtype) for w in widths[1:]]
        self.delta = [None] + [cuda.device_array((batch, w), dtype=dtype) for w in widths[1:]]
        self.eval_pre = [None] + [cuda.device_array((eval_chunk, w), dtype=dtype) for w in widths[1:]]
        self.eval_post = [None] + [cuda.device_array((eval_chunk, w), dtype=dtype) for w in widths[1:]]
        self.eval_dz = cuda.device_array((eval_chunk, widths[-1]), dtype=dtype)
        self.eval_loss = cuda.device_array(eval_chunk, dtype=np.float64)
        self.eval_predicted = cuda.device_array(eval_chunk, dtype=np.int64)
        self.predicted = cuda.device_array(batch, dtype=np.int64)
        self.report = cuda.device_array(batch + 2, dtype=np.float64)  # row losses, bad gradients, overflow
        self.counts = backends.to_device(np.zeros(2, dtype=np.int64))  # bad gradients, overflowed parameters
        self.n, self.seed = x_train.shape[0], seed
        self.per_epoch = self.n // batch
        self.epoch, self.order = -1, None

    # layers -------------------------------------------------------------------------------------------------------

    def _bias(self, flat, l):
        return self.net._bias_view(flat, l) if self.net.bias else self.zeros

    def _forward(self, previous, pres, posts, rows):
        """s^(l), x^(l) of every layer for ``rows`` input rows into ``pres[l][:rows]``, ``posts[l][:rows]``."""
        net = self.net
        for l in range(1, net.depth + 1):
            act = net.layer_activation(l)
            pre, post = pres[l][:rows], posts[l][:rows]
            self.matmul[_grid(rows, net.widths[l]), (nn_kernels.TILE, nn_kernels.TILE)](
                previous,
                False,
                net._weight_view(self.params, l),
                True,
                pre,
                nn_kernels.MODE_FORWARD,
                self._bias(self.params, l),
                net.bias,
                post,
                pre,
                act.code,
                act.param,
                -math.inf,
                math.inf,
                self.finite_max,
                0.0,
                0.0,
                self.scratch_stats,
                self.scratch_active,
                self.no_edges,
                self.no_counts,
                self.zeros,
            )
            previous = post
        return previous

    def _product(self, a, transpose_a, b, out, mode, post, aux, code, param, use_bias, bias_grad):
        self.matmul[_grid(*out.shape), (nn_kernels.TILE, nn_kernels.TILE)](
            a,
            transpose_a,
            b,
            False,
            out,
            mode,
            self.zeros,
            use_bias,
            post,
            aux,
            code,
            param,
            -math.inf,
            math.inf,
            self.finite_max,
            0.0,
            0.0,
            self.scratch_stats,
            self.no_active,
            self.no_edges,
            self.no_counts,
            bias_grad,
        )

    # a step -------------------------------------------------------------------------------------------------------

    def _rows(self, t):
        epoch, index = divmod(t - 1, self.per_epoch)
        if epoch != self.epoch:  # one copy per epoch: the CPU's permutation, so the CPU's batches
            self.epoch = epoch
            self.order = backends.to_device(datasets.permutation(self.n, seed=self.seed, epoch=epoch))
        return self.order[index * self.batch : (index + 1) * self.batch]

    def loss_and_grad(self, t):
        """Step t's loss and gradient on the device; returns (loss, non-finite gradient entries, parameters the
        previous optimizer step made non-finite), the one copy of the step."""
        net, batch = self.net, self.batch
        depth, classes = net.depth, net.widths[-1]
        rows = self._rows(t)
        blocks, threads = backends.launch_shape(batch * net.widths[0])
        kernels.gather_rows_gpu()[blocks, threads](self.x_train, rows, self.x0)
        logits = self._forward(self.x0, self.pre, self.post, batch)
        blocks, threads = backends.launch_shape(net.size)
        kernels.fill_gpu()[blocks, threads](self.grads, self.kind(0))
        delta = self.delta[depth]
        blocks, threads = backends.launch_shape(batch)
        kernels.loss_rows_gpu()[blocks, threads](
            logits,
            self.y_train,
            self.no_targets,
            rows,
            False,
            self.loss_code,
            1.0 / batch,
            1.0 / (batch * classes),
            delta,
            self.report[:batch],
            self.predicted,
        )
        blocks, threads = backends.launch_shape(delta.size)
        if net.output_kind != "linear":  # dloss/ds^(L) = dloss/dx^(L) * phi'(s^(L))
            act = net.layer_activation(depth)
            kernels.derivative_rows_gpu()[blocks, threads](act.code, act.param, self.pre[depth], logits, delta)
        nn_kernels.delta_stats_gpu()[blocks, threads](
            delta, self.finite_max, self.scratch_stats, self._bias(self.grads, depth), net.bias
        )
        act = net.activation
        for l in range(depth, 0, -1):
            weight_grad = net._weight_view(self.grads, l)  # post and aux: unused by the product's epilogue
            self._product(
                delta,
                True,
                self.post[l - 1],
                weight_grad,
                nn_kernels.MODE_PRODUCT,
                weight_grad,
                weight_grad,
                act.code,
                act.param,
                False,
                self.zeros,
            )
            if l > 1:
                self._product(
                    delta,
                    False,
                    net._weight_view(self.params, l),
                    self.delta[l - 1],
                    nn_kernels.MODE_DELTA,
                    self.post[l - 1],
                    self.pre[l - 1],
                    act.code,
                    act.param,
                    net.bias,
                    self._bias(self.grads, l - 1),
                )
                delta = self.delta[l - 1]
        blocks, threads = backends.launch_shape(net.size)
        optim_kernels.count_nonfinite_gpu()[blocks, threads](self.grads, self.counts[:1])
        kernels.report_gpu()[1, 1](self.counts, self.report, batch)
        report = self.report.copy_to_host()
        return float(np.sum(report[:batch])), int(report[batch]), int(report[batch + 1])

    def apply(self):
        """Launch the optimizer's step on the device (its overflow count is read later); returns nothing."""
        optimizer, state = self.optimizer, self.state
        t = state.step + 1
        coefficients = optimizer_rules.prepare(optimizer.code, optimizer.hyper, t, optimizer.learning_rate(t))
        blocks, threads = backends.launch_shape(self.net.size)
        optim_kernels.step_gpu()[blocks, threads](
            optimizer.code,
            tuple(self.kind(h) for h in optimizer.hyper),
            *(self.kind(c) for c in coefficients),
            self.params,
            self.grads,
            *state.slots,
            optimizer.n_slots,
            self.counts[1:],
        )
        state.step = t

    def skip(self):
        """A step not taken on a non-finite gradient (the optimizer's ``nonfinite="skip"``)."""
        self.state.skipped += 1

    def overflowed(self):
        """The parameters that the optimizer's last step made non-finite, read now (one copy)."""
        kernels.report_gpu()[1, 1](self.counts, self.report, self.batch)
        return int(self.report[self.batch + 1 :].copy_to_host()[0])

    # the host side ------------------------------------------------------------------------------------------------

    def evaluate(self, which):
        """(mean loss, accuracy) over the whole ``"test"`` or ``"train"`` split, ``eval_chunk`` rows per pass."""
        x, y, labels = (
            (self.x_test, self.y_test, self.y_test_host)
            if which == "test"
            else (self.x_train, self.y_train, self.y_train_host)
        )
        n, classes = x.shape[0], self.net.widths[-1]
        total, correct = 0.0, 0
        for start in range(0, n, self.eval_chunk):
            stop = min(start + self.eval_chunk, n)
            rows = stop - start
            logits = self._forward(x[start:stop], self.eval_pre, self.eval_post, rows)
            blocks, threads = backends.launch_shape(rows)
            kernels.loss_rows_gpu()[blocks, threads](
                logits,
                y,
                self.no_targets,
                self.all_rows[start:stop],
                False,
                self.loss_code,
                1.0 / n,
                1.0 / (n * classes),
                self.eval_dz[:rows],
                self.eval_loss[:rows],
                self.eval_predicted[:rows],
            )
            total += float(np.sum(self.eval_loss[:rows].copy_to_host()))
            correct += int(np.sum(self.eval_predicted[:rows].copy_to_host() == labels[start:stop]))
        return total, correct / n

    def params_to_host(self):
        self.params.copy_to_host(self.net.params)

    def to_host(self):
        """The net's ``params`` and ``grads`` set to the device's."""
        self.params.copy_to_host(self.net.params)
        self.grads.copy_to_host(self.net.grads)
