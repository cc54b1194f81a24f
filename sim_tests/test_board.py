"""The on-board self-test (``hdl.selftest``) and ``--board`` (``gen.board``).

The self-test prints ``hss.selftest.selftest_line`` over its UART: checked in Amaranth's
simulator (quick) and in Verilator on the emitted Verilog (the proof), with the golden tiles
and with one expected ROM word corrupted. Its cycle count is the testbench's ``CYCLES``; past
its cycle limit it prints ``FAIL timeout cycles=N``. report.json's ``board`` section is
checked with a stand-in for the bitstream build; building a bitstream (nextpnr) is
``pnr``-marked: one 1x1 board build.
"""
import json
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

import hss
from gen import board
from gen.cli import main
from gen.emit import TOP, emit_verilog
from gen.simulate import simulate
from gen.testbench import write_testbench
from hdl.config import AcceleratorConfig, FlexConfig
from hdl.selftest import (LinePrinter, ROMStream, SelfTest, SelfTestBoard, Stopwatch,
                          TileChecker, UARTTx, baud_divisor, selftest_cycles)
from hdl.stimulus import flex_gemm_vectors, gemm_vectors
from hss.selftest import selftest_line, timeout_line
from synth import tools

from genkit import gen

CONFIG = AcceleratorConfig("4:6,2:4", rows=2, cols=2, width=8, max_k=96)
DIVISOR = 4                 # cycles per UART bit in simulation: short lines, fast runs
BAD = (2, 1, 0, -12345)     # the corrupted expected element: tile, row, col, value
LIMIT = 10_000              # the self-tests' cycle limit: far above these runs' cycles


def vectors(config=CONFIG, m=4, k=48, n=4, seed=1):
    rng = np.random.default_rng(seed)
    W = hss.prune(rng.integers(-128, 128, (m, k)), config.pattern)
    return gemm_vectors(config, W, rng.integers(-128, 128, (k, n)))


def corrupted(v):
    """``v`` with one expected element changed: the ROM word the checker reads is wrong."""
    t, r, c, value = BAD
    tiles = v.expected_tiles.copy()
    tiles[t, r, c] = value
    return replace(v, expected_tiles=tiles)


def golden(v_rom, v_true):
    return selftest_line(v_rom.expected_tiles, v_true.expected_tiles, selftest_cycles(v_true))


# ---- the golden line -------------------------------------------------------------------

def test_golden_line():
    z = np.arange(8).reshape(2, 2, 2)
    assert selftest_line(z, z, 17) == "PASS cycles=17\r\n"
    bad = z.copy()
    bad[1, 0, 1] = -3
    bad[1, 1, 0] = 99                               # later in row-major order: not named
    assert selftest_line(bad, z, 17) == "FAIL tile=1 row=0 col=1 exp=-3 got=5\r\n"
    assert timeout_line(1144) == "FAIL timeout cycles=1144\r\n"
    with pytest.raises(ValueError, match="shape"):
        selftest_line(z, z[:1], 1)
    with pytest.raises(ValueError, match="cycles"):
        selftest_line(z, z, -1)
    for bad_cycles in (0, 2.5, True):
        with pytest.raises(ValueError, match="cycles must be a positive integer"):
            timeout_line(bad_cycles)


# ---- eager checks ----------------------------------------------------------------------

def test_eager_checks():
    assert baud_divisor(25e6) == 217 and baud_divisor(12e6) == 104
    with pytest.raises(ValueError, match="cannot make 115200 baud"):
        baud_divisor(150e3)
    with pytest.raises(ValueError, match="positive frequency"):
        baud_divisor(0)
    with pytest.raises(ValueError, match="divisor"):
        UARTTx(0)
    with pytest.raises(TypeError, match="divisor"):
        UARTTx(2.5)
    with pytest.raises(ValueError, match="does not fit in 4"):
        ROMStream([1, 16], 4)
    with pytest.raises(ValueError, match="at least one word"):
        ROMStream([], 4)
    with pytest.raises(ValueError, match="not a plain field"):
        LinePrinter(["x={y}"], {"x": 8})
    with pytest.raises(ValueError, match="not a plain field"):
        LinePrinter(["x={x:04}"], {"x": 8})
    with pytest.raises(ValueError, match="rows"):
        TileChecker(0, 1, 8, 1)
    with pytest.raises(TypeError, match="GemmVectors"):
        SelfTest([], divisor=4, limit=LIMIT)
    with pytest.raises(ValueError, match="same accelerator config"):
        SelfTest([vectors(), vectors(AcceleratorConfig("2:4", 2, 2, max_k=96))], divisor=4,
                 limit=LIMIT)
    with pytest.raises(ValueError, match="limit must be a positive integer, not 0"):
        SelfTest(vectors(), divisor=4, limit=0)
    with pytest.raises(TypeError, match="limit must be a positive integer, not 100.0"):
        SelfTest(vectors(), divisor=4, limit=100.0)
    with pytest.raises(TypeError, match="limit"):
        SelfTest(vectors(), divisor=4)              # no default: every self-test ends
    with pytest.raises(ValueError, match="limit must be a positive integer, not -1"):
        SelfTestBoard(vectors(), limit=-1)
    with pytest.raises(ValueError, match="limit"):
        Stopwatch(0)


# ---- Amaranth's simulator ----------------------------------------------------------------

def uart_line(dut, divisor, limit=200_000):
    """The first line ``dut.tx`` sends (8N1, ``divisor`` cycles per bit), and the LEDs."""
    out = {}

    async def bench(ctx):
        line, cycles = "", 0
        while not line.endswith("\n"):
            while ctx.get(dut.tx):
                await ctx.tick()
                cycles += 1
                assert cycles < limit, f"no line after {limit} cycles: {line!r}"
            await ctx.tick().repeat(divisor + divisor // 2)   # the middle of data bit 0
            byte = 0
            for i in range(8):
                byte |= ctx.get(dut.tx) << i
                await ctx.tick().repeat(divisor)
            assert ctx.get(dut.tx) == 1, "framing error: no stop bit"
            line += chr(byte)
        out["line"], out["leds"] = line, ctx.get(dut.leds)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out["line"], out["leds"]


@pytest.mark.parametrize("bad", [False, True], ids=["golden", "corrupted"])
def test_selftest_amaranth(bad):
    v = vectors()
    rom = corrupted(v) if bad else v
    line, leds = uart_line(SelfTest(rom, divisor=DIVISOR, limit=LIMIT), DIVISOR)
    assert line == golden(rom, v)
    t, r, c, value = BAD
    if bad:
        assert line.startswith(f"FAIL tile={t} row={r} col={c} exp={value} got=")
        assert leds == 0b101                        # done, failed
    else:
        assert line == f"PASS cycles={v.steps + 4}\r\n" and leds == 0b011


def test_selftest_layers_and_unsigned():
    """Two layers back to back, unsigned values, a 1x1 array: tiles count across layers."""
    c = AcceleratorConfig("2:4", rows=1, cols=1, width=6, signed=False, max_k=64)
    rng = np.random.default_rng(3)
    layers = []
    for m, k, n in ((2, 8, 3), (1, 12, 2)):
        W = hss.prune(rng.integers(0, 64, (m, k)), c.pattern)
        layers.append(gemm_vectors(c, W, rng.integers(0, 64, (k, n))))
    line, _ = uart_line(SelfTest(layers, divisor=2, limit=LIMIT), 2)
    assert line == f"PASS cycles={sum(v.steps for v in layers) + 4}\r\n"
    tiles = np.concatenate([v.expected_tiles for v in layers])
    bad = tiles.copy()
    bad[7, 0, 0] += 1                               # the second layer's second tile
    rom = [layers[0], replace(layers[1], expected_tiles=bad[6:])]
    line, _ = uart_line(SelfTest(rom, divisor=2, limit=LIMIT), 2)
    assert line == selftest_line(bad, tiles, 0) == \
        f"FAIL tile=7 row=0 col=0 exp={tiles[7, 0, 0] + 1} got={tiles[7, 0, 0]}\r\n"


def test_selftest_timeout():
    """Past its limit the self-test prints ``FAIL timeout cycles=<limit>`` and shows fail,
    even when the tiles (all correct) arrive later; a run of exactly the limit passes."""
    v = vectors()
    n = selftest_cycles(v)
    for limit, want in ((10, timeout_line(10)), (n - 1, timeout_line(n - 1)),
                        (n, f"PASS cycles={n}\r\n")):
        line, leds = uart_line(SelfTest(v, divisor=DIVISOR, limit=limit), DIVISOR)
        assert (line, leds) == (want, 0b011 if want.startswith("PASS") else 0b101), limit


def test_selftest_hung():
    """An accelerator that never finishes (its last weight beat missing): the board's limit
    (``gen.board.watchdog_limit``) ends the run."""
    v = vectors()
    limit = board.watchdog_limit(v)
    assert limit == 4 * selftest_cycles(v) + 1_000
    hung = replace(v, weight_beats=v.weight_beats[:-1])
    line, leds = uart_line(SelfTest(hung, divisor=DIVISOR, limit=limit), DIVISOR)
    assert line == f"FAIL timeout cycles={limit}\r\n" and leds == 0b101


def test_selftest_flexible():
    """A flexible build, one layer per mode, a mode taking its beats in two steps."""
    c = FlexConfig("4:4|2:4", rows=1, cols=2, max_k=64, macs=2)
    rng = np.random.default_rng(0)
    layers = [flex_gemm_vectors(c, hss.prune(rng.integers(-128, 128, (2, 16)), c.modes.mode(i)),
                                rng.integers(-128, 128, (16, 3)), i) for i in (0, 1)]
    assert layers[0].steps_per_beat == 2
    line, leds = uart_line(SelfTest(layers, divisor=2, limit=LIMIT), 2)
    assert line == f"PASS cycles={sum(v.steps for v in layers) + 4}\r\n" and leds == 0b011


def test_cycles_are_the_testbench_cycles(tmp_path):
    """``PASS cycles=N``: N is what the generated testbench measures (Icarus here)."""
    v = vectors()
    (tmp_path / "rtl").mkdir()
    (tmp_path / "rtl" / f"{TOP}.v").write_text(emit_verilog(CONFIG)[0][TOP])
    write_testbench(tmp_path / "tb", [v], top=TOP, rtl_rel=f"../rtl/{TOP}.v")
    sim = simulate(tmp_path / "tb", "icarus", timeout=300)
    assert sim.passed and sim.cycles == selftest_cycles(v)


# ---- Verilator, on the emitted Verilog ---------------------------------------------------

HARNESS = """\
// Runs one of two self-tests (+bad: the one with a corrupted expected ROM word) and
// prints the line its UART sends (8N1, DIV cycles per bit), then its LEDs.
module harness;
  parameter integer DIV = %(div)d;
  reg clk = 0, rst = 1, bad = 0;
  wire tx_good, tx_bad, tx = bad ? tx_bad : tx_good;
  wire [2:0] leds_good, leds_bad, leds = bad ? leds_bad : leds_good;
  reg [7:0] b;
  integer i;
  always #1 clk = ~clk;
  selftest_good good(.clk(clk), .rst(rst), .tx(tx_good), .leds(leds_good), .replay(1'b0));
  selftest_bad bad_(.clk(clk), .rst(rst), .tx(tx_bad), .leds(leds_bad), .replay(1'b0));
  initial begin
    bad = $test$plusargs("bad");
    repeat (3) @(posedge clk);
    rst = 0;
    forever begin
      @(negedge tx);
      repeat (DIV / 2) @(posedge clk);            // the middle of the start bit
      for (i = 0; i < 8; i = i + 1) begin
        repeat (DIV) @(posedge clk);
        b[i] = tx;
      end
      repeat (DIV) @(posedge clk);
      if (tx !== 1'b1) begin $display("FRAMING ERROR"); $finish; end
      $write("%%c", b);
      if (b == 8'h0a) begin $display("LEDS %%b", leds); $finish; end
    end
  end
  initial begin
    repeat (1000000) @(posedge clk);
    $display("TIMEOUT");
    $finish;
  end
endmodule
"""


@pytest.fixture(scope="module")
def verilated(tmp_path_factory):
    """One Verilator binary holding the golden and the corrupted self-test (one build)."""
    d = tmp_path_factory.mktemp("selftest_verilator")
    v = vectors()
    text = "\n".join(verilog.convert(SelfTest(rom, divisor=DIVISOR, limit=LIMIT),
                                     name=f"selftest_{name}")
                     for name, rom in (("good", v), ("bad", corrupted(v))))
    (d / "selftest.v").write_text(text)
    (d / "harness.sv").write_text(HARNESS % {"div": DIVISOR})
    argv = [*tools.find("verilator").argv,
            *tools.verilator_flags(jobs=2, top="harness", binary="Vharness"),
            "-MAKEFLAGS", f"PYTHON3={sys.executable}", "harness.sv", "selftest.v"]
    with open(d / "build.log", "w") as log:
        done = tools.run(argv, cwd=d, what="verilator", stdout=log, timeout=600)
    assert done.returncode == 0, (d / "build.log").read_text()[-3000:]
    return d / "obj_dir" / "Vharness", v


@pytest.mark.parametrize("bad", [False, True], ids=["golden", "corrupted"])
def test_selftest_verilator(verilated, bad):
    binary, v = verilated
    r = subprocess.run([str(binary)] + (["+bad"] if bad else []), capture_output=True,
                       timeout=120)
    out = r.stdout.decode()                         # bytes as sent: the line ends in \r\n
    want = golden(corrupted(v) if bad else v, v)
    assert out.startswith(want), out
    assert want.startswith("FAIL tile=2 row=1 col=0 exp=-12345 got=" if bad
                           else f"PASS cycles={selftest_cycles(v)}\r\n")
    assert out[len(want):].startswith("LEDS 101\n" if bad else "LEDS 011\n"), out


# ---- the board: platform wiring and refusals ----------------------------------------------

@pytest.mark.parametrize("name", ["ulx3s-85f", "icebreaker"])
def test_board_pins(tmp_path, name):
    """The platform's files name the UART's tx, the LEDs and the button (no tools run)."""
    platform = board._platform(board.BOARDS[name])
    v = vectors(AcceleratorConfig("2:4", rows=1, cols=1, max_k=64), 2, 8, 2)
    plan = platform.build(SelfTestBoard(v, limit=LIMIT), name="top", build_dir=str(tmp_path),
                          do_build=False)
    plan.extract(str(tmp_path))
    if name.startswith("ulx3s"):
        pins = dict(re.findall(r'LOCATE COMP "(\w+?)__io" SITE "(\w+)"',
                               (tmp_path / "top.lpf").read_text()))
        want = {"uart_0__tx": "L4", "led_0": "B2", "led_1": "C2", "led_2": "C1",
                "button_0": "R1"}
    else:
        pins = dict(re.findall(r"set_io (\w+?)__io (\w+)", (tmp_path / "top.pcf").read_text()))
        want = {"uart_0__tx": "9", "led_g_0": "37", "led_r_0": "11", "button_0": "10"}
    assert want.items() <= pins.items(), pins


def test_board_refused_before_building(tmp_path):
    """32 multipliers for an iCE40UP5K's 8 DSPs: one line, exit 2, nothing written."""
    out = tmp_path / "out"
    r = gen("--ranks", "4:6,2:4", "--rows", 2, "--cols", 2, "--sim", "none", "--no-synth",
            "--board", "icebreaker", "--out", out)
    assert r.returncode == 2
    assert r.stderr == ("gen: error: --board icebreaker: the self-test needs 32 multiplier "
                        "blocks, the device has 8: use a smaller array\n")
    assert not out.exists()
    r = gen("--ranks", "2:4", "--board", "nosuchboard", "--out", out)
    assert r.returncode == 2 and "invalid choice: 'nosuchboard'" in r.stderr


def test_board_refused_after_synthesis(tmp_path, monkeypatch, capsys):
    """Too few LUT4s shows only in Yosys's counts: refused before place and route."""
    monkeypatch.setitem(board.DEVICES, "LFE5U-12F",
                        replace(board.DEVICES["LFE5U-12F"], lut4=100))
    out = tmp_path / "out"
    assert main(["--ranks", "2:4", "--rows", "1", "--cols", "1", "--sim", "none",
                 "--no-synth", "--board", "ulx3s-12f", "--out", str(out),
                 "--progress-interval", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gen: error: --board ulx3s-12f: the self-test needs ") and \
        err.endswith(" LUT4s, the device has 100\n")
    assert not out.exists() and not list(tmp_path.glob("*failed*"))


# ---- the report's board section ---------------------------------------------------------

def fake_board_json(name, layers):
    """What ``build_board`` returns (``board.json``) for a 1x1 2:4 on a ULX3S 12F, without
    the tools (numbers of a real build)."""
    limit = board.watchdog_limit(layers)
    return {"board": name, "device": "LFE5U-12F", "clock_mhz": 25.0, "fmax_mhz": 109.31,
            "baud": 115200, "used": {"lut4": 857, "dsp": 2, "bram": 3},
            "available": {"lut4": 12_000, "dsp": 28, "bram": 32}, "bitstream": "top.bit",
            "program": "openFPGALoader --board ulx3s top.bit",
            "expected_line": f"PASS cycles={selftest_cycles(layers)}",
            "watchdog_cycles": limit, "timeout_line": f"FAIL timeout cycles={limit}"}


def test_report_section():
    """Files and the programming command move from board/ to the output folder."""
    r = fake_board_json("ulx3s-12f", vectors())
    s = board.report_section(r)
    assert s == r | {"bitstream": "board/top.bit", "readme": "board/README.md",
                     "program": "openFPGALoader --board ulx3s board/top.bit"}
    ice = board.report_section(r | {"board": "icebreaker", "bitstream": "top.bin"})
    assert ice["program"] == "iceprog board/top.bin"


def test_board_report(tmp_path, monkeypatch):
    """--board adds report.json's ``board`` section and report.md's "On the board", and
    nothing else: the same run without --board writes the rest byte for byte."""
    built = {}

    def build_board(name, layers, out, **limits):
        built["json"] = fake_board_json(name, layers)
        return built["json"]

    monkeypatch.setattr(board, "build_board", build_board)
    run = ["--ranks", "2:4", "--rows", "1", "--cols", "1", "--sim", "none", "--no-synth",
           "--progress-interval", "0", "--out"]
    assert main(run + [str(tmp_path / "plain")]) == 0
    assert main(run + [str(tmp_path / "board"), "--board", "ulx3s-12f"]) == 0
    plain, with_board = (json.loads((tmp_path / d / "report.json").read_text())
                         for d in ("plain", "board"))
    section = with_board.pop("board")
    assert with_board == plain and "board" not in plain
    assert section == board.report_section(built["json"])
    assert list(json.loads((tmp_path / "board" / "report.json").read_text()))[-1] == "board"
    md_plain = (tmp_path / "plain" / "report.md").read_text()
    md = (tmp_path / "board" / "report.md").read_text()
    assert md.startswith(md_plain + "\n## On the board\n")
    assert "Program it with `openFPGALoader --board ulx3s board/top.bit`" in md
    assert "must then print `PASS cycles=36` (`FAIL timeout cycles=1144` if it hangs)" in md
    assert "| LUT4 | 857 | 12,000 |" in md and "| Fmax (MHz, nextpnr) / board clock | " \
        "109.31 | 25 |" in md


# ---- a bitstream ------------------------------------------------------------------------

@pytest.mark.pnr
def test_board_bitstream(tmp_path):
    """A 1x1 2:4 self-test for a ULX3S 12F: bitstream, reports, README, the PASS line."""
    out = tmp_path / "out"
    r = gen("--ranks", "2:4", "--rows", 1, "--cols", 1, "--sim", "none", "--no-synth",
            "--board", "ulx3s-12f", "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "board done in" in r.stdout
    b = out / "board"
    assert sorted(p.name for p in b.iterdir()) == [
        "README.md", "board.json", "top.bit", "top.report.json", "top.stat.json", "top.tim"]
    assert (b / "top.bit").stat().st_size > 50_000
    info = json.loads((b / "board.json").read_text())
    assert info["fmax_mhz"] > info["clock_mhz"] == 25
    assert 0 < info["used"]["lut4"] < info["available"]["lut4"]
    assert info["used"]["dsp"] == 2                 # the two multipliers of a 2:4 PE
    assert info["expected_line"] == "PASS cycles=36"    # 4 tiles x 8 steps + latency 4
    assert info["watchdog_cycles"] == 4 * 36 + 1_000
    assert info["timeout_line"] == "FAIL timeout cycles=1144"
    readme = (b / "README.md").read_text()
    assert "openFPGALoader --board ulx3s top.bit" in readme and "PASS cycles=36" in readme
    assert "FAIL timeout cycles=1144" in readme
    assert "Max frequency for clock" in (b / "top.tim").read_text()
    section = json.loads((out / "report.json").read_text())["board"]
    assert section == board.report_section(info)
    assert (out / section["bitstream"]).is_file() and (out / section["readme"]).is_file()
    assert section["program"] == "openFPGALoader --board ulx3s board/top.bit"
    md = (out / "report.md").read_text()
    assert "## On the board" in md and "`PASS cycles=36`" in md
