"""The library's OpenMP default: Numba's idle threads spin briefly (``testbed.SPIN_COUNT``), then sleep, unless the
user chose a wait policy or a spin count.

OpenMP reads ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT`` once, when Numba first starts its threads; libgomp prints
its settings when ``OMP_DISPLAY_ENV=VERBOSE``, among them ``GOMP_SPINCOUNT``, how long an idle thread spins before
it sleeps: 0 under the passive policy, 300,000 when no policy is set, billions under the active one, and whatever
``GOMP_SPINCOUNT`` names when it is set. (Its ``OMP_WAIT_POLICY``
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


def _spin_count_seen_by_openmp(environment_policy, import_testbed=True, environment_spin_count=None):
    names = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NUMBA_THREADING_LAYER")
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(OMP_DISPLAY_ENV="VERBOSE", NUMBA_THREADING_LAYER="omp", PYTHONPATH=ROOT)
    if environment_policy is not None:
        env["OMP_WAIT_POLICY"] = environment_policy
    if environment_spin_count is not None:
        env["GOMP_SPINCOUNT"] = str(environment_spin_count)
    script = SCRIPT.format(import_testbed="import testbed" if import_testbed else "")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "GOMP_SPINCOUNT" in line]
    if not lines:
        pytest.skip("this OpenMP runtime does not display its settings (OMP_DISPLAY_ENV)")
    return int(lines[0].split("=", 1)[1].strip().strip("'"))


def test_openmp_threads_spin_briefly_after_import_testbed():
    import testbed

    assert _spin_count_seen_by_openmp(None) == testbed.SPIN_COUNT


def test_without_the_library_openmp_threads_spin_longer():  # the control: the check above can tell the two apart
    import testbed

    assert _spin_count_seen_by_openmp(None, import_testbed=False) > testbed.SPIN_COUNT


def test_an_explicit_policy_from_the_environment_wins():
    assert _spin_count_seen_by_openmp("ACTIVE") > 300_000
    assert _spin_count_seen_by_openmp("PASSIVE") == 0


def test_an_explicit_spin_count_from_the_environment_wins():
    assert _spin_count_seen_by_openmp(None, environment_spin_count=1234) == 1234
