"""Test-suite set-up: the CUDA simulator, a private Numba cache and an awkward CUDA block size.

``NUMBA_ENABLE_CUDASIM=1`` must be set before numba is imported, so it is set here, at the top of the first file
pytest loads. Every CUDA kernel then runs in Numba's simulator; ``tests/test_ptx.py`` compiles the same kernels
to PTX in a subprocess without the simulator.
"""

import atexit
import os
import shutil
import tempfile

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
# A private cache, removed at exit: the suite compiles every kernel from the checkout's sources (as CI does) and
# leaves no cache behind. (testbed.kernels.cache keeps a shared cache sound too; tests/test_kernel_cache.py.)
if "NUMBA_CACHE_DIR" not in os.environ:
    _private_cache = tempfile.mkdtemp(prefix="testbed-numba-cache-")
    os.environ["NUMBA_CACHE_DIR"] = _private_cache
    atexit.register(shutil.rmtree, _private_cache, ignore_errors=True)
# No OpenMP spin in the suite: its pytest-xdist workers (one per core) share the cores, and an idle Numba thread
# spinning in one worker for the library's 0.5 ms (testbed.SPIN_COUNT) takes the core from the other (the whole
# suite took 6 min 1 s that way against 4 min 54 s, eleventh session). Results do not depend on the spin;
# tests/test_threads.py checks the library's own default in fresh interpreters.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from testbed.kernels.numba_private import pin_simulator_launches_to_one_core  # noqa: E402

#: Threads per CUDA block in the tests: not a power of two, so several blocks and a partial last block run.
AWKWARD_THREADS_PER_BLOCK = 10

# The simulator runs a block's threads as Python threads: on one core they do not fight for the GIL across cores.
pin_simulator_launches_to_one_core()


@pytest.fixture(autouse=True)
def awkward_block_size(monkeypatch):
    from testbed import config

    monkeypatch.setattr(config, "THREADS_PER_BLOCK", AWKWARD_THREADS_PER_BLOCK)


@pytest.fixture
def rng():
    """A seeded NumPy generator for test inputs (the testbed's own draws come from Philox)."""
    return np.random.default_rng(20261201)


# tests/mutation/run.py is the mutation check, run by hand (it takes a while), never by the default test run.
collect_ignore = ["mutation"]


@pytest.fixture(scope="module")
def one_thread():
    """Numba's parallel kernels on one thread for a test file's tiny runs: one thread avoids their start-up cost
    (results do not depend on the thread count)."""
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(previous)
