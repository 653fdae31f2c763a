"""The variance scenario: a tiny run end to end (result, table, figures, command line) and its bad input."""

import numpy as np
import pytest
from scenario_checks import check_figures_and_saved_result, run_quick_command_line

from testbed.scenarios import variance

TINY = dict(
    inits=["zeros", "normal:std=0.01", "he_normal"],
    activations=["tanh", "relu"],
    depth=3,
    width=8,
    batch=4,
    phase_resolution=[3, 2],
    phase_points=[[1.5, 0.1], [3.0, 0.1]],
    phase_depth=4,
    phase_width=8,
    phase_batch=4,
)


@pytest.fixture(scope="module")
def tiny_result(one_thread):
    return variance.run(progress=False, **TINY)


def test_tiny_run_holds_measurement_and_theory(tiny_result):
    r = tiny_result
    assert r.scenario == "variance" and r.wall_time is not None
    assert r.arrays["pre_var_measured"].shape == (3, 2, 3)
    assert r.arrays["histograms"].shape == (3, 2, 3, variance.HISTOGRAM_BINS)
    rows = {(row["init"], row["activation"]): row for row in r.tables["summary"]}
    # W = 0: nothing moves; the zeros ReLU net is dead everywhere, as predicted
    assert rows[("zeros", "relu")]["dead_measured"] == rows[("zeros", "relu")]["dead_predicted"] == 1.0
    assert np.all(r.arrays["pre_var_measured"][0] == 0.0) and np.all(r.arrays["pre_var_predicted"][0] == 0.0)
    # normal(std=0.01), linear regime: the forward ratio is (n std^2)^2 = (8e-4)^2 for the 3-layer tanh net, up to
    # E[tanh(s)^2] = q (1 - 2q + ...) with q <= 8e-4 per layer
    assert rows[("normal(std=0.01)", "tanh")]["forward_predicted"] == pytest.approx((8 * 1e-4) ** 2, rel=4 * 8e-4)
    # the phase diagram: the critical line of tanh passes through sw2 = 1 at sb2 = 0
    assert r.arrays["critical_sigma_w2"][0] == pytest.approx(1.0, abs=1e-9)
    assert r.arrays["phase_xi_c"].shape == (2, 3)
    assert len(r.tables["phase_points"]) == 2
    text = variance.table(r)
    assert "he_normal" in text and "fwd L/1 meas" in text and "phase diagram" in text


def test_same_seed_same_numbers(tiny_result, one_thread):
    again = variance.run(progress=False, **TINY)
    np.testing.assert_array_equal(again.arrays["grad_var_measured"], tiny_result.arrays["grad_var_measured"])


def test_figures_and_saved_result(tiny_result, tmp_path):
    check_figures_and_saved_result(variance, tiny_result, tmp_path)


def test_command_line(tmp_path, capsys, one_thread):
    own = ["--inits", "he_normal", "--activations", "relu", "--depth", "2", "--width", "6", "--batch", "3"]
    assert "he_normal" in run_quick_command_line(variance, tmp_path, capsys, *own)


@pytest.mark.parametrize(
    "params,argument",
    [
        (dict(depth=0), "depth"),
        (dict(width=2.5), "width"),
        (dict(batch=1), "batch"),
        (dict(inits=["nope"]), "initialiser"),
        (dict(inits=["normal:std"]), "inits"),
        (dict(inits=["normal:std=nan"]), "std"),
        (dict(inits="he_normal"), "inits"),
        (dict(activations=["tanhh"]), "activation"),
        (dict(bias_var=-1.0), "bias_var"),
        (dict(phase_sigma_w2=[2.0, 1.0]), "phase_sigma_w2"),
        (dict(phase_resolution=[1, 5]), "phase_resolution"),
        (dict(phase_points=[[1.0]]), "phase_points"),
        (dict(backend="gpu"), "backend"),
        (dict(seed=-1), "seed"),
        (dict(widht=3), "widht"),
    ],
)
def test_bad_input_names_the_argument(params, argument):
    with pytest.raises(ValueError, match=argument):
        variance.run(progress=False, **params)


def test_quick_overrides_are_known_parameters():
    assert set(variance.QUICK) <= set(variance.DEFAULTS)


def test_cuda_backend_agrees_with_cpu(one_thread):
    # the CUDA kernels under the simulator (conftest), on tiny nets with several blocks and a partial last one
    small = dict(
        inits=["he_normal"],
        activations=["tanh"],
        depth=3,
        width=8,
        batch=4,
        bias_var=0.1,
        phase_resolution=[2, 2],
        phase_points=[],
    )
    cpu = variance.run(progress=False, backend="cpu", **small)
    cuda = variance.run(progress=False, backend="cuda", **small)
    for name in (
        "pre_var_measured",
        "grad_var_measured",
        "saturated_frac_measured",
        "dead_frac_measured",
        "histograms",
    ):
        np.testing.assert_allclose(cuda.arrays[name], cpu.arrays[name], rtol=1e-12, atol=1e-300)
