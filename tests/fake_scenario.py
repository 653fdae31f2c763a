"""A tiny scenario for testing the scenario machinery (results, figures, sweeps) without compiled kernels.

It "measures" y = slope * x + noise at a few points and compares with the line y = slope * x. Every call of
``run`` is appended to the file named by ``FAKE_SCENARIO_CALL_LOG`` when that is set, so tests can count calls
made in worker processes; with ``FAKE_SCENARIO_INTERRUPT_AT=K`` as well, every call that starts once K calls are
logged raises KeyboardInterrupt (a Ctrl-C in the middle of a sweep). "Once", not "when exactly": two worker
processes may both start before either logs, so the count can jump past K. With ``FAKE_SCENARIO_FIGURE_LOG`` set,
every figure drawn appends "NAME PID" to that file (which process drew it).
"""

import os

import numpy as np

from testbed.results import Result, Timer
from testbed.scenarios import common

DEFAULTS = dict(slope=2.0, points=20, noise=0.1, seed=0, backend="cpu")
QUICK = dict(points=5)


def run(*, quick=False, progress=True, **params):
    p = common.merge_params(DEFAULTS, QUICK, quick, params)
    if not isinstance(p["points"], int) or p["points"] < 2:
        raise ValueError(f"points must be an integer >= 2, got {p['points']!r}")
    if p["noise"] < 0:
        raise ValueError(f"noise must be >= 0, got {p['noise']!r}")
    log = os.environ.get("FAKE_SCENARIO_CALL_LOG")
    if log:
        interrupt_at = os.environ.get("FAKE_SCENARIO_INTERRUPT_AT")
        if interrupt_at is not None and len(logged_calls(log)) >= int(interrupt_at):
            raise KeyboardInterrupt
        with open(log, "a") as handle:
            handle.write(f"{p['slope']},{p['points']},{p['seed']}\n")
    with Timer() as timer:
        x = np.linspace(0.0, 1.0, p["points"])
        rng = np.random.default_rng(p["seed"])
        y = p["slope"] * x + p["noise"] * rng.standard_normal(p["points"])
        for _ in common.progress(range(3), desc="fake", enabled=progress):
            pass
    result = Result(
        "fake_scenario",
        p,
        dict(fitted_slope=float(np.polyfit(x, y, 1)[0])),
        arrays=dict(x=x, y=y),
        tables=dict(points=[dict(x=a, y=b) for a, b in zip(x, y)]),
    )
    result.wall_time = timer.seconds
    return result


def logged_calls(log):
    """The calls recorded in the log file: a list of (slope, points, seed) strings."""
    if not os.path.exists(log):
        return []
    with open(log) as handle:
        return [line.strip() for line in handle if line.strip()]


def _log_figure(name):
    log = os.environ.get("FAKE_SCENARIO_FIGURE_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{name} {os.getpid()}\n")


def draw_line(result):
    from testbed import plotting

    _log_figure("line")
    x, y = result.arrays["x"], result.arrays["y"]
    fig, ax = plotting.figure()
    plotting.measured(ax, x, y, yerr=result.params["noise"], label="measured", color=plotting.color(0))
    plotting.theory(ax, x, result.params["slope"] * x, label="theory", color=plotting.color(0))
    plotting.finish(ax, xlabel="x", ylabel="y")
    return fig


def draw_residual(result):
    from testbed import plotting

    _log_figure("residual")
    x, y = result.arrays["x"], result.arrays["y"]
    fig, ax = plotting.figure()
    plotting.measured(ax, x, y - result.params["slope"] * x, label="residual", color=plotting.color(1))
    plotting.finish(ax, xlabel="x", ylabel="residual")
    return fig


def table(result):
    return common.format_table([dict(slope=result.params["slope"], fitted=result.summary["fitted_slope"])])


def add_arguments(parser):
    parser.add_argument("--slope", type=float, default=None, help="slope of the line")
    parser.add_argument("--points", type=int, default=None, help="number of points")


FIGURES = {"line": draw_line, "residual": draw_residual}


if __name__ == "__main__":
    raise SystemExit(common.main(__name__))
