"""Bit layouts of the data that crosses module boundaries, and packing to integers.

A compressed group is ``{values, offsets}``: ``values`` holds ``prod(G)`` slots (outer rank
slot major, as in ``hss``), ``offsets.r<r>`` the rank-r offsets; dense ranks have no field
(they cost no bits). Fields are little-endian: the first field sits in the lowest bits.
"""
from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data

from hss import Pattern, pack_fields

from .config import value_shape

__all__ = ["offsets_layout", "group_layout", "act_group_layout", "pack_group", "pack_values"]


def offsets_layout(pattern: Pattern) -> data.StructLayout:
    return data.StructLayout({
        f"r{r}": data.ArrayLayout(unsigned(pattern.offset_bits(r)), pattern.kept(r))
        for r in reversed(range(pattern.num_ranks)) if not pattern.rank(r).dense})


def group_layout(pattern: Pattern, width: int, is_signed: bool) -> data.StructLayout:
    """One compressed weight group."""
    return data.StructLayout({
        "values": data.ArrayLayout(value_shape(width, is_signed), pattern.slots),
        "offsets": offsets_layout(pattern),
    })


def act_group_layout(pattern: Pattern, width: int, is_signed: bool) -> data.ArrayLayout:
    """One dense group of S activations."""
    return data.ArrayLayout(value_shape(width, is_signed), pattern.group_size)


def pack_values(values, width: int) -> int:
    """Values (two's complement when negative) packed little-endian."""
    return pack_fields(values, width)


def pack_group(pattern: Pattern, width: int, values, offsets) -> int:
    """A compressed group as the integer of its ``group_layout`` bits.

    ``offsets[r]`` is indexed by rank number, as in ``hss.HSSMatrix.group``.
    """
    layout = group_layout(pattern, width, True)  # signedness does not change bit positions
    word = pack_values(values, width)
    off_layout = layout["offsets"].shape
    base = layout["offsets"].offset
    for r in range(pattern.num_ranks):
        if pattern.rank(r).dense:
            continue
        field = off_layout[f"r{r}"]
        word |= pack_fields(offsets[r], pattern.offset_bits(r)) << (base + field.offset)
    return word
