"""The results of a run as typed objects: what report.json holds and report.md shows.

``build_report(plan, vectors, sim, area, board)`` computes every figure of a run once, here:
formatting (``gen.report``) computes nothing. One path for every build: a build has a mode
set (a fixed pattern is a set of one mode), its modes are listed, each layer runs in a mode
or as a TASD decomposition into modes. Each object's ``to_json()`` is its part of
report.json: its fields by name, floats rounded as ``_DIGITS`` says, optional parts left out
when absent.

The energy of a layer is computed from its counts where they are taken (``layer_energy``):
the testbench's counts of what the RTL's streams carried when it ran, else the golden
model's, each priced by ``hss.energy`` for the design and for its dense twin on the same
GEMM.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

import numpy as np

from hdl.top import last_beat_latency
from hss.energy import ActionCounts, EnergyError, energy

from .simulate import rerun_command

__all__ = ["Report", "ModeResult", "LayerResult", "Decomposed", "Testbench", "Energy",
           "EnergyPart", "LayerEnergy", "RunEnergy", "SparsityTax", "Area", "AreaPart",
           "FlowResults", "build_report", "ratio"]


def ratio(a, b, digits: int = 4):
    """``a / b`` rounded, None when either is missing or ``b`` is 0."""
    return round(a / b, digits) if a is not None and b else None


def _meta(digits=None, omit_none=False, key=None):
    return field(default=None, metadata=dict(digits=digits, omit_none=omit_none, key=key))


class _Result:
    """``to_json``: the fields of a result dataclass by name (``key`` renames one), nested
    results as theirs, floats rounded to the field's ``digits``, ``omit_none`` fields left
    out when None."""

    def to_json(self) -> dict:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("omit_none") and value is None:
                continue
            out[f.metadata.get("key") or f.name] = _json(value, f.metadata.get("digits"))
        return out


def _json(value, digits=None):
    if isinstance(value, _Result):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [_json(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: _json(v, digits) for k, v in value.items()}
    if isinstance(value, float) and digits is not None:
        return round(value, digits)
    return value


# -- the build and its modes ------------------------------------------------------------------
@dataclass(frozen=True)
class ModeResult(_Result):
    """One mode of the build: its pattern, what it promises, what the run did in it."""
    mode: int
    pattern: str
    density: str
    density_value: float = _meta(6)
    group_size: int = None
    speedup_limit: float = _meta(4)
    groups_per_beat: int = None
    steps_per_beat: int = None
    bits_per_group: int = None
    bits_per_element: float = _meta(4)
    steps: int | None = None            # the steps the run's layers took in this mode
    cycles: int | None = None           # ... and their measured cycles (all measured)
    #: throughput per area vs the dense twin at this mode's speed-up limit (with synthesis)
    throughput_per_area_vs_dense: float | None = _meta(4, omit_none=True)


def _modes(config) -> list[ModeResult]:
    return [ModeResult(m, str(p), str(p.density), float(p.density), p.group_size,
                       float(p.speedup_limit), config.groups_per_beat(m),
                       config.steps_per_beat(m), p.group_bits(config.width),
                       float(p.bits_per_element(config.width)))
            for m, p in enumerate(config.modes.modes)]


# -- layers -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decomposed(_Result):
    """What a decomposition kept and left: a layer's TASD terms, or the one term ``--prune``
    projected W onto (the same measure: relative Frobenius error after each term)."""
    decomposition: str
    requested: str                    # what was asked: the spec, "auto", or the pruned mode
    terms: list[str]
    nonzeros: list[int]
    weights_nonzeros: int
    error: float = _meta(6)
    errors: list[float] = _meta(6)
    max_abs_error: int | float = None
    exact: bool = None
    max_error: float | None = _meta(omit_none=True)     # the budget of ``auto``
    #: ``auto``: the choice takes fewer steps than dense on the same multipliers
    saves: bool | None = _meta(omit_none=True)
    #: ``auto`` with a choice that saves nothing: the candidate of lowest error among
    #: those cheaper than dense, its error and its steps (vs ``dense_steps``) per row
    best_saving: dict | None = _meta(omit_none=True)


def _decomposed(result, requested: str, W, max_error=None, choice=None) -> Decomposed:
    best = None
    if choice is not None and not choice.saves and choice.best_saving is not None:
        best = {"decomposition": str(choice.best_saving.decomposition),
                "error": round(choice.best_saving.error, 6),
                "steps": choice.best_saving_steps, "dense_steps": choice.dense_steps}
    return Decomposed(str(result.decomposition), requested,
                      [str(p) for p in result.decomposition.terms], list(result.nonzeros),
                      int(np.count_nonzero(W)), result.error, list(result.errors),
                      result.max_abs_error, result.exact, max_error,
                      choice.saves if choice is not None else None, best)


@dataclass(frozen=True)
class LayerResult(_Result):
    """One GEMM of the run: its mode (or decomposition), shape, steps, measured cycles and
    the speed-up over a dense PE with the same multipliers."""
    mode: str
    m: int
    k: int
    n: int
    padded_k: int
    tiles: int
    steps: int
    cycles: int | None
    dense_pe_cycles: int
    speedup_vs_dense: float = _meta(4)
    speedup_limit: float = _meta(4)
    tasd: Decomposed | None = _meta(omit_none=True)
    prune: Decomposed | None = _meta(omit_none=True)

    @property
    def cycles_or_steps(self) -> int:
        return self.cycles if self.cycles is not None else self.steps


def _layers(plan, vectors, sim) -> list[LayerResult]:
    c = plan.config
    measured = sim.layer_cycles if sim is not None else ()
    rows = []
    for i, (layer, v) in enumerate(zip(plan.layers, vectors)):
        # dense PE steps, same multipliers (a plain layer's K padded as its mode pads it)
        dense = v.tiles * -(-(layer.padded_k if layer.tasd is None else layer.k) // c.macs)
        cycles = measured[i] if i < len(measured) else None
        terms = layer.tasd.decomposition.terms if layer.tasd is not None else (layer.pattern,)
        tasd = prune = None
        if layer.tasd is not None:
            tasd = _decomposed(layer.tasd, layer.source["tasd"], layer.W,
                               layer.source.get("max_error"), layer.choice)
        if layer.pruned is not None:
            prune = _decomposed(layer.pruned, str(layer.pattern),
                                layer.pruned.terms[0] + layer.pruned.residual)
        rows.append(LayerResult(layer.label, v.m, v.k, v.n, layer.padded_k, v.tiles, v.steps,
                                cycles, dense, ratio(dense, cycles if cycles else v.steps),
                                float(1 / sum(p.density for p in terms)), tasd, prune))
    return rows


# -- the testbench ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Testbench(_Result):
    """The simulation's verdict and cycles; of a traced run its waveforms; of a failing one
    its first mismatching tile and the command that runs it again traced. Paths are relative
    to the output folder, which stays relocatable."""
    simulator: str
    passed: bool
    cycles: int
    ideal_cycles: int
    cycles_over_ideal: float = _meta(4)
    dense_pe_cycles: int = None
    waves: str | None = _meta(omit_none=True)
    #: a failing run: ``mismatches``, ``messages`` (the testbench's MISMATCH / OVERFLOW /
    #: TIMEOUT lines), ``first_mismatch`` (``SimResult.first_mismatch``: None when no tile
    #: mismatched, e.g. a timeout), ``stalls`` and ``rerun``; report.json has them inline
    failure: dict | None = _meta(omit_none=True)

    def to_json(self) -> dict:
        out = super().to_json()
        return out | out.pop("failure", {})


def _testbench(plan, sim, layers: list[LayerResult]) -> Testbench:
    simulator = plan.options.sim
    failure = None if sim.passed else dict(
        mismatches=sim.mismatches, messages=list(sim.messages),
        first_mismatch=sim.first_mismatch, stalls=sim.stalls,
        rerun=rerun_command("tb", simulator, sim.stalls))
    return Testbench(simulator, sim.passed, sim.cycles, sim.ideal, ratio(sim.cycles, sim.ideal),
                     sum(l.dense_pe_cycles for l in layers),
                     f"tb/{sim.waves.name}" if sim.waves is not None else None, failure)


# -- energy -----------------------------------------------------------------------------------
_PARTS = ("multipliers", "selectors", "registers", "accumulate", "stream_io")


@dataclass(frozen=True)
class Energy(_Result):
    """pJ by where it is spent, of one design on one layer or over the run, with the counts
    it was priced from and what follows: EDP (pJ x cycles), pJ per multiply and per tile."""
    multipliers: float = _meta(3)
    selectors: float = _meta(3)
    registers: float = _meta(3)
    accumulate: float = _meta(3)
    stream_io: float = _meta(3)
    #: ``selectors`` by level, e.g. {"rank 1": pJ, "rank 0": pJ} (report.json:
    #: ``"selectors rank 1"``)
    selector_levels: dict = None
    total: float = _meta(3)
    steps: int = None
    cycles: int = None
    tiles: int = None
    multiplies: int = None
    gated_lane_steps: int | None = _meta(omit_none=True)
    idle_lane_cycles: int | None = _meta(omit_none=True)
    stream_bits: int | None = _meta(omit_none=True)

    @property
    def edp_pj_cycles(self) -> float:
        return self.total * self.cycles

    @property
    def pj_per_multiply(self) -> float | None:
        return self.total / self.multiplies if self.multiplies else None

    @property
    def pj_per_tile(self) -> float | None:
        return self.total / self.tiles if self.tiles else None

    def to_json(self) -> dict:
        out = super().to_json()
        levels = out.pop("selector_levels")
        at = list(out).index("total")
        items = list(out.items())
        items[at:at] = [(f"selectors {k}", round(v, 3)) for k, v in levels.items()]
        out = dict(items)
        out.update(edp_pj_cycles=round(self.edp_pj_cycles, 1),
                   pj_per_multiply=ratio(self.total, self.multiplies),
                   pj_per_tile=ratio(self.total, self.tiles, 3))
        return out

    @classmethod
    def summed(cls, parts: list[Energy]) -> Energy:
        """The run's energy: each part and count summed over its layers."""
        levels = {}
        for e in parts:
            for k, v in e.selector_levels.items():
                levels[k] = levels.get(k, 0.0) + v
        return cls(**{k: sum(getattr(e, k) for e in parts) for k in _PARTS},
                   selector_levels=levels, total=sum(e.total for e in parts),
                   **{k: sum(getattr(e, k) for e in parts)
                      for k in ("steps", "cycles", "tiles", "multiplies")})


def _priced(config, counts: dict, cycles: int, table) -> Energy:
    """A run's actions priced by the energy table. ``counts``: beats, tiles, steps and
    multiplies; lane-cycles beyond the steps (stalls) are idle, priced as gated."""
    pe = config.pe_shape
    stream = (counts["beats"] * config.beat_bits
              + counts["tiles"] * (config.rows * config.cols * config.acc_width + 1))
    actions = ActionCounts.of_run(pe, config.rows * config.cols, counts["steps"], cycles,
                                  counts["multiplies"], stream)
    b = energy(actions, pe, table)
    return Energy(**{k: getattr(b, k) for k in _PARTS},
                  selector_levels=dict(b.selectors_by_level), total=b.total,
                  steps=counts["steps"], cycles=cycles, tiles=counts["tiles"],
                  multiplies=counts["multiplies"], gated_lane_steps=actions.gated,
                  idle_lane_cycles=actions.idle, stream_bits=stream)


@dataclass(frozen=True)
class LayerEnergy(_Result):
    """One layer's energy, of the design and of its dense twin on the same GEMM; ``counts``
    says whose counts priced the design ("rtl": the testbench's, "golden": the model's)."""
    counts: str
    rtl_counts_match_golden: bool | None
    design: Energy
    dense_twin: Energy

    @property
    def energy_ratio(self) -> float | None:
        return ratio(self.design.total, self.dense_twin.total)

    @property
    def edp_ratio(self) -> float | None:
        return ratio(self.design.edp_pj_cycles, self.dense_twin.edp_pj_cycles)

    def to_json(self) -> dict:
        return super().to_json() | {"energy_ratio": self.energy_ratio,
                                    "edp_ratio": self.edp_ratio}


def layer_energy(plan, layer, vectors, actions: dict | None, cycles: int | None) -> LayerEnergy:
    """The energy of one layer from its counts: ``actions`` (the testbench's ``ACTIONS``
    of the layer: beats, tiles, PE steps taken and nonzero weight values of the accepted
    beats, each multiplied in every PE of its row) and its measured ``cycles`` when it ran,
    else the golden model's counts from ``vectors``. The dense twin computes W @ A exactly,
    in ceil(K / multipliers) steps per tile. Every lane-step without a nonzero weight is
    gated. Counts no PE array can produce (a failing design) fall back to the golden ones,
    flagged."""
    c, table, v = plan.config, plan.energy_table, vectors
    twin = c.dense_twin()
    tile_cols = -(-v.n // c.cols)
    nonzeros = sum(int(np.count_nonzero(w)) for w, _ in layer.segments) * tile_cols
    golden = {"beats": v.beats, "tiles": v.tiles, "steps": v.steps, "nonzero": nonzeros}
    counted = None if actions is None else {
        "beats": actions["wbeats"], "tiles": actions["tiles"], "steps": actions["steps"],
        "nonzero": actions["nonzero"]}
    used = counted or golden
    steps_cycles = max(counted["steps"], cycles) if counted and cycles is not None else v.steps
    try:
        design = _priced(c, dict(used, multiplies=used["nonzero"] * c.cols), steps_cycles, table)
    except EnergyError:
        counted, steps_cycles = None, v.steps
        design = _priced(c, dict(golden, multiplies=nonzeros * c.cols), steps_cycles, table)
    dense_steps = v.tiles * -(-v.k // twin.macs)
    dense = _priced(twin, {"beats": dense_steps, "tiles": v.tiles, "steps": dense_steps,
                           "multiplies": int(np.count_nonzero(layer.W)) * tile_cols * c.cols},
                    dense_steps, table)
    match = (counted == golden) if counted else (False if actions is not None else None)
    return LayerEnergy("rtl" if counted else "golden", match, design, dense)


@dataclass(frozen=True)
class EnergyPart:
    """A row of the energy breakdown: pJ of the design and of its dense twin, their ratio."""
    name: str
    level: bool                       # a level of ``selectors``
    design: float
    dense_twin: float | None
    ratio: float | None


@dataclass(frozen=True)
class RunEnergy(_Result):
    """Every layer's energy and the run's; the table that priced them."""
    table: dict
    counts: str                       # "rtl" when the testbench counted, else "golden"
    rtl_counts_match_golden: bool | None
    layers: list[LayerEnergy]
    total: dict                       # design, dense_twin: Energy; their ratios

    @property
    def design(self) -> Energy:
        return self.total["design"]

    @property
    def dense_twin(self) -> Energy:
        return self.total["dense_twin"]

    @property
    def energy_ratio(self) -> float | None:
        return ratio(self.design.total, self.dense_twin.total)

    @property
    def edp_ratio(self) -> float | None:
        return ratio(self.design.edp_pj_cycles, self.dense_twin.edp_pj_cycles)

    @property
    def per_tile_ratio(self) -> float | None:
        return ratio(self.design.pj_per_tile, self.dense_twin.pj_per_tile)

    @property
    def per_multiply_ratio(self) -> float | None:
        return ratio(self.design.pj_per_multiply, self.dense_twin.pj_per_multiply)

    @property
    def cycles_ratio(self) -> float | None:
        return ratio(self.design.cycles, self.dense_twin.cycles)

    @property
    def parts(self) -> list[EnergyPart]:
        """The run's energy by part, design against dense twin (selector levels after
        ``selectors``; a part the twin lacks is None)."""
        d, t = self.design, self.dense_twin
        rows = []
        for name in _PARTS:
            rows.append(EnergyPart(name.replace("_", " "), False, getattr(d, name),
                                   getattr(t, name), ratio(getattr(d, name), getattr(t, name))))
            if name == "selectors":
                rows += [EnergyPart(f"selectors {level}", True, pj,
                                    t.selector_levels.get(level),
                                    ratio(pj, t.selector_levels.get(level)))
                         for level, pj in d.selector_levels.items()]
        return rows

    def to_json(self) -> dict:
        out = super().to_json()
        out["total"] = {"design": self.design.to_json(),
                        "dense_twin": self.dense_twin.to_json(),
                        "energy_ratio": self.energy_ratio, "edp_ratio": self.edp_ratio}
        for who in ("design", "dense_twin"):       # totals: counts only, not lane details
            for key in ("gated_lane_steps", "idle_lane_cycles", "stream_bits"):
                out["total"][who].pop(key, None)
        return out


def _run_energy(plan, vectors, sim) -> RunEnergy:
    table = plan.energy_table
    measured = sim.layer_actions if sim is not None else []
    cycles = sim.layer_cycles if sim is not None else ()
    layers = [layer_energy(plan, layer, v, measured[i] if i < len(measured) else None,
                           cycles[i] if i < len(cycles) else None)
              for i, (layer, v) in enumerate(zip(plan.layers, vectors))]
    total = {who: Energy.summed([getattr(l, who) for l in layers])
             for who in ("design", "dense_twin")}
    return RunEnergy({"name": table.name, "source": table.source,
                      "technology_nm": table.technology_nm},
                     "rtl" if measured else "golden",
                     all(l.rtl_counts_match_golden is True for l in layers) if measured
                     else None, layers, total)


# -- area and the sparsity tax ----------------------------------------------------------------
@dataclass(frozen=True)
class FlowResults(_Result):
    """One design's synthesis results, as ``gen.area`` returns them: NAND2-eq area and its
    breakdown (``generic``), ECP5 / iCE40 resources, Fmax."""
    generic: dict | None = _meta(omit_none=True)
    ecp5: dict | None = _meta(omit_none=True)
    ice40: dict | None = _meta(omit_none=True)
    fmax: dict | None = _meta(omit_none=True)

    @property
    def nand2_eq(self) -> float | None:
        return self.generic["nand2_eq"] if self.generic else None

    @property
    def lut4(self) -> int | None:
        return self.ecp5["lut4"] if self.ecp5 else None

    @property
    def fmax_mhz(self) -> float | None:
        return self.fmax["fmax_mhz"] if self.fmax else None


@dataclass(frozen=True)
class Area(_Result):
    """The design's, its dense twin's and (fixed builds, with the generic flow) the
    decompressor's synthesis results."""
    design: FlowResults
    dense_twin: FlowResults
    decompressor: dict | None = _meta(omit_none=True)

    @classmethod
    def of(cls, area: dict) -> Area:
        flows = ("generic", "ecp5", "ice40", "fmax")
        return cls(*(FlowResults(**{k: area[who].get(k) for k in flows})
                     for who in ("design", "dense_twin")), area.get("decompressor"))

    @property
    def nand2_breakdown(self) -> list[AreaPart]:
        """NAND2-eq by level of the design against its dense twin (levels either has)."""
        if not self.design.generic or not self.dense_twin.generic:
            return []
        d, t = self.design.generic["breakdown"], self.dense_twin.generic["breakdown"]
        return [AreaPart(k, d.get(k, 0.0), t.get(k, 0.0),
                         ratio(d.get(k, 0.0), t.get(k, 0.0), 3))
                for k in list(d) + [k for k in t if k not in d]]

    def to_json(self) -> dict:
        out = {"design": self.design.to_json(), "dense_twin": self.dense_twin.to_json()}
        if self.decompressor is not None:
            out["decompressor"] = self.decompressor
        return out


@dataclass(frozen=True)
class AreaPart:
    """A row of the NAND2-eq breakdown: the design's, its dense twin's, their ratio."""
    level: str
    design: float
    dense_twin: float
    ratio: float | None


@dataclass(frozen=True)
class SparsityTax(_Result):
    """Ratios of the design against its dense twin (same multipliers): area, selector share,
    throughput per area (at the best mode's speed-up limit, and as this run's layers ran:
    their dense PE cycles over their cycles), LUT4 and Fmax."""
    area_ratio: float | None = _meta(4, omit_none=True)
    selector_share: float | None = _meta(omit_none=True)
    throughput_per_area_vs_dense: float | None = _meta(4, omit_none=True)
    best_mode: str | None = _meta(omit_none=True)
    run_throughput_per_area_vs_dense: float | None = _meta(4, omit_none=True)
    lut4_ratio: float | None = _meta(4, omit_none=True)
    fmax_ratio: float | None = _meta(4, omit_none=True)


def tax(design: FlowResults, dense: FlowResults, speedup_limit: float | None,
        run_speedup: float | None = None, best_mode: str | None = None) -> SparsityTax:
    """The sparsity tax of ``design`` against its dense twin ``dense``."""
    area = ratio(design.nand2_eq, dense.nand2_eq)
    share = design.generic["selector_share"] if design.generic and area else None
    return SparsityTax(
        area, share, ratio(speedup_limit, area) if area and speedup_limit else None,
        best_mode if area else None, ratio(run_speedup, area) if area and run_speedup else None,
        ratio(design.lut4, dense.lut4), ratio(design.fmax_mhz, dense.fmax_mhz))


# -- the report -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Report(_Result):
    """What a run built and found. ``status``: "pass" or "fail" (the testbench's verdict),
    or "generated (not simulated)" with ``--sim none``."""
    pattern: str
    flexible: bool
    status: str
    array: dict
    values: dict
    multipliers_per_pe: int
    latency: int
    lanes: dict | None = _meta(omit_none=True)
    modes: list[ModeResult] = None
    layers: list[LayerResult] = None
    energy: RunEnergy = None
    testbench: Testbench | None = _meta(omit_none=True)
    area: Area | None = _meta(omit_none=True)
    sparsity_tax: SparsityTax | None = _meta(omit_none=True)
    system: dict | None = _meta(omit_none=True)
    board: dict | None = _meta(omit_none=True)          # last: a board build adds it

    @property
    def steps(self) -> int:
        return sum(l.steps for l in self.layers)

    @property
    def dense_pe_cycles(self) -> int:
        return sum(l.dense_pe_cycles for l in self.layers)

    @property
    def run_speedup(self) -> float:
        """The run's dense PE cycles over its cycles (steps where it was not simulated)."""
        return self.dense_pe_cycles / sum(l.cycles_or_steps for l in self.layers)


def _lanes(config) -> dict | None:
    if not config.flexible:
        return None
    s = config.schedule
    return {"rows": s.rows, "top_kept": s.top_kept, "mux_inputs_per_pe": s.mux_inputs,
            "window_per_lane": round(s.mux_inputs / config.macs, 2)}


def _system(plan, vectors, system) -> dict | None:
    """The report's ``system`` section: the ``hss_system`` of the build (``system``: the
    pipeline's ``SystemBuild``) or why there is none; its buffers and other memories
    (``synth.memories``); with a workload of the user's (``--shape``, ``--weights``), each
    layer's DRAM traffic and roofline bound as ``hss.system`` models them."""
    if system is None:
        return None
    if system.config is None:
        return {"refused": system.refused}
    from hss.system import SystemModelError, split_layer
    from synth.memories import SOURCES
    c, m = system.config, system.manifest
    out = {"parameters": m["parameters"], "register_map": m["register_map"],
           "interfaces": _interfaces(m["ports"]),
           "memories": [x.to_json() for x in system.memories],
           "memory_bits": sum(x.bits for x in system.memories),
           "memory_brams": sum(x.brams for x in system.memories),
           "memory_nand2_eq": round(sum(x.nand2_eq for x in system.memories), 1),
           "memory_sources": list(SOURCES)}
    o = plan.options
    if not (o.weights or o.shape):
        return out
    shape, layers = c.shape, []
    for layer, v in zip(plan.layers, vectors):
        m_tiles = -(-int(layer.W.shape[0]) // c.engine.rows)
        n_tiles = -(-int(layer.A.shape[1]) // c.engine.cols)
        bpt = v.beats // v.tiles
        entry = {"m_tiles": m_tiles, "n_tiles": n_tiles, "beats_per_tile": bpt}
        try:
            split = split_layer(m_tiles, n_tiles, bpt, shape, steps_per_tile=v.steps_per_tile)
        except SystemModelError as e:
            layers.append({**entry, "refused": str(e)})
            continue
        k = split.counts
        compute = k.compute_cycles
        layers.append({**entry, "descriptors": len(split.parts), "order": split.order,
                       "dram_read_bytes": k.dram_read_bytes,
                       "dram_write_bytes": k.dram_write_bytes, "dram_bytes": k.dram_bytes,
                       "minimum_dram_bytes": split.minimum_dram_bytes,
                       "over_minimum": ratio(k.dram_bytes, split.minimum_dram_bytes),
                       "compute_cycles": compute, "dram_cycles": k.dram_cycles,
                       "cycles_lower_bound": max(compute, k.dram_cycles),
                       "bound": "DRAM" if k.dram_cycles > compute else "compute"})
    out["layers"] = layers
    return out


def _interfaces(port_list) -> dict:
    """Per interface of ``hss_system`` (``m_axi``, ``s_axil``...), its data width and
    signal count."""
    out = {}
    for p in port_list:
        entry = out.setdefault(p["interface"], {"signals": 0})
        entry["signals"] += 1
        if p.get("signal") in ("wdata", "rdata"):
            entry["data_bits"] = p["width"]
        if p.get("signal") in ("awaddr", "araddr"):
            entry["address_bits"] = p["width"]
    return out


def _system_run(plan, system_run) -> dict:
    """The system testbench's run (``gen.testbench.system.SystemRun``): its verdict, and per
    layer what the RTL's counters measured, the roofline it is held against and whether Z
    and the counters the golden model predicts are exact."""
    from gen.testbench.system import EXACT
    c = plan.system
    e = c.engine
    peak = e.rows * e.cols * e.macs                     # multipliers: products per cycle
    word = c.dma_bits // 8                              # DRAM bytes per cycle at most
    layers = []
    for layer in system_run.layers:
        k = layer.counters
        entry = {"exact": layer.exact}
        if layer.error is not None:
            entry["error"] = layer.error
        if k:
            multiplies = k["steps"] * peak
            dram = k["dram_read_bytes"] + k["dram_write_bytes"]
            intensity = multiplies / dram if dram else None
            roof = min(peak, intensity * word) if intensity is not None else peak
            achieved = multiplies / k["cycles"] if k["cycles"] else None
            entry.update({name: k[name] for name in ("cycles", "steps", "stall_weights",
                                                      "stall_acts", "stall_output")})
            entry.update({name: k[name] for name in EXACT if name != "steps"})
            entry.update(
                dram_bytes=dram, cycles_lower_bound=layer.bound,
                of_bound=ratio(layer.bound, k["cycles"]),
                multiplies=multiplies, multiplies_per_dram_byte=ratio(multiplies, dram, 3),
                multiplies_per_cycle=ratio(multiplies, k["cycles"], 3),
                roofline_multiplies_per_cycle=round(roof, 3),
                of_roofline=ratio(achieved, roof) if achieved is not None else None,
                counters_as_golden=all(k[n] == layer.model_counters[n] for n in EXACT))
        layers.append(entry)
    a = plan.options
    return {"simulator": a.sim, "passed": system_run.passed, "cycles": system_run.cycles,
            "dram_latency": a.dram_latency, "back_pressure_seed": a.stalls,
            "z_agrees_with_engine_testbench": system_run.agrees_with_engine,
            "peak_multiplies_per_cycle": peak, "dram_bytes_per_cycle": word,
            "layers": layers}


def build_report(plan, vectors, sim, area, board=None, system=None, system_run=None
                 ) -> Report:
    """The run's report: ``vectors`` the layers' ``GemmVectors``, ``sim`` the testbench's
    ``SimResult`` (None with ``--sim none``), ``area`` ``gen.area``'s results (None without
    synthesis), ``board`` the ``--board`` section, ``system`` the ``hss_system`` the run
    wrote (``gen.pipeline.SystemBuild``), ``system_run`` its testbench's run (None when it
    did not run)."""
    c = plan.config
    layers = _layers(plan, vectors, sim)
    modes = _modes(c)
    for m in modes:
        ran = [l for l in layers if l.mode == m.pattern]
        cycles = sum(l.cycles for l in ran) if ran and all(
            l.cycles is not None for l in ran) else None
        modes[m.mode] = dataclasses.replace(m, steps=sum(l.steps for l in ran) if ran else None,
                                            cycles=cycles)
    ran = [r.passed for r in (sim, system_run) if r is not None]
    status = "generated (not simulated)" if not ran else "pass" if all(ran) else "fail"
    system_section = _system(plan, vectors, system)
    if system_run is not None:
        system_section["testbench"] = _system_run(plan, system_run)
    report = Report(
        str(c.modes), c.flexible, status,
        {"rows": c.rows, "cols": c.cols, "multipliers": c.multipliers},
        {"width": c.width, "signed": c.signed, "acc_width": c.acc_width, "max_k": c.max_k},
        c.macs, last_beat_latency(c), _lanes(c), modes, layers, _run_energy(plan, vectors, sim),
        _testbench(plan, sim, layers) if sim is not None else None,
        system=system_section, board=board)
    if area is None:
        return report
    synthesized = Area.of(area)
    best = max(modes, key=lambda m: (m.speedup_limit, -m.mode))
    sparsity = tax(synthesized.design, synthesized.dense_twin, best.speedup_limit,
                   report.run_speedup, best.pattern)
    if sparsity.area_ratio:
        modes = [dataclasses.replace(m, throughput_per_area_vs_dense=ratio(
            m.speedup_limit, sparsity.area_ratio)) for m in modes]
    return dataclasses.replace(report, modes=modes, area=synthesized, sparsity_tax=sparsity)
