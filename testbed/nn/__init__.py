"""Multilayer perceptrons with per-layer signal statistics, on the CPU and the GPU, and the experiments on them.

- :mod:`testbed.nn.mlp`: :class:`MLP`, the network (one flat parameter array; forward and backward passes with
  statistics fused into each layer's pass: :class:`ForwardStats`, :class:`BackwardStats`).
- :mod:`testbed.nn.cuda`: :class:`~testbed.nn.cuda.CudaPasses`, the one GPU driver of both passes.
- :mod:`testbed.nn.experiments`: :func:`propagate` (signal and gradient through a fresh net; it keeps the arrays
  of its last run for the next one of the same shape, :func:`release_workspace` frees them) and :func:`lsuv`.

Training (a loss, its gradient and optimizer steps on data) builds on the MLP in :mod:`testbed.train`.

Speed: on the CPU a layer costs its BLAS product plus one vectorised pass over the product (the package makes
Numba's idle OpenMP threads spin only briefly, so that they leave the cores to BLAS: see :mod:`testbed`).
"""

from .experiments import (
    LSUV_MAX_ITERATIONS,
    LSUV_TOLERANCE,
    MAX_SIGNAL_VARIANCE,
    Propagation,
    check_memory,
    lsuv,
    memory_estimate,
    propagate,
    release_workspace,
)
from .mlp import (
    MLP,
    OUTPUTS,
    ROWS_PER_CHUNK,
    SATURATION_TOLERANCE,
    STREAM_BIASES,
    STREAM_INPUTS,
    STREAM_OUTPUT_GRAD,
    STREAM_WEIGHTS,
    BackwardStats,
    ForwardStats,
    NonFiniteSignalError,
    resolve_widths,
    weight_stream,
)

__all__ = [
    "MLP",
    "OUTPUTS",
    "memory_estimate",
    "check_memory",
    "MAX_SIGNAL_VARIANCE",
    "ForwardStats",
    "BackwardStats",
    "NonFiniteSignalError",
    "Propagation",
    "propagate",
    "release_workspace",
    "lsuv",
    "resolve_widths",
    "weight_stream",
    "ROWS_PER_CHUNK",
    "SATURATION_TOLERANCE",
    "LSUV_TOLERANCE",
    "LSUV_MAX_ITERATIONS",
    "STREAM_INPUTS",
    "STREAM_OUTPUT_GRAD",
    "STREAM_BIASES",
    "STREAM_WEIGHTS",
]
