"""HSSAccelerator end to end against ``hss.matmul``, through its three streams.

GEMMs from ``hdl.stimulus.gemm_vectors`` (M, K, N overhanging the array), of every weight
kind, back to back, with random valid gaps on both inputs and random ready backpressure
on the tiles; extreme values at the configured ``max_k``; the ``overflow`` flag; the
cycle count without backpressure and the speed-up over the dense twin.
"""
import gc
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable

import hss
from amaranth.hdl import Fragment

from hdl import (LATENCY, AcceleratorConfig, FlexAccelerator, FlexConfig, HSSAccelerator,
                 accelerator_for)
from hdl.shared import SharedModules
from hdl.top import last_beat_latency, tile_layout
from hdl.stimulus import gemm_vectors, unpack_tiles
from simkit import (WEIGHT_KINDS, activations, quiet_padding, run_gemms, value_limits, weights, wrap)

# (pattern, rows, cols, signed): every pattern on at least one array in signed and
# unsigned, every array size with several patterns, 4x4 with 4:6,2:4 and three more.
MATRIX = [
    ("2:4", 1, 1, True), ("1:8", 1, 1, False), ("2:3,3:4,2:4", 1, 1, False),
    ("8:24", 1, 1, True), ("4:4,2:4", 1, 1, True),
    ("2:4", 2, 3, False), ("4:6,2:4", 2, 3, True), ("4:6,2:4", 2, 3, False),
    ("3:4,2:4", 2, 3, True), ("3:4,2:4", 2, 3, False), ("1:8", 2, 3, True),
    ("8:8", 2, 3, True), ("8:8", 2, 3, False), ("4:4,2:4", 2, 3, False),
    ("8:24", 2, 3, False), ("2:3,3:4,2:4", 2, 3, True),
    ("4:6,2:4", 4, 4, True), ("8:24", 4, 4, False), ("2:4", 4, 4, True),
    ("8:8", 4, 4, False),
]


def case_id(pattern, rows, cols, is_signed, width=8):
    return f"{pattern}-{rows}x{cols}-{'s' if is_signed else 'u'}{width}"


def simulate(config, vectors, *, idle=0.0, stall=0.0, seed=0):
    """Stream the beats of all ``vectors`` back to back; return (tiles as (z, overflow),
    weight handshake cycles, tile handshake cycles)."""
    tiles, w_log, t_log = run_gemms(HSSAccelerator(config), vectors, idle=idle, stall=stall,
                                    seed=seed)
    return unpack_tiles(config, tiles), w_log, t_log


def check_tiles(named, tiles, overflow=False):
    """Each GEMM's tiles against its golden tiles and assembled Z against ``hss.matmul``."""
    n = 0
    for kind, v in named:
        got = tiles[n:n + v.tiles]
        n += v.tiles
        for t, ((z, over), want) in enumerate(zip(got, v.expected_tiles)):
            assert (z == want).all(), (f"{kind} GEMM {v.m}x{v.k}x{v.n}, tile {t} at "
                                       f"{v.tile_origins[t]}:\n{z}\nexpected\n{want}")
            assert over == overflow, f"{kind} GEMM tile {t}: overflow flag"
        assert (v.assemble([z for z, _ in got]) == v.expected).all(), f"{kind} GEMM"
    assert n == len(tiles)


def gemms(config, seed, kinds=WEIGHT_KINDS + ("random",)):
    """One GEMM per weight kind (and a second random one), shapes overhanging the array
    in M, N (and K, zero-padded)."""
    c, p = config, config.pattern
    rng = np.random.default_rng(seed)
    out = []
    for i, kind in enumerate(kinds):
        m = c.rows * (1 + i % 2) + (c.rows > 1)
        n = c.cols * (1 + (i + 1) % 2) + (c.cols > 1)
        k = (1 + i % 3) * p.group_size
        if kind in ("random", "sparser"):
            k += p.group_size // 3 + 1  # K not a multiple of the group: zero-padded
        W = weights(rng, p, m, k, c.width, c.signed, kind)
        A = activations(rng, k, n, c.width, c.signed,
                        "extreme" if kind == "extreme" else "random")
        with quiet_padding():
            out.append((kind, gemm_vectors(c, W, A)))
    return out


@pytest.mark.parametrize("pattern,rows,cols,is_signed", MATRIX,
                         ids=[case_id(*c) for c in MATRIX])
def test_gemms_back_to_back_with_backpressure(pattern, rows, cols, is_signed):
    config = AcceleratorConfig(pattern, rows, cols, 8, is_signed)
    named = gemms(config, seed=rows * 100 + cols * 10 + len(pattern) + is_signed)
    if rows * cols > 1:
        assert any(v.m % rows or v.n % cols for _, v in named)
    assert any(v.k % config.pattern.group_size for _, v in named)
    tiles, _, _ = simulate(config, [v for _, v in named], idle=0.3, stall=0.4, seed=3)
    check_tiles(named, tiles)


# (pattern, rows, cols, tile_rows): tiles that leave in several beats, as a large array's do
# (hdl.config.MAX_SIGNAL_BITS), on arrays small enough to simulate
SPLIT = [("4:6,2:4", 4, 3, 2), ("2:4", 3, 2, 1), ("8:8", 4, 1, 1), ("4:6,2:4", 2, 2, 2)]


@pytest.mark.parametrize("pattern,rows,cols,tile_rows", SPLIT,
                         ids=[f"{p}-{r}x{c}-rows{t}" for p, r, c, t in SPLIT])
def test_tiles_in_several_beats_with_backpressure(pattern, rows, cols, tile_rows):
    """Each tile as ``tile_beats`` beats of ``tile_rows`` rows, ``last`` on its final beat
    (``unpack_tiles`` checks), GEMMs back to back under random stalls; one beat per tile
    keeps the small builds' layout (no ``last`` field)."""
    config = AcceleratorConfig(pattern, rows, cols, 8, True, tile_rows=tile_rows)
    assert config.tile_beats == rows // tile_rows
    assert ("last" in tile_layout(config).members) == (config.tile_beats > 1)
    named = gemms(config, seed=rows * 10 + cols + tile_rows)
    tiles, _, _ = simulate(config, [v for _, v in named], idle=0.3, stall=0.5, seed=11)
    check_tiles(named, tiles)


@pytest.mark.parametrize("groups", [1, 2, 4, 6], ids=lambda g: f"K={g}S")
def test_several_beats_cycle_count(groups):
    """4 beats a tile: tiles of at least 4 steps drain while the next computes (the last
    beat ``last_beat_latency`` cycles after the last step, tiles back to back); shorter
    tiles stall the engine and come out every 4 cycles."""
    config = AcceleratorConfig("4:6,2:4", 4, 2, 8, True, tile_rows=1)
    p, beats = config.pattern, config.tile_beats
    rng = np.random.default_rng(groups)
    k = groups * p.group_size
    v = gemm_vectors(config, weights(rng, p, 8, k, 8, True), activations(rng, k, 4, 8, True))
    assert v.tiles == 4
    tiles, w_log, t_log = simulate(config, [v])
    check_tiles([("timed", v)], tiles)
    assert len(t_log) == v.tiles * beats
    ends = t_log[beats - 1::beats]
    assert np.diff(t_log).min() == 1, "a tile's beats are consecutive"
    assert np.diff(ends).tolist() == [max(groups, beats)] * (v.tiles - 1)
    if groups >= beats:
        assert t_log[-1] - w_log[0] + 1 == v.steps + last_beat_latency(config)


def test_16bit_values():
    config = AcceleratorConfig("3:4,2:4", 2, 3, 16, True)
    named = gemms(config, seed=16)
    tiles, _, _ = simulate(config, [v for _, v in named], idle=0.2, stall=0.3, seed=4)
    check_tiles(named, tiles)


@pytest.mark.parametrize("idle,stall", [(0.0, 0.0), (0.0, 0.9), (0.6, 0.0), (0.5, 0.7)],
                         ids=["free", "tiles-stalled", "inputs-idle", "both"])
def test_backpressure_levels(idle, stall):
    """Short tiles (one step each) against a mostly stalled consumer: the engine must
    hold a finished tile while computing the next, then stall, losing nothing."""
    config = AcceleratorConfig("4:6,2:4", 2, 2, 8, True)
    rng = np.random.default_rng(9)
    p = config.pattern
    named = []
    for k in (p.group_size, 2 * p.group_size, p.group_size):
        W = weights(rng, p, 5, k, 8, True)
        A = activations(rng, k, 5, 8, True)
        named.append((f"K={k}", gemm_vectors(config, W, A)))
    tiles, _, _ = simulate(config, [v for _, v in named], idle=idle, stall=stall, seed=5)
    check_tiles(named, tiles)


EXTREMES = [("4:6,2:4", 2, 2, True, 8), ("4:6,2:4", 2, 2, False, 8), ("8:24", 1, 1, True, 8),
            ("2:3,3:4,2:4", 2, 3, False, 8), ("2:4", 1, 1, True, 16)]


@pytest.mark.parametrize("pattern,rows,cols,is_signed,width", EXTREMES,
                         ids=[case_id(*c) for c in EXTREMES])
def test_extreme_values_at_max_k(pattern, rows, cols, is_signed, width):
    """-128 * -128 (or 255 * 255) in every slot, summed over exactly ``max_k`` = 4 groups:
    the accumulator the config sizes holds the exact value, the flag stays clear."""
    p = hss.Pattern.parse(pattern)
    groups = 4
    config = AcceleratorConfig(p, rows, cols, width, is_signed, max_k=groups * p.group_size)
    lo, hi = value_limits(width, is_signed)
    v = lo if is_signed else hi
    W = weights(np.random.default_rng(0), p, rows, groups * p.group_size, width, is_signed,
                "extreme")
    A = activations(None, groups * p.group_size, cols, width, is_signed, "extreme")
    vectors = gemm_vectors(config, W, A)
    want = groups * p.slots * v * v
    assert (vectors.expected == want).all()
    acc_lo, acc_hi = value_limits(config.acc_width, is_signed)
    assert want <= acc_hi < 2 * want, "the accumulator is the narrowest that fits"
    tiles, _, _ = simulate(config, [vectors, vectors], idle=0.2, stall=0.2, seed=6)
    check_tiles([("extreme", vectors), ("again", vectors)], tiles)


@pytest.mark.parametrize("pattern,max_k", [("4:6,2:4", 4 * 24), ("4:6,2:4", 4 * 24 - 5),
                                           ("2:4", 1), ("3:4,2:4", 2 * 16 + 1)],
                         ids=["4:6,2:4-maxk=4S", "4:6,2:4-maxk=4S-5", "2:4-maxk=1",
                              "3:4,2:4-maxk=2S+1"])
def test_overflow_flag(pattern, max_k):
    """``overflow`` is set exactly on tiles of more than ceil(max_k/S) steps. Tiles of
    growing and shrinking length run back to back, with extreme values so that long tiles
    do wrap; their value is then the golden value wrapped to the accumulator width."""
    config = AcceleratorConfig(pattern, 2, 2, 8, True, max_k=max_k)
    p = config.pattern
    limit = math.ceil(max_k / p.group_size)
    assert config.max_steps == limit
    rng = np.random.default_rng(1)
    runs = []
    for steps in (1, limit, limit + 1, limit, 2 * limit + 3, 1, limit + 1, limit):
        k = steps * p.group_size
        kind = "extreme" if steps % 2 else "random"
        W = weights(rng, p, 3, k, 8, True, kind)
        A = activations(rng, k, 2, 8, True, kind)
        runs.append((steps, gemm_vectors(config, W, A)))
    tiles, _, _ = simulate(config, [v for _, v in runs], idle=0.2, stall=0.3, seed=7)
    n = 0
    for steps, v in runs:
        for t in range(v.tiles):
            z, over = tiles[n]
            n += 1
            assert over == (steps > limit), f"tile of {steps} steps (limit {limit})"
            want = np.vectorize(lambda x: wrap(int(x), config.acc_width, True))(
                v.expected_tiles[t])
            assert (z == want).all(), f"tile of {steps} steps"
            if steps <= limit:
                assert (z == v.expected_tiles[t]).all()
    assert n == len(tiles)


TIMING = [("4:6,2:4", 2, 2, 4), ("4:6,2:4", 4, 4, 3), ("2:3,3:4,2:4", 2, 3, 2),
          ("8:8", 1, 1, 5), ("1:8", 2, 3, 1)]


@pytest.mark.parametrize("pattern,rows,cols,groups", TIMING,
                         ids=[f"{p}-{r}x{c}-K={g}S" for p, r, c, g in TIMING])
def test_cycle_count_without_backpressure(pattern, rows, cols, groups):
    """T tiles of K/S steps each: from the first weight handshake to the last tile
    handshake (both counted) takes exactly T*K/S + LATENCY cycles; inputs never stall and
    tiles come out every K/S cycles."""
    config = AcceleratorConfig(pattern, rows, cols, 8, True)
    p = config.pattern
    rng = np.random.default_rng(2)
    k = groups * p.group_size
    W = weights(rng, p, 2 * rows, k, 8, True)
    A = activations(rng, k, 2 * cols, 8, True)
    v = gemm_vectors(config, W, A)
    assert v.tiles == 4 and v.steps_per_tile == groups
    tiles, w_log, t_log = simulate(config, [v])
    check_tiles([("timed", v)], tiles)
    assert np.diff(w_log).tolist() == [1] * (v.steps - 1), "an input stalled"
    assert np.diff(t_log).tolist() == [groups] * (v.tiles - 1), "tiles not back to back"
    assert t_log[0] - w_log[0] + 1 == groups + LATENCY
    assert t_log[-1] - w_log[0] + 1 == v.tiles * groups + LATENCY


SPEEDUP = [("4:6,2:4", 2, 2), ("3:4,2:4", 1, 1), ("2:3,3:4,2:4", 2, 3), ("8:24", 1, 1),
           ("4:4,2:4", 2, 3), ("8:8", 1, 1)]


@pytest.mark.parametrize("pattern,rows,cols", SPEEDUP,
                         ids=[f"{p}-{r}x{c}" for p, r, c in SPEEDUP])
def test_speedup_over_dense_twin(pattern, rows, cols):
    """The same GEMM on the dense twin (prod(G):prod(G), same multipliers) takes 1/density
    times more steps, and exactly that many more cycles beyond LATENCY."""
    config = AcceleratorConfig(pattern, rows, cols, 8, True)
    twin = config.dense_twin()
    p = config.pattern
    assert twin.multipliers == config.multipliers and twin.acc_width == config.acc_width
    k = 2 * math.lcm(p.group_size, p.slots)
    rng = np.random.default_rng(3)
    W = weights(rng, p, rows + 1, k, 8, True, "full")
    A = activations(rng, k, cols + 1, 8, True)
    cycles = {}
    for name, cfg in (("hss", config), ("dense", twin)):
        v = gemm_vectors(cfg, W, A)
        tiles, w_log, t_log = simulate(cfg, [v])
        check_tiles([(name, v)], tiles)
        assert len(w_log) == v.steps
        cycles[name] = (v.steps, t_log[-1] - w_log[0] + 1)
    (sparse_steps, sparse_cycles), (dense_steps, dense_cycles) = cycles["hss"], cycles["dense"]
    assert Fraction(dense_steps, sparse_steps) == 1 / p.density == p.speedup_limit
    assert Fraction(dense_cycles - LATENCY, sparse_cycles - LATENCY) == 1 / p.density


def test_constructor_rejects_a_non_config():
    with warnings.catch_warnings():  # the half-built component is never elaborated
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="config must be an AcceleratorConfig"):
            HSSAccelerator("4:6,2:4")
        gc.collect()


def test_gemm_vectors_rejects_a_nonconforming_weight():
    config = AcceleratorConfig("2:4", 1, 1)
    W = np.array([[1, 2, 3, 0]], np.int8)
    with pytest.raises(hss.ConformanceError, match="rank 0 block 0 has 3 nonzeros"):
        gemm_vectors(config, W, np.ones((4, 1), np.int8))


@pytest.mark.parametrize("config,cls", [
    (AcceleratorConfig("4:6,2:4", 2, 2), HSSAccelerator),
    (FlexConfig("4:4|4:6,4:4|2:4", 2, 2), FlexAccelerator),
    (FlexConfig("4:6,2:4", 2, 2, macs=4), FlexAccelerator),      # one mode, other lanes
])
def test_accelerator_for_builds_the_configs_top(config, cls):
    with warnings.catch_warnings():  # the tops are never elaborated
        warnings.simplefilter("ignore", UnusedElaboratable)
        top = accelerator_for(config)
        assert type(top) is cls and top.config is config and top.shared is None
        assert len(top.weights.payload.as_value()) == config.weight_beat_bits
        assert len(top.activations.payload.as_value()) == config.act_beat_bits
        assert top.tiles.payload.shape() == config.tile_layout()
        shared = SharedModules("hss_accelerator.array")
        assert accelerator_for(config, shared=shared).shared is shared
        del top
        gc.collect()


def test_accelerator_for_rejects_a_non_config():
    with pytest.raises(TypeError, match="config must be an AcceleratorConfig or a FlexConfig"):
        accelerator_for("4:6,2:4")


@pytest.mark.parametrize("config", [AcceleratorConfig("2:4", 2, 2),
                                    AcceleratorConfig("2:4", 2, 2, tile_rows=1),
                                    FlexConfig("4:4|2:4", 2, 2)])
def test_elaborating_sets_no_attribute(config):
    """Everything the top's elaboration needs is passed along, not kept on the component
    (Amaranth itself only marks it used)."""
    top = accelerator_for(config)
    before = dict(vars(top))
    Fragment.get(top, None)
    assert vars(top).keys() == before.keys()
    assert [k for k, v in before.items() if vars(top)[k] is not v] == ["_MustUse__used"]
