"""One accelerator configuration: pattern, array shape, number formats. Checked eagerly."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from amaranth.hdl import Shape, signed, unsigned

from hss import ModeSet, Pattern, accumulator_bits, max_products
from hss.energy import PEShape
from hss.lanes import LaneSchedule, default_macs

__all__ = ["AcceleratorConfig", "FlexConfig", "value_shape"]

MAX_ARRAY_SIDE = 64
MAX_VALUE_WIDTH = 32
#: Amaranth 0.5 numbers the output bits of a netlist cell in 16 bits (``Net.from_cell``), so
#: no signal it builds may be wider. A 64x64 tile of 26-bit sums (4:6,2:4 int8) is 106,496
#: bits: such a tile leaves the accelerator in several ``tiles`` beats (``tile_rows``).
MAX_SIGNAL_BITS = 1 << 16


def value_shape(width: int, is_signed: bool) -> Shape:
    return signed(width) if is_signed else unsigned(width)


def _check_int(name, value, lo, hi=None):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise ValueError(f"{name} must be {bound}, not {value}")


def _check_array_and_format(config) -> None:
    """The checks every config shares: array sides, value format, max_k."""
    _check_int("rows", config.rows, 1, MAX_ARRAY_SIDE)
    _check_int("cols", config.cols, 1, MAX_ARRAY_SIDE)
    _check_int("width", config.width, 2, MAX_VALUE_WIDTH)
    if not isinstance(config.signed, bool):
        raise TypeError(f"signed must be a bool, not {config.signed!r}")
    _check_int("max_k", config.max_k, 1)


def _default_acc_width(config) -> None:
    if config.acc_width is None:
        object.__setattr__(config, "acc_width", config.min_acc_width)
    _check_int("acc_width", config.acc_width, 2, 128)


def _tile_beat_bits(config, rows: int) -> int:
    """Bits of a ``tiles`` beat of ``rows`` rows: the sums, ``overflow`` and, when a tile
    takes several beats, ``last``."""
    return rows * config.cols * config.acc_width + 1 + (rows != config.rows)


def _default_tile_rows(config) -> None:
    """The whole tile in one beat where it fits in a signal, else the most rows that fit
    and divide ``rows`` (so every beat of a tile has the same layout)."""
    if config.tile_rows is None:
        fits = [d for d in range(config.rows, 0, -1)
                if config.rows % d == 0 and _tile_beat_bits(config, d) <= MAX_SIGNAL_BITS]
        object.__setattr__(config, "tile_rows", fits[0])
    _check_int("tile_rows", config.tile_rows, 1, config.rows)
    if config.rows % config.tile_rows:
        raise ValueError(f"tile_rows must divide rows ({config.rows}), not {config.tile_rows}")
    bits = _tile_beat_bits(config, config.tile_rows)
    if bits > MAX_SIGNAL_BITS:
        raise ValueError(f"a tiles beat of {config.tile_rows} rows is {bits:,} bits, more than "
                         f"Amaranth's {MAX_SIGNAL_BITS:,}-bit signal limit: use fewer tile_rows")


def _check_input_beats(config, weights_bits: int, acts_bits: int) -> None:
    for name, bits in (("a weights", weights_bits), ("an activations", acts_bits)):
        if bits > MAX_SIGNAL_BITS:
            raise ValueError(f"{name} beat of {bits:,} bits is more than Amaranth's "
                             f"{MAX_SIGNAL_BITS:,}-bit signal limit: use a smaller array, "
                             f"group or value width")


def _pe_shape(lanes: int, width: int, acc_width: int, selectors) -> PEShape:
    """What every PE (``hdl.pe``) does per step: registers of the selected weights and
    activations, the products and the tree's sum, the accumulator; the adder tree's adds
    (each level one bit wider) and the accumulator's."""
    adds, level, bits = [], lanes, 2 * width
    while level > 1:
        adds += [bits + 1] * (level // 2)
        level, bits = -(-level // 2), bits + 1
    registers = 2 * lanes * width + lanes * 2 * width + bits + acc_width
    return PEShape(lanes, width, tuple(selectors), registers, tuple(adds) + (acc_width,))


class _NumberFormats:
    """The Amaranth shapes of a config's values and accumulators."""

    @property
    def value_shape(self) -> Shape:
        return value_shape(self.width, self.signed)

    @property
    def acc_shape(self) -> Shape:
        return value_shape(self.acc_width, self.signed)

    @property
    def tile_beats(self) -> int:
        """``tiles`` beats per output tile: ``rows / tile_rows``."""
        return self.rows // self.tile_rows


@dataclass(frozen=True)
class AcceleratorConfig(_NumberFormats):
    """What the generator builds.

    ``acc_width`` defaults to the narrowest accumulator that cannot overflow for K up to
    ``max_k`` (see ``hss.accumulator_bits``); a narrower explicit width may wrap.
    ``tile_rows`` (rows of Z per ``tiles`` beat) defaults to the whole tile where it fits
    in ``MAX_SIGNAL_BITS``, else to the most rows that fit and divide ``rows``.
    """
    pattern: Pattern
    rows: int = 4
    cols: int = 4
    width: int = 8
    signed: bool = True
    max_k: int = 4096
    acc_width: int | None = field(default=None)
    tile_rows: int | None = field(default=None)

    def __post_init__(self):
        if isinstance(self.pattern, str):
            object.__setattr__(self, "pattern", Pattern.parse(self.pattern))
        if not isinstance(self.pattern, Pattern):
            raise TypeError(f"pattern must be a Pattern or a string like '4:6,2:4', "
                            f"not {self.pattern!r}")
        _check_array_and_format(self)
        _default_acc_width(self)
        _default_tile_rows(self)
        p = self.pattern
        _check_input_beats(self, self.rows * p.group_bits(self.width) + 1,
                           self.cols * p.group_size * self.width)

    @property
    def max_steps(self) -> int:
        """Groups (steps) per tile that the accumulator is sized for."""
        return -(-self.max_k // self.pattern.group_size)

    @property
    def min_acc_width(self) -> int:
        """Accumulator bits that cannot overflow for K up to ``max_k``."""
        return accumulator_bits(self.width, self.signed, max_products(self.pattern, self.max_k))

    @property
    def multipliers(self) -> int:
        return self.rows * self.cols * self.pattern.slots

    def dense_twin(self) -> AcceleratorConfig:
        """Same array, formats and multipliers, dense pattern ``prod(G):prod(G)``.

        The accumulator keeps this config's width so that the comparison isolates the
        sparsity hardware.
        """
        return AcceleratorConfig(self.pattern.dense_twin(), self.rows, self.cols, self.width,
                                 self.signed, self.max_k, self.acc_width, self.tile_rows)

    @property
    def selector_mux_bits(self) -> int:
        """Mux data inputs of one PE's selector tree, in bits. Rank r has one selector per
        kept rank-(r+1) block; each of its G outputs chooses among ``H - G + 1`` blocks of
        ``span(r-1)`` values (see ``GHSelector``); a dense rank is wires."""
        p, total, selectors = self.pattern, 0, 1
        for r in reversed(range(p.num_ranks)):
            g, h = p.G[r], p.H[r]
            if g != h:
                total += selectors * g * (h - g + 1) * (p.span(r - 1) if r else 1) * self.width
            selectors *= g
        return total

    @property
    def pe_shape(self) -> PEShape:
        """Per PE step, for ``hss.energy``: each rank's selectors as 2:1 mux bits (an
        (H-G+1)-input mux per kept block is H-G mux2s per bit; a dense rank is wires)."""
        p, levels, selectors = self.pattern, [], 1
        for r in reversed(range(p.num_ranks)):
            g, h = p.G[r], p.H[r]
            if g != h:
                levels.append((f"rank {r}", selectors * g * (h - g) * (p.span(r - 1) if r else 1)
                               * self.width))
            selectors *= g
        return _pe_shape(p.slots, self.width, self.acc_width, levels)

    @property
    def beat_bits(self) -> int:
        """Bits of one weights beat plus one activations beat (the ports' width)."""
        return (self.rows * self.pattern.group_bits(self.width)
                + self.cols * self.pattern.group_size * self.width)

    @property
    def estimated_nand2_eq(self) -> int:
        """A cheap size estimate (NAND2-eq) before anything is elaborated, for refusing
        builds that would not finish. Per PE: ~9 gates per multiplier bit-product, ~1.5 per
        selector mux input bit, ~10 per register bit of the pipeline (selected values,
        weights, products, adder tree, accumulator). Fitted to the measured 4x4 builds of
        bench/results/tax.csv (8:8 ... 8:48), within about 20 % of them."""
        per_pe = (9 * self.pattern.slots * self.width ** 2 + 1.5 * self.selector_mux_bits
                  + 10 * (4 * self.pattern.slots * self.width + 3 * self.acc_width))
        return int(self.rows * self.cols * per_pe)

    @property
    def name(self) -> str:
        """A file-system friendly name, e.g. ``hss_4-6_2-4_4x4_s8``."""
        ranks = "_".join(f"{r.g}-{r.h}" for r in self.pattern.ranks)
        return f"hss_{ranks}_{self.rows}x{self.cols}_{'s' if self.signed else 'u'}{self.width}"


@dataclass(frozen=True)
class FlexConfig(_NumberFormats):
    """A flexible build: one array that runs every mode of ``modes`` (an ``hss.ModeSet``),
    chosen per tile at run time, on ``macs`` multipliers per PE (``hss.lanes``).

    ``acc_width`` defaults to the narrowest accumulator that cannot overflow in any mode for
    K up to ``max_k`` (the densest mode sums the most products); ``tile_rows`` as in
    ``AcceleratorConfig``.
    """
    modes: ModeSet
    rows: int = 4
    cols: int = 4
    width: int = 8
    signed: bool = True
    max_k: int = 4096
    acc_width: int | None = field(default=None)
    macs: int | None = field(default=None)
    tile_rows: int | None = field(default=None)

    def __post_init__(self):
        if isinstance(self.modes, (str, Pattern)):
            object.__setattr__(self, "modes", ModeSet.coerce(self.modes))
        if not isinstance(self.modes, ModeSet):
            raise TypeError(f"modes must be an hss.ModeSet or a string like "
                            f"'4:4|4:6,2:4|1:4', not {self.modes!r}")
        _check_array_and_format(self)
        if self.macs is None:
            object.__setattr__(self, "macs", default_macs(self.modes.modes))
        _check_int("macs", self.macs, 1, 1024)
        self.schedule                       # eager: a set these lanes cannot run is an error
        _default_acc_width(self)
        _default_tile_rows(self)
        s = self.schedule
        acts = self.cols * s.max_groups_per_beat * s.region_size * self.width
        _check_input_beats(self, self.beat_bits - acts, acts)

    @cached_property
    def schedule(self) -> LaneSchedule:
        return LaneSchedule(self.modes.modes, self.macs)

    @property
    def max_products(self) -> int:
        """Products summed into one output at K = ``max_k``, in the densest case."""
        return max(max_products(p, self.max_k) for p in self.modes.modes)

    @property
    def max_steps(self) -> int:
        """PE steps per tile the accumulator is sized for (every step adds ``macs``
        products per output)."""
        return -(-self.max_products // self.macs)

    @property
    def min_acc_width(self) -> int:
        return accumulator_bits(self.width, self.signed, self.max_products)

    @property
    def multipliers(self) -> int:
        return self.rows * self.cols * self.macs

    @property
    def pe_shape(self) -> PEShape:
        """Per PE step, for ``hss.energy``: each lane's activation mux (``n`` candidate
        positions: ``n - 1`` mux2s per bit); the row steering and column windows, shared
        by a row or column of PEs, are left out."""
        mux2 = sum(len(c) - 1 for c in self.schedule.candidates) * self.width
        return _pe_shape(self.macs, self.width, self.acc_width, [("lane muxes", mux2)])

    @property
    def beat_bits(self) -> int:
        """Bits of one weights plus one activations beat (the ports' width)."""
        s = self.schedule
        row = s.beat_values * self.width + sum(s.offset_fields(r) * s.offset_bits(r)
                                               for r in range(s.num_ranks))
        return (self.rows * row + self.modes.mode_bits + 1
                + self.cols * s.max_groups_per_beat * s.region_size * self.width)

    @property
    def estimated_nand2_eq(self) -> int:
        """The cheap size estimate of ``AcceleratorConfig.estimated_nand2_eq``, with the
        lane muxes (``LaneSchedule.mux_inputs``) as the selectors."""
        per_pe = (9 * self.macs * self.width ** 2
                  + 1.5 * self.schedule.mux_inputs * self.width
                  + 10 * (4 * self.macs * self.width + 3 * self.acc_width))
        return int(self.rows * self.cols * per_pe)

    def dense_twin(self) -> AcceleratorConfig:
        """The dense array with the same multipliers (``macs:macs``) and accumulators."""
        return AcceleratorConfig(Pattern.parse(f"{self.macs}:{self.macs}"), self.rows,
                                 self.cols, self.width, self.signed, self.max_k,
                                 self.acc_width, self.tile_rows)

    @property
    def name(self) -> str:
        """e.g. ``hssflex_4-4.4-5.4-6.4-7_4-4.2-4.1-4_m8_4x4_s8``."""
        ranks = "_".join(".".join(f"{a.g}-{a.h}" for a in alts)
                         for alts in self.modes.alternatives)
        return (f"hssflex_{ranks}_m{self.macs}_{self.rows}x{self.cols}_"
                f"{'s' if self.signed else 'u'}{self.width}")
