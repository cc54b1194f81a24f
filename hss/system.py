"""The golden model of a layer on hss_system (docs/system.md is the specification).

What the hardware, its tests and the host driver must agree on, in one place:

- ``SystemShape``: a build's numbers, exactly what the ``CONFIG*`` registers tell a driver
  (array, DMA word, beat and tile sizes, buffer depths, mode count), so a driver builds it
  from the registers or from the manifest (``SystemShape.for_format``).
- ``Descriptor``: the descriptor registers of a layer, and ``check``: the error code START
  gives (``ErrorCode``), or NONE.
- The DRAM image: where each beat, output tile and table entry lives (``*_address``), how a
  beat is laid out in words (``beat_to_words``), a layer's regions (``layer_image``).
- The DMA's order (``read_order``, ``write_order``) and what a layer costs
  (``layer_counts``: DRAM bytes, buffer reads and writes, PE steps, a cycle lower bound).
- ``run_layer``: the layer itself, from the DRAM image and the buffers to the output tiles
  in DRAM, through the engine's beats (``hss.beats``) and requantization (``hss.requant``).
- ``split_layer``: the driver's split of a layer too large for the buffers.

Decisions where docs/system.md is silent (the hardware follows them; change both together):

- START checks in code order and reports the lowest failing code. Only the regions a layer
  uses are checked for alignment and range: W with ``LOAD_W``, A with ``LOAD_A``, the table
  with ``REQUANT``, Z always; an unused address register may hold anything. A region may end
  exactly at ``2**32``. ``MODES`` must name at least one mode, and only the build's.
- A build without requantization has ``qbuf_depth`` 0, so ``REQUANT`` there is
  QBUF_OVERFLOW (the table does not fit); ``RELU`` without ``REQUANT`` does nothing.
- Buffer depth: ``size_bytes * 8 // word_bits``, the whole words of a buffer's bits.
- A tile ends after ``BEATS_PER_TILE`` beats: the controller drives the engine's ``last``
  from its beat count (the packer stores the same bit), so an image whose stored ``last``
  bits disagree cannot hang a layer.
- An output tile in DRAM is the whole tile as one ``tiles`` payload of one beat would be:
  z (or the int8 values with ``REQUANT``) row-major from bit 0, each ``acc_width`` (or 8)
  bits, then ``overflow``; a build whose tiles leave the engine in several beats stores the
  same (the controller joins the beats). Requantization of tile (nt, mt) uses table entries
  ``mt*rows ..``, one per row, each read once per tile. The table's padding bits and
  entries' bits 31:22 are not read.
- After a runtime error (a beat's mode outside the build, an AXI error) the output region
  and the counters are unspecified; ``run_layer`` returns the code only (its DRAM answers
  every access, so of the runtime errors it meets only BAD_MODE).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields, replace
from enum import IntEnum

import numpy as np

from .beats import PackedLayer, StreamFormat
from .errors import HSSError
from .fetchbeats import FetchFormat
from .requant import ENTRY_BITS, SCALE_BITS, SHIFT_BITS, RequantError, requantize

__all__ = ["ErrorCode", "SystemModelError", "DMA_BITS", "ADDRESS_SPACE", "ENTRY_BYTES",
           "OUTPUT_BITS", "buffer_depth", "SystemShape", "Descriptor", "beat_to_words",
           "words_to_beat", "weight_beat_address", "act_beat_address", "output_tile_address",
           "requant_entry_address", "Transfer", "read_order", "write_order", "LayerCounts",
           "layer_counts", "minimum_dram_bytes", "tile_order", "layer_image", "pack_output_tile",
           "unpack_output_tile", "read_outputs", "Buffers", "LayerRun", "run_layer",
           "LayerPart", "LayerSplit", "split_layer", "fetch_banks", "system_format"]

#: The DMA word widths a build may have.
DMA_BITS = (64, 128, 256, 512)
#: The AXI address is 32 bits: every region ends at or below this byte address.
ADDRESS_SPACE = 1 << 32
#: A requantization table entry (``hss.requant``): 32 bits.
ENTRY_BYTES = ENTRY_BITS // 8
#: Bits of a requantized output value.
OUTPUT_BITS = 8
_REGISTER = 1 << 32


class ErrorCode(IntEnum):
    """``STATUS.ERROR_CODE`` (regmap/hss_system.rdl's ``hss_error_code``). START refuses a
    descriptor with codes 1-7; 7 also ends a running layer at a beat of a mode outside the
    build, 8-11 at an AXI error response."""
    NONE = 0
    WBUF_OVERFLOW = 1
    ABUF_OVERFLOW = 2
    QBUF_OVERFLOW = 3
    MISALIGNED = 4
    ADDRESS_RANGE = 5
    EMPTY = 6
    BAD_MODE = 7
    READ_SLVERR = 8
    READ_DECERR = 9
    WRITE_SLVERR = 10
    WRITE_DECERR = 11


class SystemModelError(HSSError):
    """A shape, descriptor or layer the system model cannot take (one line)."""


def _check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise SystemModelError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
        raise SystemModelError(f"{name} must be {bound}, not {value}")
    return int(value)


def buffer_depth(size_bytes: int, word_bits: int) -> int:
    """Words of a buffer of ``size_bytes`` whose word is ``word_bits`` wide (rounded down)."""
    return _check_int("size_bytes", size_bytes, 0) * 8 // _check_int("word_bits", word_bits, 1)


# ---- the build ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SystemShape:
    """A build of hss_system as numbers: what its ``CONFIG*`` registers say.

    ``weight_beat_bits`` / ``act_beat_bits``: the engine's beats (the manifest's payload
    widths); ``acc_width``/``signed``: its accumulators; ``num_modes``: its mode set's size;
    depths in words of each buffer (``qbuf_depth`` 0: no requantization stage);
    ``latency``: the engine's cycles from a tile's last step to its tile; ``m_chunk``: the
    m-tiles of a chunk of the loop nest (``tile_order``; not a register: it orders the
    work, not what a layer computes or moves). ``act_banks``/``banks_read``: 1 where the
    PEs select every rank; with rank 1 at the fetch (``hss.fetchbeats``) ``abuf`` is H1
    banks, a beat written is H1 bank words and a step reads the G1 its offsets name.
    """
    rows: int
    cols: int
    weight_beat_bits: int
    act_beat_bits: int
    acc_width: int
    signed: bool
    num_modes: int
    wbuf_depth: int
    abuf_depth: int
    dma_bits: int = 128
    obuf_depth: int = 2
    qbuf_depth: int = 4096
    max_burst: int = 64
    outstanding: int = 4
    latency: int = 4
    m_chunk: int = 8
    act_banks: int = 1
    banks_read: int = 1

    def __post_init__(self):
        for f in fields(self):
            if f.name == "signed":
                if not isinstance(self.signed, bool):
                    raise SystemModelError(f"signed must be a bool, not {self.signed!r}")
                continue
            lo = 0 if f.name in ("wbuf_depth", "abuf_depth", "qbuf_depth", "latency") else 1
            hi = 256 if f.name == "max_burst" else None
            object.__setattr__(self, f.name, _check_int(f.name, getattr(self, f.name), lo, hi))
        if self.dma_bits not in DMA_BITS:
            raise SystemModelError(f"dma_bits must be one of {DMA_BITS}, not {self.dma_bits}")
        if self.banks_read > self.act_banks:
            raise SystemModelError(f"banks_read {self.banks_read} exceeds act_banks "
                                   f"{self.act_banks}")

    @property
    def fetch(self) -> bool:
        """Rank 1 selected at the activation fetch (``abuf`` in banks)."""
        return self.act_banks > 1

    @classmethod
    def for_format(cls, fmt: StreamFormat, *, dma_bits: int = 128,
                   wbuf_bytes: int = 128 * 1024, abuf_bytes: int = 128 * 1024,
                   obuf_tiles: int = 2, qbuf_rows: int = 4096, max_burst: int = 64,
                   outstanding: int = 4) -> SystemShape:
        """The system around a build's engine (``StreamFormat.from_manifest``, or its
        ``hss.fetchbeats.FetchFormat`` for rank 1 at the fetch), with docs/system.md's
        default sizes; ``qbuf_rows=0`` builds it without requantization."""
        return cls(fmt.rows, fmt.cols, fmt.weight_beat_bits, fmt.act_beat_bits,
                   fmt.acc_width, fmt.signed, len(fmt.modes),
                   buffer_depth(wbuf_bytes, fmt.weight_beat_bits),
                   buffer_depth(abuf_bytes, fmt.act_beat_bits), dma_bits, obuf_tiles,
                   qbuf_rows, max_burst, outstanding, fmt.latency,
                   act_banks=fetch_banks(fmt)[0], banks_read=fetch_banks(fmt)[1])

    @property
    def act_bank_bits(self) -> int:
        """Bits of one ``abuf`` word (a bank word with rank 1 at the fetch)."""
        return self.act_beat_bits // self.act_banks

    @property
    def word_bytes(self) -> int:
        """Bytes of a DMA word: every address is a multiple of it."""
        return self.dma_bits // 8

    @property
    def wbeat_words(self) -> int:
        """DMA words per weights beat."""
        return -(-self.weight_beat_bits // self.dma_bits)

    @property
    def abeat_words(self) -> int:
        """DMA words per activations beat."""
        return -(-self.act_beat_bits // self.dma_bits)

    def tile_bits(self, requant: bool) -> int:
        """Bits of an output tile in DRAM: every value and ``overflow``."""
        return self.rows * self.cols * (OUTPUT_BITS if requant else self.acc_width) + 1

    def tile_words(self, requant: bool) -> int:
        """DMA words per output tile."""
        return -(-self.tile_bits(requant) // self.dma_bits)

    @property
    def entries_per_word(self) -> int:
        """Requantization table entries per DMA word."""
        return self.dma_bits // ENTRY_BITS

    def table_words(self, m_tiles: int) -> int:
        """DMA words of the table of a layer of ``m_tiles`` m-tiles (the last one padded)."""
        return -(-m_tiles * self.rows // self.entries_per_word)


def fetch_banks(fmt) -> tuple[int, int]:
    """(abuf banks, banks a step reads) of a stream format: (1, 1) but for a FetchFormat."""
    return (fmt.act_banks, fmt.banks_read) if isinstance(fmt, FetchFormat) else (1, 1)


def system_format(manifest: dict | str | os.PathLike) -> StreamFormat | FetchFormat:
    """The stream format a driver of a build's hss_system packs with: the engine's
    (``StreamFormat.from_manifest``), or with rank 1 at the fetch (the manifest's
    ``system.parameters.fetch`` is ``"shared"``) its ``FetchFormat``."""
    if not isinstance(manifest, dict):
        with open(manifest) as f:
            manifest = json.load(f)
    fmt = StreamFormat.from_manifest(manifest)
    fetch = manifest.get("system", {}).get("parameters", {}).get("fetch", "pe")
    return FetchFormat(fmt) if fetch == "shared" else fmt


# ---- the descriptor ------------------------------------------------------------------------

@dataclass(frozen=True)
class Descriptor:
    """A layer's descriptor registers (docs/system.md): DRAM byte addresses, tile and beat
    counts, buffer bases, the ``FLAGS`` bits and the ``MODES`` mask. Every field is a
    32-bit register value; ``check`` says whether START runs it."""
    m_tiles: int
    n_tiles: int
    beats_per_tile: int
    w_addr: int = 0
    a_addr: int = 0
    z_addr: int = 0
    q_addr: int = 0
    w_base: int = 0
    a_base: int = 0
    load_w: bool = True
    load_a: bool = True
    requant: bool = False
    relu: bool = False
    modes: int = 1

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool":
                if not isinstance(value, bool):
                    raise SystemModelError(f"{f.name} must be a bool, not {value!r}")
            else:
                object.__setattr__(self, f.name, _check_int(f.name, value, 0, _REGISTER - 1))

    @classmethod
    def for_layer(cls, layer: PackedLayer, **registers) -> Descriptor:
        """The descriptor of a packed layer: its tile and beat counts and ``MODES``, the
        other registers as given."""
        return cls(layer.m_tiles, layer.n_tiles, layer.beats_per_tile,
                   **{"modes": layer.mode_mask, **registers})

    @property
    def tiles(self) -> int:
        return self.m_tiles * self.n_tiles

    # sizes of the regions in DRAM
    def weights_bytes(self, shape: SystemShape) -> int:
        return self.m_tiles * self.beats_per_tile * shape.wbeat_words * shape.word_bytes

    def acts_bytes(self, shape: SystemShape) -> int:
        return self.n_tiles * self.beats_per_tile * shape.abeat_words * shape.word_bytes

    def output_bytes(self, shape: SystemShape) -> int:
        return self.tiles * shape.tile_words(self.requant) * shape.word_bytes

    def table_bytes(self, shape: SystemShape) -> int:
        return shape.table_words(self.m_tiles) * shape.word_bytes if self.requant else 0

    def regions(self, shape: SystemShape) -> dict[str, tuple[int, int]]:
        """The DRAM regions the layer uses, ``{name: (address, bytes)}`` (w, a, z, q)."""
        out = {}
        if self.load_w:
            out["w"] = (self.w_addr, self.weights_bytes(shape))
        if self.load_a:
            out["a"] = (self.a_addr, self.acts_bytes(shape))
        out["z"] = (self.z_addr, self.output_bytes(shape))
        if self.requant:
            out["q"] = (self.q_addr, self.table_bytes(shape))
        return out

    def check(self, shape: SystemShape) -> ErrorCode:
        """What START answers: NONE, or the lowest code of docs/system.md that applies."""
        bpt = self.beats_per_tile
        if self.w_base + self.m_tiles * bpt > shape.wbuf_depth:
            return ErrorCode.WBUF_OVERFLOW
        if self.a_base + self.n_tiles * bpt > shape.abuf_depth:
            return ErrorCode.ABUF_OVERFLOW
        if self.requant and self.m_tiles * shape.rows > shape.qbuf_depth:
            return ErrorCode.QBUF_OVERFLOW
        regions = self.regions(shape)
        if any(address % shape.word_bytes for address, _ in regions.values()):
            return ErrorCode.MISALIGNED
        if any(address + size > ADDRESS_SPACE for address, size in regions.values()):
            return ErrorCode.ADDRESS_RANGE
        if not (self.m_tiles and self.n_tiles and bpt):
            return ErrorCode.EMPTY
        if not self.modes or self.modes >> shape.num_modes:
            return ErrorCode.BAD_MODE
        return ErrorCode.NONE


# ---- the DRAM image ----------------------------------------------------------------------

def beat_to_words(beat: int, beat_bits: int, dma_bits: int) -> list[int]:
    """A beat as its ``ceil(beat_bits / dma_bits)`` DMA words: bit i of the beat at bit
    ``i mod dma_bits`` of word ``i div dma_bits``, the rest of the last word zero. (The
    words' bytes, each little-endian, are the beat's own bytes, little-endian.)"""
    if not isinstance(beat, (int, np.integer)) or not 0 <= beat < 1 << beat_bits:
        raise SystemModelError(f"beat {beat!r} is not a {beat_bits}-bit non-negative integer")
    mask = (1 << dma_bits) - 1
    return [(int(beat) >> (w * dma_bits)) & mask for w in range(-(-beat_bits // dma_bits))]


def words_to_beat(words, beat_bits: int, dma_bits: int) -> int:
    """The inverse of ``beat_to_words``; bits past ``beat_bits`` (the padding) are not
    read, as the hardware takes only the beat's bits."""
    words = list(words)
    if len(words) != -(-beat_bits // dma_bits):
        raise SystemModelError(f"a {beat_bits}-bit beat is {-(-beat_bits // dma_bits)} words of "
                           f"{dma_bits} bits, not {len(words)}")
    beat = 0
    for w, word in enumerate(words):
        beat |= int(word) << (w * dma_bits)
    return beat & ((1 << beat_bits) - 1)


def _index(name: str, value: int, count: int) -> int:
    if not isinstance(value, (int, np.integer)) or not 0 <= value < count:
        raise SystemModelError(f"{name} {value!r} is outside 0..{count - 1}")
    return int(value)


def weight_beat_address(shape: SystemShape, d: Descriptor, mt: int, b: int) -> int:
    """Byte address of beat ``b`` of m-tile ``mt`` (beat ``mt * BPT + b`` from W_ADDR)."""
    beat = _index("mt", mt, d.m_tiles) * d.beats_per_tile + _index("b", b, d.beats_per_tile)
    return d.w_addr + beat * shape.wbeat_words * shape.word_bytes


def act_beat_address(shape: SystemShape, d: Descriptor, nt: int, b: int) -> int:
    """Byte address of beat ``b`` of n-tile ``nt``."""
    beat = _index("nt", nt, d.n_tiles) * d.beats_per_tile + _index("b", b, d.beats_per_tile)
    return d.a_addr + beat * shape.abeat_words * shape.word_bytes


def tile_order(m_tiles: int, n_tiles: int, chunk: int) -> list[tuple[int, int]]:
    """The (nt, mt) of each tile in the order hss_system computes and writes them: the
    m-tiles in chunks of ``chunk`` (the last may be shorter), each chunk's tiles n-tile by
    n-tile. The DMA reads the first chunk's weights before the other n-tiles'
    activations and the other chunks' weights after them, so a layer waits only for one
    chunk of weights before it computes at full rate, then loads the rest while it
    computes. ``chunk >= m_tiles`` is the plain ``for nt: for mt`` nest."""
    _check_int("chunk", chunk, 1)
    return [(nt, mt) for c0 in range(0, m_tiles, chunk) for nt in range(n_tiles)
            for mt in range(c0, min(c0 + chunk, m_tiles))]


def output_tile_address(shape: SystemShape, d: Descriptor, nt: int, mt: int) -> int:
    """Byte address of output tile (nt, mt): tile ``t = nt * M_TILES + mt`` from Z_ADDR."""
    t = _index("nt", nt, d.n_tiles) * d.m_tiles + _index("mt", mt, d.m_tiles)
    return d.z_addr + t * shape.tile_words(d.requant) * shape.word_bytes


def requant_entry_address(shape: SystemShape, d: Descriptor, row: int) -> int:
    """Byte address of the table entry of output row ``row``: entries are packed
    ``dma_bits / 32`` to a word, entry k of a word at bits 32k, so entry ``row`` is at
    ``Q_ADDR + 4 * row``."""
    return d.q_addr + ENTRY_BYTES * _index("row", row, d.m_tiles * shape.rows)


def _beat_bytes(beat: int, words: int, word_bytes: int) -> bytes:
    return int(beat).to_bytes(words * word_bytes, "little")


def layer_image(shape: SystemShape, d: Descriptor, layer: PackedLayer,
                table=None) -> list[tuple[int, bytes]]:
    """What the driver writes to DRAM before START: ``[(address, bytes)]`` for the weights,
    the activations and (with ``REQUANT``) the table (``table``: the layer's entries,
    ``hss.requant.pack_table``), each region whole, padding zero. Regions the descriptor
    does not load (``LOAD_W``/``LOAD_A`` 0) are left out."""
    if (layer.m_tiles, layer.n_tiles, layer.beats_per_tile) != \
            (d.m_tiles, d.n_tiles, d.beats_per_tile):
        raise SystemModelError(f"the layer is {layer.m_tiles}x{layer.n_tiles} tiles of "
                           f"{layer.beats_per_tile} beats, the descriptor says "
                           f"{d.m_tiles}x{d.n_tiles} of {d.beats_per_tile}")
    out = []
    if d.load_w:
        out.append((d.w_addr, b"".join(_beat_bytes(b, shape.wbeat_words, shape.word_bytes)
                                       for beats in layer.weight_tiles for b in beats)))
    if d.load_a:
        out.append((d.a_addr, b"".join(_beat_bytes(b, shape.abeat_words, shape.word_bytes)
                                       for beats in layer.act_tiles for b in beats)))
    if d.requant:
        entries = np.asarray(table if table is not None else [], np.int64).reshape(-1)
        if len(entries) != d.m_tiles * shape.rows:
            raise SystemModelError(f"the table needs {d.m_tiles * shape.rows} entries (one per "
                               f"output row), not {len(entries)}")
        data = b"".join(int(e).to_bytes(ENTRY_BYTES, "little") for e in entries)
        out.append((d.q_addr, data.ljust(d.table_bytes(shape), b"\0")))
    return out


def pack_output_tile(shape: SystemShape, values, overflow: bool, requant: bool) -> bytes:
    """An output tile's bytes in DRAM (its ``tile_words`` words): values (rows, cols)
    row-major from bit 0, ``acc_width`` bits each (8 with ``requant``), then overflow."""
    values = np.asarray(values)
    if values.shape != (shape.rows, shape.cols):
        raise SystemModelError(f"a tile is {shape.rows}x{shape.cols}, not {values.shape}")
    bits = OUTPUT_BITS if requant else shape.acc_width
    mask, word = (1 << bits) - 1, 0
    for i, v in enumerate(values.reshape(-1)):
        word |= (int(v) & mask) << (i * bits)
    word |= int(bool(overflow)) << (values.size * bits)
    return word.to_bytes(shape.tile_words(requant) * shape.word_bytes, "little")


def unpack_output_tile(shape: SystemShape, data: bytes,
                       requant: bool) -> tuple[np.ndarray, bool]:
    """(values (rows, cols), overflow) of an output tile's bytes: int8 values with
    ``requant``, else accumulators (signed as the build's; int64, or Python ints in an
    object array above 63 bits)."""
    if len(data) != shape.tile_words(requant) * shape.word_bytes:
        raise SystemModelError(f"an output tile is {shape.tile_words(requant) * shape.word_bytes} "
                           f"bytes, not {len(data)}")
    word = int.from_bytes(data, "little")
    bits = OUTPUT_BITS if requant else shape.acc_width
    is_signed = requant or shape.signed
    n = shape.rows * shape.cols
    vals = []
    for i in range(n):
        v = (word >> (i * bits)) & ((1 << bits) - 1)
        vals.append(v - (1 << bits) if is_signed and v >> (bits - 1) else v)
    dtype = np.int64 if bits <= 63 else object
    return np.array(vals, dtype).reshape(shape.rows, shape.cols), bool(word >> (n * bits) & 1)


def read_outputs(shape: SystemShape, d: Descriptor, dram) -> tuple[np.ndarray, np.ndarray]:
    """A finished layer's output from DRAM: Z (M_TILES*rows, N_TILES*cols) and the
    overflow flag of each tile (M_TILES, N_TILES). ``dram``: ``read(address, length)``."""
    tiles = {(nt, mt): unpack_output_tile(
        shape, dram.read(output_tile_address(shape, d, nt, mt),
                         shape.tile_words(d.requant) * shape.word_bytes), d.requant)
        for nt in range(d.n_tiles) for mt in range(d.m_tiles)}
    dtype = object if any(z.dtype == object for z, _ in tiles.values()) else np.int64
    Z = np.zeros((d.m_tiles * shape.rows, d.n_tiles * shape.cols), dtype)
    over = np.zeros((d.m_tiles, d.n_tiles), bool)
    for (nt, mt), (z, flag) in tiles.items():
        Z[mt * shape.rows:(mt + 1) * shape.rows, nt * shape.cols:(nt + 1) * shape.cols] = z
        over[mt, nt] = flag
    return Z, over


# ---- the DMA's order and a layer's counts ------------------------------------------------------

@dataclass(frozen=True)
class Transfer:
    """A run of consecutive DMA words: ``region`` 'q' (the table), 'a' (n-tile ``index``),
    'w' (m-tile ``index``) or 'z' (output tile ``index``, t = nt * M_TILES + mt). The DMA
    cuts each into bursts (``max_burst`` beats, never across 4 KiB: ``hss.dram.bursts``)."""
    region: str
    index: int
    address: int
    words: int


def read_order(shape: SystemShape, d: Descriptor) -> list[Transfer]:
    """What the DMA reads, in order: the table (``REQUANT``), the activations of n-tile 0
    (``LOAD_A``), every m-tile's weights (``LOAD_W``), then the activations of n-tiles
    1 and on: the engine's first tile needs the table, its n-tile and every weight."""
    out = []
    if d.requant:
        out.append(Transfer("q", 0, d.q_addr, shape.table_words(d.m_tiles)))
    acts = [Transfer("a", nt, act_beat_address(shape, d, nt, 0),
                     d.beats_per_tile * shape.abeat_words) for nt in range(d.n_tiles)] \
        if d.load_a else []
    out += acts[:1]
    if d.load_w:
        out += [Transfer("w", mt, weight_beat_address(shape, d, mt, 0),
                         d.beats_per_tile * shape.wbeat_words) for mt in range(d.m_tiles)]
    return out + acts[1:]


def write_order(shape: SystemShape, d: Descriptor) -> list[Transfer]:
    """What the DMA writes, in order: each output tile as the engine finishes it."""
    return [Transfer("z", nt * d.m_tiles + mt, output_tile_address(shape, d, nt, mt),
                     shape.tile_words(d.requant))
            for nt in range(d.n_tiles) for mt in range(d.m_tiles)]


@dataclass(frozen=True)
class LayerCounts:
    """What a layer costs: the performance counters of docs/system.md (buffer reads and
    writes in each buffer's words: a beat, a tile, a table entry; with rank 1 at the fetch
    an abuf bank word), and the bounds.

    ``cycles_lower_bound`` is the roofline: ``max(compute_cycles, dram_cycles)``, the PE
    steps plus the engine's latency against the DRAM bytes at one DMA word a cycle (reads
    and writes share the DRAM, as a DDR bus does, though AXI's channels are separate).
    """
    dram_read_bytes: int
    dram_write_bytes: int
    wbuf_reads: int
    wbuf_writes: int
    abuf_reads: int
    abuf_writes: int
    obuf_reads: int
    obuf_writes: int
    qbuf_reads: int
    qbuf_writes: int
    steps: int
    compute_cycles: int
    dram_cycles: int

    @property
    def dram_bytes(self) -> int:
        return self.dram_read_bytes + self.dram_write_bytes

    @property
    def cycles_lower_bound(self) -> int:
        return max(self.compute_cycles, self.dram_cycles)

    def __add__(self, other: LayerCounts) -> LayerCounts:
        """Two layers (or parts) run one after the other: counts add (so do the bounds:
        the controller runs one descriptor at a time)."""
        return LayerCounts(*(getattr(self, f.name) + getattr(other, f.name)
                             for f in fields(self)))


_NOTHING = LayerCounts(*[0] * 13)


def layer_counts(shape: SystemShape, d: Descriptor,
                 steps_per_tile: int | None = None) -> LayerCounts:
    """The counts of a layer START runs (``check`` NONE: else nothing moves, all zero).
    ``steps_per_tile``: PE steps of a tile (``PackedLayer.steps_per_tile``; default one a
    beat, as in every mode whose group fits the multipliers)."""
    if d.check(shape) != ErrorCode.NONE:
        return _NOTHING
    steps_per_tile = d.beats_per_tile if steps_per_tile is None else \
        _check_int("steps_per_tile", steps_per_tile, d.beats_per_tile)
    read = d.table_bytes(shape) + d.acts_bytes(shape) * d.load_a + \
        d.weights_bytes(shape) * d.load_w
    write = d.output_bytes(shape)
    beats = d.tiles * d.beats_per_tile
    table_rows = d.m_tiles * shape.rows if d.requant else 0
    steps = d.tiles * steps_per_tile
    return LayerCounts(
        dram_read_bytes=read, dram_write_bytes=write,
        wbuf_reads=beats, wbuf_writes=d.m_tiles * d.beats_per_tile * d.load_w,
        abuf_reads=beats * shape.banks_read,
        abuf_writes=d.n_tiles * d.beats_per_tile * d.load_a * shape.act_banks,
        obuf_reads=d.tiles, obuf_writes=d.tiles,
        qbuf_reads=d.tiles * shape.rows if d.requant else 0, qbuf_writes=table_rows,
        steps=steps, compute_cycles=steps + shape.latency,
        dram_cycles=-(-(read + write) // shape.word_bytes))


def minimum_dram_bytes(shape: SystemShape, m_tiles: int, n_tiles: int, beats_per_tile: int,
                       requant: bool = False) -> int:
    """DRAM bytes of a layer that moves each operand once: its weights, activations,
    output tiles and (with ``requant``) table. A layer that fits the buffers reaches it."""
    d = Descriptor(m_tiles, n_tiles, beats_per_tile, requant=requant)
    return d.weights_bytes(shape) + d.acts_bytes(shape) + d.output_bytes(shape) + \
        d.table_bytes(shape)


# ---- the layer ---------------------------------------------------------------------------------

@dataclass
class Buffers:
    """What the on-chip buffers hold between layers (``LOAD_W = 0`` computes on what an
    earlier layer left): a beat per word of ``wbuf`` and ``abuf``, an entry per word of
    ``qbuf``; zero at reset, as Amaranth memories start."""
    wbuf: list[int]
    abuf: list[int]
    qbuf: list[int]

    @classmethod
    def at_reset(cls, shape: SystemShape) -> Buffers:
        return cls([0] * shape.wbuf_depth, [0] * shape.abuf_depth, [0] * shape.qbuf_depth)


@dataclass(frozen=True)
class LayerRun:
    """What ``run_layer`` did: the error code (NONE: the layer ran), and the counts when it
    ran (``None`` after an error: refused layers move nothing, failed ones are
    unspecified)."""
    error: ErrorCode
    counts: LayerCounts | None


def _read_beats(dram, address: int, count: int, words: int, word_bytes: int,
                bits: int) -> list[int]:
    size = words * word_bytes
    data = dram.read(address, count * size)
    mask = (1 << bits) - 1
    return [int.from_bytes(data[i * size:(i + 1) * size], "little") & mask
            for i in range(count)]


def _entry(entry: int) -> tuple[int, int]:
    """(scale, shift) as the requantizer reads an entry: bits 15:0 and 21:16."""
    scale = entry & ((1 << SCALE_BITS) - 1)
    shift = (entry >> SCALE_BITS) & ((1 << SHIFT_BITS) - 1)
    return scale - (1 << SCALE_BITS) if scale >> (SCALE_BITS - 1) else scale, shift


def run_layer(shape: SystemShape, fmt: StreamFormat, d: Descriptor, dram,
              buffers: Buffers) -> LayerRun:
    """Run one descriptor as hss_system does: check it (a refusal moves nothing), load what
    its flags say into ``buffers`` (kept for the next layer), compute every tile (nt, mt)
    from the buffered beats (``hss.beats``: the engine's arithmetic, accumulators of
    ``acc_width`` bits, ``overflow`` past the steps they are sized for), requantize where
    asked and write each tile to DRAM. ``dram``: ``read(address, length) -> bytes`` and
    ``write(address, data)`` (``hss.dram.DRAM``). ``fmt`` must be the build's.

    Raises ``RequantError`` for a table entry whose shift is above 47 (outside the
    contract: the driver packs entries with ``hss.requant.pack_entry``)."""
    if (fmt.rows, fmt.cols, fmt.weight_beat_bits, fmt.act_beat_bits, fmt.acc_width,
            len(fmt.modes), *fetch_banks(fmt)) != \
            (shape.rows, shape.cols, shape.weight_beat_bits, shape.act_beat_bits,
             shape.acc_width, shape.num_modes, shape.act_banks, shape.banks_read):
        raise SystemModelError("the stream format is not the one of this system's engine")
    error = d.check(shape)
    if error != ErrorCode.NONE:
        return LayerRun(error, None)
    bpt, B = d.beats_per_tile, shape.word_bytes
    if d.requant:
        entries = dram.read(d.q_addr, d.m_tiles * shape.rows * ENTRY_BYTES)
        for row in range(d.m_tiles * shape.rows):
            buffers.qbuf[row] = int.from_bytes(entries[4 * row:4 * row + 4], "little")
    if d.load_a:
        beats = _read_beats(dram, d.a_addr, d.n_tiles * bpt, shape.abeat_words, B,
                            shape.act_beat_bits)
        buffers.abuf[d.a_base:d.a_base + len(beats)] = beats
    if d.load_w:
        beats = _read_beats(dram, d.w_addr, d.m_tiles * bpt, shape.wbeat_words, B,
                            shape.weight_beat_bits)
        buffers.wbuf[d.w_base:d.w_base + len(beats)] = beats
    # Each m-tile's weights are decoded once and multiplied with the beats of every n-tile
    # at once (the n-tiles side by side as columns): the same sums as tile by tile, in
    # the order hss_system writes them, n_tiles times fewer beat products.
    acts = fmt.decode_activations(buffers.abuf[d.a_base:d.a_base + d.n_tiles * bpt])
    cols = shape.cols
    side_by_side = [np.concatenate([acts[nt * bpt + b] for nt in range(d.n_tiles)])
                    for b in range(bpt)]                 # per beat: (n_tiles * cols, ...)
    sums, tile_steps = [], []
    for mt in range(d.m_tiles):
        weights = fmt.decode_weights(buffers.wbuf[d.w_base + mt * bpt:
                                                  d.w_base + (mt + 1) * bpt])
        if any(w.mode >= len(fmt.modes) for w in weights):
            sums.append(None)          # BAD_MODE where the controller meets it, at nt 0
            tile_steps.append(0)
            continue
        sums.append(fmt.wrap(sum(fmt.beat_product(w, a)
                                 for w, a in zip(weights, side_by_side))))
        tile_steps.append(sum(fmt.steps_per_beat(w.mode) for w in weights))
    steps = 0
    for nt, mt in tile_order(d.m_tiles, d.n_tiles, shape.m_chunk):
        if sums[mt] is None:
            return LayerRun(ErrorCode.BAD_MODE, None)
        z = sums[mt][:, nt * cols:(nt + 1) * cols]
        steps += tile_steps[mt]
        overflow = tile_steps[mt] > fmt.max_steps
        if d.requant:
            rows = [_entry(buffers.qbuf[mt * shape.rows + i]) for i in range(shape.rows)]
            try:
                z = requantize(z, [a for a, _ in rows], [s for _, s in rows], d.relu)
            except RequantError as e:
                raise RequantError(f"m-tile {mt}: {e}") from None
        dram.write(output_tile_address(shape, d, nt, mt),
                   pack_output_tile(shape, z, overflow, d.requant))
    counts = layer_counts(shape, d)      # the steps as the beats' modes made them
    return LayerRun(ErrorCode.NONE, replace(counts, steps=steps,
                                            compute_cycles=steps + shape.latency))


# ---- the driver's split ----------------------------------------------------------------------

@dataclass(frozen=True)
class LayerPart:
    """One descriptor of a split layer: m-tiles ``mt0 ..`` and n-tiles ``nt0 ..`` of the
    layer, what it loads, and where its outputs start in the layer's output region
    (``z_tile0`` tiles in). Its tiles leave in its own order, ``nt * m_tiles + mt``."""
    mt0: int
    m_tiles: int
    nt0: int
    n_tiles: int
    load_w: bool
    load_a: bool
    z_tile0: int

    def output_tiles(self) -> list[tuple[int, int]]:
        """The layer's (nt, mt) of each tile this part writes, in DRAM order."""
        return [(self.nt0 + nt, self.mt0 + mt) for nt in range(self.n_tiles)
                for mt in range(self.m_tiles)]

    def descriptor(self, shape: SystemShape, layer: Descriptor) -> Descriptor:
        """This part's descriptor, from the whole layer's (its addresses, flags, modes):
        sub-regions of the layer's one DRAM image, buffers from word 0."""
        return replace(
            layer, m_tiles=self.m_tiles, n_tiles=self.n_tiles, w_base=0, a_base=0,
            w_addr=layer.w_addr + self.mt0 * layer.beats_per_tile * shape.wbeat_words
            * shape.word_bytes,
            a_addr=layer.a_addr + self.nt0 * layer.beats_per_tile * shape.abeat_words
            * shape.word_bytes,
            z_addr=layer.z_addr + self.z_tile0 * shape.tile_words(layer.requant)
            * shape.word_bytes,
            q_addr=layer.q_addr + self.mt0 * shape.rows * ENTRY_BYTES,
            load_w=self.load_w, load_a=self.load_a)


@dataclass(frozen=True)
class LayerSplit:
    """A layer as descriptors run one after the other, and what they move."""
    parts: tuple[LayerPart, ...]
    order: str                     # "weights resident" or "activations resident"
    counts: LayerCounts
    minimum_dram_bytes: int

    def output_tiles(self) -> list[tuple[int, int]]:
        """The layer's (nt, mt) of each tile in its output region, in order."""
        return [t for part in self.parts for t in part.output_tiles()]


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(size, total - start)) for start in range(0, total, size)]


def _snake(outer, inner):
    """Pairs of every outer and inner chunk, the inner order reversed every other outer
    chunk, so the chunk an outer step ends with is resident for the next one."""
    for i, o in enumerate(outer):
        for n in (inner if i % 2 == 0 else inner[::-1]):
            yield o, n


def split_layer(m_tiles: int, n_tiles: int, beats_per_tile: int, shape: SystemShape, *,
                requant: bool = False, steps_per_tile: int | None = None) -> LayerSplit:
    """Split a layer too large for the buffers into descriptors that fit, moving the fewest
    DRAM bytes.

    Why the driver and not the hardware: the driver knows the layer and the buffers when it
    runs, can weigh every split by its traffic in microseconds, and lays the DRAM image out
    once for all parts (each part's regions are sub-regions of the layer's); the controller
    stays one loop nest, small and fully checkable.

    How: chunks as large as the buffers allow (``wbuf_depth // BPT`` m-tiles, the table's
    ``qbuf_depth // rows`` too with ``requant``, ``abuf_depth // BPT`` n-tiles); two loop
    orders, weights resident (m-chunks outer: each m-chunk's weights loaded once, the
    activations streamed past them; where all weights fit, this is docs/system.md's N-split
    with ``LOAD_W = 0`` after the first part) and activations resident (n-chunks outer),
    each in a snake order so a chunk is not reloaded across the turn; the one with the
    fewest DRAM bytes wins (ties: fewer parts, then weights resident). A layer that fits is
    one part, at the minimum traffic. The table is read by every part (REQUANT always
    loads it); m-chunks are cut so that each part's table starts on a DMA word.

    ``steps_per_tile``: the layer's PE steps per tile (``PackedLayer.steps_per_tile``;
    default one a beat), for the counts' steps and compute bound.

    Raises ``SystemModelError`` where no split exists: one m-tile's weights or one n-tile's
    activations larger than their buffer (K must be split, which the engine cannot sum
    across descriptors), or the table's alignment wanting more m-tiles than fit.
    """
    m_tiles = _check_int("m_tiles", m_tiles, 1)
    n_tiles = _check_int("n_tiles", n_tiles, 1)
    bpt = _check_int("beats_per_tile", beats_per_tile, 1)
    w_fit, a_fit = shape.wbuf_depth // bpt, shape.abuf_depth // bpt
    if not w_fit:
        raise SystemModelError(f"one m-tile's {bpt} weights beats do not fit wbuf "
                           f"({shape.wbuf_depth} words): K needs splitting")
    if not a_fit:
        raise SystemModelError(f"one n-tile's {bpt} activations beats do not fit abuf "
                           f"({shape.abuf_depth} words): K needs splitting")
    m_chunk = min(m_tiles, w_fit)
    if requant:
        if shape.qbuf_depth < shape.rows:
            raise SystemModelError(f"qbuf ({shape.qbuf_depth} entries) cannot hold one m-tile's "
                               f"{shape.rows} table entries")
        m_chunk = min(m_chunk, shape.qbuf_depth // shape.rows)
        if m_chunk < m_tiles:   # each part's table on a word: a multiple of `quantum`
            quantum = shape.word_bytes // math.gcd(shape.word_bytes, ENTRY_BYTES * shape.rows)
            m_chunk -= m_chunk % quantum
            if not m_chunk:
                raise SystemModelError(f"an m-chunk's table must start on a DMA word: "
                                   f"{quantum} m-tiles, more than the buffers hold")
    m_parts = _chunks(m_tiles, m_chunk)
    n_parts = _chunks(n_tiles, min(n_tiles, a_fit))
    layer = Descriptor(m_tiles, n_tiles, bpt, requant=requant)
    best = None
    for rank, (order, pairs) in enumerate([
            ("weights resident", _snake(m_parts, n_parts)),
            ("activations resident", ((m, n) for n, m in _snake(n_parts, m_parts)))]):
        parts, counts, resident, z_tile = [], _NOTHING, (None, None), 0
        for m, n in pairs:
            part = LayerPart(m[0], m[1], n[0], n[1], resident[0] != m, resident[1] != n,
                             z_tile)
            resident, z_tile = (m, n), z_tile + m[1] * n[1]
            counts = counts + layer_counts(shape, part.descriptor(shape, layer),
                                           steps_per_tile)
            parts.append(part)
        key = (counts.dram_bytes, len(parts), rank)
        if best is None or key < best[0]:
            best = (key, LayerSplit(tuple(parts), order, counts,
                                    minimum_dram_bytes(shape, m_tiles, n_tiles, bpt, requant)))
    return best[1]
