"""The composed NAND2 area flow (synth.flows.area_nand2_composed, synth.compose): each
distinct module mapped once, the hierarchy composed from instance counts, against the flow
that maps every instance (synth.area_nand2).

On emitted accelerators the composed total matches the per-instance one within 1 % (measured
for 4:6,2:4: +0.07 % at 2x2, +0.08 % at 4x4 (and 8x8); HighLight's flexible build: +0.24 % at
2x2, +0.26 % at 4x4): ABC maps a module a little differently under another name (yosys
numbers its internal nets design-wide), as it already does between two copies of a module
in one per-instance run; flip-flop counts are equal."""

import pytest

import gen.area
import synth
from gen.area import COMPOSE_ABOVE_PES, breakdown, pe_count
from gen.emit import TOP, emit_verilog
from hdl.config import AcceleratorConfig, FlexConfig
from synth.compose import distinct_modules
from synth.flows import area_nand2_composed

HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"

# Escaped dotted names as Amaranth writes them; leaf_a/leaf_b and mid_0/mid_1 are copies,
# leaf_c differs (an extra register); the design numbers its auto wires design-wide.
COPIES = r"""
module \top.mid_0.leaf_a (clk, a, y);
  reg \$auto$verilog_backend.cc:2355:dump_module$1  = 0;
  input clk; wire clk;
  input [3:0] a; wire [3:0] a;
  output [3:0] y; reg [3:0] y;
  always @(posedge clk) y <= a + 4'h3;
endmodule
module \top.mid_0.leaf_b (clk, a, y);
  reg \$auto$verilog_backend.cc:2355:dump_module$2  = 0;
  input clk; wire clk;
  input [3:0] a; wire [3:0] a;
  output [3:0] y; reg [3:0] y;
  always @(posedge clk) y <= a + 4'h3;
endmodule
(* src = "x.py:1" *)
module \top.mid_0 (clk, a, y);
  input clk; wire clk;
  input [3:0] a; wire [3:0] a;
  output [7:0] y; wire [7:0] y;
  \top.mid_0.leaf_a  leaf_a (
    .a(a), .clk(clk), .y(y[3:0])
  );
  \top.mid_0.leaf_b  leaf_b (
    .a(~a), .clk(clk), .y(y[7:4])
  );
endmodule
module \top.mid_1.leaf_a (clk, a, y);
  reg \$auto$verilog_backend.cc:2355:dump_module$3  = 0;
  input clk; wire clk;
  input [3:0] a; wire [3:0] a;
  output [3:0] y; reg [3:0] y;
  always @(posedge clk) y <= a + 4'h3;
endmodule
module \top.mid_1.leaf_b (clk, a, y);
  reg \$auto$verilog_backend.cc:2355:dump_module$4  = 0;
  input clk; wire clk;
  input [3:0] a; wire [3:0] a;
  output [3:0] y; reg [3:0] y;
  always @(posedge clk) y <= a + 4'h3;
endmodule
(* src = "x.py:1" *)
module \top.mid_1 (clk, a, y);
  input clk; wire clk;
  input [3:0] a; wire [3:0] a;
  output [7:0] y; wire [7:0] y;
  \top.mid_1.leaf_a  leaf_a (
    .a(a), .clk(clk), .y(y[3:0])
  );
  \top.mid_1.leaf_b  leaf_b (
    .a(~a), .clk(clk), .y(y[7:4])
  );
endmodule
module \top.leaf_c (clk, a, y);
  input clk; wire clk;
  input [3:0] a; wire [3:0] a;
  output [3:0] y; reg [3:0] y; reg [3:0] t;
  always @(posedge clk) t <= a + 4'h3;
  always @(posedge clk) y <= t;
endmodule
module unused (a, y);
  input a; output y; assign y = a;
endmodule
(* top = 1 *)
module top(clk, a, y);
  input clk; wire clk;
  input [3:0] a; wire [3:0] a;
  output [19:0] y; wire [19:0] y;
  \top.mid_0  mid_0 (
    .a(a), .clk(clk), .y(y[7:0])
  );
  \top.mid_1  mid_1 (
    .a(a ^ 4'h5), .clk(clk), .y(y[15:8])
  );
  \top.leaf_c  leaf_c (
    .a(a), .clk(clk), .y(y[19:16])
  );
endmodule
"""


def test_distinct_modules_classes_and_reduced_text():
    c = distinct_modules(COPIES, "top")
    assert sorted(map(sorted, c.classes)) == sorted([
        ["top"], ["top.leaf_c"], ["top.mid_0", "top.mid_1"],
        ["top.mid_0.leaf_a", "top.mid_0.leaf_b", "top.mid_1.leaf_a", "top.mid_1.leaf_b"]])
    assert c.distinct == 4 and "unused" not in c.rep
    assert c.instances() == {"top": 1, "top.mid_0": 1, "top.mid_1": 1, "top.leaf_c": 1,
                             "top.mid_0.leaf_a": 1, "top.mid_0.leaf_b": 1,
                             "top.mid_1.leaf_a": 1, "top.mid_1.leaf_b": 1}
    # one module per class, every instantiation at the representative
    assert c.reduced.count("\nmodule ") + c.reduced.startswith("module ") == 4
    assert "mid_1" not in c.reduced.replace("mid_1 (", "")
    assert c.reduced.count(r"\top.mid_0.leaf_a  leaf_") == 2
    assert r"\top.mid_0  mid_1 (" in c.reduced


def test_composed_equals_flat_on_copies(tmp_path):
    flat = synth.area_nand2(COPIES, "top", tmp_path / "flat")
    comp = area_nand2_composed(COPIES, "top", tmp_path / "comp")
    assert comp["composed"] == {"modules": 8, "distinct_modules": 4, "instances": 7,
                                "flat_equivalent": False}
    assert comp["total"] == flat["total"]
    assert set(comp["modules"]) == set(flat["modules"]) - {"unused"}
    for name, m in comp["modules"].items():
        assert m == flat["modules"][name], name


def test_composed_falls_back_to_the_whole_design(tmp_path):
    """Text the splitter refuses (here a comment between modules) is synthesized whole."""
    text = COPIES.replace("module \\top.leaf_c", "// a comment\nmodule \\top.leaf_c", 1)
    r = area_nand2_composed(text, "top", tmp_path)
    assert r["composed"]["flat_equivalent"] is True
    assert "between modules" in r["composed"]["fallback"]
    assert r["composed"]["instances"] == 7
    assert r["total"] == synth.area_nand2(COPIES, "top", tmp_path / "flat")["total"]


def _emit(config) -> str:
    return emit_verilog(config)[0][TOP]


def _compare(verilog, tmp_path):
    flat = synth.area_nand2(verilog, TOP, tmp_path / "flat")
    comp = area_nand2_composed(verilog, TOP, tmp_path / "comp")
    # same hierarchy: every module, its submodules and instance counts
    assert set(comp["modules"]) == set(flat["modules"])
    for name, m in flat["modules"].items():
        c = comp["modules"][name]
        assert (c["submodules"], c["instances"]) == (m["submodules"], m["instances"]), name
    assert comp["total"]["ff_count"] == flat["total"]["ff_count"]
    assert comp["total"]["area"] == pytest.approx(flat["total"]["area"], rel=0.01)
    assert comp["total"]["transistors"] == pytest.approx(flat["total"]["transistors"], rel=0.01)
    rows_f, rows_c = breakdown(flat), breakdown(comp)
    assert list(rows_c) == list(rows_f)
    assert sum(rows_c.values()) == pytest.approx(comp["total"]["area"], abs=0.1)
    for k, v in rows_f.items():   # each level within 3 % (ABC noise on a small module)
        assert rows_c[k] == pytest.approx(v, rel=0.03, abs=5), k
    info = comp["composed"]
    assert info["flat_equivalent"] is False
    assert info["modules"] == len(flat["modules"])
    assert info["instances"] == sum(m["instances"] for m in flat["modules"].values()) - 1
    assert info["distinct_modules"] <= 12      # independent of the array size
    return flat, comp


@pytest.mark.parametrize("side", [2, pytest.param(4, marks=pytest.mark.long)])
def test_composed_within_1pc_fixed(side, tmp_path):
    _compare(_emit(AcceleratorConfig("4:6,2:4", side, side, 8, True)), tmp_path)


@pytest.mark.parametrize("side", [2, pytest.param(4, marks=pytest.mark.long)])
def test_composed_within_1pc_flexible(side, tmp_path):
    _compare(_emit(FlexConfig(HIGHLIGHT, side, side, 8, True)), tmp_path)


def test_area_composes_only_above_the_threshold(monkeypatch, tmp_path):
    """The area report of ``python -m gen`` keeps the per-instance flow up to 4x4 (same
    numbers as before) and composes above ``COMPOSE_ABOVE_PES``; a switch forces either."""
    calls = []

    def fake(kind):
        def flow(verilog, top, work, **kw):
            calls.append(kind)
            r = {"modules": {}, "total": {"area": 1.0, "comb_area": 1.0, "seq_area": 0.0,
                                          "ff_count": 0, "transistors": 4, "cells": {}}}
            if kind == "composed":
                r["composed"] = {"flat_equivalent": False}
            return r
        return flow
    monkeypatch.setattr(synth, "area_nand2", fake("flat"))
    monkeypatch.setattr(gen.area, "area_nand2_composed", fake("composed"))
    small = _emit(AcceleratorConfig("2:4", 4, 4, 8, True))
    assert pe_count(small) == 16 == COMPOSE_ABOVE_PES
    instance = "  \\hss_accelerator.array.pe_0_0  pe_0_0 ("
    assert small.count(instance) == 1
    big = small.replace(instance, "  \\hss_accelerator.array.pe_0_0  pe_9_9 (\n  );\n"
                        + instance)
    assert pe_count(big) == 17
    r = gen.area.synthesize_design(small, tmp_path, ["generic"], False)
    assert "composed" not in r["generic"]
    r = gen.area.synthesize_design(big, tmp_path, ["generic"], False)
    assert r["generic"]["composed"] == {"flat_equivalent": False}
    gen.area.synthesize_design(small, tmp_path, ["generic"], False, compose=True)
    gen.area.synthesize_design(big, tmp_path, ["generic"], False, compose=False)
    assert calls == ["flat", "composed", "composed", "flat"]
