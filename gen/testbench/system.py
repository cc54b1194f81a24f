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
from hss.fetch import prune_shared
from hss.fetchbeats import FetchFormat
from host.driver import Driver, DriverError, LayerTimeout, run_now
from host.model import SystemModel
from host.script import Recorder, Replay, parse_dumps, parse_reads
from synth import tools

from .render import render

__all__ = ["run_system", "prepare_system", "SystemBench", "SystemRun", "LayerRun",
           "system_verilog", "layer_operands", "plusargs_of", "EXACT"]

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
    #: False when another testbench of the same layers (python -m gen's engine testbench)
    #: wrote a different Z
    agrees_with_engine: bool = True

    @property
    def passed(self) -> bool:
        return (self.tb_pass and self.agrees_with_engine
                and all(layer.exact for layer in self.layers))

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"


def system_verilog(config) -> dict[str, str]:
    """The files ``python -m gen`` writes for ``config``'s system (``gen.emit``), by file
    name, in the order a simulator reads them: ``hss_system.v`` (the engine and the
    buffers as instances), ``hss_sdp_ram.v``, ``hss_accelerator.v``."""
    from gen.emit import (SYSTEM, SYSTEM_ENGINE, emit_system, emit_system_engine,
                          ram_verilog, system_files)
    from gen.emit import TOP as ENGINE_TOP, emit_verilog
    from hdl.ram import MACRO
    texts = {f"{SYSTEM}.v": emit_system(config)[0], f"{MACRO}.v": ram_verilog()}
    if config.fetch == "pe":
        texts[f"{ENGINE_TOP}.v"] = emit_verilog(config.engine)[0][ENGINE_TOP]
    else:
        texts[f"{SYSTEM_ENGINE}.v"] = emit_system_engine(config)
    return {name: texts[name] for name in system_files(config)}


def stream_format(config) -> StreamFormat | FetchFormat:
    """The build's stream format, from the manifest gen.emit would write for its engine
    (a ``FetchFormat`` of it with rank 1 at the fetch)."""
    from gen.emit import TOP as ENGINE_TOP, manifest, ports
    from hdl import accelerator_for
    engine = config.engine
    top = accelerator_for(engine)
    top._MustUse__silence = True            # built for its ports only, never elaborated
    fmt = StreamFormat.from_manifest(manifest(engine, {ENGINE_TOP: ports(top)}, {}))
    return fmt if config.fetch == "pe" else FetchFormat(fmt)


def layer_operands(fmt: StreamFormat | FetchFormat, spec: dict):
    """A layer's segments and A, seeded: random weights pruned to the layer's mode (or a
    TASD decomposition of random dense weights; with rank 1 at the fetch, pruned so that
    each m-tile's rows share their rank-1 blocks), random activations."""
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
    pattern = fmt.modes.mode(mode) if isinstance(mode, int) else mode
    if isinstance(fmt, FetchFormat):
        return [(prune_shared(W, pattern, fmt.rows), mode)], A
    return [(hss.prune(W, pattern), mode)], A


def _layer_args(segments, A, spec):
    A = np.asarray(A, dtype=np.int64)           # a user's int8 .npy must not wrap in NumPy
    golden = sum(np.asarray(w, dtype=np.int64) @ A for w, _ in segments)
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
                  simulator: str, rtl_rel: str | None = None,
                  tool_paths: dict[str, str] | None = None, plusargs: str = "",
                  progress=print) -> None:
    """``sys_tb.sv``, ``Makefile``, ``tools.mk`` in ``folder``, and the system's Verilog in
    ``folder/rtl`` unless ``rtl_rel`` names a folder (relative to ``folder``) that holds it
    (``python -m gen``'s ``rtl/``). ``tool_paths`` (default: the simulator's, as found now)
    go to tools.mk; ``plusargs`` are the Makefile's default ``PLUSARGS``."""
    from gen.emit import system_files
    folder.mkdir(parents=True, exist_ok=True)
    names = system_files(config)
    if rtl_rel is None:
        (folder / "rtl").mkdir(exist_ok=True)
        key = hashlib.sha256(repr(config).encode()).hexdigest()
        stamp = folder / "rtl" / "config.sha256"
        if (not stamp.exists() or stamp.read_text() != key
                or not all((folder / "rtl" / n).exists() for n in names)):
            progress(f"system tb: converting {TOP} to Verilog")
            for name, text in system_verilog(config).items():
                _write(folder / "rtl" / name, text)
            stamp.write_text(key)
        rtl_rel = "rtl"
    queue = 1 << max(1, (max(config.outstanding, 2) - 1).bit_length())
    _write(folder / "sys_tb.sv", render(
        "sys_tb.sv.j2", top=TOP, data_bits=config.dma_bits, mem_bytes=mem_bytes,
        read_queue=queue, prog_lines=prog_lines,
        description=f"{config.engine.rows}x{config.engine.cols} PEs, {config.dma_bits}-bit "
                    f"AXI4, {mem_bytes:,} bytes of DRAM"))
    _write(folder / "Makefile", render(
        "sys_Makefile.j2", top=TOP, rtl_rel=" ".join(f"{rtl_rel}/{n}" for n in names),
        verilator_flags=tools.verilator_flags(jobs="$(JOBS)"), plusargs=plusargs))
    _write(folder / "tools.mk", render(
        "tools.mk.j2", tools=_tools_mk(simulator) if tool_paths is None else tool_paths))


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


def _pow2_at_least(n: int, floor: int) -> int:
    return max(floor, 1 << max(0, (n - 1).bit_length()))


def plusargs_of(*, seed: int | None, latency: int) -> list[str]:
    """The DRAM model's plusargs: back-pressure seed (None: none) and first-beat latency."""
    return [f"+latency={latency}", "+nobp" if seed is None else f"+seed={seed}"]


@dataclass
class _Prepared:
    spec: dict
    segments: list
    A: np.ndarray
    golden: np.ndarray
    kwargs: dict
    mark: int
    want: object


class SystemBench:
    """A system testbench folder with its layers recorded (``prepare_system``): the DRAM
    image and register program written, ready to ``run`` (build, simulate, replay)."""

    def __init__(self, config, folder: Path, simulator: str, fmt, mem_bytes: int,
                 prepared: list, recorder, files: dict, progress):
        self.config, self.folder, self.simulator, self.fmt = config, folder, simulator, fmt
        self.mem_bytes, self.prepared, self.recorder = mem_bytes, prepared, recorder
        self.files, self.progress = files, progress

    def run(self, *, seed: int | None = 1, latency: int = 0,
            slverr: tuple[int, int] | None = None, max_cycles: int = 50_000_000,
            timeout: float | None = None) -> SystemRun:
        """Build (make: only what changed), simulate with these DRAM-model settings, and
        replay the driver on what the testbench read back: the ``SystemRun``."""
        _check_run(latency, seed)
        folder, files, progress = self.folder, self.files, self.progress
        build_seconds = build(folder, self.simulator, progress=progress)
        plusargs = [f"+dram={files['dram.hex']}", f"+prog={files['program.hex']}",
                    f"+reads={files['reads.txt']}", f"+dump={files['dump.txt']}",
                    *plusargs_of(seed=seed, latency=latency), f"+max_cycles={max_cycles}"]
        if slverr is not None:
            lo, hi = slverr
            plusargs += [f"+err_lo={lo:x}", f"+err_hi={hi:x}"]
        if self.simulator == "verilator":
            argv = [str(folder / "obj_dir" / "Vtb"), *plusargs]
        else:
            argv = [tools.find("vvp").path, "-n", "sys_tb.vvp", *plusargs]
        for f in ("reads.txt", "dump.txt"):
            (folder / files[f]).unlink(missing_ok=True)
        progress(f"system tb: {self.simulator} run {files['log']}: {len(self.prepared)} "
                 f"layer(s), {len(self.recorder.lines)} program lines, "
                 f"{' '.join(plusargs[4:])}")
        start = time.monotonic()
        result = tools.run(argv, cwd=folder, what=f"{self.simulator} {files['log']}",
                           timeout=timeout)
        seconds = time.monotonic() - start
        log = result.stdout + result.stderr
        (folder / files["log"]).write_text(log)
        lines = log.splitlines()
        tb_pass = result.returncode == 0 and "PASS" in lines and "FAIL" not in lines
        cycles = next((int(line.split()[1]) for line in lines if line.startswith("CYCLES ")),
                      0)
        progress(f"system tb: {'PASS' if tb_pass else 'FAIL'} by the testbench, "
                 f"{cycles:,} cycles in {seconds:.2f} s")
        return self._replay(tb_pass, cycles, seconds, build_seconds, log)

    def _replay(self, tb_pass, cycles, seconds, build_seconds, log) -> SystemRun:
        folder, files, fmt = self.folder, self.files, self.fmt
        reads_path, dump_path = folder / files["reads.txt"], folder / files["dump.txt"]
        reads = parse_reads(reads_path.read_text()) if reads_path.exists() else []
        dumps = parse_dumps(dump_path.read_text()) if dump_path.exists() else []
        out = SystemRun(tb_pass, cycles, seconds, build_seconds, log=log)
        # one driver, as recorded: it probes once and allocates the same addresses
        replay = Driver(Replay(reads, dumps), fmt, dram_base=0, dram_bytes=self.mem_bytes)
        for p in self.prepared:
            replay.bus = Replay(reads, dumps, self.recorder.marks[p.mark])
            Z, counters, parts, error, code = None, {}, len(p.want.split.parts), None, None
            try:
                got = run_now(replay.run_layer(p.segments, p.A, **p.kwargs))
                Z, counters = got.Z, got.counters
            except DriverError as e:
                error, code = str(e), e.code.name
            except (LayerTimeout, RuntimeError) as e:
                error = str(e)
            out.layers.append(LayerRun(p.spec, Z, p.golden, counters, p.want.counters,
                                       p.want.split.counts.cycles_lower_bound, parts, error,
                                       code))
        return out


def _check_run(latency, seed) -> None:
    if not isinstance(latency, int) or latency < 0:
        raise ValueError(f"latency must be a non-negative integer, not {latency!r}")
    if seed is not None and not (isinstance(seed, int) and 0 <= seed < 1 << 32):
        raise ValueError(f"seed must be None or 0 to 4294967295, not {seed!r}")


def prepare_system(config, layers, folder, *, operands=None, simulator: str = "verilator",
                   mem_bytes: int | None = 1 << 22, prog_lines: int | None = 1 << 16,
                   name: str | None = "run", rtl_rel: str | None = None,
                   tool_paths: dict[str, str] | None = None, plusargs: str = "",
                   fmt: StreamFormat | None = None, progress=print) -> SystemBench:
    """Record the host driver's work on ``layers`` and write the testbench folder.

    ``layers``: the specs of the module's docstring, or with ``operands`` (one
    ``(segments, A)`` per layer: ``segments`` [(W_t, mode_t)], the layer's own tensors) any
    JSON-able label per layer (a dict's ``requant``/``relu`` are obeyed). ``mem_bytes``/``prog_lines``: the testbench's DRAM and
    program sizes (None: the smallest powers of two that hold this run). ``name`` prefixes
    the run's files (None: ``dram.hex``, ``program.hex``, ... as the Makefile's defaults).
    ``rtl_rel``, ``tool_paths``, ``plusargs``: see ``render_folder``; ``fmt`` the build's
    stream format when its manifest is at hand (default: from ``config``)."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not "
                         f"{simulator!r}")
    if mem_bytes is not None and (mem_bytes < 4096 or mem_bytes & (mem_bytes - 1)):
        raise ValueError(f"mem_bytes must be a power of two of at least 4096, not {mem_bytes}")
    if not layers:
        raise ValueError("no layers to run")
    if operands is not None and len(operands) != len(layers):
        raise ValueError(f"{len(operands)} operand pairs for {len(layers)} layers")
    folder = Path(folder).resolve()
    fmt = stream_format(config) if fmt is None else fmt
    shape = config.shape
    space = mem_bytes if mem_bytes is not None else 1 << 31

    recorder = Recorder(SystemModel(shape, fmt))
    driver = Driver(recorder, fmt, dram_base=0, dram_bytes=space)
    model = Driver(SystemModel(shape, fmt), fmt, dram_base=0, dram_bytes=space)
    prepared = []
    for i, spec in enumerate(layers):
        segments, A = layer_operands(fmt, spec) if operands is None else operands[i]
        golden, kwargs = _layer_args(segments, A, spec if isinstance(spec, dict) else {})
        mark = recorder.mark()
        run_now(driver.run_layer(segments, A, **kwargs))
        model.reset_memory()
        want = run_now(model.run_layer(segments, A, **kwargs))
        prepared.append(_Prepared(spec, segments, A, golden, kwargs, mark, want))
    if mem_bytes is None:
        mem_bytes = _pow2_at_least(driver.used_bytes, 4096)
    if prog_lines is None:
        prog_lines = _pow2_at_least(len(recorder.lines) + 1, 1024)
    if len(recorder.lines) + 1 > prog_lines:
        raise ValueError(f"the program has {len(recorder.lines) + 1:,} lines; the testbench "
                         f"holds {prog_lines:,} (prog_lines)")

    render_folder(config, folder, mem_bytes=mem_bytes, prog_lines=prog_lines,
                  simulator=simulator, rtl_rel=rtl_rel, tool_paths=tool_paths,
                  plusargs=plusargs, progress=progress)
    prefix = "" if name is None else f"{name}."
    files = {k: f"{prefix}{k}" for k in ("dram.hex", "program.hex", "reads.txt", "dump.txt")}
    files["log"] = f"{name}.log" if name is not None else f"sim-{simulator}.log"
    _write(folder / files["dram.hex"], recorder.image_hex())
    _write(folder / files["program.hex"], recorder.program_hex())
    return SystemBench(config, folder, simulator, fmt, mem_bytes, prepared, recorder, files,
                       progress)


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
    files, so that runs in one folder keep theirs (and share one build)."""
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not "
                         f"{simulator!r}")
    _check_run(latency, seed)
    bench = prepare_system(config, layers, folder, simulator=simulator, mem_bytes=mem_bytes,
                           prog_lines=prog_lines, name=name, progress=progress)
    return bench.run(seed=seed, latency=latency, slverr=slverr, max_cycles=max_cycles)


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
