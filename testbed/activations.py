"""The activation registry: names, codes, hyperparameters, bounds and vectorised NumPy evaluation.

The arithmetic lives once, in :mod:`testbed.rules.activations`, as scalar rules compiled for both targets.

==============  ==========================================  =============================  ========
name            phi(s)                                      phi'(s)                        bounds
==============  ==========================================  =============================  ========
linear          s                                           1                              none
tanh            tanh s                                      1 - tanh^2 s                   (-1, 1)
relu            max(s, 0)                                   [s > 0]                        [0, inf)
leaky_relu(a)   s if s > 0 else a s  (a = 0.01)             1 or a                         none
sigmoid         1 / (1 + e^-s)                              sigma (1 - sigma)              (0, 1)
softplus        log(1 + e^s)                                sigma(s)                       (0, inf)
elu(a)          s if s > 0 else a (e^s - 1)  (a = 1)        1 or a e^s                     (-a, inf)
selu            lambda (s if s > 0 else alpha (e^s - 1))    Klambauer et al. 2017          (-lambda alpha, inf)
gelu            s Phi(s) = s (1 + erf(s / sqrt 2)) / 2      Phi(s) + s phi_N(s)            none
erf             erf s                                       2 e^(-s^2) / sqrt(pi)          (-1, 1)
hard_tanh       clip(s, -1, 1)                              [|s| < 1]                      [-1, 1]
==============  ==========================================  =============================  ========
"""

import dataclasses

import numpy as np

from .rules import activations as rules
from .validation import check_finite, unknown_name_error


@dataclasses.dataclass(frozen=True)
class Activation:
    """An activation function: its name, rule code, hyperparameter and the bounds that define saturation.

    ``lower``/``upper`` are the bounds of a bounded activation (None where unbounded); a unit is saturated when
    ``|phi(s)|`` lies within 1% of a bound. ``relu_like`` marks the ReLU family, whose zero outputs and dead
    units the signal-propagation statistics count.
    """

    name: str
    code: int
    param: float = 0.0
    lower: float | None = None
    upper: float | None = None
    relu_like: bool = False

    @property
    def bounded(self):
        return self.lower is not None and self.upper is not None

    def __call__(self, s):
        """phi(s), elementwise, through the scalar rule (slow reference path; kernels compile the rule)."""
        return _vectorised(rules.value, self.code, s, self.param)

    def derivative(self, s):
        """phi'(s), elementwise, through the scalar rule."""
        return _vectorised(rules.derivative, self.code, s, self.param)


def _vectorised(rule, code, s, param):
    s = np.asarray(s, dtype=np.float64)
    return np.vectorize(lambda x: rule(code, float(x), param), otypes=[np.float64])(s)


#: name -> (code, default parameter name and value or None, lower bound, upper bound, ReLU family)
_TABLE = {
    "linear": (rules.LINEAR, None, None, None, False),
    "tanh": (rules.TANH, None, -1.0, 1.0, False),
    "relu": (rules.RELU, None, None, None, True),
    "leaky_relu": (rules.LEAKY_RELU, ("negative_slope", 0.01), None, None, True),
    "sigmoid": (rules.SIGMOID, None, 0.0, 1.0, False),
    "softplus": (rules.SOFTPLUS, None, None, None, False),
    "elu": (rules.ELU, ("alpha", 1.0), None, None, False),
    "selu": (rules.SELU, None, None, None, False),
    "gelu": (rules.GELU, None, None, None, False),
    "erf": (rules.ERF, None, -1.0, 1.0, False),
    "hard_tanh": (rules.HARD_TANH, None, -1.0, 1.0, False),
}
ALIASES = {"identity": "linear", "hardtanh": "hard_tanh", "leakyrelu": "leaky_relu"}
NAMES = tuple(_TABLE)


def get(name, **params):
    """The :class:`Activation` called ``name`` (or an alias), with its hyperparameter if it has one.

    >>> get("leaky_relu", negative_slope=0.2).param
    0.2
    """
    if isinstance(name, Activation):
        if params:
            raise ValueError("pass hyperparameters with the activation's name, not with an Activation object")
        return name
    key = ALIASES.get(name, name) if isinstance(name, str) else None
    if key not in _TABLE:
        raise unknown_name_error("activation", name, NAMES + tuple(ALIASES))
    code, default, lower, upper, relu_like = _TABLE[key]
    param = 0.0
    if default is not None:
        param_name, param = default
        param = check_finite(params.pop(param_name, param), param_name)
    if params:
        valid = f"'{default[0]}'" if default else "none"
        raise ValueError(f"activation {key!r} takes no parameter {sorted(params)}; valid parameters: {valid}")
    return Activation(key, code, param, lower, upper, relu_like)


def names():
    """Every activation name."""
    return NAMES
