"""A program's figures drawn by two processes (testbed.scenarios._figure_worker): a scenario run as a program draws
with a worker, each figure once, the same files as one process writes; a worker's error is raised in the caller;
Ctrl-C in the caller ends the worker."""

import os
import subprocess
import sys

import fake_scenario
import pytest

from testbed.scenarios import _figure_worker, common

pytestmark = pytest.mark.skipif(not _figure_worker.available(), reason="a figure worker needs Linux and two cores")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def drawn_by(log):
    """{figure name: pid of the process that drew it} from the fake scenario's figure log; each drawn once."""
    lines = [line.split() for line in log.read_text().splitlines()]
    assert len({name for name, _ in lines}) == len(lines), lines
    return dict(lines)


def test_an_error_in_the_worker_is_raised_in_the_caller_and_ends_it(tmp_path, monkeypatch):
    def breaks_the_rule(result):
        fig = fake_scenario.draw_line(result)
        fig.set_size_inches(5.0, 2.0)  # not a print width
        return fig

    monkeypatch.setitem(fake_scenario.FIGURES, "line", breaks_the_rule)  # the worker draws from the front
    worker = _figure_worker.FigureWorker(fake_scenario)
    result = fake_scenario.run(quick=True, progress=False)
    with pytest.raises(ValueError, match="figure 'line' breaks the house rule.*width 5 in"):
        common.plot(fake_scenario, result, tmp_path, worker=worker)
    assert not worker._process.is_alive()
    assert not (tmp_path / "line.png").exists()


def test_ctrl_c_in_the_caller_interrupts_the_worker(tmp_path, monkeypatch):
    def interrupted(result):
        raise KeyboardInterrupt

    monkeypatch.setitem(fake_scenario.FIGURES, "residual", interrupted)  # the caller draws from the back
    worker = _figure_worker.FigureWorker(fake_scenario)
    result = fake_scenario.run(quick=True, progress=False)
    with pytest.raises(KeyboardInterrupt):
        common.plot(fake_scenario, result, tmp_path, worker=worker)
    assert not worker._process.is_alive()
    assert not [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")]


def test_a_scenario_run_as_a_program_draws_with_a_worker_and_a_call_from_python_without(tmp_path, monkeypatch):
    """``python -m fake_scenario``: its two figures drawn by two processes, the files those of one process;
    common.main called from Python forks nothing."""
    log = tmp_path / "drawn.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]))
    env["FAKE_SCENARIO_FIGURE_LOG"] = str(log)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "fake_scenario", "--quick", "--no-progress", "--out", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    drawn = drawn_by(log)
    assert sorted(drawn) == ["line", "residual"] and drawn["line"] != drawn["residual"]
    log.unlink()
    monkeypatch.setenv("FAKE_SCENARIO_FIGURE_LOG", str(log))
    assert common.main(fake_scenario, ["--quick", "--no-progress", "--out", str(tmp_path / "alone")]) == 0
    assert set(drawn_by(log).values()) == {str(os.getpid())}
    for name in ("line.png", "line.pdf", "residual.png", "residual.pdf"):
        assert (out / name).read_bytes() == (tmp_path / "alone" / name).read_bytes()
