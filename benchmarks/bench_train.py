"""One training step (forward, softmax cross-entropy, backward, Adam) against PyTorch and the bare BLAS chain.

    python benchmarks/bench_train.py [--repeats 20] [--threads 2] [--cases big,small,many]

Cases (float32, the issue's sizes):
- ``big``: width 1024, depth 10, batch 256. Baselines: PyTorch's CPU step (nn.Sequential of Linear+ReLU, cross
  entropy, backward, Adam(foreach)) and the bare BLAS chain, the 3 products per layer a step needs (s = x W^T,
  dW = delta^T x, delta W) done by NumPy into preallocated arrays, nothing else. Goals: >= 1.0x PyTorch, <= 1.2x
  the BLAS chain. The step cuts each product into ``train.STEP_PARTS`` parts, one thread each; ``one pass`` is
  the step in one pass with BLAS's own threads (the step before the ninth session), for comparison.
- ``small``: width 128, depth 30, batch 128, where per-call overhead decides. Goal: >= 2x PyTorch. The step runs
  as ``train.STEP_CHUNKS`` chunks of rows on separate threads; ``testbed parts`` is the step of the big case
  (each product in ``train.STEP_PARTS`` parts), for comparison.
- ``many``: 64 nets of width 100, depth 20, batch 128, one step of each through ``train.fit_many`` (timed per
  step over a run of steps) against PyTorch looping over the 64 nets. Goal: >= 3x.

Each contender's time is the best of ``--repeats`` interleaved rounds (the machine is shared: the best is the least
disturbed). PyTorch is optional (``pip install torch==2.13.0+cpu``); without it only the BLAS ratio is printed.
PyTorch runs in a child process of this run, started with the caller's environment and importing torch before
the testbed: ``import testbed`` sets ``OMP_WAIT_POLICY=PASSIVE`` and ``GOMP_SPINCOUNT=30000`` (its own default),
and PyTorch's OpenMP threads made passive (before the spin count was added) took 11-16 ms per small step where its
own default takes 7.4 ms (2 threads, quiet Xeon). The child stays up for the whole case and takes its turn in every
round (it times its own steps and reports them), so a spell of load falls on both sides alike, not on whoever was
timed in it.
"""

import argparse
import os
import subprocess
import sys
import time

#: The caller's environment, before ``import testbed`` adds its thread defaults: PyTorch's process gets this one.
CALLER_ENVIRONMENT = dict(os.environ)
if "--pytorch-only" in sys.argv:
    import torch  # noqa: F401  (first: its OpenMP runtime reads the caller's settings, not the testbed's)

import numba  # noqa: E402
import numpy as np  # noqa: E402

from testbed import data, nn, optim, train  # noqa: E402

CASES = {
    "big": dict(width=1024, depth=10, batch=256),
    "small": dict(width=128, depth=30, batch=128),
    "many": dict(width=100, depth=20, batch=128, nets=64),
}
FEATURES, CLASSES, EXAMPLES = 64, 10, 4096


def synthetic(width):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((EXAMPLES, width)).astype(np.float32)
    y = rng.integers(0, CLASSES, EXAMPLES)
    return data.from_arrays(x, y, standardize=False)


def make_net(width, depth, seed=0):
    widths = (width,) * depth + (CLASSES,)
    return nn.MLP(widths, "relu", bias=True, output="linear", dtype=np.float32).initialize("he_normal", seed=seed)


class Batches:
    """The minibatch rows of step 0, 1, ... (a Philox permutation per epoch, as ``train.fit`` takes them), cycled.

    Every contender steps through the dataset's batches rather than one batch over and over: a net that memorises
    a single batch drives its loss to ~1e-5 within a few hundred steps, its gradients into float32's subnormal
    range, and OpenBLAS's products on subnormal numbers run at half speed or less (a step of the small case went
    from 3.8 to 8 ms; PyTorch's did not slow down), which is not what a training step costs."""

    def __init__(self, n, batch, epochs=2):
        self.rows = [data.batch_rows(n, batch, step, seed=0) for step in range(epochs * (n // batch))]
        self.step = 0

    def __call__(self):
        rows = self.rows[self.step % len(self.rows)]
        self.step += 1
        return rows


class TestbedStep:
    def __init__(self, net, dataset, batch, chunks=None):
        self.net, self.dataset = net, dataset
        saved = train.STEP_CHUNKS
        train.STEP_CHUNKS = saved if chunks is None else chunks
        try:
            self.step = train.Step(net, batch)
        finally:
            train.STEP_CHUNKS = saved
        self.optimizer = optim.Adam(lr=1e-3)
        self.state = self.optimizer.init(net.params)
        self.batches = Batches(dataset.x_train.shape[0], batch)

    def __call__(self):
        # as train.fit calls them: the optimizer takes the step kernel's count of non-finite gradient entries
        self.step(self.dataset.x_train, self.dataset.y_train, self.batches())
        self.optimizer.step(self.net.params, self.net.grads, self.state, grads_nonfinite=self.step.nonfinite)


class OnePassStep(TestbedStep):
    """The step in one pass with BLAS's own threads (``train.STEP_PARTS = 1``, the big step before the ninth
    session), for the same-run gain of cutting each product into parts."""

    def __init__(self, net, dataset, batch):
        saved = train.STEP_PARTS
        train.STEP_PARTS = 1
        try:
            super().__init__(net, dataset, batch)
        finally:
            train.STEP_PARTS = saved


class BlasChain:
    """The three products per layer of a training step, into preallocated arrays: the BLAS floor, on as many BLAS
    threads as the step's products (one for small products: ``train.step_blas_threads``; NumPy's OpenBLAS pool
    left spinning beside Numba's would otherwise slow both, benchmarks/RESULTS.md, seventh session)."""

    def __init__(self, net, batch):
        self.limit = train.step_blas_threads(net.widths, batch)
        rng = np.random.default_rng(1)
        self.weights = [net.weights(l) for l in range(1, net.depth + 1)]
        self.acts = [rng.standard_normal((batch, w)).astype(np.float32) for w in net.widths]
        self.deltas = [rng.standard_normal((batch, w)).astype(np.float32) for w in net.widths]
        self.grads = [np.empty_like(w) for w in self.weights]

    def __call__(self):
        with train.blas_threads(self.limit):
            self.products()

    def products(self):
        for l, w in enumerate(self.weights):
            np.dot(self.acts[l], w.T, out=self.acts[l + 1])
        for l in range(len(self.weights) - 1, -1, -1):
            np.dot(self.deltas[l + 1].T, self.acts[l], out=self.grads[l])
            if l > 0:
                np.dot(self.deltas[l + 1], self.weights[l], out=self.deltas[l])


def torch_step_factory(net, dataset, batch, count=1):
    import torch

    models, optimizers = [], []
    for _ in range(count):
        layers = []
        for l in range(1, net.depth + 1):
            linear = torch.nn.Linear(net.widths[l - 1], net.widths[l])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(net.weights(l)))
                linear.bias.copy_(torch.from_numpy(net.biases(l)))
            layers += [linear] + ([torch.nn.ReLU()] if l < net.depth else [])
        model = torch.nn.Sequential(*layers)
        models.append(model)
        optimizers.append(torch.optim.Adam(model.parameters(), lr=1e-3))
    x_all = torch.from_numpy(dataset.x_train)
    y_all = torch.from_numpy(dataset.y_train)
    batches = Batches(dataset.x_train.shape[0], batch)
    rows = [torch.from_numpy(r) for r in batches.rows]

    def step():
        index = rows[batches.step % len(rows)]
        batches.step += 1
        x, y = x_all[index], y_all[index]
        for model, opt in zip(models, optimizers):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()

    return step


#: Pause before each contender's turn: OpenBLAS's idle threads spin for about 0.1 s (THREAD_TIMEOUT, 2^28 cycles)
#: after a product before they sleep, and PyTorch's OpenMP threads spin too; without the pause those spinning
#: threads take a core from whoever runs next (PyTorch's big step measured 135 ms inside the benchmark against
#: 90 ms alone, quiet, same minute). After the pause one untimed call wakes the contender's sleeping threads, as
#: the steps of a run find them awake.
SETTLE_SECONDS = 0.2


def best_of(contenders, repeats, inner=1):
    """Best time per call of each contender over ``repeats`` interleaved rounds of ``inner`` calls. A contender with
    a ``seconds(inner)`` method (PyTorch's process) times itself and says how long a call took. Each round starts
    one contender further on, so that none always follows the same one (a contender's threads still spinning, or
    its data evicting the next one's from the caches, would otherwise fall on the same neighbour every round)."""
    best = {name: float("inf") for name in contenders}
    order = list(contenders.items())
    for round_ in range(repeats):
        shift = round_ % len(order)
        for name, fn in order[shift:] + order[:shift]:
            time.sleep(SETTLE_SECONDS)
            if hasattr(fn, "seconds"):
                fn.seconds(1)  # untimed: wakes the sleeping threads, as a step in a run finds them awake
                best[name] = min(best[name], fn.seconds(inner))
                continue
            fn()
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / inner)
    return best


def run_single(case, repeats, have_torch, inner=None):
    p = CASES[case]
    dataset = synthetic(p["width"])
    net = make_net(p["width"], p["depth"])
    contenders = {"testbed": TestbedStep(net, dataset, p["batch"]), "blas chain": BlasChain(net, p["batch"])}
    if contenders["testbed"].step.kernel.chunks > 1:  # the step of the big case (parts of each product)
        contenders["testbed parts"] = TestbedStep(make_net(p["width"], p["depth"]), dataset, p["batch"], chunks=1)
    else:  # the step in one pass on BLAS's own threads, for the parts' gain
        contenders["one pass"] = OnePassStep(make_net(p["width"], p["depth"]), dataset, p["batch"])
    for fn in contenders.values():  # compile and warm up
        fn()
    if have_torch:
        contenders["pytorch"] = PytorchProcess(case)
    try:
        best = best_of(contenders, repeats, inner=inner or (3 if case == "small" else 1))
    finally:
        if have_torch:
            contenders["pytorch"].close()
    print(
        f"\n{case}: width {p['width']}, depth {p['depth']}, batch {p['batch']}, float32, "
        f"{numba.get_num_threads()} threads"
    )
    for name, seconds in best.items():
        print(f"  {name:12s} {seconds * 1e3:9.3f} ms per step")
    print(f"  testbed / blas chain: {best['testbed'] / best['blas chain']:.2f}x the time (goal <= 1.2 for big)")
    if have_torch:
        print(
            f"  speed vs pytorch: {best['pytorch'] / best['testbed']:.2f}x (goal >= {'1.0' if case == 'big' else '2'})"
        )


def run_many(repeats, have_torch, steps=20):
    p = CASES["many"]
    dataset = synthetic(p["width"])
    nets = [make_net(p["width"], p["depth"], seed=k) for k in range(p["nets"])]

    def ours():
        train.fit_many(nets, dataset, optim.Adam(lr=1e-3), steps=steps, batch=p["batch"], progress=False, eval_every=0)

    contenders = {"testbed fit_many": ours}
    for fn in contenders.values():
        fn()
    if have_torch:
        contenders["pytorch loop"] = PytorchProcess("many")
    try:
        best = best_of(contenders, max(2, repeats // 5))
    finally:
        if have_torch:
            contenders["pytorch loop"].close()
    print(
        f"\nmany: {p['nets']} nets of width {p['width']}, depth {p['depth']}, batch {p['batch']}, {steps} steps "
        f"(no evaluation)"
    )
    for name, seconds in best.items():
        print(f"  {name:18s} {seconds / steps * 1e3:9.3f} ms per step of all nets")
    if have_torch:
        print(f"  speed vs pytorch loop: {best['pytorch loop'] / best['testbed fit_many']:.2f}x (goal >= 3)")


def pytorch_serve(case, steps=20):
    """The child's side of :class:`PytorchProcess`: build ``case``'s PyTorch step, then for each line ``n`` read
    from stdin run n calls and print the seconds per call (a call: one step; for ``many``, ``steps`` steps of
    every net)."""
    p = CASES[case]
    dataset = synthetic(p["width"])
    if case == "many":
        nets = [make_net(p["width"], p["depth"], seed=k) for k in range(p["nets"])]
        one = torch_step_factory(nets[0], dataset, p["batch"], count=p["nets"])

        def step():
            for _ in range(steps):
                one()
    else:
        step = torch_step_factory(make_net(p["width"], p["depth"]), dataset, p["batch"])
    step()
    print("ready", flush=True)
    for line in sys.stdin:
        calls = int(line)
        start = time.perf_counter()
        for _ in range(calls):
            step()
        print((time.perf_counter() - start) / calls, flush=True)


class PytorchProcess:
    """PyTorch's step of ``case`` in a child process with the caller's environment (see the module docstring),
    kept up for the whole case and asked for its time in every round, interleaved with the testbed's."""

    def __init__(self, case):
        command = [
            sys.executable,
            __file__,
            "--pytorch-only",
            "--cases",
            case,
            "--threads",
            str(numba.get_num_threads()),
        ]
        self.child = subprocess.Popen(
            command, env=CALLER_ENVIRONMENT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        ready = self.child.stdout.readline()
        if ready.strip() != "ready":
            self.close()
            raise RuntimeError(f"PyTorch's process did not start: {ready!r}")

    def seconds(self, calls):
        self.child.stdin.write(f"{calls}\n")
        self.child.stdin.flush()
        return float(self.child.stdout.readline())

    def close(self):
        self.child.stdin.close()
        self.child.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="Numba and torch threads (default: all)")
    parser.add_argument("--cases", default="big,small,many")
    parser.add_argument(
        "--inner",
        type=int,
        default=None,
        help="timed steps per turn after the pause and the untimed step (default 3 for small, 1 for big); a "
        "training run's steps follow each other, so more steps per turn come nearer to a run's steady state",
    )
    parser.add_argument("--pytorch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        import torch

        have_torch = True
        if args.threads:
            torch.set_num_threads(args.threads)
    except ImportError:
        have_torch = False
        print("PyTorch is not installed: only the BLAS-chain ratio is measured")
    if args.threads:
        numba.set_num_threads(args.threads)
    if args.pytorch_only:
        pytorch_serve(args.cases)
        return
    for case in args.cases.split(","):
        if case == "many":
            run_many(args.repeats, have_torch)
        else:
            run_single(case, args.repeats, have_torch, args.inner)


if __name__ == "__main__":
    main()
