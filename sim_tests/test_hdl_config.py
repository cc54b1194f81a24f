"""``hdl.config``: how a tile leaves the accelerator (``tile_rows``) and the signal-width
checks that keep every config elaborable by Amaranth (``MAX_SIGNAL_BITS``)."""
import pytest
from amaranth.hdl import Fragment
from amaranth.hdl._ir import build_netlist

from hdl import HSSAccelerator
from hdl.config import MAX_SIGNAL_BITS, AcceleratorConfig, FlexConfig
from hdl.top import last_beat_latency, tile_layout, LATENCY

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
