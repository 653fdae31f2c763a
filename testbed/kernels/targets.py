"""Compile one scalar rule for both targets.

A rule in :mod:`testbed.rules` is a plain Python function of scalars that uses only ``math`` and allocates
nothing. It may call other rules by their module-level names. :func:`for_cpu` and :func:`for_gpu` compile a rule
for one target, after rebinding every rule it calls to that rule's compiled twin for the same target, so a rule
is written once and the CPU and GPU kernels run the same arithmetic::

    from testbed.rules import activations
    tanh_cpu = for_cpu(activations.tanh)   # numba.njit dispatcher, callable from @njit code
    tanh_gpu = for_gpu(activations.tanh)   # numba.cuda device function

The same rule as plain Python (uncompiled) is what the CUDA simulator runs and what the tests call.
"""
import functools
import types

RULES_PACKAGE = "testbed.rules"


def _is_rule(obj):
    return isinstance(obj, types.FunctionType) and (obj.__module__ or "").startswith(RULES_PACKAGE)


def _rebound(rule, target):
    """A copy of ``rule`` whose globals name the compiled twins (for ``target``) of the rules it calls."""
    namespace = dict(rule.__globals__)
    for name in rule.__code__.co_names:
        callee = namespace.get(name)
        if _is_rule(callee) and callee is not rule:
            namespace[name] = compile_rule(callee, target)
    copy = types.FunctionType(rule.__code__, namespace, rule.__name__, rule.__defaults__, rule.__closure__)
    copy.__qualname__ = rule.__qualname__
    copy.__doc__ = rule.__doc__
    copy.__module__ = rule.__module__
    return copy


@functools.lru_cache(maxsize=None)
def compile_rule(rule, target):
    """The compiled twin of ``rule`` for ``target`` ("cpu" or "cuda"), memoised."""
    if target == "cpu":
        from numba import njit

        return njit(inline="never")(_rebound(rule, target))
    if target == "cuda":
        from numba import cuda

        return cuda.jit(device=True)(_rebound(rule, target))
    raise ValueError(f"target must be 'cpu' or 'cuda', got {target!r}")


def for_cpu(rule):
    """``rule`` compiled with ``numba.njit``, its callees rebound to their CPU twins."""
    return compile_rule(rule, "cpu")


def for_gpu(rule):
    """``rule`` compiled as a ``numba.cuda`` device function, its callees rebound to their GPU twins."""
    return compile_rule(rule, "cuda")
