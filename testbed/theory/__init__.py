"""Theoretical predictions that every measurement of the testbed stands beside.

- :mod:`testbed.theory.signal`: signal propagation (linear-regime recursions, mean-field maps, depth scales,
  the order-to-chaos line, finite-width fluctuations).
- :mod:`testbed.theory.escape`: escape laws for saddles, plateaus and ravines.
- :mod:`testbed.theory.spectra`: Jacobian spectra (free-probability moments, the Fuss-Catalan law).

Every public name of each is reachable from here, e.g. ``testbed.theory.critical_sigma_w2``.
"""

import importlib

SUBMODULES = ("signal", "escape", "spectra")


def __getattr__(name):
    # Resolved lazily so that importing one half of the theory does not import (or require) the other.
    for submodule in SUBMODULES:
        module = importlib.import_module(f"{__name__}.{submodule}")
        if not name.startswith("_") and hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    names = set(globals())
    for submodule in SUBMODULES:
        module = importlib.import_module(f"{__name__}.{submodule}")
        names.update(n for n in dir(module) if not n.startswith("_"))
    return sorted(names)
