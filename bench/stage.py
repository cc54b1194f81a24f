"""One stage of the generator in a fresh interpreter, so that ``measure_child`` can charge
its wall time and peak memory to it alone.

    python -m bench.stage <stage> <workdir> '<config json>'

Stages (each reads what the previous ones wrote in ``workdir``):

- ``elaborate``: build ``HSSAccelerator`` and elaborate it to Amaranth's netlist
  (``Fragment.get`` then ``build_netlist``, what ``verilog.convert`` does before RTLIL),
  with the garbage-collector setting of ``gen.emit``; above
  ``gen.emit.SHARE_MODULES_ABOVE_PES`` PEs as ``gen.emit`` elaborates it: the array with
  shared modules (``hdl.shared``), then each shared module once.
- ``verilog``: ``gen.emit.emit_verilog`` as ``python -m gen`` runs it (elaboration and
  conversion of the accelerator and its decompressor; above
  ``gen.emit.SHARE_MODULES_ABOVE_PES`` PEs, identical modules defined once), the
  accelerator written to ``rtl/hss_accelerator.v``.
- ``testbench``: ``gemm_vectors`` + ``write_testbench`` into ``tb/`` for a random GEMM of
  ``m x k x n`` (config keys ``m``, ``k``, ``n``, ``seed``).
- ``nand2``: the generic area of ``gen.area.synthesize_design`` (config key ``fast``) in
  ``synth/generic``: ``synth.area_nand2``, composed above ``gen.area.COMPOSE_ABOVE_PES``.
- ``ecp5``: the ECP5 resources of ``gen.area.synthesize_design`` in ``synth/ecp5``:
  ``synth.ecp5``, composed (each PE kept whole) above the same size.

The config holds ``pattern``, ``rows``, ``cols``, ``width``, ``signed``. The last line of
the output is ``STAGE-RESULT <json>``: the in-process seconds of the work (imports
excluded) and what the stage produced.
"""
from __future__ import annotations

import gc
import json
import re
import sys
import threading
import time
import warnings
from pathlib import Path

PREFIX = "STAGE-RESULT "
TOP = "hss_accelerator"
STAGES = ("elaborate", "verilog", "testbench", "nand2", "ecp5")


def _config(cfg: dict):
    from hdl import AcceleratorConfig
    return AcceleratorConfig(cfg["pattern"], cfg["rows"], cfg["cols"], cfg.get("width", 8),
                             cfg.get("signed", True))


def _ports(dut):
    """The top's ports, as ``verilog.convert`` derives them from the signature."""
    from amaranth.hdl import _ast, _ir
    from amaranth.lib import wiring
    ports = {}
    for path, member, value in dut.signature.flatten(dut):
        if isinstance(value, _ast.ValueCastable):
            value = value.as_value()
        if isinstance(value, _ast.Value):
            ports["__".join(map(str, path))] = (
                value, _ir.PortDirection.Input if member.flow == wiring.In
                else _ir.PortDirection.Output)
    return ports


class GCTimer:
    """Seconds spent in Python's cyclic garbage collector (``gc.callbacks``), per
    generation: a full (generation 2) collection walks every live object."""

    def __enter__(self):
        self.seconds = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._start = 0.0
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self._callback)

    def _callback(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._start
            self.count[info["generation"]] += 1

    def info(self) -> dict:
        return {"seconds_gc": sum(self.seconds), "seconds_gc_full": self.seconds[2],
                "gc_collections": self.count}


def elaborate(work: Path, cfg: dict) -> dict:
    from amaranth.hdl import _ir
    from gen.emit import SHARE_MODULES_ABOVE_PES, fewer_collections
    from hdl import HSSAccelerator
    from hdl.shared import SharedModules
    config = _config(cfg)
    shared = SharedModules(f"{TOP}.array") \
        if config.rows * config.cols > SHARE_MODULES_ABOVE_PES else None
    with fewer_collections(), GCTimer() as gct:
        t0 = time.perf_counter()
        dut = HSSAccelerator(config, shared=shared)
        fragment = _ir.Fragment.get(dut, None)
        t1 = time.perf_counter()
        netlists = [_ir.build_netlist(fragment, ports=_ports(dut), name=TOP)]
        t2 = time.perf_counter()
        for module, component, ports in shared.modules() if shared else ():
            netlists.append(_ir.build_netlist(_ir.Fragment.get(component, None), ports=ports,
                                              name=module))
        t3 = time.perf_counter()
    return {"seconds": t3 - t0, "seconds_fragment": t1 - t0, "seconds_netlist": t2 - t1,
            "seconds_shared": t3 - t2,
            "netlist_cells": sum(len(n.cells) for n in netlists),
            "netlist_modules": sum(len(n.modules) for n in netlists), **gct.info()}


def verilog(work: Path, cfg: dict) -> dict:
    from gen.emit import emit_verilog
    with GCTimer() as gct:
        t0 = time.perf_counter()
        text = emit_verilog(_config(cfg))[0][TOP]
        seconds = time.perf_counter() - t0
    rtl = work / "rtl"
    rtl.mkdir(parents=True, exist_ok=True)
    (rtl / f"{TOP}.v").write_text(text)
    return {"seconds": seconds, "bytes": len(text.encode()),
            "modules": sum(1 for line in text.splitlines() if line.startswith("module ")),
            **gct.info()}


def testbench(work: Path, cfg: dict) -> dict:
    import numpy as np

    import hss
    from gen.testbench import write_testbench
    from hdl.stimulus import gemm_vectors
    c = _config(cfg)
    rng = np.random.default_rng(cfg.get("seed", 1))
    lo, hi = (-(1 << (c.width - 1)), (1 << (c.width - 1)) - 1) if c.signed \
        else (0, (1 << c.width) - 1)
    dtype = hss.dtype_for(c.width, c.signed)
    W = hss.prune(rng.integers(lo, hi, (cfg["m"], cfg["k"]), endpoint=True).astype(dtype),
                  c.pattern)
    A = rng.integers(lo, hi, (cfg["k"], cfg["n"]), endpoint=True).astype(dtype)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        vectors = gemm_vectors(c, W, A)
    t1 = time.perf_counter()
    write_testbench(work / "tb", vectors, top=TOP, rtl_rel=f"../rtl/{TOP}.v")
    t2 = time.perf_counter()
    sizes = {f.name: f.stat().st_size for f in (work / "tb").glob("*.hex")}
    return {"seconds": t2 - t0, "seconds_vectors": t1 - t0, "seconds_write": t2 - t1,
            "steps": vectors.steps, "tiles": vectors.tiles, "hex_bytes": sum(sizes.values())}


class PassTimer:
    """Wall time per yosys pass, from the moment each ``N.N. Executing X`` header shows up
    in the log while yosys runs (polled every 0.1 s: the log is written as yosys goes, and
    the time of a section runs to the next header). ``synth`` masks the pass times in the
    logs it keeps, so the split is taken live."""

    _HEADER = re.compile(r"^[\d.]+ Executing (\S+?)\.?(?:\s|$)")

    def __init__(self, log: Path, interval: float = 0.1):
        self.log, self.interval = log, interval
        self.marks: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self.log.unlink(missing_ok=True)
        self.t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.t1 = time.perf_counter()

    def _poll(self):
        pos, tail = 0, ""
        while True:
            stopping = self._stop.is_set()
            try:
                with open(self.log, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos += len(chunk)
            except OSError:
                chunk = b""
            now = time.perf_counter()
            lines = (tail + chunk.decode(errors="replace")).split("\n")
            tail = lines.pop()
            for line in lines:
                m = self._HEADER.match(line)
                if m:
                    self.marks.append((now, m.group(1).upper()))
            if stopping:
                return
            self._stop.wait(self.interval)

    def seconds(self) -> dict[str, float]:
        """Seconds per pass name (sections of the same name summed), largest first."""
        out: dict[str, float] = {}
        ends = [t for t, _ in self.marks[1:]] + [self.t1]
        for (t, name), end in zip(self.marks, ends):
            out[name] = out.get(name, 0.0) + end - t
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _synth_info(timer: PassTimer, t0: float) -> dict:
    per_pass = timer.seconds()
    abc = sum(v for k, v in per_pass.items() if k.startswith("ABC"))
    return {"seconds": time.perf_counter() - t0, "seconds_abc": abc,
            "top_passes": dict(list(per_pass.items())[:6])}


def _synthesize(work: Path, target: str, log: str, cfg: dict) -> tuple[dict, dict]:
    from gen.area import synthesize_design
    text = (work / "rtl" / f"{TOP}.v").read_text()
    folder = work / "synth" / target
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with PassTimer(folder / log) as timer:
        r = synthesize_design(text, work / "synth", [target], False,
                              fast=cfg.get("fast", False))[target]
    return _synth_info(timer, t0), r


def nand2(work: Path, cfg: dict) -> dict:
    info, r = _synthesize(work, "generic", "area.log", cfg)
    return {**info, "nand2_eq": r["nand2_eq"], "flip_flops": r["flip_flops"],
            "fast": cfg.get("fast", False), "composed": r.get("composed")}


def ecp5(work: Path, cfg: dict) -> dict:
    info, r = _synthesize(work, "ecp5", "ecp5.log", cfg)
    return {**info, "lut4": r["lut4"], "ff": r["ff"], "mult18x18d": r["mult18x18d"],
            "ccu2c": r["ccu2c"], "composed": r.get("composed")}


def parse(output: str) -> dict:
    """The ``STAGE-RESULT`` of a stage's output."""
    for line in reversed(output.splitlines()):
        if line.startswith(PREFIX):
            return json.loads(line[len(PREFIX):])
    raise RuntimeError(f"stage printed no result:\n{output[-2000:]}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] not in STAGES:
        print(f"usage: python -m bench.stage {{{','.join(STAGES)}}} WORKDIR CONFIG_JSON",
              file=sys.stderr)
        return 2
    stage, work, cfg = argv[0], Path(argv[1]), json.loads(argv[2])
    work.mkdir(parents=True, exist_ok=True)
    result = globals()[stage](work, cfg)
    print(PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
