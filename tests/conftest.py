"""Test-suite set-up: the CUDA simulator, a private Numba cache and an awkward CUDA block size.

``NUMBA_ENABLE_CUDASIM=1`` must be set before numba is imported, so it is set here, at the top of the first file
pytest loads. Every CUDA kernel then runs in Numba's simulator; ``tests/test_ptx.py`` compiles the same kernels
to PTX in a subprocess without the simulator.
"""
import os
import tempfile

os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
# The on-disk cache does not notice edits to rules in other files: never let the suite load stale kernels.
os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="testbed-numba-cache-"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

#: Threads per CUDA block in the tests: not a power of two, so several blocks and a partial last block run.
AWKWARD_THREADS_PER_BLOCK = 10


@pytest.fixture(autouse=True)
def awkward_block_size(monkeypatch):
    from testbed import config

    monkeypatch.setattr(config, "THREADS_PER_BLOCK", AWKWARD_THREADS_PER_BLOCK)


@pytest.fixture
def rng():
    """A seeded NumPy generator for test inputs (the testbed's own draws come from Philox)."""
    return np.random.default_rng(20261201)
