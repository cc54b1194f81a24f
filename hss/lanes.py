"""How one flexible PE with a fixed number of multipliers (lanes) runs every mode of a set.

The problem: modes differ in values per group (``P = prod(G)``) and group size ``S``, but the
PE has ``macs`` multipliers that must stay busy in every mode. So a *beat* (one compressed
unit on the weights stream) holds ``macs / P`` whole groups when ``P <= macs``, and one group
consumed over ``P / macs`` steps (*phases*) when ``P > macs``: every step feeds all lanes.

Which value goes to which lane decides what each lane's activation mux must reach. Lanes are
tied to the outermost rank's kept blocks: lane ``k`` serves kept top block ``i = k % T``
(``T`` = the outermost G, the same in every mode) in *row* ``u = k // T``. Row ``u`` reads
its own *region* of the activation window, a copy of one group's activations (group
``u // Q`` when a beat holds several groups, ``Q = P / T`` values per top block; the one
group otherwise), and takes inner slot ``q = u % Q`` (or ``phase * rows + u``). So in every
mode lane ``k`` picks among the same few positions: the top offsets of kept block ``i``
(``H - G + 1`` of them) times the inner positions, instead of the whole window. This is the
HighLight principle under flexibility: the rank-1 choice stays an ``(H-G+1):1`` choice per
lane, and changing the rank-0 ratio only changes which region copy and inner slot a lane
takes (VEGETA-style steering, done once per PE row and column, not per PE).

Requirements (checked, one-line errors): every mode has the same number of ranks; ``T``
divides ``macs``; and for every mode ``P`` divides ``macs`` or ``macs`` divides ``P`` (so no
lane idles). Where the outermost G differs between modes, ``T`` is 1 (see ``top_kept``).

Pure Python: the hardware (``hdl.flex``) and the test vectors both follow this object.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property

from .errors import HSSError
from .pattern import Pattern

__all__ = ["LaneSchedule", "LaneError", "default_macs"]


class LaneError(HSSError, ValueError):
    """A mode set that a flexible PE of this size cannot run with every lane busy."""


@dataclass(frozen=True)
class LaneSchedule:
    """The lane mapping of ``modes`` (Patterns, in mode-number order) on ``macs`` lanes."""
    modes: tuple[Pattern, ...]
    macs: int

    def __post_init__(self):
        modes = tuple(Pattern.coerce(p) for p in self.modes)
        object.__setattr__(self, "modes", modes)
        if not modes:
            raise LaneError("a lane schedule needs at least one mode")
        if not isinstance(self.macs, int) or isinstance(self.macs, bool) or self.macs < 1:
            raise LaneError(f"macs must be a positive integer, not {self.macs!r}")
        ranks = {p.num_ranks for p in modes}
        if len(ranks) != 1:
            raise LaneError(f"modes have different numbers of ranks: {', '.join(map(str, modes))}")
        if self.macs % self.top_kept:
            raise LaneError(f"{self.macs} multipliers per PE are not a multiple of the "
                            f"outermost rank's G={self.top_kept}")
        for p in modes:
            if self.macs % p.slots and p.slots % self.macs:
                raise LaneError(f"mode {p} has {p.slots} values per group, which neither "
                                f"divides nor is a multiple of {self.macs} multipliers per PE")

    # ---- sizes ------------------------------------------------------------------------
    @property
    def num_ranks(self) -> int:
        return self.modes[0].num_ranks

    @property
    def top_kept(self) -> int:
        """T: kept blocks of the outermost rank per group when every mode keeps the same
        number; else 1 (as if a 1:1 rank sat on top: each lane is its own row and its mux
        spans whole groups, correct but without the saving at the top rank)."""
        tops = {p.G[-1] for p in self.modes}
        return tops.pop() if len(tops) == 1 else 1

    @property
    def rows(self) -> int:
        """Lane rows, each with its own region of the activation window: ``macs / T``."""
        return self.macs // self.top_kept

    def inner_slots(self, mode: int) -> int:
        """Q: values per kept top block in ``mode``."""
        return self.modes[mode].slots // self.top_kept

    def groups_per_beat(self, mode: int) -> int:
        """Whole groups in one beat (1 when a group spans several steps)."""
        return max(1, self.macs // self.modes[mode].slots)

    def steps_per_beat(self, mode: int) -> int:
        """Phases (PE steps) one beat takes (1 when a beat holds whole groups)."""
        return max(1, self.modes[mode].slots // self.macs)

    @property
    def max_groups_per_beat(self) -> int:
        return max(self.groups_per_beat(m) for m in range(len(self.modes)))

    @property
    def max_steps_per_beat(self) -> int:
        return max(self.steps_per_beat(m) for m in range(len(self.modes)))

    @property
    def region_size(self) -> int:
        """Activations per region and per group slot of a beat: the largest S."""
        return max(p.group_size for p in self.modes)

    @property
    def beat_values(self) -> int:
        """Value fields of a weights beat: ``max(macs, largest P)``."""
        return max(self.macs, max(p.slots for p in self.modes))

    def offset_fields(self, r: int) -> int:
        """Rank-r offset fields of a weights beat: the most any mode's beat carries (0 when
        rank r is dense in every mode: nothing to store)."""
        return max(self.groups_per_beat(m) * (0 if p.rank(r).dense else p.kept(r))
                   for m, p in enumerate(self.modes))

    def offset_bits(self, r: int) -> int:
        """Width of a rank-r offset field: the widest alternative of rank r."""
        return max(p.offset_bits(r) for p in self.modes)

    # ---- the mapping ------------------------------------------------------------------
    def lane(self, mode: int, phase: int, k: int) -> tuple[int, int]:
        """(group of the beat, canonical slot in that group) that lane ``k`` multiplies in
        step ``phase`` of a beat of ``mode``."""
        if not 0 <= phase < self.steps_per_beat(mode):
            raise LaneError(f"phase {phase} out of range for mode {self.modes[mode]}")
        t, q_per = self.top_kept, self.inner_slots(mode)
        i, u = k % t, k // t                 # with t == 1: i == 0, and i * q_per == 0
        if self.steps_per_beat(mode) == 1:
            group, q = u // q_per, u % q_per
        else:
            group, q = 0, phase * self.rows + u
        return group, i * q_per + q

    def region_group(self, mode: int, u: int) -> int:
        """The beat group whose activations region ``u`` holds in ``mode``."""
        return u // self.inner_slots(mode) if self.steps_per_beat(mode) == 1 else 0

    def position(self, mode: int, slot: int, offsets) -> int:
        """Position in its group (and region) of ``slot``, given the group's canonical
        offsets ``offsets[r]`` (a sequence per rank, innermost first; dense ranks may be
        None)."""
        p = self.modes[mode]
        kept = p.slot_offsets(slot)
        pos = 0
        for r in range(p.num_ranks):
            o = kept[r] if p.rank(r).dense else offsets[r][p.offset_index(r, slot)]
            pos += o * p.span(r - 1)
        return pos

    def positions_of(self, mode: int, slot: int) -> tuple[int, ...]:
        """Every position ``slot`` can take under canonical (increasing) offsets: kept
        position ``i`` of a rank lies in ``[i, i + H - G]``."""
        p = self.modes[mode]
        kept = p.slot_offsets(slot)
        windows = [range(kept[r], kept[r] + p.H[r] - p.G[r] + 1) for r in range(p.num_ranks)]
        return tuple(sorted({sum(o * p.span(r - 1) for r, o in enumerate(combo))
                             for combo in itertools.product(*windows)}))

    @cached_property
    def candidates(self) -> tuple[tuple[int, ...], ...]:
        """Per lane, the sorted region positions its activation mux must reach (the union
        over modes and phases): the lane mux is this wide, no wider."""
        out = []
        for k in range(self.macs):
            reach = set()
            for m in range(len(self.modes)):
                for phase in range(self.steps_per_beat(m)):
                    reach.update(self.positions_of(m, self.lane(m, phase, k)[1]))
            out.append(tuple(sorted(reach)))
        return tuple(out)

    @property
    def mux_inputs(self) -> int:
        """Activation-mux inputs of one PE, summed over lanes (values, not bits)."""
        return sum(len(c) for c in self.candidates)

    def describe(self) -> str:
        return (f"{self.macs} lanes = {self.rows} rows x {self.top_kept} top blocks; "
                f"beats of {self.beat_values} values; regions of {self.region_size}; "
                f"{self.mux_inputs / self.macs:.1f} activations per lane mux on average")

    def ideal_steps(self, mode: int, groups: int) -> int:
        """PE steps for ``groups`` groups of ``mode``: beats x phases."""
        g = self.groups_per_beat(mode)
        return math.ceil(groups / g) * self.steps_per_beat(mode)


def default_macs(modes) -> int:
    """Multipliers per PE when the user does not choose: the smallest valid count at or
    above the geometric middle of the modes' values per group (``sqrt(min P * max P)``).
    A single pattern gets its own ``prod(G)`` (today's fixed build); HighLight's set gets 8:
    its 2:4 modes run one group per step, the dense ones two steps per group, the 1:4 ones
    two groups per step, and the fixed 4:6,2:4 build it is compared with has 8 as well."""
    modes = tuple(Pattern.coerce(p) for p in modes)
    slots = [p.slots for p in modes]
    m = math.isqrt(min(slots) * max(slots) - 1) + 1     # ceil(sqrt(...))
    limit = math.lcm(*slots, modes[0].G[-1])
    while m <= limit:
        try:
            LaneSchedule(modes, m)
            return m
        except LaneError:
            m += 1
    return LaneSchedule(modes, limit).macs              # raises the reason when none fits
