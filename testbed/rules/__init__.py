"""Scalar rules: plain Python functions of scalars, written once and compiled for the CPU and the GPU.

Nothing here imports numba. :mod:`testbed.kernels.targets` compiles each rule for a target; called directly
they run as Python (that is how the CUDA simulator runs them, and how the tests check them).
"""
