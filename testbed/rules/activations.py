"""Activation functions and their derivatives, as scalar rules.

Each activation has an integer code; :func:`value` and :func:`derivative` dispatch on it, so one compiled kernel
serves every activation (LLVM hoists the loop-invariant branch out of the kernels' inner loops). ``param`` is the
one hyperparameter of the families that have one (leaky_relu's negative slope, elu's alpha) and is ignored by the
others. The names, defaults and bounds live in :mod:`testbed.activations`.
"""
import math

LINEAR = 0
TANH = 1
RELU = 2
LEAKY_RELU = 3
SIGMOID = 4
SOFTPLUS = 5
ELU = 6
SELU = 7
GELU = 8
ERF = 9
HARD_TANH = 10

#: SELU's constants (Klambauer et al. 2017), to double precision.
SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717
INV_SQRT2 = 0.70710678118654752440084436210485
INV_SQRT_2PI = 0.39894228040143267793994605993438
TWO_OVER_SQRT_PI = 1.1283791670955125738961589031215


def sigmoid(x):
    """1 / (1 + exp(-x)), evaluated without overflow for either sign of x."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def value(code, x, param):
    """phi(x) for the activation with this code."""
    if code == LINEAR:
        return x
    if code == TANH:
        return math.tanh(x)
    if code == RELU:
        return x if x > 0.0 else 0.0 * x
    if code == LEAKY_RELU:
        return x if x > 0.0 else param * x
    if code == SIGMOID:
        return sigmoid(x)
    if code == SOFTPLUS:
        # log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow, no cancellation
        return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    if code == ELU:
        return x if x > 0.0 else param * math.expm1(x)
    if code == SELU:
        return SELU_LAMBDA * (x if x > 0.0 else SELU_ALPHA * math.expm1(x))
    if code == GELU:
        return 0.5 * x * (1.0 + math.erf(x * INV_SQRT2))
    if code == ERF:
        return math.erf(x)
    if code == HARD_TANH:
        return min(max(x, -1.0), 1.0)
    return math.nan


def derivative(code, x, param):
    """phi'(x) for the activation with this code (the one-sided value 0 or 1 at ReLU-like kinks: x > 0 is 1)."""
    if code == LINEAR:
        return 1.0
    if code == TANH:
        t = math.tanh(x)
        return 1.0 - t * t
    if code == RELU:
        return 1.0 if x > 0.0 else 0.0
    if code == LEAKY_RELU:
        return 1.0 if x > 0.0 else param
    if code == SIGMOID:
        s = sigmoid(x)
        return s * (1.0 - s)
    if code == SOFTPLUS:
        return sigmoid(x)
    if code == ELU:
        return 1.0 if x > 0.0 else param * math.exp(x)
    if code == SELU:
        return SELU_LAMBDA * (1.0 if x > 0.0 else SELU_ALPHA * math.exp(x))
    if code == GELU:
        return 0.5 * (1.0 + math.erf(x * INV_SQRT2)) + x * INV_SQRT_2PI * math.exp(-0.5 * x * x)
    if code == ERF:
        return TWO_OVER_SQRT_PI * math.exp(-x * x)
    if code == HARD_TANH:
        return 1.0 if -1.0 < x < 1.0 else 0.0
    return math.nan
