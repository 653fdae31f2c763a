"""Optimizers against independent NumPy references, their special cases, bounds, targets and bad input."""

import math

import naive
import numpy as np
import pytest

from testbed import optim
from testbed.kernels import optim as kernels
from testbed.kernels.targets import for_cpu
from testbed.rules import optimizers as rules
from testbed.rules import schedules as schedule_rules

#: Largest relative difference (max |a - b| / max |b| over an array) from the references, per dtype (the issue's).
RTOL = {np.float64: 1e-12, np.float32: 1e-5}
#: Steps of each reference trajectory and the number of components (several CUDA blocks of 10, a partial last one).
STEPS = 120
N = 37
DTYPES = (np.float64, np.float32)


def rel_diff(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(np.float64).tiny))


def gradients(rng, steps=STEPS, n=N):
    """Random gradients whose component scales span 1e-4 .. 10 (so eps placement matters) and drift in time
    (so second moments fall as well as rise, which AMSGrad's forms need to differ)."""
    scales = np.logspace(-4, 1, n)
    drift = 1.0 + 0.9 * np.sin(np.arange(1, steps + 1) / 7.0)
    return rng.standard_normal((steps, n)) * scales * drift[:, None]


def run(opt, w0, grads):
    w = w0.copy()
    state = opt.init(w)
    for g in grads:
        assert opt.step(w, np.ascontiguousarray(g), state)
    return w, state


# ------------------------------------------------------------------------------------------------------------------
# Each rule against its reference, for every convention

#: (optimizer name, hyperparameters) covering every form of every rule.
CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.8, "dampening": 0.3, "weight_decay": 1e-2}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}),
    ("momentum", {"beta": 0.9}),
    ("momentum", {"beta": 0.5, "weight_decay": 0.1}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.01, "weight_decay": 1e-2}),
    ("adagrad", {"initial_accumulator_value": 0.3, "eps": 1e-3}),
    ("rmsprop", {}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True, "momentum": 0.5, "weight_decay": 1e-2, "alpha": 0.9}),
    ("rmsprop", {"bias_correction": True, "initial_accumulator_value": 0.2}),
    ("adam", {}),
    ("adam", {"weight_decay": 1e-2, "eps": 1e-3}),
    ("adam", {"bias_correction": False}),
    ("amsgrad", {}),
    ("adamw", {}),
    ("adamw", {"amsgrad": True, "weight_decay": 0.1}),
    ("nadam", {}),
    ("nadam", {"weight_decay": 1e-2, "decoupled_weight_decay": True, "momentum_decay": 1e-2}),
    ("nadam", {"weight_decay": 1e-2}),
    ("adamax", {}),
    ("adamax", {"weight_decay": 1e-2, "eps": 1e-3}),
]


def reference(name, convention, hyper, w0, grads, lrs):
    """The NumPy reference of ``name`` in ``convention`` (the library's eps placement, defaults and forms)."""
    keras, optax, lecture = convention == "keras", convention == "optax", convention == "lecture"
    h = dict(hyper)
    if name == "sgd":
        return naive.sgd(w0, grads, lrs, keras=keras, **h)
    if name == "momentum":
        return naive.momentum(w0, grads, lrs, **h)
    if name == "adagrad":
        h.setdefault("initial_accumulator_value", 0.1 if keras or optax else 0.0)
        h.setdefault("eps", 1e-10 if convention == "torch" else (1e-8 if lecture else 1e-7))
        return naive.adagrad(w0, grads, lrs, eps_inside=convention != "torch", **h)
    if name == "rmsprop":
        h.setdefault("eps", 1e-7 if keras else 1e-8)
        return naive.rmsprop(w0, grads, lrs, eps_inside=convention != "torch", lr_in_buffer=keras or optax, **h)
    if name in ("adam", "amsgrad", "adamw"):
        h.setdefault("eps", 1e-7 if keras else 1e-8)
        decoupled = name == "adamw"
        if decoupled:
            h.setdefault("weight_decay", 1e-2)
        if name == "amsgrad":
            h["amsgrad"] = True
        return naive.adam(w0, grads, lrs, decoupled=decoupled, style=convention, **h)
    if name == "nadam":
        h.setdefault("eps", 1e-7 if keras else 1e-8)
        decoupled = h.pop("decoupled_weight_decay", False)
        return naive.nadam(
            w0, grads, lrs, decoupled=decoupled, eps_inside=lecture, style="optax" if optax else "torch", **h
        )
    if name == "adamax":
        h.setdefault("eps", 1e-7 if keras else 1e-8)
        return naive.adamax(w0, grads, lrs, eps_inside=not keras, **h)
    raise KeyError(name)


#: The schedule every reference trajectory runs under (a warm-up then a cosine decay): schedules compose with every
#: rule, and the lr-in-buffer forms of Keras and optax differ from PyTorch's only under a varying rate.
SCHEDULE = {"name": "cosine", "t_max": 100, "eta_min": 1e-4, "warmup_steps": 10}


@pytest.mark.parametrize("name,hyper", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
@pytest.mark.parametrize("convention", optim.CONVENTIONS)
def test_rule_matches_reference(name, hyper, convention, rng):
    grads64 = gradients(rng)
    w064 = rng.standard_normal(N)
    sched = dict(SCHEDULE)
    opt_schedule = optim.schedule(sched.pop("name"), **sched)
    for dtype in DTYPES:
        w0, grads = w064.astype(dtype), grads64.astype(dtype)
        opt = optim.make(name, convention=convention, schedule=opt_schedule, **hyper)
        lrs = [naive.learning_rate(SCHEDULE["name"], opt.lr, t, **sched) for t in range(1, STEPS + 1)]
        w, state = run(opt, w0, grads)
        w_ref, state_ref = reference(name, convention, hyper, w0.astype(np.float64), grads.astype(np.float64), lrs)
        assert state.step == STEPS
        assert rel_diff(w, w_ref) <= RTOL[dtype], (dtype, "params")
        assert set(state.slot_names) == set(state_ref)
        for slot, expected in state_ref.items():
            actual = state[slot]
            if slot == "mu_product":  # NAdam uses 1 - P (P reaches float32's subnormals after ~100 steps)
                actual, expected = 1.0 - actual.astype(np.float64), 1.0 - expected
            assert rel_diff(actual, expected) <= RTOL[dtype], (dtype, slot)


def test_conventions_differ_where_the_libraries_do(rng):
    """The references are not all one formula: each convention's trajectory differs from PyTorch's."""
    grads = gradients(rng)
    w0 = rng.standard_normal(N)
    lrs = [1e-3] * STEPS
    for name, hyper in [("adam", {}), ("amsgrad", {}), ("adagrad", {}), ("rmsprop", {"momentum": 0.9})]:
        torch_w, _ = reference(name, "torch", hyper, w0, grads, lrs)
        for convention in ("optax", "keras", "lecture"):
            if (name, convention) == ("adam", "optax"):
                continue  # the same update (optax differs in AMSGrad only)
            other, _ = reference(name, convention, hyper, w0, grads, lrs)
            assert rel_diff(other, torch_w) > 1e3 * RTOL[np.float64], (name, convention)


# ------------------------------------------------------------------------------------------------------------------
# Schedules


SCHEDULES = [
    ("constant", {}),
    ("step", {"step_size": 7, "gamma": 0.5}),
    ("exponential", {"gamma": 0.97}),
    ("inverse_sqrt", {}),
    ("cosine", {"t_max": 50, "eta_min": 1e-5}),
    ("linear_warmup", {"warmup_steps": 20}),
    ("step", {"step_size": 10, "gamma": 0.3, "warmup_steps": 5}),
]


@pytest.mark.parametrize("name,params", SCHEDULES)
def test_schedule_matches_reference_and_drives_the_step(name, params, rng):
    sched = optim.schedule(name, **params)
    lr = 3e-3
    for t in (1, 2, 5, 19, 20, 21, 49, 50, 51, 120):
        assert math.isclose(sched(lr, t), naive.learning_rate(name, lr, t, **params), rel_tol=1e-14)
    grads = gradients(rng, steps=60)
    w0 = rng.standard_normal(N)
    w, _ = run(optim.Adam(lr=lr, schedule=sched), w0, grads)
    w_ref, _ = naive.adam(w0, grads, [naive.learning_rate(name, lr, t, **params) for t in range(1, 61)])
    assert rel_diff(w, w_ref) <= RTOL[np.float64]


# ------------------------------------------------------------------------------------------------------------------
# Special cases


def test_momentum_with_zero_beta_is_sgd(rng):
    grads, w0 = gradients(rng), rng.standard_normal(N)
    a, _ = run(optim.Momentum(lr=1e-2, beta=0.0), w0, grads)
    b, _ = run(optim.SGD(lr=1e-2), w0, grads)
    np.testing.assert_array_equal(a, b)


def test_adamw_without_decay_is_adam(rng):
    grads, w0 = gradients(rng), rng.standard_normal(N)
    a, sa = run(optim.AdamW(weight_decay=0.0), w0, grads)
    b, sb = run(optim.Adam(), w0, grads)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa["exp_avg_sq"], sb["exp_avg_sq"])


@pytest.mark.parametrize("convention", ["torch", "keras"])
def test_amsgrad_is_adam_while_v_does_not_decrease(convention, rng):
    # |g_t| grows with t in every component, so v_t = b2 v + (1 - b2) g_t^2 never decreases and max(vmax, v) = v
    signs = rng.choice([-1.0, 1.0], size=(STEPS, N))
    grads = signs * rng.uniform(0.5, 2.0, N) * (1.0 + 0.05 * np.arange(STEPS))[:, None]
    w0 = rng.standard_normal(N)
    a, _ = run(optim.Adam(amsgrad=True, convention=convention), w0, grads)
    b, _ = run(optim.Adam(convention=convention), w0, grads)
    np.testing.assert_array_equal(a, b)
    # once v falls, AMSGrad keeps the largest v and leaves Adam's path
    falling = grads[::-1].copy()
    a, state = run(optim.Adam(amsgrad=True, convention=convention), w0, falling)
    b, _ = run(optim.Adam(convention=convention), w0, falling)
    assert not np.array_equal(a, b)
    assert np.all(state["max_exp_avg_sq"] >= state["exp_avg_sq"])
    assert np.all(state["max_exp_avg_sq"] > state["exp_avg_sq"])


@pytest.mark.parametrize("convention", ["torch", "lecture"])  # eps placed alike for Adam and RMSProp
def test_adam_with_b1_zero_is_rmsprop_with_bias_correction(convention, rng):
    grads, w0 = gradients(rng), rng.standard_normal(N)
    a, sa = run(optim.Adam(lr=1e-3, betas=(0.0, 0.99), eps=1e-8, convention=convention), w0, grads)
    b, sb = run(optim.RMSProp(lr=1e-3, alpha=0.99, eps=1e-8, bias_correction=True, convention=convention), w0, grads)
    assert rel_diff(a, b) <= RTOL[np.float64]
    assert rel_diff(sa["exp_avg_sq"], sb["square_avg"]) <= RTOL[np.float64]


def test_heavy_ball_differs_from_the_running_average_only_by_its_first_step(rng):
    """PyTorch's v1 = g1 against the lecture's v1 = (1 - b) g1: after one step the buffers differ by the factor
    1 - b, and from then on both follow v = b v + (1 - b) g, so the difference decays as b^t."""
    b, grads, w0 = 0.9, gradients(rng), rng.standard_normal(N)
    sgd = optim.SGD(lr=1e-2, momentum=b, dampening=b)
    mom = optim.Momentum(lr=1e-2, beta=b)
    ws, ss = w0.copy(), sgd.init(w0)
    wm, sm = w0.copy(), mom.init(w0)
    scale = np.zeros(N)
    for t, g in enumerate(grads, start=1):
        sgd.step(ws, g, ss)
        mom.step(wm, g, sm)
        expected = b**t * grads[0]  # v_sgd - v_mom = b^(t-1) (g1 - (1 - b) g1)
        # rounding: each step adds about two units in the last place of the largest buffer value so far to each
        # buffer's error, and the subtraction cancels the common part
        scale = np.maximum.reduce([scale, np.abs(ss["momentum_buffer"]), np.abs(sm["velocity"]), np.abs(g)])
        rounding = 4 * t * np.finfo(np.float64).eps * scale
        assert np.all(np.abs(ss["momentum_buffer"] - sm["velocity"] - expected) <= rounding)


# ------------------------------------------------------------------------------------------------------------------
# Adam's step: bounded, scale-free


def adam_step_bound(lr, b1, b2, t):
    """The largest Adam step (eps = 0) at step t: by Cauchy-Schwarz on m = (1 - b1) sum_i b1^(t-i) g_i,
    |mh| / sqrt(vh) <= (1 - b1) / (1 - b1^t) sqrt((1 - b2^t) / (1 - b2)) sqrt(sum_{k<t} (b1^2 / b2)^k), which tends
    to Kingma & Ba's lr (1 - b1) / sqrt(1 - b2) times 1 / sqrt(1 - b1^2 / b2) (needs b1^2 < b2)."""
    ratio = b1**2 / b2
    return lr * (1 - b1) / (1 - b1**t) * math.sqrt((1 - b2**t) / (1 - b2)) * math.sqrt((1 - ratio**t) / (1 - ratio))


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)])
def test_adam_step_is_bounded_whatever_the_gradient_scale(betas, rng):
    b1, b2 = betas
    lr = 1e-3
    # per-step scales spread over twelve orders of magnitude
    wild = rng.standard_normal((STEPS, N)) * 10.0 ** rng.uniform(-6, 6, (STEPS, 1))
    # stationary gradients (each component its own fixed scale)
    steady = rng.standard_normal((STEPS, N)) * np.logspace(-6, 6, N)
    for grads in (wild, steady):
        opt = optim.Adam(lr=lr, betas=betas, eps=0.0)
        w = rng.standard_normal(N)
        state = opt.init(w)
        for t, g in enumerate(grads, start=1):
            before = w.copy()
            opt.step(w, g, state)
            assert np.all(np.abs(w - before) <= adam_step_bound(lr, b1, b2, t) * (1 + 1e-12))
            if grads is steady:  # Kingma & Ba section 2.1: about lr, at most lr (1 - b1) / sqrt(1 - b2)
                assert np.all(np.abs(w - before) <= lr * max(1.0, (1 - b1) / math.sqrt(1 - b2)))


def test_adam_step_bound_from_cauchy_schwarz_is_tight():
    """|m| <= (1 - b1) sqrt(sum_k (b1^2 / b2)^k) sqrt(v / (1 - b2)), with equality for g_i proportional to
    (b1 / b2)^(t - i): that gradient sequence (growing as 1.11^t) reaches the bound, and no step exceeds it."""
    b1, b2, lr, steps = 0.9, 0.999, 1e-3, 400
    opt = optim.Adam(lr=lr, betas=(b1, b2), eps=0.0)
    w = np.zeros(1)
    state = opt.init(w)
    for t in range(1, steps + 1):
        before = w.copy()
        opt.step(w, np.array([(b2 / b1) ** t]), state)
        bound = adam_step_bound(lr, b1, b2, t)
        assert abs(w[0] - before[0]) <= bound * (1 + 1e-12)
    assert abs(w[0] - before[0]) >= bound * (1 - 1e-12)
    assert bound > lr * (1 - b1) / math.sqrt(1 - b2)  # growing gradients beat Kingma & Ba's approximate bound


@pytest.mark.parametrize("scale", [1e-6, 1e3])
def test_adam_step_is_invariant_to_gradient_scale(scale, rng):
    grads, w0 = gradients(rng), rng.standard_normal(N)
    a, _ = run(optim.Adam(eps=0.0), w0, grads)
    b, _ = run(optim.Adam(eps=0.0), w0, grads * scale)
    assert rel_diff(a - w0, b - w0) <= 1e-12


# ------------------------------------------------------------------------------------------------------------------
# Targets: CPU and CUDA agree bit for bit; one compiled signature per dtype

TARGET_CASES = [
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}, "torch"),
    ("sgd", {"momentum": 0.9}, "keras"),
    ("sgd", {}, "torch"),
    ("momentum", {}, "torch"),
    ("adagrad", {"lr_decay": 0.1}, "optax"),
    ("rmsprop", {"centered": True, "momentum": 0.9}, "keras"),
    ("rmsprop", {"momentum": 0.9}, "torch"),
    ("adam", {}, "torch"),
    ("adam", {"amsgrad": True}, "optax"),
    ("adamw", {}, "keras"),
    ("nadam", {}, "torch"),
    ("adamax", {}, "keras"),
]


@pytest.mark.parametrize("name,hyper,convention", TARGET_CASES)
def test_cpu_and_cuda_agree(name, hyper, convention, rng):
    grads64, w064 = gradients(rng, steps=6), rng.standard_normal(N)
    for dtype in DTYPES:
        results = []
        for backend in ("cpu", "cuda"):
            opt = optim.make(
                name, convention=convention, backend=backend, schedule=optim.schedule("inverse_sqrt"), **hyper
            )
            results.append(run(opt, w064.astype(dtype), grads64.astype(dtype)))
        (w_cpu, s_cpu), (w_gpu, s_gpu) = results
        np.testing.assert_array_equal(w_cpu, w_gpu)
        for slot in s_cpu.slot_names:
            np.testing.assert_array_equal(s_cpu[slot], s_gpu[slot])


def test_cuda_device_arrays_stay_on_the_device(rng):
    from numba import cuda

    g, w0 = rng.standard_normal(N), rng.standard_normal(N)
    opt = optim.Adam(backend="cuda")
    w_dev = cuda.to_device(w0)
    state = opt.init(w_dev)
    opt.step(w_dev, cuda.to_device(g), state)
    w_host = w0.copy()
    reference_opt = optim.Adam()
    reference_state = reference_opt.init(w_host)
    reference_opt.step(w_host, g, reference_state)
    np.testing.assert_array_equal(w_dev.copy_to_host(), w_host)
    np.testing.assert_array_equal(state.slots[0].copy_to_host(), reference_state["exp_avg"])


def test_no_recompile_on_later_steps(rng):
    for dtype in DTYPES:
        w = rng.standard_normal(N).astype(dtype)
        g = rng.standard_normal(N).astype(dtype)
        for name in optim.names():
            if name in ("newton", "saddle_free_newton"):
                continue
            opt = optim.make(name)
            state = opt.init(w)
            opt.step(w, g, state)
            compiled = (len(kernels.step_cpu.signatures), len(kernels.count_nonfinite_cpu.signatures))
            opt.step(w, g, state)
            assert (len(kernels.step_cpu.signatures), len(kernels.count_nonfinite_cpu.signatures)) == compiled
    # one signature per dtype, whichever rule ran
    assert len(kernels.step_cpu.signatures) <= len(DTYPES)
    assert len(kernels.count_nonfinite_cpu.signatures) <= len(DTYPES)


def test_rule_spec_drives_an_external_per_component_loop(rng):
    """The recipe of the rules' docstring, run as a Monte Carlo kernel would (here the rules as Python)."""
    grads, w0 = gradients(rng, steps=25, n=5), rng.standard_normal(5)
    for opt in (
        optim.NAdam(schedule=optim.schedule("cosine", t_max=20, warmup_steps=3)),
        optim.RMSProp(centered=True, momentum=0.5),
        optim.SGD(momentum=0.9, nesterov=True),
        optim.Adam(amsgrad=True, convention="optax"),
    ):
        spec = opt.rule_spec()
        w = w0.copy()
        slots = [np.full(5, value) for value in spec.initial_state]
        for t, g in enumerate(grads, start=1):
            lr_t = schedule_rules.learning_rate(spec.schedule_code, spec.schedule_params, spec.lr, t)
            c = rules.prepare(spec.code, spec.hyper, t, lr_t)
            for j in range(5):
                w[j], slots[0][j], slots[1][j], slots[2][j] = rules.update(
                    spec.code, spec.hyper, *c, w[j], g[j], slots[0][j], slots[1][j], slots[2][j]
                )
        expected, state = run(opt, w0, grads)
        np.testing.assert_array_equal(w, expected)
        for index, slot in enumerate(spec.slot_names):
            np.testing.assert_array_equal(slots[index], state[slot])
        assert spec.n_slots == len(spec.slot_names)


def test_rules_compile_for_an_external_njit_kernel():
    """prepare, update and learning_rate compile with numba (float64 tuple hyper, float32 storage)."""
    from numba import njit

    update, prepare, learning_rate = (
        for_cpu(rules.update),
        for_cpu(rules.prepare),
        for_cpu(schedule_rules.learning_rate),
    )

    @njit
    def trial(code, hyper, schedule_code, schedule_params, lr, w, g, s0, s1, s2, steps):
        for t in range(1, steps + 1):
            c0, c1, c2, c3 = prepare(code, hyper, t, learning_rate(schedule_code, schedule_params, lr, t))
            for j in range(w.size):
                w[j], s0[j], s1[j], s2[j] = update(code, hyper, c0, c1, c2, c3, w[j], g[j], s0[j], s1[j], s2[j])

    spec = optim.Adam(lr=1e-2).rule_spec()
    w, g = np.ones(3, np.float32), np.full(3, 0.25, np.float32)
    s = [np.full(3, v, np.float32) for v in spec.initial_state]
    trial(spec.code, spec.hyper, spec.schedule_code, spec.schedule_params, spec.lr, w, g, *s, 3)
    np.testing.assert_allclose(w, 1.0 - 3 * 1e-2, rtol=1e-6)  # a constant gradient moves Adam by lr per step


# ------------------------------------------------------------------------------------------------------------------
# Newton and saddle-free Newton


def test_newton_solves_a_quadratic_in_one_step(rng):
    a = rng.standard_normal((4, 4))
    h = a @ a.T + 4 * np.eye(4)
    target = rng.standard_normal(4)
    w = rng.standard_normal(4)
    optim.Newton().step(w, h @ (w - target), h)
    np.testing.assert_allclose(w, target, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(optim.newton_step(h @ target, h), np.linalg.solve(h, h @ target), rtol=1e-12)


def test_newton_is_attracted_to_a_saddle_and_saddle_free_newton_escapes(rng):
    h = np.diag([2.0, -1.0, 0.5])  # f = w^T H w / 2: a saddle at 0
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    h = q @ h @ q.T
    w0 = rng.standard_normal(3)
    newton, free = w0.copy(), w0.copy()
    optim.Newton().step(newton, h @ newton, h)
    np.testing.assert_allclose(newton, 0.0, atol=1e-12)  # jumps onto the saddle
    optim.SaddleFreeNewton().step(free, h @ free, h)
    # |H|^-1 H flips the negative-curvature component: the distance along it doubles, f decreases
    step = optim.saddle_free_newton_step(h @ w0, h)
    np.testing.assert_allclose(step, np.linalg.solve(naive.abs_matrix(h), h @ w0), rtol=1e-10)
    assert free @ h @ free < w0 @ h @ w0


def test_newton_bad_input():
    with pytest.raises(ValueError, match="singular"):
        optim.newton_step(np.ones(2), np.diag([1.0, 0.0]))
    with pytest.raises(ValueError, match="singular"):
        optim.saddle_free_newton_step(np.ones(2), np.diag([1.0, 0.0]))
    np.testing.assert_allclose(optim.saddle_free_newton_step(np.ones(2), np.diag([1.0, 0.0]), damping=1.0), [0.5, 1.0])
    with pytest.raises(ValueError, match="hessian"):
        optim.newton_step(np.ones(2), np.ones((3, 3)))
    with pytest.raises(ValueError, match="symmetric"):
        optim.newton_step(np.ones(2), np.array([[1.0, 2.0], [0.0, 1.0]]))


# ------------------------------------------------------------------------------------------------------------------
# Bad input and non-finite gradients


@pytest.mark.parametrize(
    "build,argument",
    [
        (lambda: optim.Adam(lr=0.0), "lr"),
        (lambda: optim.Adam(lr=-1e-3), "lr"),
        (lambda: optim.SGD(lr=float("nan")), "lr"),
        (lambda: optim.Adam(betas=(1.0, 0.999)), r"betas\[0\]"),
        (lambda: optim.Adam(betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda: optim.Adam(betas=0.9), "betas"),
        (lambda: optim.Adam(eps=-1e-8), "eps"),
        (lambda: optim.RMSProp(alpha=1.0), "alpha"),
        (lambda: optim.Momentum(beta=1.5), "beta"),
        (lambda: optim.SGD(nesterov=True), "nesterov"),
        (lambda: optim.SGD(momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
        (lambda: optim.Adam(weight_decay=-1.0), "weight_decay"),
        (lambda: optim.Adam(convention="pytorch"), "convention"),
        (lambda: optim.Adam(nonfinite="ignore"), "nonfinite"),
        (lambda: optim.Adam(backend="tpu"), "backend"),
        (lambda: optim.make("adamm"), "adam"),
        (lambda: optim.make("adam", momentum=0.9), "momentum"),
        (lambda: optim.schedule("cosinus"), "cosine"),
        (lambda: optim.schedule("step", gamma=0.5), "step_size"),
        (lambda: optim.schedule("step", step_size=0), "step_size"),
        (lambda: optim.schedule("exponential", gamma=0.0), "gamma"),
        (lambda: optim.schedule("linear_warmup"), "warmup_steps"),
    ],
)
def test_bad_hyperparameters(build, argument):
    with pytest.raises(ValueError, match=argument):
        build()


def test_bad_arrays(rng):
    opt = optim.Adam()
    w = rng.standard_normal(N)
    state = opt.init(w)
    with pytest.raises(ValueError, match="shape"):
        opt.step(w, np.ones(N + 1), state)
    with pytest.raises(ValueError, match="dtype"):
        opt.step(w, np.ones(N, np.float32), state)
    with pytest.raises(ValueError, match="dtype"):
        opt.step(w.astype(np.int64), np.ones(N, np.int64), state)
    with pytest.raises(ValueError, match="C-contiguous"):
        opt.step(np.ones(2 * N)[::2], np.ones(N), state)
    with pytest.raises(ValueError, match="state"):
        opt.step(w, np.ones(N), optim.SGD(momentum=0.9).init(w))
    with pytest.raises(ValueError, match="state"):
        opt.step(w[:5].copy(), np.ones(5), state)
    with pytest.raises(ValueError, match="params"):
        opt.init([1.0, 2.0])
    np.testing.assert_array_equal(state["exp_avg"], 0.0)  # nothing ran


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_nonfinite_gradients_raise_or_skip_without_touching_state(bad, backend, rng):
    grads = rng.standard_normal((3, N))
    poisoned = grads[1].copy()
    poisoned[N - 1] = bad
    for policy in optim.NONFINITE_POLICIES:
        opt = optim.Adam(nonfinite=policy, backend=backend)
        w = rng.standard_normal(N)
        state = opt.init(w)
        opt.step(w, grads[0], state)
        snapshot = (w.copy(), state["exp_avg"].copy(), state["exp_avg_sq"].copy(), state.step)
        if policy == "raise":
            with pytest.raises(ValueError, match="grads"):
                opt.step(w, poisoned, state)
        else:
            assert opt.step(w, poisoned, state) is False
            assert state.skipped == 1
        np.testing.assert_array_equal(w, snapshot[0])
        np.testing.assert_array_equal(state["exp_avg"], snapshot[1])
        np.testing.assert_array_equal(state["exp_avg_sq"], snapshot[2])
        assert state.step == snapshot[3]
        assert opt.step(w, grads[2], state) and state.step == 2  # the next good step proceeds as step 2


def test_a_step_given_the_callers_count_of_nonfinite_grads_does_not_count_them_again(rng, monkeypatch):
    """grads_nonfinite (the count a training step takes while it writes the gradient) replaces the step's own read
    of grads: the same bits as a step that counts; a count > 0 raises or skips with nothing changed, like a counted
    one; anything but an integer from 0 to grads.size is refused by name."""
    grads = rng.standard_normal((2, N))
    w0 = rng.standard_normal(N)
    counting = optim.Adam(lr=0.1)
    w_counting, state_counting = w0.copy(), counting.init(w0)
    for g in grads:
        counting.step(w_counting, g, state_counting)

    def never(g):
        raise AssertionError("the step counted the gradient although it was given the count")

    monkeypatch.setattr(optim.kernels, "count_nonfinite_cpu", never)
    given = optim.Adam(lr=0.1)
    w_given, state_given = w0.copy(), given.init(w0)
    for g in grads:
        assert given.step(w_given, g, state_given, grads_nonfinite=0)
    np.testing.assert_array_equal(w_given, w_counting)
    np.testing.assert_array_equal(state_given["exp_avg_sq"], state_counting["exp_avg_sq"])
    snapshot = (w_given.copy(), state_given["exp_avg"].copy(), state_given.step)
    with pytest.raises(optim.NonFiniteError, match="grads holds 3 NaN") as raised:
        given.step(w_given, grads[0], state_given, grads_nonfinite=3)
    assert raised.value.count == 3 and raised.value.where == "grads"
    skipping = optim.Adam(lr=0.1, nonfinite="skip")
    assert skipping.step(w_given, grads[0], state_given, grads_nonfinite=1) is False and state_given.skipped == 1
    np.testing.assert_array_equal(w_given, snapshot[0])
    np.testing.assert_array_equal(state_given["exp_avg"], snapshot[1])
    assert state_given.step == snapshot[2]
    for bad in (-1, 1.5, True, "0", N + 1):
        with pytest.raises(ValueError, match="grads_nonfinite"):
            given.step(w_given, grads[0], state_given, grads_nonfinite=bad)


#: Steps at which the slot-use test calls the rule (the first step is special for heavy ball).
SLOT_TEST_STEPS = (1, 2, 7)


@pytest.mark.parametrize("name,hyper", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
@pytest.mark.parametrize("convention", optim.CONVENTIONS)
def test_slot_count_bounds_the_slots_every_form_uses(name, hyper, convention, rng):
    """rules.slot_count is the one table of slot use that kernels rely on to skip loads and stores: the
    optimizer's own n_slots stays within it, and update returns every slot beyond it unchanged."""
    opt = optim.make(name, lr=0.1, convention=convention, **hyper)
    spec = opt.rule_spec()
    count = rules.slot_count(spec.code)
    assert 0 < count <= 3 and spec.n_slots <= count
    for t in SLOT_TEST_STEPS:
        c0, c1, c2, c3 = rules.prepare(spec.code, spec.hyper, t, spec.lr)
        w, g, *slots = rng.standard_normal(5)
        slots = [abs(s) for s in slots]  # accumulators are non-negative
        new = rules.update(spec.code, spec.hyper, c0, c1, c2, c3, w, g, *slots)
        assert all(new[1 + k] == slots[k] for k in range(count, 3)), (t, new, slots)


# ------------------------------------------------------------------------------------------------------------------
# The rule table: every row is consistent, has a class and a NumPy reference

#: Steps of the per-row reference check (short: the forms of each rule are covered by test_rule_matches_reference).
TABLE_STEPS = 20


def test_rule_table_is_consistent():
    """Codes are the row numbers, names are unique, each row names distinct hyper entries within the tuple, and
    slot_count (Python and compiled) is the row's number of state names."""
    from numba import njit

    compiled_slot_count = njit(rules.slot_count)
    assert [rule.code for rule in rules.RULES] == list(range(rules.N_CODES))
    assert len({rule.name for rule in rules.RULES}) == rules.N_CODES
    for rule in rules.RULES:
        assert 1 <= len(rule.state) <= 3 and len(rule.coefficients) == 4
        named = list(rule.hyper.values()) + list(rules.SHARED_HYPER.values())
        targets = [target for target, _ in rule.complements]
        assert len(set(named + targets)) == len(named) + len(targets), rule.name  # no entry stands for two things
        assert all(0 <= index < rules.HYPER_SIZE for index in named + targets)
        assert all(source in rule.hyper.values() for _, source in rule.complements)
        assert rules.slot_count(rule.code) == compiled_slot_count(rule.code) == len(rule.state)
    assert rules.slot_count(rules.N_CODES) == compiled_slot_count(rules.N_CODES) == 0
    assert rules.slot_count(-1) == compiled_slot_count(-1) == 0
    # the rules know no code beyond the table: an unknown code changes nothing
    hyper = optim.Adam().hyper
    assert rules.update(rules.N_CODES, hyper, 0.1, 0.2, 0.3, 0.4, 1.5, 2.5, 3.5, 4.5, 5.5) == (1.5, 3.5, 4.5, 5.5)


@pytest.mark.parametrize("rule", rules.RULES, ids=lambda rule: rule.name)
def test_every_rule_has_a_class_and_a_numpy_reference(rule, rng):
    """Adding a row to rules.optimizers.RULES without its optimizer class or its NumPy reference in tests/naive.py
    (a function named like the row, run here with the class's defaults) fails here."""
    assert rule.name in optim.names(), f"no optimizer class for rule {rule.name!r}"
    opt = optim.make(rule.name)
    assert opt.code == rule.code and opt.slot_names == rule.state
    reference_fn = getattr(naive, rule.name, None)
    assert callable(reference_fn), f"tests/naive.py has no NumPy reference {rule.name}(w0, grads, lrs) for this rule"
    grads, w0 = gradients(rng, steps=TABLE_STEPS), rng.standard_normal(N)
    w, state = run(opt, w0, grads)
    w_ref, state_ref = reference_fn(w0, grads, [opt.lr] * TABLE_STEPS)
    assert rel_diff(w, w_ref) <= RTOL[np.float64]
    for slot, expected in state_ref.items():
        assert slot in rule.state
        assert rel_diff(state[slot], expected) <= RTOL[np.float64], slot


def test_optimizer_hyper_fills_exactly_the_rows_entries():
    """Each class writes only entries its rule names (its own, the shared ones and its complements)."""
    for name in optim.names():
        if name in ("newton", "saddle_free_newton"):
            continue
        opt = optim.make(name)
        rule = rules.RULES[opt.code]
        allowed = set(rule.hyper.values()) | set(rules.SHARED_HYPER.values()) | {t for t, _ in rule.complements}
        assert set(opt._hyper) <= allowed, name
        for target, source in rule.complements:
            assert opt.hyper[target] == 1.0 - opt.hyper[source]


# ------------------------------------------------------------------------------------------------------------------
# A step that makes parameters non-finite is reported (the count rides in the step kernels)


def _overflow_case(dtype, n, rng):
    """w0 = 0.9 max pointing against the gradient, lr = 0.5 max, and a zero gradient on about a third of the
    components: every component with g != 0 moves outward by about lr (Adam's first step is lr sign(g); SGD's is
    lr g with |g| >= 1) and overflows, the others stay put. Returns (w0, g, the expected count, lr)."""
    big = np.finfo(dtype).max
    g = rng.choice([-2.0, -1.0, 0.0, 1.0, 2.0], size=n).astype(dtype)
    g[0], g[1] = 0.0, 1.0
    w0 = (-0.9 * big * np.sign(g)).astype(dtype)
    w0[g == 0] = 1.0
    return w0, g, int(np.count_nonzero(g)), float(0.5 * big)


OVERFLOW_CASES = [("adam", {}), ("amsgrad", {}), ("sgd", {}), ("sgd", {"momentum": 0.9})]


# the CUDA simulator runs the rule on NumPy scalars, which warn as they overflow
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("name,hyper", OVERFLOW_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OVERFLOW_CASES)])
@pytest.mark.parametrize("policy", optim.NONFINITE_POLICIES)
def test_a_step_that_overflows_the_parameters_is_reported(name, hyper, policy, rng, monkeypatch):
    """The count is exact and the same on CPU (chunks of 8 components: several threads' partial counts, a partial
    last chunk; the Adam path and the generic one) and CUDA (several blocks); the step is applied identically on
    both, under either policy (a step cannot be undone, and skipping it silently would skip every later step)."""
    monkeypatch.setattr(optim, "CPU_CHUNK", 8)
    for dtype in DTYPES:
        w0, g, expected, lr = _overflow_case(dtype, N, rng)
        results = []
        for backend in ("cpu", "cuda"):
            opt = optim.make(name, lr=lr, nonfinite=policy, backend=backend, **hyper)
            w = w0.copy()
            state = opt.init(w)
            with pytest.raises(
                optim.NonFiniteError, match=rf"{type(opt).__name__} step 1 made {expected} of {N}"
            ) as caught:
                opt.step(w, g, state)
            error = caught.value
            assert (error.optimizer, error.step, error.count, error.where) == (opt.name, 1, expected, "params")
            assert state.step == 1 and state.skipped == 0
            assert np.count_nonzero(~np.isfinite(w)) == expected
            np.testing.assert_array_equal(w[g == 0], w0[g == 0])
            results.append((w, [state[s] for s in state.slot_names]))
        (w_cpu, s_cpu), (w_gpu, s_gpu) = results
        np.testing.assert_array_equal(w_cpu, w_gpu)
        for a, b in zip(s_cpu, s_gpu):
            np.testing.assert_array_equal(a, b)


def test_finite_steps_report_nothing_and_nonfinite_grads_name_the_step(rng):
    opt = optim.Adam(lr=1e-3)
    w = rng.standard_normal(N)
    state = opt.init(w)
    assert opt.step(w, rng.standard_normal(N), state) is True
    poisoned = rng.standard_normal(N)
    poisoned[[3, 5]] = np.nan
    with pytest.raises(optim.NonFiniteError, match="Adam step 2: grads holds 2 NaN or infinite value"):
        opt.step(w, poisoned, state)


def test_sgd_repr_shows_its_momentum_and_rebuilds_it():
    """Two SGD runs that differ in momentum (or dampening, Nesterov) must not print alike; the repr is the
    constructor call that rebuilds the optimizer."""
    heavy = optim.SGD(lr=0.1, momentum=0.9, dampening=0.0, nesterov=True, convention="keras")
    text = repr(heavy)
    assert "momentum=0.9" in text and "nesterov=True" in text
    assert repr(optim.SGD(lr=0.1)) != repr(optim.SGD(lr=0.1, momentum=0.5))
    rebuilt = eval(text, {"SGD": optim.SGD})
    assert (rebuilt.lr, rebuilt.momentum, rebuilt.dampening, rebuilt.nesterov, rebuilt.convention) == (
        0.1,
        0.9,
        0.0,
        True,
        "keras",
    )
    assert rebuilt.hyper == heavy.hyper
