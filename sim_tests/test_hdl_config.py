"""``hdl.config``: how a tile leaves the accelerator (``tile_rows``), the signal-width
checks that keep every config elaborable by Amaranth (``MAX_SIGNAL_BITS``), and the one
interface of fixed and flexible configs (``ArrayConfig``, ``build_config``)."""
import dataclasses

import pytest
from amaranth.hdl import Fragment
from amaranth.hdl._ir import build_netlist
from amaranth.lib import data

import hss
from hdl import HSSAccelerator
from hdl.config import (MAX_SIGNAL_BITS, AcceleratorConfig, ArrayConfig, FlexConfig,
                        build_config, is_flexible)
from hdl.flex import flex_act_beat_layout, flex_tile_layout, flex_weight_beat_layout
from hdl.layouts import act_group_layout
from hdl.top import last_beat_latency, tile_layout, weight_beat_layout, LATENCY

HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"


@pytest.mark.parametrize("side,tile_rows", [(1, 1), (4, 4), (16, 16), (32, 32), (64, 32)])
def test_tile_rows_default_to_the_whole_tile_where_it_fits(side, tile_rows):
    """4:6,2:4 int8 has 26-bit sums: up to 32x32 a tile is one beat (26,625 bits); a 64x64
    tile (106,496 bits) leaves in two beats of 32 rows (53,250 bits)."""
    c = AcceleratorConfig("4:6,2:4", side, side)
    assert c.tile_rows == tile_rows and c.tile_beats == side // tile_rows
    assert tile_layout(c).size <= MAX_SIGNAL_BITS
    assert last_beat_latency(c) == LATENCY + c.tile_beats - 1
    flex = FlexConfig(HIGHLIGHT, side, side)
    assert flex.tile_rows == tile_rows


def test_tile_rows_divide_rows():
    """The most rows that fit *and divide*: 48 rows of 64 columns of 30-bit sums would fit
    34 rows a beat; 24 is the largest divisor that does."""
    c = AcceleratorConfig("4:6,2:4", 48, 64, acc_width=30)
    assert (c.tile_rows, c.tile_beats) == (24, 2)
    assert 48 * 64 * 30 > MAX_SIGNAL_BITS >= 24 * 64 * 30 + 2


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(rows=4, tile_rows=3), ValueError, "tile_rows must divide rows (4), not 3"),
    (dict(rows=4, tile_rows=0), ValueError, "tile_rows must be between 1 and 4, not 0"),
    (dict(rows=4, tile_rows=8), ValueError, "tile_rows must be between 1 and 4, not 8"),
    (dict(rows=4, tile_rows=2.0), TypeError, "tile_rows must be an integer"),
    (dict(rows=64, cols=64, tile_rows=64), ValueError, "65,536-bit signal limit"),
])
def test_tile_rows_are_checked_eagerly(kwargs, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        AcceleratorConfig("4:6,2:4", **kwargs)
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        FlexConfig(HIGHLIGHT, **kwargs)


def test_an_input_beat_past_the_signal_limit_is_refused():
    """64 columns of 48 32-bit activations are 98,304 bits: no Amaranth signal holds them."""
    with pytest.raises(ValueError, match="an activations beat of 98,304 bits"):
        AcceleratorConfig("8:48", 4, 64, width=32)
    AcceleratorConfig("8:48", 4, 42, width=32)              # 64,512 bits: fits


def test_a_tile_past_the_signal_limit_elaborates():
    """Before tiles left in beats, a tile wider than 65,536 bits stopped Amaranth's netlist
    builder (``Net.from_cell``: ``assert bit in range(1 << 16)``). 8x64 one-multiplier PEs
    with 128-bit sums: 65,536 bits of sums, so two beats of 4 rows."""
    c = AcceleratorConfig("1:1", 8, 64, width=2, acc_width=128)
    assert c.rows * c.cols * c.acc_width + 1 > MAX_SIGNAL_BITS
    assert c.tile_beats == 2
    build_netlist(Fragment.get(HSSAccelerator(c), None), name="top")


# -- one interface for both kinds ------------------------------------------------------

FIXED = [("4:6,2:4", 4, 4), ("2:4", 2, 3), ("2:3,3:4,2:4", 1, 1), ("8:8", 3, 2)]
FLEX = [(HIGHLIGHT, None, 2, 2), ("4:4|2:4", None, 3, 1), ("4:6,2:4", 4, 2, 2),
        ("4:4|4:6,4:4|2:4", 16, 1, 3)]


@pytest.mark.parametrize("pattern,rows,cols", FIXED)
def test_a_fixed_config_is_a_one_mode_build(pattern, rows, cols):
    """A single pattern is a mode set with one mode: one group per beat, one step each, on
    ``prod(G)`` multipliers, and the stream layouts are ``hdl.top``'s."""
    c = AcceleratorConfig(pattern, rows, cols)
    p = hss.Pattern.parse(pattern)
    assert isinstance(c, ArrayConfig) and not c.flexible
    assert c.modes == hss.ModeSet.coerce(p) and c.modes.is_single and c.modes.mode(0) == p
    assert c.macs == p.slots and c.multipliers == rows * cols * p.slots
    assert (c.steps_per_beat(0), c.groups_per_beat(0)) == (1, 1)
    assert c.max_steps == -(-c.max_k // p.group_size)
    assert c.weight_beat_layout() == weight_beat_layout(c)
    assert c.act_beat_layout() == data.ArrayLayout(act_group_layout(p, c.width, c.signed), cols)
    assert c.tile_layout() == tile_layout(c)
    assert c.weight_beat_bits == weight_beat_layout(c).size == rows * p.group_bits(8) + 1
    assert c.act_beat_bits == c.act_beat_layout().size == cols * p.group_size * 8
    assert c.beat_bits == c.weight_beat_bits - 1 + c.act_beat_bits     # ``last`` left out
    assert c.dense_twin().pattern == p.dense_twin()
    with pytest.raises(IndexError, match="has no mode 1"):
        c.steps_per_beat(1)


@pytest.mark.parametrize("modes,macs,rows,cols", FLEX)
def test_a_flexible_config_reads_its_lane_schedule(modes, macs, rows, cols):
    c = FlexConfig(modes, rows, cols, macs=macs)
    s = c.schedule
    assert isinstance(c, ArrayConfig) and c.flexible
    assert c.modes == hss.ModeSet.coerce(modes) and c.macs == s.macs
    assert c.multipliers == rows * cols * c.macs
    for m in range(len(c.modes)):
        assert c.steps_per_beat(m) == s.steps_per_beat(m)
        assert c.groups_per_beat(m) == s.groups_per_beat(m)
    assert c.weight_beat_layout() == flex_weight_beat_layout(c)
    assert c.act_beat_layout() == flex_act_beat_layout(c)
    assert c.tile_layout() == flex_tile_layout(c) == tile_layout(c)
    assert c.weight_beat_bits == flex_weight_beat_layout(c).size
    assert c.act_beat_bits == flex_act_beat_layout(c).size
    assert c.beat_bits == c.weight_beat_bits + c.act_beat_bits
    assert c.dense_twin().pattern == hss.Pattern.parse(f"{c.macs}:{c.macs}")
    with pytest.raises(IndexError, match=f"has no mode {len(c.modes)}"):
        c.groups_per_beat(len(c.modes))


def test_the_interface_agrees_on_a_one_mode_flexible_build():
    """4:6,2:4 on its own 8 multipliers, once fixed and once flexible: the same mode, lanes,
    steps and accumulators; only the RTL differs (``flexible``)."""
    fixed, flex = AcceleratorConfig("4:6,2:4"), FlexConfig("4:6,2:4")
    for name in ("modes", "macs", "multipliers", "max_products", "max_steps", "min_acc_width",
                 "acc_width", "tile_rows"):
        assert getattr(fixed, name) == getattr(flex, name), name
    assert fixed.steps_per_beat(0) == flex.steps_per_beat(0) == 1
    assert fixed.groups_per_beat(0) == flex.groups_per_beat(0) == 1
    assert (fixed.flexible, flex.flexible) == (False, True)


def test_positional_signatures_are_kept():
    """Callers build both configs positionally: the fields keep their order."""
    names = lambda cls: [f.name for f in dataclasses.fields(cls)]
    assert names(AcceleratorConfig) == ["pattern", "rows", "cols", "width", "signed",
                                        "max_k", "acc_width", "tile_rows"]
    assert names(FlexConfig) == ["modes", "rows", "cols", "width", "signed", "max_k",
                                 "acc_width", "macs", "tile_rows"]
    c = AcceleratorConfig("2:4", 2, 3, 6, False, 100, 20, 1)
    assert (c.rows, c.cols, c.width, c.signed, c.max_k, c.acc_width, c.tile_rows) == \
        (2, 3, 6, False, 100, 20, 1)
    f = FlexConfig("4:4|2:4", 2, 3, 6, False, 100, 20, 4, 1)
    assert (f.rows, f.cols, f.width, f.signed, f.max_k, f.acc_width, f.macs, f.tile_rows) == \
        (2, 3, 6, False, 100, 20, 4, 1)


@pytest.mark.parametrize("modes,macs,flexible", [
    ("4:6,2:4", None, False),             # one mode on its own prod(G) multipliers
    ("4:6,2:4", 8, False),                # ... named explicitly
    ("4:6,2:4", 4, True),                 # other multipliers: groups take two steps
    ("2:4", 4, True),                     # ... or a step takes two groups
    (HIGHLIGHT, None, True),              # several modes
    ("4:4|2:4", 4, True),
])
def test_build_config_is_fixed_only_where_the_fixed_rtl_runs_it(modes, macs, flexible):
    assert is_flexible(modes, macs) is flexible
    c = build_config(modes, 2, 2, macs=macs, tile_rows=1)
    assert type(c) is (FlexConfig if flexible else AcceleratorConfig)
    assert c.flexible is flexible and c.modes == hss.ModeSet.coerce(modes)
    assert (c.rows, c.cols, c.tile_rows) == (2, 2, 1)
    if macs is not None:
        assert c.macs == macs
    if not flexible:
        assert c == AcceleratorConfig(modes, 2, 2, tile_rows=1)
    else:
        assert c == FlexConfig(modes, 2, 2, macs=macs, tile_rows=1)


def test_build_config_checks_as_the_configs_do():
    with pytest.raises(ValueError, match="rows must be between 1 and 64, not 0"):
        build_config("4:6,2:4", 0)
    with pytest.raises(hss.lanes.LaneError, match="3 multipliers per PE"):
        build_config("4:4|2:4", macs=3)
