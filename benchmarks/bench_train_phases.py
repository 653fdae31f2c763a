"""Where the big training step's time over the bare BLAS chain goes, phase by phase (``bench_train.py``'s big case).

    python benchmarks/bench_train_phases.py [--repeats 20] [--threads 2]

``--threads 1`` runs everything on one core (the chain on one BLAS thread): each phase's CPU cost, less disturbed
by the other core's load than the two-thread wall times.

Width 1024, depth 10, batch 256, float32. Each contender is timed alone, in wall and process CPU time (all threads),
best of ``--repeats`` interleaved rounds with the order rotated and a pause before each turn:

- ``blas chain``: ``bench_train.BlasChain``, the 3 NumPy products per layer on BLAS's own threads;
- ``products in parts``: the step's products only, cut into parts as :func:`testbed.kernels.train.
  loss_and_grad_parts_cpu` cuts them (rows of the batch, then units of each layer; one BLAS thread each), with the
  gather and the loss head but no activation, derivative, delta-column copy, bias sum or count;
- ``+ weight pass``: the same, with the weight pass whole (the delta columns gathered with db summed beside, the
  count of the gradient's non-finite entries);
- ``step kernel``: :class:`testbed.train.Step` (the kernel as it runs in ``fit``);
- ``count pass``: :func:`testbed.kernels.optim.count_nonfinite_cpu` over the gradient, the read that
  ``Optimizer.step`` makes unless it is given the count;
- ``adam kernel``: :func:`testbed.kernels.optim.step_cpu` alone (Adam, 10.5 M float32 parameters);
- ``optimizer step, counted`` / ``optimizer step, counting``: ``Adam.step`` given the step's count (as ``fit`` calls
  it) or counting for itself (as before the eleventh session);
- ``step + adam`` / ``step + adam, counting``: the whole training step both ways.

Phases (shares of the chain): the products' cost of being cut into parts (``products in parts`` less the chain:
each part of a forward or delta product packs the whole weight matrix and runs 128-row products); the weight pass's
gather, bias sum and count; the forward and backward elementwise passes (``step kernel`` less ``+ weight pass``);
the count pass; Adam. A difference of two best times is a rough estimate: each side is its least disturbed run.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_train  # noqa: E402  (sets nothing; imports the testbed)
import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

from testbed import train  # noqa: E402
from testbed.kernels import optim as optim_kernels  # noqa: E402
from testbed.kernels import train as K  # noqa: E402
from testbed.rules import optimizers as rules  # noqa: E402


@njit(error_model="numpy")
def _rows_products(params, net, data, rows, buffers, first, stop):
    """The rows pass with its products only: gather, s = x W^T, the loss head, delta W (no activation, derivative)."""
    batch = rows.size
    n = stop - first
    widths = net.widths
    depth = widths.size - 1
    pre, post, deltas = buffers.pre, buffers.post, buffers.deltas
    prev = K._layer(buffers.x0, first * widths[0], n, widths[0])
    K._gather(data.x, rows[first:stop], prev)
    offset = 0
    last = 0
    for l in range(1, widths.size):
        fan_in, fan_out = widths[l - 1], widths[l]
        s = K._layer(post, offset + first * fan_out, n, fan_out)
        np.dot(prev, K._layer(params, net.weight_at[l - 1], fan_out, fan_in).T, s)
        prev = s
        last = offset
        offset += batch * fan_out
    start = last + first * widths[depth]
    K._loss_head(net, data, rows[first:stop], batch, pre, post, start, deltas, start, buffers.row_loss[first:stop])
    offset = last
    for l in range(depth, 1, -1):
        fan_in, fan_out = widths[l - 1], widths[l]
        below = offset - batch * fan_in
        delta = K._layer(deltas, offset + first * fan_out, n, fan_out)
        np.dot(
            delta,
            K._layer(params, net.weight_at[l - 1], fan_out, fan_in),
            K._layer(deltas, below + first * fan_in, n, fan_in),
        )
        offset = below


@njit(error_model="numpy")
def _weight_products(grads, net, batch, buffers, part, parts):
    """The weight pass's products only (the scratch operand as it was left: no gather, bias sum or count)."""
    widths = net.widths
    scratch = buffers.scratch[part]
    offset = 0
    for l in range(1, widths.size):
        fan_in, fan_out = widths[l - 1], widths[l]
        lo, hi = part * fan_out // parts, (part + 1) * fan_out // parts
        columns = K._layer(scratch, 0, batch, hi - lo)
        if l == 1:
            prev = K._layer(buffers.x0, 0, batch, fan_in)
        else:
            prev = K._layer(buffers.post, offset - batch * fan_in, batch, fan_in)
        np.dot(columns.T, prev, K._layer(grads, net.weight_at[l - 1] + lo * fan_in, hi - lo, fan_in))
        offset += batch * fan_out


@njit(parallel=True, error_model="numpy")
def products_in_parts(params, grads, net, data, rows, buffers, whole_weight_pass):
    parts = buffers.scratch.shape[0]
    batch = rows.size
    for p in prange(parts):
        _rows_products(params, net, data, rows, buffers, p * batch // parts, (p + 1) * batch // parts)
    bad = 0
    for p in prange(parts):
        if whole_weight_pass:
            bad += K._weight_grads_part(grads, net, batch, buffers, p, parts)
        else:
            _weight_products(grads, net, batch, buffers, p, parts)
    return bad


def contenders(threads):
    p = bench_train.CASES["big"]
    dataset = bench_train.synthetic(p["width"])
    batch = p["batch"]
    # one net for every contender: the same trajectory, so both ways of the whole step meet the same numbers
    step = bench_train.TestbedStep(bench_train.make_net(p["width"], p["depth"]), dataset, batch)
    chain = bench_train.BlasChain(step.net, batch)
    if threads == 1:  # the chain on one BLAS thread too: a comparison of CPU time, the other core left alone
        chain.limit = 1
    kernel = step.step.kernel
    x, y = dataset.x_train, dataset.y_train

    def parts(whole):
        def run():
            data = train._data(x, y, kernel.code, step.net.dtype)
            with train.blas_threads(1):
                products_in_parts(
                    step.net.params, step.net.grads, kernel.net, data, step.batches(), kernel.buffers, whole
                )

        return run

    opt = step.optimizer
    hyper = tuple(np.float32(h) for h in opt.hyper)
    coefficients = tuple(np.float32(c) for c in rules.prepare(opt.code, opt.hyper, 1, opt.lr))
    w, m, v = (np.array(step.net.params) for _ in range(3))
    placeholder = np.zeros(1, np.float32)

    def counting_step():
        step.step(x, y, step.batches())
        opt.step(step.net.params, step.net.grads, step.state)

    return {
        "blas chain": chain,
        "products in parts": parts(False),
        "+ weight pass": parts(True),
        "step kernel": lambda: step.step(x, y, step.batches()),
        "count pass": lambda: optim_kernels.count_nonfinite_cpu(step.net.grads),
        "adam kernel": lambda: optim_kernels.step_cpu(
            opt.code, hyper, *coefficients, w, step.net.grads, m, v, placeholder, 2, 16384
        ),
        "optimizer step, counted": lambda: opt.step(step.net.params, step.net.grads, step.state, grads_nonfinite=0),
        "optimizer step, counting": lambda: opt.step(step.net.params, step.net.grads, step.state),
        "step + adam": step,
        "step + adam, counting": counting_step,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    fns = contenders(args.threads)
    for fn in fns.values():  # compile and warm up
        fn()
        fn()
    wall = {name: float("inf") for name in fns}
    cpu = dict(wall)
    order = list(fns.items())
    for round_ in range(args.repeats):
        shift = round_ % len(order)
        for name, fn in order[shift:] + order[:shift]:
            time.sleep(bench_train.SETTLE_SECONDS)
            fn()  # wakes the sleeping threads, as a step in a run finds them awake
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            t1, c1 = time.perf_counter(), time.process_time()
            wall[name] = min(wall[name], t1 - t0)
            cpu[name] = min(cpu[name], c1 - c0)
    chain = wall["blas chain"]
    print(f"big step phases, {args.threads} threads, best of {args.repeats}; {os.popen('uptime').read().strip()}")
    for name in fns:
        times = f"wall {wall[name] * 1e3:7.2f} ms  cpu {cpu[name] * 1e3:7.2f} ms"
        print(f"  {name:26s} {times}  {wall[name] / chain:6.3f}x chain")
    print("phases over the chain (shares of the chain's wall time):")
    phases = {
        "products cut into parts": wall["products in parts"] - chain,
        "weight pass: gather, db, count": wall["+ weight pass"] - wall["products in parts"],
        "forward/backward elementwise, loss": wall["step kernel"] - wall["+ weight pass"],
        "count pass (before: in Adam.step)": wall["count pass"],
        "Adam.step (given the count)": wall["optimizer step, counted"],
    }
    for name, seconds in phases.items():
        print(f"  {name:36s} {seconds * 1e3:7.2f} ms  {seconds / chain:6.3f}")


if __name__ == "__main__":
    main()
