"""Escape times by Monte Carlo: many independent optimizer runs on a landscape, one per CPU iteration / GPU thread.

::

    from testbed import landscapes, montecarlo, optim
    f = landscapes.saddle(dim=10, negative=1, gamma=1.0)
    r = montecarlo.escape_times(f, optim.SGD(lr=0.01), trials=20000, noise=0.01, radius=1.0,
                                start="saddle", max_steps=20000, seed=0, backend="cpu")
    r.steps, r.escaped, r.diverged      # arrays of length trials
    r.median()                          # Kaplan-Meier median escape time (inf when fewer than half escaped)

Each trial runs ``t = 1, 2, ...``: gradient of the landscape plus noise, one step of the optimizer's own scalar
rule (:mod:`testbed.rules.optimizers`, the same arithmetic as :mod:`testbed.optim`), projection onto the
landscape's box if it has one, until

- ``criterion="radius"`` (default): |w - c| > R, the iterate leaves the ball of radius ``radius`` around the
  landscape's centre (the saddle); ``"loss"``: f(w) < f(w_0) - ``delta`` (plateaus); ``"converge"``:
  |w - w*| < ``radius`` around the landscape's minimum (ravines); ``"none"``: run the whole budget (minima,
  Reddi: look at ``final``);
- an iterate is not finite (the trial *diverged*; counted in ``diverged``, never in the statistics of escapes);
- or ``max_steps`` steps were taken (the trial is *censored*: ``escaped`` is False and ``steps`` holds the
  budget, which is a lower bound, not an escape time).

Noise: ``noise`` is the standard deviation sigma of isotropic Gaussian gradient noise (``noise_kind="gaussian"``),
or the per-sample standard deviation of a finite sum (``noise_kind="minibatch"``, ``samples`` per-sample linear
terms, ``batch`` drawn with replacement per step: see :mod:`testbed.rules.montecarlo`). Every random number is
Philox keyed by (seed, trial, step, coordinate), so escape times are identical on the CPU with any number of
threads and on CUDA (the simulator bit for bit). The normals are Box-Muller on all four words of a Philox block,
with log, sin and cos evaluated by polynomials (relative error ~1e-15) so that the CPU kernel vectorises the
noise of a chunk's 32 lanes (each lane takes the next trial when its own ends); the same arithmetic runs on the
GPU (where only the compiler's fused multiply-adds may change a last bit).

Slices: the kernels run a bounded number of steps per launch (about :data:`SLICE_SECONDS` of work; each lane's
trial, slots and step count carried over to the next launch), so that Ctrl-C ends a run within a slice and a
progress bar (:func:`progress_listener`) moves within a long run. A trial's arithmetic depends only on its own
state and keys, so the slices give the same bits as one launch. Before allocating, the run's memory
(:func:`memory_estimate`) is compared with the machine's available memory (and the GPU's free memory on
``backend="cuda"``): a run that would not fit is refused with :class:`testbed.backend.MemoryLimitError` (a ValueError).

Starts: ``"saddle"`` (alias ``"default"``): the landscape's ``start`` (the saddle, the plateau's start); an
array of length ``dim`` (one start for every trial) or of shape ``(trials, dim)``; ``("ball", r)``: uniform in
the ball of radius r around the landscape's start (direction from normals, radius r U^(1/d)).

Newton and saddle-free Newton (``optim.Newton``, ``optim.SaddleFreeNewton``: ``w -= lr (H + damping I)^-1 g`` and
``w -= lr (|H| + damping I)^-1 g``) couple the coordinates through the Hessian; they run in a CPU kernel with a
LAPACK eigendecomposition per step, and ``backend="cuda"`` raises a ValueError for them (a singular matrix gives
a non-finite step: the trial is counted as diverged).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from . import backend as backends
from . import landscapes as landscape_registry
from . import rng, statistics, validation
from ._types import Backend
from .loops import montecarlo as loops
from .rules import montecarlo as rules
from .rules import optimizers as optimizer_rules

if TYPE_CHECKING:  # optim is imported when a run names its optimizer (annotations only here)
    from .optim import Newton, Optimizer

CRITERIA = {
    "radius": rules.CRITERION_RADIUS,
    "loss": rules.CRITERION_LOSS,
    "converge": rules.CRITERION_CONVERGE,
    "none": rules.CRITERION_NONE,
}
NOISE_KINDS = {"gaussian": rules.NOISE_GAUSSIAN, "minibatch": rules.NOISE_MINIBATCH}

#: The Philox stream of the host-side draws (random starts, finite-sum samples); trial streams are 0 .. trials-1.
HOST_STREAM = 2**32 - 1
_STEP_BALL_DIRECTION = 0
_STEP_BALL_RADIUS = 1
_STEP_SAMPLES = 2

#: Most trajectory points kept per recorded trial when ``record_every`` is not given.
MAX_RECORD_POINTS = 2000

#: Wall time aimed at for one slice of a run: the kernels run a bounded number of steps per launch, so Ctrl-C
#: (seen by Python between two launches) ends a run within about this time, and progress is reported as often.
#: Measured on the shared 2-core machine (load 7-18): the issue's saddle commands exit 0.24-0.45 s after SIGINT;
#: the benchmark's CPU time was 3-4% (1 thread) and 4-7% (2 threads) above the unsliced kernel with 0.5 s
#: slices, 6-9% (2 threads) with 0.2 s: a slice boundary is a barrier of the thread pool.
SLICE_SECONDS = 0.5
#: The first slice's work, in lane-coordinate steps per chunk of lanes (about 10 ms on one CPU core), before the
#: measured time of each slice scales the next one.
SLICE_WORK = 2_000_000
#: Most growth (and shrinkage) of the step budget from one slice to the next: a slice that was slow because it
#: compiled the kernel, or because the machine was busy, does not shrink the next ones for long.
SLICE_SCALE_LIMIT = 4.0


@dataclasses.dataclass
class EscapeResult:
    """The outcome of :func:`escape_times`: per-trial arrays and what produced them.

    Attributes
    ----------
    steps : int64 array (trials,)
        Steps to escape for escaped trials; the budget ``max_steps`` for censored ones; the step of the first
        non-finite iterate for diverged ones.
    escaped, diverged : bool arrays (trials,)
        ``censored = ~escaped & ~diverged``.
    final : float64 array (trials, dim)
        The iterate when the trial stopped.
    trajectories : float64 array (record, points, dim) or None
        w at steps ``trajectory_steps`` of the first ``record`` trials (NaN after the trial stopped).
    trajectory_steps : int64 array (points,)
    params : dict
        The landscape, optimizer and every argument of the run.
    """

    steps: np.ndarray
    escaped: np.ndarray
    diverged: np.ndarray
    final: np.ndarray
    trajectories: np.ndarray | None
    trajectory_steps: np.ndarray | None
    params: dict

    @property
    def censored(self) -> np.ndarray:
        return ~self.escaped & ~self.diverged

    @property
    def trials(self) -> int:
        return int(self.steps.size)

    @property
    def fraction_escaped(self) -> float:
        return float(self.escaped.mean())

    @property
    def n_diverged(self) -> int:
        return int(self.diverged.sum())

    def escape_steps(self) -> np.ndarray:
        """The escape times of the trials that escaped (a plain array, no censored values in it)."""
        return self.steps[self.escaped]

    def median(self) -> float:
        """Kaplan-Meier median escape time (diverged trials count as censored at divergence); inf if unreached."""
        return statistics.km_median(self.steps, self.escaped)

    def quantile(self, q: float) -> float:
        """Kaplan-Meier q-quantile of the escape time.

        Parameters
        ----------
        q : float
            The quantile, in (0, 1).

        Returns
        -------
        float
            The smallest step at which the Kaplan-Meier estimate of P(escaped by then) reaches q; inf if unreached.

        Raises
        ------
        ValueError
            If ``q`` is not in (0, 1).

        References
        ----------
        E. L. Kaplan, P. Meier, "Nonparametric estimation from incomplete observations", JASA 53 (1958).
        """
        return statistics.km_quantile(self.steps, self.escaped, q)

    def survival(self) -> tuple[np.ndarray, np.ndarray]:
        """The Kaplan-Meier curve ``(times, S)``."""
        return statistics.kaplan_meier(self.steps, self.escaped)

    def ecdf(self) -> tuple[np.ndarray, np.ndarray]:
        """Empirical CDF of the escape time over all trials (tops out at the escaped fraction)."""
        return statistics.ecdf(self.steps, self.escaped)

    def summary(self) -> dict[str, float]:
        """Headline numbers: trials, escaped/censored/diverged fractions, KM median, mean of the escaped."""
        escaped_steps = self.escape_steps()
        return {
            "trials": self.trials,
            "fraction_escaped": self.fraction_escaped,
            "fraction_censored": float(self.censored.mean()),
            "diverged": self.n_diverged,
            "median": self.median(),
            "mean_of_escaped": float(escaped_steps.mean()) if escaped_steps.size else float("nan"),
        }


#: Names of the dense second-order optimizers of :mod:`testbed.optim` -> the dense kernel's method.
DENSE_METHODS = ("newton", "saddle_free_newton")


def _spec(optimizer):
    """(optimizer, kind, spec): kind "rule" with the RuleSpec, or a DENSE_METHODS name with (lr, damping)."""
    if isinstance(optimizer, str):
        from . import optim

        optimizer = optim.make(optimizer)  # ValueError naming the optimizer and the valid names
    name = getattr(optimizer, "name", None)
    if name in DENSE_METHODS and not hasattr(optimizer, "rule_spec"):
        lr = validation.check_finite(getattr(optimizer, "lr", 1.0), "optimizer.lr", minimum=0.0, strict=True)
        damping = validation.check_finite(getattr(optimizer, "damping", 0.0), "optimizer.damping", minimum=0.0)
        return optimizer, name, (lr, damping)
    if not hasattr(optimizer, "rule_spec"):
        raise ValueError(
            f"optimizer must be a testbed.optim optimizer (SGD, Adam, ..., Newton, SaddleFreeNewton) or its name; "
            f"got {optimizer!r}"
        )
    return optimizer, "rule", optimizer.rule_spec()


def _starts(landscape, start, trials, seed):
    dim = landscape.dim
    if isinstance(start, str):
        if start not in ("saddle", "default", "start"):
            raise ValueError(f"start must be 'saddle', an array or ('ball', r), got {start!r}")
        return np.tile(landscape.start, (trials, 1))
    if isinstance(start, tuple) and len(start) == 2 and start[0] == "ball":
        r = validation.check_finite(start[1], "start radius", minimum=0.0, strict=True)
        directions = rng.normal((trials, dim), seed=seed, stream=HOST_STREAM, step=_STEP_BALL_DIRECTION)
        norms = np.linalg.norm(directions, axis=1, keepdims=True)
        radii = r * rng.uniform(trials, seed=seed, stream=HOST_STREAM, step=_STEP_BALL_RADIUS) ** (1.0 / dim)
        return landscape.start + directions / norms * radii[:, None]
    try:
        array = np.asarray(start, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"start must be 'saddle', an array or ('ball', r), got {start!r}") from None
    if array.shape == (dim,):
        array = np.tile(array, (trials, 1))
    elif array.shape != (trials, dim):
        raise ValueError(
            f"start must have shape ({dim},) or ({trials}, {dim}) for this landscape of dim {dim}, got {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError("start must be finite")
    return array.copy()


def _same_rows(w):
    """True when every row of ``w`` holds the first row's numbers bit for bit."""
    bits = w.view(np.uint64)
    return bool(np.all(bits == bits[:1]))


_progress_listeners = []


@contextlib.contextmanager
def progress_listener(callback: Callable[[float], object]) -> Iterator[Callable[[float], object]]:
    """Call ``callback(fraction)`` (the fraction of the run's work done, in [0, 1]: see :func:`_run_in_slices`)
    after every slice of every :func:`escape_times` run inside the ``with`` block (a progress bar that moves
    within one long run).

    Parameters
    ----------
    callback : callable
        Called with one float, the fraction done.

    Yields
    ------
    callable
        ``callback``.
    """
    _progress_listeners.append(callback)
    try:
        yield callback
    finally:
        _progress_listeners.remove(callback)


def _first_budget(max_steps, lanes, dim):
    """Steps per lane of a run's first slice: about :data:`SLICE_WORK` lane-coordinate steps."""
    return int(min(max_steps, max(1, SLICE_WORK // (lanes * dim))))


def _next_budget(budget, elapsed, max_steps):
    """The step budget that makes the next slice last about :data:`SLICE_SECONDS`, given the last one's time."""
    scale = SLICE_SCALE_LIMIT if elapsed <= 0.0 else SLICE_SECONDS / elapsed
    scale = min(SLICE_SCALE_LIMIT, max(1.0 / SLICE_SCALE_LIMIT, scale))
    return int(min(max_steps, max(1, budget * scale)))


def _run_in_slices(launch, budget, max_steps, status, rounds=1):
    """Call ``launch(budget)`` until it returns True (every trial done), scaling the budget between calls and
    telling the progress listeners the fraction of the work done.

    That fraction is the larger of the share of trials whose ``status`` is final (>= 0) and the steps run so far
    over ``max_steps`` x ``rounds`` (the trials one lane runs in turn, at most): a lower bound of the work done
    that moves even while no trial ends. Between two calls Python runs its signal handlers: Ctrl-C raises
    KeyboardInterrupt here within a slice.
    """
    taken = 0
    while True:
        started = time.perf_counter()
        done = launch(budget)
        elapsed = time.perf_counter() - started
        taken += budget
        if _progress_listeners:
            finished = status()
            fraction = (
                1.0
                if done
                else max(
                    float(np.count_nonzero(finished >= 0)) / max(1, len(finished)),
                    min(1.0, taken / (max_steps * rounds)),
                )
            )
            for callback in list(_progress_listeners):
                callback(fraction)
        if done:
            return
        budget = _next_budget(budget, elapsed, max_steps)


#: float64 rows of length dim kept per trial: the iterate, three optimizer slots and the start being built; on
#: the GPU also each thread's lane scratch (about 6 dim: testbed.loops.montecarlo.noise_rows, lane_state_rows).
ROWS_PER_TRIAL = {"cpu": 5, "cuda": 11}


#: dim x dim float64 matrices per thread of the dense second-order kernel (Hessian, eigenvectors, LAPACK's work).
DENSE_MATRICES = 4


def memory_estimate(
    trials: int,
    dim: int,
    record: int = 0,
    points: int = 1,
    backend: Literal["cpu", "cuda"] = "cpu",
    samples: int = 1,
    dense: bool = False,
) -> int:
    """Bytes of the arrays of :func:`escape_times`: trials x dim rows (:data:`ROWS_PER_TRIAL`), the recorded
    trajectories (record x points x dim), the finite sum's samples (samples x dim) and, for Newton-type
    optimizers (``dense``), dim x dim matrices per thread.

    Parameters
    ----------
    trials, dim : int
        The number of trials and of coordinates.
    record, points : int
        The recorded trials and the points kept per trial.
    backend : {"cpu", "cuda"}
        The resolved backend (it sets the rows per trial).
    samples : int
        The finite sum's samples.
    dense : bool
        A Newton-type optimizer (dim x dim matrices per thread).

    Returns
    -------
    int
        Bytes.
    """
    per_trial = 8 * ROWS_PER_TRIAL[backend] * dim + 8 * 4 + 1
    total = trials * per_trial + 8 * dim * (max(record, 1) * points + samples)
    if dense:
        import numba

        total += 8 * DENSE_MATRICES * dim * dim * numba.get_num_threads()
    return total


def check_memory(
    trials: int,
    dim: int,
    record: int = 0,
    points: int = 1,
    backend: Literal["cpu", "cuda"] = "cpu",
    samples: int = 1,
    dense: bool = False,
) -> int:
    """:class:`testbed.backend.MemoryLimitError` (a ValueError) when :func:`memory_estimate` does not fit: in the
    host's memory, and on ``backend="cuda"`` also in the GPU's (the device holds a copy of every array).

    Parameters
    ----------
    trials, dim : int
        The number of trials and of coordinates.
    record, points : int
        The recorded trials and the points kept per trial.
    backend : {"cpu", "cuda"}
        The resolved backend (it sets the rows per trial).
    samples : int
        The finite sum's samples.
    dense : bool
        A Newton-type optimizer (dim x dim matrices per thread).

    Returns
    -------
    int
        The bytes of :func:`memory_estimate`.

    Raises
    ------
    testbed.backend.MemoryLimitError
        If they do not fit.
    """
    what = f"trials x dim = {trials} x {dim}"
    if record:
        what += f" (and record x points x dim = {record} x {points} x {dim})"
    if dense:
        what += " with a dim x dim Hessian per thread"
    nbytes = backends.check_memory(memory_estimate(trials, dim, record, points, backend, samples, dense), what)
    if backend == "cuda":
        backends.check_memory(nbytes, what, device=True)
    return nbytes


def _finite_sum_samples(samples, dim, seed):
    """``samples`` centred directions with unit variance per coordinate (rows a_k of the finite sum)."""
    draws = rng.normal((samples, dim), seed=seed, stream=HOST_STREAM, step=_STEP_SAMPLES)
    draws -= draws.mean(axis=0)
    draws /= draws.std(axis=0)
    return np.ascontiguousarray(draws)


def escape_times(
    landscape: landscape_registry.Landscape | str,
    optimizer: Optimizer | Newton | str,
    *,
    trials: int = 1000,
    noise: float = 0.0,
    radius: float = 1.0,
    start: str | npt.ArrayLike | tuple[str, float] = "saddle",
    max_steps: int = 10000,
    seed: int = 0,
    backend: Backend = "cpu",
    criterion: Literal["radius", "loss", "converge", "none"] = "radius",
    delta: float | None = None,
    center: npt.ArrayLike | None = None,
    noise_kind: Literal["gaussian", "minibatch"] = "gaussian",
    samples: int = 1000,
    batch: int = 1,
    record: int = 0,
    record_every: int | None = None,
) -> EscapeResult:
    """Run ``trials`` independent trials of ``optimizer`` on ``landscape``; return an :class:`EscapeResult`.

    Parameters
    ----------
    landscape : Landscape or str
        A :mod:`testbed.landscapes` landscape, or its name (built with default parameters).
    optimizer : Optimizer, Newton or str
        A :mod:`testbed.optim` optimizer (any per-component rule, Newton, SaddleFreeNewton) or its name.
    trials : int
        Number of independent trials (trial k uses Philox stream k).
    noise : float >= 0
        Gradient-noise standard deviation sigma (per coordinate; per sample for ``noise_kind="minibatch"``).
    radius : float > 0
        R of the escape ball (``criterion="radius"``) or the tolerance (``"converge"``).
    start : "saddle", array_like or ("ball", r)
        "saddle", array of shape (dim,) or (trials, dim), or ("ball", r).
    max_steps : int > 0
        Step budget; trials that have not escaped by then are censored.
    seed : int
        The Philox key, in [0, 2**64).
    backend : {"cpu", "cuda", "auto"}
        Where the trials run ("cuda" refuses Newton and SaddleFreeNewton).
    criterion : {"radius", "loss", "converge", "none"}
        When a trial has escaped (see the module docstring).
    delta : float > 0
        The loss drop of ``criterion="loss"`` (required there).
    center : array of length dim, optional
        Centre of the ball (default: the landscape's centre; its minimum for ``"converge"``).
    noise_kind : {"gaussian", "minibatch"}
        Isotropic Gaussian noise, or the noise of a minibatch of a finite sum.
    samples, batch : int
        The finite sum's size and the minibatch size.
    record : int >= 0
        Keep the trajectories of the first ``record`` trials, every ``record_every`` steps (default: at most
        2000 points).
    record_every : int or None
        The recording interval in steps (positive; None: at most 2000 points per trajectory).

    Returns
    -------
    EscapeResult
        Per-trial steps, escaped and diverged flags, final iterates, recorded trajectories and the run's parameters.

    Raises
    ------
    ValueError
        If an argument is out of range or unknown (the message names it and the valid choices), or a Newton-type
        optimizer is asked to run on ``backend="cuda"``; :class:`testbed.backend.MemoryLimitError` (a ValueError)
        when the run does not fit in memory.

    References
    ----------
    Y. Dauphin, R. Pascanu, C. Gulcehre, K. Cho, S. Ganguli, Y. Bengio, "Identifying and attacking the saddle point
    problem in high-dimensional non-convex optimization", NeurIPS 2014; J. K. Salmon et al., "Parallel random
    numbers: as easy as 1, 2, 3", SC 2011 (Philox); E. L. Kaplan, P. Meier, JASA 53 (1958) (the median of
    :meth:`EscapeResult.median`).
    """
    if isinstance(landscape, str):
        landscape = landscape_registry.make(landscape)
    if not isinstance(landscape, landscape_registry.Landscape):
        raise ValueError(f"landscape must be a testbed.landscapes.Landscape or a landscape name, got {landscape!r}")
    optimizer, kind, spec = _spec(optimizer)
    trials = validation.check_positive_int(trials, "trials")
    if trials >= HOST_STREAM:
        raise ValueError(f"trials must be below 2**32 - 1, got {trials}")
    noise = validation.check_finite(noise, "noise", minimum=0.0)
    radius = validation.check_finite(radius, "radius", minimum=0.0, strict=True)
    max_steps = validation.check_positive_int(max_steps, "max_steps")
    if max_steps >= 2**32:
        raise ValueError(f"max_steps must be below 2**32 (a Philox counter word), got {max_steps}")
    seed = validation.check_seed(seed)
    target = backends.resolve(backend)
    if criterion not in CRITERIA:
        raise validation.unknown_name_error("criterion", criterion, CRITERIA)
    if noise_kind not in NOISE_KINDS:
        raise validation.unknown_name_error("noise_kind", noise_kind, NOISE_KINDS)
    if criterion == "loss":
        if delta is None:
            raise ValueError("delta (the loss drop) is required with criterion='loss'")
        delta = validation.check_finite(delta, "delta", minimum=0.0, strict=True)
    else:
        delta = 0.0 if delta is None else validation.check_finite(delta, "delta", minimum=0.0)
    dim = landscape.dim
    if center is None:
        center = landscape.minimum if criterion == "converge" else landscape.center
        if center is None:
            raise ValueError(f"criterion='converge' needs center= (landscape {landscape.name!r} states no minimum)")
    center = np.asarray(center, dtype=np.float64)
    if center.shape != (dim,) or not np.all(np.isfinite(center)):
        raise ValueError(f"center must be {dim} finite numbers, got {center!r}")
    center = np.ascontiguousarray(center)
    record = int(record)
    if record < 0:
        raise ValueError(f"record must be >= 0, got {record}")
    record = min(record, trials)
    if record_every is None:
        record_every = max(1, math.ceil(max_steps / MAX_RECORD_POINTS))
    record_every = validation.check_positive_int(record_every, "record_every")
    samples_array = np.zeros((1, dim))
    noise_code = rules.NOISE_NONE
    if noise > 0.0:
        noise_code = NOISE_KINDS[noise_kind]
        if noise_code == rules.NOISE_MINIBATCH:
            samples = validation.check_positive_int(samples, "samples")
            if samples < 2:
                raise ValueError(f"samples must be at least 2 for a finite sum, got {samples}")
            batch = validation.check_positive_int(batch, "batch")
    batch = int(batch)
    n_points = max_steps // record_every + 1
    check_memory(
        trials,
        dim,
        record if record else 0,
        n_points if record else 1,
        target,
        samples if noise_code == rules.NOISE_MINIBATCH else 1,
        dense=kind != "rule",
    )
    if noise_code == rules.NOISE_MINIBATCH:
        samples_array = _finite_sum_samples(samples, dim, seed)

    w = np.ascontiguousarray(_starts(landscape, start, trials, seed))
    # Trials without noise from one start are one computation (trial k's Philox stream feeds its noise only, and
    # a trial's outcome depends neither on its lane nor on its thread): it runs once and every trial gets its
    # outcome, the bits each would have had. GD from the exact saddle, 2,000 trials to the step budget, was 11 %
    # of the saddle scenario's run.
    copies = trials if trials > 1 and noise_code == rules.NOISE_NONE and _same_rows(w) else 1
    if copies > 1:
        w = w[:1].copy()
    runs, run_record = trials // copies, min(record, trials // copies)
    trajectories = np.full((max(run_record, 1), n_points if record else 1, dim), np.nan)
    steps = np.zeros(runs, dtype=np.int64)
    status = np.full(runs, rules.STATUS_RUNNING, dtype=np.int8)
    has_box = landscape.bounds is not None
    low, high = landscape.bounds if has_box else (-math.inf, math.inf)
    # Python ints and floats (int64 and float64 to Numba) and C-contiguous float64 arrays: the types the kernels
    # are compiled for, so that every run reuses the one compiled (and cached) specialisation
    landscape_args = loops.LandscapeArgs(
        int(landscape.code), np.ascontiguousarray(landscape.params, np.float64), dim, has_box, float(low), float(high)
    )
    noise_args = loops.NoiseArgs(int(noise_code), float(noise), batch, samples_array, np.uint64(seed))
    stop_args = loops.StopArgs(CRITERIA[criterion], center, float(radius), float(delta), max_steps)
    slot_rows = runs if kind == "rule" else 0  # the dense methods keep no optimizer slots
    slots = [np.zeros((slot_rows, dim)) for _ in range(3)]
    buffers = loops.TrialBuffers(w, *slots, steps, status, trajectories, record_every, run_record)
    params = dict(
        landscape=landscape.name,
        landscape_description=landscape.description,
        dim=dim,
        optimizer=getattr(optimizer, "name", type(optimizer).__name__),
        trials=trials,
        noise=noise,
        radius=radius,
        max_steps=max_steps,
        seed=seed,
        backend=target,
        criterion=criterion,
        delta=delta,
        noise_kind=noise_kind,
        batch=batch,
    )

    from .kernels import montecarlo as kernels

    if kind == "rule":
        launch = kernels.rule_trials(landscape_args, _optimizer_args(spec), noise_args, stop_args, buffers, target)
        params["lr"] = float(spec.lr)
    else:
        if target == "cuda":
            raise ValueError(
                "optimizer: Newton and saddle-free Newton run on backend='cpu' only (a dense "
                "eigendecomposition per step); use backend='cpu'"
            )
        lr, damping = spec
        method = kernels.DENSE_SADDLE_FREE if kind == "saddle_free_newton" else kernels.DENSE_NEWTON
        launch = kernels.dense_trials(landscape_args, method, lr, damping, noise_args, stop_args, buffers)
        params["lr"] = lr
    first_budget = _first_budget(max_steps, launch.lanes, launch.width)
    _run_in_slices(launch.advance, first_budget, max_steps, lambda: status, launch.rounds)
    if copies > 1:
        w, steps, status = (np.repeat(array, copies, axis=0) for array in (w, steps, status))
        if record:
            trajectories = np.repeat(trajectories, record, axis=0)

    return EscapeResult(
        steps=steps,
        escaped=status == rules.STATUS_ESCAPED,
        diverged=status == rules.STATUS_DIVERGED,
        final=w,
        trajectories=trajectories if record else None,
        trajectory_steps=np.arange(n_points, dtype=np.int64) * record_every if record else None,
        params=params,
    )


def _optimizer_args(spec):
    """The :class:`testbed.loops.montecarlo.OptimizerArgs` of a per-component rule's ``RuleSpec``; ``hyper`` a
    tuple of floats (Numba keeps a tuple in registers: see :func:`testbed.kernels.montecarlo.trials_cpu`)."""
    hyper = tuple(float(h) for h in np.asarray(spec.hyper, dtype=np.float64).ravel())
    if len(hyper) != optimizer_rules.HYPER_SIZE:
        raise ValueError(f"optimizer rule_spec().hyper must have {optimizer_rules.HYPER_SIZE} entries")
    schedule_params = np.ascontiguousarray(np.asarray(spec.schedule_params, dtype=np.float64))
    return loops.OptimizerArgs(int(spec.code), hyper, float(spec.lr), int(spec.schedule_code), schedule_params)
