"""The house style of every figure: one palette, one look, theory dashed, measurements as markers.

The house rule (what a referee checks; :func:`save` enforces the first three, ``tests/test_figure_rule.py``
checks every generated PDF):

- every figure is made at its print size: one column (:data:`COLUMN_WIDTH`, 3.25 in) or two columns
  (:data:`PAGE_WIDTH`, 6.75 in) wide, never more than :data:`MAX_WIDTH` (7 in), at most :data:`MAX_HEIGHT` tall;
  the PDF's page is exactly that size (no tight bounding box: the constrained layout fits everything inside);
- every font is at least :data:`FONT_FLOOR` (7 pt) at that size (mathtext scripts shrink by TeX's factor 0.7);
- every axis with tick labels is labelled with its quantity;
- no legend over data: a legend inside the axes that covers a data point or line is moved out beside the axes
  (:func:`save`), so the figure code may ask for ``"best"`` and still obey the rule;
- every line style is explained: theory dashed (:func:`theory`), measurements as markers (:func:`measured`), and a
  legend entry or caption for anything else;
- names are those of the lecture and the papers ("GD" without noise, "SGD" with it, "heavy ball",
  "running-average momentum"), never code names: :data:`PAPER_NAMES`, :func:`paper_name`.

- Colours: the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), distinguishable with every common
  form of colour blindness and in greyscale by lightness; :data:`PALETTE`, :func:`color`.
- :func:`theory` draws a prediction as a dashed line; :func:`measured` draws a measurement as markers (with error
  bars when given); :func:`band` shades a spread (a confidence band, an interquartile range).
- :func:`figure` makes a Matplotlib ``Figure`` in the house style without pyplot (no global figure registry, no
  GUI backend, nothing to close); :func:`finish` labels the axes and adds the legend; :func:`save` writes
  ``NAME.png`` (150 dpi, for the README) and ``NAME.pdf`` (vector, for papers) atomically.

Typical use in one of a scenario's figure functions (its ``FIGURES``; ``scenarios.common.plot`` saves what
it returns with :func:`save`)::

    fig, ax = plotting.figure()
    plotting.measured(ax, depth, var, yerr=stderr, label="He, measured", color=plotting.color(0))
    plotting.theory(ax, depth, predicted, label="He, theory", color=plotting.color(0))
    plotting.finish(ax, xlabel="layer $l$", ylabel="Var$[s^{(l)}]$", yscale="log")
    return fig

Matplotlib is imported when this module is imported, never by anything below the scenarios.
"""

from __future__ import annotations

import contextlib
import io
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

#: Resolution of the PNG files: a one-column figure is 650 px wide, a two-column one 1350 px.
PNG_DPI = 200

#: Print widths in inches: one column and two columns of a two-column paper (NeurIPS/ICML/IEEE: 3.25 / 6.75).
COLUMN_WIDTH = 3.25
PAGE_WIDTH = 6.75
#: The widths a figure may have, by name (``figure(width=...)``).
WIDTHS = {"column": COLUMN_WIDTH, "page": PAGE_WIDTH}
#: No figure is wider than this (a hook and the tests check every PDF in figures/ against it).
MAX_WIDTH = 7.0
#: No figure is taller than this (a page's text height less room for the caption).
MAX_HEIGHT = 9.0
#: The smallest font size, in points at print size.
FONT_FLOOR = 7.0
#: Mathtext sub- and superscripts are set at this fraction of their font (TeX's script size; matplotlib's
#: SHRINK_FACTOR): the only glyphs of a PDF allowed below FONT_FLOOR.
SCRIPT_SHRINK = 0.7

#: Default figure size in inches (one panel, one column).
FIGSIZE = (COLUMN_WIDTH, 2.4)

#: Names of the optimizers as the lecture and the papers write them (legends and captions use these).
PAPER_NAMES = {
    "gd": "GD",
    "sgd": "SGD",
    "gd_perturbed": "GD, perturbed start",
    "heavy_ball": "heavy ball",
    "momentum": "running-average momentum",
    "rmsprop": "RMSProp",
    "adam": "Adam",
    "amsgrad": "AMSGrad",
    "adagrad": "AdaGrad",
    "nadam": "NAdam",
    "adamax": "Adamax",
    "newton": "Newton",
    "saddle_free_newton": "saddle-free Newton",
}

#: The rcParams of the house style.
RC = {
    "axes.prop_cycle": matplotlib.cycler(color=list(PALETTE)),
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "figure.titlesize": 8,
    "legend.frameon": False,
    "legend.handlelength": 1.8,
    "legend.borderaxespad": 0.3,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "xtick.minor.size": 1.5,
    "ytick.minor.size": 1.5,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "errorbar.capsize": 1.5,
    "figure.figsize": FIGSIZE,
    "figure.dpi": 100,
    "figure.constrained_layout.h_pad": 0.03,
    "figure.constrained_layout.w_pad": 0.03,
    "savefig.dpi": PNG_DPI,
    "savefig.bbox": None,  # the page is the figure: its print size, exactly
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


def paper_name(name):
    """The lecture's name of an optimizer (``"heavy_ball"`` -> ``"heavy ball"``); unknown names pass through."""
    return PAPER_NAMES.get(name, name)


@contextlib.contextmanager
def style():
    """Context manager applying the house style to figures created (and drawn) inside it."""
    with matplotlib.rc_context(RC):
        yield


def apply_style():
    """Apply the house style globally (for notebooks and interactive use)."""
    matplotlib.rcParams.update(RC)


def print_width(width):
    """``"column"``, ``"page"`` or a number of inches -> the width in inches; ValueError unless a print width."""
    if isinstance(width, str):
        if width not in WIDTHS:
            raise ValueError(
                f"width must be one of {', '.join(map(repr, WIDTHS))} (or {COLUMN_WIDTH} or "
                f"{PAGE_WIDTH} inches), got {width!r}"
            )
        return WIDTHS[width]
    value = float(width)
    if not any(abs(value - allowed) < 1e-6 for allowed in WIDTHS.values()):
        raise ValueError(
            f"width must be {COLUMN_WIDTH} in (one column) or {PAGE_WIDTH} in (two columns), got {value:g} in"
        )
    return value


def figure(
    nrows=1,
    ncols=1,
    *,
    width="column",
    height=None,
    figsize=None,
    sharex=False,
    sharey=False,
    squeeze=True,
    gridspec_kw=None,
):
    """A new ``(Figure, axes)`` at print size in the house style, made without pyplot (nothing to close).

    ``width`` is ``"column"`` (3.25 in) or ``"page"`` (6.75 in); ``height`` defaults to 2.4 in per row (2.2 in
    per row on a full page) and is at most :data:`MAX_HEIGHT`. ``figsize=(w, h)`` may be given instead, with
    ``w`` one of the two widths. ``axes`` is an Axes, or an array of them as in ``pyplot.subplots``.
    """
    from matplotlib.figure import Figure

    if figsize is not None:
        width, height = figsize
    width = print_width(width)
    if height is None:
        height = (FIGSIZE[1] if width == COLUMN_WIDTH else 2.2) * nrows
    height = float(height)
    if not 0.5 <= height <= MAX_HEIGHT:
        raise ValueError(f"height must be between 0.5 and {MAX_HEIGHT} inches, got {height:g}")
    with style():
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=squeeze, gridspec_kw=gridspec_kw)
    return fig, axes


def theory(ax, x, y, *, label=None, color=None, **kwargs):
    """A prediction: a dashed line (drawn above bands, below markers)."""
    options = dict(linestyle="--", linewidth=1.1, zorder=3)
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


# ------------------------------------------------------------------------------------------------------------------
# the house rule, checked


def _texts(fig):
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _placed_texts(fig):
    """Titles, axis labels, annotations and legend entries: the texts that must lie inside the page."""
    texts = list(fig.texts)
    if getattr(fig, "_suptitle", None) is not None:
        texts.append(fig._suptitle)
    for legend in fig.legends:
        texts.extend(legend.get_texts())
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts.extend([ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label])
        texts.extend(ax.texts)
        if ax.get_legend() is not None:
            texts.extend(ax.get_legend().get_texts())
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def _data_points(ax):
    """Display coordinates of the data drawn in ``ax``: line vertices (and points along each segment), scatter
    points, bar corners and centres. Background fields (images, meshes, contours) and shaded bands are left out."""
    import numpy as np
    from matplotlib.cbook import STEP_LOOKUP_MAP
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    chunks = []
    for line in ax.get_lines():
        if not isinstance(line, Line2D) or not line.get_visible() or line.get_label() == "_nolegend_helper":
            continue
        xy = np.asarray(line.get_xydata(), dtype=float)
        if xy.size == 0:
            continue
        if line.get_drawstyle() not in (None, "default"):  # the steps as drawn, not the diagonal between vertices
            xy = np.column_stack(STEP_LOOKUP_MAP[line.get_drawstyle()](xy[:, 0], xy[:, 1]))
        xy = line.get_transform().transform(xy)
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        if line.get_linestyle() not in ("None", "none", "", " ") and len(xy) > 1:
            # points along each segment, so that a line crossing the legend counts even between vertices
            fractions = np.linspace(0.0, 1.0, 9)[:, None, None]
            xy = (xy[:-1][None] * (1 - fractions) + xy[1:][None] * fractions).reshape(-1, 2)
        chunks.append(xy)
    for collection in ax.collections:
        if isinstance(collection, PathCollection) and collection.get_visible():
            offsets = np.asarray(collection.get_offsets(), dtype=float)
            if offsets.size:
                chunks.append(collection.get_offset_transform().transform(offsets))
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_visible() and patch.get_height() != 0:
            corners = patch.get_transform().transform(
                [(0, 0), (1, 0), (0, 1), (1, 1), (0.5, 0.5), (0.5, 1), (0, 0.5), (1, 0.5)]
            )
            chunks.append(corners)
    if not chunks:
        return np.empty((0, 2))
    points = np.concatenate(chunks)
    return points[np.all(np.isfinite(points), axis=1)]


def _slack(renderer):
    """The tolerance of the house rule's checks in the renderer's pixels: one pixel at the house style's 100 dpi
    (``figure.dpi``), so a figure checked at the PNG's resolution (:func:`save`) gets the same physical slack."""
    return renderer.dpi / RC["figure.dpi"]


def _legend_overlaps_data(ax, renderer):
    import numpy as np

    legend = ax.get_legend()
    if legend is None or not legend.get_visible():
        return False
    box = legend.get_window_extent(renderer)
    inside_axes = ax.get_window_extent(renderer)
    if not box.overlaps(inside_axes):
        return False
    points = _data_points(ax)
    if points.size == 0:
        return False
    # only data visible in the axes counts; a point on the legend's edge does not
    within_axes = (
        (points[:, 0] >= inside_axes.x0)
        & (points[:, 0] <= inside_axes.x1)
        & (points[:, 1] >= inside_axes.y0)
        & (points[:, 1] <= inside_axes.y1)
    )
    slack = _slack(renderer)
    covered = (
        (points[:, 0] > box.x0 + slack)
        & (points[:, 0] < box.x1 - slack)
        & (points[:, 1] > box.y0 + slack)
        & (points[:, 1] < box.y1 - slack)
    )
    return bool(np.any(within_axes & covered))


def _move_legend_out(ax):
    """Redraw ``ax``'s legend beside the axes (right of it), keeping its entries and font."""
    legend = ax.get_legend()
    handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
    ncols = getattr(legend, "_ncols", 1)
    with style():
        ax.legend(
            handles,
            labels,
            loc="center left",
            bbox_to_anchor=(1.02, 0.5),
            ncols=ncols,
            fontsize=legend.get_texts()[0].get_fontsize() if labels else None,
        )


def legend_below(fig, handles=None, labels=None, *, ncols=2, source=None):
    """One legend for the whole figure, below its axes (out of the data, inside the page).

    ``handles``/``labels`` default to those of ``source`` (an Axes; the first axes of ``fig`` when None).
    """
    if handles is None:
        handles, labels = (source or fig.axes[0]).get_legend_handles_labels()
    with style():
        return fig.legend(handles, labels, loc="outside lower center", ncols=max(1, min(ncols, len(labels))))


def _renderer(fig):
    """Lay ``fig`` out and return its renderer (an Agg canvas is attached to a figure made without pyplot)."""
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return fig.canvas.get_renderer()


def _split_in_two(text):
    """``text`` with its middlemost space outside mathtext (``$...$``) made a line break; None if it has none."""
    spaces = [i for i, c in enumerate(text) if c == " " and text[:i].count("$") % 2 == 0]
    if not spaces:
        return None
    middle = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return text[:middle] + "\n" + text[middle + 1 :]


def _off_page(text, renderer, page):
    box = text.get_window_extent(renderer)
    slack = _slack(renderer)
    return box.x0 < page.x0 - slack or box.x1 > page.x1 + slack


def place_legends(fig, draw=None):
    """Move every legend that covers data out beside its axes (the house rule: no legend over data), and break a
    title too wide for the page onto two lines (the tick labels of a small data set can narrow the axes).

    ``draw(fig)`` lays the figure out and returns its renderer (default: a draw that renders nothing; :func:`save`
    draws the PNG). Returns the renderer of the figure's final layout (for :func:`check`: a layout costs a full
    draw), or None when the last look still changed something."""
    for _ in range(4):  # each change re-lays the figure out: look again
        renderer = (draw or _renderer)(fig)
        crowded = [ax for ax in fig.axes if _legend_overlaps_data(ax, renderer)]
        titles = [ax.title for ax in fig.axes if ax.get_visible()]
        if getattr(fig, "_suptitle", None) is not None:
            titles.append(fig._suptitle)
        wide = [
            t for t in titles if t.get_text().strip() and "\n" not in t.get_text() and _off_page(t, renderer, fig.bbox)
        ]
        if not crowded and not wide:
            return renderer
        for ax in crowded:
            _move_legend_out(ax)
        for title in wide:
            split = _split_in_two(title.get_text())
            if split is not None:
                title.set_text(split)


def check(fig, renderer=None):
    """The house rule's breaches in ``fig`` as a list of sentences (empty when it obeys).

    Print width (3.25 or 6.75 in) and height; every font at least :data:`FONT_FLOOR`; an axis label on every
    axis that shows tick labels; no legend inside the axes over a data point or line. ``renderer``: the renderer
    of the figure's current layout when the caller has one (:func:`place_legends` returns it), else it is laid out.
    """
    problems = []
    width, height = fig.get_size_inches()
    if not any(abs(width - allowed) < 1e-6 for allowed in WIDTHS.values()):
        problems.append(f"width {width:g} in is not a print width ({COLUMN_WIDTH} or {PAGE_WIDTH} in)")
    if height > MAX_HEIGHT + 1e-9:
        problems.append(f"height {height:g} in is over {MAX_HEIGHT} in")
    if renderer is None:
        renderer = _renderer(fig)
    for text in _texts(fig):
        if text.get_fontsize() < FONT_FLOOR - 1e-9:
            problems.append(f"text {text.get_text()!r} is set in {text.get_fontsize():g} pt, below {FONT_FLOOR:g}")
    page, slack = fig.bbox, _slack(renderer)
    for text in _placed_texts(fig):
        box = text.get_window_extent(renderer)
        if box.x0 < page.x0 - slack or box.x1 > page.x1 + slack or box.y0 < page.y0 - slack or box.y1 > page.y1 + slack:
            problems.append(f"text {text.get_text()!r} runs off the page")
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        for axis, letter in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            if not axis.get_visible():
                continue
            shown = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text().strip()]
            if shown and not axis.get_label_text().strip():
                title = ax.get_title() or ax.get_label() or "an axes"
                problems.append(f"the {letter} axis of {title!r} shows tick labels but has no label")
        if _legend_overlaps_data(ax, renderer):
            problems.append(f"the legend of {ax.get_title() or 'an axes'!r} lies over data")
    return problems


def save(fig, out_dir, name):
    """Write ``out_dir/NAME.png`` (:data:`PNG_DPI` dpi) and ``out_dir/NAME.pdf`` (vector), each atomically.

    Creates ``out_dir``; returns ``[png_path, pdf_path]``. ``name`` is the figure's name (what presets refer
    to): letters, digits, ``_`` and ``-`` only. Legends over data are first moved beside their axes
    (:func:`place_legends`); a figure that still breaks the house rule (:func:`check`) is a ValueError naming
    the figure and every breach, and nothing is written.

    The draw of the PNG serves the checks too: they had a draw of their own (a layout and every artist drawn
    without rendering), of which only the layout is kept, so the PNG is drawn on the same second layout as
    before. The checks run at the PNG's resolution, their one-pixel slack one pixel of the house style's 100 dpi
    (:func:`_slack`). The PDF is laid out again with the PDF's own text metrics (up to 2.6 pt from the PNG's
    layout: a PDF drawn on the PNG's layout would not be the PDF written before). ``benchmarks/RESULTS.md``,
    ninth session: the same files, about 10 % less time.
    """
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"figure name must use only letters, digits, '_' and '-', got {name!r}")
    png = io.BytesIO()
    own_dpi = fig.dpi

    def draw_png(figure):
        # A layout at the figure's own resolution, then the PNG's draw (a second layout, at PNG_DPI): the layouts
        # the PNG was drawn after when the checks had a draw of their own. The constrained layout does not settle
        # in one pass for every figure (the equal-aspect panels of minima_rastrigin move by a few points on the
        # second), and a layout alone costs half of that draw.
        figure.dpi = own_dpi
        engine = figure.get_layout_engine()
        if engine is not None:
            engine.execute(figure)
        figure.dpi = PNG_DPI
        png.seek(0)
        png.truncate()
        figure.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
        return figure.canvas.get_renderer()

    with style(), _on_agg_canvas(fig):
        renderer = place_legends(fig, draw=draw_png)
        if renderer is None:  # the last look moved something: the PNG drawn before it is stale
            renderer = draw_png(fig)
        problems = check(fig, renderer)
    if problems:
        raise ValueError(f"figure {name!r} breaks the house rule (testbed.plotting): " + "; ".join(problems))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png_path, pdf_path = out_dir / f"{name}.png", out_dir / f"{name}.pdf"
    with atomic_open(png_path) as handle:
        handle.write(png.getvalue())
    with style(), atomic_open(pdf_path) as handle:
        fig.savefig(handle, format="pdf", dpi=PNG_DPI, metadata={"CreationDate": None, "Producer": None})
    return [png_path, pdf_path]


@contextlib.contextmanager
def _on_agg_canvas(fig):
    """``fig`` on an Agg canvas inside (it keeps the renderer of its last draw, for the checks), at its own
    resolution again on exit (a draw inside may leave it at another)."""
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    own_dpi = fig.dpi
    try:
        yield
    finally:
        fig.dpi = own_dpi


def close(fig):
    """Release a figure made by :func:`figure` (a no-op kept for symmetry; pyplot never tracked it)."""
    fig.clear()


__all__ = [
    "PALETTE",
    "MARKERS",
    "PNG_DPI",
    "FIGSIZE",
    "RC",
    "COLUMN_WIDTH",
    "PAGE_WIDTH",
    "WIDTHS",
    "MAX_WIDTH",
    "MAX_HEIGHT",
    "FONT_FLOOR",
    "SCRIPT_SHRINK",
    "PAPER_NAMES",
    "color",
    "marker",
    "paper_name",
    "style",
    "apply_style",
    "print_width",
    "figure",
    "legend_below",
    "theory",
    "measured",
    "band",
    "finish",
    "place_legends",
    "check",
    "save",
    "close",
]

# Agg for everything that does import pyplot later (a scenario run on a headless machine).
if "matplotlib.pyplot" not in __import__("sys").modules and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")
