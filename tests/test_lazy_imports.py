"""What a run on the CPU imports: not ``numba.cuda``, not ``scipy.stats`` nor ``scipy.optimize`` for the saddle.

``numba.cuda`` takes 0.2 to 0.5 s to import on 2 cores and ``scipy.stats`` 0.5 to 0.7 s, a tenth of the saddle
scenario's warm run, and a run on the CPU needs neither: the kernel modules bind ``numba.cuda`` when their first
CUDA kernel is built (``testbed.kernels.registry.gpu_kernel``), and the escape laws take the normal and beta laws
from ``scipy.special``. Each check runs in a fresh interpreter (this one imported ``numba.cuda`` in conftest.py),
with the suite's environment: the CUDA simulator on and the suite's Numba cache.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from testbed import rng
from testbed.kernels import registry
from testbed.theory import escape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Modules a run on the CPU must not import (the saddle scenario's run included).
NOT_ON_THE_CPU = ("numba.cuda", "scipy.stats", "scipy.optimize")

#: The Philox draws both targets must agree on (few: the simulator runs a CUDA thread as a Python thread).
DRAWS = 12

CPU_RUN = """
import sys
import testbed, testbed.montecarlo, testbed.optim, testbed.nn, testbed.train, testbed.curvature, testbed.spectra
import testbed.scenarios.saddle as saddle
from testbed import backend, rng

assert backend.resolve("cpu") == "cpu"
saddle.validate(saddle.common.merge_params(saddle.DEFAULTS, saddle.QUICK, True, {{}}))
saddle.theory_median("sgd", saddle.validate(dict(saddle.DEFAULTS)))
saddle.gd_ball_median(saddle.validate(dict(saddle.DEFAULTS)), 0.01, 10)
cpu = rng.uniform({draws}, seed=7)
print("imported:", ",".join(name for name in {modules!r} if name in sys.modules))
cuda = rng.uniform({draws}, seed=7, backend="cuda")
import numba.cuda
from testbed.kernels import random
assert random.cuda is numba.cuda, "the CUDA kernel's module does not name numba.cuda"
assert (cuda == cpu).all(), "the CUDA simulator and the CPU drew different numbers"
print("after cuda:", "numba.cuda" in sys.modules)
"""


def _run(script, **environment):
    env = dict(os.environ, PYTHONPATH=ROOT, **environment)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_cpu_run_imports_neither_numba_cuda_nor_scipy_stats_and_the_cuda_backend_imports_it_when_asked():
    rng.uniform(DRAWS, seed=7)  # the fill kernel in the suite's cache, so that the fresh interpreter loads it
    out = _run(CPU_RUN.format(draws=DRAWS, modules=NOT_ON_THE_CPU))
    assert "imported: \n" in out, out
    assert "after cuda: True" in out, out


def test_without_a_gpu_the_backends_say_what_they_said_before():
    script = (
        "from testbed import backend\n"
        "assert backend.resolve('auto') == 'cpu'\n"
        "try:\n"
        "    backend.resolve('cuda')\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    out = _run(script, NUMBA_ENABLE_CUDASIM="0")
    assert out.startswith("backend='cuda' needs a CUDA GPU and driver, or the simulator"), out


def test_cuda_used_before_a_kernel_factory_binds_it_says_so():
    with pytest.raises(AttributeError, match="inside a factory decorated with testbed.kernels.registry.gpu_kernel"):
        registry.CUDA_NOT_IMPORTED.grid(1)
    assert getattr(registry.CUDA_NOT_IMPORTED, "_cache", None) is None  # probing a module's globals passes over it


def test_a_kernel_factory_binds_its_modules_cuda_to_numba_cuda():
    import numba.cuda

    from testbed.kernels import random

    random.fill_gpu()
    assert random.cuda is numba.cuda


def test_the_normal_and_beta_laws_of_the_escape_theory_are_scipy_stats_laws():
    """The scipy.special forms of testbed.theory.escape against scipy.stats's distributions, bit for bit."""
    x = np.concatenate([np.linspace(-40.0, 40.0, 2001), [0.0, np.inf, -np.inf]])
    q = np.concatenate([np.linspace(0.0, 1.0, 1001), [1e-300, 0.75]])
    assert np.array_equal(escape._normal_cdf(x), stats.norm.cdf(x))
    assert np.array_equal(escape._normal_sf(x), stats.norm.sf(x))
    assert np.array_equal(escape._normal_isf(q), stats.norm.isf(q))
    assert escape.HALF_NORMAL_MEDIAN == stats.norm.ppf(0.75)
    size = np.linspace(0.0, 1.0, 501)
    for dim in (1, 2, 10, 100):
        half = (dim + 1) / 2
        law = stats.beta(half, half)  # of (1 + y/r)/2, y the coordinate of a point uniform in the d-ball
        assert np.array_equal(escape.ball_component_cdf(size, 1.0, dim), np.clip(2 * law.cdf((1 + size) / 2) - 1, 0, 1))
        assert np.array_equal(escape.ball_component_quantile(q, 1.0, dim), 2 * law.ppf((1 + q) / 2) - 1)
