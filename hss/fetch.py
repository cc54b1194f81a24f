"""Rank 1 at the activation fetch, rank 0 in the PE: the golden model of HighLight's split.

Today's engine selects every rank with a mux inside each PE (``hss.golden.select``): each
PE column receives whole groups of S activations and each PE discards the H1 - G1 rank-1
blocks its row does not keep. HighLight's split instead reads only the kept rank-1 blocks
from the activation buffer (the choice is an address) and keeps only a rank-0 G0:H0 mux in
the PE. The catch: the rows of a PE column share one activation fetch, but each weight row
has its own rank-1 offsets. The three ways out (shared/HSS.md, "Architecture levels"):

* ``"shared"`` (i): the ``rows`` weight rows that share a fetch share their rank-1 pattern
  (``prune_shared``, ``compress_shared``): one fetch of G1 blocks serves the whole column.
* ``"banked"`` (ii): each row fetches its own G1 blocks from a buffer of H1 banks, each
  bank with a read port per row: no broadcast down the column.
* ``"local"`` (iii): each PE keeps the whole group in a local buffer (S activations) and
  reads the G1 blocks its offsets name.
* ``"pe"``: today's datapath, the baseline.

Everything is for two-rank patterns ``G1:H1,G0:H0`` (a dense rank 1 such as ``4:4,2:4``
is allowed: then every block is fetched). Pure NumPy, built on ``hss`` only.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .compressed import canonical_offsets, compress
from .errors import ConformanceError, HSSError
from .golden import select
from .pattern import Pattern, Rank
from .prune import _magnitude, _squares, _top, prune
from .tensor import as_matrix, pad_columns

__all__ = ["WAYS", "SharedHSS", "prune_shared", "conforms_shared", "compress_shared",
           "decompress_shared", "rank0_pattern", "FetchRun", "fetch_matmul", "FetchCost",
           "cost", "steps", "pruning_error"]

#: The datapaths compared: today's (``pe``) and the three ways out of the catch.
WAYS = ("pe", "shared", "banked", "local")


def _two_ranks(pattern) -> Pattern:
    pattern = Pattern.coerce(pattern)
    if pattern.num_ranks != 2:
        raise HSSError(f"the fetch split needs a two-rank pattern G1:H1,G0:H0, not {pattern} "
                       f"(write a single rank G:H as 1:1,G:H)")
    return pattern


def _check_rows(rows) -> int:
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        raise HSSError(f"rows (weight rows sharing a fetch) must be a positive integer, "
                       f"not {rows!r}")
    return rows


def rank0_pattern(pattern) -> Pattern:
    """What the PE still selects: ``G1:G1,G0:H0`` over the G1 fetched blocks (rank 1 dense,
    so it costs nothing in ``hdl.pe.PE``)."""
    p = _two_ranks(pattern)
    return Pattern((Rank(p.G[1], p.G[1]), p.rank(0)))


def _tiles(m: int, rows: int) -> np.ndarray:
    """Tile of each weight row: rows ``t*rows .. t*rows+rows-1`` share a fetch."""
    return np.arange(m) // rows


def prune_shared(W, pattern, rows: int) -> np.ndarray:
    """Magnitude pruning to way (i): per row, the top-G0 ``|w|`` of each rank-0 block (as
    ``hss.prune``); then per tile of ``rows`` consecutive rows and group, the G1 rank-1
    blocks of largest L2 norm over the whole tile (of what rank 0 kept), the same for every
    row of the tile. Ties: the lowest index. A last partial tile has fewer rows.

    The result conforms to ``pattern`` row by row and to ``conforms_shared``; with
    ``rows=1`` it is ``hss.prune``."""
    p = _two_ranks(pattern)
    _check_rows(rows)
    W = as_matrix(W, "W")
    Wp, _ = pad_columns(W, p.group_size)
    m, n = Wp.shape[0], Wp.shape[1] // p.group_size
    g = Wp.reshape(m, n, p.H[1], p.H[0])
    keep = _top(_magnitude(g).reshape(-1, p.H[0]), p.G[0]).reshape(g.shape)
    squares = np.where(keep, _squares(_magnitude(g)), 0).sum(axis=3)     # (m, n, H1)
    tiles = -(-m // rows)
    norms = np.zeros((tiles, n, p.H[1]), squares.dtype)
    np.add.at(norms, _tiles(m, rows), squares)
    chosen = _top(norms.reshape(-1, p.H[1]), p.G[1]).reshape(tiles, n, p.H[1])
    keep &= chosen[_tiles(m, rows)][..., None]
    pruned = np.where(keep, g, 0).astype(W.dtype).reshape(Wp.shape)
    return pruned[:, :W.shape[1]]


@dataclass(frozen=True, eq=False)
class SharedHSS:
    """A weight matrix in way (i)'s format: one set of rank-1 offsets per tile of ``rows``
    rows and group (what the fetch unit reads), rank-0 offsets and values per row.

    ``tile_offsets``: (tiles, groups, G1), canonical over the union of the tile's non-empty
    blocks; ``offsets0``: (M, groups, G1*G0), canonical within each fetched block;
    ``values``: (M, groups, G1*G0), slot ``k1*G0 + k0`` as in ``hss``."""
    pattern: Pattern
    rows: int
    tile_offsets: np.ndarray
    offsets0: np.ndarray
    values: np.ndarray
    k: int
    pad: int

    @property
    def groups(self) -> int:
        return self.values.shape[1]

    @property
    def m(self) -> int:
        return self.values.shape[0]


def _union(W, pattern: Pattern, rows: int):
    W = as_matrix(W, "W")
    Wp, pad = pad_columns(W, pattern.group_size)
    m, n = Wp.shape[0], Wp.shape[1] // pattern.group_size
    g = Wp.reshape(m, n, pattern.H[1], pattern.H[0])
    tiles = -(-m // rows)
    union = np.zeros((tiles, n, pattern.H[1]), bool)
    np.logical_or.at(union, _tiles(m, rows), (g != 0).any(axis=3))
    return W, g, pad, union


def _violation(g, union, pattern: Pattern, rows: int):
    over0 = (g != 0).sum(axis=3) > pattern.G[0]
    if over0.any():
        row, group, block = (int(i) for i in np.argwhere(over0)[0])
        return ConformanceError(
            f"W row {row}, group {group}: rank 0 block {block} has "
            f"{int((g[row, group, block] != 0).sum())} nonzeros, pattern {pattern} allows "
            f"{pattern.G[0]}", row=row, group=group, rank=0, block=block,
            count=int((g[row, group, block] != 0).sum()), allowed=pattern.G[0])
    over1 = union.sum(axis=2) > pattern.G[1]
    if over1.any():
        tile, group = (int(i) for i in np.argwhere(over1)[0])
        count = int(union[tile, group].sum())
        return ConformanceError(
            f"W rows {tile * rows}..{tile * rows + rows - 1}, group {group}: the tile's rows "
            f"together have {count} non-empty rank 1 blocks, pattern {pattern} shared over "
            f"{rows} rows allows {pattern.G[1]}", row=tile * rows, group=group, rank=1,
            block=0, count=count, allowed=pattern.G[1])
    return None


def conforms_shared(W, pattern, rows: int) -> bool:
    """True when every row fits rank 0 and each tile of ``rows`` rows has at most G1
    non-empty rank-1 blocks per group, counted over the tile's rows together."""
    p = _two_ranks(pattern)
    _, g, _, union = _union(W, p, _check_rows(rows))
    return _violation(g, union, p, rows) is None


def compress_shared(W, pattern, rows: int) -> SharedHSS:
    """Way (i)'s canonical format of a conforming ``W`` (else ConformanceError)."""
    p = _two_ranks(pattern)
    W, g, pad, union = _union(W, p, _check_rows(rows))
    error = _violation(g, union, p, rows)
    if error is not None:
        raise error
    m, n = g.shape[:2]
    tile_off = canonical_offsets(union.reshape(-1, p.H[1]), p.G[1]).reshape(-1, n, p.G[1])
    rows_off = tile_off[_tiles(m, rows)]                                 # (m, n, G1)
    blocks = np.take_along_axis(g, rows_off[..., None], axis=2)          # (m, n, G1, H0)
    off0 = canonical_offsets((blocks != 0).reshape(-1, p.H[0]), p.G[0])
    off0 = off0.reshape(m, n, p.G[1], p.G[0])
    values = np.take_along_axis(blocks, off0, axis=3)
    return SharedHSS(p, rows, tile_off.astype(np.int64),
                     off0.reshape(m, n, -1).astype(np.int64),
                     values.reshape(m, n, -1).copy(), W.shape[1], pad)


def decompress_shared(s: SharedHSS) -> np.ndarray:
    """The dense W a ``SharedHSS`` stands for (unpadded)."""
    p = s.pattern
    out = np.zeros((s.m, s.groups, p.H[1], p.H[0]), s.values.dtype)
    rows_off = s.tile_offsets[_tiles(s.m, s.rows)]
    for k1 in range(p.G[1]):
        for k0 in range(p.G[0]):
            slot = k1 * p.G[0] + k0
            b = rows_off[:, :, k1]
            e = s.offsets0[:, :, slot]
            mi, gi = np.meshgrid(np.arange(s.m), np.arange(s.groups), indexing="ij")
            out[mi, gi, b, e] = s.values[:, :, slot]
    return out.reshape(s.m, -1)[:, :s.k]


@dataclass(frozen=True)
class FetchRun:
    """A GEMM run through a fetch model: ``Z``, the activation elements read from the
    buffer, the array steps, and the multiplier slots the array offered."""
    Z: np.ndarray
    reads: int
    steps: int
    multiplies: int

    @property
    def reads_per_multiply(self) -> Fraction:
        return Fraction(self.reads, self.multiplies)


def _padded_a(A, k_padded: int) -> np.ndarray:
    A = as_matrix(A, "A")
    if A.shape[0] > k_padded:
        raise HSSError(f"A has {A.shape[0]} rows, more than the padded K={k_padded}")
    if A.shape[0] < k_padded:
        A = np.concatenate([A, np.zeros((k_padded - A.shape[0], A.shape[1]), A.dtype)])
    return A


def _wide(x):
    return np.asarray(x).astype(np.float64 if np.asarray(x).dtype.kind == "f" else np.int64)


def fetch_matmul(way: str, W, A, pattern, rows: int, cols: int) -> FetchRun:
    """``W @ A`` on a ``rows x cols`` array the way ``way`` fetches, step by step.

    ``W`` must conform (to ``conforms_shared`` for ``"shared"``, to the pattern otherwise).
    One step: every PE column j of a column tile receives its activations of one group,
    every PE row i of a row tile its weight row's compressed group; reads count activation
    elements leaving the buffer (a broadcast read counts once), multiplies the array's
    multiplier slots (``rows * cols * G1*G0`` per step, idle ones included)."""
    if way not in WAYS:
        raise HSSError(f"way must be one of {', '.join(WAYS)}, not {way!r}")
    p = _two_ranks(pattern)
    _check_rows(rows)
    _check_rows(cols)
    W = as_matrix(W, "W")
    m = W.shape[0]
    shared = compress_shared(W, p, rows) if way == "shared" else None
    hssm = None if way == "shared" else compress(W, p)
    n_groups = shared.groups if shared is not None else hssm.groups
    A = _padded_a(A, n_groups * p.group_size)
    n = A.shape[1]
    blocks = A.reshape(n_groups, p.H[1], p.H[0], n)                     # the buffer
    inner = rank0_pattern(p)
    dense1 = np.broadcast_to(np.arange(p.G[1]), (1, p.G[1]))
    floating = W.dtype.kind == "f" or A.dtype.kind == "f"
    Z = np.zeros((m, n), np.float64 if floating else np.int64)
    reads = n_steps = 0
    for r0 in range(0, m, rows):
        tile = slice(r0, min(r0 + rows, m))
        for c0 in range(0, n, cols):
            cs = slice(c0, min(c0 + cols, n))
            width = cs.stop - cs.start
            for g in range(n_groups):
                n_steps += 1
                if way == "shared":
                    off1 = shared.tile_offsets[r0 // rows, g]
                    fetched = blocks[g, off1][:, :, cs]                 # one read per column
                    reads += p.G[1] * p.H[0] * width
                    act = np.broadcast_to(fetched.reshape(1, -1, width),
                                          (tile.stop - tile.start, p.G[1] * p.H[0], width))
                    chosen = select(inner, [shared.offsets0[tile, g],
                                            np.repeat(dense1, act.shape[0], 0)], act)
                    vals = shared.values[tile, g]
                elif way == "banked":
                    off1 = hssm.offsets[1][tile, g]                      # (rows, G1)
                    fetched = blocks[g][off1][:, :, :, cs]               # each row its own
                    reads += off1.size * p.H[0] * width
                    act = fetched.reshape(off1.shape[0], -1, width)
                    chosen = select(inner, [hssm.offsets[0][tile, g],
                                            np.repeat(dense1, act.shape[0], 0)], act)
                    vals = hssm.values[tile, g]
                else:                                # "pe", "local": the whole group
                    group = blocks[g].reshape(p.group_size, n)[:, cs]
                    reads += p.group_size * width
                    act = np.broadcast_to(group, (tile.stop - tile.start, *group.shape))
                    chosen = select(p, [o[tile, g] for o in hssm.offsets], act)
                    vals = hssm.values[tile, g]
                Z[tile, cs] += np.einsum("ms,msn->mn", _wide(vals), _wide(chosen))
    return FetchRun(Z, reads, n_steps, n_steps * rows * cols * p.slots)


def steps(m: int, k: int, n: int, pattern, rows: int, cols: int) -> int:
    """Array steps of an ``m x k`` by ``k x n`` GEMM in lockstep, one group per step: the
    same for every way (none of them stalls in this model)."""
    p = _two_ranks(pattern)
    return -(-m // rows) * -(-n // cols) * -(-k // p.group_size)


@dataclass(frozen=True)
class FetchCost:
    """What a way costs on a ``rows x cols`` array, per step (steady state).

    ``reads_per_multiply``: activation elements read from the buffer per multiplier slot;
    ``act_port``: activation elements entering the array per step (bits: ``act_port_bits``);
    ``banks`` x ``ports_per_bank`` read ports of ``bank_word`` elements each;
    ``rank1_selectors``: G1-of-H1 block selectors left in hardware and the elements each
    moves per choice; ``local_bits``: storage per PE beyond today's PE."""
    way: str
    reads_per_multiply: Fraction
    act_port: int
    act_port_bits: int
    banks: int
    ports_per_bank: int
    bank_word: int
    rank1_selectors: int
    rank1_payload: int
    local_bits: int


def cost(way: str, pattern, rows: int, cols: int, width: int = 8) -> FetchCost:
    """The analytic cost of ``way`` (checked against ``fetch_matmul``'s counts in tests).

    The buffer is H1 banks (bank b holds block b of every group, ``cols * H0`` elements per
    word: one address for all columns). ``pe``/``local`` read all H1 banks per step;
    ``shared`` reads the G1 its tile names, once for every row; ``banked`` reads G1 per
    row, so each bank needs ``rows`` read ports (all rows may want the same bank)."""
    if way not in WAYS:
        raise HSSError(f"way must be one of {', '.join(WAYS)}, not {way!r}")
    p = _two_ranks(pattern)
    _check_rows(rows)
    _check_rows(cols)
    G1, H1, H0 = p.G[1], p.H[1], p.H[0]
    mults = rows * cols * p.slots
    rank1 = 0 if p.rank(1).dense else 1
    if way == "pe":
        port = cols * p.group_size
        return FetchCost(way, Fraction(port, mults), port, port * width, H1, 1, cols * H0,
                         rank1 * rows * cols, H0, 0)
    if way == "local":
        port = cols * p.group_size
        return FetchCost(way, Fraction(port, mults), port, port * width, H1, 1, cols * H0,
                         rank1 * rows * cols, H0, p.group_size * width)
    if way == "shared":
        port = cols * G1 * H0
        return FetchCost(way, Fraction(port, mults), port, port * width, H1, 1, cols * H0,
                         rank1, cols * H0, 0)
    port = rows * cols * G1 * H0
    return FetchCost(way, Fraction(port, mults), port, port * width, H1, rows, cols * H0,
                     rank1 * rows, cols * H0, 0)


def pruning_error(W, pattern, rows: int, A=None) -> dict:
    """Accuracy cost of way (i) against per-row HSS on one weight matrix: relative
    Frobenius error of the pruned weights ``||W - Wp|| / ||W||`` and, with activations
    ``A``, of the outputs ``||(W - Wp) A|| / ||W A||``, for both prunings."""
    W = as_matrix(W, "W")
    W64 = W.astype(np.float64)
    norm = float(np.linalg.norm(W64))
    out = {}
    for name, Wp in (("per_row", prune(W, pattern)), ("shared", prune_shared(W, pattern, rows))):
        d = W64 - Wp.astype(np.float64)
        out[f"{name}_w_error"] = float(np.linalg.norm(d)) / norm if norm else 0.0
        out[f"{name}_kept_energy"] = 1 - (float((d ** 2).sum()) / norm ** 2 if norm else 0.0)
        if A is not None:
            A64 = as_matrix(A, "A").astype(np.float64)
            z = float(np.linalg.norm(W64 @ A64))
            out[f"{name}_z_error"] = float(np.linalg.norm(d @ A64)) / z if z else 0.0
    return out

