"""BlockRAM: the buffers of ``hss_system``: a simple dual-port RAM, one write port and one
synchronous read port, read before write (a read and a write of one address in one cycle
read the old word).

Two ways to build it, one behaviour:

- ``macro=False``: an ``amaranth.lib.memory.Memory`` (initially zero), for Amaranth's
  simulator and for designs converted whole.
- ``macro=True``: an instance of ``hss_sdp_ram`` (``MACRO``), the module that
  ``gen.emit.ram_verilog`` writes beside the design (rtl/hss_sdp_ram.v, from a template).
  That is how a memory meets the tools that replace it: an SRAM compiler's macro on an
  ASIC, block RAM that Yosys and vendor tools infer on an FPGA. It is also why emitting
  ``hss_system`` is quick: Amaranth 0.5 builds a memory's initial contents bit by bit (a
  2 Mbit buffer takes seconds), the module's ``initial`` loop writes them at simulation.

The ports are the ones ``lib.memory`` gives: ``write_port()`` and ``read_port()`` (each
once) return objects with ``addr``, ``data`` and ``en``.
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import memory

__all__ = ["BlockRAM", "InterleavedRAM", "MACRO"]

#: the Verilog module a macro BlockRAM instantiates (gen/templates/hss_sdp_ram.v.j2)
MACRO = "hss_sdp_ram"


class BlockRAM(Elaboratable):
    """``depth`` words of ``width`` bits, one write port and one synchronous read port
    (``sync`` domain), zero before the first write. ``macro``: see the module."""

    def __init__(self, width: int, depth: int, *, macro: bool = False):
        for name, value in (("width", width), ("depth", depth)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        self.width, self.depth, self.macro = width, depth, bool(macro)
        abits = max(1, (depth - 1).bit_length())        # a Verilog port has a bit at least
        self._write = SimpleNamespace(addr=Signal(abits), data=Signal(width), en=Signal())
        self._read = SimpleNamespace(addr=Signal(abits), data=Signal(width), en=Signal(init=1))
        self._taken = set()

    def _take(self, which, port):
        if which in self._taken:
            raise ValueError(f"a BlockRAM has one {which} port; it was taken already")
        self._taken.add(which)
        return port

    def write_port(self):
        return self._take("write", self._write)

    def read_port(self, domain: str = "sync"):
        if domain != "sync":
            raise ValueError(f"a BlockRAM reads synchronously in 'sync', not in {domain!r}")
        return self._take("read", self._read)

    def elaborate(self, platform):
        m = Module()
        w, r = self._write, self._read
        if self.macro:
            m.submodules.ram = Instance(
                MACRO, p_WIDTH=self.width, p_DEPTH=self.depth, p_ABITS=len(w.addr),
                i_clk=ClockSignal(), i_we=w.en, i_waddr=w.addr, i_wdata=w.data,
                i_re=r.en, i_raddr=r.addr, o_rdata=r.data)
            return m
        m.submodules.memory = mem = memory.Memory(shape=self.width, depth=self.depth, init=[])
        wp, rp = mem.write_port(), mem.read_port(domain="sync")
        m.d.comb += [wp.addr.eq(w.addr), wp.data.eq(w.data), wp.en.eq(w.en),
                     rp.addr.eq(r.addr), rp.en.eq(r.en), r.data.eq(rp.data)]
        return m


class InterleavedRAM(Elaboratable):
    """``depth`` words of ``width`` bits across ``lanes`` ``BlockRAM`` banks, word ``i`` in
    bank ``i % lanes`` at ``i // lanes``, so that one cycle reads ``lanes`` consecutive
    words (one per bank): hss_system's ``qbuf`` when a tile's rows are requantized
    ``lanes`` at a time. ``write_port()`` takes a word index (``addr``), ``data``, ``en``;
    ``read_ports[j]`` is bank j's own read port (``addr``: the index over ``lanes``).
    ``lanes`` must be a power of two; ``lanes == 1`` is one ``BlockRAM``."""

    def __init__(self, width: int, depth: int, lanes: int = 1, *, macro: bool = False):
        if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1 \
                or lanes & (lanes - 1):
            raise ValueError(f"lanes must be a power of two, not {lanes!r}")
        self.width, self.depth, self.lanes = width, depth, lanes
        self.banks = [BlockRAM(width, -(-depth // lanes), macro=macro) for _ in range(lanes)]
        self.read_ports = [bank.read_port() for bank in self.banks]
        self._ports = [bank.write_port() for bank in self.banks]
        abits = max(1, (depth - 1).bit_length())
        self._write = SimpleNamespace(addr=Signal(abits), data=Signal(width), en=Signal())
        self._taken = False

    def write_port(self):
        if self._taken:
            raise ValueError("an InterleavedRAM has one write port; it was taken already")
        self._taken = True
        return self._write

    def elaborate(self, platform):
        m = Module()
        w, shift = self._write, (self.lanes - 1).bit_length()
        for j, (bank, port) in enumerate(zip(self.banks, self._ports)):
            m.submodules[f"bank_{j}" if self.lanes > 1 else "bank"] = bank
            here = (w.addr[:shift] == j) if shift else 1
            m.d.comb += [port.addr.eq(w.addr >> shift), port.data.eq(w.data),
                         port.en.eq(w.en & here)]
        return m
