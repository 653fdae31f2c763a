"""A second process that draws a scenario's figures beside the caller: a program's figures on two cores.

Drawing and writing a figure (Matplotlib's layout, the PNG's rendering, the PDF's font subsetting) is Python on
one core, and a scenario's figures are independent of each other. :class:`FigureWorker` forks the scenario's
process when the run begins, before any kernel thread exists, once that process has imported Matplotlib and drawn
a first figure (:func:`warm_up`: the costs of a first figure, paid once for both processes), and waits (no CPU
time) until the result is there;
then :func:`testbed.scenarios.common.plot` hands it figures one at a time (the worker from the front of the list,
the caller from the back) and gathers the paths in the scenario's order. Each figure is drawn by
:func:`testbed.plotting.save`, in either process: the same files, each written atomically. (A worker that
warmed up after the fork, while the run computed, took about 2 s of CPU from the run's two threads on the shared
2-core machine; one that warmed up with its first figure paid it twice: benchmarks/RESULTS.md, tenth session.)

Linux only (``fork``; a forked macOS process may not use every system library, and a spawned one would import
everything again). Ctrl-C reaches both processes: the worker ends at once without a traceback (the file it was
writing left absent), and a caller interrupted while the worker draws interrupts it (:meth:`FigureWorker.stop`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys

#: Seconds :meth:`FigureWorker.stop` waits for the worker to end before killing it.
STOP_SECONDS = 2.0


def available():
    """True where a worker can run and helps: a Linux process with at least two usable cores."""
    if not sys.platform.startswith("linux") or "fork" not in multiprocessing.get_all_start_methods():
        return False
    return len(os.sched_getaffinity(0)) >= 2


def warm_up():
    """Import Matplotlib and draw a small figure with every kind of text (fonts, mathtext, a legend, the PDF's font
    subsetting) to PNG and PDF in memory: what a process's first figure costs beyond its own drawing. Run before
    the fork, it is paid once for both processes."""
    import io

    from .. import plotting

    fig, ax = plotting.figure()
    ax.plot([1.0, 2.0, 3.0], [1.0, 4.0, 9.0], label="measured, $\\sigma$ = 0.1")
    plotting.theory(ax, [1.0, 3.0], [1.0, 9.0], label="theory")
    plotting.finish(ax, xlabel="step $t$", ylabel="fraction $|w| > R$", title="$d$ = 10", xscale="log")
    with plotting.style():
        for kind in ("png", "pdf"):
            fig.savefig(io.BytesIO(), format=kind, dpi=plotting.PNG_DPI)
    plotting.close(fig)


def _serve(connection, module):
    """The worker's loop: ``(name, result, out_dir)`` in, ``("ok", paths)`` or ``("error", exception)`` out; None
    or the caller's end closed ends it."""
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        while True:
            try:
                task = connection.recv()
            except EOFError:
                return
            if task is None:
                return
            name, result, out_dir = task
            try:
                from .. import plotting

                fig = module.FIGURES[name](result)
                paths = [] if fig is None else plotting.save(fig, out_dir, name)
                if fig is not None:
                    plotting.close(fig)
                reply = ("ok", paths)
            except Exception as error:  # the caller raises it, as a figure drawn there would
                reply = ("error", error)
            connection.send(reply)
    except KeyboardInterrupt:
        pass
    finally:
        connection.close()


class FigureWorker:
    """A forked process that draws figures of ``module`` (a scenario module) when asked (see the module)."""

    def __init__(self, module):
        warm_up()
        context = multiprocessing.get_context("fork")
        self._connection, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(theirs, module), name="testbed-figures", daemon=True)
        self._process.start()
        theirs.close()
        self._pending = None

    @property
    def busy(self):
        """The name of the figure the worker is drawing, or None."""
        return self._pending

    def submit(self, name, result, out_dir):
        """Ask the worker to draw and save figure ``name`` of ``result`` in ``out_dir``."""
        self._connection.send((name, result, os.fspath(out_dir)))
        self._pending = name

    def ready(self):
        """True when the figure asked for is done (its outcome waits for :meth:`collect`)."""
        return self._pending is None or self._connection.poll()

    def collect(self):
        """The paths written for the figure asked for; its error, raised here; a worker that died: RuntimeError."""
        name, self._pending = self._pending, None
        try:
            status, value = self._connection.recv()
        except EOFError:
            raise RuntimeError(f"the figure worker ended while drawing figure {name!r}") from None
        if status == "error":
            raise value
        return value

    def stop(self, interrupt=False):
        """End the worker: after its figure (``interrupt=False``) or at once, as Ctrl-C would (``interrupt=True``)."""
        if self._process.is_alive() and interrupt:
            os.kill(self._process.pid, signal.SIGINT)
        try:
            self._connection.send(None)
        except OSError:  # it has ended already
            pass
        self._process.join(STOP_SECONDS)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._connection.close()
