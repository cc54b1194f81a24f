"""``python -m bench fetch``: rank 1 at the fetch vs today's everything-in-the-PE datapath,
from the golden model ``hss.fetch`` (analytic costs, MiniLM-sized steps, way (i)'s accuracy
cost on real MiniLM weights), and the area of the two datapaths hss_system builds
(``--fetch pe``: the engine as it is; ``--fetch shared``: way (i), the rank-0 engine
``hss_system_engine`` and the fetch's rank-1 selector and bank enables,
``hdl.fetch.FetchRoute``), synthesized to NAND2 as the area flow maps the engine. Cycles
and buffer reads of the two on real layers, in the RTL: ``python -m bench system``."""
from __future__ import annotations

import concurrent.futures
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np

import hss
from hss import fetch as F

from . import workloads
from .common import Table, write_outputs

PATTERNS = ("4:6,2:4", "4:4,2:4")


def run(args) -> int:
    sides = (4,) if args.quick else (4, 16)
    layers = workloads.minilm_layers()
    layers = [layers[0], layers[5]] if args.quick else list(layers)
    rows, out = [], {"machine": args.machine, "command": args.command, "rows": []}
    for pattern in PATTERNS:
        for side in sides:
            base = F.cost("pe", pattern, side, side)
            st = F.steps(384, 384, 128, pattern, side, side)
            acc = {}
            for way in F.WAYS:
                if way != "shared":
                    continue
                w = [F.pruning_error(l.W, pattern, side, l.A) for l in layers]
                acc = {k: float(np.mean([e[k] for e in w])) for k in w[0]}
            for way in F.WAYS:
                c = F.cost(way, pattern, side, side)
                err = acc["shared_w_error"] if way == "shared" else acc["per_row_w_error"]
                row = [pattern, f"{side}x{side}", way, float(c.reads_per_multiply),
                       float(c.reads_per_multiply / base.reads_per_multiply), c.act_port,
                       c.act_port_bits, f"{c.banks}x{c.ports_per_bank}", st,
                       c.local_bits, err]
                rows.append(row)
                out["rows"].append(dict(zip(COLUMNS, row)))
    # bit-exact check on one real layer: each way's Z equals W_pruned @ A
    layer = layers[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hss.PaddingWarning)
        for way in F.WAYS:
            Wp = (F.prune_shared(layer.W, "4:6,2:4", 4) if way == "shared"
                  else hss.prune(layer.W, "4:6,2:4"))
            ok = bool((F.fetch_matmul(way, Wp, layer.A, "4:6,2:4", 4, 4).Z == Wp @ layer.A).all())
            out.setdefault("bit_exact", {})[way] = ok
    area = _areas(sides, args.jobs)
    out["area"] = area
    t = Table("fetch", "Rank 1 at the fetch vs in the PE (hss.fetch); MiniLM 384x384x128 steps",
              COLUMNS, rows, args.command,
              [f"W error: mean over {len(layers)} MiniLM layers of ||W-Wp||/||W||, "
               f"shared over the array's rows for way (i). Bit-exact on {layer.name}: "
               f"{out['bit_exact']}", ""] + _area_notes(area))
    write_outputs(t, args.out, args.machine)
    (args.out / "fetch.json").write_text(json.dumps(out, indent=1))
    return 0 if all(out["bit_exact"].values()) else 1


#: the datapaths hss_system builds, by ``--fetch``
AREA_PATTERN = "4:6,2:4"


def datapath_area(pattern: str, side: int, fetch: str, workdir) -> dict:
    """NAND2-eq of hss_system's datapath for ``pattern`` on ``side`` x ``side`` PEs:
    ``fetch="pe"``: the engine (``hss_accelerator``); ``"shared"``: the rank-0 engine
    (``hss_system_engine``) and the ``FetchRoute`` at the buffer. Composed flow, fast
    mapping (``synth.flows.area_nand2_composed``): PE area is one PE's module, inclusive."""
    from amaranth.back import verilog

    from gen.emit import SYSTEM_ENGINE, TOP, emit_system_engine, emit_verilog
    from hdl.config import build_config
    from hdl.fetch import FetchRoute
    from hdl.sysconfig import SystemConfig
    from synth.flows import area_nand2, area_nand2_composed
    engine = build_config(pattern, side, side)
    workdir = Path(workdir)
    if fetch == "pe":
        text, top = emit_verilog(engine)[0][TOP], TOP
    else:
        text, top = emit_system_engine(SystemConfig(engine, fetch="shared")), SYSTEM_ENGINE
    report = area_nand2_composed(text, top, workdir / "engine", fast=True)
    pe = next(m for name, m in report["modules"].items() if name.endswith("array.pe_0_0"))
    route = 0.0
    if fetch != "pe":
        p = hss.Pattern.parse(pattern)
        text = verilog.convert(FetchRoute(p, side, engine.width, engine.signed),
                               name="hss_fetch_route")
        route = area_nand2(text, "hss_fetch_route", workdir / "route", fast=True)["total"]["area"]
    return {"pattern": pattern, "side": side, "fetch": fetch,
            "engine": round(report["total"]["area"], 1), "pe": round(pe["total_area"], 1),
            "fetch_route": round(route, 1),
            "total": round(report["total"]["area"] + route, 1),
            "act_port_bits": engine.act_beat_bits if fetch == "pe" else
            SystemConfig(engine, fetch="shared").core.act_beat_bits}


def _areas(sides, jobs) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as tmp, \
            concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(datapath_area, AREA_PATTERN, side, fetch,
                               Path(tmp) / f"{side}-{fetch}")
                   for side in sides for fetch in ("pe", "shared")]
        return [f.result() for f in futures]


def _area_notes(area) -> list[str]:
    lines = [f"Area of hss_system's two datapaths for `{AREA_PATTERN}` (NAND2-eq, Yosys + ABC "
             f"to cells.lib, composed flow; *fetch route*: the rank-1 selector of the G1 "
             f"fetched blocks and the bank read enables, one per array):", "",
             "| PEs | --fetch | engine | one PE | fetch route | total | vs pe | array act port bits |",
             "|---|---|---|---|---|---|---|---|"]
    base = {a["side"]: a["total"] for a in area if a["fetch"] == "pe"}
    for a in area:
        lines.append(f"| {a['side']}x{a['side']} | {a['fetch']} | {a['engine']:,.0f} | "
                     f"{a['pe']:,.0f} | {a['fetch_route']:,.0f} | {a['total']:,.0f} | "
                     f"{a['total'] / base[a['side']]:.3f} | {a['act_port_bits']:,} |")
    return lines


COLUMNS = ["pattern", "array", "way", "reads/mult", "vs pe", "act port el", "act port bits",
           "banks x ports", "steps 384x384x128", "extra bits/PE", "MiniLM W error"]
