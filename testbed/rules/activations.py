"""Activation functions and their first and second derivatives, as scalar rules.

Each activation has an integer code; :func:`value`, :func:`derivative` and :func:`second_derivative` dispatch on
it, so one compiled kernel serves every activation (LLVM hoists the loop-invariant branch out of the kernels'
inner loops). ``param`` is the one hyperparameter of the families that have one (leaky_relu's negative slope,
elu's alpha) and is ignored by the others. The names, defaults and bounds live in :mod:`testbed.activations`.
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


#: tanh(x) rounds to +-1 in float64 beyond |x| = 19.06; above TANH_CUTOFF the rule returns +-1 directly.
TANH_CUTOFF = 20.0
LOG2_E = 1.4426950408889634
#: ln 2 split in two (Cody & Waite): LN2_HI has trailing zero bits, so k * LN2_HI is exact for k < 2**11.
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
#: 1/n! for n = 2..14: Taylor coefficients of expm1(r) = r (1 + r/2! + r^2/3! + ...), |r| <= ln(2)/2.
INV_FACTORIAL_2 = 1.0 / 2.0
INV_FACTORIAL_3 = 1.0 / 6.0
INV_FACTORIAL_4 = 1.0 / 24.0
INV_FACTORIAL_5 = 1.0 / 120.0
INV_FACTORIAL_6 = 1.0 / 720.0
INV_FACTORIAL_7 = 1.0 / 5040.0
INV_FACTORIAL_8 = 1.0 / 40320.0
INV_FACTORIAL_9 = 1.0 / 362880.0
INV_FACTORIAL_10 = 1.0 / 3628800.0
INV_FACTORIAL_11 = 1.0 / 39916800.0
INV_FACTORIAL_12 = 1.0 / 479001600.0
INV_FACTORIAL_13 = 1.0 / 6227020800.0
INV_FACTORIAL_14 = 1.0 / 87178291200.0


def tanh(x):
    """tanh(x) from arithmetic alone, so that compiled loops over it vectorise (libm's tanh does not).

    With y = 2|x| = k ln 2 + r (k = round(y / ln 2), |r| <= ln(2)/2, Cody-Waite reduction),
    expm1(y) = 2^k expm1(r) + (2^k - 1) with expm1(r) by its Taylor series to r^14 (truncation below 1e-17
    relative), 2^k an integer shift, and tanh|x| = expm1(y) / (expm1(y) + 2): no cancellation anywhere, so the
    result is within a few ulp of the correctly rounded tanh (tests/test_nn.py checks 4e-16 relative against
    NumPy over the whole range). |x| >= TANH_CUTOFF gives +-1, NaN gives NaN, the sign of zero is kept.
    """
    magnitude = abs(x)
    y = 2.0 * magnitude if magnitude < TANH_CUTOFF else 2.0 * TANH_CUTOFF  # NaN takes the second branch
    k = int(y * LOG2_E + 0.5)
    r = (y - k * LN2_HI) - k * LN2_LO
    expm1_r = r * (
        1.0
        + r
        * (
            INV_FACTORIAL_2
            + r
            * (
                INV_FACTORIAL_3
                + r
                * (
                    INV_FACTORIAL_4
                    + r
                    * (
                        INV_FACTORIAL_5
                        + r
                        * (
                            INV_FACTORIAL_6
                            + r
                            * (
                                INV_FACTORIAL_7
                                + r
                                * (
                                    INV_FACTORIAL_8
                                    + r
                                    * (
                                        INV_FACTORIAL_9
                                        + r
                                        * (
                                            INV_FACTORIAL_10
                                            + r
                                            * (
                                                INV_FACTORIAL_11
                                                + r * (INV_FACTORIAL_12 + r * (INV_FACTORIAL_13 + r * INV_FACTORIAL_14))
                                            )
                                        )
                                    )
                                )
                            )
                        )
                    )
                )
            )
        )
    )
    two_k = float(1 << k)
    expm1_y = two_k * expm1_r + (two_k - 1.0)
    result = math.copysign(expm1_y / (expm1_y + 2.0), x)
    return result if x == x else x


#: tanh_single: tanh(x) = x P(x^2) / Q(x^2) with x clipped to +-TANH_SINGLE_CLIP (Eigen's float32 rational
#: tanh); beyond the clip the result stays 2.6e-7 short of +-1, within the stated relative error.
TANH_SINGLE_CLIP = 7.90531110763549805
TANH_SINGLE_P = (
    4.89352455891786e-03,
    6.37261928875436e-04,
    1.48572235717979e-05,
    5.12229709037114e-08,
    -8.60467152213735e-11,
    2.00018790482477e-13,
    -2.76076847742355e-16,
)
TANH_SINGLE_Q = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)


def tanh_single(x):
    """tanh(x) to float32 accuracy (relative error below 3e-7; float32's rounding is 6e-8): a 13/6 rational.

    Used by the CPU kernels for float32 arrays, where it costs half of :func:`tanh` (exact to float64); the
    result is rounded to float32 anyway. tests/test_nn.py checks the bound over the whole range.
    """
    c = min(max(x, -TANH_SINGLE_CLIP), TANH_SINGLE_CLIP)
    c2 = c * c
    p = TANH_SINGLE_P[6]
    p = p * c2 + TANH_SINGLE_P[5]
    p = p * c2 + TANH_SINGLE_P[4]
    p = p * c2 + TANH_SINGLE_P[3]
    p = p * c2 + TANH_SINGLE_P[2]
    p = p * c2 + TANH_SINGLE_P[1]
    p = p * c2 + TANH_SINGLE_P[0]
    q = TANH_SINGLE_Q[3]
    q = q * c2 + TANH_SINGLE_Q[2]
    q = q * c2 + TANH_SINGLE_Q[1]
    q = q * c2 + TANH_SINGLE_Q[0]
    result = c * p / q
    return result if x == x else x


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
        return tanh(x)
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
        return 0.5 * x * math.erfc(-x * INV_SQRT2)  # erfc: no cancellation in 1 + erf for x < 0
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
        t = tanh(x)
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
        return 0.5 * math.erfc(-x * INV_SQRT2) + x * INV_SQRT_2PI * math.exp(-0.5 * x * x)
    if code == ERF:
        return TWO_OVER_SQRT_PI * math.exp(-x * x)
    if code == HARD_TANH:
        return 1.0 if -1.0 < x < 1.0 else 0.0
    return math.nan


def derivative_given_value(code, x, y, param):
    """phi'(x) when y = phi(x) is at hand: tanh' = 1 - y^2 and sigmoid' = y (1 - y) then cost no exp or tanh.

    The same arithmetic as :func:`derivative` (which computes y first), so the same result whenever y is phi(x)
    in float64; for every other activation this is :func:`derivative`. A backward pass that kept the forward
    activations uses it.
    """
    if code == TANH:
        return 1.0 - y * y
    if code == SIGMOID:
        return y * (1.0 - y)
    return derivative(code, x, param)


def second_derivative(code, x, param):
    """phi''(x) for the activation with this code (0 on either side of the ReLU-like kinks).

    The Hessian-vector products of :mod:`testbed.curvature` need it (Pearlmutter 1994's R{delta} term):
    tanh'' = -2 t (1 - t^2), sigmoid'' = s (1 - s)(1 - 2 s), softplus'' = sigmoid', elu'' = alpha e^x (x <= 0),
    gelu'' = pdf(x) (2 - x^2), erf'' = -2 x erf'(x); piecewise linear activations have phi'' = 0.
    """
    if code == LINEAR or code == RELU or code == LEAKY_RELU or code == HARD_TANH:
        return 0.0
    if code == TANH:
        t = tanh(x)
        return -2.0 * t * (1.0 - t * t)
    if code == SIGMOID:
        s = sigmoid(x)
        return s * (1.0 - s) * (1.0 - 2.0 * s)
    if code == SOFTPLUS:
        s = sigmoid(x)
        return s * (1.0 - s)
    if code == ELU:
        return 0.0 if x > 0.0 else param * math.exp(x)
    if code == SELU:
        return 0.0 if x > 0.0 else SELU_LAMBDA * SELU_ALPHA * math.exp(x)
    if code == GELU:
        return INV_SQRT_2PI * math.exp(-0.5 * x * x) * (2.0 - x * x)
    if code == ERF:
        return -2.0 * x * TWO_OVER_SQRT_PI * math.exp(-x * x)
    return math.nan


def second_derivative_given_value(code, x, y, param):
    """phi''(x) when y = phi(x) is at hand (tanh and sigmoid then cost no exp or tanh); else
    :func:`second_derivative`, as :func:`derivative_given_value` does for phi'."""
    if code == TANH:
        return -2.0 * y * (1.0 - y * y)
    if code == SIGMOID:
        return y * (1.0 - y) * (1.0 - 2.0 * y)
    return second_derivative(code, x, param)
