"""One accelerator configuration: pattern, array shape, number formats. Checked eagerly."""
from __future__ import annotations

from dataclasses import dataclass, field

from amaranth.hdl import Shape, signed, unsigned

from hss import Pattern, accumulator_bits, max_products

__all__ = ["AcceleratorConfig", "value_shape"]

MAX_ARRAY_SIDE = 64
MAX_VALUE_WIDTH = 32


def value_shape(width: int, is_signed: bool) -> Shape:
    return signed(width) if is_signed else unsigned(width)


def _check_int(name, value, lo, hi=None):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise ValueError(f"{name} must be {bound}, not {value}")


@dataclass(frozen=True)
class AcceleratorConfig:
    """What the generator builds.

    ``acc_width`` defaults to the narrowest accumulator that cannot overflow for K up to
    ``max_k`` (see ``hss.accumulator_bits``); a narrower explicit width may wrap.
    """
    pattern: Pattern
    rows: int = 4
    cols: int = 4
    width: int = 8
    signed: bool = True
    max_k: int = 4096
    acc_width: int | None = field(default=None)

    def __post_init__(self):
        if isinstance(self.pattern, str):
            object.__setattr__(self, "pattern", Pattern.parse(self.pattern))
        if not isinstance(self.pattern, Pattern):
            raise TypeError(f"pattern must be a Pattern or a string like '4:6,2:4', "
                            f"not {self.pattern!r}")
        _check_int("rows", self.rows, 1, MAX_ARRAY_SIDE)
        _check_int("cols", self.cols, 1, MAX_ARRAY_SIDE)
        _check_int("width", self.width, 2, MAX_VALUE_WIDTH)
        if not isinstance(self.signed, bool):
            raise TypeError(f"signed must be a bool, not {self.signed!r}")
        _check_int("max_k", self.max_k, 1)
        if self.acc_width is None:
            object.__setattr__(self, "acc_width", self.min_acc_width)
        _check_int("acc_width", self.acc_width, 2, 128)

    @property
    def value_shape(self) -> Shape:
        return value_shape(self.width, self.signed)

    @property
    def acc_shape(self) -> Shape:
        return value_shape(self.acc_width, self.signed)

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
                                 self.signed, self.max_k, self.acc_width)

    @property
    def name(self) -> str:
        """A file-system friendly name, e.g. ``hss_4-6_2-4_4x4_s8``."""
        ranks = "_".join(f"{r.g}-{r.h}" for r in self.pattern.ranks)
        return f"hss_{ranks}_{self.rows}x{self.cols}_{'s' if self.signed else 'u'}{self.width}"
