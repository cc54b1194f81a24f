"""Checking and shaping input tensors: dtypes, value ranges, padding K to the group."""
from __future__ import annotations

import warnings

import numpy as np

from .errors import HSSError, PaddingWarning

__all__ = ["as_matrix", "pad_columns", "value_range", "check_range", "dtype_for"]


def as_matrix(x, name: str = "W", *, allow_float: bool = True) -> np.ndarray:
    """``x`` as a 2-D integer (or float) array, or an HSSError naming what is wrong."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise HSSError(f"{name} must be 2-D, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind == "f" and not allow_float:
        raise HSSError(f"{name} must hold integers, got dtype {arr.dtype}")
    if kind not in "iuf":
        raise HSSError(f"{name} must hold integers{' or floats' if allow_float else ''}, "
                       f"got dtype {arr.dtype}")
    return arr


def pad_columns(W: np.ndarray, multiple: int, name: str = "W",
                warn: bool = False) -> tuple[np.ndarray, int]:
    """Zero-pad the columns (K) of ``W`` to a multiple (warning once if ``warn``)."""
    k = W.shape[1]
    pad = -k % multiple
    if k == 0:
        raise HSSError(f"{name} has K=0 columns")
    if pad and warn:
        warnings.warn(f"K={k} is not a multiple of the group size {multiple}: "
                      f"zero-padded to {k + pad}", PaddingWarning, stacklevel=4)
    if pad:
        W = np.concatenate([W, np.zeros((W.shape[0], pad), W.dtype)], axis=1)
    return W, pad


def value_range(bits: int, signed: bool) -> tuple[int, int]:
    """Inclusive range of a ``bits``-wide signed or unsigned integer."""
    if not isinstance(bits, int) or bits < 1:
        raise HSSError(f"value width must be a positive integer, got {bits!r}")
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def check_range(x: np.ndarray, bits: int, signed: bool, name: str) -> None:
    """Raise an HSSError naming the first entry of ``x`` outside the value range."""
    lo, hi = value_range(bits, signed)
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise HSSError(f"{name} must hold integers, got dtype {arr.dtype}")
    bad = np.argwhere((arr < lo) | (arr > hi)) if arr.size else np.empty((0, arr.ndim))
    if len(bad):
        where = tuple(int(i) for i in bad[0])
        kind = "int" if signed else "uint"
        raise HSSError(f"{name}{list(where)} = {int(arr[where])} is outside the {kind}{bits} "
                       f"range [{lo}, {hi}]")


def dtype_for(bits: int, signed: bool) -> np.dtype:
    """The narrowest NumPy integer dtype holding ``bits``-wide values."""
    for size in (8, 16, 32, 64):
        if bits <= size:
            return np.dtype(f"{'int' if signed else 'uint'}{size}")
    raise HSSError(f"value width {bits} exceeds 64 bits")
