"""The trainability scenario: a tiny run end to end (result, table, figure, command line), the trainable-depth
rule and bad input."""

import numpy as np
import pytest
from scenario_checks import check_figures_and_saved_result, run_quick_command_line

from testbed import data, nn
from testbed.scenarios import trainability

TINY = dict(
    sigma_w2=[1.0, 4.0],
    depths=[2, 3],
    width=6,
    steps=4,
    batch=16,
    linear_depths=[2, 3],
    linear_width=6,
    linear_gains=[0.5, 1.0],
    linear_steps=12,
    linear_seeds=2,
    isometry_depth=3,
    isometry_width=6,
    isometry_lrs=[0.1],
    isometry_steps=12,
    isometry_seeds=2,
)


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
    check_figures_and_saved_result(trainability, tiny_result, tmp_path)


def test_command_line(tmp_path, capsys):
    own = ["--studies", "depth", "--sigma-w2", "1.5", "--depths", "2", "--width", "4", "--steps", "3"]
    assert "chaotic" not in run_quick_command_line(trainability, tmp_path, capsys, *own)


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
        (dict(studies=["saxe"]), "study"),
        (dict(studies=["linear", "linear"]), "studies"),
        (dict(linear_depths=[1]), "linear_depths"),
        (dict(linear_gains=[0.0]), "linear_gains"),
        (dict(linear_fraction=1.0), "linear_fraction"),
        (dict(linear_dataset="cifar"), "linear_dataset"),
        (dict(isometry_lrs=[-0.1]), "isometry_lrs"),
        (dict(isometry_q_star=0.0), "isometry_q_star"),
        (dict(isometry_depth=1), "isometry_depth"),
    ],
)
def test_bad_input_names_the_argument(params, argument):
    with pytest.raises(ValueError, match=argument):
        trainability.run(progress=False, **params)


def test_quick_overrides_are_known_parameters():
    assert set(trainability.QUICK) <= set(trainability.DEFAULTS)


def test_tiny_run_holds_the_linear_and_isometry_studies(tiny_result):
    a, s = tiny_result.arrays, tiny_result.summary
    assert a["linear_steps_to_threshold"].shape == (2, 2, 2, 2)  # (init, depth, gain, seed)
    assert a["linear_curves"].shape == (2, 2, 2, 12)
    assert a["isometry_steps_to_threshold"].shape == (3, 1, 2)  # (net, lr, seed)
    assert np.isfinite(a["isometry_curves"]).all() and np.isfinite(a["linear_curves"]).all()
    assert s["linear_optimum"] < s["linear_threshold"] < s["linear_zero_map_loss"] == pytest.approx(0.1)
    table = trainability.table(tiny_result)
    assert "Saxe" in table and "Pennington" in table and "trainable depth" in table


@pytest.mark.parametrize(
    "losses,threshold,window,expected",
    [
        ([3.0, 2.0, 1.0, 0.0], 1.5, 2, 4),  # trailing means 3, 2.5, 1.5, 0.5: strictly below from step 4
        ([3.0, 2.0, 1.0, 0.0], 1.6, 2, 3),
        ([1.0, 5.0, 5.0], 2.0, 3, 1),  # the first step alone is its own window
        ([5.0, 5.0, 1.0, 1.0], 2.5, 3, 4),  # means 5, 5, 3.67, 2.33
        ([0.5, float("nan"), 0.0], 1.0, 2, 1),  # reached before a divergence
        ([5.0, float("nan"), 0.0, 0.0], 1.0, 2, None),  # a diverged run (NaN) never reaches it afterwards
        ([5.0, 4.0], 1.0, 2, None),
        ([], 1.0, 2, None),
    ],
)
def test_steps_to_threshold_is_the_first_trailing_mean_below(losses, threshold, window, expected):
    assert trainability.steps_to_threshold(losses, threshold, window) == expected


def test_trailing_mean_matches_a_loop():
    rng = np.random.default_rng(5)
    losses = rng.random(37)
    window = 6
    expected = [np.mean(losses[max(0, t - window + 1) : t + 1]) for t in range(losses.size)]
    np.testing.assert_allclose(trainability.trailing_mean(losses, window), expected, rtol=1e-12)


def test_least_squares_loss_is_the_minimum_of_the_linear_maps():
    """At the optimum the gradient X^T (X A - Y) vanishes (normal equations), and no perturbed map does better."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((60, 5))
    y = rng.integers(0, 3, 60)
    dataset = data.from_arrays(x, y, dtype=np.float64, standardize=False)
    best = trainability.least_squares_loss(dataset)
    targets = np.eye(3)[y]
    solution = np.linalg.solve(x.T @ x, x.T @ targets)  # the normal equations, solved directly
    assert best == pytest.approx(np.mean((x @ solution - targets) ** 2), rel=1e-12)
    for _ in range(5):
        other = solution + 0.01 * rng.standard_normal(solution.shape)
        assert np.mean((x @ other - targets) ** 2) > best


def test_tanh_inputs_are_scaled_to_the_fixed_point():
    """Orthogonal square first layer (gain g): ||W x||^2 = g^2 ||x||^2 exactly, so the mean square of the first
    layer's pre-activations over units and samples is q* up to rounding (the bias variance added)."""
    q_star, sigma_w2, sigma_b2 = 1.0 / 64.0, 1.03, 1e-5
    rng = np.random.default_rng(1)
    dataset = data.from_arrays(rng.standard_normal((200, 8)), rng.integers(0, 2, 200), dtype=np.float64)
    scaled = trainability._at_fixed_point(dataset, q_star, sigma_b2, sigma_w2 / 8)
    net = nn.MLP((8, 8, 2), "tanh", bias=False, output="linear", dtype=np.float64)
    net.initialize("orthogonal", seed=0, gain=np.sqrt(sigma_w2))
    pre = scaled.x_train @ net.weights(1).T
    assert np.mean(pre**2) + sigma_b2 == pytest.approx(q_star, rel=1e-9)
