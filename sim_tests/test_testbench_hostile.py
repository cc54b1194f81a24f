"""The emitted testbench folder under hostile conditions: folder paths full of characters
that a shell or make treat specially, a shell without the venv (``tools.mk``), bad stall
choices, and the seed arithmetic of tb.sv against Python's at the 32-bit edges.

Everything runs the folder's Makefile as a user would (``make`` in a subprocess, ``cwd`` set
to the folder), on a 1x1 array and two tiles, so each Verilator build takes a few seconds.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog

import hss
from gen.simulate import simulate
from gen.testbench import TB_FILES, stall_seeds, write_testbench
from hdl import LATENCY, AcceleratorConfig, HSSAccelerator
from hdl.stimulus import gemm_vectors

VERILATOR = str(Path(sys.executable).parent / "verilator-cli")
PLAIN_PATH = "/usr/bin:/bin"        # a shell without the venv
# folder names for the odd-path tests: the brief's example, and one with most specials
ODD_NAMES = ["my build (v2)", "a #1 $HOME 'q' \"d\" b:c;d&e [x]{y} %z ~w !v `u` =t,s\\r"]


def _vectors():
    p = hss.Pattern.parse("4:6,2:4")
    cfg = AcceleratorConfig(p, 1, 1, 8, True)
    rng = np.random.default_rng(1)
    W = hss.prune(rng.integers(-128, 128, (2, 48)), p)
    A = rng.integers(-128, 128, (48, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        return gemm_vectors(cfg, W, A)


@pytest.fixture(scope="module")
def design():
    """(vectors, Verilog text) of the 1x1 design, converted once."""
    v = _vectors()
    return v, verilog.convert(HSSAccelerator(v.config), name="hss_accelerator")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for var in ("STALLS", "JOBS", "VERILATOR", "IVERILOG", "VVP", "PYTHON3", "MAKEFLAGS",
                "MFLAGS", "MAKELEVEL"):
        monkeypatch.delenv(var, raising=False)


def _folder(root: Path, design, **kw) -> Path:
    """``root/rtl/hss_accelerator.v`` and the testbench in ``root/tb``."""
    v, text = design
    (root / "rtl").mkdir(parents=True, exist_ok=True)
    (root / "rtl" / "hss_accelerator.v").write_text(text)
    write_testbench(root / "tb", v, **kw)
    return root / "tb"


def _make(tb: Path, *args, env=None, check=True):
    r = subprocess.run(["make", "--no-print-directory", *args], cwd=tb, env=env,
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def _env(tmp: Path, **extra) -> dict:
    """Our environment with a private, empty TMPDIR (to see what a run leaves there)."""
    tmp.mkdir(exist_ok=True)
    return dict(os.environ, TMPDIR=str(tmp), **extra)


def _report(out: str):
    m = re.search(r"^CYCLES (\d+) IDEAL (\d+) LATENCY (\d+)$", out, re.M)
    assert m and re.search(r"^PASS$", out, re.M), out
    return int(m.group(1))


def _z(tb: Path, v) -> np.ndarray:
    return np.array([int(x) for x in (tb / "z_out.txt").read_text().split()]).reshape(v.m, v.n)


# ---- folder paths with spaces and shell/make specials ---------------------------------

@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_folder_path_with_make(tmp_path, design, name):
    v = design[0]
    tb = _folder(tmp_path / name / "x y", design, stall_seed=5)
    env = _env(tmp_path / "tmp")
    # Verilator builds in a scratch folder, never in ./obj_dir, which only gets the binary
    assert '--Mdir "$scratch"' in _make(tb, "-n", "build-verilator", env=env).stdout
    out = _make(tb, "sim-verilator", f"VERILATOR={VERILATOR}", env=env).stdout
    assert sorted(p.name for p in (tb / "obj_dir").iterdir()) == ["Vtb"]
    cycles = _report(out)
    assert cycles > v.steps + LATENCY
    np.testing.assert_array_equal(_z(tb, v), v.expected)
    icarus = _make(tb, "sim-icarus", env=env).stdout
    assert _report(icarus) == cycles
    np.testing.assert_array_equal(_z(tb, v), v.expected)
    # a run-time choice runs the same binaries, in the same folder
    for stalls, expect in (("off", v.steps + LATENCY), ("9", None)):
        got = [_report(_make(tb, f"sim-{sim}", f"STALLS={stalls}", f"VERILATOR={VERILATOR}",
                             env=env).stdout) for sim in ("verilator", "icarus")]
        assert got[0] == got[1] == (expect or got[0])
    assert not any((tmp_path / "tmp").iterdir()), "scratch folders left behind"
    _make(tb, "clean", env=env)
    assert sorted(p.name for p in tb.iterdir()) == sorted(TB_FILES)


def test_odd_folder_path_with_simulate(tmp_path, design, monkeypatch):
    """``gen.simulate`` runs build-verilator and run-verilator as two makes: the binary
    survives the scratch folder, and the log names no scratch path (it stays deterministic)."""
    v = design[0]
    tb = _folder(tmp_path / "my build (v2)" / "o's", design)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    cycles = []
    for sim in ("verilator", "icarus"):
        r = simulate(tb, sim, stalls=11)
        assert r.passed, r.log.read_text()
        np.testing.assert_array_equal(_z(tb, v), v.expected)
        assert str(tmp_path) not in r.log.read_text()       # no scratch (or other) path
        cycles.append(r.cycles)
    assert cycles[0] == cycles[1] > v.steps + LATENCY
    assert not any((tmp_path / "tmp").iterdir())


def test_unusable_tmpdir_falls_back_to_tmp(tmp_path, design):
    """A TMPDIR that itself has a space would break Verilator's build again: the recipe
    takes /tmp instead."""
    tb = _folder(tmp_path / "odd dir", design)
    bad = tmp_path / "tmp with space"
    out = _make(tb, "sim-verilator", f"VERILATOR={VERILATOR}", env=_env(bad)).stdout
    assert _report(out) == design[0].steps + LATENCY
    assert not any(bad.iterdir())


def test_killed_build_leaves_its_scratch_to_make_clean(tmp_path, design):
    """SIGKILL skips the recipe's cleanup (``gen`` kills tool trees so on an interrupt):
    obj_dir/scratch names the folder left behind, and ``make clean`` removes it."""
    tb = _folder(tmp_path / "my build (v2)", design)
    tmp = tmp_path / "tmp"
    proc = subprocess.Popen(["make", "build-verilator", f"VERILATOR={VERILATOR}"], cwd=tb,
                            env=_env(tmp), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (tb / "obj_dir" / "scratch").exists() and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    recorded = (tb / "obj_dir" / "scratch").read_text().strip()
    assert Path(recorded).parent == tmp and Path(recorded).is_dir()
    _make(tb, "clean", env=_env(tmp))
    # (a killed g++ may leave its own cc*.s there)
    assert not list(tmp.glob("hss-tb-*")) and not (tb / "obj_dir").exists()


def test_odd_folder_path_with_cocotb(tmp_path, design):
    tb = _folder(tmp_path / "my build (v2)", design, stall_seed=5)
    r = simulate(tb, "cocotb-icarus")
    assert r.passed, r.log.read_text()
    icarus = _make(tb, "sim-icarus").stdout
    assert r.cycles == _report(icarus)


def test_odd_folder_path_with_cocotb_verilator(tmp_path, design, monkeypatch):
    """cocotb on Verilator: the build options from tb_params.json (synth.tools'), and a
    scratch folder for a path Verilator's makefiles refuse, removed afterwards."""
    tb = _folder(tmp_path / "my build (v2)", design, stall_seed=5)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    r = simulate(tb, "cocotb-verilator")
    assert r.passed, r.log.read_text()
    assert r.cycles == _report(_make(tb, "sim-icarus").stdout)
    assert not any((tmp_path / "tmp").iterdir()), "scratch folders left behind"
    assert not (tb / "sim_build-verilator").exists()


# ---- tools.mk: a plain shell without the venv -----------------------------------------

def test_tools_mk_runs_from_a_shell_without_the_venv(tmp_path, design):
    v = design[0]
    # the tools behind a path that needs quoting for both make and the shell
    odd = tmp_path / "tools $HOME #1 'q' (a)"
    odd.mkdir()
    for name, target in (("verilator-cli", VERILATOR), ("iverilog", shutil.which("iverilog")),
                         ("vvp", shutil.which("vvp"))):
        (odd / name).symlink_to(target)
    paths = {"verilator": str(odd / "verilator-cli"), "iverilog": str(odd / "iverilog"),
             "vvp": str(odd / "vvp")}
    tb = _folder(tmp_path / "plain", design, stall_seed=3, tool_paths=paths)
    text = (tb / "tools.mk").read_text()
    assert text.startswith("#") and "VERILATOR ?= " in text and "VVP ?= " in text
    env = {"PATH": PLAIN_PATH, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    assert shutil.which("verilator-cli", path=PLAIN_PATH) is None
    out = _make(tb, "sim-verilator", "JOBS=1", env=env).stdout
    assert "-j 1" in out
    cycles = _report(out)
    assert cycles > v.steps + LATENCY
    assert _report(_make(tb, "sim-icarus", env=env).stdout) == cycles
    # the command line and the environment win over tools.mk
    r = _make(tb, "run-icarus", "VVP=/nonexistent/vvp", env=env, check=False)
    assert r.returncode != 0 and "/nonexistent/vvp" in r.stdout + r.stderr
    r = _make(tb, "run-icarus", env=dict(env, VVP="/nonexistent/vvp"), check=False)
    assert r.returncode != 0 and "/nonexistent/vvp" in r.stdout + r.stderr
    # without tools.mk that shell finds no Verilator
    write_testbench(tb, v, stall_seed=3)
    assert not (tb / "tools.mk").exists()
    if shutil.which("verilator", path=PLAIN_PATH) is None:
        assert _make(tb, "clean", "sim-verilator", env=env, check=False).returncode != 0


# ---- stall choices: seeds at the edges, bad values, the cycle limit --------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory, design):
    """A plain folder, built for both simulators."""
    tb = _folder(tmp_path_factory.mktemp("built"), design)
    _make(tb, "build-verilator", "build-icarus", f"VERILATOR={VERILATOR}")
    return tb


RUN = {"verilator": ["./obj_dir/Vtb"], "icarus": ["vvp", "-n", "tb.vvp"]}
SEEDS = [0, 1, 3, 2**31 - 1, 2**31, 0x9E3779B1, 2**32 - 2, 2**32 - 1]


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_seed_derivation_matches_python(built, sim):
    """tb.sv's stall_seed_of (32-bit wrap-around, xorshift rounds) against stall_seeds(),
    the generator's and the folder's copy of tbkit (which test_cocotb.py uses)."""
    spec = importlib.util.spec_from_file_location("tbkit_copy", built / "tbkit.py")
    kit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kit)
    for seed in SEEDS:
        out = subprocess.run(RUN[sim] + [f"+stalls={seed}", "+load_only"], cwd=built,
                             capture_output=True, text=True, check=True).stdout
        want = " ".join(f"{x:08x}" for x in stall_seeds(seed))
        assert kit.stall_seeds(seed) == stall_seeds(seed)
        assert f"STALLS {seed} SEEDS {want}\n" in out, (seed, out)
    # leading zeros are still decimal
    out = subprocess.run(RUN[sim] + ["+stalls=0007", "+load_only"], cwd=built,
                         capture_output=True, text=True, check=True).stdout
    assert "STALLS 7 SEEDS " in out


def test_edge_seeds_run_alike_on_both_simulators(built):
    v = _vectors()
    for seed in (0, 2**32 - 1):
        cycles = [_report(_make(built, f"run-{sim}", f"STALLS={seed}",
                                f"VERILATOR={VERILATOR}").stdout)
                  for sim in ("verilator", "icarus")]
        assert cycles[0] == cycles[1] > v.steps + LATENCY


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
@pytest.mark.parametrize("args, message", [
    (["+stalls=4294967296"], "from 0 to 4294967295"),
    (["+stalls=12a"], "from 0 to 4294967295"),
    (["+stalls=-1"], "from 0 to 4294967295"),
    (["+stalls="], "from 0 to 4294967295"),
    (["+stalls=" + "0" * 40 + "1"], "from 0 to 4294967295"),
    (["+stalls"], "+stalls needs a seed"),
    (["+stalls=5", "+nostalls"], "contradict"),
])
def test_bad_plusargs_stop_the_run(built, sim, args, message):
    r = subprocess.run(RUN[sim] + args, cwd=built, capture_output=True, text=True)
    assert r.returncode != 0
    assert message in r.stdout + r.stderr
    assert not re.search(r"^(PASS|FAIL)$", r.stdout, re.M)     # a usage error, not a verdict


@pytest.mark.parametrize("stalls", ["x", "7 8", "-1", "off off", "0x10", "1e3"])
def test_bad_stalls_variable_stops_make(built, stalls):
    for env in (None, dict(os.environ, STALLS=stalls)):
        args = ["run-icarus"] + ([f"STALLS={stalls}"] if env is None else [])
        r = _make(built, *args, env=env, check=False)
        assert r.returncode != 0
        assert "STALLS must be off or a decimal seed" in r.stderr
        assert "vvp" not in r.stdout                       # nothing ran


def test_jobs_default_and_override(built):
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    dry = _make(built, "-B", "-n", "build-verilator").stdout
    assert f" -j {nproc} " in dry and "--Mdir obj_dir" in dry
    assert " -j 1 " in _make(built, "-B", "-n", "build-verilator", "JOBS=1").stdout
    assert " -j 3 " in _make(built, "-B", "-n", "build-verilator",
                             env=dict(os.environ, JOBS="3")).stdout


# A DUT that never takes a beat: the run ends at the cycle limit that its stall choice set.
_STUCK = """\
module hss_accelerator(input clk, input rst,
  input [{w}:0] weights__payload, input weights__valid, output weights__ready,
  input [{a}:0] activations__payload, input activations__valid, output activations__ready,
  output [{t}:0] tiles__payload, output tiles__valid, input tiles__ready);
  assign weights__ready = 1'b0;
  assign activations__ready = 1'b0;
  assign tiles__payload = 0;
  assign tiles__valid = 1'b0;
endmodule
"""


def test_cycle_limit_follows_the_run_time_choice(tmp_path, design):
    tb = _folder(tmp_path, design)
    sv = (tb / "tb.sv").read_text()
    p = {k: int(x) for k, x in re.findall(r"localparam integer (\w+) = (-?\d+);", sv)}
    (tmp_path / "rtl" / "hss_accelerator.v").write_text(
        _STUCK.format(w=p["W_BITS"] - 1, a=p["A_BITS"] - 1, t=p["T_BITS"] - 1))
    assert p["MAX_CYCLES_STALLS"] > p["MAX_CYCLES_NO_STALLS"]
    for stalls, limit in (("off", p["MAX_CYCLES_NO_STALLS"]), ("4", p["MAX_CYCLES_STALLS"])):
        r = _make(tb, "sim-icarus", f"STALLS={stalls}", check=False)
        assert r.returncode != 0
        assert f"TIMEOUT after {limit} cycles" in r.stdout
