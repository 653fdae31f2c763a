"""Weight initialisers: names, aliases, gains, fans and the variance each one gives.

A dense layer's weight has shape ``(fan_out, fan_in)`` (the PyTorch layout). Every initialiser is a Philox fill
(:mod:`testbed.kernels.random`: one kernel dispatching on a distribution code), so the CPU kernel (any thread
count) and the CUDA kernel fill identical matrices for one seed; element ``j`` of the flattened matrix is draw
``offset + j`` of (seed, stream, step). The orthogonal initialiser orthogonalises such a Gaussian fill with
NumPy's QR. (Identical bit for bit on the CPU and in the CUDA simulator, which the tests check; on a real GPU,
NVVM fuses a * b + c into FMAs by default, so entries may differ there in the last bits.)

=====================================  ==========================================  ===========================
name (aliases)                         distribution                                variance of an entry
=====================================  ==========================================  ===========================
zeros, ones, constant(value)           all equal                                   0
uniform(bound)                         U[-bound, bound]                            bound^2 / 3
normal(std, mean)                      N(mean, std^2)                              std^2
truncated_normal(std, mean, a, b,      N(mean, std'^2) cut at mean + a std',       std^2 c(a, b), or std^2
correct_variance) (trunc_normal)       mean + b std' (a, b in units of std')       when corrected
lecun_normal / lecun_uniform           N / U                                       1 / fan_in
glorot_normal / glorot_uniform         N / U[+-sqrt(6 / (fan_in + fan_out))]       2 / (fan_in + fan_out)
(xavier_*), bias_input=True: the       U[+-sqrt(6 / (1 + fan_in + fan_out))]       2 / (1 + fan_in + fan_out)
lecture's form
he_normal / he_uniform (kaiming_*),    N / U                                       gain^2 / fan
mode fan_in | fan_out, gain
orthogonal(gain)                       Q sign(diag R) of a Gaussian's QR, x gain   gain^2 / max(fan_in, fan_out)
variance_scaling(scale, mode,          truncated_normal | untruncated_normal |     scale / n, n = fan_in,
distribution)                          uniform (Keras)                             fan_out or their mean
=====================================  ==========================================  ===========================

``c(a, b)`` is the variance of a standard normal truncated to [a, b]; ``c(-2, 2) = 0.87962566103423978**2``.

Traps: PyTorch's ``trunc_normal_(a, b)`` takes *absolute* cut-offs and does not correct the variance (here a and
b are in units of the std, as in Keras and JAX); Keras's ``lecun_normal``, ``glorot_normal`` and ``he_normal``
draw from a *truncated* normal (``variance_scaling(..., distribution="truncated_normal")`` here), PyTorch's and
this module's named normals from an untruncated one; PyTorch's default ``nn.Linear`` initialisation is
U[+-1/sqrt(fan_in)], variance 1 / (3 fan_in), which is ``uniform(bound=fan_in**-0.5)``.

LSUV (Mishkin & Matas 2015) needs forward passes and lives with the signal-propagation code.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import backend as backends
from ._types import Backend
from .kernels import random as kernels
from .rules import rng as rng_rules
from .validation import (
    check_array,
    check_choice,
    check_dtype,
    check_flag,
    check_non_negative_int,
    check_positive_int,
    check_real,
    check_seed,
    is_device_array,
    unknown_name_error,
)

#: sqrt(c(-2, 2)): the std of a standard normal truncated to [-2, 2] (Keras divides by it).
TRUNCATED_STD_2 = 0.87962566103423978

#: Element indices of a fill must stay below this (attempts of the truncated-normal sampler are keyed above it).
MAX_DRAWS = rng_rules.ATTEMPT_BLOCKS

#: A truncated normal is refused when no proposal would accept at least this fraction of the attempts.
MIN_ACCEPTANCE = 1e-3

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")
_LINEAR_GAINS = (
    "linear",
    "identity",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)
NONLINEARITIES = _LINEAR_GAINS + ("tanh", "relu", "leaky_relu", "selu")


# ----------------------------------------------------------------------------------------------------------------
# gains


def calculate_gain(
    nonlinearity: Literal[
        "linear",
        "identity",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
        "tanh",
        "relu",
        "leaky_relu",
        "selu",
    ],
    param: float | None = None,
) -> float:
    """The recommended gain for ``nonlinearity`` (PyTorch's table, ``torch.nn.init.calculate_gain``).

    ==================================================  ==========================
    linear, identity, conv*, conv_transpose*, sigmoid   1
    tanh                                                5/3
    relu                                                sqrt(2)
    leaky_relu(param)                                   sqrt(2 / (1 + param^2)), param = 0.01 by default
    selu                                                3/4
    ==================================================  ==========================

    For relu and leaky_relu the gain makes ``gain^2 E[phi(z)^2] = 1`` for z ~ N(0, 1), so a layer with weight
    variance gain^2 / fan_in keeps the second moment of its inputs (He et al. 2015); for linear it is exact
    trivially. The tanh (5/3) and selu (3/4) values are PyTorch's conventions, not a second-moment identity.

    Parameters
    ----------
    nonlinearity : str
        One of :data:`NONLINEARITIES`.
    param : float or None
        The negative slope of ``leaky_relu`` (0.01 when None); refused for every other nonlinearity.

    Returns
    -------
    float
        The gain.

    Raises
    ------
    ValueError
        If ``nonlinearity`` is unknown (the message lists the names) or ``param`` is given for another than
        ``leaky_relu``.

    References
    ----------
    K. He, X. Zhang, S. Ren, J. Sun, "Delving deep into rectifiers: surpassing human-level performance on ImageNet
    classification", ICCV 2015.
    """
    if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
        raise unknown_name_error("nonlinearity", nonlinearity, NONLINEARITIES)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else check_real(param, "param")
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if param is not None:
        raise ValueError(f"param is used by nonlinearity 'leaky_relu' only, got param={param!r} for {nonlinearity!r}")
    if nonlinearity in _LINEAR_GAINS:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    return 0.75  # selu


# ----------------------------------------------------------------------------------------------------------------
# plans: what each initialiser draws


@dataclasses.dataclass(frozen=True)
class Plan:
    """How to fill one weight matrix: a distribution code with its parameters (see testbed.rules.rng.draw4),
    or ``orthogonal`` with its gain, and the mean, variance and bounds the fill has."""

    code: int
    loc: float = 0.0
    scale: float = 0.0
    a: float = 0.0
    b: float = 0.0
    c: float = 0.0
    mean: float = 0.0
    variance: float = 0.0
    lower: float = -math.inf
    upper: float = math.inf
    orthogonal_gain: float | None = None


def _fan(fan_in, fan_out, mode):
    mode = check_choice(mode, "mode", MODES)
    if mode == "fan_in":
        return float(fan_in)
    if mode == "fan_out":
        return float(fan_out)
    return 0.5 * (fan_in + fan_out)


def _constant(value):
    return Plan(kernels.CONSTANT, loc=value, mean=value, variance=0.0, lower=value, upper=value)


def _uniform(bound):
    """U[-bound, bound] as loc + scale (u - 1/2), scale = 2 bound: |2 bound (u - 1/2)| <= bound exactly."""
    return Plan(kernels.UNIFORM, scale=2.0 * bound, a=0.5, variance=bound * bound / 3.0, lower=-bound, upper=bound)


def _normal(std, mean=0.0):
    return Plan(kernels.NORMAL, loc=mean, scale=std, mean=mean, variance=std * std)


def truncated_normal_moments(a: float, b: float) -> tuple[float, float]:
    """(mean, variance) of a standard normal conditioned on a <= z <= b (scipy.stats.truncnorm).

    Parameters
    ----------
    a, b : float
        The cut-offs, in units of the standard deviation, ``a < b``.

    Returns
    -------
    (float, float)
        The mean and the variance.
    """
    from scipy.stats import truncnorm

    mean, variance = truncnorm.stats(a, b, moments="mv")
    return float(mean), float(variance)


def _truncated(std, mean, a, b, correct_variance):
    if not a < b:
        raise ValueError(f"a must be below b (cut-offs in units of std), got a={a!r}, b={b!r}")
    from scipy.special import ndtr

    unit_mean, unit_variance = truncated_normal_moments(a, b)
    scale = std / math.sqrt(unit_variance) if correct_variance else std
    # acceptance rate of normal proposals, and of uniform proposals on [a, b] accepted with exp((c - z^2) / 2)
    peak2 = 0.0 if a <= 0.0 <= b else min(a * a, b * b)
    mass = float(ndtr(b) - ndtr(a))
    by_uniform = mass * math.sqrt(2.0 * math.pi) * math.exp(0.5 * peak2) / (b - a)
    if max(mass, by_uniform) < MIN_ACCEPTANCE:
        raise ValueError(
            f"the cut-offs a={a!r}, b={b!r} (in units of std) leave too little mass to sample by "
            f"rejection (acceptance {max(mass, by_uniform):.1e} < {MIN_ACCEPTANCE})"
        )
    code = kernels.TRUNCATED_NORMAL if mass >= by_uniform else kernels.TRUNCATED_NORMAL_BY_UNIFORM
    return Plan(
        code,
        loc=mean,
        scale=scale,
        a=a,
        b=b,
        c=peak2,
        mean=mean + scale * unit_mean,
        variance=scale * scale * unit_variance,
        lower=mean + scale * a,
        upper=mean + scale * b,
    )


def _with_variance(variance, distribution):
    """The zero-mean fill of a given variance: 'normal', 'uniform' or Keras's corrected 'truncated_normal'."""
    if distribution == "normal":
        return _normal(math.sqrt(variance))
    if distribution == "uniform":
        return _uniform(math.sqrt(3.0 * variance))
    return _truncated(math.sqrt(variance) / TRUNCATED_STD_2, 0.0, -2.0, 2.0, False)


def _plan_zeros(fan_in, fan_out):
    return _constant(0.0)


def _plan_ones(fan_in, fan_out):
    return _constant(1.0)


def _plan_constant(fan_in, fan_out, *, value):
    return _constant(check_real(value, "value"))


def _plan_uniform(fan_in, fan_out, *, bound=1.0):
    return _uniform(check_real(bound, "bound", minimum=0.0))


def _plan_normal(fan_in, fan_out, *, std=1.0, mean=0.0):
    return _normal(check_real(std, "std", minimum=0.0), check_real(mean, "mean"))


def _plan_truncated_normal(fan_in, fan_out, *, std=1.0, mean=0.0, a=-2.0, b=2.0, correct_variance=False):
    return _truncated(
        check_real(std, "std", minimum=0.0),
        check_real(mean, "mean"),
        check_real(a, "a"),
        check_real(b, "b"),
        check_flag(correct_variance, "correct_variance"),
    )


def _plan_lecun_normal(fan_in, fan_out):
    return _with_variance(1.0 / fan_in, "normal")


def _plan_lecun_uniform(fan_in, fan_out):
    return _with_variance(1.0 / fan_in, "uniform")


def _glorot_variance(fan_in, fan_out, gain, bias_input):
    gain = check_real(gain, "gain", minimum=0.0)
    return gain * gain * 2.0 / (fan_in + fan_out + (1 if check_flag(bias_input, "bias_input") else 0))


def _plan_glorot_normal(fan_in, fan_out, *, gain=1.0, bias_input=False):
    return _with_variance(_glorot_variance(fan_in, fan_out, gain, bias_input), "normal")


def _plan_glorot_uniform(fan_in, fan_out, *, gain=1.0, bias_input=False):
    return _with_variance(_glorot_variance(fan_in, fan_out, gain, bias_input), "uniform")


def _he_variance(fan_in, fan_out, mode, nonlinearity, param, gain):
    fan = _fan(fan_in, fan_out, mode)
    if gain is None:
        gain = calculate_gain(nonlinearity, param)
    else:
        if param is not None:
            raise ValueError("pass either gain or (nonlinearity, param), not both gain and param")
        gain = check_real(gain, "gain", minimum=0.0)
    return gain * gain / fan


def _plan_he_normal(fan_in, fan_out, *, mode="fan_in", nonlinearity="relu", param=None, gain=None):
    return _with_variance(_he_variance(fan_in, fan_out, mode, nonlinearity, param, gain), "normal")


def _plan_he_uniform(fan_in, fan_out, *, mode="fan_in", nonlinearity="relu", param=None, gain=None):
    return _with_variance(_he_variance(fan_in, fan_out, mode, nonlinearity, param, gain), "uniform")


def _plan_orthogonal(fan_in, fan_out, *, gain=1.0):
    gain = check_real(gain, "gain", minimum=0.0)
    return Plan(
        kernels.NORMAL,
        scale=1.0,
        variance=gain * gain / max(fan_in, fan_out),
        lower=-gain,
        upper=gain,
        orthogonal_gain=gain,
    )


def _plan_variance_scaling(fan_in, fan_out, *, scale=1.0, mode="fan_in", distribution="truncated_normal"):
    scale = check_real(scale, "scale", minimum=0.0, strict=True)
    distribution = check_choice(distribution, "distribution", DISTRIBUTIONS)
    variance = scale / _fan(fan_in, fan_out, mode)
    return _with_variance(variance, {"untruncated_normal": "normal"}.get(distribution, distribution))


_PLANS = {
    "zeros": _plan_zeros,
    "ones": _plan_ones,
    "constant": _plan_constant,
    "uniform": _plan_uniform,
    "normal": _plan_normal,
    "truncated_normal": _plan_truncated_normal,
    "lecun_normal": _plan_lecun_normal,
    "lecun_uniform": _plan_lecun_uniform,
    "glorot_normal": _plan_glorot_normal,
    "glorot_uniform": _plan_glorot_uniform,
    "he_normal": _plan_he_normal,
    "he_uniform": _plan_he_uniform,
    "orthogonal": _plan_orthogonal,
    "variance_scaling": _plan_variance_scaling,
}
ALIASES = {
    "zero": "zeros",
    "trunc_normal": "truncated_normal",
    "xavier_normal": "glorot_normal",
    "xavier_uniform": "glorot_uniform",
    "kaiming_normal": "he_normal",
    "kaiming_uniform": "he_uniform",
}
NAMES = tuple(_PLANS)


def names() -> tuple[str, ...]:
    """Every initialiser name (aliases in :data:`ALIASES`)."""
    return NAMES


def canonical_name(name: str) -> str:
    """The initialiser's own name for ``name`` or an alias; ValueError listing the valid names otherwise.

    Parameters
    ----------
    name : str
        An initialiser's name or alias.

    Returns
    -------
    str
        A name of :data:`NAMES`.

    Raises
    ------
    ValueError
        If ``name`` is neither (the message lists the valid names).
    """
    key = ALIASES.get(name, name) if isinstance(name, str) else None
    if key not in _PLANS:
        raise unknown_name_error("initialiser", name, NAMES + tuple(ALIASES))
    return key


def parameters(name: str) -> dict[str, Any]:
    """The keyword parameters of initialiser ``name`` and their defaults (``inspect.Parameter.empty`` if none).

    Parameters
    ----------
    name : str
        An initialiser's name or alias.

    Returns
    -------
    dict
        Parameter name -> default, in the order of the signature.

    Raises
    ------
    ValueError
        If ``name`` is unknown.
    """
    signature = inspect.signature(_PLANS[canonical_name(name)])
    return {p.name: p.default for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY}


def plan(name: str, fan_in: int, fan_out: int, **params: Any) -> Plan:
    """The validated :class:`Plan` of ``name`` for these fans and parameters (no drawing).

    Parameters
    ----------
    name : str
        An initialiser's name or alias (see the module's table).
    fan_in, fan_out : int
        The layer's fans (positive): the matrix is (fan_out, fan_in).
    **params
        The initialiser's parameters (:func:`parameters` lists them).

    Returns
    -------
    Plan

    Raises
    ------
    ValueError
        If the name or a parameter is unknown, a needed parameter is missing or a value is out of range.
    """
    key = canonical_name(name)
    fan_in = check_positive_int(fan_in, "fan_in")
    fan_out = check_positive_int(fan_out, "fan_out")
    valid = parameters(key)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        listed = ", ".join(valid) or "none"
        raise ValueError(f"initialiser {key!r} takes no parameter {', '.join(unknown)}; valid parameters: {listed}")
    missing = [p for p, default in valid.items() if default is inspect.Parameter.empty and p not in params]
    if missing:
        raise ValueError(f"initialiser {key!r} needs the parameter {', '.join(missing)}")
    return _PLANS[key](fan_in, fan_out, **params)


def moments(name: str, fan_in: int, fan_out: int, **params: Any) -> tuple[float, float]:
    """(mean, variance) of one entry of the matrix ``name`` fills (exact for orthogonal: the mean square).

    Parameters
    ----------
    name : str
        An initialiser's name or alias (see the module's table).
    fan_in, fan_out : int
        The layer's fans (positive): the matrix is (fan_out, fan_in).
    **params
        The initialiser's parameters (:func:`parameters` lists them).

    Returns
    -------
    (float, float)
        The mean and the variance of one entry.

    Raises
    ------
    ValueError
        If the name or a parameter is unknown, a needed parameter is missing or a value is out of range.
    """
    p = plan(name, fan_in, fan_out, **params)
    return p.mean, p.variance


def variance(name: str, fan_in: int, fan_out: int, **params: Any) -> float:
    """The variance of one entry of the matrix ``name`` fills, e.g. 2 / fan_in for ``he_normal``.

    Parameters
    ----------
    name : str
        An initialiser's name or alias (see the module's table).
    fan_in, fan_out : int
        The layer's fans (positive): the matrix is (fan_out, fan_in).
    **params
        The initialiser's parameters (:func:`parameters` lists them).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the name or a parameter is unknown, a needed parameter is missing or a value is out of range.
    """
    return plan(name, fan_in, fan_out, **params).variance


def bounds(name: str, fan_in: int, fan_out: int, **params: Any) -> tuple[float, float]:
    """(lower, upper): every entry lies in [lower, upper] (+-inf for the unbounded normals).

    Parameters
    ----------
    name : str
        An initialiser's name or alias (see the module's table).
    fan_in, fan_out : int
        The layer's fans (positive): the matrix is (fan_out, fan_in).
    **params
        The initialiser's parameters (:func:`parameters` lists them).

    Returns
    -------
    (float, float)
        The lower and upper bound.

    Raises
    ------
    ValueError
        If the name or a parameter is unknown, a needed parameter is missing or a value is out of range.
    """
    p = plan(name, fan_in, fan_out, **params)
    return p.lower, p.upper


# ----------------------------------------------------------------------------------------------------------------
# filling


def _orthogonalise(gaussian, fan_in, fan_out, gain):
    """Q sign(diag R) of the QR of a (fan_out, fan_in) Gaussian matrix, times gain (Saxe et al. 2014)."""
    flat = gaussian.reshape(fan_out, fan_in).astype(np.float64)
    transposed = fan_out < fan_in
    if transposed:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.where(np.diag(r) < 0.0, -1.0, 1.0)
    if transposed:
        q = q.T
    return gain * q


def _check_draw_range(offset, size):
    offset = check_non_negative_int(offset, "offset")
    if offset + size > MAX_DRAWS:
        raise ValueError(f"offset + size must stay below 2**40 draws, got offset={offset!r}, size={size}")
    return offset


def _check_stream(value, name):
    value = check_seed(value, name)
    if value > 2**32 - 1:
        raise ValueError(f"{name} must be below 2**32, got {value!r}")
    return value


def fill(
    out: Any,
    name: str,
    fan_in: int,
    fan_out: int,
    *,
    seed: int = 0,
    stream: int = 0,
    step: int = 0,
    offset: int = 0,
    backend: Backend = "cpu",
    **params: Any,
) -> Any:
    """Fill ``out`` in place with the (fan_out, fan_in) matrix of initialiser ``name``; returns ``out``.

    ``out`` is any C-contiguous array of fan_in * fan_out floats (float32 or float64), e.g. a layer's view into a
    network's flat parameter array: a NumPy array for ``backend="cpu"``, a NumPy array (copied over and back) or a
    CUDA device array (filled on the device) for ``backend="cuda"``. Element ``j`` is draw ``offset + j`` of
    (seed, stream, step); give each layer its own stream.

    Parameters
    ----------
    out : numpy.ndarray or CUDA device array
        C-contiguous, float32 or float64, of fan_in * fan_out values (any shape).
    name : str
        An initialiser's name or alias (see the module's table).
    fan_in, fan_out : int
        The layer's fans (positive).
    seed : int
        The Philox key.
    stream, step : int
        The counter's stream and step words, each below 2**32.
    offset : int
        The index of the first draw; ``offset + out.size`` must stay below 2**40.
    backend : {"cpu", "cuda", "auto"}
        Where to fill; a device array needs ``"cuda"``.
    **params
        The initialiser's parameters (:func:`parameters` lists them).

    Returns
    -------
    numpy.ndarray or CUDA device array
        ``out``, filled.

    Raises
    ------
    ValueError
        If an argument is out of range or of the wrong kind (the message names it), ``out`` has the wrong size or
        is a device array with ``backend="cpu"``.

    References
    ----------
    Salmon et al. 2011 (Philox); Saxe, McClelland & Ganguli 2014 (orthogonal); the papers of the module's table.
    """
    p = plan(name, fan_in, fan_out, **params)
    seed = check_seed(seed)
    stream = _check_stream(stream, "stream")
    step = _check_stream(step, "step")
    target = backends.resolve(backend)
    on_device = is_device_array(out)
    if on_device and target != "cuda":
        raise ValueError("out is a CUDA device array: use backend='cuda'")
    flat = check_array(out, "out")  # a float array, C-contiguous (a slice of a flat parameter array is)
    if out.size != fan_in * fan_out:
        raise ValueError(f"out must hold fan_in * fan_out = {fan_in * fan_out} values, got {out.size}")
    offset = _check_draw_range(offset, out.size)
    if on_device or target == "cpu":
        kernels.fill(flat, p.code, seed, stream, step, offset, p.loc, p.scale, p.a, p.b, p.c, target)
    else:
        backends.check_memory(flat.nbytes, f"fan_in x fan_out = {fan_in} x {fan_out}", device=True)
        device_flat = backends.to_device(flat)
        kernels.fill(device_flat, p.code, seed, stream, step, offset, p.loc, p.scale, p.a, p.b, p.c, target)
        flat[...] = backends.to_host(device_flat)
    if p.orthogonal_gain is not None:
        host = backends.to_host(flat) if on_device else flat
        q = _orthogonalise(host, fan_in, fan_out, p.orthogonal_gain).reshape(out.size).astype(out.dtype)
        if on_device:
            flat.copy_to_device(q)
        else:
            flat[...] = q
    return out


def initialize(
    name: str,
    fan_in: int,
    fan_out: int,
    *,
    seed: int = 0,
    stream: int = 0,
    backend: Backend = "cpu",
    dtype: npt.DTypeLike = np.float64,
    **params: Any,
) -> np.ndarray:
    """A new (fan_out, fan_in) NumPy array filled by initialiser ``name`` (see the module's table).

    ``backend="cuda"`` fills on the GPU (or the simulator) and copies back: the same matrix as the CPU's.
    Unknown names, parameters and out-of-range values raise ValueError naming the argument.

    Parameters
    ----------
    name : str
        An initialiser's name or alias (see the module's table).
    fan_in, fan_out : int
        The layer's fans (positive).
    seed : int
        The Philox key.
    stream : int
        The Philox stream, below 2**32 (give each layer its own).
    backend : {"cpu", "cuda", "auto"}
        Where to fill.
    dtype : numpy float dtype
        float32 or float64.
    **params
        The initialiser's parameters (:func:`parameters` lists them).

    Returns
    -------
    numpy.ndarray, shape (fan_out, fan_in)

    Raises
    ------
    ValueError
        If the name, a parameter or a value is invalid (the message names it).

    References
    ----------
    LeCun et al. 1998; Glorot & Bengio 2010; He et al. 2015; Saxe et al. 2014 (see the module's table).
    """
    p = plan(name, fan_in, fan_out, **params)  # validate before allocating
    del p
    dtype = check_dtype(dtype)
    out = np.empty((fan_out, fan_in), dtype=dtype)
    return fill(out, name, fan_in, fan_out, seed=seed, stream=stream, backend=backend, **params)


def _named(name, summary):
    def initializer(
        fan_in: int,
        fan_out: int,
        *,
        seed: int = 0,
        stream: int = 0,
        backend: Backend = "cpu",
        dtype: npt.DTypeLike = np.float64,
        **params: Any,
    ) -> np.ndarray:
        return initialize(name, fan_in, fan_out, seed=seed, stream=stream, backend=backend, dtype=dtype, **params)

    initializer.__name__ = initializer.__qualname__ = name
    params = ", ".join(f"{k}={v!r}" if v is not inspect.Parameter.empty else k for k, v in parameters(name).items())
    initializer.__doc__ = (
        f"{summary}\n\n    ``{name}(fan_in, fan_out, *, seed=0, stream=0, backend='cpu', dtype=numpy.float64"
        f"{', ' + params if params else ''})`` returns a (fan_out, fan_in) array; see :func:`initialize`.\n\n"
        "    Parameters\n    ----------\n"
        "    fan_in, fan_out : int\n        The layer's fans (positive): the matrix is (fan_out, fan_in).\n"
        "    seed, stream : int\n        The Philox key and stream (stream below 2**32).\n"
        '    backend : {"cpu", "cuda", "auto"}\n        Where to fill.\n'
        "    dtype : numpy float dtype\n        float32 or float64.\n"
        f"    **params\n        {name}'s parameters: {params or 'none'}.\n\n"
        "    Returns\n    -------\n    numpy.ndarray, shape (fan_out, fan_in)\n\n"
        "    Raises\n    ------\n    ValueError\n        If a parameter or a value is invalid (the message names it).\n"
    )
    return initializer


zeros = _named("zeros", "All zeros: variance 0 (every unit of a layer then computes the same thing).")
ones = _named("ones", "All ones: variance 0.")
constant = _named("constant", "All equal to ``value``: variance 0.")
uniform = _named("uniform", "U[-bound, bound]: variance bound^2 / 3 (a uniform of variance v has bound sqrt(3 v)).")
normal = _named("normal", "N(mean, std^2): variance std^2, mean ``mean``.")
truncated_normal = _named(
    "truncated_normal",
    "N(mean, std'^2) conditioned on [mean + a std', mean + b std'] (a, b in units of std', default -2, 2).\n\n"
    "    Variance std^2 c(a, b), c the variance of a standard normal truncated to [a, b] (c(-2, 2) =\n"
    "    0.87962566103423978^2); ``correct_variance=True`` takes std' = std / sqrt(c(a, b)) so that the variance is\n"
    "    exactly std^2 (Keras's variance_scaling does this). Sampled per element by rejection with Philox draws keyed\n"
    "    by the attempt number (normal proposals, or uniform proposals on [a, b] for intervals in a tail).",
)
lecun_normal = _named("lecun_normal", "N(0, 1 / fan_in): variance 1 / fan_in (LeCun, Bottou, Orr & Mueller 1998).")
lecun_uniform = _named(
    "lecun_uniform", "U[+-sqrt(3 / fan_in)]: variance 1 / fan_in (LeCun, Bottou, Orr & Mueller 1998)."
)
glorot_normal = _named(
    "glorot_normal",
    "N(0, 2 gain^2 / (fan_in + fan_out)): variance 2 gain^2 / (fan_in + fan_out) (Glorot & Bengio 2010).\n\n"
    "    ``bias_input=True`` counts the bias as one more input: variance 2 gain^2 / (1 + fan_in + fan_out).",
)
glorot_uniform = _named(
    "glorot_uniform",
    "U[+-gain sqrt(6 / (fan_in + fan_out))]: variance 2 gain^2 / (fan_in + fan_out) (Glorot & Bengio 2010).\n\n"
    "    ``bias_input=True`` is the lecture's form U[+-sqrt(6 / (1 + fan_in + fan_out))], counting the bias as one\n"
    "    more input: variance 2 / (1 + fan_in + fan_out).",
)
he_normal = _named(
    "he_normal",
    "N(0, gain^2 / fan): variance gain^2 / fan, 2 / fan_in for relu (He, Zhang, Ren & Sun 2015).\n\n"
    "    ``mode='fan_in'`` keeps the forward variance, ``'fan_out'`` the backward one (``'fan_avg'``: their mean);\n"
    "    gain = calculate_gain(nonlinearity, param) unless ``gain`` is given (``param`` is PyTorch's ``a``, the\n"
    "    negative slope of leaky_relu). PyTorch's kaiming_* default to mode 'fan_in' and gain sqrt(2), as here.",
)
he_uniform = _named(
    "he_uniform",
    "U[+-gain sqrt(3 / fan)]: variance gain^2 / fan, 2 / fan_in for relu (He, Zhang, Ren & Sun 2015).",
)
orthogonal = _named(
    "orthogonal",
    "gain * Q sign(diag R), QR of a Philox Gaussian matrix (Saxe, McClelland & Ganguli 2014).\n\n"
    "    Rows orthonormal when fan_out <= fan_in, columns otherwise; the mean square of the entries is exactly\n"
    "    gain^2 / max(fan_in, fan_out).",
)
variance_scaling = _named(
    "variance_scaling",
    "Keras's general form: variance scale / n, n = fan_in, fan_out or (fan_in + fan_out) / 2 (``mode``).\n\n"
    "    ``distribution``: 'truncated_normal' (std sqrt(scale / n) / 0.87962566103423978, cut at +-2 of that std, so\n"
    "    the variance after truncation is scale / n), 'untruncated_normal' or 'uniform' (bound sqrt(3 scale / n)).",
)

trunc_normal = truncated_normal
xavier_normal = glorot_normal
xavier_uniform = glorot_uniform
kaiming_normal = he_normal
kaiming_uniform = he_uniform
