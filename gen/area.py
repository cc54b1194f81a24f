"""Area of a build: the flows of ``synth`` on the accelerator, its dense twin and the
decompressor, and the per-level breakdown that shows where the sparsity tax goes."""
from __future__ import annotations

import re
from pathlib import Path

import synth
from synth.flows import area_nand2_composed, ecp5_composed

from .emit import DECOMPRESSOR, TOP

__all__ = ["CATEGORIES", "COMPOSE_ABOVE_PES", "PE_MODULE", "breakdown", "pe_count",
           "synthesize_design"]

#: Above this many PEs the NAND2 area comes from ``synth.flows.area_nand2_composed`` (each
#: distinct module mapped once, the hierarchy composed from instance counts) instead of
#: ``synth.area_nand2`` (every module instance mapped): 8x8 and up. Up to 4x4 the flow is the
#: one the committed results were made with, so their numbers stay exactly as they were
#: (composition moves the total by under 0.1 %, from ABC mapping a module under another
#: name, see sim_tests/test_synth_compose.py), and it costs there at most ~30 s.
COMPOSE_ABOVE_PES = 16

#: A PE's module (bare name), whether its own or shared: ECP5 composition keeps it whole.
PE_MODULE = r"\.pe_\d+_\d+$"
# the row steering of a flexible build (``hdl.flex.RowSteer``)
_LANE_STEERING = re.compile(r"^module\s+\\?\S*\.steer_\d+\s*\(", re.MULTILINE)
# ``  \hss_accelerator.array.pe_0_1 pe_3_2 (``: the instantiation of a PE, whether each
# PE has its own module or shares one (``gen.emit.SHARE_MODULES_ABOVE_PES``)
_PE_INSTANCE = re.compile(r"^\s+\\?\S+\s+pe_\d+_\d+\s*\(", re.MULTILINE)


def pe_count(verilog: str) -> int:
    """The PE instances in an emitted accelerator."""
    return len(_PE_INSTANCE.findall(verilog))

# Module names follow the Amaranth hierarchy: hss_accelerator.array.pe_<i>_<j>.<part>; a
# flexible build adds lane muxes in each PE, steering per row and region windows per column.
_RULES = [
    (re.compile(r"\.sel_r(\d+)_\d+$"), lambda m: f"selectors rank {m.group(1)}"),
    (re.compile(r"\.lane_select$"), lambda m: "selectors: lane muxes"),
    (re.compile(r"\.steer_\d+$"), lambda m: "selectors: row steering"),
    (re.compile(r"\.window_\d+$"), lambda m: "selectors: column windows"),
    (re.compile(r"\.mul$"), lambda m: "multipliers"),
    (re.compile(r"\.(reduce|acc)$"), lambda m: "reduction and accumulators"),
    (re.compile(r"\.pe_\d+_\d+$"), lambda m: "PE pipeline (enables)"),
]
#: Breakdown rows: combinational area per level; every flip-flop goes to "registers".
CATEGORIES = ("multipliers", "reduction and accumulators", "PE pipeline (enables)",
              "control and tile buffer", "registers")


def _category(module: str) -> str:
    for pattern, name in _RULES:
        m = pattern.search(module)
        if m:
            return name(m)
    return "control and tile buffer"


def breakdown(area: dict) -> dict[str, float]:
    """NAND2-eq per level: selectors of each rank, multipliers, reduction and accumulators,
    pipeline enables, control; flip-flops of all levels under "registers". Sums to the
    hierarchy total."""
    rows: dict[str, float] = {}
    for name, mod in area["modules"].items():
        key = _category(name)
        rows[key] = rows.get(key, 0.0) + mod["comb_area"] * mod["instances"]
        rows["registers"] = rows.get("registers", 0.0) + mod["seq_area"] * mod["instances"]
    selectors = sorted((k for k in rows if k.startswith("selectors")), reverse=True)
    ordered = {k: round(rows[k], 2) for k in selectors}
    ordered.update({k: round(rows.get(k, 0.0), 2) for k in CATEGORIES})
    return ordered


def _generic(verilog: str, top: str, work: Path, fast: bool,
             timeout: float | None = None, compose: bool | None = None) -> dict:
    if compose is None:
        compose = pe_count(verilog) > COMPOSE_ABOVE_PES
    flow = area_nand2_composed if compose else synth.area_nand2
    area = flow(verilog, top, work, fast=fast, timeout=timeout)
    rows = breakdown(area)
    total = area["total"]
    selector = sum(v for k, v in rows.items() if k.startswith("selectors"))
    return {
        "nand2_eq": round(total["area"], 2),
        "comb_nand2_eq": round(total["comb_area"], 2),
        "seq_nand2_eq": round(total["seq_area"], 2),
        "flip_flops": total["ff_count"],
        "transistors": total["transistors"],
        "selector_nand2_eq": round(selector, 2),
        "selector_share": round(selector / total["area"], 4) if total["area"] else 0.0,
        "breakdown": rows,
        "cells": total["cells"],
        # only when composed, so that the reports of small builds stay as they were
        **({"composed": area["composed"]} if "composed" in area else {}),
    }


def synthesize_design(verilog: str, work: Path, targets, fmax: bool, limits=None, *,
                      top: str = TOP, fast: bool = False, device: str = "85k",
                      compose: bool | None = None) -> dict:
    """Run the requested flows on one accelerator; each flow in its own subfolder.

    ``compose``: the NAND2 area by ``synth.flows.area_nand2_composed`` and the ECP5
    resources by ``synth.flows.ecp5_composed`` with each PE kept whole (True), by
    ``synth.area_nand2`` and ``synth.ecp5`` (False), or (None, the default) composed above
    ``COMPOSE_ABOVE_PES`` PEs; a composed result carries ``"composed"`` (how the total was
    made). The breakdown has the same keys and meaning either way. A composed ECP5 count
    keeps one copy per PE of registers that the flat flow merges between PEs (+12 % FFs
    at 2x2, +19 % at 4x4 for 4:6,2:4; LUT4 +0.8 %, +1.0 %; carries and multipliers equal).
    A flexible build's ECP5 resources stay flat: with its row steering and lane muxes in
    one network the flat mapping takes 35 % more LUT4 than the composed one (HighLight's
    set, 2x2), so composing would misstate them.

    ``limits``: ``{"timeout": s, "pnr_timeout": s}``, the time limit of each Yosys run and
    of place and route (none by default)."""
    limits = limits or {}
    timeout = limits.get("timeout")
    out: dict = {}
    if "generic" in targets:
        out["generic"] = _generic(verilog, top, work / "generic", fast, timeout, compose)
    if "ecp5" in targets:
        if compose is None:
            compose = pe_count(verilog) > COMPOSE_ABOVE_PES
        if compose and not _LANE_STEERING.search(verilog):
            r = ecp5_composed(verilog, top, work / "ecp5", keep=PE_MODULE, timeout=timeout)
        else:
            r = synth.ecp5(verilog, top, work / "ecp5", timeout=timeout)
        out["ecp5"] = {k: r[k] for k in ("lut4", "ff", "mult18x18d", "ccu2c")}
        if "composed" in r:
            out["ecp5"]["composed"] = r["composed"]
    if "ice40" in targets:
        r = synth.ice40(verilog, top, work / "ice40", timeout=timeout)
        out["ice40"] = {k: r[k] for k in ("lut4", "ff", "mac16", "carry")}
    if fmax:
        r = synth.fmax_ecp5(verilog, top, work / "fmax_ecp5", device=device, wrap=True,
                            timeout=timeout, pnr_timeout=limits.get("pnr_timeout"))
        out["fmax"] = {"fmax_mhz": r["fmax_mhz"], "device": r["device"],
                       "target_mhz": r["target_mhz"], "met": r["met"],
                       "critical_path": r["critical_path"]}
    return out


def synthesize_decompressor(verilog: str, work: Path, timeout: float | None = None) -> dict:
    area = synth.area_nand2(verilog, DECOMPRESSOR, work, timeout=timeout)
    return {"nand2_eq": round(area["total"]["area"], 2),
            "flip_flops": area["total"]["ff_count"],
            "transistors": area["total"]["transistors"]}
