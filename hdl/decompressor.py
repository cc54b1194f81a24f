"""HSSDecompressor: compressed groups in, slot positions and dense groups out."""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hss import Pattern

from .config import value_shape
from .layouts import group_layout
from .selector import GHScatter

__all__ = ["HSSDecompressor", "decompressed_layout"]


def decompressed_layout(pattern: Pattern, width: int, is_signed: bool) -> data.StructLayout:
    return data.StructLayout({
        "positions": data.ArrayLayout(unsigned(max(1, (pattern.group_size - 1).bit_length())),
                                      pattern.slots),
        "dense": data.ArrayLayout(value_shape(width, is_signed), pattern.group_size),
    })


class HSSDecompressor(wiring.Component):
    """Expands one compressed group per cycle into its dense group of S values, and the
    absolute position in ``[0, S)`` of every value slot.

    ``i``/``o`` are ``lib.stream``s. Scattering runs rank by rank, innermost first, with a
    pipeline register after each rank (``latency`` = number of ranks); the whole pipeline
    advances when the output is empty or taken, so it sustains one group per cycle.
    """

    def __init__(self, pattern: Pattern, width: int, is_signed: bool):
        if not isinstance(pattern, Pattern):
            raise TypeError(f"pattern must be an hss.Pattern, not {pattern!r}")
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        if not isinstance(is_signed, bool):
            raise TypeError(f"is_signed must be a bool, not {is_signed!r}")
        self.pattern, self.width, self.is_signed = pattern, width, is_signed
        self.latency = pattern.num_ranks
        super().__init__({
            "i": In(stream.Signature(group_layout(pattern, width, is_signed))),
            "o": Out(stream.Signature(decompressed_layout(pattern, width, is_signed))),
        })

    def _positions(self) -> list[Value]:
        p = self.pattern
        out = []
        for slot in range(p.slots):
            pos = Const(0, 1)
            for r in range(p.num_ranks):
                if p.rank(r).dense:
                    offset = Const(p.slot_offsets(slot)[r])  # dense: offset = slot index
                else:
                    offsets = getattr(self.i.payload.offsets, f"r{r}")
                    offset = offsets[p.offset_index(r, slot)]
                pos = pos + offset * p.span(r - 1)
            out.append(pos)
        return out

    def elaborate(self, platform):
        m = Module()
        p = self.pattern
        value = value_shape(self.width, self.is_signed)
        en = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(en)

        # What enters each rank's stage: the blocks so far (kept(r+1) parents of G_r
        # blocks each), the offsets still needed, the slot positions, and valid.
        blocks = Value.cast(self.i.payload.values)
        offsets = self.i.payload.offsets
        # each slot position widened/truncated to its field (Cat of the raw sums would
        # misalign the fields: their widths differ from the layout's element width)
        positions = Signal(self.o.payload.positions.shape(), name="positions_in")
        m.d.comb += [positions[s].eq(pos) for s, pos in enumerate(self._positions())]
        positions = Value.cast(positions)
        valid = self.i.valid
        for r in range(p.num_ranks):
            sub = data.ArrayLayout(value, p.span(r - 1)) if r else value
            spread = []
            for k in range(p.kept(r + 1)):
                sc = GHScatter(p.G[r], p.H[r], sub)
                m.submodules[f"scatter_r{r}_{k}"] = sc
                chunk = Value.cast(sc.inputs).shape().width
                m.d.comb += Value.cast(sc.inputs).eq(blocks[k * chunk:(k + 1) * chunk])
                if not p.rank(r).dense:
                    rank_offsets = getattr(offsets, f"r{r}")
                    m.d.comb += [sc.offsets[i].eq(rank_offsets[k * p.G[r] + i])
                                 for i in range(p.G[r])]
                spread.append(Value.cast(sc.outputs))
            spread = Cat(*spread)
            stage_blocks = Signal(len(spread), name=f"blocks_r{r}", reset_less=True)
            stage_offsets = Signal.like(self.i.payload.offsets, name=f"offsets_r{r}",
                                        reset_less=True)
            stage_positions = Signal(len(positions), name=f"positions_r{r}", reset_less=True)
            stage_valid = Signal(name=f"valid_r{r}")
            with m.If(en):
                m.d.sync += [stage_blocks.eq(spread), stage_offsets.eq(offsets),
                             stage_positions.eq(positions), stage_valid.eq(valid)]
            blocks, offsets = stage_blocks, stage_offsets
            positions, valid = stage_positions, stage_valid
        m.d.comb += [self.o.valid.eq(valid),
                     Value.cast(self.o.payload.dense).eq(blocks),
                     Value.cast(self.o.payload.positions).eq(positions)]
        return m
