"""Mode sets: the patterns one flexible build supports at run time (``shared/HSS.md``).

Written like a pattern, outermost rank first, with each rank's ``G:H`` alternatives separated
by ``|``: ``"4:4|4:5|4:6|4:7,4:4|2:4|1:4"`` is HighLight's set. A build supports every
combination of one alternative per rank (the cross product); each combination is a *mode*,
an ordinary :class:`Pattern`. A plain pattern string is a set with one mode.

Numbering, fixed because hardware carries the mode number on its stream:

- ranks count from the innermost (rank 0), as in :meth:`Pattern.rank`;
- alternatives count from 0 in the order written, as in ``alternatives_of(r)[k]``;
- modes count in mixed radix over the alternative numbers, the outermost rank most
  significant (the order of ``itertools.product`` over the written alternatives): in the
  HighLight set mode 0 is ``4:4,4:4``, mode 1 ``4:4,2:4``, mode 3 ``4:5,4:4``, mode 11
  ``4:7,1:4``. Reordering alternatives therefore gives a different (unequal) mode set.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

from .pattern import Pattern, PatternError, Rank, check_rank, parse_rank

__all__ = ["ModeSetError", "ModeSet"]

_EXAMPLE = "'4:4|4:5|4:6|4:7,4:4|2:4|1:4'"


class ModeSetError(PatternError):
    """A malformed mode set, or a pattern that is not one of its modes (one line)."""


@dataclass(frozen=True)
class ModeSet:
    """The sparsity patterns one build supports: per rank, the ``G:H`` alternatives.

    ``alternatives`` is outermost rank first, exactly as written; the order of the
    alternatives inside a rank is significant (it numbers the modes).
    """
    alternatives: tuple[tuple[Rank, ...], ...]

    def __post_init__(self):
        alts = self.alternatives
        if not isinstance(alts, tuple) or not alts:
            raise ModeSetError("a mode set needs at least one rank: a tuple of tuples of Rank")
        for i, rank_alts in enumerate(alts):
            number = len(alts) - 1 - i
            if not isinstance(rank_alts, tuple) or not rank_alts or not all(
                    isinstance(a, Rank) for a in rank_alts):
                raise ModeSetError(
                    f"rank {number}: alternatives must be a non-empty tuple of Rank, "
                    f"got {rank_alts!r}")
        text = _spell(alts)
        for i, rank_alts in enumerate(alts):
            number = len(alts) - 1 - i
            for k, alt in enumerate(rank_alts):
                where = f"rank {number}, alternative {k}"
                if not all(isinstance(v, int) and not isinstance(v, bool)
                           for v in (alt.g, alt.h)):
                    raise ModeSetError(f"{where}: G and H must be integers in {text!r}")
                check_rank(alt.g, alt.h, where, text, ModeSetError)
            _check_distinct(rank_alts, number, text)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> ModeSet:
        """Parse ``"G:H|G:H,G:H|..."`` (outermost rank first) with precise error messages."""
        if not isinstance(text, str):
            raise ModeSetError(f"mode set must be a string like {_EXAMPLE}, got {text!r}")
        if not text.strip():
            raise ModeSetError(
                f"empty mode set {text!r}: expected G:H alternatives like {_EXAMPLE}")
        parts = text.split(",")
        alts = []
        for i, part in enumerate(parts):
            number = len(parts) - 1 - i
            if not part.strip():
                raise ModeSetError(f"rank {number}: empty rank in {text!r} (stray comma?)")
            pieces = part.split("|")
            rank_alts = []
            for k, piece in enumerate(pieces):
                # a rank without alternatives reads as in a plain pattern
                where = f"rank {number}" + (f", alternative {k}" if len(pieces) > 1 else "")
                if not piece.strip():
                    raise ModeSetError(f"{where}: empty alternative in {text!r} (stray '|'?)")
                rank_alts.append(parse_rank(
                    piece, where, text, ModeSetError,
                    "alternatives are separated by '|', ranks by commas" if len(pieces) > 1
                    else "ranks are separated by commas"))
            _check_distinct(rank_alts, number, text)
            alts.append(tuple(rank_alts))
        return cls(tuple(alts))

    @classmethod
    def from_pattern(cls, pattern: Pattern | str) -> ModeSet:
        """The one-mode set of a single pattern."""
        return cls(tuple((r,) for r in Pattern.coerce(pattern).ranks))

    @classmethod
    def coerce(cls, modes: ModeSet | Pattern | str) -> ModeSet:
        """Accept a ModeSet, a Pattern (one mode) or the string form of either."""
        if isinstance(modes, ModeSet):
            return modes
        if isinstance(modes, Pattern):
            return cls.from_pattern(modes)
        return cls.parse(modes)

    def __str__(self) -> str:
        return _spell(self.alternatives)

    # -- per rank (r counts from the innermost rank) ------------------------------------
    @property
    def num_ranks(self) -> int:
        return len(self.alternatives)

    def alternatives_of(self, r: int) -> tuple[Rank, ...]:
        """The alternatives of rank ``r`` (0 = innermost), in the order written."""
        if not 0 <= r < self.num_ranks:
            raise IndexError(f"mode set {self} has no rank {r}")
        return self.alternatives[self.num_ranks - 1 - r]

    def offset_bits(self, r: int) -> int:
        """Width of the rank-``r`` offset field: the widest alternative's, so every mode fits."""
        return max(a.offset_bits for a in self.alternatives_of(r))

    # -- the modes --------------------------------------------------------------------
    def __len__(self) -> int:
        return math.prod(len(a) for a in self.alternatives)

    @cached_property
    def modes(self) -> tuple[Pattern, ...]:
        """Every mode, by mode number (see the module docstring for the order)."""
        return tuple(self.mode(i) for i in range(len(self)))

    def __iter__(self):
        return iter(self.modes)

    def mode(self, i: int) -> Pattern:
        """The pattern of mode number ``i`` (``0 <= i < len(self)``)."""
        i = operator.index(i)
        if not 0 <= i < len(self):
            raise IndexError(f"mode set {self} has no mode {i} (it has {len(self)})")
        picks = []
        for rank_alts in reversed(self.alternatives):   # innermost = least significant
            i, k = divmod(i, len(rank_alts))
            picks.append(rank_alts[k])
        return Pattern(tuple(reversed(picks)))

    def index(self, pattern: Pattern | str) -> int:
        """The mode number of ``pattern``: what the hardware carries on its stream.

        A malformed pattern string raises PatternError; a valid pattern that is not a mode
        raises ModeSetError naming the set and the first rank that does not allow it.
        """
        p = Pattern.coerce(pattern)
        if p.num_ranks != self.num_ranks:
            raise ModeSetError(
                f"{str(p)!r} is not a mode of {str(self)!r}: it has {p.num_ranks} ranks, "
                f"the modes have {self.num_ranks}")
        i = 0
        for pos, (rank, rank_alts) in enumerate(zip(p.ranks, self.alternatives)):
            if rank not in rank_alts:
                raise ModeSetError(
                    f"{str(p)!r} is not a mode of {str(self)!r}: rank "
                    f"{self.num_ranks - 1 - pos} allows {'|'.join(map(str, rank_alts))}, "
                    f"not {rank}")
            i = i * len(rank_alts) + rank_alts.index(rank)
        return i

    def __contains__(self, pattern) -> bool:
        """Patterns and pattern strings; a malformed string raises PatternError."""
        if not isinstance(pattern, (Pattern, str)):
            return False
        p = Pattern.coerce(pattern)
        return p.num_ranks == self.num_ranks and all(
            rank in rank_alts for rank, rank_alts in zip(p.ranks, self.alternatives))

    @property
    def mode_bits(self) -> int:
        """Bits of the mode number field, ``ceil(log2(len))``: 0 when there is one mode."""
        return (len(self) - 1).bit_length()

    @property
    def is_single(self) -> bool:
        """One mode: a fixed-pattern build, no mode field."""
        return len(self) == 1

    # -- sizing facts of a flexible datapath ----------------------------------------------
    # Ranks choose independently among positive values, so each extreme over the modes is
    # the product of the per-rank extremes: no need to enumerate the modes.
    @property
    def max_slots(self) -> int:
        """Largest prod(G) over the modes: multipliers per PE, value slots per step."""
        return math.prod(max(a.g for a in alts) for alts in self.alternatives)

    @property
    def min_slots(self) -> int:
        """Smallest prod(G): the mode that uses fewest multipliers per group."""
        return math.prod(min(a.g for a in alts) for alts in self.alternatives)

    @property
    def max_density(self) -> Fraction:
        """Densest mode's density (1 iff a dense mode exists)."""
        return math.prod((max(Fraction(a.g, a.h) for a in alts) for alts in self.alternatives),
                         start=Fraction(1))

    @property
    def min_density(self) -> Fraction:
        """Sparsest mode's density: its 1/density is the largest speed-up limit of the build."""
        return math.prod((min(Fraction(a.g, a.h) for a in alts) for alts in self.alternatives),
                         start=Fraction(1))

    @property
    def max_group_size(self) -> int:
        """Largest S = prod(H) over the modes: the activations one group step may need."""
        return math.prod(max(a.h for a in alts) for alts in self.alternatives)

    @property
    def densities(self) -> tuple[Fraction, ...]:
        """Density of each mode, by mode number."""
        return tuple(m.density for m in self.modes)

    @property
    def contains_dense(self) -> bool:
        """Some mode has density 1 (every rank offers a G == H alternative)."""
        return all(any(a.dense for a in alts) for alts in self.alternatives)

    def dense_twin(self) -> Pattern:
        """The baseline for speed-up and sparsity tax: ``max_slots:max_slots``.

        A dense array with as many multipliers as the build; a mode reaches its 1/density
        speed-up against it only if it keeps all ``max_slots`` multipliers busy. For a
        one-mode set it is ``Pattern.dense_twin()``.
        """
        return Pattern((Rank(self.max_slots, self.max_slots),))


def _spell(alternatives) -> str:
    return ",".join("|".join(str(a) for a in alts) for alts in alternatives)


def _check_distinct(rank_alts, number: int, text: str) -> None:
    """A repeated alternative would give two mode numbers to one pattern."""
    for k, alt in enumerate(rank_alts):
        if alt in rank_alts[:k]:
            raise ModeSetError(
                f"rank {number}, alternative {k}: duplicate {alt} in {text!r} "
                f"(already alternative {rank_alts.index(alt)})")


# The two helpers below are Pattern.parse's rank syntax and validation with the place
# ("rank 1, alternative 2") and the error class as parameters. They belong in pattern.py,
# where Pattern.parse would call them with where=f"rank {number}"; until then they are kept
# word for word with its messages (sim_tests/test_hss_modes.py checks the wording matches).
