"""Philox4x32-10: Random123's known answers, the distributions, independence and reproducibility."""

import math

import numba
import numpy as np
import pytest
from scipy import stats

from testbed import rng
from testbed.rules import rng as rules

#: Random123's kat_vectors for philox4x32_10: (counter, key, expected output).
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]
#: Draws per statistical test.
N_SAMPLES = 200_000
#: Significance level of each KS test (fixed seeds make the outcome deterministic; this sizes the risk).
KS_ALPHA = 1e-4
#: Standard errors allowed for a sample correlation (|r| <= Z / sqrt(n) holds with probability 1 - 7e-6).
Z_BOUND = 4.5


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_known_answer_vectors(counter, key, expected):
    assert rng.philox4x32(counter, key) == list(expected)


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_compiled_rule_matches_known_answers(counter, key, expected):
    from testbed.kernels.targets import for_cpu

    assert [int(w) for w in for_cpu(rules.philox4x32)(*counter, *key)] == list(expected)


def test_uniform_is_uniform_on_open_closed_unit_interval():
    u = rng.uniform(N_SAMPLES, seed=1)
    assert u.min() > 0.0 and u.max() <= 1.0
    assert stats.kstest(u, "uniform").pvalue > KS_ALPHA


def test_normal_is_standard_normal():
    z = rng.normal(N_SAMPLES, seed=2)
    assert stats.kstest(z, "norm").pvalue > KS_ALPHA
    assert abs(z.mean()) < Z_BOUND / np.sqrt(N_SAMPLES)


def test_loc_and_scale():
    z = rng.normal(1000, seed=2)
    np.testing.assert_array_equal(rng.normal(1000, seed=2, loc=3.0, scale=2.0), 3.0 + 2.0 * z)


@pytest.mark.parametrize("other", [dict(stream=1), dict(step=1), dict(seed=8)])
def test_streams_steps_and_seeds_are_uncorrelated(other):
    base = rng.normal(N_SAMPLES, seed=7)
    varied = rng.normal(N_SAMPLES, **{"seed": 7, **other})
    correlation = np.corrcoef(base, varied)[0, 1]
    assert abs(correlation) < Z_BOUND / np.sqrt(N_SAMPLES)
    lagged = np.corrcoef(base[:-1], base[1:])[0, 1]
    assert abs(lagged) < Z_BOUND / np.sqrt(N_SAMPLES)


def test_element_i_is_draw_i_of_the_stream():
    z = rng.normal(11, seed=5, stream=3, step=9)
    assert [rules.normal(5, 3, 9, i) for i in range(11)] == list(z)
    u = rng.uniform(7, seed=5, stream=3, step=9)
    assert [rules.uniform(5, 3, 9, i) for i in range(7)] == list(u)


def test_identical_bits_for_one_and_two_threads():
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = rng.normal(10_001, seed=11)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = rng.normal(10_001, seed=11)
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(one, two)


#: Offsets of the first draw: every lane of a Philox block, and a later block.
KERNEL_OFFSETS = (0, 1, 2, 3, 6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_fill_kernel_gives_the_rules_bits_at_any_offset_size_and_chunk(dtype):
    """The CPU normal kernel (chunks of blocks, two passes each, checked stores at the ends of out) against the
    uncompiled scalar rule: chunks of 1 and 3 blocks put chunk edges inside short arrays, and the chunks come in
    two ranges (two threads' shares)."""
    from testbed.kernels import random as kernels

    seed, stream, step, loc, scale = 2**33 + 7, 4, 6, 0.5, 1.5
    for offset in KERNEL_OFFSETS:
        expected = np.array([loc + scale * rules.normal(seed, stream, step, offset + j) for j in range(37)])
        for chunk in (1, 3, kernels.CHUNK_BLOCKS):
            for n in (1, 2, 3, 4, 5, 37):
                out = np.full(n + 2, 99.0, dtype=dtype)
                # the chunks in two ranges, as two threads would take them
                items = kernels.fill_items(n, offset, chunk)
                for first, last in ((0, items // 2), (items // 2, items)):
                    args = (*np.uint64([seed, stream, step]), offset, loc, scale, chunk, first, last)
                    kernels.fill_normal_cpu(out[1:-1], *args)
                np.testing.assert_array_equal(out[1:-1], expected[:n].astype(dtype), err_msg=f"{offset=} {chunk=}")
                assert out[0] == out[-1] == 99.0  # nothing written outside out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 5, 4 * 10 * 3 + 3])  # one block; several CUDA blocks with a partial last one
def test_cuda_simulator_gives_identical_bits(n, dtype):
    for draw in (rng.uniform, rng.normal):
        cpu = draw(n, seed=2**40 + 3, stream=1, step=2, dtype=dtype)
        gpu = draw(n, seed=2**40 + 3, stream=1, step=2, dtype=dtype, backend="cuda")
        assert cpu.dtype == gpu.dtype == dtype
        np.testing.assert_array_equal(cpu, gpu)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: rng.philox4x32((0, 0, 0), (0, 0)), "counter"),
        (lambda: rng.philox4x32((0, 0, 0, 2**32), (0, 0)), "counter"),
        (lambda: rng.philox4x32((0, 0, 0, 0), (0, -1)), "key"),
        (lambda: rng.normal(0), "shape"),
        (lambda: rng.normal(3, seed=-1), "seed"),
        (lambda: rng.normal(3, scale=-1.0), "scale"),
        (lambda: rng.normal(3, loc=float("nan")), "loc"),
        (lambda: rng.normal(3, dtype=np.int32), "dtype"),
        (lambda: rng.normal(3, backend="tpu"), "backend"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


#: Relative accuracy of the polynomial log of Box-Muller against libm (a few units in the last place).
LOG_RTOL = 1e-15
#: Absolute accuracy of the polynomial sine and cosine of Box-Muller against libm.
SINCOS_ATOL = 1e-15


def _philox_uniforms():
    """Uniforms (w + 1) / 2**32 over the whole word range: the ends, powers of two and random words."""
    words = np.concatenate(
        [
            np.arange(0, 5000),
            2**32 - 1 - np.arange(0, 5000),
            2 ** np.arange(32) - 1,
            2 ** np.arange(1, 32) - 2,
            np.random.default_rng(3).integers(0, 2**32, 50_000),
        ]
    )
    return [(float(w) + 1.0) * 2.0**-32 for w in words]


def test_polynomial_log_matches_math_log():
    for u in _philox_uniforms():
        exact = np.log(u)
        assert abs(rules.log_unit(u) - exact) <= LOG_RTOL * abs(exact), u
    assert rules.log_unit(1.0) == 0.0


def test_polynomial_sincos_matches_math():
    for t in _philox_uniforms():
        sine, cosine = rules.sincos_two_pi(t)
        assert abs(sine - np.sin(2.0 * np.pi * t)) <= SINCOS_ATOL, t
        assert abs(cosine - np.cos(2.0 * np.pi * t)) <= SINCOS_ATOL, t


def test_compiled_box_muller_matches_the_plain_rule():
    from testbed.kernels.targets import for_cpu

    compiled = for_cpu(rules.box_muller, error_model="numpy")
    uniforms = _philox_uniforms()[:2000]
    for u0, u1 in zip(uniforms[::2], uniforms[1::2]):
        assert compiled(u0, u1) == rules.box_muller(u0, u1)


def _floor_cases():
    """Integers, halves and near-integers of both signs, up to floor_float's bound 2**51, and random reals."""
    exact = [
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.0,
        -1.0,
        1.5,
        -1.5,
        2.5,
        -2.5,
        2.0**51,
        -(2.0**51),
        2.0**51 - 0.5,
        -(2.0**51) + 0.5,
        2.0**50 + 0.25,
        -(2.0**50) - 0.75,
    ]
    near = [np.nextafter(k, np.inf) for k in range(-4, 5)] + [np.nextafter(k, -np.inf) for k in range(-4, 5)]
    random = np.random.default_rng(4).uniform(-1e6, 1e6, 20_000).tolist()
    return exact + near + random + _philox_uniforms()[:5000]


def test_floor_float_is_math_floor():
    for x in _floor_cases():
        assert rules.floor_float(x) == math.floor(x), x


def test_compiled_floor_float_is_math_floor():
    from testbed.kernels.targets import for_cpu

    compiled = for_cpu(rules.floor_float, error_model="numpy")
    for x in _floor_cases():
        assert compiled(x) == math.floor(x), x


def test_word_to_uniform_is_exactly_word_plus_one_over_two_pow_32():
    words = [0, 1, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 2, 2**32 - 1]
    words += np.random.default_rng(5).integers(0, 2**32, 10_000).tolist()
    from testbed.kernels.targets import for_cpu

    compiled = for_cpu(rules.word_to_uniform, error_model="numpy")
    for word in words:
        expected = (float(word) + 1.0) * 2.0**-32
        assert rules.word_to_uniform(np.uint64(word)) == expected, word
        assert compiled(np.uint64(word)) == expected, word
