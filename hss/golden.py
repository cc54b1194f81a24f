"""Golden model of every computation the hardware does, from the compressed form only.

The hardware principle (shared/HSS.md): operands are selected rank by rank, outermost first,
each rank choosing G_r of H_r blocks; the selected activations meet the stored values in
``prod(G)`` multipliers. ``select`` models exactly that gather, ``step`` one PE step,
``decompress_group`` the decompressor, ``matmul`` the whole GEMM.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .compressed import HSSMatrix, positions
from .errors import HSSError
from .pattern import Pattern
from .tensor import as_matrix

__all__ = ["select", "Step", "step", "decompress_group", "matmul", "accumulator_bits",
           "max_products"]


def select(pattern: Pattern, offsets, act: np.ndarray) -> np.ndarray:
    """Gather activations rank by rank.

    ``offsets[r]``: (B, kept(r)) rank-r offsets of B groups; ``act``: (B, S, ...) their dense
    activation groups. Returns (B, slots, ...): the activation each value slot multiplies.
    """
    act = np.asarray(act)
    batch, rest = act.shape[0], act.shape[2:]
    units = act.reshape(batch, 1, pattern.group_size, *rest)  # (B, parents, span, ...)
    for r in reversed(range(pattern.num_ranks)):
        parents = units.shape[1]
        blocks = units.reshape(batch, parents, pattern.H[r], pattern.span(r - 1), *rest)
        off = np.asarray(offsets[r]).reshape(batch, parents, pattern.G[r])
        index = off.reshape(batch, parents, pattern.G[r], *([1] * (1 + len(rest))))
        units = np.take_along_axis(blocks, index, axis=2)
        units = units.reshape(batch, parents * pattern.G[r], pattern.span(r - 1), *rest)
    return units.reshape(batch, pattern.slots, *rest)


def _wide(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64 if x.dtype.kind == "f" else np.int64)


@dataclass(frozen=True)
class Step:
    """One PE step: the selected activation of each slot and the group's partial sum."""
    selected: np.ndarray
    partial: np.ndarray | int


def step(pattern: Pattern, values, offsets, act_group) -> Step:
    """One group through a PE: ``values`` (slots,), ``offsets[r]`` (kept(r),), ``act_group``
    (S,) or (S, N). ``partial = sum(values * selected)`` with int64 accumulation."""
    act_group = np.asarray(act_group)
    selected = select(pattern, [np.asarray(o)[None] for o in offsets], act_group[None])[0]
    products = _wide(np.asarray(values)).reshape(-1, *([1] * (selected.ndim - 1))) * _wide(selected)
    partial = products.sum(axis=0)
    return Step(selected, partial if partial.ndim else partial.item())


def decompress_group(pattern: Pattern, values, offsets) -> tuple[np.ndarray, np.ndarray]:
    """What the decompressor produces for one group: slot positions and the dense group."""
    pos = positions(pattern, [np.asarray(o) for o in offsets])
    values = np.asarray(values)
    dense = np.zeros(pattern.group_size, values.dtype)
    dense[pos] = values
    return pos, dense


def matmul(hss: HSSMatrix, A) -> np.ndarray:
    """``decompress(hss) @ A`` computed from the compressed form, group by group.

    ``A`` is (K, N) with K the original or the padded K. Integers accumulate in int64.
    """
    A = as_matrix(A, "A")
    p = hss.pattern
    padded_k = hss.groups * p.group_size
    if A.shape[0] not in (hss.k, padded_k):
        raise HSSError(f"A has {A.shape[0]} rows, expected K={hss.k} to match W")
    if A.shape[0] != padded_k:
        A = np.concatenate([A, np.zeros((padded_k - A.shape[0], A.shape[1]), A.dtype)])
    floating = hss.dtype.kind == "f" or A.dtype.kind == "f"
    out = np.zeros((hss.rows, A.shape[1]), np.float64 if floating else np.int64)
    for g in range(hss.groups):
        act = np.broadcast_to(A[g * p.group_size:(g + 1) * p.group_size],
                              (hss.rows, p.group_size, A.shape[1]))
        chosen = select(p, [o[:, g] for o in hss.offsets], act)
        out += np.einsum("ms,msn->mn", _wide(hss.values[:, g]), _wide(chosen))
    return out


def max_products(pattern: Pattern, max_k: int) -> int:
    """Products summed into one output for K up to ``max_k``: ``ceil(max_k/S) * prod(G)``."""
    return -(-max_k // pattern.group_size) * pattern.slots


def accumulator_bits(value_bits: int, signed: bool, products: int) -> int:
    """Smallest accumulator that cannot overflow summing ``products`` worst-case products.

    Signed: the largest magnitude is ``(-2**(b-1))**2 = 2**(2b-2)`` per product, positive, so
    the width is ``bitlen(products * 2**(2b-2)) + 1`` (the sign bit). Unsigned:
    ``bitlen(products * (2**b - 1)**2)``.
    """
    if products < 1:
        raise HSSError(f"products must be at least 1, got {products}")
    if signed:
        return (products << (2 * value_bits - 2)).bit_length() + 1
    return (products * ((1 << value_bits) - 1) ** 2).bit_length()
