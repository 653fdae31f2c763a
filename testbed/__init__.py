"""testbed: a Numba-compiled research testbed for initialisation and optimisation of deep networks.

Submodules are imported on demand (``from testbed import init, nn, optim``), so that importing one does not
compile or import the others.

Threads: importing the package sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already names a policy.
Numba's parallel kernels run on OpenMP, whose idle threads otherwise spin for a while after each parallel pass and
take the cores from the BLAS product that follows (on 2 cores ``propagate`` ran at 1.9x a NumPy chain of the same
products instead of 1.3x; ``benchmarks/bench_nn.py``). OpenMP reads the variable once, when Numba first starts its
threads, so this must happen before any parallel kernel runs; an explicit setting by the user wins. The variable
also reaches any OpenMP library the process starts later (PyTorch imported after this package waits passively
too, and its small steps slow by half): import such a library first to keep its own default.
"""

import os
from importlib import metadata as _metadata

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    # The version has one source, pyproject.toml's [project] version; installing the package (pip install -e .)
    # writes it into the distribution's metadata, which is what this reads (PyPA's single-sourcing recipe).
    __version__ = _metadata.version("testbed")
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
