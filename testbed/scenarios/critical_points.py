"""Saddles in a real network: the index of critical points against their loss, and curvature along training.

After Dauphin et al. (2014), "Identifying and attacking the saddle point problem in high-dimensional non-convex
optimization", on a small tanh MLP (logits, softmax cross-entropy) trained full-batch on a subset of MNIST-1D
(Greydanus 2020), with the exact Hessian of the training loss (``testbed.curvature.dense_hessian``: one exact
Hessian-vector product per column, then ``np.linalg.eigh``):

- **Critical points.** From snapshots along SGD and Adam runs (and from the initialisation), damped Newton's
  method on the gradient (Delta = -H^-1 g with backtracking on ||g||) walks to a nearby critical point, minimum
  or saddle. Each point found (||g|| below ``grad_tol``: near-critical, see :func:`newton_to_critical_point`) gets
  its index alpha, the fraction
  of Hessian eigenvalues below -``eig_tol`` max|lambda|. Dauphin et al.'s claim: critical points of high loss are
  saddles of large index, those of low loss have alpha near 0; tested as Spearman's rank correlation between
  loss and index above ``CLAIM_RHO``.
- **Curvature along training.** The smallest and largest Hessian eigenvalues over the steps of SGD, Adam and
  saddle-free Newton (Delta = -(|H| + damping I)^-1 g, |H| from the eigendecomposition: Dauphin et al.'s
  method, exact at this size): SGD's plateaus sit where lambda_min < 0 (a saddle is passed), saddle-free Newton
  escapes them.
- **Slices.** The loss along the straight line from the initialisation to Adam's end point (Goodfellow, Vinyals
  & Saxe 2015) and on the plane of the two principal directions of Adam's path around its end point, with the
  path projected on it (Li et al. 2018).

Figures: ``critical_index_loss`` (index against loss of every critical point found), ``critical_extremes``
(lambda_min, lambda_max and the loss over the steps of each optimiser), ``critical_slices`` (the line and the plane).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .. import backend as backends
from .. import curvature, data, nn, optim, train, validation
from ..results import Result, Timer
from . import common

#: The full size: 520 parameters (one exact dense Hessian, 520 products on 200 rows, and its eigh take about
#: 0.15 s of CPU; saddle-free Newton needs one per step, Newton one or more per iteration).
DEFAULTS = dict(
    dataset="mnist1d",
    rows=200,
    hidden=10,
    activation="tanh",
    steps=300,
    snapshots=8,
    sgd_lr=0.5,
    adam_lr=0.01,
    sfn_lr=1.0,
    sfn_damping=0.1,
    newton_iterations=30,
    grad_tol=1e-2,
    eig_tol=1e-6,
    grid=21,
    seed=0,
    backend="cpu",
)
QUICK = dict(rows=100, hidden=6, steps=100, snapshots=5, newton_iterations=20, grid=9)
OPTIMIZERS = ("sgd", "adam", "saddle_free_newton")
#: Newton's step divides by |lambda| raised to this fraction of max|lambda| where smaller.
NEWTON_FLOOR = 1e-3
#: The claim: Spearman's rank correlation between the loss and the index of the critical points found.
CLAIM_RHO = 0.5


def validate(p):
    p = dict(p)
    for key in ("rows", "hidden", "steps", "snapshots", "newton_iterations", "grid"):
        p[key] = validation.check_positive_int(p[key], key)
    if p["snapshots"] < 2 or p["grid"] < 3:
        raise ValueError("snapshots must be at least 2 and grid at least 3")
    for key in ("sgd_lr", "adam_lr", "sfn_lr", "sfn_damping", "grad_tol", "eig_tol"):
        p[key] = validation.check_finite(p[key], key, minimum=0.0, strict=True)
    p["seed"] = validation.check_seed(p["seed"])
    if backends.resolve(p["backend"]) != "cpu":
        raise ValueError(
            f"backend must be 'cpu' for this scenario (the curvature products are CPU-only), got {p['backend']!r}"
        )
    return p


def _spectrum(net, x, y):
    """(eigenvalues ascending, eigenvectors, gradient, loss) at the net's parameters."""
    hessian = curvature.dense_hessian(net, x, y)
    loss = train.loss_and_grad(net, x, y)
    values, vectors = np.linalg.eigh(hessian)
    return values, vectors, net.grads.astype(np.float64), loss


def index_of(values, eig_tol):
    """The fraction of eigenvalues below -eig_tol max|lambda| (Dauphin et al.'s index alpha)."""
    return float(np.mean(values < -eig_tol * np.max(np.abs(values))))


def newton_to_critical_point(net, x, y, iterations, grad_tol):
    """Newton's method on the gradient, g(theta + Delta) = 0, from the net's parameters (changed in place).

    Delta = -sum_i (u_i . g) / lambda_i u_i over H's eigenpairs, with |lambda_i| raised to NEWTON_FLOOR
    max|lambda| (sign kept) where it is smaller; the step is halved (up to 5 times) until ||g|| decreases, and
    the run stops when it cannot or when ||g|| < ``grad_tol``. Newton's step is attracted to critical points of
    any index, saddles included (Dauphin et al. 2014), which is what is wanted here. Convergence is slow in the
    gradient-flat regions of Frye et al. (2019), so the points are near-critical: ||g|| is reported with each.
    Returns (eigenvalues, loss, ||g||) at the end.
    """
    values, vectors, grad, loss = _spectrum(net, x, y)
    norm = float(np.linalg.norm(grad))
    for _ in range(iterations):
        if norm < grad_tol:
            break
        floor = NEWTON_FLOOR * float(np.max(np.abs(values)))
        safe = np.where(np.abs(values) < floor, np.where(values < 0, -floor, floor), values)
        step = -vectors @ ((vectors.T @ grad) / safe)
        previous = net.params.copy()
        for _ in range(6):
            net.params[:] = previous + step.astype(net.dtype)
            new = _spectrum(net, x, y)
            new_norm = float(np.linalg.norm(new[2]))
            if np.isfinite(new_norm) and new_norm < norm:
                break
            step *= 0.5
        else:
            net.params[:] = previous
            break
        values, vectors, grad, loss = new
        norm = new_norm
    return values, loss, norm


def _train(net, x, y, name, p, record):
    """Full-batch training of ``net`` in place; (steps, loss, lambda_min, lambda_max, snapshots) at ``record``."""
    if name == "sgd":
        opt = optim.SGD(lr=p["sgd_lr"])
    elif name == "adam":
        opt = optim.Adam(lr=p["adam_lr"])
    else:
        opt = None
    state = opt.init(net.params) if opt is not None else None
    rows = []
    path = []
    for t in range(p["steps"] + 1):
        if t in record:
            values, vectors, grad, loss = _spectrum(net, x, y)
            rows.append((t, loss, values[0], values[-1], index_of(values, p["eig_tol"])))
            path.append(net.params.astype(np.float64))
        if t == p["steps"]:
            break
        if opt is not None:
            train.loss_and_grad(net, x, y)
            opt.step(net.params, net.grads, state)
        else:
            if t not in record:
                values, vectors, grad, _ = _spectrum(net, x, y)
            step = -vectors @ ((vectors.T @ grad) / (np.abs(values) + p["sfn_damping"]))
            net.params += (p["sfn_lr"] * step).astype(net.dtype)
    return np.array(rows), np.array(path)


def run(*, quick=False, progress=True, **params):
    p = validate(common.merge_params(DEFAULTS, QUICK, quick, params))
    dataset = data.load(p["dataset"], dtype=np.float64)
    rows = min(p["rows"], dataset.x_train.shape[0])
    x, y = dataset.x_train[:rows], dataset.y_train[:rows]
    widths = (dataset.features, p["hidden"], dataset.classes)
    start = nn.MLP(widths, p["activation"], bias=True, output="linear").initialize(
        "glorot_normal", seed=p["seed"], bias_var=0.01
    )
    record = sorted({int(round(s)) for s in np.linspace(0, p["steps"], p["snapshots"])})
    arrays, runs, paths = {}, {}, {}
    # small matrices: BLAS on one thread (measured here: eigh of 316 x 316 10x faster than on two)
    with Timer() as timer, train.blas_threads(1):
        for name in common.progress(OPTIMIZERS, desc="training", enabled=progress, unit="run"):
            net = nn.MLP(widths, p["activation"], bias=True, output="linear")
            net.params[:] = start.params
            runs[name], paths[name] = _train(net, x, y, name, p, set(record))
            arrays[f"curve_{name}"] = runs[name]
        points = []
        starts = [("init", 0, paths["sgd"][0])] + [
            (name, t, theta) for name in ("sgd", "adam") for t, theta in zip(record[1:], paths[name][1:])
        ]
        for origin, t, theta in common.progress(starts, desc="critical points", enabled=progress, unit="start"):
            net = nn.MLP(widths, p["activation"], bias=True, output="linear")
            net.params[:] = theta
            values, loss, norm = newton_to_critical_point(net, x, y, p["newton_iterations"], p["grad_tol"])
            points.append(
                dict(
                    origin=origin,
                    step=t,
                    loss=float(loss),
                    grad_norm=norm,
                    index=index_of(values, p["eig_tol"]),
                    critical=bool(norm < p["grad_tol"]),
                    lambda_min=float(values[0]),
                    lambda_max=float(values[-1]),
                )
            )
        found = [q for q in points if q["critical"]]
        rho = (
            float(stats.spearmanr([q["loss"] for q in found], [q["index"] for q in found]).statistic)
            if len(found) >= 3
            else math.nan
        )
        # slices around Adam's end point
        end = nn.MLP(widths, p["activation"], bias=True, output="linear")
        end.params[:] = paths["adam"][-1]
        line = curvature.slice_1d(
            end, x, y, paths["adam"][0], paths["adam"][-1], alphas=np.linspace(-0.25, 1.25, 4 * p["grid"])
        )
        directions, projected, ratios = curvature.pca_directions(paths["adam"])
        reach = 1.2 * float(np.max(np.abs(projected))) if np.max(np.abs(projected)) > 0 else 1.0
        grid = np.linspace(-reach, reach, p["grid"])
        plane = curvature.slice_2d(end, x, y, directions=directions, alphas=grid, betas=grid)
    arrays.update(
        line_alphas=line.alphas,
        line_loss=line.loss,
        plane_grid=grid,
        plane_loss=plane.loss,
        path_projected=projected,
        pca_ratios=ratios,
    )
    summary = dict(
        spearman_rho=rho,
        critical_points=len(found),
        starts=len(points),
        claim_rho=CLAIM_RHO,
        claim_holds=bool(rho > CLAIM_RHO),
        parameters=start.size,
        final_loss_sgd=float(runs["sgd"][-1, 1]),
        final_loss_adam=float(runs["adam"][-1, 1]),
        final_loss_saddle_free_newton=float(runs["saddle_free_newton"][-1, 1]),
    )
    result = Result(scenario="critical_points", params=p, summary=summary, arrays=arrays, tables=dict(points=points))
    result.wall_time = timer.seconds
    return result


def table(result):
    shown = [
        dict(
            origin=q["origin"],
            step=q["step"],
            loss=q["loss"],
            grad_norm=q["grad_norm"],
            index=q["index"],
            critical=q["critical"],
            lambda_min=q["lambda_min"],
            lambda_max=q["lambda_max"],
        )
        for q in result.tables["points"]
    ]
    s = result.summary
    return (
        common.format_table(shown, headers=dict(grad_norm="||g||", index="index alpha"))
        + f"\nSpearman rho(loss, index) over {s['critical_points']} critical points: {s['spearman_rho']:.3f} "
        f"(claim: > {s['claim_rho']}; {'holds' if s['claim_holds'] else 'does NOT hold'}); {s['parameters']} "
        f"parameters"
    )


def draw_index_loss(result):
    """The index (share of negative Hessian eigenvalues) of each near-critical point against its loss (Dauphin et al.
    2014), marked by where its Newton search started."""
    from .. import plotting

    points = [q for q in result.tables["points"] if q["critical"]]
    fig, ax = plotting.figure(figsize=(3.25, 2.6))
    for index, origin in enumerate(("init", "sgd", "adam")):
        chosen = [q for q in points if q["origin"] == origin]
        if chosen:
            ax.scatter(
                [q["loss"] for q in chosen],
                [q["index"] for q in chosen],
                s=14,
                color=plotting.color(index),
                marker=plotting.marker(index),
                label="from the initialisation" if origin == "init" else f"from {plotting.paper_name(origin)}'s path",
            )
    plotting.finish(
        ax,
        xlabel="training loss at the critical point",
        ylabel="index (fraction of $\\lambda<0$)",
        title=f"Spearman $\\rho$ = {result.summary['spearman_rho']:.2f}",
    )
    return fig


def draw_extremes(result):
    """The loss and the smallest and largest exact Hessian eigenvalues over the steps of each optimizer."""
    from .. import plotting

    fig, axes = plotting.figure(1, 3, figsize=(6.75, 2.4))
    for index, name in enumerate(OPTIMIZERS):
        curve = result.arrays[f"curve_{name}"]
        label = plotting.paper_name(name)
        axes[0].plot(curve[:, 0], curve[:, 1], color=plotting.color(index), label=label)
        axes[1].plot(
            curve[:, 0],
            curve[:, 2],
            color=plotting.color(index),
            marker=plotting.marker(index),
            markersize=3,
            label=label,
        )
        axes[2].plot(
            curve[:, 0],
            curve[:, 3],
            color=plotting.color(index),
            marker=plotting.marker(index),
            markersize=3,
            label=label,
        )
    axes[1].axhline(0.0, color="0.5", linewidth=0.8)
    plotting.finish(axes[0], xlabel="step", ylabel="training loss", yscale="log")
    plotting.finish(axes[1], xlabel="step", ylabel="$\\lambda_{min}$", legend=False)
    plotting.finish(axes[2], xlabel="step", ylabel="$\\lambda_{max}$", legend=False)
    return fig


def draw_slices(result):
    """The loss along the line from the initialisation to Adam's end point (Goodfellow et al. 2015) and on the
    plane of the two principal directions of Adam's path (Li et al. 2018)."""
    from .. import plotting

    fig, axes = plotting.figure(1, 2, figsize=(6.75, 2.7))
    axes[0].plot(result.arrays["line_alphas"], result.arrays["line_loss"], color=plotting.color(0))
    for a in (0.0, 1.0):
        axes[0].axvline(a, color="0.6", linewidth=0.8, linestyle=":")
    plotting.finish(
        axes[0], xlabel="$a$ in $(1-a)\\theta_{init} + a\\,\\theta_{Adam}$", ylabel="training loss", legend=False
    )
    grid = result.arrays["plane_grid"]
    levels = np.quantile(result.arrays["plane_loss"], np.linspace(0.0, 1.0, 15))
    contour = axes[1].contour(grid, grid, result.arrays["plane_loss"].T, levels=np.unique(levels), linewidths=0.8)
    labels = axes[1].clabel(contour, contour.levels[::2], fontsize=7, fmt="%.2f")
    _drop_labels_at_the_edge(fig, axes[1], labels)
    path = result.arrays["path_projected"]
    axes[1].plot(path[:, 0], path[:, 1], color="k", marker="o", markersize=3, linewidth=1.0)
    ratios = result.arrays["pca_ratios"]
    plotting.finish(
        axes[1],
        xlabel=f"PC 1 ({100 * ratios[0]:.0f}% of the path)",
        ylabel=f"PC 2 ({100 * ratios[1]:.0f}%)",
        legend=False,
    )
    return fig


#: Contour labels closer than this to the edge of their axes (points) are dropped: they could run off the page.
LABEL_MARGIN_PT = 4.0


def _drop_labels_at_the_edge(fig, ax, labels):
    """Remove the contour labels that do not lie inside ``ax`` with LABEL_MARGIN_PT to spare (matplotlib places
    them along the lines, some at the border, where a label can stick out of the page)."""
    from .. import plotting

    renderer = plotting._renderer(fig)
    margin = LABEL_MARGIN_PT * fig.dpi / 72.0
    frame = ax.get_window_extent(renderer)
    for label in labels:
        box = label.get_window_extent(renderer)
        if (
            box.x0 < frame.x0 + margin
            or box.x1 > frame.x1 - margin
            or box.y0 < frame.y0 + margin
            or box.y1 > frame.y1 - margin
        ):
            label.remove()


#: The figures, by name (the file stem, and what a preset's ``figure`` names): each draws one from a result.
FIGURES = {
    "critical_index_loss": draw_index_loss,
    "critical_extremes": draw_extremes,
    "critical_slices": draw_slices,
}


if __name__ == "__main__":
    raise SystemExit(common.main(__name__))
