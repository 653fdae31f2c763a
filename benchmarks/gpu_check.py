"""The prepared script for a session with a GPU: CPU-vs-GPU parity of every kernel family, then GPU timings.

    python benchmarks/gpu_check.py [--quick] [--repeats K] [--out FILE]

Run it once on the device machine (the device tool's ``run``), then copy its table into benchmarks/RESULTS.md.

Parity: each kernel family runs the same work with one seed on ``backend="cpu"`` and ``backend="cuda"``.
Uniform draws, integers and escape decisions should agree exactly; NVVM contracts ``a * b + c`` into fused
multiply-adds, so normals, optimizer steps and layer statistics may differ in the last bits. Each check states
its tolerance (``PARITY_TOLERANCES``) and the script exits 1 if one fails.

Timings (best of ``--repeats``, the GPU synchronised, data already on the device): the He-normal fill of a
4096 x 4096 float64 matrix, an Adam step on 10 M float32 parameters, a ReLU MLP forward pass (depth 20, width
1024, batch 2048, float32), a training step (``train.fit`` with Adam, width 1024, depth 10, batch 256, float32,
per step over 50 steps with the set-up and the device copy of the data included) and the d = 10 saddle Monte
Carlo of bench_montecarlo.py (20,000 SGD trials), each beside the same work on the CPU in the same run.
The parity checks include ``train_fit``: 20 Adam steps of ``train.fit`` on both backends (the same batches).

``--quick`` uses tiny sizes, so that the script also runs under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``),
which is how the test suite checks that it works before a GPU session needs it.
"""

import argparse
import json
import sys
import time

import numpy as np

from testbed import backend, curvature, data, init, landscapes, montecarlo, nn, optim, train

#: Largest relative difference allowed between the CPU and GPU results of each check (FMA contraction on the GPU
#: changes last bits; the MLP statistics accumulate it over layers; escape steps may move by one on a tie).
PARITY_TOLERANCES = {
    "init_uniform": 1e-15,
    "init_normal": 1e-13,
    "adam_float32": 1e-5,
    "mlp_pre_var": 1e-9,
    "train_loss_and_grads": 1e-9,
    "train_fit": 1e-7,
    "curvature_hvp": 1e-9,
    "montecarlo_steps_identical_fraction": 0.99,
}

FULL = dict(
    fill=4096,
    adam=10_000_000,
    mlp=(20, 1024, 2048),
    trials=20_000,
    parity_trials=4000,
    lr=0.01,
    train=((64, 256, 256, 10), 512),
    fit=((64, 256, 256, 10), 2048, 128, 20),
    train_step=((1024,) * 10 + (10,), 256, 50),
)
#: lr 0.1 escapes in ~80 steps instead of ~770: the simulator runs a trial as Python, one step at a time.
QUICK = dict(
    fill=16,
    adam=1000,
    mlp=(2, 8, 4),
    trials=12,
    parity_trials=12,
    lr=0.1,
    train=((4, 3, 3), 5),
    fit=((4, 3, 3), 8, 4, 2),
    train_step=((4, 3, 3), 4, 1),
)


def relative_difference(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b) / scale))


def saddle_trials(trials, lr, backend_name):
    f = landscapes.saddle(dim=10, negative=1, gamma=1.0)
    return montecarlo.escape_times(
        f,
        optim.SGD(lr=lr),
        trials=trials,
        noise=0.01,
        radius=1.0,
        start="saddle",
        max_steps=20000,
        seed=0,
        backend=backend_name,
    )


def parity(sizes):
    """(name, measured, tolerance, passed) for every kernel family."""
    n = sizes["fill"]
    rows = []
    for name, initialiser in (("init_uniform", "he_uniform"), ("init_normal", "he_normal")):
        cpu = init.initialize(initialiser, n, n, seed=1, backend="cpu")
        gpu = init.initialize(initialiser, n, n, seed=1, backend="cuda")
        rows.append((name, relative_difference(cpu, gpu), PARITY_TOLERANCES[name]))

    rng = np.random.default_rng(2)
    w0 = rng.standard_normal(sizes["adam"]).astype(np.float32)
    grads = [rng.standard_normal(w0.size).astype(np.float32) for _ in range(3)]
    results = []
    for name in ("cpu", "cuda"):
        adam = optim.Adam(lr=1e-3, backend=name)
        w = backend.to_device(w0.copy()) if name == "cuda" else w0.copy()
        state = adam.init(w)
        for g in grads:
            adam.step(w, backend.to_device(g) if name == "cuda" else g, state)
        results.append(backend.to_host(w) if name == "cuda" else w)
    rows.append(("adam_float32", relative_difference(*results), PARITY_TOLERANCES["adam_float32"]))

    depth, width, batch = sizes["mlp"]
    runs = [
        nn.propagate("he_normal", "relu", depth, width, batch=batch, seed=3, backend=name, backward=False)
        for name in ("cpu", "cuda")
    ]
    rows.append(
        ("mlp_pre_var", relative_difference(runs[0].pre_var, runs[1].pre_var), PARITY_TOLERANCES["mlp_pre_var"])
    )

    widths, rows_ = sizes["train"]
    x = rng.standard_normal((rows_, widths[0]))
    y = rng.integers(0, widths[-1], rows_)
    values = []
    for name in ("cpu", "cuda"):  # float64 softmax cross-entropy and its gradient, tanh net with logits
        net = nn.MLP(widths, "tanh", bias=True, output="linear", backend=name).initialize("glorot_normal", seed=4)
        loss = train.loss_and_grad(net, x, y)
        values.append(np.concatenate([[loss], net.grads]))
    rows.append(("train_loss_and_grads", relative_difference(*values), PARITY_TOLERANCES["train_loss_and_grads"]))

    rows.append(("train_fit", fit_difference(sizes["fit"]), PARITY_TOLERANCES["train_fit"]))

    v = rng.standard_normal(values[0].size - 1)
    products = []
    for name in ("cpu", "cuda"):  # the exact Hessian-vector product of the same loss (R-operator passes)
        net = nn.MLP(widths, "tanh", bias=True, output="linear", backend=name).initialize("glorot_normal", seed=4)
        products.append(curvature.hvp(net, x, y, v))
    # relative to the largest entry: entries near zero are sums that cancel, their own relative error is noise
    hvp_difference = float(np.max(np.abs(products[0] - products[1])) / np.max(np.abs(products[0])))
    rows.append(("curvature_hvp", hvp_difference, PARITY_TOLERANCES["curvature_hvp"]))

    cpu, gpu = (saddle_trials(sizes["parity_trials"], sizes["lr"], name) for name in ("cpu", "cuda"))
    identical = float(np.mean((cpu.steps == gpu.steps) & (cpu.escaped == gpu.escaped)))
    rows.append(
        ("montecarlo_steps_identical_fraction", identical, PARITY_TOLERANCES["montecarlo_steps_identical_fraction"])
    )
    return [
        (name, value, tolerance, value >= tolerance if name.endswith("fraction") else value <= tolerance)
        for name, value, tolerance in rows
    ]


def classes_dataset(features, classes, rows, seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features))
    y = rng.integers(0, classes, rows)
    test = max(1, rows // 4)
    return data.from_arrays(x, y, x[:test], y[:test], dtype=dtype, standardize=False, classes=classes)


def fit_difference(fit_sizes):
    """train.fit with Adam on both backends (float64 tanh net with logits, the same batches): the larger of the
    train and test losses' relative difference and the parameters' largest difference relative to the largest
    parameter (one near zero has no relative error to speak of)."""
    widths, rows, batch, steps = fit_sizes
    dataset = classes_dataset(widths[0], widths[-1], rows, 8, np.float64)
    runs = []
    for name in ("cpu", "cuda"):
        net = nn.MLP(widths, "tanh", bias=True, output="linear", backend=name).initialize("glorot_normal", seed=5)
        history = train.fit(
            net,
            dataset,
            optim.Adam(lr=1e-2, backend=name),
            steps=steps,
            batch=batch,
            eval_every=steps,
            record_layers=False,
            progress=False,
        )
        runs.append((np.concatenate([history.train_loss, history.test_loss]), net.params.copy()))
    (losses_cpu, params_cpu), (losses_gpu, params_gpu) = runs
    params = float(np.max(np.abs(params_cpu - params_gpu)) / np.max(np.abs(params_cpu)))
    return max(relative_difference(losses_cpu, losses_gpu), params)


def best_seconds(function, repeats, synchronize):
    function()  # compile and warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def timings(sizes, repeats):
    """(workload, CPU seconds, GPU seconds) for the five benchmark workloads."""
    from numba import cuda

    sync = cuda.synchronize
    rows = []
    n = sizes["fill"]
    host = np.empty(n * n)
    device = cuda.device_array(n * n)
    rows.append(
        (
            f"he_normal fill {n}x{n} float64",
            best_seconds(lambda: init.fill(host, "he_normal", n, n, seed=1), repeats, lambda: None),
            best_seconds(lambda: init.fill(device, "he_normal", n, n, seed=1, backend="cuda"), repeats, sync),
        )
    )

    w = np.random.default_rng(4).standard_normal(sizes["adam"]).astype(np.float32)
    g = np.random.default_rng(5).standard_normal(w.size).astype(np.float32)
    cpu_adam, gpu_adam = optim.Adam(lr=1e-3), optim.Adam(lr=1e-3, backend="cuda")
    cpu_state = cpu_adam.init(w)
    dw, dg = cuda.to_device(w), cuda.to_device(g)
    gpu_state = gpu_adam.init(dw)
    rows.append(
        (
            f"Adam step {w.size} float32",
            best_seconds(lambda: cpu_adam.step(w, g, cpu_state), repeats, lambda: None),
            best_seconds(lambda: gpu_adam.step(dw, dg, gpu_state), repeats, sync),
        )
    )

    depth, width, batch = sizes["mlp"]
    x = np.random.default_rng(6).standard_normal((batch, width)).astype(np.float32)
    nets = [
        nn.MLP((width,) * (depth + 1), "relu", dtype=np.float32, backend=name).initialize("he_normal", seed=7)
        for name in ("cpu", "cuda")
    ]
    dx = cuda.to_device(x)
    rows.append(
        (
            f"MLP forward depth {depth} width {width} batch {batch} float32",
            best_seconds(lambda: nets[0].forward(x, keep=False), repeats, lambda: None),
            best_seconds(lambda: nets[1].forward(dx, keep=False), repeats, sync),
        )
    )

    widths, batch, steps = sizes["train_step"]
    dataset = classes_dataset(widths[0], widths[-1], 8 * batch, 9, np.float32)
    fits = []
    for name in ("cpu", "cuda"):
        net = nn.MLP(widths, "relu", output="linear", dtype=np.float32, backend=name).initialize("he_normal", seed=9)
        optimizer = optim.Adam(lr=1e-3, backend=name)
        fits.append(
            lambda net=net, optimizer=optimizer: train.fit(
                net, dataset, optimizer, steps=steps, batch=batch, eval_every=0, record_layers=False, progress=False
            )
        )
    rows.append(
        (
            f"training step (fit, Adam) widths {widths[0]}x{len(widths) - 1} batch {batch} float32",
            best_seconds(fits[0], repeats, lambda: None) / steps,
            best_seconds(fits[1], repeats, sync) / steps,
        )
    )

    trials, lr = sizes["trials"], sizes["lr"]
    rows.append(
        (
            f"Monte Carlo d=10 saddle, {trials} SGD trials, lr {lr}",
            best_seconds(lambda: saddle_trials(trials, lr, "cpu"), repeats, lambda: None),
            best_seconds(lambda: saddle_trials(trials, lr, "cuda"), repeats, sync),
        )
    )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (also runs under the CUDA simulator)")
    parser.add_argument("--repeats", type=int, default=5, help="timing repetitions, the best is kept (default 5)")
    parser.add_argument("--out", help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    if not (backend.gpu_available() or backend.simulator_enabled()):
        print("no CUDA GPU (and the simulator is off): nothing to check", file=sys.stderr)
        return 2
    sizes = QUICK if args.quick else FULL

    checks = parity(sizes)
    print("parity, CPU vs CUDA (same seed):")
    for name, value, tolerance, passed in checks:
        bound = ">=" if name.endswith("fraction") else "<="
        print(f"  {name:38s} {value:10.3g}   ({bound} {tolerance:g})  {'ok' if passed else 'FAILED'}")
    rows = timings(sizes, 1 if args.quick else args.repeats)
    print("timings, best of", 1 if args.quick else args.repeats, "(GPU synchronised, data on the device):")
    for workload, cpu_seconds, gpu_seconds in rows:
        print(
            f"  {workload:58s} CPU {cpu_seconds * 1e3:10.3f} ms  GPU {gpu_seconds * 1e3:10.3f} ms  "
            f"GPU speed-up {cpu_seconds / gpu_seconds:7.1f}x"
        )
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(
                {
                    "parity": [dict(name=n, value=v, tolerance=t, passed=bool(p)) for n, v, t, p in checks],
                    "timings": [dict(workload=w, cpu_s=c, gpu_s=g) for w, c, g in rows],
                    "quick": args.quick,
                },
                handle,
                indent=2,
            )
    return 0 if all(passed for *_, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
