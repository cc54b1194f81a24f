"""cocotbext-axi's AXI RAM for the cocotb benches (DMA engines, the whole system): one that
answers SLVERR and DECERR where a test says, and random pauses for its channels."""
from __future__ import annotations

from cocotbext.axi import AxiRamRead, AxiRamWrite
from cocotbext.axi.memory import Memory

__all__ = ["FaultyRam", "FaultyRamRead", "FaultyRamWrite", "pauses"]


# ---- an AXI RAM that answers errors ----------------------------------------------------
# cocotbext-axi's AxiRam answers SLVERR only when its _read/_write raises, never DECERR.
# These subclasses answer from the address (``faults(addr)``: 0, SLVERR or DECERR), by
# wrapping a channel's coroutine: AxiSlaveRead calls _read for a beat and then sends that
# beat's R; AxiSlaveWrite takes an AW, then its W beats, then sends its B. A faulty R beat
# carries zeros, a faulty write writes nothing, and a burst's B is the first fault among
# its beats' addresses (whatever its strobes, as an interconnect decodes the address).

class FaultyRamRead(AxiRamRead):
    def __init__(self, bus, clock, reset, faults, mem, reset_active_level=True):
        self.faults, self.beat_resp = faults, 0
        super().__init__(bus, clock, reset, reset_active_level=reset_active_level, mem=mem)
        send = self.r_channel.send

        async def send_with_resp(r):
            r.rresp = self.beat_resp
            await send(r)
        self.r_channel.send = send_with_resp

    async def _read(self, address, length):
        self.beat_resp = self.faults(address)
        return bytes(length) if self.beat_resp else await super()._read(address, length)


class FaultyRamWrite(AxiRamWrite):
    def __init__(self, bus, clock, reset, faults, mem, reset_active_level=True):
        self.faults, self.burst_resp = faults, 0
        super().__init__(bus, clock, reset, reset_active_level=reset_active_level, mem=mem)
        recv, send = self.aw_channel.recv, self.b_channel.send

        async def recv_noting_resp():
            aw = await recv()
            addr, beats = int(aw.awaddr), int(aw.awlen) + 1
            self.burst_resp = next(
                (r for r in map(faults, range(addr, addr + beats * self.byte_lanes,
                                              self.byte_lanes)) if r), 0)
            return aw

        async def send_with_resp(b):
            b.bresp = self.burst_resp
            await send(b)
        self.aw_channel.recv, self.b_channel.send = recv_noting_resp, send_with_resp

    async def _write(self, address, data):
        if not self.faults(address):
            await super()._write(address, data)


class FaultyRam(Memory):
    """AxiRam whose beats at ``faults(addr)`` != 0 answer that response.
    ``reset_active_level`` as AxiRam's: False for an active-low reset such as ``aresetn``
    (left at True there, the RAM sits in reset while the design runs and never answers)."""

    def __init__(self, bus, clock, reset, size, faults, reset_active_level=True):
        super().__init__(size)
        self.write_if = FaultyRamWrite(bus.write, clock, reset, faults, self.mem,
                                       reset_active_level)
        self.read_if = FaultyRamRead(bus.read, clock, reset, faults, self.mem,
                                     reset_active_level)


def pauses(rng, share, longest):
    """A pause generator: pauses of 1 to ``longest`` cycles, starting with probability
    ``share`` in a cycle without one."""
    while True:
        if rng.random() < share:
            for _ in range(rng.randint(1, longest)):
                yield True
        else:
            yield False
