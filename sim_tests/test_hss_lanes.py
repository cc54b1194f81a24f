"""``hss.lanes``: the lane schedule of a flexible PE, checked against brute force."""
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

import hss
from hss.lanes import LaneError, LaneSchedule, default_macs

HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"


def schedule(text, macs=None):
    modes = hss.ModeSet.parse(text).modes
    return LaneSchedule(modes, default_macs(modes) if macs is None else macs)


def covers_every_slot_once(s):
    for m in range(len(s.modes)):
        seen = sorted(s.lane(m, ph, k) for ph in range(s.steps_per_beat(m))
                      for k in range(s.macs))
        want = sorted((j, slot) for j in range(s.groups_per_beat(m))
                      for slot in range(s.modes[m].slots))
        assert seen == want, s.modes[m]


@st.composite
def mode_sets(draw):
    ranks = draw(st.integers(1, 3))
    alts = []
    for _ in range(ranks):
        h = draw(st.sampled_from([2, 3, 4, 6, 8]))
        gs = draw(st.lists(st.sampled_from([1, 2, 4]).filter(lambda g: g <= h), min_size=1,
                           max_size=3, unique=True))
        hs = draw(st.lists(st.integers(max(gs), max(gs) + 3), min_size=1, max_size=2,
                           unique=True))
        alts.append("|".join(f"{g}:{hh}" for g in gs for hh in hs if g <= hh))
    return ",".join(alts)


@settings(max_examples=60)
@given(mode_sets(), st.sampled_from([None, 4, 8, 16]))
def test_every_slot_is_computed_once_and_reachable(text, macs):
    try:
        s = schedule(text, macs)
    except LaneError:
        return                           # a lane count these modes cannot keep busy
    covers_every_slot_once(s)
    for m, p in enumerate(s.modes):
        for ph in range(s.steps_per_beat(m)):
            for k in range(s.macs):
                _, slot = s.lane(m, ph, k)
                assert set(s.positions_of(m, slot)) <= set(s.candidates[k])


def test_positions_follow_the_compressed_format():
    """``position`` of every slot equals ``hss.positions`` of the canonical encoding."""
    s = schedule(HIGHLIGHT)
    import numpy as np
    rng = np.random.default_rng(0)
    for m, p in enumerate(s.modes):
        W = hss.prune(rng.integers(-9, 9, (3, 2 * p.group_size)), p)
        c = hss.compress(W, p)
        for row in range(3):
            for g in range(2):
                values, offsets = c.group(row, g)
                want = hss.positions(p, [np.asarray(o) for o in offsets])
                got = [s.position(m, slot, offsets) for slot in range(p.slots)]
                assert list(want) == got


def test_highlight_facts():
    s = schedule(HIGHLIGHT)
    assert s.macs == 8 and s.top_kept == 4 and s.rows == 2
    assert [(s.groups_per_beat(m), s.steps_per_beat(m)) for m in range(3)] == \
        [(1, 2), (1, 1), (2, 1)]            # 4:4,4:4 / 4:4,2:4 / 4:4,1:4
    assert s.region_size == 28 and s.beat_values == 16 and s.max_groups_per_beat == 2
    assert [s.offset_fields(r) for r in (0, 1)] == [8, 8]
    assert [s.offset_bits(r) for r in (0, 1)] == [2, 3]
    assert all(len(c) == 16 for c in s.candidates)
    covers_every_slot_once(s)
    for m, p in enumerate(s.modes):
        groups = 4096 // p.group_size + 1
        assert s.ideal_steps(m, groups) * s.macs >= groups * p.slots
        assert Fraction(s.ideal_steps(m, groups) * s.macs, groups * p.slots) < Fraction(101, 100)


def test_default_macs():
    assert default_macs(hss.ModeSet.parse(HIGHLIGHT).modes) == 8
    assert default_macs([hss.Pattern.parse("4:6,2:4")]) == 8
    assert default_macs([hss.Pattern.parse("3:4")]) == 3
    assert default_macs(hss.ModeSet.parse("2:4|3:4").modes) == 6


@pytest.mark.parametrize("text, macs, words", [
    (HIGHLIGHT, 6, "not a multiple of the outermost rank's G=4"),
    ("2:4|3:4", 4, "mode 3:4 has 3 values per group"),
    (HIGHLIGHT, 0, "macs must be a positive integer"),
])
def test_bad_schedules_are_one_line_errors(text, macs, words):
    with pytest.raises(LaneError, match=words) as e:
        schedule(text, macs)
    assert "\n" not in str(e.value)


def test_mixed_rank_counts_are_refused():
    with pytest.raises(LaneError, match="different numbers of ranks"):
        LaneSchedule((hss.Pattern.parse("2:4"), hss.Pattern.parse("2:2,2:4")), 4)


def test_a_single_pattern_is_the_fixed_mapping():
    """One mode with macs = prod(G): one group per step, lane k = canonical slot order
    transposed (top block minor), every candidate set its slot's canonical window."""
    s = schedule("4:6,2:4")
    assert s.groups_per_beat(0) == s.steps_per_beat(0) == 1
    assert sorted(s.lane(0, 0, k)[1] for k in range(8)) == list(range(8))
    assert sum(len(c) for c in s.candidates) == sum(len(s.positions_of(0, k)) for k in range(8))
