"""Slow, obviously-correct NumPy references for the Monte Carlo escape-time kernels (small N only).

Each trial is simulated on its own with NumPy arithmetic written out from the formulas: the gradient from the
landscape's NumPy method, the Gaussian noise from the same Philox draws as the kernels (the plain-Python rule
``testbed.rules.rng.normal4``, keyed by (seed, trial, step, coordinate block)), and the optimizer update written here from its
paper (not from testbed.rules.optimizers), so a wrong rule, a wrong key or a wrong escape test shows up.
"""
import math

import numpy as np

from testbed.rules import rng as rng_rules


def gaussian_noise(seed, trial, step, dim):
    """The noise vector (before sigma) of (trial, step): four coordinates per Philox block."""
    draws = []
    for block in range((dim + 3) // 4):
        draws.extend(rng_rules.normal4(np.uint64(seed), trial, step, block))
    return np.array(draws[:dim])


def simulate(landscape, update, start, *, trials, noise, radius, max_steps, seed):
    """Escape steps, escaped flags and final iterates of ``trials`` trials of ``update`` from ``start``.

    ``update(w, g, state, t) -> w`` is a NumPy optimizer step (``state`` a dict it may fill); the trial escapes
    at the first t with |w - center| > radius.
    """
    steps = np.full(trials, max_steps)
    escaped = np.zeros(trials, bool)
    finals = np.zeros((trials, landscape.dim))
    for trial in range(trials):
        w = np.array(start[trial], dtype=np.float64)
        state = {}
        for t in range(1, max_steps + 1):
            g = landscape.gradient(w, t) + noise * gaussian_noise(seed, trial, t, landscape.dim)
            w = update(w, g, state, t)
            if np.linalg.norm(w - landscape.center) > radius:
                steps[trial] = t
                escaped[trial] = True
                break
        finals[trial] = w
    return steps, escaped, finals


def sgd(lr):
    """Plain gradient descent: w <- w - lr g."""
    return lambda w, g, state, t: w - lr * g


def heavy_ball(lr, mu):
    """PyTorch's heavy ball: v <- g on step 1, then v <- mu v + g; w <- w - lr v (Polyak 1964)."""

    def update(w, g, state, t):
        state["v"] = g.copy() if t == 1 else mu * state["v"] + g
        return w - lr * state["v"]

    return update


def adam(lr, b1=0.9, b2=0.999, eps=1e-8):
    """Kingma & Ba (2015), Algorithm 1, eps outside the root, bias-corrected."""

    def update(w, g, state, t):
        m = b1 * state.get("m", 0.0) + (1 - b1) * g
        v = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        state["m"], state["v"] = m, v
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        return w - lr * m_hat / (np.sqrt(v_hat) + eps)

    return update


def kaplan_meier_median(times, observed):
    """The Kaplan-Meier median by the textbook loop over distinct event times."""
    times = np.asarray(times, float)
    observed = np.asarray(observed, bool)
    survival = 1.0
    for t in sorted(set(times[observed])):
        at_risk = np.sum(times >= t)
        events = np.sum((times == t) & observed)
        survival *= 1.0 - events / at_risk
        if survival <= 0.5:
            return float(t)
    return math.inf
