"""Output requantization: a layer's accumulators to int8, as inference accelerators do it.

Each output row ``m`` (one output channel: a row of W) has an integer multiplier, a signed
16-bit ``scale`` and a ``shift`` in 0..47, standing for the real factor ``scale * 2**-shift``
(the weights' scale of that row times the activations' scale over the output's scale)::

    y = saturate_int8(relu?((z * scale + round) >> shift)),  round = 1 << (shift - 1) if shift

``>>`` is the arithmetic shift of the signed product (floor division by ``2**shift``).

Rounding is *half up* (toward +inf at exactly .5: ``-2.5 -> -2``, ``2.5 -> 3``) because it
is what a constant add before the shift gives, and in hardware it is cheaper still:
``floor((p + 2**(s-1)) / 2**s) = floor(p / 2**s) + bit s-1 of p``, an increment by one bit
of the product, no sign logic (half away from zero needs the sign, half to even the sticky
OR of the bits below). Its bias, +1/2 LSB at exact ties only, is negligible once ``shift``
is more than a few bits, as it is for every calibrated layer. For non-negative products it
is gemmlowp's ``RoundingDivideByPOT`` (which rounds negative ties away from zero instead).

ReLU, where asked, clamps at 0 before saturation (the same result as after rounding: the
rounding is monotone and keeps 0). Saturation is to ``[-128, 127]``; with ReLU the outputs
are ``0..127``. Unsigned builds' accumulators are non-negative; the scale is signed still.

A table entry (``docs/system.md``, the requantization table, 32 bits): ``scale`` in bits
15:0 (two's complement), ``shift`` in bits 21:16, bits 31:22 zero.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import HSSError

__all__ = ["RequantError", "SCALE_MIN", "SCALE_MAX", "SHIFT_MAX", "OUT_MIN", "OUT_MAX",
           "ENTRY_BITS", "requantize", "pack_entry", "unpack_entry", "pack_table",
           "unpack_table", "quantize_multiplier", "choose_scales"]

SCALE_BITS = 16
SCALE_MIN, SCALE_MAX = -(1 << (SCALE_BITS - 1)), (1 << (SCALE_BITS - 1)) - 1
SHIFT_BITS = 6
SHIFT_MAX = 47
OUT_MIN, OUT_MAX = -128, 127
ENTRY_BITS = 32
#: |z| below this keeps ``z * scale + round`` inside int64; larger accumulators take the
#: exact (Python integer) path.
_INT64_Z = 1 << 46


class RequantError(HSSError):
    """A scale, shift, table entry or accumulator the requantizer cannot take (one line)."""


def _ints(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind == "O":
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                   for v in arr.flat):
            raise RequantError(f"{name} must hold integers")
    elif arr.dtype.kind not in "iu":
        raise RequantError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr


def _check_range(arr: np.ndarray, lo: int, hi: int, name: str, what: str) -> None:
    bad = [i for i, v in np.ndenumerate(arr) if not lo <= int(v) <= hi]
    if bad:
        where = list(bad[0]) if arr.ndim else []
        raise RequantError(f"{name}{where} = {int(arr[bad[0]])} is outside {what} "
                           f"[{lo}, {hi}]")


def _per_row(x, rows: int, name: str) -> np.ndarray:
    arr = _ints(x, name)
    if arr.ndim == 0:
        return np.full(rows, int(arr), object)
    if arr.shape != (rows,):
        raise RequantError(f"{name} must be one value per row ({rows}), got shape {arr.shape}")
    return arr.astype(object)


def requantize(z, scale, shift, relu: bool = False) -> np.ndarray:
    """int8 outputs (int64 array, z's shape) of accumulators ``z`` (rows along axis 0: an
    (M, N) layer, a (rows, cols) tile or one row), with one ``scale`` and ``shift`` per row
    (or one for all). Exact for any accumulator width."""
    z = _ints(z, "z")
    if z.ndim == 0:
        z = z.reshape(1)
        return requantize(z, scale, shift, relu)[0]
    scale = _per_row(scale, z.shape[0], "scale")
    shift = _per_row(shift, z.shape[0], "shift")
    _check_range(scale, SCALE_MIN, SCALE_MAX, "scale", "int16")
    _check_range(shift, 0, SHIFT_MAX, "shift", "the shifts")
    tail = (-1,) + (1,) * (z.ndim - 1)
    rounding = np.array([(1 << int(s)) >> 1 for s in shift], object).reshape(tail)
    if z.size and max(int(z.max()), -int(z.min())) < _INT64_Z:
        p = z.astype(np.int64) * scale.astype(np.int64).reshape(tail) + \
            rounding.astype(np.int64)
        y = p >> shift.astype(np.int64).reshape(tail)
    else:
        p = z.astype(object) * scale.reshape(tail) + rounding
        y = np.vectorize(lambda v, s: v >> s, otypes=[object])(p, shift.reshape(tail))
    if relu:
        y = np.maximum(y, 0)
    return np.clip(y, OUT_MIN, OUT_MAX).astype(np.int64)


# ---- the table -----------------------------------------------------------------------------

def pack_entry(scale: int, shift: int) -> int:
    """One 32-bit table entry: ``scale`` (int16) in bits 15:0, ``shift`` (0..47) in 21:16."""
    for name, v in (("scale", scale), ("shift", shift)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise RequantError(f"{name} must be an integer, not {v!r}")
    if not SCALE_MIN <= scale <= SCALE_MAX:
        raise RequantError(f"scale {scale} is outside int16 [{SCALE_MIN}, {SCALE_MAX}]")
    if not 0 <= shift <= SHIFT_MAX:
        raise RequantError(f"shift {shift} is outside the shifts [0, {SHIFT_MAX}]")
    return (int(scale) & 0xFFFF) | (int(shift) << SCALE_BITS)


def unpack_entry(word: int) -> tuple[int, int]:
    """(scale, shift) of a table entry; bits 31:22 must be zero, the shift at most 47."""
    if not isinstance(word, (int, np.integer)) or not 0 <= word < 1 << ENTRY_BITS:
        raise RequantError(f"a table entry is a 32-bit unsigned integer, not {word!r}")
    word = int(word)
    if word >> (SCALE_BITS + SHIFT_BITS):
        raise RequantError(f"table entry {word:#010x} has bits 31:22 set (they must be zero)")
    scale, shift = word & 0xFFFF, word >> SCALE_BITS
    if shift > SHIFT_MAX:
        raise RequantError(f"table entry {word:#010x} has shift {shift}, above {SHIFT_MAX}")
    return scale - (1 << SCALE_BITS) if scale >> (SCALE_BITS - 1) else scale, shift


def pack_table(scales, shifts) -> np.ndarray:
    """The table of a layer: one entry per output row, as uint32."""
    scales, shifts = _ints(scales, "scales"), _ints(shifts, "shifts")
    if scales.ndim != 1 or scales.shape != shifts.shape:
        raise RequantError(f"scales and shifts must be 1-D and alike, got {scales.shape} and "
                           f"{shifts.shape}")
    return np.array([pack_entry(int(a), int(s)) for a, s in zip(scales, shifts)], np.uint32)


def unpack_table(entries) -> tuple[np.ndarray, np.ndarray]:
    """(scales, shifts) as int64 arrays from table entries."""
    pairs = [unpack_entry(int(e)) for e in np.asarray(entries).reshape(-1)]
    return (np.array([a for a, _ in pairs], np.int64).reshape(-1),
            np.array([s for _, s in pairs], np.int64).reshape(-1))


# ---- choosing scales -------------------------------------------------------------------------

def quantize_multiplier(multiplier: float) -> tuple[int, int]:
    """(scale, shift) with ``scale * 2**-shift`` nearest to a real ``multiplier``, keeping
    the most bits: the largest shift whose rounded scale fits int16. 0 gives (0, 0); a
    multiplier too small for one LSB at shift 47 gives scale 0 (every output 0)."""
    m = float(multiplier)
    if not math.isfinite(m):
        raise RequantError(f"multiplier {multiplier!r} is not finite")
    if m == 0:
        return 0, 0
    for shift in range(SHIFT_MAX, -1, -1):
        scale = math.floor(m * 2.0 ** shift + 0.5)
        if SCALE_MIN <= scale <= SCALE_MAX:
            return scale, shift
    raise RequantError(f"multiplier {m} is beyond a 16-bit scale even at shift 0 "
                       f"(at most {SCALE_MAX}, at least {SCALE_MIN})")


def choose_scales(Z, relu: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (scales, shifts) mapping each row's accumulator range onto int8, by max-abs
    calibration: row ``m``'s factor is ``127 / max|Z[m]|`` (with ``relu``, ``127 /
    max(Z[m])``: only the positive side survives), so the largest magnitude maps to 127 and
    zero stays zero (symmetric, no zero point). ``Z``: (M, N) integers or floats (a
    calibration batch's accumulators). A row with nothing to map (all zero, or with
    ``relu`` nothing positive) gets scale 1, shift 0. Raises ``RequantError`` for a row
    whose range is beyond what scale 1 and shift 47 can bring to int8."""
    Z = np.asarray(Z)
    if Z.ndim != 2 or Z.dtype.kind not in "iuf":
        raise RequantError(f"Z must be a 2-D array of numbers, got shape {Z.shape} and "
                           f"dtype {Z.dtype}")
    if Z.dtype.kind == "f" and not np.isfinite(Z).all():
        raise RequantError("Z must be finite")
    scales, shifts = [], []
    for m, row in enumerate(Z):
        top = (max(float(row.max()), 0.0) if relu else float(np.abs(row).max())) \
            if row.size else 0.0
        if top == 0:
            scales.append(1)
            shifts.append(0)
            continue
        if top > (OUT_MAX + 0.5) * 2.0 ** SHIFT_MAX:
            raise RequantError(f"row {m}: max |z| = {top:g} needs a shift above {SHIFT_MAX} "
                               f"to reach int8")
        scale, shift = quantize_multiplier(OUT_MAX / top)
        scales.append(max(scale, 1))
        shifts.append(shift)
    return np.array(scales, np.int64), np.array(shifts, np.int64)
