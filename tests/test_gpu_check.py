"""benchmarks/gpu_check.py, the script a GPU session runs, works before a GPU is at hand: under the simulator."""

import importlib.util
import json
import os

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "gpu_check.py")


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The CUDA products' tile side in this test: the simulator runs every thread of a block as a Python thread, and a
#: 16 x 16 block over a 3-wide layer is 256 threads mostly idle (the simulator reads the tile at launch).
QUICK_TILE = 4


@pytest.fixture
def quick_tiles(monkeypatch):
    from testbed.kernels import curvature as curvature_kernels
    from testbed.kernels import nn as nn_kernels

    monkeypatch.setattr(nn_kernels, "TILE", QUICK_TILE)
    monkeypatch.setattr(curvature_kernels, "TILE", QUICK_TILE)


def test_quick_run_under_the_simulator_passes_every_parity_check(tmp_path, capsys, quick_tiles):
    gpu_check = load_script()
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {row["name"] for row in report["parity"]} == set(gpu_check.PARITY_TOLERANCES)
    assert all(row["passed"] for row in report["parity"])
    # the simulator runs the same arithmetic as the CPU kernels: exact agreement, except the MLP passes (training
    # and curvature included), whose CPU product is BLAS and whose CUDA product is a tiled kernel (another
    # summation order)
    products = {"mlp_pre_var", "train_loss_and_grads", "train_fit", "curvature_hvp"}
    exact = {row["name"]: row["value"] for row in report["parity"] if row["name"] not in products}
    assert exact == {name: (1.0 if name.endswith("fraction") else 0.0) for name in exact}
    assert len(report["timings"]) == 5 and all(row["gpu_s"] > 0 for row in report["timings"])
    assert "GPU speed-up" in capsys.readouterr().out


def test_a_failed_check_fails_the_run(monkeypatch, quick_tiles):
    gpu_check = load_script()
    monkeypatch.setitem(gpu_check.PARITY_TOLERANCES, "init_normal", -1.0)
    monkeypatch.setattr(gpu_check, "timings", lambda sizes, repeats: [])
    assert gpu_check.main(["--quick"]) == 1


@pytest.mark.parametrize("bad", [["--repeats", "x"], ["--nonsense"]])
def test_bad_arguments_exit_with_usage(bad):
    with pytest.raises(SystemExit) as stop:
        load_script().main(bad)
    assert stop.value.code == 2
