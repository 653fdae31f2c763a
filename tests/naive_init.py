"""Slow, obviously-correct references for testbed.init: the formulas of reference.md section 1 written out, the
moments of a truncated normal by quadrature, and element-by-element fills from the scalar Philox rules."""
import math

import numpy as np
from scipy import integrate

from testbed.rules import rng as rules

TRUNCATED_STD_2 = 0.87962566103423978
GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0), "selu": 0.75}


def gain(nonlinearity, param=None):
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1.0 + slope**2))
    return GAINS[nonlinearity]


def truncated_unit_moments(a, b):
    """(mean, variance, fourth central moment) of N(0, 1) conditioned on [a, b], by quadrature."""
    density = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)  # noqa: E731
    mass = integrate.quad(density, a, b, epsabs=1e-14, epsrel=1e-11)[0]
    mean = integrate.quad(lambda z: z * density(z), a, b, epsabs=1e-14, epsrel=1e-11)[0] / mass
    var = integrate.quad(lambda z: (z - mean) ** 2 * density(z), a, b, epsabs=1e-14, epsrel=1e-11)[0] / mass
    mu4 = integrate.quad(lambda z: (z - mean) ** 4 * density(z), a, b, epsabs=1e-14, epsrel=1e-11)[0] / mass
    return mean, var, mu4


def distribution(name, fan_in, fan_out, **p):
    """(kind, parameters) of the law of one entry, straight from the reference table.

    kind "constant" (value), "uniform" (bound), "normal" (mean, std), "truncated" (mean, std', a, b).
    """
    if name in ("zeros", "ones", "constant"):
        return "constant", {"value": {"zeros": 0.0, "ones": 1.0}.get(name, p.get("value"))}
    if name == "uniform":
        return "uniform", {"bound": p.get("bound", 1.0)}
    if name == "normal":
        return "normal", {"mean": p.get("mean", 0.0), "std": p.get("std", 1.0)}
    if name == "truncated_normal":
        a, b, std = p.get("a", -2.0), p.get("b", 2.0), p.get("std", 1.0)
        if p.get("correct_variance", False):
            std = std / math.sqrt(truncated_unit_moments(a, b)[1])
        return "truncated", {"mean": p.get("mean", 0.0), "std": std, "a": a, "b": b}
    fans = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
    if name.startswith("lecun"):
        var = 1.0 / fan_in
    elif name.startswith("glorot"):
        var = p.get("gain", 1.0) ** 2 * 2.0 / (fan_in + fan_out + (1 if p.get("bias_input") else 0))
    elif name.startswith("he"):
        g = p["gain"] if p.get("gain") is not None else gain(p.get("nonlinearity", "relu"), p.get("param"))
        var = g * g / fans[p.get("mode", "fan_in")]
    elif name == "variance_scaling":
        var = p.get("scale", 1.0) / fans[p.get("mode", "fan_in")]
        kind = p.get("distribution", "truncated_normal")
        if kind == "truncated_normal":
            return "truncated", {"mean": 0.0, "std": math.sqrt(var) / TRUNCATED_STD_2, "a": -2.0, "b": 2.0}
        return ("uniform", {"bound": math.sqrt(3 * var)}) if kind == "uniform" else (
            "normal", {"mean": 0.0, "std": math.sqrt(var)})
    else:
        raise KeyError(name)
    if name.endswith("uniform"):
        return "uniform", {"bound": math.sqrt(3.0 * var)}
    return "normal", {"mean": 0.0, "std": math.sqrt(var)}


def moments(name, fan_in, fan_out, **p):
    """(mean, variance, fourth central moment) of one entry."""
    kind, q = distribution(name, fan_in, fan_out, **p)
    if kind == "constant":
        return q["value"], 0.0, 0.0
    if kind == "uniform":
        return 0.0, q["bound"] ** 2 / 3.0, q["bound"] ** 4 / 5.0
    if kind == "normal":
        return q["mean"], q["std"] ** 2, 3.0 * q["std"] ** 4
    mean, var, mu4 = truncated_unit_moments(q["a"], q["b"])
    return q["mean"] + q["std"] * mean, q["std"] ** 2 * var, q["std"] ** 4 * mu4


def bounds(name, fan_in, fan_out, **p):
    """(lower, upper) of the support of one entry."""
    kind, q = distribution(name, fan_in, fan_out, **p)
    if kind == "constant":
        return q["value"], q["value"]
    if kind == "uniform":
        return -q["bound"], q["bound"]
    if kind == "normal":
        return -math.inf, math.inf
    return q["mean"] + q["std"] * q["a"], q["mean"] + q["std"] * q["b"]


def end_masses(name, fan_in, fan_out, slack, **p):
    """The probabilities that one entry lies within ``slack`` of the lower and of the upper bound."""
    from scipy.stats import norm

    kind, q = distribution(name, fan_in, fan_out, **p)
    if kind == "constant":
        return 1.0, 1.0
    if kind == "uniform":
        return (min(slack / (2.0 * q["bound"]), 1.0),) * 2
    a, b, width = q["a"], q["b"], slack / q["std"]
    mass = norm.cdf(b) - norm.cdf(a)
    return (norm.cdf(a + width) - norm.cdf(a)) / mass, (norm.cdf(b) - norm.cdf(b - width)) / mass


def truncated_draw(seed, stream, step, index, a, b, proposal):
    """Draw ``index`` of N(0, 1) on [a, b] by plain rejection, as testbed.rules.rng documents: attempt k >= 1 reads
    the Philox block 2**40 k + index. proposal "normal": attempt 0 is the normal draw ``index``, attempt k a
    Box-Muller normal from words 0 and 1; "uniform": z = a + (b - a) u0, accepted when u1 <= exp((c - z^2) / 2),
    c the smallest z^2 on [a, b]."""
    c = 0.0 if a <= 0.0 <= b else min(a * a, b * b)
    attempt = 0
    while True:
        if proposal == "normal" and attempt == 0:
            z = rules.normal(seed, stream, step, index)
            if a <= z <= b:
                return z
        elif attempt > 0:
            u0, u1, _, _ = rules.uniform4(seed, stream, step, 2**40 * attempt + index)
            if proposal == "normal":
                z = math.sqrt(-2.0 * math.log(u0)) * math.cos(2.0 * math.pi * u1)
                if a <= z <= b:
                    return z
            else:
                z = min(a + (b - a) * u0, b)
                if u1 <= math.exp(0.5 * (c - z * z)):
                    return z
        attempt += 1


def normal_fill(n, seed, stream, step, offset, std):
    """Element j = std * (normal draw offset + j), from the scalar rule, one element at a time."""
    return np.array([std * rules.normal(seed, stream, step, offset + j) for j in range(n)])


def orthogonal(gaussian, gain):
    """Gram-Schmidt on the rows (fan_out < fan_in) or the columns of a Gaussian matrix, times gain: the Q of QR
    with a positive diagonal of R, computed without numpy.linalg."""
    matrix = np.array(gaussian, dtype=np.float64)
    transposed = matrix.shape[0] >= matrix.shape[1]  # square: columns, as numpy.linalg.qr(A)
    vectors = matrix.T if transposed else matrix  # orthonormalise the rows of `vectors`
    basis = []
    for v in vectors:
        w = v.copy()
        for e in basis:
            w -= (e @ w) * e
        for e in basis:  # a second pass (twice is enough) keeps orthogonality at rounding level
            w -= (e @ w) * e
        basis.append(w / math.sqrt(w @ w))
    q = np.array(basis)
    return gain * (q.T if transposed else q)
