"""Trainability against depth: the largest depth SGD can train is set by the correlation depth scale xi_c.

Schoenholz, Gilmer, Ganguli & Sohl-Dickstein (2017), "Deep information propagation", their figure 5: tanh MLPs
with weights N(0, sigma_w^2 / fan_in) and biases N(0, sigma_b^2) are trained for a fixed budget of SGD steps over a
grid of (sigma_w^2, depth). A net trains only when the correlation between two inputs survives to the output
(and, by the same mean-field argument, the gradient survives back to the input): to a depth of a few xi_c, where
``1/xi_c = -ln chi_c`` (:func:`testbed.theory.signal.mean_field`). xi_c diverges at the order-to-chaos line
(chi_1 = 1, sigma_w^2 ~ 1.76 at sigma_b^2 = 0.05) and falls off on both sides, so the trainable region is a band
around the critical point whose edge follows ``c xi_c``; their constant is c ~ 6 after many steps.

Here every net is trained on the bundled MNIST-1D (10 classes, 40 features) by plain SGD through
:func:`testbed.train.fit_many` (the nets of one depth share a shape, so each depth is one call: one net per
(sigma_w^2, seed)). A net's final loss is the mean training loss over the last ``FINAL_SHARE`` of its steps; it
is **trainable** when that loss lies below ``ln 10 - margin`` (the chance level ln K is what a net that never
moves its prediction off the class frequencies keeps: see ``margin`` below). The **trainable depth** of one
sigma_w^2 is the largest grid depth up to which every depth trains (:func:`trainable_depth`); the table puts it
beside xi_c and their ratio.

With a short budget the constant differs between the phases. Measured with the defaults (300 steps, seed 0):
trainable depth / xi_c = 7.4 to 10.9 in the ordered phase (sigma_w^2 0.6 to 1.2) and 2.5 to 4.0 in the chaotic
one (2.25 to 8): the deep ordered nets, whose gradients only vanish, still creep along, while the chaotic ones,
whose gradients grow as chi_1^L, stall earlier at the same xi_c. Near the critical point xi_c diverges and the
step budget, not xi_c, limits the depth (the ratio falls towards 0 there).

Figure ``trainability_depth``: the heat map of the final training loss over (sigma_w^2, depth) with the
``6 xi_c`` curve of the theory and the measured trainable depths drawn over it; beside it the ratio
trainable depth / xi_c against sigma_w^2 (its bar: the grid's resolution, the next depth up failed).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend as backends
from .. import data as datasets
from .. import nn, optim, train
from ..results import Result, Timer
from ..theory import signal
from . import common

#: Schoenholz et al. 2017's constant: nets train to about this many correlation depth scales.
SCHOENHOLZ_C = 6.0
#: The share of the last steps whose mean training loss is a net's final loss (minibatch noise averages out).
FINAL_SHARE = 0.1
#: Points of the theory curve xi_c(sigma_w^2) across the grid's range.
THEORY_POINTS = 400

DEFAULTS = dict(
    dataset="mnist1d",
    activation="tanh",
    sigma_w2=[0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.76, 2.0, 2.25, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0],
    sigma_b2=0.05,
    depths=[6, 9, 12, 16, 20, 25, 30, 36, 44, 52, 60],
    width=32,
    steps=300,
    batch=128,
    lr=0.1,
    margin=0.1,
    seeds=1,
    seed=0,
    backend="cpu",
)
QUICK = dict(sigma_w2=[0.8, 1.2, 1.76, 3.0, 6.0], depths=[8, 16, 24, 32, 48], steps=150)
FIGURES = ("trainability_depth",)


def validate(p):
    p = dict(p)
    if not isinstance(p["dataset"], str) or p["dataset"] not in datasets.DATASETS:
        raise backends.unknown_name_error("dataset", p["dataset"], tuple(datasets.DATASETS))
    if p["activation"] != "tanh":
        raise ValueError(f"activation must be 'tanh' (the study of Schoenholz et al. 2017), got {p['activation']!r}")
    p["sigma_w2"] = sorted(
        backends.check_finite(v, "sigma_w2", minimum=0.0, strict=True)
        for v in common.check_list(p["sigma_w2"], "sigma_w2")
    )
    p["sigma_b2"] = backends.check_finite(p["sigma_b2"], "sigma_b2", minimum=0.0)
    p["depths"] = sorted(backends.check_positive_int(d, "depths") for d in common.check_list(p["depths"], "depths"))
    if p["depths"][0] < 2:
        raise ValueError("depths must be at least 2 (a hidden layer and the output layer)")
    if len(set(p["depths"])) != len(p["depths"]) or len(set(p["sigma_w2"])) != len(p["sigma_w2"]):
        raise ValueError("depths and sigma_w2 must not repeat a value")
    for key in ("width", "steps", "batch", "seeds"):
        p[key] = backends.check_positive_int(p[key], key)
    p["lr"] = backends.check_finite(p["lr"], "lr", minimum=0.0, strict=True)
    p["margin"] = backends.check_finite(p["margin"], "margin", minimum=0.0, strict=True)
    p["seed"] = backends.check_seed(p["seed"])
    p["backend"] = backends.resolve(p["backend"])  # a ValueError naming the choices for an unknown name
    return p


def trainable_depth(depths, trained):
    """The largest of the increasing ``depths`` up to which every depth trained (``trained``: booleans); 0 when the
    shallowest failed. A later success past a failure does not count (it is a lucky seed, not a trend)."""
    best = 0
    for depth, ok in zip(depths, trained):
        if not ok:
            break
        best = depth
    return best


def final_loss(history):
    """Mean training loss over the last FINAL_SHARE of the steps; NaN for a net that diverged."""
    if history.diverged_at is not None:
        return math.nan
    losses = history.train_loss
    return float(np.mean(losses[-max(1, int(FINAL_SHARE * losses.size)) :]))


def _net(p, dataset, depth, sw2, seed):
    """Weights N(0, sw2 / fan_in) per layer (variance scaling on fan_in), biases N(0, sigma_b2)."""
    widths = (dataset.features,) + (p["width"],) * (depth - 1) + (dataset.classes,)
    net = nn.MLP(widths, p["activation"], bias=True, output="linear", dtype=np.float32, backend=p["backend"])
    return net.initialize(
        "variance_scaling",
        seed=seed,
        bias_var=p["sigma_b2"],
        scale=sw2,
        mode="fan_in",
        distribution="untruncated_normal",
    )


def _fit_all(p, nets, dataset, seeds):
    """The nets of one depth: together through fit_many on the CPU, one by one elsewhere."""
    optimizer = optim.SGD(lr=p["lr"], backend=p["backend"])
    if p["backend"] == "cpu":
        return train.fit_many(
            nets,
            dataset,
            optimizer,
            steps=p["steps"],
            batch=p["batch"],
            seeds=seeds,
            eval_every=p["steps"],
            progress=False,
        )
    return [
        train.fit(
            net,
            dataset,
            optimizer,
            steps=p["steps"],
            batch=p["batch"],
            seed=seed,
            eval_every=p["steps"],
            progress=False,
            record_layers=False,
        )
        for net, seed in zip(nets, seeds)
    ]


def run(*, quick=False, progress=True, **params):
    p = validate(common.merge_params(DEFAULTS, QUICK, quick, params))
    dataset = datasets.load(p["dataset"], dtype=np.float32)
    chance = math.log(dataset.classes)
    threshold = chance - p["margin"]
    sw2s, depths, seeds = p["sigma_w2"], p["depths"], p["seeds"]
    loss = np.full((len(sw2s), len(depths), seeds), np.nan)
    accuracy = np.full_like(loss, np.nan)
    with Timer() as timer:
        with common.progress(total=len(depths), desc="depths", enabled=progress, unit="depth") as bar:
            for j, depth in enumerate(depths):
                labels = [(i, s) for i in range(len(sw2s)) for s in range(seeds)]
                nets = [_net(p, dataset, depth, sw2s[i], p["seed"] + s) for i, s in labels]
                histories = _fit_all(p, nets, dataset, [p["seed"] + s for _, s in labels])
                for (i, s), history in zip(labels, histories):
                    loss[i, j, s] = final_loss(history)
                    if history.test_accuracy.size and history.diverged_at is None:
                        accuracy[i, j, s] = history.test_accuracy[-1]
                bar.update(1)
    theory = [signal.mean_field(p["activation"], w, p["sigma_b2"]) for w in sw2s]
    xi_c = np.array([m.xi_c for m in theory])
    critical = signal.critical_sigma_w2(p["activation"], p["sigma_b2"])
    span = np.linspace(min(sw2s), max(sw2s), THEORY_POINTS)
    xi_curve = np.array([signal.mean_field(p["activation"], w, p["sigma_b2"]).xi_c for w in span])
    # a (sigma_w2, depth) trains when the mean final loss over its seeds is below the threshold (NaN: diverged)
    mean_loss = np.where(np.isnan(loss).any(axis=2), np.nan, np.nanmean(np.where(np.isnan(loss), 0.0, loss), axis=2))
    trained = np.nan_to_num(mean_loss, nan=np.inf) < threshold
    best = np.array([trainable_depth(depths, trained[i]) for i in range(len(sw2s))])
    rows = []
    for i, w in enumerate(sw2s):
        nxt = next((d for d in depths if d > best[i]), None)
        rows.append(
            dict(
                sigma_w2=w,
                phase="ordered" if w < critical else "chaotic",
                chi1=theory[i].chi1,
                xi_c=xi_c[i],
                trainable_depth=int(best[i]),
                first_failed_depth=nxt,
                ratio=best[i] / xi_c[i] if math.isfinite(xi_c[i]) and xi_c[i] > 0 else math.nan,
                predicted_depth=SCHOENHOLZ_C * xi_c[i],
            )
        )
    arrays = dict(
        sigma_w2=np.array(sw2s),
        depths=np.array(depths),
        final_loss=loss,
        test_accuracy=accuracy,
        mean_final_loss=mean_loss,
        trained=trained,
        xi_c=xi_c,
        trainable_depth=best,
        theory_sigma_w2=span,
        theory_xi_c=xi_curve,
    )
    summary = dict(
        dataset=dataset.name,
        provenance=dataset.provenance,
        chance_loss=chance,
        threshold=threshold,
        critical_sigma_w2=critical,
        schoenholz_c=SCHOENHOLZ_C,
    )
    result = Result(scenario="trainability", params=p, summary=summary, arrays=arrays, tables=dict(grid=rows))
    result.wall_time = timer.seconds
    return result


def table(result):
    shown = []
    for r in result.tables["grid"]:
        shown.append(
            dict(
                sigma_w2=r["sigma_w2"],
                phase=r["phase"],
                chi1=r["chi1"],
                xi_c=r["xi_c"],
                trainable=r["trainable_depth"],
                failed="-" if r["first_failed_depth"] is None else r["first_failed_depth"],
                ratio=r["ratio"],
                predicted=r["predicted_depth"],
            )
        )
    s = result.summary
    note = (
        f"trainable: final training loss < ln K - margin = {s['threshold']:.3f}; critical sigma_w^2 = "
        f"{s['critical_sigma_w2']:.3f}; 'predicted' is {s['schoenholz_c']:g} xi_c (Schoenholz et al. 2017)\n"
    )
    return note + common.format_table(
        shown,
        headers=dict(
            sigma_w2="sigma_w^2",
            chi1="chi_1",
            trainable="trainable depth",
            failed="next depth failed",
            ratio="trainable / xi_c",
            predicted="6 xi_c",
        ),
    )


# ----------------------------------------------------------------------------------------------------------------
# figures


def figures(result):
    from .. import plotting

    a = result.arrays
    s = result.summary
    sw2, depths = a["sigma_w2"], a["depths"]
    fig, axes = plotting.figure(1, 2, width="page", height=2.9, gridspec_kw=dict(width_ratios=[1.35, 1]))
    ax = axes[0]
    shown = np.where(np.isnan(a["mean_final_loss"]), s["chance_loss"], a["mean_final_loss"])
    mesh = ax.pcolormesh(sw2, depths, shown.T, shading="nearest", cmap="viridis", vmax=s["chance_loss"], zorder=0)
    with plotting.style():
        colorbar = fig.colorbar(mesh, ax=ax)
        colorbar.set_label("final training loss")
    theory = SCHOENHOLZ_C * a["theory_xi_c"]
    ax.plot(
        a["theory_sigma_w2"],
        np.clip(theory, 0, 10 * depths.max()),
        color="white",
        linestyle="--",
        linewidth=1.3,
        label=r"$6\,\xi_c$ (theory)",
    )
    ax.axvline(s["critical_sigma_w2"], color="white", linestyle=":", linewidth=1.0, label=r"critical, $\chi_1 = 1$")
    ax.plot(
        sw2,
        a["trainable_depth"],
        color="red",
        marker="o",
        markersize=3.5,
        linestyle="none",
        label="trainable depth (measured)",
    )
    ax.grid(False)
    ax.set_ylim(depths.min() - 0.5 * (depths[1] - depths[0]) if depths.size > 1 else 0, depths.max() * 1.05)
    plotting.finish(
        ax,
        xlabel=r"weight variance $\sigma_w^2$",
        ylabel="depth L",
        title=f"tanh, {result.params['steps']} SGD steps",
        legend=False,
    )

    ax = axes[1]
    rows = result.tables["grid"]
    # only sigma_w^2 whose failure lies inside the grid bracket their constant (elsewhere the grid ran out first)
    bounded = np.array([r["first_failed_depth"] is not None and r["trainable_depth"] > 0 for r in rows])
    ratio = np.array([r["ratio"] for r in rows])
    upper = np.array([(r["first_failed_depth"] or np.nan) / r["xi_c"] for r in rows])
    ordered = sw2 < s["critical_sigma_w2"]
    for index, (mask, name) in enumerate(((ordered, r"ordered, $\chi_1 < 1$"), (~ordered, r"chaotic, $\chi_1 > 1$"))):
        mask = mask & bounded
        if mask.any():
            plotting.measured(
                ax,
                sw2[mask],
                ratio[mask],
                yerr=[np.zeros(mask.sum()), upper[mask] - ratio[mask]],
                color=plotting.color(index),
                marker=plotting.marker(index),
                label=name,
            )
    ax.axhline(SCHOENHOLZ_C, color="gray", linestyle="--", linewidth=1.0)
    ax.axvline(s["critical_sigma_w2"], color="gray", linestyle=":", linewidth=1.0)
    ax.set_ylim(bottom=0)
    plotting.finish(ax, xlabel=r"weight variance $\sigma_w^2$", ylabel=r"trainable depth / $\xi_c$", legend=False)
    from matplotlib.lines import Line2D

    # the white theory lines of the heat map appear in the legend in dark grey (white on the page is invisible)
    handles = [
        Line2D([], [], color="0.25", linestyle="--", linewidth=1.3),
        Line2D([], [], color="0.25", linestyle=":", linewidth=1.0),
    ]
    labels = [r"$6\,\xi_c$ (theory)", r"critical, $\chi_1 = 1$"]
    for handle, label in zip(*axes[0].get_legend_handles_labels()):
        if label not in labels:
            handles.append(handle)
            labels.append(label)
    more_handles, more_labels = ax.get_legend_handles_labels()
    handles += more_handles + [Line2D([], [], color="gray", linestyle="--")]
    labels += more_labels + ["Schoenholz et al.: 6"]
    plotting.legend_below(fig, handles, labels, ncols=3)
    return {"trainability_depth": fig}


def plot(result, out_dir):
    return common.save_figures(figures(result), out_dir)


def add_arguments(parser):
    parser.add_argument(
        "--sigma-w2",
        dest="sigma_w2",
        type=common.comma_list(float),
        default=None,
        help="weight variances sigma_w^2 (weights N(0, sigma_w^2 / fan_in))",
    )
    parser.add_argument("--sigma-b2", dest="sigma_b2", type=float, default=None, help="bias variance (default 0.05)")
    parser.add_argument("--depths", type=common.comma_list(int), default=None, help="depths of the grid")
    parser.add_argument("--width", type=int, default=None, help="hidden width")
    parser.add_argument("--steps", type=int, default=None, help="SGD steps of every net")
    parser.add_argument("--batch", type=int, default=None, help="minibatch size")
    parser.add_argument("--lr", type=float, default=None, help="SGD learning rate")
    parser.add_argument(
        "--margin", type=float, default=None, help="a net trains when its final loss is below ln K minus this margin"
    )
    parser.add_argument("--seeds", type=int, default=None, help="seeds per grid point (their mean loss decides)")


def main(argv=None):
    return common.main(__name__, argv, add_arguments=add_arguments)


if __name__ == "__main__":
    raise SystemExit(main())
