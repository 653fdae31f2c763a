"""testbed.concurrency: tasks shared out over the cores give the sequential results; MLP.initialize's concurrent
orthogonal draw gives the very matrices of testbed.init drawn one layer after the other."""

import threading

import numpy as np
import pytest
import threadpoolctl

from testbed import concurrency, init, nn, train
from testbed.train import _blas_controller


def _blas_threads():
    return max(info["num_threads"] for info in _blas_controller().select(user_api="blas").info())


def test_results_come_back_in_order_whatever_the_worker():
    seen = set()

    def task(item):
        seen.add(threading.get_ident())
        return item * item, _blas_threads()

    results = concurrency.run_on_cores(task, range(40), workers=3)
    assert [r[0] for r in results] == [i * i for i in range(40)]
    assert {r[1] for r in results} == {1}  # one BLAS thread inside the workers
    assert threading.get_ident() not in seen


def test_one_worker_runs_in_the_calling_thread():
    where = concurrency.run_on_cores(lambda _: threading.get_ident(), range(3), workers=1)
    assert where == [threading.get_ident()] * 3


def test_a_call_from_another_thread_runs_there():
    outer = []
    thread = threading.Thread(
        target=lambda: outer.append(
            (threading.get_ident(), concurrency.run_on_cores(lambda _: threading.get_ident(), range(4), workers=2))
        )
    )
    thread.start()
    thread.join()
    caller, where = outer[0]
    assert where == [caller] * 4


def test_an_exception_in_a_task_is_raised_and_stops_the_others():
    done = []

    def task(item):
        if item == 0:
            raise ValueError("item 0 failed")
        done.append(item)

    with pytest.raises(ValueError, match="item 0"):
        concurrency.run_on_cores(task, range(1000), workers=2)
    assert len(done) < 999  # the failure stopped the workers before they emptied the queue


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_concurrent_orthogonal_initialisation_is_bit_identical_to_layer_by_layer(dtype):
    widths = (96, 128, 128, 64, 160)
    net = nn.MLP(widths, "tanh", dtype=dtype).initialize("orthogonal", seed=5, gain=1.3)
    for l in range(1, len(widths)):
        expected = init.initialize(
            "orthogonal", widths[l - 1], widths[l], seed=5, stream=nn.weight_stream(l), dtype=dtype, gain=1.3
        )
        np.testing.assert_array_equal(net.weights(l), expected)


# ----------------------------------------------------------------------------------------------------------------
# train.blas_threads from several threads at once

#: BLAS's threads around the blocks under test: more than the blocks' limit of 1, so a wrong restore shows.
OUTER_THREADS = 2
#: Seconds a thread waits for the other at a barrier before the test fails (a hung test, not a slow one).
WAIT_SECONDS = 30.0


def _blas_counts():
    """The thread counts threadpoolctl reads now from the BLAS libraries that train.blas_threads limits."""
    managed = {library.filepath for library in train._blas_libraries()}
    return {info["num_threads"] for info in threadpoolctl.threadpool_info() if info["filepath"] in managed}


def _outer_threads():
    """OUTER_THREADS on every BLAS library, set with threadpoolctl itself (the process's setting before any
    block opens)."""
    return train._blas_controller().limit(limits=OUTER_THREADS, user_api="blas")


@pytest.mark.parametrize("second_limit", [1, 2])
def test_blas_limits_of_two_threads_interleaved_apply_the_smallest_and_restore_the_original(second_limit):
    """The first thread opens blas_threads(1), the second opens its block while the first is in its own, the first
    closes, then the second: inside, the smallest open limit applies; after both, BLAS's original count is back.
    (threadpoolctl's own save-and-restore, used by each thread on its own, left the second thread on the first's
    original count and BLAS on 1 thread for good.)"""
    both_in, first_out = threading.Barrier(2, timeout=WAIT_SECONDS), threading.Event()
    seen = {}

    def first():
        with train.blas_threads(1):
            both_in.wait()  # the second opens its block meanwhile
            both_in.wait()
        first_out.set()

    def second():
        both_in.wait()
        with train.blas_threads(second_limit):
            seen["both open"] = _blas_counts()
            both_in.wait()
            first_out.wait(WAIT_SECONDS)
            seen["first closed"] = _blas_counts()

    with _outer_threads():
        assert _blas_counts() == {OUTER_THREADS}
        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after = _blas_counts()
    assert seen == {"both open": {1}, "first closed": {second_limit}}
    assert after == {OUTER_THREADS}


def test_blas_limits_nest_and_a_bad_limit_is_refused():
    with _outer_threads():
        with train.blas_threads(1):
            with train.blas_threads(2):
                assert _blas_counts() == {1}  # the smallest open limit
            with train.blas_threads(None):
                assert _blas_counts() == {1}
            assert _blas_counts() == {1}
        assert _blas_counts() == {OUTER_THREADS}
        for bad in (0, -1, 1.5, True):
            with pytest.raises(ValueError, match="limit must be a positive integer"):
                train.blas_threads(bad)
        assert _blas_counts() == {OUTER_THREADS}
