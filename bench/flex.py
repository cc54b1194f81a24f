"""What flexibility costs: HighLight's 12-mode set as one build, against its dense twin, each
fixed single-mode build, and a naive one-rank flexible build of the same 12 densities.

Per mode (Verilator, the emitted testbench, all 12 modes back to back in one run): cycles vs
the ideal at K = 4096, multiplier utilization, speed-up over the dense twin. Per design
(Yosys): NAND2-eq with the per-level breakdown, ECP5 LUT4/FF/MULT18, and with ``--fmax``
nextpnr Fmax on 2x2 arrays of the flexible, dense, naive and fixed 4:6,2:4 builds. Throughput per area is compared in absolute terms (dense-
equivalent MACs per cycle per NAND2-eq), since the fixed builds have ``prod(G)`` multipliers
per PE and the flexible ones 8.
"""
from __future__ import annotations

import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np

import hss
import synth
from gen.area import synthesize_design
from gen.emit import TOP, emit_verilog
from hdl import AcceleratorConfig
from hdl.config import FlexConfig

from .common import Table, progress, write_outputs

HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"
#: The same 12 densities with one rank and 8 multipliers: 8:8/d for d in HighLight's set.
NAIVE = "8:8|8:10|8:12|8:14|8:16|8:20|8:24|8:28|8:32|8:40|8:48|8:56"
MAX_K = 4096
FMAX_SIDE = 2
FMAX_TIMEOUT = 300


def _designs(side: int, quick: bool) -> list[tuple[str, str, object]]:
    """(name, kind, config) of every design, one accumulator width for all (the widest any
    needs at K = MAX_K), so that ratios isolate selection and steering."""
    hl = hss.ModeSet.parse(HIGHLIGHT)
    fixed = [str(p) for p in hl.modes] if not quick else ["4:6,2:4"]
    raw = [("flexible HSS", "flex", FlexConfig(hl, side, side, 8, True, MAX_K)),
           ("dense twin 8:8", "dense", AcceleratorConfig("8:8", side, side, 8, True, MAX_K))]
    if not quick:
        raw.append(("naive flexible", "naive", FlexConfig(NAIVE, side, side, 8, True, MAX_K)))
    raw += [(p, "fixed", AcceleratorConfig(p, side, side, 8, True, MAX_K)) for p in fixed]
    acc = max(c.acc_width for _, _, c in raw)
    return [(n, k, replace(c, acc_width=acc)) for n, k, c in raw]


def _area(job) -> dict:
    name, config, fmax = job
    with tempfile.TemporaryDirectory(prefix="bench-flex-") as work:
        texts, _ = emit_verilog(config)
        result = synthesize_design(texts[TOP], Path(work) / "array", ["generic", "ecp5"], False)
        if fmax:
            small = replace(config, rows=FMAX_SIDE, cols=FMAX_SIDE)
            try:
                result["fmax"] = synth.fmax_ecp5(emit_verilog(small)[0][TOP], TOP,
                                                 Path(work) / "fmax", device="45k", wrap=True,
                                                 timeout=FMAX_TIMEOUT)
            except synth.SynthError as e:
                if "timed out" not in str(e):
                    raise
                result["fmax"] = {"fmax_mhz": None, "critical_path": None}
    return result


def _cycles(config: FlexConfig, work: Path) -> list[dict]:
    """Every mode at K = MAX_K (one tile of the array each), back to back in one Verilator
    run of the emitted testbench; cycles per layer as the testbench measures them."""
    from gen.simulate import simulate
    from gen.testbench import write_testbench
    from hdl.stimulus import flex_gemm_vectors
    rng = np.random.default_rng(1)
    lo, hi = hss.value_range(config.width, config.signed)
    layers = []
    for mode, p in enumerate(config.modes.modes):
        W = hss.prune(rng.integers(lo, hi, (config.rows, MAX_K), endpoint=True), p)
        A = rng.integers(lo, hi, (MAX_K, config.cols), endpoint=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hss.PaddingWarning)
            layers.append(flex_gemm_vectors(config, W, A, mode))
    (work / "rtl").mkdir(parents=True)
    (work / "rtl" / f"{TOP}.v").write_text(emit_verilog(config)[0][TOP])
    write_testbench(work / "tb", layers, top=TOP, rtl_rel=f"../rtl/{TOP}.v")
    sim = simulate(work / "tb", "verilator")
    if not sim.passed or len(sim.layer_cycles) != len(layers):
        raise RuntimeError(f"the flexible build's testbench did not pass: see {sim.log}")
    rows = []
    for v, cycles in zip(layers, sim.layer_cycles):
        p = config.modes.mode(v.mode)
        dense_steps = v.tiles * -(-MAX_K // config.macs)
        rows.append({"mode": str(p), "density": p.density, "steps": v.steps,
                     "cycles": cycles, "dense": dense_steps,
                     "utilization": v.tiles * -(-MAX_K // p.group_size) * p.slots
                     / (cycles * config.macs)})
    return rows


def run(args) -> None:
    side = 2 if args.quick else 4
    designs = _designs(side, args.quick)
    flex = designs[0][2]
    with tempfile.TemporaryDirectory(prefix="bench-flex-cycles-") as work:
        progress(f"simulating the {len(flex.modes)} modes of {HIGHLIGHT} at K={MAX_K} in "
                 f"Verilator")
        cycles = _cycles(flex, Path(work))
    # place and route (minutes each) for the designs the comparison turns on
    jobs = [(name, config, args.fmax and (kind != "fixed" or name == "4:6,2:4"))
            for name, kind, config in designs]
    workers = args.jobs
    progress(f"synthesizing {len(jobs)} designs on a {side}x{side} array, {workers} at a "
             f"time{' with place and route' if args.fmax else ''}")
    with ProcessPoolExecutor(max_workers=workers) as pool:
        areas = {}
        for (name, _, _), r in zip(jobs, pool.map(_area, jobs)):
            progress(f"{name}: {r['generic']['nand2_eq']:.0f} NAND2-eq")
            areas[name] = r
    _write(args, designs, areas, cycles)


def _throughput(config, density) -> float:
    """Dense-equivalent MACs per cycle of the whole array in a mode of this density."""
    macs = config.macs
    return config.rows * config.cols * macs / float(density)


def _write(args, designs, areas, cycles) -> None:
    by = {name: (kind, config) for name, kind, config in designs}
    flex_name, dense_name = designs[0][0], designs[1][0]
    flex_area = areas[flex_name]["generic"]["nand2_eq"]
    dense_area = areas[dense_name]["generic"]["nand2_eq"]
    flex_cfg = by[flex_name][1]

    mode_rows = []
    for c in cycles:
        fixed = areas.get(c["mode"])
        tpa_flex = _throughput(flex_cfg, c["density"]) / flex_area
        tpa_dense = _throughput(by[dense_name][1], 1) / dense_area
        row = [c["mode"], str(c["density"]), c["steps"], c["cycles"],
               c["cycles"] / c["steps"], c["utilization"], c["dense"] / c["cycles"],
               float(1 / c["density"]), (c["dense"] / c["cycles"]) * c["density"],
               tpa_flex / tpa_dense]
        if fixed is not None:
            row.append(tpa_flex / (_throughput(by[c["mode"]][1], c["density"])
                                   / fixed["generic"]["nand2_eq"]))
        else:
            row.append(None)
        mode_rows.append(row)
    modes = Table("flex_modes", f"{HIGHLIGHT} on {flex_cfg.rows}x{flex_cfg.cols} PEs, "
                  f"{flex_cfg.macs} multipliers per PE, int8: every mode at K={MAX_K}",
                  ["mode", "density", "steps (ideal)", "cycles measured", "cycles / ideal",
                   "multiplier utilization", "speed-up vs dense twin", "speed-up limit",
                   "fraction of limit", "throughput/area vs dense twin",
                   "throughput/area vs fixed build of the mode"],
                  mode_rows, args.command, _mode_notes(mode_rows))
    write_outputs(modes, args.out, args.machine)

    area_rows = []
    for name, kind, config in designs:
        r = areas[name]
        g, e = r["generic"], r["ecp5"]
        macs = config.macs
        row = [name, kind, macs, g["nand2_eq"], round(g["selector_nand2_eq"]),
               f"{100 * g['selector_share']:.1f}", g["nand2_eq"] / dense_area,
               e["lut4"], e["ff"], e["mult18x18d"]]
        if args.fmax:
            f = r.get("fmax", {}).get("fmax_mhz")
            row += [f if f else "-" if "fmax" not in r else f"not routed in {FMAX_TIMEOUT} s",
                    f / areas[dense_name]["fmax"]["fmax_mhz"] if f else None]
        area_rows.append(row)
    levels = []
    compared = [n for n in (flex_name, dense_name, "naive flexible") if n in areas]
    for name in compared:
        levels += [k for k in areas[name]["generic"]["breakdown"] if k not in levels]
    breakdown = Table(
        "flex_breakdown", f"Where the area goes (NAND2-eq), {flex_cfg.rows}x{flex_cfg.cols} PEs",
        ["level"] + compared,
        [[k] + [round(areas[n]["generic"]["breakdown"].get(k, 0.0)) for n in compared]
         for k in levels if any(areas[n]["generic"]["breakdown"].get(k) for n in compared)]
        + [["total"] + [round(areas[n]["generic"]["nand2_eq"]) for n in compared]],
        args.command, ["Combinational area per level (Yosys hierarchy, synth/cells.lib); every "
                       "flip-flop under registers. Lane muxes sit in each PE, steering in each "
                       "PE row, windows in each PE column."])
    write_outputs(breakdown, args.out, args.machine)
    table = Table("flex_area", f"Area of the flexible build, {flex_cfg.rows}x{flex_cfg.cols} "
                  f"PEs, int8, {flex_cfg.acc_width}-bit accumulators",
                  ["design", "kind", "multipliers per PE", "NAND2-eq", "selection NAND2-eq",
                   "selection %", "area vs dense twin", "ECP5 LUT4", "ECP5 FF", "MULT18"]
                  + ([f"Fmax MHz ({FMAX_SIDE}x{FMAX_SIDE})", "Fmax vs dense"]
                     if args.fmax else []),
                  area_rows, args.command, _area_notes(area_rows, areas, flex_name))
    write_outputs(table, args.out, args.machine)
    _plot(mode_rows, args.out / "flex.png")


def _mode_notes(rows) -> list[str]:
    worst = min(rows, key=lambda r: r[8])
    return [f"Cycles from the emitted testbench in Verilator, all 12 modes back to back in "
            f"one run (one tile per mode; cycles per layer between tile handshakes). "
            f"Worst fraction of the ideal speed-up: {worst[8]:.3f} ({worst[0]}); target >= "
            f"0.95. Throughput per area: dense-equivalent MACs per cycle per NAND2-eq."]


def _area_notes(rows, areas, flex_name) -> list[str]:
    by = {r[0]: r for r in rows}
    notes = ["Selection = every selector of the design: for the flexible builds the lane "
             "muxes in each PE, the steering per PE row and the region windows per column."]
    f = by[flex_name]
    notes.append(f"Flexible HSS build: {f[6]:.3f}x the dense twin's area (target <= 1.25).")
    if "naive flexible" in by:
        n = by["naive flexible"]
        notes.append(f"Selection: flexible HSS {f[4]:,.0f} NAND2-eq vs naive flexible "
                     f"{n[4]:,.0f} ({f[4] / n[4]:.2f}x; target <= 0.5).")
    return notes


def _plot(rows, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    dens = [float(Fraction(r[1])) for r in rows]
    axes[0].scatter(dens, [r[6] for r in rows], c="tab:green", label="measured")
    axes[0].plot(sorted(dens), [1 / d for d in sorted(dens)], "k--", label="limit 1/density")
    axes[0].set_ylabel("speed-up vs dense twin")
    axes[1].scatter(dens, [r[9] for r in rows], c="tab:green", label="vs dense twin")
    if any(r[10] for r in rows):
        axes[1].scatter(dens, [r[10] or np.nan for r in rows], c="tab:orange", marker="^",
                        label="vs fixed build of the mode")
    axes[1].axhline(1, color="k", lw=0.5)
    axes[1].set_ylabel("throughput per area ratio")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("mode density")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for r, d in zip(rows, dens):
        axes[0].annotate(r[0], (d, r[6]), textcoords="offset points", xytext=(4, 3), fontsize=7)
    fig.suptitle("One flexible HSS build, 12 sparsity modes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
