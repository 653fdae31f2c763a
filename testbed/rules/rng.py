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
    for _ in range(9):
        c0, c1, c2, c3 = philox_round(c0, c1, c2, c3, k0, k1)
        k0 = (k0 + PHILOX_W0) & MASK32
        k1 = (k1 + PHILOX_W1) & MASK32
    return philox_round(c0, c1, c2, c3, k0, k1)


def random_words(seed, stream, step, block):
    """The four words of one block of a stream: counter (block lo, block hi, step, stream), key (seed lo, hi)."""
    seed = np.uint64(seed)
    block = np.uint64(block)
    return philox4x32(
        block & MASK32, block >> SHIFT32, np.uint64(step) & MASK32, np.uint64(stream) & MASK32,
        seed & MASK32, seed >> SHIFT32,
    )


def word_to_uniform(word):
    """Map a 32-bit word w to (w + 1) / 2**32 in (0, 1] (exact in float64; never 0, so log(u) is finite)."""
    return (float(word) + 1.0) * TWO_POW_MINUS_32


def uniform4(seed, stream, step, block):
    """Four independent uniforms on (0, 1] from one Philox block."""
    w0, w1, w2, w3 = random_words(seed, stream, step, block)
    return word_to_uniform(w0), word_to_uniform(w1), word_to_uniform(w2), word_to_uniform(w3)


def box_muller(u0, u1):
    """Two independent standard normals from two uniforms on (0, 1] (Box & Muller 1958)."""
    radius = math.sqrt(-2.0 * math.log(u0))
    angle = TWO_PI * u1
    return radius * math.cos(angle), radius * math.sin(angle)


def normal4(seed, stream, step, block):
    """Four independent standard normals from one Philox block (two Box-Muller pairs)."""
    u0, u1, u2, u3 = uniform4(seed, stream, step, block)
    z0, z1 = box_muller(u0, u1)
    z2, z3 = box_muller(u2, u3)
    return z0, z1, z2, z3


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
