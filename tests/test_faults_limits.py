"""Limits: the memory guard refuses, before allocating, what would not fit; values that overflow are refused at
the door with the argument named; arrays in a foreign byte order get a clear error."""

import tracemalloc
import warnings

import numpy as np
import pytest

from testbed import backend, landscapes, montecarlo, nn, optim

#: Most bytes a refused call may allocate (its argument checks; nothing of the refused size).
REFUSAL_ALLOCATION_LIMIT = 1 << 20


def peak_allocation(call):
    """(exception raised by ``call()``, peak bytes traced while it ran)."""
    tracemalloc.start()
    try:
        with pytest.raises(backend.MemoryLimitError) as info:
            call()
        return info.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_escape_times_refuses_a_run_that_does_not_fit_without_allocating_it():
    f = landscapes.saddle(dim=1000)
    error, peak = peak_allocation(lambda: montecarlo.escape_times(f, optim.SGD(lr=0.01), trials=10**9))
    assert peak < REFUSAL_ALLOCATION_LIMIT
    message = str(error)
    assert "trials x dim = 1000000000 x 1000" in message and "available" in message


def test_memory_guard_compares_the_estimate_with_the_available_memory(monkeypatch):
    estimate = montecarlo.memory_estimate(5000, 10)
    assert estimate >= 5000 * 10 * 8 * 4  # at least the iterate and three slots
    monkeypatch.setattr(backend, "available_memory", lambda: int(estimate / backend.MEMORY_FRACTION) + 1)
    assert montecarlo.check_memory(5000, 10) == estimate
    monkeypatch.setattr(backend, "available_memory", lambda: int(estimate / backend.MEMORY_FRACTION) - 1)
    with pytest.raises(backend.MemoryLimitError, match="trials x dim = 5000 x 10"):
        montecarlo.check_memory(5000, 10)
    monkeypatch.setattr(backend, "available_memory", lambda: None)  # unknown: no limit
    assert montecarlo.check_memory(5000, 10) == estimate


def test_available_memory_is_a_positive_size():
    available = backend.available_memory()
    assert available is None or available > 0


@pytest.mark.parametrize(
    "kwargs", [dict(depth=10**9, width=512), dict(depth=40, width=8000), dict(depth=50, width=100000)]
)
def test_propagate_refuses_a_net_that_does_not_fit_without_allocating_it(kwargs):
    error, peak = peak_allocation(lambda: nn.propagate("he_normal", "relu", batch=1024, **kwargs))
    assert peak < REFUSAL_ALLOCATION_LIMIT
    assert f"{kwargs['depth']} x {kwargs['width']} x 1024" in str(error)


def test_mlp_refuses_parameters_that_do_not_fit():
    error, peak = peak_allocation(lambda: nn.MLP([100000] * 50))
    assert peak < REFUSAL_ALLOCATION_LIMIT and "parameters and gradients" in str(error)


def test_nn_memory_estimate_counts_weights_and_kept_activations():
    depth, width, batch = 3, 7, 5
    weights = depth * width * width
    assert nn.memory_estimate(depth, width, batch) == 8 * (2 * weights + batch * (2 * depth * width + 4 * width))
    assert nn.memory_estimate(depth, [7, 7, 7], batch) == nn.memory_estimate(depth, width, batch)


CLI_REFUSALS = {
    "saddle_dim": (["saddle", "--dim", "100000000"], "trials x dim"),
    "variance_width": (["variance", "--depth", "40", "--width", "8000"], "depth x width x batch"),
    "variance_depth": (["variance", "--depth", "1000000000"], "depth x width x batch"),
    "amsgrad_C": (["amsgrad", "--C", "1e308"], "C must be at most"),
    "ravine_kappa_huge": (["ravine", "--kappas", "1e300"], "kappas must be at most"),
    "ravine_kappa_large": (["ravine", "--kappas", "1e20"], "kappas must be at most"),
    "variance_std": (["variance", "--inits", "normal:std=1e300"], "inits: 'normal:std=1e300'"),
    "variance_bias": (["variance", "--bias-var", "1e308"], "bias_var must be at most"),
}


@pytest.mark.parametrize("case", list(CLI_REFUSALS))
def test_command_lines_refuse_what_does_not_fit_or_overflows_in_one_line(tmp_path, capsys, case):
    """Exit status 2, one line naming the argument, no output folder, no traceback or warning."""
    from testbed.scenarios import common

    args, expected = CLI_REFUSALS[case]
    module = common.load_scenario(args[0])
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning on the way would be a failure
        status = common.main(module, [*args[1:], "--no-progress", "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], captured.err
    assert captured.out == "" and not out.exists()


def test_empty_output_folder_is_refused(tmp_path, capsys, monkeypatch):
    from testbed.scenarios import common, saddle

    monkeypatch.chdir(tmp_path)
    assert common.main(saddle, ["--out", "", "--quick"]) == 2
    assert "non-empty path" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("order", [">f8", ">f4"])
def test_optimizer_refuses_big_endian_arrays_by_name(order):
    params = np.ones(4, dtype=order)
    grads = np.ones(4, dtype=order)
    opt = optim.SGD(lr=0.1)
    with pytest.raises(ValueError, match="params must be in the machine's byte order"):
        opt.step(params, grads, opt.init(np.ones(4, dtype=np.dtype(order).newbyteorder("="))))


@pytest.mark.parametrize("order", [">f8", ">f4"])
def test_big_endian_inputs_are_converted_where_they_are_read_only(order):
    f = landscapes.saddle(dim=3)
    start = np.array([0.5, 0.0, 0.0], dtype=order)
    assert montecarlo._starts(f, start, 2, 0).dtype.isnative
    net = nn.MLP([3, 2], "relu")
    x = net._check_batch(np.ones((2, 3), dtype=order), 3, "inputs")
    assert x.dtype.isnative and np.all(x == 1.0)
