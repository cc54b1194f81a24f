"""Rank 1 where activations are fetched, rank 0 in the PE: way (i) of ``hss.fetch``.

The rows of one row tile share their rank-1 pattern (``hss.fetch.prune_shared``), so one
fetch per step serves the whole array: the activation buffer is H1 banks (bank b holds
rank-1 block b of every group, ``cols x H0`` activations per word: one address for all
columns), only the G1 banks the tile's offsets name are read (the empty blocks are never
fetched), and one ``GHSelector`` per array, not per PE, routes the G1 words to the array's
G1 block slots. The PEs are ``hdl.pe.PE`` of ``hss.fetch.rank0_pattern`` (``G1:G1,G0:H0``:
a dense rank 1 is wires), i.e. a rank-0 mux only, in an unchanged ``hdl.array.PEArray``.

Nothing of the existing engine is edited: this file composes its blocks.
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Elaboratable, Module, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from hss import Pattern
from hss.fetch import rank0_pattern

from .array import PEArray
from .config import AcceleratorConfig, value_shape
from .layouts import group_layout
from .pe import PE_LATENCY
from .ram import BlockRAM
from .selector import GHSelector, offset_bits

__all__ = ["FetchRoute", "Rank1Fetch", "FetchArray", "ActivationBanks", "FETCH_LATENCY"]

#: Cycles from a step's inputs to the PE array's inputs: the banks' synchronous read.
FETCH_LATENCY = 1


def _check(pattern, cols, width, is_signed):
    if not isinstance(pattern, Pattern):
        raise TypeError(f"pattern must be an hss.Pattern, not {pattern!r}")
    rank0_pattern(pattern)                   # two ranks, else a clear HSSError
    if not isinstance(cols, int) or isinstance(cols, bool) or cols < 1:
        raise ValueError(f"cols must be a positive integer, not {cols!r}")
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ValueError(f"width must be a positive integer, not {width!r}")
    if not isinstance(is_signed, bool):
        raise TypeError(f"is_signed must be a bool, not {is_signed!r}")


def bank_word(pattern: Pattern, cols: int, width: int, is_signed: bool) -> data.ArrayLayout:
    """One bank word: block b of one group for every column, column-major (``c*H0 + e``)."""
    return data.ArrayLayout(value_shape(width, is_signed), cols * pattern.H[0])


def fetched_layout(pattern: Pattern, cols: int, width: int, is_signed: bool):
    """What enters the array per step: per column, the G1 fetched blocks (G1*H0)."""
    return data.ArrayLayout(data.ArrayLayout(value_shape(width, is_signed),
                                             pattern.G[1] * pattern.H[0]), cols)


class FetchRoute(wiring.Component):
    """The logic of the rank-1 fetch without the storage: bank read enables from the
    tile's offsets, and the G1-of-H1 word selector that puts bank ``offsets[k]``'s word in
    block slot k of every column. ``words`` arrive one cycle after ``offsets``
    (synchronous banks), so the selector takes the offsets registered (when ``en``)."""

    def __init__(self, pattern: Pattern, cols: int, width: int, is_signed: bool):
        _check(pattern, cols, width, is_signed)
        self.pattern, self.cols = pattern, cols
        g1, h1 = pattern.G[1], pattern.H[1]
        self.word = bank_word(pattern, cols, width, is_signed)
        super().__init__({
            "en": In(1),
            "offsets": In(data.ArrayLayout(unsigned(offset_bits(g1, h1)), g1)),
            "bank_en": Out(h1),
            "words": In(data.ArrayLayout(self.word, h1)),
            "acts": Out(fetched_layout(pattern, cols, width, is_signed)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.pattern
        g1, h1, h0 = p.G[1], p.H[1], p.H[0]
        m.submodules.sel = sel = GHSelector(g1, h1, self.word)
        m.d.comb += sel.inputs.eq(self.words)
        if p.rank(1).dense:
            m.d.comb += self.bank_en.eq((1 << h1) - 1)
        else:
            for b in range(h1):       # slot k can only name a bank in its window
                hits = [self.offsets[k] == b for k in range(g1) if k <= b <= h1 - g1 + k]
                m.d.comb += self.bank_en[b].eq(_or_all(hits))
            held = Signal.like(self.offsets, reset_less=True)
            with m.If(self.en):
                m.d.sync += held.eq(self.offsets)
            m.d.comb += sel.offsets.eq(held)
        for c in range(self.cols):
            for k in range(g1):
                for e in range(h0):
                    m.d.comb += self.acts[c][k * h0 + e].eq(sel.outputs[k][c * h0 + e])
        return m


def _or_all(terms):
    out = terms[0]
    for t in terms[1:]:
        out = out | t
    return out


class Rank1Fetch(wiring.Component):
    """The activation buffer of H1 ``lib.memory`` banks and the rank-1 fetch.

    Fill: ``wr_en`` writes ``wr_data`` (one bank word) at ``wr_addr`` (a group) of bank
    ``wr_bank``. Fetch: with ``en``, the step's ``group`` and the tile's ``offsets`` read
    only the banks named; ``acts`` holds the G1 blocks per column ``FETCH_LATENCY`` enabled
    cycles later (held while ``en`` is low). ``bank_en`` shows which banks a step reads.
    ``depth``: groups the buffer holds."""

    def __init__(self, pattern: Pattern, cols: int, width: int, is_signed: bool, depth: int):
        _check(pattern, cols, width, is_signed)
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise ValueError(f"depth (groups in the buffer) must be a positive integer, "
                             f"not {depth!r}")
        self.pattern, self.cols, self.depth = pattern, cols, depth
        self.width, self.is_signed = width, is_signed
        g1, h1 = pattern.G[1], pattern.H[1]
        addr = unsigned(max(1, (depth - 1).bit_length()))
        self.word = bank_word(pattern, cols, width, is_signed)
        super().__init__({
            "wr_en": In(1), "wr_bank": In(unsigned(max(1, (h1 - 1).bit_length()))),
            "wr_addr": In(addr), "wr_data": In(self.word),
            "en": In(1), "group": In(addr),
            "offsets": In(data.ArrayLayout(unsigned(offset_bits(g1, h1)), g1)),
            "bank_en": Out(h1),
            "acts": Out(fetched_layout(pattern, cols, width, is_signed)),
        })

    def elaborate(self, platform):
        m = Module()
        h1 = self.pattern.H[1]
        m.submodules.route = route = FetchRoute(self.pattern, self.cols, self.width,
                                                self.is_signed)
        m.d.comb += [route.en.eq(self.en), route.offsets.eq(self.offsets),
                     self.bank_en.eq(route.bank_en), self.acts.eq(route.acts)]
        for b in range(h1):
            m.submodules[f"bank_{b}"] = bank = memory.Memory(
                shape=self.word, depth=self.depth, init=[])
            wr, rd = bank.write_port(), bank.read_port()
            m.d.comb += [wr.en.eq(self.wr_en & (self.wr_bank == b)), wr.addr.eq(self.wr_addr),
                         wr.data.eq(self.wr_data),
                         rd.en.eq(self.en & route.bank_en[b]), rd.addr.eq(self.group),
                         route.words[b].eq(rd.data)]
        return m


class FetchArray(wiring.Component):
    """Way (i) end to end: ``Rank1Fetch`` feeding a rank-0-only ``PEArray``.

    ``config``: the engine's ``AcceleratorConfig`` of the full pattern (its rows, cols,
    format and accumulator); the array inside is built for ``rank0_pattern``. Per step:
    ``group`` and the tile's rank-1 ``offsets`` go to the fetch; ``weights[i]`` (row i's
    values and rank-0 offsets, ``group_layout`` of the rank-0 pattern), ``valid``, ``first``
    and ``last`` are delayed ``FETCH_LATENCY`` cycles to meet the fetched blocks.
    ``sums``/``sum_valid`` as ``PEArray``'s, ``FETCH_LATENCY + PE_LATENCY`` after."""

    latency = FETCH_LATENCY + PE_LATENCY

    def __init__(self, config: AcceleratorConfig, depth: int):
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        c = config
        inner = rank0_pattern(c.pattern)
        self.config = c
        self.inner = AcceleratorConfig(inner, c.rows, c.cols, c.width, c.signed, c.max_k,
                                       c.acc_width)
        self.fetch = Rank1Fetch(c.pattern, c.cols, c.width, c.signed, depth)
        self.array = PEArray(self.inner)
        fsig = self.fetch.signature.members
        super().__init__({
            "wr_en": In(1), "wr_bank": In(fsig["wr_bank"].shape),
            "wr_addr": In(fsig["wr_addr"].shape), "wr_data": In(fsig["wr_data"].shape),
            "en": In(1), "valid": In(1), "first": In(1), "last": In(1),
            "group": In(fsig["group"].shape), "offsets": In(fsig["offsets"].shape),
            "weights": In(data.ArrayLayout(group_layout(inner, c.width, c.signed), c.rows)),
            "bank_en": Out(c.pattern.H[1]),
            "sums": self.array.signature.members["sums"],
            "sum_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fetch = f = self.fetch
        m.submodules.array = a = self.array
        m.d.comb += [f.wr_en.eq(self.wr_en), f.wr_bank.eq(self.wr_bank),
                     f.wr_addr.eq(self.wr_addr), f.wr_data.eq(self.wr_data),
                     f.en.eq(self.en), f.group.eq(self.group), f.offsets.eq(self.offsets),
                     self.bank_en.eq(f.bank_en)]
        weights = Signal.like(self.weights, reset_less=True)
        valid, first, last = Signal(), Signal(), Signal()
        with m.If(self.en):
            m.d.sync += [weights.eq(self.weights), valid.eq(self.valid),
                         first.eq(self.first), last.eq(self.last)]
        m.d.comb += [a.en.eq(self.en), a.valid.eq(valid), a.first.eq(first), a.last.eq(last),
                     a.weights.eq(weights), a.acts.eq(f.acts),
                     self.sums.eq(a.sums), self.sum_valid.eq(a.sum_valid)]
        return m


class ActivationBanks(Elaboratable):
    """``hss_system``'s ``abuf`` with rank 1 at the fetch: H1 ``BlockRAM`` banks of
    ``depth`` words, bank b holding block b of every column's group (``bank_word``).

    ``write_port()`` takes a whole activations beat of the engine (``[cols][S]``, as the
    DMA brings it) and writes its H1 bank words at one address; ``read_ports`` are the
    banks' own read ports (``addr``, ``data``, ``en``), one per bank, so that a step reads
    only the banks its rank-1 offsets name. ``macro``: ``BlockRAM``'s."""

    def __init__(self, pattern: Pattern, cols: int, width: int, is_signed: bool, depth: int,
                 *, macro: bool = False):
        _check(pattern, cols, width, is_signed)
        self.pattern, self.cols, self.width = pattern, cols, width
        h1, h0, s = pattern.H[1], pattern.H[0], pattern.group_size
        self.word_bits = cols * h0 * width
        self.banks = [BlockRAM(self.word_bits, depth, macro=macro) for _ in range(h1)]
        self.read_ports = [bank.read_port() for bank in self.banks]
        self._ports = [bank.write_port() for bank in self.banks]
        self._write = SimpleNamespace(addr=Signal.like(self._ports[0].addr),
                                      data=Signal(cols * s * width), en=Signal())
        self._taken = False

    def write_port(self):
        if self._taken:
            raise ValueError("ActivationBanks has one write port; it was taken already")
        self._taken = True
        return self._write

    def elaborate(self, platform):
        m = Module()
        p, w = self.pattern, self.width
        h0, s = p.H[0], p.group_size
        beat = self._write
        for b, (bank, port) in enumerate(zip(self.banks, self._ports)):
            m.submodules[f"bank_{b}"] = bank
            # element (c, e) of bank b's word is element (c, b*H0 + e) of the beat
            elements = [beat.data[(c * s + b * h0 + e) * w:(c * s + b * h0 + e + 1) * w]
                        for c in range(self.cols) for e in range(h0)]
            m.d.comb += [port.addr.eq(beat.addr), port.data.eq(Cat(*elements)),
                         port.en.eq(beat.en)]
        return m
