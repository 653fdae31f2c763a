"""Signal propagation across depth: how the initialisation makes or breaks the forward signal and its gradient.

For every initialiser x activation of the grid, a fresh MLP (depth L, width n, a batch of i.i.d. N(0, 1)
inputs) is run forward and backward (delta^(L) i.i.d. N(0, 1)) with :func:`testbed.nn.propagate`, and the
per-layer measurements are put beside the theory of :mod:`testbed.theory.signal`:

- Var[s^(l)] and Var[delta^(l)] against depth (log scale), theory dashed over measured markers: He keeps a ReLU
  net's variance, LeCun halves it per layer; LeCun and Glorot keep tanh near its linear regime, too small a
  scale vanishes, too large saturates (Glorot & Bengio 2010; He et al. 2015);
- histograms of the activations per layer for bounded activations (Glorot & Bengio 2010, fig. 6);
- the saturated fraction (tanh, sigmoid: |phi(s)| within 1% of its bound) and the dead fraction (ReLU: units off
  for every input of the batch) against depth;
- the order/chaos phase diagram of a tanh net in (sigma_w^2, sigma_b^2): the depth scale xi_c of the correlation
  between two inputs as a heat map, the critical line chi1 = 1 dashed, and measured nets as points (marker shape
  and label: measured chi1, the per-layer growth of Var[delta] over the deeper half of the net, below or above 1)
  (Poole et al. 2016; Schoenholz et al. 2017). The phase table also lists measured q* (mean Var[s] over the deep
  half) and the mean correlation of two inputs over the deep half (c*, once the net is several xi_c deep).

The table gives, per run, the forward ratio Var[s^(L)] / Var[s^(1)], the backward ratio Var[delta^(1)] /
Var[delta^(L)], the saturated and dead fractions at the last layer, each measured and predicted. The prediction
is exact in expectation for ReLU and the identity and mean-field (infinite width) for tanh and sigmoid; one
finite net fluctuates around it by about exp(5 sum 1/n_l) (Hanin & Rolnick 2018).

With equal widths LeCun and Glorot coincide (their curves overlap). Initialisers are named as in
:mod:`testbed.init`, with parameters after colons: ``normal:std=0.01``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import activations as activation_registry
from .. import backend as backends
from .. import nn, validation
from ..results import Result, Timer
from ..theory import signal as theory
from . import common

DEFAULTS = dict(
    inits=["zeros", "normal:std=0.01", "normal:std=1", "lecun_normal", "glorot_normal", "he_normal"],
    activations=["tanh", "relu", "linear", "sigmoid"],
    depth=50,
    width=512,
    batch=1024,
    bias_var=0.0,
    phase_activation="tanh",
    phase_sigma_w2=[0.25, 4.5],
    phase_sigma_b2=[0.0, 0.3],
    phase_resolution=[60, 40],
    phase_points=[
        [1.0, 0.05],
        [1.5, 0.05],
        [2.5, 0.05],
        [1.5, 0.2],
        [2.5, 0.2],
        [4.0, 0.2],
        [3.5, 0.05],
        [1.0, 0.25],
        [3.0, 0.28],
    ],
    phase_depth=40,
    phase_width=256,
    phase_batch=256,
    seed=0,
    backend="cpu",
)
QUICK = dict(
    depth=10,
    width=64,
    batch=64,
    phase_resolution=[24, 12],
    phase_points=[[1.0, 0.05], [2.5, 0.05], [1.5, 0.2], [4.0, 0.2]],
    phase_depth=12,
    phase_width=64,
    phase_batch=32,
)

#: Bins of the activation histograms of bounded activations (over [lower, upper] of the activation).
HISTOGRAM_BINS = 50
#: Layers whose histograms are drawn (fractions of the depth, rounded to a layer >= 1).
HISTOGRAM_LAYER_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: The phase-diagram nets measure q*, chi1 and c* over the deepest PHASE_TAIL fraction of their layers.
PHASE_TAIL = 0.5


# ------------------------------------------------------------------------------------------------------------------
# parameters


def parse_init(spec):
    """``"name"`` or ``"name:key=value:key=value"`` -> (name, {key: float}); ValueError naming ``inits``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"inits must be initialiser names like 'he_normal' or 'normal:std=0.01', got {spec!r}")
    name, *pairs = [part.strip() for part in spec.split(":")]
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"inits: expected key=value after ':' in {spec!r}, got {pair!r}")
        params[key.strip()] = validation.check_finite(value, f"inits parameter {key.strip()!r} of {spec!r}")
    return name, params


def init_label(spec):
    name, params = parse_init(spec)
    return name if not params else f"{name}({', '.join(f'{k}={v:g}' for k, v in params.items())})"


def _check_pair(value, name, check):
    items = common.check_list(value, name, check, single=False)
    if len(items) != 2:
        raise ValueError(f"{name} must be two numbers [low, high], got {value!r}")
    return items


#: Largest first-layer signal variance accepted (sigma_w^2 fan_in + sigma_b^2, for unit inputs): its square
#: must stay finite, so that the statistics are numbers and an overflow deeper in is reported by its layer.
MAX_SIGNAL_VARIANCE = nn.MAX_SIGNAL_VARIANCE


def _check_init(spec):
    name, params = parse_init(spec)
    theory.weight_variances(name, (2, 2), **params)  # unknown names and parameters: ValueError, before any run
    return spec


def _check_scales(p):
    """Refuse an initialiser scale or bias variance whose first-layer signal variance overflows."""
    for spec in p["inits"]:
        name, params = parse_init(spec)
        with np.errstate(over="ignore", invalid="ignore"):
            variances = np.asarray(theory.weight_variances(name, (p["width"], p["width"]), **params), dtype=float)
            signal = float(np.max(variances)) * p["width"]
        if not signal <= MAX_SIGNAL_VARIANCE:
            raise ValueError(
                f"inits: {spec!r} gives a first-layer signal variance of {signal:.3g} at width "
                f"{p['width']} (at most {MAX_SIGNAL_VARIANCE:g}: its square must stay finite)"
            )
    if p["bias_var"] > MAX_SIGNAL_VARIANCE:
        raise ValueError(
            f"bias_var must be at most {MAX_SIGNAL_VARIANCE:g} (its square must stay finite), got {p['bias_var']:g}"
        )


def validate(p):
    """Check every parameter of :data:`DEFAULTS`; ValueError naming the parameter."""
    p = dict(p)
    p["inits"] = common.check_list(p["inits"], "inits", _check_init, single=False)
    p["activations"] = common.check_list(
        p["activations"], "activations", lambda a: activation_registry.get(a).name, single=False
    )
    for key in ("depth", "width", "batch", "phase_depth", "phase_width", "phase_batch"):
        p[key] = validation.check_positive_int(p[key], key)
    for key in ("batch", "phase_batch"):
        if p[key] < 2:
            raise ValueError(f"{key} must be at least 2 (the correlation of two inputs is measured), got {p[key]}")
    p["bias_var"] = validation.check_finite(p["bias_var"], "bias_var", minimum=0.0)
    p["phase_activation"] = activation_registry.get(p["phase_activation"]).name
    for key in ("phase_sigma_w2", "phase_sigma_b2"):
        low, high = _check_pair(p[key], key, lambda v, key=key: validation.check_finite(v, key, minimum=0.0))
        if not high > low:
            raise ValueError(f"{key} must be [low, high] with high > low, got {p[key]!r}")
        p[key] = [low, high]
    if p["phase_sigma_w2"][0] <= 0.0:
        raise ValueError(f"phase_sigma_w2 must start above 0, got {p['phase_sigma_w2']!r}")
    p["phase_resolution"] = _check_pair(
        p["phase_resolution"], "phase_resolution", lambda v: validation.check_positive_int(v, "phase_resolution")
    )
    if min(p["phase_resolution"]) < 2:
        raise ValueError(f"phase_resolution must be at least [2, 2], got {p['phase_resolution']!r}")
    p["phase_points"] = [
        _check_pair(point, "phase_points", lambda v: validation.check_finite(v, "phase_points", minimum=0.0))
        for point in (p["phase_points"] or [])
    ]
    p["seed"] = validation.check_seed(p["seed"])
    backends.resolve(p["backend"])
    _check_scales(p)
    check_memory(p)
    return p


#: Bytes per layer of a run kept in the result: the measured and predicted arrays (float64, with the histogram)
#: and the per-layer table row (a dict of about 30 Python floats).
RESULT_BYTES_PER_LAYER = 8 * (14 + HISTOGRAM_BINS) + 4096


def check_memory(p):
    """Refuse (:class:`testbed.backend.MemoryLimitError`, a ValueError) a grid whose nets or result would not fit
    in memory, before anything of its size is allocated."""
    runs = len(p["inits"]) * len(p["activations"])
    net = nn.memory_estimate(p["depth"], p["width"], p["batch"])
    kept = runs * p["depth"] * RESULT_BYTES_PER_LAYER
    backends.check_memory(
        net + kept, f"depth x width x batch = {p['depth']} x {p['width']} x {p['batch']} ({runs} runs)"
    )
    nn.check_memory(
        p["phase_depth"],
        p["phase_width"],
        p["phase_batch"],
        what=f"phase_depth x phase_width x phase_batch = {p['phase_depth']} x {p['phase_width']} x {p['phase_batch']}",
    )


# ------------------------------------------------------------------------------------------------------------------
# the run


def _histogram_edges(activation):
    act = activation_registry.get(activation)
    if not act.bounded:
        return None
    return np.linspace(act.lower, act.upper, HISTOGRAM_BINS + 1)


def _ratio(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(b)) if b != 0 else (math.nan if a == 0 else math.inf)


def run(*, quick=False, progress=True, **params):
    """Run the grid and the phase diagram; return the :class:`~testbed.results.Result` (see the module docstring)."""
    p = validate(common.merge_params(DEFAULTS, QUICK, quick, params))
    depth, width, batch = p["depth"], p["width"], p["batch"]
    widths = (width,) * (depth + 1)
    inits, acts = p["inits"], p["activations"]
    shape = (len(inits), len(acts), depth)
    names = ("pre_var", "grad_var", "post_var", "saturated_frac", "dead_frac", "zero_frac", "correlation")
    measured = {name: np.full(shape, math.nan) for name in names}
    predicted = {name: np.full(shape, math.nan) for name in names}
    histograms = np.zeros(shape + (HISTOGRAM_BINS,))
    rows, layer_rows = [], []
    with Timer() as timer:
        grid = [(i, j) for i in range(len(inits)) for j in range(len(acts))]
        for i, j in common.progress(grid, desc="init x activation", enabled=progress):
            name, init_params = parse_init(inits[i])
            edges = _histogram_edges(acts[j])
            run_ = nn.propagate(
                name,
                acts[j],
                depth,
                width,
                batch=batch,
                seed=p["seed"],
                backend=p["backend"],
                bias_var=p["bias_var"],
                histogram_edges=edges,
                **init_params,
            )
            theory_ = theory.expected_variances(
                name, acts[j], widths, bias_var=p["bias_var"], batch=batch, input_var=1.0, **init_params
            )
            for key in names:
                measured[key][i, j] = getattr(run_, key)
                predicted[key][i, j] = getattr(theory_, key)
            if run_.histograms is not None:
                totals = run_.histograms.sum(axis=1, keepdims=True)
                histograms[i, j] = np.divide(run_.histograms, np.maximum(totals, 1))
            rows.append(
                dict(
                    init=init_label(inits[i]),
                    activation=acts[j],
                    forward_measured=_ratio(run_.pre_var[-1], run_.pre_var[0]),
                    forward_predicted=_ratio(theory_.pre_var[-1], theory_.pre_var[0]),
                    backward_measured=_ratio(run_.grad_var[0], run_.grad_var[-1]),
                    backward_predicted=_ratio(theory_.grad_var[0], theory_.grad_var[-1]),
                    saturated_measured=float(run_.saturated_frac[-1]),
                    saturated_predicted=float(theory_.saturated_frac[-1]),
                    dead_measured=float(run_.dead_frac[-1]),
                    dead_predicted=float(theory_.dead_frac[-1]),
                    overflow_layer=run_.overflow_layer,
                    theory_basis=theory_.basis,
                )
            )
            for l in range(depth):
                layer_rows.append(
                    dict(
                        init=init_label(inits[i]),
                        activation=acts[j],
                        layer=l + 1,
                        **{f"{k}_measured": float(measured[k][i, j, l]) for k in names},
                        **{f"{k}_predicted": float(predicted[k][i, j, l]) for k in names},
                    )
                )
        phase = phase_diagram(p, progress=progress)
    summary = dict(
        runs=len(rows),
        critical_sigma_w2_at_zero_bias=float(phase["critical_sigma_w2"][0]),
        phase_activation=p["phase_activation"],
    )
    arrays = {f"{k}_measured": v for k, v in measured.items()}
    arrays.update({f"{k}_predicted": v for k, v in predicted.items()})
    arrays["histograms"] = histograms
    arrays.update({k: v for k, v in phase.items() if k != "points_table"})
    result = Result(
        "variance",
        p,
        summary,
        arrays=arrays,
        tables=dict(summary=rows, layers=layer_rows, phase_points=phase["points_table"]),
    )
    result.wall_time = timer.seconds
    return result


def phase_diagram(p, *, progress=True):
    """The theory grid (xi_c, chi1) over (sigma_w^2, sigma_b^2), the critical line, and measured nets."""
    act = p["phase_activation"]
    n_w, n_b = p["phase_resolution"]
    sw2 = np.linspace(*p["phase_sigma_w2"], n_w)
    sb2 = np.linspace(*p["phase_sigma_b2"], n_b)
    xi_c = np.empty((n_b, n_w))
    chi1 = np.empty((n_b, n_w))
    for b in common.progress(range(n_b), desc="phase diagram (theory)", enabled=progress):
        for w in range(n_w):
            field = theory.mean_field(act, sw2[w], sb2[b])
            xi_c[b, w], chi1[b, w] = field.xi_c, field.chi1
    line_b = np.linspace(*p["phase_sigma_b2"], 4 * n_b)
    critical = []
    for value in line_b:
        try:
            critical.append(theory.critical_sigma_w2(act, value))
        except ValueError:  # no transition for this bias variance
            critical.append(math.nan)
    points = p["phase_points"]
    depth, width = p["phase_depth"], p["phase_width"]
    tail = max(2, int(round(PHASE_TAIL * depth)))
    measured = np.full((len(points), 3), math.nan)  # q*, chi1, mean correlation over the deep layers
    theory_points = np.full((len(points), 4), math.nan)  # q*, chi1, c*, xi_c
    rows = []
    for k in common.progress(range(len(points)), desc="phase diagram (nets)", enabled=progress):
        w2, b2 = points[k]
        run_ = nn.propagate(
            "normal",
            act,
            depth,
            width,
            batch=p["phase_batch"],
            seed=p["seed"] + 1 + k,
            backend=p["backend"],
            bias_var=b2,
            std=math.sqrt(w2 / width),
        )
        deep = slice(depth - tail, depth)
        q_measured = float(np.mean(run_.pre_var[deep]))
        with np.errstate(divide="ignore", invalid="ignore"):
            chi_measured = float((run_.grad_var[depth - tail] / run_.grad_var[depth - 1]) ** (1.0 / (tail - 1)))
        c_measured = float(np.mean(run_.correlation[deep]))
        field = theory.mean_field(act, w2, b2)
        measured[k] = (q_measured, chi_measured, c_measured)
        theory_points[k] = (field.q_star, field.chi1, field.c_star, field.xi_c)
        rows.append(
            dict(
                sigma_w2=w2,
                sigma_b2=b2,
                q_star_measured=q_measured,
                q_star_predicted=field.q_star,
                chi1_measured=chi_measured,
                chi1_predicted=field.chi1,
                c_deep_measured=c_measured,
                c_star_predicted=field.c_star,
                xi_c_predicted=field.xi_c,
            )
        )
    return dict(
        phase_sigma_w2=sw2,
        phase_sigma_b2=sb2,
        phase_xi_c=xi_c,
        phase_chi1=chi1,
        critical_sigma_b2=line_b,
        critical_sigma_w2=np.array(critical),
        phase_points=np.array(points, dtype=float).reshape(-1, 2),
        phase_points_measured=measured,
        phase_points_predicted=theory_points,
        points_table=rows,
    )


# ------------------------------------------------------------------------------------------------------------------
# output


def table(result):
    """The per-run table: forward and backward variance ratios, saturated and dead fractions, measured | theory."""
    columns = [
        "init",
        "activation",
        "forward_measured",
        "forward_predicted",
        "backward_measured",
        "backward_predicted",
        "saturated_measured",
        "saturated_predicted",
        "dead_measured",
        "dead_predicted",
    ]
    headers = dict(
        forward_measured="fwd L/1 meas",
        forward_predicted="fwd L/1 theory",
        backward_measured="bwd 1/L meas",
        backward_predicted="bwd 1/L theory",
        saturated_measured="sat meas",
        saturated_predicted="sat theory",
        dead_measured="dead meas",
        dead_predicted="dead theory",
    )
    text = common.format_table(result.tables["summary"], columns, headers=headers, floatfmt=".3g")
    points = result.tables.get("phase_points") or []
    if points:
        text += "\n\nphase diagram ({}): measured nets vs mean field\n".format(result.params["phase_activation"])
        text += common.format_table(
            points,
            [
                "sigma_w2",
                "sigma_b2",
                "q_star_measured",
                "q_star_predicted",
                "chi1_measured",
                "chi1_predicted",
                "c_deep_measured",
                "c_star_predicted",
                "xi_c_predicted",
            ],
            floatfmt=".3g",
        )
    return text


def _positive(values):
    values = np.asarray(values, dtype=float)
    return np.where(values > 0, values, np.nan)


#: Names of the initialisers in the figures (the papers' names; parameters as a Gaussian's std).
INIT_NAMES = {
    "zeros": "zeros",
    "lecun_normal": "LeCun",
    "glorot_normal": "Glorot",
    "he_normal": "He",
    "lecun_uniform": "LeCun (uniform)",
    "glorot_uniform": "Glorot (uniform)",
    "he_uniform": "He (uniform)",
    "orthogonal": "orthogonal",
}
#: Names of the activations in the figures.
ACTIVATION_NAMES = {"relu": "ReLU", "tanh": "tanh", "sigmoid": "sigmoid", "linear": "linear"}
#: The variance figure's y-range (ratio to the reference layer): the lecture's contrast (He flat, LeCun halving
#: per ReLU layer) spans some 15 decades; runs that vanish or explode faster leave the panel.
VARIANCE_RANGE = (1e-8, 1e8)
#: Measured values are marked at layer 1 and every MARK_EVERY-th layer, so that the dashed theory shows between.
MARK_EVERY = 5


def init_name(spec):
    """The paper's name of an initialiser spec: ``"he_normal"`` -> ``"He"``, ``"normal:std=0.01"`` -> N(0, 0.01^2)."""
    name, params = parse_init(spec)
    if name == "normal" and set(params) == {"std"}:
        return f"$N(0, {params['std']:g}^2)$"
    base = INIT_NAMES.get(name, name)
    return base if not params else f"{base} ({', '.join(f'{k} = {v:g}' for k, v in params.items())})"


def activation_name(name):
    return ACTIVATION_NAMES.get(name, name)


def _marked(depth):
    """Indices of the layers whose measurements are drawn: layer 1 and every MARK_EVERY-th."""
    layers = np.arange(1, depth + 1)
    return np.flatnonzero((layers == 1) | (layers % MARK_EVERY == 0))


def draw_variance_depth(result):
    """Forward and backward variance against depth (normalised to layer 1 and to layer L), one row per activation,
    measured (markers) beside the mean-field theory (dashed)."""
    from matplotlib.lines import Line2D

    from .. import plotting

    p = result.params
    inits, acts, depth = p["inits"], p["activations"], p["depth"]
    layers = np.arange(1, depth + 1)
    marks = _marked(depth)
    a = result.arrays
    coincide = _coinciding_inits(inits, p["width"])

    # variance vs depth, normalised: one row per activation; forward (left, to layer 1), backward (right, to L)
    fig, axes = plotting.figure(
        len(acts),
        2,
        width="page",
        height=min(plotting.MAX_HEIGHT, 1.55 * len(acts) + 0.9),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    absent = set()
    for j, act in enumerate(acts):
        for col, (key, ylabel) in enumerate(
            (
                ("pre_var", r"Var$[s^{(l)}]\,/\,$Var$[s^{(1)}]$"),
                ("grad_var", r"Var$[\delta^{(l)}]\,/\,$Var$[\delta^{(L)}]$"),
            )
        ):
            ax = axes[j, col]
            reference = 0 if col == 0 else depth - 1
            for i, spec in enumerate(inits):
                meas = np.asarray(a[f"{key}_measured"][i, j], float)
                pred = np.asarray(a[f"{key}_predicted"][i, j], float)
                with np.errstate(divide="ignore", invalid="ignore"):
                    meas, pred = _positive(meas / meas[reference]), _positive(pred / pred[reference])
                if not np.any(np.isfinite(meas)) and not np.any(np.isfinite(pred)):
                    absent.add(init_name(spec))
                    continue
                color, marker = plotting.color(i), plotting.marker(i)
                open_marker = spec in coincide
                plotting.measured(
                    ax,
                    layers[marks],
                    meas[marks],
                    color=color,
                    marker=marker,
                    markersize=5 if open_marker else 3.5,
                    label=init_name(spec) + (" (= LeCun: equal widths)" if open_marker else ""),
                    **(dict(markerfacecolor="none", markeredgewidth=1.0) if open_marker else {}),
                )
                plotting.theory(ax, layers, pred, color=color, linewidth=0.9)
            ax.set_yscale("log")
            ax.set_ylim(*VARIANCE_RANGE)
            ax.set_yticks([1e-8, 1e-4, 1, 1e4, 1e8])
            ax.set_title(f"{activation_name(act)}, {'forward' if col == 0 else 'backward'}")
            ax.set_ylabel(ylabel if col == 0 else r"Var$[\delta^{(l)}]\,/\,$Var$[\delta^{(L)}]$")
            if j == len(acts) - 1:
                ax.set_xlabel("layer $l$")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.3", linestyle="--", linewidth=0.9))
    labels.append("theory (every layer)")
    if absent:
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(f"{', '.join(sorted(absent))}: 0 at every layer")
    plotting.legend_below(fig, handles, labels, ncols=4)
    fig.suptitle(f"width {p['width']}, {p['batch']} inputs; markers: measured (layer 1, every {MARK_EVERY}th)")
    return fig


def draw_activation_histograms(result):
    """Histograms of bounded activations at a few depths (Glorot & Bengio 2010, fig. 6): a row per activation, a
    column per initialiser."""
    from matplotlib.lines import Line2D

    from .. import plotting

    p = result.params
    inits, acts, depth = p["inits"], p["activations"], p["depth"]
    a = result.arrays

    # histograms of bounded activations (Glorot & Bengio 2010, fig. 6): a row per activation, a column per init
    bounded = [j for j, act in enumerate(acts) if activation_registry.get(act).bounded]
    columns = len(inits) if bounded else 1
    fig, axes = plotting.figure(
        max(1, len(bounded)),
        columns,
        width="page",
        height=1.45 * max(1, len(bounded)) + 0.95,
        squeeze=False,
        sharey=True,
    )
    shown = sorted({max(1, int(round(f * depth))) for f in HISTOGRAM_LAYER_FRACTIONS})
    for r, j in enumerate(bounded):
        act = activation_registry.get(acts[j])
        edges = np.linspace(act.lower, act.upper, HISTOGRAM_BINS + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        for i, spec in enumerate(inits):
            ax = axes[r, i]
            for k, l in enumerate(shown):
                ax.plot(
                    centres, a["histograms"][i, j, l - 1], color=plotting.color(k), linewidth=0.9, label=f"layer {l}"
                )
            ax.set_yscale("log")
            ax.set_ylim(1e-4, 1.5)
            ax.set_xticks([act.lower, 0.5 * (act.lower + act.upper), act.upper])
            ax.set_xticklabels([f"{v:g}" for v in (act.lower, 0.5 * (act.lower + act.upper), act.upper)])
            ax.set_title(init_name(spec) if r == 0 else "")
            ax.set_xlabel(f"{activation_name(acts[j])}$(s)$")
            if i == 0:
                ax.set_ylabel(f"{activation_name(acts[j])}: fraction\nof units per bin")
    if not bounded:
        axes[0, 0].text(
            0.5,
            0.5,
            "no bounded activation\nin the grid",
            ha="center",
            va="center",
            fontsize=8,
            transform=axes[0, 0].transAxes,
        )
        plotting.finish(axes[0, 0], xlabel="activation value", ylabel="fraction of units", legend=False)
    else:
        width_text = ", ".join(
            f"{activation_name(acts[j])} "
            f"{(activation_registry.get(acts[j]).upper - activation_registry.get(acts[j]).lower) / HISTOGRAM_BINS:g}"
            for j in bounded
        )
        handles, labels = axes[0, 0].get_legend_handles_labels()
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(f"{HISTOGRAM_BINS} equal bins over the range (width {width_text})")
        plotting.legend_below(fig, handles, labels, ncols=3)
    return fig


def draw_saturation_depth(result):
    """Saturated fraction (bounded activations) and dead fraction (ReLU family) against depth, measured beside the
    mean-field prediction (dashed)."""
    from matplotlib.lines import Line2D

    from .. import plotting

    p = result.params
    inits, acts, depth = p["inits"], p["activations"], p["depth"]
    layers = np.arange(1, depth + 1)
    marks = _marked(depth)
    a = result.arrays

    # saturated (bounded) and dead (ReLU family) fraction vs depth
    bounded = [j for j, act in enumerate(acts) if activation_registry.get(act).bounded]
    panels = [(j, "saturated_frac", "saturated fraction") for j in bounded]
    panels += [
        (j, "dead_frac", "dead fraction") for j, act in enumerate(acts) if activation_registry.get(act).relu_like
    ]
    fig, axes = plotting.figure(1, max(1, len(panels)), squeeze=False, width="page", height=2.9, sharey=True)
    for k, (j, key, ylabel) in enumerate(panels):
        ax = axes[0, k]
        relu = key == "dead_frac"
        drawn = []  # (curve, label): initialisers with the same measured curve share one entry
        for i, spec in enumerate(inits):
            values = np.asarray(a[f"{key}_measured"][i, j], float)
            same = next((d for d in drawn if np.array_equal(d[0], values, equal_nan=True)), None) if relu else None
            if same is not None:
                same[1].append(init_name(spec))
                continue
            drawn.append((values, [init_name(spec)], i))
        for values, names, i in drawn:
            color, marker = plotting.color(i), plotting.marker(i)
            label = ", ".join(names)
            if len(names) >= 3:  # one curve for all of them, in a colour of its own
                color, marker, label = "black", "X", "ReLU: every nonzero init"
            plotting.measured(ax, layers[marks], values[marks], color=color, marker=marker, label=label)
            plotting.theory(ax, layers, a[f"{key}_predicted"][i, j], color=color, linewidth=0.9)
        ax.set_ylim(-0.03, 1.03)
        title = f"{activation_name(acts[j])}: {ylabel}"
        plotting.finish(ax, xlabel="layer $l$", ylabel=ylabel if k == 0 else "", title=title, legend=False)
        if relu:
            ax.text(
                0.97,
                0.5,
                "ReLU is positively homogeneous:\nwhether a unit is dead does\nnot depend "
                "on the weights' scale,\nso every nonzero init coincides",
                transform=ax.transAxes,
                ha="right",
                va="center",
                fontsize=7,
                color="0.25",
            )
        ax.set_ylabel("fraction of units")
    if not panels:
        plotting.finish(axes[0, 0], xlabel="layer $l$", ylabel="fraction", legend=False)
    else:
        handles, labels = [], []
        for ax in axes[0]:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                if label not in labels:
                    handles.append(handle)
                    labels.append(label)
        handles.append(Line2D([], [], color="0.3", linestyle="--", linewidth=0.9))
        labels.append("mean-field prediction")
        plotting.legend_below(fig, handles, labels, ncols=4)
    return fig


def draw_phase_diagram(result):
    """The order/chaos phase diagram in (sigma_w^2, sigma_b^2): the correlation depth scale xi_c as a map, the
    critical line chi_1 = 1, and measured nets with their chi_1 beside the theory's."""
    from matplotlib.lines import Line2D

    from .. import plotting

    p = result.params
    a = result.arrays

    # phase diagram
    fig, ax = plotting.figure(width="page", height=3.4)
    sw2, sb2 = a["phase_sigma_w2"], a["phase_sigma_b2"]
    xi = np.log10(np.clip(a["phase_xi_c"], 1e-1, 1e3))
    mesh = ax.pcolormesh(sw2, sb2, xi, shading="nearest", cmap="viridis", vmin=-1, vmax=3, zorder=0)
    with plotting.style():
        colorbar = fig.colorbar(mesh, ax=ax)
        colorbar.set_label(r"$\log_{10}\,\xi_c$ (correlation depth scale)")
    critical_w, critical_b = a["critical_sigma_w2"], a["critical_sigma_b2"]
    ax.plot(critical_w, critical_b, color="white", linestyle="--", linewidth=1.4, zorder=3)
    finite = np.flatnonzero(np.isfinite(critical_w))
    if finite.size:
        at = finite[int(0.4 * (finite.size - 1))]
        ax.annotate(
            r"critical line $\chi_1 = 1$",
            (critical_w[at], critical_b[at]),
            textcoords="offset points",
            xytext=(-8, 0),
            fontsize=8,
            color="black",
            va="center",
            ha="right",
            bbox=dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor="none", alpha=0.9),
        )
    points = a["phase_points"]
    if len(points):
        chi_measured = a["phase_points_measured"][:, 1]
        chi_predicted = a["phase_points_predicted"][:, 1]
        ordered = chi_measured < 1.0
        plotting.measured(
            ax,
            points[ordered, 0],
            points[ordered, 1],
            color=plotting.color(3),
            marker="o",
            markeredgecolor="black",
            markersize=5,
            label=r"measured net, $\chi_1 < 1$ (ordered)",
        )
        plotting.measured(
            ax,
            points[~ordered, 0],
            points[~ordered, 1],
            color=plotting.color(1),
            marker="^",
            markeredgecolor="black",
            markersize=5,
            label=r"measured net, $\chi_1 > 1$ (chaotic)",
        )
        for (w2, b2), chi, chi_theory in zip(points, chi_measured, chi_predicted):
            ax.annotate(
                f"{chi:.2f} | {chi_theory:.2f}",
                (w2, b2),
                textcoords="offset points",
                xytext=(5, 5),
                fontsize=7,
                color="black",
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.85),
            )
    # the map's cells are centred on the grid: its edges lie half a cell out; every measured point lies inside
    half_w, half_b = 0.5 * (sw2[1] - sw2[0]), 0.5 * (sb2[1] - sb2[0])
    low_w = min([sw2[0] - half_w] + [w2 for w2, _ in points])
    high_w = max([sw2[-1] + half_w] + [w2 for w2, _ in points])
    low_b = min([sb2[0] - half_b] + [b2 for _, b2 in points])
    high_b = max([sb2[-1] + half_b] + [b2 for _, b2 in points])
    ax.set_xlim(low_w, high_w)
    ax.set_ylim(max(0.0, low_b) if low_b >= -half_b else low_b, high_b)
    ax.grid(False)
    plotting.finish(
        ax,
        xlabel=r"$\sigma_w^2$",
        ylabel=r"$\sigma_b^2$",
        legend=False,
        title=f"{activation_name(p['phase_activation'])}: order (left) and chaos (right)",
    )
    handles, labels = ax.get_legend_handles_labels()
    handles.insert(0, Line2D([], [], color="0.2", linestyle="--"))
    labels.insert(0, r"critical line $\chi_1 = 1$ (theory; white on the map)")
    handles.append(Line2D([], [], linestyle="none"))
    labels.append(r"labels: $\chi_1$ measured | mean-field prediction")
    plotting.legend_below(fig, handles, labels, ncols=2)
    return fig


def _coinciding_inits(inits, width):
    """Glorot's specs that equal LeCun's here (equal fan-in and fan-out): drawn open so that LeCun shows beneath."""
    names = [parse_init(spec)[0] for spec in inits]
    return {
        spec
        for spec, name in zip(inits, names)
        if name.startswith("glorot") and name.replace("glorot", "lecun") in names
    }


def add_arguments(parser):
    parser.add_argument(
        "--inits",
        type=common.comma_list(str),
        default=None,
        help="initialisers, comma-separated; parameters after colons (normal:std=0.01)",
    )
    parser.add_argument(
        "--activations",
        type=common.comma_list(str),
        default=None,
        help="activations, comma-separated (tanh,relu,linear,sigmoid)",
    )
    parser.add_argument("--depth", type=int, default=None, help="number of layers L")
    parser.add_argument("--width", type=int, default=None, help="width of every layer, the input included")
    parser.add_argument("--batch", type=int, default=None, help="inputs per net")
    parser.add_argument("--bias-var", dest="bias_var", type=float, default=None, help="bias variance sigma_b^2")
    parser.add_argument(
        "--phase-activation", dest="phase_activation", default=None, help="activation of the phase diagram"
    )


#: The figures, by name (the file stem, and what a preset's ``figure`` names): each draws one from a result.
FIGURES = {
    "variance_depth": draw_variance_depth,
    "activation_histograms": draw_activation_histograms,
    "saturation_depth": draw_saturation_depth,
    "phase_diagram": draw_phase_diagram,
}


if __name__ == "__main__":
    raise SystemExit(common.main(__name__))
