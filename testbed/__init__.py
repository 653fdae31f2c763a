"""testbed: a Numba-compiled research testbed for initialisation and optimisation of deep networks.

Submodules are imported on demand (``from testbed import init, nn, optim``), so that importing one does not
compile or import the others.
"""

__version__ = "0.1.0"
