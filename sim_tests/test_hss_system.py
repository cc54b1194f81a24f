"""``hss.system``, the golden model of a layer on hss_system: the shape, the descriptor's
error codes (edges: exactly full buffers, the address space's end), the DRAM image, the
DMA's order, the counts, a layer run end to end against ``hss.matmul`` and
``hss.requant``, the buffers kept between layers, and the driver's split."""
import itertools
import gc
import json
import warnings
import subprocess
import sys

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable

import hss
from gen.emit import TOP, manifest, ports
from hdl import accelerator_for
from hdl.config import build_config
from hss.beats import StreamFormat
from hss.requant import pack_entry, pack_table, requantize
from hss.system import (ADDRESS_SPACE, Buffers, Descriptor, ErrorCode, SystemModelError,
                        SystemShape, act_beat_address, beat_to_words, buffer_depth,
                        layer_counts, layer_image, minimum_dram_bytes, output_tile_address,
                        pack_output_tile, read_order, read_outputs, requant_entry_address,
                        run_layer, split_layer, unpack_output_tile, weight_beat_address,
                        words_to_beat, write_order)
from simkit import activations, quiet_padding, weights

HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"
E = ErrorCode


class Memory:
    """A sparse byte memory of the 32-bit space (zero where never written)."""

    def __init__(self):
        self.bytes = {}

    def write(self, address, data):
        assert 0 <= address and address + len(data) <= ADDRESS_SPACE
        for i, b in enumerate(data):
            self.bytes[address + i] = b

    def read(self, address, length):
        assert 0 <= address and address + length <= ADDRESS_SPACE
        return bytes(self.bytes.get(address + i, 0) for i in range(length))


def fmt_of(modes, **kw):
    config = build_config(modes, **kw)
    with warnings.catch_warnings():  # the top is built for its ports, never elaborated
        warnings.simplefilter("ignore", UnusedElaboratable)
        m = manifest(config, {TOP: ports(accelerator_for(config))}, {})
        gc.collect()
    return StreamFormat.from_manifest(json.loads(json.dumps(m)))


def shape_of(fmt, **kw):
    return SystemShape.for_format(fmt, **kw)


SHAPE = SystemShape(rows=4, cols=4, weight_beat_bits=369, act_beat_bits=768, acc_width=26,
                    signed=True, num_modes=1, wbuf_depth=100, abuf_depth=60, qbuf_depth=64)


# ---- the shape -------------------------------------------------------------------------------

def test_shape_for_a_build():
    fmt = fmt_of("4:6,2:4")
    s = shape_of(fmt)
    assert (s.wbuf_depth, s.abuf_depth) == (128 * 1024 * 8 // 369, 128 * 1024 * 8 // 768)
    assert (s.word_bytes, s.wbeat_words, s.abeat_words) == (16, 3, 6)
    assert (s.tile_bits(False), s.tile_words(False)) == (4 * 4 * 26 + 1, 4)
    assert (s.tile_bits(True), s.tile_words(True)) == (4 * 4 * 8 + 1, 2)
    assert s.entries_per_word == 4 and s.table_words(3) == 3 and s.table_words(1) == 1
    assert (s.obuf_depth, s.qbuf_depth, s.max_burst, s.outstanding, s.latency) == \
        (2, 4096, 64, 4, 4)
    wide = shape_of(fmt, dma_bits=512, qbuf_rows=0)
    assert (wide.wbeat_words, wide.abeat_words, wide.qbuf_depth) == (1, 2, 0)
    assert buffer_depth(47, 376) == 1 and buffer_depth(46, 376) == 0


@pytest.mark.parametrize("kw, message", [
    (dict(dma_bits=96), "dma_bits must be one of"),
    (dict(max_burst=257), "max_burst must be from 1 to 256, not 257"),
    (dict(rows=0), "rows must be at least 1, not 0"),
    (dict(signed=1), "signed must be a bool"),
    (dict(wbuf_depth=-1), "wbuf_depth must be at least 0"),
])
def test_bad_shapes(kw, message):
    args = dict(rows=2, cols=2, weight_beat_bits=10, act_beat_bits=10, acc_width=8,
                signed=True, num_modes=1, wbuf_depth=4, abuf_depth=4)
    with pytest.raises(SystemModelError, match=message):
        SystemShape(**{**args, **kw})


# ---- the descriptor's checks ----------------------------------------------------------------

def good(**kw):
    return Descriptor(**{**dict(m_tiles=5, n_tiles=3, beats_per_tile=20, w_addr=0x1000,
                                a_addr=0x4000_0000, z_addr=0x8000_0000, q_addr=0x10,
                                requant=True), **kw})


def test_a_good_descriptor_and_exactly_full_buffers():
    assert good().check(SHAPE) == E.NONE
    assert good(w_base=0).check(SHAPE) == E.NONE                       # 5*20 == 100
    assert good(w_base=1).check(SHAPE) == E.WBUF_OVERFLOW
    assert good(a_base=0).check(SHAPE) == E.NONE                       # 3*20 == 60
    assert good(a_base=1).check(SHAPE) == E.ABUF_OVERFLOW
    assert good(m_tiles=4, w_base=20).check(SHAPE) == E.NONE
    assert good(m_tiles=16, beats_per_tile=6).check(SHAPE) == E.NONE   # 16*4 == 64 rows
    assert good(m_tiles=17, beats_per_tile=5).check(SHAPE) == E.QBUF_OVERFLOW
    assert good(m_tiles=17, beats_per_tile=5, requant=False).check(SHAPE) == E.NONE
    # the weights stay in wbuf for LOAD_W = 0: they must fit there all the same
    assert good(load_w=False, w_base=1).check(SHAPE) == E.WBUF_OVERFLOW


def test_misaligned_only_where_used():
    for name in ("w_addr", "a_addr", "z_addr", "q_addr"):
        assert good(**{name: 0x1008}).check(SHAPE) == E.MISALIGNED, name
    assert good(w_addr=8, load_w=False).check(SHAPE) == E.NONE
    assert good(a_addr=8, load_a=False).check(SHAPE) == E.NONE
    assert good(q_addr=8, requant=False).check(SHAPE) == E.NONE


def test_the_address_space_ends_at_4_GiB():
    d = good()
    sizes = {"w_addr": d.weights_bytes(SHAPE), "a_addr": d.acts_bytes(SHAPE),
             "z_addr": d.output_bytes(SHAPE), "q_addr": d.table_bytes(SHAPE)}
    for name, size in sizes.items():
        end = ADDRESS_SPACE - size                # the region's last byte is the last one
        assert good(**{name: end}).check(SHAPE) == E.NONE, name
        assert good(**{name: end + 16}).check(SHAPE) == E.ADDRESS_RANGE, name
    assert good(w_addr=ADDRESS_SPACE - 16, load_w=False).check(SHAPE) == E.NONE
    # the layout functions agree: the last beat, tile and entry end where the region does
    assert weight_beat_address(SHAPE, d, 4, 19) + 3 * 16 == d.w_addr + sizes["w_addr"]
    assert act_beat_address(SHAPE, d, 2, 19) + 6 * 16 == d.a_addr + sizes["a_addr"]
    assert output_tile_address(SHAPE, d, 2, 4) + 2 * 16 == d.z_addr + sizes["z_addr"]
    assert requant_entry_address(SHAPE, d, 19) + 4 == d.q_addr + sizes["q_addr"]


def test_empty_and_bad_modes():
    for kw in (dict(m_tiles=0), dict(n_tiles=0), dict(beats_per_tile=0)):
        assert good(**kw).check(SHAPE) == E.EMPTY
    assert good(modes=0).check(SHAPE) == E.BAD_MODE
    assert good(modes=2).check(SHAPE) == E.BAD_MODE
    twelve = SystemShape(**{**SHAPE.__dict__, "num_modes": 12})
    assert good(modes=(1 << 12) - 1).check(twelve) == E.NONE
    assert good(modes=1 << 12).check(twelve) == E.BAD_MODE


def test_the_lowest_code_wins():
    bad = dict(w_base=20, a_base=50, m_tiles=17, beats_per_tile=5, z_addr=8, q_addr=8,
               modes=0)
    assert good(**bad).check(SHAPE) == E.WBUF_OVERFLOW     # 20 + 17*5 > 100
    bad["w_base"] = 0
    assert good(**bad).check(SHAPE) == E.ABUF_OVERFLOW     # 50 + 3*5 > 60
    bad["a_base"] = 0
    assert good(**bad).check(SHAPE) == E.QBUF_OVERFLOW     # 17*4 rows > 64
    bad["requant"] = False
    assert good(**bad).check(SHAPE) == E.MISALIGNED
    bad["z_addr"] = ADDRESS_SPACE - 16
    assert good(**bad).check(SHAPE) == E.ADDRESS_RANGE
    bad["z_addr"] = 0
    assert good(**bad).check(SHAPE) == E.BAD_MODE
    assert good(m_tiles=0, modes=0, z_addr=ADDRESS_SPACE - 16).check(SHAPE) == E.EMPTY


def test_random_descriptors_against_a_restatement():
    """The checks against the layout functions: every used region's last byte is inside
    the space, its first on a word, every beat in its buffer."""
    rng = np.random.default_rng(0)
    shape = SystemShape(**{**SHAPE.__dict__, "qbuf_depth": 16})
    B, seen = shape.word_bytes, set()
    for _ in range(2000):
        d = Descriptor(*(int(rng.integers(0, 8)) for _ in range(3)),
                       *(int(rng.choice([0, 8, 16, ADDRESS_SPACE - int(rng.integers(1, 40)) * 16,
                                         int(rng.integers(0, 1 << 28)) * 16]))
                         for _ in range(4)),
                       *(int(rng.integers(0, 60)) for _ in range(2)),
                       *(bool(rng.integers(2)) for _ in range(4)), modes=int(rng.integers(0, 3)))
        want = E.NONE
        if not (d.m_tiles and d.n_tiles and d.beats_per_tile):
            want = E.EMPTY
        elif d.modes != 1:
            want = E.BAD_MODE
        used = [(d.z_addr, output_tile_address(shape, d, d.n_tiles - 1, d.m_tiles - 1)
                 + shape.tile_words(d.requant) * B if d.tiles else d.z_addr)]
        if d.load_w:
            used.append((d.w_addr, weight_beat_address(shape, d, d.m_tiles - 1,
                                                       d.beats_per_tile - 1) + 3 * B
                         if d.m_tiles and d.beats_per_tile else d.w_addr))
        if d.load_a:
            used.append((d.a_addr, act_beat_address(shape, d, d.n_tiles - 1,
                                                    d.beats_per_tile - 1) + 6 * B
                         if d.n_tiles and d.beats_per_tile else d.a_addr))
        if d.requant:
            last = requant_entry_address(shape, d, d.m_tiles * 4 - 1) + 4 if d.m_tiles \
                else d.q_addr
            used.append((d.q_addr, last + -(last - d.q_addr) % B))   # whole words
        if any(end > ADDRESS_SPACE for _, end in used):
            want = E.ADDRESS_RANGE
        if any(start % B for start, _ in used):
            want = E.MISALIGNED
        if d.requant and d.m_tiles * 4 > 16:
            want = E.QBUF_OVERFLOW
        if d.a_base + d.n_tiles * d.beats_per_tile > 60:
            want = E.ABUF_OVERFLOW
        if d.w_base + d.m_tiles * d.beats_per_tile > 100:
            want = E.WBUF_OVERFLOW
        assert d.check(shape) == want, d
        seen.add(want)
    assert seen == set(E) - {E.READ_SLVERR, E.READ_DECERR, E.WRITE_SLVERR, E.WRITE_DECERR}


@pytest.mark.parametrize("kw, message", [
    (dict(m_tiles=-1), "m_tiles must be from 0 to 4294967295, not -1"),
    (dict(w_addr=1 << 32), "w_addr must be from 0"),
    (dict(load_w=1), "load_w must be a bool"),
    (dict(modes=1.0), "modes must be an integer"),
])
def test_bad_descriptor_fields(kw, message):
    with pytest.raises(SystemModelError, match=message):
        good(**kw)


# ---- the DRAM image ----------------------------------------------------------------------------

def test_beats_and_words():
    assert beat_to_words(0x1_0000_0000_0000_0001, 65, 64) == [1, 1]
    assert beat_to_words(5, 3, 64) == [5]                          # one word, padded
    assert beat_to_words((1 << 128) - 1, 128, 64) == [(1 << 64) - 1] * 2   # exactly two
    rng = np.random.default_rng(1)
    for bits, dma in [(369, 128), (896, 512), (1, 64), (512, 512), (513, 256)]:
        beat = int.from_bytes(rng.bytes(bits // 8 + 1), "little") % (1 << bits)
        words = beat_to_words(beat, bits, dma)
        assert len(words) == -(-bits // dma) and words_to_beat(words, bits, dma) == beat
        # little-endian words are the beat's little-endian bytes
        assert b"".join(w.to_bytes(dma // 8, "little") for w in words) == \
            beat.to_bytes(len(words) * dma // 8, "little")
    assert words_to_beat([0xFF], 3, 64) == 7                       # padding not read
    with pytest.raises(SystemModelError, match="is 2 words of 64 bits, not 1"):
        words_to_beat([0], 65, 64)
    with pytest.raises(SystemModelError, match="not a 3-bit"):
        beat_to_words(8, 3, 64)


def test_address_indices_are_checked():
    d = good()
    with pytest.raises(SystemModelError, match="mt 5 is outside 0..4"):
        weight_beat_address(SHAPE, d, 5, 0)
    with pytest.raises(SystemModelError, match="b 20 is outside 0..19"):
        act_beat_address(SHAPE, d, 0, 20)
    with pytest.raises(SystemModelError, match="row 20 is outside 0..19"):
        requant_entry_address(SHAPE, d, 20)


def test_image_read_order_and_write_order():
    fmt = fmt_of(HIGHLIGHT, rows=2, cols=2)
    shape = shape_of(fmt)
    rng = np.random.default_rng(2)
    layer = fmt.pack_layer([(weights(rng, fmt.modes.mode(7), 5, 50, 8, True), 7)],
                           activations(rng, 50, 5, 8, True))
    d = Descriptor.for_layer(layer, w_addr=0x10000, a_addr=0x20000, z_addr=0x30000,
                             q_addr=0x40000, requant=True)
    assert d.modes == 1 << 7 and (d.m_tiles, d.n_tiles) == (3, 3)
    table = pack_table(np.arange(6), np.arange(6))
    mem = Memory()
    for address, data in layer_image(shape, d, layer, table):
        mem.write(address, data)
    B = shape.word_bytes
    for mt, beats in enumerate(layer.weight_tiles):
        for b, beat in enumerate(beats):
            at = weight_beat_address(shape, d, mt, b)
            assert words_to_beat([int.from_bytes(mem.read(at + w * B, B), "little")
                                  for w in range(shape.wbeat_words)],
                                 shape.weight_beat_bits, shape.dma_bits) == beat
    for nt, beats in enumerate(layer.act_tiles):
        for b, beat in enumerate(beats):
            at = act_beat_address(shape, d, nt, b)
            assert int.from_bytes(mem.read(at, shape.abeat_words * B), "little") == beat
    for row in range(6):
        assert mem.read(requant_entry_address(shape, d, row), 4) == \
            pack_entry(row, row).to_bytes(4, "little")
    order = read_order(shape, d)
    assert [(t.region, t.index) for t in order] == \
        [("q", 0), ("a", 0), ("w", 0), ("w", 1), ("w", 2), ("a", 1), ("a", 2)]
    assert order[0].words == 2 and order[2].words == layer.beats_per_tile * shape.wbeat_words
    assert sum(t.words for t in order) * B == layer_counts(shape, d).dram_read_bytes
    assert [(t.region, t.index) for t in read_order(shape, Descriptor(**{
        **d.__dict__, "load_w": False, "requant": False}))] == [("a", 0), ("a", 1), ("a", 2)]
    assert [t.region for t in read_order(shape, Descriptor(**{
        **d.__dict__, "load_a": False}))] == ["q", "w", "w", "w"]
    writes = write_order(shape, d)
    assert [t.index for t in writes] == list(range(9))
    assert [t.address for t in writes] == [output_tile_address(shape, d, nt, mt)
                                          for nt in range(3) for mt in range(3)]
    with pytest.raises(SystemModelError, match="the table needs 6 entries"):
        layer_image(shape, d, layer, table[:5])


def test_output_tiles_round_trip_and_match_the_engine_payload():
    fmt = fmt_of("2:4", rows=2, cols=3, acc_width=20)
    shape = shape_of(fmt, dma_bits=64)
    rng = np.random.default_rng(3)
    z = rng.integers(-(1 << 19), 1 << 19, (2, 3))
    data = pack_output_tile(shape, z, True, False)
    assert len(data) == 8 * shape.tile_words(False)
    assert int.from_bytes(data, "little") == fmt.pack_tile(z, True)[0]   # one tiles payload
    back, over = unpack_output_tile(shape, data, False)
    assert (back == z).all() and over
    y = rng.integers(-128, 128, (2, 3))
    back, over = unpack_output_tile(shape, pack_output_tile(shape, y, False, True), True)
    assert (back == y).all() and not over


# ---- a layer, end to end -------------------------------------------------------------------------

def run(fmt, shape, segments, A, *, requant=False, relu=False, table=None, mem=None,
        buffers=None, **registers):
    layer = fmt.pack_layer(segments, A)
    d = Descriptor.for_layer(layer, **{"w_addr": 0x1000, "a_addr": 0x100000,
                                       "z_addr": 0x200000, "q_addr": 0x300000,
                                       "requant": requant, "relu": relu, **registers})
    mem = mem or Memory()
    for address, data in layer_image(shape, d, layer, table):
        mem.write(address, data)
    buffers = buffers or Buffers.at_reset(shape)
    result = run_layer(shape, fmt, d, mem, buffers)
    return layer, d, mem, buffers, result


def golden(fmt, segments, A):
    with quiet_padding():
        return sum(hss.matmul(hss.compress(W, fmt.modes.mode(m)), A) for W, m in segments)


@pytest.mark.parametrize("modes, kw, chosen", [
    ("4:6,2:4", dict(rows=2, cols=2), [0]),
    ("2:4", dict(rows=3, cols=2, signed=False, width=6, tile_rows=1), [0, 0]),
    (HIGHLIGHT, dict(rows=2, cols=3), [7, 0, 11]),              # TASD-style segments
])
def test_a_layer_computes_the_golden_z(modes, kw, chosen):
    fmt = fmt_of(modes, **kw)
    shape = shape_of(fmt)
    rng = np.random.default_rng(4)
    m, k, n = 2 * fmt.rows + 1, 45, 2 * fmt.cols + 1
    segments = [(weights(rng, fmt.modes.mode(c), m, k, fmt.width, fmt.signed), c)
                for c in chosen]
    A = activations(rng, k, n, fmt.width, fmt.signed)
    layer, d, mem, _, result = run(fmt, shape, segments, A)
    assert result.error == E.NONE
    Z, over = read_outputs(shape, d, mem)
    assert (Z[:m, :n] == golden(fmt, segments, A)).all() and not Z[m:].any() \
        and not Z[:, n:].any() and not over.any()
    counts = result.counts
    assert counts == layer_counts(shape, d, layer.steps_per_tile)
    assert counts.dram_bytes == minimum_dram_bytes(shape, d.m_tiles, d.n_tiles,
                                                   d.beats_per_tile)
    assert counts.steps == d.tiles * layer.steps_per_tile
    assert (counts.wbuf_writes, counts.abuf_writes) == (d.m_tiles * d.beats_per_tile,
                                                        d.n_tiles * d.beats_per_tile)
    assert counts.wbuf_reads == counts.abuf_reads == d.tiles * d.beats_per_tile
    assert counts.obuf_reads == counts.obuf_writes == d.tiles


def test_a_requantized_layer():
    fmt = fmt_of(HIGHLIGHT, rows=2, cols=2)
    shape = shape_of(fmt)
    rng = np.random.default_rng(5)
    segments = [(weights(rng, fmt.modes.mode(4), 5, 60, 8, True), 4)]
    A = activations(rng, 60, 3, 8, True)
    Z = golden(fmt, segments, A)
    rows = -(-5 // 2) * 2
    Zp = np.zeros((rows, 3), np.int64)
    Zp[:5] = Z
    scales, shifts = hss.requant.choose_scales(Zp)
    scales[0], shifts[0] = -32768, 47                             # an edge row too
    for relu in (False, True):
        _, d, mem, _, result = run(fmt, shape, segments, A, requant=True, relu=relu,
                                   table=pack_table(scales, shifts))
        assert result.error == E.NONE
        Y, over = read_outputs(shape, d, mem)
        want = requantize(Zp, scales, shifts, relu)
        assert (Y[:rows, :3] == want).all() and not Y[:, 3:].any() and not over.any()
        assert result.counts.qbuf_writes == rows and result.counts.qbuf_reads == d.tiles * 2
        assert result.counts.dram_write_bytes == d.tiles * shape.tile_words(True) * 16


def test_weights_stay_resident_between_layers():
    fmt = fmt_of("4:6,2:4", rows=2, cols=2)
    shape = shape_of(fmt)
    rng = np.random.default_rng(6)
    segments = [(weights(rng, fmt.modes.mode(0), 3, 48, 8, True), 0)]
    A1, A2 = (activations(rng, 48, 4, 8, True) for _ in range(2))
    _, _, mem, buffers, first = run(fmt, shape, segments, A1)
    layer2 = fmt.pack_layer(segments, A2)
    d2 = Descriptor.for_layer(layer2, w_addr=0x7000_0000, a_addr=0x100000, z_addr=0x400000,
                              load_w=False)
    mem.write(0x100000, layer_image(shape, d2, layer2)[0][1])     # only A2 is written
    second = run_layer(shape, fmt, d2, mem, buffers)
    assert second.error == E.NONE and second.counts.wbuf_writes == 0
    assert second.counts.dram_read_bytes == first.counts.dram_read_bytes - \
        d2.weights_bytes(shape)
    Z, _ = read_outputs(shape, d2, mem)
    assert (Z[:3, :4] == golden(fmt, segments, A2)).all()


def test_refusal_moves_nothing_and_a_bad_beat_mode_ends_the_layer():
    fmt = fmt_of(HIGHLIGHT, rows=2, cols=2)
    shape = shape_of(fmt)
    rng = np.random.default_rng(7)
    segments = [(weights(rng, fmt.modes.mode(2), 2, 30, 8, True), 2)]
    A = activations(rng, 30, 2, 8, True)
    _, _, mem, _, result = run(fmt, shape, segments, A, z_addr=0x200008)
    assert result.error == E.MISALIGNED and result.counts is None
    assert layer_counts(shape, Descriptor(1, 1, 1, z_addr=8)).dram_bytes == 0
    layer = fmt.pack_layer(segments, A)
    mode_at = fmt.weights_layout["fields"]["mode"]["offset"]
    bad = list(layer.weight_tiles[0])
    bad[-1] |= 13 << mode_at                                       # mode 13 of 12
    corrupted = type(layer)(**{**layer.__dict__, "weight_tiles": (tuple(bad),)})
    d = Descriptor.for_layer(corrupted, a_addr=0x10000, z_addr=0x20000)
    mem = Memory()
    for address, data in layer_image(shape, d, corrupted):
        mem.write(address, data)
    assert run_layer(shape, fmt, d, mem, Buffers.at_reset(shape)).error == E.BAD_MODE


def test_overflowing_tiles_wrap_and_say_so():
    fmt = fmt_of("2:4", rows=1, cols=1, max_k=8)                   # sized for 2 steps
    shape = shape_of(fmt)
    assert fmt.max_steps == 2
    W = np.array([[127, 127, 0, 0] * 4])
    A = np.full((16, 1), 127)
    _, d, mem, _, result = run(fmt, shape, [(W, 0)], A)
    Z, over = read_outputs(shape, d, mem)
    assert over.all() and Z[0, 0] == fmt.wrap(8 * 127 * 127)
    _, d, mem, _, _ = run(fmt, shape, [(W[:, :8], 0)], A[:8])
    assert not read_outputs(shape, d, mem)[1].any()


# ---- counts -------------------------------------------------------------------------------------

def test_counts_by_hand_and_the_roofline():
    d = good(m_tiles=2, n_tiles=3, beats_per_tile=10, requant=True)
    c = layer_counts(SHAPE, d, steps_per_tile=15)
    table = 2 * 16                                              # 8 entries, 4 a word
    assert c.dram_read_bytes == table + 3 * 10 * 6 * 16 + 2 * 10 * 3 * 16
    assert c.dram_write_bytes == 6 * 2 * 16
    assert (c.wbuf_writes, c.abuf_writes, c.wbuf_reads, c.abuf_reads) == (20, 30, 60, 60)
    assert (c.obuf_writes, c.obuf_reads, c.qbuf_writes, c.qbuf_reads) == (6, 6, 8, 24)
    assert (c.steps, c.compute_cycles) == (90, 94)
    assert c.dram_cycles == -(-c.dram_bytes // 16) and c.cycles_lower_bound == c.dram_cycles
    compute_bound = layer_counts(SHAPE, d, steps_per_tile=1000)
    assert compute_bound.cycles_lower_bound == 6 * 1000 + 4
    assert (c + c).steps == 180
    assert minimum_dram_bytes(SHAPE, 2, 3, 10, True) == c.dram_bytes
    with pytest.raises(SystemModelError, match="steps_per_tile must be at least 10"):
        layer_counts(SHAPE, d, steps_per_tile=9)


# ---- the driver's split ---------------------------------------------------------------------------

def brute_force(m_tiles, n_tiles, bpt, shape, requant):
    """The fewest DRAM bytes over both loop orders, chunks as large as they fit, plain
    (not snake) and snake inner orders: the split's answer must be at least as good."""
    w_fit = min(m_tiles, shape.wbuf_depth // bpt,
                shape.qbuf_depth // shape.rows if requant else m_tiles)
    a_fit = min(n_tiles, shape.abuf_depth // bpt)
    d = Descriptor(1, 1, bpt, requant=requant)
    w_b, a_b = d.weights_bytes(shape), d.acts_bytes(shape)
    out = d.output_bytes(shape) * m_tiles * n_tiles
    mc, nc = -(-m_tiles // w_fit), -(-n_tiles // a_fit)
    q = (shape.table_words(w_fit) * shape.word_bytes) if requant else 0
    plain = [w_b * m_tiles + a_b * n_tiles * (mc if nc > 1 else 1),
             a_b * n_tiles + w_b * m_tiles * (nc if mc > 1 else 1)]
    return min(plain) + out + q * mc * nc


@pytest.mark.parametrize("m_tiles, n_tiles, bpt, requant", [
    (5, 3, 20, True),          # fits: one part
    (5, 40, 20, False),        # weights fit, activations do not: split N
    (30, 3, 20, True),         # activations fit, weights do not: split M
    (30, 40, 10, True),        # neither: both orders weighed
    (7, 90, 30, False),
    (100, 1, 1, False),
])
def test_split_layer(m_tiles, n_tiles, bpt, requant):
    split = split_layer(m_tiles, n_tiles, bpt, SHAPE, requant=requant)
    layer = Descriptor(m_tiles, n_tiles, bpt, w_addr=0x1000_0000, a_addr=0x2000_0000,
                       z_addr=0x3000_0000, q_addr=0x4000_0000, requant=requant)
    total = None
    for part in split.parts:
        d = part.descriptor(SHAPE, layer)
        assert d.check(SHAPE) == E.NONE, part
        total = layer_counts(SHAPE, d) if total is None else total + layer_counts(SHAPE, d)
    assert total == split.counts
    tiles = split.output_tiles()
    assert sorted(tiles) == sorted(itertools.product(range(n_tiles), range(m_tiles)))
    assert split.counts.dram_bytes <= brute_force(m_tiles, n_tiles, bpt, SHAPE, requant)
    assert split.counts.dram_bytes >= split.minimum_dram_bytes
    fits = m_tiles * bpt <= 100 and n_tiles * bpt <= 60 and (not requant or m_tiles <= 16)
    assert (len(split.parts) == 1) == fits
    if fits:
        assert split.counts.dram_bytes == split.minimum_dram_bytes
    if m_tiles * bpt <= 100 and (not requant or m_tiles <= 16):
        # the weights fit: loaded once, resident for every other part
        assert split.order == "weights resident"
        assert [p.load_w for p in split.parts] == [True] + [False] * (len(split.parts) - 1)
        assert split.counts.dram_bytes == split.minimum_dram_bytes + \
            (len(split.parts) - 1) * layer.table_bytes(SHAPE)
    # loads follow residency: a part loads what the previous part did not leave
    for before, after in zip(split.parts, split.parts[1:]):
        assert after.load_w == ((before.mt0, before.m_tiles) != (after.mt0, after.m_tiles))
        assert after.load_a == ((before.nt0, before.n_tiles) != (after.nt0, after.n_tiles))


def test_split_by_hand_snake_order():
    """30 m-tiles of 10 beats (3 chunks of 10 fit wbuf), 40 n-tiles (7 chunks of 6 fit
    abuf): weights resident reads W once and A 40 + 36 + 34 n-tiles (each turn keeps the
    last chunk); activations resident reads A once and W 30 + 6 * 20 m-tiles: it wins."""
    w_tile, a_tile = 10 * 3 * 16, 10 * 6 * 16
    split = split_layer(30, 40, 10, SHAPE)
    assert split.order == "activations resident" and len(split.parts) == 21
    assert split.counts.dram_read_bytes == 40 * a_tile + (30 + 6 * 20) * w_tile
    assert split.counts.dram_write_bytes == 30 * 40 * 4 * 16
    assert 40 * a_tile + 150 * w_tile < 30 * w_tile + 110 * a_tile     # the other order


def test_split_parts_run_to_the_whole_layer():
    """A layer split into parts, each run on the model: the same Z as one run."""
    fmt = fmt_of("4:6,2:4", rows=2, cols=2)
    # buffers for 3 m-tiles and 2 n-tiles of 2 beats (185- and 384-bit beats), 4 table rows
    shape = SystemShape.for_format(fmt, wbuf_bytes=139, abuf_bytes=4 * 48, qbuf_rows=8)
    assert (shape.wbuf_depth, shape.abuf_depth) == (6, 4)
    rng = np.random.default_rng(8)
    segments = [(weights(rng, fmt.modes.mode(0), 9, 48, 8, True), 0)]
    A = activations(rng, 48, 9, 8, True)
    layer = fmt.pack_layer(segments, A)
    scales, shifts = np.full(10, 3), np.full(10, 9)
    whole = Descriptor.for_layer(layer, w_addr=0x1000, a_addr=0x10000, z_addr=0x20000,
                                 q_addr=0x30000, requant=True)
    mem = Memory()
    big = SystemShape(**{**shape.__dict__, "wbuf_depth": 100, "abuf_depth": 100,
                         "qbuf_depth": 100})
    for address, data in layer_image(big, whole, layer, pack_table(scales, shifts)):
        mem.write(address, data)
    split = split_layer(layer.m_tiles, layer.n_tiles, layer.beats_per_tile, shape,
                        requant=True)
    assert len(split.parts) > 2
    buffers = Buffers.at_reset(shape)
    for part in split.parts:
        assert run_layer(shape, fmt, part.descriptor(shape, whole), mem, buffers).error == E.NONE
    Y = np.zeros((10, 10), np.int64)
    for t, (nt, mt) in enumerate(split.output_tiles()):
        y, _ = unpack_output_tile(shape, mem.read(0x20000 + t * 16, 16), True)
        Y[mt * 2:mt * 2 + 2, nt * 2:nt * 2 + 2] = y
    Zp = np.zeros((10, 10), np.int64)
    Zp[:9, :9] = golden(fmt, segments, A)
    assert (Y == requantize(Zp, scales, shifts)).all()


def test_split_refusals():
    with pytest.raises(SystemModelError, match="one m-tile's 101 weights beats do not fit wbuf"):
        split_layer(1, 1, 101, SHAPE)
    with pytest.raises(SystemModelError, match="one n-tile's 61 activations beats"):
        split_layer(1, 1, 61, SHAPE)
    no_q = SystemShape(**{**SHAPE.__dict__, "qbuf_depth": 0})
    with pytest.raises(SystemModelError, match="qbuf .0 entries. cannot hold"):
        split_layer(1, 1, 1, no_q, requant=True)
    tiny = SystemShape(**{**SHAPE.__dict__, "rows": 1, "dma_bits": 512, "qbuf_depth": 8})
    with pytest.raises(SystemModelError, match="16 m-tiles, more than the buffers hold"):
        split_layer(20, 1, 1, tiny, requant=True)
    with pytest.raises(SystemModelError, match="m_tiles must be at least 1"):
        split_layer(0, 1, 1, SHAPE)


def test_the_host_side_needs_no_amaranth():
    """The driver imports these without the generator: no Amaranth, hdl or gen."""
    code = ("import sys\n"
            "for name in ('amaranth', 'hdl', 'gen', 'synth'):\n"
            "    sys.modules[name] = None\n"
            "import hss.beats, hss.requant, hss.system\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('amaranth', 'hdl', 'gen', 'synth') and sys.modules[m] is not None))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


def test_tile_order_walks_chunks_of_m_tiles_n_tile_by_n_tile():
    from hss.system import tile_order
    assert tile_order(3, 2, 8) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert tile_order(5, 2, 2) == [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (0, 3), (1, 2),
                                   (1, 3), (0, 4), (1, 4)]
    for m, n, c in ((7, 3, 3), (1, 1, 1), (4, 5, 4)):
        order = tile_order(m, n, c)
        assert sorted(order) == [(nt, mt) for nt in range(n) for mt in range(m)]
    with pytest.raises(Exception, match="chunk"):
        tile_order(2, 2, 0)
