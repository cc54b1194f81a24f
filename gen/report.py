"""report.json and report.md of a run, and synth/area.{json,md}: what the build costs and buys."""
from __future__ import annotations

from pathlib import Path

from hdl import LATENCY

from .emit import write_json

__all__ = ["build_report", "write_report", "tax"]


def _ratio(a, b):
    return round(a / b, 4) if a is not None and b else None


def tax(design: dict, dense: dict, speedup_limit: float) -> dict:
    """The sparsity tax: ratios of the design against its dense twin (same multipliers)."""
    out = {}
    if "generic" in design and "generic" in dense:
        ratio = _ratio(design["generic"]["nand2_eq"], dense["generic"]["nand2_eq"])
        out.update({
            "area_ratio": ratio,
            "selector_share": design["generic"]["selector_share"],
            "throughput_per_area_vs_dense": round(speedup_limit / ratio, 4) if ratio else None,
        })
    if "ecp5" in design and "ecp5" in dense:
        out["lut4_ratio"] = _ratio(design["ecp5"]["lut4"], dense["ecp5"]["lut4"])
    if "fmax" in design and "fmax" in dense:
        out["fmax_ratio"] = _ratio(design["fmax"]["fmax_mhz"], dense["fmax"]["fmax_mhz"])
    return out


def build_report(plan, vectors, sim, area) -> dict:
    c, p = plan.config, plan.config.pattern
    speedup = float(p.speedup_limit)
    report = {
        "pattern": str(p),
        "array": {"rows": c.rows, "cols": c.cols, "multipliers": c.multipliers},
        "values": {"width": c.width, "signed": c.signed, "acc_width": c.acc_width,
                   "max_k": c.max_k},
        "density": str(p.density), "density_value": round(float(p.density), 6),
        "group_size": p.group_size, "multipliers_per_pe": p.slots,
        "speedup_limit": round(speedup, 4),
        "storage": {"bits_per_group": p.group_bits(c.width),
                    "bits_per_element": round(float(p.bits_per_element(c.width)), 4),
                    "dense_bits_per_element": c.width},
        "latency": LATENCY,
        "gemm": {"m": vectors.m, "k": vectors.k, "n": vectors.n,
                 "padded_k": vectors.steps_per_tile * p.group_size,
                 "tiles": vectors.tiles, "steps": vectors.steps},
    }
    if sim is not None:
        report["testbench"] = {
            "simulator": plan.args.sim, "passed": sim.passed, "cycles": sim.cycles,
            "ideal_cycles": sim.ideal, "cycles_over_ideal": _ratio(sim.cycles, sim.ideal),
            "dense_pe_cycles": vectors.steps * p.group_size // p.slots,
        }
    if area is not None:
        report["area"] = area
        report["sparsity_tax"] = tax(area["design"], area["dense_twin"], speedup)
    report["summary"] = _summary(report)
    return report


def _summary(r) -> list[str]:
    lines = [f"pattern {r['pattern']}: density {r['density']}, speed-up limit "
             f"{r['speedup_limit']:g}x, {r['storage']['bits_per_element']:.2f} bits/element"]
    t = r.get("testbench")
    if t:
        lines.append(f"testbench ({t['simulator']}): {'PASS' if t['passed'] else 'FAIL'}, "
                     f"{t['cycles']} cycles for {t['ideal_cycles']} steps "
                     f"(+{r['latency']} latency)")
    tx = r.get("sparsity_tax", {})
    if "area_ratio" in tx:
        lines.append(f"area {r['area']['design']['generic']['nand2_eq']:.0f} NAND2-eq = "
                     f"{tx['area_ratio']:.3f}x dense twin; selectors "
                     f"{100 * tx['selector_share']:.1f} %; throughput/area "
                     f"{tx['throughput_per_area_vs_dense']:.2f}x dense")
    if "fmax_ratio" in tx:
        lines.append(f"Fmax {r['area']['design']['fmax']['fmax_mhz']:.1f} MHz = "
                     f"{tx['fmax_ratio']:.3f}x dense twin")
    return lines


def _table(header, rows) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return out


def _fmt(x, digits=0):
    if x is None:
        return "-"
    return f"{x:,.{digits}f}" if isinstance(x, float) else f"{x:,}"


def _path(fmax: dict) -> str:
    p = fmax.get("critical_path")
    if not p:
        return "-"
    return (f"`{p['from']}` -> `{p['to']}`: {p['logic_ns']:.2f} ns logic + "
            f"{p['routing_ns']:.2f} ns routing")


def _area_md(r) -> list[str]:
    a, tx = r["area"], r["sparsity_tax"]
    d, t = a["design"], a["dense_twin"]
    twin = f"{r['multipliers_per_pe']}:{r['multipliers_per_pe']}"
    md = []
    if "generic" in d:
        md += ["## Area (NAND2 equivalents, Yosys with synth/cells.lib)", ""]
        keys = list(d["generic"]["breakdown"])
        keys += [k for k in t["generic"]["breakdown"] if k not in keys]
        rows = []
        for k in keys:
            x, y = d["generic"]["breakdown"].get(k, 0.0), t["generic"]["breakdown"].get(k, 0.0)
            rows.append([k, _fmt(x), _fmt(y), _fmt(_ratio(x, y), 3) if y else "-"])
        rows.append(["**total**", f"**{_fmt(d['generic']['nand2_eq'])}**",
                     f"**{_fmt(t['generic']['nand2_eq'])}**", f"**{tx['area_ratio']:.3f}**"])
        rows.append(["flip-flops", d["generic"]["flip_flops"], t["generic"]["flip_flops"], ""])
        rows.append(["transistors (estimate)", _fmt(d["generic"]["transistors"]),
                     _fmt(t["generic"]["transistors"]), ""])
        md += _table(["level", r["pattern"], f"dense twin {twin}", "ratio"], rows) + [""]
        if "decompressor" in a:
            dc = a["decompressor"]
            md += [f"The HSS decompressor (`hss_decompressor`, a separate module, not part of "
                   f"the accelerator total): {_fmt(dc['nand2_eq'])} NAND2-eq, "
                   f"{dc['flip_flops']} flip-flops.", ""]
    for target, cols in (("ecp5", ("lut4", "ff", "mult18x18d", "ccu2c")),
                         ("ice40", ("lut4", "ff", "mac16", "carry"))):
        if target in d:
            md += [f"## {target.upper()} (Yosys synth_{target}, flattened)", ""]
            md += _table(["resource", r["pattern"], f"dense twin {twin}"],
                         [[k, d[target][k], t[target][k]] for k in cols]) + [""]
    if "fmax" in d:
        md += ["## Fmax (nextpnr-ecp5, pin-light register wrapper)", ""]
        md += _table(["", r["pattern"], f"dense twin {twin}", "ratio"],
                     [["Fmax (MHz)", _fmt(d["fmax"]["fmax_mhz"], 1),
                       _fmt(t["fmax"]["fmax_mhz"], 1), _fmt(tx.get("fmax_ratio"), 3)],
                      ["critical path", _path(d["fmax"]), _path(t["fmax"]), ""]]) + [""]
    return md


def markdown(r, area_only=False) -> str:
    md = [f"# HSS accelerator `{r['pattern']}` on a {r['array']['rows']}x{r['array']['cols']} "
          "PE array", ""]
    if not area_only:
        s = r["storage"]
        md += _table(["property", "value"], [
            ["density (max nonzeros)", f"{r['density']} ({100 * r['density_value']:.1f} %)"],
            ["group size S / multipliers per PE", f"{r['group_size']} / {r['multipliers_per_pe']}"],
            ["speed-up limit vs dense PE, same multipliers", f"{r['speedup_limit']:g}x"],
            ["storage", f"{s['bits_per_group']} bits per group = {s['bits_per_element']:.2f} "
                        f"bits/element (dense {s['dense_bits_per_element']})"],
            ["values / accumulator", f"{'int' if r['values']['signed'] else 'uint'}"
                                     f"{r['values']['width']} / {r['values']['acc_width']} bits "
                                     f"(no overflow for K <= {r['values']['max_k']})"],
            ["latency (last group to tile)", f"{r['latency']} cycles"],
        ]) + [""]
        g = r["gemm"]
        md += ["## Testbench", "",
               f"GEMM Z[{g['m']},{g['n']}] = W[{g['m']},{g['k']}] @ A[{g['k']},{g['n']}]"
               + (f" (K zero-padded to {g['padded_k']})" if g["padded_k"] != g["k"] else "")
               + f": {g['tiles']} tiles x {g['steps'] // g['tiles']} steps.", ""]
        t = r.get("testbench")
        if t:
            md += _table(["simulator", "result", "cycles", "ideal (steps)", "cycles / ideal",
                          "dense PE, same multipliers"],
                         [[t["simulator"], "PASS" if t["passed"] else "FAIL", t["cycles"],
                           t["ideal_cycles"], f"{t['cycles_over_ideal']:.3f}",
                           t["dense_pe_cycles"]]]) + [""]
        else:
            md += ["Not simulated (`--sim none`).", ""]
    if "area" in r:
        md += _area_md(r)
        tx = r["sparsity_tax"]
        if "area_ratio" in tx:
            md += ["## Sparsity tax", "",
                   f"Area {tx['area_ratio']:.3f}x the dense twin (selectors "
                   f"{100 * tx['selector_share']:.1f} % of the design), for a "
                   f"{r['speedup_limit']:g}x shorter GEMM: effective throughput per area "
                   f"**{tx['throughput_per_area_vs_dense']:.2f}x** dense."
                   + (f" Fmax {tx['fmax_ratio']:.3f}x dense." if "fmax_ratio" in tx else ""),
                   ""]
    return "\n".join(md)


def write_report(folder: Path, report: dict, area_only: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stem = "area" if area_only else "report"
    if area_only:
        keys = ("pattern", "array", "values", "speedup_limit", "area", "sparsity_tax")
        data = {k: report[k] for k in keys}
    else:
        data = {k: v for k, v in report.items() if k != "summary"}
    write_json(folder / f"{stem}.json", data)
    (folder / f"{stem}.md").write_text(markdown(report, area_only) + "\n")
