"""Compile every registered CUDA kernel to PTX for a given compute capability, with no GPU and no driver.

    python -m testbed.kernels.ptx [--cc 9.0]

Needs NVVM, which the ``cuda`` extra installs (``numba-cuda[cu13]``). Exits 0 when every kernel compiled, 1 when
one failed (printing which and why), and 3 when NVVM is not installed. Must run without the CUDA simulator.
"""

import argparse
import importlib
import pkgutil
import sys


def nvvm_available():
    """True when NVVM can be loaded, so kernels can be compiled to PTX."""
    try:
        from numba.cuda.cudadrv import nvvm

        nvvm.NVVM()
        return True
    except Exception:
        return False


def import_kernel_modules():
    """Import every module of the testbed so that each registers its CUDA kernels."""
    import testbed

    for module in pkgutil.walk_packages(testbed.__path__, "testbed."):
        if ".scenarios" not in module.name and module.name != __name__:
            importlib.import_module(module.name)


def compile_all(cc=(9, 0)):
    """Compile every registered kernel for every signature; returns a list of (name, signature, error)."""
    from numba import cuda

    from .numba_private import compile_without_a_driver
    from .registry import GPU_KERNELS

    compile_without_a_driver(cc)  # device functions ask the driver otherwise
    import_kernel_modules()
    failures, compiled = [], 0
    for name, (factory, signatures) in sorted(GPU_KERNELS.items()):
        kernel = factory()
        for signature in signatures():
            try:
                cuda.compile_ptx(kernel.py_func, signature, cc=cc)
                compiled += 1
            except Exception as error:  # report every failure, not just the first
                failures.append((name, signature, f"{type(error).__name__}: {error}"))
    return compiled, failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cc", default="9.0", help="compute capability to compile for (default 9.0)")
    args = parser.parse_args(argv)
    cc = tuple(int(part) for part in args.cc.split("."))
    from testbed.backend import simulator_enabled

    if simulator_enabled():
        print("unset NUMBA_ENABLE_CUDASIM: the simulator cannot compile PTX", file=sys.stderr)
        return 2
    if not nvvm_available():
        print("NVVM is not installed (pip install 'numba-cuda[cu13]')", file=sys.stderr)
        return 3
    compiled, failures = compile_all(cc)
    for name, signature, error in failures:
        print(f"FAILED {name}{signature}:\n  {error}")
    print(f"compiled {compiled} kernel signatures to PTX for sm_{cc[0]}{cc[1]}, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
