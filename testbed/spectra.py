"""Singular values of the input-output Jacobian of a freshly initialised MLP (dynamical isometry).

For the net of :mod:`testbed.nn` (``s^(l) = W^(l) x^(l-1) + b^(l)``, ``x^(l) = phi(s^(l))``, every layer applying
phi) the Jacobian of the output with respect to the input at an input x^(0) is

    J = dx^(L)/dx^(0) = D_L W_L D_(L-1) W_(L-1) ... D_1 W_1,     D_l = diag(phi'(s^(l))),

a (d^(L), d^(0)) matrix. A net is *dynamically isometric* when every singular value of J is near 1, not just
their mean square (Saxe et al. 2014; Pennington, Schoenholz & Ganguli 2017): a mean squared singular value of 1
(chi_1 = 1, the order-to-chaos line) keeps the gradient's norm on average, while a spread of the squared
singular values that grows with depth L still distorts it. :mod:`testbed.theory.spectra` predicts both.

:func:`jacobian_singular_values` builds the net with :class:`testbed.nn.MLP`, runs the project's forward kernel
over the inputs (``keep=True``) for every s^(l) and phi(s^(l)), and accumulates the exact product layer by layer
with BLAS, ``J_l = (D_l W_l) J_(l-1)``; the factor ``D_l W_l`` comes from :mod:`testbed.kernels.spectra`, which
evaluates phi' with the activation rule and drops the rows where phi' = 0 (exact: those rows of J_l are 0).
Then LAPACK's SVD of J. The cost is about L d^3 multiply-adds per input (half that and less for ReLU): forming
the product is what an exact spectrum needs at these sizes (a forward-mode pass with the d^(0) unit tangents is
the same product, column by column). The inputs are independent: :func:`testbed.concurrency.run_on_cores` runs
one input's products and SVD per core, each on one BLAS thread (faster than every product split over BLAS's
threads, and it does not collapse on a loaded machine; benchmarks/RESULTS.md, eighth session). Float32
(``dtype=np.float32``) halves the time of the products; its singular values agree with float64's to about
1e-5 of sigma_max at depth 128 (measured there), far below what the spectra are used for, but its rounding
level ``eps * sigma_max`` is 1e-7 where float64's is 2e-16, hence float64 stays the default.

Rounding: the product is exact up to float rounding, so singular values far below the largest are resolved only
down to about ``eps * sigma_max`` (``eps`` of the dtype; :attr:`Spectra.resolution`). Deep Gaussian nets have
singular values far smaller than that (the smallest Lyapunov exponent of a product of Gaussian matrices is
negative), which this reports at the rounding level, not at their true size.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import backend as backends
from . import concurrency, nn, rng, validation
from ._types import Backend
from .activations import Activation
from .kernels import spectra as kernels


@dataclasses.dataclass
class Spectra:
    """What :func:`jacobian_singular_values` computed.

    ``singular_values``: (inputs, min(d^(L), d^(0))) array, each row the singular values of J at one input in
    descending order. ``resolution``: (inputs,) ``eps * sigma_max``, below which a singular value is at the level
    of rounding. ``pre_meansq``: (inputs, L) mean square of s^(l) over the units, the q^l of mean-field theory.
    ``by_depth``: {l: (inputs, min(d^(l), d^(0))) singular values of the Jacobian of the first l layers} for each
    depth asked for with ``depths`` (L always included); :meth:`at` reads it.

    Description of the run: ``init``, ``init_params``, ``activation`` (name), ``activation_param``, ``depth``,
    ``widths`` (d^(0), ..., d^(L)), ``input_var`` (of the random inputs, or the measured mean square of the
    given ones), ``bias_var``, ``seed``, ``dtype`` (name), ``backend``.
    """

    singular_values: np.ndarray
    resolution: np.ndarray
    pre_meansq: np.ndarray
    by_depth: dict
    init: str
    init_params: dict
    activation: str
    activation_param: float
    depth: int
    widths: tuple
    input_var: float
    bias_var: float
    seed: int
    dtype: str
    backend: str

    def at(self, depth: int) -> np.ndarray:
        """The singular values (inputs, min(d^(l), d^(0))) of the first ``depth`` layers' Jacobian."""
        if depth not in self.by_depth:
            raise ValueError(f"depth must be one of the recorded depths {sorted(self.by_depth)}, got {depth!r}")
        return self.by_depth[depth]

    @staticmethod
    def spectral_moments(values: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """(mean, variance) over the last axis of the squared ``values`` (see :meth:`moments`)."""
        lam = np.asarray(values, dtype=np.float64) ** 2
        mean = lam.mean(axis=-1)
        return mean, (lam * lam).mean(axis=-1) - mean * mean

    @property
    def squared(self) -> np.ndarray:
        """The squared singular values, the eigenvalues of J J^T."""
        return self.singular_values.astype(np.float64) ** 2

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, variance) of the squared singular values per input: the spectral moments of J J^T,
        ``m1 = tr(JJ^T)/n`` and ``m2 - m1^2`` over its n = min(d^(L), d^(0)) eigenvalues."""
        return self.spectral_moments(self.singular_values)


def jacobian_singular_values(
    init: str,
    activation: str | Activation,
    depth: int,
    width: int | Sequence[int],
    *,
    input_var: float = 1.0,
    bias_var: float = 0.0,
    inputs: npt.ArrayLike | None = None,
    batch: int = 1,
    seed: int = 0,
    backend: Backend = "cpu",
    dtype: npt.DTypeLike = np.float64,
    depths: Sequence[int] | None = None,
    activation_params: dict[str, float] | None = None,
    **init_params: Any,
) -> Spectra:
    """The singular values of J = D_L W_L ... D_1 W_1 at each input; returns :class:`Spectra`.

    ``init`` names an initialiser of :mod:`testbed.init` (its parameters as keywords ``init_params``, e.g.
    ``std=...`` for ``"normal"``, ``gain=...`` for ``"orthogonal"``); ``activation`` a name of
    :mod:`testbed.activations` (its parameter in ``activation_params``); ``depth`` L and ``width`` as in
    :func:`testbed.nn.resolve_widths` (an int, or the L widths d^(1)..d^(L); d^(0) = d^(1)). Biases are drawn from
    N(0, ``bias_var``). The inputs are ``inputs`` (shape (batch, d^(0))) or ``batch`` i.i.d. N(0, ``input_var``)
    vectors drawn from Philox stream :data:`testbed.nn.STREAM_INPUTS` of ``seed``, the stream that
    :func:`testbed.nn.propagate` draws its inputs from; the weights are the same as propagate's for the same seed.
    ``depths`` (a list of layer counts 1..L) also records the singular values of the first l layers' Jacobian,
    J_l = D_l W_l ... D_1 W_1, which the product passes through anyway (layer l's weights do not depend on the
    depth of the net, so J_l is the Jacobian of the depth-l net with the same seed); only their SVDs cost extra.

    Parameters
    ----------
    init : str
        An initialiser name of :mod:`testbed.init` (not ``"lsuv"``); its parameters go in ``init_params``.
    activation : str or Activation
        An activation name of :mod:`testbed.activations` (its parameter goes in ``activation_params``), or an
        :class:`~testbed.activations.Activation`.
    depth : int
        The number of layers L.
    width : int or sequence of int
        One width for every layer, or the L widths d^(1)..d^(L) (d^(0) = d^(1)).
    input_var : float
        Variance (>= 0) of the random inputs; ignored when ``inputs`` are given.
    bias_var : float
        Variance (>= 0) of the biases; 0 builds the net without biases.
    inputs : ndarray, shape (batch, d^(0)) or (d^(0),), optional
        The inputs at which J is taken; None draws ``batch`` of them.
    batch : int
        Number of random inputs.
    seed : int
        Key of every draw (weights, biases, inputs).
    backend : {"cpu", "cuda", "auto"}
        Where the forward pass and the products run (the SVDs run on the host).
    dtype : numpy float type
        float32 or float64.
    depths : sequence of int, optional
        Further depths l in 1..L whose Jacobians J_l are recorded in ``Spectra.by_depth``.
    activation_params : dict, optional
        The activation's hyperparameter, e.g. ``{"negative_slope": 0.2}``.
    **init_params
        The initialiser's parameters, e.g. ``gain=...`` for ``"orthogonal"``.

    Returns
    -------
    Spectra
        The singular values of J per input (descending), their rounding resolution, the mean squares q^l of the
        pre-activations, the recorded depths and the description of the run.

    Raises
    ------
    ValueError
        A bad argument (the message names it): an unknown or unsuitable ``init`` or ``activation``, a
        non-finite or negative variance, bad widths, ``inputs`` of the wrong shape or not finite, ``depths``
        outside 1..L, an unsupported ``dtype`` or ``backend``.
    testbed.nn.NonFiniteSignalError
        When the forward signal or the Jacobian product leaves the finite range (the layer is named).

    References
    ----------
    Saxe, McClelland & Ganguli 2014, "Exact solutions to the nonlinear dynamics of learning in deep linear neural
    networks"; Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning through
    dynamical isometry: theory and practice".

    Examples
    --------
    >>> run = jacobian_singular_values("orthogonal", "linear", 8, 32)
    >>> bool(np.allclose(run.singular_values, 1.0))      # an orthogonal linear net is an isometry
    True
    """
    if not isinstance(init, str) or init == "lsuv":
        raise ValueError(f"init must be an initialiser name of testbed.init (not 'lsuv'), got {init!r}")
    widths = nn.resolve_widths(depth, width)
    depth = len(widths) - 1
    input_var = validation.check_finite(input_var, "input_var", minimum=0.0)
    bias_var = validation.check_finite(bias_var, "bias_var", minimum=0.0)
    seed = validation.check_seed(seed)
    dtype = validation.check_dtype(dtype)
    target = backends.resolve(backend)
    for name, value in init_params.items():
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            validation.check_finite(value, name)
    net = nn.MLP(widths, activation, bias=bias_var > 0.0, dtype=dtype, backend=target, **(activation_params or {}))
    if inputs is None:
        batch = validation.check_positive_int(batch, "batch")
        x = rng.normal((batch, widths[0]), seed=seed, stream=nn.STREAM_INPUTS, scale=math.sqrt(input_var), dtype=dtype)
    else:
        x = _check_inputs(inputs, widths[0], dtype)
        input_var = float(np.mean(x.astype(np.float64) ** 2))
    net.initialize(init, seed=seed, bias_var=bias_var, **init_params)
    stats = net.forward(x, keep=True, pair=None)
    if stats.overflow_layer is not None:
        raise nn.NonFiniteSignalError(
            f"the forward signal left the finite range at layer {stats.overflow_layer} of {depth}",
            stats.overflow_layer,
            "forward",
        )
    recorded = _check_depths(depths, depth)
    pre = [net.pre(l) for l in range(1, depth + 1)]
    post = [net.post(l) for l in range(1, depth + 1)]
    by_depth = {l: np.empty((x.shape[0], min(widths[0], widths[l])), dtype=dtype) for l in recorded}

    buffers = threading.local()  # one _Work per thread

    def spectrum(b):
        def record(l, matrix):
            if not np.all(np.isfinite(matrix)):
                raise nn.NonFiniteSignalError(
                    f"the Jacobian at input {b} left the finite range at layer {l}", l, "jacobian"
                )
            by_depth[l][b] = _singular_values(matrix, by_depth[l].shape[1])

        at_b = [p[b] for p in pre], [p[b] for p in post]
        if target == "cuda":
            _jacobian_gpu(net, *at_b, recorded, record)
        else:
            _jacobian_cpu(net, *at_b, recorded, record, _Work.of_thread(buffers, widths, net.dtype))

    if target == "cuda":
        for b in range(x.shape[0]):
            spectrum(b)
    else:
        # the inputs' products and SVDs are independent: one input per core at a time, each on one BLAS thread
        concurrency.run_on_cores(spectrum, range(x.shape[0]))
    values = by_depth[depth]
    eps = float(np.finfo(dtype).eps)
    pre_meansq = np.array(
        [[float(np.mean(np.square(p[b].astype(np.float64)))) for p in pre] for b in range(x.shape[0])]
    )
    return Spectra(
        singular_values=values,
        resolution=eps * values[:, 0].astype(np.float64),
        pre_meansq=pre_meansq,
        by_depth=by_depth,
        init=init,
        init_params=dict(init_params),
        activation=net.activation.name,
        activation_param=net.activation.param,
        depth=depth,
        widths=widths,
        input_var=input_var,
        bias_var=bias_var,
        seed=seed,
        dtype=np.dtype(dtype).name,
        backend=target,
    )


def _check_inputs(inputs, width, dtype):
    x = np.asarray(inputs)
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2 or x.shape[1] != width or x.shape[0] < 1:
        raise ValueError(
            f"inputs must have shape (batch, {width}) (or ({width},) for one input), got {np.shape(inputs)}"
        )
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x) or not np.all(np.isfinite(x)):
        raise ValueError("inputs must be a finite real array")
    return np.ascontiguousarray(x, dtype=dtype)


def _check_depths(depths, depth):
    if depths is None:
        return (depth,)
    if isinstance(depths, (str, bytes)) or not hasattr(depths, "__iter__"):
        raise ValueError(f"depths must be a list of layer counts in 1..{depth}, got {depths!r}")
    checked = set()
    for l in depths:
        if isinstance(l, (bool, np.bool_)) or not isinstance(l, (int, np.integer)) or not 1 <= l <= depth:
            raise ValueError(f"depths must be layer counts in 1..{depth}, got {l!r}")
        checked.add(int(l))
    return tuple(sorted(checked | {depth}))


def _singular_values(matrix, count):
    """The ``count`` singular values of ``matrix`` (its kept rows; the dropped rows add zeros), descending."""
    out = np.zeros(count, dtype=matrix.dtype)
    if matrix.shape[0]:
        found = np.linalg.svd(matrix, compute_uv=False)
        out[: found.size] = found
    return out


class _Work:
    """Two product buffers and one factor buffer, reused across layers and inputs (no page faults per layer)."""

    def __init__(self, widths, dtype):
        largest = max(widths)
        self.products = [np.empty(largest * widths[0], dtype=dtype) for _ in range(2)]
        self.factor = np.empty(largest * largest, dtype=dtype)
        self.rows = np.empty(largest, dtype=np.int64)

    @classmethod
    def of_thread(cls, local, widths, dtype):
        """The calling thread's buffers in the ``threading.local`` ``local``, made on its first call."""
        if not hasattr(local, "buffers"):
            local.buffers = cls(widths, dtype)
        return local.buffers


def _jacobian_cpu(net, pre, post, recorded, record, work):
    """Accumulate J_l at one input in the buffers ``work`` (a :class:`_Work`); ``record(l, J_l)`` for each l in
    ``recorded``, J_l given by its kept rows (the rows where D_l is zero dropped) as a C-contiguous (k, d^(0))
    array."""
    widths, act = net.widths, net.activation
    columns = kernels.identity_columns(widths[0])
    # layer 1: J_1 = D_1 W_1 (the kept rows), written straight into the first product buffer
    current = work.products[0][: widths[1] * widths[0]].reshape(widths[1], widths[0])
    kept = kernels.scaled_rows_cpu(net.weights(1), pre[0], post[0], act.code, act.param, columns, current, work.rows)
    columns = work.rows[:kept].copy()
    current = current[:kept]
    if 1 in recorded:
        record(1, current)
    for l in range(2, net.depth + 1):
        if kept == 0:  # every unit off: J is zero from here on
            if l in recorded:
                record(l, current)
            continue
        factor = work.factor[: widths[l] * kept].reshape(widths[l], kept)
        kept_next = kernels.scaled_rows_cpu(
            net.weights(l), pre[l - 1], post[l - 1], act.code, act.param, columns, factor, work.rows
        )
        target = work.products[(l - 1) % 2][: kept_next * widths[0]].reshape(kept_next, widths[0])
        if kept_next:
            np.dot(factor[:kept_next], current, out=target)
        columns = work.rows[:kept_next].copy()
        current, kept = target, kept_next
        if l in recorded:
            record(l, current)


def _jacobian_gpu(net, pre, post, recorded, record):
    """J at one input on the GPU: one tiled product per layer with phi' in its epilogue (rows with phi' = 0 are
    zero rows, which add zero singular values like the CPU's dropped rows)."""
    from numba import cuda

    kernel = kernels.jacobian_step_gpu()
    act = net.activation
    weights = getattr(net, "_jacobian_device_weights", None)
    if weights is None:  # moved once per net, not once per input
        widest = max(net.widths)
        backends.check_memory(  # the weights, two (d^(l), d^(0)) products and one input's s^(l), x^(l)
            net.dtype.itemsize * (net.size + 2 * widest * net.widths[0] + 2 * widest),
            f"the Jacobian products of a net of widths {nn.mlp.short_widths(net.widths)}",
            device=True,
        )
        weights = net._jacobian_device_weights = [
            backends.to_device(np.ascontiguousarray(net.weights(l))) for l in range(1, net.depth + 1)
        ]
    current = backends.to_device(np.eye(net.widths[0], dtype=net.dtype))
    for l in range(1, net.depth + 1):
        out = cuda.device_array((net.widths[l], net.widths[0]), dtype=net.dtype)
        kernel[kernels.tile_grid(*out.shape), (kernels.TILE, kernels.TILE)](
            weights[l - 1],
            current,
            backends.to_device(pre[l - 1]),
            backends.to_device(post[l - 1]),
            act.code,
            act.param,
            out,
        )
        current = out
        if l in recorded:
            record(l, current.copy_to_host())
