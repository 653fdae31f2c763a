"""Signal propagation theory: what the variance of a signal and of its gradient should do across depth.

Notation (as in :mod:`testbed.nn`): a net of depth L has widths ``widths = (n_0, n_1, ..., n_L)``; layer l computes
``s^(l) = W^(l) x^(l-1) + b^(l)``, ``x^(l) = phi(s^(l))`` with ``W^(l)`` of shape (n_l, n_(l-1)), i.e.
``fan_in = n_(l-1)`` and ``fan_out = n_l``; ``delta^(l) = dloss/ds^(l)``. Arrays returned per layer are indexed
by l - 1 (l = 1..L), like :class:`testbed.nn.Propagation`.

Three levels of theory, from crude to fine:

1. **Linear regime** (Glorot & Bengio 2010; He et al. 2015). Zero-mean weights of variance ``v_l``, zero bias::

       Var[s^(l)]       = n_(l-1) v_l  g_f  Var[s^(l-1)]        (forward)
       Var[delta^(l-1)] = n_l     v_l  g_b  Var[delta^(l)]      (backward)

   with the gains ``g_f = E[phi(s)^2] / Var[s]`` and ``g_b = E[phi'(s)^2]`` of the activation near its linear
   regime: 1/2 for ReLU (exact at any scale, by positive homogeneity), 1 for tanh near 0 (tanh s ~ s) and for the
   identity. So the forward pass keeps its variance iff ``v = 1 / (g_f n_(l-1))`` (He: 2/fan_in for ReLU, LeCun:
   1/fan_in for tanh), the backward pass iff ``v = 1 / (g_b n_l)`` (2/fan_out, 1/fan_out); Glorot's compromise is
   ``2 / (fan_in + fan_out)``. The "standard" U[+-1/sqrt(n)] (PyTorch's default ``nn.Linear``) has ``n v = 1/3``.
   See :func:`linear_regime_gain`, :func:`linear_regime_variances`.

2. **Mean field** (Poole et al. 2016; Schoenholz et al. 2017). Weights N(0, sw2 / fan_in), biases N(0, sb2), an
   infinitely wide net, ``z, z1, z2`` independent standard normals:

   - length map ``q^l = sw2 E_z[phi(sqrt(q^(l-1)) z)^2] + sb2``, with the fixed point ``q*`` (:func:`length_map`,
     :func:`q_star`);
   - correlation map ``c^l = (sw2 E[phi(u1) phi(u2)] + sb2) / q^l`` with ``u1 = sqrt(q) z1``,
     ``u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2)``, and its fixed point ``c*`` (:func:`correlation_map`,
     :func:`c_star`);
   - ``chi1 = sw2 E_z[phi'(sqrt(q*) z)^2]``: the factor by which ``E[delta^2]`` shrinks (chi1 < 1, ordered) or grows
     (chi1 > 1, chaotic) per layer going backward; ``chi1 = 1`` is the order-to-chaos line
     (:func:`chi1`, :func:`critical_sigma_w2`);
   - depth scales ``1/xi_q = -ln(chi1 + sw2 E[phi''(sqrt(q*) z) phi(sqrt(q*) z)])`` (the slope of the length map at
     ``q*``) and ``1/xi_c = -ln(chi_c)``, ``chi_c = sw2 E[phi'(u1) phi'(u2)]`` at ``c*`` (the slope of the
     correlation map there; ``chi_c = chi1`` when ``c* = 1``, so ``xi_c = -1/ln chi1`` in the ordered phase and
     diverges at criticality) (:func:`mean_field`).

   Expectations are Gauss-Hermite quadratures on probabilists' nodes (``numpy.polynomial.hermite_e.hermegauss``)
   for any activation; when the Gaussian is much broader than the activation's features (``sqrt(q) > 1``), whose
   scale is 1, Gauss-Hermite nodes step over them, so a composite Gauss-Legendre rule with panels one unit of
   ``s`` wide is used instead (:func:`gaussian_expectation`). Two-dimensional expectations are tensor products of
   the same rules in (z1, z2). ReLU and the identity have closed forms: ``q^l = (sw2/2) q^(l-1) + sb2``,
   ``chi1 = sw2/2`` and the arc-cosine kernel (Cho & Saul 2009) ``E[relu(u1) relu(u2)] = q (sqrt(1-c^2) +
   (pi - arccos c) c) / (2 pi)``; ``q^l = sw2 q^(l-1) + sb2``, ``chi1 = sw2`` for the identity.

3. **Finite width** (Hanin & Rolnick 2018): with ``M_j = |x^(j)|^2 / n_j``, He-normal Gaussian weights
   (variance 2/fan_in), zero biases and ReLU, ``E[M_d] = M_0`` and ``E[M_d^2] = M_0^2 prod_(j=1..d) (1 + 5/n_j)``
   exactly, for any fixed input (:func:`hanin_rolnick_moment_ratio`): the fluctuation of the signal grows like
   ``exp(5 sum_j 1/n_j)``, with the sum of reciprocal widths, not with depth alone.

:func:`expected_variances` puts them together: the expected per-layer statistics of a freshly initialised net for
a named initialiser, activation, widths and bias variance, the theory every plot of the testbed overlays.

References: X. Glorot, Y. Bengio (2010), Understanding the difficulty of training deep feedforward neural networks;
K. He, X. Zhang, S. Ren, J. Sun (2015), Delving deep into rectifiers; B. Poole, S. Lahiri, M. Raghu,
J. Sohl-Dickstein, S. Ganguli (2016), Exponential expressivity in deep neural networks through transient chaos;
S. Schoenholz, J. Gilmer, S. Ganguli, J. Sohl-Dickstein (2017), Deep information propagation; B. Hanin,
D. Rolnick (2018), How to start training: the effect of initialization and architecture.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, NamedTuple

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss
from scipy import optimize, special

from ..validation import check_finite, check_positive_int

#: Probabilists' Gauss-Hermite nodes for Gaussians of standard deviation <= SIGMA_HERMITE (in units of s).
HERMITE_NODES = 101
#: Above this standard deviation of s, the composite Gauss-Legendre rule replaces Gauss-Hermite (at sqrt(q) = 1,
#: 101 Hermite nodes integrate tanh^2 to 1e-11; at sqrt(q) = 4 their error is already 1e-3).
SIGMA_HERMITE = 1.0
#: The composite rule integrates z over [-Z_TAIL, Z_TAIL] (the normal density there is below 1e-21).
Z_TAIL = 10.0
#: Gauss-Legendre nodes per panel of the composite rule.
LEGENDRE_NODES = 8
#: Width of one panel in units of s = sqrt(q) z (the activations vary on the scale 1; tanh's poles at +-i pi/2
#: make 8 nodes on a unit panel accurate to about 1e-12).
PANEL_WIDTH = 1.0
#: Cap on the number of panels (reached for sqrt(q) > 200; beyond it bounded activations act as step functions).
MAX_PANELS = 4000
#: A bounded activation's unit is saturated when phi(s) lies within this fraction of its bound's magnitude
#: (max(|lower|, |upper|)) from the bound, as in :data:`testbed.nn.SATURATION_TOLERANCE`.
SATURATION_TOLERANCE = 0.01
#: Hanin & Rolnick's constant: E[M_j^2 | M_(j-1)] = M_(j-1)^2 (1 + 5/n_j) for He-normal ReLU layers, because
#: E[relu(s)^4] / E[relu(s)^2]^2 = (3 Var[s]^2 / 2) / (Var[s]^2 / 4) = 6 and the n_j (n_j - 1) cross terms give 1.
HANIN_ROLNICK_CONSTANT = 5.0
#: Bracket for the critical weight variance search.
SIGMA_W2_MAX = 1e6
#: A length-map gap |L(q) - q| below this fraction of q is numerically neutral (see :func:`q_star`).
NEUTRAL_GAP = 1e-9
#: Relative tolerance of the root finders.
ROOT_RTOL = 1e-12


# ------------------------------------------------------------------------------------------------------------------
# Activations as vectorised NumPy functions


@dataclasses.dataclass(frozen=True)
class Phi:
    """An activation as the theory needs it: vectorised ``value`` and ``derivative``, bounds and its kind.

    ``kind`` is ``"relu"`` or ``"linear"`` (closed forms) or ``"general"`` (quadrature). ``lower``/``upper``
    are the bounds of a bounded activation (None otherwise); ``relu_like`` marks the ReLU family.
    """

    name: str
    value: Callable
    derivative: Callable
    lower: float | None = None
    upper: float | None = None
    relu_like: bool = False
    kind: str = "general"
    param: float = 0.0

    @property
    def bounded(self):
        return self.lower is not None and self.upper is not None


def _np_sigmoid(s):
    return special.expit(s)


def _numpy_pair(name, a):
    """(phi, phi') as NumPy ufunc expressions, the same formulas as :mod:`testbed.rules.activations`."""
    selu_l, selu_a = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
    table = {
        "linear": (lambda s: np.asarray(s, dtype=float) * 1.0, lambda s: np.ones_like(np.asarray(s, dtype=float))),
        "tanh": (np.tanh, lambda s: 1.0 / np.cosh(np.clip(s, -350.0, 350.0)) ** 2),
        "relu": (lambda s: np.maximum(s, 0.0), lambda s: (np.asarray(s) > 0.0) * 1.0),
        "leaky_relu": (lambda s: np.where(s > 0.0, s, a * s), lambda s: np.where(np.asarray(s) > 0.0, 1.0, a)),
        "sigmoid": (_np_sigmoid, lambda s: _np_sigmoid(s) * (1.0 - _np_sigmoid(s))),
        "softplus": (lambda s: np.logaddexp(0.0, s), _np_sigmoid),
        "elu": (
            lambda s: np.where(s > 0.0, s, a * np.expm1(np.minimum(s, 0.0))),
            lambda s: np.where(np.asarray(s) > 0.0, 1.0, a * np.exp(np.minimum(s, 0.0))),
        ),
        "selu": (
            lambda s: selu_l * np.where(s > 0.0, s, selu_a * np.expm1(np.minimum(s, 0.0))),
            lambda s: selu_l * np.where(np.asarray(s) > 0.0, 1.0, selu_a * np.exp(np.minimum(s, 0.0))),
        ),
        "gelu": (
            lambda s: 0.5 * s * (1.0 + special.erf(s / math.sqrt(2.0))),
            lambda s: special.ndtr(s) + s * np.exp(-0.5 * np.square(s)) / math.sqrt(2.0 * math.pi),
        ),
        "erf": (special.erf, lambda s: 2.0 / math.sqrt(math.pi) * np.exp(-np.square(s))),
        "hard_tanh": (
            lambda s: np.clip(s, -1.0, 1.0),
            lambda s: ((np.asarray(s) > -1.0) & (np.asarray(s) < 1.0)) * 1.0,
        ),
    }
    return table[name]


def activation_for_theory(activation, **params):
    """The :class:`Phi` of ``activation``: a name of :mod:`testbed.activations` (with its parameter), an
    :class:`~testbed.activations.Activation`, or a :class:`Phi` (returned as is).

    Unknown names raise the registry's ValueError (valid names listed). A custom activation is a :class:`Phi`
    built from any vectorised ``value`` and ``derivative``.
    """
    if isinstance(activation, Phi):
        return activation
    from .. import activations as registry

    act = registry.get(activation, **params)
    value, derivative = _numpy_pair(act.name, act.param)
    kind = act.name if act.name in ("relu", "linear") else "general"
    return Phi(act.name, value, derivative, act.lower, act.upper, act.relu_like, kind, act.param)


# ------------------------------------------------------------------------------------------------------------------
# Quadrature


@functools.lru_cache(maxsize=None)
def _hermite_rule():
    nodes, weights = hermegauss(HERMITE_NODES)
    return nodes, weights / math.sqrt(2.0 * math.pi)


@functools.lru_cache(maxsize=None)
def _composite_rule(panels):
    # An even number of panels puts an edge at z = 0, where the ReLU family has its kink.
    unit_nodes, unit_weights = leggauss(LEGENDRE_NODES)
    edges = np.linspace(-Z_TAIL, Z_TAIL, panels + 1)
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    nodes = (mid[:, None] + half[:, None] * unit_nodes[None, :]).ravel()
    weights = (half[:, None] * unit_weights[None, :]).ravel() * np.exp(-0.5 * nodes**2) / math.sqrt(2.0 * math.pi)
    return nodes, weights


def normal_rule(sigma, kink=False):
    """Nodes ``z`` and weights ``w`` with ``sum w f(sigma z) ~ E[f(sigma Z)]``, Z standard normal.

    Gauss-Hermite (probabilists') when ``sigma <= SIGMA_HERMITE`` and ``kink`` is False; otherwise a composite
    Gauss-Legendre rule on [-Z_TAIL, Z_TAIL] with panels PANEL_WIDTH wide in ``s = sigma z`` (at least 20 and
    at most MAX_PANELS panels, an edge at 0).
    """
    if sigma <= SIGMA_HERMITE and not kink:
        return _hermite_rule()
    panels = 2 * int(min(MAX_PANELS // 2, max(10, math.ceil(Z_TAIL * sigma / PANEL_WIDTH))))
    return _composite_rule(panels)


def gaussian_expectation(f, variance, mean=0.0, *, kink=False):
    """``E[f(mean + sqrt(variance) Z)]`` for standard normal Z, by quadrature (see :func:`normal_rule`).

    ``f`` must be vectorised. ``variance`` 0 gives ``f(mean)``. ``kink=True`` (for f with a kink or a jump at
    s = 0, the ReLU family, and ``mean`` 0) uses the composite rule, which has a panel edge there.
    """
    variance = check_finite(variance, "variance", minimum=0.0)
    mean = check_finite(mean, "mean")
    sigma = math.sqrt(variance)
    if sigma == 0.0:
        return float(np.asarray(f(np.array([mean])), dtype=float)[0])
    z, w = normal_rule(sigma, kink=kink and mean == 0.0)
    return float(np.dot(w, f(mean + sigma * z)))


def _split_rule(split, panels):
    """Rows of composite Gauss-Legendre rules for Z on [-Z_TAIL, split] and [split, Z_TAIL], one row per split
    point (so a jump of the integrand at ``split`` falls on a panel edge); weights include the normal density."""
    unit_nodes, unit_weights = leggauss(LEGENDRE_NODES)
    split = np.clip(split, -Z_TAIL, Z_TAIL)[:, None]
    half_panels = max(1, panels // 2)
    fractions = np.linspace(0.0, 1.0, half_panels + 1)[None, :]
    edges = np.concatenate(
        [-Z_TAIL + (split + Z_TAIL) * fractions, (split + (Z_TAIL - split) * fractions)[:, 1:]], axis=1
    )
    half = 0.5 * (edges[:, 1:] - edges[:, :-1])
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])
    nodes = (mid[:, :, None] + half[:, :, None] * unit_nodes).reshape(len(split), -1)
    weights = (half[:, :, None] * unit_weights).reshape(len(split), -1)
    return nodes, weights * np.exp(-0.5 * nodes**2) / math.sqrt(2.0 * math.pi)


def _pair_expectation(f, g, q, c, kink=False):
    """E[f(u1) g(u2)], u1 = sqrt(q) z1, u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2): a tensor-product rule.

    With ``kink`` (f and g kinked or jumping at 0), the inner rule over z2 is split where u2 = 0."""
    sigma = math.sqrt(q)
    rest = math.sqrt(max(0.0, 1.0 - c * c))
    z1, w1 = normal_rule(sigma, kink=kink)
    outer = f(sigma * z1)
    if kink and rest > 0.0:
        z2, w2 = _split_rule(-c * z1 / rest, normal_rule(sigma * rest, kink=True)[0].size // LEGENDRE_NODES)
        inner = np.sum(g(sigma * (c * z1[:, None] + rest * z2)) * w2, axis=1)
    else:
        z2, w2 = normal_rule(sigma * rest, kink=kink)
        inner = g(sigma * (c * z1[:, None] + rest * z2[None, :])) @ w2
    return float(np.dot(w1, outer * inner))


# ------------------------------------------------------------------------------------------------------------------
# One-layer moments (closed forms where they exist)


def _second_moment(phi, q):
    """E[phi(sqrt(q) z)^2]."""
    if phi.kind == "relu":
        return 0.5 * q
    if phi.kind == "linear":
        return q
    return gaussian_expectation(lambda s: np.square(phi.value(s)), q, kink=phi.relu_like)


def _mean(phi, q):
    """E[phi(sqrt(q) z)]."""
    if phi.kind == "relu":
        return math.sqrt(q / (2.0 * math.pi))
    if phi.kind == "linear":
        return 0.0
    return gaussian_expectation(phi.value, q, kink=phi.relu_like)


def _derivative_second_moment(phi, q):
    """E[phi'(sqrt(q) z)^2]."""
    if phi.kind == "relu":
        return 0.5 if q > 0.0 else 0.0  # relu'(0) = 0 (the kernels' one-sided convention: s > 0 is 1)
    if phi.kind == "linear":
        return 1.0
    return gaussian_expectation(lambda s: np.square(phi.derivative(s)), q, kink=phi.relu_like)


def _length_slope_factor(phi, q):
    """d/dq E[phi(sqrt(q) z)^2] = E[phi'^2 + phi phi''] (Stein's lemma: = E[z phi phi'(sqrt(q) z)] / sqrt(q))."""
    if phi.kind == "relu":
        return 0.5
    if phi.kind == "linear":
        return 1.0

    def product(s):
        return phi.value(s) * phi.derivative(s)

    zero = float(product(np.array([0.0]))[0])
    if q == 0.0:
        step = 1e-5
        d0 = float(phi.derivative(np.array([0.0]))[0])
        second = float((phi.derivative(np.array([step])) - phi.derivative(np.array([-step])))[0]) / (2 * step)
        return d0 * d0 + float(phi.value(np.array([0.0]))[0]) * second
    sigma = math.sqrt(q)
    z, w = normal_rule(sigma, kink=phi.relu_like)
    # Subtracting phi(0) phi'(0) (whose z-moment is 0) keeps the small-q limit free of cancellation.
    return float(np.dot(w, z * (product(sigma * z) - zero))) / sigma


def _pair_moments(phi, q, c):
    """(E[phi(u1) phi(u2)], E[phi'(u1) phi'(u2)]) at variance q and correlation c."""
    c = min(1.0, max(-1.0, c))
    if phi.kind == "relu":
        theta = math.acos(c)
        return (
            q * (math.sqrt(max(0.0, 1.0 - c * c)) + (math.pi - theta) * c) / (2.0 * math.pi),
            (math.pi - theta) / (2.0 * math.pi) if q > 0 else 0.0,
        )
    if phi.kind == "linear":
        return q * c, 1.0
    return (
        _pair_expectation(phi.value, phi.value, q, c, phi.relu_like),
        _pair_expectation(phi.derivative, phi.derivative, q, c, phi.relu_like),
    )


# ------------------------------------------------------------------------------------------------------------------
# Argument checks


def _check_sigmas(sigma_w2, sigma_b2):
    return (check_finite(sigma_w2, "sigma_w2", minimum=0.0), check_finite(sigma_b2, "sigma_b2", minimum=0.0))


def _check_q(q, name="q"):
    return check_finite(q, name, minimum=0.0)


def _check_c(c, name="c"):
    c = check_finite(c, name)
    if not -1.0 <= c <= 1.0:
        raise ValueError(f"{name} must lie in [-1, 1], got {c!r}")
    return c


def check_widths(widths, name="widths"):
    """``widths`` (n_0, ..., n_L) as a tuple of positive ints, L >= 1; ValueError naming ``name`` otherwise."""
    if isinstance(widths, (int, np.integer)) or isinstance(widths, (str, bytes)):
        raise ValueError(f"{name} must be a sequence (n_0, ..., n_L) of positive integers, got {widths!r}")
    try:
        widths = tuple(widths)
    except TypeError:
        raise ValueError(f"{name} must be a sequence (n_0, ..., n_L) of positive integers, got {widths!r}") from None
    if len(widths) < 2:
        raise ValueError(f"{name} must list n_0, ..., n_L with L >= 1, got {widths!r}")
    return tuple(check_positive_int(n, name) for n in widths)


# ------------------------------------------------------------------------------------------------------------------
# 1. Linear regime


def linear_regime_gain(activation, **params):
    """(g_f, g_b): ``E[phi(s)^2] / Var[s]`` and ``E[phi'(s)^2]`` for small zero-mean Gaussian s.

    ReLU: (1/2, 1/2) at every scale (He et al. 2015); leaky ReLU(a): ((1 + a^2)/2, (1 + a^2)/2); identity (1, 1);
    a smooth activation with phi(0) = 0 (tanh, erf, ...): (phi'(0)^2, phi'(0)^2), its linear regime
    (Glorot & Bengio 2010). Activations with phi(0) != 0 (sigmoid, softplus) have no such regime: ValueError
    (use :func:`expected_variances`, the mean-field theory).
    """
    phi = activation_for_theory(activation, **params)
    if phi.kind == "relu":
        return 0.5, 0.5
    if phi.kind == "linear":
        return 1.0, 1.0
    if phi.name == "leaky_relu":
        gain = 0.5 * (1.0 + phi.param**2)
        return gain, gain
    zero = float(phi.value(np.array([0.0]))[0])
    if abs(zero) > 0.0:
        raise ValueError(
            f"activation {phi.name!r} has phi(0) = {zero:g} != 0: no linear regime; use expected_variances "
            "(mean-field theory) instead"
        )
    slope = float(phi.derivative(np.array([0.0]))[0])
    return slope * slope, slope * slope


def linear_regime_variances(
    weight_var, widths, activation="relu", *, input_var=1.0, output_grad_var=1.0, bias_var=0.0, **params
):
    """Per-layer (Var[s^(l)], Var[delta^(l)]) of the linear-regime recursions, arrays of length L.

    ``weight_var``: one variance for every layer, or one per layer (v_1, ..., v_L); ``widths`` (n_0, ..., n_L).
    Forward ``Var[s^(1)] = n_0 v_1 input_var + bias_var`` (x^(0) is not activated) and
    ``Var[s^(l)] = n_(l-1) v_l g_f Var[s^(l-1)] + bias_var``; backward ``Var[delta^(L)] = output_grad_var`` and
    ``Var[delta^(l-1)] = n_l v_l g_b Var[delta^(l)]`` (Glorot & Bengio 2010, eqs. 5-7; He et al. 2015, eqs. 10 and
    14), with the gains of :func:`linear_regime_gain`.
    """
    widths = check_widths(widths)
    depth = len(widths) - 1
    v = _per_layer(weight_var, depth, "weight_var")
    g_f, g_b = linear_regime_gain(activation, **params)
    input_var = check_finite(input_var, "input_var", minimum=0.0)
    output_grad_var = check_finite(output_grad_var, "output_grad_var", minimum=0.0)
    bias_var = check_finite(bias_var, "bias_var", minimum=0.0)
    forward = np.empty(depth)
    backward = np.empty(depth)
    forward[0] = widths[0] * v[0] * input_var + bias_var
    for l in range(2, depth + 1):
        forward[l - 1] = widths[l - 1] * v[l - 1] * g_f * forward[l - 2] + bias_var
    backward[depth - 1] = output_grad_var
    for l in range(depth, 1, -1):
        backward[l - 2] = widths[l] * v[l - 1] * g_b * backward[l - 1]
    return forward, backward


def _per_layer(values, depth, name):
    array = np.atleast_1d(np.asarray(values, dtype=float))
    if array.ndim != 1 or array.size not in (1, depth):
        raise ValueError(f"{name} must be one number or {depth} numbers (one per layer), got shape {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must be finite and >= 0, got {values!r}")
    return np.broadcast_to(array, (depth,)).astype(float)


def standard_uniform_variance(fan_in):
    """Variance 1/(3 fan_in) of the "standard" U[-1/sqrt(fan_in), 1/sqrt(fan_in)] (PyTorch's ``nn.Linear``):
    ``fan_in * Var = 1/3``, so in the linear regime each layer shrinks the variance about 3x (Glorot & Bengio
    2010, eq. 1 and section 4.2)."""
    return 1.0 / (3.0 * check_positive_int(fan_in, "fan_in"))


def lecture_uniform_variance(fan_in, fan_out):
    """Variance ``2 / (1 + fan_in + fan_out)`` of the lecture's U[-U, U] with ``U = sqrt(6 / (1 + fan_in +
    fan_out))`` (Glorot's uniform with the bias counted as one more input): ``U^2 / 3``."""
    fan_in = check_positive_int(fan_in, "fan_in")
    fan_out = check_positive_int(fan_out, "fan_out")
    bound = math.sqrt(6.0 / (1.0 + fan_in + fan_out))
    return bound * bound / 3.0


def weight_variances(init, widths, **init_params):
    """(v_1, ..., v_L): the variance of each layer's weights under the initialiser ``init`` of :mod:`testbed.init`.

    ``"standard"`` (U[+-1/sqrt(fan_in)]) is known here even where :mod:`testbed.init` calls it otherwise.
    """
    widths = check_widths(widths)
    if init == "standard" and not init_params:
        return np.array([standard_uniform_variance(n) for n in widths[:-1]])
    from .. import init as initialisers

    return np.array(
        [float(initialisers.variance(init, widths[l - 1], widths[l], **init_params)) for l in range(1, len(widths))]
    )


# ------------------------------------------------------------------------------------------------------------------
# 2. Mean field


def length_map(activation, q, sigma_w2, sigma_b2=0.0, **params):
    """One step of the length map: ``sw2 E_z[phi(sqrt(q) z)^2] + sb2`` (Poole et al. 2016, eq. 3)."""
    phi = activation_for_theory(activation, **params)
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    return sigma_w2 * _second_moment(phi, _check_q(q)) + sigma_b2


def q_star(activation, sigma_w2, sigma_b2=0.0, *, q0=1.0, **params):
    """The fixed point ``q*`` of the length map that the iteration from ``q0`` reaches (Poole et al. 2016).

    The length map is increasing in q for every activation here, so the iterates move monotonically toward the
    nearest fixed point on the side where ``length_map(q0) - q0`` points: found by bracketing and Brent's method.
    Returns ``inf`` when the iterates grow without bound (ReLU with sw2 > 2, the identity with sw2 > 1) and ``q0``
    when every q is fixed (ReLU at sw2 = 2, sb2 = 0). Closed forms: ReLU ``sb2 / (1 - sw2/2)``, identity
    ``sb2 / (1 - sw2)``.
    """
    phi = activation_for_theory(activation, **params)
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    q0 = _check_q(q0, "q0")
    return _q_star(phi, sigma_w2, sigma_b2, q0)


def _q_star(phi, sw2, sb2, q0=1.0):
    if phi.kind in ("relu", "linear"):
        slope = sw2 * (0.5 if phi.kind == "relu" else 1.0)
        if slope < 1.0:
            return sb2 / (1.0 - slope)
        if slope == 1.0 and sb2 == 0.0:
            return q0
        return math.inf

    def gap(q):
        return sw2 * _second_moment(phi, q) + sb2 - q

    start = gap(q0)
    if start == 0.0:
        return q0
    if start > 0.0:
        low, high = q0, max(2.0 * q0, 1e-300)
        while gap(high) > 0.0:
            low, high = high, 2.0 * high
            if high > 1e300:
                return math.inf
    else:
        # Downward: a gap within NEUTRAL_GAP * q of 0 counts as still decreasing, so that a critical map
        # (gap ~ -q^2 near 0, e.g. tanh at sw2 = 1, sb2 = 0) flows to 0 instead of to a rounding error.
        high, low = q0, 0.5 * q0
        while low > 1e-300 and gap(low) < NEUTRAL_GAP * low:
            high, low = low, 0.5 * low
        if gap(low) < NEUTRAL_GAP * low:
            if gap(0.0) <= 0.0:  # phi(0) = 0 and sb2 = 0: the iterates decay to q* = 0
                return 0.0
            low = 0.0
        if gap(high) >= 0.0:
            return high
    return optimize.brentq(gap, low, high, xtol=1e-300, rtol=ROOT_RTOL, maxiter=500)


def correlation_map(activation, c, sigma_w2, sigma_b2=0.0, *, q=None, **params):
    """One step of the correlation map: ``(sw2 E[phi(u1) phi(u2)] + sb2) / q'`` (Poole et al. 2016, eq. 5).

    ``u1 = sqrt(q) z1``, ``u2 = sqrt(q) (c z1 + sqrt(1 - c^2) z2)``; ``q`` is the variance of both inputs
    (default ``q*``) and ``q' = length_map(q)`` (= q* at the fixed point). ReLU: the arc-cosine kernel
    (Cho & Saul 2009), ``c' = (sqrt(1-c^2) + (pi - arccos c) c) / pi`` at sb2 = 0.
    """
    phi = activation_for_theory(activation, **params)
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    c = _check_c(c)
    q = _q_star(phi, sigma_w2, sigma_b2) if q is None else _check_q(q)
    return _correlation_step(phi, sigma_w2, sigma_b2, q, c)


def _correlation_step(phi, sw2, sb2, q, c):
    q_next = sw2 * _second_moment(phi, q) + sb2
    if q_next == 0.0 or not math.isfinite(q):
        return math.nan
    if phi.kind in ("relu", "linear") and sb2 == 0.0:
        # Positively homogeneous: the map does not depend on q (also when q* is 0 or infinite).
        q = 1.0
        q_next = sw2 * _second_moment(phi, q)
    return (sw2 * _pair_moments(phi, q, c)[0] + sb2) / q_next


def chi1(activation, sigma_w2, sigma_b2=0.0, *, q=None, **params):
    """``chi1 = sw2 E_z[phi'(sqrt(q*) z)^2]`` (Poole et al. 2016, eq. 7; Schoenholz et al. 2017, eq. 8).

    The per-layer factor of ``E[delta^2]`` going backward and the slope of the correlation map at c = 1; ordered
    below 1, chaotic above. ``q`` defaults to ``q*``; ReLU: ``sw2 / 2``, identity: ``sw2``.
    """
    phi = activation_for_theory(activation, **params)
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    q = _q_star(phi, sigma_w2, sigma_b2) if q is None else _check_q(q)
    return _chi1(phi, sigma_w2, q)


#: Where q* is infinite (an unbounded activation past its transition), chi1 is evaluated at this q.
Q_LARGE = 1e12


def _chi1(phi, sw2, q):
    if phi.kind in ("relu", "linear"):
        return sw2 * (0.5 if phi.kind == "relu" else 1.0)
    return sw2 * _derivative_second_moment(phi, q if math.isfinite(q) else Q_LARGE)


def c_star(activation, sigma_w2, sigma_b2=0.0, **params):
    """The stable fixed point ``c*`` of the correlation map (Poole et al. 2016; Schoenholz et al. 2017).

    ``c* = 1`` in the ordered phase (chi1 <= 1); in the chaotic phase the root of ``correlation_map(c) = c`` below
    1. Conventions for the degenerate cases: ``c* = 1`` when ``q* = 0`` (every input collapses to 0: the
    ordered phase at sb2 = 0) and for ReLU and the identity (whose correlation map at sb2 = 0 is the arc-cosine
    map or the identity map, with 1 as attractor or a neutral fixed point).
    """
    phi = activation_for_theory(activation, **params)
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    return _c_star(phi, sigma_w2, sigma_b2, _q_star(phi, sigma_w2, sigma_b2))


#: Distance from +-1 of the bracket of the c* search.
C_BRACKET = 1e-6


def _c_star(phi, sw2, sb2, q):
    if phi.kind in ("relu", "linear") or q == 0.0 or not math.isfinite(q):
        return 1.0
    if _chi1(phi, sw2, q) <= 1.0:
        return 1.0

    def gap(c):
        return _correlation_step(phi, sw2, sb2, q, c) - c

    low, high = -1.0 + C_BRACKET, 1.0 - C_BRACKET
    if gap(high) >= 0.0:  # chi1 barely above 1: c* is within C_BRACKET of 1
        return 1.0
    if gap(low) <= 0.0:
        grid = np.linspace(low, high, 41)
        values = [gap(c) for c in grid]
        positive = [i for i, v in enumerate(values) if v > 0.0]
        if not positive:
            return -1.0
        low, high = grid[positive[-1]], grid[positive[-1] + 1]
    return optimize.brentq(gap, low, high, xtol=1e-14, rtol=ROOT_RTOL, maxiter=200)


class MeanField(NamedTuple):
    """The mean-field description of one (activation, sigma_w2, sigma_b2): see :func:`mean_field`."""

    q_star: float
    c_star: float
    chi1: float
    chi_c: float
    xi_q: float
    xi_c: float


def mean_field(activation, sigma_w2, sigma_b2=0.0, **params):
    """``q*``, ``c*``, ``chi1``, ``chi_c`` and the depth scales ``xi_q``, ``xi_c`` (Schoenholz et al. 2017).

    ``1/xi_q = -ln(sw2 d/dq E[phi(sqrt(q) z)^2] at q*) = -ln(chi1 + sw2 E[phi'' phi])`` (eq. 5; computed through
    Stein's lemma, so only phi and phi' are needed), ``1/xi_c = -ln chi_c`` with ``chi_c = sw2 E[phi'(u1) phi'(u2)]``
    at ``c*`` (eq. 9; ``chi_c = chi1`` when ``c* = 1``). A slope >= 1 (criticality, or ReLU at sb2 = 0 where the
    correlation map approaches 1 as a power law, 1 - c_l ~ 9 pi^2 / (2 l^2)) gives an infinite depth scale.
    """
    phi = activation_for_theory(activation, **params)
    sigma_w2, sigma_b2 = _check_sigmas(sigma_w2, sigma_b2)
    return _mean_field(phi, sigma_w2, sigma_b2)


def _depth_scale(slope):
    if not slope > 0.0:
        return 0.0
    if slope >= 1.0:
        return math.inf
    return -1.0 / math.log(slope)


def _mean_field(phi, sw2, sb2):
    q = _q_star(phi, sw2, sb2)
    c = _c_star(phi, sw2, sb2, q)
    x1 = _chi1(phi, sw2, q)
    if phi.kind in ("relu", "linear"):
        slope_q = x1
        # The correlation map at sb2 = 0 does not depend on q: slope 1 at c* = 1 (no finite depth scale).
        chi_c = 1.0 if sb2 == 0.0 else x1
    elif not math.isfinite(q):
        slope_q, chi_c = math.nan, math.nan
    else:
        slope_q = sw2 * _length_slope_factor(phi, q)
        chi_c = x1 if c == 1.0 else sw2 * _pair_moments(phi, q, c)[1]
    xi_q = _depth_scale(slope_q) if math.isfinite(slope_q) else math.nan
    xi_c = _depth_scale(chi_c) if math.isfinite(chi_c) else math.nan
    return MeanField(q, c, x1, chi_c, xi_q, xi_c)


def critical_sigma_w2(activation, sigma_b2=0.0, **params):
    """The weight variance ``sw2`` on the order-to-chaos line ``chi1(sw2, sb2) = 1`` (Poole et al. 2016, fig. 2;
    Schoenholz et al. 2017, fig. 1), by Brent's method on ``chi1 - 1`` along the fixed point ``q*(sw2)``.

    ReLU: 2 (He et al. 2015), identity: 1, tanh at sb2 = 0: 1. ValueError when chi1 stays below 1 for every
    sw2 up to SIGMA_W2_MAX.
    """
    phi = activation_for_theory(activation, **params)
    sigma_b2 = check_finite(sigma_b2, "sigma_b2", minimum=0.0)
    if phi.kind == "relu":
        return 2.0
    if phi.kind == "linear":
        return 1.0

    def excess(sw2):
        return _chi1(phi, sw2, _q_star(phi, sw2, sigma_b2)) - 1.0

    low, high = 0.0, 1.0
    while excess(high) < 0.0:
        low, high = high, 2.0 * high
        if high > SIGMA_W2_MAX:
            raise ValueError(
                f"activation {phi.name!r} with sigma_b2={sigma_b2!r} has no order-to-chaos transition "
                f"for sigma_w2 <= {SIGMA_W2_MAX:g}"
            )
    return optimize.brentq(excess, low, high, xtol=1e-13, rtol=ROOT_RTOL, maxiter=200)


# ------------------------------------------------------------------------------------------------------------------
# 3. Finite width


def hanin_rolnick_moment_ratio(widths):
    """``E[M_d^2] / M_0^2 = prod_(j=1..d) (1 + 5/n_j)`` (Hanin & Rolnick 2018, Theorem 5), ``M_j = |x^(j)|^2 / n_j``.

    The exact setting: a ReLU net with widths ``(n_0, ..., n_d)``, weights i.i.d. N(0, 2/fan_in) (He normal), zero
    biases, a fixed input x^(0); the expectation is over the weights. Then ``E[M_d] = M_0`` and the relative
    variance ``Var[M_d] / M_0^2`` is this ratio minus 1 (:func:`hanin_rolnick_fluctuation`), about
    ``exp(5 sum_j 1/n_j) - 1``: it grows with the sum of reciprocal widths, not with depth alone.
    """
    widths = check_widths(widths)
    return float(np.prod([1.0 + HANIN_ROLNICK_CONSTANT / n for n in widths[1:]]))


def hanin_rolnick_fluctuation(widths):
    """``Var[M_d] / M_0^2 = prod_j (1 + 5/n_j) - 1`` in the setting of :func:`hanin_rolnick_moment_ratio`."""
    return hanin_rolnick_moment_ratio(widths) - 1.0


def reciprocal_width_sum(widths):
    """``sum_(j=1..d) 1/n_j``, the quantity the finite-width fluctuation grows with (Hanin & Rolnick 2018)."""
    widths = check_widths(widths)
    return float(sum(1.0 / n for n in widths[1:]))


# ------------------------------------------------------------------------------------------------------------------
# Expected per-layer statistics of a net


#: The fields of a :class:`SignalPrediction` exact in expectation at any width for ReLU and the identity.
LINEAR_REGIME_EXACT = ("weight_var", "weight_gain", "pre_var", "post_meansq", "grad_var", "zero_frac")


@dataclasses.dataclass
class SignalPrediction:
    """Predicted per-layer statistics of a fresh net (arrays of length L, index l - 1), as measured by
    :func:`testbed.nn.propagate`.

    - ``weight_var``: v_l, the weight variance of each layer; ``weight_gain``: n_(l-1) v_l (the sw2 of layer l).
    - ``pre_var``: Var[s^(l)] = q^l; ``post_mean``, ``post_var``, ``post_meansq``: of x^(l) = phi(s^(l)).
    - ``grad_var``: Var[delta^(l)] (gradient-independence assumption of Schoenholz et al. 2017).
    - ``correlation``: c^l, the correlation of s^(l) for two inputs (of correlation ``input_correlation``).
    - ``saturated_frac``: P(phi(s) within SATURATION_TOLERANCE of a bound) (0 for unbounded activations).
    - ``zero_frac``: P(s <= 0); ``dead_frac``: ReLU family (leaky ReLU included, as :mod:`testbed.nn` counts it),
      P(a unit has s <= 0 for all ``batch`` inputs), from the equicorrelated Gaussian of the batch:
      ``E_z[Phi(-sqrt(c/(1-c)) z)^batch]`` (NaN without ``batch``; 0 for the other activations, as measured).
    - ``basis``: ``"linear-regime"`` (ReLU and the identity: the quantities named in ``exact_quantities`` hold in
      expectation over the weights at any width; the correlation, the post-activation mean and variance, the
      dead and saturated fractions rest on Gaussian pre-activations, i.e. the infinite-width mean field) or
      ``"mean-field"`` (other activations: every quantity is the infinite-width mean field).
    - ``exact_quantities``: the fields exact in expectation at any width (empty for mean-field activations).
    - ``method``: deprecated alias, ``"exact"`` for the linear regime, ``"mean-field"`` otherwise; it called the
      ReLU correlation and dead fraction exact, which they are not. Use ``basis`` and ``exact_quantities``.
    """

    weight_var: np.ndarray
    weight_gain: np.ndarray
    pre_var: np.ndarray
    post_mean: np.ndarray
    post_var: np.ndarray
    post_meansq: np.ndarray
    grad_var: np.ndarray
    correlation: np.ndarray
    saturated_frac: np.ndarray
    zero_frac: np.ndarray
    dead_frac: np.ndarray
    basis: str
    exact_quantities: tuple = ()

    @property
    def method(self):
        """Deprecated: ``"exact"`` when ``basis == "linear-regime"``, else ``"mean-field"`` (see ``basis``)."""
        import warnings

        warnings.warn(
            "SignalPrediction.method is deprecated: it labelled mean-field quantities (the ReLU "
            "correlation and dead fraction) exact; use .basis and .exact_quantities",
            DeprecationWarning,
            stacklevel=2,
        )
        return "exact" if self.basis == "linear-regime" else "mean-field"

    def as_arrays(self):
        """The per-layer arrays by name."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }


def _saturation_thresholds(phi):
    """(s_low, s_high): phi(s) <= lower + margin iff s <= s_low, phi(s) >= upper - margin iff s >= s_high."""
    margin = SATURATION_TOLERANCE * max(abs(phi.lower), abs(phi.upper))

    def solve(target):
        f = lambda s: float(phi.value(np.array([s]))[0]) - target  # noqa: E731
        low, high = -1.0, 1.0
        while f(low) > 0.0:
            low *= 2.0
        while f(high) < 0.0:
            high *= 2.0
        return optimize.brentq(f, low, high, xtol=1e-14)

    return solve(phi.lower + margin), solve(phi.upper - margin)


def _saturated_fraction(phi, q, thresholds):
    if not phi.bounded:
        return 0.0
    low, high = thresholds
    if q == 0.0:
        return float(0.0 <= low or 0.0 >= high)
    sigma = math.sqrt(q)
    return float(special.ndtr(low / sigma) + special.ndtr(-high / sigma))


def dead_unit_fraction(correlation, batch):
    """P(a ReLU unit is off for every one of ``batch`` inputs) when its pre-activations over the batch are
    equicorrelated zero-mean Gaussians of correlation c: ``E_z[Phi(-sqrt(c / (1 - c)) z)^batch]``
    (``2^-batch`` at c = 0, 1/2 at c = 1; negative c is clipped to 0)."""
    batch = check_positive_int(batch, "batch")
    c = min(1.0, max(0.0, check_finite(correlation, "correlation")))
    if c >= 1.0:
        return 0.5
    ratio = math.sqrt(c / (1.0 - c))
    z, w = normal_rule(max(1.0, 2.0 * ratio), kink=True)
    # log Phi avoids underflow of Phi^batch; the integrand is sharp where Phi^batch switches on.
    return float(np.dot(w, np.exp(batch * special.log_ndtr(-ratio * z))))


def expected_variances(
    init,
    activation,
    widths,
    *,
    bias_var=0.0,
    input_var=1.0,
    input_correlation=0.0,
    batch=None,
    output_grad_var=1.0,
    weight_var=None,
    activation_params=None,
    **init_params,
):
    """The expected per-layer statistics (a :class:`SignalPrediction`) of a fresh net, for overlays on measurements.

    ``init`` names an initialiser of :mod:`testbed.init` (with ``init_params``) whose per-layer variances come
    from :func:`weight_variances`; or pass ``weight_var`` (one number or one per layer) and ``init=None``.
    ``widths`` (n_0, ..., n_L); inputs x^(0) of variance ``input_var`` and zero mean (not activated), two of them
    with correlation ``input_correlation``; biases N(0, ``bias_var``); ``delta^(L)`` of variance ``output_grad_var``.

    Recursion (Poole et al. 2016; Schoenholz et al. 2017), with ``sw2_l = n_(l-1) v_l``::

        q^1 = n_0 v_1 input_var + sb2,                   q^l = sw2_l E[phi(sqrt(q^(l-1)) z)^2] + sb2
        c^1 = (n_0 v_1 input_var c^0 + sb2) / q^1,       c^l = (sw2_l E[phi(u1) phi(u2)] + sb2) / q^l
        Var[delta^(L)] = output_grad_var,
        Var[delta^(l-1)] = n_l v_l E[phi'(sqrt(q^(l-1)) z)^2] Var[delta^(l)]

    For ReLU and the identity the recursions of ``pre_var``, ``post_meansq`` and ``grad_var`` are the exact
    linear-regime recursions (He et al. 2015; Glorot & Bengio 2010), in expectation over the weights at any width
    (``zero_frac`` = 1/2 by symmetry); the correlation and the dead fraction assume Gaussian pre-activations and
    are mean field even there (``basis``, ``exact_quantities``). For other activations every quantity is the
    infinite-width mean field.
    """
    widths = check_widths(widths)
    depth = len(widths) - 1
    phi = activation_for_theory(activation, **(activation_params or {}))
    if weight_var is None:
        if init is None:
            raise ValueError("pass init (an initialiser name) or weight_var")
        v = weight_variances(init, widths, **init_params)
    else:
        if init is not None or init_params:
            raise ValueError("pass either init (with its parameters) or weight_var, not both")
        v = _per_layer(weight_var, depth, "weight_var")
    sb2 = check_finite(bias_var, "bias_var", minimum=0.0)
    input_var = check_finite(input_var, "input_var", minimum=0.0)
    c0 = _check_c(input_correlation, "input_correlation")
    output_grad_var = check_finite(output_grad_var, "output_grad_var", minimum=0.0)
    if batch is not None:
        batch = check_positive_int(batch, "batch")
    gain = np.array([widths[l - 1] * v[l - 1] for l in range(1, depth + 1)])
    thresholds = _saturation_thresholds(phi) if phi.bounded else None
    fields = {
        name: np.empty(depth)
        for name in (
            "pre_var",
            "post_mean",
            "post_var",
            "post_meansq",
            "grad_var",
            "correlation",
            "saturated_frac",
            "zero_frac",
            "dead_frac",
        )
    }
    q = gain[0] * input_var + sb2
    c = (gain[0] * input_var * c0 + sb2) / q if q > 0.0 else math.nan
    for l in range(1, depth + 1):
        if l > 1:
            q_prev, c_prev = q, c
            q = gain[l - 1] * _second_moment(phi, q_prev) + sb2 if math.isfinite(q_prev) else math.inf
            if not (q > 0.0 and math.isfinite(q)) or math.isnan(c_prev):
                c = math.nan
            else:
                c = (gain[l - 1] * _pair_moments(phi, q_prev, c_prev)[0] + sb2) / q
                c = min(1.0, max(-1.0, c))
        fields["pre_var"][l - 1] = q
        fields["correlation"][l - 1] = c
        finite = math.isfinite(q)
        mean = _mean(phi, q) if finite else math.nan
        meansq = _second_moment(phi, q) if finite else math.inf
        fields["post_mean"][l - 1] = mean
        fields["post_meansq"][l - 1] = meansq
        fields["post_var"][l - 1] = max(0.0, meansq - mean * mean) if finite else math.inf
        fields["saturated_frac"][l - 1] = _saturated_fraction(phi, q, thresholds) if finite else math.nan
        fields["zero_frac"][l - 1] = 1.0 if q == 0.0 else 0.5
        if not phi.relu_like:
            fields["dead_frac"][l - 1] = 0.0
        elif q == 0.0:
            fields["dead_frac"][l - 1] = 1.0
        elif batch is None or math.isnan(c):
            fields["dead_frac"][l - 1] = math.nan
        else:
            fields["dead_frac"][l - 1] = dead_unit_fraction(c, batch)
    grad = fields["grad_var"]
    grad[depth - 1] = output_grad_var
    for l in range(depth, 1, -1):
        q_prev = fields["pre_var"][l - 2]
        factor = _derivative_second_moment(phi, q_prev) if math.isfinite(q_prev) else math.nan
        grad[l - 2] = widths[l] * v[l - 1] * factor * grad[l - 1]
    linear_regime = phi.kind in ("relu", "linear")
    return SignalPrediction(
        weight_var=np.asarray(v, dtype=float).copy(),
        weight_gain=gain,
        basis="linear-regime" if linear_regime else "mean-field",
        exact_quantities=LINEAR_REGIME_EXACT if linear_regime else (),
        **fields,
    )


__all__ = [
    "Phi",
    "activation_for_theory",
    "normal_rule",
    "gaussian_expectation",
    "check_widths",
    "linear_regime_gain",
    "linear_regime_variances",
    "standard_uniform_variance",
    "lecture_uniform_variance",
    "weight_variances",
    "length_map",
    "q_star",
    "correlation_map",
    "chi1",
    "c_star",
    "MeanField",
    "mean_field",
    "critical_sigma_w2",
    "hanin_rolnick_moment_ratio",
    "hanin_rolnick_fluctuation",
    "reciprocal_width_sum",
    "SignalPrediction",
    "dead_unit_fraction",
    "expected_variances",
    "HERMITE_NODES",
    "SIGMA_HERMITE",
    "Z_TAIL",
    "LEGENDRE_NODES",
    "PANEL_WIDTH",
    "MAX_PANELS",
    "SATURATION_TOLERANCE",
    "HANIN_ROLNICK_CONSTANT",
    "LINEAR_REGIME_EXACT",
]
