"""The multilayer perceptron: one flat parameter array, CPU passes with fused per-layer statistics.

A network of depth L has widths d^(0) (the input), d^(1), ..., d^(L) and computes, for l = 1..L,

    s^(l) = x^(l-1) W^(l)^T + b^(l),      x^(l) = phi(s^(l)),

for a batch x^(0) of shape (batch, d^(0)); ``W^(l)`` has shape (d^(l), d^(l-1)) = (fan_out, fan_in), the PyTorch
layout, so weights copy to and from ``torch.nn.Linear.weight`` without a transpose. With ``output="activation"``
(the default, the signal-propagation convention) every layer applies phi; with ``output="linear"`` the last layer
gives logits, x^(L) = s^(L). The backward pass starts from ``delta^(L) = dloss/ds^(L)`` and computes

    dW^(l) = delta^(l)^T x^(l-1),   db^(l) = sum_batch delta^(l),   delta^(l-1) = (delta^(l) W^(l)) * phi'(s^(l-1)).

All weights and biases live in ONE flat parameter array :attr:`MLP.params`, layer after layer (W^(1), b^(1),
W^(2), b^(2), ...); :meth:`MLP.weights` and :meth:`MLP.biases` are views into it, and the gradients live in
:attr:`MLP.grads` with the same layout, so an optimizer step is one kernel over one array.

Statistics are gathered in the same pass that applies the activation (see :mod:`testbed.kernels.nn`), so the
activations of every layer are kept only when the backward pass needs them (``keep=True``). The GPU passes are
driven by :class:`testbed.nn.cuda.CudaPasses`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import numba
import numpy as np
import numpy.typing as npt

from .. import activations as activation_registry
from .. import backend as backends
from .. import concurrency, rng, validation
from .. import init as initializers
from .._types import Backend
from ..kernels import nn as kernels
from ..kernels import random as random_kernels
from .cuda import CudaPasses

#: What the last layer applies: the activation (every layer alike) or nothing (logits).
OUTPUTS = ("activation", "linear")

#: Philox streams of the draws made here; layer l's weights are stream STREAM_WEIGHTS + l.
STREAM_INPUTS = 11
STREAM_OUTPUT_GRAD = 12
STREAM_BIASES = 13
STREAM_WEIGHTS = 1 << 20

#: Rows of the batch per chunk of partial sums in the CPU kernels: fixed, so results do not depend on threads.
ROWS_PER_CHUNK = 16

#: A backward step runs its two products side by side, one thread and one BLAS thread each
#: (:func:`testbed.kernels.nn.backward_tasks_cpu`), when Numba has at most this many threads; with more, one after
#: the other on BLAS's own threads. On 2 cores this keeps OpenBLAS's pool, whose idle threads spin for 0.1 s after
#: each product, from taking a core from the pass after it (benchmarks/RESULTS.md, tenth session).
BACKWARD_TASKS = 2

#: A bounded activation's unit is saturated when phi(s) lies within this fraction of its bound's magnitude
#: (max(|lower|, |upper|)) from the bound: |tanh s| >= 0.99, sigmoid(s) <= 0.01 or >= 0.99.
SATURATION_TOLERANCE = 0.01


class NonFiniteSignalError(FloatingPointError):
    """The signal (forward) or the gradient (backward) left the finite range; ``layer`` says where first."""

    def __init__(self, message: str, layer: int, direction: str) -> None:
        super().__init__(message)
        self.layer = layer
        self.direction = direction


# ----------------------------------------------------------------------------------------------------------------
# argument checks


def resolve_widths(depth: int, width: int | Sequence[int], input_width: int | None = None) -> tuple[int, ...]:
    """The widths (d^(0), ..., d^(L)) of a depth-``depth`` net.

    ``width`` is an int (every layer, the input included, has that width) or a sequence of ``depth`` ints
    (d^(1), ..., d^(L)); ``input_width`` is d^(0), by default ``width`` (int) or ``width[0]`` (sequence).

    Parameters
    ----------
    depth : int
        The number of layers L (positive).
    width : int or sequence of int
        Every layer's width, or the ``depth`` widths d^(1), ..., d^(L).
    input_width : int or None
        d^(0); None takes ``width`` (or ``width[0]``).

    Returns
    -------
    tuple of int
        (d^(0), ..., d^(L)).

    Raises
    ------
    ValueError
        If a width or the depth is not a positive integer, or the sequence's length is not ``depth``.
    """
    depth = validation.check_positive_int(depth, "depth")
    if isinstance(width, (int, np.integer)) and not isinstance(width, (bool, np.bool_)):
        hidden = [validation.check_positive_int(width, "width")] * depth
    else:
        try:
            hidden = list(width)
        except TypeError:
            raise ValueError(
                f"width must be a positive integer or a list of {depth} positive integers, got {width!r}"
            ) from None
        if len(hidden) != depth:
            raise ValueError(
                f"width must be a positive integer or a list of depth={depth} positive integers, "
                f"got a list of length {len(hidden)}"
            )
        hidden = [validation.check_positive_int(w, "width") for w in hidden]
    first = hidden[0] if input_width is None else validation.check_positive_int(input_width, "input_width")
    return (first, *hidden)


def short_widths(widths: Sequence[int]) -> str:
    """The widths for a message: all of them when few, else the first two, the last and the depth.

    Parameters
    ----------
    widths : sequence of int
        (d^(0), ..., d^(L)).

    Returns
    -------
    str
    """
    widths = tuple(widths)
    if len(widths) <= 6:
        return str(widths)
    return f"({widths[0]}, {widths[1]}, ..., {widths[-1]}) ({len(widths) - 1} layers)"


def _layer_index(l, depth, name="l"):
    if isinstance(l, (bool, np.bool_)) or not isinstance(l, (int, np.integer)) or not 1 <= l <= depth:
        raise ValueError(f"{name} must be a layer index in 1..{depth}, got {l!r}")
    return int(l)


def weight_stream(layer: int) -> int:
    """The Philox stream of layer ``layer``'s weights (one stream per layer, as :func:`testbed.init.fill` asks).

    Parameters
    ----------
    layer : int
        The layer l, 1..L.

    Returns
    -------
    int
        ``STREAM_WEIGHTS + layer``.
    """
    return STREAM_WEIGHTS + layer


# ----------------------------------------------------------------------------------------------------------------
# the network


@dataclasses.dataclass
class ForwardStats:
    """Per-layer statistics of a forward pass; every array has one entry per layer l = 1..L (index l-1).

    Means and variances are over all batch x width entries of a layer (population variance, divided by n).

    - ``pre_mean``, ``pre_var``, ``pre_meansq``: mean, variance and mean square E[s^2] of s^(l).
    - ``post_mean``, ``post_var``, ``post_meansq``: the same for x^(l) = phi(s^(l)).
    - ``saturated_frac``: fraction of entries with phi(s) within SATURATION_TOLERANCE of a bound (0 for
      unbounded activations).
    - ``zero_frac``: fraction of entries with s <= 0 (for the ReLU family: the zero outputs, the flat side).
    - ``dead_frac``: fraction of units with s <= 0 for every input of the batch (ReLU family; 0 otherwise).
    - ``correlation``: <s_a, s_b> / (|s_a| |s_b|) for the two inputs ``pair`` of the batch (the mean-field
      correlation c^(l) of Poole et al. 2016; NaN when the batch has one input or a norm is zero).
    - ``histograms``: (L, nbins) counts of x^(l) over the caller's bin edges (np.histogram's bins), or None.
    - ``overflow_layer``: the first layer (1..L) where s or x had a non-finite entry, or None; statistics of that
      layer and every later one are NaN (the pass stops there).
    - ``underflow_layer``: the first layer whose root mean square sqrt(E[s^2]) fell below the dtype's smallest
      normal number (the signal became zero or subnormal: lost), or None. W = 0 underflows at layer 1.
    """

    pre_mean: np.ndarray
    pre_var: np.ndarray
    pre_meansq: np.ndarray
    post_mean: np.ndarray
    post_var: np.ndarray
    post_meansq: np.ndarray
    saturated_frac: np.ndarray
    zero_frac: np.ndarray
    dead_frac: np.ndarray
    correlation: np.ndarray
    histograms: np.ndarray | None
    overflow_layer: int | None
    underflow_layer: int | None


@dataclasses.dataclass
class BackwardStats:
    """Per-layer statistics of a backward pass; arrays have one entry per layer l = 1..L (index l-1).

    - ``grad_mean``, ``grad_var``, ``grad_meansq``: of delta^(l) = dloss/ds^(l) over batch x width.
    - ``weight_grad_mean``, ``weight_grad_var``, ``weight_grad_meansq``: of the entries of dloss/dW^(l).
    - ``bias_grad_var``: variance of the entries of dloss/db^(l) (None for a net without biases).
    - ``overflow_layer``: the first layer met going backward (from L down) whose delta or weight gradient had a
      non-finite entry, or None; its statistics and those of every layer below are NaN, and so are its
      gradients and those of every layer below in :attr:`MLP.grads` (the pass stops there).
    - ``underflow_layer``: the first layer met going backward whose sqrt(E[delta^2]) fell below the smallest
      normal number, or None.
    """

    grad_mean: np.ndarray
    grad_var: np.ndarray
    grad_meansq: np.ndarray
    weight_grad_mean: np.ndarray
    weight_grad_var: np.ndarray
    weight_grad_meansq: np.ndarray
    bias_grad_var: np.ndarray | None
    overflow_layer: int | None
    underflow_layer: int | None


def _moments(total, total_sq, count, shift):
    """(mean, variance, mean square) from sums of (value - shift) and their squares over ``count`` values."""
    centred_mean = total / count
    variance = max(total_sq / count - centred_mean * centred_mean, 0.0)
    mean = shift + centred_mean
    return mean, variance, variance + mean * mean


def array_moments(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, variance, mean square) of every entry of a C-contiguous float array, in one parallel pass.

    The sums are those of the per-layer statistics: float64 sums of ``v - v_0`` and ``(v - v_0)^2`` (shifted by
    the first entry, so that a large mean does not cancel the variance; a constant array has variance 0 exactly)
    by fixed chunks of rows, then mean = v_0 + S_1/n and variance = S_2/n - (S_1/n)^2 (:func:`_moments`). The
    pass is :func:`testbed.kernels.nn.delta_pass_cpu` without the derivative, a kernel every backward pass has
    compiled already. The result agrees with ``np.var(values.astype(np.float64))`` to rounding and does not
    depend on the thread count.

    Parameters
    ----------
    values : numpy.ndarray
        C-contiguous, float32 or float64, at least one entry, finite.

    Returns
    -------
    (float, float, float)
        The mean, the population variance (divided by n) and the mean square.
    """
    grid = values.reshape(-1, values.shape[-1]) if values.ndim > 1 else values.reshape(1, -1)
    sums = np.zeros(kernels.BACKWARD_SLOTS)
    shift = float(grid[0, 0])
    with backends.threads_for(grid.size):
        kernels.delta_pass_cpu(
            grid,
            grid,
            grid,
            False,
            0,
            0.0,
            float(np.finfo(grid.dtype).max),
            shift,
            ROWS_PER_CHUNK,
            sums,
            np.zeros(0, dtype=grid.dtype),
            False,
        )
    return _moments(sums[kernels.B_SUM], sums[kernels.B_SUMSQ], grid.size, shift)


def _one_blas_thread():
    """A context in which BLAS runs on one thread: the passes' own threads share the products out instead."""
    from ..train import blas_threads  # here, not at the top: testbed.train imports this module

    return blas_threads(1)


def _correlation(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    norm = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / norm if norm > 0.0 else math.nan


class MLP:
    """A fully connected network whose parameters are one flat array; see the module docstring.

    ``widths`` is (d^(0), ..., d^(L)); ``activation`` a name of :mod:`testbed.activations` (its parameter, e.g.
    ``negative_slope``, as a keyword) or an :class:`~testbed.activations.Activation`; ``bias`` whether the layers
    have biases; ``output`` what the last layer applies (:data:`OUTPUTS`: ``"activation"``, like every other
    layer, or ``"linear"``, logits for a loss). Parameters start at zero: call :meth:`initialize` (or write into
    :attr:`params`).

    Parameters
    ----------
    widths : sequence of int
        (d^(0), ..., d^(L)), L >= 1, each positive.
    activation : str or Activation
        The activation's name (:func:`testbed.activations.names`) or an Activation.
    bias : bool
        Whether the layers have biases.
    output : {"activation", "linear"}
        What the last layer applies.
    dtype : numpy float dtype
        float32 or float64, of the parameters and the passes.
    backend : {"cpu", "cuda", "auto"}
        Where the passes run.
    **activation_params
        The activation's parameter (e.g. ``negative_slope``).

    Raises
    ------
    ValueError
        If a width, the activation, ``output``, ``dtype`` or ``backend`` is invalid (the message names it), or the
        parameters would not fit in memory.
    """

    def __init__(
        self,
        widths: Sequence[int],
        activation: str | activation_registry.Activation = "relu",
        *,
        bias: bool = False,
        output: Literal["activation", "linear"] = "activation",
        dtype: npt.DTypeLike = np.float64,
        backend: Backend = "cpu",
        **activation_params: float,
    ) -> None:
        widths = tuple(widths)
        if len(widths) < 2:
            raise ValueError(f"widths must list d^(0), ..., d^(L) with L >= 1, got {widths!r}")
        self.widths = tuple(validation.check_positive_int(w, "widths") for w in widths)
        self.depth = len(widths) - 1
        self.activation = activation_registry.get(activation, **activation_params)
        self.output_kind = validation.check_choice(output, "output", OUTPUTS)
        self.bias = bool(bias)
        self.dtype = validation.check_dtype(dtype)
        self.backend = backends.resolve(backend)
        offsets, position = [], 0
        for l in range(1, self.depth + 1):
            fan_in, fan_out = self.widths[l - 1], self.widths[l]
            weight_at = position
            position += fan_in * fan_out
            bias_at = position
            position += fan_out if self.bias else 0
            offsets.append((weight_at, bias_at))
        self._offsets = tuple(offsets)
        backends.check_memory(
            2 * position * self.dtype.itemsize,
            f"the parameters and gradients of a net of widths {short_widths(self.widths)}",
        )
        self.params = np.zeros(position, dtype=self.dtype)
        self.grads = np.zeros(position, dtype=self.dtype)
        self._pre = None
        self._post = None
        # a net private to one caller (propagate's) writes each kept forward pass over the previous one's arrays
        self._recycle_kept = False

    # views ------------------------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of parameters."""
        return self.params.size

    def _weight_view(self, flat, l):
        l = _layer_index(l, self.depth)
        at = self._offsets[l - 1][0]
        return flat[at : at + self.widths[l] * self.widths[l - 1]].reshape(self.widths[l], self.widths[l - 1])

    def _bias_view(self, flat, l):
        l = _layer_index(l, self.depth)
        if not self.bias:
            return None
        at = self._offsets[l - 1][1]
        return flat[at : at + self.widths[l]]

    def weights(self, l: int) -> np.ndarray:
        """W^(l), a (d^(l), d^(l-1)) view into :attr:`params`, for l in 1..L."""
        return self._weight_view(self.params, l)

    def biases(self, l: int) -> np.ndarray | None:
        """b^(l), a (d^(l),) view into :attr:`params`, or None for a net without biases."""
        return self._bias_view(self.params, l)

    def weight_grads(self, l: int) -> np.ndarray:
        """dloss/dW^(l), a view into :attr:`grads` (filled by :meth:`backward`)."""
        return self._weight_view(self.grads, l)

    def bias_grads(self, l: int) -> np.ndarray | None:
        """dloss/db^(l), a view into :attr:`grads`, or None for a net without biases."""
        return self._bias_view(self.grads, l)

    def pre(self, l: int) -> np.ndarray:
        """s^(l) of the last ``forward(..., keep=True)``, shape (batch, d^(l))."""
        self._require_kept()
        return self._pre[_layer_index(l, self.depth) - 1]

    def post(self, l: int) -> np.ndarray:
        """x^(l) of the last ``forward(..., keep=True)``; ``post(0)`` is the input."""
        self._require_kept()
        if l == 0:
            return self._post[0]
        return self._post[_layer_index(l, self.depth)]

    def _require_kept(self):
        if self._pre is None:
            raise ValueError("run forward(x, keep=True) first: the activations were not kept")

    # initialisation ---------------------------------------------------------------------------------------------

    def initialize(self, init: str, *, seed: int = 0, bias_var: float = 0.0, **init_params: Any) -> MLP:
        """Fill the weights from the initialiser ``init`` (:mod:`testbed.init`) and the biases from N(0, bias_var).

        Layer l's weights are Philox stream :func:`weight_stream` (l) of ``seed`` (:func:`testbed.init.fill`); the
        biases stream STREAM_BIASES, step l. Returns self.

        Parameters
        ----------
        init : str
            An initialiser's name or alias (:func:`testbed.init.names`); ``"lsuv"`` is refused (see :func:`lsuv`).
        seed : int
            The Philox key of the weights and the biases.
        bias_var : float
            The biases' variance (non-negative; positive needs ``bias=True``).
        **init_params
            The initialiser's parameters (:func:`testbed.init.parameters`).

        Returns
        -------
        MLP
            ``self``.

        Raises
        ------
        ValueError
            If the initialiser, a parameter or ``bias_var`` is invalid (the message names it).

        References
        ----------
        The papers of :mod:`testbed.init`'s table (LeCun et al. 1998, Glorot & Bengio 2010, He et al. 2015,
        Saxe et al. 2014).
        """
        seed = validation.check_seed(seed)
        bias_var = validation.check_finite(bias_var, "bias_var", minimum=0.0)
        if bias_var > 0.0 and not self.bias:
            raise ValueError("bias_var > 0 needs a network with biases (bias=True)")
        if init == "lsuv":
            raise ValueError("init='lsuv' is data-dependent: call testbed.nn.lsuv(net, inputs) (or propagate)")

        def draw(l):
            initializers.fill(
                self.weights(l),
                init,
                self.widths[l - 1],
                self.widths[l],
                seed=seed,
                stream=weight_stream(l),
                **init_params,
            )

        layers = range(1, self.depth + 1)
        plans = [initializers.plan(init, self.widths[l - 1], self.widths[l], **init_params) for l in layers]
        if self.backend == "cpu" and plans[0].orthogonal_gain is not None:
            # each layer's QR on its own core and one BLAS thread: the same matrices, 1.5-2x sooner on 2 cores
            concurrency.run_on_cores(draw, layers)
        elif self.backend == "cpu" and all(
            p.code == random_kernels.NORMAL and p.orthogonal_gain is None for p in plans
        ):
            # Gaussian layers (the He, Glorot and LeCun normals): one run of the threads for all of them, the
            # draws of initializers.fill layer by layer (plan() checked the parameters)
            random_kernels.fill_normal_many(
                [self.weights(l).reshape(-1) for l in layers],
                seed,
                [weight_stream(l) for l in layers],
                [p.loc for p in plans],
                [p.scale for p in plans],
            )
        else:
            for l in layers:
                draw(l)
        for l in layers:
            if self.bias:
                if bias_var > 0.0:
                    self.biases(l)[...] = rng.normal(
                        self.widths[l],
                        seed=seed,
                        stream=STREAM_BIASES,
                        step=l,
                        scale=math.sqrt(bias_var),
                        dtype=self.dtype,
                    )
                else:
                    self.biases(l)[...] = 0.0
        return self

    # passes -----------------------------------------------------------------------------------------------------

    def _check_batch(self, x, width, name):
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != width or x.shape[0] < 1:
            raise ValueError(f"{name} must have shape (batch, {width}) with batch >= 1, got {x.shape}")
        if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
            raise ValueError(f"{name} must be a real array")
        x = np.ascontiguousarray(x, dtype=self.dtype)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} must be finite")
        return x

    def _buffer(self, name, rows, cols):
        """A (rows, cols) view of a work buffer kept between calls (for the passes that keep nothing)."""
        if not hasattr(self, "_workspace"):
            self._workspace = {}
        size = rows * max(self.widths)
        buffer = self._workspace.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._workspace[name] = np.empty(size, dtype=self.dtype)
        return buffer[: rows * cols].reshape(rows, cols)

    def _adopt(self, other: MLP, batch: int) -> bool:
        """Take over the arrays of ``other`` (parameters, gradients, work buffers, and the kept activations when
        they are of ``batch`` rows) if it has this net's widths, biases, dtype and the CPU backend; True if taken.

        Their pages are mapped already: a fresh array of the same size pays a page fault per page on first write
        (the parameters, gradients and kept activations of a 20-layer net of width 1024 are 10^5 pages). The
        values are not kept: the caller overwrites the parameters (:meth:`initialize`) before a pass.
        """
        if (other.widths, other.bias, other.dtype, other.backend, self.backend) != (
            self.widths,
            self.bias,
            self.dtype,
            "cpu",
            "cpu",
        ):
            return False
        self.params, self.grads = other.params, other.grads
        self._workspace = getattr(other, "_workspace", {})
        if other._pre is not None and other._post[0].shape[0] == batch:
            self._pre, self._post = other._pre, other._post
        return True

    def _nbytes(self) -> int:
        """Bytes of the arrays this net holds (parameters, gradients, kept activations, work buffers)."""
        kept = [] if self._pre is None else self._pre + self._post[1:]
        held = [self.params, self.grads, *kept, *getattr(self, "_workspace", {}).values()]
        return sum(a.nbytes for a in held)

    def layer_activation(self, l: int) -> activation_registry.Activation:
        """The activation layer ``l`` applies: :attr:`activation`, or linear for the last layer of a logits net."""
        if l == self.depth and self.output_kind == "linear":
            return activation_registry.get("linear")
        return self.activation

    def _saturation_bounds(self, act=None):
        act = self.activation if act is None else act
        if not act.bounded:
            return -math.inf, math.inf
        margin = SATURATION_TOLERANCE * max(abs(act.lower), abs(act.upper))
        return act.lower + margin, act.upper - margin

    def forward(
        self,
        x: npt.ArrayLike,
        *,
        keep: bool = True,
        histogram_edges: npt.ArrayLike | None = None,
        pair: tuple[int, int] | None = (0, 1),
        layers: int | None = None,
    ) -> ForwardStats:
        """Run the batch ``x`` (batch, d^(0)) through layers 1..``layers`` (default L); return :class:`ForwardStats`.

        ``keep`` keeps every s^(l) and x^(l) (needed by :meth:`backward`; see :meth:`pre` / :meth:`post`);
        without it only the output is kept. ``histogram_edges`` (ascending, >= 2 edges) asks for per-layer
        histograms of x^(l); ``pair`` names the two inputs whose correlation is tracked.
        The output x^(L) is :attr:`output` afterwards.

        Parameters
        ----------
        x : array_like, shape (batch, d^(0))
            Finite real inputs.
        keep : bool
            Keep every s^(l) and x^(l) (for :meth:`backward`, :meth:`pre`, :meth:`post`).
        histogram_edges : array_like or None
            At least 2 finite, strictly increasing edges of per-layer histograms of x^(l); None for none.
        pair : (int, int) or None
            Two distinct rows of ``x`` whose correlation is tracked through the layers (None, or a batch of one: none).
        layers : int or None
            Run layers 1..``layers`` only (default all L).

        Returns
        -------
        ForwardStats
            Per-layer moments of s^(l) and x^(l), saturation and dead fractions, the pair's correlation, histograms
            and the first layers where the signal overflowed or underflowed.

        Raises
        ------
        ValueError
            If ``x`` has the wrong shape, is not real or not finite, or an option is invalid (the message names it).
        """
        x = self._check_batch(x, self.widths[0], "x")
        depth = self.depth if layers is None else _layer_index(layers, self.depth, "layers")
        batch = x.shape[0]
        edges = _check_edges(histogram_edges)
        pair = _check_pair(pair, batch)
        stats = np.zeros((depth, kernels.FORWARD_SLOTS))
        active = np.zeros((depth, max(self.widths)), dtype=np.uint8)
        counts = np.zeros((depth, max(edges.size - 1, 0)), dtype=np.int64)
        correlation = np.full(depth, math.nan)
        shifts = np.zeros((depth, 2))
        finite_max = float(np.finfo(self.dtype).max)
        cuda = self.backend == "cuda"
        if cuda:
            kept = 2 * sum(self.widths[1 : depth + 1]) if keep else 4 * max(self.widths)
            backends.check_memory(
                self.dtype.itemsize * (self.size + batch * (self.widths[0] + kept)) + 4 * active.size + stats.nbytes,
                f"the forward pass of a net of widths {short_widths(self.widths)} on a batch of {batch}",
                device=True,
            )
            device = CudaPasses(self, x, edges, stats, active, counts)
            previous = device.inputs
        else:
            previous = x
        kept_pre, kept_post = [], [previous]
        recycled = (self._pre, self._post[1:]) if (keep and self._recycle_kept and self._pre is not None) else None
        overflow = None
        for l in range(1, depth + 1):
            w, b = self.weights(l), self.biases(l)
            act = self.layer_activation(l)
            low, high = self._saturation_bounds(act)
            if cuda:
                pre, post = device.empty(batch, self.widths[l]), device.empty(batch, self.widths[l])
            elif keep:
                pre = _fresh_or_recycled(recycled and recycled[0], l - 1, (batch, self.widths[l]), self.dtype)
                post = _fresh_or_recycled(recycled and recycled[1], l - 1, (batch, self.widths[l]), self.dtype)
            else:  # reused buffers: a fresh 16 MB array costs thousands of page faults per layer
                pre = self._buffer("pre", batch, self.widths[l])
                post = self._buffer("post0" if l % 2 else "post1", batch, self.widths[l])
            # shift of the variance sums: the layer's first entry (any value near the mean will do)
            row0 = previous[0].copy_to_host() if cuda else previous[0]
            first = float(np.dot(row0.astype(np.float64), w[0].astype(np.float64)))
            first += float(b[0]) if self.bias else 0.0
            first = first if math.isfinite(first) else 0.0
            shift_x = float(act(first))
            shift_x = shift_x if math.isfinite(shift_x) else 0.0
            shifts[l - 1] = first, shift_x
            if cuda:
                device.forward_layer(l, previous, pre, post, act, low, high, finite_max, first, shift_x)
            else:
                bias = b if self.bias else np.zeros(0, dtype=self.dtype)
                with backends.threads_for(batch * self.widths[l]), _one_blas_thread():
                    kernels.forward_layer_cpu(
                        previous,
                        w,
                        bias,
                        self.bias,
                        pre,
                        post,
                        act.code,
                        act.param,
                        low,
                        high,
                        finite_max,
                        first,
                        shift_x,
                        ROWS_PER_CHUNK,
                        edges,
                        stats[l - 1],
                        active[l - 1],
                        counts[l - 1],
                        numba.get_num_threads(),
                    )
            if pair is not None:
                rows = (
                    (pre[pair[0]].copy_to_host(), pre[pair[1]].copy_to_host()) if cuda else (pre[pair[0]], pre[pair[1]])
                )
                correlation[l - 1] = _correlation(*rows)
            if keep:
                kept_pre.append(pre)
                kept_post.append(post)
            previous = post
            if (device.layer_stats(l) if cuda else stats[l - 1])[[kernels.F_NONFINITE_S, kernels.F_NONFINITE_X]].any():
                overflow = l
                break
        if cuda:
            device.finish_forward(*((kept_pre, kept_post) if keep else (None, None)))
            self._device = device
            kept_pre = [p.copy_to_host() for p in kept_pre] if keep else []
            kept_post = [x] + [p.copy_to_host() for p in kept_post[1:]] if keep else []
            previous = previous.copy_to_host()
        self._pre, self._post = (kept_pre, kept_post) if keep else (None, None)
        self.output = previous if (keep or cuda) else previous.copy()
        return self._forward_stats(stats, active, counts, correlation, shifts, depth, batch, overflow, edges.size >= 2)

    def _forward_stats(self, stats, active, counts, correlation, shifts, depth, batch, overflow, histograms):
        fields = {
            k: np.full(depth, math.nan)
            for k in (
                "pre_mean",
                "pre_var",
                "pre_meansq",
                "post_mean",
                "post_var",
                "post_meansq",
                "saturated_frac",
                "zero_frac",
                "dead_frac",
            )
        }
        underflow = None
        tiny = float(np.finfo(self.dtype).tiny)
        for l in range(1, depth + 1):
            if overflow is not None and l >= overflow:
                break
            row, n = stats[l - 1], batch * self.widths[l]
            fields["pre_mean"][l - 1], fields["pre_var"][l - 1], fields["pre_meansq"][l - 1] = _moments(
                row[kernels.F_SUM_S], row[kernels.F_SUMSQ_S], n, shifts[l - 1, 0]
            )
            fields["post_mean"][l - 1], fields["post_var"][l - 1], fields["post_meansq"][l - 1] = _moments(
                row[kernels.F_SUM_X], row[kernels.F_SUMSQ_X], n, shifts[l - 1, 1]
            )
            act = self.layer_activation(l)
            fields["saturated_frac"][l - 1] = row[kernels.F_SATURATED] / n if act.bounded else 0.0
            fields["zero_frac"][l - 1] = row[kernels.F_INACTIVE] / n
            dead = self.widths[l] - int(active[l - 1, : self.widths[l]].sum())
            fields["dead_frac"][l - 1] = dead / self.widths[l] if act.relu_like else 0.0
            if underflow is None and math.sqrt(fields["pre_meansq"][l - 1]) < tiny:
                underflow = l
        if overflow is not None:
            correlation[overflow - 1 :] = math.nan
        hist = counts if histograms else None
        if hist is not None and overflow is not None:
            hist = hist.copy()
            hist[overflow - 1 :] = 0
        return ForwardStats(
            **fields, correlation=correlation, histograms=hist, overflow_layer=overflow, underflow_layer=underflow
        )

    def backward(self, output_grad: npt.ArrayLike, *, _weight_sums: np.ndarray | None = None) -> BackwardStats:
        """Backpropagate ``output_grad`` = delta^(L) (batch, d^(L)); fill :attr:`grads`; return :class:`BackwardStats`.

        Needs the activations of the last ``forward(x, keep=True)`` over all L layers.

        Parameters
        ----------
        output_grad : array_like, shape (batch, d^(L))
            delta^(L) = dloss/dx^(L) (or dloss/ds^(L) for a logits net), finite, of the forward batch's size.

        Returns
        -------
        BackwardStats
            Per-layer moments of delta^(l) and of the weight gradients, and the first layers where the gradient
            overflowed or underflowed.

        Raises
        ------
        ValueError
            If no full forward pass with ``keep=True`` came first, or ``output_grad`` has the wrong shape or is not
            finite.

        ``_weight_sums`` (private, for :func:`testbed.nn.propagate`; CPU only): a (L, BACKWARD_SLOTS) array of zeros
        whose row l - 1 receives the sums of :func:`array_moments` over W^(l) (shift W^(l)[0, 0]) for every layer
        the pass reaches, gathered while a backward step's shorter task waits for the other.
        """
        self._require_kept()
        if len(self._pre) != self.depth:
            raise ValueError("backward needs a forward pass over every layer (keep=True, layers=None)")
        batch = self._post[0].shape[0]
        given = self._check_batch(output_grad, self.widths[-1], "output_grad")
        if given.shape[0] != batch:
            raise ValueError(f"output_grad must have the forward batch size {batch}, got {given.shape[0]}")
        delta = self._buffer("delta1" if self.depth % 2 else "delta0", batch, self.widths[-1])
        delta[...] = given
        depth = self.depth
        stats_delta = np.zeros((depth, kernels.BACKWARD_SLOTS))
        stats_w = np.zeros((depth, kernels.BACKWARD_SLOTS))
        finite_max = float(np.finfo(self.dtype).max)
        act = self.activation
        if self.bias:  # the bias gradients are accumulated; the weight gradients are written whole
            for l in range(1, depth + 1):
                self.bias_grads(l)[...] = 0.0
        if self.backend == "cuda":
            if getattr(self, "_device", None) is None:
                raise ValueError("backward needs a forward pass over every layer (keep=True, layers=None)")
            # beside the kept activations (already on the device): parameters, gradients and two deltas
            backends.check_memory(
                self.dtype.itemsize * (2 * self.size + 2 * batch * max(self.widths)) + 2 * stats_w.nbytes,
                f"the backward pass of a net of widths {short_widths(self.widths)} on a batch of {batch}",
                device=True,
            )
            overflow = self._device.backward(given, stats_delta, stats_w, finite_max)
            return self._backward_stats(stats_delta, stats_w, batch, self._mark_unreached(overflow))
        no_bias = np.zeros(0, dtype=self.dtype)
        no_sums = np.zeros(0)
        overflow = None
        with backends.threads_for(delta.size):
            kernels.delta_pass_cpu(
                delta,
                delta,
                delta,
                False,
                act.code,
                act.param,
                finite_max,
                0.0,
                ROWS_PER_CHUNK,
                stats_delta[depth - 1],
                self.bias_grads(depth) if self.bias else no_bias,
                self.bias,
            )
        if stats_delta[depth - 1, kernels.B_NONFINITE]:
            overflow = depth
        l = depth
        while overflow is None and l >= 1:
            propagate = l > 1
            delta_prev = (
                self._buffer("delta0" if l % 2 else "delta1", batch, self.widths[l - 1]) if propagate else delta
            )
            pre_prev = self._pre[l - 2] if propagate else delta
            bias_prev = self.bias_grads(l - 1) if (propagate and self.bias) else no_bias
            with backends.threads_for(batch * max(self.widths[l], self.widths[l - 1])):
                # two threads or fewer: the layer's two products side by side, one BLAS thread each; more: one
                # product after the other on BLAS's own threads (two tasks would leave the other cores idle)
                side_by_side = numba.get_num_threads() <= BACKWARD_TASKS
                step = kernels.backward_tasks_cpu if side_by_side else kernels.backward_layer_cpu
                # the last step (no delta below) splits its one product by rows over the two tasks
                with _one_blas_thread() if side_by_side else contextlib.nullcontext():
                    step(
                        delta,
                        self.weights(l),
                        self._post[l - 1],
                        self.weight_grads(l),
                        finite_max,
                        ROWS_PER_CHUNK,
                        stats_w[l - 1],
                        delta_prev,
                        pre_prev,
                        propagate,
                        act.code,
                        act.param,
                        stats_delta[l - 2] if propagate else stats_delta[l - 1],
                        bias_prev,
                        self.bias and propagate,
                        no_sums if _weight_sums is None else _weight_sums[l - 1],
                        0.0 if _weight_sums is None else float(self.weights(l)[0, 0]),
                    )
            if stats_w[l - 1, kernels.B_NONFINITE]:
                overflow = l
            elif propagate and stats_delta[l - 2, kernels.B_NONFINITE]:
                overflow = l - 1
            delta = delta_prev
            l -= 1
        return self._backward_stats(stats_delta, stats_w, batch, self._mark_unreached(overflow))

    def _mark_unreached(self, overflow):
        """After a gradient overflow at layer ``overflow``, set that layer's gradients and those below to NaN."""
        if overflow is not None:
            for l in range(1, overflow + 1):
                self.weight_grads(l)[...] = math.nan
                if self.bias:
                    self.bias_grads(l)[...] = math.nan
        return overflow

    def _backward_stats(self, stats_delta, stats_w, batch, overflow):
        depth = self.depth
        fields = {
            k: np.full(depth, math.nan)
            for k in (
                "grad_mean",
                "grad_var",
                "grad_meansq",
                "weight_grad_mean",
                "weight_grad_var",
                "weight_grad_meansq",
            )
        }
        bias_var = np.full(depth, math.nan) if self.bias else None
        underflow = None
        tiny = float(np.finfo(self.dtype).tiny)
        for l in range(depth, 0, -1):
            if overflow is not None and l <= overflow:
                break
            row = stats_delta[l - 1]
            fields["grad_mean"][l - 1], fields["grad_var"][l - 1], fields["grad_meansq"][l - 1] = _moments(
                row[kernels.B_SUM], row[kernels.B_SUMSQ], batch * self.widths[l], 0.0
            )
            row = stats_w[l - 1]
            n = self.widths[l] * self.widths[l - 1]
            (
                fields["weight_grad_mean"][l - 1],
                fields["weight_grad_var"][l - 1],
                fields["weight_grad_meansq"][l - 1],
            ) = _moments(row[kernels.B_SUM], row[kernels.B_SUMSQ], n, 0.0)
            if self.bias:
                bias_var[l - 1] = float(np.var(self.bias_grads(l).astype(np.float64)))
            if underflow is None and math.sqrt(fields["grad_meansq"][l - 1]) < tiny:
                underflow = l
        return BackwardStats(**fields, bias_grad_var=bias_var, overflow_layer=overflow, underflow_layer=underflow)


def _fresh_or_recycled(arrays, index, shape, dtype):
    """``arrays[index]`` when there is one of ``shape``, else a new array."""
    if arrays and index < len(arrays) and arrays[index].shape == shape:
        return arrays[index]
    return np.empty(shape, dtype=dtype)


def _check_edges(edges):
    if edges is None:
        return np.zeros(0)
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError("histogram_edges must be a 1-d array of at least 2 finite, strictly increasing edges")
    return np.ascontiguousarray(edges)


def _check_pair(pair, batch):
    if pair is None or batch < 2:
        return None
    try:
        a, b = (int(p) for p in pair)
    except (TypeError, ValueError):
        raise ValueError(f"pair must be two input indices, got {pair!r}") from None
    if not (0 <= a < batch and 0 <= b < batch and a != b):
        raise ValueError(f"pair must be two distinct input indices in 0..{batch - 1}, got {pair!r}")
    return a, b
