"""testbed.train: the loss and its gradient against NumPy references, finite differences, PyTorch (where installed)
and the CUDA simulator; fit and fit_many trajectories; divergence; bad input."""

import math

import naive
import numpy as np
import pytest

from testbed import data, nn, optim, train

#: Float64 agreement of the compiled step with the NumPy reference (rounding of BLAS sums only).
GRAD_RTOL = 1e-10
#: Central finite differences in float64 with this step: truncation error ~ h^2, rounding ~ eps/h.
FD_STEP = 1e-6
FD_RTOL = 1e-6
#: Float32 agreement (a handful of ulps accumulated over a small net).
F32_RTOL = 2e-5


def make_net(widths, activation, *, bias=True, output="linear", dtype=np.float64, backend="cpu", seed=3):
    net = nn.MLP(widths, activation, bias=bias, output=output, dtype=dtype, backend=backend)
    net.initialize("glorot_normal", seed=seed, bias_var=0.1 if bias else 0.0)
    return net


def layers(net):
    weights = [net.weights(l).copy() for l in range(1, net.depth + 1)]
    biases = [None if not net.bias else net.biases(l).copy() for l in range(1, net.depth + 1)]
    return weights, biases


def batch(rng, rows, features, classes):
    return rng.standard_normal((rows, features)), rng.integers(0, classes, rows)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "linear"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("bias,output", [(True, "linear"), (False, "linear"), (True, "activation")])
def test_loss_and_grad_match_the_numpy_reference(rng, activation, loss, bias, output):
    net = make_net((7, 6, 5, 4), activation, bias=bias, output=output)
    x, y = batch(rng, 9, 7, 4)
    value = train.loss_and_grad(net, x, y, loss=loss)
    weights, biases = layers(net)
    expected, weight_grads, bias_grads = naive.train_loss_and_grad(
        weights, biases, activation, x, y, loss, output_linear=output == "linear"
    )
    assert value == pytest.approx(expected, rel=GRAD_RTOL)
    for l in range(1, net.depth + 1):
        np.testing.assert_allclose(net.weight_grads(l), weight_grads[l - 1], rtol=GRAD_RTOL, atol=1e-14)
        if bias:
            np.testing.assert_allclose(net.bias_grads(l), bias_grads[l - 1], rtol=GRAD_RTOL, atol=1e-14)


def test_a_step_cut_into_chunks_of_rows_matches_the_reference_on_any_thread_count(rng, monkeypatch):
    """Each chunk's share of the mean, summed: the NumPy reference's loss and gradient; bit for bit on 1 or 2
    threads (the chunks' gradients are summed in a fixed order). Float32, the training runs' type (one compile)."""
    import numba

    monkeypatch.setattr(train, "MIN_CHUNK_ROWS", 4)  # the split of a 128-row batch, on 9 rows: 4 and 5
    net = make_net((7, 6, 5, 4), "tanh", output="activation", dtype=np.float32)
    x, y = batch(rng, 9, 7, 4)
    assert train.step_chunks(net.widths, 9) == 2
    runs = []
    previous = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            runs.append((train.loss_and_grad(net, x, y, loss="mse"), net.grads.copy()))
    finally:
        numba.set_num_threads(previous)
    assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])
    weights, biases = layers(net)
    expected, weight_grads, bias_grads = naive.train_loss_and_grad(weights, biases, "tanh", x, y, "mse", False)
    assert runs[0][0] == pytest.approx(expected, rel=F32_RTOL)
    expected_grads = np.concatenate([g.ravel() for pair in zip(weight_grads, bias_grads) for g in pair])
    scale = F32_RTOL * np.abs(expected_grads).max()
    for l in range(1, net.depth + 1):
        np.testing.assert_allclose(net.weight_grads(l), weight_grads[l - 1], rtol=1e-3, atol=scale)
        np.testing.assert_allclose(net.bias_grads(l), bias_grads[l - 1], rtol=1e-3, atol=scale)


def test_small_steps_are_cut_into_chunks_of_rows_and_large_ones_are_not():
    assert train.step_chunks((128,) * 31, 128) == train.STEP_CHUNKS  # bench_train's small case
    assert train.step_chunks((128,) * 31, 2 * train.MIN_CHUNK_ROWS - 1) == 1  # too few rows for two chunks
    assert train.step_chunks((1024,) * 11, 256) == 1  # its big case: BLAS's own threads


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_gradient_matches_central_finite_differences(rng, activation):
    net = make_net((5, 4, 4, 3), activation)
    x, y = batch(rng, 6, 5, 3)
    train.loss_and_grad(net, x, y)
    grads = net.grads.copy()
    for index in rng.choice(net.size, 12, replace=False):
        saved = net.params[index]
        net.params[index] = saved + FD_STEP
        up = train.loss_and_grad(net, x, y)
        net.params[index] = saved - FD_STEP
        down = train.loss_and_grad(net, x, y)
        net.params[index] = saved
        assert grads[index] == pytest.approx((up - down) / (2 * FD_STEP), rel=FD_RTOL, abs=1e-9)


def test_cross_entropy_is_stable_for_huge_logits():
    """Logits of 1e4 overflow a naive exp; the max-shifted form gives the exact answer (here ln 2 and 1e4)."""
    net = nn.MLP((2, 2), "linear", output="linear")
    net.weights(1)[...] = np.eye(2)
    x = np.array([[1e4, 1e4], [1e4, 0.0]])
    value = train.loss_and_grad(net, x, np.array([0, 1]))
    assert value == pytest.approx((math.log(2.0) + 1e4) / 2, rel=1e-15)
    assert np.all(np.isfinite(net.grads))


def test_float32_step_agrees_with_float64(rng):
    net64 = make_net((8, 16, 16, 5), "tanh")
    net32 = make_net((8, 16, 16, 5), "tanh", dtype=np.float32)
    x, y = batch(rng, 12, 8, 5)
    assert train.loss_and_grad(net32, x, y) == pytest.approx(train.loss_and_grad(net64, x, y), rel=F32_RTOL)
    np.testing.assert_allclose(net32.grads, net64.grads, rtol=1e-3, atol=F32_RTOL * np.abs(net64.grads).max())


def test_loss_and_grad_match_pytorch(rng):
    torch = pytest.importorskip("torch")
    net = make_net((6, 5, 5, 4), "tanh")
    x, y = batch(rng, 7, 6, 4)
    value = train.loss_and_grad(net, x, y)
    tensors = [torch.tensor(p, requires_grad=True) for l in range(1, 4) for p in (net.weights(l), net.biases(l))]
    h = torch.tensor(x)
    for l in range(3):
        h = torch.nn.functional.linear(h, tensors[2 * l], tensors[2 * l + 1])
        h = torch.tanh(h) if l < 2 else h
    reference = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    reference.backward()
    assert value == pytest.approx(reference.item(), rel=GRAD_RTOL)
    for l in range(1, 4):
        np.testing.assert_allclose(net.weight_grads(l), tensors[2 * l - 2].grad.numpy(), rtol=GRAD_RTOL, atol=1e-14)
        np.testing.assert_allclose(net.bias_grads(l), tensors[2 * l - 1].grad.numpy(), rtol=GRAD_RTOL, atol=1e-14)


@pytest.mark.parametrize("loss,output", [("cross_entropy", "linear"), ("mse", "activation")])
def test_cuda_simulator_agrees_with_the_cpu(rng, loss, output):
    x, y = batch(rng, 5, 4, 3)
    cpu = make_net((4, 3, 3), "tanh", output=output)
    gpu = make_net((4, 3, 3), "tanh", output=output, backend="cuda")
    assert train.loss_and_grad(gpu, x, y, loss=loss) == pytest.approx(
        train.loss_and_grad(cpu, x, y, loss=loss), rel=1e-12
    )
    np.testing.assert_allclose(gpu.grads, cpu.grads, rtol=1e-12, atol=1e-15)
    assert train.evaluate(gpu, x, y, loss=loss) == pytest.approx(train.evaluate(cpu, x, y, loss=loss), rel=1e-12)


def test_evaluate_matches_the_reference_in_chunks(rng):
    net = make_net((5, 6, 4), "relu")
    x, y = batch(rng, 23, 5, 4)
    expected, _, _ = naive.train_loss_and_grad(*layers(net), "relu", x, y)
    weights, biases = layers(net)
    logits = np.maximum(x @ weights[0].T + biases[0], 0.0) @ weights[1].T + biases[1]
    value, accuracy = train.evaluate(net, x, y, chunk=7)  # 4 chunks, the last partial
    assert value == pytest.approx(expected, rel=GRAD_RTOL)
    assert accuracy == np.mean(np.argmax(logits, axis=1) == y)


# ----------------------------------------------------------------------------------------------------------------
# fit and fit_many


def tiny_dataset(rng, rows=48, features=6, classes=3):
    x = rng.standard_normal((rows, features))
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    return data.from_arrays(x, y, x[:16], y[:16], dtype=np.float64, standardize=False, classes=classes)


def test_fit_full_batch_sgd_follows_the_reference_trajectory(rng):
    """With batch = the whole training split every step sees all rows (in a Philox order, which the mean ignores),
    so plain SGD must follow w <- w - lr grad L(w) of the NumPy reference step by step."""
    dataset = tiny_dataset(rng)
    net = make_net((6, 5, 3), "tanh")
    weights, biases = layers(net)
    lr, steps = 0.3, 8
    history = train.fit(
        net, dataset, optim.SGD(lr=lr), steps=steps, batch=dataset.x_train.shape[0], progress=False, record_layers=False
    )
    expected_losses = []
    for _ in range(steps):
        value, weight_grads, bias_grads = naive.train_loss_and_grad(
            weights, biases, "tanh", dataset.x_train, dataset.y_train
        )
        expected_losses.append(value)
        weights = [w - lr * g for w, g in zip(weights, weight_grads)]
        biases = [b - lr * g for b, g in zip(biases, bias_grads)]
    np.testing.assert_allclose(history.train_loss, expected_losses, rtol=1e-12)
    for l in range(1, 3):
        np.testing.assert_allclose(net.weights(l), weights[l - 1], rtol=1e-12, atol=1e-14)


def test_fit_records_the_update_ratio_of_its_sgd_step(rng):
    """For SGD the update of W^(l) is lr dL/dW^(l), so update_ratio = lr grad_norm / ||W^(l) before||."""
    dataset = tiny_dataset(rng)
    net = make_net((6, 5, 5, 3), "relu")
    lr = 0.05
    history = train.fit(net, dataset, optim.SGD(lr=lr), steps=4, batch=16, eval_every=2, progress=False)
    assert list(history.record_steps) == [2, 4] and history.pre_var.shape == (2, 3)
    before = net.weights(3) + lr * net.weight_grads(3)  # the step-4 update undone
    assert history.update_ratio[-1, 2] == pytest.approx(
        lr * history.grad_norm[-1, 2] / np.linalg.norm(before), rel=1e-10
    )
    assert list(history.eval_steps) == [0, 2, 4]


def test_batches_are_a_fresh_permutation_each_epoch():
    order0 = data.permutation(10, seed=4, epoch=0)
    assert sorted(order0) == list(range(10))
    assert not np.array_equal(order0, data.permutation(10, seed=4, epoch=1))
    assert np.array_equal(order0, data.permutation(10, seed=4, epoch=0))
    rows = np.concatenate([data.batch_rows(10, 3, step, seed=4) for step in range(3)])
    assert np.array_equal(rows, order0[:9])  # drop_last: one epoch is 3 batches of 3


def test_fit_many_trains_each_net_as_fit_would(rng):
    dataset = tiny_dataset(rng)
    lrs, seeds = [0.1, 0.3, 0.02], [5, 6, 7]
    nets = [make_net((6, 5, 5, 3), "tanh", seed=s) for s in (1, 2, 3)]
    singles = [make_net((6, 5, 5, 3), "tanh", seed=s) for s in (1, 2, 3)]
    optimizer = optim.Adam(lr=1.0)
    many = train.fit_many(
        nets, dataset, optimizer, steps=6, batch=8, lrs=lrs, seeds=seeds, eval_every=3, progress=False
    )
    for k in range(3):
        one = train.fit(
            singles[k],
            dataset,
            optim.Adam(lr=lrs[k]),
            steps=6,
            batch=8,
            seed=seeds[k],
            eval_every=3,
            progress=False,
            record_layers=False,
        )
        np.testing.assert_allclose(many[k].train_loss, one.train_loss, rtol=1e-12)
        np.testing.assert_allclose(many[k].test_accuracy, one.test_accuracy)
        np.testing.assert_allclose(many[k].test_loss, one.test_loss, rtol=1e-12)
        np.testing.assert_allclose(nets[k].params, singles[k].params, rtol=1e-11, atol=1e-14)


def test_a_diverging_run_stops_and_reports_its_step(rng):
    dataset = tiny_dataset(rng)
    net = make_net((6, 5, 3), "relu")
    history = train.fit(net, dataset, optim.SGD(lr=1e200), steps=50, batch=16, progress=False)
    assert history.diverged_at is not None and history.diverged_at <= 50
    assert history.train_loss.size == history.diverged_at
    assert not math.isfinite(history.train_loss[-1]) and np.all(np.isfinite(history.train_loss[:-1]))
    assert np.all(np.isfinite(net.params))  # the parameters before the diverging step
    with pytest.raises(train.DivergenceError, match="step"):
        train.fit(
            make_net((6, 5, 3), "relu"),
            dataset,
            optim.SGD(lr=1e200),
            steps=50,
            batch=16,
            progress=False,
            on_divergence="raise",
        )


def test_a_step_that_overflows_the_parameters_is_a_divergence(rng):
    """Inputs of 1e6 give a finite loss and gradients far above 2, so SGD at lr 1e308 overflows the parameters in
    its first step: the optimizer reports it (NonFiniteError, where="params") and fit stops there as a divergence,
    or raises DivergenceError saying so."""
    x = 1e6 * rng.standard_normal((48, 6))
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    dataset = data.from_arrays(x, y, x[:16], y[:16], dtype=np.float64, standardize=False, classes=3)
    net = make_net((6, 5, 3), "relu")
    history = train.fit(net, dataset, optim.SGD(lr=1e308), steps=5, batch=16, progress=False)
    assert history.diverged_at == 1 and math.isfinite(history.train_loss[0])
    assert not np.all(np.isfinite(net.params))  # the step was applied
    with pytest.raises(train.DivergenceError, match=r"the step made \d+ parameter\(s\) non-finite at step 1"):
        train.fit(
            make_net((6, 5, 3), "relu"),
            dataset,
            optim.SGD(lr=1e308),
            steps=5,
            batch=16,
            progress=False,
            on_divergence="raise",
        )


def test_fit_many_stops_a_diverging_net_and_trains_the_others(rng):
    dataset = tiny_dataset(rng)
    nets = [make_net((6, 5, 3), "relu", seed=s) for s in (1, 2)]
    histories = train.fit_many(nets, dataset, optim.SGD(lr=0.1), steps=30, batch=16, lrs=[0.1, 1e200], progress=False)
    assert histories[0].diverged_at is None and histories[0].train_loss.size == 30
    assert histories[1].diverged_at is not None and np.all(np.isfinite(nets[1].params))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda net, x, y: train.loss_and_grad(net, x, y, loss="hinge"), "loss"),
        (lambda net, x, y: train.loss_and_grad(net, x, y + 3), "labels in 0..2"),
        (lambda net, x, y: train.loss_and_grad(net, x[:, :2], y), "x must have shape"),
        (lambda net, x, y: train.loss_and_grad(net, x, y[:2]), "y must be a 1-d array"),
        (lambda net, x, y: train.loss_and_grad("net", x, y), "testbed.nn.MLP"),
        (lambda net, x, y: train.fit(net, "mnist1d", optim.SGD(), steps=1), "Dataset"),
        (lambda net, x, y: train.fit(net, data.from_arrays(x, y), "sgd", steps=1), "optimizer"),
        (lambda net, x, y: train.fit(net, data.from_arrays(x, y), optim.SGD(), steps=0), "steps"),
        (lambda net, x, y: train.fit(net, data.from_arrays(x, y), optim.SGD(), steps=1, batch=99), "batch"),
        (lambda net, x, y: train.fit(net, data.from_arrays(x[:, :3], y), optim.SGD(), steps=1), "input width"),
        (lambda net, x, y: train.fit_many([], data.from_arrays(x, y), optim.SGD(), steps=1), "at least one"),
    ],
)
def test_bad_input_gets_a_clear_error(rng, call, match):
    net = make_net((4, 3, 3), "relu")
    x, y = batch(rng, 6, 4, 3)
    with pytest.raises(ValueError, match=match):
        call(net, x, y)


def test_mlp_output_must_be_named():
    with pytest.raises(ValueError, match="output must be one of 'activation', 'linear'"):
        nn.MLP((3, 2), "relu", output="softmax")


def test_fit_many_refuses_what_would_not_fit_before_allocating(rng, monkeypatch):
    from testbed import backend

    dataset = tiny_dataset(rng)
    nets = [make_net((6, 5, 3), "relu", seed=s) for s in (1, 2)]
    monkeypatch.setattr(backend, "available_memory", lambda: 1000)  # bytes: less than two nets need
    with pytest.raises(backend.MemoryLimitError, match="2 nets of"):
        train.fit_many(nets, dataset, optim.Adam(), steps=1, batch=8, progress=False)


def test_accuracy_breaks_ties_towards_the_first_class_as_argmax_does(rng):
    """All-zero parameters give equal logits: every prediction is class 0 (NumPy's argmax), so the accuracy is
    the share of label 0."""
    net = nn.MLP((4, 3, 3), "relu", bias=True, output="linear")
    x = rng.standard_normal((20, 4))
    y = np.repeat([0, 1, 2], [5, 7, 8])  # unequal class counts: first, middle and last maximum differ
    assert train.evaluate(net, x, y)[1] == 5 / 20


def test_eval_every_zero_never_evaluates(rng):
    dataset = tiny_dataset(rng)
    history = train.fit(
        make_net((6, 5, 3), "relu"), dataset, optim.SGD(lr=0.1), steps=3, batch=8, eval_every=0, progress=False
    )
    assert history.eval_steps.size == 0 and history.record_steps.size == 0 and history.train_loss.size == 3
    with pytest.raises(ValueError, match="eval_every"):
        train.fit(
            make_net((6, 5, 3), "relu"), dataset, optim.SGD(lr=0.1), steps=3, batch=8, eval_every=-1, progress=False
        )


# ----------------------------------------------------------------------------------------------------------------
# BLAS threads


def _blas_threads_seen_by(monkeypatch, name):
    """Replace kernels.NAME by a wrapper that records the BLAS libraries' thread counts while it runs."""
    seen = []
    original = getattr(train.kernels, name)

    def recording(*args):
        seen.append({lib.num_threads for lib in train._blas_controller().select(user_api="blas").lib_controllers})
        return original(*args)

    monkeypatch.setattr(train.kernels, name, recording)
    return seen


def test_every_step_runs_its_products_on_one_blas_thread(rng, monkeypatch):
    """Small products: chunks of rows, large ones: parts of each product, one thread each; BLAS's own pool never
    (its threads spin between products and fight the step's threads for the cores)."""
    assert train.step_blas_threads((128,) * 31, 128) == 1  # bench_train's small case: 2.1 M multiply-adds
    assert train.step_blas_threads((1024,) * 11, 256) is None  # its big case: 268 M
    limit = train.SMALL_PRODUCT
    assert train.step_blas_threads((limit, 1, 1), 1) == 1 and train.step_blas_threads((limit + 1, 1, 1), 1) is None
    controller = train._blas_controller()
    seen = _blas_threads_seen_by(monkeypatch, "loss_and_grad_parts_cpu")
    net = nn.MLP((5, 7, 3), "tanh", output="linear").initialize("glorot_normal", seed=1)
    x, y = rng.standard_normal((4, 5)), rng.integers(0, 3, 4)
    with controller.limit(limits=2, user_api="blas"):  # two threads around the calls, so one inside is the step's
        train.loss_and_grad(net, x, y)
        train.Step(net, 4)(x, y, np.arange(4))
        after = {lib.num_threads for lib in controller.select(user_api="blas").lib_controllers}
    assert seen == [{1}, {1}]
    assert after == {2}  # the limit ends with the step


def test_a_step_cut_into_parts_is_the_one_pass_step_on_any_thread_count(rng, monkeypatch):
    """Every product cut into STEP_PARTS parts (rows of the batch, then units of each layer): the same bits on 1 or
    2 threads, and the one-pass step's numbers (STEP_PARTS = 1; each entry the same sum, though BLAS may round a
    product of another shape in the last bit). Float64, the type the reference tests compile."""
    import numba

    net = make_net((7, 6, 5, 4), "tanh", output="activation")
    x, y = batch(rng, 9, 7, 4)
    rows = np.array([8, 0, 3, 5, 1, 7, 2, 6, 4], dtype=np.int64)
    code = train.LOSSES["mse"]
    runs = []
    previous = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            kernel = train._StepKernel(net, rows.size, code)
            assert (kernel.chunks, kernel.parts, kernel.blas_threads) == (1, train.STEP_PARTS, 1)
            runs.append((kernel(net, x, y, rows), net.grads.copy()))
    finally:
        numba.set_num_threads(previous)
    assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])
    monkeypatch.setattr(train, "STEP_PARTS", 1)
    one_pass = train._StepKernel(net, rows.size, code)
    assert one_pass.parts == 1 and one_pass.blas_threads == train.step_blas_threads(net.widths, rows.size)
    assert one_pass(net, x, y, rows) == pytest.approx(runs[0][0], rel=1e-15)
    np.testing.assert_allclose(net.grads, runs[0][1], rtol=1e-14, atol=1e-16)


#: Scale of the upper layers' weights in the planted-gradient tests: their deltas at layer 1 are then far above 1,
#: so that each product delta_ij * x_ik with x_ik near the largest float overflows.
PLANT_SCALE = 1e4


def planted_gradient_case(rng, dtype, rows=9):
    """A linear net, inputs and labels whose loss is finite and whose gradient is not: feature 2 holds +-(largest
    float / 2) and layer 1's weights on it are 0, so the forward pass never sees it (0 * x = 0), while dW^(1)[:, 2]
    = sum_i delta_i x_i2 overflows to inf wherever a row's delta is not 0."""
    net = nn.MLP((6, 5, 4, 3), "linear", bias=True, output="linear", dtype=dtype)
    net.initialize("glorot_normal", seed=1, bias_var=0.1)
    net.weights(1)[:, 2] = 0.0
    for l in range(2, net.depth + 1):
        net.weights(l)[...] *= PLANT_SCALE
    x = rng.standard_normal((rows, 6))
    x[:, 2] = np.sign(x[:, 2]) * np.finfo(dtype).max / 2
    return net, x.astype(dtype), rng.integers(0, 3, rows)


@pytest.mark.parametrize(
    "path,dtype",
    # the dtypes the other tests of each path compile
    [("parts", np.float64), ("one pass", np.float64), ("chunks", np.float32)],
)
def test_the_step_counts_the_nonfinite_entries_of_its_gradient(rng, monkeypatch, path, dtype):
    """Step.nonfinite, counted by the kernel while it writes the gradient, is the number of NaN and inf entries of
    net.grads (np.isfinite's count) on each of the step's paths: 0 on a finite gradient; the inf entries of
    dW^(1)[:, 2] under a finite loss (the case the optimizer's check is for); every entry a NaN input reaches."""
    monkeypatch.setattr(train, "STEP_PARTS", 1 if path == "one pass" else 2)
    if path == "chunks":
        monkeypatch.setattr(train, "MIN_CHUNK_ROWS", 4)
    net, x, y = planted_gradient_case(rng, dtype)
    step = train.Step(net, x.shape[0])
    expected = {"parts": (1, 2), "one pass": (1, 1), "chunks": (2, 1)}[path]
    assert (step.kernel.chunks, step.kernel.parts) == expected and step.nonfinite is None
    rows = np.arange(x.shape[0])
    finite = x.copy()
    finite[:, 2] = 1.0
    nan_row = finite.copy()
    nan_row[4, 0] = np.nan
    counts = []
    for inputs in (finite, x, nan_row):
        loss = step(inputs, y, rows)
        assert step.nonfinite == np.count_nonzero(~np.isfinite(net.grads))
        counts.append((math.isfinite(loss), step.nonfinite))
    assert counts[0] == (True, 0)
    assert counts[1][0] and 0 < counts[1][1] <= net.widths[1]  # only column 2 of dW^(1), the loss finite
    assert counts[2][0] is False and counts[2][1] > net.widths[1]


def test_fit_takes_the_steps_count_and_still_refuses_a_nonfinite_gradient(rng, monkeypatch):
    """fit hands the step kernel's count to the optimizer, which then never counts the gradient itself; a finite loss
    with a non-finite gradient is still a divergence with the parameters of before that step."""

    def never(g):
        raise AssertionError("the optimizer counted the gradient again")

    monkeypatch.setattr(optim.kernels, "count_nonfinite_cpu", never)
    history = train.fit(
        make_net((6, 5, 3), "tanh"),
        tiny_dataset(rng),
        optim.Adam(lr=0.01),
        steps=3,
        batch=16,
        progress=False,
        eval_every=0,
    )
    assert history.diverged_at is None and np.all(np.isfinite(history.train_loss))
    net, x, y = planted_gradient_case(rng, np.float64, rows=24)
    dataset = data.from_arrays(x, y, x, y, dtype=np.float64, standardize=False, classes=3)
    before = net.params.copy()
    with pytest.raises(train.DivergenceError, match="the gradient is not finite at step 1"):
        train.fit(
            net, dataset, optim.SGD(lr=0.1), steps=2, batch=24, progress=False, eval_every=0, on_divergence="raise"
        )
    np.testing.assert_array_equal(net.params, before)


def test_loss_and_grad_keeps_its_buffers_and_gives_a_fresh_calls_bits():
    """Repeated calls reuse the net's kept step (its buffers), across batches of other sizes, other losses and a
    change of the step's settings, and give the bits of a net that has never been called (fresh buffers); a call
    made while another thread holds the kept step gets buffers of its own and the same bits."""
    import threading

    rng = np.random.default_rng(21)
    widths = [7, 33, 65, 5]
    net, fresh = make_net(widths, "tanh"), make_net(widths, "tanh")
    calls = [
        (rng.standard_normal((rows, widths[0])), rng.integers(0, widths[-1], rows), loss)
        for rows, loss in ((70, "cross_entropy"), (70, "cross_entropy"), (13, "mse"), (70, "cross_entropy"))
    ]
    for x, y, loss in calls:
        value = train.loss_and_grad(net, x, y, loss=loss)
        fresh_copy = make_net(widths, "tanh")
        assert value == train.loss_and_grad(fresh_copy, x, y, loss=loss)
        np.testing.assert_array_equal(net.grads, fresh_copy.grads)
    kept = train._kept_steps[net]
    assert kept[1].chunks > 1  # 70 rows: the step in chunks of rows, whose partial sums the kept buffers hold
    x, y, _ = calls[0]
    assert kept[2].acquire(blocking=False)  # as another thread in the middle of a call would hold it
    try:
        busy = threading.Thread(target=lambda: results.append(train.loss_and_grad(net, x, y)))
        results = []
        busy.start()
        busy.join()
    finally:
        kept[2].release()
    assert results == [train.loss_and_grad(fresh, x, y)]
    assert train._kept_steps[net] is kept  # the busy call did not replace the kept step


def test_loss_and_grad_keeps_no_step_above_its_byte_bound(monkeypatch):
    """A step whose buffers exceed KEEP_STEP_BYTES is not kept (a large batch's activations would otherwise stay in
    memory with the net), and drops the step kept before it; its result is a fresh net's."""
    rng = np.random.default_rng(22)
    widths = [7, 33, 65, 5]
    net, fresh = make_net(widths, "tanh"), make_net(widths, "tanh")
    x, y = rng.standard_normal((70, widths[0])), rng.integers(0, widths[-1], 70)
    train.loss_and_grad(net, x[:20], y[:20])
    assert net in train._kept_steps
    monkeypatch.setattr(train, "KEEP_STEP_BYTES", 0)
    assert train.loss_and_grad(net, x, y) == train.loss_and_grad(fresh, x, y)
    np.testing.assert_array_equal(net.grads, fresh.grads)
    assert net not in train._kept_steps and fresh not in train._kept_steps
