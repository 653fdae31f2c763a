"""Compiled kernels: thin loops (``prange``, or work items on threads, on the CPU; grid-stride on the GPU) around the
scalar rules."""

from . import cache

# Before any kernel below is decorated: cached kernels must be recompiled when a rule they compile in changes.
cache.install()
