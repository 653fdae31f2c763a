"""One Monte Carlo trial of an optimizer on a landscape, as a rule compiled for both targets.

:func:`run_trials` is the whole life of a queue of trials run on a few lanes (one lane on the GPU, a handful of SIMD
lanes on the CPU, where a lane takes the next trial as soon as its own ends): each trial starts at its row of
``w`` (filled by the caller), and repeats

    t += 1
    g_i = df_t/dw_i(w) + noise_i(seed, trial, t)          for every i, at the current w
    (w_i, s0_i, s1_i, s2_i) = optimizer update             per component (testbed.rules.optimizers)
    w = clip(w, low, high)                                 only for a landscape on a box (Reddi)

until the escape criterion holds, an iterate is not finite (divergence) or ``t`` reaches ``max_steps``
(censoring). The CPU kernel runs one chunk of trials per ``prange`` iteration, the GPU kernel one trial per
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
from .rng import normal2, normal4, uniform4
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
#: A trial still running (inside :func:`run_trials` only; never returned).
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


def fill_noise(seed, lane_trial, lane_step, lanes, dim, noise):
    """noise[4 b + k, lane] = draw k of :func:`testbed.rules.rng.normal4` (seed, lane's trial, lane's next step, b)
    for the ``dim`` coordinates (a last block that needs at most two draws computes one Box-Muller pair only).

    Every lane, busy or idle: a branch-free loop over lanes is what LLVM vectorises. The lanes' trials and steps differ,
    which costs the vector loop nothing: they are loaded like any other per-lane operand.
    """
    for block in range((dim + 3) // 4):
        row = 4 * block
        if dim - row > 2:
            for lane in range(lanes):
                z0, z1, z2, z3 = normal4(seed, lane_trial[lane], lane_step[lane] + 1, block)
                noise[row, lane] = z0
                noise[row + 1, lane] = z1
                noise[row + 2, lane] = z2
                noise[row + 3, lane] = z3
        else:
            for lane in range(lanes):
                z0, z1 = normal2(seed, lane_trial[lane], lane_step[lane] + 1, block)
                noise[row, lane] = z0
                noise[row + 1, lane] = z1


# On the CPU: a function of its own (inlined into run_trials, the vectorised loop draws half as fast), with Philox
# and Box-Muller inlined into it (a loop that calls a function is not vectorised). See testbed.kernels.targets.
fill_noise.call_on_cpu = True
fill_noise.inline_callees_on_cpu = True


def record(trajectories, trial, point, w, dim):
    """Copy ``w[trial]`` into ``trajectories[trial, point]``."""
    for i in range(dim):
        trajectories[trial, point, i] = w[trial, i]


def start_trial(
    trial, code, params, dim, hyper, criterion, center, radius, delta, w, s0, s1, s2, trajectories, n_record,
    steps, status,
):
    """Set up ``trial`` at its start ``w[trial]``: optimizer slots, trajectory point 0, the escape check at t = 0.

    Returns ``(started, loss_threshold)``: ``started`` is False when the trial has escaped already at t = 0 (its
    ``steps`` and ``status`` are then final); ``loss_threshold`` is f(w_0) - delta for ``CRITERION_LOSS``.
    """
    for i in range(dim):
        s0[trial, i] = hyper[H_INIT0]
        s1[trial, i] = hyper[H_INIT1]
        s2[trial, i] = hyper[H_INIT2]
    threshold = 0.0
    if criterion == CRITERION_LOSS:
        threshold = landscape_value(code, w, trial, dim, params, 0) - delta
    if trial < n_record:
        record(trajectories, trial, 0, w, dim)
    if escaped(criterion, code, w, trial, dim, params, center, radius, threshold):
        steps[trial] = 0
        status[trial] = STATUS_ESCAPED
        return False, threshold
    return True, threshold


def take_next_trial(
    lane, upcoming, last, code, params, dim, hyper, criterion, center, radius, delta, w, s0, s1, s2,
    trajectories, n_record, steps, status, lane_trial, lane_step, thresholds,
):
    """Give ``lane`` the first trial from ``upcoming`` on (below ``last``) that does not escape at t = 0.

    Returns the new ``upcoming``. A lane left without a trial holds ``last`` in ``lane_trial`` (idle).
    """
    while upcoming < last:
        trial = upcoming
        upcoming += 1
        started, threshold = start_trial(trial, code, params, dim, hyper, criterion, center, radius, delta,
                                         w, s0, s1, s2, trajectories, n_record, steps, status)
        if started:
            lane_trial[lane] = trial
            lane_step[lane] = 0
            thresholds[lane] = threshold
            return upcoming
    lane_trial[lane] = last
    lane_step[lane] = 0
    return upcoming


def run_trials(
    first, last, lanes, code, params, dim,
    opt_code, hyper, lr, schedule_code, schedule_params,
    noise_kind, sigma, batch, samples, seed,
    criterion, center, radius, delta, has_box, low, high, max_steps,
    w, g, s0, s1, s2, noise, lane_trial, lane_step, thresholds, trajectories, record_every, n_record,
    steps, status,
):
    """Run trials ``first .. last - 1`` on ``lanes`` lanes; a lane whose trial ends takes the next one.

    ``w, g, s0, s1, s2`` are the global (trials x dim) arrays; each trial starts at its row of ``w`` (filled by
    the caller), which ends as its final iterate. Scratch: ``noise`` (4 ceil(dim / 4) x lanes), ``lane_trial``,
    ``lane_step`` (int64) and ``thresholds`` (float64), each of length ``lanes``. Writes ``steps[trial]``,
    ``status[trial]`` and, for trials below ``n_record``, ``trajectories[trial, k]`` = w at step k ``record_every``.

    The GPU runs one trial on one lane per thread. The CPU runs many trials on a few lanes per ``prange``
    iteration: the noise of all lanes is drawn in one loop that LLVM turns into SIMD code, and since every lane
    keeps its own step count, a lane never waits for a slower trial (a lockstep block of 8 trials would idle
    a quarter of its lanes on this escape-time spread). Each trial's arithmetic is the same either way.
    """
    n_samples = samples.shape[0]
    upcoming = first
    running = 0
    for lane in range(lanes):
        upcoming = take_next_trial(lane, upcoming, last, code, params, dim, hyper, criterion, center, radius,
                                   delta, w, s0, s1, s2, trajectories, n_record, steps, status,
                                   lane_trial, lane_step, thresholds)
        if lane_trial[lane] < last:
            running += 1
    while running > 0:
        if noise_kind == NOISE_GAUSSIAN:
            fill_noise(seed, lane_trial, lane_step, lanes, dim, noise)
        for lane in range(lanes):
            trial = lane_trial[lane]
            if trial >= last:
                continue
            t = lane_step[lane] + 1
            lane_step[lane] = t
            rate = learning_rate(schedule_code, schedule_params, lr, t)
            c0, c1, c2, c3 = optimizer_prepare(opt_code, hyper, t, rate)
            for i in range(dim):
                gi = landscape_gradient(code, w, trial, i, dim, params, t)
                if noise_kind == NOISE_GAUSSIAN:
                    gi += sigma * noise[i, lane]
                elif noise_kind == NOISE_MINIBATCH:
                    gi += sigma * minibatch_noise(seed, trial, t, i, batch, samples, n_samples)
                g[trial, i] = gi
            finite = True
            distance2 = 0.0  # |w - center|^2, for the radius criterion, fused into the update
            for i in range(dim):
                wi, a, b, c = optimizer_update(opt_code, hyper, c0, c1, c2, c3, w[trial, i], g[trial, i],
                                               s0[trial, i], s1[trial, i], s2[trial, i])
                if has_box:
                    if math.isfinite(wi):  # checked before the projection, which could hide a NaN
                        wi = min(max(wi, low), high)
                    else:
                        finite = False
                w[trial, i] = wi
                s0[trial, i] = a
                s1[trial, i] = b
                s2[trial, i] = c
                offset = wi - center[i]
                distance2 += offset * offset
            if not math.isfinite(distance2):  # a non-finite iterate, or |w| beyond 1e154: look at each one
                for i in range(dim):
                    if not math.isfinite(w[trial, i]):
                        finite = False
            if trial < n_record and t % record_every == 0:
                record(trajectories, trial, t // record_every, w, dim)
            outcome = STATUS_RUNNING
            if not finite:
                outcome = STATUS_DIVERGED
            elif criterion == CRITERION_RADIUS:
                if distance2 > radius * radius:  # the same sum, in the same order, as escaped() forms
                    outcome = STATUS_ESCAPED
            elif escaped(criterion, code, w, trial, dim, params, center, radius, thresholds[lane]):
                outcome = STATUS_ESCAPED
            if outcome == STATUS_RUNNING and t >= max_steps:
                outcome = STATUS_CENSORED
            if outcome != STATUS_RUNNING:
                steps[trial] = t
                status[trial] = outcome
                upcoming = take_next_trial(lane, upcoming, last, code, params, dim, hyper, criterion, center,
                                           radius, delta, w, s0, s1, s2, trajectories, n_record, steps, status,
                                           lane_trial, lane_step, thresholds)
                if lane_trial[lane] >= last:
                    running -= 1


# On the CPU, the landscape, optimizer and noise rules are inlined into the trial loop (a call per coordinate
# and step costs more than the arithmetic), see testbed.kernels.targets.
run_trials.inline_callees_on_cpu = True
# ... and compiled without reference counting: the inlined rules' array arguments would otherwise update one
# shared counter atomically on every call, which serialises the threads.
run_trials.no_refcount_on_cpu = True
