"""TASD decompositions: parsing, greedy decomposition and its guarantees, the decomposed
golden GEMM, cost and the per-layer choice. Property based where a law holds, by hand where
a number or a counterexample is the point."""
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import hss
from hss import Decomposition, Pattern, Rank, TASDError
from hss.lanes import LaneSchedule
from hss.tasd import candidates, choose, cost, steps
from strategies import patterns

HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"


# -- strategies ------------------------------------------------------------------------------


decompositions = st.lists(patterns(2, 6), min_size=1, max_size=3).map(
    lambda ps: Decomposition(tuple(ps)))

DTYPES = ["int8", "uint8", "int16", "int32", "int64", "float32", "float64"]


@st.composite
def matrices(draw, dtype=None, max_k=40):
    """A small W of any dtype (extremes of small integer types included), often sparse."""
    dtype = np.dtype(dtype or draw(st.sampled_from(DTYPES)))
    if dtype.kind == "f":
        elements = st.floats(-100, 100, width=32)
    else:
        info = np.iinfo(dtype)
        elements = st.integers(max(info.min, -2**40), min(info.max, 2**40))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, max_k)))
    W = draw(hnp.arrays(dtype, shape, elements=elements))
    if draw(st.booleans()):
        keep = draw(hnp.arrays(bool, shape, elements=st.booleans()))
        W = np.where(keep, W, 0).astype(dtype)
    return W


def quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        return fn(*args)


# -- parsing ---------------------------------------------------------------------------------
@given(decompositions)
def test_str_parse_round_trip(d):
    text = str(d)
    assert Decomposition.parse(text) == d and str(Decomposition.parse(text)) == text
    assert Decomposition.coerce(text) == d and Decomposition.coerce(d) is d
    assert len(d) == len(d.terms) and list(d) == list(d.terms)
    assert Decomposition(tuple(str(p) for p in d)) == d    # terms may be strings


def test_parse_by_hand():
    d = Decomposition.parse(" 4 : 6 , 2:4 +  2:4 ")
    assert d.terms == (Pattern.parse("4:6,2:4"), Pattern.parse("2:4"))
    assert str(d) == "4:6,2:4+2:4"
    one = Decomposition.coerce(Pattern.parse("2:4"))
    assert str(one) == "2:4" and len(one) == 1 and one == Decomposition.parse("2:4")
    assert one + "1:4" == Decomposition.parse("2:4+1:4")
    assert d + one + Pattern.parse("1:4") == Decomposition.parse("4:6,2:4+2:4+2:4+1:4")


@pytest.mark.parametrize("text, message", [
    ("", "empty decomposition ''"),
    ("  ", "empty decomposition '  '"),
    ("4:6,2:4+", "term 2: empty term in '4:6,2:4+' (stray '+'?)"),
    ("+2:4", "term 1: empty term in '+2:4'"),
    ("2:4+ +1:4", "term 2: empty term in '2:4+ +1:4'"),
    ("4:6,2:4+5:4", "term 2 of '4:6,2:4+5:4': rank 0: G=5 exceeds H=4 in '5:4'"),
    ("2:4+1:4+4:6,", "term 3 of '2:4+1:4+4:6,': rank 0: empty rank"),
    ("2:4+x:4", "term 2 of '2:4+x:4': rank 0: G='x' is not a positive integer"),
    ("0:4", "term 1 of '0:4': rank 0: G=0 must be at least 1"),
    (42, "decomposition must be a string like '4:6,2:4+2:4', got 42"),
])
def test_parse_errors(text, message):
    with pytest.raises(TASDError) as err:
        Decomposition.parse(text)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, hss.HSSError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize("terms, message", [
    ((), "at least one term"),
    ("2:4", "must be a tuple of patterns"),
    ((Pattern.parse("2:4"), 3), "term 2: 3 is not a Pattern"),
    (("2:4", "5:4"), "term 2 of '5:4': rank 0: G=5 exceeds H=4"),
])
def test_construction_errors(terms, message):
    with pytest.raises(TASDError, match=message.replace("(", r"\(")):
        Decomposition(terms)


@pytest.mark.parametrize("text, bound", [
    ("1:4", Fraction(1, 4)),
    ("2:4+2:4", Fraction(1)),
    ("4:6,2:4+2:4", Fraction(5, 6)),
    ("2:4+2:4+2:4", Fraction(1)),            # capped: 3/2 of a group does not exist
    ("4:6,2:4+4:6,2:4+4:6,2:4", Fraction(1)),
])
def test_density_bound(text, bound):
    assert Decomposition.parse(text).density_bound == bound


# -- the greedy decomposition -----------------------------------------------------------------
@given(matrices(), decompositions)
def test_terms_conform_and_sum_to_w(W, d):
    r = hss.decompose(W, d)
    wide = np.int64 if W.dtype.kind in "iu" else np.float64
    assert len(r.terms) == len(d) and r.residual.dtype == wide
    support = np.zeros(W.shape, bool)
    for term, p, nz in zip(r.terms, d, r.nonzeros):
        assert term.dtype == wide and term.shape == W.shape
        assert hss.conforms(term, p)
        assert nz == np.count_nonzero(term)
        kept = term != 0
        assert not (support & kept).any()                   # disjoint supports
        np.testing.assert_array_equal(term[kept], W[kept])  # entries of W, unchanged
        support |= kept
    np.testing.assert_array_equal(r.approximation() + r.residual, W.astype(wide))
    np.testing.assert_array_equal(r.residual[support], 0)
    assert r.exact == (not r.residual.any())
    norm = np.linalg.norm(W.astype(np.float64))
    expected = np.linalg.norm(r.residual.astype(np.float64)) / norm if norm else 0.0
    assert r.error == pytest.approx(expected, rel=1e-12, abs=0)
    assert r.max_abs_error == (np.abs(r.residual.astype(np.float64)).max())


@given(matrices(), decompositions)
def test_greedy_on_the_residual_reuses_prune(W, d):
    r = hss.decompose(W, d)
    np.testing.assert_array_equal(r.terms[0], hss.prune(W, d.terms[0]))   # one term: pruning
    residual = W.astype(r.residual.dtype)
    for term, p in zip(r.terms, d):
        np.testing.assert_array_equal(term, hss.prune(residual, p))
        residual = residual - term


@given(matrices(), decompositions, patterns(2, 6))
def test_adding_a_term_never_increases_the_error(W, d, extra):
    r = hss.decompose(W, d)
    longer = hss.decompose(W, d + extra)
    for a, b in zip(r.terms, longer.terms):              # greedy: a prefix is unchanged
        np.testing.assert_array_equal(a, b)
    assert list(longer.errors) == sorted(longer.errors, reverse=True)
    assert longer.error <= r.error and longer.max_abs_error <= r.max_abs_error
    # entry by entry: a residual entry is kept or zeroed, never changed
    changed = longer.residual != r.residual
    np.testing.assert_array_equal(longer.residual[changed], 0)


@given(decompositions, st.data())
def test_exact_when_w_conforms_to_any_term(d, data):
    t = data.draw(st.integers(0, len(d) - 1))
    W = hss.prune(data.draw(matrices()), d.terms[t])
    r = hss.decompose(W, d)
    assert r.exact and r.error == 0 and r.max_abs_error == 0
    if t == 0:                                            # P alone keeps all of it
        assert r.nonzeros[1:] == (0,) * (len(d) - 1)


@given(matrices())
def test_2_4_plus_2_4_covers_every_tensor(W):
    r = hss.decompose(W, "2:4+2:4")
    assert r.exact and r.nonzeros[0] >= r.nonzeros[1]


@given(st.integers(1, 8).flatmap(lambda h: st.tuples(
    st.integers(1, h), st.integers(1, h), st.just(h)).filter(lambda x: x[0] + x[1] <= x[2])),
    st.data())
def test_same_h_terms_cover_their_sum(gh, data):
    """g1:h + g2:h keeps the top g1+g2 of each block: exact on (g1+g2):h tensors, e.g. a
    3:4 W under 2:4+1:4, a 4:8 W under 2:8+2:8 (and any W under 2:4+2:4)."""
    g1, g2, h = gh
    W = hss.prune(data.draw(matrices()), Pattern((Rank(g1 + g2, h),)))
    d = Decomposition((Pattern((Rank(g1, h),)), Pattern((Rank(g2, h),))))
    assert hss.decompose(W, d).exact


def test_order_of_terms_matters():
    W = np.array([[4, 3, 2, 1]], np.int8)
    first = hss.decompose(W, "1:2+2:4")        # 1:2 keeps 4 and 2, 2:4 the 3 and the 1
    assert first.exact
    np.testing.assert_array_equal(first.terms[0], [[4, 0, 2, 0]])
    second = hss.decompose(W, "2:4+1:2")       # 2:4 keeps 4 and 3; 2 and 1 share a pair
    assert not second.exact and second.max_abs_error == 1
    np.testing.assert_array_equal(second.residual, [[0, 0, 0, 1]])
    assert cost("1:2+2:4", 4) == cost("2:4+1:2", 4)


def test_density_bound_one_is_not_exactness():
    """Three 4:6,2:4 terms could cover a dense group (each rank-0 block in two terms),
    but greedy term 1 and 2 both take the four big blocks, leaving two dense small ones."""
    block_big, block_small = [100, 100, 50, 50], [1, 1, 1, 1]
    W = np.array([block_big * 4 + block_small * 2], np.int16)
    d = Decomposition.parse("4:6,2:4+4:6,2:4+4:6,2:4")
    assert d.density_bound == 1
    r = hss.decompose(W, d)
    assert r.nonzeros == (8, 8, 4) and not r.exact
    np.testing.assert_array_equal(r.residual, [[0] * 16 + [0, 0, 1, 1] * 2])


def test_a_4_8_tensor_and_two_terms_by_hand():
    """A 4:8 row: exact under 2:4+2:4 (which covers anything) and 2:8+2:8, not under
    2:4+1:4 when one block of 4 holds all four nonzeros."""
    W = np.array([[9, -8, 7, -6, 0, 0, 0, 0, 5, 0, 4, 0, 0, 3, 0, 2]], np.int8)
    assert hss.conforms(W, "4:8")
    assert hss.decompose(W, "2:4+2:4").exact and hss.decompose(W, "2:8+2:8").exact
    r = hss.decompose(W, "2:4+1:4")
    assert not r.exact and r.max_abs_error == 6 and r.nonzeros == (6, 1)  # -6 is left


def test_zero_and_float_tensors():
    r = hss.decompose(np.zeros((2, 8), np.int8), "1:4+1:4")
    assert r.errors == (0.0, 0.0) and r.exact and r.nonzeros == (0, 0)
    W = np.array([[0.5, -2.0, 0.25, 1.0]], np.float32)
    r = hss.decompose(W, "1:4+1:4")
    assert r.terms[0].dtype == np.float64
    np.testing.assert_array_equal(r.terms[0], [[0, -2.0, 0, 0]])
    np.testing.assert_array_equal(r.terms[1], [[0, 0, 0, 1.0]])
    assert r.max_abs_error == 0.5
    assert r.error == pytest.approx(np.hypot(0.5, 0.25) / np.linalg.norm(W.astype(float)))


def test_k_padding_follows_prune():
    """K=6 with a group of 4 (and of 24): terms are M x K, padded silently as in prune;
    compressing them warns, once per padded term."""
    W = np.array([[1, 2, 3, 4, 5, 6]], np.int8)
    d = Decomposition.parse("4:6,2:4+2:4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = hss.decompose(W, d)
    assert all(t.shape == (1, 6) for t in r.terms)
    np.testing.assert_array_equal(r.terms[0], [[0, 0, 3, 4, 5, 6]])   # 2 kept blocks of 4
    np.testing.assert_array_equal(r.terms[1], [[1, 2, 0, 0, 0, 0]])
    assert r.exact
    with pytest.warns(hss.PaddingWarning) as caught:
        c = r.compressed()
    assert len(caught) == 2 and [x.pad for x in c] == [18, 2]
    assert cost(d, 6) == 8 + 2 * 2


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16"])
@given(data=st.data())
def test_terms_stay_in_the_value_range_of_w(dtype, data):
    """What the hardware needs: terms and residual hold entries of W, never a difference."""
    info = np.iinfo(dtype)
    W = data.draw(hnp.arrays(dtype, (2, 16), elements=st.sampled_from(
        [info.min, info.min + 1, info.max, info.max - 1, 0, 1, -1 if info.min else 2])))
    r = hss.decompose(W, data.draw(decompositions))
    bits, signed = info.bits, info.min < 0
    for t, term in enumerate(r.terms, 1):
        hss.check_range(term, bits, signed, f"W_{t}")
    hss.check_range(r.residual, bits, signed, "residual")


def test_decompose_input_errors():
    with pytest.raises(TASDError, match=r"W\[0, 1\] = nan is not finite"):
        hss.decompose(np.array([[1.0, np.nan]]), "1:2")
    with pytest.raises(TASDError, match=r"W\[0, 0\] = 18446744073709551615 exceeds int64"):
        hss.decompose(np.array([[2**64 - 1, 0]], np.uint64), "1:2")
    r = hss.decompose(np.array([[2**63 - 1, 1]], np.uint64), "1:2+1:2")
    assert r.exact and r.terms[0][0, 0] == 2**63 - 1
    r = hss.decompose(np.array([[1, -2**63]], np.int64), "1:2")
    assert r.max_abs_error == 1 and r.terms[0][0, 1] == -2**63    # |int64 min| does not wrap
    assert hss.decompose(np.array([[-2**63, 0]], np.int64), "1:2+1:2").error == 0
    r = hss.decompose(np.array([[-2**63, -2**63]], np.int64), "1:2")   # a tie: one is left
    assert r.max_abs_error == 2**63 and r.error == pytest.approx(2**-0.5)
    with pytest.raises(hss.HSSError, match="must be 2-D"):
        hss.decompose(np.zeros(4), "2:4")
    with pytest.raises(hss.HSSError, match="K=0"):
        hss.decompose(np.zeros((1, 0), np.int8), "2:4")
    with pytest.raises(TASDError, match="term 2: empty term"):
        hss.decompose(np.zeros((1, 4), np.int8), "2:4+")


# -- the decomposed golden GEMM -----------------------------------------------------------------
@given(matrices(max_k=30), decompositions, st.integers(1, 3))
def test_matmul_decomposed_is_the_sum_of_term_products(W, d, n):
    if W.dtype.kind == "f":
        W = W.astype(np.int32)
    A = np.random.default_rng(W.size).integers(-128, 128, (W.shape[1], n)).astype(np.int8)
    r = hss.decompose(W, d)
    Z = quiet(hss.matmul_decomposed, r, A)
    assert Z.dtype == np.int64
    np.testing.assert_array_equal(Z, r.approximation() @ A.astype(np.int64))
    np.testing.assert_array_equal(Z, (W.astype(np.int64) - r.residual) @ A.astype(np.int64))
    if r.exact:
        np.testing.assert_array_equal(Z, W.astype(np.int64) @ A.astype(np.int64))
    # the same from compressed terms handed over directly
    np.testing.assert_array_equal(quiet(hss.matmul_decomposed, quiet(r.compressed), A), Z)


def test_matmul_decomposed_exact_and_float():
    rng = np.random.default_rng(3)
    W = rng.integers(-128, 128, (4, 48)).astype(np.int8)
    A = rng.integers(-128, 128, (48, 5)).astype(np.int8)
    r = hss.decompose(W, "4:4,2:4+2:4")
    assert r.exact
    np.testing.assert_array_equal(hss.matmul_decomposed(r, A),
                                  W.astype(np.int64) @ A.astype(np.int64))
    Wf = rng.standard_normal((3, 48))
    rf = hss.decompose(Wf, "4:6,2:4+2:4")
    np.testing.assert_allclose(hss.matmul_decomposed(rf, A), rf.approximation() @ A)


def test_matmul_decomposed_errors():
    a = hss.compress(np.zeros((2, 8), np.int8), "2:4")
    b = hss.compress(np.zeros((3, 8), np.int8), "2:4")
    with pytest.raises(TASDError, match="at least one term"):
        hss.matmul_decomposed([], np.zeros((8, 1)))
    with pytest.raises(TASDError, match="term 2 is 3x8 but term 1 is 2x8"):
        hss.matmul_decomposed([a, b], np.zeros((8, 1)))
    with pytest.raises(TASDError, match="term 2 is a ndarray, not an HSSMatrix"):
        hss.matmul_decomposed([a, np.zeros((2, 8))], np.zeros((8, 1)))
    with pytest.raises(hss.HSSError, match="A has 5 rows, expected K=8"):
        hss.matmul_decomposed([a], np.zeros((5, 1), np.int8))


# -- cost and steps ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, k, values", [
    ("4:6,2:4+2:4", 24, 8 + 12),
    ("4:6,2:4+2:4", 25, 2 * 8 + 7 * 2),       # padded groups are streamed whole
    ("4:6,2:4+4:4,2:4", 24, 8 + 2 * 8),       # 2:4 as a 2-rank mode: groups of 16
    ("2:4", 8, 4),
    ("8:8", 4096, 4096),
    ("2:4+2:4+1:4", 16, 8 + 8 + 4),
])
def test_cost_by_hand(text, k, values):
    assert cost(text, k) == values
    assert cost(text, k) == sum(hss.max_products(p, k) for p in Decomposition.parse(text))


@pytest.mark.parametrize("text, k, macs, expected", [
    ("4:6,2:4+2:4", 24, 8, 1 + 2),    # 8 values: 1 step; 12 values: 2 steps (not ceil(20/8))
    ("4:6,2:4+2:4", 24, 4, 2 + 3),
    ("2:4+2:4", 16, 8, 1 + 1),
    ("8:8", 4096, 8, 512),
])
def test_steps_by_hand(text, k, macs, expected):
    assert steps(text, k, macs) == expected >= -(-cost(text, k) // macs)


@given(st.lists(st.integers(0, 11), min_size=1, max_size=3), st.integers(1, 200))
def test_steps_match_the_lane_schedule(picks, k):
    lanes = LaneSchedule(hss.ModeSet.parse(HIGHLIGHT).modes, 8)
    d = Decomposition(tuple(lanes.modes[i] for i in picks))
    assert steps(d, k, 8) == sum(
        lanes.ideal_steps(i, -(-k // lanes.modes[i].group_size)) for i in picks)


@pytest.mark.parametrize("call, message", [
    (lambda: cost("2:4", 0), "k must be a positive integer, got 0"),
    (lambda: steps("2:4", 8, 0), "macs must be a positive integer, got 0"),
    (lambda: steps("2:4", 8, True), "macs must be a positive integer, got True"),
    (lambda: candidates(["2:4"], 0), "max_terms must be a positive integer"),
    (lambda: candidates([]), "at least one pattern"),
    (lambda: choose(np.ones((1, 4)), [], 0.1, 4), "at least one candidate"),
    (lambda: choose(np.ones((1, 4)), ["2:4"], -0.1, 4), "max_error must be a number >= 0"),
    (lambda: choose(np.ones((1, 4)), ["2:4"], float("nan"), 4), "max_error must be"),
])
def test_cost_and_choice_argument_errors(call, message):
    with pytest.raises(TASDError, match=message):
        call()


# -- candidates and choice -------------------------------------------------------------------------
def test_candidates_are_ordered_sequences():
    got = [str(d) for d in candidates(["2:4", "1:4", "2:4"])]     # the repeat is dropped
    assert got == ["2:4", "1:4", "2:4+2:4", "2:4+1:4", "1:4+2:4", "1:4+1:4"]
    assert [str(d) for d in candidates("2:4|1:4", max_terms=1)] == ["2:4", "1:4"]
    assert len(candidates(HIGHLIGHT, 3)) == 12 + 12**2 + 12**3
    assert candidates(hss.ModeSet.parse(HIGHLIGHT)) == candidates(HIGHLIGHT)
    assert candidates(Pattern.parse("2:4"), 2) == candidates(["2:4"], 2)


def test_choose_cheapest_within_budget():
    """A 3:4 W (exactly three nonzeros per block of 4), K=16, 4 multipliers per PE."""
    rng = np.random.default_rng(7)
    W = hss.prune(rng.integers(1, 100, (3, 16)), "3:4") * rng.choice([-1, 1], (3, 16))
    options = candidates(["4:4", "2:4", "1:4"])
    # steps: 4:4 -> 4, 2:4 -> 2, 1:4 -> 1, two terms add theirs
    exact = choose(W, options, 0.0, 4)
    assert str(exact.decomposition) == "2:4+1:4" and exact.exact   # 3 steps; 1:4+2:4 ties later
    assert steps(exact.decomposition, 16, 4) == 3
    loose = choose(W, options, 1.0, 4)
    assert str(loose.decomposition) == "1:4"                      # 1 step: anything goes
    middle = choose(W, options, hss.decompose(W, "2:4").error, 4)
    assert str(middle.decomposition) == "2:4"                     # 2 steps, 1:4+1:4 the same
    # the answer is decompose's own result
    np.testing.assert_array_equal(exact.residual, hss.decompose(W, "2:4+1:4").residual)


def test_choose_ties_go_to_the_lower_error_then_the_order():
    W = np.array([[5, 4, 0, 0]], np.int8)
    assert hss.decompose(W, "1:2").error > 0 and hss.decompose(W, "2:4").exact
    # same steps (2 values per 4): the lower error wins although listed second
    assert str(choose(W, ["1:2", "2:4"], 1.0, 2).decomposition) == "2:4"
    # same steps and error (one multiplier: 2 steps each): the first listed wins
    assert str(choose(W, ["1:4+1:4", "2:4"], 1.0, 1).decomposition) == "1:4+1:4"
    assert str(choose(W, ["2:4", "1:4+1:4"], 1.0, 1).decomposition) == "2:4"
    # on two multipliers 1:4+1:4 takes a step per term: 2:4 is cheaper
    assert str(choose(W, ["1:4+1:4", "2:4"], 1.0, 2).decomposition) == "2:4"
    assert str(choose(W, "2:4", 0.0, 2).decomposition) == "2:4"      # one candidate


def test_choose_names_the_best_error_when_none_fits():
    W = np.array([[4, 3, 2, 1] * 2], np.int16)
    best = hss.decompose(W, "1:4+1:4").error
    with pytest.raises(TASDError) as err:
        choose(W, ["1:8", "1:4", "1:4+1:4"], 0.01, 8)
    message = str(err.value)
    assert message.startswith("no candidate reaches relative error <= 0.01 on the 1x8 W: ")
    assert f"the best of 3 is {best:.4g} with '1:4+1:4'" in message and "\n" not in message


def test_explain_choice_names_the_best_saving_candidate_when_the_choice_saves_nothing():
    """A dense W and a 1 % budget: only the dense cover fits; the explanation names the
    candidate with the lowest error among those cheaper than dense, and its steps."""
    rng = np.random.default_rng(3)
    W = rng.integers(1, 100, (4, 16)) * rng.choice([-1, 1], (4, 16))
    options = candidates(["4:4", "2:4", "1:4"])
    c = hss.tasd.explain_choice(W, options, 0.01, 4)
    assert str(c.result.decomposition) in ("4:4", "2:4+2:4") and c.result.exact
    assert (c.steps, c.dense_steps, c.saves) == (4, 4, False)
    cheaper = [d for d in options if steps(d, 16, 4) < 4]
    errors = {str(d): hss.decompose(W, d).error for d in cheaper}
    assert str(c.best_saving.decomposition) == min(errors, key=errors.get)
    assert c.best_saving_steps == steps(c.best_saving.decomposition, 16, 4) < 4
    assert choose(W, options, 0.01, 4).decomposition == c.result.decomposition
    # a budget that a cheaper candidate meets: the choice saves, and is that candidate
    loose = hss.tasd.explain_choice(W, options, c.best_saving.error, 4)
    assert loose.saves and loose.steps <= c.best_saving_steps
    # no candidate cheaper than dense at all
    only_dense = hss.tasd.explain_choice(W, ["4:4"], 0.0, 4)
    assert only_dense.best_saving is None and only_dense.best_saving_steps is None
