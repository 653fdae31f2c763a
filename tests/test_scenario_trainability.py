"""The trainability scenario: a tiny run end to end (result, table, figure, command line), the trainable-depth
rule and bad input."""

import numpy as np
import pytest

from testbed import results
from testbed.scenarios import trainability

TINY = dict(sigma_w2=[1.0, 4.0], depths=[2, 3], width=6, steps=4, batch=16)


@pytest.fixture(scope="module")
def tiny_result():
    return trainability.run(progress=False, **TINY)


def test_tiny_run_holds_the_grid_and_the_theory(tiny_result):
    r = tiny_result
    assert r.scenario == "trainability" and r.wall_time is not None
    assert r.arrays["final_loss"].shape == (2, 2, 1)
    assert np.isfinite(r.arrays["final_loss"]).all()
    # xi_c from the theory module: ordered 1.0 gives 3.63, chaotic 4.0 gives 6.98 (Schoenholz et al., fig. 1)
    np.testing.assert_allclose(r.arrays["xi_c"], [3.63, 6.98], atol=0.01)
    assert [row["phase"] for row in r.tables["grid"]] == ["ordered", "chaotic"]
    assert "trainable depth" in trainability.table(r)


def test_same_seed_same_numbers(tiny_result):
    again = trainability.run(progress=False, **TINY)
    np.testing.assert_array_equal(again.arrays["final_loss"], tiny_result.arrays["final_loss"])


def test_figure_and_saved_result(tiny_result, tmp_path):
    paths = trainability.plot(tiny_result, tmp_path)
    assert {p.stem for p in paths} == set(trainability.FIGURES)
    assert all(p.stat().st_size > 0 for p in paths)
    tiny_result.save(tmp_path / "saved")
    assert results.load(tmp_path / "saved") == tiny_result


def test_command_line(tmp_path, capsys):
    status = trainability.main(
        [
            "--quick",
            "--no-progress",
            "--no-plot",
            "--out",
            str(tmp_path),
            "--sigma-w2",
            "1.5",
            "--depths",
            "2",
            "--width",
            "4",
            "--steps",
            "3",
        ]
    )
    assert status == 0
    assert "chaotic" not in capsys.readouterr().out
    assert (tmp_path / "result.json").is_file()


@pytest.mark.parametrize(
    "trained,expected",
    [([True, True, True], 30), ([True, False, True], 10), ([False, True, True], 0), ([True, True, False], 20)],
)
def test_trainable_depth_stops_at_the_first_failure(trained, expected):
    assert trainability.trainable_depth([10, 20, 30], trained) == expected


@pytest.mark.parametrize(
    "params,argument",
    [
        (dict(depths=[1]), "depths"),
        (dict(depths=[2, 2]), "depths"),
        (dict(sigma_w2=[0.0]), "sigma_w2"),
        (dict(sigma_b2=-1.0), "sigma_b2"),
        (dict(activation="relu"), "activation"),
        (dict(width=2.5), "width"),
        (dict(margin=0.0), "margin"),
        (dict(lr=float("nan")), "lr"),
        (dict(dataset="mnist"), "dataset"),
        (dict(backend="gpu"), "backend"),
        (dict(widht=3), "widht"),
    ],
)
def test_bad_input_names_the_argument(params, argument):
    with pytest.raises(ValueError, match=argument):
        trainability.run(progress=False, **params)


def test_quick_overrides_are_known_parameters():
    assert set(trainability.QUICK) <= set(trainability.DEFAULTS)
