"""A registry of every CUDA kernel, with the signatures it must compile for.

The CUDA simulator checks no types, so a kernel can pass every simulator test and still fail to compile for a
real GPU. Each module that defines a CUDA kernel registers its factory here with :func:`gpu_kernel`;
``python -m testbed.kernels.ptx`` (run by the test suite) compiles every registered kernel to PTX for compute
capability 9.0, which needs NVVM (the ``cuda`` extra) but no GPU and no driver.
"""

import functools

#: name -> (factory, signatures): ``factory()`` returns the ``numba.cuda`` kernel; ``signatures()`` the list of
#: argument-type tuples (numba types) it is compiled for.
GPU_KERNELS = {}


def gpu_kernel(signatures):
    """Decorate a kernel factory: memoise it and register it with ``signatures`` (a function returning a list)."""

    def register(factory):
        cached = functools.lru_cache(maxsize=None)(factory)
        GPU_KERNELS[f"{factory.__module__}.{factory.__qualname__}"] = (cached, signatures)
        return cached

    return register
