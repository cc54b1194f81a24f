"""``python -m bench system``: hss_system on MiniLM's real linear layers, in Verilator.

Every design is built as ``python -m gen`` builds it (``hdl.sysconfig.SystemConfig`` of the
engine, default buffers: 128 KiB of weights, 128 KiB of activations), and block 0's three
kinds of linear layer of all-MiniLM-L6-v2 (query 384x384, FFN in 1536x384, FFN out
384x1536; real int8 weights, pruned to the design's pattern; the real int8 input of 128
tokens of English text) run back to back through the system testbench
(``gen.testbench.system``: the emitted Verilog, its AXI4 DRAM model inside the simulator
with a first-beat latency of ``LATENCY`` cycles, the host driver's recorded register
program). Outputs are requantized on chip to int8 (per row scale and shift), as a network
runs. Every layer's Z and counters are checked against the golden model before its row is
written; a mismatch fails the benchmark.

Per layer: the RTL's cycles against the roofline bound ``max(compute ideal, DRAM bytes /
bytes per cycle)`` (``hss.system.LayerCounts``), DRAM bytes against the minimum (each
operand once), buffer bits read per multiply, and the external bandwidth the layer would
need at 100 MHz to be compute bound. Per build: its memories (bits, ECP5 DP16KD, modelled
ASIC area, ``synth.memories``); for a few builds the logic, synthesized (``logic_area``).
The ``4:6,2:4 fetch`` design is the same pattern with rank 1 selected at the activation
fetch (``--fetch shared``: each m-tile's rows share their rank-1 blocks, abuf in banks, a
rank-0 engine); its rows against the ``4:6,2:4`` design's are the two datapaths side by
side on the same layers (the area of both: bench fetch).
"""
from __future__ import annotations

import concurrent.futures
import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import hss

from . import workloads
from .common import Table, progress, write_outputs

HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"
LATENCY = 16            # DRAM cycles to a first beat (100 MHz: 160 ns, a DDR4 page miss)
CLOCK_HZ = 100e6
TOKENS = 128
#: 153 tokens of English text: each layer's real input, its first TOKENS columns
PASSAGE = (
    "Sparse deep neural networks promise to save both time and energy, but only when the "
    "hardware can skip the work that the zeros would cause. Structured patterns such as two "
    "of every four values make skipping cheap, since a small multiplexer picks the operands "
    "that matter. Hierarchical structured sparsity composes several simple patterns, one per "
    "rank of the tensor, so that a single accelerator can serve many degrees of sparsity. "
    "The weights are stored compressed, the activations are fetched only where blocks are "
    "kept, and the multipliers stay busy. This paragraph exists only to give the sentence "
    "encoder one hundred and twenty eight tokens of ordinary English text to work on, so "
    "that every linear layer of the model sees a realistic batch.")
LAYERS = ("L0.query", "L0.ffn_in", "L0.ffn_out")


@dataclass(frozen=True)
class Design:
    """One build: its name, ``--ranks``, and the modes its layers run in (each a pattern
    the weights are pruned to; None: dense weights, the dense twin's)."""
    name: str
    ranks: str
    modes: tuple
    twin: bool = False
    fetch: str = "pe"

    def engine(self, side: int):
        from hdl.config import build_config
        c = build_config(self.ranks, side, side)
        return c.dense_twin() if self.twin else c


DESIGNS = (Design("dense twin", "4:6,2:4", (None,), twin=True),
           Design("2:4", "2:4", ("2:4",)),
           Design("4:6,2:4", "4:6,2:4", ("4:6,2:4",)),
           Design("4:6,2:4 fetch", "4:6,2:4", ("4:6,2:4",), fetch="shared"),
           Design("HighLight", HIGHLIGHT, ("4:4,4:4", "4:6,2:4")))
FULL = {"sides": (4, 16), "dma": (128,), "dma_sweep": ("4:6,2:4", (64, 512)),
        "layers": LAYERS, "tokens": TOKENS, "designs": DESIGNS}
QUICK = {"sides": (4,), "dma": (128,), "dma_sweep": ("4:6,2:4", ()),
         "layers": ("L0.query",), "tokens": 16, "designs": DESIGNS[2:4]}

COLUMNS = ["design", "PEs", "DMA bits", "mode", "W error", "layer", "parts", "cycles",
           "roofline bound",
           "of bound", "compute ideal", "DRAM bytes", "minimum", "DRAM / min",
           "buffer bits read / MAC", "MACs / cycle", "GB/s to be compute bound",
           "stalls w/a/out", "exact"]


def _operands(layers, mode, flexible: bool, shared_rows=None):
    """(segments, A) of each layer in ``mode`` (None: dense weights; ``shared_rows``: rows
    of an m-tile share their rank-1 blocks, rank 1 at the fetch), and each W's relative
    pruning error; a fixed build's one mode is number 0."""
    from gen.inputs import prune_for
    W = [layer.W if mode is None else prune_for(layer.W, mode, shared_rows)
         for layer, _ in layers]
    errors = [float(np.linalg.norm(layer.W - w) / np.linalg.norm(layer.W))
              for w, (layer, _) in zip(W, layers)]
    return [([(w, mode if flexible else 0)], A) for w, (_, A) in zip(W, layers)], errors


def run_build(design: Design, side: int, dma_bits: int, layer_names, tokens: int,
              folder: Path) -> dict:
    """Build ``design``'s system, run its layers in each of its modes in one simulation,
    check them, and return the rows and the build's memories."""
    from gen.testbench.system import prepare_system
    from hdl.sysconfig import SystemConfig
    from hdl.system import HSSSystem
    from synth.memories import memories_of
    warnings.simplefilter("ignore", hss.PaddingWarning)
    config = SystemConfig(design.engine(side), dma_bits=dma_bits, fetch=design.fetch)
    by_name = {l.name: l for l in workloads.minilm_layers(PASSAGE)}
    layers = [(by_name[n], by_name[n].A[:, :tokens]) for n in layer_names]
    labels, operands = [], []
    flexible = len(config.engine.modes) > 1
    shared_rows = side if design.fetch != "pe" else None
    for mode in design.modes:
        ops_of, errors = _operands(layers, mode, flexible, shared_rows)
        for (layer, A), ops, error in zip(layers, ops_of, errors):
            labels.append({"layer": layer.name, "mode": mode or str(config.engine.modes.mode(0)),
                           "m": layer.W.shape[0], "k": layer.W.shape[1], "n": A.shape[1],
                           "requant": True, "w_error": error})
            operands.append(ops)
    tag = f"{design.name} {side}x{side} {dma_bits}-bit"
    progress(f"{tag}: recording the driver on {len(labels)} layer(s)")
    bench = prepare_system(config, labels, folder, operands=operands, mem_bytes=None,
                           prog_lines=None, name=None, progress=lambda m: progress(f"{tag}: {m}"))
    run = bench.run(seed=None, latency=LATENCY, max_cycles=200_000_000)
    memories = memories_of(HSSSystem(config, instances=True))
    rows = []
    for lr, p, label in zip(run.layers, bench.prepared, labels):
        want = p.want
        counts, c = want.split.counts, lr.counters
        macs = label["m"] * label["k"] * label["n"]
        cycles = c.get("cycles")
        read_bits = (c.get("wbuf_reads", 0) * config.weight_beat_bits    # abuf: its words
                     + c.get("abuf_reads", 0) * config.act_beat_bits // config.act_banks)
        dram = c.get("dram_read_bytes", 0) + c.get("dram_write_bytes", 0)
        rows.append({
            "design": design.name, "PEs": f"{side}x{side}", "DMA bits": dma_bits,
            "mode": label["mode"], "W error": label["w_error"],
            "layer": f"{label['layer']} {label['m']}x{label['k']}"
                                             f"x{label['n']}",
            "parts": lr.parts, "cycles": cycles, "roofline bound": lr.bound,
            "of bound": lr.bound / cycles if cycles else None,
            "compute ideal": counts.compute_cycles, "DRAM bytes": dram,
            "minimum": want.split.minimum_dram_bytes,
            "DRAM / min": dram / want.split.minimum_dram_bytes,
            "buffer bits read / MAC": read_bits / macs,
            "MACs / cycle": macs / cycles if cycles else None,
            "GB/s to be compute bound": dram / counts.compute_cycles * CLOCK_HZ / 1e9,
            "stalls w/a/out": "/".join(str(c.get(k, "-")) for k in
                                       ("stall_weights", "stall_acts", "stall_output")),
            "exact": "yes" if lr.exact else f"NO: {lr.error or 'mismatch'}"})
    mem = {"bits": sum(m.bits for m in memories), "dp16kd": sum(m.brams for m in memories),
           "asic_nand2_eq": round(sum(m.nand2_eq for m in memories)),
           "memories": [m.to_json() for m in memories]}
    progress(f"{tag}: {'PASS' if run.passed else 'FAIL'}, {run.cycles:,} cycles in "
             f"{run.seconds:.1f} s (build {run.build_seconds:.0f} s)")
    return {"design": design.name, "side": side, "dma_bits": dma_bits, "fetch": design.fetch,
            "weights_beat_bits": config.weight_beat_bits,
            "array_act_port_bits": config.core.act_beat_bits,
            "multipliers": config.engine.multipliers, "passed": run.passed,
            "sim_seconds": run.seconds, "build_seconds": run.build_seconds,
            "cycles": run.cycles, "rows": rows, "memory": mem}


#: the builds whose logic is synthesized (design name, side): the area flow maps no memory
AREA_FULL = (("4:6,2:4", 4), ("4:6,2:4 fetch", 4), ("4:6,2:4", 16), ("4:6,2:4 fetch", 16))
AREA_QUICK = (("4:6,2:4", 4),)


def logic_area(design: Design, side: int, workdir: Path) -> dict:
    """NAND2-eq of a system's logic: its emitted Verilog (engine and system modules) with
    the buffers as black boxes (``hss_sdp_ram``'s ports only), the composed fast flow
    (``synth.flows.area_nand2_composed``); the DMA's data FIFO, a memory the report's
    memory table counts as SRAM, is taken out of the DMA's figure."""
    from gen.emit import ram_verilog
    from gen.testbench.system import system_verilog
    from hdl.sysconfig import SystemConfig
    from synth.flows import area_nand2_composed
    config = SystemConfig(design.engine(side), fetch=design.fetch)
    texts = system_verilog(config)
    texts["hss_sdp_ram.v"] = ram_verilog(blackbox=True)
    progress(f"{design.name} {side}x{side}: synthesizing the system's logic")
    report = area_nand2_composed("\n".join(texts.values()), "hss_system", workdir, fast=True)
    mods = {name: m["total_area"] for name, m in report["modules"].items() if m["instances"]}
    engine = next(v for k, v in mods.items() if "." not in k and k != "hss_system")
    fifo = mods.get("hss_system.dma_read.fifo", 0.0)
    parts = {"engine": engine,
             "fetch route": mods.get("hss_system.controller.fetch", 0.0),
             "requantizers": sum(v for k, v in mods.items()
                                 if k.startswith("hss_system.controller.requantizer")),
             "registers": mods.get("hss_system.registers", 0.0),
             "DMA (without its data FIFO)": mods.get("hss_system.dma_read", 0.0) - fifo
             + mods.get("hss_system.dma_write", 0.0)}
    total = report["total"]["area"] - fifo
    parts["controller (the rest)"] = mods.get("hss_system.controller", 0.0) \
        - parts["fetch route"] - parts["requantizers"]
    return {"design": design.name, "side": side, "total": round(total),
            "parts": {k: round(v) for k, v in parts.items()}, "dma_fifo": round(fifo)}


def _builds(plan):
    out = [(d, s, b) for d in plan["designs"] for s in plan["sides"] for b in plan["dma"]]
    name, widths = plan["dma_sweep"]
    out += [(d, s, b) for d in plan["designs"] if d.name == name for s in plan["sides"]
            for b in widths]
    return out


def run(args) -> int:
    plan = QUICK if args.quick else FULL
    workloads.minilm_layers(PASSAGE)          # a missing package fails here, in one line
    builds = _builds(plan)
    by_name = {d.name: d for d in DESIGNS}
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-system-") as tmp, \
            concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        areas = [pool.submit(logic_area, by_name[name], side, Path(tmp) / f"a{i}")
                 for i, (name, side) in enumerate(AREA_QUICK if args.quick else AREA_FULL)]
        futures = [pool.submit(run_build, d, s, b, plan["layers"], plan["tokens"],
                               Path(tmp) / f"b{i}")
                   for i, (d, s, b) in enumerate(builds)]
        for f in futures:
            results.append(f.result())
        areas = [f.result() for f in areas]
    rows = [r for b in results for r in b["rows"]]
    table_rows = [[r[c] for c in COLUMNS] for r in rows]
    notes = _notes(results, rows, args.quick) + _area_notes(areas)
    t = Table("system", "hss_system on MiniLM's linear layers (Verilator, the emitted RTL)",
              COLUMNS, table_rows, args.command, notes)
    write_outputs(t, args.out, args.machine)
    (args.out / "system.json").write_text(json.dumps(
        {"machine": args.machine, "command": args.command, "latency": LATENCY,
         "builds": results, "logic_area": areas}, indent=1) + "\n")
    _plot(results, args.out / "system.png")
    print(f"wrote {args.out / 'system.json'} and {args.out / 'system.png'}")
    return 0 if all(b["passed"] for b in results) else 1


def _notes(results, rows, quick) -> list[str]:
    notes = [
        f"Layers: block 0 of all-MiniLM-L6-v2 (real int8 weights per output row, pruned to "
        f"the mode; the real int8 input of the first {rows[0]['layer'].split('x')[-1]} tokens "
        f"of a passage of English text), requantized on chip to int8. The DRAM model answers "
        f"a read after {LATENCY} cycles, no back-pressure. *cycles*: the system's CYCLES "
        f"counter, summed over a layer's descriptors (*parts*: the host driver splits a layer "
        f"larger than the buffers). *roofline bound*: max(PE steps + latency, DRAM bytes / "
        f"DMA bytes per cycle); *of bound* = bound / cycles (1.0: at the roofline). "
        f"*minimum*: DRAM bytes moving each operand once (compressed weights, activations, "
        f"int8 outputs, the requantization table). *buffer bits read / MAC*: weights and "
        f"activations buffer bits read per multiply of the dense layer (M x K x N). *MACs / "
        f"cycle*: dense-layer multiplies per cycle. *GB/s to be compute bound*: DRAM bytes / "
        f"compute ideal x 100 MHz. *stalls w/a/out*: the RTL's counters of cycles the engine "
        f"waited on a weights beat, on an activations beat, and cycles a finished tile "
        f"waited for the output buffer. *exact*: Z and every counter equal the golden model's. "
        f"The bound lets reads and writes share the DRAM's bytes per cycle, as a DDR bus "
        f"does; the testbench's DRAM model serves AXI's read and write channels at once, so "
        f"a DRAM-bound layer can finish a little inside it (*of bound* above 1). Each design "
        f"has its default multipliers (table below): the 2:4 build has 2 per PE, the others "
        f"8.",
        "",
        "Memories of each build (`synth.memories`: bits, ECP5 DP16KD, modelled ASIC area in "
        "NAND2-eq; the logic's area is in bench tax and each build's report.md):",
        "",
        "| design | PEs | DMA bits | multipliers | memory bits | DP16KD | SRAM NAND2-eq (model) "
        "| simulated cycles | sim s | build s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in results:
        m = b["memory"]
        notes.append(f"| {b['design']} | {b['side']}x{b['side']} | {b['dma_bits']} | "
                     f"{b['multipliers']} | {m['bits']:,} | {m['dp16kd']} | "
                     f"{m['asic_nand2_eq']:,} | {b['cycles']:,} | {b['sim_seconds']:.1f} | "
                     f"{b['build_seconds']:.0f} |")
    fits = [r for r in rows if r["parts"] == 1]
    if fits:
        worst = min(fits, key=lambda r: r["of bound"] or 0)
        notes += ["", f"Layers that fit the buffers (one part): {len(fits)} of {len(rows)}; "
                  f"cycles at {min(r['of bound'] for r in fits):.3f} to "
                  f"{max(r['of bound'] for r in fits):.3f} of the roofline bound (target "
                  f">= 0.95; worst: {worst['design']} {worst['PEs']} {worst['layer']}), DRAM "
                  f"traffic {max(r['DRAM / min'] for r in fits):.3f}x the minimum at most "
                  f"(target <= 1.1)."]
    notes += _fetch_notes(results)
    big = [r for r in rows if r["design"] == "4:6,2:4" and r["PEs"] == "16x16"
           and r["DMA bits"] == 128]
    if big and not quick:
        notes += ["", "External bandwidth of a 16x16 `4:6,2:4` system at its compute-bound "
                  "point (100 MHz): " + ", ".join(
                      f"{r['layer'].split()[0]} {r['GB/s to be compute bound']:.2f} GB/s"
                      for r in big) + " (one DDR4-3200 x64 channel gives 25.6 GB/s, "
                  "LPDDR4-3200 x32 12.8 GB/s)."]
    return notes


def _area_notes(areas) -> list[str]:
    """The system's logic beside its engine's (NAND2-eq; the memories are the table above)."""
    names = list(areas[0]["parts"]) if areas else []
    lines = ["", "Logic of the system (NAND2-eq, Yosys + ABC to cells.lib, composed fast flow; "
             "the buffers black boxes, the DMA's data FIFO, a memory, left out: it is "
             "in the memory table):", "",
             "| design | PEs | " + " | ".join(names) + " | total logic | system / engine |",
             "|---|---|" + "---|" * (len(names) + 2)]
    for a in areas:
        p = a["parts"]
        lines.append(f"| {a['design']} | {a['side']}x{a['side']} | "
                     + " | ".join(f"{p[n]:,}" for n in names)
                     + f" | {a['total']:,} | {(a['total'] - p['engine']) / p['engine']:.3f} |")
    return lines


def _fetch_notes(results) -> list[str]:
    """Rank 1 in the PEs vs at the fetch, the same layers and DMA width side by side."""
    pairs = []
    for b in results:
        if b["fetch"] == "pe" or b["design"] != "4:6,2:4 fetch":
            continue
        base = next((x for x in results if x["design"] == "4:6,2:4" and x["side"] == b["side"]
                     and x["dma_bits"] == b["dma_bits"]), None)
        if base is not None:
            pairs.append((base, b))
    if not pairs:
        return []
    lines = ["", "Rank 1 in the PEs (`4:6,2:4`) vs at the activation fetch (`4:6,2:4 fetch`, "
             "`--fetch shared`), per layer (area: bench fetch):", "",
             "| PEs | DMA bits | layer | cycles pe / fetch | of bound pe / fetch | buffer bits "
             "read / MAC pe / fetch | W error pe / fetch | weights beat bits pe / fetch | "
             "array act port bits pe / fetch |", "|---|---|---|---|---|---|---|---|---|"]
    for base, fetch in pairs:
        for r0, r1 in zip(base["rows"], fetch["rows"]):
            lines.append(
                f"| {base['side']}x{base['side']} | {base['dma_bits']} | {r0['layer']} | "
                f"{r0['cycles']:,} / {r1['cycles']:,} | {r0['of bound']:.3f} / "
                f"{r1['of bound']:.3f} | {r0['buffer bits read / MAC']:.3f} / "
                f"{r1['buffer bits read / MAC']:.3f} | {r0['W error']:.3f} / "
                f"{r1['W error']:.3f} | {base['weights_beat_bits']} / "
                f"{fetch['weights_beat_bits']} | {base['array_act_port_bits']} / "
                f"{fetch['array_act_port_bits']} |")
    return lines


def _plot(results, path: Path) -> None:
    """Roofline per array size: achieved MACs/cycle against MACs per DRAM byte, with the
    DMA port's roof (bytes per cycle) and each design's compute roof."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sides = sorted({b["side"] for b in results})
    fig, axes = plt.subplots(1, len(sides), figsize=(6.2 * len(sides), 4.4), squeeze=False)
    colors = {"dense twin": "#4c72b0", "2:4": "#dd8452", "4:6,2:4": "#55a868",
              "4:6,2:4 fetch": "#8172b3", "HighLight": "#c44e52"}
    markers = {64: "v", 128: "o", 256: "s", 512: "^"}
    for ax, side in zip(axes[0], sides):
        mine = [b for b in results if b["side"] == side]
        xs = []
        for b in mine:
            for r in b["rows"]:
                m, k, n = (int(v) for v in r["layer"].split()[1].split("x"))
                x, y = m * k * n / r["DRAM bytes"], r["MACs / cycle"] or 0
                xs.append(x)
                label = f"{b['design']}" + (f" ({r['mode']})" if b["design"] == "HighLight"
                                            else "") + f", {b['dma_bits']}-bit"
                ax.scatter([x], [y], color=colors.get(b["design"], "gray"),
                           marker=markers.get(b["dma_bits"], "o"),
                           facecolors="none" if r["mode"] == "4:4,4:4" else None,
                           label=label, zorder=3)
                ax.plot([x, x], [y, m * k * n / r["roofline bound"]], color="gray", lw=0.6)
        lo, hi = min(xs) / 2, max(xs) * 2
        for bits in sorted({b["dma_bits"] for b in mine}):
            ax.plot([lo, hi], [lo * bits / 8, hi * bits / 8], ls=":", color="black", lw=0.8)
            ax.text(hi, hi * bits / 8, f" {bits}-bit DMA", fontsize=7, va="center")
        for b in mine:
            peak = max(int(np.prod([int(v) for v in r["layer"].split()[1].split("x")]))
                       / r["compute ideal"] for r in b["rows"])
            ax.plot([lo, hi], [peak, peak], ls="--", lw=0.7,
                    color=colors.get(b["design"], "gray"))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("dense MACs per DRAM byte (log)")
        ax.set_ylabel("dense MACs per cycle (log)")
        ax.set_title(f"{side}x{side} PEs: measured (markers), bound (line tops)")
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=6, loc="lower right")
    fig.suptitle("hss_system roofline on MiniLM block 0 (dashed: compute, dotted: DMA port)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
