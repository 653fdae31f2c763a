"""Learning-rate schedules as scalar rules: the rate of step ``t`` (1, 2, ...) from a base rate.

``learning_rate(code, params, lr, t)`` dispatches on an integer code; ``params`` is a tuple (or float64 array) of
``SCHEDULE_SIZE`` floats laid out by the ``P_*`` indices below, built by :func:`testbed.optim.schedule`. The step
counter is the optimizer's (PyTorch's counting: the first step is ``t = 1``), so a schedule composes with every
optimizer, and a Monte Carlo trial calls it once per step before :func:`testbed.rules.optimizers.prepare`.

===============  =============================================================  ==================================
code             lr_t                                                           library
===============  =============================================================  ==================================
CONSTANT         lr
STEP             lr gamma^floor((t - 1) / step_size)                            PyTorch StepLR
EXPONENTIAL      lr gamma^(t - 1)                                               PyTorch ExponentialLR
INVERSE_SQRT     lr / sqrt(t)  (the lecture's "decaying" rate)
COSINE           eta_min + (lr - eta_min) (1 + cos(pi min(t - 1, T) / T)) / 2   PyTorch CosineAnnealingLR (held
                                                                                at eta_min after T, as optax)
===============  =============================================================  ==================================

Every schedule may be multiplied by a linear warm-up ``min(1, t / warmup_steps)`` (``warmup_steps = 0``: none);
``linear_warmup`` is the constant schedule with a warm-up. PyTorch's schedulers count epochs from 0 at the first
step, which is ``t - 1`` here.
"""

import math

CONSTANT = 0
STEP = 1
EXPONENTIAL = 2
INVERSE_SQRT = 3
COSINE = 4
#: Number of schedule codes.
N_SCHEDULES = 5

P_GAMMA = 0  #: STEP and EXPONENTIAL: the decay factor
P_STEP_SIZE = 1  #: STEP: steps between decays
P_T_MAX = 2  #: COSINE: the length T of the half period
P_ETA_MIN = 3  #: COSINE: the final rate
P_WARMUP = 4  #: linear warm-up length in steps (0: none)
#: Length of the schedule parameter tuple.
SCHEDULE_SIZE = 5


def learning_rate(code, params, lr, t):
    """The learning rate of step ``t`` (1, 2, ...) under schedule ``code`` with base rate ``lr``."""
    tf = float(t)
    if code == STEP:
        rate = lr * math.pow(params[P_GAMMA], math.floor((tf - 1.0) / params[P_STEP_SIZE]))
    elif code == EXPONENTIAL:
        rate = lr * math.pow(params[P_GAMMA], tf - 1.0)
    elif code == INVERSE_SQRT:
        rate = lr / math.sqrt(tf)
    elif code == COSINE:
        t_max = params[P_T_MAX]
        eta_min = params[P_ETA_MIN]
        rate = eta_min + (lr - eta_min) * 0.5 * (1.0 + math.cos(math.pi * min(tf - 1.0, t_max) / t_max))
    elif code == CONSTANT:
        rate = lr
    else:
        return math.nan
    warmup = params[P_WARMUP]
    if warmup > 0.0 and tf < warmup:
        rate = rate * tf / warmup
    return rate
