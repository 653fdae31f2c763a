"""Where ``nn.propagate``'s time goes, phase by phase, against the NumPy chain of its products (``bench_nn.py``'s).

    python benchmarks/bench_propagate_parts.py [--activations relu,tanh] [--repeats 4] [--parts]

Depth 20, width 1024, batch 2048, float32 (``bench_nn.py``'s defaults), both activations in one process. Each
contender below is timed alone, in wall and process CPU time (all threads), best of ``--repeats`` interleaved
rounds with the order rotated and a pause before each turn (``bench_nn.best_of``):

- ``chain forward`` / ``chain backward``: NumPy's 20 forward products, then the 20 weight gradients and 19 deltas;
- ``products forward`` / ``products backward``: the same products through ``np.dot`` inside ``@njit`` (the BLAS
  that the passes call, SciPy's ``scipy_openblas32``, with its own thread pool), on arrays of propagate's sizes;
- ``products forward, parts`` / ``products backward, side by side``: the same products as the passes run them
  since the tenth session (rows in parts, or a layer's two products side by side, one BLAS thread each);
- ``weights``: ``MLP.initialize("he_normal")`` (20 x 1M float32 Philox normals);
- ``forward`` / ``backward``: ``MLP.forward(x, keep=True)`` and ``MLP.backward(r)`` as ``propagate`` calls them
  (the net's kept arrays written over, as in a repeated ``propagate``; the backward pass gathering the weights'
  moments on the way, as ``propagate``'s does since the eleventh session);
- ``propagate``: the whole call.

Phases (printed as shares of the chain): weights; forward products (``--parts``: as the passes run them since the
tenth session, else on BLAS's pool as the tree before it did); forward elementwise and statistics
(``forward`` less its products); backward products; backward elementwise and statistics (``backward`` less its
products); the rest of ``propagate`` (the inputs' and output gradient's draws and moments, Python). A
difference of two best times is a rough estimate: each side is the least disturbed of its runs.
"""

import argparse
import os

import numba
import numpy as np
from bench_nn import best_of
from numba import njit, prange

from testbed import nn, rng
from testbed.kernels.nn import BACKWARD_SLOTS
from testbed.train import blas_threads

DEPTH, WIDTH, BATCH = 20, 1024, 2048


@njit(nogil=True)
def _forward_products(weights, post, pre):
    for l in range(weights.shape[0]):
        np.dot(post[l], weights[l].T, pre[l])


@njit(nogil=True)
def _backward_products(weights, post, weight_grads, deltas):
    depth = weights.shape[0]
    for l in range(depth, 0, -1):
        delta = deltas[l % 2]
        np.dot(delta.T, post[l - 1], weight_grads[l - 1])
        if l > 1:
            np.dot(delta, weights[l - 1], deltas[(l - 1) % 2])


@njit(nogil=True, parallel=True)
def _forward_products_in_parts(weights, post, pre, parts):
    """The forward products as ``forward_layer_cpu`` runs them since the tenth session: rows in parts, one thread
    and one BLAS thread each (the caller holds BLAS to one thread)."""
    batch = pre.shape[1]
    for l in range(weights.shape[0]):
        for part in prange(parts):
            first, last = part * batch // parts, (part + 1) * batch // parts
            np.dot(post[l, first:last], weights[l].T, pre[l, first:last])


@njit(nogil=True, parallel=True)
def _backward_products_side_by_side(weights, post, weight_grads, deltas):
    """The backward products as ``backward_tasks_cpu`` runs them: a layer's two products on two threads."""
    depth = weights.shape[0]
    for l in range(depth, 0, -1):
        for task in prange(2):
            if task == 0:
                np.dot(deltas[l % 2].T, post[l - 1], weight_grads[l - 1])
            elif l > 1:
                np.dot(deltas[l % 2], weights[l - 1], deltas[(l - 1) % 2])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activations", default="relu,tanh")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument(
        "--parts",
        action="store_true",
        help="subtract the products as the tenth session's kernels run them (in parts, one BLAS thread each)",
    )
    args = parser.parse_args(argv)
    dtype = np.float32
    widths = (WIDTH,) * (DEPTH + 1)
    x = rng.normal((BATCH, WIDTH), seed=1, dtype=dtype)
    r = rng.normal((BATCH, WIDTH), seed=2, dtype=dtype)
    reference = nn.MLP(widths, "relu", dtype=dtype).initialize("he_normal", seed=3)
    weights = reference.params.reshape(DEPTH, WIDTH, WIDTH)
    chain_buffers = [np.empty((BATCH, WIDTH), dtype=dtype) for _ in range(2)]
    kept = np.abs(rng.normal((DEPTH, BATCH, WIDTH), seed=4, dtype=dtype)) * 0.1
    kept[0] = x
    weight_grad = np.empty((WIDTH, WIDTH), dtype=dtype)
    pre = np.empty((DEPTH, BATCH, WIDTH), dtype=dtype)
    weight_grads = np.empty((DEPTH, WIDTH, WIDTH), dtype=dtype)
    deltas = np.empty((2, BATCH, WIDTH), dtype=dtype)
    deltas[DEPTH % 2] = r

    def chain_forward():
        previous = x
        for l in range(DEPTH):
            np.dot(previous, weights[l].T, out=chain_buffers[l % 2])
            previous = chain_buffers[l % 2]

    def chain_backward():
        delta = r
        for l in range(DEPTH, 0, -1):
            np.dot(delta.T, kept[l - 1], out=weight_grad)
            if l > 1:
                np.dot(delta, weights[l - 1], out=chain_buffers[l % 2])
                delta = chain_buffers[l % 2]

    contenders = {
        "chain forward": chain_forward,
        "chain backward": chain_backward,
        "products forward": lambda: _forward_products(weights, kept, pre),
        "products backward": lambda: _backward_products(weights, kept, weight_grads, deltas),
    }

    def one_blas_thread(function):
        def run():
            with blas_threads(1):
                function()

        return run

    threads = numba.get_num_threads()
    contenders["products forward, parts"] = one_blas_thread(
        lambda: _forward_products_in_parts(weights, kept, pre, threads)
    )
    contenders["products backward, side by side"] = one_blas_thread(
        lambda: _backward_products_side_by_side(weights, kept, weight_grads, deltas)
    )
    print(os.popen("uptime").read().strip())
    for name in args.activations.split(","):
        nn.propagate("he_normal", name, 2, 32, batch=16, dtype=dtype)  # compile
        net = nn.MLP(widths, name, dtype=dtype)
        net._recycle_kept = True  # as propagate's own net: the kept arrays are written over
        net.initialize("he_normal", seed=3)
        net.forward(x, keep=True)
        net.backward(r)
        contenders.update(
            {
                f"{name} weights": lambda net=net: net.initialize("he_normal", seed=3),
                f"{name} forward": lambda net=net: net.forward(x, keep=True),
                f"{name} backward": lambda net=net: net.backward(r, _weight_sums=np.zeros((DEPTH, BACKWARD_SLOTS))),
                f"{name} propagate": lambda name=name: nn.propagate(
                    "he_normal", name, DEPTH, WIDTH, batch=BATCH, dtype=dtype, seed=3
                ),
            }
        )
    for function in contenders.values():
        function()
    best = best_of(contenders, args.repeats)
    print(os.popen("uptime").read().strip())
    print(f"best of {args.repeats}, wall / process CPU in ms")
    for key, (wall, cpu) in best.items():
        print(f"  {key:24s} {wall * 1e3:8.1f} {cpu * 1e3:8.1f}")
    chain = [best["chain forward"][k] + best["chain backward"][k] for k in range(2)]
    print(f"chain (forward + backward): {chain[0] * 1e3:.0f} ms wall, {chain[1] * 1e3:.0f} ms CPU")
    scheme = " in parts" if args.parts else ""
    forward_products = best["products forward, parts" if args.parts else "products forward"]
    backward_products = best["products backward, side by side" if args.parts else "products backward"]
    for name in args.activations.split(","):
        parts = {
            "weights": best[f"{name} weights"],
            f"forward products{scheme}": forward_products,
            "forward elementwise": tuple(a - b for a, b in zip(best[f"{name} forward"], forward_products)),
            f"backward products{scheme}": backward_products,
            "backward elementwise": tuple(a - b for a, b in zip(best[f"{name} backward"], backward_products)),
        }
        known = [sum(best[f"{name} {k}"][i] for k in ("weights", "forward", "backward")) for i in range(2)]
        parts["rest"] = tuple(best[f"{name} propagate"][i] - known[i] for i in range(2))
        parts["propagate"] = best[f"{name} propagate"]
        print(f"{name}: share of the chain, wall / CPU")
        for part, (wall, cpu) in parts.items():
            print(
                f"  {part:22s} {wall * 1e3:8.1f} ms ({wall / chain[0]:.3f})  {cpu * 1e3:8.1f} ms ({cpu / chain[1]:.3f})"
            )
        for side in ("forward", "backward"):
            print(
                f"  {side} chain: {best[f'chain {side}'][0] * 1e3:.1f} ms ({best[f'chain {side}'][0] / chain[0]:.3f}) "
                f"{best[f'chain {side}'][1] * 1e3:.1f} ms ({best[f'chain {side}'][1] / chain[1]:.3f})"
            )


if __name__ == "__main__":
    main()
