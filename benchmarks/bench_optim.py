"""Fused Adam step against the memory-traffic limit and against NumPy, on 10 million float32 parameters.

    python benchmarks/bench_optim.py [--n 10000000] [--repeats 30] [--threads T] [--gpu]

An Adam step must read w, g, m, v and write w, m, v: 28 bytes per float32 parameter. The baseline is a Numba kernel
with exactly that traffic and trivial arithmetic (the speed limit of any one-pass update), measured in the same run.
Printed: the best time of each contender over ``--repeats`` interleaved rounds (the machine is shared: the best is
the least disturbed), its bandwidth, and the ratios the issue asks for: fused Adam / same-traffic kernel (target
>= 0.9 of its speed) and fused Adam against an in-place NumPy Adam (target >= 4x). PyTorch's ``Adam(fused=True)``
on the CPU is printed beside them when torch is importable. ``--gpu`` also times the CUDA kernel on device arrays
(needs a GPU).
"""

import argparse
import math
import time

import numba
import numpy as np
from numba import njit, prange

from testbed import config, optim
from testbed.kernels import optim as kernels
from testbed.rules import optimizers as rules

BYTES_PER_PARAMETER = 7 * 4  # float32: read w, g, m, v; write w, m, v


@njit(parallel=True, **config.CPU_KERNEL_OPTIONS)
def same_traffic(w, g, m, v, a, b):
    """Reads w, g, m, v and writes w, m, v with trivial arithmetic: the memory-traffic floor of an Adam step."""
    for i in prange(w.size):
        gi = g[i]
        mi = a * m[i] + gi
        vi = b * v[i] + gi
        m[i] = mi
        v[i] = vi
        w[i] = w[i] + mi - vi


class NumpyAdam:
    """Adam in place with NumPy (one scratch array, every operation with ``out=``): PyTorch's single-tensor form."""

    def __init__(self, n, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.tmp = np.empty(n, np.float32)

    def step(self, w, g, m, v):
        self.t += 1
        b1, b2, tmp = self.b1, self.b2, self.tmp
        m *= b1
        np.multiply(g, 1 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp *= 1 / math.sqrt(1 - b2**self.t)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= -self.lr / (1 - b1**self.t)
        w += tmp


def torch_fused_adam(n):
    """A closure stepping torch's fused CPU Adam on n float32 parameters, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    w = torch.zeros(n, dtype=torch.float32, requires_grad=True)
    w.grad = torch.randn(n, dtype=torch.float32)
    try:
        opt = torch.optim.Adam([w], lr=1e-3, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return None
    return opt.step


def best_times(contenders, repeats):
    """The best and the median wall time of each contender over interleaved rounds (after a warm-up call each)."""
    for fn in contenders.values():
        fn()
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}, {name: float(np.median(t)) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000_000, help="number of float32 parameters")
    parser.add_argument("--repeats", type=int, default=30, help="interleaved timing rounds")
    parser.add_argument("--gpu", action="store_true", help="also time the CUDA kernel on device arrays")
    parser.add_argument("--threads", type=int, default=None, help="Numba threads (default: all)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        numba.set_num_threads(args.threads)
    n = args.n
    rng = np.random.default_rng(0)
    w = rng.standard_normal(n, dtype=np.float32)
    g = rng.standard_normal(n, dtype=np.float32)

    adam = optim.Adam(lr=1e-3)
    state = adam.init(w)
    spec = adam.rule_spec()
    hyper32 = spec.hyper_as(np.float32)
    coefficients = tuple(np.float32(c) for c in rules.prepare(spec.code, spec.hyper, 10, spec.lr))
    m, v, placeholder = state.slots
    w2, m2, v2 = w.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
    w3, m3, v3 = w.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
    numpy_adam = NumpyAdam(n)
    half = np.float32(0.5)

    contenders = {
        "same-traffic kernel": lambda: same_traffic(w2, g, m2, v2, half, half),
        "fused Adam kernel": lambda: kernels.step_cpu(
            spec.code, hyper32, *coefficients, w, g, m, v, placeholder, 2, optim.CPU_CHUNK
        ),
        "Adam.step (with NaN check)": lambda: adam.step(w, g, state),
        "NumPy in-place Adam": lambda: numpy_adam.step(w3, g, m3, v3),
    }
    torch_step = torch_fused_adam(n)
    if torch_step is not None:
        contenders["torch Adam(fused=True)"] = torch_step
    best, median = best_times(contenders, args.repeats)

    print(
        f"Adam step on {n:,} float32 parameters, {numba.get_num_threads()} threads, {args.repeats} interleaved "
        "rounds: best (median)"
    )
    for name in contenders:
        print(
            f"  {name:28s} {best[name] * 1e3:8.2f} ms ({median[name] * 1e3:8.2f})   "
            f"{BYTES_PER_PARAMETER * n / best[name] / 1e9:6.1f} GB/s"
        )
    for label, times in (("best", best), ("median", median)):
        fused = times["fused Adam kernel"]
        print(
            f"[{label}] fused Adam kernel / same-traffic kernel speed: {times['same-traffic kernel'] / fused:.2f} "
            f"(target >= 0.90); Adam.step with the NaN check: "
            f"{times['same-traffic kernel'] / times['Adam.step (with NaN check)']:.2f}; "
            f"vs NumPy in-place Adam: {times['NumPy in-place Adam'] / fused:.1f}x (target >= 4x)"
            + (
                f"; vs torch Adam(fused=True): {times['torch Adam(fused=True)'] / fused:.2f}x"
                if torch_step is not None
                else ""
            )
        )
    if torch_step is None:
        print("torch is not installed: no torch Adam(fused=True) comparison")

    if args.gpu:
        from numba import cuda

        from testbed import backend

        if not backend.gpu_available():
            print("no CUDA GPU: skipping --gpu")
            return
        gpu_adam = optim.Adam(lr=1e-3, backend="cuda")
        dw, dg = cuda.to_device(w), cuda.to_device(g)
        gpu_state = gpu_adam.init(dw)

        def gpu_step():
            gpu_adam.step(dw, dg, gpu_state)
            cuda.synchronize()

        count = cuda.to_device(np.zeros(1, dtype=np.int64))

        def gpu_kernel_only():
            blocks, threads = backend.launch_shape(n)
            kernels.step_gpu()[blocks, threads](spec.code, hyper32, *coefficients, dw, dg, *gpu_state.slots, 2, count)
            cuda.synchronize()

        gpu_best, gpu_median = best_times(
            {"CUDA Adam kernel": gpu_kernel_only, "CUDA Adam.step": gpu_step}, args.repeats
        )
        for name, seconds in gpu_best.items():
            print(
                f"  {name:28s} {seconds * 1e3:8.3f} ms ({gpu_median[name] * 1e3:8.3f})   "
                f"{BYTES_PER_PARAMETER * n / seconds / 1e9:6.1f} GB/s"
            )


if __name__ == "__main__":
    main()
