"""Helpers shared by the escape scenarios (plateau, ravine, minima, amsgrad): optimizers by name, checks, runs.

Private to the scenarios (the leading underscore keeps it out of ``available_scenarios``).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend as backends
from .. import validation
from . import common

#: Optimizer names the escape scenarios accept, with what each builds (PyTorch's hyperparameter names).
OPTIMIZERS = {
    "sgd": "SGD(lr): plain (stochastic) gradient descent",
    "heavy_ball": "SGD(lr, momentum=mu): Polyak's heavy ball in PyTorch's form, v = mu v + g",
    "nesterov": "SGD(lr, momentum=mu, nesterov=True)",
    "momentum": "Momentum(lr, beta=mu): the lecture's running average v = b v + (1-b) g",
    "rmsprop": "RMSProp(lr)",
    "adagrad": "AdaGrad(lr)",
    "adam": "Adam(lr)",
    "amsgrad": "Adam(lr, amsgrad=True)",
}
ALIASES = {"gd": "sgd", "hb": "heavy_ball", "polyak": "heavy_ball"}


def optimizer_name(name):
    """The canonical name of an escape-scenario optimizer; ValueError naming ``optimizers`` when unknown."""
    key = ALIASES.get(name, name) if isinstance(name, str) else name
    if key not in OPTIMIZERS:
        raise validation.unknown_name_error("optimizer (in optimizers)", name, OPTIMIZERS)
    return key


def make_optimizer(name, lr, *, mu=0.9, betas=None, schedule=None):
    """A :mod:`testbed.optim` optimizer for the scenario name ``name`` at learning rate ``lr``.

    ``mu``: the momentum of heavy_ball / nesterov / momentum; ``betas``: Adam's (b1, b2) when not PyTorch's;
    ``schedule``: passed through to the optimizer (e.g. the inverse square root schedule of the Reddi example).
    """
    from .. import optim

    key = optimizer_name(name)
    extra = {} if schedule is None else {"schedule": schedule}
    if key == "sgd":
        return optim.SGD(lr=lr, **extra)
    if key == "heavy_ball":
        return optim.SGD(lr=lr, momentum=mu, **extra)
    if key == "nesterov":
        return optim.SGD(lr=lr, momentum=mu, nesterov=True, **extra)
    if key == "momentum":
        return optim.Momentum(lr=lr, beta=mu, **extra)
    if key == "rmsprop":
        return optim.RMSProp(lr=lr, **extra)
    if key == "adagrad":
        return optim.AdaGrad(lr=lr, **extra)
    adam_options = {} if betas is None else {"betas": tuple(betas)}
    return optim.Adam(lr=lr, amsgrad=(key == "amsgrad"), **adam_options, **extra)


check_list = common.check_list


def positive_list(value, name):
    return check_list(value, name, lambda v: validation.check_finite(v, name, minimum=0.0, strict=True))


def int_list(value, name, minimum=1):
    def check(v):
        number = validation.check_positive_int(v, name)
        if number < minimum:
            raise ValueError(f"{name} must be integers >= {minimum}, got {v!r}")
        return number

    return check_list(value, name, check)


def escape_summary(result):
    """(median escape step or None when censored, fraction escaped, diverged count) of an EscapeResult."""
    median = result.median()
    return (None if not math.isfinite(median) else float(median)), result.fraction_escaped, result.n_diverged


def common_checks(p):
    """Validate the parameters every escape scenario has: trials, noise, seed, backend, max_steps."""
    p["trials"] = validation.check_positive_int(p["trials"], "trials")
    p["noise"] = validation.check_finite(p["noise"], "noise", minimum=0.0)
    p["max_steps"] = validation.check_positive_int(p["max_steps"], "max_steps")
    p["seed"] = validation.check_seed(p["seed"])
    backends.resolve(p["backend"])
    return p


def add_common_arguments(parser, lr_help="comma-separated learning rates"):
    """--trials, --optimizers, --lr, --noise, --max-steps (defaults None: DEFAULTS/QUICK apply)."""
    from .common import comma_list

    parser.add_argument("--trials", type=int, default=None, help="independent trials per setting")
    parser.add_argument(
        "--optimizers", type=comma_list(str), default=None, help="comma-separated optimizers: " + ", ".join(OPTIMIZERS)
    )
    parser.add_argument("--lr", type=comma_list(float), default=None, help=lr_help)
    parser.add_argument("--noise", type=float, default=None, help="gradient-noise standard deviation sigma")
    parser.add_argument("--max-steps", dest="max_steps", type=int, default=None, help="step budget per trial")


def finite_or_nan(value):
    return float("nan") if value is None else float(value)


def as_array(values):
    return np.asarray([finite_or_nan(v) for v in values], dtype=float)
