"""An accelerator configuration, fixed (one pattern) or flexible (a mode set): array shape,
number formats, and the one interface the software reads of either kind. Checked eagerly."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

from hss import ModeSet, Pattern, Rank, accumulator_bits, max_products
from hss.energy import PEShape
from hss.lanes import LaneSchedule, default_macs

__all__ = ["ArrayConfig", "AcceleratorConfig", "FlexConfig", "build_config", "is_flexible",
           "value_shape"]

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


@dataclass(frozen=True)
class ArrayConfig:
    """What every build shares, fixed (``AcceleratorConfig``) or flexible (``FlexConfig``):
    the PE array's shape, the number formats, and one interface to them, so that the
    software asks what a build does instead of which class it is.

    A single pattern is a mode set with one mode: a fixed config's ``modes`` is its
    pattern's one-mode set, its ``macs`` the pattern's ``prod(G)``, and each beat takes one
    step of one group. ``flexible`` says whether the RTL differs (``FlexAccelerator``:
    lanes, and a mode field where there are several modes); ``hdl.accelerator_for`` builds
    the right top.

    The fields here come after each kind's own first field (``pattern``, ``modes``) and
    before its last ones (``FlexConfig.macs``, ``tile_rows``): dataclasses order fields base
    by base from the end of the MRO, so each kind lists its first field's base after this
    one, and the positional signatures stay as they have always been.
    """
    rows: int = 4
    cols: int = 4
    width: int = 8
    signed: bool = True
    max_k: int = 4096
    acc_width: int | None = field(default=None)

    #: Does the RTL carry lanes and a mode field (``FlexAccelerator``)?
    flexible: ClassVar[bool] = False

    def __post_init__(self):
        self._check_kind()
        _check_array_and_format(self)
        self._check_lanes()
        _default_acc_width(self)
        _default_tile_rows(self)
        _check_input_beats(self, self.weight_beat_bits, self.act_beat_bits)

    def _check_kind(self) -> None:
        """Coerce and check the kind's own first field (pattern or modes)."""
        raise NotImplementedError

    def _check_lanes(self) -> None:
        """A flexible build's multipliers and lane schedule; a fixed one has no lanes."""

    # -- the interface every config has ------------------------------------------------
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

    def _mode_number(self, mode: int) -> int:
        self.modes.mode(mode)               # an IndexError naming the set for a bad number
        return mode

    def steps_per_beat(self, mode: int) -> int:
        """PE steps a weights beat of mode number ``mode`` takes (a fixed build: 1)."""
        self._mode_number(mode)
        return 1

    def groups_per_beat(self, mode: int) -> int:
        """Groups of mode number ``mode`` in one beat (a fixed build: 1)."""
        self._mode_number(mode)
        return 1

    @property
    def max_products(self) -> int:
        """Products summed into one output at K = ``max_k``, in the densest mode."""
        return max(max_products(p, self.max_k) for p in self.modes.modes)

    @property
    def max_steps(self) -> int:
        """PE steps per tile the accumulator is sized for (every step adds ``macs``
        products per output; a fixed build: groups, ``ceil(max_k / S)``)."""
        return -(-self.max_products // self.macs)

    @property
    def min_acc_width(self) -> int:
        """Accumulator bits that cannot overflow for K up to ``max_k`` in any mode."""
        return accumulator_bits(self.width, self.signed, self.max_products)

    @property
    def multipliers(self) -> int:
        return self.rows * self.cols * self.macs

    def dense_twin(self) -> AcceleratorConfig:
        """The dense array with the same multipliers (``macs:macs``), formats and
        accumulators: the comparison isolates the sparsity hardware."""
        return AcceleratorConfig(Pattern((Rank(self.macs, self.macs),)), self.rows, self.cols,
                                 self.width, self.signed, self.max_k, self.acc_width,
                                 self.tile_rows)

    @property
    def estimated_nand2_eq(self) -> int:
        """A cheap size estimate (NAND2-eq) before anything is elaborated, for refusing
        builds that would not finish. Per PE: ~9 gates per multiplier bit-product, ~1.5 per
        selector mux input bit (``selector_mux_bits``), ~10 per register bit of the
        pipeline (selected values, weights, products, adder tree, accumulator). Fitted to
        the measured 4x4 builds of bench/results/tax.csv (8:8 ... 8:48), within about 20 %
        of them."""
        per_pe = (9 * self.macs * self.width ** 2 + 1.5 * self.selector_mux_bits
                  + 10 * (4 * self.macs * self.width + 3 * self.acc_width))
        return int(self.rows * self.cols * per_pe)

    # Stream layouts: hdl.top and hdl.flex import this module, hence the imports inside.
    def weight_beat_layout(self) -> data.StructLayout:
        """The ``weights`` stream's payload."""
        raise NotImplementedError

    def act_beat_layout(self) -> data.ArrayLayout:
        """The ``activations`` stream's payload."""
        raise NotImplementedError

    def tile_layout(self) -> data.StructLayout:
        """The ``tiles`` stream's payload (``hdl.top.tile_layout``), the same for every
        kind: the tiles do not depend on the modes."""
        from .top import tile_layout
        return tile_layout(self)


@dataclass(frozen=True)
class _PatternField:
    """``AcceleratorConfig``'s first field (see ``ArrayConfig`` for why a base)."""
    pattern: Pattern


@dataclass(frozen=True)
class AcceleratorConfig(ArrayConfig, _PatternField):
    """What the generator builds.

    ``acc_width`` defaults to the narrowest accumulator that cannot overflow for K up to
    ``max_k`` (see ``hss.accumulator_bits``); a narrower explicit width may wrap.
    ``tile_rows`` (rows of Z per ``tiles`` beat) defaults to the whole tile where it fits
    in ``MAX_SIGNAL_BITS``, else to the most rows that fit and divide ``rows``.
    """
    tile_rows: int | None = field(default=None)

    def _check_kind(self) -> None:
        if isinstance(self.pattern, str):
            object.__setattr__(self, "pattern", Pattern.parse(self.pattern))
        if not isinstance(self.pattern, Pattern):
            raise TypeError(f"pattern must be a Pattern or a string like '4:6,2:4', "
                            f"not {self.pattern!r}")

    @cached_property
    def modes(self) -> ModeSet:
        """The one-mode set of ``pattern``."""
        return ModeSet.from_pattern(self.pattern)

    @property
    def macs(self) -> int:
        """Multipliers per PE: ``prod(G)``."""
        return self.pattern.slots

    @property
    def weight_beat_bits(self) -> int:
        """Bits of a weights beat: a compressed group per PE row and ``last``."""
        return self.rows * self.pattern.group_bits(self.width) + 1

    @property
    def act_beat_bits(self) -> int:
        """Bits of an activations beat: a dense group of S per PE column."""
        return self.cols * self.pattern.group_size * self.width

    def weight_beat_layout(self) -> data.StructLayout:
        from .top import weight_beat_layout
        return weight_beat_layout(self)

    def act_beat_layout(self) -> data.ArrayLayout:
        from .layouts import act_beat_layout
        return act_beat_layout(self)

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
        """Bits of one weights beat plus one activations beat (the ports' width), without
        ``last``."""
        return self.weight_beat_bits - 1 + self.act_beat_bits

    @property
    def name(self) -> str:
        """A file-system friendly name, e.g. ``hss_4-6_2-4_4x4_s8``."""
        ranks = "_".join(f"{r.g}-{r.h}" for r in self.pattern.ranks)
        return f"hss_{ranks}_{self.rows}x{self.cols}_{'s' if self.signed else 'u'}{self.width}"


@dataclass(frozen=True)
class _ModesField:
    """``FlexConfig``'s first field (see ``ArrayConfig`` for why a base)."""
    modes: ModeSet


@dataclass(frozen=True)
class FlexConfig(ArrayConfig, _ModesField):
    """A flexible build: one array that runs every mode of ``modes`` (an ``hss.ModeSet``),
    chosen per tile at run time, on ``macs`` multipliers per PE (``hss.lanes``).

    ``acc_width`` defaults to the narrowest accumulator that cannot overflow in any mode for
    K up to ``max_k`` (the densest mode sums the most products); ``tile_rows`` as in
    ``AcceleratorConfig``.
    """
    macs: int | None = field(default=None)
    tile_rows: int | None = field(default=None)

    flexible: ClassVar[bool] = True

    def _check_kind(self) -> None:
        if isinstance(self.modes, (str, Pattern)):
            object.__setattr__(self, "modes", ModeSet.coerce(self.modes))
        if not isinstance(self.modes, ModeSet):
            raise TypeError(f"modes must be an hss.ModeSet or a string like "
                            f"'4:4|4:6,2:4|1:4', not {self.modes!r}")

    def _check_lanes(self) -> None:
        if self.macs is None:
            object.__setattr__(self, "macs", default_macs(self.modes.modes))
        _check_int("macs", self.macs, 1, 1024)
        self.schedule                       # eager: a set these lanes cannot run is an error

    @cached_property
    def schedule(self) -> LaneSchedule:
        return LaneSchedule(self.modes.modes, self.macs)

    def steps_per_beat(self, mode: int) -> int:
        return self.schedule.steps_per_beat(self._mode_number(mode))

    def groups_per_beat(self, mode: int) -> int:
        return self.schedule.groups_per_beat(self._mode_number(mode))

    @property
    def weight_beat_bits(self) -> int:
        """Bits of a weights beat: per PE row its values and padded offset fields, the
        mode number and ``last``."""
        s = self.schedule
        row = s.beat_values * self.width + sum(s.offset_fields(r) * s.offset_bits(r)
                                               for r in range(s.num_ranks))
        return self.rows * row + self.modes.mode_bits + 1

    @property
    def act_beat_bits(self) -> int:
        """Bits of an activations beat: per PE column, the beat's groups, each in a slot
        of the largest group size."""
        s = self.schedule
        return self.cols * s.max_groups_per_beat * s.region_size * self.width

    def weight_beat_layout(self) -> data.StructLayout:
        from .flex import flex_weight_beat_layout
        return flex_weight_beat_layout(self)

    def act_beat_layout(self) -> data.ArrayLayout:
        from .flex import flex_act_beat_layout
        return flex_act_beat_layout(self)

    @property
    def selector_mux_bits(self) -> int:
        """Data inputs of one PE's lane muxes (``LaneSchedule.mux_inputs``), in bits."""
        return self.schedule.mux_inputs * self.width

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
        return self.weight_beat_bits + self.act_beat_bits

    @property
    def name(self) -> str:
        """e.g. ``hssflex_4-4.4-5.4-6.4-7_4-4.2-4.1-4_m8_4x4_s8``."""
        ranks = "_".join(".".join(f"{a.g}-{a.h}" for a in alts)
                         for alts in self.modes.alternatives)
        return (f"hssflex_{ranks}_m{self.macs}_{self.rows}x{self.cols}_"
                f"{'s' if self.signed else 'u'}{self.width}")


def is_flexible(modes: ModeSet | Pattern | str, macs: int | None = None) -> bool:
    """Does a build of ``modes`` on ``macs`` multipliers per PE (None: the default) need
    the flexible RTL? Several modes do; one mode does only on multipliers other than its
    pattern's ``prod(G)`` (its groups then take several steps, or a step several groups)."""
    modes = ModeSet.coerce(modes)
    return not modes.is_single or (macs is not None and macs != modes.mode(0).slots)


def build_config(modes: ModeSet | Pattern | str, rows: int = 4, cols: int = 4, width: int = 8,
                 signed: bool = True, max_k: int = 4096, acc_width: int | None = None,
                 macs: int | None = None, tile_rows: int | None = None) -> ArrayConfig:
    """The config of a build, ``FlexConfig``'s arguments: an ``AcceleratorConfig`` where
    ``is_flexible`` says the fixed RTL runs it, else a ``FlexConfig``. Checked eagerly as
    both are."""
    modes = ModeSet.coerce(modes)
    if is_flexible(modes, macs):
        return FlexConfig(modes, rows, cols, width, signed, max_k, acc_width, macs, tile_rows)
    return AcceleratorConfig(modes.mode(0), rows, cols, width, signed, max_k, acc_width,
                             tile_rows)
