"""hdl.controller: one layer from its descriptor, in Amaranth's simulator, with the engine
and behavioural DMA engines (sim_tests/systemkit.py); Z against the golden model."""
import random
import warnings

import numpy as np
import pytest
from amaranth.sim import Simulator

import hss
from hdl.config import build_config
from hdl.controller import COUNTERS, ErrorCode
from hdl.sysconfig import SystemConfig
from systemkit import (Bench, DramModel, beat_of, layer_image, read_server, serve_writes,
                       words_of)

W_ADDR, A_ADDR, Z_ADDR, Q_ADDR = 0x1000, 0x8000, 0x10000, 0x20000


def run_layers(config, dram, steps, *, stall=0.3, seed=0, timeout=20000):
    """Run ``steps`` on one controller: ("layer", descriptor) starts a layer and waits for
    its end, ("clear",) pulses CLEAR; a status dict per layer (done, error, code,
    counters)."""
    bench = Bench(config)
    ctrl = bench.ctrl
    sim = Simulator(bench)
    sim.add_clock(1e-9)
    out = []

    async def host(ctx):
        for step in steps:
            if step[0] == "clear":
                ctx.set(ctrl.clear, 1)
                await ctx.tick()
                ctx.set(ctrl.clear, 0)
                await ctx.tick()
                continue
            for name, value in step[1].items():
                ctx.set(getattr(ctrl, name), value)
            await ctx.tick().repeat(2)
            ctx.set(ctrl.start, 1)
            await ctx.tick()
            ctx.set(ctrl.start, 0)
            for _ in range(timeout):
                await ctx.tick()
                if ctx.get(ctrl.done) or ctx.get(ctrl.error):
                    break
            out.append({"done": ctx.get(ctrl.done), "error": ctx.get(ctrl.error),
                        "code": ctx.get(ctrl.error_code),
                        "counters": {n: ctx.get(getattr(ctrl, n)) for n in COUNTERS}})

    async def writes(ctx):
        await serve_writes(ctx, ctrl, dram, stall=stall, seed=seed + 2)

    for process in read_server(ctrl, dram, stall=stall, seed=seed + 1):
        sim.add_process(process)
    sim.add_process(writes)
    sim.add_testbench(host)
    sim.run()
    return out


def descriptor(image, **over) -> dict:
    values = dict(w_addr=W_ADDR, a_addr=A_ADDR, z_addr=Z_ADDR, q_addr=Q_ADDR,
                  m_tiles=image.m_tiles, n_tiles=image.n_tiles,
                  beats_per_tile=image.beats_per_tile, w_base=0, a_base=0, load_w=1, load_a=1,
                  requant=0, relu=0, modes=1)
    values.update(over)
    return values


def z_tiles(config, dram, image, z_addr=Z_ADDR):
    """The output tiles the layer wrote, decoded."""
    words = config.tile_words
    return [_unpack(config, beat_of(dram.read(z_addr + t * words * config.word_bytes, words),
                                    config.dma_bits))
            for t in range(image.m_tiles * image.n_tiles)]


def run_layer(config, image, *, stall=0.3, seed=0, over=None, error_at=(), timeout=20000):
    """One layer from a fresh DRAM holding its image: (status, Z tiles)."""
    dram = DramModel(config.dma_bits, error_at=error_at)
    dram.load(W_ADDR, image.weight_words)
    dram.load(A_ADDR, image.act_words)
    [status] = run_layers(config, dram, [("layer", descriptor(image, **(over or {})))],
                          stall=stall, seed=seed, timeout=timeout)
    return status, z_tiles(config, dram, image)


def _unpack(config, word):
    e = config.engine
    z = hss.unpack_fields(word, e.acc_width, e.rows * e.cols, e.signed)
    return np.array(z, np.int64).reshape(e.rows, e.cols), bool(word >> (e.rows * e.cols *
                                                                       e.acc_width) & 1)


CASES = [("4:6,2:4", 2, 2, 5, 100, 3, 128), ("2:4", 1, 3, 3, 17, 7, 64),
         ("4:4|4:6,2:4|1:4", 2, 2, 4, 72, 4, 256)]


@pytest.mark.parametrize("ranks, rows, cols, m, k, n, dma_bits, chunk",
                         [(*case, 8) for case in CASES] + [("4:6,2:4", 2, 2, 9, 48, 6, 64, 2)])
def test_layer_matches_the_golden_model(ranks, rows, cols, m, k, n, dma_bits, chunk):
    """Every tile at its address (``hss.system.tile_order``: chunk 2 of 5 m-tiles walks
    three chunks over three n-tiles) and every counter."""
    e = build_config(ranks, rows, cols)
    config = SystemConfig(e, dma_bits=dma_bits, wbuf_bytes=8192, abuf_bytes=8192,
                          m_chunk=chunk)
    rng = np.random.default_rng(rows * 100 + k)
    mode = len(e.modes) - 1
    W = hss.prune(rng.integers(-128, 128, (m, k)), e.modes.mode(mode))
    A = rng.integers(-128, 128, (k, n))
    image = layer_image(config, [(W, mode)], A)
    status, got = run_layer(config, image, over=dict(modes=1 << mode))
    assert status["done"] and not status["error"], status
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


def _check_tiles(got, image):
    assert len(got) == len(image.expected_tiles)
    for (z, overflow), want in zip(got, image.expected_tiles):
        assert not overflow
        np.testing.assert_array_equal(z, want)


def test_weights_stay_resident_for_the_next_layer():
    """A layer that keeps the weights (LOAD_W = 0) reads only its activations from DRAM
    and computes with the weights the previous layer left in wbuf."""
    e = build_config("4:6,2:4", 2, 2)
    config = SystemConfig(e, dma_bits=128, wbuf_bytes=4096, abuf_bytes=4096)
    rng = np.random.default_rng(11)
    W = hss.prune(rng.integers(-128, 128, (4, 48)), "4:6,2:4")
    A1, A2 = rng.integers(-128, 128, (48, 4)), rng.integers(-128, 128, (48, 2))
    first, second = layer_image(config, [(W, 0)], A1), layer_image(config, [(W, 0)], A2)
    dram = DramModel(config.dma_bits)
    dram.load(W_ADDR, first.weight_words)
    dram.load(A_ADDR, first.act_words)
    a2 = A_ADDR + 0x4000
    dram.load(a2, second.act_words)
    z2 = Z_ADDR + 0x4000
    base = first.n_tiles * first.beats_per_tile
    runs = run_layers(config, dram, [("layer", descriptor(first)),
                                     ("layer", descriptor(second, a_addr=a2, z_addr=z2,
                                                          a_base=base, load_w=0))])
    assert all(r["done"] for r in runs), runs
    _check_tiles(z_tiles(config, dram, first), first)
    _check_tiles(z_tiles(config, dram, second, z2), second)
    assert runs[1]["counters"]["dram_read_bytes"] == len(second.act_words) * config.word_bytes
    assert runs[1]["counters"]["wbuf_writes"] == 0


def test_tasd_segments_of_several_modes():
    """A TASD layer on a flexible build: each tile's segments in their own modes, summed
    in the same accumulators; the controller moves beats, whatever their modes."""
    e = build_config("4:4|4:6,2:4|1:4", 2, 2)
    config = SystemConfig(e, dma_bits=128, wbuf_bytes=8192, abuf_bytes=8192)
    rng = np.random.default_rng(5)
    W = rng.integers(-128, 128, (3, 48))
    result = hss.decompose(W, "4:6,2:4+4:4,1:4")
    segments = [(term, str(p)) for term, p in zip(result.terms, result.decomposition.terms)]
    A = rng.integers(-128, 128, (48, 3))
    image = layer_image(config, segments, A)
    mask = sum(1 << e.modes.index(p) for p in result.decomposition.terms)
    status, got = run_layer(config, image, over=dict(modes=mask))
    assert status["done"], status
    _check_tiles(got, image)


def _with_bad_mode(config, image):
    """The image with the first weights beat's mode field naming no mode of the build."""
    e = config.engine
    field = e.weight_beat_layout()["mode"]
    words = list(image.weight_words)
    beat = beat_of(words[:config.weight_words], config.dma_bits)
    beat |= ((1 << e.modes.mode_bits) - 1) << field.offset
    words[:config.weight_words] = words_of(beat, config.weight_beat_bits, config.dma_bits)
    return words


def test_runtime_errors_end_the_layer_and_clear_lets_the_next_run():
    """A beat of an unknown mode, a write answered SLVERR and a read answered DECERR each
    end their layer with the error's code, nothing hangs, and after CLEAR the same
    controller runs a good layer exactly."""
    e = build_config("4:4|4:5|4:6,2:4", 1, 2)
    assert len(e.modes) < (1 << e.modes.mode_bits)
    config = SystemConfig(e, dma_bits=64, wbuf_bytes=4096, abuf_bytes=4096)
    rng = np.random.default_rng(9)
    W = hss.prune(rng.integers(-128, 128, (2, 64)), "4:6,2:4")
    image = layer_image(config, [(W, "4:6,2:4")], rng.integers(-128, 128, (64, 3)))
    good = descriptor(image, modes=1 << e.modes.index("4:6,2:4"))
    bad_w = W_ADDR + 0x8000
    dram = DramModel(config.dma_bits, error_at=(0x40000, 0x40fff), error_code=2)
    dram.load(W_ADDR, image.weight_words)
    dram.load(A_ADDR, image.act_words)
    dram.load(bad_w, _with_bad_mode(config, image))
    runs = run_layers(config, dram, [
        ("layer", dict(good, w_addr=bad_w)), ("clear",),
        ("layer", dict(good, z_addr=0x40000)), ("clear",),
        ("layer", good)], timeout=5000)
    assert [(r["error"], r["code"]) for r in runs] == [
        (1, ErrorCode.BAD_MODE), (1, ErrorCode.WRITE_SLVERR), (0, 0)], runs
    assert runs[2]["done"]
    _check_tiles(z_tiles(config, dram, image), image)
    dram.error_code = 3
    dram.error_at = (A_ADDR, A_ADDR + 7)
    [read] = run_layers(config, dram, [("layer", good)], timeout=5000)
    assert read["error"] and read["code"] == ErrorCode.READ_DECERR, read


def test_descriptor_checks_agree_with_the_golden_model():
    """START answers what ``hss.system.Descriptor.check`` answers, on random descriptors
    near every limit (one simulation, the controller reset between them)."""
    from amaranth.hdl import Module, ResetInserter, Signal

    from hdl.controller import Controller
    from hss.system import Descriptor
    e = build_config("4:4|4:6,2:4", 2, 2)
    config = SystemConfig(e, dma_bits=64, wbuf_bytes=2048, abuf_bytes=2048, qbuf_rows=16)
    shape = config.shape
    rng = random.Random(20)
    wb = config.word_bytes

    def near(limit):
        return rng.choice([0, 1, limit - 1, limit, limit + 1, rng.randrange(limit + 2)])

    descriptors = []
    for _ in range(60):
        d = Descriptor(
            w_addr=rng.choice([0, wb, 3, 0xFFFFFF00, rng.randrange(1 << 32) & ~7]),
            a_addr=rng.choice([0, 8 * wb, 0xFFFFFFF8, 5]),
            z_addr=rng.choice([0x10000, 0xFFFFFFF0, 12]),
            q_addr=rng.choice([0x20000, 0xFFFFFFF8, 2]),
            m_tiles=near(8), n_tiles=near(8), beats_per_tile=near(6),
            w_base=near(shape.wbuf_depth // 2), a_base=near(shape.abuf_depth // 2),
            load_w=rng.random() < 0.8, load_a=rng.random() < 0.8,
            requant=rng.random() < 0.5, relu=False, modes=rng.choice([0, 1, 2, 3, 4, 7]))
        descriptors.append(d)
    reset = Signal()
    ctrl = Controller(config)
    top = Module()
    top.submodules.ctrl = ResetInserter(reset)(ctrl)
    sim = Simulator(top)
    sim.add_clock(1e-9)
    got = []

    async def host(ctx):
        for d in descriptors:
            ctx.set(reset, 1)
            await ctx.tick()
            ctx.set(reset, 0)
            for name in ("w_addr", "a_addr", "z_addr", "q_addr", "m_tiles", "n_tiles",
                         "w_base", "a_base", "modes"):
                ctx.set(getattr(ctrl, name), getattr(d, name))
            ctx.set(ctrl.beats_per_tile, d.beats_per_tile)
            for name in ("load_w", "load_a", "requant", "relu"):
                ctx.set(getattr(ctrl, name), int(getattr(d, name)))
            ctx.set(ctrl.start, 1)
            await ctx.tick()
            ctx.set(ctrl.start, 0)
            await ctx.tick().repeat(3)
            got.append(ctx.get(ctrl.error_code) if ctx.get(ctrl.error) else 0)

    sim.add_testbench(host)
    sim.run()
    want = [int(d.check(shape)) for d in descriptors]
    assert got == want
    assert len(set(want)) >= 6, "the draw must reach most codes"


@pytest.mark.parametrize("relu, chunk, lanes, qbuf_rows, dma_bits", [
    (False, 8, 1, 64, 128), (True, 8, 2, 64, 128), (True, 2, 2, 64, 128),
    (False, 2, 2, 64, 128),
    (True, 8, 1, 6, 512)])     # a table word of 16 entries, qbuf of 6: its index must not wrap
def test_requantized_layer_matches_the_golden_model(relu, chunk, lanes, qbuf_rows, dma_bits):
    """REQUANT: each tile leaves as int8 through the Requantizer (``lanes`` rows a cycle,
    qbuf in as many banks), every row with its table entry; Z and every counter as
    ``hss.system`` computes them."""
    from types import SimpleNamespace

    from hss import requant
    from hss.system import Descriptor, layer_counts, read_outputs
    e = build_config("4:6,2:4", 2, 2)
    config = SystemConfig(e, dma_bits=dma_bits, wbuf_bytes=8192, abuf_bytes=8192,
                          qbuf_rows=qbuf_rows, m_chunk=chunk, requant_lanes=lanes)
    assert config.requant_lanes == lanes
    shape = config.shape
    rng = np.random.default_rng(4 + relu)
    W = hss.prune(rng.integers(-128, 128, (6, 96)), "4:6,2:4")
    A = rng.integers(-128, 128, (96, 5))
    image = layer_image(config, [(W, 0)], A)
    rows = image.m_tiles * e.rows
    Zp = np.zeros((rows, 5), np.int64)
    Zp[:6] = W @ A
    scales, shifts = requant.choose_scales(Zp, relu=relu)
    dram = DramModel(config.dma_bits)
    dram.load(W_ADDR, image.weight_words)
    dram.load(A_ADDR, image.act_words)
    dram.load_bytes(Q_ADDR, requant.pack_table(scales, shifts))
    d = descriptor(image, requant=1, relu=int(relu))
    [status] = run_layers(config, dram, [("layer", d)])
    assert status["done"], status
    golden = Descriptor(image.m_tiles, image.n_tiles, image.beats_per_tile, w_addr=W_ADDR,
                        a_addr=A_ADDR, z_addr=Z_ADDR, q_addr=Q_ADDR, requant=True, relu=relu)
    Z, overflow = read_outputs(shape, golden, SimpleNamespace(read=dram.read_bytes))
    want = requant.requantize(Zp, scales, shifts, relu)
    np.testing.assert_array_equal(Z[:, :Z.shape[1]][:rows, :5], want[:, :5])
    assert not overflow.any()
    counts = layer_counts(shape, golden, image.vectors.steps_per_tile)
    for name in ("dram_read_bytes", "dram_write_bytes", "wbuf_reads", "wbuf_writes",
                 "abuf_reads", "abuf_writes", "obuf_reads", "obuf_writes", "qbuf_reads",
                 "qbuf_writes", "steps"):
        assert status["counters"][name] == getattr(counts, name), name


@pytest.mark.parametrize("ranks, rows, cols, m, k, n, chunk, requant, stall", [
    ("4:6,2:4", 2, 2, 5, 100, 3, 8, False, 0.3),
    ("4:6,2:4", 2, 3, 6, 72, 7, 2, True, 0.3),
    ("1:4,2:4", 3, 2, 4, 40, 3, 8, False, 0.0),         # G1 = 1; no stalls: full rate
    ("4:6,2:4", 2, 2, 8, 24, 8, 4, False, 0.8),         # a beat a tile: the engine waits
])
def test_rank1_at_the_fetch_matches_the_golden_model(ranks, rows, cols, m, k, n, chunk,
                                                      requant, stall):
    """``fetch="shared"``: abuf in H1 banks, only the G1 banks a beat's rank-1 offsets name
    are read, a rank-0 engine computes. Z (raw and requantized) and every counter as
    ``hss.system.run_layer`` on the ``hss.fetchbeats`` image."""
    from types import SimpleNamespace

    from hss import fetch, requant as rq
    from hss.fetchbeats import FetchFormat
    from hss.system import Buffers, Descriptor, layer_image as image_of, read_outputs, \
        run_layer as golden_run
    from test_hss_system import Memory, fmt_of
    e = build_config(ranks, rows, cols)
    config = SystemConfig(e, dma_bits=128, wbuf_bytes=8192, abuf_bytes=8192, qbuf_rows=64,
                          m_chunk=chunk, fetch="shared")
    shape = config.shape
    fmt = FetchFormat(fmt_of(ranks, rows=rows, cols=cols))
    assert (fmt.weight_beat_bits, fmt.act_beat_bits) == (config.weight_beat_bits,
                                                         config.act_beat_bits)
    rng = np.random.default_rng(m * k + n)
    W = fetch.prune_shared(rng.integers(-128, 128, (m, k)), ranks, rows)
    A = rng.integers(-128, 128, (k, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        layer = fmt.pack_layer([(W, 0)], A)
    d = Descriptor.for_layer(layer, w_addr=W_ADDR, a_addr=A_ADDR, z_addr=Z_ADDR,
                             q_addr=Q_ADDR, requant=requant, relu=requant)
    table = None
    if requant:
        Zp = np.zeros((layer.m_tiles * rows, n), np.int64)
        Zp[:m] = W @ A
        table = rq.pack_table(*rq.choose_scales(Zp, relu=True))
    dram, mem = DramModel(config.dma_bits), Memory()
    for address, data in image_of(shape, d, layer, table):
        dram.load_bytes(address, data)
        mem.write(address, data)
    regs = descriptor(SimpleNamespace(m_tiles=d.m_tiles, n_tiles=d.n_tiles,
                                      beats_per_tile=d.beats_per_tile),
                      requant=int(requant), relu=int(requant))
    [status] = run_layers(config, dram, [("layer", regs)], stall=stall)
    assert status["done"] and not status["error"], status
    want = golden_run(shape, fmt, d, mem, Buffers.at_reset(shape))
    Z, over = read_outputs(shape, d, SimpleNamespace(read=dram.read_bytes))
    Zw, over_w = read_outputs(shape, d, mem)
    np.testing.assert_array_equal(Z, Zw)
    assert not over.any() and not over_w.any()
    if not requant:
        np.testing.assert_array_equal(Z[:m, :n], W @ A)
    for name in ("dram_read_bytes", "dram_write_bytes", "wbuf_reads", "wbuf_writes",
                 "abuf_reads", "abuf_writes", "obuf_reads", "obuf_writes", "qbuf_reads",
                 "qbuf_writes", "steps"):
        assert status["counters"][name] == getattr(want.counts, name), name
    c = status["counters"]
    if stall == 0.0:       # past the first chunk's loading, a step a cycle
        assert c["cycles"] - c["stall_weights"] - c["stall_acts"] <= c["steps"] + 40
    if stall == 0.8:       # the output path is slower than the engine: it holds the feed
        assert c["stall_output"] > 0
