"""Free multiplicative powers of a law on [0, inf): the density and the atoms of nu^(⊠L), by subordination.

For the Jacobian of a net with orthogonal weights the squared singular values follow ``sigma_w^(2L) nu^(⊠L)``,
nu the law of ``phi'(h)^2`` (:func:`testbed.theory.spectra.jacobian_density`). This module computes such powers
for any law nu on [0, inf) given as atoms plus a piecewise-uniform part (:class:`PositiveLaw`).

**Transforms** (Voiculescu 1987; Bercovici & Voiculescu 1993, "Free convolution of measures with unbounded
support"). For a law mu on [0, inf) and z off [0, inf)'s reciprocal,

    psi_mu(z) = int z t / (1 - z t) dmu(t),    eta_mu(z) = psi_mu(z) / (1 + psi_mu(z)),

and ``Sigma_mu(w) = eta_mu^-1(w) / w``. Free multiplicative convolution multiplies it, ``Sigma_(mu ⊠ nu) =
Sigma_mu Sigma_nu`` (it is the S-transform in another variable: ``S(z) = Sigma(z / (1 + z))``). The resolvent
``G(omega) = int dmu(t) / (omega - t)`` is ``z (1 + psi_mu(z))`` at ``z = 1 / omega``, so the density of mu is
``rho(x) = Im G(x - i0) / pi = Im[z (1 + psi_mu(z))] / pi`` at ``z = e^(i theta) / x``, theta -> 0+.

**Subordination for a power** (Belinschi & Bercovici 2005, "Partially defined semigroups relative to
multiplicative free convolution", IMRN 2005(2); 2007, "A new approach to subordination results in free
probability", J. Anal. Math. 101). Let ``w = eta_(nu^L)(z)`` and ``u = eta_nu^-1(w)``, so that ``eta_(nu^L)(z) =
eta_nu(u)``: u = omega(z) is the subordination function. ``Sigma_(nu^L) = Sigma_nu^L`` reads ``z = w (u / w)^L``,

    u^L = z eta_nu(u)^(L - 1),       u = F_z(u) := exp(Log z / L + (1 - 1/L) Log eta_nu(u)).        (*)

eta_nu maps the upper half-plane C+ into itself (``Im eta = Im psi / |1 + psi|^2`` and ``Im psi > 0`` there), so
with principal logarithms ``arg F_z(u)`` is a convex combination of ``arg z`` and ``arg eta_nu(u)``, both in
[0, pi): F_z maps C+ into C+ and, its image lying in the sector ``arg > arg(z) / L`` resp. ``arg < (1 - 1/L) pi``,
it is not an automorphism of C+. By the Schwarz-Pick lemma it has at most one fixed point in C+, and by the
Denjoy-Wolff theorem its iterates converge to it (the argument of Belinschi & Bercovici 2007). Hence **any** root
u in C+ of (*) with the principal branches is omega(z): there is no wrong root to follow, which is what a Newton
path along lambda on the S-transform equation (the older solver, kept for Gaussian weights) can do.

The solution: at ``z = e^(i theta_0) / x`` with theta_0 = SUBORDINATION_THETA0 the iteration of F_z converges
fast (SUBORDINATION_FIXED_POINT_STEPS steps from the small-z form ``u ~ z m_1^(L-1)``, more where Newton's method
does not take over yet); Newton's method on ``L v - Log z - (L - 1) Log eta_nu(e^v) = 0`` in ``v = Log u`` (kept in
the strip 0 < Im v < pi) then follows theta down to SUBORDINATION_THETA by factors SUBORDINATION_THETA_RATIO,
every x at once; a step that fails is split in two (SUBORDINATION_THETA_SPLITS times at most). Since
``eta_(nu^L)(z) = eta_nu(u)``, ``psi_(nu^L)(z) = psi_nu(u)``, and the continuous density is
``Im[z (1 + psi_nu(u) - nu^L({0}) - sum_a c_a / (1 - a z))] / pi``: the atoms' terms of the resolvent (mass c_a
at a > 0) are taken out exactly, so that neither the atom at 0 nor one at the top leaks a Lorentzian of width
theta into the density.

**Atoms** (Belinschi 2003, "The atoms of the free multiplicative convolution of two probability distributions",
Integral Equations Operator Theory 46): for laws mu_1, mu_2 on [0, inf), ``(mu_1 ⊠ mu_2)({0}) = max(mu_1({0}),
mu_2({0}))``, and mu_1 ⊠ mu_2 has an atom at ``ab > 0`` exactly when ``mu_1({a}) + mu_2({b}) > 1``, of mass
``mu_1({a}) + mu_2({b}) - 1``. By induction on L,

    nu^L({0}) = nu({0}),     nu^L({a^L}) = max(0, L nu({a}) - (L - 1))  for a > 0,

(``(L - 1) nu({a}) - (L - 2) + nu({a}) - 1``; any other pair sums to at most 1 since ``nu({b}) <= 1 - nu({a})``),
and no other atoms: for L >= 2 at most one a > 0 has ``nu({a}) > 1 - 1/L``. For matrices this is linear algebra:
with D_l^2 projections of rank p n in generic position, ``D_L Q_L ... D_1 Q_1`` has rank ``min_l p n`` (the kernel
is the largest of the factors': mass 1 - p at 0), and the vectors it keeps at norm 1 form the intersection of L
subspaces of codimension (1 - p) n, of dimension at least ``n (1 - L (1 - p))``: the atom at the top.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import special

from ..validation import check_positive_int

#: The relative imaginary part theta of the spectral variable, z = e^(i theta) / x, at which the density is
#: reported: the limit from the upper half-plane, smoothed by a relative width of 1e-9 (that of the older solver).
SUBORDINATION_THETA = 1e-9
#: The first stage of the continuation in theta, where SUBORDINATION_FIXED_POINT_STEPS iterations of the
#: subordination map (*) start Newton's method.
SUBORDINATION_THETA0 = 1.0
SUBORDINATION_FIXED_POINT_STEPS = 8
#: theta is divided by this from one stage of the continuation to the next.
SUBORDINATION_THETA_RATIO = 1000.0
#: A stage whose Newton's method fails for some x is split in two (geometric middle), at most this often in a row.
SUBORDINATION_THETA_SPLITS = 16
#: Newton: iterations per stage, tolerance on the step of log u, and the longest step of log u taken at once.
SUBORDINATION_NEWTON_STEPS = 40
SUBORDINATION_NEWTON_TOLERANCE = 1e-12
SUBORDINATION_LONGEST_STEP = 0.5
#: A residual of the logarithmic equation this small is accepted as a root even when the step has not reached
#: SUBORDINATION_NEWTON_TOLERANCE: far from the spectrum (|u| ~ 1e8) the digits of 1 + psi limit the residual to ~1e-10.
SUBORDINATION_NEWTON_RESIDUAL = 1e-9
#: Within this relative distance of an atom the continuous density is not resolved (NaN): the atom's pole,
#: ~1 / (relative distance) in psi, leaves too few digits for it (measured: 40 instead of 0 at 1e-9 from the atom
#: of a power of a projection, exact 0 at 1e-7).
SUBORDINATION_ATOM_GUARD = 1e-6
#: The most iterations of the fixed-point map at theta_0 (Newton is tried after every SUBORDINATION_FIXED_POINT_STEPS).
SUBORDINATION_FIXED_POINT_LIMIT = 4000


@dataclasses.dataclass(frozen=True)
class PositiveLaw:
    """A probability law on [0, inf): atoms plus pieces of uniform density.

    ``atoms``, ``atom_masses``: locations (>= 0) and masses. ``piece_lows``, ``piece_highs``, ``piece_masses``:
    piece k spreads its mass uniformly over [piece_lows[k], piece_highs[k]] (low < high). Masses are >= 0 and add
    up to 1.
    """

    atoms: np.ndarray
    atom_masses: np.ndarray
    piece_lows: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    piece_highs: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    piece_masses: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    def __post_init__(self):
        for name in ("atoms", "atom_masses", "piece_lows", "piece_highs", "piece_masses"):
            value = np.atleast_1d(np.asarray(getattr(self, name), dtype=np.float64))
            if value.ndim != 1 or not np.all(np.isfinite(value)) or np.any(value < 0.0):
                raise ValueError(f"{name} must be a flat array of finite values >= 0")
            object.__setattr__(self, name, value)
        if self.atoms.size != self.atom_masses.size:
            raise ValueError("atoms and atom_masses must have the same length")
        if not self.piece_lows.size == self.piece_highs.size == self.piece_masses.size:
            raise ValueError("piece_lows, piece_highs and piece_masses must have the same length")
        if np.any(self.piece_highs <= self.piece_lows):
            raise ValueError("every piece must have piece_lows < piece_highs (a piece of width 0 is an atom)")
        total = self.atom_masses.sum() + self.piece_masses.sum()
        if abs(total - 1.0) > 1e-12:
            raise ValueError(f"the masses must add up to 1, got {total!r}")

    @property
    def zero_mass(self):
        """nu({0})."""
        return float(self.atom_masses[self.atoms == 0.0].sum())

    @property
    def mean(self):
        """int t dnu(t)."""
        middles = 0.5 * (self.piece_lows + self.piece_highs)
        return float(np.dot(self.atoms, self.atom_masses) + np.dot(middles, self.piece_masses))

    def psi(self, u):
        """``(psi(u), 1 + psi(u), psi'(u))`` at complex ``u`` (a flat array) off the reciprocal of the support.

        ``1 + psi(u) = int dnu(t) / (1 - u t)`` is summed on its own: psi -> -1 as |u| grows, where 1 + psi from
        psi would lose its digits. An atom of mass c at a: ``c / (1 - a u)``. A piece of mass p on [a, b]:
        ``p / (u (b - a)) log((1 - a u) / (1 - b u)) = p R log1p(y) / y`` with ``R = 1 / (1 - b u)`` and
        ``y = (b - a) u R`` (log1p keeps the digits of a narrow piece); its derivative in u is
        ``p R / u (R / (1 + y) - log1p(y) / y)``.
        """
        u = np.asarray(u, dtype=np.complex128)
        keep = self.atoms > 0.0
        a, c = self.atoms[keep], self.atom_masses[keep]
        ua = u[:, None] * a
        r = 1.0 / (1.0 - ua)
        one_plus = self.zero_mass + np.einsum("ij,j->i", r, c)
        dpsi = np.einsum("ij,j->i", r * r, a * c)
        if self.piece_masses.size:
            U = u[:, None]
            R = 1.0 / (1.0 - U * self.piece_highs)
            y = U * (self.piece_highs - self.piece_lows) * R
            # log1p(y) from its modulus and argument in real arithmetic (NumPy's complex log is ten times slower)
            log1p = 0.5 * np.log1p(y.real * (2.0 + y.real) + y.imag * y.imag) + 1j * np.arctan2(y.imag, 1.0 + y.real)
            ratio = log1p / y
            one_plus = one_plus + np.einsum("ij,j->i", R * ratio, self.piece_masses)
            dpsi = dpsi + np.einsum("ij,j->i", R * (R / (1.0 + y) - ratio), self.piece_masses) / u
        return one_plus - 1.0, one_plus, dpsi

    def density(self, x):
        """The density of the pieces at ``x`` (atoms excluded)."""
        x = np.asarray(x, dtype=np.float64)
        out = np.zeros(x.shape)
        for low, high, p in zip(self.piece_lows, self.piece_highs, self.piece_masses):
            out += np.where((x >= low) & (x < high), p / (high - low), 0.0)
        return out


def pushforward_law(g, sigma, panels, z_tail=10.0, grading=0.0):
    """The law of ``g(h)``, h ~ N(0, sigma^2), as a :class:`PositiveLaw`: ``panels`` equal panels in h over
    ``|h| <= z_tail sigma`` (the tails beyond are added to the outermost panels), each a uniform piece between g at
    its ends, or an atom where g takes the same value at both ends (a plateau of phi', such as ReLU's h > 0). The
    piece's mass is the panel's Gaussian measure, exact; the law within a panel is made uniform in g, which moves
    mass by less than the panel's width in g. An even g (``g(-h) == g(h)`` at every edge) is folded onto h >= 0. A
    jump of g must lie on an edge (h = 0 for an even number of panels).
    """
    panels = check_positive_int(panels, "panels")
    t = np.linspace(-1.0, 1.0, panels + 1)
    t = 0.5 * (t - t[::-1])  # exactly odd, so that an even g is seen to be even
    z = z_tail * np.sinh(grading * t) / math.sinh(grading) if grading > 0.0 else z_tail * t
    mass = np.diff(special.ndtr(z))
    mass[0] += special.ndtr(-z_tail)
    mass[-1] += special.ndtr(-z_tail)
    values = np.asarray(g(sigma * z), dtype=np.float64)
    if panels % 2 == 0 and np.array_equal(values, values[::-1]):
        half = panels // 2
        values, mass = values[half:], mass[half:] + mass[:half][::-1]
    low, high = np.minimum(values[:-1], values[1:]), np.maximum(values[:-1], values[1:])
    flat = low == high
    atoms, where = np.unique(low[flat], return_inverse=True)
    atom_masses = np.bincount(where, weights=mass[flat], minlength=atoms.size)
    total = atom_masses.sum() + mass[~flat].sum()
    return PositiveLaw(atoms, atom_masses / total, low[~flat], high[~flat], mass[~flat] / total)


# ----------------------------------------------------------------------------------------------------------------
# the power


@dataclasses.dataclass
class FreePower:
    """nu^(⊠L) at the points ``x``: ``density`` of its continuous part; ``zero_mass``, the atom at 0;
    ``atoms`` and ``atom_masses``, its atoms at x > 0 (for L >= 2 at most one, at ``top^L``)."""

    x: np.ndarray
    density: np.ndarray
    zero_mass: float
    atoms: np.ndarray
    atom_masses: np.ndarray

    @property
    def continuous_mass(self):
        return 1.0 - self.zero_mass - float(self.atom_masses.sum())


def free_power_atoms(law, power):
    """``(zero_mass, atoms, masses)`` of nu^(⊠L): ``nu({0})`` and ``a^L`` with mass ``L nu({a}) - (L - 1)`` where
    positive (Belinschi 2003; see the module docstring)."""
    power = check_positive_int(power, "power")
    keep = law.atoms > 0.0
    mass = power * law.atom_masses[keep] - (power - 1)
    present = mass > 0.0
    return law.zero_mass, law.atoms[keep][present] ** power, mass[present]


def free_power_density(law, power, x, *, theta=SUBORDINATION_THETA):
    """nu^(⊠L) at the points ``x > 0`` (any shape): a :class:`FreePower`, the density from the subordination
    equation (*) of the module docstring, solved at ``z = e^(i theta) / x``."""
    power = check_positive_int(power, "power")
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)) or np.any(x <= 0.0):
        raise ValueError("x must hold finite positive points (the atom at 0 is reported as zero_mass)")
    zero_mass, atoms, atom_masses = free_power_atoms(law, power)
    out = FreePower(x=x, density=np.zeros(x.shape), zero_mass=zero_mass, atoms=atoms, atom_masses=atom_masses)
    if out.continuous_mass <= 1e-15 or x.size == 0:
        return out
    if power == 1:
        out.density = law.density(x)
        return out
    flat = x.ravel()
    solver = _Subordination(law, power)
    u = solver.solve(np.log(flat), theta)
    z = np.exp(1j * theta) / flat
    # eta_(nu^L)(z) = eta_nu(u) makes psi_(nu^L)(z) = psi_nu(u): 1 + psi from its own sums (accurate where
    # psi -> -1), less the atoms' poles, exactly
    _, resolvent, _ = law.psi(u)
    resolvent = resolvent - zero_mass
    for a, c in zip(atoms, atom_masses):
        resolvent = resolvent - c / (1.0 - a * z)
    density = np.maximum(np.imag(z * resolvent) / math.pi, 0.0)  # rounding below 0 where the density vanishes
    for a in atoms:  # the pole's digits swamp the density next to an atom
        density[np.abs(flat - a) < SUBORDINATION_ATOM_GUARD * a] = np.nan
    out.density = density.reshape(x.shape)
    return out


class _Subordination:
    """Newton's method on ``f(v) = L v - Log z - (L - 1) Log eta(e^v)`` (v = Log u, 0 < Im v < pi), continued in
    theta from SUBORDINATION_THETA0 (see the module docstring)."""

    def __init__(self, law, power):
        self.law, self.power = law, power
        self.evaluations = 0

    def _log_eta(self, v):
        psi, one_plus, dpsi = self.law.psi(np.exp(v))
        self.evaluations += v.size
        return np.log(psi / one_plus), psi, one_plus, dpsi

    def solve(self, log_x, theta):
        L = self.power
        theta0 = max(SUBORDINATION_THETA0, theta)
        log_z = -log_x + 1j * theta0
        v = log_z + (L - 1) * math.log(self.law.mean)  # u ~ z m_1^(L-1) for small z
        active = np.arange(v.size)
        for _ in range(SUBORDINATION_FIXED_POINT_LIMIT // SUBORDINATION_FIXED_POINT_STEPS):
            w = v[active]
            for _ in range(SUBORDINATION_FIXED_POINT_STEPS):  # Denjoy-Wolff: the iterates converge to the fixed point
                log_eta = self._log_eta(w)[0]
                new = log_z[active] / L + (1.0 - 1.0 / L) * log_eta
                w = new
            v[active] = w
            polished, ok = self._newton(w, log_z[active])
            v[active[ok]] = polished[ok]
            active = active[~ok]
            if active.size == 0:
                break
        else:
            raise ArithmeticError(
                "free multiplicative power: the fixed-point iteration did not settle at x = "
                f"{np.exp(log_x[active][:3])}"
            )
        here = theta0
        while here > theta:
            there = max(here / SUBORDINATION_THETA_RATIO, theta)
            v = self._advance(v, log_x, here, there, 0)
            here = there
        return np.exp(v)

    def _advance(self, v, log_x, start, end, depth):
        """v at theta = ``end`` from v at ``start``; the x where Newton fails go through the middle."""
        new, ok = self._newton(v, -log_x + 1j * end)
        if np.all(ok):
            return new
        if depth >= SUBORDINATION_THETA_SPLITS:
            bad = np.exp(log_x[~ok])
            raise ArithmeticError(
                f"free multiplicative power: Newton's method did not converge at x = {bad[:3]} (theta {end:.3g})"
            )
        bad = ~ok
        middle = math.sqrt(start * end)
        half = self._advance(v[bad], log_x[bad], start, middle, depth + 1)
        new[bad] = self._advance(half, log_x[bad], middle, end, depth + 1)
        return new

    def _newton(self, v, log_z):
        L = self.power
        v = v.copy()
        active = np.arange(v.size)
        ok = np.zeros(v.size, dtype=bool)
        for _ in range(SUBORDINATION_NEWTON_STEPS):
            if active.size == 0:
                break
            w = v[active]
            log_eta, psi, one_plus, dpsi = self._log_eta(w)
            f = L * w - log_z[active] - (L - 1) * log_eta
            df = L - (L - 1) * np.exp(w) * dpsi / (psi * one_plus)
            step = f / df
            # converged, or at the level of rounding (a residual that stopped shrinking for the digits of psi)
            done = (np.abs(step) < SUBORDINATION_NEWTON_TOLERANCE) | (np.abs(f) < SUBORDINATION_NEWTON_RESIDUAL)
            size = np.abs(step)
            step = np.where(
                size > SUBORDINATION_LONGEST_STEP, step * (SUBORDINATION_LONGEST_STEP / np.maximum(size, 1e-300)), step
            )
            new = w - step
            for _ in range(60):  # stay in the strip 0 < Im v < pi (u in C+)
                outside = (new.imag <= 0.0) | (new.imag >= math.pi)
                if not np.any(outside):
                    break
                step = np.where(outside, 0.5 * step, step)
                new = w - step
            v[active] = new
            ok[active[done]] = True
            active = active[~done]
        return v, ok
