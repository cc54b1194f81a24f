"""hss_system's register map for the host driver: offsets, fields, error codes, defaults.

GENERATED from regmap/hss_system.rdl by `python -m regmap host`: do not edit (a test checks
it against the RDL). It needs nothing but Python, so the driver runs without RDL tools.
Each register is a class of constants: ``OFFSET`` (byte address), one ``Field`` per field
and ``FIELDS``; ``Field.get``/``Field.put`` take a field out of a word and put one in.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "DATA_BITS", "ADDRESS_BITS", "WINDOW_BYTES", "ID_VALUE", "VERSION_MAJOR",
    "VERSION_MINOR", "DEFAULT_PARAMETERS", "Field", "REGISTERS", "ErrorCode", "ID",
    "VERSION", "CONFIG0", "CONFIG1", "WBUF_DEPTH", "ABUF_DEPTH", "QBUF_DEPTH",
    "WBEAT_WORDS", "ABEAT_WORDS", "TILE_WORDS", "CTRL", "STATUS", "INT_ENABLE",
    "INT_STATUS", "W_ADDR", "A_ADDR", "Z_ADDR", "Q_ADDR", "M_TILES", "N_TILES",
    "BEATS_PER_TILE", "W_BASE", "A_BASE", "FLAGS", "MODES", "CYCLES", "STEPS",
    "STALL_WEIGHTS", "STALL_ACTS", "STALL_OUTPUT", "DRAM_READ_BYTES", "DRAM_WRITE_BYTES",
    "WBUF_READS", "WBUF_WRITES", "ABUF_READS", "ABUF_WRITES", "OBUF_READS", "OBUF_WRITES",
    "QBUF_READS", "QBUF_WRITES",
]

DATA_BITS = 32
ADDRESS_BITS = 12
WINDOW_BYTES = 4096
#: what ID reads and the version of this map (a driver checks both before anything else)
ID_VALUE = 0x48535331
VERSION_MAJOR = 1
VERSION_MINOR = 1

#: the RDL's parameters at their defaults (the default build); a build's own values are in
#: its CONFIG* and *_DEPTH registers
DEFAULT_PARAMETERS = MappingProxyType({
    "rows": 4,
    "cols": 4,
    "value_width": 8,
    "acc_width": 26,
    "word_bytes": 16,
    "num_modes": 1,
    "requant": 1,
    "tile_beats": 1,
    "fetch": 0,
    "wbuf_depth": 2841,
    "abuf_depth": 1365,
    "qbuf_depth": 4096,
    "wbeat_words": 3,
    "abeat_words": 6,
    "tile_words": 4,
    "tile_words_requant": 2,
})


@dataclass(frozen=True)
class Field:
    """Bits ``[lsb + width - 1 : lsb]`` of a register; ``sw`` is what software may do:
    "r", "w" or "rw"."""
    name: str
    lsb: int
    width: int
    sw: str

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def get(self, word: int) -> int:
        """The field's value in the register word ``word``."""
        return (word >> self.lsb) & ((1 << self.width) - 1)

    def put(self, value: int) -> int:
        """``value`` at the field's place in a register word."""
        if not 0 <= value < 1 << self.width:
            raise ValueError(f"{self.name} is {self.width} bits: {value} does not fit")
        return value << self.lsb


class ErrorCode(enum.IntEnum):
    """The values of the RDL enum error_code."""
    #: No error.
    NONE = 0
    #: The weights do not fit wbuf: W_BASE + M_TILES * BEATS_PER_TILE is more than
    #: WBUF_DEPTH.
    WBUF_OVERFLOW = 1
    #: The activations do not fit abuf: A_BASE + N_TILES * BEATS_PER_TILE is more than
    #: ABUF_DEPTH.
    ABUF_OVERFLOW = 2
    #: The requantization table (M_TILES * rows entries) does not fit qbuf.
    QBUF_OVERFLOW = 3
    #: An address of the descriptor is not a multiple of the DMA word's bytes.
    MISALIGNED = 4
    #: A region of the descriptor runs past the 32-bit address space.
    ADDRESS_RANGE = 5
    #: No tiles (M_TILES or N_TILES is 0) or no beats (BEATS_PER_TILE is 0).
    EMPTY = 6
    #: A mode outside the build's set: in MODES, or in the mode field of a weights beat.
    BAD_MODE = 7
    #: A DMA read got an AXI SLVERR response.
    READ_SLVERR = 8
    #: A DMA read got an AXI DECERR response.
    READ_DECERR = 9
    #: A DMA write got an AXI SLVERR response.
    WRITE_SLVERR = 10
    #: A DMA write got an AXI DECERR response.
    WRITE_DECERR = 11


class ID:
    """Identity: Reads 0x48535331, "HSS1" in ASCII: a driver checks it before anything else."""
    OFFSET = 0x000
    ID = Field("ID", 0, 32, "r")
    FIELDS = (ID,)


class VERSION:
    """Version: Version of this register map: a driver accepts the major version it was
    written for."""
    OFFSET = 0x004
    MINOR = Field("MINOR", 0, 16, "r")
    MAJOR = Field("MAJOR", 16, 16, "r")
    FIELDS = (MINOR, MAJOR)


class CONFIG0:
    """Array configuration: The build's PE array and number formats."""
    OFFSET = 0x010
    ROWS = Field("ROWS", 0, 8, "r")
    COLS = Field("COLS", 8, 8, "r")
    VALUE_WIDTH = Field("VALUE_WIDTH", 16, 8, "r")
    ACC_WIDTH = Field("ACC_WIDTH", 24, 8, "r")
    FIELDS = (ROWS, COLS, VALUE_WIDTH, ACC_WIDTH)


class CONFIG1:
    """System configuration: The build's DMA word, mode set, requantization, output tile
    beats and where rank 1 is selected."""
    OFFSET = 0x014
    WORD_BYTES = Field("WORD_BYTES", 0, 8, "r")
    NUM_MODES = Field("NUM_MODES", 8, 8, "r")
    TILE_BEATS = Field("TILE_BEATS", 16, 8, "r")
    REQUANT = Field("REQUANT", 24, 1, "r")
    FETCH = Field("FETCH", 25, 1, "r")
    FIELDS = (WORD_BYTES, NUM_MODES, TILE_BEATS, REQUANT, FETCH)


class WBUF_DEPTH:
    """Weights buffer depth: Words of wbuf, one weights beat each."""
    OFFSET = 0x018
    DEPTH = Field("DEPTH", 0, 32, "r")
    FIELDS = (DEPTH,)


class ABUF_DEPTH:
    """Activations buffer depth: Words of abuf, one activations beat each."""
    OFFSET = 0x01C
    DEPTH = Field("DEPTH", 0, 32, "r")
    FIELDS = (DEPTH,)


class QBUF_DEPTH:
    """Requantization buffer depth: Entries of qbuf, one 32-bit (scale, shift) entry per
    output row."""
    OFFSET = 0x020
    DEPTH = Field("DEPTH", 0, 32, "r")
    FIELDS = (DEPTH,)


class WBEAT_WORDS:
    """Words per weights beat: DMA words one weights beat occupies in DRAM: ceil(weights
    beat bits / dma_bits)."""
    OFFSET = 0x024
    WORDS = Field("WORDS", 0, 32, "r")
    FIELDS = (WORDS,)


class ABEAT_WORDS:
    """Words per activations beat: DMA words one activations beat occupies in DRAM:
    ceil(activations beat bits / dma_bits)."""
    OFFSET = 0x028
    WORDS = Field("WORDS", 0, 32, "r")
    FIELDS = (WORDS,)


class TILE_WORDS:
    """Words per output tile: DMA words one output tile occupies at Z_ADDR: ceil(tile bits /
    dma_bits), as the engine computes it and requantized."""
    OFFSET = 0x02C
    RAW = Field("RAW", 0, 16, "r")
    REQUANT = Field("REQUANT", 16, 16, "r")
    FIELDS = (RAW, REQUANT)


class CTRL:
    """Control: Commands. Writing 1 to a bit gives the controller a one-cycle pulse; the
    bits read as 0."""
    OFFSET = 0x040
    START = Field("START", 0, 1, "w")
    CLEAR = Field("CLEAR", 1, 1, "w")
    FIELDS = (START, CLEAR)


class STATUS:
    """Status: What the controller is doing, as it drives it."""
    OFFSET = 0x044
    BUSY = Field("BUSY", 0, 1, "r")
    DONE = Field("DONE", 1, 1, "r")
    ERROR = Field("ERROR", 2, 1, "r")
    ERROR_CODE = Field("ERROR_CODE", 8, 8, "r")
    FIELDS = (BUSY, DONE, ERROR, ERROR_CODE)


class INT_ENABLE:
    """Interrupt enable: Which INT_STATUS bits drive the irq output."""
    OFFSET = 0x048
    DONE = Field("DONE", 0, 1, "rw")
    ERROR = Field("ERROR", 1, 1, "rw")
    FIELDS = (DONE, ERROR)


class INT_STATUS:
    """Interrupt status: Events since software last cleared them: set by hardware, cleared
    by writing 1. irq is high while (INT_STATUS & INT_ENABLE) is not 0. A hardware set in
    the same cycle as a clear wins."""
    OFFSET = 0x04C
    DONE = Field("DONE", 0, 1, "rw")
    ERROR = Field("ERROR", 1, 1, "rw")
    FIELDS = (DONE, ERROR)


class W_ADDR:
    """Weights address: DRAM byte address of the weights: M_TILES * BEATS_PER_TILE weights
    beats, m-tile by m-tile."""
    OFFSET = 0x080
    ADDR = Field("ADDR", 0, 32, "rw")
    FIELDS = (ADDR,)


class A_ADDR:
    """Activations address: DRAM byte address of the activations: N_TILES * BEATS_PER_TILE
    activations beats, n-tile by n-tile."""
    OFFSET = 0x084
    ADDR = Field("ADDR", 0, 32, "rw")
    FIELDS = (ADDR,)


class Z_ADDR:
    """Output address: DRAM byte address of the output: tile t = nt * M_TILES + mt at Z_ADDR
    + t * TILE_WORDS words."""
    OFFSET = 0x088
    ADDR = Field("ADDR", 0, 32, "rw")
    FIELDS = (ADDR,)


class Q_ADDR:
    """Requantization table address: DRAM byte address of the requantization table (read
    only with FLAGS.REQUANT): M_TILES * rows 32-bit entries."""
    OFFSET = 0x08C
    ADDR = Field("ADDR", 0, 32, "rw")
    FIELDS = (ADDR,)


class M_TILES:
    """M-tiles: Tiles of the layer along M: ceil(M / rows)."""
    OFFSET = 0x090
    COUNT = Field("COUNT", 0, 16, "rw")
    FIELDS = (COUNT,)


class N_TILES:
    """N-tiles: Tiles of the layer along N: ceil(N / cols)."""
    OFFSET = 0x094
    COUNT = Field("COUNT", 0, 16, "rw")
    FIELDS = (COUNT,)


class BEATS_PER_TILE:
    """Beats per tile: Beats of each input stream per tile: every TASD segment of the tile,
    in order."""
    OFFSET = 0x098
    COUNT = Field("COUNT", 0, 16, "rw")
    FIELDS = (COUNT,)


class W_BASE:
    """Weights buffer base: The first wbuf word the layer's weights occupy."""
    OFFSET = 0x09C
    INDEX = Field("INDEX", 0, 32, "rw")
    FIELDS = (INDEX,)


class A_BASE:
    """Activations buffer base: The first abuf word the layer's activations occupy."""
    OFFSET = 0x0A0
    INDEX = Field("INDEX", 0, 32, "rw")
    FIELDS = (INDEX,)


class FLAGS:
    """Layer flags: What START does besides computing."""
    OFFSET = 0x0A4
    LOAD_W = Field("LOAD_W", 0, 1, "rw")
    LOAD_A = Field("LOAD_A", 1, 1, "rw")
    REQUANT = Field("REQUANT", 2, 1, "rw")
    RELU = Field("RELU", 3, 1, "rw")
    FIELDS = (LOAD_W, LOAD_A, REQUANT, RELU)


class MODES:
    """Modes of the layer: The modes the layer's weights beats use; START refuses a mode the
    build does not have."""
    OFFSET = 0x0A8
    MASK = Field("MASK", 0, 32, "rw")
    FIELDS = (MASK,)


class CYCLES:
    """Cycles: Clock cycles from START to DONE or ERROR."""
    OFFSET = 0x100
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class STEPS:
    """PE steps: PE steps: cycles in which the engine took a pair of beats."""
    OFFSET = 0x104
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class STALL_WEIGHTS:
    """Weights stall cycles: Cycles the engine waited for a weights beat not yet in wbuf."""
    OFFSET = 0x108
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class STALL_ACTS:
    """Activations stall cycles: Cycles the engine waited for an activations beat not yet in
    abuf."""
    OFFSET = 0x10C
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class STALL_OUTPUT:
    """Output stall cycles: Cycles the engine waited for room in obuf (output back-
    pressure)."""
    OFFSET = 0x110
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class DRAM_READ_BYTES:
    """DRAM bytes read: Bytes the DMA read from DRAM."""
    OFFSET = 0x114
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class DRAM_WRITE_BYTES:
    """DRAM bytes written: Bytes the DMA wrote to DRAM."""
    OFFSET = 0x118
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class WBUF_READS:
    """wbuf reads: Words read from wbuf."""
    OFFSET = 0x11C
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class WBUF_WRITES:
    """wbuf writes: Words written to wbuf."""
    OFFSET = 0x120
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class ABUF_READS:
    """abuf reads: Words read from abuf."""
    OFFSET = 0x124
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class ABUF_WRITES:
    """abuf writes: Words written to abuf."""
    OFFSET = 0x128
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class OBUF_READS:
    """obuf reads: Tiles read from obuf."""
    OFFSET = 0x12C
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class OBUF_WRITES:
    """obuf writes: Tiles written to obuf."""
    OFFSET = 0x130
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class QBUF_READS:
    """qbuf reads: Requantization entries read from qbuf (one per output row of a tile)."""
    OFFSET = 0x134
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


class QBUF_WRITES:
    """qbuf writes: Requantization entries written to qbuf (the layer's table, one per
    output row)."""
    OFFSET = 0x138
    COUNT = Field("COUNT", 0, 32, "r")
    FIELDS = (COUNT,)


#: every register, in offset order
REGISTERS = (
    ID, VERSION, CONFIG0, CONFIG1, WBUF_DEPTH, ABUF_DEPTH, QBUF_DEPTH, WBEAT_WORDS,
    ABEAT_WORDS, TILE_WORDS, CTRL, STATUS, INT_ENABLE, INT_STATUS, W_ADDR, A_ADDR, Z_ADDR,
    Q_ADDR, M_TILES, N_TILES, BEATS_PER_TILE, W_BASE, A_BASE, FLAGS, MODES, CYCLES, STEPS,
    STALL_WEIGHTS, STALL_ACTS, STALL_OUTPUT, DRAM_READ_BYTES, DRAM_WRITE_BYTES, WBUF_READS,
    WBUF_WRITES, ABUF_READS, ABUF_WRITES, OBUF_READS, OBUF_WRITES, QBUF_READS, QBUF_WRITES,
)
