"""Checks that every scenario's test file makes of its tiny run: the figures and the saved result, the command
line."""

from testbed import results
from testbed.scenarios import common


def check_figures_and_saved_result(module, result, folder):
    """Every figure of the scenario ``module`` drawn from ``result`` into ``folder``, none empty; ``result`` saved
    there and loaded back equal."""
    paths = common.plot(module, result, folder)
    assert {path.stem for path in paths} == set(module.FIGURES)
    assert all(path.stat().st_size > 0 for path in paths)
    result.save(folder / "saved")
    assert results.load(folder / "saved") == result


def run_quick_command_line(module, folder, capsys, *arguments):
    """``module``'s command line with ``--quick --no-progress --no-plot --out folder`` and ``arguments``: exit status
    0 and a result saved in ``folder``; returns what it printed."""
    status = common.main(module, ["--quick", "--no-progress", "--no-plot", "--out", str(folder), *arguments])
    assert status == 0
    assert (folder / "result.json").is_file()
    return capsys.readouterr().out
