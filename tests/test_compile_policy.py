"""The layers below the kernels and the CPU compile policy table (testbed.kernels.policy) that targets reads."""

import ast
import pathlib

import pytest

from testbed.kernels import policy, targets
from testbed.loops import montecarlo as loops
from testbed.rules import landscapes as landscape_rules
from testbed.rules import montecarlo as montecarlo_rules
from testbed.rules import optimizers as optimizer_rules
from testbed.rules import rng as rng_rules

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "testbed"

#: What a module of each layer may import (besides its own layer and the layers below it, imported relatively).
ALLOWED_IMPORTS = {"rules": {"math", "dataclasses", "types", "numpy"}, "loops": {"math", "collections"}}


@pytest.mark.parametrize("layer", list(ALLOWED_IMPORTS))
def test_rules_and_loops_import_no_compiler_and_no_layer_above_them(layer):
    """rules and loops run as plain Python (the CUDA simulator, the tests): no numba, no kernels, no API."""
    below = {"rules": {"rules"}, "loops": {"rules", "loops"}}[layer]
    for path in sorted((PACKAGE / layer).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
                assert names <= ALLOWED_IMPORTS[layer], f"{path.name} imports {names}"
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    assert node.module.split(".")[0] in ALLOWED_IMPORTS[layer], f"{path.name}: from {node.module}"
                else:  # relative: its own package (level 1), or a sibling package of testbed (level 2)
                    package = layer if node.level == 1 else (node.module or "").split(".")[0]
                    assert node.level <= 2 and package in below, f"{path.name}: from {'.' * node.level}{node.module}"


def test_the_policy_table_names_functions_of_the_compiled_layers_only():
    for function in policy.CPU_POLICY:
        assert targets._is_rule(function), f"{function.__qualname__} is not a rule or loop body"


def test_the_trial_loop_inlines_its_rules_but_keeps_the_marked_ones_calls():
    """What the table says reaches the compiler's targets: the hot rules inlined into the trial loop, the noise
    pass, a trial's start and the rarer rules kept as calls; a caller without a row changes nothing."""
    caller, cpu = loops.run_trials, "cpu-numpy-errors"
    # inlined by LLVM, without reference counting as the loop they are inlined into
    assert targets._callee_target(caller, loops.stop_status, cpu) == "cpu-numpy-errors-llvm-inline-norc"
    # the optimizer's pass over lanes is inlined in Numba's IR (its row), the update rule inside it by LLVM again
    assert targets._callee_target(loops.step_updates, loops.update_lanes, cpu) == "cpu-numpy-errors-ir-inline-norc"
    inside = targets._callee_target(loops.update_lanes, optimizer_rules.update, "cpu-numpy-errors-ir-inline-norc")
    assert inside == "cpu-numpy-errors-llvm-inline-norc"
    kept = (loops.fill_noise, loops.step_gradients, loops.take_next_trial, montecarlo_rules.escaped)
    for callee in kept:
        assert targets._callee_target(caller, callee, cpu) == cpu
    # inside the kept noise pass, Philox and Box-Muller are inlined again (its own row); minibatch draws stay calls
    inlined = "cpu-numpy-errors-llvm-inline"
    assert targets._callee_target(loops.fill_noise, rng_rules.uniform4, cpu) == inlined
    assert targets._callee_target(rng_rules.uniform4, rng_rules.philox4x32, inlined) == inlined
    # for_cpu(..., inline=True), the other kernels' inlining: in Numba's IR, all the way down
    ir = "cpu-numpy-errors-inline"
    assert targets._callee_target(rng_rules.uniform4, rng_rules.philox4x32, ir) == ir
    assert targets._callee_target(loops.step_gradients, montecarlo_rules.minibatch_noise, cpu) == cpu
    # a caller without a row: its callees compile as it does
    assert targets._callee_target(loops.start_trial, landscape_rules.value, "cpu") == "cpu"
    assert policy.cpu_policy(loops.start_trial) == policy.CpuPolicy()
