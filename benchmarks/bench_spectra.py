"""Jacobian spectra against the bare BLAS products they need, on the CPU.

    python benchmarks/bench_spectra.py [--depth 128] [--width 512] [--inputs 16] [--repeats 2]

Times ``spectra.jacobian_singular_values`` (weights drawn, forward pass, the product J = D_L W_L ... D_1 W_1 per
input, its SVD) for an orthogonal tanh net at the critical point with q* = 1/64 (phi' never 0: every product is
dense, the worst case), in float64 and float32, and an orthogonal ReLU net (phi' = 0 on about half of each
layer's units, whose rows the product drops). Beside them, measured in the same run and interleaved, best of
``--repeats``: the bare products the dense computation needs, (L - 1) x inputs ``np.dot`` of (width x width)
matrices into a preallocated output, both one after the other on OpenBLAS's threads and shared out over the
cores one input per core (as ``jacobian_singular_values`` runs them); the ratios are against the faster of the
two. Also LAPACK's SVD of ``inputs`` (width x width) matrices, and drawing the weights alone (``MLP.initialize``,
the layers' QRs one per core) against the same draws one layer after the other. Last, the float32 run's
accuracy against the float64 one (same weights and inputs up to float32 rounding). The goal of issue 12: depth
128, width 512, 16 inputs in under 5 s on 2 cores.
"""

import argparse
import math
import os
import time

import numpy as np

from testbed import concurrency, init, nn, spectra
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
    parser.add_argument(
        "--no-threaded",
        dest="threaded",
        action="store_false",
        help="skip the baselines on OpenBLAS's threads (minutes on a loaded machine, where they oversubscribe)",
    )
    args = parser.parse_args(argv)
    n, depth, inputs = args.width, args.depth, args.inputs
    generator = np.random.default_rng(0)
    operands = {
        dtype: [generator.standard_normal((n, n)).astype(dtype) for _ in range(2)] for dtype in (np.float64, np.float32)
    }

    def products_of_one_input(dtype):
        a, b = operands[dtype]
        out = np.empty((n, n), dtype=dtype)
        for _ in range(depth - 1):
            np.dot(a, b, out=out)

    def bare_products(dtype):  # one after the other, each product on OpenBLAS's threads
        for _ in range(inputs):
            products_of_one_input(dtype)

    def bare_products_per_core(dtype):  # the inputs shared out over the cores, one BLAS thread each
        concurrency.run_on_cores(lambda _: products_of_one_input(dtype), range(inputs))

    def bare_svds(dtype):
        for _ in range(inputs):
            np.linalg.svd(operands[dtype][1], compute_uv=False)

    def run(name, dtype):
        kwargs = cases(n)[name]
        return spectra.jacobian_singular_values(
            kwargs["init"],
            kwargs["activation"],
            depth,
            n,
            batch=inputs,
            seed=1,
            dtype=dtype,
            **{k: v for k, v in kwargs.items() if k not in ("init", "activation")},
        )

    runs = {
        "tanh (dense), float64": lambda: run("tanh (dense)", np.float64),
        "tanh (dense), float32": lambda: run("tanh (dense)", np.float32),
        "relu (rows dropped), float64": lambda: run("relu (rows dropped)", np.float64),
    }

    def init_only():
        nn.MLP((n,) * (depth + 1), "tanh").initialize("orthogonal", seed=1)

    def init_sequential():  # the same weights, one layer after the other on OpenBLAS's threads (as before)
        net = nn.MLP((n,) * (depth + 1), "tanh")
        for l in range(1, depth + 1):
            init.fill(net.weights(l), "orthogonal", n, n, seed=1, stream=nn.weight_stream(l))

    for dtype in (np.float64, np.float32):  # compile and warm up on a small net
        spectra.jacobian_singular_values("orthogonal", "tanh", 2, 8, batch=2, dtype=dtype)
    best, results = {}, {}
    for _ in range(args.repeats):
        threaded = [
            ("bare products float64", lambda: bare_products(np.float64)),
            ("bare products float32", lambda: bare_products(np.float32)),
            ("weights one after the other", init_sequential),
        ]
        for name, function in [
            *(threaded if args.threaded else []),
            ("bare products per core float64", lambda: bare_products_per_core(np.float64)),
            ("bare products per core float32", lambda: bare_products_per_core(np.float32)),
            ("bare SVDs float64", lambda: bare_svds(np.float64)),
            ("bare SVDs float32", lambda: bare_svds(np.float32)),
            ("weights only", init_only),
            *runs.items(),
        ]:
            start = time.perf_counter()
            results[name] = function()
            best[name] = min(best.get(name, math.inf), time.perf_counter() - start)
    flops = 2.0 * n**3 * (depth - 1) * inputs
    print(
        f"depth {depth}, width {n}, {inputs} inputs, best of {args.repeats}, "
        f"{concurrency.cores()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    floor = {}
    for dtype in ("float64", "float32"):
        per_core = best[f"bare products per core {dtype}"]
        sequential = best.get(f"bare products {dtype}", math.nan)
        floor[dtype] = min(sequential, per_core) if args.threaded else per_core
        print(
            f"  bare products {dtype} ({(depth - 1) * inputs} np.dot {n}x{n}): {sequential:.2f} s on BLAS's threads "
            f"({flops / sequential / 1e9:.1f} GFLOP/s), {per_core:.2f} s one input per core "
            f"({flops / per_core / 1e9:.1f} GFLOP/s)"
        )
        print(f"  bare SVDs {dtype} ({inputs} of {n}x{n}): {best[f'bare SVDs {dtype}']:.2f} s")
    print(
        f"  drawing the weights (MLP.initialize): {best['weights only']:.2f} s; "
        f"one layer after the other on BLAS's threads {best.get('weights one after the other', math.nan):.2f} s"
    )
    for name in runs:
        dtype = name.rsplit(" ", 1)[1]
        rest = best[name] - best["weights only"]
        print(
            f"  jacobian_singular_values, {name}: {best[name]:.2f} s = {best[name] / floor[dtype]:.2f}x "
            f"the bare products, {best[name] / (floor[dtype] + best[f'bare SVDs {dtype}']):.2f}x products + SVDs; "
            f"without drawing the weights {rest:.2f} s = {rest / floor[dtype]:.2f}x the bare products"
        )
    exact = results["tanh (dense), float64"].singular_values
    single = results["tanh (dense), float32"].singular_values.astype(np.float64)
    error = np.abs(single - exact).max(axis=1) / exact[:, 0]
    moments = [spectra.Spectra.spectral_moments(v) for v in (exact, single)]
    print(
        f"  float32 against float64 (tanh): largest singular-value error {error.max():.2e} of sigma_max; "
        f"mean of sigma^2 {np.abs(moments[1][0] / moments[0][0] - 1).max():.2e} relative, "
        f"its variance {np.abs(moments[1][1] / moments[0][1] - 1).max():.2e} relative (worst of {inputs} inputs)"
    )


if __name__ == "__main__":
    main()
