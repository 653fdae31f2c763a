"""Loss rules per row of a batch: the loss of one example and its gradient with respect to the logits.

Written once, as plain Python over a 2-D array and a row index, and compiled for both targets like every rule
(:mod:`testbed.kernels.targets`): the CPU training kernels call them in a loop over rows, the CUDA kernel with
one thread per row. Each returns the row's share of the MEAN loss and writes the row of ``dz`` = d(mean loss)/dz.

Softmax cross-entropy (PyTorch's ``cross_entropy``, mean reduction), logits z (B x K), label y:

    loss = (1/B) sum_i [ logsumexp(z_i) - z_i,y_i ],     dloss/dz_i = (softmax(z_i) - onehot(y_i)) / B,

with the row maximum subtracted before exponentiating (no overflow for any finite logits).

Mean squared error (PyTorch's ``mse_loss``, mean over all B x K entries), targets t (one-hot labels or given):

    loss = (1/(B K)) sum_i sum_k (z_ik - t_ik)^2,        dloss/dz_ik = 2 (z_ik - t_ik) / (B K).
"""

import math

#: Loss codes (kernel arguments).
CROSS_ENTROPY = 0
MSE = 1


def softmax_row(z, i, out):
    """``out[i] = softmax(z[i])``; returns ``logsumexp(z[i])``. The row maximum is subtracted before
    exponentiating, so any finite logits give finite results."""
    classes = z.shape[1]
    top = z[i, 0]
    for k in range(1, classes):
        if z[i, k] > top:
            top = z[i, k]
    total = 0.0
    for k in range(classes):
        e = math.exp(z[i, k] - top)
        out[i, k] = e
        total += e
    inv_total = 1.0 / total
    for k in range(classes):
        out[i, k] = out[i, k] * inv_total
    return top + math.log(total)


def softmax_cross_entropy_row(z, i, label, inv_batch, dz):
    """Row ``i``'s share of the mean softmax cross-entropy; ``dz[i] = (softmax(z_i) - onehot(label)) / B``."""
    log_partition = softmax_row(z, i, dz)
    for k in range(z.shape[1]):
        dz[i, k] = (dz[i, k] - (1.0 if k == label else 0.0)) * inv_batch
    return (log_partition - z[i, label]) * inv_batch


def squared_error_row(z, i, label, targets, target_row, use_targets, inv_count, dz):
    """Row ``i``'s share of the mean squared error (one-hot of ``label``, or ``targets[target_row]``); fills ``dz[i]``.

    ``inv_count`` is 1 / (B K).
    """
    total = 0.0
    for k in range(z.shape[1]):
        if use_targets:
            target = targets[target_row, k]
        else:
            target = 1.0 if k == label else 0.0
        diff = z[i, k] - target
        dz[i, k] = 2.0 * diff * inv_count
        total += diff * diff
    return total * inv_count


def loss_row(code, z, i, label, targets, target_row, use_targets, inv_batch, inv_count, dz):
    """Row ``i``'s share of the mean loss ``code`` (:data:`CROSS_ENTROPY` or :data:`MSE`), filling ``dz[i]``.

    ``label`` is the row's class; the squared error takes its target from ``targets[target_row]`` when
    ``use_targets`` (regression), else the one-hot of ``label``.
    """
    if code == CROSS_ENTROPY:
        return softmax_cross_entropy_row(z, i, label, inv_batch, dz)
    return squared_error_row(z, i, label, targets, target_row, use_targets, inv_count, dz)


def predicted_class(z, i):
    """argmax_k z[i, k] (the first maximum, as NumPy's argmax)."""
    best = 0
    for k in range(1, z.shape[1]):
        if z[i, k] > z[i, best]:
            best = k
    return best
