"""An on-board self-test: the accelerator runs the testbench's GEMM from ROM and says over a
UART whether it computed the golden Z.

``SelfTest`` needs no platform (its Verilog runs in Verilator); ``SelfTestBoard`` wires it to
an ``amaranth-boards`` platform's clock, UART, LEDs and first button. The line it prints is
``hss.selftest.selftest_line``'s: ``PASS cycles=N`` (N from the first step to the last tile,
both included: the testbench's ``CYCLES``, as the ROMs never stall the streams),
``FAIL tile=T row=R col=C exp=E got=G`` for the first element that differs, or
``FAIL timeout cycles=N`` when the run is not over after its limit of N cycles (a hung
accelerator would otherwise print nothing). Fixed and flexible builds alike
(``hdl.accelerator_for``).
"""
from __future__ import annotations

import string

from amaranth.build import ResourceError
from amaranth.hdl import (Array, Cat, Const, Elaboratable, Module, Mux, Shape, Signal, Value,
                          signed, unsigned)
from amaranth.lib import data, io, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hss.packing import pack_fields
from hss.selftest import FAIL_LINE, PASS_LINE, TIMEOUT_LINE

from .accelerator import accelerator_for
from .stimulus import as_layers
from .top import LATENCY

__all__ = ["selftest_cycles", "baud_divisor", "UARTTx", "LinePrinter", "ROMStream",
           "TileChecker", "Stopwatch", "SelfTest", "SelfTestBoard", "rom_words"]


def _check_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be a positive integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")


def selftest_cycles(vectors) -> int:
    """The ``N`` of ``PASS cycles=N``: every step plus the latency, as the testbench's
    ``CYCLES`` without stalls (the ROMs never stall the streams, nor the checker the tiles)."""
    return sum(v.steps for v in as_layers(vectors)) + LATENCY


def baud_divisor(clk_hz, baud: int = 115200, tolerance: float = 0.02) -> int:
    """Clock cycles per UART bit; a receiver resynchronizes on each start bit, so a frame of
    10 bits tolerates a few percent of rate error, not more."""
    if not isinstance(clk_hz, (int, float)) or clk_hz <= 0:
        raise ValueError(f"clk_hz must be a positive frequency, not {clk_hz!r}")
    _check_positive_int("baud", baud)
    divisor = round(clk_hz / baud)
    if divisor < 1 or abs(clk_hz / divisor - baud) > tolerance * baud:
        raise ValueError(f"a {clk_hz / 1e6:g} MHz clock cannot make {baud} baud within "
                         f"{tolerance:.0%}")
    return divisor


class UARTTx(wiring.Component):
    """8N1 transmitter: one byte per handshake of ``data``, ``divisor`` cycles per bit.

    ``tx`` comes straight from a register (idle high), so it never glitches.
    """

    def __init__(self, divisor: int):
        _check_positive_int("divisor", divisor)
        self.divisor = divisor
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        frame = Signal(10, init=0x3FF)          # start, 8 data bits LSB first, stop
        bits = Signal(range(11))                # bits of the frame still to send
        timer = Signal(range(self.divisor))
        m.d.comb += [self.tx.eq(frame[0]), self.data.ready.eq(bits == 0)]
        with m.If(bits == 0):
            with m.If(self.data.valid):
                m.d.sync += [frame.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))),
                             bits.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [frame.eq(Cat(frame[1:], Const(1, 1))), bits.eq(bits - 1),
                         timer.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m


class LinePrinter(wiring.Component):
    """Prints one of ``templates`` (``str.format`` text with ``{name}`` fields, e.g.
    ``"PASS cycles={cycles}\\r\\n"``) as bytes, the fields in signed decimal.

    A pulse on ``start`` prints template ``which``; ``fields`` must hold still while
    ``busy``. Decimal digits come from repeated subtraction of powers of ten (at most nine
    cycles per digit): slow, but a UART is slower, and it needs no divider.
    """

    _CHAR, _FIELD, _END = 0, 1, 2

    def __init__(self, templates, fields: dict):
        if not templates:
            raise ValueError("at least one template is needed")
        if not fields:
            raise ValueError("at least one field is needed")
        self.field_shapes = {name: Shape.cast(shape) for name, shape in fields.items()}
        names = list(self.field_shapes)
        self._program, self._bases = [], []
        for text in templates:
            self._bases.append(len(self._program))
            for literal, name, spec, conversion in string.Formatter().parse(text):
                for ch in literal:
                    if not 0 < ord(ch) < 128:
                        raise ValueError(f"template {text!r}: {ch!r} is not ASCII")
                    self._program.append((self._CHAR, ord(ch)))
                if name is None:
                    continue
                if name not in self.field_shapes or spec or conversion:
                    raise ValueError(f"template {text!r}: {{{name}}} is not a plain field "
                                     f"of {names}")
                self._program.append((self._FIELD, names.index(name)))
            self._program.append((self._END, 0))
        width = max(s.width for s in self.field_shapes.values()) + 1
        self._shape = signed(width)             # holds every field, signed or not
        self._digits = len(str(1 << width))
        super().__init__({
            "start": In(1),
            "which": In(range(len(templates))),
            "fields": In(data.StructLayout(self.field_shapes)),
            "bytes": Out(stream.Signature(8)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        out = self.bytes
        pc = Signal(range(len(self._program)))
        kind, arg = Signal(2), Signal(8)
        with m.Switch(pc):
            for addr, (k, a) in enumerate(self._program):
                with m.Case(addr):
                    m.d.comb += [kind.eq(k), arg.eq(a)]
        values = Array(Signal(self._shape, name=f"field_{name}") for name in self.field_shapes)
        for v, name in zip(values, self.field_shapes):
            m.d.comb += v.eq(getattr(self.fields, name))
        value = values[arg]
        powers = Array(Const(10 ** k, self._shape.width + 4) for k in range(self._digits))
        rest = Signal(self._shape.width)        # magnitude still to print
        place = Signal(range(self._digits))     # the power of ten being printed
        digit = Signal(4)
        shown = Signal()                        # a digit of this number was printed

        m.d.comb += self.busy.eq(1)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.busy.eq(0)
                with m.If(self.start):
                    m.d.sync += pc.eq(Array(self._bases)[self.which])
                    m.next = "FETCH"
            with m.State("FETCH"):
                with m.Switch(kind):
                    with m.Case(self._CHAR):
                        m.d.comb += [out.valid.eq(1), out.payload.eq(arg)]
                        with m.If(out.ready):
                            m.d.sync += pc.eq(pc + 1)
                    with m.Case(self._FIELD):
                        m.d.sync += [rest.eq(Mux(value < 0, -value, value)), digit.eq(0),
                                     place.eq(self._digits - 1), shown.eq(0)]
                        with m.If(value < 0):
                            m.next = "SIGN"
                        with m.Else():
                            m.next = "DIVIDE"
                    with m.Default():
                        m.next = "IDLE"
            with m.State("SIGN"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(ord("-"))]
                with m.If(out.ready):
                    m.next = "DIVIDE"
            with m.State("DIVIDE"):
                with m.If(rest >= powers[place]):
                    m.d.sync += [rest.eq(rest - powers[place]), digit.eq(digit + 1)]
                with m.Else():
                    m.next = "DIGIT"
            with m.State("DIGIT"):
                with m.If((digit != 0) | shown | (place == 0)):
                    m.d.comb += [out.valid.eq(1), out.payload.eq(ord("0") + digit)]
                    with m.If(out.ready):
                        m.d.sync += [shown.eq(1), digit.eq(0)]
                        with m.If(place == 0):
                            m.d.sync += pc.eq(pc + 1)
                            m.next = "FETCH"
                        with m.Else():
                            m.d.sync += place.eq(place - 1)
                            m.next = "DIVIDE"
                with m.Else():                  # a leading zero
                    m.d.sync += place.eq(place - 1)
                    m.next = "DIVIDE"
        return m


class ROMStream(wiring.Component):
    """``words`` from a ROM (block RAM) as a stream, back to back.

    The read port is registered, so it is addressed with the *next* word in the cycle of a
    handshake: the data is then there in the following cycle, with no bubble.
    """

    def __init__(self, words, width: int):
        _check_positive_int("width", width)
        self.words = tuple(words)
        if not self.words:
            raise ValueError("a ROM needs at least one word")
        for i, w in enumerate(self.words):
            if not isinstance(w, int) or not 0 <= w < 1 << width:
                raise ValueError(f"word {i} ({w!r}) does not fit in {width} unsigned bits")
        self.width = width
        super().__init__({"stream": Out(stream.Signature(unsigned(width)))})

    def elaborate(self, platform):
        m = Module()
        depth = len(self.words)
        m.submodules.rom = rom = Memory(shape=unsigned(self.width), depth=depth,
                                        init=self.words)
        port = rom.read_port()
        addr = Signal(range(depth + 1))         # the word on the stream now
        primed = Signal()                       # the read port has read word `addr`
        take = self.stream.valid & self.stream.ready
        m.d.sync += primed.eq(1)
        m.d.comb += [self.stream.valid.eq(primed & (addr < depth)),
                     self.stream.payload.eq(port.data),
                     port.addr.eq(Mux(take, addr + 1, addr))]
        with m.If(take):
            m.d.sync += addr.eq(addr + 1)
        return m


class TileChecker(wiring.Component):
    """Compares ``tiles`` computed tiles with the ``expected`` stream's, one of each per
    handshake, and keeps the first differing element (row-major within a tile).

    ``z`` is a tile as packed by the accelerator (``rows * cols`` elements of ``elem_shape``,
    element ``(i, j)`` at ``i * cols + j``); ``done`` rises after the last tile.
    """

    def __init__(self, rows: int, cols: int, elem_shape, tiles: int):
        for name, v in (("rows", rows), ("cols", cols), ("tiles", tiles)):
            _check_positive_int(name, v)
        self.rows, self.cols, self.count = rows, cols, tiles
        self.elem_shape = Shape.cast(elem_shape)
        bits = rows * cols * self.elem_shape.width
        super().__init__({
            "z": In(stream.Signature(unsigned(bits))),
            "expected": In(stream.Signature(unsigned(bits))),
            "done": Out(1), "passed": Out(1, init=1),
            "tile": Out(range(tiles)), "row": Out(range(rows)), "col": Out(range(cols)),
            "exp": Out(self.elem_shape), "got": Out(self.elem_shape),
        })

    def elaborate(self, platform):
        m = Module()
        w, cols = self.elem_shape.width, self.cols
        got, exp = self.z.payload, self.expected.payload
        m.d.comb += [self.z.ready.eq(self.expected.valid & ~self.done),
                     self.expected.ready.eq(self.z.valid & ~self.done)]
        take = self.z.valid & self.z.ready
        seen = Signal(range(self.count))
        with m.If(take):
            m.d.sync += seen.eq(seen + 1)
            with m.If(seen == self.count - 1):
                m.d.sync += self.done.eq(1)
            # the first differing element wins: later m.If's override earlier ones
            for e in reversed(range(self.rows * cols)):
                g, x = got[e * w:(e + 1) * w], exp[e * w:(e + 1) * w]
                with m.If((g != x) & self.passed):
                    m.d.sync += [self.passed.eq(0), self.tile.eq(seen),
                                 self.row.eq(e // cols), self.col.eq(e % cols),
                                 self.got.eq(g), self.exp.eq(x)]
        return m


class Stopwatch(wiring.Component):
    """Counts the cycles from the first with ``start`` to the last before ``stop``, both
    included, up to ``limit``: a run that would count one more raises ``expired`` instead,
    ``cycles`` held at ``limit``.

    A watchdog, so that a hung run still ends with a verdict; a run of exactly ``limit``
    cycles is within it. ``expired`` rises only while ``stop`` is low (the limit came
    first), then stays high.
    """

    def __init__(self, limit: int):
        _check_positive_int("limit", limit)
        self.limit = limit
        super().__init__({"start": In(1), "stop": In(1),
                          "cycles": Out(range(limit + 1)), "expired": Out(1)})

    def elaborate(self, platform):
        m = Module()
        running = Signal()
        with m.If((running | self.start) & ~self.stop & ~self.expired):
            m.d.sync += running.eq(1)
            with m.If(self.cycles == self.limit):
                m.d.sync += self.expired.eq(1)
            with m.Else():
                m.d.sync += self.cycles.eq(self.cycles + 1)
        return m


def rom_words(vectors) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Weights beats, activations beats and expected tiles (``z`` packed) of ``vectors``
    (one ``GemmVectors`` or a list, run back to back)."""
    layers = as_layers(vectors)
    acc = layers[0].config.acc_width
    return (tuple(b for v in layers for b in v.weight_beats),
            tuple(b for v in layers for b in v.act_beats),
            tuple(pack_fields(t.reshape(-1).tolist(), acc)
                  for v in layers for t in v.expected_tiles))


class SelfTest(wiring.Component):
    """The accelerator fed from ROMs, its tiles checked against the expected ROM, the
    verdict printed once on ``tx`` (8N1, ``divisor`` cycles per bit) and again on each
    rising edge of ``replay``. ``leds``: 0 done, 1 passed, 2 failed.

    ``vectors``: one ``GemmVectors`` or a list of them (layers of one configuration), as the
    testbench takes them. Every input beat is in ROM, so the GEMM must fit the block RAM.
    ``limit``: the cycles the run may take (``Stopwatch``); past them the verdict is
    ``FAIL timeout cycles=limit``, whatever the tiles do later.
    """

    def __init__(self, vectors, *, divisor: int, limit: int):
        layers = as_layers(vectors)
        _check_positive_int("divisor", divisor)
        _check_positive_int("limit", limit)
        if layers[0].config.tile_beats > 1:
            raise ValueError(f"the self-test checks one tiles beat per tile, but this config's "
                             f"tiles take {layers[0].config.tile_beats} beats")
        self.vectors, self.config, self.divisor, self.limit = (layers, layers[0].config,
                                                               divisor, limit)
        #: the cycles a correct run takes (``PASS cycles=``)
        self.expected_cycles = selftest_cycles(layers)
        super().__init__({"tx": Out(1, init=1), "leds": Out(3), "replay": In(1)})

    def elaborate(self, platform):
        m = Module()
        c = self.config
        weights, acts, expected = rom_words(self.vectors)
        accel = accelerator_for(c)
        m.submodules.accelerator = accel
        m.submodules.weights = w_rom = ROMStream(weights, len(Value.cast(accel.weights.payload)))
        m.submodules.acts = a_rom = ROMStream(acts, len(Value.cast(accel.activations.payload)))
        m.submodules.expected = x_rom = ROMStream(expected, c.rows * c.cols * c.acc_width)
        m.submodules.checker = check = TileChecker(c.rows, c.cols, c.acc_shape, len(expected))
        m.d.comb += [
            accel.weights.valid.eq(w_rom.stream.valid), w_rom.stream.ready.eq(accel.weights.ready),
            accel.weights.payload.eq(w_rom.stream.payload),
            accel.activations.valid.eq(a_rom.stream.valid),
            a_rom.stream.ready.eq(accel.activations.ready),
            accel.activations.payload.eq(a_rom.stream.payload),
            check.z.valid.eq(accel.tiles.valid), accel.tiles.ready.eq(check.z.ready),
            check.z.payload.eq(accel.tiles.payload.z),
        ]
        wiring.connect(m, x_rom.stream, check.expected)

        # cycles from the first step (both inputs valid) to the last tile, both included
        m.submodules.stopwatch = watch = Stopwatch(self.limit)
        m.d.comb += [watch.start.eq(w_rom.stream.valid & a_rom.stream.valid),
                     watch.stop.eq(check.done)]
        # the verdict: a timeout stands even if the tiles arrive later
        over = check.done | watch.expired
        passed = check.done & check.passed & ~watch.expired

        m.submodules.printer = printer = LinePrinter(
            (PASS_LINE, FAIL_LINE, TIMEOUT_LINE),
            {"cycles": watch.cycles.shape(), "tile": check.tile.shape(),
             "row": check.row.shape(), "col": check.col.shape(), "exp": c.acc_shape,
             "got": c.acc_shape})
        m.submodules.uart = uart = UARTTx(self.divisor)
        wiring.connect(m, printer.bytes, uart.data)
        over_q, replay_q = Signal(), Signal()
        m.d.sync += [over_q.eq(over), replay_q.eq(self.replay)]
        again = self.replay & ~replay_q & over & ~printer.busy
        m.d.comb += [
            printer.start.eq((over & ~over_q) | again),
            printer.which.eq(Mux(watch.expired, 2, Mux(check.passed, 0, 1))),
            printer.fields.cycles.eq(watch.cycles), printer.fields.tile.eq(check.tile),
            printer.fields.row.eq(check.row), printer.fields.col.eq(check.col),
            printer.fields.exp.eq(check.exp), printer.fields.got.eq(check.got),
            self.tx.eq(uart.tx),
            self.leds.eq(Cat(over, passed, over & ~passed)),
        ]
        return m


class SelfTestBoard(Elaboratable):
    """``SelfTest`` on an ``amaranth-boards`` platform: its default clock (the UART's rate
    follows from its frequency), ``uart`` 0's ``tx``, ``button`` 0 (when there is one) to
    print the line again, and LEDs: ``led_g``/``led_r`` for pass/fail where the board
    names them (iCEBreaker), else ``led`` 0, 1, 2 for done, pass, fail (those it has).
    ``limit``: ``SelfTest``'s."""

    def __init__(self, vectors, *, limit: int, baud: int = 115200):
        _check_positive_int("baud", baud)
        _check_positive_int("limit", limit)
        self.vectors, self.limit, self.baud = vectors, limit, baud

    def elaborate(self, platform):
        m = Module()
        divisor = baud_divisor(platform.default_clk_frequency, self.baud)
        m.submodules.selftest = st = SelfTest(self.vectors, divisor=divisor, limit=self.limit)
        m.submodules.tx = tx = io.Buffer("o", platform.request("uart", 0, dir="-").tx)
        m.d.comb += tx.o.eq(st.tx)
        try:                                    # a red and a green LED: pass and fail
            platform.lookup("led_g", 0), platform.lookup("led_r", 0)
            leds = [None, ("led_g", 0), ("led_r", 0)]
        except ResourceError:                   # else LEDs 0, 1, 2: done, pass, fail
            leds = [("led", i) for i in range(3)]
        for i, (bit, led) in enumerate(zip(st.leds, leds)):
            try:
                if led is not None:
                    m.submodules[f"led{i}"] = buf = io.Buffer(
                        "o", platform.request(*led, dir="-"))
                    m.d.comb += buf.o.eq(bit)
            except ResourceError:
                break
        try:
            button = platform.request("button", 0, dir="-")
        except ResourceError:
            pass
        else:
            m.submodules.button = buf = io.Buffer("i", button)
            m.submodules.replay_sync = FFSynchronizer(buf.i, st.replay)
        return m
