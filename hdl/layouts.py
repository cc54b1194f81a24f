"""Bit layouts of the data that crosses module boundaries, and packing to integers.

A compressed group is ``{values, offsets}``: ``values`` holds ``prod(G)`` slots (outer rank
slot major, as in ``hss``), ``offsets.r<r>`` the rank-r offsets; dense ranks have no field
(they cost no bits). Fields are little-endian: the first field sits in the lowest bits.
"""
from __future__ import annotations

import functools

from amaranth.hdl import unsigned
from amaranth.lib import data
from amaranth.lib.wiring import Out

from hss import Pattern, pack_fields

from .config import value_shape

__all__ = ["offsets_layout", "group_layout", "act_group_layout", "act_beat_layout", "sums_member",
           "pack_group", "pack_values"]


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


def act_beat_layout(config) -> data.ArrayLayout:
    """A fixed build's ``activations`` beat: one dense group per PE column, ``[cols][S]``
    (a flexible build's is ``hdl.flex.flex_act_beat_layout``)."""
    c = config
    return data.ArrayLayout(act_group_layout(c.pattern, c.width, c.signed), c.cols)


def sums_member(config):
    """A PE array's ``sums`` port, ``[rows][cols]`` accumulators: one signal, or one per row
    where a tile leaves in several beats (``config.tile_beats``): the whole tile would pass
    Amaranth's signal limit (``hdl.config.MAX_SIGNAL_BITS``). Indexed ``sums[i][j]`` alike."""
    row = data.ArrayLayout(config.acc_shape, config.cols)
    if config.tile_beats == 1:
        return Out(data.ArrayLayout(row, config.rows))
    return Out(row).array(config.rows)


def pack_values(values, width: int) -> int:
    """Values (two's complement when negative) packed little-endian."""
    return pack_fields(values, width)


@functools.lru_cache(maxsize=64)
def _offset_fields(pattern: Pattern, width: int) -> tuple[tuple[int, int, int], ...]:
    """(rank, bits per offset, bit position) of each stored rank, read from the layout once:
    building a layout per packed group made packing a large GEMM slow."""
    layout = group_layout(pattern, width, True)  # signedness does not change bit positions
    base = layout["offsets"].offset
    return tuple((r, pattern.offset_bits(r), base + layout["offsets"].shape[f"r{r}"].offset)
                 for r in range(pattern.num_ranks) if not pattern.rank(r).dense)


def pack_group(pattern: Pattern, width: int, values, offsets) -> int:
    """A compressed group as the integer of its ``group_layout`` bits.

    ``offsets[r]`` is indexed by rank number, as in ``hss.HSSMatrix.group``.
    """
    word = pack_values(values, width)
    for r, bits, position in _offset_fields(pattern, width):
        word |= pack_fields(offsets[r], bits) << position
    return word
