"""AXI for Amaranth's simulator: an AXI4 RAM on hss_system's master, an AXI4-Lite master
for its registers, and a ``host.driver.Bus`` over both, so the host driver runs against the
Amaranth model of the whole system (the quick loop; the Verilog goes to cocotbext-axi)."""
from __future__ import annotations

import random

from hss.dram import DRAM

__all__ = ["AxiRamModel", "LiteMaster", "SimBus"]


class AxiRamModel:
    """An AXI4 slave memory on ``dut``'s ``m_axi_*`` ports: INCR bursts, random pauses on
    every channel with probability ``pause``; ``error_at(addr)`` gives a response (0 OKAY,
    2 SLVERR, 3 DECERR) per beat address."""

    def __init__(self, dut, word_bytes: int, *, pause=0.2, seed=0, error_at=None):
        self.dut, self.wb, self.pause = dut, word_bytes, pause
        self.rng = random.Random(seed)
        self.dram = DRAM()
        self.error_at = error_at or (lambda addr: 0)

    def _port(self, name):
        return getattr(self.dut, f"m_axi_{name}")

    def _go(self) -> bool:
        return self.rng.random() >= self.pause

    async def reads(self, ctx):
        """The read channels: take an AR, then return its beats in order (one burst at a
        time, others queued)."""
        p = self._port
        queue = []
        beat = None                     # (addr, left, resp)
        while True:
            ar_ready = self._go()
            ctx.set(p("arready"), ar_ready)
            if beat is None and queue:
                addr, beats = queue.pop(0)
                beat = [addr, beats]
            r_valid = beat is not None and self._go()
            if r_valid:
                addr = beat[0]
                resp = self.error_at(addr)
                data = 0 if resp else int.from_bytes(self.dram.read(addr, self.wb), "little")
                ctx.set(p("rdata"), data)
                ctx.set(p("rresp"), resp)
                ctx.set(p("rlast"), beat[1] == 1)
            ctx.set(p("rvalid"), r_valid)
            _, _, arvalid, araddr, arlen, rready = await ctx.tick().sample(
                p("arvalid"), p("araddr"), p("arlen"), p("rready"))
            if ar_ready and arvalid:
                queue.append((araddr, arlen + 1))
            if r_valid and rready:
                beat[0] += self.wb
                beat[1] -= 1
                if beat[1] == 0:
                    beat = None

    async def writes(self, ctx):
        """The write channels: AW into a queue, W beats (which may come before their AW,
        as AXI allows) written at their burst's addresses, one B per burst (the first
        error of its beats)."""
        p = self._port
        bursts, beats, responses = [], [], []
        while True:
            aw_ready, w_ready = self._go(), self._go()
            b_valid = bool(responses) and self._go()
            ctx.set(p("awready"), aw_ready)
            ctx.set(p("wready"), w_ready)
            ctx.set(p("bvalid"), b_valid)
            ctx.set(p("bresp"), responses[0] if responses else 0)
            _, _, awvalid, awaddr, awlen, wvalid, wdata, wstrb, wlast, bready = \
                await ctx.tick().sample(p("awvalid"), p("awaddr"), p("awlen"), p("wvalid"),
                                        p("wdata"), p("wstrb"), p("wlast"), p("bready"))
            if aw_ready and awvalid:
                bursts.append([awaddr, awlen + 1, 0])
            if b_valid and bready:
                responses.pop(0)
            if w_ready and wvalid:
                beats.append((wdata, wstrb, wlast))
            while bursts and beats:
                burst = bursts[0]
                data, strb, last = beats.pop(0)
                resp = self.error_at(burst[0])
                burst[2] = burst[2] or resp
                if not resp and strb:
                    old = self.dram.read(burst[0], self.wb)
                    new = data.to_bytes(self.wb, "little")
                    self.dram.write(burst[0], bytes(n if strb >> i & 1 else o
                                                    for i, (o, n) in enumerate(zip(old, new))))
                burst[0] += self.wb
                burst[1] -= 1
                assert bool(last) == (burst[1] == 0), "wlast off the burst's last beat"
                if burst[1] == 0:
                    responses.append(bursts.pop(0)[2])


class LiteMaster:
    """An AXI4-Lite master on ``dut``'s ``s_axil_*`` ports, driven from a testbench."""

    def __init__(self, dut):
        self.dut = dut

    def _port(self, name):
        return getattr(self.dut, f"s_axil_{name}")

    async def write(self, ctx, addr: int, value: int):
        p = self._port
        ctx.set(p("awaddr"), addr)
        ctx.set(p("awvalid"), 1)
        ctx.set(p("wdata"), value)
        ctx.set(p("wstrb"), 0xF)
        ctx.set(p("wvalid"), 1)
        ctx.set(p("bready"), 1)
        aw = w = False
        while not (aw and w):
            _, _, awready, wready = await ctx.tick().sample(p("awready"), p("wready"))
            if awready and not aw:
                aw = True
                ctx.set(p("awvalid"), 0)
            if wready and not w:
                w = True
                ctx.set(p("wvalid"), 0)
        await ctx.tick().until(p("bvalid"))
        ctx.set(p("bready"), 0)

    async def read(self, ctx, addr: int) -> int:
        p = self._port
        ctx.set(p("araddr"), addr)
        ctx.set(p("arvalid"), 1)
        ctx.set(p("rready"), 1)
        await ctx.tick().until(p("arready"))
        ctx.set(p("arvalid"), 0)
        data, = await ctx.tick().sample(p("rdata")).until(p("rvalid"))
        ctx.set(p("rready"), 0)
        return data


class SimBus:
    """``host.driver.Bus`` inside an Amaranth testbench: registers through ``LiteMaster``,
    memory straight into the RAM model (the host's view of the shared DRAM)."""

    def __init__(self, ctx, master: LiteMaster, ram: AxiRamModel):
        self.ctx, self.master, self.ram = ctx, master, ram

    async def read32(self, offset):
        return await self.master.read(self.ctx, offset)

    async def write32(self, offset, value):
        await self.master.write(self.ctx, offset, value)

    async def write_memory(self, address, data):
        self.ram.dram.write(address, data)

    async def read_memory(self, address, length):
        return self.ram.dram.read(address, length)
