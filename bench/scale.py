"""``python -m bench scale``: how the generator's stages grow with the array.

For pattern ``4:6,2:4``, int8, square arrays from 1x1 to 64x64 PEs (``--max-side N``: up
to NxN; ``--quick``: 1x1 and 2x2), every stage runs in its own child process (``bench.stage`` for the Python stages,
``make`` for Verilator, the YoWASP yosys behind ``synth`` for synthesis), and
``measure_child`` charges its wall time and peak resident memory (of the process and
its descendants) to it. Then the growth exponent of each stage versus the PE count, and
the targets of issue 12: 16x16 end to end within 3 minutes, 64x64 within the machine's
24 GiB, every stage growing at most as PEs^1.1 from 16x16 to 64x64.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

from gen.area import COMPOSE_ABOVE_PES
from gen.emit import SHARE_MODULES_ABOVE_PES

from .common import Table, fit_exponent, measure_child, progress, write_outputs

PATTERN = "4:6,2:4"
#: Sizes of ``--max-side``; the default run goes to 64x64. A size whose stage fails ends
#: the run with a note and the sizes that completed (exit status 1).
ALL_SIDES = (1, 2, 4, 8, 16, 32, 64)
SIDES = ALL_SIDES
QUICK_SIDES = (1, 2)
K_GROUPS = 4           # the testbench GEMM: M = 2*rows, N = 2*cols, K = 4 groups
TIMEOUT = 3600.0

#: (key, label): the stages in the order they run.
STAGES = (
    ("elab", "elaborate"),
    ("verilog", "Verilog"),
    ("tb", "testbench"),
    ("vl_build", "Verilator build"),
    ("vl_run", "Verilator run"),
    ("nand2", "NAND2 synth"),
    ("ecp5", "ECP5 synth"),
)
#: The stages of a user's run (``elaborate`` is a diagnostic: ``Verilog`` elaborates again).
END_TO_END = ("verilog", "tb", "vl_build", "vl_run", "nand2", "ecp5")
END_TO_END_SIDE, END_TO_END_LIMIT_S = 16, 180.0
MEMORY_SIDE, MEMORY_LIMIT_MIB = 64, 24 * 1024
GROWTH_FROM, GROWTH_TO, GROWTH_LIMIT = 16, 64, 1.1
_PY_STAGE = {"elab": "elaborate", "verilog": "verilog", "tb": "testbench",
             "nand2": "nand2", "ecp5": "ecp5"}


def _project_env() -> dict:
    """The children import the project from its checkout, wherever they run."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _python_stage(stage: str, work: Path, cfg: dict):
    m = measure_child([sys.executable, "-m", "bench.stage", stage, str(work), json.dumps(cfg)],
                      cwd=Path(__file__).resolve().parents[1], timeout=TIMEOUT,
                      env=_project_env())
    from .stage import parse
    return m, parse(m.stdout)


_VERILATOR_TIMES = re.compile(r"Walltime [\d.]+ s \(elab=(?P<elab>[\d.]+), "
                               r"cvt=(?P<cvt>[\d.]+), bld=(?P<bld>[\d.]+)\)")


def _verilator(work: Path, expected_steps: int, latency: int) -> tuple:
    """Build and run the testbench; it must pass in ``expected_steps + latency`` cycles
    (``hdl.top.last_beat_latency``: a 64x64 tile leaves in two beats)."""
    from gen.simulate import parse_report
    from synth import tools
    tb = work / "tb"
    make = [tools.find("make").path, "--no-print-directory",
            f"VERILATOR={tools.find('verilator').path}"]
    build = measure_child(make + ["build-verilator"], cwd=tb, timeout=TIMEOUT,
                          env=tools.child_env())
    run = measure_child(make + ["run-verilator"], cwd=tb, timeout=TIMEOUT, env=tools.child_env())
    r = parse_report(run.stdout)
    if not r["passed"] or r["cycles"] != expected_steps + latency:
        raise RuntimeError(f"Verilator run in {tb} did not pass with {expected_steps} + "
                           f"{latency} cycles: {r}\n{run.stdout[-2000:]}")
    # Verilator's own split of the build: elaborate + convert to C++, then the C++ build
    m = _VERILATOR_TIMES.search(build.stdout)
    info = {"cpp_bytes": sum(f.stat().st_size for f in (tb / "obj_dir").iterdir()
                             if f.suffix in (".cpp", ".h"))}
    if m:
        info.update(seconds_verilate=float(m["elab"]) + float(m["cvt"]),
                    seconds_cxx=float(m["bld"]))
    return build, info, run, r


def measure_size(side: int, root: Path, fast: bool) -> dict:
    """Every stage of one ``side x side`` array; ``{key: (Measured, info)}`` + extras."""
    work = root / f"{side}x{side}"
    cfg = {"pattern": PATTERN, "rows": side, "cols": side, "width": 8, "signed": True}
    from hdl.config import AcceleratorConfig
    from hdl.top import last_beat_latency
    from hss import Pattern
    group = Pattern.parse(PATTERN).group_size
    out = {}
    for key, label in STAGES:
        if key == "vl_run":
            continue
        if key == "vl_build":
            build, info, run, report = _verilator(work, out["tb"][1]["steps"],
                                                  last_beat_latency(AcceleratorConfig(
                                                      PATTERN, side, side)))
            out["vl_build"] = (build, info)
            out["vl_run"] = (run, report)
            progress(f"{side}x{side} Verilator build {build.seconds:.1f} s "
                     f"({build.peak_mib:.0f} MiB; C++ build {info.get('seconds_cxx', 0):.1f} s"
                     f" of {info['cpp_bytes'] / 1e6:.1f} MB C++), run {run.seconds:.2f} s: "
                     f"PASS, {report['cycles']} cycles")
            continue
        stage_cfg = dict(cfg)
        if key == "tb":
            stage_cfg.update(m=2 * side, n=2 * side, k=K_GROUPS * group, seed=side)
        if key == "nand2":
            stage_cfg["fast"] = fast
        m, info = _python_stage(_PY_STAGE[key], work, stage_cfg)
        out[key] = (m, info)
        extra = {"verilog": lambda i: f", {i['bytes']:,} bytes, {i['modules']} modules",
                 "nand2": lambda i: f", {i['nand2_eq']:,.0f} NAND2-eq",
                 "ecp5": lambda i: f", {i['lut4']:,} LUT4",
                 "elab": lambda i: f", {i['netlist_cells']:,} netlist cells"}.get(
                     key, lambda i: "")(info)
        progress(f"{side}x{side} {label} {m.seconds:.1f} s ({m.peak_mib:.0f} MiB){extra}")
    return out


def _fit(xs, ys):
    e = fit_exponent(xs, ys)
    return round(e, 2) + 0.0 if e is not None else None


def _series(results, sides) -> dict[str, tuple[list, str]]:
    """Every measured cost per size, ``name: (values, kind)``; kind ``s`` (seconds, wall
    time of a stage or in-process time of a part of it), ``MiB`` or ``count``."""
    def info(key, field):
        return [results[s][key][1][field] for s in sides]

    out = {}
    for key, label in STAGES:
        out[label] = ([results[s][key][0].seconds for s in sides], "s")
    for key, label in (("elab", "elaborate"), ("verilog", "Verilog")):
        work, gc_s = info(key, "seconds"), info(key, "seconds_gc")
        out[f"{label}: in-process"] = (work, "s")
        out[f"{label}: in Python's GC"] = (gc_s, "s")
        out[f"{label}: outside the GC"] = ([w - g for w, g in zip(work, gc_s)], "s")
    for key, label, abc in (("nand2", "NAND2 synth", "ABC"), ("ecp5", "ECP5 synth", "ABC9")):
        work, abc_s = info(key, "seconds"), info(key, "seconds_abc")
        out[f"{label}: {abc}"] = (abc_s, "s")
        out[f"{label}: all but {abc}"] = ([w - x for w, x in zip(work, abc_s)], "s")
    if all("seconds_cxx" in results[s]["vl_build"][1] for s in sides):
        out["Verilator build: verilate"] = (info("vl_build", "seconds_verilate"), "s")
        out["Verilator build: C++ compile"] = (info("vl_build", "seconds_cxx"), "s")
    for key, label in STAGES:
        out[f"{label}: peak MiB"] = ([results[s][key][0].peak_mib for s in sides], "MiB")
    for label, key, field in (("Verilog bytes", "verilog", "bytes"),
                              ("Verilog modules", "verilog", "modules"),
                              ("netlist cells", "elab", "netlist_cells"),
                              ("Verilated C++ bytes", "vl_build", "cpp_bytes"),
                              ("NAND2-eq", "nand2", "nand2_eq"),
                              ("ECP5 LUT4", "ecp5", "lut4")):
        out[label] = (info(key, field), "count")
    return out


def _fit_table(series, sides, command) -> Table:
    pes = [s * s for s in sides]
    pairs = list(zip(range(len(sides) - 1), range(1, len(sides))))
    total = sum(series[label][0][-1] for _, label in STAGES)
    rows = []
    for name, (v, kind) in series.items():
        rows.append([name, _fit(pes, v)]
                    + [_fit([pes[i], pes[j]], [v[i], v[j]]) for i, j in pairs]
                    + [round(v[-1], 2) if kind != "count" else v[-1],
                       f"{100 * v[-1] / total:.0f} %" if kind == "s" else None])
    big = sides[-1]
    return Table(
        "scale_fit", "Growth exponents vs PE count (cost ~ PEs^exponent)",
        ["cost", "exp (all sizes)"] + [f"exp {sides[i]}x{sides[i]}-{sides[j]}x{sides[j]}"
                                       for i, j in pairs]
        + [f"at {big}x{big}", "share of total time"], rows, command,
        ["`exp (all sizes)`: least-squares slope of log(cost) vs log(PEs) (`fit_exponent`); "
         "`exp AxA-BxB`: the slope between two neighbouring sizes (4x the PEs). Wall times "
         "of small arrays are dominated by fixed costs (interpreter start and imports, "
         "~0.3 s; YoWASP and C++ runtime builds), so the slopes between the larger arrays "
         "show the growth; *in-process* parts exclude those. Parts of a stage: Python's "
         "garbage collector timed with `gc.callbacks`; yosys passes timed live from the log "
         "(ABC = the `abc` passes of the NAND2 flow, ABC9 = the `abc9` mapping of "
         "`synth_ecp5`)."])


def _targets(results, sides, command) -> Table | None:
    """Issue 12's targets, each measured and judged ("not measured" when the run lacks the
    size); None when the run is too small for any (``--quick``)."""
    if END_TO_END_SIDE not in sides:
        return None
    label = dict(STAGES)
    e2e = results[END_TO_END_SIDE]
    e2e_s = sum(e2e[k][0].seconds for k in END_TO_END)
    parts = ", ".join(f"{label[k]} {e2e[k][0].seconds:.1f}" for k in END_TO_END)
    n = f"{END_TO_END_SIDE}x{END_TO_END_SIDE}"
    rows = [[f"{n} end to end (s)", round(e2e_s, 1), END_TO_END_LIMIT_S,
             "met" if e2e_s <= END_TO_END_LIMIT_S else "MISSED", parts]]
    memory = f"{MEMORY_SIDE}x{MEMORY_SIDE} peak memory of any stage (MiB)"
    if MEMORY_SIDE in results:
        big = results[MEMORY_SIDE]
        peak_key = max(big, key=lambda k: big[k][0].peak_mib)
        peak = big[peak_key][0].peak_mib
        rows.append([memory, round(peak), MEMORY_LIMIT_MIB,
                     "met" if peak <= MEMORY_LIMIT_MIB else "MISSED",
                     f"{label[peak_key]}; every stage completed"])
    else:
        rows.append([memory, None, MEMORY_LIMIT_MIB, "not measured",
                     f"{MEMORY_SIDE}x{MEMORY_SIDE} did not complete in this run"])
    # growth up to the largest size measured, up to GROWTH_TO
    top = max(s for s in sides if s <= GROWTH_TO)
    p0, p1 = GROWTH_FROM ** 2, top ** 2
    for key, name in STAGES:
        what = f"growth of {name}, {GROWTH_FROM}x{GROWTH_FROM} to {GROWTH_TO}x{GROWTH_TO} (PEs^x)"
        if top == GROWTH_FROM:
            rows.append([what, None, GROWTH_LIMIT, "not measured", ""])
            continue
        a, b = results[GROWTH_FROM][key][0].seconds, results[top][key][0].seconds
        e = _fit([p0, p1], [a, b])
        verdict = "met" if e is not None and e <= GROWTH_LIMIT else "MISSED"
        if top != GROWTH_TO:
            verdict += f" (to {top}x{top} only)"
        rows.append([what, e, GROWTH_LIMIT, verdict, f"{a:.2f} s -> {b:.2f} s at {top}x{top}"])
    return Table("scale_targets", "Scale targets (issue 12)",
                 ["target", "measured", "limit", "verdict", "detail"], rows, command,
                 [f"End to end = the stages of a user's run "
                  f"({', '.join(label[k] for k in END_TO_END)}), each in its own process, one "
                  f"after the other, on this machine's cores. Growth: the slope of log(wall "
                  f"time) vs log(PEs) between the two sizes; a stage that takes well under a "
                  f"second at both sizes is dominated by start-up, so its slope says little."])


def _plot(sides, seconds: dict[str, list[float]], path: Path) -> None:
    """Log-log wall time of each stage (``seconds[key]``, one per side) vs PEs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    pes = [s * s for s in sides]
    fig, ax = plt.subplots(figsize=(9, 5))
    for key, label in STAGES:
        ax.plot(pes, seconds[key], marker="o", label=label)
    ref = [seconds["nand2"][0] * p / pes[0] for p in pes]
    ax.plot(pes, ref, color="grey", linestyle=":", label="linear (through NAND2 synth\nat the "
            "smallest array)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(pes, [f"{s}x{s}\n{p} PE{'s' if p > 1 else ''}" for s, p in zip(sides, pes)])
    ax.set_xlabel("array")
    ax.set_ylabel("wall time of the stage's process (s)")
    ax.set_title(f"Generator stages vs array size ({PATTERN}, int8)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _notes(results, sides, series) -> list[str]:
    big, prev = sides[-1], sides[-2]
    pes = [s * s for s in sides]
    pb, pp = pes[-1], pes[-2]
    rb, rp = results[big], results[prev]
    name = dict(STAGES)
    secs = {k: rb[k][0].seconds for k, _ in STAGES}
    total = sum(secs.values())
    order = sorted(secs, key=secs.get, reverse=True)
    lim, second = order[0], order[1]
    vb = rb["verilog"][1]
    def pair_exp(label, i, j):
        v = series[label][0]
        return _fit([pes[i], pes[j]], [v[i], v[j]])

    def px(label, i=-2, j=-1):
        e = pair_exp(label, i, j)
        return "-" if e is None else f"{e:.2f}"

    def path(label, fmt="{:.1f}"):
        return " -> ".join(fmt.format(x) for x in series[label][0])

    notes = [
        "Columns: *elab* = elaborate, *tb* = testbench, *vl* = Verilator, *nand2* / *ecp5* "
        "= synthesis flows; *NAND2-eq* from the NAND2 flow, *ECP5 LUT4* from the ECP5 flow. "
        "Growth exponents: `scale_fit`.",
        "",
        f"Each stage runs in its own process (`python -m bench.stage`, `make` for "
        f"Verilator); `s` is its wall time (interpreter start and imports included, ~0.3 s), "
        f"`MiB` the peak resident memory of the process and its descendants (`os.wait4`). "
        f"*elaborate* = `Fragment.get` + `build_netlist` (a diagnostic, not part of the end "
        f"to end time: *Verilog* elaborates again); *Verilog* = `gen.emit.emit_verilog` as "
        f"`python -m gen` runs it (the accelerator and its decompressor, each elaborated and "
        f"converted by Amaranth's built-in Yosys; above {SHARE_MODULES_ABOVE_PES} PEs every "
        f"distinct module defined once); *testbench* = `gemm_vectors` + `write_testbench` for "
        f"Z[2·rows, 2·cols] with K = {K_GROUPS} groups ({K_GROUPS} steps per tile, 4 tiles); "
        f"*Verilator run* simulates those {K_GROUPS * 4} steps (PASS checked), so it is "
        f"start-up only; Verilator builds with `-j 2`. *NAND2 synth* and *ECP5 synth* = "
        f"`gen.area.synthesize_design` as `python -m gen` runs it (the full flows, "
        f"`fast=False`): up to {COMPOSE_ABOVE_PES} PEs `synth.area_nand2` and `synth.ecp5` "
        f"(flattened `synth_ecp5`), above it composed: each distinct module synthesized "
        f"once (`synth.flows.area_nand2_composed`; `synth.flows.ecp5_composed` with each PE "
        f"kept whole). *end to end* = every stage but *elaborate*.",
        "",
        f"**Limiting stage at {big}x{big}**: {name[lim]}, {secs[lim]:.0f} s of {total:.0f} s "
        f"({100 * secs[lim] / total:.0f} %), then {name[second]} ({secs[second]:.0f} s); peak "
        f"memory {rb[lim][0].peak_mib / 1024:.1f} GiB and "
        f"{rb[second][0].peak_mib / 1024:.1f} GiB.",
    ]
    for key in ("nand2", "ecp5"):
        label, abc = name[key], "ABC" if key == "nand2" else "ABC9"
        info_b = rb[key][1]
        flow = ("keeps the hierarchy, so ABC maps each module on its own, once per distinct "
                f"module ({vb['modules']:,} modules in the Verilog at {big}x{big})"
                if key == "nand2" else
                "keeps each distinct PE whole and flattens the rest (row and column wiring, "
                "control) around them, so ABC9 maps the PEs once and the glue of the array")
        notes.append(
            f"- {label}: the flow {flow}. {abc} takes {info_b['seconds_abc']:.0f} s "
            f"({100 * info_b['seconds_abc'] / info_b['seconds']:.0f} %) at {big}x{big}. From "
            f"{prev}x{prev} to {big}x{big} the stage grows as "
            f"PEs^{px(label)} ({abc} PEs^{px(f'{label}: {abc}')}, "
            f"the rest PEs^{px(f'{label}: all but {abc}')}): "
            f"{rp[key][0].seconds / pp:.2f} -> {secs[key] / pb:.2f} s per PE.")
    notes.append(
        f"- Verilog size grows as PEs^{px('Verilog bytes')} from {prev}x{prev} "
        f"to {big}x{big} ({vb['bytes'] / 1e6:.1f} MB at {big}x{big}, "
        f"{vb['bytes'] / pb / 1e3:.0f} kB per PE, `src` paths relative as `python -m gen` "
        f"writes them; {vb['modules']:,} modules); NAND2-eq and LUT4 grow as "
        f"PEs^{px('NAND2-eq')} and PEs^{px('ECP5 LUT4')}.")

    # faster than linear: a step between neighbouring sizes above PEs^1.15 on a cost of at
    # least 0.5 s (below that, timer noise and fixed costs decide)
    steps = []
    for label, (v, kind) in series.items():
        if kind != "s":
            continue
        for i in range(len(sides) - 1):
            e = pair_exp(label, i, i + 1)
            if e is not None and e >= 1.15 and v[i] >= 0.5:
                steps.append(f"{label} from {sides[i]}x{sides[i]} to "
                             f"{sides[i + 1]}x{sides[i + 1]} (PEs^{e:.2f})")
    notes.append("")
    if steps:
        notes.append("**Faster than linear** (a step between neighbouring sizes above "
                     "PEs^1.15, on at least 0.5 s): " + "; ".join(steps) + ".")
    else:
        notes.append("No step between neighbouring sizes grows faster than PEs^1.15 (on at "
                     "least 0.5 s).")
    for key, label in (("elab", "elaborate"), ("verilog", "Verilog")):
        fulls = " -> ".join(str(results[s][key][1]["gc_collections"][2]) for s in sides)
        notes.append(
            f"- {label}, in-process seconds {path(f'{label}: in-process')}: Python's cyclic "
            f"garbage collector takes {path(f'{label}: in Python' + chr(39) + 's GC')} s "
            f"({100 * rb[key][1]['seconds_gc'] / rb[key][1]['seconds']:.0f} % at {big}x{big}; "
            f"full collections, each walking every live object: {fulls}); outside the "
            f"collector {path(f'{label}: outside the GC')} s, PEs^"
            f"{_fit(pes, series[f'{label}: outside the GC'][0]):.2f} over all sizes.")
    if "Verilator build: C++ compile" in series:
        notes.append(
            f"- Verilator build: Verilator itself (elaborate + convert) "
            f"{path('Verilator build: verilate')} s, the C++ build "
            f"{path('Verilator build: C++ compile')} s (PEs^"
            f"{px('Verilator build: C++ compile')} from {prev}x{prev} to {big}x{big}) for "
            f"{path('Verilated C++ bytes', '{:,.0f}')} bytes of C++ (PEs^"
            f"{px('Verilated C++ bytes')}). The testbench's Makefile passes `--output-split 0`, "
            f"so the whole model is one translation unit compiled by one g++ process; `-j 2` "
            f"only runs the runtime library's files beside it.")
    for key in ("nand2", "ecp5"):
        label, abc = name[key], "ABC" if key == "nand2" else "ABC9"
        notes.append(f"- {label}: {abc} {path(f'{label}: {abc}')} s, the rest "
                     f"{path(f'{label}: all but {abc}')} s.")
    return notes


def run(args) -> int:
    sides = QUICK_SIDES if args.quick else SIDES
    if getattr(args, "max_side", None) is not None:
        if args.max_side not in ALL_SIDES:
            raise SystemExit(f"bench scale: error: --max-side {args.max_side}: one of "
                             f"{', '.join(map(str, ALL_SIDES))}")
        sides = tuple(s for s in (QUICK_SIDES if args.quick else ALL_SIDES)
                      if s <= args.max_side)
    results, failed = {}, None
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for side in sides:
            try:
                results[side] = measure_size(side, Path(tmp), fast=False)
            except RuntimeError as e:     # a stage failed: report the sizes that completed
                failed = (side, str(e))
                progress(f"{side}x{side} failed: {str(e).splitlines()[0]}")
                break
    sides = tuple(results)
    if len(sides) < 2:
        raise SystemExit(f"bench scale: error: too few sizes completed: {failed}")
    pes = [s * s for s in sides]

    from hss import Pattern
    slots = Pattern.parse(PATTERN).slots
    short = [k.replace("_", " ") for k, _ in STAGES]
    columns = ["array", "PEs", "MACs", "Verilog bytes", "modules", "NAND2-eq", "ECP5 LUT4"]
    columns += [f"{k} s" for k in short] + ["total s"] + [f"{k} MiB" for k in short]
    rows = []
    for side, p in zip(sides, pes):
        r = results[side]
        rows.append([f"{side}x{side}", p, p * slots, r["verilog"][1]["bytes"],
                     r["verilog"][1]["modules"], round(r["nand2"][1]["nand2_eq"]),
                     r["ecp5"][1]["lut4"]]
                    + [round(r[k][0].seconds, 2) for k, _ in STAGES]
                    + [round(sum(r[k][0].seconds for k, _ in STAGES), 1)]
                    + [round(r[k][0].peak_mib) for k, _ in STAGES])
    series = _series(results, sides)
    notes = _notes(results, sides, series)
    if failed:
        side, error = failed
        last = [line for line in error.splitlines() if line.strip()][-1]
        notes += ["", f"**{side}x{side} did not complete**: {error.splitlines()[0]} "
                      f"(last line: `{last.strip()}`); the tables stop at "
                      f"{sides[-1]}x{sides[-1]}."]
    table = Table("scale", f"Generator stages vs array size ({PATTERN}, int8)", columns, rows,
                  args.command, notes)
    write_outputs(table, args.out, args.machine)
    fit = _fit_table(series, sides, args.command)
    write_outputs(fit, args.out, args.machine)
    targets = _targets(results, sides, args.command)
    if targets is not None:
        write_outputs(targets, args.out, args.machine)
    _plot(sides, {k: [results[s][k][0].seconds for s in sides] for k, _ in STAGES},
          args.out / "scale.png")
    print(f"wrote {args.out / 'scale.png'}")
    status = 1 if failed else 0
    (args.out / "scale_details.json").write_text(json.dumps(
        {f"{s}x{s}": {k: {"seconds": m.seconds, "peak_mib": m.peak_mib, "info": info}
                      for k, (m, info) in results[s].items()} for s in sides}, indent=1) + "\n")
    return status
