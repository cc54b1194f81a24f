"""The compressed HSS format: conformance, canonical compress, and its exact inverse.

Per group of S elements: ``values`` holds ``prod(G)`` slots (outer rank slot major),
``offsets[r]`` holds ``kept(r)`` rank-r offsets in ``[0, H_r)``, increasing within each kept
parent, empty positions filled with the lowest unused ones (see shared/HSS.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConformanceError
from .pattern import Pattern
from .tensor import as_matrix, pad_columns

__all__ = ["HSSMatrix", "compress", "decompress", "conforms", "check_conforms",
           "positions", "canonical_offsets"]


@dataclass(frozen=True, eq=False)
class HSSMatrix:
    """A 2-D tensor in compressed form, rows along M, the pattern along K.

    ``values``: (M, groups, slots); ``offsets[r]``: (M, groups, kept(r)) for rank r
    (0 = innermost); ``k``: the original K before zero-padding, ``pad``: columns added.
    """
    pattern: Pattern
    values: np.ndarray
    offsets: tuple[np.ndarray, ...]
    k: int
    pad: int

    @property
    def rows(self) -> int:
        return self.values.shape[0]

    @property
    def groups(self) -> int:
        return self.values.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the dense tensor it stands for (unpadded)."""
        return (self.rows, self.k)

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    def group(self, row: int, group: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Values and per-rank offsets of one group."""
        return (self.values[row, group],
                tuple(o[row, group] for o in self.offsets))


def _count_nonempty(groups: np.ndarray, pattern: Pattern, r: int) -> np.ndarray:
    """Non-empty rank-(r-1) blocks in each rank-r block: (B, blocks(r))."""
    sub = pattern.span(r - 1)
    nonzero_sub = (groups.reshape(groups.shape[0], -1, sub) != 0).any(axis=2)
    return nonzero_sub.reshape(groups.shape[0], -1, pattern.H[r]).sum(axis=2)


def _grouped(W, pattern: Pattern, name: str, warn: bool = False):
    W = as_matrix(W, name)
    Wp, pad = pad_columns(W, pattern.group_size, name, warn)
    return W, Wp, pad, Wp.reshape(-1, pattern.group_size)


def _first_violation(groups: np.ndarray, pattern: Pattern, name: str, n_groups: int):
    worst = None
    for r in range(pattern.num_ranks):
        over = _count_nonempty(groups, pattern, r) > pattern.G[r]
        hits = np.flatnonzero(over.any(axis=1))
        if len(hits) and (worst is None or hits[0] < worst[0]):
            b = int(hits[0])
            worst = (b, r, int(np.argmax(over[b])), _count_nonempty(groups[b:b + 1], pattern, r)[0])
    if worst is None:
        return None
    b, r, block, counts = worst
    row, group = divmod(b, n_groups)
    what = "nonzeros" if r == 0 else "non-empty blocks"
    s = pattern.group_size
    return ConformanceError(
        f"{name} row {row}, group {group} (columns {group * s}..{group * s + s - 1}): "
        f"rank {r} block {block} has {counts[block]} {what}, pattern {pattern} allows "
        f"{pattern.G[r]}",
        row=row, group=group, rank=r, block=block, count=int(counts[block]),
        allowed=pattern.G[r])


def conforms(W, pattern: Pattern | str) -> bool:
    """True when every row of ``W`` fits the pattern along K (zero-padded)."""
    pattern = Pattern.coerce(pattern)
    _, Wp, _, groups = _grouped(W, pattern, "W")
    return all((_count_nonempty(groups, pattern, r) <= pattern.G[r]).all()
               for r in range(pattern.num_ranks))


def check_conforms(W, pattern: Pattern | str, name: str = "W") -> None:
    """Raise ConformanceError naming the first offending row, group, rank and count."""
    pattern = Pattern.coerce(pattern)
    _, Wp, _, groups = _grouped(W, pattern, name)
    error = _first_violation(groups, pattern, name, Wp.shape[1] // pattern.group_size)
    if error is not None:
        raise error


def canonical_offsets(nonempty: np.ndarray, g: int) -> np.ndarray:
    """Canonical kept positions for each row of a (B, H) non-empty mask: (B, g).

    Non-empty positions first, then the lowest unused ones, listed in increasing order.
    """
    first = np.argsort(~nonempty, axis=1, kind="stable")[:, :g]
    return np.sort(first, axis=1)


def compress(W, pattern: Pattern | str, name: str = "W") -> HSSMatrix:
    """Compress a conforming 2-D ``W`` (else ConformanceError); K is zero-padded."""
    pattern = Pattern.coerce(pattern)
    W, Wp, pad, groups = _grouped(W, pattern, name, warn=True)
    n_groups = Wp.shape[1] // pattern.group_size
    error = _first_violation(groups, pattern, name, n_groups)
    if error is not None:
        raise error
    offsets: list[np.ndarray] = [None] * pattern.num_ranks
    units = groups
    for r in reversed(range(pattern.num_ranks)):
        blocks = units.reshape(-1, pattern.H[r], pattern.span(r - 1))
        pos = canonical_offsets((blocks != 0).any(axis=2), pattern.G[r])
        offsets[r] = pos.reshape(W.shape[0], n_groups, pattern.kept(r)).astype(np.int64)
        units = np.take_along_axis(blocks, pos[:, :, None], axis=1)
    values = units.reshape(W.shape[0], n_groups, pattern.slots)
    return HSSMatrix(pattern, values.copy(), tuple(offsets), W.shape[1], pad)


def positions(pattern: Pattern, offsets) -> np.ndarray:
    """Absolute position in ``[0, S)`` of every value slot, from per-rank offsets.

    ``offsets[r]`` has shape (..., kept(r)); the result has shape (..., slots).
    """
    slot = np.arange(pattern.slots)
    pos = 0
    for r in range(pattern.num_ranks):
        index = slot // int(np.prod(pattern.G[:r], dtype=np.int64))
        pos = pos + np.asarray(offsets[r])[..., index] * pattern.span(r - 1)
    return np.asarray(pos, dtype=np.int64)


def decompress(hss: HSSMatrix) -> np.ndarray:
    """The dense (M, K) tensor, exact inverse of ``compress``."""
    p = hss.pattern
    dense = np.zeros((hss.rows, hss.groups, p.group_size), hss.dtype)
    np.put_along_axis(dense, positions(p, hss.offsets), hss.values, axis=2)
    return dense.reshape(hss.rows, -1)[:, :hss.k]
