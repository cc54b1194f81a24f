"""``python -m bench fetch``: rank 1 at the fetch vs today's everything-in-the-PE datapath,
from the golden model ``hss.fetch`` (analytic costs, MiniLM-sized steps, way (i)'s accuracy
cost on real MiniLM weights). Area is not measured here yet (see docs/fetch.md)."""
from __future__ import annotations

import json
import warnings

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
    t = Table("fetch", "Rank 1 at the fetch vs in the PE (hss.fetch); MiniLM 384x384x128 steps",
              COLUMNS, rows, args.command,
              [f"W error: mean over {len(layers)} MiniLM layers of ||W-Wp||/||W||, "
               f"shared over the array's rows for way (i). Bit-exact on {layer.name}: "
               f"{out['bit_exact']}"])
    write_outputs(t, args.out, args.machine)
    (args.out / "fetch.json").write_text(json.dumps(out, indent=1))
    return 0 if all(out["bit_exact"].values()) else 1


COLUMNS = ["pattern", "array", "way", "reads/mult", "vs pe", "act port el", "act port bits",
           "banks x ports", "steps 384x384x128", "extra bits/PE", "MiniLM W error"]
