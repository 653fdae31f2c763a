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

Figures: ``minima_double_well`` (histograms of the final positions per optimizer over the landscape),
``minima_rastrigin`` (final positions over the contours) and ``minima_fractions`` (the fraction of runs at the
global minimum per optimizer, GD's prediction dashed). The table gives, per landscape, optimizer and noise,
the fractions ending at the global and at a local minimum, the diverged runs and the mean final loss.
"""
from __future__ import annotations

import numpy as np

from .. import backend as backends
from .. import landscapes
from .. import montecarlo
from .. import rng
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
FIGURES = ("minima_double_well", "minima_rastrigin", "minima_fractions")

#: Philox stream of the random starts (the trials' own streams are 0 .. trials-1).
START_STREAM = 2**32 - 2
#: Adam's step is about lr per coordinate whatever the gradient: on Rastrigin it runs at this multiple of
#: rastrigin_lr so that it moves as far per step as GD does on a coordinate of curvature ~ 1/ADAM_LR_FACTOR.
ADAM_LR_FACTOR = 10.0


def validate(p):
    p = _escape.common_checks(dict(p))
    p["optimizers"] = _escape.check_list(p["optimizers"], "optimizers", _escape.optimizer_name)
    p["lr"] = _escape.positive_list(p["lr"], "lr")
    for key in ("height", "start_width", "rastrigin_amplitude", "rastrigin_lr", "rastrigin_width"):
        p[key] = backends.check_finite(p[key], key, minimum=0.0, strict=True)
    p["tilt"] = backends.check_finite(p["tilt"], "tilt")
    p["rastrigin_noise"] = backends.check_finite(p["rastrigin_noise"], "rastrigin_noise", minimum=0.0)
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
    jobs = [("double_well", name, lr, noise) for lr in p["lr"] for name in p["optimizers"]
            for noise in noises["double_well"]]
    jobs += [("rastrigin", name, p["rastrigin_lr"], noise) for name in p["optimizers"]
             for noise in noises["rastrigin"]]
    rows, arrays = [], {"double_well_starts": well_starts[:, 0], "rastrigin_starts": rastrigin_starts}
    with Timer() as timer:
        for index, (name, optimizer, lr, noise) in enumerate(common.progress(jobs, desc="minima", enabled=progress,
                                                                             unit="run")):
            f, starts = (well, well_starts) if name == "double_well" else (rastrigin, rastrigin_starts)
            run_lr = lr * ADAM_LR_FACTOR if (name == "rastrigin" and optimizer in ("adam", "amsgrad")) else lr
            result = montecarlo.escape_times(f, _escape.make_optimizer(optimizer, run_lr), trials=p["trials"],
                                             noise=noise, start=starts, criterion="none", max_steps=p["max_steps"],
                                             seed=p["seed"] + index, backend=p["backend"])
            final = result.final
            finite = np.all(np.isfinite(final), axis=1)
            losses = np.array([f.value(w) for w in final[finite]])
            if name == "double_well":
                side = classify_double_well(final, barrier)
                at_global = float(np.mean(side == global_side))
                at_local = float(np.mean(side == -global_side))
                predicted = (theory.double_well_left_fraction_uniform_start(p["start_width"], p["height"], p["tilt"])
                             if optimizer == "sgd" and noise == 0.0 else None)
                if predicted is not None and global_side > 0:
                    predicted = 1.0 - predicted
            else:
                cell = classify_rastrigin(final, minima_1d)
                at_global = float(np.mean(np.all(cell == 0, axis=1)))
                at_local = float(np.mean(finite & ~np.all(cell == 0, axis=1)))
                predicted = (theory.rastrigin_global_basin_fraction(p["rastrigin_width"], 2, p["rastrigin_amplitude"])
                             if optimizer == "sgd" and noise == 0.0 else None)
            key = f"{name}_{optimizer}_noise{index}"
            arrays[key] = final
            rows.append(dict(landscape=name, optimizer=optimizer, lr=run_lr, noise=noise, global_fraction=at_global,
                             local_fraction=at_local, diverged=result.n_diverged,
                             mean_final_loss=float(losses.mean()) if losses.size else None, theory_global=predicted,
                             standard_error=float(np.sqrt(at_global * (1 - at_global) / p["trials"])), key=key))
    summary = {f"global_{r['landscape']}_{r['optimizer']}_noise{r['noise']:g}": r["global_fraction"] for r in rows}
    result = Result(scenario="minima", params=p, summary=summary, arrays=arrays, tables=dict(runs=rows))
    result.wall_time = timer.seconds
    return result


def table(result):
    shown = [dict(landscape=r["landscape"], optimizer=r["optimizer"], lr=r["lr"], noise=r["noise"],
                  at_global=r["global_fraction"], stderr=r["standard_error"], at_local=r["local_fraction"],
                  theory=r["theory_global"], diverged=r["diverged"], loss=r["mean_final_loss"])
             for r in result.tables["runs"]]
    return common.format_table(shown, headers=dict(at_global="at global min", stderr="+-", at_local="at a local min",
                                                   theory="theory (GD, no noise)", loss="mean final loss"))


def figures(result):
    from .. import plotting

    p = result.params
    rows = result.tables["runs"]
    out = {}

    well_rows = [r for r in rows if r["landscape"] == "double_well" and r["lr"] == p["lr"][0]]
    fig, axes = plotting.figure(len(well_rows), 1, figsize=(6.0, 1.35 * len(well_rows) + 0.8), sharex=True)
    axes = np.atleast_1d(axes)
    grid = np.linspace(-1.8, 1.8, 300)
    landscape = p["height"] * (grid**2 - 1.0) ** 2 + p["tilt"] * grid
    bins = np.linspace(-1.8, 1.8, 73)
    for index, (ax, r) in enumerate(zip(axes, well_rows)):
        final = result.arrays[r["key"]][:, 0]
        final = final[np.isfinite(final)]
        ax.hist(final, bins=bins, color=plotting.color(index), alpha=0.85,
                label=f"{r['optimizer']}, noise {r['noise']:g}: {100 * r['global_fraction']:.0f}% global")
        twin = ax.twinx()
        twin.plot(grid, landscape, color="0.5", linewidth=0.8)
        twin.set_yticks([])
        twin.grid(False)
        ax.axvline(theory.double_well_barrier(p["height"], p["tilt"]), color="0.4", linestyle=":", linewidth=0.8)
        plotting.finish(ax, xlabel="final w" if index == len(well_rows) - 1 else "", ylabel="runs",
                        legend_loc="upper center")
    axes[0].set_title(f"double well {p['height']:g} (w²-1)² + {p['tilt']:g} w (grey; barrier dotted), "
                      f"lr {p['lr'][0]:g}")
    out["minima_double_well"] = fig

    ras_rows = [r for r in rows if r["landscape"] == "rastrigin"]
    ncols = min(3, len(ras_rows))
    nrows = -(-len(ras_rows) // ncols)
    fig, axes = plotting.figure(nrows, ncols, figsize=(3.4 * ncols, 3.2 * nrows), squeeze=False)
    width = p["rastrigin_width"]
    xs = np.linspace(-width, width, 240)
    xx, yy = np.meshgrid(xs, xs)
    amplitude = p["rastrigin_amplitude"]
    values = 2 * amplitude + xx**2 + yy**2 - amplitude * (np.cos(2 * np.pi * xx) + np.cos(2 * np.pi * yy))
    for index, r in enumerate(ras_rows):
        ax = axes.flat[index]
        ax.contour(xx, yy, values, levels=12, colors="0.82", linewidths=0.5)
        final = result.arrays[r["key"]]
        ax.plot(final[:, 0], final[:, 1], "o", markersize=2.5, alpha=0.35, color=plotting.color(index),
                rasterized=True)  # thousands of points: a bitmap layer keeps the PDF small
        ax.plot([0], [0], "*", color="black", markersize=9)
        ax.set_xlim(-width, width)
        ax.set_ylim(-width, width)
        plotting.finish(ax, xlabel="$w_1$", ylabel="$w_2$", legend=False,
                        title=f"{r['optimizer']}, noise {r['noise']:g}: {100 * r['global_fraction']:.1f}% at 0")
    for ax in list(axes.flat)[len(ras_rows):]:
        ax.set_visible(False)
    out["minima_rastrigin"] = fig

    fig, axes = plotting.figure(1, 2, figsize=(10.0, 3.6))
    for ax, name in zip(axes, ("double_well", "rastrigin")):
        chosen = [r for r in rows if r["landscape"] == name and (name == "rastrigin" or r["lr"] == p["lr"][0])]
        labels = [f"{r['optimizer']}\nnoise {r['noise']:g}" for r in chosen]
        positions = np.arange(len(chosen))
        ax.bar(positions, [r["global_fraction"] for r in chosen],
               yerr=[2 * r["standard_error"] for r in chosen], color=[plotting.color(i) for i in range(len(chosen))],
               alpha=0.85, capsize=2.5, label="measured (± 2 s.e.)")
        for position, r in zip(positions, chosen):
            if r["theory_global"] is not None:
                plotting.theory(ax, [position - 0.45, position + 0.45], [r["theory_global"]] * 2, color="black",
                                label="GD flow: fraction of starts in the global basin")
        ax.set_xticks(positions)
        ax.set_xticklabels(labels, fontsize=7)
        top = max([r["global_fraction"] + 2 * r["standard_error"] for r in chosen]
                  + [r["theory_global"] or 0.0 for r in chosen])
        plotting.finish(ax, xlabel="optimizer", ylabel="fraction at the global minimum",
                        title=name.replace("_", " "), legend_loc="upper left")
        ax.set_ylim(0, min(1.05, max(1.6 * top, 0.05)))
    out["minima_fractions"] = fig
    return out


def plot(result, out_dir):
    return common.save_figures(figures(result), out_dir)


def add_arguments(parser):
    _escape.add_common_arguments(parser, lr_help="comma-separated learning rates on the double well")
    parser.add_argument("--tilt", type=float, default=None, help="double-well tilt c (> 0: the left well is global)")
    parser.add_argument("--rastrigin-lr", dest="rastrigin_lr", type=float, default=None,
                        help="learning rate on Rastrigin (curvature up to 2 + 4 pi^2 A)")
    parser.add_argument("--rastrigin-noise", dest="rastrigin_noise", type=float, default=None,
                        help="gradient-noise std on Rastrigin")


def main(argv=None):
    return common.main(__name__, argv, add_arguments=add_arguments)


if __name__ == "__main__":
    raise SystemExit(main())
