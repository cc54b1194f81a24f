"""A GEMM as the accelerator sees it: tiled, compressed and packed into stream beats.

Both the Amaranth simulation tests and the generator's Verilog testbench vectors come from
here, so they exercise the same protocol. Expected results come from the ``hss`` golden
model (``hss.matmul``), never from the hardware.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

import hss

from .config import AcceleratorConfig
from .layouts import pack_group, pack_values
from .top import tile_layout, weight_beat_layout

__all__ = ["GemmVectors", "gemm_vectors", "unpack_tile"]


@dataclass(frozen=True)
class GemmVectors:
    """Beats for ``Z[M, N] = W[M, K] @ A[K, N]`` on a ``rows x cols`` array.

    Tiles run row-tile major: tile ``t`` covers rows ``tile_origins[t][0] + [0, rows)`` and
    columns ``tile_origins[t][1] + [0, cols)``; each takes ``steps_per_tile`` beats of each
    input stream. ``expected`` holds the golden Z (M, N); ``expected_tiles`` the same
    values per tile (rows, cols), zero where the tile overhangs M or N.
    """
    config: AcceleratorConfig
    m: int
    k: int
    n: int
    steps_per_tile: int
    tile_origins: tuple[tuple[int, int], ...]
    weight_beats: tuple[int, ...]
    act_beats: tuple[int, ...]
    expected: np.ndarray
    expected_tiles: np.ndarray

    @property
    def tiles(self) -> int:
        return len(self.tile_origins)

    @property
    def steps(self) -> int:
        return len(self.weight_beats)

    def assemble(self, tiles) -> np.ndarray:
        """Z (M, N) from per-tile results (rows, cols), in tile order."""
        c = self.config
        z = np.zeros((self._ceil(self.m, c.rows) * c.rows, self._ceil(self.n, c.cols) * c.cols),
                     np.int64)
        for (r0, c0), t in zip(self.tile_origins, tiles):
            z[r0:r0 + c.rows, c0:c0 + c.cols] = t
        return z[:self.m, :self.n]

    @staticmethod
    def _ceil(a, b):
        return -(-a // b)


def _pad_to(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), x.dtype)
    out[:x.shape[0], :x.shape[1]] = x
    return out


def gemm_vectors(config: AcceleratorConfig, W, A) -> GemmVectors:
    """Validate ``W`` (M x K, conforming) and ``A`` (K x N) against the config and pack them.

    K is zero-padded to the group size (``hss.PaddingWarning``). Raises ``hss.HSSError``
    (or its ``ConformanceError``) naming the problem.
    """
    c, p = config, config.pattern
    W = hss.tensor.as_matrix(W, "W", allow_float=False)
    A = hss.tensor.as_matrix(A, "A", allow_float=False)
    if A.shape[0] != W.shape[1]:
        raise hss.HSSError(f"shapes do not chain: W is {W.shape[0]}x{W.shape[1]} but A is "
                           f"{A.shape[0]}x{A.shape[1]} (A needs K={W.shape[1]} rows)")
    hss.check_range(W, c.width, c.signed, "W")
    hss.check_range(A, c.width, c.signed, "A")
    m, k = W.shape
    n = A.shape[1]
    compressed = hss.compress(W, p)
    expected = hss.matmul(compressed, A)
    groups = compressed.groups
    tile_rows, tile_cols = -(-m // c.rows), -(-n // c.cols)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        Wc = hss.compress(_pad_to(W, tile_rows * c.rows, k), p)
    Ap = _pad_to(A, groups * p.group_size, tile_cols * c.cols)

    beat = weight_beat_layout(c)
    group_bits = beat["groups"].shape.elem_shape.size
    last_at = beat["last"].offset
    # one packed row-group per (row, group); reused by every column tile
    row_words = [[pack_group(p, c.width, *Wc.group(row, g)) for g in range(groups)]
                 for row in range(tile_rows * c.rows)]
    act_words = [[pack_values(Ap[g * p.group_size:(g + 1) * p.group_size, col], c.width)
                  for g in range(groups)] for col in range(tile_cols * c.cols)]
    act_group_bits = p.group_size * c.width

    origins, w_beats, a_beats = [], [], []
    for ti in range(tile_rows):
        for tj in range(tile_cols):
            origins.append((ti * c.rows, tj * c.cols))
            for g in range(groups):
                word = 0
                for i in range(c.rows):
                    word |= row_words[ti * c.rows + i][g] << (i * group_bits)
                w_beats.append(word | (int(g == groups - 1) << last_at))
                word = 0
                for j in range(c.cols):
                    word |= act_words[tj * c.cols + j][g] << (j * act_group_bits)
                a_beats.append(word)
    zp = _pad_to(expected, tile_rows * c.rows, tile_cols * c.cols)
    tiles = np.stack([zp[r0:r0 + c.rows, c0:c0 + c.cols] for r0, c0 in origins])
    return GemmVectors(c, m, k, n, groups, tuple(origins), tuple(w_beats), tuple(a_beats),
                       expected, tiles)


def unpack_tile(config: AcceleratorConfig, word: int) -> tuple[np.ndarray, bool]:
    """A ``tiles`` payload as (Z tile (rows, cols) int64, overflow flag)."""
    c = config
    layout = tile_layout(c)
    z = hss.unpack_fields(word, c.acc_width, c.rows * c.cols, c.signed)
    overflow = bool((word >> layout["overflow"].offset) & 1)
    return np.array(z, np.int64).reshape(c.rows, c.cols), overflow
