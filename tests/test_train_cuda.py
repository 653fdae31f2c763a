"""testbed.train_cuda: train.fit on the GPU (the CUDA simulator) follows the CPU's fit and keeps its arrays on the
device, one copy back per step."""

import math

import numpy as np
import pytest
from numba import cuda
from numba.cuda.simulator.cudadrv import devicearray as simulator_arrays

from testbed import data, nn, optim, train
from testbed.kernels import nn as nn_kernels

#: CPU against the simulator in float64: the same rules, another summation order (tiled products, atomic column
#: sums), a few ulps per step over a handful of steps.
FIT_RTOL = 1e-10
#: A small CUDA tile, read by the simulator at launch: few threads per block (the simulator's cost), partial tiles
#: on the 4 features and the batch's 4 rows.
SMALL_TILE = 3
ROWS, TEST_ROWS, FEATURES, CLASSES, BATCH = 8, 3, 4, 3, 4  # 2 steps per epoch


@pytest.fixture(autouse=True)
def small_tile(monkeypatch):
    monkeypatch.setattr(nn_kernels, "TILE", SMALL_TILE)


def tiny_dataset(rng):
    x = rng.standard_normal((ROWS, FEATURES))
    y = rng.integers(0, CLASSES, ROWS)
    return data.from_arrays(x, y, x[:TEST_ROWS], y[:TEST_ROWS], dtype=np.float64, standardize=False, classes=CLASSES)


def make_net(backend, output="linear", activation="tanh"):
    net = nn.MLP((FEATURES, 3, CLASSES), activation, bias=True, output=output, backend=backend)
    return net.initialize("glorot_normal", seed=2, bias_var=0.1)


def fit_both(dataset, make_optimizer, output="linear", **options):
    runs = []
    for backend in ("cpu", "cuda"):
        net = make_net(backend, output)
        history = train.fit(net, dataset, make_optimizer(backend), batch=BATCH, progress=False, **options)
        runs.append((net, history))
    return runs


def test_cuda_fit_follows_the_cpu_fit(rng):
    """Adam over three epochs, evaluated and recorded at step 5: every number of the History, the parameters and the
    last gradient agree."""
    (cpu, expected), (gpu, history) = fit_both(
        tiny_dataset(rng), lambda backend: optim.Adam(lr=0.05, backend=backend), steps=5, eval_every=5
    )
    assert history.steps == expected.steps == 5 and history.diverged_at is None
    assert list(history.eval_steps) == [0, 5] and list(history.record_steps) == [5]
    for name in ("train_loss", "test_loss", "train_eval_loss", "pre_var", "post_std", "grad_norm", "update_ratio"):
        np.testing.assert_allclose(getattr(history, name), getattr(expected, name), rtol=FIT_RTOL, err_msg=name)
    np.testing.assert_array_equal(history.test_accuracy, expected.test_accuracy)
    np.testing.assert_allclose(gpu.params, cpu.params, rtol=FIT_RTOL, atol=1e-14)
    np.testing.assert_allclose(gpu.grads, cpu.grads, rtol=FIT_RTOL, atol=1e-14)


def test_cuda_fit_with_an_activated_output_and_mse_follows_the_cpu(rng):
    (cpu, expected), (gpu, history) = fit_both(
        tiny_dataset(rng),
        lambda backend: optim.SGD(lr=0.2, momentum=0.9, backend=backend),
        steps=3,
        loss="mse",
        eval_every=0,
        record_layers=False,
        output="activation",
    )
    np.testing.assert_allclose(history.train_loss, expected.train_loss, rtol=FIT_RTOL)
    np.testing.assert_allclose(gpu.params, cpu.params, rtol=FIT_RTOL, atol=1e-14)


def count_transfers(monkeypatch):
    """Count the copies between host and device: explicit (to_device, copy_to_host) and implicit (a host array
    passed to a kernel, which the simulator copies through auto_device, as the driver would)."""
    counts = {"to_device": 0, "to_host": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(cuda, "to_device", counting("to_device", cuda.to_device))
    monkeypatch.setattr(simulator_arrays, "auto_device", counting("to_device", simulator_arrays.auto_device))
    array_type = type(cuda.device_array(1))
    monkeypatch.setattr(array_type, "copy_to_host", counting("to_host", array_type.copy_to_host))
    return counts


def test_each_cuda_step_copies_only_its_report_back(rng, monkeypatch):
    """Two more steps (one more epoch) cost two copies back (the reports) and one copy over (the epoch's
    permutation): the batches, parameters, gradients and optimizer state never travel during the loop."""
    dataset = tiny_dataset(rng)
    counts = count_transfers(monkeypatch)
    seen = []
    for steps in (1, 3):
        counts.update(to_device=0, to_host=0)
        net = make_net("cuda")
        train.fit(
            net,
            dataset,
            optim.Adam(lr=0.05, backend="cuda"),
            steps=steps,
            batch=BATCH,
            eval_every=0,
            record_layers=False,
            progress=False,
        )
        seen.append(dict(counts))
    assert seen[1]["to_host"] - seen[0]["to_host"] == 2
    assert seen[1]["to_device"] - seen[0]["to_device"] == 1


# the simulator runs the kernels as NumPy scalars, which warn on the overflow the test provokes
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_cuda_step_that_overflows_the_parameters_stops_the_run_there(rng):
    """Inputs of 1e6 into a ReLU net and SGD at lr 1e308 overflow the parameters in step 1; the device loop learns
    it from step 2's report (no evaluation in between) and reports step 1, as the CPU loop does."""
    x = 1e6 * rng.standard_normal((ROWS, FEATURES))
    y = rng.integers(0, CLASSES, ROWS)
    dataset = data.from_arrays(x, y, x[:TEST_ROWS], y[:TEST_ROWS], dtype=np.float64, standardize=False)
    options = dict(steps=3, batch=BATCH, eval_every=0, progress=False)
    net = make_net("cuda", activation="relu")
    history = train.fit(net, dataset, optim.SGD(lr=1e308, backend="cuda"), **options)
    assert history.diverged_at == 1 and history.train_loss.size == 1 and math.isfinite(history.train_loss[0])
    assert not np.all(np.isfinite(net.params))  # the step was applied
    with pytest.raises(train.DivergenceError, match=r"the step made \d+ parameter\(s\) non-finite at step 1"):
        train.fit(
            make_net("cuda", activation="relu"),
            dataset,
            optim.SGD(lr=1e308, backend="cuda"),
            on_divergence="raise",
            **options,
        )
