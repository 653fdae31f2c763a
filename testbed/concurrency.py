"""Independent BLAS-bound tasks run side by side on the cores, each on one BLAS thread.

A task made of medium-sized LAPACK and BLAS calls (a 512 x 512 QR, SVD or product) uses two cores badly when each
call splits itself over OpenBLAS's threads: the panel steps of a factorisation do not split, the hand-offs cost,
and on a loaded machine the spinning threads oversubscribe the cores (benchmarks/RESULTS.md, seventh session: a
512 x 512 QR took 22 ms on two BLAS threads against 14 ms on one). Many such tasks that do not depend on each
other (the layers' orthogonal weights, the Jacobians at several inputs) run faster as one task per core, each
on one BLAS thread: the NumPy and LAPACK calls release the GIL, and so do the project's ``nogil`` kernels.

Results do not depend on the split: each task computes exactly what it computes alone, and OpenBLAS's results
do not depend on its thread count for these calls (threads split the output, not the sums; the tests check it
for the orthogonal initialiser).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def cores() -> int:
    """The number of CPU cores this process may run on.

    Returns
    -------
    int
        The size of the process's CPU affinity set (``os.cpu_count()`` where there is none).
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_on_cores(task: Callable[[Any], Any], items: Iterable[Any], *, workers: int | None = None) -> list:
    """``[task(item) for item in items]``, the items shared out among ``workers`` threads (default: one per
    core, at most one per item) that each take the next item when done with the last (a slow core gets fewer),
    BLAS limited to one thread meanwhile. One worker, or a call from any thread but the main one, runs the loop
    in this thread with BLAS as it is.

    An exception a task raises stops the workers from taking further items and is raised here.

    Parameters
    ----------
    task : callable
        Called once per item; thread-safe (the project's ``nogil`` kernels and NumPy's BLAS and LAPACK calls are).
    items : iterable
        The tasks' arguments.
    workers : int, optional
        The number of threads (default: :func:`cores`); at most one per item.

    Returns
    -------
    list
        ``task(item)`` for each item, in the items' order.
    """
    items = list(items)
    workers = min(cores() if workers is None else workers, len(items))
    # off the main thread (a caller's own worker, e.g. train.fit_many's) the cores are already shared out
    if workers <= 1 or threading.current_thread() is not threading.main_thread():
        return [task(item) for item in items]
    from .train import blas_threads  # train imports nn, whose MLP.initialize calls this: imported when needed

    results = [None] * len(items)
    lock = threading.Lock()
    queue = iter(range(len(items)))
    failed = threading.Event()

    def work():
        while not failed.is_set():
            with lock:
                index = next(queue, None)
            if index is None:
                return
            try:
                results[index] = task(items[index])
            except BaseException:
                failed.set()
                raise

    with blas_threads(1), ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(work) for _ in range(workers)]
        for future in futures:
            future.result()
    return results
