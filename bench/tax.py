"""The sparsity tax: area (and Fmax) of HSS, 2:4 and naive G:H designs vs a dense array
with the same multipliers, and the throughput per area that their density buys."""
from __future__ import annotations

import tempfile
from dataclasses import replace
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

import synth
from gen.area import synthesize_design
from gen.emit import emit_verilog
from hdl import AcceleratorConfig
from hss import Pattern

from .common import Table, progress, write_outputs

#: 8 multipliers per PE in every design.
DESIGNS = [
    ("8:8", "dense"),
    ("4:4,2:4", "2:4 structured"),
    ("4:6,2:4", "HSS"),
    ("4:8,2:4", "HSS"),
    ("2:3,2:4,2:4", "HSS"),
    ("8:16", "naive G:H"),
    ("8:24", "naive G:H"),
    ("8:32", "naive G:H"),
    ("8:48", "naive G:H"),
]
QUICK = [("8:8", "dense"), ("4:6,2:4", "HSS"), ("8:24", "naive G:H")]
MAX_K = 4096
#: Fmax comes from a 2x2 array of each design: the critical path lies inside a PE (and the
#: broadcast to a row), while routing a 4x4 array takes nextpnr many minutes per design.
FMAX_SIDE = 2
#: Wall-time limit of one place and route: wide naive muxes (8:48) congest the router
#: for tens of minutes; such a design is reported as not routed within the limit.
FMAX_TIMEOUT = 300


def _configs(quick: bool) -> list[tuple[str, str, AcceleratorConfig]]:
    side = 2 if quick else 4
    designs = QUICK if quick else DESIGNS
    # One accumulator width for all (the dense design's, which sums the most products per
    # output at K = MAX_K), so that the ratios isolate selection and metadata.
    acc = max(AcceleratorConfig(p, side, side, max_k=MAX_K).acc_width for p, _ in designs)
    return [(p, kind, AcceleratorConfig(p, side, side, 8, True, MAX_K, acc))
            for p, kind in designs]


def _measure(job) -> dict:
    pattern, config, fmax = job
    with tempfile.TemporaryDirectory(prefix="bench-tax-") as work:
        texts, _ = emit_verilog(config)
        result = synthesize_design(texts["hss_accelerator"], Path(work) / "array",
                                   ["generic", "ecp5"], False)
        if fmax:
            small = replace(config, rows=FMAX_SIDE, cols=FMAX_SIDE)
            texts, _ = emit_verilog(small)
            try:
                result["fmax"] = synth.fmax_ecp5(
                    texts["hss_accelerator"], "hss_accelerator", Path(work) / "fmax",
                    device="45k", wrap=True, timeout=FMAX_TIMEOUT)
            except synth.SynthError as e:
                if "timed out" not in str(e):
                    raise
                result["fmax"] = {"fmax_mhz": None, "critical_path": None}
        return result


def run(args) -> None:
    configs = _configs(args.quick)
    jobs = [(p, c, args.fmax) for p, _, c in configs]
    progress(f"synthesizing {len(jobs)} designs on a {configs[0][2].rows}x{configs[0][2].cols} "
             f"array, {args.jobs} at a time{' with place and route' if args.fmax else ''}")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = []
        for (pattern, _, _), r in zip(jobs, pool.map(_measure, jobs)):
            progress(f"{pattern}: {r['generic']['nand2_eq']:.0f} NAND2-eq")
            results.append(r)
    dense = results[0]
    assert configs[0][0] == "8:8"
    rows = []
    for (pattern, kind, config), r in zip(configs, results):
        p = Pattern.parse(pattern)
        g, e = r["generic"], r["ecp5"]
        area_ratio = g["nand2_eq"] / dense["generic"]["nand2_eq"]
        row = [pattern, kind, str(p.density), float(p.speedup_limit), g["nand2_eq"],
               g["selector_nand2_eq"], f"{100 * g['selector_share']:.1f}", area_ratio,
               float(p.speedup_limit) / area_ratio, e["lut4"], e["ff"], e["mult18x18d"]]
        if args.fmax:
            f, path = r["fmax"]["fmax_mhz"], r["fmax"]["critical_path"]
            row += [f if f else f"not routed in {FMAX_TIMEOUT} s",
                    f / dense["fmax"]["fmax_mhz"] if f else None,
                    f"{path['from'].split('.')[-1]} -> {path['to'].split('.')[-1]}"
                    if path else "-"]
        rows.append(row)
    columns = ["pattern", "kind", "density", "speed-up limit", "NAND2-eq", "selector NAND2-eq",
               "selector %", "area vs dense", "throughput/area vs dense", "ECP5 LUT4",
               "ECP5 FF", "MULT18"] + ([f"Fmax MHz ({FMAX_SIDE}x{FMAX_SIDE})", "Fmax vs dense",
                                        "critical path (registers)"] if args.fmax else [])
    c0 = configs[0][2]
    table = Table("tax", f"Sparsity tax: {c0.rows}x{c0.cols} PEs, 8 multipliers per PE, int8, "
                  f"{c0.acc_width}-bit accumulators", columns, rows, args.command,
                  _notes(rows, args.fmax))
    write_outputs(table, args.out, args.machine)
    _plot(rows, args.out / "tax.png")


def _notes(rows, fmax) -> list[str]:
    by = {r[0]: r for r in rows}
    notes = ["Area: Yosys `synth` + ABC on synth/cells.lib (NAND2 = 1), hierarchy kept; "
             "throughput/area = speed-up limit / area ratio (1/density fewer steps for the "
             "same multipliers, see the cycles benchmark for the measured cycles)."]
    if fmax:
        notes.append(f"Fmax: nextpnr-ecp5 (LFE5U-45F, seed 1) on a {FMAX_SIDE}x{FMAX_SIDE} array "
                     "of each design behind a pin-light register wrapper; the critical path "
                     "lies inside the PE, and routing a 4x4 array takes nextpnr minutes per "
                     "design.")
    if "4:6,2:4" in by and "8:24" in by:
        h, n = by["4:6,2:4"], by["8:24"]
        notes.append(
            f"Density 1/3: HSS 4:6,2:4 needs {h[5]:,.0f} NAND2-eq of selectors, naive 8:24 "
            f"{n[5]:,.0f} ({100 * h[5] / n[5]:.0f} %); total area {h[7]:.3f}x vs "
            f"{n[7]:.3f}x dense, throughput per area {h[8]:.2f}x vs {n[8]:.2f}x dense.")
    for hss_p, naive_p in (("4:8,2:4", "8:32"), ("2:3,2:4,2:4", "8:48")):
        if hss_p in by and naive_p in by and by[hss_p][2] == by[naive_p][2]:
            h, n = by[hss_p], by[naive_p]
            notes.append(f"Density {h[2]}: {hss_p} selectors {h[5]:,.0f} vs {naive_p} "
                         f"{n[5]:,.0f} NAND2-eq ({100 * h[5] / n[5]:.0f} %).")
    return notes


def _plot(rows, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    styles = {"dense": ("k", "s"), "2:4 structured": ("tab:blue", "D"), "HSS": ("tab:green", "o"),
              "naive G:H": ("tab:red", "^")}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, col, label in ((axes[0], 7, "area vs dense (NAND2-eq ratio)"),
                           (axes[1], 8, "effective throughput per area vs dense")):
        for kind, (color, marker) in styles.items():
            pts = [(float(Fraction(r[2])), r[col], r[0]) for r in rows if r[1] == kind]
            if not pts:
                continue
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=color, marker=marker,
                       label=kind, s=50)
            for x, y, name in pts:
                ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("density (max fraction of nonzero weights)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Sparsity tax: same multipliers, same array")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
