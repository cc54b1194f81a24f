"""synth.memories: the memories of a design, their ECP5 block RAMs and modelled ASIC area."""
from __future__ import annotations

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hdl.config import build_config
from hdl.sysconfig import SystemConfig
from hdl.system import HSSSystem
from synth.memories import (BITCELL_UM2, DFF_NAND2, NAND2_UM2, SRAM_ARRAY_EFFICIENCY,
                            MemoryUse, asic_area_nand2, ecp5_brams, memories_of)


@pytest.mark.parametrize("depth, width, brams", [
    (16384, 1, 1), (8192, 2, 1), (4096, 4, 1), (2048, 9, 1), (1024, 18, 1),
    (512, 36, 1),             # pseudo dual port: one write, one read port
    (1024, 36, 2), (2048, 18, 2), (16384, 64, 64), (4096, 32, 8), (255, 129, 4),
    (2841, 369, 63),          # 1024x18: 3 x 21 (512x36 would take 6 x 11 = 66)
])
def test_dp16kd_count(depth, width, brams):
    assert ecp5_brams(MemoryUse("m", depth, width, 1, 1)) == brams


def test_true_dual_port_has_no_x36_and_more_ports_no_bram():
    assert ecp5_brams(MemoryUse("m", 512, 36, 2, 0)) == 2      # 1024x18 x 2
    assert ecp5_brams(MemoryUse("m", 1024, 18, 2, 1)) == 0     # three ports: not a DP16KD


def test_async_and_small_memories_take_no_bram_and_are_flip_flops():
    for m in (MemoryUse("m", 4096, 4, 1, 1, async_reads=1), MemoryUse("m", 4, 7, 1, 1)):
        assert m.brams == 0 and m.asic_kind == "flip-flops"
        assert m.nand2_eq == pytest.approx(m.bits * DFF_NAND2)


def test_sram_model():
    m = MemoryUse("m", 4096, 32, 1, 1)
    assert m.asic_kind == "sram"
    assert asic_area_nand2(m) == pytest.approx(
        4096 * 32 * BITCELL_UM2 / NAND2_UM2 / SRAM_ARRAY_EFFICIENCY)
    assert 0.6 < asic_area_nand2(m) / m.bits < 0.65        # 0.62 NAND2-eq a bit
    assert m.to_json()["ecp5_dp16kd"] == 8 and m.to_json()["bits"] == 131072


class _TwoMemories(wiring.Component):
    """A sync-read and an async-read memory, to find by hierarchy."""

    def __init__(self):
        super().__init__({"addr": In(4), "data": Out(8)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.big = big = Memory(shape=8, depth=2048, init=[])
        m.submodules.small = small = Memory(shape=3, depth=16, init=[])
        rd, ard = big.read_port(), small.read_port(domain="comb")
        big.write_port()
        small.write_port()
        m.d.comb += [rd.addr.eq(self.addr), ard.addr.eq(self.addr),
                     self.data.eq(rd.data ^ ard.data)]
        return m


def test_memories_of_finds_each_memory_and_its_ports():
    found = memories_of(_TwoMemories())
    assert found == [MemoryUse("big", 2048, 8, 1, 1, 0), MemoryUse("small", 16, 3, 1, 1, 1)]


def test_memories_of_hss_system():
    c = SystemConfig(build_config("2:4", 2, 2), wbuf_bytes=4096, abuf_bytes=4096,
                     qbuf_rows=64)
    found = {m.name: m for m in memories_of(HSSSystem(c))}
    assert (found["controller.wbuf"].depth, found["controller.wbuf"].width) == \
        (c.wbuf_depth, c.weight_beat_bits)
    assert (found["controller.abuf"].depth, found["controller.abuf"].width) == \
        (c.abuf_depth, c.act_beat_bits)
    assert found["controller.qbuf"].depth == 64 and found["controller.obuf"].depth == 2
