"""Monte Carlo trial kernels: one trial per CPU ``prange`` iteration, one per GPU thread.

Both loop over trials around the same rule, :func:`testbed.rules.montecarlo.run_trial`; every random number is
keyed by (seed, trial, step, coordinate), so the escape time of a trial does not depend on the target, the
thread count or the launch shape. The scratch arrays (``w``, ``g``, ``s0..s2``; one row of length ``dim`` per
trial) are allocated by the caller, which also fills ``w`` with the starts.

The dense second-order methods (Newton, saddle-free Newton) couple the coordinates through the Hessian and are
run by :func:`dense_trials_cpu`, a CPU kernel that uses LAPACK's symmetric eigendecomposition per step (d is
small in the escape scenarios).
"""
import numpy as np
from numba import types

from numba import cuda, njit, prange

from .. import config
from ..rules import landscapes as landscape_rules
from ..rules import montecarlo as rules
from ..rules import rng as rng_rules
from .registry import gpu_kernel
from .targets import for_cpu, for_gpu

_run_trial_cpu = for_cpu(rules.run_trial)
_gradient_cpu = for_cpu(landscape_rules.gradient)
_hessian_cpu = for_cpu(landscape_rules.hessian)
_escaped_cpu = for_cpu(rules.escaped)
_normal4_cpu = for_cpu(rng_rules.normal4)
_minibatch_noise_cpu = for_cpu(rules.minibatch_noise)
_value_cpu = for_cpu(landscape_rules.value)

#: Dense method codes of :func:`dense_trials_cpu`.
DENSE_NEWTON = 0
DENSE_SADDLE_FREE = 1


@njit(parallel=True, **config.CPU_KERNEL_OPTIONS)
def trials_cpu(
    code, params, dim,
    opt_code, hyper, lr, schedule_code, schedule_params,
    noise_kind, sigma, batch, samples, seed,
    criterion, center, radius, delta, has_box, low, high, max_steps,
    w, g, s0, s1, s2, trajectories, record_every, n_record,
    steps, status,
):
    """Run every trial (one per ``prange`` iteration): ``steps[k], status[k]`` of trial k, final w in ``w[k]``."""
    for trial in prange(w.shape[0]):
        recording = trial < n_record
        trajectory = trajectories[trial] if recording else trajectories[0]
        steps[trial], status[trial] = _run_trial_cpu(
            trial, code, params, dim,
            opt_code, hyper, lr, schedule_code, schedule_params,
            noise_kind, sigma, batch, samples, seed,
            criterion, center, radius, delta, has_box, low, high, max_steps,
            w[trial], g[trial], s0[trial], s1[trial], s2[trial], trajectory, record_every, recording,
        )


def _trials_signatures():
    f64 = types.float64
    i64 = types.int64
    u64 = types.uint64
    vec = types.Array(f64, 1, "C")
    mat = types.Array(f64, 2, "C")
    cube = types.Array(f64, 3, "C")
    return [(
        i64, vec, i64,
        i64, vec, f64, i64, vec,
        i64, f64, i64, mat, u64,
        i64, vec, f64, f64, types.boolean, f64, f64, i64,
        mat, mat, mat, mat, mat, cube, i64, i64,
        types.Array(i64, 1, "C"), types.Array(types.int8, 1, "C"),
    )]


@gpu_kernel(_trials_signatures)
def trials_gpu():
    """The CUDA twin of :func:`trials_cpu`: a grid-stride loop over trials, one trial per thread."""
    run_trial = for_gpu(rules.run_trial)

    @cuda.jit
    def kernel(
        code, params, dim,
        opt_code, hyper, lr, schedule_code, schedule_params,
        noise_kind, sigma, batch, samples, seed,
        criterion, center, radius, delta, has_box, low, high, max_steps,
        w, g, s0, s1, s2, trajectories, record_every, n_record,
        steps, status,
    ):
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for trial in range(start, w.shape[0], stride):
            recording = trial < n_record
            trajectory = trajectories[trial] if recording else trajectories[0]
            n, s = run_trial(
                trial, code, params, dim,
                opt_code, hyper, lr, schedule_code, schedule_params,
                noise_kind, sigma, batch, samples, seed,
                criterion, center, radius, delta, has_box, low, high, max_steps,
                w[trial], g[trial], s0[trial], s1[trial], s2[trial], trajectory, record_every, recording,
            )
            steps[trial] = n
            status[trial] = s

    return kernel


@njit(parallel=True, **config.CPU_KERNEL_OPTIONS)
def dense_trials_cpu(
    code, params, dim, method, lr, damping,
    noise_kind, sigma, batch, samples, seed,
    criterion, center, radius, delta, has_box, low, high, max_steps,
    w, trajectories, record_every, n_record,
    steps, status,
):
    """Newton (``w -= lr H^-1 g``) or saddle-free Newton (``w -= lr |H|^-1 g``, Dauphin et al. 2014) trials.

    H = V diag(lambda) V^T from LAPACK's eigendecomposition; Newton inverts lambda, saddle-free Newton |lambda|,
    each floored at ``damping`` in magnitude (Newton keeps the sign) so a singular Hessian gives a finite step.
    The gradient (with its noise, keyed exactly as in :func:`trials_cpu`) and the escape rules are the same.
    """
    n_samples = samples.shape[0]
    for trial in prange(w.shape[0]):
        x = w[trial]
        recording = trial < n_record
        g = np.empty(dim)
        hessian = np.empty((dim, dim))
        loss_threshold = 0.0
        if criterion == rules.CRITERION_LOSS:
            loss_threshold = _value_cpu(code, x, dim, params, 0) - delta
        if recording:
            for i in range(dim):
                trajectories[trial, 0, i] = x[i]
        steps[trial] = max_steps
        status[trial] = rules.STATUS_CENSORED
        if _escaped_cpu(criterion, code, x, dim, params, center, radius, loss_threshold):
            steps[trial] = 0
            status[trial] = rules.STATUS_ESCAPED
            continue
        for t in range(1, max_steps + 1):
            z0 = 0.0
            z1 = 0.0
            z2 = 0.0
            z3 = 0.0
            for i in range(dim):
                gi = _gradient_cpu(code, x, i, dim, params, t)
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
                    hessian[i, j] = _hessian_cpu(code, x, i, j, dim, params, t)
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
                    if abs(lam) < damping:
                        lam = -damping if lam < 0.0 else damping
                    projected[k] /= lam
                step = vectors @ projected
                for i in range(dim):
                    xi = x[i] - lr * step[i]
                    if not np.isfinite(xi):
                        finite = False
                    elif has_box:
                        xi = min(max(xi, low), high)
                    x[i] = xi
            if recording and t % record_every == 0:
                for i in range(dim):
                    trajectories[trial, t // record_every, i] = x[i]
            if not finite:
                steps[trial] = t
                status[trial] = rules.STATUS_DIVERGED
                break
            if _escaped_cpu(criterion, code, x, dim, params, center, radius, loss_threshold):
                steps[trial] = t
                status[trial] = rules.STATUS_ESCAPED
                break
