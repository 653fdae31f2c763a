"""Results that cannot lie: every kind of damage to a saved result is a ResultFileError naming the file; a resumed
sweep recomputes a damaged point; a save into a used folder leaves no file of the older run."""

import json

import numpy as np
import pytest

from testbed import results, sweep
from testbed.results import Result, ResultFileError, load

#: The fake scenario of tests/fake_scenario.py, by module name (the sweep imports it)
FAKE = "tests.fake_scenario"


def example():
    return Result(
        "demo",
        params=dict(seed=3, lr=0.1),
        summary=dict(median=12.0),
        arrays=dict(steps=np.arange(6, dtype=np.int64), final=np.linspace(0.0, 1.0, 8).reshape(2, 4)),
        tables=dict(
            rows=[
                dict(lr=0.1, median=12.0, name="a"),
                dict(lr=0.2, median=7.5, name="b"),
                dict(lr=0.3, median=None, name="c"),
            ]
        ),
    )


def rewrite_json(folder, change):
    path = folder / results.RESULT_FILE
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def replace_csv_line(folder, number, text):
    path = folder / "rows.csv"
    lines = path.read_text().splitlines()
    lines[number] = text
    path.write_text("\n".join(lines) + "\n")


def truncate(path, keep):
    path.write_bytes(path.read_bytes()[:keep])


def same_size_garbage(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


#: Damage -> (what is done to the saved folder, the file the error must name, words of what is wrong).
DAMAGE = {
    "missing_key": (lambda f: rewrite_json(f, lambda d: d.pop("summary")), "result.json", "'summary'"),
    "not_json": (lambda f: (f / "result.json").write_text("{"), "result.json", "not a valid result file"),
    "truncated_npz": (lambda f: truncate(f / "arrays.npz", 100), "arrays.npz", "bytes"),
    "random_npz": (lambda f: (f / "arrays.npz").write_bytes(bytes(range(256)) * 4), "arrays.npz", "bytes"),
    "flipped_byte_npz": (lambda f: same_size_garbage(f / "arrays.npz"), "arrays.npz", "SHA-256"),
    "deleted_npz": (lambda f: (f / "arrays.npz").unlink(), "arrays.npz", "missing"),
    "empty_csv": (lambda f: (f / "rows.csv").write_text(""), "rows.csv", "bytes"),
    "short_row": (lambda f: replace_csv_line(f, 1, "0.1,12.0"), "rows.csv", "bytes"),
    "deleted_row": (
        lambda f: (f / "rows.csv").write_text("\n".join((f / "rows.csv").read_text().splitlines()[:-1]) + "\n"),
        "rows.csv",
        "bytes",
    ),
    "same_size_cell": (lambda f: replace_csv_line(f, 1, "0.9,12.0,a"), "rows.csv", "SHA-256"),
    "unlisted_file": (lambda f: rewrite_json(f, lambda d: d["files"].pop("rows.csv")), "result.json", "not listed"),
    "shape_in_json": (
        lambda f: rewrite_json(f, lambda d: d["arrays"]["steps"].update(shape=[7])),
        "arrays.npz",
        "shape",
    ),
    "dtype_in_json": (
        lambda f: rewrite_json(f, lambda d: d["arrays"]["final"].update(dtype="<f4")),
        "arrays.npz",
        "dtype",
    ),
    "rows_in_json": (lambda f: rewrite_json(f, lambda d: d["tables"]["rows"].update(rows=2)), "rows.csv", "rows"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_every_kind_of_damage_is_a_result_file_error_naming_the_file(tmp_path, damage):
    act, file_name, words = DAMAGE[damage]
    saved = example()
    saved.save(tmp_path)
    assert load(tmp_path) == saved  # whole before the damage
    act(tmp_path)
    with pytest.raises(ResultFileError) as info:
        load(tmp_path)
    assert str(tmp_path / file_name) in str(info.value) and words in str(info.value)


def test_consistent_edits_of_json_and_csv_without_checksums_are_still_checked(tmp_path):
    """A version-1 result (no checksums) is read with its shapes, dtypes, columns and cells checked."""
    example().save(tmp_path)
    rewrite_json(tmp_path, lambda d: (d.pop("files"), d.update(format_version=1)))
    assert load(tmp_path).tables == example().tables
    replace_csv_line(tmp_path, 2, "0.2")  # a short row
    with pytest.raises(ResultFileError, match="line 3 has 1 cells"):
        load(tmp_path)


def test_missing_result_is_a_file_not_found_and_a_result_file_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path)
    with pytest.raises(ResultFileError, match="no saved result"):
        load(tmp_path)


def test_a_save_into_a_used_folder_leaves_no_file_of_the_older_run(tmp_path):
    older = example()
    older.tables["extra"] = [dict(x=1)]
    older.save(tmp_path)
    (tmp_path / ".rows.csv.abc123.tmp").write_bytes(b"left by a killed save")
    newer = Result("demo", params=dict(seed=4), summary=dict(median=1.0), tables=dict(rows=[dict(lr=1.0)]))
    newer.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json", "rows.csv"]
    assert load(tmp_path) == newer


def test_resume_recomputes_a_damaged_point_and_summarises_every_point(tmp_path):
    grid = dict(slope=[1.0, 2.0])
    out = tmp_path / "sweep"
    first = sweep.run_sweep(FAKE, grid, quick=True, out=out, progress=False, log=lambda m: None)
    assert len(first["done"]) == 2
    damaged = out / first["points"][1]
    truncate(damaged / "arrays.npz", 50)
    again = sweep.run_sweep(FAKE, grid, quick=True, out=out, resume=True, progress=False, log=lambda m: None)
    assert again["done"] == [first["points"][1]] and again["skipped"] == [first["points"][0]]
    load(damaged)  # whole again
    summary = (out / sweep.SUMMARY_FILE).read_text().splitlines()
    assert len(summary) == 1 + 2


def test_a_bad_grid_value_is_refused_before_any_point_runs(tmp_path):
    out = tmp_path / "sweep"
    with pytest.raises(sweep.SweepError, match="point lr=nan: lr"):
        sweep.run_sweep("saddle", dict(lr=[0.1, float("nan")]), quick=True, out=out, progress=False)
    assert not out.exists()
