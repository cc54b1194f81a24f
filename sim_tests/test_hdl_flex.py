"""The flexible build (``hdl.flex``) against the golden model: every mode of a set in one
simulation, tiles of different modes back to back, with random gaps and back-pressure; the
steering against ``hss.lanes``; cycles = steps + latency in every mode (all lanes busy)."""
import gc
import warnings
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable, Value
from amaranth.sim import Simulator

import hss
from hdl.config import FlexConfig
from hdl.flex import FLEX_LATENCY, FlexAccelerator, FlexPE, RowSteer, lane_layout
from hdl.pe import PE
from hdl.stimulus import _flex_row_word, flex_gemm_vectors, flex_segment_vectors, unpack_tiles
from simkit import activations, quiet_padding, run_gemms, weights

HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"


def simulate(config, vectors, *, idle=0.0, stall=0.0, seed=0):
    tiles, w_log, t_log = run_gemms(FlexAccelerator(config), vectors, idle=idle, stall=stall,
                                    seed=seed)
    return unpack_tiles(config, tiles), w_log, t_log


def gemms(config, rng, kind="random", shapes=None):
    """One GEMM per mode of the set, W pruned to that mode."""
    out = []
    for mode, p in enumerate(config.modes.modes):
        m, k, n = shapes[mode % len(shapes)] if shapes else (config.rows + 1, 2 * p.group_size
                                                             + 3, config.cols + 1)
        W = weights(rng, p, m, k, config.width, config.signed, kind)
        A = activations(rng, k, n, config.width, config.signed)
        with quiet_padding():
            out.append(flex_gemm_vectors(config, W, A, mode))
    return out


def check(vectors, tiles):
    n = 0
    for v in vectors:
        got = tiles[n:n + v.tiles]
        n += v.tiles
        for t, ((z, over), want) in enumerate(zip(got, v.expected_tiles)):
            assert (z == want).all(), (f"mode {v.config.modes.mode(v.mode)}, tile {t}:\n{z}"
                                       f"\nexpected\n{want}")
            assert not over
        assert (v.assemble([z for z, _ in got]) == v.expected).all()
    assert n == len(tiles)


@pytest.mark.parametrize("modes, rows, cols, signed, macs", [
    (HIGHLIGHT, 2, 2, True, None),
    (HIGHLIGHT, 1, 2, False, 16),
    (HIGHLIGHT, 1, 1, True, 4),
    ("2:2|2:3,2:4|4:4,1:2|2:2", 2, 1, True, None),     # three ranks
    ("2:4|4:4", 1, 2, True, None),                      # outermost G differs: T = 1
    ("8:8|8:12|8:16|8:24", 1, 1, False, None),          # one rank, H varies
])
def test_every_mode_back_to_back_with_backpressure(modes, rows, cols, signed, macs):
    config = FlexConfig(modes, rows, cols, 8, signed, macs=macs)
    rng = np.random.default_rng(7)
    vectors = gemms(config, rng)
    # mode order shuffled, so that every kind of mode change happens between tiles
    order = rng.permutation(len(vectors))
    vectors = [vectors[i] for i in order]
    tiles, _, _ = simulate(config, vectors, idle=0.3, stall=0.3, seed=3)
    check(vectors, tiles)


def test_tiles_in_several_beats_every_mode():
    """A tile that leaves in row beats (``tile_rows``) comes out right in every mode, under
    back-pressure: the drain does not depend on the modes."""
    config = FlexConfig(HIGHLIGHT, 3, 2, 8, True, tile_rows=1)
    assert config.tile_beats == 3
    vectors = gemms(config, np.random.default_rng(13))
    tiles, _, _ = simulate(config, vectors, idle=0.2, stall=0.4, seed=8)
    check(vectors, tiles)


@pytest.mark.parametrize("kind", ["extreme", "full", "zeros", "sparser"])
def test_edge_values_every_mode(kind):
    config = FlexConfig(HIGHLIGHT, 1, 1, 8, True)
    vectors = gemms(config, np.random.default_rng(11), kind)
    tiles, _, _ = simulate(config, vectors)
    check(vectors, tiles)


def test_cycles_are_steps_plus_latency_in_every_mode():
    """No stalls: all lanes busy in every mode, so each mode's tiles take exactly its steps
    (``ceil(slots per row / macs)``), back to back, plus the latency once."""
    config = FlexConfig(HIGHLIGHT, 1, 1, 8, True)
    rng = np.random.default_rng(5)
    for v in gemms(config, rng, shapes=[(1, 4096, 1)]):
        p = config.modes.mode(v.mode)
        groups = -(-4096 // p.group_size)
        assert v.steps == -(-groups * p.slots // config.macs)    # every lane busy
        assert v.steps == config.schedule.ideal_steps(v.mode, groups)
        tiles, w_log, t_log = simulate(config, [v])
        check([v], tiles)
        first_step = w_log[0] - (v.steps_per_beat - 1)     # a beat is taken at its last step
        assert t_log[-1] - first_step + 1 == v.steps + FLEX_LATENCY, str(p)
        speedup = 4096 / v.steps / config.macs                     # vs a dense 8-MAC PE
        assert speedup >= 0.95 / float(p.density), str(p)


def test_row_steer_matches_the_lane_schedule():
    """Every lane's value and position, for random canonical groups of every mode and
    phase, equal ``LaneSchedule.lane`` / ``position`` (the golden steering)."""
    config = FlexConfig(HIGHLIGHT, 1, 1, 8, True)
    s = config.schedule
    rng = np.random.default_rng(1)
    dut = RowSteer(config)
    cases = []
    for mode, p in enumerate(s.modes):
        for _ in range(3):
            W = weights(rng, p, 1, p.group_size * s.groups_per_beat(mode), 8, True, "random")
            c = hss.compress(W, p)
            groups = [c.group(0, g) for g in range(s.groups_per_beat(mode))]
            for phase in range(s.steps_per_beat(mode)):
                cases.append((mode, phase, groups))

    async def tb(ctx):
        for mode, phase, groups in cases:
            ctx.set(dut.row.as_value(), _flex_row_word(config, mode, groups))
            ctx.set(dut.mode, mode)
            ctx.set(dut.phase, phase)
            for k in range(s.macs):
                j, slot = s.lane(mode, phase, k)
                values, offsets = groups[j]
                assert ctx.get(dut.lanes.values[k]) == values[slot]
                assert ctx.get(dut.lanes.pos[k]) == s.position(mode, slot, offsets)
                assert s.position(mode, slot, offsets) in s.candidates[k]

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()


def test_lane_muxes_are_smaller_than_a_one_rank_design():
    """The point of HSS under flexibility: 16 positions per lane for HighLight's 12 modes,
    49 for a one-rank set of the same densities (8:8 ... 8:56)."""
    hss_lanes = FlexConfig(HIGHLIGHT).schedule
    naive = FlexConfig("8:8|8:10|8:12|8:14|8:16|8:20|8:24|8:28|8:32|8:40|8:48|8:56").schedule
    assert hss_lanes.macs == naive.macs == 8
    assert hss_lanes.mux_inputs == 8 * 16 and naive.mux_inputs == 8 * 49


@pytest.mark.parametrize("args, error, words", [
    (("4:6|x:4,2:4",), hss.ModeSetError, "alternative 1"),
    ((HIGHLIGHT, 4, 4, 8, True, 4096, None, 6), ValueError, "not a multiple"),
    (("2:4|3:4", 1, 1, 8, True, 4096, None, 4), ValueError, "3 values per group"),
    ((HIGHLIGHT, 0), ValueError, "rows must be between 1 and 64"),
    ((HIGHLIGHT, 1, 1, 8, "yes"), TypeError, "signed must be a bool"),
    ((42,), TypeError, "modes must be an hss.ModeSet"),
])
def test_flex_config_checks_eagerly(args, error, words):
    with pytest.raises(error, match=words):
        FlexConfig(*args)


def test_flex_config_sizes():
    c = FlexConfig(HIGHLIGHT)
    assert c.macs == 8 and c.rows == c.cols == 4
    # the densest modes (4:4,4:4) sum K products per output: 4096 * 2**14 -> 28 bits
    assert c.acc_width == hss.accumulator_bits(8, True, 4096) == 28
    assert c.max_steps == 4096 // 8
    assert c.dense_twin().pattern == hss.Pattern.parse("8:8")
    assert c.name == "hssflex_4-4.4-5.4-6.4-7_4-4.2-4.1-4_m8_4x4_s8"


@pytest.mark.parametrize("text, exact", [
    ("4:4,2:4+4:4,2:4", True),            # two 2:4 terms cover any dense tensor
    ("4:6,2:4+4:7,1:4", False),           # terms of different modes, approximate
    ("4:4,1:4+4:5,2:4+4:4,1:4", False),
])
def test_tasd_segments_accumulate_into_one_tile(text, exact):
    """A tile computed as segments (TASD terms, each in its own mode) leaves the array as
    one tile equal to sum_t W_t @ A, back to back with other tiles, with back-pressure."""
    config = FlexConfig(HIGHLIGHT, 2, 2, 8, True)
    rng = np.random.default_rng(9)
    W = rng.integers(-128, 128, (5, 90))
    A = rng.integers(-128, 128, (90, 3))
    result = hss.decompose(W, text)
    assert result.exact == exact
    terms = list(zip(result.terms, result.decomposition.terms))
    with quiet_padding():
        seg = flex_segment_vectors(config, [(Wt, str(p)) for Wt, p in terms], A)
        plain = gemms(config, rng)[:3]
        assert (seg.expected == hss.matmul_decomposed(result, A)).all()
        assert seg.steps == sum(flex_gemm_vectors(config, Wt, A, str(p)).steps
                                for Wt, p in terms)
    if exact:
        assert (seg.expected == W @ A).all()
    vectors = [plain[0], seg, plain[1], seg, plain[2]]
    tiles, _, _ = simulate(config, vectors, idle=0.25, stall=0.25, seed=4)
    check(vectors, tiles)


def test_flex_pe_is_the_dense_twins_pipeline_behind_lanes():
    """``FlexPE`` goes through ``PE``'s constructor: the pipeline of ``macs:macs`` (one
    value per multiplier), its own operand ports; those, like the top's, are located in
    ``hdl/flex.py`` (the RTL's ``src`` attributes name them there)."""
    c = FlexConfig(HIGHLIGHT, 2, 2)
    with warnings.catch_warnings():  # the components are never elaborated
        warnings.simplefilter("ignore", UnusedElaboratable)
        pe, top = FlexPE(c), FlexAccelerator(c)
        assert isinstance(pe, PE) and pe.pattern == c.dense_twin().pattern
        assert (pe.lanes, pe.width, pe.is_signed, pe.acc_shape) == (c.macs, 8, True, c.acc_shape)
        assert pe.weights.shape() == lane_layout(c)
        for value in (pe.en, Value.cast(pe.weights), Value.cast(top.weights.payload)):
            assert Path(value.src_loc[0]).parts[-2:] == ("hdl", "flex.py")
        del pe, top
        gc.collect()
