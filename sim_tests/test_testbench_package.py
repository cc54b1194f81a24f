"""The testbench package without a simulator: its templates, its copied files, ``tbkit``
(computed once for the generator and the cocotb test) and the tool knowledge it takes from
``synth.tools``. The simulated checks are in test_testbench*.py."""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import string
import warnings
from pathlib import Path

import jinja2
import numpy as np
import pytest

import gen.testbench
import hss
from gen import fusesoc
from gen.testbench import (TB_FILES, expected_actions, render, stall_seeds, tbkit,
                           write_testbench)
from gen.testbench.params import LAYER_FIELDS
from hdl import AcceleratorConfig
from hdl.stimulus import gemm_vectors
from synth import tools

PACKAGE = Path(gen.testbench.__file__).parent
GOLDEN = Path(__file__).resolve().parent / "golden"
TEMPLATES = ("tb.sv.j2", "Makefile.j2", "tools.mk.j2")
#: cocotb's runner sets these itself in a Verilator build
COCOTB_SETS = ("--binary", "--timescale", "--top-module", "-o")


def _vectors(tile_rows=None, signed=True):
    p = hss.Pattern.parse("4:6,2:4")
    cfg = AcceleratorConfig(p, 4, 2, 8, signed, tile_rows=tile_rows)
    rng = np.random.default_rng(5)
    lo, hi = (-128, 128) if signed else (0, 256)
    W = hss.prune(rng.integers(lo, hi, (6, 48)), p)
    A = rng.integers(lo, hi, (48, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        return gemm_vectors(cfg, W, A)


def _written(tmp_path, monkeypatch, **kw):
    """Write a folder; return it and the values each template was rendered with."""
    seen = {}
    real = render.render

    def spy(name, **values):
        seen[name] = values
        return real(name, **values)

    monkeypatch.setattr(render, "render", spy)
    write_testbench(tmp_path / "tb", _vectors(), **kw)
    return tmp_path / "tb", seen


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- templates --------------------------------------------------------------------------

def test_templates_are_rendered_strictly(tmp_path, monkeypatch):
    """Every name a template uses must be given: leaving any one out raises, it never
    renders as an empty string."""
    _, seen = _written(tmp_path, monkeypatch, stall_seed=3, tool_paths={"vvp": "/usr/bin/vvp"})
    assert set(seen) == set(TEMPLATES)
    env = render.environment()
    assert env.undefined is jinja2.StrictUndefined
    for name, values in seen.items():
        env.get_template(name).render(**values)
        for left_out in values:
            rest = {k: v for k, v in values.items() if k != left_out}
            with pytest.raises(jinja2.UndefinedError):
                env.get_template(name).render(**rest)
    with pytest.raises(jinja2.UndefinedError, match="top"):
        render.render("tb.sv.j2")


def test_templates_are_package_data():
    """The templates and copied files are where pyproject.toml's package data says."""
    for name in TEMPLATES:
        assert (PACKAGE / "templates" / name).is_file()
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"gen.testbench"' in text and '"testbench/templates/*.j2"' in text


# ---- the copied files and tb_params.json --------------------------------------------------

def test_static_files_are_copied_verbatim(tmp_path, monkeypatch):
    tb, _ = _written(tmp_path, monkeypatch)
    assert sorted(p.name for p in tb.iterdir()) == sorted(TB_FILES)
    for name in ("test_cocotb.py", "tbkit.py"):
        assert (tb / name).read_bytes() == (PACKAGE / name).read_bytes()


def test_tbkit_and_test_cocotb_need_only_cocotb():
    """tbkit imports nothing; test_cocotb.py the standard library, cocotb and tbkit: the
    folder runs without hss-gen (test_testbench.py runs it so)."""
    kit = ast.parse((PACKAGE / "tbkit.py").read_text())
    assert not [n for n in ast.walk(kit) if isinstance(n, (ast.Import, ast.ImportFrom))]
    test = ast.parse((PACKAGE / "test_cocotb.py").read_text())
    names = {a.name.split(".")[0] for n in ast.walk(test) if isinstance(n, ast.Import)
             for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(test) if isinstance(n, ast.ImportFrom)}
    assert names <= {"json", "os", "shutil", "sys", "tempfile", "time", "pathlib", "tbkit",
                     "cocotb", "cocotb_tools", "verilator"}, names


def test_tb_params_hold_what_tb_sv_has(tmp_path, monkeypatch):
    """tb_params.json's params are tb.sv's localparams, its layers are layers.hex's lines."""
    tb, _ = _written(tmp_path, monkeypatch, stall_seed=9)
    t = json.loads((tb / "tb_params.json").read_text())
    sv = (tb / "tb.sv").read_text()
    localparams = dict(re.findall(r"^  localparam integer (\w+) = (-?\d+);$", sv, re.M))
    assert {k: int(localparams[k]) for k in t["params"]} == t["params"]
    assert [f"L_{f}" for f in LAYER_FIELDS] == [k for k in localparams if k.startswith("L_")]
    for row, line in zip(t["layers"], (tb / "layers.hex").read_text().split(), strict=True):
        word = int(line, 16)
        assert row == {f: (word >> (32 * i)) & 0xFFFFFFFF for i, f in enumerate(LAYER_FIELDS)}
    assert t["stall_seed_default"] == 9 and "32'd9;" in sv
    assert t["signed"] is True and t["top"] == "hss_accelerator"
    assert t["rtl"] == "../rtl/hss_accelerator.v"


# ---- tbkit: one computation for the generator, the cocotb test and (in Verilog) tb.sv --

def test_the_generator_computes_with_tbkit():
    assert gen.testbench.stall_seeds is tbkit.stall_seeds
    assert gen.testbench.xorshift32 is tbkit.xorshift32
    assert stall_seeds(7) == tbkit.stall_seeds(7 + 2**32)     # only seed mod 2**32 counts
    assert all(0 < s < 2**32 for s in stall_seeds(0))


def test_tbkit_checks_tiles_as_tb_sv(tmp_path, monkeypatch):
    """The expected beats pass the tile check and place every element of Z once; a changed
    value, overflow or last bit gives tb.sv's MISMATCH, OVERFLOW and LAST lines."""
    v = _vectors(tile_rows=2)
    tb = tmp_path / "tb"
    write_testbench(tb, v)
    t = json.loads((tb / "tb_params.json").read_text())
    kit = _load(tb / "tbkit.py", "tbkit_copy")        # the folder's copy
    p, lay = t["params"], t["layers"][0]
    assert p["TILE_BEATS"] == 2
    expected = [int(x, 16) for x in (tb / "expected.hex").read_text().split()]
    z = [None] * p["Z_TOTAL"]

    def beat(t_idx, word):
        last = int(t_idx % p["TILE_BEATS"] == p["TILE_BEATS"] - 1)
        return word | lay["EXPECT_OVERFLOW"] << p["Z_BITS"] | last << (p["Z_BITS"] + 1)

    for t_idx, word in enumerate(expected):
        placed, errors = kit.check_tile_beat(beat(t_idx, word), word, t_idx, 0, lay, p,
                                             t["signed"])
        assert errors == []
        for index, value in placed:
            assert z[index] is None
            z[index] = value
    np.testing.assert_array_equal(np.array(z).reshape(v.m, v.n), v.expected)
    # tile 1, beat 1 (its rows 2..3), element (0, 1): Z row 2, column 2 + 1
    t_idx, e = 3, 1
    wrong = beat(t_idx, expected[t_idx]) ^ 1 << (e * p["ACC"]) ^ 1 << p["Z_BITS"] \
        ^ 1 << (p["Z_BITS"] + 1)
    got = kit.field(wrong, e, p, True)
    want = kit.field(expected[t_idx], e, p, True)
    _, errors = kit.check_tile_beat(wrong, expected[t_idx], t_idx, 0, lay, p, True)
    assert errors == [f"MISMATCH tile 1 row 2 col 3 got {got} expected {want}",
                      "OVERFLOW tile 1 got 1 expected 0", "LAST tile 1 beat 1 got 0 expected 1"]


def test_expected_actions_count_with_tbkit():
    """expected_actions counts with the functions test_cocotb.py counts with (and
    test_testbench_actions.py holds both to the RTL's streams)."""
    assert gen.testbench.params.beat_nonzeros is tbkit.beat_nonzeros
    assert gen.testbench.params.beat_steps is tbkit.beat_steps
    v = _vectors()
    (act,) = expected_actions(v)
    assert act["steps"] == v.steps and act["wbeats"] == v.beats and act["nonzero"] > 0


# ---- tool knowledge: synth.tools only ----------------------------------------------------

def test_verilator_flags_come_from_synth_tools(tmp_path, monkeypatch):
    """A flag added to synth.tools.VERILATOR_FLAGS reaches the Makefile, the cocotb build
    (tb_params.json) and the FuseSoC core: none of them keeps its own copy."""
    monkeypatch.setattr(tools, "VERILATOR_FLAGS", tools.VERILATOR_FLAGS + ("-Wno-HSSTEST",))
    tb, _ = _written(tmp_path, monkeypatch)
    line = re.search(r"^VERILATOR_FLAGS = (.*)$", (tb / "Makefile").read_text(), re.M).group(1)
    assert line == " ".join(tools.verilator_flags(jobs="$(JOBS)")) \
        + " -MAKEFLAGS PYTHON3=$(PYTHON3)"
    assert line.startswith("--binary -j $(JOBS) --output-split 0 ") and "-Wno-HSSTEST" in line
    args = json.loads((tb / "tb_params.json").read_text())["verilator_build_args"]
    assert args == list(tools.verilator_flags(without=COCOTB_SETS))
    assert "-Wno-HSSTEST" in args and "--binary" not in args
    manifest = json.loads((GOLDEN / "fixed_2-4_2x2" / "rtl" / "manifest.json").read_text())
    core = fusesoc.core_text(manifest, fusesoc.core_name("x"))
    assert core.count('"-Wno-HSSTEST"') == 2        # the sim and sim_verilator targets


def test_verilator_flags_options():
    assert tools.verilator_flags() == tools.VERILATOR_FLAGS
    flags = tools.verilator_flags(jobs=3, top="harness", binary="Vharness",
                                  without=("--timescale",))
    assert flags == ("--binary", "-j", "3", "--output-split", "0", "--top-module", "harness",
                     "-Wno-WIDTH", "-Wno-fatal", "-o", "Vharness")


def test_plain_characters_come_from_synth_tools(tmp_path, monkeypatch):
    """One set of plain characters: the regular-expression ranges, the spelled-out set of
    the Makefile's shell pattern and of test_cocotb.py, and the check of rtl_rel."""
    ranges = re.compile(f"[{tools.PLAIN_RANGES}]")
    for ch in string.printable + "\u00e9":
        assert tools.is_plain(ch) == bool(ranges.fullmatch(ch)) == (ch in tools.PLAIN_CHARS)
    assert not tools.is_plain("")
    tb, _ = _written(tmp_path, monkeypatch)
    makefile = (tb / "Makefile").read_text()
    assert f"\n_plain := {tools.PLAIN_CHARS}\n" in makefile
    assert f"outside {tools.PLAIN_RANGES}," in makefile
    assert json.loads((tb / "tb_params.json").read_text())["plain_chars"] == tools.PLAIN_CHARS
    with pytest.raises(ValueError, match=re.escape(tools.PLAIN_RANGES)):
        write_testbench(tmp_path / "x", _vectors(), rtl_rel="../rtl/a b.v")


def test_build_folder(tmp_path, monkeypatch):
    """A plain folder builds where it is; another gets a scratch folder, removed after."""
    with tools.build_folder(tmp_path, "hss-test.") as scratch:
        assert scratch is None
    odd = tmp_path / "a b"
    odd.mkdir()
    monkeypatch.setenv("TMPDIR", str(odd))        # not plain either: /tmp instead
    monkeypatch.setattr("tempfile.tempdir", None)
    with tools.build_folder(odd, "hss-test.") as scratch:
        assert scratch.is_dir() and scratch.parent == Path("/tmp")
        assert scratch.name.startswith("hss-test.")
    assert not scratch.exists()


def test_one_core_count():
    """gen and bench ask synth.tools how many cores they may use."""
    import bench.cli
    import gen.options
    import gen.plan
    assert gen.plan.cores is gen.options.cores is bench.cli.cores is tools.cores
    try:
        assert tools.cores() == len(os.sched_getaffinity(0))
    except AttributeError:
        assert tools.cores() >= 1
