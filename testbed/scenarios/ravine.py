"""Ravines: gradient descent oscillates across them; momentum "avoids the oscillation" and gains a sqrt(kappa).

On the ravine ``f = 1/2 (x^2 + kappa y^2)`` (condition number kappa, :func:`testbed.landscapes.ravine`, start
(1, 1)) gradient descent multiplies the steep coordinate by ``1 - lr kappa`` per step: it oscillates across the
ravine when ``lr kappa > 1`` and diverges when ``lr kappa > 2``. Its best rate, at ``lr = 2/(1 + kappa)``, is
``(kappa - 1)/(kappa + 1)``: about kappa/2 steps per e-fold. The heavy ball at Goh's parameters
``lr = (2/(1 + sqrt(kappa)))^2``, ``mu = ((sqrt(kappa) - 1)/(sqrt(kappa) + 1))^2`` contracts by
``(sqrt(kappa) - 1)/(sqrt(kappa) + 1)`` per step: sqrt(kappa)/2 steps per e-fold (Polyak 1964; Goh 2017, "Why
momentum really works", Distill). The lecture's running average ``v = b v + (1-b) g`` is the heavy ball with
``lr (1-b)``, run here at the equivalent parameters.

Figures: ``ravine_paths`` (the paths across the ravine, ``x`` the shallow and ``y`` the steep coordinate, and
the distance to the minimum ``|w_t| = sqrt(x_t^2 + y_t^2)`` against the step over its exact closed form, dashed),
``ravine_lr`` (steps to tolerance of gradient descent against ``lr kappa``; a run that diverges is marked at the
step of its first overflow), ``ravine_steps`` (steps to tolerance against kappa at the optimal parameters,
theory from the rates dashed: ~kappa for GD, ~sqrt(kappa) for momentum) and ``ravine_rate`` (the measured
contraction per step, ``1 - rate``, against kappa). The table gives, per run, the measured and predicted rate
and steps, and whether the run diverged (a divergent run is reported as diverged, never as a number).
"""

from __future__ import annotations

import math

import numpy as np

from .. import landscapes, montecarlo, validation
from ..results import Result, Timer
from ..theory import escape as theory
from . import _escape, common

DEFAULTS = dict(
    optimizers=["sgd", "heavy_ball", "momentum"],
    kappas=[10.0, 30.0, 100.0, 300.0, 1000.0],
    tolerance=1e-6,
    demo_kappa=100.0,
    lr=[0.005, 0.01, 0.015, 0.019, 0.0199, 0.0201, 0.021, 0.025],
    noise=0.0,
    trials=1,
    path_steps=40,
    demo_lr_kappa=1.9,
    demo_mu=0.5,
    max_steps=200_000,
    seed=0,
    backend="cpu",
)
QUICK = dict(kappas=[10.0, 100.0, 1000.0], lr=[0.005, 0.015, 0.019, 0.021, 0.025])

#: Optimizers with a known optimal tuning on a quadratic (the kappa sweep runs each at its optimum).
TUNED = ("sgd", "heavy_ball", "momentum")
#: The measured rate is (|w_T| / |w_t0|)^(1/(T - t0)) over the last RATE_WINDOW fraction of the run.
RATE_WINDOW = 0.75


#: Largest condition number accepted: 1 - rate = 2/(kappa + 1) must be far above the double-precision epsilon.
MAX_KAPPA = 1e12


def validate(p):
    p = _escape.common_checks(dict(p))
    p["optimizers"] = _escape.check_list(p["optimizers"], "optimizers", _escape.optimizer_name)
    for name in p["optimizers"]:
        if name not in TUNED:
            raise ValueError(
                f"optimizers: the ravine runs optimizers at their optimal tuning, known for "
                f"{', '.join(TUNED)}; got {name!r}"
            )
    p["kappas"] = _escape.positive_list(p["kappas"], "kappas")
    if min(p["kappas"]) <= 1.0:
        raise ValueError("kappas must exceed 1 (the condition number of a ravine)")
    for key, values in (("kappas", p["kappas"]), ("demo_kappa", [p["demo_kappa"]])):
        if max(values) > MAX_KAPPA:
            raise ValueError(
                f"{key} must be at most {MAX_KAPPA:g} (beyond, the contraction (kappa - 1)/(kappa + 1) "
                f"and the tuned momentum round to 1 in double precision), got {max(values):g}"
            )
    p["lr"] = _escape.positive_list(p["lr"], "lr")
    p["tolerance"] = validation.check_finite(p["tolerance"], "tolerance", minimum=0.0, strict=True)
    p["demo_kappa"] = validation.check_finite(p["demo_kappa"], "demo_kappa", minimum=1.0, strict=True)
    p["path_steps"] = validation.check_positive_int(p["path_steps"], "path_steps")
    p["demo_lr_kappa"] = validation.check_finite(p["demo_lr_kappa"], "demo_lr_kappa", minimum=0.0, strict=True)
    p["demo_mu"] = validation.check_unit_interval(p["demo_mu"], "demo_mu")
    return p


def tuned(name, kappa):
    """(lr, mu, predicted rate) of optimizer ``name`` at its optimum on the ravine with eigenvalues 1, kappa."""
    if name == "sgd":
        return theory.gd_optimal_lr(1.0, kappa), 0.0, theory.gd_optimal_rate(kappa)
    lr, mu, rate = theory.heavy_ball_optimal(1.0, kappa)
    if name == "momentum":
        return lr / (1.0 - mu), mu, rate  # the running average with lr (1 - b) = the heavy ball's lr
    return lr, mu, rate


def _path_key(lr, kappa):
    """Array name of GD's short path at this lr (names allow no dots: lr*kappa in thousandths)."""
    return f"path_sgd_lrkappa{int(round(lr * kappa * 1e4))}e-4"


def _measured_rate(path, steps):
    """(|w_T| / |w_t0|)^(1/(T - t0)) over the last RATE_WINDOW of the recorded trajectory (steps: its step numbers)."""
    norms = np.linalg.norm(path, axis=1)
    keep = np.flatnonzero(np.isfinite(norms) & (norms > 0))
    if keep.size < 4:
        return None, None
    end = keep[-1]
    start = keep[np.searchsorted(steps[keep], steps[end] * (1.0 - RATE_WINDOW))]
    if steps[end] - steps[start] < 2:
        return None, None
    window = (int(steps[start]), int(steps[end]))
    return float((norms[end] / norms[start]) ** (1.0 / (window[1] - window[0]))), window


def theory_window_rate(name, lr, mu, kappa, start, window):
    """The exact closed form's contraction per step over the same window (t0, T) as the measurement."""
    t = np.array(window, dtype=float)
    if name == "sgd":
        distance = theory.gd_distance(t, lr, [1.0, kappa], start)
    else:
        heavy_lr = lr * (1.0 - mu) if name == "momentum" else lr
        distance = theory.heavy_ball_distance(t, heavy_lr, mu, [1.0, kappa], start)
    return float((distance[1] / distance[0]) ** (1.0 / (window[1] - window[0])))


def theory_steps(name, lr, mu, kappa, tolerance, start):
    """Exact steps to |w| < tolerance of GD / heavy ball / running average from ``start`` (closed forms)."""
    if name == "sgd":
        return theory.gd_steps_to_tolerance(lr, [1.0, kappa], start, tolerance)
    heavy_lr = lr * (1.0 - mu) if name == "momentum" else lr
    return theory.heavy_ball_steps_to_tolerance(heavy_lr, mu, [1.0, kappa], start, tolerance)


def _run(p, f, name, lr, mu, criterion, max_steps, seed_offset, record_every=1):
    opt = _escape.make_optimizer(name, lr, mu=mu)
    return montecarlo.escape_times(
        f,
        opt,
        trials=p["trials"],
        noise=p["noise"],
        criterion=criterion,
        radius=p["tolerance"],
        max_steps=max_steps,
        seed=p["seed"] + seed_offset,
        backend=p["backend"],
        record=1,
        record_every=record_every,
    )


def run(*, quick=False, progress=True, **params):
    p = validate(common.merge_params(DEFAULTS, QUICK, quick, params))
    rows, arrays = [], {}
    jobs = [("kappa", name, kappa) for kappa in p["kappas"] for name in p["optimizers"]]
    jobs += [("lr", "sgd", lr) for lr in p["lr"]]
    jobs += [("path", name, None) for name in p["optimizers"]]
    jobs += [("damped", name, None) for name in p["optimizers"]]
    with Timer() as timer:
        for index, (kind, name, value) in enumerate(common.progress(jobs, desc="ravine", enabled=progress, unit="run")):
            kappa = value if kind == "kappa" else p["demo_kappa"]
            f = landscapes.ravine(kappa=kappa)
            if kind == "kappa":
                lr, mu, rate = tuned(name, kappa)
                predicted_steps = theory_steps(name, lr, mu, kappa, p["tolerance"], f.start)
                budget = int(min(p["max_steps"], max(100, 20 * predicted_steps)))
                result = _run(
                    p,
                    f,
                    name,
                    lr,
                    mu,
                    "converge",
                    budget,
                    index,
                    record_every=max(1, budget // montecarlo.MAX_RECORD_POINTS),
                )
                path = result.trajectories[0]
                steps, escaped, diverged = _escape.escape_summary(result)
                measured_rate, window = _measured_rate(path, result.trajectory_steps)
                rows.append(
                    dict(
                        kind=kind,
                        optimizer=name,
                        kappa=kappa,
                        lr=lr,
                        mu=mu,
                        lr_kappa=lr * kappa,
                        steps=steps,
                        theory_steps=predicted_steps,
                        rate=measured_rate,
                        window_rate=None
                        if window is None
                        else theory_window_rate(name, lr, mu, kappa, f.start, window),
                        theory_rate=rate,
                        converged=escaped,
                        diverged=diverged,
                    )
                )
            elif kind == "lr":
                lr = value
                rate = theory.gd_rate(lr, [1.0, kappa])
                predicted_steps = theory.gd_steps_to_tolerance(
                    lr, [1.0, kappa], f.start, p["tolerance"], max_steps=p["max_steps"]
                )
                budget = (
                    p["max_steps"]
                    if not math.isfinite(predicted_steps)
                    else int(min(p["max_steps"], max(100, 20 * predicted_steps)))
                )
                result = _run(
                    p,
                    f,
                    "sgd",
                    lr,
                    0.0,
                    "converge",
                    budget,
                    index,
                    record_every=max(1, budget // montecarlo.MAX_RECORD_POINTS),
                )
                steps, escaped, diverged = _escape.escape_summary(result)
                rows.append(
                    dict(
                        kind=kind,
                        optimizer="sgd",
                        kappa=kappa,
                        lr=lr,
                        mu=0.0,
                        lr_kappa=lr * kappa,
                        steps=steps,
                        theory_steps=None if not math.isfinite(predicted_steps) else predicted_steps,
                        rate=None,
                        theory_rate=rate,
                        converged=escaped,
                        diverged=diverged,
                        oscillates=theory.gd_oscillates(lr, kappa),
                        diverges=theory.gd_diverges(lr, kappa),
                        diverged_at=int(result.steps[0]) if diverged else None,
                    )
                )
                short = _run(p, f, "sgd", lr, 0.0, "none", p["path_steps"], index)
                arrays[_path_key(lr, kappa)] = short.trajectories[0]
            elif kind == "path":
                lr, mu, _ = tuned(name, kappa)
                short = _run(p, f, name, lr, mu, "none", p["path_steps"], index)
                arrays[f"path_{name}_tuned"] = short.trajectories[0]
            else:  # the same lr as GD's zig-zag, with momentum demo_mu: does the averaging damp it?
                lr, mu = p["demo_lr_kappa"] / kappa, p["demo_mu"] if name != "sgd" else 0.0
                long = _run(p, f, name, lr, mu, "none", max(p["path_steps"], 400), index)
                y = long.trajectories[0][:, 1]
                y = y[np.isfinite(y)]
                flips = float(np.mean(np.sign(y[1:]) != np.sign(y[:-1])))
                heavy_lr = lr * (1.0 - mu) if name == "momentum" else lr
                rows.append(
                    dict(
                        kind="damping",
                        optimizer=name,
                        kappa=kappa,
                        lr=lr,
                        mu=mu,
                        lr_kappa=lr * kappa,
                        sign_flips=flips,
                        theory_sign_flips=theory.sign_flip_fraction(heavy_lr, mu, kappa),
                        y_rate=theory.heavy_ball_rate(heavy_lr, mu, [kappa]),
                        steps=None,
                        theory_steps=None,
                        rate=None,
                        theory_rate=None,
                        converged=False,
                        diverged=long.n_diverged,
                    )
                )
                arrays[f"path_{name}_demo"] = long.trajectories[0][: p["path_steps"] + 1]
    summary = _summary(rows, p)
    result = Result(scenario="ravine", params=p, summary=summary, arrays=arrays, tables=dict(runs=rows))
    result.wall_time = timer.seconds
    return result


def _summary(rows, p):
    out = {}
    for name in p["optimizers"]:
        chosen = [r for r in rows if r["kind"] == "kappa" and r["optimizer"] == name and r["steps"] is not None]
        if len(chosen) >= 2:
            slope = np.polyfit(np.log([r["kappa"] for r in chosen]), np.log([r["steps"] for r in chosen]), 1)[0]
            out[f"steps_kappa_slope_{name}"] = float(slope)
    out["diverged_lr_kappa"] = [r["lr_kappa"] for r in rows if r["kind"] == "lr" and r["diverged"]]
    out["predicted_divergent_lr_kappa"] = [r["lr_kappa"] for r in rows if r["kind"] == "lr" and r["diverges"]]
    return out


# ------------------------------------------------------------------------------------------------------------------
# output


def table(result):
    shown, damping = [], []
    for r in result.tables["runs"]:
        if r["kind"] == "damping":
            damping.append(
                dict(
                    optimizer=r["optimizer"],
                    lr_kappa=r["lr_kappa"],
                    mu=r["mu"],
                    flips=r["sign_flips"],
                    theory_flips=r["theory_sign_flips"],
                    y_rate=r["y_rate"],
                )
            )
            continue
        outcome = "diverged" if r["diverged"] else ("converged" if r["converged"] else "censored")
        shown.append(
            dict(
                sweep=r["kind"],
                optimizer=r["optimizer"],
                kappa=r["kappa"],
                lr_kappa=r["lr_kappa"],
                mu=r["mu"],
                outcome=outcome,
                steps=r["steps"],
                theory_steps=r["theory_steps"],
                rate=r["rate"],
                window_rate=r.get("window_rate"),
                theory_rate=r["theory_rate"],
            )
        )
    text = common.format_table(
        shown,
        headers=dict(
            lr_kappa="lr*kappa",
            steps="steps to tol",
            theory_steps="theory steps",
            rate="measured rate",
            window_rate="theory, same window",
            theory_rate="asymptotic rate",
        ),
    )
    text += (
        "\n(the rate is measured over the last 3/4 of the run; at Goh's optimum the double root adds a factor"
        " (1 + c t), so the exact closed form over the same window sits slightly above the asymptotic rate)"
    )
    if damping:
        text += "\n\nThe zig-zag at GD's oscillating lr, with and without momentum (same lr):\n"
        text += common.format_table(
            damping,
            headers=dict(
                lr_kappa="lr*kappa",
                flips="sign flips of y / step",
                theory_flips="theory theta/pi",
                y_rate="|y| contraction per step (theory)",
            ),
        )
    slopes = ", ".join(
        f"{k[len('steps_kappa_slope_') :]}: {v:.2f}"
        for k, v in result.summary.items()
        if k.startswith("steps_kappa_slope_")
    )
    return (
        text + f"\n\nlog-log slope of steps to tolerance vs kappa (theory: gd 1, momentum 1/2): {slopes}"
        f"\nGD diverged at lr*kappa = {result.summary['diverged_lr_kappa']} "
        f"(theory: above 2: {result.summary['predicted_divergent_lr_kappa']})"
    )


def draw_paths(result):
    """The first steps from (1, 1) over the ravine's contours (left) and the distance to the minimum against the
    step beside the exact closed form (right): GD zig-zags when lr kappa > 1, momentum damps it."""
    from .. import plotting

    p = result.params
    kappa = p["demo_kappa"]

    fig, (ax_path, ax_dist) = plotting.figure(1, 2, width="page", height=2.7)
    start = landscapes.ravine(kappa).start
    slow = [lr for lr in p["lr"] if lr * kappa < 1.0 and _path_key(lr, kappa) in result.arrays]
    series = []  # (array key, label, heavy-ball lr, mu) of each path drawn
    if slow:
        series.append((_path_key(slow[0], kappa), f"GD, lr$\\,\\kappa$ = {slow[0] * kappa:.3g}", slow[0], 0.0))
    demo_lr = p["demo_lr_kappa"] / kappa
    if "path_sgd_demo" in result.arrays:
        series.append(("path_sgd_demo", f"GD, lr$\\,\\kappa$ = {p['demo_lr_kappa']:g} (zig-zag)", demo_lr, 0.0))
    if "path_momentum_demo" in result.arrays:
        series.append(
            (
                "path_momentum_demo",
                f"running-average momentum, $b$ = {p['demo_mu']:g}, same lr",
                demo_lr * (1.0 - p["demo_mu"]),
                p["demo_mu"],
            )
        )
    for name in p["optimizers"]:
        if name != "sgd" and f"path_{name}_tuned" in result.arrays:
            lr, mu, _ = tuned(name, kappa)
            series.append(
                (
                    f"path_{name}_tuned",
                    f"heavy ball at Goh's optimum ($\\mu$ = {mu:.3g})",
                    lr * (1.0 - mu) if name == "momentum" else lr,
                    mu,
                )
            )
            break  # heavy ball and running average coincide at the optimum: draw one
    ymax = 1.0
    for index, (key, label, heavy_lr, mu) in enumerate(series):
        path = result.arrays[key][: p["path_steps"] + 1]
        keep = np.all(np.isfinite(path), axis=1)
        if not key.endswith("_tuned"):  # Goh's optimum swings far across (|y| ~ 4): only in the right panel
            ymax = max(ymax, float(np.max(np.abs(path[keep, 1]))))
            ax_path.plot(
                path[keep, 0],
                path[keep, 1],
                marker=plotting.marker(index),
                markersize=2.5,
                color=plotting.color(index),
                linewidth=0.8,
            )
        steps = np.arange(path.shape[0])[keep]
        plotting.measured(
            ax_dist,
            steps,
            np.linalg.norm(path[keep], axis=1),
            color=plotting.color(index),
            marker=plotting.marker(index),
            markersize=2.5,
            label=label,
        )
        dense = np.arange(steps.max() + 1)
        plotting.theory(
            ax_dist,
            dense,
            theory.heavy_ball_distance(dense, heavy_lr, mu, [1.0, kappa], start),
            color=plotting.color(index),
            linewidth=0.9,
        )
    xx, yy = np.meshgrid(np.linspace(-0.2, 1.2, 200), np.linspace(-1.1 * ymax, 1.1 * ymax, 200))
    ax_path.contour(
        xx,
        yy,
        0.5 * (xx**2 + kappa * yy**2),
        levels=np.geomspace(0.005, 0.5 * kappa * ymax**2, 12),
        colors="0.8",
        linewidths=0.5,
    )
    ax_path.plot([0], [0], marker="+", color="black", markersize=7, linestyle="none")
    ax_dist.plot([], [], "--", color="gray", label="exact closed form")
    plotting.finish(
        ax_path,
        xlabel="$x$ (shallow coordinate, curvature 1)",
        ylabel=f"$y$ (steep, curvature $\\kappa$ = {kappa:g})",
        title=f"first {p['path_steps']} steps from $(1, 1)$; + minimum",
        legend=False,
    )
    ax_path.set_xlim(-0.2, 1.2)
    ax_path.set_ylim(-1.1 * ymax, 1.1 * ymax)
    plotting.finish(
        ax_dist,
        xlabel="step $t$",
        ylabel="distance to the minimum $|w_t|$",
        yscale="log",
        title="markers measured, lines theory",
        legend=False,
    )
    plotting.legend_below(fig, ncols=3, source=ax_dist)
    return fig


def draw_lr(result):
    """GD's steps to tolerance against lr lambda_max: fewer steps up to the zig-zag region, divergence beyond 2,
    theory dashed."""
    from .. import plotting

    p = result.params
    rows = result.tables["runs"]
    kappa = p["demo_kappa"]

    fig, ax = plotting.figure(height=2.6)
    chosen = [r for r in rows if r["kind"] == "lr"]
    ok = [r for r in chosen if r["steps"] is not None]
    bad = [r for r in chosen if r["diverged"]]
    lowest = min(r["lr_kappa"] for r in chosen)
    ax.axvspan(1.0, 2.0, color="0.93", zorder=0, linewidth=0)
    ax.axvspan(2.0, max(2.6, max(r["lr_kappa"] for r in chosen) + 0.1), color="#F6D5C5", zorder=0, linewidth=0)
    plotting.measured(
        ax,
        [r["lr_kappa"] for r in ok],
        [r["steps"] for r in ok],
        label=f"GD, steps to $|w| < ${p['tolerance']:g}",
        color=plotting.color(0),
    )
    dense = np.linspace(lowest, 1.999, 300)
    start = landscapes.ravine(kappa).start
    predicted = [theory.gd_steps_to_tolerance(v / kappa, [1.0, kappa], start, p["tolerance"]) for v in dense]
    plotting.theory(
        ax, dense, predicted, label=r"theory, $|w_0 (1 - \mathrm{lr}\,\lambda)^t|$", color=plotting.color(0)
    )
    if bad:
        plotting.measured(
            ax,
            [r["lr_kappa"] for r in bad],
            [r["diverged_at"] for r in bad],
            marker="x",
            color=plotting.color(1),
            markersize=6,
            markeredgewidth=1.3,
            label="diverged: step of the first overflow",
        )
    for r in chosen:  # the runs next to lr lambda_max = 2 are told apart by their value
        if abs(r["lr_kappa"] - 2.0) < 0.05:
            y = r["steps"] if r["steps"] is not None else r["diverged_at"]
            ax.annotate(
                f"{r['lr_kappa']:.3g}",
                (r["lr_kappa"], y),
                textcoords="offset points",
                xytext=(-4 if r["lr_kappa"] < 2 else 4, 5),
                ha="right" if r["lr_kappa"] < 2 else "left",
                fontsize=7,
                color="0.25",
            )
    top = max([r["steps"] for r in ok] + [r["diverged_at"] or 0 for r in bad] + predicted)
    bottom = min([r["steps"] for r in ok] + [r["diverged_at"] for r in bad] + predicted)
    ax.set_yscale("log")
    ax.set_ylim(bottom / 2, top * 8)
    ax.set_xlim(lowest - 0.1, max(2.6, max(r["lr_kappa"] for r in chosen) + 0.1))
    ax.text(1.5, top * 3, "zig-zags", fontsize=7, color="0.3", ha="center")
    ax.text(2.3, top * 3, "diverges", fontsize=7, color="0.3", ha="center")
    plotting.finish(
        ax,
        xlabel=r"lr $\times \lambda_{\max}$",
        ylabel="steps",
        title=f"GD on the ravine, $\\kappa$ = {kappa:g}",
        yscale="log",
        legend=False,
    )
    plotting.legend_below(fig, ncols=1)
    return fig


def _kappa_rows(result, name):
    """The rows of the kappa sweep of optimizer ``name`` and their kappas."""
    chosen = [r for r in result.tables["runs"] if r["kind"] == "kappa" and r["optimizer"] == name]
    return chosen, np.array([r["kappa"] for r in chosen])


def _kappa_style(index):
    """Marker size and face of series ``index``: heavy ball and running-average momentum coincide at the optimum,
    so the later one is drawn open and larger."""
    size, face = (3.5, None) if index < 2 else (5.5, "none")
    return dict(markersize=size, **({} if face is None else dict(markerfacecolor=face)))


def _kappa_label(name, p):
    from .. import plotting

    return "GD" if name == "sgd" and p["noise"] == 0 else plotting.paper_name(name)


def draw_steps(result):
    """Steps to tolerance against the condition number kappa at each optimizer's optimal tuning (Goh 2017), the
    exact closed form dashed."""
    from .. import plotting

    p = result.params
    fig, ax = plotting.figure(height=2.6)
    for index, name in enumerate(p["optimizers"]):
        chosen, kappas = _kappa_rows(result, name)
        plotting.measured(
            ax,
            kappas,
            _escape.as_array(r["steps"] for r in chosen),
            label=_kappa_label(name, p),
            color=plotting.color(index),
            marker=plotting.marker(index),
            **_kappa_style(index),
        )
        dense = np.geomspace(kappas.min(), kappas.max(), 60)
        plotting.theory(
            ax,
            dense,
            [theory_steps(name, *tuned(name, k)[:2], k, p["tolerance"], landscapes.ravine(k).start) for k in dense],
            color=plotting.color(index),
        )
    ax.plot([], [], "--", color="gray", label="theory (exact closed form)")
    plotting.finish(
        ax,
        xlabel=r"condition number $\kappa$",
        ylabel=f"steps to $|w| <$ {p['tolerance']:g}",
        title="at the optimal tuning (Goh 2017)",
        xscale="log",
        yscale="log",
        legend=False,
    )
    plotting.legend_below(fig, ncols=2, source=ax)
    return fig


def draw_rate(result):
    """The measured 1 - contraction per step against kappa at each optimizer's optimal tuning, beside 2/(kappa+1)
    and 2/(sqrt kappa + 1) (dashed)."""
    from .. import plotting

    p = result.params
    fig, ax = plotting.figure(height=2.6)
    for index, name in enumerate(p["optimizers"]):
        chosen, kappas = _kappa_rows(result, name)
        plotting.measured(
            ax,
            kappas,
            1.0 - _escape.as_array(r["rate"] for r in chosen),
            label=_kappa_label(name, p),
            color=plotting.color(index),
            marker=plotting.marker(index),
            **_kappa_style(index),
        )
        dense = np.geomspace(kappas.min(), kappas.max(), 60)
        rates = np.array([tuned(name, k)[2] for k in dense])
        plotting.theory(ax, dense, 1.0 - rates, color=plotting.color(index))
    ax.plot([], [], "--", color="gray", label="theory (asymptotic rate)")
    plotting.finish(
        ax,
        xlabel=r"condition number $\kappa$",
        ylabel="1 $-$ contraction per step",
        title=r"$2/(\kappa+1)$ and $2/(\sqrt{\kappa}+1)$",
        xscale="log",
        yscale="log",
        legend=False,
    )
    plotting.legend_below(fig, ncols=2, source=ax)
    return fig


def add_arguments(parser):
    _escape.add_common_arguments(
        parser, lr_help="comma-separated learning rates of GD's sweep on the demo ravine (divergence beyond 2/kappa)"
    )
    parser.add_argument("--kappas", type=common.comma_list(float), default=None, help="condition numbers")
    parser.add_argument(
        "--demo-kappa", dest="demo_kappa", type=float, default=None, help="kappa of the paths and of the --lr sweep"
    )
    parser.add_argument("--tolerance", type=float, default=None, help="|w - w*| that counts as converged")


#: The figures, by name (the file stem, and what a preset's ``figure`` names): each draws one from a result.
FIGURES = {
    "ravine_paths": draw_paths,
    "ravine_lr": draw_lr,
    "ravine_steps": draw_steps,
    "ravine_rate": draw_rate,
}


if __name__ == "__main__":
    raise SystemExit(common.main(__name__))
