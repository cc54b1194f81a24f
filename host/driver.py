"""The host driver of hss_system: a layer in, its Z out, through the registers and DRAM.

``Driver(bus, fmt)`` runs layers on one hss_system. ``bus`` is how the host reaches it:
``read32``/``write32`` at a register's byte offset, ``write_memory``/``read_memory`` of
the DRAM the system's AXI4 master shares (``Bus``). Every method of the driver is a
coroutine, so that the same code runs against a simulated system (cocotb: the bus awaits
cocotbext-axi's ``AxiLiteMaster`` and reads ``AxiRam``) and against a model or a device
whose bus answers at once (``run_now`` drives those without an event loop). ``fmt`` is the
build's stream format (``hss.system.system_format(rtl/manifest.json)``: the engine's
``hss.beats.StreamFormat``, or with rank 1 at the fetch its ``hss.fetchbeats.FetchFormat``):
the driver packs beats with ``hss``, never with ``hdl``.

A layer (``run_layer``): pack the segments (``hss.beats``), split it into descriptors that
fit the buffers (``hss.system.split_layer``: the fewest DRAM bytes), lay its DRAM image
out once (weights, activations, requantization table; output region), then for each part
program the descriptor, START, wait for DONE or ERROR (polling STATUS, or the interrupt),
add the counters; read the output tiles back and assemble Z. An error is a ``DriverError``
naming the code; the driver CLEARs it, so the next layer runs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hss import requant as hss_requant
from hss import system as hss_system
from hss.beats import StreamFormat
from hss.fetchbeats import FetchFormat

from . import regmap as rm

__all__ = ["Bus", "Driver", "DriverError", "LayerTimeout", "Build", "LayerResult", "run_now",
           "COUNTERS"]

#: The performance counter registers, as ``LayerResult.counters`` names them.
COUNTERS = {"cycles": rm.CYCLES, "steps": rm.STEPS, "stall_weights": rm.STALL_WEIGHTS,
            "stall_acts": rm.STALL_ACTS, "stall_output": rm.STALL_OUTPUT,
            "dram_read_bytes": rm.DRAM_READ_BYTES, "dram_write_bytes": rm.DRAM_WRITE_BYTES,
            "wbuf_reads": rm.WBUF_READS, "wbuf_writes": rm.WBUF_WRITES,
            "abuf_reads": rm.ABUF_READS, "abuf_writes": rm.ABUF_WRITES,
            "obuf_reads": rm.OBUF_READS, "obuf_writes": rm.OBUF_WRITES,
            "qbuf_reads": rm.QBUF_READS, "qbuf_writes": rm.QBUF_WRITES}
#: DRAM regions start on a 4 KiB page: no burst of theirs is split by the region's start.
REGION_ALIGN = 4096


class Bus(Protocol):
    """How the host reaches one hss_system: its registers and the DRAM it shares."""

    async def read32(self, offset: int) -> int: ...

    async def write32(self, offset: int, value: int) -> None: ...

    async def write_memory(self, address: int, data: bytes) -> None: ...

    async def read_memory(self, address: int, length: int) -> bytes: ...


def run_now(coroutine):
    """The result of a driver coroutine on a bus that answers at once (a model, a memory
    mapped device): it never suspends, so no event loop is needed."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the bus suspended: run the driver in its event loop (cocotb, asyncio)")


class DriverError(RuntimeError):
    """hss_system refused or ended a layer: ``code`` (``host.regmap.ErrorCode``), one line."""

    def __init__(self, code: int, part: int, parts: int):
        self.code = rm.ErrorCode(code)
        super().__init__(f"hss_system ended layer part {part + 1} of {parts} with error "
                         f"{self.code.name} ({int(self.code)})")


class LayerTimeout(RuntimeError):
    """STATUS showed neither DONE nor ERROR within the poll limit."""


@dataclass(frozen=True)
class Build:
    """What the registers say of the build (``CONFIG*``, depths, words per beat)."""
    rows: int
    cols: int
    value_width: int
    acc_width: int
    word_bytes: int
    num_modes: int
    tile_beats: int
    requant: bool
    wbuf_depth: int
    abuf_depth: int
    qbuf_depth: int
    wbeat_words: int
    abeat_words: int
    tile_words: int
    tile_words_requant: int
    fetch: bool = False


@dataclass
class LayerResult:
    """A layer's Z (M x N: int64 accumulators, or int8 with requantization), the overflow
    flag of each tile (M_TILES x N_TILES), the counters summed over its descriptors, and
    how it was split (``hss.system.LayerSplit``: its parts, order and expected counts)."""
    Z: np.ndarray
    overflow: np.ndarray
    counters: dict
    split: hss_system.LayerSplit
    descriptors: list = field(default_factory=list)

    @property
    def dram_bytes(self) -> int:
        return self.counters["dram_read_bytes"] + self.counters["dram_write_bytes"]


class Driver:
    """Layers on one hss_system (``bus``), for the build whose stream format is ``fmt``.

    ``dram_base``/``dram_bytes``: the part of the shared DRAM the driver may lay images out
    in (a bump allocator, reset by ``reset_memory``); ``poll_limit``: STATUS reads before a
    layer is declared hung; ``wait``: an optional coroutine function that returns when the
    interrupt rises (polling is used without it)."""

    def __init__(self, bus: Bus, fmt: StreamFormat | FetchFormat, *, dram_base: int = 0x1000_0000,
                 dram_bytes: int = 0x1000_0000, poll_limit: int = 1_000_000, wait=None):
        self.bus, self.fmt = bus, fmt
        self.dram_base, self.dram_bytes = dram_base, dram_bytes
        self.poll_limit, self.wait = poll_limit, wait
        self.build: Build | None = None
        self.shape: hss_system.SystemShape | None = None
        self._next = dram_base

    # -- the build -------------------------------------------------------------------------
    async def probe(self) -> Build:
        """Read ID, VERSION and the build's registers; check them against ``fmt``."""
        ident = await self.bus.read32(rm.ID.OFFSET)
        if ident != rm.ID_VALUE:
            raise RuntimeError(f"no hss_system here: ID reads {ident:#010x}, not "
                               f"{rm.ID_VALUE:#010x}")
        version = await self.bus.read32(rm.VERSION.OFFSET)
        major = rm.VERSION.MAJOR.get(version)
        if major != rm.VERSION_MAJOR:
            raise RuntimeError(f"hss_system register map version {major}, this driver knows "
                               f"{rm.VERSION_MAJOR}")
        c0, c1 = await self.bus.read32(rm.CONFIG0.OFFSET), await self.bus.read32(rm.CONFIG1.OFFSET)
        tiles = await self.bus.read32(rm.TILE_WORDS.OFFSET)
        b = Build(
            rows=rm.CONFIG0.ROWS.get(c0), cols=rm.CONFIG0.COLS.get(c0),
            value_width=rm.CONFIG0.VALUE_WIDTH.get(c0), acc_width=rm.CONFIG0.ACC_WIDTH.get(c0),
            word_bytes=rm.CONFIG1.WORD_BYTES.get(c1), num_modes=rm.CONFIG1.NUM_MODES.get(c1),
            tile_beats=rm.CONFIG1.TILE_BEATS.get(c1), requant=bool(rm.CONFIG1.REQUANT.get(c1)),
            wbuf_depth=await self.bus.read32(rm.WBUF_DEPTH.OFFSET),
            abuf_depth=await self.bus.read32(rm.ABUF_DEPTH.OFFSET),
            qbuf_depth=await self.bus.read32(rm.QBUF_DEPTH.OFFSET),
            wbeat_words=await self.bus.read32(rm.WBEAT_WORDS.OFFSET),
            abeat_words=await self.bus.read32(rm.ABEAT_WORDS.OFFSET),
            tile_words=rm.TILE_WORDS.RAW.get(tiles),
            tile_words_requant=rm.TILE_WORDS.REQUANT.get(tiles),
            fetch=bool(rm.CONFIG1.FETCH.get(c1)))
        f = self.fmt
        if b.fetch != isinstance(f, FetchFormat):
            raise RuntimeError(
                "the system selects rank 1 at the fetch: pass the driver "
                "hss.system.system_format(manifest), a FetchFormat" if b.fetch else
                "the system selects rank 1 in the PEs: pass the engine's StreamFormat, not "
                "a FetchFormat")
        if (b.rows, b.cols, b.value_width, b.acc_width, b.num_modes) != \
                (f.rows, f.cols, f.width, f.acc_width, len(f.modes)):
            raise RuntimeError(f"the system is {b.rows}x{b.cols} int{b.value_width}, "
                               f"{b.acc_width}-bit accumulators, {b.num_modes} modes; the "
                               f"manifest says {f.rows}x{f.cols} int{f.width}, {f.acc_width}, "
                               f"{len(f.modes)}")
        shape = hss_system.SystemShape(
            f.rows, f.cols, f.weight_beat_bits, f.act_beat_bits, f.acc_width, f.signed,
            len(f.modes), b.wbuf_depth, b.abuf_depth, b.word_bytes * 8, 2, b.qbuf_depth,
            **dict(zip(("act_banks", "banks_read"), hss_system.fetch_banks(f))))
        if (shape.wbeat_words, shape.abeat_words, shape.tile_words(False)) != \
                (b.wbeat_words, b.abeat_words, b.tile_words):
            raise RuntimeError("the system's words per beat disagree with the manifest's "
                               "stream format")
        self.build, self.shape = b, shape
        return b

    # -- DRAM ------------------------------------------------------------------------------
    def reset_memory(self) -> None:
        """Forget every image laid out so far (the next layer starts at ``dram_base``)."""
        self._next = self.dram_base

    @property
    def used_bytes(self) -> int:
        """Bytes of DRAM from ``dram_base`` that the images laid out so far reach."""
        return self._next - self.dram_base

    def _allocate(self, size: int) -> int:
        address = -(-self._next // REGION_ALIGN) * REGION_ALIGN
        if address + size > self.dram_base + self.dram_bytes:
            raise MemoryError(f"{size:,} more bytes do not fit the driver's "
                              f"{self.dram_bytes:,} of DRAM: reset_memory() between layers")
        self._next = address + max(size, 1)
        return address

    # -- a layer ---------------------------------------------------------------------------
    async def run_layer(self, segments, A, *, scales=None, shifts=None, relu=False
                        ) -> LayerResult:
        """``Z = sum_t W_t @ A`` (``segments`` [(W_t, mode_t)]; one pair for a plain layer)
        on the system; with ``scales``/``shifts`` (one per row of W, ``hss.requant``) the
        output is requantized to int8 on chip (``relu`` before saturation)."""
        if self.shape is None:
            await self.probe()
        shape, fmt = self.shape, self.fmt
        packed = fmt.pack_layer(segments, A)
        quant = scales is not None
        if quant != (shifts is not None):
            raise ValueError("scales and shifts go together (one of each per output row)")
        if quant and not self.build.requant:
            raise ValueError("this build has no requantization (CONFIG1.REQUANT is 0)")
        split = hss_system.split_layer(packed.m_tiles, packed.n_tiles, packed.beats_per_tile,
                                       shape, requant=quant,
                                       steps_per_tile=packed.steps_per_tile)
        probe = hss_system.Descriptor.for_layer(packed, requant=quant, relu=relu)
        addresses = {name: self._allocate(size) for name, size in (
            ("w_addr", probe.weights_bytes(shape)), ("a_addr", probe.acts_bytes(shape)),
            ("z_addr", probe.output_bytes(shape)), ("q_addr", probe.table_bytes(shape)))}
        layer = dataclasses.replace(probe, **addresses)
        table = None
        if quant:
            rows = packed.m_tiles * shape.rows
            s = np.zeros(rows, np.int64)
            h = np.zeros(rows, np.int64)
            s[:len(scales)], h[:len(shifts)] = scales, shifts
            table = hss_requant.pack_table(s, h)
        for address, data in hss_system.layer_image(shape, layer, packed, table):
            await self.bus.write_memory(address, data)
        counters = dict.fromkeys(COUNTERS, 0)
        descriptors = []
        for i, part in enumerate(split.parts):
            d = part.descriptor(shape, layer)
            descriptors.append(d)
            await self.program(d)
            await self._start_and_wait(i, len(split.parts))
            for name, value in (await self.counters()).items():
                counters[name] += value
        Z, overflow = await self._read_output(layer, split, packed)
        return LayerResult(Z, overflow, counters, split, descriptors)

    async def program(self, d: hss_system.Descriptor) -> None:
        """Write a descriptor's registers."""
        flags = (rm.FLAGS.LOAD_W.put(int(d.load_w)) | rm.FLAGS.LOAD_A.put(int(d.load_a))
                 | rm.FLAGS.REQUANT.put(int(d.requant)) | rm.FLAGS.RELU.put(int(d.relu)))
        for reg, value in ((rm.W_ADDR, d.w_addr), (rm.A_ADDR, d.a_addr), (rm.Z_ADDR, d.z_addr),
                           (rm.Q_ADDR, d.q_addr), (rm.M_TILES, d.m_tiles),
                           (rm.N_TILES, d.n_tiles), (rm.BEATS_PER_TILE, d.beats_per_tile),
                           (rm.W_BASE, d.w_base), (rm.A_BASE, d.a_base), (rm.FLAGS, flags),
                           (rm.MODES, d.modes)):
            await self.bus.write32(reg.OFFSET, value)

    async def _start_and_wait(self, part: int, parts: int) -> None:
        await self.bus.write32(rm.CTRL.OFFSET, rm.CTRL.START.put(1))
        if self.wait is not None:
            await self.wait()
        status = await self._wait_status()
        if rm.STATUS.ERROR.get(status):
            code = rm.STATUS.ERROR_CODE.get(status)
            await self.clear()
            raise DriverError(code, part, parts)
        if rm.STATUS.DONE.get(status):
            await self.bus.write32(rm.INT_STATUS.OFFSET,
                                   rm.INT_STATUS.DONE.put(1) | rm.INT_STATUS.ERROR.put(1))
            return
        raise LayerTimeout(f"hss_system shows neither DONE nor ERROR after "
                            f"{self.poll_limit:,} reads of STATUS")

    async def _wait_status(self) -> int:
        """STATUS once it shows DONE or ERROR (or the last read, after ``poll_limit``). A
        bus with ``poll(offset, mask, limit)`` waits itself: a recorder turns the wait into
        one line of a register program (``host.script``)."""
        mask = rm.STATUS.DONE.put(1) | rm.STATUS.ERROR.put(1)
        poll = getattr(self.bus, "poll", None)
        if poll is not None:
            return await poll(rm.STATUS.OFFSET, mask, self.poll_limit)
        status = 0
        for _ in range(self.poll_limit):
            status = await self.bus.read32(rm.STATUS.OFFSET)
            if status & mask:
                break
        return status

    async def clear(self) -> None:
        """CLEAR the controller's error (and the interrupt status): the next START runs."""
        await self.bus.write32(rm.CTRL.OFFSET, rm.CTRL.CLEAR.put(1))
        await self.bus.write32(rm.INT_STATUS.OFFSET,
                               rm.INT_STATUS.DONE.put(1) | rm.INT_STATUS.ERROR.put(1))

    async def counters(self) -> dict:
        """The performance counters of the last layer."""
        return {name: await self.bus.read32(reg.OFFSET) for name, reg in COUNTERS.items()}

    async def _read_output(self, layer, split, packed):
        shape = self.shape
        size = shape.tile_words(layer.requant) * shape.word_bytes
        data = await self.bus.read_memory(layer.z_addr, layer.output_bytes(shape))
        rows, cols = shape.rows, shape.cols
        Z = None
        overflow = np.zeros((packed.m_tiles, packed.n_tiles), bool)
        for i, (nt, mt) in enumerate(split.output_tiles()):
            z, flag = hss_system.unpack_output_tile(shape, data[i * size:(i + 1) * size],
                                                    layer.requant)
            if Z is None:
                Z = np.zeros((packed.m_tiles * rows, packed.n_tiles * cols), z.dtype)
            Z[mt * rows:(mt + 1) * rows, nt * cols:(nt + 1) * cols] = z
            overflow[mt, nt] = flag
        return Z[:packed.m, :packed.n], overflow
