"""Debugging a run: ``--trace`` dumps the testbench's waveforms and the report names them, the
tb Makefile's ``TRACE=1`` does the same from a plain shell, and a failing run reports its
first mismatching tile and the command that re-runs it traced, with its stalls.

1x1 arrays without synthesis: each Verilator build takes about 12 s (a traced one a little
more), so the file stays around a minute on two cores.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from gen.cli import main
from gen.simulate import SimResult, rerun_command
from genkit import gen

SMALL = ["--ranks", "4:6,2:4", "--rows", "1", "--cols", "1", "--no-synth"]
PLAIN_ENV = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")}  # no venv


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """The Makefile honours STALLS and TRACE from the environment: tests set them."""
    for var in ("STALLS", "TRACE", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        monkeypatch.delenv(var, raising=False)


def _vcd(path: Path) -> tuple[dict[str, str], dict[str, int], int]:
    """A VCD file as a viewer reads it: the variables (``tb.dut.clk`` style paths to their
    codes), the value changes per code, and the number of timestamps."""
    head, sep, body = path.read_text().partition("$enddefinitions")
    assert sep, f"{path}: no $enddefinitions"
    names, scope, tokens = {}, [], iter(head.split())
    for tok in tokens:
        if tok == "$scope":
            next(tokens)
            scope.append(next(tokens))
        elif tok == "$upscope":
            scope.pop()
        elif tok == "$var":
            _kind, _width, code, name = (next(tokens) for _ in range(4))
            names[".".join(scope + [name.lstrip("\\")])] = code
    assert not scope, "unbalanced $scope/$upscope"
    changes, times = {}, 0
    for line in body.split("\n")[1:]:
        line = line.strip()
        if line.startswith("#"):
            times += 1
        elif line and line[0] in "01xzXZ":
            changes[line[1:]] = changes.get(line[1:], 0) + 1
        elif line and line[0] in "bBrR":
            code = line.split()[1]
            changes[code] = changes.get(code, 0) + 1
    return names, changes, times


def _check_waves(path: Path, cycles: int) -> None:
    """The dump holds the testbench and the accelerator's ports, and the clock toggles."""
    names, changes, times = _vcd(path)
    for name in ("tb.clk", "tb.dut.clk", "tb.dut.weights__valid", "tb.dut.weights__payload",
                 "tb.dut.tiles__valid", "tb.dut.tiles__payload", "tb.t_idx"):
        assert name in names, f"{name} not in {path}"
    assert changes.get(names["tb.clk"], 0) >= 2 * cycles
    assert changes.get(names["tb.dut.tiles__valid"], 0) >= 2      # up and down at least
    assert times >= 2 * cycles


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_trace_dumps_waves_named_in_the_report(tmp_path, sim):
    out = tmp_path / "o"
    r = gen(*SMALL, "--sim", sim, "--trace", "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((out / "report.json").read_text())
    t = report["testbench"]
    assert t["passed"] and t["waves"] == "tb/waves.vcd"
    assert "`tb/waves.vcd`" in (out / "report.md").read_text()
    assert f"waveforms: {out / 'tb' / 'waves.vcd'}" in r.stdout
    _check_waves(out / "tb" / "waves.vcd", t["cycles"])
    assert "--trace" in json.loads((out / "config.json").read_text())["command"]
    assert not (out / "tb" / "obj_dir_trace").exists()      # build products are not results


def test_trace_needs_a_simulation(tmp_path):
    r = gen(*SMALL, "--sim", "none", "--trace", "--out", tmp_path / "o")
    assert r.returncode == 2
    assert r.stderr.strip() == ("gen: error: --trace dumps the testbench's simulation; "
                                "--sim none runs none")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_failing_run_names_its_first_mismatch_and_reruns_traced(tmp_path, monkeypatch,
                                                                 capsys, sim):
    """Tile 0's golden Z is off by one: the report shows it, expected against got, and the
    command it prints runs the simulation again from a plain shell, same stalls, traced."""
    import hdl.stimulus
    real = hdl.stimulus.segment_vectors
    golden = {}

    def corrupted(config, segments, A):
        v = real(config, segments, A)
        tiles = v.expected_tiles.copy()
        golden["z"] = int(tiles[0, 0, 0])
        tiles[0, 0, 0] += 1
        return v.__class__(**{**v.__dict__, "expected_tiles": tiles})
    monkeypatch.setattr("gen.plan.segment_vectors", corrupted)
    out = tmp_path / "o"
    assert main([*SMALL, "--sim", sim, "--stalls", "7", "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    z = golden["z"]
    t = json.loads((out / "report.json").read_text())["testbench"]
    assert t["passed"] is False and t["mismatches"] == 1 and t["stalls"] == "7"
    assert t["first_mismatch"] == {"tile": 0, "overflow": None, "elements": [
        {"row": 0, "col": 0, "got": z, "expected": z + 1}]}
    assert t["rerun"] == f"make -C tb sim-{sim} TRACE=1 STALLS=7"
    assert "waves" not in t and not (out / "tb" / "waves.vcd").exists()
    md = (out / "report.md").read_text()
    assert "**First mismatching tile: 0**" in md and f"| 0 | 0 | {z} | {z + 1} |" in md
    assert f"`{t['rerun']}`" in md
    assert f"first mismatching tile 0: row 0 col 0 got {z} expected {z + 1}; " \
           f"1 mismatches in all" in printed
    command = f"make -C {out / 'tb'} sim-{sim} TRACE=1 STALLS=7"
    assert f"re-run traced: {command}" in printed

    rerun = subprocess.run(command, shell=True, env=PLAIN_ENV, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode != 0, rerun.stdout + rerun.stderr     # the run fails again
    assert re.search(r"^STALLS 7 SEEDS ", rerun.stdout, re.M)
    assert f"MISMATCH tile 0 row 0 col 0 got {z} expected {z + 1}" in rerun.stdout
    cycles = int(re.search(r"^CYCLES (\d+)", rerun.stdout, re.M).group(1))
    assert cycles == t["cycles"]
    _check_waves(out / "tb" / "waves.vcd", cycles)
    if sim == "verilator":
        # traced and untraced binaries live apart: neither stands in for the other
        dry = ["make", "-n", "--no-print-directory", "sim-verilator", "STALLS=7"]
        traced = subprocess.run(dry + ["TRACE=1"], cwd=out / "tb", env=PLAIN_ENV,
                                capture_output=True, text=True).stdout
        assert traced.strip() == "./obj_dir_trace/Vtb +stalls=7 +trace"
        untraced = subprocess.run(dry, cwd=out / "tb", env=PLAIN_ENV, capture_output=True,
                                  text=True).stdout
        assert "--Mdir obj_dir " in untraced and "--trace" not in untraced
        assert untraced.strip().endswith("./obj_dir/Vtb +stalls=7")


def test_bad_trace_value_stops_make(tmp_path):
    out = tmp_path / "o"
    assert gen(*SMALL, "--sim", "none", "--out", out).returncode == 0
    r = subprocess.run(["make", "-C", out / "tb", "sim-icarus", "TRACE=yes"], env=PLAIN_ENV,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "TRACE must be 1 or 0, not 'yes'" in r.stderr


def test_first_mismatch_and_rerun_command():
    """Read from the testbench's messages: the first tile only, its overflow flag too; a
    timeout has no tile. The command quotes an odd folder for the shell."""
    def result(*messages):
        return SimResult(False, -1, 4, Path("log"), Path("z"), 0.0, 0.0,
                         messages=tuple(messages))
    r = result("MISMATCH tile 3 row 6 col 1 got -5 expected 7",
               "OVERFLOW tile 3 got 1 expected 0",
               "MISMATCH tile 4 row 8 col 0 got 1 expected 2")
    assert r.first_mismatch == {"tile": 3, "overflow": {"got": 1, "expected": 0},
                                "elements": [{"row": 6, "col": 1, "got": -5, "expected": 7}]}
    assert result("OVERFLOW tile 0 got 0 expected 1").first_mismatch["elements"] == []
    assert result("TIMEOUT after 9 cycles: 0 of 2 tiles, 1 of 4 beats").first_mismatch is None
    assert rerun_command(Path("my out") / "tb", "icarus", "off") == \
        "make -C 'my out/tb' sim-icarus TRACE=1 STALLS=off"
    with pytest.raises(ValueError):
        rerun_command("tb", "cocotb-icarus", None)
