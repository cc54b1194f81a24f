"""TASD on real workloads, end to end through the RTL (issue 10).

Part 1, digits MLP (bench/workloads.py): every configuration (dense, plain pruning onto each
of HighLight's 12 modes, two-term TASD decompositions fixed or chosen per layer by
``hss.tasd.choose`` at an error budget) runs the whole test set through the emitted RTL: one
``python -m gen`` run per network layer, every configuration one layer of it (one Verilator
build per network layer). The host step turns each configuration's Z, as the RTL computed it,
into that configuration's next activations, so accuracy comes from the RTL; it is checked
against the NumPy golden model (Z bit for bit, and accuracy). Cycles are the testbench's,
summed over the network layers.

Part 2, all-MiniLM-L6-v2: for each of the 36 Linear layers (int8 per row), the relative
Frobenius error and the ideal cycles (``hss.tasd.steps`` at 8 multipliers) of every one- and
two-term decomposition of the 12 modes (156); the per-layer choice at error budgets; and an
RTL check: the first rows of several layers with the real int8 activations of one sentence
through ``python -m gen --tasd auto``, PASS required, the generator's choice compared with
the bench's.
"""
from __future__ import annotations

import contextlib
import json
import math
import shutil
import sys
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import hss
from hss import tasd
from gen.options import Options

from . import workloads
from .common import GenFailed, Table, progress, run_gen as _run_gen, write_outputs

ROOT = Path(__file__).resolve().parents[1]
HIGHLIGHT = "4:4|4:5|4:6|4:7,4:4|2:4|1:4"
MACS = 8
SIDE = 4                       # PE rows and columns of the build
DENSE = "4:4,4:4"
#: Error budgets of the per-layer choice (relative Frobenius error of the int8 W). Below
#: about 7 % no decomposition of these modes saves a cycle on these layers, so the MLP
#: sweep goes on to 35 %.
MLP_BUDGETS = (0.005, 0.01, 0.02, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35)
MLP_BUDGETS_QUICK = (0.05, 0.25)
#: A systematic two-term family: X,2:4 then the remainder's X,1:4, densities 3/4 .. 3/7.
MLP_FIXED = ("4:4,2:4+4:4,1:4", "4:5,2:4+4:5,1:4", "4:6,2:4+4:6,1:4", "4:7,2:4+4:7,1:4")
MLP_QUICK_TEST = 64
MINILM_BUDGETS = (0.01, 0.05, 0.10, 0.20)
RTL_ROWS = 8                   # rows of each MiniLM layer in the RTL check
RTL_MAX_ERROR = 0.05
RTL_FIXED_BUDGET = 0.20        # the slices again, decomposed as choose picks at this budget
ACCURACY_TARGET = 0.01         # within 1 point of dense
SPEEDUP_TARGET = 1.5


def _silent(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        return fn(*args)


def candidates() -> tuple[hss.Decomposition, ...]:
    return tasd.candidates(HIGHLIGHT, 2)


def dense_steps(k: int) -> int:
    return tasd.steps(DENSE, k, MACS)


# -- running layers through the RTL --------------------------------------------------------------
@dataclass
class GenLayer:
    W: np.ndarray
    A: np.ndarray
    spec: str                  # a decomposition, or "auto"


@dataclass
class GenResult:
    zs: list[np.ndarray]
    layers: list[dict]         # report.json "layers"
    energy: list[dict]         # report.json "energy" "layers": design and dense twin, pJ


@contextlib.contextmanager
def _workdir(prefix: str):
    """A scratch folder removed on success and kept (for its logs) when the block raises."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_gen(layers: list[GenLayer], work: Path, jobs: int, max_error: float | None = None,
            sim: str = "verilator") -> GenResult:
    """Every layer back to back in one ``python -m gen`` run on HighLight's flexible build:
    Z of each layer from ``tb/z_out.txt``, the rest from ``report.json``."""
    work.mkdir(parents=True, exist_ok=True)
    for i, layer in enumerate(layers):
        np.save(work / f"W{i}.npy", np.asarray(layer.W, np.int64))
        np.save(work / f"A{i}.npy", np.asarray(layer.A, np.int64))
    options = Options(ranks=HIGHLIGHT, rows=SIDE, cols=SIDE, synth=False, sim=sim, jobs=jobs,
                      weights=tuple(str(work / f"W{i}.npy") for i in range(len(layers))),
                      activations=tuple(str(work / f"A{i}.npy") for i in range(len(layers))),
                      tasd=tuple(layer.spec for layer in layers), max_error=max_error,
                      testbench="engine")
    report = _run_gen(options, work / "out", work / "gen.log")
    flat = np.array((work / "out" / "tb" / "z_out.txt").read_text().split(), np.int64)
    zs, at = [], 0
    for layer in layers:
        m, n = layer.W.shape[0], layer.A.shape[1]
        zs.append(flat[at:at + m * n].reshape(m, n))
        at += m * n
    if at != flat.size or len(report["layers"]) != len(layers):
        raise GenFailed(f"z_out.txt holds {flat.size} values for {at} expected "
                        f"(log: {work / 'gen.log'})")
    return GenResult(zs, report["layers"], report["energy"]["layers"])


# -- part 1: the digits MLP ------------------------------------------------------------------------
@dataclass
class MLPConfig:
    name: str
    kind: str                  # dense | prune | tasd | choose
    specs: tuple[str, ...]     # one decomposition per network layer
    budget: float | None = None
    results: list = field(default_factory=list)          # per layer: TASDResult


def mlp_configs(mlp: workloads.MLP, quick: bool) -> list[MLPConfig]:
    """Dense; pruning onto every mode (one-term decompositions); the fixed two-term family;
    the per-layer choice at each budget."""
    n = len(mlp.layers)
    modes = [str(p) for p in hss.ModeSet.parse(HIGHLIGHT).modes]
    out = [MLPConfig("dense", "dense", (DENSE,) * n)]
    prunes = ["4:4,2:4", "4:6,2:4"] if quick else [m for m in modes if m != DENSE]
    out += [MLPConfig(f"prune {m}", "prune", (m,) * n) for m in prunes]
    out += [MLPConfig(f"TASD {d}", "tasd", (d,) * n)
            for d in (MLP_FIXED[2:3] if quick else MLP_FIXED)]
    for budget in MLP_BUDGETS_QUICK if quick else MLP_BUDGETS:
        specs = tuple(str(_silent(tasd.choose, layer.W, candidates(), budget, MACS).decomposition)
                      for layer in mlp.layers)
        out.append(MLPConfig(f"choose {100 * budget:g} %", "choose", specs, budget))
    for c in out:
        c.results = [_silent(tasd.decompose, layer.W, s) for layer, s in zip(mlp.layers, c.specs)]
    return out


def run_mlp(mlp: workloads.MLP, configs: list[MLPConfig], X: np.ndarray, y: np.ndarray,
            work: Path, jobs: int, sim: str = "verilator") -> list[dict]:
    """Every configuration through the RTL, network layer by network layer.

    Configurations that agree on the decompositions of layers 0..l have the same
    activations there, so each gen run holds one layer per distinct prefix of specs.
    """
    A0 = workloads.input_activations(X)
    acts = {(): A0}
    cycles = {c.name: [] for c in configs}
    steps = {c.name: [] for c in configs}
    energy = {c.name: [] for c in configs}
    final = {}
    for l, layer in enumerate(mlp.layers):
        prefixes = list(dict.fromkeys(c.specs[:l + 1] for c in configs))
        results = {c.specs[:l + 1]: c.results[l] for c in configs}
        gl = [GenLayer(layer.W, acts[p[:-1]], p[-1]) for p in prefixes]
        progress(f"MLP layer {layer.name} ({layer.W.shape[0]}x{layer.W.shape[1]}, N={len(y)}): "
                 f"{len(gl)} decompositions in one gen run")
        r = run_gen(gl, work / f"mlp_{layer.name}", jobs, sim=sim)
        for p, g, z, rep, e in zip(prefixes, gl, r.zs, r.layers, r.energy):
            golden = results[p].approximation() @ g.A
            if not np.array_equal(z, golden):
                bad = np.argwhere(z != golden)[0]
                raise GenFailed(f"{layer.name} {p[-1]}: the RTL's Z{list(bad)} = {z[tuple(bad)]}, "
                                f"the golden model's {golden[tuple(bad)]}")
            if rep["tasd"]["decomposition"] != p[-1]:
                raise GenFailed(f"{layer.name}: gen ran {rep['tasd']['decomposition']}, not {p[-1]}")
            if layer.out_scale is None:
                final[p] = workloads.logits(layer, z)
            else:
                acts[p] = workloads.next_activations(layer, z)
            for c in configs:
                if c.specs[:l + 1] == p:
                    cycles[c.name].append(rep["cycles"])
                    steps[c.name].append(rep["steps"])
                    energy[c.name].append(e["design"]["total"])
    rows = []
    for c in configs:
        rtl = workloads.accuracy(final[c.specs], y)
        approx = [r.approximation() for r in c.results]
        golden = workloads.accuracy(workloads.forward(mlp, A0, approx)[1], y)
        if rtl != golden:
            raise GenFailed(f"{c.name}: accuracy {rtl} from the RTL, {golden} from the golden "
                            f"model")
        val = workloads.accuracy(workloads.forward(
            mlp, workloads.input_activations(mlp.X_val), approx)[1], mlp.y_val)
        rows.append({"name": c.name, "kind": c.kind, "budget": c.budget,
                     "specs": list(c.specs), "errors": [r.error for r in c.results],
                     "cycles_per_layer": cycles[c.name], "steps_per_layer": steps[c.name],
                     "cycles": sum(cycles[c.name]), "steps": sum(steps[c.name]),
                     "energy_pj": sum(energy[c.name]),
                     "edp": sum(energy[c.name]) * sum(cycles[c.name]),
                     "accuracy": rtl, "golden_accuracy": golden, "val_accuracy": val})
    dense = next(r for r in rows if r["kind"] == "dense")
    for r in rows:
        r["speedup"] = dense["cycles"] / r["cycles"]
        r["energy_vs_dense"] = r["energy_pj"] / dense["energy_pj"]
        r["edp_vs_dense"] = r["edp"] / dense["edp"]
        r["delta_points"] = 100 * (r["accuracy"] - dense["accuracy"])
    return rows


def mlp_targets(rows: list[dict]) -> dict:
    """The issue's target, judged honestly: the fastest TASD configuration within 1 point of
    dense at >= 1.5x fewer cycles, picked on the validation set (no peeking at the test
    set), and the pruning configuration nearest to it in cycles."""
    dense = next(r for r in rows if r["kind"] == "dense")
    tasd_rows = [r for r in rows if r["kind"] in ("tasd", "choose")]
    ok_val = [r for r in tasd_rows
              if r["val_accuracy"] >= dense["val_accuracy"] - ACCURACY_TARGET - 1e-12]
    pick = max(ok_val, key=lambda r: (r["speedup"], r["val_accuracy"]), default=None)
    met_test = [r for r in tasd_rows if r["speedup"] >= SPEEDUP_TARGET
                and r["accuracy"] >= dense["accuracy"] - ACCURACY_TARGET - 1e-12]
    out = {"dense_accuracy": dense["accuracy"], "dense_cycles": dense["cycles"],
           "picked_on_validation": None, "met": bool(met_test),
           "meeting_on_test": [r["name"] for r in met_test]}
    if pick is not None:
        prunes = [r for r in rows if r["kind"] == "prune"]
        slower = [r for r in prunes if r["speedup"] <= pick["speedup"]]
        faster = [r for r in prunes if r["speedup"] > pick["speedup"]]
        near = ([max(slower, key=lambda r: r["speedup"])] if slower else []) + \
            ([min(faster, key=lambda r: r["speedup"])] if faster else [])
        out["picked_on_validation"] = {k: pick[k] for k in ("name", "speedup", "accuracy",
                                                             "delta_points", "val_accuracy")}
        out["picked_meets"] = bool(pick["speedup"] >= SPEEDUP_TARGET and pick["accuracy"]
                                   >= dense["accuracy"] - ACCURACY_TARGET - 1e-12)
        out["pruning_nearby"] = [{k: r[k] for k in ("name", "speedup", "accuracy",
                                                    "delta_points")} for r in near]
    return out


# -- part 2: MiniLM ------------------------------------------------------------------------------
def layer_grid(W: np.ndarray) -> list[dict]:
    """Every candidate decomposition of one W: error, squared residual norm, steps per row."""
    W = np.asarray(W)
    k = W.shape[1]
    norm2 = float((W.astype(np.float64) ** 2).sum())
    out = []
    for d in candidates():
        r = _silent(tasd.decompose, W, d)
        out.append({"decomposition": str(d), "terms": len(d), "error": r.error,
                    "residual2": r.error ** 2 * norm2, "steps": tasd.steps(d, k, MACS)})
    return out


def pick(grid: list[dict], budget: float) -> dict:
    """``hss.tasd.choose``'s rule on a precomputed grid (candidates in order): fewest steps
    with error <= budget, then the lower error, then the earlier candidate."""
    fits = [(g["steps"], g["error"], i) for i, g in enumerate(grid) if g["error"] <= budget]
    return grid[min(fits)[2]]


def _minilm_layer(layer: workloads.MiniLMLayer) -> dict:
    """The grid of one layer and its choice at every budget, with the choice's error on the
    layer's real activations (the sentence): what the approximation does to Z."""
    grid = layer_grid(layer.W)
    Z = layer.W @ layer.A
    z_norm = float(np.linalg.norm(Z.astype(np.float64)))
    choices = {}
    for b in MINILM_BUDGETS:
        g = pick(grid, b)
        approx = _silent(tasd.decompose, layer.W, g["decomposition"]).approximation()
        z_err = float(np.linalg.norm((approx @ layer.A - Z).astype(np.float64))) / z_norm
        choices[b] = dict(g, z_error=z_err)
    return {"name": layer.name, "kind": layer.kind, "shape": list(layer.W.shape),
            "norm2": float((layer.W.astype(np.float64) ** 2).sum()),
            "dense_steps": dense_steps(layer.W.shape[1]), "grid": grid, "choices": choices}


def _aggregate(layers: list[dict]) -> list[dict]:
    """Per candidate over a set of layers: error of the whole set (residual energy over
    weight energy) and ideal cycles vs dense weighted by rows (MACs)."""
    out = []
    for i, g in enumerate(layers[0]["grid"]):
        res = sum(layer["grid"][i]["residual2"] for layer in layers)
        norm = sum(layer["norm2"] for layer in layers)
        cyc = sum(layer["shape"][0] * layer["grid"][i]["steps"] for layer in layers)
        dense = sum(layer["shape"][0] * layer["dense_steps"] for layer in layers)
        out.append({"decomposition": g["decomposition"], "terms": g["terms"],
                    "error": math.sqrt(res / norm), "speedup": dense / cyc})
    return out


def _pareto(points: list[dict]) -> set[str]:
    """Decompositions no other beats on both speed-up and error."""
    front, best = set(), math.inf
    for p in sorted(points, key=lambda p: (-p["speedup"], p["error"])):
        if p["error"] < best:
            front.add(p["decomposition"])
            best = p["error"]
    return front


def rtl_slices(layers, work: Path, jobs: int, sim: str = "verilator") -> list[dict]:
    """The first RTL_ROWS rows of each layer with its real activations, twice in one gen run:
    ``--tasd auto`` at RTL_MAX_ERROR (compared with the bench's own ``choose``), then the
    decomposition ``choose`` picks at RTL_FIXED_BUDGET (so two-term segments run on real
    data even where the small budget keeps a layer dense). Z is checked bit for bit."""
    slices = [(layer, layer.W[:RTL_ROWS]) for layer in layers]
    fixed = [str(_silent(tasd.choose, W, candidates(), RTL_FIXED_BUDGET, MACS).decomposition)
             for _, W in slices]
    gl = ([GenLayer(W, layer.A, "auto") for layer, W in slices]
          + [GenLayer(W, layer.A, f) for (layer, W), f in zip(slices, fixed)])
    progress(f"MiniLM RTL check: {len(slices)} layers x {RTL_ROWS} rows x "
             f"{layers[0].A.shape[1]} tokens, --tasd auto --max-error {RTL_MAX_ERROR} and "
             f"fixed decompositions, in one gen run")
    r = run_gen(gl, work, jobs, max_error=RTL_MAX_ERROR, sim=sim)
    out = []
    for i, (g, z, rep, energy) in enumerate(zip(gl, r.zs, r.layers, r.energy)):
        layer = slices[i % len(slices)][0]
        auto = g.spec == "auto"
        ours = (_silent(tasd.choose, g.W, candidates(), RTL_MAX_ERROR, MACS) if auto
                else _silent(tasd.decompose, g.W, g.spec))
        golden = ours.approximation() @ g.A
        if not np.array_equal(z, golden):
            raise GenFailed(f"{layer.name} slice ({g.spec}): the RTL's Z differs from "
                            f"decompose(W, {ours.decomposition}).approximation() @ A")
        out.append({"layer": layer.name, "request": f"auto {RTL_MAX_ERROR:g}" if auto else g.spec,
                    "shape": [*g.W.shape, g.A.shape[1]],
                    "gen_choice": rep["tasd"]["decomposition"],
                    "bench_choice": str(ours.decomposition),
                    "agree": rep["tasd"]["decomposition"] == str(ours.decomposition),
                    "error": rep["tasd"]["error"], "cycles": rep["cycles"],
                    "steps": rep["steps"], "z_exact": True,
                    "energy_vs_dense": energy["energy_ratio"], "edp_vs_dense": energy["edp_ratio"]})
    return out


# -- the benchmark ---------------------------------------------------------------------------------
def run(args) -> int:
    try:
        mlp = workloads.digits_mlp()
        minilm = workloads.minilm_layers()
    except workloads.MissingPackage as e:
        print(f"bench tasd: {e}", file=sys.stderr)
        return 2
    quick = args.quick
    with _workdir("bench-tasd-") as work:
        configs = mlp_configs(mlp, quick)
        X, y = mlp.X_test, mlp.y_test
        if quick:
            X, y = X[:MLP_QUICK_TEST], y[:MLP_QUICK_TEST]
        progress(f"MLP: {len(configs)} configurations x {len(y)} test images through the RTL")
        mlp_rows = run_mlp(mlp, configs, X, y, work, args.jobs)
        layers = [minilm[0], minilm[5]] if quick else list(minilm)
        progress(f"MiniLM: {len(candidates())} decompositions x {len(layers)} layers, "
                 f"{args.jobs} at a time")
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            grids = list(pool.map(_minilm_layer, layers))
        per_kind = {}
        for kind, _ in workloads.LINEAR:
            those = [g for g in grids if g["kind"] == kind]
            if those:
                per_kind[kind] = _aggregate(those)
        # one layer of each kind, from successive blocks (L0.query, L1.key, ..., L5.ffn_out)
        checked = [minilm[0], minilm[5]] if quick else [minilm[7 * i] for i in range(6)]
        rtl = rtl_slices(checked, work / "minilm_rtl", args.jobs)
    _write(args, mlp, mlp_rows, grids, per_kind, rtl, quick)
    return 0


def _fmt_specs(specs) -> str:
    return " / ".join(specs) if len(set(specs)) > 1 else specs[0]


def _write(args, mlp, rows, grids, per_kind, rtl, quick) -> None:
    out = args.out
    targets = mlp_targets(rows)
    names = [layer.name for layer in mlp.layers]
    dense = next(r for r in rows if r["kind"] == "dense")
    n_test = len(mlp.y_test) if not quick else MLP_QUICK_TEST
    t = Table("tasd_mlp", f"Digits MLP {' -> '.join(str(x) for x in [64, *workloads.HIDDEN, 10])}"
              f" (int8) on HighLight's 12 modes, {SIDE}x{SIDE} PEs, {MACS} multipliers per PE: "
              f"accuracy from the RTL on {n_test} test images",
              ["configuration", "kind", f"decomposition ({' / '.join(names)})",
               f"rel. error ({' / '.join(names)})", "cycles (RTL)", "speed-up vs dense",
               "test accuracy % (RTL)", "delta vs dense (points)", "validation accuracy % (golden)",
               "energy vs dense", "EDP vs dense"],
              [[r["name"], r["kind"], _fmt_specs(r["specs"]),
                " / ".join(f"{e:.3f}" for e in r["errors"]), r["cycles"], r["speedup"],
                f"{100 * r['accuracy']:.2f}", f"{r['delta_points']:+.2f}",
                f"{100 * r['val_accuracy']:.2f}", r["energy_vs_dense"], r["edp_vs_dense"]]
               for r in rows], args.command, _mlp_notes(targets, dense, n_test))
    t.rows = _rounded(t.rows)                         # 6 decimals in the CSV
    write_outputs(t, out, args.machine)
    _plot_mlp(rows, out / "tasd_mlp.png")

    overall = _aggregate(grids)
    front = _pareto(overall)
    kinds = list(per_kind)
    table = []
    for i, g in enumerate(overall):
        table.append([g["decomposition"], "prune" if g["terms"] == 1 else "TASD",
                      g["speedup"], g["error"]]
                     + [per_kind[k][i]["error"] for k in kinds]
                     + ["yes" if g["decomposition"] in front else ""])
    table.sort(key=lambda r: (-r[2], r[3]))
    t = Table("tasd_minilm", f"all-MiniLM-L6-v2, {len(grids)} Linear layers (int8 per row): "
              f"every one- and two-term decomposition of HighLight's 12 modes",
              ["decomposition", "kind", "speed-up vs dense (ideal)", "rel. error (all layers)"]
              + [f"rel. error {k}" for k in kinds] + ["Pareto"],
              table, args.command, _minilm_notes(overall, grids))
    t.rows = _rounded(t.rows)                         # 6 decimals in the CSV
    write_outputs(t, out, args.machine)
    _plot_minilm(overall, per_kind, len(grids), out / "tasd_minilm.png")

    choice_rows = []
    for b in MINILM_BUDGETS:
        for g in grids:
            c = g["choices"][b]
            choice_rows.append([f"{100 * b:g} %", g["name"], "x".join(map(str, g["shape"])),
                                c["decomposition"], c["error"], c["z_error"],
                                c["steps"] / g["dense_steps"]])
        tot = sum(g["shape"][0] * g["choices"][b]["steps"] for g in grids)
        dense_tot = sum(g["shape"][0] * g["dense_steps"] for g in grids)
        err = math.sqrt(sum(g["choices"][b]["error"] ** 2 * g["norm2"] for g in grids)
                        / sum(g["norm2"] for g in grids))
        choice_rows.append([f"{100 * b:g} %", "all layers", "", "", err, None, tot / dense_tot])
    t = Table("tasd_choice", "all-MiniLM-L6-v2: per-layer choice (hss.tasd.choose's rule) at "
              "error budgets", ["budget", "layer", "M x K", "choice", "rel. error of W",
                                "rel. error of Z (sentence)", "cycles vs dense (ideal)"],
              choice_rows, args.command, _choice_notes(rtl))
    t.rows = _rounded(t.rows)                         # 6 decimals in the CSV
    write_outputs(t, out, args.machine)

    summary = {"command": args.command, "machine": args.machine, "quick": quick,
               "modes": HIGHLIGHT, "macs": MACS, "array": [SIDE, SIDE],
               "mlp": {"layers": [{"name": layer.name, "shape": list(layer.W.shape)}
                                  for layer in mlp.layers],
                       "float_test_accuracy": mlp.float_test_accuracy, "test_images": n_test,
                       "configurations": rows, "targets": targets},
               "minilm": {"sentence": workloads.SENTENCE,
                          "tokens": len(workloads.tokenize(workloads.SENTENCE)),
                          "all_layers": [dict(g, pareto=g["decomposition"] in front)
                                         for g in overall],
                          "per_kind": per_kind,
                          "choices": {f"{b:g}": [{"layer": g["name"], **g["choices"][b],
                                                  "dense_steps": g["dense_steps"]}
                                                 for g in grids] for b in MINILM_BUDGETS},
                          "rtl_check": rtl}}
    (out / "tasd.json").write_text(json.dumps(_rounded(summary), indent=1) + "\n")
    print(f"wrote {out / 'tasd.json'}, {out / 'tasd_mlp.png'} and {out / 'tasd_minilm.png'}")


def _rounded(x):
    if isinstance(x, float):
        return round(x, 6)
    if isinstance(x, dict):
        return {str(k): _rounded(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_rounded(v) for v in x]
    return x


def _mlp_notes(targets, dense, n_test) -> list[str]:
    notes = [f"Every configuration ran through the emitted RTL (Verilator, one `python -m gen` "
             f"run per network layer, {n_test} test images as the N dimension); each "
             f"layer's Z equalled the NumPy golden model bit for bit and every accuracy equals "
             f"the golden model's. Cycles: the testbench's, summed over the 3 layers; dense "
             f"({DENSE}) takes {dense['cycles']:,}.",
             "Rel. error: ||W - sum W_t||_F / ||W||_F of the int8 weights. `choose B %`: per "
             "layer, the candidate (1 or 2 terms of the 12 modes) with the fewest cycles whose "
             "error is at most B."]
    p = targets.get("picked_on_validation")
    if p:
        near = "; ".join(f"{r['name']}, {r['speedup']:.2f}x, {100 * r['accuracy']:.2f} % "
                         f"({r['delta_points']:+.2f} points)" for r in targets["pruning_nearby"])
        verdict = "met" if targets["picked_meets"] else "not met"
        notes.append(f"Target (TASD within 1 point of dense at >= {SPEEDUP_TARGET}x fewer "
                     f"cycles), picking the fastest TASD configuration within 1 point of dense "
                     f"on the validation set: {p['name']}, {p['speedup']:.2f}x, test accuracy "
                     f"{100 * p['accuracy']:.2f} % ({p['delta_points']:+.2f} points): "
                     f"**{verdict}**. Pruning alone at about the same cycles (the nearest "
                     f"slower and faster): {near}.")
    notes.append("TASD configurations meeting the target on the test set: "
                 + (", ".join(targets["meeting_on_test"]) or "none") + ".")
    notes.append("Energy: each layer's, as `python -m gen` reports it (actions counted by the "
                 "testbench on the RTL, priced by hss/energy_aladdin_40nm.json), summed over the "
                 "network; EDP = energy x cycles; both relative to dense (`python -m bench edp` "
                 "plots accuracy against EDP).")
    return notes


def _minilm_notes(overall, grids) -> list[str]:
    prune = [g for g in overall if g["terms"] == 1]
    out = [f"Speed-up: ideal cycles (hss.tasd.steps at {MACS} multipliers, K padded per term) "
           f"of dense over the decomposition, weighted by each layer's rows; error: residual "
           f"energy over weight energy of all {len(grids)} layers, square-rooted. Per-kind "
           f"columns aggregate that kind's layers over the blocks."]
    for s in (1.2, 1.5, 2.0):
        best_t = min((g["error"] for g in overall if g["speedup"] >= s), default=None)
        best_p = min((g["error"] for g in prune if g["speedup"] >= s), default=None)
        if best_t is not None:
            out.append(f"At >= {s}x: best TASD error {best_t:.3f}, best pruning error "
                       f"{best_p:.3f}.")
    return out


def _choice_notes(rtl) -> list[str]:
    agree = sum(r["agree"] for r in rtl)
    auto = [r for r in rtl if r["request"].startswith("auto")]
    out = ["Choice: per layer, the candidate with the fewest ideal cycles whose relative error "
           "of W is at most the budget (ties: lower error, then candidate order), from the "
           "same grid as tasd_minilm. Z error: ||(sum W_t - W) A|| / ||W A|| on the int8 "
           f"activations of the sentence {workloads.SENTENCE!r}.",
           f"RTL check: the first {RTL_ROWS} rows of {len(auto)} layers with the sentence's "
           f"activations through one `python -m gen --tasd auto --max-error {RTL_MAX_ERROR}` "
           f"run (plus the same slices with the decomposition choose picks at "
           f"{100 * RTL_FIXED_BUDGET:g} %): PASS, Z bit for bit; the generator's choice equals "
           f"the bench's on {agree} of {len(rtl)} slices."]
    for r in rtl:
        out.append(f"- {r['layer']} ({'x'.join(map(str, r['shape']))}), {r['request']}: "
                   f"{r['gen_choice']}, error {r['error']:.3f}, {r['cycles']} cycles "
                   f"({r['steps']} steps), energy {r['energy_vs_dense']:.3f}x and EDP "
                   f"{r['edp_vs_dense']:.3f}x the dense twin's")
    return out


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _plot_mlp(rows, path: Path) -> None:
    """Left: every configuration; right: the region the target is about, labelled."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    style = {"prune": ("tab:red", "o", "pruning (1 term)"),
             "tasd": ("tab:blue", "s", "TASD fixed (2 terms)"),
             "choose": ("tab:green", "^", "TASD choose (per layer, budget)"),
             "dense": ("k", "*", "dense")}
    dense = next(r for r in rows if r["kind"] == "dense")
    for zoom, ax in enumerate(axes):
        for kind, (color, marker, label) in style.items():
            pts = [r for r in rows if r["kind"] == kind]
            ax.scatter([r["speedup"] for r in pts], [100 * r["accuracy"] for r in pts],
                       c=color, marker=marker, s=130 if kind == "dense" else 45, label=label,
                       zorder=4 if kind == "dense" else 3)
            for r in pts:
                same_as_dense = r["specs"] == dense["specs"]
                if kind == "dense" or same_as_dense or (not zoom and r["speedup"] < 2.5):
                    continue
                ax.annotate(r["name"].split(" ", 1)[1], (r["speedup"], 100 * r["accuracy"]),
                            textcoords="offset points", xytext=(5, -3 if zoom else 3),
                            fontsize=7 if zoom else 6)
        ax.axhline(100 * (dense["accuracy"] - ACCURACY_TARGET), color="gray", ls="--", lw=0.8,
                   label="dense - 1 point")
        ax.axvline(SPEEDUP_TARGET, color="gray", ls=":", lw=0.8, label=f"{SPEEDUP_TARGET}x")
        ax.set_xlabel("speed-up vs dense (cycles measured in the RTL)")
        ax.set_ylabel("test accuracy % (from the RTL's outputs)")
        ax.grid(alpha=0.3)
    axes[0].set_title("every configuration (budgets <= 5 % keep every layer dense)")
    axes[0].legend(fontsize=7, loc="lower left")
    near = [r for r in rows if r["speedup"] <= 2.2 and r["accuracy"] >= dense["accuracy"] - 0.08]
    axes[1].set_xlim(0.95, max(r["speedup"] for r in near) + 0.15)
    axes[1].set_ylim(100 * min(r["accuracy"] for r in near) - 0.8, 100 * dense["accuracy"] + 1)
    axes[1].set_title("zoom: the target region")
    fig.suptitle("Digits MLP on HighLight's 12 modes: pruning vs TASD")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _front_line(points):
    front = _pareto(points)
    pts = sorted((p for p in points if p["decomposition"] in front), key=lambda p: p["speedup"])
    return [p["speedup"] for p in pts], [p["error"] for p in pts]


def _plot_minilm(overall, per_kind, n_layers: int, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    ax = axes[0]
    for terms, color, marker, label in ((2, "tab:blue", "s", "TASD (2 terms)"),
                                        (1, "tab:red", "o", "pruning (1 term)")):
        pts = [g for g in overall if g["terms"] == terms and g["speedup"] >= 1]
        ax.scatter([g["speedup"] for g in pts], [g["error"] for g in pts], c=color,
                   marker=marker, s=14 if terms == 2 else 30, alpha=0.6 if terms == 2 else 1,
                   label=label, zorder=3)
    ax.plot(*_front_line(overall), color="tab:blue", lw=1, label="Pareto front (all)")
    ax.plot(*_front_line([g for g in overall if g["terms"] == 1]), color="tab:red", lw=1,
            ls="--", label="Pareto front (pruning)")
    ax.scatter([1], [0], c="k", marker="*", s=110, label="dense", zorder=4)
    ax.set_title(f"all {n_layers} Linear layers together (candidates slower than dense "
                 f"left out)")
    ax = axes[1]
    colors = plt.get_cmap("tab10")
    for i, (kind, pts) in enumerate(per_kind.items()):
        ax.plot(*_front_line(pts), color=colors(i), lw=1.2, label=kind)
        ax.plot(*_front_line([g for g in pts if g["terms"] == 1]), color=colors(i), lw=1,
                ls="--")
    ax.plot([], [], color="gray", lw=1.2, label="TASD (1 or 2 terms)")
    ax.plot([], [], color="gray", lw=1, ls="--", label="pruning only")
    ax.set_title("Pareto fronts per layer kind")
    for ax in axes:
        ax.set_xlabel("speed-up vs dense (ideal cycles, 8 multipliers)")
        ax.set_ylabel("relative Frobenius error of int8 W")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("all-MiniLM-L6-v2 on HighLight's 12 modes: error vs cycles")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
