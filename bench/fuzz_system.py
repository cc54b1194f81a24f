"""Constrained-random cosimulation of whole systems: ``python -m bench fuzz_system``.

``bench fuzz`` draws engines; this draws ``hss_system`` builds: a pattern or a small mode set,
an array of 1-3 x 1-3, the DMA width, buffers from a few hundred bytes (so that the host
driver splits layers) to 8 KiB, the requantization table's rows, the output buffer's
tiles, the burst length and the reads in flight, the loop nest's m-chunk, requantization
and its lanes, and where rank 1 is selected (``fetch="shared"`` where the pattern allows);
then one to three layers (shapes overhanging the array, requantized or not, ReLU, a mode of
the set), the DRAM's latency and a back-pressure seed. Each case runs through the system
testbench (``gen.testbench.system``: the emitted Verilog in Verilator, its AXI4 DRAM, the
host driver's recorded program) and passes when every layer's Z is bit-exact against NumPy
and every counter equals the golden model's, and no layer took fewer cycles than its PE
steps. A fifth of the cases answer SLVERR on
the first layer's weights: that layer must end with READ_SLVERR and the others run exact.

Case ``i`` depends only on ``(seed, i)``; a failing case is saved as
``<out>/fuzz-failures/<case-id>/case.json`` with its log, shrunk greedily (fewer layers, no
back-pressure or latency, halved shapes, no requantization: ``shrink``) to
``minimal.json``, and ``replay(path)`` runs it again. Results: ``fuzz_system.md``, ``fuzz_system.csv`` (coverage) and ``fuzz_system.json``.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

from .common import Table, progress, write_outputs

__all__ = ["generate_case", "build_config", "run_case", "simplifications", "shrink",
           "replay", "run"]

PATTERNS = ("2:4", "3:4", "4:6,2:4", "1:4,2:4", "2:3,1:2", "4:4,2:4", "4:4|4:6,2:4",
            "2:4|1:4")
MAX_FAILURES = 5


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def generate_case(seed: int, index: int) -> dict:
    """Case ``index`` of ``seed``: a JSON-able dict of the build and its layers."""
    from hdl.config import build_config as engine_config
    rng = np.random.default_rng([seed, index])
    ranks = _pick(rng, PATTERNS)
    rows, cols = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    signed = bool(rng.random() < 0.8)
    engine = engine_config(ranks, rows, cols, 8, signed)
    p = engine.modes.mode(0)
    fixed = len(engine.modes) == 1
    can_fetch = fixed and p.num_ranks == 2 and not p.rank(1).dense
    requant = bool(rng.random() < 0.7)
    build = {
        "ranks": ranks, "rows": rows, "cols": cols, "signed": signed,
        "dma_bits": int(_pick(rng, (64, 128, 256, 512))),
        "wbuf_bytes": int(_pick(rng, (512, 1024, 2048, 8192))),
        "abuf_bytes": int(_pick(rng, (512, 1024, 2048, 8192))),
        "qbuf_rows": rows * int(rng.integers(1, 9)),
        "obuf_tiles": int(rng.integers(2, 4)),
        "max_burst": int(_pick(rng, (1, 2, 4, 16, 64, 256))),
        "outstanding": int(rng.integers(1, 5)),
        "m_chunk": int(rng.integers(1, 9)),
        "requant": requant,
        "requant_lanes": int(2 if rows % 2 == 0 and rng.random() < 0.5 else 1),
        "fetch": "shared" if can_fetch and rng.random() < 0.5 else "pe",
    }
    config = build_config(build)
    # K: at most what one m-tile's and one n-tile's beats may take of the buffers
    fit = min(config.wbuf_depth, config.abuf_depth)
    layers = []
    for i in range(int(rng.integers(1, 4))):
        mode = int(rng.integers(len(engine.modes)))
        g = engine.modes.mode(mode).group_size
        groups = int(rng.integers(1, min(fit, 12) + 1))      # a beat holds a group or more
        k = int(rng.integers((groups - 1) * g + 1, groups * g + 1))
        layer = {"m": int(rng.integers(1, 3 * rows + 2)), "k": k,
                 "n": int(rng.integers(1, 3 * cols + 2)), "seed": int(rng.integers(1 << 30)),
                 "mode": mode}
        if requant and rng.random() < 0.5:
            layer.update(requant=True, relu=bool(rng.random() < 0.5))
        layers.append(layer)
    # an SLVERR range over the start of the first layer's weights (the driver lays them
    # out from address 0): that layer must end with READ_SLVERR, the next ones run exact
    slverr = [0, int(_pick(rng, (64, 4096)))] if rng.random() < 0.2 else None
    return {"case_id": f"s{seed}-c{index:05d}", "build": build, "layers": layers,
            "latency": int(_pick(rng, (0, 1, 5, 16, 40))),
            "stall_seed": None if rng.random() < 0.3 else int(rng.integers(1 << 31)),
            "slverr": slverr}


def build_config(build: dict):
    """The ``SystemConfig`` of a case's build."""
    from hdl.config import build_config as engine_config
    from hdl.sysconfig import SystemConfig
    b = dict(build)
    engine = engine_config(b.pop("ranks"), b.pop("rows"), b.pop("cols"), 8, b.pop("signed"))
    return SystemConfig(engine, **b)


def run_case(case: dict, work: Path) -> dict:
    """Run ``case`` in ``work``: its outcome (``kind`` None when it passed)."""
    from gen.testbench.system import run_system, summary
    from hss.system import SystemModelError
    t0 = time.perf_counter()
    out = {"case_id": case["case_id"], "kind": None, "detail": "", "cycles": 0}
    try:
        config = build_config(case["build"])
        slverr = case.get("slverr")
        run = run_system(config, case["layers"], work, seed=case["stall_seed"],
                         latency=case["latency"], mem_bytes=1 << 20, prog_lines=1 << 14,
                         slverr=tuple(slverr) if slverr else None,
                         progress=lambda message: None)
        out["cycles"] = run.cycles
        out["parts"] = [layer.parts for layer in run.layers]
        fast = [i for i, layer in enumerate(run.layers)
                if layer.exact and layer.counters.get("cycles", 0)
                < layer.model_counters.get("steps", 0)]
        if slverr:       # the first layer ends with READ_SLVERR, nothing hangs, the rest exact
            first, *rest = run.layers
            ok = run.tb_pass and first.error_code == "READ_SLVERR" and \
                all(layer.exact for layer in rest)
        else:
            ok = run.passed
        if not ok:
            out.update(kind="mismatch", detail=summary(run) + "\n" + run.log[-3000:])
        elif fast:
            out.update(kind="too-fast", detail=f"layers {fast} took fewer cycles than steps")
    except SystemModelError as e:
        # the driver refuses a layer no split fits (a table that cannot start on a word in
        # so small a qbuf): a documented refusal, counted, not a failure
        out.update(kind=None, refused=str(e).splitlines()[0])
    except Exception as e:                          # a crash of the flow is a failure too
        out.update(kind="exception", detail=f"{type(e).__name__}: {e}\n"
                                            f"{traceback.format_exc()[-3000:]}")
    out["seconds"] = time.perf_counter() - t0
    return out


def replay(path) -> dict:
    """Run a saved ``case.json`` again (in a temporary folder): its outcome."""
    case = json.loads(Path(path).read_text())
    with tempfile.TemporaryDirectory(prefix="hss-fuzz-system-") as tmp:
        return run_case(case, Path(tmp) / "run")


def simplifications(case: dict):
    """Smaller cases than ``case``, most promising first: fewer layers, no back-pressure,
    no latency, smaller layers, no requantization."""
    def variant(**changes):
        c = json.loads(json.dumps(case))
        c.update(changes)
        return c
    layers = case["layers"]
    for i in range(len(layers)):
        if len(layers) > 1 and not (i == 0 and case.get("slverr")):
            yield variant(layers=layers[:i] + layers[i + 1:])
    if case["stall_seed"] is not None:
        yield variant(stall_seed=None)
    if case["latency"]:
        yield variant(latency=0)
    for i, layer in enumerate(layers):
        for key in ("m", "n", "k"):
            if layer[key] > 1:
                smaller = dict(layer, **{key: (layer[key] + 1) // 2})
                yield variant(layers=layers[:i] + [smaller] + layers[i + 1:])
        if layer.get("requant"):
            plain = {k: v for k, v in layer.items() if k not in ("requant", "relu")}
            yield variant(layers=layers[:i] + [plain] + layers[i + 1:])


def shrink(case: dict, work: Path, budget: int = 12) -> tuple[dict, int]:
    """Greedy shrinking: take the first simplification that still fails, again, until none
    does or ``budget`` runs are spent. (the smallest failing case, runs spent)"""
    runs = 0
    improved = True
    while improved and runs < budget:
        improved = False
        for smaller in simplifications(case):
            if runs >= budget:
                break
            runs += 1
            if run_case(smaller, work / f"shrink{runs}")["kind"] is not None:
                case, improved = smaller, True
                break
    return case, runs


def fuzz_one(seed: int, index: int, work_root: str, failures_dir: str,
             shrink_budget: int = 12) -> dict:
    case = generate_case(seed, index)
    work = Path(work_root) / f"c{index:05d}"
    outcome = run_case(case, work / "run")
    if outcome["kind"] is not None:
        folder = Path(failures_dir) / case["case_id"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "case.json").write_text(json.dumps(case, indent=1) + "\n")
        (folder / "outcome.txt").write_text(outcome["detail"])
        minimal, runs = shrink(case, work, shrink_budget)
        (folder / "minimal.json").write_text(json.dumps(minimal, indent=1) + "\n")
        outcome["shrink_runs"] = runs
        outcome["reproducer"] = (f"python -c \"from bench.fuzz_system import replay; "
                                 f"print(replay('{folder / 'minimal.json'}'))\"")
    shutil.rmtree(work, ignore_errors=True)
    return {**outcome, **_features(case)}


def _features(case: dict) -> dict:
    b = case["build"]
    return {"ranks": b["ranks"], "array": f"{b['rows']}x{b['cols']}", "dma_bits": b["dma_bits"],
            "fetch": b["fetch"], "requant": b["requant"], "lanes": b["requant_lanes"],
            "m_chunk": b["m_chunk"], "max_burst": b["max_burst"],
            "outstanding": b["outstanding"], "latency": case["latency"],
            "stalls": case["stall_seed"] is not None, "slverr": bool(case.get("slverr")),
            "layers": len(case["layers"]),
            "requantized_layers": sum(bool(l.get("requant")) for l in case["layers"])}


def campaign(seed: int, minutes: float, jobs: int, out: Path) -> tuple[list[dict], float]:
    """Cases 0, 1, ... on ``jobs`` workers until ``minutes`` pass (a prefix of the
    sequence: cases in flight finish)."""
    failures_dir = out / "fuzz-failures"
    t0 = time.monotonic()
    deadline = t0 + 60 * minutes
    records, failed = {}, 0
    with tempfile.TemporaryDirectory(prefix="hss-fuzz-system-") as work_root, \
            ProcessPoolExecutor(max_workers=jobs) as pool:
        in_flight, next_index, last = {}, 0, 0.0
        while True:
            while len(in_flight) < jobs and time.monotonic() < deadline \
                    and failed < MAX_FAILURES:
                in_flight[pool.submit(fuzz_one, seed, next_index, work_root,
                                      str(failures_dir))] = next_index
                next_index += 1
            if not in_flight:
                break
            done, _ = wait(in_flight, timeout=5, return_when=FIRST_COMPLETED)
            for fut in done:
                rec = fut.result()
                records[in_flight.pop(fut)] = rec
                if rec["kind"] is not None:
                    failed += 1
                    progress(f"FAIL {rec['case_id']} ({rec['kind']}): {rec['reproducer']}")
            now = time.monotonic()
            if done and (now - last > 10 or not in_flight):
                last = now
                progress(f"{len(records)} cases, {failed} failed, "
                         f"{max(0, int(deadline - now))} s left")
    return [records[i] for i in sorted(records)], time.monotonic() - t0


DIMENSIONS = (("ranks", "pattern or mode set"), ("array", "array"), ("dma_bits", "DMA bits"),
              ("fetch", "rank 1 selected"), ("requant", "requantization built"),
              ("lanes", "requantization lanes"), ("m_chunk", "m-chunk"),
              ("max_burst", "largest burst"), ("outstanding", "reads in flight"),
              ("latency", "DRAM latency"), ("stalls", "random back-pressure"),
              ("slverr", "SLVERR on the first layer's weights"),
              ("layers", "layers in the case"))


def summarize(records, seconds, jobs, seed, minutes, command):
    failures = [r for r in records if r["kind"] is not None]
    rows = [["total", "cases", len(records), len(failures)]]
    for key, label in DIMENSIONS:
        counts = Counter(str(r[key]) for r in records)
        fails = Counter(str(r[key]) for r in failures)
        # a mode set's "|" would end a Markdown cell
        rows += [[label, k.replace("|", "\\|"), counts[k], fails[k]] for k in sorted(counts)]
    split = sum(any(p > 1 for p in r.get("parts", [])) for r in records)
    refused = [r for r in records if r.get("refused")]
    notes = [f"Seed {seed}, {minutes:g} minutes on {jobs} workers: {len(records)} cases in "
             f"{seconds:.0f} s; {split} of them with a layer the driver split into several "
             f"descriptors; {sum(r['requantized_layers'] for r in records)} requantized "
             f"layers; {len(refused)} refused by the driver (no split fits its buffers: "
             f"{'; '.join(sorted({r['refused'] for r in refused}))[:300] or 'none'}).", "",
             f"**Failures: {len(failures)}** (must be 0). Each case: hss_system's emitted "
             f"Verilog in Verilator with its AXI4 DRAM model, every layer's Z against NumPy "
             f"and every counter against the golden model, cycles at least the PE steps."]
    for r in failures:
        notes.append(f"- `{r['case_id']}` {r['kind']}: `{r['reproducer']}`")
    table = Table("fuzz_system", "Constrained-random hss_system builds in Verilator vs the "
                  "golden model", ["dimension", "value", "cases", "failed"], rows, command,
                  notes)
    return table, {"command": command, "seed": seed, "minutes": minutes, "jobs": jobs,
                   "cases": len(records), "seconds": round(seconds, 1),
                   "failures": len(failures), "split_cases": split,
                   "refused_cases": len(refused),
                   "failed_cases": [{k: r.get(k) for k in ("case_id", "kind", "reproducer")}
                                    for r in failures],
                   "case_list": [{k: r.get(k) for k in ("case_id", "kind", "refused", "cycles",
                                                       "parts", "seconds", *dict(DIMENSIONS))}
                                 for r in records]}


def run(args) -> int:
    minutes = args.minutes if args.minutes is not None else (2 if args.quick else 20)
    seed = args.seed if args.seed is not None else 1
    from synth import tools
    try:
        tools.find("verilator")
    except Exception as e:                          # a missing tool: one line, exit 2
        print(f"bench fuzz_system: error: {e}", file=sys.stderr)
        return 2
    progress(f"fuzzing hss_system builds for {minutes:g} min on {args.jobs} workers, "
             f"seed {seed}")
    records, seconds = campaign(seed, minutes, args.jobs, Path(args.out))
    table, summary = summarize(records, seconds, args.jobs, seed, minutes, args.command)
    write_outputs(table, Path(args.out), args.machine)
    (Path(args.out) / "fuzz_system.json").write_text(
        json.dumps({"machine": args.machine, **summary}, indent=1) + "\n")
    return 1 if summary["failures"] else 0
