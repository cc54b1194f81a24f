"""hdl.ram.BlockRAM: a random stream of writes and reads against a Python list (read before
write, zero before the first write), in Amaranth's simulator; the macro's Verilog
(rtl/hss_sdp_ram.v) through the same stream in Icarus Verilog, and its instance ports."""
import random
import shutil
import subprocess

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.sim import Simulator

from gen.emit import ram_verilog
from hdl.ram import MACRO, BlockRAM, InterleavedRAM


def _stream(depth, width, n, seed):
    rng = random.Random(seed)
    return [(rng.random() < 0.6, rng.randrange(depth), rng.getrandbits(width),
             rng.random() < 0.8, rng.randrange(depth)) for _ in range(n)]


def _model(depth, ops):
    """Each cycle's read data after the edge (read before write; held without re)."""
    mem, rdata, out = [0] * depth, 0, []
    for we, waddr, wdata, re, raddr in ops:
        if re:
            rdata = mem[raddr]
        if we:
            mem[waddr] = wdata
        out.append(rdata)
    return out


@pytest.mark.parametrize("depth,width", [(1, 8), (5, 13), (16, 32), (37, 70)])
def test_block_ram_reads_before_write(depth, width):
    ram = BlockRAM(width, depth)
    w, r = ram.write_port(), ram.read_port()
    ops = _stream(depth, width, 300, depth * width)
    want, got = _model(depth, ops), []
    sim = Simulator(ram)
    sim.add_clock(1e-6)

    async def bench(ctx):
        for we, waddr, wdata, re, raddr in ops:
            ctx.set(w.en, we), ctx.set(w.addr, waddr), ctx.set(w.data, wdata)
            ctx.set(r.en, re), ctx.set(r.addr, raddr)
            await ctx.tick()
            got.append(ctx.get(r.data))
    sim.add_testbench(bench)
    sim.run()
    assert got == want


@pytest.mark.parametrize("depth, lanes", [(8, 2), (7, 2), (12, 4)])
def test_interleaved_ram_puts_word_i_in_bank_i_mod_lanes(depth, lanes):
    """InterleavedRAM (qbuf with several requantization lanes): words written by index,
    then ``lanes`` consecutive words read in one cycle, one per bank."""
    ram = InterleavedRAM(16, depth, lanes)
    w = ram.write_port()
    rng = random.Random(depth * lanes)
    words = [rng.getrandbits(16) for _ in range(depth)]
    got = []

    async def bench(ctx):
        for i, word in enumerate(words):
            ctx.set(w.addr, i)
            ctx.set(w.data, word)
            ctx.set(w.en, 1)
            await ctx.tick()
        ctx.set(w.en, 0)
        for row in range(-(-depth // lanes)):
            for port in ram.read_ports:
                ctx.set(port.addr, row)
            await ctx.tick()
            got.append([ctx.get(port.data) for port in ram.read_ports])

    sim = Simulator(ram)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    padded = words + [0] * (-depth % lanes)
    assert got == [padded[r * lanes:(r + 1) * lanes] for r in range(len(got))]
    with pytest.raises(ValueError, match="power of two"):
        InterleavedRAM(16, 8, 3)
    with pytest.raises(ValueError, match="one write port"):
        ram.write_port()


def test_block_ram_checks_its_arguments():
    with pytest.raises(ValueError, match="depth must be a positive integer"):
        BlockRAM(8, 0)
    ram = BlockRAM(8, 4)
    ram.write_port()
    with pytest.raises(ValueError, match="one write port"):
        ram.write_port()
    with pytest.raises(ValueError, match="reads synchronously"):
        ram.read_port(domain="comb")


def test_macro_instance_names_the_module_and_its_parameters():
    m = Module()
    m.submodules.buf = ram = BlockRAM(36, 100, macro=True)
    ram.write_port(), ram.read_port()
    text = verilog.convert(m, ports=[])
    assert f"{MACRO} #(" in text
    for name, value in (("WIDTH", 36), ("DEPTH", 100), ("ABITS", 7)):
        assert f".{name}(32'd{value})" in text, name


def test_macro_verilog_matches_the_model_in_icarus(tmp_path):
    if shutil.which("iverilog") is None:
        pytest.fail("iverilog not found: apt-get install iverilog (make setup does)")
    depth, width = 37, 70
    ops = _stream(depth, width, 400, 7)
    (tmp_path / "ram.v").write_text(ram_verilog())
    lines = [f"      we = {int(we)}; waddr = {waddr}; wdata = 70'h{wdata:x}; "
             f"re = {int(re)}; raddr = {raddr}; @(posedge clk); #1 $display(\"%0h\", rdata);"
             for we, waddr, wdata, re, raddr in ops]
    (tmp_path / "tb.v").write_text(f"""module tb;
  reg clk = 0; always #5 clk = ~clk;
  reg we, re; reg [5:0] waddr, raddr; reg [69:0] wdata; wire [69:0] rdata;
  {MACRO} #(.WIDTH({width}), .DEPTH({depth}), .ABITS(6)) ram(
    .clk(clk), .we(we), .waddr(waddr), .wdata(wdata), .re(re), .raddr(raddr), .rdata(rdata));
  initial begin
    #2;
{chr(10).join(lines)}
    $finish;
  end
endmodule
""")
    subprocess.run(["iverilog", "-o", tmp_path / "sim", tmp_path / "tb.v", tmp_path / "ram.v"],
                   check=True)
    out = subprocess.run(["vvp", "-n", tmp_path / "sim"], check=True, capture_output=True,
                         text=True).stdout.split()
    assert [int(x, 16) for x in out[:len(ops)]] == _model(depth, ops)
