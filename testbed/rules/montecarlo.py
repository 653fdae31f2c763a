"""One Monte Carlo trial of an optimizer on a landscape, as a rule compiled for both targets.

:func:`run_block` is the whole life of a few trials run side by side (one on the GPU, a block of SIMD lanes on
the CPU): each trial starts at its row of ``w`` (filled by the caller), and repeats

    t += 1
    g_i = df_t/dw_i(w) + noise_i(seed, trial, t)          for every i, at the current w
    (w_i, s0_i, s1_i, s2_i) = optimizer update             per component (testbed.rules.optimizers)
    w = clip(w, low, high)                                 only for a landscape on a box (Reddi)

until the escape criterion holds, an iterate is not finite (divergence) or ``t`` reaches ``max_steps``
(censoring). The CPU kernel runs one block of trials per ``prange`` iteration, the GPU kernel one trial per
thread; both call this rule, so both targets do the same arithmetic in the same order.

Noise (the keys make every draw a pure function of (seed, trial, step, coordinate), whatever the thread):

- ``NOISE_GAUSSIAN``: ``noise_i = sigma z_i``, z_i standard normal: draw ``i`` of stream ``trial`` at step ``t`` of
  :mod:`testbed.rules.rng` (all four words of a Philox block serve four coordinates: two Box-Muller pairs whose
  log, sin and cos are polynomials, so the CPU loop over trials vectorises).
- ``NOISE_MINIBATCH``: a finite sum of ``n`` per-sample losses ``f_k(w) = f(w) + sigma a_k . w`` whose directions
  ``a_k`` (rows of ``samples``) are centred (sum_k a_k = 0, so the full-batch gradient is exactly grad f) and have
  unit variance per coordinate. A minibatch draws ``batch`` sample indices uniformly with replacement (Philox
  uniforms, blocks ``2**32 + j // 4`` of the same stream) and uses ``noise = sigma mean_{k in B} a_k``, of
  covariance ``sigma^2 / batch`` times the empirical covariance of the a_k. For a quadratic landscape this is
  the same as per-sample quadratics with shifted centres.

Escape criteria (checked at t = 0 and after every step): ``CRITERION_RADIUS`` |w - center| > R;
``CRITERION_LOSS`` f(w) < f(w_0) - delta (f at t = 0, the average for the online loss); ``CRITERION_CONVERGE``
|w - center| < R (``center`` is then the target); ``CRITERION_NONE`` never (run the whole budget).

Trial status: ``STATUS_CENSORED`` (budget spent), ``STATUS_ESCAPED``, ``STATUS_DIVERGED`` (a non-finite iterate;
``steps`` is the step where it appeared).
"""
import math

from .landscapes import gradient as landscape_gradient
from .landscapes import value as landscape_value
from .optimizers import H_INIT0, H_INIT1, H_INIT2
from .optimizers import prepare as optimizer_prepare
from .optimizers import update as optimizer_update
from .rng import normal4, uniform4
from .schedules import learning_rate

NOISE_NONE = 0
NOISE_GAUSSIAN = 1
NOISE_MINIBATCH = 2

CRITERION_RADIUS = 0
CRITERION_LOSS = 1
CRITERION_CONVERGE = 2
CRITERION_NONE = 3

STATUS_CENSORED = 0
STATUS_ESCAPED = 1
STATUS_DIVERGED = 2
#: A trial still running (inside :func:`run_block` only; never returned).
STATUS_RUNNING = -1

#: Philox block offset of the minibatch index draws (the high counter word is 1; coordinate noise uses 0).
MINIBATCH_BLOCK_OFFSET = 2**32

def escaped(criterion, code, w, row, dim, params, center, radius, loss_threshold):
    """True when the escape criterion holds at ``w[row]``."""
    if criterion == CRITERION_NONE:
        return False
    if criterion == CRITERION_LOSS:
        return landscape_value(code, w, row, dim, params, 0) < loss_threshold
    distance2 = 0.0
    for i in range(dim):
        offset = w[row, i] - center[i]
        distance2 += offset * offset
    if criterion == CRITERION_RADIUS:
        return distance2 > radius * radius
    return distance2 < radius * radius


def minibatch_noise(seed, trial, step, i, batch, samples, n_samples):
    """mean_{k in B} a_k[i] for the minibatch B of (trial, step): ``batch`` indices drawn with replacement."""
    total = 0.0
    for j in range(0, batch, 4):
        u0, u1, u2, u3 = uniform4(seed, trial, step, MINIBATCH_BLOCK_OFFSET + j // 4)
        total += samples[min(int(u0 * n_samples), n_samples - 1), i]
        if j + 1 < batch:
            total += samples[min(int(u1 * n_samples), n_samples - 1), i]
        if j + 2 < batch:
            total += samples[min(int(u2 * n_samples), n_samples - 1), i]
        if j + 3 < batch:
            total += samples[min(int(u3 * n_samples), n_samples - 1), i]
    return total / batch


def fill_noise(seed, first, lanes, step, n_blocks, noise):
    """noise[4 b + k, lane] = draw k of :func:`testbed.rules.rng.normal4` (seed, trial first + lane, step, block b).

    Every lane, finished or not: a branch-free loop over lanes is what LLVM vectorises (``inline_on_cpu``
    asks :mod:`testbed.kernels.targets` to inline this rule and Philox into it on the CPU).
    """
    for block in range(n_blocks):
        row = 4 * block
        for lane in range(lanes):
            z0, z1, z2, z3 = normal4(seed, first + lane, step, block)
            noise[row, lane] = z0
            noise[row + 1, lane] = z1
            noise[row + 2, lane] = z2
            noise[row + 3, lane] = z3


fill_noise.inline_on_cpu = True


def record(trajectories, trial, point, w, row, dim):
    """Copy ``w[row]`` into ``trajectories[trial, point]``."""
    for i in range(dim):
        trajectories[trial, point, i] = w[row, i]


def run_block(
    first, lanes, code, params, dim,
    opt_code, hyper, lr, schedule_code, schedule_params,
    noise_kind, sigma, batch, samples, seed,
    criterion, center, radius, delta, has_box, low, high, max_steps,
    w, g, s0, s1, s2, noise, thresholds, trajectories, record_every, n_record, steps, status,
):
    """Run trials ``first .. first + lanes - 1`` side by side, from ``w`` (updated in place).

    ``w, g, s0, s1, s2``: the block's rows (``lanes`` x ``dim``); ``noise``: scratch of shape
    (4 ceil(dim / 4), >= lanes); ``thresholds``: scratch of length >= lanes. Writes ``steps[trial]`` and
    ``status[trial]`` (global arrays) and, for trials below ``n_record``, ``trajectories[trial, k]`` = w at step
    k ``record_every``. The GPU runs one lane per thread; the CPU a block of lanes per iteration, so that the
    noise of all lanes is drawn in one loop that LLVM turns into SIMD code. Each lane's arithmetic is the same
    either way.
    """
    n_blocks = (dim + 3) // 4
    n_samples = samples.shape[0]
    running = 0
    for lane in range(lanes):
        trial = first + lane
        for i in range(dim):
            s0[lane, i] = hyper[H_INIT0]
            s1[lane, i] = hyper[H_INIT1]
            s2[lane, i] = hyper[H_INIT2]
        thresholds[lane] = 0.0
        if criterion == CRITERION_LOSS:
            thresholds[lane] = landscape_value(code, w, lane, dim, params, 0) - delta
        if trial < n_record:
            record(trajectories, trial, 0, w, lane, dim)
        if escaped(criterion, code, w, lane, dim, params, center, radius, thresholds[lane]):
            steps[trial] = 0
            status[trial] = STATUS_ESCAPED
        else:
            steps[trial] = max_steps
            status[trial] = STATUS_RUNNING
            running += 1
    t = 0
    while running > 0 and t < max_steps:
        t += 1
        if noise_kind == NOISE_GAUSSIAN:
            fill_noise(seed, first, lanes, t, n_blocks, noise)
        rate = learning_rate(schedule_code, schedule_params, lr, t)
        c0, c1, c2, c3 = optimizer_prepare(opt_code, hyper, t, rate)
        for lane in range(lanes):
            trial = first + lane
            if status[trial] != STATUS_RUNNING:
                continue
            for i in range(dim):
                gi = landscape_gradient(code, w, lane, i, dim, params, t)
                if noise_kind == NOISE_GAUSSIAN:
                    gi += sigma * noise[i, lane]
                elif noise_kind == NOISE_MINIBATCH:
                    gi += sigma * minibatch_noise(seed, trial, t, i, batch, samples, n_samples)
                g[lane, i] = gi
            finite = True
            distance2 = 0.0  # |w - center|^2, for the radius criterion, fused into the update
            for i in range(dim):
                wi, a, b, c = optimizer_update(opt_code, hyper, c0, c1, c2, c3, w[lane, i], g[lane, i],
                                               s0[lane, i], s1[lane, i], s2[lane, i])
                if has_box:
                    if math.isfinite(wi):  # checked before the projection, which could hide a NaN
                        wi = min(max(wi, low), high)
                    else:
                        finite = False
                w[lane, i] = wi
                s0[lane, i] = a
                s1[lane, i] = b
                s2[lane, i] = c
                offset = wi - center[i]
                distance2 += offset * offset
            if not math.isfinite(distance2):  # a non-finite iterate, or |w| beyond 1e154: look at each one
                for i in range(dim):
                    if not math.isfinite(w[lane, i]):
                        finite = False
            if trial < n_record and t % record_every == 0:
                record(trajectories, trial, t // record_every, w, lane, dim)
            if not finite:
                steps[trial] = t
                status[trial] = STATUS_DIVERGED
                running -= 1
            elif criterion == CRITERION_RADIUS:
                if distance2 > radius * radius:  # the same sum, in the same order, as escaped() forms
                    steps[trial] = t
                    status[trial] = STATUS_ESCAPED
                    running -= 1
            elif escaped(criterion, code, w, lane, dim, params, center, radius, thresholds[lane]):
                steps[trial] = t
                status[trial] = STATUS_ESCAPED
                running -= 1
    for lane in range(lanes):
        if status[first + lane] == STATUS_RUNNING:
            status[first + lane] = STATUS_CENSORED


# On the CPU, the landscape, optimizer and noise rules are inlined into the trial loop (a call per coordinate
# and step costs more than the arithmetic), see testbed.kernels.targets.
run_block.inline_callees_on_cpu = True
# ... and compiled without reference counting: the inlined rules' array arguments would otherwise update one
# shared counter atomically on every call, which serialises the threads.
run_block.no_refcount_on_cpu = True
