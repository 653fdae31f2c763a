"""Array-filling kernels for the Philox draws: one Philox block (four draws) per loop iteration.

Draw ``i`` of a fill is draw ``i`` of (seed, stream, step) in :mod:`testbed.rules.rng`, whatever the target, the
thread count or the launch shape.
"""
from numba import types

from numba import cuda, njit, prange

from .. import config
from ..rules import rng as rules
from .registry import gpu_kernel
from .targets import for_cpu, for_gpu

KIND_UNIFORM = 0
KIND_NORMAL = 1

_uniform4_cpu = for_cpu(rules.uniform4)
_normal4_cpu = for_cpu(rules.normal4)


@njit(parallel=True, **config.CPU_KERNEL_OPTIONS)
def fill_cpu(out, kind, seed, stream, step, loc, scale):
    """out[i] = loc + scale * draw_i, draw_i uniform on (0, 1] (kind 0) or standard normal (kind 1)."""
    n = out.size
    for block in prange((n + 3) // 4):
        if kind == KIND_UNIFORM:
            d0, d1, d2, d3 = _uniform4_cpu(seed, stream, step, block)
        else:
            d0, d1, d2, d3 = _normal4_cpu(seed, stream, step, block)
        i = 4 * block
        out[i] = loc + scale * d0
        if i + 1 < n:
            out[i + 1] = loc + scale * d1
        if i + 2 < n:
            out[i + 2] = loc + scale * d2
        if i + 3 < n:
            out[i + 3] = loc + scale * d3


def _fill_signatures():
    return [
        (types.Array(dtype, 1, "C"), types.int64, types.uint64, types.uint64, types.uint64, dtype, dtype)
        for dtype in (types.float32, types.float64)
    ]


@gpu_kernel(_fill_signatures)
def fill_gpu():
    """The CUDA twin of :func:`fill_cpu` (a grid-stride loop over Philox blocks), built on first use."""
    uniform4 = for_gpu(rules.uniform4)
    normal4 = for_gpu(rules.normal4)

    @cuda.jit
    def kernel(out, kind, seed, stream, step, loc, scale):
        n = out.size
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for block in range(start, (n + 3) // 4, stride):
            if kind == KIND_UNIFORM:
                d0, d1, d2, d3 = uniform4(seed, stream, step, block)
            else:
                d0, d1, d2, d3 = normal4(seed, stream, step, block)
            i = 4 * block
            out[i] = loc + scale * d0
            if i + 1 < n:
                out[i + 1] = loc + scale * d1
            if i + 2 < n:
                out[i + 2] = loc + scale * d2
            if i + 3 < n:
                out[i + 3] = loc + scale * d3

    return kernel
