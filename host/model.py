"""hss_system as the host sees it, in Python: its registers over the golden model.

``SystemModel(shape, fmt, build)`` is a ``host.driver.Bus`` whose registers behave as
regmap/hss_system.rdl says (the build's CONFIG registers, the descriptor, CTRL's START and
CLEAR, STATUS, INT_STATUS written 1 to clear, the counters) and whose START runs the layer
with ``hss.system.run_layer`` on its own DRAM (``hss.dram.DRAM``) and buffers, which stay
between layers as the hardware's do. It answers at once, so the driver runs on it with
``host.driver.run_now``: a test of the driver without RTL, and the reference the RTL's
runs are compared with.
"""
from __future__ import annotations

from hss import system as hss_system
from hss.beats import StreamFormat
from hss.dram import DRAM

from . import regmap as rm
from .driver import COUNTERS

__all__ = ["SystemModel"]

_COUNTS = {"steps": "steps", "dram_read_bytes": "dram_read_bytes",
           "dram_write_bytes": "dram_write_bytes", "wbuf_reads": "wbuf_reads",
           "wbuf_writes": "wbuf_writes", "abuf_reads": "abuf_reads",
           "abuf_writes": "abuf_writes", "obuf_reads": "obuf_reads",
           "obuf_writes": "obuf_writes", "qbuf_reads": "qbuf_reads",
           "qbuf_writes": "qbuf_writes"}


class SystemModel:
    """The registers and DRAM of one hss_system, the layers run by the golden model."""

    def __init__(self, shape: hss_system.SystemShape, fmt: StreamFormat):
        self.shape, self.fmt = shape, fmt
        self.dram = DRAM()
        self.buffers = hss_system.Buffers.at_reset(shape)
        self.regs: dict[int, int] = {}
        self.status = 0
        self.int_status = 0
        s = shape
        self._constants = {
            rm.ID.OFFSET: rm.ID_VALUE,
            rm.VERSION.OFFSET: rm.VERSION.MAJOR.put(rm.VERSION_MAJOR)
            | rm.VERSION.MINOR.put(rm.VERSION_MINOR),
            rm.CONFIG0.OFFSET: rm.CONFIG0.ROWS.put(s.rows) | rm.CONFIG0.COLS.put(s.cols)
            | rm.CONFIG0.VALUE_WIDTH.put(fmt.width) | rm.CONFIG0.ACC_WIDTH.put(s.acc_width),
            rm.CONFIG1.OFFSET: rm.CONFIG1.WORD_BYTES.put(s.word_bytes)
            | rm.CONFIG1.NUM_MODES.put(s.num_modes) | rm.CONFIG1.TILE_BEATS.put(1)
            | rm.CONFIG1.REQUANT.put(int(s.qbuf_depth > 0)) | rm.CONFIG1.FETCH.put(int(s.fetch)),
            rm.WBUF_DEPTH.OFFSET: s.wbuf_depth, rm.ABUF_DEPTH.OFFSET: s.abuf_depth,
            rm.QBUF_DEPTH.OFFSET: s.qbuf_depth, rm.WBEAT_WORDS.OFFSET: s.wbeat_words,
            rm.ABEAT_WORDS.OFFSET: s.abeat_words,
            rm.TILE_WORDS.OFFSET: rm.TILE_WORDS.RAW.put(s.tile_words(False))
            | rm.TILE_WORDS.REQUANT.put(s.tile_words(True)),
        }
        self.counters = dict.fromkeys(COUNTERS, 0)

    # -- the bus ---------------------------------------------------------------------------
    async def read32(self, offset: int) -> int:
        if offset in self._constants:
            return self._constants[offset]
        if offset == rm.STATUS.OFFSET:
            return self.status
        if offset == rm.INT_STATUS.OFFSET:
            return self.int_status
        if offset == rm.CTRL.OFFSET:
            return 0
        for name, reg in COUNTERS.items():
            if offset == reg.OFFSET:
                return self.counters[name]
        return self.regs.get(offset, 0)

    async def write32(self, offset: int, value: int) -> None:
        if offset == rm.CTRL.OFFSET:
            if rm.CTRL.CLEAR.get(value) and rm.STATUS.ERROR.get(self.status):
                self.status = 0
            if rm.CTRL.START.get(value) and not rm.STATUS.ERROR.get(self.status):
                self._start()
        elif offset == rm.INT_STATUS.OFFSET:
            self.int_status &= ~value
        elif offset not in self._constants and offset != rm.STATUS.OFFSET:
            self.regs[offset] = value & 0xFFFFFFFF

    async def write_memory(self, address: int, data: bytes) -> None:
        self.dram.write(address, data)

    async def read_memory(self, address: int, length: int) -> bytes:
        return self.dram.read(address, length)

    # -- a layer ---------------------------------------------------------------------------
    def descriptor(self) -> hss_system.Descriptor:
        """The descriptor the registers hold now."""
        r = self.regs.get
        flags = r(rm.FLAGS.OFFSET, 0)
        return hss_system.Descriptor(
            m_tiles=r(rm.M_TILES.OFFSET, 0), n_tiles=r(rm.N_TILES.OFFSET, 0),
            beats_per_tile=r(rm.BEATS_PER_TILE.OFFSET, 0), w_addr=r(rm.W_ADDR.OFFSET, 0),
            a_addr=r(rm.A_ADDR.OFFSET, 0), z_addr=r(rm.Z_ADDR.OFFSET, 0),
            q_addr=r(rm.Q_ADDR.OFFSET, 0), w_base=r(rm.W_BASE.OFFSET, 0),
            a_base=r(rm.A_BASE.OFFSET, 0), load_w=bool(rm.FLAGS.LOAD_W.get(flags)),
            load_a=bool(rm.FLAGS.LOAD_A.get(flags)), requant=bool(rm.FLAGS.REQUANT.get(flags)),
            relu=bool(rm.FLAGS.RELU.get(flags)), modes=r(rm.MODES.OFFSET, 0))

    def _start(self) -> None:
        run = hss_system.run_layer(self.shape, self.fmt, self.descriptor(), self.dram,
                                   self.buffers)
        if run.error != hss_system.ErrorCode.NONE:
            self.status = rm.STATUS.ERROR.put(1) | rm.STATUS.ERROR_CODE.put(int(run.error))
            self.int_status |= rm.INT_STATUS.ERROR.put(1)
            return
        counts = run.counts
        self.counters = dict.fromkeys(COUNTERS, 0)
        for ours, theirs in _COUNTS.items():
            self.counters[ours] = getattr(counts, theirs)
        self.counters["cycles"] = counts.cycles_lower_bound
        self.status = rm.STATUS.DONE.put(1)
        self.int_status |= rm.INT_STATUS.DONE.put(1)
