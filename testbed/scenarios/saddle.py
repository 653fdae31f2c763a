"""Saddles: "easily escapable, especially with SGD", measured over thousands of trials beside the theory.

The landscape is the strict saddle f(w) = 1/2 sum_i lambda_i w_i^2 in d dimensions with one (or more) escape
directions of curvature -gamma and the others +1 (Dauphin et al. 2014). Each trial runs an optimizer from the
saddle until |w| > R (the escape) or the step budget runs out (then it is censored, not counted as an escape):

- gd            gradient descent from EXACTLY the saddle, no noise: the gradient is 0, it never moves;
- gd_perturbed  gradient descent from a start uniform in a small ball (radius ``perturbation``): it escapes after
                T = ln(R/|y0|) / ln(1 + lr gamma) steps, y0 the start's escape coordinate;
- sgd           gradient descent with Gaussian gradient noise of std ``noise`` from exactly the saddle: the
                escape coordinate's variance grows as lr sigma^2/(2 gamma) (1 + lr gamma)^(2t);
- momentum      the lecture's running average v = b v + (1-b) g (b = mu), with the same noise;
- heavy_ball    Polyak's heavy ball v = mu v + g (PyTorch's form): growth factor
                z = ((1 + mu + lr gamma) + sqrt((1 + mu + lr gamma)^2 - 4 mu)) / 2 per step;
- rmsprop, adam per-component normalisation: steps of about lr whatever the gradient's size;
- newton        Newton's step H^-1 g jumps to the stationary point of the quadratic: attracted to the saddle;
- saddle_free_newton  |H|^-1 g (Dauphin et al. 2014): negative curvature repels, it escapes.

Figures: ``escape_ecdf`` (fraction escaped by step t for every optimizer, theory dashed for gd_perturbed and sgd),
``escape_vs_lr`` (median escape step vs lr: GD and heavy ball from a fixed perturbation, exact; SGD from the exact
saddle), ``escape_vs_noise`` (vs sigma), ``escape_vs_dim`` (vs d: a random start's escape coordinate shrinks like
r/sqrt(d); the stable directions' noise eats into the radius), ``saddle_contour`` (trajectories of each optimizer
on the 2-D saddle). The table gives the median escape step (Kaplan-Meier when some trials are censored), the
fraction escaped, the divergent trials and the theory (reference.md section 4; testbed.theory.escape).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend as backends
from .. import landscapes, montecarlo, optim, validation, warmup
from ..results import Result, Timer
from ..theory import escape as theory
from . import common

#: Every optimizer of the escape-time comparison, with how it runs (start, noise) and what it is.
OPTIMIZERS = {
    "gd": "gradient descent from exactly the saddle, no noise (never escapes)",
    "gd_perturbed": "gradient descent from a random start in a ball of radius `perturbation`, no noise",
    "sgd": "gradient descent with Gaussian gradient noise, from exactly the saddle",
    "momentum": "running average v = mu v + (1-mu) g, noisy, from the saddle",
    "heavy_ball": "heavy ball v = mu v + g (PyTorch's SGD momentum), noisy, from the saddle",
    "rmsprop": "RMSProp (PyTorch defaults), noisy, from the saddle",
    "adam": "Adam (PyTorch defaults), noisy, from the saddle",
    "newton": "Newton's method H^-1 g, noisy, from the saddle (attracted to it)",
    "saddle_free_newton": "saddle-free Newton |H|^-1 g, noisy, from the saddle",
}
NOISELESS = ("gd", "gd_perturbed")
DENSE = ("newton", "saddle_free_newton")

DEFAULTS = dict(
    optimizers=list(OPTIMIZERS),
    trials=2000,
    dense_trials=200,
    dim=10,
    negative=1,
    gamma=1.0,
    lr=0.01,
    noise=0.01,
    radius=1.0,
    perturbation=1e-3,
    mu=0.9,
    max_steps=20000,
    dense_max_steps=2000,
    sweep_lr=[0.0025, 0.005, 0.01, 0.02, 0.05, 0.1],
    sweep_noise=[1e-4, 1e-3, 1e-2, 1e-1],
    sweep_dim=[2, 5, 10, 20, 50, 100],
    contour_lr=0.05,
    contour_noise=0.05,
    contour_start=[0.02, 0.9],
    seed=0,
    backend="cpu",
)
QUICK = dict(
    trials=300,
    dense_trials=30,
    max_steps=5000,
    dense_max_steps=1500,
    sweep_lr=[0.005, 0.02, 0.1],
    sweep_noise=[1e-3, 1e-1],
    sweep_dim=[2, 10, 50],
)

#: Points of the ECDF theory curves.
CURVE_POINTS = 200

#: Plot style per optimizer: (palette index or a grey level, line style). Newton-type methods are dash-dotted so
#: that no measured curve is dashed (dashed lines are theory).
LINE_STYLES = {
    "gd": ("black", ":"),
    "gd_perturbed": (1, "-"),
    "sgd": (2, "-"),
    "momentum": (3, "-"),
    "heavy_ball": (4, "-"),
    "rmsprop": (5, "-"),
    "adam": (0, "-"),
    "newton": ("black", "-."),
    "saddle_free_newton": ("0.45", "-."),
}


# ------------------------------------------------------------------------------------------------------------------
# parameters


def _positive(value, name):
    return validation.check_finite(value, name, minimum=0.0, strict=True)


def validate(p):
    names = []
    for name in common.check_list(p["optimizers"], "optimizers"):
        if name not in OPTIMIZERS:
            raise validation.unknown_name_error("optimizer (in optimizers)", name, OPTIMIZERS)
        names.append(name)
    p["optimizers"] = names
    for key in ("trials", "dense_trials", "dim", "negative", "max_steps", "dense_max_steps"):
        p[key] = validation.check_positive_int(p[key], key)
    if p["negative"] > p["dim"]:
        raise ValueError(f"negative must be at most dim ({p['dim']}), got {p['negative']}")
    for key in ("gamma", "lr", "radius", "perturbation", "contour_lr"):
        p[key] = _positive(p[key], key)
    p["noise"] = validation.check_finite(p["noise"], "noise", minimum=0.0)
    p["contour_noise"] = validation.check_finite(p["contour_noise"], "contour_noise", minimum=0.0)
    p["mu"] = validation.check_unit_interval(p["mu"], "mu")
    if p["perturbation"] >= p["radius"]:
        raise ValueError(f"perturbation ({p['perturbation']}) must be smaller than radius ({p['radius']})")
    p["sweep_lr"] = common.check_list(p["sweep_lr"], "sweep_lr", lambda v: _positive(v, "sweep_lr"))
    p["sweep_noise"] = common.check_list(p["sweep_noise"], "sweep_noise", lambda v: _positive(v, "sweep_noise"))
    p["sweep_dim"] = common.check_list(
        p["sweep_dim"], "sweep_dim", lambda v: validation.check_positive_int(v, "sweep_dim")
    )
    start = np.asarray(p["contour_start"], dtype=float)
    if start.shape != (2,) or not np.all(np.isfinite(start)):
        raise ValueError(f"contour_start must be two finite numbers, got {p['contour_start']!r}")
    p["contour_start"] = [float(x) for x in start]
    p["seed"] = validation.check_seed(p["seed"])
    p["backend"] = backends.resolve(p["backend"])
    for key in ("max_steps", "dense_max_steps"):
        if p[key] >= 2**32:
            raise ValueError(f"{key} must be below 2**32 (a Philox counter word), got {p[key]}")
    # the largest run, before any landscape or array of it exists
    widest = max([p["dim"], *p["sweep_dim"]])
    montecarlo.check_memory(p["trials"], widest, backend=p["backend"])
    if any(name in DENSE for name in names):
        montecarlo.check_memory(p["dense_trials"], widest, dense=True)
    return p


def make_optimizer(name, lr, mu):
    """The :mod:`testbed.optim` optimizer behind a scenario name."""
    if name in ("gd", "gd_perturbed", "sgd"):
        return optim.SGD(lr=lr)
    if name == "momentum":
        return optim.Momentum(lr=lr, beta=mu)
    if name == "heavy_ball":
        return optim.SGD(lr=lr, momentum=mu)
    if name == "rmsprop":
        return optim.RMSProp(lr=lr)
    if name == "adam":
        return optim.Adam(lr=lr)
    if name == "newton":
        return optim.Newton(lr=lr)
    return optim.SaddleFreeNewton(lr=lr)


# ------------------------------------------------------------------------------------------------------------------
# theory


def growth_factor(name, lr, gamma, mu):
    """The growth per step of a deterministic escape along curvature -gamma (None where no linear law applies)."""
    if name in ("gd", "gd_perturbed", "sgd"):
        return theory.gd_growth(lr, gamma)
    if name == "heavy_ball":
        return theory.heavy_ball_growth(lr, gamma, mu)
    if name == "momentum":
        return theory.running_average_growth(lr, gamma, mu)
    if name == "saddle_free_newton":
        return 1.0 + lr  # |H|^-1 g = -y along the escape direction
    if name == "newton":
        return 1.0 - lr  # H^-1 g = y: every coordinate shrinks, escape included
    return None


def gd_ball_median(p, lr, dim):
    """Median escape step of GD from a uniform start in the ball of radius ``perturbation``.

    The start's escape coordinate at its median |y0| (testbed.theory.escape.ball_component_quantile), then GD's
    exact step count from there: the escape step is a decreasing function of |y0|, so medians map to medians.
    """
    y_median = float(theory.ball_component_quantile(0.5, p["perturbation"], dim))
    return float(theory.gd_escape_steps(y_median, lr, p["gamma"], p["radius"]))


def sgd_median(p, lr, sigma, dim):
    """Median escape step of SGD from exactly the saddle (exact variance; the stable directions' noise included)."""
    return float(
        theory.sgd_median_escape_steps_exact_variance(
            lr, p["gamma"], sigma, p["radius"], stable_curvatures=[1.0] * (dim - p["negative"])
        )
    )


def theory_median(name, p):
    if name in ("gd", "newton"):
        return math.inf
    if name == "gd_perturbed":
        return gd_ball_median(p, p["lr"], p["dim"])
    if name == "sgd" and p["noise"] > 0 and p["negative"] == 1:
        return sgd_median(p, p["lr"], p["noise"], p["dim"])
    return None


# ------------------------------------------------------------------------------------------------------------------
# run


def _escape(p, f, name, lr, noise, seed, *, start=None, trials=None, max_steps=None, record=0, record_every=None):
    dense = name in DENSE
    if start is None:
        start = ("ball", p["perturbation"]) if name == "gd_perturbed" else "saddle"
    return montecarlo.escape_times(
        f,
        make_optimizer(name, lr, p["mu"]),
        trials=trials or (p["dense_trials"] if dense else p["trials"]),
        noise=0.0 if name in NOISELESS else noise,
        radius=p["radius"],
        start=start,
        max_steps=max_steps or (p["dense_max_steps"] if dense else p["max_steps"]),
        seed=seed,
        backend="cpu" if dense else p["backend"],
        record=record,
        record_every=record_every,
    )


def _median_or_none(result):
    median = result.median()
    return float(median) if math.isfinite(median) else None


def _row(kind, series, x, result, predicted):
    median = _median_or_none(result)
    return dict(
        kind=kind,
        series=series,
        x=x,
        median=median,
        escaped=result.fraction_escaped,
        diverged=result.n_diverged,
        theory=None if predicted is None or not math.isfinite(predicted) else float(predicted),
    )


def run(*, quick=False, progress=True, **params):
    p = validate(common.merge_params(DEFAULTS, QUICK, quick, params))
    f = landscapes.saddle(dim=p["dim"], negative=p["negative"], gamma=p["gamma"])
    y_fixed = p["perturbation"]  # the fixed start of the lr sweep: (y_fixed, 0, ..., 0)
    jobs = [("ecdf", name, None) for name in p["optimizers"]]
    jobs += [("lr", series, lr) for lr in p["sweep_lr"] for series in ("gd_fixed", "heavy_ball_fixed", "sgd")]
    jobs += [("noise", series, sigma) for sigma in p["sweep_noise"] for series in ("sgd", "adam")]
    jobs += [("dim", series, d) for d in p["sweep_dim"] for series in ("gd_perturbed", "sgd")]
    jobs += [("contour", name, None) for name in p["optimizers"]]

    # a first run compiles the trial kernel (its first job) here, the fill kernel of the ball starts and the
    # dense Newton kernel in a helper process meanwhile (testbed.warmup; nothing starts when they are cached)
    warmup.compile_ahead(["fill"] + (["dense"] if any(name in DENSE for name in p["optimizers"]) else []))
    arrays, ecdf_rows, sweep_rows = {}, [], []
    contour = landscapes.saddle(dim=2, negative=1, gamma=p["gamma"])
    # The comparison's lr, noise and dim are points of the sweeps too: a configuration two parts of the run share is
    # simulated once (with the seed of its first job), not again with another seed (6 % of the default run).
    runs = {}

    def escape(name, landscape, negative, lr, noise, seed):
        key = (name, float(lr), 0.0 if name in NOISELESS else float(noise), landscape.dim, negative)
        if key not in runs:
            runs[key] = _escape(p, landscape, name, lr, noise, seed)
        return runs[key]

    with Timer() as timer:
        for index, (kind, series, x) in enumerate(common.progress(jobs, desc="saddle", enabled=progress, unit="run")):
            seed = p["seed"] + index
            if kind == "ecdf":
                r = escape(series, f, p["negative"], p["lr"], p["noise"], seed)
                arrays[f"ecdf_{series}_steps"] = r.steps
                arrays[f"ecdf_{series}_escaped"] = r.escaped
                growth = growth_factor(series, p["lr"], p["gamma"], p["mu"])
                predicted = theory_median(series, p)
                ecdf_rows.append(
                    dict(
                        optimizer=series,
                        trials=r.trials,
                        start="ball" if series == "gd_perturbed" else "saddle",
                        noise=0.0 if series in NOISELESS else p["noise"],
                        median=_median_or_none(r),
                        q10=_finite(r.quantile(0.1)),
                        q90=_finite(r.quantile(0.9)),
                        escaped=r.fraction_escaped,
                        diverged=r.n_diverged,
                        theory=None
                        if predicted is None
                        else (None if not math.isfinite(predicted) else float(predicted)),
                        never=predicted is not None and not math.isfinite(predicted),
                        growth=growth,
                    )
                )
            elif kind == "lr":
                if series == "sgd":
                    r = escape("sgd", f, p["negative"], x, p["noise"], seed)
                    predicted = sgd_median(p, x, p["noise"], p["dim"]) if p["negative"] == 1 else None
                else:
                    name = "gd" if series == "gd_fixed" else "heavy_ball"
                    start = np.zeros(p["dim"])
                    start[0] = y_fixed
                    r = _escape(p, f, name, x, 0.0, seed, start=start, trials=1)
                    predicted = (
                        theory.gd_escape_steps(y_fixed, x, p["gamma"], p["radius"])
                        if name == "gd"
                        else theory.heavy_ball_escape_steps(y_fixed, x, p["gamma"], p["mu"], p["radius"])
                    )
                sweep_rows.append(_row("lr", series, x, r, predicted))
            elif kind == "noise":
                r = escape(series, f, p["negative"], p["lr"], x, seed)
                predicted = sgd_median(p, p["lr"], x, p["dim"]) if series == "sgd" and p["negative"] == 1 else None
                sweep_rows.append(_row("noise", series, x, r, predicted))
            elif kind == "dim":
                fd = landscapes.saddle(dim=x, negative=1, gamma=p["gamma"])
                r = escape(series, fd, 1, p["lr"], p["noise"], seed)
                predicted = (
                    gd_ball_median(p, p["lr"], x)
                    if series == "gd_perturbed"
                    else sgd_median(dict(p, negative=1), p["lr"], p["noise"], x)
                )
                sweep_rows.append(_row("dim", series, x, r, predicted))
            else:
                start = np.array(p["contour_start"]) if series != "gd" else np.zeros(2)
                steps = 400
                r = _escape(
                    p,
                    contour,
                    series,
                    p["contour_lr"],
                    p["contour_noise"],
                    seed,
                    start=start,
                    trials=1,
                    max_steps=steps,
                    record=1,
                    record_every=1,
                )
                path = r.trajectories[0]
                arrays[f"path_{series}"] = path[np.all(np.isfinite(path), axis=1)]
    summary = dict(
        median_escape={row["optimizer"]: row["median"] for row in ecdf_rows},
        fraction_escaped={row["optimizer"]: row["escaped"] for row in ecdf_rows},
        diverged_trials=int(sum(row["diverged"] for row in ecdf_rows + sweep_rows)),
        max_relative_deviation_from_theory=_max_deviation(ecdf_rows, sweep_rows),
    )
    result = Result(
        scenario="saddle", params=p, summary=summary, arrays=arrays, tables=dict(ecdf=ecdf_rows, sweeps=sweep_rows)
    )
    result.wall_time = timer.seconds
    return result


def _finite(value):
    return float(value) if math.isfinite(value) else None


def _max_deviation(ecdf_rows, sweep_rows):
    ratios = [
        r["median"] / r["theory"] for r in ecdf_rows + sweep_rows if r.get("median") is not None and r.get("theory")
    ]
    return float(max(abs(x - 1.0) for x in ratios)) if ratios else None


# ------------------------------------------------------------------------------------------------------------------
# output


def table(result):
    p = result.params
    rows = []
    for r in result.tables["ecdf"]:
        theory_text = "never" if r["never"] else (r["theory"] if r["theory"] is not None else "-")
        rows.append(
            dict(
                optimizer=r["optimizer"],
                start=r["start"],
                noise=r["noise"],
                trials=r["trials"],
                median=r["median"] if r["median"] is not None else "censored",
                theory=theory_text,
                escaped=r["escaped"],
                diverged=r["diverged"],
                growth=r["growth"],
            )
        )
    head = (
        f"strict saddle: d={p['dim']}, {p['negative']} x (-{p['gamma']:g}) and +1, lr={p['lr']:g}, "
        f"noise std={p['noise']:g}, R={p['radius']:g}, budget {p['max_steps']} steps "
        f"(Newton-type: {p['dense_max_steps']})"
    )
    text = common.format_table(
        rows,
        headers=dict(
            median="median escape step (KM)",
            theory="theory median",
            escaped="fraction escaped",
            growth="growth/step (theory)",
        ),
    )
    sweeps = []
    for r in result.tables["sweeps"]:
        sweeps.append(
            dict(
                sweep=r["kind"],
                series=r["series"],
                value=r["x"],
                median=r["median"] if r["median"] is not None else "censored",
                theory=r["theory"],
                ratio=None if r["median"] is None or not r["theory"] else r["median"] / r["theory"],
                escaped=r["escaped"],
            )
        )
    sweep_text = common.format_table(
        sweeps, headers=dict(median="median escape step", ratio="measured/theory", escaped="fraction escaped")
    )
    deviation = result.summary.get("max_relative_deviation_from_theory")
    tail = "" if deviation is None else f"\nlargest |measured/theory - 1|: {deviation:.3f}"
    return f"{head}\n\n{text}\n\nsweeps (medians over {p['trials']} trials)\n{sweep_text}{tail}"


def _ecdf_theory(p, name, t):
    if name == "gd_perturbed":
        return theory.gd_escape_steps_cdf_from_ball(t, p["lr"], p["gamma"], p["radius"], p["perturbation"], p["dim"])
    if name == "sgd" and p["noise"] > 0 and p["negative"] == 1:
        return theory.sgd_escape_time_cdf(
            t, p["lr"], p["gamma"], p["noise"], p["radius"], stable_curvatures=[1.0] * (p["dim"] - 1)
        )
    return None


def _select(rows, **match):
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def _values(rows, key):
    return np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=float)


def _style(name):
    from .. import plotting

    colour, line = LINE_STYLES[name]
    return (plotting.color(colour) if isinstance(colour, int) else colour), line


def _plain_log_ticks(axis, values):
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    axis.set_major_locator(FixedLocator(sorted(set(values))))
    axis.set_major_formatter(lambda value, _: f"{value:g}")
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


#: The panels of the escape-time figure: (title, optimizers); SGD is repeated in grey as the reference.
ECDF_PANELS = (
    ("GD and SGD", ("gd", "gd_perturbed", "sgd")),
    ("momentum ($\\mu = b$ = {mu:g})", ("momentum", "heavy_ball")),
    ("normalised steps", ("rmsprop", "adam")),
    ("second order", ("newton", "saddle_free_newton")),
)


def _ecdf_label(name, row, p):
    """The legend entry of one optimizer in the escape-time figure (paper names; what sets it apart)."""
    from .. import plotting

    lead = plotting.paper_name(name)
    if name == "gd":
        return "GD from the saddle: never moves"
    if name == "gd_perturbed":
        return f"GD from a ball of radius {p['perturbation']:g}"
    if name == "sgd":
        return f"SGD from the saddle, $\\sigma$ = {p['noise']:g}"
    if name == "momentum":
        return (
            f"{lead}, growth {row['growth']:.4f}/step:\nlater than SGD "
            f"({theory.gd_growth(p['lr'], p['gamma']):.4g}/step)"
        )
    if name == "heavy_ball":
        return f"{lead}, growth {row['growth']:.4f}/step"
    if name == "rmsprop":
        return "RMSProp: every run at step 17 (PyTorch's\nfirst step is uncorrected, about 10 lr)"
    if name == "newton":
        return "Newton: held by the saddle"
    return lead


def draw_escape_ecdf(result):
    """Escape-time distributions (fraction escaped by step t), one panel per family of optimizers with SGD in grey as
    the reference, theory dashed for perturbed GD and SGD."""
    from matplotlib.lines import Line2D

    from .. import plotting
    from ..statistics import ecdf

    p = result.params

    # escape-time ECDFs, one panel per family (each with its legend below it), SGD repeated in grey as the reference
    fig, _ = plotting.figure(1, 1, width="page", height=5.4)
    fig.clear()
    with plotting.style():
        panels = fig.subfigures(2, 2)
        panel_axes = [sub.subplots() for sub in panels.flat]
    t_max = max(p["max_steps"], p["dense_max_steps"])
    t_grid = np.geomspace(1, t_max, CURVE_POINTS)
    rows = {row["optimizer"]: row for row in result.tables["ecdf"]}
    for sub, ax, (title, names) in zip(panels.flat, panel_axes, ECDF_PANELS):
        shown = [n for n in names if n in rows]
        if "sgd" not in names and "sgd" in rows:
            shown = ["sgd"] + shown
        for name in shown:
            row = rows[name]
            reference = name == "sgd" and "sgd" not in names
            steps = result.arrays[f"ecdf_{name}_steps"]
            escaped = result.arrays[f"ecdf_{name}_escaped"].astype(bool)
            times, fraction = ecdf(steps, escaped)
            colour, line = ("0.78", "-") if reference else _style(name)
            label = "SGD (for reference)" if reference else _ecdf_label(name, row, p)
            budget = float(steps.max())
            if times.size:
                xs = np.concatenate([[1.0], times, [budget]])
                ys = np.concatenate([[0.0], fraction, [fraction[-1]]])
                ax.step(
                    xs,
                    ys,
                    where="post",
                    color=colour,
                    label=label,
                    linewidth=1.1 if reference else 1.4,
                    linestyle=line,
                    zorder=2 if reference else 3,
                )
            else:  # nothing escaped: flat at 0 up to the budget, where the run was censored
                ax.plot([1.0, budget], [0.0, 0.0], color=colour, label=label, linewidth=1.6, linestyle=line, zorder=3)
            if not reference and row["escaped"] < 1.0:
                ax.plot([budget], [row["escaped"]], marker=">", color=colour, markersize=5, linestyle="none", zorder=4)
                ax.annotate(
                    f"censored at {budget:,.0f} steps",
                    (budget, row["escaped"]),
                    textcoords="offset points",
                    xytext=(0, 9),
                    ha="right",
                    fontsize=7,
                    color="0.25",
                )
            predicted = None if reference else _ecdf_theory(p, name, t_grid)
            if predicted is not None:
                plotting.theory(ax, t_grid, predicted, color=colour)
        handles, labels = ax.get_legend_handles_labels()
        if any(_ecdf_theory(p, n, t_grid[:2]) is not None for n in names):
            handles.append(Line2D([], [], color="0.3", linestyle="--", linewidth=1.1))
            labels.append("theory")
        plotting.finish(
            ax,
            xlabel="step $t$",
            ylabel="fraction escaped by $t$",
            title=title.format(mu=p["mu"]),
            xscale="log",
            legend=False,
        )
        ax.set_xlim(1, t_max * 1.5)
        ax.set_ylim(-0.03, 1.03)
        with plotting.style():
            sub.legend(handles, labels, loc="outside lower center", ncols=1)
    fig.suptitle(
        f"strict saddle, $d$ = {p['dim']}, lr = {p['lr']:g}, escape at $|w| > $ {p['radius']:g}: "
        f"{p['trials']} runs ({p['dense_trials']} Newton-type)"
    )
    return fig


def _draw_sweep(result, kind):
    """The median escape step against one swept quantity (``kind``: lr, noise or dim), theory dashed."""
    from .. import plotting

    p = result.params
    sweeps = result.tables["sweeps"]
    labels = dict(
        gd_fixed=f"GD from $y_0$ = {p['perturbation']:g}",
        heavy_ball_fixed=f"heavy ball from $y_0$, $\\mu$ = {p['mu']:g}",
        sgd=f"SGD from the saddle, $\\sigma$ = {p['noise']:g}",
        adam="Adam from the saddle",
        gd_perturbed=f"GD from a ball of radius {p['perturbation']:g}",
    )
    series_list, xlabel, title, overrides = {
        "lr": (
            ("gd_fixed", "heavy_ball_fixed", "sgd"),
            "learning rate",
            f"against the learning rate, $d$ = {p['dim']}",
            {},
        ),
        "noise": (
            ("sgd", "adam"),
            "gradient-noise std $\\sigma$",
            f"against the noise, lr = {p['lr']:g}",
            dict(sgd="SGD from the saddle"),
        ),
        "dim": (("gd_perturbed", "sgd"), "dimension $d$", f"against the dimension, lr = {p['lr']:g}", {}),
    }[kind]
    fig, ax = plotting.figure(height=2.7)
    for index, series in enumerate(series_list):
        chosen = _select(sweeps, kind=kind, series=series)
        xs = np.array([r["x"] for r in chosen], dtype=float)
        label = overrides.get(series, labels[series])
        plotting.measured(
            ax,
            xs,
            _values(chosen, "median"),
            label=label,
            color=plotting.color(index),
            marker=plotting.marker(index),
        )
        predicted = _values(chosen, "theory")
        if np.isfinite(predicted).any():
            plotting.theory(ax, xs, predicted, color=plotting.color(index))
    ax.plot([], [], "--", color="gray", label="theory")
    plotting.finish(
        ax,
        xlabel=xlabel,
        ylabel="median escape step",
        title=title,
        xscale="log",
        yscale=None if kind == "dim" else "log",
        legend=False,
    )
    _plain_log_ticks(ax.xaxis, [r["x"] for r in sweeps if r["kind"] == kind])
    plotting.legend_below(fig, ncols=1 if len(series_list) > 2 else 2)
    return fig


def draw_escape_vs_lr(result):
    """Median escape step against the learning rate: GD and the heavy ball from a fixed perturbation (exact
    counts), SGD from the saddle, theory dashed."""
    return _draw_sweep(result, "lr")


def draw_escape_vs_noise(result):
    """Median escape step of SGD and Adam from the saddle against the gradient-noise level sigma, theory dashed."""
    return _draw_sweep(result, "noise")


def draw_escape_vs_dim(result):
    """Median escape step against the dimension d: GD from a random start in a ball and SGD from the saddle,
    theory dashed."""
    return _draw_sweep(result, "dim")


def draw_contour(result):
    """Each optimizer's path over the contours of the 2-D saddle, from one start."""
    from matplotlib.lines import Line2D

    from .. import plotting

    p = result.params

    # 2-D contour with trajectories
    fig, ax = plotting.figure(width="page", height=3.4)
    extent = 1.2 * p["radius"]
    grid = np.linspace(-extent, extent, 161)
    values = 0.5 * (-p["gamma"] * grid[None, :] ** 2 + grid[:, None] ** 2)
    contours = ax.contour(
        grid, grid, values, levels=9, colors="0.75", linewidths=0.6, zorder=0, negative_linestyles="solid"
    )
    ax.clabel(contours, fontsize=plotting.FONT_FLOOR, fmt="%.2f")
    circle = np.linspace(0, 2 * np.pi, 200)
    ax.plot(
        p["radius"] * np.cos(circle),
        p["radius"] * np.sin(circle),
        color="0.4",
        linestyle=":",
        linewidth=1.0,
        label=f"escape radius $R$ = {p['radius']:g}",
    )
    for index, name in enumerate(p["optimizers"]):
        key = f"path_{name}"
        if key not in result.arrays:
            continue
        path = result.arrays[key]
        colour, line = _style(name)
        label = {"gd": "GD from the saddle, no noise: stays", "gd_perturbed": "GD, no noise"}.get(
            name, plotting.paper_name(name)
        )
        ax.plot(
            path[:, 0],
            path[:, 1],
            color=colour,
            linewidth=1.1,
            linestyle=line,
            label=label,
            marker=plotting.marker(index),
            markevery=[len(path) - 1],
            markersize=4,
        )
    ax.plot([0], [0], marker="+", color="black", markersize=8, linestyle="none", label="saddle")
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    gamma = "" if p["gamma"] == 1 else format(p["gamma"], "g") + " "
    plotting.finish(
        ax,
        xlabel="$w_0$ (curvature $-\\gamma$)",
        ylabel="$w_1$ (curvature $+1$)",
        title=f"$f = (w_1^2 - {gamma}w_0^2)/2$, lr = {p['contour_lr']:g}, {400} steps",
        legend=False,
    )
    handles, labels_ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], linestyle="none"))
    labels_.append(
        f"all from ({p['contour_start'][0]:g}, {p['contour_start'][1]:g}) with noise $\\sigma$ = "
        f"{p['contour_noise']:g},\nexcept GD (no noise); markers: the last step"
    )
    with plotting.style():
        fig.legend(handles, labels_, loc="outside right center")
    return fig


def add_arguments(parser):
    parser.add_argument("--trials", type=int, default=None, help="independent trials per setting (default 2000)")
    parser.add_argument(
        "--optimizers",
        type=common.comma_list(str),
        default=None,
        help="comma-separated subset of: " + ", ".join(OPTIMIZERS),
    )
    parser.add_argument("--lr", type=float, default=None, help="learning rate of the escape-time comparison")
    parser.add_argument("--noise", type=float, default=None, help="gradient-noise standard deviation sigma")
    parser.add_argument("--dim", type=int, default=None, help="dimension of the saddle (default 10)")
    parser.add_argument("--gamma", type=float, default=None, help="curvature -gamma of the escape direction")
    parser.add_argument("--radius", type=float, default=None, help="escape radius R")
    parser.add_argument("--max-steps", dest="max_steps", type=int, default=None, help="step budget per trial")
    parser.add_argument(
        "--sweep-lr",
        dest="sweep_lr",
        type=common.comma_list(float),
        default=None,
        help="learning rates of the escape_vs_lr figure",
    )
    parser.add_argument(
        "--sweep-noise",
        dest="sweep_noise",
        type=common.comma_list(float),
        default=None,
        help="noise levels of the escape_vs_noise figure",
    )
    parser.add_argument(
        "--sweep-dim",
        dest="sweep_dim",
        type=common.comma_list(int),
        default=None,
        help="dimensions of the escape_vs_dim figure",
    )


#: The figures, by name (the file stem, and what a preset's ``figure`` names): each draws one from a result.
FIGURES = {
    "escape_ecdf": draw_escape_ecdf,
    "escape_vs_lr": draw_escape_vs_lr,
    "escape_vs_noise": draw_escape_vs_noise,
    "escape_vs_dim": draw_escape_vs_dim,
    "saddle_contour": draw_contour,
}


if __name__ == "__main__":
    raise SystemExit(common.main(__name__))
