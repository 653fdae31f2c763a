"""Counter-based random numbers: Philox4x32-10 (Salmon et al. 2011) on the CPU and the GPU.

A draw is a pure function of (seed, stream, step, index), so a run gives the same bits on the CPU with any number
of threads and in the CUDA kernels (uniforms are exact integer arithmetic; normals use Box-Muller with a
polynomial log, sine and cosine written with + * / and a correctly rounded sqrt, which agree bit for bit between
the CPU kernels and the CUDA simulator; on a real GPU NVVM fuses a * b + c into FMAs by default, so normals may
differ there in the last bits).

>>> [hex(w) for w in philox4x32((0, 0, 0, 0), (0, 0))]
['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from . import backend as backends
from . import validation
from ._types import Backend
from .kernels import random as kernels
from .rules import rng as rules

WORD_MAX = 2**32 - 1


def _words(values, count, name):
    words = tuple(values)
    if len(words) != count or any(
        isinstance(w, bool) or not isinstance(w, (int, np.integer)) or not 0 <= int(w) <= WORD_MAX for w in words
    ):
        raise ValueError(f"{name} must be {count} unsigned 32-bit integers, got {values!r}")
    return tuple(int(w) for w in words)


def philox4x32(counter: Sequence[int], key: Sequence[int]) -> list[int]:
    """The four 32-bit output words of Philox4x32-10 for ``counter`` (4 words) and ``key`` (2 words).

    Parameters
    ----------
    counter : sequence of 4 int
        The counter block, each word in [0, 2**32).
    key : sequence of 2 int
        The key, each word in [0, 2**32).

    Returns
    -------
    list of 4 int
        The output words after ten rounds.

    Raises
    ------
    ValueError
        If ``counter`` or ``key`` has the wrong length or a word outside [0, 2**32).

    References
    ----------
    J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011.
    """
    c = _words(counter, 4, "counter")
    k = _words(key, 2, "key")
    return [int(w) for w in rules.philox4x32(*c, *k)]


def _fill(kind, shape, seed, stream, step, loc, scale, backend, dtype):
    dtype = validation.check_dtype(dtype)
    seed = validation.check_seed(seed)
    stream = validation.check_seed(stream, "stream")
    step = validation.check_seed(step, "step")
    if stream > WORD_MAX or step > WORD_MAX:
        raise ValueError("stream and step must be below 2**32")
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    for n in shape:
        validation.check_positive_int(n, "shape")
    target = backends.resolve(backend)
    out = np.empty(int(np.prod(shape)), dtype=dtype)
    if target == "cuda":
        backends.check_memory(out.nbytes, f"draws of shape {shape}", device=True)
        device_out = backends.to_device(out)
        kernels.fill(device_out, kind, seed, stream, step, 0, loc, scale, 0.0, 0.0, 0.0, target)
        out = backends.to_host(device_out)
    else:
        kernels.fill(out, kind, seed, stream, step, 0, loc, scale, 0.0, 0.0, 0.0, target)
    return out.reshape(shape)


def uniform(
    shape: int | Sequence[int],
    *,
    seed: int = 0,
    stream: int = 0,
    step: int = 0,
    backend: Backend = "cpu",
    dtype: npt.DTypeLike = np.float64,
) -> np.ndarray:
    """Uniform draws on (0, 1]: ``(w + 1) / 2**32`` for Philox words ``w``, element i being draw i of the stream.

    Parameters
    ----------
    shape : int or sequence of int
        The shape of the result; every entry positive.
    seed : int
        The Philox key (a non-negative integer below 2**64).
    stream, step : int
        The counter's stream and step words, each in [0, 2**32).
    backend : {"cpu", "cuda", "auto"}
        Where to draw; ``"cuda"`` draws on the GPU (or the simulator) and copies back the same bits.
    dtype : numpy float dtype
        float32 or float64.

    Returns
    -------
    numpy.ndarray
        An array of ``shape`` and ``dtype``.

    Raises
    ------
    ValueError
        If an argument is out of range or of the wrong type (the message names it).

    References
    ----------
    Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011; Box & Muller 1958 for the normals.
    """
    return _fill(kernels.UNIFORM, shape, seed, stream, step, 0.0, 1.0, backend, dtype)


def normal(
    shape: int | Sequence[int],
    *,
    seed: int = 0,
    stream: int = 0,
    step: int = 0,
    loc: float = 0.0,
    scale: float = 1.0,
    backend: Backend = "cpu",
    dtype: npt.DTypeLike = np.float64,
) -> np.ndarray:
    """Normal draws ``loc + scale * z``, z standard normal by Box-Muller, element i being draw i of the stream.

    Parameters
    ----------
    shape : int or sequence of int
        The shape of the result; every entry positive.
    seed : int
        The Philox key (a non-negative integer below 2**64).
    stream, step : int
        The counter's stream and step words, each in [0, 2**32).
    loc : float
        The mean (finite).
    scale : float
        The standard deviation (finite, non-negative).
    backend : {"cpu", "cuda", "auto"}
        Where to draw; ``"cuda"`` draws on the GPU (or the simulator) and copies back the same bits.
    dtype : numpy float dtype
        float32 or float64.

    Returns
    -------
    numpy.ndarray
        An array of ``shape`` and ``dtype``.

    Raises
    ------
    ValueError
        If an argument is out of range or of the wrong type (the message names it).

    References
    ----------
    Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011; Box & Muller 1958 for the normals.
    """
    loc = validation.check_finite(loc, "loc")
    scale = validation.check_finite(scale, "scale", minimum=0.0)
    return _fill(kernels.NORMAL, shape, seed, stream, step, loc, scale, backend, dtype)
