"""The engine's stream beats without Amaranth: what a host driver packs and unpacks.

A build's ``rtl/manifest.json`` describes every stream payload bit by bit (the ``layout``
of ``weights__payload``, ``activations__payload``, ``tiles__payload``) and the parameters
that choose what goes where (array, number format, mode set, multipliers per PE).
``StreamFormat.from_manifest`` reads exactly that, so a driver needs the manifest and this
module, not the generator: ``hdl.stimulus`` packs the same integers from the Amaranth
layouts, and ``sim_tests/test_hss_beats.py`` checks that the two agree bit for bit.

What the streams carry (``hdl.top``, ``hdl.flex``, shared/HSS.md):

- A layer is ``Z = sum_t W_t @ A``, one *segment* per TASD term ``(W_t, mode_t)``; a fixed
  build has one mode and its segments are its K groups concatenated (each term padded to
  whole groups), which is the same stream.
- A *weights beat* holds, per PE row, ``groups_per_beat(mode)`` compressed groups of the
  segment's mode, concatenated (values, then each rank's offsets), unused fields zero; its
  ``mode`` field (with several modes) names the mode, ``last`` marks the tile's final beat.
  The beats of m-tile ``mt`` are every segment's beats of rows ``mt*rows ..``, in order:
  ``beats_per_tile`` of them, the same for every m-tile.
- An *activations beat* holds, per PE column, the same groups' dense activations, each at
  the start of a slot of the largest group size. The beats of n-tile ``nt`` pair one to one
  with the weights beats of any m-tile.
- Rows past M and columns past N are zero (a zero row compresses to canonical offsets);
  K is zero-padded to whole beats of each segment's mode.

Here weights beats are per m-tile and activations beats per n-tile, each once, as
hss_system keeps them in DRAM (docs/system.md); the engine pairs beat ``b`` of m-tile
``mt`` with beat ``b`` of n-tile ``nt`` (``PackedLayer.beat_pairs``).
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .compressed import compress, positions
from .errors import HSSError, PaddingWarning
from .golden import max_products
from .lanes import LaneSchedule
from .modes import ModeSet
from .pattern import Pattern
from .tensor import as_matrix, check_range

__all__ = ["StreamFormat", "PackedLayer", "WeightBeat", "ManifestError"]


class ManifestError(HSSError):
    """A manifest that does not describe a build's streams as this module reads them."""


# ---- bits: fields of many beats at once --------------------------------------------------

def _bits_of(words, width: int) -> np.ndarray:
    """Beats (ints) as a (beats, width) array of bits, bit i of a beat at column i."""
    nbytes = max(1, -(-width // 8))
    raw = b"".join(int(w).to_bytes(nbytes, "little") for w in words)
    bits = np.unpackbits(np.frombuffer(raw, np.uint8).reshape(-1, nbytes), axis=1,
                         bitorder="little")
    return bits[:, :width]


def _ints_of(bits: np.ndarray) -> list[int]:
    """The inverse of ``_bits_of``."""
    packed = np.packbits(bits, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def _put(bits: np.ndarray, at: int, width: int, values) -> None:
    """Fields ``values`` (beats, count), two's complement, ``width`` bits each, into
    ``bits[:, at:]``, field 0 lowest (little-endian, as Amaranth's layouts)."""
    v = np.asarray(values, np.int64)
    if not width or not v.size:
        return
    fields = (v[:, :, None] >> np.arange(width)) & 1
    bits[:, at:at + v.shape[1] * width] = fields.reshape(v.shape[0], -1)


def _get(bits: np.ndarray, at: int, width: int, count: int, signed: bool) -> np.ndarray:
    """``count`` fields of ``width`` bits from ``bits[:, at:]``: (beats, count) int64
    (sign-extended when ``signed``). Fields up to 62 bits; use ``_get_wide`` beyond."""
    chunk = bits[:, at:at + count * width].reshape(bits.shape[0], count, width)
    out = (chunk.astype(np.int64) << np.arange(width)).sum(axis=2)
    if signed and width:
        out = np.where(out >> (width - 1), out - (1 << width), out)
    return out


def _get_wide(bits: np.ndarray, at: int, width: int, count: int, signed: bool) -> np.ndarray:
    """``_get`` for any width, in Python ints: int64 when they fit, else an object array."""
    if width <= 62:
        return _get(bits, at, width, count, signed)
    out = np.empty((bits.shape[0], count), object)
    for b, row in enumerate(_ints_of(bits[:, at:at + count * width])):
        for i in range(count):
            f = (row >> (i * width)) & ((1 << width) - 1)
            out[b, i] = f - (1 << width) if signed and f >> (width - 1) else f
    return out


# ---- reading the manifest's layouts -------------------------------------------------------

def _field(layout: dict, name: str, where: str) -> dict:
    try:
        return layout["fields"][name]
    except (KeyError, TypeError):
        raise ManifestError(f"manifest: {where} has no field {name!r}") from None


def _array(layout: dict, where: str) -> tuple[int, dict]:
    """(count, element) of an array layout."""
    if not isinstance(layout, dict) or "count" not in layout or "element" not in layout:
        raise ManifestError(f"manifest: {where} is not an array layout")
    return layout["count"], layout["element"]


def _payload(manifest: dict, stream: str) -> dict:
    ports = manifest.get("ports", {}).get(manifest.get("top"), [])
    for port in ports:
        if port.get("name") == f"{stream}__payload":
            return port["layout"]
    raise ManifestError(f"manifest: top {manifest.get('top')!r} has no {stream}__payload port")


def _expect(what: str, got, want) -> None:
    if got != want:
        raise ManifestError(f"manifest: {what} is {got}, the build's parameters say {want}")


@dataclass(frozen=True)
class _Fields:
    """Where a (beats, count) field array goes: bit offset, bits per field, count."""
    at: int
    width: int
    count: int


@dataclass(frozen=True)
class WeightBeat:
    """A weights beat decoded: ``values`` (rows, beat_values), ``offsets[r]`` (rows,
    fields) for the ranks the beat format stores (None elsewhere), ``mode`` and ``last``."""
    mode: int
    last: bool
    values: np.ndarray
    offsets: tuple[np.ndarray | None, ...]


@dataclass(frozen=True)
class PackedLayer:
    """A layer's beats as hss_system keeps them: ``weight_tiles[mt]`` the ``beats_per_tile``
    weights beats of m-tile ``mt``, ``act_tiles[nt]`` those of n-tile ``nt``; ``modes`` the
    mode of each beat of a tile (the same in every tile), ``steps_per_tile`` the PE steps a
    tile takes (beats times each mode's steps per beat)."""
    weight_tiles: tuple[tuple[int, ...], ...]
    act_tiles: tuple[tuple[int, ...], ...]
    beats_per_tile: int
    modes: tuple[int, ...]
    steps_per_tile: int
    m: int
    k: int
    n: int

    @property
    def m_tiles(self) -> int:
        return len(self.weight_tiles)

    @property
    def n_tiles(self) -> int:
        return len(self.act_tiles)

    @property
    def mode_mask(self) -> int:
        """The layer's ``MODES`` register: bit m for every mode its beats use."""
        mask = 0
        for mode in self.modes:
            mask |= 1 << mode
        return mask

    def beat_pairs(self):
        """``(nt, mt, b, weights beat, activations beat)`` in hss_system's loop order
        (``for nt: for mt: for b``, docs/system.md)."""
        for nt, acts in enumerate(self.act_tiles):
            for mt, weights in enumerate(self.weight_tiles):
                for b in range(self.beats_per_tile):
                    yield nt, mt, b, weights[b], acts[b]


@dataclass(frozen=True)
class StreamFormat:
    """The engine's three streams as a build's manifest describes them.

    Build it with ``from_manifest``; the fields are the manifest's parameters, the bit
    positions come from its payload layouts (checked against the parameters, so a
    manifest of another version fails at once, naming the field).
    """
    modes: ModeSet
    macs: int
    flexible: bool
    rows: int
    cols: int
    width: int
    signed: bool
    acc_width: int
    max_k: int
    tile_rows: int
    latency: int
    weights_layout: dict
    activations_layout: dict
    tiles_layout: dict

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_manifest(cls, manifest: dict | str | os.PathLike) -> StreamFormat:
        """From a build's ``rtl/manifest.json`` (its path, or the JSON already read)."""
        if not isinstance(manifest, dict):
            with open(manifest) as f:
                manifest = json.load(f)
        try:
            p = manifest["parameters"]
            flexible = "modes_set" in manifest
            modes = ModeSet.coerce(manifest["modes_set"] if flexible else manifest["pattern"])
            fmt = cls(modes=modes, macs=p["multipliers_per_pe"], flexible=flexible,
                      rows=p["rows"], cols=p["cols"], width=p["value_width"],
                      signed=p["signed"], acc_width=p["acc_width"], max_k=p["max_k"],
                      tile_rows=p["tile_rows"], latency=p["latency"],
                      weights_layout=_payload(manifest, "weights"),
                      activations_layout=_payload(manifest, "activations"),
                      tiles_layout=_payload(manifest, "tiles"))
        except KeyError as e:
            raise ManifestError(f"manifest: no {e.args[0]!r} (not a build's "
                                f"rtl/manifest.json?)") from None
        fmt._check_layouts()
        return fmt

    def _check_layouts(self) -> None:
        """Read every field position once: a layout that disagrees fails here."""
        self._weight_fields, self._act_fields, self._tile_fields    # noqa: B018

    # ---- the build's modes ----------------------------------------------------------------
    @cached_property
    def schedule(self) -> LaneSchedule:
        """How beats hold groups (``hss.lanes``); a fixed build: one group, one step."""
        return LaneSchedule(self.modes.modes, self.macs)

    def mode_number(self, mode: int | Pattern | str) -> int:
        """A mode number of the build from a number, a pattern or its string."""
        if isinstance(mode, (Pattern, str)):
            return self.modes.index(mode)
        if not isinstance(mode, (int, np.integer)) or isinstance(mode, bool) \
                or not 0 <= mode < len(self.modes):
            raise HSSError(f"mode {mode!r} is not a mode of {self.modes} (0 to "
                           f"{len(self.modes) - 1}, or a pattern)")
        return int(mode)

    def groups_per_beat(self, mode: int) -> int:
        return self.schedule.groups_per_beat(self.mode_number(mode))

    def steps_per_beat(self, mode: int) -> int:
        return self.schedule.steps_per_beat(self.mode_number(mode))

    def segment_beats(self, mode, k: int) -> int:
        """Beats of one segment of ``mode`` over K = ``k``: whole beats of whole groups."""
        mode = self.mode_number(mode)
        groups = -(-k // self.modes.mode(mode).group_size)
        return -(-groups // self.groups_per_beat(mode))

    def beats_per_tile(self, modes, k: int) -> int:
        """``BEATS_PER_TILE`` of a layer whose segments have ``modes``, over K = ``k``."""
        return sum(self.segment_beats(mode, k) for mode in modes)

    @property
    def max_steps(self) -> int:
        """PE steps per tile the accumulators are sized for; a tile of more steps sets
        ``overflow`` (``hdl.top``)."""
        most = max(max_products(p, self.max_k) for p in self.modes.modes)
        return -(-most // self.macs)

    # ---- field positions ----------------------------------------------------------------
    @property
    def weight_beat_bits(self) -> int:
        return self.weights_layout["width"]

    @property
    def act_beat_bits(self) -> int:
        return self.activations_layout["width"]

    @property
    def tile_beat_bits(self) -> int:
        return self.tiles_layout["width"]

    @property
    def tile_beats(self) -> int:
        """``tiles`` beats per output tile."""
        return self.rows // self.tile_rows

    @cached_property
    def _weight_fields(self):
        """(row offset, row stride, values fields, {rank: offset fields}, mode at, last at)."""
        s, layout, where = self.schedule, self.weights_layout, "weights payload"
        name = "rows" if "rows" in layout.get("fields", {}) else "groups"
        rows = _field(layout, name, where)
        count, row = _array(rows, f"{where}.{name}")
        _expect(f"{where}.{name} count", count, self.rows)
        values = _field(row, "values", f"{where}.{name}[]")
        n, elem = _array(values, f"{where}.{name}[].values")
        _expect(f"{where} values per row", n, s.beat_values)
        _expect(f"{where} value width", elem.get("width"), self.width)
        offsets = _field(row, "offsets", f"{where}.{name}[]")
        fields = {}
        for r in range(s.num_ranks):
            want = s.offset_fields(r)
            if not want:
                continue
            f = _field(offsets, f"r{r}", f"{where}.{name}[].offsets")
            n, elem = _array(f, f"{where}.{name}[].offsets.r{r}")
            _expect(f"{where} rank-{r} offsets per row", n, want)
            _expect(f"{where} rank-{r} offset width", elem.get("width"), s.offset_bits(r))
            fields[r] = _Fields(offsets["offset"] + f["offset"], elem["width"], n)
        mode_at = None
        if self.modes.mode_bits:
            mode = _field(layout, "mode", where)
            _expect(f"{where} mode width", mode["width"], self.modes.mode_bits)
            mode_at = mode["offset"]
        last = _field(layout, "last", where)
        return (rows["offset"], row["width"], _Fields(values["offset"], self.width,
                                                      s.beat_values),
                fields, mode_at, last["offset"])

    @cached_property
    def _act_fields(self):
        """(column stride, slots per column, slot stride, values per slot)."""
        where = "activations payload"
        count, column = _array(self.activations_layout, where)
        _expect(f"{where} columns", count, self.cols)
        slots, slot = _array(column, f"{where}[]")
        if "count" in slot:                       # flexible: [cols][groups][region]
            region, elem = _array(slot, f"{where}[][]")
        else:                                     # fixed: [cols][S], one group a beat
            slots, region, elem, slot = 1, slots, slot, column
        _expect(f"{where} groups per beat", slots, self.schedule.max_groups_per_beat)
        _expect(f"{where} values per group slot", region, self.schedule.region_size)
        _expect(f"{where} value width", elem.get("width"), self.width)
        return column["width"], slots, slot["width"], region

    @cached_property
    def _tile_fields(self):
        """(z at, row stride, overflow at, last at or None)."""
        where = "tiles payload"
        z = _field(self.tiles_layout, "z", where)
        rows, row = _array(z, f"{where}.z")
        _expect(f"{where} rows per beat", rows, self.tile_rows)
        cols, elem = _array(row, f"{where}.z[]")
        _expect(f"{where} columns", cols, self.cols)
        _expect(f"{where} accumulator width", elem.get("width"), self.acc_width)
        over = _field(self.tiles_layout, "overflow", where)["offset"]
        last = _field(self.tiles_layout, "last", where)["offset"] \
            if self.tile_beats > 1 else None
        return z["offset"], row["width"], over, last

    # ---- packing a layer ------------------------------------------------------------------
    def _operand(self, x, name: str) -> np.ndarray:
        x = as_matrix(x, name, allow_float=False)
        check_range(x, self.width, self.signed, name)
        return x.astype(np.int64)

    def _segments(self, segments, A):
        """Checked segments as [(W (M x K) int64, mode number)] and A (K x N) int64."""
        if isinstance(segments, (str, bytes)) or not hasattr(segments, "__iter__"):
            raise HSSError(f"segments must be a list of (W, mode) pairs, not {segments!r}")
        segments = list(segments)
        if not segments:
            raise HSSError("a layer needs at least one segment (W, mode)")
        A = self._operand(A, "A")
        out = []
        for t, segment in enumerate(segments, 1):
            if not isinstance(segment, (tuple, list)) or len(segment) != 2:
                raise HSSError(f"segment {t} must be a (W, mode) pair, not {segment!r}")
            W = self._operand(segment[0], f"W_{t}")
            if out and W.shape != out[0][0].shape:
                raise HSSError(f"segment {t}: W_{t} is {W.shape[0]}x{W.shape[1]} but W_1 is "
                               f"{out[0][0].shape[0]}x{out[0][0].shape[1]}")
            if W.shape[1] != A.shape[0]:
                raise HSSError(f"shapes do not chain: W_{t} is {W.shape[0]}x{W.shape[1]} but "
                               f"A is {A.shape[0]}x{A.shape[1]} (A needs K={W.shape[1]} rows)")
            out.append((W, self.mode_number(segment[1])))
        return out, A

    def pack_layer(self, segments, A) -> PackedLayer:
        """The beats of ``Z = sum_t W_t @ A``: ``segments`` = [(W_t, mode_t)], each W_t
        M x K and conforming to its mode (a number, a pattern or its string), ``A`` K x N;
        integers in the build's value range. Raises ``hss.HSSError`` (``ConformanceError``
        for a W_t its mode cannot hold) naming the problem."""
        segments, A = self._segments(segments, A)
        m, k = segments[0][0].shape
        n = A.shape[1]
        m_tiles, n_tiles = -(-m // self.rows), -(-n // self.cols)
        parts = [self._segment(W, mode, m_tiles) for W, mode in segments]
        weights = tuple(self._weight_tile(parts, mt) for mt in range(m_tiles))
        acts = tuple(self._act_tile(A, parts, nt, n_tiles) for nt in range(n_tiles))
        modes = tuple(mode for _, mode, beats in parts for _ in range(beats))
        steps = sum(self.steps_per_beat(mode) for mode in modes)
        return PackedLayer(weights, acts, len(modes), modes, steps, m, k, n)

    def _segment(self, W, mode: int, m_tiles: int):
        """(compressed W padded to whole tiles of rows and whole beats of K, mode, beats)."""
        p, per_beat = self.modes.mode(mode), self.groups_per_beat(mode)
        beats = self.segment_beats(mode, W.shape[1])
        padded = np.zeros((m_tiles * self.rows, beats * per_beat * p.group_size), np.int64)
        padded[:W.shape[0], :W.shape[1]] = W
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PaddingWarning)   # padded on purpose, above
            return compress(padded, p), mode, beats

    def _weight_tile(self, parts, mt: int) -> tuple[int, ...]:
        row_at, row_stride, values, offsets, mode_at, last_at = self._weight_fields
        bits = np.zeros((sum(beats for *_, beats in parts), self.weight_beat_bits), np.uint8)
        first = 0
        for Wc, mode, beats in parts:
            p, per_beat = Wc.pattern, self.groups_per_beat(mode)
            here = bits[first:first + beats]
            for i in range(self.rows):
                row, base = mt * self.rows + i, row_at + i * row_stride
                _put(here, base + values.at, values.width,
                     Wc.values[row].reshape(beats, per_beat * p.slots))
                for r, f in offsets.items():
                    if not p.rank(r).dense:
                        _put(here, base + f.at, f.width,
                             Wc.offsets[r][row].reshape(beats, per_beat * p.kept(r)))
            if mode_at is not None:
                _put(here, mode_at, self.modes.mode_bits, np.full((beats, 1), mode))
            first += beats
        bits[-1, last_at] = 1
        return tuple(_ints_of(bits))

    def _act_tile(self, A, parts, nt: int, n_tiles: int) -> tuple[int, ...]:
        col_stride, _, slot_stride, _ = self._act_fields
        bits = np.zeros((sum(beats for *_, beats in parts), self.act_beat_bits), np.uint8)
        cols = np.zeros((A.shape[0], self.cols), np.int64)
        here_n = min(self.cols, A.shape[1] - nt * self.cols)
        cols[:, :here_n] = A[:, nt * self.cols:nt * self.cols + here_n]
        first = 0
        for Wc, mode, beats in parts:
            s, per_beat = Wc.pattern.group_size, self.groups_per_beat(mode)
            padded = np.zeros((beats * per_beat * s, self.cols), np.int64)
            padded[:A.shape[0]] = cols
            groups = padded.T.reshape(self.cols, beats, per_beat, s)
            for j in range(self.cols):
                for g in range(per_beat):
                    _put(bits[first:first + beats], j * col_stride + g * slot_stride,
                         self.width, groups[j, :, g])
            first += beats
        return tuple(_ints_of(bits))

    # ---- decoding ---------------------------------------------------------------------------
    def _check_words(self, words, bits: int, what: str) -> list[int]:
        words = [words] if isinstance(words, (int, np.integer)) else list(words)
        for w in words:
            if not isinstance(w, (int, np.integer)) or not 0 <= int(w) < 1 << bits:
                raise HSSError(f"{what} beat {w!r} is not a {bits}-bit non-negative integer")
        return [int(w) for w in words]

    def decode_weights(self, words) -> list[WeightBeat]:
        """Weights beats (ints) back into their fields; a mode field naming no mode of the
        build is returned as it is (hss_system ends the layer there with BAD_MODE)."""
        words = self._check_words(words, self.weight_beat_bits, "a weights")
        row_at, row_stride, values, offsets, mode_at, last_at = self._weight_fields
        bits = _bits_of(words, self.weight_beat_bits)
        vals = np.stack([_get(bits, row_at + i * row_stride + values.at, values.width,
                              values.count, self.signed) for i in range(self.rows)], axis=1)
        offs = [None] * self.schedule.num_ranks
        for r, f in offsets.items():
            offs[r] = np.stack([_get(bits, row_at + i * row_stride + f.at, f.width, f.count,
                                     False) for i in range(self.rows)], axis=1)
        modes = (_get(bits, mode_at, self.modes.mode_bits, 1, False)[:, 0]
                 if mode_at is not None else np.zeros(len(words), np.int64))
        return [WeightBeat(int(modes[b]), bool(bits[b, last_at]), vals[b],
                           tuple(None if o is None else o[b] for o in offs))
                for b in range(len(words))]

    def decode_activations(self, words) -> np.ndarray:
        """Activations beats as (beats, cols, group slots, values per slot) int64."""
        words = self._check_words(words, self.act_beat_bits, "an activations")
        col_stride, slots, slot_stride, region = self._act_fields
        bits = _bits_of(words, self.act_beat_bits)
        return np.stack([np.stack([_get(bits, j * col_stride + g * slot_stride, self.width,
                                        region, self.signed) for g in range(slots)], axis=1)
                         for j in range(self.cols)], axis=1)

    def beat_product(self, weights: WeightBeat, acts: np.ndarray) -> np.ndarray:
        """What one pair of beats adds to a tile's accumulators: (rows, cols), exact
        (int64, or Python ints where products could pass 62 bits). ``acts`` is one beat of
        ``decode_activations``. The mode must be the build's."""
        mode = self.mode_number(weights.mode)
        p, per_beat = self.modes.mode(mode), self.groups_per_beat(mode)
        vals = weights.values[:, :per_beat * p.slots].reshape(self.rows, per_beat, p.slots)
        offs = []
        for r in range(p.num_ranks):
            if p.rank(r).dense:          # not stored: every position kept, in order
                o = np.tile(np.arange(p.G[r]), p.kept(r) // p.G[r])
                offs.append(np.broadcast_to(o, (self.rows, per_beat, p.kept(r))))
            else:
                offs.append(weights.offsets[r][:, :per_beat * p.kept(r)].reshape(
                    self.rows, per_beat, p.kept(r)))
        pos = positions(p, offs)                                  # (rows, groups, slots)
        chosen = acts[:, np.arange(per_beat)[None, :, None], pos]  # (cols, rows, groups, slots)
        if 2 * self.width + (p.slots * per_beat).bit_length() <= 62:
            return np.einsum("igs,jigs->ij", vals, chosen)
        return (vals[None].astype(object) * chosen.astype(object)).sum(axis=(2, 3)).T

    def wrap(self, z) -> np.ndarray:
        """Exact sums as the accumulators hold them: ``acc_width`` bits, two's complement
        when signed (a tile that overflows wraps)."""
        mask, half = (1 << self.acc_width) - 1, 1 << (self.acc_width - 1)
        z = np.asarray(z)
        if z.dtype.kind in "iu" and self.acc_width <= 62:
            z = z.astype(np.int64) & mask
            return (z ^ half) - half if self.signed else z
        out = np.vectorize(lambda v: ((int(v) & mask) ^ half) - half if self.signed
                           else int(v) & mask, otypes=[object])(z)
        return out.astype(np.int64) if self.acc_width <= 63 else out

    def unpack_tile(self, words) -> tuple[np.ndarray, bool]:
        """An output tile from its ``tiles`` payloads (an int when a tile is one beat, else
        the ``tile_beats`` beats in order): (z (rows, cols), overflow). z is int64 (an object
        array of ints above 63-bit accumulators). Raises ``HSSError`` where the beats are not
        one tile: a wrong count, ``last`` off the final beat, beats disagreeing on overflow."""
        words = self._check_words(words, self.tile_beat_bits, "a tiles")
        if len(words) != self.tile_beats:
            raise HSSError(f"a tile is {self.tile_beats} tiles beats, not {len(words)}")
        z_at, row_stride, over_at, last_at = self._tile_fields
        bits = _bits_of(words, self.tile_beat_bits)
        flags = set(bits[:, over_at].tolist())
        if len(flags) != 1:
            raise HSSError("the beats of the tile disagree on overflow")
        if last_at is not None:
            last = bits[:, last_at].tolist()
            if last != [0] * (self.tile_beats - 1) + [1]:
                raise HSSError(f"last flags {last}: only the tile's final beat has last set")
        rows = [_get_wide(bits, z_at + i * row_stride, self.acc_width, self.cols, self.signed)
                for i in range(self.tile_rows)]
        z = np.concatenate([np.stack(rows, axis=1)[b] for b in range(self.tile_beats)])
        return z, bool(flags.pop())

    def pack_tile(self, z, overflow: bool) -> list[int]:
        """The ``tiles`` payloads of a tile (the inverse of ``unpack_tile``): z (rows, cols)
        in accumulator range, one int per tiles beat."""
        z = np.asarray(z)
        if z.shape != (self.rows, self.cols):
            raise HSSError(f"a tile is {self.rows}x{self.cols}, not {z.shape}")
        z_at, row_stride, over_at, last_at = self._tile_fields
        mask = (1 << self.acc_width) - 1
        out = []
        for b in range(self.tile_beats):
            word = int(bool(overflow)) << over_at
            if last_at is not None and b == self.tile_beats - 1:
                word |= 1 << last_at
            for i in range(self.tile_rows):
                for j, v in enumerate(z[b * self.tile_rows + i]):
                    word |= (int(v) & mask) << (z_at + i * row_stride + j * self.acc_width)
            out.append(word)
        return out
