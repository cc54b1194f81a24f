"""G:H selectors: the per-rank operand choice of the HighLight principle, and its inverse."""
from __future__ import annotations

from amaranth.hdl import Module, Shape, Value, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["GHSelector", "GHScatter", "offset_bits"]


def offset_bits(g: int, h: int) -> int:
    """Bits of one offset: ``ceil(log2 H)``; 0 when ``G == H`` (nothing to choose)."""
    return 0 if g == h else max(1, (h - 1).bit_length())


def _check_gh(g, h):
    for name, v in (("g", g), ("h", h)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"{name} must be a positive integer, not {v!r}")
        if v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")
    if g > h:
        raise ValueError(f"g={g} exceeds h={h}")


def _window(i: int, g: int, h: int) -> range:
    """Positions that kept slot ``i`` can hold: offsets are increasing and distinct, so
    slot i lies in ``[i, h - g + i]``. A selector output needs only an (h-g+1):1 mux."""
    return range(i, h - g + i + 1)


def _or_all(terms):
    out = terms[0]
    for t in terms[1:]:
        out = out | t
    return out


class GHSelector(wiring.Component):
    """Picks ``g`` of ``h`` payloads by offset: ``outputs[i] = inputs[offsets[i]]``.

    Offsets follow the canonical HSS encoding (strictly increasing), so output i only
    chooses among ``h - g + 1`` inputs; any other offset value selects an unspecified one of
    those. With ``g == h`` the selector is wires and has no ``offsets`` bits.
    Combinational.
    """

    def __init__(self, g: int, h: int, payload_shape):
        _check_gh(g, h)
        self.g, self.h = g, h
        self.payload_shape = payload_shape
        Shape.cast(payload_shape)  # eager check: a shape-castable payload
        super().__init__({
            "inputs": In(data.ArrayLayout(payload_shape, h)),
            "offsets": In(data.ArrayLayout(unsigned(offset_bits(g, h)), g)),
            "outputs": Out(data.ArrayLayout(payload_shape, g)),
        })

    def elaborate(self, platform):
        m = Module()
        for i in range(self.g):
            window = _window(i, self.g, self.h)
            if len(window) == 1:
                m.d.comb += self.outputs[i].eq(self.inputs[window.start])
                continue
            with m.Switch(self.offsets[i]):
                for j in window[:-1]:
                    with m.Case(j):
                        m.d.comb += self.outputs[i].eq(self.inputs[j])
                with m.Default():
                    m.d.comb += self.outputs[i].eq(self.inputs[window[-1]])
        return m


class GHScatter(wiring.Component):
    """The inverse of GHSelector: ``outputs[offsets[i]] = inputs[i]``, zero elsewhere.

    Used by the decompressor. With canonical offsets, output j can only receive an input
    i with ``j - (h - g) <= i <= j``; at most one matches, so the choice is an AND-OR.
    """

    def __init__(self, g: int, h: int, payload_shape):
        _check_gh(g, h)
        self.g, self.h = g, h
        Shape.cast(payload_shape)
        super().__init__({
            "inputs": In(data.ArrayLayout(payload_shape, g)),
            "offsets": In(data.ArrayLayout(unsigned(offset_bits(g, h)), g)),
            "outputs": Out(data.ArrayLayout(payload_shape, h)),
        })

    def elaborate(self, platform):
        m = Module()
        if self.g == self.h:
            for i in range(self.g):
                m.d.comb += self.outputs[i].eq(self.inputs[i])
            return m
        for j in range(self.h):
            hits = [i for i in range(self.g) if j in _window(i, self.g, self.h)]
            bits = [Value.cast(self.inputs[i]) for i in hits]
            terms = [b & (self.offsets[i] == j).replicate(len(b)) for i, b in zip(hits, bits)]
            m.d.comb += Value.cast(self.outputs[j]).eq(_or_all(terms))
        return m
