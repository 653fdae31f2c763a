"""Smoke tests of the plateau, ravine, minima and amsgrad scenarios: tiny runs, every figure, the contract."""

import pytest

from testbed.scenarios import amsgrad, common, minima, plateau, ravine

#: Parameters small enough for a test (seconds), still exercising every figure.
TINY = {
    plateau: dict(
        lr=[0.05, 0.2],
        optimizers=["sgd", "adam"],
        saturation=[1.0, 2.0],
        depths=[2, 3],
        scales=[1e-1, 1e-2],
        layer_scales=[0.6],
        max_depth=3,
    ),
    ravine: dict(kappas=[10.0, 100.0], lr=[0.005, 0.019, 0.021], path_steps=20),
    minima: dict(trials=40, max_steps=300),
    amsgrad: dict(max_steps=2500, sweep_C=[3.0, 10.0]),
}


@pytest.mark.parametrize("module", list(TINY), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_scenario_runs_tables_saves_and_draws_every_figure(module, tmp_path):
    result = module.run(quick=True, progress=False, **TINY[module])
    name = module.__name__.rsplit(".", 1)[-1]
    assert result.scenario == name
    assert set(module.DEFAULTS) <= set(result.params)
    assert module.table(result).strip()
    result.save(tmp_path)
    paths = common.plot(module, result, tmp_path)
    stems = {p.stem for p in paths}
    assert stems == set(module.FIGURES)


def test_scenario_claims_hold_in_the_tiny_runs():
    ravine_result = ravine.run(quick=True, progress=False, **TINY[ravine])
    runs = ravine_result.tables["runs"]
    assert all(r["diverged"] == r["diverges"] for r in runs if r["kind"] == "lr")
    assert all(r["steps"] == r["theory_steps"] for r in runs if r["kind"] == "kappa")
    reddi = amsgrad.run(quick=True, progress=False, **TINY[amsgrad])
    assert reddi.summary["final_x_adam"] > 0.99 and reddi.summary["final_x_amsgrad"] < -0.99


@pytest.mark.parametrize(
    "module,bad,name",
    [
        (plateau, dict(lr=[-0.1]), "lr"),
        (ravine, dict(optimizers=["adam"]), "optimizers"),
        (minima, dict(tilt=5.0), "tilt"),
        (amsgrad, dict(C=1.0), "C"),
        (plateau, dict(nonsense=1), "nonsense"),
    ],
)
def test_bad_parameters_name_themselves(module, bad, name):
    with pytest.raises(ValueError, match=name):
        module.run(quick=True, progress=False, **bad)
