"""Design-space exploration: ``python -m bench dse --spec FILE`` sweeps patterns or mode sets,
array shapes, widths and multipliers per PE through the generator's own flow, on Dask.

Why through ``python -m gen`` (``bench.common.run_gen``) and not the library: every point is
then exactly what a user would build, simulated and reported, and a point that gen refuses or
that fails is one row with its log instead of a crashed sweep. Why Dask: the same sweep runs
on the cores of this machine (a ``LocalCluster``, one single-threaded worker per core since
each point is a child process using a core) or, unchanged, on an existing cluster
(``--scheduler tcp://host:port``; its workers need this repository importable at the same
path and the tools installed).

Each point is content-addressed: sha256 of its canonical config JSON, the package version and
the git commit. Its row is cached as ``<out>/dse-cache/<hash>.json`` (a failure's log beside
it as ``<hash>.log``), so a re-run only runs new points. Rows stream into ``dse.jsonl`` and
``dse.csv`` as points finish; at the end ``dse.csv``/``dse.md`` are rewritten sorted by config
and ``dse.png`` plots the Pareto fronts. Everything a sweep writes is under ``<out>``: the
points run in ``<out>/dse-work/<hash>`` (each keeps its ``gen.log``) and local Dask workers
keep their scratch space in ``<out>/dse-work/dask`` (removed at the end), so a sweep leaves
nothing in the repository or the current folder.

``--fast`` screens: gen runs without synthesis and dse synthesizes the generic NAND2-eq area
itself with ABC skipped (``synth.area_nand2(fast=True)``), no ECP5 and no Fmax; a Verilog text
met twice (a dense twin shared by points, a design that is another's twin) is synthesized once:
its area is cached by the Verilog's sha256. The full flow shares the same way through gen's
``--synth-cache <out>/dse-cache/synth`` (``gen.synth_cache``): points with one dense twin (every
pattern of an array, width and multiplier count) synthesize it once, whichever runs first.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from fractions import Fraction
from pathlib import Path

from .common import GenFailed, Table, progress, run_gen, write_outputs

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("generic", "ecp5", "ice40")
SIMS = ("verilator", "icarus", "none")
#: spec key -> (default, what it is); the order is the order of the table's columns.
KEYS = {
    "ranks": (None, "list of patterns or mode sets, e.g. [\"4:6,2:4\", \"4:4|2:4,4:4\"]"),
    "arrays": (["2x2"], "list of RxC array shapes, e.g. [\"2x2\", \"4x4\"]"),
    "widths": ([8], "list of value widths in bits"),
    "macs": (["auto"], "list of multipliers per PE for mode sets: integers or \"auto\""),
    "signed": (True, "bool"),
    "synth": (False, "bool: Yosys area (and ECP5 with targets)"),
    "targets": (["generic", "ecp5"], "list among generic, ecp5, ice40"),
    "fmax": (False, "bool: nextpnr-ecp5 place and route (slow)"),
    "shape": (None, "\"M,K,N\" of the random GEMM"),
    "sim": ("verilator", "verilator, icarus or none"),
    "seed": (None, "integer seed of the random tensors"),
}
COLUMNS = ["pattern / mode set", "modes", "rows", "cols", "width", "macs/PE", "density min",
           "density max", "multipliers", "NAND2-eq", "area vs dense", "LUT4", "FF", "MULT18",
           "Fmax MHz", "cycles", "ideal steps", "energy vs dense", "EDP vs dense",
           "throughput/area vs dense (best mode)", "status", "seconds", "hash", "log"]


class SpecError(ValueError):
    """A sweep spec that cannot run: the message is one line naming the key and value."""


# ---------------------------------------------------------------- spec and points

def load_spec(path: Path) -> dict:
    """Read and check a TOML spec eagerly, before any cluster starts: a typo in the tenth
    pattern should cost a second, not the nine points before it."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise SpecError(f"cannot read spec {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"spec {path} is not valid TOML: {e}") from None
    return check_spec(raw)


def check_spec(raw: dict) -> dict:
    import hss
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise SpecError(f"unknown key {unknown[0]!r}: choose among {', '.join(KEYS)}")
    spec = {k: raw.get(k, d) for k, (d, _) in KEYS.items()}

    def need_list(key, kind, check=None):
        v = spec[key]
        if not isinstance(v, list) or not v:
            raise SpecError(f"{key} = {v!r}: must be a non-empty {KEYS[key][1]}")
        for x in v:
            if not isinstance(x, kind) or isinstance(x, bool) and kind is not bool:
                raise SpecError(f"{key}: {x!r} is not {KEYS[key][1]}")
            if check:
                check(x)
        if len(set(map(str, v))) != len(v):
            raise SpecError(f"{key} = {v!r}: lists a value twice")

    if spec["ranks"] is None:
        raise SpecError("missing key 'ranks': " + KEYS["ranks"][1])

    def pattern(text):
        try:
            hss.ModeSet.parse(text)
        except ValueError as e:
            raise SpecError(f"ranks: {text!r}: {e}") from None

    def array(text):
        r, x, c = text.partition("x")
        if not (x and r.isdigit() and c.isdigit() and int(r) > 0 and int(c) > 0):
            raise SpecError(f"arrays: {text!r} is not RxC with positive integers, e.g. '2x2'")

    def width(w):
        if not 1 <= w <= 32:
            raise SpecError(f"widths: {w!r} must be 1..32")

    def macs(m):
        if m != "auto" and not (isinstance(m, int) and not isinstance(m, bool) and m > 0):
            raise SpecError(f"macs: {m!r} is not a positive integer or \"auto\"")

    need_list("ranks", str, pattern)
    need_list("arrays", str, array)
    need_list("widths", int, width)
    need_list("macs", (int, str), macs)
    need_list("targets", str, lambda t: t in TARGETS or _raise(
        f"targets: {t!r} is not one of {', '.join(TARGETS)}"))
    for key in ("signed", "synth", "fmax"):
        if not isinstance(spec[key], bool):
            raise SpecError(f"{key} = {spec[key]!r}: must be true or false")
    if spec["sim"] not in SIMS:
        raise SpecError(f"sim = {spec['sim']!r}: choose among {', '.join(SIMS)}")
    if spec["shape"] is not None:
        parts = str(spec["shape"]).split(",")
        if not (isinstance(spec["shape"], str) and len(parts) == 3
                and all(p.strip().isdigit() and int(p) > 0 for p in parts)):
            raise SpecError(f"shape = {spec['shape']!r}: must be \"M,K,N\", positive integers")
    if spec["seed"] is not None and (not isinstance(spec["seed"], int)
                                     or isinstance(spec["seed"], bool) or spec["seed"] < 0):
        raise SpecError(f"seed = {spec['seed']!r}: must be an integer >= 0")
    if spec["fmax"] and not spec["synth"]:
        raise SpecError("fmax = true needs synth = true")
    return spec


def _raise(message):
    raise SpecError(message)


def points(spec: dict, fast: bool = False) -> list[dict]:
    """The cross product, in spec order. ``macs`` applies to mode sets only (a single
    pattern has prod(G) multipliers), so single patterns are not repeated per macs value."""
    out, seen = [], set()
    for ranks in spec["ranks"]:
        flexible = "|" in ranks
        for shape in spec["arrays"]:
            rows, cols = map(int, shape.split("x"))
            for width in spec["widths"]:
                for macs in (spec["macs"] if flexible else [None]):
                    p = {"ranks": ranks, "rows": rows, "cols": cols, "width": width,
                         "macs": None if macs == "auto" else macs, "signed": spec["signed"],
                         "synth": spec["synth"], "targets": sorted(spec["targets"]),
                         "fmax": spec["fmax"], "shape": spec["shape"], "sim": spec["sim"],
                         "seed": spec["seed"], "fast": fast}
                    key = json.dumps(p, sort_keys=True)
                    if key not in seen:
                        seen.add(key)
                        out.append(p)
    return out


def _provenance() -> str:
    """Package version and git commit: a row is only reused by the code that made it (the
    working tree's uncommitted edits are not included)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        v = version("hss-gen")
    except PackageNotFoundError:
        v = "-"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip() or "-"
    except (OSError, subprocess.SubprocessError):
        commit = "-"
    return f"{v}+{commit}"


def point_hash(point: dict, provenance: str) -> str:
    text = json.dumps({"point": point, "code": provenance}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def gen_options(point: dict):
    """The ``python -m gen`` options of a point (``--out``/``--force`` are run_gen's)."""
    from gen.options import Options
    synth = point["synth"] and not point["fast"]
    options = Options(ranks=point["ranks"], rows=point["rows"], cols=point["cols"],
                      width=point["width"], signed=point["signed"], sim=point["sim"], jobs=1,
                      macs=point["macs"], synth=synth, fmax=bool(synth and point["fmax"]))
    if point["shape"]:
        options = options.replace(shape=point["shape"].replace(" ", ""))
    if point["seed"] is not None:
        options = options.replace(seed=point["seed"])
    if synth:
        options = options.replace(target=tuple(point["targets"]))
    return options


# ---------------------------------------------------------------- one point (on a worker)

def run_point(point: dict, digest: str, work: str, area_cache: str | None = None) -> dict:
    """Run one point in ``work/<hash[:16]>``; its row. Never raises: a failure is a row with
    status "failed", the error and the log's text (the client keeps it, so a remote worker's
    log reaches the results folder)."""
    t0 = time.perf_counter()
    folder = Path(work) / digest[:16]
    log = folder / "gen.log"
    row = {"point": point, "hash": digest}
    try:
        options = gen_options(point)
        if area_cache and point["synth"] and not point["fast"]:
            options = options.replace(synth_cache=str(Path(area_cache) / "synth"))
        report = run_gen(options, folder / "out", log)
        fast_area = None
        if point["fast"] and point["synth"]:
            fast_area = _fast_area(point, folder, Path(area_cache) if area_cache else None)
        row.update(_summarize(report, fast_area), status="ok")
    except Exception as e:                       # noqa: BLE001 - a failed point is a row
        first = str(e).splitlines()[0] if str(e) else repr(e)
        row.update(status="failed", error=first.split(" (log: ")[0],
                   log_text=log.read_text(errors="replace") if log.exists() else repr(e))
        if not isinstance(e, GenFailed):
            row["error"] = f"{type(e).__name__}: {row['error']}"
    row["seconds"] = round(time.perf_counter() - t0, 1)
    shutil.rmtree(folder / "out", ignore_errors=True)     # the row is what the sweep keeps
    if row["status"] == "ok":                              # and the fast area its cache
        shutil.rmtree(folder / "fast", ignore_errors=True)
    return row


def _gen_plan(point: dict, out: Path):
    from gen.plan import Plan
    return Plan(gen_options(point).replace(out=str(out), force=True))


def _fast_area(point: dict, folder: Path, cache: Path | None) -> dict:
    """Generic NAND2-eq of the design (the Verilog gen emitted) and of its dense twin, ABC
    skipped. Each result is cached by the sha256 of the Verilog, so points that share a dense
    twin (or a design that is another point's twin, e.g. 8:8) synthesize it once."""
    from gen.emit import TOP, emit_verilog
    design_v = (folder / "out" / "rtl" / f"{TOP}.v").read_text()
    twin_v = emit_verilog(_gen_plan(point, folder / "plan").config.dense_twin())[0][TOP]
    return {"design": {"generic": _cached_area(design_v, folder / "fast" / "design", cache)},
            "dense_twin": {"generic": _cached_area(twin_v, folder / "fast" / "twin", cache)}}


def _cached_area(verilog: str, work: Path, cache: Path | None) -> dict:
    from gen.area import synthesize_design
    key = hashlib.sha256(verilog.encode()).hexdigest()
    hit = cache / f"area-fast-{key}.json" if cache else None
    if hit and hit.exists():
        return json.loads(hit.read_text())
    area = synthesize_design(verilog, work, ["generic"], False, fast=True)["generic"]
    if hit:
        _write_atomic(hit, json.dumps(area))
    return area


def _summarize(r: dict, fast_area: dict | None) -> dict:
    """The row's numbers from gen's report.json (and the fast area when screening)."""
    densities = [Fraction(m["density"]) for m in r["modes"]]
    area = fast_area or r.get("area")
    d = area["design"] if area else {}
    t = area["dense_twin"] if area else {}
    nand2 = d.get("generic", {}).get("nand2_eq")
    twin = t.get("generic", {}).get("nand2_eq")
    ratio = nand2 / twin if nand2 and twin else None
    e = r["energy"]["total"]
    tb = r.get("testbench", {})
    steps = sum(layer["steps"] for layer in r["layers"])
    return {
        "pattern": r["pattern"], "modes": len(densities),
        "rows": r["array"]["rows"], "cols": r["array"]["cols"],
        "width": r["values"]["width"], "macs": r["multipliers_per_pe"],
        "density_min": str(min(densities)), "density_max": str(max(densities)),
        "multipliers": r["array"]["multipliers"],
        "nand2_eq": nand2, "area_ratio": round(ratio, 4) if ratio else None,
        "lut4": d.get("ecp5", {}).get("lut4"), "ff": d.get("ecp5", {}).get("ff"),
        "mult18": d.get("ecp5", {}).get("mult18x18d"),
        "fmax_mhz": d.get("fmax", {}).get("fmax_mhz"),
        "cycles": tb.get("cycles"), "ideal_steps": tb.get("ideal_cycles", steps),
        "energy_ratio": e.get("energy_ratio"), "edp_ratio": e.get("edp_ratio"),
        # dense-equivalent MACs per cycle per area, in the sparsest mode, vs the dense twin
        "tpa_vs_dense": round(float(1 / min(densities)) / ratio, 4) if ratio else None,
        "area_flow": ("fast" if fast_area else "full") if area else None,
    }


# ---------------------------------------------------------------- the sweep (client)

def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _table_row(row: dict) -> list:
    p = row["point"]
    if row["status"] != "ok":
        return [p["ranks"], None, p["rows"], p["cols"], p["width"], p["macs"]] + [None] * 14 \
            + [f"failed: {row.get('error', '')}", row.get("seconds"), row["hash"][:12],
               row.get("log")]
    return [row["pattern"], row["modes"], row["rows"], row["cols"], row["width"], row["macs"],
            row["density_min"], row["density_max"], row["multipliers"], row["nand2_eq"],
            row["area_ratio"], row["lut4"], row["ff"], row["mult18"], row["fmax_mhz"],
            row["cycles"], row["ideal_steps"], row["energy_ratio"], row["edp_ratio"],
            row["tpa_vs_dense"], "ok" + (" (fast area)" if row.get("area_flow") == "fast"
                                         else ""),
            row.get("seconds"), row["hash"][:12], None]


def _sort_key(row: dict):
    p = row["point"]
    return (p["ranks"], p["rows"], p["cols"], p["width"], p["macs"] or 0, row["hash"])


def _warm(_=None) -> str:
    """Run Yosys once in this worker, so YoWASP compiles its WebAssembly before the points
    race to do it (the first run of a YoWASP tool on a machine takes a while)."""
    from synth import tools
    found = tools.find("yosys")
    r = subprocess.run([*found.argv, "-q", "-p", "help"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=600)
    return f"yosys {found.source}: exit {r.returncode}"


def sweep(spec: dict, out: Path, *, workers: int | None = None, scheduler: str | None = None,
          fast: bool = False, retry_failed: bool = False, work: Path | None = None,
          command: str = "python -m bench dse", info: dict | None = None) -> dict:
    """Run every point not cached yet; write dse.jsonl/.csv as they finish, then the sorted
    dse.csv, dse.md and dse.png. ``work``: where points run (default ``<out>/dse-work``).
    Returns {"total", "cached", "ran", "failed", "rows"}."""
    out = Path(out).absolute()          # workers may have another current folder
    work = Path(work).absolute() if work is not None else out / "dse-work"
    cache = out / "dse-cache"
    cache.mkdir(parents=True, exist_ok=True)
    provenance = _provenance()
    todo, rows = [], {}
    for p in points(spec, fast):
        digest = point_hash(p, provenance)
        hit = cache / f"{digest}.json"
        if hit.exists():
            row = json.loads(hit.read_text())
            if row["status"] == "ok" or not retry_failed:
                rows[digest] = row
                continue
        todo.append((p, digest))
    total = len(todo) + len(rows)
    progress(f"dse: {total} points, {len(rows)} cached, {len(todo)} to run")
    stream_csv, stream_jsonl = out / "dse.csv", out / "dse.jsonl"
    with open(stream_jsonl, "w") as jl, open(stream_csv, "w", newline="") as cf:
        writer = csv.writer(cf, lineterminator="\n")
        writer.writerow(COLUMNS)

        def emit(row):
            jl.write(json.dumps(row, sort_keys=True) + "\n")
            writer.writerow(_table_row(row))
            jl.flush()
            cf.flush()

        for row in sorted(rows.values(), key=_sort_key):
            emit(row)
        if todo:
            _run_on_dask(todo, rows, cache, emit, workers, scheduler, work, total, spec)
    final = sorted(rows.values(), key=_sort_key)
    failed = sum(r["status"] != "ok" for r in final)
    notes = _notes(spec, fast)
    write_outputs(Table("dse", f"Design-space exploration: {total} points"
                        f"{' (fast screening)' if fast else ''}", COLUMNS,
                        [_table_row(r) for r in final], command, notes), out, info or {})
    _plot(final, out / "dse.png")
    return {"total": total, "cached": total - len(todo), "ran": len(todo), "failed": failed,
            "rows": final}


def _run_on_dask(todo, rows, cache, emit, workers, scheduler, work, total, spec) -> None:
    import dask
    scratch = work / "dask"     # not Dask's default, <tmp>/dask-scratch-space
    with dask.config.set({"temporary-directory": str(scratch)}):   # the scheduler's too
        _run_on_cluster(todo, rows, cache, emit, workers, scheduler, work, total, spec,
                        scratch)


def _run_on_cluster(todo, rows, cache, emit, workers, scheduler, work, total, spec,
                    scratch) -> None:
    from dask.distributed import Client, LocalCluster, as_completed
    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    else:
        cluster = LocalCluster(n_workers=workers or os.cpu_count(), threads_per_worker=1,
                               processes=True, dashboard_address=":0", memory_limit=0,
                               silence_logs=40, local_directory=str(scratch))
        client = Client(cluster)
    try:
        n = len(client.scheduler_info()["workers"])
        progress(f"dse: {n} Dask workers ({scheduler or 'local cluster'})")
        if spec["synth"]:
            client.run(_warm)
        area_cache = str(cache)
        futures = {client.submit(run_point, p, digest, str(work), area_cache,
                                 key=f"dse-{digest}", pure=False): digest
                   for p, digest in todo}
        t0, done = time.perf_counter(), 0
        for future in as_completed(futures):
            digest = futures[future]
            try:
                row = future.result()
            except Exception as e:               # noqa: BLE001 - e.g. a worker died
                p = next(p for p, d in todo if d == digest)
                row = {"point": p, "hash": digest, "status": "failed",
                       "error": f"{type(e).__name__}: {e}", "log_text": repr(e)}
            log_text = row.pop("log_text", None)
            if row["status"] != "ok":
                log = cache / f"{digest}.log"
                _write_atomic(log, log_text or "")
                row["log"] = os.path.relpath(log, ROOT) if log.is_relative_to(ROOT) \
                    else str(log)
            _write_atomic(cache / f"{digest}.json", json.dumps(row, sort_keys=True, indent=1))
            rows[digest] = row
            emit(row)
            done += 1
            elapsed = time.perf_counter() - t0
            eta = elapsed / done * (len(todo) - done)
            p = row["point"]
            progress(f"dse {total - len(todo) + done}/{total} ({done}/{len(todo)} run), "
                     f"{elapsed:.0f} s, ETA {eta:.0f} s: {p['ranks']} {p['rows']}x{p['cols']} "
                     f"w{p['width']} macs {p['macs'] or 'auto'}: {row['status']}"
                     f"{'' if row['status'] == 'ok' else ' - ' + row.get('error', '')}")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
            shutil.rmtree(scratch, ignore_errors=True)


def _notes(spec, fast) -> list[str]:
    n = [f"Spec: {json.dumps(spec, sort_keys=True)}.",
         "Area and ratios: NAND2-eq of synth/cells.lib against the dense twin (same "
         "multipliers); throughput/area: 1/(min density) / area ratio, i.e. the sparsest "
         "mode's dense-equivalent MACs per cycle per NAND2-eq vs the dense twin's. Energy and "
         "EDP: report.json's totals over the GEMM's layers (every mode of a mode set). "
         "Cycles: measured by the testbench (including the pipeline latency); ideal steps: "
         "the schedule's.",
         "Rows are sorted by config; `hash` names the cached row in dse-cache/."]
    if fast:
        n.append("Fast screening: generic area with ABC skipped (synth.area_nand2(fast=True)), "
                 "design and dense twin; no ECP5, no Fmax.")
    return n


# ---------------------------------------------------------------- plots

def pareto(points_xy, minimize=(True, True)) -> list[int]:
    """Indices of the non-dominated points (each axis minimized or maximized)."""
    sx, sy = (1 if m else -1 for m in minimize)
    keyed = [(sx * x, sy * y, i) for i, (x, y) in enumerate(points_xy)]
    front, best = [], None
    for _, y, i in sorted(keyed):
        if best is None or y < best:
            front.append(i)
            best = y
    return front


def _plot(rows, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in rows if r["status"] == "ok"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    panels = [
        ("density_min", "nand2_eq", (True, True), "density (sparsest mode; bar: mode range)",
         "NAND2-eq", "Area vs density", True),
        ("flex", "tpa_vs_dense", (False, False), "flexibility: density range max/min "
         "(label: modes)", "throughput/area vs dense twin", "Throughput per area vs "
         "flexibility", False),
        ("density_min", "edp_ratio", (True, True), "density (sparsest mode)",
         "EDP vs dense twin", "EDP ratio vs density", False),
    ]
    for ax, (kx, ky, mins, xl, yl, title, span) in zip(axes, panels):
        pts = []
        for r in ok:
            y = r.get(ky)
            x = (float(Fraction(r["density_max"]) / Fraction(r["density_min"]))
                 if kx == "flex" else float(Fraction(r[kx])))
            if y is not None:
                pts.append((x, y, r))
        for x, y, r in pts:
            ax.scatter(x, y, s=30, alpha=0.8, label=None)
            if span and r["modes"] > 1:
                ax.hlines(y, x, float(Fraction(r["density_max"])), alpha=0.4)
            label = f"{r['pattern'] if r['modes'] == 1 else str(r['modes']) + ' modes'} " \
                    f"{r['rows']}x{r['cols']}"
            ax.annotate(label, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        front = pareto([(x, y) for x, y, _ in pts], mins)
        if front:
            fx = sorted((pts[i][0], pts[i][1]) for i in front)
            ax.plot(*zip(*fx), "r--", lw=1, label="Pareto front")
            ax.legend(fontsize=7)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if ky == "nand2_eq" and pts:
            ax.set_yscale("log")
    if not ok:
        fig.suptitle("no successful points")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- bench CLI entry

def run(args) -> int:
    """``python -m bench dse``: exit 2 on a bad spec (one line), 1 when a point failed."""
    try:
        spec = load_spec(args.spec)
    except SpecError as e:
        print(f"bench dse: error: {e}", file=sys.stderr)
        return 2
    result = sweep(spec, args.out, workers=args.workers or args.jobs,
                   scheduler=args.scheduler, fast=args.fast,
                   retry_failed=args.retry_failed, command=args.command, info=args.machine)
    print(f"dse: {result['total']} points, {result['cached']} cached, {result['ran']} run, "
          f"{result['failed']} failed")
    return 1 if result["failed"] else 0

