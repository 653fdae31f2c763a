"""Adam can fail to converge: Reddi, Kale & Kumar (2018)'s counterexample, and AMSGrad's fix.

The online loss of :func:`testbed.landscapes.reddi` on ``x in [-1, 1]`` (iterates projected) is ``f_t(x) = C x``
when ``t mod 3 = 1`` and ``-x`` otherwise. For ``C > 2`` the average slope ``(C - 2)/3`` is positive, so the
optimum is ``x = -1``. With ``b1 = 0``, ``b2 = 1/(1 + C^2)`` and the "decaying" rate ``lr/sqrt(t)`` (Reddi et
al., Theorem 1), Adam's second moment forgets the rare large gradient ``C`` within a period, so the two small
gradients get large steps and Adam drifts to ``+1``, the worst point; AMSGrad divides by the largest second
moment seen so it moves ``(2 - C)/sqrt(max v)`` per period, to ``-1``. The per-period drifts come from the
periodic fixed point of ``v`` (:func:`testbed.theory.escape.reddi_adam_drift`, ``reddi_amsgrad_drift``).

Figures: ``amsgrad_trajectories`` (x_t against t for each optimizer, the predicted limits dashed) and
``amsgrad_regret`` (the average regret ``R_T / T = (1/T) sum_t (f_t(x_t) - f_t(-1))``: Adam's tends to
``2 (C - 2)/3``, AMSGrad's to 0), ``amsgrad_limits`` (where each optimizer ends against C, the drift sign's
prediction dashed). The table gives the final x, the predicted limit and the drift per period (in units of the
step size) for every C and optimizer.
"""

from __future__ import annotations

import numpy as np

from .. import landscapes, montecarlo, validation
from ..results import Result, Timer
from ..theory import escape as theory
from . import _escape, common

DEFAULTS = dict(
    optimizers=["adam", "amsgrad", "sgd"],
    C=3.0,
    sweep_C=[2.5, 3.0, 5.0, 10.0, 20.0],
    lr=[0.1],
    start=0.0,
    noise=0.0,
    trials=1,
    max_steps=100_000,
    seed=0,
    backend="cpu",
)
QUICK = dict(max_steps=6_000, sweep_C=[2.5, 3.0, 10.0])


#: Largest C accepted: Adam squares the gradient (C, then C^2 in b2 = 1/(1 + C^2)), which must stay finite.
MAX_C = 1e100


def validate(p):
    p = _escape.common_checks(dict(p))
    p["optimizers"] = _escape.check_list(p["optimizers"], "optimizers", _escape.optimizer_name)
    p["C"] = validation.check_finite(p["C"], "C")
    p["sweep_C"] = _escape.check_list(p["sweep_C"], "sweep_C", lambda c: validation.check_finite(c, "sweep_C"))
    for value in [p["C"]] + p["sweep_C"]:
        if value <= 2.0:
            raise ValueError(f"C must exceed 2 for the counterexample (the optimum is then -1), got {value}")
        if value > MAX_C:
            raise ValueError(
                f"C must be at most {MAX_C:g} (the squared gradient C^2 and b2 = 1/(1 + C^2) must stay "
                f"finite and nonzero in double precision), got {value:g}"
            )
    p["lr"] = _escape.positive_list(p["lr"], "lr")
    p["start"] = validation.check_finite(p["start"], "start")
    if not -1.0 <= p["start"] <= 1.0:
        raise ValueError(f"start must lie in [-1, 1], got {p['start']}")
    return p


def optimizer_for(name, lr, big_c):
    """Reddi et al.'s setting: b1 = 0, b2 = 1/(1 + C^2), lr/sqrt(t); other optimizers with lr/sqrt(t) too."""
    beta2 = theory.reddi_beta2(big_c)
    return _escape.make_optimizer(name, lr, betas=(0.0, beta2), mu=0.0, schedule="inverse_sqrt")


#: Markers of optimizers ending at the same x sit side by side in amsgrad_limits: a factor of C between them.
LIMITS_DODGE = 1.12


def predicted_limit(name, big_c):
    if name == "adam":
        return 1.0 if theory.reddi_adam_drift(big_c) > 0 else -1.0
    if name == "amsgrad":
        return 1.0 if theory.reddi_amsgrad_drift(big_c) > 0 else -1.0
    if name == "sgd":
        return theory.reddi_optimum(big_c)  # the drift per period is -3 x the average slope
    return None


def predicted_drift(name, big_c):
    if name == "adam":
        return theory.reddi_adam_drift(big_c)
    if name == "amsgrad":
        return theory.reddi_amsgrad_drift(big_c)
    if name == "sgd":
        return 2.0 - big_c
    return None


def _losses(path, big_c):
    """f_t(x_t) - f_t(-1) for t = 1..T from the recorded x_0..x_T (x_{t-1} meets the loss of step t)."""
    x = path[:-1, 0]
    t = np.arange(1, x.size + 1)
    slope = np.where(t % 3 == 1, big_c, -1.0)
    return slope * (x + 1.0)


def run(*, quick=False, progress=True, **params):
    p = validate(common.merge_params(DEFAULTS, QUICK, quick, params))
    rows, arrays = [], {}
    cs = [p["C"]] + [c for c in p["sweep_C"] if c != p["C"]]
    jobs = [(c, lr, name) for c in cs for lr in p["lr"] for name in p["optimizers"]]
    with Timer() as timer:
        for index, (big_c, lr, name) in enumerate(common.progress(jobs, desc="amsgrad", enabled=progress, unit="run")):
            f = landscapes.reddi(C=big_c, start=p["start"])
            demo = big_c == p["C"] and lr == p["lr"][0]
            result = montecarlo.escape_times(
                f,
                optimizer_for(name, lr, big_c),
                trials=p["trials"],
                noise=p["noise"],
                criterion="none",
                max_steps=p["max_steps"],
                seed=p["seed"] + index,
                backend=p["backend"],
                record=1,
                record_every=1 if demo else p["max_steps"],
            )
            final = result.final[:, 0]
            rows.append(
                dict(
                    C=big_c,
                    lr=lr,
                    optimizer=name,
                    final_x=float(np.median(final)),
                    fraction_at_plus_one=float(np.mean(final > 0.99)),
                    fraction_at_minus_one=float(np.mean(final < -0.99)),
                    predicted=predicted_limit(name, big_c),
                    drift=predicted_drift(name, big_c),
                    beta2=theory.reddi_beta2(big_c),
                    diverged=result.n_diverged,
                )
            )
            if demo:
                path = result.trajectories[0]
                arrays[f"x_{name}"] = path[:, 0]
                regret = np.cumsum(_losses(path, big_c))
                arrays[f"regret_{name}"] = regret / np.arange(1, regret.size + 1)
    summary = {f"final_x_{r['optimizer']}": r["final_x"] for r in rows if r["C"] == p["C"] and r["lr"] == p["lr"][0]}
    summary["all_as_predicted"] = all(r["predicted"] is None or abs(r["final_x"] - r["predicted"]) < 0.1 for r in rows)
    result = Result(scenario="amsgrad", params=p, summary=summary, arrays=arrays, tables=dict(runs=rows))
    result.wall_time = timer.seconds
    return result


def table(result):
    shown = [
        dict(
            C=r["C"],
            beta2=r["beta2"],
            lr=r["lr"],
            optimizer=r["optimizer"],
            final_x=r["final_x"],
            predicted=r["predicted"],
            drift=r["drift"],
        )
        for r in result.tables["runs"]
    ]
    text = common.format_table(
        shown,
        headers=dict(
            beta2="b2 = 1/(1+C^2)",
            lr="lr (x 1/sqrt t)",
            final_x="final x (median)",
            predicted="predicted limit",
            drift="drift per period / step size",
        ),
    )
    return text + "\n\nthe optimum of the average loss is x = -1 for every C > 2"


def _name(name, noise):
    """The paper's name: the counterexample's gradients are exact, so "sgd" without noise is online GD."""
    from .. import plotting

    return "GD" if name == "sgd" and noise == 0 else plotting.paper_name(name)


def draw_trajectories(result):
    """x_t against t for each optimizer at the demo's C, the predicted limits dashed."""
    from .. import plotting

    p = result.params
    big_c = p["C"]
    names = [n for n in p["optimizers"] if f"x_{n}" in result.arrays]

    fig, ax = plotting.figure(height=2.5)
    for index, name in enumerate(names):
        x = result.arrays[f"x_{name}"]
        t = np.arange(x.size)
        ax.plot(t[1:], x[1:], color=plotting.color(index), linewidth=0.8, label=f"{_name(name, p['noise'])}")
        limit = predicted_limit(name, big_c)
        if limit is not None:
            plotting.theory(ax, [1, t[-1]], [limit, limit], color=plotting.color(index))
    ax.plot([], [], "--", color="gray", label="predicted limit")
    plotting.finish(
        ax,
        xlabel="step $t$",
        ylabel="$x_t$ (projected on $[-1, 1]$)",
        xscale="log",
        title=f"$C$ = {big_c:g}, $\\beta_1 = 0$, $\\beta_2 = 1/(1+C^2)$",
        legend=False,
    )
    ax.set_ylim(-1.1, 1.1)
    plotting.legend_below(fig, ncols=4)
    return fig


def draw_regret(result):
    """The average regret R_T/T of each optimizer, its predicted limit dashed (2 (C - 2)/3 or 0)."""
    from .. import plotting

    p = result.params
    big_c = p["C"]
    names = [n for n in p["optimizers"] if f"x_{n}" in result.arrays]

    fig, ax = plotting.figure(height=2.5)
    for index, name in enumerate(names):
        regret = result.arrays[f"regret_{name}"]
        t = np.arange(1, regret.size + 1)
        ax.plot(t, regret, color=plotting.color(index), linewidth=1.0, label=_name(name, p["noise"]))
        limit = predicted_limit(name, big_c)
        if limit is not None:
            level = 2.0 * (big_c - 2.0) / 3.0 if limit > 0 else 0.0
            plotting.theory(ax, [1, t[-1]], [level, level], color=plotting.color(index))
    ax.plot([], [], "--", color="gray", label="predicted limit")
    plotting.finish(
        ax,
        xlabel="step $T$",
        ylabel="average regret $R_T / T$",
        xscale="log",
        title=f"regret against $x^* = -1$, $C$ = {big_c:g}",
        legend=False,
    )
    plotting.legend_below(fig, ncols=4)
    return fig


def draw_limits(result):
    """Where each optimizer ends against C, the drift sign's prediction dashed."""
    from .. import plotting

    p = result.params

    fig, ax = plotting.figure(height=2.5)
    rows = result.tables["runs"]
    shown = [name for name in p["optimizers"] if any(r["optimizer"] == name for r in rows)]
    for index, name in enumerate(shown):
        chosen = [r for r in rows if r["optimizer"] == name and r["lr"] == p["lr"][0]]
        chosen.sort(key=lambda r: r["C"])
        cs = np.array([r["C"] for r in chosen])
        # optimizers ending at the same point sit side by side (a small offset in log C), none hidden
        offset = LIMITS_DODGE ** (index - (len(shown) - 1) / 2)
        plotting.measured(
            ax,
            cs * offset,
            [r["final_x"] for r in chosen],
            label=_name(name, p["noise"]),
            color=plotting.color(index),
            marker=plotting.marker(index),
            markersize=5,
            markerfacecolor="none",
            markeredgewidth=1.2,
        )
    # one dashed line per distinct prediction, naming the optimizers it belongs to
    predictions = {}
    for name in shown:
        chosen = sorted((r["C"], r["predicted"]) for r in rows if r["optimizer"] == name and r["lr"] == p["lr"][0])
        if chosen and all(v is not None for _, v in chosen):
            predictions.setdefault(tuple(chosen), []).append(_name(name, p["noise"]))
    for chosen, owners in predictions.items():
        plotting.theory(
            ax,
            [c for c, _ in chosen],
            [v for _, v in chosen],
            color="0.45",
            drawstyle="steps-mid",
            label=f"predicted: {', '.join(owners)}",
            zorder=2,
        )
    plotting.finish(
        ax,
        xlabel="constant $C$ of the counterexample",
        ylabel=f"final $x_T$, $T$ = {p['max_steps']}",
        title=f"where each ends, lr = {p['lr'][0]:g}$/\\sqrt{{t}}$",
        xscale="log",
        legend=False,
    )
    ax.set_ylim(-1.25, 1.25)
    ax.set_yticks([-1, 0, 1])
    _plain_ticks(ax.xaxis, _spread(sorted({r["C"] for r in rows})))
    plotting.legend_below(fig, ncols=2)
    return fig


def _spread(values, factor=1.5):
    """The values kept as tick labels: each at least ``factor`` above the last kept (labels never collide)."""
    kept = []
    for value in values:
        if not kept or value >= factor * kept[-1]:
            kept.append(value)
    return kept


def _plain_ticks(axis, values):
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    axis.set_major_locator(FixedLocator(values))
    axis.set_major_formatter(lambda value, _: f"{value:g}")
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def add_arguments(parser):
    _escape.add_common_arguments(parser, lr_help="comma-separated base learning rates (each scheduled as lr/sqrt(t))")
    parser.add_argument("--C", dest="C", type=float, default=None, help="the large gradient C (> 2) of the demo")
    parser.add_argument(
        "--sweep-C",
        dest="sweep_C",
        type=common.comma_list(float),
        default=None,
        help="values of C for the table and the limits figure",
    )


#: The figures, by name (the file stem, and what a preset's ``figure`` names): each draws one from a result.
FIGURES = {
    "amsgrad_trajectories": draw_trajectories,
    "amsgrad_regret": draw_regret,
    "amsgrad_limits": draw_limits,
}


if __name__ == "__main__":
    raise SystemExit(common.main(__name__))
