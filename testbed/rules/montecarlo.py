"""One Monte Carlo trial of an optimizer on a landscape, as a rule compiled for both targets.

:func:`run_trial` is the whole life of trial ``trial``: it starts at ``w`` (filled by the caller), and repeats

    t += 1
    g_i = df_t/dw_i(w) + noise_i(seed, trial, t)          for every i, at the current w
    (w_i, s0_i, s1_i, s2_i) = optimizer update             per component (testbed.rules.optimizers)
    w = clip(w, low, high)                                 only for a landscape on a box (Reddi)

until the escape criterion holds, an iterate is not finite (divergence) or ``t`` reaches ``max_steps``
(censoring). The CPU kernel runs one trial per ``prange`` iteration, the GPU kernel one per thread; both call
this rule, so both targets do the same arithmetic in the same order.

Noise (the keys make every draw a pure function of (seed, trial, step, coordinate), whatever the thread):

- ``NOISE_GAUSSIAN``: ``noise_i = sigma z_i``, z_i standard normal: lane ``i % 4`` of Philox block ``i // 4`` of
  stream ``trial`` at step ``t`` (all four words of a block serve four coordinates, two Box-Muller pairs).
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

#: Philox block offset of the minibatch index draws (the high counter word is 1; coordinate noise uses 0).
MINIBATCH_BLOCK_OFFSET = 2**32


def escaped(criterion, code, w, dim, params, center, radius, loss_threshold):
    """True when the escape criterion holds at ``w``."""
    if criterion == CRITERION_NONE:
        return False
    if criterion == CRITERION_LOSS:
        return landscape_value(code, w, dim, params, 0) < loss_threshold
    distance2 = 0.0
    for i in range(dim):
        offset = w[i] - center[i]
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


def record(trajectory, row, w, dim):
    """Copy ``w`` into ``trajectory[row]``."""
    for i in range(dim):
        trajectory[row, i] = w[i]


def run_trial(
    trial, code, params, dim,
    opt_code, hyper, lr, schedule_code, schedule_params,
    noise_kind, sigma, batch, samples, seed,
    criterion, center, radius, delta, has_box, low, high, max_steps,
    w, g, s0, s1, s2, trajectory, record_every, recording,
):
    """Run one trial from ``w`` (updated in place); returns ``(steps, status)``.

    ``g, s0, s1, s2`` are the trial's scratch arrays of length ``dim``; ``trajectory`` (rows of length ``dim``)
    receives w at t = 0, record_every, 2 record_every, ... when ``recording`` is true.
    """
    n_samples = samples.shape[0]
    init0 = hyper[H_INIT0]
    init1 = hyper[H_INIT1]
    init2 = hyper[H_INIT2]
    for i in range(dim):
        s0[i] = init0
        s1[i] = init1
        s2[i] = init2
    loss_threshold = 0.0
    if criterion == CRITERION_LOSS:
        loss_threshold = landscape_value(code, w, dim, params, 0) - delta
    if recording:
        record(trajectory, 0, w, dim)
    if escaped(criterion, code, w, dim, params, center, radius, loss_threshold):
        return 0, STATUS_ESCAPED
    for t in range(1, max_steps + 1):
        z0 = 0.0
        z1 = 0.0
        z2 = 0.0
        z3 = 0.0
        for i in range(dim):
            gi = landscape_gradient(code, w, i, dim, params, t)
            if noise_kind == NOISE_GAUSSIAN:
                lane = i % 4
                if lane == 0:
                    z0, z1, z2, z3 = normal4(seed, trial, t, i // 4)
                    gi += sigma * z0
                elif lane == 1:
                    gi += sigma * z1
                elif lane == 2:
                    gi += sigma * z2
                else:
                    gi += sigma * z3
            elif noise_kind == NOISE_MINIBATCH:
                gi += sigma * minibatch_noise(seed, trial, t, i, batch, samples, n_samples)
            g[i] = gi
        rate = learning_rate(schedule_code, schedule_params, lr, t)
        c0, c1, c2, c3 = optimizer_prepare(opt_code, hyper, t, rate)
        finite = True
        for i in range(dim):
            wi, a, b, c = optimizer_update(opt_code, hyper, c0, c1, c2, c3, w[i], g[i], s0[i], s1[i], s2[i])
            if not math.isfinite(wi):
                finite = False  # checked before the projection, which could hide a NaN
            elif has_box:
                wi = min(max(wi, low), high)
            w[i] = wi
            s0[i] = a
            s1[i] = b
            s2[i] = c
        if recording and t % record_every == 0:
            record(trajectory, t // record_every, w, dim)
        if not finite:
            return t, STATUS_DIVERGED
        if escaped(criterion, code, w, dim, params, center, radius, loss_threshold):
            return t, STATUS_ESCAPED
    return max_steps, STATUS_CENSORED
