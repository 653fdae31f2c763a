"""Optimizers: PyTorch's names and defaults, one fused kernel per step, the libraries' conventions side by side.

An optimizer holds hyperparameters; its state (the step counter and up to three per-component arrays) lives in an
:class:`OptState` made by ``init``; ``step`` updates the parameters and the state in place with one pass over
memory (:mod:`testbed.kernels.optim`). The arithmetic is written once, per component, in
:mod:`testbed.rules.optimizers` (the formulas are in its docstring); the schedules in
:mod:`testbed.rules.schedules`.

>>> import numpy as np
>>> opt = Adam(lr=1e-3)                        # torch.optim.Adam's defaults
>>> w = np.ones(4); state = opt.init(w)
>>> opt.step(w, np.full(4, 0.5), state)        # the first Adam step moves each component by lr
True
>>> np.round(w, 6).tolist()
[0.999, 0.999, 0.999, 0.999]

Conventions
===========

``convention=`` picks where eps goes, the initial accumulators, and the forms in which the libraries differ; the
default eps of the library when ``eps`` is not given. Learning rates, betas and the other hyperparameters keep
PyTorch's names and defaults in every convention (pass the library's values to reproduce it exactly: e.g. Keras'
RMSprop uses ``rho = 0.9`` and ``lr = 1e-3``).

=========  ===========================  ===========================  ===========================  ======================
rule       torch (default)              optax                        keras                        lecture
=========  ===========================  ===========================  ===========================  ======================
SGD        v = g on step 1; w -= lr v   same as torch                v = mu v + lr g; w -= v      same as torch
AdaGrad    S0 = 0, eps 1e-10 outside    S0 = 0.1, eps 1e-7 inside    S0 = 0.1, eps 1e-7 inside    S0 = 0, 1e-8 inside
RMSProp    u0 = 0, eps 1e-8 outside,    eps 1e-8 inside, lr in the   eps 1e-7 inside, lr in the   eps 1e-8 inside
           lr outside the momentum      momentum buffer              momentum buffer
Adam       eps 1e-8 outside; AMSGrad    eps 1e-8 outside; AMSGrad    epsilon hat 1e-7; AMSGrad    eps 1e-8 inside the
           max of raw v                 max of corrected v           max of raw v                 root
NAdam      Dozat's mu_t, eps 1e-8 out   constant mu_t = b1           Dozat's mu_t, eps 1e-7 out   eps 1e-8 inside
Adamax     eps 1e-8 inside the max      same as torch                eps 1e-7 outside the max     eps 1e-8 inside max
=========  ===========================  ===========================  ===========================  ======================

.. warning:: The libraries disagree, and the differences are not rounding: eps inside the root moves the first
   Adam step of a tiny gradient by orders of magnitude; Keras' and optax's momentum buffers hold ``lr``-scaled steps,
   which differ from PyTorch's as soon as the rate is scheduled; PyTorch's heavy ball starts with ``v = g`` while a
   zero-initialised buffer (the lecture's ``Momentum``) starts at ``(1 - b) g``; AdaGrad's ``S0 = 0.1`` of
   optax/Keras damps the first steps; optax's AMSGrad compares bias-corrected second moments.

Non-finite gradients and parameters
===================================

Before a step the gradients are checked (a read of ``grads``). ``nonfinite="raise"`` (default) raises
:class:`NonFiniteError` (a ValueError naming the optimizer, the step and the count), ``"skip"`` skips the step
(counted in ``state.skipped``); either way parameters and state are untouched. A caller that has already counted
the gradient's non-finite entries passes the count (``step(..., grads_nonfinite=count)``) and the step skips its
own read: :func:`testbed.train.fit` does, with the count its step kernel takes while the gradient is in cache (a
read of 42 MB, 2-4 ms, saved on the big net of ``benchmarks/bench_train.py``).

The step kernel also counts, in the same pass, the parameters it makes NaN or infinite from finite gradients (an
overflow: ``Adam(lr=1e300)`` on float32, a diverging SGD). Such a step raises :class:`NonFiniteError` with
``where="params"`` under either policy: a one-pass step cannot be undone, so it is applied (``state.step`` counts
it), and it cannot be skipped silently either: every later gradient, taken at a NaN parameter, would be skipped
in turn.

Newton and saddle-free Newton are dense: :func:`newton_step` and :func:`saddle_free_newton_step` (NumPy, small d),
and the :class:`Newton` and :class:`SaddleFreeNewton` optimizers, whose ``step`` takes the Hessian.

Adding an optimizer
===================

A per-component rule takes four edits, each in one place; the tests fail on any one that is missing.

1. **The rule**, in :mod:`testbed.rules.optimizers`: a code ``NEW = 7`` (the next row number), named
   hyperparameter entries ``H_NEW_*`` (reuse an index only for a parameter that plays the same part in another
   rule, e.g. a first-moment decay in entry 2; never give one rule two names for one entry), a branch in ``prepare``
   for the per-step coefficients ``c0..c3`` and one in ``update`` for the step of one component. Scalars and
   ``math`` only, no float literal in the arithmetic (``hyper[H_ONE]`` is 1 in the arithmetic type), the state in
   the slots ``s0, s1, s2`` used as a prefix. The fused kernels, their CUDA twin and the Monte Carlo kernels
   dispatch on the code: they need no edit.
2. **Its row** in ``RULES``: ``_rule(NEW, "name", state names, what c0..c3 mean, {hyperparameter: H_NEW_*},
   complements)``. The slot count, the class's ``code`` and ``slot_names`` and :func:`names` / :func:`make` are
   derived from it.
3. **Its class**, here: a subclass of :class:`Optimizer` with ``name = "name"`` and ``code = rules.NEW`` whose
   ``__init__`` takes PyTorch's argument names and defaults (plus ``schedule``, ``convention``, ``nonfinite``,
   ``backend``), calls ``self._setup``, checks every argument, fills ``self._hyper`` by the row's ``H_NEW_*`` names
   and sets ``n_slots`` (at most the row's slot count; fewer where a flag leaves slots unused). A row without a
   class stops the import with a message naming it. A preset of an existing rule (AdamW is Adam with decoupled
   decay) is a subclass with its own ``name``, listed in ``_PRESETS``.
4. **Its NumPy reference**, in ``tests/naive.py``: ``name(w0, grads, lrs, **hyper) -> (w, {state name: array})``
   written from the paper or the library's source (never from testbed), its defaults the class's.
   ``test_every_rule_has_a_class_and_a_numpy_reference`` runs every row of the table against its reference; add
   the rule's forms to ``CASES`` (checked in every convention, float32 and float64) and to ``TARGET_CASES`` (CPU
   against CUDA, bit for bit) in ``tests/test_optim.py``.

Then run ``tests/test_optim.py``, ``tests/test_ptx.py`` (the CUDA kernels still compile) and
``tests/test_golden.py``.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import numpy as np
import numpy.typing as npt

from . import backend as backends
from . import validation
from ._types import Backend, Convention, NonfinitePolicy
from .kernels import optim as kernels
from .rules import optimizers as rules
from .rules import schedules as schedule_rules

CONVENTIONS = ("torch", "optax", "keras", "lecture")
NONFINITE_POLICIES = ("raise", "skip")

#: Components per CPU thread task in the fused step (a kernel argument, like every constant).
CPU_CHUNK = 16384

# ----------------------------------------------------------------------------------------------------------------
# Schedules


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule: ``schedule(lr, t)`` is the rate of step ``t`` (1, 2, ...) from base rate ``lr``."""

    name: str
    code: int
    params: tuple

    def __call__(self, lr: float, t: int) -> float:
        return schedule_rules.learning_rate(self.code, self.params, float(lr), int(t))


#: schedule name -> (code, {parameter: default or None when required})
_SCHEDULES = {
    "constant": (schedule_rules.CONSTANT, {}),
    "step": (schedule_rules.STEP, {"step_size": None, "gamma": 0.1}),
    "exponential": (schedule_rules.EXPONENTIAL, {"gamma": None}),
    "inverse_sqrt": (schedule_rules.INVERSE_SQRT, {}),
    "cosine": (schedule_rules.COSINE, {"t_max": None, "eta_min": 0.0}),
    "linear_warmup": (schedule_rules.CONSTANT, {}),
}


def schedule(name: str | Schedule = "constant", *, warmup_steps: int = 0, **params: float) -> Schedule:
    """The learning-rate schedule ``name`` (see :mod:`testbed.rules.schedules` for the formulas).

    ``constant``; ``step(step_size, gamma=0.1)``; ``exponential(gamma)``; ``inverse_sqrt`` (the lecture's
    "decaying" rate ``lr / sqrt(t)``); ``cosine(t_max, eta_min=0)``; ``linear_warmup(warmup_steps)``. Every schedule
    takes ``warmup_steps`` (a linear ramp ``t / warmup_steps`` over the first steps).

    Parameters
    ----------
    name : {"constant", "step", "exponential", "inverse_sqrt", "cosine", "linear_warmup"} or Schedule
        The schedule; a :class:`Schedule` is returned as it is (with no parameters).
    warmup_steps : int
        The length of the linear warmup (non-negative; positive for ``linear_warmup``).
    **params
        The schedule's parameters: ``step_size``, ``gamma``, ``t_max``, ``eta_min`` as listed above.

    Returns
    -------
    Schedule

    Raises
    ------
    ValueError
        If the name or a parameter is unknown, a needed parameter is missing or a value is out of range.

    Examples
    --------
    >>> schedule("step", step_size=2, gamma=0.5)(1.0, 3)
    0.5
    """
    if isinstance(name, Schedule):
        if params or warmup_steps:
            raise ValueError("pass schedule parameters with the schedule's name, not with a Schedule object")
        return name
    if not isinstance(name, str) or name not in _SCHEDULES:
        raise validation.unknown_name_error("schedule", name, tuple(_SCHEDULES))
    code, accepted = _SCHEDULES[name]
    unknown = set(params) - set(accepted)
    if unknown:
        valid = ", ".join(sorted(accepted) + ["warmup_steps"])
        raise ValueError(f"schedule {name!r} takes no parameter {sorted(unknown)}; valid parameters: {valid}")
    values = {}
    for key, default in accepted.items():
        if key not in params and default is None:
            raise ValueError(f"schedule {name!r} needs {key}")
        values[key] = params.get(key, default)
    warmup_steps = validation.check_non_negative_int(warmup_steps, "warmup_steps")
    if name == "linear_warmup" and warmup_steps == 0:
        raise ValueError("schedule 'linear_warmup' needs warmup_steps > 0")
    packed = [0.0] * schedule_rules.SCHEDULE_SIZE
    if "step_size" in values:
        packed[schedule_rules.P_STEP_SIZE] = float(validation.check_positive_int(values["step_size"], "step_size"))
    if "gamma" in values:
        packed[schedule_rules.P_GAMMA] = validation.check_finite(values["gamma"], "gamma", minimum=0.0, strict=True)
    if "t_max" in values:
        packed[schedule_rules.P_T_MAX] = float(validation.check_positive_int(values["t_max"], "t_max"))
        packed[schedule_rules.P_ETA_MIN] = validation.check_finite(values["eta_min"], "eta_min", minimum=0.0)
    packed[schedule_rules.P_WARMUP] = float(warmup_steps)
    return Schedule(name, code, tuple(packed))


def schedule_names() -> tuple[str, ...]:
    """Every schedule name."""
    return tuple(_SCHEDULES)


# ----------------------------------------------------------------------------------------------------------------
# State and rule specification


class NonFiniteError(ValueError):
    """A step met non-finite numbers: ``where`` is ``"grads"`` (refused before the step: nothing changed) or
    ``"params"`` (the step, from finite gradients, produced them: it was applied). ``optimizer`` (its name),
    ``step`` (the step's number, 1, 2, ...) and ``count`` (how many values) say which and how many."""

    def __init__(self, message: str, optimizer: str, step: int, count: int, where: str) -> None:
        super().__init__(message)
        self.optimizer, self.step, self.count, self.where = optimizer, step, count, where


@dataclasses.dataclass
class OptState:
    """An optimizer's state: the step counter, the per-component slot arrays and the count of skipped steps.

    ``state["exp_avg"]`` (PyTorch's state names, see ``slot_names``) gives a slot as an array shaped like the
    parameters; ``slots`` holds all three (unused ones are length-1 placeholders).
    """

    step: int
    slots: list
    slot_names: tuple
    shape: tuple
    skipped: int = 0

    def __getitem__(self, name: str) -> Any:
        if name not in self.slot_names:
            raise validation.unknown_name_error("state slot", name, self.slot_names)
        slot = self.slots[self.slot_names.index(name)]
        return slot.reshape(self.shape) if isinstance(slot, np.ndarray) else slot


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    """Everything a kernel needs to run an optimizer per component (see :mod:`testbed.rules.optimizers`).

    ``code`` and ``hyper`` (float64, laid out by ``rules.optimizers.H_*``) for ``prepare`` and ``update``;
    ``n_slots`` state slots (a prefix of s0, s1, s2) named ``slot_names``, starting at ``initial_state``; the base
    rate ``lr`` and the schedule (``schedule_code``, ``schedule_params``) for ``rules.schedules.learning_rate``.
    """

    code: int
    hyper: tuple
    n_slots: int
    slot_names: tuple
    initial_state: tuple
    lr: float
    schedule_code: int
    schedule_params: tuple

    def hyper_as(self, dtype: npt.DTypeLike) -> tuple:
        """``hyper`` as a tuple of ``dtype`` scalars (float32 arithmetic in ``update`` for float32 storage)."""
        kind = validation.check_dtype(dtype).type
        return tuple(kind(value) for value in self.hyper)


# ----------------------------------------------------------------------------------------------------------------
# Checks


def _check_lr(lr):
    return validation.check_finite(lr, "lr", minimum=0.0, strict=True)


def _check_betas(betas):
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    return validation.check_unit_interval(b1, "betas[0]"), validation.check_unit_interval(b2, "betas[1]")


# ----------------------------------------------------------------------------------------------------------------
# Optimizers

#: rule code -> the Optimizer subclass whose ``name`` is the row's name (filled as the classes are defined).
_RULE_CLASSES = {}


class Optimizer:
    """Base class: hyperparameters in ``_hyper`` (a dict of ``rules.optimizers.H_*`` -> float), a rule code, slots.

    Subclasses set ``name`` and ``code`` (a row of ``rules.optimizers.RULES``; ``slot_names`` comes from that row),
    set ``n_slots`` and fill ``_hyper``. Every optimizer takes ``schedule`` (a :class:`Schedule`, a schedule name,
    or None for constant), ``convention`` (one of :data:`CONVENTIONS`), ``nonfinite`` ("raise" or "skip") and
    ``backend`` ("cpu", "cuda" or "auto").
    """

    name = "optimizer"
    code = -1
    slot_names = ()
    #: Hyperparameters that ``repr`` shows beside the learning rate, as keyword arguments of the constructor.
    _repr_fields = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        rule = rules.RULES[cls.code]
        cls.slot_names = rule.state
        if cls.name == rule.name:  # the class that runs the row (AdamW, a preset of Adam, has its own name)
            if rule.code in _RULE_CLASSES:
                raise TypeError(f"two optimizer classes run rule {rule.name!r}: {_RULE_CLASSES[rule.code]} and {cls}")
            _RULE_CLASSES[rule.code] = cls

    def _setup(self, lr, schedule_, convention, nonfinite, backend):
        self.lr = _check_lr(lr)
        self.convention = validation.check_choice(convention, "convention", CONVENTIONS)
        self.nonfinite = validation.check_choice(nonfinite, "nonfinite", NONFINITE_POLICIES)
        self.backend = backends.resolve(backend)
        self.schedule = schedule("constant") if schedule_ is None else schedule(schedule_)
        self._hyper = {rules.H_ONE: 1.0}
        self.n_slots = len(self.slot_names)

    def _eps(self, eps, default, inside):
        """Place eps (or the convention's default) inside or outside the root."""
        value = default if eps is None else validation.check_finite(eps, "eps", minimum=0.0)
        self._hyper[rules.H_EPS_IN if inside else rules.H_EPS_OUT] = value
        self.eps = value
        self.eps_inside = inside

    def _weight_decay(self, weight_decay, decoupled):
        self.weight_decay = validation.check_finite(weight_decay, "weight_decay", minimum=0.0)
        self._hyper[rules.H_WEIGHT_DECAY] = self.weight_decay
        self._hyper[rules.H_DECOUPLED] = float(validation.check_flag(decoupled, "decoupled_weight_decay"))

    @property
    def hyper(self) -> tuple[float, ...]:
        """The float64 hyperparameter tuple of the rule (layout ``rules.optimizers.H_*``)."""
        values = [0.0] * rules.HYPER_SIZE
        for index, value in self._hyper.items():
            values[index] = float(value)
        for target, source in rules.RULES[self.code].complements:
            values[target] = 1.0 - values[source]
        return tuple(values)

    def rule_spec(self) -> RuleSpec:
        """The :class:`RuleSpec` with which an external kernel runs this optimizer per component."""
        hyper = self.hyper
        return RuleSpec(
            code=self.code,
            hyper=hyper,
            n_slots=self.n_slots,
            slot_names=tuple(self.slot_names[: self.n_slots]),
            initial_state=tuple(rules.initial_state(self.code, hyper)),
            lr=self.lr,
            schedule_code=self.schedule.code,
            schedule_params=self.schedule.params,
        )

    def learning_rate(self, t: int) -> float:
        """The scheduled learning rate of step ``t`` (1, 2, ...)."""
        return self.schedule(self.lr, t)

    def init(self, params: Any) -> OptState:
        """A fresh :class:`OptState` for ``params`` (step 0, slots at their initial values, same dtype and kind).

        Parameters
        ----------
        params : numpy.ndarray or CUDA device array
            The parameters (C-contiguous, float32 or float64); only their size, dtype, shape and kind are read.

        Returns
        -------
        OptState

        Raises
        ------
        ValueError
            If ``params`` is not a C-contiguous float array.
        """
        flat = validation.check_array(params, "params")
        init = rules.initial_state(self.code, self.hyper)
        slots = []
        for index in range(3):
            size = flat.size if index < self.n_slots else 1
            slot = np.full(size, init[index], dtype=flat.dtype)
            slots.append(backends.to_device(slot) if validation.is_device_array(params) else slot)
        return OptState(0, slots, tuple(self.slot_names[: self.n_slots]), tuple(params.shape))

    def _check_step(self, params, grads, state):
        w = validation.check_array(params, "params")
        g = validation.check_array(grads, "grads")
        if tuple(params.shape) != tuple(grads.shape):
            raise ValueError(f"params and grads must have the same shape, got {params.shape} and {grads.shape}")
        if params.dtype != grads.dtype:
            raise ValueError(f"params and grads must have the same dtype, got {params.dtype} and {grads.dtype}")
        if validation.is_device_array(params) != validation.is_device_array(grads):
            raise ValueError("params and grads must both be numpy arrays or both be device arrays")
        if isinstance(params, np.ndarray) and not params.flags.writeable:
            raise ValueError("params must be writeable (the step updates it in place)")
        if not isinstance(state, OptState) or len(state.slots) != 3:
            raise ValueError(
                f"state must be the OptState returned by this optimizer's init, got {type(state).__name__}"
            )
        if state.slot_names != tuple(self.slot_names[: self.n_slots]):
            raise ValueError(
                f"state holds slots {state.slot_names}, this optimizer needs {self.slot_names[: self.n_slots]}"
            )
        for index, slot in enumerate(state.slots):
            size = w.size if index < self.n_slots else 1
            if (
                slot.size != size
                or slot.dtype != w.dtype
                or validation.is_device_array(slot) != validation.is_device_array(params)
            ):
                raise ValueError("state does not match params (size, dtype or device); make it with init(params)")
        if self.backend == "cpu" and validation.is_device_array(params):
            raise ValueError("backend='cpu' needs numpy arrays, got device arrays; use backend='cuda'")
        return w, g

    def _count_nonfinite(self, g):
        if self.backend == "cpu":
            return int(kernels.count_nonfinite_cpu(g))
        device_g = g if validation.is_device_array(g) else backends.to_device(g)
        count = backends.to_device(np.zeros(1, dtype=np.int64))
        blocks, threads = backends.launch_shape(g.size)
        kernels.count_nonfinite_gpu()[blocks, threads](device_g, count)
        return int(backends.to_host(count)[0])

    def step(self, params: Any, grads: Any, state: OptState, *, grads_nonfinite: int | None = None) -> bool:
        """One step, in place on ``params`` and ``state``; returns True, or False when a non-finite step was skipped.

        ``grads`` is the gradient at ``params``; both are C-contiguous arrays of one dtype and shape (numpy, or CUDA
        device arrays with ``backend="cuda"``).

        Parameters
        ----------
        params : numpy.ndarray or CUDA device array
            The parameters, updated in place.
        grads : numpy.ndarray or CUDA device array
            The gradient at ``params``: same shape, dtype and kind.
        state : OptState
            This optimizer's state for ``params`` (from :meth:`init`), updated in place.
        grads_nonfinite : int or None
            The number of NaN or infinite entries of ``grads``, when the caller has counted them (as
            :class:`testbed.train.Step` does while it writes the gradient); the step then trusts it and does not read
            ``grads`` to count them. None (default): the step counts them.

        Returns
        -------
        bool
            True when the step was taken, False when it was skipped (``nonfinite="skip"``).

        Raises
        ------
        NonFiniteError
            If ``grads`` holds NaN or inf (``nonfinite="raise"``; nothing changed), or the step made a parameter
            non-finite (it was applied).
        ValueError
            If the arrays or the state do not match (the message says which), or ``grads_nonfinite`` is not None or
            an integer from 0 to ``grads.size``.
        """
        w, g = self._check_step(params, grads, state)
        if grads_nonfinite is not None:
            grads_nonfinite = validation.check_non_negative_int(grads_nonfinite, "grads_nonfinite")
            if grads_nonfinite > g.size:
                raise ValueError(f"grads_nonfinite must be at most grads.size ({g.size}), got {grads_nonfinite}")
        if self.backend == "cuda" and not validation.is_device_array(params):  # copied over for the step
            nbytes = w.nbytes + g.nbytes + sum(slot.nbytes for slot in state.slots)
            backends.check_memory(nbytes, f"a step on {w.size} parameters", device=True)
        with backends.threads_for(w.size):
            return self._step(w, g, params, state, grads_nonfinite)

    def _step(self, w, g, params, state, counted=None):
        t = state.step + 1
        bad = self._count_nonfinite(g) if counted is None else counted
        if bad:
            if self.nonfinite == "raise":
                raise NonFiniteError(
                    f"{type(self).__name__} step {t}: grads holds {bad} NaN or infinite value(s) of {g.size}; params "
                    "and state are unchanged (pass nonfinite='skip' to skip such steps)",
                    self.name,
                    t,
                    bad,
                    "grads",
                )
            state.skipped += 1
            return False
        kind = w.dtype.type
        coefficients = rules.prepare(self.code, self.hyper, t, self.learning_rate(t))
        args = (self.code, tuple(kind(h) for h in self.hyper)) + tuple(kind(c) for c in coefficients)
        if self.backend == "cpu":
            overflowed = kernels.step_cpu(*args, w, g, *state.slots, self.n_slots, CPU_CHUNK)
        else:
            overflowed = self._step_cuda(args, params, w, g, state)
        state.step = t
        if overflowed:
            raise NonFiniteError(
                f"{type(self).__name__} step {t} made {overflowed} of {w.size} parameter(s) NaN or infinite from "
                f"finite gradients (lr {self.learning_rate(t):g} at this step): the step overflowed; it was applied, "
                "so params and state hold its result (lower the learning rate)",
                self.name,
                t,
                int(overflowed),
                "params",
            )
        return True

    def _step_cuda(self, args, params, w, g, state):
        """The CUDA step; returns the number of non-finite parameters it produced."""
        on_device = validation.is_device_array(params)
        arrays = [w, g] + list(state.slots)
        device = arrays if on_device else [backends.to_device(a) for a in arrays]
        count = backends.to_device(np.zeros(1, dtype=np.int64))
        blocks, threads = backends.launch_shape(w.size)
        kernels.step_gpu()[blocks, threads](*args, *device, self.n_slots, count)
        if not on_device:
            w[...] = backends.to_host(device[0])
            for index in range(self.n_slots):
                state.slots[index][...] = backends.to_host(device[2 + index])
        return int(backends.to_host(count)[0])

    def __repr__(self):
        shown = "".join(f", {name}={getattr(self, name)!r}" for name in self._repr_fields)
        return f"{type(self).__name__}(lr={self.lr}{shown}, convention={self.convention!r}, backend={self.backend!r})"


class SGD(Optimizer):
    """Stochastic gradient descent with heavy-ball or Nesterov momentum, PyTorch's ``torch.optim.SGD``.

    ::

        g <- g + wd w                         (L2 weight decay)
        v <- g on step 1, else mu v + (1 - dampening) g;   w <- w - lr v      (Polyak 1964)
        Nesterov: w <- w - lr (g + mu v)                                       (Sutskever et al. 2013)

    Keras' form (``convention="keras"``) keeps ``lr`` in the buffer, ``v <- mu v + lr g; w <- w - v``: equal under a
    constant rate, different under a schedule. optax's ``sgd`` equals PyTorch's (no dampening). State:
    ``momentum_buffer`` when ``momentum > 0``.

    Parameters
    ----------
    lr : float
        The base learning rate (positive).
    momentum : float
        ``mu`` in [0, 1); 0 is plain gradient descent.
    dampening : float
        In [0, 1].
    weight_decay : float
        L2 weight decay ``wd`` (non-negative), added to the gradient.
    nesterov : bool
        Nesterov's momentum (needs momentum > 0 and dampening 0).
    schedule : Schedule, str or None
        The learning-rate schedule (a :func:`schedule` or its name); None is constant.
    convention : {"torch", "optax", "keras", "lecture"}
        Whose form of the formula and defaults to follow (see the table above where they differ).
    nonfinite : {"raise", "skip"}
        On non-finite gradients, raise :class:`NonFiniteError` (nothing changed) or skip the step.
    backend : {"cpu", "cuda", "auto"}
        Where :meth:`Optimizer.step` runs.

    Raises
    ------
    ValueError
        If a hyperparameter is out of range or of the wrong kind (the message names it and the valid choices).

    References
    ----------
    B. T. Polyak, "Some methods of speeding up the convergence of iteration methods", USSR Comput. Math. Math.
    Phys. 4 (1964); I. Sutskever, J. Martens, G. Dahl, G. Hinton, "On the importance of initialization and momentum
    in deep learning", ICML 2013.
    """

    name = "sgd"
    _repr_fields = ("momentum", "dampening", "nesterov")
    code = rules.SGD

    def __init__(
        self,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        schedule: Schedule | str | None = None,
        convention: Convention = "torch",
        nonfinite: NonfinitePolicy = "raise",
        backend: Backend = "cpu",
    ) -> None:
        self._setup(lr, schedule, convention, nonfinite, backend)
        self.momentum = validation.check_unit_interval(momentum, "momentum")
        self.dampening = validation.check_finite(dampening, "dampening", minimum=0.0)
        if self.dampening > 1.0:
            raise ValueError(f"dampening must be in [0, 1], got {dampening!r}")
        self.nesterov = validation.check_flag(nesterov, "nesterov")
        if self.nesterov and (self.momentum == 0.0 or self.dampening != 0.0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")
        self._weight_decay(weight_decay, False)
        self._hyper.update(
            {
                rules.H_SGD_MOMENTUM: self.momentum,
                rules.H_SGD_DAMPENING: self.dampening,
                rules.H_SGD_NESTEROV: float(self.nesterov),
                rules.H_LR_IN_BUFFER: float(self.convention == "keras"),
            }
        )
        self.n_slots = 1 if self.momentum > 0.0 else 0


class Momentum(Optimizer):
    """The lecture's momentum, a running average of the gradients::

        v <- b v + (1 - b) g,  v0 = 0;   w <- w - lr v

    Heavy ball (:class:`SGD`) with dampening ``b`` except for heavy ball's first step ``v = g``; ``b = 0`` is SGD.
    The same in every convention. State: ``velocity``.

    Parameters
    ----------
    lr : float
        The base learning rate (positive).
    beta : float
        The averaging factor ``b`` in [0, 1).
    weight_decay : float
        L2 weight decay ``wd`` (non-negative), added to the gradient.
    schedule : Schedule, str or None
        The learning-rate schedule (a :func:`schedule` or its name); None is constant.
    convention : {"torch", "optax", "keras", "lecture"}
        Whose form of the formula and defaults to follow (see the table above where they differ).
    nonfinite : {"raise", "skip"}
        On non-finite gradients, raise :class:`NonFiniteError` (nothing changed) or skip the step.
    backend : {"cpu", "cuda", "auto"}
        Where :meth:`Optimizer.step` runs.

    Raises
    ------
    ValueError
        If a hyperparameter is out of range or of the wrong kind (the message names it and the valid choices).

    References
    ----------
    B. T. Polyak, "Some methods of speeding up the convergence of iteration methods", USSR Comput. Math. Math.
    Phys. 4 (1964).
    """

    name = "momentum"
    code = rules.MOMENTUM

    def __init__(
        self,
        lr: float = 1e-3,
        beta: float = 0.9,
        weight_decay: float = 0.0,
        *,
        schedule: Schedule | str | None = None,
        convention: Convention = "torch",
        nonfinite: NonfinitePolicy = "raise",
        backend: Backend = "cpu",
    ) -> None:
        self._setup(lr, schedule, convention, nonfinite, backend)
        self.beta = validation.check_unit_interval(beta, "beta")
        self._weight_decay(weight_decay, False)
        self._hyper[rules.H_MOMENTUM_BETA] = self.beta


class AdaGrad(Optimizer):
    """AdaGrad (Duchi, Hazan & Singer 2011), PyTorch's ``torch.optim.Adagrad``::

        S <- S + g^2;   w <- w - lr / (1 + (t - 1) lr_decay) * g / (sqrt(S) + eps)

    ======================  ===========  ==========  ==========  ========
    convention              torch        optax       keras       lecture
    ======================  ===========  ==========  ==========  ========
    initial accumulator S0  0            0.1         0.1         0
    eps                     1e-10 out    1e-7 in     1e-7 in     1e-8 in
    ======================  ===========  ==========  ==========  ========

    ("in": ``sqrt(S + eps)``). State: ``sum``.

    Parameters
    ----------
    lr : float
        The base learning rate (positive).
    lr_decay : float
        The rate's decay (non-negative).
    weight_decay : float
        L2 weight decay ``wd`` (non-negative), added to the gradient.
    initial_accumulator_value : float or None
        ``S0`` (non-negative); None takes the convention's default.
    eps : float or None
        The denominator's eps (non-negative); None takes the convention's default.
    schedule : Schedule, str or None
        The learning-rate schedule (a :func:`schedule` or its name); None is constant.
    convention : {"torch", "optax", "keras", "lecture"}
        Whose form of the formula and defaults to follow (see the table above where they differ).
    nonfinite : {"raise", "skip"}
        On non-finite gradients, raise :class:`NonFiniteError` (nothing changed) or skip the step.
    backend : {"cpu", "cuda", "auto"}
        Where :meth:`Optimizer.step` runs.

    Raises
    ------
    ValueError
        If a hyperparameter is out of range or of the wrong kind (the message names it and the valid choices).

    References
    ----------
    J. Duchi, E. Hazan, Y. Singer, "Adaptive subgradient methods for online learning and stochastic
    optimization", JMLR 12 (2011).
    """

    name = "adagrad"
    code = rules.ADAGRAD
    _CONVENTIONS = {
        "torch": (0.0, 1e-10, False),
        "optax": (0.1, 1e-7, True),
        "keras": (0.1, 1e-7, True),
        "lecture": (0.0, 1e-8, True),
    }

    def __init__(
        self,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float | None = None,
        eps: float | None = None,
        *,
        schedule: Schedule | str | None = None,
        convention: Convention = "torch",
        nonfinite: NonfinitePolicy = "raise",
        backend: Backend = "cpu",
    ) -> None:
        self._setup(lr, schedule, convention, nonfinite, backend)
        s0, default_eps, inside = self._CONVENTIONS[self.convention]
        self.lr_decay = validation.check_finite(lr_decay, "lr_decay", minimum=0.0)
        if initial_accumulator_value is not None:
            s0 = validation.check_finite(initial_accumulator_value, "initial_accumulator_value", minimum=0.0)
        self.initial_accumulator_value = s0
        self._eps(eps, default_eps, inside)
        self._weight_decay(weight_decay, False)
        self._hyper.update({rules.H_ADAGRAD_LR_DECAY: self.lr_decay, rules.H_INIT0: s0})


class RMSProp(Optimizer):
    """RMSProp (Tieleman & Hinton 2012), PyTorch's ``torch.optim.RMSprop``::

        u <- alpha u + (1 - alpha) g^2;   centered: gbar <- alpha gbar + (1 - alpha) g, u' = u - gbar^2
        r = g / (sqrt(u' / bc) + eps)     (bc = 1 - alpha^t if bias_correction, an extension; else 1)
        momentum > 0:  buf <- momentum buf + r;  w <- w - lr buf      (PyTorch)
                       buf <- momentum buf + lr r;  w <- w - buf      (Keras, optax)
        else:          w <- w - lr r

    ==============  ============  ============  ============  ========
    convention      torch         optax         keras         lecture
    ==============  ============  ============  ============  ========
    eps             1e-8 outside  1e-8 inside   1e-7 inside   1e-8 in
    lr in buffer    no            yes           yes           no
    ==============  ============  ============  ============  ========

    ``initial_accumulator_value`` is ``u0`` (optax's ``initial_scale``, 0 by default). Without bias correction the
    first step is about ``lr / sqrt(1 - alpha)``; with it, ``RMSProp`` equals :class:`Adam` with ``b1 = 0``.
    State: ``square_avg``, then ``momentum_buffer`` (momentum > 0 or centered), then ``grad_avg`` (centered).

    Parameters
    ----------
    lr : float
        The base learning rate (positive).
    alpha : float
        The averaging factor in [0, 1).
    eps : float or None
        The denominator's eps (non-negative); None takes the convention's default.
    weight_decay : float
        L2 weight decay ``wd`` (non-negative), added to the gradient.
    momentum : float
        The momentum in [0, 1); 0 for none.
    centered : bool
        Subtract the squared running mean of g.
    initial_accumulator_value : float
        ``u0`` (non-negative).
    bias_correction : bool
        Divide ``u`` by ``1 - alpha^t`` (an extension).
    schedule : Schedule, str or None
        The learning-rate schedule (a :func:`schedule` or its name); None is constant.
    convention : {"torch", "optax", "keras", "lecture"}
        Whose form of the formula and defaults to follow (see the table above where they differ).
    nonfinite : {"raise", "skip"}
        On non-finite gradients, raise :class:`NonFiniteError` (nothing changed) or skip the step.
    backend : {"cpu", "cuda", "auto"}
        Where :meth:`Optimizer.step` runs.

    Raises
    ------
    ValueError
        If a hyperparameter is out of range or of the wrong kind (the message names it and the valid choices).

    References
    ----------
    T. Tieleman, G. Hinton, Lecture 6.5 of "Neural networks for machine learning", Coursera (2012).
    """

    name = "rmsprop"
    code = rules.RMSPROP
    _CONVENTIONS = {
        "torch": (1e-8, False, False),
        "optax": (1e-8, True, True),
        "keras": (1e-7, True, True),
        "lecture": (1e-8, True, False),
    }

    def __init__(
        self,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float | None = None,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        initial_accumulator_value: float = 0.0,
        bias_correction: bool = False,
        *,
        schedule: Schedule | str | None = None,
        convention: Convention = "torch",
        nonfinite: NonfinitePolicy = "raise",
        backend: Backend = "cpu",
    ) -> None:
        self._setup(lr, schedule, convention, nonfinite, backend)
        default_eps, inside, lr_in_buffer = self._CONVENTIONS[self.convention]
        self.alpha = validation.check_unit_interval(alpha, "alpha")
        self.momentum = validation.check_unit_interval(momentum, "momentum")
        self.centered = validation.check_flag(centered, "centered")
        self.bias_correction = validation.check_flag(bias_correction, "bias_correction")
        u0 = validation.check_finite(initial_accumulator_value, "initial_accumulator_value", minimum=0.0)
        self._eps(eps, default_eps, inside)
        self._weight_decay(weight_decay, False)
        self._hyper.update(
            {
                rules.H_RMSPROP_ALPHA: self.alpha,
                rules.H_RMSPROP_MOMENTUM: self.momentum,
                rules.H_RMSPROP_CENTERED: float(self.centered),
                rules.H_BIAS_CORRECTION: float(self.bias_correction),
                rules.H_LR_IN_BUFFER: float(lr_in_buffer),
                rules.H_INIT0: u0,
            }
        )
        self.n_slots = 3 if self.centered else (2 if self.momentum > 0.0 else 1)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1), PyTorch's ``torch.optim.Adam``; AMSGrad (Reddi et al. 2018)::

        g <- g + wd w  (L2; decoupled: w <- w (1 - lr wd), which is AdamW)
        m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  mh = m / (1 - b1^t);  vh = v / (1 - b2^t)
        AMSGrad: vmax <- max(vmax, v), vh = vmax / (1 - b2^t)  (PyTorch, Keras)  |  vmax <- max(vmax, vh), vh = vmax
        (optax)
        w <- w - lr mh / (sqrt(vh) + eps)

    ===========  =======================  ==========================  =====================================  ==========
    convention   torch                    optax                       keras                                  lecture
    ===========  =======================  ==========================  =====================================  ==========
    eps          1e-8, outside the root   1e-8, outside               1e-7 "epsilon hat": lr sqrt(1-b2^t)    1e-8,
                                                                      / (1-b1^t) m / (sqrt(v) + eps)         inside
    AMSGrad max  raw v                    bias-corrected v            raw v                                  raw v
    ===========  =======================  ==========================  =====================================  ==========

    .. warning:: eps inside the root (the lecture's ``sqrt(vh + eps)``) is ``sqrt(eps) = 1e-4`` at ``vh = 0``, four
       orders of magnitude larger than eps outside: a gradient of 1e-6 moves by ``lr`` in PyTorch's Adam and by
       about ``lr / 100`` in the lecture's.

    The per-component step is bounded whatever the scale of ``g`` (per-component learning rates): about ``lr``,
    at most ``lr (1 - b1) / sqrt(1 - b2)`` for a single spike or stationary gradients (Kingma & Ba section 2.1);
    rigorously, by Cauchy-Schwarz, ``|step| <= lr (1 - b1) / (1 - b1^t) sqrt((1 - b2^t) / (1 - b2))
    sqrt(sum_{k<t} (b1^2/b2)^k)``, up to ``1 / sqrt(1 - b1^2 / b2)`` times more, reached by gradients growing as
    ``(b2 / b1)^t``. Without eps the step is invariant to rescaling ``g``.
    ``bias_correction=False`` drops both corrections. State: ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``
    (AMSGrad).

    Parameters
    ----------
    lr : float
        The base learning rate (positive).
    betas : (float, float)
        ``(b1, b2)``, each in [0, 1).
    eps : float or None
        The denominator's eps (non-negative); None takes the convention's default.
    weight_decay : float
        L2 weight decay ``wd`` (non-negative), added to the gradient.
    amsgrad : bool
        AMSGrad's running maximum of v.
    bias_correction : bool
        Divide by ``1 - b1^t`` and ``1 - b2^t``.
    decoupled_weight_decay : bool
        Decay ``w <- w (1 - lr wd)`` instead of the L2 term (AdamW).
    schedule : Schedule, str or None
        The learning-rate schedule (a :func:`schedule` or its name); None is constant.
    convention : {"torch", "optax", "keras", "lecture"}
        Whose form of the formula and defaults to follow (see the table above where they differ).
    nonfinite : {"raise", "skip"}
        On non-finite gradients, raise :class:`NonFiniteError` (nothing changed) or skip the step.
    backend : {"cpu", "cuda", "auto"}
        Where :meth:`Optimizer.step` runs.

    Raises
    ------
    ValueError
        If a hyperparameter is out of range or of the wrong kind (the message names it and the valid choices).

    References
    ----------
    D. P. Kingma, J. Ba, "Adam: a method for stochastic optimization", ICLR 2015; S. J. Reddi, S. Kale, S. Kumar,
    "On the convergence of Adam and beyond", ICLR 2018.
    """

    name = "adam"
    code = rules.ADAM
    _CONVENTIONS = {
        "torch": (1e-8, False, False, rules.AMSGRAD_RAW),
        "optax": (1e-8, False, False, rules.AMSGRAD_CORRECTED),
        "keras": (1e-7, False, True, rules.AMSGRAD_RAW),
        "lecture": (1e-8, True, False, rules.AMSGRAD_RAW),
    }

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float | None = None,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        bias_correction: bool = True,
        decoupled_weight_decay: bool = False,
        schedule: Schedule | str | None = None,
        convention: Convention = "torch",
        nonfinite: NonfinitePolicy = "raise",
        backend: Backend = "cpu",
    ) -> None:
        self._setup(lr, schedule, convention, nonfinite, backend)
        default_eps, inside, eps_hat, amsgrad_form = self._CONVENTIONS[self.convention]
        self.betas = _check_betas(betas)
        self.amsgrad = validation.check_flag(amsgrad, "amsgrad")
        self.bias_correction = validation.check_flag(bias_correction, "bias_correction")
        self._eps(eps, default_eps, inside)
        self._weight_decay(weight_decay, decoupled_weight_decay)
        self.decoupled_weight_decay = bool(decoupled_weight_decay)
        self._hyper.update(
            {
                rules.H_ADAM_BETA1: self.betas[0],
                rules.H_ADAM_BETA2: self.betas[1],
                rules.H_ADAM_EPS_HAT: float(eps_hat),
                rules.H_ADAM_AMSGRAD: float(amsgrad_form if self.amsgrad else rules.AMSGRAD_OFF),
                rules.H_BIAS_CORRECTION: float(self.bias_correction),
            }
        )
        self.n_slots = 3 if self.amsgrad else 2


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019), PyTorch's ``torch.optim.AdamW``: :class:`Adam` with decoupled weight decay
    ``w <- w (1 - lr wd)`` before the Adam step (default ``weight_decay = 1e-2``; optax's ``adamw`` and Keras'
    ``AdamW`` decay by the same ``lr wd w``). With ``weight_decay = 0`` it is Adam.

    Parameters
    ----------
    lr : float
        The base learning rate (positive).
    betas : (float, float)
        ``(b1, b2)``, each in [0, 1).
    eps : float or None
        The denominator's eps (non-negative); None takes the convention's default.
    weight_decay : float
        The decoupled decay ``wd`` (non-negative).
    amsgrad : bool
        AMSGrad's running maximum of v.
    bias_correction : bool
        Divide by ``1 - b1^t`` and ``1 - b2^t``.
    schedule : Schedule, str or None
        The learning-rate schedule (a :func:`schedule` or its name); None is constant.
    convention : {"torch", "optax", "keras", "lecture"}
        Whose form of the formula and defaults to follow (see the table above where they differ).
    nonfinite : {"raise", "skip"}
        On non-finite gradients, raise :class:`NonFiniteError` (nothing changed) or skip the step.
    backend : {"cpu", "cuda", "auto"}
        Where :meth:`Optimizer.step` runs.

    Raises
    ------
    ValueError
        If a hyperparameter is out of range or of the wrong kind (the message names it and the valid choices).

    References
    ----------
    I. Loshchilov, F. Hutter, "Decoupled weight decay regularization", ICLR 2019.
    """

    name = "adamw"

    def __init__(
        self,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float | None = None,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        bias_correction: bool = True,
        schedule: Schedule | str | None = None,
        convention: Convention = "torch",
        nonfinite: NonfinitePolicy = "raise",
        backend: Backend = "cpu",
    ) -> None:
        super().__init__(
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            bias_correction=bias_correction,
            decoupled_weight_decay=True,
            schedule=schedule,
            convention=convention,
            nonfinite=nonfinite,
            backend=backend,
        )


class NAdam(Optimizer):
    """NAdam (Dozat 2016), PyTorch's ``torch.optim.NAdam``::

        mu_t = b1 (1 - 0.5 * 0.96^(t momentum_decay));   P_t = mu_1 ... mu_t
        m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  D = sqrt(v / (1 - b2^t)) + eps
        w <- w - lr (1 - mu_t) / (1 - P_t) g / D - lr mu_{t+1} / (1 - P_t mu_{t+1}) m / D

    Keras' ``Nadam`` is the same (eps 1e-7); optax's ``nadam`` uses a constant ``mu_t = b1``
    (``convention="optax"``), i.e. ``lr ((1 - b1) g / (1 - b1^t) + b1 m / (1 - b1^(t+1))) / D``; the lecture
    convention puts eps inside the root. ``decoupled_weight_decay`` is PyTorch's NAdamW option. State: ``exp_avg``,
    ``exp_avg_sq``, ``mu_product`` (``P_t``, the same for every component).

    Parameters
    ----------
    lr : float
        The base learning rate (positive).
    betas : (float, float)
        ``(b1, b2)``, each in [0, 1).
    eps : float or None
        The denominator's eps (non-negative); None takes the convention's default.
    weight_decay : float
        L2 weight decay ``wd`` (non-negative), added to the gradient.
    momentum_decay : float
        The ``momentum_decay`` of ``mu_t`` (non-negative).
    decoupled_weight_decay : bool
        PyTorch's NAdamW: decay ``w <- w (1 - lr wd)``.
    schedule : Schedule, str or None
        The learning-rate schedule (a :func:`schedule` or its name); None is constant.
    convention : {"torch", "optax", "keras", "lecture"}
        Whose form of the formula and defaults to follow (see the table above where they differ).
    nonfinite : {"raise", "skip"}
        On non-finite gradients, raise :class:`NonFiniteError` (nothing changed) or skip the step.
    backend : {"cpu", "cuda", "auto"}
        Where :meth:`Optimizer.step` runs.

    Raises
    ------
    ValueError
        If a hyperparameter is out of range or of the wrong kind (the message names it and the valid choices).

    References
    ----------
    T. Dozat, "Incorporating Nesterov momentum into Adam", ICLR 2016 workshop.
    """

    name = "nadam"
    code = rules.NADAM
    _CONVENTIONS = {
        "torch": (1e-8, False, False),
        "optax": (1e-8, False, True),
        "keras": (1e-7, False, False),
        "lecture": (1e-8, True, False),
    }

    def __init__(
        self,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float | None = None,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        schedule: Schedule | str | None = None,
        convention: Convention = "torch",
        nonfinite: NonfinitePolicy = "raise",
        backend: Backend = "cpu",
    ) -> None:
        self._setup(lr, schedule, convention, nonfinite, backend)
        default_eps, inside, constant_mu = self._CONVENTIONS[self.convention]
        self.betas = _check_betas(betas)
        self.momentum_decay = validation.check_finite(momentum_decay, "momentum_decay", minimum=0.0)
        self._eps(eps, default_eps, inside)
        self._weight_decay(weight_decay, decoupled_weight_decay)
        self._hyper.update(
            {
                rules.H_NADAM_BETA1: self.betas[0],
                rules.H_NADAM_BETA2: self.betas[1],
                rules.H_NADAM_MOMENTUM_DECAY: self.momentum_decay,
                rules.H_NADAM_CONSTANT_MU: float(constant_mu),
                rules.H_BIAS_CORRECTION: 1.0,
                rules.H_INIT2: 1.0,
            }
        )


class Adamax(Optimizer):
    """Adamax (Kingma & Ba 2015, section 7.1), PyTorch's ``torch.optim.Adamax``::

        m <- b1 m + (1 - b1) g;  u <- max(b2 u, |g| + eps);  w <- w - lr / (1 - b1^t) m / u      (PyTorch, optax)
        u <- max(b2 u, |g|);  w <- w - lr / (1 - b1^t) m / (u + eps)                               (Keras)

    Defaults ``lr = 2e-3``, eps 1e-8 (Keras 1e-7); the lecture convention follows PyTorch. State: ``exp_avg``,
    ``exp_inf``.

    Parameters
    ----------
    lr : float
        The base learning rate (positive).
    betas : (float, float)
        ``(b1, b2)``, each in [0, 1).
    eps : float or None
        The denominator's eps (non-negative); None takes the convention's default.
    weight_decay : float
        L2 weight decay ``wd`` (non-negative), added to the gradient.
    schedule : Schedule, str or None
        The learning-rate schedule (a :func:`schedule` or its name); None is constant.
    convention : {"torch", "optax", "keras", "lecture"}
        Whose form of the formula and defaults to follow (see the table above where they differ).
    nonfinite : {"raise", "skip"}
        On non-finite gradients, raise :class:`NonFiniteError` (nothing changed) or skip the step.
    backend : {"cpu", "cuda", "auto"}
        Where :meth:`Optimizer.step` runs.

    Raises
    ------
    ValueError
        If a hyperparameter is out of range or of the wrong kind (the message names it and the valid choices).

    References
    ----------
    D. P. Kingma, J. Ba, "Adam: a method for stochastic optimization", ICLR 2015, section 7.1.
    """

    name = "adamax"
    code = rules.ADAMAX
    _CONVENTIONS = {"torch": (1e-8, True), "optax": (1e-8, True), "keras": (1e-7, False), "lecture": (1e-8, True)}

    def __init__(
        self,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float | None = None,
        weight_decay: float = 0.0,
        *,
        schedule: Schedule | str | None = None,
        convention: Convention = "torch",
        nonfinite: NonfinitePolicy = "raise",
        backend: Backend = "cpu",
    ) -> None:
        self._setup(lr, schedule, convention, nonfinite, backend)
        default_eps, inside = self._CONVENTIONS[self.convention]
        self.betas = _check_betas(betas)
        self._eps(eps, default_eps, inside)
        self._weight_decay(weight_decay, False)
        self._hyper.update(
            {rules.H_ADAMAX_BETA1: self.betas[0], rules.H_ADAMAX_BETA2: self.betas[1], rules.H_BIAS_CORRECTION: 1.0}
        )


# ----------------------------------------------------------------------------------------------------------------
# Newton and saddle-free Newton (dense, small d)


def _check_newton_inputs(grads, hessian, damping):
    g = np.asarray(grads, dtype=np.float64)
    h = np.asarray(hessian, dtype=np.float64)
    if g.ndim != 1:
        raise ValueError(f"grads must be a 1-d array, got shape {g.shape}")
    if h.shape != (g.size, g.size):
        raise ValueError(f"hessian must have shape ({g.size}, {g.size}) to match grads, got {h.shape}")
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(h))):
        raise ValueError("grads and hessian must be finite")
    if not np.allclose(h, h.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(h).max(initial=0.0)))):
        raise ValueError("hessian must be symmetric")
    return g, 0.5 * (h + h.T), validation.check_finite(damping, "damping", minimum=0.0)


def newton_step(grads: npt.ArrayLike, hessian: npt.ArrayLike, damping: float = 0.0) -> np.ndarray:
    """Newton's step ``(H + damping I)^-1 g`` (to be subtracted from w); ValueError if the matrix is singular.

    Newton's method is attracted to saddle points: it jumps to the stationary point of the local quadratic whatever
    the signs of the curvatures (Dauphin et al. 2014).

    Parameters
    ----------
    grads : array_like, shape (d,)
        The gradient g (finite).
    hessian : array_like, shape (d, d)
        The Hessian H (finite, symmetric).
    damping : float
        Added to every eigenvalue (non-negative).

    Returns
    -------
    numpy.ndarray, shape (d,)
        The step, to be subtracted from w.

    Raises
    ------
    ValueError
        If the shapes disagree, an entry is not finite, H is not symmetric or the matrix is singular.

    References
    ----------
    Y. Dauphin, R. Pascanu, C. Gulcehre, K. Cho, S. Ganguli, Y. Bengio, "Identifying and attacking the saddle point
    problem in high-dimensional non-convex optimization", NeurIPS 2014.
    """
    g, h, damping = _check_newton_inputs(grads, hessian, damping)
    eigenvalues, vectors = np.linalg.eigh(h)
    shifted = eigenvalues + damping
    if np.any(np.abs(shifted) <= np.finfo(np.float64).eps * max(1.0, float(np.abs(eigenvalues).max()))):
        raise ValueError("hessian (+ damping) is singular; pass damping > 0")
    return vectors @ ((vectors.T @ g) / shifted)


def saddle_free_newton_step(grads: npt.ArrayLike, hessian: npt.ArrayLike, damping: float = 0.0) -> np.ndarray:
    """The saddle-free Newton step ``(|H| + damping I)^-1 g``, ``|H| = sum_i |lambda_i| e_i e_i^T``.

    Dauphin et al. 2014: rescaling by the absolute curvatures keeps Newton's step sizes but always descends, so
    negative curvature repels instead of attracting. ValueError if ``|H| + damping I`` is singular.

    Parameters
    ----------
    grads : array_like, shape (d,)
        The gradient g (finite).
    hessian : array_like, shape (d, d)
        The Hessian H (finite, symmetric).
    damping : float
        Added to every eigenvalue (non-negative).

    Returns
    -------
    numpy.ndarray, shape (d,)
        The step, to be subtracted from w.

    Raises
    ------
    ValueError
        If the shapes disagree, an entry is not finite, H is not symmetric or the matrix is singular.

    References
    ----------
    Y. Dauphin, R. Pascanu, C. Gulcehre, K. Cho, S. Ganguli, Y. Bengio, "Identifying and attacking the saddle point
    problem in high-dimensional non-convex optimization", NeurIPS 2014.
    """
    g, h, damping = _check_newton_inputs(grads, hessian, damping)
    eigenvalues, vectors = np.linalg.eigh(h)
    scale = np.abs(eigenvalues) + damping
    if np.any(scale <= np.finfo(np.float64).eps * max(1.0, float(np.abs(eigenvalues).max()))):
        raise ValueError("|hessian| (+ damping) is singular; pass damping > 0")
    return vectors @ ((vectors.T @ g) / scale)


class Newton:
    """Newton's method ``w <- w - lr (H + damping I)^-1 g`` for small dense problems (NumPy); see
    :func:`newton_step`. ``step(params, grads, hessian)`` updates the float64 1-d ``params`` in place.

    Parameters
    ----------
    lr : float
        The step's factor (positive).
    damping : float
        Added to every eigenvalue (non-negative).

    Raises
    ------
    ValueError
        If ``lr`` or ``damping`` is out of range.
    """

    name = "newton"
    _direction = staticmethod(newton_step)

    def __init__(self, lr: float = 1.0, damping: float = 0.0) -> None:
        self.lr = _check_lr(lr)
        self.damping = validation.check_finite(damping, "damping", minimum=0.0)

    def step(self, params: np.ndarray, grads: npt.ArrayLike, hessian: npt.ArrayLike) -> bool:
        if not isinstance(params, np.ndarray) or params.ndim != 1 or params.shape != np.shape(grads):
            raise ValueError("params must be a 1-d numpy array shaped like grads")
        params -= self.lr * self._direction(grads, hessian, self.damping).astype(params.dtype)
        return True


class SaddleFreeNewton(Newton):
    """Saddle-free Newton ``w <- w - lr (|H| + damping I)^-1 g`` (Dauphin et al. 2014); see
    :func:`saddle_free_newton_step`."""

    name = "saddle_free_newton"
    _direction = staticmethod(saddle_free_newton_step)


# ----------------------------------------------------------------------------------------------------------------
# By name

#: Names that are not a row of ``rules.optimizers.RULES``: presets of a row's class, placed after the row's name,
#: and the dense methods.
_PRESETS = {rules.ADAM: {"adamw": (AdamW, {}), "amsgrad": (Adam, {"amsgrad": True})}}
_DENSE = {"newton": (Newton, {}), "saddle_free_newton": (SaddleFreeNewton, {})}


def _registry():
    """name -> (class, preset keyword arguments), derived from the rule table: each row's class under the row's name,
    then its presets; the dense methods last."""
    registry = {}
    for rule in rules.RULES:
        if rule.code not in _RULE_CLASSES:
            raise RuntimeError(
                f"rule {rule.name!r} (code {rule.code}) of testbed.rules.optimizers.RULES has no optimizer class: "
                f"define a testbed.optim.Optimizer subclass with name = {rule.name!r} and code = {rule.code}"
            )
        registry[rule.name] = (_RULE_CLASSES[rule.code], {})
        registry.update(_PRESETS.get(rule.code, {}))
    registry.update(_DENSE)
    return registry


_BY_NAME = _registry()


def names() -> tuple[str, ...]:
    """Every optimizer name accepted by :func:`make`."""
    return tuple(_BY_NAME)


def make(name: str, **hyper: Any) -> Optimizer | Newton:
    """The optimizer called ``name`` with hyperparameters ``hyper`` (PyTorch's names).

    Parameters
    ----------
    name : str
        One of :func:`names` (case-insensitive).
    **hyper
        The class's keyword arguments (PyTorch's names, plus ``schedule``, ``convention``, ``nonfinite``,
        ``backend``).

    Returns
    -------
    Optimizer or Newton

    Raises
    ------
    ValueError
        If the name or a hyperparameter is unknown (the message lists the valid ones) or a value is out of range.

    Examples
    --------
    >>> make("adam", lr=1e-2).lr
    0.01
    """
    if not isinstance(name, str) or name.lower() not in _BY_NAME:
        raise validation.unknown_name_error("optimizer", name, names())
    cls, preset = _BY_NAME[name.lower()]
    valid = [p for p in inspect.signature(cls.__init__).parameters if p != "self" and p not in preset]
    unknown = sorted(set(hyper) - set(valid))
    if unknown:
        raise ValueError(f"optimizer {name!r} takes no parameter {unknown}; valid parameters: {', '.join(valid)}")
    return cls(**preset, **hyper)
