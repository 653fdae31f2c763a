"""testbed: a Numba-compiled research testbed for initialisation and optimisation of deep networks.

Submodules are imported on demand (``from testbed import init, nn, optim``), so that importing one does not
compile or import the others.

Threads: importing the package sets OpenMP's idle threads to spin briefly, then sleep: ``OMP_WAIT_POLICY=PASSIVE``
and ``GOMP_SPINCOUNT=30000`` (GNU OpenMP's spin iterations, about 0.5 ms on the 2-core Xeon of
``benchmarks/RESULTS.md``), unless the environment already names a policy or a spin count. Numba's parallel kernels
run on OpenMP. Left to spin for its default 3-5 ms after each parallel pass, an idle thread takes the core from the
BLAS product that follows (on 2 cores ``propagate`` ran at 1.9x a NumPy chain of the same products instead of 1.3x;
``benchmarks/bench_nn.py``). Put straight to sleep, it makes a virtual machine halt its core between the parallel
passes of one training step, and waking a halted core after the machine idled takes long: a small step ran at 6-8 ms
for its first 6-8 steps after a 0.2 s pause, against 3.4-4 ms with the short spin (``bench_train.py``, eleventh
session). Half a millisecond covers the gaps inside a step and between steps, and costs a BLAS product that follows
a parallel pass at most that much. OpenMP reads both variables once, when Numba first starts its threads, so this
must happen before any parallel kernel runs; an explicit setting by the user wins. The variables also reach any
OpenMP library the process starts later (PyTorch imported after this package spins for 0.5 ms, not its default
3 ms): import such a library first to keep its own default.
"""

import os
from importlib import metadata as _metadata

#: GNU OpenMP's spin iterations before an idle thread sleeps (``GOMP_SPINCOUNT``), set unless the user chose a policy
#: or a count: about 0.5 ms here (16-17 ns an iteration; benchmarks/RESULTS.md, eleventh session).
SPIN_COUNT = 30_000

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    # The version has one source, pyproject.toml's [project] version; installing the package (pip install -e .)
    # writes it into the distribution's metadata, which is what this reads (PyPA's single-sourcing recipe).
    __version__ = _metadata.version("testbed")
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
