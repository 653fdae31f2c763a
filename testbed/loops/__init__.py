"""Loop bodies: plain Python functions that run the scalar rules over arrays, compiled for both targets.

A loop body sits between a rule and a kernel. A rule (:mod:`testbed.rules`) is one formula of scalars; a kernel
(:mod:`testbed.kernels`) is the compiled parallel loop, a ``prange`` on the CPU, a grid-stride loop on the GPU,
with the launcher that prepares its arrays. A loop body is what one iteration of that parallel loop does when it
is more than a call of one rule: the whole life of a queue of Monte Carlo trials on a few lanes
(:func:`testbed.loops.montecarlo.run_trials`), with its own scratch, its state kept between launches, and the
passes over lanes that the CPU turns into SIMD code. Written once, it runs the same arithmetic on both targets.

Like the rules, nothing here imports numba or NumPy (only ``math``, ``collections`` and the rules), and called
directly a loop body runs as Python: that is how the CUDA simulator runs it. :mod:`testbed.kernels.targets`
compiles a loop body like a rule (its callees rebound to their compiled twins), and how each one is compiled on
the CPU (inlined, kept a call, without reference counting) is one table, :mod:`testbed.kernels.policy`.

The arguments of a loop body travel as a few named tuples (:mod:`testbed.loops.montecarlo`: the landscape, the
optimizer and its schedule, the noise, the stopping rule, the per-trial buffers, the lanes' scratch), which Numba
passes as structs on both targets.
"""
