"""``python -m bench {tax,cycles,flex,scale,sim,tasd,edp,fuzz,dse,all} [--quick] [--fmax] [--jobs N] [--out DIR]``.

Each benchmark prints its table and writes CSV, Markdown and (where a picture helps) a PNG
under ``--out`` (default bench/results). Ratios are measured within one run.
``fuzz`` (``--minutes N --seed S``) is a time-bounded correctness campaign, not a
measurement, so ``all`` leaves it out; it exits 1 when any case failed. ``dse``
(``--spec FILE [--scheduler tcp://host:port] [--workers N] [--fast]``) sweeps a design space
on Dask (bench/dse.py); ``all`` leaves it out too, since its cost is whatever the spec says.
``--jobs`` sets how many designs (or cases) run at a time, by default the cores this process
may use.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from synth.tools import cores

from .common import RESULTS, machine

BENCHMARKS = ("tax", "cycles", "flex", "scale", "sim", "tasd", "edp")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("which", choices=BENCHMARKS + ("fuzz", "dse", "all"),
                   help="benchmark to run (all: every one but fuzz and dse)")
    p.add_argument("--quick", action="store_true",
                   help="a small subset (minutes) that CI runs so the benchmarks cannot rot")
    p.add_argument("--fmax", action="store_true",
                   help="tax: also place and route every design with nextpnr-ecp5 (slow)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    p.add_argument("--jobs", type=_positive(int), default=None,
                   help="designs or cases at a time (default: the cores this process may use)")
    fuzz = p.add_argument_group("fuzz", "constrained-random cosimulation campaign")
    fuzz.add_argument("--minutes", type=_positive(float), default=None,
                      help="stop starting cases after this long (default 20; 2 with --quick)")
    fuzz.add_argument("--seed", type=_positive(int, zero=True), default=None,
                      help="case i depends only on (seed, i) (default 1)")
    dse = p.add_argument_group("dse", "design-space exploration on Dask (bench/dse.py)")
    dse.add_argument("--spec", type=Path, default=None,
                     help="TOML sweep spec (see bench/dse_example.toml); required for dse")
    dse.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                     help="submit to this running Dask scheduler (default: a local cluster)")
    dse.add_argument("--workers", type=_positive(int), default=None,
                     help="local cluster workers, one thread each (default: --jobs)")
    dse.add_argument("--fast", action="store_true",
                     help="screening: gen without synthesis, generic area with ABC skipped")
    dse.add_argument("--retry-failed", action="store_true",
                     help="run again the points whose cached row failed")
    scale = p.add_argument_group("scale", "generator stages vs array size (bench/scale.py)")
    scale.add_argument("--max-side", type=_positive(int), default=None, metavar="N",
                       help="largest square array, one of 1, 2, 4, ..., 64 (default 64)")
    return p


def _positive(kind, zero=False):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"must be {'>= 0' if zero else '> 0'}: {text!r}")
        return value
    return parse


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.which != "fuzz" and any(getattr(args, a) is not None for a in ("minutes", "seed")):
        parser.error("--minutes and --seed apply to fuzz only")
    dse_only = ("spec", "scheduler", "workers", "fast", "retry_failed")
    if args.which != "dse" and any(getattr(args, a) not in (None, False) for a in dse_only):
        parser.error("--spec, --scheduler, --workers, --fast and --retry-failed apply to "
                     "dse only")
    if args.which != "scale" and args.max_side is not None:
        parser.error("--max-side applies to scale only")
    if args.which == "dse" and args.spec is None:
        parser.error("dse needs --spec FILE (e.g. bench/dse_example.toml)")
    args.jobs = args.jobs or cores()
    args.command = "python -m bench " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    args.machine = machine()
    chosen = BENCHMARKS if args.which == "all" else (args.which,)
    status = 0
    for name in chosen:
        t0 = time.perf_counter()
        print(f"== bench {name}{' (quick)' if args.quick else ''}", flush=True)
        module = __import__(f"bench.{name}", fromlist=["run"])
        status = max(status, module.run(args) or 0)
        print(f"== bench {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return status
