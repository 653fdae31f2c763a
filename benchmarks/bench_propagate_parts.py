"""Where ``nn.propagate``'s time goes, against the bare chain of its products (``bench_nn.py``'s chain).

    python benchmarks/bench_propagate_parts.py [--activations relu,tanh] [--repeats 4]

Depth 20, width 1024, batch 2048, float32 (``bench_nn.py``'s defaults). ``propagate``'s parts are timed by
wrapping, for the length of this script, the functions it calls: ``MLP.initialize`` (drawing the weights),
``MLP.forward``, ``MLP.backward`` (each with its products and statistics), the draws of the inputs and the output
gradient, and ``array_moments`` (the weights' variances). Wall and process CPU time (all threads) of the best of
``--repeats`` runs, interleaved with the chain's, and each as a share of the chain's.
"""

import argparse
import collections
import os
import time

import numpy as np

from testbed import nn, rng
from testbed.nn import experiments, mlp

DEPTH, WIDTH, BATCH = 20, 1024, 2048


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activations", default="relu,tanh")
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args(argv)
    spent = collections.defaultdict(lambda: [0.0, 0.0])

    def timed(name, function):
        def wrapper(*a, **k):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*a, **k)
            finally:
                spent[name][0] += time.perf_counter() - wall
                spent[name][1] += time.process_time() - cpu

        return wrapper

    mlp.MLP.initialize = timed("weights", mlp.MLP.initialize)
    mlp.MLP.forward = timed("forward", mlp.MLP.forward)
    mlp.MLP.backward = timed("backward", mlp.MLP.backward)
    experiments._standard_normal = timed("inputs and output gradient", experiments._standard_normal)
    experiments.array_moments = timed("moments", experiments.array_moments)

    dtype = np.float32
    x = rng.normal((BATCH, WIDTH), seed=1, dtype=dtype)
    r = rng.normal((BATCH, WIDTH), seed=2, dtype=dtype)
    net = nn.MLP((WIDTH,) * (DEPTH + 1), "relu", dtype=dtype).initialize("he_normal", seed=3)
    weights = [net.weights(l) for l in range(1, DEPTH + 1)]
    buffers = [np.empty((BATCH, WIDTH), dtype=dtype) for _ in range(2)]
    kept = [x] + [np.abs(rng.normal((BATCH, WIDTH), seed=4, step=l, dtype=dtype)) * 0.1 for l in range(1, DEPTH)]
    weight_grad = np.empty((WIDTH, WIDTH), dtype=dtype)

    def chain():  # bench_nn.py's bare chain: 20 forward products, 20 weight gradients, 19 deltas
        previous = x
        for l, w in enumerate(weights):
            np.dot(previous, w.T, out=buffers[l % 2])
            previous = buffers[l % 2]
        delta = r
        for l in range(DEPTH, 0, -1):
            np.dot(delta.T, kept[l - 1], out=weight_grad)
            if l > 1:
                np.dot(delta, weights[l - 1], out=buffers[l % 2])
                delta = buffers[l % 2]

    print(os.popen("uptime").read().strip())
    for name in args.activations.split(","):

        def run():
            nn.propagate("he_normal", name, DEPTH, WIDTH, batch=BATCH, dtype=dtype, seed=3)

        nn.propagate("he_normal", name, 2, 32, batch=16, dtype=dtype)  # compile
        run(), chain()
        best = {}
        for _ in range(args.repeats):
            for side, function in (("chain", chain), ("propagate", run)):
                spent.clear()
                wall, cpu = time.perf_counter(), time.process_time()
                function()
                total = (time.perf_counter() - wall, time.process_time() - cpu)
                if side not in best or total[0] < best[side][side][0]:
                    best[side] = {side: total, **({k: tuple(v) for k, v in spent.items()} if side != "chain" else {})}
        base = best["chain"]["chain"]
        print(f"{name}: chain {base[0] * 1e3:.0f} ms wall, {base[1] * 1e3:.0f} ms CPU")
        for part, (wall, cpu) in best["propagate"].items():
            print(
                f"  {part:27s} wall {wall * 1e3:7.1f} ms ({wall / base[0]:.3f})  "
                f"CPU {cpu * 1e3:7.1f} ms ({cpu / base[1]:.3f})"
            )
    print(os.popen("uptime").read().strip())


if __name__ == "__main__":
    main()
