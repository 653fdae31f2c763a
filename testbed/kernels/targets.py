"""Compile one scalar rule for both targets.

A rule in :mod:`testbed.rules` is a plain Python function of scalars that uses only ``math`` and allocates
nothing. It may call other rules by their module-level names. :func:`for_cpu` and :func:`for_gpu` compile a rule
for one target, after rebinding every rule it calls to that rule's compiled twin for the same target, so a rule
is written once and the CPU and GPU kernels run the same arithmetic::

    from testbed.rules import activations
    tanh_cpu = for_cpu(activations.tanh)   # numba.njit dispatcher, callable from @njit code
    tanh_gpu = for_gpu(activations.tanh)   # numba.cuda device function

The same rule as plain Python (uncompiled) is what the CUDA simulator runs and what the tests call.

``for_cpu(rule, error_model="numpy")`` compiles the rule (and every rule it calls) with Numba's NumPy error model:
a float division by zero gives inf or NaN, as on the GPU, instead of raising ZeroDivisionError. Without the
exception branch LLVM can vectorise a loop over the rule (SIMD lanes), which the Monte Carlo kernels rely on.
``inline=True`` also inlines the rule and its callees in Numba's IR (``inline="always"``): LLVM does not inline a
large rule such as Philox's ten rounds, and a loop that calls a function is not vectorised. A rule that sets the
attribute ``inline_on_cpu = True`` is inlined that way wherever a rule compiled with ``error_model="numpy"`` calls
it (Numba's IR inliner cannot inline a rule of very many arguments, so the marker goes on the small hot callee);
a rule that sets ``inline_callees_on_cpu = True`` has every rule it calls inlined that way. A rule that sets
``call_on_cpu = True`` stays a function call even from such a caller (with the NumPy error model): a hot loop
that LLVM vectorises well on its own, such as the Monte Carlo noise loop, is kept out of a large caller where
the vectoriser and the register allocator do worse (measured: 2.9 instead of 5.2 ns per normal draw).
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
            namespace[name] = compile_rule(callee, _callee_target(rule, callee, target))
    copy = types.FunctionType(rule.__code__, namespace, rule.__name__, rule.__defaults__, rule.__closure__)
    copy.__qualname__ = rule.__qualname__
    copy.__doc__ = rule.__doc__
    copy.__module__ = rule.__module__
    return copy


def _callee_target(caller, callee, target):
    """The target a callee is compiled for: the caller's, or the inlining one for a marked rule or caller."""
    if getattr(callee, "call_on_cpu", False) and target.startswith("cpu-numpy-errors"):
        return "cpu-numpy-errors"
    marked = getattr(callee, "inline_on_cpu", False) or getattr(caller, "inline_callees_on_cpu", False)
    if target == "cpu-numpy-errors" and marked:
        return "cpu-numpy-errors-inline"
    return target


#: CPU targets of :func:`compile_rule` -> Numba's (error model, inline option) for them.
CPU_TARGETS = {
    "cpu": ("python", "never"),
    "cpu-numpy-errors": ("numpy", "never"),
    "cpu-numpy-errors-inline": ("numpy", "always"),
}

#: Rules marked ``no_refcount_on_cpu = True`` are compiled without Numba's reference counting (``_nrt=False``):
#: they allocate nothing, and with rules inlined into a loop the count updates on every array argument (atomic
#: operations on one shared counter) cost more than the arithmetic and serialise the threads.
NO_REFCOUNT_ATTRIBUTE = "no_refcount_on_cpu"


@functools.lru_cache(maxsize=None)
def compile_rule(rule, target):
    """The compiled twin of ``rule`` for ``target`` ("cpu", "cpu-numpy-errors" or "cuda"), memoised."""
    if target in CPU_TARGETS:
        from numba import njit

        error_model, inline = CPU_TARGETS[target]
        options = dict(inline=inline, error_model=error_model)
        if getattr(rule, NO_REFCOUNT_ATTRIBUTE, False):
            options["_nrt"] = False
        return njit(**options)(_rebound(rule, target))
    if target == "cuda":
        from numba import cuda

        return cuda.jit(device=True)(_rebound(rule, target))
    raise ValueError(f"target must be one of {', '.join(CPU_TARGETS)} or 'cuda', got {target!r}")


def for_cpu(rule, error_model="python", inline=False):
    """``rule`` compiled with ``numba.njit``, its callees rebound to their CPU twins.

    ``error_model="numpy"``: division by zero gives inf/NaN instead of raising, so loops over the rule vectorise;
    ``inline=True`` (with ``error_model="numpy"``): the rule and its callees are inlined into the caller.
    """
    if error_model not in ("python", "numpy"):
        raise ValueError(f"error_model must be 'python' or 'numpy', got {error_model!r}")
    if inline and error_model != "numpy":
        raise ValueError("inline=True is offered with error_model='numpy' only")
    if error_model == "python":
        return compile_rule(rule, "cpu")
    return compile_rule(rule, "cpu-numpy-errors-inline" if inline else "cpu-numpy-errors")


def for_gpu(rule):
    """``rule`` compiled as a ``numba.cuda`` device function, its callees rebound to their GPU twins."""
    return compile_rule(rule, "cuda")
