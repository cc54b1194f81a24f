"""hdl.fetch (way (i): rank 1 at the fetch, rank 0 in the PE) against hss.fetch, in
Amaranth's simulator on random and edge-case weights, and its Verilog in Verilator."""
import shutil
import subprocess
import warnings

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.sim import Simulator

import hss
from fetchkit import INPUTS, plan
from hdl.config import AcceleratorConfig
from hdl.fetch import ActivationBanks, FetchArray, FetchRoute, Rank1Fetch
from hss.fetch import prune_shared
from simkit import unpack
from synth.tools import find, verilator_flags


def _weights(rng, pattern, m, k, rows, kind):
    p = hss.Pattern.parse(pattern)
    if kind == "zeros":
        return np.zeros((m, k), np.int64)
    W = rng.integers(-128, 128, (m, k))
    if kind == "full":          # every slot the shared pattern allows is nonzero
        W = np.where(W == 0, 1, W)
    if kind == "sparser":
        W = np.where(rng.random((m, k)) < 0.8, 0, W)
    Wp = prune_shared(W, p, rows)
    if kind == "extreme":
        Wp = np.where(Wp != 0, -128, 0)
    return Wp


def simulate(config, cycles, depth):
    dut = FetchArray(config, depth)
    layout = dut.sums.shape()
    out, banks = [], []

    async def tb(ctx):
        for cyc in cycles:
            for name in INPUTS:
                ctx.set(Value.cast(getattr(dut, name)), cyc[name])
            if cyc["en"] and cyc["valid"]:
                banks.append(ctx.get(dut.bank_en))
            if cyc["en"] and ctx.get(dut.sum_valid):
                out.append(np.array(unpack(ctx.get(Value.cast(dut.sums)), layout)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(tb)
    sim.run()
    return out, banks


CASES = [  # pattern, rows, cols, M, K, N, kind, stalls
    ("4:6,2:4", 2, 2, 4, 48, 3, "random", 0.2),
    ("4:6,2:4", 2, 2, 3, 37, 2, "random", 0.0),       # K not a multiple of the group
    ("4:6,2:4", 2, 2, 2, 24, 2, "zeros", 0.0),        # all blocks empty
    ("4:6,2:4", 2, 2, 2, 48, 2, "full", 0.0),         # every kept slot nonzero
    ("4:6,2:4", 2, 2, 2, 48, 2, "sparser", 0.3),      # sparser than the pattern
    ("4:6,2:4", 2, 2, 2, 24, 2, "extreme", 0.0),      # -128 * -128 everywhere
    ("4:4,2:4", 2, 2, 3, 40, 3, "random", 0.2),       # 2:4 as 4:4,2:4: rank 1 is wires
    ("2:3,1:2", 3, 1, 4, 14, 2, "random", 0.0),
    ("4:6,2:4", 1, 1, 1, 24, 1, "random", 0.0),
]


@pytest.mark.parametrize("pattern,rows,cols,m,k,n,kind,stalls", CASES,
                         ids=[f"{c[0]}-{c[1]}x{c[2]}-{c[6]}-k{c[4]}" for c in CASES])
def test_fetch_array_matches_golden(pattern, rows, cols, m, k, n, kind, stalls):
    rng = np.random.default_rng(k * 7 + m)
    config = AcceleratorConfig(pattern, rows, cols)
    W = _weights(rng, pattern, m, k, rows, kind)
    A = rng.integers(-128, 128, (k, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        cycles, want, depth = plan(config, W, A, stalls=stalls, seed=1)
    got, banks = simulate(config, cycles, depth)
    assert len(got) == len(want)
    for t, (a, b) in enumerate(zip(got, want)):
        assert (a == b).all(), f"tile {t}"
    p = config.pattern
    assert all(bin(b).count("1") == p.G[1] for b in banks)   # only G1 banks are read
    if kind == "zeros" and not p.rank(1).dense:
        assert set(banks) == {0b1111}


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_constructor_checks():
    with pytest.raises(TypeError, match="AcceleratorConfig"):
        FetchArray("4:6,2:4", 4)
    with pytest.raises(hss.HSSError, match="two-rank"):
        FetchArray(AcceleratorConfig("2:4", 2, 2), 4)
    with pytest.raises(ValueError, match="depth"):
        Rank1Fetch(hss.Pattern.parse("4:6,2:4"), 2, 8, True, 0)
    with pytest.raises(ValueError, match="cols"):
        FetchRoute(hss.Pattern.parse("4:6,2:4"), 0, 8, True)


@pytest.mark.parametrize("pattern, cols", [("4:6,2:4", 2), ("1:4,2:4", 3), ("2:3,1:2", 1)])
def test_activation_banks_hold_block_b_of_every_column_in_bank_b(pattern, cols):
    """ActivationBanks (hss_system's abuf with rank 1 at the fetch): a whole activations
    beat ``[cols][S]`` written at one address lands as H1 bank words, bank b holding
    elements ``b*H0 ..`` of every column; each bank reads on its own enable (a bank not
    enabled keeps its last word)."""
    p = hss.Pattern.parse(pattern)
    s, h0, h1, depth = p.group_size, p.H[0], p.H[1], 3
    rng = np.random.default_rng(cols)
    beats = rng.integers(-128, 128, (depth, cols, s))
    dut = ActivationBanks(p, cols, 8, True, depth)
    write = dut.write_port()
    reads = []

    async def bench(ctx):
        for port in dut.read_ports:
            ctx.set(port.en, 0)
        for addr, beat in enumerate(beats):
            ctx.set(write.addr, addr)
            ctx.set(write.data, hss.pack_fields(beat.reshape(-1).tolist(), 8))
            ctx.set(write.en, 1)
            await ctx.tick()
        ctx.set(write.en, 0)
        for addr in range(depth):
            for b, port in enumerate(dut.read_ports):
                ctx.set(port.addr, addr)
                ctx.set(port.en, b % 2 == addr % 2)   # every other bank, alternating
            await ctx.tick()
            reads.append([hss.unpack_fields(ctx.get(port.data), 8, cols * h0, True)
                          for port in dut.read_ports])

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(bench)
    sim.run()
    for addr, words in enumerate(reads):
        for b, word in enumerate(words):
            at = addr if b % 2 == addr % 2 else addr - 1       # held from the last read
            if at < 0:
                assert word == [0] * (cols * h0)
                continue
            want = beats[at].reshape(cols, h1, h0)[:, b, :].reshape(-1).tolist()
            assert word == want, (addr, b)
    with pytest.raises(ValueError, match="one write port"):
        dut.write_port()


def test_system_configs_that_cannot_select_rank1_at_the_fetch_are_refused():
    from hdl.config import build_config
    from hdl.sysconfig import SystemConfig
    with pytest.raises(ValueError, match="fixed pattern"):
        SystemConfig(build_config("4:4|4:6,2:4", 2, 2), fetch="shared")
    with pytest.raises(hss.HSSError, match="two-rank"):
        SystemConfig(build_config("2:4", 2, 2), fetch="shared")
    with pytest.raises(ValueError, match="dense"):
        SystemConfig(build_config("4:4,2:4", 2, 2), fetch="shared")
    with pytest.raises(ValueError, match="fetch must be one of pe, shared"):
        SystemConfig(build_config("4:6,2:4", 2, 2), fetch="banked")
    c = SystemConfig(build_config("4:6,2:4", 4, 4, max_k=384), fetch="shared")
    assert str(c.core.pattern) == "4:4,2:4" and c.core.max_k == 256
    assert c.core.max_steps == c.engine.max_steps          # overflow after the same steps
    assert (c.act_banks, c.banks_read) == (6, 4)
    assert c.weight_beat_bits == c.core.weight_beat_bits + 4 * 3 < c.engine.weight_beat_bits
    assert c.shape.fetch and c.shape.latency == SystemConfig(c.engine).shape.latency + 1


def _verilator():
    try:
        return find("verilator")
    except Exception:
        return None


def test_verilog_in_verilator(tmp_path):
    """The emitted Verilog, fed the same cycles from a $readmemh file, prints each finished
    tile; the tiles must be the golden ones."""
    if _verilator() is None or shutil.which("g++") is None:     # CI has both: never skip
        pytest.fail("needs verilator-cli (make setup installs it) and g++")
    rng = np.random.default_rng(5)
    config = AcceleratorConfig("4:6,2:4", 2, 2)
    W = _weights(rng, "4:6,2:4", 4, 60, 2, "random")
    A = rng.integers(-128, 128, (60, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        cycles, want, depth = plan(config, W, A, stalls=0.2, seed=2)
    dut = FetchArray(config, depth)
    (tmp_path / "fetch_array.v").write_text(verilog.convert(dut, name="fetch_array"))
    widths = [Value.cast(getattr(dut, n)).shape().width for n in INPUTS]
    total = sum(widths)
    with open(tmp_path / "stim.hex", "w") as f:
        for cyc in cycles:
            word, pos = 0, 0
            for name, w in zip(INPUTS, widths):
                word |= (cyc[name] & ((1 << w) - 1)) << pos
                pos += w
            f.write(f"{word:x}\n")
    sums_w = Value.cast(dut.sums).shape().width
    fields, pos = [], 0
    for name, w in zip(INPUTS, widths):
        fields.append(f"  assign {name} = stim[i][{pos + w - 1}:{pos}];" if w else "")
        pos += w
    decls = "\n".join(f"  wire [{w - 1}:0] {n};" for n, w in zip(INPUTS, widths) if w)
    conns = ", ".join(f".{n}({n})" for n, w in zip(INPUTS, widths) if w)
    (tmp_path / "tb.v").write_text(f"""
module tb;
  reg clk = 0; reg rst = 1;
  reg [{total - 1}:0] stim [0:{len(cycles) - 1}];
  integer i = 0;
{decls}
{chr(10).join(x for x in fields if x)}
  wire [{sums_w - 1}:0] sums; wire sum_valid; wire [5:0] bank_en;
  fetch_array dut(.clk(clk), .rst(rst), {conns}, .sums(sums), .sum_valid(sum_valid),
                  .bank_en(bank_en));
  initial begin
    $readmemh("stim.hex", stim);
    #1 clk = 1; #1 clk = 0; rst = 0;
    for (i = 0; i < {len(cycles)}; i = i + 1) begin
      #1; if (en && sum_valid) $display("TILE %x", sums);
      clk = 1; #1 clk = 0;
    end
    $finish;
  end
endmodule
""")
    build = subprocess.run([*find("verilator").argv, *verilator_flags(), "tb.v",
                            "fetch_array.v"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run(["obj_dir/Vtb"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    layout = dut.sums.shape()
    got = [np.array(unpack(int(line.split()[1], 16), layout))
           for line in run.stdout.splitlines() if line.startswith("TILE")]
    assert len(got) == len(want)
    for t, (a, b) in enumerate(zip(got, want)):
        assert (a == b).all(), f"tile {t}"
