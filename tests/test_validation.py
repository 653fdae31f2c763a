"""testbed.validation: every shared argument check accepts what it documents, converts it, and refuses the rest with
a one-line ValueError naming the argument; the modules that had their own copies now word the same check alike."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed import backend, init, optim, validation
from testbed.theory import escape, spectra

#: Generated inputs per property: enough to meet each kind (ints of both signs, floats, bools, text, None).
HYPOTHESIS_EXAMPLES = 40

NOT_INTEGERS = [True, np.bool_(False), 1.0, "3", None, [1]]


@pytest.mark.parametrize("value", [1, np.int64(7), 2**70])
def test_positive_int_accepts_and_converts(value):
    out = validation.check_positive_int(value, "n")
    assert out == value and type(out) is int


@pytest.mark.parametrize("value", [0, -1, *NOT_INTEGERS])
def test_positive_int_refuses(value):
    with pytest.raises(ValueError, match=r"^n must be a positive integer, got "):
        validation.check_positive_int(value, "n")


def test_non_negative_int_accepts_zero_and_refuses_the_rest():
    assert validation.check_non_negative_int(np.int32(0), "k") == 0
    for value in [-1, *NOT_INTEGERS]:
        with pytest.raises(ValueError, match=r"^k must be a non-negative integer, got "):
            validation.check_non_negative_int(value, "k")


@pytest.mark.parametrize(
    "check,wording",
    [(validation.check_positive, "positive finite number"), (validation.check_non_negative, "non-negative finite")],
)
@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf, -math.inf, "x", None])
def test_finite_sign_checks_refuse_with_the_argument_named(check, wording, value):
    with pytest.raises(ValueError, match=f"^lr must be a {wording}"):
        check(value, "lr")


def test_finite_sign_checks_accept_their_boundaries():
    assert validation.check_positive(np.float32(0.5), "x") == 0.5
    assert validation.check_non_negative(0, "x") == 0.0
    with pytest.raises(ValueError, match="positive finite"):
        validation.check_positive(0.0, "x")


def test_unit_interval_is_half_open():
    assert validation.check_unit_interval(0.0, "mu") == 0.0
    for value, message in [(1.0, r"must be in \[0, 1\)"), (-0.1, "must be >= 0.0"), (math.nan, "must be finite")]:
        with pytest.raises(ValueError, match=f"^mu {message}"):
            validation.check_unit_interval(value, "mu")


def test_real_refuses_bools_that_finite_takes_as_numbers():
    assert validation.check_finite(True, "std") == 1.0
    with pytest.raises(ValueError, match="std must be a real number, got True"):
        validation.check_real(True, "std")


def test_choice_lists_the_valid_names_and_suggests_the_closest():
    with pytest.raises(ValueError) as info:
        validation.check_choice("optx", "convention", ("torch", "optax"))
    assert str(info.value) == "convention must be one of 'torch', 'optax', got 'optx' (did you mean 'optax'?)"
    with pytest.raises(ValueError, match="got 3$"):  # nothing close: no hint
        validation.check_choice(3, "convention", ("torch", "optax"))
    assert validation.check_choice("torch", "convention", ("torch", "optax")) == "torch"


def test_flag_takes_bools_only():
    assert validation.check_flag(np.bool_(True), "nesterov") is True
    for value in [0, 1, "yes", None]:
        with pytest.raises(ValueError, match="nesterov must be True or False"):
            validation.check_flag(value, "nesterov")


def test_is_device_array_tells_device_arrays_from_host_ones():
    from numba import cuda

    assert validation.is_device_array(cuda.to_device(np.zeros(3)))
    for value in [np.zeros(3), [0.0], 0.0, None]:
        assert not validation.is_device_array(value)


@pytest.mark.parametrize(
    "array,message",
    [
        (np.zeros(4, dtype=">f8"), "x must be in the machine's byte order"),
        (np.zeros((4, 2))[:, 0], "x must be C-contiguous"),
        (np.zeros(4, dtype=np.int64), "x.dtype must be one of float32, float64"),
        ([0.0, 1.0], "x must be a numpy array"),
    ],
)
def test_check_array_refuses_by_name(array, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        validation.check_array(array, "x")


def test_check_array_returns_a_flat_view_that_writes_through():
    a = np.zeros((2, 3), dtype=np.float32)
    validation.check_array(a, "x")[4] = 1.0
    assert a[1, 1] == 1.0


def test_the_old_homes_use_the_one_definition():
    """The checks are defined and called in testbed.validation alone: no re-export in backend, no private copies."""
    for name in ("check_positive_int", "check_finite", "check_seed", "check_dtype", "unknown_name_error", "closest"):
        assert not hasattr(backend, name), name
    for module, names in [
        (optim, ("_is_device_array", "_check_array", "_check_flag", "_check_choice", "_check_unit")),
        (init, ("_real", "_flag", "_choice")),
        (escape, ("_positive", "_non_negative", "_momentum")),
    ]:
        assert not any(hasattr(module, name) for name in names), module.__name__


def test_modules_word_their_checks_alike():
    with pytest.raises(ValueError, match=r"^momentum must be in \[0, 1\)"):
        optim.SGD(lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match=r"^mu must be in \[0, 1\)"):
        escape.heavy_ball_rate(0.1, 1.0, [1.0])
    with pytest.raises(ValueError, match="^warmup_steps must be a non-negative integer"):
        optim.schedule("constant", warmup_steps=-1)
    with pytest.raises(ValueError, match="^offset must be a non-negative integer"):
        init.fill(np.zeros(4), "zeros", 2, 2, offset=True)
    with pytest.raises(ValueError, match="^k must be a non-negative integer"):
        spectra.fuss_catalan_moment(2, -1)
    with pytest.raises(ValueError, match=r"^backend must be one of 'cpu', 'cuda', 'auto', got 'cdua' \(did you"):
        backend.resolve("cdua")


@settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None)
@given(st.one_of(st.integers(), st.floats(allow_nan=True), st.booleans(), st.text(max_size=3), st.none()))
def test_integer_checks_never_crash_and_agree_on_what_they_take(value):
    """Any input ends in the converted int or the documented ValueError, never another exception."""
    outcomes = []
    for check in (validation.check_positive_int, validation.check_non_negative_int):
        try:
            outcomes.append(check(value, "n"))
        except ValueError:
            outcomes.append(None)
    taken = isinstance(value, int) and not isinstance(value, bool)
    assert outcomes == [value if taken and value > 0 else None, value if taken and value >= 0 else None]
