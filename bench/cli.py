"""``python -m bench {tax,cycles,scale,sim,all} [--quick] [--fmax] [--out DIR]``.

Each benchmark prints its table and writes CSV, Markdown and (where a picture helps) a PNG
under ``--out`` (default bench/results). Ratios are measured within one run.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from .common import RESULTS, machine

BENCHMARKS = ("tax", "cycles", "scale", "sim")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("which", choices=BENCHMARKS + ("all",), help="benchmark to run")
    p.add_argument("--quick", action="store_true",
                   help="a small subset (minutes) that CI runs so the benchmarks cannot rot")
    p.add_argument("--fmax", action="store_true",
                   help="tax: also place and route every design with nextpnr-ecp5 (slow)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.command = "python -m bench " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    args.machine = machine()
    chosen = BENCHMARKS if args.which == "all" else (args.which,)
    for name in chosen:
        t0 = time.perf_counter()
        print(f"== bench {name}{' (quick)' if args.quick else ''}", flush=True)
        module = __import__(f"bench.{name}", fromlist=["run"])
        module.run(args)
        print(f"== bench {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0
