"""Counter-based random numbers: Philox4x32-10 (Salmon et al. 2011) on the CPU and the GPU.

A draw is a pure function of (seed, stream, step, index), so a run gives the same bits on the CPU with any number
of threads and in the CUDA kernels (uniforms are exact integer arithmetic; normals use Box-Muller with a
polynomial log, sine and cosine written with + * / and a correctly rounded sqrt, which agree bit for bit between
the CPU kernels and the CUDA simulator; on a real GPU NVVM fuses a * b + c into FMAs by default, so normals may
differ there in the last bits).

>>> [hex(w) for w in philox4x32((0, 0, 0, 0), (0, 0))]
['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
"""

import numpy as np

from . import backend as backends
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


def philox4x32(counter, key):
    """The four 32-bit output words of Philox4x32-10 for ``counter`` (4 words) and ``key`` (2 words)."""
    c = _words(counter, 4, "counter")
    k = _words(key, 2, "key")
    return [int(w) for w in rules.philox4x32(*c, *k)]


def _fill(kind, shape, seed, stream, step, loc, scale, backend, dtype):
    dtype = backends.check_dtype(dtype)
    seed = backends.check_seed(seed)
    stream = backends.check_seed(stream, "stream")
    step = backends.check_seed(step, "step")
    if stream > WORD_MAX or step > WORD_MAX:
        raise ValueError("stream and step must be below 2**32")
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    for n in shape:
        backends.check_positive_int(n, "shape")
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


def uniform(shape, *, seed=0, stream=0, step=0, backend="cpu", dtype=np.float64):
    """Uniform draws on (0, 1]: ``(w + 1) / 2**32`` for Philox words ``w``, element i being draw i of the stream."""
    return _fill(kernels.UNIFORM, shape, seed, stream, step, 0.0, 1.0, backend, dtype)


def normal(shape, *, seed=0, stream=0, step=0, loc=0.0, scale=1.0, backend="cpu", dtype=np.float64):
    """Normal draws ``loc + scale * z``, z standard normal by Box-Muller, element i being draw i of the stream."""
    loc = backends.check_finite(loc, "loc")
    scale = backends.check_finite(scale, "scale", minimum=0.0)
    return _fill(kernels.NORMAL, shape, seed, stream, step, loc, scale, backend, dtype)
