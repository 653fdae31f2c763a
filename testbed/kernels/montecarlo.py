"""Monte Carlo trial kernels: one trial per CPU ``prange`` iteration, one per GPU thread.

Both run trials through the same rule, :func:`testbed.rules.montecarlo.run_trials`; every random number is
keyed by (seed, trial, step, coordinate), so the escape time of a trial does not depend on the target, the
thread count or the launch shape. The global arrays (``w``, ``s0..s2``; one row of length ``dim`` per trial)
are allocated by the caller, which also fills ``w`` with the starts; a running trial lives in its lane's column
of the per-lane scratch (``lane_state``, ``noise``).

The dense second-order methods (Newton, saddle-free Newton) couple the coordinates through the Hessian and are
run by :func:`dense_trials_cpu`, a CPU kernel that uses LAPACK's symmetric eigendecomposition per step (d is
small in the escape scenarios).
"""

import numpy as np
from numba import cuda, njit, prange, types

from .. import config
from ..rules import landscapes as landscape_rules
from ..rules import montecarlo as rules
from ..rules import rng as rng_rules
from .registry import gpu_kernel
from .targets import for_cpu, for_gpu

# NumPy's error model (no ZeroDivisionError branch), and the noise rule inlined (it is marked inline_on_cpu),
# so that the loop over a chunk's lanes (Philox, Box-Muller) compiles to SIMD code.
_run_trials_cpu = for_cpu(rules.run_trials, error_model="numpy")
_gradient_cpu = for_cpu(landscape_rules.gradient)
_hessian_cpu = for_cpu(landscape_rules.hessian)
_escaped_cpu = for_cpu(rules.escaped)
_normal4_cpu = for_cpu(rng_rules.normal4)
_minibatch_noise_cpu = for_cpu(rules.minibatch_noise)
_value_cpu = for_cpu(landscape_rules.value)
_noise_rows_cpu = for_cpu(rules.noise_rows)
_lane_state_rows_cpu = for_cpu(rules.lane_state_rows)

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


#: Rows of the per-lane scratch arrays (see testbed.rules.montecarlo).
noise_rows = rules.noise_rows
lane_state_rows = rules.lane_state_rows


def cpu_chunks(trials, threads, lanes=CPU_LANES):
    """How many chunks :func:`trials_cpu` splits ``trials`` into on ``threads`` threads (at least 1)."""
    return max(1, min(CHUNKS_PER_THREAD * threads, trials // (MIN_TRIALS_PER_LANE * lanes)))


@njit(parallel=True, error_model="numpy", **config.CPU_KERNEL_OPTIONS)
def trials_cpu(
    code,
    params,
    dim,
    opt_code,
    hyper,
    lr,
    schedule_code,
    schedule_params,
    noise_kind,
    sigma,
    batch,
    samples,
    seed,
    criterion,
    center,
    radius,
    delta,
    has_box,
    low,
    high,
    max_steps,
    w,
    s0,
    s1,
    s2,
    trajectories,
    record_every,
    n_record,
    lanes,
    chunks,
    steps,
    status,
    budget,
    progress,
    lane_states,
    lane_trials,
    lane_steps,
    lane_thresholds,
):
    """Run every trial: ``chunks`` contiguous chunks of trials, each run on ``lanes`` lanes by one ``prange``
    iteration (the caller sets a dynamic schedule, so a thread that is done takes the next chunk).

    ``hyper`` is the optimizer's hyperparameters as a tuple: Numba keeps a tuple in registers, and LLVM vectorises
    the update loop over lanes only when the rule's reads of ``hyper`` cannot alias the lanes' stores.
    Writes ``steps``, ``status`` and the final ``w``.

    One call is one slice of at most ``budget`` steps per lane (see :func:`testbed.rules.montecarlo.run_trials`):
    each chunk's place is kept in ``progress[chunk]`` (set to (0, -1) before the first call; (., 0) once the
    chunk is done) and its lanes' state in ``lane_states[chunk]`` (:func:`lane_state_rows` x lanes),
    ``lane_trials[chunk]``, ``lane_steps[chunk]`` and ``lane_thresholds[chunk]`` (each of length ``lanes``).
    """
    trials = w.shape[0]
    for chunk in prange(chunks):
        if progress[chunk, 1] == 0:
            continue
        first = chunk * trials // chunks
        last = (chunk + 1) * trials // chunks
        noise = np.zeros((_noise_rows_cpu(dim), lanes))  # refilled at every step: nothing to carry over
        _run_trials_cpu(
            first,
            last,
            lanes,
            code,
            params,
            dim,
            opt_code,
            hyper,
            lr,
            schedule_code,
            schedule_params,
            noise_kind,
            sigma,
            batch,
            samples,
            seed,
            criterion,
            center,
            radius,
            delta,
            has_box,
            low,
            high,
            max_steps,
            w,
            s0,
            s1,
            s2,
            noise,
            lane_trials[chunk],
            lane_steps[chunk],
            lane_thresholds[chunk],
            lane_states[chunk],
            trajectories,
            record_every,
            n_record,
            steps,
            status,
            budget,
            progress[chunk],
        )


def _trials_signatures():
    f64 = types.float64
    i64 = types.int64
    u64 = types.uint64
    vec = types.Array(f64, 1, "C")
    mat = types.Array(f64, 2, "C")
    cube = types.Array(f64, 3, "C")
    ints = types.Array(i64, 1, "C")
    return [
        (
            i64,
            vec,
            i64,
            i64,
            vec,
            f64,
            i64,
            vec,
            i64,
            f64,
            i64,
            mat,
            u64,
            i64,
            vec,
            f64,
            f64,
            types.boolean,
            f64,
            f64,
            i64,
            mat,
            mat,
            mat,
            mat,
            cube,
            ints,
            ints,
            vec,
            cube,
            cube,
            i64,
            i64,
            ints,
            types.Array(types.int8, 1, "C"),
            i64,
            types.Array(i64, 2, "C"),
        )
    ]


@gpu_kernel(_trials_signatures)
def trials_gpu():
    """The CUDA twin of :func:`trials_cpu`: a grid-stride loop over trials, one trial on one lane per thread.

    ``noise`` is (trials, noise_rows(dim), 1), ``lane_state`` (trials, lane_state_rows(dim), 1); ``lane_trial``,
    ``lane_step`` and ``thresholds`` have length ``trials``: each thread's scratch. One launch is one slice of at
    most ``budget`` steps per trial, each trial's place kept in ``progress[trial]`` (set to (0, -1) before the
    first launch; (., 0) once the trial is done), as in :func:`trials_cpu`.
    """
    run_trials = for_gpu(rules.run_trials)

    @cuda.jit
    def kernel(
        code,
        params,
        dim,
        opt_code,
        hyper,
        lr,
        schedule_code,
        schedule_params,
        noise_kind,
        sigma,
        batch,
        samples,
        seed,
        criterion,
        center,
        radius,
        delta,
        has_box,
        low,
        high,
        max_steps,
        w,
        s0,
        s1,
        s2,
        noise,
        lane_trial,
        lane_step,
        thresholds,
        lane_state,
        trajectories,
        record_every,
        n_record,
        steps,
        status,
        budget,
        progress,
    ):
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for trial in range(start, w.shape[0], stride):
            if progress[trial, 1] == 0:
                continue
            run_trials(
                trial,
                trial + 1,
                1,
                code,
                params,
                dim,
                opt_code,
                hyper,
                lr,
                schedule_code,
                schedule_params,
                noise_kind,
                sigma,
                batch,
                samples,
                seed,
                criterion,
                center,
                radius,
                delta,
                has_box,
                low,
                high,
                max_steps,
                w,
                s0,
                s1,
                s2,
                noise[trial],
                lane_trial[trial : trial + 1],
                lane_step[trial : trial + 1],
                thresholds[trial : trial + 1],
                lane_state[trial],
                trajectories,
                record_every,
                n_record,
                steps,
                status,
                budget,
                progress[trial],
            )

    return kernel


@njit(parallel=True, error_model="numpy", **config.CPU_KERNEL_OPTIONS)
def dense_trials_cpu(  # noqa: C901 (one fused loop: start, step, record and finish a trial)
    code,
    params,
    dim,
    method,
    lr,
    damping,
    noise_kind,
    sigma,
    batch,
    samples,
    seed,
    criterion,
    center,
    radius,
    delta,
    has_box,
    low,
    high,
    max_steps,
    w,
    trajectories,
    record_every,
    n_record,
    steps,
    status,
    budget,
    thresholds,
):
    """Newton (``w -= lr (H + damping I)^-1 g``) or saddle-free Newton (``w -= lr (|H| + damping I)^-1 g``,
    Dauphin et al. 2014) trials, as :class:`testbed.optim.Newton` and :class:`testbed.optim.SaddleFreeNewton`.

    H = V diag(lambda) V^T from LAPACK's eigendecomposition; Newton divides by lambda + damping, saddle-free
    Newton by |lambda| + damping (a zero divisor gives a non-finite step: the trial is reported as diverged).
    The gradient (with its noise, keyed exactly as in :func:`trials_cpu`) and the escape rules are the same.

    One call is one slice of at most ``budget`` steps per trial: the caller sets ``status`` to
    ``STATUS_PENDING`` before the first call; a trial in progress holds ``STATUS_RUNNING``, the steps taken in
    ``steps`` and f(w_0) - delta in ``thresholds`` (its iterate is its row of ``w``), so slices give the same bits
    as one call.
    """
    n_samples = samples.shape[0]
    for trial in prange(w.shape[0]):
        if status[trial] >= 0:
            continue
        x = w[trial : trial + 1]  # the trial's row, as a 1 x dim block for the rules
        recording = trial < n_record
        g = np.empty(dim)
        hessian = np.empty((dim, dim))
        if status[trial] == rules.STATUS_PENDING:
            thresholds[trial] = 0.0
            if criterion == rules.CRITERION_LOSS:
                thresholds[trial] = _value_cpu(code, x, 0, dim, params, 0) - delta
            if recording:
                for i in range(dim):
                    trajectories[trial, 0, i] = x[0, i]
            steps[trial] = 0
            status[trial] = rules.STATUS_RUNNING
            if _escaped_cpu(criterion, code, x, 0, dim, params, center, radius, thresholds[trial]):
                status[trial] = rules.STATUS_ESCAPED
                continue
        loss_threshold = thresholds[trial]
        first = steps[trial] + 1
        stop = min(max_steps, steps[trial] + budget)
        for t in range(first, stop + 1):
            z0 = 0.0
            z1 = 0.0
            z2 = 0.0
            z3 = 0.0
            for i in range(dim):
                gi = _gradient_cpu(code, x, 0, i, dim, params, t)
                if noise_kind == rules.NOISE_GAUSSIAN:
                    lane = i % 4
                    if lane == 0:
                        z0, z1, z2, z3 = _normal4_cpu(seed, trial, t, i // 4)
                        gi += sigma * z0
                    elif lane == 1:
                        gi += sigma * z1
                    elif lane == 2:
                        gi += sigma * z2
                    else:
                        gi += sigma * z3
                elif noise_kind == rules.NOISE_MINIBATCH:
                    gi += sigma * _minibatch_noise_cpu(seed, trial, t, i, batch, samples, n_samples)
                g[i] = gi
                for j in range(dim):
                    hessian[i, j] = _hessian_cpu(code, x, 0, i, j, dim, params, t)
            finite = True
            for i in range(dim):
                for j in range(dim):
                    if not np.isfinite(hessian[i, j]):
                        finite = False
            if finite:
                eigenvalues, vectors = np.linalg.eigh(hessian)
                projected = vectors.T @ g
                for k in range(dim):
                    lam = eigenvalues[k]
                    if method == DENSE_SADDLE_FREE:
                        lam = abs(lam)
                    projected[k] /= lam + damping
                step = vectors @ projected
                for i in range(dim):
                    xi = x[0, i] - lr * step[i]
                    if not np.isfinite(xi):
                        finite = False
                    elif has_box:
                        xi = min(max(xi, low), high)
                    x[0, i] = xi
            if recording and t % record_every == 0:
                for i in range(dim):
                    trajectories[trial, t // record_every, i] = x[0, i]
            steps[trial] = t
            if not finite:
                status[trial] = rules.STATUS_DIVERGED
                break
            if _escaped_cpu(criterion, code, x, 0, dim, params, center, radius, loss_threshold):
                status[trial] = rules.STATUS_ESCAPED
                break
        if status[trial] == rules.STATUS_RUNNING and steps[trial] >= max_steps:
            status[trial] = rules.STATUS_CENSORED
