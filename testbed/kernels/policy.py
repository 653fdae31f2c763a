"""How each rule and loop body is compiled on the CPU: which are inlined, which stay calls, which run without
reference counting. One table, :data:`CPU_POLICY`, read by :mod:`testbed.kernels.targets`.

Every rule and loop body not in the table is compiled as its caller is: a plain Numba function that LLVM may
inline, or, called from a row with ``inline_callees`` (or from a rule inlined through one), a function with the
NumPy error model that LLVM always inlines (Numba's ``forceinline``). The rows are the exceptions, each with its
measured reason:

- ``inline_callees``: every rule the function calls (and every rule those call, unless a row says ``call``) is
  inlined into it. LLVM does not inline a large rule such as Philox's ten rounds, and a loop that calls a function
  is not vectorised; a call per coordinate and step also costs more than the arithmetic. Each callee is compiled
  once per signature and inlined by LLVM; until the tenth session Numba's IR inliner did it, which types, lowers
  and optimises the callee again at every call site. Measured, CPU seconds of the cold compile on the shared
  2-core Xeon: see benchmarks/RESULTS.md, "Tenth session: compile time".
- ``ir_inline``: the function is inlined in Numba's IR instead, where an inlining caller calls it. For the
  optimizer's pass over the lanes (:func:`testbed.loops.montecarlo.update_lanes`): inlined by LLVM, its vectorised
  loop over lanes came out in several unswitched copies per rule, each checking at every coordinate that the
  lanes' rows do not overlap (50 runtime alias checks in the update pass), and Adam and RMSProp ran 1.25-1.3 times
  as slow; inlined in the IR, LLVM hoists those checks out of the loop over coordinates (none left in the pass),
  as before. The update rule inside it is inlined by LLVM again.
- ``call``: the function stays a call even from an inlining caller. For a hot loop that LLVM vectorises well on
  its own (the Monte Carlo noise: 2.9 instead of 5.2 ns per normal draw when kept out of the large trial loop,
  where the vectoriser and the register allocator do worse), and for rules that run at a trial's start and end or
  on paths that are slow anyway: inlined, each would be lowered and optimised again at every call site, which
  costs compile time and crowds the hot loop.
- ``no_refcount``: compiled without Numba's reference counting (``_nrt=False``, a private option listed in
  :mod:`testbed.kernels.numba_private`): the function allocates nothing, and with rules inlined into a loop the
  count updates on every array argument (atomic operations on one shared counter) cost more than the arithmetic
  and serialise the threads.

On the GPU every rule and loop body is a device function (``cuda.jit(device=True)``) and NVVM decides what to
inline: this table does not apply there.
"""

import dataclasses

from ..loops import montecarlo as montecarlo_loops
from ..rules import montecarlo as montecarlo_rules


@dataclasses.dataclass(frozen=True)
class CpuPolicy:
    """One row of :data:`CPU_POLICY` (see the module docstring for what each flag does and why)."""

    inline_callees: bool = False
    call: bool = False
    no_refcount: bool = False
    ir_inline: bool = False


#: function (a rule or loop body, the plain Python function) -> how the CPU target compiles it.
CPU_POLICY = {
    # the Monte Carlo trial loop: its landscape, optimizer and noise rules inlined, no reference counting
    montecarlo_loops.run_trials: CpuPolicy(inline_callees=True, no_refcount=True),
    # the passes of a step over the lanes (noise, gradients, updates): each a function of its own with its rules
    # inlined, whose loops LLVM vectorises on their own. Inlined into the trial loop, the noise pass draws half as
    # fast, and the gradient and update passes would cost Numba's IR inliner twice the time (it inlines them with
    # the rules they inline). Measured, CPU time of the cold compile of the saddle kernel on the shared Xeon:
    # 27 s with them kept calls, 36 s with them inlined (29 s when the loop was one function).
    montecarlo_loops.fill_noise: CpuPolicy(call=True, inline_callees=True),
    montecarlo_loops.step_gradients: CpuPolicy(call=True, inline_callees=True, no_refcount=True),
    montecarlo_loops.step_updates: CpuPolicy(call=True, inline_callees=True, no_refcount=True),
    # the optimizer's loop over lanes: inlined in the IR of the update pass, so that LLVM sees the loop nest whole
    montecarlo_loops.update_lanes: CpuPolicy(ir_inline=True),
    # a trial's start (once per trial), its escape test for the criteria other than the radius, minibatch draws
    montecarlo_loops.take_next_trial: CpuPolicy(call=True),
    montecarlo_rules.escaped: CpuPolicy(call=True),
    montecarlo_rules.minibatch_noise: CpuPolicy(call=True),
}

DEFAULT = CpuPolicy()


def cpu_policy(function):
    """The :class:`CpuPolicy` row of ``function`` (the default, all flags off, when it has none)."""
    return CPU_POLICY.get(function, DEFAULT)
