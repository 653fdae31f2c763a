"""Bounded kernel slices: the same bits as one launch, progress within a run, Ctrl-C seen within a slice.

A Monte Carlo run is a sequence of kernel launches of at most a step budget each (``testbed.montecarlo``'s
slices); these tests force budgets of a few steps and compare every output array with a run of one launch.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from testbed import landscapes, montecarlo, optim

ROOT = Path(__file__).resolve().parents[1]

#: Steps per slice of the forced-slice runs: one step (every step a launch) and an odd budget that splits the
#: recording interval and the budget unevenly.
SLICE_BUDGETS = (1, 7)

#: Seconds allowed from SIGINT to the end of the process (the issue's bound; a slice aims at 0.2 s).
INTERRUPT_DEADLINE = 2.0


def ravine_starts(trials):
    """On the ravine of kappa 100 with lr 0.03 (lr kappa = 3 > 2): starts on the flat axis converge (|w_x| shrinks
    by 0.97 per step: the nearest within 60 steps, the farther not); every third start is far off it and diverges
    (|w_y| doubles per step, from 1e300 past the largest double in about 28 steps); every seventh is converged
    already."""
    starts = np.zeros((trials, 2))
    starts[:, 0] = np.geomspace(2e-3, 10.0, trials)
    starts[::3, 1] = 1e300
    starts[::7] = 1e-4
    return starts


CASES = {
    "saddle_sgd_gaussian": (
        lambda: landscapes.saddle(dim=5),
        lambda: optim.SGD(lr=0.05),
        dict(noise=0.1, start=("ball", 0.05), max_steps=60),
    ),
    "saddle_adam_minibatch": (
        lambda: landscapes.saddle(dim=5),
        lambda: optim.Adam(lr=0.05),
        dict(noise=0.2, noise_kind="minibatch", samples=9, batch=3, max_steps=60),
    ),
    "tanh_plateau_loss": (
        lambda: landscapes.tanh_unit(start=2.0),
        lambda: optim.SGD(lr=0.2),
        dict(noise=0.01, criterion="loss", delta=0.05, max_steps=60),
    ),
    "ravine_diverging": (
        lambda: landscapes.ravine(kappa=100.0),
        lambda: optim.SGD(lr=0.03),
        dict(noise=0.0, criterion="converge", radius=1e-3, max_steps=60, start=ravine_starts(40)),
    ),
    "saddle_free_newton_dense": (
        lambda: landscapes.saddle(dim=3),
        lambda: optim.SaddleFreeNewton(lr=0.2, damping=0.1),
        dict(noise=0.05, start=("ball", 0.1), max_steps=40),
    ),
}


def fixed_budget(monkeypatch, steps):
    """Make every slice of every run ``steps`` steps long."""
    monkeypatch.setattr(montecarlo, "_first_budget", lambda max_steps, lanes, dim: steps)
    monkeypatch.setattr(montecarlo, "_next_budget", lambda budget, elapsed, max_steps: steps)


def run_case(case, backend="cpu"):
    make_landscape, make_optimizer, kw = CASES[case]
    kw = dict(kw)
    trials = kw["start"].shape[0] if isinstance(kw.get("start"), np.ndarray) else 40
    return montecarlo.escape_times(
        make_landscape(), make_optimizer(), trials=trials, seed=5, record=3, record_every=3, backend=backend, **kw
    )


def assert_same_bits(a, b):
    for name in ("steps", "escaped", "diverged", "final", "trajectories"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("case", list(CASES))
def test_slices_give_the_bits_of_one_launch_on_the_cpu(monkeypatch, case):
    fixed_budget(monkeypatch, 2**32)
    whole = run_case(case)
    for budget in SLICE_BUDGETS:
        fixed_budget(monkeypatch, budget)
        assert_same_bits(run_case(case), whole)
    # the cases end trials every way between them, so slices stop mid-trial of each kind
    assert whole.escaped.any() and (whole.steps > max(SLICE_BUDGETS)).any()


def test_ravine_case_ends_trials_every_way():
    # the case exists to slice through trials that diverge, converge late, or are censored
    r = run_case("ravine_diverging")
    assert r.diverged.any() and (r.escaped & (r.steps > 0)).any() and r.censored.any()


def test_slices_on_the_cuda_simulator_give_the_bits_of_one_cpu_launch(monkeypatch):
    # one case (Adam with minibatch noise: slots and the finite-sum draws carried over); the simulator is slow
    fixed_budget(monkeypatch, 2**32)
    whole = run_case("saddle_adam_minibatch")
    fixed_budget(monkeypatch, SLICE_BUDGETS[1])
    assert_same_bits(run_case("saddle_adam_minibatch", backend="cuda"), whole)


def test_progress_listener_sees_the_fraction_of_trials_finished_grow_to_one(monkeypatch):
    fixed_budget(monkeypatch, 5)
    seen = []
    with montecarlo.progress_listener(seen.append):
        r = run_case("saddle_sgd_gaussian")
    # the listener is removed after the block
    run_case("saddle_sgd_gaussian")
    slices = int(np.ceil(r.steps.max() / 5))
    assert len(seen) >= slices
    assert seen == sorted(seen) and seen[-1] == 1.0 and seen[0] < 1.0


def test_adaptive_budget_scales_towards_the_slice_time_within_limits():
    target = montecarlo.SLICE_SECONDS
    limit = montecarlo.SLICE_SCALE_LIMIT
    assert montecarlo._next_budget(1000, target / 2, 10**9) == 2000
    assert montecarlo._next_budget(1000, target * 100, 10**9) == int(1000 / limit)
    assert montecarlo._next_budget(1000, 0.0, 10**9) == int(1000 * limit)
    assert montecarlo._next_budget(1000, 1e-9, 1500) == 1500  # never beyond the run's budget
    assert montecarlo._next_budget(1, 1e9, 10) == 1  # never below one step


#: The issue's commands, with SGD on a flat saddle in place of GD from the saddle (noiseless trials from one start
#: now run once, so GD's 2,000 trials would take milliseconds): with curvature -1e-12 along w_0 (growth 1 + 1e-14
#: per step) the escape coordinate is a random walk of steps lr sigma = 1e-4, which reaches |w| = 1 after about
#: 1e8 steps (within 2e6 steps with probability below 1e-10 per trial), so the first configuration runs all its
#: 2,000 noisy trials to the budget (minutes with 2e6 steps; for ever, in effect, with 4e9).
SADDLE_LONG = [
    "--no-plot",
    "--optimizers",
    "sgd",
    "--gamma",
    "1e-12",
    "--trials",
    "2000",
    "--sweep-lr",
    "0.01",
    "--sweep-noise",
    "0.01",
    "--sweep-dim",
    "10",
]
MAX_STEPS = ("2000000", "4000000000")

#: Seconds the run is left in its first (never-ending) configuration before SIGINT, once its bar is drawn.
RUN_BEFORE_SIGINT = 1.0


def read_until(stream, text, timeout):
    """Read the raw stream (a progress bar writes no newlines) until ``text`` appears; all read so far."""
    import selectors

    seen = b""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while text.encode() not in seen and time.monotonic() < deadline:
        if selector.select(timeout=0.1):
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace")


def _as_from_a_shell():
    """In the child before it runs the program: Ctrl-C's default action, as a shell starts a program with. A child
    inherits an ignored SIGINT, and Python then installs no handler for it: the program would ignore Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def cli_env():
    """The environment of the command-line runs, with the trial kernel compiled (or loaded) into the Numba cache
    they read, outside their timing."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_NUM_THREADS="2")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from testbed import montecarlo; montecarlo.escape_times('saddle', 'sgd', trials=4, max_steps=10)",
        ],
        env=env,
        check=True,
    )
    return env


@pytest.mark.parametrize("max_steps", MAX_STEPS)
def test_sigint_during_a_long_kernel_exits_130_within_two_seconds(tmp_path, cli_env, max_steps):
    """Ctrl-C during the first configuration of the issue's commands ends them with the interrupted status
    within two seconds, and saves nothing; with 2e6 steps the progress bar has moved within the configuration."""
    out = tmp_path / "out"
    env = cli_env
    process = subprocess.Popen(
        [sys.executable, "-m", "testbed.scenarios.saddle", *SADDLE_LONG, "--max-steps", max_steps, "--out", str(out)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_as_from_a_shell,
    )
    try:
        drawn = read_until(process.stderr, "saddle:", timeout=120)
        assert "saddle:" in drawn, drawn
        time.sleep(RUN_BEFORE_SIGINT)
        assert process.poll() is None
        drawn += read_until(process.stderr, "\r", timeout=1.0)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = drawn + process.stderr.read().decode(errors="replace")
    assert process.returncode == 130, stderr
    assert elapsed < INTERRUPT_DEADLINE, f"exited {elapsed:.2f} s after SIGINT"
    assert "interrupted; nothing saved" in stderr and "Traceback" not in stderr
    assert not out.exists()
    if max_steps == MAX_STEPS[0]:
        # the bar reads "k/N" runs; within the first run k is the fraction of its work done, above 0
        moved = [float(k) for k in re.findall(r"\| ([0-9.]+)/\d+ \[", drawn)]
        assert moved and 0.0 < max(moved) < 1.0, drawn
