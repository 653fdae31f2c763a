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
``plot(result, out_dir) -> list of paths``
    Draws every figure of the scenario in the house style (:mod:`testbed.plotting`) and saves each with
    ``plotting.save(fig, out_dir, FIGURE_NAME)``, which writes ``FIGURE_NAME.png`` and ``FIGURE_NAME.pdf``;
    returns the list of written paths. **The file stem is the figure's name**: a preset
    (``scenarios/*.toml``) picks a figure by that name, so keep names stable, short and descriptive
    (``variance_depth``, ``escape_ecdf``). An equivalent shortcut: define
    ``figures(result) -> dict[name, matplotlib.figure.Figure]`` and write
    ``def plot(result, out_dir): return common.save_figures(figures(result), out_dir)``.
    Import matplotlib (through :mod:`testbed.plotting`) inside ``plot``/``figures`` or at the scenario's top:
    never in modules below the scenarios.
``FIGURES: tuple of str`` (recommended)
    The names of the figures ``plot`` writes, so a preset naming a figure that does not exist is rejected
    before anything runs.
``table(result) -> str``
    The table printed after a run (``common.format_table`` aligns rows of dicts).
``main(argv=None) -> int``
    Usually ``return common.main(__name__, argv, add_arguments=add_arguments)``, and at the end of the module
    ``if __name__ == "__main__": raise SystemExit(main())``. ``add_arguments(parser)`` adds the scenario's own
    options; **their default must be None** (so ``DEFAULTS``/``QUICK`` apply) and their ``dest`` is the
    keyword of ``run``. ``common.comma_list(float)`` parses ``--lr 0.1,0.01`` into a list.

What :func:`testbed.scenarios.common.main` guarantees: bad input gives one line on stderr and exit status 2 (no
traceback); Ctrl-C gives exit status 130 and leaves no partial file (every write is atomic); the output folder
is checked for writability before the run starts.

Figures for the paper are regenerated from presets with ``python -m testbed.figures``; grids of parameters
run with ``python -m testbed.sweep NAME --grid key=v1,v2``.
"""
