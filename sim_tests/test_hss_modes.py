"""Mode sets: parsing, mode numbering and the sizing facts of a flexible build."""
import itertools
import math
import re
from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from hss import HSSError, ModeSet, ModeSetError, Pattern, PatternError, Rank

HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"


# -- round trips and the cross product (property based) ---------------------------------
@st.composite
def rank_alternatives(draw):
    h = st.integers(1, 16)
    pairs = draw(st.lists(h.flatmap(lambda h: st.tuples(st.integers(1, h), st.just(h))),
                          min_size=1, max_size=4, unique=True))
    return tuple(Rank(g, h) for g, h in pairs)


mode_sets = st.lists(rank_alternatives(), min_size=1, max_size=4).map(
    lambda ranks: ModeSet(tuple(ranks)))


@given(mode_sets)
def test_str_parse_round_trip(ms):
    text = str(ms)
    assert ModeSet.parse(text) == ms
    assert str(ModeSet.parse(text)) == text
    assert ModeSet.coerce(text) == ms and ModeSet.coerce(ms) is ms


@given(mode_sets)
def test_modes_are_the_cross_product_outermost_major(ms):
    expected = [Pattern(tuple(choice)) for choice in itertools.product(*ms.alternatives)]
    assert list(ms.modes) == expected
    assert list(ms) == expected and len(ms) == len(expected)
    for i, p in enumerate(expected):
        assert ms.mode(i) == p
        assert ms.index(p) == i and ms.index(str(p)) == i
        assert p in ms and str(p) in ms
    assert ms.mode_bits == math.ceil(math.log2(len(expected)))
    assert 2 ** ms.mode_bits >= len(ms)


@given(mode_sets)
def test_sizing_facts_match_the_modes(ms):
    modes = ms.modes
    assert ms.max_slots == max(m.slots for m in modes)
    assert ms.min_slots == min(m.slots for m in modes)
    assert ms.max_density == max(m.density for m in modes)
    assert ms.min_density == min(m.density for m in modes)
    assert ms.max_group_size == max(m.group_size for m in modes)
    assert ms.densities == tuple(m.density for m in modes)
    assert ms.contains_dense == any(m.density == 1 for m in modes)
    assert ms.dense_twin() == Pattern((Rank(ms.max_slots, ms.max_slots),))
    for r in range(ms.num_ranks):
        assert ms.offset_bits(r) == max(m.offset_bits(r) for m in modes)
        assert (ms.offset_bits(r) == 0) == all(a.g == a.h for a in ms.alternatives_of(r))


# -- HighLight's set --------------------------------------------------------------------
def test_highlight_set():
    ms = ModeSet.parse(HIGHLIGHT)
    assert str(ms) == HIGHLIGHT
    assert ms.num_ranks == 2 and len(ms) == 12 and not ms.is_single
    assert ms.alternatives_of(1) == (Rank(4, 4), Rank(4, 5), Rank(4, 6), Rank(4, 7))
    assert ms.alternatives_of(0) == (Rank(4, 4), Rank(2, 4), Rank(1, 4))
    assert ms.alternatives == (ms.alternatives_of(1), ms.alternatives_of(0))
    assert [str(m) for m in ms.modes] == [
        "4:4,4:4", "4:4,2:4", "4:4,1:4", "4:5,4:4", "4:5,2:4", "4:5,1:4",
        "4:6,4:4", "4:6,2:4", "4:6,1:4", "4:7,4:4", "4:7,2:4", "4:7,1:4"]
    F = Fraction
    assert ms.densities == (F(1), F(1, 2), F(1, 4), F(4, 5), F(2, 5), F(1, 5),
                            F(2, 3), F(1, 3), F(1, 6), F(4, 7), F(2, 7), F(1, 7))
    assert len(set(ms.densities)) == 12                  # 12 distinct sparsity degrees
    assert ms.max_density == 1 and ms.min_density == F(1, 7)
    assert ms.contains_dense
    assert ms.mode_bits == 4
    assert ms.max_slots == 16 and ms.min_slots == 4
    assert ms.max_group_size == 28
    assert ms.offset_bits(1) == 3 and ms.offset_bits(0) == 2
    assert ms.dense_twin() == Pattern.parse("16:16")
    assert ms.index("4:6,2:4") == 7 and ms.mode(7) == Pattern.parse("4:6,2:4")
    assert ms.mode(0).density == 1 and ms.mode(11).density == F(1, 7)


def test_offset_bits_is_zero_only_for_an_all_dense_rank():
    ms = ModeSet.parse("8:8|4:4,4:4|3:4,1:2|2:3")
    assert [ms.offset_bits(r) for r in (2, 1, 0)] == [0, 2, 2]
    assert not ms.contains_dense                          # rank 0 offers no dense alternative
    assert ModeSet.parse("8:8|4:4,4:4|3:4,1:2|2:2").contains_dense


# -- single patterns ---------------------------------------------------------------------
@pytest.mark.parametrize("text", ["4:6,2:4", "2:4", "8:8", "2:3,3:4,2:4", "1:1"])
def test_a_single_pattern_is_a_one_mode_set(text):
    p = Pattern.parse(text)
    for ms in (ModeSet.parse(text), ModeSet.from_pattern(p), ModeSet.from_pattern(text),
               ModeSet.coerce(p), ModeSet.coerce(text)):
        assert ms == ModeSet.parse(text)
        assert str(ms) == text
        assert ms.modes == (p,) and len(ms) == 1 and ms.is_single and ms.mode_bits == 0
        assert ms.index(p) == 0 and ms.index(text) == 0 and p in ms
        assert ms.max_slots == ms.min_slots == p.slots
        assert ms.max_density == ms.min_density == p.density
        assert ms.max_group_size == p.group_size
        assert ms.dense_twin() == p.dense_twin()
        assert [ms.offset_bits(r) for r in range(p.num_ranks)] == \
            [p.offset_bits(r) for r in range(p.num_ranks)]
        assert ms.contains_dense == p.is_dense


def test_mode_bits():
    assert [ModeSet.parse(t).mode_bits for t in (
        "2:4", "1:4|2:4", "1:4|2:4|3:4", "1:4|2:4|3:4|4:4", "1:4|2:4,1:2|2:2|1:3")] == \
        [0, 1, 2, 2, 3]


# -- spelling ----------------------------------------------------------------------------
def test_whitespace_is_accepted_and_dropped():
    assert str(ModeSet.parse(" 4 : 4 | 4:5 ,\t2:4| 1 :4 ")) == "4:4|4:5,2:4|1:4"


def test_order_of_alternatives_is_kept_and_significant():
    a, b = ModeSet.parse("4:7|4:6,2:4"), ModeSet.parse("4:6|4:7,2:4")
    assert str(a) == "4:7|4:6,2:4"
    assert a != b and set(a.modes) == set(b.modes)
    assert a.index("4:6,2:4") == 1 and b.index("4:6,2:4") == 0


# -- membership and mode numbers ---------------------------------------------------------
def test_in_and_index_on_strings_and_patterns():
    ms = ModeSet.parse(HIGHLIGHT)
    assert "4:6,2:4" in ms and " 4:6 , 2:4" in ms and Pattern.parse("4:7,1:4") in ms
    assert "4:8,2:4" not in ms and "4:6,3:4" not in ms
    assert "2:4" not in ms and "4:4,4:4,4:4" not in ms    # wrong number of ranks
    assert 7 not in ms and None not in ms and Rank(4, 4) not in ms
    assert ms.index(Pattern.parse("4:5,1:4")) == 5
    with pytest.raises(PatternError):                     # malformed, not a question of modes
        "4:6,x:4" in ms


@pytest.mark.parametrize("pattern, message", [
    ("4:8,2:4", f"'4:8,2:4' is not a mode of '{HIGHLIGHT}': rank 1 allows 4:4|4:5|4:6|4:7, "
                "not 4:8"),
    ("4:6,3:4", f"'4:6,3:4' is not a mode of '{HIGHLIGHT}': rank 0 allows 4:4|2:4|1:4, "
                "not 3:4"),
    ("2:4", f"'2:4' is not a mode of '{HIGHLIGHT}': it has 1 ranks, the modes have 2"),
])
def test_index_of_a_non_mode_names_the_set(pattern, message):
    ms = ModeSet.parse(HIGHLIGHT)
    for p in (pattern, Pattern.parse(pattern)):
        with pytest.raises(ModeSetError) as err:
            ms.index(p)
        assert str(err.value) == message


def test_mode_number_out_of_range():
    ms = ModeSet.parse(HIGHLIGHT)
    for i in (12, -1):
        with pytest.raises(IndexError, match=f"has no mode {i} \\(it has 12\\)"):
            ms.mode(i)
    with pytest.raises(TypeError):
        ms.mode(1.0)
    with pytest.raises(IndexError, match="has no rank 2"):
        ms.alternatives_of(2)


# -- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("", "empty mode set ''"),
    ("  ", "empty mode set '  '"),
    ("4:6|", "rank 0, alternative 1: empty alternative in '4:6|' (stray '|'?)"),
    ("|2:4", "rank 0, alternative 0: empty alternative in '|2:4'"),
    ("4:6||4:7", "rank 0, alternative 1: empty alternative in '4:6||4:7'"),
    ("4:6| ,2:4", "rank 1, alternative 1: empty alternative in '4:6| ,2:4'"),
    ("|", "rank 0, alternative 0: empty alternative in '|'"),
    ("4:6|4:6,2:4", "rank 1, alternative 1: duplicate 4:6 in '4:6|4:6,2:4' "
                    "(already alternative 0)"),
    ("4:6,2:4|1:4| 2 : 4", "rank 0, alternative 2: duplicate 2:4 in '4:6,2:4|1:4| 2 : 4'"),
    ("4:6|x:4", "rank 0, alternative 1: G='x' is not a positive integer in '4:6|x:4'"),
    ("4:6|4:y,2:4", "rank 1, alternative 1: H='y' is not a positive integer in '4:6|4:y,2:4'"),
    ("4:6|4", "rank 0, alternative 1: '4' is not G:H in '4:6|4' "
              "(alternatives are separated by '|', ranks by commas)"),
    ("4:6|4:6:2", "rank 0, alternative 1: '4:6:2' is not G:H in '4:6|4:6:2'"),
    ("4:6;2:4", "rank 0: '4:6;2:4' is not G:H"),
    ("4:4|5:4,2:4", "rank 1, alternative 1: G=5 exceeds H=4 in '4:4|5:4,2:4'"),
    ("4:6,0:4|2:4", "rank 0, alternative 0: G=0 must be at least 1 in '4:6,0:4|2:4'"),
    ("4:6,2:4|1:0", "rank 0, alternative 1: H=0 must be at least 1 in '4:6,2:4|1:0'"),
    ("-1:4", "rank 0: G='-1' is not a positive integer"),
    ("4:6,,2:4", "rank 1: empty rank in '4:6,,2:4' (stray comma?)"),
    ("4:6|4:7,", "rank 0: empty rank in '4:6|4:7,'"),
    (",2:4", "rank 1: empty rank in ',2:4'"),
])
def test_malformed_mode_sets_name_the_problem(text, message):
    with pytest.raises(ModeSetError) as err:
        ModeSet.parse(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, PatternError) and isinstance(err.value, HSSError)
    with pytest.raises(ModeSetError):
        ModeSet.coerce(text)


def _place_and_problem(message):
    """('rank 1', 'G=5 exceeds H=4') from either parser's message."""
    m = re.fullmatch(r"(rank \d+)(?:, alternative \d+)?: (.*?) in '.*", message)
    return m.groups()


@pytest.mark.parametrize("text", [
    "4", "0:4", "5:4", "7:6,2:4", "a:b", "4:6,", "-1:4", "4:6;2:4", "1:0", "2.5:4",
    "4:6,,2:4", "4:6:2", "2:4,3:x", ",2:4"])
def test_rank_messages_match_pattern_parse(text):
    """One wording for both parsers: same rank, same problem."""
    with pytest.raises(PatternError) as pattern_err:
        Pattern.parse(text)
    with pytest.raises(ModeSetError) as modes_err:
        ModeSet.parse(text)
    assert _place_and_problem(str(modes_err.value)) == _place_and_problem(str(pattern_err.value))


def test_non_strings_are_refused():
    with pytest.raises(ModeSetError, match="must be a string like '4:4\\|4:5"):
        ModeSet.parse(42)
    with pytest.raises(ModeSetError, match="got None"):
        ModeSet.coerce(None)


@pytest.mark.parametrize("alternatives, message", [
    ((), "at least one rank"),
    ([(Rank(2, 4),)], "at least one rank"),
    (((),), "rank 0: alternatives must be a non-empty tuple of Rank"),
    (((2, 4),), "rank 0: alternatives must be a non-empty tuple of Rank"),
    (((Rank(2, 4),), [Rank(1, 2)]), "rank 0: alternatives must be"),
    (((Rank(2, 4), Rank(5, 4)),), "rank 0, alternative 1: G=5 exceeds H=4 in '2:4|5:4'"),
    (((Rank(2, 4), Rank(2, 4)), (Rank(1, 1),)), "rank 1, alternative 1: duplicate 2:4"),
    (((Rank(True, 4),),), "rank 0, alternative 0: G and H must be integers"),
])
def test_invalid_constructed_mode_sets(alternatives, message):
    with pytest.raises(ModeSetError, match=message.replace("|", "\\|")):
        ModeSet(alternatives)
