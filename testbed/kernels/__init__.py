"""Compiled kernels: thin loops (``prange`` on the CPU, grid-stride on the GPU) around the scalar rules."""
