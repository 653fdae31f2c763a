"""Hessian-vector products against the gradient, and Lanczos against PyTorch's double backward, on the CPU.

    python benchmarks/bench_curvature.py [--widths 40,1024,896,10] [--batch 256] [--repeats 5] [--iterations 20]
                                         [--threads 2] [--breakdown]

On an MLP of about 1M parameters (tanh, biases, logits, softmax cross-entropy) and one batch of random inputs,
float32 and float64 in the same run, 2 threads by default (Numba, BLAS and PyTorch; ``--threads``):

1. one ``curvature.hvp`` (forward, loss, gradient backward, tangent forward, R-backward; each product cut into
   ``curvature.PRODUCT_PARTS`` parts, as the training step's) against one ``train.loss_and_grad`` (goal: ratio
   <= 2.5); also one product of a ``HessianOperator`` whose forward pass is kept (what each Lanczos step costs),
   and both in one pass on BLAS's own threads (``one pass``, the product before the tenth session);
2. 20 Lanczos steps with full reorthogonalisation (``curvature.lanczos`` on a ``HessianOperator``, its set-up
   included) against the same 20 steps on PyTorch's double-backward products, PyHessian's method (the gradient
   built once with ``create_graph=True``, then ``autograd.grad(grads, params, v, retain_graph=True)`` per step,
   the same Lanczos steps written in torch), when PyTorch is installed (goal: speed-up >= 1.5).

``--breakdown`` adds the bare BLAS calls of the largest layer (the gradient's 3 against the product's 5, the
floor of the ratio in 1.), and splits each Lanczos run into its 20 products alone and its vector work alone (the
same steps on a diagonal matrix).

Best of ``--repeats`` timings, the sides interleaved so that all see the same machine load; wall-clock and
process CPU time (all threads) are both reported, the CPU time being the steadier on a shared machine.

PyTorch is imported before the testbed, so that its own OpenMP runtime (a separate libgomp) reads the caller's
environment: ``import testbed`` sets ``OMP_WAIT_POLICY=PASSIVE`` and a short ``GOMP_SPINCOUNT``, which slow
PyTorch's threads when it comes first (benchmarks/RESULTS.md, eighth session). Numba's OpenMP runtime still starts
under the testbed's default.
"""

import argparse
import time

try:
    import torch
except ImportError:  # PyTorch is optional: only the testbed's own ratio is measured
    torch = None

import numba  # noqa: E402
import numpy as np  # noqa: E402

from testbed import curvature, nn, rng, train  # noqa: E402

THREADS = 2


#: Pause before each timing: OpenBLAS's idle threads spin for about 0.1 s after a product (THREAD_TIMEOUT) and
#: would take a core from the next function (the training step runs its products on Numba's threads, one BLAS
#: thread each, since the ninth session; the spinning pool of the product before it doubled its time).
SETTLE_SECONDS = 0.2


def best_times(functions, repeats):
    """Best of ``repeats`` (wall, CPU) timings of each function, interleaved, the order rotated each round (none
    always runs after the same neighbour), each after a pause and an untimed call (as in a loop of calls, the
    threads are awake)."""
    times = [[] for _ in functions]
    for round_ in range(repeats):
        shift = round_ % len(functions)
        order = list(zip(functions, times))
        for function, record in order[shift:] + order[:shift]:
            time.sleep(SETTLE_SECONDS)
            function()
            start, cpu = time.perf_counter(), time.process_time()
            function()
            record.append((time.perf_counter() - start, time.process_time() - cpu))
    return [tuple(np.min(np.array(t), axis=0)) for t in times]


def show(name, t):
    return f"{name} {t[0] * 1e3:8.1f} ms (cpu {t[1] * 1e3:8.1f} ms)"


def ratio(a, b):
    return f"{a[0] / b[0]:.2f} (cpu {a[1] / b[1]:.2f})"


def torch_hvp(torch, net, x, y):
    """PyHessian's product: the gradient built once with ``create_graph=True``, then one double backward per vector
    (a float64 vector in, a float64 vector out, the products in the net's dtype)."""
    dtype = torch.float32 if net.dtype == np.float32 else torch.float64
    params = [
        torch.tensor(p, dtype=dtype, requires_grad=True)
        for l in range(1, net.depth + 1)
        for p in (net.weights(l).copy(), net.biases(l).copy())
    ]
    h = torch.tensor(x, dtype=dtype)
    for l in range(net.depth):
        h = torch.nn.functional.linear(h, params[2 * l], params[2 * l + 1])
        h = torch.tanh(h) if l < net.depth - 1 else h
    loss = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    grads = torch.autograd.grad(loss, params, create_graph=True)
    sizes = [p.numel() for p in params]

    def product(q):
        pieces = [piece.reshape(p.shape).to(dtype) for piece, p in zip(torch.split(q, sizes), params)]
        hv = torch.autograd.grad(grads, params, pieces, retain_graph=True)
        return torch.cat([g.reshape(-1) for g in hv]).to(torch.float64)

    return product


def torch_lanczos_steps(torch, product, start, iterations):
    """The Lanczos steps of curvature.lanczos written in torch (float64 basis, the same reorthogonalisation)."""
    q = torch.tensor(start, dtype=torch.float64)
    q = q / torch.linalg.norm(q)
    basis = torch.empty((iterations, q.numel()), dtype=torch.float64)
    alpha, beta = [], []
    for j in range(iterations):
        basis[j] = q
        w = product(q)
        a = float(q @ w)
        alpha.append(a)
        w -= a * q
        if j > 0:
            w -= beta[-1] * basis[j - 1]
        for _ in range(2):  # the same reorthogonalisation as curvature.lanczos
            before = torch.linalg.norm(w)
            w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
            b = float(torch.linalg.norm(w))
            if b > curvature.REORTH_DROP * before:
                break
        beta.append(b)
        q = w / b
    return np.array(alpha)


def torch_lanczos(torch, net, x, y, start, iterations):
    """PyHessian's products in a Lanczos loop of the same algorithm as curvature.lanczos (set-up included)."""
    return torch_lanczos_steps(torch, torch_hvp(torch, net, x, y), start, iterations)


@numba.njit(cache=True, nogil=True)
def _products(a, b, out, transpose_a, transpose_b):
    """``out = op(a) op(b)`` through Numba's ``np.dot``, the BLAS (and thread pool) the kernels call."""
    if transpose_a and transpose_b:
        np.dot(a.T, b.T, out)
    elif transpose_a:
        np.dot(a.T, b, out)
    elif transpose_b:
        np.dot(a, b.T, out)
    else:
        np.dot(a, b, out)


def floor(widths, batch, dtype, repeats):
    """The bare BLAS calls of the largest layer (d^(l-1) -> d^(l)): the gradient's 3 (x W^T, delta^T x, delta W)
        and the product's 5 (as in testbed.kernels.curvature: [x; R{x}] W^T, x V^T, [R{delta}; delta]^T [x; R{x}],
        [R{delta}; delta] W, delta V). Returns the (wall, CPU) seconds of the gradient's calls and of the product's,
    and the wall seconds of each of the product's calls."""
    l = int(np.argmax([a * b for a, b in zip(widths[:-1], widths[1:])])) + 1
    fan_in, fan_out = widths[l - 1], widths[l]
    random = np.random.default_rng(0)
    x = random.standard_normal((2 * batch, fan_in)).astype(dtype)
    d = random.standard_normal((2 * batch, fan_out)).astype(dtype)
    w = random.standard_normal((fan_out, fan_in)).astype(dtype)
    s, g, out = np.empty((2 * batch, fan_out), dtype), np.empty((2 * batch, fan_in), dtype), np.empty_like(w)
    half = slice(0, batch)
    gradient = [
        lambda: _products(x[half], w, s[half], False, True),
        lambda: _products(d[half], x[half], out, True, False),
        lambda: _products(d[half], w, g[half], False, False),
    ]
    product = [
        lambda: _products(x, w, s, False, True),
        lambda: _products(x[half], w, s[half], False, True),
        lambda: _products(d, x, out, True, False),
        lambda: _products(d, w, g, False, False),
        lambda: _products(d[half], w, g[half], False, False),
    ]
    for f in gradient + product:
        f()
    times = np.array(best_times(gradient + product, repeats))
    return tuple(times[:3].sum(axis=0)), tuple(times[3:].sum(axis=0)), times[3:, 0]


def one_pass(make):
    """``make()`` with the Hessian product in one pass on BLAS's own threads (``curvature.PRODUCT_PARTS = 1``, the
    product before the tenth session), for the parts' gain."""
    saved = curvature.PRODUCT_PARTS
    curvature.PRODUCT_PARTS = 1
    try:
        return make()
    finally:
        curvature.PRODUCT_PARTS = saved


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", default="40,1024,896,10")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=THREADS, help="Numba, BLAS and PyTorch threads")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the bare BLAS calls of the largest layer, and each Lanczos run's products and vector work",
    )
    args = parser.parse_args(argv)
    widths = tuple(int(w) for w in args.widths.split(","))
    threads = args.threads
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if torch is not None:
        torch.set_num_threads(threads)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        for dtype in (np.float32, np.float64):
            net = nn.MLP(widths, "tanh", bias=True, output="linear", dtype=dtype)
            net.initialize("glorot_normal", seed=1, bias_var=0.01)
            x = rng.normal((args.batch, widths[0]), seed=2, dtype=dtype)
            y = (rng.uniform(args.batch, seed=3) * widths[-1]).astype(np.int64) % widths[-1]
            v = rng.normal(net.size, seed=4, dtype=dtype)
            op = curvature.HessianOperator(net, x, y)
            op(v)  # compile, and keep the forward pass
            curvature.hvp(net, x, y, v)
            train.loss_and_grad(net, x, y)
            one_pass_op = one_pass(lambda: curvature.HessianOperator(net, x, y))
            one_pass_op(v)
            one_pass(lambda: curvature.hvp(net, x, y, v))
            grad, product, kept, product_1, kept_1 = best_times(
                [
                    lambda: train.loss_and_grad(net, x, y),
                    lambda: curvature.hvp(net, x, y, v),
                    lambda: op(v),
                    lambda: one_pass(lambda: curvature.hvp(net, x, y, v)),
                    lambda: one_pass_op(v),
                ],
                args.repeats,
            )
            name = np.dtype(dtype).name
            print(
                f"{name}: {net.size:,} parameters, batch {args.batch}, {threads} threads, products in {op.parts} parts"
            )
            print(f"  {show('loss_and_grad', grad)}")
            print(f"  {show('hvp', product)}: ratio {ratio(product, grad)}, goal <= 2.5")
            print(f"  {show('hvp, forward kept', kept)}: ratio {ratio(kept, grad)}")
            print(f"  {show('hvp, one pass', product_1)}: ratio {ratio(product_1, grad)}")
            print(f"  {show('hvp, forward kept, one pass', kept_1)}: ratio {ratio(kept_1, grad)}")
            if args.breakdown:
                bare_grad, bare_product, calls = floor(widths, args.batch, dtype, args.repeats)
                print(f"  largest layer's bare BLAS calls: {show('gradient', bare_grad)}")
                print(
                    f"    {show('product', bare_product)} ({' + '.join(f'{c * 1e3:.1f}' for c in calls)}): "
                    f"ratio {ratio(bare_product, bare_grad)}"
                )
            start = np.where(rng.uniform(net.size, seed=5) > 0.5, 1.0, -1.0)

            def ours():
                operator = curvature.HessianOperator(net, x, y)
                return curvature.lanczos(operator.matvec, start, args.iterations).alpha

            if torch is None:
                (lanczos_time,) = best_times([ours], args.repeats)
                print(f"  {show(f'{args.iterations} Lanczos steps', lanczos_time)} (PyTorch not installed)")
                continue
            alpha_ours = ours()
            alpha_torch = torch_lanczos(torch, net, x, y, start, args.iterations)
            lanczos_time, torch_time = best_times(
                [ours, lambda: torch_lanczos(torch, net, x, y, start, args.iterations)], args.repeats
            )
            agree = np.max(np.abs(alpha_ours - alpha_torch)) / np.max(np.abs(alpha_torch))
            print(f"  {show(f'{args.iterations} Lanczos steps', lanczos_time)}")
            print(
                f"  {show('PyTorch double backward', torch_time)}: speed-up {ratio(torch_time, lanczos_time)}, "
                f"goal >= 1.5; alphas agree to {agree:.1e}"
            )
            if args.breakdown:  # each side's products alone, and its vector work alone (a diagonal "Hessian")
                q = start / np.linalg.norm(start)
                q_torch = torch.tensor(q)
                product = torch_hvp(torch, net, x, y)
                diagonal = rng.uniform(net.size, seed=6) + 1.0
                diagonal_torch = torch.tensor(diagonal)
                parts = best_times(
                    [
                        lambda: [op.matvec(q) for _ in range(args.iterations)],
                        lambda: curvature.lanczos(lambda u: diagonal * u, start, args.iterations),
                        lambda: [product(q_torch) for _ in range(args.iterations)],
                        lambda: torch_lanczos_steps(torch, lambda u: diagonal_torch * u, start, args.iterations),
                    ],
                    args.repeats,
                )
                names = ("ours: products", "ours: vector work", "PyTorch: products", "PyTorch: vector work")
                for name, t in zip(names, parts):
                    print(f"    {show(name, t)}")


if __name__ == "__main__":
    main()
