"""Local minima: "not as bad as imagined"? Where each optimizer ends on a double well and on Rastrigin, and how often.

Many independent trials (:func:`testbed.montecarlo.escape_times`, criterion ``"none"``: the whole budget) from
random starts, for every optimizer, without and with gradient noise:

- the tilted double well ``h (w^2 - 1)^2 + c w`` (one coordinate): with ``c > 0`` the left well (near -1) is the
  global minimum and the right one a local minimum. Gradient descent with a small lr ends in the well on the
  start's side of the barrier (the local maximum between them), so from a start uniform in ``[-a, a]`` it finds
  the global minimum with probability ``(w_barrier + a) / (2 a)``
  (:func:`testbed.theory.escape.double_well_left_fraction_uniform_start`). Momentum can carry a run over the
  barrier; gradient noise lets runs hop over it, more often out of the shallower (local) well.
- Rastrigin ``A d + sum_i (w_i^2 - A cos 2 pi w_i)`` (Rastrigin 1974) in d = 2 with a local minimum near every
  integer point: gradient flow ends in the minimum whose basin holds the start. The function is separable, so
  the global basin is ``((m+ - m-) / (2 a))^d`` of the starts, ``m-, m+`` the local maxima around 0
  (:func:`testbed.theory.escape.rastrigin_global_basin_fraction`).

With noise a run never settles: its final position is a sample of a stationary law. For SGD and the heavy ball
that law is, for a small lr, the Gibbs law ``exp(-f/T)`` at the effective temperature ``T = lr sigma^2 / 2`` and
``lr sigma^2 / (2 (1 - mu))`` (:func:`effective_temperature`); the figures report the occupancy of the global
basin beside the Gibbs prediction (:func:`gibbs_global_fraction`), which a run reaches only once it has crossed
the barrier often (Kramers): the heavy ball at noise 6 has (T = 1.8 is above the barrier), SGD (T = 0.18) not yet.

Figures: ``minima_double_well`` (histograms of the final positions per optimizer, without and with noise, every
run in a bin, the Gibbs law dashed),
``minima_rastrigin`` (final positions over the contours) and ``minima_fractions`` (the fraction of runs at the
global minimum per optimizer, GD's prediction dashed). The table gives, per landscape, optimizer and noise,
the fractions ending at the global and at a local minimum, the diverged runs and the mean final loss.
"""

from __future__ import annotations

import numpy as np

from .. import landscapes, montecarlo, rng, validation
from ..results import Result, Timer
from ..theory import escape as theory
from . import _escape, common

DEFAULTS = dict(
    optimizers=["sgd", "heavy_ball", "adam"],
    lr=[0.01],
    noise=6.0,
    trials=2000,
    height=1.0,
    tilt=0.3,
    start_width=1.5,
    rastrigin_amplitude=10.0,
    rastrigin_lr=0.001,
    rastrigin_noise=100.0,
    rastrigin_width=4.5,
    max_steps=5000,
    seed=0,
    backend="cpu",
)
QUICK = dict(trials=300, max_steps=2000)

#: Philox stream of the random starts (the trials' own streams are 0 .. trials-1).
START_STREAM = 2**32 - 2
#: The heavy ball's momentum (the default of testbed.scenarios._escape.make_optimizer).
MOMENTUM = 0.9
#: Width of the histogram bins of the final positions on the double well.
WELL_BIN = 0.05
#: Adam's step is about lr per coordinate whatever the gradient: on Rastrigin it runs at this multiple of
#: rastrigin_lr so that it moves as far per step as GD does on a coordinate of curvature ~ 1/ADAM_LR_FACTOR.
ADAM_LR_FACTOR = 10.0


def validate(p):
    p = _escape.common_checks(dict(p))
    p["optimizers"] = _escape.check_list(p["optimizers"], "optimizers", _escape.optimizer_name)
    p["lr"] = _escape.positive_list(p["lr"], "lr")
    for key in ("height", "start_width", "rastrigin_amplitude", "rastrigin_lr", "rastrigin_width"):
        p[key] = validation.check_finite(p[key], key, minimum=0.0, strict=True)
    p["tilt"] = validation.check_finite(p["tilt"], "tilt")
    p["rastrigin_noise"] = validation.check_finite(p["rastrigin_noise"], "rastrigin_noise", minimum=0.0)
    if abs(p["tilt"]) >= 8.0 * p["height"] / (3.0 * np.sqrt(3.0)):
        raise ValueError("tilt is too large for two wells: |tilt| must be below 8 height / (3 sqrt 3)")
    return p


def _starts(seed, trials, dim, width, step):
    u = rng.uniform((trials, dim), seed=seed, stream=START_STREAM, step=step)
    return (2.0 * u - 1.0) * width


def classify_double_well(final, barrier):
    """-1 (left well), +1 (right well) per trial; NaN rows (diverged) give 0."""
    x = final[:, 0]
    return np.where(np.isfinite(x), np.where(x < barrier, -1, 1), 0)


def classify_rastrigin(final, minima):
    """Index of the local minimum (nearest of the 1-D minima per coordinate) per trial and coordinate."""
    finite = np.all(np.isfinite(final), axis=1)
    nearest = np.argmin(np.abs(final[..., None] - minima[None, None, :]), axis=-1)
    return np.where(finite[:, None], np.rint(minima[nearest]).astype(int), 10**6)


def run(*, quick=False, progress=True, **params):
    p = validate(common.merge_params(DEFAULTS, QUICK, quick, params))
    well = landscapes.double_well(dim=1, height=p["height"], tilt=p["tilt"])
    rastrigin = landscapes.rastrigin(dim=2, amplitude=p["rastrigin_amplitude"])
    barrier = theory.double_well_barrier(p["height"], p["tilt"])
    global_side = -1 if p["tilt"] > 0 else 1
    minima_1d = theory.rastrigin_local_minima(p["rastrigin_amplitude"], p["rastrigin_width"] + 1.0)
    well_starts = _starts(p["seed"], p["trials"], 1, p["start_width"], 0)
    rastrigin_starts = _starts(p["seed"], p["trials"], 2, p["rastrigin_width"], 1)
    noises = {"double_well": sorted({0.0, p["noise"]}), "rastrigin": sorted({0.0, p["rastrigin_noise"]})}
    jobs = [
        ("double_well", name, lr, noise)
        for lr in p["lr"]
        for name in p["optimizers"]
        for noise in noises["double_well"]
    ]
    jobs += [("rastrigin", name, p["rastrigin_lr"], noise) for name in p["optimizers"] for noise in noises["rastrigin"]]
    rows, arrays = [], {"double_well_starts": well_starts[:, 0], "rastrigin_starts": rastrigin_starts}
    with Timer() as timer:
        for index, (name, optimizer, lr, noise) in enumerate(
            common.progress(jobs, desc="minima", enabled=progress, unit="run")
        ):
            f, starts = (well, well_starts) if name == "double_well" else (rastrigin, rastrigin_starts)
            run_lr = lr * ADAM_LR_FACTOR if (name == "rastrigin" and optimizer in ("adam", "amsgrad")) else lr
            result = montecarlo.escape_times(
                f,
                _escape.make_optimizer(optimizer, run_lr, mu=MOMENTUM),
                trials=p["trials"],
                noise=noise,
                start=starts,
                criterion="none",
                max_steps=p["max_steps"],
                seed=p["seed"] + index,
                backend=p["backend"],
            )
            final = result.final
            finite = np.all(np.isfinite(final), axis=1)
            losses = np.array([f.value(w) for w in final[finite]])
            if name == "double_well":
                side = classify_double_well(final, barrier)
                at_global = float(np.mean(side == global_side))
                at_local = float(np.mean(side == -global_side))
                predicted = (
                    theory.double_well_left_fraction_uniform_start(p["start_width"], p["height"], p["tilt"])
                    if optimizer == "sgd" and noise == 0.0
                    else None
                )
                if predicted is not None and global_side > 0:
                    predicted = 1.0 - predicted
            else:
                cell = classify_rastrigin(final, minima_1d)
                at_global = float(np.mean(np.all(cell == 0, axis=1)))
                at_local = float(np.mean(finite & ~np.all(cell == 0, axis=1)))
                predicted = (
                    theory.rastrigin_global_basin_fraction(p["rastrigin_width"], 2, p["rastrigin_amplitude"])
                    if optimizer == "sgd" and noise == 0.0
                    else None
                )
            key = f"{name}_{optimizer}_noise{index}"
            arrays[key] = final
            rows.append(
                dict(
                    landscape=name,
                    optimizer=optimizer,
                    lr=run_lr,
                    noise=noise,
                    global_fraction=at_global,
                    local_fraction=at_local,
                    diverged=result.n_diverged,
                    mean_final_loss=float(losses.mean()) if losses.size else None,
                    theory_global=predicted,
                    standard_error=float(np.sqrt(at_global * (1 - at_global) / p["trials"])),
                    key=key,
                )
            )
    summary = {f"global_{r['landscape']}_{r['optimizer']}_noise{r['noise']:g}": r["global_fraction"] for r in rows}
    result = Result(scenario="minima", params=p, summary=summary, arrays=arrays, tables=dict(runs=rows))
    result.wall_time = timer.seconds
    return result


def table(result):
    shown = [
        dict(
            landscape=r["landscape"],
            optimizer=r["optimizer"],
            lr=r["lr"],
            noise=r["noise"],
            at_global=r["global_fraction"],
            stderr=r["standard_error"],
            at_local=r["local_fraction"],
            theory=r["theory_global"],
            diverged=r["diverged"],
            loss=r["mean_final_loss"],
        )
        for r in result.tables["runs"]
    ]
    return common.format_table(
        shown,
        headers=dict(
            at_global="at global min",
            stderr="+-",
            at_local="at a local min",
            theory="theory (GD, no noise)",
            loss="mean final loss",
        ),
    )


def effective_temperature(optimizer, lr, noise, mu=MOMENTUM):
    """Temperature of the Gibbs law ``exp(-f/T)`` a noisy run samples in the small-lr limit (None: no such law).

    SGD ``w <- w - lr (grad f + noise xi)`` is the Euler step of Langevin dynamics with ``T = lr noise^2 / 2``;
    the heavy ball ``v <- mu v + g, w <- w - lr v`` is underdamped Langevin with ``T = lr noise^2 / (2 (1 - mu))``
    (on a quadratic of curvature k its stationary variance is T/k up to a factor 1 + O(lr k / (1 + mu)); Mandt,
    Hoffman & Blei 2017). Adam's normalised steps follow no Gibbs law; without noise there is none either.
    """
    if noise <= 0:
        return None
    if optimizer == "sgd":
        return lr * noise**2 / 2.0
    if optimizer == "heavy_ball":
        return lr * noise**2 / (2.0 * (1.0 - mu))
    return None


def gibbs_fraction(potential, temperature, low, high, span, points=200_001):
    """The Gibbs probability of ``[low, high]`` under ``exp(-potential(w)/T)`` on ``[-span, span]`` (a 1-D grid).

    ``span`` must hold all but a negligible part of the mass (the potentials here grow at least like w^2).
    """
    w = np.linspace(-span, span, points)
    energy = potential(w)
    weight = np.exp(-(energy - energy.min()) / temperature)
    inside = (w >= low) & (w <= high)
    return float(weight[inside].sum() / weight.sum())


def gibbs_density(potential, temperature, w, span):
    """The Gibbs density ``exp(-potential(w)/T) / Z`` at ``w`` (Z on a grid over ``[-span, span]``)."""
    grid = np.linspace(-span, span, 200_001)
    energy = potential(grid)
    shift = energy.min()
    z = np.exp(-(energy - shift) / temperature).sum() * (grid[1] - grid[0])
    return np.exp(-(potential(np.asarray(w, float)) - shift) / temperature) / z


def _rastrigin_barriers(amplitude):
    """The local maxima of ``w^2 - A cos 2 pi w`` on either side of 0 (the edges of the global basin)."""
    from scipy.optimize import brentq

    def slope(w):
        return 2.0 * w + 2.0 * np.pi * amplitude * np.sin(2.0 * np.pi * w)

    high = brentq(slope, 0.3, 0.7)
    return -high, high


def gibbs_global_fraction(p, landscape, temperature):
    """The Gibbs law's probability of the global minimum's basin on ``landscape`` at ``temperature``."""
    if landscape == "double_well":

        def well(w):
            return p["height"] * (w**2 - 1.0) ** 2 + p["tilt"] * w

        barrier = theory.double_well_barrier(p["height"], p["tilt"])
        low, high = (-np.inf, barrier) if p["tilt"] > 0 else (barrier, np.inf)
        return gibbs_fraction(well, temperature, low, high, span=6.0)
    amplitude = p["rastrigin_amplitude"]
    low, high = _rastrigin_barriers(amplitude)
    one_d = gibbs_fraction(
        lambda w: w**2 - amplitude * np.cos(2.0 * np.pi * w),
        temperature,
        low,
        high,
        span=max(20.0, 8.0 * np.sqrt(temperature)),
    )
    return one_d**2  # separable: the 2-D basin is a square


def _label(r, mu=MOMENTUM):
    from .. import plotting

    name = "GD" if r["optimizer"] == "sgd" and r["noise"] == 0 else plotting.paper_name(r["optimizer"])
    return name + (f", $\\mu$ = {mu:g}" if r["optimizer"] == "heavy_ball" and mu is not None else "")


def draw_double_well(result):
    """Final positions on the tilted double well, one row per optimizer, without (left) and with (right) noise,
    beside the Gibbs law."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from .. import plotting

    p = result.params
    rows = result.tables["runs"]
    lr = p["lr"][0]

    # final positions on the double well: one row per optimizer, without (left) and with (right) noise
    well_rows = [r for r in rows if r["landscape"] == "double_well" and r["lr"] == lr]
    optimizers = list(dict.fromkeys(r["optimizer"] for r in well_rows))
    noises = sorted({r["noise"] for r in well_rows})
    fig, axes = plotting.figure(
        len(optimizers), len(noises), width="page", height=1.25 * len(optimizers) + 0.9, sharex=True, squeeze=False
    )
    finals = np.concatenate([result.arrays[r["key"]][:, 0] for r in well_rows])
    finals = finals[np.isfinite(finals)]
    edge = max(1.8, np.ceil(np.max(np.abs(finals)) / WELL_BIN) * WELL_BIN)  # every finite run falls in a bin
    bins = np.arange(-edge, edge + WELL_BIN / 2, WELL_BIN)
    grid = np.linspace(-edge, edge, 400)

    def well(w):
        return p["height"] * (w**2 - 1.0) ** 2 + p["tilt"] * w

    barrier = theory.double_well_barrier(p["height"], p["tilt"])
    for r in well_rows:
        row, col = optimizers.index(r["optimizer"]), noises.index(r["noise"])
        ax = axes[row, col]
        final = result.arrays[r["key"]][:, 0]
        final = final[np.isfinite(final)]
        weights = np.full(final.size, 1.0 / p["trials"])
        ax.hist(final, bins=bins, weights=weights, color=plotting.color(row), alpha=0.8)
        temperature = effective_temperature(r["optimizer"], r["lr"], r["noise"])
        text = "in the global (left) well"
        if temperature is not None:
            plotting.theory(
                ax, grid, gibbs_density(well, temperature, grid, 6.0) * WELL_BIN, color="black", linewidth=1.0
            )
            gibbs = gibbs_global_fraction(p, "double_well", temperature)
            text = f"Gibbs law ($T$ = {temperature:.2g}): {100 * gibbs:.1f}%"
        twin = ax.twinx()
        twin.plot(grid, well(grid), color="0.6", linewidth=0.8, zorder=0)
        twin.set_yticks([])
        twin.grid(False)
        ax.axvline(barrier, color="0.4", linestyle=":", linewidth=0.8)
        ax.set_title(f"{_label(r)}, $\\sigma$ = {r['noise']:g}: {100 * r['global_fraction']:.1f}%\n{text}")
        ax.set_xlim(-edge, edge)
        plotting.finish(
            ax,
            xlabel="final $w$" if row == len(optimizers) - 1 else "",
            ylabel="fraction of runs" if col == 0 else "fraction",
            legend=False,
        )
    handles = [
        Patch(color="0.5", alpha=0.8),
        Line2D([], [], color="black", linestyle="--", linewidth=1.0),
        Line2D([], [], color="0.6", linewidth=0.8),
        Line2D([], [], color="0.4", linestyle=":", linewidth=0.8),
    ]
    labels = [
        f"final positions ({p['trials']} runs, bins {WELL_BIN:g} wide)",
        "Gibbs law $e^{-f/T}$ per bin, $T$ = lr $\\sigma^2/(2(1-\\mu))$",
        "landscape $f$ (right scale, arbitrary)",
        "barrier",
    ]
    plotting.legend_below(fig, handles, labels, ncols=2)
    fig.suptitle(
        f"$f(w) = {'' if p['height'] == 1 else format(p['height'], 'g') + ' '}(w^2-1)^2 + "
        f"{p['tilt']:g}\\,w$, lr = {lr:g}, {p['max_steps']} steps from uniform starts in "
        f"$[-{p['start_width']:g}, {p['start_width']:g}]$"
    )
    return fig


def draw_rastrigin(result):
    """Final positions of the runs on Rastrigin's function over its contours, one panel per setting."""
    from .. import plotting

    p = result.params
    rows = result.tables["runs"]

    ras_rows = [r for r in rows if r["landscape"] == "rastrigin"]
    ncols = min(3, len(ras_rows))
    nrows = -(-len(ras_rows) // ncols)
    fig, axes = plotting.figure(nrows, ncols, width="page", height=2.35 * nrows, squeeze=False)
    width = p["rastrigin_width"]
    xs = np.linspace(-width, width, 240)
    xx, yy = np.meshgrid(xs, xs)
    amplitude = p["rastrigin_amplitude"]
    values = 2 * amplitude + xx**2 + yy**2 - amplitude * (np.cos(2 * np.pi * xx) + np.cos(2 * np.pi * yy))
    for index, r in enumerate(ras_rows):
        ax = axes.flat[index]
        ax.contour(xx, yy, values, levels=12, colors="0.82", linewidths=0.4)
        final = result.arrays[r["key"]]
        ax.plot(
            final[:, 0], final[:, 1], "o", markersize=1.5, alpha=0.35, color=plotting.color(index), rasterized=True
        )  # thousands of points: a bitmap layer keeps the PDF small
        ax.plot([0], [0], "*", color="black", markersize=6)
        ax.set_xlim(-width, width)
        ax.set_ylim(-width, width)
        ax.set_aspect("equal")
        plotting.finish(
            ax,
            xlabel="$w_1$",
            ylabel="$w_2$",
            legend=False,
            title=f"{_label(r, mu=None)}, $\\sigma$ = {r['noise']:g}\n"
            f"lr {r['lr']:g}: {100 * r['global_fraction']:.1f}% at 0",
        )
    for ax in list(axes.flat)[len(ras_rows) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"Rastrigin, $A$ = {amplitude:g}: {p['trials']} runs of {p['max_steps']} steps; $\\star$ global minimum"
    )
    return fig


def draw_fractions(result):
    """Fraction of runs at the global minimum per optimizer, learning rate and noise level (+- 2 standard errors),
    beside GD's basin prediction and the Gibbs law."""
    from .. import plotting

    p = result.params
    rows = result.tables["runs"]
    lr = p["lr"][0]

    fig, axes = plotting.figure(1, 2, width="page", height=2.9)
    for ax, name in zip(axes, ("double_well", "rastrigin")):
        chosen = [r for r in rows if r["landscape"] == name and (name == "rastrigin" or r["lr"] == lr)]
        labels = [
            f"{_label(r, mu=None).replace(' ', chr(10))}\nlr {r['lr']:g}\n$\\sigma$ = {r['noise']:g}" for r in chosen
        ]
        positions = np.arange(len(chosen))
        ax.bar(
            positions,
            [r["global_fraction"] for r in chosen],
            width=0.7,
            yerr=[2 * r["standard_error"] for r in chosen],
            color=[plotting.color(i // 2) for i in range(len(chosen))],
            alpha=0.85,
            capsize=2,
            label="measured ($\\pm$ 2 s.e.)",
        )
        top = 0.0
        for position, r in zip(positions, chosen):
            if r["theory_global"] is not None:
                plotting.theory(
                    ax,
                    [position - 0.42, position + 0.42],
                    [r["theory_global"]] * 2,
                    color="black",
                    label="GD: starts in the global basin",
                )
            temperature = effective_temperature(r["optimizer"], r["lr"], r["noise"])
            if temperature is not None:
                gibbs = gibbs_global_fraction(p, name, temperature)
                top = max(top, gibbs)
                ax.plot(
                    [position - 0.42, position + 0.42],
                    [gibbs] * 2,
                    color="black",
                    linestyle=":",
                    linewidth=1.4,
                    label="Gibbs law at the noise's temperature",
                )
        ax.set_xticks(positions)
        ax.set_xticklabels(labels)
        top = max(
            [top]
            + [r["global_fraction"] + 2 * r["standard_error"] for r in chosen]
            + [r["theory_global"] or 0.0 for r in chosen]
        )
        ax.set_ylim(0, min(1.05, max(1.15 * top, 0.05)))
        plotting.finish(
            ax,
            xlabel="optimizer, learning rate, gradient-noise std $\\sigma$",
            ylabel="fraction at the global minimum",
            title=("double well" if name == "double_well" else "Rastrigin (Adam at 10 x lr)"),
            legend=False,
        )
    handles, labels_ = [], []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels_:
                handles.append(handle)
                labels_.append(label)
    plotting.legend_below(fig, handles, labels_, ncols=3)
    return fig


def add_arguments(parser):
    _escape.add_common_arguments(parser, lr_help="comma-separated learning rates on the double well")
    parser.add_argument("--tilt", type=float, default=None, help="double-well tilt c (> 0: the left well is global)")
    parser.add_argument(
        "--rastrigin-lr",
        dest="rastrigin_lr",
        type=float,
        default=None,
        help="learning rate on Rastrigin (curvature up to 2 + 4 pi^2 A)",
    )
    parser.add_argument(
        "--rastrigin-noise", dest="rastrigin_noise", type=float, default=None, help="gradient-noise std on Rastrigin"
    )


#: The figures, by name (the file stem, and what a preset's ``figure`` names): each draws one from a result.
FIGURES = {
    "minima_double_well": draw_double_well,
    "minima_rastrigin": draw_rastrigin,
    "minima_fractions": draw_fractions,
}


if __name__ == "__main__":
    raise SystemExit(common.main(__name__))
