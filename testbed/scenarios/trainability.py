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

Two more studies (``studies``), each timed in **steps to a loss threshold**: the first step t at which the mean
minibatch training loss over the ``WINDOW`` steps up to t lies below the threshold (minibatch noise averages out;
every net pays the same delay of about WINDOW / 2 steps). A net that never gets there within its budget is
censored: its time is only known to exceed the budget (NaN in the arrays, "> steps" in the table).

``linear`` (Saxe, McClelland & Ganguli 2014, section 3 and their MNIST figure of learning time against depth): deep
LINEAR nets, no biases, x -> W_L ... W_1 x, trained by plain SGD on the mean squared error against one-hot labels.
Random orthogonal weights (gain 1, every layer an isometry on its input) give a depth-independent learning time;
Gaussian weights scaled to preserve the norm on average (N(0, 1/fan_in)) do not: the singular values of their
product spread with depth (the Fuss-Catalan law), the weak directions learn slowly and the strong ones limit the
learning rate, so the time to learn grows with depth. The task is the bundled ``digits`` (64 features, 10 classes):
a linear map explains most of its label variance, so "learned" has a meaning for a linear net (on MNIST-1D the best
linear map only lowers the MSE from 0.100 to 0.092). The threshold is ``L* + linear_fraction (1/K - L*)``: the
fraction left of the way from the zero map's loss 1/K (K classes) to L*, the least-squares optimum of a linear map
on the training split (computed in closed form, so every depth aims at the same attainable loss; for digits L* =
0.041; attainable when ``linear_width`` is at least the number of features, else the nets' rank falls short).
Learning rates: ``gain / depth`` for each gain of ``linear_gains``, since each of the L layers moves the end-to-end
map by about the same amount per step (Saxe et al.'s optimal rate scales as 1/L); a net's learning time is its best
over that grid (the same minibatches for every gain). All (init, gain, seed) nets of one depth train together in one
:func:`testbed.train.fit_many` call. Measured with the defaults (3 seeds), median steps at depths 2, 4, 8, 16 and
32: orthogonal 51, 45, 38, 40, 42 (flat); Gaussian 48, 51, 54, 104, 540 (growing).

``isometry`` (Pennington, Schoenholz & Ganguli 2017, their CIFAR-10 training comparison, at small scale): three nets
of the same depth and width trained by plain SGD with cross-entropy: tanh with orthogonal weights at a small fixed
point q* (``isometry_q_star``) on the critical line, sigma_w^2 = 1 / E[phi'(h)^2] just above 1 and a tiny sigma_b^2
(:func:`testbed.theory.spectra.critical_point`: 1.031 and 4.7e-6 at q* = 1/64), which is nearly dynamically
isometric; tanh with Gaussian weights at the same (sigma_w^2, sigma_b^2), whose Jacobian's squared singular values
have variance ~ L; and ReLU with He's Gaussian weights (sigma_w^2 = 2, variance 2L). The tanh nets' inputs are
scaled so that the first layer's pre-activations already have mean square q* (the fixed point); ReLU, being
positively homogeneous, gets the standardised inputs. Each net gets its best learning rate of ``isometry_lrs`` (the
lowest median time over the seeds); the loss curves at that rate, and the steps to the threshold. Measured with the
defaults (depth 32, width 64, 4 seeds, threshold 0.5): median 74 steps for orthogonal tanh (lr 0.1), 250 for
Gaussian tanh (lr 0.03) and 390 for He ReLU (lr 0.01).

Figures ``trainability_linear`` (learning time against depth, orthogonal against Gaussian; the loss curves at the
deepest depth) and ``trainability_isometry`` (the loss curves of the three nets, median and range over seeds; the
steps to the threshold against the learning rate).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend as backends
from .. import data as datasets
from .. import nn, optim, train, validation
from ..results import Result, Timer
from ..theory import signal
from ..theory import spectra as spectra_theory
from . import common

#: Schoenholz et al. 2017's constant: nets train to about this many correlation depth scales.
SCHOENHOLZ_C = 6.0
#: The share of the last steps whose mean training loss is a net's final loss (minibatch noise averages out).
FINAL_SHARE = 0.1
#: Points of the theory curve xi_c(sigma_w^2) across the grid's range.
THEORY_POINTS = 400

#: The studies: Schoenholz et al.'s heat map, Saxe et al.'s deep linear nets, Pennington et al.'s isometry.
STUDIES = ("depth", "linear", "isometry")
#: Trailing window (steps) of the mean minibatch loss that decides when a net reaches its loss threshold.
WINDOW = 10
#: Saxe et al. 2014's two initialisations of a deep linear net: name -> (initialiser, its parameters).
LINEAR_INITS = {
    "orthogonal": ("orthogonal", dict(gain=1.0)),
    "gaussian": ("variance_scaling", dict(scale=1.0, mode="fan_in", distribution="untruncated_normal")),
}
#: Pennington et al. 2017's three nets, in the order of the figure.
ISOMETRY_NETS = ("orthogonal_tanh", "gaussian_tanh", "he_relu")
LINEAR_LABELS = {"orthogonal": "orthogonal", "gaussian": "Gaussian"}
ISOMETRY_LABELS = {
    "orthogonal_tanh": "tanh, orthogonal",
    "gaussian_tanh": "tanh, Gaussian",
    "he_relu": "ReLU, Gaussian (He)",
}

DEFAULTS = dict(
    studies=list(STUDIES),
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
    linear_dataset="digits",
    linear_width=64,
    linear_depths=[2, 4, 8, 16, 32],
    linear_gains=[0.5, 1.0, 2.0, 4.0],
    linear_fraction=0.2,
    linear_steps=800,
    linear_seeds=3,
    isometry_dataset="digits",
    isometry_depth=32,
    isometry_width=64,
    isometry_q_star=1.0 / 64.0,
    isometry_lrs=[0.003, 0.01, 0.03, 0.1],
    isometry_threshold=0.5,
    isometry_steps=500,
    isometry_seeds=4,
    seed=0,
    backend="cpu",
)
QUICK = dict(
    sigma_w2=[0.8, 1.2, 1.76, 3.0, 6.0],
    depths=[8, 16, 24, 32, 48],
    steps=150,
    linear_depths=[2, 8, 32],
    linear_gains=[1.0, 2.0, 4.0],
    linear_steps=300,
    linear_seeds=2,
    isometry_lrs=[0.01, 0.03, 0.1],
    isometry_steps=300,
    isometry_seeds=2,
)


def validate(p):
    p = dict(p)
    p["studies"] = common.check_list(p["studies"], "studies")
    for study in p["studies"]:
        if not isinstance(study, str) or study not in STUDIES:
            raise validation.unknown_name_error("study", study, STUDIES)
    if len(set(p["studies"])) != len(p["studies"]):
        raise ValueError(f"studies must not repeat a name, got {p['studies']}")
    for key in ("dataset", "linear_dataset", "isometry_dataset"):
        if not isinstance(p[key], str) or p[key] not in datasets.DATASETS:
            raise validation.unknown_name_error(key, p[key], tuple(datasets.DATASETS))
    if p["activation"] != "tanh":
        raise ValueError(f"activation must be 'tanh' (the study of Schoenholz et al. 2017), got {p['activation']!r}")
    p["sigma_w2"] = sorted(
        validation.check_finite(v, "sigma_w2", minimum=0.0, strict=True)
        for v in common.check_list(p["sigma_w2"], "sigma_w2")
    )
    p["sigma_b2"] = validation.check_finite(p["sigma_b2"], "sigma_b2", minimum=0.0)
    p["depths"] = sorted(validation.check_positive_int(d, "depths") for d in common.check_list(p["depths"], "depths"))
    if p["depths"][0] < 2:
        raise ValueError("depths must be at least 2 (a hidden layer and the output layer)")
    if len(set(p["depths"])) != len(p["depths"]) or len(set(p["sigma_w2"])) != len(p["sigma_w2"]):
        raise ValueError("depths and sigma_w2 must not repeat a value")
    for key in ("width", "steps", "batch", "seeds"):
        p[key] = validation.check_positive_int(p[key], key)
    p["lr"] = validation.check_finite(p["lr"], "lr", minimum=0.0, strict=True)
    p["margin"] = validation.check_finite(p["margin"], "margin", minimum=0.0, strict=True)
    _validate_linear(p)
    _validate_isometry(p)
    p["seed"] = validation.check_seed(p["seed"])
    p["backend"] = backends.resolve(p["backend"])  # a ValueError naming the choices for an unknown name
    return p


def _positive_list(p, key, check):
    values = sorted(check(v, key) for v in common.check_list(p[key], key))
    if len(set(values)) != len(values):
        raise ValueError(f"{key} must not repeat a value, got {values}")
    return values


def _validate_linear(p):
    for key in ("linear_width", "linear_steps", "linear_seeds"):
        p[key] = validation.check_positive_int(p[key], key)
    p["linear_depths"] = _positive_list(p, "linear_depths", validation.check_positive_int)
    if p["linear_depths"][0] < 2:
        raise ValueError("linear_depths must be at least 2 (a hidden layer and the output layer)")
    p["linear_gains"] = _positive_list(
        p, "linear_gains", lambda v, name: validation.check_finite(v, name, minimum=0.0, strict=True)
    )
    p["linear_fraction"] = validation.check_finite(p["linear_fraction"], "linear_fraction", minimum=0.0, strict=True)
    if p["linear_fraction"] >= 1.0:
        raise ValueError(
            f"linear_fraction must lie in (0, 1) (0: the least-squares optimum, 1: the zero map), "
            f"got {p['linear_fraction']}"
        )


def _validate_isometry(p):
    for key in ("isometry_depth", "isometry_width", "isometry_steps", "isometry_seeds"):
        p[key] = validation.check_positive_int(p[key], key)
    if p["isometry_depth"] < 2:
        raise ValueError("isometry_depth must be at least 2 (a hidden layer and the output layer)")
    p["isometry_lrs"] = _positive_list(
        p, "isometry_lrs", lambda v, name: validation.check_finite(v, name, minimum=0.0, strict=True)
    )
    for key in ("isometry_q_star", "isometry_threshold"):
        p[key] = validation.check_finite(p[key], key, minimum=0.0, strict=True)


def steps_to_threshold(losses, threshold, window=WINDOW):
    """The first step t (1-based) at which the mean of ``losses`` over steps max(1, t - window + 1)..t lies below
    ``threshold``; None when no step does. From a non-finite loss on (a divergence) no step counts."""
    losses = np.asarray(losses, dtype=np.float64)
    if losses.size == 0:
        return None
    sums = np.cumsum(np.where(np.isfinite(losses), losses, np.inf))
    t = np.arange(1, losses.size + 1)
    start = np.maximum(t - window, 0)
    before = np.concatenate([[0.0], sums[:-1]])
    with np.errstate(invalid="ignore"):
        means = (sums - before[start]) / (t - start)
    below = np.flatnonzero(means < threshold)
    return int(below[0]) + 1 if below.size else None


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


def _fit_all(p, nets, dataset, seeds, *, lrs=None, steps=None, loss="cross_entropy"):
    """Nets of one shape: together through fit_many on the CPU, one by one elsewhere. ``lrs``: one SGD learning
    rate per net (default ``p["lr"]``); ``steps`` default ``p["steps"]``."""
    steps = p["steps"] if steps is None else steps
    lrs = [p["lr"]] * len(nets) if lrs is None else list(lrs)
    if p["backend"] == "cpu":
        return train.fit_many(
            nets,
            dataset,
            optim.SGD(lr=lrs[0], backend=p["backend"]),
            steps=steps,
            batch=p["batch"],
            lrs=lrs,
            seeds=seeds,
            loss=loss,
            eval_every=steps,
            progress=False,
        )
    return [
        train.fit(
            net,
            dataset,
            optim.SGD(lr=lr, backend=p["backend"]),
            steps=steps,
            batch=p["batch"],
            loss=loss,
            seed=seed,
            eval_every=steps,
            progress=False,
            record_layers=False,
        )
        for net, seed, lr in zip(nets, seeds, lrs)
    ]


def _units(p):
    counts = dict(depth=len(p["depths"]), linear=len(p["linear_depths"]), isometry=len(ISOMETRY_NETS))
    return sum(counts[s] for s in p["studies"])


def run(*, quick=False, progress=True, **params):
    p = validate(common.merge_params(DEFAULTS, QUICK, quick, params))
    arrays, tables, summary = {}, {}, {}
    studies = dict(depth=_study_depth, linear=_study_linear, isometry=_study_isometry)
    with Timer() as timer:
        with common.progress(total=_units(p), desc="trainability", enabled=progress, unit="run") as bar:
            for study in p["studies"]:
                studies[study](p, arrays, tables, summary, bar)
    result = Result(scenario="trainability", params=p, summary=summary, arrays=arrays, tables=tables)
    result.wall_time = timer.seconds
    return result


def _study_depth(p, arrays, tables, summary, bar):
    """Schoenholz et al. 2017: the final loss over (sigma_w^2, depth) beside xi_c."""
    dataset = datasets.load(p["dataset"], dtype=np.float32)
    chance = math.log(dataset.classes)
    threshold = chance - p["margin"]
    sw2s, depths, seeds = p["sigma_w2"], p["depths"], p["seeds"]
    loss = np.full((len(sw2s), len(depths), seeds), np.nan)
    accuracy = np.full_like(loss, np.nan)
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
    arrays.update(
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
    summary.update(
        dataset=dataset.name,
        provenance=dataset.provenance,
        chance_loss=chance,
        threshold=threshold,
        critical_sigma_w2=critical,
        schoenholz_c=SCHOENHOLZ_C,
    )
    tables["grid"] = rows


def _times(histories, threshold):
    """Steps to the threshold of each history (NaN when never reached)."""
    return np.array(
        [math.nan if (t := steps_to_threshold(h.train_loss, threshold)) is None else t for h in histories],
        dtype=np.float64,
    )


def _padded(history, steps):
    """The training losses of ``history`` over ``steps`` steps (NaN past a divergence)."""
    out = np.full(steps, np.nan)
    out[: history.train_loss.size] = history.train_loss
    return out


def _best_column(times):
    """The index of the learning rate (last axis but one of ``times``: (..., rates, seeds)) with the lowest median
    time over the seeds; a censored time (NaN) counts as infinite."""
    return int(np.argmin(np.median(np.nan_to_num(times, nan=np.inf), axis=-1)))


def least_squares_loss(dataset):
    """The least mean squared error (over samples x classes) of a linear map x -> A x, no bias, onto the one-hot
    labels of the training split: the loss a deep linear net of full rank can reach at best."""
    x = dataset.x_train.astype(np.float64)
    targets = np.eye(dataset.classes)[dataset.y_train]
    coefficients, *_ = np.linalg.lstsq(x, targets, rcond=None)
    return float(np.mean((x @ coefficients - targets) ** 2))


def _study_linear(p, arrays, tables, summary, bar):
    """Saxe et al. 2014: steps to a loss threshold of deep linear nets against depth, orthogonal and Gaussian."""
    dataset = datasets.load(p["linear_dataset"], dtype=np.float32)
    optimum = least_squares_loss(dataset)
    zero_map = 1.0 / dataset.classes  # one-hot targets: the zero map's mean squared error
    threshold = optimum + p["linear_fraction"] * (zero_map - optimum)
    inits, depths, gains, seeds, steps = (
        list(LINEAR_INITS),
        p["linear_depths"],
        p["linear_gains"],
        p["linear_seeds"],
        p["linear_steps"],
    )
    times = np.full((len(inits), len(depths), len(gains), seeds), np.nan)
    curves = np.full((len(inits), len(depths), seeds, steps), np.nan)
    best_gain = np.zeros((len(inits), len(depths)))
    for j, depth in enumerate(depths):
        widths = (dataset.features,) + (p["linear_width"],) * (depth - 1) + (dataset.classes,)
        labels = [(i, g, s) for i in range(len(inits)) for g in range(len(gains)) for s in range(seeds)]
        nets = []
        for i, _, s in labels:
            init, init_params = LINEAR_INITS[inits[i]]
            net = nn.MLP(widths, "linear", bias=False, output="linear", dtype=np.float32, backend=p["backend"])
            nets.append(net.initialize(init, seed=p["seed"] + s, **init_params))
        histories = _fit_all(
            p,
            nets,
            dataset,
            [p["seed"] + s for *_, s in labels],
            lrs=[gains[g] / depth for _, g, _ in labels],
            steps=steps,
            loss="mse",
        )
        found = _times(histories, threshold)
        for (i, g, s), t in zip(labels, found):
            times[i, j, g, s] = t
        for i in range(len(inits)):
            g_best = _best_column(times[i, j])
            best_gain[i, j] = gains[g_best]
            for (k, g, s), history in zip(labels, histories):
                if k == i and g == g_best:
                    curves[i, j, s] = _padded(history, steps)
        bar.update(1)
    # a net's learning time: its best over the learning-rate grid (NaN: no rate reached the threshold)
    reached = ~np.isnan(times)
    learning_time = np.where(reached.any(axis=2), np.nanmin(np.where(reached, times, np.inf), axis=2), np.nan)
    rows = []
    for i, init in enumerate(inits):
        for j, depth in enumerate(depths):
            row_times = learning_time[i, j]
            rows.append(
                dict(
                    init=init,
                    depth=depth,
                    median_steps=float(np.median(np.nan_to_num(row_times, nan=np.inf))),
                    min_steps=float(np.nanmin(row_times)) if np.isfinite(row_times).any() else math.nan,
                    max_steps=float(np.max(np.nan_to_num(row_times, nan=np.inf))),
                    censored=int(np.isnan(row_times).sum()),
                    best_gain=best_gain[i, j],
                )
            )
    arrays.update(
        linear_depths=np.array(depths),
        linear_gains=np.array(gains),
        linear_steps_to_threshold=times,
        linear_learning_time=learning_time,
        linear_best_gain=best_gain,
        linear_curves=curves,
    )
    summary.update(
        linear_dataset=dataset.name,
        linear_inits=inits,
        linear_optimum=optimum,
        linear_zero_map_loss=zero_map,
        linear_threshold=threshold,
    )
    tables["linear"] = rows


def _isometry_net(p, dataset, name, sigma_w2, sigma_b2, seed):
    widths = (dataset.features,) + (p["isometry_width"],) * (p["isometry_depth"] - 1) + (dataset.classes,)
    activation = "relu" if name == "he_relu" else "tanh"
    net = nn.MLP(widths, activation, bias=True, output="linear", dtype=np.float32, backend=p["backend"])
    if name == "orthogonal_tanh":
        return net.initialize("orthogonal", seed=seed, bias_var=sigma_b2, gain=math.sqrt(sigma_w2))
    if name == "gaussian_tanh":
        return net.initialize(
            "variance_scaling",
            seed=seed,
            bias_var=sigma_b2,
            scale=sigma_w2,
            mode="fan_in",
            distribution="untruncated_normal",
        )
    return net.initialize("he_normal", seed=seed)


def _at_fixed_point(dataset, q_star, sigma_b2, entry_variance):
    """The dataset with inputs scaled so that layer 1's pre-activations have mean square q*: E[(W x)_i^2] + sigma_b^2
    = entry_variance * sum_j E[x_j^2] + sigma_b^2 = q* (entry_variance: the first layer's weight variance)."""
    square = float(np.mean(np.sum(dataset.x_train.astype(np.float64) ** 2, axis=1)))
    scale = math.sqrt((q_star - sigma_b2) / (entry_variance * square))
    return datasets.from_arrays(
        dataset.x_train * scale,
        dataset.y_train,
        dataset.x_test * scale,
        dataset.y_test,
        name=f"{dataset.name} (inputs x {scale:.4g})",
        classes=dataset.classes,
        provenance=dataset.provenance,
        dtype=dataset.x_train.dtype,
        standardize=False,
    )


def _study_isometry(p, arrays, tables, summary, bar):
    """Pennington et al. 2017: orthogonal tanh near isometry against Gaussian tanh and He ReLU, same depth."""
    dataset = datasets.load(p["isometry_dataset"], dtype=np.float32)
    q_star = p["isometry_q_star"]
    sigma_w2, sigma_b2 = spectra_theory.critical_point("tanh", q_star)
    lrs, seeds, steps = p["isometry_lrs"], p["isometry_seeds"], p["isometry_steps"]
    times = np.full((len(ISOMETRY_NETS), len(lrs), seeds), np.nan)
    curves = np.full((len(ISOMETRY_NETS), seeds, steps), np.nan)
    best_lr = np.zeros(len(ISOMETRY_NETS))
    first_fan_in, first_fan_out = dataset.features, p["isometry_width"]
    entry_variance = {
        "orthogonal_tanh": sigma_w2 / max(first_fan_in, first_fan_out),
        "gaussian_tanh": sigma_w2 / first_fan_in,
    }
    for n, name in enumerate(ISOMETRY_NETS):
        data = dataset if name == "he_relu" else _at_fixed_point(dataset, q_star, sigma_b2, entry_variance[name])
        labels = [(r, s) for r in range(len(lrs)) for s in range(seeds)]
        nets = [_isometry_net(p, data, name, sigma_w2, sigma_b2, p["seed"] + s) for _, s in labels]
        histories = _fit_all(
            p, nets, data, [p["seed"] + s for _, s in labels], lrs=[lrs[r] for r, _ in labels], steps=steps
        )
        found = _times(histories, p["isometry_threshold"])
        for (r, s), t in zip(labels, found):
            times[n, r, s] = t
        r_best = _best_column(times[n])
        best_lr[n] = lrs[r_best]
        for (r, s), history in zip(labels, histories):
            if r == r_best:
                curves[n, s] = _padded(history, steps)
        bar.update(1)
    rows = []
    for n, name in enumerate(ISOMETRY_NETS):
        at_best = times[n, _best_column(times[n])]
        rows.append(
            dict(
                net=name,
                best_lr=best_lr[n],
                median_steps=float(np.median(np.nan_to_num(at_best, nan=np.inf))),
                min_steps=float(np.nanmin(at_best)) if np.isfinite(at_best).any() else math.nan,
                max_steps=float(np.max(np.nan_to_num(at_best, nan=np.inf))),
                censored=int(np.isnan(at_best).sum()),
            )
        )
    arrays.update(isometry_lrs=np.array(lrs), isometry_steps_to_threshold=times, isometry_curves=curves)
    arrays["isometry_best_lr"] = best_lr
    summary.update(
        isometry_dataset=dataset.name,
        isometry_nets=list(ISOMETRY_NETS),
        isometry_sigma_w2=sigma_w2,
        isometry_sigma_b2=sigma_b2,
        isometry_threshold=p["isometry_threshold"],
    )
    tables["isometry"] = rows


def _steps_text(value, budget):
    return f"> {budget}" if not math.isfinite(value) else f"{value:.0f}"


def table(result):
    parts = []
    studies = result.params.get("studies", ["depth"])
    if "depth" in studies:
        parts.append(_table_depth(result))
    if "linear" in studies:
        s, budget = result.summary, result.params["linear_steps"]
        shown = [
            dict(
                init=r["init"],
                depth=r["depth"],
                median=_steps_text(r["median_steps"], budget),
                range=f"{_steps_text(r['min_steps'], budget)} - {_steps_text(r['max_steps'], budget)}",
                censored=r["censored"],
                best_gain=r["best_gain"],
            )
            for r in result.tables["linear"]
        ]
        note = (
            f"Saxe et al. 2014, deep linear nets on {s['linear_dataset']}: steps until the MSE (mean over the last "
            f"{WINDOW} steps) < {s['linear_threshold']:.4f} (least squares {s['linear_optimum']:.4f}, zero map "
            f"{s['linear_zero_map_loss']:.3f}); best of lr = gain / depth over the gains\n"
        )
        parts.append(
            note
            + common.format_table(
                shown,
                headers=dict(median="median steps", range="range over seeds", best_gain="best gain (median)"),
            )
        )
    if "isometry" in studies:
        s, budget = result.summary, result.params["isometry_steps"]
        shown = [
            dict(
                net=ISOMETRY_LABELS[r["net"]],
                best_lr=r["best_lr"],
                median=_steps_text(r["median_steps"], budget),
                range=f"{_steps_text(r['min_steps'], budget)} - {_steps_text(r['max_steps'], budget)}",
                censored=r["censored"],
            )
            for r in result.tables["isometry"]
        ]
        note = (
            f"Pennington et al. 2017 on {s['isometry_dataset']}, depth {result.params['isometry_depth']}: steps "
            f"until the cross-entropy (mean over the last {WINDOW} steps) < {s['isometry_threshold']:g}; tanh at "
            f"sigma_w^2 = {s['isometry_sigma_w2']:.4f}, sigma_b^2 = {s['isometry_sigma_b2']:.2g} "
            f"(q* = {result.params['isometry_q_star']:.4g})\n"
        )
        parts.append(
            note + common.format_table(shown, headers=dict(best_lr="best lr", median="median steps", range="range"))
        )
    return "\n\n".join(parts)


def _table_depth(result):
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


def _ran(result, study):
    """Whether ``result`` holds ``study`` (a figure of a study that did not run is left out)."""
    return study in result.params.get("studies", ["depth"])


def trailing_mean(losses, window=WINDOW):
    """The mean over steps max(1, t - window + 1)..t at every step t: the curve whose crossing of the threshold
    is :func:`steps_to_threshold` (NaN from a divergence on)."""
    losses = np.asarray(losses, dtype=np.float64)
    sums = np.cumsum(losses)
    t = np.arange(1, losses.size + 1)
    start = np.maximum(t - window, 0)
    before = np.concatenate([[0.0], sums[:-1]])
    return (sums - before[start]) / (t - start)


def _spread(ax, plotting, curves, index, label):
    """Median and range over the seeds (rows of ``curves``) of the trailing-mean losses."""
    smooth = np.array([trailing_mean(c) for c in curves])
    steps = np.arange(1, smooth.shape[1] + 1)
    with np.errstate(all="ignore"):
        ax.plot(steps, np.median(smooth, axis=0), color=plotting.color(index), linewidth=1.2, label=label)
        plotting.band(ax, steps, np.min(smooth, axis=0), np.max(smooth, axis=0), color=plotting.color(index))


def _censored_points(ax, plotting, x, times, budget, index, label, shift=1.0):
    """Median over seeds (markers) with the range (bars); a time beyond the budget is drawn at the budget, and a
    median beyond it as an open triangle there. ``shift``: a factor on x that keeps equal points apart."""
    x = np.asarray(x, dtype=np.float64) * shift
    capped = np.where(np.isnan(times), budget, times)
    median = np.median(np.where(np.isnan(times), np.inf, times), axis=-1)
    low, high = capped.min(axis=-1), capped.max(axis=-1)
    inside = np.isfinite(median)
    if inside.any():
        plotting.measured(
            ax,
            x[inside],
            median[inside],
            yerr=[median[inside] - low[inside], high[inside] - median[inside]],
            color=plotting.color(index),
            marker=plotting.marker(index),
            label=label,
        )
    if (~inside).any():
        plotting.measured(
            ax,
            x[~inside],
            np.full((~inside).sum(), budget),
            color=plotting.color(index),
            marker="^",
            markerfacecolor="none",
        )


def _plain_log_ticks(ax):
    """Steps on a log axis labelled 20, 50, 100, 200, ... (a bare 10^2 says little on a short range)."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def _legends_below(fig, axes):
    """One legend below both panels: every labelled line once, and the open triangle explained when drawn."""
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if any(line.get_marker() == "^" for ax in axes for line in ax.lines):
        handles.append(Line2D([], [], color="0.3", marker="^", markerfacecolor="none", linestyle="none"))
        labels.append("median beyond the step budget")
    from .. import plotting

    plotting.legend_below(fig, handles, labels, ncols=3)


def draw_linear(result):
    if not _ran(result, "linear"):
        return None
    from .. import plotting

    a, s, p = result.arrays, result.summary, result.params
    depths, budget = a["linear_depths"], p["linear_steps"]
    fig, axes = plotting.figure(1, 2, width="page", height=2.7)
    ax = axes[0]
    for i, init in enumerate(s["linear_inits"]):
        shift = 1.0 + 0.06 * (i - 0.5)
        _censored_points(ax, plotting, depths, a["linear_learning_time"][i], budget, i, LINEAR_LABELS[init], shift)
    ax.axhline(budget, color="gray", linestyle=":", linewidth=1.0, label="step budget")
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.minorticks_off()
    plotting.finish(
        ax,
        xlabel="depth L (linear layers)",
        ylabel="steps to the loss threshold",
        title=f"deep linear nets, {s['linear_dataset']}, best lr",
        xscale="log",
        yscale="log",
        legend=False,
    )
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.minorticks_off()
    _plain_log_ticks(ax)
    ax = axes[1]
    deepest = len(depths) - 1
    for i, init in enumerate(s["linear_inits"]):
        gain = a["linear_best_gain"][i, deepest]
        label = f"{LINEAR_LABELS[init]}, lr = {gain:g}/{depths[deepest]}"
        _spread(ax, plotting, a["linear_curves"][i, deepest], i, label)
    ax.axhline(s["linear_threshold"], color="0.2", linestyle="--", linewidth=1.0, label="threshold")
    ax.axhline(s["linear_optimum"], color="0.2", linestyle=":", linewidth=1.0, label="least squares")
    top = np.nanmax(np.median(a["linear_curves"][:, deepest, :, :WINDOW], axis=1)) if budget else 1.0
    ax.set_ylim(0.8 * s["linear_optimum"], max(top, 2 * s["linear_zero_map_loss"]))
    plotting.finish(
        ax,
        xlabel="SGD step",
        ylabel="MSE (running mean)",
        title=f"depth {depths[deepest]}, median and range",
        yscale="log",
        legend=False,
    )
    _legends_below(fig, axes)
    return fig


def draw_isometry(result):
    if not _ran(result, "isometry"):
        return None
    from .. import plotting

    a, s, p = result.arrays, result.summary, result.params
    fig, axes = plotting.figure(1, 2, width="page", height=2.7)
    ax = axes[0]
    for n, name in enumerate(s["isometry_nets"]):
        label = f"{ISOMETRY_LABELS[name]}, lr {a['isometry_best_lr'][n]:g}"
        _spread(ax, plotting, a["isometry_curves"][n], n, label)
    ax.axhline(s["isometry_threshold"], color="0.2", linestyle="--", linewidth=1.0, label="threshold")
    plotting.finish(
        ax,
        xlabel="SGD step",
        ylabel="cross-entropy (running mean)",
        title=f"depth {p['isometry_depth']}, width {p['isometry_width']}, {s['isometry_dataset']}",
        legend=False,
    )
    ax = axes[1]
    lrs = a["isometry_lrs"]
    for n, name in enumerate(s["isometry_nets"]):
        shift = 1.0 + 0.08 * (n - 1)
        times = a["isometry_steps_to_threshold"][n]
        _censored_points(ax, plotting, lrs, times, p["isometry_steps"], n, ISOMETRY_LABELS[name], shift)
    ax.axhline(p["isometry_steps"], color="gray", linestyle=":", linewidth=1.0, label="step budget")
    plotting.finish(
        ax,
        xlabel="SGD learning rate",
        ylabel="steps to the loss threshold",
        title=f"tanh at q* = {p['isometry_q_star']:.3g}, $\\sigma_w^2$ = {s['isometry_sigma_w2']:.3f}",
        xscale="log",
        yscale="log",
        legend=False,
    )
    _plain_log_ticks(ax)
    _legends_below(fig, axes)
    return fig


def draw_depth(result):
    if not _ran(result, "depth"):
        return None
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
    return fig


#: Figure name -> drawing function (:func:`testbed.scenarios.common.plot`); one figure per study.
FIGURES = {"trainability_depth": draw_depth, "trainability_linear": draw_linear, "trainability_isometry": draw_isometry}


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
    parser.add_argument(
        "--studies", type=common.comma_list(str), default=None, help=f"which studies among {', '.join(STUDIES)}"
    )
    parser.add_argument(
        "--linear-depths", dest="linear_depths", type=common.comma_list(int), default=None, help="deep linear nets"
    )
    parser.add_argument("--linear-steps", dest="linear_steps", type=int, default=None, help="SGD steps, linear nets")
    parser.add_argument("--linear-seeds", dest="linear_seeds", type=int, default=None, help="seeds, linear nets")
    parser.add_argument("--isometry-depth", dest="isometry_depth", type=int, default=None, help="isometry study depth")
    parser.add_argument("--isometry-steps", dest="isometry_steps", type=int, default=None, help="isometry SGD steps")
    parser.add_argument("--isometry-seeds", dest="isometry_seeds", type=int, default=None, help="isometry seeds")


if __name__ == "__main__":
    raise SystemExit(common.main(__name__))
