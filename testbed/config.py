"""Defaults in one place.

Everything a kernel needs is passed to it as an argument (Numba freezes globals at compile time, also in the
on-disk cache), so the values here are read by the Python wrappers at call time and may be changed at run time,
e.g. ``testbed.config.THREADS_PER_BLOCK = 10`` in the tests.
"""

import numpy as np

#: The floating-point types every kernel is compiled for.
SUPPORTED_DTYPES = (np.float32, np.float64)

#: Threads per CUDA block for the grid-stride kernels (the tests set an awkward value such as 10).
THREADS_PER_BLOCK = 128

#: Upper bound on the number of CUDA blocks of a grid-stride launch.
MAX_BLOCKS = 65535

#: Fast-math flags for kernels whose result may depend on the order of floating-point operations
#: (reductions, statistics). Never ``nnan`` or ``ninf``: they let LLVM delete the NaN and inf checks that
#: report a diverging run. ``contract`` (FMA), ``afn`` and ``arcp`` are left out as well, since they change
#: the last bit and so break the bit-for-bit agreement between targets and thread counts.
FASTMATH_REDUCTIONS = frozenset({"nsz", "reassoc"})

#: Options of every CPU kernel: compiled on first use and cached on disk, so a second run starts fast.
CPU_KERNEL_OPTIONS = dict(cache=True, nogil=True)
