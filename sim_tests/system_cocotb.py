"""cocotb tests of hss_system's Verilog: cocotbext-axi's AxiRam as the DRAM (random pauses
on every channel: latency and back-pressure) and AxiLiteMaster as the host, the host
driver (``host.driver``) running each layer as it would on a device, Z checked against
NumPy and every counter against the bus-level golden model (``host.model``).
test_system.py builds and runs them; the case comes in SYSTEM_CASE (JSON): the engine's
manifest path, the system's sizes, the layers."""
from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from axi_faults import FaultyRam, pauses

from hss import requant
from hss import system as hss_system
from gen.testbench.system import layer_operands   # one definition, for both benches
from host.driver import Driver, DriverError, run_now
from host.model import SystemModel

CASE = json.loads(os.environ.get("SYSTEM_CASE", "{}"))
RAM_BYTES = 1 << 22
#: counters the golden model predicts exactly (cycles and stalls are the RTL's own)
EXACT = ("steps", "dram_read_bytes", "dram_write_bytes", "wbuf_reads", "wbuf_writes",
         "abuf_reads", "abuf_writes", "obuf_reads", "obuf_writes", "qbuf_reads",
         "qbuf_writes")


class CocotbBus:
    """``host.driver.Bus`` over cocotbext-axi: registers through the AXI4-Lite master, the
    DRAM the system's master reads and writes as the AxiRam's memory."""

    def __init__(self, master: AxiLiteMaster, ram: AxiRam):
        self.master, self.ram = master, ram

    async def read32(self, offset):
        return await self.master.read_dword(offset)

    async def write32(self, offset, value):
        await self.master.write_dword(offset, value)

    async def write_memory(self, address, data):
        self.ram.write(address, data)

    async def read_memory(self, address, length):
        return self.ram.read(address, length)


async def bring_up(dut, seed: int, share: float, faults=None):
    """Clock, reset, the RAM with random pauses on every channel (``faults(addr)``: an AXI
    response per beat address, for a RAM that answers errors), the host's master."""
    rng = random.Random(seed)
    cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 3)
    bus = AxiBus.from_prefix(dut, "m_axi")
    ram = AxiRam(bus, dut.aclk, dut.aresetn, reset_active_level=False, size=RAM_BYTES) \
        if faults is None else FaultyRam(bus, dut.aclk, dut.aresetn, RAM_BYTES, faults,
                                         reset_active_level=False)
    if share:
        for channel in (ram.write_if.aw_channel, ram.write_if.w_channel,
                        ram.write_if.b_channel, ram.read_if.ar_channel,
                        ram.read_if.r_channel):
            channel.set_pause_generator(pauses(random.Random(rng.random()), share, 6))
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.aclk, dut.aresetn,
                           reset_active_level=False)
    await ClockCycles(dut.aclk, 3)
    await FallingEdge(dut.aclk)
    dut.aresetn.value = 1
    await ClockCycles(dut.aclk, 2)
    return ram, master


def _shape(fmt, probe_build):
    banks, read = hss_system.fetch_banks(fmt)
    return hss_system.SystemShape(
        fmt.rows, fmt.cols, fmt.weight_beat_bits, fmt.act_beat_bits, fmt.acc_width,
        fmt.signed, len(fmt.modes), probe_build.wbuf_depth, probe_build.abuf_depth,
        probe_build.word_bytes * 8, 2, probe_build.qbuf_depth, act_banks=banks,
        banks_read=read)


@cocotb.test()
async def layers_match_the_golden_model(dut):
    """Every layer of the case through the driver: Z bit-exact, counters as the model's."""
    fmt = hss_system.system_format(CASE["manifest"])
    ram, master = await bring_up(dut, CASE.get("seed", 1), CASE.get("pauses", 0.2))
    driver = Driver(CocotbBus(master, ram), fmt, dram_base=0, dram_bytes=RAM_BYTES)
    build = await driver.probe()
    model = Driver(SystemModel(_shape(fmt, build), fmt), fmt, dram_base=0,
                   dram_bytes=RAM_BYTES)
    report = []
    for spec in CASE["layers"]:
        segments, A = layer_operands(fmt, spec)
        golden = sum(w @ A for w, _ in segments)
        kwargs = {}
        if spec.get("requant"):
            scales, shifts = requant.choose_scales(golden, relu=spec.get("relu", False))
            kwargs = dict(scales=scales, shifts=shifts, relu=spec.get("relu", False))
            golden = requant.requantize(golden, scales, shifts, spec.get("relu", False))
        driver.reset_memory()
        got = await driver.run_layer(segments, A, **kwargs)
        model.reset_memory()
        want = run_now(model.run_layer(segments, A, **kwargs))
        assert np.array_equal(got.Z, golden), f"layer {spec}: Z differs from the golden model"
        assert not got.overflow.any()
        for name in EXACT:
            assert got.counters[name] == want.counters[name], \
                f"layer {spec}: {name} {got.counters[name]} != {want.counters[name]}"
        assert got.counters["cycles"] >= got.counters["steps"]
        report.append({"layer": spec, "parts": len(got.split.parts),
                       "counters": got.counters,
                       "bound": want.split.counts.cycles_lower_bound})
    with open(CASE["report"], "w") as f:
        json.dump(report, f, indent=1)


@cocotb.test()
async def faults_end_a_layer_and_the_next_runs(dut):
    """A descriptor beyond wbuf is refused (no DRAM traffic), the driver's CLEAR lets the
    next layer run; a reset in the middle of a layer leaves the system ready."""
    fmt = hss_system.system_format(CASE["manifest"])
    ram, master = await bring_up(dut, CASE.get("seed", 1) + 1, CASE.get("pauses", 0.2))
    bus = CocotbBus(master, ram)
    driver = Driver(bus, fmt, dram_base=0, dram_bytes=RAM_BYTES)
    build = await driver.probe()
    d = hss_system.Descriptor(1, 1, 1, w_base=build.wbuf_depth, modes=1)
    await driver.program(d)
    try:
        await driver._start_and_wait(0, 1)
    except DriverError as e:
        assert e.code.name == "WBUF_OVERFLOW", e
    else:
        raise AssertionError("a descriptor beyond wbuf ran")
    counters = await driver.counters()
    assert counters["dram_read_bytes"] == 0
    spec = CASE["layers"][0]
    segments, A = layer_operands(fmt, spec)
    golden = sum(w @ A for w, _ in segments)
    got = await driver.run_layer(segments, A)
    assert np.array_equal(got.Z, golden)
    # reset in the middle of a layer: the next layer after it is exact
    driver.reset_memory()
    task = cocotb.start_soon(driver.run_layer(segments, A))
    await ClockCycles(dut.aclk, 40)
    task.cancel()
    await FallingEdge(dut.aclk)
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 4)
    await FallingEdge(dut.aclk)
    dut.aresetn.value = 1
    await ClockCycles(dut.aclk, 4)
    driver.reset_memory()
    again = await driver.run_layer(segments, A)
    assert np.array_equal(again.Z, golden)


@cocotb.test()
async def axi_errors_end_the_layer(dut):
    """A read answered SLVERR and a write answered DECERR each end their layer with the
    code (the driver raises, CLEARs), nothing hangs, and the next layer is exact."""
    fmt = hss_system.system_format(CASE["manifest"])
    window = {"range": range(0), "resp": 0}
    ram, master = await bring_up(
        dut, CASE.get("seed", 1) + 2, CASE.get("pauses", 0.2),
        faults=lambda addr: window["resp"] if addr in window["range"] else 0)
    driver = Driver(CocotbBus(master, ram), fmt, dram_base=0, dram_bytes=RAM_BYTES)
    build = await driver.probe()
    model = Driver(SystemModel(_shape(fmt, build), fmt), fmt, dram_base=0,
                   dram_bytes=RAM_BYTES)
    segments, A = layer_operands(fmt, CASE["layers"][0])
    where = run_now(model.run_layer(segments, A)).descriptors[0]   # the same allocator
    for region, resp, code in ((range(where.w_addr, where.w_addr + 64), 2, "READ_SLVERR"),
                               (range(where.z_addr, where.z_addr + 16), 3, "WRITE_DECERR")):
        window.update(range=region, resp=resp)
        driver.reset_memory()
        try:
            await driver.run_layer(segments, A)
        except DriverError as e:
            assert e.code.name == code, e
        else:
            raise AssertionError(f"a layer answered {code} ran to DONE")
    window.update(range=range(0), resp=0)
    driver.reset_memory()
    got = await driver.run_layer(segments, A)
    assert np.array_equal(got.Z, sum(w @ A for w, _ in segments))
