"""The on-disk kernel cache notices edits to the rules a kernel compiles in (testbed.kernels.cache)."""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from testbed.kernels import cache

#: The SGD line of the optimizer rule that the end-to-end test edits, and what it becomes.
SGD_LINE = "return w - lr * g, s0, s1, s2"
EDITED_SGD_LINE = "return w - 2.0 * lr * g, s0, s1, s2"

#: One cached CPU kernel (the fused optimizer step) on a tiny input: prints w after one SGD step.
ONE_SGD_STEP = textwrap.dedent("""
    import numpy as np
    from testbed import optim
    opt = optim.SGD(lr=0.5)
    w = np.ones(3)
    opt.step(w, np.ones(3), opt.init(w))
    print(w[0])
""")


def test_every_cached_kernel_uses_a_dependency_aware_locator():
    from testbed.kernels import montecarlo, nn, optim, random  # noqa: F401  (decorates every kernel)

    cached = [
        value
        for module in (montecarlo, nn, optim, random)
        for value in vars(module).values()
        if getattr(value, "_cache", None) is not None and hasattr(value._cache, "_impl")
    ]
    assert len(cached) >= 4
    for kernel in cached:
        assert type(kernel._cache._impl.locator).__name__.startswith("DependencyAware"), kernel


def test_fingerprint_changes_with_any_stamped_file_and_only_then(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.py").write_text("X = 1\n")
    config = tmp_path / "config.py"
    config.write_text("Y = 2\n")
    monkeypatch.setattr(cache, "STAMPED_DIRS", (str(rules),))
    monkeypatch.setattr(cache, "STAMPED_FILES", (str(config),))
    original = cache.dependencies_fingerprint()
    assert cache.dependencies_fingerprint() == original
    (rules / "a.py").write_text("X = 3\n")
    edited = cache.dependencies_fingerprint()
    assert edited != original
    (rules / "a.py").write_text("X = 1\n")
    assert cache.dependencies_fingerprint() == original
    (rules / "b.py").write_text("")
    assert cache.dependencies_fingerprint() != original


@pytest.mark.skipif(sys.platform == "win32", reason="copies the package and runs it in subprocesses")
def test_editing_a_rule_recompiles_the_cached_kernel(tmp_path):
    """Run a cached kernel, edit the rule it compiles in, run again with the same cache: the edit shows."""
    copy = tmp_path / "src" / "testbed"
    shutil.copytree(cache.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(
        os.environ, PYTHONPATH=str(tmp_path / "src"), NUMBA_CACHE_DIR=str(tmp_path / "cache"), NUMBA_NUM_THREADS="1"
    )

    def one_step():
        # cwd: with -c, Python puts the working directory first on sys.path, where the checkout's testbed is
        done = subprocess.run(
            [sys.executable, "-c", ONE_SGD_STEP], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
        )
        return float(done.stdout.split()[-1])

    assert one_step() == 0.5
    assert any((tmp_path / "cache").rglob("*.nbi")), "the first run must have written the kernel to the cache"
    rule = copy / "rules" / "optimizers.py"
    source = rule.read_text()
    assert source.count(SGD_LINE) == 1
    rule.write_text(source.replace(SGD_LINE, EDITED_SGD_LINE))
    assert one_step() == 0.0
