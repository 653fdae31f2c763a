"""testbed.theory's flat namespace: every function, class and constant of its submodules, and nothing they import."""

import types

import pytest

from testbed import theory
from testbed.theory import escape, free_power, signal, spectra


@pytest.mark.parametrize("name", ["np", "math", "stats", "optimize", "annotations", "check_finite", "Callable"])
def test_imports_of_the_submodules_are_not_theory(name):
    with pytest.raises(AttributeError, match=f"has no attribute {name!r}"):
        getattr(theory, name)


def test_every_name_of_the_namespace_resolves_to_what_its_submodule_defines():
    names = [name for name in dir(theory) if not name.startswith("_")]
    for name in names:
        value = getattr(theory, name)
        if name in theory.SUBMODULES:
            assert isinstance(value, types.ModuleType)
            continue
        if name == "SUBMODULES":  # the package's own
            continue
        assert not isinstance(value, types.ModuleType), name
        homes = [m for m in (signal, escape, spectra, free_power) if getattr(m, name, None) is value]
        assert homes, name
    # the README's examples and the tests' flat names are among them
    for name in ("critical_sigma_w2", "mean_field", "sgd_median_escape_time", "jacobian_moments", "HALF_NORMAL_MEDIAN"):
        assert name in names
