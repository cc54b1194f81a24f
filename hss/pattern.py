"""HSS patterns: parsing, validation and the derived sizes every other module uses.

A pattern is written outermost rank first (``"4:6,2:4"``: rank 1 = 4:6, rank 0 = 2:4), but
"rank r" always counts from the innermost rank, as in ``shared/HSS.md``.
Whitespace around numbers and commas is accepted (``" 4 : 6 , 2:4"`` is ``4:6,2:4``);
everything else that is not ``G:H`` with integers ``1 <= G <= H`` is rejected.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from .errors import HSSError

__all__ = ["PatternError", "Rank", "Pattern", "parse_rank", "check_rank"]

_INT = re.compile(r"[0-9]+")


class PatternError(HSSError):
    """A malformed or invalid pattern (message quotes the input and names the rank)."""


@dataclass(frozen=True)
class Rank:
    """One G:H level: at most ``g`` of every ``h`` positions are kept."""
    g: int
    h: int

    def __str__(self) -> str:
        return f"{self.g}:{self.h}"

    @property
    def dense(self) -> bool:
        """``G == H``: every position is kept, nothing to select or store."""
        return self.g == self.h

    @property
    def offset_bits(self) -> int:
        """Bits of one stored offset; 0 for a dense rank."""
        return 0 if self.dense else max(1, math.ceil(math.log2(self.h)))


@dataclass(frozen=True)
class Pattern:
    """A hierarchical structured sparsity pattern.

    ``ranks`` is outermost first, exactly as written; ``rank(r)`` indexes from the
    innermost rank (rank 0).
    """
    ranks: tuple[Rank, ...]

    def __post_init__(self):
        if not isinstance(self.ranks, tuple) or not self.ranks:
            raise PatternError("a pattern needs at least one G:H rank")
        text = ",".join(f"{r.g}:{r.h}" for r in self.ranks)
        for i, rank in enumerate(self.ranks):
            number = len(self.ranks) - 1 - i
            if not isinstance(rank, Rank) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in (rank.g, rank.h)):
                raise PatternError(f"rank {number}: G and H must be integers in {text!r}")
            check_rank(rank.g, rank.h, f"rank {number}", text)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> Pattern:
        """Parse ``"G:H,G:H,..."`` (outermost first) with precise error messages."""
        if not isinstance(text, str):
            raise PatternError(f"pattern must be a string like '4:6,2:4', got {text!r}")
        if not text.strip():
            raise PatternError(f"empty pattern {text!r}: expected G:H ranks like '4:6,2:4'")
        parts = text.split(",")
        ranks = []
        for i, part in enumerate(parts):
            number = len(parts) - 1 - i
            if part.strip() == "":
                raise PatternError(f"rank {number}: empty rank in {text!r} (stray comma?)")
            ranks.append(parse_rank(part, f"rank {number}", text))
        return cls(tuple(ranks))

    @classmethod
    def coerce(cls, pattern: Pattern | str) -> Pattern:
        """Accept a Pattern or its string form."""
        return pattern if isinstance(pattern, Pattern) else cls.parse(pattern)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranks)

    # -- per rank (r counts from the innermost rank) ------------------------------------
    @property
    def num_ranks(self) -> int:
        return len(self.ranks)

    def rank(self, r: int) -> Rank:
        """Rank number ``r`` (0 = innermost)."""
        if not 0 <= r < self.num_ranks:
            raise IndexError(f"pattern {self} has no rank {r}")
        return self.ranks[self.num_ranks - 1 - r]

    @property
    def G(self) -> tuple[int, ...]:
        """G per rank, innermost first (``G[0]`` is G0)."""
        return tuple(self.rank(r).g for r in range(self.num_ranks))

    @property
    def H(self) -> tuple[int, ...]:
        """H per rank, innermost first (``H[0]`` is H0)."""
        return tuple(self.rank(r).h for r in range(self.num_ranks))

    def span(self, r: int) -> int:
        """Elements in one rank-r block: ``H0 * ... * H_r`` (``span(-1) == 1``)."""
        return math.prod(self.H[:r + 1])

    def kept(self, r: int) -> int:
        """Kept rank-r positions per group: ``G(N-1) * ... * G_r`` (= offsets stored)."""
        return math.prod(self.G[r:])

    def blocks(self, r: int) -> int:
        """Rank-r blocks per group, kept or not: ``S / span(r)``."""
        return self.group_size // self.span(r)

    def offset_bits(self, r: int) -> int:
        """Bits per stored rank-r offset (0 when the rank is dense)."""
        return self.rank(r).offset_bits

    def metadata_bits_of_rank(self, r: int) -> int:
        return self.kept(r) * self.offset_bits(r)

    # -- whole pattern ---------------------------------------------------------------
    @property
    def density(self) -> Fraction:
        """Maximum fraction of nonzeros, ``prod(G/H)``."""
        return Fraction(math.prod(self.G), math.prod(self.H))

    @property
    def sparsity(self) -> Fraction:
        return 1 - self.density

    @property
    def speedup_limit(self) -> Fraction:
        """Step reduction over a dense PE with as many multipliers: ``prod(H/G)``."""
        return 1 / self.density

    @property
    def group_size(self) -> int:
        """S = prod(H): elements of one group, the unit the hardware consumes."""
        return math.prod(self.H)

    @property
    def slots(self) -> int:
        """prod(G): stored values per group = multipliers of one PE."""
        return math.prod(self.G)

    @property
    def metadata_bits(self) -> int:
        """Offset bits per group, all ranks."""
        return sum(self.metadata_bits_of_rank(r) for r in range(self.num_ranks))

    def group_bits(self, value_bits: int) -> int:
        """Bits of one compressed group: values plus metadata."""
        return self.slots * value_bits + self.metadata_bits

    def bits_per_element(self, value_bits: int) -> Fraction:
        """Storage per dense element, metadata included (4:6,2:4 int8: 92/24)."""
        return Fraction(self.group_bits(value_bits), self.group_size)

    @property
    def is_dense(self) -> bool:
        return all(r.dense for r in self.ranks)

    def dense_twin(self) -> Pattern:
        """The dense pattern with the same multipliers per PE: ``prod(G):prod(G)``."""
        return Pattern((Rank(self.slots, self.slots),))

    def slot_offsets(self, slot: int) -> tuple[int, ...]:
        """Which kept position of each rank (innermost first) slot ``slot`` occupies."""
        out = []
        for g in self.G:
            out.append(slot % g)
            slot //= g
        return tuple(out)

    def offset_index(self, r: int, slot: int) -> int:
        """Index into the rank-r offsets of a group for value slot ``slot``."""
        return slot // math.prod(self.G[:r])


def parse_rank(part: str, where: str, text: str, error: type[PatternError] = PatternError,
               hint: str = "ranks are separated by commas") -> Rank:
    """One ``G:H`` (whitespace tolerated), or ``error`` naming ``where`` and quoting ``text``.

    Shared with ``ModeSet.parse``, which passes ``where="rank 1, alternative 2"``.
    """
    fields = [f.strip() for f in part.split(":")]
    if len(fields) != 2:
        raise error(f"{where}: {part.strip()!r} is not G:H in {text!r} ({hint})")
    for name, field in zip("GH", fields):
        if not _INT.fullmatch(field):
            raise error(f"{where}: {name}={field!r} is not a positive integer in {text!r}")
    g, h = int(fields[0]), int(fields[1])
    check_rank(g, h, where, text, error)
    return Rank(g, h)


def check_rank(g: int, h: int, where: str, text: str,
               error: type[PatternError] = PatternError) -> None:
    """``1 <= G <= H``, or ``error`` naming ``where`` and quoting ``text``."""
    if h < 1:
        raise error(f"{where}: H={h} must be at least 1 in {text!r}")
    if g < 1:
        raise error(f"{where}: G={g} must be at least 1 in {text!r}")
    if g > h:
        raise error(f"{where}: G={g} exceeds H={h} in {text!r}")
