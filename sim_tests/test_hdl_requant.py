"""``hdl.requant.Requantizer`` against ``hss.requant``: in Amaranth's simulator (random and
edge rows, back-pressure, latency and rate) and as emitted Verilog in Verilator."""
import gc
import random
import subprocess
import sys
import warnings

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable

from hdl.requant import (REQUANT_LATENCY, Requantizer, pack_requant_row, requant_in_layout,
                         unpack_requant_row)
from hss.requant import SCALE_MAX, SCALE_MIN, SHIFT_MAX, requantize
from simkit import Cycles, receive, run, send
from synth import tools


def rows_for(cols: int, acc_width: int, is_signed: bool, count: int, seed: int):
    """(z, scale, shift, relu, last) rows: the edges first, then random ones."""
    lo, hi = (-(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1) if is_signed \
        else (0, (1 << acc_width) - 1)
    rng = random.Random(seed)
    out = []
    for scale in (SCALE_MIN, SCALE_MAX, -1, 0, 1):
        for shift in (0, 1, SHIFT_MAX):
            for relu in (False, True):
                z = [lo, hi, 0, 1][:cols] + [hi] * (cols - 4)
                out.append((z, scale, shift, relu))
    for shift in (1, 2, 5, 20):                    # ties at .5, both signs
        for sign in (1, -1) if is_signed else (1,):
            half = 1 << (shift - 1)
            z = [sign * ((2 * j + 1) * half) for j in range(cols)]
            if all(lo <= v <= hi for v in z):
                out.append((z, 1, shift, False))
    while len(out) < count:
        top = min(hi, (1 << rng.randint(1, acc_width)) - 1)     # small values too
        z = [rng.randint(max(lo, -top - 1), top) for _ in range(cols)]
        out.append((z, rng.randint(SCALE_MIN, SCALE_MAX), rng.randint(0, SHIFT_MAX),
                    rng.random() < 0.5))
    return [(z, a, s, r, (n % 4) == 3) for n, (z, a, s, r) in enumerate(out)]


def golden(rows):
    return [(requantize(np.array([z], object), a, s, r)[0].tolist(), last)
            for z, a, s, r, last in rows]


def simulate(dut, rows, *, idle=0.0, stall=0.0, seed=0):
    layout = requant_in_layout(dut.cols, dut.acc_width, dut.is_signed)
    words = [pack_requant_row(layout, *row) for row in rows]
    cycles, in_log, out_log, result = Cycles(), [], [], {}

    async def source(ctx):
        await send(ctx, dut.i, words, idle=idle, seed=seed, log=in_log, cycles=cycles)

    async def sink(ctx):
        result["out"] = await receive(ctx, dut.o, len(words), stall=stall, seed=seed + 1,
                                      log=out_log, cycles=cycles, check_stable=True)

    run(dut, [source, sink], background=[cycles], timeout_cycles=20 * len(words) + 50)
    return [unpack_requant_row(dut.cols, w) for w in result["out"]], in_log, out_log


@pytest.mark.parametrize("cols, acc_width, is_signed", [
    (4, 28, True),      # a 4x4 4:6,2:4 int8 build's accumulators
    (3, 48, True),      # the widest accumulator the shifts are meant for
    (2, 20, False),     # unsigned accumulators: a signed product one bit wider
    (1, 70, True),      # wider than any machine word
])
def test_against_the_golden_model(cols, acc_width, is_signed):
    rows = rows_for(cols, acc_width, is_signed, 120, seed=cols)
    got, _, _ = simulate(Requantizer(cols, acc_width, is_signed), rows, idle=0.3, stall=0.3,
                         seed=cols)
    assert got == golden(rows)


def test_full_rate_and_latency():
    rows = rows_for(3, 24, True, 40, seed=9)
    got, in_log, out_log = simulate(Requantizer(3, 24, True), rows)
    assert got == golden(rows)
    assert in_log == list(range(in_log[0], in_log[0] + len(rows)))      # a row every cycle
    assert [t - s for s, t in zip(in_log, out_log)] == [REQUANT_LATENCY] * len(rows)


def test_bad_parameters():
    with warnings.catch_warnings():  # the half-built components are never elaborated
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError, match="cols must be an integer of at least 1, not 0"):
            Requantizer(0, 28)
        with pytest.raises(ValueError, match="acc_width must be an integer of at least 2"):
            Requantizer(2, 1)
        with pytest.raises(TypeError, match="is_signed must be a bool"):
            Requantizer(2, 28, 1)
        gc.collect()


# ---- the emitted Verilog in Verilator --------------------------------------------------------

HARNESS = """\
// Streams rows.hex through hss_requantizer with random gaps (IDLE %%) and refusals
// (STALL %%), writes every output payload to out.hex, prints DONE <cycles>.
module harness;
  parameter integer N = %(n)d, IN_BITS = %(in_bits)d, OUT_BITS = %(out_bits)d;
  reg clk = 0, rst = 1;
  reg [IN_BITS-1:0] rows [0:N-1];
  reg [IN_BITS-1:0] i_payload = 0;
  reg i_valid = 0, o_ready = 0;
  wire i_ready, o_valid;
  wire [OUT_BITS-1:0] o_payload;
  integer idle = 0, stall = 0, seed = 1, next = 0, got = 0, cycles = 0, f, unused;
  always #1 clk = ~clk;
  hss_requantizer dut(.clk(clk), .rst(rst), .i__payload(i_payload), .i__valid(i_valid),
                      .i__ready(i_ready), .o__payload(o_payload), .o__valid(o_valid),
                      .o__ready(o_ready));
  initial begin
    unused = $value$plusargs("idle=%%d", idle);
    unused = $value$plusargs("stall=%%d", stall);
    unused = $value$plusargs("seed=%%d", seed);
    unused = $urandom(seed);
    $readmemh("rows.hex", rows);
    f = $fopen("out.hex", "w");
    repeat (2) @(posedge clk);
    rst <= 0;
  end
  always @(posedge clk) if (!rst) begin
    cycles = cycles + 1;
    if (o_valid && o_ready) begin
      $fwrite(f, "%%h\\n", o_payload);
      got = got + 1;
    end
    if (i_valid && i_ready) next = next + 1;
    if (!(i_valid && !i_ready)) begin           // a refused row stays offered
      if (next < N && ($urandom %% 100) >= idle) begin
        i_valid <= 1;
        i_payload <= rows[next];
      end else
        i_valid <= 0;
    end
    o_ready <= ($urandom %% 100) >= stall;
    if (got == N) begin
      $fclose(f);
      $display("DONE %%0d", cycles);
      $finish;
    end
  end
  initial begin
    #1000000;
    $display("TIMEOUT");
    $finish;
  end
endmodule
"""


@pytest.fixture(scope="module", params=[(4, 48, True), (3, 20, False)],
                ids=["signed48", "unsigned20"])
def verilated(request, tmp_path_factory):
    cols, acc_width, is_signed = request.param
    d = tmp_path_factory.mktemp(f"requant_{acc_width}")
    dut = Requantizer(cols, acc_width, is_signed)
    rows = rows_for(cols, acc_width, is_signed, 300, seed=acc_width)
    layout = requant_in_layout(cols, acc_width, is_signed)
    (d / "rows.hex").write_text("".join(f"{pack_requant_row(layout, *r):x}\n" for r in rows))
    (d / "requant.v").write_text(verilog.convert(dut, name="hss_requantizer"))
    (d / "harness.sv").write_text(HARNESS % {"n": len(rows), "in_bits": layout.size,
                                             "out_bits": dut.o.payload.shape().size})
    argv = [*tools.find("verilator").argv,
            *tools.verilator_flags(jobs=2, top="harness", binary="Vharness"),
            "-MAKEFLAGS", f"PYTHON3={sys.executable}", "harness.sv", "requant.v"]
    with open(d / "build.log", "w") as log:
        done = tools.run(argv, cwd=d, what="verilator", stdout=log, timeout=600)
    assert done.returncode == 0, (d / "build.log").read_text()[-3000:]
    return d, cols, rows


@pytest.mark.parametrize("idle, stall, seed", [(0, 0, 1), (30, 40, 2), (70, 10, 3)])
def test_verilog_in_verilator(verilated, idle, stall, seed):
    d, cols, rows = verilated
    (d / "out.hex").unlink(missing_ok=True)
    r = subprocess.run([str(d / "obj_dir" / "Vharness"), f"+idle={idle}", f"+stall={stall}",
                        f"+seed={seed}"], cwd=d, capture_output=True, text=True, timeout=120)
    assert "DONE" in r.stdout, r.stdout + r.stderr
    got = [unpack_requant_row(cols, int(line, 16))
           for line in (d / "out.hex").read_text().split()]
    assert got == golden(rows)
    if not idle and not stall:       # full rate: a row a cycle after the pipeline fills
        cycles = int(r.stdout.split("DONE")[1].split()[0])
        assert cycles <= len(rows) + REQUANT_LATENCY + 2
