"""Pinned seeded values and the documented Philox counter layout.

Every seeded result of the testbed follows from reference.md section 5 and testbed/rules/rng.py's docstring:
Philox4x32-10 keyed by the seed (key = (seed lo, seed hi)) and counted by (block lo, block hi, step, stream); draw
``i`` of a stream is word ``i % 4`` of block ``i // 4``; uniforms are (w + 1) / 2**32; normals are Box-Muller on
(u0, u1) and (u2, u3), cosine first. The layout is asserted here against the independent NumPy Philox of
tests/naive.py (which is itself checked against the published known answers), and a few seeded results are pinned
as golden numbers, written once from this layout: a change of any of them changes every seeded result a user has,
and must be a deliberate, documented decision (update the numbers and say so), never an accident.
"""

import naive
import numpy as np
import pytest

from testbed import init, landscapes, montecarlo, optim, rng
from testbed.rules import rng as rng_rules

#: Known answers of Philox4x32-10 (Random123's kat_vectors; the first is reference.md's).
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]
#: A seed with bits in both key words, and (stream, step, block) with bits in every counter word.
SEED = 2**33 + 5
LAYOUT_CASES = [(0, 0, 0, 0), (SEED, 3, 7, 2), (SEED, 2**32 - 2, 1, 2**33 + 9), (12345, 1, 2**31 + 3, 5)]
#: Box-Muller through NumPy's log, cos and sin against the polynomial ones of the rules: a few ulp of |z| <= 7.
NORMAL_ATOL = 1e-14
#: Golden numbers: the same bits on any CPU (uniforms are exact; normals are IEEE + - * / sqrt, no libm).
GOLDEN_RTOL = 1e-15

GOLDEN_UNIFORM = [
    0.2245502306614071,
    0.3225117588881403,
    0.7154802328441292,
    0.46729278191924095,
    0.716736224014312,
    0.9200088402722031,
]
GOLDEN_NORMAL = [
    -0.7604985546640631,
    1.5520804273036954,
    -0.8010739509553745,
    0.16698245398765096,
    0.7152162959633537,
    -0.39314175425236897,
]
GOLDEN_HE_NORMAL = [
    -1.274359790703822,
    0.3187411576444357,
    0.6246371925228559,
    0.6560499448839687,
    0.5594409094055646,
    0.10767762175554395,
    0.41579886154897633,
    0.2611585433951235,
]
GOLDEN_ORTHOGONAL = [
    0.04068126497655444,
    -0.9716732116422242,
    0.23280078276670937,
    0.731737139005292,
    -0.1296809455989584,
    -0.6691364672089768,
    0.6803718057652429,
    0.19757029666790826,
    0.7057337910248433,
]
GOLDEN_VARIANCE_SCALING = [
    0.03144964287093496,
    -0.46004228454927004,
    -0.707539407563486,
    0.5656872201584441,
    -0.07537591008626392,
    0.19075187178890807,
    0.5259779980564,
    0.08028726196996955,
]
GOLDEN_GLOROT_UNIFORM_BIAS_INPUT = [
    0.4066490627622886,
    0.483025025795872,
    -0.4057616758698854,
    -0.1987571333235224,
    0.8091195781031025,
    -0.3520094858863568,
    0.2689827811204749,
    -0.8811809059621769,
]
GOLDEN_ESCAPE_STEPS = [57, 61, 55, 47, 51, 90, 70, 56, 63, 65, 47, 60]


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_independent_philox_reproduces_the_known_answers(counter, key, expected):
    assert [int(w) for w in naive.philox4x32_10(counter, key)] == list(expected)
    assert [int(w) for w in rng_rules.philox4x32(*counter, *key)] == list(expected)


@pytest.mark.parametrize("seed, stream, step, block", LAYOUT_CASES)
def test_counter_layout_is_block_lo_block_hi_step_stream_keyed_by_the_seed(seed, stream, step, block):
    expected = naive.philox4x32_10((block % 2**32, block >> 32, step, stream), (seed % 2**32, seed >> 32))
    got = rng_rules.random_words(np.uint64(seed), stream, step, block)
    assert [int(w) for w in got] == [int(w) for w in expected]


@pytest.mark.parametrize("seed, stream, step", [(SEED, 3, 7), (1, 2**32 - 2, 2**31 + 1)])
def test_draw_i_is_word_i_mod_4_of_block_i_div_4(seed, stream, step):
    n = 11  # two whole blocks and a partial one
    np.testing.assert_array_equal(
        rng.uniform(n, seed=seed, stream=stream, step=step), naive.stream_uniforms(seed, stream, step, n)
    )
    np.testing.assert_allclose(
        rng.normal(n, seed=seed, stream=stream, step=step),
        naive.stream_normals(seed, stream, step, n),
        rtol=0,
        atol=NORMAL_ATOL,
    )
    scalar = [rng_rules.normal(np.uint64(seed), stream, step, i) for i in range(n)]
    np.testing.assert_allclose(scalar, naive.stream_normals(seed, stream, step, n), rtol=0, atol=NORMAL_ATOL)


def test_initialisers_fill_element_j_with_draw_j_of_their_stream():
    fan_in, fan_out = 4, 2
    he = init.initialize("he_normal", fan_in, fan_out, seed=SEED, stream=1)
    expected = np.sqrt(2.0 / fan_in) * naive.stream_normals(SEED, 1, 0, fan_in * fan_out).reshape(fan_out, fan_in)
    np.testing.assert_allclose(he, expected, rtol=0, atol=NORMAL_ATOL)
    glorot = init.initialize("glorot_uniform", fan_in, fan_out, seed=SEED, bias_input=True)
    bound = np.sqrt(6.0 / (1 + fan_in + fan_out))
    u = naive.stream_uniforms(SEED, 0, 0, fan_in * fan_out).reshape(fan_out, fan_in)
    np.testing.assert_allclose(glorot, bound * (2.0 * u - 1.0), rtol=1e-15, atol=1e-16)


def test_golden_draws():
    np.testing.assert_array_equal(rng.uniform(6, seed=SEED, stream=3, step=7), GOLDEN_UNIFORM)
    np.testing.assert_allclose(rng.normal(6, seed=SEED, stream=3, step=7), GOLDEN_NORMAL, rtol=GOLDEN_RTOL)


def test_golden_initialisers():
    cases = [
        (init.initialize("he_normal", 4, 2, seed=SEED, stream=1), GOLDEN_HE_NORMAL),
        (init.initialize("orthogonal", 3, 3, seed=SEED), GOLDEN_ORTHOGONAL),
        (init.initialize("variance_scaling", 4, 2, seed=SEED), GOLDEN_VARIANCE_SCALING),
        (init.initialize("glorot_uniform", 4, 2, seed=SEED, bias_input=True), GOLDEN_GLOROT_UNIFORM_BIAS_INPUT),
    ]
    for got, golden in cases:
        np.testing.assert_allclose(got.ravel(), golden, rtol=GOLDEN_RTOL, atol=1e-16)


def test_golden_escape_steps():
    f = landscapes.saddle(dim=3)
    result = montecarlo.escape_times(
        f, optim.SGD(lr=0.1), trials=12, noise=0.05, radius=2.0, start="saddle", max_steps=500, seed=SEED, backend="cpu"
    )
    np.testing.assert_array_equal(result.steps, GOLDEN_ESCAPE_STEPS)
    assert result.escaped.all()
