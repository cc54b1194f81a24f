"""``hss.requant``: the rounding, saturation and ReLU against exact rational arithmetic, the
table entry format, and the calibration."""
from fractions import Fraction

import numpy as np
import pytest

from hss.requant import (OUT_MAX, RequantError, SCALE_MAX, SCALE_MIN, SHIFT_MAX,
                         choose_scales, pack_entry, pack_table, quantize_multiplier,
                         requantize, unpack_entry, unpack_table)


def exact(z: int, scale: int, shift: int, relu: bool) -> int:
    """The definition: nearest integer to z * scale / 2**shift, ties toward +inf."""
    y = Fraction(z * scale, 1 << shift) + Fraction(1, 2)
    y = y.numerator // y.denominator
    if relu:
        y = max(y, 0)
    return min(max(y, -128), 127)


def test_random_rows_against_the_definition():
    rng = np.random.default_rng(0)
    for acc_bits in (8, 20, 30, 46):
        z = rng.integers(-(1 << (acc_bits - 1)), 1 << (acc_bits - 1), (6, 9))
        scale = rng.integers(SCALE_MIN, SCALE_MAX + 1, 6)
        shift = rng.integers(0, SHIFT_MAX + 1, 6)
        for relu in (False, True):
            got = requantize(z, scale, shift, relu)
            want = [[exact(int(v), int(scale[i]), int(shift[i]), relu) for v in row]
                    for i, row in enumerate(z)]
            assert got.tolist() == want and got.dtype == np.int64


def test_edges():
    lo, hi = -(1 << 47), (1 << 47) - 1            # 48-bit accumulators' extremes
    z = np.array([[lo, hi, 0, 1, -1]], np.int64)
    for scale in (SCALE_MIN, SCALE_MAX, -1, 0, 1):
        for shift in (0, 1, 46, SHIFT_MAX):
            for relu in (False, True):
                want = [exact(int(v), scale, shift, relu) for v in z[0]]
                assert requantize(z, [scale], [shift], relu).tolist() == [want]
    # past int64 products: the exact path
    big = np.array([[1 << 62, -(1 << 62) + 5]], object)
    assert requantize(big, SCALE_MIN, SHIFT_MAX).tolist() == \
        [[exact(1 << 62, SCALE_MIN, 47, False), exact(-(1 << 62) + 5, SCALE_MIN, 47, False)]]
    assert requantize(np.array([[(1 << 55) + (1 << 46)]], object), 1, 47).tolist() == [[127]]


def test_ties_round_half_up():
    z = np.array([5, -5, 3, -3, 7, -7])           # / 2 (scale 1, shift 1): +-2.5, +-1.5, +-3.5
    assert requantize(z[None, :], 1, 1)[0].tolist() == [3, -2, 2, -1, 4, -3]
    assert requantize(np.array([[6]]), 1, 2).tolist() == [[2]]          # 1.5 -> 2
    assert requantize(np.array([[-6]]), 1, 2).tolist() == [[-1]]        # -1.5 -> -1
    assert requantize(np.array([[255, -257]]), 1, 1).tolist() == [[127, -128]]  # saturation
    assert requantize(np.array([[-300, 300]]), 1, 0, relu=True).tolist() == [[0, 127]]


def test_scalar_and_per_row_forms():
    z = np.arange(-6, 6).reshape(3, 4)
    assert (requantize(z, 3, 1) == requantize(z, [3, 3, 3], [1, 1, 1])).all()
    assert requantize(np.int64(10), 1, 1) == 5
    with pytest.raises(RequantError, match=r"scale must be one value per row \(3\)"):
        requantize(z, [1, 2], 0)


@pytest.mark.parametrize("args, message", [
    ((np.ones((2, 2)), 1, 0), "z must hold integers"),
    ((np.ones((2, 2), int), [1, 32768], 0), r"scale\[1\] = 32768 is outside int16"),
    ((np.ones((2, 2), int), -32769, 0), r"scale\[0\] = -32769 is outside int16"),
    ((np.ones((2, 2), int), 1, [0, 48]), r"shift\[1\] = 48 is outside the shifts \[0, 47\]"),
    ((np.ones((2, 2), int), 1, -1), r"shift\[0\] = -1 is outside"),
])
def test_bad_requantize_inputs(args, message):
    with pytest.raises(RequantError, match=message) as e:
        requantize(*args)
    assert "\n" not in str(e.value)


def test_table_entries():
    assert pack_entry(-1, 47) == 0x2FFFFF
    assert pack_entry(SCALE_MIN, 0) == 0x8000 and pack_entry(SCALE_MAX, 1) == 0x17FFF
    rng = np.random.default_rng(1)
    scales = rng.integers(SCALE_MIN, SCALE_MAX + 1, 100)
    shifts = rng.integers(0, SHIFT_MAX + 1, 100)
    table = pack_table(scales, shifts)
    assert table.dtype == np.uint32 and all(int(e) >> 22 == 0 for e in table)
    back = unpack_table(table)
    assert (back[0] == scales).all() and (back[1] == shifts).all()
    for e, a, s in zip(table, scales, shifts):
        assert unpack_entry(int(e)) == (a, s)


@pytest.mark.parametrize("call, message", [
    (lambda: pack_entry(32768, 0), "scale 32768 is outside int16"),
    (lambda: pack_entry(0, 48), "shift 48 is outside the shifts"),
    (lambda: pack_entry(1.0, 0), "scale must be an integer"),
    (lambda: unpack_entry(1 << 22), "bits 31:22 set"),
    (lambda: unpack_entry(48 << 16), "shift 48, above 47"),
    (lambda: unpack_entry(1 << 32), "32-bit unsigned"),
    (lambda: pack_table([1, 2], [0]), "1-D and alike"),
])
def test_bad_table_inputs(call, message):
    with pytest.raises(RequantError, match=message):
        call()


def test_quantize_multiplier_keeps_the_most_bits():
    rng = np.random.default_rng(2)
    for m in np.concatenate([10.0 ** rng.uniform(-12, 4, 200), -10.0 ** rng.uniform(-12, 4, 50)]):
        scale, shift = quantize_multiplier(m)
        assert SCALE_MIN <= scale <= SCALE_MAX and 0 <= shift <= SHIFT_MAX
        # the most bits: one more shift would not fit, unless the shift is already 47
        assert shift == SHIFT_MAX or not SCALE_MIN <= round(m * 2.0 ** (shift + 1)) <= SCALE_MAX
        assert abs(scale * 2.0 ** -shift - m) <= 2.0 ** -(shift + 1) * 1.000001
    assert quantize_multiplier(0) == (0, 0)
    assert quantize_multiplier(1.0) == (16384, 14)
    assert quantize_multiplier(-1.0) == (-32768, 15)
    assert quantize_multiplier(2.0 ** -60) == (0, 47)
    with pytest.raises(RequantError, match="beyond a 16-bit scale even at shift 0"):
        quantize_multiplier(40000)
    with pytest.raises(RequantError, match="not finite"):
        quantize_multiplier(float("nan"))


def test_choose_scales_maps_each_row_onto_int8():
    rng = np.random.default_rng(3)
    ranges = [1, 7, 127, 128, 1000, 3 << 20, 1 << 40]
    Z = np.stack([rng.integers(-r, r + 1, 64) for r in ranges])
    Z[:, 0] = ranges                                   # the largest magnitude is there
    scales, shifts = choose_scales(Z)
    y = requantize(Z, scales, shifts)
    assert (y[:, 0] == OUT_MAX).all()                  # each row's top maps to 127
    assert (np.abs(y) <= OUT_MAX).all()                # and nothing reaches -128
    # the rest follow the real factor within one LSB
    real = Z * (OUT_MAX / np.array(ranges, float))[:, None]
    assert np.abs(y - real).max() <= 1


def test_choose_scales_relu_zero_rows_and_floats():
    Z = np.array([[0, 0, 0], [-50, -1, 0], [-1000, 10, 5], [3, -9, 1]])
    scales, shifts = choose_scales(Z, relu=True)
    assert (scales[:2] == 1).all() and (shifts[:2] == 0).all()
    y = requantize(Z, scales, shifts, relu=True)
    assert y[2].tolist() == [0, 127, 64] and y[3].max() == 127
    fs, fsh = choose_scales(np.array([[0.5, -2.0]]))
    assert fs[0] * 2.0 ** -fsh[0] == pytest.approx(127 / 2.0, rel=1e-4)
    with pytest.raises(RequantError, match="row 0: max |z| = .* needs a shift above 47"):
        choose_scales(np.array([[2.0 ** 60]]))
    with pytest.raises(RequantError, match="2-D array of numbers"):
        choose_scales(np.arange(3))
    with pytest.raises(RequantError, match="finite"):
        choose_scales(np.array([[np.inf]]))
