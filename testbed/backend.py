"""Backends: ``"cpu"``, ``"cuda"`` and ``"auto"``, the memory guard (host and GPU) and CUDA launch shapes.

``"auto"`` picks ``"cuda"`` when a real GPU is present and ``"cpu"`` otherwise. The CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``, set before numba is imported) runs the CUDA kernels as Python, so ``"cuda"`` works
on any machine while it is on, but ``"auto"`` never chooses it: the simulator is a test tool, far slower than
the CPU kernels.
"""

import contextlib
import os

import numpy as np

from . import config
from .validation import check_choice

BACKENDS = ("cpu", "cuda", "auto")

#: Below this many elements a CPU kernel runs on the calling thread alone: waking the thread pool costs more than
#: the work (tens of milliseconds on a busy machine, against tens of microseconds for a small optimizer step or
#: layer pass). Every CPU kernel's result is independent of the thread count, so this changes timing only.
SERIAL_BELOW = 1 << 16


@contextlib.contextmanager
def threads_for(size):
    """Run the enclosed CPU kernels on one thread when ``size`` (elements of work) is below ``SERIAL_BELOW``.

    Numba's thread count is per calling thread, so this does not affect other threads.
    """
    if size >= SERIAL_BELOW:
        yield
        return
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def simulator_enabled():
    """True when Numba's CUDA simulator stands in for the GPU."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def gpu_available():
    """True when a real CUDA GPU with a working driver is present (never under the simulator)."""
    if simulator_enabled():
        return False
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:  # no driver, no toolkit: no GPU
        return False


def resolve(backend):
    """Validate ``backend`` and return ``"cpu"`` or ``"cuda"``."""
    check_choice(backend, "backend", BACKENDS)
    if backend == "auto":
        return "cuda" if gpu_available() else "cpu"
    if backend == "cuda" and not (simulator_enabled() or gpu_available()):
        raise ValueError(
            "backend='cuda' needs a CUDA GPU and driver, or the simulator (NUMBA_ENABLE_CUDASIM=1 set before "
            "numba is imported); use backend='cpu' or 'auto'"
        )
    return backend


# ----------------------------------------------------------------------------------------------------------
# Memory


#: Largest share of the available memory one run may plan to use: the rest is left to Python, NumPy's
#: temporaries and the other programs of the machine.
MEMORY_FRACTION = 0.8


class MemoryLimitError(ValueError):
    """A run whose estimated memory exceeds what the machine has available; raised before anything is allocated.

    A ValueError, so a scenario's command line reports it as bad input (one line, exit status 2).
    """


def available_memory():
    """Bytes of memory available to a new allocation: ``MemAvailable`` of /proc/meminfo (Linux), else the
    physical memory (``os.sysconf``), else None (unknown: no limit is applied)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def format_bytes(n):
    """``n`` bytes as a short human-readable size (binary units)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def device_free_memory():
    """Bytes free on the current CUDA device (``cuda.current_context().get_memory_info()``), or None when unknown:
    under the simulator (its device arrays are host arrays, which :func:`available_memory` covers) or without a
    working driver. The tests replace this function to stand for a small GPU."""
    if simulator_enabled():
        return None
    try:
        from numba import cuda

        free, _total = cuda.current_context().get_memory_info()
        return int(free)
    except Exception:  # no driver or no device: nothing to compare with
        return None


def check_memory(nbytes, what, *, device=False):
    """Raise :class:`MemoryLimitError` when ``nbytes`` (an estimate of a run's arrays) exceeds
    :data:`MEMORY_FRACTION` of the available memory; ``what`` names the sizes that make it up
    (e.g. ``"trials x dim = 1000 x 100000000"``), so the message says which argument to lower.

    ``device=True`` compares with the free memory of the CUDA device (:func:`device_free_memory`) instead of the
    host's (:func:`available_memory`): a CUDA run checks both before it allocates its device arrays."""
    if device:
        available, noun, where = device_free_memory(), "GPU memory", "free on the GPU"
    else:
        available, noun, where = available_memory(), "memory", "available on this machine"
    if available is not None and nbytes > MEMORY_FRACTION * available:
        raise MemoryLimitError(
            f"{what} needs about {format_bytes(nbytes)} of {noun}, more than the {format_bytes(available)} "
            f"{where} (at most {MEMORY_FRACTION:.0%} of it is used); lower these sizes"
        )
    return int(nbytes)


def launch_shape(n):
    """(blocks, threads) for a grid-stride kernel over ``n`` items, from ``config`` at call time."""
    threads = int(config.THREADS_PER_BLOCK)
    blocks = max(1, min(config.MAX_BLOCKS, (n + threads - 1) // threads))
    return blocks, threads


def to_device(array):
    """Copy a host array to the GPU (or the simulator's stand-in)."""
    from numba import cuda

    return cuda.to_device(np.ascontiguousarray(array))


def to_host(device_array):
    """Copy a device array back into a NumPy array."""
    return device_array.copy_to_host()
