"""The whole hss_system at Verilator speed: a SystemVerilog testbench with the DRAM inside.

``run_system(config, layers, folder, seed=, latency=)`` renders ``folder`` (``sys_tb.sv``:
an AXI4 DRAM model and an AXI4-Lite host, ``Makefile``, ``tools.mk``), writes the system's
Verilog as ``python -m gen`` does (``rtl/``: ``hss_system.v``, ``hss_sdp_ram.v``,
``hss_accelerator.v``), records the host driver's work on the
layers (``host.script.Recorder``: ``dram.hex``, ``program.hex``), runs the simulator, then
replays the driver on what the testbench read back (``host.script.Replay``) and compares
every layer's Z bit for bit with NumPy and its counters with the bus-level golden model
(``host.model.SystemModel``). Nothing in Python waits on the simulator while it runs, so a
layer costs what Verilator costs. One build serves every run of the same config and memory
size: seeds, latencies, layers and the SLVERR range are plusargs and files.

A layer is a dict as in sim_tests/system_cocotb.py: ``m``, ``k``, ``n``, ``seed``, and
optionally ``mode`` (index or pattern), ``tasd`` (a TASD spec of random dense weights),
``requant`` and ``relu``.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import hss
from hss import requant as hss_requant
from hss.beats import StreamFormat
from host.driver import Driver, DriverError, LayerTimeout, run_now
from host.model import SystemModel
from host.script import Recorder, Replay, parse_dumps, parse_reads
from synth import tools

from .render import render

__all__ = ["run_system", "SystemRun", "LayerRun", "system_verilog", "layer_operands",
           "EXACT"]

TOP = "hss_system"
#: counters the golden model predicts exactly (cycles and stalls are the RTL's own)
EXACT = ("steps", "dram_read_bytes", "dram_write_bytes", "wbuf_reads", "wbuf_writes",
         "abuf_reads", "abuf_writes", "obuf_reads", "obuf_writes", "qbuf_reads",
         "qbuf_writes")
SIMULATORS = ("verilator", "icarus")


@dataclass
class LayerRun:
    """One layer: the system's Z and the golden one, its counters and the model's, the
    roofline bound of its cycles (``hss.system`` ``cycles_lower_bound``), its descriptors,
    and the driver's error (``DriverError``/``LayerTimeout`` text) if it ended with one."""
    spec: dict
    Z: np.ndarray | None
    golden: np.ndarray
    counters: dict
    model_counters: dict
    bound: int
    parts: int
    error: str | None = None
    error_code: str | None = None

    @property
    def exact(self) -> bool:
        return (self.error is None and self.Z is not None
                and np.array_equal(self.Z, self.golden)
                and all(self.counters[n] == self.model_counters[n] for n in EXACT))


@dataclass
class SystemRun:
    """A simulation: PASS only when the testbench passed (program ended, no AXI protocol
    error, no poll timeout) and every layer is exact; its total cycles and wall time."""
    tb_pass: bool
    cycles: int
    seconds: float
    build_seconds: float
    layers: list = field(default_factory=list)
    log: str = ""

    @property
    def passed(self) -> bool:
        return self.tb_pass and all(layer.exact for layer in self.layers)

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"


def system_verilog(config) -> dict[str, str]:
    """The files ``python -m gen`` writes for ``config``'s system (``gen.emit``), by file
    name, in the order a simulator reads them: ``hss_system.v`` (the engine and the
    buffers as instances), ``hss_sdp_ram.v``, ``hss_accelerator.v``."""
    from gen.emit import (SYSTEM, TOP as ENGINE_TOP, emit_system, emit_verilog, ram_verilog,
                          system_files)
    from hdl.ram import MACRO
    texts = {f"{SYSTEM}.v": emit_system(config)[0], f"{MACRO}.v": ram_verilog(),
             f"{ENGINE_TOP}.v": emit_verilog(config.engine)[0][ENGINE_TOP]}
    return {name: texts[name] for name in system_files()}


def stream_format(config) -> StreamFormat:
    """The build's stream format, from the manifest gen.emit would write for its engine."""
    from gen.emit import TOP as ENGINE_TOP, manifest, ports
    from hdl import accelerator_for
    engine = config.engine
    return StreamFormat.from_manifest(
        manifest(engine, {ENGINE_TOP: ports(accelerator_for(engine))}, {}))


def layer_operands(fmt: StreamFormat, spec: dict):
    """A layer's segments and A, seeded: random weights pruned to the layer's mode (or a
    TASD decomposition of random dense weights), random activations."""
    for key in ("m", "k", "n", "seed"):
        if not isinstance(spec.get(key), int) or spec[key] < (0 if key == "seed" else 1):
            raise ValueError(f"layer {spec!r}: {key} must be a positive integer")
    rng = np.random.default_rng(spec["seed"])
    lo, hi = hss.value_range(fmt.width, fmt.signed)
    W = rng.integers(lo, hi, (spec["m"], spec["k"]), endpoint=True)
    A = rng.integers(lo, hi, (spec["k"], spec["n"]), endpoint=True)
    if "tasd" in spec:
        result = hss.decompose(W, spec["tasd"])
        return [(t, str(p)) for t, p in zip(result.terms, result.decomposition.terms)], A
    mode = spec.get("mode", 0)
    return [(hss.prune(W, fmt.modes.mode(mode) if isinstance(mode, int) else mode), mode)], A


def _layer_args(segments, A, spec):
    golden = sum(w @ A for w, _ in segments)
    kwargs = {}
    if spec.get("requant"):
        relu = bool(spec.get("relu", False))
        scales, shifts = hss_requant.choose_scales(golden, relu=relu)
        kwargs = dict(scales=scales, shifts=shifts, relu=relu)
        golden = hss_requant.requantize(golden, scales, shifts, relu)
    return golden, kwargs


def _write(path: Path, text: str) -> None:
    """Write only what changed: make then rebuilds only what it must."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _tools_mk(simulator: str) -> dict:
    names = {"verilator": ("VERILATOR",), "icarus": ("IVERILOG", "VVP")}[simulator]
    keys = {"VERILATOR": "verilator", "IVERILOG": "iverilog", "VVP": "vvp"}
    return {v: tools.find(keys[v]).path for v in names}


def render_folder(config, folder: Path, *, mem_bytes: int, prog_lines: int,
                  simulator: str, progress=print) -> None:
    """``sys_tb.sv``, ``Makefile``, ``tools.mk`` and ``rtl/hss_system.v`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rtl").mkdir(exist_ok=True)
    key = hashlib.sha256(repr(config).encode()).hexdigest()
    stamp = folder / "rtl" / "config.sha256"
    from gen.emit import system_files
    names = system_files()
    if (not stamp.exists() or stamp.read_text() != key
            or not all((folder / "rtl" / n).exists() for n in names)):
        progress(f"system tb: converting {TOP} to Verilog")
        for name, text in system_verilog(config).items():
            _write(folder / "rtl" / name, text)
        stamp.write_text(key)
    queue = 1 << max(1, (max(config.outstanding, 2) - 1).bit_length())
    _write(folder / "sys_tb.sv", render(
        "sys_tb.sv.j2", top=TOP, data_bits=config.dma_bits, mem_bytes=mem_bytes,
        read_queue=queue, prog_lines=prog_lines,
        description=f"{config.engine.rows}x{config.engine.cols} PEs, {config.dma_bits}-bit "
                    f"AXI4, {mem_bytes:,} bytes of DRAM"))
    _write(folder / "Makefile", render(
        "sys_Makefile.j2", top=TOP, rtl_rel=" ".join(f"rtl/{n}" for n in names),
        verilator_flags=tools.verilator_flags(jobs="$(JOBS)")))
    _write(folder / "tools.mk", render("tools.mk.j2", tools=_tools_mk(simulator)))


def build(folder: Path, simulator: str, *, progress=print) -> float:
    """Build the simulation binary with make (nothing when it is up to date); seconds."""
    if not tools.is_plain(os.path.realpath(folder)):
        raise ValueError(f"{folder}: build the system testbench in a folder whose path has "
                         f"only plain characters ({tools.PLAIN_RANGES})")
    target = "build-verilator" if simulator == "verilator" else "build-icarus"
    make = tools.find("make").path
    start = time.monotonic()
    progress(f"system tb: make {target} in {folder}")
    env = tools.child_env()
    env["JOBS"] = "1"
    result = tools.run([make, "-s", target], cwd=folder, what=f"make {target}", env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise RuntimeError(f"make {target} failed in {folder}:\n{tail}")
    return time.monotonic() - start


def run_system(config, layers, folder, *, seed: int | None = 1, latency: int = 0,
               simulator: str = "verilator", slverr: tuple[int, int] | None = None,
               mem_bytes: int = 1 << 22, prog_lines: int = 1 << 16,
               max_cycles: int = 50_000_000, name: str = "run", progress=print
               ) -> SystemRun:
    """Run ``layers`` (see the module's docstring) back to back on ``config``'s
    hss_system in ``folder``; ``seed`` the back-pressure seed (None: no back-pressure),
    ``latency`` the DRAM's cycles to a first beat, ``slverr`` a byte range [lo, hi) that
    answers SLVERR (the driver lays the first layer out from address 0: weights, then
    activations, output and table, each on a 4 KiB page). ``name`` prefixes this run's
    files, so that runs in one folder keep theirs."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not "
                         f"{simulator!r}")
    if not isinstance(latency, int) or latency < 0:
        raise ValueError(f"latency must be a non-negative integer, not {latency!r}")
    if seed is not None and not (isinstance(seed, int) and 0 <= seed < 1 << 32):
        raise ValueError(f"seed must be None or 0 to 4294967295, not {seed!r}")
    if mem_bytes < 4096 or mem_bytes & (mem_bytes - 1):
        raise ValueError(f"mem_bytes must be a power of two of at least 4096, not {mem_bytes}")
    if not layers:
        raise ValueError("no layers to run")
    folder = Path(folder).resolve()
    fmt = stream_format(config)
    shape = config.shape

    # -- record the driver's work, and the golden answers ---------------------------------
    recorder = Recorder(SystemModel(shape, fmt))
    driver = Driver(recorder, fmt, dram_base=0, dram_bytes=mem_bytes)
    model = Driver(SystemModel(shape, fmt), fmt, dram_base=0, dram_bytes=mem_bytes)
    prepared = []
    for spec in layers:
        segments, A = layer_operands(fmt, spec)
        golden, kwargs = _layer_args(segments, A, spec)
        mark = recorder.mark()
        run_now(driver.run_layer(segments, A, **kwargs))
        model.reset_memory()
        want = run_now(model.run_layer(segments, A, **kwargs))
        prepared.append((spec, segments, A, golden, kwargs, mark, want))
    if len(recorder.lines) + 1 > prog_lines:
        raise ValueError(f"the program has {len(recorder.lines) + 1:,} lines; the testbench "
                         f"holds {prog_lines:,} (prog_lines)")

    render_folder(config, folder, mem_bytes=mem_bytes, prog_lines=prog_lines,
                  simulator=simulator, progress=progress)
    files = {k: f"{name}.{k}" for k in ("dram.hex", "program.hex", "reads.txt", "dump.txt")}
    _write(folder / files["dram.hex"], recorder.image_hex())
    _write(folder / files["program.hex"], recorder.program_hex())
    build_seconds = build(folder, simulator, progress=progress)

    # -- simulate --------------------------------------------------------------------------
    plusargs = [f"+dram={files['dram.hex']}", f"+prog={files['program.hex']}",
                f"+reads={files['reads.txt']}", f"+dump={files['dump.txt']}",
                f"+latency={latency}", f"+max_cycles={max_cycles}"]
    plusargs.append("+nobp" if seed is None else f"+seed={seed}")
    if slverr is not None:
        lo, hi = slverr
        plusargs += [f"+err_lo={lo:x}", f"+err_hi={hi:x}"]
    if simulator == "verilator":
        argv = [str(folder / "obj_dir" / "Vtb"), *plusargs]
    else:
        argv = [tools.find("vvp").path, "-n", "sys_tb.vvp", *plusargs]
    for f in ("reads.txt", "dump.txt"):
        (folder / files[f]).unlink(missing_ok=True)
    progress(f"system tb: {simulator} run {name}: {len(layers)} layer(s), "
             f"{len(recorder.lines)} program lines, {' '.join(plusargs[4:])}")
    start = time.monotonic()
    result = tools.run(argv, cwd=folder, what=f"{simulator} {name}")
    seconds = time.monotonic() - start
    log = result.stdout + result.stderr
    (folder / f"{name}.log").write_text(log)
    lines = log.splitlines()
    tb_pass = result.returncode == 0 and "PASS" in lines and "FAIL" not in lines
    cycles = next((int(line.split()[1]) for line in lines if line.startswith("CYCLES ")), 0)
    progress(f"system tb: {name}: {'PASS' if tb_pass else 'FAIL'} by the testbench, "
             f"{cycles:,} cycles in {seconds:.2f} s")

    # -- replay the driver on what the testbench read ---------------------------------------
    reads_path, dump_path = folder / files["reads.txt"], folder / files["dump.txt"]
    reads = parse_reads(reads_path.read_text()) if reads_path.exists() else []
    dumps = parse_dumps(dump_path.read_text()) if dump_path.exists() else []
    out = SystemRun(tb_pass, cycles, seconds, build_seconds, log=log)
    # one driver, as recorded: it probes once and allocates the same addresses
    replay = Driver(Replay(reads, dumps), fmt, dram_base=0, dram_bytes=mem_bytes)
    for spec, segments, A, golden, kwargs, mark, want in prepared:
        replay.bus = Replay(reads, dumps, recorder.marks[mark])
        Z, counters, parts, error, code = None, {}, len(want.split.parts), None, None
        try:
            got = run_now(replay.run_layer(segments, A, **kwargs))
            Z, counters = got.Z, got.counters
        except DriverError as e:
            error, code = str(e), e.code.name
        except (LayerTimeout, RuntimeError) as e:
            error = str(e)
        out.layers.append(LayerRun(spec, Z, golden, counters, want.counters,
                                   want.split.counts.cycles_lower_bound, parts, error, code))
    return out


def summary(run: SystemRun) -> str:
    """One line per layer and a verdict line, for logs."""
    rows = []
    for i, layer in enumerate(run.layers):
        c = layer.counters.get("cycles")
        what = layer.error or ("exact" if layer.exact else "MISMATCH")
        rows.append(f"layer {i} {json.dumps(layer.spec)}: {layer.parts} part(s), cycles {c} "
                    f"(bound {layer.bound}): {what}")
    rows.append(f"{run.verdict}: {run.cycles:,} cycles in {run.seconds:.2f} s")
    return "\n".join(rows)
