"""Theoretical predictions that every measurement of the testbed stands beside.

- :mod:`testbed.theory.signal`: signal propagation (linear-regime recursions, mean-field maps, depth scales,
  the order-to-chaos line, finite-width fluctuations).
- :mod:`testbed.theory.escape`: escape laws for saddles, plateaus and ravines.
- :mod:`testbed.theory.spectra`: Jacobian spectra (free-probability moments and densities, the Fuss-Catalan law).
- :mod:`testbed.theory.free_power`: free multiplicative powers of a law on [0, inf) (density and atoms, by
  subordination), the orthogonal nets' spectra.

Every public name of each is reachable from here, e.g. ``testbed.theory.critical_sigma_w2``.
"""

import importlib as _importlib

SUBMODULES = ("signal", "escape", "spectra", "free_power")

#: Module-level values of these types are a submodule's constants (they carry no ``__module__`` of their own).
_CONSTANT_TYPES = (bool, int, float, complex, str, bytes, tuple, frozenset, dict)


def _public(module):
    """The names ``module`` defines: its functions, classes and constants, not what it imports (``np``, ``math``,
    the argument checks, ``annotations``), which are not theory."""
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (isinstance(value, _CONSTANT_TYPES) or getattr(value, "__module__", None) == module.__name__)
    }


def __getattr__(name):
    # Resolved lazily so that importing one half of the theory does not import (or require) the other. A submodule
    # by name imports that one alone: ``from testbed.theory import escape`` asks this first, and searching every
    # submodule for a public name ``escape`` would import SciPy's optimize and the rest for nothing.
    if name in SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    for submodule in SUBMODULES:
        public = _public(_importlib.import_module(f"{__name__}.{submodule}"))
        if name in public:
            return public[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    names = {name for name in globals() if name.startswith("__") or not name.startswith("_")}
    for submodule in SUBMODULES:
        names.update(_public(_importlib.import_module(f"{__name__}.{submodule}")))
    return sorted(names)
