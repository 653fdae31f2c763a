"""Plateaus: why they "need a larger learning rate", against Saxe et al.'s exact solution.

Two plateaus of :mod:`testbed.landscapes`, crossed by gradient descent (and the other optimizers asked for) with
:func:`testbed.montecarlo.escape_times`; a trial has escaped once the loss has fallen ``loss_fraction`` of its
starting value (criterion ``"loss"``):

- the saturated tanh unit ``1/2 (tanh(a w) - y)^2`` started at ``w0`` (gradient ~ ``4 a (1-y) e^(-2 a w0)``);
  gradient flow needs ``t ~ e^(2 a w0) / (8 (1-y) lr a^2)`` steps (:func:`testbed.theory.escape.tanh_unit_plateau_time`
  gives the exact partial-fraction integral);
- Saxe, McClelland & Ganguli (2014)'s deep linear chain ``1/2 (s - w_1 ... w_D)^2`` from a balanced start of
  mode strength ``u0``: for D = 2, ``t = (1/(2 s lr)) ln(uf (s - u0) / (u0 (s - uf)))``; for D > 2 the balanced
  flow ``du/dt = lr D u^(2-2/D) (s - u)``, ``t ~ u0^-(1-2/D) / (lr s (D-2))``, Saxe's ``1/u0`` plateau.

Figures: ``plateau_lr`` (escape time vs lr on both landscapes, theory dashed: slope -1, the claim "a plateau
needs a larger lr"), ``plateau_scale`` (vs the initial mode strength u0 for several depths: ln(1/u0) at depth 2,
a power law deeper), ``plateau_depth`` (vs depth at a fixed per-layer scale a0, u0 = a0^D: deeper waits longer),
``plateau_saturation`` (the tanh unit vs its saturation level a w0: exponential), ``plateau_loss`` (loss curves:
the plateau, then the drop). The table gives the measured escape step (KM median over the trials), the theory
and their ratio. Gradient descent's discrete steps differ from the flow by a relative O(lr s)
(:func:`testbed.theory.escape.saxe_discrete_steps_bounds`); the other optimizers have no dashed line.
"""

from __future__ import annotations

import math

import numpy as np

from .. import landscapes, montecarlo, validation
from ..results import Result, Timer
from ..theory import escape as theory
from . import _escape, common

DEFAULTS = dict(
    optimizers=["sgd", "adam"],
    lr=[0.005, 0.01, 0.02, 0.05, 0.1, 0.2],
    noise=0.0,
    trials=1,
    loss_fraction=0.5,
    tanh_scale=1.0,
    tanh_target=-0.5,
    tanh_start=3.0,
    saturation=[1.0, 2.0, 3.0, 4.0, 5.0],
    strength=1.0,
    u0=1e-3,
    depths=[2, 3, 4, 6],
    scales=[1e-1, 1e-2, 1e-3, 1e-4],
    layer_scales=[0.6, 0.4],
    max_depth=10,
    fixed_lr=0.05,
    max_steps=500_000,
    seed=0,
    backend="cpu",
)
QUICK = dict(
    lr=[0.01, 0.05, 0.2],
    saturation=[1.0, 2.0, 3.0],
    depths=[2, 4],
    scales=[1e-1, 1e-3],
    layer_scales=[0.5],
    max_depth=6,
)

#: Trajectory points kept for the loss curves.
LOSS_CURVE_POINTS = 400


def validate(p):
    p = _escape.common_checks(dict(p))
    p["optimizers"] = _escape.check_list(p["optimizers"], "optimizers", _escape.optimizer_name)
    p["lr"] = _escape.positive_list(p["lr"], "lr")
    for key in ("saturation", "scales", "layer_scales"):
        p[key] = _escape.positive_list(p[key], key)
    p["depths"] = _escape.int_list(p["depths"], "depths", minimum=2)
    p["max_depth"] = validation.check_positive_int(p["max_depth"], "max_depth")
    if p["max_depth"] < 2:
        raise ValueError(f"max_depth must be at least 2, got {p['max_depth']}")
    p["loss_fraction"] = validation.check_finite(p["loss_fraction"], "loss_fraction", minimum=0.0, strict=True)
    if p["loss_fraction"] >= 1.0:
        raise ValueError(f"loss_fraction must lie in (0, 1), got {p['loss_fraction']}")
    for key in ("tanh_scale", "strength", "u0", "fixed_lr"):
        p[key] = validation.check_finite(p[key], key, minimum=0.0, strict=True)
    p["tanh_start"] = validation.check_finite(p["tanh_start"], "tanh_start")
    p["tanh_target"] = validation.check_finite(p["tanh_target"], "tanh_target")
    if not -1.0 < p["tanh_target"] < 1.0:
        raise ValueError(f"tanh_target must lie in (-1, 1), got {p['tanh_target']}")
    if not p["u0"] < p["strength"] or not all(s < p["strength"] for s in p["scales"]):
        raise ValueError("u0 and every value of scales must be below strength (the plateau is before s)")
    if any(a >= p["strength"] ** (1.0 / 2) for a in p["layer_scales"]) or any(a >= 1.0 for a in p["layer_scales"]):
        raise ValueError("layer_scales must be below 1 and below sqrt(strength)")
    return p


# ------------------------------------------------------------------------------------------------------------------
# the runs


def _tanh(p, start):
    return landscapes.tanh_unit(scale=p["tanh_scale"], target=p["tanh_target"], start=start)


def _tanh_theory(p, lr, start):
    f = _tanh(p, start)
    drop = p["loss_fraction"] * f.value(f.start)
    w_end = theory.tanh_unit_target_for_loss_drop(start, drop, p["tanh_scale"], p["tanh_target"])
    return theory.tanh_unit_plateau_time(lr, start, w_end, p["tanh_scale"], p["tanh_target"])


def _deep_theory(p, lr, depth, u0):
    drop = p["loss_fraction"] * 0.5 * (p["strength"] - u0) ** 2
    uf = theory.deep_linear_target_for_loss_drop(p["strength"], u0, drop)
    return theory.deep_linear_plateau_time(lr, p["strength"], u0, uf, depth)


def _run_one(p, f, optimizer, lr, seed_offset, record=0):
    opt = _escape.make_optimizer(optimizer, lr)
    delta = p["loss_fraction"] * f.value(f.start)
    result = montecarlo.escape_times(
        f,
        opt,
        trials=p["trials"],
        noise=p["noise"],
        start="saddle",
        criterion="loss",
        delta=delta,
        max_steps=p["max_steps"],
        seed=p["seed"] + seed_offset,
        backend=p["backend"],
        record=record,
        record_every=None if not record else max(1, p["max_steps"] // LOSS_CURVE_POINTS),
    )
    return result


def _row(kind, landscape, optimizer, result, predicted, **extra):
    median, escaped, diverged = _escape.escape_summary(result)
    row = dict(
        kind=kind,
        landscape=landscape,
        optimizer=optimizer,
        **extra,
        steps=median,
        escaped=escaped,
        diverged=diverged,
        theory=predicted,
    )
    row["ratio"] = None if median is None or predicted is None else median / predicted
    return row


def run(*, quick=False, progress=True, **params):
    p = validate(common.merge_params(DEFAULTS, QUICK, quick, params))
    rows = []
    jobs = []
    for optimizer in p["optimizers"]:
        for lr in p["lr"]:
            jobs.append(("lr", "tanh_unit", optimizer, dict(lr=lr)))
            jobs.append(("lr", "deep_linear", optimizer, dict(lr=lr)))
    for depth in p["depths"]:
        for u0 in p["scales"]:
            jobs.append(("scale", "deep_linear", "sgd", dict(depth=depth, u0=u0)))
    for a0 in p["layer_scales"]:
        for depth in range(2, p["max_depth"] + 1):
            jobs.append(("depth", "deep_linear", "sgd", dict(depth=depth, a0=a0)))
    for level in p["saturation"]:
        jobs.append(("saturation", "tanh_unit", "sgd", dict(level=level)))

    arrays = {}
    with Timer() as timer:
        for index, (kind, name, optimizer, job) in enumerate(
            common.progress(jobs, desc="plateau", enabled=progress, unit="run")
        ):
            lr = job.get("lr", p["fixed_lr"])
            if name == "tanh_unit":
                start = job["level"] / p["tanh_scale"] if kind == "saturation" else p["tanh_start"]
                f = _tanh(p, start)
                predicted = _tanh_theory(p, lr, start) if optimizer == "sgd" else None
                extra = dict(lr=lr, level=p["tanh_scale"] * start)
            else:
                depth = job.get("depth", 2)
                u0 = job["a0"] ** depth if "a0" in job else job.get("u0", p["u0"])
                f = landscapes.deep_linear(depth=depth, strength=p["strength"], u0=u0)
                predicted = _deep_theory(p, lr, depth, u0) if optimizer == "sgd" else None
                extra = dict(lr=lr, depth=depth, u0=u0, a0=job.get("a0", u0 ** (1.0 / depth)))
            result = _run_one(p, f, optimizer, lr, index)
            rows.append(_row(kind, name, optimizer, result, predicted, **extra))

        # loss curves of one run per plateau (the first trial's trajectory)
        curves = [
            ("tanh_unit", _tanh(p, p["tanh_start"])),
            ("deep_linear D=2", landscapes.deep_linear(2, p["strength"], p["u0"])),
            (f"deep_linear D={max(p['depths'])}", landscapes.deep_linear(max(p["depths"]), p["strength"], p["u0"])),
        ]
        for label, f in curves:
            result = montecarlo.escape_times(
                f,
                _escape.make_optimizer("sgd", p["fixed_lr"]),
                trials=1,
                noise=p["noise"],
                criterion="none",
                max_steps=_curve_steps(p, rows, f),
                seed=p["seed"],
                backend=p["backend"],
                record=1,
            )
            steps = result.trajectory_steps
            path = result.trajectories[0]
            keep = np.all(np.isfinite(path), axis=1)
            key = label.replace(" ", "_").replace("=", "")
            arrays[f"loss_steps_{key}"] = steps[keep]
            arrays[f"loss_{key}"] = f.value(path[keep])
    summary = _summary(rows)
    result = Result(scenario="plateau", params=p, summary=summary, arrays=arrays, tables=dict(runs=rows))
    result.wall_time = timer.seconds
    return result


def _curve_steps(p, rows, f):
    """Run the loss curve three times as long as the measured escape at fixed_lr (at least 100 steps)."""
    if f.name == "tanh_unit":
        predicted = _tanh_theory(p, p["fixed_lr"], p["tanh_start"])
    else:
        predicted = _deep_theory(p, p["fixed_lr"], f.dim, f.start[0] ** f.dim)
    return int(min(p["max_steps"], max(100, 3 * math.ceil(predicted))))


def _fit_slope(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if keep.sum() < 2:
        return None
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def _summary(rows):
    summary = {}
    for name in ("tanh_unit", "deep_linear"):
        for optimizer in sorted({r["optimizer"] for r in rows if r["kind"] == "lr"}):
            chosen = [r for r in rows if r["kind"] == "lr" and r["landscape"] == name and r["optimizer"] == optimizer]
            summary[f"lr_slope_{name}_{optimizer}"] = _fit_slope(
                [r["lr"] for r in chosen], [_escape.finite_or_nan(r["steps"]) for r in chosen]
            )
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    summary["max_relative_deviation_from_theory"] = float(max(abs(x - 1) for x in ratios)) if ratios else None
    summary["censored_runs"] = int(sum(r["steps"] is None for r in rows))
    return summary


# ------------------------------------------------------------------------------------------------------------------
# output


def table(result):
    rows = result.tables["runs"]
    shown = []
    for r in rows:
        setting = f"a w0={r['level']:g}" if r["landscape"] == "tanh_unit" else f"D={r['depth']} u0={r['u0']:.3g}"
        shown.append(
            dict(
                figure=r["kind"],
                landscape=r["landscape"],
                setting=setting,
                optimizer=r["optimizer"],
                lr=r["lr"],
                steps=r["steps"],
                theory=r["theory"],
                ratio=r["ratio"],
                escaped=r["escaped"],
            )
        )
    text = common.format_table(
        shown,
        headers=dict(
            steps="measured steps", theory="theory (flow)", ratio="measured/theory", escaped="fraction escaped"
        ),
    )
    slopes = ", ".join(
        f"{k[len('lr_slope_') :]}: {v:.3f}"
        for k, v in result.summary.items()
        if k.startswith("lr_slope_") and v is not None
    )
    return text + f"\n\nlog-log slope of escape steps vs lr (theory for sgd: -1): {slopes}"


def _select(rows, **match):
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def _name(optimizer, noise):
    """The paper's name of an optimizer ("sgd" without gradient noise is plain GD)."""
    from .. import plotting

    return "GD" if optimizer == "sgd" and noise == 0 else plotting.paper_name(optimizer)


def _plot_steps(ax, x, chosen, label, index):
    """The measured halving steps of the runs ``chosen`` against ``x``, in the colour and marker of series
    ``index``."""
    from .. import plotting

    steps = _escape.as_array(r["steps"] for r in chosen)
    plotting.measured(ax, x, steps, label=label, color=plotting.color(index), marker=plotting.marker(index))


def _finish_steps(ax, **labels):
    """Label a panel of halving steps (log scale); its legend goes below the figure (``plotting.legend_below``)."""
    from .. import plotting

    plotting.finish(ax, ylabel="steps until the loss halves", yscale="log", legend=False, **labels)


def draw_lr(result):
    """Steps until the loss halves against the learning rate on the saturated tanh unit and the depth-2 linear
    net, gradient-flow theory dashed."""
    from .. import plotting

    rows = result.tables["runs"]
    p = result.params
    gd = _name("sgd", p["noise"])

    fig, axes = plotting.figure(1, 2, width="page", height=2.5)
    for ax, name, title in zip(
        axes,
        ("tanh_unit", "deep_linear"),
        (
            f"saturated tanh unit, $a w_0$ = {p['tanh_scale'] * p['tanh_start']:g}",
            f"deep linear net, $D$ = 2, $u_0$ = {p['u0']:g}",
        ),
    ):
        for index, optimizer in enumerate(p["optimizers"]):
            chosen = _select(rows, kind="lr", landscape=name, optimizer=optimizer)
            lrs = np.array([r["lr"] for r in chosen])
            _plot_steps(ax, lrs, chosen, f"{_name(optimizer, p['noise'])}, measured", index)
            if optimizer == "sgd":
                label = "gradient-flow theory (exact integral; Saxe et al. 2014)"
                dense = np.geomspace(lrs.min(), lrs.max(), 50)
                predicted = [
                    (_tanh_theory(p, lr, p["tanh_start"]) if name == "tanh_unit" else _deep_theory(p, lr, 2, p["u0"]))
                    for lr in dense
                ]
                plotting.theory(ax, dense, predicted, label=f"{gd}, {label}", color=plotting.color(index))
        _finish_steps(ax, xlabel="learning rate", title=title, xscale="log")
    plotting.legend_below(fig, ncols=3)
    return fig


def draw_scale(result):
    """Steps until the loss halves against the initial mode strength u0 of deep linear nets, one series per
    depth, balanced-flow theory dashed."""
    from .. import plotting

    rows = result.tables["runs"]
    p = result.params
    gd = _name("sgd", p["noise"])

    fig, ax = plotting.figure(height=2.6)
    for index, depth in enumerate(p["depths"]):
        chosen = _select(rows, kind="scale", depth=depth)
        u0s = np.array([r["u0"] for r in chosen])
        _plot_steps(ax, u0s, chosen, f"$D$ = {depth}", index)
        dense = np.geomspace(u0s.min(), u0s.max(), 50)
        plotting.theory(
            ax, dense, [_deep_theory(p, p["fixed_lr"], depth, u) for u in dense], color=plotting.color(index)
        )
    ax.plot([], [], linestyle="--", color="gray", label="balanced flow")
    _finish_steps(
        ax, xlabel="initial mode strength $u_0$", title=f"deep linear net, {gd}, lr = {p['fixed_lr']:g}", xscale="log"
    )
    plotting.legend_below(fig, ncols=3)
    return fig


def draw_depth(result):
    """Steps until the loss halves against depth at a fixed per-layer scale a0 (u0 = a0^D), balanced-flow
    theory dashed."""
    from .. import plotting

    rows = result.tables["runs"]
    p = result.params

    fig, ax = plotting.figure(height=2.5)
    for index, a0 in enumerate(p["layer_scales"]):
        chosen = [r for r in rows if r["kind"] == "depth" and abs(r["a0"] - a0) < 1e-9 * a0]
        depths = np.array([r["depth"] for r in chosen])
        _plot_steps(ax, depths, chosen, f"$a_0$ = {a0:g}, measured", index)
        plotting.theory(
            ax,
            depths,
            [_deep_theory(p, p["fixed_lr"], int(d), a0 ** int(d)) for d in depths],
            color=plotting.color(index),
        )
    ax.plot([], [], linestyle="--", color="gray", label="balanced flow")
    _finish_steps(
        ax, xlabel="depth $D$ (weights in the chain)", title=f"deep linear net, $u_0 = a_0^D$, lr = {p['fixed_lr']:g}"
    )
    plotting.legend_below(fig, ncols=2)
    return fig


def draw_saturation(result):
    """Steps until the loss halves against the tanh unit's saturation level a w0, beside the exact flow
    integral and its exponential asymptote."""
    from .. import plotting

    rows = result.tables["runs"]
    p = result.params
    gd = _name("sgd", p["noise"])

    fig, ax = plotting.figure(height=2.6)
    chosen = _select(rows, kind="saturation")
    levels = np.array([r["level"] for r in chosen])
    _plot_steps(ax, levels, chosen, f"{gd}, measured", 0)
    dense = np.linspace(levels.min(), levels.max(), 60)
    plotting.theory(
        ax,
        dense,
        [_tanh_theory(p, p["fixed_lr"], level / p["tanh_scale"]) for level in dense],
        label="gradient flow (exact integral)",
        color=plotting.color(0),
    )
    plotting.theory(
        ax,
        dense,
        [
            theory.tanh_unit_plateau_time_asymptotic(
                p["fixed_lr"], level / p["tanh_scale"], p["tanh_scale"], p["tanh_target"]
            )
            for level in dense
        ],
        label=r"$\exp(2 a w_0) / (8 (1-y)\, \mathrm{lr}\, a^2)$",
        color=plotting.color(1),
        linestyle=":",
    )
    _finish_steps(
        ax,
        xlabel="saturation level $a w_0$",
        title=f"tanh unit, $y$ = {p['tanh_target']:g}, {gd}, lr = {p['fixed_lr']:g}",
    )
    plotting.legend_below(fig, ncols=1)
    return fig


def draw_loss(result):
    """Loss curves of deep linear nets and the tanh unit against the step in units of each one's predicted
    halving step t*."""
    from .. import plotting

    p = result.params
    gd = _name("sgd", p["noise"])

    # loss curves against the step in units of the flow's halving step t*: each run lasts 3 t*
    fig, ax = plotting.figure(height=2.5)
    keys = sorted(k[len("loss_steps_") :] for k in result.arrays if k.startswith("loss_steps_"))
    keys.sort(key=lambda key: (not key.startswith("deep"), int(key.rpartition("D")[2]) if "_D" in key else 0))
    for index, key in enumerate(keys):
        steps = result.arrays[f"loss_steps_{key}"]
        loss = result.arrays[f"loss_{key}"]
        if key == "tanh_unit":
            t_star = _tanh_theory(p, p["fixed_lr"], p["tanh_start"])
            label = f"saturated tanh unit, $a w_0$ = {p['tanh_scale'] * p['tanh_start']:g}"
        else:
            depth = int(key.rpartition("D")[2])
            t_star = _deep_theory(p, p["fixed_lr"], depth, p["u0"])
            label = f"deep linear net, $D$ = {depth}"
        ax.plot(
            steps / t_star,
            loss / loss[0],
            color=plotting.color(index),
            label=f"{label} ($t^*$ = {t_star:.0f})",
            linestyle=("-", (0, (5, 1.5, 1, 1.5)), ":")[index % 3],
        )
    ax.axvline(1.0, color="0.4", linewidth=0.8, linestyle="--")
    ax.axhline(p["loss_fraction"], color="0.6", linewidth=0.6, linestyle=":")
    ax.plot(
        [],
        [],
        linestyle="--",
        color="0.4",
        label=f"$t^*$: the flow's predicted step to loss $\\times${p['loss_fraction']:g} (dotted)",
    )
    ax.set_xlim(0, 3)
    plotting.finish(
        ax,
        xlabel=f"step / $t^*$ ({gd}, lr = {p['fixed_lr']:g})",
        ylabel="loss / initial loss",
        title="a plateau, then a sudden drop",
        legend=False,
    )
    plotting.legend_below(fig, ncols=1)
    return fig


def add_arguments(parser):
    _escape.add_common_arguments(parser, lr_help="comma-separated learning rates of the escape-time-vs-lr figure")
    parser.add_argument(
        "--fixed-lr",
        dest="fixed_lr",
        type=float,
        default=None,
        help="learning rate of the depth, scale and saturation sweeps",
    )
    parser.add_argument("--depths", type=common.comma_list(int), default=None, help="depths of the u0 sweep")


#: The figures, by name (the file stem, and what a preset's ``figure`` names): each draws one from a result.
FIGURES = {
    "plateau_lr": draw_lr,
    "plateau_scale": draw_scale,
    "plateau_depth": draw_depth,
    "plateau_saturation": draw_saturation,
    "plateau_loss": draw_loss,
}


if __name__ == "__main__":
    raise SystemExit(common.main(__name__))
