"""Test landscapes for the escape-time experiments: saddles, a maximum, plateaus, ravines, local minima, Reddi.

The arithmetic lives once, in :mod:`testbed.rules.landscapes` (value, gradient component and Hessian entry as
scalar rules compiled for both targets); this module holds the names, the parameters, the escape geometry and
slow NumPy evaluation for plots and references. Build one by its factory or by name::

    from testbed import landscapes
    f = landscapes.saddle(dim=10, negative=1, gamma=1.0)   # Hessian eigenvalues -gamma, then +1 (dim-1 times)
    g = landscapes.make("rosenbrock", dim=2)                # by name (the scenarios' --landscape option)
    f.value([0.1, 0.2, ...]), f.gradient(w), f.hessian(w)

=================  ============================================  =============================================
name               f(w)                                          geometry (start / centre of the escape ball)
=================  ============================================  =============================================
saddle             1/2 sum_i lambda_i w_i^2, lambda = (-gamma    the saddle at 0; w_0 .. w_{k-1} are the k
                   k times, +1 d-k times) or a given spectrum    escape directions (Dauphin et al. 2014)
quadratic          1/2 sum_i lambda_i w_i^2, any spectrum        0
monkey_saddle      w_0^3 - 3 w_0 w_1^2                           the degenerate saddle at 0 (zero Hessian)
local_maximum      -|w|^2 (lambda_i = -2)                        the maximum at 0
tanh_unit          1/2 (tanh(a w) - y)^2                         a saturated start w0 (gradient ~ e^(-2 a w0))
deep_linear        1/2 (s - prod_i w_i)^2, depth D = dim         balanced start w_i = u0^(1/D) (Saxe et al.
                                                                 2013: u0 is the initial mode strength)
ravine             1/2 (w_0^2 + kappa w_1^2)                     minimum at 0, start (1, 1)
rosenbrock         sum_i (a - w_i)^2 + b (w_{i+1} - w_i^2)^2     start (-1.2, 1, ...), minimum (a, a^2, ...)
double_well        sum_i h (w_i^2 - 1)^2 + c w_i                 minima near +-1 (tilt c picks one)
rastrigin          A d + sum_i (w_i^2 - A cos 2 pi w_i)          global minimum at 0, many local minima
reddi              f_t(x) = C x if t mod 3 == 1 else -x,         x in [-1, 1] (projected); the optimum is -1
                   on [-1, 1] (Reddi et al. 2018)                but Adam goes to +1
=================  ============================================  =============================================
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt

from .rules import landscapes as rules
from .validation import check_finite, check_positive_int, unknown_name_error


@dataclasses.dataclass(frozen=True, eq=False)
class Landscape:
    """A loss landscape: its rule code and parameters, its dimension and its escape geometry.

    Attributes
    ----------
    name, code, dim, params
        The registry name, the rule code in :mod:`testbed.rules.landscapes`, the number of coordinates and the
        parameter array the rules read (float64).
    start
        The default start of a trial (``start="saddle"`` in :func:`testbed.montecarlo.escape_times`): the saddle,
        the maximum, the plateau's start, the ravine's start.
    center
        Centre of the escape ball (``radius`` criterion); the critical point, or the start for plateaus.
    minimum
        A global minimiser when known (the ``converge`` criterion's target), else None.
    bounds
        ``(low, high)`` of the feasible box onto which every iterate is projected, or None (unconstrained).
    negative_curvature
        gamma, minus the most negative Hessian eigenvalue at ``center`` (0 where none), for the escape laws.
    online
        True when the loss depends on the step number t (the Reddi counterexample).
    description
        The formula with its parameters, for tables and figure titles.
    """

    name: str
    code: int
    dim: int
    params: np.ndarray
    start: np.ndarray
    center: np.ndarray
    minimum: np.ndarray | None = None
    bounds: tuple | None = None
    negative_curvature: float = 0.0
    online: bool = False
    description: str = ""

    def _points(self, w):
        points = np.asarray(w, dtype=np.float64)
        if points.shape[-1:] != (self.dim,):
            raise ValueError(f"w must have last dimension {self.dim} (the landscape's dim), got shape {points.shape}")
        return points

    def value(self, w: npt.ArrayLike, t: int = 0) -> float | np.ndarray:
        """f(w) (``t``: the step, for the online loss; 0 = its average), for one point or an array of points."""
        points = self._points(w)
        flat = points.reshape(-1, self.dim)
        out = np.array([rules.value(self.code, flat, row, self.dim, self.params, t) for row in range(len(flat))])
        return out.reshape(points.shape[:-1]) if points.ndim > 1 else float(out[0])

    def gradient(self, w: npt.ArrayLike, t: int = 0) -> np.ndarray:
        """grad f(w), same shape as ``w``, through the scalar rule (slow reference path)."""
        points = self._points(w)
        flat = points.reshape(-1, self.dim)
        out = np.array(
            [
                [rules.gradient(self.code, flat, row, i, self.dim, self.params, t) for i in range(self.dim)]
                for row in range(len(flat))
            ]
        )
        return out.reshape(points.shape)

    def hessian(self, w: npt.ArrayLike, t: int = 0) -> np.ndarray:
        """The Hessian at one point ``w``: a (dim, dim) array."""
        point = self._points(w)
        if point.ndim != 1:
            raise ValueError(f"hessian takes one point of shape ({self.dim},), got shape {point.shape}")
        rows = point.reshape(1, self.dim)
        return np.array(
            [
                [rules.hessian(self.code, rows, 0, i, j, self.dim, self.params, t) for j in range(self.dim)]
                for i in range(self.dim)
            ]
        )

    def grid_values(
        self, x: npt.ArrayLike, y: npt.ArrayLike, t: int = 0, base: npt.ArrayLike | None = None
    ) -> np.ndarray:
        """f on the 2-D grid ``x`` x ``y`` (other coordinates at ``base``, default ``center``), shape (len(y), len(x)).

        For contour plots of the first two coordinates.
        """
        if self.dim < 2 and self.dim != 1:
            raise ValueError("grid_values needs a landscape of dim >= 1")
        point = np.array(self.center if base is None else base, dtype=np.float64).reshape(1, self.dim)
        out = np.empty((len(y), len(x)))
        for row, yv in enumerate(y):
            for col, xv in enumerate(x):
                point[0, 0] = xv
                if self.dim > 1:
                    point[0, 1] = yv
                out[row, col] = rules.value(self.code, point, 0, self.dim, self.params, t)
        return out

    def __repr__(self):
        return f"Landscape({self.name!r}, dim={self.dim}, {self.description})"


def _finite_vector(values, name, length=None):
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of real numbers, got {values!r}") from None
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a non-empty sequence of finite numbers, got {values!r}")
    if length is not None and array.size != length:
        raise ValueError(f"{name} must have length {length}, got {array.size}")
    return np.ascontiguousarray(array)


def _quadratic(name, eigenvalues, description, start=None, minimum=None):
    eigenvalues = _finite_vector(eigenvalues, "spectrum")
    dim = eigenvalues.size
    zero = np.zeros(dim)
    gamma = float(max(0.0, -eigenvalues.min()))
    return Landscape(
        name=name,
        code=rules.QUADRATIC,
        dim=dim,
        params=eigenvalues,
        start=zero.copy() if start is None else _finite_vector(start, "start", dim),
        center=zero,
        minimum=minimum,
        negative_curvature=gamma,
        description=description,
    )


def saddle(
    dim: int | None = None, negative: int = 1, gamma: float = 1.0, spectrum: npt.ArrayLike | None = None
) -> Landscape:
    """Strict saddle f = 1/2 sum_i lambda_i w_i^2 at w = 0 (Dauphin et al. 2014).

    By default the Hessian eigenvalues are ``-gamma`` (``negative`` times, on coordinates 0 .. negative-1, the
    escape directions) and ``+1`` (``dim - negative`` times). ``spectrum`` gives all ``dim`` eigenvalues instead
    (at least one negative); ``dim`` defaults to 10, or to the spectrum's length. Gradient descent from ``y0``
    along the escape direction leaves the ball of radius R
    after ``ln(R / |y0|) / ln(1 + lr gamma)`` steps (reference.md section 4).

    Parameters
    ----------
    dim : int or None
        The number of coordinates (10, or the spectrum's length, when None).
    negative : int
        The number of escape directions, 1..dim.
    gamma : float
        Minus the negative eigenvalue (positive).
    spectrum : array_like or None
        All ``dim`` eigenvalues instead, at least one negative.

    Returns
    -------
    Landscape

    Raises
    ------
    ValueError
        If a parameter is out of range or not finite (the message names it).

    References
    ----------
    Y. Dauphin, R. Pascanu, C. Gulcehre, K. Cho, S. Ganguli, Y. Bengio, "Identifying and attacking the saddle point
    problem in high-dimensional non-convex optimization", NeurIPS 2014.
    """
    if spectrum is not None:
        eigenvalues = _finite_vector(spectrum, "spectrum")
        if dim is not None and dim != eigenvalues.size:
            raise ValueError(f"dim ({dim}) must equal the length of spectrum ({eigenvalues.size})")
        if eigenvalues.min() >= 0.0:
            raise ValueError("spectrum must contain a negative eigenvalue for a saddle")
        lo = float(eigenvalues.min())
        return _quadratic("saddle", eigenvalues, f"saddle, spectrum in [{lo:g}, {float(eigenvalues.max()):g}]")
    dim = check_positive_int(10 if dim is None else dim, "dim")
    negative = check_positive_int(negative, "negative")
    if negative > dim:
        raise ValueError(f"negative must be at most dim ({dim}), got {negative}")
    gamma = check_finite(gamma, "gamma", minimum=0.0, strict=True)
    eigenvalues = np.ones(dim)
    eigenvalues[:negative] = -gamma
    text = f"saddle, d={dim}, {negative} x (-{gamma:g}), {dim - negative} x (+1)"
    return _quadratic("saddle", eigenvalues, text)


def quadratic(spectrum: npt.ArrayLike = (1.0, 10.0), start: npt.ArrayLike | None = None) -> Landscape:
    """f = 1/2 sum_i lambda_i w_i^2 with the given spectrum (any signs).

    Parameters
    ----------
    spectrum : array_like
        The Hessian's eigenvalues (finite, any signs); their number is the dimension.
    start : array_like or None
        The trials' default start (0 when None).

    Returns
    -------
    Landscape

    Raises
    ------
    ValueError
        If a parameter is out of range or not finite (the message names it).
    """
    eigenvalues = _finite_vector(spectrum, "spectrum")
    minimum = np.zeros(eigenvalues.size) if eigenvalues.min() > 0 else None
    return _quadratic(
        "quadratic",
        eigenvalues,
        f"quadratic, spectrum {np.array2string(eigenvalues, precision=3)}",
        start=start,
        minimum=minimum,
    )


def local_maximum(dim: int = 2) -> Landscape:
    """f = -|w|^2 (every Hessian eigenvalue -2): escape in every direction.

    Parameters
    ----------
    dim : int
        The number of coordinates (positive).

    Returns
    -------
    Landscape

    Raises
    ------
    ValueError
        If a parameter is out of range or not finite (the message names it).
    """
    dim = check_positive_int(dim, "dim")
    landscape = _quadratic("local_maximum", np.full(dim, -2.0), f"-|w|^2, d={dim}")
    return landscape


def monkey_saddle() -> Landscape:
    """The degenerate monkey saddle f = x^3 - 3 x y^2 (zero gradient and zero Hessian at 0)."""
    zero = np.zeros(2)
    return Landscape(
        name="monkey_saddle",
        code=rules.MONKEY_SADDLE,
        dim=2,
        params=np.zeros(1),
        start=zero.copy(),
        center=zero,
        description="x^3 - 3 x y^2",
    )


def tanh_unit(scale: float = 1.0, target: float = -0.5, start: float = 4.0) -> Landscape:
    """A saturated tanh unit f(w) = 1/2 (tanh(a w) - y)^2, started at w0 where tanh' ~ 4 e^(-2 a w0).

    The gradient at the start is exponentially small in ``a w0``: a plateau that plain gradient descent crosses
    slowly (the lecture's "saturated units learn slowly").

    Parameters
    ----------
    scale : float
        The gain ``a``.
    target : float
        The target ``y``, in (-1, 1).
    start : float
        The start ``w0``.

    Returns
    -------
    Landscape

    Raises
    ------
    ValueError
        If a parameter is out of range or not finite (the message names it).
    """
    scale = check_finite(scale, "scale")
    target = check_finite(target, "target")
    if not -1.0 < target < 1.0:
        raise ValueError(f"target must lie in (-1, 1) (tanh's range), got {target!r}")
    start = check_finite(start, "start")
    w0 = np.array([start])
    minimum = np.array([math.atanh(target) / scale]) if scale != 0 else None
    return Landscape(
        name="tanh_unit",
        code=rules.TANH_UNIT,
        dim=1,
        params=np.array([scale, target]),
        start=w0,
        center=w0.copy(),
        minimum=minimum,
        description=f"1/2 (tanh({scale:g} w) - {target:g})^2, w0={start:g}",
    )


def deep_linear(depth: int = 2, strength: float = 1.0, u0: float = 1e-3) -> Landscape:
    """Saxe et al. (2013)'s deep linear chain f = 1/2 (s - prod_{i<D} w_i)^2 with a balanced start.

    Each of the ``depth`` weights starts at ``u0 ** (1/depth)``, so the initial mode strength (the product) is
    ``u0``. For depth 2 gradient flow reaches u_f after t = (1/(2 s lr)) ln(u_f (s - u0) / (u0 (s - u_f)))
    steps; deeper chains wait about 1/u0.

    Parameters
    ----------
    depth : int
        The number of weights ``D`` (the dimension).
    strength : float
        The target ``s`` (positive).
    u0 : float
        The initial mode strength (positive).

    Returns
    -------
    Landscape

    Raises
    ------
    ValueError
        If a parameter is out of range or not finite (the message names it).

    References
    ----------
    A. M. Saxe, J. L. McClelland, S. Ganguli, "Exact solutions to the nonlinear dynamics of learning in deep linear
    neural networks", arXiv:1312.6120 (2013).
    """
    depth = check_positive_int(depth, "depth")
    strength = check_finite(strength, "strength", minimum=0.0, strict=True)
    u0 = check_finite(u0, "u0", minimum=0.0, strict=True)
    w0 = np.full(depth, u0 ** (1.0 / depth))
    minimum = np.full(depth, strength ** (1.0 / depth))
    return Landscape(
        name="deep_linear",
        code=rules.DEEP_LINEAR,
        dim=depth,
        params=np.array([strength]),
        start=w0,
        center=w0.copy(),
        minimum=minimum,
        description=f"1/2 ({strength:g} - prod w)^2, depth {depth}, u0={u0:g}",
    )


def ravine(kappa: float = 100.0, start: npt.ArrayLike = (1.0, 1.0)) -> Landscape:
    """The ravine f = 1/2 (x^2 + kappa y^2): condition number kappa, minimum at 0 (Goh 2017).

    Parameters
    ----------
    kappa : float
        The condition number (positive).
    start : array_like of 2 floats
        The trials' default start.

    Returns
    -------
    Landscape

    Raises
    ------
    ValueError
        If a parameter is out of range or not finite (the message names it).

    References
    ----------
    G. Goh, "Why momentum really works", Distill (2017).
    """
    kappa = check_finite(kappa, "kappa", minimum=0.0, strict=True)
    w0 = _finite_vector(start, "start", 2)
    return Landscape(
        name="ravine",
        code=rules.QUADRATIC,
        dim=2,
        params=np.array([1.0, kappa]),
        start=w0,
        center=np.zeros(2),
        minimum=np.zeros(2),
        description=f"1/2 (x^2 + {kappa:g} y^2)",
    )


def rosenbrock(dim: int = 2, a: float = 1.0, b: float = 100.0) -> Landscape:
    """Rosenbrock's curved valley sum_i (a - w_i)^2 + b (w_{i+1} - w_i^2)^2, started at (-1.2, 1, 1, ...).

    Parameters
    ----------
    dim : int
        The number of coordinates, at least 2.
    a, b : float
        The valley's parameters (``b`` non-negative).

    Returns
    -------
    Landscape

    Raises
    ------
    ValueError
        If a parameter is out of range or not finite (the message names it).
    """
    dim = check_positive_int(dim, "dim")
    if dim < 2:
        raise ValueError(f"dim must be at least 2 for rosenbrock, got {dim}")
    a = check_finite(a, "a")
    b = check_finite(b, "b", minimum=0.0)
    w0 = np.ones(dim)
    w0[0] = -1.2
    minimum = np.full(dim, a)
    minimum[1:] = a * a if dim == 2 else minimum[1:]
    if dim > 2 and a != 1.0:
        minimum = None  # the chained minimum is (a, a^2, a^4, ...) only when a fixes the chain; keep it unstated
    return Landscape(
        name="rosenbrock",
        code=rules.ROSENBROCK,
        dim=dim,
        params=np.array([a, b]),
        start=w0,
        center=w0.copy(),
        minimum=minimum,
        description=f"Rosenbrock a={a:g} b={b:g}, d={dim}",
    )


def double_well(dim: int = 1, height: float = 1.0, tilt: float = 0.0, start: npt.ArrayLike | None = None) -> Landscape:
    """sum_i h (w_i^2 - 1)^2 + c w_i: minima near +-1 per coordinate; tilt c > 0 makes -1 the global one.

    Parameters
    ----------
    dim : int
        The number of coordinates.
    height : float
        The barrier scale ``h`` (positive).
    tilt : float
        The tilt ``c``.
    start : array_like or None
        The trials' default start (0, the barrier's top, when None).

    Returns
    -------
    Landscape

    Raises
    ------
    ValueError
        If a parameter is out of range or not finite (the message names it).
    """
    dim = check_positive_int(dim, "dim")
    height = check_finite(height, "height", minimum=0.0, strict=True)
    tilt = check_finite(tilt, "tilt")
    w0 = np.zeros(dim) if start is None else _finite_vector(start, "start", dim)
    return Landscape(
        name="double_well",
        code=rules.DOUBLE_WELL,
        dim=dim,
        params=np.array([height, tilt]),
        start=w0,
        center=np.zeros(dim),
        description=f"{height:g} (w^2 - 1)^2 + {tilt:g} w, d={dim}",
    )


def rastrigin(dim: int = 2, amplitude: float = 10.0, start: npt.ArrayLike | None = None) -> Landscape:
    """Rastrigin's A d + sum_i (w_i^2 - A cos 2 pi w_i): global minimum 0 at w = 0, local minima near integers.

    Parameters
    ----------
    dim : int
        The number of coordinates ``d``.
    amplitude : float
        ``A`` (non-negative).
    start : array_like or None
        The trials' default start (2.5 in every coordinate when None).

    Returns
    -------
    Landscape

    Raises
    ------
    ValueError
        If a parameter is out of range or not finite (the message names it).
    """
    dim = check_positive_int(dim, "dim")
    amplitude = check_finite(amplitude, "amplitude", minimum=0.0)
    w0 = np.full(dim, 2.5) if start is None else _finite_vector(start, "start", dim)
    return Landscape(
        name="rastrigin",
        code=rules.RASTRIGIN,
        dim=dim,
        params=np.array([amplitude]),
        start=w0,
        center=np.zeros(dim),
        minimum=np.zeros(dim),
        description=f"Rastrigin A={amplitude:g}, d={dim}",
    )


def reddi(C: float = 3.0, start: float = 0.0) -> Landscape:
    """Reddi, Kale & Kumar (2018)'s online loss on [-1, 1]: f_t(x) = C x when t mod 3 == 1, else -x (C > 2).

    The average loss (C - 2)/3 x is minimised at x = -1; with b1 = 0 and b2 = 1/(1 + C^2) Adam goes to +1 while
    AMSGrad finds -1. Iterates are projected onto [-1, 1] after every step; ``value(w, t=0)`` is the average.

    Parameters
    ----------
    C : float
        The large gradient, above 2.
    start : float
        The trials' default start.

    Returns
    -------
    Landscape

    Raises
    ------
    ValueError
        If a parameter is out of range or not finite (the message names it).

    References
    ----------
    S. J. Reddi, S. Kale, S. Kumar, "On the convergence of Adam and beyond", ICLR 2018.
    """
    big_c = check_finite(C, "C")
    if big_c <= 2.0:
        raise ValueError(f"C must be > 2 for the counterexample, got {C!r}")
    start = check_finite(start, "start")
    return Landscape(
        name="reddi",
        code=rules.REDDI,
        dim=1,
        params=np.array([big_c]),
        start=np.array([start]),
        center=np.array([start]),
        minimum=np.array([-1.0]),
        bounds=(-1.0, 1.0),
        online=True,
        description=f"Reddi et al. online loss, C={big_c:g}",
    )


#: name -> factory; every factory's keyword arguments are the landscape's parameters.
REGISTRY = {
    "saddle": saddle,
    "quadratic": quadratic,
    "local_maximum": local_maximum,
    "monkey_saddle": monkey_saddle,
    "tanh_unit": tanh_unit,
    "deep_linear": deep_linear,
    "ravine": ravine,
    "rosenbrock": rosenbrock,
    "double_well": double_well,
    "rastrigin": rastrigin,
    "reddi": reddi,
}
ALIASES = {"monkey": "monkey_saddle", "maximum": "local_maximum", "saxe": "deep_linear", "tanh": "tanh_unit"}
NAMES = tuple(REGISTRY)


def make(name: str | Landscape, **params: float | npt.ArrayLike | None) -> Landscape:
    """The landscape called ``name`` (see :data:`NAMES`) built with ``params``; ValueError for an unknown name.

    Parameters
    ----------
    name : str or Landscape
        A name of :data:`NAMES` or of :data:`ALIASES`; a :class:`Landscape` is returned as it is.
    **params
        The factory's keyword arguments.

    Returns
    -------
    Landscape

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the names), a parameter is unknown or out of range, or ``params``
        come with a Landscape instance.
    """
    if isinstance(name, Landscape):
        if params:
            raise ValueError("params cannot be given with a Landscape instance")
        return name
    key = ALIASES.get(name, name) if isinstance(name, str) else name
    if key not in REGISTRY:
        raise unknown_name_error("landscape", name, NAMES)
    try:
        return REGISTRY[key](**params)
    except TypeError as error:
        raise ValueError(f"bad parameters for landscape {key!r}: {error}") from None
