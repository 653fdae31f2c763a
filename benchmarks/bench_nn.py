"""MLP passes with statistics against the bare matmul chain (NumPy/BLAS) on the same shapes, on the CPU.

    python benchmarks/bench_nn.py [--depth 20] [--width 1024] [--batch 2048] [--repeats 3]

Forward: ``MLP.forward(x, keep=False)`` (BLAS product, then one fused pass applying the activation and gathering
every per-layer statistic) against ``np.dot(x, W.T, out=s)`` layer after layer. Backward: ``MLP.backward`` (two
products per layer, the derivative, the statistics of delta and of the weight gradients) against the two bare
products per layer, ``np.dot(delta, W, out)`` and ``np.dot(delta.T, x, out)``. float32, best of ``--repeats``
interleaved rounds, the order rotated and a pause before each turn (:func:`best_of`; the machine is shared: the
best run is the least disturbed one). The goal is a ratio <= 1.15.

Propagate: ``nn.propagate`` as a user calls it (drawing the weights, both passes with every statistic) against
the NumPy chain of its three products per layer (goal <= 1.2, issue 14). No environment variable is set here:
the library's own default (OpenMP's passive wait policy, set by ``import testbed``) is what is measured.
``propagate`` keeps the arrays of its last run for the next run of the same shape, as the chain keeps its buffers
(best of ``--repeats``); the first call of a shape, on new arrays, is printed as well. Beside the wall-clock ratio
(the goal's) the ratio of process CPU time (all threads) is printed, the steadier of the two on a loaded machine.
"""

import argparse
import os
import time

import numpy as np

from testbed import nn, rng

#: Pause before each turn. OpenBLAS's idle threads spin for about 0.1 s after a product before they sleep (2^28
#: cycles), NumPy's pool and the one that Numba's ``np.dot`` loads alike: without the pause, whoever runs next
#: finds a core taken (``bench_train.py``'s protocol, which measured it).
SETTLE_SECONDS = 0.2


def best_of(contenders, repeats):
    """Best (wall, process CPU) seconds of each contender over ``repeats`` rounds, one call each per round.

    ``bench_train.py``'s protocol: a pause of SETTLE_SECONDS before each turn, and each round starts one contender
    further on, so that none always follows the same one (a contender's spinning threads, or its data evicting the
    next one's from the caches, would otherwise fall on the same neighbour every round). The best is the least
    disturbed run on a shared machine; wall and CPU are each the best of their own. Unlike ``bench_train.py`` no
    untimed call precedes a turn: a call here takes a second, against the milliseconds its threads take to wake.
    """
    best = {name: (float("inf"), float("inf")) for name in contenders}
    order = list(contenders.items())
    for round_ in range(repeats):
        shift = round_ % len(order)
        for name, function in order[shift:] + order[:shift]:
            time.sleep(SETTLE_SECONDS)
            wall, cpu = time.perf_counter(), time.process_time()
            function()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def best_times(first, second, repeats):
    """Best wall-clock times of two contenders (:func:`best_of`)."""
    best = best_of({"first": first, "second": second}, repeats)
    return best["first"][0], best["second"][0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--activations", default="relu,tanh")
    args = parser.parse_args(argv)
    dtype = np.float32
    widths = (args.width,) * (args.depth + 1)
    x = rng.normal((args.batch, args.width), seed=1, dtype=dtype)
    r = rng.normal((args.batch, args.width), seed=2, dtype=dtype)

    net = nn.MLP(widths, "relu", dtype=dtype).initialize("he_normal", seed=3)
    weights = [net.weights(l) for l in range(1, args.depth + 1)]
    buffers = [np.empty((args.batch, args.width), dtype=dtype) for _ in range(2)]
    kept = [x] + [
        np.abs(rng.normal((args.batch, args.width), seed=4, step=l, dtype=dtype)) * 0.1 for l in range(1, args.depth)
    ]
    weight_grad = np.empty((args.width, args.width), dtype=dtype)

    def bare_forward():
        previous = x
        for l, w in enumerate(weights):
            out = buffers[l % 2]
            np.dot(previous, w.T, out=out)
            previous = out

    def bare_backward():
        delta = r
        for l in range(args.depth, 0, -1):
            np.dot(delta.T, kept[l - 1], out=weight_grad)
            if l > 1:
                out = buffers[l % 2]
                np.dot(delta, weights[l - 1], out=out)
                delta = out

    print(
        f"depth {args.depth}, width {args.width}, batch {args.batch}, float32, best of {args.repeats}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')} "
        "(as set by the library unless the caller set them)"
    )
    bare_forward(), bare_backward()
    for name in args.activations.split(","):
        model = nn.MLP(widths, name, dtype=dtype)
        model.params[...] = net.params
        model.forward(x[:64], keep=True)  # compile
        model.backward(r[:64])
        base_f, fused_f = best_times(bare_forward, lambda: model.forward(x, keep=False), args.repeats)
        model.forward(x, keep=True)
        base_b, fused_b = best_times(bare_backward, lambda: model.backward(r), args.repeats)
        for kind, bare, fused in (("forward ", base_f, fused_f), ("backward", base_b, fused_b)):
            print(f"{name:6s} {kind}: bare {bare:7.3f} s  with statistics {fused:7.3f} s  ratio {fused / bare:5.3f}")

    def bare_chain():
        bare_forward()
        bare_backward()

    for name in args.activations.split(","):
        nn.propagate("he_normal", name, 2, 32, batch=16, dtype=dtype)  # compile

        def run_propagate():
            nn.propagate("he_normal", name, args.depth, args.width, batch=args.batch, dtype=dtype, seed=3)

        nn.release_workspace()
        start = time.perf_counter()
        run_propagate()
        first = time.perf_counter() - start
        best = best_of({"chain": bare_chain, "propagate": run_propagate}, args.repeats)
        (bare, bare_cpu), (fused, fused_cpu) = best["chain"], best["propagate"]
        print(
            f"{name:6s} propagate: bare chain {bare:7.3f} s  propagate {fused:7.3f} s  ratio {fused / bare:5.3f}  "
            f"(process CPU: {bare_cpu:7.3f} s, {fused_cpu:7.3f} s, ratio {fused_cpu / bare_cpu:5.3f})"
        )
        print(f"{name:6s} propagate, first call of the shape (new arrays): {first:7.3f} s  ratio {first / bare:5.3f}")


if __name__ == "__main__":
    main()
