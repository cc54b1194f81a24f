"""``python -m bench sim``: simulated cycles per second of the accelerator in Amaranth's
simulator, Verilator and Icarus Verilog.

One design (``4:6,2:4``, int8, 4x4 PEs; ``--quick``: 2x2), always-valid inputs and an
always-ready output. Amaranth runs async testbenches that set packed payloads
(``ctx.set(Value.cast(port), int)``), as ``sim_tests/simkit.py`` does; Verilator and Icarus
run the generator's self-checking testbench (``gen.testbench`` + ``gen.simulate``).
Amaranth and Icarus run a short GEMM (~2k cycles), Verilator a long one (>= 100k cycles).
The same two GEMMs also run as one layer each through ``hss_system``'s testbench
(``gen.testbench.system``, the DRAM model inside the simulator), in Icarus and Verilator.
The testbench reads its stimulus with ``$readmemh`` first; that time is measured apart by
running it with ``+load_only`` (it stops once loaded), and taken out of the simulation rate. Every run
must produce the golden Z in ``steps + LATENCY`` cycles, or the benchmark fails.
"""
from __future__ import annotations

import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import Table, progress, write_outputs

PATTERN = "4:6,2:4"


@dataclass(frozen=True)
class Gemm:
    """``tile_rows x tile_cols`` output tiles of ``groups`` steps each."""
    tile_rows: int
    tile_cols: int
    groups: int

    def shape(self, side: int, group: int) -> tuple[int, int, int]:
        return self.tile_rows * side, self.groups * group, self.tile_cols * side

    @property
    def steps(self) -> int:
        return self.tile_rows * self.tile_cols * self.groups


# full: 4x4 PEs; quick: 2x2. Short GEMM: Amaranth and Icarus; long: Verilator. The
# testbench's hex files hold one line per beat: 4x4 long ~44 MB, 2x2 long ~15 MB.
FULL = dict(side=4, short=Gemm(4, 8, 64), long=Gemm(30, 30, 170))    # 2,048 / 153,000 steps
QUICK = dict(side=2, short=Gemm(4, 4, 64), long=Gemm(20, 30, 170))   # 1,024 / 102,000 steps


def _vectors(config, gemm: Gemm, seed: int):
    import hss
    from hdl.stimulus import gemm_vectors
    p = config.pattern
    m, k, n = gemm.shape(config.rows, p.group_size)
    rng = np.random.default_rng(seed)
    dtype = hss.dtype_for(config.width, config.signed)
    lo, hi = hss.value_range(config.width, config.signed)
    W = hss.prune(rng.integers(lo, hi, (m, k), endpoint=True).astype(dtype), p)
    A = rng.integers(lo, hi, (k, n), endpoint=True).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", hss.PaddingWarning)   # K is a multiple of the group
        v = gemm_vectors(config, W, A)
    assert v.steps == gemm.steps, (v.steps, gemm.steps)
    return v


def amaranth_sim(config, vectors) -> dict:
    """Stream ``vectors`` through ``HSSAccelerator`` in Amaranth's simulator; check the
    tiles; cycles from the first input handshake to the last tile handshake, inclusive."""
    from amaranth.hdl import Value
    from amaranth.sim import Simulator

    from hdl import LATENCY, HSSAccelerator
    from hdl.stimulus import unpack_tile

    t0 = time.perf_counter()
    dut = HSSAccelerator(config)
    n_tiles = vectors.tiles
    got, count = [], {}

    def sender(port, beats):
        async def tb(ctx):
            payload = Value.cast(port.payload)
            ctx.set(port.valid, 1)
            for beat in beats:
                ctx.set(payload, beat)
                await ctx.tick().until(port.ready)
            ctx.set(port.valid, 0)
        return tb

    limit = 2 * vectors.steps + 100 * n_tiles + 1000    # fail instead of hanging

    async def receiver(ctx):
        payload = Value.cast(dut.tiles.payload)
        ctx.set(dut.tiles.ready, 1)
        cycle, first = 0, None
        async for _clk, _rst, valid, word, w_valid, w_ready in ctx.tick().sample(
                dut.tiles.valid, payload, dut.weights.valid, dut.weights.ready):
            cycle += 1
            if first is None and w_valid and w_ready:
                first = cycle
            if valid:
                got.append(word)
                if len(got) == n_tiles:
                    break
            if cycle > limit:
                raise AssertionError(f"Amaranth simulation: {len(got)} of {n_tiles} tiles "
                                     f"after {cycle} cycles")
        count.update(first=first, last=cycle)

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(sender(dut.weights, vectors.weight_beats))
    sim.add_testbench(sender(dut.activations, vectors.act_beats))
    sim.add_testbench(receiver)
    t1 = time.perf_counter()
    sim.run()     # until the three testbenches end
    t2 = time.perf_counter()
    if len(got) != n_tiles:
        raise AssertionError(f"Amaranth simulation: {len(got)} of {n_tiles} tiles")
    expect_over = vectors.steps_per_tile > config.max_steps
    for t, word in enumerate(got):
        z, over = unpack_tile(config, word)
        if not (z == vectors.expected_tiles[t]).all() or over != expect_over:
            raise AssertionError(f"Amaranth simulation: tile {t} differs from the golden "
                                 f"model:\n{z}\nexpected\n{vectors.expected_tiles[t]}")
    cycles = count["last"] - count["first"] + 1
    if cycles != vectors.steps + LATENCY:
        raise AssertionError(f"Amaranth simulation took {cycles} cycles, expected "
                             f"{vectors.steps} + {LATENCY}")
    return {"cycles": cycles, "simulated": count["last"], "build": t1 - t0, "run": t2 - t1,
            "load": None}


def _timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - t0
    if proc.returncode != 0 or "LOADED" not in proc.stdout:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}")
    return seconds


def load_seconds(tb_dir: Path, simulator: str, repeats: int) -> float:
    """Best-of-``repeats`` run time of the built testbench with ``+load_only`` (it stops
    once its ``$readmemh`` is done), run through ``make`` like the full run, so that both
    carry make's start-up."""
    run = "./obj_dir/Vtb" if simulator == "verilator" else "vvp -n tb.vvp"
    (tb_dir / "load_only.mk").write_text(f"run-load:\n\t{run} +load_only\n")
    cmd = ["make", "--no-print-directory", "-f", "load_only.mk", "run-load"]
    return min(_timed(cmd, tb_dir) for _ in range(repeats))


def hdl_sim(tb_dir: Path, simulator: str, vectors, repeats: int) -> dict:
    """``gen.simulate`` on the generator's testbench, ``repeats`` times (the first builds);
    every run must PASS in ``steps + LATENCY`` cycles. Run time: the best run."""
    from gen.simulate import simulate
    from hdl import LATENCY
    runs = []
    for _ in range(repeats):
        r = simulate(tb_dir, simulator)
        if not r.passed or r.mismatches != 0 or r.cycles != vectors.steps + LATENCY:
            raise AssertionError(f"{simulator}: {'PASS' if r.passed else 'FAIL'}, "
                                 f"{r.mismatches} mismatches, {r.cycles} cycles (expected "
                                 f"{vectors.steps} + {LATENCY}); see {r.log}:\n"
                                 + r.log.read_text(errors="replace")[-2000:])
        runs.append(r)
    return {"cycles": runs[0].cycles, "build": runs[0].seconds_build,
            "run": min(r.seconds_run for r in runs),
            "load": load_seconds(tb_dir, simulator, repeats)}


def system_sim(config, vectors, folder: Path, simulator: str, repeats: int) -> dict:
    """The same GEMM as one layer through ``hss_system`` (``gen.testbench.system``: the
    DRAM model inside the simulator, the host driver's recorded program), ``repeats``
    runs; each must PASS (Z and counters equal the golden model's). The testbench reads
    its compact DRAM image (the compressed weights, once) at start-up: no load-only
    run, so only the rate including it is measured."""
    from gen.testbench.system import prepare_system
    from hdl.sysconfig import SystemConfig
    m, k, n = vectors.m, vectors.k, vectors.n
    bench = prepare_system(SystemConfig(config), [{"m": m, "k": k, "n": n, "seed": 3,
                                                   "mode": 0}],
                           folder, simulator=simulator, mem_bytes=None, prog_lines=None,
                           name=None, progress=lambda message: None)
    runs = []
    for _ in range(repeats):
        r = bench.run(seed=None, latency=0)
        if not r.passed:
            raise AssertionError(f"system tb, {simulator}: FAIL\n{r.log[-2000:]}")
        runs.append(r)
    return {"cycles": runs[0].cycles, "build": runs[0].build_seconds,
            "run": min(r.seconds for r in runs), "load": None}


def run(args) -> None:
    from amaranth.back import verilog

    from gen.emit import TOP
    from gen.testbench import write_testbench
    from hdl import AcceleratorConfig, HSSAccelerator

    plan = QUICK if args.quick else FULL
    side = plan["side"]
    config = AcceleratorConfig(PATTERN, side, side, 8, True)
    short = _vectors(config, plan["short"], seed=1)
    long = _vectors(config, plan["long"], seed=2)
    results = []   # (simulator, vectors, result)

    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        work = Path(tmp)
        (work / "rtl").mkdir()
        (work / "rtl" / f"{TOP}.v").write_text(verilog.convert(HSSAccelerator(config),
                                                               name=TOP))
        hex_mb = {}
        for name, v in (("short", short), ("long", long)):
            write_testbench(work / name, v, top=TOP, rtl_rel=f"../rtl/{TOP}.v")
            hex_mb[name] = sum(f.stat().st_size for f in (work / name).glob("*.hex")) / 1e6

        progress(f"Amaranth: {short.steps:,} steps on {side}x{side} PEs")
        r = amaranth_sim(config, short)
        results.append(("Amaranth (pysim)", short, r))
        progress(f"Amaranth: PASS, {r['cycles']:,} cycles in {r['run']:.2f} s")

        progress(f"Icarus: {short.steps:,} steps")
        r = hdl_sim(work / "short", "icarus", short, repeats=1)
        results.append(("Icarus", short, r))
        progress(f"Icarus: PASS, {r['cycles']:,} cycles in {r['run']:.2f} s "
                 f"(start-up and $readmemh {r['load']:.2f} s)")

        progress(f"Verilator: {long.steps:,} steps ({hex_mb['long']:.1f} MB of hex files)")
        r = hdl_sim(work / "long", "verilator", long, repeats=3 if args.quick else 5)
        results.append(("Verilator", long, r))
        progress(f"Verilator: PASS, {r['cycles']:,} cycles, build {r['build']:.1f} s, "
                 f"best run {r['run']:.2f} s (start-up and $readmemh {r['load']:.2f} s)")

        for simulator, name, v in (("icarus", "Icarus", short), ("verilator", "Verilator", long)):
            progress(f"system tb, {name}: the {v.m}x{v.k}x{v.n} GEMM through hss_system")
            r = system_sim(config, v, work / f"system-{simulator}", simulator,
                           repeats=1 if simulator == "icarus" else (3 if args.quick else 5))
            results.append((f"system tb, {name}", v, r))
            progress(f"system tb, {name}: PASS, {r['cycles']:,} cycles in {r['run']:.2f} s "
                     f"(DRAM image and program read at start-up, included)")

    base = results[0][2]["cycles"] / results[0][2]["run"]
    rows = []
    for simulator, v, r in results:
        sim_s = r["run"] - r["load"] if r["load"] is not None else None
        rate = r["cycles"] / sim_s if sim_s is not None and sim_s > 0 else None
        rows.append([simulator, f"{v.m}x{v.k}x{v.n}", r["cycles"], round(r["build"], 2),
                     round(r["run"], 3), None if r["load"] is None else round(r["load"], 3),
                     None if sim_s is None else round(sim_s, 3),
                     round(rate) if rate else None,
                     round(r["cycles"] / r["run"]),
                     round(rate / base, 2) if rate else None, "PASS"])
    vl = next(r for name, _, r in results if name == "Verilator")
    sysv = results[-1][2]
    notes = [
        f"Design: `{PATTERN}`, int8, {side}x{side} PEs ({config.multipliers} multipliers). "
        f"Inputs always valid, output always ready. *cycles*: from the first input "
        f"handshake to the last tile handshake (steps + LATENCY); every run was checked "
        f"against the golden model (PASS), and Amaranth and Icarus ran the same GEMM "
        f"(M x K x N) and counted the same cycles.",
        "",
        f"*Amaranth*: build = constructing the `Simulator` (elaboration and compilation to "
        f"Python), run = `sim.run()`; async testbenches set packed payloads with "
        f"`ctx.set(Value.cast(port), int)`, as `sim_tests/simkit.py` does. "
        f"*Icarus*, *Verilator*: the generator's testbench run by `gen.simulate` "
        f"(`make build-<sim>`, then `make run-<sim>`; Verilator: best of {3 if args.quick else 5} runs). A run "
        f"starts by reading the hex files with `$readmemh` ({hex_mb['short']:.1f} MB short, "
        f"{hex_mb['long']:.1f} MB long); *load s* is the run time of the same testbench "
        f"with `+load_only` (it stops once the files are read), *sim s* = run s - load s, and "
        f"*cycles/s* = cycles / sim s (*incl. load* = cycles / run s). *vs Amaranth* "
        f"compares cycles/s.",
        "",
        f"*system tb*: the same GEMMs as one layer each through `hss_system` "
        f"(`gen.testbench.system`: AXI4 DRAM model in SystemVerilog, no latency, no "
        f"back-pressure; the host driver's recorded register program); its cycles run from "
        f"the first register write to DONE, so they include loading the buffers. It reads "
        f"its DRAM image (compressed weights and activations, each once) at start-up and has "
        f"no load-only run: *cycles/s incl. load* only. Incl. load, the system testbench in "
        f"Verilator simulates {sysv['cycles'] / sysv['run'] / (vl['cycles'] / vl['run']):.2f}x "
        f"the engine testbench's cycles per second. The cocotb + cocotbext-axi run of the "
        f"system (its verification, sim_tests/test_system.py) is not timed here.",
        "",
        f"Verilator spends {100 * vl['load'] / vl['run']:.0f} % of its run reading the hex "
        f"files (one line per beat, so the files grow with the cycles: > 100k cycles needs "
        f"{hex_mb['long']:.0f} MB), which is why its sim s is short.",
    ]
    table = Table("sim", f"Simulation speed, {PATTERN} int8 {side}x{side} PEs",
                  ["simulator", "GEMM", "cycles", "build s", "run s", "load s", "sim s",
                   "cycles/s", "cycles/s incl. load", "vs Amaranth", "check"],
                  rows, args.command, notes)
    write_outputs(table, args.out, args.machine)
    _plot(rows, args.out / "sim.png", side)
    print(f"wrote {args.out / 'sim.png'}")


def _plot(rows, path: Path, side: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.2))
    labels = [f"{r[0]}\n{r[2]:,} cycles" for r in rows]
    rates = [r[7] or r[8] for r in rows]
    ax.barh(labels, rates, color=["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"][:len(rows)],
            label="cycles/s (simulation)")
    ax.scatter([r[8] for r in rows], labels, color="black", marker="|", s=200, zorder=3,
               label="cycles/s including $readmemh")
    ax.set_xscale("log")
    ax.invert_yaxis()
    for y, r in enumerate(rows):
        # a loaded machine can make the load-only run outlast the whole run: no sim-only rate
        label = f" {r[7]:,} ({r[9]}x)" if r[7] else f" {r[8]:,} incl. load"
        ax.text(r[7] or r[8], y, label, va="center", fontsize=8)
    ax.set_xlabel("simulated cycles per second (log)")
    ax.set_title(f"Simulation speed, {PATTERN} int8, {side}x{side} PEs")
    ax.set_xlim(right=max(rates) * 30)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
