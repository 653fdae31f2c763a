"""Compile a run's later CPU kernels ahead, in a helper process, while the run compiles and runs its first one.

Numba compiles one function at a time per process (one lock), so a first run on an empty cache compiles its
kernels one after the other on one core. The kernels are cached on disk (``cache=True``), so another process can
compile them into the same cache: :func:`compile_ahead` starts ``python -m testbed.warmup NAME ...``, which calls
each kernel once on tiny inputs through the same API a run uses (so with the same argument types, the one
signature the run will load), and reports each one as compiled. The run's launchers wait for a kernel the helper
is compiling (:func:`testbed.kernels.ahead.wait`) and then load it from the cache.

Measured (``python -m testbed.scenarios.saddle`` on an empty cache, 2 cores): the helper compiles the fill
kernel (for the ball starts) and the dense Newton kernel while the run compiles the trial kernel, which it needs
first; see benchmarks/RESULTS.md, "Ninth session: compile time".

Kernels that are cached already are left out (a read of the cache's index), and with none left no process
starts: a warm run pays nothing.
"""

import os
import subprocess
import sys
import threading

from .kernels import ahead


def _fill():
    from . import rng

    rng.normal(8, seed=0)  # fill_normal_cpu
    rng.uniform(8, seed=0)  # fill_cpu, every other code


def _trials():
    from . import landscapes, montecarlo

    montecarlo.escape_times(landscapes.saddle(dim=2), "sgd", trials=1, max_steps=1)


def _dense():
    from . import landscapes, montecarlo

    montecarlo.escape_times(landscapes.saddle(dim=2), "newton", trials=1, max_steps=1)


#: kernel name -> (the function that calls its dispatchers once on tiny inputs, the dispatchers as "module:name").
JOBS = {
    "fill": (_fill, ("testbed.kernels.random:fill_normal_cpu", "testbed.kernels.random:fill_cpu")),
    "trials": (_trials, ("testbed.kernels.montecarlo:trials_cpu",)),
    "dense": (_dense, ("testbed.kernels.montecarlo:dense_trials_cpu",)),
}


def _dispatchers(name):
    import importlib

    found = []
    for path in JOBS[name][1]:
        module, attribute = path.split(":")
        found.append(getattr(importlib.import_module(module), attribute))
    return found


def _check(names):
    names = list(names)
    for name in names:
        if name not in JOBS:
            raise ValueError(f"kernel name must be one of {', '.join(JOBS)}, got {name!r}")
    return names


def uncached(names):
    """The kernels of ``names`` that the on-disk cache does not hold yet."""
    return [name for name in _check(names) if not all(ahead.is_cached(kernel) for kernel in _dispatchers(name))]


def compile_ahead(names):
    """Start a helper process that compiles the kernels ``names`` (keys of :data:`JOBS`) into the on-disk cache,
    those not cached already, in that order; returns the helper (a ``subprocess.Popen``), or None when every kernel
    is cached.

    Until the helper reports a kernel compiled (or ends), the launcher of that kernel waits for it rather than
    compiling it too. The helper inherits the environment (``NUMBA_CACHE_DIR`` included); its output is
    discarded: if it fails, the run compiles the kernel itself.
    """
    names = uncached(names)
    if not names:
        return None
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    events = ahead.expect(names)
    helper = subprocess.Popen(
        [sys.executable, "-m", "testbed.warmup", *names],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )

    def listen():
        try:
            for line in helper.stdout:
                name = line.strip()
                if name in events:
                    events[name].set()
        finally:
            helper.stdout.close()
            helper.wait()
            for event in events.values():  # ended (or died): nothing left to wait for
                event.set()

    threading.Thread(target=listen, name="testbed-warmup", daemon=True).start()
    return helper


def main(argv=None):
    """Compile the kernels named on the command line, printing each name once it is in the cache."""
    for name in _check(sys.argv[1:] if argv is None else argv):
        JOBS[name][0]()
        print(name, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
