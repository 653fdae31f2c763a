"""Jacobian spectra against the bare BLAS products they need, on the CPU.

    python benchmarks/bench_spectra.py [--depth 128] [--width 512] [--inputs 16] [--repeats 2]

Times ``spectra.jacobian_singular_values`` (weights drawn, forward pass, the product J = D_L W_L ... D_1 W_1 per
input, its SVD) for an orthogonal tanh net at the critical point with q* = 1/64 (phi' never 0: every product is
dense, the worst case) and an orthogonal ReLU net (phi' = 0 on about half of each layer's units, whose rows the
product drops). Beside them, measured in the same run and interleaved: the bare products the dense computation
needs, (L - 1) x inputs ``np.dot`` of (width x width) matrices into a preallocated output; LAPACK's SVD of
``inputs`` (width x width) matrices; and drawing the weights alone (``MLP.initialize``). Float64, best of
``--repeats``. Set ``OPENBLAS_NUM_THREADS=1`` on a loaded machine: OpenBLAS's threads otherwise oversubscribe
the cores and small factorisations (the orthogonal initialiser's QR) slow down tens of times. The goal of issue
12: depth 128, width 512, 16 inputs in under 5 s on 2 cores.
"""

import argparse
import math
import os
import time

import numpy as np

from testbed import nn, spectra
from testbed.theory import spectra as theory

Q_STAR = 1.0 / 64.0


def cases(width):
    sigma_w2, sigma_b2 = theory.critical_point("tanh", Q_STAR)
    input_var = theory.fixed_point_input_var("tanh", Q_STAR, sigma_w2, sigma_b2)
    return {
        "tanh (dense)": dict(
            init="orthogonal", activation="tanh", input_var=input_var, bias_var=sigma_b2, gain=math.sqrt(sigma_w2)
        ),
        "relu (rows dropped)": dict(init="orthogonal", activation="relu", gain=math.sqrt(2.0)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=128)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--inputs", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    n, depth, inputs = args.width, args.depth, args.inputs
    generator = np.random.default_rng(0)
    a, b = generator.standard_normal((n, n)), generator.standard_normal((n, n))
    out = np.empty((n, n))

    def bare_products():
        for _ in range((depth - 1) * inputs):
            np.dot(a, b, out=out)

    def bare_svds():
        for _ in range(inputs):
            np.linalg.svd(b, compute_uv=False)

    runs = {
        name: (
            lambda kwargs=kwargs: spectra.jacobian_singular_values(
                kwargs["init"],
                kwargs["activation"],
                depth,
                n,
                batch=inputs,
                seed=1,
                **{k: v for k, v in kwargs.items() if k not in ("init", "activation")},
            )
        )
        for name, kwargs in cases(n).items()
    }

    def init_only():
        nn.MLP((n,) * (depth + 1), "tanh").initialize("orthogonal", seed=1)

    for _ in runs:  # compile and warm up on a small net
        spectra.jacobian_singular_values("orthogonal", "tanh", 2, 8, batch=2)
    best = {}
    for _ in range(args.repeats):
        for name, function in [
            ("bare products", bare_products),
            ("bare SVDs", bare_svds),
            ("weights only", init_only),
            *runs.items(),
        ]:
            start = time.perf_counter()
            function()
            best[name] = min(best.get(name, math.inf), time.perf_counter() - start)
    flops = 2.0 * n**3 * (depth - 1) * inputs
    print(
        f"depth {depth}, width {n}, {inputs} inputs, float64, best of {args.repeats}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"  bare products ({(depth - 1) * inputs} np.dot {n}x{n}): {best['bare products']:.2f} s "
        f"({flops / best['bare products'] / 1e9:.1f} GFLOP/s)"
    )
    print(f"  bare SVDs ({inputs} of {n}x{n}):              {best['bare SVDs']:.2f} s")
    print(f"  drawing the weights (MLP.initialize):     {best['weights only']:.2f} s")
    floor = best["bare products"] + best["bare SVDs"]
    for name in runs:
        rest = best[name] - best["weights only"]
        print(
            f"  jacobian_singular_values, {name}: {best[name]:.2f} s = {best[name] / best['bare products']:.2f}x "
            f"the bare products, {best[name] / floor:.2f}x products + SVDs; without drawing the weights "
            f"{rest:.2f} s = {rest / best['bare products']:.2f}x the bare products"
        )


if __name__ == "__main__":
    main()
