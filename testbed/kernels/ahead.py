"""Kernels that a helper process is compiling into the on-disk cache, and the wait for them.

A first run compiles each CPU kernel it calls, one after the other, while a second core idles: Numba compiles
in the calling thread under one lock. :func:`testbed.warmup.compile_ahead` starts a process that compiles the
kernels a run will need later (its cache is the run's: ``cache=True``), and registers them here; a launcher
calls :func:`wait` before its kernel's first call, so that it loads the kernel from the cache instead of
compiling it a second time. With no helper process (or once it is done, or if it died) :func:`wait` returns at
once.
"""

import threading

_lock = threading.Lock()
#: kernel name -> an Event set when the helper process has compiled it (or has ended).
_pending = {}


def expect(names):
    """Register the kernels ``names`` as being compiled by a helper process; returns their Events (name -> Event),
    which the caller sets when the helper reports each one compiled, or ends."""
    events = {name: threading.Event() for name in names}
    with _lock:
        _pending.update(events)
    return events


def wait(name, timeout=None):
    """Block until the helper process compiling kernel ``name`` (if any) has compiled it; returns True when the
    kernel was waited for, False when none was pending."""
    with _lock:
        event = _pending.get(name)
    if event is None:
        return False
    event.wait(timeout)
    with _lock:
        if _pending.get(name) is event and event.is_set():
            del _pending[name]
    return True


def pending():
    """The names of the kernels a helper process is still compiling."""
    with _lock:
        return sorted(name for name, event in _pending.items() if not event.is_set())


def is_cached(dispatcher):
    """Whether the on-disk cache holds machine code for ``dispatcher`` (a ``cache=True`` kernel) under its current
    source stamp: a read of the cache's index (private to Numba: :mod:`testbed.kernels.numba_private`, item 5)."""
    cache = getattr(dispatcher, "_cache", None)
    cache_file = getattr(cache, "_cache_file", None)
    if cache_file is None:
        return False
    try:
        return bool(cache_file._load_index())
    except OSError:
        return False
