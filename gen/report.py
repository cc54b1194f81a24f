"""report.json and report.md of a run, and synth/area.{json,md}: what the build costs and buys."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hdl.top import last_beat_latency
from hss.energy import ActionCounts, EnergyError, energy

from .area import COMPOSE_ABOVE_PES
from .emit import write_json
from .simulate import WAVES, rerun_command

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


def _layer_rows(plan, layers, sim) -> list[dict]:
    """Per layer: its mode, shape, steps, measured cycles (when the testbench reported them)
    and the speed-up over a dense PE with the same multipliers."""
    c = plan.config
    macs = c.macs if plan.flexible else c.pattern.slots
    measured = sim.layer_cycles if sim is not None else ()
    rows = []
    for i, (layer, v) in enumerate(zip(plan.layers, layers)):
        # dense PE steps, same multipliers (a plain layer's K padded as its mode pads it)
        dense = v.tiles * -(-(layer.padded_k if layer.tasd is None else layer.k) // macs)
        cycles = measured[i] if i < len(measured) else None
        terms = layer.tasd.decomposition.terms if layer.tasd is not None else (layer.pattern,)
        limit = 1 / sum(p.density for p in terms)
        row = {"mode": layer.label, "m": v.m, "k": v.k, "n": v.n,
               "padded_k": layer.padded_k, "tiles": v.tiles, "steps": v.steps,
               "cycles": cycles, "dense_pe_cycles": dense,
               "speedup_vs_dense": _ratio(dense, cycles if cycles else v.steps),
               "speedup_limit": round(float(limit), 4)}
        if layer.tasd is not None:
            row["tasd"] = _tasd(layer)
        rows.append(row)
    return rows


def _run_energy(config, counts: dict, cycles: int, table) -> dict:
    """A run's actions priced by the energy table. ``counts``: beats, tiles, steps and
    multiplies; lane-cycles beyond the steps (stalls) are idle, priced as gated."""
    pe = config.pe_shape
    stream = (counts["beats"] * config.beat_bits
              + counts["tiles"] * (config.rows * config.cols * config.acc_width + 1))
    actions = ActionCounts.of_run(pe, config.rows * config.cols, counts["steps"], cycles,
                                  counts["multiplies"], stream)
    out = {k: round(v, 3) for k, v in energy(actions, pe, table).as_dict().items()}
    out.update(steps=counts["steps"], cycles=cycles, tiles=counts["tiles"],
               multiplies=counts["multiplies"],
               gated_lane_steps=actions.gated, idle_lane_cycles=actions.idle,
               stream_bits=stream, edp_pj_cycles=round(out["total"] * cycles, 1),
               pj_per_multiply=round(out["total"] / counts["multiplies"], 4)
               if counts["multiplies"] else None,
               pj_per_tile=round(out["total"] / counts["tiles"], 3) if counts["tiles"] else None)
    return out


def _energy(plan, layers, sim) -> dict:
    """Per layer and in all: energy of the design and of its dense twin on the same GEMM
    (the twin computes W @ A exactly, in ceil(K / multipliers) steps per tile), and EDP.

    The design's counts are the testbench's (``ACTIONS``: beats, tiles and PE steps taken,
    nonzero weight values decoded from the accepted beats, each multiplied in every PE of
    its row) and its measured cycles; without a simulation, the golden model's. Both are
    kept, and whether they agree. Every lane-step without a nonzero weight is gated."""
    c, table = plan.config, plan.energy_table
    twin = c.dense_twin()
    macs = twin.pattern.slots
    measured = sim.layer_actions if sim is not None else []
    rows = []
    for i, (layer, v) in enumerate(zip(plan.layers, layers)):
        tile_cols = -(-v.n // c.cols)
        nonzeros = sum(int(np.count_nonzero(w)) for w, _ in layer.segments) * tile_cols
        golden = {"beats": v.beats, "tiles": v.tiles, "steps": v.steps, "nonzero": nonzeros}
        counted = None
        if i < len(measured):
            counted = {"beats": measured[i]["wbeats"], "tiles": measured[i]["tiles"],
                       "steps": measured[i]["steps"], "nonzero": measured[i]["nonzero"]}
        cycles = max(counted["steps"], sim.layer_cycles[i]) if counted and i < len(
            sim.layer_cycles) else v.steps
        try:
            design = _run_energy(c, dict(counted or golden,
                                         multiplies=(counted or golden)["nonzero"] * c.cols),
                                 cycles, table)
        except EnergyError:         # counts no PE array can produce: a failing design
            counted, cycles = None, v.steps
            design = _run_energy(c, dict(golden, multiplies=nonzeros * c.cols), cycles, table)
        dense_steps = v.tiles * -(-v.k // macs)
        dense_counts = {"beats": dense_steps, "tiles": v.tiles, "steps": dense_steps,
                        "multiplies": int(np.count_nonzero(layer.W)) * tile_cols * c.cols}
        dense = _run_energy(twin, dense_counts, dense_steps, table)
        rows.append({"counts": "rtl" if counted else "golden",
                     "rtl_counts_match_golden": counted == golden if counted else
                     (False if i < len(measured) else None),
                     "design": design, "dense_twin": dense,
                     "energy_ratio": _ratio(design["total"], dense["total"]),
                     "edp_ratio": _ratio(design["edp_pj_cycles"], dense["edp_pj_cycles"])})
    total = {}
    for who in ("design", "dense_twin"):
        levels = [k for k in rows[0][who] if k.startswith("selectors ")]
        keys = ("multipliers", "selectors", *levels, "registers", "accumulate", "stream_io",
                "total", "steps", "cycles", "tiles", "multiplies")
        total[who] = {k: round(sum(r[who][k] for r in rows), 3) for k in keys}
        for per in ("tile", "multiply"):
            n = total[who][f"{per}s" if per == "tile" else "multiplies"]
            total[who][f"pj_per_{per}"] = round(total[who]["total"] / n, 4) if n else None
        total[who]["edp_pj_cycles"] = round(total[who]["total"] * total[who]["cycles"], 1)
    total["energy_ratio"] = _ratio(total["design"]["total"], total["dense_twin"]["total"])
    total["edp_ratio"] = _ratio(total["design"]["edp_pj_cycles"],
                                total["dense_twin"]["edp_pj_cycles"])
    return {"table": {"name": table.name, "source": table.source,
                      "technology_nm": table.technology_nm},
            "counts": "rtl" if measured else "golden",
            "rtl_counts_match_golden": all(r["rtl_counts_match_golden"] is True for r in rows)
            if measured else None,
            "layers": rows, "total": total}


def _tasd(layer) -> dict:
    """What the decomposition kept: its terms, their nonzeros, and the error it leaves."""
    r = layer.tasd
    out = {"decomposition": str(r.decomposition), "requested": layer.source["tasd"],
           "terms": [str(p) for p in r.decomposition.terms], "nonzeros": list(r.nonzeros),
           "weights_nonzeros": int(np.count_nonzero(layer.W)),
           "error": round(r.error, 6), "errors": [round(e, 6) for e in r.errors],
           "max_abs_error": r.max_abs_error, "exact": r.exact}
    if "max_error" in layer.source:
        out["max_error"] = layer.source["max_error"]
    return out


def _flex_report(plan, layers, sim, area) -> dict:
    c, s = plan.config, plan.config.schedule
    report = {
        "pattern": str(c.modes), "flexible": True,
        "array": {"rows": c.rows, "cols": c.cols, "multipliers": c.multipliers},
        "values": {"width": c.width, "signed": c.signed, "acc_width": c.acc_width,
                   "max_k": c.max_k},
        "multipliers_per_pe": c.macs, "latency": last_beat_latency(c),
        "lanes": {"rows": s.rows, "top_kept": s.top_kept,
                  "mux_inputs_per_pe": s.mux_inputs, "window_per_lane": round(
                      s.mux_inputs / c.macs, 2)},
        "modes": [{"mode": m, "pattern": str(p), "density": str(p.density),
                   "density_value": round(float(p.density), 6), "group_size": p.group_size,
                   "speedup_limit": round(float(p.speedup_limit), 4),
                   "groups_per_beat": s.groups_per_beat(m), "steps_per_beat": s.steps_per_beat(m),
                   "bits_per_group": p.group_bits(c.width),
                   "bits_per_element": round(float(p.bits_per_element(c.width)), 4)}
                  for m, p in enumerate(c.modes.modes)],
        "layers": _layer_rows(plan, layers, sim),
        "energy": _energy(plan, layers, sim),
    }
    for mode in report["modes"]:                  # what the testbench ran in each mode
        ran = [l for l in report["layers"] if l["mode"] == mode["pattern"]]
        mode["steps"] = sum(l["steps"] for l in ran) if ran else None
        mode["cycles"] = sum(l["cycles"] for l in ran) if ran and all(
            l["cycles"] is not None for l in ran) else None
    if sim is not None:
        report["testbench"] = _testbench(plan, sim) | _debug(plan, sim)
    if area is not None:
        report["area"] = area
        tx = tax(area["design"], area["dense_twin"], 1.0)
        tx.pop("throughput_per_area_vs_dense", None)
        if tx.get("area_ratio"):
            for mode in report["modes"]:
                mode["throughput_per_area_vs_dense"] = round(
                    mode["speedup_limit"] / tx["area_ratio"], 4)
        report["sparsity_tax"] = tx
    report["summary"] = _flex_summary(report, _debug_summary(plan, report.get("testbench")))
    return report


def _testbench(plan, sim) -> dict:
    return {"simulator": plan.options.sim, "passed": sim.passed, "cycles": sim.cycles,
            "ideal_cycles": sim.ideal, "cycles_over_ideal": _ratio(sim.cycles, sim.ideal)}


def _debug(plan, sim) -> dict:
    """What debugging the run needs: the waveforms of a traced run; of a failing one, its
    first mismatching tile and the command that runs it again traced, with its stalls.
    Paths are relative to the output folder, which stays relocatable."""
    out = {}
    if sim.waves is not None:
        out["waves"] = f"tb/{sim.waves.name}"
    if not sim.passed:
        out.update(mismatches=sim.mismatches, messages=list(sim.messages),
                   first_mismatch=sim.first_mismatch, stalls=sim.stalls,
                   rerun=rerun_command("tb", plan.options.sim, sim.stalls))
    return out


def _first_mismatch_text(t) -> str:
    """The first mismatching tile in a line, or what else stopped the run (a timeout)."""
    f = t["first_mismatch"]
    if f is None:
        return t["messages"][0] if t["messages"] else "no mismatch reported"
    wrong = [f"row {e['row']} col {e['col']} got {e['got']} expected {e['expected']}"
             for e in f["elements"]]
    if f["overflow"] is not None:
        wrong.append(f"overflow flag got {f['overflow']['got']} expected "
                     f"{f['overflow']['expected']}")
    return (f"first mismatching tile {f['tile']}: {wrong[0]}"
            + (f" (+{len(wrong) - 1} more)" if len(wrong) > 1 else "")
            + f"; {t['mismatches']} mismatches in all")


def _debug_summary(plan, t) -> list[str]:
    """Summary lines of ``_debug``, naming the output folder (printed, not kept)."""
    if t is None:
        return []
    lines = [f"waveforms: {plan.out / t['waves']}"] if "waves" in t else []
    if not t["passed"]:
        lines += [_first_mismatch_text(t), "re-run traced: " + rerun_command(
            plan.out / "tb", t["simulator"], t["stalls"])]
    return lines


def _debug_md(t) -> list[str]:
    md = []
    if "waves" in t:
        md += [f"Waveforms of this run: `{t['waves']}` (VCD: every signal of `tb` and the "
               f"accelerator).", ""]
    if t["passed"]:
        return md
    f = t["first_mismatch"]
    if f is None:
        md += ["The testbench stopped: " + ("; ".join(f"`{m}`" for m in t["messages"])
                                           or "no mismatch reported") + ".", ""]
    else:
        md += [f"**First mismatching tile: {f['tile']}** ({t['mismatches']} mismatches in all; "
               f"the testbench lists the first 10; rows and columns of Z):", ""]
        md += _table(["row", "col", "got", "expected"],
                     [[e["row"], e["col"], e["got"], e["expected"]] for e in f["elements"]]
                     + ([["overflow flag", "", f["overflow"]["got"], f["overflow"]["expected"]]]
                        if f["overflow"] is not None else [])) + [""]
    md += ["Run just this simulation again, with the same stalls and every signal dumped to "
           f"`tb/{WAVES}` (from this folder): `{t['rerun']}`", ""]
    return md


def _energy_summary(r) -> list[str]:
    t = r["energy"]["total"]
    return [f"energy {t['design']['total']:,.0f} pJ = {t['energy_ratio']:.3f}x dense twin; "
            f"EDP {t['edp_ratio']:.3f}x dense twin ({r['energy']['table']['name']})"]


def _tasd_summary(r) -> list[str]:
    rows = [(i, l) for i, l in enumerate(r["layers"]) if "tasd" in l]
    lines = [f"layer {i}: TASD {l['tasd']['decomposition']} (error "
             f"{100 * l['tasd']['error']:.2f} %), {_fmt(l['cycles'] or l['steps'])} "
             f"{'cycles' if l['cycles'] else 'steps'}, speed-up {l['speedup_vs_dense']:.2f}x "
             f"vs dense" for i, l in rows[:3]]
    return lines + ([f"... and {len(rows) - 3} more TASD layers"] if len(rows) > 3 else [])


def _flex_summary(r, debug) -> list[str]:
    modes = r["modes"]
    lines = [f"mode set {r['pattern']}: {len(modes)} modes, density {modes[0]['density']} .. "
             f"{min(modes, key=lambda m: m['density_value'])['density']}, "
             f"{r['multipliers_per_pe']} multipliers per PE"]
    t = r.get("testbench")
    if t:
        lines.append(f"testbench ({t['simulator']}): {'PASS' if t['passed'] else 'FAIL'}, "
                     f"{t['cycles']} cycles for {t['ideal_cycles']} steps of "
                     f"{len(r['layers'])} layers (+{r['latency']} latency)")
    lines += debug + _tasd_summary(r) + _energy_summary(r)
    tx = r.get("sparsity_tax", {})
    if "area_ratio" in tx:
        best = max(modes, key=lambda m: m.get("throughput_per_area_vs_dense", 0))
        lines.append(f"area {r['area']['design']['generic']['nand2_eq']:.0f} NAND2-eq = "
                     f"{tx['area_ratio']:.3f}x dense twin; selection "
                     f"{100 * tx['selector_share']:.1f} %; throughput/area up to "
                     f"{best['throughput_per_area_vs_dense']:.2f}x dense ({best['pattern']})")
    return lines


def build_report(plan, layers, sim, area, board=None) -> dict:
    """The run's report; ``board``: ``gen.board.board_stage``'s section (``--board``)."""
    report = _report(plan, layers, sim, area)
    if board is not None:
        report["board"] = board
    return report


def _report(plan, layers, sim, area) -> dict:
    if plan.flexible:
        return _flex_report(plan, layers, sim, area)
    vectors = layers[0]
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
        "latency": last_beat_latency(c),
        "gemm": {"m": vectors.m, "k": vectors.k, "n": vectors.n,
                 "padded_k": plan.layers[0].padded_k,
                 "tiles": vectors.tiles, "steps": vectors.steps},
        "layers": _layer_rows(plan, layers, sim),
        "energy": _energy(plan, layers, sim),
    }
    if sim is not None:
        report["testbench"] = {
            "simulator": plan.options.sim, "passed": sim.passed, "cycles": sim.cycles,
            "ideal_cycles": sim.ideal, "cycles_over_ideal": _ratio(sim.cycles, sim.ideal),
            "dense_pe_cycles": vectors.tiles * plan.layers[0].padded_k // p.slots,
        } | _debug(plan, sim)
    if area is not None:
        report["area"] = area
        report["sparsity_tax"] = tax(area["design"], area["dense_twin"], speedup)
    report["summary"] = _summary(report, _debug_summary(plan, report.get("testbench")))
    return report


def _summary(r, debug) -> list[str]:
    lines = [f"pattern {r['pattern']}: density {r['density']}, speed-up limit "
             f"{r['speedup_limit']:g}x, {r['storage']['bits_per_element']:.2f} bits/element"]
    t = r.get("testbench")
    if t:
        lines.append(f"testbench ({t['simulator']}): {'PASS' if t['passed'] else 'FAIL'}, "
                     f"{t['cycles']} cycles for {t['ideal_cycles']} steps "
                     f"(+{r['latency']} latency)")
    lines += debug + _tasd_summary(r) + _energy_summary(r)
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


def _cell(x) -> str:
    """A table cell: a mode set's | would split the cell."""
    return str(x).replace("|", "\\|")


def _table(header, rows) -> list[str]:
    out = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(x) for x in row) + " |" for row in rows]
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
        md += _composed_generic_md(d["generic"], t["generic"])
        if "decompressor" in a:
            dc = a["decompressor"]
            md += [f"The HSS decompressor (`hss_decompressor`, a separate module, not part of "
                   f"the accelerator total): {_fmt(dc['nand2_eq'])} NAND2-eq, "
                   f"{dc['flip_flops']} flip-flops.", ""]
    for target, cols in (("ecp5", ("lut4", "ff", "mult18x18d", "ccu2c")),
                         ("ice40", ("lut4", "ff", "mac16", "carry"))):
        if target in d:
            how = "composed" if "composed" in d[target] else "flattened"
            md += [f"## {target.upper()} (Yosys synth_{target}, {how})", ""]
            md += _table(["resource", r["pattern"], f"dense twin {twin}"],
                         [[k, d[target][k], t[target][k]] for k in cols]) + [""]
            md += _composed_ecp5_md(d[target], t[target]) if target == "ecp5" else []
    if "fmax" in d:
        md += ["## Fmax (nextpnr-ecp5, pin-light register wrapper)", ""]
        md += _table(["", r["pattern"], f"dense twin {twin}", "ratio"],
                     [["Fmax (MHz)", _fmt(d["fmax"]["fmax_mhz"], 1),
                       _fmt(t["fmax"]["fmax_mhz"], 1), _fmt(tx.get("fmax_ratio"), 3)],
                      ["critical path", _path(d["fmax"]), _path(t["fmax"]), ""]]) + [""]
    return md


def _board_md(b) -> list[str]:
    """``--board``: the bitstream, how to program it, the line it must print, its cost."""
    u, a = b["used"], b["available"]
    fmax = "-" if b["fmax_mhz"] is None else f"{b['fmax_mhz']:g}"
    return ["## On the board", "",
            f"`{b['bitstream']}`: this GEMM as a self-test for the {b['board']} "
            f"({b['device']}). Program it with `{b['program']}`; its serial port "
            f"({b['baud']} baud, 8N1) must then print `{b['expected_line']}` "
            f"(`{b['timeout_line']}` if it hangs). More in `{b['readme']}`.", ""] + _table(
        ["resource", "used", "device"],
        [["LUT4", _fmt(u["lut4"]), _fmt(a["lut4"])],
         ["multiplier blocks (DSP)", u["dsp"], a["dsp"]],
         ["block RAMs", u["bram"], a["bram"]],
         ["Fmax (MHz, nextpnr) / board clock", fmax, f"{b['clock_mhz']:g}"]]) + [""]


def _composed(design: dict, twin: dict, line) -> list[str]:
    """``line(label, composed)`` for the accelerator and its dense twin where composed."""
    return [line(label, x["composed"]) for label, x in
            (("the accelerator", design), ("its dense twin", twin)) if x.get("composed")]


def _composed_generic_md(design: dict, twin: dict) -> list[str]:
    """How a composed NAND2 total was made (``synth.flows.area_nand2_composed``)."""
    out = _composed(design, twin, lambda label, c: (
        f"NAND2 area of {label} composed (above {COMPOSE_ABOVE_PES} PEs): its "
        f"{c['distinct_modules']} distinct modules mapped once each, the total counting all "
        f"{c['instances']:,} module instances (within 0.3 % of mapping every instance, "
        f"sim_tests/test_synth_compose.py)."))
    return out + [""] if out else []


def _composed_ecp5_md(design: dict, twin: dict) -> list[str]:
    """How a composed ECP5 count was made (``synth.flows.ecp5_composed``)."""
    out = _composed(design, twin, lambda label, c: (
        f"ECP5 resources of {label} composed (above {COMPOSE_ABOVE_PES} PEs): its "
        f"{c['kept_modules']} distinct PE modules synthesized once each, whole, and counted "
        f"for all {c['kept_instances']:,} PEs, the rest flattened around them."))
    if out:
        out.append("Composed flip-flop counts are an upper bound: the flat flow merges "
                   "equivalent registers of different PEs (4:6,2:4 at 4x4: +19 % flip-flops, "
                   "+1.0 % LUT4; sim_tests/test_gen_scale.py).")
    return out + [""] if out else []


def _layers_md(r) -> list[str]:
    """The layers run back to back; TASD layers also with what their terms kept and left."""
    md = _table(["layer", "mode", "GEMM", "tiles", "steps", "cycles measured",
                 "dense PE cycles, same multipliers", "speed-up vs dense (limit)"],
                [[i, f"`{l['mode']}`", f"{l['m']}x{l['k']}x{l['n']}", l["tiles"], l["steps"],
                  _fmt(l["cycles"]), l["dense_pe_cycles"],
                  f"{l['speedup_vs_dense']:.2f} ({l['speedup_limit']:g})"]
                 for i, l in enumerate(r["layers"])]) + [""]
    tasd = [(i, l["tasd"]) for i, l in enumerate(r["layers"]) if "tasd" in l]
    if not tasd:
        return md
    md += ["### TASD", "", "Each tile runs the terms as segments into the same accumulators: "
           "Z = sum_t W_t @ A, checked against that golden sum. Error is relative to W "
           "(Frobenius), after each term.", ""]
    md += _table(["layer", "--tasd", "terms", "nonzeros per term (of W's)",
                  "error after each term", "max abs error", "exact"],
                 [[i, f"`{t['requested']}`" + (f" (<= {t['max_error']:g})" if "max_error" in t
                                                else ""),
                   f"`{t['decomposition']}`",
                   f"{' + '.join(map(str, t['nonzeros']))} ({t['weights_nonzeros']})",
                   " / ".join(f"{100 * e:.2f} %" for e in t["errors"]), t["max_abs_error"],
                   "yes" if t["exact"] else "no"] for i, t in tasd]) + [""]
    return md


def _energy_md(r) -> list[str]:
    e, t = r["energy"], r["energy"]["total"]
    levels = [k for k in t["design"] if k.startswith("selectors ")]
    parts = ("multipliers", "selectors", *levels, "registers", "accumulate", "stream_io")
    source = ("counted by the testbench on the RTL's streams (beats, tiles, PE steps, "
              "nonzero weight values), " + ("equal to the golden model's counts"
                                            if e["rtl_counts_match_golden"] else
                                            "**differing from the golden model's counts**")
              if e["counts"] == "rtl" else "the golden model's (not simulated)")
    md = ["## Energy and EDP", "",
          f"Actions of the run, {source}: every nonzero weight value multiplied in each PE of "
          f"its row, every other lane-step gated, lane-cycles without a step idle (gated); "
          f"selectors, pipeline registers and adders on every PE step; stream bits. Priced "
          f"by `{e['table']['name']}` ({e['table']['technology_nm']:g} nm): "
          f"{e['table']['source']} The dense twin runs the same GEMM exactly, in "
          f"ceil(K / multipliers) steps per tile, without stalls. EDP = energy x cycles "
          f"(measured; the pipeline's fill left out).", ""]
    md += _table(["", "design", "dense twin", "ratio"],
                 [[("- " if k in levels else "") + k.replace("_", " ") + " (pJ)",
                   _fmt(t["design"][k], 1), _fmt(t["dense_twin"].get(k), 1),
                   _fmt(_ratio(t["design"][k], t["dense_twin"].get(k)), 3)] for k in parts]
                 + [["**total (pJ)**", _fmt(t["design"]["total"], 1),
                     _fmt(t["dense_twin"]["total"], 1), _fmt(t["energy_ratio"], 3)],
                    ["pJ per tile", _fmt(t["design"]["pj_per_tile"], 1),
                     _fmt(t["dense_twin"]["pj_per_tile"], 1),
                     _fmt(_ratio(t["design"]["pj_per_tile"], t["dense_twin"]["pj_per_tile"]), 3)],
                    ["pJ per multiply (nonzero weight)", _fmt(t["design"]["pj_per_multiply"], 3),
                     _fmt(t["dense_twin"]["pj_per_multiply"], 3),
                     _fmt(_ratio(t["design"]["pj_per_multiply"],
                                 t["dense_twin"]["pj_per_multiply"]), 3)],
                    ["cycles", _fmt(t["design"]["cycles"]), _fmt(t["dense_twin"]["cycles"]),
                     _fmt(_ratio(t["design"]["cycles"], t["dense_twin"]["cycles"]), 3)],
                    ["**EDP (pJ x cycles)**", _fmt(t["design"]["edp_pj_cycles"], 0),
                     _fmt(t["dense_twin"]["edp_pj_cycles"], 0), _fmt(t["edp_ratio"], 3)]])
    if len(e["layers"]) > 1:
        md += ["", "Per layer:", ""]
        md += _table(["layer", "mode", "energy (pJ)", "pJ per tile", "pJ per multiply",
                      "cycles", "energy vs dense twin", "EDP vs dense twin"],
                     [[i, f"`{l['mode']}`", _fmt(x["design"]["total"], 1),
                       _fmt(x["design"]["pj_per_tile"], 1),
                       _fmt(x["design"]["pj_per_multiply"], 3), x["design"]["cycles"],
                       _fmt(x["energy_ratio"], 3), _fmt(x["edp_ratio"], 3)]
                      for i, (l, x) in enumerate(zip(r["layers"], e["layers"]))])
    return md + [""]


def _flex_markdown(r, area_only=False) -> list[str]:
    a = r["array"]
    md = [f"# Flexible HSS accelerator `{r['pattern']}` on a {a['rows']}x{a['cols']} PE array",
          "", f"{len(r['modes'])} modes chosen per tile at run time, "
          f"{r['multipliers_per_pe']} multipliers per PE ({r['lanes']['rows']} lane rows x "
          f"{r['lanes']['top_kept']} top blocks), each lane's activation mux "
          f"{r['lanes']['window_per_lane']:g} positions wide on average; "
          f"{'int' if r['values']['signed'] else 'uint'}{r['values']['width']} values, "
          f"{r['values']['acc_width']}-bit accumulators (no overflow for K <= "
          f"{r['values']['max_k']}); latency {r['latency']} cycles.", ""]
    if area_only:
        return md + _area_md(r)
    tput = "throughput_per_area_vs_dense" in r["modes"][0]
    md += ["## Modes", ""]
    md += _table(["mode", "pattern", "density", "speed-up limit", "storage bits/element",
                  "groups per beat", "steps per beat", "steps run", "cycles measured"]
                 + (["throughput/area vs dense twin"] if tput else []),
                 [[m["mode"], f"`{m['pattern']}`", m["density"], f"{m['speedup_limit']:g}x",
                   f"{m['bits_per_element']:.2f}", m["groups_per_beat"], m["steps_per_beat"],
                   _fmt(m["steps"]), _fmt(m["cycles"])]
                  + ([f"{m['throughput_per_area_vs_dense']:.2f}x"] if tput else [])
                  for m in r["modes"]]) + [""]
    md += ["## Testbench", "", "The layers run back to back, tiles of different modes with no "
           "bubble between them.", ""]
    md += _layers_md(r)
    t = r.get("testbench")
    if t:
        md += [f"{t['simulator']}: **{'PASS' if t['passed'] else 'FAIL'}**, {t['cycles']} "
               f"cycles for {t['ideal_cycles']} steps ({t['cycles_over_ideal']:.3f}x).", ""]
        md += _debug_md(t)
    else:
        md += ["Not simulated (`--sim none`).", ""]
    md += _energy_md(r)
    if "area" in r:
        md += _area_md(r)
    if "board" in r:
        md += _board_md(r["board"])
    return md


def markdown(r, area_only=False) -> str:
    if r.get("flexible"):
        return "\n".join(_flex_markdown(r, area_only))
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
            ["latency (last group to a tile's last beat)", f"{r['latency']} cycles"],
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
            md += _debug_md(t)
        else:
            md += ["Not simulated (`--sim none`).", ""]
        if len(r["layers"]) > 1 or "tasd" in r["layers"][0]:
            md += ["## Layers", ""] + _layers_md(r)
        md += _energy_md(r)
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
    if "board" in r and not area_only:
        md += _board_md(r["board"])
    return "\n".join(md)


def write_report(folder: Path, report: dict, area_only: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stem = "area" if area_only else "report"
    if area_only:
        keys = ("pattern", "flexible", "array", "values", "speedup_limit", "multipliers_per_pe",
                "lanes", "area", "sparsity_tax")
        data = {k: report[k] for k in keys if k in report}
    else:
        data = {k: v for k, v in report.items() if k != "summary"}
    write_json(folder / f"{stem}.json", data)
    (folder / f"{stem}.md").write_text(markdown(report, area_only) + "\n")
