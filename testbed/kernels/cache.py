"""Numba's on-disk cache, made aware of the rules that a kernel compiles in.

Numba keys a cached function on the content of the file that defines it (its "source stamp"). A kernel of
:mod:`testbed.kernels` compiles in rules from :mod:`testbed.rules` and loop bodies from :mod:`testbed.loops`
(through :mod:`testbed.kernels.targets`) and helpers from its sibling modules: all in other files. Editing a rule
would leave every kernel that uses it loading stale machine code from the cache, silently. The locators installed
here stamp each kernel of this package with the content of its own file *and* of every file it can compile in
(``testbed/rules``, ``testbed/loops``, ``testbed/kernels`` and ``testbed/config.py``), so that any such edit
recompiles the kernels on their next call.

They wrap Numba's own locators (``numba.core.caching``, the classes that Numba's ``NUMBA_CACHE_LOCATOR_CLASSES``
setting also names), so the cache stays where Numba would put it: ``NUMBA_CACHE_DIR`` when set, else
``__pycache__`` beside the kernels, else the user-wide cache directory. The names of ``numba.core.caching`` used
here are private to Numba: :mod:`testbed.kernels.numba_private` lists them with the testbed's other such uses.
"""

import functools
import hashlib
import os

from numba.core import caching

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS_DIR = os.path.join(PACKAGE_DIR, "kernels")
#: The files whose content goes into the stamp of every kernel: what a kernel can compile in.
STAMPED_DIRS = (os.path.join(PACKAGE_DIR, "rules"), os.path.join(PACKAGE_DIR, "loops"), KERNELS_DIR)
STAMPED_FILES = (os.path.join(PACKAGE_DIR, "config.py"),)


def _stamped_paths():
    paths = list(STAMPED_FILES)
    for directory in STAMPED_DIRS:
        paths += [os.path.join(directory, name) for name in os.listdir(directory) if name.endswith(".py")]
    return sorted(paths)


@functools.lru_cache(maxsize=None)
def _hash_files(stats):
    digest = hashlib.sha256()
    for path, _, _ in stats:
        digest.update(path.encode())
        with open(path, "rb") as source:
            digest.update(hashlib.sha256(source.read()).digest())
    return digest.hexdigest()


def dependencies_fingerprint():
    """SHA-256 of the content of every file a kernel can compile in (re-read only when one changes)."""
    stats = tuple((path, os.stat(path).st_mtime_ns, os.stat(path).st_size) for path in _stamped_paths())
    return _hash_files(stats)


def _is_kernel_file(py_file):
    return os.path.dirname(os.path.abspath(py_file)) == KERNELS_DIR


def _dependency_aware(locator):
    """``locator`` (a Numba cache locator class) for the kernels of this package, with the fingerprint added."""

    class DependencyAwareLocator(locator):
        def get_source_stamp(self):
            return super().get_source_stamp(), dependencies_fingerprint()

        @classmethod
        def from_function(cls, py_func, py_file):
            if not _is_kernel_file(py_file):
                return None
            return super().from_function(py_func, py_file)

    DependencyAwareLocator.__name__ = DependencyAwareLocator.__qualname__ = f"DependencyAware{locator.__name__}"
    return DependencyAwareLocator


#: Numba's locators that this module wraps, in Numba's order of preference.
WRAPPED_LOCATORS = (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator, caching.UserWideCacheLocator)


def install():
    """Put the dependency-aware locators first in Numba's list (once); call before any kernel is decorated."""
    classes = caching.CacheImpl._locator_classes
    if any(getattr(c, "__name__", "").startswith("DependencyAware") for c in classes):
        return
    classes[:0] = [_dependency_aware(locator) for locator in WRAPPED_LOCATORS]
