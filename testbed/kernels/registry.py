"""A registry of every CUDA kernel, with the signatures it must compile for, and where ``numba.cuda`` is imported.

The CUDA simulator checks no types, so a kernel can pass every simulator test and still fail to compile for a
real GPU. Each module that defines a CUDA kernel registers its factory here with :func:`gpu_kernel`;
``python -m testbed.kernels.ptx`` (run by the test suite) compiles every registered kernel to PTX for compute
capability 9.0, which needs NVVM (the ``cuda`` extra) but no GPU and no driver.

``numba.cuda`` is imported when the first CUDA kernel is built, not when a kernel module is imported: the import
costs 0.2 to 0.5 s on 2 cores (numba-cuda's typing and device registries), which a run on the CPU never needs.
A kernel module therefore names ``cuda = registry.CUDA_NOT_IMPORTED`` and uses ``cuda`` only inside factories
decorated with :func:`gpu_kernel`, which binds the module's global ``cuda`` to ``numba.cuda`` before the factory
first runs. It must be the module's global, not a local name of the factory: Numba's typing and the CUDA
simulator (which swaps the globals that hold ``numba.cuda`` for a per-thread stand-in) both look the kernel's
``cuda`` up among its module's globals.
"""

import functools

#: name -> (factory, signatures): ``factory()`` returns the ``numba.cuda`` kernel; ``signatures()`` the list of
#: argument-type tuples (numba types) it is compiled for.
GPU_KERNELS = {}


class _CudaNotImported:
    """What a kernel module's ``cuda`` holds until :func:`gpu_kernel` binds ``numba.cuda``: any use is a bug (code
    that touches ``cuda`` outside a registered factory) and says so. An AttributeError, so that probing a module's
    globals (``getattr(value, "_cache", None)``, ``hasattr``) passes over it as over any other object."""

    def __getattr__(self, name):
        raise AttributeError(
            f"cuda.{name} used before numba.cuda was imported: a kernel module uses `cuda` only inside a factory "
            "decorated with testbed.kernels.registry.gpu_kernel, which imports it"
        )

    def __repr__(self):
        return "<numba.cuda, not imported yet: bound by testbed.kernels.registry.gpu_kernel>"


#: The placeholder a kernel module assigns to its global ``cuda`` (``cuda = registry.CUDA_NOT_IMPORTED``).
CUDA_NOT_IMPORTED = _CudaNotImported()


def bind_cuda(namespace):
    """Import ``numba.cuda`` and store it as ``namespace["cuda"]`` (a kernel module's globals); returns it."""
    from numba import cuda

    namespace["cuda"] = cuda
    return cuda


def gpu_kernel(signatures):
    """Decorate a kernel factory: memoise it, register it with ``signatures`` (a function returning a list) and
    bind its module's global ``cuda`` to ``numba.cuda`` before it first runs."""

    def register(factory):
        @functools.lru_cache(maxsize=None)
        @functools.wraps(factory)
        def build():
            bind_cuda(factory.__globals__)
            return factory()

        GPU_KERNELS[f"{factory.__module__}.{factory.__qualname__}"] = (build, signatures)
        return build

    return register
