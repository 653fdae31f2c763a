"""What every scenario shares: parameter merging, progress bars, tables and the command line.

See the package docstring (:mod:`testbed.scenarios`) for the contract a scenario module follows.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import math
import os
import sys
import tempfile
from pathlib import Path

from ..backend import BACKENDS
from ..validation import closest

#: Exit status for bad input (argparse's convention).
EXIT_BAD_INPUT = 2

#: Exit status after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

#: Parameters handled by the command line of every scenario.
COMMON_OPTIONS = ("quick", "seed", "backend", "out", "no_plot", "no_progress")


# ----------------------------------------------------------------------------------------------------------
# Parameters


def merge_params(defaults, quick_overrides, quick, params):
    """``defaults``, then ``quick_overrides`` when ``quick``, then ``params``; unknown keys are a ValueError.

    The error names the unknown key, suggests the closest valid one and lists them all.
    """
    for key in list(quick_overrides) + list(params):
        if key not in defaults:
            valid = ", ".join(sorted(defaults))
            raise ValueError(f"unknown parameter {key!r}{closest(key, defaults)}; valid parameters: {valid}")
    merged = dict(defaults)
    if quick:
        merged.update(quick_overrides)
    merged.update(params)
    return merged


def check_list(value, name, item_check=None, *, single=True):
    """A non-empty list, each item passed through ``item_check``; ValueError naming ``name`` otherwise. A single
    value becomes a list of one, or with ``single=False`` is refused (where a lone string is likely a mistake)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        if not single:
            raise ValueError(f"{name} must be a list, got {value!r}")
        value = [value]
    items = [item if item_check is None else item_check(item) for item in value]
    if not items:
        raise ValueError(f"{name} must not be empty")
    return items


def comma_list(item_type=str):
    """An argparse ``type`` that parses ``"a,b,c"`` into a list of ``item_type`` (spaces around items ignored)."""

    def parse(text):
        items = [item.strip() for item in str(text).split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        try:
            return [item_type(item) for item in items]
        except (TypeError, ValueError):
            name = getattr(item_type, "__name__", "value")
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {name}, got {text!r}") from None

    parse.__name__ = f"list of {getattr(item_type, '__name__', 'value')}"
    return parse


# ----------------------------------------------------------------------------------------------------------
# Progress and tables


def progress(iterable=None, *, total=None, desc=None, enabled=True, leave=False, unit="it"):
    """A tqdm progress bar on stderr around ``iterable`` (or a manual bar with ``total``); plain when disabled.

    With ``enabled=False`` the iterable is returned unchanged (or, without one, a bar that draws nothing), so
    a scenario writes ``for x in common.progress(xs, desc="inits", enabled=progress)`` either way.
    """
    if not enabled and iterable is not None:
        return iterable
    from tqdm.auto import tqdm

    if iterable is None:
        return tqdm(
            iterable,
            total=total,
            desc=desc,
            disable=not enabled,
            leave=leave,
            unit=unit,
            file=sys.stderr,
            dynamic_ncols=True,
        )
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    bar = tqdm(total=total, desc=desc, leave=leave, unit=unit, file=sys.stderr, dynamic_ncols=True)
    return _moving_within_items(bar, iterable)


def _moving_within_items(bar, iterable):
    """Yield the items of ``iterable``, advancing ``bar`` by one per item and, within an item, by the fraction
    of Monte Carlo trials finished (:func:`testbed.montecarlo.progress_listener`), so that a long run moves it."""
    from .. import montecarlo

    try:
        for count, item in enumerate(iterable):

            def within(fraction, count=count):
                bar.n = round(count + fraction, 4)
                bar.refresh()

            with montecarlo.progress_listener(within):
                yield item
            bar.n = count + 1
            bar.refresh()
    finally:
        bar.close()


def progress_write(message):
    """Print ``message`` on stdout without breaking a progress bar that is being drawn on stderr."""
    from tqdm.auto import tqdm

    tqdm.write(str(message), file=sys.stdout)


def _format_value(value, floatfmt):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return format(value, floatfmt)
    try:
        import numpy as np

        if isinstance(value, np.floating):
            return _format_value(float(value), floatfmt)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    return str(value)


def format_table(rows, columns=None, *, floatfmt=".4g", headers=None):
    """Rows (dicts) as an aligned text table: text columns left-aligned, numbers right-aligned.

    ``columns`` picks and orders the keys (default: all, in order of appearance); ``headers`` maps a key to
    the header shown. Missing cells and None print as ``-``; floats use ``floatfmt``.
    """
    rows = list(rows)
    if columns is None:
        columns = []
        for row in rows:
            columns.extend(key for key in row if key not in columns)
    headers = headers or {}
    cells = [[_format_value(row.get(column), floatfmt) for column in columns] for row in rows]
    titles = [str(headers.get(column, column)) for column in columns]
    numeric = [
        all(
            isinstance(row.get(column), (int, float)) and not isinstance(row.get(column), bool)
            for row in rows
            if row.get(column) is not None
        )
        for column in columns
    ]
    widths = [max([len(title)] + [len(line[i]) for line in cells]) for i, title in enumerate(titles)]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(titles), "  ".join("-" * w for w in widths)]
    out.extend(line(values) for values in cells)
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------------------
# Figures


def figure_names(module):
    """The names of the figures a scenario draws, in its order (the keys of its ``FIGURES``)."""
    return list(getattr(module, "FIGURES", None) or ())


def _drawers(module, names):
    """(name, function) of the figures ``names`` of ``module`` (all when None); ValueError naming the valid ones."""
    known = module.FIGURES
    if names is None:
        return list(known.items())
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name not in known:
            raise ValueError(
                f"scenario {scenario_name(module)!r} has no figure {name!r}{closest(name, known)}; "
                f"its figures: {', '.join(known)}"
            )
    return [(name, function) for name, function in known.items() if name in names]


def _as_result(result):
    """A Result, or the one saved in the folder ``result`` names (:func:`testbed.results.load`)."""
    if isinstance(result, (str, os.PathLike)):
        from .. import results

        return results.load(result)
    return result


def draw(module, result, names=None):
    """The figures of a scenario's result as a dict ``name -> matplotlib Figure``: all, or those in ``names``.

    ``module`` is a scenario module whose ``FIGURES`` maps each figure's name to the function drawing it from a
    result; ``result`` is a :class:`testbed.results.Result` or the folder it was saved in. A figure function
    returns None when the result holds nothing for it (a part of the scenario that did not run): that figure is
    left out. A name the scenario does not draw is a ValueError listing the ones it does.
    """
    result = _as_result(result)
    drawn = {name: function(result) for name, function in _drawers(module, names)}
    return {name: fig for name, fig in drawn.items() if fig is not None}


def _draw_and_save(function, result, out_dir, name):
    """The paths of figure ``name`` drawn by ``function`` and saved (none when it has nothing to draw)."""
    from .. import plotting

    fig = function(result)
    if fig is None:  # nothing to draw in this result (a part of the scenario that did not run)
        return []
    paths = plotting.save(fig, out_dir, name)
    plotting.close(fig)
    return paths


def plot(module, result, out_dir, names=None, *, worker=None):
    """Draw the figures of ``result`` (all, or those in ``names``) and save each as ``out_dir/NAME.png`` and
    ``.pdf`` (:func:`testbed.plotting.save`); returns the written paths, in the scenario's order.

    ``result`` is a :class:`testbed.results.Result` or the folder it was saved in, so a saved run is redrawn
    without running it again. Figures are drawn and saved one at a time (only one is in memory), or, with a
    ``worker`` (:class:`testbed.scenarios._figure_worker.FigureWorker`), one at a time in each process: the worker
    takes the figures from the front of the list, this process from the back. Should this process be
    interrupted, the worker is interrupted too.
    """
    result = _as_result(result)
    drawers = _drawers(module, names)
    if worker is None or len(drawers) < 2:
        return [path for name, function in drawers for path in _draw_and_save(function, result, out_dir, name)]
    written = {}
    queue = collections.deque(drawers)
    try:
        while queue:
            if worker.busy is not None and worker.ready():
                name = worker.busy
                written[name] = worker.collect()
            if worker.busy is None:
                name, _ = queue.popleft()
                worker.submit(name, result, out_dir)
            else:
                name, function = queue.pop()
                written[name] = _draw_and_save(function, result, out_dir, name)
        if worker.busy is not None:
            name = worker.busy
            written[name] = worker.collect()
    except BaseException:
        worker.stop(interrupt=True)
        raise
    return [path for name, _ in drawers for path in written[name]]


# ----------------------------------------------------------------------------------------------------------
# Command line


def scenario_name(module):
    """The short name of a scenario module (``variance`` for ``testbed.scenarios.variance``, also as __main__)."""
    spec = getattr(module, "__spec__", None)
    full = spec.name if spec is not None and spec.name else module.__name__
    if full == "__main__" and getattr(module, "__file__", None):
        full = Path(module.__file__).stem
    return full.rsplit(".", 1)[-1]


def load_scenario(name):
    """Import ``testbed.scenarios.NAME`` (or a full dotted module path); ValueError naming it when unknown."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"scenario must be a non-empty name, got {name!r}")
    module_name = name if "." in name else f"testbed.scenarios.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and not module_name.startswith(error.name) and error.name != module_name:
            raise  # the scenario exists but one of its own imports is missing: a real bug, show it
        valid = available_scenarios()
        raise ValueError(
            f"unknown scenario {name!r}{closest(name, valid)}; valid choices: {', '.join(valid) or '(none)'}"
        ) from None
    missing = [attr for attr in ("DEFAULTS", "run") if not hasattr(module, attr)]
    if missing:
        raise ValueError(f"{module_name} is not a scenario module (it lacks {', '.join(missing)})")
    return module


def available_scenarios():
    """Names of the scenario modules in ``testbed/scenarios``."""
    folder = Path(__file__).resolve().parent
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_") and p.stem != "common")


def check_writable(folder, *, create=True):
    """Create ``folder`` if needed and check a file can be written there; ValueError naming it otherwise.

    ``create=False`` creates nothing: it checks that ``folder`` is a writable folder, or that the nearest folder
    above it that exists is writable (so the run can create it once it has something to save). An empty name is
    refused (it would mean the current folder).
    """
    if not str(folder).strip():
        raise ValueError("output folder must be a non-empty path (use '.' for the current folder), got ''")
    folder = Path(folder)
    if not create:
        existing = folder
        while not existing.exists() and existing != existing.parent:
            if existing.is_symlink():  # a dangling link: mkdir would fail on it
                raise ValueError(f"cannot write to output folder {str(folder)!r}: {existing} is a broken link")
            existing = existing.parent
        if existing.exists() and not existing.is_dir():
            raise ValueError(f"cannot write to output folder {str(folder)!r}: {existing} exists and is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"cannot write to output folder {str(folder)!r}: {existing} is not writable")
        return folder
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder} exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-", delete=True):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise ValueError(f"cannot write to output folder {str(folder)!r}: {reason}") from None
    return folder


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit status 2), not the usage block."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser(module, add_arguments=None):
    """The argument parser of a scenario: common options, then the scenario's own (``add_arguments``)."""
    name = scenario_name(module)
    spec = getattr(module, "__spec__", None)
    dotted = spec.name if spec is not None and spec.name else f"testbed.scenarios.{name}"
    parser = _Parser(
        prog=f"python -m {dotted}",
        description=(module.__doc__ or "").strip() or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group = parser.add_argument_group("common options")
    group.add_argument("--quick", action="store_true", help="small, fast run (seconds) that still makes every figure")
    group.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    group.add_argument("--backend", choices=BACKENDS, default=None, help="where kernels run (default: the scenario's)")
    group.add_argument("--out", default=None, metavar="DIR", help=f"output folder (default: results/{name})")
    group.add_argument("--no-plot", action="store_true", help="save the data and table, skip the figures")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")
    if add_arguments is not None:
        own = parser.add_argument_group(f"{name} options")
        add_arguments(own)
    return parser


def _error(prog, message):
    print(f"{prog}: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


#: Extensions :func:`testbed.plotting.save` writes a figure in.
FIGURE_EXTENSIONS = ("png", "pdf")


def _own_figures(module, out):
    """The files in ``out`` of the figures the scenario draws (its ``FIGURES``)."""
    return [Path(out) / f"{name}.{extension}" for name in figure_names(module) for extension in FIGURE_EXTENSIONS]


def _interrupted(module_name):
    """EXIT_INTERRUPTED; a scenario run as a program (``__main__``) exits at once instead: Python's clean-up of
    the modules it loaded (Numba, SciPy, Matplotlib) takes up to a second on a busy machine, and after Ctrl-C
    nothing is left to finish (every file is written atomically, or not at all)."""
    return _finished(module_name, EXIT_INTERRUPTED)


def _finished(module_name, status):
    """``status``; a scenario run as a program (``__main__``) exits with it at once, skipping Python's clean-up of
    the modules it loaded (0.2 to 0.5 s of a warm run on 2 cores, up to a second on a busy machine): every file it
    wrote is closed, and stdout and stderr are flushed here."""
    if module_name == "__main__":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def main(module_name, argv=None, add_arguments=None):
    """The command line of a scenario module; returns the exit status.

    A scenario module ends with ``if __name__ == "__main__": raise SystemExit(common.main(__name__))``.
    ``module_name`` is the module's ``__name__`` (or the module itself, or a scenario name as
    :func:`load_scenario` takes it); its own options come from ``add_arguments`` (default: the module's
    ``add_arguments(parser)``, when it has one). Parses ``argv``, runs the scenario, prints its table, saves the
    result and the figures to ``--out`` and prints where. Bad input (a ValueError from ``run``, an unwritable
    output folder) prints one line and returns 2; Ctrl-C returns 130 with every file either complete or absent.
    """
    if isinstance(module_name, str):
        module = sys.modules.get(module_name) or load_scenario(module_name)
    else:
        module, module_name = module_name, module_name.__name__
    name = scenario_name(module)
    if add_arguments is None:
        add_arguments = getattr(module, "add_arguments", None)
    parser = build_parser(module, add_arguments)
    args = parser.parse_args(argv)
    options = vars(args)
    params = {key: value for key, value in options.items() if key not in COMMON_OPTIONS and value is not None}
    for key in ("seed", "backend"):
        if options[key] is not None:
            params[key] = options[key]
    worker = None
    try:
        out = check_writable(
            options["out"] if options["out"] is not None else Path("results") / name, create=False
        )  # bad input creates no folder: the save does, once there is a result
        check_params(module, options["quick"], params)  # at once, before the figure worker is forked
        worker = _start_worker(module, module_name, options)
        result = module.run(quick=options["quick"], progress=not options["no_progress"], **params)
    except ValueError as error:
        _stop(worker)
        return _error(parser.prog, error)
    except KeyboardInterrupt:
        _stop(worker)
        print(f"{parser.prog}: interrupted; nothing saved", file=sys.stderr)
        return _interrupted(module_name)
    try:
        print(module.table(result))
        for stale in _own_figures(module, out):  # a figure of an earlier run must not sit beside this result
            stale.unlink(missing_ok=True)
        result.save(out)
        print(f"saved result to {out}/ (result.json, data files)")
        if not options["no_plot"]:
            for path in plot(module, result, out, worker=worker):
                print(f"wrote {path}")
    except KeyboardInterrupt:
        _stop(worker)
        print(f"{parser.prog}: interrupted while saving; every file written is complete", file=sys.stderr)
        return _interrupted(module_name)
    except OSError as error:
        _stop(worker)
        return _error(parser.prog, f"cannot write to {out}: {error.strerror or error}")
    _stop(worker, interrupt=False)
    sys.stdout.flush()
    return _finished(module_name, 0)


def check_params(module, quick, params):
    """The parameters ``module.run(quick=quick, **params)`` runs with, checked as ``run`` checks them (the merge's
    unknown keys, then the scenario's ``validate``, where it has one), without running anything: a ValueError
    naming the argument otherwise.

    :func:`main` calls it before it starts anything (the figure worker), so that a bad argument fails at once; ``run``
    checks the same parameters again (a few microseconds), as a call from Python needs.
    """
    merged = merge_params(module.DEFAULTS, getattr(module, "QUICK", {}), quick, params)
    validate = getattr(module, "validate", None)
    return merged if validate is None else validate(merged)


def _start_worker(module, module_name, options):
    """A :class:`testbed.scenarios._figure_worker.FigureWorker` for a program's run with two figures or more (forked
    now, before the run starts a thread), else None. A call from Python (a test, a notebook) draws in its own
    process: forking a process that may hold threads of its own is not safe."""
    from . import _figure_worker

    if module_name != "__main__" or options["no_plot"] or len(figure_names(module)) < 2:
        return None
    if not _figure_worker.available():
        return None
    return _figure_worker.FigureWorker(module)


def _stop(worker, interrupt=True):
    if worker is not None:
        worker.stop(interrupt=interrupt)
