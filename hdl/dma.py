"""The two DMA engines of hss_system's AXI4 master: ``DMARead`` (AR/R) and ``DMAWrite``
(AW/W/B), and the ``BurstSplitter`` both use.

A command ``{addr, words}`` moves ``words`` full-width words from or to byte address
``addr``. It leaves as INCR bursts of at most ``max_burst`` beats that never cross a 4 KiB
boundary, exactly as ``hss.dram.bursts`` splits it; every beat is full width
(``axsize`` = log2(data_bits/8), ``wstrb`` all ones), ID 0, so responses return in order.

Alignment: ``addr`` must be a multiple of ``data_bits/8``. The controller checks it (START
refuses a misaligned descriptor, docs/system.md); the engines drop the low address bits,
so what they issue is aligned whatever they are given, and the tests assert it.

Reset: the domain's reset (the top drives it from ``aresetn``) clears every register, and
every ``*ready``/``*valid`` output is gated with it, registered ones too: a synchronous
reset clears a register only at the first clock edge, and AXI wants valid low during the
whole reset, from its first cycle (docs/system.md, "Ports").

Errors: a SLVERR or DECERR response halts an engine. ``error`` holds the first code
(sticky); no further burst is issued; bursts already issued complete on the bus (R beats
taken, W beats sent with ``wstrb`` 0), so the bus never hangs; nothing more leaves on the
engine's stream side and what arrives there (commands, write data) is taken and dropped.
``idle`` rises once nothing is in flight. ``clear`` zeroes ``error``; the engine takes new
commands again once it is idle (at once if it is).

A command of 0 words is taken and does nothing (no burst, no data, no ``done``); the
controller never sends one (START refuses a layer without tiles or beats).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, ResetSignal, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hss.dram import MAX_BURST_BEATS, PAGE_BYTES

from . import axi

__all__ = ["command_layout", "burst_layout", "BurstSplitter", "DMARead", "DMAWrite"]


def command_layout(addr_bits: int = 32) -> data.StructLayout:
    """A DMA command: ``words`` full-width words from or to byte address ``addr``."""
    return data.StructLayout({"addr": addr_bits, "words": addr_bits})


def burst_layout(addr_bits: int, max_burst: int) -> data.StructLayout:
    """One burst of a command: byte address, beats (1 to ``max_burst``), and ``final``, set
    on the command's last burst."""
    return data.StructLayout({"addr": addr_bits, "beats": range(max_burst + 1), "final": 1})


def _check_int(name, value, low, high):
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, not {value!r}")
    return value


def _not_in_reset():
    """1 except while the domain's reset is asserted (0 in a domain without reset)."""
    return ~ResetSignal("sync", allow_reset_less=True)


class BurstSplitter(wiring.Component):
    """Splits each command into the bursts ``hss.dram.bursts`` gives, one a cycle.

    ``cmd`` is taken when no command is being split; its bursts leave on ``burst`` in
    order, the last with ``final``. A command of 0 words gives no burst. ``abort`` drops
    the command being split (an engine halted by an error); ``busy``: a command is being
    split.
    """

    def __init__(self, word_bytes: int, addr_bits: int = 32, max_burst: int = 64):
        if word_bytes not in tuple(b // 8 for b in axi.DATA_BITS):
            raise ValueError(f"word_bytes must be one of "
                             f"{', '.join(str(b // 8) for b in axi.DATA_BITS)}, "
                             f"not {word_bytes!r}")
        self.word_bytes = word_bytes
        self.addr_bits = _check_int("addr_bits", addr_bits, 12, 64)
        self.max_burst = _check_int("max_burst", max_burst, 1, MAX_BURST_BEATS)
        super().__init__({
            "cmd": In(stream.Signature(command_layout(addr_bits))),
            "burst": Out(stream.Signature(burst_layout(addr_bits, max_burst))),
            "abort": In(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        low = self.word_bytes.bit_length() - 1          # byte-address bits within a word
        page_words = PAGE_BYTES // self.word_bytes
        page_bits = page_words.bit_length() - 1
        word = Signal(self.addr_bits - low)             # word address of the next burst
        left = Signal(self.addr_bits)                   # words of the command still to go
        to_page_end = Signal(range(page_words + 1))
        cap = Signal(range(max(page_words, self.max_burst) + 1))
        beats = Signal(range(self.max_burst + 1))
        final = Signal()
        m.d.comb += [
            to_page_end.eq(page_words - word[:page_bits]),
            cap.eq(Mux(to_page_end < self.max_burst, to_page_end, self.max_burst)),
            final.eq(left <= cap),
            beats.eq(Mux(final, left, cap)),
            self.burst.valid.eq(self.busy),
            self.burst.payload.addr.eq(Cat(Const(0, low), word)),
            self.burst.payload.beats.eq(beats),
            self.burst.payload.final.eq(final),
            self.cmd.ready.eq(~self.busy & _not_in_reset()),
        ]
        with m.If(self.abort):
            m.d.sync += self.busy.eq(0)
        with m.Elif(self.cmd.valid & self.cmd.ready):
            m.d.sync += [
                word.eq(self.cmd.payload.addr[low:]),
                left.eq(self.cmd.payload.words),
                self.busy.eq(self.cmd.payload.words != 0),
            ]
        with m.Elif(self.burst.valid & self.burst.ready):
            m.d.sync += [word.eq(word + beats), left.eq(left - beats)]
            with m.If(final):
                m.d.sync += self.busy.eq(0)
        return m


class _Engine(wiring.Component):
    """What both engines share: parameters and their checks, the AXI fields fixed for
    every burst, and the error/halt/clear state."""

    def __init__(self, members, data_bits, addr_bits, id_bits, max_burst, outstanding):
        self.data_bits = axi.check_data_bits(data_bits)
        self.addr_bits = _check_int("addr_bits", addr_bits, 12, 64)
        self.id_bits = _check_int("id_bits", id_bits, 1, 32)
        self.max_burst = _check_int("max_burst", max_burst, 1, MAX_BURST_BEATS)
        self.outstanding = _check_int("outstanding", outstanding, 1, 256)
        self.word_bytes = data_bits // 8
        super().__init__({
            "cmd": In(stream.Signature(command_layout(addr_bits))),
            **members,
            "error": Out(2),
            "clear": In(1),
            "idle": Out(1),
        })

    def _address_fields(self, m, ch):
        """The AR or AW fields that are the same for every burst (``ch``: "ar" or "aw")."""
        def field(name):
            return getattr(self, ch + name)
        m.d.comb += [
            field("id").eq(0),
            field("size").eq(axi.size_code(self.data_bits)),
            field("burst").eq(axi.BURST_INCR),
            field("lock").eq(0),
            field("cache").eq(axi.CACHE_NORMAL_BUFFERABLE),
            field("prot").eq(0),
            field("qos").eq(0),
        ]

    def _error_state(self, m, response, resp, idle):
        """``halted``: set by the first error ``response`` (a handshake whose ``resp`` is
        SLVERR or DECERR), which ``error`` keeps; ``clear`` zeroes ``error``, and the
        engine resumes once ``idle``. Returns ``halted``."""
        halted = Signal()
        resuming = Signal()           # cleared while still busy: resume once idle
        with m.If(response & resp[1] & ~halted):
            m.d.sync += [self.error.eq(resp), halted.eq(1)]
        with m.Else():
            with m.If(self.clear):
                m.d.sync += self.error.eq(0)
            with m.If(halted & (self.clear | resuming)):
                with m.If(idle):
                    m.d.sync += [halted.eq(0), resuming.eq(0)]
                with m.Else():
                    m.d.sync += resuming.eq(1)
        m.d.comb += self.idle.eq(idle)
        return halted


class DMARead(_Engine):
    """Reads commands' words from AXI4 and streams them out, ``last`` on each command's
    final word.

    Up to ``outstanding`` bursts are in flight (issued, data not all returned), and only
    as many as the data FIFO (``fifo_depth`` words, default ``outstanding * max_burst``
    and at least 3,
    block RAM) has room for, counting what is in it and what is still to come: ``rready``
    is high whenever the engine is out of reset, so the R channel never waits for ``data``
    and a slow consumer slows only AR.

    Ports: ``cmd`` (in, {addr, words}), ``data`` (out, {data, last}), ``error`` (2: the
    first SLVERR/DECERR, sticky), ``clear`` (in), ``idle`` (no command, burst or word in
    flight), and AR/R (``hdl.axi.axi4_read_members``). After an error the words still in
    the FIFO are dropped and ``data.valid`` falls without a handshake: the command is
    abandoned.
    """

    def __init__(self, data_bits: int, addr_bits: int = 32, id_bits: int = 1,
                 max_burst: int = 64, outstanding: int = 4, fifo_depth: int | None = None):
        members = {"data": Out(stream.Signature(data.StructLayout(
                       {"data": data_bits, "last": 1}))),
                   **axi.axi4_read_members(data_bits, addr_bits, id_bits)}
        super().__init__(members, data_bits, addr_bits, id_bits, max_burst, outstanding)
        # every burst in flight, and three words at least: a SyncFIFOBuffered of depth 2
        # is a 1-word FIFO before its output register, so it refuses a word in the cycle
        # after a word entered it empty, and R beats are never refused (a lost word: the
        # single-beat bursts of bench fuzz_system hung the system)
        if fifo_depth is None:
            fifo_depth = max(3, outstanding * max_burst)
        self.fifo_depth = _check_int("fifo_depth", fifo_depth, max(max_burst, 3), 1 << 16)

    def elaborate(self, platform):
        m = Module()
        run = _not_in_reset()
        m.submodules.splitter = split = BurstSplitter(self.word_bytes, self.addr_bits,
                                                      self.max_burst)
        wiring.connect(m, wiring.flipped(self.cmd), split.cmd)
        # one entry per burst in flight: is it its command's last?
        m.submodules.in_flight = in_flight = SyncFIFO(width=1, depth=self.outstanding)
        # the words, each with ``last``
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=self.data_bits + 1,
                                                    depth=self.fifo_depth)
        # FIFO places neither filled nor promised to a burst in flight
        credits = Signal(range(self.fifo_depth + 1), init=self.fifo_depth)

        beat = Signal()
        m.d.comb += [beat.eq(self.rvalid & self.rready), self.rready.eq(run)]
        bad = beat & self.rresp[1]
        idle = ~split.busy & (in_flight.level == 0) & (fifo.level == 0)
        halted = self._error_state(m, beat, self.rresp, idle)
        keep = beat & ~self.rresp[1] & ~halted
        m.d.comb += [
            fifo.w_data.eq(Cat(self.rdata, self.rlast & in_flight.r_data[0])),
            fifo.w_en.eq(keep),
            in_flight.r_en.eq(beat & self.rlast),
            self.data.payload.eq(fifo.r_data),
            self.data.valid.eq(fifo.r_rdy & ~halted & run),
            fifo.r_en.eq(self.data.ready | halted),        # halted: drain and drop
            split.abort.eq(halted),
        ]

        burst = split.burst
        issue = Signal()
        offered = Signal()                # an AR is offered (arvalid out of reset)
        m.d.comb += [
            self.arvalid.eq(offered & run),
            issue.eq(burst.valid & (~offered | self.arready) & in_flight.w_rdy
                     & (credits >= burst.payload.beats) & ~halted & ~bad),
            burst.ready.eq(issue),
            in_flight.w_en.eq(issue),
            in_flight.w_data.eq(burst.payload.final),
        ]
        with m.If(issue):
            m.d.sync += [offered.eq(1), self.araddr.eq(burst.payload.addr),
                         self.arlen.eq(burst.payload.beats - 1)]
        with m.Elif(self.arready):
            m.d.sync += offered.eq(0)
        self._address_fields(m, "ar")

        popped = fifo.r_rdy & fifo.r_en
        dropped = beat & ~keep
        m.d.sync += credits.eq(credits + popped + dropped
                               - Mux(issue, burst.payload.beats, 0))
        return m


class DMAWrite(_Engine):
    """Writes the words of ``data`` to AXI4, ``words`` of them per command, in command
    order.

    W beats of a burst leave once its AW is offered (``awvalid``), without waiting for
    ``awready``: AXI forbids a master to make W wait for the AW handshake, and slaves
    (cocotbext-axi's, vendors') take W before, with or after AW. Up to ``outstanding``
    bursts await their B response. The W channel is registered, so it keeps AXI's rules
    (valid held, payload stable) whatever ``data``'s producer does.

    Ports: ``cmd`` (in, {addr, words}), ``data`` (in, {data}), ``done`` (a one-cycle pulse
    a cycle after the last B of a command, OKAY), ``error``/``clear``/``idle`` as
    ``DMARead`` (B errors), and AW/W/B (``hdl.axi.axi4_write_members``). After an error,
    bursts already issued are completed with ``wstrb`` 0 (no byte written) instead of
    waiting for data that may never come.
    """

    def __init__(self, data_bits: int, addr_bits: int = 32, id_bits: int = 1,
                 max_burst: int = 64, outstanding: int = 4):
        members = {"data": In(stream.Signature(data.StructLayout({"data": data_bits}))),
                   "done": Out(1),
                   **axi.axi4_write_members(data_bits, addr_bits, id_bits)}
        super().__init__(members, data_bits, addr_bits, id_bits, max_burst, outstanding)

    def elaborate(self, platform):
        m = Module()
        run = _not_in_reset()
        m.submodules.splitter = split = BurstSplitter(self.word_bytes, self.addr_bits,
                                                      self.max_burst)
        wiring.connect(m, wiring.flipped(self.cmd), split.cmd)
        beats_shape = split.burst.payload.beats.shape()
        # one entry per burst awaiting B: is it its command's last?
        m.submodules.awaiting_b = awaiting_b = SyncFIFO(width=1, depth=self.outstanding)
        # beats of each burst whose W beats have not started
        m.submodules.w_bursts = w_bursts = SyncFIFO(width=beats_shape.width,
                                                    depth=self.outstanding)
        w_left = Signal(beats_shape)      # beats of the current burst not yet loaded into W

        response = Signal()
        m.d.comb += [response.eq(self.bvalid & self.bready), self.bready.eq(run),
                     awaiting_b.r_en.eq(response)]
        bad = response & self.bresp[1]
        aw_offered = Signal()             # an AW is offered (awvalid out of reset)
        w_full = Signal()                 # the W registers hold a beat (wvalid out of reset)
        m.d.comb += [self.awvalid.eq(aw_offered & run), self.wvalid.eq(w_full & run)]
        idle = (~split.busy & (awaiting_b.level == 0) & ~w_full & (w_left == 0))
        halted = self._error_state(m, response, self.bresp, idle)
        m.d.sync += self.done.eq(response & ~self.bresp[1] & awaiting_b.r_data[0] & ~halted)
        m.d.comb += split.abort.eq(halted)

        burst = split.burst
        issue = Signal()
        m.d.comb += [
            issue.eq(burst.valid & (~aw_offered | self.awready) & awaiting_b.w_rdy
                     & w_bursts.w_rdy & ~halted & ~bad),
            burst.ready.eq(issue),
            awaiting_b.w_en.eq(issue), awaiting_b.w_data.eq(burst.payload.final),
            w_bursts.w_en.eq(issue), w_bursts.w_data.eq(burst.payload.beats),
        ]
        with m.If(issue):
            m.d.sync += [aw_offered.eq(1), self.awaddr.eq(burst.payload.addr),
                         self.awlen.eq(burst.payload.beats - 1)]
        with m.Elif(self.awready):
            m.d.sync += aw_offered.eq(0)
        self._address_fields(m, "aw")

        # W: load a beat into the W registers when they are free and a burst has beats to
        # go; its data from ``data`` or, halted, none (wstrb 0)
        w_free = ~w_full | self.wready
        in_burst = w_left != 0
        has_beat = in_burst | w_bursts.r_rdy
        beats_now = Mux(in_burst, w_left, w_bursts.r_data)
        load = Signal()
        m.d.comb += [
            load.eq(w_free & has_beat & (self.data.valid | halted) & run),
            self.data.ready.eq(run & (halted | (w_free & has_beat))),
            w_bursts.r_en.eq(load & ~in_burst),
        ]
        with m.If(load):
            m.d.sync += [
                w_full.eq(1),
                self.wdata.eq(self.data.payload.data),
                self.wstrb.eq(Mux(halted, 0, (1 << self.word_bytes) - 1)),
                self.wlast.eq(beats_now == 1),
                w_left.eq(beats_now - 1),
            ]
        with m.Elif(self.wready):
            m.d.sync += w_full.eq(0)
        return m
