"""The weights beats of an hss_system whose rank 1 is selected where activations are fetched.

HighLight's split (``hss.fetch``, way (i) ``"shared"``): the ``rows`` weight rows of an
m-tile share their rank-1 pattern, so one set of G1 rank-1 offsets per beat names the
activation blocks the whole array needs. The system keeps the activations as the engine's
full ``[cols][S]`` beats (H1 blocks of H0 per column, in H1 banks of ``abuf``), reads only
the G1 banks the offsets name, and feeds a rank-0 engine (``hss.fetch.rank0_pattern``,
``G1:G1,G0:H0``: its PEs keep a G0:H0 mux only) with the G1 blocks.

A *fetch weights beat* (``FetchFormat.weight_beat_bits``), lowest bits first:

- per PE row ``i``: the row's G1*G0 values (``width`` bits each) then its G1*G0 rank-0
  offsets (``ceil(log2 H0)`` bits each): the rank-0 engine's group of that row;
- ``last`` (the tile's final beat): with the rows above, exactly the rank-0 engine's
  ``weights`` payload (``hdl.top.weight_beat_layout`` of the rank-0 pattern);
- the m-tile's G1 rank-1 offsets of the beat's group (``ceil(log2 H1)`` bits each),
  block indices in increasing order, canonical over the union of the tile's rows.

Against the engine's own beat this drops the rank-1 offsets of ``rows - 1`` rows: the
compressed weights are smaller in DRAM and in ``wbuf``. Activations beats are the engine's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .beats import PackedLayer, StreamFormat, WeightBeat, _bits_of, _get, _ints_of, _put
from .errors import HSSError
from .fetch import compress_shared, rank0_pattern
from .tensor import as_matrix

__all__ = ["FetchFormat"]


@dataclass(frozen=True, eq=False)
class FetchFormat:
    """The streams of a fetch-level hss_system around ``engine`` (the build's own
    ``StreamFormat``, a fixed two-rank pattern with a sparse rank 1): activations, tiles
    and arithmetic are the engine's; weights beats are fetch weights beats (above).

    It answers what ``hss.system`` and the host driver ask of a stream format (sizes,
    ``pack_layer``, ``decode_weights``, ``beat_product``, ...), so the golden model runs a
    fetch build unchanged."""
    engine: StreamFormat

    def __post_init__(self):
        e = self.engine
        if not isinstance(e, StreamFormat):
            raise HSSError(f"engine must be an hss.beats.StreamFormat, not {e!r}")
        if e.flexible or len(e.modes) != 1:
            raise HSSError(f"rank 1 at the fetch needs a fixed pattern, not the mode set "
                           f"{e.modes}")
        p = e.modes.mode(0)
        rank0_pattern(p)                                    # two ranks, else one line
        if p.rank(1).dense:
            raise HSSError(f"rank 1 of {p} is dense: there is nothing to select at the fetch")

    # ---- what the engine's format says --------------------------------------------------
    @property
    def pattern(self):
        return self.engine.modes.mode(0)

    @property
    def inner_pattern(self):
        """The rank-0 engine's pattern, ``G1:G1,G0:H0``."""
        return rank0_pattern(self.pattern)

    def __getattr__(self, name):
        # the engine's sizes, modes and arithmetic (rows, cols, width, signed, acc_width,
        # modes, max_steps, latency, act_beat_bits, decode_activations, wrap, tiles, ...)
        if name.startswith("_") or name in ("engine",):
            raise AttributeError(name)
        return getattr(self.engine, name)

    @property
    def act_banks(self) -> int:
        """Banks of ``abuf``: H1, bank b holding block b of every column's group."""
        return self.pattern.H[1]

    @property
    def banks_read(self) -> int:
        """Banks a step reads: the G1 the beat's rank-1 offsets name."""
        return self.pattern.G[1]

    # ---- the fetch weights beat ---------------------------------------------------------
    @property
    def _row_fields(self):
        p, w = self.pattern, self.engine.width
        slots = p.slots
        return slots, slots * w, slots * (w + p.offset_bits(0))   # values, r0 at, stride

    @property
    def inner_beat_bits(self) -> int:
        """Bits of the rank-0 engine's ``weights`` payload: the fetch beat's low bits."""
        return self.engine.rows * self._row_fields[2] + 1

    @property
    def weight_beat_bits(self) -> int:
        p = self.pattern
        return self.inner_beat_bits + p.G[1] * p.offset_bits(1)

    def pack_layer(self, segments, A) -> PackedLayer:
        """The beats of ``Z = W @ A`` (one segment ``[(W, mode 0)]``): W must conform to
        the pattern with every m-tile's ``rows`` rows sharing their rank-1 blocks
        (``hss.fetch.prune_shared`` prunes to it; else ``ConformanceError`` naming the
        tile and group)."""
        segments = list(segments)
        if len(segments) != 1:
            raise HSSError(f"a fetch-level build runs one segment per layer (its one "
                           f"pattern), not {len(segments)}")
        engine = self.engine.pack_layer(segments, A)       # the activations, sizes, checks
        W = as_matrix(segments[0][0], "W_1")
        e, p = self.engine, self.pattern
        padded = np.zeros((engine.m_tiles * e.rows, W.shape[1]), np.int64)
        padded[:W.shape[0]] = W
        shared = compress_shared(padded, p, e.rows)
        bpt = engine.beats_per_tile
        if shared.groups != bpt:
            raise AssertionError(f"{shared.groups} groups but {bpt} beats per tile")
        slots, r0_at, stride = self._row_fields
        ob0, ob1 = p.offset_bits(0), p.offset_bits(1)
        tiles = []
        for mt in range(engine.m_tiles):
            bits = np.zeros((bpt, self.weight_beat_bits), np.uint8)
            for i in range(e.rows):
                row = mt * e.rows + i
                _put(bits, i * stride, e.width, shared.values[row])
                _put(bits, i * stride + r0_at, ob0, shared.offsets0[row])
            bits[-1, self.inner_beat_bits - 1] = 1
            _put(bits, self.inner_beat_bits, ob1, shared.tile_offsets[mt])
            tiles.append(tuple(_ints_of(bits)))
        return PackedLayer(tuple(tiles), engine.act_tiles, bpt, engine.modes,
                           engine.steps_per_tile, engine.m, engine.k, engine.n)

    def decode_weights(self, words) -> list[WeightBeat]:
        """Fetch weights beats as the engine's ``WeightBeat``: every row's rank-1 offsets
        are the beat's one set (what the fetch reads for all rows)."""
        words = self.engine._check_words(words, self.weight_beat_bits, "a weights")
        e, p = self.engine, self.pattern
        slots, r0_at, stride = self._row_fields
        bits = _bits_of(words, self.weight_beat_bits)
        vals = np.stack([_get(bits, i * stride, e.width, slots, e.signed)
                         for i in range(e.rows)], axis=1)
        off0 = np.stack([_get(bits, i * stride + r0_at, p.offset_bits(0), slots, False)
                         for i in range(e.rows)], axis=1)
        off1 = _get(bits, self.inner_beat_bits, p.offset_bits(1), p.G[1], False)
        last = bits[:, self.inner_beat_bits - 1]
        return [WeightBeat(0, bool(last[b]), vals[b],
                           (off0[b], np.broadcast_to(off1[b], (e.rows, p.G[1]))))
                for b in range(len(words))]
