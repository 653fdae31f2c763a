"""The rules of one Monte Carlo trial of an optimizer on a landscape: its noise, its escape test, its codes.

The loop that runs trials is :func:`testbed.loops.montecarlo.run_trials`; each trial starts at its row of ``w``
(filled by the caller), and repeats

    t += 1
    g_i = df_t/dw_i(w) + noise_i(seed, trial, t)          for every i, at the current w
    (w_i, s0_i, s1_i, s2_i) = optimizer update             per component (testbed.rules.optimizers)
    w = clip(w, low, high)                                 only for a landscape on a box (Reddi)

until the escape criterion holds, an iterate is not finite (divergence) or ``t`` reaches ``max_steps``
(censoring). The CPU kernel runs one chunk of trials per ``prange`` iteration, the GPU kernel one trial per
thread; both call the same loop body and these rules, so both targets do the same arithmetic in the same order.

Noise (the keys make every draw a pure function of (seed, trial, step, coordinate), whatever the thread):

- ``NOISE_GAUSSIAN``: ``noise_i = sigma z_i``, z_i standard normal: draw ``i`` of stream ``trial`` at step ``t`` of
  :mod:`testbed.rules.rng` (all four words of a Philox block serve four coordinates: two Box-Muller pairs whose
  log, sin and cos are polynomials, so the CPU loop over lanes
  vectorises: :func:`testbed.loops.montecarlo.fill_noise`).
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

from .landscapes import value as landscape_value
from .rng import uniform4

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
