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
  log, sin and cos are polynomials, so the CPU loop over lanes vectorises).
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

from .landscapes import QUADRATIC
from .landscapes import gradient as landscape_gradient
from .landscapes import value as landscape_value
from .optimizers import ADAM, H_INIT0, H_INIT1, H_INIT2, MOMENTUM, RMSPROP, SGD, slot_count
from .optimizers import prepare as optimizer_prepare
from .optimizers import update as optimizer_update
from .rng import box_muller, uniform4
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
#: A trial still running (between the slices of a run only; never returned).
STATUS_RUNNING = -1
#: A trial not started yet (the dense kernel's slices; never returned).
STATUS_PENDING = -2

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


def noise_rows(dim):
    """Rows of the noise scratch of :func:`fill_noise`: four draws per Philox block, and four rows of uniforms."""
    return 4 * ((dim + 3) // 4) + 4


def fill_noise(seed, lane_trial, lane_step, lanes, dim, noise):
    """noise[4 b + k, lane] = draw k of :func:`testbed.rules.rng.normal4` (seed, lane's trial, lane's next step, b)
    for the ``dim`` coordinates (a last block that needs at most two draws computes one Box-Muller pair only).

    ``noise`` has :func:`noise_rows` rows; the last four hold the block's uniforms between two passes, Philox then
    Box-Muller, one pair per pass: short loop bodies, whose iterations the CPU overlaps better than those of one
    long body (the loop is limited by the latency of its chains of operations). Every lane, busy or idle: a
    branch-free loop over lanes is what LLVM vectorises. The lanes' trials and steps differ, which costs the vector
    loop nothing: they are loaded like any other per-lane operand.
    """
    spare = noise.shape[0] - 4
    for block in range((dim + 3) // 4):
        row = 4 * block
        for lane in range(lanes):
            u0, u1, u2, u3 = uniform4(seed, lane_trial[lane], lane_step[lane] + 1, block)
            noise[spare, lane] = u0
            noise[spare + 1, lane] = u1
            noise[spare + 2, lane] = u2
            noise[spare + 3, lane] = u3
        for lane in range(lanes):
            z0, z1 = box_muller(noise[spare, lane], noise[spare + 1, lane])
            noise[row, lane] = z0
            noise[row + 1, lane] = z1
        if dim - row > 2:
            for lane in range(lanes):
                z2, z3 = box_muller(noise[spare + 2, lane], noise[spare + 3, lane])
                noise[row + 2, lane] = z2
                noise[row + 3, lane] = z3


# On the CPU: a function of its own (inlined into run_trials, the vectorised loop draws half as fast), with Philox
# and Box-Muller inlined into it (a loop that calls a function is not vectorised). See testbed.kernels.targets.
fill_noise.call_on_cpu = True
fill_noise.inline_callees_on_cpu = True


def record(trajectories, trial, point, w, dim):
    """Copy ``w[trial]`` into ``trajectories[trial, point]``."""
    for i in range(dim):
        trajectories[trial, point, i] = w[trial, i]


def start_trial(
    trial,
    code,
    params,
    dim,
    hyper,
    criterion,
    center,
    radius,
    delta,
    w,
    s0,
    s1,
    s2,
    trajectories,
    n_record,
    steps,
    status,
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


#: The per-lane state ``lane_state[row, lane]`` of :func:`run_trials`, in blocks of rows: the iterate ``w``, the
#: gradient ``g`` and the optimizer slots ``s0, s1, s2`` of the lane's trial (``dim`` rows each), then the four
#: step coefficients of :func:`testbed.rules.optimizers.prepare` and |w - center|^2.
LANE_BLOCKS = 5
LANE_SCALARS = 5


def lane_state_rows(dim):
    """Rows of the ``lane_state`` scratch of :func:`run_trials`."""
    return LANE_BLOCKS * dim + LANE_SCALARS


def move_trial(lane, trial, dim, w, s0, s1, s2, lane_w, lane_s0, lane_s1, lane_s2, to_lane):
    """Copy trial ``trial``'s iterate and slots from the global arrays into ``lane`` (``to_lane``) or back."""
    for i in range(dim):
        if to_lane:
            lane_w[i, lane] = w[trial, i]
            lane_s0[i, lane] = s0[trial, i]
            lane_s1[i, lane] = s1[trial, i]
            lane_s2[i, lane] = s2[trial, i]
        else:
            w[trial, i] = lane_w[i, lane]
            s0[trial, i] = lane_s0[i, lane]
            s1[trial, i] = lane_s1[i, lane]
            s2[trial, i] = lane_s2[i, lane]


def take_next_trial(
    lane,
    upcoming,
    last,
    code,
    params,
    dim,
    hyper,
    criterion,
    center,
    radius,
    delta,
    w,
    s0,
    s1,
    s2,
    trajectories,
    n_record,
    steps,
    status,
    lane_trial,
    lane_step,
    thresholds,
    lane_w,
    lane_s0,
    lane_s1,
    lane_s2,
):
    """Give ``lane`` the first trial from ``upcoming`` on (below ``last``) that does not escape at t = 0, and
    copy its start and initial slots into the lane's state.

    Returns the new ``upcoming``. A lane left without a trial holds ``last`` in ``lane_trial`` (idle).
    """
    while upcoming < last:
        trial = upcoming
        upcoming += 1
        started, threshold = start_trial(
            trial,
            code,
            params,
            dim,
            hyper,
            criterion,
            center,
            radius,
            delta,
            w,
            s0,
            s1,
            s2,
            trajectories,
            n_record,
            steps,
            status,
        )
        if started:
            lane_trial[lane] = trial
            lane_step[lane] = 0
            thresholds[lane] = threshold
            move_trial(lane, trial, dim, w, s0, s1, s2, lane_w, lane_s0, lane_s1, lane_s2, True)
            return upcoming
    lane_trial[lane] = last
    lane_step[lane] = 0
    return upcoming


def update_lanes(
    opt_code,
    hyper,
    i,
    lanes,
    has_box,
    low,
    high,
    center,
    lane_w,
    lane_g,
    lane_s0,
    lane_s1,
    lane_s2,
    coefficients,
    distance2,
):
    """Coordinate ``i`` of every lane: the optimizer update, the projection onto the box, and the coordinate's
    term of |w - center|^2 added to ``distance2[lane]``.

    Only the first :func:`testbed.rules.optimizers.slot_count` slots are loaded and stored (the rule returns the
    others unchanged). A non-finite iterate is left as it is (the projection could hide a NaN): it makes
    ``distance2`` non-finite, which is how :func:`run_trials` finds it.
    """
    n_slots = slot_count(opt_code)
    for lane in range(lanes):
        a0 = lane_s0[i, lane] if n_slots > 0 else 0.0
        a1 = lane_s1[i, lane] if n_slots > 1 else 0.0
        a2 = lane_s2[i, lane] if n_slots > 2 else 0.0
        wi, b0, b1, b2 = optimizer_update(
            opt_code,
            hyper,
            coefficients[0, lane],
            coefficients[1, lane],
            coefficients[2, lane],
            coefficients[3, lane],
            lane_w[i, lane],
            lane_g[i, lane],
            a0,
            a1,
            a2,
        )
        if has_box and math.isfinite(wi):
            wi = min(max(wi, low), high)
        lane_w[i, lane] = wi
        if n_slots > 0:
            lane_s0[i, lane] = b0
        if n_slots > 1:
            lane_s1[i, lane] = b1
        if n_slots > 2:
            lane_s2[i, lane] = b2
        offset = wi - center[i]
        distance2[lane] += offset * offset


def run_trials(  # noqa: C901 (one fused loop over the lane's trials; the layering of issue 14 splits it)
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
    """Run trials ``first .. last - 1`` on ``lanes`` lanes, at most ``budget`` steps per lane in this call; a
    lane whose trial ends takes the next one.

    ``w, s0, s1, s2`` are the global (trials x dim) arrays; each trial starts at its row of ``w`` (filled by
    the caller), which ends as its final iterate. Scratch: ``noise`` (:func:`noise_rows` x lanes), ``lane_state``
    (:func:`lane_state_rows` x lanes), ``lane_trial``, ``lane_step`` (int64) and ``thresholds`` (float64), each of
    length ``lanes``. Writes ``steps[trial]``, ``status[trial]`` and, for trials below ``n_record``,
    ``trajectories[trial, k]`` = w at step k ``record_every``.

    A running trial lives in its lane's column of ``lane_state``, and every phase of a step is a loop over lanes
    (noise, gradient, update): on the CPU, where a chunk of trials runs on 32 lanes, LLVM turns these loops into
    SIMD code, one lane per vector element. The optimizer is chosen once per coordinate, outside the loops over
    lanes, so that each loop holds one rule with a constant code (the other rules' branches vanish): SGD (heavy
    ball, Nesterov), Momentum, RMSProp and Adam (AdamW, AMSGrad), the rules of the escape scenarios. The rarer
    rules share one loop that dispatches per component (not vectorised: AdaGrad's step is about 1.5 times as
    slow as in a loop of its own), since each constant-code loop is another inlined copy of the update rule,
    compiled on every first run (measured: 31-33 s for the kernel as it is, 34-35 s with a loop for every code).
    Lanes keep their own step counts: a lane whose trial ends takes the next trial at once, and never waits for a
    slower one. The GPU runs one trial on one lane per thread. Each trial's arithmetic is the same either way.

    Slices: a call advances every lane by at most ``budget`` steps and returns, its place kept in ``progress``
    (int64, length 2: the next trial to start, and the lanes still running, -1 before the first call) and in the
    lanes' scratch (``lane_state``, ``lane_trial``, ``lane_step``, ``thresholds``), so the caller can look at
    Ctrl-C and report progress between calls. A trial's arithmetic depends only on its own state and keys, so any
    split of the run into slices gives the same bits as one call with a budget of ``max_steps``.
    """
    n_samples = samples.shape[0]
    lane_w = lane_state[0:dim]
    lane_g = lane_state[dim : 2 * dim]
    lane_s0 = lane_state[2 * dim : 3 * dim]
    lane_s1 = lane_state[3 * dim : 4 * dim]
    lane_s2 = lane_state[4 * dim : 5 * dim]
    coefficients = lane_state[5 * dim : 5 * dim + 4]
    distance2 = lane_state[5 * dim + 4]
    iterates = lane_w.T  # iterates[lane, i] = lane_w[i, lane]: the landscape rules read an iterate as w[row, i]
    upcoming = progress[0]
    running = progress[1]
    if running < 0:  # the first slice: fill the lanes
        upcoming = first
        running = 0
        for lane in range(lanes):
            upcoming = take_next_trial(
                lane,
                upcoming,
                last,
                code,
                params,
                dim,
                hyper,
                criterion,
                center,
                radius,
                delta,
                w,
                s0,
                s1,
                s2,
                trajectories,
                n_record,
                steps,
                status,
                lane_trial,
                lane_step,
                thresholds,
                lane_w,
                lane_s0,
                lane_s1,
                lane_s2,
            )
            if lane_trial[lane] < last:
                running += 1
    taken = 0
    while running > 0 and taken < budget:
        taken += 1
        if noise_kind == NOISE_GAUSSIAN:
            fill_noise(seed, lane_trial, lane_step, lanes, dim, noise)
        for lane in range(lanes):
            t = lane_step[lane] + 1
            rate = learning_rate(schedule_code, schedule_params, lr, t)
            c0, c1, c2, c3 = optimizer_prepare(opt_code, hyper, t, rate)
            coefficients[0, lane] = c0
            coefficients[1, lane] = c1
            coefficients[2, lane] = c2
            coefficients[3, lane] = c3
            distance2[lane] = 0.0
        for i in range(dim):
            if code == QUADRATIC:
                for lane in range(lanes):
                    lane_g[i, lane] = landscape_gradient(QUADRATIC, iterates, lane, i, dim, params, 1)
            else:
                for lane in range(lanes):
                    lane_g[i, lane] = landscape_gradient(code, iterates, lane, i, dim, params, lane_step[lane] + 1)
            if noise_kind == NOISE_GAUSSIAN:
                for lane in range(lanes):
                    lane_g[i, lane] += sigma * noise[i, lane]
            elif noise_kind == NOISE_MINIBATCH:
                for lane in range(lanes):
                    lane_g[i, lane] += sigma * minibatch_noise(
                        seed, lane_trial[lane], lane_step[lane] + 1, i, batch, samples, n_samples
                    )
        for i in range(dim):
            # one branch per optimizer code, each with its code as a constant (see the docstring)
            if opt_code == SGD:
                update_lanes(
                    SGD,
                    hyper,
                    i,
                    lanes,
                    has_box,
                    low,
                    high,
                    center,
                    lane_w,
                    lane_g,
                    lane_s0,
                    lane_s1,
                    lane_s2,
                    coefficients,
                    distance2,
                )
            elif opt_code == MOMENTUM:
                update_lanes(
                    MOMENTUM,
                    hyper,
                    i,
                    lanes,
                    has_box,
                    low,
                    high,
                    center,
                    lane_w,
                    lane_g,
                    lane_s0,
                    lane_s1,
                    lane_s2,
                    coefficients,
                    distance2,
                )
            elif opt_code == RMSPROP:
                update_lanes(
                    RMSPROP,
                    hyper,
                    i,
                    lanes,
                    has_box,
                    low,
                    high,
                    center,
                    lane_w,
                    lane_g,
                    lane_s0,
                    lane_s1,
                    lane_s2,
                    coefficients,
                    distance2,
                )
            elif opt_code == ADAM:
                update_lanes(
                    ADAM,
                    hyper,
                    i,
                    lanes,
                    has_box,
                    low,
                    high,
                    center,
                    lane_w,
                    lane_g,
                    lane_s0,
                    lane_s1,
                    lane_s2,
                    coefficients,
                    distance2,
                )
            else:  # the rarer rules share one loop, dispatching on the code per component
                update_lanes(
                    opt_code,
                    hyper,
                    i,
                    lanes,
                    has_box,
                    low,
                    high,
                    center,
                    lane_w,
                    lane_g,
                    lane_s0,
                    lane_s1,
                    lane_s2,
                    coefficients,
                    distance2,
                )
        for lane in range(lanes):
            trial = lane_trial[lane]
            if trial >= last:
                continue
            t = lane_step[lane] + 1
            lane_step[lane] = t
            finite = True
            if not math.isfinite(distance2[lane]):  # a non-finite iterate, or |w| beyond 1e154: look at each one
                for i in range(dim):
                    if not math.isfinite(lane_w[i, lane]):
                        finite = False
            if trial < n_record and t % record_every == 0:
                for i in range(dim):
                    trajectories[trial, t // record_every, i] = lane_w[i, lane]
            outcome = STATUS_RUNNING
            if not finite:
                outcome = STATUS_DIVERGED
            elif criterion == CRITERION_RADIUS:
                if distance2[lane] > radius * radius:  # the same sum, in the same order, as escaped() forms
                    outcome = STATUS_ESCAPED
            elif escaped(criterion, code, iterates, lane, dim, params, center, radius, thresholds[lane]):
                outcome = STATUS_ESCAPED
            if outcome == STATUS_RUNNING and t >= max_steps:
                outcome = STATUS_CENSORED
            if outcome != STATUS_RUNNING:
                steps[trial] = t
                status[trial] = outcome
                move_trial(lane, trial, dim, w, s0, s1, s2, lane_w, lane_s0, lane_s1, lane_s2, False)
                upcoming = take_next_trial(
                    lane,
                    upcoming,
                    last,
                    code,
                    params,
                    dim,
                    hyper,
                    criterion,
                    center,
                    radius,
                    delta,
                    w,
                    s0,
                    s1,
                    s2,
                    trajectories,
                    n_record,
                    steps,
                    status,
                    lane_trial,
                    lane_step,
                    thresholds,
                    lane_w,
                    lane_s0,
                    lane_s1,
                    lane_s2,
                )
                if lane_trial[lane] >= last:
                    running -= 1
    progress[0] = upcoming
    progress[1] = running


# On the CPU, the landscape, optimizer and noise rules are inlined into the trial loop (a call per coordinate
# and step costs more than the arithmetic; a loop that calls a function is not vectorised), see
# testbed.kernels.targets ...
run_trials.inline_callees_on_cpu = True
# ... except the rules that run at a trial's start and end or on paths that are slow anyway: inlined, each would
# be lowered and optimised again at every call site, which costs compile time and crowds the hot loop.
take_next_trial.call_on_cpu = True
escaped.call_on_cpu = True
minibatch_noise.call_on_cpu = True
# ... and compiled without reference counting: the inlined rules' array arguments would otherwise update one
# shared counter atomically on every call, which serialises the threads.
run_trials.no_refcount_on_cpu = True
