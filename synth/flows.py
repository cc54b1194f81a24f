"""Synthesis flows: Verilog text + top module name -> plain, JSON-ready dicts.

Each flow writes ``design.v`` and its own ``<flow>.ys``/``<flow>.log`` and
reports into ``workdir`` (so several flows can share one folder), and returns
numbers only: no paths, no times, so results can be committed and diffed.

Module names are returned clean: yosys keeps Amaranth's escaped identifiers
(``\\top.sub``) with their backslash in module names but not in cell types,
so we strip one leading backslash everywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from .wrapper import pin_light_wrapper
from .yosys import (TRANSISTORS, SynthError, liberty_cells, liberty_path, run_nextpnr_ecp5,
                    run_yosys)

__all__ = ["area_nand2", "area_nand2_composed", "ecp5", "ecp5_composed", "ice40", "fmax_ecp5", "top_ports",
           "summarize_area", "clean_name", "top_arg"]

# Flip-flop types the Liberty file has; everything else (enables, sync resets,
# negative clocks) is turned into logic around these by dfflegalize.
_DFF_LEGAL = "-cell $_DFF_P_ 01 -cell $_DFF_PP0_ 01 -cell $_DFF_PP1_ 01"


# Work around yosys issue #4349 (still in 0.69): abc9 re-imports its result by
# appending "[i]" to wire names and asserts when a wire "x" and a wire "x[0]"
# both exist, which Amaranth's array-typed signals produce ("acts[0]" next to
# "acts[0][0]"). Hiding bracketed internal names before the LUT mapping avoids
# it without changing the logic; ports keep their names.
_ABC9_NAME_FIX = "rename -hide w:*[* i:* %d o:* %d"


def _fpga_script(command: str, top: str, extra: str, report: str, stat: str = "",
                 until: str = "") -> str:
    """``command`` (synth_ecp5/synth_ice40) split at map_luts around the name fix;
    ``stat``: options of the final ``stat`` (``-top X`` totals a kept hierarchy);
    ``until``: ``check`` to skip that label's ``autoname`` and checks (default: run to the
    end); what ``stat`` needs of it (library cells as black boxes) still runs."""
    if until not in ("", "check"):
        raise ValueError(f"until must be '' or 'check', not {until!r}")
    return "\n".join([
        "read_verilog design.v",
        f"{command} -top {top} -run :map_luts",
        _ABC9_NAME_FIX,
        f"{command} -top {top} -run map_luts:{until}{extra}",
        *(["hierarchy -check", "blackbox =A:whitebox"] if until else []),
        f"tee -q -o {report} stat -json" + (f" {stat}" if stat else ""),
        "",
    ])


def clean_name(name: str) -> str:
    """A Yosys module or cell name without the backslash of an escaped identifier."""
    return name[1:] if name.startswith("\\") else name


def top_arg(top: str) -> str:
    """Top name for a yosys command line (yosys adds the backslash itself)."""
    top = clean_name(top)
    if not top or any(c.isspace() for c in top):
        raise ValueError(f"bad top module name {top!r}")
    return top


def _prepare(verilog: str, workdir) -> Path:
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "design.v").write_text(verilog)
    return workdir


def _read_stat(path: Path) -> dict:
    """Load a ``stat -json`` report and rewrite it without the build-path banner."""
    data = json.loads(path.read_text())
    data.pop("creator", None)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return data


def _write_report(workdir: Path, name: str, report: dict) -> None:
    (workdir / name).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")


def area_mapping(top: str, fast: bool = False) -> list[str]:
    """The Yosys commands that map ``design.v`` onto ``cells.lib`` (both in the working
    folder) and write ``area_stat.json``: shared by the area flow and the gate-level
    netlist of ``synth.toggle``, so that both see the same gates."""
    return ["read_verilog design.v",
            f"synth -top {top}" + (" -noabc" if fast else ""),
            f"dfflegalize {_DFF_LEGAL}",
            "dfflibmap -liberty cells.lib",
            "abc -liberty cells.lib",
            "opt_clean",
            "tee -q -o area_stat.json stat -json -liberty cells.lib"]


def area_nand2(verilog: str, top: str, workdir: str | os.PathLike, *,
               fast: bool = False, timeout: float | None = None) -> dict:
    """ASIC-style area in NAND2 equivalents, per module and for the hierarchy.

    Flow: ``synth -top`` (hierarchy kept so each Amaranth submodule gets its
    own numbers), ``dfflegalize`` to the flip-flops of cells.lib,
    ``dfflibmap``/``abc -liberty cells.lib``, ``stat -json``.

    Returns ``{"top", "modules": {name: {...}}, "total": {...}}``; each module
    has ``cells`` (Liberty cell counts, local), ``submodules`` ({module: n}),
    ``unmapped`` (cells neither in the library nor modules; normally empty),
    ``area``, ``comb_area``, ``seq_area``, ``ff_count``, ``transistors``
    (local), ``total_area``, ``total_comb_area``, ``total_seq_area``,
    ``total_ff_count``, ``total_transistors`` (one instance including its
    submodules) and ``instances`` (how often it occurs under top). ``total``
    is the top's inclusive figures plus the summed ``cells``.

    ``fast=True`` skips the generic ABC pass inside ``synth`` (``-noabc``):
    about half the run time, areas within about 1% (measured +0.3% on a
    16-PE accelerator).

    Transistors = sum over cells of count x TRANSISTORS[cell] (static CMOS,
    24 per DFF, 28 per DFF with async set/reset; see cells.lib).
    """
    top = top_arg(top)
    workdir = _prepare(verilog, workdir)
    shutil.copyfile(liberty_path(), workdir / "cells.lib")
    run_yosys("\n".join([
        *area_mapping(top, fast),
        "tee -q -o area_stat.txt stat -liberty cells.lib",
        "",
    ]), workdir, "area", timeout=timeout)
    stat = _read_stat(workdir / "area_stat.json")
    report = summarize_area(stat, top, liberty_cells(workdir / "cells.lib"))
    _write_report(workdir, "area.json", report)
    return report


def area_nand2_composed(verilog: str, top: str, workdir: str | os.PathLike, *,
                        fast: bool = False, timeout: float | None = None) -> dict:
    """``area_nand2`` that maps each *distinct* module once and composes the hierarchy.

    Amaranth writes one module per instance, so an array of N PEs is N copies of the same
    module bodies; ``synth.compose.distinct_modules`` keeps one representative per class of
    modules identical up to their names (and their submodules', themselves identical) and
    points every instantiation at it. That reduced design goes through exactly the script of
    ``area_nand2`` (``area_mapping``: hierarchy kept, each module mapped on its own), and the
    ``stat`` of each representative is copied back to every member of its class, so the
    result has the same shape and meaning as ``area_nand2``'s: every original module name
    with its own ``cells``, ``submodules`` and ``instances``, and the top's total
    = sum over modules of instances x local area (the top's own glue included).

    Exact by construction but for ABC seeing a module under another name: the flow maps each
    module on its own (no flatten, nothing optimized across a module boundary), so a copy
    synthesizes as its representative does, except that yosys numbers internal nets
    design-wide and ABC's result depends a little on their order (two copies of a module in
    one ``area_nand2`` run differ the same way). Measured against ``area_nand2`` for
    4:6,2:4: +0.07 % (2x2), +0.08 % (4x4, 8x8, 16x16); for HighLight's flexible build:
    +0.24 % (2x2), +0.26 % (4x4); flip-flops equal (sim_tests/test_synth_compose.py).
    One Yosys run on ~10 distinct modules instead of all of them: 8x8 in ~10 s instead of
    ~100 s, 16x16 in ~20 s instead of ~440 s.

    Adds ``"composed": {"modules" (in the hierarchy, top included), "distinct_modules"
    (synthesized), "instances" (module instances under top, top excluded),
    "flat_equivalent"}``: ``flat_equivalent`` is False when the total was composed; if the
    synthesized instance counts do not match the text (a tool removed an instance), the
    design is synthesized whole with ``area_nand2`` instead, ``flat_equivalent`` is True
    and ``fallback`` says why.
    """
    from .compose import distinct_modules
    top = top_arg(top)
    workdir = Path(workdir)

    def fallback(reason: str) -> dict:
        report = area_nand2(verilog, top, workdir, fast=fast, timeout=timeout)
        mods = report["modules"].values()
        report["composed"] = {"modules": len(report["modules"]),
                              "distinct_modules": len(report["modules"]),
                              "instances": sum(m["instances"] for m in mods) - 1,
                              "flat_equivalent": True, "fallback": reason}
        _write_report(workdir, "area.json", report)
        return report
    try:
        comp = distinct_modules(verilog, top)
    except ValueError as e:     # text the splitter does not know: let yosys read it whole
        return fallback(f"not split into modules: {e}")
    info = {"modules": len(comp.rep), "distinct_modules": comp.distinct,
            "instances": sum(comp.instances().values()) - 1}
    workdir = _prepare(comp.reduced, workdir)
    shutil.copyfile(liberty_path(), workdir / "cells.lib")
    run_yosys("\n".join([*area_mapping(top, fast), ""]), workdir, "area", timeout=timeout)
    stat = _read_stat(workdir / "area_stat.json")
    try:
        full = comp.expand_stat(stat)
    except ValueError as e:
        return fallback(str(e))
    report = summarize_area(full, top, liberty_cells(workdir / "cells.lib"))
    report["composed"] = {**info, "flat_equivalent": False}
    _write_report(workdir, "area.json", report)
    _write_report(workdir, "composed.json", {"classes": comp.classes})
    return report


def summarize_area(stat: dict, top: str, lib: dict) -> dict:
    """Per-module and hierarchical figures from a yosys ``stat -json`` dict.

    Computed here from cell counts and Liberty areas rather than taken from
    yosys' ``area`` fields, whose meaning (local or inclusive) has changed
    between yosys versions.
    """
    raw = {clean_name(k): v.get("num_cells_by_type", {}) for k, v in stat["modules"].items()}
    top = clean_name(top)
    if top not in raw:
        raise SynthError(f"top module {top!r} not in synthesized design {sorted(raw)}")
    modules = {}
    for name, by_type in raw.items():
        cells, subs, unmapped = {}, {}, {}
        for typ, n in by_type.items():
            typ = clean_name(typ)
            (cells if typ in lib else subs if typ in raw else unmapped)[typ] = n
        comb = sum(n * lib[t]["area"] for t, n in cells.items() if not lib[t]["sequential"])
        seq = sum(n * lib[t]["area"] for t, n in cells.items() if lib[t]["sequential"])
        modules[name] = {
            "cells": dict(sorted(cells.items())),
            "submodules": dict(sorted(subs.items())),
            "unmapped": dict(sorted(unmapped.items())),
            "comb_area": comb, "seq_area": seq,
            "ff_count": sum(n for t, n in cells.items() if lib[t]["sequential"]),
            "transistors": sum(n * TRANSISTORS.get(t, 0) for t, n in cells.items()),
        }

    inclusive = {}

    def visit(name, stack=()):
        if name in stack:
            raise SynthError(f"recursive module hierarchy at {name!r}")
        if name not in inclusive:
            m = modules[name]
            acc = {k: m[k] for k in ("comb_area", "seq_area", "ff_count", "transistors")}
            cells = dict(m["cells"])
            for sub, n in m["submodules"].items():
                sub_acc, sub_cells = visit(sub, stack + (name,))
                for k in acc:
                    acc[k] += n * sub_acc[k]
                for t, c in sub_cells.items():
                    cells[t] = cells.get(t, 0) + n * c
            inclusive[name] = (acc, cells)
        return inclusive[name]

    instances = dict.fromkeys(modules, 0)

    def count(name, mult):
        instances[name] += mult
        for sub, n in modules[name]["submodules"].items():
            count(sub, mult * n)

    visit(top)
    count(top, 1)
    for name, m in modules.items():
        acc, _ = visit(name)
        m["area"] = round(m["comb_area"] + m["seq_area"], 4)
        m["comb_area"] = round(m["comb_area"], 4)
        m["seq_area"] = round(m["seq_area"], 4)
        m["total_comb_area"] = round(acc["comb_area"], 4)
        m["total_seq_area"] = round(acc["seq_area"], 4)
        m["total_area"] = round(acc["comb_area"] + acc["seq_area"], 4)
        m["total_ff_count"] = acc["ff_count"]
        m["total_transistors"] = acc["transistors"]
        m["instances"] = instances[name]
    t = modules[top]
    _, top_cells = visit(top)
    total = {
        "area": t["total_area"], "comb_area": t["total_comb_area"],
        "seq_area": t["total_seq_area"], "ff_count": t["total_ff_count"],
        "transistors": t["total_transistors"], "cells": dict(sorted(top_cells.items())),
    }
    return {"top": top, "modules": dict(sorted(modules.items())), "total": total}


def _fpga_stat(workdir: Path, step: str) -> dict:
    """Cell counts of a flattened FPGA netlist, without yosys' ``$scopeinfo``
    bookkeeping cells (they mark where submodules were and cost nothing)."""
    stat = _read_stat(workdir / f"{step}_stat.json")
    mod = stat.get("design") or next(iter(stat["modules"].values()))
    return {clean_name(k): v for k, v in sorted(mod.get("num_cells_by_type", {}).items())
            if k != "$scopeinfo"}


def _ecp5_synth(verilog, top, workdir, *, netlist, timeout):
    top = top_arg(top)
    workdir = _prepare(verilog, workdir)
    out = " -json ecp5_netlist.json" if netlist else ""
    run_yosys(_fpga_script("synth_ecp5", top, out, "ecp5_stat.json"), workdir, "ecp5",
              timeout=timeout)
    return workdir, {"top": top, **_ecp5_counts(_fpga_stat(workdir, "ecp5"))}


def _ecp5_counts(cells: dict) -> dict:
    return {
        "lut4": cells.get("LUT4", 0),
        "ff": cells.get("TRELLIS_FF", 0),
        "ccu2c": cells.get("CCU2C", 0),
        "mult18x18d": cells.get("MULT18X18D", 0),
        "alu54b": cells.get("ALU54B", 0),
        "dp16kd": cells.get("DP16KD", 0),
        "lutram": cells.get("TRELLIS_DPR16X4", 0),
        "cells": cells,
        "cell_count": sum(cells.values()),
    }


def ecp5(verilog: str, top: str, workdir: str | os.PathLike, *,
         timeout: float | None = None) -> dict:
    """Lattice ECP5 resources after ``synth_ecp5`` (flattened design).

    Run in two halves around ``_ABC9_NAME_FIX`` (yosys issue #4349).

    Returns ``{"top", "lut4", "ff" (TRELLIS_FF), "ccu2c" (2-bit carry cells),
    "mult18x18d", "alu54b", "dp16kd", "lutram" (TRELLIS_DPR16X4), "cells"
    (every cell type: count), "cell_count"}``.
    """
    workdir, report = _ecp5_synth(verilog, top, workdir, netlist=False, timeout=timeout)
    _write_report(workdir, "ecp5.json", report)
    return report


def ecp5_composed(verilog: str, top: str, workdir: str | os.PathLike, *, keep: str,
                  timeout: float | None = None) -> dict:
    """``ecp5`` with the modules whose (bare) name matches the regular expression ``keep``
    synthesized once per distinct body and counted once per instance.

    ``synth_ecp5`` flattens the design, so its time grows with the whole array (16x16 PEs:
    262 s). Here the design is first reduced to one representative per class of identical
    modules (``synth.compose.distinct_modules``); the ``keep`` modules get yosys'
    ``keep_hierarchy``, so each is flattened and mapped *inside* (its submodules merged into
    it, as in the flat flow), while everything else is flattened around them; ``stat -top``
    multiplies each kept module by its instance count. What this cannot see is logic shared
    *between* instances of kept modules: the flat flow merges equivalent flip-flops of
    different instances (e.g. each PE of a row registering the same weights), which a
    composed count keeps, one per instance. The report states the composition.

    Returns ``ecp5``'s dict plus ``"composed": {"kept_modules" (distinct kept modules
    synthesized), "kept_instances", "flat_equivalent": False}``. Raises ``ValueError`` when
    no module matches ``keep`` (nothing to compose: use ``ecp5``) or the instance counts
    after synthesis differ from the text's.
    """
    from .compose import distinct_modules
    top = top_arg(top)
    comp = distinct_modules(verilog, top)
    pattern = re.compile(keep)
    kept = [comp.rep[n] for n in comp.rep if comp.rep[n] == n and pattern.search(n)]
    if not kept:
        raise ValueError(f"no module under {top!r} matches {keep!r}")
    instances = comp.instances()
    expected = {n: sum(instances[m] for m in comp.rep if comp.rep[m] == n) for n in kept}
    text = comp.reduced
    for name in kept:       # as written: an escaped name keeps its backslash
        text = re.sub(rf"^module (\\?{re.escape(name)})(?=[\s(;])",
                      r"(* keep_hierarchy *)\nmodule \1", text, count=1, flags=re.MULTILINE)
    workdir = _prepare(text, workdir)
    # stop before the `check` label: its autoname renames the cells of the flattened array
    # glue in time that grows faster than the array (32x32: 73 of 121 s) and changes no count
    run_yosys(_fpga_script("synth_ecp5", top, "", "ecp5_stat.json", stat=f"-top {top}",
                           until="check"), workdir, "ecp5", timeout=timeout)
    stat = _read_stat(workdir / "ecp5_stat.json")
    by_type = stat["design"]["num_cells_by_type"]
    got = {n: by_type.get(n, 0) for n in kept}
    if got != expected:
        raise ValueError(f"kept instances after synthesis {got} differ from the text "
                         f"{expected}")
    cells = {clean_name(k): v for k, v in sorted(by_type.items())
             if k != "$scopeinfo" and k not in expected}
    report = {"top": top, **_ecp5_counts(cells),
              "composed": {"kept_modules": len(kept),
                           "kept_instances": sum(expected.values()),
                           "flat_equivalent": False}}
    _write_report(workdir, "ecp5.json", report)
    return report


def ice40(verilog: str, top: str, workdir: str | os.PathLike, *, dsp: bool = True,
          timeout: float | None = None) -> dict:
    """Lattice iCE40 resources after ``synth_ice40`` (``-dsp`` for UltraPlus MACs).

    Returns ``{"top", "lut4" (SB_LUT4), "ff" (all SB_DFF* variants), "carry"
    (SB_CARRY), "mac16" (SB_MAC16), "ram40_4k", "cells", "cell_count"}``.
    """
    top = top_arg(top)
    workdir = _prepare(verilog, workdir)
    run_yosys(_fpga_script("synth_ice40" + (" -dsp" if dsp else ""), top, "",
                           "ice40_stat.json"), workdir, "ice40", timeout=timeout)
    cells = _fpga_stat(workdir, "ice40")
    report = {
        "top": top,
        "lut4": cells.get("SB_LUT4", 0),
        "ff": sum(n for t, n in cells.items() if t.startswith("SB_DFF")),
        "carry": cells.get("SB_CARRY", 0),
        "mac16": cells.get("SB_MAC16", 0),
        "ram40_4k": sum(n for t, n in cells.items() if t.startswith("SB_RAM40_4K")),
        "cells": cells,
        "cell_count": sum(cells.values()),
    }
    _write_report(workdir, "ice40.json", report)
    return report


def top_ports(verilog: str, top: str, workdir: str | os.PathLike, *,
              timeout: float | None = None) -> list[tuple[str, str, int]]:
    """``[(name, "input"|"output"|"inout", width)]`` of ``top``, in declaration order.

    Lets callers build a ``pin_light_wrapper`` without parsing Verilog.
    """
    top = top_arg(top)
    workdir = _prepare(verilog, workdir)
    run_yosys("\n".join([
        "read_verilog design.v",
        f"hierarchy -top {top}",
        "proc",
        "write_json ports.json",
        "",
    ]), workdir, "ports", timeout=timeout)
    data = json.loads((workdir / "ports.json").read_text())
    mods = {clean_name(k): v for k, v in data["modules"].items()}
    ports = mods[top]["ports"]
    return [(clean_name(name), p["direction"], len(p["bits"])) for name, p in ports.items()]


def _clock_name(net: str) -> str:
    """``$glbnet$clk$TRELLIS_IO_IN`` -> ``clk`` (best effort)."""
    m = re.fullmatch(r"\$glbnet\$(.+?)(\$TRELLIS_IO_IN)?", net)
    return m.group(1) if m else net


_CELL_SUFFIX = re.compile(r"(_TRELLIS_FF_Q|_MULT18X18D_P|_CCU2C|_LUT4_Z|_PFUMX_Z)[^.]*$")


def _critical_path(rep: dict) -> dict | None:
    """Where the slowest register-to-register path of the clock starts and ends, and how
    much of its delay is logic and how much routing (nextpnr's report)."""
    paths = [p for p in rep.get("critical_paths", [])
             if p.get("from", "").startswith("posedge") and p.get("to", "").startswith("posedge")]
    if not paths or not paths[0].get("path"):
        return None
    steps = paths[0]["path"]
    logic = sum(s["delay"] for s in steps if s["type"] != "routing")
    routing = sum(s["delay"] for s in steps if s["type"] == "routing")
    name = lambda cell: _CELL_SUFFIX.sub("", cell)  # noqa: E731 - the signal, not the cell
    return {"from": name(steps[0]["from"]["cell"]), "to": name(steps[-1]["to"]["cell"]),
            "logic_ns": round(logic, 2), "routing_ns": round(routing, 2)}


def fmax_ecp5(verilog: str, top: str, workdir: str | os.PathLike, *,
              device: str = "25k", package: str = "CABGA381", freq_mhz: float = 100.0,
              seed: int = 1, wrap: bool = False, timeout: float | None = None,
              pnr_timeout: float | None = None) -> dict:
    """Place and route on ECP5 with nextpnr; Fmax and utilization.

    The design must have few pins (nextpnr does not place more than about
    200) and register-to-register paths, or there is no Fmax: either wrap it
    yourself (see ``pin_light_wrapper``) or pass ``wrap=True`` to wrap
    ``top`` here. ``--timing-allow-fail`` is used, so a missed target is a
    result (``met`` False), not an error; ``--seed`` makes runs repeatable.
    ``timeout`` bounds each Yosys step, ``pnr_timeout`` (default: ``timeout``) nextpnr.

    Returns ``{"top", "device", "package", "seed", "target_mhz", "fmax_mhz"
    (slowest clock, None without reg-to-reg paths), "met", "clocks": {clock:
    {"achieved_mhz", "constraint_mhz"}}, "utilization": {bel: {"used",
    "available"}} (only bels used), "synth": ecp5() dict}``.
    """
    top = top_arg(top)
    if wrap:
        ports = top_ports(verilog, top, workdir, timeout=timeout)
        verilog = verilog + "\n" + pin_light_wrapper(top, ports)
        top = "pnr_wrap"
    workdir, synth_report = _ecp5_synth(verilog, top, workdir, netlist=True, timeout=timeout)
    (workdir / "nextpnr_report.json").unlink(missing_ok=True)
    run_nextpnr_ecp5([
        "--json", "ecp5_netlist.json", "--report", "nextpnr_report.json",
        f"--{device}", "--package", package, "--freq", f"{freq_mhz:g}",
        "--seed", str(seed), "--timing-allow-fail",
    ], workdir, "nextpnr", timeout=timeout if pnr_timeout is None else pnr_timeout)
    rep = json.loads((workdir / "nextpnr_report.json").read_text())
    clocks = {
        _clock_name(net): {"achieved_mhz": round(v["achieved"], 3),
                           "constraint_mhz": round(v["constraint"], 3)}
        for net, v in sorted(rep.get("fmax", {}).items())
    }
    fmax = min((c["achieved_mhz"] for c in clocks.values()), default=None)
    util = {bel: {"used": v["used"], "available": v["available"]}
            for bel, v in sorted(rep.get("utilization", {}).items()) if v["used"]}
    report = {
        "top": top, "device": device, "package": package, "seed": seed,
        "target_mhz": freq_mhz, "fmax_mhz": fmax,
        "met": fmax is not None and fmax >= freq_mhz,
        "clocks": clocks, "utilization": util, "synth": synth_report,
        "critical_path": _critical_path(rep),
    }
    _write_report(workdir, "fmax_ecp5.json", report)
    return report
