"""hss.fetchbeats: the fetch weights beat of a system with rank 1 at the activation fetch.

Its low bits must be the rank-0 engine's own ``weights`` payload (packed here from the
Amaranth layouts by ``hdl.stimulus``), a layer must run through the golden model to
``W @ A``, and what it cannot hold is refused in one line."""
import numpy as np
import pytest

import hss
from hdl import config as hdl_config
from hdl.stimulus import gemm_vectors
from hss import fetch as F
from hss.fetchbeats import FetchFormat
from hss.system import (Buffers, Descriptor, SystemShape, layer_counts, layer_image,
                        minimum_dram_bytes, read_outputs, run_layer)
from simkit import quiet_padding
from test_hss_system import Memory, fmt_of


def _shared_w(rng, m, k, pattern, rows):
    return F.prune_shared(rng.integers(-128, 128, (m, k)), pattern, rows)


@pytest.mark.parametrize("pattern, rows, cols", [("4:6,2:4", 2, 2), ("2:3,1:2", 3, 2),
                                                 ("1:4,2:4", 2, 3)])
def test_the_low_bits_are_the_rank0_engines_beat(pattern, rows, cols):
    fmt = FetchFormat(fmt_of(pattern, rows=rows, cols=cols))
    rng = np.random.default_rng(1)
    p = hss.Pattern.parse(pattern)
    m, k, n = rows, 3 * p.group_size, cols
    W = _shared_w(rng, m, k, pattern, rows)
    with quiet_padding():
        layer = fmt.pack_layer([(W, 0)], rng.integers(-128, 128, (k, n)))
        shared = F.compress_shared(W, p, rows)
        # the rank-0 engine's operand: per row and group the G1 blocks the tile fetches
        blocks = W.reshape(m, -1, p.H[1], p.H[0])
        picked = np.take_along_axis(blocks, shared.tile_offsets[0][None, :, :, None], axis=2)
        inner = hdl_config.build_config(str(fmt.inner_pattern), rows=rows, cols=cols,
                                        acc_width=fmt.acc_width)
        v = gemm_vectors(inner, picked.reshape(m, -1), np.zeros((picked[0].size, n), int))
    low = (1 << fmt.inner_beat_bits) - 1
    assert fmt.inner_beat_bits == inner.weight_beat_bits
    assert [b & low for b in layer.weight_tiles[0]] == list(v.weight_beats)
    tile = [b >> fmt.inner_beat_bits for b in layer.weight_tiles[0]]
    bits = p.offset_bits(1)
    assert tile == [sum(int(o) << (j * bits) for j, o in enumerate(offs))
                    for offs in shared.tile_offsets[0]]
    assert fmt.weight_beat_bits == fmt.inner_beat_bits + p.G[1] * bits
    assert fmt.weight_beat_bits < fmt.engine.weight_beat_bits     # rows - 1 offset sets less


@pytest.mark.parametrize("requant", [False, True])
def test_a_layer_through_the_golden_model(requant):
    fmt = FetchFormat(fmt_of("4:6,2:4", rows=2, cols=3))
    shape = SystemShape.for_format(fmt)
    assert (shape.act_banks, shape.banks_read, shape.fetch) == (6, 4, True)
    rng = np.random.default_rng(2)
    m, k, n = 5, 70, 7
    W = _shared_w(rng, m, k, "4:6,2:4", 2)
    A = rng.integers(-128, 128, (k, n))
    with quiet_padding():
        layer = fmt.pack_layer([(W, 0)], A)
    d = Descriptor.for_layer(layer, w_addr=0x1000, a_addr=0x100000, z_addr=0x200000,
                             q_addr=0x300000, requant=requant)
    table = hss.requant.pack_table(*hss.requant.choose_scales(
        np.vstack([W @ A, np.zeros((1, n), int)]))) if requant else None
    mem = Memory()
    for address, data in layer_image(shape, d, layer, table):
        mem.write(address, data)
    result = run_layer(shape, fmt, d, mem, Buffers.at_reset(shape))
    Z, over = read_outputs(shape, d, mem)
    if not requant:
        assert (Z[:m, :n] == W @ A).all() and not over.any()
    counts = result.counts
    assert counts == layer_counts(shape, d, layer.steps_per_tile)
    assert counts.abuf_reads == 4 * d.tiles * d.beats_per_tile
    assert counts.abuf_writes == 6 * d.n_tiles * d.beats_per_tile
    assert counts.dram_bytes == minimum_dram_bytes(shape, d.m_tiles, d.n_tiles,
                                                   d.beats_per_tile, requant)


def test_the_fetch_uses_one_set_of_offsets_for_every_row():
    """A beat is read as the hardware reads it: the tile's offsets for all rows."""
    fmt = FetchFormat(fmt_of("4:6,2:4", rows=2, cols=2))
    rng = np.random.default_rng(3)
    W = _shared_w(rng, 2, 24, "4:6,2:4", 2)
    with quiet_padding():
        layer = fmt.pack_layer([(W, 0)], rng.integers(-9, 9, (24, 2)))
    (beat,) = fmt.decode_weights(layer.weight_tiles[0])
    assert (beat.offsets[1][0] == beat.offsets[1][1]).all() and beat.last


def test_what_a_fetch_build_cannot_hold_is_refused():
    with pytest.raises(hss.HSSError, match="fixed pattern"):
        FetchFormat(fmt_of("4:4|4:6,2:4", rows=2, cols=2))
    with pytest.raises(hss.HSSError, match="two-rank"):
        FetchFormat(fmt_of("2:4", rows=2, cols=2))
    with pytest.raises(hss.HSSError, match="dense"):
        FetchFormat(fmt_of("4:4,2:4", rows=2, cols=2))
    fmt = FetchFormat(fmt_of("4:6,2:4", rows=2, cols=2))
    W = np.zeros((2, 24), int)
    W[0, [0, 4, 8, 12]] = 1                   # blocks 0-3
    W[1, [8, 12, 16, 20]] = 1                 # blocks 2-5: six blocks in the tile
    assert hss.conforms(W, "4:6,2:4") and not F.conforms_shared(W, "4:6,2:4", 2)
    with pytest.raises(hss.ConformanceError, match="tile's rows"):
        fmt.pack_layer([(W, 0)], np.zeros((24, 2), int))
    with pytest.raises(hss.HSSError, match="one segment"):
        fmt.pack_layer([(W, 0), (W, 0)], np.zeros((24, 2), int))
