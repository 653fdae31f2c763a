"""The array-filling kernels of the Philox distributions: one Philox block (four draws) per iteration.

Element ``j`` of ``out`` is draw ``offset + j`` of (seed, stream, step) in :mod:`testbed.rules.rng`, whatever the
target, the thread count or the launch shape; the distribution is a code (:data:`testbed.rules.rng.CONSTANT`,
``UNIFORM``, ``NORMAL``, ``TRUNCATED_NORMAL``, ``TRUNCATED_NORMAL_BY_UNIFORM``) with the parameters
(loc, scale, a, b, c) that :func:`testbed.rules.rng.draw4` documents. :func:`fill` serves every distribution and
every initialiser of :mod:`testbed.init`: on the CPU, the normal draws through :func:`fill_normal_cpu` (float32
and float64 arrays, the most drawn code: weights, inputs, gradients), every other code through :func:`fill_cpu`.

Speed (CPU): the draws run in branch-free loops with the rules inlined (``for_cpu(..., error_model="numpy",
inline="llvm")``) and unsigned store indices (no negative-index wraparound select), which LLVM turns into SIMD
code: Philox's multiplies, the polynomial log/sin/cos of Box-Muller (:func:`testbed.rules.rng.log_unit`,
:func:`~testbed.rules.rng.sincos_two_pi`) and the interleaved stores all vectorise. No FMA contraction or other
fast-math: the vector lanes give the bits of the scalar rule.
"""

import numpy as np
from numba import njit, types

from .. import config
from ..rules import rng as rules
from . import ahead
from .registry import CUDA_NOT_IMPORTED, gpu_kernel
from .targets import for_cpu, for_gpu
from .threads import run_items

#: ``numba.cuda``, imported when the first CUDA kernel of this module is built (:mod:`testbed.kernels.registry`)
cuda = CUDA_NOT_IMPORTED

CONSTANT = rules.CONSTANT
UNIFORM = rules.UNIFORM
NORMAL = rules.NORMAL
TRUNCATED_NORMAL = rules.TRUNCATED_NORMAL
TRUNCATED_NORMAL_BY_UNIFORM = rules.TRUNCATED_NORMAL_BY_UNIFORM

#: Philox blocks per CPU work item: large enough to amortise the scheduling, small enough to balance threads.
CHUNK_BLOCKS = 1024

# inlined by LLVM, each rule compiled once (testbed.kernels.targets): the fill kernels compiled in 4.3-4.6 s of CPU
# instead of 5.9-6.8 with Numba's IR inliner, at the same speed (benchmarks/RESULTS.md, "Tenth session")
_uniform4_cpu = for_cpu(rules.uniform4, error_model="numpy", inline="llvm")
_box_muller_cpu = for_cpu(rules.box_muller, error_model="numpy", inline="llvm")
_draw4_cpu = for_cpu(rules.draw4, error_model="numpy")
_store_block = for_cpu(rules.store_block, error_model="numpy", inline="llvm")


def fill_items(size, offset, chunk):
    """Work items of :func:`fill_cpu` for ``size`` draws from draw ``offset`` on: chunks of ``chunk`` blocks."""
    first_block = offset // 4
    end_block = (offset + size + 3) // 4
    return (end_block - first_block + chunk - 1) // chunk


@njit(error_model="numpy", **config.CPU_KERNEL_OPTIONS)
def fill_cpu(out, code, seed, stream, step, offset, loc, scale, a, b, c, chunk, first_item, last_item):
    """out[j] = draw offset + j of the distribution ``code`` (parameters loc, scale, a, b, c; see draw4), for the
    blocks of work items ``first_item .. last_item - 1`` (:func:`fill_items`; :func:`fill` runs the items on
    threads, :mod:`testbed.kernels.threads`).

    Every code; :func:`fill` sends ``NORMAL`` to :func:`fill_normal_cpu` instead (here it takes the general path).
    """
    n = out.size
    first_block = offset // 4
    end_block = (offset + n + 3) // 4
    # blocks wholly inside out: [inner_start, inner_end)
    inner_start = (offset + 3) // 4
    inner_end = (offset + n) // 4
    for item in range(first_item, last_item):
        start = first_block + item * chunk
        end = min(start + chunk, end_block)
        # [lo, hi): the blocks of this chunk wholly inside out, for the vectorised uniform loop
        lo = min(max(start, inner_start), end)
        hi = max(min(end, inner_end), lo)
        if code == UNIFORM:
            for block in range(lo, hi):
                u0, u1, u2, u3 = _uniform4_cpu(seed, stream, step, block)
                j = np.uint64(4 * block - offset)
                out[j] = loc + scale * (u0 - a)
                out[j + np.uint64(1)] = loc + scale * (u1 - a)
                out[j + np.uint64(2)] = loc + scale * (u2 - a)
                out[j + np.uint64(3)] = loc + scale * (u3 - a)
        else:
            lo = end
            hi = end
        # everything else (the partial blocks at the ends of out, every block of the other codes) through the
        # general rule: one call site, so that LLVM inlines its Philox rounds once (seconds of compile time)
        for part in range(2):
            first = start if part == 0 else hi
            last = lo if part == 0 else end
            for block in range(first, last):
                d0, d1, d2, d3 = _draw4_cpu(code, seed, stream, step, block, loc, scale, a, b, c)
                _store_block(out, block, offset, d0, d1, d2, d3)


@njit(error_model="numpy", **config.CPU_KERNEL_OPTIONS)
def normal_pairs(seed, stream, step, start, loc, scale, a, b):
    """a[q], b[q] = loc + scale * (the normal draws 4 start + 2 q and 4 start + 2 q + 1), for q < a.size (even).

    Box-Muller pair q = 2 k + h comes from words 2 h and 2 h + 1 of Philox block ``start + k``
    (:func:`testbed.rules.rng.normal4`). Two passes over the two arrays: the blocks' uniforms, then Box-Muller in
    place. Each loop vectorises with few live values; one loop doing both (the earlier kernel) spilled registers
    and rematerialised its constants every iteration: 6.9 against 5.0 ns of CPU per draw (one thread, AVX2).
    A function of its own, compiled once for both dtypes of :func:`fill_normal_cpu`.
    """
    for k in range(a.size // 2):
        u0, u1, u2, u3 = _uniform4_cpu(seed, stream, step, start + k)
        a[2 * k] = u0
        b[2 * k] = u1
        a[2 * k + 1] = u2
        b[2 * k + 1] = u3
    for q in range(a.size):
        z0, z1 = _box_muller_cpu(a[q], b[q])
        a[q] = loc + scale * z0
        b[q] = loc + scale * z1


@njit(error_model="numpy", **config.CPU_KERNEL_OPTIONS)
def fill_normal_cpu(out, seed, stream, step, offset, loc, scale, chunk, first_item, last_item):
    """out[j] = loc + scale * z, z the standard normal draw offset + j (:func:`testbed.rules.rng.normal4`).

    The draws of the code ``NORMAL`` into a float32 or float64 ``out``: computed in float64 and rounded once on the
    store (the bits of a float64 fill rounded to float32, without the float64 array and the pass that rounds it).
    Per chunk of ``chunk`` Philox blocks, :func:`normal_pairs` into two scratch arrays that stay in the L1 cache
    (2 x 16 KB for :data:`CHUNK_BLOCKS`), then the stores: unconditional for the pairs wholly inside ``out``,
    checked for the at most two pairs at its ends. It runs the chunks ``first_item .. last_item - 1``
    (:func:`fill_items`), one range per thread (:func:`fill`, :mod:`testbed.kernels.threads`).
    """
    n = out.size
    first_block = offset // 4
    end_block = (offset + n + 3) // 4
    for item in range(first_item, last_item):
        start = first_block + item * chunk
        blocks = min(chunk, end_block - start)
        pairs = 2 * blocks
        a = np.empty(pairs)
        b = np.empty(pairs)
        normal_pairs(seed, stream, step, start, loc, scale, a, b)
        # pair q holds the draws 4 start + 2 q + (0, 1): elements base + 2 q + (0, 1) of out, where they fall in it
        base = 4 * start - offset  # -3..0 in the first chunk, when offset is not a multiple of 4
        lo = min((1 - base) // 2, pairs) if base < 0 else 0
        hi = max(min((n - base) // 2, pairs), lo)
        for q in range(lo, hi):
            j = np.uint64(base + 2 * q)
            k = np.uint64(q)  # unsigned: no negative-index wraparound, which turned the loads into gathers
            out[j] = a[k]
            out[j + np.uint64(1)] = b[k]
        for part in range(2):
            first = 0 if part == 0 else hi
            last = lo if part == 0 else pairs
            for q in range(first, last):
                j = base + 2 * q
                if 0 <= j < n:
                    out[j] = a[q]
                if 0 <= j + 1 < n:
                    out[j + 1] = b[q]


def _fill_signatures():
    f64, u64, i64 = types.float64, types.uint64, types.int64
    return [
        (types.Array(dtype, 1, "C"), i64, u64, u64, u64, i64, f64, f64, f64, f64, f64)
        for dtype in (types.float32, types.float64)
    ]


@gpu_kernel(_fill_signatures)
def fill_gpu():
    """The CUDA twin of :func:`fill_cpu`: a grid-stride loop over Philox blocks, built on first use."""
    draw4 = for_gpu(rules.draw4)
    store_block = for_gpu(rules.store_block)

    @cuda.jit
    def kernel(out, code, seed, stream, step, offset, loc, scale, a, b, c):
        n = out.size
        first_block = offset // 4
        end_block = (offset + n + 3) // 4
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for block in range(first_block + start, end_block, stride):
            d0, d1, d2, d3 = draw4(code, seed, stream, step, block, loc, scale, a, b, c)
            store_block(out, block, offset, d0, d1, d2, d3)

    return kernel


def fill_normal_many(outs, seed, streams, locs, scales):
    """:func:`fill` with the code ``NORMAL`` (step 0, offset 0) into several 1-d C-contiguous CPU arrays, each with
    its stream, loc and scale, in one run of the threads: ``outs[i][j] = locs[i] + scales[i] * z``, z the draw j of
    (seed, ``streams[i]``). The work items of every array (:func:`fill_items`) form one list, cut into one
    contiguous range per thread, so that a net's layers cost one start and one wait of the threads instead of one
    per layer (20 layers of 1M draws: 60 against 74 ms on the 2-core Xeon, loaded). Each element is the same draw
    whichever thread and range computes it: the bits of :func:`fill` array by array.
    """
    seed, step = np.uint64(seed), np.uint64(0)
    ahead.wait("fill")
    counts = [fill_items(out.size, 0, CHUNK_BLOCKS) for out in outs]
    starts = [0]
    for count in counts:
        starts.append(starts[-1] + count)

    def work(first, last):
        for i, out in enumerate(outs):
            lo, hi = max(first, starts[i]), min(last, starts[i + 1])
            if lo < hi:
                stream, loc, scale = np.uint64(streams[i]), float(locs[i]), float(scales[i])
                fill_normal_cpu(out, seed, stream, step, 0, loc, scale, CHUNK_BLOCKS, lo - starts[i], hi - starts[i])

    run_items(work, starts[-1], dynamic=False)


def fill(out, code, seed, stream, step, offset, loc, scale, a, b, c, target):
    """Run the fill kernel on ``target`` ("cpu": ``out`` a NumPy array; "cuda": a device array), in place."""
    seed, stream, step = np.uint64(seed), np.uint64(stream), np.uint64(step)
    params = tuple(float(p) for p in (loc, scale, a, b, c))
    if target == "cpu":
        code, offset = int(code), int(offset)
        ahead.wait("fill")  # a helper process compiling the kernels into the cache (testbed.warmup)
        items = fill_items(out.size, offset, CHUNK_BLOCKS)
        if code == NORMAL:

            def work(first, last):
                fill_normal_cpu(out, seed, stream, step, offset, params[0], params[1], CHUNK_BLOCKS, first, last)

            buffer = out
        else:
            # draws are computed in float64 on every target and rounded once on the store; filling a float64
            # buffer and rounding gives the same bits and spares compiling the kernel a second time (seconds of JIT)
            buffer = out if out.dtype == np.float64 else np.empty(out.size, dtype=np.float64)

            def work(first, last):
                fill_cpu(buffer, code, seed, stream, step, offset, *params, CHUNK_BLOCKS, first, last)

        # one contiguous range of chunks per thread (each chunk is short: a call per chunk would cost more)
        run_items(work, items, dynamic=False)
        if buffer is not out:
            out[...] = buffer
    else:
        from ..backend import launch_shape

        blocks, threads = launch_shape((int(offset) % 4 + out.size + 3) // 4)
        fill_gpu()[blocks, threads](out, int(code), seed, stream, step, int(offset), *params)
