"""Curvature of an MLP's loss: exact Hessian-vector products, extreme eigenvalues, trace, spectral density, slices.

For the mean loss L(theta) = (1/N) sum_i loss(f_theta(x_i), y_i) of a :class:`testbed.nn.MLP` over the rows
``x, y`` (a minibatch or a whole training split, taken ``chunk`` rows at a time):

- :func:`hvp`: H v = d/dr grad L(theta + r v) at r = 0, exactly, by Pearlmutter (1994)'s R-operator through the
  forward and backward passes (one compiled call, :func:`testbed.kernels.curvature.curvature_product_cpu`; no
  finite differences), or the Gauss-Newton product G v = J^T H_z J v (Schraudolph 2002), which drops the net's
  own second derivatives and is positive semi-definite. :class:`HessianOperator` keeps the forward pass (it does
  not depend on v) for the repeated products of the solvers below. A large Hessian product cuts each matrix
  product of a dtype in :data:`PARTS_DTYPES` into :data:`PRODUCT_PARTS` parts on the caller's threads, one BLAS
  thread each (:func:`testbed.kernels.curvature.curvature_part_cpu`), as the training step does.
- :func:`top_eigenvalues`, :func:`bottom_eigenvalues`: Lanczos (1950) with full reorthogonalisation; Ritz values
  with their residual norms ||H y - theta y|| = |beta_m u_m| (Parlett 1998).
- :func:`trace`: Hutchinson (1989), tr H = E[z^T H z] over Rademacher probes z, with its standard error; the
  per-layer block traces come from the same probes (E[z_b^T (H z)_b] = tr H_bb since E[z z^T] = I).
- :func:`spectral_density`: stochastic Lanczos quadrature (Golub & Meurant; Ghorbani, Krishnan & Xiao 2019;
  PyHessian, Yao et al. 2020): m Lanczos steps from a Gaussian probe give T = U diag(tau) U^T, and the density is
  the average over probes of sum_j U[0, j]^2 g_sigma(t - tau_j).
- :func:`slice_1d` (Goodfellow, Vinyals & Saxe 2015: L((1 - a) theta_0 + a theta_1)) and :func:`slice_2d` (Li et
  al. 2018: L(theta + a d_1 + b d_2) with per-neuron normalised random directions), every grid point's net
  evaluated in one parallel call; :func:`pca_directions` for an optimiser's path.

Random probes are Philox draws (:mod:`testbed.rng`) keyed by (seed, stream, probe), so every estimate is
reproducible. A net on the CUDA backend runs the same passes on the GPU (:mod:`testbed.curvature_cuda`); the
Lanczos, Hutchinson and SLQ iterations around the products stay on the host.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
from scipy.linalg import eigh_tridiagonal

from . import rng, train, validation
from .kernels import curvature as kernels
from .kernels import train as train_kernels
from .kernels.threads import run_items

if TYPE_CHECKING:  # annotations only (train imports the net at run time)
    from .nn import MLP

Loss = Literal["cross_entropy", "mse"]
Kind = Literal["hessian", "gauss_newton"]

#: Product kinds.
KINDS = ("hessian", "gauss_newton")
#: Rows per pass over x, y (bounds the work buffers, not the result).
CHUNK = train.EVAL_CHUNK
#: Keep the forward pass of all rows between products when its arrays take at most this many bytes.
CACHE_BYTES = 512 * 2**20
#: Philox streams of the random probes (each probe is one step of its stream).
STREAM_LANCZOS = 41
STREAM_HUTCHINSON = 42
STREAM_SLQ = 43
STREAM_SLICE = 44
#: A Hessian product whose products are large (:func:`testbed.train.step_blas_threads` leaves BLAS its threads)
#: cuts each of them into this many parts on Python threads over a nogil kernel, one BLAS thread each
#: (:func:`testbed.kernels.curvature.curvature_part_cpu`, :func:`testbed.kernels.threads.run_items`), as the training
#: step does
#: (:data:`testbed.train.STEP_PARTS`); 1: one pass, BLAS's own threads.
PRODUCT_PARTS = train.STEP_PARTS
#: The dtypes whose Hessian products run in parts. float32's one pass is the faster (quiet, 2 threads, the
#: benchmark's ~1M-parameter net, tenth session: hvp / loss_and_grad 2.15 in one pass against 2.41 in parts, and
#: 2.23 against 2.78 in another run); float64's parts are (2.67 against 2.90, and 2.66 against 2.81).
PARTS_DTYPES = (np.dtype(np.float64),)
#: Lanczos reorthogonalises a second time when the first pass leaves less than this fraction of the norm.
REORTH_DROP = 0.7
#: Lanczos stops when every wanted Ritz value has residual below TOLERANCE * the largest |Ritz value|.
TOLERANCE = 1e-6


# ----------------------------------------------------------------------------------------------------------------
# the products


def _check_kind(kind):
    if not isinstance(kind, str) or kind not in KINDS:
        raise validation.unknown_name_error("kind", kind, KINDS)
    return kind


class HessianOperator:
    """v -> H v (or G v) of ``net``'s mean loss over ``x, y`` at the parameters the net has NOW (copied).

    ``kind``: ``"hessian"`` or ``"gauss_newton"``; ``loss`` as :func:`testbed.train.loss_and_grad`. With
    ``cache`` (default), the forward pass of all rows is kept after the first product when it fits in
    :data:`CACHE_BYTES`; later products run the tangent and R-backward passes only. :attr:`loss` is L(theta),
    :attr:`products` the number of products taken, :attr:`size` the dimension P, :attr:`parts` the parts each
    matrix product is cut into (:data:`PRODUCT_PARTS` for a large Hessian product of a dtype in
    :data:`PARTS_DTYPES`, else 1).

    Parameters
    ----------
    net : testbed.nn.MLP
        A net on the CPU or CUDA backend; its parameters are copied now.
    x : ndarray, shape (N, d^(0))
        Finite inputs.
    y : ndarray of int, shape (N,)
        Class labels in 0..K-1.
    loss : {"cross_entropy", "mse"}
        The loss, as in :func:`testbed.train.loss_and_grad`.
    kind : {"hessian", "gauss_newton"}
        The exact Hessian H or the Gauss-Newton matrix G = J^T H_z J.
    chunk : int
        Rows per pass (bounds the work buffers; the result does not depend on it).
    cache : bool
        Keep the forward pass between products when it fits in :data:`CACHE_BYTES`.

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it).

    References
    ----------
    B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6 (1994); N. N. Schraudolph,
    "Fast curvature matrix-vector products for second-order gradient descent", Neural Computation 14 (2002).
    """

    def __init__(
        self,
        net: MLP,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        loss: Loss = "cross_entropy",
        kind: Kind = "hessian",
        chunk: int = CHUNK,
        cache: bool = True,
    ) -> None:
        self._setup(net, x, y, loss, kind, chunk, cache, borrow=False)

    def _setup(self, net, x, y, loss, kind, chunk, cache, borrow):
        """The constructor's work; ``borrow`` (for the one product of :func:`hvp`): read the net's parameters in
        place instead of copying them, and take the work buffers kept on the net between calls."""
        net = train._check_net(net)
        self.loss_code = train._loss_code(loss)
        self.loss_name = loss
        self.kind = _check_kind(kind)
        self.x = net._check_batch(x, net.widths[0], "x")
        self.y = train._check_labels(y, self.x.shape[0], net.widths[-1])
        n = self.x.shape[0]
        self.chunk = min(validation.check_positive_int(chunk, "chunk"), n)
        self.net = net
        self.params = net.params if borrow else net.params.copy()
        self.dtype = net.dtype
        self.size = net.size
        self.layout = train._Layout(net, self.chunk)
        self._net = self.layout.net()
        self._data = train._data(self.x, self.y, self.loss_code, self.dtype)
        self.parts = _product_parts(net.widths, self.chunk, self.kind) if self.dtype in PARTS_DTYPES else 1
        self._blas_threads = train.step_blas_threads(net.widths, self.chunk) if self.parts == 1 else 1
        hidden = sum(net.widths[1:])
        keep_g = self.kind == "hessian"
        itemsize = np.dtype(self.dtype).itemsize
        self.cached = bool(cache) and n * (4 + keep_g) * hidden * itemsize <= CACHE_BYTES
        self._prepared = False
        self.loss = math.nan
        self.products = 0
        self._gpu = None
        if net.backend == "cuda":  # the same passes as GPU launches; no host buffers
            from .curvature_cuda import CudaCurvature

            self._gpu = CudaCurvature(
                self.params,
                self.x,
                self.y,
                self.layout,
                self.loss_code,
                self.kind == "gauss_newton",
                self.chunk,
                self.cached,
                train._no_targets(self.dtype),
            )
            return
        sizes = _buffer_sizes(net.widths, n, self.chunk, self.cached, keep_g, self.parts)
        if borrow:
            self._buffers = _borrowed_buffers(net, sizes, self.parts)
        else:
            arrays = [np.empty(size, dtype=dtype) for size, dtype in _buffer_dtypes(sizes, self.dtype)]
            self._buffers = _kernel_buffers(arrays, self.parts)

    def matvec(self, v: npt.ArrayLike, out: np.ndarray | None = None) -> np.ndarray:
        """H v (or G v) as an array of the net's dtype (into ``out`` when given)."""
        v = np.asarray(v)
        if v.shape != (self.size,):
            raise ValueError(f"v must be a vector of the net's {self.size} parameters, got shape {v.shape}")
        v = np.ascontiguousarray(v, dtype=self.dtype)
        if not np.all(np.isfinite(v)):
            raise ValueError("v must be finite")
        out = np.empty(self.size, dtype=self.dtype) if out is None else out
        if self._gpu is not None:
            out[...], value = self._gpu.matvec(v)
            if not self._prepared:
                self.loss = value
            self._prepared = self.cached
            self.products += 1
            return out
        with train.blas_threads(self._blas_threads):
            if self.parts > 1:
                value = self._product_in_parts(v, out)
            else:
                value = kernels.curvature_product_cpu(
                    self.params,
                    v,
                    out,
                    self._net,
                    self._data,
                    self.kind == "gauss_newton",
                    self.chunk,
                    self.cached,
                    self._prepared,
                    self._buffers,
                )
        if not self._prepared:
            self.loss = float(value)
        self._prepared = self.cached
        self.products += 1
        return out

    __call__ = matvec

    def _product_in_parts(self, v, out):
        """H v into ``out`` by :func:`testbed.kernels.curvature.curvature_part_cpu`: chunk by chunk, the rows pass
        then the units pass, each pass's parts on Numba's thread count of Python threads (the kernel releases the
        GIL); returns the loss (NaN when the forward pass was kept)."""
        n = self.x.shape[0]
        fixed = (self.params, v, out, self._net, self._data)
        loss = 0.0
        for start in range(0, n, self.chunk):
            stop = min(start + self.chunk, n)
            shares = [0.0] * self.parts
            for phase in (0, 1):

                def work(first, last, start=start, stop=stop, phase=phase):
                    for part in range(first, last):
                        shares[part] = kernels.curvature_part_cpu(
                            *fixed, start, stop, self.cached, self._prepared, self._buffers, phase, part
                        )

                run_items(work, self.parts)
            loss += shares[0]
        return math.nan if self._prepared else loss


def _product_parts(widths, chunk, kind):
    """How many parts each product of a Hessian product is cut into (:data:`PRODUCT_PARTS` when its products are
    large enough for BLAS's own threads and the chunk has a row per part; the Gauss-Newton product runs in one pass)."""
    if kind != "hessian" or chunk < PRODUCT_PARTS or train.step_blas_threads(widths, chunk) == 1:
        return 1
    return PRODUCT_PARTS


def _buffer_sizes(widths, rows, chunk, cached, keep_g, parts=1):
    """Sizes of the work buffers of :func:`testbed.kernels.curvature.curvature_product_cpu`, in the order of a
    :class:`testbed.kernels.curvature.ProductBuffers`: [s; R{s}] and [x; R{x}] per layer, g per layer (kept only
    with ``cached``, for the Hessian), the two [R{g}; g] blocks, the scratch rows, the weight-sized block that adds
    a later chunk's weight products (only with several chunks) and the rows' losses (float64, see
    :func:`_buffer_dtypes`). With ``parts`` > 1, those of :func:`testbed.kernels.curvature.curvature_part_cpu`
    (a :class:`testbed.kernels.curvature.ProductPartsBuffers`): [s; R{s}], [x; R{x}], g, [R{delta}; delta] per
    layer, the parts' scratch rows, copied columns and weight rows (P times each), and the rows' losses."""
    hidden, widest = sum(widths[1:]), max(widths[1:])
    kept = rows if cached else chunk
    layers = list(zip(widths[:-1], widths[1:]))
    weight_block = max(fan_in * fan_out for fan_in, fan_out in layers) if rows > chunk else 1
    if parts > 1:
        part_weights = max(fan_in * -(-fan_out // parts) for fan_in, fan_out in layers) if rows > chunk else 1
        return (
            2 * kept * hidden,
            2 * kept * hidden,
            kept * hidden if (cached and keep_g) else 1,
            2 * chunk * hidden,
            parts * (-(-chunk // parts)) * widest,
            parts * 2 * chunk * (-(-widest // parts)),
            parts * part_weights,
            chunk,
        )
    return (
        2 * kept * hidden,
        2 * kept * hidden,
        kept * hidden if (cached and keep_g) else 1,
        2 * chunk * widest,
        2 * chunk * widest,
        chunk * widest,
        weight_block,
        chunk,
    )


def _buffer_dtypes(sizes, dtype):
    """(size, dtype) of each buffer: the net's dtype, but float64 for the rows' losses (the 8th buffer of either
    kernel), which the kernels sum in float64."""
    return [(size, np.float64 if i == 7 else dtype) for i, size in enumerate(sizes)]


def _kernel_buffers(arrays, parts):
    """The work buffers (flat, sized by :func:`_buffer_sizes`) as the kernel takes them: a
    :class:`testbed.kernels.curvature.ProductBuffers`, or with ``parts`` > 1 a
    :class:`testbed.kernels.curvature.ProductPartsBuffers` whose per-part buffers are (P, size / P)."""
    if parts == 1:
        return kernels.ProductBuffers(*arrays)
    pre, post, gpost, deltas, scratch, columns, wtmp, row_loss = arrays
    scratch, columns, wtmp = (a.reshape(parts, -1) for a in (scratch, columns, wtmp))
    return kernels.ProductPartsBuffers(pre, post, gpost, deltas, scratch, columns, wtmp, row_loss)


def _borrowed_buffers(net, sizes, parts):
    """:func:`_kernel_buffers` kept on ``net`` between calls of :func:`hvp`, one set per thread and kernel (the
    parts kernel when ``parts`` > 1, else the one-pass), grown when too small: fresh buffers cost their page faults
    at every call. Measured on the 1M-parameter net of bench_curvature.py, one BLAS thread: fresh buffers and a copy
    of the parameters took the CPU time of a product from 36 to 43 ms (float32) and from 68 to 76 ms (float64). The
    kernel's tuple is kept too, for the next call with the same sizes (a small net's hvp: 8 views and a tuple fewer,
    ~2 us of ~80)."""
    import threading

    work = net.__dict__.setdefault("_curvature_work", {})
    key = (threading.get_ident(), parts > 1)
    arrays, shape, buffers = work.get(key, (None, None, None))
    if shape == (sizes, parts):
        return buffers
    wanted = _buffer_dtypes(sizes, net.dtype)
    if arrays is None or any(b.dtype != t or b.size < n for b, (n, t) in zip(arrays, wanted)):
        arrays = tuple(np.empty(n, dtype=t) for n, t in wanted)
    buffers = _kernel_buffers([b[:n] for b, n in zip(arrays, sizes)], parts)
    work[key] = (arrays, (sizes, parts), buffers)
    return buffers


def hvp(
    net: MLP,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    v: npt.ArrayLike,
    *,
    loss: Loss = "cross_entropy",
    kind: Kind = "hessian",
    chunk: int = CHUNK,
) -> np.ndarray:
    """H v: the exact Hessian of ``net``'s mean ``loss`` over ``x, y`` times ``v`` (or G v, ``kind="gauss_newton"``).

    One compiled call: forward, loss, gradient backward, tangent forward, R-backward (Pearlmutter 1994; see
    :mod:`testbed.kernels.curvature`); on the GPU for a net on the CUDA backend. Returns an array of the net's
    dtype and size. Each call runs the forward pass again (nothing is kept between calls but work buffers, held
    on the net); for several products at one point, :class:`HessianOperator` keeps the forward pass.

    H v = d/dr grad L(theta + r v) at r = 0, with L the mean loss over the N rows, exactly (no finite differences).

    Parameters
    ----------
    net : testbed.nn.MLP
        A net on the CPU or CUDA backend; the products are taken at the parameters it has now.
    x : ndarray, shape (N, d^(0))
        Finite inputs: a minibatch or a whole split.
    y : ndarray of int, shape (N,)
        Class labels in 0..K-1.
    v : ndarray, shape (P,)
        A finite vector of the net's P parameters (cast to the net's dtype).
    loss : {"cross_entropy", "mse"}
        The loss, as in :func:`testbed.train.loss_and_grad`.
    kind : {"hessian", "gauss_newton"}
        The exact Hessian H or the Gauss-Newton matrix G = J^T H_z J.
    chunk : int
        Rows per pass over ``x, y`` (bounds the work buffers; the result does not depend on it).

    Returns
    -------
    ndarray, shape (P,)
        H v (or G v) in the net's dtype.

    Raises
    ------
    ValueError
        A bad argument (the message names it): ``net`` not an MLP, ``x`` or ``y`` of the wrong shape,
        type or range, an unknown ``loss`` or ``kind``, a ``chunk`` that is not a positive integer,
        or a ``v`` of the wrong shape or not finite.

    References
    ----------
    Pearlmutter 1994, "Fast exact multiplication by the Hessian"; Schraudolph 2002, "Fast curvature matrix-vector
    products for second-order gradient descent" (G).
    """
    op = HessianOperator.__new__(HessianOperator)
    op._setup(net, x, y, loss, kind, chunk, False, borrow=True)
    return op.matvec(v)


def gauss_newton_product(
    net: MLP, x: npt.ArrayLike, y: npt.ArrayLike, v: npt.ArrayLike, *, loss: Loss = "cross_entropy", chunk: int = CHUNK
) -> np.ndarray:
    """G v = J^T H_z J v, the Gauss-Newton product (:func:`hvp` with ``kind="gauss_newton"``).

    Parameters
    ----------
    net, x, y, v, loss, chunk
        As in :func:`hvp`.

    Returns
    -------
    ndarray, shape (P,)
        G v in the net's dtype.

    Raises
    ------
    ValueError
        As :func:`hvp`.

    References
    ----------
    N. N. Schraudolph, "Fast curvature matrix-vector products for second-order gradient descent", Neural
    Computation 14 (2002).
    """
    return hvp(net, x, y, v, loss=loss, kind="gauss_newton", chunk=chunk)


def dense_hessian(
    net: MLP | HessianOperator,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    loss: Loss = "cross_entropy",
    kind: Kind = "hessian",
    chunk: int = CHUNK,
) -> np.ndarray:
    """The (P, P) matrix H (or G) in float64, one exact product per column in one compiled call (for small nets),
    symmetrised (the products are exact; the rounding of the two halves differs).

    Parameters
    ----------
    net : testbed.nn.MLP or HessianOperator
        A net on the CPU or CUDA backend (the products are taken at the parameters it has now), or an operator
        built before (then ``x, y, loss, kind`` and ``chunk`` are its own and these arguments are ignored).
    x : ndarray, shape (N, d^(0))
        Finite inputs: a minibatch or a whole split.
    y : ndarray of int, shape (N,)
        Class labels in 0..K-1.
    loss : {"cross_entropy", "mse"}
        The loss, as in :func:`testbed.train.loss_and_grad`.
    kind : {"hessian", "gauss_newton"}
        The exact Hessian H or the Gauss-Newton matrix G = J^T H_z J.
    chunk : int
        Rows per pass over ``x, y`` (bounds the work buffers; the result does not depend on it).

    Returns
    -------
    ndarray, shape (P, P)
        (M + M^T) / 2 of the matrix M whose column j is H e_j (or G e_j), in float64.

    Raises
    ------
    ValueError
        A bad argument (the message names it): ``net`` not an MLP, ``x`` or ``y`` of the wrong shape,
        type or range, an unknown ``loss`` or ``kind``, a ``chunk`` that is not a positive integer.

    References
    ----------
    Pearlmutter 1994, "Fast exact multiplication by the Hessian".
    """
    op = _operator(net, x, y, loss, kind, chunk)
    matrix = np.empty((op.size, op.size), dtype=op.dtype)
    if op._gpu is not None or op.parts > 1:  # one product per column, the forward pass kept between them
        unit = np.zeros(op.size, dtype=op.dtype)
        for j in range(op.size):
            unit[j] = 1.0
            op.matvec(unit, out=matrix[j])
            unit[j] = 0.0
    else:
        op.loss = float(
            kernels.dense_cpu(
                op.params, matrix, op._net, op._data, op.kind == "gauss_newton", op.chunk, op.cached, op._buffers
            )
        )
        op.products += op.size
    matrix = matrix.astype(np.float64)
    return 0.5 * (matrix + matrix.T)


def _operator(net, x, y, loss, kind, chunk):
    if isinstance(net, HessianOperator):
        return net
    return HessianOperator(net, x, y, loss=loss, kind=kind, chunk=chunk)


# ----------------------------------------------------------------------------------------------------------------
# Lanczos


@dataclasses.dataclass
class Lanczos:
    """m Lanczos steps: T's diagonal ``alpha`` (m,), off-diagonal ``beta`` (m - 1,), the basis ``basis`` (m, P),
    ``beta_last`` (the norm of the residual after step m; 0 when the Krylov space is invariant)."""

    alpha: np.ndarray
    beta: np.ndarray
    basis: np.ndarray
    beta_last: float

    def ritz(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(values ascending, T's eigenvectors U (m, m), residual norms |beta_last U[m-1, j]|)."""
        values, u = eigh_tridiagonal(self.alpha, self.beta)
        return values, u, np.abs(self.beta_last * u[-1])


def lanczos(
    matvec: Callable[[np.ndarray], npt.ArrayLike],
    start: npt.ArrayLike,
    iterations: int,
    *,
    stop: Callable[[Lanczos], bool] | None = None,
) -> Lanczos:
    """Lanczos with full reorthogonalisation from the vector ``start`` (float64 basis).

    Each step: w = H q_j - alpha_j q_j - beta_{j-1} q_{j-1} (the three-term recurrence), then one classical
    Gram-Schmidt pass against every basis vector, and a second only when the first removed more than
    REORTH_DROP of w's norm (Daniel, Gragg, Kaufman & Stewart 1976: "twice is enough"). ``matvec`` maps a float64
    vector to H times it; ``stop(state)`` (optional) is asked after each step and ends the run when true. Ends
    early on an invariant subspace (beta below 1e-10 of the largest alpha, beta seen).

    Parameters
    ----------
    matvec : callable
        ``matvec(q) -> H q`` for a float64 vector q (H symmetric).
    start : array_like, shape (P,)
        The start vector (non-zero; normalised here).
    iterations : int
        The most steps (capped at P).
    stop : callable or None
        ``stop(state) -> bool`` on the :class:`Lanczos` state after each step.

    Returns
    -------
    Lanczos
        T's diagonal and off-diagonal, the basis and the last residual norm.

    References
    ----------
    C. Lanczos, "An iteration method for the solution of the eigenvalue problem of linear differential and integral
    operators", J. Res. Nat. Bur. Standards 45 (1950); J. W. Daniel, W. B. Gragg, L. Kaufman, G. W. Stewart,
    "Reorthogonalization and stable algorithms for updating the Gram-Schmidt QR factorization", Math. Comp. 30
    (1976).
    """
    start = np.asarray(start, dtype=np.float64)
    iterations = min(iterations, start.size)
    basis = np.empty((iterations, start.size))  # row j is q_j; each is written once, in place
    np.divide(start, np.linalg.norm(start), out=basis[0])
    alpha, beta = [], []
    scale = 0.0
    w, work = np.empty(start.size), np.empty(start.size)  # made once: the steps below work in place
    # a float64 HessianOperator writes its product straight into w (no fresh 8 MB vector, no copy per step)
    owner = getattr(matvec, "__self__", None)
    into = (
        isinstance(owner, HessianOperator)
        and getattr(matvec, "__func__", None) is HessianOperator.matvec
        and owner.dtype == np.float64
        and owner._gpu is None
    )
    for j in range(iterations):
        if into:
            owner.matvec(basis[j], out=w)
        else:
            np.copyto(w, matvec(basis[j]))
        # on one BLAS thread: a pool woken here would spin through the next product's parts, which run on their
        # own threads (measured, 2 threads, load 2-3: 20 float32 steps 972 ms against PyTorch's 624)
        with train.blas_threads(1):
            a, b = kernels.lanczos_orthogonalize(basis, j, w, beta[-1] if j > 0 else 0.0, REORTH_DROP, work)
        a, b = float(a), float(b)
        alpha.append(a)
        scale = max(scale, abs(a), b)
        state = Lanczos(np.array(alpha), np.array(beta), basis[: j + 1], b)
        if b <= 1e-10 * scale or j + 1 == iterations or (stop is not None and stop(state)):
            return state
        beta.append(b)
        np.divide(w, b, out=basis[j + 1])
    return state


@dataclasses.dataclass
class Eigenpairs:
    """Extreme eigenvalues: ``values`` (from the extreme inwards: descending for the top, ascending for the
    bottom), ``vectors`` (k, P) unit vectors, ``residuals`` ||H y - theta y||, ``iterations`` (Lanczos steps =
    products), ``loss`` at the point."""

    values: np.ndarray
    vectors: np.ndarray
    residuals: np.ndarray
    iterations: int
    loss: float


def _start_vector(size, seed, stream, step=0):
    """A Rademacher vector (+-1) from Philox uniforms."""
    return np.where(rng.uniform(size, seed=seed, stream=stream, step=step) > 0.5, 1.0, -1.0)


def _extreme(net, x, y, k, loss, kind, seed, iterations, tol, chunk, top):
    op = _operator(net, x, y, loss, kind, chunk)
    k = validation.check_positive_int(k, "k")
    if k > op.size:
        raise ValueError(f"k must be at most the net's {op.size} parameters, got {k}")
    iterations = max(2 * k + 20, 60) if iterations is None else validation.check_positive_int(iterations, "iterations")
    if iterations < k:
        raise ValueError(f"iterations must be at least k = {k}, got {iterations}")
    seed = validation.check_seed(seed)
    tol = validation.check_finite(tol, "tol", minimum=0.0)

    def wanted(state):
        values, u, residuals = state.ritz()
        order = np.argsort(-values if top else values)[:k]
        return values, u, residuals, order

    def converged(state):
        if state.alpha.size < k:
            return False
        values, _, residuals, order = wanted(state)
        return bool(np.all(residuals[order] <= tol * np.max(np.abs(values))))

    state = lanczos(op.matvec, _start_vector(op.size, seed, STREAM_LANCZOS), iterations, stop=converged)
    values, u, residuals, order = wanted(state)
    order = order[: min(k, values.size)]
    vectors = (state.basis.T @ u[:, order]).T
    return Eigenpairs(values[order], vectors, residuals[order], int(state.alpha.size), op.loss)


def top_eigenvalues(
    net: MLP | HessianOperator,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    k: int = 1,
    *,
    loss: Loss = "cross_entropy",
    kind: Kind = "hessian",
    seed: int = 0,
    iterations: int | None = None,
    tol: float = TOLERANCE,
    chunk: int = CHUNK,
) -> Eigenpairs:
    """The k largest eigenvalues (descending) and eigenvectors of H (or G) at ``net``'s parameters, by Lanczos.

    ``net`` may be a :class:`HessianOperator` (then ``x, y, loss, kind`` are its own). Stops when every wanted
    residual is below ``tol`` times the largest |Ritz value|, or after ``iterations`` steps (default
    max(2k + 20, 60)).

    Lanczos with full reorthogonalisation from a Rademacher start vector (Philox, keyed by ``seed``); each step is
    one product H q. A Ritz pair (theta, y) has residual ||H y - theta y|| = |beta_m u_m|.

    Parameters
    ----------
    net : testbed.nn.MLP or HessianOperator
        A net on the CPU or CUDA backend (the products are taken at the parameters it has now), or an operator
        built before (then ``x, y, loss, kind`` and ``chunk`` are its own and these arguments are ignored).
    x : ndarray, shape (N, d^(0))
        Finite inputs: a minibatch or a whole split.
    y : ndarray of int, shape (N,)
        Class labels in 0..K-1.
    k : int
        How many eigenvalues, 1 <= k <= P.
    loss : {"cross_entropy", "mse"}
        The loss, as in :func:`testbed.train.loss_and_grad`.
    kind : {"hessian", "gauss_newton"}
        The exact Hessian H or the Gauss-Newton matrix G = J^T H_z J.
    seed : int
        Key of the start vector.
    iterations : int, optional
        The most Lanczos steps (at least ``k``); default max(2k + 20, 60).
    tol : float
        Relative residual (>= 0) at which the wanted Ritz values count as converged.
    chunk : int
        Rows per pass over ``x, y`` (bounds the work buffers; the result does not depend on it).

    Returns
    -------
    Eigenpairs
        ``values`` (descending), ``vectors`` (k, P), ``residuals``, ``iterations`` (products taken) and the loss at
        the point.

    Raises
    ------
    ValueError
        A bad argument (the message names it): ``net`` not an MLP, ``x`` or ``y`` of the wrong shape,
        type or range, an unknown ``loss`` or ``kind``, a ``chunk`` that is not a positive integer,
        or ``k``, ``iterations``, ``seed`` or ``tol`` out of range.

    References
    ----------
    Lanczos 1950, "An iteration method for the solution of the eigenvalue problem of linear differential and
    integral operators"; Parlett 1998, "The symmetric eigenvalue problem" (residual bounds).
    """
    return _extreme(net, x, y, k, loss, kind, seed, iterations, tol, chunk, top=True)


def bottom_eigenvalues(
    net: MLP | HessianOperator,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    k: int = 1,
    *,
    loss: Loss = "cross_entropy",
    kind: Kind = "hessian",
    seed: int = 0,
    iterations: int | None = None,
    tol: float = TOLERANCE,
    chunk: int = CHUNK,
) -> Eigenpairs:
    """The k smallest (most negative first) eigenvalues and eigenvectors of H (or G), as :func:`top_eigenvalues`.

    Parameters
    ----------
    net, x, y, k, loss, kind, seed, iterations, tol, chunk
        As in :func:`top_eigenvalues`.

    Returns
    -------
    Eigenpairs
        ``values`` ascending (the most negative first), ``vectors`` (k, P), ``residuals``, ``iterations`` and the
        loss at the point.

    Raises
    ------
    ValueError
        As :func:`top_eigenvalues`.

    References
    ----------
    Lanczos 1950; Dauphin et al. 2014, "Identifying and attacking the saddle point problem in high-dimensional
    non-convex optimization" (negative curvature at saddles).
    """
    return _extreme(net, x, y, k, loss, kind, seed, iterations, tol, chunk, top=False)


# ----------------------------------------------------------------------------------------------------------------
# trace and density


@dataclasses.dataclass
class TraceEstimate:
    """Hutchinson's estimate ``value`` +- ``stderr`` from ``probes`` Rademacher probes (``samples`` z^T H z);
    ``blocks`` (L,) and ``block_stderr`` the traces of the per-layer diagonal blocks (weights and biases of
    layer l), from the same probes."""

    value: float
    stderr: float
    probes: int
    samples: np.ndarray
    blocks: np.ndarray
    block_stderr: np.ndarray
    loss: float


def _layer_slices(net):
    slices = []
    for l in range(1, net.depth + 1):
        weight_at, bias_at = net._offsets[l - 1]
        stop = bias_at + (net.widths[l] if net.bias else 0)
        slices.append(slice(weight_at, stop))
    return slices


def trace(
    net: MLP | HessianOperator,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    probes: int = 100,
    loss: Loss = "cross_entropy",
    kind: Kind = "hessian",
    seed: int = 0,
    chunk: int = CHUNK,
) -> TraceEstimate:
    """tr H (or tr G) by Hutchinson's estimator: the mean of z^T H z over ``probes`` Rademacher vectors z.

    The standard error is the samples' standard deviation / sqrt(probes). Per-layer block traces use the same
    products: (1/n) sum z_b^T (H z)_b.

    tr H = E[z^T H z] for any z with E[z z^T] = I; among probes of i.i.d. entries, Rademacher ones (entries +-1,
    here Philox draws keyed by ``seed``) give the least variance (Hutchinson 1989).

    Parameters
    ----------
    net : testbed.nn.MLP or HessianOperator
        A net on the CPU or CUDA backend (the products are taken at the parameters it has now), or an operator
        built before (then ``x, y, loss, kind`` and ``chunk`` are its own and these arguments are ignored).
    x : ndarray, shape (N, d^(0))
        Finite inputs: a minibatch or a whole split.
    y : ndarray of int, shape (N,)
        Class labels in 0..K-1.
    probes : int
        Number of Rademacher probes (products), >= 1; with one probe the standard error is infinite.
    loss : {"cross_entropy", "mse"}
        The loss, as in :func:`testbed.train.loss_and_grad`.
    kind : {"hessian", "gauss_newton"}
        The exact Hessian H or the Gauss-Newton matrix G = J^T H_z J.
    seed : int
        Key of the probes.
    chunk : int
        Rows per pass over ``x, y`` (bounds the work buffers; the result does not depend on it).

    Returns
    -------
    TraceEstimate
        The estimate and its standard error, the samples, the per-layer block traces with their standard errors,
        and the loss at the point.

    Raises
    ------
    ValueError
        A bad argument (the message names it): ``net`` not an MLP, ``x`` or ``y`` of the wrong shape,
        type or range, an unknown ``loss`` or ``kind``, a ``chunk`` that is not a positive integer,
        or ``probes`` or ``seed`` out of range.

    References
    ----------
    Hutchinson 1989, "A stochastic estimator of the trace of the influence matrix for Laplacian smoothing
    splines".
    """
    op = _operator(net, x, y, loss, kind, chunk)
    probes = validation.check_positive_int(probes, "probes")
    seed = validation.check_seed(seed)
    slices = _layer_slices(op.net)
    samples = np.empty(probes)
    block_samples = np.empty((probes, len(slices)))
    for p in range(probes):
        z = _start_vector(op.size, seed, STREAM_HUTCHINSON, p)
        hz = op.matvec(z).astype(np.float64)
        product = z * hz
        samples[p] = product.sum()
        block_samples[p] = [product[s].sum() for s in slices]
    stderr = lambda a: np.std(a, axis=0, ddof=1) / math.sqrt(probes) if probes > 1 else np.full(a.shape[1:], np.inf)  # noqa: E731,E501
    return TraceEstimate(
        float(samples.mean()),
        float(stderr(samples)),
        probes,
        samples,
        block_samples.mean(axis=0),
        np.atleast_1d(stderr(block_samples)),
        op.loss,
    )


@dataclasses.dataclass
class SpectralDensity:
    """SLQ: ``density`` on ``grid`` (integrating to 1), from ``nodes`` (probes, m) and ``weights`` (probes, m)
    (the Ritz values and the squared first components of T's eigenvectors), with Gaussian width ``sigma``."""

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    sigma: float
    iterations: int
    probes: int
    loss: float


def spectral_density(
    net: MLP | HessianOperator,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    iterations: int = 80,
    probes: int = 1,
    loss: Loss = "cross_entropy",
    kind: Kind = "hessian",
    seed: int = 0,
    sigma: float | None = None,
    points: int = 1000,
    chunk: int = CHUNK,
) -> SpectralDensity:
    """The eigenvalue density of H (or G) by stochastic Lanczos quadrature (Ghorbani et al. 2019; PyHessian).

    Each of ``probes`` Gaussian probes gets ``iterations`` Lanczos steps; the density is
    (1/probes) sum_p sum_j w_pj N(t; tau_pj, sigma^2) on ``points`` grid points from min tau - 0.01 - 5 sigma to
    max tau + 0.01 + 5 sigma, normalised by its Riemann sum. ``sigma`` (a standard deviation) defaults to
    PyHessian's choice, the variance sigma^2 = 1e-5 * max(1, max tau - min tau + 0.02).

    Parameters
    ----------
    net : testbed.nn.MLP or HessianOperator
        A net on the CPU or CUDA backend (the products are taken at the parameters it has now), or an operator
        built before (then ``x, y, loss, kind`` and ``chunk`` are its own and these arguments are ignored).
    x : ndarray, shape (N, d^(0))
        Finite inputs: a minibatch or a whole split.
    y : ndarray of int, shape (N,)
        Class labels in 0..K-1.
    iterations : int
        Lanczos steps per probe (m), >= 1.
    probes : int
        Number of Gaussian probes, >= 1.
    loss : {"cross_entropy", "mse"}
        The loss, as in :func:`testbed.train.loss_and_grad`.
    kind : {"hessian", "gauss_newton"}
        The exact Hessian H or the Gauss-Newton matrix G = J^T H_z J.
    seed : int
        Key of the probes.
    sigma : float, optional
        Width (> 0) of the Gaussian placed at each node; default as above.
    points : int
        Number of grid points.
    chunk : int
        Rows per pass over ``x, y`` (bounds the work buffers; the result does not depend on it).

    Returns
    -------
    SpectralDensity
        ``grid`` and ``density`` (integrating to 1 on the grid), the ``nodes`` and ``weights`` of each probe,
        ``sigma``, the Lanczos steps taken, ``probes`` and the loss at the point.

    Raises
    ------
    ValueError
        A bad argument (the message names it): ``net`` not an MLP, ``x`` or ``y`` of the wrong shape,
        type or range, an unknown ``loss`` or ``kind``, a ``chunk`` that is not a positive integer,
        or ``iterations``, ``probes``, ``points``, ``seed`` or ``sigma`` out of range.

    References
    ----------
    Golub & Meurant 2010, "Matrices, moments and quadrature with applications"; Ghorbani, Krishnan & Xiao 2019,
    "An investigation into neural net optimization via Hessian eigenvalue density"; Yao et al. 2020, "PyHessian".
    """
    op = _operator(net, x, y, loss, kind, chunk)
    iterations = validation.check_positive_int(iterations, "iterations")
    probes = validation.check_positive_int(probes, "probes")
    points = validation.check_positive_int(points, "points")
    seed = validation.check_seed(seed)
    nodes = np.zeros((probes, iterations))
    weights = np.zeros((probes, iterations))
    steps = 0
    for p in range(probes):
        start = rng.normal(op.size, seed=seed, stream=STREAM_SLQ, step=p)
        state = lanczos(op.matvec, start, iterations)
        values, u, _ = state.ritz()
        m = values.size
        steps = max(steps, m)
        nodes[p, :m] = values
        weights[p, :m] = u[0] ** 2
        nodes[p, m:] = values[-1]  # zero weight
    low, high = nodes.min() - 0.01, nodes.max() + 0.01
    if sigma is None:
        sigma = math.sqrt(1e-5 * max(1.0, high - low))
    sigma = validation.check_finite(sigma, "sigma", minimum=0.0)
    if sigma <= 0.0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    grid = np.linspace(low - 5 * sigma, high + 5 * sigma, points)
    density = np.zeros(points)
    for p in range(probes):
        density += np.sum(
            weights[p][:, None] * np.exp(-0.5 * ((grid[None, :] - nodes[p][:, None]) / sigma) ** 2), axis=0
        )
    density /= probes * sigma * math.sqrt(2 * math.pi)
    if points > 1:
        density /= np.sum(density) * (grid[1] - grid[0])
    return SpectralDensity(grid, density, nodes, weights, float(sigma), steps, probes, op.loss)


# ----------------------------------------------------------------------------------------------------------------
# slices


def _evaluate_many(net, params, x, y, loss, chunk):
    """(losses, accuracies) of the net at each row of ``params`` (K, P): one parallel call over the K nets."""
    params = np.ascontiguousarray(params, dtype=net.dtype)
    count = params.shape[0]
    x = net._check_batch(x, net.widths[0], "x")
    y = train._check_labels(y, x.shape[0], net.widths[-1])
    chunk = min(validation.check_positive_int(chunk, "chunk"), x.shape[0])
    layout = train._Layout(net, chunk)
    buffers = layout.eval_buffers(net.dtype, copies=count)
    data = train._data(x, y, train._loss_code(loss), net.dtype)
    losses, accuracies = np.zeros(count), np.zeros(count)
    with train.blas_threads(1):
        train_kernels.ensemble_evaluate_cpu(params, layout.net(), data, buffers, chunk, losses, accuracies)
    return losses, accuracies


@dataclasses.dataclass
class Slice:
    """Loss (and accuracy) on a grid: ``alphas`` (and ``betas`` for 2-D), ``loss``/``accuracy`` of shape
    (len(alphas),) or (len(alphas), len(betas)), the ``directions`` used (rows, P)."""

    alphas: np.ndarray
    betas: np.ndarray | None
    loss: np.ndarray
    accuracy: np.ndarray
    directions: np.ndarray


def _check_vector(v, size, name):
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (size,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be a finite vector of the net's {size} parameters, got shape {v.shape}")
    return v


# Default grids, tuples so that a returned Slice never aliases a default (np.asarray copies a tuple)
SLICE_1D_ALPHAS = tuple(np.linspace(-0.5, 1.5, 41))
SLICE_2D_STEPS = tuple(np.linspace(-1.0, 1.0, 21))


def slice_1d(
    net: MLP,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    theta_0: npt.ArrayLike,
    theta_1: npt.ArrayLike,
    *,
    alphas: Sequence[float] = SLICE_1D_ALPHAS,
    loss: Loss = "cross_entropy",
    chunk: int = CHUNK,
) -> Slice:
    """L((1 - a) theta_0 + a theta_1) over ``alphas`` (Goodfellow, Vinyals & Saxe 2015's linear path).

    Every point's net is evaluated in one parallel call over the points (the net's own parameters are not
    changed).

    Parameters
    ----------
    net : testbed.nn.MLP
        The net: its shape, activation and dtype define the loss; its parameters are not used.
    x : ndarray, shape (N, d^(0))
        Finite inputs.
    y : ndarray of int, shape (N,)
        Class labels in 0..K-1.
    theta_0, theta_1 : ndarray, shape (P,)
        The two ends of the path (a = 0 and a = 1), finite.
    alphas : sequence of float
        The points a of the path; default 41 points from -0.5 to 1.5.
    loss : {"cross_entropy", "mse"}
        The loss, as in :func:`testbed.train.loss_and_grad`.
    chunk : int
        Rows per pass over ``x, y`` (bounds the work buffers; the result does not depend on it).

    Returns
    -------
    Slice
        ``alphas``, the ``loss`` and ``accuracy`` at each, and the direction theta_1 - theta_0 (1, P).

    Raises
    ------
    ValueError
        ``net`` not an MLP, ``theta_0`` or ``theta_1`` not finite vectors of P parameters, bad ``x`` or ``y``, an
        unknown ``loss`` or a bad ``chunk`` (the message names it).

    References
    ----------
    Goodfellow, Vinyals & Saxe 2015, "Qualitatively characterizing neural network optimization problems".
    """
    net = train._check_net(net)
    theta_0 = _check_vector(theta_0, net.size, "theta_0")
    theta_1 = _check_vector(theta_1, net.size, "theta_1")
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    params = (1.0 - alphas)[:, None] * theta_0[None, :] + alphas[:, None] * theta_1[None, :]
    losses, accuracies = _evaluate_many(net, params, x, y, loss, chunk)
    return Slice(alphas, None, losses, accuracies, (theta_1 - theta_0)[None, :])


def neuron_normalised_direction(net: MLP, theta: npt.ArrayLike, *, seed: int = 0, step: int = 0) -> np.ndarray:
    """A Gaussian direction with each row (neuron) of each W^(l) rescaled to the norm of that row in ``theta``
    (Li et al. 2018's filter normalisation, per neuron for an MLP); the bias directions are zero (as theirs).

    Parameters
    ----------
    net : testbed.nn.MLP
        The net whose layout (widths, biases) the direction follows.
    theta : ndarray, shape (P,)
        The parameters whose row norms the direction takes.
    seed : int
        The Philox key of the Gaussian draws.
    step : int
        The Philox step (0 and 1 give :func:`slice_2d`'s two directions).

    Returns
    -------
    ndarray, shape (P,)

    Raises
    ------
    ValueError
        If ``theta`` is not a finite vector of the net's P parameters.

    References
    ----------
    H. Li, Z. Xu, G. Taylor, C. Studer, T. Goldstein, "Visualizing the loss landscape of neural nets", NeurIPS 2018.
    """
    net = train._check_net(net)
    theta = _check_vector(theta, net.size, "theta")
    d = rng.normal(net.size, seed=validation.check_seed(seed), stream=STREAM_SLICE, step=step)
    for l in range(1, net.depth + 1):
        weight_at, bias_at = net._offsets[l - 1]
        rows, cols = net.widths[l], net.widths[l - 1]
        block = d[weight_at : weight_at + rows * cols].reshape(rows, cols)
        target = theta[weight_at : weight_at + rows * cols].reshape(rows, cols)
        block *= (np.linalg.norm(target, axis=1) / np.linalg.norm(block, axis=1))[:, None]
        if net.bias:
            d[bias_at : bias_at + rows] = 0.0
    return d


def slice_2d(
    net: MLP,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    directions: npt.ArrayLike | None = None,
    alphas: Sequence[float] = SLICE_2D_STEPS,
    betas: Sequence[float] = SLICE_2D_STEPS,
    loss: Loss = "cross_entropy",
    seed: int = 0,
    chunk: int = CHUNK,
) -> Slice:
    """L(theta + a d_1 + b d_2) on the grid ``alphas`` x ``betas`` around the net's parameters theta.

    ``directions`` (2, P): given (e.g. :func:`pca_directions`), or two per-neuron normalised Gaussian directions
    (:func:`neuron_normalised_direction`, Philox steps 0 and 1 of ``seed``).

    Parameters
    ----------
    net : testbed.nn.MLP
        The net; its parameters are the centre theta (not changed).
    x : ndarray, shape (N, d^(0))
        Finite inputs.
    y : ndarray of int, shape (N,)
        Class labels in 0..K-1.
    directions : ndarray, shape (2, P), optional
        The directions d_1, d_2 (finite); default two normalised random directions.
    alphas, betas : sequence of float
        The grid's coordinates along d_1 and d_2; default 21 points from -1 to 1 each.
    loss : {"cross_entropy", "mse"}
        The loss, as in :func:`testbed.train.loss_and_grad`.
    seed : int
        Key of the random directions.
    chunk : int
        Rows per pass over ``x, y`` (bounds the work buffers; the result does not depend on it).

    Returns
    -------
    Slice
        ``alphas``, ``betas``, ``loss`` and ``accuracy`` of shape (len(alphas), len(betas)) and the ``directions``.

    Raises
    ------
    ValueError
        ``net`` not an MLP, ``directions`` not a finite (2, P) array, bad ``x`` or ``y``, an unknown ``loss``, a bad
        ``seed`` or ``chunk`` (the message names it).

    References
    ----------
    Li, Xu, Taylor, Studer & Goldstein 2018, "Visualizing the loss landscape of neural nets" (filter-normalised
    directions, here per neuron).
    """
    net = train._check_net(net)
    theta = net.params.astype(np.float64)
    if directions is None:
        directions = np.stack([neuron_normalised_direction(net, theta, seed=seed, step=s) for s in (0, 1)])
    directions = np.asarray(directions, dtype=np.float64)
    if directions.shape != (2, net.size) or not np.all(np.isfinite(directions)):
        raise ValueError(f"directions must be a finite (2, {net.size}) array, got shape {directions.shape}")
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    betas = np.asarray(betas, dtype=np.float64).ravel()
    a, b = np.meshgrid(alphas, betas, indexing="ij")
    params = theta[None, :] + a.reshape(-1, 1) * directions[0] + b.reshape(-1, 1) * directions[1]
    losses, accuracies = _evaluate_many(net, params, x, y, loss, chunk)
    shape = (alphas.size, betas.size)
    return Slice(alphas, betas, losses.reshape(shape), accuracies.reshape(shape), directions)


def pca_directions(
    path: npt.ArrayLike, center: npt.ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two principal directions of an optimiser's ``path`` (T, P) about ``center`` (default its last point),
    and the path's coordinates (T, 2) in them (Li et al. 2018, section 7), with the explained variance ratios.

    Parameters
    ----------
    path : array_like, shape (T, P)
        The parameters along the path, T >= 3.
    center : array_like, shape (P,), optional
        The point the directions are taken about (default the path's last point).

    Returns
    -------
    directions : ndarray, shape (2, P)
        The two leading right singular vectors of ``path - center``.
    coordinates : ndarray, shape (T, 2)
        The path's coordinates in them.
    explained : ndarray, shape (2,)
        The share of the squared singular values each direction explains.

    Raises
    ------
    ValueError
        If ``path`` is not a (T, P) array with T >= 3.

    References
    ----------
    H. Li, Z. Xu, G. Taylor, C. Studer, T. Goldstein, "Visualizing the loss landscape of neural nets", NeurIPS 2018,
    section 7.
    """
    path = np.asarray(path, dtype=np.float64)
    if path.ndim != 2 or path.shape[0] < 3:
        raise ValueError(f"path must be a (T, P) array with T >= 3 points, got shape {path.shape}")
    center = path[-1] if center is None else np.asarray(center, dtype=np.float64)
    moves = path - center
    _, s, vt = np.linalg.svd(moves, full_matrices=False)
    directions = vt[:2]
    return directions, moves @ directions.T, (s[:2] ** 2) / np.sum(s**2)
