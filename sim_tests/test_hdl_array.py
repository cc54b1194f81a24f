"""PEArray against ``hss.matmul``, fed the beats of ``hdl.stimulus.gemm_vectors``.

The array has no streams: the testbench plays the top's role (``first``/``last`` per tile,
``valid`` gaps, ``en`` stalls) and takes each finished tile when ``sum_valid`` and ``en``.
GEMMs of every weight kind run back to back; M, K and N do not fit the array evenly.
"""
import numpy as np
import pytest
from amaranth.hdl import Value
from amaranth.sim import Simulator

from hdl import AcceleratorConfig, PEArray
from hdl.stimulus import gemm_vectors
from hdl.top import weight_beat_layout
from simkit import WEIGHT_KINDS, activations, quiet_padding, unpack, weights

# (pattern, rows, cols, signed): every pattern, signed and unsigned; every array size
# with several patterns; 4x4 with 4:6,2:4 and two more.
MATRIX = [
    ("2:4", 1, 1, True), ("1:8", 1, 1, False), ("2:3,3:4,2:4", 1, 1, True),
    ("8:24", 1, 1, False), ("3:4,2:4", 1, 1, True),
    ("2:4", 2, 3, False), ("4:6,2:4", 2, 3, False), ("3:4,2:4", 2, 3, False),
    ("1:8", 2, 3, True), ("8:8", 2, 3, True), ("8:8", 2, 3, False), ("4:4,2:4", 2, 3, True),
    ("4:4,2:4", 2, 3, False), ("8:24", 2, 3, True), ("2:3,3:4,2:4", 2, 3, False),
    ("4:6,2:4", 4, 4, True), ("8:24", 4, 4, False), ("2:3,3:4,2:4", 4, 4, True),
]


def case_id(pattern, rows, cols, is_signed, width=8):
    return f"{pattern}-{rows}x{cols}-{'s' if is_signed else 'u'}{width}"


def gemms(config, seed):
    """One GEMM per weight kind; shapes that overhang the array in M, N and K."""
    c, p = config, config.pattern
    rng = np.random.default_rng(seed)
    out = []
    for i, kind in enumerate(WEIGHT_KINDS):
        m = c.rows * (1 + i % 2) + (i % c.rows if c.rows > 1 else 0) + (c.rows > 1)
        n = c.cols + (i % 3) + (c.cols > 1)
        groups = 1 + i % 3
        k = groups * p.group_size
        if kind in ("random", "sparser"):
            k += p.group_size // 2 + 1  # padded: a partial last group
        W = weights(rng, p, m, k, c.width, c.signed, kind)
        A = activations(rng, k, n, c.width, c.signed,
                        "extreme" if kind == "extreme" else "random")
        with quiet_padding():
            out.append((kind, gemm_vectors(c, W, A)))
    return out


def simulate_array(config, vectors, *, gaps=0.0, en_stalls=0.0, seed=0):
    """Play every GEMM's beats into the array; return the tiles it produced."""
    c = config
    array = PEArray(c)
    rng = np.random.default_rng(seed)
    groups_bits = weight_beat_layout(c)["last"].offset
    steps = []  # (weights, acts, first, last)
    for v in vectors:
        for t in range(v.tiles):
            for g in range(v.steps_per_tile):
                n = t * v.steps_per_tile + g
                steps.append((v.weight_beats[n] & ((1 << groups_bits) - 1), v.act_beats[n],
                              g == 0, g == v.steps_per_tile - 1))
    n_tiles = sum(v.tiles for v in vectors)
    tiles = []
    sums_layout = array.sums.shape()

    async def tb(ctx):
        i = 0
        for _ in range(50 * (len(steps) + n_tiles) + 100):  # bounded: never hang
            if len(tiles) == n_tiles:
                break
            en = not (en_stalls and rng.random() < en_stalls)
            valid = i < len(steps) and not (gaps and rng.random() < gaps)
            ctx.set(array.en, en)
            ctx.set(array.valid, valid)
            if valid:
                w, a, first, last = steps[i]
                ctx.set(Value.cast(array.weights), w)
                ctx.set(Value.cast(array.acts), a)
                ctx.set(array.first, first)
                ctx.set(array.last, last)
                i += en
            if en and ctx.get(array.sum_valid):
                tiles.append(np.array(unpack(ctx.get(Value.cast(array.sums)), sums_layout)))
            await ctx.tick()
        assert len(tiles) == n_tiles, f"{len(tiles)} of {n_tiles} tiles came out"
        assert i == len(steps)

    sim = Simulator(array)
    sim.add_clock(1e-9)
    sim.add_testbench(tb)
    sim.run()
    return tiles


def check(vectors, named, tiles):
    n = 0
    for kind, v in named:
        got = tiles[n:n + v.tiles]
        n += v.tiles
        for t, (tile, want) in enumerate(zip(got, v.expected_tiles)):
            assert (tile == want).all(), f"{kind} GEMM, tile {t} at {v.tile_origins[t]}"
        assert (v.assemble(got) == v.expected).all(), f"{kind} GEMM"
    assert n == len(tiles)


@pytest.mark.parametrize("pattern,rows,cols,is_signed", MATRIX,
                         ids=[case_id(*c) for c in MATRIX])
def test_array_matches_matmul(pattern, rows, cols, is_signed):
    config = AcceleratorConfig(pattern, rows, cols, 8, is_signed)
    named = gemms(config, seed=rows * 10 + cols + len(pattern))
    vectors = [v for _, v in named]
    assert any(v.m % rows or v.n % cols for v in vectors) or rows == cols == 1
    tiles = simulate_array(config, vectors, gaps=0.25, seed=1)
    check(vectors, named, tiles)


@pytest.mark.parametrize("pattern,rows,cols,is_signed",
                         [("4:6,2:4", 2, 3, True), ("2:4", 1, 1, False)],
                         ids=[case_id("4:6,2:4", 2, 3, True), case_id("2:4", 1, 1, False)])
def test_array_holds_while_disabled(pattern, rows, cols, is_signed):
    """``en`` low freezes every PE in lockstep, finished tiles included."""
    config = AcceleratorConfig(pattern, rows, cols, 8, is_signed)
    named = gemms(config, seed=7)
    vectors = [v for _, v in named]
    tiles = simulate_array(config, vectors, gaps=0.2, en_stalls=0.4, seed=2)
    check(vectors, named, tiles)


def test_array_16bit():
    config = AcceleratorConfig("3:4,2:4", 2, 3, 16, True)
    named = gemms(config, seed=16)
    vectors = [v for _, v in named]
    tiles = simulate_array(config, vectors, gaps=0.1, seed=3)
    check(vectors, named, tiles)
