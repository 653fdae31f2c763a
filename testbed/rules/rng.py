"""Philox4x32-10 and the draws built on it, as scalar rules.

Philox (Salmon, Moraes, Dror & Shaw 2011, "Parallel random numbers: as easy as 1, 2, 3", the Random123 library)
is a counter-based generator: the four output words depend only on a 128-bit counter and a 64-bit key, through
ten rounds of

    (c0, c1, c2, c3) <- (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0)),
    (k0, k1)         <- (k0 + W0, k1 + W1)  (mod 2**32, between rounds),

with M0 = 0xD2511F53, M1 = 0xCD9E8D57 and the Weyl increments W0 = 0x9E3779B9, W1 = 0xBB67AE85.

The testbed keys Philox with the seed and counts with (block, step, stream): draw ``index`` of a stream at a step
is lane ``index % 4`` of the block ``index // 4``. A number so depends on (seed, stream, step, index) alone,
never on the thread that draws it, so any thread count and any launch shape on any target give the same bits.

All arithmetic is on unsigned 64-bit integers holding 32-bit words, so the same code is exact in Numba on both
targets and in plain Python (where the CUDA simulator runs it).
"""

import math

import numpy as np

MASK32 = np.uint64(0xFFFFFFFF)
SHIFT32 = np.uint64(32)
PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint64(0x9E3779B9)
PHILOX_W1 = np.uint64(0xBB67AE85)

#: 2**-32: a 32-bit word w maps to the uniform (w + 1) * 2**-32 in (0, 1], exactly, in float64.
TWO_POW_MINUS_32 = 2.0**-32
TWO_PI = 2.0 * math.pi


def philox_round(c0, c1, c2, c3, k0, k1):
    """One Philox4x32 round (the S-box of two 32 x 32 -> 64 bit multiplies and the key XOR)."""
    product0 = PHILOX_M0 * c0
    product1 = PHILOX_M1 * c2
    return (
        (product1 >> SHIFT32) ^ c1 ^ k0,
        product1 & MASK32,
        (product0 >> SHIFT32) ^ c3 ^ k1,
        product0 & MASK32,
    )


def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10: the four 32-bit output words for counter (c0, c1, c2, c3) and key (k0, k1)."""
    c0 = np.uint64(c0)
    c1 = np.uint64(c1)
    c2 = np.uint64(c2)
    c3 = np.uint64(c3)
    k0 = np.uint64(k0)
    k1 = np.uint64(k1)
    # The ten rounds are written out: straight-line code lets LLVM vectorise a loop over many draws (a loop over
    # trials or blocks), which it does not do around an inner loop over rounds.
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
    k0 = (k0 + PHILOX_W0) & MASK32
    k1 = (k1 + PHILOX_W1) & MASK32
    return philox_round(c0, c1, c2, c3, k0, k1)


def random_words(seed, stream, step, block):
    """The four words of one block of a stream: counter (block lo, block hi, step, stream), key (seed lo, hi)."""
    seed = np.uint64(seed)
    block = np.uint64(block)
    # One line for the counter's four words, one for the key's two.
    # fmt: off
    return philox4x32(
        block & MASK32, block >> SHIFT32, np.uint64(step) & MASK32, np.uint64(stream) & MASK32,
        seed & MASK32, seed >> SHIFT32,
    )
    # fmt: on


#: 2**31: a 32-bit word w is converted to float as the signed 32-bit integer w - 2**31, plus 2**31.
HALF_WORD = 2**31


def word_to_uniform(word):
    """Map a 32-bit word w to (w + 1) / 2**32 in (0, 1] (exact in float64; never 0, so log(u) is finite).

    w + 1 is formed as float(w - 2**31) + (2**31 + 1), the conversion from a signed 32-bit integer: every SIMD
    unit converts that in vector registers, while a conversion from 64-bit integers has no AVX2 instruction and
    LLVM would convert the lanes one by one. Both sums are exact, so the uniform is the same bits either way.
    """
    centred = np.int32(np.int64(word) - HALF_WORD)
    return (float(centred) + (HALF_WORD + 1.0)) * TWO_POW_MINUS_32


def uniform4(seed, stream, step, block):
    """Four independent uniforms on (0, 1] from one Philox block."""
    w0, w1, w2, w3 = random_words(seed, stream, step, block)
    return word_to_uniform(w0), word_to_uniform(w1), word_to_uniform(w2), word_to_uniform(w3)


#: ln 2 split in two (Cody & Waite): LN2_HI has trailing zero bits, so e * LN2_HI is exact for |e| <= 2**10.
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
SQRT_HALF = 0.70710678118654752440084436210485

#: log m = 2 atanh(s) = sum_k 2 s^(2k+1) / (2k+1), s = (m - 1) / (m + 1), |s| <= 3 - 2 sqrt 2 < 0.1716: the terms
#: through k = 10 leave a truncation error below 0.1716**22 / 23 < 1e-18 relative.
LOG_C0 = 2.0
LOG_C1 = 2.0 / 3.0
LOG_C2 = 2.0 / 5.0
LOG_C3 = 2.0 / 7.0
LOG_C4 = 2.0 / 9.0
LOG_C5 = 2.0 / 11.0
LOG_C6 = 2.0 / 13.0
LOG_C7 = 2.0 / 15.0
LOG_C8 = 2.0 / 17.0
LOG_C9 = 2.0 / 19.0
LOG_C10 = 2.0 / 21.0

#: Taylor coefficients of sin(2 pi r) = sum_k SIN_Ck r^(2k+1) and cos(2 pi r) = sum_k COS_Ck r^(2k) for
#: |r| <= 1/8 (|2 pi r| <= pi/4): the first neglected terms are below 1e-19 and 3e-18.
SIN_C0 = TWO_PI
SIN_C1 = -(TWO_PI**3) / 6.0
SIN_C2 = TWO_PI**5 / 120.0
SIN_C3 = -(TWO_PI**7) / 5040.0
SIN_C4 = TWO_PI**9 / 362880.0
SIN_C5 = -(TWO_PI**11) / 39916800.0
SIN_C6 = TWO_PI**13 / 6227020800.0
SIN_C7 = -(TWO_PI**15) / 1307674368000.0
SIN_C8 = TWO_PI**17 / 355687428096000.0
COS_C0 = 1.0
COS_C1 = -(TWO_PI**2) / 2.0
COS_C2 = TWO_PI**4 / 24.0
COS_C3 = -(TWO_PI**6) / 720.0
COS_C4 = TWO_PI**8 / 40320.0
COS_C5 = -(TWO_PI**10) / 3628800.0
COS_C6 = TWO_PI**12 / 479001600.0
COS_C7 = -(TWO_PI**14) / 87178291200.0
COS_C8 = TWO_PI**16 / 20922789888000.0


def log_unit(u):
    """Natural log of u in [2**-32, 1] with plain + * / (no libm call, so a loop over it vectorises).

    Exact range reduction u = 2**e m, m in [sqrt(1/2), sqrt(2)) (multiplications by powers of two, as selects
    LLVM turns into SIMD blends), then log u = e ln 2 + 2 atanh((m - 1) / (m + 1)) by its odd series, evaluated by
    Estrin's scheme (Knuth, TAOCP vol. 2, sec. 4.6.4). Relative error below 1e-15 on the domain (the tests compare
    it with ``math.log``); log(1) is exactly 0.
    """
    e = 0.0
    if u < 2.0**-16:
        u = u * 2.0**16
        e = e - 16.0
    if u < 2.0**-8:
        u = u * 2.0**8
        e = e - 8.0
    if u < 2.0**-4:
        u = u * 2.0**4
        e = e - 4.0
    if u < 2.0**-2:
        u = u * 2.0**2
        e = e - 2.0
    if u < 0.5:
        u = u * 2.0
        e = e - 1.0
    if u < SQRT_HALF:
        u = u * 2.0
        e = e - 1.0
    s = (u - 1.0) / (u + 1.0)
    z = s * s
    z2 = z * z
    z4 = z2 * z2
    # Estrin's scheme: independent pairs combined by powers of z, so the chain of dependent operations is 4 deep
    # instead of Horner's 10 (a loop over draws is limited by that latency, not by the operation count).
    p0 = (LOG_C0 + LOG_C1 * z) + (LOG_C2 + LOG_C3 * z) * z2
    p1 = (LOG_C4 + LOG_C5 * z) + (LOG_C6 + LOG_C7 * z) * z2
    p2 = (LOG_C8 + LOG_C9 * z) + LOG_C10 * z2
    p = (p0 + p1 * z4) + p2 * (z4 * z4)
    return e * LN2_HI + (e * LN2_LO + s * p)


#: 1.5 * 2**52: for |x| <= 2**51, x + ROUNDING_MAGIC lies in [2**52, 2**53], where the doubles are the integers,
#: so the sum rounds x to an integer and subtracting the constant again is exact.
ROUNDING_MAGIC = 1.5 * 2.0**52


def floor_float(x):
    """floor(x) as a float, exact for |x| <= 2**51, with plain + - and a select.

    ``math.floor`` returns an integer in Numba: the round trip through int64 has no AVX2 instruction, so LLVM
    would leave the vector registers for it. Here x is rounded to the nearest integer by the classic
    ``(x + 1.5 * 2**52) - 1.5 * 2**52`` (exact under round-to-nearest, which Numba does not reassociate), then
    stepped down by one where the rounding went up.
    """
    nearest = (x + ROUNDING_MAGIC) - ROUNDING_MAGIC
    return nearest - 1.0 if nearest > x else nearest


def sincos_two_pi(t):
    """(sin 2 pi t, cos 2 pi t) with plain + * (no libm call), absolute error below 1e-15.

    Reduction by quarter turns: r = t - round(t) - q/4 with q = round(4 (t - round(t))) in -2..2, exact when
    t + 1/2 and 4 t are exact (true for the uniforms (w + 1) / 2**32) and |t| <= 2**50 (:func:`floor_float`),
    then Taylor polynomials on |r| <= 1/8 (Estrin's scheme) and a rotation by q quarter turns.
    """
    t = t - floor_float(t + 0.5)
    q = floor_float(4.0 * t + 0.5)
    r = t - 0.25 * q
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    # Estrin's scheme, as in log_unit
    sin_low = (SIN_C0 + SIN_C1 * r2) + (SIN_C2 + SIN_C3 * r2) * r4
    sin_high = (SIN_C4 + SIN_C5 * r2) + (SIN_C6 + SIN_C7 * r2) * r4
    sin_r = r * ((sin_low + sin_high * r8) + SIN_C8 * (r8 * r8))
    cos_low = (COS_C0 + COS_C1 * r2) + (COS_C2 + COS_C3 * r2) * r4
    cos_high = (COS_C4 + COS_C5 * r2) + (COS_C6 + COS_C7 * r2) * r4
    cos_r = (cos_low + cos_high * r8) + COS_C8 * (r8 * r8)
    # rotate by q quarter turns: sin(x + pi/2) = cos x, cos(x + pi/2) = -sin x
    sine = sin_r
    cosine = cos_r
    if q == 1:
        sine = cos_r
        cosine = -sin_r
    if q == -1:
        sine = -cos_r
        cosine = sin_r
    if q == 2 or q == -2:
        sine = -sin_r
        cosine = -cos_r
    return sine, cosine


def box_muller(u0, u1):
    """Two independent standard normals from two uniforms on (0, 1] (Box & Muller 1958).

    (sqrt(-2 ln u0) cos 2 pi u1, sqrt(-2 ln u0) sin 2 pi u1), with the log and the sine and cosine evaluated by
    :func:`log_unit` and :func:`sincos_two_pi` (plain arithmetic, so a loop over draws vectorises and the CPU and
    the CUDA simulator agree bit for bit).
    """
    radius = math.sqrt(-2.0 * log_unit(u0))
    sine, cosine = sincos_two_pi(u1)
    return radius * cosine, radius * sine


def normal4(seed, stream, step, block):
    """Four independent standard normals from one Philox block (two Box-Muller pairs)."""
    u0, u1, u2, u3 = uniform4(seed, stream, step, block)
    z0, z1 = box_muller(u0, u1)
    z2, z3 = box_muller(u2, u3)
    return z0, z1, z2, z3


def normal2(seed, stream, step, block):
    """The first two draws of :func:`normal4` (block ``block``), without computing the other pair."""
    u0, u1, u2, u3 = uniform4(seed, stream, step, block)
    return box_muller(u0, u1)


def store_block(out, block, offset, d0, d1, d2, d3):
    """Store the four draws of Philox ``block`` where they fall inside ``out`` (element j holds draw offset + j)."""
    n = out.size
    first = 4 * block - offset
    if 0 <= first < n:
        out[first] = d0
    if 0 <= first + 1 < n:
        out[first + 1] = d1
    if 0 <= first + 2 < n:
        out[first + 2] = d2
    if 0 <= first + 3 < n:
        out[first + 3] = d3


def pick_lane(lane, x0, x1, x2, x3):
    """x_lane for lane in 0..3 (a branch, which every target compiles)."""
    if lane == 0:
        return x0
    if lane == 1:
        return x1
    if lane == 2:
        return x2
    return x3


def uniform(seed, stream, step, index):
    """Draw ``index`` of (seed, stream, step): uniform on (0, 1]."""
    u0, u1, u2, u3 = uniform4(seed, stream, step, index // 4)
    return pick_lane(index % 4, u0, u1, u2, u3)


def normal(seed, stream, step, index):
    """Draw ``index`` of (seed, stream, step): standard normal."""
    z0, z1, z2, z3 = normal4(seed, stream, step, index // 4)
    return pick_lane(index % 4, z0, z1, z2, z3)


# Distribution codes of :func:`draw4` (and of the fill kernels in :mod:`testbed.kernels.random`). The parameters
# (loc, scale, a, b, c) mean, per code:
#   CONSTANT                      loc
#   UNIFORM                       loc + scale * (u - a), u uniform on (0, 1]
#   NORMAL                        loc + scale * z, z standard normal
#   TRUNCATED_NORMAL              loc + scale * z, z standard normal conditioned on a <= z <= b, by rejection from
#                                 normal proposals (efficient when the interval holds much of the mass)
#   TRUNCATED_NORMAL_BY_UNIFORM   the same law by rejection from uniform proposals on [a, b], accepted with
#                                 probability exp((c - z^2) / 2), c = min of z^2 on [a, b] (for intervals in a tail)
CONSTANT = 0
UNIFORM = 1
NORMAL = 2
TRUNCATED_NORMAL = 3
TRUNCATED_NORMAL_BY_UNIFORM = 4

#: Attempt k >= 1 of a rejection sampler for draw i uses the Philox block ATTEMPT_BLOCKS * k + i (words 0 and 1),
#: so every attempt is a fixed function of (seed, stream, step, i, k) and first draws (blocks i // 4 < 2**38)
#: never meet retries. Draw indices must stay below ATTEMPT_BLOCKS.
ATTEMPT_BLOCKS = 2**40


def truncated_normal_attempt(code, seed, stream, step, index, attempt, a, b, c):
    """Attempt ``attempt`` of the rejection sampler of draw ``index``: (accepted, z)."""
    block = np.uint64(ATTEMPT_BLOCKS) * np.uint64(attempt) + np.uint64(index)
    u0, u1, u2, u3 = uniform4(seed, stream, step, block)
    if code == TRUNCATED_NORMAL:
        z, unused = box_muller(u0, u1)
        return a <= z <= b, z
    z = min(a + (b - a) * u0, b)
    return u1 <= math.exp(0.5 * (c - z * z)), z


def truncated_normal(code, seed, stream, step, index, z, a, b, c):
    """Draw ``index`` of a standard normal truncated to [a, b], given its first normal proposal ``z``.

    Normal proposals (``TRUNCATED_NORMAL``): attempt 0 is ``z``, the plain normal draw ``index``; attempt k >= 1
    comes from Philox block ``ATTEMPT_BLOCKS * k + index``. Uniform proposals (``TRUNCATED_NORMAL_BY_UNIFORM``):
    every attempt k >= 1 comes from those blocks (``z`` is unused). Terminates with probability one; the caller
    chooses the proposal whose acceptance rate is reasonable.
    """
    if code == TRUNCATED_NORMAL and a <= z <= b:
        return z
    attempt = 1
    accepted, z = truncated_normal_attempt(code, seed, stream, step, index, attempt, a, b, c)
    while not accepted:
        attempt += 1
        accepted, z = truncated_normal_attempt(code, seed, stream, step, index, attempt, a, b, c)
    return z


def draw4(code, seed, stream, step, block, loc, scale, a, b, c):
    """Draws 4 block .. 4 block + 3 of the distribution ``code`` (see the table above :data:`CONSTANT`)."""
    if code == CONSTANT:
        return loc, loc, loc, loc
    if code == UNIFORM:
        u0, u1, u2, u3 = uniform4(seed, stream, step, block)
        return loc + scale * (u0 - a), loc + scale * (u1 - a), loc + scale * (u2 - a), loc + scale * (u3 - a)
    z0, z1, z2, z3 = normal4(seed, stream, step, block)
    if code != NORMAL:
        first = np.uint64(4) * np.uint64(block)
        z0 = truncated_normal(code, seed, stream, step, first, z0, a, b, c)
        z1 = truncated_normal(code, seed, stream, step, first + np.uint64(1), z1, a, b, c)
        z2 = truncated_normal(code, seed, stream, step, first + np.uint64(2), z2, a, b, c)
        z3 = truncated_normal(code, seed, stream, step, first + np.uint64(3), z3, a, b, c)
    return loc + scale * z0, loc + scale * z1, loc + scale * z2, loc + scale * z3
