"""Compressed format, conformance, pruning and the golden GEMM, property-based and by hand."""
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import hss
from hss import Pattern, Rank
from strategies import patterns

INT_DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "int64", "uint32"]




@st.composite
def conforming(draw, dtype=None):
    """A pattern and a random tensor that conforms to it (pruned from random data)."""
    p = draw(patterns())
    dtype = dtype or draw(st.sampled_from(INT_DTYPES + ["float32", "float64"]))
    rows = draw(st.integers(1, 4))
    k = draw(st.integers(1, 3 * p.group_size))
    elements = (st.floats(-100, 100, width=32) if np.dtype(dtype).kind == "f"
                else st.integers(*_small_range(dtype)))
    W = draw(hnp.arrays(dtype, (rows, k), elements=elements))
    zero_rate = draw(st.sampled_from([0.0, 0.3, 0.8]))
    mask = draw(hnp.arrays(bool, (rows, k), elements=st.booleans())) if zero_rate else None
    if mask is not None:
        W = np.where(mask, W, 0).astype(dtype)
    return p, hss.prune(W, p)


def _small_range(dtype):
    info = np.iinfo(dtype)
    return max(info.min, -1000), min(info.max, 1000)


def quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        return fn(*args)


@given(conforming())
def test_round_trip(case):
    p, W = case
    c = quiet(hss.compress, W, p)
    assert c.values.dtype == W.dtype
    assert c.values.shape == (W.shape[0], c.groups, p.slots)
    for r in range(p.num_ranks):
        o = c.offsets[r]
        assert o.shape == (W.shape[0], c.groups, p.kept(r))
        assert ((0 <= o) & (o < p.H[r])).all()
        # increasing within each kept parent
        assert (np.diff(o.reshape(*o.shape[:2], -1, p.G[r]), axis=-1) > 0).all()
    out = hss.decompress(c)
    assert out.dtype == W.dtype and out.shape == W.shape
    np.testing.assert_array_equal(out, W)
    assert c.pad == -W.shape[1] % p.group_size


@given(conforming())
def test_prune_is_a_projection(case):
    p, W = case
    assert hss.conforms(W, p)
    np.testing.assert_array_equal(hss.prune(W, p), W)


@given(patterns(), st.sampled_from(INT_DTYPES + ["float64"]), st.data())
def test_prune_conforms_and_keeps_subset(p, dtype, data):
    rows, k = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2 * p.group_size))
    kind = np.dtype(dtype).kind
    elements = st.floats(-1e3, 1e3) if kind == "f" else st.integers(*_small_range(dtype))
    W = data.draw(hnp.arrays(dtype, (rows, k), elements=elements))
    P = hss.prune(W, p)
    assert P.dtype == W.dtype and P.shape == W.shape
    assert hss.conforms(P, p)
    assert ((P == W) | (P == 0)).all()  # pruning only zeroes entries


@given(st.integers(1, 8).flatmap(lambda h: st.tuples(st.integers(1, h), st.just(h))),
       hnp.arrays("int16", (3, 16), elements=st.integers(-300, 300)))
def test_single_rank_prune_keeps_largest_magnitudes(gh, W):
    g, h = gh
    p = Pattern((Rank(g, h),))
    P = hss.prune(W, p)
    Wp = np.concatenate([W, np.zeros((3, -16 % h), W.dtype)], axis=1).reshape(-1, h)
    Pp = np.concatenate([P, np.zeros((3, -16 % h), P.dtype)], axis=1).reshape(-1, h)
    for block, kept in zip(np.abs(Wp.astype(int)), Pp != 0):
        # every kept entry is at least as large as every dropped one
        if kept.any() and (~kept).any():
            assert block[kept].min() >= block[~kept].max()
        assert kept.sum() == min(g, np.count_nonzero(block))


def test_prune_two_ranks_by_hand():
    p = Pattern.parse("1:2,2:4")
    W = np.array([[5, -1, 3, 0, 9, 0, 0, 0]], np.int8)
    # rank 0: [5, 3] kept (norm^2 34) vs [9] (81): rank 1 keeps block 1
    np.testing.assert_array_equal(hss.prune(W, p), [[0, 0, 0, 0, 9, 0, 0, 0]])
    # ties go to the lowest index, at both ranks
    W = np.array([[2, 2, 2, 2, -2, 2, 2, 2]], np.int8)
    np.testing.assert_array_equal(hss.prune(W, p), [[2, 2, 0, 0, 0, 0, 0, 0]])


def test_prune_extreme_integers_do_not_wrap():
    W = np.array([[-128, 127, 1, 0]], np.int8)
    np.testing.assert_array_equal(hss.prune(W, "1:4"), [[-128, 0, 0, 0]])
    W = np.array([[np.iinfo(np.int64).min, np.iinfo(np.int64).max]], np.int64)
    np.testing.assert_array_equal(hss.prune(W, "1:2"), [[np.iinfo(np.int64).min, 0]])
    W = np.array([[2**40, -2**40 - 1, 0, 0, 2**40, 2**40, 0, 0]], np.int64)
    np.testing.assert_array_equal(hss.prune(W, "1:2,2:4"), [[2**40, -2**40 - 1, 0, 0] + [0] * 4])


@given(conforming(), st.integers(1, 5), st.sampled_from(["int8", "uint8", "int16"]))
def test_matmul_equals_dense_product(case, n, a_dtype):
    p, W = case
    if W.dtype.kind == "f":
        W = W.astype(np.int32)  # truncation keeps conformance
    c = quiet(hss.compress, W, p)
    info = np.iinfo(a_dtype)
    A = np.random.default_rng(W.size).integers(info.min, info.max, (W.shape[1], n), endpoint=True)
    A = A.astype(a_dtype)
    expected = W.astype(np.int64) @ A.astype(np.int64)
    np.testing.assert_array_equal(hss.matmul(c, A), expected)


def test_step_matches_product_group_by_group():
    rng = np.random.default_rng(1)
    p = Pattern.parse("2:3,3:4,2:4")
    W = hss.prune(rng.integers(-128, 128, (2, 3 * p.group_size)).astype(np.int8), p)
    A = rng.integers(-128, 128, (3 * p.group_size, 4)).astype(np.int8)
    c = hss.compress(W, p)
    for row in range(2):
        total = np.zeros(4, np.int64)
        for g in range(c.groups):
            values, offsets = c.group(row, g)
            act = A[g * p.group_size:(g + 1) * p.group_size]
            s = hss.step(p, values, offsets, act)
            pos = hss.positions(p, offsets)
            np.testing.assert_array_equal(s.selected, act[pos])
            total += s.partial
            pos2, dense = hss.decompress_group(p, values, offsets)
            np.testing.assert_array_equal(pos2, pos)
            np.testing.assert_array_equal(dense, W[row, g * p.group_size:(g + 1) * p.group_size])
        np.testing.assert_array_equal(total, W[row].astype(np.int64) @ A.astype(np.int64))


def test_scalar_step():
    p = Pattern.parse("2:4")
    s = hss.step(p, [3, -2], [np.array([1, 3])], np.array([10, 20, 30, 40]))
    assert s.partial == 3 * 20 - 2 * 40
    np.testing.assert_array_equal(s.selected, [20, 40])


# -- 2:4 offsets vs the sparse tensor core convention ------------------------------------
# Two 2-bit indices per 4-element block, increasing, the first in bits [1:0]; a block with
# fewer than two nonzeros is filled with the lowest unused index (0x4 = indices 0,1).
@pytest.mark.parametrize("block, indices, nibble", [
    ([7, 3, 0, 0], [0, 1], 0x4),
    ([0, 0, 7, 3], [2, 3], 0xE),
    ([7, 0, 3, 0], [0, 2], 0x8),
    ([0, 7, 0, 3], [1, 3], 0xD),
    ([7, 0, 0, 3], [0, 3], 0xC),
    ([0, 7, 3, 0], [1, 2], 0x9),
    ([0, 0, 0, 5], [0, 3], 0xC),
    ([0, 0, 5, 0], [0, 2], 0x8),
    ([5, 0, 0, 0], [0, 1], 0x4),
    ([0, 0, 0, 0], [0, 1], 0x4),
])
def test_2_4_offsets_match_tensor_core_metadata(block, indices, nibble):
    c = hss.compress(np.array([block], np.int8), "2:4")
    assert c.offsets[0][0, 0].tolist() == indices
    assert hss.pack_fields(indices, 2) == nibble
    assert hss.unpack_fields(nibble, 2, 2) == indices
    assert sorted(c.values[0, 0].tolist(), key=abs) == sorted(
        [block[i] for i in indices], key=abs)


def test_canonical_encoding_hss_by_hand():
    p = Pattern.parse("4:6,2:4")
    row = np.zeros(24, np.int8)
    row[[1, 3]] = [1, 2]        # rank-0 block 0
    row[[20]] = [3]             # rank-0 block 5
    c = hss.compress(row[None], p)
    # rank 1: non-empty blocks 0 and 5, filled with 1, 2 -> [0, 1, 2, 5]
    assert c.offsets[1][0, 0].tolist() == [0, 1, 2, 5]
    # rank 0 per kept block: [1,3], [0,1] (empty), [0,1] (empty), [0,1] (20 is offset 0; fill 1)
    assert c.offsets[0][0, 0].tolist() == [1, 3, 0, 1, 0, 1, 0, 1]
    assert c.values[0, 0].tolist() == [1, 2, 0, 0, 0, 0, 3, 0]
    assert hss.positions(p, [o[0, 0] for o in c.offsets]).tolist() == [1, 3, 4, 5, 8, 9, 20, 21]


def test_conformance_error_names_first_offender():
    p = Pattern.parse("4:6,2:4")
    W = np.zeros((5, 48), np.int8)
    W[3, 24 + 8:24 + 11] = 1          # row 3, group 1, rank-0 block 2: 3 nonzeros
    W[4, 0:24:4] = 1                  # row 4: six non-empty rank-0 blocks
    assert not hss.conforms(W, p)
    with pytest.raises(hss.ConformanceError) as err:
        hss.check_conforms(W, p)
    e = err.value
    assert (e.row, e.group, e.rank, e.block, e.count, e.allowed) == (3, 1, 0, 2, 3, 2)
    assert "row 3, group 1" in str(e) and "rank 0 block 2 has 3 nonzeros" in str(e)
    assert "allows 2" in str(e)
    W[3] = 0
    with pytest.raises(hss.ConformanceError, match="row 4, group 0.*rank 1 block 0 has 6 "
                       "non-empty blocks, pattern 4:6,2:4 allows 4"):
        hss.compress(W, p)


def test_padding_warns_and_is_recorded():
    p = Pattern.parse("2:4")
    W = np.array([[1, 0, 2, 0, 0, 3]], np.int8)
    with pytest.warns(hss.PaddingWarning, match="K=6 .* zero-padded to 8"):
        c = hss.compress(W, p)
    assert c.pad == 2 and c.k == 6 and c.groups == 2
    np.testing.assert_array_equal(hss.decompress(c), W)
    A = np.arange(12).reshape(6, 2)
    np.testing.assert_array_equal(hss.matmul(c, A), W.astype(np.int64) @ A)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hss.conforms(W, p)  # checking does not warn: nothing is recorded


@pytest.mark.parametrize("bad, message", [
    (np.zeros(4), "must be 2-D"),
    (np.zeros((2, 4), bool), "must hold integers or floats"),
    (np.array([["a"]]), "must hold integers"),
    (np.zeros((2, 0), np.int8), "K=0"),
])
def test_bad_tensors(bad, message):
    with pytest.raises(hss.HSSError, match=message):
        hss.compress(bad, "2:4")


def test_matmul_shape_mismatch():
    c = hss.compress(np.zeros((2, 8), np.int8), "2:4")
    with pytest.raises(hss.HSSError, match="A has 5 rows, expected K=8"):
        hss.matmul(c, np.zeros((5, 3), np.int8))


def test_value_range_and_check():
    assert hss.value_range(8, True) == (-128, 127)
    assert hss.value_range(8, False) == (0, 255)
    hss.check_range(np.array([[-128, 127]]), 8, True, "W")
    with pytest.raises(hss.HSSError, match=r"W\[0, 1\] = 128 is outside the int8 range"):
        hss.check_range(np.array([[0, 128]]), 8, True, "W")
    with pytest.raises(hss.HSSError, match="uint4 range"):
        hss.check_range(np.array([-1]), 4, False, "A")


@pytest.mark.parametrize("bits, signed, products, expected", [
    (8, True, 1, 16),            # -128*-128 = 16384 needs 15 bits + sign
    (8, True, 2, 17),
    (8, False, 1, 16),           # 255*255 = 65025
    (8, True, 8 * 4096 // 24, 26),  # 1365 * 2**14 < 2**25: 25 bits + sign
    (16, True, 1, 32),
])
def test_accumulator_bits(bits, signed, products, expected):
    assert hss.accumulator_bits(bits, signed, products) == expected
    lo, hi = hss.value_range(bits, signed)
    worst = products * max(lo * lo, hi * hi)
    acc = hss.accumulator_bits(bits, signed, products)
    if signed:
        assert worst <= (1 << (acc - 1)) - 1 and worst > (1 << (acc - 2)) - 1
    else:
        assert worst <= (1 << acc) - 1 and worst > (1 << (acc - 1)) - 1
