"""The memories of a design, counted apart from its logic: block RAMs on ECP5, a modelled
area on an ASIC.

The NAND2 flow (``synth.area_nand2``) maps logic to gates; a memory is not logic but a
macro (an SRAM on an ASIC, block RAM on an FPGA), so it is listed here instead, one
``MemoryUse`` per ``amaranth.lib.memory.Memory`` of the elaborated design:

- **ECP5 block RAMs**: the DP16KD is an 18 Kbit block with the configurations 16384x1,
  8192x2, 4096x4, 2048x9, 1024x18, and 512x36 in pseudo dual port mode (one write port,
  one read port) [Lattice, "ECP5 and ECP5-5G Memory Usage Guide", FPGA-TN-02204 (formerly
  TN1264), section "Memory Modules", DP16KD/PDPW16KD]. The count is the fewest blocks over
  the configurations a memory's ports allow: ``ceil(depth/d) * ceil(width/w)``. A memory
  read asynchronously cannot use a block RAM (its read is registered) and counts none:
  Yosys makes it distributed RAM or flip-flops. It is the count a mapper can reach, not a
  place-and-route result. Memories under ``SRAM_MIN_BITS`` count none either.
- **ASIC area**: a model, not a measurement. A memory of at least ``SRAM_MIN_BITS`` bits
  read synchronously is an SRAM macro: its bits times a 6T bit cell over an array
  efficiency; smaller (or asynchronously read) memories are flip-flops, at this project's
  DFF area (synth/cells.lib). The bit cell is Intel's 45 nm high-density 6T cell, 0.346
  um^2 [K. Mistry et al., "A 45nm Logic Technology with High-k+Metal Gate Transistors,
  Strained Silicon, 9 Cu Interconnect Layers, 193nm Dry Patterning, and 100% Pb-free
  Packaging", IEDM 2007], in NAND2 equivalents with the NAND2_X1 of the Nangate 45 nm
  Open Cell Library (FreePDK45), 0.798 um^2: 0.434 NAND2-eq per bit. The array efficiency
  (bit cells over macro area: decoders, sense amplifiers, I/O), ``SRAM_ARRAY_EFFICIENCY``
  = 0.70, is our round assumption for macros of tens of Kbit and up, not a fitted number;
  small macros are less efficient than this says. Each port beyond the first read and
  write pair is not modelled.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Fragment, Shape
from amaranth.lib.memory import Memory

from hdl.ram import BlockRAM

__all__ = ["MemoryUse", "memories_of", "ecp5_brams", "asic_area_nand2", "DP16KD_BITS",
           "DP16KD_CONFIGS", "PDP_WIDE", "BITCELL_UM2", "NAND2_UM2", "SRAM_ARRAY_EFFICIENCY",
           "SRAM_MIN_BITS", "DFF_NAND2", "SOURCES"]

#: DP16KD: 18 Kbit (FPGA-TN-02204); (depth, width) of its true dual port configurations
DP16KD_BITS = 18 * 1024
DP16KD_CONFIGS = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18))
#: the pseudo dual port configuration (one write port, one read port only)
PDP_WIDE = (512, 36)
#: a 45 nm 6T bit cell (Mistry et al., IEDM 2007) and a 45 nm NAND2_X1 (Nangate 45 nm OCL)
BITCELL_UM2 = 0.346
NAND2_UM2 = 0.798
#: bit cells over macro area (our assumption, see the module's docstring)
SRAM_ARRAY_EFFICIENCY = 0.70
#: below this, a memory is modelled as flip-flops rather than an SRAM macro
SRAM_MIN_BITS = 1024
#: synth/cells.lib's DFF, in NAND2 equivalents
DFF_NAND2 = 4.67
SOURCES = (
    "ECP5 block RAM: Lattice FPGA-TN-02204 (TN1264) ECP5 and ECP5-5G Memory Usage Guide, "
    "DP16KD 18 Kbit: 16384x1 8192x2 4096x4 2048x9 1024x18, 512x36 pseudo dual port",
    "ASIC SRAM (a model): 6T bit cell 0.346 um^2 (Mistry et al., IEDM 2007, Intel 45 nm) / "
    "NAND2_X1 0.798 um^2 (Nangate 45 nm Open Cell Library) / array efficiency 0.70 "
    "(assumed); under 1 Kbit or read asynchronously: flip-flops at 4.67 NAND2-eq per bit "
    "(synth/cells.lib)",
)


@dataclass(frozen=True)
class MemoryUse:
    """One memory of a design: its place (``name``, the submodule path joined by dots),
    ``depth`` words of ``width`` bits, its ports (``read_ports``, of which
    ``async_reads`` are read combinationally; ``write_ports``)."""
    name: str
    depth: int
    width: int
    read_ports: int
    write_ports: int
    async_reads: int = 0

    @property
    def bits(self) -> int:
        return self.depth * self.width

    @property
    def brams(self) -> int:
        return ecp5_brams(self)

    @property
    def asic_kind(self) -> str:
        """``sram`` (a macro) or ``flip-flops``: what the ASIC model takes it for."""
        return "sram" if self.bits >= SRAM_MIN_BITS and not self.async_reads else "flip-flops"

    @property
    def nand2_eq(self) -> float:
        return asic_area_nand2(self)

    def to_json(self) -> dict:
        return {"name": self.name, "depth": self.depth, "width": self.width, "bits": self.bits,
                "read_ports": self.read_ports, "write_ports": self.write_ports,
                "async_reads": self.async_reads, "ecp5_dp16kd": self.brams,
                "asic_kind": self.asic_kind, "asic_nand2_eq": round(self.nand2_eq, 1)}


def ecp5_brams(memory: MemoryUse) -> int:
    """DP16KD blocks for ``memory``: the fewest over the configurations its ports allow
    (512x36 with at most one write and one read port); none for an asynchronous read, a
    memory under ``SRAM_MIN_BITS`` (LUT RAM or flip-flops, as Yosys maps it), or more than
    two ports (a DP16KD has two)."""
    if (memory.async_reads or memory.bits < SRAM_MIN_BITS
            or memory.read_ports + memory.write_ports > 2):
        return 0
    configs = list(DP16KD_CONFIGS)
    if memory.read_ports <= 1 and memory.write_ports <= 1:
        configs.append(PDP_WIDE)
    return min(-(-memory.depth // d) * -(-memory.width // w) for d, w in configs)


def asic_area_nand2(memory: MemoryUse) -> float:
    """The modelled ASIC area of ``memory`` in NAND2 equivalents (see the module's
    docstring): an SRAM macro, or flip-flops."""
    if memory.asic_kind == "sram":
        return memory.bits * BITCELL_UM2 / NAND2_UM2 / SRAM_ARRAY_EFFICIENCY
    return memory.bits * DFF_NAND2


def memories_of(design, platform=None) -> list[MemoryUse]:
    """Every ``amaranth.lib.memory.Memory`` and ``hdl.ram.BlockRAM`` (either way it is
    built) of ``design`` (an elaboratable), elaborated
    here, in the order of its hierarchy. Elaboration is cheap (0.4 s for hss_system);
    conversion, which these numbers need not, is the slow part."""
    found = []

    def walk(fragment, path):
        origins = getattr(fragment, "origins", None) or ()
        ram = next((o for o in origins if isinstance(o, BlockRAM)), None)
        if ram is not None:                  # one write and one synchronous read port
            found.append(MemoryUse(".".join(path), ram.depth, ram.width, 1, 1))
            return
        memory = next((o for o in origins if isinstance(o, Memory)), None)
        if memory is not None:
            reads = memory.read_ports
            found.append(MemoryUse(".".join(path), memory.depth,
                                   Shape.cast(memory.shape).width, len(reads),
                                   len(memory.write_ports),
                                   sum(1 for p in reads if p.domain == "comb")))
            return
        for i, (sub, name, *_) in enumerate(fragment.subfragments):
            walk(sub, path + (f"U${i}" if name is None else str(name),))

    walk(Fragment.get(design, platform), ())
    return found
