"""testbed.theory.free_power: the transforms of a law on [0, inf), and free powers against closed forms."""

import math

import numpy as np
import pytest
from scipy import integrate

from testbed.theory import free_power as fp

#: A law with an atom at 0, an atom inside and two pieces.
MIXED = fp.PositiveLaw([0.0, 0.7], [0.1, 0.2], [0.2, 0.5], [0.5, 0.9], [0.3, 0.4])


def _psi_by_quadrature(u):
    """psi(u) = E[u t / (1 - u t)] of MIXED by scipy's adaptive quadrature, real and imaginary parts apart."""

    def piece(low, high, mass):
        parts = [
            integrate.quad(
                lambda t, k=k: (u * t / (1 - u * t)).real if k == 0 else (u * t / (1 - u * t)).imag,
                low,
                high,
                epsabs=0.0,
                epsrel=1e-12,
                limit=400,
            )[0]
            for k in (0, 1)
        ]
        return mass * complex(*parts) / (high - low)

    return 0.2 * 0.7 * u / (1 - 0.7 * u) + piece(0.2, 0.5, 0.3) + piece(0.5, 0.9, 0.4)


@pytest.mark.parametrize("u", [0.3 + 0.1j, 1.5 + 0.05j, 1e4 + 1j, 1e-4 + 1e-5j])
def test_psi_matches_quadrature_and_its_derivative_a_difference(u):
    psi, one_plus, dpsi = MIXED.psi(np.array([u]))
    assert abs(psi[0] - _psi_by_quadrature(u)) <= 1e-10 * abs(psi[0])
    assert one_plus[0] == pytest.approx(1.0 + psi[0], rel=1e-12, abs=1e-12)
    h = 1e-5 * abs(u)
    central = (MIXED.psi(np.array([u + h]))[0] - MIXED.psi(np.array([u - h]))[0]) / (2 * h)
    # the derivative only steers Newton's method: it loses digits as |u| -> 0 (1e-7 at |u| = 1e-4)
    assert abs(dpsi[0] - central[0]) <= 1e-6 * abs(dpsi[0])


def _free_projections_density(p, x):
    """The continuous part of the law of P Q P for free projections of trace p (Voiculescu, Dykema & Nica 1992,
    the free product of two projections): ``sqrt(x (4 p (1 - p) - x)) / (2 pi x (1 - x))`` on (0, 4 p (1 - p))."""
    top = 4 * p * (1 - p)
    return np.sqrt(np.clip(x * (top - x), 0, None)) / (2 * math.pi * x * (1 - x))


@pytest.mark.parametrize("p", [0.5, 0.8])
def test_square_of_a_projection_is_the_free_projections_law(p):
    law = fp.PositiveLaw([0.0, 1.0], [1 - p, p])
    x = np.linspace(0.001, 0.999, 301) * 4 * p * (1 - p)
    power = fp.free_power_density(law, 2, x)
    expected = _free_projections_density(p, x)
    np.testing.assert_allclose(power.density, expected, rtol=1e-6)
    assert power.zero_mass == pytest.approx(1 - p)
    assert power.atom_masses.tolist() == ([] if p == 0.5 else [pytest.approx(2 * p - 1)])


#: Points per e-fold of the log grids on which densities are integrated (trapezoids in log x).
POINTS_PER_E = 60


def _integrals(power, grid):
    f, u = power.density * grid, np.log(grid)
    return [float(np.sum(0.5 * (g[1:] + g[:-1]) * np.diff(u))) for g in (f, f * grid, f * grid * grid)]


@pytest.mark.parametrize("power", [3, 6, 40])
def test_power_of_a_projection_has_its_atoms_and_free_moments(power):
    # m_1 = p^L, and the relative variance adds up over free factors: m_2 = p^(2L) (1 + L (1/p - 1))
    p = 0.9
    law = fp.PositiveLaw([0.0, 1.0], [1 - p, p])
    zero, atoms, masses = fp.free_power_atoms(law, power)
    assert zero == pytest.approx(1 - p)
    top = max(0.0, 1 - power * (1 - p))
    assert masses.tolist() == ([pytest.approx(top)] if top > 0 else [])
    grid = np.geomspace(1e-14, 1 - 1e-5, int(33 * POINTS_PER_E))
    result = fp.free_power_density(law, power, grid)
    mass, first, second = _integrals(result, grid)
    first += masses.sum()
    second += masses.sum()
    assert first == pytest.approx(p**power, rel=1e-3)
    assert second == pytest.approx(p ** (2 * power) * (1 + power * (1 / p - 1)), rel=1e-3)
    assert np.all(np.isnan(fp.free_power_density(law, power, [1.0 - 1e-9]).density)) == (top > 0)
    # the mass below the grid is that of x < 1e-14, which grows with L (products of many projections)
    assert 0.0 < 1.0 - zero - masses.sum() - mass < (1e-3 if power < 10 else 0.1)  # 0.086 at L = 40


def test_power_one_is_the_law_and_a_piecewise_law_keeps_its_moments():
    x = np.array([0.1, 0.3, 0.6, 0.8, 0.95])
    one = fp.free_power_density(MIXED, 1, x)
    np.testing.assert_allclose(one.density, [0.0, 1.0, 1.0, 1.0, 0.0])
    assert one.zero_mass == pytest.approx(0.1) and one.atom_masses.tolist() == [pytest.approx(0.2)]
    # the atom at 0 piles the continuous part up near 0 (like a product of projections): 7e-4 of it below 1e-12
    grid = np.geomspace(1e-12, 1.0, int(28 * POINTS_PER_E))
    result = fp.free_power_density(MIXED, 4, grid)
    mass, first, _ = _integrals(result, grid)
    assert result.atom_masses.size == 0 and result.zero_mass == pytest.approx(0.1)
    assert mass == pytest.approx(0.9, abs=2e-3)
    assert first == pytest.approx(MIXED.mean**4, rel=1e-3)


def test_pushforward_law_folds_an_even_map_and_keeps_plateaus_as_atoms():
    law = fp.pushforward_law(lambda h: 1.0 / np.cosh(h) ** 4, 0.5, 40, grading=3.0)
    assert law.atoms.size == 0 and law.piece_masses.size == 20
    assert law.piece_masses.sum() == pytest.approx(1.0)
    elu = fp.pushforward_law(lambda h: np.where(h > 0, 1.0, np.exp(2 * np.minimum(h, 0))), 1.0, 40)
    assert elu.atoms.tolist() == [1.0] and elu.atom_masses[0] == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: fp.PositiveLaw([1.0], [0.5]), "add up to 1"),
        (lambda: fp.PositiveLaw([-1.0], [1.0]), "atoms"),
        (lambda: fp.PositiveLaw([], [], [0.5], [0.5], [1.0]), "piece_lows < piece_highs"),
        (lambda: fp.PositiveLaw([1.0], [0.5, 0.5]), "same length"),
        (lambda: fp.free_power_density(MIXED, 0, [1.0]), "power"),
        (lambda: fp.free_power_density(MIXED, 2, [0.0]), "x must"),
    ],
)
def test_bad_input_is_a_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
