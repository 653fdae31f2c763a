"""Scenarios: runnable experiments that put a measurement beside its theory.

Run one with ``python -m testbed.scenarios.NAME [--quick] [--seed S] [--backend B] [--out DIR] [--no-plot]``;
``--help`` shows the module docstring. Each prints a table, saves its :class:`testbed.results.Result` to
``--out`` (default ``results/NAME``) and writes its figures there.

The contract every ``testbed/scenarios/NAME.py`` follows
----------------------------------------------------------
The module docstring
    What the scenario shows, the claim it tests, the paper; it is the ``--help`` text.
``DEFAULTS: dict``
    Every parameter of :func:`run` with its full-size value, including ``seed`` and ``backend``. These keys are
    the only accepted parameters (presets and sweeps are checked against them).
``QUICK: dict``
    Overrides applied by ``--quick``: a run of a few seconds that still exercises every figure.
``run(*, quick=False, progress=True, **params) -> Result``
    Merges ``DEFAULTS``, ``QUICK`` (when ``quick``) and ``params`` with
    ``common.merge_params(DEFAULTS, QUICK, quick, params)`` (unknown keys are a ValueError naming the key),
    validates every value (a ValueError naming the argument, never a Numba traceback), shows progress with
    ``common.progress(..., enabled=progress)`` and returns a :class:`testbed.results.Result` whose ``params``
    hold the merged parameters and whose wall time is set (``results.Timer``). ``scenario`` is ``NAME``.
    The same parameters and seed give the same numbers.
``validate(p) -> dict``
    The checks of the merged parameters (``run`` starts with ``p = validate(common.merge_params(...))``): cheap
    and without side effects, so that ``common.main`` can call it (``common.check_params``) before it starts
    anything and a bad argument on the command line fails at once.
``FIGURES: dict``
    Each figure's name mapped to the function that draws it: ``draw_x(result) -> matplotlib.figure.Figure`` in
    the house style (:mod:`testbed.plotting`), or None when the result holds nothing for it (a part of the
    scenario that did not run). **The name is the figure's only name**: the file stem
    (``NAME.png``, ``NAME.pdf``), the preset ``scenarios/NAME.toml`` that picks it and its entry in the README's
    gallery; keep names stable, short and descriptive (``variance_depth``, ``escape_ecdf``). Import matplotlib
    (through :mod:`testbed.plotting`) inside the figure functions or at the scenario's top: never in modules
    below the scenarios.
``table(result) -> str``
    The table printed after a run (``common.format_table`` aligns rows of dicts).
``add_arguments(parser)`` (optional)
    The scenario's own command-line options; **their default must be None** (so ``DEFAULTS``/``QUICK`` apply)
    and their ``dest`` is the keyword of ``run``. ``common.comma_list(float)`` parses ``--lr 0.1,0.01`` into a
    list.
The module's last lines
    ``if __name__ == "__main__": raise SystemExit(common.main(__name__))``.

A scenario defines no ``plot`` or ``main`` of its own: :func:`testbed.scenarios.common.plot` ``(module, result,
out_dir, names=None)`` draws every figure of a result (or of the folder a result was saved in), or the named
ones, and saves each as PNG and PDF; :func:`testbed.scenarios.common.main` ``(module, argv)`` is the command line
of every scenario (``--help`` shows the module docstring; ``--quick``, ``--seed``, ``--backend``, ``--out``,
``--no-plot``, ``--no-progress`` and the scenario's own options).

What :func:`testbed.scenarios.common.main` guarantees: bad input gives one line on stderr and exit status 2 (no
traceback), at once: the arguments and the output folder's writability are checked before anything starts (the
figure worker, the run); Ctrl-C gives exit status 130 and leaves no partial file (every write is atomic).

Figures for the paper are regenerated from presets with ``python -m testbed.figures``; grids of parameters
run with ``python -m testbed.sweep NAME --grid key=v1,v2``.
"""
