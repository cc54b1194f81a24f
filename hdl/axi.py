"""The AXI4 and AXI4-Lite signals of hss_system as Amaranth 0.5 wiring members.

Names are the AMBA ones (``arvalid``, ``rdata``, ...) that vendor IP, LiteX and
cocotbext-axi look for, one member per signal, so a top that prefixes them gets the ports
tools expect (``m_axi_arvalid``, ``s_axil_awaddr``). Member dicts, not nested interfaces:
a DMA engine holds only its half of the bus (reads or writes) and a top forwards each half
to the same prefixed ports.

Directions: every dict and signature here is from the **master's** point of view (Out =
driven by the master). A master puts the members in its signature as they are
(``**axi4_read_members(...)``); a slave flips them: ``axil_slave_members()`` is the
register block's view of AXI4-Lite, and ``In(AXI4LiteSignature())`` its nested form.

A top whose ports are a submodule's members, prefixed, declares them with ``prefixed`` and
wires them with ``forward``::

    read = axi4_read_members(128)
    class Top(wiring.Component):
        def __init__(self):
            super().__init__({**prefixed("m_axi_", read), ...})
        def elaborate(self, platform):
            m = Module()
            m.submodules.dma = dma = DMARead(128)
            forward(m, dma, self, "m_axi_", read)   # dma.arvalid -> self.m_axi_arvalid ...
"""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Member, Out

__all__ = [
    "DATA_BITS", "LITE_DATA_BITS", "BURST_INCR", "RESP_OKAY", "RESP_EXOKAY", "RESP_SLVERR",
    "RESP_DECERR", "CACHE_NORMAL_BUFFERABLE", "check_data_bits", "size_code",
    "axi4_read_members", "axi4_write_members", "axi4_members", "AXI4Signature",
    "axil_members", "axil_slave_members", "AXI4LiteSignature", "prefixed", "forward",
]

#: data widths of hss_system's AXI4 master (docs/system.md, ``dma_bits``)
DATA_BITS = (64, 128, 256, 512)
#: data widths AXI4-Lite allows
LITE_DATA_BITS = (32, 64)

#: ``axburst``: incrementing burst, the only kind the DMA issues
BURST_INCR = 1
#: ``xresp`` codes
RESP_OKAY, RESP_EXOKAY, RESP_SLVERR, RESP_DECERR = 0, 1, 2, 3
#: ``axcache``: normal non-cacheable bufferable (modifiable), what a DMA of plain data asks:
#: an interconnect may merge or split its bursts
CACHE_NORMAL_BUFFERABLE = 0b0011


def _check_int(name: str, value, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, not {value!r}")
    return value


def check_data_bits(data_bits, allowed=DATA_BITS, what="AXI4") -> int:
    """``data_bits`` if it is one of ``allowed`` (whole bytes, a power of two), else a
    ValueError with a one-line message."""
    if not isinstance(data_bits, int) or isinstance(data_bits, bool) or data_bits not in allowed:
        raise ValueError(f"{what} data bits must be one of "
                         f"{', '.join(map(str, allowed))}, not {data_bits!r}")
    return data_bits


def size_code(data_bits: int) -> int:
    """``axsize`` of a full-width beat: log2 of its bytes."""
    return (data_bits // 8).bit_length() - 1


def _check_addr_id(addr_bits, id_bits) -> None:
    _check_int("addr_bits", addr_bits, 12, 64)   # 12: a 4 KiB page must be addressable
    _check_int("id_bits", id_bits, 1, 32)


def axi4_read_members(data_bits: int, addr_bits: int = 32, id_bits: int = 1) -> dict[str, Member]:
    """AXI4 read address (AR) and read data (R) channels, master's view."""
    check_data_bits(data_bits)
    _check_addr_id(addr_bits, id_bits)
    return {
        "arid": Out(id_bits), "araddr": Out(addr_bits), "arlen": Out(8), "arsize": Out(3),
        "arburst": Out(2), "arlock": Out(1), "arcache": Out(4), "arprot": Out(3),
        "arqos": Out(4), "arvalid": Out(1), "arready": In(1),
        "rid": In(id_bits), "rdata": In(data_bits), "rresp": In(2), "rlast": In(1),
        "rvalid": In(1), "rready": Out(1),
    }


def axi4_write_members(data_bits: int, addr_bits: int = 32, id_bits: int = 1) -> dict[str, Member]:
    """AXI4 write address (AW), write data (W) and write response (B) channels, master's
    view."""
    check_data_bits(data_bits)
    _check_addr_id(addr_bits, id_bits)
    return {
        "awid": Out(id_bits), "awaddr": Out(addr_bits), "awlen": Out(8), "awsize": Out(3),
        "awburst": Out(2), "awlock": Out(1), "awcache": Out(4), "awprot": Out(3),
        "awqos": Out(4), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wlast": Out(1),
        "wvalid": Out(1), "wready": In(1),
        "bid": In(id_bits), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
    }


def axi4_members(data_bits: int, addr_bits: int = 32, id_bits: int = 1) -> dict[str, Member]:
    """All five AXI4 channels, master's view (writes first, as the AMBA tables list them)."""
    return {**axi4_write_members(data_bits, addr_bits, id_bits),
            **axi4_read_members(data_bits, addr_bits, id_bits)}


class AXI4Signature(wiring.Signature):
    """AXI4, master's view: ``Out(AXI4Signature(128))`` on a master, ``In(...)`` on a slave
    (nested: Verilog names ``<member>__arvalid``; ``prefixed`` gives flat ones)."""

    def __init__(self, data_bits: int, addr_bits: int = 32, id_bits: int = 1):
        self.data_bits, self.addr_bits, self.id_bits = data_bits, addr_bits, id_bits
        super().__init__(axi4_members(data_bits, addr_bits, id_bits))


def axil_members(data_bits: int = 32, addr_bits: int = 12) -> dict[str, Member]:
    """AXI4-Lite, master's view. hss_system's register block: 32 data bits, 12 address
    bits (4 KiB of registers)."""
    check_data_bits(data_bits, LITE_DATA_BITS, "AXI4-Lite")
    _check_int("addr_bits", addr_bits, 1, 64)
    return {
        "awaddr": Out(addr_bits), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wvalid": Out(1),
        "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        "araddr": Out(addr_bits), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
        "rdata": In(data_bits), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
    }


def axil_slave_members(data_bits: int = 32, addr_bits: int = 12) -> dict[str, Member]:
    """AXI4-Lite, slave's view (``axil_members`` flipped): what a register block declares."""
    return {name: member.flip() for name, member in axil_members(data_bits, addr_bits).items()}


class AXI4LiteSignature(wiring.Signature):
    """AXI4-Lite, master's view: a slave declares ``In(AXI4LiteSignature())``."""

    def __init__(self, data_bits: int = 32, addr_bits: int = 12):
        self.data_bits, self.addr_bits = data_bits, addr_bits
        super().__init__(axil_members(data_bits, addr_bits))


def prefixed(prefix: str, members: dict[str, Member]) -> dict[str, Member]:
    """``members`` renamed ``prefix + name``, same directions: a top's own ports for a
    submodule's members (``prefixed("m_axi_", axi4_read_members(128))``)."""
    if not prefix.isidentifier():
        raise ValueError(f"prefix must start a Python identifier, not {prefix!r}")
    return {prefix + name: member for name, member in members.items()}


def forward(m: Module, inner, outer, prefix: str, members: dict[str, Member]) -> None:
    """Wire ``inner``'s members (named as in ``members``, directions as ``inner`` sees
    them) to ``outer``'s ports ``prefix + name`` declared with ``prefixed``: each Out
    member of ``inner`` drives ``outer``'s port, each of ``outer``'s In ports drives
    ``inner``'s member. Widths must match (``eq`` would truncate silently)."""
    for name, member in members.items():
        here, there = getattr(inner, name), getattr(outer, prefix + name)
        if len(here) != len(there):
            raise ValueError(f"{name} is {len(here)} bits but {prefix}{name} is "
                             f"{len(there)}")
        if member.flow == wiring.Flow.Out:
            m.d.comb += there.eq(here)
        else:
            m.d.comb += here.eq(there)
