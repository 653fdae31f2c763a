"""Fused optimizer kernels: one pass over a flat parameter array per step, on the CPU and the GPU.

:func:`step_cpu` (a ``prange`` loop) and the kernel of :func:`step_gpu` (a grid-stride loop) call the same scalar
rule :func:`testbed.rules.optimizers.update` on each component, so one compiled kernel per dtype serves every
optimizer: the rule code, the hyperparameter tuple and the per-step coefficients are arguments. ``n_slots`` says
how many state arrays the rule uses; only those are read and written (unused slots may be length-1 placeholders),
so Adam reads four arrays and writes three, the least traffic its update allows. The hyperparameters and the
per-step coefficients are passed in the arrays' type (one signature per dtype), so float32 steps compute in
float32 like PyTorch's. Both count the updated parameters that are NaN or infinite (a step that overflowed): the
CPU kernel returns the count, the GPU kernel adds it to a one-element array. On the CPU the step's loop only ORs a
flag in registers (no memory traffic, full SIMD width) and a chunk whose flag is set is counted by a second read.

:func:`count_nonfinite_cpu` and the kernel of :func:`count_nonfinite_gpu` detect non-finite gradients before a
step, so that a step with a NaN or inf gradient can be refused or skipped before any state is touched.
"""

import math

import numpy as np
from numba import njit, prange, types

from .. import config
from ..rules import optimizers as rules
from .registry import CUDA_NOT_IMPORTED, gpu_kernel
from .targets import for_cpu, for_gpu

#: ``numba.cuda``, imported when the first CUDA kernel of this module is built (:mod:`testbed.kernels.registry`)
cuda = CUDA_NOT_IMPORTED

#: Options of the CPU optimizer kernels: NumPy's error model (a division by zero gives inf or NaN, as on the GPU,
#: instead of raising), which also lets LLVM vectorise the loops (Python's model puts a zero test before every
#: division).
OPTIM_KERNEL_OPTIONS = dict(config.CPU_KERNEL_OPTIONS, error_model="numpy")

# ``update`` is inlined at Numba's level (it calls no other rule, so it is compiled here directly): in the Adam loop
# the rule code is a constant, so LLVM keeps only Adam's branch and vectorises the loop. (Calling the compiled twin
# from ``targets.for_cpu`` instead passes the hyperparameter tuple through memory on every call: ten times slower.)
_update_inline = njit(inline="always", error_model="numpy")(rules.update)


@njit(inline="always", error_model="numpy")
def _nonfinite(x, zero):
    """True if ``x`` is NaN or infinite: ``x - x`` is NaN for both and 0 otherwise. Branch-free, so a loop that ORs
    it vectorises at the loop's full width (an int64 count in the loop halved it: measured); the kernels use no
    fast-math flags, so LLVM keeps ``x - x``."""
    return (x - x) != zero


@njit(inline="always", error_model="numpy")
def _count_nonfinite_after(w, any_bad, zero):
    """The number of NaN or infinite entries of the (chunk) view ``w``, counted only when the step's loop found one
    (``any_bad``): a second read of a chunk that overflowed, none for the others."""
    count = 0
    if any_bad:
        for i in range(w.size):
            count += np.int64(_nonfinite(w[i], zero))
    return count


@njit(inline="always", error_model="numpy")
def _run_adam(hyper, c0, c1, c2, c3, w, g, m, v):
    """Adam without AMSGrad on every component of these (chunk) views: reads four arrays, writes three; returns
    the number of non-finite updated parameters.

    The loop runs from 0 over views rather than from ``lo`` over the whole arrays: an index of unknown sign makes
    Numba wrap negative indices, which keeps LLVM from vectorising.
    """
    zero = hyper[rules.H_ONE] - hyper[rules.H_ONE]
    any_bad = False
    for i in range(w.size):
        w_new, m[i], v[i], _ = _update_inline(rules.ADAM, hyper, c0, c1, c2, c3, w[i], g[i], m[i], v[i], zero)
        w[i] = w_new
        any_bad |= _nonfinite(w_new, zero)
    return _count_nonfinite_after(w, any_bad, zero)


#: The loop body shared with the CUDA twin, inlined at Numba's level with ``update`` inlined into it.
_update_component_inline = for_cpu(rules.update_component, error_model="numpy", inline=True)


@njit(inline="always", error_model="numpy")
def _run_chunk(code, n_slots, hyper, c0, c1, c2, c3, w, g, s0, s1, s2):
    """Every component of these (chunk) views; reads and writes only the first ``n_slots`` state arrays. Returns the
    number of non-finite updated parameters."""
    zero = hyper[rules.H_ONE] - hyper[rules.H_ONE]
    any_bad = False
    for i in range(w.size):
        any_bad |= _nonfinite(_update_component_inline(code, n_slots, hyper, c0, c1, c2, c3, w, g, s0, s1, s2, i), zero)
    return _count_nonfinite_after(w, any_bad, zero)


@njit(parallel=True, **OPTIM_KERNEL_OPTIONS)
def step_cpu(code, hyper, c0, c1, c2, c3, w, g, s0, s1, s2, n_slots, chunk):
    """w, s0, s1, s2 <- update(code, hyper, c0..c3, w, g, s0, s1, s2) componentwise, in place; returns the number
    of updated parameters that are NaN or infinite.

    ``hyper`` and ``c0..c3`` have the arrays' type, so a float32 step computes in float32. Threads take chunks of
    ``chunk`` components. Adam without AMSGrad (the benchmarked case) runs a loop compiled for its code and two
    slots, which LLVM vectorises; every other rule runs the generic loop (one pass over memory all the same).
    """
    n = w.size
    bad = 0
    for block in prange((n + chunk - 1) // chunk):
        lo = block * chunk
        hi = min(lo + chunk, n)
        # placeholder slots (length 1) give empty or short views, which the loop never touches
        w_, g_, s0_, s1_, s2_ = w[lo:hi], g[lo:hi], s0[lo:hi], s1[lo:hi], s2[lo:hi]
        if code == rules.ADAM and n_slots == 2:
            bad += _run_adam(hyper, c0, c1, c2, c3, w_, g_, s0_, s1_)
        else:
            bad += _run_chunk(code, n_slots, hyper, c0, c1, c2, c3, w_, g_, s0_, s1_, s2_)
    return bad


@njit(parallel=True, **config.CPU_KERNEL_OPTIONS)
def count_nonfinite_cpu(g):
    """The number of NaN or infinite entries of ``g``: those where ``g - g`` (NaN for inf and NaN) is not 0.

    Written without branches or fast-math (reassociation would fold ``g - g`` away), so LLVM vectorises the integer
    count and the check costs one read of ``g`` at memory speed.
    """
    count = 0
    for i in prange(g.size):
        count += np.int64((g[i] - g[i]) != 0.0)
    return count


def _step_signatures():
    return [
        (types.int64, types.UniTuple(dtype, rules.HYPER_SIZE), dtype, dtype, dtype, dtype)
        + (types.Array(dtype, 1, "C"),) * 5
        + (types.int64, types.Array(types.int64, 1, "C"))
        for dtype in (types.float32, types.float64)
    ]


@gpu_kernel(_step_signatures)
def step_gpu():
    """The CUDA twin of :func:`step_cpu` (a grid-stride loop), built on first use: ``count[0] +=`` the number of
    non-finite updated parameters (``count`` zeroed by the caller; one atomic add per thread that found any)."""
    update_component = for_gpu(rules.update_component)

    @cuda.jit
    def kernel(code, hyper, c0, c1, c2, c3, w, g, s0, s1, s2, n_slots, count):
        start, stride = cuda.grid(1), cuda.gridsize(1)
        local = 0
        for i in range(start, w.size, stride):
            if not math.isfinite(update_component(code, n_slots, hyper, c0, c1, c2, c3, w, g, s0, s1, s2, i)):
                local += 1
        if local > 0:
            cuda.atomic.add(count, 0, local)

    return kernel


def _count_signatures():
    return [(types.Array(dtype, 1, "C"), types.Array(types.int64, 1, "C")) for dtype in (types.float32, types.float64)]


@gpu_kernel(_count_signatures)
def count_nonfinite_gpu():
    """CUDA kernel: ``count[0] +=`` the number of NaN or infinite entries of ``g`` (``count`` zeroed by the caller)."""

    @cuda.jit
    def kernel(g, count):
        start, stride = cuda.grid(1), cuda.gridsize(1)
        local = 0
        for i in range(start, g.size, stride):
            if not math.isfinite(g[i]):
                local += 1
        if local > 0:
            cuda.atomic.add(count, 0, local)

    return kernel
