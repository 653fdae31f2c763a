"""The tiled matrix product that the CUDA kernels of the testbed share, as one device function.

Each block of ``tile`` x ``tile`` threads computes a tile of ``out = op(a) op(b)`` (op(a) is ``a`` or ``a^T``,
likewise op(b)): thread (tx, ty) of block (bx, by) owns ``out[row, col]``, row = by tile + ty, col = bx tile + tx.
The inner dimension is walked ``tile`` entries at a time: each thread loads one entry of op(a)'s and one of
op(b)'s tile into shared memory (0 beyond the edges), the block synchronises, and each thread adds its row of the
one times its column of the other, in float64. The kernels (:func:`testbed.kernels.nn.matmul_epilogue_gpu`,
:func:`testbed.kernels.curvature.gemm_gpu`, :func:`testbed.kernels.spectra.jacobian_step_gpu`) allocate the
shared tiles with their own module's ``TILE`` (a constant when compiled for a GPU; read when the kernel runs in the
CUDA simulator, so a test can set a small one) and apply their epilogues to the sum.
"""

import functools

from .registry import CUDA_NOT_IMPORTED, bind_cuda

#: ``numba.cuda``, imported when the device function is first built (:mod:`testbed.kernels.registry`)
cuda = CUDA_NOT_IMPORTED


@functools.lru_cache(maxsize=None)
def tile_product_gpu():
    """The device function ``tile_product(a, transpose_a, b, transpose_b, row, col, rows, cols, tile_a, tile_b,
    tile)``: sum_k op(a)[row, k] op(b)[k, col] for the thread's (``row``, ``col``) of an output of ``rows`` x
    ``cols`` (0 outside it), through the block's shared ``tile`` x ``tile`` float64 arrays ``tile_a`` and
    ``tile_b``. Every thread of the block must call it (it synchronises the block). Built, and ``numba.cuda``
    imported, on first use."""
    bind_cuda(globals())

    @cuda.jit(device=True)
    def tile_product(a, transpose_a, b, transpose_b, row, col, rows, cols, tile_a, tile_b, tile):
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        inner = a.shape[0] if transpose_a else a.shape[1]
        acc = 0.0
        for start in range(0, inner, tile):
            k = start + tx
            if row < rows and k < inner:
                tile_a[ty, tx] = a[k, row] if transpose_a else a[row, k]
            else:
                tile_a[ty, tx] = 0.0
            k = start + ty
            if k < inner and col < cols:
                tile_b[ty, tx] = b[col, k] if transpose_b else b[k, col]
            else:
                tile_b[ty, tx] = 0.0
            cuda.syncthreads()
            for kk in range(tile):
                acc += tile_a[ty, kk] * tile_b[kk, tx]
            cuda.syncthreads()
        return acc

    return tile_product
