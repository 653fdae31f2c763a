"""Optimizer updates as scalar rules: one component, one step, for every first-order rule of reference.md sec. 3.

Every per-component optimizer of :mod:`testbed.optim` runs through three rules of this module, compiled for both
targets by :mod:`testbed.kernels.targets`. The fused kernels of :mod:`testbed.kernels.optim` are a loop around
:func:`update`; the Monte Carlo kernels of the escape-time scenarios call the same three rules inside one trial.

How an external kernel uses the rules
=====================================

Everything comes from the Python optimizer object: ``spec = opt.rule_spec()`` (a :class:`testbed.optim.RuleSpec`)
holds

- ``spec.code``: the integer rule code (:data:`SGD`, :data:`MOMENTUM`, ... below);
- ``spec.hyper``: a tuple of ``HYPER_SIZE`` float64 hyperparameters laid out by the ``H_*`` indices below (pass
  it to the kernel as a tuple, which Numba keeps in registers, or as a float64 array: both index the same way;
  build it with the optimizer object, which also fills ``H_ONE`` and the complements ``1 - b`` of ``Rule.complements``);
- ``spec.n_slots``: how many of the three per-component state slots ``s0, s1, s2`` the rule uses (0 to 3);
- ``spec.lr``, ``spec.schedule_code``, ``spec.schedule_params``: the base learning rate and the schedule, for
  :func:`testbed.rules.schedules.learning_rate`;
- ``spec.initial_state``: the initial values of ``(s0, s1, s2)`` (the same as :func:`initial_state`).

A trial of ``d`` coordinates holds ``w[d]``, ``g[d]`` and three state arrays ``s0[d], s1[d], s2[d]`` of its own
and a step counter ``t`` that starts at 0. A rule uses the first ``n_slots`` slots (a prefix: s0, then s1, then
s2) and returns the others unchanged, so the caller may keep only ``n_slots`` arrays and pass any number (e.g. 0)
for the rest. One optimizer step is::

    # once per trial
    i0, i1, i2 = initial_state(code, hyper)
    for j in range(d):
        s0[j], s1[j], s2[j] = i0, i1, i2
    # every step
    t += 1                                                    # the first step is t = 1 (PyTorch's counting)
    lr_t = schedules.learning_rate(schedule_code, schedule_params, lr, t)
    c0, c1, c2, c3 = prepare(code, hyper, t, lr_t)            # scalars that depend on t only, once per step
    for j in range(d):                                        # g[j] is the gradient at the current w
        w[j], s0[j], s1[j], s2[j] = update(code, hyper, c0, c1, c2, c3, w[j], g[j], s0[j], s1[j], s2[j])

``update`` computes in the type of its arguments: with ``spec.hyper`` (float64) and the float64 coefficients of
``prepare`` it computes in float64 whatever the storage type and returns float64 values, which the caller casts
back on store (``spec.hyper_as(numpy.float32)`` and float32 coefficients give float32 arithmetic, as the fused
float32 kernels use). Its "first step" special cases (PyTorch's heavy-ball buffer starting at ``v = g``) ride in the
coefficients that :func:`prepare` computes from ``t``; the initial accumulators (AdaGrad's ``S0``, RMSProp's
``u0``) and NAdam's running product of momentum coefficients (slot ``s2``, starting at 1) ride in the state, so the
per-trial picture is complete: ``(t, w, s0, s1, s2)``. Weight decay (L2 or decoupled) is applied inside
``update`` from ``w``. In ``@njit`` code call ``targets.for_cpu(rule)``; in a CUDA kernel ``targets.for_gpu(rule)``.

Speed, measured for the fused kernels: ``targets.for_cpu`` compiles the rule as a separate function, so each call
passes the hyperparameter tuple through memory; in a hot CPU loop ``numba.njit(inline="always",
error_model="numpy")(rules.optimizers.update)`` (``update`` calls no other rule) was ten times faster, and with a
constant ``code`` LLVM keeps only that rule's branch. NumPy's error model also makes a division by zero give inf
or NaN (as on the GPU) instead of raising, and lets LLVM vectorise.

Newton and saddle-free Newton are not per-component rules: their step ``H^-1 g`` or ``|H|^-1 g`` (``|H|`` from the
eigendecomposition of the Hessian) couples the coordinates. :func:`testbed.optim.newton_step` and
:func:`testbed.optim.saddle_free_newton_step` give them in NumPy for small dense problems; the Monte Carlo kernels
handle them themselves.

The table :data:`RULES` describes every rule in one place (one frozen :class:`Rule` per code): its name, its slots
under PyTorch's state names (SGD with momentum ``s0 = v``; AdaGrad ``s0 = S``; RMSProp ``s0 = u, s1 = buf,
s2 = gbar``; Adam ``s0 = m, s1 = v, s2 = vmax``; NAdam ``s0 = m, s1 = v, s2 = P``; Adamax ``s0 = m, s1 = u``), what
``c0..c3`` mean for it, and its named hyperparameters (``H_ADAM_BETA1``, ``H_SGD_MOMENTUM``, ...). :func:`slot_count`,
the optimizer classes' codes and slot names and :func:`testbed.optim.names` are derived from it; the recipe for
adding a rule is in :mod:`testbed.optim`.

The updates (per component; ``t`` counts steps from 1, ``lr`` is the scheduled rate of step ``t``)
==================================================================================================

Weight decay first, for every rule: L2 adds ``wd w`` to ``g``; decoupled decay (Loshchilov & Hutter 2019, AdamW)
multiplies ``w`` by ``1 - lr wd`` before the step (PyTorch's ``AdamW``, optax's ``adamw`` and Keras' ``AdamW``
agree up to rounding).

SGD, heavy ball (Polyak 1964; PyTorch's form)::

    v = g                              on the first step (PyTorch; Keras and a zero-initialised buffer differ
    v = mu v + (1 - tau) g             on later steps       only through the dampening tau of step 1)
    w -= lr v            (Nesterov: w -= lr (g + mu v))
    Keras ("lr in buffer"): v = mu v + lr g; w -= v  (Nesterov: w -= mu v + lr g): equal under a constant rate
    (Sutskever et al. 2013), different under a schedule.

Momentum, the lecture's running average: ``v = b v + (1 - b) g; w -= lr v``, ``v0 = 0`` (heavy ball with
dampening ``b`` except for heavy ball's first step ``v = g``).

AdaGrad (Duchi, Hazan & Singer 2011): ``S += g^2; w -= lr_t g / (sqrt(S + eps_in) + eps_out)`` with PyTorch's
``lr_t = lr / (1 + (t - 1) lr_decay)``.  PyTorch: ``S0 = 0``, ``eps_out = 1e-10``. optax/Keras: ``S0 = 0.1``,
``eps_in = 1e-7``.

RMSProp (Tieleman & Hinton 2012)::

    u = a u + (1 - a) g^2;  centered: gbar = a gbar + (1 - a) g, u' = u - gbar^2, else u' = u
    r = g / (sqrt(u' / bc + eps_in) + eps_out)           bc = 1 - a^t with bias correction (an extension), else 1
    slots: s0 = u, s1 = buf (momentum), s2 = gbar (centered)
    momentum m > 0:  buf = m buf + r; w -= lr buf   (PyTorch)   |   buf = m buf + lr r; w -= buf   (Keras, optax)
    otherwise:       w -= lr r

PyTorch: ``a = 0.99``, ``eps_out = 1e-8``, ``u0 = 0``. Keras: ``a = 0.9``, ``eps_in = 1e-7``. optax: ``eps_in``,
``u0 = initial_scale``. Without bias correction the first step is about ``lr / sqrt(1 - a)``.

Adam (Kingma & Ba 2015, Algorithm 1), AdamW, AMSGrad (Reddi, Kale & Kumar 2018)::

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    mh = m / (1 - b1^t);    vh = v / (1 - b2^t)                     (both divisors 1 without bias correction)
    AMSGrad, PyTorch/Keras: vmax = max(vmax, v),  vh = vmax / (1 - b2^t)
    AMSGrad, optax:         vmax = max(vmax, vh), vh = vmax
    w -= lr mh / (sqrt(vh + eps_in) + eps_out)

eps outside the root (``eps_out``): Kingma & Ba, PyTorch, optax. Inside (``eps_in``): the lecture (and optax's
``eps_root``). Keras' "epsilon hat": ``w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)``, i.e. ``eps_out``
multiplied by ``1 / sqrt(1 - b2^t)`` each step, which :func:`prepare` does.

NAdam (Dozat 2016, in PyTorch's form; ``psi`` = momentum_decay = 4e-3)::

    mu_t = b1 (1 - 0.5 * 0.96^(t psi));  mu_{t+1} likewise;   P = P mu_t  (slot s2, P0 = 1)
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  D = sqrt(v / (1 - b2^t) + eps_in) + eps_out
    w -= lr (1 - mu_t) / (1 - P) g / D + lr mu_{t+1} / (1 - P mu_{t+1}) m / D

optax's ``nadam`` is the same with a constant ``mu_t = b1`` (flag ``H_NADAM_CONSTANT_MU``); Keras' ``Nadam`` is
PyTorch's.

Adamax (Kingma & Ba 2015, section 7)::

    m = b1 m + (1 - b1) g;  u = max(b2 u, |g| + eps_in);  w -= lr / (1 - b1^t) m / (u + eps_out)

PyTorch and optax put eps inside the max (``eps_in``); Keras adds it to the denominator (``eps_out``).
"""

import dataclasses
import math
import types

# Rule codes: the row numbers of :data:`RULES` (a test checks that they agree) ---------------------------------------
SGD = 0
MOMENTUM = 1
ADAGRAD = 2
RMSPROP = 3
ADAM = 4  # AdamW and AMSGrad are Adam with flags
NADAM = 5
ADAMAX = 6

# Layout of the hyperparameter tuple (float64; flags are 0.0 or 1.0) ------------------------------------------------
#
# One tuple of HYPER_SIZE values serves every rule (one kernel signature per dtype). Each rule reads its own named
# entries; rules whose parameters play the same part share an index (Adam's b1 and SGD's momentum both sit in entry
# 2), which keeps the tuple short, but a rule's code only ever names its own entries. The shared entries first:
H_WEIGHT_DECAY = 0  #: wd (every rule)
H_DECOUPLED = 1  #: 1: decoupled decay w *= 1 - lr wd; 0: L2, g += wd w (every rule)
H_EPS_IN = 4  #: eps added inside the square root (or inside Adamax's max)
H_EPS_OUT = 5  #: eps added to the denominator outside the root
H_LR_IN_BUFFER = 8  #: 1: momentum buffers hold lr-scaled steps (Keras SGD, Keras/optax RMSProp momentum)
H_BIAS_CORRECTION = 9  #: Adam/NAdam/Adamax bias correction; RMSProp bias correction (an extension)
H_INIT0 = 17  #: initial value of slot s0 (AdaGrad's S0, RMSProp's u0)
H_INIT1 = 18  #: initial value of slot s1
H_INIT2 = 19  #: initial value of slot s2 (NAdam's running product, 1)
H_ONE = 20  #: the number 1, in the arithmetic type (the rules carry no float literal in their arithmetic)
# Entries 21 and 22 hold complements ``1 - b`` computed in float64 by the optimizer object (in float32,
# ``1 - float32(0.999)`` is off by 1.3e-5); each rule names the ones it reads (``Rule.complements``).
# SGD (heavy ball)
H_SGD_MOMENTUM = 2  #: mu
H_SGD_DAMPENING = 6  #: tau
H_SGD_NESTEROV = 7  #: Nesterov flag
# Momentum (the lecture's running average)
H_MOMENTUM_BETA = 2  #: b
H_MOMENTUM_ONE_MINUS_BETA = 21  #: 1 - b
# AdaGrad
H_ADAGRAD_LR_DECAY = 15  #: PyTorch's lr_decay
# RMSProp
H_RMSPROP_ALPHA = 3  #: a, the decay of the squared-gradient average
H_RMSPROP_ONE_MINUS_ALPHA = 22  #: 1 - a
H_RMSPROP_CENTERED = 12  #: centered flag
H_RMSPROP_MOMENTUM = 13  #: momentum of the buffer (0: none)
# Adam, AdamW, AMSGrad
H_ADAM_BETA1 = 2  #: b1
H_ADAM_BETA2 = 3  #: b2
H_ADAM_ONE_MINUS_BETA1 = 21  #: 1 - b1
H_ADAM_ONE_MINUS_BETA2 = 22  #: 1 - b2
H_ADAM_EPS_HAT = 10  #: Keras' epsilon hat: eps_out is scaled by 1 / sqrt(1 - b2^t)
H_ADAM_AMSGRAD = 11  #: AMSGRAD_OFF, AMSGRAD_RAW (PyTorch, Keras) or AMSGRAD_CORRECTED (optax)
# NAdam
H_NADAM_BETA1 = 2  #: b1
H_NADAM_BETA2 = 3  #: b2
H_NADAM_ONE_MINUS_BETA1 = 21  #: 1 - b1
H_NADAM_ONE_MINUS_BETA2 = 22  #: 1 - b2
H_NADAM_MOMENTUM_DECAY = 14  #: psi (4e-3)
H_NADAM_CONSTANT_MU = 16  #: 1: mu_t = b1 (optax) instead of Dozat's schedule
# Adamax
H_ADAMAX_BETA1 = 2  #: b1
H_ADAMAX_BETA2 = 3  #: b2, the decay of the infinity norm
H_ADAMAX_ONE_MINUS_BETA1 = 21  #: 1 - b1
#: Length of the hyperparameter tuple.
HYPER_SIZE = 23

#: Values of the H_ADAM_AMSGRAD entry.
AMSGRAD_OFF = 0
AMSGRAD_RAW = 1
AMSGRAD_CORRECTED = 2

#: Dozat's momentum schedule base: mu_t = b1 (1 - 0.5 * 0.96^(t psi)).
NADAM_BASE = 0.96


# The table of rules --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rule:
    """One per-component optimizer rule: a row of :data:`RULES`, the one description of the rule's shape.

    Attributes
    ----------
    code
        The rule code :func:`prepare` and :func:`update` dispatch on (the row's index in :data:`RULES`).
    name
        The optimizer name of :func:`testbed.optim.make` (the class of :mod:`testbed.optim` that runs this rule has
        it as ``name``, and ``tests/naive.py`` has the NumPy reference under it).
    state
        PyTorch's names of the per-component slots ``s0, s1, ...`` the rule can use; ``len(state)`` is
        :func:`slot_count`.
    coefficients
        What :func:`prepare`'s ``c0, c1, c2, c3`` mean for the rule (``"-"``: unused).
    hyper
        The rule's own hyperparameters: name -> index into the hyper tuple (the ``H_*`` constants). The shared
        entries (:data:`SHARED_HYPER`) come on top.
    complements
        ``(target, source)`` index pairs: the optimizer object stores ``1 - hyper[source]`` (computed in float64)
        at ``target``.
    """

    code: int
    name: str
    state: tuple
    coefficients: tuple
    hyper: types.MappingProxyType
    complements: tuple = ()

    @property
    def slot_count(self):
        return len(self.state)


def _rule(code, name, state, coefficients, hyper, complements=()):
    return Rule(code, name, tuple(state), tuple(coefficients), types.MappingProxyType(dict(hyper)), tuple(complements))


#: The hyperparameters every rule reads (name -> index).
SHARED_HYPER = types.MappingProxyType(
    {
        "weight_decay": H_WEIGHT_DECAY,
        "decoupled": H_DECOUPLED,
        "eps_in": H_EPS_IN,
        "eps_out": H_EPS_OUT,
        "init0": H_INIT0,
        "init1": H_INIT1,
        "init2": H_INIT2,
        "one": H_ONE,
    }
)

#: Every per-component rule, in code order. Everything else about a rule's shape is derived from this table:
#: :func:`slot_count`, the slot names and rule codes of the optimizer classes, :func:`testbed.optim.names`, and the
#: tests that every rule has a class and a NumPy reference.
RULES = (
    _rule(
        SGD,
        "sgd",
        ("momentum_buffer",),
        ("lr", "1 on step 1 (the buffer starts at g), else 0", "-", "-"),
        {
            "momentum": H_SGD_MOMENTUM,
            "dampening": H_SGD_DAMPENING,
            "nesterov": H_SGD_NESTEROV,
            "lr_in_buffer": H_LR_IN_BUFFER,
        },
    ),
    _rule(
        MOMENTUM,
        "momentum",
        ("velocity",),
        ("lr", "-", "-", "-"),
        {"beta": H_MOMENTUM_BETA},
        ((H_MOMENTUM_ONE_MINUS_BETA, H_MOMENTUM_BETA),),
    ),
    _rule(
        ADAGRAD, "adagrad", ("sum",), ("lr / (1 + (t - 1) lr_decay)", "-", "-", "-"), {"lr_decay": H_ADAGRAD_LR_DECAY}
    ),
    _rule(
        RMSPROP,
        "rmsprop",
        ("square_avg", "momentum_buffer", "grad_avg"),
        ("lr", "-", "1 / (1 - a^t) with bias correction, else 1", "eps_out"),
        {
            "alpha": H_RMSPROP_ALPHA,
            "centered": H_RMSPROP_CENTERED,
            "momentum": H_RMSPROP_MOMENTUM,
            "lr_in_buffer": H_LR_IN_BUFFER,
            "bias_correction": H_BIAS_CORRECTION,
        },
        ((H_RMSPROP_ONE_MINUS_ALPHA, H_RMSPROP_ALPHA),),
    ),
    _rule(
        ADAM,
        "adam",
        ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
        ("lr", "1 / (1 - b1^t)", "1 / (1 - b2^t)", "eps_out (times sqrt(c2) with epsilon hat)"),
        {
            "beta1": H_ADAM_BETA1,
            "beta2": H_ADAM_BETA2,
            "eps_hat": H_ADAM_EPS_HAT,
            "amsgrad": H_ADAM_AMSGRAD,
            "bias_correction": H_BIAS_CORRECTION,
        },
        ((H_ADAM_ONE_MINUS_BETA1, H_ADAM_BETA1), (H_ADAM_ONE_MINUS_BETA2, H_ADAM_BETA2)),
    ),
    _rule(
        NADAM,
        "nadam",
        ("exp_avg", "exp_avg_sq", "mu_product"),
        ("lr", "mu_t", "mu_{t+1}", "1 / (1 - b2^t)"),
        {
            "beta1": H_NADAM_BETA1,
            "beta2": H_NADAM_BETA2,
            "momentum_decay": H_NADAM_MOMENTUM_DECAY,
            "constant_mu": H_NADAM_CONSTANT_MU,
            "bias_correction": H_BIAS_CORRECTION,
        },
        ((H_NADAM_ONE_MINUS_BETA1, H_NADAM_BETA1), (H_NADAM_ONE_MINUS_BETA2, H_NADAM_BETA2)),
    ),
    _rule(
        ADAMAX,
        "adamax",
        ("exp_avg", "exp_inf"),
        ("lr", "1 / (1 - b1^t)", "-", "-"),
        {"beta1": H_ADAMAX_BETA1, "beta2": H_ADAMAX_BETA2, "bias_correction": H_BIAS_CORRECTION},
        ((H_ADAMAX_ONE_MINUS_BETA1, H_ADAMAX_BETA1),),
    ),
)
#: Number of per-component rule codes.
N_CODES = len(RULES)
#: The slot count of each code (a tuple of constants, which compiled code indexes like an array).
SLOT_COUNTS = tuple(rule.slot_count for rule in RULES)
#: name -> row.
BY_NAME = types.MappingProxyType({rule.name: rule for rule in RULES})


def slot_count(code):
    """How many of the slots ``s0, s1, s2`` the rule ``code`` can use (a prefix): ``len(RULES[code].state)``, read
    from :data:`SLOT_COUNTS` (0 for an unknown code).

    :func:`update` returns every slot at or beyond this count unchanged, so a kernel may skip their loads and
    stores; an optimizer object's ``n_slots`` (:mod:`testbed.optim`) is at most this (it also drops slots its flags
    leave unused, e.g. SGD without momentum). In a kernel that calls this rule with a constant ``code`` (inlined),
    the count is a constant too and the skipped loads and stores vanish.
    """
    if 0 <= code < N_CODES:
        return SLOT_COUNTS[code]
    return 0


def initial_state(code, hyper):
    """The initial ``(s0, s1, s2)`` of every component (before step 1)."""
    return hyper[H_INIT0], hyper[H_INIT1], hyper[H_INIT2]


def nadam_mu(hyper, t):
    """NAdam's momentum coefficient of step ``t``: Dozat's ``b1 (1 - 0.5 * 0.96^(t psi))``, or ``b1`` (optax)."""
    b1 = hyper[H_NADAM_BETA1]
    if hyper[H_NADAM_CONSTANT_MU] != 0.0:
        return b1
    return b1 * (1.0 - 0.5 * math.pow(NADAM_BASE, t * hyper[H_NADAM_MOMENTUM_DECAY]))


def prepare(code, hyper, t, lr):
    """The per-step coefficients ``(c0, c1, c2, c3)`` of :func:`update` for step ``t`` (1, 2, ...) at rate ``lr``.

    They depend on ``t`` only (not on the component), so a kernel computes them once per step. What each one
    means for each rule is the rule's row: ``RULES[code].coefficients`` (e.g. Adam's ``lr, 1 / (1 - b1^t),
    1 / (1 - b2^t), eps_out``); unused ones are 0. The bias-correction entries are 1 when bias correction is off.
    """
    tf = float(t)
    correct = hyper[H_BIAS_CORRECTION] != 0.0
    if code == SGD:
        return lr, (1.0 if t == 1 else 0.0), 0.0, 0.0
    if code == ADAGRAD:
        return lr / (1.0 + (tf - 1.0) * hyper[H_ADAGRAD_LR_DECAY]), 0.0, 0.0, 0.0
    if code == RMSPROP:
        c2 = 1.0 / (1.0 - math.pow(hyper[H_RMSPROP_ALPHA], tf)) if correct else 1.0
        return lr, 0.0, c2, hyper[H_EPS_OUT]
    if code == ADAM:
        c1 = 1.0 / (1.0 - math.pow(hyper[H_ADAM_BETA1], tf)) if correct else 1.0
        c2 = 1.0 / (1.0 - math.pow(hyper[H_ADAM_BETA2], tf)) if correct else 1.0
        eps = hyper[H_EPS_OUT] * math.sqrt(c2) if hyper[H_ADAM_EPS_HAT] != 0.0 else hyper[H_EPS_OUT]
        return lr, c1, c2, eps
    if code == NADAM:
        c3 = 1.0 / (1.0 - math.pow(hyper[H_NADAM_BETA2], tf)) if correct else 1.0
        return lr, nadam_mu(hyper, tf), nadam_mu(hyper, tf + 1.0), c3
    if code == ADAMAX:
        c1 = 1.0 / (1.0 - math.pow(hyper[H_ADAMAX_BETA1], tf)) if correct else 1.0
        return lr, c1, 0.0, 0.0
    return lr, 0.0, 0.0, 0.0  # MOMENTUM


def update(code, hyper, c0, c1, c2, c3, w, g, s0, s1, s2):
    """One step of the rule ``code`` on one component: returns the new ``(w, s0, s1, s2)``.

    ``c0..c3`` come from :func:`prepare` for this step; ``g`` is the gradient at ``w``; slots a rule does not use
    come back unchanged, and so does everything for an unknown code (:mod:`testbed.optim` validates codes). The
    formulas are in the module docstring.

    The arithmetic runs in the type of the arguments: the rule has no float literal in its arithmetic (the one it
    needs is ``hyper[H_ONE]``), so with a float32 ``hyper`` tuple, float32 coefficients and float32 components it
    computes in float32 (what the fused float32 kernels do, as PyTorch does, at twice the SIMD width), and with
    float64 ``hyper`` (``RuleSpec.hyper``) in float64 whatever the storage type.
    """
    one = hyper[H_ONE]
    zero = one - one
    lr = c0
    wd = hyper[H_WEIGHT_DECAY]
    if wd != 0.0:
        if hyper[H_DECOUPLED] != 0.0:
            w = w * (one - lr * wd)
        else:
            g = g + wd * w

    if code == ADAM:
        b1 = hyper[H_ADAM_BETA1]
        b2 = hyper[H_ADAM_BETA2]
        m = b1 * s0 + hyper[H_ADAM_ONE_MINUS_BETA1] * g
        v = b2 * s1 + hyper[H_ADAM_ONE_MINUS_BETA2] * (g * g)
        amsgrad = hyper[H_ADAM_AMSGRAD]
        if amsgrad == AMSGRAD_RAW:
            s2 = max(s2, v)
            vh = s2 * c2
        elif amsgrad == AMSGRAD_CORRECTED:
            s2 = max(s2, v * c2)
            vh = s2
        else:
            vh = v * c2
        w = w - lr * (m * c1) / (math.sqrt(vh + hyper[H_EPS_IN]) + c3)
        return w, m, v, s2

    if code == SGD:
        mu = hyper[H_SGD_MOMENTUM]
        if mu == 0.0:
            return w - lr * g, s0, s1, s2
        if hyper[H_LR_IN_BUFFER] != 0.0:
            v = mu * s0 + lr * (one - hyper[H_SGD_DAMPENING]) * g
            if hyper[H_SGD_NESTEROV] != 0.0:
                return w - (mu * v + lr * g), v, s1, s2
            return w - v, v, s1, s2
        if c1 != 0.0:  # PyTorch's first step: the buffer starts as a copy of the gradient
            v = g
        else:
            v = mu * s0 + (one - hyper[H_SGD_DAMPENING]) * g
        if hyper[H_SGD_NESTEROV] != 0.0:
            return w - lr * (g + mu * v), v, s1, s2
        return w - lr * v, v, s1, s2

    if code == MOMENTUM:
        v = hyper[H_MOMENTUM_BETA] * s0 + hyper[H_MOMENTUM_ONE_MINUS_BETA] * g
        return w - lr * v, v, s1, s2

    if code == ADAGRAD:
        total = s0 + g * g
        return w - lr * g / (math.sqrt(total + hyper[H_EPS_IN]) + hyper[H_EPS_OUT]), total, s1, s2

    if code == RMSPROP:
        a = hyper[H_RMSPROP_ALPHA]
        u = a * s0 + hyper[H_RMSPROP_ONE_MINUS_ALPHA] * (g * g)
        second = u
        if hyper[H_RMSPROP_CENTERED] != 0.0:
            s2 = a * s2 + hyper[H_RMSPROP_ONE_MINUS_ALPHA] * g
            second = max(u - s2 * s2, zero)  # a variance: rounding must not take it below zero
        r = g / (math.sqrt(second * c2 + hyper[H_EPS_IN]) + c3)
        momentum = hyper[H_RMSPROP_MOMENTUM]
        if momentum > 0.0:
            if hyper[H_LR_IN_BUFFER] != 0.0:
                s1 = momentum * s1 + lr * r
                return w - s1, u, s1, s2
            s1 = momentum * s1 + r
            return w - lr * s1, u, s1, s2
        return w - lr * r, u, s1, s2

    if code == NADAM:
        b1 = hyper[H_NADAM_BETA1]
        b2 = hyper[H_NADAM_BETA2]
        mu = c1
        mu_next = c2
        product = s2 * mu
        m = b1 * s0 + hyper[H_NADAM_ONE_MINUS_BETA1] * g
        v = b2 * s1 + hyper[H_NADAM_ONE_MINUS_BETA2] * (g * g)
        denom = math.sqrt(v * c3 + hyper[H_EPS_IN]) + hyper[H_EPS_OUT]
        w = w - lr * (one - mu) / (one - product) * g / denom
        w = w - lr * mu_next / (one - product * mu_next) * m / denom
        return w, m, v, product

    if code == ADAMAX:
        m = hyper[H_ADAMAX_BETA1] * s0 + hyper[H_ADAMAX_ONE_MINUS_BETA1] * g
        u = max(hyper[H_ADAMAX_BETA2] * s1, abs(g) + hyper[H_EPS_IN])
        return w - lr * c1 * m / (u + hyper[H_EPS_OUT]), m, u, s2

    return w, s0, s1, s2


def update_component(code, n_slots, hyper, c0, c1, c2, c3, w, g, s0, s1, s2, i):
    """:func:`update` of component ``i`` of the arrays, in place, reading and writing only the first ``n_slots``
    slot arrays (a rule returns the others unchanged, so the caller may pass short placeholders for them).

    The loop body of both fused step kernels (:mod:`testbed.kernels.optim`), so they share the memory traffic too.
    Returns the new ``w[i]``, from which the kernels count the non-finite parameters a step produces.
    """
    zero = hyper[H_ONE] - hyper[H_ONE]
    a0 = s0[i] if n_slots > 0 else zero
    a1 = s1[i] if n_slots > 1 else zero
    a2 = s2[i] if n_slots > 2 else zero
    w_new, b0, b1, b2 = update(code, hyper, c0, c1, c2, c3, w[i], g[i], a0, a1, a2)
    w[i] = w_new
    if n_slots > 0:
        s0[i] = b0
    if n_slots > 1:
        s1[i] = b1
    if n_slots > 2:
        s2[i] = b2
    return w_new
