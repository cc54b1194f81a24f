"""Pattern parsing, validation and the derived sizes (hand-computed tables)."""
from fractions import Fraction

import pytest

from hss import Pattern, PatternError, Rank


@pytest.mark.parametrize("text, density, group, slots, meta_bits, int8_bits", [
    # values*8 + sum(kept(r) * ceil(log2 H_r)) over non-dense ranks
    ("4:6,2:4", Fraction(1, 3), 24, 8, 4 * 3 + 8 * 2, 92),
    ("2:4", Fraction(1, 2), 4, 2, 2 * 2, 20),
    ("8:8", Fraction(1), 8, 8, 0, 64),
    ("4:4,2:4", Fraction(1, 2), 16, 8, 8 * 2, 80),
    ("3:4,2:4", Fraction(3, 8), 16, 6, 3 * 2 + 6 * 2, 66),
    ("8:24", Fraction(1, 3), 24, 8, 8 * 5, 104),
    ("1:8", Fraction(1, 8), 8, 1, 3, 11),
    ("2:3,3:4,2:4", Fraction(1, 4), 48, 12, 2 * 2 + 6 * 2 + 12 * 2, 136),
    ("1:1", Fraction(1), 1, 1, 0, 8),
    ("1:2", Fraction(1, 2), 2, 1, 1, 9),
])
def test_sizes(text, density, group, slots, meta_bits, int8_bits):
    p = Pattern.parse(text)
    assert p.density == density
    assert p.group_size == group
    assert p.slots == slots
    assert p.metadata_bits == meta_bits
    assert p.group_bits(8) == int8_bits
    assert p.bits_per_element(8) == Fraction(int8_bits, group)


def test_hss_example_from_the_spec():
    p = Pattern.parse("4:6,2:4")
    assert float(p.bits_per_element(8)) == pytest.approx(3.83, abs=0.005)
    assert p.ranks == (Rank(4, 6), Rank(2, 4))
    assert p.rank(1) == Rank(4, 6) and p.rank(0) == Rank(2, 4)
    assert p.G == (2, 4) and p.H == (4, 6)
    assert [p.span(r) for r in (-1, 0, 1)] == [1, 4, 24]
    assert [p.kept(r) for r in (0, 1)] == [8, 4]
    assert [p.offset_bits(r) for r in (0, 1)] == [2, 3]
    assert p.speedup_limit == 3
    assert p.dense_twin() == Pattern.parse("8:8")
    assert str(Pattern.parse("3:4,2:4")) == "3:4,2:4"
    assert Pattern.parse("3:4,2:4").density == Fraction(6, 16)


@pytest.mark.parametrize("text", ["4:6,2:4", "2:4", "8:8", "2:3,3:4,2:4", "1:1", "16:64"])
def test_str_round_trips(text):
    assert str(Pattern.parse(text)) == text
    assert Pattern.parse(str(Pattern.parse(text))) == Pattern.parse(text)


def test_whitespace_is_accepted_around_numbers_and_commas():
    assert Pattern.parse(" 4 : 6 ") == Pattern.parse("4:6")
    assert Pattern.parse("4:6, 2:4") == Pattern.parse("4:6,2:4")


@pytest.mark.parametrize("text, message", [
    ("", "empty pattern ''"),
    ("   ", "empty pattern"),
    ("4", "rank 0: '4' is not G:H in '4'"),
    ("0:4", "rank 0: G=0 must be at least 1 in '0:4'"),
    ("5:4", "rank 0: G=5 exceeds H=4 in '5:4'"),
    ("7:6,2:4", "rank 1: G=7 exceeds H=6 in '7:6,2:4'"),
    ("a:b", "rank 0: G='a' is not a positive integer in 'a:b'"),
    ("4:6,", "rank 0: empty rank in '4:6,'"),
    ("-1:4", "rank 0: G='-1' is not a positive integer in '-1:4'"),
    ("4:6;2:4", "rank 0: '4:6;2:4' is not G:H in '4:6;2:4'"),
    ("1:0", "rank 0: H=0 must be at least 1 in '1:0'"),
    ("2.5:4", "rank 0: G='2.5' is not a positive integer in '2.5:4'"),
    ("4:6,,2:4", "rank 1: empty rank in '4:6,,2:4'"),
    ("4:6:2", "rank 0: '4:6:2' is not G:H"),
    ("2:4,3:x", "rank 0: H='x' is not a positive integer in '2:4,3:x'"),
    (",2:4", "rank 1: empty rank in ',2:4'"),
])
def test_malformed_patterns_name_the_problem(text, message):
    with pytest.raises(PatternError) as err:
        Pattern.parse(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_invalid_constructed_pattern():
    with pytest.raises(PatternError, match="rank 0: G=3 exceeds H=2"):
        Pattern((Rank(3, 2),))
    with pytest.raises(PatternError, match="at least one"):
        Pattern(())
    with pytest.raises(PatternError, match="must be a string"):
        Pattern.parse(42)
