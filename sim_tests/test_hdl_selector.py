"""GHSelector and GHScatter against the golden choice, on every window of every output.

Golden: ``outputs[i] = inputs[offsets[i]]`` (selector) and ``outputs[offsets[i]] =
inputs[i]``, zero elsewhere (scatter), for canonical (strictly increasing) offsets.
Payloads are compared bit for bit, so scalar and block payloads share one checker.
"""
import contextlib
import gc
import itertools
import math
import warnings

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import Fragment, Shape, UnusedElaboratable, Value, signed, unsigned
from amaranth.lib import data
from amaranth.sim import Simulator

from hdl.selector import GHScatter, GHSelector, offset_bits
from simkit import chunks, unpack

# (g, h): dense ranks, the extremes of the window (1:H, H-1:H), every rank of the
# required patterns (2:4, 4:6, 3:4, 1:8, 8:8, 4:4, 8:24, 2:3) and a few odd sizes.
GH = [(1, 1), (1, 2), (2, 2), (2, 3), (2, 4), (3, 4), (4, 4), (3, 5), (4, 6), (5, 7),
      (1, 8), (7, 8), (8, 8), (8, 24)]
PAYLOADS = {
    "u8": unsigned(8),
    "s8": signed(8),
    "u1": unsigned(1),
    "block4xs8": data.ArrayLayout(signed(8), 4),              # a rank-0 block of int8
    "block3x2xu5": data.ArrayLayout(data.ArrayLayout(unsigned(5), 2), 3),  # nested blocks
}
MAX_COMBOS = 300


def window_edges(g, h):
    """Offsets putting slot i at every position j of its window ``[i, h-g+i]``: the other
    slots packed tightly around it. Together they hit every (output, input) pair."""
    out = []
    for i in range(g):
        for j in range(i, h - g + i + 1):
            out.append(tuple(range(j - i, j)) + (j,) + tuple(range(j + 1, j + g - i)))
    return out


def offset_sets(g, h, seed):
    """All canonical offset tuples when there are few, else a fixed random sample; always
    the window edges (lowest, highest and every per-slot extreme)."""
    edges = window_edges(g, h)
    if math.comb(h, g) <= MAX_COMBOS:
        combos = list(itertools.combinations(range(h), g))
    else:
        rng = np.random.default_rng(seed)
        combos = [tuple(sorted(rng.choice(h, g, replace=False).tolist()))
                  for _ in range(MAX_COMBOS)]
    for o in edges + combos:
        assert len(o) == g and list(o) == sorted(set(o)) and 0 <= o[0] and o[-1] < h
    return edges + combos


def simulate_comb(dut, check):
    """Run the async testbench ``check(ctx)`` on a purely combinational ``dut``."""
    sim = Simulator(dut)
    sim.add_testbench(check)
    sim.run()


def drive_and_check(dut, g, h, payload, n_in, n_out, golden, seed):
    bits = Shape.cast(payload).width
    obits = offset_bits(g, h)
    rng = np.random.default_rng(seed)
    cases = offset_sets(g, h, seed)
    checked = []

    async def tb(ctx):
        for offsets in cases:
            fields = [int(x) for x in rng.integers(0, 1 << bits, n_in, dtype=np.uint64)]
            word = sum(f << (i * bits) for i, f in enumerate(fields))
            ctx.set(Value.cast(dut.inputs), word)
            if obits:
                ctx.set(Value.cast(dut.offsets),
                        sum(o << (i * obits) for i, o in enumerate(offsets)))
            got = chunks(ctx.get(Value.cast(dut.outputs)), bits, n_out)
            want = golden(fields, offsets)
            assert got == want, (f"{type(dut).__name__}({g}, {h}) offsets {offsets}: "
                                 f"got {got}, expected {want}")
            checked.append(offsets)

    simulate_comb(dut, tb)
    assert len(checked) == len(cases)  # the testbench really ran every case


def select_golden(fields, offsets):
    return [fields[o] for o in offsets]


def scatter_golden(h):
    def golden(fields, offsets):
        out = [0] * h
        for i, o in enumerate(offsets):
            out[o] = fields[i]
        return out
    return golden


gh_ids = [f"{g}:{h}" for g, h in GH]


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
@pytest.mark.parametrize("g,h", GH, ids=gh_ids)
def test_selector_matches_golden_choice(g, h, payload):
    sel = GHSelector(g, h, payload)
    drive_and_check(sel, g, h, payload, h, g, select_golden, seed=g * 100 + h)


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
@pytest.mark.parametrize("g,h", GH, ids=gh_ids)
def test_scatter_is_the_inverse_zero_elsewhere(g, h, payload):
    sc = GHScatter(g, h, payload)
    drive_and_check(sc, g, h, payload, g, h, scatter_golden(h), seed=g * 100 + h + 7)


def test_block_payload_keeps_element_values():
    """Through the Amaranth views too: a block of signed values arrives intact."""
    layout = data.ArrayLayout(signed(8), 4)
    sel = GHSelector(2, 4, layout)
    blocks = [[-128, 127, -1, 0], [1, 2, 3, 4], [-5, -6, -7, -8], [100, -100, 50, -50]]

    async def tb(ctx):
        for i, block in enumerate(blocks):
            for e, v in enumerate(block):
                ctx.set(sel.inputs[i][e], v)
        for offsets in [(0, 1), (0, 3), (1, 2), (2, 3)]:
            for i, o in enumerate(offsets):
                ctx.set(sel.offsets[i], o)
            got = unpack(ctx.get(Value.cast(sel.outputs)), sel.outputs.shape())
            assert got == [blocks[o] for o in offsets]

    simulate_comb(sel, tb)


@pytest.mark.parametrize("cls", [GHSelector, GHScatter])
@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_g_equal_h_is_wires(cls, n):
    """A dense rank costs nothing: no offset bits, no cells, no mux in the netlist."""
    dut = cls(n, n, signed(8))
    assert Value.cast(dut.offsets).shape().width == 0
    text = rtlil.convert(dut)
    assert " cell " not in text and "switch" not in text, text

    async def tb(ctx):
        rng = np.random.default_rng(n)
        for _ in range(20):
            word = int(rng.integers(0, 1 << 62)) & ((1 << (8 * n)) - 1)
            ctx.set(Value.cast(dut.inputs), word)
            assert ctx.get(Value.cast(dut.outputs)) == word

    simulate_comb(dut, tb)


@pytest.mark.parametrize("g,h", [(2, 4), (4, 6), (1, 8), (8, 24), (2, 3)], ids=str)
def test_offset_width_is_the_rank_metadata(g, h):
    """Offsets are ceil(log2 H) bits, as stored in the compressed format."""
    assert offset_bits(g, h) == max(1, math.ceil(math.log2(h)))
    sel = GHSelector(g, h, unsigned(8))
    assert sel.offsets.shape() == data.ArrayLayout(unsigned(offset_bits(g, h)), g)
    Fragment.get(sel, None)  # elaborates (and marks it used)


@pytest.mark.parametrize("cls", [GHSelector, GHScatter])
@pytest.mark.parametrize("g,h,exc,match", [
    (3, 2, ValueError, "g=3 exceeds h=2"),
    (9, 8, ValueError, "g=9 exceeds h=8"),
    (0, 4, ValueError, "g must be a positive integer, not 0"),
    (2, -1, ValueError, "h must be a positive integer, not -1"),
    (2.0, 4, TypeError, "g must be a positive integer, not 2.0"),
    (2, "4", TypeError, "h must be a positive integer, not '4'"),
    (True, 4, TypeError, "g must be a positive integer, not True"),
    (None, 4, TypeError, "g must be a positive integer, not None"),
], ids=["g>h", "9>8", "g=0", "h<0", "float", "str", "bool", "None"])
def test_constructor_checks_eagerly(cls, g, h, exc, match):
    with never_elaborated(), pytest.raises(exc, match=match):
        cls(g, h, unsigned(8))


@pytest.mark.parametrize("cls", [GHSelector, GHScatter])
def test_constructor_rejects_a_non_shape_payload(cls):
    with never_elaborated(), pytest.raises(TypeError):
        cls(2, 4, "int8")


@contextlib.contextmanager
def never_elaborated():
    """Silence the warning about the half-built component a failed constructor leaves."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        yield
        gc.collect()


# -- after Yosys synthesis: a dense rank costs nothing, a sparse one costs muxes ---------
@pytest.mark.parametrize("g, h, payload", [(4, 4, 8), (8, 8, 8), (1, 1, 16), (6, 6, (4, 8))])
def test_dense_selector_synthesizes_to_no_cells(tmp_path, g, h, payload):
    import synth
    from amaranth.back import verilog as amaranth_verilog
    shape = (data.ArrayLayout(signed(payload[1]), payload[0]) if isinstance(payload, tuple)
             else signed(payload))
    text = amaranth_verilog.convert(GHSelector(g, h, shape), name="sel")
    area = synth.area_nand2(text, "sel", tmp_path)
    assert area["total"]["cells"] == {} and area["total"]["area"] == 0


def test_sparse_selector_synthesizes_to_muxes(tmp_path):
    import synth
    from amaranth.back import verilog as amaranth_verilog
    text = amaranth_verilog.convert(GHSelector(2, 4, signed(8)), name="sel")
    area = synth.area_nand2(text, "sel", tmp_path)
    assert area["total"]["area"] > 0 and area["total"]["ff_count"] == 0
