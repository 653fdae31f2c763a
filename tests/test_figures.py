"""Figures from presets (testbed.figures) and the house style (testbed.plotting).

The machinery is tested on the fake scenario of tests/fake_scenario.py (module path ``tests.fake_scenario``,
the test puts the repository root on sys.path); the presets in the repository are all parsed and
checked, and one cheap real preset is run with ``--quick``.
"""

import importlib
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from testbed import figures, plotting

FAKE = "tests.fake_scenario"

# ``tests.fake_scenario`` is imported by module path (also in worker processes, which inherit sys.path): make
# sure the repository root is on the path whichever way pytest was started.
REPOSITORY = str(Path(__file__).resolve().parents[1])
if REPOSITORY not in sys.path:
    sys.path.insert(0, REPOSITORY)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF_MAGIC = b"%PDF-"


def write_preset(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def fake_presets(folder):
    write_preset(
        folder,
        "fake_line",
        f'scenario = "{FAKE}"\nfigure = "line"\ndescription = "A line."\n[params]\nslope = 3.0\n[quick]\npoints = 4\n',
    )
    write_preset(
        folder,
        "fake_residual",
        f'scenario = "{FAKE}"\nfigure = "residual"\n[params]\nslope = 3.0\n[quick]\npoints = 4\n',
    )
    write_preset(folder, "fake_steep", f'scenario = "{FAKE}"\nfigure = "line"\n[params]\nslope = -1.5\n')


def run_cli(argv, capsys):
    try:
        code = figures.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def test_quick_run_writes_every_figure_as_png_and_pdf(tmp_path, capsys):
    presets, out = tmp_path / "presets", tmp_path / "figs"
    fake_presets(presets)
    code, printed, _ = run_cli(["--quick", "--presets", str(presets), "--out", str(out), "--no-progress"], capsys)
    assert code == 0
    assert sorted(os.listdir(out)) == [
        f"{name}.{ext}" for name in ("fake_line", "fake_residual", "fake_steep") for ext in ("pdf", "png")
    ]
    for name in ("fake_line", "fake_residual", "fake_steep"):
        assert (out / f"{name}.png").read_bytes().startswith(PNG_MAGIC)
        assert (out / f"{name}.pdf").read_bytes().startswith(PDF_MAGIC)
    assert "fake_line.png" in printed


def test_presets_sharing_parameters_share_one_run(tmp_path, capsys, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_SCENARIO_CALL_LOG", str(log))
    presets = tmp_path / "presets"
    fake_presets(presets)
    assert (
        run_cli(["--quick", "--presets", str(presets), "--out", str(tmp_path / "f"), "--no-progress"], capsys)[0] == 0
    )
    assert len(log.read_text().splitlines()) == 2  # fake_line and fake_residual share a run; fake_steep is apart


def test_regenerated_figures_are_byte_identical(tmp_path, capsys):
    # Same seed, same numbers, no timestamps in the files: regenerating figures/ leaves git with nothing to commit.
    presets = tmp_path / "presets"
    fake_presets(presets)
    for out in ("first", "second"):
        assert (
            run_cli(
                [
                    "--quick",
                    "--only",
                    "fake_line",
                    "--presets",
                    str(presets),
                    "--out",
                    str(tmp_path / out),
                    "--no-progress",
                ],
                capsys,
            )[0]
            == 0
        )
    for name in ("fake_line.png", "fake_line.pdf"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()


def test_only_selects_presets(tmp_path, capsys):
    presets, out = tmp_path / "presets", tmp_path / "figs"
    fake_presets(presets)
    assert (
        run_cli(
            ["--quick", "--only", "fake_steep", "--presets", str(presets), "--out", str(out), "--no-progress"], capsys
        )[0]
        == 0
    )
    assert sorted(os.listdir(out)) == ["fake_steep.pdf", "fake_steep.png"]


@pytest.mark.parametrize(
    "text, message",
    [
        (f'scenario = "{FAKE}"\nfigure = "line"\ncolour = "red"\n', "unknown key 'colour'"),
        (f'scenario = "{FAKE}"\nfigure = "line"\n[params]\nslop = 1.0\n', "unknown key 'slop' in [params]"),
        (f'scenario = "{FAKE}"\nfigure = "line"\n[quick]\npoint = 1\n', "unknown key 'point' in [quick]"),
        (f'scenario = "{FAKE}"\n', "'figure' must be given"),
        ('scenario = "no_such_scenario"\nfigure = "x"\n', "unknown scenario 'no_such_scenario'"),
        (f'scenario = "{FAKE}"\nfigure = "line"\nparams = 3\n', "'params' must be a table"),
        ('scenario = "unterminated\n', "malformed TOML"),
    ],
)
def test_bad_presets_are_one_line_errors_naming_the_file(tmp_path, capsys, text, message):
    presets = tmp_path / "presets"
    path = write_preset(presets, "broken", text)
    code, _, err = run_cli(["--quick", "--presets", str(presets), "--out", str(tmp_path / "f")], capsys)
    assert code == 2
    assert message in err and str(path) in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "f").exists() or not os.listdir(tmp_path / "f")


def test_missing_preset_folder_and_unknown_preset_name(tmp_path, capsys):
    code, _, err = run_cli(["--presets", str(tmp_path / "none")], capsys)
    assert code == 2 and "preset folder not found" in err
    fake_presets(tmp_path / "presets")
    code, _, err = run_cli(["--presets", str(tmp_path / "presets"), "--only", "fake_lin"], capsys)
    assert code == 2 and "unknown preset 'fake_lin' (did you mean 'fake_line'?)" in err


def test_unwritable_output_folder_is_a_one_line_error(tmp_path, capsys):
    fake_presets(tmp_path / "presets")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(["--quick", "--presets", str(tmp_path / "presets"), "--out", str(blocker)], capsys)
    assert code == 2 and "cannot write to output folder" in err and len(err.splitlines()) == 1


def test_errors_and_interrupts_never_damage_figures_already_written(tmp_path, capsys, monkeypatch):
    presets, out = tmp_path / "presets", tmp_path / "figs"
    out.mkdir()
    (out / "fake_line.png").write_bytes(b"the old figure")
    # A preset naming a figure the scenario does not have: an error naming the file before anything runs; a
    # figure the run has nothing to draw for (its part of the scenario did not run): an error after the run. The
    # old figure survives both.
    write_preset(presets, "fake_line", f'scenario = "{FAKE}"\nfigure = "lines"\n')
    code, _, err = run_cli(["--quick", "--presets", str(presets), "--out", str(out), "--no-progress"], capsys)
    assert code == 2 and "has no figure 'lines' (did you mean 'line'?)" in err and str(presets) in err
    write_preset(presets, "fake_line", f'scenario = "{FAKE}"\nfigure = "line"\n')
    with monkeypatch.context() as patch:
        patch.setitem(importlib.import_module(FAKE).FIGURES, "line", lambda result: None)
        code, _, err = run_cli(["--quick", "--presets", str(presets), "--out", str(out), "--no-progress"], capsys)
    assert code == 2 and "made no figure 'line' (it made: none)" in err and str(presets) in err
    assert (out / "fake_line.png").read_bytes() == b"the old figure"
    # Ctrl-C while a figure is being written: exit 130, the old figure whole, no temporary files left.
    real_savefig = type(plotting.figure()[0]).savefig

    def interrupted_savefig(self, handle, **options):
        real_savefig(self, handle, **options)
        raise KeyboardInterrupt

    monkeypatch.setattr(type(plotting.figure()[0]), "savefig", interrupted_savefig)
    code, _, err = run_cli(["--quick", "--presets", str(presets), "--out", str(out), "--no-progress"], capsys)
    assert code == 130 and "interrupted" in err
    assert os.listdir(out) == ["fake_line.png"]
    assert (out / "fake_line.png").read_bytes() == b"the old figure"


def test_house_style_helpers_draw_dashed_theory_and_marker_measurements(tmp_path):
    fig, ax = plotting.figure()
    x = np.arange(1, 6)
    (line,) = plotting.theory(ax, x, x**2, label="theory", color=plotting.color(0))
    container = plotting.measured(ax, x, x**2 + 0.5, yerr=0.3, label="measured", color=plotting.color(0))
    plotting.band(ax, x, x**2 - 1, x**2 + 1, color=plotting.color(0))
    plotting.finish(ax, xlabel="layer", ylabel="variance", yscale="log")
    assert line.get_linestyle() == "--"
    data_line = container.lines[0]
    assert data_line.get_linestyle() == "None" and data_line.get_marker() == "o"
    assert ax.get_xlabel() == "layer" and ax.get_ylabel() == "variance" and ax.get_legend() is not None
    paths = plotting.save(fig, tmp_path / "new" / "folder", "demo")
    assert [p.name for p in paths] == ["demo.png", "demo.pdf"]
    assert paths[0].read_bytes().startswith(PNG_MAGIC) and paths[1].read_bytes().startswith(PDF_MAGIC)
    with pytest.raises(ValueError, match="figure name"):
        plotting.save(fig, tmp_path, "../escape")


def test_palette_is_okabe_ito():
    okabe_ito = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}
    assert set(plotting.PALETTE) == okabe_ito
    assert plotting.color(len(plotting.PALETTE)) == plotting.color(0)


def test_importing_the_testbed_below_scenarios_does_not_import_pyplot():
    import subprocess
    import sys

    code = (
        "import sys, testbed.results, testbed.backend, testbed.scenarios.common, testbed.sweep; "
        "sys.exit('matplotlib' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_every_repository_preset_is_valid():
    if not any(figures.DEFAULT_PRESETS.glob("*.toml")):
        pytest.fail("no presets in scenarios/")
    for preset in figures.find_presets(figures.DEFAULT_PRESETS):
        assert preset.description, f"{preset.path}: give a one-sentence description for the gallery"


def test_every_figure_has_one_name():
    """The preset, the scenario's figure (a key of its FIGURES), the files in figures/ and the README's gallery
    all use the same name, and every figure a scenario draws has its preset."""
    from testbed.scenarios import common

    presets = figures.find_presets(figures.DEFAULT_PRESETS)
    for preset in presets:
        assert preset.name == preset.figure, f"{preset.path}: name the preset after its figure {preset.figure!r}"
    names = {preset.name for preset in presets}
    drawn = {
        name
        for scenario in common.available_scenarios()
        for name in common.figure_names(common.load_scenario(scenario))
    }
    assert drawn == names, f"figures without a preset: {sorted(drawn - names)}"
    folder = figures.DEFAULT_PRESETS.parent / "figures"
    files = {path.name for path in folder.iterdir() if path.suffix in (".png", ".pdf")}
    assert files == {f"{name}.{extension}" for name in names for extension in ("png", "pdf")}
    readme = (figures.DEFAULT_PRESETS.parent / "README.md").read_text()
    gallery = set(re.findall(r"!\[\]\(figures/(\w+)\.png\) `(\w+)`", readme))
    assert gallery == {(name, name) for name in names}


def test_a_real_preset_runs_quick(tmp_path, capsys):
    out = tmp_path / "figs"
    code, _, err = run_cli(["--quick", "--only", "amsgrad_regret", "--out", str(out), "--no-progress"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(out)) == ["amsgrad_regret.pdf", "amsgrad_regret.png"]
    assert (out / "amsgrad_regret.png").read_bytes().startswith(PNG_MAGIC)
