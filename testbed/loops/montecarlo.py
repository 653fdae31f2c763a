"""The life of a queue of Monte Carlo trials on a few lanes, as a loop body compiled for both targets.

:func:`run_trials` runs trials on lanes (one lane on the GPU, a handful of SIMD lanes on the CPU, where a lane
takes the next trial as soon as its own ends): each trial starts at its row of ``trials.w`` (filled by the
caller), and repeats the step of :mod:`testbed.rules.montecarlo` (gradient plus noise, the optimizer's update, the
projection onto the box) until its stopping rule holds. :func:`start_trial`, :func:`record_point` and
:func:`stop_status` are the start, the recording and the end of a trial, shared with the dense second-order
kernel (:func:`testbed.kernels.montecarlo.dense_trials_cpu`), so that every kernel starts, records and ends a
trial the same way.

The arguments travel as named tuples, one per part of a run (Numba passes each as a struct, on both targets):

- :class:`LandscapeArgs` ``(code, params, dim, has_box, low, high)``: the landscape rule
  (:mod:`testbed.rules.landscapes`), its dimension and its box [low, high]^dim (``has_box`` False: none);
- :class:`OptimizerArgs` ``(code, hyper, lr, schedule_code, schedule_params)``: the optimizer rule with its
  hyperparameters as a tuple (:mod:`testbed.rules.optimizers`) and the learning-rate schedule
  (:mod:`testbed.rules.schedules`);
- :class:`NoiseArgs` ``(kind, sigma, batch, samples, seed)``: the gradient noise (``NOISE_*`` of
  :mod:`testbed.rules.montecarlo`);
- :class:`StopArgs` ``(criterion, center, radius, delta, max_steps)``: the escape criterion and the budget;
- :class:`TrialBuffers` ``(w, s0, s1, s2, steps, status, trajectories, record_every, n_record)``: the per-trial
  arrays (``trials x dim`` iterates and optimizer slots; the outcome; the recorded trajectories of the first
  ``n_record`` trials, a point every ``record_every`` steps);
- :class:`LaneScratch` ``(trial, step, threshold, state, draws)``: the lanes' scratch of one queue (each lane's
  trial, step count and loss threshold; its running trial's state, :func:`lane_state_rows` x lanes; the noise
  draws, :func:`noise_rows` x lanes).
"""

import math
from collections import namedtuple

from ..rules.landscapes import QUADRATIC
from ..rules.landscapes import gradient as landscape_gradient
from ..rules.landscapes import value as landscape_value
from ..rules.montecarlo import (
    CRITERION_LOSS,
    CRITERION_RADIUS,
    NOISE_GAUSSIAN,
    NOISE_MINIBATCH,
    STATUS_CENSORED,
    STATUS_DIVERGED,
    STATUS_ESCAPED,
    STATUS_RUNNING,
    escaped,
    minibatch_noise,
)
from ..rules.optimizers import ADAM, H_INIT0, H_INIT1, H_INIT2, MOMENTUM, RMSPROP, SGD, slot_count
from ..rules.optimizers import prepare as optimizer_prepare
from ..rules.optimizers import update as optimizer_update
from ..rules.rng import box_muller, uniform4
from ..rules.schedules import learning_rate

LandscapeArgs = namedtuple("LandscapeArgs", ["code", "params", "dim", "has_box", "low", "high"])
OptimizerArgs = namedtuple("OptimizerArgs", ["code", "hyper", "lr", "schedule_code", "schedule_params"])
NoiseArgs = namedtuple("NoiseArgs", ["kind", "sigma", "batch", "samples", "seed"])
StopArgs = namedtuple("StopArgs", ["criterion", "center", "radius", "delta", "max_steps"])
TrialBuffers = namedtuple(
    "TrialBuffers", ["w", "s0", "s1", "s2", "steps", "status", "trajectories", "record_every", "n_record"]
)
LaneScratch = namedtuple("LaneScratch", ["trial", "step", "threshold", "state", "draws"])


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


def record_point(trials, trial, t, x, row):
    """Record ``x[row]``, trial ``trial``'s iterate after step ``t``, when the trial is recorded and ``t`` is a
    multiple of ``trials.record_every``: ``trials.trajectories[trial, t // record_every] = x[row]``."""
    if trial < trials.n_record and t % trials.record_every == 0:
        for i in range(x.shape[1]):
            trials.trajectories[trial, t // trials.record_every, i] = x[row, i]


def start_trial(trial, landscape, stop, trials):
    """Start ``trial`` at its row of ``trials.w``: trajectory point 0 and the escape check at t = 0.

    Returns ``(started, loss_threshold)``: ``started`` is False when the trial has escaped already at t = 0 (its
    ``steps`` and ``status`` are then final); ``loss_threshold`` is f(w_0) - delta for ``CRITERION_LOSS``.
    """
    w = trials.w
    threshold = 0.0
    if stop.criterion == CRITERION_LOSS:
        threshold = landscape_value(landscape.code, w, trial, landscape.dim, landscape.params, 0) - stop.delta
    record_point(trials, trial, 0, w, trial)
    if escaped(
        stop.criterion, landscape.code, w, trial, landscape.dim, landscape.params, stop.center, stop.radius, threshold
    ):
        trials.steps[trial] = 0
        trials.status[trial] = STATUS_ESCAPED
        return False, threshold
    return True, threshold


def stop_status(finite, escaped_now, t, max_steps):
    """The status of a trial after step ``t``: diverged (a non-finite iterate) before escaped (its criterion
    holds) before censored (the budget ``max_steps`` is spent); ``STATUS_RUNNING`` while none holds."""
    if not finite:
        return STATUS_DIVERGED
    if escaped_now:
        return STATUS_ESCAPED
    if t >= max_steps:
        return STATUS_CENSORED
    return STATUS_RUNNING


#: The per-lane state ``lane_state[row, lane]`` of :func:`run_trials`, in blocks of rows: the iterate ``w``, the
#: gradient ``g`` and the optimizer slots ``s0, s1, s2`` of the lane's trial (``dim`` rows each), then the four
#: step coefficients of :func:`testbed.rules.optimizers.prepare` and |w - center|^2.
LANE_BLOCKS = 5
LANE_SCALARS = 5


def lane_state_rows(dim):
    """Rows of the ``lane_state`` scratch of :func:`run_trials`."""
    return LANE_BLOCKS * dim + LANE_SCALARS


def lane_views(lane_state, dim):
    """The blocks of ``lane_state`` (see :data:`LANE_BLOCKS`): ``(w, g, s0, s1, s2, coefficients, distance2)``,
    each indexed ``[row, lane]`` (``distance2[lane]``)."""
    return (
        lane_state[0:dim],
        lane_state[dim : 2 * dim],
        lane_state[2 * dim : 3 * dim],
        lane_state[3 * dim : 4 * dim],
        lane_state[4 * dim : 5 * dim],
        lane_state[5 * dim : 5 * dim + 4],
        lane_state[5 * dim + 4],
    )


def move_trial(lane, trial, dim, trials, lane_w, lane_s0, lane_s1, lane_s2, to_lane):
    """Copy trial ``trial``'s iterate and slots from the per-trial buffers into ``lane`` (``to_lane``) or back."""
    for i in range(dim):
        if to_lane:
            lane_w[i, lane] = trials.w[trial, i]
            lane_s0[i, lane] = trials.s0[trial, i]
            lane_s1[i, lane] = trials.s1[trial, i]
            lane_s2[i, lane] = trials.s2[trial, i]
        else:
            trials.w[trial, i] = lane_w[i, lane]
            trials.s0[trial, i] = lane_s0[i, lane]
            trials.s1[trial, i] = lane_s1[i, lane]
            trials.s2[trial, i] = lane_s2[i, lane]


def take_next_trial(lane, upcoming, last, landscape, optimizer, stop, trials, scratch):
    """Give ``lane`` the first trial from ``upcoming`` on (below ``last``) that does not escape at t = 0, and
    copy its start and initial slots into the lane's state.

    Returns the new ``upcoming``. A lane left without a trial holds ``last`` in ``scratch.trial`` (idle).
    """
    dim = landscape.dim
    lane_w, _, lane_s0, lane_s1, lane_s2, _, _ = lane_views(scratch.state, dim)
    while upcoming < last:
        trial = upcoming
        upcoming += 1
        for i in range(dim):
            trials.s0[trial, i] = optimizer.hyper[H_INIT0]
            trials.s1[trial, i] = optimizer.hyper[H_INIT1]
            trials.s2[trial, i] = optimizer.hyper[H_INIT2]
        started, threshold = start_trial(trial, landscape, stop, trials)
        if started:
            scratch.trial[lane] = trial
            scratch.step[lane] = 0
            scratch.threshold[lane] = threshold
            move_trial(lane, trial, dim, trials, lane_w, lane_s0, lane_s1, lane_s2, True)
            return upcoming
    scratch.trial[lane] = last
    scratch.step[lane] = 0
    return upcoming


def update_lanes(opt_code, hyper, i, landscape, center, views):
    """Coordinate ``i`` of every lane: the optimizer update, the projection onto the box, and the coordinate's
    term of |w - center|^2 added to ``distance2[lane]``.

    Only the first :func:`testbed.rules.optimizers.slot_count` slots are loaded and stored (the rule returns the
    others unchanged). A non-finite iterate is left as it is (the projection could hide a NaN): it makes
    ``distance2`` non-finite, which is how :func:`run_trials` finds it. ``views`` are the lanes' state as
    :func:`lane_views` cuts it (cut once per call of :func:`run_trials`: each cut is compiled code).
    """
    lane_w, lane_g, lane_s0, lane_s1, lane_s2, coefficients, distance2 = views
    n_slots = slot_count(opt_code)
    has_box, low, high = landscape.has_box, landscape.low, landscape.high
    for lane in range(lane_w.shape[1]):
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


def step_gradients(landscape, noise, lanes, iterates, lane_g, scratch):
    """Every lane's gradient at its iterate plus its noise: ``lane_g[i, lane] = g_i(w) + sigma noise_i``.

    The Gaussian draws are in ``scratch.draws`` already (:func:`fill_noise`); a quadratic landscape, the escape
    scenarios' own, gets a loop with its code as a constant (the other landscapes' branches vanish).
    """
    code, params, dim = landscape.code, landscape.params, landscape.dim
    sigma = noise.sigma
    n_samples = noise.samples.shape[0]
    for i in range(dim):
        if code == QUADRATIC:
            for lane in range(lanes):
                lane_g[i, lane] = landscape_gradient(QUADRATIC, iterates, lane, i, dim, params, 1)
        else:
            for lane in range(lanes):
                lane_g[i, lane] = landscape_gradient(code, iterates, lane, i, dim, params, scratch.step[lane] + 1)
        if noise.kind == NOISE_GAUSSIAN:
            for lane in range(lanes):
                lane_g[i, lane] += sigma * scratch.draws[i, lane]
        elif noise.kind == NOISE_MINIBATCH:
            for lane in range(lanes):
                lane_g[i, lane] += sigma * minibatch_noise(
                    noise.seed, scratch.trial[lane], scratch.step[lane] + 1, i, noise.batch, noise.samples, n_samples
                )


def step_updates(optimizer, landscape, stop, views):
    """Every lane's optimizer update, coordinate by coordinate (:func:`update_lanes`).

    The optimizer is chosen once per coordinate, outside the loops over lanes, so that each loop holds one rule
    with a constant code (the other rules' branches vanish): SGD (heavy ball, Nesterov), Momentum, RMSProp and
    Adam (AdamW, AMSGrad), the rules of the escape scenarios. The rarer rules share one loop that dispatches per
    component (not vectorised: AdaGrad's step is about 1.5 times as slow as in a loop of its own), since each
    constant-code loop is another inlined copy of the update rule, compiled on every first run (measured: 31-33 s
    for the kernel as it is, 34-35 s with a loop for every code).
    """
    code, hyper, center = optimizer.code, optimizer.hyper, stop.center
    for i in range(landscape.dim):
        if code == SGD:
            update_lanes(SGD, hyper, i, landscape, center, views)
        elif code == MOMENTUM:
            update_lanes(MOMENTUM, hyper, i, landscape, center, views)
        elif code == RMSPROP:
            update_lanes(RMSPROP, hyper, i, landscape, center, views)
        elif code == ADAM:
            update_lanes(ADAM, hyper, i, landscape, center, views)
        else:  # the rarer rules share one loop, dispatching on the code per component
            update_lanes(code, hyper, i, landscape, center, views)


def run_trials(first, last, landscape, optimizer, noise, stop, trials, scratch, budget, progress):
    """Run trials ``first .. last - 1`` on the lanes of ``scratch``, at most ``budget`` steps per lane in this
    call; a lane whose trial ends takes the next one.

    Each trial starts at its row of ``trials.w`` (filled by the caller), which ends as its final iterate; writes
    ``trials.steps[trial]``, ``trials.status[trial]`` and the recorded points (:func:`record_point`). The lanes
    are ``scratch.trial``'s length (see :class:`LaneScratch` for the scratch's shapes).

    A running trial lives in its lane's column of ``scratch.state``, and every phase of a step is a loop over lanes
    (noise, gradient, update): on the CPU, where a chunk of trials runs on 32 lanes, LLVM turns these loops into
    SIMD code, one lane per vector element (see :func:`step_updates` for the optimizer's loops). Lanes keep their
    own step counts: a lane whose trial ends takes the next trial at once, and never waits for a slower one. The
    GPU runs one trial on one lane per thread. Each trial's arithmetic is the same either way.

    Slices: a call advances every lane by at most ``budget`` steps and returns, its place kept in ``progress``
    (int64, length 2: the next trial to start, and the lanes still running, -1 before the first call) and in the
    lanes' scratch, so the caller can look at Ctrl-C and report progress between calls. A trial's arithmetic
    depends only on its own state and keys, so any split of the run into slices gives the same bits as one call
    with a budget of ``max_steps``.
    """
    dim = landscape.dim
    lanes = scratch.trial.shape[0]
    lane_state = scratch.state
    views = lane_views(lane_state, dim)
    lane_w, lane_g, lane_s0, lane_s1, lane_s2, coefficients, distance2 = views
    iterates = lane_w.T  # iterates[lane, i] = lane_w[i, lane]: the landscape rules read an iterate as w[row, i]
    upcoming = progress[0]
    running = progress[1]
    if running < 0:  # the first slice: fill the lanes
        upcoming = first
        running = 0
        for lane in range(lanes):
            upcoming = take_next_trial(lane, upcoming, last, landscape, optimizer, stop, trials, scratch)
            if scratch.trial[lane] < last:
                running += 1
    taken = 0
    while running > 0 and taken < budget:
        taken += 1
        if noise.kind == NOISE_GAUSSIAN:
            fill_noise(noise.seed, scratch.trial, scratch.step, lanes, dim, scratch.draws)
        for lane in range(lanes):
            t = scratch.step[lane] + 1
            rate = learning_rate(optimizer.schedule_code, optimizer.schedule_params, optimizer.lr, t)
            c0, c1, c2, c3 = optimizer_prepare(optimizer.code, optimizer.hyper, t, rate)
            coefficients[0, lane] = c0
            coefficients[1, lane] = c1
            coefficients[2, lane] = c2
            coefficients[3, lane] = c3
            distance2[lane] = 0.0
        step_gradients(landscape, noise, lanes, iterates, lane_g, scratch)
        step_updates(optimizer, landscape, stop, views)
        for lane in range(lanes):
            trial = scratch.trial[lane]
            if trial >= last:
                continue
            t = scratch.step[lane] + 1
            scratch.step[lane] = t
            finite = True
            if not math.isfinite(distance2[lane]):  # a non-finite iterate, or |w| beyond 1e154: look at each one
                for i in range(dim):
                    if not math.isfinite(lane_w[i, lane]):
                        finite = False
            record_point(trials, trial, t, iterates, lane)
            escaped_now = False
            if finite:
                if stop.criterion == CRITERION_RADIUS:  # the same sum, in the same order, as escaped() forms
                    escaped_now = distance2[lane] > stop.radius * stop.radius
                else:
                    escaped_now = escaped(
                        stop.criterion,
                        landscape.code,
                        iterates,
                        lane,
                        dim,
                        landscape.params,
                        stop.center,
                        stop.radius,
                        scratch.threshold[lane],
                    )
            outcome = stop_status(finite, escaped_now, t, stop.max_steps)
            if outcome != STATUS_RUNNING:
                trials.steps[trial] = t
                trials.status[trial] = outcome
                move_trial(lane, trial, dim, trials, lane_w, lane_s0, lane_s1, lane_s2, False)
                upcoming = take_next_trial(lane, upcoming, last, landscape, optimizer, stop, trials, scratch)
                if scratch.trial[lane] >= last:
                    running -= 1
    progress[0] = upcoming
    progress[1] = running


def queue_scratch(scratch, queue):
    """The lanes' scratch of queue ``queue`` (a CPU chunk, a GPU thread's trial): row ``queue`` of each array of
    ``scratch``, whose arrays have one row per queue."""
    return LaneScratch(
        scratch.trial[queue], scratch.step[queue], scratch.threshold[queue], scratch.state[queue], scratch.draws[queue]
    )
