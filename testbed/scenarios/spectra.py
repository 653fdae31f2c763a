"""Jacobian spectra and dynamical isometry: the singular values of J = dx^(L)/dx^(0) against depth.

Variance preservation (chi_1 = 1) keeps the *mean* squared singular value of the input-output Jacobian at 1. A
net is dynamically isometric when *all* of them stay near 1 (Saxe et al. 2014; Pennington, Schoenholz & Ganguli
2017). For each activation (linear, ReLU, tanh, hard tanh) and weight law (Gaussian, orthogonal), a net at the
critical point is built and :func:`testbed.spectra.jacobian_singular_values` computes every singular value of J
at a few random inputs, at several depths of the same net (J_l = D_l W_l ... D_1 W_1 for l = 1..L). Beside it,
:mod:`testbed.theory.spectra`:

- densities of the singular values per depth, Gaussian against orthogonal, on a log axis, with the free-probability
  law of each net overlaid at every depth (:func:`testbed.theory.spectra.jacobian_density`, the S-transform
  product ``S_{JJ^T} = S_{D^2}^L S_{WW^T}^L``, for orthogonal weights the free power ``sigma_w^(2L) nu^(⊠L)`` of the
  law of phi'^2 by subordination; the Fuss-Catalan law for Gaussian linear nets); the atoms of the law drawn as
  vertical lines labelled with their masses: the orthogonal linear net's point mass at 1, and orthogonal hard tanh's
  atom at its top sigma_w^L of mass ``1 - L P(|h| > 1)`` (~1 - 1e-13 at q* = 1/64: nearly isometric), and the atom
  at sigma = 0 (ReLU, hard tanh) written beside the measured share below the axis;
- the variance of the squared singular values against depth, measured (points, mean over inputs) beside the
  free-probability prediction ``sigma^2_{JJ^T} = L (mu_2 / mu_1^2 - 1 - s_1)`` (dashed): linear L and 0, ReLU
  2L and L (no dynamical isometry with any weights), tanh and hard tanh at small q* near 0 with orthogonal
  weights and near L with Gaussian ones.

Critical points: ReLU at sigma_w^2 = 2, sigma_b^2 = 0; linear at sigma_w^2 = 1; tanh and hard tanh on the critical
line at the fixed point ``q_star`` (sigma_w^2 = 1 / mu_1(q*), sigma_b^2 = q* - sigma_w^2 E[phi(h)^2]), with the
inputs' mean square chosen so that layer 1 is at q* already. Gaussian weights are N(0, sigma_w^2 / n), orthogonal
ones sigma_w Q.
"""

from __future__ import annotations

import math

import numpy as np

from .. import activations as activation_registry
from .. import backend as backends
from .. import spectra, validation
from ..results import Result, Timer
from ..theory import spectra as theory
from . import common

DEFAULTS = dict(
    activations=["linear", "relu", "tanh", "hard_tanh"],
    weights=["gaussian", "orthogonal"],
    depths=[2, 8, 32, 128],
    variance_depths=[1, 2, 4, 8, 16, 32, 64, 128],
    width=512,
    inputs=4,
    q_star=1.0 / 64.0,
    seed=0,
    backend="cpu",
    theory_points=900,
)
QUICK = dict(depths=[2, 8, 32], variance_depths=[1, 2, 4, 8, 16, 32], width=64, inputs=2, theory_points=300)
WEIGHTS = tuple(theory.WEIGHT_S1)

#: Bins per decade of the singular-value histograms, and the decades shown (log10 sigma from DENSITY_RANGE[0]
#: to DENSITY_RANGE[1]); smaller singular values are counted in the "below" fraction of each panel.
BINS_PER_DECADE = 12
DENSITY_RANGE = (-3.0, 1.5)

#: The density at which an atom of the theory is marked (a triangle on its dotted line), near the top of the plotted
#: range (3e2) and above the curves (a measured density is at most BINS_PER_DECADE: every value in one bin): its
#: label stands beside the mark, out of the curves' way. The label's gap from the mark and the step between the
#: labels of two weight laws' atoms in one panel, in points.
ATOM_MARK = 1.5e2
ATOM_LABEL_GAP = 4.0
ATOM_LABEL_STEP = 9.0


# ------------------------------------------------------------------------------------------------------------------
# parameters


def _check_weights(value):
    if value not in WEIGHTS:
        raise ValueError(f"weights must be among {', '.join(WEIGHTS)}, got {value!r}")
    return value


def validate(p):
    """Check every parameter of :data:`DEFAULTS`; ValueError naming the parameter."""
    p = dict(p)
    p["activations"] = common.check_list(
        p["activations"], "activations", lambda a: activation_registry.get(a).name, single=False
    )
    for name in p["activations"]:
        if name not in ("linear", "relu", "tanh", "hard_tanh", "erf"):
            raise ValueError(
                f"activations must be among linear, relu, tanh, hard_tanh, erf (those with a critical "
                f"point at every q*), got {name!r}"
            )
    p["weights"] = common.check_list(p["weights"], "weights", _check_weights, single=False)
    for key in ("depths", "variance_depths"):
        p[key] = sorted(
            set(common.check_list(p[key], key, lambda v, key=key: validation.check_positive_int(v, key), single=False))
        )
    p["width"] = validation.check_positive_int(p["width"], "width")
    p["inputs"] = validation.check_positive_int(p["inputs"], "inputs")
    p["theory_points"] = validation.check_positive_int(p["theory_points"], "theory_points")
    p["q_star"] = validation.check_finite(p["q_star"], "q_star", minimum=0.0, strict=True)
    p["seed"] = validation.check_seed(p["seed"])
    backends.resolve(p["backend"])
    return p


def critical_setting(activation, q_star):
    """(sigma_w^2, sigma_b^2, input mean square) of the critical net the scenario builds for ``activation``."""
    if activation == "relu":
        return 2.0, 0.0, 1.0
    if activation == "linear":
        return 1.0, 0.0, 1.0
    sigma_w2, sigma_b2 = theory.critical_point(activation, q_star)
    return sigma_w2, sigma_b2, theory.fixed_point_input_var(activation, q_star, sigma_w2, sigma_b2)


def _init(weights, sigma_w2, width):
    if weights == "gaussian":
        return "normal", dict(std=math.sqrt(sigma_w2 / width))
    return "orthogonal", dict(gain=math.sqrt(sigma_w2))


# ------------------------------------------------------------------------------------------------------------------
# the run


def run(*, quick=False, progress=True, **params):
    """Spectra for every activation x weight law; return the :class:`~testbed.results.Result`."""
    p = validate(common.merge_params(DEFAULTS, QUICK, quick, params))
    acts, laws, width = p["activations"], p["weights"], p["width"]
    depths, variance_depths = p["depths"], p["variance_depths"]
    deepest = max(depths + variance_depths)
    recorded = sorted(set(depths) | set(variance_depths))
    edges = np.linspace(*DENSITY_RANGE, int(round((DENSITY_RANGE[1] - DENSITY_RANGE[0]) * BINS_PER_DECADE)) + 1)
    densities = np.zeros((len(acts), len(laws), len(depths), edges.size - 1))
    below = np.zeros((len(acts), len(laws), len(depths)))
    variance = np.full((len(acts), len(laws), len(variance_depths), p["inputs"]), math.nan)
    mean = np.full_like(variance, math.nan)
    predicted_variance = np.full((len(acts), len(laws), deepest), math.nan)
    predicted_mean = np.full_like(predicted_variance, math.nan)
    settings = np.zeros((len(acts), 3))
    theory_grid = np.linspace(*DENSITY_RANGE, p["theory_points"])
    theory_density = np.full((len(acts), len(laws), len(depths), theory_grid.size), math.nan)
    theory_point_mass = np.full((len(acts), len(laws), len(depths)), math.nan)
    theory_atom = np.full((len(acts), len(laws), len(depths)), math.nan)  # log10 sigma of the top atom
    theory_atom_mass = np.zeros((len(acts), len(laws), len(depths)))
    theory_zero_mass = np.zeros((len(acts), len(laws), len(depths)))
    rows = []
    with Timer() as timer:
        grid = [(i, j) for i in range(len(acts)) for j in range(len(laws))]
        for i, j in common.progress(grid, desc="activation x weights", enabled=progress):
            act, law = acts[i], laws[j]
            sigma_w2, sigma_b2, input_var = critical_setting(act, p["q_star"])
            settings[i] = sigma_w2, sigma_b2, input_var
            init, init_params = _init(law, sigma_w2, width)
            result = spectra.jacobian_singular_values(
                init,
                act,
                deepest,
                width,
                input_var=input_var,
                bias_var=sigma_b2,
                batch=p["inputs"],
                seed=p["seed"],
                backend=p["backend"],
                depths=recorded,
                **init_params,
            )
            prediction = theory.jacobian_moments(act, deepest, sigma_w2, sigma_b2, weights=law, input_var=input_var)
            predicted_variance[i, j] = prediction.variance
            predicted_mean[i, j] = prediction.mean
            for k, depth in enumerate(depths):
                curve, atoms = free_density(act, law, depth, sigma_w2, sigma_b2, theory_grid)
                if isinstance(curve, float):
                    theory_point_mass[i, j, k] = curve
                else:
                    theory_density[i, j, k] = curve
                theory_zero_mass[i, j, k] = atoms["zero_mass"]
                if atoms["atoms"].size:
                    theory_atom[i, j, k] = 0.5 * math.log10(atoms["atoms"][-1])
                    theory_atom_mass[i, j, k] = atoms["atom_masses"][-1]
                values = result.at(depth).astype(np.float64).ravel()
                with np.errstate(divide="ignore"):
                    logs = np.log10(values)
                counts, _ = np.histogram(logs, bins=edges)
                densities[i, j, k] = counts / (values.size * np.diff(edges))
                below[i, j, k] = float(np.mean(logs < edges[0]))
            for k, depth in enumerate(variance_depths):
                mean[i, j, k], variance[i, j, k] = spectra.Spectra.spectral_moments(result.at(depth))
                rows.append(
                    dict(
                        activation=act,
                        weights=law,
                        depth=depth,
                        mean_measured=float(np.mean(mean[i, j, k])),
                        mean_predicted=float(prediction.mean[depth - 1]),
                        variance_measured=float(np.mean(variance[i, j, k])),
                        variance_predicted=float(prediction.variance[depth - 1]),
                        slope_predicted=float(prediction.spread[0]),
                        sigma_min=float(result.at(depth).min()),
                        sigma_max=float(result.at(depth).max()),
                    )
                )
    summary = dict(
        q_star=p["q_star"],
        isometry_slope={
            f"{act}/{law}": float(predicted_variance[i, j, 0])
            for i, act in enumerate(acts)
            for j, law in enumerate(laws)
        },
    )
    arrays = dict(
        density_edges=edges,
        densities=densities,
        below=below,
        variance=variance,
        mean=mean,
        predicted_variance=predicted_variance,
        predicted_mean=predicted_mean,
        settings=settings,
        theory_grid=theory_grid,
        theory_density=theory_density,
        theory_point_mass=theory_point_mass,
        theory_atom=theory_atom,
        theory_atom_mass=theory_atom_mass,
        theory_zero_mass=theory_zero_mass,
    )
    out = Result("spectra", p, summary, arrays=arrays, tables=dict(summary=rows))
    out.wall_time = timer.seconds
    return out


# ------------------------------------------------------------------------------------------------------------------
# output


def table(result):
    """Mean and variance of the squared singular values per depth, measured (mean over inputs) | theory."""
    columns = [
        "activation",
        "weights",
        "depth",
        "mean_measured",
        "mean_predicted",
        "variance_measured",
        "variance_predicted",
        "sigma_min",
        "sigma_max",
    ]
    headers = dict(
        mean_measured="m1 meas",
        mean_predicted="m1 theory",
        variance_measured="var meas",
        variance_predicted="var theory",
        sigma_min="sigma min",
        sigma_max="sigma max",
    )
    return common.format_table(result.tables["summary"], columns, headers=headers, floatfmt=".3g")


def free_density(activation, law, depth, sigma_w2, sigma_b2, grid):
    """The free-probability law of log10 sigma on ``grid`` (:func:`testbed.theory.spectra.jacobian_density`, the
    Fuss-Catalan law for Gaussian linear nets): ``(curve, atoms)`` with ``curve`` the density of the continuous
    part, ``rho_lambda(lambda) 2 lambda ln 10`` at lambda = 10^(2u) (a float, log10 of the point's sigma, where the
    law is approximately a point mass), and ``atoms`` a dict of ``zero_mass``, ``atoms`` (lambda) and
    ``atom_masses``."""
    lam = 10.0 ** (2.0 * grid)
    if activation == "linear" and law == "gaussian":
        curve = theory.fuss_catalan_density(depth, lam) * 2.0 * lam * math.log(10.0)
        return curve, dict(zero_mass=0.0, atoms=np.zeros(0), atom_masses=np.zeros(0))
    law_of = theory.jacobian_density(lam, activation, depth, sigma_w2, sigma_b2, weights=law)
    atoms = dict(zero_mass=law_of.zero_mass, atoms=law_of.atoms, atom_masses=law_of.atom_masses)
    if law_of.point_mass is not None and law_of.atoms.size == 0:
        return 0.5 * math.log10(law_of.point_mass), atoms
    return law_of.density * 2.0 * lam * math.log(10.0), atoms


def draw_densities(result):
    """Densities of the input-output Jacobian's singular values at each depth, per activation and weight law,
    beside free probability."""
    from matplotlib.lines import Line2D

    from .. import plotting

    p, a = result.params, result.arrays
    acts, laws, depths = p["activations"], p["weights"], p["depths"]
    edges = a["density_edges"]
    small = {
        "font.size": 7,
        "axes.titlesize": 7,
        "axes.labelsize": 7,
        "xtick.labelsize": 7,
        "ytick.labelsize": 7,
        "legend.fontsize": 7,
    }

    import matplotlib

    with matplotlib.rc_context(small):
        fig, axes = plotting.figure(
            len(acts), len(depths), squeeze=False, sharex=True, figsize=(6.75, 1.25 * len(acts) + 0.6)
        )
    atom_labels = []
    for i, act in enumerate(acts):
        for k, depth in enumerate(depths):
            ax = axes[i, k]
            notes = []
            for j, law in enumerate(laws):
                color = plotting.color(j)
                ax.stairs(
                    a["densities"][i, j, k],
                    edges,
                    color=color,
                    linewidth=1.0,
                    fill=False,
                    label=law if (i == 0 and k == 0) else None,
                )
                zero = a["theory_zero_mass"][i, j, k] if "theory_zero_mass" in a else 0.0
                if a["below"][i, j, k] > 0.005 or zero > 0.005:
                    at_zero = f" ({100 * zero:.0f}% at 0)" if zero > 0.005 else ""
                    notes.append((color, f"{100 * a['below'][i, j, k]:.0f}% <1e-3{at_zero}"))
                curve = a["theory_density"][i, j, k]
                if np.any(np.isfinite(curve)):
                    plotting.theory(ax, a["theory_grid"], curve, color=color, linewidth=1.0)
                if "theory_atom" in a and np.isfinite(a["theory_atom"][i, j, k]):
                    where = a["theory_atom"][i, j, k]
                    ax.axvline(where, color=color, linestyle=":", linewidth=1.2, zorder=3)
                    ax.plot([where], [ATOM_MARK], marker="v", color=color, markersize=3.5, zorder=4)
                    mass = a["theory_atom_mass"][i, j, k]
                    atom_labels.append(
                        ax.annotate(
                            f"atom {mass:.3g}" if mass < 0.9995 else f"atom 1-{1 - mass:.0e}" if mass < 1 else "atom 1",
                            (where, ATOM_MARK),
                            xytext=(ATOM_LABEL_GAP, -ATOM_LABEL_GAP - ATOM_LABEL_STEP * j),
                            textcoords="offset points",
                            fontsize=7,
                            color=color,
                            ha="left",
                            va="center",
                        )
                    )
                if np.isfinite(a["theory_point_mass"][i, j, k]):
                    ax.axvline(
                        a["theory_point_mass"][i, j, k],
                        color=color,
                        linestyle="--",
                        linewidth=1.0,
                        zorder=3,
                    )
            for n, (color, text) in enumerate(notes):
                ax.text(
                    0.03, 0.95 - 0.14 * n, text, transform=ax.transAxes, ha="left", va="top", fontsize=7, color=color
                )
            ax.set_xlim(*edges[[0, -1]])
            ax.set_yscale("log")
            ax.set_ylim(1e-3, 3e2)
            ax.tick_params(labelsize=7)
            if i == 0:
                ax.set_title(f"depth {depth}", fontsize=7)
            if k == 0:
                ax.set_ylabel(f"{act}\ndensity", fontsize=7)
            else:  # the same y range in every panel of a row: its scale is read off the first column
                ax.tick_params(labelleft=False)
            if i == len(acts) - 1:
                ax.set_xlabel(r"$\log_{10}\sigma$", fontsize=7)
    _keep_inside(fig, atom_labels)
    handles = [Line2D([], [], color=plotting.color(j)) for j in range(len(laws))]
    labels = [f"{law} weights (measured)" for law in laws]
    handles += [Line2D([], [], color=plotting.color(j), linestyle="--") for j in range(len(laws))]
    labels += [f"{law}: free probability (dashed)" for law in laws]
    handles += [Line2D([], [], linestyle="none")] * 2
    labels += [
        "Gaussian linear: Fuss-Catalan;\northogonal: free power by subordination",
        "dotted line + mass: an atom of the theory;\n'at 0': its atom at sigma = 0",
    ]
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    return fig


def _keep_inside(fig, labels):
    """Move each atom label that would run past its panel's right edge to the left of its mark."""
    if not labels:
        return
    from .. import plotting

    renderer = plotting._renderer(fig)
    for label in labels:
        if label.get_window_extent(renderer).x1 > label.axes.get_window_extent(renderer).x1:
            dx, dy = label.xyann
            label.xyann = (-dx, dy)
            label.set_horizontalalignment("right")


def draw_variance(result):
    """Variance of the squared singular values against depth, measured beside free probability's prediction."""
    from matplotlib.lines import Line2D

    from .. import plotting

    p, a = result.params, result.arrays
    acts, laws = p["activations"], p["weights"]
    small = {
        "font.size": 7,
        "axes.titlesize": 7,
        "axes.labelsize": 7,
        "xtick.labelsize": 7,
        "ytick.labelsize": 7,
        "legend.fontsize": 7,
    }

    import matplotlib

    # variance of the squared singular values against depth
    variance_depths = np.array(p["variance_depths"])
    deepest = a["predicted_variance"].shape[-1]
    ell = np.arange(1, deepest + 1)
    with matplotlib.rc_context(small):
        fig, axes = plotting.figure(1, len(laws), squeeze=False, sharey=True, figsize=(6.75, 2.6))
    floor = 1e-6
    for j, law in enumerate(laws):
        ax = axes[0, j]
        for i, act in enumerate(acts):
            color, marker = plotting.color(i), plotting.marker(i)
            measured = np.mean(a["variance"][i, j], axis=-1)
            spread = np.std(a["variance"][i, j], axis=-1)
            # open markers, largest first, so that coinciding series (linear, tanh, hard tanh ~ L) stay visible
            plotting.measured(
                ax,
                variance_depths,
                np.maximum(measured, floor),
                color=color,
                marker=marker,
                markersize=6.0 - 1.2 * i,
                markerfacecolor="none",
                markeredgewidth=1.0,
                label=act,
            )
            if a["variance"].shape[-1] > 1:
                ax.vlines(
                    variance_depths,
                    np.maximum(measured - spread, floor),
                    np.maximum(measured + spread, floor),
                    color=color,
                    linewidth=0.8,
                )
            plotting.theory(ax, ell, np.maximum(a["predicted_variance"][i, j], floor), color=color, linewidth=1.0)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_ylim(floor / 2, None)
        plotting.finish(
            ax,
            xlabel="depth $L$",
            ylabel=r"variance of $\sigma^2$ (eigenvalues of $JJ^T$)" if j == 0 else "",
            title=f"{law} weights",
            legend=False,
        )
        ax.tick_params(labelsize=7)
        ax.xaxis.label.set_size(7)
        ax.yaxis.label.set_size(7)
        ax.title.set_size(7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.3", linestyle="--"))
    labels.append(f"free probability\n(tanh, hard tanh at q* = {p['q_star']:.3g})")
    handles.append(Line2D([], [], linestyle="none"))
    labels.append(f"bars: \u00b1 s.d. over inputs\nvalues below {floor:g} drawn at it")
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    return fig


def add_arguments(parser):
    parser.add_argument(
        "--activations",
        type=common.comma_list(str),
        default=None,
        help="activations, comma-separated (linear,relu,tanh,hard_tanh)",
    )
    parser.add_argument(
        "--weights",
        type=common.comma_list(str),
        default=None,
        help="weight laws, comma-separated (gaussian,orthogonal)",
    )
    parser.add_argument(
        "--depths", type=common.comma_list(int), default=None, help="depths of the density panels, comma-separated"
    )
    parser.add_argument(
        "--variance-depths",
        dest="variance_depths",
        type=common.comma_list(int),
        default=None,
        help="depths of the variance curve, comma-separated",
    )
    parser.add_argument("--width", type=int, default=None, help="width n of every layer")
    parser.add_argument("--inputs", type=int, default=None, help="random inputs per net")
    parser.add_argument(
        "--theory-points",
        dest="theory_points",
        type=int,
        default=None,
        help="points of the free-probability density curves (log10 sigma grid)",
    )
    parser.add_argument(
        "--q-star",
        dest="q_star",
        type=float,
        default=None,
        help="fixed point q* of the tanh and hard-tanh nets on the critical line",
    )


#: The figures, by name (the file stem, and what a preset's ``figure`` names): each draws one from a result.
FIGURES = {
    "spectra_densities": draw_densities,
    "spectra_variance": draw_variance,
}


if __name__ == "__main__":
    raise SystemExit(common.main(__name__))
