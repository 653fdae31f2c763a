"""Training real networks on real data: the lecture's initialisation claims after training has started.

Every net is an MLP trained with minibatches of a bundled dataset (MNIST-1D by default, generated offline) by
:mod:`testbed.train`; the last layer gives logits for the softmax cross-entropy. Five studies:

- ``depth`` (He et al. 2015, their figure 3): a deep ReLU MLP trains with He's initialisation (Var W = 2/fan_in)
  and stalls with Glorot's (2/(fan_in + fan_out), here 1/fan_in for equal widths, so the signal halves per
  layer: 2^-29 after 30 layers) under plain SGD. A stalled net's loss
  stays at the chance level ln(classes) = 2.303 (it predicts the class frequencies). Measured (1,500 steps, lr
  0.01, 3 seeds): He 1.30 and Glorot 2.29 at depth 30; at depth 22 Glorot's net only starts to move (2.26), so
  He et al.'s "both converge at 22 layers" needs a longer budget on MNIST-1D.
- ``optimizers``: SGD, heavy-ball momentum, RMSProp and Adam on the same net from the same start: who wins and
  where the curves cross.
- ``symmetry``: zero or constant initial weights give every hidden unit of a layer the same inputs and the same
  gradient, so training never makes them differ (the count of distinct units stays 1); a random start as control.
- ``dead_relu``: too-negative ReLU biases switch units off for every input. A unit off for the whole training
  set gets zero gradient, so its own weights stand still; it can come back only when the layers below it change
  its inputs. When a whole layer is off ("signal shutdown") no gradient reaches any layer below it, the output
  is a constant, and the net never comes back: its loss stays at the best constant prediction.
- ``sigmoid`` (Glorot & Bengio 2010, figures 2 and 6): with the "standard" initialisation U[-1/sqrt(n), 1/sqrt(n)]
  a deep sigmoid net drives its top hidden layer to saturation at 0 early in training (the output layer learns
  fastest by silencing the noise W h of the random top layer), while the lower layers stay near 0.5; the
  activation histograms after training.

Figures: ``training_depth``, ``training_optimizers``, ``training_symmetry``, ``training_dead``,
``training_sigmoid``. The table gives each run's final training loss (mean of the last 5 % of steps), test
accuracy and the study's measured quantity beside its prediction.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend as backends
from .. import data as datasets
from .. import nn, optim, train, validation
from ..results import Result, Timer
from . import common

#: Learning rates of the optimizers study (each near its usual default for small MLPs).
OPTIMIZER_SETTINGS = {
    "sgd": ("sgd", dict(lr=0.01)),
    "momentum": ("sgd", dict(lr=0.01, momentum=0.9)),
    "rmsprop": ("rmsprop", dict(lr=1e-3)),
    "adam": ("adam", dict(lr=1e-3)),
}
#: Paper names for the legends.
OPTIMIZER_LABELS = {"sgd": "SGD", "momentum": "heavy ball (0.9)", "rmsprop": "RMSProp", "adam": "Adam"}
INIT_LABELS = {"he_normal": "He", "glorot_normal": "Glorot", "lecun_normal": "LeCun", "orthogonal": "orthogonal"}
STUDIES = ("depth", "optimizers", "symmetry", "dead_relu", "sigmoid")

DEFAULTS = dict(
    studies=list(STUDIES),
    dataset="mnist1d",
    width=64,
    depths=[22, 30],
    inits=["he_normal", "glorot_normal"],
    seeds=3,
    steps=1500,
    batch=128,
    lr=0.01,
    optimizers=list(OPTIMIZER_SETTINGS),
    optimizer_depth=8,
    sigmoid_depth=5,
    sigmoid_width=100,
    sigmoid_lr=1.0,
    sigmoid_batch=32,
    dead_biases=[-1.0, -3.0],
    record_every=25,
    seed=0,
    backend="cpu",
)
QUICK = dict(depths=[30], seeds=2, steps=200, record_every=25, optimizer_depth=6)

#: The share of the last steps whose mean training loss is reported as the final loss (minibatch noise).
FINAL_SHARE = 0.05


def validate(p):
    p = dict(p)
    p["studies"] = _names(p["studies"], "studies", STUDIES)
    if not isinstance(p["dataset"], str) or p["dataset"] not in datasets.DATASETS:
        raise validation.unknown_name_error("dataset", p["dataset"], tuple(datasets.DATASETS))
    for key in (
        "width",
        "seeds",
        "steps",
        "batch",
        "optimizer_depth",
        "sigmoid_depth",
        "sigmoid_width",
        "sigmoid_batch",
        "record_every",
    ):
        p[key] = validation.check_positive_int(p[key], key)
    p["depths"] = [validation.check_positive_int(d, "depths") for d in common.check_list(p["depths"], "depths")]
    if min(p["depths"]) < 2 or p["optimizer_depth"] < 2 or p["sigmoid_depth"] < 2:
        raise ValueError(
            "depths, optimizer_depth and sigmoid_depth must be at least 2 (a hidden layer and the output layer)"
        )
    from .. import init as initializers

    p["inits"] = _names(p["inits"], "inits", initializers.names())
    p["optimizers"] = _names(p["optimizers"], "optimizers", tuple(OPTIMIZER_SETTINGS))
    for key in ("lr", "sigmoid_lr"):
        p[key] = validation.check_finite(p[key], key, minimum=0.0, strict=True)
    p["dead_biases"] = [
        validation.check_finite(b, "dead_biases") for b in common.check_list(p["dead_biases"], "dead_biases")
    ]
    if any(b >= 0.0 for b in p["dead_biases"]):
        raise ValueError(f"dead_biases must be negative (bias 0 is the study's control), got {p['dead_biases']}")
    p["seed"] = validation.check_seed(p["seed"])
    p["backend"] = backends.resolve(p["backend"])  # a ValueError naming the choices for an unknown name
    return p


def _names(values, name, choices):
    values = common.check_list(values, name)
    for value in values:
        if not isinstance(value, str) or value not in choices:
            raise validation.unknown_name_error(name[:-1] if name.endswith("s") else name, value, tuple(choices))
    return values


# ----------------------------------------------------------------------------------------------------------------
# the studies


def _net(p, dataset, depth, width, activation, init, seed, **init_params):
    widths = (dataset.features,) + (width,) * (depth - 1) + (dataset.classes,)
    net = nn.MLP(widths, activation, bias=True, output="linear", dtype=np.float32, backend=p["backend"])
    return net.initialize(init, seed=seed, **init_params)


def _fit(p, net, dataset, optimizer, steps, seed, **options):
    return train.fit(
        net,
        dataset,
        optimizer,
        steps=steps,
        batch=p["batch"],
        seed=seed,
        eval_every=p["record_every"],
        progress=False,
        **options,
    )


def _final(history):
    """The mean training loss over the last FINAL_SHARE of the steps taken."""
    losses = history.train_loss[np.isfinite(history.train_loss)]
    if losses.size == 0:
        return math.nan
    return float(np.mean(losses[-max(1, int(FINAL_SHARE * losses.size)) :]))


def _row(study, label, history, **extra):
    return dict(
        study=study,
        run=label,
        final_train_loss=_final(history),
        test_accuracy=float(history.test_accuracy[-1]) if history.test_accuracy.size else math.nan,
        diverged_at=history.diverged_at,
        **extra,
    )


def _study_depth(p, dataset, rows, arrays, bar):
    chance = math.log(dataset.classes)
    for depth in p["depths"]:
        nets, labels = [], []
        for init in p["inits"]:
            for s in range(p["seeds"]):
                nets.append(_net(p, dataset, depth, p["width"], "relu", init, p["seed"] + s))
                labels.append((init, s))
        histories = _fit_all(p, nets, dataset, optim.SGD(lr=p["lr"]), [p["seed"] + s for _, s in labels])
        for (init, s), history in zip(labels, histories):
            arrays[f"depth_{depth}_{init}_{s}"] = history.train_loss
            rows.append(
                _row(
                    "depth",
                    f"{INIT_LABELS.get(init, init)}, depth {depth}, seed {s}",
                    history,
                    depth=depth,
                    init=init,
                    chance_loss=chance,
                )
            )
        bar.update(1)


def _fit_all(p, nets, dataset, optimizer, seeds):
    """K nets of one shape: together through fit_many on the CPU, one by one elsewhere."""
    if p["backend"] == "cpu":
        return train.fit_many(
            nets,
            dataset,
            optimizer,
            steps=p["steps"],
            batch=p["batch"],
            seeds=seeds,
            eval_every=p["record_every"],
            progress=False,
        )
    return [_fit(p, net, dataset, optimizer, p["steps"], seed, record_layers=False) for net, seed in zip(nets, seeds)]


def _study_optimizers(p, dataset, rows, arrays, bar):
    for name in p["optimizers"]:
        rule, hyper = OPTIMIZER_SETTINGS[name]
        net = _net(p, dataset, p["optimizer_depth"], p["width"], "relu", "he_normal", p["seed"])
        optimizer = optim.make(rule, backend=p["backend"], **hyper)
        history = _fit(p, net, dataset, optimizer, p["steps"], p["seed"], record_layers=False)
        arrays[f"optimizers_{name}_loss"] = history.train_loss
        arrays[f"optimizers_{name}_eval_steps"] = history.eval_steps
        arrays[f"optimizers_{name}_test_accuracy"] = history.test_accuracy
        rows.append(_row("optimizers", OPTIMIZER_LABELS[name], history, optimizer=name, lr=hyper["lr"]))
        bar.update(1)


def distinct_units(net, l, tolerance=0.0):
    """The number of distinct units of layer ``l``: distinct rows of [W^(l) | b^(l)] (equal within ``tolerance``)."""
    rows = np.column_stack([net.weights(l), net.biases(l)]).astype(np.float64)
    if tolerance == 0.0:
        return int(np.unique(rows, axis=0).shape[0])
    groups = []
    for row in rows:
        if not any(np.max(np.abs(row - g)) <= tolerance for g in groups):
            groups.append(row)
    return len(groups)


#: Starts of the symmetry study: name -> (initialiser, its parameters).
SYMMETRY_STARTS = {"zero": ("zeros", {}), "constant": ("constant", {"value": 0.1}), "random": ("glorot_normal", {})}


def _study_symmetry(p, dataset, rows, arrays, bar):
    depth = 4
    for name, (init, params) in SYMMETRY_STARTS.items():
        net = _net(p, dataset, depth, p["width"], "tanh", init, p["seed"], **params)
        history = _fit(
            p, net, dataset, optim.SGD(lr=0.1, backend=p["backend"]), p["steps"], p["seed"], record_layers=False
        )
        counts = [distinct_units(net, l) for l in range(1, depth)]
        arrays[f"symmetry_{name}_distinct"] = np.array(counts)
        arrays[f"symmetry_{name}_loss"] = history.train_loss
        rows.append(
            _row(
                "symmetry",
                f"{name} start",
                history,
                distinct_units=" ".join(map(str, counts)),
                most_distinct=max(counts),
                predicted=1 if name != "random" else p["width"],
            )
        )
        bar.update(1)


def dead_on(net, x, l):
    """Units of layer l (boolean, d^(l)) with s^(l) <= 0 for every row of ``x`` (no gradient reaches them)."""
    net.forward(x, keep=True, pair=None, layers=l)
    return np.all(net.pre(l) <= 0.0, axis=0)


#: Hidden layers of the dead-ReLU nets (depth 6: five hidden layers and the logits).
DEAD_DEPTH = 6


def _study_dead_relu(p, dataset, rows, arrays, bar):
    for bias in [0.0] + p["dead_biases"]:
        net = _net(p, dataset, DEAD_DEPTH, p["width"], "relu", "he_normal", p["seed"])
        for l in range(1, DEAD_DEPTH):
            net.biases(l)[...] = bias
        x = dataset.x_train
        dead_before = [dead_on(net, x, l) for l in range(1, DEAD_DEPTH)]
        weights_before = [np.column_stack([net.weights(l), net.biases(l)]).copy() for l in range(1, DEAD_DEPTH)]
        history = _fit(p, net, dataset, optim.Adam(lr=1e-3, backend=p["backend"]), p["steps"], p["seed"])
        dead_after = [dead_on(net, x, l) for l in range(1, DEAD_DEPTH)]
        revived = [int(np.sum(b & ~a)) for b, a in zip(dead_before, dead_after)]
        shutdown = next((l for l, d in enumerate(dead_before, start=1) if d.all()), None)
        below = range(1, shutdown) if shutdown is not None else range(0)
        frozen_below = all(
            np.array_equal(np.column_stack([net.weights(l), net.biases(l)]), weights_before[l - 1]) for l in below
        )
        key = f"bias_{bias:g}"
        arrays[f"dead_{key}_before"] = np.array([d.mean() for d in dead_before])
        arrays[f"dead_{key}_after"] = np.array([d.mean() for d in dead_after])
        arrays[f"dead_{key}_loss"] = history.train_loss
        rows.append(
            _row(
                "dead_relu",
                f"hidden biases {bias:g}" + (" (control)" if bias == 0.0 else ""),
                history,
                bias=bias,
                dead_at_start=" ".join(str(int(d.sum())) for d in dead_before),
                dead_at_end=" ".join(str(int(d.sum())) for d in dead_after),
                revived=" ".join(map(str, revived)),
                shutdown_layer=shutdown,
                layers_below_shutdown_unchanged=frozen_below if shutdown is not None else None,
                chance_loss=math.log(dataset.classes),
            )
        )
        bar.update(1)


def _study_sigmoid(p, dataset, rows, arrays, bar):
    depth = p["sigmoid_depth"]
    net = _net(p, dataset, depth, p["sigmoid_width"], "sigmoid", "lecun_uniform", p["seed"])
    # the "standard" initialisation of Glorot & Bengio: U[-1/sqrt(n), 1/sqrt(n)], variance 1/(3 n)
    for l in range(1, depth + 1):
        net.weights(l)[...] /= math.sqrt(3.0)
    history = train.fit(
        net,
        dataset,
        optim.SGD(lr=p["sigmoid_lr"], backend=p["backend"]),
        steps=p["steps"],
        batch=p["sigmoid_batch"],
        seed=p["seed"],
        eval_every=p["record_every"],
        progress=False,
    )
    edges = np.linspace(0.0, 1.0, 21)
    stats = net.forward(dataset.x_test, keep=False, pair=None, histogram_edges=edges)
    arrays["sigmoid_record_steps"] = history.record_steps
    arrays["sigmoid_post_mean"] = history.post_mean
    arrays["sigmoid_post_std"] = history.post_std
    arrays["sigmoid_histograms"] = stats.histograms
    arrays["sigmoid_edges"] = edges
    top = depth - 1
    rows.append(
        _row(
            "sigmoid",
            f"sigmoid, depth {depth}, standard init",
            history,
            top_hidden_mean_min=float(np.min(history.post_mean[:, top - 1])),
            top_hidden_mean_end=float(history.post_mean[-1, top - 1]),
        )
    )
    bar.update(1)


_STUDIES = {
    "depth": _study_depth,
    "optimizers": _study_optimizers,
    "symmetry": _study_symmetry,
    "dead_relu": _study_dead_relu,
    "sigmoid": _study_sigmoid,
}


def _units(p):
    counts = dict(
        depth=len(p["depths"]),
        optimizers=len(p["optimizers"]),
        symmetry=len(SYMMETRY_STARTS),
        dead_relu=1 + len(p["dead_biases"]),
        sigmoid=1,
    )
    return sum(counts[s] for s in p["studies"])


def run(*, quick=False, progress=True, **params):
    p = validate(common.merge_params(DEFAULTS, QUICK, quick, params))
    dataset = datasets.load(p["dataset"], dtype=np.float32)
    rows, arrays = [], {}
    with Timer() as timer:
        with common.progress(total=_units(p), desc="training", enabled=progress, unit="run") as bar:
            for study in p["studies"]:
                _STUDIES[study](p, dataset, rows, arrays, bar)
    summary = dict(
        dataset=dataset.name,
        provenance=dataset.provenance,
        classes=dataset.classes,
        chance_loss=math.log(dataset.classes),
    )
    for row in rows:
        if row["study"] == "depth" and row["run"].endswith("seed 0"):
            summary[f"final_loss_{row['init']}_depth_{row['depth']}"] = row["final_train_loss"]
    result = Result(scenario="training", params=p, summary=summary, arrays=arrays, tables=dict(runs=rows))
    result.wall_time = timer.seconds
    return result


def table(result):
    shown = []
    for r in result.tables["runs"]:
        detail = ""
        if r["study"] == "symmetry":
            detail = f"distinct hidden units per layer {r['distinct_units']} (predicted {r['predicted']})"
        elif r["study"] == "dead_relu":
            detail = f"dead units per layer: start {r['dead_at_start']}, end {r['dead_at_end']}"
            if r["shutdown_layer"] is not None:
                detail += (
                    f"; layer {r['shutdown_layer']} all dead: layers below unchanged "
                    f"{r['layers_below_shutdown_unchanged']} (predicted True), loss -> ln K "
                    f"{r['chance_loss']:.3f}"
                )
        elif r["study"] == "depth":
            detail = f"chance level ln K = {r['chance_loss']:.3f}"
        elif r["study"] == "sigmoid":
            detail = (
                f"top hidden layer mean: lowest {r['top_hidden_mean_min']:.3f}, "
                f"at the end {r['top_hidden_mean_end']:.3f}"
            )
        shown.append(
            dict(
                study=r["study"],
                run=r["run"],
                final_train_loss=r["final_train_loss"],
                test_accuracy=r["test_accuracy"],
                diverged="-" if r["diverged_at"] is None else f"step {r['diverged_at']}",
                detail=detail,
            )
        )
    return common.format_table(shown, headers=dict(final_train_loss="final train loss", test_accuracy="test acc."))


# ----------------------------------------------------------------------------------------------------------------
# figures

#: Print widths (inches): one column and two columns of a paper.
ONE_COLUMN, TWO_COLUMNS = 3.25, 6.75


def _smooth(values, window):
    """A trailing running mean over ``window`` steps (minibatch noise hides the trend otherwise)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < window or window < 2:
        return values
    kernel = np.ones(window) / window
    head = np.cumsum(values[: window - 1]) / np.arange(1, window)
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def _window(p):
    return max(1, p["steps"] // 50)


def draw_depth(result):
    """Training loss of the deep ReLU MLP per depth and initialiser, mean of the seeds with their min-max band,
    beside the chance loss (He et al. 2015). None when the depth study did not run."""
    from .. import plotting

    p = result.params
    if "depth" not in p["studies"]:
        return None
    a = result.arrays
    chance = result.summary["chance_loss"]
    window = _window(p)

    depths = p["depths"]
    fig, axes = plotting.figure(
        1, len(depths), figsize=(TWO_COLUMNS if len(depths) > 1 else ONE_COLUMN, 2.6), sharey=True, squeeze=False
    )
    for ax, depth in zip(axes[0], depths):
        for index, init in enumerate(p["inits"]):
            curves = [
                _smooth(a[f"depth_{depth}_{init}_{s}"], window)
                for s in range(p["seeds"])
                if f"depth_{depth}_{init}_{s}" in a
            ]
            length = min(c.size for c in curves)
            stacked = np.array([c[:length] for c in curves])
            steps = np.arange(1, length + 1)
            ax.plot(
                steps,
                stacked.mean(axis=0),
                color=plotting.color(index),
                label=f"{INIT_LABELS.get(init, init)}, mean of {len(curves)} seeds (band: min-max)",
            )
            plotting.band(ax, steps, stacked.min(axis=0), stacked.max(axis=0), color=plotting.color(index))
        ax.axhline(chance, color="gray", linestyle=":", linewidth=1.0, label=f"chance, ln {result.summary['classes']}")
        plotting.finish(
            ax,
            xlabel="SGD step",
            ylabel="training loss (running mean)",
            title=f"ReLU MLP, {depth} layers",
            legend=ax is axes[0][0],
        )
    return fig


def draw_optimizers(result):
    """Training loss and test accuracy of each optimizer on the same net from the same start.
    None when the optimizers study did not run."""
    from .. import plotting

    p = result.params
    if "optimizers" not in p["studies"]:
        return None
    a = result.arrays
    window = _window(p)

    fig, axes = plotting.figure(1, 2, figsize=(TWO_COLUMNS, 2.6))
    for index, name in enumerate(p["optimizers"]):
        if f"optimizers_{name}_loss" not in a:
            continue
        loss = a[f"optimizers_{name}_loss"]
        label = f"{OPTIMIZER_LABELS[name]}, lr {OPTIMIZER_SETTINGS[name][1]['lr']:g}"
        axes[0].plot(np.arange(1, loss.size + 1), _smooth(loss, window), color=plotting.color(index), label=label)
        axes[1].plot(
            a[f"optimizers_{name}_eval_steps"],
            a[f"optimizers_{name}_test_accuracy"],
            color=plotting.color(index),
            marker=plotting.marker(index),
            markersize=3,
            label=label,
        )
    plotting.finish(
        axes[0],
        xlabel="step",
        ylabel="training loss (running mean)",
        title=f"ReLU MLP, {p['optimizer_depth']} layers, He init",
    )
    plotting.finish(axes[1], xlabel="step", ylabel="test accuracy", title="held-out test split", legend=False)
    return fig


def draw_symmetry(result):
    """Distinct units per hidden layer after training from zero, constant and random starts.
    None when the symmetry study did not run."""
    from .. import plotting

    p = result.params
    if "symmetry" not in p["studies"]:
        return None
    a = result.arrays

    fig, ax = plotting.figure(figsize=(ONE_COLUMN, 2.6))
    names = [n for n in SYMMETRY_STARTS if f"symmetry_{n}_distinct" in a]
    offsets = np.linspace(-0.25, 0.25, len(names))
    for index, name in enumerate(names):
        counts = a[f"symmetry_{name}_distinct"]
        layers = np.arange(1, counts.size + 1)
        ax.bar(
            layers + offsets[index],
            counts,
            width=0.5 / len(names),
            color=plotting.color(index),
            label=f"{name} start",
        )
    ax.axhline(p["width"], color="gray", linestyle=":", linewidth=1.0, label=f"all {p['width']} units")
    ax.set_yscale("log")
    ax.set_ylim(0.5, 3 * p["width"])
    ax.set_xticks(np.arange(1, len(a[f"symmetry_{names[0]}_distinct"]) + 1))
    plotting.finish(
        ax,
        xlabel="hidden layer l",
        ylabel="distinct units after training",
        title=f"tanh MLP, {p['steps']} SGD steps",
        legend=False,
    )
    with plotting.style():
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2)
    return fig


def draw_dead(result):
    """Dead units per layer at the start and after training for each negative bias, and the training loss.
    None when the dead_relu study did not run."""
    from .. import plotting

    p = result.params
    if "dead_relu" not in p["studies"]:
        return None
    a = result.arrays
    chance = result.summary["chance_loss"]
    window = _window(p)

    fig, axes = plotting.figure(1, 2, figsize=(TWO_COLUMNS, 2.6))
    for index, bias in enumerate([0.0] + p["dead_biases"]):
        key = f"bias_{bias:g}"
        if f"dead_{key}_before" not in a:
            continue
        layers = np.arange(1, a[f"dead_{key}_before"].size + 1)
        label = f"bias {bias:g}" + (" (control)" if bias == 0.0 else "")
        axes[0].plot(
            layers,
            a[f"dead_{key}_before"],
            color=plotting.color(index),
            marker="o",
            markerfacecolor="none",
            linestyle=":",
        )
        axes[0].plot(layers, a[f"dead_{key}_after"], color=plotting.color(index), marker="x", linestyle="-")
        loss = a[f"dead_{key}_loss"]
        axes[1].plot(np.arange(1, loss.size + 1), _smooth(loss, window), color=plotting.color(index), label=label)
    axes[1].axhline(chance, color="gray", linestyle=":", linewidth=1.0, label=f"chance, ln {result.summary['classes']}")
    axes[0].set_ylim(-0.05, 1.05)
    axes[0].set_xticks(np.arange(1, DEAD_DEPTH))
    axes[0].plot([], [], color="gray", marker="o", markerfacecolor="none", linestyle=":", label="at start")
    axes[0].plot([], [], color="gray", marker="x", linestyle="-", label="after training")
    plotting.finish(
        axes[0],
        xlabel="hidden layer l",
        ylabel="share of dead units",
        title="off on every training input",
        legend_loc="center right",
    )
    plotting.finish(
        axes[1],
        xlabel="Adam step",
        ylabel="training loss (running mean)",
        title="ReLU MLP, He weights",
        legend_loc="center right",
    )
    return fig


def draw_sigmoid(result):
    """Mean and spread of each hidden sigmoid layer during training, and their histograms after it (Glorot &
    Bengio 2010, figs. 2 and 6). None when the sigmoid study did not run."""
    from .. import plotting

    p = result.params
    if "sigmoid" not in p["studies"]:
        return None
    a = result.arrays

    fig, axes = plotting.figure(1, 2, figsize=(TWO_COLUMNS, 2.6))
    steps = a["sigmoid_record_steps"]
    mean, std = a["sigmoid_post_mean"], a["sigmoid_post_std"]
    for l in range(mean.shape[1] - 1):  # hidden layers only (the last layer gives logits)
        axes[0].plot(
            steps,
            mean[:, l],
            color=plotting.color(l),
            marker=plotting.marker(l),
            markersize=2.5,
            label=f"layer {l + 1}",
        )
        plotting.band(
            axes[0], steps, mean[:, l] - std[:, l], mean[:, l] + std[:, l], color=plotting.color(l), alpha=0.12
        )
    plotting.finish(
        axes[0],
        xlabel="SGD step",
        ylabel="activation mean ± std",
        title="during training (G. & B. 2010, fig. 2)",
        legend_loc="lower right",
    )
    edges = a["sigmoid_edges"]
    centres = 0.5 * (edges[1:] + edges[:-1])
    hist = a["sigmoid_histograms"]
    for l in range(hist.shape[0] - 1):
        total = max(hist[l].sum(), 1)
        axes[1].plot(
            centres,
            hist[l] / total,
            color=plotting.color(l),
            marker=plotting.marker(l),
            markersize=3,
            label=f"layer {l + 1}",
        )
    plotting.finish(
        axes[1],
        xlabel=f"activation value ({edges.size - 1} bins on [0, 1])",
        ylabel="share of test activations",
        title="after training (their fig. 6)",
        legend=False,
    )
    return fig


def add_arguments(parser):
    parser.add_argument(
        "--studies",
        type=common.comma_list(str),
        default=None,
        help=f"comma-separated studies among {', '.join(STUDIES)} (default: all)",
    )
    parser.add_argument("--dataset", default=None, help=f"one of {', '.join(datasets.DATASETS)} (default mnist1d)")
    parser.add_argument("--width", type=int, default=None, help="hidden width of the depth/optimizer nets")
    parser.add_argument("--depths", type=common.comma_list(int), default=None, help="depths of the depth study")
    parser.add_argument("--inits", type=common.comma_list(str), default=None, help="initialisers of the depth study")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per (depth, init) of the depth study")
    parser.add_argument("--steps", type=int, default=None, help="training steps of every run")
    parser.add_argument("--batch", type=int, default=None, help="minibatch size")
    parser.add_argument("--lr", type=float, default=None, help="SGD learning rate of the depth study")
    parser.add_argument(
        "--optimizers",
        type=common.comma_list(str),
        default=None,
        help=f"optimizers of the optimizers study among {', '.join(OPTIMIZER_SETTINGS)}",
    )
    parser.add_argument(
        "--dead-biases",
        dest="dead_biases",
        type=common.comma_list(float),
        default=None,
        help="negative biases of every hidden unit at the start of the dead-ReLU study (bias 0 is "
        "always run as the control)",
    )
    parser.add_argument(
        "--record-every",
        dest="record_every",
        type=int,
        default=None,
        help="steps between evaluations and per-layer records",
    )


#: The figures, by name (the file stem, and what a preset's ``figure`` names): each draws one from a result.
FIGURES = {
    "training_depth": draw_depth,
    "training_optimizers": draw_optimizers,
    "training_symmetry": draw_symmetry,
    "training_dead": draw_dead,
    "training_sigmoid": draw_sigmoid,
}


if __name__ == "__main__":
    raise SystemExit(common.main(__name__))
