"""Monte Carlo trial kernels and their launchers: a chunk of trials per call of the CPU kernel (the chunks run on
threads, :mod:`testbed.kernels.threads`), a trial per GPU thread, and the dense second-order methods on the CPU.

Both rule kernels run trials through the same loop body, :func:`testbed.loops.montecarlo.run_trials`; every
random number is keyed by (seed, trial, step, coordinate), so the escape time of a trial does not depend on the
target, the thread count or the launch shape. The arguments are the named tuples of :mod:`testbed.loops.montecarlo`
(landscape, optimizer, noise, stopping rule, per-trial buffers); the per-trial buffers are allocated by the caller,
which also fills ``w`` with the starts. :func:`rule_trials` and :func:`dense_trials` are the launchers, as
:func:`testbed.kernels.random.fill` is the fill kernel's: they allocate the lanes' scratch (and copy to the
device), pick the kernel for the target and return a :class:`Launch` whose ``advance(budget)`` runs one slice.

The dense second-order methods (Newton, saddle-free Newton) couple the coordinates through the Hessian and are
run by :func:`dense_trials_cpu`, a CPU kernel that uses LAPACK's symmetric eigendecomposition per step (d is
small in the escape scenarios; once per trial where the Hessian is constant); it starts, records and ends a trial
with the same loop bodies as the lanes.
"""

import collections
import math

import numba
import numpy as np
from numba import njit, prange, types

from .. import config
from ..loops import montecarlo as loops
from ..rules import landscapes as landscape_rules
from ..rules import montecarlo as rules
from ..rules import rng as rng_rules
from ..rules.optimizers import HYPER_SIZE
from . import ahead
from .registry import CUDA_NOT_IMPORTED, gpu_kernel
from .targets import for_cpu, for_gpu
from .threads import run_items

#: ``numba.cuda``, imported when the first CUDA kernel of this module is built (:mod:`testbed.kernels.registry`)
cuda = CUDA_NOT_IMPORTED

LandscapeArgs = loops.LandscapeArgs
OptimizerArgs = loops.OptimizerArgs
NoiseArgs = loops.NoiseArgs
StopArgs = loops.StopArgs
TrialBuffers = loops.TrialBuffers
LaneScratch = loops.LaneScratch

# NumPy's error model (no ZeroDivisionError branch), so that the loops over a chunk's lanes compile to SIMD code;
# which rules are inlined into the loop is the policy table's (testbed.kernels.policy).
_run_trials_cpu = for_cpu(loops.run_trials, error_model="numpy")
_queue_scratch_cpu = for_cpu(loops.queue_scratch, error_model="numpy", inline=True)
# The dense kernel starts, records and ends a trial with the lanes' loop bodies, compiled as the lanes' kernel
# compiles them (a trial's start and the escape test are calls there): one compiled copy serves both kernels.
_start_trial_cpu = for_cpu(loops.start_trial, error_model="numpy")
_record_point_cpu = for_cpu(loops.record_point, error_model="numpy")
_escaped_cpu = for_cpu(rules.escaped, error_model="numpy")
_stop_status_cpu = for_cpu(loops.stop_status, error_model="numpy", inline=True)
_gradient_cpu = for_cpu(landscape_rules.gradient)
_hessian_cpu = for_cpu(landscape_rules.hessian)
_constant_hessian_cpu = for_cpu(landscape_rules.constant_hessian)
_normal4_cpu = for_cpu(rng_rules.normal4)
_minibatch_noise_cpu = for_cpu(rules.minibatch_noise)

#: Dense method codes of :func:`dense_trials_cpu`.
DENSE_NEWTON = 0
DENSE_SADDLE_FREE = 1

#: Lanes of one CPU chunk in :func:`trials_cpu`: four AVX-512 (eight AVX2) registers of float64 per row of the
#: lane state, so the vectorised loops over lanes run several vectors per pass (d = 10 saddle benchmark, 1 thread,
#: Zen 3: 16 lanes 1.50 s, 32 lanes 1.21 s, 64 lanes 1.23 s; more lanes also idle longer at the end of a chunk).
CPU_LANES = 32

#: Chunks per thread: a few, so that threads that finish early take over work, and each long enough that the
#: end of a chunk (lanes idle while its last trials finish) is a small part of it.
CHUNKS_PER_THREAD = 4

#: Fewest trials per lane in a chunk (below that the idle end of a chunk would cost more than the balance gains).
MIN_TRIALS_PER_LANE = 16


#: Rows of the per-lane scratch arrays (see testbed.loops.montecarlo).
noise_rows = loops.noise_rows
lane_state_rows = loops.lane_state_rows

#: What a launcher returns: ``advance(budget)`` runs one slice of at most ``budget`` steps per lane, in place, and
#: returns True once every trial is done (then the outcome is in the caller's buffers, also on the GPU); ``lanes``
#: and ``width`` (coordinates per lane step) size the first slice; ``rounds`` is the most trials one lane runs.
Launch = collections.namedtuple("Launch", ["advance", "lanes", "width", "rounds"])


def cpu_chunks(trials, threads, lanes=CPU_LANES):
    """How many chunks :func:`trials_cpu` splits ``trials`` into on ``threads`` threads (at least 1): a multiple of
    ``threads`` when there are more chunks than threads, so that every thread runs as many chunks per slice (3
    chunks on 2 threads, the saddle scenario's 2,000 trials, left a core idle for a third of each slice)."""
    chunks = max(1, min(CHUNKS_PER_THREAD * threads, trials // (MIN_TRIALS_PER_LANE * lanes)))
    if chunks > threads:
        chunks -= chunks % threads
    return chunks


@njit(error_model="numpy", **config.CPU_KERNEL_OPTIONS)
def trials_cpu(landscape, optimizer, noise, stop, trials, scratch, budget, progress, chunk):
    """Run chunk ``chunk`` of the trials: ``progress.shape[0]`` contiguous chunks, each run on its lanes by one
    call (:func:`rule_trials` runs the chunks on threads, a thread that is done taking the next chunk).

    ``optimizer.hyper`` is a tuple: Numba keeps a tuple in registers, and LLVM vectorises the update loop over
    lanes only when the rule's reads of ``hyper`` cannot alias the lanes' stores.

    One call is one slice of at most ``budget`` steps per lane (see :func:`testbed.loops.montecarlo.run_trials`):
    the chunk's place is kept in ``progress[chunk]`` (set to (0, -1) before the first call; (., 0) once the
    chunk is done) and its lanes' state in row ``chunk`` of each array of ``scratch``.
    """
    if progress[chunk, 1] == 0:
        return
    n_trials = trials.w.shape[0]
    chunks = progress.shape[0]
    first = chunk * n_trials // chunks
    last = (chunk + 1) * n_trials // chunks
    lanes = _queue_scratch_cpu(scratch, chunk)
    _run_trials_cpu(first, last, landscape, optimizer, noise, stop, trials, lanes, budget, progress[chunk])


def _trials_signatures():
    f64, i64, u64 = types.float64, types.int64, types.uint64
    vec, mat, cube = (types.Array(f64, ndim, "C") for ndim in (1, 2, 3))
    ints, int_mat = types.Array(i64, 1, "C"), types.Array(i64, 2, "C")
    landscape = types.NamedTuple((i64, vec, i64, types.boolean, f64, f64), LandscapeArgs)
    optimizer = types.NamedTuple((i64, types.UniTuple(f64, HYPER_SIZE), f64, i64, vec), OptimizerArgs)
    noise = types.NamedTuple((i64, f64, i64, mat, u64), NoiseArgs)
    stop = types.NamedTuple((i64, vec, f64, f64, i64), StopArgs)
    buffers = types.NamedTuple(
        (mat, mat, mat, mat, ints, types.Array(types.int8, 1, "C"), cube, i64, i64), TrialBuffers
    )
    scratch = types.NamedTuple((int_mat, int_mat, mat, cube, cube), LaneScratch)
    return [(landscape, optimizer, noise, stop, buffers, scratch, i64, int_mat)]


@gpu_kernel(_trials_signatures)
def trials_gpu():
    """The CUDA twin of :func:`trials_cpu`: a grid-stride loop over trials, one trial on one lane per thread.

    Each array of ``scratch`` has a row per trial (one lane: ``trial`` is (trials, 1), ``state`` (trials,
    lane_state_rows(dim), 1), ...): each thread's scratch. One launch is one slice of at most ``budget`` steps per
    trial, each trial's place kept in ``progress[trial]`` (set to (0, -1) before the first launch; (., 0) once the
    trial is done), as in :func:`trials_cpu`.
    """
    run_trials = for_gpu(loops.run_trials)
    queue_scratch = for_gpu(loops.queue_scratch)

    @cuda.jit
    def kernel(landscape, optimizer, noise, stop, trials, scratch, budget, progress):
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for trial in range(start, trials.w.shape[0], stride):
            if progress[trial, 1] == 0:
                continue
            lanes = queue_scratch(scratch, trial)
            run_trials(trial, trial + 1, landscape, optimizer, noise, stop, trials, lanes, budget, progress[trial])

    return kernel


def _scratch(queues, lanes, dim):
    """Zeroed lanes' scratch for ``queues`` queues of ``lanes`` lanes (a :class:`LaneScratch` of arrays)."""
    return LaneScratch(
        trial=np.zeros((queues, lanes), dtype=np.int64),
        step=np.zeros((queues, lanes), dtype=np.int64),
        threshold=np.zeros((queues, lanes)),
        state=np.zeros((queues, lane_state_rows(dim), lanes)),
        draws=np.zeros((queues, noise_rows(dim), lanes)),
    )


def _fresh_progress(queues):
    progress = np.zeros((queues, 2), dtype=np.int64)
    progress[:, 1] = -1
    return progress


def rule_trials(landscape, optimizer, noise, stop, trials, target):
    """Launcher of the rule kernels: the trials of ``trials`` (a :class:`TrialBuffers` of NumPy arrays, ``w``
    holding the starts) with a per-component optimizer rule, on ``target`` ("cpu" or "cuda").

    ``optimizer.hyper`` is a tuple of :data:`testbed.rules.optimizers.HYPER_SIZE` floats. Returns a
    :class:`Launch`; the outcome lands in ``trials`` (``w``, ``steps``, ``status``, ``trajectories``), on the GPU
    copied back when the last slice ends (``status`` after every slice).
    """
    n_trials, dim = trials.w.shape
    if target == "cpu":
        lanes = CPU_LANES
        chunks = cpu_chunks(n_trials, numba.get_num_threads(), lanes)
        scratch = _scratch(chunks, lanes, dim)
        progress = _fresh_progress(chunks)

        ahead.wait("trials")  # a helper process compiling the kernel into the cache (testbed.warmup)

        def advance(budget):
            def work(first, last):
                for chunk in range(first, last):
                    trials_cpu(landscape, optimizer, noise, stop, trials, scratch, budget, progress, chunk)

            run_items(work, chunks)  # dynamic schedule: an idle thread takes the next chunk
            return not progress[:, 1].any()

        rounds = math.ceil(math.ceil(n_trials / chunks) / lanes)  # trials per lane of the largest chunk
        return Launch(advance, lanes, dim, rounds)

    from ..backend import launch_shape, to_device, to_host

    def on_device(arrays, names):
        return arrays._replace(**{name: to_device(getattr(arrays, name)) for name in names})

    d_landscape = on_device(landscape, ["params"])
    d_optimizer = on_device(optimizer, ["schedule_params"])
    d_noise = on_device(noise, ["samples"])
    d_stop = on_device(stop, ["center"])
    d_trials = on_device(trials, ["w", "s0", "s1", "s2", "steps", "status", "trajectories"])
    d_scratch = on_device(_scratch(n_trials, 1, dim), LaneScratch._fields)
    d_progress = to_device(_fresh_progress(n_trials))
    blocks, threads = launch_shape(n_trials)

    def advance(budget):
        trials_gpu()[blocks, threads](
            d_landscape, d_optimizer, d_noise, d_stop, d_trials, d_scratch, budget, d_progress
        )
        trials.status[...] = to_host(d_trials.status)  # waits for the launch
        done = bool(np.all(trials.status >= 0))
        if done:
            for name in ("w", "trajectories", "steps"):
                getattr(trials, name)[...] = to_host(getattr(d_trials, name))
        return done

    return Launch(advance, 1, dim, 1)


def dense_trials(landscape, method, lr, damping, noise, stop, trials):
    """Launcher of :func:`dense_trials_cpu` (Newton: ``method`` :data:`DENSE_NEWTON`; saddle-free Newton:
    :data:`DENSE_SADDLE_FREE`) on the trials of ``trials``, as :func:`rule_trials` (the slots ``s0..s2`` are not
    used and may have no rows)."""
    n_trials, dim = trials.w.shape
    trials.status[:] = rules.STATUS_PENDING
    thresholds = np.zeros(n_trials)
    ahead.wait("dense")  # a helper process compiling the kernel into the cache (testbed.warmup)

    def advance(budget):
        dense_trials_cpu(landscape, method, float(lr), float(damping), noise, stop, trials, budget, thresholds)
        return bool(np.all(trials.status >= 0))

    return Launch(advance, n_trials, dim * dim, 1)


# inlined into the kernel: compiled as one function, as the kernel was before it was split into these steps
@njit(error_model="numpy", inline="always")
def _noisy_gradient(trial, t, landscape, noise, x, g, hessian, with_hessian):
    """g = the gradient at ``x[trial]`` plus its noise (keyed exactly as in the lanes' kernels), and the Hessian
    when ``with_hessian``."""
    code, params, dim = landscape.code, landscape.params, landscape.dim
    n_samples = noise.samples.shape[0]
    z0 = 0.0
    z1 = 0.0
    z2 = 0.0
    z3 = 0.0
    for i in range(dim):
        gi = _gradient_cpu(code, x, trial, i, dim, params, t)
        if noise.kind == rules.NOISE_GAUSSIAN:
            lane = i % 4
            if lane == 0:
                z0, z1, z2, z3 = _normal4_cpu(noise.seed, trial, t, i // 4)
                gi += noise.sigma * z0
            elif lane == 1:
                gi += noise.sigma * z1
            elif lane == 2:
                gi += noise.sigma * z2
            else:
                gi += noise.sigma * z3
        elif noise.kind == rules.NOISE_MINIBATCH:
            gi += noise.sigma * _minibatch_noise_cpu(noise.seed, trial, t, i, noise.batch, noise.samples, n_samples)
        g[i] = gi
        if with_hessian:
            for j in range(dim):
                hessian[i, j] = _hessian_cpu(code, x, trial, i, j, dim, params, t)


@njit(error_model="numpy", inline="always")
def _all_finite(hessian):
    for value in hessian.flat:
        if not np.isfinite(value):
            return False
    return True


@njit(error_model="numpy", inline="always")
def _newton_step(trial, landscape, method, lr, damping, x, g, eigenvalues, vectors):
    """x[trial] -= lr (H + damping I)^-1 g (Newton) or lr (|H| + damping I)^-1 g (saddle-free), H = V diag(lambda)
    V^T given as ``eigenvalues`` and ``vectors``, projected onto the landscape's box; False when the new iterate is
    not finite (x is then left as it came)."""
    dim = landscape.dim
    projected = vectors.T @ g
    for k in range(dim):
        lam = eigenvalues[k]
        if method == DENSE_SADDLE_FREE:
            lam = abs(lam)
        projected[k] /= lam + damping
    step = vectors @ projected
    finite = True
    for i in range(dim):
        xi = x[trial, i] - lr * step[i]
        if not np.isfinite(xi):
            finite = False
        elif landscape.has_box:
            xi = min(max(xi, landscape.low), landscape.high)
        x[trial, i] = xi
    return finite


@njit(parallel=True, error_model="numpy", **config.CPU_KERNEL_OPTIONS)
def dense_trials_cpu(landscape, method, lr, damping, noise, stop, trials, budget, thresholds):
    """Newton (``w -= lr (H + damping I)^-1 g``) or saddle-free Newton (``w -= lr (|H| + damping I)^-1 g``,
    Dauphin et al. 2014) trials, as :class:`testbed.optim.Newton` and :class:`testbed.optim.SaddleFreeNewton`.

    H = V diag(lambda) V^T from LAPACK's eigendecomposition; Newton divides by lambda + damping, saddle-free
    Newton by |lambda| + damping (a zero divisor gives a non-finite step: the trial is reported as diverged).
    The gradient (with its noise, keyed exactly as in :func:`trials_cpu`), the start, the recording and the end
    of a trial are those of the lanes (:mod:`testbed.loops.montecarlo`).

    One call is one slice of at most ``budget`` steps per trial: the caller sets ``trials.status`` to
    ``STATUS_PENDING`` before the first call; a trial in progress holds ``STATUS_RUNNING``, the steps taken in
    ``steps`` and f(w_0) - delta in ``thresholds`` (its iterate is its row of ``w``), so slices give the same bits
    as one call.
    """
    dim = landscape.dim
    # the arrays this loop writes itself, taken out of the tuple before the parallel loop: Numba's parallel loop
    # loses a write through a tuple field in its body (measured: the trials' status and steps stayed unset)
    x, steps, status = trials.w, trials.steps, trials.status
    for index in prange(x.shape[0]):
        # a signed index, as the function's own typing of the loop has it: the parallel loop's is unsigned, and
        # every rule called with it would be compiled once for each
        trial = np.int64(index)
        if status[trial] >= 0:
            continue
        if status[trial] == rules.STATUS_PENDING:
            started, threshold = _start_trial_cpu(trial, landscape, stop, trials)
            thresholds[trial] = threshold
            if not started:
                continue
            steps[trial] = 0
            status[trial] = rules.STATUS_RUNNING
        g = np.empty(dim)
        hessian = np.empty((dim, dim))
        # A Hessian that depends neither on w nor on t (a quadratic landscape, the saddle's) is evaluated and
        # decomposed once per trial: the same matrix gives LAPACK's same bits, so the steps are those of an
        # evaluation and a decomposition per step, which cost 70 % of a step on the d = 10 saddle.
        constant = _constant_hessian_cpu(landscape.code)
        eigenvalues, vectors = np.empty(dim), np.empty((dim, dim)).T  # eigh's types (V Fortran-ordered), unset
        known = False
        last = min(stop.max_steps, steps[trial] + budget)
        for t in range(steps[trial] + 1, last + 1):
            fresh = not (known and constant)
            _noisy_gradient(trial, t, landscape, noise, x, g, hessian, fresh)
            finite = True
            if fresh:
                finite = _all_finite(hessian)
                if finite:
                    eigenvalues, vectors = np.linalg.eigh(hessian)
                    known = True
            if finite:
                finite = _newton_step(trial, landscape, method, lr, damping, x, g, eigenvalues, vectors)
            _record_point_cpu(trials, trial, t, x, trial)
            escaped_now = finite and _escaped_cpu(
                stop.criterion,
                landscape.code,
                x,
                trial,
                dim,
                landscape.params,
                stop.center,
                stop.radius,
                thresholds[trial],
            )
            steps[trial] = t
            outcome = _stop_status_cpu(finite, escaped_now, t, stop.max_steps)
            if outcome != rules.STATUS_RUNNING:
                status[trial] = outcome
                break
