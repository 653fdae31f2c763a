"""Every place where the testbed relies on Numba's private surface, listed in one place.

Numba (``numba``) and its CUDA target (``numba-cuda``) promise nothing about the names below, so
``pyproject.toml`` pins both below their next minor release, and ``tests/test_numba_private.py`` fails when one
of them no longer attaches. Before raising a pin, run that file (and ``tests/test_ptx.py`` where NVVM is
installed) against the new release.

1. **The cache locator** (:mod:`testbed.kernels.cache`). ``cache.install()`` puts subclasses of Numba's
   ``UserProvidedCacheLocator``, ``InTreeCacheLocator`` and ``UserWideCacheLocator`` (``numba.core.caching``,
   subclasses of the private ``_CacheLocator``) first in the private list ``CacheImpl._locator_classes``, which
   Numba walks to pick the locator of a ``cache=True`` function; they override ``get_source_stamp`` and
   ``from_function``. If it stops attaching, editing a rule leaves every kernel that compiles it in loading
   stale machine code from the cache. (``NUMBA_CACHE_LOCATOR_CLASSES``, when a user sets it, replaces that list
   and so bypasses these locators.) Tests: the locators lead the list, a kernel's cache uses one and its stamp
   carries the fingerprint; ``tests/test_kernel_cache.py`` edits a rule and sees the kernel recompile.
2. **``_nrt=False``** (:func:`testbed.kernels.targets.compile_rule`). A private ``njit`` option: the rules
   marked ``no_refcount_on_cpu`` (the Monte Carlo trial loop) compile without Numba's reference counting. If it
   is ignored, results stay the same but the Monte Carlo kernels slow down (atomic count updates on one shared
   counter serialise the threads). Test: a marked rule's LLVM IR calls no ``NRT_`` function, an unmarked one
   does.
3. **The PTX target device** (:func:`compile_without_a_driver`, used by ``python -m testbed.kernels.ptx``).
   numba-cuda asks the driver for the current device's compute capability when it compiles a device function,
   through the name ``get_current_device`` imported into ``numba.cuda.dispatcher``; replacing that name lets
   every kernel compile to PTX with no GPU and no driver. If it stops attaching, ``tests/test_ptx.py`` fails on a
   machine without a GPU (compiling any kernel that calls a device function asks the driver). Test: the name
   exists and is the driver query before the patch, and compiling a kernel with a device function consults it.
4. **The simulator launch** (:func:`pin_simulator_launches_to_one_core`, installed by ``tests/conftest.py``).
   Replaces ``numba.cuda.simulator.kernel.FakeCUDAKernel.__call__`` and reads the simulator's private
   ``FakeCUDAKernel._device`` and module global ``_kernel_context``, to run each simulated launch on one core. If
   it stops attaching, the simulator tests run 30-50x slower on a machine with free cores. Test: the launch
   method is the patched one and a simulated kernel sees one core.
5. **The cache index** (:func:`testbed.kernels.ahead.is_cached`, used by :func:`testbed.warmup.compile_ahead`).
   Reads a ``cache=True`` dispatcher's ``_cache._cache_file._load_index()`` (empty when nothing is cached under
   the current source stamp) to start no helper process for kernels that are cached. If it stops attaching,
   ``is_cached`` answers False and a warm run starts a helper that only loads the cached kernels (about a
   second of CPU on the other core). Test (``tests/test_warmup.py``): a kernel compiled into a fresh cache reads
   as cached, and one never compiled as not cached.
6. **``forceinline=True``** (:func:`testbed.kernels.targets.compile_rule`). An ``njit`` option that Numba's CPU
   target accepts (``numba.core.options.DefaultOptions``) but does not document: the function gets LLVM's
   ``alwaysinline`` attribute. The rules that the policy table inlines (:mod:`testbed.kernels.policy`) are
   compiled with it, once each, and LLVM inlines them at every call site. If it is ignored, results stay the
   same but those rules stay calls and the Monte Carlo and fill loops lose their SIMD code. Test: an inlined
   rule's LLVM IR carries ``alwaysinline`` and its caller calls it nowhere.
"""

import os
import types


def target_device(cc):
    """Stand in for the "current device" that numba-cuda asks the driver for: compute capability ``cc``."""
    return types.SimpleNamespace(compute_capability=tuple(cc), id=0, name="PTX target (no driver)")


def compile_without_a_driver(cc):
    """Make numba-cuda compile for compute capability ``cc`` without asking a driver (item 3 above).

    Only for compiling to PTX (``cuda.compile_ptx``): a kernel launched afterwards in the same process would be
    compiled for ``cc`` whatever the GPU is.
    """
    import numba.cuda.dispatcher as dispatcher

    device = target_device(cc)
    dispatcher.get_current_device = lambda: device


def pin_simulator_launches_to_one_core():
    """Pin each CUDA-simulator launch, and so the Python threads it starts, to one core (item 4 above; Linux).

    The simulator runs every thread of a block as a Python thread. Spread over two free cores, those threads
    fight for the GIL (each hand-off crosses cores), and a launch ran 30-50x slower than on one core (measured:
    38 s against 0.7 s for the same Monte Carlo kernel). Threads inherit the affinity of the thread that starts
    them, so pinning the launching thread for the duration of the launch is enough; Numba's CPU worker threads,
    started earlier, keep every core. Needs ``NUMBA_ENABLE_CUDASIM=1``; installs once.
    """
    if not hasattr(os, "sched_setaffinity"):
        return
    from numba.cuda.simulator import kernel as simulator

    launch = simulator.FakeCUDAKernel.__call__
    if getattr(launch, "pins_to_one_core", False):
        return

    def pinned_launch(self, *args):
        if self._device or simulator._kernel_context:  # a device function, called inside a running kernel
            return launch(self, *args)
        cores = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cores)})
        try:
            return launch(self, *args)
        finally:
            os.sched_setaffinity(0, cores)

    pinned_launch.pins_to_one_core = True
    simulator.FakeCUDAKernel.__call__ = pinned_launch
