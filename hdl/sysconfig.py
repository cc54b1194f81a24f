"""What ``hss_system`` is built with: the engine's config and the system's own sizes.

docs/system.md is the contract these numbers serve: the DMA word (``dma_bits``), the
buffers (sizes in bytes, words of one beat each), the AXI bursts, requantization. Checked
eagerly, one line per problem.
"""
from __future__ import annotations

from dataclasses import dataclass

from hss.system import SystemShape

from .config import ArrayConfig
from .top import last_beat_latency

__all__ = ["SystemConfig", "DMA_WIDTHS"]

#: AXI4 data widths the DMA port takes: whole bytes, powers of two, 64 to 512 bits.
DMA_WIDTHS = (64, 128, 256, 512)
KIB = 1024


def _words(bits: int, word_bits: int) -> int:
    return -(-bits // word_bits)


@dataclass(frozen=True)
class SystemConfig:
    """An ``hss_system`` build: ``engine`` (an ``hdl.config`` config) and, with their
    defaults (docs/system.md says what each is modelled on), the AXI4 data width, the
    buffer sizes in bytes, the requantization table's rows, the output buffer's tiles, the
    largest burst and the reads kept in flight, whether requantization is built, and the
    m-tiles of a chunk of the loop nest (``hss.system.tile_order``: the first chunk's
    weights are all a layer waits for before it computes at full rate)."""
    engine: ArrayConfig
    dma_bits: int = 128
    addr_bits: int = 32
    wbuf_bytes: int = 128 * KIB
    abuf_bytes: int = 128 * KIB
    qbuf_rows: int = 4096
    obuf_tiles: int = 2
    max_burst: int = 64
    outstanding: int = 4
    requant: bool = True
    m_chunk: int = 8

    def __post_init__(self):
        if not isinstance(self.engine, ArrayConfig):
            raise TypeError(f"engine must be an hdl.config config, not {self.engine!r}")
        if self.engine.tile_beats != 1:
            raise ValueError(f"the system takes tiles of one beat; this engine's tiles leave "
                             f"in {self.engine.tile_beats} beats (a tile of "
                             f"{self.engine.rows}x{self.engine.cols} sums passes Amaranth's "
                             f"signal limit): use a smaller array")
        if self.dma_bits not in DMA_WIDTHS:
            raise ValueError(f"dma_bits must be one of {', '.join(map(str, DMA_WIDTHS))}, "
                             f"not {self.dma_bits!r}")
        if self.addr_bits != 32:
            raise ValueError(f"addr_bits must be 32 (the descriptor's addresses are 32-bit), "
                             f"not {self.addr_bits!r}")
        for name in ("wbuf_bytes", "abuf_bytes", "qbuf_rows", "obuf_tiles", "max_burst",
                     "outstanding", "m_chunk"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.obuf_tiles < 2:
            raise ValueError(f"obuf_tiles must be at least 2 (a tile leaves while the next "
                             f"is computed), not {self.obuf_tiles}")
        if self.m_chunk > 0xFFFF:
            raise ValueError(f"m_chunk must be at most 65535 (a 16-bit count), not "
                             f"{self.m_chunk}")
        if self.max_burst > 256:
            raise ValueError(f"max_burst must be at most 256 (AXI4 INCR), not {self.max_burst}")
        for name, depth in (("wbuf_bytes", self.wbuf_depth), ("abuf_bytes", self.abuf_depth)):
            if depth < 1:
                raise ValueError(f"{name} {getattr(self, name):,} holds no beat of this engine")
        if self.qbuf_rows < self.engine.rows:
            raise ValueError(f"qbuf_rows must hold an m-tile's {self.engine.rows} rows, "
                             f"not {self.qbuf_rows}")

    @property
    def word_bytes(self) -> int:
        return self.dma_bits // 8

    @property
    def weight_beat_bits(self) -> int:
        return self.engine.weight_beat_bits

    @property
    def act_beat_bits(self) -> int:
        return self.engine.act_beat_bits

    @property
    def tile_bits(self) -> int:
        """A tile as the engine leaves it: the sums and ``overflow``."""
        return self.engine.tile_layout().size

    @property
    def quant_tile_bits(self) -> int:
        """A requantized tile: ``rows x cols`` int8 values and ``overflow``."""
        return self.engine.rows * self.engine.cols * 8 + 1

    @property
    def weight_words(self) -> int:
        """DMA words per weights beat in DRAM."""
        return _words(self.weight_beat_bits, self.dma_bits)

    @property
    def act_words(self) -> int:
        return _words(self.act_beat_bits, self.dma_bits)

    @property
    def tile_words(self) -> int:
        return _words(self.tile_bits, self.dma_bits)

    @property
    def quant_tile_words(self) -> int:
        return _words(self.quant_tile_bits, self.dma_bits)

    @property
    def wbuf_depth(self) -> int:
        """Weights beats the weights buffer holds."""
        return self.wbuf_bytes * 8 // self.weight_beat_bits

    @property
    def abuf_depth(self) -> int:
        return self.abuf_bytes * 8 // self.act_beat_bits

    @property
    def modes(self) -> int:
        return len(self.engine.modes)

    @property
    def shape(self) -> SystemShape:
        """The build as the golden model (``hss.system``) and the host driver see it."""
        e = self.engine
        return SystemShape(e.rows, e.cols, self.weight_beat_bits, self.act_beat_bits,
                           e.acc_width, e.signed, self.modes, self.wbuf_depth,
                           self.abuf_depth, self.dma_bits, self.obuf_tiles,
                           self.qbuf_rows if self.requant else 0, self.max_burst,
                           self.outstanding, last_beat_latency(e), self.m_chunk)
