"""testbed.concurrency: tasks shared out over the cores give the sequential results; MLP.initialize's concurrent
orthogonal draw gives the very matrices of testbed.init drawn one layer after the other."""

import threading

import numpy as np
import pytest

from testbed import concurrency, init, nn
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
