"""The stages of one ``python -m gen`` run, in a work folder that becomes the output."""
from __future__ import annotations

import shlex
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hss
from hdl import LATENCY
from hdl.stimulus import gemm_vectors
from synth import tools
from synth.tools import ToolMissing

from .area import synthesize_decompressor, synthesize_design
from .emit import DECOMPRESSOR, TOP, emit_verilog, manifest, tool_versions, write_json
from .inputs import file_sha256
from .progress import Progress
from .report import build_report, write_report
from .simulate import needed_tools, simulate
from .testbench import write_testbench

__all__ = ["check_tools", "needed", "run", "ToolMissing"]


def needed(args) -> tuple[str, ...]:
    """The external tools a run with these options uses (names of ``synth.tools``)."""
    names = list(needed_tools(args.sim)) if args.sim != "none" else []
    if args.synth or args.fmax:
        names.append("yosys")
    if args.fmax:
        names.append("nextpnr-ecp5")
    return tuple(names)


def check_tools(plan) -> None:
    """Fail before writing anything when a needed tool is missing."""
    for name in needed(plan.args):
        try:
            tools.find(name)
        except ToolMissing as e:
            alternative = {"verilator": ", or use --sim icarus|none",
                           "iverilog": ", or use --sim verilator|none",
                           "yosys": ", or use --no-synth"}.get(name, "")
            raise ToolMissing(f"{e}{alternative}") from None


def _config_json(plan) -> dict:
    """Everything needed to regenerate the output folder."""
    a, c = plan.args, plan.config
    if a.weights:
        source = {"weights": a.weights, "activations": a.activations, "prune": a.prune,
                  "weights_sha256": file_sha256(a.weights),
                  "activations_sha256": file_sha256(a.activations)}
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
    argv += ["--stalls", a.stalls] if a.stalls is not None else []
    return {
        "pattern": str(c.pattern), "rows": c.rows, "cols": c.cols, "width": c.width,
        "signed": c.signed, "acc_width": c.acc_width, "max_k": c.max_k,
        "gemm": {"m": int(plan.W.shape[0]), "k": plan.k, "n": int(plan.A.shape[1]),
                 "padded_k": plan.padded_k, **source},
        "sim": a.sim, "stalls": a.stalls, "synth": a.synth, "targets": plan.targets,
        "fmax": a.fmax, "command": "python -m gen " + shlex.join(str(x) for x in argv[1:]),
    }


def _clean_build_products(tb: Path) -> None:
    """Simulator build folders hold binaries that differ run to run: keep sources only."""
    for name in ("obj_dir", "sim_build", "__pycache__"):
        shutil.rmtree(tb / name, ignore_errors=True)
    for pattern in ("*.vvp", "results.xml"):
        for f in tb.glob(pattern):
            f.unlink()


def run(plan, work: Path) -> int:
    """Run every stage in ``work``; 0 when the testbench passed, 1 when it failed.

    A tool that fails or times out raises (``SimError``, ``synth.SynthError``,
    ``synth.tools.ToolTimeout``): that is never a testbench verdict.
    """
    a, c = plan.args, plan.config
    stages = ["generate", "testbench"] + (["simulate"] if a.sim != "none" else []) + \
        (["synthesize"] if a.synth or a.fmax else []) + ["report"]
    progress = Progress(stages, interval=a.progress_interval)
    if plan.padded_k != plan.k:
        print(f"note: K={plan.k} is not a multiple of the group size "
              f"{c.pattern.group_size}: zero-padded to {plan.padded_k}")
    big = c.estimated_nand2_eq > 2_000_000
    if big:
        print(f"note: a large build, an estimated {c.estimated_nand2_eq:,} NAND2-eq: expect "
              f"minutes per stage (heartbeat every {a.progress_interval:g} s)", flush=True)
    try:
        return _stages(plan, work, progress)
    finally:
        progress.close()


def _stages(plan, work: Path, progress: Progress) -> int:
    a, c = plan.args, plan.config
    progress.start("generate")
    rtl = work / "rtl"
    rtl.mkdir()
    texts, port_lists = emit_verilog(c)
    for name, text in texts.items():
        (rtl / f"{name}.v").write_text(text)
    write_json(rtl / "manifest.json", manifest(c, port_lists, tool_versions(needed(a))))
    write_json(work / "config.json", _config_json(plan))
    progress.done(f"{sum(len(t) for t in texts.values()) // 1024} KiB of Verilog in rtl/")

    progress.start("testbench")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        vectors = gemm_vectors(c, plan.W, plan.A)
    write_testbench(work / "tb", vectors, top=TOP, rtl_rel=f"../rtl/{TOP}.v",
                    stall_seed=a.stalls)
    progress.done(f"{vectors.tiles} tiles x {vectors.steps_per_tile} steps, "
                  f"Z[{vectors.m},{vectors.n}]"
                  + (f", random stalls (seed {a.stalls})" if a.stalls is not None else ""))

    sim = None
    status = 0
    if a.sim != "none":
        progress.start("simulate")
        sim = simulate(work / "tb", a.sim, timeout=a.sim_timeout)
        _clean_build_products(work / "tb")
        status = 0 if sim.passed else 1
        progress.done(f"{'PASS' if sim.passed else 'FAIL'}, {sim.cycles} cycles "
                      f"(ideal {sim.ideal} + latency {LATENCY}"
                      + (", with stalls)" if a.stalls is not None else ")"))

    area = None
    if a.synth or a.fmax:
        progress.start("synthesize")
        targets = plan.targets if a.synth else []
        twin_text = emit_verilog(c.dense_twin())[0][TOP]
        limits = {"timeout": a.synth_timeout, "pnr_timeout": a.pnr_timeout}
        jobs = {"design": (synthesize_design, texts[TOP], work / "synth" / "design", targets,
                           a.fmax, limits),
                "dense_twin": (synthesize_design, twin_text, work / "synth" / "dense_twin",
                               targets, a.fmax, limits)}
        if "generic" in targets:
            jobs["decompressor"] = (synthesize_decompressor, texts[DECOMPRESSOR],
                                    work / "synth" / "decompressor", a.synth_timeout)
        # the tools are subprocesses: threads are enough to keep --jobs cores busy
        with ThreadPoolExecutor(max_workers=plan.jobs) as pool:
            futures = {k: pool.submit(fn, *rest) for k, (fn, *rest) in jobs.items()}
            area = {k: f.result() for k, f in futures.items()}
        progress.done(_area_line(area))

    progress.start("report")
    report = build_report(plan, vectors, sim, area)
    write_report(work, report)
    if area is not None:
        write_report(work / "synth", report, area_only=True)
    progress.done("report.md, report.json")
    for line in report["summary"]:
        print("  " + line)
    return status


def _area_line(area) -> str:
    d, t = area["design"], area["dense_twin"]
    if "generic" in d:
        return (f"{d['generic']['nand2_eq']:.0f} NAND2-eq vs dense twin "
                f"{t['generic']['nand2_eq']:.0f}")
    return "done"
