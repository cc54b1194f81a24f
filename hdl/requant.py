"""Requantizer: one row of a tile's accumulators to int8 per cycle (``hss.requant``).

Why a row at a time: hss_system keeps one ``(scale, shift)`` entry per output row in
``qbuf``, a memory with one read port, so one row per cycle reads it at its natural rate;
the row's ``cols`` values share the entry. A whole tile per cycle would need ``rows``
entries a cycle and ``rows x cols`` multipliers; a row needs ``cols`` multipliers
(accumulator x 16 bits) and keeps up with the engine whenever a tile takes at least ``rows``
steps, i.e. whenever ``BEATS_PER_TILE >= rows`` (a tile takes a step or more per beat),
and the cycles around it are hidden. Where they are not (16 rows), the controller runs
``SystemConfig.requant_lanes`` of them side by side, ``qbuf`` in as many banks.

Pipeline, two stages (``REQUANT_LATENCY`` cycles from accepting a row to offering it):

1. ``p = z * scale`` per value, registered with the row's ``shift``, ``relu`` and ``last``;
2. ``q = (p >> shift) + p[shift - 1]`` (the arithmetic shift; adding the last bit shifted
   out is round half up, ``floor((p + 2**(shift-1)) / 2**shift)``, an increment instead of
   a wide add; nothing at shift 0; one shifter gives both, ``t = (2 * p) >> shift``, ``q =
   (t >> 1) + t[0]``), ReLU, saturation to ``[-128, 127]``, registered as the output.

Streams (``amaranth.lib.stream``): ``i`` takes ``{z[cols], scale, shift, relu, last}``,
``o`` gives ``{y[cols], last}``; ``last`` travels with its row (the controller marks a
tile's final row). The whole pipeline advances when the output is empty or taken, so
``i.ready`` is ``~o.valid | o.ready``: full rate without back-pressure, no buffering.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hss.requant import OUT_MAX, OUT_MIN, SCALE_BITS, SHIFT_BITS, SHIFT_MAX

from .config import value_shape

__all__ = ["Requantizer", "REQUANT_LATENCY", "requant_in_layout", "requant_out_layout",
           "pack_requant_row", "unpack_requant_row"]

REQUANT_LATENCY = 2
OUT_BITS = 8


def requant_in_layout(cols: int, acc_width: int, is_signed: bool) -> data.StructLayout:
    """A row in: ``cols`` accumulators and the row's table entry, ``relu`` and ``last``."""
    return data.StructLayout({"z": data.ArrayLayout(value_shape(acc_width, is_signed), cols),
                              "scale": signed(SCALE_BITS), "shift": unsigned(SHIFT_BITS),
                              "relu": 1, "last": 1})


def requant_out_layout(cols: int) -> data.StructLayout:
    """A row out: ``cols`` int8 values and ``last``."""
    return data.StructLayout({"y": data.ArrayLayout(signed(OUT_BITS), cols), "last": 1})


def pack_requant_row(layout: data.StructLayout, z, scale: int, shift: int, relu: bool,
                     last: bool) -> int:
    """The ``i`` payload of a row as an integer (two's complement fields)."""
    acc = layout["z"].shape.elem_shape.width
    word = 0
    for j, v in enumerate(z):
        word |= (int(v) & ((1 << acc) - 1)) << (layout["z"].offset + j * acc)
    word |= (int(scale) & ((1 << SCALE_BITS) - 1)) << layout["scale"].offset
    word |= int(shift) << layout["shift"].offset
    return word | int(relu) << layout["relu"].offset | int(last) << layout["last"].offset


def unpack_requant_row(cols: int, word: int) -> tuple[list[int], bool]:
    """(y values, last) of an ``o`` payload."""
    layout = requant_out_layout(cols)
    ys = []
    for j in range(cols):
        v = (word >> (layout["y"].offset + j * OUT_BITS)) & 0xFF
        ys.append(v - 256 if v >> 7 else v)
    return ys, bool(word >> layout["last"].offset & 1)


class Requantizer(wiring.Component):
    """``y = saturate_int8(relu?((z * scale + round) >> shift))`` for a row of ``cols``
    accumulators of ``acc_width`` bits (signed or not) per cycle; see the module docstring.
    A shift above 47 (the table's limit, checked where the table is read) is taken as it
    is, never as a different shift."""

    def __init__(self, cols: int, acc_width: int, is_signed: bool = True):
        for name, value, lo in (("cols", cols, 1), ("acc_width", acc_width, 2)):
            if not isinstance(value, int) or isinstance(value, bool) or value < lo:
                raise ValueError(f"{name} must be an integer of at least {lo}, not {value!r}")
        if not isinstance(is_signed, bool):
            raise TypeError(f"is_signed must be a bool, not {is_signed!r}")
        self.cols, self.acc_width, self.is_signed = cols, acc_width, is_signed
        super().__init__({
            "i": In(stream.Signature(requant_in_layout(cols, acc_width, is_signed))),
            "o": Out(stream.Signature(requant_out_layout(cols))),
        })

    @property
    def product_width(self) -> int:
        """Bits of ``z * scale``: a signed product (an unsigned z gains a sign bit)."""
        return self.acc_width + SCALE_BITS + (0 if self.is_signed else 1)

    def elaborate(self, platform):
        m = Module()
        cols, i, o = self.cols, self.i, self.o
        advance = ~o.valid | o.ready
        m.d.comb += i.ready.eq(advance)

        # stage 1: the products
        products = [Signal(signed(self.product_width), name=f"p_{j}") for j in range(cols)]
        shift, relu, last, full = (Signal(SHIFT_BITS, name="shift_1"), Signal(name="relu_1"),
                                   Signal(name="last_1"), Signal(name="valid_1"))
        with m.If(advance):
            m.d.sync += full.eq(i.valid)
            with m.If(i.valid):
                m.d.sync += [p.eq(i.payload.z[j] * i.payload.scale)
                             for j, p in enumerate(products)]
                m.d.sync += [shift.eq(i.payload.shift), relu.eq(i.payload.relu),
                             last.eq(i.payload.last)]

        # stage 2: round, shift, ReLU, saturate
        out = Signal(requant_out_layout(cols), name="out")
        valid = Signal(name="valid_2")
        low = Mux(relu, 0, OUT_MIN)
        for j, p in enumerate(products):
            # t = p * 2 >> shift: its bit 0 is bit shift-1 of p (0 at shift 0), one shifter
            t = Signal(signed(self.product_width + 1), name=f"t_{j}")
            q = Signal(signed(self.product_width + 1), name=f"q_{j}")
            m.d.comb += [t.eq((p << 1) >> shift), q.eq((t >> 1) + t[0])]
            with m.If(advance):
                m.d.sync += out.y[j].eq(Mux(q > OUT_MAX, OUT_MAX, Mux(q < low, low, q)))
        with m.If(advance):
            m.d.sync += [valid.eq(full), out.last.eq(last)]
        m.d.comb += [o.valid.eq(valid), o.payload.eq(out)]
        return m


assert SHIFT_MAX < 1 << SHIFT_BITS
