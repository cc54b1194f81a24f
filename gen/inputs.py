"""The GEMM operands of a run: the user's .npy tensors or seeded random ones."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

import hss
from hss.fetch import prune_shared

__all__ = ["InputError", "load_matrix", "random_operands", "prune_for", "file_sha256"]


class InputError(ValueError):
    """Bad user input: the message is one line naming the problem."""


def file_sha256(path) -> str:
    """The content hash that names a user's tensor file in config.json and folder names."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_matrix(path: str, name: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{name} file not found: {path}")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InputError(f"{name} file {path} is not a readable .npy array ({e})") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(f"{name} file {path} holds several arrays; save one with np.save")
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D, {path} has shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError(f"{name} in {path} holds non-integer values (dtype {arr.dtype})")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise InputError(f"{name} in {path} must hold integers, got dtype {arr.dtype}")
    return arr


def random_operands(config, m: int, k: int, n: int, seed: int, pattern=None,
                    shared_rows: int | None = None):
    """Uniform random values over the full range; W projected onto ``pattern`` (default:
    the config's pattern), with ``shared_rows`` the rows of each m-tile sharing their
    rank-1 blocks (``hss.fetch.prune_shared``: rank 1 at the fetch)."""
    lo, hi = hss.value_range(config.width, config.signed)
    rng = np.random.default_rng(seed)
    W = rng.integers(lo, hi, (m, k), endpoint=True, dtype=np.int64)
    A = rng.integers(lo, hi, (k, n), endpoint=True, dtype=np.int64)
    return prune_for(W, pattern or config.pattern, shared_rows), A


def prune_for(W, pattern, shared_rows: int | None = None):
    """``hss.prune``, or with ``shared_rows`` ``hss.fetch.prune_shared`` over that many rows."""
    if shared_rows is None:
        return hss.prune(W, pattern)
    return prune_shared(W, pattern, shared_rows)
