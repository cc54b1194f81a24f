"""Energy per action: a replaceable table, the actions a run performs, and their energy.

The table holds each component's energy at a reference width and how it scales with width,
the way Accelergy's Aladdin models scale (a multiplier quadratically, adders, registers and
muxes linearly). The default, ``energy_45nm.json``, is at 45 nm (Horowitz's ISSCC 2014
multiply and add, Aladdin's register and mux bits); ``energy_aladdin_40nm.json`` takes every
component from Aladdin. Each names its sources; a user's table is a JSON file of the same
shape (``EnergyTable.load``).

``ActionCounts`` is what one run did, in units the table prices: multiplies with a nonzero
weight, lane-steps gated because the weight slot is zero, lane-cycles with no step at all
(stalls, pipeline fill), mux input bits switched by the selectors, register bits written,
adder bits, stream bits. ``energy`` prices them into a breakdown. Pure Python: the hardware's
structure per PE step comes in as a ``PEShape`` from the hardware config.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import HSSError

__all__ = ["EnergyError", "EnergyTable", "PEShape", "ActionCounts", "EnergyBreakdown",
           "energy", "DEFAULT_TABLE", "ALADDIN_TABLE"]

DEFAULT_TABLE = Path(__file__).with_name("energy_45nm.json")
#: The alternative table: Aladdin's 40 nm components throughout (a multiplier about 4x
#: Horowitz's at int8).
ALADDIN_TABLE = Path(__file__).with_name("energy_aladdin_40nm.json")
ACTIONS = ("multiply", "gated_multiply", "add", "register_bit", "mux2_bit", "stream_bit")
SCALES = {"linear": 1, "quadratic": 2}


class EnergyError(HSSError):
    """A malformed energy table or impossible counts (one line)."""


@dataclass(frozen=True)
class _Entry:
    energy_pj: float
    width: int
    scale: str

    def at(self, width: int) -> float:
        """pJ of one action at ``width`` bits."""
        return self.energy_pj * (width / self.width) ** SCALES[self.scale]


@dataclass(frozen=True)
class EnergyTable:
    """pJ per action, each at a reference width with a width scaling rule."""
    name: str
    source: str
    technology_nm: float
    entries: dict

    @classmethod
    def load(cls, path: str | Path = DEFAULT_TABLE) -> EnergyTable:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as e:
            raise EnergyError(f"energy table {path}: {e.strerror or e}") from None
        except json.JSONDecodeError as e:
            raise EnergyError(f"energy table {path} is not JSON: {e}") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data, where: str = "energy table") -> EnergyTable:
        if not isinstance(data, dict):
            raise EnergyError(f"{where}: expected an object with name, source, "
                              f"technology_nm and actions")
        for key in ("name", "source", "technology_nm", "actions"):
            if key not in data:
                raise EnergyError(f"{where}: missing {key!r}")
        actions = data["actions"]
        if not isinstance(actions, dict):
            raise EnergyError(f"{where}: 'actions' must be an object")
        missing = [a for a in ACTIONS if a not in actions]
        if missing:
            raise EnergyError(f"{where}: missing actions {', '.join(missing)} (needs "
                              f"{', '.join(ACTIONS)})")
        unknown = sorted(set(actions) - set(ACTIONS))
        if unknown:
            raise EnergyError(f"{where}: unknown actions {', '.join(unknown)} (known: "
                              f"{', '.join(ACTIONS)})")
        entries = {}
        for name in ACTIONS:
            entries[name] = _entry(actions[name], f"{where}: action {name!r}")
        tech = data["technology_nm"]
        if not isinstance(tech, (int, float)) or isinstance(tech, bool) or not tech > 0:
            raise EnergyError(f"{where}: technology_nm must be a positive number, got {tech!r}")
        return cls(str(data["name"]), str(data["source"]), float(tech), entries)

    def pj(self, action: str, width: int = 1) -> float:
        """Energy of one ``action`` at ``width`` bits (1 for per-bit actions)."""
        if action not in self.entries:
            raise EnergyError(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
        return self.entries[action].at(width)


def _entry(raw, where: str) -> _Entry:
    if not isinstance(raw, dict):
        raise EnergyError(f"{where} must be an object with energy_pj, width and scale")
    e, w, s = raw.get("energy_pj"), raw.get("width"), raw.get("scale", "linear")
    if not isinstance(e, (int, float)) or isinstance(e, bool) or not (e >= 0 and
                                                                        math.isfinite(e)):
        raise EnergyError(f"{where}: energy_pj must be a number >= 0, got {e!r}")
    if not isinstance(w, int) or isinstance(w, bool) or w < 1:
        raise EnergyError(f"{where}: width must be a positive integer, got {w!r}")
    if s not in SCALES:
        raise EnergyError(f"{where}: scale must be one of {', '.join(SCALES)}, got {s!r}")
    return _Entry(float(e), w, s)


@dataclass(frozen=True)
class PEShape:
    """What one PE does per step, from the hardware's structure.

    ``lanes`` multipliers of ``width`` bits; ``selectors``: (level, 2:1 mux bits) of each
    level of selection, e.g. ("rank 1", 256) (an n-input mux of w bits is (n-1)*w mux2
    bits); ``register_bits`` pipeline register bits written; ``adds``: the width of each add
    (adder tree and accumulator).
    """
    lanes: int
    width: int
    selectors: tuple[tuple[str, int], ...]
    register_bits: int
    adds: tuple[int, ...]

    @property
    def mux2_bits(self) -> int:
        return sum(bits for _, bits in self.selectors)


@dataclass(frozen=True)
class ActionCounts:
    """What a run did. ``multiplies + gated`` = lanes x PEs x steps; ``idle`` lane-cycles
    had no step."""
    multiplies: int
    gated: int
    idle: int
    steps: int          # PE steps, of one PE (every PE steps together)
    cycles: int
    pes: int
    stream_bits: int

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise EnergyError(f"{f.name} must be a non-negative integer, got {v!r}")

    @classmethod
    def of_run(cls, pe: PEShape, pes: int, steps: int, cycles: int, multiplies: int,
               stream_bits: int) -> ActionCounts:
        """Counts of a run whose PEs stepped ``steps`` times in ``cycles`` cycles and
        multiplied ``multiplies`` nonzero weights; every other lane-step was gated."""
        slots = pe.lanes * pes * steps
        if multiplies > slots:
            raise EnergyError(f"{multiplies} multiplies do not fit {slots} lane-steps")
        if cycles < steps:
            raise EnergyError(f"{cycles} cycles are fewer than {steps} steps")
        return cls(multiplies, slots - multiplies, pe.lanes * pes * (cycles - steps), steps,
                   cycles, pes, stream_bits)


@dataclass(frozen=True)
class EnergyBreakdown:
    """pJ by where it is spent; ``selectors_by_level`` splits ``selectors`` (e.g. by rank)."""
    multipliers: float
    selectors: float
    registers: float
    accumulate: float
    stream_io: float
    selectors_by_level: tuple[tuple[str, float], ...] = ()

    @property
    def total(self) -> float:
        return (self.multipliers + self.selectors + self.registers + self.accumulate
                + self.stream_io)

    def as_dict(self) -> dict:
        """Every part and the total, in pJ (levels as ``selectors <level>``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name != "selectors_by_level"}
        out.update({f"selectors {level}": pj for level, pj in self.selectors_by_level})
        out["total"] = self.total
        return out


def energy(counts: ActionCounts, pe: PEShape, table: EnergyTable) -> EnergyBreakdown:
    """Price a run. Idle lane-cycles cost what a gated lane costs (clock-gated multiplier);
    selectors, registers and adders work on every step of every PE."""
    t, c = table, counts
    per_step = c.steps * c.pes
    return EnergyBreakdown(
        multipliers=(c.multiplies * t.pj("multiply", pe.width)
                     + (c.gated + c.idle) * t.pj("gated_multiply", pe.width)),
        selectors=per_step * pe.mux2_bits * t.pj("mux2_bit"),
        selectors_by_level=tuple((level, per_step * bits * t.pj("mux2_bit"))
                                 for level, bits in pe.selectors),
        registers=per_step * pe.register_bits * t.pj("register_bit"),
        accumulate=per_step * sum(t.pj("add", bits) for bits in pe.adds),
        stream_io=c.stream_bits * t.pj("stream_bit"))
