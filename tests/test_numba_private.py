"""Each use of Numba's private surface still attaches (testbed/kernels/numba_private.py lists them).

These fail first when a new numba or numba-cuda release moves a private name: run them before raising the
upper bounds in pyproject.toml.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import cuda, njit

from testbed.kernels import cache, policy, targets

#: Exit status of the PTX probe below when NVVM is missing (as ``python -m testbed.kernels.ptx``).
NO_NVVM = 3


# 1. The cache locator ------------------------------------------------------------------------------------------


def test_the_dependency_aware_locators_lead_numbas_locator_list():
    from numba.core import caching

    leading = caching.CacheImpl._locator_classes[: len(cache.WRAPPED_LOCATORS)]
    assert [locator.__name__ for locator in leading] == [
        f"DependencyAware{wrapped.__name__}" for wrapped in cache.WRAPPED_LOCATORS
    ]
    assert all(issubclass(locator, wrapped) for locator, wrapped in zip(leading, cache.WRAPPED_LOCATORS))


def test_a_cached_kernel_is_stamped_with_the_files_it_compiles_in():
    from testbed.kernels import random

    kernels = [value for value in vars(random).values() if getattr(value, "_cache", None) is not None]
    cached = [kernel for kernel in kernels if hasattr(kernel._cache, "_impl")]
    assert cached, "no cache=True kernel in testbed.kernels.random"
    for kernel in cached:
        locator = kernel._cache._impl.locator
        assert type(locator).__name__.startswith("DependencyAware"), kernel
        assert locator.get_source_stamp()[1] == cache.dependencies_fingerprint()


def test_a_cached_function_outside_the_kernels_keeps_numbas_own_locator():
    @njit(cache=True)
    def outside(x):  # pragma: no cover - decorated only: the locator is chosen at decoration
        return x

    assert not type(outside._cache._impl.locator).__name__.startswith("DependencyAware")


# 2. _nrt=False ------------------------------------------------------------------------------------------------


def _element_times_two(a, i):
    return a[i] * 2.0


def test_a_rule_marked_no_refcount_compiles_without_reference_counting(monkeypatch):
    def marked(a, i):
        return a[i] * 2.0

    monkeypatch.setitem(policy.CPU_POLICY, marked, policy.CpuPolicy(no_refcount=True))
    ir = {}
    for rule in (marked, _element_times_two):
        compiled = targets.compile_rule(rule, "cpu")
        assert compiled(np.arange(3.0), 1) == 2.0
        (signature,) = compiled.overloads
        ir[rule] = compiled.inspect_llvm(signature)
    assert "NRT_" in ir[_element_times_two], "the unmarked control must use reference counting"
    assert "NRT_" not in ir[marked]


# 3. The PTX target device -------------------------------------------------------------------------------------

PTX_PROBE = textwrap.dedent("""
    import sys
    import numba.cuda.api as api
    import numba.cuda.dispatcher as dispatcher
    from numba import cuda, float64
    from testbed.kernels import numba_private, ptx

    assert dispatcher.get_current_device is api.get_current_device, "numba.cuda.dispatcher.get_current_device moved"
    if not ptx.nvvm_available():
        sys.exit(3)
    numba_private.compile_without_a_driver((9, 0))
    patched, asked = dispatcher.get_current_device, []
    dispatcher.get_current_device = lambda: asked.append(1) or patched()

    @cuda.jit(device=True)
    def twice(x):
        return 2.0 * x

    def kernel(out):
        out[0] = twice(out[0])

    code, _ = cuda.compile_ptx(kernel, (float64[:],), cc=(9, 0))
    assert asked, "compiling a device function no longer asks numba.cuda.dispatcher.get_current_device"
    assert ".target sm_90" in code
    print("patched")
""")


def test_compiling_a_device_function_without_a_driver_consults_the_patched_device():
    environment = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    probe = subprocess.run([sys.executable, "-c", PTX_PROBE], env=environment, capture_output=True, text=True)
    if probe.returncode == NO_NVVM:
        pytest.skip("NVVM is not installed: pip install -e '.[cuda]' (the name check above it passed)")
    assert probe.returncode == 0 and probe.stdout.split() == ["patched"], probe.stdout + probe.stderr


# 4. The simulator launch --------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="the patch pins cores where the OS allows it")
def test_a_simulated_launch_runs_on_one_core_and_gives_the_cores_back():
    from numba.cuda.simulator import kernel as simulator

    assert getattr(simulator.FakeCUDAKernel.__call__, "pins_to_one_core", False)

    @cuda.jit
    def count_cores(out):  # the simulator runs it as Python: it may ask the OS
        i = cuda.grid(1)
        if i < out.size:
            out[i] = len(os.sched_getaffinity(0))

    cores = os.sched_getaffinity(0)
    out = np.zeros(4)
    count_cores[2, 3](out)
    assert out.tolist() == [1.0] * 4
    assert os.sched_getaffinity(0) == cores


# 6. forceinline ----------------------------------------------------------------------------------------------


def _halve(x):
    return 0.5 * x


def test_the_inline_targets_inline_by_llvm_or_in_numbas_ir():
    """An LLVM-inlined rule is a function of its own marked alwaysinline, compiled once and gone from its caller's
    machine code; an IR-inlined one is never compiled on its own."""
    llvm_twin = targets.compile_rule(_halve, "cpu-numpy-errors-llvm-inline")
    ir_twin = targets.compile_rule(_halve, "cpu-numpy-errors-ir-inline")

    @njit
    def caller(x):
        return llvm_twin(x) + ir_twin(x) + llvm_twin(x + 1.0)

    assert caller(2.0) == 3.5
    assert len(llvm_twin.overloads) == 1 and len(ir_twin.overloads) == 0
    (signature,) = llvm_twin.overloads
    assert "alwaysinline" in llvm_twin.inspect_llvm(signature)
    (signature,) = caller.overloads
    calls = [line for line in caller.inspect_llvm(signature).splitlines() if " call " in line and "_halve" in line]
    assert not calls, calls
