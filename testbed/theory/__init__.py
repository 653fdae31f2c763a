"""Theoretical predictions that every measurement of the testbed stands beside.

- :mod:`testbed.theory.signal`: signal propagation (linear-regime recursions, mean-field maps, depth scales,
  the order-to-chaos line, finite-width fluctuations).
- :mod:`testbed.theory.escape`: escape laws for saddles, plateaus and ravines.

The names of both are re-exported here, e.g. ``testbed.theory.critical_sigma_w2``.
"""
