"""A fuzz suite over the public API: generated bad and edge inputs (names, sizes, dtypes, non-finite values,
shapes) must each end in a documented error (ValueError, with ResultFileError for saved results) or a correct
result; never a crash of another type, and never a silent NaN.

Hypothesis runs derandomised (the same examples on every run, as CI needs) with few examples per test, so the
file stays within its share of the suite's time.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from testbed import backend, init, landscapes, montecarlo, nn, optim, results, sweep, validation

#: Settings of every test here: reproducible examples, no per-example deadline (the first example compiles).
FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def fuzz(examples):
    """:data:`FUZZ` with ``examples`` examples."""
    return settings(FUZZ, max_examples=examples)


#: Anything a user might pass where a number or a name is expected.
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.binary(max_size=4),
    st.lists(st.integers(-3, 3), max_size=3),
    st.sampled_from([np.float32(1.5), np.int64(3), np.nan, "1e300"]),
)
SMALL_OR_BAD_INT = st.one_of(st.integers(min_value=-2, max_value=6), st.sampled_from([True, 2.5, math.nan, "3"]))
FLOAT_OR_BAD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64), st.sampled_from([0.0, -1.0, 1e-300, 1e300, "x", None])
)
DTYPES = st.sampled_from(["float64", "float32", ">f8", ">f4", "float16", "int64", "complex128", "bool", "object"])


def fails_cleanly(call):
    """Run ``call``: its value, or None when it raised ValueError (the documented error); anything else fails."""
    try:
        return call()
    except ValueError as error:
        assert str(error), "a ValueError must say what is wrong"
        return None


def one_bad(data, valid, bad):
    """Keyword arguments drawn from ``valid`` (name -> strategy), with at most one drawn from ``bad`` instead: most
    examples then run (a bad value in every call would test the first check only)."""
    spoiled = data.draw(st.one_of(st.none(), st.sampled_from(sorted(bad))), label="bad argument")
    return {name: data.draw(bad[name] if name == spoiled else strategy, label=name) for name, strategy in valid.items()}


@fuzz(150)
@given(value=ANYTHING)
def test_argument_checks_return_or_raise_value_error(value):
    number = fails_cleanly(lambda: validation.check_finite(value, "x"))
    assert number is None or math.isfinite(number)
    count = fails_cleanly(lambda: validation.check_positive_int(value, "n"))
    assert count is None or (isinstance(count, int) and count > 0)
    seed = fails_cleanly(lambda: validation.check_seed(value))
    assert seed is None or 0 <= seed < 2**64
    dtype = fails_cleanly(lambda: validation.check_dtype(value))
    assert dtype is None or dtype.kind == "f"
    target = fails_cleanly(lambda: backend.resolve(value))
    assert target in (None, "cpu", "cuda")


@fuzz(60)
@given(
    name=st.one_of(st.sampled_from(landscapes.NAMES), st.text(max_size=8)),
    params=st.dictionaries(
        st.sampled_from(["dim", "kappa", "gamma", "negative", "scale", "C", "bogus"]),
        st.one_of(SMALL_OR_BAD_INT, FLOAT_OR_BAD),
        max_size=2,
    ),
)
def test_landscapes_are_built_finite_or_refused(name, params):
    f = fails_cleanly(lambda: landscapes.make(name, **params))
    if f is not None:
        assert f.dim >= 1 and np.all(np.isfinite(f.start)) and np.all(np.isfinite(f.params))


@fuzz(60)
@given(spec=st.text(max_size=12), default=st.sampled_from([1, 0.5, True, "name", [1.0, 2.0], ["a"]]))
def test_sweep_assignments_parse_or_raise_value_error(spec, default):
    parsed = fails_cleanly(lambda: sweep.parse_assignments([spec], {"key": default}, option="--grid", many=True))
    if parsed is not None:
        assert list(parsed) == ["key"] and isinstance(parsed["key"], list)


INIT_VALID = dict(
    name=st.sampled_from(init.NAMES),
    fan_in=st.integers(1, 6),
    fan_out=st.integers(1, 6),
    dtype=st.sampled_from(["float64", "float32"]),
)
INIT_BAD = dict(
    name=st.text(max_size=6).filter(lambda n: n not in init.NAMES),
    fan_in=SMALL_OR_BAD_INT.filter(lambda v: not (isinstance(v, int) and v > 0)),
    fan_out=st.sampled_from([0, -1, 1.5, None]),
    dtype=DTYPES.filter(lambda d: d not in ("float64", "float32")),
)


@fuzz(40)
@given(data=st.data())
def test_initialisers_fill_finite_weights_or_refuse(data):
    kw = one_bad(data, INIT_VALID, INIT_BAD)
    weights = fails_cleanly(lambda: init.initialize(kw["name"], kw["fan_in"], kw["fan_out"], dtype=kw["dtype"], seed=1))
    if weights is not None:
        assert weights.size == kw["fan_in"] * kw["fan_out"] and np.all(np.isfinite(weights))
        assert weights.dtype == np.dtype(kw["dtype"])


def _saved_example(folder):
    result = results.Result(
        "demo",
        params=dict(seed=1),
        summary=dict(m=1.5),
        arrays=dict(a=np.arange(5.0)),
        tables=dict(t=[dict(x=1, y="a"), dict(x=2, y="b")]),
    )
    result.save(folder)
    return result


@fuzz(40)
@given(
    file_index=st.integers(0, 2),
    position=st.floats(0.0, 1.0),
    kind=st.sampled_from(["flip", "cut", "insert"]),
    byte=st.integers(0, 255),
)
def test_any_damage_to_a_saved_result_is_refused_by_name(tmp_path_factory, file_index, position, kind, byte):
    folder = tmp_path_factory.mktemp("saved")
    saved = _saved_example(folder)
    path = folder / ["result.json", "arrays.npz", "t.csv"][file_index]
    data = bytearray(path.read_bytes())
    at = min(len(data) - 1, int(position * len(data)))
    if kind == "flip":
        if data[at] == byte:
            return  # no change: nothing to detect
        data[at] = byte
    elif kind == "cut":
        del data[at:]
    else:
        data.insert(at, byte)
    path.write_bytes(bytes(data))
    try:
        loaded = load_or_error(folder)
    except results.ResultFileError as error:
        assert str(folder) in str(error)
        return
    # only a change of result.json that keeps it valid and consistent can load, and then it must say what it holds
    assert path.name == "result.json" and loaded.arrays.keys() == saved.arrays.keys()


def load_or_error(folder):
    try:
        return results.load(folder)
    except results.ResultFileError:
        raise
    except Exception as error:  # any other type is a defect
        pytest.fail(f"load raised {type(error).__name__}: {error}")


OPTIMIZERS = {
    "sgd": lambda lr, a, b: optim.SGD(lr=lr, momentum=a, weight_decay=b),
    "adam": lambda lr, a, b: optim.Adam(lr=lr, betas=(a, 0.999), weight_decay=b),
    "rmsprop": lambda lr, a, b: optim.RMSProp(lr=lr, alpha=a, momentum=b),
    "adagrad": lambda lr, a, b: optim.AdaGrad(lr=lr, lr_decay=a, weight_decay=b),
}
#: Moderate values: within them a step cannot overflow, so a non-finite parameter would be a defect.
MODERATE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@fuzz(60)
@given(
    name=st.sampled_from(sorted(OPTIMIZERS)),
    lr=st.one_of(FLOAT_OR_BAD, st.floats(1e-6, 1.0)),
    a=st.one_of(FLOAT_OR_BAD, st.floats(0.0, 0.99)),
    b=st.one_of(FLOAT_OR_BAD, st.floats(0.0, 0.1)),
    dtype=DTYPES,
    size=st.integers(0, 5),
    grads=st.lists(st.one_of(MODERATE, st.sampled_from([np.nan, np.inf])), min_size=5, max_size=5),
    shape_mismatch=st.booleans(),
)
# the case: lr 1e300 is inf in float32, so the step makes every parameter NaN or infinite
@example(
    name="adam", lr=1e300, a=0.9, b=0.0, dtype="float32", size=4, grads=[1.0, 0.0, -2.0, 3.0, 0.5], shape_mismatch=False
)
def test_optimizer_steps_are_finite_or_refused(name, lr, a, b, dtype, size, grads, shape_mismatch):
    opt = fails_cleanly(lambda: OPTIMIZERS[name](lr, a, b))
    if opt is None:
        return
    params = fails_cleanly(lambda: np.linspace(-1.0, 1.0, size).astype(dtype))
    if params is None or not params.dtype.isnative and params.dtype.kind != "f":
        return
    with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf cast to an integer dtype: a value, no error
        g = (
            np.array(grads[: size + (1 if shape_mismatch else 0)]).astype(dtype, copy=True)
            if dtype != "object"
            else np.array(grads[:size], dtype=object)
        )
    state = fails_cleanly(lambda: opt.init(params))
    if state is None:
        return
    before = params.copy()
    stepped = fails_cleanly(lambda: opt.step(params, g, state))
    if stepped is None and state.step == 1:
        # a step that overflowed (lr 1e300 is inf in float32) was applied and reported (optim.NonFiniteError)
        assert np.count_nonzero(~np.isfinite(params.astype(np.float64))) > 0
    elif stepped is None:
        np.testing.assert_array_equal(params, before)  # a refused step changes nothing
    else:
        assert np.all(np.isfinite(params.astype(np.float64)))


ESCAPE_VALID = dict(
    landscape=st.sampled_from(["saddle", "ravine", "rosenbrock", "reddi"]),
    optimizer=st.sampled_from(["sgd", "adam", "rmsprop", "momentum"]),
    trials=st.integers(1, 40),
    noise=st.one_of(st.just(0.0), st.floats(1e-3, 1e3)),
    radius=st.floats(1e-3, 10.0),
    max_steps=st.integers(1, 60),
    seed=st.integers(0, 2**64 - 1),
    criterion=st.sampled_from(["radius", "none", "converge"]),
    backend=st.just("cpu"),
)
ESCAPE_BAD = dict(
    landscape=st.sampled_from(["no-such", "", 3]),
    optimizer=st.sampled_from(["bogus", None, 1.0]),
    trials=st.sampled_from([0, -1, 2.5, True, math.nan, "3", 2**32]),
    noise=FLOAT_OR_BAD.filter(lambda v: not (isinstance(v, float) and math.isfinite(v) and v >= 0)),
    radius=st.sampled_from([0.0, -1.0, math.inf, None]),
    max_steps=st.sampled_from([0, -5, 2**32, 1.5]),
    seed=st.sampled_from([-1, 2**64, 0.5, "0"]),
    criterion=st.sampled_from(["nope", None]),
    backend=st.sampled_from(["gpu", "", None]),
)


@fuzz(30)
@given(data=st.data())
def test_escape_times_give_consistent_outcomes_or_refuse(data):
    kw = one_bad(data, ESCAPE_VALID, ESCAPE_BAD)
    landscape, optimizer = kw.pop("landscape"), kw.pop("optimizer")
    r = fails_cleanly(lambda: montecarlo.escape_times(landscape, optimizer, **kw))
    if r is None:
        return
    trials, max_steps = kw["trials"], kw["max_steps"]
    assert r.steps.shape == (trials,) and np.all((r.steps >= 0) & (r.steps <= max_steps))
    assert not np.any(r.escaped & r.diverged)
    # a trial that did not diverge ended at a finite iterate: a NaN is never silent
    assert np.all(np.isfinite(r.final[~r.diverged]))
    assert np.all(r.steps[r.censored] == max_steps)


PROPAGATE_VALID = dict(
    init=st.sampled_from(["he_normal", "glorot_uniform", "normal", "zeros", "orthogonal"]),
    activation=st.sampled_from(["relu", "tanh", "sigmoid", "linear"]),
    depth=st.integers(1, 4),
    width=st.one_of(st.integers(1, 6), st.lists(st.integers(1, 5), min_size=4, max_size=4)),
    batch=st.integers(1, 6),
    dtype=st.sampled_from(["float64", "float32"]),
    bias_var=st.one_of(st.just(0.0), st.floats(1e-3, 1e3)),
)
PROPAGATE_BAD = dict(
    init=st.sampled_from(["nope", "", None]),
    activation=st.sampled_from(["swish?", None]),
    depth=st.sampled_from([0, -1, 2.5, True, math.nan]),
    width=st.sampled_from([0, -2, [3, 0, 1, 1], [], "4"]),
    batch=st.sampled_from([0, -1, 1.5, None]),
    dtype=st.sampled_from([">f8", ">f4", "float16", "int64", "object"]),
    bias_var=st.sampled_from([-1.0, math.nan, math.inf, 1e308, "x"]),
)


@fuzz(25)
@given(data=st.data())
def test_propagate_measures_or_refuses_and_flags_overflow(data):
    kw = one_bad(data, PROPAGATE_VALID, PROPAGATE_BAD)
    if isinstance(kw["width"], list):
        kw["width"] = kw["width"][: kw["depth"]] if isinstance(kw["depth"], int) and kw["depth"] > 0 else kw["width"]
    init_name, activation, depth, width = kw.pop("init"), kw.pop("activation"), kw.pop("depth"), kw.pop("width")
    run = fails_cleanly(lambda: nn.propagate(init_name, activation, depth, width, seed=3, **kw))
    if run is None:
        return
    layers = run.depth if run.overflow_layer is None else run.overflow_layer - 1
    assert np.all(np.isfinite(run.pre_var[:layers]))  # finite up to the layer it reports, if any
    assert run.dtype == np.dtype(kw["dtype"]).name
