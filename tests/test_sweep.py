"""Parameter sweeps (testbed.sweep): grids, parallel workers, Ctrl-C and --resume, a Dask local cluster.

Calls of the fake scenario are counted through the log file named by FAKE_SCENARIO_CALL_LOG, which works
across worker processes.
"""

import csv
import os
import sys
from pathlib import Path

import fake_scenario
import pytest

from testbed import sweep
from testbed.results import load

FAKE = "tests.fake_scenario"

# ``tests.fake_scenario`` is imported by module path (also in worker processes, which inherit sys.path): make
# sure the repository root is on the path whichever way pytest was started.
REPOSITORY = str(Path(__file__).resolve().parents[1])
if REPOSITORY not in sys.path:
    sys.path.insert(0, REPOSITORY)
GRID = {"slope": [1.0, 2.0], "points": [3, 4]}


@pytest.fixture
def call_log(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_SCENARIO_CALL_LOG", str(log))
    return log


def calls(log):
    return fake_scenario.logged_calls(str(log))


def point_folders(out):
    return sorted(name for name in os.listdir(out) if (out / name).is_dir())


def test_grid_parsing_uses_the_type_of_each_default():
    defaults = dict(lr=0.1, steps=10, inits=["he", "lecun"], nesterov=False, name="x", free=None)
    grid = sweep.parse_assignments(
        ["lr=0.01,1e-3", "steps=5", "inits=he+glorot,lecun", "nesterov=true,false"],
        defaults,
        option="--grid",
        many=True,
    )
    assert grid == dict(lr=[0.01, 0.001], steps=[5], inits=[["he", "glorot"], ["lecun"]], nesterov=[True, False])
    assert sweep.parse_assignments(["free=3", "name=he"], defaults, option="--set", many=False) == dict(
        free=3, name="he"
    )
    for bad, message in [
        (["lr=fast"], "lr: cannot read 'fast' as float"),
        (["l=1"], "unknown parameter 'l'"),
        (["lr"], "KEY=VALUE"),
        (["lr=1", "lr=2"], "given twice"),
    ]:
        with pytest.raises(ValueError, match=message):
            sweep.parse_assignments(bad, defaults, option="--grid", many=True)


def test_grid_points_and_their_folder_names():
    points = sweep.grid_points(GRID)
    assert points == [
        dict(slope=1.0, points=3),
        dict(slope=1.0, points=4),
        dict(slope=2.0, points=3),
        dict(slope=2.0, points=4),
    ]
    assert sweep.point_name(points[1]) == "slope=1.0__points=4"
    assert sweep.point_name(dict(inits=["he", "a/b"])) == "inits=he+a_b"


def test_parallel_sweep_saves_every_point_and_a_summary(tmp_path, call_log):
    out = tmp_path / "sweep"
    report = sweep.run_sweep(
        FAKE, GRID, base=dict(noise=0.0), quick=True, out=out, workers=2, progress=False, log=lambda *_: None
    )
    names = [sweep.point_name(p) for p in sweep.grid_points(GRID)]
    assert sorted(report["done"]) == sorted(names) and point_folders(out) == sorted(names)
    assert len(calls(call_log)) == 4
    for point in sweep.grid_points(GRID):
        result = load(out / sweep.point_name(point))
        assert result.params["slope"] == point["slope"] and result.params["points"] == point["points"]
        assert result.params["noise"] == 0.0
        assert result.summary["fitted_slope"] == pytest.approx(point["slope"])
    with open(out / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["point"] for row in rows] == names and "fitted_slope" in rows[0]


def test_interrupted_sweep_resumes_without_recomputing_finished_points(tmp_path, call_log, monkeypatch):
    out = tmp_path / "sweep"
    monkeypatch.setenv("FAKE_SCENARIO_INTERRUPT_AT", "2")  # Ctrl-C during the third point
    assert (
        sweep.main([FAKE, "--grid", "slope=1,2", "--grid", "points=3,4", "--quick", "--out", str(out), "--no-progress"])
        == 130
    )
    finished = point_folders(out)
    assert finished == ["slope=1.0__points=3", "slope=1.0__points=4"]
    assert not [name for name in os.listdir(out) if name.startswith(".")]  # no partial point folder
    assert len(calls(call_log)) == 2
    # Without --resume a folder holding finished points is refused (they are not silently recomputed).
    monkeypatch.delenv("FAKE_SCENARIO_INTERRUPT_AT")
    assert (
        sweep.main([FAKE, "--grid", "slope=1,2", "--grid", "points=3,4", "--quick", "--out", str(out), "--no-progress"])
        == 2
    )
    assert len(calls(call_log)) == 2
    # --resume runs only the two missing points.
    assert (
        sweep.main(
            [
                FAKE,
                "--grid",
                "slope=1,2",
                "--grid",
                "points=3,4",
                "--quick",
                "--out",
                str(out),
                "--resume",
                "--no-progress",
            ]
        )
        == 0
    )
    assert calls(call_log) == ["1.0,3,0", "1.0,4,0", "2.0,3,0", "2.0,4,0"]
    assert len(point_folders(out)) == 4


def test_interrupt_in_a_worker_process_keeps_finished_points(tmp_path, call_log, monkeypatch):
    out = tmp_path / "sweep"
    monkeypatch.setenv("FAKE_SCENARIO_INTERRUPT_AT", "1")
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(FAKE, GRID, quick=True, out=out, workers=2, progress=False, log=lambda *_: None)
    saved = point_folders(out)
    assert not [name for name in os.listdir(out) if name.startswith(".")]
    monkeypatch.delenv("FAKE_SCENARIO_INTERRUPT_AT")
    before = len(calls(call_log))
    report = sweep.run_sweep(
        FAKE, GRID, quick=True, out=out, workers=2, resume=True, progress=False, log=lambda *_: None
    )
    assert sorted(report["skipped"]) == saved
    assert len(calls(call_log)) - before == 4 - len(saved)
    assert len(point_folders(out)) == 4


def test_bad_sweeps_are_one_line_errors(tmp_path, capsys):
    for argv, message in [
        ([FAKE, "--grid", "slop=1"], "unknown parameter 'slop' in --grid (did you mean 'slope'?)"),
        (["no_such_scenario", "--grid", "a=1"], "unknown scenario 'no_such_scenario'"),
        ([FAKE], "give at least one --grid"),
        ([FAKE, "--grid", "points=1", "--quick"], "point points=1: points must be an integer >= 2"),
        ([FAKE, "--grid", "slope=1", "--set", "slope=2"], "both in --grid and in --set"),
        ([FAKE, "--grid", "slope=1", "--workers", "0"], "workers must be a positive integer"),
    ]:
        code = sweep.main(argv + ["--out", str(tmp_path / "o"), "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert code == 2, argv
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_sweep_on_a_dask_local_cluster(tmp_path, call_log):
    from dask.distributed import Client, LocalCluster

    out = tmp_path / "sweep"
    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        report = sweep.run_sweep(FAKE, GRID, quick=True, out=out, client=client, progress=False, log=lambda *_: None)
    assert sorted(report["done"]) == point_folders(out) and len(point_folders(out)) == 4
    assert len(calls(call_log)) == 4
    assert load(out / "slope=2.0__points=4").summary["fitted_slope"] == pytest.approx(2.0, abs=0.5)
