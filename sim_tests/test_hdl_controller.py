"""hdl.controller: one layer from its descriptor, in Amaranth's simulator, with the engine
and behavioural DMA engines (sim_tests/systemkit.py); Z against the golden model."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

import hss
from hdl.config import build_config
from hdl.controller import COUNTERS, ErrorCode
from hdl.sysconfig import SystemConfig
from systemkit import Bench, DramModel, beat_of, layer_image, read_server, serve_writes

W_ADDR, A_ADDR, Z_ADDR, Q_ADDR = 0x1000, 0x8000, 0x10000, 0x20000


def _descriptor(ctx, ctrl, image, **over):
    values = dict(w_addr=W_ADDR, a_addr=A_ADDR, z_addr=Z_ADDR, q_addr=Q_ADDR,
                  m_tiles=image.m_tiles, n_tiles=image.n_tiles,
                  beats_per_tile=image.beats_per_tile, w_base=0, a_base=0, load_w=1, load_a=1,
                  requant=0, relu=0, modes=1)
    values.update(over)
    for name, value in values.items():
        ctx.set(getattr(ctrl, name), value)


def run_layer(config, image, *, stall=0.3, seed=0, over=None, error_at=(), timeout=20000,
              preload_w=False):
    """Run the layer; (status, error code, counters, Z tiles read back from DRAM)."""
    dram = DramModel(config.dma_bits, error_at=error_at)
    dram.load(W_ADDR, image.weight_words)
    dram.load(A_ADDR, image.act_words)
    bench = Bench(config)
    ctrl = bench.ctrl
    sim = Simulator(bench)
    sim.add_clock(1e-9)
    out = {}

    async def host(ctx):
        _descriptor(ctx, ctrl, image, **(over or {}))
        await ctx.tick().repeat(3)
        ctx.set(ctrl.start, 1)
        await ctx.tick()
        ctx.set(ctrl.start, 0)
        for _ in range(timeout):
            await ctx.tick()
            if ctx.get(ctrl.done) or ctx.get(ctrl.error):
                break
        out["done"], out["error"] = ctx.get(ctrl.done), ctx.get(ctrl.error)
        out["code"] = ctx.get(ctrl.error_code)
        out["counters"] = {name: ctx.get(getattr(ctrl, name)) for name in COUNTERS}

    async def writes(ctx):
        await serve_writes(ctx, ctrl, dram, stall=stall, seed=seed + 2)

    for process in read_server(ctrl, dram, stall=stall, seed=seed + 1):
        sim.add_process(process)
    sim.add_process(writes)
    sim.add_testbench(host)
    sim.run()
    words = config.tile_words
    tiles = []
    for t in range(image.m_tiles * image.n_tiles):
        word = beat_of(dram.read(Z_ADDR + t * words * config.word_bytes, words),
                       config.dma_bits)
        tiles.append(word)
    return out, tiles


def _unpack(config, word):
    e = config.engine
    z = hss.unpack_fields(word, e.acc_width, e.rows * e.cols, e.signed)
    return np.array(z, np.int64).reshape(e.rows, e.cols), bool(word >> (e.rows * e.cols *
                                                                       e.acc_width) & 1)


CASES = [("4:6,2:4", 2, 2, 5, 100, 3, 128), ("2:4", 1, 3, 3, 17, 7, 64),
         ("4:4|4:6,2:4|1:4", 2, 2, 4, 72, 4, 256)]


@pytest.mark.parametrize("ranks, rows, cols, m, k, n, dma_bits", CASES)
def test_layer_matches_the_golden_model(ranks, rows, cols, m, k, n, dma_bits):
    e = build_config(ranks, rows, cols)
    config = SystemConfig(e, dma_bits=dma_bits, wbuf_bytes=8192, abuf_bytes=8192)
    rng = np.random.default_rng(rows * 100 + k)
    mode = len(e.modes) - 1
    W = hss.prune(rng.integers(-128, 128, (m, k)), e.modes.mode(mode))
    A = rng.integers(-128, 128, (k, n))
    image = layer_image(config, [(W, mode)], A)
    status, words = run_layer(config, image, over=dict(modes=1 << mode))
    assert status["done"] and not status["error"], status
    got = [_unpack(config, w) for w in words]
    for (z, overflow), want in zip(got, image.expected_tiles):
        assert not overflow
        np.testing.assert_array_equal(z, want)
    c = status["counters"]
    tiles = image.m_tiles * image.n_tiles
    w_beats, a_beats = image.m_tiles * image.beats_per_tile, image.n_tiles * image.beats_per_tile
    assert c["wbuf_writes"] == w_beats and c["abuf_writes"] == a_beats
    assert c["wbuf_reads"] == c["abuf_reads"] == tiles * image.beats_per_tile
    assert c["obuf_writes"] == c["obuf_reads"] == tiles
    assert c["dram_read_bytes"] == (len(image.weight_words) + len(image.act_words)) * \
        config.word_bytes
    assert c["dram_write_bytes"] == tiles * config.tile_words * config.word_bytes
    assert c["steps"] == image.vectors.steps
    assert c["cycles"] >= c["steps"]


def test_descriptor_errors_start_nothing():
    e = build_config("2:4", 1, 1)
    config = SystemConfig(e, dma_bits=64, wbuf_bytes=256, abuf_bytes=256, qbuf_rows=2)
    W = hss.prune(np.arange(1, 17).reshape(1, 16), "2:4")
    image = layer_image(config, [(W, 0)], np.ones((16, 1), np.int64))
    cases = [(dict(m_tiles=0), ErrorCode.EMPTY), (dict(w_addr=W_ADDR + 4), ErrorCode.MISALIGNED),
             (dict(w_addr=0xFFFFFFF8), ErrorCode.ADDRESS_RANGE),
             (dict(w_base=config.wbuf_depth - 1), ErrorCode.WBUF_OVERFLOW),
             (dict(a_base=config.abuf_depth), ErrorCode.ABUF_OVERFLOW),
             (dict(requant=1, m_tiles=3), ErrorCode.QBUF_OVERFLOW),
             (dict(modes=0b10), ErrorCode.BAD_MODE)]
    for over, code in cases:
        status, _ = run_layer(config, image, over=over, timeout=50)
        assert status["error"] and status["code"] == code, (over, status)
        assert status["counters"]["dram_read_bytes"] == 0


def test_a_read_error_ends_the_layer_without_a_hang():
    e = build_config("2:4", 1, 1)
    config = SystemConfig(e, dma_bits=64, wbuf_bytes=256, abuf_bytes=256)
    W = hss.prune(np.arange(1, 33).reshape(1, 32), "2:4")
    image = layer_image(config, [(W, 0)], np.ones((32, 1), np.int64))
    status, _ = run_layer(config, image, error_at=(W_ADDR, W_ADDR + 7), timeout=2000)
    assert status["error"] and status["code"] == ErrorCode.READ_SLVERR, status
