"""Result records: save/load round trip, provenance, tidy CSV, atomic writes; the scenario command line."""

import csv
import json
import os
import time

import fake_scenario
import numpy as np
import pytest

from testbed import results
from testbed.results import Result, Timer, load
from testbed.scenarios import common


def example_result():
    return Result(
        "demo",
        params=dict(seed=np.uint64(7), backend="cpu", widths=(4, 8), lr=np.float32(0.1), name="he"),
        summary=dict(ratio=np.float64(0.5), never=np.inf, undefined=np.nan, nested=dict(counts=np.arange(3))),
        arrays=dict(
            var=np.linspace(0.0, 1.0, 7),
            small=np.ones((2, 3), dtype=np.float32),
            steps=np.array([3, 5, -1], dtype=np.int64),
            escaped=np.array([True, False, True]),
        ),
        tables=dict(
            layers=[
                dict(layer=1, var=0.25, init="he", saturated=False),
                dict(layer=2, var=np.float64(np.nan), init='text, with "quotes"', saturated=True),
                dict(layer=3, var=None, init="lecun", saturated=None, extra=np.int32(4)),
            ],
            empty=[],
        ),
    )


def files_in(folder):
    return sorted(os.listdir(folder))


def test_saved_result_loads_back_equal(tmp_path):
    result = example_result()
    result.wall_time = 1.25
    result.save(tmp_path)
    assert files_in(tmp_path) == ["arrays.npz", "empty.csv", "layers.csv", "result.json"]
    loaded = load(tmp_path)
    assert loaded == result
    for name, array in result.arrays.items():
        assert loaded.arrays[name].dtype == array.dtype and loaded.arrays[name].shape == array.shape
    assert loaded.params["seed"] == 7 and type(loaded.params["seed"]) is int
    assert loaded.params["widths"] == [4, 8]
    assert loaded.wall_time == 1.25
    assert np.isnan(loaded.summary["undefined"]) and loaded.summary["never"] == np.inf
    assert loaded.tables["layers"][1]["init"] == 'text, with "quotes"'
    assert loaded.tables["layers"][2]["var"] is None


def test_equality_notices_a_changed_array_element(tmp_path):
    result = example_result()
    result.save(tmp_path)
    loaded = load(tmp_path)
    loaded.arrays["var"][3] += 1e-12
    assert loaded != result


def test_provenance_is_filled_in():
    result = example_result()
    provenance = result.provenance
    for key in (
        "testbed_version",
        "numba_version",
        "numpy_version",
        "python_version",
        "platform",
        "numba_threads",
        "timestamp_utc",
        "wall_time_s",
        "git_commit",
    ):
        assert key in provenance
    assert provenance["backend"] == "cpu" and provenance["seed"] == 7
    assert provenance["numpy_version"] == np.__version__
    assert provenance["numba_threads"] >= 1
    commit = provenance["git_commit"]
    assert commit is None or len(commit.split("+")[0]) == 40


def test_json_holds_params_summary_provenance(tmp_path):
    example_result().save(tmp_path)
    document = json.loads((tmp_path / "result.json").read_text())
    assert document["scenario"] == "demo"
    assert document["params"]["lr"] == pytest.approx(0.1)
    assert set(document) >= {"params", "summary", "provenance", "arrays", "tables"}


def test_tables_are_tidy_csv_with_a_header_and_no_index(tmp_path):
    example_result().save(tmp_path)
    with open(tmp_path / "layers.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["layer", "var", "init", "saturated", "extra"]
    assert [row["layer"] for row in rows] == ["1", "2", "3"]
    assert float(rows[0]["var"]) == 0.25 and rows[1]["var"] == "nan" and rows[2]["var"] == ""
    assert rows[0]["saturated"] == "False" and rows[2]["extra"] == "4"


def test_interrupted_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old contents")
    with pytest.raises(KeyboardInterrupt):
        with results.atomic_open(target) as handle:
            handle.write(b"half of the new")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old contents"
    assert files_in(tmp_path) == ["data.bin"]


def test_interrupted_save_never_leaves_a_truncated_or_mixed_result(tmp_path, monkeypatch):
    first = example_result()
    first.save(tmp_path)
    old_arrays = (tmp_path / "arrays.npz").read_bytes()

    def interrupted_savez(handle, **arrays):
        handle.write(b"PK\x03\x04 a truncated zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        example_result().save(tmp_path)
    # The archive is the old one, whole; no temporary file is left; the folder reads as incomplete.
    assert (tmp_path / "arrays.npz").read_bytes() == old_arrays
    assert not [name for name in files_in(tmp_path) if name.startswith(".")]
    with pytest.raises(FileNotFoundError, match="result.json"):
        load(tmp_path)


def test_load_reports_missing_and_damaged_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved result"):
        load(tmp_path / "nothing")
    (tmp_path / "result.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid result file"):
        load(tmp_path)


def test_values_json_cannot_hold_are_rejected():
    with pytest.raises(TypeError, match="object"):
        Result("demo", params=dict(model=object()), summary={})
    with pytest.raises(ValueError, match="scenario names"):
        Result("bad name/", params={}, summary={})
    with pytest.raises(TypeError, match="dtype object"):
        Result("demo", params={}, summary={}, arrays=dict(mixed=np.array([1, "a", None], dtype=object)))


#: The timed interval of the timer test: long against perf_counter's resolution, short for the suite.
TIMED_SLEEP_S = 0.05


def test_timer_measures_wall_time():
    assert Timer().seconds == 0.0  # not started
    outer_start = time.perf_counter()
    with Timer() as timer:
        time.sleep(TIMED_SLEEP_S)
        running = timer.seconds
        time.sleep(TIMED_SLEEP_S)
    outer = time.perf_counter() - outer_start
    # the interval inside the block: at least the sleeps, at most what a clock around the block saw
    assert TIMED_SLEEP_S <= running < timer.seconds
    assert 2 * TIMED_SLEEP_S <= timer.seconds <= outer
    stopped = timer.seconds  # after the block: no longer advancing
    time.sleep(0.01)
    assert timer.seconds == stopped
    result = Result("demo", params={}, summary={})
    assert result.wall_time is None
    result.wall_time = timer.seconds
    assert result.provenance["wall_time_s"] == timer.seconds


def test_same_seed_reproduces_the_same_numbers():
    first = fake_scenario.run(quick=True, progress=False, seed=3)
    again = fake_scenario.run(quick=True, progress=False, seed=3)
    other = fake_scenario.run(quick=True, progress=False, seed=4)
    assert np.array_equal(first.arrays["y"], again.arrays["y"])
    assert not np.array_equal(first.arrays["y"], other.arrays["y"])


# ----------------------------------------------------------------------------------------------------------
# The scenario command line (testbed.scenarios.common.main), on the fake scenario


def test_scenario_cli_prints_the_table_and_saves_result_and_figures(tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        common.main(fake_scenario, ["--quick", "--seed", "5", "--slope", "3", "--out", str(out), "--no-progress"]) == 0
    )
    printed = capsys.readouterr().out
    assert "fitted" in printed and str(out) in printed
    assert files_in(out) == [
        "arrays.npz",
        "line.pdf",
        "line.png",
        "points.csv",
        "residual.pdf",
        "residual.png",
        "result.json",
    ]
    saved = load(out)
    assert saved.params["seed"] == 5 and saved.params["slope"] == 3.0 and saved.params["points"] == 5
    assert saved.wall_time is not None


def test_scenario_cli_no_plot(tmp_path):
    assert common.main(fake_scenario, ["--quick", "--out", str(tmp_path), "--no-plot", "--no-progress"]) == 0
    assert not list(tmp_path.glob("*.png"))


def test_generic_plot_draws_the_named_figures_of_a_result_or_of_a_saved_folder(tmp_path):
    result = fake_scenario.run(quick=True, progress=False)
    only = common.plot(fake_scenario, result, tmp_path / "only", names=["residual"])
    assert [path.name for path in only] == ["residual.png", "residual.pdf"]
    assert files_in(tmp_path / "only") == ["residual.pdf", "residual.png"]
    with pytest.raises(ValueError, match=r"no figure 'lines' \(did you mean 'line'\?\); its figures: line, residual"):
        common.plot(fake_scenario, result, tmp_path / "bad", names=["lines"])
    result.save(tmp_path / "saved")
    redrawn = common.plot(fake_scenario, tmp_path / "saved", tmp_path / "redrawn", names=["line"])
    direct = common.plot(fake_scenario, result, tmp_path / "direct", names=["line"])
    assert [path.name for path in redrawn] == [path.name for path in direct] == ["line.png", "line.pdf"]
    assert [path.read_bytes() for path in redrawn] == [path.read_bytes() for path in direct]


def test_a_figure_with_nothing_to_draw_is_left_out(tmp_path, monkeypatch):
    monkeypatch.setitem(fake_scenario.FIGURES, "residual", lambda result: None)
    result = fake_scenario.run(quick=True, progress=False)
    assert list(common.draw(fake_scenario, result)) == ["line"]
    assert [path.name for path in common.plot(fake_scenario, result, tmp_path)] == ["line.png", "line.pdf"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--points", "1"], "points must be an integer >= 2"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--seed", "x"], "--seed"),
        (["--backend", "tpu"], "--backend"),
    ],
)
def test_scenario_cli_bad_input_is_one_line_and_status_2(tmp_path, capsys, argv, message):
    status = 2
    try:
        code = common.main(fake_scenario, argv + ["--out", str(tmp_path / "o"), "--no-progress"])
    except SystemExit as exit_:  # argparse exits itself
        code = exit_.code
    assert code == status
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_scenario_cli_refuses_an_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert common.main(fake_scenario, ["--quick", "--out", str(blocker / "sub"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot write to output folder" in err and len(err.splitlines()) == 1


def test_scenario_cli_ctrl_c_exits_130_and_leaves_no_partial_files(tmp_path, capsys, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_SCENARIO_CALL_LOG", str(log))
    monkeypatch.setenv("FAKE_SCENARIO_INTERRUPT_AT", "0")
    out = tmp_path / "out"
    assert common.main(fake_scenario, ["--quick", "--out", str(out), "--no-progress"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not out.exists()  # bad input and Ctrl-C before the save create no output folder


def test_merge_params_names_an_unknown_key():
    with pytest.raises(ValueError, match=r"unknown parameter 'slop' \(did you mean 'slope'\?\)"):
        common.merge_params(fake_scenario.DEFAULTS, fake_scenario.QUICK, False, dict(slop=1.0))
    merged = common.merge_params(fake_scenario.DEFAULTS, fake_scenario.QUICK, True, dict(slope=1.0))
    assert merged["points"] == fake_scenario.QUICK["points"] and merged["slope"] == 1.0


def test_format_table_aligns_numbers_right_and_text_left():
    text = common.format_table([dict(init="he", ratio=1.0), dict(init="lecun", ratio=0.00123, dead=None)])
    lines = text.splitlines()
    assert lines[0].split() == ["init", "ratio", "dead"]
    assert lines[2].startswith("he ") and lines[3].split() == ["lecun", "0.00123", "-"]
    assert lines[2].index("1") == lines[3].index("0.00123") + len("0.00123") - 1


def test_comma_list_parses_typed_lists():
    assert common.comma_list(float)("0.1, 0.01") == [0.1, 0.01]
    with pytest.raises(Exception, match="list of float"):
        common.comma_list(float)("a,b")
