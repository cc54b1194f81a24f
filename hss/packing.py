"""Packing fields into integers, little-endian: field 0 in the lowest bits.

This is the bit order of Amaranth ArrayLayouts and of 2:4 sparse tensor core metadata
(two 2-bit indices per 4-element block, the first in bits [1:0]).
"""
from __future__ import annotations

__all__ = ["pack_fields", "unpack_fields"]


def pack_fields(fields, bits: int) -> int:
    """Concatenate ``bits``-wide fields (two's complement for negatives) into one int."""
    mask = (1 << bits) - 1
    word = 0
    for i, f in enumerate(fields):
        word |= (int(f) & mask) << (i * bits)
    return word


def unpack_fields(word: int, bits: int, count: int, signed: bool = False) -> list[int]:
    """Split an int into ``count`` fields of ``bits`` bits (sign-extended if ``signed``)."""
    mask = (1 << bits) - 1
    out = []
    for i in range(count):
        f = (word >> (i * bits)) & mask
        if signed and bits and f >> (bits - 1):
            f -= 1 << bits
        out.append(f)
    return out
