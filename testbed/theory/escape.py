"""Escape laws: how long optimizers take to leave saddles and plateaus, how fast they cross ravines.

The predictions of ``reference.md`` section 4, each stated with its derivation and paper, so that every
measurement of :mod:`testbed.montecarlo` and the escape scenarios has a number beside it. Pure NumPy/SciPy; no
kernels. Conventions: ``lr`` is the learning rate, steps are counted from 0 (the start), the escape criterion
is "the iterate leaves the ball of radius ``R`` around the critical point".

Strict saddle (Dauphin et al. 2014; Lee et al. 2016), ``f = 1/2 sum_i lambda_i w_i^2`` with ``lambda_min = -gamma``
    Along the escape direction GD multiplies the coordinate by ``1 + lr gamma`` per step, so from distance ``y0``
    it leaves the ball after ``T = ln(R/|y0|) / ln(1 + lr gamma)`` steps (:func:`gd_escape_time`); the integer
    count is the first ``t`` with ``|y0| (1 + lr gamma)^t > R`` (:func:`gd_escape_steps`). From exactly the saddle
    the gradient is 0 and GD never leaves. The stable coordinates shrink, so near the escape the radius is the
    escape coordinate alone (exact when the start lies on the escape direction).
Random start, uniform in the ball of radius r in d dimensions
    The component along one fixed direction has density proportional to ``(1 - y^2/r^2)^((d-1)/2)``, i.e.
    ``(1 + y/r)/2 ~ Beta((d+1)/2, (d+1)/2)``; its root mean square is ``r/sqrt(d+2)``, so ``|y0| ~ r/sqrt(d)``
    (:func:`ball_component_cdf`, :func:`gd_escape_steps_cdf_from_ball`).
Heavy ball (Polyak 1964; PyTorch's ``v = mu v + g; w -= lr v``)
    Along the escape direction ``y_{t+1} = (1 + mu + lr gamma) y_t - mu y_{t-1}``; the larger root of
    ``z^2 - (1 + mu + lr gamma) z + mu = 0``,
    ``z = ((1 + mu + lr gamma) + sqrt((1 + mu + lr gamma)^2 - 4 mu)) / 2``, is the growth factor per step
    (:func:`heavy_ball_growth`), so ``T ~ ln(R/|y0|)/ln z``; :func:`heavy_ball_escape_steps` evaluates the exact
    two-root solution ``y_t = A z+^t + B z-^t``.
The lecture's running-average momentum ``v = b v + (1-b) g; w -= lr v``
    Substituting ``v_{t-1} = (w_{t-1} - w_t)/lr`` gives ``w_{t+1} = w_t - lr (1-b) g_t + b (w_t - w_{t-1})``: the
    heavy ball with ``mu = b`` and learning rate ``lr (1-b)``. Its growth factor is the root above with
    ``lr gamma`` replaced by ``lr (1-b) gamma`` (:func:`running_average_growth`). Both start from ``v = 0``, so
    the first step is ``lr (1-b) g``: the recursion holds from the first step on. With ``eps = lr (1-b) gamma``
    and ``z = 1 + delta``, ``delta^2 + (1 - b - eps) delta - eps = 0``: ``delta`` never exceeds ``lr gamma``
    (the running average escapes no sooner than GD at the same lr). While ``eps << (1-b)^2``,
    ``z ~ 1 + lr gamma`` (slightly less: 1.0092 against GD's 1.01 at lr gamma = 0.01, b = 0.9); as ``b -> 1``
    (``(1-b)^2 << eps``) ``z ~ 1 + sqrt(lr gamma (1-b)) -> 1``: the running average only smooths and, kept long
    enough, slows the escape down. The heavy ball with ``mu = b`` instead grows like GD with the learning rate
    ``lr/(1-b)`` (for lr gamma small).
Gradient noise (SGD with ``g = grad f + sigma xi``, xi standard normal per coordinate and step)
    Started exactly at the saddle, ``y_t = -lr sigma sum_{k<t} (1 + lr gamma)^(t-1-k) xi_k`` is Gaussian with
    ``Var[y_t] = lr^2 sigma^2 sum_{k<t} (1 + lr gamma)^(2k)
    = lr sigma^2 ((1 + lr gamma)^(2t) - 1) / (gamma (2 + lr gamma))``, asymptotically
    ``lr sigma^2/(2 gamma) (1 + lr gamma)^(2t)`` (:func:`sgd_saddle_variance`). A stable coordinate with curvature
    lambda > 0 settles at the stationary variance ``lr sigma^2 / (2 lambda - lr lambda^2)``
    (:func:`sgd_stable_variance`). Escape time: ``y_t / (1 + lr gamma)^t`` is a martingale converging to
    ``Z ~ N(0, lr sigma^2 / (gamma (2 + lr gamma)))``, so after a few ``1/(lr gamma)`` steps the path is
    ``y_t ~ Z (1 + lr gamma)^t`` and ``T ~ ln(R/|Z|)/ln(1 + lr gamma)``; its median uses the median of ``|Z|``,
    ``0.6745`` standard deviations (:func:`sgd_escape_time_quantile`). Approximation stated: the radius is taken
    to be ``sqrt(y^2 + sum of the stable coordinates' stationary variances)`` (their fluctuation neglected), i.e.
    the escape coordinate must reach ``R_eff = sqrt(R^2 - sum_i lr sigma^2/(2 lambda_i - lr lambda_i^2))``.
Plateaus
    Saxe, McClelland & Ganguli 2014 ("Exact solutions to the nonlinear dynamics of learning in deep linear neural
    networks", ICLR; arXiv 1312.6120): one hidden layer, mode strength ``s``, balanced start ``u = a b = u0``,
    gradient flow ``du/dt = 2 lr u (s - u)``, so ``t = (1/(2 s lr)) ln(uf (s - u0) / (u0 (s - uf)))``
    (:func:`saxe_plateau_time`). With ``D`` balanced weight layers (the product ``u = a^D``),
    ``du/dt = lr D u^(2 - 2/D) (s - u)`` (their deep-network equation), integrated numerically in
    :func:`deep_linear_plateau_time`; for ``u0 << s`` and ``D > 2`` it is
    ``t ~ u0^(-(1 - 2/D)) / (lr s (D - 2))``, which approaches their ``1/u0`` scaling as D grows
    (:func:`deep_linear_plateau_time_asymptotic`). Gradient descent's discrete steps differ from the flow by a
    relative O(lr s): :func:`saxe_discrete_steps_bounds` gives rigorous bounds.
    Saturated tanh unit ``f = 1/2 (tanh(a w) - y)^2``: with ``v = tanh(a w)``, ``dv/dt = -lr a^2 (v - y)(1 - v^2)^2``,
    integrated in closed form by partial fractions (:func:`tanh_unit_plateau_time`); for a saturated start
    ``t ~ exp(2 a w0) / (8 (1 - y) lr a^2)``: exponential in the saturation level, and 1/lr.
Degenerate saddle and local maximum
    Monkey saddle ``x^3 - 3 x y^2`` along ``y = 0``, ``x0 < 0``: ``dx/dt = -3 lr x^2``, so ``t = (1/|x0| - 1/R)/(3 lr)``
    (polynomial in ``1/|x0|``, not logarithmic: :func:`monkey_saddle_escape_time`). The local maximum ``-|w|^2``
    is a saddle with ``gamma = 2`` in every direction.
Ravines, ``f = 1/2 sum_i lambda_i w_i^2`` with ``0 < l1 <= ... <= ln``, ``kappa = ln/l1`` (Goh 2017, "Why momentum
    really works", Distill; Polyak 1964)
    GD multiplies coordinate i by ``1 - lr lambda_i``: it oscillates across the ravine when ``lr ln > 1``, diverges
    when ``lr ln > 2``; the best rate ``(kappa - 1)/(kappa + 1)`` is at ``lr = 2/(l1 + ln)``. Heavy ball: the
    best rate ``(sqrt(kappa) - 1)/(sqrt(kappa) + 1)`` at ``lr = (2/(sqrt(l1) + sqrt(ln)))^2``,
    ``mu = ((sqrt(kappa) - 1)/(sqrt(kappa) + 1))^2``. :func:`steps_to_tolerance` turns a rate into steps for a
    single geometric mode; at Goh's optimum the heavy ball's two roots coincide, the error is
    ``(a + b t) z^t`` and the exact counts are :func:`gd_steps_to_tolerance` and
    :func:`heavy_ball_steps_to_tolerance` (95 steps at kappa = 100 against the rate's 69).
Reddi, Kale & Kumar 2018 ("On the convergence of Adam and beyond", ICLR), Theorem 1
    ``f_t(x) = C x`` when ``t mod 3 = 1`` else ``-x`` on ``[-1, 1]``; the average slope ``(C - 2)/3`` is positive
    for ``C > 2``, so the optimum is ``x = -1``. With ``b1 = 0`` and ``b2 = 1/(1 + C^2)`` Adam's second moment
    forgets the rare large gradient within a period, so per period it moves ``-C/sqrt(v1) + 1/sqrt(v2) +
    1/sqrt(v3)`` (times the step size) with the periodic fixed point ``v1, v2, v3`` of ``v``: positive, to +1
    (:func:`reddi_adam_drift`). AMSGrad divides every step by ``max v``, so it moves ``(2 - C)/sqrt(max v) < 0``:
    to -1.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from ..validation import check_non_negative, check_positive, check_unit_interval

#: Median of |Z| for Z standard normal: the 3/4 quantile of N(0, 1).
HALF_NORMAL_MEDIAN = float(special.ndtri(0.75))

# The normal and beta laws below are scipy.special's functions (ndtr, ndtri, betainc, betaincinv), the ones
# scipy.stats.norm and scipy.stats.beta evaluate, with the same bits (checked on 10^5 points each): importing
# scipy.stats takes 0.5 to 0.7 s of a 2-core machine, most of a saddle run's theory. scipy.optimize and
# scipy.integrate are imported by the few functions that solve or integrate.


def _normal_cdf(x):
    """``P(Z <= x)`` for Z standard normal (``scipy.stats.norm.cdf``)."""
    return special.ndtr(x)


def _normal_sf(x):
    """``P(Z > x)`` for Z standard normal (``scipy.stats.norm.sf``)."""
    return special.ndtr(-np.asarray(x, dtype=float))


def _normal_isf(q):
    """The x with ``P(Z > x) = q`` for Z standard normal (``scipy.stats.norm.isf``)."""
    return -special.ndtri(q)


# ----------------------------------------------------------------------------------------------------------
# Strict saddle: gradient descent


def gd_growth(lr, gamma):
    """GD's growth factor per step along the direction of curvature ``-gamma``: ``1 + lr gamma``."""
    return 1.0 + check_positive(lr, "lr") * check_positive(gamma, "gamma")


def gd_escape_time(y0, lr, gamma, radius=1.0):
    """Continuous escape time ``T = ln(R/|y0|) / ln(1 + lr gamma)`` of GD from distance ``y0`` (reference.md s.4).

    ``y0`` may be an array; ``y0 = 0`` (exactly the saddle) gives ``inf``: the gradient vanishes and GD stays.
    Starts already outside the ball give 0.
    """
    radius = check_positive(radius, "radius")
    growth = gd_growth(lr, gamma)
    y0 = np.abs(np.asarray(y0, dtype=float))
    with np.errstate(divide="ignore"):
        time = np.log(radius / y0) / math.log(growth)
    return np.maximum(time, 0.0) if time.ndim else float(max(time, 0.0))


def _first_crossing(amplitude, growth, radius):
    """The first integer t >= 0 with amplitude * growth^t > radius (amplitude > 0), checked against the powers."""
    if amplitude > radius:
        return 0
    t = int(math.floor(math.log(radius / amplitude) / math.log(growth))) + 1
    # The logarithm can land a rounding error off an integer: step to the exact crossing of the power itself.
    while t > 0 and amplitude * growth ** (t - 1) > radius:
        t -= 1
    while amplitude * growth**t <= radius:
        t += 1
    return t


def gd_escape_steps(y0, lr, gamma, radius=1.0):
    """The exact number of GD steps to leave the ball: the first ``t`` with ``|y0| (1 + lr gamma)^t > R``.

    Equals ``floor(T) + 1`` with ``T`` from :func:`gd_escape_time` (at an integer ``t = T`` the iterate lies on
    the sphere, not outside). ``y0 = 0`` returns -1 (never escapes). Scalar or array.
    """
    radius = check_positive(radius, "radius")
    growth = gd_growth(lr, gamma)
    y0 = np.abs(np.asarray(y0, dtype=float))
    flat = [(-1 if y == 0.0 else _first_crossing(float(y), growth, radius)) for y in y0.ravel()]
    steps = np.asarray(flat, dtype=np.int64).reshape(y0.shape)
    return steps if steps.ndim else int(steps)


# ----------------------------------------------------------------------------------------------------------
# Random start in a ball


def ball_component_rms(radius, dim):
    """Root mean square of one coordinate of a point uniform in the d-ball of radius r: ``r / sqrt(d + 2)``."""
    return check_positive(radius, "radius") / math.sqrt(check_positive(dim, "dim") + 2.0)


def _ball_beta_half(dim):
    """The parameter ``(d+1)/2`` of the symmetric Beta law of ``(1 + y/r)/2``."""
    return (float(dim) + 1.0) / 2.0


def ball_component_cdf(size, radius, dim):
    """``P(|y| <= size)`` for the coordinate ``y`` of a point uniform in the d-ball of radius r along a fixed axis.

    The slice of the ball at height y is a (d-1)-ball of radius ``sqrt(r^2 - y^2)``, so the density of y is
    proportional to ``(1 - y^2/r^2)^((d-1)/2)``: ``(1 + y/r)/2 ~ Beta((d+1)/2, (d+1)/2)``.
    """
    radius = check_positive(radius, "radius")
    dim = int(check_positive(dim, "dim"))
    size = np.clip(np.asarray(size, dtype=float) / radius, 0.0, 1.0)
    half = _ball_beta_half(dim)
    cdf = 2.0 * special.betainc(half, half, (1.0 + size) / 2.0) - 1.0  # the Beta law's cdf
    return np.clip(cdf, 0.0, 1.0)


def ball_component_quantile(q, radius, dim):
    """The q-quantile of ``|y|`` (inverse of :func:`ball_component_cdf`); q = 1/2 gives the median distance."""
    radius = check_positive(radius, "radius")
    dim = int(check_positive(dim, "dim"))
    q = np.asarray(q, dtype=float)
    half = _ball_beta_half(dim)
    return radius * (2.0 * special.betaincinv(half, half, (1.0 + q) / 2.0) - 1.0)  # the Beta law's quantile


def gd_escape_steps_cdf_from_ball(steps, lr, gamma, radius, start_radius, dim):
    """``P(escape steps <= t)`` for GD started uniformly in the ball of radius r on the saddle with one
    direction of curvature ``-gamma``, taking the radius to be the escape coordinate alone.

    Escape by step t iff ``|y0| > R (1 + lr gamma)^(-t)``. The stable coordinates are at most r and shrink, so
    the approximation is good for ``r << R`` (then they add at most ``r^2/(2R)`` to the radius at escape).
    """
    growth = gd_growth(lr, gamma)
    threshold = check_positive(radius, "radius") * growth ** (-np.asarray(steps, dtype=float))
    return 1.0 - ball_component_cdf(threshold, start_radius, dim)


# ----------------------------------------------------------------------------------------------------------
# Momentum


def heavy_ball_growth(lr, gamma, mu):
    """Heavy ball's growth factor per step along curvature ``-gamma``:
    ``z = ((1 + mu + lr gamma) + sqrt((1 + mu + lr gamma)^2 - 4 mu)) / 2`` (the larger root of
    ``z^2 - (1 + mu + lr gamma) z + mu``; ``mu = 0`` gives GD's ``1 + lr gamma``)."""
    rate = check_positive(lr, "lr") * check_positive(gamma, "gamma")
    mu = check_unit_interval(mu, "mu")
    trace = 1.0 + mu + rate
    return (trace + math.sqrt(trace * trace - 4.0 * mu)) / 2.0


def running_average_growth(lr, gamma, beta):
    """Growth factor of the lecture's momentum ``v = b v + (1-b) g; w -= lr v``: heavy ball with ``mu = b`` and the
    learning rate ``lr (1 - b)``, i.e. ``z = ((1 + b + lr (1-b) gamma) + sqrt((1 + b + lr (1-b) gamma)^2 - 4 b))/2``.

    ``beta = 0`` is GD. It is at most GD's ``1 + lr gamma``: close to it while ``lr (1-b) gamma << (1-b)^2``, but
    ``z ~ 1 + sqrt(lr gamma (1 - b))`` as ``b -> 1``, not ``1 + lr gamma`` (at lr gamma = 0.01: 1.0092 for
    b = 0.9, 1.0062 for b = 0.99). See the module docstring for the derivation.
    """
    beta = check_unit_interval(beta, "beta")
    return heavy_ball_growth(check_positive(lr, "lr") * (1.0 - beta), gamma, beta)


def heavy_ball_escape_time(y0, lr, gamma, mu, radius=1.0):
    """Asymptotic escape time of the heavy ball, ``ln(R/|y0|) / ln z`` with z from :func:`heavy_ball_growth`."""
    radius = check_positive(radius, "radius")
    growth = heavy_ball_growth(lr, gamma, mu)
    y0 = np.abs(np.asarray(y0, dtype=float))
    with np.errstate(divide="ignore"):
        time = np.log(radius / y0) / math.log(growth)
    return np.maximum(time, 0.0) if time.ndim else float(max(time, 0.0))


def heavy_ball_trajectory_coefficients(lr, gamma, mu, first_step_scale=1.0):
    """``(A, B, z+, z-)`` with ``y_t / y0 = A z+^t + B z-^t`` for the heavy ball from rest along curvature -gamma.

    The recursion ``y_{t+1} = (1 + mu + lr gamma) y_t - mu y_{t-1}`` holds from t = 1; the first step is
    ``y_1 = (1 + first_step_scale * lr gamma) y0`` (1 for PyTorch's heavy ball, whose first ``v`` is ``g``).
    """
    z_plus = heavy_ball_growth(lr, gamma, mu)
    z_minus = mu / z_plus
    y1 = 1.0 + first_step_scale * lr * gamma
    if z_plus == z_minus:  # mu = 0 and lr gamma = 0 cannot happen (lr, gamma > 0): roots are distinct
        raise ValueError("repeated root")
    a = (y1 - z_minus) / (z_plus - z_minus)
    return a, 1.0 - a, z_plus, z_minus


def heavy_ball_escape_steps(y0, lr, gamma, mu, radius=1.0):
    """Exact first ``t`` with ``|y_t| > R`` for the heavy ball (PyTorch form, from rest) along curvature -gamma.

    Both roots are positive and ``A > 0, B = 1 - A``, ``|y_t|`` grows monotonically, so the first crossing is
    found from the asymptotic time and corrected against the exact two-root solution. ``y0 = 0``: -1 (never).
    """
    radius = check_positive(radius, "radius")
    a, b, z_plus, z_minus = heavy_ball_trajectory_coefficients(lr, gamma, mu)
    y0 = np.abs(np.asarray(y0, dtype=float))

    def size(amplitude, t):
        return amplitude * (a * z_plus**t + b * z_minus**t)

    out = []
    for amplitude in y0.ravel():
        amplitude = float(amplitude)
        if amplitude == 0.0:
            out.append(-1)
            continue
        if amplitude > radius:
            out.append(0)
            continue
        t = max(int(math.floor(math.log(radius / (a * amplitude)) / math.log(z_plus))), 0)
        while t > 0 and size(amplitude, t - 1) > radius:
            t -= 1
        while size(amplitude, t) <= radius:
            t += 1
        out.append(t)
    steps = np.asarray(out, dtype=np.int64).reshape(y0.shape)
    return steps if steps.ndim else int(steps)


# ----------------------------------------------------------------------------------------------------------
# Gradient noise


def sgd_saddle_variance(steps, lr, gamma, sigma, exact=True):
    """``Var[y_t]`` along the escape direction for SGD from exactly the saddle with gradient-noise std sigma.

    Exact: ``lr^2 sigma^2 sum_{k<t} (1 + lr gamma)^(2k) = lr sigma^2 ((1 + lr gamma)^(2t) - 1)/(gamma (2 + lr gamma))``.
    Asymptotic (``exact=False``, reference.md s.4): ``lr sigma^2/(2 gamma) (1 + lr gamma)^(2t)``.
    """
    lr, gamma = check_positive(lr, "lr"), check_positive(gamma, "gamma")
    sigma = check_non_negative(sigma, "sigma")
    t = np.asarray(steps, dtype=float)
    growth2 = (1.0 + lr * gamma) ** (2.0 * t)
    if exact:
        return lr * sigma**2 * (growth2 - 1.0) / (gamma * (2.0 + lr * gamma))
    return lr * sigma**2 / (2.0 * gamma) * growth2


def sgd_stable_variance(lr, curvature, sigma, steps=None):
    """Variance of a stable coordinate (curvature lambda > 0, ``lr lambda < 2``) under SGD noise from 0.

    Stationary: ``lr^2 sigma^2 / (1 - (1 - lr lambda)^2) = lr sigma^2 / (2 lambda - lr lambda^2)``; after ``steps``
    steps the same times ``1 - (1 - lr lambda)^(2t)``.
    """
    lr, curvature = check_positive(lr, "lr"), check_positive(curvature, "curvature")
    sigma = check_non_negative(sigma, "sigma")
    if not lr * curvature < 2.0:
        raise ValueError(f"lr * curvature must be below 2 for a stationary variance, got {lr * curvature!r}")
    stationary = lr * sigma**2 / (2.0 * curvature - lr * curvature**2)
    if steps is None:
        return stationary
    return stationary * (1.0 - (1.0 - lr * curvature) ** (2.0 * np.asarray(steps, dtype=float)))


def effective_radius(radius, lr, sigma, stable_curvatures=()):
    """``sqrt(R^2 - sum_i lr sigma^2/(2 lambda_i - lr lambda_i^2))``: the size the escape coordinate must reach when
    the stable coordinates sit at their stationary variance (their fluctuation neglected)."""
    radius = check_positive(radius, "radius")
    extra = sum(sgd_stable_variance(lr, c, sigma) for c in np.atleast_1d(np.asarray(stable_curvatures, float)))
    if extra >= radius * radius:
        raise ValueError("the stable coordinates' stationary variance already exceeds radius^2: no saddle to leave")
    return math.sqrt(radius * radius - extra)


def sgd_limit_std(lr, gamma, sigma):
    """Std of ``Z = lim y_t / (1 + lr gamma)^t`` from the exact saddle:
    ``sqrt(lr sigma^2 / (gamma (2 + lr gamma)))``."""
    lr, gamma = check_positive(lr, "lr"), check_positive(gamma, "gamma")
    return math.sqrt(lr * check_non_negative(sigma, "sigma") ** 2 / (gamma * (2.0 + lr * gamma)))


def sgd_escape_probability(steps, lr, gamma, sigma, radius=1.0, y0=0.0, stable_curvatures=()):
    """``P(|y_t| > R_eff)`` with ``y_t ~ N(y0 (1 + lr gamma)^t, Var_t)`` (exact mean and variance at step t).

    A lower bound on ``P(escape by t)`` only under the effective-radius approximation (the stable coordinates
    held at their stationary variance, :func:`effective_radius`): then a path with ``|y_t| > R_eff`` at t has
    escaped by t. The stable coordinates' fluctuation about that variance can carry ``|w|`` past R earlier or
    later, so for the real process it is an approximation, not a bound; once the path grows exponentially,
    returns below R are rare and the two agree.
    """
    r_eff = effective_radius(radius, lr, sigma, stable_curvatures)
    t = np.asarray(steps, dtype=float)
    mean = float(y0) * (1.0 + lr * gamma) ** t
    std = np.sqrt(sgd_saddle_variance(t, lr, gamma, sigma))
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = _normal_sf((r_eff - mean) / std)
        lower = _normal_cdf((-r_eff - mean) / std)
    return np.where(std > 0, upper + lower, (np.abs(mean) > r_eff).astype(float))


def sgd_escape_time_quantile(q, lr, gamma, sigma, radius=1.0, y0=0.0, stable_curvatures=()):
    """The q-quantile of SGD's escape time (continuous) from distance y0 (0: exactly the saddle).

    Uses ``y_t ~ (y0 + Z)(1 + lr gamma)^t`` with ``Z ~ N(0, lr sigma^2/(gamma (2 + lr gamma)))`` (the martingale
    limit), so ``T = ln(R_eff/|y0 + Z|) / ln(1 + lr gamma)`` and ``P(T <= t) = P(|y0 + Z| >= R_eff (1+lr gamma)^-t)``.
    From the saddle the median is ``ln(R_eff / (0.6745 std(Z))) / ln(1 + lr gamma)``. Ignores the transient of the
    first few ``1/(lr gamma)`` steps, so it is accurate when the escape takes many of them.
    """
    q = np.asarray(q, dtype=float)
    r_eff = effective_radius(radius, lr, sigma, stable_curvatures)
    std = sgd_limit_std(lr, gamma, sigma)
    log_growth = math.log(1.0 + lr * gamma)
    y0 = abs(float(y0))
    if y0 == 0.0:
        if std == 0.0:
            return np.full(q.shape, np.inf) if q.ndim else math.inf
        # P(T <= t) = q  <=>  P(|Z| >= a) = q  <=>  a = std * z_{1 - q/2}
        size = std * _normal_isf(q / 2.0)
    else:
        from scipy import optimize

        # |y0 + Z| is a folded normal: solve P(|y0 + Z| >= a) = q for a by bisection on each q.
        def tail(a):
            return _normal_sf((a - y0) / std) + _normal_cdf((-a - y0) / std) if std > 0 else float(a < y0)

        size = np.array(
            [optimize.brentq(lambda a: tail(a) - qq, 0.0, y0 + 40.0 * std + 1e-300) for qq in np.atleast_1d(q)]
        ).reshape(q.shape)
    with np.errstate(divide="ignore"):
        time = np.log(r_eff / size) / log_growth
    return np.maximum(time, 0.0) if np.ndim(time) else float(max(time, 0.0))


def sgd_escape_time_cdf(steps, lr, gamma, sigma, radius=1.0, y0=0.0, stable_curvatures=()):
    """``P(T <= t)`` for SGD's escape time (the model of :func:`sgd_escape_time_quantile`):
    ``P(|y0 + Z| >= R_eff (1 + lr gamma)^(-t))`` with ``Z ~ N(0, lr sigma^2/(gamma (2 + lr gamma)))``. The integer
    escape step is the first step past T, so ``P(steps <= t)`` is the same number at integer t."""
    r_eff = effective_radius(radius, lr, sigma, stable_curvatures)
    std = sgd_limit_std(lr, gamma, sigma)
    size = r_eff * (1.0 + lr * gamma) ** (-np.asarray(steps, dtype=float))
    y0 = abs(float(y0))
    if std == 0.0:
        return (y0 >= size).astype(float)
    return _normal_sf((size - y0) / std) + _normal_cdf((-size - y0) / std)


def sgd_median_escape_time(lr, gamma, sigma, radius=1.0, y0=0.0, stable_curvatures=()):
    """Median escape time of SGD (see :func:`sgd_escape_time_quantile` with q = 1/2)."""
    return float(sgd_escape_time_quantile(0.5, lr, gamma, sigma, radius, y0, stable_curvatures))


def sgd_median_escape_steps_exact_variance(lr, gamma, sigma, radius=1.0, stable_curvatures=(), max_steps=10**7):
    """The first integer t with ``P(|y_t| > R_eff) >= 1/2`` from the exact saddle, with the exact ``Var[y_t]``:
    ``Var[y_t] >= (R_eff / 0.6745)^2``. Solved in closed form from the geometric sum."""
    r_eff = effective_radius(radius, lr, sigma, stable_curvatures)
    lr, gamma = float(lr), float(gamma)
    target = (r_eff / HALF_NORMAL_MEDIAN) ** 2
    if sigma == 0:
        return -1
    # (1 + lr gamma)^(2t) >= 1 + target gamma (2 + lr gamma) / (lr sigma^2)
    t = math.log1p(target * gamma * (2.0 + lr * gamma) / (lr * sigma**2)) / (2.0 * math.log1p(lr * gamma))
    t = max(int(math.ceil(t)) - 1, 0)
    while sgd_saddle_variance(t, lr, gamma, sigma) < target and t < max_steps:
        t += 1
    return t


# ----------------------------------------------------------------------------------------------------------
# Degenerate saddle


def monkey_saddle_escape_time(x0, lr, radius=1.0):
    """Gradient-flow escape time of the monkey saddle ``x^3 - 3 x y^2`` along ``y = 0`` from ``x0 < 0``:
    ``dx/dt = -3 lr x^2`` gives ``1/x`` linear in t, ``t = (1/|x0| - 1/R) / (3 lr)`` (``x0 >= 0`` never leaves:
    x moves toward 0). Polynomial in ``1/|x0|``: a degenerate saddle is far slower to leave than a strict one."""
    lr, radius = check_positive(lr, "lr"), check_positive(radius, "radius")
    x0 = np.asarray(x0, dtype=float)
    with np.errstate(divide="ignore"):
        time = np.where(x0 < 0, (1.0 / np.abs(x0) - 1.0 / radius) / (3.0 * lr), np.inf)
    time = np.maximum(time, 0.0)
    return time if time.ndim else float(time)


# ----------------------------------------------------------------------------------------------------------
# Plateaus: Saxe et al.'s deep linear networks


def saxe_plateau_time(lr, s, u0, uf):
    """Saxe, McClelland & Ganguli 2014 (eq. 6 in the arXiv 1312.6120 version, with ``tau = 1/lr``): the time for one
    hidden layer's mode strength to grow from ``u0`` to ``uf`` under gradient flow from a balanced start,
    ``t = (1/(2 s lr)) ln(uf (s - u0) / (u0 (s - uf)))`` (``0 < u0 < uf < s``)."""
    lr, s, u0, uf = check_positive(lr, "lr"), check_positive(s, "s"), check_positive(u0, "u0"), check_positive(uf, "uf")
    if not u0 < s or not uf < s:
        raise ValueError(f"u0 and uf must lie in (0, s) = (0, {s}), got u0={u0}, uf={uf}")
    return math.log(uf * (s - u0) / (u0 * (s - uf))) / (2.0 * s * lr)


def deep_linear_plateau_time(lr, s, u0, uf, depth=2):
    """Gradient-flow time for the product ``u = prod_i w_i`` of ``depth`` balanced scalar weights to grow from u0
    to uf on ``f = 1/2 (s - u)^2``.

    Each weight is ``a = u^(1/D)``, ``da/dt = lr a^(D-1) (s - u)``, so ``du/dt = lr D u^(2 - 2/D) (s - u)``
    (Saxe et al. 2014's deep-network equation) and ``t = (1/(lr D)) int_{u0}^{uf} du / (u^(2 - 2/D) (s - u))``,
    integrated in ``x = ln u``. ``depth = 2`` is :func:`saxe_plateau_time`; ``depth = 1`` is a plain linear model.
    """
    lr, s, u0, uf = check_positive(lr, "lr"), check_positive(s, "s"), check_positive(u0, "u0"), check_positive(uf, "uf")
    depth = int(check_positive(depth, "depth"))
    if not u0 < s or not uf < s:
        raise ValueError(f"u0 and uf must lie in (0, s) = (0, {s}), got u0={u0}, uf={uf}")
    if depth == 2:
        return saxe_plateau_time(lr, s, u0, uf)
    power = 1.0 - 2.0 / depth

    def integrand(x):
        return math.exp(-power * x) / (s - math.exp(x))

    from scipy import integrate

    value, _ = integrate.quad(integrand, math.log(u0), math.log(uf), epsabs=0.0, epsrel=1e-11, limit=200)
    return value / (lr * depth)


def deep_linear_plateau_time_asymptotic(lr, s, u0, depth):
    """Leading term of :func:`deep_linear_plateau_time` for ``u0 << s``, ``depth > 2``:
    ``t ~ u0^(-(1 - 2/D)) / (lr s (D - 2))`` (from ``int_{u0} u^(-(2 - 2/D)) du / s``), i.e. ``~ 1/(lr s D u0)`` as D
    grows: Saxe et al.'s ``1/u0`` plateau of deep networks, against ``ln(1/u0)`` at depth 2. In terms of the
    per-layer scale ``a0 = u0^(1/D)``: ``a0^-(D-2) / (lr s (D-2))``, which grows exponentially with depth."""
    lr, s, u0 = check_positive(lr, "lr"), check_positive(s, "s"), check_positive(u0, "u0")
    depth = int(depth)
    if depth <= 2:
        raise ValueError(f"depth must exceed 2 for the power-law plateau, got {depth}")
    return u0 ** (-(1.0 - 2.0 / depth)) / (lr * s * (depth - 2))


def deep_linear_target_for_loss_drop(s, u0, loss_drop):
    """The product uf at which ``1/2 (s - u)^2`` has fallen ``loss_drop`` below its start:
    ``s - sqrt((s - u0)^2 - 2 delta)``."""
    remaining = (float(s) - float(u0)) ** 2 - 2.0 * check_positive(loss_drop, "loss_drop")
    if remaining < 0:
        raise ValueError(f"loss_drop {loss_drop} exceeds the starting loss {(s - u0) ** 2 / 2}")
    return float(s) - math.sqrt(remaining)


def saxe_discrete_steps_bounds(lr, s, u0, uf):
    """Bounds on the number N of GD steps (balanced depth-2 start) for u to first reach uf, against the flow time T.

    Derivation. In the logit ``x = ln(u/(s - u))`` the flow moves at the constant speed ``dx/dt = 2 lr s``, so
    ``T = (x_f - x_0)/(2 eps)`` with ``eps = lr s``. One GD step ``a <- a (1 + lr (s - a^2))`` gives
    ``u' = u (1 + p)^2`` and ``s - u' = (s - u)(1 - 2 q - p q)`` with ``p = lr (s - u)``, ``q = lr u``, ``p + q = eps``,
    hence ``dx = 2 ln(1 + p) - ln(1 - 2 q - p q)``. With ``ln(1 + p) >= p - p^2/2`` and ``-ln(1 - z) >= z``,
    ``dx >= 2 eps - p^2 >= 2 eps - eps^2``; ``dx`` increases with q at fixed eps, so ``dx <= -ln(1 - 2 eps)``
    (at ``q = eps``). Therefore ``T * 2 eps / (-ln(1 - 2 eps)) <= N <= T / (1 - eps/2) + 1``: the relative error
    of the flow formula is O(lr s) (at most about ``eps`` either way). Requires ``eps <= 1/4`` (u stays below s).
    """
    eps = check_positive(lr, "lr") * check_positive(s, "s")
    if eps > 0.25:
        raise ValueError(f"lr * s must be at most 1/4 for the bound, got {eps}")
    flow = saxe_plateau_time(lr, s, u0, uf)
    return flow * 2.0 * eps / (-math.log1p(-2.0 * eps)), flow / (1.0 - eps / 2.0) + 1.0


# ----------------------------------------------------------------------------------------------------------
# Plateaus: the saturated tanh unit


def _tanh_unit_antiderivative(u, y):
    """P with dP/dv = 1/((v - y)(1 - v^2)^2) at v = tanh(u), in terms of u so that saturated units keep precision.

    Partial fractions: A/(v-y) + B1/(1-v) + B2/(1-v)^2 + C1/(1+v) + C2/(1+v)^2 with A = 1/(1-y^2)^2,
    B2 = 1/(4(1-y)), B1 = (2-y)/(4(1-y)^2), C2 = -1/(4(1+y)), C1 = -(2+y)/(4(1+y)^2).
    """
    a_coef = 1.0 / (1.0 - y * y) ** 2
    b1 = (2.0 - y) / (4.0 * (1.0 - y) ** 2)
    b2 = 1.0 / (4.0 * (1.0 - y))
    c1 = -(2.0 + y) / (4.0 * (1.0 + y) ** 2)
    c2 = -1.0 / (4.0 * (1.0 + y))
    # 1 - tanh u = 2/(1 + e^{2u}), 1 + tanh u = 2/(1 + e^{-2u}): no cancellation when |u| is large.
    log_one_minus = math.log(2.0) - np.logaddexp(0.0, 2.0 * u)
    log_one_plus = math.log(2.0) - np.logaddexp(0.0, -2.0 * u)
    v = math.tanh(u)
    return (
        a_coef * math.log(abs(v - y))
        - b1 * log_one_minus
        + b2 * math.exp(-log_one_minus)
        + c1 * log_one_plus
        - c2 * math.exp(-log_one_plus)
    )


def tanh_unit_plateau_time(lr, w0, w_end, a=1.0, y=0.0):
    """Gradient-flow time for the saturated unit ``f = 1/2 (tanh(a w) - y)^2`` to move from w0 to w_end (toward y).

    With ``v = tanh(a w)``: ``dw/dt = -lr a (v - y)(1 - v^2)`` and ``dv/dt = a (1 - v^2) dw/dt``, so
    ``dt = -dv / (lr a^2 (v - y)(1 - v^2)^2)`` and ``t = (P(v0) - P(v_end)) / (lr a^2)`` with the partial-fraction
    antiderivative P. Requires ``|y| < 1`` and w_end between w0 and the target ``atanh(y)/a``.
    See :func:`tanh_unit_plateau_time_asymptotic` for the saturated limit.
    """
    lr, a = check_positive(lr, "lr"), check_positive(a, "a")
    y = float(y)
    if not -1.0 < y < 1.0:
        raise ValueError(f"y must lie in (-1, 1), got {y}")
    u0, u1 = a * float(w0), a * float(w_end)
    target = math.atanh(y)
    if u0 < target:  # mirror: v -> -v, y -> -y
        u0, u1, y, target = -u0, -u1, -y, -target
    if not target < u1 <= u0:
        raise ValueError(f"w_end must lie between w0 and the target atanh(y)/a, got w0={w0}, w_end={w_end}")
    return (_tanh_unit_antiderivative(u0, y) - _tanh_unit_antiderivative(u1, y)) / (lr * a * a)


def tanh_unit_plateau_time_asymptotic(lr, w0, a=1.0, y=0.0):
    """The saturated limit of :func:`tanh_unit_plateau_time` (``a w0 >> 1``, the B2 term):
    ``t ~ 1/(4 (1 - y)(1 - tanh(a w0)) lr a^2) ~ exp(2 a w0) / (8 (1 - y) lr a^2)``: exponential in the saturation
    level ``a w0`` (the gradient is ``~ 4 a (1 - y) exp(-2 a w0)``), and proportional to 1/lr."""
    lr, a = check_positive(lr, "lr"), check_positive(a, "a")
    u0 = a * abs(float(w0))
    y = float(y) if w0 >= 0 else -float(y)
    one_minus = 2.0 / (1.0 + math.exp(2.0 * u0))
    return 1.0 / (4.0 * (1.0 - y) * one_minus * lr * a * a)


def tanh_unit_target_for_loss_drop(w0, loss_drop, a=1.0, y=0.0):
    """The w at which ``1/2 (tanh(a w) - y)^2`` has fallen ``loss_drop`` below its value at w0."""
    a = check_positive(a, "a")
    residual0 = math.tanh(a * float(w0)) - float(y)
    remaining = residual0 * residual0 - 2.0 * check_positive(loss_drop, "loss_drop")
    if remaining < 0:
        raise ValueError(f"loss_drop {loss_drop} exceeds the starting loss {residual0**2 / 2}")
    return math.atanh(float(y) + math.copysign(math.sqrt(remaining), residual0)) / a


# ----------------------------------------------------------------------------------------------------------
# Ravines


def gd_factor(lr, curvature):
    """GD's factor per step on a coordinate of curvature lambda: ``1 - lr lambda`` (negative: it oscillates)."""
    return 1.0 - float(lr) * np.asarray(curvature, dtype=float)


def gd_oscillates(lr, lambda_max):
    """GD flips the sign of the steepest coordinate every step when ``lr lambda_max > 1``."""
    return float(lr) * float(lambda_max) > 1.0


def gd_diverges(lr, lambda_max):
    """GD diverges when ``lr lambda_max > 2`` (the factor ``1 - lr lambda`` is below -1)."""
    return float(lr) * float(lambda_max) > 2.0


def gd_rate(lr, curvatures):
    """GD's contraction per step on a quadratic: ``max_i |1 - lr lambda_i|``."""
    return float(np.max(np.abs(gd_factor(lr, curvatures))))


def gd_optimal_lr(lambda_min, lambda_max):
    """``2 / (l1 + ln)``: equalises the slowest and the steepest coordinate."""
    return 2.0 / (check_positive(lambda_min, "lambda_min") + check_positive(lambda_max, "lambda_max"))


def gd_optimal_rate(kappa):
    """Best GD rate on a quadratic with condition number kappa: ``(kappa - 1)/(kappa + 1)``."""
    kappa = check_positive(kappa, "kappa")
    return (kappa - 1.0) / (kappa + 1.0)


def heavy_ball_rate(lr, mu, curvatures):
    """Heavy ball's asymptotic contraction per step on a quadratic: the largest modulus over the curvatures of the
    roots of ``z^2 - (1 + mu - lr lambda) z + mu = 0``."""
    lr, mu = float(lr), check_unit_interval(mu, "mu")
    worst = 0.0
    for curvature in np.atleast_1d(np.asarray(curvatures, dtype=float)):
        roots = np.roots([1.0, -(1.0 + mu - lr * curvature), mu])
        worst = max(worst, float(np.max(np.abs(roots))))
    return worst


def heavy_ball_oscillation_angle(lr, mu, curvature):
    """Rotation per step of the dominant mode of one coordinate under the heavy ball (``mu = 0``: GD).

    The coordinate follows ``y_t ~ |z|^t cos(theta t + phi)`` with z the dominant root of
    ``z^2 - (1 + mu - lr lambda) z + mu``: theta = 0 for a positive real root (monotone decay), pi for a
    negative real root (GD with ``lr lambda > 1``: a sign flip every step), ``arccos(trace / (2 sqrt(mu)))`` for
    complex roots. The long-run fraction of steps on which y changes sign is ``theta / pi``
    (:func:`sign_flip_fraction`).
    """
    mu = check_unit_interval(mu, "mu")
    trace = 1.0 + mu - float(lr) * float(curvature)
    disc = trace * trace - 4.0 * mu
    if disc >= 0.0:
        return 0.0 if trace >= 0.0 else math.pi
    return math.acos(trace / (2.0 * math.sqrt(mu)))


def sign_flip_fraction(lr, mu, curvature):
    """Long-run fraction of steps that flip the sign of the coordinate: ``theta / pi`` (1: GD's zig-zag)."""
    return heavy_ball_oscillation_angle(lr, mu, curvature) / math.pi


def heavy_ball_optimal(lambda_min, lambda_max):
    """Goh 2017's optimal heavy ball on a quadratic: ``(lr, mu, rate)`` with ``lr = (2/(sqrt(l1) + sqrt(ln)))^2``,
    ``mu = ((sqrt(kappa) - 1)/(sqrt(kappa) + 1))^2``, rate ``sqrt(mu) = (sqrt(kappa) - 1)/(sqrt(kappa) + 1)``."""
    l1, ln = check_positive(lambda_min, "lambda_min"), check_positive(lambda_max, "lambda_max")
    root_kappa = math.sqrt(ln / l1)
    rate = (root_kappa - 1.0) / (root_kappa + 1.0)
    return (2.0 / (math.sqrt(l1) + math.sqrt(ln))) ** 2, rate * rate, rate


def heavy_ball_optimal_rate(kappa):
    """``(sqrt(kappa) - 1)/(sqrt(kappa) + 1)``: the rate of :func:`heavy_ball_optimal`."""
    root_kappa = math.sqrt(check_positive(kappa, "kappa"))
    return (root_kappa - 1.0) / (root_kappa + 1.0)


def steps_to_tolerance(rate, tolerance, initial=1.0):
    """Steps for an error contracting by ``rate`` per step to fall from ``initial`` to ``tolerance``:
    ``ceil(ln(tolerance/initial) / ln(rate))`` (0 when already there, inf when rate >= 1).

    Exact only for an error that shrinks by exactly ``rate`` every step (one geometric mode). Where the
    iteration's two roots coincide, as for the heavy ball at Goh's optimum, the error is ``(a + b t) rate^t`` and
    this count is too small (69 against the exact 95 at kappa = 100, tolerance 1e-6 from (1, 1)): count such a
    run with :func:`heavy_ball_steps_to_tolerance` (or :func:`gd_steps_to_tolerance`), which use the exact form.
    """
    rate = float(rate)
    tolerance, initial = check_positive(tolerance, "tolerance"), check_positive(initial, "initial")
    if initial <= tolerance:
        return 0
    if rate >= 1.0:
        return math.inf
    if rate <= 0.0:
        return 1
    return int(math.ceil(math.log(tolerance / initial) / math.log(rate)))


def gd_distance(steps, lr, curvatures, w0):
    """Exact ``|w_t|`` of GD on ``1/2 sum_i lambda_i w_i^2`` from ``w0``:
    ``sqrt(sum_i (w0_i (1 - lr lambda_i)^t)^2)``."""
    t = np.asarray(steps, dtype=float)[..., None]
    factors = gd_factor(lr, curvatures)
    w0 = np.asarray(w0, dtype=float)
    with np.errstate(over="ignore"):  # a divergent run's distance is inf, as it should be
        return np.sqrt(np.sum((w0 * factors**t) ** 2, axis=-1))


def heavy_ball_distance(steps, lr, mu, curvatures, w0):
    """Exact ``|w_t|`` of the heavy ball (PyTorch's form, from rest: ``w_1 = (1 - lr lambda) w_0``) on a quadratic.

    Per coordinate ``y_{t+1} = (1 + mu - lr lambda) y_t - mu y_{t-1}``: with distinct roots z1, z2 (complex
    allowed) ``y_t = A z1^t + B z2^t``; with a double root z (Goh's optimum at the extreme curvatures)
    ``y_t = (y_0 + (y_1/z - y_0) t) z^t``.
    """
    mu = check_unit_interval(mu, "mu")
    t = np.asarray(steps, dtype=float)
    total = np.zeros(t.shape)
    for curvature, y0 in zip(np.atleast_1d(np.asarray(curvatures, float)), np.atleast_1d(np.asarray(w0, float))):
        trace = 1.0 + mu - lr * curvature
        y1 = (1.0 - lr * curvature) * y0
        disc = complex(trace * trace - 4.0 * mu)
        if abs(disc) <= 1e-12 * max(trace * trace, 1e-300):
            z = trace / 2.0
            y = (y0 + (y1 / z - y0) * t) * z**t if z != 0 else np.where(t == 0, y0, 0.0)
        else:
            root = np.sqrt(disc)
            z1, z2 = (trace + root) / 2.0, (trace - root) / 2.0
            a = (y1 - z2 * y0) / (z1 - z2)
            y = (a * np.power(z1, t) + (y0 - a) * np.power(z2, t)).real
        total = total + np.asarray(y, dtype=float) ** 2
    return np.sqrt(total)


def _first_below(distance, tolerance, max_steps, chunk=4096):
    for begin in range(0, int(max_steps) + 1, chunk):
        t = np.arange(begin, min(begin + chunk, int(max_steps) + 1))
        below = np.flatnonzero(distance(t) < tolerance)
        if below.size:
            return int(t[below[0]])
    return math.inf


def gd_steps_to_tolerance(lr, curvatures, w0, tolerance, max_steps=10**7):
    """First t with ``|w_t| < tolerance`` for GD (exact, :func:`gd_distance`); inf when not within max_steps."""
    active = np.atleast_1d(np.asarray(w0, float)) != 0
    if np.any(np.abs(gd_factor(lr, curvatures))[active] >= 1.0) and gd_distance(0, lr, curvatures, w0) >= tolerance:
        return math.inf  # a coordinate that does not shrink: never within tolerance
    return _first_below(lambda t: gd_distance(t, lr, curvatures, w0), check_positive(tolerance, "tolerance"), max_steps)


def heavy_ball_steps_to_tolerance(lr, mu, curvatures, w0, tolerance, max_steps=10**7):
    """First t with ``|w_t| < tolerance`` for the heavy ball (exact, :func:`heavy_ball_distance`)."""
    active = np.atleast_1d(np.asarray(w0, float)) != 0
    curvatures = np.atleast_1d(np.asarray(curvatures, float))
    if (
        heavy_ball_rate(lr, mu, curvatures[active]) >= 1.0
        and heavy_ball_distance(0, lr, mu, curvatures, w0) >= tolerance
    ):
        return math.inf
    return _first_below(
        lambda t: heavy_ball_distance(t, lr, mu, curvatures, w0), check_positive(tolerance, "tolerance"), max_steps
    )


# ----------------------------------------------------------------------------------------------------------
# Local minima


def double_well_stationary_points(height=1.0, tilt=0.0):
    """Stationary points of ``h (w^2 - 1)^2 + c w``: the real roots of ``4 h w^3 - 4 h w + c``, sorted.

    For ``|c| < 8 h / (3 sqrt 3)`` there are three: left minimum, barrier (local maximum), right minimum."""
    height = check_positive(height, "height")
    roots = np.roots([4.0 * height, 0.0, -4.0 * height, float(tilt)])
    real = np.sort(roots[np.abs(roots.imag) < 1e-9].real)
    return real


def double_well_barrier(height=1.0, tilt=0.0):
    """The local maximum between the wells; GD with a small lr ends in the well on the start's side of it."""
    points = double_well_stationary_points(height, tilt)
    if len(points) != 3:
        raise ValueError(f"tilt {tilt} is too large for two wells (|tilt| must be below 8h/(3 sqrt 3))")
    return float(points[1])


def double_well_left_fraction_uniform_start(half_width, height=1.0, tilt=0.0):
    """Fraction of GD runs (small lr, no noise) ending in the left well when starting uniform in
    ``[-half_width, half_width]``: ``(barrier + half_width)/(2 half_width)``."""
    half_width = check_positive(half_width, "half_width")
    return float(np.clip((double_well_barrier(height, tilt) + half_width) / (2.0 * half_width), 0.0, 1.0))


def _rastrigin_slope_roots(amplitude, extent, rising):
    amplitude = check_positive(amplitude, "amplitude")

    def slope(w):
        return 2.0 * w + 2.0 * math.pi * amplitude * math.sin(2.0 * math.pi * w)

    from scipy import optimize

    grid = np.linspace(-extent, extent, int(400 * extent) + 1)
    values = np.array([slope(w) for w in grid])
    roots = []
    for left, right, v_left, v_right in zip(grid[:-1], grid[1:], values[:-1], values[1:]):
        crossing = (v_left < 0.0 <= v_right) if rising else (v_left > 0.0 >= v_right)
        if crossing:
            roots.append(optimize.brentq(slope, left, right) if v_right != 0.0 else right)
    return np.asarray(roots)


def rastrigin_local_minima(amplitude=10.0, extent=5.12):
    """Local minima of one coordinate of Rastrigin ``w^2 - A cos(2 pi w)`` in ``[-extent, extent]``: the roots of
    ``2 w + 2 pi A sin(2 pi w)`` where it rises through 0, one near each integer when ``A`` is large."""
    return _rastrigin_slope_roots(amplitude, extent, rising=True)


def rastrigin_local_maxima(amplitude=10.0, extent=5.12):
    """Local maxima of one Rastrigin coordinate (the slope falls through 0): the edges of the basins, near the
    half-integers. Rastrigin is separable, so gradient flow ends in the minimum whose 1-D basin holds each
    coordinate of the start."""
    return _rastrigin_slope_roots(amplitude, extent, rising=False)


def rastrigin_global_basin_fraction(half_width, dim, amplitude=10.0):
    """Fraction of starts uniform in ``[-a, a]^d`` from which gradient flow reaches the global minimum 0:
    ``((m+ - m-) / (2 a))^d`` with ``m-, m+`` the local maxima on either side of 0."""
    half_width = check_positive(half_width, "half_width")
    maxima = rastrigin_local_maxima(amplitude, half_width + 1.0)
    right = float(np.min(maxima[maxima > 0], initial=math.inf))
    left = float(np.max(maxima[maxima < 0], initial=-math.inf))
    width = min(right, half_width) - max(left, -half_width)
    return (width / (2.0 * half_width)) ** int(dim)


# ----------------------------------------------------------------------------------------------------------
# Reddi et al.'s counterexample


def reddi_average_slope(big_c):
    """Average slope ``(C - 2)/3`` of the online loss over one period; the optimum on [-1, 1] is -1 iff it is > 0."""
    return (float(big_c) - 2.0) / 3.0


def reddi_optimum(big_c):
    """The minimiser of the average loss on [-1, 1]: -1 when ``C > 2`` (Reddi et al.'s condition), +1 when C < 2."""
    return -1.0 if float(big_c) > 2.0 else 1.0


def reddi_beta2(big_c):
    """Reddi et al.'s ``b2 = 1/(1 + C^2)`` for the counterexample (with ``b1 = 0``)."""
    return 1.0 / (1.0 + float(big_c) ** 2)


def reddi_periodic_second_moment(big_c, beta2=None):
    """The periodic fixed point ``(v1, v2, v3)`` of ``v = b2 v + (1 - b2) g^2`` with gradients ``C, -1, -1``:
    ``v1 = (1 - b2)(C^2 + b2 + b2^2)/(1 - b2^3)`` (just after the large gradient), ``v2 = b2 v1 + 1 - b2``,
    ``v3 = b2 v2 + 1 - b2``."""
    c = float(big_c)
    b2 = reddi_beta2(c) if beta2 is None else float(beta2)
    v1 = (1.0 - b2) * (c * c + b2 + b2 * b2) / (1.0 - b2**3)
    v2 = b2 * v1 + 1.0 - b2
    v3 = b2 * v2 + 1.0 - b2
    return v1, v2, v3


def reddi_adam_drift(big_c, beta2=None, eps=0.0):
    """Adam's (b1 = 0) displacement over one period in units of the step size, in the periodic regime:
    ``-C/(sqrt(v1) + eps) + 1/(sqrt(v2) + eps) + 1/(sqrt(v3) + eps)``. Positive: Adam drifts to +1."""
    v1, v2, v3 = reddi_periodic_second_moment(big_c, beta2)
    return -float(big_c) / (math.sqrt(v1) + eps) + 1.0 / (math.sqrt(v2) + eps) + 1.0 / (math.sqrt(v3) + eps)


def reddi_amsgrad_drift(big_c, beta2=None, eps=0.0):
    """AMSGrad's (b1 = 0) displacement per period: every step divides by ``sqrt(max v) = sqrt(v1)``, so
    ``(2 - C)/(sqrt(v1) + eps)``: negative for ``C > 2``, toward the optimum -1."""
    v1, _, _ = reddi_periodic_second_moment(big_c, beta2)
    return (2.0 - float(big_c)) / (math.sqrt(v1) + eps)


def reddi_limits(big_c, beta2=None):
    """Where the projected iterates go: ``{"adam": +-1, "amsgrad": +-1, "optimum": +-1}`` from the drift signs."""
    return {
        "adam": 1.0 if reddi_adam_drift(big_c, beta2) > 0 else -1.0,
        "amsgrad": 1.0 if reddi_amsgrad_drift(big_c, beta2) > 0 else -1.0,
        "optimum": reddi_optimum(big_c),
    }


__all__ = [
    name
    for name in dir()
    if not name.startswith("_") and name not in ("annotations", "integrate", "math", "np", "optimize", "stats")
]
