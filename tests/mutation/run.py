"""The mutation check: does the test suite catch single-line bugs of the kind a developer makes?

Each entry of :data:`MUTATIONS` names a file of ``testbed/``, the exact text of one of its lines (compared without
the indentation, which is kept), the replacement, and the test files (pytest node ids) that should catch it. For
each mutation the script copies the tree once into a temporary directory, writes the mutated file there, runs the
named tests (``pytest -x``, with a per-mutation timeout) and records the mutant as killed (a test failed, the
package failed to import, or the timeout was hit) or survived (every test passed). The worktree itself is never
written; the temporary copy is removed at the end, on Ctrl-C and on SIGTERM too.

Not part of the default test run (pytest collects ``test_*.py`` only, and tests/conftest.py ignores this
folder): it takes a while. From the repository root::

    python tests/mutation/run.py                 # every mutation, then the kill rate and the survivors
    python tests/mutation/run.py --list          # the mutations, with their ids
    python tests/mutation/run.py --only act-sigmoid-dgv,rng-step-stream

Numba's cache: the named tests are first run once on the unmutated copy (a baseline that must pass, or the
check stops), which fills a cache; each mutant starts from a hard-linked copy of that cache (Numba replaces
files, never edits them in place), so only the kernels that a mutation touches recompile
(``testbed/kernels/cache.py`` stamps every kernel with the content of ``rules/`` and ``kernels/``, so a mutated
rule does recompile them).

An entry with ``equivalent="reason"`` is a mutant that gives the same results by construction; it is listed but
not run, and left out of the kill rate.
"""

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Seconds a mutant's tests may run before it counts as killed by a timeout (the baseline gets 4x).
DEFAULT_TIMEOUT = 600
#: What the temporary copy leaves out.
IGNORED = shutil.ignore_patterns(
    ".git", "__pycache__", "*.pyc", ".venv", "results", ".pytest_cache", "*.egg-info", "figures", "benchmarks"
)


@dataclasses.dataclass(frozen=True)
class Mutation:
    id: str
    file: str
    original: str
    replacement: str
    tests: tuple
    equivalent: str = ""


M = Mutation
ACT = ("tests/test_activation_paths.py", "tests/test_activations.py")
RNG = ("tests/test_golden.py", "tests/test_rng.py")
MC = ("tests/test_montecarlo.py",)
OPT = ("tests/test_optim.py",)
LAND = ("tests/test_landscapes.py",)
NN = ("tests/test_nn.py", "tests/test_activation_paths.py")
TRAIN = ("tests/test_train.py",)
INIT = ("tests/test_golden.py", "tests/test_init.py")
SIG = ("tests/test_theory_references.py", "tests/test_theory_signal.py")
ESC = ("tests/test_theory_references.py", "tests/test_theory_escape.py")

MUTATIONS = [
    # ---------------------------------------------------------------- rules/activations.py
    M("act-sigmoid-dgv", "testbed/rules/activations.py", "return y * (1.0 - y)", "return 1.0 - y * y", ACT),
    M("act-tanh-dgv", "testbed/rules/activations.py", "return 1.0 - y * y", "return 1.0 - y", ACT),
    M(
        "act-gelu-drop-term",
        "testbed/rules/activations.py",
        "return 0.5 * math.erfc(-x * INV_SQRT2) + x * INV_SQRT_2PI * math.exp(-0.5 * x * x)",
        "return 0.5 * math.erfc(-x * INV_SQRT2)",
        ACT,
    ),
    M(
        "act-elu-derivative",
        "testbed/rules/activations.py",
        "return 1.0 if x > 0.0 else param * math.exp(x)",
        "return 1.0 if x > 0.0 else param * math.expm1(x)",
        ACT,
    ),
    M(
        "act-erf-derivative",
        "testbed/rules/activations.py",
        "return TWO_OVER_SQRT_PI * math.exp(-x * x)",
        "return TWO_OVER_SQRT_PI * math.exp(-0.5 * x * x)",
        ACT,
    ),
    M(
        "act-selu-lambda",
        "testbed/rules/activations.py",
        "return SELU_LAMBDA * (x if x > 0.0 else SELU_ALPHA * math.expm1(x))",
        "return (x if x > 0.0 else SELU_ALPHA * math.expm1(x))",
        ACT,
    ),
    M("act-sigmoid-negative", "testbed/rules/activations.py", "return e / (1.0 + e)", "return 1.0 / (1.0 + e)", ACT),
    M(
        "act-softplus",
        "testbed/rules/activations.py",
        "return max(x, 0.0) + math.log1p(math.exp(-abs(x)))",
        "return max(x, 0.0) + math.log1p(math.exp(-x))",
        ACT,
    ),
    # ---------------------------------------------------------------- rules/rng.py
    M(
        "rng-step-stream",
        "testbed/rules/rng.py",
        "block & MASK32, block >> SHIFT32, np.uint64(step) & MASK32, np.uint64(stream) & MASK32,",
        "block & MASK32, block >> SHIFT32, np.uint64(stream) & MASK32, np.uint64(step) & MASK32,",
        RNG,
    ),
    M(
        "rng-uniform-offset",
        "testbed/rules/rng.py",
        "return (float(centred) + (HALF_WORD + 1.0)) * TWO_POW_MINUS_32",
        "return (float(centred) + HALF_WORD) * TWO_POW_MINUS_32",
        RNG,
    ),
    M(
        "rng-box-muller-swap",
        "testbed/rules/rng.py",
        "return radius * cosine, radius * sine",
        "return radius * sine, radius * cosine",
        RNG,
    ),
    M(
        "rng-box-muller-radius",
        "testbed/rules/rng.py",
        "radius = math.sqrt(-2.0 * log_unit(u0))",
        "radius = math.sqrt(-log_unit(u0))",
        RNG,
    ),
    M(
        "rng-round-key",
        "testbed/rules/rng.py",
        "(product0 >> SHIFT32) ^ c3 ^ k1,",
        "(product0 >> SHIFT32) ^ c3 ^ k0,",
        RNG,
    ),
    M(
        "rng-key-seed-hi",
        "testbed/rules/rng.py",
        "seed & MASK32, seed >> SHIFT32,",
        "seed & MASK32, seed & MASK32,",
        RNG,
    ),
    # ---------------------------------------------------------------- rules/montecarlo.py
    M(
        "mc-escape-radius",
        "testbed/rules/montecarlo.py",
        "return distance2 > radius * radius",
        "return distance2 > radius",
        MC,
    ),
    M(
        "mc-lane-escape-radius",
        "testbed/loops/montecarlo.py",
        "escaped_now = distance2[lane] > stop.radius * stop.radius",
        "escaped_now = distance2[lane] > stop.radius",
        MC,
    ),
    M(
        "mc-converge-radius",
        "testbed/rules/montecarlo.py",
        "return distance2 < radius * radius",
        "return distance2 < radius",
        MC,
    ),
    M(
        "mc-loss-threshold",
        "testbed/loops/montecarlo.py",
        "threshold = landscape_value(landscape.code, w, trial, landscape.dim, landscape.params, 0) - stop.delta",
        "threshold = landscape_value(landscape.code, w, trial, landscape.dim, landscape.params, 0) + stop.delta",
        MC,
    ),
    M("mc-minibatch-mean", "testbed/rules/montecarlo.py", "return total / batch", "return total / n_samples", MC),
    # ---------------------------------------------------------------- rules/optimizers.py
    M(
        "opt-adam-bias-correction",
        "testbed/rules/optimizers.py",
        "w = w - lr * (m * c1) / (math.sqrt(vh + hyper[H_EPS_IN]) + c3)",
        "w = w - lr * m / (math.sqrt(vh + hyper[H_EPS_IN]) + c3)",
        OPT,
    ),
    M(
        "opt-dampening",
        "testbed/rules/optimizers.py",
        "v = mu * s0 + (one - hyper[H_SGD_DAMPENING]) * g",
        "v = mu * s0 + g",
        OPT,
    ),
    M(
        "opt-nesterov",
        "testbed/rules/optimizers.py",
        "return w - lr * (g + mu * v), v, s1, s2",
        "return w - lr * (g + v), v, s1, s2",
        OPT,
    ),
    M(
        "opt-rmsprop-square",
        "testbed/rules/optimizers.py",
        "u = a * s0 + hyper[H_RMSPROP_ONE_MINUS_ALPHA] * (g * g)",
        "u = a * s0 + hyper[H_RMSPROP_ONE_MINUS_ALPHA] * g",
        OPT,
    ),
    M(
        "opt-nadam-exponent",
        "testbed/rules/optimizers.py",
        "c3 = 1.0 / (1.0 - math.pow(hyper[H_NADAM_BETA2], tf)) if correct else 1.0",
        "c3 = 1.0 / (1.0 - math.pow(hyper[H_NADAM_BETA2], tf - 1.0)) if correct else 1.0",
        OPT,
    ),
    M(
        "opt-adamax-abs",
        "testbed/rules/optimizers.py",
        "u = max(hyper[H_ADAMAX_BETA2] * s1, abs(g) + hyper[H_EPS_IN])",
        "u = max(hyper[H_ADAMAX_BETA2] * s1, g + hyper[H_EPS_IN])",
        OPT,
    ),
    M(
        "opt-adagrad-lr-decay",
        "testbed/rules/optimizers.py",
        "return lr / (1.0 + (tf - 1.0) * hyper[H_ADAGRAD_LR_DECAY]), 0.0, 0.0, 0.0",
        "return lr / (1.0 + tf * hyper[H_ADAGRAD_LR_DECAY]), 0.0, 0.0, 0.0",
        OPT,
    ),
    M("opt-decoupled-decay", "testbed/rules/optimizers.py", "w = w * (one - lr * wd)", "w = w * (one - wd)", OPT),
    M(
        "opt-schedule-exponential",
        "testbed/rules/schedules.py",
        "rate = lr * math.pow(params[P_GAMMA], tf - 1.0)",
        "rate = lr * math.pow(params[P_GAMMA], tf)",
        OPT,
    ),
    M(
        "opt-schedule-warmup",
        "testbed/rules/schedules.py",
        "rate = rate * tf / warmup",
        "rate = rate * (tf - 1.0) / warmup",
        OPT,
    ),
    # ---------------------------------------------------------------- rules/landscapes.py
    M(
        "land-monkey-sign",
        "testbed/rules/landscapes.py",
        "return 3.0 * w[row, 0] * w[row, 0] - 3.0 * w[row, 1] * w[row, 1]",
        "return 3.0 * w[row, 0] * w[row, 0] + 3.0 * w[row, 1] * w[row, 1]",
        LAND,
    ),
    M(
        "land-tanh-chain",
        "testbed/rules/landscapes.py",
        "return (activation - params[1]) * (1.0 - activation * activation) * params[0]",
        "return (activation - params[1]) * (1.0 - activation * activation)",
        LAND,
    ),
    M(
        "land-double-well-tilt",
        "testbed/rules/landscapes.py",
        "return 4.0 * params[0] * w[row, i] * (w[row, i] * w[row, i] - 1.0) + params[1]",
        "return 4.0 * params[0] * w[row, i] * (w[row, i] * w[row, i] - 1.0) - params[1]",
        LAND,
    ),
    M(
        "land-rastrigin-factor",
        "testbed/rules/landscapes.py",
        "return 2.0 * w[row, i] + TWO_PI * params[0] * math.sin(TWO_PI * w[row, i])",
        "return 2.0 * w[row, i] + params[0] * math.sin(TWO_PI * w[row, i])",
        LAND,
    ),
    # ---------------------------------------------------------------- kernels/
    M(
        "knn-cuda-saturation",
        "testbed/kernels/nn.py",
        "if x <= saturated_low or x >= saturated_high:",
        "if abs(x) >= saturated_high:",
        NN,
    ),
    M(
        "knn-cpu-saturation",
        "testbed/kernels/nn.py",
        "saturated += 1.0 if (x64 <= saturated_low or x64 >= saturated_high) else 0.0",
        "saturated += 1.0 if x64 >= saturated_high else 0.0",
        NN,
    ),
    M(
        "knn-cuda-derivative-args",
        "testbed/kernels/nn.py",
        "out[row, col] = acc * derivative(code, aux[row, col], post[row, col], param)",
        "out[row, col] = acc * derivative(code, post[row, col], aux[row, col], param)",
        NN,
    ),
    M("knn-cpu-sum-x", "testbed/kernels/nn.py", "sum_x += dx", "sum_x += ds", NN),
    M(
        "krandom-lane",
        "testbed/kernels/random.py",
        "out[j + np.uint64(2)] = loc + scale * z2",
        "out[j + np.uint64(2)] = loc + scale * z3",
        INIT,
    ),
    M(
        "krandom-inner-end",
        "testbed/kernels/random.py",
        "inner_end = (offset + n) // 4",
        "inner_end = (offset + n + 3) // 4",
        INIT,
    ),
    M(
        "koptim-nonfinite",
        "testbed/kernels/optim.py",
        "count += np.int64((g[i] - g[i]) != 0.0)",
        "count += np.int64((g[i] - g[i]) == 0.0)",
        OPT,
    ),
    M(
        "koptim-output-count",
        "testbed/kernels/optim.py",
        "if any_bad:",
        "if not any_bad:",
        OPT,
    ),
    M("kmc-newton-noise-lane", "testbed/kernels/montecarlo.py", "gi += noise.sigma * z2", "gi += noise.sigma * z1", MC),
    M(
        "kmc-newton-damping",
        "testbed/kernels/montecarlo.py",
        "projected[k] /= lam + damping",
        "projected[k] /= lam - damping",
        MC,
    ),
    M(
        "kmc-chunk-end",
        "testbed/kernels/montecarlo.py",
        "last = (chunk + 1) * n_trials // chunks",
        "last = (chunk + 1) * n_trials // chunks - 1",
        MC,
    ),
    # ---------------------------------------------------------------- theory/signal.py
    M(
        "sig-expected-q-bias",
        "testbed/theory/signal.py",
        "q = gain[l - 1] * _second_moment(phi, q_prev) + sb2 if math.isfinite(q_prev) else math.inf",
        "q = gain[l - 1] * _second_moment(phi, q_prev) if math.isfinite(q_prev) else math.inf",
        SIG,
    ),
    M(
        "sig-expected-c-bias",
        "testbed/theory/signal.py",
        "c = (gain[l - 1] * _pair_moments(phi, q_prev, c_prev)[0] + sb2) / q",
        "c = (gain[l - 1] * _pair_moments(phi, q_prev, c_prev)[0]) / q",
        SIG,
    ),
    M(
        "sig-expected-q1-bias",
        "testbed/theory/signal.py",
        "q = gain[0] * input_var + sb2",
        "q = gain[0] * input_var",
        SIG,
    ),
    M(
        "sig-expected-grad-fan",
        "testbed/theory/signal.py",
        "grad[l - 2] = widths[l] * v[l - 1] * factor * grad[l - 1]",
        "grad[l - 2] = widths[l - 1] * v[l - 1] * factor * grad[l - 1]",
        SIG,
    ),
    M(
        "sig-length-map-bias",
        "testbed/theory/signal.py",
        "return sigma_w2 * _second_moment(phi, _check_q(q)) + sigma_b2",
        "return sigma_w2 * _second_moment(phi, _check_q(q))",
        SIG,
    ),
    M(
        "sig-correlation-step-bias",
        "testbed/theory/signal.py",
        "return (sw2 * _pair_moments(phi, q, c)[0] + sb2) / q_next",
        "return (sw2 * _pair_moments(phi, q, c)[0]) / q_next",
        SIG,
    ),
    M(
        "sig-qstar-closed-form",
        "testbed/theory/signal.py",
        "return sb2 / (1.0 - slope)",
        "return sb2 / (1.0 + slope)",
        SIG,
    ),
    M(
        "sig-qstar-gap-bias",
        "testbed/theory/signal.py",
        "return sw2 * _second_moment(phi, q) + sb2 - q",
        "return sw2 * _second_moment(phi, q) - q",
        SIG,
    ),
    M(
        "sig-post-var",
        "testbed/theory/signal.py",
        'fields["post_var"][l - 1] = max(0.0, meansq - mean * mean) if finite else math.inf',
        'fields["post_var"][l - 1] = max(0.0, meansq) if finite else math.inf',
        SIG,
    ),
    M(
        "sig-hanin-rolnick",
        "testbed/theory/signal.py",
        "return float(np.prod([1.0 + HANIN_ROLNICK_CONSTANT / n for n in widths[1:]]))",
        "return float(np.prod([1.0 + HANIN_ROLNICK_CONSTANT / n for n in widths[:-1]]))",
        SIG,
    ),
    # ---------------------------------------------------------------- theory/escape.py
    M(
        "esc-limit-std",
        "testbed/theory/escape.py",
        'return math.sqrt(lr * check_non_negative(sigma, "sigma") ** 2 / (gamma * (2.0 + lr * gamma)))',
        'return math.sqrt(lr * check_non_negative(sigma, "sigma") ** 2 / (2.0 * gamma))',
        ESC,
    ),
    M(
        "esc-saddle-variance",
        "testbed/theory/escape.py",
        "return lr * sigma**2 * (growth2 - 1.0) / (gamma * (2.0 + lr * gamma))",
        "return lr * sigma**2 * (growth2 - 1.0) / (2.0 * gamma)",
        ESC,
    ),
    M(
        "esc-stable-variance",
        "testbed/theory/escape.py",
        "stationary = lr * sigma**2 / (2.0 * curvature - lr * curvature**2)",
        "stationary = lr * sigma**2 / (2.0 * curvature)",
        ESC,
    ),
    M(
        "esc-saxe-factor",
        "testbed/theory/escape.py",
        "return math.log(uf * (s - u0) / (u0 * (s - uf))) / (2.0 * s * lr)",
        "return math.log(uf * (s - u0) / (u0 * (s - uf))) / (s * lr)",
        ESC,
    ),
    M("esc-deep-power", "testbed/theory/escape.py", "power = 1.0 - 2.0 / depth", "power = 1.0 - 1.0 / depth", ESC),
    M("esc-deep-depth", "testbed/theory/escape.py", "return value / (lr * depth)", "return value / lr", ESC),
    M(
        "esc-heavy-ball-root",
        "testbed/theory/escape.py",
        "return (trace + math.sqrt(trace * trace - 4.0 * mu)) / 2.0",
        "return (trace + math.sqrt(trace * trace - 2.0 * mu)) / 2.0",
        ESC,
    ),
    M(
        "esc-growth-exponent",
        "testbed/theory/escape.py",
        "growth2 = (1.0 + lr * gamma) ** (2.0 * t)",
        "growth2 = (1.0 + lr * gamma) ** (2.0 * t + 1.0)",
        ESC,
    ),
    # ---------------------------------------------------------------- init.py
    M(
        "init-leaky-gain",
        "testbed/init.py",
        "return math.sqrt(2.0 / (1.0 + slope * slope))",
        "return math.sqrt(2.0 / (1.0 + slope))",
        INIT,
    ),
    M(
        "init-glorot-bias-input",
        "testbed/init.py",
        'return gain * gain * 2.0 / (fan_in + fan_out + (1 if check_flag(bias_input, "bias_input") else 0))',
        "return gain * gain * 2.0 / (fan_in + fan_out)",
        INIT,
    ),
    M("init-fan-avg", "testbed/init.py", "return 0.5 * (fan_in + fan_out)", "return fan_in + fan_out", INIT),
    M(
        "init-uniform-scale",
        "testbed/init.py",
        "return Plan(kernels.UNIFORM, scale=2.0 * bound, a=0.5, variance=bound * bound / 3.0, lower=-bound, upper=bound)",
        "return Plan(kernels.UNIFORM, scale=bound, a=0.5, variance=bound * bound / 3.0, lower=-bound, upper=bound)",
        INIT,
    ),
    M(
        "init-orthogonal-sign",
        "testbed/init.py",
        "q = q * np.where(np.diag(r) < 0.0, -1.0, 1.0)",
        "q = q * np.where(np.diag(r) < 0.0, 1.0, 1.0)",
        INIT,
    ),
    M(
        "init-variance-scaling-truncation",
        "testbed/init.py",
        "return _truncated(math.sqrt(variance) / TRUNCATED_STD_2, 0.0, -2.0, 2.0, False)",
        "return _truncated(math.sqrt(variance), 0.0, -2.0, 2.0, False)",
        INIT,
    ),
    M(
        "init-truncated-correction",
        "testbed/init.py",
        "scale = std / math.sqrt(unit_variance) if correct_variance else std",
        "scale = std * math.sqrt(unit_variance) if correct_variance else std",
        INIT,
    ),
    # ---------------------------------------------------------------- nn/mlp.py
    M(
        "nn-variance-centring",
        "testbed/nn/mlp.py",
        "variance = max(total_sq / count - centred_mean * centred_mean, 0.0)",
        "variance = max(total_sq / count, 0.0)",
        NN,
    ),
    M("nn-mean-shift", "testbed/nn/mlp.py", "mean = shift + centred_mean", "mean = centred_mean", NN),
    M(
        "nn-variance-shift-removed",
        "testbed/nn/mlp.py",
        "first = float(np.dot(row0.astype(np.float64), w[0].astype(np.float64)))",
        "first = 0.0",
        NN,
    ),
    M(
        "nn-saturation-margin-scale",
        "testbed/nn/mlp.py",
        "margin = SATURATION_TOLERANCE * max(abs(act.lower), abs(act.upper))",
        "margin = SATURATION_TOLERANCE",
        NN,
        equivalent="every bounded activation (tanh, sigmoid, erf, hard_tanh) has max(|lower|, |upper|) = 1",
    ),
    M(
        "nn-saturation-low-bound",
        "testbed/nn/mlp.py",
        "return act.lower + margin, act.upper - margin",
        "return act.lower - margin, act.upper - margin",
        NN,
    ),
    M(
        "nn-dead-frac-width",
        "testbed/nn/mlp.py",
        'fields["dead_frac"][l - 1] = dead / self.widths[l] if act.relu_like else 0.0',
        'fields["dead_frac"][l - 1] = dead / self.widths[l - 1] if act.relu_like else 0.0',
        NN,
    ),
    M(
        "nn-zero-frac-count",
        "testbed/nn/mlp.py",
        'fields["zero_frac"][l - 1] = row[kernels.F_INACTIVE] / n',
        'fields["zero_frac"][l - 1] = row[kernels.F_INACTIVE] / batch',
        NN,
    ),
    # ---------------------------------------------------------------- training (rules/losses.py, kernels/train.py)
    M(
        "loss-xent-onehot-sign",
        "testbed/rules/losses.py",
        "dz[i, k] = (dz[i, k] - (1.0 if k == label else 0.0)) * inv_batch",
        "dz[i, k] = (dz[i, k] + (1.0 if k == label else 0.0)) * inv_batch",
        TRAIN,
    ),
    M(
        "loss-xent-no-max-shift",
        "testbed/rules/losses.py",
        "e = math.exp(z[i, k] - top)",
        "e = math.exp(z[i, k])",
        TRAIN,
    ),
    M(
        "loss-mse-factor-two",
        "testbed/rules/losses.py",
        "dz[i, k] = 2.0 * diff * inv_count",
        "dz[i, k] = diff * inv_count",
        TRAIN,
    ),
    M("loss-argmax-first", "testbed/rules/losses.py", "if z[i, k] > z[i, best]:", "if z[i, k] >= z[i, best]:", TRAIN),
    M(
        "train-bias-grad-not-zeroed",
        "testbed/kernels/train.py",
        "bias_grad[:] = 0.0",
        "bias_grad[:] = bias_grad[:]",
        TRAIN,
    ),
    M(
        "train-output-derivative-skipped",
        "testbed/kernels/train.py",
        "if not net.out_linear:  # dloss/ds^(L) = dloss/dx^(L) * phi'(s^(L))",
        "if False:",
        TRAIN,
    ),
    M(
        "train-eval-mean-over-chunk",
        "testbed/kernels/train.py",
        "inv_rows = 1.0 / n  # the mean is over every row, not over one chunk",
        "inv_rows = 1.0 / chunk",
        TRAIN,
    ),
    M(
        "train-ensemble-skips-update",
        "testbed/kernels/train.py",
        "if math.isfinite(loss):",
        "if not math.isfinite(loss):",
        TRAIN,
    ),
    # ---------------------------------------------------------------- montecarlo.py
    M(
        "mcpy-ball-radius-power",
        "testbed/montecarlo.py",
        "radii = r * rng.uniform(trials, seed=seed, stream=HOST_STREAM, step=_STEP_BALL_RADIUS) ** (1.0 / dim)",
        "radii = r * rng.uniform(trials, seed=seed, stream=HOST_STREAM, step=_STEP_BALL_RADIUS) ** (2.0 / dim)",
        MC,
    ),
    M(
        "mcpy-ball-normalise",
        "testbed/montecarlo.py",
        "return landscape.start + directions / norms * radii[:, None]",
        "return landscape.start + directions * radii[:, None]",
        MC,
    ),
    M(
        "mcpy-record-points",
        "testbed/montecarlo.py",
        "n_points = max_steps // record_every + 1",
        "n_points = max_steps // record_every",
        MC,
    ),
    M(
        "mcpy-trajectory-steps",
        "testbed/montecarlo.py",
        "trajectory_steps=np.arange(n_points, dtype=np.int64) * record_every if record else None,",
        "trajectory_steps=np.arange(n_points, dtype=np.int64) if record else None,",
        MC,
    ),
    M(
        "mcpy-diverged-status",
        "testbed/montecarlo.py",
        "diverged=status == rules.STATUS_DIVERGED,",
        "diverged=status == rules.STATUS_CENSORED,",
        MC,
    ),
]


def _locate(text, mutation):
    """Index of the one line whose stripped text is ``mutation.original``; a ValueError otherwise."""
    lines = text.split("\n")
    hits = [i for i, line in enumerate(lines) if line.strip() == mutation.original]
    if len(hits) != 1:
        raise ValueError(f"{mutation.id}: {mutation.file} has {len(hits)} lines reading {mutation.original!r}")
    return lines, hits[0]


def mutate(text, mutation):
    """``text`` with the mutation applied (the line's indentation kept)."""
    lines, i = _locate(text, mutation)
    line = lines[i]
    lines[i] = line[: len(line) - len(line.lstrip())] + mutation.replacement
    return "\n".join(lines)


def _pytest(copy, cache, targets, timeout, log):
    env = dict(os.environ, PYTHONPATH=copy, NUMBA_CACHE_DIR=cache, PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *targets]
    started = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, cwd=copy, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = None
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    return code, time.monotonic() - started


def _tail(log, lines=3):
    with open(log) as f:
        text = [line.rstrip() for line in f if line.strip()]
    return " | ".join(text[-lines:])


def _select(only):
    if not only:
        return MUTATIONS
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    ids = {m.id for m in MUTATIONS}
    # an exact id selects that mutation alone; anything else selects every id that contains it
    chosen = [m for m in MUTATIONS if any(w == m.id if w in ids else w in m.id for w in wanted)]
    if not chosen:
        raise SystemExit(f"--only matched no mutation id; ids: {', '.join(m.id for m in MUTATIONS)}")
    return chosen


def _existing(copy, tests):
    return [t for t in tests if os.path.exists(os.path.join(copy, t.split("::")[0]))]


def run(mutations, timeout, keep_going_on_baseline_failure, report):
    workdir = tempfile.mkdtemp(prefix="testbed-mutation-")
    copy = os.path.join(workdir, "tree")
    logs = os.path.join(workdir, "logs")
    os.makedirs(logs)
    results = []
    try:
        shutil.copytree(ROOT, copy, ignore=IGNORED)
        active = [m for m in mutations if not m.equivalent]
        texts = {}
        for m in active:  # every original line must be found before anything runs
            path = os.path.join(copy, m.file)
            texts.setdefault(m.file, open(path).read())
            _locate(texts[m.file], m)
        union = []
        for m in active:
            union += [t for t in _existing(copy, m.tests) if t not in union]
        baseline_cache = os.path.join(workdir, "cache-baseline")
        print(f"baseline: {len(union)} test files on the unmutated copy ...", flush=True)
        code, seconds = _pytest(copy, baseline_cache, union, 4 * timeout, os.path.join(logs, "baseline.log"))
        print(f"baseline: exit {code} in {seconds:.0f} s: {_tail(os.path.join(logs, 'baseline.log'), 1)}", flush=True)
        if code != 0 and not keep_going_on_baseline_failure:
            raise SystemExit(f"the unmutated tests fail; see {logs}/baseline.log (kept)")
        for n, m in enumerate(mutations, 1):
            if m.equivalent:
                results.append(dict(id=m.id, file=m.file, outcome="equivalent", reason=m.equivalent))
                print(f"[{n}/{len(mutations)}] {m.id}: equivalent ({m.equivalent})", flush=True)
                continue
            path = os.path.join(copy, m.file)
            stat = os.stat(path)
            original = texts[m.file]
            cache = os.path.join(workdir, "cache-mutant")
            shutil.rmtree(cache, ignore_errors=True)
            if os.path.isdir(baseline_cache):
                shutil.copytree(baseline_cache, cache, copy_function=os.link)
            targets = _existing(copy, m.tests)
            log = os.path.join(logs, f"{m.id}.log")
            try:
                with open(path, "w") as f:
                    f.write(mutate(original, m))
                code, seconds = _pytest(copy, cache, targets, timeout, log)
            finally:
                with open(path, "w") as f:
                    f.write(original)
                os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the baseline cache stays valid
            outcome = "survived" if code == 0 else ("timeout" if code is None else "killed")
            if code == 5:
                outcome = "no-tests"
            detail = _tail(log, 2)
            results.append(
                dict(id=m.id, file=m.file, outcome=outcome, seconds=round(seconds, 1), tests=targets, detail=detail)
            )
            print(
                f"[{n}/{len(mutations)}] {m.id}: {outcome} in {seconds:.0f} s ({', '.join(targets)})"
                + (f"\n    {detail}" if outcome == "killed" else ""),
                flush=True,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    summarise(results)
    if report:
        with open(report, "w") as f:
            json.dump(results, f, indent=1)
    return results


def summarise(results):
    counted = [r for r in results if r["outcome"] != "equivalent"]
    killed = [r for r in counted if r["outcome"] in ("killed", "timeout")]
    survivors = [r for r in counted if r["outcome"] not in ("killed", "timeout")]
    equivalent = len(results) - len(counted)
    if counted:
        print(
            f"\nkill rate: {len(killed)}/{len(counted)} = {100.0 * len(killed) / len(counted):.1f} % "
            f"({equivalent} equivalent mutant(s) not counted; {sum(r['outcome'] == 'timeout' for r in killed)} "
            f"killed by the timeout)"
        )
    for r in survivors:
        m = next(m for m in MUTATIONS if m.id == r["id"])
        print(f"  survived: {m.id}  {m.file}: {m.original!r} -> {m.replacement!r}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help="comma-separated mutation ids (or parts of ids) to run")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds per mutant before it counts as killed by a timeout (default {DEFAULT_TIMEOUT})",
    )
    parser.add_argument("--report", help="write the results as JSON to this file")
    parser.add_argument(
        "--ignore-baseline-failure",
        action="store_true",
        help="run the mutants even when the unmutated tests fail (their results then mean little)",
    )
    args = parser.parse_args(argv)
    mutations = _select(args.only)
    if args.list:
        for m in mutations:
            flag = f"  [equivalent: {m.equivalent}]" if m.equivalent else ""
            print(f"{m.id:34s} {m.file}: {m.original!r} -> {m.replacement!r}  tests: {' '.join(m.tests)}{flag}")
        areas = {}
        for m in mutations:
            area = m.file.split("/")[1] if m.file.count("/") > 1 else m.file
            areas[area] = areas.get(area, 0) + 1
        print(f"\n{len(mutations)} mutations: " + ", ".join(f"{k} {v}" for k, v in sorted(areas.items())))
        for m in mutations:  # check that every original line is still there
            with open(os.path.join(ROOT, m.file)) as f:
                _locate(f.read(), m)
        return
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    run(mutations, args.timeout, args.ignore_baseline_failure, args.report)


if __name__ == "__main__":
    main()
