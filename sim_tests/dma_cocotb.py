"""cocotb tests of ``hdl.dma`` on cocotbext-axi's AXI RAM: run by ``test_dma_cocotb.py``.

The top (``DMAPair`` there) holds a DMARead and a DMAWrite on one AXI4 master port
``m_axi_*``; this module drives their commands and data, copies what DMARead delivers into
DMAWrite (DRAM -> DMARead -> DMAWrite -> DRAM), and predicts everything from ``hss.dram``:
the exact AR and AW sequences (``bursts``), the words and ``last`` flags, and every byte
of the memory afterwards. The RAM pauses every channel at random (latency and
back-pressure), the bench stalls every stream at random.

One loop per cycle drives at the falling edge and samples the settled values before the
rising edge (``ReadOnly``), so every handshake is seen exactly; it also checks the AXI rules
the RAM does not check itself: valid held with its payload until ready, aligned full-width
INCR bursts of at most ``max_burst`` beats inside a 4 KiB page, ``rlast``/``wlast`` on the
beat ``axlen`` says, at most ``outstanding`` bursts in flight, no valid or ready in reset.

Parameters come in ``DMA_PARAMS`` (JSON: prefix, the pair's port prefix in the top;
data_bits, max_burst, outstanding, fifo_depth; seed).
"""
from __future__ import annotations

import json
import logging
import os
import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiRam

from axi_faults import FaultyRam, pauses

from hss.dram import DRAM, PAGE_BYTES, bursts

SLVERR, DECERR = 2, 3
#: bytes of RAM the tests use: reads from the lower half, writes to the upper half
SIZE = 1 << 20
HALF = SIZE // 2
log = logging.getLogger("cocotb.dma_bench")


def params():
    p = json.loads(os.environ["DMA_PARAMS"])
    p["word_bytes"] = p["data_bits"] // 8
    return p


# ---- the bench -------------------------------------------------------------------------

AR_FIELDS = ("araddr", "arlen", "arsize", "arburst", "arid", "arlock", "arcache", "arprot",
             "arqos")
AW_FIELDS = tuple("aw" + f[2:] for f in AR_FIELDS)
W_FIELDS = ("wdata", "wstrb", "wlast")


class Source:
    """A stream the bench drives: offers the next item of ``queue`` (gaps with probability
    ``gap``) and holds it until taken."""

    def __init__(self, rng, gap):
        self.queue, self.offer, self.rng, self.gap = deque(), None, rng, gap

    def next(self, taken):
        if taken:
            self.offer = None
        if self.offer is None and self.queue and self.rng.random() >= self.gap:
            self.offer = self.queue.popleft()


class Bench:
    """Drives the top cycle by cycle and records and checks what crosses every interface."""

    def __init__(self, dut, p, rng, *, gap=0.3):
        self.dut, self.p, self.rng = dut, p, rng
        # DMARead's consumer refuses in runs long enough to fill its data FIFO
        self.stalls = pauses(random.Random(rng.random()), 0.05, 40)
        self.bits, self.wb = p["data_bits"], p["word_bytes"]
        self.ones = (1 << self.wb) - 1
        pre = p["prefix"]
        self.h = {"clk": dut.clk, "rst": dut.rst}
        self.h.update({name: getattr(dut, pre + name) for name in (
            "read_cmd__valid", "read_cmd__ready", "read_cmd__payload",
            "read_data__valid", "read_data__ready", "read_data__payload", "read_error",
            "read_idle", "read_clear", "write_cmd__valid", "write_cmd__ready",
            "write_cmd__payload", "write_data__valid", "write_data__ready",
            "write_data__payload", "write_done", "write_error", "write_idle", "write_clear")})
        for name in AR_FIELDS + AW_FIELDS + W_FIELDS + (
                "arvalid", "arready", "rvalid", "rready", "rlast", "rresp", "awvalid",
                "awready", "wvalid", "wready", "bvalid", "bready", "bresp"):
            self.h[name] = getattr(dut, pre + "m_axi_" + name)
        self.cycle = 0
        self.rst = 0
        self.read_cmds, self.write_cmds = Source(rng, gap), Source(rng, gap)
        self.write_words = Source(rng, gap)
        self.copy = True                 # words read are written
        self.read_clear = self.write_clear = 0
        self.forget()

    def forget(self):
        """Start recording afresh (after a reset)."""
        self.read_taken, self.write_taken = [], []      # commands the engines took
        self.received = []                               # (word, last) from DMARead
        self.ar, self.aw = [], []                        # (addr, beats, cycle offered)
        self.r_due = deque()                             # beats due of each read burst
        self.w_count, self.w_lens = 0, []
        self.odd_strobes = []                            # (cycle, wstrb) not all ones
        self.r_errors, self.b_resps = [], []             # (cycle, resp)
        self.writes_open = 0
        self.most_reads = self.most_writes = 0
        self.done = 0
        self.held = {}                                   # channel -> payload refused
        self.offered = {}                                # channel -> cycle first offered
        self.violations = []

    def bit(self, name):
        return int(self.h[name].value)

    def word(self, name):
        handle = self.h[name]
        return handle.value.to_unsigned() if len(handle) > 1 else int(handle.value)

    def violation(self, text):
        if len(self.violations) < 20:
            self.violations.append(f"cycle {self.cycle}: {text}")

    async def step(self):
        h = self.h
        await FallingEdge(h["clk"])
        h["rst"].value = self.rst
        for source, name in ((self.read_cmds, "read_cmd"), (self.write_cmds, "write_cmd"),
                             (self.write_words, "write_data")):
            h[name + "__valid"].value = int(source.offer is not None)
            if source.offer is not None:
                h[name + "__payload"].value = source.offer
        data_ready = int(not next(self.stalls))
        h["read_data__ready"].value = data_ready
        h["read_clear"].value, h["write_clear"].value = self.read_clear, self.write_clear
        await ReadOnly()
        self.sample(data_ready)
        self.cycle += 1

    def sample(self, data_ready):
        bit = self.bit
        if self.rst:
            for name in ("arvalid", "rready", "awvalid", "wvalid", "bready", "read_cmd__ready",
                         "write_cmd__ready", "write_data__ready", "read_data__valid"):
                if bit(name):
                    self.violation(f"{name} high in reset")
            self.read_cmds.next(False)
            self.write_cmds.next(False)
            self.write_words.next(False)
            return
        # the bench's streams
        taken = {}
        for source, name, log_ in ((self.read_cmds, "read_cmd", self.read_taken),
                                   (self.write_cmds, "write_cmd", self.write_taken),
                                   (self.write_words, "write_data", None)):
            taken[name] = source.offer is not None and bit(name + "__ready")
            if taken[name] and log_ is not None:
                log_.append(source.offer)
        if bit("read_data__valid"):
            payload = self.word("read_data__payload")
            if "data" in self.held and payload != self.held["data"] and not self.halted_read():
                self.violation("read_data changed before it was taken")
            if data_ready:
                self.held.pop("data", None)
                word, last = payload & ((1 << self.bits) - 1), payload >> self.bits
                self.received.append((word, last))
                if self.copy:
                    self.write_words.queue.append(word)
            else:
                self.held["data"] = payload
        elif "data" in self.held:
            if not self.halted_read():
                self.violation("read_data withdrawn before it was taken")
            self.held.pop("data")
        self.done += bit("write_done")
        # AXI
        self.r_channel()
        self.address_channel("ar", AR_FIELDS)
        self.w_channel()
        self.b_channel()
        self.address_channel("aw", AW_FIELDS)
        self.most_reads = max(self.most_reads, len(self.r_due))
        self.most_writes = max(self.most_writes, self.writes_open)
        if len(self.r_due) > self.p["outstanding"]:
            self.violation(f"{len(self.r_due)} read bursts in flight")
        if self.writes_open > self.p["outstanding"]:
            self.violation(f"{self.writes_open} write bursts await B")
        self.read_cmds.next(taken["read_cmd"])
        self.write_cmds.next(taken["write_cmd"])
        self.write_words.next(taken["write_data"])

    def halted_read(self):
        return self.bit("read_error") != 0

    def hold_check(self, ch, payload, ready):
        """valid stays, with its payload, until ready."""
        if ch in self.held and self.held[ch] != payload:
            self.violation(f"{ch} payload changed before ready")
        if ready:
            self.held.pop(ch, None)
        else:
            self.held[ch] = payload

    def address_channel(self, ch, fields):
        if not self.bit(ch + "valid"):
            if ch in self.held:
                self.violation(f"{ch}valid fell before {ch}ready")
                self.held.pop(ch)
            self.offered.pop(ch, None)
            return
        values = tuple(self.word(f) for f in fields)
        self.offered.setdefault(ch, self.cycle)
        ready = self.bit(ch + "ready")
        self.hold_check(ch, values, ready)
        if not ready:
            return
        addr, length, size, burst, id_, lock, cache, prot, qos = values
        beats = length + 1
        if addr % self.wb or size != self.wb.bit_length() - 1 or burst != 1:
            self.violation(f"{ch}: addr {addr:#x} size {size} burst {burst}: not an aligned "
                           f"full-width INCR burst")
        if (id_, lock, cache, prot, qos) != (0, 0, 0b0011, 0, 0):
            self.violation(f"{ch}: id/lock/cache/prot/qos {(id_, lock, cache, prot, qos)}")
        if beats > self.p["max_burst"]:
            self.violation(f"{ch}: {beats} beats > max_burst")
        if addr % PAGE_BYTES + beats * self.wb > PAGE_BYTES:
            self.violation(f"{ch}: {beats} beats at {addr:#x} cross 4 KiB")
        (self.ar if ch == "ar" else self.aw).append((addr, beats, self.offered.pop(ch)))
        if ch == "ar":
            self.r_due.append(beats)
        else:
            self.writes_open += 1

    def r_channel(self):
        if not (self.bit("rvalid") and self.bit("rready")):
            return
        if not self.r_due:
            self.violation("an R beat with no read burst in flight")
            return
        self.r_due[0] -= 1
        if self.bit("rlast") != (self.r_due[0] == 0):
            self.violation(f"rlast {self.bit('rlast')} with {self.r_due[0]} beats still due")
        if self.r_due[0] == 0:
            self.r_due.popleft()
        resp = self.word("rresp")
        if resp:
            self.r_errors.append((self.cycle, resp))

    def w_channel(self):
        if not self.bit("wvalid"):
            if "w" in self.held:
                self.violation("wvalid fell before wready")
                self.held.pop("w")
            return
        values = tuple(self.word(f) for f in W_FIELDS)
        ready = self.bit("wready")
        self.hold_check("w", values, ready)
        if not ready:
            return
        _, strobes, last = values
        if strobes != self.ones:
            self.odd_strobes.append((self.cycle, strobes))
        self.w_count += 1
        if last:
            self.w_lens.append(self.w_count)
            self.w_count = 0

    def b_channel(self):
        if self.bit("bvalid") and self.bit("bready"):
            self.writes_open -= 1
            self.b_resps.append((self.cycle, self.word("bresp")))

    async def run_until(self, condition, limit, what):
        for _ in range(limit):
            if condition():
                return
            await self.step()
        raise AssertionError(f"{what}: not after {limit} cycles ({self.summary()})")

    async def cycles(self, count):
        for _ in range(count):
            await self.step()

    def summary(self):
        return (f"read cmds {len(self.read_taken)}, words {len(self.received)}, AR "
                f"{len(self.ar)}, R due {list(self.r_due)}, write cmds {len(self.write_taken)}, "
                f"AW {len(self.aw)}, W bursts {len(self.w_lens)}, B {len(self.b_resps)}, done "
                f"{self.done}, errors {self.bit('read_error')}/{self.bit('write_error')}, idle "
                f"{self.bit('read_idle')}/{self.bit('write_idle')}")

    # -- commands and what they should give ---------------------------------------------
    def read(self, addr, words):
        self.read_cmds.queue.append(addr | words << 32)

    def write(self, addr, words, data=None):
        self.write_cmds.queue.append(addr | words << 32)
        if data is not None:
            self.write_words.queue.extend(data)

    def expected_bursts(self, commands):
        return [b for payload in commands
                for b in bursts(payload & 0xFFFFFFFF, payload >> 32, self.wb,
                                self.p["max_burst"])]

    def check_protocol(self):
        assert not self.violations, "AXI or stream rule broken:\n" + "\n".join(self.violations)
        assert self.w_lens == [beats for _, beats, _ in self.aw[:len(self.w_lens)]], \
            "wlast does not end each burst on the beat awlen says"

    def check_bursts(self):
        """The AR and AW sequences are exactly hss.dram.bursts of the commands taken."""
        assert [(a, n) for a, n, _ in self.ar] == self.expected_bursts(self.read_taken)
        assert [(a, n) for a, n, _ in self.aw] == self.expected_bursts(self.write_taken)


async def start(dut, p, rng, ram_factory, *, pause_share=0.2, longest_pause=6):
    """Clock, reset, and the RAM started a few cycles into reset (its models sample
    ``ready`` as soon as they exist)."""
    pre = p["prefix"]
    for name in ("read_cmd__valid", "read_data__ready", "read_clear", "write_cmd__valid",
                 "write_data__valid", "write_clear"):
        getattr(dut, pre + name).value = 0
    for name in ("arready", "rvalid", "awready", "wready", "bvalid"):
        getattr(dut, pre + "m_axi_" + name).value = 0
    dut.rst.value = 1
    Clock(dut.clk, 2, unit="ns").start(start_high=False)
    bench = Bench(dut, p, rng)
    bench.rst = 1
    await bench.cycles(3)
    await RisingEdge(dut.clk)            # out of ReadOnly: the RAM drives its readies at once
    logging.getLogger(f"cocotb.{dut._name}").setLevel(logging.WARNING)   # the RAM: a line a burst
    ram = ram_factory(AxiBus.from_prefix(dut, pre + "m_axi"), dut.clk, dut.rst)
    for channel in (ram.read_if.ar_channel, ram.read_if.r_channel, ram.write_if.aw_channel,
                    ram.write_if.w_channel, ram.write_if.b_channel):
        channel.set_pause_generator(pauses(random.Random(rng.random()), pause_share,
                                           longest_pause))
    await bench.cycles(3)
    bench.rst = 0
    bench.forget()
    return bench, ram


def random_memory(ram, rng):
    """The RAM and its golden model, both full of the same random bytes."""
    model = DRAM()
    content = rng.randbytes(SIZE)
    model.write(0, content)
    ram.write(0, content)
    return model


def copy_commands(p, rng, count, dst_start):
    """``count`` copies (source, destination, words): sources anywhere in the lower half
    (some just below a 4 KiB boundary), one word, max_burst, one more and 256 words long
    and others at random; destinations one after another from ``dst_start``, apart."""
    wb, most = p["word_bytes"], p["max_burst"]
    lengths = [1, most, most + 1, 256] + [rng.randint(1, min(3 * most, 200))
                                          for _ in range(count - 4)]
    rng.shuffle(lengths)
    out, dst = [], dst_start
    for words in lengths:
        if rng.random() < 0.4:
            src = rng.randrange(1, HALF // PAGE_BYTES - 8) * PAGE_BYTES - wb * rng.randint(1, 3)
        else:
            src = rng.randrange(0, HALF - words * wb, wb)
        dst += rng.randrange(0, 4 * PAGE_BYTES, wb)
        out.append((src, dst, words))
        dst += words * wb
    assert dst <= SIZE
    return out


async def run_copies(bench, model, copies, what):
    """Copy, wait for the last ``done`` (one per copy of any words) and both engines idle,
    check words and bursts; the golden model takes the writes."""
    p = bench.p
    expected = []
    for src, dst, words in copies:
        bench.read(src, words)
        bench.write(dst, words)
        got = model.read_words(src, words, p["data_bits"])
        expected += [(w, int(i == words - 1)) for i, w in enumerate(got)]
    done0, commands = bench.done, sum(1 for *_, words in copies if words)
    await bench.run_until(
        lambda: (bench.done - done0 == commands and bench.bit("read_idle")
                 and bench.bit("write_idle") and not bench.write_words.queue),
        limit=40 * len(expected) + 4000, what=what)
    bench.check_protocol()
    assert bench.received == expected, "the words read are not the DRAM's"
    for src, dst, words in copies:
        model.write_words(dst, model.read_words(src, words, p["data_bits"]), p["data_bits"])
    assert bench.bit("read_error") == 0 and bench.bit("write_error") == 0
    assert not bench.odd_strobes


def assert_memory(ram, model, start=0, end=SIZE, allowed=None):
    """RAM equals the model from ``start`` to ``end``; ``allowed`` (byte ranges) may hold
    the model's bytes or ``allowed``'s own (written or not)."""
    got, want = ram.read(start, end - start), model.read(start, end - start)
    if got == want:
        return
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w and not (allowed and allowed(start + i, g)):
            raise AssertionError(f"memory differs at {start + i:#x}: {g:#04x}, model {w:#04x}")


# ---- the tests -------------------------------------------------------------------------

@cocotb.test()
async def copy_with_random_latency_and_backpressure(dut):
    p = params()
    rng = random.Random(p["seed"])
    bench, ram = await start(dut, p, rng, lambda bus, clk, rst: AxiRam(bus, clk, rst,
                                                                     size=SIZE))
    model = random_memory(ram, rng)
    copies = copy_commands(p, rng, 12, HALF)
    copies.insert(5, (0x1000, HALF - 0x1000, 0))     # no words: no burst, data or done
    await run_copies(bench, model, copies, "copy")
    bench.check_bursts()
    assert_memory(ram, model)
    assert bench.most_reads > 1, "never more than one read burst in flight"
    assert bench.most_writes > 1, "never more than one write burst awaiting B"
    log.info("copied %d words in %d cycles; at most %d reads, %d writes in flight",
             len(bench.received), bench.cycle, bench.most_reads, bench.most_writes)


# fault ranges: reads in the lower half, writes in the upper. A short SLVERR range and
# DECERR right after it, to the end of the next page: a read burst from the SLVERR range's
# start answers DECERR beats after its first SLVERR one, and a write command from there
# has its second burst (DECERR) issued before the first's B (SLVERR) returns.
SLVERR_BYTES = 64                   # one 512-bit word, eight 64-bit ones
READ_SLVERR = range(0x10800, 0x10800 + SLVERR_BYTES)
READ_DECERR = range(READ_SLVERR.stop, 0x12000)
WRITE_SLVERR = range(HALF + 0x20800, HALF + 0x20800 + SLVERR_BYTES)
WRITE_DECERR = range(WRITE_SLVERR.stop, HALF + 0x22000)


def faults(addr):
    if addr in READ_SLVERR or addr in WRITE_SLVERR:
        return SLVERR
    if addr in READ_DECERR or addr in WRITE_DECERR:
        return DECERR
    return 0


async def read_error_case(bench, model, commands, code, later_code=None):
    """Read ``commands`` (the second one meets an error); check the error (the first,
    ``code``, though a beat in flight answered ``later_code`` after it), that nothing hangs
    and no burst is issued after it, that the words delivered are a prefix of the expected
    ones ending before the first faulty word; clear; a read works again."""
    p, wb = bench.p, bench.p["word_bytes"]
    bench.forget()
    bench.copy = False
    expected, first_bad = [], None
    for addr, words in commands:
        bench.read(addr, words)
        for i in range(words):
            if first_bad is None and faults(addr + i * wb):
                first_bad = len(expected)
            expected.append((model.read_words(addr + i * wb, 1, p["data_bits"])[0],
                             int(i == words - 1)))
    await bench.run_until(
        lambda: (bench.bit("read_error") and not bench.read_cmds.queue
                 and bench.read_cmds.offer is None and bench.bit("read_idle")),
        limit=60 * len(expected) + 4000, what="read error")
    bench.check_protocol()
    assert bench.bit("read_error") == code
    assert not bench.r_due, "read bursts left unanswered"
    first_error = bench.r_errors[0][0]
    if later_code is not None:
        assert later_code in [resp for _, resp in bench.r_errors[1:]], \
            f"no {later_code} after the first error: the first-error rule went untested"
    late = [(hex(a), n) for a, n, offered in bench.ar if offered > first_error]
    assert not late, f"ARs offered after the error: {late}"
    got = bench.received
    assert got == expected[:len(got)] and len(got) <= first_bad, \
        f"{len(got)} words delivered, the first faulty is word {first_bad}"
    # the error stays until clear, commands are taken and dropped meanwhile
    await bench.cycles(20)
    assert bench.bit("read_error") == code and len(bench.received) == len(got)
    bench.read_clear = 1
    await bench.cycles(1)
    bench.read_clear = 0
    await bench.cycles(1)
    assert bench.bit("read_error") == 0
    addr, words = 0x3000 - 2 * wb, 2 * p["max_burst"] + 5
    bench.received.clear()
    bench.read(addr, words)
    await bench.run_until(lambda: len(bench.received) == words and bench.bit("read_idle"),
                          limit=60 * words + 2000, what="read after clear")
    want = model.read_words(addr, words, p["data_bits"])
    assert bench.received == [(w, int(i == words - 1)) for i, w in enumerate(want)]
    assert bench.bit("read_error") == 0
    bench.check_protocol()


async def write_error_case(bench, ram, model, commands, code, later_code=None):
    """Write ``commands`` (the second one meets an error), with their data; check the
    error (the first, ``code``, though a burst in flight answered ``later_code`` after
    it), ``done`` only for the command before it, no AW after it, zero strobes only after
    it, the memory (bytes of the commands from the failing one on either old or new,
    never at a faulty address; none elsewhere changed but by the command done); clear; a
    write works again."""
    p, wb, bits = bench.p, bench.p["word_bytes"], bench.p["data_bits"]
    bench.forget()
    bench.copy = False
    data = {}
    for addr, words in commands:
        data[addr] = [bench.rng.getrandbits(bits) for _ in range(words)]
        bench.write(addr, words, data[addr])
    await bench.run_until(
        lambda: (bench.bit("write_error") and not bench.write_cmds.queue
                 and bench.write_cmds.offer is None and not bench.write_words.queue
                 and bench.bit("write_idle")),
        limit=60 * sum(w for _, w in commands) + 4000, what="write error")
    bench.check_protocol()
    assert bench.bit("write_error") == code
    assert bench.writes_open == 0, "write bursts left without B"
    assert len(bench.w_lens) == len(bench.aw), "write bursts left without their W beats"
    errors = [(c, resp) for c, resp in bench.b_resps if resp]
    error_cycle = errors[0][0]
    if later_code is not None:
        assert later_code in [resp for _, resp in errors[1:]], \
            f"no {later_code} after the first error: the first-error rule went untested"
    late = [(hex(a), n) for a, n, offered in bench.aw if offered > error_cycle]
    assert not late, f"AWs offered after the error: {late}"
    assert all(c > error_cycle and s == 0 for c, s in bench.odd_strobes), bench.odd_strobes[:4]
    assert bench.done == 1, f"{bench.done} done pulses; only the first command ends OKAY"
    first = commands[0]
    model.write_words(first[0], data[first[0]], bits)
    # bursts issued before the error came back are written, of the failing command and of
    # the ones after it; nothing at a faulty address
    new = {addr: b"".join(w.to_bytes(wb, "little") for w in data[addr])
           for addr, _ in commands[1:]}

    def maybe_written(at, byte):
        return not faults(at) and any(
            addr <= at < addr + words * wb and byte == new[addr][at - addr]
            for addr, words in commands[1:])
    assert_memory(ram, model, HALF, SIZE, maybe_written)
    await bench.cycles(20)
    assert bench.bit("write_error") == code
    bench.write_clear = 1
    await bench.cycles(1)
    bench.write_clear = 0
    await bench.cycles(1)
    assert bench.bit("write_error") == 0
    addr, words = HALF + 0x40000 - wb, p["max_burst"] + 3
    fresh = [bench.rng.getrandbits(bits) for _ in range(words)]
    for at, count in commands[1:]:                          # what the failure left
        model.write(at, ram.read(at, count * wb))
    bench.write(addr, words, fresh)
    done0 = bench.done
    await bench.run_until(lambda: bench.done == done0 + 1 and bench.bit("write_idle"),
                          limit=60 * words + 2000, what="write after clear")
    model.write_words(addr, fresh, bits)
    assert_memory(ram, model, HALF, SIZE)
    assert bench.bit("write_error") == 0
    bench.check_protocol()


@cocotb.test()
async def errors_halt_without_hanging_and_clear_resumes(dut):
    p = params()
    rng = random.Random(p["seed"] + 1)
    bench, ram = await start(dut, p, rng, lambda bus, clk, rst: FaultyRam(bus, clk, rst,
                                                                        SIZE, faults))
    model = random_memory(ram, rng)
    most = p["max_burst"]
    # a good command, then one answering SLVERR, then DECERR: the first error is kept;
    # the commands after them are taken and dropped
    good = (0x2000, 2 * most)
    after = [(0x40000, most), (0x50000, 3)]
    into_both = (READ_SLVERR.start, most + 3)
    await read_error_case(bench, model, [good, into_both] + after, SLVERR, DECERR)
    await read_error_case(bench, model, [good, (READ_DECERR.start + 0x100, 4)] + after,
                          DECERR)
    before = (HALF + 0x10000, 2 * most + 1)
    into_both = (WRITE_SLVERR.start, most + 3)
    later = [(HALF + 0x30000, most), (HALF + 0x31000, 1)]
    await write_error_case(bench, ram, model, [before, into_both] + later, SLVERR, DECERR)
    await write_error_case(bench, ram, model,
                           [(HALF + 0x12000, 5), (WRITE_DECERR.start, most)] + later, DECERR)


@cocotb.test()
async def reset_in_the_middle_of_a_transfer(dut):
    p = params()
    rng = random.Random(p["seed"] + 2)
    bench, ram = await start(dut, p, rng, lambda bus, clk, rst: AxiRam(bus, clk, rst,
                                                                     size=SIZE))
    model = random_memory(ram, rng)
    long = 4 * p["max_burst"] + 7
    first = [(0x1000 * k, HALF + 0x8000 * k, long) for k in range(4)]
    for src, dst, words in first:
        bench.read(src, words)
        bench.write(dst, words)
    await bench.run_until(lambda: len(bench.r_due) >= 1 and bench.writes_open >= 1,
                          limit=20000, what="reads and writes in flight")
    # reset with bursts in flight: the RAM (reset by the same signal) drops them too
    bench.rst = 1
    await bench.cycles(4)
    for source in (bench.read_cmds, bench.write_cmds, bench.write_words):
        source.queue.clear()
        source.offer = None
    await bench.cycles(2)
    bench.check_protocol()                     # nothing high in reset
    bench.rst = 0
    bench.forget()
    touched = [(dst, dst + words * p["word_bytes"]) for _, dst, words in first]
    assert bench.bit("read_idle") and bench.bit("write_idle")
    copies = copy_commands(p, rng, 6, HALF + 0x40000)
    await run_copies(bench, model, copies, "copy after reset")
    bench.check_bursts()
    assert_memory(ram, model, allowed=lambda addr, _: any(a <= addr < b for a, b in touched))
