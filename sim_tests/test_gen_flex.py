"""``python -m gen`` on mode sets: one flexible build, every mode cosimulated in Verilator and
Icarus (tiles of different modes back to back, random back-pressure), users' tensors per
layer and mode, bad sets refused, reports and manifest listing the modes."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

import hss
from genkit import gen, read_z

ROOT = Path(__file__).resolve().parents[1]
HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"


@pytest.mark.parametrize("modes, sim, extra", [
    (HIGHLIGHT, "verilator", ["--stalls", "11"]),
    (HIGHLIGHT, "icarus", ["--rows", "1", "--cols", "1", "--shape", "3,60,2"]),
    ("2:2|2:3,2:4|4:4,1:2|2:2", "verilator", ["--stalls", "4"]),     # three ranks
    ("2:4|4:4", "verilator", ["--unsigned", "--width", "6"]),         # outermost G differs
])
def test_every_mode_in_one_run(tmp_path, modes, sim, extra):
    out = tmp_path / "o"
    r = gen("--ranks", modes, "--rows", 2, "--cols", 2, "--sim", sim, "--no-synth",
            "--out", out, *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((out / "report.json").read_text())
    ms = hss.ModeSet.parse(modes)
    assert report["flexible"] and [m["pattern"] for m in report["modes"]] == \
        [str(p) for p in ms.modes]
    assert [l["mode"] for l in report["layers"]] == [str(p) for p in ms.modes]
    tb = report["testbench"]
    assert tb["passed"] and tb["ideal_cycles"] == sum(l["steps"] for l in report["layers"])
    layer_cycles = [l["cycles"] for l in report["layers"]]
    assert [m["cycles"] for m in report["modes"]] == layer_cycles      # one layer per mode
    assert sum(layer_cycles) == tb["cycles"] - report["latency"]
    if "--stalls" in extra:
        assert tb["cycles"] > tb["ideal_cycles"] + report["latency"]
    else:                                   # all lanes busy in every mode: no bubble
        assert layer_cycles == [l["steps"] for l in report["layers"]]
    # Z of every layer, as the RTL computed it, against NumPy on the operands of config.json
    config = json.loads((out / "config.json").read_text())
    zs = read_z(out / "tb" / "z_out.txt", [(l["m"], l["n"]) for l in config["layers"]])
    from gen.inputs import random_operands
    from hdl.config import FlexConfig
    o = config["options"]
    c = FlexConfig(modes, o["rows"], o["cols"], o["width"], o["signed"])
    for layer, z in zip(config["layers"], zs):
        m, k, n = layer["shape"]
        W, A = random_operands(c, m, k, n, layer["random_seed"],
                               pattern=hss.Pattern.parse(layer["mode"]))
        np.testing.assert_array_equal(z, W @ A)
    manifest = json.loads((out / "rtl" / "manifest.json").read_text())
    assert manifest["modes_set"] == str(ms) and len(manifest["modes"]) == len(ms)
    names = {p["name"]: p for p in manifest["ports"]["hss_accelerator"]}
    assert "mode" in names["weights__payload"]["layout"]["fields"] or len(ms) == 1
    md = (out / "report.md").read_text()
    assert "## Modes" in md
    tables = [line for line in md.splitlines() if line.startswith("|")]
    assert not any(str(ms) in line for line in tables)      # a | in a cell is escaped


def test_area_of_a_flexible_build(tmp_path):
    out = tmp_path / "o"
    r = gen("--ranks", HIGHLIGHT, "--rows", 1, "--cols", 2, "--sim", "none",
            "--target", "generic", "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((out / "report.json").read_text())
    d, t = report["area"]["design"]["generic"], report["area"]["dense_twin"]["generic"]
    assert d["breakdown"]["selectors: lane muxes"] > 0
    assert d["breakdown"]["selectors: row steering"] > 0
    assert d["breakdown"]["selectors: column windows"] > 0
    assert d["breakdown"]["multipliers"] == pytest.approx(t["breakdown"]["multipliers"], rel=0.01)
    assert sum(d["breakdown"].values()) == pytest.approx(d["nand2_eq"], rel=1e-3)
    assert 1.0 < report["sparsity_tax"]["area_ratio"] < 1.6
    assert not (out / "rtl" / "hss_decompressor.v").exists()      # per pattern: fixed builds


def test_users_layers_in_chosen_modes(tmp_path):
    rng = np.random.default_rng(3)
    files = []
    for i, mode in enumerate(["4:6,2:4", "4:4,4:4", "4:7,1:4"]):
        p = hss.Pattern.parse(mode)
        W = hss.prune(rng.integers(-128, 128, (5, 70)), p)      # K=70: padded per mode
        A = rng.integers(-128, 128, (70, 3))
        np.save(tmp_path / f"W{i}.npy", W)
        np.save(tmp_path / f"A{i}.npy", A)
        files += ["--weights", tmp_path / f"W{i}.npy", "--activations", tmp_path / f"A{i}.npy",
                  "--mode", mode]
    out = tmp_path / "o"
    r = gen("--ranks", HIGHLIGHT, "--rows", 2, "--cols", 2, "--no-synth", "--out", out, *files)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((out / "report.json").read_text())
    assert [l["mode"] for l in report["layers"]] == ["4:6,2:4", "4:4,4:4", "4:7,1:4"]
    zs = read_z(out / "tb" / "z_out.txt", [(5, 3)] * 3)
    for i, z in enumerate(zs):
        np.testing.assert_array_equal(z, np.load(tmp_path / f"W{i}.npy")
                                      @ np.load(tmp_path / f"A{i}.npy"))
    # the equivalent command in config.json names every layer's mode
    assert json.loads((out / "config.json").read_text())["command"].count("--mode") == 3


def test_default_mode_is_the_sparsest_that_fits_and_prune_needs_a_mode(tmp_path):
    rng = np.random.default_rng(4)
    W = hss.prune(rng.integers(-8, 8, (4, 48)), hss.Pattern.parse("4:6,1:4"))
    A = rng.integers(-8, 8, (48, 4))
    np.save(tmp_path / "W.npy", W)
    np.save(tmp_path / "A.npy", A)
    args = ["--ranks", HIGHLIGHT, "--rows", 2, "--cols", 2, "--sim", "none", "--no-synth",
            "--weights", tmp_path / "W.npy", "--activations", tmp_path / "A.npy"]
    r = gen(*args, "--out", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    mode = json.loads((tmp_path / "a" / "report.json").read_text())["layers"][0]["mode"]
    assert hss.Pattern.parse(mode).density <= hss.Pattern.parse("4:6,1:4").density
    assert hss.conforms(W, hss.Pattern.parse(mode))
    r = gen(*args, "--prune", "--out", tmp_path / "b")
    assert r.returncode == 2 and "--prune on a mode set needs --mode" in r.stderr
    dense = rng.integers(1, 8, (4, 48))
    np.save(tmp_path / "D.npy", dense)
    args[args.index(tmp_path / "W.npy")] = tmp_path / "D.npy"
    r = gen(*args, "--mode", "4:6,2:4", "--prune", "--out", tmp_path / "c")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("ranks, extra, words", [
    ("4:6|,2:4", [], "empty alternative"),
    ("|2:4", [], "empty alternative"),
    ("4:6|4:6,2:4", [], "duplicate 4:6"),
    ("4:6|x:4,2:4", [], "is not a positive integer"),
    (HIGHLIGHT, ["--macs", "6"], "not a multiple of the outermost rank's G=4"),
    ("2:4|3:4", ["--macs", "4"], "3 values per group"),
    (HIGHLIGHT, ["--mode", "4:8,2:4"], "is not a mode of"),
    (HIGHLIGHT, ["--macs", "0"], "--macs must be a positive integer"),
])
def test_bad_mode_sets_are_one_line_exit_2(tmp_path, ranks, extra, words):
    W = tmp_path / "W.npy"
    np.save(W, np.zeros((2, 16), np.int64))
    np.save(tmp_path / "A.npy", np.zeros((16, 2), np.int64))
    tensors = ["--weights", W, "--activations", tmp_path / "A.npy"] if "--mode" in extra else []
    r = gen("--ranks", ranks, *extra, *tensors, "--out", tmp_path / "o", "--sim", "none")
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], r.stderr
    assert not (tmp_path / "o").exists()


def test_emitted_testbench_reruns_every_mode_with_stalls(tmp_path):
    """tb/ on its own: make with STALLS, every layer still PASSes."""
    out = tmp_path / "o"
    assert gen("--ranks", HIGHLIGHT, "--rows", 1, "--cols", 1, "--sim", "none", "--no-synth",
               "--out", out).returncode == 0
    r = subprocess.run(["make", "--no-print-directory", "sim-icarus", "STALLS=99"],
                       cwd=out / "tb", capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout and r.stdout.count("LAYER ") == 12


def test_random_layers_in_chosen_modes(tmp_path):
    r = gen("--ranks", HIGHLIGHT, "--rows", 1, "--cols", 1, "--sim", "icarus", "--no-synth",
            "--mode", "4:7,1:4", "--mode", "4:4,4:4", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert [l["mode"] for l in report["layers"]] == ["4:7,1:4", "4:4,4:4"]
    assert report["testbench"]["passed"]
