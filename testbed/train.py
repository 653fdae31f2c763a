"""Training MLPs on data: the loss and its gradient in one compiled call, ``fit`` for one net, ``fit_many`` for K.

A training step on a minibatch (x_i, y_i), i = 1..B, of a :class:`testbed.nn.MLP` with parameters theta is

    L(theta) = (1/B) sum_i loss(f_theta(x_i), y_i),     theta <- optimizer step(theta, grad L(theta)),

with ``loss`` softmax cross-entropy (PyTorch's ``cross_entropy``) or the mean squared error against one-hot labels
(PyTorch's ``mse_loss``, mean over B x K entries); the formulas are in :mod:`testbed.rules.losses`. Build the net
with ``output="linear"`` so that its last layer gives logits. The gradient comes from one compiled call
(forward, loss and backward, BLAS products) and the step from the optimizer's fused kernel over the flat parameter
array (:mod:`testbed.optim`): any optimizer and schedule. Every product runs on one BLAS thread, the step's own
threads sharing the work: each product is cut into :data:`STEP_PARTS` parts, one thread each
(:func:`testbed.kernels.train.loss_and_grad_parts_cpu`: rows of the batch, then units of each layer), or, for a
step of small products (a small net), the batch into :data:`STEP_CHUNKS` chunks of rows, each a whole step on one
thread (:func:`testbed.kernels.train.loss_and_grad_split_cpu`), the chunks' gradients summed in a fixed order.
Either way the result does not depend on the thread count. On the GPU
``fit`` keeps the data, parameters, gradients and optimizer state on the device and copies one report back per
step (:mod:`testbed.train_cuda`).

Minibatches are a Philox permutation per epoch keyed by (seed, epoch) (:func:`testbed.data.batch_rows`), so a
run is the same on 1 or 2 CPU threads. A non-finite loss stops the run: :attr:`History.diverged_at` names the
step (or :class:`DivergenceError` is raised with ``on_divergence="raise"``); no NaN is ever trained on.

``fit_many`` trains K nets of one shape (different initialisations, seeds or learning rates) as the K rows of one
(K, P) parameter array, one compiled call per step for all of them, each core taking whole nets: the heat maps
of trainability need hundreds of small nets.

References: Glorot & Bengio 2010 (activations and saturation during training), He et al. 2015 (a 30-layer ReLU
net trains with He's initialisation, stalls with Glorot's).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from . import backend as backends
from . import data as datasets
from . import optim, validation
from .kernels import train as kernels
from .nn import MLP
from .nn.mlp import short_widths
from .rules import losses as loss_rules
from .rules import optimizers as optimizer_rules

#: Loss names -> rule codes.
LOSSES = {"cross_entropy": loss_rules.CROSS_ENTROPY, "mse": loss_rules.MSE}

#: What to do when the loss stops being finite.
ON_DIVERGENCE = ("stop", "raise")

#: Rows per forward pass when evaluating a whole split (bounds the buffers, not the result).
EVAL_CHUNK = 1024


class DivergenceError(FloatingPointError):
    """The training loss became non-finite at ``step`` (1-based); the parameters are those before that step."""

    def __init__(self, message: str, step: int, loss: float) -> None:
        super().__init__(message)
        self.step = step
        self.loss = loss


@dataclasses.dataclass
class History:
    """What :func:`fit` measured.

    - ``train_loss``: the minibatch loss of every step taken (step t at index t-1), before that step's update;
    - ``eval_steps``: the steps after which the net was evaluated (0 = before training), with ``test_loss``,
      ``test_accuracy`` (the whole test split) and ``train_eval_loss``, ``train_accuracy`` (the whole training
      split) at each;
    - per-layer statistics at ``record_steps`` (rows) x layers (columns), measured on that step's minibatch before
      its update: ``pre_var`` (variance of s^(l) over batch x units), ``pre_mean``, ``post_mean`` and ``post_std``
      (mean and standard deviation of x^(l) = phi(s^(l)): Glorot & Bengio 2010's figure 2), ``saturated_frac``
      (|phi| within 1% of a bound), ``dead_frac`` (ReLU family: units with s <= 0 on the whole batch), ``grad_norm``
      (||dL/dW^(l)||_F) and ``update_ratio`` (||Delta W^(l)||_F / ||W^(l)||_F of that step's update);
    - ``diverged_at``: the step whose loss was not finite (the run stopped there), or None; ``seconds``: wall time.
    """

    steps: int
    train_loss: np.ndarray
    eval_steps: np.ndarray
    test_loss: np.ndarray
    test_accuracy: np.ndarray
    train_eval_loss: np.ndarray
    train_accuracy: np.ndarray
    record_steps: np.ndarray
    pre_mean: np.ndarray
    pre_var: np.ndarray
    post_mean: np.ndarray
    post_std: np.ndarray
    saturated_frac: np.ndarray
    dead_frac: np.ndarray
    grad_norm: np.ndarray
    update_ratio: np.ndarray
    diverged_at: int | None = None
    seconds: float = math.nan

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The arrays by name (for :class:`testbed.results.Result`)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }


# ----------------------------------------------------------------------------------------------------------------
# checks and layout


def _loss_code(loss):
    if not isinstance(loss, str) or loss not in LOSSES:
        raise validation.unknown_name_error("loss", loss, tuple(LOSSES))
    return LOSSES[loss]


def _check_net(net, name="net"):
    if not isinstance(net, MLP):
        raise ValueError(f"{name} must be a testbed.nn.MLP, got {type(net).__name__}")
    return net


def _check_labels(y, rows, classes, name="y"):
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != rows:
        raise ValueError(f"{name} must be a 1-d array of {rows} class labels, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if rows and (y.min() < 0 or y.max() >= classes):
        raise ValueError(
            f"{name} must hold labels in 0..{classes - 1} (the net's {classes} outputs), "
            f"got labels from {y.min()} to {y.max()}"
        )
    return np.ascontiguousarray(y, dtype=np.int64)


class _Layout:
    """The arguments every training kernel takes about the net, and buffers for a batch of ``rows`` rows."""

    def __init__(self, net, rows):
        self.widths = np.array(net.widths, dtype=np.int64)
        self.weight_at = np.array([at for at, _ in net._offsets], dtype=np.int64)
        self.bias_at = np.array([at for _, at in net._offsets], dtype=np.int64)
        self.use_bias = net.bias
        self.code = net.activation.code
        self.param = float(net.activation.param)
        self.out_linear = net.output_kind == "linear"
        self.rows = rows
        self.sizes = (rows * net.widths[0], rows * sum(net.widths[1:]), rows * max(net.widths[1:]))

    def net_args(self):
        """The net as a plain tuple, in the order of :class:`testbed.kernels.train.NetArgs` (the GPU curvature passes
        unpack it)."""
        return (self.widths, self.weight_at, self.bias_at, self.use_bias, self.code, self.param, self.out_linear)

    def net(self):
        """The net as the training kernels take it, a :class:`testbed.kernels.train.NetArgs`."""
        return kernels.NetArgs(*self.net_args())

    def buffers(self, dtype, copies=None):
        """A :class:`testbed.kernels.train.PassBuffers` for one pass on ``rows`` rows (each array with a leading
        axis of ``copies`` when given)."""
        lead = () if copies is None else (copies,)
        x0, hidden, widest = self.sizes
        arrays = (np.empty(lead + (size,), dtype=dtype) for size in (x0, hidden, hidden, widest, widest))
        return kernels.PassBuffers(*arrays, np.empty(lead + (self.rows,)))

    def eval_buffers(self, dtype, copies=None):
        """A :class:`testbed.kernels.train.EvalBuffers` for an evaluation ``rows`` rows at a time."""
        x0, pre, post, dz, _, _ = self.buffers(dtype, copies)
        return kernels.EvalBuffers(x0, pre, post, dz)


def _data(x, y, code, dtype):
    """The examples ``x`` with integer labels ``y`` and the loss ``code``, as the training kernels take them."""
    return kernels.DataArgs(x, y, _no_targets(dtype), False, code)


def _no_targets(dtype):
    return np.zeros((1, 1), dtype=dtype)


# ----------------------------------------------------------------------------------------------------------------
# BLAS threads

#: A product of at most this many multiply-adds (batch x fan_in x fan_out) runs on one BLAS thread: splitting it
#: costs more in thread hand-offs than it gains. Measured on 2 cores (benchmarks/bench_train.py, small case, width
#: 128, depth 30, batch 128): a step 5.0 ms on one BLAS thread against 5.7-9.7 ms on two; the bare products alone
#: 3.6 against 7.2 ms. A lone 192^3 product gains 12 % from a second thread, a 256^3 one 28 %.
SMALL_PRODUCT = 192**3


@functools.lru_cache(maxsize=None)
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, made once (finding them costs ~0.2 ms, a limit ~9 us)."""
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS that np.dot calls inside Numba: loaded before the look)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class _BlasLimits:
    """The BLAS thread limit of the whole process, shared by every thread that asks for one.

    BLAS's thread count is a process-wide setting, so two Python threads each saving it, setting it and restoring
    it on their own (threadpoolctl's ``limit``) interleave: the later one saves the earlier one's limit and
    restores it after the earlier one has restored the original, leaving BLAS on one thread for good, or one of
    them runs inside its block with the other's count. Here one lock guards one record of the blocks open in the
    process: the first block to open saves every BLAS library's thread count, every open block's limit is held,
    the smallest of them applies, and the last block to close restores the saved counts.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.open = []  # the limits of the blocks open now, in any thread
        self.saved = None  # each BLAS library's thread count before the first open block
        self.applied = None  # the limit set now (None: the saved counts)

    def _set(self, libraries, limit):
        if limit != self.applied:
            for library, original in zip(libraries, self.saved):
                with _blas_control(library):
                    library.set_num_threads(original if limit is None else limit)
            self.applied = limit

    def enter(self, limit):
        libraries = _blas_libraries()
        with self.lock:
            if not self.open:
                self.saved = [library.num_threads for library in libraries]
            self.open.append(limit)
            self._set(libraries, min(self.open))

    def leave(self, limit):
        libraries = _blas_libraries()
        with self.lock:
            self.open.remove(limit)
            self._set(libraries, min(self.open) if self.open else None)
            if not self.open:
                self.saved = None


_BLAS_LIMITS = _BlasLimits()


@contextlib.contextmanager
def _blas_control(library):
    """Let this thread set ``library``'s process-wide thread count.

    threadpoolctl (3.8 here) lets one "controlling" Python thread set OpenBLAS's count and silently ignores the
    others; its documented way out is ``OpenBLASController.clear_controlling_thread(force=True)``, which hands
    control to the next thread that sets a count. :class:`_BlasLimits` serialises every change under its lock, so
    this thread takes control for the one change and gives it back.
    """
    release = getattr(type(library), "clear_controlling_thread", None)  # absent from older threadpoolctl
    if release is not None:
        release(force=True)
    try:
        yield
    finally:
        if release is not None:
            release(force=True)


@functools.lru_cache(maxsize=None)
def _blas_libraries():
    """The BLAS libraries' threadpoolctl controllers (each sets and reads its library's thread count)."""
    return tuple(_blas_controller().select(user_api="blas").lib_controllers)


class _Limited:
    """One block of :func:`blas_threads` (a class, not a generator: a training step enters one per call)."""

    __slots__ = ("limit",)

    def __init__(self, limit):
        self.limit = limit

    def __enter__(self):
        _BLAS_LIMITS.enter(self.limit)
        return self

    def __exit__(self, *exception):
        _BLAS_LIMITS.leave(self.limit)
        return False


def blas_threads(limit: int | None) -> contextlib.AbstractContextManager:
    """A context in which BLAS runs on at most ``limit`` threads (``None``: as it is).

    Safe to enter from several Python threads at once and to nest: BLAS's thread count is one setting of the
    whole process, so while several blocks are open (in any threads) the **smallest** of their limits applies to
    all of them, and the counts BLAS had before the first block opened come back when the last one closes. (A
    block asking for more threads than another open block therefore runs on fewer than it asked for: a limit is
    a ceiling, never a promise.) Every change of BLAS threads in the package goes through here.

    Parameters
    ----------
    limit : int or None
        The most BLAS threads inside the block (a positive integer); ``None`` leaves BLAS as it is.

    Returns
    -------
    context manager
        Restores every BLAS library's thread count when the last open block closes.

    Raises
    ------
    ValueError
        If ``limit`` is not None or a positive integer.
    """
    if limit is None:
        return contextlib.nullcontext()
    return _Limited(validation.check_positive_int(limit, "limit"))


def step_blas_threads(widths: Sequence[int], batch: int) -> int | None:
    """The BLAS thread limit of a training step of a net of ``widths`` on ``batch`` rows: 1 when every product is
    at most :data:`SMALL_PRODUCT`, else ``None`` (BLAS's own choice).

    Parameters
    ----------
    widths : sequence of int
        The net's widths d^(0), ..., d^(L).
    batch : int
        Rows per step.

    Returns
    -------
    int or None
        1, or ``None`` for no limit.
    """
    largest = max(a * b for a, b in zip(widths[:-1], widths[1:])) * batch
    return 1 if largest <= SMALL_PRODUCT else None


#: A step whose products run on one BLAS thread (:func:`step_blas_threads`) cuts its batch into this many chunks
#: of rows, each a whole forward and backward pass on its own thread (:func:`testbed.kernels.train.
#: loss_and_grad_split_cpu`); the chunks' gradients are summed in a fixed order, so the result does not depend on
#: the thread count. Measured on 2 cores (benchmarks/bench_train.py, small case): see benchmarks/RESULTS.md,
#: eighth session.
STEP_CHUNKS = 2

#: Fewest rows per chunk: below it a chunk's products are too thin to be worth a thread.
MIN_CHUNK_ROWS = 32

#: Parameters per thread task when the chunks' gradients are summed.
REDUCE_BLOCK = 8192


def step_chunks(widths: Sequence[int], batch: int) -> int:
    """The chunks of rows a training step of a net of ``widths`` on ``batch`` rows is cut into: :data:`STEP_CHUNKS`
    when its products are small (:func:`step_blas_threads` is 1) and every chunk gets at least
    :data:`MIN_CHUNK_ROWS` rows, else 1 (one pass, BLAS threads as BLAS chooses).

    Parameters
    ----------
    widths : sequence of int
        The net's widths d^(0), ..., d^(L).
    batch : int
        Rows per step.

    Returns
    -------
    int
        The number of chunks, >= 1.
    """
    if step_blas_threads(widths, batch) != 1:
        return 1
    return max(1, min(STEP_CHUNKS, batch // MIN_CHUNK_ROWS))


#: A step that is not cut into chunks of rows cuts each of its products into this many parts, one thread each,
#: every product on one BLAS thread (:func:`testbed.kernels.train.loss_and_grad_parts_cpu`): the same numbers on any
#: thread count. 1: the step in one pass with BLAS's own threads (:func:`testbed.kernels.train.loss_and_grad_cpu`,
#: the step before the ninth session). Measured on the shared 2-core Xeon (benchmarks/RESULTS.md, ninth session):
#: at load 5-7 the parts take 0.3-0.6x the time of the one pass (OpenBLAS's pool of 2 threads runs slower than one
#: thread when a core is taken); on one thread they cost 12 % more CPU (each part packs the whole weight matrix).
STEP_PARTS = 2


class _StepKernel:
    """The buffers of a step on ``rows`` rows and the call into the compiled step (parts of each product, chunks of
    rows, or one pass)."""

    def __init__(self, net, rows, code):
        self.code = code
        self.nonfinite = None  # the last call's count of non-finite gradient entries
        self.chunks = step_chunks(net.widths, rows)
        self.parts = STEP_PARTS if self.chunks == 1 else 1
        self.layout = _Layout(net, -(-rows // self.chunks))
        self.net = self.layout.net()
        self.blas_threads = step_blas_threads(net.widths, rows) if self.parts == 1 else 1
        if self.chunks > 1:
            self.buffers = self.layout.buffers(net.dtype, copies=self.chunks)
            self.partial = np.zeros((self.chunks - 1, net.size), dtype=net.dtype)
            self.chunk_loss = np.zeros(self.chunks)
        elif self.parts == 1:
            self.buffers = self.layout.buffers(net.dtype)
        else:
            x0, hidden, _ = self.layout.sizes
            self.buffers = kernels.PartsBuffers(
                np.empty(x0, dtype=net.dtype),
                np.empty(hidden, dtype=net.dtype),
                np.empty(hidden, dtype=net.dtype),
                np.empty(hidden, dtype=net.dtype),
                np.empty((self.parts, rows * -(-max(net.widths[1:]) // self.parts)), dtype=net.dtype),
                np.empty(rows),
            )

    def nbytes(self):
        """The bytes of this step's buffers."""
        arrays = [*self.buffers, *(vars(self).get(name) for name in ("partial", "chunk_loss"))]
        return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))

    def __call__(self, net, x, y, rows):
        """The loss; the number of NaN or infinite entries of ``net.grads`` (counted by the kernel while the
        gradient was in cache) goes to ``self.nonfinite``."""
        data = _data(x, y, self.code, net.dtype)
        with blas_threads(self.blas_threads):
            if self.chunks > 1:
                loss, bad = kernels.loss_and_grad_split_cpu(
                    net.params,
                    net.grads,
                    self.partial,
                    self.chunk_loss,
                    self.net,
                    data,
                    rows,
                    self.buffers,
                    REDUCE_BLOCK,
                )
            else:
                step = kernels.loss_and_grad_cpu if self.parts == 1 else kernels.loss_and_grad_parts_cpu
                loss, bad = step(net.params, net.grads, self.net, data, rows, self.buffers)
        self.nonfinite = int(bad)
        return float(loss)


class Step:
    """One training step of ``net`` on ``batch`` rows at a time, its buffers made once: ``step(x, y, rows)``
    computes the mean ``loss`` over ``x[rows]`` and its gradient in ``net.grads`` in one compiled call and
    returns the loss (CPU; on the GPU through the net's CUDA passes). :func:`fit` runs one per step; the
    optimizer's step follows it, given :attr:`nonfinite` so that it need not count the gradient again.

    Parameters
    ----------
    net : testbed.nn.MLP
        The net; its ``params`` are read and its ``grads`` written at every call.
    batch : int
        The rows per call (the buffers' size).
    loss : {"cross_entropy", "mse"}
        The loss, as in :func:`loss_and_grad`.

    Attributes
    ----------
    nonfinite : int or None
        The number of NaN or infinite entries of ``net.grads`` after the last call, counted by the CPU kernel while
        the gradient was in cache (pass it to :meth:`testbed.optim.Optimizer.step` as ``grads_nonfinite``); None
        before the first call and on the GPU.

    Raises
    ------
    ValueError
        If the net, ``batch`` or ``loss`` is invalid (the message names it).
    """

    def __init__(self, net: MLP, batch: int, loss: Literal["cross_entropy", "mse"] = "cross_entropy") -> None:
        self.net = _check_net(net)
        self.code = _loss_code(loss)
        self.batch = validation.check_positive_int(batch, "batch")
        self.kernel = None if net.backend == "cuda" else _StepKernel(net, self.batch, self.code)

    def __call__(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> float:
        net = self.net
        if net.backend == "cuda":
            return _loss_and_grad_cuda(net, x[rows], y[rows], self.code)
        return self.kernel(net, x, y, rows)

    @property
    def nonfinite(self) -> int | None:
        return None if self.kernel is None else self.kernel.nonfinite


# ----------------------------------------------------------------------------------------------------------------
# loss and gradient, evaluation


def loss_and_grad(
    net: MLP, x: npt.ArrayLike, y: npt.ArrayLike, *, loss: Literal["cross_entropy", "mse"] = "cross_entropy"
) -> float:
    """The mean loss of ``net`` over the batch (``x`` (B, d^(0)), integer labels ``y`` (B,)); fills ``net.grads``.

    ``loss``: ``"cross_entropy"`` (softmax cross-entropy of the logits, stable) or ``"mse"`` (mean over B x K of
    the squared difference to one-hot labels); see :mod:`testbed.rules.losses`. Returns a float; a non-finite loss
    is returned as it is (the gradients are then meaningless), :func:`fit` stops on it.

    With logits z_i = f_theta(x_i) in R^K::

        cross_entropy:  L = (1/B) sum_i (log sum_k exp(z_ik) - z_{i,y_i})
        mse:            L = (1/(B K)) sum_i sum_k (z_ik - [k = y_i])^2

    and ``net.grads`` = dL/dtheta by backpropagation (forward, loss and backward in one compiled call on the CPU).

    Parameters
    ----------
    net : testbed.nn.MLP
        The net (``output="linear"`` for logits); its ``grads`` array is overwritten.
    x : ndarray, shape (B, d^(0))
        Finite inputs.
    y : ndarray of int, shape (B,)
        Class labels in 0..K-1, K = ``net.widths[-1]``.
    loss : {"cross_entropy", "mse"}
        The loss (PyTorch's ``cross_entropy`` and ``mse_loss`` against one-hot labels).

    Returns
    -------
    float
        The mean loss L over the batch.

    Raises
    ------
    ValueError
        ``net`` is not an MLP, ``x`` has the wrong shape or is not finite, ``y`` is not integer labels of the right
        length and range, or ``loss`` is not a known name (each message names the argument).

    References
    ----------
    Rumelhart, Hinton & Williams 1986 (backpropagation); PyTorch's ``torch.nn.functional.cross_entropy`` and
    ``mse_loss``, the conventions followed.
    """
    net = _check_net(net)
    code = _loss_code(loss)
    x = net._check_batch(x, net.widths[0], "x")
    y = _check_labels(y, x.shape[0], net.widths[-1])
    if net.backend == "cuda":
        return _loss_and_grad_cuda(net, x, y, code)
    rows = np.arange(x.shape[0], dtype=np.int64)
    # everything _StepKernel's buffers and kernel choice depend on (the settings a caller or a test may change)
    key = (x.shape[0], code, step_chunks(net.widths, x.shape[0]), STEP_PARTS, step_blas_threads(net.widths, x.shape[0]))
    kept = _kept_steps.get(net)
    if kept is None or kept[0] != key:
        kernel = _StepKernel(net, x.shape[0], code)
        if kernel.nbytes() > KEEP_STEP_BYTES:  # a large batch: its compute dwarfs the fresh pages, its memory not
            _kept_steps.pop(net, None)
            return kernel(net, x, y, rows)
        kept = (key, kernel, threading.Lock())
        _kept_steps[net] = kept
    _, kernel, lock = kept
    if not lock.acquire(blocking=False):  # another thread is using the kept buffers: this call gets its own
        return _StepKernel(net, x.shape[0], code)(net, x, y, rows)
    try:
        return kernel(net, x, y, rows)
    finally:
        lock.release()


#: The last CPU step of each live net that :func:`loss_and_grad` used, with its key (rows, loss, the step's
#: settings) and a lock: a repeated call reuses its buffers. Made afresh on every call, buffers this large come
#: from fresh pages that the call faults in (glibc maps them): bench_train's small net (width 128, depth 30, batch
#: 128, float32, 2 threads) took 4.8-4.9 ms per call against 2.5-2.7 ms with its buffers kept (quiet, alternated).
_kept_steps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: The most bytes of buffers :func:`loss_and_grad` keeps for a net between calls (a step on a larger batch makes its
#: own, as before: kept, a whole training set's activations would stay in memory as long as the net).
KEEP_STEP_BYTES = 64 * 2**20


def _loss_and_grad_cuda(net, x, y, code):
    """The GPU path: the net's CUDA forward (kept activations), the loss kernel, the net's CUDA backward."""
    from numba import cuda

    net.forward(x, keep=True, pair=None)
    logits = net._device.kept_post[-1]
    batch, classes = logits.shape
    dz = cuda.device_array((batch, classes), dtype=net.dtype)
    row_loss = cuda.device_array(batch, dtype=np.float64)
    predicted = cuda.device_array(batch, dtype=np.int64)
    blocks, threads = backends.launch_shape(batch)
    kernels.loss_rows_gpu()[blocks, threads](
        logits,
        backends.to_device(y),
        backends.to_device(_no_targets(net.dtype)),
        backends.to_device(np.arange(batch, dtype=np.int64)),
        False,
        code,
        1.0 / batch,
        1.0 / (batch * classes),
        dz,
        row_loss,
        predicted,
    )
    delta = dz.copy_to_host()
    if net.output_kind != "linear":  # dloss/ds^(L) = dloss/dx^(L) * phi'(s^(L))
        delta *= net.activation.derivative(net.pre(net.depth)).astype(net.dtype)
    net.backward(delta)
    return float(np.sum(row_loss.copy_to_host()))


def evaluate(
    net: MLP,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    loss: Literal["cross_entropy", "mse"] = "cross_entropy",
    chunk: int = EVAL_CHUNK,
) -> tuple[float, float]:
    """(mean loss, accuracy) of ``net`` over all rows of ``x`` with labels ``y``, ``chunk`` rows per pass.

    The loss is that of :func:`loss_and_grad` over all N rows; the accuracy is the share of rows whose largest
    output is the label, (1/N) #{i : argmax_k z_ik = y_i} (ties go to the first maximum, as ``numpy.argmax``).
    ``net.grads`` is left as it was.

    Parameters
    ----------
    net : testbed.nn.MLP
        The net to evaluate.
    x : ndarray, shape (N, d^(0))
        Finite inputs, e.g. a whole split of a :class:`testbed.data.Dataset`.
    y : ndarray of int, shape (N,)
        Class labels in 0..K-1.
    loss : {"cross_entropy", "mse"}
        The loss, as in :func:`loss_and_grad`.
    chunk : int
        Rows per forward pass (bounds the buffers; the result does not depend on it).

    Returns
    -------
    loss : float
        The mean loss over the N rows.
    accuracy : float
        The share of rows classified correctly, in [0, 1].

    Raises
    ------
    ValueError
        A bad ``net``, ``x``, ``y``, ``loss`` or a ``chunk`` that is not a positive integer (the message names it).
    """
    net = _check_net(net)
    code = _loss_code(loss)
    x = net._check_batch(x, net.widths[0], "x")
    y = _check_labels(y, x.shape[0], net.widths[-1])
    chunk = min(validation.check_positive_int(chunk, "chunk"), x.shape[0])
    if net.backend == "cuda":
        total, correct = 0.0, 0
        for start in range(0, x.shape[0], chunk):
            xb, yb = x[start : start + chunk], y[start : start + chunk]
            net.forward(xb, keep=False, pair=None)
            loss_b, acc_b = _host_loss(net.output, yb, code)
            total += loss_b * yb.size
            correct += acc_b * yb.size
        return total / x.shape[0], correct / x.shape[0]
    layout = _Layout(net, chunk)
    loss_value, accuracy = kernels.evaluate_cpu(
        net.params, layout.net(), _data(x, y, code, net.dtype), layout.eval_buffers(net.dtype), chunk
    )
    return float(loss_value), float(accuracy)


def _host_loss(z, y, code):
    """(mean loss, accuracy) of logits ``z`` through the loss rule run as Python (the CUDA evaluation's host side)."""
    z = np.asarray(z, dtype=np.float64)
    dz = np.empty_like(z)
    batch, classes = z.shape
    total = sum(
        loss_rules.loss_row(code, z, i, int(y[i]), z, i, False, 1.0 / batch, 1.0 / (batch * classes), dz)
        for i in range(batch)
    )
    return total, float(np.mean(np.argmax(z, axis=1) == y))


# ----------------------------------------------------------------------------------------------------------------
# fit


def _check_dataset(dataset, net):
    if not isinstance(dataset, datasets.Dataset):
        raise ValueError(
            f"dataset must be a testbed.data.Dataset (testbed.data.load, from_arrays), got {type(dataset).__name__}"
        )
    if dataset.features != net.widths[0]:
        raise ValueError(
            f"the net's input width d^(0) = {net.widths[0]} does not match the dataset's {dataset.features} features"
        )
    if dataset.classes > net.widths[-1]:
        raise ValueError(f"the net has {net.widths[-1]} outputs, the dataset {dataset.classes} classes")
    return (
        np.ascontiguousarray(dataset.x_train, dtype=net.dtype),
        dataset.y_train,
        np.ascontiguousarray(dataset.x_test, dtype=net.dtype),
        dataset.y_test,
    )


def _eval_steps(steps, eval_every):
    """The steps after which a run is evaluated: 0, every ``eval_every``-th and the last; none for 0."""
    if eval_every == 0:
        return set()
    return set(range(0, steps + 1, eval_every)) | {steps}


def _check_common(steps, batch, seed, eval_every, on_divergence, n_train):
    steps = validation.check_positive_int(steps, "steps")
    batch = validation.check_positive_int(batch, "batch")
    if batch > n_train:
        raise ValueError(f"batch must be at most the training split's {n_train} examples, got {batch}")
    seed = validation.check_seed(seed)
    if eval_every is None:
        eval_every = steps
    elif not (isinstance(eval_every, (int, np.integer)) and not isinstance(eval_every, bool) and eval_every == 0):
        eval_every = validation.check_positive_int(eval_every, "eval_every")
    validation.check_choice(on_divergence, "on_divergence", ON_DIVERGENCE)
    return steps, batch, seed, eval_every


class _Batches:
    """Minibatch rows of step t (1-based), one Philox permutation per epoch, computed once per epoch."""

    def __init__(self, n, batch, seed):
        self.n, self.batch, self.seed = n, batch, seed
        self.per_epoch = n // batch
        self.epoch, self.order = -1, None

    def rows(self, t):
        epoch, index = divmod(t - 1, self.per_epoch)
        if epoch != self.epoch:
            self.epoch, self.order = epoch, datasets.permutation(self.n, seed=self.seed, epoch=epoch)
        return self.order[index * self.batch : (index + 1) * self.batch]


def _progress(total, enabled, description):
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="step", leave=False, mininterval=0.5)


def fit(
    net: MLP,
    dataset: datasets.Dataset,
    optimizer: optim.Optimizer,
    *,
    steps: int,
    batch: int = 128,
    loss: Literal["cross_entropy", "mse"] = "cross_entropy",
    seed: int = 0,
    eval_every: int | None = None,
    record_layers: bool = True,
    progress: bool = True,
    on_divergence: Literal["stop", "raise"] = "stop",
) -> History:
    """Train ``net`` in place on ``dataset`` with ``optimizer`` for ``steps`` minibatch steps; return a History.

    ``batch`` rows per step from a Philox permutation per epoch keyed by (``seed``, epoch); ``eval_every`` steps
    (default: only before and after training; 0: never) the loss and accuracy on both whole splits are taken, and with
    ``record_layers`` the per-layer statistics of :class:`History`. The backend is the net's (the optimizer's
    must agree). A non-finite loss stops the run (``on_divergence="stop"``: ``History.diverged_at``) or raises
    :class:`DivergenceError` (``"raise"``).

    Step t takes the minibatch B_t, the loss L_t = (1/|B_t|) sum_{i in B_t} loss(f_theta(x_i), y_i) and its
    gradient (:func:`loss_and_grad`), then ``theta <- optimizer step(theta, grad L_t)`` (the optimizer's fused
    kernel over the flat parameter array, with its schedule).

    Parameters
    ----------
    net : testbed.nn.MLP
        The net, trained in place (``output="linear"`` for logits).
    dataset : testbed.data.Dataset
        Training and test splits; its features must equal ``net.widths[0]`` and its classes fit the outputs.
    optimizer : testbed.optim.Optimizer
        Any optimizer of :mod:`testbed.optim` (not Newton), on the net's backend.
    steps : int
        Number of minibatch steps (>= 1).
    batch : int
        Rows per step, at most the training split's size.
    loss : {"cross_entropy", "mse"}
        The loss, as in :func:`loss_and_grad`.
    seed : int
        Key of the minibatch permutations: the same seed gives the same batches on any thread count.
    eval_every : int or None
        Evaluate both splits every this many steps (and before and after training); None: before and after
        only; 0: never.
    record_layers : bool
        Record the per-layer statistics of :class:`History` at the evaluation steps.
    progress : bool
        Show a progress bar (tqdm).
    on_divergence : {"stop", "raise"}
        On a non-finite loss, gradient or step (an update that overflows the parameters): stop and report the step
        in ``History.diverged_at``, or raise.

    Returns
    -------
    History
        The minibatch loss of every step, the evaluations, the per-layer records, ``diverged_at`` and the wall
        time.

    Raises
    ------
    ValueError
        A bad argument (the message names it): ``net`` not an MLP, ``optimizer`` not a :mod:`testbed.optim`
        optimizer or on another backend, a dataset that does not fit the net, ``steps``, ``batch`` or
        ``eval_every`` not positive integers (``eval_every`` may be 0), an unknown ``loss`` or ``on_divergence``.
    DivergenceError
        With ``on_divergence="raise"``, when the loss or its gradient stops being finite (the parameters are those
        before that step) or a step makes the parameters non-finite (they hold that step).

    References
    ----------
    Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural networks" (the
    per-layer statistics); He et al. 2015, "Delving deep into rectifiers" (deep ReLU nets trained from He's and
    Glorot's initialisations).
    """
    net = _check_net(net)
    if not isinstance(optimizer, optim.Optimizer):
        raise ValueError(
            f"optimizer must be a testbed.optim optimizer (SGD, Adam, ...), got {type(optimizer).__name__}"
        )
    if optimizer.backend != net.backend:
        raise ValueError(
            f"the optimizer runs on {optimizer.backend!r} and the net on {net.backend!r}: make both "
            "with the same backend"
        )
    _loss_code(loss)  # refuses an unknown loss name before any work
    x_train, y_train, x_test, y_test = _check_dataset(dataset, net)
    steps, batch, seed, eval_every = _check_common(steps, batch, seed, eval_every, on_divergence, x_train.shape[0])
    record_layers = bool(record_layers)
    if net.backend == "cuda":
        eval_chunk = min(EVAL_CHUNK, max(x_train.shape[0], x_test.shape[0]))
        _check_device_memory(net, optimizer, batch, eval_chunk, x_train.shape[0] + x_test.shape[0])
        return _fit_cuda(
            net,
            optimizer,
            (x_train, y_train, x_test, y_test),
            steps,
            batch,
            loss,
            seed,
            eval_every,
            record_layers,
            progress,
            on_divergence,
            eval_chunk,
        )
    state = optimizer.init(net.params)
    batches = _Batches(x_train.shape[0], batch, seed)
    step = Step(net, batch, loss)
    train_loss = np.full(steps, math.nan)
    evals, records = [], []
    diverged_at = None
    eval_at = _eval_steps(steps, eval_every)

    def take_eval(t):
        test = evaluate(net, x_test, y_test, loss=loss)
        train = evaluate(net, x_train, y_train, loss=loss)
        evals.append((t, *test, *train))

    started = time.perf_counter()
    if 0 in eval_at:
        take_eval(0)
    with _progress(steps, progress, "fit") as bar:
        for t in range(1, steps + 1):
            value = step(x_train, y_train, batches.rows(t))
            train_loss[t - 1] = value
            if not math.isfinite(value):
                diverged_at = t
                if on_divergence == "raise":
                    raise DivergenceError(
                        f"the training loss is {value} at step {t} of {steps} (lr "
                        f"{optimizer.lr:g}); the parameters are those before that step",
                        t,
                        value,
                    )
                break
            record = record_layers and t in eval_at
            before = net.params.copy() if record else None
            if record:
                stats = net.forward(x_train[batches.rows(t)], keep=False, pair=None)
            try:
                optimizer.step(net.params, net.grads, state, grads_nonfinite=step.nonfinite)
            except ValueError as error:
                overflowed = isinstance(error, optim.NonFiniteError) and error.where == "params"
                if not overflowed and np.all(np.isfinite(net.grads)):
                    raise
                diverged_at = t  # a finite loss whose gradient or step overflowed: a divergence all the same
                if on_divergence == "raise":
                    what = (
                        f"the step made {error.count} parameter(s) non-finite at step {t} of {steps} (loss "
                        f"{value:.6g}, lr {optimizer.lr:g}); the parameters hold that step"
                        if overflowed
                        else f"the gradient is not finite at step {t} of {steps} (loss {value:.6g}, lr "
                        f"{optimizer.lr:g}); the parameters are those before that step"
                    )
                    raise DivergenceError(what, t, value) from None
                break
            if record:
                records.append((t, stats, *_weight_norms(net, before)))
            if t in eval_at:
                take_eval(t)
            if bar is not None:
                bar.update(1)
                if t % 50 == 0 or t == steps:
                    bar.set_postfix(loss=f"{value:.4g}")
    return _history(
        net,
        steps if diverged_at is None else diverged_at - 1,
        train_loss,
        evals,
        records,
        diverged_at,
        time.perf_counter() - started,
    )


def _check_device_memory(net, optimizer, batch, eval_rows, examples):
    """Refuse (:class:`testbed.backend.MemoryLimitError`) a CUDA run that does not fit in the GPU's free memory.

    What :class:`testbed.train_cuda.DeviceRun` holds: both splits (``examples`` rows of inputs, int64 labels), the
    parameters, gradients and optimizer slots, a batch's input, s^(l), x^(l) and delta^(l) of every layer, an
    evaluation chunk's s^(l) and x^(l), and the loss rows; plus a record step's forward pass of the net (the input
    and four layer buffers).
    """
    widths = net.widths
    size = net.size * (2 + optimizer.n_slots) + examples * widths[0]
    rows = batch * (2 * widths[0] + 3 * sum(widths[1:]) + 4 * max(widths)) + eval_rows * (
        2 * sum(widths[1:]) + widths[-1]
    )
    backends.check_memory(
        net.dtype.itemsize * (size + rows) + 8 * (examples + 3 * (batch + eval_rows)),
        f"training a net of widths {short_widths(widths)} on batches of {batch} with {optimizer.name}",
        device=True,
    )


def _fit_cuda(
    net, optimizer, splits, steps, batch, loss, seed, eval_every, record_layers, progress, on_divergence, eval_chunk
):
    """:func:`fit` on the GPU, its arrays on the device (:class:`testbed.train_cuda.DeviceRun`): the same steps, the
    same decisions on divergence and the same History as the CPU loop."""
    from .train_cuda import DeviceRun

    x_train, y_train, x_test, y_test = splits
    run = DeviceRun(net, optimizer, *splits, batch, seed, _loss_code(loss), eval_chunk)
    batches = _Batches(x_train.shape[0], batch, seed)  # the host's copy of the rows, for a record step's forward
    train_loss = np.full(steps, math.nan)
    evals, records = [], []
    diverged_at = None
    eval_at = _eval_steps(steps, eval_every)

    def take_eval(t):
        evals.append((t, *run.evaluate("test"), *run.evaluate("train")))

    def overflow_error(t, count, value):
        return DivergenceError(
            f"the step made {count} parameter(s) non-finite at step {t} of {steps} (loss {value:.6g}, lr "
            f"{optimizer.lr:g}); the parameters hold that step",
            t,
            value,
        )

    started = time.perf_counter()
    if 0 in eval_at:
        take_eval(0)
    with _progress(steps, progress, "fit") as bar:
        for t in range(1, steps + 1):
            value, bad_grads, overflow = run.loss_and_grad(t)
            if overflow:  # the previous step's update overflowed: the CPU loop stops after it
                diverged_at = t - 1
                if on_divergence == "raise":
                    raise overflow_error(t - 1, overflow, train_loss[t - 2])
                break
            train_loss[t - 1] = value
            if not math.isfinite(value):
                diverged_at = t
                if on_divergence == "raise":
                    raise DivergenceError(
                        f"the training loss is {value} at step {t} of {steps} (lr "
                        f"{optimizer.lr:g}); the parameters are those before that step",
                        t,
                        value,
                    )
                break
            if bad_grads and optimizer.nonfinite == "raise":
                diverged_at = t
                if on_divergence == "raise":
                    raise DivergenceError(
                        f"the gradient is not finite at step {t} of {steps} (loss {value:.6g}, lr "
                        f"{optimizer.lr:g}); the parameters are those before that step",
                        t,
                        value,
                    )
                break
            record = record_layers and t in eval_at
            if record:
                run.params_to_host()
                before = net.params.copy()
                stats = net.forward(x_train[batches.rows(t)], keep=False, pair=None)
            if bad_grads:
                run.skip()
            else:
                run.apply()
            if t in eval_at or t == steps:  # read the step's overflow now, as the CPU loop would stop on it
                overflow = run.overflowed()
                if overflow:
                    diverged_at = t
                    if on_divergence == "raise":
                        raise overflow_error(t, overflow, value)
                    break
            if record:
                run.to_host()
                records.append((t, stats, *_weight_norms(net, before)))
            if t in eval_at:
                take_eval(t)
            if bar is not None:
                bar.update(1)
                if t % 50 == 0 or t == steps:
                    bar.set_postfix(loss=f"{value:.4g}")
    run.to_host()
    return _history(
        net,
        steps if diverged_at is None else diverged_at - 1,
        train_loss,
        evals,
        records,
        diverged_at,
        time.perf_counter() - started,
    )


def _weight_norms(net, before):
    """(||dL/dW^(l)||_F, ||W^(l)_after - W^(l)_before||_F / ||W^(l)_before||_F) per layer."""
    grad_norm = np.array([np.linalg.norm(net.weight_grads(l).astype(np.float64)) for l in range(1, net.depth + 1)])
    ratio = np.empty(net.depth)
    for l in range(1, net.depth + 1):
        old = net._weight_view(before, l).astype(np.float64)
        norm = np.linalg.norm(old)
        change = np.linalg.norm(net.weights(l).astype(np.float64) - old)
        ratio[l - 1] = change / norm if norm > 0.0 else (0.0 if change == 0.0 else math.inf)
    return grad_norm, ratio


def _history(net, steps_done, train_loss, evals, records, diverged_at, seconds):
    evals = np.array(evals, dtype=np.float64).reshape(-1, 5)
    depth = net.depth

    def per_layer(values):
        return np.array(values, dtype=np.float64).reshape(-1, depth)

    return History(
        steps=steps_done,
        train_loss=train_loss[: steps_done + (diverged_at is not None)],
        eval_steps=evals[:, 0].astype(np.int64),
        test_loss=evals[:, 1],
        test_accuracy=evals[:, 2],
        train_eval_loss=evals[:, 3],
        train_accuracy=evals[:, 4],
        record_steps=np.array([r[0] for r in records], dtype=np.int64),
        pre_mean=per_layer([r[1].pre_mean for r in records]),
        pre_var=per_layer([r[1].pre_var for r in records]),
        post_mean=per_layer([r[1].post_mean for r in records]),
        post_std=np.sqrt(per_layer([r[1].post_var for r in records])),
        saturated_frac=per_layer([r[1].saturated_frac for r in records]),
        dead_frac=per_layer([r[1].dead_frac for r in records]),
        grad_norm=per_layer([r[2] for r in records]),
        update_ratio=per_layer([r[3] for r in records]),
        diverged_at=diverged_at,
        seconds=seconds,
    )


# ----------------------------------------------------------------------------------------------------------------
# fit_many


def fit_many(
    nets: Sequence[MLP],
    dataset: datasets.Dataset,
    optimizer: optim.Optimizer,
    *,
    steps: int,
    batch: int = 128,
    lrs: Sequence[float] | None = None,
    seeds: Sequence[int] | None = None,
    loss: Literal["cross_entropy", "mse"] = "cross_entropy",
    eval_every: int | None = None,
    progress: bool = True,
) -> list[History]:
    """Train K nets of one shape at once, in place; return one :class:`History` per net (no per-layer records).

    ``nets``: K :class:`testbed.nn.MLP` of equal widths, activation, bias, output and dtype, initialised as the
    caller likes (different seeds or scales). ``lrs``: K base learning rates (default: the optimizer's, for all);
    the optimizer's rule, schedule and other hyperparameters are shared. ``seeds``: K minibatch seeds (default
    0..K-1), so net k sees exactly the batches of ``fit(nets[k], ..., seed=seeds[k])``. A net whose loss becomes
    non-finite stops there (its ``diverged_at``) while the others go on. CPU only.

    The K parameter vectors are the rows of one (K, P) array, and one compiled call per step runs every net's
    forward pass, loss, backward pass and optimizer step, each core taking whole nets (BLAS held to one thread
    meanwhile).

    Parameters
    ----------
    nets : sequence of testbed.nn.MLP
        K >= 1 nets of one shape on the CPU, trained in place.
    dataset : testbed.data.Dataset
        Training and test splits that fit the nets.
    optimizer : testbed.optim.Optimizer
        The rule, schedule and hyperparameters shared by every net.
    steps : int
        Number of minibatch steps (>= 1).
    batch : int
        Rows per step, at most the training split's size.
    lrs : sequence of float or None
        K base learning rates (> 0), one per net; None: the optimizer's for all.
    seeds : sequence of int or None
        K minibatch seeds; None: 0..K-1.
    loss : {"cross_entropy", "mse"}
        The loss, as in :func:`loss_and_grad`.
    eval_every : int or None
        As in :func:`fit`.
    progress : bool
        Show a progress bar (tqdm).

    Returns
    -------
    list of History
        One per net, in the order of ``nets``, without per-layer records.

    Raises
    ------
    ValueError
        No nets, nets of different shapes or not on the CPU, a bad optimizer, dataset, ``lrs`` or ``seeds`` of the
        wrong length or values, or any argument :func:`fit` refuses (the message names it).
    testbed.backend.MemoryLimitError
        When the K nets' parameters, optimizer state and buffers would not fit in the available memory (checked
        before allocating; a ValueError).

    References
    ----------
    Schoenholz et al. 2017, "Deep information propagation" (the trainability heat maps this serves).
    """
    nets = list(nets)
    if not nets:
        raise ValueError("nets must hold at least one testbed.nn.MLP")
    first = _check_net(nets[0], "nets[0]")
    for k, net in enumerate(nets):
        _check_net(net, f"nets[{k}]")
        if (net.widths, net.activation, net.bias, net.output_kind, net.dtype) != (
            first.widths,
            first.activation,
            first.bias,
            first.output_kind,
            first.dtype,
        ):
            raise ValueError(
                f"nets[{k}] differs from nets[0] in widths, activation, bias, output or dtype: "
                "fit_many trains nets of one shape"
            )
        if net.backend != "cpu":
            raise ValueError("fit_many runs on the CPU: build the nets with backend='cpu'")
    if not isinstance(optimizer, optim.Optimizer):
        raise ValueError(f"optimizer must be a testbed.optim optimizer, got {type(optimizer).__name__}")
    count = len(nets)
    code = _loss_code(loss)
    x_train, y_train, x_test, y_test = _check_dataset(dataset, first)
    steps, batch, _, eval_every = _check_common(steps, batch, 0, eval_every, "stop", x_train.shape[0])
    lrs = _per_net(
        lrs, count, "lrs", optimizer.lr, lambda v, name: validation.check_finite(v, name, minimum=0.0, strict=True)
    )
    seeds = _per_net(seeds, count, "seeds", None, lambda v, name: validation.check_seed(v))
    seeds = list(range(count)) if seeds is None else seeds
    dtype = first.dtype
    spec = optimizer.rule_spec()
    per_net = first.size * (2 + spec.n_slots) + 2 * _Layout(first, max(batch, EVAL_CHUNK)).sizes[1]
    backends.check_memory(
        count * per_net * dtype.itemsize,
        f"{count} nets of {first.size} parameters with {optimizer.name}'s state and their buffers",
    )
    params = np.stack([net.params for net in nets]).astype(dtype)
    grads = np.zeros_like(params)
    hyper = spec.hyper_as(dtype)
    slots = [
        np.full((count, params.shape[1] if i < spec.n_slots else 1), spec.initial_state[i], dtype=dtype)
        for i in range(3)
    ]
    layout = _Layout(first, batch)
    buffers = layout.buffers(dtype, copies=count)
    eval_chunk = min(EVAL_CHUNK, max(x_train.shape[0], x_test.shape[0]))
    eval_layout = _Layout(first, eval_chunk)
    eval_buffers = eval_layout.eval_buffers(dtype, copies=count)
    batches = [_Batches(x_train.shape[0], batch, seed) for seed in seeds]
    running = np.ones(count, dtype=np.uint8)
    losses_now = np.zeros(count)
    train_loss = np.full((count, steps), math.nan)
    diverged = [None] * count
    evals = [[] for _ in range(count)]
    eval_at = _eval_steps(steps, eval_every)
    rows = np.empty((count, batch), dtype=np.int64)
    coefficients = np.empty((count, 4), dtype=dtype)
    ensemble_optimizer = kernels.EnsembleOptimizer(spec.code, spec.n_slots, hyper, coefficients, *slots)
    net_args, eval_net_args = layout.net(), eval_layout.net()
    train_data = _data(x_train, y_train, code, dtype)

    def take_eval(t):
        results = []
        for x, y in ((x_test, y_test), (x_train, y_train)):
            loss_out, accuracy_out = np.zeros(count), np.zeros(count)
            kernels.ensemble_evaluate_cpu(
                params, eval_net_args, _data(x, y, code, dtype), eval_buffers, eval_chunk, loss_out, accuracy_out
            )
            results.append((loss_out, accuracy_out))
        for k in range(count):
            if running[k]:
                evals[k].append((t, results[0][0][k], results[0][1][k], results[1][0][k], results[1][1][k]))

    started = time.perf_counter()
    with blas_threads(1):
        if 0 in eval_at:
            take_eval(0)
        with _progress(steps, progress, f"fit_many ({count} nets)") as bar:
            for t in range(1, steps + 1):
                for k in range(count):
                    rows[k] = batches[k].rows(t)
                    coefficients[k] = optimizer_rules.prepare(spec.code, spec.hyper, t, optimizer.schedule(lrs[k], t))
                kernels.ensemble_step_cpu(
                    params, grads, net_args, train_data, rows, running, losses_now, buffers, ensemble_optimizer
                )
                for k in np.flatnonzero(running):
                    train_loss[k, t - 1] = losses_now[k]
                    if not math.isfinite(losses_now[k]):
                        running[k] = 0
                        diverged[k] = t
                if not running.any():
                    break
                if t in eval_at:
                    take_eval(t)
                if bar is not None:
                    bar.update(1)
    seconds = time.perf_counter() - started
    histories = []
    for k, net in enumerate(nets):
        net.params[...] = params[k]
        net.grads[...] = grads[k]
        done = steps if diverged[k] is None else diverged[k] - 1
        histories.append(_history(net, done, train_loss[k], evals[k], [], diverged[k], seconds))
    return histories


def _per_net(values, count, name, default, check):
    if values is None:
        return None if default is None else [default] * count
    values = list(values)
    if len(values) != count:
        raise ValueError(f"{name} must give one value per net ({count}), got {len(values)}")
    return [check(v, f"{name}[{k}]") for k, v in enumerate(values)]
