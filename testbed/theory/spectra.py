"""Jacobian spectra of deep nets: the free-probability moments and the Fuss-Catalan law.

Setting (Pennington, Schoenholz & Ganguli 2017, "Resurrecting the sigmoid in deep learning through dynamical
isometry: theory and practice", NeurIPS): a depth-L net with square layers of width n -> infinity, weights of
variance sigma_w^2 / n, either i.i.d. Gaussian or a scaled random orthogonal matrix (``sigma_w Q``), biases
N(0, sigma_b^2), pre-activations h ~ N(0, q^l) (q^l from the length map of :mod:`testbed.theory.signal`, q* at
its fixed point). The input-output Jacobian is ``J = prod_l D_l W_l`` with ``D_l = diag(phi'(h^l))``, and
its squared singular values are the eigenvalues of ``J J^T``. Write ``mu_k = E[phi'(h)^(2k)]`` for the moments
of the law of ``D^2``.

**The derivation.** For a law with moments m_1, m_2, ... the moment generating function is
``psi(x) = sum_k m_k x^k`` and the S-transform ``S(z) = (1 + z) / z * psi^-1(z)``. Inverting
``psi(x) = m_1 x + m_2 x^2 + O(x^3)`` gives ``psi^-1(z) = z / m_1 - m_2 z^2 / m_1^3 + O(z^3)``, so

    S(z) = (1 / m_1) (1 + s z + O(z^2)),      s = 1 - m_2 / m_1^2.

S-transforms of freely independent factors multiply (Voiculescu), and the layers of a wide random net are
asymptotically free, so ``S_{JJ^T} = prod_l S_{D_l^2} S_{W_l^T W_l}``: the first coefficients multiply and the
``s`` add. With ``S_{D^2}``: m_1 = mu_1, s = 1 - mu_2 / mu_1^2, and ``S_{W^T W} = sigma_w^-2 (1 + s_1 z + ...)``
with ``s_1 = -1`` for Gaussian weights (Marchenko-Pastur at ratio 1: m_2 / m_1^2 = 2, S(z) = sigma_w^-2 / (1 + z))
and ``s_1 = 0`` for orthogonal ones (all eigenvalues sigma_w^2, S = sigma_w^-2), the mean and the variance of
the squared singular values of J are

    m_1 = prod_l chi_l,            chi_l = sigma_w^2 mu_1(q^l),
    sigma^2_{JJ^T} = m_2 - m_1^2 = m_1^2 sum_l (mu_2(q^l) / mu_1(q^l)^2 - 1 - s_1).

At a fixed point q* on the critical line (chi_1 = sigma_w^2 mu_1 = 1) this is Pennington et al.'s result,
m_1 = 1 and ``sigma^2_{JJ^T} = L (mu_2 / mu_1^2 - 1 - s_1)``: the spread grows linearly with depth unless
``mu_2 / mu_1^2 - 1 - s_1`` vanishes, which needs orthogonal weights (s_1 = 0) *and* ``mu_2 = mu_1^2``, i.e. phi'
constant on the bulk of N(0, q*):

- linear: mu_1 = mu_2 = 1: variance L (Gaussian) and 0 (orthogonal, an exact isometry);
- ReLU: phi'^2 = phi'^4 = [h > 0], mu_1 = mu_2 = 1/2 at every q: variance 2L (Gaussian) and L (orthogonal, with
  sigma_w^2 = 2). No choice of weights or q* gives dynamical isometry;
- hard tanh: phi'^2 = [|h| < 1], mu_1 = mu_2 = p = P(|h| < 1) = erf(1 / sqrt(2 q*)): variance
  L (1/p - 1 - s_1), and for orthogonal weights ``L (1/p - 1) ~ L sqrt(2 q* / pi) e^(-1/(2 q*))``, exponentially
  small as q* -> 0;
- tanh: ``mu_k = 1 - 2k q + (6k^2 + k) q^2 + O(q^3)`` (expand sech^(4k) h = exp(2k (-h^2 + h^4/6 + ...)) and use
  E h^2 = q, E h^4 = 3 q^2; one order further, with E h^6 = 15 q^3, mu_1 = 1 - 2q + 7q^2 - 94q^3/3 and
  mu_2 = 1 - 4q + 26q^2 - 608q^3/3), so ``mu_2 / mu_1^2 - 1 = 8 q*^2 - 80 q*^3 + O(q*^4)``: orthogonal tanh nets
  at small q* are nearly isometric, ``sigma^2_{JJ^T} ~ 8 L q*^2``.

The moments mu_k are Gauss-Hermite quadratures (:func:`testbed.theory.signal.gaussian_expectation`).

**Products of Gaussian linear layers** (sigma_w^2 = 1) have, for n -> infinity, the Fuss-Catalan law of order L
for the squared singular values (Alexeev, Goetze & Tikhomirov 2010; Penson & Zyczkowski 2011), with moments
``m_k = C((L+1) k, k) / (L k + 1)`` (m_1 = 1, m_2 = L + 1: variance L, as above) and support ``[0, (L+1)^(L+1) /
L^L]``; its density has the parametric form (Haagerup & Moeller 2012; Neuschel 2014), for 0 < t < pi / (L+1),

    x(t) = sin((L+1) t)^(L+1) / (sin t sin(L t)^L),
    rho(x(t)) = sin(t)^2 sin(L t)^(L-1) / (pi sin((L+1) t)^L).

(L = 1 is Marchenko-Pastur at ratio 1: x = 4 cos^2 t, rho = tan(t) / (2 pi) = sqrt((4 - x) / x) / (2 pi).)
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..validation import check_finite, check_non_negative_int, check_positive_int
from .signal import _q_star, activation_for_theory, gaussian_expectation

#: s_1, the first coefficient of the S-transform of W^T W / sigma_w^2 (see the module docstring).
WEIGHT_S1 = {"gaussian": -1.0, "orthogonal": 0.0}

#: Bisection steps of :func:`fuss_catalan_density` (the parameter interval halves each step: 2^-80 of pi/(L+1)).
FUSS_CATALAN_BISECTIONS = 80


def _check_weights(weights):
    if weights not in WEIGHT_S1:
        raise ValueError(f"weights must be one of {', '.join(repr(w) for w in WEIGHT_S1)}, got {weights!r}")
    return WEIGHT_S1[weights]


def weight_s1(weights):
    """s_1 of the weight law: -1 for ``"gaussian"``, 0 for ``"orthogonal"``."""
    return _check_weights(weights)


# ------------------------------------------------------------------------------------------------------------------
# moments of D^2


def derivative_moments(activation, q, **params):
    """``(mu_1, mu_2) = (E[phi'(h)^2], E[phi'(h)^4])`` for h ~ N(0, q), by quadrature (closed forms for the
    identity, 1 and 1, and ReLU, 1/2 and 1/2)."""
    phi = activation_for_theory(activation, **params)
    q = check_finite(q, "q", minimum=0.0)
    return _derivative_moments(phi, q)


def _derivative_moments(phi, q):
    if phi.kind == "linear":
        return 1.0, 1.0
    if phi.kind == "relu":
        return (0.5, 0.5) if q > 0.0 else (0.0, 0.0)
    # the composite rule (kink=True) also for smooth phi: sech^8 has poles near the real axis that 101
    # Gauss-Hermite nodes resolve only to 2e-7 at q = 1, the panels to 1e-12
    kink = True
    if phi.name == "hard_tanh":  # phi'^2 = phi'^4 = [|h| < 1]: a closed form, exact at any q
        p = math.erf(1.0 / math.sqrt(2.0 * q)) if q > 0.0 else 1.0
        return p, p
    mu1 = gaussian_expectation(lambda s: phi.derivative(s) ** 2, q, kink=kink)
    mu2 = gaussian_expectation(lambda s: phi.derivative(s) ** 4, q, kink=kink)
    return mu1, mu2


def small_q_spread(activation, q):
    """The small-q* form of ``mu_2 / mu_1^2 - 1`` (the per-layer spread of D^2 that orthogonal weights leave):

    - ``"tanh"``: ``8 q^2 - 80 q^3`` (the series to third order; the remainder is O(q^4));
    - ``"hard_tanh"``: ``1 / erf(1 / sqrt(2 q)) - 1`` (exact), about ``sqrt(2 q / pi) e^(-1 / (2 q))``.
    """
    q = check_finite(q, "q", minimum=0.0)
    if activation == "tanh":
        return 8.0 * q * q - 80.0 * q**3
    if activation in ("hard_tanh", "hardtanh"):
        return 1.0 / math.erf(1.0 / math.sqrt(2.0 * q)) - 1.0 if q > 0.0 else 0.0
    raise ValueError(f"activation must be 'tanh' or 'hard_tanh' (the small-q* forms derived here), got {activation!r}")


# ------------------------------------------------------------------------------------------------------------------
# the moments of J J^T


@dataclasses.dataclass
class JacobianMoments:
    """Free-probability moments of J J^T per depth; arrays indexed by l - 1 for the net of depth l = 1..L.

    ``mean``: m_1 = prod_(k<=l) chi_k; ``variance``: sigma^2_{JJ^T} of the depth-l net; ``q``: q^l (the
    pre-activation variance of layer l); ``chi``: chi_l = sigma_w^2 mu_1(q^l); ``mu1``, ``mu2``: the moments of
    D_l^2; ``s1``: of the weights; ``spread``: mu_2 / mu_1^2 - 1 - s_1 per layer (the slope of the variance in
    depth at criticality).
    """

    mean: np.ndarray
    variance: np.ndarray
    q: np.ndarray
    chi: np.ndarray
    mu1: np.ndarray
    mu2: np.ndarray
    spread: np.ndarray
    s1: float


def jacobian_moments(activation, depth, sigma_w2, sigma_b2=0.0, *, weights="gaussian", input_var=None, **params):
    """Mean and variance of the squared singular values of J for depths 1..``depth`` (Pennington et al. 2017).

    ``m_1 = prod_l chi_l`` and ``sigma^2_{JJ^T} = m_1^2 sum_l (mu_2/mu_1^2 - 1 - s_1)`` with the moments at each
    layer's q^l (see the module docstring for the derivation): at q = q* (``input_var=None``: the net is at its
    fixed point from layer 1 on) or along the length map from ``q^1 = sigma_w^2 input_var + sigma_b^2`` (inputs of
    mean square ``input_var``). ``weights``: ``"gaussian"`` (s_1 = -1) or ``"orthogonal"`` (s_1 = 0).
    """
    phi = activation_for_theory(activation, **params)
    depth = check_positive_int(depth, "depth")
    sigma_w2 = check_finite(sigma_w2, "sigma_w2", minimum=0.0)
    sigma_b2 = check_finite(sigma_b2, "sigma_b2", minimum=0.0)
    s1 = _check_weights(weights)
    if input_var is None:
        q_fixed = _q_star(phi, sigma_w2, sigma_b2)
        if phi.kind in ("linear", "relu") and not (math.isfinite(q_fixed) and q_fixed > 0.0):
            q_fixed = 1.0  # their derivative moments do not depend on q
        if not math.isfinite(q_fixed):
            raise ValueError(
                f"{phi.name} with sigma_w2={sigma_w2!r}, sigma_b2={sigma_b2!r} has no finite fixed point "
                "q*: give input_var"
            )
        qs = np.full(depth, q_fixed)
    else:
        input_var = check_finite(input_var, "input_var", minimum=0.0)
        qs = np.empty(depth)
        q = sigma_w2 * input_var + sigma_b2
        for l in range(depth):
            qs[l] = q
            q = sigma_w2 * gaussian_expectation(lambda s: phi.value(s) ** 2, q, kink=phi.relu_like) + sigma_b2
    mu = np.array([_derivative_moments(phi, q) for q in qs])
    mu1, mu2 = mu[:, 0], mu[:, 1]
    chi = sigma_w2 * mu1
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.where(mu1 > 0.0, mu2 / np.square(mu1), 1.0) - 1.0 - s1
    mean = np.cumprod(chi)
    variance = np.square(mean) * np.cumsum(spread)
    return JacobianMoments(mean=mean, variance=variance, q=qs, chi=chi, mu1=mu1, mu2=mu2, spread=spread, s1=s1)


def isometry_variance(activation, depth, *, weights="gaussian", q_star=None, sigma_w2=None, sigma_b2=0.0, **params):
    """``sigma^2_{JJ^T} = L (mu_2 / mu_1^2 - 1 - s_1)`` at criticality (Pennington et al. 2017, eq. 17).

    Give ``q_star`` (the moments are taken at it; the critical point is implied) or ``sigma_w2`` and
    ``sigma_b2`` (then q* is their fixed point and the result is multiplied by ``m_1^2 = chi_1^(2L)``, which is 1
    only on the critical line).
    """
    phi = activation_for_theory(activation, **params)
    depth = check_positive_int(depth, "depth")
    s1 = _check_weights(weights)
    if (q_star is None) == (sigma_w2 is None):
        raise ValueError("give exactly one of q_star and sigma_w2")
    if q_star is not None:
        mu1, mu2 = _derivative_moments(phi, check_finite(q_star, "q_star", minimum=0.0))
        return depth * (mu2 / mu1**2 - 1.0 - s1)
    return float(jacobian_moments(phi, depth, sigma_w2, sigma_b2, weights=weights).variance[-1])


def critical_point(activation, q_star, **params):
    """``(sigma_w^2, sigma_b^2)`` on the critical line whose fixed point is ``q_star`` (Pennington et al. 2017,
    Fig. 2): ``sigma_w^2 = 1 / mu_1(q*)`` (chi_1 = 1) and ``sigma_b^2 = q* - sigma_w^2 E[phi(h)^2]``.

    ValueError when that needs sigma_b^2 < 0 (ReLU and the identity sit at sigma_b^2 = 0 for every q*).
    """
    phi = activation_for_theory(activation, **params)
    q_star = check_finite(q_star, "q_star", minimum=0.0, strict=True)
    mu1, _ = _derivative_moments(phi, q_star)
    if mu1 <= 0.0:
        raise ValueError(f"{phi.name} has phi' = 0 almost surely at q_star={q_star!r}: no critical point")
    sigma_w2 = 1.0 / mu1
    sigma_b2 = q_star - sigma_w2 * gaussian_expectation(lambda s: phi.value(s) ** 2, q_star, kink=phi.relu_like)
    if sigma_b2 < -1e-12 * q_star:
        raise ValueError(
            f"{phi.name}: the critical point with q_star={q_star!r} would need sigma_b2 = {sigma_b2:.3g} < 0"
        )
    return sigma_w2, max(sigma_b2, 0.0)


def fixed_point_input_var(activation, q_star, sigma_w2, sigma_b2=0.0, **params):
    """The input mean square that puts layer 1 at q* already: ``(q* - sigma_b^2) / sigma_w^2``."""
    activation_for_theory(activation, **params)
    q_star = check_finite(q_star, "q_star", minimum=0.0)
    sigma_w2 = check_finite(sigma_w2, "sigma_w2", minimum=0.0, strict=True)
    sigma_b2 = check_finite(sigma_b2, "sigma_b2", minimum=0.0)
    if sigma_b2 > q_star:
        raise ValueError(f"sigma_b2={sigma_b2!r} exceeds q_star={q_star!r}")
    return (q_star - sigma_b2) / sigma_w2


# ------------------------------------------------------------------------------------------------------------------
# Fuss-Catalan


def fuss_catalan_moment(depth, k):
    """``m_k = C((L+1) k, k) / (L k + 1)``, the k-th moment of the squared singular values of a product of L
    Gaussian layers (variance 1/n, n -> infinity); an exact integer for every L, k (returned as a Python int)."""
    depth = check_positive_int(depth, "depth")
    k = check_non_negative_int(k, "k")
    numerator = math.comb((depth + 1) * k, k)
    assert numerator % (depth * k + 1) == 0  # Fuss-Catalan numbers are integers
    return numerator // (depth * k + 1)


def fuss_catalan_support(depth):
    """The right end ``(L+1)^(L+1) / L^L`` of the Fuss-Catalan law of order L (about e (L+1) for large L)."""
    depth = check_positive_int(depth, "depth")
    return math.exp((depth + 1) * math.log(depth + 1) - depth * math.log(depth))


def _fuss_catalan_parametric(depth, t):
    s = depth
    t = np.asarray(t, dtype=np.float64)
    sin_t, sin_st, sin_s1t = np.sin(t), np.sin(s * t), np.sin((s + 1) * t)
    # logarithms: sin(...)^L over- or underflows for large L
    log_x = (s + 1) * np.log(sin_s1t) - np.log(sin_t) - s * np.log(sin_st)
    log_rho = 2.0 * np.log(sin_t) + (s - 1) * np.log(sin_st) - s * np.log(sin_s1t) - math.log(math.pi)
    return np.exp(log_x), np.exp(log_rho)


def fuss_catalan_curve(depth, points=2000):
    """``(x, rho)`` along the parametric form of the Fuss-Catalan density of order L (x ascending), for plots."""
    depth = check_positive_int(depth, "depth")
    points = check_positive_int(points, "points")
    t = np.linspace(0.0, math.pi / (depth + 1), points + 2)[1:-1]
    x, rho = _fuss_catalan_parametric(depth, t)
    return x[::-1], rho[::-1]


def fuss_catalan_density(depth, x):
    """The Fuss-Catalan density of order L at the squared singular values ``x`` (0 outside the support).

    x(t) decreases from the right end of the support to 0 as t runs over (0, pi/(L+1)), so each x is found by
    bisection in t (FUSS_CATALAN_BISECTIONS halvings), then rho(x(t)) is evaluated.
    """
    depth = check_positive_int(depth, "depth")
    x = np.asarray(x, dtype=np.float64)
    inside = (x > 0.0) & (x < fuss_catalan_support(depth))
    low = np.zeros(x.shape)
    high = np.full(x.shape, math.pi / (depth + 1))
    target = np.where(inside, x, 1.0)
    for _ in range(FUSS_CATALAN_BISECTIONS):
        middle = 0.5 * (low + high)
        value, _ = _fuss_catalan_parametric(depth, middle)
        above = value > target  # x(t) too large: the root lies at larger t
        low = np.where(above, middle, low)
        high = np.where(above, high, middle)
    _, rho = _fuss_catalan_parametric(depth, 0.5 * (low + high))
    return np.where(inside, rho, 0.0)


def fuss_catalan_singular_value_density(depth, sigma):
    """The density of the singular values sigma = sqrt(x): ``2 sigma rho(sigma^2)``."""
    sigma = np.asarray(sigma, dtype=np.float64)
    return 2.0 * sigma * fuss_catalan_density(depth, sigma * sigma)
