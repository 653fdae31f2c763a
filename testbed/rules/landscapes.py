"""Loss landscapes for the escape-time experiments, as scalar rules.

Every landscape has an integer code; :func:`value`, :func:`gradient` and :func:`hessian` dispatch on it, so one
compiled trial kernel serves every landscape. A rule reads the iterate ``w[row, 0:dim]`` (row ``row`` of a 2-D
array: a kernel passes its whole block of iterates and the trial's row, so that no array view is created in the
inner loops),
the small parameter array ``params`` of the landscape, and, for the online (time-varying) landscape only, the
step number ``t`` (1, 2, ...; ``t <= 0`` asks for the average over one period). The gradient is computed one
component at a time, ``g_i(w)``, so a kernel needs no scratch array for it.

=================  =====================================================  ===============================
code               f(w)                                                   params
=================  =====================================================  ===============================
QUADRATIC          1/2 sum_i lambda_i w_i^2 (saddle, maximum, ravine)      lambda_0 .. lambda_{d-1}
MONKEY_SADDLE      w_0^3 - 3 w_0 w_1^2  (dim 2)                            -
TANH_UNIT          1/2 (tanh(a w_0) - y)^2  (dim 1)                        a, y
DEEP_LINEAR        1/2 (s - prod_i w_i)^2  (dim = depth D)                 s
ROSENBROCK         sum_i (a - w_i)^2 + b (w_{i+1} - w_i^2)^2               a, b
DOUBLE_WELL        sum_i h (w_i^2 - 1)^2 + c w_i                           h, c
RASTRIGIN          A d + sum_i (w_i^2 - A cos(2 pi w_i))                   A
REDDI              C w_0 when t mod 3 == 1, else -w_0  (dim 1, on [-1, 1])  C
=================  =====================================================  ===============================

References: Dauphin et al. 2014 (strict saddles, saddle-free Newton); Saxe, McClelland & Ganguli 2013 (deep
linear networks); Rosenbrock 1960; Rastrigin 1974; Reddi, Kale & Kumar 2018 (the online counterexample to
Adam's convergence). The names, defaults and geometry live in :mod:`testbed.landscapes`.
"""

import math

QUADRATIC = 0
MONKEY_SADDLE = 1
TANH_UNIT = 2
DEEP_LINEAR = 3
ROSENBROCK = 4
DOUBLE_WELL = 5
RASTRIGIN = 6
REDDI = 7
#: The rule's name of each code (row ``code``). Every code must be built by a landscape of
#: :data:`testbed.landscapes.REGISTRY` at its defaults: the finite-difference checks of the gradient and the Hessian
#: (tests/test_landscapes.py) run over the registry, and a test fails for a code no registered landscape uses.
CODE_NAMES = (
    "quadratic",
    "monkey_saddle",
    "tanh_unit",
    "deep_linear",
    "rosenbrock",
    "double_well",
    "rastrigin",
    "reddi",
)
#: Number of landscape rule codes.
N_CODES = len(CODE_NAMES)

TWO_PI = 2.0 * math.pi


def product_except(w, row, dim, skip):
    """prod_{j != skip} w_j (skip = -1: the whole product), by a loop: no division, exact at w_j = 0."""
    product = 1.0
    for j in range(dim):
        if j != skip:
            product *= w[row, j]
    return product


def reddi_slope(t, big_c):
    """df_t/dx of the Reddi et al. online loss: C when t mod 3 == 1, else -1; (C - 2)/3 on average (t <= 0)."""
    if t <= 0:
        return (big_c - 2.0) / 3.0
    if t % 3 == 1:
        return big_c
    return -1.0


def value(code, w, row, dim, params, t):
    """f(w) of the landscape with this code (``t`` matters only for the online REDDI loss)."""
    total = 0.0
    if code == QUADRATIC:
        for i in range(dim):
            total += 0.5 * params[i] * w[row, i] * w[row, i]
        return total
    if code == MONKEY_SADDLE:
        return w[row, 0] * w[row, 0] * w[row, 0] - 3.0 * w[row, 0] * w[row, 1] * w[row, 1]
    if code == TANH_UNIT:
        residual = math.tanh(params[0] * w[row, 0]) - params[1]
        return 0.5 * residual * residual
    if code == DEEP_LINEAR:
        residual = params[0] - product_except(w, row, dim, -1)
        return 0.5 * residual * residual
    if code == ROSENBROCK:
        for i in range(dim - 1):
            a_term = params[0] - w[row, i]
            b_term = w[row, i + 1] - w[row, i] * w[row, i]
            total += a_term * a_term + params[1] * b_term * b_term
        return total
    if code == DOUBLE_WELL:
        for i in range(dim):
            well = w[row, i] * w[row, i] - 1.0
            total += params[0] * well * well + params[1] * w[row, i]
        return total
    if code == RASTRIGIN:
        for i in range(dim):
            total += params[0] + w[row, i] * w[row, i] - params[0] * math.cos(TWO_PI * w[row, i])
        return total
    if code == REDDI:
        return reddi_slope(t, params[0]) * w[row, 0]
    return math.nan


def gradient(code, w, row, i, dim, params, t):
    """g_i(w) = df/dw_i of the landscape with this code."""
    if code == QUADRATIC:
        return params[i] * w[row, i]
    if code == MONKEY_SADDLE:
        if i == 0:
            return 3.0 * w[row, 0] * w[row, 0] - 3.0 * w[row, 1] * w[row, 1]
        return -6.0 * w[row, 0] * w[row, 1]
    if code == TANH_UNIT:
        activation = math.tanh(params[0] * w[row, 0])
        return (activation - params[1]) * (1.0 - activation * activation) * params[0]
    if code == DEEP_LINEAR:
        residual = params[0] - product_except(w, row, dim, -1)
        return -residual * product_except(w, row, dim, i)
    if code == ROSENBROCK:
        g = 0.0
        if i < dim - 1:
            g += -2.0 * (params[0] - w[row, i]) - 4.0 * params[1] * w[row, i] * (w[row, i + 1] - w[row, i] * w[row, i])
        if i > 0:
            g += 2.0 * params[1] * (w[row, i] - w[row, i - 1] * w[row, i - 1])
        return g
    if code == DOUBLE_WELL:
        return 4.0 * params[0] * w[row, i] * (w[row, i] * w[row, i] - 1.0) + params[1]
    if code == RASTRIGIN:
        return 2.0 * w[row, i] + TWO_PI * params[0] * math.sin(TWO_PI * w[row, i])
    if code == REDDI:
        return reddi_slope(t, params[0])
    return math.nan


def hessian(code, w, row, i, j, dim, params, t):
    """H_ij(w) = d^2 f / dw_i dw_j of the landscape with this code."""
    if code == QUADRATIC:
        return params[i] if i == j else 0.0
    if code == MONKEY_SADDLE:
        if i == 0 and j == 0:
            return 6.0 * w[row, 0]
        if i == 1 and j == 1:
            return -6.0 * w[row, 0]
        return -6.0 * w[row, 1]
    if code == TANH_UNIT:
        activation = math.tanh(params[0] * w[row, 0])
        slope = 1.0 - activation * activation
        # d/dw [(tanh - y) tanh' a] = a^2 (tanh'^2 - 2 tanh tanh' (tanh - y))
        return params[0] * params[0] * (slope * slope - 2.0 * activation * slope * (activation - params[1]))
    if code == DEEP_LINEAR:
        residual = params[0] - product_except(w, row, dim, -1)
        pi = product_except(w, row, dim, i)
        if i == j:
            return pi * pi
        pj = product_except(w, row, dim, j)
        # prod over all j' except i and j
        pij = 1.0
        for k in range(dim):
            if k != i and k != j:
                pij *= w[row, k]
        return pi * pj - residual * pij
    if code == ROSENBROCK:
        if i == j:
            h = 0.0
            if i < dim - 1:
                h += 2.0 - 4.0 * params[1] * (w[row, i + 1] - 3.0 * w[row, i] * w[row, i])
            if i > 0:
                h += 2.0 * params[1]
            return h
        if j == i + 1:
            return -4.0 * params[1] * w[row, i]
        if i == j + 1:
            return -4.0 * params[1] * w[row, j]
        return 0.0
    if code == DOUBLE_WELL:
        if i == j:
            return 4.0 * params[0] * (3.0 * w[row, i] * w[row, i] - 1.0)
        return 0.0
    if code == RASTRIGIN:
        if i == j:
            return 2.0 + TWO_PI * TWO_PI * params[0] * math.cos(TWO_PI * w[row, i])
        return 0.0
    if code == REDDI:
        return 0.0
    return math.nan


def constant_hessian(code):
    """True when the Hessian of the landscape with this code depends neither on w nor on t: QUADRATIC's diag(lambda)
    and REDDI's 0 (linear losses). A second-order kernel evaluates and decomposes it once per trial there."""
    return code == QUADRATIC or code == REDDI
