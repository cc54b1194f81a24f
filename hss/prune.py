"""Magnitude pruning: project a dense tensor onto an HSS pattern."""
from __future__ import annotations

import numpy as np

from .pattern import Pattern
from .tensor import as_matrix, pad_columns

__all__ = ["prune"]


def _magnitude(x: np.ndarray) -> np.ndarray:
    """|x| without overflow: abs(int8 -128) wraps in int8, abs(int64 min) wraps in int64."""
    if x.dtype.kind == "f":
        return np.abs(x.astype(np.float64))
    if x.dtype.kind == "u":
        return x.astype(np.uint64)
    return np.abs(x.astype(np.int64)).view(np.uint64)  # the wrapped int64 min is 2**63


def _squares(mag: np.ndarray) -> np.ndarray:
    """Squared magnitudes, exact for integers (Python ints past 16-bit values)."""
    if mag.dtype.kind == "f":
        return mag * mag
    if mag.size == 0 or int(mag.max()) < (1 << 16):
        return mag.astype(np.int64) ** 2
    return mag.astype(object) ** 2


def _top(scores: np.ndarray, g: int) -> np.ndarray:
    """Mask of the ``g`` largest scores per row; ties go to the lowest index."""
    order = np.argsort(-scores if scores.dtype.kind == "f" else _descending_key(scores),
                       axis=1, kind="stable")[:, :g]
    mask = np.zeros(scores.shape, bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def _descending_key(scores: np.ndarray) -> np.ndarray:
    """A key whose ascending order is the descending order of non-negative integers."""
    if scores.dtype == object:
        ranks = np.unique(scores.ravel(), return_inverse=True)[1].reshape(scores.shape)
        return -ranks.astype(np.int64)
    return np.iinfo(np.uint64).max - scores.astype(np.uint64)


def prune(W, pattern: Pattern | str) -> np.ndarray:
    """Keep, per rank-0 block, the top-G0 ``|w|``; then per rank r the G_r blocks of largest
    L2 norm (of what the inner ranks kept). Ties: the lowest index wins.

    The result conforms to ``pattern``, has the dtype and shape of ``W``, and a conforming
    ``W`` comes back unchanged.
    """
    pattern = Pattern.coerce(pattern)
    W = as_matrix(W, "W")
    Wp, _ = pad_columns(W, pattern.group_size)
    groups = Wp.reshape(-1, pattern.group_size)
    keep = _top(_magnitude(groups).reshape(-1, pattern.H[0]), pattern.G[0])
    keep = keep.reshape(groups.shape)
    for r in range(1, pattern.num_ranks):
        sub = pattern.span(r - 1)
        squares = np.where(keep, _squares(_magnitude(groups)), 0)
        norms = squares.reshape(groups.shape[0], -1, sub).sum(axis=2)
        chosen = _top(norms.reshape(-1, pattern.H[r]), pattern.G[r])
        keep &= np.repeat(chosen.reshape(groups.shape[0], -1), sub, axis=1)
    pruned = np.where(keep, groups, 0).astype(W.dtype)
    return pruned.reshape(Wp.shape)[:, :W.shape[1]]
