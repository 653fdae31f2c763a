"""Second derivatives of the loss rules: the loss Hessian with respect to one row of logits, applied to a vector.

The companions of :mod:`testbed.rules.losses` (same codes, same arguments, same scaling) for the curvature
products of :mod:`testbed.curvature`. With logits z (B x K), the row's Hessian of the MEAN loss applied to the
row ``rz[i]`` of tangents R{z} is written to ``out[i]``:

    softmax cross-entropy:  (diag(p_i) - p_i p_i^T) R{z_i} / B,   p_i = softmax(z_i)  (max subtracted first),
    mean squared error:     2 R{z_i} / (B K),

(Pearlmutter 1994; Schraudolph 2002 for the Gauss-Newton matrix J^T H_z J these give). Both are positive
semi-definite, which makes the Gauss-Newton product a PSD matrix for any net.
"""

from .losses import CROSS_ENTROPY, softmax_row


def softmax_cross_entropy_hessian_row(z, i, rz, inv_batch, out):
    """``out[i] = (diag p - p p^T) rz[i] / B`` with ``p = softmax(z[i])``."""
    classes = z.shape[1]
    softmax_row(z, i, out)  # out[i] = p
    p_dot = 0.0
    for k in range(classes):
        p_dot += out[i, k] * rz[i, k]
    for k in range(classes):
        out[i, k] = out[i, k] * (rz[i, k] - p_dot) * inv_batch


def loss_hessian_row(code, z, i, rz, inv_batch, inv_count, out):
    """``out[i]`` = the Hessian of row i's share of the mean loss ``code`` with respect to z_i, times ``rz[i]``.

    ``inv_batch`` = 1 / B, ``inv_count`` = 1 / (B K), as in :func:`testbed.rules.losses.loss_row` (the targets
    of the squared error do not enter its Hessian).
    """
    if code == CROSS_ENTROPY:
        softmax_cross_entropy_hessian_row(z, i, rz, inv_batch, out)
    else:
        for k in range(z.shape[1]):
            out[i, k] = 2.0 * rz[i, k] * inv_count
