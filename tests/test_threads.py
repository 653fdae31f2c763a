"""The library's OpenMP default: Numba's idle threads wait passively, unless the user chose otherwise.

OpenMP reads ``OMP_WAIT_POLICY`` once, when Numba first starts its threads; libgomp prints its settings when
``OMP_DISPLAY_ENV=VERBOSE``, among them ``GOMP_SPINCOUNT``, how long an idle thread spins before it sleeps: 0
under the passive policy, 300,000 when no policy is set, billions under the active one. (Its ``OMP_WAIT_POLICY``
line reads 'PASSIVE' also when nothing is set, so the spin count is what tells them apart.) Each case runs in a
fresh interpreter (the threads of this one started long ago) and runs one parallel kernel, after ``import
testbed`` as a user's script would, or without it for the control case.
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import numba
import numpy as np
{import_testbed}

@numba.njit(parallel=True)
def total(a):
    s = 0.0
    for i in numba.prange(a.size):
        s += a[i]
    return s

assert total(np.ones(100)) == 100.0
"""


def _spin_count_seen_by_openmp(environment_policy, import_testbed=True):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER")}
    env.update(OMP_DISPLAY_ENV="VERBOSE", NUMBA_THREADING_LAYER="omp", PYTHONPATH=ROOT)
    if environment_policy is not None:
        env["OMP_WAIT_POLICY"] = environment_policy
    script = SCRIPT.format(import_testbed="import testbed" if import_testbed else "")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "GOMP_SPINCOUNT" in line]
    if not lines:
        pytest.skip("this OpenMP runtime does not display its settings (OMP_DISPLAY_ENV)")
    return int(lines[0].split("=", 1)[1].strip().strip("'"))


def test_openmp_threads_wait_passively_after_import_testbed():
    assert _spin_count_seen_by_openmp(None) == 0


def test_without_the_library_openmp_threads_spin():  # the control: the check above can tell the two apart
    assert _spin_count_seen_by_openmp(None, import_testbed=False) > 0


def test_an_explicit_policy_from_the_environment_wins():
    assert _spin_count_seen_by_openmp("ACTIVE") > 300_000


# ----------------------------------------------------------------------------------------------------------------
# OpenBLAS's idle threads (issue 14)

BLAS_SCRIPT = """
import time
import numpy as np
import numba
import testbed

@numba.njit
def product(a, b, c):
    np.dot(a, b, c)

a = np.ones((512, 512))
c = np.empty_like(a)
product(a, a, c)

def burned_after(call):
    call()
    start = time.process_time()
    time.sleep({window})
    return time.process_time() - start

numba_pool, numpy_pool = [], []
for _ in range(3):
    numba_pool.append(burned_after(lambda: product(a, a, c)))
    numpy_pool.append(burned_after(lambda: np.dot(a, a, out=c)))
    time.sleep({rest})  # NumPy's threads stop spinning before the next trial
print("BURNED", sorted(numba_pool)[1], max(numpy_pool))
"""

#: Seconds watched after a product; OpenBLAS's default spin (2**28 cycles) lasts about 0.1 s at 2-3 GHz.
SPIN_WINDOW = 0.1
#: CPU seconds that tell a sleeping pool from a spinning one: a spinning thread burned 2-10 ms of a 50 ms window
#: on this 2-core machine at a load average of 13 (it yields the core to other jobs), 50 ms when idle.
SPIN_BURNED = 1e-3


def test_openblas_threads_behind_numba_sleep_at_once_and_numpys_keep_their_default():
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
    env.update(OPENBLAS_NUM_THREADS="2", PYTHONPATH=ROOT)
    script = BLAS_SCRIPT.format(window=SPIN_WINDOW, rest=2 * SPIN_WINDOW)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    numba_pool, numpy_pool = (float(v) for v in done.stdout.split("BURNED")[1].split())
    assert numba_pool < SPIN_BURNED < numpy_pool  # NumPy's pool (loaded before the setting) is the control
