"""``python -m gen`` writes ``hss_system`` beside the engine: its Verilog, its register map's
files, the manifest's and the report's system sections; or, for an engine the system does
not take, none of them and one line saying why.

The builds here use small buffers (4 KiB): what is checked does not depend on their size.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gen.fusesoc import LINT_OPTIONS
from genkit import gen
from synth import tools

SMALL = ["--wbuf-kib", "4", "--abuf-kib", "4", "--qbuf-rows", "64"]
BUILD = ["--ranks", "2:4", "--rows", "2", "--cols", "2", "--sim", "none", "--no-synth",
         "--dma-bits", "64", "--shape", "6,40,5", *SMALL]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    root = tmp_path_factory.mktemp("system")
    r = gen(*BUILD, "--out", root / "a")
    assert r.returncode == 0, r.stderr
    return root


def test_build_writes_the_system_and_its_registers(build):
    out = build / "a"
    text = (out / "rtl" / "hss_system.v").read_text()
    assert text.count("\nmodule hss_system(") == 1
    # the engine and the buffers are instances of the modules beside it
    assert "hss_accelerator engine (" in text and "\nmodule hss_accelerator(" not in text
    assert text.count("hss_sdp_ram #(") == 4
    assert "module hss_sdp_ram #(" in (out / "rtl" / "hss_sdp_ram.v").read_text()
    for name in ("hss_system.h", "hss_system.md", "hss_system.xml", "html/index.html"):
        assert (out / "regs" / name).is_file(), name
    header = (out / "regs" / "hss_system.h").read_text()
    assert "HSS_SYSTEM" in header


def test_manifest_lists_the_axi_ports(build):
    system = json.loads((build / "a" / "rtl" / "manifest.json").read_text())["system"]
    assert system["top"] == "hss_system" and system["file"] == "hss_system.v"
    assert system["files"] == ["hss_system.v", "hss_sdp_ram.v", "hss_accelerator.v"]
    ports = {p["name"]: p for p in system["ports"]}
    assert "clk" not in ports and "rst" not in ports
    assert ports["aclk"]["interface"] == "clock" and ports["aresetn"]["direction"] == "input"
    assert ports["irq"]["direction"] == "output"
    for name, width, direction in (("m_axi_wdata", 64, "output"), ("m_axi_rdata", 64, "input"),
                                   ("m_axi_wstrb", 8, "output"), ("m_axi_araddr", 32, "output"),
                                   ("m_axi_awlen", 8, "output"), ("s_axil_wdata", 32, "input"),
                                   ("s_axil_rdata", 32, "output"),
                                   ("s_axil_awaddr", 12, "input")):
        assert ports[name]["width"] == width and ports[name]["direction"] == direction, name
        assert ports[name]["interface"] == name.rsplit("_", 1)[0]
    assert system["parameters"]["dma_bits"] == 64
    assert system["parameters"]["wbuf_bytes"] == 4096
    assert system["buffers"]["controller.qbuf"] == {"depth": 64, "width": 32, "bits": 2048}
    assert system["register_map"]["parameters"]["word_bytes"] == 8


def test_report_has_the_system_section(build):
    out = build / "a"
    report = json.loads((out / "report.json").read_text())["system"]
    assert report["interfaces"]["m_axi"]["data_bits"] == 64
    names = [m["name"] for m in report["memories"]]
    assert names[:4] == ["controller.wbuf", "controller.abuf", "controller.obuf",
                         "controller.qbuf"]
    (layer,) = report["layers"]
    assert layer["dram_bytes"] >= layer["minimum_dram_bytes"] > 0
    assert layer["cycles_lower_bound"] == max(layer["compute_cycles"], layer["dram_cycles"])
    md = (out / "report.md").read_text()
    assert "## System: `hss_system`" in md and "`regs/hss_system.h`" in md
    assert "analytic, not measured" in md and "a model, not a measurement" in md


def test_rerun_is_byte_identical(build):
    r = gen(*BUILD, "--out", build / "b")
    assert r.returncode == 0, r.stderr
    a, b = _files(build / "a"), _files(build / "b")
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []


def test_system_verilog_passes_verilator_lint(build):
    try:
        verilator = tools.find("verilator")
    except tools.ToolMissing as e:
        pytest.fail(f"{e} (make setup installs Verilator)")
    rtl = build / "a" / "rtl"
    r = subprocess.run([*verilator.argv, "--lint-only", *LINT_OPTIONS, "--top-module",
                        "hss_system", "hss_system.v", "hss_sdp_ram.v", "hss_accelerator.v"],
                       cwd=rtl, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("options, message", [
    (["--dma-bits", "100"], "--dma-bits"),
    (["--obuf-tiles", "1"], "--obuf-tiles"),
    (["--wbuf-kib", "0"], "--wbuf-kib"),
    (["--qbuf-rows", "1"], "qbuf_rows"),
])
def test_bad_system_options_exit_2_with_one_line(tmp_path, options, message):
    r = gen("--ranks", "2:4", "--rows", "2", "--cols", "2", "--sim", "none", "--no-synth",
            *options, "--out", tmp_path / "out")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not (tmp_path / "out").exists()


def test_refused_engine_writes_no_system_and_says_why(tmp_path):
    r = gen("--ranks", "2:4", "--rows", "2", "--cols", "2", "--tile-rows", "1", "--sim",
            "none", "--no-synth", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    assert not (out / "rtl" / "hss_system.v").exists() and not (out / "regs").exists()
    why = json.loads((out / "rtl" / "manifest.json").read_text())["system"]["refused"]
    assert "one beat" in why and "\n" not in why
    assert json.loads((out / "report.json").read_text())["system"] == {"refused": why}
    assert f"No `hss_system` for this build (no `rtl/hss_system.v`, no `regs/`): {why}" in \
        (out / "report.md").read_text()
    assert "no hss_system" in r.stdout


def test_no_system_writes_the_engine_only(tmp_path):
    r = gen(*BUILD, "--no-system", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "rtl").iterdir()) == [
        "hss_accelerator.v", "hss_decompressor.v", "manifest.json"]
    assert not (out / "regs").exists()
    assert "system" not in json.loads((out / "rtl" / "manifest.json").read_text())
    assert "system" not in json.loads((out / "report.json").read_text())


def test_flexible_build_writes_its_system(tmp_path):
    r = gen("--ranks", "4:4|4:6,4:4|2:4", "--rows", "2", "--cols", "2", "--sim", "none",
            "--no-synth", *SMALL, "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    system = json.loads((tmp_path / "out" / "rtl" / "manifest.json").read_text())["system"]
    assert system["register_map"]["parameters"]["num_modes"] == 4
    assert (tmp_path / "out" / "rtl" / "hss_system.v").is_file()


# --- a user's layers through hss_system (`--testbench`) --------------------------------

def _user_layer(folder: Path, m=5, k=40, n=6, seed=11):
    """A 2:4 W and an A as int8 .npy files (int8 on purpose: Z must not wrap in NumPy)."""
    import numpy as np

    import hss
    rng = np.random.default_rng(seed)
    W = hss.prune(rng.integers(-128, 128, (m, k)), hss.Pattern.parse("2:4")).astype(np.int8)
    A = rng.integers(-128, 128, (k, n)).astype(np.int8)
    np.save(folder / "W.npy", W)
    np.save(folder / "A.npy", A)
    return W.astype(np.int64) @ A.astype(np.int64), ["--weights", folder / "W.npy",
                                                     "--activations", folder / "A.npy"]


USER = ["--ranks", "2:4", "--rows", "2", "--cols", "2", "--no-synth", "--dma-bits", "64",
        *SMALL]


def test_user_layers_run_through_the_system_by_default(tmp_path):
    """--weights layers: hss_system runs them (tb/system/, no engine testbench), Z lands in
    tb/z_out.txt, and the report has the RTL's counters against the golden model's."""
    from genkit import read_z
    Z, layer = _user_layer(tmp_path)
    out = tmp_path / "out"
    r = gen(*USER, *layer, "--dram-latency", "9", "--stalls", "4", "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (out / "tb" / "tb.sv").exists()
    assert {"Makefile", "sys_tb.sv", "dram.hex", "program.hex"} <= {
        p.name for p in (out / "tb" / "system").iterdir()}
    assert not (out / "tb" / "system" / "obj_dir").exists()
    [z] = read_z(out / "tb" / "z_out.txt", [Z.shape])
    assert (z == Z).all()
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "pass" and "testbench" not in report
    run = report["system"]["testbench"]
    assert run["passed"] and run["dram_latency"] == 9 and run["back_pressure_seed"] == 4
    [l] = run["layers"]
    assert l["exact"] and l["counters_as_golden"] and l["cycles"] >= l["cycles_lower_bound"]
    assert l["dram_bytes"] == l["dram_read_bytes"] + l["dram_write_bytes"] > 0
    assert 0 < l["of_roofline"] <= 1 and l["multiplies"] == l["steps"] * 2 * 2 * 2
    assert "system testbench (verilator, tb/system): PASS" in r.stdout
    assert "### Measured: the layers through `hss_system`" in (out / "report.md").read_text()
    # the folder's Makefile reruns the same simulation with this run's plusargs
    assert "PLUSARGS ?= +latency=9 +seed=4" in (out / "tb" / "system" / "Makefile").read_text()
    rerun = subprocess.run(["make", "-C", str(out / "tb" / "system"), "sim-verilator"],
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0 and "PASS" in rerun.stdout, rerun.stdout + rerun.stderr


def test_both_testbenches_agree(tmp_path):
    Z, layer = _user_layer(tmp_path, m=3, k=24, n=4)
    out = tmp_path / "out"
    r = gen(*USER, *layer, "--testbench", "both", "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "tb" / "tb.sv").is_file() and (out / "tb" / "system" / "sys_tb.sv").is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "pass" and report["testbench"]["passed"]
    assert report["system"]["testbench"]["z_agrees_with_engine_testbench"] is True


def test_rank1_at_the_fetch_end_to_end(tmp_path):
    """``--fetch shared``: hss_system around its own rank-0 engine (rtl/hss_system_engine.v),
    the manifest says so, random layers pruned with rows sharing rank 1, and both
    testbenches pass and agree; the system lints with the files the manifest lists."""
    out = tmp_path / "out"
    r = gen("--ranks", "4:6,2:4", "--rows", "2", "--cols", "2", "--no-synth", *SMALL,
            "--fetch", "shared", "--testbench", "both", "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    system = json.loads((out / "rtl" / "manifest.json").read_text())["system"]
    assert system["parameters"]["fetch"] == "shared"
    assert system["engine"] == {"module": "hss_system_engine", "pattern": "4:4,2:4"}
    assert system["files"] == ["hss_system.v", "hss_sdp_ram.v", "hss_system_engine.v"]
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "pass"
    assert report["system"]["testbench"]["z_agrees_with_engine_testbench"] is True
    verilator = tools.find("verilator")
    lint = subprocess.run([*verilator.argv, "--lint-only", *LINT_OPTIONS, "--top-module",
                           "hss_system", *system["files"]], cwd=out / "rtl",
                          capture_output=True, text=True, timeout=600)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize("options, message", [
    (["--ranks", "2:4"], "two-rank pattern"),
    (["--ranks", "4:4,2:4"], "dense"),
    (["--ranks", "4:4|4:6,2:4"], "fixed pattern"),
    (["--ranks", "4:6,2:4", "--no-system"], "--no-system"),
    (["--ranks", "4:6,2:4", "--tasd", "4:6,2:4"], "--tasd"),
])
def test_bad_fetch_options_exit_2_with_one_line(tmp_path, options, message):
    r = gen(*options, "--fetch", "shared", "--rows", "2", "--cols", "2", "--sim", "none",
            "--no-synth", "--out", tmp_path / "out")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not (tmp_path / "out").exists()


def test_a_build_without_requantization_has_no_qbuf_and_runs(tmp_path):
    """``--no-requant``: the system is built without qbuf (QBUF_DEPTH reads 0) and its
    testbench passes (this crashed in the register map before the system fuzzer found it)."""
    out = tmp_path / "out"
    r = gen("--ranks", "2:4", "--rows", "2", "--cols", "2", "--no-synth", *SMALL,
            "--no-requant", "--testbench", "both", "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    system = json.loads((out / "rtl" / "manifest.json").read_text())["system"]
    assert system["register_map"]["parameters"]["qbuf_depth"] == 0
    assert not any("qbuf" in name for name in system["buffers"])
    assert json.loads((out / "report.json").read_text())["status"] == "pass"


def test_engine_testbench_on_request_and_sim_none(tmp_path):
    _, layer = _user_layer(tmp_path, m=3, k=24, n=4)
    r = gen(*USER, *layer, "--testbench", "engine", "--out", tmp_path / "e")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "e" / "tb" / "tb.sv").is_file()
    assert not (tmp_path / "e" / "tb" / "system").exists()
    assert "testbench" not in json.loads((tmp_path / "e" / "report.json").read_text())["system"]
    r = gen(*USER, *layer, "--sim", "none", "--out", tmp_path / "n")
    assert r.returncode == 0, r.stdout + r.stderr
    folder = tmp_path / "n" / "tb"
    assert sorted(p.name for p in folder.iterdir()) == ["system"]
    assert not (folder / "z_out.txt").exists()
    report = json.loads((tmp_path / "n" / "report.json").read_text())
    assert report["status"] == "generated (not simulated)"


@pytest.mark.parametrize("options, message", [
    (["--testbench", "system", "--no-system"], "--no-system"),
    (["--testbench", "both", "--tile-rows", "1"], "no hss_system"),
    (["--testbench", "bus"], "--testbench"),
    (["--dram-latency", "-1"], "--dram-latency"),
    (["--testbench", "system", "--trace"], "--trace"),
])
def test_bad_testbench_options_exit_2_with_one_line(tmp_path, options, message):
    _, layer = _user_layer(tmp_path, m=3, k=24, n=4)
    r = gen(*USER, *layer, *options, "--out", tmp_path / "out")
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not (tmp_path / "out").exists()


def test_system_testbench_refuses_a_path_make_cannot_take(tmp_path):
    """--weights into a folder with a space: the engine testbench by default, and an explicit
    --testbench system is one line and exit 2."""
    _, layer = _user_layer(tmp_path, m=3, k=24, n=4)
    out = tmp_path / "with space"
    r = gen(*USER, *layer, "--sim", "none", "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "tb" / "tb.sv").is_file() and not (out / "tb" / "system").exists()
    r = gen(*USER, *layer, "--testbench", "system", "--out", tmp_path / "more space")
    assert r.returncode == 2 and "the system testbench" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
