"""Argument checks shared by the library: each returns the value it checked (converted: an int, a float, a dtype, a
flat view) or raises a one-line ValueError that names the argument, what it accepts and what it got.

The rule of the project (bad input ends in such an error, never in a Numba typing traceback or a silent NaN) is
kept here once, so that every module words the same check the same way:

==========================  =============================================================================
check                       accepts
==========================  =============================================================================
:func:`check_positive_int`  an integer > 0 (bools refused)
:func:`check_non_negative_int`  an integer >= 0 (bools refused)
:func:`check_seed`          an integer in [0, 2**64) (a Philox key)
:func:`check_finite`        a finite real number, optionally >= or > a minimum
:func:`check_real`          the same, bools refused
:func:`check_positive`      a finite real number > 0
:func:`check_non_negative`  a finite real number >= 0
:func:`check_unit_interval`  a real number in [0, 1) (a momentum, a decay rate)
:func:`check_flag`          True or False
:func:`check_choice`        one of a tuple of names (the message lists them and suggests the closest)
:func:`check_dtype`         a supported floating dtype (:data:`testbed.config.SUPPORTED_DTYPES`)
:func:`check_array`         a C-contiguous, native-byte-order float array, on the host or the device
==========================  =============================================================================

:func:`is_device_array` tells a CUDA device array (or the simulator's stand-in) from a host array.
"""

import difflib
import math

import numpy as np

from . import config

# ----------------------------------------------------------------------------------------------------------------
# names


def closest(name, choices):
    """A ' (did you mean X?)' hint for an unknown name, or '' when nothing is close."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def unknown_name_error(kind, name, choices):
    """The ValueError for an unknown name of a registry: lists the valid names and suggests the closest."""
    return ValueError(
        f"unknown {kind} {name!r}{closest(name, choices)}; valid choices: {', '.join(sorted(map(str, choices)))}"
    )


def check_choice(value, name, choices):
    """``value`` if it is one of the strings ``choices``, else a ValueError listing them (and the closest)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}{closest(value, choices)}"
        )
    return value


def check_flag(value, name):
    """``value`` as a bool if it is True or False (NumPy's included), else ValueError: 0, 1 and "yes" are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


# ----------------------------------------------------------------------------------------------------------------
# integers


def _is_integer(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive_int(value, name):
    """Return ``value`` as an int if it is a positive integer (bools excluded), else raise ValueError."""
    if not _is_integer(value) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_non_negative_int(value, name):
    """Return ``value`` as an int if it is an integer >= 0 (bools excluded), else raise ValueError."""
    if not _is_integer(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def check_seed(seed, name="seed"):
    """Seeds are integers in [0, 2**64): they key Philox with two 32-bit words."""
    if not _is_integer(seed) or not 0 <= seed < 2**64:
        raise ValueError(f"{name} must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)


# ----------------------------------------------------------------------------------------------------------------
# real numbers


def check_finite(value, name, *, minimum=None, strict=False):
    """Return ``value`` as a float if it is finite (and >= or > ``minimum``), else raise ValueError naming it."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if minimum is not None and (number <= minimum if strict else number < minimum):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be {relation} {minimum}, got {value!r}")
    return number


def check_real(value, name, *, minimum=None, strict=False):
    """:func:`check_finite` that also refuses bools (True is not a standard deviation)."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return check_finite(value, name, minimum=minimum, strict=strict)


def _float_or_error(value, name, wording):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a {wording}, got {value!r}") from None


def check_positive(value, name):
    """Return ``value`` as a float if it is finite and > 0, else raise ValueError naming it."""
    number = _float_or_error(value, name, "positive finite number")
    if not number > 0.0 or not math.isfinite(number):
        raise ValueError(f"{name} must be a positive finite number, got {number!r}")
    return number


def check_non_negative(value, name):
    """Return ``value`` as a float if it is finite and >= 0, else raise ValueError naming it."""
    number = _float_or_error(value, name, "non-negative finite number")
    if not number >= 0.0 or not math.isfinite(number):
        raise ValueError(f"{name} must be a non-negative finite number, got {number!r}")
    return number


def check_unit_interval(value, name):
    """Return ``value`` as a float if it lies in [0, 1) (a momentum, a decay rate), else raise ValueError."""
    number = check_finite(value, name, minimum=0.0)
    if number >= 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return number


# ----------------------------------------------------------------------------------------------------------------
# dtypes and arrays


def check_dtype(dtype, name="dtype"):
    """Return ``numpy.dtype(dtype)`` if it is a supported floating type, else raise ValueError naming ``name``."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.type not in config.SUPPORTED_DTYPES:
        valid = ", ".join(np.dtype(t).name for t in config.SUPPORTED_DTYPES)
        raise ValueError(f"{name} must be one of {valid}, got {dtype!r}")
    return resolved


def is_device_array(array):
    """True for a Numba CUDA device array, or the simulator's stand-in (which has no ``__cuda_array_interface__``
    but the device array's methods); False for a NumPy array and anything else."""
    if isinstance(array, np.ndarray):
        return False
    if hasattr(array, "copy_to_host") and hasattr(array, "is_c_contiguous"):
        return True
    try:
        from numba import cuda

        return cuda.is_cuda_array(array)
    except Exception:  # no CUDA support at all: nothing is a device array
        return False


def check_array(array, name):
    """The array's flat view if it is a C-contiguous float32/float64 array in the machine's byte order (a NumPy
    array or a CUDA device array), else ValueError naming ``name``. For arrays updated in place: nothing is
    converted (a converted copy would take the update, not the caller's array)."""
    if is_device_array(array):
        if not array.is_c_contiguous():
            raise ValueError(f"{name} must be C-contiguous")
        check_dtype(array.dtype, f"{name}.dtype")
        return array.reshape(array.size)
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{name} must be a numpy array (or a CUDA device array), got {type(array).__name__}")
    check_dtype(array.dtype, f"{name}.dtype")
    if not array.dtype.isnative:
        raise ValueError(
            f"{name} must be in the machine's byte order, got dtype {array.dtype.str!r} "
            f"(convert it: {name}.astype({name}.dtype.newbyteorder('=')))"
        )
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    return array.reshape(-1)
