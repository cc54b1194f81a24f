"""The stages of one ``python -m gen`` run, in a work folder that becomes the output."""
from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hdl.top import last_beat_latency
from synth import tools
from synth.tools import ToolMissing

from .area import synthesize_decompressor, synthesize_design
from .board import board_stage
from .emit import (DECOMPRESSOR, SYSTEM, SYSTEM_ENGINE, TOP, emit_system, emit_system_engine,
                   emit_verilog, manifest,
                   ram_verilog, system_manifest, tool_versions, write_json)
from .fusesoc import write_core
from .inputs import InputError
from .progress import Progress
from .report import build_report, summary, write_report
from .simulate import SimError, needed_tools, simulate
from .synth_cache import cache_key, cached
from .testbench import write_testbench

__all__ = ["check_tools", "needed", "run", "ToolMissing"]


def needed(options) -> tuple[str, ...]:
    """The external tools a run with these options uses (names of ``synth.tools``)."""
    names = list(needed_tools(options.sim)) if options.sim != "none" else []
    if options.synth or options.fmax:
        names.append("yosys")
    if options.fmax:
        names.append("nextpnr-ecp5")
    return tuple(names)


def check_tools(plan) -> None:
    """Fail before writing anything when a needed tool is missing."""
    for name in needed(plan.options):
        try:
            tools.find(name)
        except ToolMissing as e:
            alternative = {"verilator": ", or use --sim icarus|none",
                           "iverilog": ", or use --sim verilator|none",
                           "yosys": ", or use --no-synth"}.get(name, "")
            raise ToolMissing(f"{e}{alternative}") from None


def _config_json(plan) -> dict:
    """Everything needed to regenerate the output folder: the resolved options (the JSON of
    ``gen.options.Options``), their command, and where each layer came from."""
    resolved = plan.resolved
    return {
        "options": resolved.to_json(),
        "command": resolved.command(),
        "layers": [{"mode": layer.label, "m": int(layer.W.shape[0]), "k": layer.k,
                    "n": int(layer.A.shape[1]), "padded_k": layer.padded_k, **layer.source}
                   for layer in plan.layers],
    }


def _clean_build_products(tb: Path) -> None:
    """Simulator build folders hold binaries that differ run to run: keep sources only."""
    for name in ("obj_dir", "obj_dir_trace", "sim_build", "__pycache__"):
        shutil.rmtree(tb / name, ignore_errors=True)
    for pattern in ("*.vvp", "results.xml"):
        for f in tb.glob(pattern):
            f.unlink()


def run(plan, work: Path) -> int:
    """Run every stage in ``work``; 0 when the testbench passed, 1 when it failed.

    A tool that fails or times out raises (``SimError``, ``synth.SynthError``,
    ``synth.tools.ToolTimeout``): that is never a testbench verdict.
    """
    a, c = plan.options, plan.config
    stages = ["generate", "testbench"] + (["simulate"] if a.sim != "none" else []) + \
        (["synthesize"] if a.synth or a.fmax else []) + ["report"]
    stages[-1:-1] = ["board"] if a.board else []     # --board: gen.board
    progress = Progress(stages, interval=a.progress_interval)
    for layer in plan.layers:
        if not (a.weights or a.shape):
            continue
        for pattern in dict.fromkeys(plan.modes.mode(mode) for _, mode in layer.segments):
            padded = -(-layer.k // pattern.group_size) * pattern.group_size
            if padded != layer.k:
                print(f"note: K={layer.k} is not a multiple of the group size "
                      f"{pattern.group_size} of {pattern}: zero-padded to {padded}")
    big = c.estimated_nand2_eq > 2_000_000
    if big:
        print(f"note: a large build, an estimated {c.estimated_nand2_eq:,} NAND2-eq: expect "
              f"minutes per stage (heartbeat every {a.progress_interval:g} s)", flush=True)
    try:
        return _stages(plan, work, progress)
    finally:
        progress.close()


def _stages(plan, work: Path, progress: Progress) -> int:
    a, c = plan.options, plan.config
    progress.start("generate")
    rtl = work / "rtl"
    rtl.mkdir()
    texts, port_lists = emit_verilog(c)
    for name, text in texts.items():
        (rtl / f"{name}.v").write_text(text)
    system = _emit_system(plan, work)
    write_json(rtl / "manifest.json", manifest(c, port_lists, tool_versions(needed(a)),
                                               system.manifest if system else None))
    write_json(work / "config.json", _config_json(plan))
    progress.done(f"{sum(len(t) for t in texts.values()) // 1024} KiB of Verilog in rtl/"
                  + ("" if system is None else f", {SYSTEM}.v {system.kib} KiB and regs/"
                     if system.config else f"; no {SYSTEM}: {system.refused}"))

    progress.start("testbench")
    layers = plan.vectors()
    engine_tb = plan.testbench != "system"
    bench = _system_testbench(plan, work) if plan.testbench != "engine" else None
    if engine_tb:
        write_testbench(work / "tb", layers, top=TOP, rtl_rel=f"../rtl/{TOP}.v",
                        stall_seed=a.stalls, tool_paths=_tool_paths(a.sim))
    write_core(work, plan.default_name(), engine_testbench=engine_tb)
    progress.done(", ".join(f"{v.tiles} tiles x {v.steps_per_tile} steps" for v in layers[:3])
                  + (f" ... ({len(layers)} layers)" if len(layers) > 3 else "")
                  + (f", random stalls (seed {a.stalls})" if a.stalls is not None else "")
                  + ("" if bench is None else f"; {SYSTEM} testbench in tb/system "
                     f"({len(bench.recorder.lines):,} program lines, "
                     f"{bench.mem_bytes:,} bytes of DRAM)"))

    sim = system_run = None
    status = 0
    if a.sim != "none":
        progress.start("simulate")
        said = []
        if engine_tb:
            sim = simulate(work / "tb", a.sim, timeout=a.sim_timeout, trace=a.trace)
            _clean_build_products(work / "tb")
            status = 0 if sim.passed else 1
            said.append(f"{'PASS' if sim.passed else 'FAIL'}, {sim.cycles} cycles "
                        f"(ideal {sim.ideal} + latency {last_beat_latency(c)}"
                        + (", with stalls)" if a.stalls is not None else ")"))
        if bench is not None:
            system_run = _run_system_testbench(plan, bench, work, sim)
            status = status or (0 if system_run.passed else 1)
            said.append(f"{SYSTEM} {system_run.verdict}, {system_run.cycles:,} cycles "
                        f"(DRAM latency {a.dram_latency}"
                        + (", with back-pressure)" if a.stalls is not None else ")"))
        progress.done("; ".join(said))

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
        if "generic" in targets and DECOMPRESSOR in texts:
            jobs["decompressor"] = (synthesize_decompressor, texts[DECOMPRESSOR],
                                    work / "synth" / "decompressor", a.synth_timeout)
        hits = []

        def run_job(name, fn, text, folder, *rest):
            if a.synth_cache is None:
                return fn(text, folder, *rest)
            options = {"targets": targets, "fmax": a.fmax} if fn is synthesize_design else {}
            result, hit = cached(a.synth_cache, cache_key(fn.__name__, text, options),
                                 lambda: fn(text, folder, *rest))
            if hit:
                hits.append(name)
            return result
        # the tools are subprocesses: threads are enough to keep --jobs cores busy
        with ThreadPoolExecutor(max_workers=plan.jobs) as pool:
            futures = {k: pool.submit(run_job, k, *job) for k, job in jobs.items()}
            area = {k: f.result() for k, f in futures.items()}
        progress.done(_area_line(area) + (f"; from the synthesis cache: "
                                          f"{', '.join(sorted(hits))}" if hits else ""))

    board = board_stage(plan, layers, work, progress)   # --board: a bitstream (gen.board)
    progress.start("report")
    report = build_report(plan, layers, sim, area, board, system, system_run)
    write_report(work, report)
    if area is not None:
        write_report(work / "synth", report, area_only=True)
    progress.done("report.md, report.json")
    for line in summary(report, plan.out):
        print("  " + line)
    return status


class SystemBuild:
    """What a run wrote of ``hss_system``: its ``config`` (None when refused, ``refused``
    then says why), ``memories`` (``synth.memories.MemoryUse``), the manifest section."""

    def __init__(self, config, refused=None, memories=(), manifest=None, kib=0):
        self.config, self.refused, self.memories, self.kib = config, refused, list(memories), kib
        self.manifest = manifest if manifest is not None else {"refused": refused}


def _emit_system(plan, work: Path) -> SystemBuild | None:
    """``rtl/hss_system.v``, ``rtl/hss_sdp_ram.v`` and ``regs/`` (the register map's C
    header, Markdown, IP-XACT, HTML) of the build, unless the system refuses its engine
    (the ``SystemBuild`` says why) or the run asks for none (``--no-system``: None)."""
    from hdl.ram import MACRO
    from regmap.emit import write_all
    from synth.memories import memories_of
    if plan.system is None:
        return None if plan.system_refused is None else SystemBuild(None, plan.system_refused)
    text, component = emit_system(plan.system)
    (work / "rtl" / f"{SYSTEM}.v").write_text(text)
    engine = emit_system_engine(plan.system)
    if engine is not None:                 # rank 1 at the fetch: the system's own engine
        (work / "rtl" / f"{SYSTEM_ENGINE}.v").write_text(engine)
    (work / "rtl" / f"{MACRO}.v").write_text(ram_verilog())
    write_all(work / "regs", component.model)
    memories = memories_of(component)
    return SystemBuild(plan.system, None, memories, system_manifest(component, memories),
                       len(text) // 1024)


def _system_testbench(plan, work: Path):
    """``tb/system/``: the system testbench of the run's layers (``gen.testbench.system``),
    the host driver's register program and DRAM image recorded, the Makefile's default
    plusargs those of this run (``--dram-latency``, ``--stalls`` as the DRAM's
    back-pressure seed); the Verilog is the run's own ``rtl/``."""
    from gen.testbench.system import plusargs_of, prepare_system
    a = plan.options
    labels = [{"layer": i, "mode": layer.label, "m": int(layer.W.shape[0]), "k": layer.k,
               "n": int(layer.A.shape[1])} for i, layer in enumerate(plan.layers)]
    operands = [(layer.segments, layer.A) for layer in plan.layers]
    try:
        return prepare_system(
            plan.system, labels, work / "tb" / "system", operands=operands,
            simulator=a.sim if a.sim != "none" else "verilator", mem_bytes=None,
            prog_lines=None, name=None, rtl_rel="../../rtl", fmt=_stream_format(work),
            tool_paths=None if a.sim != "none" else {},
            plusargs=" ".join(plusargs_of(seed=a.stalls, latency=a.dram_latency)),
            progress=lambda message: None)
    except (ValueError, MemoryError) as e:
        raise InputError(f"the system testbench cannot run these layers: {e} "
                         f"(--testbench engine runs them on the engine alone)") from None


def _stream_format(work: Path):
    import json

    from hss.system import system_format
    return system_format(json.loads((work / "rtl" / "manifest.json").read_text()))


def _run_system_testbench(plan, bench, work: Path, sim):
    """Build and run ``tb/system``; its Z to ``tb/z_out.txt`` as the engine testbench
    writes it (each layer row-major, one decimal per line), or, when the engine testbench
    ran too, checked against that file: a difference is a FAIL of the system run."""
    a = plan.options
    try:
        run = bench.run(seed=a.stalls, latency=a.dram_latency, timeout=a.sim_timeout)
    except RuntimeError as e:               # the simulator's build failed: not a verdict
        raise SimError(str(e)) from None
    _clean_build_products(bench.folder)
    z_path = work / "tb" / "z_out.txt"
    text = "".join(f"{int(x)}\n" for layer in run.layers if layer.Z is not None
                   for x in layer.Z.ravel())
    if sim is None:
        z_path.write_text(text)
    elif z_path.exists() and z_path.read_text() != text:
        run.agrees_with_engine = False
    return run


def _tool_paths(sim: str) -> dict[str, str]:
    """The simulators as found now, for tb/tools.mk (so that tb/Makefile works from a
    plain shell, outside the venv)."""
    names = {"verilator": ("verilator",), "icarus": ("iverilog", "vvp")}.get(sim, ())
    return {name: tools.find(name).path for name in names}


def _area_line(area) -> str:
    d, t = area["design"], area["dense_twin"]
    if "generic" in d:
        return (f"{d['generic']['nand2_eq']:.0f} NAND2-eq vs dense twin "
                f"{t['generic']['nand2_eq']:.0f}")
    return "done"
