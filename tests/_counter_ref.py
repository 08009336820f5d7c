"""The counter dither's stream written out independently in plain Python integers (hwsim.capture.quant_counter's
module doc): the oracle its tests compare every path with. Not shared with the code it checks, on purpose."""

from __future__ import annotations

M64 = (1 << 64) - 1


def splitmix_out(z: int) -> int:
    """SplitMix64's output function (Steele, Lea, Flood 2014): add the golden gamma, then two xorshift-multiplies."""
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def lowbias(x: int) -> int:
    """One round of Wellons' lowbias32 on a 32-bit word."""
    x ^= x >> 16
    x = (x * 0x21F0AAAD) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x735A2D97) & 0xFFFFFFFF
    return x ^ (x >> 15)


def hash_by_hand(i: int, k0: int, k1: int) -> int:
    """H of element i under key (k0, k1): two keyed rounds, ⌊i / 2^32⌋ folded into k1 by the golden-ratio odd constant."""
    return lowbias(lowbias((i & 0xFFFFFFFF) ^ k0) ^ k1 ^ (((i >> 32) * 0x9E3779B9) & 0xFFFFFFFF))


def u_by_hand(i: int, k0: int, k1: int) -> float:
    """u of element i: the top 23 bits of H → an odd multiple of 2^-24."""
    return (2 * (hash_by_hand(i, k0, k1) >> 9) + 1) * 2.0**-24
