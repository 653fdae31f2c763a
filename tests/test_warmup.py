"""Compiling ahead in a helper process (testbed.warmup, testbed.kernels.ahead) and the kernels' thread runner
(testbed.kernels.threads)."""

import os
import subprocess
import sys
import textwrap
import threading

import naive
import pytest

from testbed import warmup
from testbed.kernels import ahead, threads

#: Work items and thread counts of the runner checks: fewer, as many and more items than threads, and none.
ITEM_COUNTS = (0, 1, 2, 3, 7, 16)
THREAD_COUNTS = (1, 2, 3)


@pytest.mark.parametrize("dynamic", [True, False])
@pytest.mark.parametrize("thread_count", THREAD_COUNTS)
def test_run_items_calls_every_item_once(dynamic, thread_count):
    for items in ITEM_COUNTS:
        seen, lock = [], threading.Lock()

        def work(first, last):
            with lock:
                seen.extend(range(first, last))

        threads.run_items(work, items, dynamic=dynamic, threads=thread_count)
        assert sorted(seen) == list(range(items)), (items, thread_count, dynamic)


def test_run_items_uses_several_threads_and_reraises_an_error():
    names, lock = set(), threading.Lock()
    barrier = threading.Barrier(2, timeout=10)

    def work(first, last):
        with lock:
            names.add(threading.current_thread().name)
        if first < 2:
            barrier.wait()  # the first two items run at the same time, on two threads
        if first == 5:
            raise ZeroDivisionError("item 5")

    with pytest.raises(ZeroDivisionError, match="item 5"):
        threads.run_items(work, 8, threads=2)
    assert len(names) == 2


def test_wait_returns_at_once_without_a_helper_and_blocks_until_its_kernel_is_reported():
    assert ahead.wait("no such kernel") is False
    events = ahead.expect(["test-kernel"])
    assert ahead.pending() == ["test-kernel"]
    timer = threading.Timer(0.2, events["test-kernel"].set)
    timer.start()
    assert ahead.wait("test-kernel", timeout=10) is True
    assert events["test-kernel"].is_set()
    assert ahead.pending() == []
    assert ahead.wait("test-kernel") is False  # done: forgotten


def test_unknown_kernel_names_are_refused():
    with pytest.raises(ValueError, match="kernel name must be one of fill, trials, dense"):
        warmup.compile_ahead(["fill", "newton"])


def test_a_helper_compiles_the_fill_kernel_into_an_empty_cache_and_the_run_loads_it(tmp_path):
    """End to end, in a process of its own with an empty cache: the helper compiles the fill kernels; the run's fill
    waits for it and loads it from the cache (a cache hit, no compile of its own), and draws what the scalar rule
    draws; once cached, no helper starts. (About 8 s of CPU: the helper's compile, two imports.)"""
    script = textwrap.dedent(
        """
        import numpy as np
        from testbed import rng, warmup
        from testbed.kernels import ahead, random

        assert warmup.uncached(["fill", "dense"]) == ["fill", "dense"]
        helper = warmup.compile_ahead(["fill"])
        assert helper is not None
        draws = rng.normal(10, seed=3)  # waits for the helper, then loads the kernel
        rng.uniform(10, seed=3)
        for kernel in (random.fill_normal_cpu, random.fill_cpu):
            assert sum(kernel.stats.cache_hits.values()) == 1, kernel.stats
            assert sum(kernel.stats.cache_misses.values()) == 0, kernel.stats
        assert helper.wait(timeout=60) == 0
        assert ahead.is_cached(random.fill_cpu) and ahead.is_cached(random.fill_normal_cpu)
        assert warmup.uncached(["fill", "dense"]) == ["dense"]
        assert warmup.compile_ahead(["fill"]) is None
        print(" ".join(repr(float(x)) for x in draws))
        """
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    expected = naive.normal_fill(10, 3, 0, 0, 0, 1.0)  # the scalar rule, draw by draw, in Python
    assert [float(x) for x in done.stdout.split()] == [float(x) for x in expected]
