"""Async Amaranth testbench helpers: stream producers/consumers with random stalls."""
from __future__ import annotations

import random

from amaranth.hdl import Value
from amaranth.sim import Simulator

__all__ = ["Cycles", "send", "receive", "run"]


class Cycles:
    """A cycle counter advanced by a background testbench; ``now`` is the current cycle."""

    def __init__(self):
        self.now = 0

    async def count(self, ctx):
        async for _ in ctx.tick():
            self.now += 1


async def send(ctx, port, beats, *, idle=0.0, seed=0, log=None, cycles=None):
    """Drive ``beats`` (packed ints) on a stream, idling with probability ``idle``."""
    rng = random.Random(seed)
    payload = Value.cast(port.payload)
    for beat in beats:
        while idle and rng.random() < idle:
            ctx.set(port.valid, 0)
            await ctx.tick()
        ctx.set(payload, beat)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        if log is not None:
            log.append(cycles.now if cycles else None)
    ctx.set(port.valid, 0)


async def receive(ctx, port, count, *, stall=0.0, seed=0, log=None, cycles=None):
    """Take ``count`` beats from a stream, refusing with probability ``stall``."""
    rng = random.Random(seed)
    payload = Value.cast(port.payload)
    out = []
    while len(out) < count:
        ready = not (stall and rng.random() < stall)
        ctx.set(port.ready, ready)
        _clk, _rst, valid, value = await ctx.tick().sample(port.valid, payload)
        if ready and valid:
            out.append(value)
            if log is not None:
                log.append(cycles.now if cycles else None)
    ctx.set(port.ready, 0)
    return out


def run(dut, testbenches, *, background=(), deadline_cycles=None, vcd=None):
    """Simulate ``dut`` with a 1 ns clock until all testbenches end."""
    sim = Simulator(dut)
    sim.add_clock(1e-9)
    for tb in background:
        sim.add_testbench(tb.count if isinstance(tb, Cycles) else tb, background=True)
    for tb in testbenches:
        sim.add_testbench(tb)
    if deadline_cycles:
        sim.run_until(deadline_cycles * 1e-9)
    else:
        sim.run()
