"""Run a serial CPU kernel over independent work items on Python threads, instead of a Numba ``prange``.

The trial kernel and the fill kernel split their work into independent items (chunks of trials, ranges of
Philox blocks). A ``prange`` loop over the items costs compile time that the items themselves do not need: Numba
types the loop body twice (in the function and in the outlined gufunc), runs its parfor passes over the inlined
rules and optimises the linked module twice. Measured on the shared 2-core Xeon, CPU seconds of the cold compile:
the fill kernel 9.9 with ``prange``, 5.8 without; the trial kernel 24.1 and 17.1. The kernels are compiled with
``nogil=True`` (:data:`testbed.config.CPU_KERNEL_OPTIONS`), so Python threads that call them run in parallel, as
Numba's threads would. (The dense Newton kernel keeps its ``prange``: without it, it compiled in 7.0 s instead
of 13.9 but ran 1.65 times as slow, for a reason not found; a helper process compiles it, :mod:`testbed.warmup`.)

:func:`run_items` calls ``work(first, last)`` for ranges of items on ``numba.get_num_threads()`` threads (the
caller's setting, as a ``prange`` would use): a thread that is done takes the next range (a dynamic schedule), or
each thread gets one contiguous range (``dynamic=False``, ``prange``'s static schedule). What an item computes
does not depend on which thread runs it, so the results do not depend on the thread count.
"""

import concurrent.futures
import itertools
import threading

import numba

_lock = threading.Lock()
_pool = None
_pool_size = 0


def _executor(threads):
    """A thread pool of at least ``threads`` workers, made once and grown when more are asked for."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < threads:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="testbed-kernel")
            _pool_size = threads
        return _pool


def run_items(work, items, dynamic=True, threads=None):
    """Call ``work(first, last)`` on ranges ``[first, last)`` that cover ``range(items)`` once, on up to ``threads``
    threads (default ``numba.get_num_threads()``); returns when every call has returned, re-raising the first
    exception one raised.

    ``dynamic``: one item per call, each thread taking the next item when it is done (for items of uneven
    length, such as chunks of trials); otherwise one call per thread on a contiguous range of items.
    With one thread or one item, ``work(0, items)`` runs in the calling thread.
    """
    threads = numba.get_num_threads() if threads is None else threads
    threads = max(1, min(int(threads), items))
    if threads == 1:
        if items > 0:
            work(0, items)
        return
    if dynamic:
        counter = itertools.count()  # next() on it is atomic under the GIL

        def worker(_):
            for item in iter(counter.__next__, None):
                if item >= items:
                    return
                work(item, item + 1)

    else:

        def worker(part):
            work(part * items // threads, (part + 1) * items // threads)

    futures = [_executor(threads).submit(worker, part) for part in range(threads)]
    try:
        for future in futures:
            future.result()
    finally:  # on Ctrl-C too: no kernel may still be writing into the caller's arrays when this returns
        concurrent.futures.wait(futures)
