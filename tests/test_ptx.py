"""Every CUDA kernel compiles to PTX for compute capability 9.0 (the simulator checks no types)."""

import os
import subprocess
import sys

import pytest

#: Exit status of ``python -m testbed.kernels.ptx`` when NVVM is missing.
NO_NVVM = 3


def test_every_cuda_kernel_compiles_to_ptx():
    environment = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from testbed.kernels.ptx import nvvm_available as a; raise SystemExit(0 if a() else 3)",
        ],
        env=environment,
        capture_output=True,
        text=True,
    )
    if probe.returncode == NO_NVVM:
        pytest.skip("NVVM is not installed: pip install -e '.[cuda]'")
    result = subprocess.run(
        [sys.executable, "-m", "testbed.kernels.ptx", "--cc", "9.0"], env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout
