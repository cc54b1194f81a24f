"""Cycle efficiency: testbench cycles of a GEMM vs the ideal ceil(M/rows)*ceil(N/cols)*K/S,
measured in Verilator on the emitted Verilog, from one group to K = 4096."""
from __future__ import annotations

import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import hss
from gen.emit import TOP, emit_verilog
from gen.inputs import random_operands
from gen.simulate import simulate
from gen.testbench import write_testbench
from hdl import LATENCY, AcceleratorConfig
from hdl.stimulus import gemm_vectors

from .common import Table, progress, write_outputs

PATTERNS = ["4:6,2:4", "2:4", "8:8", "2:3,3:4,2:4"]
GROUPS = [1, 4, 16, 64]      # K in groups, then K = 4096 (padded to the group)


def _cases(quick: bool):
    side, m, n = (2, 4, 4) if quick else (4, 8, 8)
    patterns = PATTERNS[:1] if quick else PATTERNS
    for pattern in patterns:
        s = hss.Pattern.parse(pattern).group_size
        ks = [g * s for g in (GROUPS[:2] if quick else GROUPS)] + ([] if quick else [4096])
        for k in sorted(set(ks)):
            yield pattern, side, m, k, n


def _measure(case) -> dict:
    pattern, side, m, k, n = case
    config = AcceleratorConfig(pattern, side, side, max_k=max(4096, k))
    W, A = random_operands(config, m, k, n, seed=k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        vectors = gemm_vectors(config, W, A)
    with tempfile.TemporaryDirectory(prefix="bench-cycles-") as work:
        work = Path(work)
        (work / "rtl").mkdir()
        (work / "rtl" / f"{TOP}.v").write_text(emit_verilog(config)[0][TOP])
        write_testbench(work / "tb", vectors, top=TOP, rtl_rel=f"../rtl/{TOP}.v")
        r = simulate(work / "tb", "verilator")
    if not r.passed:
        raise RuntimeError(f"{pattern} K={k}: testbench failed, see {r.log}")
    return {"tiles": vectors.tiles, "steps": vectors.steps_per_tile, "cycles": r.cycles,
            "ideal": vectors.tiles * vectors.steps_per_tile}


def run(args) -> None:
    cases = list(_cases(args.quick))
    progress(f"{len(cases)} Verilator runs, {args.jobs} at a time")
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for (pattern, side, m, k, n), r in zip(cases, pool.map(_measure, cases)):
            p = hss.Pattern.parse(pattern)
            padded = r["steps"] * p.group_size
            dense_cycles = r["tiles"] * padded // p.slots + LATENCY
            no_overlap = r["tiles"] * (r["steps"] + LATENCY)
            rows.append([pattern, f"{side}x{side}", f"{m}x{k}x{n}", padded, r["steps"],
                         r["tiles"], r["ideal"], r["cycles"], r["cycles"] / r["ideal"],
                         r["cycles"] - r["ideal"], no_overlap / r["ideal"],
                         dense_cycles / r["cycles"]])
            progress(f"{pattern} K={k}: {r['cycles']} cycles, ideal {r['ideal']}")
    table = Table(
        "cycles", "Cycles of a GEMM vs the ideal ceil(M/rows) * ceil(N/cols) * K/S (Verilator)",
        ["pattern", "array", "MxKxN", "padded K", "K/S", "tiles", "ideal", "measured",
         "measured / ideal", "overhead cycles", "if tiles did not overlap", "speed-up vs dense"],
        rows, args.command, [
            f"Overhead is the pipeline latency ({LATENCY} cycles: select, multiply, add, "
            "accumulate), paid once per GEMM: the first group of tile t+1 enters the "
            "cycle after the last group of tile t, and the finished tile waits in the output "
            "register while the next one accumulates. Without that overlap every tile would "
            f"pay the fill and drain ({LATENCY} cycles), the 'if tiles did not overlap' column.",
            "Speed-up vs dense: cycles of a dense PE array with the same multipliers "
            "(prod(G) per PE: K/prod(G) steps per tile) over the measured cycles; it approaches "
            "1/density as K grows."])
    write_outputs(table, args.out, args.machine)
    _plot(rows, args.out / "cycles.png")


def _plot(rows, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for pattern in dict.fromkeys(r[0] for r in rows):
        pts = [(r[3], r[8]) for r in rows if r[0] == pattern]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=pattern)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("K (padded to the group size)")
    ax.set_ylabel("measured cycles / ideal")
    ax.set_title("Cycle efficiency: pipeline fill and drain paid once")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
