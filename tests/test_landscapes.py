"""Landscapes: gradients and Hessians against finite differences, the compiled rules against the Python rules,
the geometry each escape scenario relies on, and the registry's errors."""

import math

import numpy as np
import pytest

from testbed import landscapes
from testbed.kernels.targets import for_cpu
from testbed.rules import landscapes as rules

#: Central-difference step and the tolerance it allows (truncation ~ h^2 |f'''|, rounding ~ eps |f| / h).
FD_STEP = 1e-5
FD_RTOL = 1e-6


def finite_difference_gradient(f, w, t):
    eye = np.eye(f.dim)
    return np.array(
        [(f.value(w + FD_STEP * eye[i], t) - f.value(w - FD_STEP * eye[i], t)) / (2 * FD_STEP) for i in range(f.dim)]
    )


def finite_difference_hessian(f, w, t):
    eye = np.eye(f.dim)
    return np.array(
        [
            (f.gradient(w + FD_STEP * eye[i], t) - f.gradient(w - FD_STEP * eye[i], t)) / (2 * FD_STEP)
            for i in range(f.dim)
        ]
    )


#: Every registered landscape at its defaults: a landscape added to the registry is checked here without an edit.
REGISTERED = [landscapes.make(name) for name in landscapes.NAMES]
#: Further configurations of the same rules (other spectra, depths, dimensions, parameters).
VARIANTS = [
    landscapes.saddle(dim=5, negative=2, gamma=0.5),
    landscapes.saddle(spectrum=[-3.0, 0.5, 2.0]),
    landscapes.quadratic([1.0, -2.0, 4.0]),
    landscapes.local_maximum(dim=3),
    landscapes.tanh_unit(scale=1.5, target=0.3, start=2.0),
    landscapes.deep_linear(depth=4, strength=2.0, u0=0.1),
    landscapes.ravine(kappa=50.0),
    landscapes.rosenbrock(dim=4),
    landscapes.double_well(dim=2, height=1.5, tilt=0.2),
    landscapes.rastrigin(dim=3),
    landscapes.reddi(C=4.0),
]
ALL = REGISTERED + VARIANTS


def test_every_rule_code_is_checked_through_a_registered_landscape():
    """Each code of testbed.rules.landscapes is used by a registered landscape, so the finite-difference checks
    below (which run over the registry) cover every rule."""
    assert sorted({f.code for f in REGISTERED}) == list(range(rules.N_CODES))
    # and the rules know no code beyond the table (they fall through to NaN)
    w = np.ones((1, 3))
    assert math.isnan(rules.value(rules.N_CODES, w, 0, 3, np.ones(3), 1))
    assert math.isnan(rules.gradient(rules.N_CODES, w, 0, 0, 3, np.ones(3), 1))
    assert math.isnan(rules.hessian(rules.N_CODES, w, 0, 0, 0, 3, np.ones(3), 1))


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.name)
@pytest.mark.parametrize("t", [1, 2])
def test_gradient_and_hessian_match_finite_differences(f, t, rng):
    w = f.start + rng.uniform(-0.3, 0.3, f.dim)
    g = f.gradient(w, t)
    np.testing.assert_allclose(g, finite_difference_gradient(f, w, t), rtol=FD_RTOL, atol=FD_RTOL * (1 + abs(g).max()))
    h = f.hessian(w, t)
    np.testing.assert_allclose(h, finite_difference_hessian(f, w, t), rtol=FD_RTOL, atol=FD_RTOL * (1 + abs(h).max()))
    np.testing.assert_allclose(h, h.T, rtol=1e-14)


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.name)
def test_a_hessian_is_declared_constant_exactly_when_it_is(f, rng):
    """rules.constant_hessian(code) lets the dense Newton kernel evaluate and decompose H once per trial: a declared
    landscape gives the same H, bit for bit, at points spread over [-2, 2]^d and at steps 1 to 3 (the online loss's
    period); every other one gives another H somewhere there, so a declaration cannot be missing either."""
    points = f.start + rng.uniform(-2.0, 2.0, (8, f.dim))
    hessians = np.array([f.hessian(w, t) for w in points for t in (1, 2, 3)])
    same = bool(np.all(hessians.view(np.uint64) == hessians[:1].view(np.uint64)))
    assert rules.constant_hessian(f.code) == same


def test_compiled_rules_equal_the_python_rules(rng):
    value_cpu = for_cpu(rules.value)
    gradient_cpu = for_cpu(rules.gradient)
    hessian_cpu = for_cpu(rules.hessian)
    for f in ALL:
        w = (f.start + rng.uniform(-0.3, 0.3, f.dim)).reshape(1, f.dim)
        assert value_cpu(f.code, w, 0, f.dim, f.params, 1) == rules.value(f.code, w, 0, f.dim, f.params, 1)
        for i in range(f.dim):
            assert gradient_cpu(f.code, w, 0, i, f.dim, f.params, 1) == rules.gradient(
                f.code, w, 0, i, f.dim, f.params, 1
            )
            assert hessian_cpu(f.code, w, 0, i, 0, f.dim, f.params, 1) == rules.hessian(
                f.code, w, 0, i, 0, f.dim, f.params, 1
            )


def test_saddle_spectrum_and_geometry():
    f = landscapes.saddle(dim=10, negative=1, gamma=2.0)
    np.testing.assert_array_equal(np.linalg.eigvalsh(f.hessian(f.start)), [-2.0] + [1.0] * 9)
    np.testing.assert_array_equal(f.gradient(f.start), np.zeros(10))
    assert f.negative_curvature == 2.0 and f.value(f.start) == 0.0
    np.testing.assert_array_equal(f.center, np.zeros(10))
    full = landscapes.saddle(spectrum=[1.0, -0.5, 3.0, -0.1])
    assert full.dim == 4 and full.negative_curvature == 0.5
    assert landscapes.local_maximum(dim=2).value([1.0, 1.0]) == -2.0


def test_plateaus_start_where_the_gradient_is_small():
    f = landscapes.deep_linear(depth=3, strength=1.0, u0=1e-3)
    assert math.isclose(np.prod(f.start), 1e-3, rel_tol=1e-12)
    assert np.abs(f.gradient(f.start)).max() < 1e-2
    unit = landscapes.tanh_unit(scale=1.0, target=-0.5, start=4.0)
    assert abs(unit.gradient(unit.start)[0]) < 4 * math.exp(-8) * 1.5
    np.testing.assert_allclose(unit.gradient(unit.minimum), [0.0], atol=1e-15)


def test_monkey_saddle_is_degenerate_and_minima_are_minima():
    m = landscapes.monkey_saddle()
    np.testing.assert_array_equal(m.hessian(m.start), np.zeros((2, 2)))
    for f in (
        landscapes.rosenbrock(dim=2),
        landscapes.rosenbrock(dim=5),
        landscapes.rastrigin(dim=3),
        landscapes.ravine(),
    ):
        np.testing.assert_allclose(f.gradient(f.minimum), np.zeros(f.dim), atol=1e-12)
        assert np.all(np.linalg.eigvalsh(f.hessian(f.minimum)) > 0)


def test_reddi_online_loss():
    f = landscapes.reddi(C=3.0)
    assert f.bounds == (-1.0, 1.0) and f.online
    assert [f.gradient([0.0], t)[0] for t in (1, 2, 3, 4)] == [3.0, -1.0, -1.0, 3.0]
    assert math.isclose(f.value([1.0]), (3.0 - 2.0) / 3.0)  # t = 0: the average over a period


def test_grid_values_for_contours():
    f = landscapes.saddle(dim=3)
    x = np.linspace(-1, 1, 5)
    y = np.linspace(-2, 2, 3)
    grid = f.grid_values(x, y)
    assert grid.shape == (3, 5)
    assert grid[0, 0] == f.value([x[0], y[0], 0.0])


def test_registry_and_errors():
    assert set(landscapes.NAMES) >= {
        "saddle",
        "monkey_saddle",
        "local_maximum",
        "tanh_unit",
        "deep_linear",
        "ravine",
        "rosenbrock",
        "double_well",
        "rastrigin",
        "reddi",
    }
    assert landscapes.make("saddle", dim=3).dim == 3
    assert landscapes.make("monkey").name == "monkey_saddle"
    with pytest.raises(ValueError, match="unknown landscape 'sadle'.*did you mean 'saddle'"):
        landscapes.make("sadle")
    with pytest.raises(ValueError, match="bad parameters for landscape 'saddle'"):
        landscapes.make("saddle", width=3)
    with pytest.raises(ValueError, match="negative"):
        landscapes.saddle(dim=3, negative=4)
    with pytest.raises(ValueError, match="gamma"):
        landscapes.saddle(gamma=-1.0)
    with pytest.raises(ValueError, match="spectrum"):
        landscapes.saddle(spectrum=[1.0, 2.0])
    with pytest.raises(ValueError, match="C must be > 2"):
        landscapes.reddi(C=1.5)
    with pytest.raises(ValueError, match="w must have last dimension 3"):
        landscapes.saddle(dim=3).value([0.0, 1.0])
