"""The controller of ``hss_system``: runs one layer from its descriptor (docs/system.md).

It checks the descriptor, has the DMA read the layer's operands into the buffers (the
requantization table, the activations of n-tile 0, the first chunk of m-tiles' weights,
the other n-tiles' activations, the other weights), feeds the engine beat pairs in the loop
nest ``for chunk: for nt: for mt in chunk: for b`` (``hss.system.tile_order``) as soon as
the beats it needs have arrived (a counter of the beats written per buffer),
and writes each tile the engine leaves to DRAM through the output buffer. Loading,
computing and storing overlap. Errors end the layer without a hang: the DMA's data are
drained, the engine is reset, ``error``/``error_code`` stay until ``clear``.

The buffers are ``hdl.ram.BlockRAM``s (``amaranth.lib.memory``, or with ``macros`` the
``hss_sdp_ram`` module) of one beat (or tile) per word, each with one write and one read
port. Every count the registers report is counted here, where its
event happens.
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hss.requant import SCALE_BITS, SHIFT_BITS
from hss.system import ErrorCode     # STATUS.ERROR_CODE: one definition, beside the golden model

from .fetch import ActivationBanks, FetchRoute
from .ram import BlockRAM, InterleavedRAM
from .requant import Requantizer
from .sysconfig import SystemConfig

__all__ = ["Controller", "ErrorCode", "COUNTERS", "dma_command_layout"]

ADDR_BITS = 32
COUNT_BITS = 32


#: The performance counters, in the order of the registers.
COUNTERS = ("cycles", "steps", "stall_weights", "stall_acts", "stall_output",
            "dram_read_bytes", "dram_write_bytes", "wbuf_reads", "wbuf_writes",
            "abuf_reads", "abuf_writes", "obuf_reads", "obuf_writes", "qbuf_reads",
            "qbuf_writes")


def dma_command_layout() -> data.StructLayout:
    """A DMA command: read or write ``words`` DMA words at byte address ``addr``."""
    return data.StructLayout({"addr": ADDR_BITS, "words": COUNT_BITS})


class _Job:
    """One DMA read the layer needs: where from, how many words, into which buffer."""
    QTABLE, ACTS_FIRST, WEIGHTS_FIRST, ACTS_REST, WEIGHTS_REST = range(5)


class _TileWalk:
    """The order of a layer's tiles (``hss.system.tile_order``): m-tiles in chunks of
    ``chunk``, each chunk's tiles n-tile by n-tile. ``mt``, ``nt`` the current tile;
    ``index`` its place in the output region, ``nt * M_TILES + mt``. ``step`` moves to the
    next tile (and sets ``done`` after the last); ``per_m`` and ``per_n`` are (signal,
    increment) pairs that follow ``mt`` and ``nt`` (``mt * BPT``, ``nt * BPT``)."""

    def __init__(self, m, d, chunk: int, starting, name: str, per_m=(), per_n=()):
        self._m, self._d, self._chunk = m, d, chunk
        self.mt, self.nt = Signal(16, name=f"{name}_mt"), Signal(16, name=f"{name}_nt")
        self.first = Signal(16, name=f"{name}_chunk_mt")        # the chunk's first m-tile
        self.within = Signal(16, name=f"{name}_chunk_i")        # mt - first
        self.index = Signal(COUNT_BITS, name=f"{name}_index")
        self.row = Signal(COUNT_BITS, name=f"{name}_row")       # index of (first, nt)
        self.done = Signal(name=f"{name}_done")
        # each per-m signal with its value at the chunk's first m-tile
        self._per_m = [(sig, Signal(len(sig), name=f"{sig.name}_chunk"), inc)
                       for sig, inc in per_m]
        self._per_n = list(per_n)
        with m.If(starting):
            m.d.sync += [self.mt.eq(0), self.nt.eq(0), self.first.eq(0), self.within.eq(0),
                         self.index.eq(0), self.row.eq(0), self.done.eq(0)]
            m.d.sync += [s.eq(0) for sig, start, _ in self._per_m for s in (sig, start)]
            m.d.sync += [sig.eq(0) for sig, _ in self._per_n]

    def step(self):
        m, d, sync = self._m, self._d, self._m.d.sync
        chunk_end = (self.within + 1 == self._chunk) | (self.mt + 1 == d.m_tiles)
        with m.If(~chunk_end):                     # the next m-tile of the chunk
            sync += [self.mt.eq(self.mt + 1), self.within.eq(self.within + 1),
                     self.index.eq(self.index + 1)]
            sync += [sig.eq(sig + inc) for sig, _, inc in self._per_m]
        with m.Elif(self.nt + 1 != d.n_tiles):     # the chunk again, on the next n-tile
            sync += [self.nt.eq(self.nt + 1), self.mt.eq(self.first), self.within.eq(0),
                     self.row.eq(self.row + d.m_tiles),
                     self.index.eq(self.row + d.m_tiles)]
            sync += [sig.eq(start) for sig, start, _ in self._per_m]
            sync += [sig.eq(sig + inc) for sig, inc in self._per_n]
        with m.Elif(self.mt + 1 == d.m_tiles):     # the last tile
            sync += self.done.eq(1)
        with m.Else():                              # the next chunk, from n-tile 0
            sync += [self.mt.eq(self.mt + 1), self.first.eq(self.mt + 1),
                     self.within.eq(0), self.nt.eq(0), self.row.eq(self.mt + 1),
                     self.index.eq(self.mt + 1)]
            sync += [s.eq(sig + inc) for sig, start, inc in self._per_m for s in (sig, start)]
            sync += [sig.eq(0) for sig, _ in self._per_n]


class _BeatIssue:
    """The loop nest's beats: beat ``b`` of the tile the walk is at (``w_index``,
    ``a_index``: the beats' places from the buffers' bases), whether both have arrived,
    ``issue`` when the feed may read them, ``at_last`` (registered with the read: the
    tile's last beat, from the count, so that a bad image cannot leave a tile open), the
    wbuf-read and stall counters. ``advance`` (driven by the feed: its first stage takes a
    beat this cycle) moves it on."""

    def __init__(self, m, d, chunk, starting, run, feed_done, w_loaded, a_loaded,
                 runtime_error, counters):
        self.b = b = Signal(16)
        w_tile, a_tile = Signal(COUNT_BITS), Signal(COUNT_BITS)     # mt * BPT, nt * BPT
        walk = _TileWalk(m, d, chunk, starting, "feed", per_m=[(w_tile, d.bpt)],
                         per_n=[(a_tile, d.bpt)])
        m.d.comb += feed_done.eq(walk.done)
        with m.If(starting):
            m.d.sync += b.eq(0)
        self.w_index, self.a_index = w_tile + b, a_tile + b
        arrived_w, arrived_a = self.w_index < w_loaded, self.a_index < a_loaded
        self.issue = issue = run & (runtime_error == 0) & ~feed_done & arrived_w & arrived_a
        self.advance = advance = Signal()
        self.at_last = Signal()
        with m.If(advance):
            m.d.sync += self.at_last.eq(b + 1 == d.bpt)
        counters.add("wbuf_reads", 1, when=advance & issue)
        with m.If(advance & issue):
            with m.If(b + 1 == d.bpt):
                m.d.sync += b.eq(0)
                walk.step()
            with m.Else():
                m.d.sync += b.eq(b + 1)
        waiting = run & (runtime_error == 0) & ~feed_done & advance
        counters.add("stall_weights", 1, when=waiting & ~arrived_w)
        counters.add("stall_acts", 1, when=waiting & arrived_w & ~arrived_a)


class Controller(wiring.Component):
    """One layer of ``hss_system`` at a time. Ports: the descriptor and ``start``/``clear``
    (from the registers), ``busy``/``done``/``error``/``error_code`` and one-cycle
    ``done_event``/``error_event`` (to the registers and the interrupt), the counters of
    ``COUNTERS``, a DMA read and a DMA write port (``hdl.dma``'s command and data streams,
    ``*_error`` as AXI response codes, ``*_idle``, ``*_clear``), the engine's three streams
    with plain-bit payloads, and ``engine_reset`` (a layer that ended in an error leaves no
    partial tile behind)."""

    def __init__(self, config: SystemConfig, *, macros: bool = False):
        if not isinstance(config, SystemConfig):
            raise TypeError(f"config must be an hdl.sysconfig.SystemConfig, not {config!r}")
        self.config = c = config
        self.macros = bool(macros)          # the buffers as hss_sdp_ram instances (hdl.ram)
        e = c.engine
        members = {
            "start": In(1), "clear": In(1),
            "w_addr": In(ADDR_BITS), "a_addr": In(ADDR_BITS), "z_addr": In(ADDR_BITS),
            "q_addr": In(ADDR_BITS),
            "m_tiles": In(16), "n_tiles": In(16), "beats_per_tile": In(16),
            "w_base": In(COUNT_BITS), "a_base": In(COUNT_BITS),
            "load_w": In(1), "load_a": In(1), "requant": In(1), "relu": In(1),
            "modes": In(32),
            "busy": Out(1), "done": Out(1), "error": Out(1), "error_code": Out(8),
            "done_event": Out(1), "error_event": Out(1),
            "rd_cmd": Out(stream.Signature(dma_command_layout())),
            "rd_data": In(stream.Signature(data.StructLayout({"data": c.dma_bits,
                                                                "last": 1}))),
            "rd_error": In(2), "rd_idle": In(1), "rd_clear": Out(1),
            "wr_cmd": Out(stream.Signature(dma_command_layout())),
            "wr_data": Out(stream.Signature(data.StructLayout({"data": c.dma_bits}))),
            "wr_done": In(1), "wr_error": In(2), "wr_idle": In(1), "wr_clear": Out(1),
            "weights": Out(stream.Signature(unsigned(c.core.weight_beat_bits))),
            "activations": Out(stream.Signature(unsigned(c.core.act_beat_bits))),
            "tiles": In(stream.Signature(unsigned(c.tile_bits))),
            "engine_reset": Out(1),
        }
        members.update({name: Out(COUNT_BITS) for name in COUNTERS})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        c, e = self.config, self.config.engine
        macro = self.macros
        m.submodules.wbuf = wbuf = BlockRAM(c.weight_beat_bits, c.wbuf_depth, macro=macro)
        if c.fetch == "pe":
            m.submodules.abuf = abuf = BlockRAM(c.act_beat_bits, c.abuf_depth, macro=macro)
        else:
            e = c.engine
            m.submodules.abuf = abuf = ActivationBanks(e.pattern, e.cols, e.width, e.signed,
                                                       c.abuf_depth, macro=macro)
        m.submodules.obuf = obuf = BlockRAM(c.tile_bits, c.obuf_tiles, macro=macro)
        if not c.requant:           # no table, no qbuf: its write port drives nothing
            qbuf, self._q_reads = None, []
        elif c.requant_lanes == 1:
            m.submodules.qbuf = qbuf = BlockRAM(32, c.qbuf_rows, macro=macro)
            self._q_reads = [qbuf.read_port()]
        else:                   # a tile's rows requantized several at a time
            m.submodules.qbuf = qbuf = InterleavedRAM(32, c.qbuf_rows, c.requant_lanes,
                                                      macro=macro)
            self._q_reads = qbuf.read_ports

        # -- the layer's sizes, latched at start and checked ------------------------------
        d = _Latched(m, self)
        mode = Signal(range(len(_State.NAMES)), init=_State.IDLE)
        code = Signal(8)
        run = mode == _State.RUN
        m.d.comb += [self.busy.eq((mode == _State.CHECK) | run | (mode == _State.ABORT)),
                     self.done.eq(mode == _State.DONE), self.error.eq(mode == _State.ERROR),
                     self.error_code.eq(code)]

        w_beats = Signal(COUNT_BITS)        # M_TILES * BPT
        w_first = Signal(COUNT_BITS)        # the first chunk's: min(M_TILES, chunk) * BPT
        a_beats = Signal(COUNT_BITS)        # N_TILES * BPT
        tiles = Signal(COUNT_BITS)          # M_TILES * N_TILES
        q_rows = Signal(COUNT_BITS)         # M_TILES * rows
        m.d.sync += [w_beats.eq(d.m_tiles * d.bpt), a_beats.eq(d.n_tiles * d.bpt),
                     w_first.eq(Mux(d.m_tiles > c.m_chunk, c.m_chunk, d.m_tiles) * d.bpt),
                     tiles.eq(d.m_tiles * d.n_tiles), q_rows.eq(d.m_tiles * e.rows)]
        check = self._check(m, d, w_beats, a_beats, tiles, q_rows)

        # -- events that end or start a layer ----------------------------------------------
        feed_done = Signal()
        tiles_done = Signal(COUNT_BITS)     # B responses of output tiles
        runtime_error = Signal(8)
        write_busy = Signal()               # a tile's words are still going out
        m.d.comb += [self.done_event.eq(0), self.error_event.eq(0), self.rd_clear.eq(0),
                     self.wr_clear.eq(0), self.engine_reset.eq(0)]
        with m.Switch(mode):
            with m.Case(_State.IDLE, _State.DONE):
                with m.If(self.start):
                    m.d.sync += [mode.eq(_State.LATCH), code.eq(0)]
                    d.latch()
                with m.Elif(self.clear):
                    m.d.sync += [mode.eq(_State.IDLE), code.eq(0)]
            with m.Case(_State.LATCH):                  # the products settle
                m.d.sync += mode.eq(_State.CHECK)
            with m.Case(_State.CHECK):
                with m.If(check != 0):
                    m.d.sync += [mode.eq(_State.ERROR), code.eq(check)]
                    m.d.comb += self.error_event.eq(1)
                with m.Else():
                    m.d.sync += mode.eq(_State.RUN)
            with m.Case(_State.RUN):
                with m.If(runtime_error != 0):
                    m.d.sync += [mode.eq(_State.ABORT), code.eq(runtime_error)]
                with m.Elif(feed_done & (tiles_done == tiles) & self.rd_idle & self.wr_idle):
                    m.d.sync += mode.eq(_State.DONE)
                    m.d.comb += self.done_event.eq(1)
            with m.Case(_State.ABORT):
                # nothing new is issued; what is in flight drains (see the ports below)
                with m.If(self.rd_idle & self.wr_idle & ~write_busy):
                    m.d.sync += mode.eq(_State.ERROR)
                    m.d.comb += [self.error_event.eq(1), self.engine_reset.eq(1)]
            with m.Case(_State.ERROR):
                with m.If(self.clear):
                    m.d.sync += [mode.eq(_State.IDLE), code.eq(0)]
                    m.d.comb += [self.rd_clear.eq(1), self.wr_clear.eq(1),
                                 self.engine_reset.eq(1)]
        starting = mode == _State.CHECK
        counters = _Counters(m, self, starting, mode)

        w_loaded, a_loaded = self._load(m, d, run, starting, wbuf, abuf, qbuf, w_beats,
                                        w_first, a_beats, q_rows, counters, runtime_error)
        self._feed(m, d, run, starting, wbuf, abuf, w_loaded, a_loaded, w_beats, a_beats,
                   feed_done, counters, runtime_error)
        self._store(m, d, run, starting, obuf, tiles, tiles_done, write_busy, counters,
                    runtime_error)
        counters.finish()
        return m

    # -- the descriptor's checks (error codes of docs/system.md) ---------------------------
    def _check(self, m, d, w_beats, a_beats, tiles, q_rows) -> Signal:
        c = self.config
        wb = c.word_bytes
        code = Signal(8)
        limit = 1 << ADDR_BITS

        def region_end(addr, words):
            return addr + words * wb

        w_end = region_end(d.w_addr, w_beats * c.weight_words)
        a_end = region_end(d.a_addr, a_beats * c.act_words)
        z_words = Mux(d.requant, c.quant_tile_words, c.tile_words)
        z_end = region_end(d.z_addr, tiles * z_words)
        per_word = wb // 4                               # table entries per DMA word
        q_end = region_end(d.q_addr, (q_rows + per_word - 1) >> (per_word.bit_length() - 1))
        aligned = Cat(a[:(wb - 1).bit_length()] == 0 if wb > 1 else Const(1)
                      for a in (d.w_addr, d.a_addr, d.z_addr, d.q_addr))
        used = Cat(d.load_w, d.load_a, Const(1), d.requant)
        unsupported = 0xFFFFFFFF ^ ((1 << c.modes) - 1)
        qbuf_rows = c.qbuf_rows if c.requant else 0
        # the lowest code that applies (hss.system.Descriptor.check)
        with m.If(d.w_base + w_beats > c.wbuf_depth):
            m.d.comb += code.eq(ErrorCode.WBUF_OVERFLOW)
        with m.Elif(d.a_base + a_beats > c.abuf_depth):
            m.d.comb += code.eq(ErrorCode.ABUF_OVERFLOW)
        with m.Elif(d.requant & (q_rows > qbuf_rows)):
            m.d.comb += code.eq(ErrorCode.QBUF_OVERFLOW)
        with m.Elif((used & ~aligned).any()):
            m.d.comb += code.eq(ErrorCode.MISALIGNED)
        with m.Elif((d.load_w & (w_end > limit)) | (d.load_a & (a_end > limit))
                    | (z_end > limit) | (d.requant & (q_end > limit))):
            m.d.comb += code.eq(ErrorCode.ADDRESS_RANGE)
        with m.Elif((d.m_tiles == 0) | (d.n_tiles == 0) | (d.bpt == 0)):
            m.d.comb += code.eq(ErrorCode.EMPTY)
        with m.Elif((d.modes == 0) | ((d.modes & unsupported) != 0)):
            m.d.comb += code.eq(ErrorCode.BAD_MODE)
        return code

    # -- DMA reads into the buffers --------------------------------------------------------
    def _load(self, m, d, run, starting, wbuf, abuf, qbuf, w_beats, w_first, a_beats,
              q_rows, counters, runtime_error):
        """Issue the layer's reads in order and write what returns into the buffers;
        return the beats written so far into each of ``wbuf`` and ``abuf``."""
        c, wb = self.config, self.config.word_bytes
        per_word = c.dma_bits // 32
        jobs = [
            (_Job.QTABLE, d.requant, d.q_addr,
             (q_rows + per_word - 1) >> (per_word.bit_length() - 1)),
            (_Job.ACTS_FIRST, d.load_a, d.a_addr, d.bpt * c.act_words),
            (_Job.WEIGHTS_FIRST, d.load_w, d.w_addr, w_first * c.weight_words),
            (_Job.ACTS_REST, d.load_a & (d.n_tiles > 1),
             d.a_addr + d.bpt * (c.act_words * wb), (a_beats - d.bpt) * c.act_words),
            (_Job.WEIGHTS_REST, d.load_w & (d.m_tiles > c.m_chunk),
             d.w_addr + w_first * (c.weight_words * wb), (w_beats - w_first) * c.weight_words),
        ]
        # issuing: one command per job, in order, skipping the jobs a layer does not need
        issue = Signal(range(len(jobs) + 1))
        rx = Signal(range(len(jobs) + 1))               # the job whose data arrive
        with m.If(starting):
            m.d.sync += [issue.eq(0), rx.eq(0)]
        m.d.comb += self.rd_cmd.valid.eq(0)
        with m.Switch(issue):
            for i, (_, needed, addr, words) in enumerate(jobs):
                with m.Case(i):
                    with m.If(run & (runtime_error == 0)):
                        with m.If(~needed):
                            m.d.sync += issue.eq(i + 1)
                        with m.Else():
                            m.d.comb += [self.rd_cmd.valid.eq(1),
                                         self.rd_cmd.payload.addr.eq(addr),
                                         self.rd_cmd.payload.words.eq(words)]
                            with m.If(self.rd_cmd.ready):
                                m.d.sync += issue.eq(i + 1)
        # receiving: data come back in command order, ``last`` ends each command; the job
        # whose data arrive is the first needed one from ``rx`` on (a skipped job has none,
        # and the next one's first word may come in the very cycle after the last)
        needed = Cat(job[1] for job in jobs)
        w_loaded, a_loaded = Signal(COUNT_BITS), Signal(COUNT_BITS)
        w_asm = Signal(c.weight_words * c.dma_bits)
        a_asm = Signal(c.act_words * c.dma_bits)
        w_word, a_word = Signal(range(c.weight_words + 1)), Signal(range(c.act_words + 1))
        q_word = Signal(c.dma_bits)
        q_left = Signal(range(per_word + 1))            # entries of q_word still to write
        # the entry being written: it runs past the table to the end of its last word (the
        # padding, not written), so it must not wrap before qbuf_rows + a word's entries
        q_index = Signal(range(c.qbuf_rows + per_word + 1))
        with m.If(starting):
            m.d.sync += [w_loaded.eq(0), a_loaded.eq(0), w_word.eq(0), a_word.eq(0),
                         q_left.eq(0), q_index.eq(0)]

        w_port, a_port = wbuf.write_port(), abuf.write_port()
        q_port = qbuf.write_port() if qbuf is not None else \
            SimpleNamespace(addr=Signal(16), data=Signal(32), en=Signal())
        word = self.rd_data.payload.data
        taking = self.rd_data.valid & self.rd_data.ready
        job = Signal(range(len(jobs) + 1))
        m.d.comb += job.eq(len(jobs))
        for j in reversed(range(len(jobs))):
            with m.If((rx <= j) & needed[j]):
                m.d.comb += job.eq(j)
        m.d.comb += self.rd_data.ready.eq(Mux(job == _Job.QTABLE, q_left == 0, 1))
        counters.add("dram_read_bytes", wb, when=taking)
        with m.If(taking & self.rd_data.payload.last & run):
            m.d.sync += rx.eq(job + 1)
        active = run & (runtime_error == 0)
        # weights and activations: words to beats (a shift register per buffer), written
        # at the next free word of the buffer
        for asm, count, words, port, base, loaded, which, name, buffer_words in (
                (w_asm, w_word, c.weight_words, w_port, d.w_base, w_loaded,
                 (_Job.WEIGHTS_FIRST, _Job.WEIGHTS_REST), "wbuf_writes", 1),
                (a_asm, a_word, c.act_words, a_port, d.a_base, a_loaded,
                 (_Job.ACTS_FIRST, _Job.ACTS_REST), "abuf_writes", c.act_banks)):
            here = Signal(name=f"{name}_job")
            m.d.comb += here.eq(Cat(job == j for j in which).any())
            beat = Cat(asm[c.dma_bits:], word)
            m.d.comb += [port.addr.eq(base + loaded), port.data.eq(beat[:len(port.data)]),
                         port.en.eq(0)]
            complete = taking & here & (count == words - 1)
            counters.add(name, buffer_words, when=complete & active)
            with m.If(taking & here):
                with m.If(count == words - 1):
                    m.d.comb += port.en.eq(active)
                    m.d.sync += [count.eq(0), loaded.eq(loaded + 1)]
                with m.Else():
                    m.d.sync += [count.eq(count + 1), asm.eq(beat)]
        # the requantization table: dma_bits / 32 entries per word, one written per cycle
        m.d.comb += [q_port.addr.eq(q_index), q_port.data.eq(q_word[:32]), q_port.en.eq(0)]
        # entries past the table (the last word's padding) are not written
        q_write = (q_left != 0) & (q_index < q_rows) & (q_index < c.qbuf_rows) & active
        counters.add("qbuf_writes", 1, when=q_write)
        with m.If(taking & (job == _Job.QTABLE)):
            m.d.sync += [q_word.eq(word), q_left.eq(per_word)]
        with m.Elif(q_left != 0):
            m.d.comb += q_port.en.eq(q_write)
            m.d.sync += [q_word.eq(q_word >> 32), q_left.eq(q_left - 1),
                         q_index.eq(q_index + 1)]
        # an AXI error ends the layer
        with m.If(run & (self.rd_error != 0)):
            m.d.comb += runtime_error.eq(Mux(self.rd_error == 3, ErrorCode.READ_DECERR,
                                             ErrorCode.READ_SLVERR))
        return (Mux(d.load_w, w_loaded, 0xFFFFFFFF), Mux(d.load_a, a_loaded, 0xFFFFFFFF))

    # -- the engine's inputs: the loop nest over the buffers -------------------------------
    def _feed(self, m, d, run, starting, wbuf, abuf, w_loaded, a_loaded, w_beats, a_beats,
              feed_done, counters, runtime_error):
        c, e = self.config, self.config.engine
        nest = _BeatIssue(m, d, c.m_chunk, starting, run, feed_done, w_loaded, a_loaded,
                          runtime_error, counters)
        if c.fetch != "pe":
            return self._feed_fetch(m, d, run, starting, wbuf, abuf, nest, counters)
        w_port = wbuf.read_port(domain="sync")
        a_port = abuf.read_port(domain="sync")
        shown = Signal()                    # the read ports show a beat pair for the engine
        with m.If(starting):
            m.d.sync += shown.eq(0)
        bad_mode = Signal()
        ok = ~bad_mode
        taken = self.weights.valid & self.weights.ready
        advance = ~shown | taken
        m.d.comb += nest.advance.eq(advance)
        last_at = e.weight_beat_layout()["last"].offset
        beat = Signal(c.weight_beat_bits)
        m.d.comb += [beat.eq(w_port.data), beat[last_at].eq(nest.at_last)]
        m.d.comb += [w_port.addr.eq(d.w_base + nest.w_index),
                     a_port.addr.eq(d.a_base + nest.a_index),
                     w_port.en.eq(advance), a_port.en.eq(advance),
                     self.weights.payload.eq(beat),
                     self.activations.payload.eq(a_port.data),
                     self.weights.valid.eq(shown & ok & run),
                     self.activations.valid.eq(shown & ok & run)]
        counters.add("abuf_reads", 1, when=advance & nest.issue)
        with m.If(advance):
            m.d.sync += shown.eq(nest.issue)
        # a flexible build's beats carry their mode: one outside the set ends the layer,
        # and each beat takes its mode's steps
        steps = Signal(8)
        if e.flexible and e.modes.mode_bits:
            field = e.weight_beat_layout()["mode"]
            beat_mode = w_port.data[field.offset:field.offset + e.modes.mode_bits]
            m.d.comb += steps.eq(1)
            with m.Switch(beat_mode):
                for i in range(len(e.modes)):
                    with m.Case(i):
                        m.d.comb += steps.eq(e.steps_per_beat(i))
                with m.Default():
                    m.d.comb += bad_mode.eq(shown)
        else:
            m.d.comb += steps.eq(e.steps_per_beat(0))
        counters.add("steps", steps, when=taken)
        with m.If(run & bad_mode):
            m.d.comb += runtime_error.eq(ErrorCode.BAD_MODE)

    def _feed_fetch(self, m, d, run, starting, wbuf, abuf, nest, counters):
        """The feed with rank 1 at the fetch, a pipeline of two stages that move together
        when the next one is free: ``wbuf`` is read first (stage 1 shows the beat and its
        rank-1 offsets), then only the ``abuf`` banks the offsets name (stage 2: the beat
        without its offsets, and the G1 fetched blocks, to the rank-0 engine). The loop
        nest, the arrival checks and the stall counters are ``_BeatIssue``'s, as for
        ``_feed``."""
        c, e = self.config, self.config.engine
        w_port = wbuf.read_port(domain="sync")
        m.submodules.fetch = route = FetchRoute(e.pattern, e.cols, e.width, e.signed)
        shown = Signal()                    # stage 1: wbuf's read port shows a beat
        shown2 = Signal()                   # stage 2: a beat pair for the engine
        with m.If(starting):
            m.d.sync += [shown.eq(0), shown2.eq(0)]
        taken = self.weights.valid & self.weights.ready
        advance2 = ~shown2 | taken
        advance = ~shown | advance2
        m.d.comb += nest.advance.eq(advance)
        core_bits = c.core.weight_beat_bits
        last_at = c.core.weight_beat_layout()["last"].offset
        beat = Signal(core_bits)
        m.d.comb += [beat.eq(w_port.data[:core_bits]), beat[last_at].eq(nest.at_last)]
        m.d.comb += [w_port.addr.eq(d.w_base + nest.w_index), w_port.en.eq(advance)]
        # stage 1 -> 2: the banks the offsets name, at the activations beat of stage 1
        a_row = Signal.like(d.a_base)
        with m.If(advance):
            m.d.sync += a_row.eq(d.a_base + nest.a_index)
        m.d.comb += [route.en.eq(advance2), route.offsets.eq(w_port.data[core_bits:])]
        for bank, port in enumerate(abuf.read_ports):
            m.d.comb += [port.addr.eq(a_row), port.en.eq(advance2 & route.bank_en[bank]),
                         route.words[bank].eq(port.data)]
        weights = Signal(core_bits)
        with m.If(advance2):
            m.d.sync += [shown2.eq(shown), weights.eq(beat)]
        m.d.comb += [self.weights.payload.eq(weights),
                     self.activations.payload.eq(Value.cast(route.acts)),
                     self.weights.valid.eq(shown2 & run),
                     self.activations.valid.eq(shown2 & run)]
        counters.add("abuf_reads", sum(route.bank_en), when=advance2 & shown)
        with m.If(advance):
            m.d.sync += shown.eq(nest.issue)
        counters.add("steps", c.core.steps_per_beat(0), when=taken)

    # -- the engine's tiles: into the output buffer, out to DRAM --------------------------
    def _store(self, m, d, run, starting, obuf, tiles, tiles_done, write_busy, counters,
               runtime_error):
        c = self.config
        slots = c.obuf_tiles
        written = Signal(COUNT_BITS)        # tiles the engine left into obuf
        sent = Signal(COUNT_BITS)           # tiles whose write command was issued
        wp, rp = Signal(range(slots)), Signal(range(slots))
        held = Signal(range(slots + 1))
        with m.If(starting):
            m.d.sync += [written.eq(0), sent.eq(0), wp.eq(0), rp.eq(0), tiles_done.eq(0)]
        # into obuf
        port_in = obuf.write_port()
        take = self.tiles.valid & (held < slots)
        m.d.comb += [self.tiles.ready.eq(held < slots), port_in.addr.eq(wp),
                     port_in.data.eq(self.tiles.payload), port_in.en.eq(take)]
        counters.add("stall_output", 1, when=run & self.tiles.valid & ~self.tiles.ready)
        counters.add("obuf_writes", 1, when=take)
        released = Signal()
        with m.If(take):
            m.d.sync += [written.eq(written + 1), wp.eq(Mux(wp == slots - 1, 0, wp + 1))]
        m.d.sync += held.eq(held + take - released)
        with m.If(starting):                # what an ended layer left in obuf is dropped
            m.d.sync += held.eq(0)
        # out of obuf in two stages that overlap: *prepare* takes the next tile from obuf
        # (into ``raw``) and, with REQUANT, requantizes it ``requant_lanes`` rows a cycle
        # (into ``gathered``); *send* issues the tile's write command and shifts its words
        # out. The next tile is prepared while this one's words leave.
        e = c.engine
        port_out = obuf.read_port(domain="sync")
        words = Mux(d.requant, c.quant_tile_words, c.tile_words)
        tile_bytes = words * c.word_bytes
        quant = d.requant & c.requant
        PREP_IDLE, PREP_LOAD, PREP_ROWS, PREP_FULL = range(4)
        prep = Signal(range(4))
        raw = Signal(c.tile_bits)
        gathered = Signal(e.rows * e.cols * 8)
        # the tile going out next, stepped when its command is issued: so while a tile's
        # words leave, it is already the tile being prepared
        out = _TileWalk(m, d, c.m_chunk, starting, "store")
        m.d.comb += [port_out.addr.eq(rp), port_out.en.eq(1)]
        with m.If(starting):
            m.d.sync += prep.eq(PREP_IDLE)
        with m.If((prep == PREP_IDLE) & run & (runtime_error == 0) & (held != 0)):
            m.d.sync += prep.eq(PREP_LOAD)                # obuf's port shows the tile at rp
        counters.add("obuf_reads", 1, when=prep == PREP_LOAD)
        with m.If(prep == PREP_LOAD):
            m.d.comb += released.eq(1)
            m.d.sync += [raw.eq(port_out.data), rp.eq(Mux(rp == slots - 1, 0, rp + 1)),
                         prep.eq(Mux(quant, PREP_ROWS, PREP_FULL))]
        if c.requant:
            rows_done = self._requantize(m, d, prep == PREP_ROWS, raw, out.mt, gathered,
                                         counters)
            with m.If(rows_done):
                m.d.sync += prep.eq(PREP_FULL)
        # send
        shift = Signal(c.tile_words * c.dma_bits)
        left = Signal(range(c.tile_words + 1))     # words of the current tile still to send
        m.d.comb += [write_busy.eq(left != 0), self.wr_cmd.valid.eq(0),
                     self.wr_cmd.payload.addr.eq(d.z_addr + out.index * tile_bytes),
                     self.wr_cmd.payload.words.eq(words)]
        with m.If(starting):
            m.d.sync += left.eq(0)
        with m.If((prep == PREP_FULL) & (left == 0) & run & (runtime_error == 0)):
            m.d.comb += self.wr_cmd.valid.eq(1)
            with m.If(self.wr_cmd.ready):
                overflow = raw[e.rows * e.cols * e.acc_width]
                m.d.sync += [prep.eq(PREP_IDLE), sent.eq(sent + 1), left.eq(words),
                             shift.eq(Mux(quant, Cat(gathered, overflow), raw))]
                out.step()
        m.d.comb += [self.wr_data.valid.eq(left != 0),
                     self.wr_data.payload.data.eq(shift[:c.dma_bits])]
        sending = self.wr_data.valid & self.wr_data.ready
        counters.add("dram_write_bytes", c.word_bytes, when=sending)
        with m.If(sending):
            m.d.sync += [shift.eq(shift >> c.dma_bits), left.eq(left - 1)]
        with m.If(self.wr_done):
            m.d.sync += tiles_done.eq(tiles_done + 1)
        with m.If(run & (self.wr_error != 0)):
            m.d.comb += runtime_error.eq(Mux(self.wr_error == 3, ErrorCode.WRITE_DECERR,
                                             ErrorCode.WRITE_SLVERR))

    def _requantize(self, m, d, rows_phase, raw, mt, gathered, counters):
        """REQUANT: the tile in ``raw`` (of m-tile ``mt``) through ``requant_lanes``
        ``Requantizer``s, rows ``r*L .. r*L+L-1`` in cycle r, each row with its ``qbuf``
        entry (read a cycle ahead, one bank per lane), the int8 rows gathered into
        ``gathered`` in row order. Returns the signal that marks the tile's last rows
        leaving (``gathered`` holds the tile the cycle after)."""
        c, e = self.config, self.config.engine
        lanes = c.requant_lanes
        steps = e.rows // lanes
        rqs = []
        for j in range(lanes):
            m.submodules[f"requantizer_{j}" if lanes > 1 else "requantizer"] = rq = \
                Requantizer(e.cols, e.acc_width, e.signed)
            rqs.append(rq)
        row_bits = e.cols * e.acc_width
        q_step = Signal(range(steps + 1))          # the next step whose entries are read
        shown = Signal()                           # the read ports show step ``shown_step``'s
        shown_step = Signal(range(steps))
        advance = ~shown | rqs[0].i.ready          # the lanes move in lockstep
        base = mt * steps                          # the m-tile's first index in each bank
        for port in self._q_reads:
            m.d.comb += [port.addr.eq(base + q_step), port.en.eq(advance)]
        with m.If(~rows_phase):
            m.d.sync += [q_step.eq(0), shown.eq(0)]
        with m.Elif(advance):
            m.d.sync += [shown.eq(q_step < steps), shown_step.eq(q_step)]
            with m.If(q_step < steps):
                m.d.sync += q_step.eq(q_step + 1)
        rows = [raw[r * row_bits:(r + 1) * row_bits] for r in range(e.rows)]
        for j, (rq, port) in enumerate(zip(rqs, self._q_reads)):
            z_row = Signal(row_bits, name=f"z_row_{j}")
            with m.Switch(shown_step):
                for step in range(steps):
                    with m.Case(step):
                        m.d.comb += z_row.eq(rows[step * lanes + j])
            entry = hss_requant_entry(port.data)
            m.d.comb += [rq.i.valid.eq(rows_phase & shown),
                         Value.cast(rq.i.payload.z).eq(z_row),
                         rq.i.payload.scale.eq(entry["scale"]),
                         rq.i.payload.shift.eq(entry["shift"]),
                         rq.i.payload.relu.eq(d.relu),
                         rq.i.payload.last.eq(shown_step == steps - 1),
                         rq.o.ready.eq(1)]
        counters.add("qbuf_reads", lanes, when=rqs[0].i.valid & rqs[0].i.ready)
        out_bits = e.cols * 8
        done = Signal()
        with m.If(rqs[0].o.valid):
            ys = [Value.cast(rq.o.payload.y) for rq in rqs]
            kept = e.rows * out_bits - lanes * out_bits
            step = Cat(gathered[lanes * out_bits:], *ys) if kept else Cat(*ys)
            m.d.sync += gathered.eq(step)
            m.d.comb += done.eq(rqs[0].o.payload.last)
        return done


def hss_requant_entry(word):
    """A ``qbuf`` entry's fields (``hss.requant``: scale bits 15:0, shift bits 21:16)."""
    return {"scale": word[0:SCALE_BITS].as_signed(), "shift": word[16:16 + SHIFT_BITS]}


class _State:
    IDLE, LATCH, CHECK, RUN, ABORT, DONE, ERROR = range(7)
    NAMES = ("IDLE", "LATCH", "CHECK", "RUN", "ABORT", "DONE", "ERROR")


class _Latched:
    """The descriptor as it was when the layer started (the registers may change)."""

    def __init__(self, m: Module, ports):
        self._m, self._ports = m, ports
        self.w_addr, self.a_addr = Signal(ADDR_BITS), Signal(ADDR_BITS)
        self.z_addr, self.q_addr = Signal(ADDR_BITS), Signal(ADDR_BITS)
        self.m_tiles, self.n_tiles, self.bpt = Signal(16), Signal(16), Signal(16)
        self.w_base, self.a_base = Signal(COUNT_BITS), Signal(COUNT_BITS)
        self.load_w, self.load_a = Signal(), Signal()
        self.requant, self.relu = Signal(), Signal()
        self.modes = Signal(32)

    def latch(self):
        p = self._ports
        self._m.d.sync += [
            self.w_addr.eq(p.w_addr), self.a_addr.eq(p.a_addr), self.z_addr.eq(p.z_addr),
            self.q_addr.eq(p.q_addr), self.m_tiles.eq(p.m_tiles), self.n_tiles.eq(p.n_tiles),
            self.bpt.eq(p.beats_per_tile), self.w_base.eq(p.w_base), self.a_base.eq(p.a_base),
            self.load_w.eq(p.load_w), self.load_a.eq(p.load_a), self.requant.eq(p.requant),
            self.relu.eq(p.relu), self.modes.eq(p.modes)]


class _Counters:
    """The performance counters: cleared when a layer starts, counting while it runs."""

    def __init__(self, m: Module, ports, starting, mode):
        self._m, self._ports, self._adds = m, ports, {name: [] for name in COUNTERS}
        self._starting = starting
        busy = (mode == _State.RUN) | (mode == _State.ABORT)
        self.add("cycles", 1, when=busy)

    def add(self, name: str, amount, when=None):
        self._adds[name].append((amount, when))

    def finish(self):
        for name, adds in self._adds.items():
            port = getattr(self._ports, name)
            total = 0
            for amount, when in adds:
                total = total + (Mux(when, amount, 0) if when is not None else amount)
            with self._m.If(self._starting):
                self._m.d.sync += port.eq(0)
            with self._m.Else():
                self._m.d.sync += port.eq(port + total)
