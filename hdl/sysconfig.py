"""What ``hss_system`` is built with: the engine's config and the system's own sizes.

docs/system.md is the contract these numbers serve: the DMA word (``dma_bits``), the
buffers (sizes in bytes, words of one beat each), the AXI bursts, requantization. Checked
eagerly, one line per problem.
"""
from __future__ import annotations

from dataclasses import dataclass

from hss.system import SystemShape

from hss.fetch import rank0_pattern

from .config import AcceleratorConfig, ArrayConfig
from .top import last_beat_latency

__all__ = ["SystemConfig", "DMA_WIDTHS", "FETCH_WAYS"]

#: Where rank 1 is selected: in every PE (the engine as it is), or where activations are
#: fetched from ``abuf`` (``hss.fetchbeats``: way (i) of ``hss.fetch``, a rank-0 engine).
FETCH_WAYS = ("pe", "shared")

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
    largest burst and the reads kept in flight, whether requantization is built, the
    m-tiles of a chunk of the loop nest (``hss.system.tile_order``: the first chunk's
    weights are all a layer waits for before it computes at full rate), and where rank 1
    is selected (``fetch``, one of ``FETCH_WAYS``: with ``"shared"`` the system's engine is
    ``core``, a rank-0 engine fed with the blocks the weights' rank-1 offsets name), and
    how many rows of a tile are requantized a cycle (``requant_lanes``: default 2 from 16
    rows on, else 1; ``qbuf`` is then as many banks)."""
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
    fetch: str = "pe"
    requant_lanes: int | None = None

    def __post_init__(self):
        if not isinstance(self.engine, ArrayConfig):
            raise TypeError(f"engine must be an hdl.config config, not {self.engine!r}")
        if self.engine.tile_beats != 1:
            raise ValueError(f"the system takes tiles of one beat; this engine's tiles leave "
                             f"in {self.engine.tile_beats} beats (a tile of "
                             f"{self.engine.rows}x{self.engine.cols} sums passes Amaranth's "
                             f"signal limit): use a smaller array")
        if self.fetch not in FETCH_WAYS:
            raise ValueError(f"fetch must be one of {', '.join(FETCH_WAYS)}, not "
                             f"{self.fetch!r}")
        if self.fetch == "shared":
            e = self.engine
            if not isinstance(e, AcceleratorConfig):
                raise ValueError(f"rank 1 at the fetch needs a fixed pattern, not the mode "
                                 f"set {e.modes}")
            rank0_pattern(e.pattern)             # two ranks, else a one-line HSSError
            if e.pattern.rank(1).dense:
                raise ValueError(f"rank 1 of {e.pattern} is dense: there is nothing to "
                                 f"select at the fetch")
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
        rows = self.engine.rows
        if self.requant_lanes is None:
            # a tile leaves at least every BEATS_PER_TILE cycles: rows / lanes cycles of
            # requantization (and its few cycles around) keep up with 16-beat tiles up to
            # 8 rows with one lane; at 16 rows one lane could not (bench system)
            object.__setattr__(self, "requant_lanes", 2 if rows >= 16 and rows % 2 == 0
                               else 1)
        lanes = self.requant_lanes
        if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1 \
                or lanes & (lanes - 1) or rows % lanes:
            raise ValueError(f"requant_lanes must be a power of two that divides the "
                             f"{rows} rows, not {lanes!r}")
        if self.qbuf_rows < self.engine.rows:
            raise ValueError(f"qbuf_rows must hold an m-tile's {self.engine.rows} rows, "
                             f"not {self.qbuf_rows}")

    @property
    def word_bytes(self) -> int:
        return self.dma_bits // 8

    @property
    def core(self) -> ArrayConfig:
        """The engine inside the system: ``engine``, or with rank 1 at the fetch the
        rank-0 engine of ``hss.fetch.rank0_pattern`` (same array, format, accumulators)."""
        e = self.engine
        if self.fetch == "pe":
            return e
        inner = rank0_pattern(e.pattern)
        # K of the core for the engine's largest K: as many groups, G1*H0 each, so that it
        # flags overflow after the same steps
        max_k = -(-e.max_k // e.pattern.group_size) * inner.group_size
        return AcceleratorConfig(inner, e.rows, e.cols, e.width, e.signed, max_k,
                                 e.acc_width, e.tile_rows)

    @property
    def act_banks(self) -> int:
        """Banks of ``abuf``: 1, or H1 with rank 1 at the fetch (bank b: block b of every
        column's group)."""
        return 1 if self.fetch == "pe" else self.engine.pattern.H[1]

    @property
    def banks_read(self) -> int:
        """``abuf`` banks a step reads: 1, or the G1 the beat's rank-1 offsets name."""
        return 1 if self.fetch == "pe" else self.engine.pattern.G[1]

    @property
    def weight_beat_bits(self) -> int:
        """A weights beat in DRAM and ``wbuf``: the engine's, or with rank 1 at the fetch
        the core's and one set of rank-1 offsets (``hss.fetchbeats``)."""
        if self.fetch == "pe":
            return self.engine.weight_beat_bits
        p = self.engine.pattern
        return self.core.weight_beat_bits + p.G[1] * p.offset_bits(1)

    @property
    def act_beat_bits(self) -> int:
        """An activations beat in DRAM: the engine's (``abuf`` keeps it in its banks)."""
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
                           self.outstanding, last_beat_latency(self.core) + self.fetch_latency,
                           self.m_chunk, self.act_banks, self.banks_read)

    @property
    def fetch_latency(self) -> int:
        """Cycles the feed adds before the engine: one with rank 1 at the fetch (the banks
        are read after the weights beat that names them)."""
        return 0 if self.fetch == "pe" else 1
