"""Jacobian spectra of deep nets: the free-probability moments, the Fuss-Catalan law, and the free-probability
density of J J^T for any activation (:func:`jacobian_density`, derived in its docstring).

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
from . import free_power
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


# ------------------------------------------------------------------------------------------------------------------
# the density of J J^T (free multiplicative convolution)

#: Composite Gauss-Legendre panels (of :func:`testbed.theory.signal.normal_rule`'s kind, 8 nodes each, over
#: |z| <= 10) of the law of D^2 for a smooth phi'. Measured on orthogonal tanh at q* = 1/64 (depths 2 to 128): 80
#: and 320 panels give densities within 0.3 % of the peak, 20 and 320 within 0.6 %.
D2_LAW_PANELS = 80

#: The relative imaginary part theta of the spectral variable, lambda e^(i theta): it selects the limit from the
#: upper half-plane (Im G < 0, a non-negative density) and smooths the density by a relative width of 1e-9.
BRANCH_THETA = 1e-9

#: Geometric steps per factor e of lambda on the continuation path (more are inserted where Newton needs them).
PATH_STEPS_PER_E = 32

#: Below the bulk, where the path meets the poles 1 / mu of the discretised law of D^2 (at densities far below
#: anything measurable), a lost root is accepted as density 0 once the path has met all but this much mass. The
#: path's trapezoids (steps of 1 / PATH_STEPS_PER_E in log lambda) find the mass of the narrowest spectrum here,
#: orthogonal tanh at q* = 1/64 and depth 8 (relative width 0.12), to 1.5 %; a root lost inside the bulk loses more.
LOST_MASS = 0.02

#: Newton: iterations per step, tolerance on the logarithm of the equation, and the largest move of log x
#: accepted in one step of the path before the step is halved (a larger move may have jumped to another root).
NEWTON_ITERATIONS = 40
NEWTON_TOLERANCE = 1e-11
PATH_JUMP = 0.25
PATH_HALVINGS = 40
#: The most Newton iterations of one density (a path that needs more has lost its root: ArithmeticError).
NEWTON_BUDGET = 2_000_000

#: The law of D^2 for orthogonal weights (:func:`derivative_square_law`): panels over |z| <= 10 (an even phi'^2
#: folded onto z >= 0, 200 pieces), graded towards z = 0 as ``10 sinh(a t) / sinh(a)`` with a = D2_PIECE_GRADING,
#: where the top of the law of phi'(h)^2 (an inverse square-root peak for tanh) decides the top edge of the spectrum.
#: Measured on orthogonal tanh at q* = 1/64, depths 2, 8, 32: densities within 0.03 %, 0.1 %, 0.2 % of the peak of
#: those with 1600 uniform panels (the largest difference at the top edge, the median 1e-5); 100 uniform panels
#: were 4 % off there.
D2_PIECE_PANELS = 400
D2_PIECE_GRADING = 4.0

#: Bisection steps of the depth-1 density (the exact law of sigma_w^2 phi'(h)^2) on each monotone run of phi'^2,
#: the panels of the fine grid on which the runs are found, and the relative step of the derivative's central
#: difference.
PUSHFORWARD_BISECTIONS = 60
PUSHFORWARD_PANELS = 4000
PUSHFORWARD_STEP = 1e-6

#: A continuous spectrum (no atom) whose relative variance sigma^2_{JJ^T} / m_1^2 is below this is reported as a
#: point mass at m_1 (``point_mass``): tanh at a q* so small that its width is beyond any histogram.
POINT_MASS_VARIANCE = 1e-10


@dataclasses.dataclass
class JacobianDensity:
    """The free-probability law of the squared singular values (the eigenvalues lambda of J J^T).

    ``lam``: the points asked for; ``density``: the density of the continuous part at them; ``zero_mass``: the
    atom at lambda = 0 (``P(phi'(h) = 0)``: 1/2 for ReLU, ``1 - erf(1 / sqrt(2 q*))`` for hard tanh, 0 for smooth
    phi); ``atoms``, ``atom_masses``: the atoms at lambda > 0 (orthogonal weights only: at depth L >= 2 at most one,
    at the top of the spectrum ``(sigma_w^2 a)^L`` with mass ``L P(phi'^2 = a) - (L - 1)``; at depth 1 the atoms of
    sigma_w^2 phi'(h)^2); ``point_mass``: None, or the location of a point mass holding all but ``zero_mass`` (then
    ``density`` is 0): orthogonal linear nets (also in ``atoms``), and continuous spectra narrower than
    POINT_MASS_VARIANCE (approximately, not in ``atoms``); ``q_star``, ``sigma_w2``, ``depth``, ``weights``: the
    setting.
    """

    lam: np.ndarray
    density: np.ndarray
    zero_mass: float
    point_mass: float | None
    q_star: float
    sigma_w2: float
    depth: int
    weights: str
    atoms: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    atom_masses: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    @property
    def continuous_mass(self):
        """The mass of the continuous part: 1 less the atoms (and less a reported point mass)."""
        if self.point_mass is not None:
            return 0.0
        return 1.0 - self.zero_mass - float(np.sum(self.atom_masses))

    def singular_value_density(self):
        """The density of sigma = sqrt(lambda) at ``sqrt(lam)``: ``2 sigma rho(sigma^2)``."""
        return 2.0 * np.sqrt(self.lam) * self.density


def derivative_law(activation, q, **params):
    """The law of ``D^2 = phi'(h)^2``, h ~ N(0, q), as atoms and weights ``(mu, w)`` (``sum w = 1``).

    Exact for the identity (one atom at 1), ReLU (0 and 1, weight 1/2 each) and hard tanh (0 and 1 with
    ``p = erf(1 / sqrt(2 q))`` at 1); otherwise the nodes of a composite Gauss-Legendre rule in h (D2_LAW_PANELS
    panels, an edge at h = 0 for a kink there), equal atoms merged (a piecewise-constant phi' gives its few atoms).
    """
    phi = activation_for_theory(activation, **params)
    q = check_finite(q, "q", minimum=0.0)
    return _derivative_law(phi, q)


def _derivative_law(phi, q):
    if phi.kind == "linear" or q == 0.0:
        value = 1.0 if phi.kind == "linear" else float(phi.derivative(np.zeros(1))[0] ** 2)
        return np.array([value]), np.array([1.0])
    if phi.kind == "relu":
        return np.array([0.0, 1.0]), np.array([0.5, 0.5])
    if phi.name == "hard_tanh":
        p = math.erf(1.0 / math.sqrt(2.0 * q))
        return np.array([0.0, 1.0]), np.array([1.0 - p, p])
    from .signal import _composite_rule

    z, w = _composite_rule(D2_LAW_PANELS)
    mu = phi.derivative(math.sqrt(q) * z) ** 2
    atoms, where = np.unique(mu, return_inverse=True)
    return atoms, np.bincount(where, weights=w) / w.sum()


def derivative_square_law(activation, q, **params):
    """The law of ``D^2 = phi'(h)^2``, h ~ N(0, q), as a :class:`~testbed.theory.free_power.PositiveLaw` (atoms
    plus pieces of uniform density), the law that orthogonal weights raise to the L-th free power.

    Exact for the identity (an atom at 1), ReLU (0 and 1, mass 1/2 each) and hard tanh (0 and 1 with ``p = erf(1 /
    sqrt(2 q))`` at 1). Otherwise :func:`~testbed.theory.free_power.pushforward_law` on D2_PIECE_PANELS panels
    graded by D2_PIECE_GRADING: a plateau of phi' (ELU's h > 0) is an atom, the rest pieces whose masses are the
    panels' Gaussian measures.
    """
    phi = activation_for_theory(activation, **params)
    q = check_finite(q, "q", minimum=0.0)
    return _derivative_square_law(phi, q)


def _derivative_square_law(phi, q):
    mu, w = _derivative_law(phi, q) if _closed_form_law(phi, q) else (None, None)
    if mu is not None:
        return free_power.PositiveLaw(mu, w)
    return free_power.pushforward_law(
        lambda h: phi.derivative(h) ** 2, math.sqrt(q), D2_PIECE_PANELS, grading=D2_PIECE_GRADING
    )


def _closed_form_law(phi, q):
    return phi.kind in ("linear", "relu") or phi.name == "hard_tanh" or q == 0.0


def _pushforward_density(phi, q, m):
    """The density at ``m`` of the continuous part of the law of ``phi'(h)^2``, h ~ N(0, q), exactly:
    ``sum over the roots h of phi'(h)^2 = m of  N(h; 0, q) / |d phi'(h)^2 / dh|``.

    The roots are found by bisection (PUSHFORWARD_BISECTIONS halvings) on each run of a fine grid (PUSHFORWARD_PANELS
    panels over |h| <= 10 sqrt(q)) on which phi'^2 is strictly monotone; plateaus (atoms) are no run. The derivative
    is a central difference of relative step PUSHFORWARD_STEP.
    """
    m = np.asarray(m, dtype=np.float64)
    out = np.zeros(m.shape)
    if _closed_form_law(phi, q):
        return out  # atoms only
    sigma = math.sqrt(q)

    def g(h):
        return phi.derivative(h) ** 2

    h = np.linspace(-10.0 * sigma, 10.0 * sigma, PUSHFORWARD_PANELS + 1)
    values = g(h)
    slope = np.sign(np.diff(values))
    # runs of panels with the same non-zero sign of the slope
    breaks = np.flatnonzero(np.diff(slope) != 0) + 1
    for run in np.split(np.arange(slope.size), breaks):
        if slope[run[0]] == 0.0:
            continue
        left, right = h[run[0]], h[run[-1] + 1]
        g_left, g_right = values[run[0]], values[run[-1] + 1]
        inside = (m >= min(g_left, g_right)) & (m <= max(g_left, g_right))
        if not np.any(inside):
            continue
        target = m[inside]
        low, high = np.full(target.shape, left), np.full(target.shape, right)
        rising = g_right > g_left
        for _ in range(PUSHFORWARD_BISECTIONS):
            middle = 0.5 * (low + high)
            below = (g(middle) < target) == rising  # the root lies to the right of middle
            low = np.where(below, middle, low)
            high = np.where(below, high, middle)
        root = 0.5 * (low + high)
        step = PUSHFORWARD_STEP * sigma
        derivative = (g(root + step) - g(root - step)) / (2.0 * step)
        with np.errstate(divide="ignore"):
            out[inside] += np.exp(-0.5 * root * root / q) / (math.sqrt(2.0 * math.pi * q) * np.abs(derivative))
    return out


def jacobian_density(lam, activation, depth, sigma_w2, sigma_b2=0.0, *, weights="gaussian", **params):
    """The density and the atoms of the eigenvalues of J J^T at ``lam`` for a depth-L net at its fixed point q*,
    from free probability (Pennington, Schoenholz & Ganguli 2017, 2018); returns a :class:`JacobianDensity`.

    The layers of a wide net are asymptotically free, so S-transforms multiply: at the fixed point every layer has
    the same law of D^2 and

        S_{JJ^T}(z) = S_{D^2}(z)^L S_{WW^T}(z)^L,    S_{WW^T}(z) = sigma_w^-2 s(z),

    with ``s = 1`` for orthogonal weights (all eigenvalues sigma_w^2) and ``s = 1 / (1 + z)`` for Gaussian ones
    (Marchenko-Pastur at ratio 1).

    **Orthogonal weights**: the law of J J^T is ``sigma_w^(2L) nu^(⊠L)``, nu the law of ``phi'(h)^2`` at q*
    (:func:`derivative_square_law`), a free multiplicative power, computed by the subordination method of
    :mod:`testbed.theory.free_power` at every depth: the unique fixed point in C+ of
    ``u = z^(1/L) eta_nu(u)^(1 - 1/L)`` gives ``psi_J(z) = psi_nu(u)`` (derived there). Its atoms (Belinschi 2003;
    derived there): ``P(phi' = 0)`` at 0 at every depth, and ``L P(phi'^2 = a) - (L - 1)`` at ``(sigma_w^2 a)^L``
    where positive: for ReLU and hard tanh, D^2 is a projection of trace p (1/2, resp. ``erf(1 / sqrt(2 q*))``)
    and the spectrum has an atom of mass ``1 - L (1 - p)`` at its top sigma_w^(2L) while ``L (1 - p) < 1``: hard
    tanh at small q* (1 - p ~ 1e-15 at q* = 1/64) keeps almost all of its singular values exactly at sigma_w^L
    through depths far beyond any net, the "nearly dynamically isometric" orthogonal hard tanh of Pennington et
    al. Depth 1 is the law of ``sigma_w^2 phi'(h)^2`` itself, its continuous part exact (a change of variables,
    :func:`_pushforward_density`) and its atoms those of :func:`derivative_square_law`.

    **Gaussian weights**: at a point lambda, ``z = psi_J(1 / lambda)`` solves ``psi_J^-1(z) = z / (1 + z) S_J(z) =
    1 / lambda``. Write ``S_{D^2}(z) = (1 + z) / z x`` with ``x = psi_{D^2}^-1(z)``; then x is the one unknown of

        lambda (z / (1 + z))^(1 - L) (x / sigma_w^2)^L s(z)^L = 1,     z = psi_{D^2}(x) = E[x mu / (1 - x mu)],

    mu = phi'(h)^2, h ~ N(0, q*) (the expectation is a sum over the atoms of :func:`derivative_law`). The
    resolvent is ``G(omega) = E[1 / (omega - lambda)] = (psi(1 / omega) + 1) / omega``, so the density is
    ``rho(lambda) = -Im G(lambda + i0) / pi = -Im z / (pi lambda)``. Newton's method on the logarithm of the
    equation (its imaginary part taken modulo 2 pi) is followed from a lambda above the spectrum, where x is real
    and small (``z ~ m_1 / lambda``, ``x ~ z / mu_1``), down through the points asked for, the step halved where
    Newton does not converge or x moves too far. The path starts 2 above ``log((sigma_w^2 max mu)^L (L+1)^(L+1) /
    L^L)`` (D_l^2 <= max mu and ``W A W^T <= c W W^T`` for ``A <= c``, so the law lies below that of the linear
    product, whose edge is the Fuss-Catalan one). Below the bulk the path can lose its root among the poles 1 / mu
    of the discretised law of D^2, where the density is negligible: it is then reported as 0 once the path has met
    all but LOST_MASS of the continuous part's mass, and an ArithmeticError otherwise. lambda carries the relative
    imaginary part BRANCH_THETA, which picks the branch with Im z < 0; a root with Im G > 0 (another root of the
    equation) is rejected. (This path solver, run on orthogonal nets, agrees with the subordination solver to 1e-6
    where it keeps its root, from depth 8; at depth 2 it lost it.) The atom at 0 is ``P(phi' = 0)`` (the atom at 0
    of a free product is the largest of the factors'); Marchenko-Pastur has no atom, so there is no other.

    Checks: the identity with Gaussian weights gives the Fuss-Catalan law (:func:`fuss_catalan_density`), ReLU at
    depth 2 with orthogonal weights half the arcsine law; the mean and variance agree with
    :func:`jacobian_moments`; the tests compare the law with the singular values of
    :func:`testbed.spectra.jacobian_singular_values` by a Kolmogorov-Smirnov distance, and the atoms with the
    fraction of singular values at them.

    A continuous spectrum of relative variance below POINT_MASS_VARIANCE is reported as a point mass
    (``point_mass``). Parameters are those of :func:`jacobian_moments` at its fixed point (``input_var=None``): q*
    is the fixed point of (sigma_w2, sigma_b2).
    """
    phi = activation_for_theory(activation, **params)
    depth = check_positive_int(depth, "depth")
    sigma_w2 = check_finite(sigma_w2, "sigma_w2", minimum=0.0, strict=True)
    sigma_b2 = check_finite(sigma_b2, "sigma_b2", minimum=0.0)
    _check_weights(weights)
    lam = np.asarray(lam, dtype=np.float64)
    if not np.all(np.isfinite(lam)) or np.any(lam <= 0.0):
        raise ValueError("lam must hold finite positive eigenvalues (the atom at 0 is reported as zero_mass)")
    moments = jacobian_moments(phi, depth, sigma_w2, sigma_b2, weights=weights)
    q_star = float(moments.q[0])
    out = dict(q_star=q_star, sigma_w2=sigma_w2, depth=depth, weights=weights)
    mean = float(moments.mean[-1])
    if weights == "orthogonal":
        return _orthogonal_density(phi, lam, depth, sigma_w2, q_star, mean, moments.variance[-1], out)
    mu, w = _derivative_law(phi, q_star)
    zero_mass = float(w[mu == 0.0].sum())
    keep = mu > 0.0  # the atom at 0 adds nothing to psi
    mu, w = mu[keep], w[keep]
    if moments.variance[-1] < POINT_MASS_VARIANCE * mean * mean:
        return JacobianDensity(lam=lam, density=np.zeros(lam.shape), zero_mass=zero_mass, point_mass=mean, **out)
    edge = depth * math.log(sigma_w2 * mu.max()) + math.log(fuss_catalan_support(depth))
    order = np.argsort(-lam.ravel())
    targets = np.log(lam.ravel()[order])
    start = max(edge, targets[0]) + 2.0
    path = _Path(mu, w, depth, sigma_w2, True)
    z = path.follow(start, targets, math.exp(math.log(mean) - start) / float(np.dot(w, mu)), 1.0 - zero_mass)
    omega = np.exp(targets + 1j * BRANCH_THETA)
    density = np.empty(lam.size)
    density[order] = -np.imag((z + 1.0) / omega) / math.pi
    return JacobianDensity(lam=lam, density=density.reshape(lam.shape), zero_mass=zero_mass, point_mass=None, **out)


def _orthogonal_density(phi, lam, depth, sigma_w2, q_star, mean, variance, out):
    """``sigma_w^(2L) nu^(⊠L)`` at lam (see :func:`jacobian_density`)."""
    law = _derivative_square_law(phi, q_star)
    zero_mass, atoms, atom_masses = free_power.free_power_atoms(law, depth)
    scale = sigma_w2**depth
    out.update(zero_mass=zero_mass, atoms=atoms * scale, atom_masses=atom_masses)
    continuous = 1.0 - zero_mass - float(atom_masses.sum())
    if continuous <= 0.0:  # a point mass (the identity) or atoms only
        point = float(out["atoms"][0]) if atoms.size == 1 and zero_mass == 0.0 else None
        return JacobianDensity(lam=lam, density=np.zeros(lam.shape), point_mass=point, **out)
    if atoms.size == 0 and variance < POINT_MASS_VARIANCE * mean * mean:
        return JacobianDensity(lam=lam, density=np.zeros(lam.shape), point_mass=mean, **out)
    x = lam / scale
    if depth == 1:
        density = _pushforward_density(phi, q_star, x)
    else:
        density = np.zeros(lam.shape)
        # nothing above the top of the support: ||J||^2 <= prod ||D_l||^2 ||W_l||^2
        top = max(law.atoms.max(initial=0.0), law.piece_highs.max(initial=0.0)) ** depth
        inside = x <= top
        if np.any(inside):
            density[inside] = free_power.free_power_density(law, depth, x[inside]).density
    return JacobianDensity(lam=lam, density=density / scale, point_mass=None, **out)


class _Path:
    """Newton on ``f(x) = log lambda + (1 - L) log(z / (1 + z)) + L log(x / sigma_w^2) + L log s(z)`` (imaginary
    part modulo 2 pi), followed along decreasing log lambda (see :func:`jacobian_density`)."""

    def __init__(self, mu, w, depth, sigma_w2, gaussian):
        self.mu, self.w, self.depth, self.gaussian = mu, w, depth, gaussian
        self.log_sigma_w2 = math.log(sigma_w2)
        self.budget = NEWTON_BUDGET

    def residual(self, x, log_lam):
        """(f(x), f'(x), z)."""
        inverse = 1.0 / (1.0 - x * self.mu)
        r = self.mu * inverse
        z = x * np.dot(self.w, r)
        dz = np.dot(self.w, r * inverse)  # d/dx of x mu / (1 - x mu) is mu / (1 - x mu)^2
        L = self.depth
        log_1z = np.log1p(z)
        f = log_lam + (1 - L) * (np.log(z) - log_1z) + L * (np.log(x) - self.log_sigma_w2)
        df = dz * (1 - L) * (1.0 / z - 1.0 / (1.0 + z)) + L / x
        if self.gaussian:
            f -= L * log_1z
            df -= dz * L / (1.0 + z)
        f = complex(f.real, (f.imag + math.pi) % (2.0 * math.pi) - math.pi)
        return f, df, z

    def newton(self, x, log_lam):
        """The root near x, or None when Newton does not converge or leaves x's neighbourhood."""
        start = x
        self.budget -= NEWTON_ITERATIONS
        if self.budget < 0:
            raise ArithmeticError("free-probability density: Newton's path did not reach the points asked for")
        for _ in range(NEWTON_ITERATIONS):
            f, df, _ = self.residual(x, log_lam)
            if abs(f) < NEWTON_TOLERANCE:
                break
            step = f / df
            if abs(step) > 0.5 * abs(x):  # damped: x stays away from 0 and the poles 1 / mu
                step *= 0.5 * abs(x) / abs(step)
            x = x - step
        else:
            return None
        if abs(np.log(x / start)) > PATH_JUMP:
            return None
        # the physical root has Im G <= 0 (a density >= 0): another root of the equation is rejected
        if np.imag((self.residual(x, log_lam)[2] + 1.0) * np.exp(-log_lam)) > NEWTON_TOLERANCE:
            return None
        return x

    def follow(self, start, targets, x0, rest):
        """z at each of ``targets`` (log lambda, descending), from x ~ x0 at log lambda ``start``: steps of at most
        1 / PATH_STEPS_PER_E in log lambda, halved while Newton fails (at most PATH_HALVINGS times in a row),
        doubled back after each success. Where the root is lost below the spectrum's bulk, once the density met
        on the path holds ``rest`` (the mass of the continuous part) to within LOST_MASS, z = -1 (density 0)."""
        x = complex(x0)
        for _ in range(NEWTON_ITERATIONS):  # outside the spectrum: plain Newton from the series start
            f, df, _ = self.residual(x, start + 1j * BRANCH_THETA)
            x -= f / df
        longest = 1.0 / PATH_STEPS_PER_E
        here, length = start, longest
        out = np.full(targets.size, -1.0 + 0.0j)
        mass, last = 0.0, 0.0  # the density's integral over the path so far (trapezoids in log lambda)
        for k, target in enumerate(targets):
            while here > target:
                u = max(target, here - length)
                found = self.newton(x, u + 1j * BRANCH_THETA)
                if found is None:
                    length *= 0.5
                    if length < longest * 0.5**PATH_HALVINGS:
                        if mass >= rest - LOST_MASS:
                            return out
                        raise ArithmeticError(
                            f"free-probability density: Newton lost the root near lambda = {math.exp(here):.6g} "
                            f"with {mass:.4f} of the mass {rest:.4f} found"
                        )
                    continue
                omega = np.exp(u + 1j * BRANCH_THETA)
                current = float(-np.imag((self.residual(found, u + 1j * BRANCH_THETA)[2] + 1.0) / omega)) / math.pi
                mass += 0.5 * (current * math.exp(u) + last * math.exp(here)) * (here - u)
                x, here, last, length = found, u, current, min(longest, 2.0 * length)
            out[k] = self.residual(x, target + 1j * BRANCH_THETA)[2]
        return out
