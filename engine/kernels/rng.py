"""Seeded per-stream random numbers inside numba kernels: xoshiro256** (Blackman & Vigna).

Each random stream (a Poisson source, a noise current) owns a ``uint64[4]`` state row, so streams
are independent of each other and of numba's global generator, draw order is fixed (the kernels
draw serially), and the state is saved/restored with the rest of the simulation as plain arrays.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_U64 = np.uint64
_INV_2_53 = 1.0 / 9007199254740992.0


def seed_state(seed_sequence: np.random.SeedSequence) -> np.ndarray:
    """Four-word xoshiro256** state from a SeedSequence (never all zero)."""
    state = seed_sequence.generate_state(4, np.uint64)
    if not state.any():
        state[0] = np.uint64(0x9E3779B97F4A7C15)
    return state


@njit(cache=True, nogil=True, inline="always")
def _rotl(x, k):
    return (x << _U64(k)) | (x >> _U64(64 - k))


@njit(cache=True, nogil=True)
def next_u64(s):
    """Advance the state row ``s`` (uint64[4]) and return the next 64-bit output."""
    result = _rotl(s[1] * _U64(5), 7) * _U64(9)
    t = s[1] << _U64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit(cache=True, nogil=True)
def uniform(s):
    """Uniform double in [0, 1) with 53 random bits."""
    return np.float64(next_u64(s) >> _U64(11)) * _INV_2_53


@njit(cache=True, nogil=True)
def normal(s):
    """Standard normal variate (Box-Muller, one value per two uniforms)."""
    u1 = 1.0 - uniform(s)  # (0, 1]: log stays finite
    u2 = uniform(s)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
