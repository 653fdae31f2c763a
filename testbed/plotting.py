"""The house style of every figure: one palette, one look, theory dashed, measurements as markers.

- Colours: the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), distinguishable with every common
  form of colour blindness and in greyscale by lightness; :data:`PALETTE`, :func:`color`.
- :func:`theory` draws a prediction as a dashed line; :func:`measured` draws a measurement as markers (with error
  bars when given); :func:`band` shades a spread (a confidence band, an interquartile range).
- :func:`figure` makes a Matplotlib ``Figure`` in the house style without pyplot (no global figure registry, no
  GUI backend, nothing to close); :func:`finish` labels the axes and adds the legend; :func:`save` writes
  ``NAME.png`` (150 dpi, for the README) and ``NAME.pdf`` (vector, for papers) atomically.

Typical use in a scenario's ``plot``::

    fig, ax = plotting.figure()
    plotting.measured(ax, depth, var, yerr=stderr, label="He, measured", color=plotting.color(0))
    plotting.theory(ax, depth, predicted, label="He, theory", color=plotting.color(0))
    plotting.finish(ax, xlabel="layer $l$", ylabel="Var$[s^{(l)}]$", yscale="log")
    return plotting.save(fig, out_dir, "variance")

Matplotlib is imported when this module is imported, never by anything below the scenarios.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import matplotlib

from .results import atomic_open

#: Okabe-Ito colours, ordered for plotting: strong, well separated hues first; yellow (weak on white) last.
PALETTE = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#E69F00",  # orange
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)

#: Marker shapes cycled alongside the colours, so series stay distinguishable in greyscale.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

#: Resolution of the PNG files (the README shows them at about 700 px wide).
PNG_DPI = 150

#: Default figure size in inches (one panel).
FIGSIZE = (5.0, 3.6)

#: The rcParams of the house style.
RC = {
    "axes.prop_cycle": matplotlib.cycler(color=list(PALETTE)),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "lines.markersize": 5,
    "errorbar.capsize": 2.5,
    "figure.figsize": FIGSIZE,
    "figure.dpi": 100,
    "savefig.dpi": PNG_DPI,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "pdf.fonttype": 42,  # TrueType in the PDF: editable text, accepted by journals
    "font.family": "DejaVu Sans",
    "mathtext.fontset": "dejavusans",
}


def color(index):
    """The ``index``-th colour of the palette (cycling)."""
    return PALETTE[int(index) % len(PALETTE)]


def marker(index):
    """The ``index``-th marker shape (cycling)."""
    return MARKERS[int(index) % len(MARKERS)]


@contextlib.contextmanager
def style():
    """Context manager applying the house style to figures created (and drawn) inside it."""
    with matplotlib.rc_context(RC):
        yield


def apply_style():
    """Apply the house style globally (for notebooks and interactive use)."""
    matplotlib.rcParams.update(RC)


def figure(nrows=1, ncols=1, *, figsize=None, sharex=False, sharey=False, squeeze=True):
    """A new ``(Figure, axes)`` in the house style, made without pyplot (nothing to close, no GUI backend).

    ``figsize`` defaults to :data:`FIGSIZE` per panel; ``axes`` is an Axes, or an array of them as in
    ``pyplot.subplots``.
    """
    from matplotlib.figure import Figure

    if figsize is None:
        figsize = (FIGSIZE[0] * ncols, FIGSIZE[1] * nrows)
    with style():
        fig = Figure(figsize=figsize, layout="constrained")
        axes = fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=squeeze)
    return fig, axes


def theory(ax, x, y, *, label=None, color=None, **kwargs):
    """A prediction: a dashed line (drawn above bands, below markers)."""
    options = dict(linestyle="--", linewidth=1.6, zorder=3)
    options.update(kwargs)
    with style():
        return ax.plot(x, y, label=label, color=color, **options)


def measured(ax, x, y, yerr=None, *, xerr=None, label=None, color=None, marker="o", **kwargs):
    """A measurement: markers, with error bars when ``yerr`` (or ``xerr``) is given; no connecting line."""
    with style():
        options = dict(linestyle="none", marker=marker, markersize=RC["lines.markersize"], zorder=4)
        options.update(kwargs)
        if yerr is None and xerr is None:
            return ax.plot(x, y, label=label, color=color, **options)
        options.setdefault("capsize", RC["errorbar.capsize"])
        options.setdefault("elinewidth", 1.0)
        return ax.errorbar(x, y, yerr=yerr, xerr=xerr, label=label, color=color, **options)


def band(ax, x, lo, hi, *, color=None, alpha=0.2, label=None, **kwargs):
    """A shaded spread between ``lo`` and ``hi`` (for example a 95% confidence band) behind the lines."""
    options = dict(linewidth=0, zorder=1)
    options.update(kwargs)
    with style():
        return ax.fill_between(x, lo, hi, color=color, alpha=alpha, label=label, **options)


def finish(ax, *, xlabel, ylabel, title=None, xscale=None, yscale=None, legend=True, legend_loc="best"):
    """Label the axes (both labels required: an unlabelled axis is a bug), set scales, add the legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    if xscale is not None:
        ax.set_xscale(xscale)
    if yscale is not None:
        ax.set_yscale(yscale)
    if legend:
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            with style():
                ax.legend(loc=legend_loc)
    return ax


def save(fig, out_dir, name):
    """Write ``out_dir/NAME.png`` (:data:`PNG_DPI` dpi) and ``out_dir/NAME.pdf`` (vector), each atomically.

    Creates ``out_dir``; returns ``[png_path, pdf_path]``. ``name`` is the figure's name (what presets refer
    to): letters, digits, ``_`` and ``-`` only.
    """
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"figure name must use only letters, digits, '_' and '-', got {name!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with style():
        for extension, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
            path = out_dir / f"{name}.{extension}"
            with atomic_open(path) as handle:
                fig.savefig(handle, format=extension, dpi=PNG_DPI, metadata=metadata)
            paths.append(path)
    return paths


def close(fig):
    """Release a figure made by :func:`figure` (a no-op kept for symmetry; pyplot never tracked it)."""
    fig.clear()


__all__ = [
    "PALETTE", "MARKERS", "PNG_DPI", "FIGSIZE", "RC", "color", "marker", "style", "apply_style", "figure",
    "theory", "measured", "band", "finish", "save", "close",
]

# Agg for everything that does import pyplot later (a scenario run on a headless machine).
if "matplotlib.pyplot" not in __import__("sys").modules and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")
