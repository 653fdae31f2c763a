"""The spectra scenario: a tiny run end to end (result, table, figures, command line) and its bad input."""

import dataclasses

import numpy as np
import pytest
from scenario_checks import check_figures_and_saved_result, run_quick_command_line

from testbed.scenarios import spectra

TINY = dict(depths=[2, 8], variance_depths=[1, 8], width=12, inputs=2, theory_points=60)


@pytest.fixture(scope="module")
def tiny_result(one_thread):
    return spectra.run(progress=False, **TINY)


def test_tiny_run_holds_measurement_and_theory(tiny_result):
    r = tiny_result
    assert r.scenario == "spectra" and r.wall_time is not None
    acts, laws = r.params["activations"], r.params["weights"]
    assert r.arrays["densities"].shape[:3] == (len(acts), len(laws), 2)
    assert r.arrays["variance"].shape == (len(acts), len(laws), 2, 2)
    rows = {(row["activation"], row["weights"], row["depth"]): row for row in r.tables["summary"]}
    # the orthogonal linear net is an isometry, measured and predicted; Gaussian ReLU's slope is 2 per layer
    assert rows[("linear", "orthogonal", 8)]["variance_measured"] == pytest.approx(0.0, abs=1e-12)
    assert rows[("linear", "orthogonal", 8)]["variance_predicted"] == 0.0
    assert rows[("relu", "gaussian", 8)]["variance_predicted"] == pytest.approx(16.0)
    # free-probability curves at every depth; atoms: the orthogonal linear net's point mass at sigma = 1 and
    # orthogonal hard tanh's at sigma_w^L ~ 1 (mass 1 - L P(|h| > 1) ~ 1 at q* = 1/64); ReLU's half at sigma = 0
    o = laws.index("orthogonal")
    curves, points = r.arrays["theory_density"], r.arrays["theory_point_mass"]
    assert np.all(np.isfinite(curves)) and np.all(curves >= 0.0)
    assert np.all(np.isnan(points))
    atom, mass = r.arrays["theory_atom"], r.arrays["theory_atom_mass"]
    for act in ("linear", "hard_tanh"):
        assert atom[acts.index(act), o] == pytest.approx([0.0, 0.0], abs=1e-6)
        assert mass[acts.index(act), o] == pytest.approx([1.0, 1.0], abs=1e-12)
    for act in ("relu", "tanh"):
        assert np.all(np.isnan(atom[acts.index(act)])) and np.all(mass[acts.index(act)] == 0.0)
        assert np.all(curves[acts.index(act), o].max(axis=-1) > 0.1)
    assert np.all(r.arrays["theory_zero_mass"][acts.index("relu")] == 0.5)
    # each density integrates to the share of singular values inside the plotted range
    widths = np.diff(r.arrays["density_edges"])
    np.testing.assert_allclose((r.arrays["densities"] * widths).sum(axis=-1) + r.arrays["below"], 1.0, atol=1e-12)
    assert "var theory" in spectra.table(r)


def test_same_seed_same_numbers(tiny_result, one_thread):
    again = spectra.run(progress=False, **TINY)
    np.testing.assert_array_equal(again.arrays["variance"], tiny_result.arrays["variance"])


def test_figures_and_saved_result(tiny_result, tmp_path):
    check_figures_and_saved_result(spectra, tiny_result, tmp_path)


def _curve_points(ax):
    """Display coordinates of points along every line and histogram outline drawn in ``ax`` (nine per segment;
    values below the axis clipped to it, as drawn)."""
    from matplotlib.patches import StepPatch

    low = ax.get_ylim()[0]
    drawn = [(line.get_xydata(), line.get_transform()) for line in ax.get_lines()]
    drawn += [
        (patch.get_path().vertices, patch.get_transform()) for patch in ax.patches if isinstance(patch, StepPatch)
    ]
    chunks = []
    for xy, transform in drawn:
        xy = np.array(xy, dtype=float)
        xy[:, 1] = np.maximum(xy[:, 1], low)
        xy = transform.transform(xy)
        if len(xy) > 1:
            fractions = np.linspace(0.0, 1.0, 9)[:, None, None]
            xy = (xy[:-1][None] * (1 - fractions) + xy[1:][None] * fractions).reshape(-1, 2)
        chunks.append(xy)
    return np.concatenate(chunks)


def test_atom_labels_stand_clear_of_every_curve(one_thread):
    """At depth 128 the Gaussian linear net's law is flat at a density of about 0.02 across the panel: an atom's
    label beside it must stay off it, and off every other curve, inside its panel."""
    deep = spectra.run(
        progress=False,
        activations=["linear"],
        depths=[2, 128],
        variance_depths=[1],
        width=12,
        inputs=2,
        theory_points=60,
    )
    fig = spectra.draw_densities(deep)
    # the same result with the depth-2 atom moved next to the panel's right edge: its label turns to the left
    atoms = np.where(np.isfinite(deep.arrays["theory_atom"]), spectra.DENSITY_RANGE[1] - 0.05, np.nan)
    by_the_edge = dataclasses.replace(deep, arrays={**deep.arrays, "theory_atom": atoms})
    _labels_clear_of_the_curves(spectra.draw_densities(by_the_edge))
    _labels_clear_of_the_curves(fig)


def _labels_clear_of_the_curves(fig):
    from testbed import plotting

    renderer = plotting._renderer(fig)
    slack = plotting._slack(renderer)
    labels = [text for ax in fig.axes for text in ax.texts if text.get_text().startswith("atom")]
    assert len(labels) == 2  # the orthogonal linear net's atom at sigma = 1, at each depth
    for label in labels:
        box, panel = label.get_window_extent(renderer), label.axes.get_window_extent(renderer)
        assert panel.x0 <= box.x0 and box.x1 <= panel.x1 and panel.y0 <= box.y0 and box.y1 <= panel.y1
        points = _curve_points(label.axes)
        inside = (
            (points[:, 0] > box.x0 + slack)
            & (points[:, 0] < box.x1 - slack)
            & (points[:, 1] > box.y0 + slack)
            & (points[:, 1] < box.y1 - slack)
        )
        assert not inside.any(), f"{label.get_text()!r} lies over a curve at {points[inside][:3]}"
    plotting.close(fig)


def test_command_line(tmp_path, capsys, one_thread):
    own = ["--activations", "relu", "--weights", "orthogonal", "--depths", "2", "--variance-depths", "1,2"]
    assert "orthogonal" in run_quick_command_line(spectra, tmp_path, capsys, *own, "--width", "6")


@pytest.mark.parametrize(
    "params,argument",
    [
        (dict(depths=[0]), "depths"),
        (dict(depths=2), "depths"),
        (dict(width=2.5), "width"),
        (dict(inputs=0), "inputs"),
        (dict(activations=["tanhh"]), "activation"),
        (dict(activations=["sigmoid"]), "activations"),
        (dict(weights=["uniform"]), "weights"),
        (dict(q_star=0.0), "q_star"),
        (dict(backend="gpu"), "backend"),
        (dict(widht=3), "widht"),
    ],
)
def test_bad_input_names_the_argument(params, argument):
    with pytest.raises(ValueError, match=argument):
        spectra.run(progress=False, **params)


def test_quick_overrides_are_known_parameters():
    assert set(spectra.QUICK) <= set(spectra.DEFAULTS)
