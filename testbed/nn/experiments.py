"""Signal-propagation experiments on the MLP: :func:`propagate` and Mishkin & Matas's LSUV initialiser.

:func:`propagate` draws a net with an initialiser, runs a batch forward and a gradient backward, and returns the
per-layer statistics of both passes beside the weights as drawn (:class:`Propagation`); :func:`lsuv` is the
data-dependent initialiser (Mishkin & Matas 2015) built on the forward pass.

References: Glorot & Bengio 2010 (variance and saturation per layer), He et al. 2015 (ReLU variance, dead units),
Poole et al. 2016 / Schoenholz et al. 2017 (the correlation between two inputs), Mishkin & Matas 2015 (LSUV).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .. import backend as backends
from .. import init as initializers
from .. import rng, validation
from .._types import Backend
from ..activations import Activation
from ..kernels import nn as kernels
from ..kernels import random as random_kernels
from .mlp import (
    MLP,
    STREAM_INPUTS,
    STREAM_OUTPUT_GRAD,
    BackwardStats,
    ForwardStats,
    NonFiniteSignalError,
    _check_pair,
    _correlation,
    _moments,
    array_moments,
    resolve_widths,
    short_widths,
    weight_stream,
)

#: LSUV defaults (Mishkin & Matas 2015, Algorithm 1: Tol_var = 0.1, T_max = 10).
LSUV_TOLERANCE = 0.1
LSUV_MAX_ITERATIONS = 10

# ----------------------------------------------------------------------------------------------------------------
# LSUV


def lsuv(
    net: MLP,
    inputs: npt.ArrayLike,
    *,
    tol: float = LSUV_TOLERANCE,
    max_iterations: int = LSUV_MAX_ITERATIONS,
    seed: int = 0,
    orthogonal_start: bool = True,
) -> np.ndarray:
    """Layer-sequential unit-variance initialisation (Mishkin & Matas 2015, Algorithm 1), in place.

    Start from orthogonal weights (``orthogonal_start``), then for l = 1..L in order: forward ``inputs`` to
    s^(l), and while ``|Var(s^(l)) - 1| >= tol`` and fewer than ``max_iterations`` rescalings were made, set
    ``W^(l) <- W^(l) / sqrt(Var(s^(l)))``. Biases are left as they are. Returns the number of rescalings per
    layer (an int array of length L). A layer whose s^(l) has zero variance cannot be rescaled: ValueError.

    Parameters
    ----------
    net : MLP
        The network; its weights are overwritten.
    inputs : array_like, shape (batch, d^(0))
        The data batch whose pre-activations are brought to unit variance.
    tol : float
        Tol_var (positive).
    max_iterations : int
        T_max, the most rescalings per layer (positive).
    seed : int
        The Philox key of the orthogonal start.
    orthogonal_start : bool
        Start from orthogonal weights (Saxe et al. 2014), as the paper does; else rescale the weights as they are.

    Returns
    -------
    numpy.ndarray of int64, shape (L,)
        The rescalings made per layer.

    Raises
    ------
    ValueError
        If ``tol`` or ``max_iterations`` is out of range, or a layer's Var(s^(l)) is zero or not finite.

    References
    ----------
    D. Mishkin, J. Matas, "All you need is a good init", ICLR 2016 (arXiv:1511.06422, 2015), Algorithm 1.
    """
    tol = validation.check_finite(tol, "tol", minimum=0.0, strict=True)
    max_iterations = validation.check_positive_int(max_iterations, "max_iterations")
    if orthogonal_start:
        for l in range(1, net.depth + 1):
            initializers.fill(
                net.weights(l), "orthogonal", net.widths[l - 1], net.widths[l], seed=seed, stream=weight_stream(l)
            )
    iterations = np.zeros(net.depth, dtype=np.int64)
    x = inputs
    for l in range(1, net.depth + 1):
        single = MLP(
            (net.widths[l - 1], net.widths[l]), net.activation, bias=net.bias, dtype=net.dtype, backend=net.backend
        )
        single.weights(1)[...] = net.weights(l)
        if net.bias:
            single.biases(1)[...] = net.biases(l)
        while True:
            variance = single.forward(x, keep=False, pair=None).pre_var[0]
            if not (math.isfinite(variance) and variance > 0.0):
                raise ValueError(f"LSUV: Var(s^({l})) = {variance}; cannot rescale layer {l}")
            if abs(variance - 1.0) < tol or iterations[l - 1] >= max_iterations:
                break
            single.weights(1)[...] /= math.sqrt(variance)
            iterations[l - 1] += 1
        net.weights(l)[...] = single.weights(1)
        x = single.output
    return iterations


# ----------------------------------------------------------------------------------------------------------------
# the experiment


#: Propagation's names for the backward pass's overflow and underflow layers (ForwardStats has the plain names).
_BACKWARD_RENAMED = {"grad_overflow_layer": "overflow_layer", "grad_underflow_layer": "underflow_layer"}


@dataclasses.dataclass
class Propagation:
    """What :func:`propagate` measured. Arrays of length ``depth`` are indexed by layer l - 1 (l = 1..L).

    Description of the run: ``init``, ``init_params``, ``activation`` (name), ``activation_param``, ``depth``,
    ``widths`` (d^(0), ..., d^(L)), ``batch``, ``seed``, ``dtype`` (name), ``backend``, ``bias_var``.

    Input x^(0): ``input_mean``, ``input_var``, ``input_meansq`` (scalars) and ``input_correlation`` (of the
    ``pair`` of inputs).

    Weights as drawn: ``weight_var`` (variance of the entries of W^(l), measured) and ``weight_gain`` =
    d^(l-1) * weight_var (the fan_in * Var[W] of the linear recursions); ``lsuv_iterations`` (init="lsuv").

    ``forward`` (a :class:`ForwardStats`) and ``backward`` (a :class:`BackwardStats`; NaN everywhere when the
    forward pass overflowed, or with ``backward=False``); their fields read as attributes of the run too:
    ``run.pre_var`` is ``run.forward.pre_var``, ``run.grad_var`` is ``run.backward.grad_var``, and the backward
    pass's ``overflow_layer`` / ``underflow_layer`` read as ``grad_overflow_layer`` / ``grad_underflow_layer``.
    ``histogram_edges`` are the bins of ``forward.histograms``; ``output_grad_var`` is the variance of delta^(L) as
    given (1 in expectation for the default draws).
    """

    init: str
    init_params: dict
    activation: str
    activation_param: float
    depth: int
    widths: tuple
    batch: int
    seed: int
    dtype: str
    backend: str
    bias_var: float
    input_mean: float
    input_var: float
    input_meansq: float
    input_correlation: float
    weight_var: np.ndarray
    weight_gain: np.ndarray
    lsuv_iterations: np.ndarray | None
    forward: ForwardStats
    backward: BackwardStats
    histogram_edges: np.ndarray | None
    output_grad_var: float

    def __getattr__(self, name):
        # only reached for names that are not fields; "forward"/"backward" themselves must not recurse (unpickling)
        if name.startswith("__") or name in ("forward", "backward"):
            raise AttributeError(name)
        if name in _BACKWARD_RENAMED:
            return getattr(self.backward, _BACKWARD_RENAMED[name])
        for part in (self.forward, self.backward):
            if name in part.__dataclass_fields__:
                return getattr(part, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The per-layer arrays by name (for :class:`testbed.results.Result`): weights, forward, backward."""
        arrays = {name: getattr(self, name) for name in ("weight_var", "weight_gain", "lsuv_iterations")}
        arrays.update((f.name, getattr(self.forward, f.name)) for f in dataclasses.fields(self.forward))
        arrays["histogram_edges"] = self.histogram_edges
        arrays.update((f.name, getattr(self.backward, f.name)) for f in dataclasses.fields(self.backward))
        return {name: value for name, value in arrays.items() if isinstance(value, np.ndarray)}


#: Largest bias variance :func:`propagate` accepts: the per-layer statistics sum squares of the signal, which
#: must stay finite (a signal beyond the finite range is flagged by its layer; its squares are not).
MAX_SIGNAL_VARIANCE = 1e150


def memory_estimate(
    depth: int,
    width: int | Sequence[int],
    batch: int,
    *,
    itemsize: int = 8,
    keep: bool = True,
    input_width: int | None = None,
) -> int:
    """Bytes a :func:`propagate` run allocates: parameters and gradients (2 sum_l d^(l-1) d^(l)), the kept
    activations s^(l) and x^(l) of every layer for the backward pass (2 batch sum_l d^(l); two layers without
    ``keep``), the inputs and the backward deltas. ``width`` is an int or the list of d^(1)..d^(L); nothing of
    the net's size is allocated here.

    Parameters
    ----------
    depth : int
        The number of layers L.
    width : int or sequence of int
        Every layer's width, or d^(1), ..., d^(L).
    batch : int
        The batch size.
    itemsize : int
        Bytes per number (8 for float64, 4 for float32).
    keep : bool
        Whether every layer's activations are kept (for the backward pass).
    input_width : int or None
        d^(0); None takes the first width.

    Returns
    -------
    int
        Bytes.
    """
    if isinstance(width, (int, np.integer)):
        first = width if input_width is None else input_width
        weights = first * width + (depth - 1) * width * width
        units, widest = depth * width, max(width, first)
    else:
        widths = [width[0] if input_width is None else input_width, *width]
        weights = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
        units, widest = sum(widths[1:]), max(widths)
    kept = 2 * units if keep else 4 * widest
    return itemsize * (2 * weights + batch * (kept + 4 * widest))


def check_memory(
    depth: int,
    width: int | Sequence[int],
    batch: int,
    *,
    itemsize: int = 8,
    keep: bool = True,
    input_width: int | None = None,
    what: str | None = None,
    backend: Backend = "cpu",
) -> int:
    """:class:`testbed.backend.MemoryLimitError` (a ValueError) when :func:`memory_estimate` does not fit: in the
    host's memory, and on ``backend="cuda"`` also in the GPU's (which holds the parameters, gradients and kept
    activations of the passes).

    Parameters
    ----------
    depth : int
        The number of layers L.
    width : int or sequence of int
        Every layer's width, or d^(1), ..., d^(L).
    batch : int
        The batch size.
    itemsize : int
        Bytes per number (8 for float64, 4 for float32).
    keep : bool
        Whether every layer's activations are kept (for the backward pass).
    input_width : int or None
        d^(0); None takes the first width.
    what : str or None
        What the message calls the run (by default its depth, width and batch).
    backend : {"cpu", "cuda", "auto"}
        ``"cuda"`` also checks the GPU's memory.

    Returns
    -------
    int
        The bytes of :func:`memory_estimate`.

    Raises
    ------
    testbed.backend.MemoryLimitError
        If they do not fit.
    """
    if what is None:
        shape = width if isinstance(width, (int, np.integer)) else f"{list(width)[:3]}..."
        what = f"depth x width x batch = {depth} x {shape} x {batch}"
    nbytes = backends.check_memory(
        memory_estimate(depth, width, batch, itemsize=itemsize, keep=keep, input_width=input_width), what
    )
    if backend == "cuda":
        backends.check_memory(nbytes, what, device=True)
    return nbytes


#: :func:`propagate` keeps the arrays of its last CPU run (parameters, gradients, kept activations, work buffers)
#: for the next run of the same net and batch when they take at most this many bytes: writing into arrays whose
#: pages are mapped spares a page fault per 4 KiB page (a 20-layer net of width 1024 on a batch of 2048 holds
#: 0.5 GB: 10^5 faults, a tenth of the run). :func:`release_workspace` hands them back.
SPARE_BYTES = 1 << 30

_spare: list[MLP] = []
_spare_lock = threading.Lock()


def release_workspace() -> None:
    """Free the arrays :func:`propagate` kept from its last run (see :data:`SPARE_BYTES`)."""
    with _spare_lock:
        _spare.clear()


def _take_spare():
    with _spare_lock:  # a run takes the spare away: two threads never share its arrays
        return _spare.pop() if _spare else None


def _keep_spare(net):
    if net.backend == "cpu" and net._nbytes() <= SPARE_BYTES:
        with _spare_lock:
            _spare[:] = [net]


def _standard_normal(out, seed, stream):
    """``out`` (C-contiguous) filled with :func:`testbed.rng.normal` ``(out.shape, seed, stream)``'s draws, in place."""
    random_kernels.fill(out.reshape(-1), random_kernels.NORMAL, seed, stream, 0, 0, 0.0, 1.0, 0.0, 0.0, 0.0, "cpu")
    return out


def propagate(
    init: str,
    activation: str | Activation,
    depth: int,
    width: int | Sequence[int],
    *,
    batch: int = 1024,
    seed: int = 0,
    backend: Backend = "cpu",
    dtype: npt.DTypeLike = np.float64,
    bias_var: float = 0.0,
    inputs: npt.ArrayLike | None = None,
    input_width: int | None = None,
    output_grad: npt.ArrayLike | None = None,
    loss: Callable[[np.ndarray], np.ndarray] | None = None,
    histogram_edges: npt.ArrayLike | None = None,
    pair: tuple[int, int] | None = (0, 1),
    backward: bool = True,
    on_nonfinite: Literal["flag", "raise"] = "flag",
    activation_params: dict[str, float] | None = None,
    lsuv_tol: float = LSUV_TOLERANCE,
    lsuv_max_iterations: int = LSUV_MAX_ITERATIONS,
    **init_params: Any,
) -> Propagation:
    """Measure how a signal and its gradient propagate through a freshly initialised MLP; return :class:`Propagation`.

    ``init``: an initialiser name of :mod:`testbed.init` (its parameters as keywords, ``init_params``), or
    ``"lsuv"`` (orthogonal start, then :func:`lsuv` on the input batch, with ``lsuv_tol`` and
    ``lsuv_max_iterations``). ``activation``: a name of :mod:`testbed.activations` (its parameter, e.g.
    ``negative_slope``, in ``activation_params``) or an :class:`~testbed.activations.Activation`.
    ``depth`` L and ``width`` (an int, or a list of L ints d^(1)..d^(L); d^(0) is ``input_width``, by default
    the first width): see :func:`resolve_widths`. Biases are drawn from N(0, ``bias_var``) when ``bias_var`` > 0
    (else the net has none).

    Inputs x^(0) are ``inputs`` or i.i.d. N(0, 1) (Philox stream STREAM_INPUTS); the backward pass starts from
    ``output_grad``, or ``loss(output) -> dloss/ds^(L)`` evaluated on s^(L), or i.i.d. N(0, 1) draws
    (stream STREAM_OUTPUT_GRAD: the loss sum_batch <r, s^(L)>). ``backward=False`` skips it (grad fields NaN).
    ``histogram_edges`` asks for per-layer histograms of x^(l); ``pair`` names the two inputs whose correlation
    is tracked (``None``: none). ``batch`` is ignored when ``inputs`` are given. All draws depend on ``seed``
    alone, so a run is the same on the CPU with any thread count and on the GPU (to rounding). The arrays of the
    last CPU run are kept for the next run of the same shape (up to :data:`SPARE_BYTES`; :func:`release_workspace`).

    >>> run = propagate("he_normal", "relu", 20, 256, batch=256)
    >>> bool(0.5 < run.pre_var[-1] / run.pre_var[0] < 2.0)   # He keeps ReLU's variance
    True

    A signal that leaves the finite range is reported in ``overflow_layer`` / ``grad_overflow_layer`` (first layer
    where it did; the statistics from there on are NaN) when ``on_nonfinite="flag"``, or raises
    :class:`NonFiniteSignalError` naming the layer when ``on_nonfinite="raise"``.

    Parameters
    ----------
    init : str
        An initialiser's name or alias of :mod:`testbed.init`, or ``"lsuv"``.
    activation : str or Activation
        The activation's name of :mod:`testbed.activations`, or an Activation.
    depth : int
        The number of layers L.
    width : int or sequence of int
        Every layer's width, or d^(1), ..., d^(L).
    batch : int
        The number of N(0, 1) inputs (ignored when ``inputs`` are given).
    seed : int
        The Philox key of every draw (weights, biases, inputs, output gradient).
    backend : {"cpu", "cuda", "auto"}
        Where the passes run.
    dtype : numpy float dtype
        float32 or float64.
    bias_var : float
        The biases' variance; 0 builds a net without biases.
    inputs : array_like or None
        x^(0), shape (batch, d^(0)); None draws N(0, 1).
    input_width : int or None
        d^(0) when ``inputs`` are drawn (default the first width).
    output_grad : array_like or None
        delta^(L), shape (batch, d^(L)); None uses ``loss`` or N(0, 1) draws.
    loss : callable or None
        ``loss(output) -> dloss/ds^(L)``, evaluated on s^(L).
    histogram_edges : array_like or None
        The bin edges of per-layer histograms of x^(l).
    pair : (int, int) or None
        The two inputs whose correlation is tracked.
    backward : bool
        Run the backward pass.
    on_nonfinite : {"flag", "raise"}
        Report a non-finite signal by its layer, or raise :class:`NonFiniteSignalError`.
    activation_params : dict or None
        The activation's parameter (e.g. ``{"negative_slope": 0.2}``).
    lsuv_tol, lsuv_max_iterations : float, int
        :func:`lsuv`'s ``tol`` and ``max_iterations`` (for ``init="lsuv"``).
    **init_params
        The initialiser's parameters.

    Returns
    -------
    Propagation
        The weights' per-layer variance and gain, the forward and backward statistics, the output gradient's variance.

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it); :class:`testbed.backend.MemoryLimitError` when the run
        does not fit in memory.
    NonFiniteSignalError
        If the signal or gradient leaves the finite range and ``on_nonfinite="raise"``.

    References
    ----------
    X. Glorot, Y. Bengio, "Understanding the difficulty of training deep feedforward neural networks", AISTATS 2010;
    K. He, X. Zhang, S. Ren, J. Sun, "Delving deep into rectifiers", ICCV 2015; B. Poole, S. Lahiri, M. Raghu,
    J. Sohl-Dickstein, S. Ganguli, "Exponential expressivity in deep neural networks through transient chaos",
    NeurIPS 2016; S. S. Schoenholz, J. Gilmer, S. Ganguli, J. Sohl-Dickstein, "Deep information propagation",
    ICLR 2017; D. Mishkin, J. Matas, "All you need is a good init", ICLR 2016.
    """
    spare = _take_spare()
    batch = validation.check_positive_int(batch, "batch")
    target = backends.resolve(backend)
    if isinstance(width, (int, np.integer)) and not isinstance(width, (bool, np.bool_)):
        # before resolve_widths builds its list of depth widths
        check_memory(
            validation.check_positive_int(depth, "depth"),
            validation.check_positive_int(width, "width"),
            batch,
            keep=backward,
            input_width=None if inputs is None else np.shape(inputs)[-1],
            backend=target,
        )
    widths = resolve_widths(depth, width, input_width if inputs is None else _input_width(inputs, input_width))
    depth = len(widths) - 1
    if spare is not None and (target != "cpu" or spare.widths != widths):
        spare = None  # another shape: freed before the memory check
    check_memory(
        depth,
        widths[1:],
        batch,
        keep=backward,
        input_width=widths[0],
        what=f"a net of widths {short_widths(widths)} on a batch of {batch}",
        backend=target,
    )
    seed = validation.check_seed(seed)
    dtype = validation.check_dtype(dtype)
    bias_var = validation.check_finite(bias_var, "bias_var", minimum=0.0)
    if bias_var > MAX_SIGNAL_VARIANCE:  # the layer statistics square the signal: beyond, they overflow unflagged
        raise ValueError(
            f"bias_var must be at most {MAX_SIGNAL_VARIANCE:g} (the squares of the signal must stay "
            f"finite), got {bias_var:g}"
        )
    if on_nonfinite not in ("flag", "raise"):
        raise ValueError(f"on_nonfinite must be 'flag' or 'raise', got {on_nonfinite!r}")
    if not isinstance(init, str):
        raise ValueError(f"init must be an initialiser name, got {init!r}")
    for name, value in init_params.items():
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            validation.check_finite(value, name)
    net = MLP(widths, activation, bias=bias_var > 0.0, dtype=dtype, backend=backend, **(activation_params or {}))
    if inputs is not None:
        x = net._check_batch(inputs, widths[0], "inputs")
        batch = x.shape[0]
    else:
        x = None
    if net.backend == "cpu":
        if spare is not None:
            net._adopt(spare, batch)
        net._recycle_kept = True  # the net is this call's alone: its kept arrays are overwritten next time
    del spare
    try:
        return _run(
            net,
            x,
            batch,
            seed,
            bias_var,
            init=init,
            init_params=init_params,
            lsuv_options=(lsuv_tol, lsuv_max_iterations),
            output_grad=output_grad,
            loss=loss,
            histogram_edges=histogram_edges,
            pair=pair,
            backward=backward,
            on_nonfinite=on_nonfinite,
        )
    finally:
        _keep_spare(net)


def _run(
    net,
    x,
    batch,
    seed,
    bias_var,
    *,
    init,
    init_params,
    lsuv_options,
    output_grad,
    loss,
    histogram_edges,
    pair,
    backward,
    on_nonfinite,
):
    """The body of :func:`propagate` on its checked arguments and its net (``x`` None: draw the inputs)."""
    widths, depth, dtype = net.widths, net.depth, net.dtype
    if x is None:
        if net.backend == "cpu":  # drawn into a kept buffer (the draws are finite: no check)
            x = _standard_normal(net._buffer("inputs", batch, widths[0]), seed, STREAM_INPUTS)
        else:
            x = rng.normal((batch, widths[0]), seed=seed, stream=STREAM_INPUTS, dtype=dtype)
    lsuv_iterations = None
    if init == "lsuv":
        net.initialize("orthogonal", seed=seed, bias_var=bias_var, **init_params)
        lsuv_iterations = lsuv(
            net, x, tol=lsuv_options[0], max_iterations=lsuv_options[1], seed=seed, orthogonal_start=False
        )
    else:
        net.initialize(init, seed=seed, bias_var=bias_var, **init_params)
    forward = net.forward(x, keep=backward, histogram_edges=histogram_edges, pair=pair)
    if forward.overflow_layer is not None and on_nonfinite == "raise":
        raise NonFiniteSignalError(
            f"the forward signal left the finite range at layer {forward.overflow_layer} of {depth}",
            forward.overflow_layer,
            "forward",
        )
    nan = np.full(depth, math.nan)
    back = BackwardStats(
        nan, nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy() if net.bias else None, None, None
    )
    output_grad_var = math.nan
    weight_sums = None
    if backward and forward.overflow_layer is None:
        if output_grad is None and loss is None and net.backend == "cpu":
            delta = _standard_normal(net._buffer("output_grad", batch, widths[-1]), seed, STREAM_OUTPUT_GRAD)
        else:
            if output_grad is not None:
                delta = output_grad
            elif loss is not None:
                delta = loss(net.pre(depth).copy())
            else:
                delta = rng.normal((batch, widths[-1]), seed=seed, stream=STREAM_OUTPUT_GRAD, dtype=dtype)
            delta = net._check_batch(delta, widths[-1], "output_grad")
        output_grad_var = array_moments(delta)[1]
        if net.backend == "cpu":
            weight_sums = np.zeros((depth, kernels.BACKWARD_SLOTS))
        back = net.backward(delta, _weight_sums=weight_sums)
        if back.overflow_layer is not None and on_nonfinite == "raise":
            raise NonFiniteSignalError(
                f"the gradient left the finite range at layer {back.overflow_layer} of {depth}",
                back.overflow_layer,
                "backward",
            )
    if weight_sums is not None and back.overflow_layer is None:  # gathered by the backward pass over every layer
        weight_var = np.array(
            [
                _moments(row[kernels.B_SUM], row[kernels.B_SUMSQ], net.weights(l).size, float(net.weights(l)[0, 0]))[1]
                for l, row in enumerate(weight_sums, start=1)
            ]
        )
    else:
        weight_var = np.array([array_moments(net.weights(l))[1] for l in range(1, depth + 1)])
    input_mean, input_var, input_meansq = array_moments(x)
    pair_checked = _check_pair(pair, batch)
    return Propagation(
        init=init,
        init_params=dict(init_params),
        activation=net.activation.name,
        activation_param=net.activation.param,
        depth=depth,
        widths=widths,
        batch=batch,
        seed=seed,
        dtype=dtype.name,
        backend=net.backend,
        bias_var=bias_var,
        input_mean=input_mean,
        input_var=input_var,
        input_meansq=input_meansq,
        input_correlation=_correlation(x[pair_checked[0]], x[pair_checked[1]]) if pair_checked else math.nan,
        weight_var=weight_var,
        weight_gain=weight_var * np.array(widths[:-1], dtype=np.float64),
        lsuv_iterations=lsuv_iterations,
        forward=forward,
        backward=back,
        histogram_edges=None if histogram_edges is None else np.asarray(histogram_edges, dtype=np.float64),
        output_grad_var=output_grad_var,
    )


def _input_width(inputs, input_width):
    shape = np.shape(inputs)
    if len(shape) != 2:
        raise ValueError(f"inputs must have shape (batch, d^(0)), got {shape}")
    if input_width is not None and input_width != shape[1]:
        raise ValueError(f"input_width={input_width!r} disagrees with inputs of width {shape[1]}")
    return shape[1]
