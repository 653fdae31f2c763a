"""The house rule of the figures (testbed.plotting): print widths, a font floor, labelled axes, no legend on data.

Every PDF in figures/ is opened and its page (MediaBox) and every font size its text is set in are checked; the
figure code is read for font sizes below the floor; plotting.save is shown to refuse what breaks the rule and to
move a legend off the data. The Gibbs-law helpers behind minima_double_well / minima_fractions are checked
against independent calculations (quadrature; a NumPy simulation of SGD and the heavy ball on a quadratic).
"""

import math
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from testbed import plotting

REPOSITORY = Path(__file__).resolve().parents[1]
FIGURES = REPOSITORY / "figures"
POINTS_PER_INCH = 72.0
#: A page may be this far from a print width (PDF coordinates are written with a few decimals).
WIDTH_SLACK_PT = 0.05
#: The font sizes set in the RC of the house style (the other "size" keys are markers and ticks).
FONT_KEYS = (
    "font.size",
    "axes.titlesize",
    "axes.labelsize",
    "xtick.labelsize",
    "ytick.labelsize",
    "legend.fontsize",
    "legend.title_fontsize",
    "figure.titlesize",
)


def pdf_streams(data):
    """The decoded content of every stream of a PDF file (Flate-compressed or plain)."""
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        body = match.group(1)
        try:
            yield zlib.decompress(body)
        except zlib.error:
            yield body


def pdf_page_size(data):
    match = re.search(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]", data)
    assert match, "no MediaBox"
    x0, y0, x1, y1 = (float(v) for v in match.groups())
    return x1 - x0, y1 - y0


def pdf_font_sizes(data):
    """Every size a text is set in (the operand of the Tf operator) in the PDF's content streams."""
    sizes = []
    for stream in pdf_streams(data):
        sizes.extend(float(v) for v in re.findall(rb"/[A-Za-z0-9_.+-]+\s+([\d.]+)\s+Tf\b", stream))
    return sizes


def generated_pdfs():
    return sorted(FIGURES.glob("*.pdf"))


def test_every_generated_pdf_is_a_print_width_with_fonts_above_the_floor():
    pdfs = generated_pdfs()
    assert pdfs, "no figures/*.pdf: run python -m testbed.figures"
    widths = [w * POINTS_PER_INCH for w in plotting.WIDTHS.values()]
    floor = plotting.FONT_FLOOR * plotting.SCRIPT_SHRINK - 1e-6  # mathtext scripts: TeX's script size
    for path in pdfs:
        data = path.read_bytes()
        width, height = pdf_page_size(data)
        assert any(abs(width - allowed) <= WIDTH_SLACK_PT for allowed in widths), (
            f"{path.name}: page {width / POINTS_PER_INCH:.3f} in wide; a figure is {plotting.COLUMN_WIDTH} or "
            f"{plotting.PAGE_WIDTH} in wide"
        )
        assert width <= plotting.MAX_WIDTH * POINTS_PER_INCH
        assert height <= plotting.MAX_HEIGHT * POINTS_PER_INCH + WIDTH_SLACK_PT, f"{path.name}: too tall"
        sizes = pdf_font_sizes(data)
        assert sizes, f"{path.name}: no text found"
        assert min(sizes) >= floor, f"{path.name}: text set in {min(sizes):g} pt"
        # most text is set at the floor or above; only sub- and superscripts go below it
        assert np.mean(np.array(sizes) >= plotting.FONT_FLOOR - 1e-6) > 0.5, path.name


def test_the_pdf_reader_sees_a_small_font_and_a_wrong_width(tmp_path):
    # the checks above can fail: a 5 pt label and a 5 in page, written by matplotlib itself, are seen as such
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 2.0))
    ax = fig.subplots()
    ax.set_xlabel("small", fontsize=5)
    fig.savefig(tmp_path / "bad.pdf")
    data = (tmp_path / "bad.pdf").read_bytes()
    assert pdf_page_size(data)[0] == pytest.approx(5.0 * POINTS_PER_INCH)
    assert min(pdf_font_sizes(data)) == pytest.approx(5.0)


def test_house_style_sets_no_font_below_the_floor():
    for key in FONT_KEYS:
        assert plotting.RC[key] >= plotting.FONT_FLOOR, key


def test_figure_code_never_sets_a_font_below_the_floor():
    sources = [REPOSITORY / "testbed" / "plotting.py", *sorted((REPOSITORY / "testbed" / "scenarios").glob("*.py"))]
    pattern = re.compile(r"""(?:fontsize|labelsize|titlesize|["']size["'])\s*[=:]\s*([0-9]+(?:\.[0-9]*)?)""")
    for path in sources:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for value in pattern.findall(line):
                assert float(value) >= plotting.FONT_FLOOR, f"{path.name}:{number}: {line.strip()}"


def test_figures_are_made_at_print_width():
    fig, _ = plotting.figure()
    assert tuple(fig.get_size_inches())[0] == plotting.COLUMN_WIDTH
    fig, _ = plotting.figure(1, 2, width="page")
    assert tuple(fig.get_size_inches())[0] == plotting.PAGE_WIDTH
    for bad in (5.0, "wide"):
        with pytest.raises(ValueError, match="width"):
            plotting.figure(width=bad)
    with pytest.raises(ValueError, match="height"):
        plotting.figure(height=plotting.MAX_HEIGHT + 1)


def _labelled(ax):
    ax.plot([0, 1], [0, 1], label="data")
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def test_save_refuses_what_breaks_the_rule(tmp_path):
    from matplotlib.figure import Figure

    wide = Figure(figsize=(10.0, 3.0), layout="constrained")
    _labelled(wide.subplots())
    with pytest.raises(ValueError, match="not a print width"):
        plotting.save(wide, tmp_path, "wide")
    fig, ax = plotting.figure()
    _labelled(ax)
    ax.set_title("tiny", fontsize=6)
    with pytest.raises(ValueError, match="below 7"):
        plotting.save(fig, tmp_path, "tiny")
    fig, ax = plotting.figure()
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("x")
    with pytest.raises(ValueError, match="y axis .* no label"):
        plotting.save(fig, tmp_path, "unlabelled")
    fig, ax = plotting.figure()
    _labelled(ax)
    ax.set_xlabel("an axis label far too long to fit across a single column of a two-column paper")
    with pytest.raises(ValueError, match="runs off the page"):
        plotting.save(fig, tmp_path, "long")
    assert not list(tmp_path.iterdir())  # nothing written for a figure that breaks the rule


def test_a_title_too_wide_for_the_page_is_broken_onto_two_lines(tmp_path):
    fig, ax = plotting.figure()
    _labelled(ax)
    title = "a title too long for one column, with $\\sigma_b^2 = 0.05$ kept whole"
    ax.set_title(title)
    plotting.save(fig, tmp_path, "wrapped")
    lines = ax.get_title().split("\n")
    assert len(lines) == 2 and " ".join(lines) == title
    assert all(line.count("$") % 2 == 0 for line in lines)
    assert plotting.check(fig) == []


def test_a_legend_over_data_is_moved_beside_the_axes(tmp_path):
    fig, ax = plotting.figure()
    x = np.linspace(0, 1, 200)
    for k in range(4):  # lines through every corner of the axes: no place inside is free
        ax.plot(x, np.abs(np.sin(3 * x + k)) if k % 2 else 1 - x, label=f"series {k}")
    ax.plot([0.02, 0.98, 0.02, 0.98], [0.98, 0.98, 0.02, 0.02], "o", label="corners")
    plotting.finish(ax, xlabel="x", ylabel="y", legend_loc="upper left")
    renderer = plotting._renderer(fig)
    assert plotting._legend_overlaps_data(ax, renderer)
    assert any("lies over data" in problem for problem in plotting.check(fig))
    plotting.save(fig, tmp_path, "moved")
    assert plotting.check(fig) == []
    legend = ax.get_legend().get_window_extent(plotting._renderer(fig))
    assert legend.x0 >= ax.get_window_extent(plotting._renderer(fig)).x1 - 1  # beside the axes, not on them


def test_paper_names():
    assert plotting.paper_name("heavy_ball") == "heavy ball"
    assert plotting.paper_name("momentum") == "running-average momentum"
    assert plotting.paper_name("saddle_free_newton") == "saddle-free Newton"
    assert all("_" not in name for name in plotting.PAPER_NAMES.values())


# ------------------------------------------------------------------------------------------------------------------
# the Gibbs law of minima_double_well and minima_fractions

#: The NumPy simulation: chains, steps, and the confidence multiple of the variance estimate's standard error.
CHAINS, STEPS, Z = 4000, 3000, 4.0


@pytest.mark.parametrize("optimizer, mu", [("sgd", 0.0), ("heavy_ball", 0.9)])
def test_effective_temperature_is_the_stationary_variance_on_a_quadratic(optimizer, mu):
    from testbed.scenarios import minima

    lr, curvature, sigma = 0.01, 1.0, 1.0
    temperature = minima.effective_temperature(optimizer, lr, sigma, mu=mu)
    rng = np.random.default_rng(7)
    w, v = np.zeros(CHAINS), np.zeros(CHAINS)
    for _ in range(STEPS):
        g = curvature * w + sigma * rng.standard_normal(CHAINS)
        v = mu * v + g
        w = w - lr * v
    variance = float(np.var(w))
    # the small-lr law T/k; its discretisation error is O(lr k / (1 + mu)), well inside the sampling band
    tolerance = Z * math.sqrt(2.0 / CHAINS) + lr * curvature
    assert variance == pytest.approx(temperature / curvature, rel=tolerance)
    assert minima.effective_temperature("adam", lr, sigma) is None
    assert minima.effective_temperature(optimizer, lr, 0.0, mu=mu) is None


def test_gibbs_fraction_matches_quadrature():
    from scipy import integrate

    from testbed.scenarios import minima
    from testbed.theory import escape

    height, tilt, temperature = 1.0, 0.3, 1.8
    barrier = escape.double_well_barrier(height, tilt)
    well = lambda w: height * (w**2 - 1.0) ** 2 + tilt * w  # noqa: E731
    weight = lambda w: math.exp(-well(w) / temperature)  # noqa: E731
    left = integrate.quad(weight, -np.inf, barrier)[0]
    total = left + integrate.quad(weight, barrier, np.inf)[0]
    p = dict(height=height, tilt=tilt, rastrigin_amplitude=10.0)
    # a grid of spacing 6e-5 cuts the interval at the barrier to within one cell: a relative error ~ 1e-5
    assert minima.gibbs_global_fraction(p, "double_well", temperature) == pytest.approx(left / total, rel=1e-4)
    # cold: all in the global well; the density integrates to 1
    assert minima.gibbs_global_fraction(p, "double_well", 0.01) == pytest.approx(1.0, abs=1e-9)
    grid = np.linspace(-6, 6, 20001)
    density = minima.gibbs_density(well, temperature, grid, 6.0)
    assert float(np.sum(density) * (grid[1] - grid[0])) == pytest.approx(1.0, rel=1e-6)
