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
large rule such as Philox's ten rounds, and a loop that calls a function is not vectorised.

The loop bodies of :mod:`testbed.loops` are compiled the same way as the rules. Which rules and loop bodies are
inlined into their callers, which stay calls and which compile without reference counting on the CPU is one
table, :data:`testbed.kernels.policy.CPU_POLICY` (with the measured reason for each row). The rules a row inlines
are compiled once each and inlined by LLVM (Numba's ``forceinline``, :data:`CPU_TARGETS`); Numba's IR inliner
types, lowers and optimises a callee again at every call site, which made the Monte Carlo kernels' first compile
slower. Inlined either way, the arithmetic is the same, and so are the bits.
"""

import functools
import types

from .policy import cpu_policy

#: The packages whose functions are compiled for a target (and rebound in their callers): rules and loop bodies.
COMPILED_PACKAGES = ("testbed.rules", "testbed.loops")


def _is_rule(obj):
    return isinstance(obj, types.FunctionType) and (obj.__module__ or "").startswith(COMPILED_PACKAGES)


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
    """The target a callee is compiled for: the caller's, or the one its row of the policy table or its caller's
    row asks for (:mod:`testbed.kernels.policy`).

    A callee that LLVM inlines is compiled without reference counting when the function it ends up in runs
    without (``-norc``): inlined, it is part of that function, as it was when Numba's IR inliner made it so."""
    if cpu_policy(callee).call and target.startswith("cpu-numpy-errors"):
        return "cpu-numpy-errors"
    if target == "cpu-numpy-errors" and cpu_policy(caller).inline_callees:
        target = "cpu-numpy-errors-llvm-inline" + ("-norc" if cpu_policy(caller).no_refcount else "")
    elif target.startswith("cpu-numpy-errors-ir-inline"):  # a row inlined in the IR: its callees as its caller's
        target = target.replace("-ir-inline", "-llvm-inline")
    if target.startswith("cpu-numpy-errors-llvm-inline") and cpu_policy(callee).ir_inline:
        return target.replace("-llvm-inline", "-ir-inline")
    return target


#: CPU targets of :func:`compile_rule` -> Numba's error model, how the twin is inlined into its callers and
#: whether it counts references. Inlining: "never" (a call, which LLVM may still inline), "ir" (Numba's IR
#: inliner, ``inline="always"``: the callee is typed and lowered again at every call site), "llvm" (compiled once,
#: marked for LLVM to inline at every call site: ``forceinline``). ``for_cpu(..., inline=True)`` gives
#: "cpu-numpy-errors-inline", whose callees are inlined in the IR too (the optimizer kernels' generic loop over a
#: flat array ran 5 times as slow with LLVM inlining its rule); the policy table's ``inline_callees`` gives
#: the "llvm-inline" targets, whose callees LLVM inlines too, except those with an ``ir_inline`` row (whose own
#: callees LLVM inlines again).
CPU_TARGETS = {
    "cpu": ("python", "never", True),
    "cpu-numpy-errors": ("numpy", "never", True),
    "cpu-numpy-errors-inline": ("numpy", "ir", True),
    "cpu-numpy-errors-llvm-inline": ("numpy", "llvm", True),
    "cpu-numpy-errors-llvm-inline-norc": ("numpy", "llvm", False),
    "cpu-numpy-errors-ir-inline": ("numpy", "ir", True),
    "cpu-numpy-errors-ir-inline-norc": ("numpy", "ir", False),
}


@functools.lru_cache(maxsize=None)
def compile_rule(rule, target):
    """The compiled twin of ``rule`` for ``target`` (a key of :data:`CPU_TARGETS` or "cuda"), memoised."""
    if target in CPU_TARGETS:
        from numba import njit

        error_model, inline, refcount = CPU_TARGETS[target]
        # forceinline set either way: Numba passes it on to callees compiled inside a caller that does not set it
        options = dict(
            error_model=error_model, forceinline=inline == "llvm", inline="always" if inline == "ir" else "never"
        )
        if cpu_policy(rule).no_refcount or not refcount:
            options["_nrt"] = False
        return njit(**options)(_rebound(rule, target))
    if target == "cuda":
        from numba import cuda

        return cuda.jit(device=True)(_rebound(rule, target))
    raise ValueError(f"target must be one of {', '.join(CPU_TARGETS)} or 'cuda', got {target!r}")


def for_cpu(rule, error_model="python", inline=False):
    """``rule`` compiled with ``numba.njit``, its callees rebound to their CPU twins.

    ``error_model="numpy"``: division by zero gives inf/NaN instead of raising, so loops over the rule vectorise;
    ``inline=True`` (with ``error_model="numpy"``): the rule and its callees are inlined into the caller in Numba's
    IR; ``inline="llvm"``: compiled once each and inlined by LLVM (:data:`CPU_TARGETS`).
    """
    if error_model not in ("python", "numpy"):
        raise ValueError(f"error_model must be 'python' or 'numpy', got {error_model!r}")
    if inline not in (False, True, "llvm"):
        raise ValueError(f"inline must be False, True or 'llvm', got {inline!r}")
    if inline and error_model != "numpy":
        raise ValueError("inline is offered with error_model='numpy' only")
    if error_model == "python":
        return compile_rule(rule, "cpu")
    if inline == "llvm":
        return compile_rule(rule, "cpu-numpy-errors-llvm-inline")
    return compile_rule(rule, "cpu-numpy-errors-inline" if inline else "cpu-numpy-errors")


def for_gpu(rule):
    """``rule`` compiled as a ``numba.cuda`` device function, its callees rebound to their GPU twins."""
    return compile_rule(rule, "cuda")
