"""A GEMM as the accelerator sees it: tiled, compressed and packed into stream beats.

Both the Amaranth simulation tests and the generator's Verilog testbench vectors come from
here, so they exercise the same protocol. Expected results come from the ``hss`` golden
model (``hss.matmul``), never from the hardware.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np

import hss

from .config import AcceleratorConfig, ArrayConfig, FlexConfig
from .flex import flex_act_beat_layout, flex_row_layout, flex_weight_beat_layout
from .layouts import pack_group, pack_values
from .top import tile_layout, weight_beat_layout

__all__ = ["GemmVectors", "as_layers", "gemm_vectors", "flex_gemm_vectors",
           "flex_segment_vectors", "segment_vectors", "unpack_tile", "unpack_tiles",
           "tile_beat_rows"]


@dataclass(frozen=True)
class GemmVectors:
    """Beats for ``Z[M, N] = W[M, K] @ A[K, N]`` on a ``rows x cols`` array.

    Tiles run row-tile major: tile ``t`` covers rows ``tile_origins[t][0] + [0, rows)`` and
    columns ``tile_origins[t][1] + [0, cols)``; each takes ``steps_per_tile`` steps, i.e.
    ``steps_per_tile / steps_per_beat`` beats of each input stream. ``expected`` holds the golden Z (M, N); ``expected_tiles`` the same
    values per tile (rows, cols), zero where the tile overhangs M or N.
    """
    config: ArrayConfig
    m: int
    k: int
    n: int
    steps_per_tile: int
    tile_origins: tuple[tuple[int, int], ...]
    weight_beats: tuple[int, ...]
    act_beats: tuple[int, ...]
    expected: np.ndarray
    expected_tiles: np.ndarray
    steps_per_beat: int = 1         # of the first beat: a flexible build takes a beat in
                                    # several steps in some modes
    mode: int | None = None         # the mode number of a flexible build's GEMM (its first
                                    # segment's)

    @property
    def tiles(self) -> int:
        return len(self.tile_origins)

    @property
    def beats(self) -> int:
        """Beats of each input stream."""
        return len(self.weight_beats)

    @property
    def steps(self) -> int:
        """PE steps: the cycles the GEMM takes without stalls, latency aside."""
        return self.tiles * self.steps_per_tile

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



def as_layers(vectors) -> list[GemmVectors]:
    """``vectors`` (one ``GemmVectors`` or a non-empty list or tuple of them, layers run back
    to back) as a list, checked: every layer must be for the same accelerator config."""
    layers = [vectors] if isinstance(vectors, GemmVectors) else list(vectors) \
        if isinstance(vectors, (list, tuple)) else None
    if not layers or not all(isinstance(v, GemmVectors) for v in layers):
        raise TypeError(f"vectors must be a GemmVectors (hdl.stimulus.gemm_vectors) or a "
                        f"non-empty list of them, not {vectors!r}")
    if any(v.config != layers[0].config for v in layers):
        raise ValueError("every layer's vectors must be for the same accelerator config")
    return layers

def _pad_to(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), x.dtype)
    out[:x.shape[0], :x.shape[1]] = x
    return out


def _join(words, bits: int) -> int:
    """Fields of ``bits`` each, the first in the lowest bits (one word per PE row/column)."""
    out = 0
    for i, word in enumerate(words):
        out |= word << (i * bits)
    return out


def _tiles_of(expected: np.ndarray, c, origins) -> np.ndarray:
    """The golden Z cut into the array's tiles, zero where a tile overhangs M or N."""
    rows = -(-expected.shape[0] // c.rows) * c.rows
    cols = -(-expected.shape[1] // c.cols) * c.cols
    zp = _pad_to(expected, rows, cols)
    return np.stack([zp[r0:r0 + c.rows, c0:c0 + c.cols] for r0, c0 in origins])


def _operands(c, W, A):
    """W and A as int64 matrices that chain and fit the config's number format."""
    W = hss.tensor.as_matrix(W, "W", allow_float=False)
    A = hss.tensor.as_matrix(A, "A", allow_float=False)
    if A.shape[0] != W.shape[1]:
        raise hss.HSSError(f"shapes do not chain: W is {W.shape[0]}x{W.shape[1]} but A is "
                           f"{A.shape[0]}x{A.shape[1]} (A needs K={W.shape[1]} rows)")
    hss.check_range(W, c.width, c.signed, "W")
    hss.check_range(A, c.width, c.signed, "A")
    return W, A


def gemm_vectors(config: AcceleratorConfig, W, A) -> GemmVectors:
    """Validate ``W`` (M x K, conforming) and ``A`` (K x N) against the config and pack them.

    K is zero-padded to the group size (``hss.PaddingWarning``). Raises ``hss.HSSError``
    (or its ``ConformanceError``) naming the problem.
    """
    c, p = config, config.pattern
    W, A = _operands(c, W, A)
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
                w_beats.append(_join([row_words[ti * c.rows + i][g] for i in range(c.rows)],
                                     group_bits) | (int(g == groups - 1) << last_at))
                a_beats.append(_join([act_words[tj * c.cols + j][g] for j in range(c.cols)],
                                     act_group_bits))
    return GemmVectors(c, m, k, n, groups, tuple(origins), tuple(w_beats), tuple(a_beats),
                       expected, _tiles_of(expected, c, origins))


def _flex_row_word(c: FlexConfig, mode: int, groups) -> int:
    """One PE row's part of a weights beat: ``groups`` = [(values, offsets)] of the beat,
    concatenated in the canonical format of the mode (see ``hdl.flex``)."""
    s, p = c.schedule, c.modes.mode(mode)
    layout = flex_row_layout(c)
    values = [v for vals, _ in groups for v in vals]
    word = pack_values(values, c.width)
    for r in range(p.num_ranks):
        if p.rank(r).dense:
            continue
        base = layout["offsets"].offset + layout["offsets"].shape[f"r{r}"].offset
        offsets = [o for _, offs in groups for o in offs[r]]
        word |= hss.pack_fields(offsets, s.offset_bits(r)) << base
    return word


def flex_gemm_vectors(config: FlexConfig, W, A, mode) -> GemmVectors:
    """``gemm_vectors`` for a flexible build, with every tile in ``mode`` (a mode number or
    pattern of ``config.modes``). ``W`` must conform to that mode's pattern. Groups are
    packed ``groups_per_beat`` to a beat (a tile's last beat padded with empty groups)."""
    return flex_segment_vectors(config, [(W, mode)], A)


def _segment_words(c: FlexConfig, W, A, mode: int, tile_rows: int, tile_cols: int):
    """One segment's beats per tile row and per tile column: (row words, column words,
    beats, mode field)."""
    s, p = c.schedule, c.modes.mode(mode)
    per_beat = s.groups_per_beat(mode)
    beats = -(-(-(-W.shape[1] // p.group_size)) // per_beat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        Wc = hss.compress(_pad_to(W, tile_rows * c.rows, beats * per_beat * p.group_size), p)
    Ap = _pad_to(A, beats * per_beat * p.group_size, tile_cols * c.cols)
    region_bits = s.region_size * c.width
    rows = [[_flex_row_word(c, mode, [Wc.group(row, b * per_beat + j)
                                      for j in range(per_beat)]) for b in range(beats)]
            for row in range(tile_rows * c.rows)]
    cols = []
    for col in range(tile_cols * c.cols):
        words = []
        for b in range(beats):
            word = 0
            for j in range(per_beat):
                g = b * per_beat + j
                word |= pack_values(Ap[g * p.group_size:(g + 1) * p.group_size, col],
                                    c.width) << (j * region_bits)
            words.append(word)
        cols.append(words)
    beat = flex_weight_beat_layout(c)
    mode_field = (mode << beat["mode"].offset) if c.modes.mode_bits else 0
    return rows, cols, beats, mode_field


def flex_segment_vectors(config: FlexConfig, segments, A) -> GemmVectors:
    """A GEMM whose tiles are computed in *segments* (TASD terms, ``hss.tasd``): each tile
    streams the beats of ``W_1`` in its mode, then of ``W_2`` in its mode, ..., into the same
    accumulators, the activations re-streamed per segment; ``last`` marks only the tile's
    final beat. ``segments``: [(W_t, mode_t)], every ``W_t`` M x K and conforming to its
    mode. Expected: ``Z = sum_t W_t @ A`` from the compressed terms (the golden model)."""
    c, s = config, config.schedule
    if not segments:
        raise hss.HSSError("a GEMM needs at least one segment")
    modes, mats = [], []
    for W, mode in segments:
        W, A_checked = _operands(c, W, A)
        if mats and W.shape != mats[0].shape:
            raise hss.HSSError(f"segments must have the same shape: {W.shape} vs "
                               f"{mats[0].shape}")
        modes.append(mode if isinstance(mode, int) else c.modes.index(mode))
        mats.append(W)
    A = A_checked
    m, k = mats[0].shape
    n = A.shape[1]
    expected = sum(hss.matmul(hss.compress(W, c.modes.mode(mode)), A)
                   for W, mode in zip(mats, modes))
    tile_rows, tile_cols = -(-m // c.rows), -(-n // c.cols)
    parts = [_segment_words(c, W, A, mode, tile_rows, tile_cols)
             for W, mode in zip(mats, modes)]
    row_bits = flex_row_layout(c).size
    column_bits = flex_act_beat_layout(c).elem_shape.size
    last_at = flex_weight_beat_layout(c)["last"].offset

    origins, w_beats, a_beats = [], [], []
    for ti in range(tile_rows):
        for tj in range(tile_cols):
            origins.append((ti * c.rows, tj * c.cols))
            for t, (rows, cols, beats, mode_field) in enumerate(parts):
                for b in range(beats):
                    final = t == len(parts) - 1 and b == beats - 1
                    w_beats.append(mode_field | (int(final) << last_at) | _join(
                        [rows[ti * c.rows + i][b] for i in range(c.rows)], row_bits))
                    a_beats.append(_join([cols[tj * c.cols + j][b] for j in range(c.cols)],
                                         column_bits))
    tiles = _tiles_of(expected, c, origins)
    steps = sum(beats * s.steps_per_beat(mode) for (_, _, beats, _), mode in zip(parts, modes))
    return GemmVectors(c, m, k, n, steps, tuple(origins), tuple(w_beats), tuple(a_beats),
                       expected, tiles, steps_per_beat=s.steps_per_beat(modes[0]),
                       mode=modes[0])


def segment_vectors(config: ArrayConfig, segments, A) -> GemmVectors:
    """A GEMM computed as segments (TASD terms), on either kind of build: ``segments`` =
    [(W_t, mode_t)], Z = ``sum_t W_t @ A``. See ``flex_segment_vectors``; a fixed build has
    one mode (mode 0, or its pattern), its segments one tile over their concatenated K."""
    if config.flexible:
        return flex_segment_vectors(config, segments, A)
    return _fixed_segment_vectors(config, segments, A)


def _fixed_segment_vectors(c: AcceleratorConfig, segments, A) -> GemmVectors:
    """On a fixed build, segments are one tile over the concatenated K: ``[W_1 | W_2 | ...]
    @ [A; A; ...]``, each term zero-padded to whole groups, so that no group mixes terms.
    The accumulators sum until ``last`` either way; the hardware needs nothing new."""
    p = c.pattern
    if not segments:
        raise hss.HSSError("a GEMM needs at least one segment")
    mats = []
    for t, (W, mode) in enumerate(segments, 1):
        if mode not in (0, p, str(p)):
            raise hss.HSSError(f"segment {t}: mode {mode!r} is not the pattern {p} of this "
                               f"fixed build")
        W, A_checked = _operands(c, W, A)
        if mats and W.shape != mats[0].shape:
            raise hss.HSSError(f"segments must have the same shape: {W.shape} vs "
                               f"{mats[0].shape}")
        mats.append(W)
    m, k = mats[0].shape
    padded = -(-k // p.group_size) * p.group_size
    joined_w = np.hstack([_pad_to(W, m, padded) for W in mats])
    joined_a = np.vstack([_pad_to(A_checked, padded, A_checked.shape[1])] * len(mats))
    return replace(gemm_vectors(c, joined_w, joined_a), k=k)


def unpack_tile(config: ArrayConfig, word: int) -> tuple[np.ndarray, bool]:
    """A ``tiles`` payload of a one-beat tile as (Z tile (rows, cols) int64, overflow
    flag); ``unpack_tiles`` takes any number of beats per tile."""
    if config.tile_beats != 1:
        raise ValueError(f"a tile of this config takes {config.tile_beats} beats: "
                         f"use unpack_tiles")
    return unpack_tiles(config, [word])[0]


def unpack_tiles(config, words) -> list[tuple[np.ndarray, bool]]:
    """``tiles`` payloads, ``config.tile_beats`` per tile, as (Z tile (rows, cols) int64,
    overflow flag) per tile. Raises ``ValueError`` where the beats do not make whole tiles:
    a count that is not a multiple, a ``last`` flag off its tile's final beat, or beats of
    one tile that disagree on ``overflow``."""
    c, words = config, list(words)
    layout, beats = tile_layout(c), c.tile_beats
    if len(words) % beats:
        raise ValueError(f"{len(words)} beats are not whole tiles of {beats} beats")
    out = []
    for t in range(0, len(words), beats):
        tile = words[t:t + beats]
        flags = {bool((w >> layout["overflow"].offset) & 1) for w in tile}
        if len(flags) != 1:
            raise ValueError(f"tile {t // beats}: its beats disagree on overflow")
        if beats > 1:
            last = [bool((w >> layout["last"].offset) & 1) for w in tile]
            if last != [False] * (beats - 1) + [True]:
                raise ValueError(f"tile {t // beats}: last flags {last}, expected only on "
                                 f"beat {beats - 1}")
        z = [v for w in tile for v in hss.unpack_fields(w, c.acc_width, c.tile_rows * c.cols,
                                                       c.signed)]
        out.append((np.array(z, np.int64).reshape(c.rows, c.cols), flags.pop()))
    return out


def tile_beat_rows(config, tile: np.ndarray) -> list[np.ndarray]:
    """A tile (rows, cols) cut into the rows of its ``tiles`` beats, in order."""
    return [tile[b * config.tile_rows:(b + 1) * config.tile_rows]
            for b in range(config.tile_beats)]
