"""hdl.regs.Registers, the AXI4-Lite register block, in Amaranth's simulator: its ports,
then random bus and hardware operations (AW before W, W before AW, together; any byte
enables) checked read by read against the golden register model. The same block on
Verilator with cocotbext-axi is test_regmap_cocotb.py."""
from __future__ import annotations

import gc
import warnings

import pytest
from amaranth.back import verilog
from amaranth.hdl import ClockDomain, Module, Shape, UnusedElaboratable
from amaranth.lib import wiring
from amaranth.sim import Simulator

from hdl.regs import AXIL_MEMBERS, Registers
from regkit import UNMAPPED, Op, expect, operations
from regmap import build_model
from regmap.reference import ReferenceRegisters

AXIL = ("awaddr awprot awvalid awready wdata wstrb wvalid wready bresp bvalid bready "
        "araddr arprot arvalid arready rdata rresp rvalid rready").split()


@pytest.fixture(scope="module")
def model():
    return build_model()


def test_ports(model):
    dut = Registers(model)
    members = dut.signature.members
    assert [name for name, _, _ in AXIL_MEMBERS] == AXIL
    for name, way, bits in AXIL_MEMBERS:
        flow = wiring.In if way == "in" else wiring.Out
        assert members[name].flow == flow and Shape.cast(members[name].shape).width == bits, name
    assert Shape.cast(members["awaddr"].shape).width == 12
    ports = {f.port: f for f in model.fields if f.port}
    assert set(members) == set(AXIL) | set(ports) | {"irq"}
    for port, f in ports.items():
        flow = wiring.In if f.port_direction == "in" else wiring.Out
        assert members[port].flow == flow and Shape.cast(members[port].shape).width == f.width, port
    assert members["ctrl_start"].flow == wiring.Out
    assert members["int_status_done"].flow == wiring.In
    assert Shape.cast(members["status_error_code"].shape).width == 8
    assert members["irq"].flow == wiring.Out
    text = verilog.convert(dut, name="hss_regs")
    for name in (*AXIL, "irq", "ctrl_start", "w_addr_addr", "cycles_count"):
        assert f" {name};" in text, name
    with warnings.catch_warnings():      # the half-built component a failed constructor leaves
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="Registers takes a regmap.RegisterMap"):
            Registers({"rows": 4})
        gc.collect()


def test_unmapped_addresses_are_unmapped(model):
    assert all(model.at(a) is None for a in UNMAPPED)


# ---- a small AXI4-Lite master for Amaranth's simulator ----------------------------------

async def _offer(ctx, valid, ready, values):
    """Offer one beat (``values``: (signal, value) pairs) and hold it until the handshake."""
    for sig, value in values:
        ctx.set(sig, value)
    ctx.set(valid, 1)
    while True:
        _, _, taken = await ctx.tick().sample(ready)
        if taken:
            break
    ctx.set(valid, 0)


async def _write(ctx, dut, op):
    aw = [(dut.awaddr, op.address), (dut.awprot, 0)]
    w = [(dut.wdata, op.data), (dut.wstrb, op.strobe)]
    if op.order == "together":
        for sig, value in aw + w:
            ctx.set(sig, value)
        ctx.set(dut.awvalid, 1)
        ctx.set(dut.wvalid, 1)
        aw_left = w_left = True
        while aw_left or w_left:
            _, _, awready, wready = await ctx.tick().sample(dut.awready, dut.wready)
            if aw_left and awready:
                aw_left = False
                ctx.set(dut.awvalid, 0)
            if w_left and wready:
                w_left = False
                ctx.set(dut.wvalid, 0)
    else:
        first, second = ((dut.awvalid, dut.awready, aw), (dut.wvalid, dut.wready, w))
        if op.order == "w_first":
            first, second = second, first
        await _offer(ctx, *first)
        for _ in range(3):       # the block holds the first half and waits for the second
            _, _, bvalid = await ctx.tick().sample(dut.bvalid)
            assert not bvalid, "a write response before both halves of the write"
        await _offer(ctx, *second)
    ctx.set(dut.bready, 1)
    while True:
        _, _, bvalid, bresp = await ctx.tick().sample(dut.bvalid, dut.bresp)
        if bvalid:
            break
    ctx.set(dut.bready, 0)
    assert bresp == 0


async def _read(ctx, dut, address):
    await _offer(ctx, dut.arvalid, dut.arready, [(dut.araddr, address), (dut.arprot, 0)])
    ctx.set(dut.rready, 1)
    while True:
        _, _, rvalid, rdata, rresp = await ctx.tick().sample(dut.rvalid, dut.rdata, dut.rresp)
        if rvalid:
            break
    ctx.set(dut.rready, 0)
    assert rresp == 0
    return rdata


HANDSHAKE_OUTPUTS = ("awready", "wready", "bvalid", "arready", "rvalid")


def _simulate(model, ops, *, reset_cycles=4):
    """Run ``ops`` on the block and on the golden model: every read, every control output,
    irq and the pulses counted must agree."""
    dut = Registers(model)
    ref = ReferenceRegisters(model)
    pulses = {f.port: 0 for f in model.fields if f.kind == "pulse"}
    controls = [f.port for f in model.fields if f.kind == "control" and f.port]
    checked = {"reads": 0}

    async def count_pulses(ctx):
        ports = [getattr(dut, p) for p in pulses]
        async for _, _, *values in ctx.tick().sample(*ports):
            for port, value in zip(pulses, values):
                pulses[port] += value

    async def bench(ctx):
        ctx.set(domain.rst, 1)              # as the top will from aresetn
        for _ in range(reset_cycles):       # in reset: no handshake output is high
            _, _, *outs = await ctx.tick().sample(*(getattr(dut, n) for n in HANDSHAKE_OUTPUTS))
            assert not any(outs), dict(zip(HANDSHAKE_OUTPUTS, outs))
        ctx.set(domain.rst, 0)
        for i, op in enumerate(ops):
            want = expect(ref, op)
            if op.kind == "write":
                await _write(ctx, dut, op)
            elif op.kind == "read":
                got = await _read(ctx, dut, op.address)
                assert got == want, f"op {i} {op}: read 0x{got:08x}, expected 0x{want:08x}"
                checked["reads"] += 1
            elif op.kind == "drive":
                ctx.set(getattr(dut, op.port), op.data)
            else:
                ctx.set(getattr(dut, op.port), 1)
                await ctx.tick()
                ctx.set(getattr(dut, op.port), 0)
            await ctx.tick()
            await ctx.tick()
            assert ctx.get(dut.irq) == ref.irq, f"op {i} {op}: irq"
            for port in controls:
                assert ctx.get(getattr(dut, port)) == ref.output(port), f"op {i} {op}: {port}"
            assert pulses == ref.pulses, f"op {i} {op}: pulses"

    top = Module()
    top.domains.sync = domain = ClockDomain("sync")
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8, domain="sync")
    sim.add_testbench(count_pulses, background=True)
    sim.add_testbench(bench)
    sim.run()
    return checked["reads"]


@pytest.mark.parametrize("seed", [1, 2])
def test_random_operations_against_the_golden_model(model, seed):
    ops = operations(model, seed, 160)
    assert {op.order for op in ops if op.kind == "write"} == {"together", "aw_first",
                                                               "w_first"}
    sweep = [Op("read", reg.offset) for reg in model.registers]   # where each ended up
    assert _simulate(model, ops + sweep) > 30 + len(sweep)


def test_another_build():
    """The block follows the model: another build's CONFIG values read back as built."""
    m = build_model(rows=16, cols=8, requant=0, wbuf_depth=12345)
    ops = [Op("read", m.register(n).offset) for n in ("CONFIG0", "CONFIG1", "WBUF_DEPTH")]
    assert _simulate(m, ops + operations(m, 3, 30)) >= 3
