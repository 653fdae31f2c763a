"""The GPU-memory guard: a CUDA run compares its estimate with the device's free memory and refuses, before any
device array exists, what would not fit. Under the simulator the free memory is unknown, so the tests replace
:func:`testbed.backend.device_free_memory` with a small GPU."""

import numpy as np
import pytest

from testbed import backend, data, init, landscapes, montecarlo, nn, optim, rng, spectra, train

#: Free bytes of the pretend GPU: below every estimate of the calls below (each holds at least a few hundred
#: float64 values), far above zero so that a refusal is the comparison's doing, not a degenerate case.
SMALL_GPU = 256


@pytest.fixture
def small_gpu(monkeypatch):
    """A GPU with SMALL_GPU bytes free, on which any device allocation fails the test."""
    from numba import cuda

    def allocated(*args, **kwargs):
        raise AssertionError("a device array was allocated before the memory guard refused")

    monkeypatch.setattr(backend, "device_free_memory", lambda: SMALL_GPU)
    monkeypatch.setattr(backend, "to_device", allocated)
    monkeypatch.setattr(cuda, "device_array", allocated)
    monkeypatch.setattr(cuda, "to_device", allocated)


def refusal(call):
    with pytest.raises(backend.MemoryLimitError) as info:
        call()
    message = str(info.value)
    assert "of GPU memory" in message and f"the {backend.format_bytes(SMALL_GPU)} free on the GPU" in message
    assert "\n" not in message
    return message


def test_device_free_memory_is_unknown_under_the_simulator():
    assert backend.simulator_enabled() and backend.device_free_memory() is None


def test_device_guard_compares_the_estimate_with_the_free_gpu_memory(monkeypatch):
    """One guard, two memories: the device flavour reads device_free_memory, the host one available_memory."""
    estimate = montecarlo.memory_estimate(300, 10, backend="cuda")
    monkeypatch.setattr(backend, "available_memory", lambda: None)  # the host has room: only the GPU is compared
    monkeypatch.setattr(backend, "device_free_memory", lambda: int(estimate / backend.MEMORY_FRACTION) + 1)
    assert montecarlo.check_memory(300, 10, backend="cuda") == estimate
    available = int(estimate / backend.MEMORY_FRACTION) - 1
    monkeypatch.setattr(backend, "device_free_memory", lambda: available)
    with pytest.raises(backend.MemoryLimitError) as info:
        montecarlo.check_memory(300, 10, backend="cuda")
    message = str(info.value)
    assert message.startswith(f"trials x dim = 300 x 10 needs about {backend.format_bytes(estimate)} of GPU memory")
    assert f"more than the {backend.format_bytes(available)} free on the GPU" in message
    assert montecarlo.check_memory(300, 10, backend="cpu") == montecarlo.memory_estimate(300, 10)  # no GPU involved
    monkeypatch.setattr(backend, "device_free_memory", lambda: None)  # unknown: no limit
    assert montecarlo.check_memory(300, 10, backend="cuda") == estimate


def test_the_host_flavour_keeps_its_wording(monkeypatch):
    monkeypatch.setattr(backend, "available_memory", lambda: 1000)
    with pytest.raises(backend.MemoryLimitError, match=r"^x needs about 2\.0 KiB of memory, more than the 1000 B "):
        backend.check_memory(2048, "x")
    with pytest.raises(backend.MemoryLimitError, match="available on this machine"):
        backend.check_memory(2048, "x")


def _propagate():
    nn.propagate("he_normal", "relu", 3, 16, batch=8, backend="cuda")


def _escape_times():
    montecarlo.escape_times(landscapes.saddle(dim=10), optim.SGD(lr=0.01), trials=100, max_steps=10, backend="cuda")


def _normal_draws():
    rng.normal(1000, backend="cuda")


def _init_fill():
    init.fill(np.empty(400), "he_normal", 20, 20, backend="cuda")


def _optimizer_step():
    params, opt = np.ones(100), optim.Adam(lr=1e-3, backend="cuda")
    opt.step(params, np.ones(100), opt.init(params))


ENTRY_POINTS = {
    "propagate": _propagate,
    "escape_times": _escape_times,
    "rng.normal": _normal_draws,
    "init.fill": _init_fill,
    "optimizer.step": _optimizer_step,
}


@pytest.mark.parametrize("name", list(ENTRY_POINTS))
def test_cuda_entry_points_refuse_before_allocating(small_gpu, name):
    refusal(ENTRY_POINTS[name])


def _cuda_net(widths=(16, 16, 4)):
    return nn.MLP(widths, "tanh", output="linear", backend="cuda").initialize("glorot_normal", seed=1)


def test_mlp_passes_refuse_before_allocating(monkeypatch):
    x = np.random.default_rng(0).standard_normal((8, 16))
    net = _cuda_net()
    net.forward(x)  # room on the GPU: the forward pass keeps its activations there
    monkeypatch.setattr(backend, "device_free_memory", lambda: SMALL_GPU)
    assert "the backward pass of a net of widths" in refusal(lambda: net.backward(np.ones((8, 4))))
    assert "the forward pass of a net of widths" in refusal(lambda: net.forward(x))


def test_fit_refuses_a_cuda_run_before_its_first_step(small_gpu):
    x = np.random.default_rng(0).standard_normal((32, 16))
    dataset = data.from_arrays(x, (x[:, 0] > 0).astype(np.int64), dtype=np.float64, standardize=False)
    net = nn.MLP((16, 16, 2), "tanh", output="linear", backend="cuda")  # initialised on the host: zeros are enough
    message = refusal(
        lambda: train.fit(net, dataset, optim.SGD(lr=0.1, backend="cuda"), steps=2, batch=16, progress=False)
    )
    assert "training a net of widths" in message and "on batches of 16 with sgd" in message


def test_jacobian_products_refuse_before_moving_the_weights(monkeypatch):
    """The forward pass fits; the (d^(l), d^(0)) products after it do not."""
    free = {"bytes": None}
    forward = nn.MLP.forward

    def forward_then_full(self, *args, **kwargs):
        stats = forward(self, *args, **kwargs)
        free["bytes"] = SMALL_GPU
        return stats

    monkeypatch.setattr(backend, "device_free_memory", lambda: free["bytes"])
    monkeypatch.setattr(nn.MLP, "forward", forward_then_full)
    message = refusal(lambda: spectra.jacobian_singular_values("orthogonal", "tanh", 2, 16, backend="cuda"))
    assert "the Jacobian products of a net of widths" in message


def test_a_cuda_scenario_refuses_in_one_line(monkeypatch, tmp_path, capsys):
    from testbed.scenarios import common, saddle

    monkeypatch.setattr(backend, "device_free_memory", lambda: SMALL_GPU)
    out = tmp_path / "out"
    assert common.main(saddle, ["--backend", "cuda", "--no-progress", "--quick", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "free on the GPU" in lines[0] and not out.exists()


def test_curvature_products_refuse_before_allocating(small_gpu):
    from testbed import curvature

    net = nn.MLP((4, 5, 3), "tanh", output="linear", backend="cuda")
    x, y = np.ones((6, 4)), np.zeros(6, dtype=np.int64)
    message = refusal(lambda: curvature.hvp(net, x, y, np.ones(net.size)))
    assert "curvature" in message
