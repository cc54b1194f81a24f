"""cocotb tests of the register block's Verilog (hdl.regs.Registers) on Verilator, with
cocotbext-axi's AxiLiteMaster as the bus and the golden register model (regmap.reference)
saying what every read returns. test_regmap_cocotb.py builds and runs them; the build's
parameters come in REGMAP_PARAMS (JSON).

The top is the block itself: its hardware ports are driven and watched from here (the
pulse counter samples START and CLEAR every cycle, so a pulse of two cycles counts two).
The orders AW-before-W and W-before-AW, which cocotbext-axi does not choose, and a write
strobe with holes are driven on the raw signals."""
from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from regkit import UNMAPPED, Op, expect, operations
from regmap import build_model
from regmap.reference import ReferenceRegisters

MODEL = build_model(**json.loads(os.environ.get("REGMAP_PARAMS", "{}")))
PULSES = [f.port for f in MODEL.fields if f.kind == "pulse"]
CONTROLS = [f.port for f in MODEL.fields if f.kind == "control" and f.port]
INPUTS = [f.port for f in MODEL.fields if f.port_direction == "in"]
HANDSHAKE_OUTPUTS = ("awready", "wready", "bvalid", "arready", "rvalid")
RAW_INPUTS = ("awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid", "bready", "araddr",
              "arprot", "arvalid", "rready")


class Bench:
    """The clock, a reset, the hardware inputs at 0, a pulse counter, and the golden model."""

    def __init__(self, dut):
        self.dut = dut
        self.ref = ReferenceRegisters(MODEL)
        self.pulses = {p: 0 for p in PULSES}
        self.reset_violations = []

    async def start(self, *, with_master=True):
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.rst.value = 1
        for name in (*RAW_INPUTS, *INPUTS):
            getattr(dut, name).value = 0
        cocotb.start_soon(self._watch())
        await ClockCycles(dut.clk, 3)
        # the VIP starts a few cycles into reset: it must not sample X at time 0
        self.master = AxiLiteMaster(AxiLiteBus.from_entity(dut), dut.clk, dut.rst) \
            if with_master else None
        await ClockCycles(dut.clk, 3)
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        await ClockCycles(dut.clk, 2)

    async def _watch(self):
        """Every cycle: count pulses; in reset, no handshake output may be high."""
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            for port in PULSES:
                self.pulses[port] += int(getattr(dut, port).value)
            if int(dut.rst.value):
                high = [n for n in HANDSHAKE_OUTPUTS if int(getattr(dut, n).value)]
                if high:
                    self.reset_violations.append(high)

    async def apply(self, op: Op):
        """``op`` on the DUT (through the master) and on the golden model; check reads."""
        want = expect(self.ref, op)
        dut = self.dut
        if op.kind == "write":
            first = op.strobe & -op.strobe
            length = op.strobe.bit_length() - (first.bit_length() - 1)
            lane = first.bit_length() - 1
            data = (op.data >> (8 * lane)) & ((1 << 8 * length) - 1)
            resp = await self.master.write(op.address, data.to_bytes(length, "little"))
            assert resp.resp == AxiResp.OKAY, op
        elif op.kind == "read":
            resp = await self.master.read(op.address, 4)
            got = int.from_bytes(resp.data, "little")
            assert resp.resp == AxiResp.OKAY, op
            assert got == want, f"{op}: read 0x{got:08x}, expected 0x{want:08x}"
        elif op.kind == "drive":
            await FallingEdge(dut.clk)
            getattr(dut, op.port).value = op.data
        else:
            await self.set_interrupt(op.port)

    async def set_interrupt(self, port):
        await FallingEdge(self.dut.clk)
        getattr(self.dut, port).value = 1
        await FallingEdge(self.dut.clk)
        getattr(self.dut, port).value = 0

    async def check_outputs(self, what=""):
        """irq, every control output and the pulses counted, against the golden model."""
        dut = self.dut
        await ClockCycles(dut.clk, 2)
        await ReadOnly()
        assert int(dut.irq.value) == self.ref.irq, f"{what}: irq"
        for port in CONTROLS:
            got = int(getattr(dut, port).value)
            assert got == self.ref.output(port), f"{what}: {port} = 0x{got:x}"
        assert self.pulses == self.ref.pulses, f"{what}: pulses {self.pulses}"
        assert not self.reset_violations, self.reset_violations
        await FallingEdge(dut.clk)

    async def read(self, address):
        resp = await self.master.read(address, 4)
        return int.from_bytes(resp.data, "little")

    async def write(self, address, value):
        self.ref.write(address, value)
        await self.master.write(address, value.to_bytes(4, "little"))


def offset(name):
    return MODEL.register(name).offset


@cocotb.test()
async def identity_and_build_constants(dut):
    bench = Bench(dut)
    await bench.start()
    assert await bench.read(offset("ID")) == 0x48535331
    assert await bench.read(offset("VERSION")) == 0x0001_0001
    for reg in MODEL.registers:
        assert await bench.read(reg.offset) == reg.reset, reg.name
    assert await bench.read(offset("CONFIG0")) & 0xFF == MODEL.parameters["rows"]
    await bench.check_outputs("after reset")


@cocotb.test()
async def random_operations_against_the_golden_model(dut):
    bench = Bench(dut)
    await bench.start()
    for i, op in enumerate(operations(MODEL, 11, 150, contiguous=True, orders=("together",))):
        await bench.apply(op)
        await bench.check_outputs(f"op {i} {op}")
    for reg in MODEL.registers:                # and where every register ended up
        await bench.apply(Op("read", reg.offset))


@cocotb.test()
async def descriptor_readback_with_partial_strobes(dut):
    bench = Bench(dut)
    await bench.start()
    w_addr = offset("W_ADDR")
    await bench.write(w_addr, 0x1122_3344)
    await bench.master.write(w_addr + 1, b"\xAA\xBB")        # bytes 1 and 2 only
    bench.ref.write(w_addr, 0x00BB_AA00, strobe=0b0110)
    assert await bench.read(w_addr) == 0x11BB_AA44
    await bench.master.write(w_addr + 3, b"\x99")
    bench.ref.write(w_addr, 0x9900_0000, strobe=0b1000)
    assert await bench.read(w_addr) == 0x99BB_AA44
    await bench.write(offset("M_TILES"), 0xDEAD_BEEF)        # a 16-bit field keeps 16 bits
    assert await bench.read(offset("M_TILES")) == 0xBEEF
    await bench.write(offset("FLAGS"), 0xFFFF_FFFF)
    assert await bench.read(offset("FLAGS")) == 0xF
    await bench.check_outputs("descriptor")
    assert int(dut.w_addr_addr.value) == 0x99BB_AA44 and int(dut.flags_relu.value) == 1


@cocotb.test()
async def start_and_clear_are_one_cycle_pulses(dut):
    bench = Bench(dut)
    await bench.start()
    ctrl = offset("CTRL")
    for value in (0b01, 0b10, 0b11, 0b00, 0b01):
        await bench.write(ctrl, value)
    await bench.check_outputs("ctrl")
    assert bench.pulses == {"ctrl_start": 3, "ctrl_clear": 2}
    assert await bench.read(ctrl) == 0


@cocotb.test()
async def status_and_counters_from_the_hardware(dut):
    bench = Bench(dut)
    await bench.start()
    for port, value in (("status_busy", 1), ("status_error", 1), ("status_error_code", 0x0B),
                        ("cycles_count", 0xCAFE_F00D), ("obuf_writes_count", 7)):
        await bench.apply(Op("drive", port=port, data=value))
    assert await bench.read(offset("STATUS")) == 0x0B05
    assert await bench.read(offset("CYCLES")) == 0xCAFE_F00D
    assert await bench.read(offset("OBUF_WRITES")) == 7
    await bench.write(offset("CYCLES"), 0)                   # read only: ignored
    assert await bench.read(offset("CYCLES")) == 0xCAFE_F00D


@cocotb.test()
async def interrupts_set_by_hardware_cleared_by_writing_one(dut):
    bench = Bench(dut)
    await bench.start()
    status, enable = offset("INT_STATUS"), offset("INT_ENABLE")
    await bench.set_interrupt("int_status_done")
    bench.ref.hw_set("int_status_done")
    await bench.check_outputs("done set, not enabled")
    assert await bench.read(status) == 0b01 and int(dut.irq.value) == 0
    await bench.write(enable, 0b01)
    await bench.check_outputs("done enabled")
    assert int(dut.irq.value) == 1
    await bench.set_interrupt("int_status_error")
    bench.ref.hw_set("int_status_error")
    await bench.write(status, 0b01)                          # clears DONE: ERROR stays
    await bench.check_outputs("done cleared")
    assert await bench.read(status) == 0b10 and int(dut.irq.value) == 0
    await bench.write(enable, 0b10)
    await bench.check_outputs("error enabled")
    assert int(dut.irq.value) == 1
    await bench.write(status, 0b11)
    await bench.check_outputs("all cleared")
    assert await bench.read(status) == 0 and int(dut.irq.value) == 0


@cocotb.test()
async def unmapped_addresses_read_zero_and_ignore_writes(dut):
    bench = Bench(dut)
    await bench.start()
    for address in UNMAPPED:
        await bench.write(address, 0xFFFF_FFFF)
        assert await bench.read(address) == 0, hex(address)
    for reg in MODEL.registers:                # nothing mapped changed
        assert await bench.read(reg.offset) == bench.ref.read(reg.offset), reg.name


@cocotb.test()
async def back_to_back_transactions(dut):
    """Writes and reads queued at once: each channel goes as fast as the block takes it."""
    bench = Bench(dut)
    await bench.start()
    names = ("W_ADDR", "A_ADDR", "Z_ADDR", "Q_ADDR", "W_BASE", "A_BASE", "MODES")
    start = get_sim_time("ns")
    writes = [bench.master.init_write(offset(n), (0x1000_0000 * (i + 1) + i).to_bytes(4, "little"))
              for i, n in enumerate(names)]
    for event in writes:
        await event.wait()
    reads = [bench.master.init_read(offset(n), 4) for n in names]
    for event in reads:
        await event.wait()
    elapsed = (get_sim_time("ns") - start) / 10
    for i, (name, event) in enumerate(zip(names, reads)):
        assert int.from_bytes(event.data.data, "little") == 0x1000_0000 * (i + 1) + i, name
    # a write takes 3 cycles of the block, a read 2; far from one per beat, but bounded
    assert elapsed < len(names) * 10, elapsed


# ---- the raw channels: orders cocotbext-axi does not choose ------------------------------

async def _cycle(dut):
    """From one falling edge to the next (signals may be set again after it)."""
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)


async def _until(dut, signal):
    """Wait, from a falling edge, for the rising edge at which ``signal`` is high (the
    handshake edge when our side's valid or ready is high); return on the falling edge
    after it, with the values the signals had at that rising edge."""
    while True:
        await ReadOnly()
        if int(getattr(dut, signal).value):
            values = {n: int(getattr(dut, n).value) for n in ("rdata", "rresp", "bresp")}
            await _cycle(dut)
            return values
        await _cycle(dut)


async def _raw_beat(dut, valid, ready, values):
    await FallingEdge(dut.clk)
    for name, value in values.items():
        getattr(dut, name).value = value
    getattr(dut, valid).value = 1
    await _until(dut, ready)
    getattr(dut, valid).value = 0


async def _raw_write(dut, address, data, strobe, order):
    aw = ("awvalid", "awready", {"awaddr": address, "awprot": 0})
    w = ("wvalid", "wready", {"wdata": data, "wstrb": strobe})
    first, second = (aw, w) if order == "aw_first" else (w, aw)
    await _raw_beat(dut, *first)
    for _ in range(4):               # held: no response, and the same channel not taken again
        await ReadOnly()
        assert not int(dut.bvalid.value)
        assert not int(getattr(dut, first[1]).value), f"{first[1]} while holding a beat"
        await _cycle(dut)
    await _raw_beat(dut, *second)
    dut.bready.value = 1
    seen = await _until(dut, "bvalid")
    dut.bready.value = 0
    assert seen["bresp"] == 0


async def _raw_read(dut, address):
    await _raw_beat(dut, "arvalid", "arready", {"araddr": address, "arprot": 0})
    dut.rready.value = 1
    seen = await _until(dut, "rvalid")
    dut.rready.value = 0
    assert seen["rresp"] == 0
    return seen["rdata"]


@cocotb.test()
async def aw_before_w_and_w_before_aw(dut):
    bench = Bench(dut)
    await bench.start(with_master=False)
    ref = bench.ref
    cases = [("W_ADDR", 0x0123_4567, 0xF, "aw_first"), ("A_ADDR", 0x89AB_CDEF, 0xF, "w_first"),
             ("W_ADDR", 0xFFFF_FFFF, 0b1001, "w_first"), ("A_ADDR", 0x0000_0000, 0b0110,
                                                         "aw_first"),
             ("CTRL", 0b01, 0x1, "w_first"), ("CTRL", 0b10, 0x1, "aw_first")]
    for name, data, strobe, order in cases:
        await _raw_write(dut, offset(name), data, strobe, order)
        ref.write(offset(name), data, strobe)
    assert await _raw_read(dut, offset("W_ADDR")) == 0xFF23_45FF
    assert await _raw_read(dut, offset("A_ADDR")) == 0x8900_00EF
    await bench.check_outputs("raw orders")
    assert bench.pulses == {"ctrl_start": 1, "ctrl_clear": 1}


@cocotb.test()
async def reset_in_the_middle_of_traffic(dut):
    bench = Bench(dut)
    await bench.start()
    await bench.write(offset("W_ADDR"), 0x5555_5555)
    await bench.write(offset("INT_ENABLE"), 0b11)
    await bench.set_interrupt("int_status_error")
    for i in range(6):
        bench.master.init_write(offset("A_ADDR"), (i + 1).to_bytes(4, "little"))
        bench.master.init_read(offset("W_ADDR"), 4)
    await ClockCycles(dut.clk, 3)
    assert int(dut.irq.value) == 1
    await FallingEdge(dut.clk)
    dut.rst.value = 1                                  # the watcher checks every cycle of it
    await ClockCycles(dut.clk, 5)
    await ReadOnly()
    assert int(dut.irq.value) == 0 and int(dut.w_addr_addr.value) == 0
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    bench.ref.reset()
    bench.pulses = {p: 0 for p in PULSES}
    await ClockCycles(dut.clk, 2)
    for reg in MODEL.registers:
        assert await bench.read(reg.offset) == bench.ref.read(reg.offset), reg.name
    for op in operations(MODEL, 5, 30, contiguous=True, orders=("together",)):
        await bench.apply(op)
    await bench.check_outputs("after reset")
